//! The benchmark face of the engine: reads a VRPLIB VRPTW instance (Solomon, Gehring-Homberger)
//! and solves it under the DIMACS 2021 convention, so the optimiser can be measured against the
//! published best-known solutions and other solvers on exactly the same numbers.
//!
//! Convention: distance is the Euclidean distance truncated to one decimal and stored as an
//! integer scaled by ten; travel time equals distance; service times and time windows are scaled
//! by ten too; the objective is total distance (the number of routes is free up to the fleet);
//! service must start within each window, waiting is allowed, and loads respect capacity.

use std::fmt;

use crate::engine::{self, Client, Instance, Matrix, Params, Vehicle, Weights};
use crate::{Budget, RoutingError};

/// A VRPTW instance in scaled-integer form. Node 0 is the depot; nodes `1..=n` are customers,
/// numbered as in the file (file id minus one).
#[derive(Clone, Debug)]
pub struct VrptwInstance {
    /// The instance's `NAME`.
    pub name: String,
    /// Coordinates of every node.
    pub coords: Vec<(f64, f64)>,
    /// Demand of every node (0 for the depot).
    pub demand: Vec<i64>,
    /// Window opening (x10) of every node.
    pub ready: Vec<i64>,
    /// Window closing (x10) of every node.
    pub due: Vec<i64>,
    /// Service time (x10) of every node (0 for the depot).
    pub service: Vec<i64>,
    /// Vehicle capacity.
    pub capacity: i64,
    /// Fleet size.
    pub vehicles: usize,
}

/// Routes found for a [`VrptwInstance`]; prints as a VRPLIB solution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrptwSolution {
    /// Customer sequences (node numbers, depot excluded), empty routes left out.
    pub routes: Vec<Vec<usize>>,
    /// Total distance, x10 (so 8273 prints as `827.3`).
    pub distance: i64,
    /// Whether every window, the capacity and the fleet size are respected.
    pub feasible: bool,
}

impl fmt::Display for VrptwSolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, route) in self.routes.iter().enumerate() {
            write!(f, "Route #{}:", k + 1)?;
            for c in route {
                write!(f, " {c}")?;
            }
            writeln!(f)?;
        }
        writeln!(f, "Cost {}.{}", self.distance / 10, self.distance % 10)
    }
}

/// Largest coordinate, time, demand or capacity read, in absolute value: a million, a
/// thousand times the benchmark instances' own, and small enough that a distance is worked
/// out exactly and no sum of times, loads or their penalties along a search can overflow.
const LARGEST: f64 = 1e6;

/// Most nodes (the depot and its customers) an instance may have: ten times the largest
/// Gehring–Homberger instances. The solver keeps distances between every two nodes, and per
/// customer and vehicle, so twenty thousand would need tens of gigabytes: such a file is
/// refused with a message rather than left to exhaust the machine.
const MOST_NODES: usize = 10_001;

/// Most customers times vehicles an instance may have: the search keeps a price for each
/// customer in each route (56 bytes each, so this is about 220 MB), and for each pair of
/// routes. Every benchmark instance with its own fleet is well within it, as is one of two
/// thousand nodes whose fleet is one vehicle a customer; ten thousand customers with no
/// `VEHICLES` line would need gigabytes.
const MOST_CUSTOMER_VEHICLES: usize = 4_000_000;

/// A time read in tenths, the DIMACS convention's unit. More decimal places are refused, not
/// rounded: a due time of 4.96 read as 5.0 would let a solution arrive after it and be
/// printed as feasible.
fn scaled(value: &str, what: &str) -> Result<i64, RoutingError> {
    let v: f64 = value
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && (0.0..=LARGEST).contains(v))
        .ok_or_else(|| {
            RoutingError::Vrplib(format!("{what}: not a number from 0 to {LARGEST}: {value}"))
        })?;
    let tenths = (v * 10.0).round();
    if (v * 10.0 - tenths).abs() > 1e-6 {
        return Err(RoutingError::Vrplib(format!(
            "{what}: {value} has more than one decimal place (times are read in tenths)"
        )));
    }
    Ok(tenths as i64)
}

/// Reads the rows of section `name` as nodes `1..=n` in order, each with exactly `width`
/// fields: the solution numbers customers by their place in the file, so rows out of order,
/// missing or with stray fields would silently renumber them.
fn rows<'a>(
    sections: &'a std::collections::HashMap<String, Vec<Vec<String>>>,
    name: &str,
    width: usize,
) -> Result<&'a [Vec<String>], RoutingError> {
    let rows = sections
        .get(name)
        .ok_or_else(|| RoutingError::Vrplib(format!("missing {name}")))?;
    for (i, row) in rows.iter().enumerate() {
        if row.len() != width {
            return Err(RoutingError::Vrplib(format!(
                "{name}: row {} has {} fields, expected {width}",
                i + 1,
                row.len()
            )));
        }
        if row[0].parse::<usize>().ok() != Some(i + 1) {
            return Err(RoutingError::Vrplib(format!(
                "{name}: row {} is for node {}, expected node {}",
                i + 1,
                row[0],
                i + 1
            )));
        }
    }
    Ok(rows)
}

/// DIMACS distance: floor(10 * Euclidean), exact for integer coordinates.
pub(crate) fn truncated_distance(a: (f64, f64), b: (f64, f64)) -> i64 {
    let (dx, dy) = (a.0 - b.0, a.1 - b.1);
    if dx.fract() == 0.0 && dy.fract() == 0.0 {
        let sq = (dx * dx + dy * dy) as i64 * 100;
        sq.isqrt()
    } else {
        (10.0 * dx.hypot(dy)).floor() as i64
    }
}

/// The sections of a VRPLIB coordinate VRPTW file this reader takes; any other (an
/// `EDGE_WEIGHT_SECTION` of explicit weights, say) would be ignored, and the instance solved
/// as it is not.
const KNOWN_SECTIONS: [&str; 5] = [
    "NODE_COORD_SECTION",
    "DEMAND_SECTION",
    "SERVICE_TIME_SECTION",
    "TIME_WINDOW_SECTION",
    "DEPOT_SECTION",
];

impl VrptwInstance {
    /// Parses the text of a VRPLIB `CVRPTW` file with one depot (id 1). Refuses, saying where,
    /// a file whose sections disagree or skip a node, or that gives a key twice, one too
    /// large to solve in memory, and one no solution could satisfy (a customer heavier than a
    /// vehicle holds, a window that closes before it opens or before a vehicle could get
    /// there, a visit that leaves no time to get back before the depot closes), rather than
    /// spend the budget and print routes for it.
    pub fn parse(text: &str) -> Result<Self, RoutingError> {
        let err = |m: String| RoutingError::Vrplib(m);
        let mut spec = std::collections::HashMap::new();
        let mut sections: std::collections::HashMap<String, Vec<Vec<String>>> =
            std::collections::HashMap::new();
        let mut current: Option<String> = None;
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line == "EOF" {
                continue;
            }
            if line.ends_with("_SECTION") {
                if !KNOWN_SECTIONS.contains(&line) {
                    return Err(err(format!(
                        "{line}: not a section of a coordinate VRPTW file (this reader knows {})",
                        KNOWN_SECTIONS.join(", ")
                    )));
                }
                if sections.insert(line.to_string(), Vec::new()).is_some() {
                    return Err(err(format!("{line} given twice")));
                }
                current = Some(line.to_string());
            } else if let Some(sec) = &current {
                let row = line.split_whitespace().map(str::to_string).collect();
                sections.entry(sec.clone()).or_default().push(row);
            } else if let Some((k, v)) = line.split_once(':') {
                if spec
                    .insert(k.trim().to_string(), v.trim().to_string())
                    .is_some()
                {
                    return Err(err(format!("{} given twice", k.trim())));
                }
            } else {
                return Err(err(format!("unexpected line: {line}")));
            }
        }
        let column = |name: &str, width: usize, col: usize| -> Result<Vec<String>, RoutingError> {
            Ok(rows(&sections, name, width)?
                .iter()
                .map(|r| r[col].clone())
                .collect())
        };
        // Distances are worked out from the coordinates (DIMACS: Euclidean, truncated to one
        // decimal); a file that says its weights are something else is not solved as if not.
        if let Some(kind) = spec.get("EDGE_WEIGHT_TYPE")
            && kind != "EUC_2D"
        {
            return Err(err(format!(
                "EDGE_WEIGHT_TYPE {kind}: this reader solves EUC_2D only"
            )));
        }
        let xs = column("NODE_COORD_SECTION", 3, 1)?;
        let ys = column("NODE_COORD_SECTION", 3, 2)?;
        let parse_f = |i: usize, s: &String| {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && v.abs() <= LARGEST)
                .ok_or_else(|| {
                    err(format!(
                        "node {}: bad coordinate {s}: not a number within ±{LARGEST}",
                        i + 1
                    ))
                })
        };
        let coords: Vec<(f64, f64)> = (xs.iter().zip(&ys).enumerate())
            .map(|(i, (x, y))| Ok((parse_f(i, x)?, parse_f(i, y)?)))
            .collect::<Result<_, RoutingError>>()?;
        let dim = coords.len();
        if dim > MOST_NODES {
            return Err(err(format!(
                "NODE_COORD_SECTION: at most {MOST_NODES} nodes (this file has {dim})"
            )));
        }
        if dim < 2 {
            return Err(err(
                "NODE_COORD_SECTION: needs the depot and a customer".into()
            ));
        }
        if let Some(d) = spec.get("DIMENSION")
            && d.parse::<usize>().ok() != Some(dim)
        {
            return Err(err(format!("DIMENSION {d} but {dim} coordinates")));
        }
        let depots = sections
            .get("DEPOT_SECTION")
            .ok_or_else(|| err("missing DEPOT_SECTION".into()))?;
        if depots
            .iter()
            .flatten()
            .filter(|d| d.as_str() != "-1")
            .ne(["1"].iter().copied())
        {
            return Err(err("expected a single depot with id 1".into()));
        }
        let demand = (column("DEMAND_SECTION", 2, 1)?.iter().enumerate())
            .map(|(i, d)| {
                d.parse::<i64>()
                    .ok()
                    .filter(|&d| (0..=LARGEST as i64).contains(&d))
                    .ok_or_else(|| {
                        err(format!(
                            "node {}: bad demand {d}: not a whole number from 0 to {LARGEST}",
                            i + 1
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let times = |name: &str, width: usize, col: usize, what: &str| {
            (column(name, width, col)?.iter().enumerate())
                .map(|(i, v)| scaled(v, &format!("node {}: {what}", i + 1)))
                .collect::<Result<Vec<_>, _>>()
        };
        let ready = times("TIME_WINDOW_SECTION", 3, 1, "window")?;
        let due = times("TIME_WINDOW_SECTION", 3, 2, "window")?;
        let mut service = if sections.contains_key("SERVICE_TIME_SECTION") {
            times("SERVICE_TIME_SECTION", 2, 1, "service")?
        } else {
            let s = scaled(
                spec.get("SERVICE_TIME").map_or("0", String::as_str),
                "SERVICE_TIME",
            )?;
            vec![s; dim]
        };
        for (name, len) in [
            ("DEMAND_SECTION", demand.len()),
            ("TIME_WINDOW_SECTION", ready.len()),
            ("SERVICE_TIME_SECTION", service.len()),
        ] {
            if len != dim {
                return Err(err(format!(
                    "{name} has {len} nodes, NODE_COORD_SECTION {dim}"
                )));
            }
        }
        service[0] = 0;
        let capacity: i64 = spec
            .get("CAPACITY")
            .and_then(|c| c.parse().ok())
            .filter(|&c| c > 0 && c <= LARGEST as i64)
            .ok_or_else(|| {
                err(format!(
                    "CAPACITY missing or not a whole number from 1 to {LARGEST}"
                ))
            })?;
        // More vehicles than customers are never used: a fleet is capped at one each.
        let vehicles = match spec.get("VEHICLES") {
            Some(v) => v
                .parse()
                .ok()
                .filter(|&v: &usize| v > 0)
                .ok_or_else(|| err(format!("VEHICLES: not a positive whole number: {v}")))?
                .min(dim - 1),
            None => dim - 1,
        };
        if (dim - 1).saturating_mul(vehicles) > MOST_CUSTOMER_VEHICLES {
            return Err(err(format!(
                "{} customers and {vehicles} vehicles: at most {MOST_CUSTOMER_VEHICLES} \
                 customers times vehicles (the solver keeps a price for each customer in each \
                 route); give a smaller VEHICLES",
                dim - 1
            )));
        }
        // A customer no vehicle can carry, or whose window closes before it opens, makes every
        // solution infeasible: say which, rather than print one.
        if due[0] < ready[0] {
            return Err(err(
                "node 1 (the depot): window closes before it opens".into()
            ));
        }
        for i in 1..dim {
            if demand[i] > capacity {
                return Err(err(format!("node {}: demand exceeds CAPACITY", i + 1)));
            }
            if due[i] < ready[i] {
                return Err(err(format!(
                    "node {}: window closes before it opens",
                    i + 1
                )));
            }
            // Straight there from the depot when it opens is the soonest any route arrives.
            let arrive = ready[0] + truncated_distance(coords[0], coords[i]);
            if arrive > due[i] {
                return Err(err(format!(
                    "node {}: its window closes before a vehicle leaving the depot when it opens \
                     could reach it",
                    i + 1
                )));
            }
            if arrive.max(ready[i]) + service[i] + truncated_distance(coords[i], coords[0]) > due[0]
            {
                return Err(err(format!(
                    "node {}: no vehicle serving it could be back before the depot closes",
                    i + 1
                )));
            }
        }
        Ok(Self {
            name: spec.get("NAME").cloned().unwrap_or_default(),
            coords,
            demand,
            ready,
            due,
            service,
            capacity,
            vehicles,
        })
    }

    /// Number of customers.
    pub fn customers(&self) -> usize {
        self.coords.len() - 1
    }

    fn compile(&self) -> Instance {
        let size = self.coords.len();
        let data = self
            .coords
            .iter()
            .flat_map(|&a| self.coords.iter().map(move |&b| truncated_distance(a, b)))
            .collect();
        let clients = (1..size)
            .map(|i| Client {
                loc: i as u32,
                service: self.service[i],
                early: self.ready[i],
                late: self.due[i],
                windows: Vec::new(),
                demand: self.demand[i],
                prize: None,
                home: None,
                was: None,
                xy: Some(self.coords[i]),
            })
            .collect();
        let vehicle = Vehicle {
            start_loc: 0,
            end_loc: 0,
            early: self.ready[0],
            late: self.due[0],
            shift_end: self.due[0],
            capacity: self.capacity,
            returns_empty: false,
        };
        let weights = Weights::TRAVEL_ONLY;
        let params = Params::default();
        Instance::new(
            Matrix::new(size, data),
            clients,
            vec![vehicle; self.vehicles.max(1)],
            None,
            weights,
            Some(self.coords[0]),
            params.granular,
        )
    }

    /// Solves within `budget`; the same seed and iteration budget give the same routes. A
    /// budget that never ends, or a time limit of a day or more, is refused as for a day's plan.
    pub fn solve(&self, budget: &Budget, seed: u64) -> Result<VrptwSolution, RoutingError> {
        crate::validate::budget(budget)?;
        // The clock starts before the distances are worked out, which on the largest files
        // is a good part of a short budget.
        let limits = budget.limits();
        let inst = self.compile();
        let params = Params::for_size(self.customers());
        let best = engine::solve(&inst, &params, limits, seed, &[]).best;
        let routes: Vec<Vec<usize>> = best
            .routes
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| r.iter().map(|&c| c as usize + 1).collect())
            .collect();
        Ok(VrptwSolution {
            routes,
            distance: best.objective,
            feasible: best.feasible,
        })
    }
}
