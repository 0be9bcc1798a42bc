//! `doorstep backup`: a consistent copy of the embedded endpoint's SQLite
//! database, taken while it serves, for the practice's nightly backups. A
//! file copy of a database in WAL mode can miss what the log holds; this
//! cannot. Prints what the backup holds as JSON.
//!
//! To restore: stop the endpoint, put the backup in the data directory as
//! its database file (removing the old file's `-wal` and `-shm` beside it),
//! revoke again any device revoked since the backup, and start it. Each
//! backup has a restore epoch of its own, so every device finds its pull
//! cursor refused, pulls from the beginning and pushes again what the
//! backup missed of its own (docs/sync-protocol.md).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use doorstep_server::app::SQLITE_FILE;
use doorstep_server::storage::sqlite::backup;

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
