//! `doorstep solve-vrptw FILE.vrp`: solves a VRPLIB VRPTW instance under the DIMACS convention
//! and prints a VRPLIB solution (`Route #k: ...` lines, then `Cost X`), which the benchmark
//! script checks independently.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use doorstep_routing::Budget;
use doorstep_routing::vrptw::VrptwInstance;

/// Options for `doorstep solve-vrptw`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The instance file (VRPLIB, TYPE CVRPTW).
    file: PathBuf,
    /// Seconds to search.
    #[arg(long, default_value = "1", value_parser = crate::time_limit)]
    time_limit: Duration,
    /// Seed of the search.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The exit status when the best solution found breaks a time window: it is printed (to see how
/// near it came), but under the DIMACS convention it is no solution, and a script must not take
/// it for one.
const INFEASIBLE: u8 = 3;

/// Solves the instance and prints the solution; exits [`INFEASIBLE`] when none was feasible.
pub fn run(args: &Args) -> ExitCode {
    let budget = Budget::time(args.time_limit);
    match solve_file(args, &budget) {
        Ok((text, feasible)) => {
            let status = crate::written(
                "solve-vrptw",
                io::stdout().lock().write_all(text.as_bytes()),
            );
            if feasible || status != ExitCode::SUCCESS {
                status
            } else {
                ExitCode::from(INFEASIBLE)
            }
        }
        Err(e) => {
            eprintln!("doorstep solve-vrptw: {e}");
            ExitCode::from(1)
        }
    }
}

/// The solution as VRPLIB text, and whether it is feasible.
fn solve_file(args: &Args, budget: &Budget) -> Result<(String, bool), String> {
    let text = crate::read_input(&args.file)?;
    let instance = VrptwInstance::parse(&text).map_err(|e| e.to_string())?;
    let solution = instance
        .solve(budget, args.seed)
        .map_err(|e| e.to_string())?;
    if !solution.feasible {
        eprintln!(
            "doorstep solve-vrptw: no feasible solution found; printing the best infeasible one"
        );
    }
    Ok((solution.to_string(), solution.feasible))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_routes_then_cost_for_a_solomon_fixture() {
        let args = Args {
            file: PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../routing/tests/fixtures/C101.vrp"
            )),
            time_limit: Duration::from_millis(200),
            seed: 1,
        };
        let (out, feasible) = solve_file(&args, &Budget::iterations(20)).expect("solves");
        assert!(feasible);
        let lines: Vec<&str> = out.lines().collect();
        let (cost, routes) = lines.split_last().expect("output");
        assert!(cost.starts_with("Cost "), "{cost}");
        let mut seen: Vec<usize> = Vec::new();
        for (k, line) in routes.iter().enumerate() {
            let rest = line
                .strip_prefix(&format!("Route #{}:", k + 1))
                .expect("numbered route line");
            seen.extend(rest.split_whitespace().map(|t| t.parse::<usize>().unwrap()));
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=100).collect::<Vec<_>>());
    }

    #[test]
    fn a_missing_file_is_an_error_not_a_panic() {
        let args = Args {
            file: PathBuf::from("no-such-instance.vrp"),
            time_limit: Duration::from_millis(100),
            seed: 0,
        };
        assert!(solve_file(&args, &Budget::iterations(1)).is_err());
    }
}
