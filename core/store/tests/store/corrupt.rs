//! Damaged files: each kind of damage gets its own error, and opening a
//! damaged or newer file never changes a byte of it.

use crate::assert_all_current;
use std::sync::Arc;

use doorstep_store::{StoreError, schema};

use crate::{Fixture, flip_bytes, morning, raw_connection, sample};

/// A closed store of several pages (the WAL folded into the file on close).
fn filled() -> (Fixture, Vec<doorstep_domain::record::VisitRecord>) {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let visits: Vec<_> = (0..40).map(|i| sample::new_visit(i, morning())).collect();
    for v in &visits {
        store.save(v).unwrap();
    }
    drop(store);
    let len = std::fs::metadata(f.path()).unwrap().len();
    assert!(
        len >= 8 * 4096,
        "the fixture spans several pages ({len} bytes)"
    );
    (f, visits)
}

/// Opens the damaged store, and if the open itself does not notice, runs the
/// full check; returns the first error either gave.
fn first_error(f: &Fixture) -> StoreError {
    match f.open() {
        Err(e) => e,
        Ok(store) => store.check_integrity().expect_err("damage must be found"),
    }
}

#[test]
fn a_truncated_file_is_corrupt_and_left_as_it_was() {
    let (f, _) = filled();
    let bytes = std::fs::read(f.path()).unwrap();
    std::fs::write(f.path(), &bytes[..bytes.len() / 2 + 1000]).unwrap();
    let before = f.file_bytes();
    assert!(matches!(f.open(), Err(StoreError::Corrupt { .. })));
    assert_eq!(f.file_bytes(), before);
}

#[test]
fn a_file_cut_at_a_page_boundary_is_corrupt_and_left_as_it_was() {
    let (f, _) = filled();
    let bytes = std::fs::read(f.path()).unwrap();
    std::fs::write(f.path(), &bytes[..4 * 4096]).unwrap();
    let before = f.file_bytes();
    assert!(matches!(f.open(), Err(StoreError::Corrupt { .. })));
    assert_eq!(f.file_bytes(), before);
}

#[test]
fn flipped_header_bytes_are_corrupt_not_a_wrong_key_and_left_as_they_were() {
    let (f, _) = filled();
    // Bytes 16..100 are SQLite's header, encrypted and authenticated in page 1.
    flip_bytes(f.path(), 40, 8);
    let before = f.file_bytes();
    let err = f.open().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(f.file_bytes(), before);
}

#[test]
fn flipped_bytes_in_a_page_are_corrupt_and_left_as_they_were() {
    let (f, _) = filled();
    flip_bytes(f.path(), 5 * 4096 + 700, 4);
    let before = f.file_bytes();
    let err = first_error(&f);
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert_eq!(f.file_bytes(), before);
}

#[test]
fn damage_to_the_unused_salt_bytes_loses_nothing() {
    // The store passes SQLCipher its salt, so the file's first 16 bytes are
    // not read: damage there must neither lose data nor pass for a wrong key.
    let (f, visits) = filled();
    flip_bytes(f.path(), 0, 16);
    let store = f.open().unwrap();
    store.check_integrity().unwrap();
    assert_all_current(&store, &visits);
}

#[test]
fn a_schema_newer_than_this_build_is_refused_and_left_as_it_was() {
    let (f, _) = filled();
    {
        let conn = raw_connection(&f);
        conn.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
             VALUES (?1, 'from_a_newer_build', '2027-01-01T00:00:00Z', '1')",
            [schema::LATEST + 1],
        )
        .unwrap();
    }
    let before = f.file_bytes();
    match f.open() {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (schema::LATEST + 1, schema::LATEST));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert_eq!(f.file_bytes(), before);
}

#[test]
fn discarding_an_unreadable_store_needs_it_to_be_unreadable() {
    let (f, _) = filled();
    assert!(!doorstep_store::Store::discard_unreadable(&f.config, f.keys.clone()).unwrap());
    assert!(
        f.path().exists(),
        "a readable store is never discarded this way"
    );
    flip_bytes(f.path(), 40, 8);
    let keys: Arc<dyn doorstep_store::KeyProvider> = f.keys.clone();
    assert!(doorstep_store::Store::discard_unreadable(&f.config, keys).unwrap());
    assert!(!f.path().exists());
    let store = f.open().unwrap();
    assert_eq!(
        store.outbox_counts().unwrap().unsynced(),
        0,
        "a new, empty store"
    );
}

/// A store killed after saving `n` visits one by one: its saves are in the
/// write-ahead log, not yet in the file. Copied (file and log, as on flash
/// after a reboot; the in-memory index is gone) into a second fixture that
/// holds the same key.
fn killed_with_saves_in_the_log(n: u32) -> (Fixture, Vec<doorstep_domain::record::VisitRecord>) {
    use doorstep_store::{KeyProvider, KeySlot};
    let f = Fixture::default();
    drop(f.open().unwrap());
    let mut store = f.open().unwrap();
    let visits: Vec<_> = (0..n).map(|i| sample::new_visit(i, morning())).collect();
    for v in &visits {
        store.save(v).unwrap();
    }
    let g = Fixture::default();
    let key = f.keys.read_key(KeySlot::Current).unwrap().unwrap();
    g.keys.write_key(KeySlot::Current, &key).unwrap();
    std::fs::copy(f.path(), g.path()).unwrap();
    std::fs::copy(wal(&f), wal(&g)).unwrap();
    drop(store);
    (g, visits)
}

fn wal(f: &Fixture) -> std::path::PathBuf {
    let mut path = f.path().as_os_str().to_owned();
    path.push("-wal");
    path.into()
}

#[test]
fn damage_in_the_log_before_later_saves_is_corrupt_and_left_as_it_was() {
    let (f, _) = killed_with_saves_in_the_log(10);
    let frames = (std::fs::metadata(wal(&f)).unwrap().len() as usize - 32) / (24 + 4096);
    assert!(frames > 20, "each save wrote frames to the log ({frames})");
    flip_bytes(&wal(&f), 32 + (frames / 3) * (24 + 4096) + 24 + 1000, 4);
    let before = f.file_bytes();
    match f.open() {
        Err(StoreError::Corrupt { detail }) => {
            assert!(detail.contains("write-ahead log frame"), "{detail}")
        }
        other => panic!("expected the log's damage to be reported, got {other:?}"),
    }
    assert_eq!(f.file_bytes(), before, "the log is kept for recovery");

    let (intact, visits) = killed_with_saves_in_the_log(10);
    let store = intact.open().unwrap();
    assert_all_current(&store, &visits);
}

#[test]
fn a_torn_last_save_in_the_log_opens_with_every_earlier_save() {
    let (f, visits) = killed_with_saves_in_the_log(6);
    let len = std::fs::metadata(wal(&f)).unwrap().len() as usize;
    // The last frame written, the last save's commit, never fully reached the disk.
    flip_bytes(&wal(&f), len - 2000, 4);
    let store = f.open().unwrap();
    assert_all_current(&store, &visits[..5]);
}

#[test]
fn an_empty_or_missing_file_beside_a_log_of_saves_is_corrupt_and_the_log_is_kept() {
    // Opened as a first launch, SQLite would delete a log beside a database
    // of no pages, and the day's saves in it with no error.
    for damage in ["emptied", "deleted"] {
        let (f, _) = killed_with_saves_in_the_log(6);
        if damage == "emptied" {
            std::fs::File::create(f.path()).unwrap();
        } else {
            std::fs::remove_file(f.path()).unwrap();
        }
        assert!(
            std::fs::metadata(wal(&f)).unwrap().len() > 0,
            "the log holds the saves"
        );
        let before = f.file_bytes();
        match f.open() {
            Err(StoreError::Corrupt { detail }) => {
                assert!(detail.contains("write-ahead log"), "{damage}: {detail}");
                assert!(detail.contains("nothing was changed"), "{damage}: {detail}");
            }
            other => panic!("{damage}: expected Corrupt, got {other:?}"),
        }
        assert_eq!(
            f.file_bytes(),
            before,
            "{damage}: the log is kept for recovery"
        );
    }
}
