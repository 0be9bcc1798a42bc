//! Opening, checking, re-keying and wiping the encrypted database file.
//!
//! [`Store::open`] refuses to run on a SQLite without SQLCipher, keys the
//! connection with the raw key from the [`KeyProvider`], reads the first page
//! at once to tell a wrong key from a damaged file, refuses a write-ahead log
//! whose damage SQLite would silently drop committed saves for (see the
//! `wal` module), or that lies beside an empty or missing database file
//! (which SQLite would delete), refuses a schema newer than this build, and
//! only then sets the durability pragmas and migrates.
//! Until every check has passed nothing is written, and the connection is
//! told not to checkpoint on close, so a refused file keeps every byte.
//!
//! The records, outbox, pull and round operations are `impl Store` blocks in
//! their own modules.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::{Result, StoreError};
use crate::key::{DatabaseKey, KeyProvider, KeySlot};
use crate::schema;

/// SQLCipher 4's page size: every intact file is a whole number of pages.
const PAGE_SIZE: u64 = 4096;

/// Where the store lives and how hard it flushes.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The database file. Its folder must exist or be creatable; SQLite puts
    /// its `-wal` and `-shm` files beside it.
    pub path: PathBuf,
    /// Ask Apple platforms for `F_FULLFSYNC` on every sync. Plain `fsync` on
    /// iOS and macOS only reaches the drive's cache, so a power cut can lose
    /// a commit the app was told was durable. On by default on Apple targets;
    /// SQLite ignores it elsewhere.
    pub apple_fullfsync: bool,
}

impl StoreConfig {
    /// The defaults for the platform this is built for.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            apple_fullfsync: cfg!(target_vendor = "apple"),
        }
    }
}

/// The device's encrypted store. One per signed-in clinician; hold it behind a
/// mutex when shared (reads take `&self`, writes `&mut self`).
pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
    /// Whether to ask for `F_FULLFSYNC`, kept for the connection a re-key opens afresh.
    apple_fullfsync: bool,
    /// Set when, after a re-key, no key known opened the file: the store then
    /// holds a connection that refuses everything, and must be opened again.
    lost: bool,
    keys: Arc<dyn KeyProvider>,
    /// The key the file is under now. A re-key whose new key never reached
    /// [`KeySlot::Current`] leaves it only in [`KeySlot::Next`]; kept here,
    /// the next re-key can finish that one before it reuses the slot.
    key: DatabaseKey,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// What a wipe did, so the shell can say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WipeReport {
    /// Unsynced changes that were discarded with the caller's confirmation.
    pub discarded_unsynced: u64,
}

/// Why a wipe did not complete.
#[derive(Debug)]
pub enum WipeError {
    /// No record was erased and the store is handed back open, its key still
    /// in the keystore (a second copy of it may be gone):
    /// [`StoreError::UnsyncedItems`] with the count to confirm, or the
    /// failure that stopped the count or the key's deletion.
    Refused {
        /// The store, still open.
        store: Box<Store>,
        /// Why.
        error: StoreError,
    },
    /// The key is destroyed, so the data can never be read again, but some
    /// files could not be removed. Call [`Store::wipe_files`] again later.
    FilesRemain(std::io::Error),
}

impl Store {
    /// Opens the store at `config.path`, creating it (and a new key in the
    /// provider) when there is no file yet. An empty or missing file whose
    /// write-ahead log holds data is no first launch: it is
    /// [`StoreError::Corrupt`], and the log is kept.
    ///
    /// Errors say what the shell should do: [`StoreError::WrongKey`],
    /// [`StoreError::Corrupt`], [`StoreError::KeyMissing`],
    /// [`StoreError::SchemaTooNew`], [`StoreError::DiskFull`],
    /// [`StoreError::Key`] (keystore locked). None of them changes the file,
    /// except that one met after the checks passed (a migration that fails,
    /// storage full) may follow the emptying of a log SQLite ignores, which
    /// held nothing SQLite would read.
    pub fn open(config: &StoreConfig, keys: Arc<dyn KeyProvider>) -> Result<Self> {
        let _opening = opening_lock(&config.path)?;
        Self::open_held(config, keys)
    }

    /// [`Store::open`] with the file's opening lock already held.
    fn open_held(config: &StoreConfig, keys: Arc<dyn KeyProvider>) -> Result<Self> {
        let before = Companions::find(&config.path);
        Self::open_checked(config, keys).inspect_err(|_| before.tidy(&config.path))
    }

    fn open_checked(config: &StoreConfig, keys: Arc<dyn KeyProvider>) -> Result<Self> {
        let path = config.path.clone();
        let existing = file_len(&path)? > 0;
        let current = keys.read_key(KeySlot::Current)?;
        // Next is read only where it is needed: an entry the keystore cannot
        // read must not stop a file that Current opens.
        let mut log = crate::wal::Passed::Read;
        let (conn, key) = if existing {
            log = crate::wal::check(&path)?;
            match current {
                Some(current) => match keyed(&path, &current, false) {
                    Ok(conn) => {
                        // A re-key that never reached the file: forget its key.
                        if !matches!(keys.read_key(KeySlot::Next), Ok(None)) {
                            keys.delete_key(KeySlot::Next)?;
                        }
                        (conn, current)
                    }
                    // A re-key reached the file but not the keystore. Until
                    // its log is folded in, the file holds pages under both
                    // keys, so the old key can look like damage, not only
                    // like a wrong key.
                    Err(e @ (StoreError::WrongKey | StoreError::Corrupt { .. })) => {
                        let Some(next) = keys.read_key(KeySlot::Next)? else {
                            return Err(e);
                        };
                        let conn = match keyed(&path, &next, false) {
                            Ok(conn) => conn,
                            Err(StoreError::WrongKey) => return Err(e),
                            // Damage under the key the file was being moved
                            // to, or a busy file, says more than a wrong key
                            // would, which the shell answers by discarding.
                            Err(other) => return Err(other),
                        };
                        promote(keys.as_ref(), &next)?;
                        (conn, next)
                    }
                    Err(e) => return Err(e),
                },
                None => match keys.read_key(KeySlot::Next)? {
                    Some(next) => {
                        let conn = keyed(&path, &next, false)?;
                        promote(keys.as_ref(), &next)?;
                        (conn, next)
                    }
                    None => return Err(StoreError::KeyMissing),
                },
            }
        } else {
            orphaned_log(&path, current.is_some(), keys.as_ref())?;
            let key = match current {
                Some(key) => key,
                None => {
                    let key = DatabaseKey::generate()?;
                    keys.write_key(KeySlot::Current, &key)?;
                    key
                }
            };
            if !matches!(keys.read_key(KeySlot::Next), Ok(None)) {
                keys.delete_key(KeySlot::Next)?;
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            (keyed(&path, &key, true)?, key)
        };

        let mut store = Store {
            conn,
            path,
            apple_fullfsync: config.apple_fullfsync,
            lost: false,
            keys,
            key,
        };
        store.prepare(config, log)?;
        Ok(store)
    }

    /// Runs the checks and settings that follow a successful key check.
    fn prepare(&mut self, config: &StoreConfig, log: crate::wal::Passed) -> Result<()> {
        Self::prepare_connection(&mut self.conn, config, log)
    }

    /// [`Store::prepare`] for the connection `conn`, whose log the check
    /// before it found as `log`.
    fn prepare_connection(
        conn: &mut Connection,
        config: &StoreConfig,
        log: crate::wal::Passed,
    ) -> Result<()> {
        schema::check_version(conn)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Migration(format!(
                "journal mode stayed {mode}; WAL is required"
            )));
        }
        // Another connection (a second store on the same file) waits its turn
        // instead of failing at once.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;",
        )?;
        let fullfsync = if config.apple_fullfsync { "ON" } else { "OFF" };
        conn.execute_batch(&format!(
            "PRAGMA fullfsync = {fullfsync}; PRAGMA checkpoint_fullfsync = {fullfsync};"
        ))?;
        if log == crate::wal::Passed::HeaderIgnored {
            restart_ignored_log(conn)?;
        }
        schema::migrate_to(conn, schema::LATEST)?;
        // Every check passed: normal checkpointing on close again.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)?;
        Ok(())
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's schema version (see [`crate::schema::LATEST`]).
    /// [`StoreError::MustReopen`] once the store has lost its file.
    pub fn schema_version(&self) -> Result<i64> {
        self.check_held()?;
        schema::version(&self.conn)
    }

    /// Refuses with [`StoreError::MustReopen`] once a re-key has left this
    /// store without its file. Called first by every read that would
    /// otherwise answer from the stand-in connection as if from the file
    /// (its empty database has no schema and passes every integrity check);
    /// the other calls fail on their own, finding none of the store's
    /// tables there.
    fn check_held(&self) -> Result<()> {
        if self.lost {
            return Err(StoreError::MustReopen);
        }
        Ok(())
    }

    /// Reads every page and checks its authentication code and the b-tree
    /// structure. Opening checks only the first page so that it stays fast;
    /// run this in the background at start-up or after a
    /// [`StoreError::Corrupt`] to find out how far the damage goes.
    /// [`StoreError::MustReopen`] once the store has lost its file.
    pub fn check_integrity(&self) -> Result<()> {
        self.check_held()?;
        let failures = pragma_rows(&self.conn, "PRAGMA cipher_integrity_check")?;
        if let Some(first) = failures.first() {
            return Err(StoreError::Corrupt {
                detail: format!("{} pages failed (first: {first})", failures.len()),
            });
        }
        let structure = pragma_rows(&self.conn, "PRAGMA integrity_check")?;
        if structure != ["ok"] {
            return Err(StoreError::Corrupt {
                detail: format!("{} structural problems", structure.len()),
            });
        }
        Ok(())
    }

    /// Re-encrypts the whole file under a fresh key and makes it the current
    /// one (after a suspected key exposure, or on a schedule).
    ///
    /// Safe against the app being killed at any point: the new key is kept in
    /// [`KeySlot::Next`] before the file changes, and [`Store::open`] finds
    /// whichever key the file ended up under. Safe to retry after an error:
    /// a retry first makes current the key the file is under, so it never
    /// overwrites the only copy of that key in [`KeySlot::Next`].
    ///
    /// Whatever SQLCipher answers, the store then works through a fresh
    /// connection keyed with the key that is found to open the file. SQLCipher
    /// takes up the new key for writing before it re-encrypts, and does not
    /// give it back when the re-key fails (another connection holds the
    /// database, storage runs out), nor read the commit's failure; saves made
    /// through that connection afterwards would be under a key the file is not.
    /// A re-key that did not happen is [`StoreError::RekeyNotMade`], and the
    /// key stays as it was. Should neither key open the file afterwards, the
    /// store refuses every later call until it is opened again, rather than
    /// write under a key nobody holds.
    ///
    /// Other stores open on the same file keep the old key, and read the
    /// re-keyed pages as damage: close them first, and open them again after.
    pub fn rekey(&mut self) -> Result<()> {
        self.check_held()?;
        // An open of the same file meanwhile would see the keys half-way.
        let _opening = opening_lock(&self.path)?;
        // An earlier re-key that moved the file but could not make its key
        // current (the keystore locked at that moment) left that key only in
        // Next, which this one is about to overwrite: make it current first.
        if self.keys.read_key(KeySlot::Current)?.as_ref() != Some(&self.key) {
            promote(self.keys.as_ref(), &self.key)?;
        }
        let old = self.key.clone();
        let new = DatabaseKey::generate()?;
        self.keys.write_key(KeySlot::Next, &new)?;
        let statement = zeroize::Zeroizing::new(format!(
            "PRAGMA rekey = \"{}\";",
            new.sqlcipher_literal().as_str()
        ));
        let rekeyed = self.conn.execute_batch(&statement).is_ok();
        if rekeyed {
            // The file is under the new key from here, whatever fails next:
            // a retry must make it current before it reuses Next.
            self.key = new.clone();
            // Move what it can into the main file now, so little stays under
            // the old key; pages a reader still holds move when it lets go,
            // and one that fails now (storage full) is made at the next: the
            // log keeps the pages meanwhile, and the reconnect reads them.
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        let order = if rekeyed { [&new, &old] } else { [&old, &new] };
        // Neither key opening the file leaves both slots as they are, for the
        // next open to find which it is under.
        let key = self.reconnect(order)?;
        self.key = key.clone();
        if key == new {
            return promote(self.keys.as_ref(), &new);
        }
        // The file stayed under the key it had: the new one unlocks nothing.
        self.keys.delete_key(KeySlot::Next)?;
        Err(StoreError::RekeyNotMade)
    }

    /// Replaces the connection with a fresh one under the first of `keys`
    /// that opens the file, and returns that key. When neither does, the
    /// store is left with a connection that refuses every statement, and the
    /// answer is [`StoreError::MustReopen`].
    fn reconnect(&mut self, keys: [&DatabaseKey; 2]) -> Result<DatabaseKey> {
        let config = StoreConfig {
            path: self.path.clone(),
            apple_fullfsync: self.apple_fullfsync,
        };
        let fresh = |key: &DatabaseKey| -> Result<Connection> {
            let mut conn = keyed(&self.path, key, false)?;
            Self::prepare_connection(&mut conn, &config, crate::wal::Passed::Read)?;
            Ok(conn)
        };
        let (conn, key) = match fresh(keys[0]) {
            Ok(conn) => (conn, keys[0].clone()),
            Err(_) => match fresh(keys[1]) {
                Ok(conn) => (conn, keys[1].clone()),
                Err(_) => {
                    self.lost = true;
                    self.conn = refusing_connection()?;
                    return Err(StoreError::MustReopen);
                }
            },
        };
        self.conn = conn;
        Ok(key)
    }

    /// Changes pending, sent without an answer, or rejected: everything the
    /// endpoint does not hold. These are what a wipe would lose.
    pub fn unsynced_count(&self) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sent', 'rejected')",
            [],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Erases this device's store: on sign-out, when the endpoint revokes the
    /// device, or at the user's request. The key is destroyed first, so even a
    /// file that fails to delete can never be read again; then the database
    /// and its `-wal` and `-shm` files are removed. Once no keystore slot
    /// holds the key the file is under, the wipe goes on whatever fails after
    /// (the other slot's key does not open the file), so
    /// [`WipeError::Refused`] always means the store still opens with all it
    /// held.
    ///
    /// Refused with [`StoreError::UnsyncedItems`] unless
    /// `confirmed_discard` equals the number of unsynced changes exactly
    /// (0 when all is synced): the shell shows the count, the user confirms
    /// it, and a change saved in between makes the numbers differ. The count
    /// and the key's destruction happen under the file's write lock, and no
    /// store opens the file meanwhile, so another store on the same file
    /// saves either before the count or not until the key is gone. Close any
    /// such store first: what it saves after that goes with the file.
    pub fn wipe(self, confirmed_discard: u64) -> std::result::Result<WipeReport, WipeError> {
        let refuse = |store: Store, error| {
            // Ends the write lock taken below, if it was (nothing was written).
            let _ = store.conn.execute_batch("ROLLBACK");
            WipeError::Refused {
                store: Box::new(store),
                error,
            }
        };
        let _opening = match opening_lock(&self.path) {
            Ok(lock) => lock,
            Err(error) => return Err(refuse(self, error)),
        };
        if let Err(error) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            return Err(refuse(self, error.into()));
        }
        let count = match self.unsynced_count() {
            Ok(count) => count,
            Err(error) => return Err(refuse(self, error)),
        };
        if count != confirmed_discard {
            return Err(refuse(self, StoreError::UnsyncedItems { count }));
        }
        // Every slot that holds the file's key goes first: Next, where a
        // re-key whose key could not be made current left it, then Current
        // (both, where making a key current could not clear Next). While one
        // of them still holds it the store opens as before, so a failure
        // refuses the wipe.
        // A slot that cannot be read may hold it too: it is cleared before
        // going on, as one that does.
        let mut holding = Vec::new();
        let mut others = Vec::new();
        for slot in [KeySlot::Next, KeySlot::Current] {
            match self.keys.read_key(slot) {
                Ok(Some(key)) if key != self.key => others.push(slot),
                Ok(None) => others.push(slot),
                Ok(Some(_)) | Err(_) => holding.push(slot),
            }
        }
        for slot in holding {
            if let Err(e) = self.keys.delete_key(slot) {
                return Err(refuse(self, e.into()));
            }
        }
        // Past the point of no return: the wipe goes on even if this fails,
        // since no other slot's key opens the file.
        for slot in others {
            let _ = self.keys.delete_key(slot);
        }
        let Store { conn, path, .. } = self;
        drop(conn);
        Self::wipe_files(&path).map_err(WipeError::FilesRemain)?;
        Ok(WipeReport {
            discarded_unsynced: count,
        })
    }

    /// Removes the database file and its `-wal`, `-shm` and `-journal`
    /// companions. Only for finishing a wipe whose key is already destroyed;
    /// missing files are not an error. The empty `-open.lock` stays: it holds
    /// no data, and removing a lock file another open may be waiting on would
    /// let that open and a later one through together.
    pub fn wipe_files(path: &Path) -> std::io::Result<()> {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            match std::fs::remove_file(companion(path, suffix)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Gets a device whose store cannot be opened working again, at the cost
    /// of the file's contents: for [`StoreError::WrongKey`],
    /// [`StoreError::Corrupt`] and [`StoreError::KeyMissing`], after the
    /// user has been told that unsynced records in it are lost (support may
    /// want the file first: copy it before calling).
    ///
    /// Returns `Ok(false)` and changes nothing when the store opens normally
    /// (use [`Store::wipe`], which counts what would be lost). Any other
    /// failure (keystore locked, schema newer than this build, disk full) is
    /// returned and nothing is deleted: those have better fixes.
    pub fn discard_unreadable(config: &StoreConfig, keys: Arc<dyn KeyProvider>) -> Result<bool> {
        // Held until the files are gone, so no open creates the store anew
        // in between and loses its file to this discard.
        let _opening = opening_lock(&config.path)?;
        match Store::open_held(config, Arc::clone(&keys)) {
            Ok(_) => Ok(false),
            Err(StoreError::WrongKey | StoreError::Corrupt { .. } | StoreError::KeyMissing) => {
                keys.delete_key(KeySlot::Current)?;
                keys.delete_key(KeySlot::Next)?;
                Self::wipe_files(&config.path)?;
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}

/// Empties a log whose header SQLite ignored (see
/// [`crate::wal::Passed::HeaderIgnored`]), so that the frames written next,
/// under the salts of that header, have no frames of an earlier generation
/// behind them. Run once the key is verified and the schema accepted, and
/// before anything is written; SQLite reads nothing of the log, so nothing
/// is lost with it.
///
/// The checkpoint waits (the connection's busy timeout) for a writer on
/// another connection, and then copies that writer's frames too before it
/// empties the log. Still busy after the wait, the open goes on and writes
/// as usual: the other connection is writing under those salts whatever
/// this one does, so refusing this store's writes would stop the clinician
/// saving and protect nothing; what remains is a refusal at a later open
/// that loses nothing, and only if the app is killed before any checkpoint
/// of that log. Any other failure fails the open.
fn restart_ignored_log(conn: &Connection) -> Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

/// Wraps the outcome of keying a connection at `path`.
fn keyed(path: &Path, key: &DatabaseKey, create: bool) -> Result<Connection> {
    sqlcipher_set_up();
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    // Until the checks pass, closing must not fold the WAL into the file.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    let cipher: Option<String> = conn
        .query_row("PRAGMA cipher_version", [], |row| row.get(0))
        .ok();
    if cipher.is_none_or(|v| v.is_empty()) {
        return Err(StoreError::NotEncrypted);
    }
    // SQLCipher logs every failed page to stderr or logcat; our errors say
    // the same without filling the device log.
    conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
    let statement = zeroize::Zeroizing::new(format!(
        "PRAGMA key = \"{}\";",
        key.sqlcipher_literal().as_str()
    ));
    conn.execute_batch(&statement)?;
    match conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(())) {
        Ok(()) => Ok(conn),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            Err(diagnose(&conn, path))
        }
        Err(e) => Err(e.into()),
    }
}

/// Waits until SQLCipher has finished setting itself up for this process.
///
/// SQLite marks itself initialised before it runs SQLCipher's own set-up, so
/// a thread that opens a connection while another thread makes the process's
/// first one can key it before SQLCipher is ready and get a bare `SQLITE_ERROR`
/// from `PRAGMA key` (seen once in CI, when two tests opened stores at the same
/// moment; an app opening its store from two threads at launch would see the
/// same). One throwaway in-memory connection, made under a `Once` that every
/// other open waits on, runs the whole set-up before any file is keyed. Its
/// own failure is not reported here: whatever stopped it stops the real open
/// that follows, which reports it.
fn sqlcipher_set_up() {
    static SET_UP: Once = Once::new();
    SET_UP.call_once(|| drop(Connection::open_in_memory()));
}

/// Tells a wrong key from a damaged file after the first page failed: with a
/// wrong key every page fails its authentication code; with damage, some
/// pass.
fn diagnose(conn: &Connection, path: &Path) -> StoreError {
    let len = match file_len(path) {
        Ok(len) => len,
        Err(e) => return e,
    };
    if len % PAGE_SIZE != 0 {
        return StoreError::Corrupt {
            detail: format!("the file is {len} bytes, not a whole number of pages"),
        };
    }
    let pages = len / PAGE_SIZE;
    match pragma_rows(conn, "PRAGMA cipher_integrity_check") {
        Ok(failures) if failures.len() as u64 >= pages => StoreError::WrongKey,
        Ok(failures) => StoreError::Corrupt {
            detail: format!("{} of {pages} pages failed their check", failures.len()),
        },
        Err(e) => e,
    }
}

/// A connection that refuses every statement on the store's tables: an empty
/// in-memory database that takes no writes. What a store holds when no key it
/// knows opens its file any more, so that nothing is saved under a key nobody
/// has and every call says so.
fn refusing_connection() -> Result<Connection> {
    let conn = Connection::open_in_memory()?;
    conn.execute_batch("PRAGMA query_only = ON;")?;
    Ok(conn)
}

fn pragma_rows(conn: &Connection, pragma: &str) -> Result<Vec<String>> {
    let mut statement = conn.prepare(pragma)?;
    let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Makes `key` the current key after the file was found (or made) under it.
fn promote(keys: &dyn KeyProvider, key: &DatabaseKey) -> Result<()> {
    keys.write_key(KeySlot::Current, key)?;
    keys.delete_key(KeySlot::Next)?;
    Ok(())
}

/// Refuses to make a new store where the database file is empty or missing
/// but its write-ahead log holds data, while the keystore holds a key (in
/// `Current`, given as `has_current`, or in `Next`) that may read that log.
///
/// SQLite deletes a log it finds beside a database of no pages, and a new
/// store would be made over it without a word: the saves not yet folded
/// into the file (a day's, before a checkpoint) would be gone. SQLite never
/// leaves a log beside an empty file itself (a new store's first page is
/// written before its log), so this is damage, reported as
/// [`StoreError::Corrupt`] with the log left untouched for support to
/// recover from. With no key in the keystore nobody can read the log (a
/// wipe destroys the key first, and this is what one cut short before it
/// removed the log leaves), so the store is made anew and SQLite drops the
/// log. Only `Next` is read here, and only when `Current` is empty and the
/// log holds data.
fn orphaned_log(path: &Path, has_current: bool, keys: &dyn KeyProvider) -> Result<()> {
    let log = file_len(&companion(path, "-wal"))?;
    if log > 0 && (has_current || keys.read_key(KeySlot::Next)?.is_some()) {
        return Err(StoreError::Corrupt {
            detail: format!(
                "it is empty or missing while its write-ahead log holds {log} bytes of \
                 data; nothing was changed"
            ),
        });
    }
    Ok(())
}

fn file_len(path: &Path) -> Result<u64> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(meta.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Which of the `-wal` and `-shm` companions existed before an open. A
/// refused open reads a WAL-mode file far enough for SQLite to create them;
/// they hold nothing then and are removed again so a refused file is left
/// exactly as it was found.
struct Companions {
    wal: bool,
    shm: bool,
}

impl Companions {
    fn find(path: &Path) -> Self {
        Self {
            wal: companion(path, "-wal").exists(),
            shm: companion(path, "-shm").exists(),
        }
    }

    /// Removes companions the failed open created, if the log is empty. Only
    /// called after the open's connection has closed.
    fn tidy(&self, path: &Path) {
        let wal = companion(path, "-wal");
        let created_empty_wal =
            !self.wal && std::fs::metadata(&wal).is_ok_and(|meta| meta.len() == 0);
        if created_empty_wal && std::fs::remove_file(&wal).is_ok() && !self.shm {
            // Best effort: a leftover index file is rebuilt by the next open.
            let _ = std::fs::remove_file(companion(path, "-shm"));
        }
    }
}

/// Begins a transaction that writes. Immediate: it takes the file's write
/// lock at its first statement, so a second store on the same file that is
/// writing is waited for (the busy timeout). A deferred one would read first
/// and, finding at its first write that the other had written since, fail
/// with `Busy` at once: SQLite does not wait there, since waiting could not
/// help.
pub(crate) fn immediate(conn: &mut Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

/// Opens of one store file held at this moment in this process, by path.
static OPENING: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
/// Signalled whenever an open in this process lets go of its path.
static OPENING_DONE: std::sync::Condvar = std::sync::Condvar::new();

/// One open's hold on its store file: the path in [`OPENING`], and where the
/// platform has file locks, the lock on `-open.lock`. Both go when it drops.
struct OpeningLock {
    path: PathBuf,
    _file: Option<std::fs::File>,
}

impl Drop for OpeningLock {
    fn drop(&mut self) {
        let mut held = OPENING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.retain(|p| p != &self.path);
        OPENING_DONE.notify_all();
    }
}

/// Takes the lock that lets one open of the store file at `path` at a time
/// through. Without it, two opens of a store not yet created (first launch,
/// or the first sign-in after a wipe) each find the keystore empty, each
/// make a key, and the keystore keeps one while the file is encrypted under
/// the other: the file is then unreadable at the next launch.
///
/// Threads of this process take turns by path. Processes take turns by a
/// file lock on an empty `-open.lock` beside the store (never the database
/// file, whose locks are SQLite's), where the platform's standard library
/// has file locks: Android's does not before Rust 1.98, and there an app's
/// stores are opened by its one process anyway.
fn opening_lock(path: &Path) -> Result<OpeningLock> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut held = OPENING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    while held.iter().any(|p| p == path) {
        held = OPENING_DONE
            .wait(held)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
    held.push(path.to_path_buf());
    drop(held);
    // From here the path is ours: dropping `lock` gives it back, on every
    // way out below.
    let mut lock = OpeningLock {
        path: path.to_path_buf(),
        _file: None,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(companion(path, "-open.lock"))?;
    match file.lock() {
        Ok(()) => lock._file = Some(file),
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {}
        Err(e) => return Err(e.into()),
    }
    Ok(lock)
}

fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::MemoryKeyProvider;
    use doorstep_domain::record::VisitContent;

    use crate::sample;

    fn pragma(store: &Store, name: &str) -> String {
        store
            .conn
            .query_row(&format!("PRAGMA {name}"), [], |row| {
                row.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .unwrap()
    }

    #[test]
    fn the_store_is_encrypted_durable_and_flushes_fully_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path().join("durable.db"));
        config.apple_fullfsync = true;
        let store = Store::open(&config, Arc::new(MemoryKeyProvider::new())).unwrap();
        assert!(pragma(&store, "cipher_version").starts_with('4'));
        assert_eq!(pragma(&store, "journal_mode"), "wal");
        assert_eq!(pragma(&store, "synchronous"), "2", "2 is FULL");
        assert_eq!(pragma(&store, "fullfsync"), "1");
        assert_eq!(pragma(&store, "checkpoint_fullfsync"), "1");
        assert_eq!(pragma(&store, "foreign_keys"), "1");
    }

    #[test]
    fn a_store_can_move_between_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<Store>();
    }

    #[test]
    fn a_full_disk_saves_nothing_partial_and_keeps_what_was_saved() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig::new(dir.path().join("full.db"));
        let mut store = Store::open(&config, Arc::new(MemoryKeyProvider::new())).unwrap();
        let arrived = "2026-11-24T09:00:00Z".parse().unwrap();
        let kept = sample::new_visit(0, arrived);
        store.save(&kept).unwrap();
        // Cap the file at its current size: the next pages cannot be had,
        // which is what SQLite sees when the device's storage is full.
        let pages: i64 = store
            .conn
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .unwrap();
        store
            .conn
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
        let mut refused = None;
        for n in 1..200 {
            let visit = sample::new_visit(n, arrived);
            match store.save(&visit) {
                Ok(_) => {}
                Err(e) => {
                    refused = Some((visit, e));
                    break;
                }
            }
        }
        let (visit, error) = refused.expect("the capped file fills up");
        assert!(matches!(error, StoreError::DiskFull), "{error:?}");
        assert!(
            store
                .current::<VisitContent>(visit.meta.record_id)
                .unwrap()
                .is_none()
        );
        let counts = store.outbox_counts().unwrap();
        let saved = store.record_ids::<VisitContent>().unwrap().len() as u64;
        assert_eq!(counts.pending, saved, "no version without its outbox item");
        assert_eq!(
            store
                .current::<VisitContent>(kept.meta.record_id)
                .unwrap()
                .unwrap()
                .version,
            kept
        );
        // Space freed: the same save now goes through.
        store
            .conn
            .pragma_update(None, "max_page_count", 1_000_000)
            .unwrap();
        store.save(&visit).unwrap();
    }

    #[test]
    fn a_store_that_lost_its_file_says_so_instead_of_answering_from_its_stand_in() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig::new(dir.path().join("lost.db"));
        let mut store = Store::open(&config, Arc::new(MemoryKeyProvider::new())).unwrap();
        assert_eq!(store.schema_version().unwrap(), schema::LATEST);
        // What a re-key leaves when neither the old key nor the new one
        // opens the file afterwards.
        let strangers = [
            DatabaseKey::generate().unwrap(),
            DatabaseKey::generate().unwrap(),
        ];
        assert!(matches!(
            store.reconnect([&strangers[0], &strangers[1]]),
            Err(StoreError::MustReopen)
        ));
        assert!(matches!(
            store.schema_version(),
            Err(StoreError::MustReopen)
        ));
        assert!(matches!(
            store.check_integrity(),
            Err(StoreError::MustReopen)
        ));
        assert!(matches!(store.rekey(), Err(StoreError::MustReopen)));
    }
}
