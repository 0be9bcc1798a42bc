//! The hybrid genetic search around the local search: a population split into feasible and
//! infeasible halves, each ranked by a biased fitness that mixes cost with how different a
//! solution is from its closest neighbours; parents picked by binary tournament and crossed by
//! route exchange; every child improved by local search; penalties for time warp and excess load
//! tuned so that a target share of children come out feasible (Vidal 2012, 2022).

use std::time::{Duration, Instant};

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::individual::Individual;
use super::instance::{Instance, Penalties};
use super::local_search::{LocalSearch, Schedule};

/// Settings of the genetic search. The defaults are those that served the Solomon set best.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    /// Population size kept after survivor selection.
    pub mu: usize,
    /// Children added before survivors are selected again.
    pub lambda: usize,
    /// Best solutions protected from diversity pressure.
    pub n_elite: usize,
    /// Number of closest solutions whose distance measures diversity.
    pub n_close: usize,
    /// Share of local-search outputs that should be feasible.
    pub target_feasible: f64,
    /// Chance that an infeasible child is repaired under ten-fold penalties.
    pub repair_prob: f64,
    /// Iterations without improvement before the population restarts.
    pub restart_after: u64,
    /// Solutions built before the first crossover.
    pub init_size: usize,
    /// Neighbours per client in the granular neighbourhood.
    pub granular: usize,
    /// Local-search outputs between penalty adjustments.
    pub penalty_window: usize,
    /// When the budget affords fewer crossovers than this, nearly all of it (see
    /// [`ANNEAL_SHARE`]) anneals the first solution by ruin and recreate: with so few
    /// crossovers the genetic search has no time to converge, while annealing improves a
    /// solution thousands of times over. 500 anneals every 200-client benchmark instance at
    /// 1 s and none at 10 s (measured: 200 left the instances with the quickest descents to
    /// the genetic search alone, and they came out worse; 1 000 made the 10 s results worse).
    pub anneal_below: u64,
    /// Anneal each of several starts in turn (the cheapest first, as many as the budget
    /// affords walks: see `CROSSOVERS_PER_WALK`), sharing the annealing's time, rather than
    /// only the best. Walks from different starts end in different arrangements, and the genetic
    /// search then crosses them: on the network day, where the starts deal the care homes
    /// differently, one walk per start left a split home in 2 of forty 1 s plans instead of
    /// 15, and at 60 000 ruins the median plan came within 0.14 % of the 10 s plan against
    /// 0.97 % for one walk. Benchmark instances have one start, so it changes nothing there.
    pub anneal_each_start: bool,
    /// Return beside the best the first solutions and the answer a budget ending after their
    /// descent gives (see [`Solved::starts`]), for a caller that ranks them by a measure of
    /// its own. Costs one polish more; a benchmark instance, priced exactly as the engine
    /// prices it, needs none.
    pub rank_starts: bool,
    /// Descend each start a second time with every move judged as driven (see
    /// [`LocalSearch::judge_as_driven`]) and keep both local optima. For a re-plan's warm start,
    /// where a clinician running late or off sick leaves rounds late: the descent that prices
    /// lateness as time warp alone may trade one late stop for a cascade, or leave out an
    /// immediate visit the other keeps, and the other way round; the caller ranks both.
    pub descend_driven_too: bool,
    /// Share of annealing's ruins that remove stops related in place and time across rounds
    /// instead of strings (see [`Schedule::related`]). For days; on the benchmark instances
    /// three in ten left Gehring-Homberger's RC1 class a little worse at fixed work (two
    /// seeds), so they keep strings alone.
    pub related_ruins: f64,
}

impl Params {
    /// Defaults for an instance of `n` clients. Building a solution from scratch costs about
    /// n² move evaluations, so larger instances build fewer before the first crossover and keep
    /// that phase to a similar share of a short budget (25 solutions at 100 clients, 6 at 200).
    pub(crate) fn for_size(n: usize) -> Self {
        let n = n.max(1);
        Self {
            init_size: (250_000 / (n * n)).clamp(5, 25),
            ..Self::default()
        }
    }
}

impl Default for Params {
    fn default() -> Self {
        Self {
            mu: 25,
            lambda: 40,
            n_elite: 4,
            n_close: 5,
            target_feasible: 0.2,
            repair_prob: 0.5,
            restart_after: 10_000,
            init_size: 25,
            granular: 20,
            penalty_window: 100,
            anneal_below: 500,
            anneal_each_start: false,
            rank_starts: false,
            descend_driven_too: false,
            related_ruins: 0.0,
        }
    }
}

/// When to stop: at a wall-clock deadline, after a number of crossovers, or both.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Limits {
    pub deadline: Option<Instant>,
    pub max_iterations: Option<u64>,
}

impl Limits {
    fn reached(&self, iteration: u64) -> bool {
        self.max_iterations.is_some_and(|m| iteration >= m)
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// One half of the population with the pairwise distances its fitness needs.
#[derive(Default)]
struct SubPop {
    members: Vec<Individual>,
    dist: Vec<Vec<f64>>,
    fitness: Vec<f64>,
}

impl SubPop {
    fn add(&mut self, ind: Individual, params: &Params) {
        let row: Vec<f64> = self.members.iter().map(|m| m.distance(&ind)).collect();
        for (r, &d) in self.dist.iter_mut().zip(&row) {
            r.push(d);
        }
        let mut row = row;
        row.push(0.0);
        self.dist.push(row);
        self.members.push(ind);
        if self.members.len() > params.mu + params.lambda {
            while self.members.len() > params.mu {
                self.update_fitness(params);
                let worst = self.worst();
                self.remove(worst);
            }
        }
        self.update_fitness(params);
    }

    fn remove(&mut self, k: usize) {
        self.members.remove(k);
        self.dist.remove(k);
        for r in &mut self.dist {
            r.remove(k);
        }
    }

    /// Clones first, then the worst biased fitness.
    fn worst(&self) -> usize {
        let clone = (0..self.members.len()).find(|&i| {
            (0..self.members.len()).any(|j| {
                j != i
                    && self.dist[i][j] == 0.0
                    && self.members[j].cost <= self.members[i].cost
                    && (self.members[j].cost < self.members[i].cost || j < i)
            })
        });
        clone.unwrap_or_else(|| {
            (0..self.members.len())
                .max_by(|&a, &b| self.fitness[a].total_cmp(&self.fitness[b]))
                .unwrap_or(0)
        })
    }

    fn update_fitness(&mut self, params: &Params) {
        let n = self.members.len();
        self.fitness = vec![0.0; n];
        if n <= 1 {
            return;
        }
        let mut div: Vec<(f64, usize)> = (0..n)
            .map(|i| {
                let mut d: Vec<f64> = (0..n)
                    .filter(|&j| j != i)
                    .map(|j| self.dist[i][j])
                    .collect();
                let k = params.n_close.min(d.len());
                d.select_nth_unstable_by(k - 1, f64::total_cmp);
                (-(d[..k].iter().sum::<f64>() / k as f64), i)
            })
            .collect();
        let mut by_cost: Vec<usize> = (0..n).collect();
        by_cost.sort_by_key(|&i| self.members[i].cost);
        div.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut div_rank = vec![0.0; n];
        for (rank, &(_, i)) in div.iter().enumerate() {
            div_rank[i] = rank as f64 / (n - 1) as f64;
        }
        let elite_share = 1.0 - (params.n_elite as f64 / n as f64).min(1.0);
        for (rank, &i) in by_cost.iter().enumerate() {
            self.fitness[i] = rank as f64 / (n - 1) as f64 + elite_share * div_rank[i];
        }
    }
}

struct Population {
    feasible: SubPop,
    infeasible: SubPop,
}

impl Population {
    fn add(&mut self, ind: Individual, params: &Params) {
        if ind.feasible {
            self.feasible.add(ind, params);
        } else {
            self.infeasible.add(ind, params);
        }
    }

    fn tournament<'p>(&'p self, rng: &mut SmallRng) -> &'p Individual {
        let total = self.feasible.members.len() + self.infeasible.members.len();
        let pick = |rng: &mut SmallRng| {
            let k = rng.random_range(0..total);
            if k < self.feasible.members.len() {
                (&self.feasible, k)
            } else {
                (&self.infeasible, k - self.feasible.members.len())
            }
        };
        let (pa, a) = pick(rng);
        let (pb, b) = pick(rng);
        if pa.fitness[a] <= pb.fitness[b] {
            &pa.members[a]
        } else {
            &pb.members[b]
        }
    }

    fn len(&self) -> usize {
        self.feasible.members.len() + self.infeasible.members.len()
    }
}

/// Share of the budget left after the first solutions that annealing takes, when it runs. The
/// genetic search gets the rest, bred from what annealing and its descents found. On
/// Gehring-Homberger's 200-client instances at 1 s, the genetic search given half the budget
/// improved on annealing's best in 16 of 60 runs, by 0.07 % on average; annealing for 95 %
/// instead took the class medians of R1 and RC1 down by about 0.13 and 0.17 points (twelve
/// seeds each) and left the other classes and Solomon's as they were. On a network day's
/// tenth of a second, 0.95 gave a median plan 1.038 of the 10 s plan's cost against 1.049 at
/// half (forty seeds).
const ANNEAL_SHARE: f64 = 0.95;

/// Share of the budget the final polish may run past it (see `solve`).
const POLISH_GRACE: f64 = 0.05;

/// Ruins the annealing phase may run per crossover it replaces, when the budget counts
/// crossovers rather than time. Chosen when one descent cost about as much as fifty ruins; since
/// each ruin also smooths the stops it put back, an iteration budget anneals for somewhat longer
/// than the crossovers it replaces would take. Such budgets are for tests and replays, which
/// need the same answer for a seed, not the same time.
const RUINS_PER_CROSSOVER: u64 = 50;

/// Budget, in crossovers it would afford, that each walk of [`Params::anneal_each_start`]
/// needs. On the network day two walks gained nothing at 400 ms (about 170 crossovers' worth)
/// and took the 1 s median from 1.010-1.013 to 1.006 of the 10 s plan (about 430); on the
/// demo network's day three walks in 1 s (about 280) were worse than one.
const CROSSOVERS_PER_WALK: u64 = 150;

/// How many of `starts` to anneal in turn when the budget affords `afforded` crossovers (see
/// [`Params::anneal_each_start`]); at least one.
fn walks(params: &Params, afforded: u64, starts: usize) -> usize {
    if params.anneal_each_start {
        (afforded / CROSSOVERS_PER_WALK).clamp(1, starts.max(1) as u64) as usize
    } else {
        1
    }
}

/// How long to anneal before the genetic search, if at all (see [`Params::anneal_below`]):
/// [`ANNEAL_SHARE`] of the budget, when the budget affords fewer crossovers than
/// `anneal_below`, judged by how long the first descent took (`descent`).
fn anneal_schedule(
    params: &Params,
    limits: &Limits,
    descent: std::time::Duration,
) -> Option<(Schedule, u64)> {
    let now = Instant::now();
    let afforded = match (limits.deadline, limits.max_iterations) {
        (Some(d), _) => {
            let left = d.saturating_duration_since(now);
            (left.as_secs_f64() / descent.as_secs_f64().max(1e-6)) as u64
        }
        (None, Some(m)) => m,
        (None, None) => u64::MAX,
    };
    (afforded < params.anneal_below).then(|| {
        let schedule = Schedule {
            deadline: limits
                .deadline
                .map(|d| now + d.saturating_duration_since(now).mul_f64(ANNEAL_SHARE)),
            iterations: limits.max_iterations.map_or(u64::MAX, |m| {
                (m as f64 * ANNEAL_SHARE) as u64 * RUINS_PER_CROSSOVER
            }),
            related: params.related_ruins,
        };
        (schedule, afforded)
    })
}

/// Whether `x` should replace the best so far. With hard windows only feasible solutions
/// count; when lateness is priced, the objective alone decides (it already includes lateness).
fn better(inst: &Instance, x: &Individual, best: &Option<Individual>) -> bool {
    let Some(b) = best else {
        return true;
    };
    let fits = |s: &Individual| s.excess == 0 && (inst.weights.lateness > 0 || s.feasible);
    match (fits(x), fits(b)) {
        (true, false) => true,
        (false, true) => false,
        (true, true) => x.objective < b.objective,
        (false, false) => x.cost < b.cost,
    }
}

/// Angle of a route's centre of gravity, for ordering routes around the depot.
fn route_angle(inst: &Instance, route: &[u32]) -> i64 {
    let (mut x, mut y) = (0.0, 0.0);
    for &c in route {
        if let Some(Some(a)) = inst.angle.get(c as usize) {
            let a = f64::from(*a) / 65536.0 * std::f64::consts::TAU;
            x += a.cos();
            y += a.sin();
        }
    }
    (y.atan2(x) * 1e6) as i64
}

/// Selective route exchange: a run of neighbouring routes from `a` replaces the routes of `b`
/// that share most clients with them; clients left without a route are reinserted by the local
/// search that follows.
fn crossover(inst: &Instance, a: &Individual, b: &Individual, rng: &mut SmallRng) -> Vec<Vec<u32>> {
    let mut used: Vec<usize> = (0..a.routes.len())
        .filter(|&r| !a.routes[r].is_empty())
        .collect();
    if used.is_empty() {
        return b.routes.clone();
    }
    used.sort_by_key(|&r| (route_angle(inst, &a.routes[r]), r));
    let k = rng.random_range(1..=used.len().div_ceil(2));
    let start = rng.random_range(0..used.len());
    let chosen: Vec<usize> = (0..k).map(|t| used[(start + t) % used.len()]).collect();
    let mut from_a = vec![false; inst.n()];
    for &r in &chosen {
        for &c in &a.routes[r] {
            from_a[c as usize] = true;
        }
    }
    let mut child: Vec<Vec<u32>> = b
        .routes
        .iter()
        .map(|r| r.iter().copied().filter(|&c| !from_a[c as usize]).collect())
        .collect();
    let mut taken = vec![false; child.len()];
    for &r in &chosen {
        let slot = if inst.homogeneous {
            (0..b.routes.len())
                .filter(|&s| !taken[s])
                .max_by_key(|&s| {
                    let overlap = b.routes[s]
                        .iter()
                        .filter(|&&c| a.routes[r].contains(&c))
                        .count();
                    (overlap, std::cmp::Reverse(s))
                })
                .unwrap_or(r)
        } else {
            r
        };
        taken[slot] = true;
        child[slot] = a.routes[r].clone();
    }
    child
}

/// The state one run of the search carries from step to step.
struct Search<'a> {
    inst: &'a Instance,
    params: &'a Params,
    rng: SmallRng,
    ls: LocalSearch<'a>,
    pop: Population,
    best: Option<Individual>,
    /// For each local-search output since the penalties were last tuned: (no time warp, no
    /// excess load).
    history: Vec<(bool, bool)>,
}

impl Search<'_> {
    /// Adds `ind` to the population; true if it is the best so far.
    fn offer(&mut self, ind: Individual) -> bool {
        let improved = better(self.inst, &ind, &self.best);
        if improved {
            self.best = Some(ind.clone());
        }
        self.pop.add(ind, self.params);
        improved
    }

    /// The answer to give for `found`: polished under the strongest penalties (see [`strict`]),
    /// unless that makes it worse. Polishes with a copy of the generator, so the same state
    /// gives the same answer whenever it is asked for.
    fn answer(&mut self, found: Individual, pen: Penalties) -> Individual {
        self.ls.load(&found.routes, strict(self.inst, pen));
        self.ls.run(&mut self.rng.clone());
        let polished = Individual::new(self.inst, self.ls.routes(), &pen);
        if better(self.inst, &polished, &Some(found.clone())) {
            polished
        } else {
            found
        }
    }

    /// Improves `start` by local search under `pen` and offers the result; an infeasible
    /// result is, by chance, repaired under ten-fold penalties and offered too if that makes
    /// it feasible. True if either is the best so far.
    fn improve(&mut self, start: &[Vec<u32>], pen: Penalties) -> bool {
        let inst = self.inst;
        self.ls.load(start, pen);
        self.ls.run(&mut self.rng);
        let ind = Individual::new(inst, self.ls.routes(), &pen);
        self.history.push((ind.tw == 0, ind.excess == 0));
        let repair = !ind.feasible && self.rng.random_bool(self.params.repair_prob);
        let routes = ind.routes.clone();
        let mut improved = self.offer(ind);
        if repair {
            self.ls.load(&routes, pen.tenfold());
            self.ls.run(&mut self.rng);
            let fixed = Individual::new(inst, self.ls.routes(), &pen);
            if fixed.feasible {
                improved |= self.offer(fixed);
            }
        }
        improved
    }
}

/// The strongest penalties, for the final polish: the answer is then a local optimum of the
/// caller's objective rather than of the last penalised one.
fn strict(inst: &Instance, pen: Penalties) -> Penalties {
    Penalties {
        tw: inst.max_tw_penalty(),
        load: pen.load.max(inst.initial_penalties().load) * 10,
    }
}

/// What a search returns: the best solution it found, and where it began.
pub(crate) struct Solved {
    /// The best solution by the engine's objective.
    pub best: Individual,
    /// With [`Params::rank_starts`], each first solution (the `initial` ones, or the one built
    /// from nothing) after its first descent, then the answer a budget ending there gives;
    /// otherwise empty. The engine prices lateness as time warp, which lets a late stop hand
    /// back the time it overran, so a caller that measures lateness as it falls (the planner)
    /// may find one of these better than `best`.
    pub starts: Vec<Vec<Vec<u32>>>,
}

/// Runs the hybrid genetic search and returns the best solution found. `initial` solutions (for
/// a warm start) join the first population after local search.
pub(crate) fn solve(
    inst: &Instance,
    params: &Params,
    limits: Limits,
    seed: u64,
    initial: &[Vec<Vec<u32>>],
) -> Solved {
    let mut pen = inst.initial_penalties();
    let empty: Vec<Vec<u32>> = vec![Vec::new(); inst.vehicles.len()];
    let mut s = Search {
        inst,
        params,
        rng: SmallRng::seed_from_u64(seed),
        ls: LocalSearch::new(inst),
        pop: Population {
            feasible: SubPop::default(),
            infeasible: SubPop::default(),
        },
        best: None,
        history: Vec::new(),
    };
    // The final polish may run a twentieth of the budget past it: on a day's plan it takes a
    // millisecond or two after a search that used the whole budget, and it is worth having.
    let polish_by = limits.deadline.map(|d| {
        d + d
            .saturating_duration_since(Instant::now())
            .mul_f64(POLISH_GRACE)
    });

    // The first solutions: the warm start if there is one, else one built from nothing. How
    // long that took tells how many crossovers the budget affords.
    let first = Instant::now();
    // The first of them is always descended through two whole passes of the moves, and to a
    // local optimum when the budget allows: cut short in its first pass, its unplaced stops
    // and time warp would leave out of the plan visits (urgent ones too) that any finished
    // descent serves. On the network day the whole descent takes about 2 ms here; a budget
    // shorter than the device needs for two passes is overrun rather than answered with a
    // plan that leaves out work it could do. The budget holds from the second start on, and
    // for the first descent's SWAP* passes and its passes after the second, which only refine
    // it (on a day of sixty long rounds they took seconds past a 200 ms budget).
    s.ls.descend_two_passes_then_until(limits.deadline);
    // Solutions built from nothing start under ten-fold penalties, so that cheapest insertion
    // already respects most windows and the first local optima are nearly feasible; on short
    // budgets this is worth more than the freedom of weak penalties.
    let mut descended = Vec::new();
    // Time spent descending starts a second time, judged as driven: not part of what one
    // descent costs when the budget is shared out below.
    let mut second = Duration::ZERO;
    if initial.is_empty() {
        s.improve(&empty, pen.tenfold());
        s.ls.set_deadline(limits.deadline);
        if params.rank_starts {
            descended.push(s.ls.routes());
        }
    }
    for start in initial {
        s.improve(start, pen);
        descended.push(s.ls.routes());
        if params.descend_driven_too {
            let began = Instant::now();
            s.ls.judge_as_driven(true);
            s.improve(start, pen);
            s.ls.judge_as_driven(false);
            descended.push(s.ls.routes());
            second += began.elapsed();
        }
        s.ls.set_deadline(limits.deadline);
    }
    let descent = (first.elapsed() - second) / initial.len().max(1) as u32;
    // What the search would answer were the budget to end here, with the starts it came
    // from: a longer budget can then always fall back on exactly the shortest one's answer
    // (when the first descent fits in the budget; past it, its SWAP* passes and its passes
    // after the second stop at the budget, so that answer depends on the budget too).
    let mut starts = Vec::new();
    let mut early = None;
    if params.rank_starts
        && let Some(best) = s.best.clone()
    {
        s.ls.set_deadline(polish_by);
        let routes = best.routes.clone();
        let answer = s.answer(best, pen);
        starts.clone_from(&descended);
        starts.push(answer.routes.clone());
        early = Some((routes, answer));
    }
    s.ls.set_deadline(limits.deadline);
    let mut init_size = params.init_size.max(2);
    if let Some(best) = s.best.clone()
        && !limits.reached(0)
        && let Some((schedule, afforded)) = anneal_schedule(params, &limits, descent)
    {
        let hard = inst.hard_penalties();
        let n = walks(params, afforded, descended.len());
        let walks = if n > 1 {
            descended.sort_by_cached_key(|routes| Individual::new(inst, routes.clone(), &pen).cost);
            descended.truncate(n);
            descended
        } else {
            vec![best.routes]
        };
        // Each walk gets an equal part of what is left of the annealing's time (or of its
        // ruins), so one that overruns shortens the next rather than the genetic search.
        let begun = Instant::now();
        for (w, start) in walks.iter().enumerate() {
            let part = Schedule {
                deadline: schedule.deadline.map(|d| {
                    begun
                        + d.saturating_duration_since(begun)
                            .mul_f64((w + 1) as f64 / n as f64)
                }),
                iterations: schedule.iterations / n as u64,
                ..schedule
            };
            s.ls.load(start, hard);
            let annealed = s.ls.anneal(hard, part, &mut s.rng);
            s.offer(Individual::new(inst, annealed.clone(), &pen));
            s.improve(&annealed, pen);
        }
        init_size = s.pop.len().max(2);
    }
    let mut iteration = 0u64;
    let mut last_improvement = 0u64;
    loop {
        while s.pop.len() < init_size && !limits.reached(iteration) {
            s.improve(&empty, pen.tenfold());
        }
        if limits.reached(iteration) {
            break;
        }
        iteration += 1;
        let child = {
            let a = s.pop.tournament(&mut s.rng);
            let b = s.pop.tournament(&mut s.rng);
            crossover(inst, a, b, &mut s.rng)
        };
        if s.improve(&child, pen) {
            last_improvement = iteration;
        }
        if s.history.len() >= params.penalty_window {
            let share = |f: fn(&(bool, bool)) -> bool| {
                s.history.iter().filter(|h| f(h)).count() as f64 / s.history.len() as f64
            };
            let (tw_ok, load_ok) = (share(|h| h.0), share(|h| h.1));
            let cap = inst.max_tw_penalty();
            let adjust = |p: i64, ok: f64| -> i64 {
                if ok < params.target_feasible - 0.05 {
                    ((p as f64 * 1.2).ceil() as i64).min(cap)
                } else if ok > params.target_feasible + 0.05 {
                    ((p as f64 * 0.85) as i64).max(1)
                } else {
                    p
                }
            };
            pen = Penalties {
                tw: adjust(pen.tw, tw_ok),
                load: adjust(pen.load, load_ok),
            };
            s.history.clear();
            for m in &mut s.pop.infeasible.members {
                m.reprice(inst, &pen);
            }
            s.pop.infeasible.update_fitness(params);
        }
        if iteration - last_improvement > params.restart_after {
            s.pop.feasible = SubPop::default();
            s.pop.infeasible = SubPop::default();
            if let Some(b) = &s.best {
                s.pop.add(b.clone(), params);
            }
            last_improvement = iteration;
        }
    }
    let Some(found) = s.best.take() else {
        return Solved {
            best: Individual::new(inst, empty, &pen),
            starts,
        };
    };
    // A search that found nothing better answers as it would have then (the local search's
    // visiting order has moved on since, so polishing again could differ).
    let best = match early {
        Some((routes, answer)) if routes == found.routes => answer,
        _ => {
            s.ls.set_deadline(polish_by);
            s.answer(found, pen)
        }
    };
    Solved { best, starts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warm_start_descended_both_ways_offers_both_local_optima() {
        // Priced by time warp, the late stop 0 goes first and makes the three after it late
        // when driven; judged as driven, it stays last. The caller gets both to rank.
        let inst = crate::engine::local_search::tests::cascade();
        let warm = vec![vec![1, 2, 3, 0]];
        let answer = |descend_driven_too| {
            let params = Params {
                rank_starts: true,
                descend_driven_too,
                ..Params::default()
            };
            let limits = Limits {
                deadline: None,
                max_iterations: Some(0),
            };
            solve(&inst, &params, limits, 1, std::slice::from_ref(&warm)).starts
        };
        let both = answer(true);
        assert!(both.contains(&warm), "{both:?}");
        assert!(both.iter().any(|routes| routes[0][0] == 0), "{both:?}");
        assert!(!answer(false).contains(&warm));
    }

    #[test]
    fn each_start_gets_a_walk_only_when_the_budget_affords_it() {
        let day = Params {
            anneal_each_start: true,
            ..Params::default()
        };
        // A network day's 1 s affords about 430 crossovers: both of its starts are annealed.
        assert_eq!(walks(&day, 430, 2), 2);
        // 400 ms (about 170) and 100 ms: one walk, from the best start.
        assert_eq!(walks(&day, 170, 2), 1);
        assert_eq!(walks(&day, 40, 3), 1);
        // Never more walks than starts, and one even with none (a solution built from nothing).
        assert_eq!(walks(&day, 10_000, 3), 3);
        assert_eq!(walks(&day, 10_000, 0), 1);
        // The benchmark instances anneal their one solution.
        assert_eq!(walks(&Params::default(), 10_000, 3), 1);
    }
}
