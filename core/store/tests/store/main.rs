//! The store's integration tests, built as one binary. Each module is named
//! for the property it pins down; `support` holds the shared sample data.

#[path = "../support/sample.rs"]
mod sample;

mod correction;
mod corrupt;
mod keys;
mod kill;
mod migrate;
mod outbox;
mod plaintext;
mod pull;
mod reconcile;
mod records;
mod round;
mod unsynced;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use doorstep_store::{KeyProvider, KeySlot, MemoryKeyProvider, Store, StoreConfig};
use jiff::Timestamp;

/// Asserts that each of `visits` is the current version of its record: the
/// check every durability test ends with.
pub fn assert_all_current(store: &Store, visits: &[doorstep_domain::record::VisitRecord]) {
    for v in visits {
        let current = store
            .current::<doorstep_domain::record::VisitContent>(v.meta.record_id)
            .expect("the store reads")
            .expect("the record is there");
        assert_eq!(&current.version, v);
    }
}

/// A store in a fresh temporary folder, with its config and keys.
pub struct Fixture {
    /// Removed, with everything in it, when the fixture drops.
    pub dir: tempfile::TempDir,
    /// Points into `dir`.
    pub config: StoreConfig,
    /// Stands in for the platform keystore.
    pub keys: Arc<MemoryKeyProvider>,
}

impl Default for Fixture {
    /// A fixture with no file and no key yet.
    fn default() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let config = StoreConfig::new(dir.path().join("doorstep.db"));
        Self {
            dir,
            config,
            keys: Arc::new(MemoryKeyProvider::new()),
        }
    }
}

impl Fixture {
    /// Opens (or creates) the store with the fixture's keys.
    pub fn open(&self) -> Result<Store, doorstep_store::StoreError> {
        Store::open(&self.config, self.keys.clone())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// The database file and its companions as (name, length, FNV-1a hash),
    /// for checking that an operation left every byte as it was.
    pub fn file_bytes(&self) -> Vec<(PathBuf, Option<(usize, u64)>)> {
        self.files()
            .into_iter()
            .map(|(path, bytes)| {
                let digest = bytes.map(|b| {
                    let hash = b.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, byte| {
                        (h ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
                    });
                    (b.len(), hash)
                });
                (path, digest)
            })
            .collect()
    }

    /// The database file and its companions with their contents, if present.
    pub fn files(&self) -> Vec<(PathBuf, Option<Vec<u8>>)> {
        ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| {
                let mut name = self.path().as_os_str().to_owned();
                name.push(suffix);
                let path = PathBuf::from(name);
                let bytes = std::fs::read(&path).ok();
                (path, bytes)
            })
            .collect()
    }
}

/// A push limit of at most `items` items and no byte budget, for tests about
/// order and state rather than size.
pub fn up_to(items: usize) -> doorstep_store::PushLimit {
    doorstep_store::PushLimit {
        items,
        bytes: usize::MAX,
        overhead_per_item: 0,
    }
}

/// What the next push would carry (ten items at most), by change id.
pub fn next_push(store: &doorstep_store::Store) -> Vec<doorstep_store::ChangeId> {
    store
        .push_batch(up_to(10))
        .unwrap()
        .iter()
        .map(|i| i.change_id)
        .collect()
}

/// A fixed morning, so records are reproducible apart from their ids.
pub fn morning() -> Timestamp {
    "2026-11-24T09:00:00Z".parse().expect("valid timestamp")
}

/// A plain rusqlite connection to the fixture's file, keyed the way the store
/// keys it (raw key plus the store's fixed salt): for tests that must reach
/// below the API, such as building an old schema or a newer one.
pub fn raw_connection(f: &Fixture) -> rusqlite::Connection {
    let key = f.keys.read_key(KeySlot::Current).unwrap().expect("a key");
    let conn = rusqlite::Connection::open(f.path()).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", key_hex(&key)))
        .unwrap();
    conn
}

/// `key` as SQLCipher's raw-key literal takes it, with the store's fixed salt.
pub fn key_hex(key: &doorstep_store::DatabaseKey) -> String {
    key.as_bytes()
        .iter()
        .chain(b"doorstep-store-1")
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `bytes` over the file at `offset`, flipping each byte's bits.
pub fn flip_bytes(path: &Path, offset: usize, len: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    for b in &mut bytes[offset..offset + len] {
        *b ^= 0xff;
    }
    std::fs::write(path, bytes).unwrap();
}
