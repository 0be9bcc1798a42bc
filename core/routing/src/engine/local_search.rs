//! Local search over granular neighbourhoods: relocate (one or two stops), swap (1-1, 2-1, 2-2),
//! 2-opt inside a route, 2-opt* between routes, SWAP* between routes whose sectors overlap, and
//! insertion or removal of optional stops. Every inter-route move is priced in constant time from
//! stored prefix and suffix segments; a move is applied as soon as it lowers the penalised cost,
//! and the search stops at a local optimum.

use std::time::Instant;

use rand::Rng;
use rand::seq::SliceRandom;

use super::instance::{Client, Instance, Penalties};
use super::segment::{Matrix, NO_LOC, Seg};

mod ruin;

pub(crate) use ruin::Schedule;

const NONE: u32 = u32::MAX;
const TURN: i32 = 65536;

/// An arc of the circle (in 1/65536 turns) that covers a route's clients seen from the centre.
#[derive(Clone, Copy, Debug)]
struct Sector {
    start: i32,
    end: i32,
}

fn turn_mod(a: i32) -> i32 {
    a.rem_euclid(TURN)
}

impl Sector {
    fn contains(&self, a: i32) -> bool {
        turn_mod(a - self.start) <= turn_mod(self.end - self.start)
    }

    fn extend(&mut self, a: i32) {
        if !self.contains(a) {
            if turn_mod(a - self.end) <= turn_mod(self.start - a) {
                self.end = a;
            } else {
                self.start = a;
            }
        }
    }

    fn overlaps(&self, o: &Sector) -> bool {
        turn_mod(o.start - self.start) <= turn_mod(self.end - self.start)
            || turn_mod(self.start - o.start) <= turn_mod(o.end - o.start)
    }
}

/// One vehicle's route with its cached segments. Positions are 1-based: position 0 is the start
/// depot and `len + 1` the end depot. The default has no stops and is not yet refreshed.
#[derive(Clone, Debug, Default)]
struct Route {
    nodes: Vec<u32>,
    /// `prefix[p]`: start depot through position `p`.
    prefix: Vec<Seg>,
    /// `suffix[p]`: position `p` through the last client (end depot excluded, so a tail can move
    /// to another vehicle); `suffix[len + 1]` is empty.
    suffix: Vec<Seg>,
    /// `closing[p]`: `suffix[p]` followed by the end depot, so pricing a changed stretch joins
    /// one stored segment after it instead of two (6 % fewer instructions for the same
    /// solutions on a 200-client benchmark instance). Not used for a tail of breaks alone (see
    /// `LocalSearch::close`).
    closing: Vec<Seg>,
    cost: i64,
    /// Stability cost of starting stops much later than before a re-plan (see
    /// [`Instance::delay_cost`]); kept apart from `cost`, which moves are priced against.
    delay: i64,
    /// While the search judges moves as driven (see [`LocalSearch::judge_as_driven`]), the
    /// penalty for the lateness the route carries on beyond its time warp; zero otherwise.
    carried: i64,
    /// The part of `cost` that is not travel (penalties, overtime): a move can save at most
    /// this much beyond its change in travel.
    slack: i64,
    /// Time warp of the whole route: while it is 0, a stop put in can only add warp, which
    /// lets recreation bound an insertion's price by the windows alone.
    warp: i64,
    modified: u64,
    /// `gaps[p]`: what recreation needs to bound the price of a stop put in after position
    /// `p`, packed so that scanning every place of every route reads one small array.
    gaps: Vec<Gap>,
    /// `locs[p]`: the location at position `p`, the start at 0 and the end after the last.
    locs: Vec<u32>,
}

impl Route {
    /// Makes this route a copy of `o`, reusing its own buffers (a derived `clone_from` would
    /// allocate anew).
    fn copy_from(&mut self, o: &Route) {
        self.nodes.clone_from(&o.nodes);
        self.prefix.clone_from(&o.prefix);
        self.suffix.clone_from(&o.suffix);
        self.closing.clone_from(&o.closing);
        self.gaps.clone_from(&o.gaps);
        self.locs.clone_from(&o.locs);
        self.cost = o.cost;
        self.delay = o.delay;
        self.carried = o.carried;
        self.slack = o.slack;
        self.warp = o.warp;
        self.modified = o.modified;
    }
}

/// The place between position `p` and `p + 1` of a route, as recreation's bounds see it.
#[derive(Clone, Copy, Debug)]
struct Gap {
    /// Last location up to `p` (the start's when none), and first after it (the end's).
    before: u32,
    after: u32,
    /// Travel from `before` to `after`, saved by putting a stop between them.
    edge: i64,
    /// When the vehicle can leave `p` at the earliest.
    ready: i64,
    /// Latest start of the stops after `p` that adds no time warp.
    latest: i64,
    /// Whether the drive to `after` comes before `latest`. Not when only breaks follow: they
    /// are taken where the clinician stands, and the drive home comes after them.
    drive_first: bool,
}

impl Gap {
    /// The place between `head` (the route up to it) and `tail` (the stops after it, the end
    /// depot left out) of a route ending at `end_loc`. The one rule for every bound that
    /// prices a stop put in there, whether between two stops or in place of one.
    #[inline]
    fn between(head: &Seg, tail: &Seg, end_loc: u32, m: &Matrix) -> Gap {
        let after = if tail.first == NO_LOC {
            end_loc
        } else {
            tail.first
        };
        let edge = m.at(head.last, after);
        Gap {
            before: head.last,
            after,
            edge,
            ready: head.finish(),
            latest: tail.late,
            drive_first: tail.first != NO_LOC,
        }
    }

    /// Time warp that putting `client` here forces at the least, given the travel to it
    /// (`reach`) and from it (`leave`): the vehicle reaches it past its window, or leaves it
    /// too late for the stops after. Service starts no sooner than the vehicle arrives and the
    /// window opens, and a late arrival is warped back only to the window's close, so both
    /// parts count in full. A floor only while the route has no warp of its own.
    #[inline]
    fn forced_warp(&self, client: &Client, reach: i64, leave: i64) -> i64 {
        let arrival = self.ready + reach;
        let start = arrival.min(client.late).max(client.early);
        let leave = if self.drive_first { leave } else { 0 };
        (arrival - client.late).max(0) + (start + client.service + leave - self.latest).max(0)
    }
}

/// Best insertion positions of one client into one route, cheapest first.
type Top3 = [(i64, usize); 3];

/// The local search state, reused across calls to avoid allocation (see the module docs).
pub(crate) struct LocalSearch<'a> {
    inst: &'a Instance,
    pen: Penalties,
    routes: Vec<Route>,
    route_of: Vec<u32>,
    pos_of: Vec<u32>,
    counter: u64,
    last_tested: Vec<u64>,
    swapstar_tested: Vec<u64>,
    order: Vec<u32>,
    mid: Vec<u32>,
    /// Routes as they were before the move being applied, with their costs.
    saved: Vec<(usize, Vec<u32>, i64)>,
    /// Cached [`Self::top3`] answers per (client, route), with the counter when found.
    top_cache: Vec<(u64, Top3)>,
    /// Each routed client's segment in the window its route reaches it in (see
    /// [`Instance::seg_after`]); suffixes are built from these.
    seg: Vec<Seg>,
    /// When a time-limited search must hand back what it has: [`Self::run`] stops there. Every
    /// move it kept lowered the cost, so the routes it leaves are valid, only perhaps not a
    /// local optimum; without this, one descent of a large day could overrun the budget by
    /// seconds.
    deadline: Option<Instant>,
    /// When SWAP* passes stop, and passes of the moves after the second, even in a descent
    /// that has no deadline: see [`Self::descend_two_passes_then_until`].
    refine_by: Option<Instant>,
    /// Moves are judged with the lateness routes carry on when driven (see
    /// [`Self::judge_as_driven`]).
    driven: bool,
}

impl<'a> LocalSearch<'a> {
    /// A search over `inst` with no routes loaded.
    pub(crate) fn new(inst: &'a Instance) -> Self {
        let nv = inst.vehicles.len();
        let routes = (0..nv).map(|_| Route::default()).collect();
        Self {
            inst,
            pen: inst.initial_penalties(),
            routes,
            route_of: vec![NONE; inst.n()],
            pos_of: vec![0; inst.n()],
            counter: 0,
            last_tested: vec![0; inst.n()],
            swapstar_tested: vec![0; nv * nv],
            order: (0..inst.n() as u32).collect(),
            mid: Vec::new(),
            saved: Vec::new(),
            seg: inst.client_seg.clone(),
            top_cache: vec![(0, [(i64::MAX, 0); 3]); inst.n() * nv],
            deadline: None,
            refine_by: None,
            driven: false,
        }
    }

    /// Makes [`Self::run`] stop at `deadline` (none: run to a local optimum).
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
        self.refine_by = deadline;
    }

    /// Makes [`Self::run`] make at least two whole passes of its moves between
    /// stops whatever the time, and reach a local optimum of them if it can by
    /// `deadline` (a descent cut short in its first pass leaves stops unplaced
    /// and time warp that drops visits from the plan); after `deadline` it
    /// passes no more route pairs to SWAP* and starts no third pass. SWAP*
    /// and the later passes only refine what the first found, and on a day of
    /// many long rounds they cost seconds.
    pub(crate) fn descend_two_passes_then_until(&mut self, deadline: Option<Instant>) {
        self.deadline = None;
        self.refine_by = deadline;
    }

    /// Makes the check of each move made also weigh the lateness a route carries on when driven
    /// beyond its time warp ([`Instance::carried`], at the time-warp penalty), or stops it.
    /// Moves are still found by their constant-time prices; this only refuses those that lower
    /// the warp by making the stops after a late one later, a trade the plan would then drive.
    /// The genetic search turns it on for a second descent of a re-plan's warm start
    /// ([`super::genetic::Params::descend_driven_too`]), whose answer is what a 0 ms re-plan
    /// gives. Annealing and the other descents run without it: they cross late arrangements on
    /// the way to good ones (judged so throughout, a tight day's 1 s plan came out about 1 %
    /// dearer), and the planner ranks what they find as driven anyway.
    pub(crate) fn judge_as_driven(&mut self, on: bool) {
        self.driven = on;
        for r in 0..self.routes.len() {
            self.routes[r].carried = self.carried_penalty(r);
        }
    }

    /// Route `r`'s penalty for lateness carried on beyond its time warp, when moves are
    /// judged as driven (the route's nodes and `warp` up to date).
    fn carried_penalty(&self, r: usize) -> i64 {
        if !self.driven {
            return 0;
        }
        let route = &self.routes[r];
        self.pen.tw * self.inst.carried(r, &route.nodes, route.warp)
    }

    /// Whether the deadline, if any, has passed.
    fn out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Whether refining should stop: SWAP*, and passes after the second (see
    /// [`Self::descend_two_passes_then_until`]).
    fn refining_out_of_time(&self) -> bool {
        self.refine_by.is_some_and(|d| Instant::now() >= d)
    }

    /// Loads a solution (one client sequence per vehicle) to improve under `pen`.
    pub(crate) fn load(&mut self, routes: &[Vec<u32>], pen: Penalties) {
        self.pen = pen;
        // The counter only grows, so answers cached for an earlier solution are older than
        // every route of this one and are never mistaken for current.
        self.counter += 1;
        self.route_of.fill(NONE);
        self.last_tested.fill(0);
        self.swapstar_tested.fill(0);
        for (r, nodes) in routes.iter().enumerate() {
            self.routes[r].nodes.clear();
            self.routes[r].nodes.extend_from_slice(nodes);
            self.refresh(r);
        }
    }

    /// The current routes, one per vehicle.
    pub(crate) fn routes(&self) -> Vec<Vec<u32>> {
        self.routes.iter().map(|r| r.nodes.clone()).collect()
    }

    /// Recomputes route `r`'s segments, cost and client positions after a change.
    fn refresh(&mut self, r: usize) {
        let inst = self.inst;
        let m = &inst.matrix;
        let route = &mut self.routes[r];
        let len = route.nodes.len();
        route.prefix.clear();
        route.prefix.push(inst.start_seg[r]);
        route.locs.clear();
        route.locs.push(inst.vehicles[r].start_loc);
        route
            .locs
            .extend(route.nodes.iter().map(|&c| inst.clients[c as usize].loc));
        route.locs.push(inst.vehicles[r].end_loc);
        for p in 1..=len {
            let c = route.nodes[p - 1];
            self.route_of[c as usize] = r as u32;
            self.pos_of[c as usize] = p as u32;
            let seg = inst.seg_after(&route.prefix[p - 1], c);
            self.seg[c as usize] = seg;
            let s = route.prefix[p - 1].then(&seg, m);
            route.prefix.push(s);
        }
        route.suffix.clear();
        route.suffix.resize(len + 2, Seg::EMPTY);
        for p in (1..=len).rev() {
            let c = route.nodes[p - 1];
            route.suffix[p] = self.seg[c as usize].then(&route.suffix[p + 1], m);
        }
        route.closing.clear();
        route
            .closing
            .extend(route.suffix.iter().map(|s| s.then(&inst.end_seg[r], m)));
        let whole = route.prefix[len].then(&inst.end_seg[r], m);
        route.cost = inst.route_cost(r, &whole, len, &self.pen);
        route.delay = inst.delay_cost(r, &route.nodes);
        route.slack = if len == 0 && !inst.vehicles[r].returns_empty {
            0
        } else {
            route.cost - inst.weights.travel * whole.dist
        };
        route.warp = whole.tw;
        route.gaps.clear();
        let end_loc = inst.vehicles[r].end_loc;
        for p in 0..=len {
            let gap = Gap::between(&route.prefix[p], &route.suffix[p + 1], end_loc, m);
            route.gaps.push(gap);
        }
        route.modified = self.counter;
        self.routes[r].carried = self.carried_penalty(r);
    }

    /// The angles route `r`'s stops span around the centre (`None` when none has coordinates).
    /// Only SWAP* asks, once a pass, so it is measured then rather than after every change.
    fn sector(&self, r: usize) -> Option<Sector> {
        let inst = self.inst;
        let mut it = self.routes[r]
            .nodes
            .iter()
            .filter_map(|&c| inst.angle.get(c as usize).copied().flatten());
        it.next().map(|first| {
            let mut s = Sector {
                start: first,
                end: first,
            };
            it.for_each(|a| s.extend(a));
            s
        })
    }

    /// Location at position `p` of route `r`: the start at 0, the end at any position past
    /// the last stop (moves look two places ahead of a stop near the end).
    #[inline]
    fn loc_at(&self, r: usize, p: usize) -> u32 {
        let locs = &self.routes[r].locs;
        locs[p.min(locs.len() - 1)]
    }

    /// Travel between two locations (0 from or to a stop without one).
    #[inline]
    fn dm(&self, a: u32, b: u32) -> i64 {
        self.inst.matrix.at(a, b)
    }

    /// Whether a move whose travel changes by `travel_delta` cannot improve routes with `slack`
    /// of non-travel cost between them. Exact when every stop has a location; around a break
    /// (counted as no travel) it is a heuristic filter, which is safe because every applied move
    /// is re-checked.
    #[inline]
    fn hopeless(&self, travel_delta: i64, slack: i64) -> bool {
        self.inst.weights.travel * travel_delta >= slack
    }

    /// What the time warp alone costs, at the least, when `u` is put in after position `p`
    /// of route `r`, reached by `reach` and left by `leave` (see [`Gap::forced_warp`]); 0 when
    /// the route already warps. Relocations add it to their travel floor, so a move into a
    /// place too late (or too early for what follows) is not priced in full. The travel is
    /// the caller's, which has just priced it: beside a break it may be less than the gap's
    /// (the break passes its neighbours' locations through), which only lowers the floor.
    #[inline]
    fn warp_floor(&self, r: usize, p: usize, u: u32, reach: i64, leave: i64) -> i64 {
        let route = &self.routes[r];
        if route.warp != 0 {
            return 0;
        }
        let warp = route.gaps[p].forced_warp(&self.inst.clients[u as usize], reach, leave);
        self.pen.tw.saturating_mul(warp)
    }

    /// What the time warp alone costs, at the least, when `u` takes the place of the stop at
    /// position `p` of route `r` (as [`Self::warp_floor`] does for a place between two stops).
    #[inline]
    fn replace_floor(&self, r: usize, p: usize, u: u32, reach: i64, leave: i64) -> i64 {
        let route = &self.routes[r];
        if route.warp != 0 {
            return 0;
        }
        let gap = Gap::between(
            &route.prefix[p - 1],
            &route.suffix[p + 1],
            self.inst.vehicles[r].end_loc,
            &self.inst.matrix,
        );
        let warp = gap.forced_warp(&self.inst.clients[u as usize], reach, leave);
        self.pen.tw.saturating_mul(warp)
    }

    /// Cost of route `r` with positions `a..=b` replaced by `mid` (`a == b + 1` inserts).
    #[inline]
    fn window_cost(&self, r: usize, a: usize, b: usize, mid: &[u32]) -> i64 {
        let inst = self.inst;
        let m = &inst.matrix;
        let route = &self.routes[r];
        let mut s = route.prefix[a - 1];
        for &c in mid {
            s = s.then(&inst.seg_after(&s, c), m);
        }
        let s = self.close(&s, r, b + 1, r);
        let len = route.nodes.len() + mid.len() + a - 1 - b;
        inst.route_cost(r, &s, len, &self.pen)
    }

    /// `head` followed by route `r`'s stops from position `p` on, then vehicle `v`'s end depot:
    /// a whole route, ready to price. Uses the stored `closing` segment when `v` ends where `r`
    /// does. A tail of breaks alone has no location, and joining it to the end depot first
    /// would put the drive home before the breaks rather than after them, as the route is
    /// driven, so that tail is joined in the route's own order.
    #[inline(always)]
    fn close(&self, head: &Seg, r: usize, p: usize, v: usize) -> Seg {
        let inst = self.inst;
        let m = &inst.matrix;
        let route = &self.routes[r];
        let tail = &route.suffix[p];
        if (tail.n == 0 || tail.first != NO_LOC) && (r == v || inst.one_end) {
            head.then(&route.closing[p], m)
        } else {
            head.then(tail, m).then(&inst.end_seg[v], m)
        }
    }

    /// Replaces positions `a..=b` of route `r` by `mid` and refreshes it.
    fn splice(&mut self, r: usize, a: usize, b: usize, mid: &[u32]) {
        self.routes[r].nodes.splice(a - 1..b, mid.iter().copied());
        self.refresh(r);
    }

    /// Starts applying a move to `routes`, remembering them so it can be undone.
    fn begin(&mut self, routes: &[usize]) {
        self.counter += 1;
        self.saved.clear();
        for &r in routes {
            let route = &self.routes[r];
            self.saved.push((
                r,
                route.nodes.clone(),
                route.cost + route.delay + route.carried,
            ));
        }
    }

    /// Keeps the move just applied if the recomputed cost change (delays included) plus `extra`
    /// (the other stability costs, prizes) is negative, and undoes it otherwise. Prices from stored
    /// segments agree with the recomputed ones except around breaks, where travel may be placed on
    /// either side of the break; this check keeps every kept move a true improvement, so the search
    /// always ends.
    fn settle(&mut self, extra: i64) -> bool {
        let before: i64 = self.saved.iter().map(|s| s.2).sum();
        let after: i64 = self
            .saved
            .iter()
            .map(|s| {
                let route = &self.routes[s.0];
                route.cost + route.delay + route.carried
            })
            .sum();
        if after - before + extra < 0 {
            return true;
        }
        let saved = std::mem::take(&mut self.saved);
        for (r, _, _) in &saved {
            for &c in &self.routes[*r].nodes {
                self.route_of[c as usize] = NONE;
            }
        }
        for (r, nodes, _) in saved {
            self.routes[r].nodes = nodes;
            self.refresh(r);
        }
        false
    }

    fn reassign_all(&self, nodes: &[u32], v: usize) -> i64 {
        if self.inst.weights.reassign == 0 {
            return 0;
        }
        nodes.iter().map(|&c| self.inst.reassign(c, v)).sum()
    }

    fn all_allowed(&self, nodes: &[u32], v: usize) -> bool {
        self.inst.all_allowed || nodes.iter().all(|&c| self.inst.allowed(c, v))
    }

    /// Runs the search to a local optimum.
    pub(crate) fn run(&mut self, rng: &mut impl Rng) {
        self.insert_required(rng);
        let optional = self.inst.clients.iter().any(|c| c.prize.is_some());
        let mut loop_id = 0u32;
        loop {
            let mut improved = false;
            self.order.shuffle(rng);
            for k in 0..self.order.len() {
                // Checked every 32 stops: a clock read costs about what pricing one move does.
                if k % 32 == 0 && self.out_of_time() {
                    return;
                }
                let u = self.order[k];
                let last = self.last_tested[u as usize];
                self.last_tested[u as usize] = self.counter;
                if self.route_of[u as usize] == NONE {
                    // Where it may go and what it may take the place of are all in the
                    // rounds that may take it: while none of them has changed, it fits
                    // nowhere still. On an over-full day hundreds are left out, and each try
                    // prices every place in every round.
                    if optional
                        && (loop_id == 0 || self.any_round_changed_since(u, last))
                        && self.try_insert_optional(u)
                    {
                        improved = true;
                    }
                    continue;
                }
                let inst = self.inst;
                if inst.clients[u as usize].loc == NO_LOC {
                    if self.routes[self.route_of[u as usize] as usize].modified > last
                        && self.try_reposition(u)
                    {
                        improved = true;
                    }
                    continue;
                }
                for &v in &inst.neighbours[u as usize] {
                    let (ru, rv) = (self.route_of[u as usize], self.route_of[v as usize]);
                    if rv == NONE || ru == NONE {
                        continue;
                    }
                    if loop_id > 0
                        && self.routes[ru as usize]
                            .modified
                            .max(self.routes[rv as usize].modified)
                            <= last
                    {
                        continue;
                    }
                    if self.try_moves(u, v) {
                        improved = true;
                    }
                }
                if optional && self.try_remove_optional(u) {
                    improved = true;
                    continue;
                }
                if loop_id > 0 && self.try_empty_route(u) {
                    improved = true;
                }
            }
            if self.out_of_time() {
                return;
            }
            if self.swap_star_pass() {
                improved = true;
            }
            if !improved || (loop_id >= 1 && self.refining_out_of_time()) {
                break;
            }
            loop_id += 1;
        }
    }

    /// Cheapest position for `u` over all routes: (delta including stability cost, route, after).
    fn best_insertion(&self, u: u32) -> Option<(i64, usize, usize)> {
        let mut best: Option<(i64, usize, usize)> = None;
        let mut tried_empty = false;
        for r in 0..self.routes.len() {
            if !self.inst.allowed(u, r) {
                continue;
            }
            let len = self.routes[r].nodes.len();
            if len == 0 {
                if self.inst.homogeneous && tried_empty {
                    continue;
                }
                tried_empty = true;
            }
            let base = self.routes[r].cost - self.inst.reassign(u, r);
            for p in 0..=len {
                let d = self.window_cost(r, p + 1, p, &[u]) - base;
                if best.is_none_or(|b| d < b.0) {
                    best = Some((d, r, p));
                }
            }
        }
        best
    }

    /// Inserts every required client not yet in a route at its cheapest position.
    fn insert_required(&mut self, rng: &mut impl Rng) {
        let mut todo: Vec<u32> = (0..self.inst.n() as u32)
            .filter(|&c| {
                self.route_of[c as usize] == NONE && self.inst.clients[c as usize].prize.is_none()
            })
            .collect();
        todo.shuffle(rng);
        for u in todo {
            if let Some((_, r, p)) = self.best_insertion(u) {
                self.counter += 1;
                self.splice(r, p + 1, p, &[u]);
            }
        }
    }

    /// Whether any round that may take `u` has changed since the counter read `since`.
    fn any_round_changed_since(&self, u: u32, since: u64) -> bool {
        (0..self.routes.len()).any(|r| self.routes[r].modified > since && self.inst.allowed(u, r))
    }

    fn try_insert_optional(&mut self, u: u32) -> bool {
        let prize = self.inst.clients[u as usize].prize.unwrap_or(i64::MAX);
        match self.best_insertion(u) {
            Some((d, r, p)) if d < prize => {
                self.begin(&[r]);
                self.splice(r, p + 1, p, &[u]);
                self.settle(self.inst.reassign(u, r) - prize)
            }
            _ => self.try_exchange_optional(u, prize),
        }
    }

    /// Serves unrouted `u` in place of a routed optional neighbour worth less: when a round is
    /// full, the more valuable stop (say, the more overdue resident) should be the one served.
    fn try_exchange_optional(&mut self, u: u32, prize_u: i64) -> bool {
        let inst = self.inst;
        for &w in &inst.neighbours[u as usize] {
            let r = self.route_of[w as usize];
            let Some(prize_w) = inst.clients[w as usize].prize else {
                continue;
            };
            if r == NONE || prize_w >= prize_u || !inst.allowed(u, r as usize) {
                continue;
            }
            let r = r as usize;
            let i = self.pos_of[w as usize] as usize;
            let extra = inst.reassign(u, r) - inst.reassign(w, r) + prize_w - prize_u;
            if self.window_cost(r, i, i, &[u]) - self.routes[r].cost + extra < 0 {
                self.begin(&[r]);
                self.splice(r, i, i, &[u]);
                self.route_of[w as usize] = NONE;
                if self.settle(extra) {
                    return true;
                }
            }
        }
        false
    }

    fn try_remove_optional(&mut self, u: u32) -> bool {
        let Some(prize) = self.inst.clients[u as usize].prize else {
            return false;
        };
        let r = self.route_of[u as usize] as usize;
        let i = self.pos_of[u as usize] as usize;
        let d = self.window_cost(r, i, i, &[]) - self.routes[r].cost - self.inst.reassign(u, r);
        if d + prize < 0 {
            self.begin(&[r]);
            self.splice(r, i, i, &[]);
            self.route_of[u as usize] = NONE;
            self.settle(prize - self.inst.reassign(u, r))
        } else {
            false
        }
    }

    /// Moves `u` to its best position in its own route. Used for stops without a location
    /// (breaks): they are no one's neighbour by distance, so the granular moves rarely pair
    /// them with a stop of their own route, yet where a break falls shapes the whole day.
    fn try_reposition(&mut self, u: u32) -> bool {
        let r = self.route_of[u as usize] as usize;
        let i = self.pos_of[u as usize] as usize;
        let mut rest = std::mem::take(&mut self.mid);
        rest.clear();
        rest.extend(self.routes[r].nodes.iter().copied().filter(|&c| c != u));
        let c = self.routes[r].cost;
        let mut best: Option<(i64, usize)> = None;
        let mut mid: Vec<u32> = Vec::with_capacity(rest.len() + 1);
        for p in 0..=rest.len() {
            if p + 1 == i {
                continue;
            }
            // Positions are in the route without u; price the whole changed stretch.
            let (a, b) = if p + 1 < i { (p + 1, i) } else { (i, p + 1) };
            mid.clear();
            mid.extend_from_slice(&rest[a - 1..b - 1]);
            mid.insert(p + 1 - a, u);
            let d = self.window_cost(r, a, b, &mid) - c;
            if d < 0 && best.is_none_or(|x| d < x.0) {
                best = Some((d, p));
            }
        }
        let improved = if let Some((_, p)) = best {
            rest.insert(p, u);
            let len = rest.len();
            self.begin(&[r]);
            self.splice(r, 1, len, &rest);
            self.settle(0)
        } else {
            false
        };
        self.mid = rest;
        improved
    }

    fn try_empty_route(&mut self, u: u32) -> bool {
        let r1 = self.route_of[u as usize] as usize;
        let i = self.pos_of[u as usize] as usize;
        if self.routes[r1].nodes.len() == 1 && self.inst.homogeneous {
            return false;
        }
        let removal = self.window_cost(r1, i, i, &[]) - self.routes[r1].cost;
        for r in 0..self.routes.len() {
            if r == r1 || !self.routes[r].nodes.is_empty() || !self.inst.allowed(u, r) {
                continue;
            }
            let d = removal + self.window_cost(r, 1, 0, &[u]) - self.routes[r].cost
                + self.inst.reassign(u, r)
                - self.inst.reassign(u, r1);
            if d < 0 {
                self.begin(&[r1, r]);
                self.splice(r1, i, i, &[]);
                self.splice(r, 1, 0, &[u]);
                return self.settle(self.inst.reassign(u, r) - self.inst.reassign(u, r1));
            }
            if self.inst.homogeneous {
                break;
            }
        }
        false
    }

    /// Tries the moves between `u` and its neighbour `v`; applies the first that improves.
    fn try_moves(&mut self, u: u32, v: u32) -> bool {
        let r1 = self.route_of[u as usize] as usize;
        let r2 = self.route_of[v as usize] as usize;
        if r1 == r2 {
            self.try_intra(r1, u, v)
        } else {
            self.try_inter(r1, r2, u, v)
        }
    }

    fn try_inter(&mut self, r1: usize, r2: usize, u: u32, v: u32) -> bool {
        let inst = self.inst;
        let i = self.pos_of[u as usize] as usize;
        let j = self.pos_of[v as usize] as usize;
        let (len1, len2) = (self.routes[r1].nodes.len(), self.routes[r2].nodes.len());
        let (c1, c2) = (self.routes[r1].cost, self.routes[r2].cost);
        let x = (i < len1).then(|| self.routes[r1].nodes[i]);
        let y = (j < len2).then(|| self.routes[r2].nodes[j]);
        let ra = |c: u32, to: usize, from: usize| inst.reassign(c, to) - inst.reassign(c, from);
        let u_in_2 = inst.allowed(u, r2);
        let v_in_1 = inst.allowed(v, r1);
        let slack = self.routes[r1].slack + self.routes[r2].slack;
        let (lu, lv) = (self.loc_at(r1, i), self.loc_at(r2, j));
        let (p1, n1, nn1) = (
            self.loc_at(r1, i - 1),
            self.loc_at(r1, i + 1),
            self.loc_at(r1, i + 2),
        );
        let (p2, n2, nn2) = (
            self.loc_at(r2, j - 1),
            self.loc_at(r2, j + 1),
            self.loc_at(r2, j + 2),
        );
        let out_u = self.dm(p1, n1) - self.dm(p1, lu) - self.dm(lu, n1);

        if u_in_2 {
            let mut removal = None;
            // Relocate u after v, then before v.
            for (a, b) in [(j + 1, j), (j, j - 1)] {
                let (before, after) = if a > j { (lv, n2) } else { (p2, lv) };
                let (reach, leave) = (self.dm(before, lu), self.dm(lu, after));
                let travel = out_u + reach + leave - self.dm(before, after);
                if self.hopeless(travel, slack)
                    || self.hopeless(
                        travel,
                        slack.saturating_sub(self.warp_floor(r2, b, u, reach, leave)),
                    )
                {
                    continue;
                }
                let removal = *removal
                    .get_or_insert_with(|| self.window_cost(r1, i, i, &[]) - c1 + ra(u, r2, r1));
                let d = removal + self.window_cost(r2, a, b, &[u]) - c2;
                if d < 0 {
                    self.begin(&[r1, r2]);
                    self.splice(r1, i, i, &[]);
                    self.splice(r2, a, b, &[u]);
                    if self.settle(ra(u, r2, r1)) {
                        return true;
                    }
                }
            }
            // Relocate the pair (u, x) after v.
            if let Some(x) = x.filter(|&x| inst.allowed(x, r2))
                && !self.hopeless(
                    self.dm(p1, nn1) - self.dm(p1, lu) - self.dm(n1, nn1)
                        + self.dm(lv, lu)
                        + self.dm(n1, n2)
                        - self.dm(lv, n2),
                    slack,
                )
            {
                let d = self.window_cost(r1, i, i + 1, &[]) - c1
                    + self.window_cost(r2, j + 1, j, &[u, x])
                    - c2
                    + ra(u, r2, r1)
                    + ra(x, r2, r1);
                if d < 0 {
                    self.begin(&[r1, r2]);
                    self.splice(r1, i, i + 1, &[]);
                    self.splice(r2, j + 1, j, &[u, x]);
                    if self.settle(ra(u, r2, r1) + ra(x, r2, r1)) {
                        return true;
                    }
                }
            }
            // Relocate the run of stops at u's place (u and the three or more stops after it
            // at the same location: residents of one care home) after v, so a home's visit can
            // change hands in one move rather than resident by resident.
            if lu != NO_LOC && self.try_relocate_run(r1, i, r2, j, slack) {
                return true;
            }
            if v_in_1 {
                // Swap u and v.
                let travel = self.dm(p1, lv) + self.dm(lv, n1) - self.dm(p1, lu) - self.dm(lu, n1)
                    + self.dm(p2, lu)
                    + self.dm(lu, n2)
                    - self.dm(p2, lv)
                    - self.dm(lv, n2);
                // Each round's warp, at the least, with the other's stop in place of its own.
                let floors = || {
                    self.replace_floor(r2, j, u, self.dm(p2, lu), self.dm(lu, n2))
                        .saturating_add(self.replace_floor(
                            r1,
                            i,
                            v,
                            self.dm(p1, lv),
                            self.dm(lv, n1),
                        ))
                };
                let d = if self.hopeless(travel, slack)
                    || self.hopeless(travel, slack.saturating_sub(floors()))
                {
                    0
                } else {
                    self.window_cost(r1, i, i, &[v]) - c1 + self.window_cost(r2, j, j, &[u]) - c2
                };
                let d = d + ra(u, r2, r1) + ra(v, r1, r2);
                if d < 0 {
                    self.begin(&[r1, r2]);
                    self.splice(r1, i, i, &[v]);
                    self.splice(r2, j, j, &[u]);
                    if self.settle(ra(u, r2, r1) + ra(v, r1, r2)) {
                        return true;
                    }
                }
                if let Some(x) = x.filter(|&x| inst.allowed(x, r2)) {
                    // Swap (u, x) with v.
                    let in_ux = self.dm(lu, n1);
                    let travel = self.dm(p1, lv) + self.dm(lv, nn1)
                        - self.dm(p1, lu)
                        - in_ux
                        - self.dm(n1, nn1)
                        + self.dm(p2, lu)
                        + in_ux
                        + self.dm(n1, n2)
                        - self.dm(p2, lv)
                        - self.dm(lv, n2);
                    let d = if self.hopeless(travel, slack) {
                        0
                    } else {
                        self.window_cost(r1, i, i + 1, &[v]) - c1
                            + self.window_cost(r2, j, j, &[u, x])
                            - c2
                    };
                    let d = d + ra(u, r2, r1) + ra(x, r2, r1) + ra(v, r1, r2);
                    if d < 0 {
                        self.begin(&[r1, r2]);
                        self.splice(r1, i, i + 1, &[v]);
                        self.splice(r2, j, j, &[u, x]);
                        if self.settle(ra(u, r2, r1) + ra(x, r2, r1) + ra(v, r1, r2)) {
                            return true;
                        }
                    }
                    // Swap (u, x) with (v, y).
                    if let Some(y) = y.filter(|&y| inst.allowed(y, r1)) {
                        let travel =
                            self.dm(p1, lv) + self.dm(n2, nn1) - self.dm(p1, lu) - self.dm(n1, nn1)
                                + self.dm(p2, lu)
                                + self.dm(n1, nn2)
                                - self.dm(p2, lv)
                                - self.dm(n2, nn2);
                        let d = if self.hopeless(travel, slack) {
                            0
                        } else {
                            self.window_cost(r1, i, i + 1, &[v, y]) - c1
                                + self.window_cost(r2, j, j + 1, &[u, x])
                                - c2
                        };
                        let d = d + ra(u, r2, r1) + ra(x, r2, r1) + ra(v, r1, r2) + ra(y, r1, r2);
                        if d < 0 {
                            self.begin(&[r1, r2]);
                            self.splice(r1, i, i + 1, &[v, y]);
                            self.splice(r2, j, j + 1, &[u, x]);
                            let extra =
                                ra(u, r2, r1) + ra(x, r2, r1) + ra(v, r1, r2) + ra(y, r1, r2);
                            if self.settle(extra) {
                                return true;
                            }
                        }
                    }
                }
            }
        }
        // 2-opt*: u's head joins v's tail (arc u -> v), or v's head joins u's tail (v -> u).
        self.try_two_opt_star(r1, i, r2, j - 1) || self.try_two_opt_star(r2, j, r1, i - 1)
    }

    fn try_relocate_run(&mut self, r1: usize, i: usize, r2: usize, j: usize, slack: i64) -> bool {
        let inst = self.inst;
        let nodes = &self.routes[r1].nodes;
        let lu = inst.clients[nodes[i - 1] as usize].loc;
        let len = nodes[i - 1..]
            .iter()
            .take_while(|&&c| inst.clients[c as usize].loc == lu && inst.allowed(c, r2))
            .count();
        if len < 3 {
            return false;
        }
        let end = i + len - 1;
        let (p1, n1) = (self.loc_at(r1, i - 1), self.loc_at(r1, end + 1));
        let (lv, n2) = (self.loc_at(r2, j), self.loc_at(r2, j + 1));
        let travel =
            self.dm(p1, n1) - self.dm(p1, lu) - self.dm(lu, n1) + self.dm(lv, lu) + self.dm(lu, n2)
                - self.dm(lv, n2);
        if self.hopeless(travel, slack) {
            return false;
        }
        let mut run = std::mem::take(&mut self.mid);
        run.clear();
        run.extend_from_slice(&nodes[i - 1..end]);
        let stability: i64 = run
            .iter()
            .map(|&c| inst.reassign(c, r2) - inst.reassign(c, r1))
            .sum();
        let d = self.window_cost(r1, i, end, &[]) - self.routes[r1].cost
            + self.window_cost(r2, j + 1, j, &run)
            - self.routes[r2].cost
            + stability;
        let mut kept = false;
        if d < 0 {
            self.begin(&[r1, r2]);
            self.splice(r1, i, end, &[]);
            self.splice(r2, j + 1, j, &run);
            kept = self.settle(stability);
        }
        self.mid = run;
        kept
    }

    /// Route `ra` keeps positions `..=i` and takes `rb`'s tail after position `j`; `rb` keeps
    /// `..=j` and takes `ra`'s tail after `i`.
    fn try_two_opt_star(&mut self, ra: usize, i: usize, rb: usize, j: usize) -> bool {
        let inst = self.inst;
        let (a, b) = (&self.routes[ra], &self.routes[rb]);
        let (tail_a, tail_b) = (&a.nodes[i..], &b.nodes[j..]);
        if tail_a.is_empty() && tail_b.is_empty() {
            return false;
        }
        let (ai, ai1) = (self.loc_at(ra, i), self.loc_at(ra, i + 1));
        let (bj, bj1) = (self.loc_at(rb, j), self.loc_at(rb, j + 1));
        let mut travel = self.dm(ai, bj1) + self.dm(bj, ai1) - self.dm(ai, ai1) - self.dm(bj, bj1);
        let (end_a, end_b) = (
            self.inst.vehicles[ra].end_loc,
            self.inst.vehicles[rb].end_loc,
        );
        if end_a != end_b {
            // Each tail now ends at the other vehicle's end location.
            let last_a = self.loc_at(ra, a.nodes.len());
            let last_b = self.loc_at(rb, b.nodes.len());
            if !tail_b.is_empty() {
                travel += self.dm(last_b, end_a) - self.dm(last_b, end_b);
            }
            if !tail_a.is_empty() {
                travel += self.dm(last_a, end_b) - self.dm(last_a, end_a);
            }
        }
        if self.hopeless(travel, a.slack + b.slack) {
            return false;
        }
        let sa = self.close(&a.prefix[i], rb, j + 1, ra);
        let sb = self.close(&b.prefix[j], ra, i + 1, rb);
        let len_a = i + tail_b.len();
        let len_b = j + tail_a.len();
        let mut d = inst.route_cost(ra, &sa, len_a, &self.pen)
            + inst.route_cost(rb, &sb, len_b, &self.pen)
            - a.cost
            - b.cost;
        if d >= 0 {
            return false;
        }
        if !self.all_allowed(tail_b, ra) || !self.all_allowed(tail_a, rb) {
            return false;
        }
        let stability = self.reassign_all(tail_b, ra) + self.reassign_all(tail_a, rb)
            - self.reassign_all(tail_a, ra)
            - self.reassign_all(tail_b, rb);
        d += stability;
        if d >= 0 {
            return false;
        }
        let ta: Vec<u32> = tail_a.to_vec();
        let tb: Vec<u32> = tail_b.to_vec();
        self.begin(&[ra, rb]);
        let (la, lb) = (self.routes[ra].nodes.len(), self.routes[rb].nodes.len());
        self.routes[ra].nodes.splice(i..la, tb);
        self.routes[rb].nodes.splice(j..lb, ta);
        self.refresh(ra);
        self.refresh(rb);
        self.settle(stability)
    }

    fn try_intra(&mut self, r: usize, u: u32, v: u32) -> bool {
        let i = self.pos_of[u as usize] as usize;
        let j = self.pos_of[v as usize] as usize;
        let c = self.routes[r].cost;
        let slack = self.routes[r].slack;
        let mut mid = std::mem::take(&mut self.mid);
        let l = |p: usize| self.loc_at(r, p);
        let (lu, lv) = (l(i), l(j));
        let out_u = self.dm(l(i - 1), l(i + 1)) - self.dm(l(i - 1), lu) - self.dm(lu, l(i + 1));
        let nodes = &self.routes[r].nodes;
        // Candidate rewrites of the window between u and v, as (a, b, new contents).
        let mut found: Option<(usize, usize)> = None;
        // Relocate u after v.
        let travel = out_u + self.dm(lv, lu) + self.dm(lu, l(j + 1)) - self.dm(lv, l(j + 1));
        if j + 1 != i && j != i && !self.hopeless(travel, slack) {
            mid.clear();
            let (a, b) = if i < j {
                mid.extend_from_slice(&nodes[i..j]);
                mid.push(u);
                (i, j)
            } else {
                mid.push(u);
                mid.extend_from_slice(&nodes[j..i - 1]);
                (j + 1, i)
            };
            if self.window_cost(r, a, b, &mid) < c {
                found = Some((a, b));
            }
        }
        // Relocate u before v.
        let travel = out_u + self.dm(l(j - 1), lu) + self.dm(lu, lv) - self.dm(l(j - 1), lv);
        if found.is_none() && i + 1 != j && j != i && !self.hopeless(travel, slack) {
            mid.clear();
            let (a, b) = if i < j {
                mid.extend_from_slice(&nodes[i..j - 1]);
                mid.push(u);
                (i, j - 1)
            } else {
                mid.push(u);
                mid.extend_from_slice(&nodes[j - 1..i - 1]);
                (j, i)
            };
            if self.window_cost(r, a, b, &mid) < c {
                found = Some((a, b));
            }
        }
        // Swap u and v.
        let (a, b) = (i.min(j), i.max(j));
        let (la, lb) = (l(a), l(b));
        let travel = if b == a + 1 {
            self.dm(l(a - 1), lb) + self.dm(lb, la) + self.dm(la, l(b + 1))
                - self.dm(l(a - 1), la)
                - self.dm(la, lb)
                - self.dm(lb, l(b + 1))
        } else {
            self.dm(l(a - 1), lb) + self.dm(lb, l(a + 1))
                - self.dm(l(a - 1), la)
                - self.dm(la, l(a + 1))
                + self.dm(l(b - 1), la)
                + self.dm(la, l(b + 1))
                - self.dm(l(b - 1), lb)
                - self.dm(lb, l(b + 1))
        };
        if found.is_none() && !self.hopeless(travel, slack) {
            mid.clear();
            mid.extend_from_slice(&nodes[a - 1..b]);
            let last = mid.len() - 1;
            mid.swap(0, last);
            if self.window_cost(r, a, b, &mid) < c {
                found = Some((a, b));
            }
        }
        // 2-opt: reverse the stretch after u up to v, so v follows u.
        let travel = self.dm(lu, lv) + self.dm(l(i + 1), l(j + 1))
            - self.dm(lu, l(i + 1))
            - self.dm(lv, l(j + 1));
        if found.is_none() && i + 1 < j && !self.hopeless(travel, slack) {
            mid.clear();
            mid.extend(nodes[i..j].iter().rev());
            if self.window_cost(r, i + 1, j, &mid) < c {
                found = Some((i + 1, j));
            }
        }
        let improved = if let Some((a, b)) = found {
            self.begin(&[r]);
            self.splice(r, a, b, &mid);
            self.settle(0)
        } else {
            false
        };
        self.mid = mid;
        improved
    }

    /// One pass of SWAP* over route pairs whose sectors overlap and that changed since they
    /// were last compared.
    fn swap_star_pass(&mut self) -> bool {
        let nv = self.routes.len();
        let mut improved = false;
        let mut sectors: Vec<Option<Sector>> = (0..nv).map(|r| self.sector(r)).collect();
        for r1 in 0..nv {
            if self.refining_out_of_time() {
                break;
            }
            for r2 in r1 + 1..nv {
                let (a, b) = (&self.routes[r1], &self.routes[r2]);
                if a.nodes.is_empty() || b.nodes.is_empty() {
                    continue;
                }
                if a.modified.max(b.modified) <= self.swapstar_tested[r1 * nv + r2] {
                    continue;
                }
                if let (Some(sa), Some(sb)) = (sectors[r1], sectors[r2])
                    && !sa.overlaps(&sb)
                {
                    continue;
                }
                self.swapstar_tested[r1 * nv + r2] = self.counter;
                if self.swap_star(r1, r2) {
                    improved = true;
                    sectors[r1] = self.sector(r1);
                    sectors[r2] = self.sector(r2);
                }
            }
        }
        improved
    }

    /// The three cheapest insertions of `u` into route `r`, from the cache while `r` is
    /// unchanged since they were found (SWAP* asks for the same ones pass after pass).
    fn top3(&mut self, u: u32, r: usize) -> Top3 {
        let key = u as usize * self.routes.len() + r;
        let (stamp, cached) = self.top_cache[key];
        if stamp >= self.routes[r].modified {
            return cached;
        }
        let top = self.find_top3(u, r);
        self.top_cache[key] = (self.counter, top);
        top
    }

    fn find_top3(&self, u: u32, r: usize) -> Top3 {
        let mut top = [(i64::MAX, 0usize); 3];
        let base = self.routes[r].cost;
        for p in 0..=self.routes[r].nodes.len() {
            let d = self.window_cost(r, p + 1, p, &[u]) - base;
            if d < top[2].0 {
                top[2] = (d, p);
                if top[2].0 < top[1].0 {
                    top.swap(1, 2);
                    if top[1].0 < top[0].0 {
                        top.swap(0, 1);
                    }
                }
            }
        }
        top
    }

    /// Best way to put `w` into route `r` once the client at position `i` has left: in its
    /// place, or at one of `w`'s three best positions not next to it. Returns (delta, after).
    /// The place left is priced in full only when the travel it would add, less what penalties
    /// the route could shed, might beat the best of the three.
    fn best_with_removal(
        &self,
        r: usize,
        i: usize,
        w: u32,
        removal: i64,
        top: &Top3,
    ) -> (i64, usize) {
        let mut best = (i64::MAX, i - 1);
        for &(d, p) in top {
            if d != i64::MAX && p != i - 1 && p != i && removal + d < best.0 {
                best = (removal + d, p);
            }
        }
        let route = &self.routes[r];
        let before = route.prefix[i - 1].last;
        let mut after = route.suffix[i + 1].first;
        if after == NO_LOC {
            after = self.inst.vehicles[r].end_loc;
        }
        let through = |l: u32| {
            if l == NO_LOC {
                self.dm(before, after)
            } else {
                self.dm(before, l) + self.dm(l, after)
            }
        };
        let u = route.nodes[i - 1];
        let travel =
            through(self.inst.clients[w as usize].loc) - through(self.inst.clients[u as usize].loc);
        if self.inst.weights.travel * travel - route.slack < best.0 {
            let d = self.window_cost(r, i, i, &[w]) - route.cost;
            if d < best.0 {
                best = (d, i - 1);
            }
        }
        best
    }

    /// SWAP* (Vidal 2022): exchange one client of each route, each going to its best position
    /// in the other route rather than into the other's place.
    fn swap_star(&mut self, r1: usize, r2: usize) -> bool {
        let inst = self.inst;
        let n1 = self.routes[r1].nodes.clone();
        let n2 = self.routes[r2].nodes.clone();
        let top_in_2: Vec<Top3> = n1.iter().map(|&u| self.top3(u, r2)).collect();
        let top_in_1: Vec<Top3> = n2.iter().map(|&v| self.top3(v, r1)).collect();
        let rem1: Vec<i64> = (1..=n1.len())
            .map(|i| self.window_cost(r1, i, i, &[]) - self.routes[r1].cost)
            .collect();
        let rem2: Vec<i64> = (1..=n2.len())
            .map(|j| self.window_cost(r2, j, j, &[]) - self.routes[r2].cost)
            .collect();
        let mut best = (0i64, 0usize, 0usize, 0usize, 0usize);
        for (ii, &u) in n1.iter().enumerate() {
            if !inst.allowed(u, r2) {
                continue;
            }
            for (jj, &v) in n2.iter().enumerate() {
                if !inst.allowed(v, r1) {
                    continue;
                }
                let stab = inst.reassign(u, r2) - inst.reassign(u, r1) + inst.reassign(v, r1)
                    - inst.reassign(v, r2);
                let (dv, pv) = self.best_with_removal(r1, ii + 1, v, rem1[ii], &top_in_1[jj]);
                let (du, pu) = self.best_with_removal(r2, jj + 1, u, rem2[jj], &top_in_2[ii]);
                let d = dv + du + stab;
                if d < best.0 {
                    best = (d, ii, jj, pv, pu);
                }
            }
        }
        if best.0 >= 0 {
            return false;
        }
        let (_, ii, jj, pv, pu) = best;
        let build = |nodes: &[u32], out_pos: usize, w: u32, after: usize| -> Vec<u32> {
            let mut out = Vec::with_capacity(nodes.len());
            for p in 0..=nodes.len() {
                if p == after {
                    out.push(w);
                }
                if p < nodes.len() && p != out_pos {
                    out.push(nodes[p]);
                }
            }
            out
        };
        let new1 = build(&n1, ii, n2[jj], pv);
        let new2 = build(&n2, jj, n1[ii], pu);
        let s1 = super::individual::Individual::route_seg(inst, r1, &new1);
        let s2 = super::individual::Individual::route_seg(inst, r2, &new2);
        let d = inst.route_cost(r1, &s1, new1.len(), &self.pen)
            + inst.route_cost(r2, &s2, new2.len(), &self.pen)
            - self.routes[r1].cost
            - self.routes[r2].cost
            + inst.reassign(n1[ii], r2)
            - inst.reassign(n1[ii], r1)
            + inst.reassign(n2[jj], r1)
            - inst.reassign(n2[jj], r2);
        if d >= 0 {
            return false;
        }
        let stability = inst.reassign(n1[ii], r2) - inst.reassign(n1[ii], r1)
            + inst.reassign(n2[jj], r1)
            - inst.reassign(n2[jj], r2);
        self.begin(&[r1, r2]);
        self.routes[r1].nodes = new1;
        self.routes[r2].nodes = new2;
        self.refresh(r1);
        self.refresh(r2);
        self.settle(stability)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;
    use crate::engine::instance::{Vehicle, Weights};

    /// One place (no travel), a clinician free from 30, and four stops: `x` (0) takes 60 and is
    /// due by 0, so it is late whatever; `y1`..`y3` (1-3) take 10 each and are due by 70, 80
    /// and 90. Seen first, `x` is 30 late as time warp, which hands the 30 back, so the `y`s
    /// after it look on time: driven, each of them is 20 late too (90 in all). Seen last, `x`
    /// is 60 late and nobody else is.
    pub(crate) fn cascade() -> Instance {
        let stop = |service, late| ruin::tests::stop(0, service, 0, late);
        let vehicle = Vehicle {
            start_loc: 0,
            end_loc: 0,
            early: 30,
            late: 10_000,
            shift_end: 10_000,
            capacity: 10,
            returns_empty: false,
        };
        let weights = Weights {
            lateness: 1_000,
            ..Weights::TRAVEL_ONLY
        };
        Instance::new(
            Matrix::new(1, vec![0]),
            vec![stop(60, 0), stop(10, 70), stop(10, 80), stop(10, 90)],
            vec![vehicle],
            None,
            weights,
            None,
            10,
        )
    }

    #[test]
    fn lateness_carried_on_is_what_driving_adds_to_the_time_warp() {
        let inst = cascade();
        assert_eq!(inst.carried(0, &[0, 1, 2, 3], 30), 60);
        assert_eq!(inst.carried(0, &[1, 2, 3, 0], 60), 0);
    }

    #[test]
    fn a_descent_judged_as_driven_keeps_a_late_stop_from_making_the_rest_late() {
        // By time warp alone, moving `x` first is worth 30; driven it makes the day 30 later.
        let inst = cascade();
        let descend = |driven| {
            let mut ls = LocalSearch::new(&inst);
            ls.judge_as_driven(driven);
            ls.load(&[vec![1, 2, 3, 0]], inst.initial_penalties());
            ls.run(&mut SmallRng::seed_from_u64(1));
            ls.routes().concat()
        };
        assert_eq!(descend(false)[0], 0, "time warp alone puts x first");
        assert_eq!(descend(true), vec![1, 2, 3, 0]);
    }
}
