//! `doorstep forks`: lists the records of a network whose history forked
//! (two devices amended one version while apart), one JSON line a record
//! with its heads newest first, for a clinical lead to have each reconciled
//! by a version that keeps one head and merges the others.
//!
//! The token, any role's in the network, comes from `DOORSTEP_TOKEN` as for
//! `doorstep device`, never from the command line.

use std::io::{self, Write};
use std::process::ExitCode;

use doorstep_sync::admin::list_forks;
use doorstep_sync::wire::Fork;

/// Options for `doorstep forks`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The endpoint's base URL, such as `https://sync.example-pcn.nhs.uk`.
    #[arg(long)]
    endpoint: String,
}

/// Runs the forks command: a JSON line a forked record, then a count on
/// stderr.
pub fn run(args: &Args) -> ExitCode {
    let forks = match fetch(args) {
        Ok(forks) => forks,
        Err(e) => {
            eprintln!("doorstep forks: {e}");
            return ExitCode::from(1);
        }
    };
    let printed = print(&forks);
    if printed.is_ok() {
        eprintln!("doorstep forks: {} forked records", forks.len());
    }
    crate::written("forks", printed)
}

fn print(forks: &[Fork]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    for fork in forks {
        serde_json::to_writer(&mut out, fork)?;
        writeln!(out)?;
    }
    Ok(())
}

fn fetch(args: &Args) -> Result<Vec<Fork>, String> {
    let token = crate::device::token_from_env()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime
        .block_on(list_forks(&args.endpoint, &token))
        .map_err(|e| e.to_string())
}
