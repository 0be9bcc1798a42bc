//! Planning a day: compiles a [`Problem`] (and, on a re-plan, where each clinician now stands)
//! into the engine's integer instance, searches, then replays each round exactly to report its
//! times and explains every visit left out by trying it in every position of every round.
//!
//! A visit with several windows is priced, in the search as in the replay, in the first window
//! that has not closed when the clinician arrives (waiting for it to open if need be), so the
//! search sees the waiting or lateness a far window would cause and every reported time is one
//! the clinician can keep.

use std::collections::{HashMap, HashSet};

use geo::{Distance, Haversine, Point};

use crate::engine::{self, Client, Instance, Matrix, NO_LOC, Params, Vehicle, Weights};
use crate::plan::{FreeFrom, Plan, Reason, Round, Stop, StopKind, Summary, Unplanned, weights};
use crate::{Break, Budget, Clock, Location, Problem, RoutingError, Urgency, Window};

const DAY_END: i64 = 48 * 3600;

/// What the compiler needs of an item: location, minutes, windows, skills, prize and the
/// clinician it is pinned to.
type ItemSpec<'a> = (
    Option<Location>,
    u32,
    Vec<(i64, i64)>,
    &'a [String],
    Option<i64>,
    Option<&'a str>,
);

/// Something the search places.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Visit(usize),
    Resident(usize, usize),
    Break(usize),
}

/// Where each clinician stands when planning starts: the fixed start of their round and when
/// and where they are next free. A fresh plan has nothing fixed.
#[derive(Clone, Debug, Default)]
pub(crate) struct DayState {
    /// Stops already done or under way, per clinician.
    pub fixed: Vec<Vec<Stop>>,
    /// When and where each clinician is next free; `None` when not working any more.
    pub avail: Vec<Option<(Location, i64)>>,
    /// Visit and resident keys already fixed (not to be planned again).
    pub done: HashSet<Key>,
    /// Clinicians whose break is already fixed.
    pub break_done: Vec<bool>,
    /// Clinician each key was planned with before (for the stability cost).
    pub home: HashMap<Key, usize>,
    /// When each key was planned to start before (for the stability cost), seconds.
    pub was: HashMap<Key, i64>,
    /// Previous order of keys per clinician (a warm start).
    pub warm: Vec<Vec<Key>>,
    /// Per clinician who had finished every stop and set off back by a re-plan: that drive,
    /// part of their day so far.
    pub returned: Vec<Option<Returned>>,
    /// Per clinician, seconds already driven that no fixed stop shows (see
    /// [`crate::Round::unlisted_travel_seconds`]); carried from plan to plan so the day's
    /// travel stays what was driven.
    pub unlisted: Vec<u32>,
    /// Per clinician, when the previous plan had them leave: what a round with no stop left to
    /// show (every door they reached had its visit leave the round) shows once they are back
    /// or gone off sick.
    pub departed: Vec<Option<Clock>>,
    /// Per clinician gone off sick, when the previous plan had them free past their fixed
    /// stops (back at their end location, or leaving a door nobody answered): their round
    /// ends no earlier, since the drive there is in their travel.
    pub last_free: Vec<Option<i64>>,
}

/// A clinician driving back, or back, with every stop done when a re-plan is made.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Returned {
    /// When they are back at their end location.
    pub back: Clock,
    /// The seconds the drive back takes.
    pub drive: u32,
}

impl DayState {
    /// Nothing done yet: everyone starts at their start location at the start of their shift.
    pub(crate) fn fresh(problem: &Problem) -> Self {
        let n = problem.clinicians.len();
        Self {
            fixed: vec![Vec::new(); n],
            avail: problem
                .clinicians
                .iter()
                .map(|c| Some((c.start, c.shift.start.secs())))
                .collect(),
            break_done: vec![false; n],
            ..Self::default()
        }
    }
}

/// What taking a stop out of a round past its limit does to the overrun, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Overrun {
    /// The round is back by its limit.
    Ended,
    /// The round still runs over, by less.
    Shortened,
    /// The round runs over as long, or longer.
    Kept,
}

/// What a re-plan knows a stop by, between the previous plan and this one. Kept as parts, not
/// joined into one string, because ids are the callers' own: a visit id such as `oaks/r1`
/// must never stand for resident `r1` of care home `oaks`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// A visit, by its id.
    Visit(String),
    /// A resident, by care home id and resident id.
    Resident(String, String),
    /// A clinician's break, by clinician id.
    Break(String),
}

/// The key of an item.
pub(crate) fn key(problem: &Problem, item: Item) -> Key {
    match item {
        Item::Visit(i) => Key::Visit(problem.visits[i].id.clone()),
        Item::Resident(h, r) => Key::Resident(
            problem.care_homes[h].id.clone(),
            problem.care_homes[h].residents[r].id.clone(),
        ),
        Item::Break(c) => Key::Break(problem.clinicians[c].id.clone()),
    }
}

/// The problem compiled for the engine, with the maps back.
pub(crate) struct Compiled<'p> {
    problem: &'p Problem,
    pub inst: Instance,
    items: Vec<Item>,
    /// Engine vehicle -> clinician index.
    vehicles: Vec<usize>,
    windows: Vec<Vec<(i64, i64)>>,
    /// Whether each item is immediate work: asked of every stop each replay steps through.
    immediate: Vec<bool>,
}

/// Most starting solutions [`Compiled::homes_dealt`] builds: each costs one descent before the
/// search proper, so a short budget is not spent on them.
const HOME_DEALS: usize = 3;

/// Most changes [`Compiled::settle_lateness`] makes per round it starts with late: a late
/// round is usually mended in one or two, and an over-full day should not wait on the rest.
const SETTLE_CHANGES_PER_ROUND: usize = 8;

/// Five minutes: how long after the soonest anyone could start an immediate visit the search
/// takes it to be due (later counts as lateness, see `Compiled::new`), and within which two
/// places for one count as equally soon (see `Compiled::bring_immediate_forward`).
const IMMEDIATE_SLACK: i64 = 300;

/// Most passes over the immediate visits that `Compiled::bring_immediate_forward` makes.
const IMMEDIATE_PASSES: usize = 4;

fn loc_index(locs: &mut Vec<Location>, l: Location) -> u32 {
    match locs.iter().position(|&x| x == l) {
        Some(i) => i as u32,
        None => {
            locs.push(l);
            (locs.len() - 1) as u32
        }
    }
}

/// A location on a local plane (km east, km north), accurate enough for ordering stops by
/// angle around the network's centre.
fn project(l: Location) -> (f64, f64) {
    (l.lon * 111.2 * l.lat.to_radians().cos(), l.lat * 111.2)
}

/// The centre of the clinicians' start points, around which routes are ordered by angle.
fn centre(problem: &Problem) -> Option<(f64, f64)> {
    let n = problem.clinicians.len();
    (n > 0).then(|| {
        let (x, y) = problem
            .clinicians
            .iter()
            .map(|c| project(c.start))
            .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        (x / n as f64, y / n as f64)
    })
}

/// Great-circle distance in metres, by `geo`'s haversine (as the domain measures it).
fn great_circle_m(a: Location, b: Location) -> f64 {
    Haversine.distance(Point::new(a.lon, a.lat), Point::new(b.lon, b.lat))
}

/// Travel seconds between every pair of `locs`, row-major: from the supplied matrix where it
/// lists both places, else from the speed model. Each place is looked up in the matrix once, not
/// once per pair, so a supplied matrix costs no more than the speed model; and the speed model,
/// the same both ways, is worked out once a pair (on a day of a thousand places, a million
/// great-circle distances are a noticeable share of a short budget).
pub(crate) fn travel_matrix(problem: &Problem, locs: &[Location]) -> Vec<i64> {
    let t = &problem.travel;
    let index: Vec<Option<usize>> = locs
        .iter()
        .map(|&l| t.matrix.as_ref()?.points.iter().position(|&p| p == l))
        .collect();
    let supplied =
        |i: usize, j: usize| Some(i64::from(t.matrix.as_ref()?.seconds[index[i]?][index[j]?]));
    let n = locs.len();
    let mut data = vec![0; n * n];
    for (i, &a) in locs.iter().enumerate() {
        for (j, &b) in locs.iter().enumerate().skip(i + 1) {
            if a == b {
                continue;
            }
            let (there, back) = (supplied(i, j), supplied(j, i));
            let model = || {
                let metres = great_circle_m(a, b) * t.detour_factor;
                (metres / (t.speed_kmh / 3.6) + t.parking_minutes * 60.0).round() as i64
            };
            let model = (there.is_none() || back.is_none()).then(model);
            data[i * n + j] = there.or(model).unwrap_or_default();
            data[j * n + i] = back.or(model).unwrap_or_default();
        }
    }
    data
}

fn windows_of(ws: &[Window]) -> Vec<(i64, i64)> {
    if ws.is_empty() {
        vec![(0, DAY_END)]
    } else {
        let mut v: Vec<(i64, i64)> = ws.iter().map(|w| (w.start.secs(), w.end.secs())).collect();
        v.sort_unstable();
        v
    }
}

/// Whether `item` is immediate work: a visit, or a resident's review, marked immediate.
fn immediate(problem: &Problem, item: Item) -> bool {
    match item {
        Item::Visit(i) => problem.visits[i].urgency == Urgency::Immediate,
        Item::Resident(h, r) => problem.care_homes[h].residents[r].urgency == Urgency::Immediate,
        Item::Break(_) => false,
    }
}

fn has_skills(have: &[String], need: &[String]) -> bool {
    need.iter().all(|s| have.contains(s))
}

fn prize(urgency: Urgency, days_overdue: u32) -> i64 {
    match urgency {
        Urgency::Immediate => weights::UNSERVED_IMMEDIATE,
        Urgency::SameDay => weights::UNSERVED_SAME_DAY,
        Urgency::Routine => {
            weights::UNSERVED_ROUTINE
                + weights::OVERDUE_DAY * i64::from(days_overdue.min(weights::OVERDUE_CAP))
        }
    }
}

impl<'p> Compiled<'p> {
    /// Compiles `problem` as seen from `state`.
    pub(crate) fn new(problem: &'p Problem, state: &DayState) -> Result<Self, RoutingError> {
        crate::validate::problem(problem)?;
        let mut locs: Vec<Location> = Vec::new();
        let mut vehicles = Vec::new();
        let mut engine_vehicles = Vec::new();
        for (k, c) in problem.clinicians.iter().enumerate() {
            let Some((at, from)) = state.avail[k] else {
                continue;
            };
            let mut shift_end = c.shift.end.secs();
            let mut late = shift_end + 60 * i64::from(c.max_overtime_minutes);
            if let Some(off) = c.off_from {
                shift_end = shift_end.min(off.secs());
                late = late.min(off.secs());
            }
            if from >= late {
                continue;
            }
            vehicles.push(k);
            engine_vehicles.push(Vehicle {
                start_loc: loc_index(&mut locs, at),
                end_loc: loc_index(&mut locs, c.end.unwrap_or(c.start)),
                early: from.max(c.shift.start.secs()),
                late,
                shift_end,
                capacity: 1 << 40,
                // Out: begun, and away from their end location.
                returns_empty: (!state.fixed[k].is_empty()
                    || state.unlisted.get(k).is_some_and(|&u| u > 0))
                    && state.returned.get(k).copied().flatten().is_none()
                    && at != c.end.unwrap_or(c.start),
            });
        }
        let mut items = Vec::new();
        for (i, v) in problem.visits.iter().enumerate() {
            if !v.not_at_home && !state.done.contains(&Key::Visit(v.id.clone())) {
                items.push(Item::Visit(i));
            }
        }
        for (h, home) in problem.care_homes.iter().enumerate() {
            for r in 0..home.residents.len() {
                if !state.done.contains(&key(problem, Item::Resident(h, r))) {
                    items.push(Item::Resident(h, r));
                }
            }
        }
        // A break is due unless it is taken already, its window has closed before the
        // clinician is free (a re-plan late in the day: taken or missed, it cannot be taken
        // now), or the clinician stops (goes off, or the shift and its overtime end) before
        // they could take it and still be back in time.
        for (v, &k) in vehicles.iter().enumerate() {
            let due = |b: &Break| {
                let veh = &engine_vehicles[v];
                let (from, to) = (locs[veh.start_loc as usize], locs[veh.end_loc as usize]);
                let home = travel_matrix(problem, &[from, to])[1];
                let start = b.window.start.secs().max(veh.early);
                start <= b.window.end.secs() && start + 60 * i64::from(b.minutes) + home <= veh.late
            };
            if problem.clinicians[k].break_.as_ref().is_some_and(due) && !state.break_done[k] {
                items.push(Item::Break(k));
            }
        }
        let mut clients = Vec::new();
        let mut windows = Vec::new();
        let mut allowed = Vec::new();
        for &item in &items {
            let (loc, minutes, ws, skills, prize_v, pinned): ItemSpec = match item {
                Item::Visit(i) => {
                    let v = &problem.visits[i];
                    (
                        Some(v.location),
                        v.minutes,
                        windows_of(&v.windows),
                        &v.skills,
                        Some(prize(v.urgency, v.days_overdue)),
                        v.pinned_to.as_deref(),
                    )
                }
                Item::Resident(h, r) => {
                    let home = &problem.care_homes[h];
                    let res = &home.residents[r];
                    (
                        Some(home.location),
                        res.minutes,
                        windows_of(&home.windows),
                        &home.skills,
                        Some(prize(res.urgency, res.days_overdue)),
                        None,
                    )
                }
                Item::Break(k) => {
                    let b = problem.clinicians[k].break_.as_ref().expect("break item");
                    (
                        None,
                        b.minutes,
                        windows_of(&[b.window]),
                        &[],
                        None,
                        Some(problem.clinicians[k].id.as_str()),
                    )
                }
            };
            let xy = loc.map(project);
            let loc = loc.map_or(NO_LOC, |l| loc_index(&mut locs, l));
            let key_s = key(problem, item);
            let home = state
                .home
                .get(&key_s)
                .and_then(|&k| vehicles.iter().position(|&v| v == k))
                .map(|v| v as u32);
            for &k in &vehicles {
                let c = &problem.clinicians[k];
                allowed.push(
                    has_skills(&c.skills, skills) && pinned.is_none_or(|p| p == c.id.as_str()),
                );
            }
            clients.push(Client {
                loc,
                service: 60 * i64::from(minutes),
                early: ws[0].0,
                late: ws.iter().map(|w| w.1).max().unwrap_or(DAY_END),
                windows: if ws.len() > 1 { ws.clone() } else { Vec::new() },
                demand: 1,
                prize: prize_v,
                home,
                was: state.was.get(&key_s).copied(),
                xy,
            });
            windows.push(ws);
        }
        let size = locs.len();
        let data = travel_matrix(problem, &locs);
        // The search is told an immediate visit is due soon after the soonest anyone could
        // start it, so it weighs delay to it as lateness instead of only past its window's
        // end; the plan's lateness is still measured from the real window (see
        // `bring_immediate_forward`, which finishes the job). Anyone means a clinician who
        // may take it and could do it and be back by their limit: one whose shift ends too
        // soon would have the call due before whoever can go could reach it, and count the
        // wait for them as delay on other work.
        let nv = engine_vehicles.len();
        for (c, client) in clients.iter_mut().enumerate() {
            if !immediate(problem, items[c]) {
                continue;
            }
            let soonest = (0..nv)
                .filter(|&v| allowed[c * nv + v])
                .filter_map(|v| {
                    let veh = &engine_vehicles[v];
                    let at = client.loc as usize;
                    let arrival = veh.early + data[veh.start_loc as usize * size + at];
                    // It starts in the first window still open when they get there.
                    let opens = (client.windows.iter().find(|w| w.1 >= arrival))
                        .map_or(client.early, |w| w.0);
                    let back = arrival.max(opens)
                        + client.service
                        + data[at * size + veh.end_loc as usize];
                    (back <= veh.late).then_some(arrival)
                })
                .min();
            let Some(soonest) = soonest else {
                continue;
            };
            if client.windows.is_empty() {
                client.late = client.late.min(soonest.max(client.early) + IMMEDIATE_SLACK);
            } else if let Some(&(early, late)) = client.windows.iter().find(|w| w.1 >= soonest) {
                // With several windows, the first still open when anyone could get there is
                // the one it is due in; a later one would be lateness to the search.
                client.early = early;
                client.late = late.min(soonest.max(early) + IMMEDIATE_SLACK);
                client.windows.clear();
            }
        }
        let params = Params::default();
        let inst = Instance::new(
            Matrix::new(size, data),
            clients,
            engine_vehicles,
            Some(allowed),
            Weights {
                travel: weights::TRAVEL,
                lateness: weights::LATENESS,
                overtime: weights::OVERTIME,
                reassign: weights::REASSIGN,
                delay: weights::DELAY,
                delay_grace: weights::DELAY_GRACE,
            },
            centre(problem),
            params.granular,
        );
        Ok(Self {
            problem,
            inst,
            immediate: items.iter().map(|&item| immediate(problem, item)).collect(),
            items,
            vehicles,
            windows,
        })
    }

    /// The engine's starting solution from a previous order of keys, if any. A stop its
    /// clinician may no longer take (pinned to someone else, or a skill changed since) starts
    /// unplanned, so the search puts it with someone who may; the search never moves a stop
    /// into a round barred to it, but it would not take one out of it either.
    fn warm_start(&self, state: &DayState) -> Vec<Vec<u32>> {
        let index: HashMap<Key, u32> = self
            .items
            .iter()
            .enumerate()
            .map(|(i, &it)| (key(self.problem, it), i as u32))
            .collect();
        self.vehicles
            .iter()
            .enumerate()
            .map(|(v, &k)| {
                state
                    .warm
                    .get(k)
                    .map(|keys| {
                        keys.iter()
                            .filter_map(|s| index.get(s).copied())
                            .filter(|&c| self.inst.allowed(c, v))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Starting solutions for a day planned from nothing: in each, every care home's residents
    /// sit together in one round, and the homes are dealt round the clinicians who may review
    /// them, each start from a different one ([`HOME_DEALS`] at most). The search fills in the
    /// rest. Built up resident by resident, a plan tends to hand one pharmacist most of both
    /// homes and split the other, and the search seldom leaves that arrangement: a home has to
    /// change hands whole while the rounds that take its place shed visits in turn. Starting
    /// from each arrangement of whole homes lets it compare them (see `bench/routing/RESULTS.md`).
    fn homes_dealt(&self) -> Vec<Vec<Vec<u32>>> {
        let mut homes: Vec<(usize, Vec<u32>)> = Vec::new();
        for (c, item) in self.items.iter().enumerate() {
            if let Item::Resident(h, _) = *item {
                match homes.iter_mut().find(|(home, _)| *home == h) {
                    Some((_, residents)) => residents.push(c as u32),
                    None => homes.push((h, vec![c as u32])),
                }
            }
        }
        let takers: Vec<Vec<usize>> = homes
            .iter()
            .map(|(_, residents)| {
                (0..self.vehicles.len())
                    .filter(|&v| residents.iter().all(|&c| self.inst.allowed(c, v)))
                    .collect()
            })
            .collect();
        let deals = takers
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .min(HOME_DEALS);
        (0..deals)
            .map(|deal| {
                let mut routes = vec![Vec::new(); self.vehicles.len()];
                for (k, (_, residents)) in homes.iter().enumerate() {
                    if let Some(&v) = takers[k].get((k + deal) % takers[k].len().max(1)) {
                        routes[v].extend_from_slice(residents);
                    }
                }
                routes
            })
            .collect()
    }

    /// The stop `c` makes when the clinician is free at `t` at location `at`: travel, arrival,
    /// start in the first window still open on arrival (waiting if it has not opened), finish.
    fn step(&self, t: i64, at: u32, c: u32) -> SimStop {
        let client = &self.inst.clients[c as usize];
        let travel = if client.loc == NO_LOC {
            0
        } else {
            self.inst.matrix.at(at, client.loc)
        };
        let arrival = t + travel;
        let ws = &self.windows[c as usize];
        let (start, late) = match ws.iter().find(|w| w.1 >= arrival) {
            Some(w) => (arrival.max(w.0), 0),
            None => (arrival, arrival - ws.last().map_or(arrival, |w| w.1)),
        };
        SimStop {
            client: c,
            arrival,
            start,
            finish: start + client.service,
            late,
            travel,
            at: if client.loc == NO_LOC { at } else { client.loc },
        }
    }

    /// Replays vehicle `v` driving `route` (engine client indices), exactly.
    fn simulate(&self, v: usize, route: &[u32]) -> Sim {
        let veh = &self.inst.vehicles[v];
        let mut t = veh.early;
        let mut at = veh.start_loc;
        let mut stops = Vec::with_capacity(route.len());
        let mut travel_total = 0;
        for &c in route {
            let stop = self.step(t, at, c);
            travel_total += stop.travel;
            (t, at) = (stop.finish, stop.at);
            stops.push(stop);
        }
        let back_travel = self.inst.matrix.at(at, veh.end_loc);
        let back = t + back_travel;
        travel_total += back_travel;
        Sim {
            depart: veh.early,
            stops,
            back,
            travel: travel_total,
            overtime: (back - veh.shift_end).max(0),
            over_limit: (back - veh.late).max(0),
        }
    }

    /// Vehicle `v`'s `route` (replayed as `base`) with `c` put in at position `p`, replayed
    /// only as far as it differs: the stops before `p` are as they were, and once a later stop
    /// finishes when and where it did before (the delay soaked up by waiting for a window),
    /// so does every stop after it. `later` sees each stop replayed after `c` beside what it
    /// was. Explaining a day with many visits left out tries each in every place, so this
    /// keeps that work to the stretch each place disturbs.
    fn insertion(
        &self,
        v: usize,
        route: &[u32],
        base: &Sim,
        p: usize,
        c: u32,
        mut later: impl FnMut(&SimStop, &SimStop),
    ) -> Inserted {
        let veh = &self.inst.vehicles[v];
        let (t, was_at) = p.checked_sub(1).map_or((veh.early, veh.start_loc), |q| {
            (base.stops[q].finish, base.stops[q].at)
        });
        let stop = self.step(t, was_at, c);
        let (mut t, mut at, mut was_at) = (stop.finish, stop.at, was_at);
        let mut travel = stop.travel;
        for (&x, was) in route[p..].iter().zip(&base.stops[p..]) {
            let now = self.step(t, at, x);
            later(&now, was);
            travel += now.travel - was.travel;
            (t, at, was_at) = (now.finish, now.at, was.at);
            if t == was.finish && at == was_at {
                return Inserted {
                    stop,
                    travel,
                    over_limit: base.over_limit,
                };
            }
        }
        let m = &self.inst.matrix;
        let back_travel = m.at(at, veh.end_loc);
        Inserted {
            stop,
            travel: travel + back_travel - m.at(was_at, veh.end_loc),
            over_limit: (t + back_travel - veh.late).max(0),
        }
    }

    /// Takes work off `route` until vehicle `v` is back by its limit: shift end plus allowed
    /// overtime, or when the clinician goes off. The search prices working past it like
    /// lateness, so to serve an immediate visit it would keep a clinician on past the overtime
    /// they may work, or past going off sick; a plan must not. Each step drops the least
    /// valuable visit whose removal ends the overrun, else the least valuable that shortens
    /// it, else any (two reviews at one far home may each leave the trip as long); the
    /// explanation that follows tries each in every other round, and says why when it fits
    /// nowhere. Where only urgent work would end it, routine visits worth less in all go
    /// instead, if taking them out ends it. The break stays: on its own it always fits (see
    /// `Compiled::new`).
    fn keep_within_limit(&self, v: usize, route: &mut Vec<u32>) {
        loop {
            let over = self.simulate(v, route).over_limit;
            if over == 0 {
                return;
            }
            let Some((effect, prize, p)) = self.least_valuable_drop(v, route, over, i64::MAX)
            else {
                return;
            };
            if effect == Overrun::Ended
                && prize >= weights::UNSERVED_SAME_DAY
                && let Some(routine) = self.trim_routine(v, route, prize)
            {
                *route = routine;
                return;
            }
            route.remove(p);
        }
    }

    /// Of the stops of `route` worth less than `below`, the one to take out first to bring
    /// vehicle `v`'s overrun `over` to an end: what its removal does to the overrun, then the
    /// least valuable. Its effect, value and position; none when no stop but the break is left.
    fn least_valuable_drop(
        &self,
        v: usize,
        route: &[u32],
        over: i64,
        below: i64,
    ) -> Option<(Overrun, i64, usize)> {
        (0..route.len())
            .filter(|&p| !matches!(self.items[route[p] as usize], Item::Break(_)))
            .filter_map(|p| {
                let prize = self.inst.clients[route[p] as usize].prize.unwrap_or(0);
                (prize < below).then(|| {
                    let mut trial = route.to_vec();
                    trial.remove(p);
                    let left = self.simulate(v, &trial).over_limit;
                    let effect = match left {
                        0 => Overrun::Ended,
                        l if l < over => Overrun::Shortened,
                        _ => Overrun::Kept,
                    };
                    (effect, prize, p)
                })
            })
            .min()
    }

    /// `route` with routine visits taken out, least valuable first and each shortening the
    /// overrun, until vehicle `v` is back by its limit, if that gives up less than `worth`
    /// (what the urgent visit that would end it alone is worth); else none.
    fn trim_routine(&self, v: usize, route: &[u32], worth: i64) -> Option<Vec<u32>> {
        let mut routine = route.to_vec();
        let mut given_up = 0;
        loop {
            let over = self.simulate(v, &routine).over_limit;
            if over == 0 {
                return Some(routine);
            }
            match self.least_valuable_drop(v, &routine, over, weights::UNSERVED_SAME_DAY) {
                Some((Overrun::Ended | Overrun::Shortened, value, q))
                    if given_up + value < worth =>
                {
                    routine.remove(q);
                    given_up += value;
                }
                _ => return None,
            }
        }
    }

    /// Moves each immediate visit to where it starts soonest, in any round that may take it,
    /// as long as that makes no stop later past its window, no other immediate visit later,
    /// and keeps every clinician within their limit. The search is told each is due soon after
    /// the soonest start (see `Compiled::new`), but not for one with several windows, and its
    /// due time is a bound it may miss; immediate means as early as possible, before travel.
    /// Places that start it within [`IMMEDIATE_SLACK`] of the soonest count as soonest, and
    /// the cheapest is taken (the travel it adds, and on a re-plan visits it moves to another
    /// clinician or much later than the patient was told, priced as in the summary): a minute
    /// sooner is not worth any detour. One held past the time the search took it to be due
    /// may also take the place of a routine visit, which is taken out: a second of the call's
    /// delay weighs more, as lateness, than a routine visit deferred (a re-plan with no time
    /// to search could otherwise see a call later than it need). None if none moved; else the
    /// routine visits taken out, for the caller to place elsewhere or explain.
    fn bring_immediate_forward(&self, routes: &mut [Vec<u32>]) -> Option<Vec<u32>> {
        let mut immediate: Vec<(i64, u32)> = routes
            .iter()
            .flatten()
            .filter(|&&c| self.is_immediate(c))
            .map(|&c| (self.inst.clients[c as usize].early, c))
            .collect();
        immediate.sort_unstable();
        // Moving one may free a sooner place for another: a few passes settle nearly every day.
        let mut any = false;
        let mut taken_out = Vec::new();
        for _ in 0..IMMEDIATE_PASSES {
            let mut moved = false;
            for &(_, c) in &immediate {
                if let Some(out) = self.bring_forward(routes, c) {
                    moved = true;
                    taken_out.extend(out);
                }
            }
            any |= moved;
            if !moved {
                break;
            }
        }
        any.then_some(taken_out)
    }

    /// Vehicle `v`'s `route` (replayed as `now`) without its stop at `at`, replayed, unless
    /// taking it out delays the rest (a break taken wherever the clinician is moves with it: a
    /// stop after it may then start later) or leaves the clinician past their limit.
    fn without(&self, v: usize, route: &[u32], now: &Sim, at: usize) -> Option<(Vec<u32>, Sim)> {
        let mut left = route.to_vec();
        left.remove(at);
        let without = self.simulate(v, &left);
        let harmed = without.over_limit > 0
            || without.stops.iter().enumerate().any(|(q, st)| {
                let was = &now.stops[if q < at { q } else { q + 1 }];
                st.late > was.late || (st.start > was.start && self.is_immediate(st.client))
            });
        (!harmed).then_some((left, without))
    }

    /// Moves immediate visit `c` as [`Self::bring_immediate_forward`] says: None if it stays,
    /// else the routine visit it took the place of and left out, if any.
    fn bring_forward(&self, routes: &mut [Vec<u32>], c: u32) -> Option<Option<u32>> {
        let from = routes.iter().position(|r| r.contains(&c))?;
        // Where `c` would start at place `p` of vehicle `v`'s `route` (replayed as `base`),
        // whether that harms no other stop (none later past its window, no other immediate
        // visit later at all), and its price: the travel it adds, and what a re-plan counts
        // for moving visits much later than planned or to another clinician.
        let place = |v: usize, route: &[u32], base: &Sim, p: usize| {
            let (mut harmless, mut delayed) = (true, 0);
            let ins = self.insertion(v, route, base, p, c, |now, was| {
                harmless &= now.late <= was.late
                    && (now.start <= was.start || !self.is_immediate(now.client));
                delayed += self.moved_later(now) - self.moved_later(was);
            });
            let home = self.inst.clients[c as usize].home;
            let price = weights::TRAVEL * ins.travel
                + weights::DELAY * (delayed + self.moved_later(&ins.stop))
                + if home.is_some_and(|h| h as usize != v) {
                    weights::REASSIGN
                } else {
                    0
                };
            let harmless = harmless && ins.over_limit == 0 && ins.stop.late == 0;
            (ins.stop.start, price, harmless)
        };
        // (start, price, vehicle, position, routine visit taken out) of the current place,
        // which counts even if it is late there, then of each other; every place is priced in
        // the rounds without it. One that takes a routine visit's place counts only if it is
        // sooner by more than the slack (nearly as soon, the current place is cheaper anyway).
        let at = routes[from].iter().position(|&x| x == c).expect("served");
        let now = self.simulate(from, &routes[from]);
        let held = self.held(&now.stops[at]) > 0;
        let (left, without) = self.without(from, &routes[from], &now, at)?;
        let (start, price, _) = place(from, &left, &without, at);
        let mut places = vec![(start, price, from, at, None)];
        for (v, route) in routes.iter().enumerate() {
            if !self.inst.allowed(c, v) {
                continue;
            }
            let route = if v == from { &left } else { route };
            let base = self.simulate(v, route);
            for p in 0..=route.len() {
                if let (start, price, true) = place(v, route, &base, p) {
                    places.push((start, price, v, p, None));
                }
            }
            if !held {
                continue;
            }
            for (e, &x) in route.iter().enumerate() {
                let prize = self.inst.clients[x as usize].prize;
                let Some(value) = prize.filter(|&value| value < weights::UNSERVED_SAME_DAY) else {
                    continue;
                };
                let Some((trial, without)) = self.without(v, route, &base, e) else {
                    continue;
                };
                let (start, price, true) = place(v, &trial, &without, e) else {
                    continue;
                };
                if start + IMMEDIATE_SLACK < places[0].0 {
                    places.push((start, price + value, v, e, Some(e)));
                }
            }
        }
        let soonest = places.iter().map(|p| p.0).min().expect("current place");
        let &(_, _, v, p, out) = places
            .iter()
            .filter(|p| p.0 <= soonest + IMMEDIATE_SLACK)
            .min_by_key(|p| (p.1, p.0))
            .expect("soonest");
        if (v, p, out) == (from, at, None) {
            return None;
        }
        routes[from] = left;
        let taken_out = out.map(|e| routes[v].remove(e));
        routes[v].insert(p, c);
        Some(taken_out)
    }

    /// Seconds immediate stop `s` starts past the time the search held it due (see
    /// [`Self::new`]) beyond its lateness, which counts already: zero for any other stop.
    fn held(&self, s: &SimStop) -> i64 {
        if !self.is_immediate(s.client) {
            return 0;
        }
        let due = self.inst.clients[s.client as usize].late;
        ((s.start - due).max(0) - s.late).max(0)
    }

    /// Seconds stop `s` starts past the hour's grace after the time it had before a re-plan.
    fn moved_later(&self, s: &SimStop) -> i64 {
        let was = self.inst.clients[s.client as usize].was;
        was.map_or(0, |was| (s.start - was - weights::DELAY_GRACE).max(0))
    }

    /// What vehicle `v`'s round replayed as `sim` adds to a plan's rank (see [`Self::rank`]): its
    /// travel, overtime, lateness, immediate visits held, and visits moved to it or much later.
    /// A round of nothing but a break is no round and costs nothing, unless the clinician is
    /// out and drives back anyway: then it costs that drive (after the break, if any), as the
    /// search prices it.
    fn round_cost(&self, v: usize, sim: &Sim) -> i64 {
        if sim
            .stops
            .iter()
            .all(|s| self.inst.clients[s.client as usize].prize.is_none())
        {
            if !self.inst.vehicles[v].returns_empty {
                return 0;
            }
            return weights::TRAVEL * sim.travel + weights::OVERTIME * sim.overtime;
        }
        let mut cost = weights::TRAVEL * sim.travel + weights::OVERTIME * sim.overtime;
        for s in &sim.stops {
            let moved = self.inst.clients[s.client as usize]
                .home
                .is_some_and(|h| h as usize != v);
            cost += weights::LATENESS * (s.late + self.held(s))
                + weights::DELAY * self.moved_later(s)
                + if moved { weights::REASSIGN } else { 0 };
        }
        cost
    }

    /// How a plan made of `routes` ranks: its summary's cost (fixed work aside, which every
    /// candidate shares), each immediate visit's start past the time the search held it due
    /// counted as lateness there too: the measure the search minimises, taken as driven.
    fn rank(&self, routes: &[Vec<u32>]) -> i64 {
        let mut served = vec![false; self.items.len()];
        let mut rank = 0;
        for (v, route) in routes.iter().enumerate() {
            rank += self.round_cost(v, &self.simulate(v, route));
            for &c in route {
                served[c as usize] = true;
            }
        }
        let left_out = (self.inst.clients.iter().zip(&served))
            .filter(|(_, served)| !**served)
            .filter_map(|(client, _)| client.prize);
        rank + left_out.sum::<i64>()
    }

    /// Makes the rounds better by the plan's own measure wherever a stop is late or an
    /// immediate visit held. Each such round in turn: one of its stops moves to the place
    /// that lowers the rank most, anywhere in its own round or beside one of its granular
    /// neighbours in a round that may take it; only when no move helps is the visit whose
    /// going lowers the rank most left for another day (leaving one out first can bar the
    /// moves that would have mended the day without it). A round changed, and still late, is
    /// taken up again.
    ///
    /// The search prices lateness as time warp, which hands a late stop's overrun back to the
    /// stops after it; replayed as driven, they are late too, so its answer can order a late
    /// round worse than another order would. Days without lateness are left as they are, and
    /// the changes are capped so that an over-full day (where many rounds hold an immediate
    /// visit back and little can be done about it) is not held up.
    fn settle_lateness(&self, routes: &mut [Vec<u32>]) {
        let mut costs = Vec::with_capacity(routes.len());
        let mut late = Vec::with_capacity(routes.len());
        for (v, route) in routes.iter().enumerate() {
            let sim = self.simulate(v, route);
            costs.push(self.round_cost(v, &sim));
            late.push(sim.stops.iter().any(|s| s.late + self.held(s) > 0));
        }
        let mut queue: Vec<usize> = (0..routes.len()).filter(|&v| late[v]).rev().collect();
        let mut changes_left = SETTLE_CHANGES_PER_ROUND * queue.len();
        while changes_left > 0
            && let Some(from) = queue.pop()
        {
            if !late[from] {
                continue;
            }
            let Some(change) = self.settling_change(routes, &costs, from) else {
                continue;
            };
            changes_left -= 1;
            let c = routes[from].remove(change.take);
            let to = change.to;
            if let Some((to, q)) = to {
                if let Some(e) = change.eject {
                    routes[to].remove(e);
                }
                routes[to].insert(q, c);
            }
            for v in [Some(from), to.map(|t| t.0)].into_iter().flatten() {
                let sim = self.simulate(v, &routes[v]);
                costs[v] = self.round_cost(v, &sim);
                late[v] = sim.stops.iter().any(|s| s.late + self.held(s) > 0);
                if late[v] && !queue.contains(&v) {
                    queue.push(v);
                }
            }
        }
    }

    /// The change [`Self::settle_lateness`] makes to round `from`, if any lowers the rank. A
    /// stop moves (in its round, or beside a granular neighbour in another); failing that, one
    /// is left out; failing that, one moves beside a neighbour in another round in the place
    /// of a stop of less value there, which is left out (a same-day visit an hour late in an
    /// over-full round weighs far more than a routine one deferred from the next).
    fn settling_change(&self, routes: &[Vec<u32>], costs: &[i64], from: usize) -> Option<Settling> {
        let mut round_of = vec![usize::MAX; self.items.len()];
        for (v, route) in routes.iter().enumerate() {
            for &c in route {
                round_of[c as usize] = v;
            }
        }
        // For each stop, the places either side of its granular neighbours in other rounds
        // that may take it, by round: (round, position it would take), once each.
        let near: Vec<Vec<(usize, usize)>> = (routes[from].iter())
            .map(|&c| {
                let mut places = Vec::new();
                for &n in &self.inst.neighbours[c as usize] {
                    let to = round_of[n as usize];
                    if to == usize::MAX || to == from || !self.inst.allowed(c, to) {
                        continue;
                    }
                    let at = routes[to].iter().position(|&x| x == n).expect("routed");
                    places.extend([(to, at), (to, at + 1)]);
                }
                places.sort_unstable();
                places.dedup();
                places
            })
            .collect();
        // (gain, position, where it goes) of the best move and of the best leaving out.
        type Change = Option<(i64, usize, Option<(usize, usize)>)>;
        let (mut moved, mut dropped): (Change, Change) = (None, None);
        let better = |best: &Change, gain: i64| gain > best.map_or(0, |b| b.0);
        // What round `from` costs without each of its stops (`None`: over its limit).
        let mut left_costs = vec![None; routes[from].len()];
        for (p, &c) in routes[from].iter().enumerate() {
            let mut left = routes[from].clone();
            left.remove(p);
            let without = self.simulate(from, &left);
            // Taking a stop out can move where a break is taken, and with it the drive home.
            if without.over_limit > 0 {
                continue;
            }
            let left_cost = self.round_cost(from, &without);
            left_costs[p] = Some(left_cost);
            if let Some(prize) = self.inst.clients[c as usize].prize {
                let gain = costs[from] - left_cost - prize;
                if better(&dropped, gain) {
                    dropped = Some((gain, p, None));
                }
            }
            // Every place in its own round, and either side of each neighbour elsewhere.
            let own = (0..=left.len()).map(|q| (from, q));
            for (to, q) in own.chain(near[p].iter().copied()) {
                let mut trial = if to == from {
                    left.clone()
                } else {
                    routes[to].clone()
                };
                trial.insert(q, c);
                let sim = self.simulate(to, &trial);
                if sim.over_limit > 0 {
                    continue;
                }
                let now = self.round_cost(to, &sim);
                let gain = if to == from {
                    costs[from] - now
                } else {
                    costs[from] + costs[to] - left_cost - now
                };
                if better(&moved, gain) {
                    moved = Some((gain, p, Some((to, q))));
                }
            }
        }
        if let Some((_, take, to)) = moved.or(dropped) {
            return Some(Settling {
                take,
                to,
                eject: None,
            });
        }
        let mut best: Option<(i64, Settling)> = None;
        for (p, &c) in routes[from].iter().enumerate() {
            let (Some(left_cost), Some(value)) =
                (left_costs[p], self.inst.clients[c as usize].prize)
            else {
                continue;
            };
            for places in near[p].chunk_by(|a, b| a.0 == b.0) {
                let to = places[0].0;
                for (e, &x) in routes[to].iter().enumerate() {
                    let Some(loss) = self.inst.clients[x as usize].prize else {
                        continue;
                    };
                    if loss >= value {
                        continue;
                    }
                    // The places beside the neighbours once `x` has gone (either side of it
                    // is then the one place where it was).
                    let mut spots: Vec<usize> = (places.iter())
                        .map(|&(_, q)| if q > e { q - 1 } else { q })
                        .collect();
                    spots.dedup();
                    for q in spots {
                        let mut trial = routes[to].clone();
                        trial.remove(e);
                        trial.insert(q, c);
                        let sim = self.simulate(to, &trial);
                        if sim.over_limit > 0 {
                            continue;
                        }
                        let gain =
                            costs[from] + costs[to] - left_cost - self.round_cost(to, &sim) - loss;
                        if gain > best.as_ref().map_or(0, |b| b.0) {
                            let change = Settling {
                                take: p,
                                to: Some((to, q)),
                                eject: Some(e),
                            };
                            best = Some((gain, change));
                        }
                    }
                }
            }
        }
        best.map(|(_, change)| change)
    }

    fn is_immediate(&self, c: u32) -> bool {
        self.immediate[c as usize]
    }

    /// How a reason names item `c`: its id, and its care home's for a resident.
    fn item_id(&self, c: u32) -> (String, Option<String>) {
        match self.items[c as usize] {
            Item::Visit(i) => (self.problem.visits[i].id.clone(), None),
            Item::Resident(h, r) => {
                let home = &self.problem.care_homes[h];
                (home.residents[r].id.clone(), Some(home.id.clone()))
            }
            Item::Break(_) => unreachable!("a break is reported as its clinician's, never by id"),
        }
    }

    /// What putting `c` at position `p` of vehicle `v`'s `route` (replayed as `base`) does: the
    /// insertion, and the harm to the stops after it (see [`Placed`]). Both finding a place
    /// that harms nobody and explaining why there is none start from this.
    fn place(&self, v: usize, route: &[u32], base: &Sim, p: usize, c: u32) -> Placed {
        let mut harm = Harm::default();
        let ins = self.insertion(v, route, base, p, c, |s, was| {
            // An immediate visit is late to the plan once past the time the search held it
            // due, well before its window ends (see `Compiled::rank`).
            let extra = s.late + self.held(s) - was.late - self.held(was);
            if extra > 0 {
                harm.added += extra;
                let slot = if self.is_immediate(s.client) {
                    &mut harm.immediate
                } else if matches!(self.items[s.client as usize], Item::Break(_)) {
                    &mut harm.brk
                } else {
                    &mut harm.other
                };
                if slot.is_none_or(|w| extra > w.0) {
                    *slot = Some((extra, s.client));
                }
            }
        });
        Placed { ins, harm }
    }

    /// Seats urgent work `c` (immediate or same-day) that fits nowhere as the rounds stand,
    /// rather than leave it out: at the place, in any round that may take it, where it makes
    /// nobody else later and keeps the clinician within their limit; in the round as it is, or
    /// with one stop of less value left out to make the time, where that going harms nobody (a
    /// break taken where the clinician then is moves with it). Chosen by the objective: its own
    /// lateness (an immediate visit's past the time the search held it due) and the value of
    /// any stop left out together, then the travel added; so a routine visit makes way before
    /// an urgent patient is seen a second late, while a same-day visit makes way for an
    /// immediate one only where the call would otherwise be seen nearly 28 hours late. Only
    /// while that weighs less than leaving `c` out (a same-day
    /// visit 100 000 seconds late, nearly 28 hours, would not). The search plans such visits
    /// itself; this is for one its rounds left out where they were over-full (settled
    /// afterwards, or kept within their limits), which the places that harm nobody would
    /// otherwise never put back. None if it stays out; else the stop left out in its place, if
    /// any, which the caller tries elsewhere and explains.
    fn seat_urgent(&self, routes: &mut [Vec<u32>], c: u32) -> Option<Option<u32>> {
        let value = self.inst.clients[c as usize].prize?;
        if value < weights::UNSERVED_SAME_DAY {
            return None;
        }
        // ((lateness and loss as weighed, travel added), round, stop left out, position).
        type Late = ((i64, i64), usize, Option<usize>, usize);
        let mut best: Option<Late> = None;
        for v in (0..self.vehicles.len()).filter(|&v| self.inst.allowed(c, v)) {
            let route = &routes[v];
            let now = self.simulate(v, route);
            let lighter = route.iter().enumerate().filter_map(|(i, &x)| {
                // Breaks have no prize: they are never left out.
                let loss = self.inst.clients[x as usize].prize.filter(|&l| l < value)?;
                let (left, sim) = self.without(v, route, &now, i)?;
                Some((loss, Some(i), left, sim))
            });
            let bases = std::iter::once((0, None, route.clone(), now.clone())).chain(lighter);
            for (loss, out, base_route, base) in bases {
                for p in 0..=base_route.len() {
                    let placed = self.place(v, &base_route, &base, p, c);
                    if placed.harm.added > 0 || placed.ins.over_limit > 0 {
                        continue;
                    }
                    let stop = &placed.ins.stop;
                    let weighed = weights::LATENESS
                        .saturating_mul(stop.late + self.held(stop))
                        .saturating_add(loss);
                    let key = (weighed, base.travel + placed.ins.travel - now.travel);
                    if best.is_none_or(|b| key < b.0) {
                        best = Some((key, v, out, p));
                    }
                }
            }
        }
        let ((weighed, _), v, out, p) = best?;
        if weighed >= value {
            return None;
        }
        let x = out.map(|i| routes[v].remove(i));
        routes[v].insert(p, c);
        Some(x)
    }

    /// Whether some clinician who may take `c` reaches it alone, straight from the start of
    /// the day, on time and back by their limit. By the speed model no way there is quicker
    /// than straight from the start, so what no one reaches alone fits nowhere.
    fn reachable(&self, c: u32) -> bool {
        (0..self.vehicles.len())
            .filter(|&v| self.inst.allowed(c, v))
            .any(|v| {
                let sim = self.simulate(v, &[c]);
                sim.stops[0].late == 0 && sim.over_limit == 0
            })
    }

    /// Whether some clinician who may take `c` could have reached it alone within their
    /// shift, straight from where and when the shift starts, on time and back by their limit:
    /// the question [`Self::reachable`] asks, of the whole day. On a re-plan they differ where
    /// work under way or a delay has taken the time: the visit then had room in a shift, and
    /// not in what is left of it.
    fn reachable_in_shift(&self, c: u32) -> bool {
        let location = match self.items[c as usize] {
            Item::Visit(i) => self.problem.visits[i].location,
            Item::Resident(h, _) => self.problem.care_homes[h].location,
            Item::Break(_) => return true,
        };
        let client = &self.inst.clients[c as usize];
        (0..self.vehicles.len())
            .filter(|&v| self.inst.allowed(c, v))
            .any(|v| {
                let clinician = &self.problem.clinicians[self.vehicles[v]];
                let end = clinician.end.unwrap_or(clinician.start);
                let travel = travel_matrix(self.problem, &[clinician.start, location, end]);
                let arrival = clinician.shift.start.secs() + travel[1];
                let Some(&(open, _)) = self.windows[c as usize].iter().find(|w| w.1 >= arrival)
                else {
                    return false;
                };
                let mut limit =
                    clinician.shift.end.secs() + 60 * i64::from(clinician.max_overtime_minutes);
                if let Some(off) = clinician.off_from {
                    limit = limit.min(off.secs());
                }
                arrival.max(open) + client.service + travel[5] <= limit
            })
    }

    /// Tries `c` in every position of vehicle `v`'s `route` (replayed as `base`): the first
    /// position where it fits without making anyone late (an immediate visit: later past the
    /// time the search held it due) or overrunning, adding least travel, and the first that
    /// does least harm otherwise, with the reason it does harm.
    fn probe_round(&self, v: usize, route: &[u32], base: &Sim, c: u32) -> RoundProbe {
        let mut probe = RoundProbe::default();
        let urgent = self.inst.clients[c as usize]
            .prize
            .is_some_and(|p| p >= weights::UNSERVED_SAME_DAY);
        for p in 0..=route.len() {
            let placed = self.place(v, route, base, p, c);
            let (ins, harm) = (&placed.ins, &placed.harm);
            if placed.harmless() {
                let d = ins.travel;
                if probe.fit.is_none_or(|b| d < b.0) {
                    probe.fit = Some((d, p));
                }
                continue;
            }
            let self_late = ins.stop.late;
            let damage = harm.added + self_late + (ins.over_limit - base.over_limit).max(0);
            if probe.fail.as_ref().is_some_and(|b| damage >= b.0) {
                continue;
            }
            let reason = if let Some((_, w)) = harm.immediate {
                let (visit, care_home) = self.item_id(w);
                Reason::WouldMakeImmediateLate { visit, care_home }
            } else if let Some((_, w)) = harm.other {
                let (visit, care_home) = self.item_id(w);
                Reason::WouldMakeVisitLate { visit, care_home }
            } else if harm.brk.is_some() {
                Reason::WouldDelayBreak {
                    clinician: self.problem.clinicians[self.vehicles[v]].id.clone(),
                }
            } else if self_late > 0 && !(urgent && ins.over_limit > base.over_limit) {
                // Urgent work may be planned late (`seat_urgent`): for it, a limit passed is
                // what binds.
                Reason::NoRoomInWindow
            } else {
                Reason::WouldExceedShift {
                    clinician: self.problem.clinicians[self.vehicles[v]].id.clone(),
                }
            };
            probe.fail = Some((damage, reason));
        }
        probe
    }

    /// Tries `c` in every position of every round that may take it (`routes`, replayed as
    /// `replays`), each round's trial taken from `probes` while that round is unchanged.
    /// Returns either a position where it fits without making anyone late (an immediate
    /// visit: later past the time the search held it due) or overrunning (vehicle, position),
    /// or the reason none exists: the harm of the place that does least, the first such in
    /// round order.
    fn probe(
        &self,
        routes: &[Vec<u32>],
        replays: &[Sim],
        probes: &mut Probes,
        c: u32,
    ) -> Result<(usize, usize), Reason> {
        let reachable = *probes.reachable[c as usize].get_or_insert_with(|| self.reachable(c));
        // A supplied matrix may make a way through another stop quicker than straight from
        // the start (a road the model does not know): then every position is tried first.
        if !reachable && self.problem.travel.matrix.is_none() {
            return Err(self.unreachable_reason(c));
        }
        let mut best_fit: Option<(i64, usize, usize)> = None;
        let mut best_fail: Option<(i64, &Reason)> = None;
        let nv = self.vehicles.len();
        let tried = (probes.rounds.entry(c))
            .or_insert_with(|| std::iter::repeat_with(|| None).take(nv).collect());
        for v in (0..nv).filter(|&v| self.inst.allowed(c, v)) {
            let slot = &mut tried[v];
            if slot
                .as_ref()
                .is_none_or(|(version, _)| *version != probes.version[v])
            {
                let probe = self.probe_round(v, &routes[v], &replays[v], c);
                *slot = Some((probes.version[v], probe));
            }
        }
        for v in (0..nv).filter(|&v| self.inst.allowed(c, v)) {
            let Some((_, probe)) = &tried[v] else {
                unreachable!("every round that may take it was tried above");
            };
            if let Some((d, p)) = probe.fit
                && best_fit.is_none_or(|b| d < b.0)
            {
                best_fit = Some((d, v, p));
            }
            if let Some((damage, reason)) = &probe.fail
                && best_fail.is_none_or(|b| *damage < b.0)
            {
                best_fail = Some((*damage, reason));
            }
        }
        match (best_fit, best_fail) {
            (Some((_, v, p)), _) => Ok((v, p)),
            (None, Some((_, r))) if reachable => Err(r.clone()),
            (None, _) => Err(self.unreachable_reason(c)),
        }
    }

    /// Why `c`, which no clinician reaches alone from where and when they are free, fits
    /// nowhere: outside every shift, or, on a re-plan where a shift had room for it, no room
    /// in its window (the clinicians are busy then, or running late).
    fn unreachable_reason(&self, c: u32) -> Reason {
        if self.reachable_in_shift(c) {
            Reason::NoRoomInWindow
        } else {
            Reason::OutsideEveryShift
        }
    }

    /// Why `c` cannot be planned at all, before any probing: closed, or no one may do it.
    fn static_reason(&self, c: u32) -> Option<Reason> {
        let (skills, pinned): (&[String], Option<&String>) = match self.items[c as usize] {
            Item::Visit(i) => {
                let v = &self.problem.visits[i];
                (&v.skills, v.pinned_to.as_ref())
            }
            Item::Resident(h, _) => (&self.problem.care_homes[h].skills, None),
            Item::Break(_) => return None,
        };
        if self.vehicles.is_empty() {
            return Some(Reason::NoClinicianWorking);
        }
        if (0..self.vehicles.len()).any(|v| self.inst.allowed(c, v)) {
            return None;
        }
        if let Some(p) = pinned
            && !self
                .vehicles
                .iter()
                .any(|&k| &self.problem.clinicians[k].id == p)
        {
            return Some(Reason::PinnedClinicianUnavailable {
                clinician: p.clone(),
            });
        }
        if let Some(p) = pinned
            && let Some(&k) = self
                .vehicles
                .iter()
                .find(|&&k| &self.problem.clinicians[k].id == p)
        {
            let held = &self.problem.clinicians[k].skills;
            return Some(Reason::PinnedClinicianLacksSkills {
                clinician: p.clone(),
                missing: skills
                    .iter()
                    .filter(|s| !held.contains(s))
                    .cloned()
                    .collect(),
            });
        }
        let missing = skills
            .iter()
            .filter(|s| {
                !self
                    .vehicles
                    .iter()
                    .any(|&k| self.problem.clinicians[k].skills.contains(s))
            })
            .cloned()
            .collect();
        Some(Reason::NoSkilledClinician { missing })
    }
}

/// A replayed stop.
#[derive(Clone, Copy, Debug)]
struct SimStop {
    client: u32,
    arrival: i64,
    start: i64,
    finish: i64,
    late: i64,
    travel: i64,
    /// Where the clinician is when it is done: its location, or for a stop without one (a
    /// break) where they were before it.
    at: u32,
}

/// A stop put into a replayed round (see `Compiled::insertion`).
struct Inserted {
    /// The stop put in.
    stop: SimStop,
    /// Travel it adds to the round.
    travel: i64,
    /// How far past their limit the clinician is back.
    over_limit: i64,
}

/// A stop tried at one place of a replayed round (see `Compiled::place`).
struct Placed {
    ins: Inserted,
    harm: Harm,
}

impl Placed {
    /// On time itself, no later stop later, and the clinician back by their limit (past it is
    /// never a fit, even where the round is past it already: a clinician going off too soon to
    /// get back to their end at all).
    fn harmless(&self) -> bool {
        self.ins.stop.late == 0 && self.harm.added == 0 && self.ins.over_limit == 0
    }
}

/// What a stop put in does to the stops after it: seconds they start later past their windows
/// (immediate ones: past the time the search held them due), and the immediate visit, the
/// break and the other stop it makes latest, with by how much. Explaining why a visit fits
/// nowhere names the worst of these.
#[derive(Default)]
struct Harm {
    added: i64,
    immediate: Option<(i64, u32)>,
    brk: Option<(i64, u32)>,
    other: Option<(i64, u32)>,
}

/// Where one round can take a stop (see `Compiled::probe_round`): the first place it fits
/// harmlessly, adding least travel (travel added, position), and the first that does least
/// harm otherwise (harm, reason).
#[derive(Default)]
struct RoundProbe {
    fit: Option<(i64, usize)>,
    fail: Option<(i64, Reason)>,
}

/// What explaining a day has tried so far, kept while it stays true: each round's trial of each
/// stop left out, tagged with the round's version when it was made, and whether anyone reaches
/// each stop alone. A pass over the stops left out tries again only against the rounds that
/// changed since, so a day with hundreds left out pays for a full pass once. Only stops
/// actually tried have trials kept: on a day at the size limit, one per stop and round would
/// take more memory than the travel matrix.
struct Probes {
    /// Bumped whenever the round changes.
    version: Vec<u64>,
    /// The rounds as last seen, to tell which changed.
    seen: Vec<Vec<u32>>,
    /// Per stop tried, per round: the round's version when tried, and the trial.
    rounds: HashMap<u32, Vec<Option<(u64, RoundProbe)>>>,
    reachable: Vec<Option<bool>>,
}

impl Probes {
    fn new(stops: usize, routes: &[Vec<u32>]) -> Self {
        Probes {
            version: vec![0; routes.len()],
            seen: routes.to_vec(),
            rounds: HashMap::new(),
            reachable: vec![None; stops],
        }
    }

    /// Takes note of every round that differs from when it was last seen.
    fn notice(&mut self, routes: &[Vec<u32>]) {
        for (v, route) in routes.iter().enumerate() {
            if self.seen[v] != *route {
                self.seen[v].clone_from(route);
                self.version[v] += 1;
            }
        }
    }
}

/// A replayed round.
#[derive(Clone, Debug)]
struct Sim {
    depart: i64,
    stops: Vec<SimStop>,
    back: i64,
    travel: i64,
    overtime: i64,
    over_limit: i64,
}

/// How the engine searches a day. A day's plan is wanted in well under a second: build fewer
/// solutions before the first crossover, tune penalties more often than for benchmark
/// instances, and unless the budget affords thousands of crossovers (`Params::anneal_below`),
/// anneal nearly all of it (as every short budget does: `ANNEAL_SHARE` in the engine), one
/// walk per start when it is long enough (`Params::anneal_each_start`). On the network day a
/// 2 s budget affords about 870 crossovers: annealed in two walks its median plan came to
/// 1.000 of the 10 s plan, against 1.010 bred by the genetic search; at 10 s (4 300) the
/// genetic search still plans.
fn day_params() -> Params {
    Params {
        init_size: 10,
        penalty_window: 25,
        anneal_below: 2_000,
        anneal_each_start: true,
        rank_starts: true,
        related_ruins: 0.3,
        ..Params::default()
    }
}

/// A change that settling a late round makes (see [`Compiled::settling_change`]).
struct Settling {
    /// Position of the stop taken out of the late round.
    take: usize,
    /// Where it goes (round, position in that round once `eject` is out); `None` leaves it
    /// out.
    to: Option<(usize, usize)>,
    /// Position of the stop of that round left out to make room, if any.
    eject: Option<usize>,
}

/// Plans the day from scratch. Deterministic for a seed under an iteration budget.
pub fn plan(problem: &Problem, budget: &Budget, seed: u64) -> Result<Plan, RoutingError> {
    solve_from(problem, &DayState::fresh(problem), budget, seed)
}

/// Plans what remains of the day given `state` (shared by [`plan`] and re-planning).
pub(crate) fn solve_from(
    problem: &Problem,
    state: &DayState,
    budget: &Budget,
    seed: u64,
) -> Result<Plan, RoutingError> {
    crate::validate::budget(budget)?;
    // The clock starts before compiling: on a large day the travel matrix and the
    // neighbourhoods take a noticeable share of the budget.
    let limits = budget.limits();
    let comp = Compiled::new(problem, state)?;
    let warm = comp.warm_start(state);
    let replanning = warm.iter().any(|r| !r.is_empty());
    let initial = if replanning {
        vec![warm]
    } else {
        comp.homes_dealt()
    };
    // A re-plan's warm start is descended both ways (see `Params::descend_driven_too`); a
    // day planned from nothing is not: on the demo network's day, whose first descents leave
    // pharmacists' rounds far over-full, judging them as driven made them two to three times
    // slower and the 0.1 s plan about 4 % dearer.
    let params = Params {
        descend_driven_too: replanning,
        ..day_params()
    };
    let solved = engine::solve(&comp.inst, &params, limits, seed, &initial);
    Ok(best_explained(
        &comp,
        state,
        std::iter::once(solved.best.routes).chain(solved.starts),
    ))
}

/// The plan made from whichever of `candidates` ranks best once made fit to drive (the first
/// on a tie).
///
/// The engine prices lateness as time warp: a stop reached late hands the overrun back, so the
/// stops after it look on time. Replayed as driven, each delay carried on, the engine's best
/// can be the worse plan when something is late; an immediate visit the search holds due soon
/// after the soonest start is the usual case. Each candidate is kept within every clinician's
/// limit and settled (see [`Compiled::settle_lateness`]), then ranked by the plan's measure:
/// its rounds' costs (see [`Compiled::round_cost`]) and what leaving out the rest costs. The
/// search's answer comes first, then the solutions it began from and the answer a budget ending
/// after their first descent gives, so a larger budget never ranks worse than that one (when
/// the first descent fits in the budget, as it does on any day but an over-full one). Only
/// the chosen candidate is explained: on an over-full day that takes far longer than ranking.
fn best_explained(
    comp: &Compiled,
    state: &DayState,
    candidates: impl Iterator<Item = Vec<Vec<u32>>>,
) -> Plan {
    // The same solution often comes more than once (a search that found nothing better
    // answers with its start): settle and rank each only once.
    let mut distinct: Vec<Vec<Vec<u32>>> = Vec::new();
    for routes in candidates {
        if !distinct.contains(&routes) {
            distinct.push(routes);
        }
    }
    let (_, routes) = distinct
        .into_iter()
        .map(|mut routes| {
            for (v, route) in routes.iter_mut().enumerate() {
                comp.keep_within_limit(v, route);
            }
            comp.settle_lateness(&mut routes);
            (comp.rank(&routes), routes)
        })
        .min_by_key(|(rank, _)| *rank)
        .expect("the search's answer is a candidate");
    explain(comp, state, routes)
}

/// Places any visit left out of `routes` (kept within every clinician's limit already) that
/// still fits without harm, brings immediate visits forward, explains the rest, and builds the
/// plan.
fn explain(comp: &Compiled, state: &DayState, mut routes: Vec<Vec<u32>>) -> Plan {
    let problem = comp.problem;
    let n = comp.items.len();
    let mut served = vec![false; n];
    for r in &routes {
        for &c in r {
            served[c as usize] = true;
        }
    }
    let mut reasons: Vec<(u32, Reason)> = Vec::new();
    // Visits that fit are placed, then immediate visits brought forward, until neither
    // changes anything (each round of it places a visit or moves an immediate one sooner; the
    // cap only guards against two immediate visits trading places for ever). The reasons are
    // those of the last pass, on the routes as they end.
    let mut rounds_left = n + IMMEDIATE_PASSES;
    let mut probes = Probes::new(n, &routes);
    loop {
        reasons.clear();
        let mut placed = false;
        probes.notice(&routes);
        let mut replays: Vec<Sim> = (routes.iter().enumerate())
            .map(|(v, route)| comp.simulate(v, route))
            .collect();
        // A pass goes on past a visit it places, with that round replayed again: a placed
        // visit only fills a round, so visits probed before it in the pass would not fit now
        // either (with a supplied matrix not always: a stop can be a short cut; the next pass
        // catches those), and the next pass (which runs whenever this one placed one) gives
        // every reason against the rounds as they end. Restarting the pass after each placement
        // cost a pass per visit placed: seconds on a day with hundreds left out.
        for c in 0..n as u32 {
            if served[c as usize] {
                continue;
            }
            if let Some(r) = comp.static_reason(c) {
                reasons.push((c, r));
                continue;
            }
            match comp.probe(&routes, &replays, &mut probes, c) {
                Ok((v, p)) => {
                    routes[v].insert(p, c);
                    replays[v] = comp.simulate(v, &routes[v]);
                    probes.notice(&routes);
                    served[c as usize] = true;
                    placed = true;
                }
                Err(r) => reasons.push((c, r)),
            }
        }
        if placed {
            continue;
        }
        // Urgent work that fits nowhere on time is seated late, or in the place of less
        // valuable work, rather than left out: all such in one pass, the most urgent first, so
        // that nothing seated is then taken out for less; a stop left out for it is tried
        // again in the next. Work nobody may do finds no place: `seat_urgent` tries only the
        // rounds that may take it.
        let mut left_out: Vec<u32> = reasons.iter().map(|&(c, _)| c).collect();
        left_out.sort_by_key(|&c| std::cmp::Reverse(comp.inst.clients[c as usize].prize));
        for &c in &left_out {
            if let Some(out) = comp.seat_urgent(&mut routes, c) {
                served[c as usize] = true;
                if let Some(x) = out {
                    served[x as usize] = false;
                }
                placed = true;
            }
        }
        if placed {
            continue;
        }
        rounds_left = rounds_left.saturating_sub(1);
        if rounds_left == 0 {
            break;
        }
        let Some(taken_out) = comp.bring_immediate_forward(&mut routes) else {
            break;
        };
        for x in taken_out {
            served[x as usize] = false;
        }
    }
    let mut summary = Summary::default();
    let mut unplanned = Vec::new();
    for (c, mut reason) in reasons {
        let (id, home, urgent) = match comp.items[c as usize] {
            Item::Visit(i) => {
                let v = &problem.visits[i];
                (v.id.clone(), None, v.urgency != Urgency::Routine)
            }
            Item::Resident(h, r) => {
                let home = &problem.care_homes[h];
                let res = &home.residents[r];
                let others = (0..n).any(|o| {
                    served[o] && matches!(comp.items[o], Item::Resident(h2, _) if h2 == h)
                });
                if others
                    && matches!(
                        reason,
                        Reason::NoRoomInWindow
                            | Reason::WouldExceedShift { .. }
                            | Reason::WouldMakeVisitLate { .. }
                            | Reason::WouldDelayBreak { .. }
                    )
                {
                    reason = Reason::CareHomeVisitFull;
                }
                (
                    res.id.clone(),
                    Some(home.id.clone()),
                    res.urgency != Urgency::Routine,
                )
            }
            Item::Break(_) => continue,
        };
        if urgent {
            summary.unserved_urgent += 1;
        } else {
            summary.unserved_routine += 1;
        }
        summary.cost += comp.inst.clients[c as usize].prize.unwrap_or(0);
        unplanned.push(Unplanned {
            id,
            care_home: home,
            reason,
        });
    }
    for v in &problem.visits {
        if v.not_at_home {
            unplanned.push(Unplanned {
                id: v.id.clone(),
                care_home: None,
                reason: Reason::PatientNotAtHome,
            });
        }
    }
    let mut rounds = Vec::new();
    for (k, clinician) in problem.clinicians.iter().enumerate() {
        let mut stops = state.fixed.get(k).cloned().unwrap_or_default();
        let fixed_back = stops.last().map(|s| s.finish);
        let returned = state.returned.get(k).copied().flatten();
        let unlisted = state.unlisted.get(k).copied().unwrap_or(0);
        // Lateness already incurred is part of the day's, as the travel to get there is.
        let fixed_late: u64 = stops.iter().map(|s| u64::from(s.late_seconds)).sum();
        summary.late_seconds += fixed_late;
        summary.cost += weights::LATENESS * fixed_late as i64;
        let mut round = Round {
            clinician: clinician.id.clone(),
            depart: stops.first().map_or(clinician.shift.start, |s| {
                Clock::from_secs(s.arrival.secs() - i64::from(s.travel_seconds))
            }),
            back: fixed_back.unwrap_or(clinician.shift.start),
            stops: Vec::new(),
            travel_seconds: stops.iter().map(|s| s.travel_seconds).sum::<u32>()
                + unlisted
                + returned.map_or(0, |r| r.drive),
            unlisted_travel_seconds: unlisted,
            overtime_seconds: 0,
            free_from: state
                .avail
                .get(k)
                .copied()
                .flatten()
                .filter(|&(at, free)| (at, free) != (clinician.start, clinician.shift.start.secs()))
                .map(|(location, free)| FreeFrom {
                    location,
                    at: Clock::from_secs(free),
                }),
        };
        // A round with nothing but a break is no round: the clinician is free all day. Unless
        // they are out, and take it before driving back, as the search priced it.
        let working = comp.vehicles.iter().position(|&x| x == k).filter(|&v| {
            routes[v]
                .iter()
                .any(|&c| !matches!(comp.items[c as usize], Item::Break(_)))
                || (comp.inst.vehicles[v].returns_empty && !routes[v].is_empty())
        });
        if let Some(v) = working {
            let sim = comp.simulate(v, &routes[v]);
            if stops.is_empty() {
                round.depart = Clock::from_secs(sim.depart);
            }
            round.back = Clock::from_secs(sim.back);
            round.travel_seconds += sim.travel as u32;
            // Back at base and sent out again: the drive back is one no stop shows.
            round.unlisted_travel_seconds += returned.map_or(0, |r| r.drive);
            round.overtime_seconds = sim.overtime as u32;
            summary.overtime_seconds += sim.overtime as u64;
            summary.cost += weights::OVERTIME * sim.overtime;
            for s in &sim.stops {
                // Counted against the clinician it had, even one who is no longer working (the
                // search has no cost for that move, which nothing could avoid): the patient
                // still needs telling that someone else is coming.
                let had = state.home.get(&key(problem, comp.items[s.client as usize]));
                if had.is_some_and(|&h| h != k) {
                    summary.reassigned += 1;
                    summary.cost += weights::REASSIGN;
                }
                let later = comp.moved_later(s);
                summary.moved_later_seconds += later as u64;
                summary.cost += weights::DELAY * later;
                let late = s.late;
                summary.late_seconds += late as u64;
                let held = comp.held(s);
                summary.immediate_delay_seconds += held as u64;
                summary.cost += weights::LATENESS * (late + held);
                let item = comp.items[s.client as usize];
                if let Some(home) = problem.care_homes.get(match item {
                    Item::Resident(h, _) => h,
                    _ => usize::MAX,
                }) && let Some(prev) = stops.last_mut()
                    && prev.kind == StopKind::CareHome
                    && prev.id == home.id
                    && s.travel == 0
                    && s.start == prev.finish.secs()
                    && !prev.fixed
                {
                    if let Item::Resident(h, r) = item {
                        prev.residents
                            .push(problem.care_homes[h].residents[r].id.clone());
                    }
                    prev.finish = Clock::from_secs(s.finish);
                    prev.late_seconds += late as u32;
                    continue;
                }
                let (kind, id, residents) = match item {
                    Item::Visit(i) => (StopKind::Visit, problem.visits[i].id.clone(), Vec::new()),
                    Item::Resident(h, r) => (
                        StopKind::CareHome,
                        problem.care_homes[h].id.clone(),
                        vec![problem.care_homes[h].residents[r].id.clone()],
                    ),
                    Item::Break(_) => (StopKind::Break, String::new(), Vec::new()),
                };
                stops.push(Stop {
                    kind,
                    id,
                    residents,
                    arrival: Clock::from_secs(s.arrival),
                    start: Clock::from_secs(s.start),
                    finish: Clock::from_secs(s.finish),
                    waiting_seconds: (s.start - s.arrival) as u32,
                    late_seconds: late as u32,
                    travel_seconds: s.travel as u32,
                    fixed: false,
                });
            }
        } else if fixed_back.is_some() || unlisted > 0 {
            // Only fixed stops, or none but a door reached whose visit left the round: a
            // clinician on the way back (or back) is back when the drive ends; one still out
            // drives back from where and when they are free (with no stop to show, that is
            // when the round departs); one gone off sick ends with their last stop, or with
            // no stop to show, when they went off.
            let earlier = state.departed.get(k).copied().flatten();
            match (fixed_back, returned, state.avail[k]) {
                (None, None, Some((_, free))) => round.depart = Clock::from_secs(free),
                (None, _, _) => round.depart = earlier.unwrap_or(round.depart),
                _ => {}
            }
            // Gone off sick still on the way to the door the round departs from (see above):
            // the round ends when they went, and departs no later.
            if let (None, None, Some(off)) = (fixed_back, state.avail[k], clinician.off_from) {
                round.depart = round.depart.min(off);
            }
            let last = fixed_back.unwrap_or_else(|| {
                clinician
                    .off_from
                    .map_or(round.depart, |off| off.max(round.depart))
            });
            let last = match state.last_free.get(k).copied().flatten() {
                Some(free) => last.max(Clock::from_secs(free)),
                None => last,
            };
            let back = match (returned, state.avail[k]) {
                (Some(r), _) => Some(r.back.secs()),
                (None, Some((here, free))) => {
                    let end = clinician.end.unwrap_or(clinician.start);
                    let drive = travel_matrix(problem, &[here, end])[1];
                    round.travel_seconds += drive as u32;
                    Some(free + drive)
                }
                (None, None) => None,
            };
            round.back = back.map_or(last, Clock::from_secs);
            if let Some(back) = back {
                // Driving back when they went off sick, they are over only past the shift.
                let shift_end = match (returned, clinician.off_from) {
                    (None, Some(off)) => off.min(clinician.shift.end),
                    _ => clinician.shift.end,
                };
                let overtime = (back - shift_end.secs()).max(0);
                round.overtime_seconds = overtime as u32;
                summary.overtime_seconds += overtime as u64;
                summary.cost += weights::OVERTIME * overtime;
            }
        }
        round.stops = stops;
        summary.travel_seconds += u64::from(round.travel_seconds);
        summary.cost += weights::TRAVEL * i64::from(round.travel_seconds);
        rounds.push(round);
    }
    Plan {
        rounds,
        unplanned,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CareHome, Clinician, Resident, Travel, Visit};

    fn clinician(id: &str, skill: &str) -> Clinician {
        Clinician {
            id: id.into(),
            start: Location {
                lat: 50.72,
                lon: -1.88,
            },
            end: None,
            shift: Window {
                start: Clock::hm(9, 0),
                end: Clock::hm(17, 0),
            },
            break_: None,
            skills: vec![skill.into()],
            max_overtime_minutes: 0,
            off_from: None,
        }
    }

    /// A half-hour break that may start between `start` and `end`.
    fn half_hour_break(start: Clock, end: Clock) -> Break {
        Break {
            window: Window { start, end },
            minutes: 30,
        }
    }

    fn home(id: &str, residents: u32, km_north: f64) -> CareHome {
        CareHome {
            id: id.into(),
            location: Location {
                lat: 50.72 + km_north / 111.2,
                lon: -1.88,
            },
            windows: Vec::new(),
            skills: vec!["pharmacist".into()],
            residents: (0..residents)
                .map(|r| Resident {
                    id: format!("{id}-{r}"),
                    minutes: 20,
                    urgency: Urgency::Routine,
                    days_overdue: 0,
                })
                .collect(),
        }
    }

    /// A visit of `minutes` at the practice where [`clinician`] starts, so that no place
    /// costs travel, in `windows` (none: any time).
    fn at_practice(id: &str, minutes: u32, urgency: Urgency, windows: Vec<Window>) -> Visit {
        Visit {
            id: id.into(),
            location: Location {
                lat: 50.72,
                lon: -1.88,
            },
            windows,
            minutes,
            skills: Vec::new(),
            urgency,
            days_overdue: 0,
            pinned_to: None,
            not_at_home: false,
        }
    }

    #[test]
    fn replaying_an_insertion_only_as_far_as_it_differs_matches_a_full_replay() {
        // One short shift with a break and windows that make a put-in stop delay some stops,
        // wait out the delay at others, and run past the shift's end.
        let mut para = clinician("para", "paramedic");
        para.shift.end = Clock::hm(13, 0);
        para.break_ = Some(half_hour_break(Clock::hm(11, 0), Clock::hm(12, 0)));
        let windows = [
            (9, 0, 9, 40),
            (10, 30, 10, 45),
            (0, 0, 0, 0),
            (11, 30, 13, 0),
        ];
        let visits = (0..8)
            .map(|i| {
                let (a, b, c, d) = windows[i % windows.len()];
                Visit {
                    id: format!("v{i}"),
                    location: Location {
                        lat: 50.72 + (i as f64 * 0.7).sin() * 0.03,
                        lon: -1.88 + (i as f64 * 1.3).cos() * 0.05,
                    },
                    windows: if a == 0 {
                        Vec::new()
                    } else {
                        vec![Window {
                            start: Clock::hm(a, b),
                            end: Clock::hm(c, d),
                        }]
                    },
                    minutes: 20 + 5 * i as u32,
                    skills: Vec::new(),
                    urgency: Urgency::SameDay,
                    days_overdue: 0,
                    pinned_to: None,
                    not_at_home: false,
                }
            })
            .collect();
        let problem = Problem {
            clinicians: vec![para],
            visits,
            care_homes: Vec::new(),
            travel: Travel::default(),
        };
        let comp = Compiled::new(&problem, &DayState::fresh(&problem)).unwrap();
        let n = comp.items.len() as u32;
        assert_eq!(n, 9, "eight visits and a break");
        let (mut converged, mut ran_out) = (0, 0);
        // Several orders, so the break (the last item) falls at different places.
        for (c, k) in (0..n).flat_map(|c| [1, 2, 4, 5].map(|k| (c, k))) {
            let route: Vec<u32> = (0..n).map(|i| i * k % n).filter(|&x| x != c).collect();
            let base = comp.simulate(0, &route);
            for p in 0..=route.len() {
                let mut trial = route.clone();
                trial.insert(p, c);
                let full = comp.simulate(0, &trial);
                let mut seen = Vec::new();
                let ins = comp.insertion(0, &route, &base, p, c, |now, was| {
                    seen.push((now.finish, now.late, was.finish));
                });
                assert_eq!(ins.stop.start, full.stops[p].start, "c {c} at {p}");
                assert_eq!(ins.stop.late, full.stops[p].late, "c {c} at {p}");
                assert_eq!(ins.travel, full.travel - base.travel, "c {c} at {p}");
                assert_eq!(ins.over_limit, full.over_limit, "c {c} at {p}");
                // Every later stop the replay skipped is exactly as it was.
                for (q, s) in full.stops.iter().enumerate().skip(p + 1) {
                    let was = &base.stops[q - 1];
                    match seen.get(q - p - 1) {
                        Some(&(finish, late, before)) => {
                            assert_eq!((finish, late, before), (s.finish, s.late, was.finish));
                        }
                        None => assert_eq!((s.finish, s.late), (was.finish, was.late)),
                    }
                }
                if seen.len() < route.len() - p {
                    converged += 1;
                } else {
                    ran_out += 1;
                }
            }
        }
        assert!(
            converged > 0 && ran_out > 0,
            "{converged} converged, {ran_out} ran out"
        );
    }

    #[test]
    fn an_immediate_visit_brought_forward_takes_the_place_that_moves_fewest_patients_much_later() {
        // Everything at the practice, so no place costs travel. Ana and Ben each have two
        // half-hour visits from 09:00; the patients were told 09:00 and 09:30 for Ana's, 10:00
        // and 10:30 for Ben's. An immediate visit of an hour and a half sits at the end of
        // Ana's round. First in either round it starts at 09:00; first in Ana's, her patients
        // are seen an hour and a half late, past the hour's grace; first in Ben's, his are
        // seen an hour after they were told.
        let at_base = |id: &str, minutes, urgency| at_practice(id, minutes, urgency, Vec::new());
        let problem = Problem {
            clinicians: vec![clinician("ana", "paramedic"), clinician("ben", "paramedic")],
            visits: vec![
                at_base("a1", 30, Urgency::Routine),
                at_base("a2", 30, Urgency::Routine),
                at_base("b1", 30, Urgency::Routine),
                at_base("b2", 30, Urgency::Routine),
                at_base("call", 90, Urgency::Immediate),
            ],
            care_homes: Vec::new(),
            travel: Travel::default(),
        };
        let mut state = DayState::fresh(&problem);
        for (id, k, hm) in [("a1", 0, 9), ("a2", 0, 9), ("b1", 1, 10), ("b2", 1, 10)] {
            let half = if id.ends_with('2') { 1800 } else { 0 };
            state.home.insert(Key::Visit(id.into()), k);
            state.was.insert(Key::Visit(id.into()), hm * 3600 + half);
        }
        let comp = Compiled::new(&problem, &state).unwrap();
        let mut routes = vec![vec![0, 1, 4], vec![2, 3]];
        assert_eq!(comp.bring_immediate_forward(&mut routes), Some(Vec::new()));
        assert_eq!(routes, [vec![0, 1], vec![4, 2, 3]]);
        let delayed: i64 = (0..2)
            .flat_map(|v| comp.simulate(v, &routes[v]).stops)
            .map(|s| comp.moved_later(&s))
            .sum();
        assert_eq!(delayed, 0);
    }

    #[test]
    fn an_immediate_visit_held_back_takes_the_place_of_a_routine_visit_not_a_same_day_one() {
        // At the practice, so no travel. Ana's round holds a call behind an hour's visit that
        // must start by 09:10: the call starts at 10:00, 55 minutes after it is due. Put first,
        // the call makes the visit late, so only taking that visit out sees the call at 09:00;
        // a routine visit goes (the caller places it elsewhere or says why), a same-day one
        // stays.
        let by_ten_past_nine = vec![Window {
            start: Clock::hm(9, 0),
            end: Clock::hm(9, 10),
        }];
        let day = |urgency| Problem {
            clinicians: vec![clinician("ana", "paramedic")],
            visits: vec![
                at_practice("visit", 60, urgency, by_ten_past_nine.clone()),
                at_practice("call", 30, Urgency::Immediate, Vec::new()),
            ],
            care_homes: Vec::new(),
            travel: Travel::default(),
        };
        let routine = day(Urgency::Routine);
        let comp = Compiled::new(&routine, &DayState::fresh(&routine)).unwrap();
        let mut routes = vec![vec![0, 1]];
        assert_eq!(comp.bring_immediate_forward(&mut routes), Some(vec![0]));
        assert_eq!(routes, [vec![1]]);
        assert_eq!(comp.simulate(0, &routes[0]).stops[0].start, 9 * 3600);
        let same_day = day(Urgency::SameDay);
        let comp = Compiled::new(&same_day, &DayState::fresh(&same_day)).unwrap();
        let mut routes = vec![vec![0, 1]];
        assert_eq!(comp.bring_immediate_forward(&mut routes), None);
        assert_eq!(routes, [vec![0, 1]]);
    }

    #[test]
    fn a_visit_reached_in_time_only_through_another_is_found_a_place() {
        // Ana starts at the practice. By the speed model the far visit, at 08:30 at the
        // latest, is an hour's drive away; the supplied matrix knows a road from the near
        // visit that takes fifteen minutes. Alone she would be late; after the near visit,
        // she is not.
        let mut ana = clinician("ana", "paramedic");
        ana.shift.start = Clock::hm(8, 0);
        let near = at_practice("near", 10, Urgency::Routine, Vec::new());
        let mut far = at_practice(
            "far",
            10,
            Urgency::SameDay,
            vec![Window {
                start: Clock::hm(8, 0),
                end: Clock::hm(8, 30),
            }],
        );
        far.location.lat += 20.0 / 111.2;
        let mut near = near;
        near.location.lat += 0.6 / 111.2;
        let day = Problem {
            clinicians: vec![ana],
            visits: vec![near.clone(), far.clone()],
            care_homes: Vec::new(),
            travel: Travel {
                speed_kmh: 20.0,
                matrix: Some(crate::TravelMatrix {
                    points: vec![near.location, far.location],
                    seconds: vec![vec![0, 900], vec![900, 0]],
                }),
                ..Travel::default()
            },
        };
        let comp = Compiled::new(&day, &DayState::fresh(&day)).unwrap();
        assert!(comp.simulate(0, &[1]).stops[0].late > 0, "late alone");
        let routes = vec![vec![0]];
        let replays = vec![comp.simulate(0, &routes[0])];
        let mut probes = Probes::new(comp.items.len(), &routes);
        assert_eq!(comp.probe(&routes, &replays, &mut probes, 1), Ok((0, 1)));
    }

    #[test]
    fn a_round_past_its_limit_drops_routine_visits_before_an_immediate_one() {
        // Ana works 09:00-10:00 at the practice with no overtime. A round of two routine
        // visits of 15 minutes and a call of 30 runs 20 minutes over: taking the call out
        // alone would end it, but the two routine visits go instead.
        let mut ana = clinician("ana", "paramedic");
        ana.shift.end = Clock::hm(10, 0);
        let day = Problem {
            clinicians: vec![ana],
            visits: vec![
                at_practice("r1", 15, Urgency::Routine, Vec::new()),
                at_practice("call", 50, Urgency::Immediate, Vec::new()),
                at_practice("r2", 15, Urgency::Routine, Vec::new()),
            ],
            care_homes: Vec::new(),
            travel: Travel::default(),
        };
        let comp = Compiled::new(&day, &DayState::fresh(&day)).unwrap();
        let mut route = vec![0, 1, 2];
        assert_eq!(comp.simulate(0, &route).over_limit, 20 * 60);
        comp.keep_within_limit(0, &mut route);
        assert_eq!(route, [1]);
        assert_eq!(comp.simulate(0, &route).over_limit, 0);
    }

    #[test]
    fn urgent_work_left_out_takes_the_place_of_the_least_overdue_routine_visit() {
        // Ana works 09:00-11:00 at the practice: two hours, two routine visits of an hour (one
        // three days overdue) fill it. A same-day visit of an hour fits only in place of one:
        // the one not overdue waits. A routine visit never makes room this way, nor does
        // urgent work take the place of work as valuable as itself (a same-day visit of two
        // hours).
        let at_base = |id: &str, urgency, days_overdue| Visit {
            days_overdue,
            ..at_practice(id, if id == "long" { 120 } else { 60 }, urgency, Vec::new())
        };
        let mut ana = clinician("ana", "paramedic");
        ana.shift.end = Clock::hm(11, 0);
        let problem = Problem {
            clinicians: vec![ana],
            visits: vec![
                at_base("fresh", Urgency::Routine, 0),
                at_base("overdue", Urgency::Routine, 3),
                at_base("today", Urgency::SameDay, 0),
                at_base("long", Urgency::SameDay, 0),
            ],
            care_homes: Vec::new(),
            travel: Travel::default(),
        };
        let comp = Compiled::new(&problem, &DayState::fresh(&problem)).unwrap();
        let mut routes = vec![vec![0, 1]];
        assert_eq!(comp.seat_urgent(&mut routes, 2), Some(Some(0)));
        assert_eq!(routes[0].len(), 2);
        assert!(routes[0].contains(&1) && routes[0].contains(&2));
        assert_eq!(comp.simulate(0, &routes[0]).over_limit, 0);
        let mut full = vec![vec![0, 2]];
        assert_eq!(comp.seat_urgent(&mut full, 1), None);
        let mut urgent = vec![vec![3]];
        assert_eq!(comp.seat_urgent(&mut urgent, 2), None);
    }

    #[test]
    fn urgent_work_is_seen_late_by_another_rather_than_put_less_urgent_work_out() {
        // Ana's hour at the practice holds a same-day visit pinned to her, due by 10:01; an
        // immediate call at the practice, left out, fits in her hour only in its place. Ben,
        // twenty kilometres away, can see it about fifty minutes late: by the weights that
        // costs less than a same-day patient not seen at all, so he does, and Ana's visit
        // stays.
        let mut ana = clinician("ana", "paramedic");
        ana.shift = Window {
            start: Clock::hm(10, 0),
            end: Clock::hm(11, 0),
        };
        let mut ben = clinician("ben", "paramedic");
        ben.start = Location {
            lat: 50.72 - 20.0 / 111.2,
            lon: -1.88,
        };
        ben.shift.start = Clock::hm(10, 0);
        let due = |end| {
            vec![Window {
                start: Clock::hm(10, 0),
                end,
            }]
        };
        let problem = Problem {
            clinicians: vec![ana, ben],
            visits: vec![
                Visit {
                    pinned_to: Some("ana".into()),
                    ..at_practice("pinned", 60, Urgency::SameDay, due(Clock::hm(10, 1)))
                },
                at_practice("call", 30, Urgency::Immediate, due(Clock::hm(10, 20))),
            ],
            care_homes: Vec::new(),
            travel: Travel::default(),
        };
        let comp = Compiled::new(&problem, &DayState::fresh(&problem)).unwrap();
        let mut routes = vec![vec![0], vec![]];
        assert_eq!(comp.seat_urgent(&mut routes, 1), Some(None));
        assert_eq!(routes, [vec![0], vec![1]]);
        assert!(comp.simulate(1, &routes[1]).stops[0].late > 0);
    }

    #[test]
    fn urgent_work_never_takes_the_place_of_a_visit_whose_going_makes_another_late() {
        // Ana (09:00-13:30) sees a routine visit `x` at a house 5 km north, takes her break
        // there from noon, and sees a same-day visit `y` next door at 12:30, its latest. A
        // same-day visit `c` of two and a half hours at the practice fits nowhere in that
        // round. Without `x` she would take her break at the practice and reach `y` past
        // 12:40; `c` would then fit before the break without making `y` later still, but
        // taking `x` out has already made `y` late, so no room is made.
        let north = Location {
            lat: 50.72 + 5.0 / 111.2,
            lon: -1.88,
        };
        let mut ana = clinician("ana", "paramedic");
        ana.shift.end = Clock::hm(13, 30);
        ana.break_ = Some(half_hour_break(Clock::hm(12, 0), Clock::hm(12, 30)));
        let y_window = vec![Window {
            start: Clock::hm(12, 30),
            end: Clock::hm(12, 40),
        }];
        let problem = Problem {
            clinicians: vec![ana],
            visits: vec![
                Visit {
                    location: north,
                    ..at_practice("x", 30, Urgency::Routine, Vec::new())
                },
                Visit {
                    location: north,
                    ..at_practice("y", 15, Urgency::SameDay, y_window)
                },
                at_practice("c", 150, Urgency::SameDay, Vec::new()),
            ],
            care_homes: Vec::new(),
            travel: Travel::default(),
        };
        let comp = Compiled::new(&problem, &DayState::fresh(&problem)).unwrap();
        assert!(matches!(comp.items[3], Item::Break(0)));
        let round = vec![0, 3, 1];
        let now = comp.simulate(0, &round);
        assert!(now.stops.iter().all(|s| s.late == 0) && now.over_limit == 0);
        // The first place in Ana's round, replayed as `sim`, where `c` fits harming nobody.
        let fits = |route: &[u32], sim: &Sim| {
            (0..=route.len()).find(|&p| comp.place(0, route, sim, p, 2).harmless())
        };
        assert_eq!(fits(&round, &now), None, "c fits as the round stands");
        // What the check guards against: without `x`, `c` fits before the break, and `y` is
        // late in that round whether or not `c` is in it.
        let without = vec![3, 1];
        let sim = comp.simulate(0, &without);
        assert!(sim.stops[1].late > 0);
        assert_eq!(fits(&without, &sim), Some(0));
        assert!(comp.without(0, &round, &now, 0).is_none());
        let mut routes = vec![round.clone()];
        assert_eq!(comp.seat_urgent(&mut routes, 2), None);
        assert_eq!(routes, [round]);
    }

    #[test]
    fn a_late_visit_takes_the_place_of_a_routine_one_in_another_round() {
        // At the practice, so no travel. Ana (09:00-11:00) has two same-day visits of an hour
        // that must both start by 09:30: one is half an hour late. Ben (09:00-10:00) is full
        // with a routine visit. No order or move mends it, and leaving a same-day visit out
        // costs more than the lateness; the routine visit waits a day instead.
        let by_half_past_nine = vec![Window {
            start: Clock::hm(9, 0),
            end: Clock::hm(9, 30),
        }];
        let visit = |id: &str, urgency| at_practice(id, 60, urgency, by_half_past_nine.clone());
        let mut ana = clinician("ana", "paramedic");
        ana.shift.end = Clock::hm(11, 0);
        let mut ben = clinician("ben", "paramedic");
        ben.shift.end = Clock::hm(10, 0);
        let problem = Problem {
            clinicians: vec![ana, ben],
            visits: vec![
                visit("s1", Urgency::SameDay),
                visit("s2", Urgency::SameDay),
                visit("r", Urgency::Routine),
            ],
            care_homes: Vec::new(),
            travel: Travel::default(),
        };
        let comp = Compiled::new(&problem, &DayState::fresh(&problem)).unwrap();
        let mut routes = vec![vec![0, 1], vec![2]];
        comp.settle_lateness(&mut routes);
        assert_eq!(routes.concat().len(), 2, "{routes:?}");
        assert!(!routes.concat().contains(&2), "{routes:?}");
        for (v, route) in routes.iter().enumerate() {
            assert!(comp.simulate(v, route).stops.iter().all(|s| s.late == 0));
        }
    }

    #[test]
    fn a_longer_search_may_always_answer_what_the_shortest_would() {
        // The plan is the best by its own measure of the search's answer and the starts it
        // returns, so a larger budget never plans worse than none if those starts hold the
        // answer no search at all gives: the first descent's best, polished.
        let mut para = clinician("para", "paramedic");
        para.break_ = Some(half_hour_break(Clock::hm(12, 0), Clock::hm(13, 30)));
        let visits = (0..14)
            .map(|i| Visit {
                id: format!("v{i}"),
                location: Location {
                    lat: 50.72 + (i as f64 * 0.9).sin() * 0.04,
                    lon: -1.88 + (i as f64 * 1.7).cos() * 0.06,
                },
                windows: if i % 3 == 0 {
                    vec![Window {
                        start: Clock::hm(9 + i / 3, 0),
                        end: Clock::hm(9 + i / 3, 45),
                    }]
                } else {
                    Vec::new()
                },
                minutes: 25 + 5 * (i % 4),
                skills: Vec::new(),
                urgency: if i == 5 {
                    Urgency::Immediate
                } else {
                    Urgency::Routine
                },
                days_overdue: i % 3,
                pinned_to: None,
                not_at_home: false,
            })
            .collect();
        let problem = Problem {
            clinicians: vec![
                para,
                clinician("para2", "paramedic"),
                clinician("ph", "pharmacist"),
            ],
            visits,
            care_homes: vec![home("oaks", 4, 2.0), home("elms", 3, 5.0)],
            travel: Travel::default(),
        };
        let comp = Compiled::new(&problem, &DayState::fresh(&problem)).unwrap();
        let initial = comp.homes_dealt();
        let mut searched_elsewhere = 0;
        for seed in 1..=3 {
            let solve = |n| {
                let limits = Budget::iterations(n).limits();
                engine::solve(&comp.inst, &day_params(), limits, seed, &initial)
            };
            let none = solve(0);
            assert!(none.starts.contains(&none.best.routes), "seed {seed}");
            for n in [1, 20, 200] {
                let longer = solve(n);
                assert_eq!(longer.starts, none.starts, "seed {seed}, {n} iterations");
                searched_elsewhere += usize::from(longer.best.routes != none.best.routes);
            }
        }
        assert!(searched_elsewhere > 0, "no budget found another answer");
    }

    #[test]
    fn each_start_keeps_every_care_home_whole_and_deals_the_homes_differently() {
        let mut problem = Problem {
            clinicians: vec![
                clinician("para", "paramedic"),
                clinician("ph1", "pharmacist"),
                clinician("ph2", "pharmacist"),
            ],
            visits: Vec::new(),
            care_homes: vec![home("oaks", 3, 2.0), home("elms", 2, 4.0)],
            travel: Travel::default(),
        };
        let comp = Compiled::new(&problem, &DayState::fresh(&problem)).unwrap();
        let starts = comp.homes_dealt();
        assert_eq!(
            starts.len(),
            2,
            "one start per pharmacist who may take a home"
        );
        let round_of = |routes: &[Vec<u32>], home: usize| -> usize {
            let rounds: Vec<usize> = (0..routes.len())
                .filter(|&v| {
                    routes[v].iter().any(
                        |&c| matches!(comp.items[c as usize], Item::Resident(h, _) if h == home),
                    )
                })
                .collect();
            assert_eq!(
                rounds.len(),
                1,
                "home {home} split across rounds {rounds:?}"
            );
            let residents = problem.care_homes[home].residents.len();
            let held = routes[rounds[0]]
                .iter()
                .filter(|&&c| matches!(comp.items[c as usize], Item::Resident(h, _) if h == home))
                .count();
            assert_eq!(held, residents, "home {home} not whole");
            comp.vehicles[rounds[0]]
        };
        let mut oaks_with = Vec::new();
        for routes in &starts {
            let (oaks, elms) = (round_of(routes, 0), round_of(routes, 1));
            assert_ne!(oaks, elms, "both homes dealt to one pharmacist");
            assert!(oaks != 0 && elms != 0, "a home dealt to the paramedic");
            oaks_with.push(oaks);
        }
        assert_ne!(
            oaks_with[0], oaks_with[1],
            "the starts deal the homes alike"
        );

        // A day with no care home starts from nothing, as before.
        problem.care_homes.clear();
        let comp = Compiled::new(&problem, &DayState::fresh(&problem)).unwrap();
        assert!(comp.homes_dealt().is_empty());
    }
}
