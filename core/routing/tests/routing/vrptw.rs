//! The VRPTW engine on Solomon fixtures, checked by a checker written here from the DIMACS rules
//! rather than by the engine's own evaluation.

use doorstep_routing::Budget;
use doorstep_routing::vrptw::{VrptwInstance, VrptwSolution};

struct Raw {
    xy: Vec<(i64, i64)>,
    demand: Vec<i64>,
    ready: Vec<i64>,
    due: Vec<i64>,
    service: i64,
    capacity: i64,
}

/// Reads the fixture with nothing but string splitting (Solomon files: integer coordinates and
/// one service time for all customers).
fn raw(text: &str) -> Raw {
    let mut r = Raw {
        xy: vec![],
        demand: vec![],
        ready: vec![],
        due: vec![],
        service: 0,
        capacity: 0,
    };
    let mut section = "";
    for line in text.lines().map(str::trim) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if line.ends_with("_SECTION") {
            section = line;
        } else if line.starts_with("CAPACITY") {
            r.capacity = f[2].parse().unwrap();
        } else if line.starts_with("SERVICE_TIME") {
            r.service = f[2].parse::<i64>().unwrap() * 10;
        } else if f.len() >= 2 {
            let n = |i: usize| f[i].parse::<i64>().unwrap();
            match section {
                "NODE_COORD_SECTION" => r.xy.push((n(1), n(2))),
                "DEMAND_SECTION" => r.demand.push(n(1)),
                "TIME_WINDOW_SECTION" => {
                    r.ready.push(n(1) * 10);
                    r.due.push(n(2) * 10);
                }
                _ => {}
            }
        }
    }
    r
}

/// Total distance (x10) if every rule holds.
fn check(r: &Raw, sol: &VrptwSolution) -> Result<i64, String> {
    let d = |a: usize, b: usize| {
        let (dx, dy) = (r.xy[a].0 - r.xy[b].0, r.xy[a].1 - r.xy[b].1);
        ((100 * (dx * dx + dy * dy)) as f64).sqrt().floor() as i64
    };
    let mut seen = vec![0; r.xy.len()];
    let mut total = 0;
    for route in &sol.routes {
        let (mut t, mut prev, mut load) = (r.ready[0], 0usize, 0);
        for &c in route {
            seen[c] += 1;
            total += d(prev, c);
            let service = if prev == 0 { 0 } else { r.service };
            t = (t + service + d(prev, c)).max(r.ready[c]);
            if t > r.due[c] {
                return Err(format!("customer {c} starts at {t} after {}", r.due[c]));
            }
            load += r.demand[c];
            prev = c;
        }
        total += d(prev, 0);
        if t + r.service + d(prev, 0) > r.due[0] {
            return Err("back at the depot too late".into());
        }
        if load > r.capacity {
            return Err(format!("load {load} over capacity"));
        }
    }
    if seen[1..].iter().any(|&k| k != 1) {
        return Err("a customer is not served exactly once".into());
    }
    Ok(total)
}

const C101: &str = include_str!("../fixtures/C101.vrp");
const R101: &str = include_str!("../fixtures/R101.vrp");

#[test]
fn solutions_pass_an_independent_check_and_report_their_true_cost() {
    for text in [C101, R101] {
        let inst = VrptwInstance::parse(text).unwrap();
        let sol = inst.solve(&Budget::iterations(200), 1);
        let total = check(&raw(text), &sol).unwrap();
        assert!(sol.feasible);
        assert_eq!(total, sol.distance);
        assert!(sol.routes.len() <= inst.vehicles);
    }
}

#[test]
fn c101_reaches_its_best_known_distance_quickly() {
    let inst = VrptwInstance::parse(C101).unwrap();
    let sol = inst.solve(&Budget::iterations(20), 2);
    // Best known under the DIMACS convention: 827.3.
    assert_eq!(sol.distance, 8273);
}

#[test]
fn the_same_seed_and_iterations_give_the_same_routes() {
    let inst = VrptwInstance::parse(R101).unwrap();
    let a = inst.solve(&Budget::iterations(3), 9);
    let b = inst.solve(&Budget::iterations(3), 9);
    assert_eq!(a, b);
}

#[test]
fn the_solution_prints_in_vrplib_format() {
    let sol = VrptwSolution {
        routes: vec![vec![5, 3, 7], vec![1]],
        distance: 8273,
        feasible: true,
    };
    assert_eq!(
        sol.to_string(),
        "Route #1: 5 3 7\nRoute #2: 1\nCost 827.3\n"
    );
}

#[test]
fn a_file_without_coordinates_is_rejected() {
    assert!(VrptwInstance::parse("NAME : X\nCAPACITY : 10\n").is_err());
}
