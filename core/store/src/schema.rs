//! The database schema and its migrations, run by refinery.
//!
//! Each migration is a numbered SQL script applied once, in order, all pending
//! ones in one transaction, and recorded with a checksum in refinery's history
//! table (so an edited script that was already applied is refused). A file
//! whose newest applied version is above [`LATEST`] was written by a newer
//! build: [`check_version`] refuses it before anything is written.
//!
//! Migrations are never edited once released; a change is a new version, and
//! the test suite migrates a database of every earlier version holding data.

use refinery_core::Migration;
use refinery_core::Runner;
use rusqlite::{Connection, OptionalExtension};

use crate::error::{Result, StoreError};

/// Version 1: the first device schema.
///
/// - `record_versions`: every version of every clinical record, local or
///   pulled, as the JSON of its `RecordVersion`. Triggers make it append-only.
/// - `outbox`: one row per local version to push, in push order (`seq`).
/// - `sync_cursor`: the one pull cursor, moved with the data it covers.
/// - `patients`, `care_homes`, `rounds`, `round_patients`: what the clinician
///   needs offline, replaced by each pull.
const V1: &str = r"
CREATE TABLE record_versions (
    version_id  TEXT PRIMARY KEY NOT NULL,
    record_id   TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('visit', 'medication_review')),
    supersedes  TEXT,
    origin      TEXT NOT NULL CHECK (origin IN ('local', 'pulled')),
    body        TEXT NOT NULL,
    stored_at   TEXT NOT NULL
) STRICT;
CREATE INDEX record_versions_by_record ON record_versions (record_id);
CREATE TRIGGER record_versions_never_change BEFORE UPDATE ON record_versions
BEGIN
    SELECT RAISE(ABORT, 'record versions are append-only');
END;
CREATE TRIGGER record_versions_never_vanish BEFORE DELETE ON record_versions
BEGIN
    SELECT RAISE(ABORT, 'record versions are append-only');
END;

CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id   TEXT NOT NULL UNIQUE,
    version_id  TEXT NOT NULL UNIQUE REFERENCES record_versions (version_id),
    kind        TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    state       TEXT NOT NULL
                CHECK (state IN ('pending', 'sent', 'accepted', 'rejected', 'filed')),
    reason      TEXT,
    created_at  TEXT NOT NULL,
    CHECK ((state = 'rejected') = (reason IS NOT NULL))
) STRICT;

CREATE TABLE sync_cursor (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    cursor      TEXT NOT NULL,
    applied_at  TEXT NOT NULL
) STRICT;

CREATE TABLE patients (
    nhs_number  TEXT PRIMARY KEY NOT NULL,
    body        TEXT NOT NULL
) STRICT;

CREATE TABLE care_homes (
    id          TEXT PRIMARY KEY NOT NULL,
    body        TEXT NOT NULL
) STRICT;

CREATE TABLE rounds (
    day         TEXT PRIMARY KEY NOT NULL,
    body        TEXT NOT NULL
) STRICT;

CREATE TABLE round_patients (
    day         TEXT NOT NULL REFERENCES rounds (day) ON DELETE CASCADE,
    nhs_number  TEXT NOT NULL,
    PRIMARY KEY (day, nhs_number)
) STRICT, WITHOUT ROWID;
";

/// Version 2: when each outbox item last changed state, and an index to find
/// unfinished items without scanning every accepted and filed one.
///
/// The outbox keeps finished items (they are the device's audit of what was
/// filed), so after months it holds thousands; the push query and the status
/// screen read only a handful by state. Existing items take their creation
/// time as their last change, the best that is known.
const V2: &str = r"
ALTER TABLE outbox ADD COLUMN state_changed_at TEXT;
UPDATE outbox SET state_changed_at = created_at;
CREATE INDEX outbox_by_state ON outbox (state, seq);
";

/// Version 3: an outbox item can be withdrawn, with the change that
/// corrected it.
///
/// A change the endpoint refused can be replaced by a correction
/// (`Store::correct_rejected`): the refused item keeps its reason (the
/// device's audit of what was written and refused, and why) and moves to
/// `withdrawn`, naming the correcting item in `corrected_by`. The state's
/// CHECK constraint cannot be altered in SQLite, so the table is rebuilt
/// (create, copy, drop, rename); `seq` is copied as it was, so push order and
/// every change id stay, and as items are never deleted the largest `seq`
/// copied is where AUTOINCREMENT carries on. The state index goes with the
/// old table and is made again.
const V3: &str = r"
CREATE TABLE outbox_new (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id        TEXT NOT NULL UNIQUE,
    version_id       TEXT NOT NULL UNIQUE REFERENCES record_versions (version_id),
    kind             TEXT NOT NULL,
    record_id        TEXT NOT NULL,
    state            TEXT NOT NULL
                     CHECK (state IN ('pending', 'sent', 'accepted', 'rejected', 'withdrawn',
                                      'filed')),
    reason           TEXT,
    created_at       TEXT NOT NULL,
    state_changed_at TEXT,
    corrected_by     TEXT REFERENCES outbox_new (change_id),
    CHECK ((state IN ('rejected', 'withdrawn')) = (reason IS NOT NULL)),
    CHECK ((state = 'withdrawn') = (corrected_by IS NOT NULL))
) STRICT;
INSERT INTO outbox_new
    (seq, change_id, version_id, kind, record_id, state, reason, created_at, state_changed_at)
SELECT seq, change_id, version_id, kind, record_id, state, reason, created_at, state_changed_at
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_by_state ON outbox (state, seq);
";

/// Version 4: the network the store syncs with.
///
/// A store holds one network's records, and the sync engine records which
/// when the endpoint first answers one of its pushes or serves it a pull page
/// naming that network (`Store::bind_network`);
/// a sync with any other network is refused until the store is wiped, so a
/// device moved to another network cannot push the first network's
/// patients' records to the second, nor mix the second's into them. A file
/// migrated from version 3 is bound by its next answered push or pull.
const V4: &str = r"
CREATE TABLE sync_network (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    network     TEXT NOT NULL,
    bound_at    TEXT NOT NULL
) STRICT;
";

/// Version 5: the heads a reconciling version merges.
///
/// A version that reconciles a forked record supersedes one head (in
/// `record_versions.supersedes`) and merges the others (its
/// `meta.merges`, kept in its body too). They are listed here, one row a
/// merged head, so that the lineage checks can walk a record's history
/// through merges as through amendments without reading every body.
/// Append-only like the versions themselves. Versions stored before this
/// merge nothing, so there is nothing to copy.
const V5: &str = r"
CREATE TABLE version_merges (
    version_id  TEXT NOT NULL REFERENCES record_versions (version_id),
    merged      TEXT NOT NULL,
    PRIMARY KEY (version_id, merged)
) STRICT, WITHOUT ROWID;
CREATE INDEX version_merges_by_merged ON version_merges (merged);
CREATE TRIGGER version_merges_never_change BEFORE UPDATE ON version_merges
BEGIN
    SELECT RAISE(ABORT, 'record versions are append-only');
END;
CREATE TRIGGER version_merges_never_vanish BEFORE DELETE ON version_merges
BEGIN
    SELECT RAISE(ABORT, 'record versions are append-only');
END;
";

/// Version 6: versions found by the version they amend.
///
/// A version pulled before the one it amends is kept (pages come in the
/// endpoint's order); when that one arrives, the store checks that nothing
/// it holds amends it under another record, which asks this of every new
/// version a pull brings.
const V6: &str = r"
CREATE INDEX record_versions_by_supersedes ON record_versions (supersedes);
";

/// Version 7: the endpoint's word that this device is revoked.
///
/// Kept in the file, not only in the sync engine's memory, so that the app
/// keeps the records closed from every start until the wipe, even with no
/// signal to hear it again. The wipe deletes the file, and this with it.
const V7: &str = r"
CREATE TABLE device_revoked (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    revoked_at  TEXT NOT NULL
) STRICT;
";

/// The newest schema version this build knows.
pub const LATEST: i64 = 7;

/// The name of refinery's history table.
const HISTORY_TABLE: &str = "refinery_schema_history";

fn migrations() -> Vec<Migration> {
    [
        ("V1__device_store", V1),
        ("V2__outbox_state_index", V2),
        ("V3__outbox_withdrawn", V3),
        ("V4__sync_network", V4),
        ("V5__version_merges", V5),
        ("V6__versions_by_supersedes", V6),
        ("V7__device_revoked", V7),
    ]
    .into_iter()
    .map(|(name, sql)| Migration::unapplied(name, sql).expect("migration names are well formed"))
    .collect()
}

/// The file's schema version: 0 for a new, empty file. Reads only.
pub fn version(conn: &Connection) -> Result<i64> {
    let has_history: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
        [HISTORY_TABLE],
        |row| row.get(0),
    )?;
    if !has_history {
        return Ok(0);
    }
    let version: Option<i64> = conn
        .query_row(
            &format!("SELECT MAX(version) FROM {HISTORY_TABLE}"),
            [],
            |row| row.get(0),
        )
        .optional()?
        .flatten();
    Ok(version.unwrap_or(0))
}

/// Refuses a file written by a newer build, before anything is written.
pub fn check_version(conn: &Connection) -> Result<i64> {
    let found = version(conn)?;
    if found > LATEST {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: LATEST,
        });
    }
    Ok(found)
}

/// Brings the file up to `target` (normally [`LATEST`]), all pending
/// migrations in one transaction.
pub fn migrate_to(conn: &mut Connection, target: i64) -> Result<()> {
    if check_version(conn)? >= target {
        return Ok(());
    }
    let target = i32::try_from(target)
        .map_err(|_| StoreError::Migration("target version out of range".into()))?;
    Runner::new(&migrations())
        .set_grouped(true)
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .set_target(refinery_core::Target::Version(target))
        .run(conn)
        .map_err(migration_failed)?;
    Ok(())
}

/// A failed migration as the shell should read it: storage full (a migration
/// that copies a table needs room for the copy) and another connection's
/// write lock as such, anything else as a failed migration, damage included
/// (a migration that fails is not a reason to discard the file). The file
/// keeps its version.
fn migration_failed(e: refinery_core::Error) -> StoreError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(at) = source {
        match at
            .downcast_ref::<rusqlite::Error>()
            .and_then(rusqlite::Error::sqlite_error_code)
        {
            Some(rusqlite::ErrorCode::DiskFull) => return StoreError::DiskFull,
            Some(rusqlite::ErrorCode::DatabaseBusy) => return StoreError::Busy,
            _ => {}
        }
        source = at.source();
    }
    StoreError::Migration(e.to_string())
}
