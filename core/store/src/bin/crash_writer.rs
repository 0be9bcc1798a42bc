//! The kill test's child process: saves visit records and applies pull
//! batches in a loop, reporting each on stdout once it has returned, until it
//! is killed.
//!
//! The test (`tests/store/kill.rs`) kills it with SIGKILL at random moments
//! and then checks that every save reported here is in the store, whole, with
//! its outbox item, and that the pull cursor and the pulled data moved
//! together. A line is printed only after the commit, so a reported save is
//! one the app would have shown the clinician as saved.
//!
//! Output lines: `save <record id> <version id> <change id>` and
//! `pull <batch number> <record id> <version id>`; pull batch `k` carries the
//! cursor `cursor-k` and one visit record written elsewhere.
//!
//! Usage: `doorstep-store-crash-writer <database path>`, with the key as 64
//! hex digits in `DOORSTEP_CRASH_WRITER_KEY`. Never used by an app.

use std::io::Write;
use std::sync::Arc;

use doorstep_store::{
    DatabaseKey, MemoryKeyProvider, PullBatch, PulledRecord, Store, StoreConfig, SyncCursor,
};

#[allow(
    dead_code,
    reason = "the writer uses only the visit builders of the shared samples"
)]
#[path = "../../tests/support/sample.rs"]
mod sample;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: crash-writer <database path>")?;
    let hex = std::env::var("DOORSTEP_CRASH_WRITER_KEY")?;
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()?;
    let keys = Arc::new(MemoryKeyProvider::with_key(DatabaseKey::from_bytes(
        &bytes,
    )?));
    let mut store = Store::open(&StoreConfig::new(path), keys)?;
    let mut batch_number: u64 = match store.sync_cursor()? {
        Some(SyncCursor(cursor)) => cursor.trim_start_matches("cursor-").parse()?,
        None => 0,
    };
    let mut stdout = std::io::stdout().lock();
    let arrived = "2026-11-24T09:00:00Z".parse()?;
    let mut last = None;
    for n in 0u32.. {
        if n % 4 == 3 {
            batch_number += 1;
            let elsewhere = sample::new_visit(n, arrived);
            let mut batch = PullBatch::new(SyncCursor(format!("cursor-{batch_number}")));
            batch.records.push(PulledRecord::Visit(elsewhere.clone()));
            batch.patients.push(sample::patient(n));
            store.apply_pull(&batch)?;
            writeln!(
                stdout,
                "pull {batch_number} {} {}",
                elsewhere.meta.record_id.0, elsewhere.meta.version_id.0
            )?;
        } else {
            // Every third save amends the previous record, so histories grow.
            let version = match last.take() {
                Some(previous) if n % 3 == 0 => {
                    sample::amend_visit(&previous, "phone-1", "Amended.")
                }
                _ => sample::new_visit(n, arrived),
            };
            let change = store
                .save(&version)?
                .change_id()
                .ok_or("a new version saved queues a change")?;
            writeln!(
                stdout,
                "save {} {} {change}",
                version.meta.record_id.0, version.meta.version_id.0
            )?;
            last = Some(version);
        }
        stdout.flush()?;
    }
    Ok(())
}
