//! A complete solution as the genetic search keeps it: one client sequence per vehicle, its
//! evaluation, and the neighbour arrays used to measure how different two solutions are.

use super::instance::{Instance, Penalties};
use super::segment::Seg;

const NONE: u32 = u32::MAX;

/// One solution (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct Individual {
    /// Client sequence of each vehicle, indexed by vehicle.
    pub routes: Vec<Vec<u32>>,
    /// Cost under the penalties it was last evaluated with.
    pub cost: i64,
    /// The caller's objective: travel, overtime, stability (other vehicle, much later) and
    /// prizes, plus lateness at the
    /// caller's weight (zero for VRPTW, where only feasible solutions count).
    pub objective: i64,
    /// Total time warp.
    pub tw: i64,
    /// Total load over capacity.
    pub excess: i64,
    /// No hard constraint is broken and every required client is served.
    pub feasible: bool,
    succ: Vec<u32>,
    pred: Vec<u32>,
}

impl Individual {
    /// Evaluates `routes` (one per vehicle) from scratch.
    pub(crate) fn new(inst: &Instance, routes: Vec<Vec<u32>>, pen: &Penalties) -> Self {
        let n = inst.n();
        let mut succ = vec![NONE; n];
        let mut pred = vec![NONE; n];
        let mut served = vec![false; n];
        let (mut base, mut tw, mut excess) = (0i64, 0i64, 0i64);
        for (v, route) in routes.iter().enumerate() {
            let mut s = inst.start_seg[v];
            let mut prev = NONE;
            for &c in route {
                s = s.then(&inst.seg_after(&s, c), &inst.matrix);
                served[c as usize] = true;
                base += inst.reassign(c, v);
                pred[c as usize] = prev;
                if prev != NONE {
                    succ[prev as usize] = c;
                }
                prev = c;
            }
            let s = s.then(&inst.end_seg[v], &inst.matrix);
            let free = Penalties { tw: 0, load: 0 };
            base += inst.route_cost(v, &s, route.len(), &free) + inst.delay_cost(v, route);
            if !route.is_empty() {
                tw += s.tw;
                excess += (s.load - inst.vehicles[v].capacity).max(0);
            }
        }
        let mut missing_required = false;
        for (c, client) in inst.clients.iter().enumerate() {
            if !served[c] {
                match client.prize {
                    Some(p) => base += p,
                    None => missing_required = true,
                }
            }
        }
        let objective = base + inst.weights.lateness * tw;
        let feasible = tw == 0 && excess == 0 && !missing_required;
        let cost = base + pen.tw * tw + pen.load * excess;
        Self {
            routes,
            cost,
            objective,
            tw,
            excess,
            feasible,
            succ,
            pred,
        }
    }

    /// Re-prices under new penalties without re-walking the routes.
    pub(crate) fn reprice(&mut self, inst: &Instance, pen: &Penalties) {
        let base = self.objective - inst.weights.lateness * self.tw;
        self.cost = base + pen.tw * self.tw + pen.load * self.excess;
    }

    /// Broken-pairs distance: the share of clients whose neighbours differ between the two
    /// solutions (0 identical, 1 nothing shared).
    pub(crate) fn distance(&self, other: &Individual) -> f64 {
        let n = self.succ.len();
        if n == 0 {
            return 0.0;
        }
        let mut broken = 0usize;
        for c in 0..n {
            let s = self.succ[c];
            if s != other.succ[c] && s != other.pred[c] {
                broken += 1;
            }
            let p = self.pred[c];
            if p == NONE && other.pred[c] != NONE && other.succ[c] != NONE {
                broken += 1;
            }
        }
        broken as f64 / n as f64
    }

    /// The whole-route segment of vehicle `v`.
    pub(crate) fn route_seg(inst: &Instance, v: usize, route: &[u32]) -> Seg {
        let mut s = inst.start_seg[v];
        for &c in route {
            s = s.then(&inst.seg_after(&s, c), &inst.matrix);
        }
        s.then(&inst.end_seg[v], &inst.matrix)
    }
}
