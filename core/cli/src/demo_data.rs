//! `doorstep demo-data`: generates the synthetic demo network.
//!
//! By default it prints a one-screen summary; `--json` prints the whole network
//! (every patient, home, clinician and request) for loading elsewhere, and
//! `--problem` the day's planning problem for `doorstep plan`.

use std::io::{self, Write};
use std::process::ExitCode;

use doorstep_domain::demo::{DemoNetwork, generate};
use doorstep_domain::visit::Urgency;
use jiff::civil::Date;

use crate::rounds::problem_for;

/// Which demo network: shared by `demo-data` and `demo` so the same flags
/// always name the same network.
#[derive(Debug, clap::Args)]
pub struct NetworkArgs {
    /// Seed for the generator; the same seed always gives the same network.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The day the shifts and requests are for (YYYY-MM-DD, 1992 to 2097).
    #[arg(long, default_value = "2026-11-24", value_parser = demo_day)]
    pub day: Date,
}

/// Reads `--day`: a date the generator can build a network around (it dates reviews and
/// prescriptions up to a year or two either side) and whose records the domain takes (it
/// refuses dates outside 1990-2099), which every real planning day is.
fn demo_day(text: &str) -> Result<Date, String> {
    let day: Date = text
        .parse()
        .map_err(|_| "expected a date as YYYY-MM-DD".to_owned())?;
    if (1992..=2097).contains(&day.year()) {
        Ok(day)
    } else {
        Err("expected a day from 1992-01-01 to 2097-12-31".to_owned())
    }
}

/// Options for `doorstep demo-data`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    network: NetworkArgs,
    /// Print the whole network as JSON instead of a summary.
    #[arg(long)]
    json: bool,
    /// Print the day's planning problem (the input of `doorstep plan`, the day `doorstep demo`
    /// plans) as JSON, so the demo's day can be planned, compared and benchmarked on its own.
    #[arg(long, conflicts_with = "json")]
    problem: bool,
}

/// Generates and prints the network.
pub fn run(args: &Args) -> ExitCode {
    let demo = generate(args.network.seed, args.network.day);
    let result = if args.json {
        print_json(&demo)
    } else if args.problem {
        match problem_for(&demo) {
            Ok(problem) => print_json(&problem),
            Err(e) => {
                eprintln!("doorstep demo-data: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        print_summary(&demo)
    };
    crate::written("demo-data", result)
}

fn print_json(value: &impl serde::Serialize) -> io::Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    // `From` keeps the kind of a write error, so a closed pipe stays one.
    serde_json::to_writer(&mut out, value)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(out))
        // Flushed here, not on drop, which would swallow a failed last write.
        .and_then(|()| out.flush())
}

fn print_summary(demo: &DemoNetwork) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{} on {}", demo.network.name, demo.day)?;
    for practice in &demo.network.practices {
        let registered = demo
            .patients
            .iter()
            .filter(|p| p.registered_practice == practice.ods_code)
            .count();
        writeln!(
            out,
            "  practice {} {:<30} {registered:>6} registered",
            practice.ods_code, practice.name
        )?;
    }
    let residents: usize = demo.care_homes.iter().map(|h| h.residents.len()).sum();
    let due: usize = demo
        .care_homes
        .iter()
        .map(|h| h.due_for_review(demo.day).len())
        .sum();
    writeln!(out, "  patients     {}", demo.patients.len())?;
    writeln!(out, "  housebound   {}", demo.housebound().count())?;
    writeln!(
        out,
        "  care homes   {} ({residents} residents, {due} due a medication review)",
        demo.care_homes.len()
    )?;
    for c in &demo.clinicians {
        writeln!(
            out,
            "  clinician    {:<14} {:?} {}-{}",
            c.id,
            c.role,
            c.shift.start(),
            c.shift.end()
        )?;
    }
    let count =
        |f: fn(&Urgency) -> bool| demo.visit_requests.iter().filter(|r| f(&r.urgency)).count();
    writeln!(
        out,
        "  requests     {} ({} immediate, {} same day, {} routine)",
        demo.visit_requests.len(),
        count(|u| matches!(u, Urgency::Immediate)),
        count(|u| matches!(u, Urgency::SameDay)),
        count(|u| matches!(u, Urgency::Routine { .. })),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_demo_day_is_a_date_the_generator_can_build_around() {
        assert_eq!(demo_day("2026-11-24"), Ok(jiff::civil::date(2026, 11, 24)));
        assert!(demo_day("1992-01-01").is_ok() && demo_day("2097-12-31").is_ok());
        // A day whose records the domain would refuse part-way through the demo.
        for bad in [
            "9999-12-31",
            "0001-01-01",
            "24/11/2026",
            "1985-06-01",
            "2098-01-01",
        ] {
            assert!(demo_day(bad).is_err(), "{bad}");
        }
    }
}
