//! `doorstep plan problem.json`: plans a day with the round optimiser and prints the plan as
//! JSON (schema in `docs/plan-schema.md`).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use doorstep_domain::text::from_json;
use doorstep_routing::{Budget, Problem};

/// Options for `doorstep plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The problem, as JSON (see docs/plan-schema.md).
    problem: PathBuf,
    /// Seconds to search.
    #[arg(long, default_value = "1", value_parser = crate::time_limit)]
    time_limit: Duration,
    /// Seed; with the same seed the search explores the same way.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Reads the problem, plans it and prints the plan.
pub fn run(args: &Args) -> ExitCode {
    match plan_file(args) {
        Ok(json) => crate::written("plan", writeln!(io::stdout().lock(), "{json}")),
        Err(e) => {
            eprintln!("doorstep plan: {e}");
            ExitCode::from(1)
        }
    }
}

fn plan_file(args: &Args) -> Result<String, String> {
    let text = crate::read_input(&args.problem)?;
    // The domain's reader names the JSON path of a bad field and never echoes its value; a
    // file that is not JSON at all has no path, so the message names the file instead.
    let problem: Problem = from_json(&text).map_err(|e| {
        if e.field.is_empty() {
            format!("invalid problem file: {e}")
        } else {
            format!("invalid {e}")
        }
    })?;
    let budget = Budget::time(args.time_limit);
    let plan = doorstep_routing::plan(&problem, &budget, args.seed).map_err(|e| e.to_string())?;
    serde_json::to_string_pretty(&plan).map_err(|e| e.to_string())
}
