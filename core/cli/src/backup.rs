//! `doorstep backup`: a consistent copy of the embedded endpoint's SQLite
//! database, taken while it serves, for the practice's nightly backups. A
//! file copy of a database in WAL mode can miss what the log holds; this
//! cannot. `doorstep restore`: that copy put back in place, with the
//! endpoint stopped. Both print what the database holds as JSON.
//!
//! A restore gives the database a fresh restore epoch, so every device finds
//! its pull cursor refused, pulls from the beginning and pushes again what
//! the backup missed of its own; the database it replaces is moved aside,
//! never deleted, and every device it revoked stays revoked
//! (docs/sync-protocol.md).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use doorstep_server::app::SQLITE_FILE;
use doorstep_server::storage::sqlite::{Revocations, backup, restore};

/// Options for `doorstep backup`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The endpoint's data directory (where `doorstep serve --data` points).
    #[arg(long)]
    data: PathBuf,
    /// Where to write the backup; must not exist yet.
    #[arg(long)]
    out: PathBuf,
}

/// Runs the backup.
pub fn run(args: &Args) -> ExitCode {
    let made = backup(&args.data.join(SQLITE_FILE), &args.out)
        .map_err(|e| e.to_string())
        .and_then(|summary| serde_json::to_string(&summary).map_err(|e| e.to_string()));
    match made {
        Ok(json) => crate::written("backup", writeln!(io::stdout().lock(), "{json}")),
        Err(e) => {
            eprintln!("doorstep backup: {e}");
            ExitCode::from(1)
        }
    }
}

/// Options for `doorstep restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The endpoint's data directory; the endpoint must be stopped.
    #[arg(long)]
    data: PathBuf,
    /// The backup to put in place (a file `doorstep backup` made).
    #[arg(long)]
    from: PathBuf,
    /// Go on when the devices revoked since the backup cannot be read (the
    /// database being replaced is damaged, or there is none, as on a new
    /// machine); readable ones are always carried over. Then revoke those
    /// devices again before any device can reach the endpoint.
    #[arg(long)]
    forget_revocations: bool,
}

/// Runs the restore.
pub fn run_restore(args: &RestoreArgs) -> ExitCode {
    let revocations = if args.forget_revocations {
        Revocations::ForgetIfUnreadable
    } else {
        Revocations::Required
    };
    let done = restore(&args.data, &args.from, revocations)
        .map_err(|e| e.to_string())
        .and_then(|restored| serde_json::to_string(&restored).map_err(|e| e.to_string()));
    match done {
        Ok(json) => crate::written("restore", writeln!(io::stdout().lock(), "{json}")),
        Err(e) => {
            eprintln!("doorstep restore: {e}");
            ExitCode::from(1)
        }
    }
}
