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

#[test]
fn a_rekey_that_fails_leaves_a_store_whose_later_saves_open_again() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let mut visits: Vec<_> = (0..5).map(|i| sample::new_visit(i, morning())).collect();
    for v in &visits {
        store.save(v).unwrap();
    }
    let key = f.keys.read_key(KeySlot::Current).unwrap().unwrap();
    // Another connection holds the write lock, so the re-key cannot run.
    let other = rusqlite::Connection::open(f.path()).unwrap();
    other
        .execute_batch(&format!(
            "PRAGMA key = \"x'{}'\"; BEGIN IMMEDIATE;",
            crate::key_hex(&key)
        ))
        .unwrap();
    assert!(matches!(store.rekey(), Err(StoreError::RekeyNotMade)));
    other.execute_batch("ROLLBACK;").unwrap();
    drop(other);

    // The store goes on under the key the file is under: what it saves now opens again.
    for i in 5..40 {
        let visit = sample::new_visit(i, morning());
        store.save(&visit).unwrap();
        visits.push(visit);
    }
    drop(store);
    assert_eq!(f.keys.read_key(KeySlot::Current).unwrap(), Some(key));
    assert_eq!(f.keys.read_key(KeySlot::Next).unwrap(), None);
    let store = f.open().unwrap();
    store.check_integrity().unwrap();
    assert_all_current(&store, &visits);
    assert_eq!(store.outbox_counts().unwrap().pending, 40);
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

#[test]
fn damage_under_the_next_key_is_reported_as_damage_not_as_a_wrong_key() {
    // The keystore as a re-key whose key never became current leaves it, and
    // the file, under the next key, damaged in its first page.
    let f = Fixture::default();
    store_with_visits(&f, 40);
    let key = f.keys.read_key(KeySlot::Current).unwrap().unwrap();
    crate::flip_bytes(f.path(), 40, 8);
    let keys = Arc::new(MemoryKeyProvider::with_key(
        DatabaseKey::generate().unwrap(),
    ));
    keys.write_key(KeySlot::Next, &key).unwrap();
    let before = f.file_bytes();
    let err = Store::open(&f.config, keys.clone()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(f.file_bytes(), before);
    assert_eq!(keys.read_key(KeySlot::Next).unwrap(), Some(key));
}

/// A keystore whose next-key slot cannot be read (its entry damaged), or
/// cleared, as set.
#[derive(Default)]
struct FaultyNextSlot {
    inner: MemoryKeyProvider,
    unreadable: std::sync::atomic::AtomicBool,
    undeletable: std::sync::atomic::AtomicBool,
    current_locked: std::sync::atomic::AtomicBool,
}

impl KeyProvider for FaultyNextSlot {
    fn read_key(&self, slot: KeySlot) -> Result<Option<DatabaseKey>, doorstep_store::KeyError> {
        if slot == KeySlot::Next && self.unreadable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(doorstep_store::KeyError::Unavailable(
                "entry damaged".into(),
            ));
        }
        self.inner.read_key(slot)
    }
    fn write_key(&self, slot: KeySlot, key: &DatabaseKey) -> Result<(), doorstep_store::KeyError> {
        if slot == KeySlot::Current
            && self
                .current_locked
                .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(doorstep_store::KeyError::Unavailable(
                "device locked".into(),
            ));
        }
        self.inner.write_key(slot, key)
    }
    fn delete_key(&self, slot: KeySlot) -> Result<(), doorstep_store::KeyError> {
        if slot == KeySlot::Next && self.undeletable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(doorstep_store::KeyError::Unavailable(
                "device locked".into(),
            ));
        }
        self.inner.delete_key(slot)
    }
}

#[test]
fn a_next_slot_that_cannot_be_read_does_not_stop_a_store_the_current_key_opens() {
    use std::sync::atomic::Ordering;
    let f = Fixture::default();
    let keys = Arc::new(FaultyNextSlot::default());
    let mut store = Store::open(&f.config, keys.clone()).unwrap();
    let visits: Vec<_> = (0..3).map(|i| sample::new_visit(i, morning())).collect();
    for v in &visits {
        store.save(v).unwrap();
    }
    drop(store);
    keys.unreadable.store(true, Ordering::SeqCst);
    let store = Store::open(&f.config, keys.clone()).unwrap();
    assert_all_current(&store, &visits);
    // Nor a wipe (a revocation's, say): the damaged slot is cleared with the
    // current one, in case it held the key too.
    assert_eq!(store.wipe(3).unwrap().discarded_unsynced, 3);
    keys.unreadable.store(false, Ordering::SeqCst);
    assert_eq!(keys.read_key(KeySlot::Current).unwrap(), None);
    assert_eq!(keys.read_key(KeySlot::Next).unwrap(), None);
    assert!(!f.path().exists());
}

#[test]
fn a_wipe_refuses_when_the_key_the_file_is_under_will_not_clear() {
    use std::sync::atomic::Ordering;
    let f = Fixture::default();
    let keys = Arc::new(FaultyNextSlot::default());
    let mut store = Store::open(&f.config, keys.clone()).unwrap();
    let visit = sample::new_visit(0, morning());
    store.save(&visit).unwrap();
    // A re-key moves the file, but its key cannot be made current: it stays in Next.
    keys.current_locked.store(true, Ordering::SeqCst);
    assert!(matches!(store.rekey(), Err(StoreError::Key(_))));
    keys.current_locked.store(false, Ordering::SeqCst);
    let under = keys
        .read_key(KeySlot::Next)
        .unwrap()
        .expect("the file's key");

    keys.undeletable.store(true, Ordering::SeqCst);
    let store = match store.wipe(1) {
        Err(doorstep_store::WipeError::Refused { store, .. }) => *store,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(keys.read_key(KeySlot::Next).unwrap(), Some(under));
    assert_all_current(&store, std::slice::from_ref(&visit));
    drop(store);
    assert!(f.path().exists(), "nothing was erased");
    keys.undeletable.store(false, Ordering::SeqCst);
    let store = Store::open(&f.config, keys.clone()).unwrap();
    assert_all_current(&store, std::slice::from_ref(&visit));
}

#[test]
fn a_log_left_by_a_wipe_cut_short_is_not_replayed_into_the_next_store() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    for i in 0..5 {
        store.save(&sample::new_visit(i, morning())).unwrap();
    }
    // The log as it stands while the store is open, under the old key.
    let wal_path = {
        let mut p = f.path().as_os_str().to_owned();
        p.push("-wal");
        std::path::PathBuf::from(p)
    };
    let log = std::fs::read(&wal_path).unwrap();
    assert!(!log.is_empty());
    drop(store);
    // The wipe destroyed the key and removed the database, then stopped. (SQLite
    // starts a new log for the store made next, rather than replay this one.)
    f.keys.delete_key(KeySlot::Current).unwrap();
    std::fs::remove_file(f.path()).unwrap();
    std::fs::write(&wal_path, &log).unwrap();

    let mut fresh = f.open().unwrap();
    fresh.check_integrity().unwrap();
    assert_eq!(fresh.outbox_counts().unwrap(), Default::default());
    let visit = sample::new_visit(9, morning());
    fresh.save(&visit).unwrap();
    drop(fresh);
    let again = f.open().unwrap();
    assert_all_current(&again, std::slice::from_ref(&visit));
}
