//! The embedded backend: one SQLite file in the data directory, for a single
//! endpoint process serving one network's practices with nothing to install.
//!
//! Writes go through one connection on one thread (SQLite has one writer
//! anyway), so pushes are serialised and sequence numbers commit in order.
//! The writer groups the writes waiting for it into one transaction, each in
//! its own savepoint, and answers them only after the commit: one `fsync`
//! serves many pushes (group commit), and a failing push rolls back alone.
//! Reads use a few more connections in WAL mode so pulls never wait for a
//! push. `synchronous=FULL`: an acknowledged push survives a power cut. The
//! crate links SQLCipher (for the device store); the server file is unkeyed.
//! A write that panics is rolled back alone and answered with an error; the
//! writer goes on. The health check still sends a write through the writer,
//! so a writer that is stuck (or has stopped) is noticed.

use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use doorstep_domain::network::{ClinicianId, DeviceId};
use doorstep_domain::record::{RecordId, VersionId, VersionMeta};
use doorstep_sync::wire::{ChangeId, ChangeKind, ChangeOutcome};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use uuid::Uuid;

use super::page::{keyset_page, page_end};
use super::plan::{
    ExistingChange, Held, NamingVersion, StoredVersion, SupersededVersion, fork_of, plan_push,
};
use super::{
    CheckedChange, ForksPage, NetworkScope, PullPage, Storage, StorageError, StoredChange,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sync_networks (
    network TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS sync_changes (
    network TEXT NOT NULL,
    seq INTEGER NOT NULL,
    change_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    record_id TEXT NOT NULL,
    version_id TEXT NOT NULL,
    supersedes TEXT,
    author TEXT NOT NULL,
    device TEXT NOT NULL,
    written_at TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (network, seq),
    UNIQUE (network, change_id),
    UNIQUE (network, version_id)
) STRICT;
CREATE INDEX IF NOT EXISTS sync_changes_record ON sync_changes (network, record_id);
CREATE INDEX IF NOT EXISTS sync_changes_supersedes ON sync_changes (network, supersedes);
CREATE TABLE IF NOT EXISTS sync_forks (
    network TEXT NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (network, record_id)
) STRICT;
CREATE TABLE IF NOT EXISTS sync_merges (
    network TEXT NOT NULL,
    version_id TEXT NOT NULL,
    record_id TEXT NOT NULL,
    merged TEXT NOT NULL,
    ord INTEGER NOT NULL,
    PRIMARY KEY (network, version_id, merged)
) STRICT;
CREATE INDEX IF NOT EXISTS sync_merges_record ON sync_merges (network, record_id);
CREATE TABLE IF NOT EXISTS sync_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch TEXT NOT NULL
) STRICT;
INSERT OR IGNORE INTO sync_epoch (id, epoch) VALUES (1, '');
CREATE TABLE IF NOT EXISTS sync_revoked_devices (
    network TEXT NOT NULL,
    device TEXT NOT NULL,
    revoked_at TEXT NOT NULL,
    PRIMARY KEY (network, device)
) STRICT;
CREATE TABLE IF NOT EXISTS sync_health (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at TEXT NOT NULL
) STRICT;
";

const READERS: usize = 4;
/// Most writes grouped into one transaction.
const GROUP: usize = 64;

type Answer = Result<Box<dyn Any + Send>, StorageError>;
type Work = Box<dyn FnOnce(&Connection) -> Answer + Send>;

/// One write for the writer thread, and where to send its answer.
struct Job {
    work: Work,
    reply: tokio::sync::oneshot::Sender<Answer>,
}

/// The SQLite backend. Cheap to clone: clones share the connections.
#[derive(Clone)]
pub struct SqliteStorage {
    inner: Arc<Inner>,
}

struct Inner {
    writer: mpsc::Sender<Job>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    epoch: String,
}

fn open(path: &Path) -> Result<Connection, StorageError> {
    crate::files::make_private_file(path)
        .map_err(|e| StorageError::Config(format!("database file {}: {e}", path.display())))?;
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file at `path` and its schema.
    ///
    /// Refuses to create the database anew where a restore cut short left it
    /// moved aside (a `.replaced-*` file beside it, and none in its place): an
    /// empty database there would be served as the network's, and the next
    /// restore would find no revocations in it to carry.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        if !path.exists()
            && let Some(aside) = newest_moved_aside(path)
        {
            return Err(StorageError::Config(format!(
                "{} is missing, and a restore cut short left {} beside it: move that file back \
                 to {} (or run the restore again) before starting",
                path.display(),
                aside.display(),
                path.display()
            )));
        }
        let mut conn = open(path)?;
        conn.execute_batch(SCHEMA)?;
        let epoch: String =
            conn.query_row("SELECT epoch FROM sync_epoch WHERE id = 1", [], |r| {
                r.get(0)
            })?;
        let readers = (0..READERS)
            .map(|_| open(path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        let (writer, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(&mut conn, &jobs))
            .map_err(|e| StorageError::Task(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                readers,
                next_reader: AtomicUsize::new(0),
                epoch,
            }),
        })
    }

    /// Runs `f` on the writer thread inside a transaction (and a savepoint of
    /// its own); answers once that transaction is committed.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let work: Work = Box::new(move |conn| f(conn).map(|v| Box::new(v) as Box<dyn Any + Send>));
        self.inner
            .writer
            .send(Job { work, reply })
            .map_err(|_| StorageError::WriterStopped)?;
        let value = answer
            .await
            .map_err(|_| StorageError::Task("the writer thread dropped a write".into()))??;
        value
            .downcast::<T>()
            .map(|v| *v)
            .map_err(|_| StorageError::Task("writer answered with the wrong type".into()))
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let conn = inner.readers[i]
                .lock()
                .map_err(|_| StorageError::Task("reader lock poisoned".into()))?;
            f(&conn)
        })
        .await
        .map_err(|e| StorageError::Task(e.to_string()))?
    }
}

/// What a backup holds, for the operator to check against what they expect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackupSummary {
    /// Changes stored, across every network.
    pub changes: u64,
    /// Networks with at least one change.
    pub networks: u64,
    /// Size of the backup file.
    pub bytes: u64,
}

/// Why a backup or a restore was not made. Nothing is left at the backup's
/// path then, and a restore that fails changes nothing in the data
/// directory.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// There is no endpoint database at the path given.
    #[error(
        "no endpoint database at {0} (an endpoint on PostgreSQL is backed up with \
         PostgreSQL's own tools, such as pg_dump)"
    )]
    NoDatabase(PathBuf),
    /// The backup a restore was given is not there: nothing was looked at
    /// or made in the data directory.
    #[error("backup file not found: {0}; give --from the file `doorstep backup --out` wrote")]
    NoBackup(PathBuf),
    /// The backup a restore was given is there but is not a file (a
    /// directory, say): nothing was looked at or made in the data directory.
    #[error("{0} is not a backup file: give --from the file `doorstep backup --out` wrote")]
    NotABackupFile(PathBuf),
    /// The backup's path names a file already.
    #[error("{0} exists; a backup never replaces a file")]
    Exists(PathBuf),
    /// A file could not be written, flushed or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// SQLite could not read the database or write the copy.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The copy failed its integrity check, does not hold the endpoint's
    /// tables (a file that is not the endpoint's database), or lacks merges
    /// that its versions name (restored, it would show reconciled records
    /// forked again).
    #[error("the copy is not a sound endpoint database: {0}")]
    Unsound(String),
    /// An endpoint is serving from this data directory: stop it first.
    #[error("an endpoint is serving from {0}; stop it first")]
    InUse(PathBuf),
    /// The devices revoked since the backup cannot be read from the
    /// database a restore would replace (it is damaged, or there is none, as
    /// on a new machine), so a lost phone could sync again. Nothing was
    /// changed.
    #[error(
        "the devices revoked since the backup cannot be read from {path} ({reason}); restore \
         with --forget-revocations only if you will revoke them again before any device can \
         reach the endpoint"
    )]
    RevocationsUnreadable {
        /// The database being replaced.
        path: PathBuf,
        /// Why it could not be read.
        reason: String,
    },
}

/// Copies the endpoint's database at `database` to `out`, consistent as of
/// one moment, while the endpoint may go on serving (a read in WAL mode, so
/// pushes neither wait for it nor are half-copied). The copy is made beside
/// `out`, given a restore epoch of its own (see [`Storage::epoch`]), and
/// checked whole (`integrity_check`, the endpoint's tables, every merge a
/// stored version names in `sync_merges`) before it is
/// flushed and linked to `out`, so a file named `out` is always a complete
/// backup. Refuses to replace an existing `out`; never writes to `database`.
pub fn backup(database: &Path, out: &Path) -> Result<BackupSummary, BackupError> {
    if !database.is_file() {
        return Err(BackupError::NoDatabase(database.to_path_buf()));
    }
    if out.exists() {
        return Err(BackupError::Exists(out.to_path_buf()));
    }
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staged = out.with_file_name(format!(".{name}.partial"));
    let summary = stage(database, &staged)?;
    // A link, unlike a rename, fails if `out` appeared meanwhile: a backup
    // never replaces a file. Where links cannot be made (a FAT or exFAT
    // drive, some network shares) it is renamed after one more look.
    match std::fs::hard_link(&staged, out) {
        Ok(()) => {
            let _ = std::fs::remove_file(&staged);
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&staged);
            return Err(BackupError::Exists(out.to_path_buf()));
        }
        Err(_) if !out.exists() => std::fs::rename(&staged, out).map_err(io_at(out))?,
        Err(_) => {
            let _ = std::fs::remove_file(&staged);
            return Err(BackupError::Exists(out.to_path_buf()));
        }
    }
    // The new name survives a power cut once the directory is flushed.
    let folder = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(folder)
        .and_then(|d| d.sync_all())
        .map_err(io_at(folder))?;
    Ok(summary)
}

/// File, in the data directory, that a serving endpoint holds locked (see
/// [`lock_data_dir`]).
pub const SERVE_LOCK_FILE: &str = "doorstep-serve.lock";

/// Locks the data directory `dir` for one endpoint process, or says that
/// another holds it. `doorstep serve` keeps the lock while it runs, so a
/// second endpoint on the same directory (two writers of one SQLite file,
/// two keepers of one key) refuses to start, and [`restore`] refuses to
/// replace a database in use. The lock goes with the process, however it
/// ends.
pub fn lock_data_dir(dir: &Path) -> Result<std::fs::File, BackupError> {
    crate::files::create_private_dir(dir).map_err(|source| BackupError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(SERVE_LOCK_FILE);
    let file = crate::files::open_lock_file(&path).map_err(|source| BackupError::Io {
        path: path.clone(),
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(BackupError::InUse(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(source)) => Err(BackupError::Io { path, source }),
    }
}

/// What a restore did, for the operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Restored {
    /// What the restored database holds.
    #[serde(flatten)]
    pub summary: BackupSummary,
    /// The name the replaced database's files were moved to, if there were
    /// any: the database at this path, its `-wal` and `-shm` with the suffix
    /// added (a log found without its database is moved too, so this path
    /// itself may not exist). Kept, never deleted.
    pub replaced: Option<PathBuf>,
    /// Devices the replaced database had revoked that the backup had not,
    /// revoked again in the restored one.
    pub revocations_carried: u64,
    /// Why the replaced database's revocations could not be read, when the
    /// restore went on without them ([`Revocations::ForgetIfUnreadable`]):
    /// the operator revokes those devices again before opening the endpoint.
    pub revocations_unread: Option<String>,
}

/// What a restore does when the database it replaces cannot be read for the
/// devices it revoked, or there is none. Readable revocations are always
/// carried over: a restore never gives a lost or stolen phone its access
/// back without the operator saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocations {
    /// Refuse the restore ([`BackupError::RevocationsUnreadable`]).
    Required,
    /// Go on without them, and say so in [`Restored::revocations_unread`]
    /// (the database is too damaged to read, which may be why it is being
    /// replaced, or gone with the machine it was on).
    ForgetIfUnreadable,
}

/// Puts the backup `from` in place as the endpoint's database in `dir`,
/// with the endpoint stopped (refused with [`BackupError::InUse`] while one
/// serves from `dir`). The backup is copied, given a fresh restore epoch
/// (so every pull cursor made before is refused, whichever backup this is
/// and however often it is restored) and checked before anything in `dir`
/// changes; the database it replaces is moved aside whole, never deleted.
///
/// Every device the replaced database revoked stays revoked: revocations
/// made after the backup would otherwise be lost with it. When they cannot
/// be read, `revocations` says whether to refuse or go on.
///
/// A backup that is not there, is not a file or cannot be read is refused
/// before `dir` is touched: a mistyped `from` makes no data directory.
pub fn restore(dir: &Path, from: &Path, revocations: Revocations) -> Result<Restored, BackupError> {
    readable_backup(from)?;
    let _serving = lock_data_dir(dir)?;
    let live = dir.join(crate::app::SQLITE_FILE);
    let mut made = MadeByReading::before(&live);
    let read = revoked_devices(&live);
    made.after(&live);
    let revoked = match read {
        Ok(rows) => Ok(rows),
        Err(reason) if revocations == Revocations::ForgetIfUnreadable => Err(reason),
        Err(reason) => return Err(BackupError::RevocationsUnreadable { path: live, reason }),
    };
    let staged = dir.join(format!(".{}.restoring", crate::app::SQLITE_FILE));
    let summary = stage(from, &staged)?;
    let put_in_place = || -> Result<(u64, Option<PathBuf>), BackupError> {
        let carried = match &revoked {
            Ok(rows) => revoke_again(&staged, rows)?,
            Err(_) => 0,
        };
        // A name no earlier restore took: what was moved aside stays.
        let stamp = jiff::Timestamp::now().as_nanosecond();
        let aside = (0..)
            .map(|n| dir.join(format!("{}.replaced-{stamp}-{n}", crate::app::SQLITE_FILE)))
            .find(|p| DATABASE_FILES.iter().all(|f| !suffixed(p, f).exists()))
            .expect("an unused name");
        let moved = move_all(&live, &aside)?;
        if let Err(e) = std::fs::rename(&staged, &live) {
            undo_moves(&moved);
            return Err(io_at(&live)(e));
        }
        Ok((carried, (!moved.is_empty()).then_some(aside)))
    };
    let (revocations_carried, replaced) = put_in_place().inspect_err(|_| {
        let _ = std::fs::remove_file(&staged);
    })?;
    made.keep();
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))?;
    Ok(Restored {
        summary,
        replaced,
        revocations_carried,
        revocations_unread: revoked.err(),
    })
}

/// Whether `from` is a file this process can read, as a restore's backup
/// must be; why not, if not.
fn readable_backup(from: &Path) -> Result<(), BackupError> {
    match std::fs::metadata(from) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(BackupError::NoBackup(from.to_path_buf()))
        }
        Err(e) => Err(io_at(from)(e)),
        Ok(meta) if !meta.is_file() => Err(BackupError::NotABackupFile(from.to_path_buf())),
        Ok(_) => std::fs::File::open(from).map(drop).map_err(io_at(from)),
    }
}

/// A database's files: the database itself, its write-ahead log and the
/// log's index. Moved together, or a log could be replayed into a database
/// it was not written for.
const DATABASE_FILES: [&str; 3] = ["", "-wal", "-shm"];

/// `base` with `suffix` added to its file name.
fn suffixed(base: &Path, suffix: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Moves whichever of `from`'s files exist (see [`DATABASE_FILES`]) to
/// `to`'s names, all or none: on a failure the ones moved go back. Returns
/// the moves made, for [`undo_moves`].
fn move_all(from: &Path, to: &Path) -> Result<Vec<(PathBuf, PathBuf)>, BackupError> {
    let mut moved = Vec::new();
    for suffix in DATABASE_FILES {
        let (a, b) = (suffixed(from, suffix), suffixed(to, suffix));
        if !a.exists() {
            continue;
        }
        if let Err(e) = std::fs::rename(&a, &b) {
            undo_moves(&moved);
            return Err(io_at(&a)(e));
        }
        moved.push((a, b));
    }
    Ok(moved)
}

/// Puts files moved by [`move_all`] back, last first.
fn undo_moves(moved: &[(PathBuf, PathBuf)]) {
    for (a, b) in moved.iter().rev() {
        let _ = std::fs::rename(b, a);
    }
}

/// The log files that reading a database made: SQLite gives a database in
/// WAL mode a `-wal` and a `-shm` even for a read-only connection, and
/// leaves them. A restore that stops removes them again (the log a reader
/// makes is empty), so a refused restore changes nothing in the directory.
struct MadeByReading {
    absent: Vec<PathBuf>,
    made: Vec<PathBuf>,
}

impl MadeByReading {
    /// Notes which of `database`'s log files are absent before it is read.
    fn before(database: &Path) -> Self {
        let absent = DATABASE_FILES[1..]
            .iter()
            .map(|suffix| suffixed(database, suffix))
            .filter(|p| !p.exists())
            .collect();
        Self {
            absent,
            made: Vec::new(),
        }
    }

    /// Notes which of them the read made.
    fn after(&mut self, database: &Path) {
        if database.exists() {
            self.made = self.absent.iter().filter(|p| p.exists()).cloned().collect();
        }
    }

    /// They went with the database they belong to: nothing to remove.
    fn keep(&mut self) {
        self.made.clear();
    }
}

impl Drop for MadeByReading {
    fn drop(&mut self) {
        for path in &self.made {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// One device revocation as stored: network, device, when.
type Revocation = (String, String, String);

/// Every revocation `database` holds, read without writing to it, or why
/// they cannot be read (there is no such database, or it is damaged).
fn revoked_devices(database: &Path) -> Result<Vec<Revocation>, String> {
    if !database.is_file() {
        return Err(match newest_moved_aside(database) {
            Some(aside) => format!(
                "there is no database here to replace; the newest one moved aside is {}: \
                 move it back to {} to carry its revocations over",
                aside.display(),
                database.display()
            ),
            None => "there is no database here to replace".into(),
        });
    }
    let read = || -> Result<Vec<Revocation>, rusqlite::Error> {
        let conn =
            Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut stmt =
            conn.prepare("SELECT network, device, revoked_at FROM sync_revoked_devices")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect()
    };
    read().map_err(|e| e.to_string())
}

/// The newest database a restore moved aside from `database`'s place, if
/// any: where a restore cut short between moving the old database aside and
/// putting the backup in place left it.
fn newest_moved_aside(database: &Path) -> Option<PathBuf> {
    let prefix = format!("{}.replaced-", database.file_name()?.to_string_lossy());
    std::fs::read_dir(database.parent()?)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix) && !name.ends_with("-wal") && !name.ends_with("-shm")
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
}

/// Revokes again, in the staged copy `staged`, the devices in `rows` it does
/// not have revoked, keeping each one's first revocation time; returns how
/// many it added. The write is committed (and so flushed) before the copy
/// takes the database's place.
fn revoke_again(staged: &Path, rows: &[Revocation]) -> Result<u64, BackupError> {
    let mut conn = Connection::open(staged)?;
    let tx = conn.transaction()?;
    let mut added = 0;
    {
        let mut insert = tx.prepare(
            "INSERT INTO sync_revoked_devices (network, device, revoked_at)
             VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?;
        for (network, device, at) in rows {
            added += insert.execute(params![network, device, at])? as u64;
        }
    }
    tx.commit()?;
    Ok(added)
}

/// [`BackupError::Io`] about `path`.
fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_path_buf();
    move |source| BackupError::Io { path, source }
}

/// Copies `from` to `staged` and checks the copy. A file left at `staged` by
/// a run cut short is removed first (it is not a backup), and nothing is
/// left there when the copy fails.
fn stage(from: &Path, staged: &Path) -> Result<BackupSummary, BackupError> {
    match std::fs::remove_file(staged) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_at(staged)(e)),
        _ => {}
    }
    copy_and_check(from, staged).inspect_err(|_| {
        let _ = std::fs::remove_file(staged);
    })
}

/// The copy itself, into `staged`, and its checks.
fn copy_and_check(database: &Path, staged: &Path) -> Result<BackupSummary, BackupError> {
    let source = Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    source.busy_timeout(std::time::Duration::from_secs(10))?;
    let target = staged
        .to_str()
        .ok_or_else(|| BackupError::Unsound(format!("{} is not UTF-8", staged.display())))?;
    // The copy holds every network's records: made private before SQLite writes into it.
    crate::files::make_private_file(staged).map_err(io_at(staged))?;
    source.execute("VACUUM INTO ?1", [target])?;
    // The copy is an epoch of its own: restored, it refuses every pull cursor
    // made before (by the database it was copied from, before or after the
    // copy), so every device asks what it lost, even one whose cursor is
    // older than the backup.
    Connection::open(staged)?.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS sync_epoch (
             id INTEGER PRIMARY KEY CHECK (id = 1),
             epoch TEXT NOT NULL
         ) STRICT;
         INSERT OR REPLACE INTO sync_epoch (id, epoch) VALUES (1, '{}');",
        Uuid::now_v7().simple()
    ))?;
    let copy = Connection::open_with_flags(staged, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let check: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(BackupError::Unsound(check));
    }
    for table in [
        "sync_networks",
        "sync_forks",
        "sync_revoked_devices",
        "sync_epoch",
    ] {
        copy.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|e| BackupError::Unsound(e.to_string()))?;
    }
    let lost = merges_missing(&copy).map_err(|e| BackupError::Unsound(e.to_string()))?;
    if lost > 0 {
        return Err(BackupError::Unsound(format!(
            "{lost} merge(s) that its stored versions name are not in sync_merges, so the \
             endpoint would read their reconciled records as forked again"
        )));
    }
    let (changes, networks): (i64, i64) = copy
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT network) FROM sync_changes",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| BackupError::Unsound(e.to_string()))?;
    let file = std::fs::File::open(staged).map_err(|source| BackupError::Io {
        path: staged.to_path_buf(),
        source,
    })?;
    file.sync_all().map_err(|source| BackupError::Io {
        path: staged.to_path_buf(),
        source,
    })?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok(BackupSummary {
        changes: changes as u64,
        networks: networks as u64,
        bytes,
    })
}

/// How many of the merges that the versions stored in `copy` name (their
/// JSON's `meta.merges`) have no row in `sync_merges`, where the endpoint
/// reads them from when it judges a record's heads: a copy that lost them
/// would serve reconciled records as forked again. A database from before
/// merges existed has no such table and no version naming one, so it counts
/// none; the endpoint makes the table when it starts.
fn merges_missing(copy: &Connection) -> rusqlite::Result<i64> {
    let has_table: bool = copy.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sync_merges')",
        [],
        |r| r.get(0),
    )?;
    let held = if has_table {
        "EXISTS (SELECT 1 FROM sync_merges m WHERE m.network = c.network
             AND m.version_id = c.version_id AND m.merged = j.value)"
    } else {
        "0"
    };
    // `instr` passes over, unparsed, the bodies that cannot name a merge.
    copy.query_row(
        &format!(
            "SELECT COUNT(*) FROM sync_changes c, json_each(c.body, '$.meta.merges') j
             WHERE instr(c.body, '\"merges\"') > 0 AND NOT {held}"
        ),
        [],
        |r| r.get(0),
    )
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(what.to_owned())
}

fn uuid(text: &str) -> Result<Uuid, StorageError> {
    Uuid::parse_str(text).map_err(|_| corrupt("uuid column"))
}

fn kind(text: &str) -> Result<ChangeKind, StorageError> {
    ChangeKind::parse(text).ok_or_else(|| corrupt("kind column"))
}

/// Every stored version of `record`, each envelope as it was pushed: its
/// `merges` (kept in `sync_merges`, in their order) included, since a
/// history read without them would show a reconciled record forked.
fn versions_of(
    conn: &Connection,
    network: &str,
    record: &RecordId,
) -> Result<Vec<StoredVersion>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version_id, supersedes, author, device, written_at, kind
         FROM sync_changes WHERE network = ?1 AND record_id = ?2",
    )?;
    let rows = stmt.query_map(params![network, record.0.to_string()], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (version, supersedes, author, device, written_at, k) = row?;
        let meta = VersionMeta {
            record_id: *record,
            version_id: VersionId(uuid(&version)?),
            supersedes: supersedes.as_deref().map(uuid).transpose()?.map(VersionId),
            merges: Vec::new(),
            author: ClinicianId::parse(&author).map_err(|_| corrupt("author column"))?,
            device: DeviceId::parse(&device).map_err(|_| corrupt("device column"))?,
            written_at: written_at
                .parse()
                .map_err(|_| corrupt("written_at column"))?,
        };
        out.push(StoredVersion {
            kind: kind(&k)?,
            meta,
        });
    }
    let mut stmt = conn.prepare_cached(
        "SELECT version_id, merged FROM sync_merges
         WHERE network = ?1 AND record_id = ?2 ORDER BY ord",
    )?;
    let rows = stmt.query_map(params![network, record.0.to_string()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    // A row of no stored version (the changes table restored without this
    // one) merges nothing, as on PostgreSQL.
    let mut by_version: HashMap<VersionId, &mut VersionMeta> = out
        .iter_mut()
        .map(|v| (v.meta.version_id, &mut v.meta))
        .collect();
    for row in rows {
        let (version, merged) = row?;
        if let Some(meta) = by_version.get_mut(&VersionId(uuid(&version)?)) {
            meta.merges.push(VersionId(uuid(&merged)?));
        }
    }
    Ok(out)
}

fn existing(
    conn: &Connection,
    network: &str,
    change: &CheckedChange,
) -> Result<Vec<ExistingChange>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT change_id, version_id, kind, body FROM sync_changes
         WHERE network = ?1 AND (change_id = ?2 OR version_id = ?3)",
    )?;
    let rows = stmt.query_map(
        params![
            network,
            change.change_id.0.to_string(),
            change.meta.version_id.0.to_string()
        ],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (change_id, version_id, k, body) = row?;
        out.push(ExistingChange {
            change_id: ChangeId(uuid(&change_id)?),
            version_id: VersionId(uuid(&version_id)?),
            kind: kind(&k)?,
            body,
        });
    }
    Ok(out)
}

/// The record holding each stored version `change` supersedes or merges,
/// for those of them the network holds.
fn superseded(
    conn: &Connection,
    network: &str,
    change: &CheckedChange,
) -> Result<Vec<SupersededVersion>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT record_id FROM sync_changes WHERE network = ?1 AND version_id = ?2",
    )?;
    let mut out = Vec::new();
    for &version_id in change.meta.supersedes.iter().chain(&change.meta.merges) {
        let record: Option<String> = stmt
            .query_row(params![network, version_id.0.to_string()], |r| r.get(0))
            .optional()?;
        if let Some(record) = record {
            out.push(SupersededVersion {
                version_id,
                record_id: RecordId(uuid(&record)?),
            });
        }
    }
    Ok(out)
}

/// The stored amendments naming `change`'s version as the one they amend.
fn naming(
    conn: &Connection,
    network: &str,
    change: &CheckedChange,
) -> Result<Vec<NamingVersion>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT record_id FROM sync_changes WHERE network = ?1 AND supersedes = ?2",
    )?;
    let rows = stmt.query_map(
        params![network, change.meta.version_id.0.to_string()],
        |r| r.get::<_, String>(0),
    )?;
    let mut out = Vec::new();
    for row in rows {
        out.push(NamingVersion {
            version_id: change.meta.version_id,
            record_id: RecordId(uuid(&row?)?),
        });
    }
    Ok(out)
}

/// The writer thread: takes the writes waiting, runs each in its own
/// savepoint of one transaction, commits, then answers them all.
fn write_loop(conn: &mut Connection, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let mut answers = Vec::with_capacity(group.len());
        let mut jobs = group.into_iter();
        let committed = (|| -> Result<(), rusqlite::Error> {
            let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for job in jobs.by_ref() {
                let answer = {
                    let savepoint = tx.savepoint()?;
                    let answer = run_caught(job.work, &savepoint);
                    if answer.is_ok() {
                        savepoint.commit()?;
                    }
                    answer
                };
                answers.push((job.reply, answer));
                // SQLite rolled the whole transaction back itself (a full disk, an I/O
                // error): the jobs after it would each commit alone, outside the group,
                // and then be answered as failed. They are not run; like the rest of the
                // group they are answered as failed, and nothing of it is stored.
                if tx.is_autocommit() {
                    // The whole group fails for what that write met (a full
                    // disk, an I/O error), so each is answered with it.
                    return Err(match answers.last().map(|(_, answer)| answer) {
                        Some(Err(StorageError::Sqlite(rusqlite::Error::SqliteFailure(
                            code,
                            message,
                        )))) => rusqlite::Error::SqliteFailure(*code, message.clone()),
                        _ => rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT_ROLLBACK),
                            Some("the database rolled the group's transaction back".into()),
                        ),
                    });
                }
            }
            tx.commit()
        })();
        // Jobs the group never ran (the transaction could not begin, or
        // SQLite rolled it back part-way) are answered as failed with the rest.
        answers.extend(jobs.map(|job| {
            let unrun: Answer = Err(StorageError::Task("not run".into()));
            (job.reply, unrun)
        }));
        for (reply, answer) in answers {
            let answer = match &committed {
                Ok(()) => answer,
                Err(e) => Err(group_failed(e)),
            };
            // A caller that gave up (request cancelled) no longer listens.
            let _ = reply.send(answer);
        }
        if let Err(e) = committed {
            tracing::error!(error = %e, "sqlite group commit failed");
        }
    }
}

/// What each write of a group that failed to commit is answered: SQLite's own
/// error where it gave one (so a full disk, an I/O error or another process
/// holding the file reads as the database out of reach, 503), else the
/// failure as it is.
fn group_failed(e: &rusqlite::Error) -> StorageError {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            StorageError::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
        }
        other => StorageError::Task(format!("group commit failed: {other}")),
    }
}

/// Runs one write, turning a panic in it into an error for its caller alone.
/// The caller then drops the write's savepoint uncommitted, which rolls back
/// whatever it did; the rest of its group commits and the writer goes on. The
/// panic (a bug of ours, perhaps one an input can reach) is logged, and its
/// caller gets a plain 500, but it no longer stops every later push.
fn run_caught(work: Work, conn: &Connection) -> Answer {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn))).unwrap_or_else(|_| {
        // The panic's own message may quote what was being stored, and this
        // log carries no record content (the panic hook has printed the
        // message, as for any panic).
        tracing::error!("a write panicked; it was rolled back alone");
        Err(StorageError::WritePanicked)
    })
}

fn push_tx(
    tx: &Connection,
    network: &str,
    changes: &[CheckedChange],
) -> Result<Vec<ChangeOutcome>, StorageError> {
    let last_seq: i64 = tx
        .query_row(
            "SELECT last_seq FROM sync_networks WHERE network = ?1",
            [network],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let mut held = Held::default();
    let mut records: Vec<RecordId> = Vec::new();
    for change in changes {
        held.existing.extend(existing(tx, network, change)?);
        held.superseded.extend(superseded(tx, network, change)?);
        held.naming.extend(naming(tx, network, change)?);
        if !records.contains(&change.meta.record_id) {
            records.push(change.meta.record_id);
            held.versions
                .extend(versions_of(tx, network, &change.meta.record_id)?);
        }
    }
    let plan = plan_push(changes, held);
    if !plan.inserts.is_empty() {
        let now = jiff::Timestamp::now().to_string();
        let mut insert = tx.prepare_cached(
            "INSERT INTO sync_changes (network, seq, change_id, kind, record_id, version_id,
                 supersedes, author, device, written_at, body, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        let mut insert_merge = tx.prepare_cached(
            "INSERT INTO sync_merges (network, version_id, record_id, merged, ord)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut seq = last_seq;
        for &i in &plan.inserts {
            let c = &changes[i];
            seq += 1;
            insert.execute(params![
                network,
                seq,
                c.change_id.0.to_string(),
                c.kind.as_str(),
                c.meta.record_id.0.to_string(),
                c.meta.version_id.0.to_string(),
                c.meta.supersedes.map(|s| s.0.to_string()),
                c.meta.author.as_str(),
                c.meta.device.as_str(),
                c.meta.written_at.to_string(),
                c.body,
                now,
            ])?;
            for (ord, merged) in (0_i64..).zip(&c.meta.merges) {
                insert_merge.execute(params![
                    network,
                    c.meta.version_id.0.to_string(),
                    c.meta.record_id.0.to_string(),
                    merged.0.to_string(),
                    ord,
                ])?;
            }
        }
        drop(insert);
        drop(insert_merge);
        tx.execute(
            "INSERT INTO sync_networks (network, last_seq) VALUES (?1, ?2)
             ON CONFLICT (network) DO UPDATE SET last_seq = excluded.last_seq",
            params![network, seq],
        )?;
        for record in &plan.forked {
            tx.execute(
                "INSERT INTO sync_forks (network, record_id) VALUES (?1, ?2)
                 ON CONFLICT DO NOTHING",
                params![network, record.0.to_string()],
            )?;
        }
        for record in &plan.reconciled {
            tx.execute(
                "DELETE FROM sync_forks WHERE network = ?1 AND record_id = ?2",
                params![network, record.0.to_string()],
            )?;
        }
    }
    Ok(plan.outcomes)
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn epoch(&self) -> Result<String, StorageError> {
        Ok(self.inner.epoch.clone())
    }

    async fn push(
        &self,
        scope: &NetworkScope,
        changes: Vec<CheckedChange>,
    ) -> Result<Vec<ChangeOutcome>, StorageError> {
        let network = scope.network().as_str().to_owned();
        self.write(move |conn| push_tx(conn, &network, &changes))
            .await
    }

    async fn pull(
        &self,
        scope: &NetworkScope,
        after: u64,
        limit: u32,
        max_bytes: u64,
    ) -> Result<PullPage, StorageError> {
        let network = scope.network().as_str().to_owned();
        // Sequence numbers are stored as i64: nothing follows one past that.
        let Ok(after) = i64::try_from(after) else {
            return Ok(PullPage::default());
        };
        self.read(move |conn| {
            let mut sizes = conn.prepare_cached(
                "SELECT seq, octet_length(body) FROM sync_changes
                 WHERE network = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let sizes = sizes
                .query_map(params![network, after, i64::from(limit) + 1], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })?
                .map(|row| {
                    let (seq, bytes) = row?;
                    Ok((
                        seq,
                        u64::try_from(bytes).map_err(|_| corrupt("body column"))?,
                    ))
                })
                .collect::<Result<Vec<_>, StorageError>>()?;
            let end = page_end(&sizes, limit as usize, max_bytes);
            let Some(last) = end.last_seq else {
                return Ok(PullPage::default());
            };
            let mut stmt = conn.prepare_cached(
                "SELECT seq, change_id, kind, body FROM sync_changes
                 WHERE network = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![network, after, last], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            let mut changes = Vec::new();
            for row in rows {
                let (seq, change_id, k, body) = row?;
                changes.push(StoredChange {
                    seq: u64::try_from(seq).map_err(|_| corrupt("seq column"))?,
                    change_id: ChangeId(uuid(&change_id)?),
                    kind: kind(&k)?,
                    body,
                });
            }
            Ok(PullPage {
                changes,
                more: end.more,
            })
        })
        .await
    }

    async fn change_id_at(
        &self,
        scope: &NetworkScope,
        seq: u64,
    ) -> Result<Option<ChangeId>, StorageError> {
        let network = scope.network().as_str().to_owned();
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(None);
        };
        self.read(move |conn| {
            let found: Option<String> = conn
                .prepare_cached(
                    "SELECT change_id FROM sync_changes WHERE network = ?1 AND seq = ?2",
                )?
                .query_row(params![network, seq], |r| r.get(0))
                .optional()?;
            found
                .as_deref()
                .map(uuid)
                .transpose()
                .map(|id| id.map(ChangeId))
        })
        .await
    }

    async fn forks(
        &self,
        scope: &NetworkScope,
        after: Option<RecordId>,
        limit: u32,
    ) -> Result<ForksPage, StorageError> {
        let network = scope.network().as_str().to_owned();
        // Record ids are stored in their canonical text, which sorts as the
        // ids do (as PostgreSQL sorts its uuid column); "" precedes them all.
        let after = after.map(|r| r.0.to_string()).unwrap_or_default();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT record_id FROM sync_forks WHERE network = ?1 AND record_id > ?2
                 ORDER BY record_id LIMIT ?3",
            )?;
            let records = stmt
                .query_map(params![network, after, i64::from(limit) + 1], |r| {
                    r.get::<_, String>(0)
                })?
                .map(|record| Ok(RecordId(uuid(&record?)?)))
                .collect::<Result<Vec<_>, StorageError>>()?;
            let (records, next) = keyset_page(records, limit as usize);
            let mut forks = Vec::new();
            for record in records {
                let metas: Vec<VersionMeta> = versions_of(conn, &network, &record)?
                    .into_iter()
                    .map(|v| v.meta)
                    .collect();
                forks.extend(fork_of(record, &metas));
            }
            Ok(ForksPage { forks, next })
        })
        .await
    }

    async fn revoke_device(
        &self,
        scope: &NetworkScope,
        device: &DeviceId,
    ) -> Result<u64, StorageError> {
        let network = scope.network().as_str().to_owned();
        let device = device.as_str().to_owned();
        let (n, d) = (network.clone(), device.clone());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO sync_revoked_devices (network, device, revoked_at)
                 VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![n, d, jiff::Timestamp::now().to_string()],
            )?;
            Ok(())
        })
        .await?;
        // Counted by a reader: the count reads every change of the network
        // (no index names devices), which the writer pushes wait on must not.
        self.read(move |conn| {
            let held: i64 = conn.query_row(
                "SELECT COUNT(*) FROM sync_changes WHERE network = ?1 AND device = ?2",
                params![network, device],
                |row| row.get(0),
            )?;
            Ok(held.unsigned_abs())
        })
        .await
    }

    async fn missing_changes(
        &self,
        scope: &NetworkScope,
        change_ids: Vec<ChangeId>,
    ) -> Result<Vec<ChangeId>, StorageError> {
        let network = scope.network().as_str().to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT 1 FROM sync_changes WHERE network = ?1 AND change_id = ?2",
            )?;
            let mut missing = Vec::new();
            for id in change_ids {
                if !stmt.exists(params![network, id.0.to_string()])? {
                    missing.push(id);
                }
            }
            Ok(missing)
        })
        .await
    }

    async fn stored_changes(
        &self,
        scope: &NetworkScope,
        change_ids: Vec<ChangeId>,
    ) -> Result<Vec<(ChangeId, ChangeKind, String)>, StorageError> {
        let network = scope.network().as_str().to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT kind, body FROM sync_changes WHERE network = ?1 AND change_id = ?2",
            )?;
            let mut stored = Vec::new();
            for id in change_ids {
                let row = stmt
                    .query_row(params![network, id.0.to_string()], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })
                    .optional()?;
                if let Some((k, body)) = row {
                    stored.push((id, kind(&k)?, body));
                }
            }
            Ok(stored)
        })
        .await
    }

    async fn is_revoked(
        &self,
        scope: &NetworkScope,
        device: &DeviceId,
    ) -> Result<bool, StorageError> {
        let network = scope.network().as_str().to_owned();
        let device = device.as_str().to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT 1 FROM sync_revoked_devices WHERE network = ?1 AND device = ?2",
            )?;
            Ok(stmt.exists(params![network, device])?)
        })
        .await
    }

    /// A read on a reader connection, then a write of one row through the
    /// writer thread (queued behind the pushes waiting, and grouped with
    /// them): the writer can stop while the readers carry on, and a disk too
    /// full to take a push takes no write either; only a real write shows it.
    async fn ping(&self) -> Result<(), StorageError> {
        self.read(|conn: &Connection| -> Result<(), StorageError> {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await?;
        self.write(|conn: &Connection| -> Result<(), StorageError> {
            conn.execute(
                "INSERT OR REPLACE INTO sync_health (id, checked_at) VALUES (1, ?1)",
                [jiff::Timestamp::now().to_string()],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;
    use crate::app::{AppState, DEFAULT_AUDIENCE, DEFAULT_ISSUER, router};
    use crate::auth::Verifier;
    use crate::routes::health::HEALTH_TIMEOUT;

    /// What the endpoint over `storage` answers to `/healthz`.
    async fn healthz(storage: &SqliteStorage, dir: &Path) -> (StatusCode, Value) {
        let verifier = Arc::new(Verifier::from_dir(dir, DEFAULT_ISSUER, DEFAULT_AUDIENCE).unwrap());
        let state = AppState {
            storage: Arc::new(storage.clone()),
            verifier,
        };
        let response = router(state)
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    fn ok() -> (StatusCode, Value) {
        (StatusCode::OK, json!({"status": "ok"}))
    }

    fn unavailable(reason: &str) -> (StatusCode, Value) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "reason": reason}),
        )
    }

    /// Puts a write on `storage`'s writer that waits, once it runs, until
    /// the sender returned is sent to; returns when the writer is held.
    async fn hold_writer(
        storage: &SqliteStorage,
    ) -> (
        mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), StorageError>>,
    ) {
        let (release, held) = mpsc::channel::<()>();
        let (running, on_writer) = tokio::sync::oneshot::channel::<()>();
        let holding = tokio::spawn({
            let storage = storage.clone();
            async move {
                storage
                    .write(move |_| {
                        running.send(()).ok();
                        held.recv().ok();
                        Ok(())
                    })
                    .await
            }
        });
        on_writer.await.unwrap();
        (release, holding)
    }

    /// Queues a write on `storage` that stores `network` in `sync_networks`
    /// and then, if `panics`, panics; returns once the write is in the
    /// writer's queue.
    async fn store_network(
        storage: &SqliteStorage,
        network: &'static str,
        panics: bool,
    ) -> tokio::task::JoinHandle<Result<(), StorageError>> {
        let storage = storage.clone();
        let (queued, in_queue) = tokio::sync::oneshot::channel::<()>();
        let writing = tokio::spawn(async move {
            let write = storage.write(move |conn| {
                conn.execute(
                    "INSERT INTO sync_networks (network, last_seq) VALUES (?1, 0)",
                    [network],
                )?;
                assert!(!panics, "a bug in a write");
                Ok(())
            });
            let mut write = std::pin::pin!(write);
            let mut queued = Some(queued);
            // The write is queued by the time its first poll returns.
            std::future::poll_fn(|cx| {
                let polled = write.as_mut().poll(cx);
                if let Some(queued) = queued.take() {
                    queued.send(()).ok();
                }
                polled
            })
            .await
        });
        in_queue.await.unwrap();
        writing
    }

    #[tokio::test]
    async fn a_write_that_panics_is_rolled_back_alone_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(&dir.path().join("server.sqlite3")).unwrap();
        // Hold the writer so that the three writes below queue behind it and
        // are committed as one group.
        let (release, holding) = hold_writer(&storage).await;
        let before = store_network(&storage, "before", false).await;
        let panics = store_network(&storage, "panics", true).await;
        let after = store_network(&storage, "after", false).await;
        release.send(()).unwrap();

        holding.await.unwrap().unwrap();
        before.await.unwrap().unwrap();
        let panicked = panics.await.unwrap();
        assert!(
            matches!(panicked, Err(StorageError::WritePanicked)),
            "{panicked:?}"
        );
        after.await.unwrap().unwrap();
        let stored = storage
            .read(|conn| {
                let mut stmt =
                    conn.prepare("SELECT network FROM sync_networks ORDER BY network")?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(stored, ["after", "before"]);

        // The writer still takes work, and health says all is well.
        store_network(&storage, "later", false)
            .await
            .await
            .unwrap()
            .unwrap();
        assert_eq!(healthz(&storage, dir.path()).await, ok());
    }

    #[tokio::test]
    async fn healthz_is_503_while_the_writer_is_stuck_and_ok_once_it_moves_again() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(&dir.path().join("server.sqlite3")).unwrap();
        let (release, stuck) = hold_writer(&storage).await;
        let started = Instant::now();
        assert_eq!(
            healthz(&storage, dir.path()).await,
            unavailable("the database did not answer in time")
        );
        let waited = started.elapsed();
        assert!(
            waited >= HEALTH_TIMEOUT && waited < HEALTH_TIMEOUT + Duration::from_secs(2),
            "{waited:?}"
        );
        release.send(()).unwrap();
        stuck.await.unwrap().unwrap();
        assert_eq!(healthz(&storage, dir.path()).await, ok());
    }

    /// The permission bits of the file or directory at `path`.
    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_database_its_journal_its_directory_and_its_backups_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        // Open to everyone, as a umask of 0 would leave what SQLite makes.
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let dir = root.path().join("data");
        let _lock = lock_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let database = dir.join(crate::app::SQLITE_FILE);
        let storage = SqliteStorage::open(&database).unwrap();
        store_network(&storage, "north", false)
            .await
            .await
            .unwrap()
            .unwrap();
        for name in ["", "-wal", "-shm"] {
            let mut path = database.as_os_str().to_owned();
            path.push(name);
            assert_eq!(mode(Path::new(&path)), 0o600, "{name}");
        }
        let out = root.path().join("nightly.sqlite3");
        backup(&database, &out).unwrap();
        assert_eq!(mode(&out), 0o600);

        // A database an older build left readable by others is made private when opened.
        drop(storage);
        std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _reopened = SqliteStorage::open(&database).unwrap();
        assert_eq!(mode(&database), 0o600);
    }

    #[test]
    fn a_group_the_database_rolls_back_stores_none_of_it_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("group.sqlite3")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x BLOB);")
            .unwrap();
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .unwrap();
        // Room for a small row, not a large one: the large one fails with
        // SQLITE_FULL, which rolls the whole transaction back.
        conn.execute_batch(&format!("PRAGMA max_page_count = {}", pages + 2))
            .unwrap();
        let (send, jobs) = mpsc::channel();
        let insert = |bytes: usize| -> Work {
            Box::new(move |c: &Connection| {
                c.execute("INSERT INTO t VALUES (?1)", [vec![7u8; bytes]])
                    .map(|_| Box::new(()) as Box<dyn Any + Send>)
                    .map_err(StorageError::from)
            })
        };
        let mut replies = Vec::new();
        for bytes in [10, 200_000, 10] {
            let (reply, answer) = tokio::sync::oneshot::channel();
            send.send(Job {
                work: insert(bytes),
                reply,
            })
            .unwrap();
            replies.push(answer);
        }
        drop(send);
        write_loop(&mut conn, &jobs);
        for answer in replies {
            assert!(answer.blocking_recv().unwrap().is_err());
        }
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(
            rows, 0,
            "every job was answered as failed, so none is stored"
        );
    }

    #[tokio::test]
    async fn a_write_that_finds_the_disk_full_is_answered_as_out_of_reach() {
        // The writer's file capped at its size: what SQLite sees when the disk
        // is full. SQLite rolls the group back; each write is answered with
        // what it met (503 to the caller), not a 500.
        let dir = tempfile::tempdir().unwrap();
        let storage = SqliteStorage::open(&dir.path().join("server.sqlite3")).unwrap();
        storage
            .write(|conn: &Connection| -> Result<(), StorageError> {
                let pages: i64 = conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
                conn.pragma_update(None, "max_page_count", pages)?;
                Ok(())
            })
            .await
            .unwrap();
        let error = storage
            .write(|conn: &Connection| -> Result<(), StorageError> {
                conn.execute(
                    "INSERT INTO sync_networks (network, last_seq) VALUES (?1, 0)",
                    ["x".repeat(64 * 1024)],
                )?;
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(error.is_unavailable(), "{error:?}");
        assert!(error.to_string().contains("full"), "{error}");
    }

    #[test]
    fn a_database_a_cut_short_restore_moved_aside_is_not_created_anew() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join(crate::app::SQLITE_FILE);
        drop(SqliteStorage::open(&live).unwrap());
        let aside = dir.path().join(format!(
            "{}.replaced-20261204T2300Z-1",
            crate::app::SQLITE_FILE
        ));
        std::fs::rename(&live, &aside).unwrap();
        let Err(refused) = SqliteStorage::open(&live) else {
            panic!("an empty database was made in the moved one's place");
        };
        assert!(
            refused.to_string().contains("move that file back"),
            "{refused}"
        );
        assert!(!live.exists());
        std::fs::rename(&aside, &live).unwrap();
        assert!(SqliteStorage::open(&live).is_ok());
    }
}
