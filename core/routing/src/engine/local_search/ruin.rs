//! Ruin and recreate under simulated annealing (after Christiaens and Vanden Berghe's slack
//! induction by string removals, 2020): remove a few strings of consecutive stops around one
//! place, put every removed stop back at its cheapest position (skipping a few positions at
//! random, so recreation is not always greedy), and keep the result by an annealing rule.
//!
//! The stops put back are then smoothed by one pass of local search around them. One
//! iteration costs a few thousand constant-time prices, against the milliseconds of a full
//! descent, so in the first tenth of a second it improves a solution many times more
//! often than the genetic search can. The genetic search uses it to build its first solutions.

use std::time::Instant;

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};

use super::{LocalSearch, NONE, Route};
use crate::engine::instance::Penalties;
use crate::engine::segment::NO_LOC;

/// How many of a stop's nearest neighbours lend their places beside them as a first guess
/// at its cheapest place, before every place is bounded against the best so far.
const SEED_PLACES: usize = 2;
/// Average number of stops one ruin removes.
const MEAN_REMOVED: f64 = 10.0;
/// Longest string removed from one route.
const MAX_STRING: f64 = 10.0;
/// Chance of passing over a position while looking for the cheapest insertion.
const BLINK: f64 = 0.01;
/// Starting and final temperatures, in typical edges.
const HOT: f64 = 10.0;
const COLD: f64 = 0.1;

/// What a required stop left out costs while annealing: more than any route could.
const ABSENT_REQUIRED: i64 = 1 << 50;

/// Fewest and most stops a ruin of related stops removes (on average [`MEAN_REMOVED`]).
const RELATED_FEWEST: usize = 4;
const RELATED_MOST: usize = 16;

/// When annealing stops (at a deadline, after a number of ruins, or whichever comes first),
/// and how it ruins.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schedule {
    pub deadline: Option<Instant>,
    pub iterations: u64,
    /// Share of ruins that remove stops related in place and time wherever they are (see
    /// [`LocalSearch::ruin_related`]) rather than strings around one place.
    pub related: f64,
}

/// The routes one iteration has changed, each as it was before its first change: kept whole,
/// segments included, so a rejected ruin is undone by copying the routes back rather than by
/// walking each again (most ruins late in the cooling are rejected). The copies reuse their
/// buffers from one iteration to the next.
struct Undo {
    /// Whether route `r` has been changed, and `routes[r]` holds it as it was.
    kept: Vec<bool>,
    routes: Vec<Route>,
}

impl Undo {
    /// Nothing remembered yet, for a solution of `routes` routes.
    fn new(routes: usize) -> Self {
        Self {
            kept: vec![false; routes],
            routes: vec![Route::default(); routes],
        }
    }
}

/// How many places recreation prices before it passes over one. Each place is passed over
/// with chance [`BLINK`], independently, so the count is geometric: drawn once a blink instead
/// of a random number drawn at every place (a hundred times fewer draws).
fn places_before_blink(rng: &mut impl Rng) -> u64 {
    let draw: f64 = rng.random();
    ((1.0 - draw).ln() / (1.0 - BLINK).ln()) as u64
}

impl LocalSearch<'_> {
    /// Cost of the loaded solution as annealing compares them: the routes under the current
    /// penalties, stability costs, and the prize of every optional stop left out. Required
    /// stops are always put back where a vehicle may take them, so [`ABSENT_REQUIRED`] only
    /// makes the empty start worse than any solution that serves them.
    fn total(&self) -> i64 {
        let inst = self.inst;
        let mut t: i64 = self.routes.iter().map(|r| r.cost + r.delay).sum();
        for (c, client) in inst.clients.iter().enumerate() {
            let r = self.route_of[c];
            if r == NONE {
                t += client.prize.unwrap_or(ABSENT_REQUIRED);
            } else if inst.weights.reassign != 0 {
                t += inst.reassign(c as u32, r as usize);
            }
        }
        t
    }

    /// Remembers route `r` before its first change in this iteration.
    fn touch(&self, r: usize, saved: &mut Undo) {
        if !saved.kept[r] {
            saved.kept[r] = true;
            saved.routes[r].copy_from(&self.routes[r]);
        }
    }

    /// Removes stops for recreation to put back: strings of consecutive stops from routes
    /// near a random stop or, in a share `related` of ruins, stops related to it wherever they
    /// are. Adds them to `removed`.
    fn ruin(&mut self, rng: &mut impl Rng, saved: &mut Undo, removed: &mut Vec<u32>, related: f64) {
        if related > 0.0 && rng.random::<f64>() < related {
            self.ruin_related(rng, saved, removed);
        } else {
            self.ruin_strings(rng, saved, removed);
        }
    }

    /// Removes strings of consecutive stops from routes near a random stop.
    fn ruin_strings(&mut self, rng: &mut impl Rng, saved: &mut Undo, removed: &mut Vec<u32>) {
        let inst = self.inst;
        let routed: Vec<u32> = (0..inst.n() as u32)
            .filter(|&c| self.route_of[c as usize] != NONE)
            .collect();
        let Some(&seed) = routed.as_slice().choose(rng) else {
            return;
        };
        let used = self.routes.iter().filter(|r| !r.nodes.is_empty()).count();
        let mean_len = routed.len() as f64 / used.max(1) as f64;
        let max_string = MAX_STRING.min(mean_len);
        let max_strings = (4.0 * MEAN_REMOVED / (1.0 + max_string) - 1.0).max(1.0);
        let strings = rng.random_range(1.0..max_strings + 1.0) as usize;
        let mut ruined = Vec::new();
        for &c in std::iter::once(&seed).chain(&inst.neighbours[seed as usize]) {
            if ruined.len() >= strings {
                break;
            }
            let r = self.route_of[c as usize];
            if r == NONE || ruined.contains(&r) {
                continue;
            }
            let r = r as usize;
            ruined.push(r as u32);
            let len = self.routes[r].nodes.len();
            let most = (max_string.min(len as f64)) as usize;
            let l = rng.random_range(1..=most.max(1));
            let i = self.pos_of[c as usize] as usize;
            let first = rng.random_range(i.saturating_sub(l - 1).max(1)..=i.min(len + 1 - l));
            self.touch(r, saved);
            let gone: Vec<u32> = self.routes[r]
                .nodes
                .drain(first - 1..first - 1 + l)
                .collect();
            for &g in &gone {
                self.route_of[g as usize] = NONE;
            }
            removed.extend(gone);
            self.refresh(r);
        }
    }

    /// Removes the stops most related to a random one, whichever routes they are in: near it
    /// and served near the time it is (a second apart in time counts as a second's drive, each
    /// score scaled by a random factor up to one and a half, so the choice varies). Strings
    /// take stops that follow each other in a round; these take what several clinicians do
    /// around one place at one time, which recreation may then deal out again another way. On
    /// a day, where skills and shifts decide which clinician can take an area, this is what
    /// string removal alone rarely reaches: with three ruins in ten of this kind, the network
    /// day's plans after 2 850 ruins came to 1.020 and 1.022 of the 10 s plan on average (two
    /// hundred seeds) against 1.028. Breaks stay where they are.
    fn ruin_related(&mut self, rng: &mut impl Rng, saved: &mut Undo, removed: &mut Vec<u32>) {
        let inst = self.inst;
        let routed: Vec<u32> = (0..inst.n() as u32)
            .filter(|&c| {
                self.route_of[c as usize] != NONE && inst.clients[c as usize].loc != NO_LOC
            })
            .collect();
        let Some(&seed) = routed.as_slice().choose(rng) else {
            return;
        };
        let start = |c: u32| {
            let route = &self.routes[self.route_of[c as usize] as usize];
            route.prefix[self.pos_of[c as usize] as usize].finish()
                - inst.clients[c as usize].service
        };
        let (at, when) = (inst.clients[seed as usize].loc, start(seed));
        let mut scored: Vec<(f64, u32)> = routed
            .iter()
            .map(|&c| {
                let apart =
                    inst.matrix.at(at, inst.clients[c as usize].loc) + (start(c) - when).abs();
                (apart as f64 * (1.0 + 0.5 * rng.random::<f64>()), c)
            })
            .collect();
        let k = rng
            .random_range(RELATED_FEWEST..=RELATED_MOST)
            .min(scored.len());
        if k < scored.len() {
            scored.select_nth_unstable_by(k, |a, b| a.0.total_cmp(&b.0));
        }
        // Most related first: recreation may put them back in this order (see `recreate`).
        scored[..k].sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        for &(_, c) in &scored[..k] {
            let r = self.route_of[c as usize] as usize;
            self.touch(r, saved);
            self.route_of[c as usize] = NONE;
            removed.push(c);
        }
        for r in 0..self.routes.len() {
            if saved.kept[r] {
                let route_of = &self.route_of;
                self.routes[r]
                    .nodes
                    .retain(|&c| route_of[c as usize] != NONE);
                self.refresh(r);
            }
        }
    }

    /// Puts every stop of `removed` back at its cheapest position (an optional stop only when
    /// that costs less than leaving it out). A stop left out passes over its twins that are
    /// worth no more, until the next stop placed changes what places cost: on a day with
    /// more care-home residents due than the pharmacists can see, every ruin offers each
    /// deferred resident a place, and this prices a few of each home's instead of all of them
    /// (on the demo network's day, 2.6 times as many ruins a second).
    fn recreate(&mut self, rng: &mut impl Rng, saved: &mut Undo, removed: &mut [u32]) {
        let inst = self.inst;
        match rng.random_range(0..10) {
            0..4 => removed.shuffle(rng),
            4..7 => removed.sort_by_key(|&c| -inst.clients[c as usize].demand),
            7..9 => removed.sort_by_key(|&c| {
                let cl = &inst.clients[c as usize];
                cl.late - cl.early
            }),
            _ => removed.sort_by_key(|&c| inst.clients[c as usize].early),
        }
        // Twins of stops just left out (see `Instance::twin`), with the prize refused.
        let mut refused: Vec<(u32, i64)> = Vec::new();
        for &u in removed.iter() {
            let twin = inst.twin[u as usize];
            let prize = inst.clients[u as usize].prize.unwrap_or(i64::MAX);
            if refused.iter().any(|&(t, p)| t == twin && p >= prize) {
                continue;
            }
            if self.insert_cheapest(rng, saved, u) {
                refused.clear();
            } else {
                refused.push((twin, prize));
            }
        }
    }

    /// Puts `u` at its cheapest position, skipping a few positions at random; an optional stop
    /// only when that costs less than leaving it out. False if `u` stays out.
    fn insert_cheapest(&mut self, rng: &mut impl Rng, saved: &mut Undo, u: u32) -> bool {
        let inst = self.inst;
        let mut left = places_before_blink(rng);
        let blink = || {
            if left == 0 {
                left = places_before_blink(rng);
                true
            } else {
                left -= 1;
                false
            }
        };
        let Some((d, r, p)) = self.cheapest_place(u, blink) else {
            return false;
        };
        if inst.clients[u as usize]
            .prize
            .is_some_and(|prize| d >= prize)
        {
            return false;
        }
        self.touch(r, saved);
        self.routes[r].nodes.insert(p, u);
        self.refresh(r);
        true
    }

    /// The cheapest place for `u` among those `skip` does not pass over, as (price, route,
    /// position it follows). Every place is bounded from below before it is priced: adding a
    /// stop never shortens the day or saves a penalty, so the travel it adds, and on a route
    /// with no time warp the warp its window forces, are a floor on its price, and places
    /// whose floor cannot beat the best so far are passed over (on Gehring-Homberger's
    /// 200-client instances, a quarter more ruins a second than with the travel alone; a
    /// first guess from the neighbours' places and the tighter warp floor take a tenth off
    /// the instructions of a network day's annealing).
    fn cheapest_place(
        &self,
        u: u32,
        mut skip: impl FnMut() -> bool,
    ) -> Option<(i64, usize, usize)> {
        let inst = self.inst;
        let client = &inst.clients[u as usize];
        let lu = client.loc;
        let m = &inst.matrix;
        let from = |a: u32| m.at_into(a, lu);
        let to = |b: u32| m.at(lu, b);
        // The places either side of its nearest neighbours are priced first: the cheapest
        // place is usually among them, and a good price early lets the bounds below pass
        // over most of the others.
        let mut best: Option<(i64, usize, usize)> = None;
        // The places priced here, which the scan of every place below passes over.
        let mut seeded = [(usize::MAX, usize::MAX); 2 * SEED_PLACES];
        let mut n_seeded = 0;
        for &v in inst.neighbours[u as usize].iter().take(SEED_PLACES) {
            let r = self.route_of[v as usize];
            if r == NONE || !inst.allowed(u, r as usize) {
                continue;
            }
            let r = r as usize;
            let base = self.routes[r].cost - inst.reassign(u, r);
            let at = self.pos_of[v as usize] as usize;
            for p in [at - 1, at] {
                if skip() {
                    continue;
                }
                if seeded[..n_seeded].contains(&(r, p)) {
                    continue;
                }
                seeded[n_seeded] = (r, p);
                n_seeded += 1;
                let d = self.window_cost(r, p + 1, p, &[u]) - base;
                if best.is_none_or(|b| d < b.0) {
                    best = Some((d, r, p));
                }
            }
        }
        let mut tried_empty = false;
        for r in 0..self.routes.len() {
            if !inst.allowed(u, r) {
                continue;
            }
            let len = self.routes[r].nodes.len();
            if len == 0 {
                if inst.homogeneous && tried_empty {
                    continue;
                }
                tried_empty = true;
            }
            let route = &self.routes[r];
            let reassign = inst.reassign(u, r);
            let base = route.cost - reassign;
            // The least any place here can cost beyond its warp, detours that save travel
            // (where a supplied matrix allows them) included.
            let least = reassign - inst.weights.travel * m.longest();
            // On a route with no time warp, `u` adds at least the warp of reaching it after its
            // window and of leaving it too late for the stops after it.
            let on_time = route.warp == 0;
            // The places after which the stops that follow must start too soon for `u` to be
            // served first come first (how late the rest may start only grows along a round
            // with no warp); when the warp that forces outweighs the best so far, none of
            // them is looked at.
            let first = match best {
                Some(b) if on_time => {
                    let done = client.early + client.service;
                    route.gaps.partition_point(|g| {
                        done > g.latest
                            && self
                                .pen
                                .tw
                                .saturating_mul(done - g.latest)
                                .saturating_add(least)
                                >= b.0
                    })
                }
                _ => 0,
            };
            for (p, gap) in route.gaps.iter().enumerate().skip(first) {
                if skip() {
                    continue;
                }
                if let Some(b) = best {
                    let (reach, leave) = (from(gap.before), to(gap.after));
                    let mut floor = inst.weights.travel * (reach + leave - gap.edge) + reassign;
                    if on_time {
                        // Later places are left later still: once leaving here at once is
                        // too late to beat the best, whatever the detour, no later one can.
                        let too_late = gap.ready - client.late;
                        if too_late > 0
                            && self.pen.tw.saturating_mul(too_late).saturating_add(least) >= b.0
                        {
                            break;
                        }
                        floor = floor.saturating_add(
                            self.pen
                                .tw
                                .saturating_mul(gap.forced_warp(client, reach, leave)),
                        );
                    }
                    if floor >= b.0 || seeded[..n_seeded].contains(&(r, p)) {
                        continue;
                    }
                }
                let d = self.window_cost(r, p + 1, p, &[u]) - base;
                if best.is_none_or(|b| d < b.0) {
                    best = Some((d, r, p));
                }
            }
        }
        best
    }

    /// One pass of the local search's moves between each stop of `moved` (those just put
    /// back) and its neighbours, applying every improvement found. Recreation places each
    /// stop well on its own but leaves the seams around it rough; smoothing just those costs
    /// a small share of a full descent and makes each ruin count for far more (after the
    /// localised search of Accorsi and Vigo's FILO, 2021).
    fn descend_around(&mut self, moved: &[u32], saved: &mut Undo) {
        let inst = self.inst;
        for &u in moved {
            if inst.clients[u as usize].loc == NO_LOC {
                continue;
            }
            for &v in &inst.neighbours[u as usize] {
                let (ru, rv) = (self.route_of[u as usize], self.route_of[v as usize]);
                if ru == NONE || rv == NONE {
                    continue;
                }
                // A move between u and v changes only their two routes.
                self.touch(ru as usize, saved);
                self.touch(rv as usize, saved);
                self.try_moves(u, v);
            }
        }
    }

    /// Undoes every change since the routes in `saved` were remembered, by putting the copies
    /// back: their segments are those of the routes as they were, so nothing is walked again.
    fn restore(&mut self, saved: &mut Undo) {
        for (r, &kept) in saved.kept.iter().enumerate() {
            if kept {
                for &c in &self.routes[r].nodes {
                    self.route_of[c as usize] = NONE;
                }
            }
        }
        for (r, kept) in saved.kept.iter_mut().enumerate() {
            if std::mem::take(kept) {
                std::mem::swap(&mut self.routes[r], &mut saved.routes[r]);
                let route = &mut self.routes[r];
                for (p, &c) in route.nodes.iter().enumerate() {
                    self.route_of[c as usize] = r as u32;
                    self.pos_of[c as usize] = p as u32 + 1;
                }
                // Changed since answers about it were cached (see `top_cache`).
                route.modified = self.counter;
            }
        }
    }

    /// Anneals the loaded solution under `pen` by ruin and recreate until `schedule` ends, and
    /// returns the best solution met (one client sequence per vehicle). Optional stops left out
    /// of the loaded solution are offered a place at every recreation.
    pub(crate) fn anneal(
        &mut self,
        pen: Penalties,
        schedule: Schedule,
        rng: &mut impl Rng,
    ) -> Vec<Vec<u32>> {
        self.pen = pen;
        for r in 0..self.routes.len() {
            self.refresh(r);
        }
        let edge = self.inst.typical_edge() as f64;
        let (hot, cold) = (HOT * edge, COLD * edge);
        let start = Instant::now();
        let span = schedule
            .deadline
            .map(|d| d.saturating_duration_since(start));
        let mut saved = Undo::new(self.routes.len());
        let mut removed = Vec::new();
        let mut left_out = Vec::new();
        let mut current = self.total();
        let mut best = (current, self.routes());
        for it in 0..schedule.iterations {
            let mut progress = it as f64 / schedule.iterations as f64;
            if let Some(span) = span {
                let t = start.elapsed().as_secs_f64() / span.as_secs_f64().max(1e-9);
                if t >= 1.0 {
                    break;
                }
                progress = progress.max(t);
            }
            let temperature = hot * (cold / hot).powf(progress);
            self.counter += 1;
            // Optional stops left out are offered a place again after the ruined ones.
            left_out.clear();
            left_out
                .extend((0..self.inst.n() as u32).filter(|&c| self.route_of[c as usize] == NONE));
            removed.clear();
            self.ruin(rng, &mut saved, &mut removed, schedule.related);
            removed.extend_from_slice(&left_out);
            self.recreate(rng, &mut saved, &mut removed);
            self.descend_around(&removed, &mut saved);
            let cost = self.total();
            let threshold = current as f64 - temperature * rng.random::<f64>().ln();
            if (cost as f64) < threshold {
                current = cost;
                saved.kept.fill(false);
                if cost < best.0 {
                    best = (cost, self.routes());
                }
            } else {
                self.restore(&mut saved);
            }
        }
        best.1
    }
}

#[cfg(test)]
pub(super) mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;
    use crate::engine::individual::Individual;
    use crate::engine::instance::{Client, Instance, Vehicle, Weights};
    use crate::engine::segment::Matrix;

    /// Forty clients scattered on a 100 x 100 square around a central depot, wide windows,
    /// three vehicles that could each take everyone.
    fn square() -> Instance {
        square_with(3, 100)
    }

    /// The same clients with `vehicles` vehicles of `capacity` each.
    fn square_with(vehicles: usize, capacity: i64) -> Instance {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut xy = vec![(50.0, 50.0)];
        xy.extend((0..40).map(|_| (rng.random_range(0.0..100.0), rng.random_range(0.0..100.0))));
        let data = xy
            .iter()
            .flat_map(|a: &(f64, f64)| {
                xy.iter()
                    .map(move |b| ((a.0 - b.0).hypot(a.1 - b.1) * 10.0) as i64)
            })
            .collect();
        let clients = (1..xy.len())
            .map(|i| Client {
                loc: i as u32,
                service: 100,
                early: 0,
                late: 20_000,
                windows: Vec::new(),
                demand: 1,
                prize: None,
                home: None,
                was: None,
                xy: Some(xy[i]),
            })
            .collect();
        let vehicle = Vehicle {
            start_loc: 0,
            end_loc: 0,
            early: 0,
            late: 30_000,
            shift_end: 30_000,
            capacity,
            returns_empty: false,
        };
        Instance::new(
            Matrix::new(xy.len(), data),
            clients,
            vec![vehicle; vehicles],
            None,
            Weights::TRAVEL_ONLY,
            Some((50.0, 50.0)),
            10,
        )
    }

    fn anneal(inst: &Instance, start: &[Vec<u32>], seed: u64) -> Vec<Vec<u32>> {
        let pen = inst.hard_penalties();
        let mut ls = LocalSearch::new(inst);
        ls.load(start, pen);
        let schedule = Schedule {
            deadline: None,
            iterations: 2_000,
            related: 0.0,
        };
        ls.anneal(pen, schedule, &mut SmallRng::seed_from_u64(seed))
    }

    #[test]
    fn annealing_from_nothing_serves_every_client_once() {
        let inst = square();
        let routes = anneal(&inst, &vec![Vec::new(); 3], 1);
        let mut seen: Vec<u32> = routes.concat();
        seen.sort_unstable();
        assert_eq!(seen, (0..40).collect::<Vec<u32>>());
        let free = Penalties { tw: 0, load: 0 };
        assert!(Individual::new(&inst, routes, &free).feasible);
    }

    #[test]
    fn a_descent_out_of_time_still_places_every_client_and_stops_short_of_the_optimum() {
        // Past its deadline the local search only puts in what must be served; given none it
        // goes on to a local optimum, which is no worse.
        let inst = square();
        let pen = inst.initial_penalties();
        let descend = |deadline| {
            let mut ls = LocalSearch::new(&inst);
            ls.set_deadline(deadline);
            ls.load(&vec![Vec::new(); 3], pen);
            ls.run(&mut SmallRng::seed_from_u64(3));
            let routes = ls.routes();
            let mut seen: Vec<u32> = routes.concat();
            seen.sort_unstable();
            assert_eq!(seen, (0..40).collect::<Vec<u32>>());
            Individual::new(&inst, routes, &pen).cost
        };
        let cut = descend(Some(Instant::now()));
        let full = descend(None);
        assert!(
            full < cut,
            "a full descent ({full}) should beat one cut at once ({cut})"
        );
    }

    #[test]
    fn a_related_ruin_takes_the_stops_nearest_in_place_and_time_across_rounds() {
        // Forty stops dealt to three rounds. Each ruin removes between RELATED_FEWEST and
        // RELATED_MOST stops, the first the stop it started from, and leaves no stop much nearer
        // that one (in travel plus the time between their starts) than one it removed: a score
        // is scaled by at most one and a half.
        let inst = square();
        let pen = inst.hard_penalties();
        let start: Vec<Vec<u32>> = (0..3)
            .map(|v| (0..40).filter(|c| c % 3 == v).collect())
            .collect();
        let mut across = 0;
        for seed in 0..50 {
            let mut ls = LocalSearch::new(&inst);
            ls.load(&start, pen);
            let when = |ls: &LocalSearch, c: u32| {
                let route = &ls.routes[ls.route_of[c as usize] as usize];
                route.prefix[ls.pos_of[c as usize] as usize].finish()
                    - inst.clients[c as usize].service
            };
            let starts: Vec<i64> = (0..40).map(|c| when(&ls, c)).collect();
            let rounds: Vec<u32> = ls.route_of.clone();
            let mut saved = Undo::new(3);
            let mut removed = Vec::new();
            ls.ruin_related(&mut SmallRng::seed_from_u64(seed), &mut saved, &mut removed);
            assert!((RELATED_FEWEST..=RELATED_MOST).contains(&removed.len()));
            let from = removed[0];
            let apart = |c: u32| {
                inst.matrix.at(
                    inst.clients[from as usize].loc,
                    inst.clients[c as usize].loc,
                ) + (starts[c as usize] - starts[from as usize]).abs()
            };
            let farthest = removed.iter().map(|&x| apart(x)).max().unwrap();
            for c in 0..40u32 {
                if removed.contains(&c) {
                    assert_eq!(ls.route_of[c as usize], NONE);
                } else {
                    assert!(3 * apart(c) >= 2 * farthest, "seed {seed}: stop {c} left");
                    let r = ls.route_of[c as usize] as usize;
                    assert_eq!(ls.routes[r].nodes[ls.pos_of[c as usize] as usize - 1], c);
                }
            }
            let mut from_rounds: Vec<u32> = removed.iter().map(|&x| rounds[x as usize]).collect();
            from_rounds.dedup();
            across += usize::from(from_rounds.len() > 1);
        }
        assert!(
            across > 25,
            "only {across} ruins of 50 took stops from several rounds"
        );
    }

    #[test]
    fn recreation_passes_over_one_place_in_a_hundred() {
        // Between two places passed over, (1 - BLINK) / BLINK = 99 are priced on average.
        let mut rng = SmallRng::seed_from_u64(5);
        let draws = 20_000;
        let mean = (0..draws)
            .map(|_| places_before_blink(&mut rng) as f64)
            .sum::<f64>()
            / draws as f64;
        assert!((mean - 99.0).abs() < 3.0, "mean {mean}");
    }

    #[test]
    fn a_rejected_ruin_is_undone_exactly_even_after_the_descent_around_it() {
        // Many short routes: a ruin touches a few of them and the descent after it may change
        // others; most ruins are undone, and every route changed must be put back. The routes
        // left loaded after annealing must still hold every client once, where they are, with
        // the segments and costs that walking them again gives (an undone route is copied
        // back, not walked).
        let inst = square_with(10, 5);
        let pen = inst.hard_penalties();
        let mut ls = LocalSearch::new(&inst);
        ls.load(&vec![Vec::new(); 10], pen);
        let schedule = Schedule {
            deadline: None,
            iterations: 3_000,
            related: 0.3,
        };
        ls.anneal(pen, schedule, &mut SmallRng::seed_from_u64(11));
        let mut seen: Vec<u32> = ls.routes().concat();
        seen.sort_unstable();
        assert_eq!(seen, (0..40).collect::<Vec<u32>>());
        for (r, route) in ls.routes.iter().enumerate() {
            for (p, &c) in route.nodes.iter().enumerate() {
                assert_eq!(ls.route_of[c as usize] as usize, r);
                assert_eq!(ls.pos_of[c as usize] as usize, p + 1);
            }
        }
        for r in 0..10 {
            let kept = ls.routes[r].clone();
            ls.refresh(r);
            let walked = &ls.routes[r];
            assert_eq!(kept.prefix, walked.prefix, "route {r}");
            assert_eq!(kept.suffix, walked.suffix, "route {r}");
            assert_eq!(kept.locs, walked.locs, "route {r}");
            assert_eq!(
                (kept.cost, kept.slack, kept.warp),
                (walked.cost, walked.slack, walked.warp),
                "route {r}"
            );
            for (a, b) in kept.gaps.iter().zip(&walked.gaps) {
                assert_eq!((a.ready, a.latest, a.edge), (b.ready, b.latest, b.edge));
            }
        }
    }

    /// [`square_with`]'s clients on six vehicles under tight windows (so many places are too
    /// late, and some routes warp), in a matrix with a few short cuts that break the triangle
    /// inequality.
    fn tight_square(rng: &mut SmallRng) -> Instance {
        let base = square_with(6, 100);
        let size = base.clients.len() + 1;
        let mut data: Vec<i64> = (0..size * size)
            .map(|k| base.matrix.at((k / size) as u32, (k % size) as u32))
            .collect();
        for _ in 0..30 {
            let k = rng.random_range(0..size * size);
            data[k] /= 3;
        }
        let mut clients = base.clients.clone();
        for c in &mut clients {
            c.early = rng.random_range(0..16_000);
            c.late = c.early + rng.random_range(200..2_500);
        }
        Instance::new(
            Matrix::new(size, data),
            clients,
            base.vehicles.clone(),
            None,
            Weights::TRAVEL_ONLY,
            Some((50.0, 50.0)),
            10,
        )
    }

    /// Leaves eight of [`tight_square`]'s clients out and deals the rest, by opening time, to
    /// its six rounds (a different deal for each `trial`): (left out, rounds).
    fn deal(inst: &Instance, rng: &mut SmallRng, trial: usize) -> (Vec<u32>, Vec<Vec<u32>>) {
        let mut order: Vec<u32> = (0..40).collect();
        order.shuffle(rng);
        let (out, routed) = order.split_at(8);
        let mut routes = vec![Vec::new(); 6];
        let mut routed = routed.to_vec();
        routed.sort_by_key(|&c| inst.clients[c as usize].early);
        for (k, &c) in routed.iter().enumerate() {
            routes[(k + trial) % 6].push(c);
        }
        (out.to_vec(), routes)
    }

    #[test]
    fn the_floors_never_pass_over_the_cheapest_place() {
        // For every stop left out, the bounded scan must find the price an exhaustive one finds.
        let mut rng = SmallRng::seed_from_u64(3);
        let inst = tight_square(&mut rng);
        let pen = inst.hard_penalties();
        let mut on_time_routes = 0;
        for trial in 0..40 {
            let (out, routes) = deal(&inst, &mut rng, trial);
            let mut ls = LocalSearch::new(&inst);
            ls.load(&routes, pen);
            on_time_routes += ls.routes.iter().filter(|r| r.warp == 0).count();
            for &u in &out {
                assert_floors_below_prices(&ls, u, &pen);
                let exhaustive = (0..6)
                    .flat_map(|r| (0..=ls.routes[r].nodes.len()).map(move |p| (r, p)))
                    .map(|(r, p)| ls.window_cost(r, p + 1, p, &[u]) - ls.routes[r].cost)
                    .min();
                let found = ls.cheapest_place(u, || false).map(|(d, _, _)| d);
                assert_eq!(found, exhaustive, "stop {u} in trial {trial}");
            }
        }
        assert!(
            on_time_routes > 40,
            "too few routes without warp to test the bound"
        );
    }

    #[test]
    fn a_swap_floor_never_exceeds_the_warp_of_the_round_it_makes() {
        // Each stop put in place of another in a round without warp: the warp the floor
        // charges must be no more than the new round's.
        let mut rng = SmallRng::seed_from_u64(5);
        let inst = tight_square(&mut rng);
        let pen = inst.hard_penalties();
        let m = &inst.matrix;
        let mut bound = 0;
        for trial in 0..20 {
            let (_, routes) = deal(&inst, &mut rng, trial);
            let mut ls = LocalSearch::new(&inst);
            ls.load(&routes, pen);
            for (r, route) in ls.routes.iter().enumerate().filter(|(_, r)| r.warp == 0) {
                for p in 1..=route.nodes.len() {
                    for u in 0..40u32 {
                        let lu = inst.clients[u as usize].loc;
                        let (reach, leave) = (
                            ls.dm(ls.loc_at(r, p - 1), lu),
                            ls.dm(lu, ls.loc_at(r, p + 1)),
                        );
                        let head = route.prefix[p - 1];
                        let warp = head
                            .then(&inst.seg_after(&head, u), m)
                            .then(&route.suffix[p + 1], m)
                            .then(&inst.end_seg[r], m)
                            .tw;
                        let floor = ls.replace_floor(r, p, u, reach, leave);
                        assert!(
                            floor <= pen.tw * warp,
                            "stop {u} in place of position {p} of round {r}: floor {floor}, warp {warp}"
                        );
                        bound += usize::from(floor > 0);
                    }
                }
            }
        }
        assert!(
            bound > 100,
            "the floor bound too rarely to be tested ({bound})"
        );
    }

    /// Checks that at every place of every round without warp, the floor `cheapest_place`
    /// puts on the price of `u` there is at most that price.
    fn assert_floors_below_prices(ls: &LocalSearch, u: u32, pen: &Penalties) {
        let inst = ls.inst;
        let client = &inst.clients[u as usize];
        let travel = |a: u32, b: u32| inst.matrix.at(a, b);
        for (r, route) in ls.routes.iter().enumerate().filter(|(_, r)| r.warp == 0) {
            for (p, gap) in route.gaps.iter().enumerate() {
                let (reach, leave) = (
                    travel(gap.before, client.loc),
                    travel(client.loc, gap.after),
                );
                let floor = inst.weights.travel * (reach + leave - gap.edge)
                    + pen.tw * gap.forced_warp(client, reach, leave);
                let price = ls.window_cost(r, p + 1, p, &[u]) - route.cost;
                assert!(
                    floor <= price,
                    "stop {u} after position {p} of round {r}: floor {floor} over price {price}"
                );
            }
        }
    }

    #[test]
    fn a_break_closing_the_round_comes_before_the_drive_home_in_the_floor() {
        // The depot (location 0), a visit A (1) due by 120 and a stop u (2) due by 350, far
        // from the depot. The round is A, then a break due by 400. Only after A and before the
        // break is u on time: it finishes at 310 and the break starts on time, for the drive
        // home (100) comes after the break, so the floor there must force no warp.
        let clients = vec![
            stop(1, 100, 0, 120),
            stop(NO_LOC, 100, 300, 400),
            stop(2, 100, 0, 350),
        ];
        let inst = one_round(vec![0, 50, 100, 50, 0, 60, 100, 60, 0], clients, 2_000);
        let pen = inst.hard_penalties();
        let mut ls = LocalSearch::new(&inst);
        ls.load(&[vec![0, 1]], pen);
        assert_eq!(ls.routes[0].warp, 0);
        assert_floors_below_prices(&ls, 2, &pen);
        // There it adds 60 + 100 - 50 of travel and nothing else.
        assert_eq!(ls.cheapest_place(2, || false), Some((110, 0, 1)));
    }

    /// One clinician whose day ends at `day_end`, a care home (location 1) whose residents
    /// due differ only in what deferring each costs (`prizes`), and one visit elsewhere
    /// (location 2, worth 5 000), the last client.
    fn home_and_visit(prizes: &[i64], day_end: i64) -> Instance {
        let resident = |prize| Client {
            prize: Some(prize),
            ..stop(1, 100, 0, 10_000)
        };
        let mut clients: Vec<Client> = prizes.iter().map(|&p| resident(p)).collect();
        clients.push(Client {
            loc: 2,
            ..resident(5_000)
        });
        one_round(vec![0, 50, 80, 50, 0, 60, 80, 60, 0], clients, day_end)
    }

    /// A stop of one unit at `loc` that must be served, starting within `[early, late]`.
    pub(crate) fn stop(loc: u32, service: i64, early: i64, late: i64) -> Client {
        Client {
            loc,
            service,
            early,
            late,
            windows: Vec::new(),
            demand: 1,
            prize: None,
            home: None,
            was: None,
            xy: None,
        }
    }

    /// One vehicle from and back to location 0 of the three in `matrix` (row by row), working
    /// until `day_end`, for `clients`.
    fn one_round(matrix: Vec<i64>, clients: Vec<Client>, day_end: i64) -> Instance {
        let vehicle = Vehicle {
            start_loc: 0,
            end_loc: 0,
            early: 0,
            late: day_end,
            shift_end: day_end,
            capacity: 100,
            returns_empty: false,
        };
        Instance::new(
            Matrix::new(3, matrix),
            clients,
            vec![vehicle],
            None,
            Weights::TRAVEL_ONLY,
            None,
            10,
        )
    }

    #[test]
    fn a_home_with_more_residents_due_than_time_keeps_the_most_valuable() {
        // Twelve residents due and a day with room for five of them besides the visit.
        let prize = |i: i64| 1_000 + 100 * (i * 7 % 12);
        let inst = home_and_visit(&(0..12).map(prize).collect::<Vec<_>>(), 800);
        assert!(inst.twin[..12].iter().all(|&t| t == 0));
        assert_eq!(inst.twin[12], 12);
        let routes = anneal(&inst, &[Vec::new()], 3);
        let mut served: Vec<u32> = routes.concat();
        served.sort_unstable();
        // The visit and the five most valuable residents fill the day (six stops of 100 and
        // 190 of travel); refusing one resident must never keep out a more valuable one.
        let mut by_value: Vec<u32> = (0..12).collect();
        by_value.sort_by_key(|&i| std::cmp::Reverse(prize(i64::from(i))));
        let mut best: Vec<u32> = by_value[..5].to_vec();
        best.push(12);
        best.sort_unstable();
        assert_eq!(served, best);
    }

    #[test]
    fn refusing_a_stop_passes_over_its_less_valuable_twins_only() {
        // Two residents of one home: one not worth the detour, one well worth it. Whichever
        // recreation meets first, the valuable one is placed (and the other rides along free
        // when it comes second).
        let inst = home_and_visit(&[10, 10_000], 10_000);
        assert_eq!(inst.twin, vec![0, 0, 2]);
        for seed in 0..20 {
            let mut ls = LocalSearch::new(&inst);
            ls.load(&[vec![2]], inst.initial_penalties());
            let mut saved = Undo::new(1);
            let mut rng = SmallRng::seed_from_u64(seed);
            ls.recreate(&mut rng, &mut saved, &mut [0, 1]);
            assert_ne!(
                ls.route_of[1], NONE,
                "seed {seed}: the valuable twin was passed over"
            );
        }
    }

    #[test]
    fn annealing_improves_a_poor_start_and_repeats_for_a_seed() {
        let inst = square();
        let free = Penalties { tw: 0, load: 0 };
        // A poor start: clients in index order, split evenly.
        let start: Vec<Vec<u32>> = (0..3)
            .map(|v| (0..40).filter(|c| c % 3 == v).collect())
            .collect();
        let before = Individual::new(&inst, start.clone(), &free).objective;
        let once = anneal(&inst, &start, 5);
        let after = Individual::new(&inst, once.clone(), &free).objective;
        assert!(
            after < before,
            "annealing improved nothing: {after} vs {before}"
        );
        assert_eq!(once, anneal(&inst, &start, 5));
    }
}
