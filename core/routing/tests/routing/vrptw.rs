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
        let sol = inst.solve(&Budget::iterations(200), 1).unwrap();
        let total = check(&raw(text), &sol).unwrap();
        assert!(sol.feasible);
        assert_eq!(total, sol.distance);
        assert!(sol.routes.len() <= inst.vehicles);
    }
}

#[test]
fn c101_reaches_its_best_known_distance_quickly() {
    let inst = VrptwInstance::parse(C101).unwrap();
    let sol = inst.solve(&Budget::iterations(20), 2).unwrap();
    // Best known under the DIMACS convention: 827.3.
    assert_eq!(sol.distance, 8273);
}

#[test]
fn the_same_seed_and_iterations_give_the_same_routes() {
    let inst = VrptwInstance::parse(R101).unwrap();
    let a = inst.solve(&Budget::iterations(3), 9).unwrap();
    let b = inst.solve(&Budget::iterations(3), 9).unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_budget_that_never_ends_is_refused() {
    let inst = VrptwInstance::parse(C101).unwrap();
    let endless = Budget {
        time_limit: None,
        iterations: None,
    };
    let e = inst.solve(&endless, 1).unwrap_err();
    assert!(e.to_string().contains("budget"), "{e}");
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

/// A depot and two customers, every section present.
const TINY: &str = "NAME : TINY
TYPE : CVRPTW
DIMENSION : 3
VEHICLES : 2
CAPACITY : 10
NODE_COORD_SECTION
1 0 0
2 3 4
3 6 8
DEMAND_SECTION
1 0
2 4
3 5
TIME_WINDOW_SECTION
1 0 100
2 0 50
3 10 60
SERVICE_TIME_SECTION
1 0
2 2
3 2
DEPOT_SECTION
1
-1
EOF
";

#[test]
fn a_file_no_solution_could_be_read_from_is_refused_saying_why() {
    let tiny = VrptwInstance::parse(TINY).unwrap();
    assert_eq!(tiny.customers(), 2);
    // A fleet larger than the customers is cut to one vehicle each, not allocated.
    let fleet = TINY.replace("VEHICLES : 2", "VEHICLES : 18446744073709551615");
    assert!(VrptwInstance::parse(&fleet).is_ok());
    let cases = [
        ("CAPACITY : 10", "CAPACITY : -5", "CAPACITY"),
        ("VEHICLES : 2", "VEHICLES : 0", "VEHICLES"),
        ("3 5\n", "3 50\n", "node 3: demand exceeds CAPACITY"),
        ("2 4\n", "2 -4\n", "node 2: bad demand -4"),
        (
            "3 10 60",
            "3 60 10",
            "node 3: window closes before it opens",
        ),
        ("2 0 50", "2 0 inf", "node 2: window: not a number from 0"),
        ("2 0 50", "2 0 1e300", "node 2: window: not a number from 0"),
        // Read as 5.0, a due time of 4.96 would let an arrival at 5.0 pass as on time.
        (
            "2 0 50",
            "2 0 4.96",
            "node 2: window: 4.96 has more than one decimal place",
        ),
        (
            "3 2\n",
            "3 2.25\n",
            "node 3: service: 2.25 has more than one",
        ),
        // No route reaches node 2 (5.0 from the depot) by 4.0, nor gets back from
        // node 3 before the depot closes at 100.
        (
            "2 0 50",
            "2 0 4",
            "node 2: its window closes before a vehicle leaving the depot",
        ),
        (
            "3 2\n",
            "3 85\n",
            "node 3: no vehicle serving it could be back before the depot closes",
        ),
        (
            "CAPACITY : 10\n",
            "CAPACITY : 10\nCAPACITY : 20\n",
            "CAPACITY given twice",
        ),
        ("1 0 100", "1 100 0", "node 1 (the depot): window closes"),
        (
            "2 3 4\n",
            "2 10000000000 4\n",
            "node 2: bad coordinate 10000000000",
        ),
        (
            "2 3 4\n",
            "2 -1000001 4\n",
            "node 2: bad coordinate -1000001",
        ),
        (
            "CAPACITY : 10",
            "CAPACITY : 9223372036854775807",
            "CAPACITY",
        ),
        (
            "2 3 4\n",
            "2 3 4 7\n",
            "NODE_COORD_SECTION: row 2 has 4 fields",
        ),
        ("2 3 4\n3 6 8", "3 6 8\n2 3 4", "row 2 is for node 3"),
        ("3 6 8", "3 NaN 8", "node 3: bad coordinate NaN"),
        ("2 2\n", "2 -2\n", "node 2: service: not a number from 0"),
        (
            "3 5\nTIME",
            "3 5\n4 1\nTIME",
            "DEMAND_SECTION has 4 nodes, NODE_COORD_SECTION 3",
        ),
        (
            "1 0 0\n2 3 4\n3 6 8\n",
            "",
            "needs the depot and a customer",
        ),
        // Weights given otherwise than by coordinates are not solved as Euclidean.
        (
            "CAPACITY : 10\n",
            "CAPACITY : 10\nEDGE_WEIGHT_TYPE : EXPLICIT\n",
            "EDGE_WEIGHT_TYPE EXPLICIT: this reader solves EUC_2D only",
        ),
        (
            "DEPOT_SECTION",
            "EDGE_WEIGHT_SECTION\n0 5 10\nDEPOT_SECTION",
            "EDGE_WEIGHT_SECTION: not a section of a coordinate VRPTW file",
        ),
        (
            "DEPOT_SECTION",
            "DEMAND_SECTION\n1 0\n2 1\n3 1\nDEPOT_SECTION",
            "DEMAND_SECTION given twice",
        ),
    ];
    for (from, to, expected) in cases {
        let text = TINY.replacen(from, to, 1);
        assert_ne!(text, TINY, "{from:?} should be in the instance");
        let e = VrptwInstance::parse(&text).unwrap_err().to_string();
        assert!(e.contains(expected), "{e:?} should mention {expected:?}");
    }
    // A file of twenty thousand customers is refused before anything is allocated for it.
    let many: String = (4..=20_001).map(|n| format!("{n} 5 5\n")).collect();
    let huge = TINY.replacen("3 6 8\n", &format!("3 6 8\n{many}"), 1);
    let e = VrptwInstance::parse(&huge).unwrap_err().to_string();
    assert!(
        e.contains("at most 10001 nodes (this file has 20001)"),
        "{e}"
    );
    // Five thousand customers with no fleet given (one vehicle each) would need gigabytes
    // for the price of each customer in each route: refused, asking for a fleet.
    let nodes = 1..=5_001;
    let section = |name: &str, row: &dyn Fn(u32) -> String| -> String {
        let rows: String = nodes.clone().map(|n| format!("{}\n", row(n))).collect();
        format!("{name}\n{rows}")
    };
    let big = [
        "NAME : BIG\nTYPE : CVRPTW\nCAPACITY : 10\n".to_string(),
        section("NODE_COORD_SECTION", &|n| format!("{n} {} 0", n % 100)),
        section("DEMAND_SECTION", &|n| format!("{n} {}", u32::from(n > 1))),
        section("TIME_WINDOW_SECTION", &|n| format!("{n} 0 100000")),
        "DEPOT_SECTION\n1\n-1\nEOF\n".to_string(),
    ]
    .concat();
    let e = VrptwInstance::parse(&big).unwrap_err().to_string();
    assert!(e.contains("5000 customers and 5000 vehicles"), "{e}");
    assert!(e.contains("give a smaller VEHICLES"), "{e}");
}
