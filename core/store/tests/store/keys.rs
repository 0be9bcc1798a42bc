//! Keys: a wrong key is told apart and changes nothing; re-keying works and
//! survives being cut off at either end.

use crate::assert_all_current;
use std::sync::Arc;

use doorstep_domain::record::VisitContent;
use doorstep_store::{DatabaseKey, KeyProvider, KeySlot, MemoryKeyProvider, Store, StoreError};

use crate::{Fixture, morning, sample};

fn store_with_visits(f: &Fixture, n: u32) -> Vec<doorstep_domain::record::VisitRecord> {
    let mut store = f.open().unwrap();
    let visits: Vec<_> = (0..n).map(|i| sample::new_visit(i, morning())).collect();
    for v in &visits {
        store.save(v).unwrap();
    }
    visits
}

#[test]
fn wrong_key_is_reported_as_such_and_leaves_every_byte() {
    let f = Fixture::default();
    let visits = store_with_visits(&f, 20);
    let before = f.file_bytes();
    let stranger = Arc::new(MemoryKeyProvider::with_key(
        DatabaseKey::generate().unwrap(),
    ));
    let err = Store::open(&f.config, stranger).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey), "{err:?}");
    assert_eq!(f.file_bytes(), before);
    let store = f.open().unwrap();
    assert!(
        store
            .current::<VisitContent>(visits[0].meta.record_id)
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_file_whose_key_is_gone_is_key_missing_not_a_new_store() {
    let f = Fixture::default();
    store_with_visits(&f, 1);
    let before = f.file_bytes();
    let empty = Arc::new(MemoryKeyProvider::new());
    assert!(matches!(
        Store::open(&f.config, empty.clone()),
        Err(StoreError::KeyMissing)
    ));
    assert_eq!(
        empty.read_key(KeySlot::Current).unwrap(),
        None,
        "no key was made up"
    );
    assert_eq!(f.file_bytes(), before);
}

#[test]
fn rekey_moves_the_file_to_a_new_key_and_the_old_one_stops_working() {
    let f = Fixture::default();
    let visits = store_with_visits(&f, 5);
    let old = f.keys.read_key(KeySlot::Current).unwrap().unwrap();
    f.open().unwrap().rekey().unwrap();
    let new = f.keys.read_key(KeySlot::Current).unwrap().unwrap();
    assert_ne!(old, new);
    assert_eq!(f.keys.read_key(KeySlot::Next).unwrap(), None);
    let with_old = Arc::new(MemoryKeyProvider::with_key(old));
    assert!(matches!(
        Store::open(&f.config, with_old),
        Err(StoreError::WrongKey)
    ));
    let store = f.open().unwrap();
    assert_all_current(&store, &visits);
    assert_eq!(store.outbox_counts().unwrap().pending, 5);
}

#[test]
fn a_rekey_cut_off_before_the_file_changed_keeps_the_current_key() {
    let f = Fixture::default();
    let visits = store_with_visits(&f, 2);
    let current = f.keys.read_key(KeySlot::Current).unwrap().unwrap();
    f.keys
        .write_key(KeySlot::Next, &DatabaseKey::generate().unwrap())
        .unwrap();
    let store = f.open().unwrap();
    assert!(
        store
            .current::<VisitContent>(visits[1].meta.record_id)
            .unwrap()
            .is_some()
    );
    assert_eq!(f.keys.read_key(KeySlot::Current).unwrap(), Some(current));
    assert_eq!(
        f.keys.read_key(KeySlot::Next).unwrap(),
        None,
        "the unused key is forgotten"
    );
}

#[test]
fn a_rekey_cut_off_after_the_file_changed_finishes_on_the_next_open() {
    let f = Fixture::default();
    let visits = store_with_visits(&f, 2);
    let old = f.keys.read_key(KeySlot::Current).unwrap().unwrap();
    f.open().unwrap().rekey().unwrap();
    let new = f.keys.read_key(KeySlot::Current).unwrap().unwrap();
    // The keystore as it was when the app died: old key current, new key next.
    let keys = Arc::new(MemoryKeyProvider::with_key(old));
    keys.write_key(KeySlot::Next, &new).unwrap();
    let store = Store::open(&f.config, keys.clone()).unwrap();
    assert!(
        store
            .current::<VisitContent>(visits[0].meta.record_id)
            .unwrap()
            .is_some()
    );
    assert_eq!(keys.read_key(KeySlot::Current).unwrap(), Some(new));
    assert_eq!(keys.read_key(KeySlot::Next).unwrap(), None);
}

#[test]
fn a_rekey_cut_off_before_its_log_was_folded_in_finishes_on_the_next_open() {
    let f = Fixture::default();
    let visits = store_with_visits(&f, 30);
    let old = f.keys.read_key(KeySlot::Current).unwrap().unwrap();
    let new = DatabaseKey::generate().unwrap();
    f.keys.write_key(KeySlot::Next, &new).unwrap();
    {
        // The re-key commits to the write-ahead log; the app dies before the
        // log is folded into the file and before the keystore is updated.
        let conn = crate::raw_connection(&f);
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .unwrap();
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .unwrap();
        conn.execute_batch(&format!("PRAGMA rekey = \"x'{}'\";", crate::key_hex(&new)))
            .unwrap();
    }
    assert!(
        f.file_bytes()[1].1.is_some_and(|(len, _)| len > 0),
        "the log holds the re-keyed pages"
    );
    assert_eq!(f.keys.read_key(KeySlot::Current).unwrap(), Some(old));
    let store = f.open().unwrap();
    assert_all_current(&store, &visits);
    assert_eq!(f.keys.read_key(KeySlot::Current).unwrap(), Some(new));
    assert_eq!(f.keys.read_key(KeySlot::Next).unwrap(), None);
}

/// A keystore that is locked (device not yet unlocked since boot).
struct LockedKeystore;

impl KeyProvider for LockedKeystore {
    fn read_key(&self, _: KeySlot) -> Result<Option<DatabaseKey>, doorstep_store::KeyError> {
        Err(doorstep_store::KeyError::Unavailable(
            "device locked".into(),
        ))
    }
    fn write_key(&self, _: KeySlot, _: &DatabaseKey) -> Result<(), doorstep_store::KeyError> {
        Err(doorstep_store::KeyError::Unavailable(
            "device locked".into(),
        ))
    }
    fn delete_key(&self, _: KeySlot) -> Result<(), doorstep_store::KeyError> {
        Err(doorstep_store::KeyError::Unavailable(
            "device locked".into(),
        ))
    }
}

#[test]
fn a_locked_keystore_is_reported_and_nothing_is_created_or_changed() {
    let f = Fixture::default();
    assert!(matches!(
        Store::open(&f.config, Arc::new(LockedKeystore)),
        Err(StoreError::Key(doorstep_store::KeyError::Unavailable(_)))
    ));
    assert!(
        f.file_bytes().iter().all(|(_, bytes)| bytes.is_none()),
        "no file was made"
    );
    store_with_visits(&f, 1);
    let before = f.file_bytes();
    assert!(matches!(
        Store::open(&f.config, Arc::new(LockedKeystore)),
        Err(StoreError::Key(_))
    ));
    assert_eq!(f.file_bytes(), before);
}

/// A keystore that refuses to write the current key while `locked` is set,
/// as one does when the device locks in the middle of a re-key.
#[derive(Default)]
struct LocksMidway {
    inner: MemoryKeyProvider,
    locked: std::sync::atomic::AtomicBool,
}

impl KeyProvider for LocksMidway {
    fn read_key(&self, slot: KeySlot) -> Result<Option<DatabaseKey>, doorstep_store::KeyError> {
        self.inner.read_key(slot)
    }
    fn write_key(&self, slot: KeySlot, key: &DatabaseKey) -> Result<(), doorstep_store::KeyError> {
        if slot == KeySlot::Current && self.locked.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(doorstep_store::KeyError::Unavailable(
                "device locked".into(),
            ));
        }
        self.inner.write_key(slot, key)
    }
    fn delete_key(&self, slot: KeySlot) -> Result<(), doorstep_store::KeyError> {
        self.inner.delete_key(slot)
    }
}

#[test]
fn a_rekey_retried_after_its_key_failed_to_become_current_keeps_the_file_readable() {
    use std::sync::atomic::Ordering;
    let f = Fixture::default();
    let keys = Arc::new(LocksMidway::default());
    let mut store = Store::open(&f.config, keys.clone()).unwrap();
    let visits: Vec<_> = (0..5).map(|i| sample::new_visit(i, morning())).collect();
    for v in &visits {
        store.save(v).unwrap();
    }
    let old = keys.read_key(KeySlot::Current).unwrap().unwrap();
    keys.locked.store(true, Ordering::SeqCst);
    assert!(matches!(store.rekey(), Err(StoreError::Key(_))));
    keys.locked.store(false, Ordering::SeqCst);
    let first = keys.read_key(KeySlot::Next).unwrap().unwrap();
    assert_eq!(keys.read_key(KeySlot::Current).unwrap(), Some(old));

    // The retry fails too, after it has claimed the Next slot: another
    // connection holds the write lock, so the file cannot be re-keyed.
    let other = rusqlite::Connection::open(f.path()).unwrap();
    other
        .execute_batch(&format!(
            "PRAGMA key = \"x'{}'\"; BEGIN IMMEDIATE;",
            crate::key_hex(&first)
        ))
        .unwrap();
    store.rekey().unwrap_err();
    other.execute_batch("ROLLBACK;").unwrap();
    drop(other);
    assert_eq!(
        keys.read_key(KeySlot::Current).unwrap(),
        Some(first),
        "the key the file is under became current before Next was reused"
    );
    drop(store);

    let store = Store::open(&f.config, keys.clone()).unwrap();
    assert_all_current(&store, &visits);
    assert_eq!(store.outbox_counts().unwrap().pending, 5);
}

/// A keystore that holds the first two reads of an empty current slot until
/// both have come (or two seconds pass), so two opens race as they would on
/// a phone's first launch.
struct Rendezvous {
    inner: MemoryKeyProvider,
    empty_reads: std::sync::Mutex<usize>,
    arrived: std::sync::Condvar,
}

impl KeyProvider for Rendezvous {
    fn read_key(&self, slot: KeySlot) -> Result<Option<DatabaseKey>, doorstep_store::KeyError> {
        let key = self.inner.read_key(slot)?;
        if slot == KeySlot::Current && key.is_none() {
            let mut reads = self.empty_reads.lock().unwrap();
            *reads += 1;
            self.arrived.notify_all();
            let _ = self
                .arrived
                .wait_timeout_while(reads, std::time::Duration::from_secs(2), |n| *n < 2)
                .unwrap();
        }
        Ok(key)
    }

    fn write_key(&self, slot: KeySlot, key: &DatabaseKey) -> Result<(), doorstep_store::KeyError> {
        self.inner.write_key(slot, key)
    }

    fn delete_key(&self, slot: KeySlot) -> Result<(), doorstep_store::KeyError> {
        self.inner.delete_key(slot)
    }
}

#[test]
fn two_opens_of_a_new_store_at_once_agree_on_one_key() {
    let f = Fixture::default();
    let keys = Arc::new(Rendezvous {
        inner: MemoryKeyProvider::new(),
        empty_reads: std::sync::Mutex::new(0),
        arrived: std::sync::Condvar::new(),
    });
    let opens: Vec<_> = (0..2)
        .map(|_| {
            let (config, keys) = (f.config.clone(), Arc::clone(&keys));
            std::thread::spawn(move || Store::open(&config, keys).map(drop))
        })
        .collect();
    for open in opens {
        open.join().unwrap().unwrap();
    }
    // The key the keystore kept opens the file, at the next launch too.
    let mut store = Store::open(&f.config, Arc::clone(&keys) as Arc<dyn KeyProvider>).unwrap();
    store.save(&sample::new_visit(1, morning())).unwrap();
    drop(store);
    let store = Store::open(&f.config, keys).unwrap();
    assert_eq!(store.record_ids::<VisitContent>().unwrap().len(), 1);
}
