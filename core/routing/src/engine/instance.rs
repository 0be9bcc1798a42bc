//! The engine's compiled problem: integer stops, vehicles, a travel matrix and the weights that
//! turn a set of routes into one number. Both the VRPTW reader and the home-visit planner
//! compile into this, so one search serves both.

use std::collections::HashMap;

use super::segment::{Matrix, NO_LOC, Seg};

/// What makes two clients twins (see [`Instance::twin`]): location, service, window, demand,
/// several windows, previous vehicle and start, and the vehicles allowed.
type TwinKey = (
    [i64; 5],
    Vec<(i64, i64)>,
    (Option<u32>, Option<i64>),
    Vec<bool>,
);

/// A stop the search places: a visit, one care-home resident, or a clinician's break.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    /// Location in the matrix, or [`NO_LOC`] for a break.
    pub loc: u32,
    /// Time spent at the stop.
    pub service: i64,
    /// Service may start no earlier than this.
    pub early: i64,
    /// Service should start no later than this; later costs time warp. With several windows,
    /// `early` and `late` span them all.
    pub late: i64,
    /// The windows, when there are several (sorted, disjoint); empty for one.
    pub windows: Vec<(i64, i64)>,
    /// Load (1 unit per stop in planning; demand for VRPTW).
    pub demand: i64,
    /// What leaving the stop out costs; `None` means it must be served.
    pub prize: Option<i64>,
    /// The vehicle that had this stop before a re-plan; serving it with another costs
    /// [`Weights::reassign`].
    pub home: Option<u32>,
    /// When this stop was to start before a re-plan; starting it more than
    /// [`Weights::delay_grace`] later costs [`Weights::delay`] per unit beyond.
    pub was: Option<i64>,
    /// Planar coordinates for sector tests in SWAP*, when known.
    pub xy: Option<(f64, f64)>,
}

/// A vehicle (a clinician's day).
#[derive(Clone, Debug)]
pub(crate) struct Vehicle {
    /// Where the day starts.
    pub start_loc: u32,
    /// Where the day ends.
    pub end_loc: u32,
    /// Earliest departure.
    pub early: i64,
    /// Latest return; later costs time warp.
    pub late: i64,
    /// Return after this is overtime.
    pub shift_end: i64,
    /// Capacity in demand units.
    pub capacity: i64,
    /// Whether the vehicle drives back even with nothing to do: a clinician out on a round
    /// when it is planned again (a stop under way, or just done), who is not at their end
    /// location. Such an empty route costs that drive, so the search prices giving them more
    /// work by what it adds, not by the whole way back.
    pub returns_empty: bool,
}

/// How the parts of a solution are weighed against each other.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Weights {
    /// Cost per time unit of travel.
    pub travel: i64,
    /// Cost per time unit of lateness (time warp) in the caller's objective. Zero means windows
    /// are hard (VRPTW): time warp only makes a solution infeasible. Either way the search
    /// crosses infeasible space under an adaptive penalty; this weight decides which solution
    /// is best.
    pub lateness: i64,
    /// Cost per time unit of overtime.
    pub overtime: i64,
    /// Cost of serving a stop with a vehicle other than its `home`.
    pub reassign: i64,
    /// Cost per time unit a stop starts beyond `delay_grace` after its `was`.
    pub delay: i64,
    /// How much later than before a stop may start at no cost.
    pub delay_grace: i64,
}

impl Weights {
    /// Travel alone, with hard windows and no stability terms: the benchmark (VRPTW) objective.
    pub(crate) const TRAVEL_ONLY: Weights = Weights {
        travel: 1,
        lateness: 0,
        overtime: 0,
        reassign: 0,
        delay: 0,
        delay_grace: 0,
    };
}

/// Penalty rates for the infeasibilities the search lets itself pass through.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Penalties {
    /// Per unit of time warp.
    pub tw: i64,
    /// Per unit of load over capacity.
    pub load: i64,
}

impl Penalties {
    /// Both rates ten times over: what solutions built from nothing and repairs start under,
    /// so that they come out nearly feasible.
    pub(crate) fn tenfold(self) -> Penalties {
        Penalties {
            tw: self.tw * 10,
            load: self.load * 10,
        }
    }
}

/// The compiled problem (see the module docs).
pub(crate) struct Instance {
    pub matrix: Matrix,
    pub clients: Vec<Client>,
    pub vehicles: Vec<Vehicle>,
    allowed: Vec<bool>,
    /// Every client may ride with every vehicle.
    pub all_allowed: bool,
    /// All vehicles are interchangeable (same depot, shift and capacity).
    pub homogeneous: bool,
    pub weights: Weights,
    /// Each client's segment in its first window.
    pub client_seg: Vec<Seg>,
    pub start_seg: Vec<Seg>,
    pub end_seg: Vec<Seg>,
    /// Every vehicle ends at the same place within the same hours, so the segment that closes
    /// one route's tail closes it on any vehicle (2-opt* prices swapped tails with it).
    pub one_end: bool,
    /// Some stop has a previous start time, so routes carry a delay cost.
    pub delays: bool,
    /// Granular neighbourhood: for each client, the closest clients by a time-aware proximity.
    pub neighbours: Vec<Vec<u32>>,
    /// Polar angle of each client around the centre, in 1/65536 turns (`None` for a client
    /// without coordinates, such as a break); empty when no centre is known.
    pub angle: Vec<Option<i32>>,
    /// For each client, the first client that differs from it in nothing but its prize (itself
    /// when there is none): the residents of a care home due the same review. Twins cost the
    /// same to insert anywhere, so when one is not worth its place, no twin worth no more is
    /// either.
    pub twin: Vec<u32>,
}

impl Instance {
    /// Compiles the problem. `allowed[c * vehicles + v]` says whether client `c` may ride with
    /// vehicle `v` (`None`: all may). `centre` is the point angles are measured around.
    pub(crate) fn new(
        matrix: Matrix,
        clients: Vec<Client>,
        vehicles: Vec<Vehicle>,
        allowed: Option<Vec<bool>>,
        weights: Weights,
        centre: Option<(f64, f64)>,
        granular: usize,
    ) -> Self {
        let client_seg = clients
            .iter()
            .map(|c| {
                let (early, late) = c.windows.first().copied().unwrap_or((c.early, c.late));
                Seg::stop(c.loc, c.service, early, late, c.demand)
            })
            .collect();
        let start_seg = vehicles
            .iter()
            .map(|v| Seg::stop(v.start_loc, 0, v.early, v.late, 0))
            .collect();
        let end_seg: Vec<Seg> = vehicles
            .iter()
            .map(|v| Seg::stop(v.end_loc, 0, v.early, v.late, 0))
            .collect();
        let homogeneous = vehicles.windows(2).all(|w| {
            let (a, b) = (&w[0], &w[1]);
            (
                a.start_loc,
                a.end_loc,
                a.early,
                a.late,
                a.shift_end,
                a.capacity,
            ) == (
                b.start_loc,
                b.end_loc,
                b.early,
                b.late,
                b.shift_end,
                b.capacity,
            )
        });
        let one_end = end_seg.windows(2).all(|w| w[0] == w[1]);
        let delays = weights.delay > 0 && clients.iter().any(|c| c.was.is_some());
        let all_allowed = allowed.as_ref().is_none_or(|a| a.iter().all(|&x| x));
        let allowed = allowed.unwrap_or_default();
        let angle = match centre {
            Some((cx, cy)) => clients
                .iter()
                .map(|c| {
                    c.xy.map(|(x, y)| {
                        let turn = (y - cy).atan2(x - cx) / std::f64::consts::TAU;
                        (turn.rem_euclid(1.0) * 65536.0) as i32 % 65536
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        let mut inst = Self {
            matrix,
            clients,
            vehicles,
            allowed,
            all_allowed,
            homogeneous: homogeneous && all_allowed,
            weights,
            client_seg,
            delays,
            start_seg,
            end_seg,
            one_end,
            neighbours: Vec::new(),
            angle,
            twin: Vec::new(),
        };
        inst.neighbours = inst.build_neighbours(granular);
        inst.twin = inst.find_twins();
        inst
    }

    /// See [`Instance::twin`].
    fn find_twins(&self) -> Vec<u32> {
        let nv = self.vehicles.len();
        let mut first: HashMap<TwinKey, u32> = HashMap::new();
        (0..self.n())
            .map(|i| {
                let c = &self.clients[i];
                let allowed = if self.all_allowed {
                    Vec::new()
                } else {
                    self.allowed[i * nv..(i + 1) * nv].to_vec()
                };
                let key = (
                    [c.loc as i64, c.service, c.early, c.late, c.demand],
                    c.windows.clone(),
                    (c.home, c.was),
                    allowed,
                );
                *first.entry(key).or_insert(i as u32)
            })
            .collect()
    }

    /// Segment of client `c` in the window a vehicle finishing `before` would use: the first
    /// that has not closed by the time it arrives, waiting for it to open if need be, or the
    /// last if all have closed. This is how the day is driven (arrive, then wait or go in), so
    /// a route walked stop by stop with this choice is priced exactly as it will be replayed.
    #[inline]
    pub(crate) fn seg_after(&self, before: &Seg, c: u32) -> Seg {
        let client = &self.clients[c as usize];
        if client.windows.len() <= 1 {
            return self.client_seg[c as usize];
        }
        let travel = self.matrix.at(before.last, client.loc);
        let arrival = before.finish() + travel;
        let &(early, late) = client
            .windows
            .iter()
            .find(|w| w.1 >= arrival)
            .or(client.windows.last())
            .expect("several windows");
        Seg::stop(client.loc, client.service, early, late, client.demand)
    }

    /// Number of clients.
    pub(crate) fn n(&self) -> usize {
        self.clients.len()
    }

    /// Whether client `c` may ride with vehicle `v`.
    #[inline]
    pub(crate) fn allowed(&self, c: u32, v: usize) -> bool {
        self.all_allowed || self.allowed[c as usize * self.vehicles.len() + v]
    }

    /// Each client's vehicles as bits, `words` words a client, so that whether two clients
    /// share a vehicle takes a word or two to answer rather than a look at every vehicle: the
    /// neighbourhoods ask that of every pair of clients.
    fn vehicle_bits(&self, words: usize) -> Vec<u64> {
        let nv = self.vehicles.len();
        let mut bits = vec![0; self.n() * words];
        for c in 0..self.n() {
            for v in (0..nv).filter(|&v| self.allowed(c as u32, v)) {
                bits[c * words + v / 64] |= 1 << (v % 64);
            }
        }
        bits
    }

    /// Travel between two clients' locations (0 when either has none).
    fn travel(&self, a: &Client, b: &Client) -> i64 {
        self.matrix.at(a.loc, b.loc)
    }

    /// The `k` nearest clients of each client by travel plus weighted waiting and time warp
    /// that following one with the other would cause (the granular neighbourhood).
    ///
    /// Only clients some vehicle may carry together are neighbours: only then can a move put
    /// them next to each other.
    fn build_neighbours(&self, k: usize) -> Vec<Vec<u32>> {
        let n = self.n();
        let words = self.vehicles.len().div_ceil(64);
        let bits = if self.all_allowed {
            Vec::new()
        } else {
            self.vehicle_bits(words)
        };
        let can_share = |i: usize, j: usize| {
            self.all_allowed
                || (bits[i * words..(i + 1) * words].iter())
                    .zip(&bits[j * words..(j + 1) * words])
                    .any(|(a, b)| a & b != 0)
        };
        (0..n)
            .map(|i| {
                let a = &self.clients[i];
                let mut prox: Vec<(i64, u32)> = (0..n)
                    .filter(|&j| {
                        j != i
                            && (a.loc == NO_LOC || self.clients[j].loc != NO_LOC)
                            && can_share(i, j)
                    })
                    .map(|j| {
                        let b = &self.clients[j];
                        let p = |x: &Client, y: &Client| {
                            let t = self.travel(x, y);
                            let wait = (y.early - t - x.service - x.late).max(0);
                            let warp = (x.early + x.service + t - y.late).max(0);
                            10 * t + 2 * wait + 10 * warp
                        };
                        (p(a, b).min(p(b, a)), j as u32)
                    })
                    .collect();
                let k = k.min(prox.len());
                if k > 0 && k < prox.len() {
                    prox.select_nth_unstable(k - 1);
                }
                prox.truncate(k);
                prox.sort_unstable();
                prox.into_iter().map(|(_, j)| j).collect()
            })
            .collect()
    }

    /// Cost of vehicle `v` driving the whole-route segment `s` (start to end depot) with `len`
    /// clients, under penalties `pen`. An unused vehicle costs nothing, unless it
    /// [returns empty](Vehicle::returns_empty).
    #[inline]
    pub(crate) fn route_cost(&self, v: usize, s: &Seg, len: usize, pen: &Penalties) -> i64 {
        let veh = &self.vehicles[v];
        if len == 0 {
            // The drive back of a vehicle that returns empty: nothing it can be late for.
            return if veh.returns_empty {
                self.weights.travel * s.dist
                    + self.weights.overtime * (s.finish() - veh.shift_end).max(0)
            } else {
                0
            };
        }
        let over = (s.finish() - veh.shift_end).max(0);
        self.weights.travel * s.dist
            + pen.tw * s.tw
            + pen.load * (s.load - veh.capacity).max(0)
            + self.weights.overtime * over
    }

    /// Stability cost of route `route` of vehicle `v` for starting stops much later than they
    /// were to start before a re-plan, walking the route as it will be driven. Not part of the
    /// constant-time move prices (a delay depends on every stop before it): the local search
    /// adds it when it checks a move it has made, so no kept move makes the day worse.
    pub(crate) fn delay_cost(&self, v: usize, route: &[u32]) -> i64 {
        if !self.delays {
            return 0;
        }
        let mut s = self.start_seg[v];
        let mut cost = 0;
        for &c in route {
            s = s.then(&self.seg_after(&s, c), &self.matrix);
            let client = &self.clients[c as usize];
            if let Some(was) = client.was {
                let start = s.finish() - client.service;
                cost += (start - was - self.weights.delay_grace).max(0);
            }
        }
        self.weights.delay * cost
    }

    /// Lateness vehicle `v` carries on beyond the time warp `warp` of its `route`, when the
    /// route is driven: leaving at the earliest departure, each stop started in the first of its
    /// windows still open on arrival, late when none is, and the return against the vehicle's
    /// latest. Time warp hands a late stop's overrun back, so the stops after it look on time;
    /// driven, they start late too. The difference is not a segment property (it depends on
    /// every stop before), so like [`Self::delay_cost`] it is added when a route is refreshed,
    /// only while the local search judges moves as driven, and seen by the check of each move
    /// made, not by the constant-time prices. Zero for a route without warp.
    pub(crate) fn carried(&self, v: usize, route: &[u32], warp: i64) -> i64 {
        if warp == 0 {
            return 0;
        }
        let veh = &self.vehicles[v];
        let (mut t, mut at, mut late) = (veh.early, veh.start_loc, 0);
        for &c in route {
            let client = &self.clients[c as usize];
            let arrival = t + self.matrix.at(at, client.loc);
            let (open, close) = match client.windows.iter().find(|w| w.1 >= arrival) {
                Some(&w) => w,
                None if client.windows.is_empty() => (client.early, client.late),
                None => (arrival, client.late),
            };
            let start = arrival.max(open);
            late += (start - close).max(0);
            t = start + client.service;
            if client.loc != NO_LOC {
                at = client.loc;
            }
        }
        late += (t + self.matrix.at(at, veh.end_loc) - veh.late).max(0);
        (late - warp).max(0)
    }

    /// Stability cost of client `c` riding with vehicle `v`.
    #[inline]
    pub(crate) fn reassign(&self, c: u32, v: usize) -> i64 {
        match self.clients[c as usize].home {
            Some(h) if h as usize != v => self.weights.reassign,
            _ => 0,
        }
    }

    /// Starting penalties: a unit of time warp costs as much as a unit of travel (fifty times
    /// that when planning visits, where lateness is part of the objective), and a unit of excess
    /// load about one typical edge, so the search starts free to cross infeasible space; it
    /// raises them while too few solutions come out feasible. Starting the planner at its
    /// lateness weight kept it out of that space and made it several times slower to converge.
    pub(crate) fn initial_penalties(&self) -> Penalties {
        let n = self.n().max(1);
        let edge = self.typical_edge();
        let demand = self.clients.iter().map(|c| c.demand).sum::<i64>() / n as i64;
        Penalties {
            tw: if self.weights.lateness > 0 {
                50 * self.weights.travel
            } else {
                self.weights.travel
            },
            load: (edge / demand.max(1)).clamp(1, 1000),
        }
    }

    /// The cost of a typical short edge: travel from each client to its nearest neighbour,
    /// averaged and priced. It sets the scale of penalties and of annealing temperatures, so
    /// neither depends on the unit the caller measures travel in.
    pub(crate) fn typical_edge(&self) -> i64 {
        let n = self.n().max(1);
        let mut sum = 0i64;
        for (i, c) in self.clients.iter().enumerate() {
            if let Some(&j) = self.neighbours[i].first() {
                sum += self.travel(c, &self.clients[j as usize]);
            }
        }
        self.weights.travel * (sum / n as i64).max(1)
    }

    /// The highest useful time-warp penalty: never above the objective's own lateness weight.
    pub(crate) fn max_tw_penalty(&self) -> i64 {
        if self.weights.lateness > 0 {
            self.weights.lateness
        } else {
            100_000
        }
    }

    /// Both rates at the ceiling of the time-warp rate: what annealing prices under, so that a
    /// walk never buys travel with a late or overfull round.
    pub(crate) fn hard_penalties(&self) -> Penalties {
        Penalties {
            tw: self.max_tw_penalty(),
            load: self.max_tw_penalty(),
        }
    }
}
