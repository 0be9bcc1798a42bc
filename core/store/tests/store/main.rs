//! The store's integration tests, built as one binary. Each module is named
//! for the property it pins down; `support` holds the shared sample data.

#[path = "../support/sample.rs"]
mod sample;

mod outbox;
mod pull;
mod records;
mod round;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use doorstep_store::{MemoryKeyProvider, Store, StoreConfig};
use jiff::Timestamp;

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

    /// The database file and its companions, as bytes, for before/after checks.
    pub fn file_bytes(&self) -> Vec<(PathBuf, Option<Vec<u8>>)> {
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

/// A fixed morning, so records are reproducible apart from their ids.
pub fn morning() -> Timestamp {
    "2026-11-24T09:00:00Z".parse().expect("valid timestamp")
}
