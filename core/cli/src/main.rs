//! The `doorstep` command: one binary for the network's IT team and for
//! developers. Each subcommand lives in its own module; this file only parses
//! arguments and hands over. Output goes to stdout as JSON (or JSON Lines) so
//! other tools can read it; human notes go to stderr.

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod backup;
mod demo;
mod demo_data;
mod device;
mod forks;
mod news2;
mod plan;
mod rounds;
mod serve;
mod token;
mod vrptw;

/// Doorstep: plan, record and sync a home-visiting service's rounds.
#[derive(Debug, Parser)]
#[command(name = "doorstep", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole service end to end on the embedded default: plan the demo
    /// network's day, start the endpoint, record a paramedic's visits on an
    /// encrypted device store and sync them.
    Demo(demo::Args),
    /// Score NEWS2 observations: JSON Lines in on stdin, one JSON line out per line.
    News2,
    /// Generate the synthetic demo network (deterministic for a seed).
    DemoData(demo_data::Args),
    /// Plan a day's rounds from a problem JSON file; prints the plan as JSON.
    Plan(plan::Args),
    /// Solve a VRPLIB VRPTW instance (DIMACS convention); prints a VRPLIB solution.
    SolveVrptw(vrptw::Args),
    /// Run the sync endpoint (SQLite in --data, or PostgreSQL with --database).
    Serve(serve::Args),
    /// Issue tokens signed with the endpoint's own key.
    Token(token::Args),
    /// Manage devices at a running endpoint: revoke a lost or stolen one.
    Device(device::Args),
    /// List the network's forked records at a running endpoint (any token of
    /// the network in DOORSTEP_TOKEN), one JSON line each, to reconcile.
    Forks(forks::Args),
    /// Back up the embedded endpoint's database while it serves; prints what
    /// the backup holds as JSON.
    Backup(backup::Args),
    /// Put a backup in place as the embedded endpoint's database, with the
    /// endpoint stopped; the database it replaces is kept aside.
    Restore(backup::RestoreArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::News2 => news2::run(),
        Command::DemoData(args) => demo_data::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::SolveVrptw(args) => vrptw::run(&args),
        Command::Serve(args) => serve::run(args),
        Command::Token(args) => token::run(args),
        Command::Device(args) => device::run(args),
        Command::Forks(args) => forks::run(&args),
        Command::Backup(args) => backup::run(&args),
        Command::Restore(args) => backup::run_restore(&args),
    }
}

/// The exit status after a command wrote its output: success when all of it was
/// written, and also when the reader closed the pipe early (`doorstep demo-data |
/// head` wanted no more, which is not a failure and needs no message); any other
/// write error is reported under the command's name with status 2.
fn written(command: &str, result: io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if reader_gone(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("doorstep {command}: {e}");
            ExitCode::from(2)
        }
    }
}

/// Where `--time-limit` stops, in seconds: a day, itself refused as the planner refuses it. A
/// plan wanted a day later is a typing error, and a larger number would overflow the clock.
const LONGEST_SEARCH: f64 = 86_400.0;

/// Reads `--time-limit`: seconds, a non-negative number less than a day.
fn time_limit(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (0.0..LONGEST_SEARCH).contains(s))
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("expected seconds from 0 to less than {LONGEST_SEARCH}"))
}

/// Largest input file `plan` and `solve-vrptw` read: 128 MiB, room for a problem at the
/// planner's own limits with its travel matrix, and a clear refusal rather than a process
/// that grows until the system stops it (`doorstep plan /dev/zero`).
const LARGEST_INPUT: u64 = 128 << 20;

/// Reads the text file at `path`, refusing one larger than [`LARGEST_INPUT`]. Errors name
/// the file.
fn read_input(path: &std::path::Path) -> Result<String, String> {
    read_capped(path, LARGEST_INPUT)
}

fn read_capped(path: &std::path::Path, limit: u64) -> Result<String, String> {
    use std::io::Read;
    let named = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| named(&e))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| named(&e))?;
    if bytes.len() as u64 > limit {
        return Err(named(&format_args!("larger than {limit} bytes")));
    }
    String::from_utf8(bytes).map_err(|_| named(&"not UTF-8 text"))
}

/// Whether a write failed only because the reader closed the pipe, which ends a command
/// successfully and without a message (see [`written`]).
fn reader_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_file_is_read_whole_up_to_its_limit_and_refused_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("problem.json");
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(read_capped(&path, 10).as_deref(), Ok("0123456789"));
        let e = read_capped(&path, 9).unwrap_err();
        assert!(e.contains("larger than 9 bytes"), "{e}");
        std::fs::write(&path, b"\xff").unwrap();
        assert!(read_capped(&path, 9).unwrap_err().contains("not UTF-8"));
        assert!(read_input(dir.path()).is_err());
    }

    #[test]
    fn a_time_limit_is_seconds_from_zero_to_less_than_a_day() {
        assert_eq!(
            time_limit("0.25"),
            Ok(std::time::Duration::from_millis(250))
        );
        assert_eq!(time_limit("0"), Ok(std::time::Duration::ZERO));
        assert!(time_limit("86399.5").is_ok());
        for bad in ["-1", "nan", "inf", "1e20", "86400", "86401", "soon"] {
            assert!(time_limit(bad).is_err(), "{bad}");
        }
    }
}
