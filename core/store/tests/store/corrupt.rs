//! Damaged files: each kind of damage gets its own error, and opening a
//! damaged or newer file never changes a byte of it.

use crate::assert_all_current;
use std::sync::Arc;

use doorstep_domain::record::VisitRecord;
use doorstep_store::{Store, StoreError, schema};

use crate::{Fixture, flip_bytes, morning, raw_connection, sample};

/// A closed store of several pages (the WAL folded into the file on close).
fn filled() -> (Fixture, Vec<VisitRecord>) {
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
    assert!(!Store::discard_unreadable(&f.config, f.keys.clone()).unwrap());
    assert!(
        f.path().exists(),
        "a readable store is never discarded this way"
    );
    flip_bytes(f.path(), 40, 8);
    let keys: Arc<dyn doorstep_store::KeyProvider> = f.keys.clone();
    assert!(Store::discard_unreadable(&f.config, keys).unwrap());
    assert!(!f.path().exists());
    let store = f.open().unwrap();
    assert_eq!(
        store.outbox_counts().unwrap().unsynced(),
        0,
        "a new, empty store"
    );
}

/// A store opened and closed once (so its file is there), then opened again
/// and left open with `n` visits saved one by one: each save is in its
/// write-ahead log. Returns its fixture, the open store and the visits.
fn saving_one_by_one(n: u32) -> (Fixture, Store, Vec<VisitRecord>) {
    let f = Fixture::default();
    drop(f.open().unwrap());
    let mut store = f.open().unwrap();
    let visits: Vec<_> = (0..n).map(|i| sample::new_visit(i, morning())).collect();
    for v in &visits {
        store.save(v).unwrap();
    }
    (f, store, visits)
}

/// A store killed after saving `n` visits one by one: its saves are in the
/// write-ahead log, not yet in the file. Copied (file and log, as on flash
/// after a reboot; the in-memory index is gone) into a second fixture that
/// holds the same key.
fn killed_with_saves_in_the_log(n: u32) -> (Fixture, Vec<VisitRecord>) {
    let (f, store, visits) = saving_one_by_one(n);
    let g = copied(&f);
    drop(store);
    (g, visits)
}

/// A second fixture holding a copy of `f`'s file and log, and its key: the
/// files as flash holds them after a power cut, with nothing of `f`'s open
/// connection (its in-memory index of the log) carried over.
fn copied(f: &Fixture) -> Fixture {
    use doorstep_store::{KeyProvider, KeySlot};
    let g = Fixture::default();
    let key = f.keys.read_key(KeySlot::Current).unwrap().unwrap();
    g.keys.write_key(KeySlot::Current, &key).unwrap();
    std::fs::copy(f.path(), g.path()).unwrap();
    std::fs::copy(wal(f), wal(&g)).unwrap();
    g
}

fn wal(f: &Fixture) -> std::path::PathBuf {
    let mut path = f.path().as_os_str().to_owned();
    path.push("-wal");
    path.into()
}

/// Opens `f` expecting [`StoreError::Corrupt`] whose detail names the
/// write-ahead log and says `says`, and checks that the open left every byte
/// of the file and its log as it was, the log kept for recovery. `case`
/// begins each message.
fn assert_log_corrupt_and_kept(f: &Fixture, case: &str, says: &str) {
    let before = f.file_bytes();
    match f.open() {
        Err(StoreError::Corrupt { detail }) => {
            assert!(detail.contains("write-ahead log"), "{case}: {detail}");
            assert!(detail.contains(says), "{case}: {detail}");
        }
        other => panic!("{case}: expected the log's damage to be reported, got {other:?}"),
    }
    assert_eq!(
        f.file_bytes(),
        before,
        "{case}: the log is kept for recovery"
    );
}

#[test]
fn damage_in_the_log_before_later_saves_is_corrupt_and_left_as_it_was() {
    let (f, _) = killed_with_saves_in_the_log(10);
    let frames = (std::fs::metadata(wal(&f)).unwrap().len() as usize - 32) / (24 + 4096);
    assert!(frames > 20, "each save wrote frames to the log ({frames})");
    flip_bytes(&wal(&f), 32 + (frames / 3) * (24 + 4096) + 24 + 1000, 4);
    assert_log_corrupt_and_kept(&f, "a frame", "write-ahead log frame");

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
        assert_log_corrupt_and_kept(&f, damage, "nothing was changed");
    }
}

/// Bytes of the log's 32-byte header, each damaged in a test below: one in
/// each of its fields (magic number, format version, page size, checkpoint
/// sequence, the two salts, the two words of its checksum).
const HEADER_FIELDS: [(&str, usize); 8] = [
    ("magic number", 3),
    ("format version", 6),
    ("page size", 10),
    ("checkpoint sequence", 15),
    ("salt-1", 17),
    ("salt-2", 22),
    ("checksum", 25),
    ("checksum", 30),
];

#[test]
fn a_damaged_log_header_over_saves_not_yet_in_the_file_is_corrupt_and_left_as_it_was() {
    // SQLite ignores a log whose header fails its checks, and with it every
    // save since the last checkpoint, without an error.
    let (f, visits) = killed_with_saves_in_the_log(10);
    for (field, offset) in HEADER_FIELDS {
        let g = copied(&f);
        flip_bytes(&wal(&g), offset, 1);
        assert_log_corrupt_and_kept(&g, field, "header");
        // What was kept is what recovers the saves: the header put right,
        // every one of them is there.
        flip_bytes(&wal(&g), offset, 1);
        let store = g.open().unwrap();
        assert_all_current(&store, &visits);
    }
}

/// A store whose saves are in its log and were all copied into the file by
/// a checkpoint, copied (as [`killed_with_saves_in_the_log`]) before the log
/// restarts; and the header SQLite wrote over that log when the next save
/// restarted it, in the store the copy was taken from.
fn checkpointed_then_restarted(n: u32) -> (Fixture, Vec<VisitRecord>, Vec<u8>) {
    let (f, mut store, visits) = saving_one_by_one(n);
    let conn = raw_connection(&f);
    let (busy, log, copied_frames): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(FULL)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .unwrap();
    assert_eq!(
        (busy, copied_frames),
        (0, log),
        "every frame is in the file"
    );
    let g = copied(&f);
    // Every frame is in the file, so the next save starts the log afresh.
    store.save(&sample::new_visit(n, morning())).unwrap();
    let restart = std::fs::read(wal(&f)).unwrap()[..32].to_vec();
    drop(conn);
    drop(store);
    let old = std::fs::read(wal(&g)).unwrap();
    assert_eq!(
        restart[..12],
        old[..12],
        "the same magic, version and page size"
    );
    assert_ne!(restart[16..20], old[16..20], "a restart changes salt-1");
    (g, visits, restart)
}

#[test]
fn a_damaged_log_header_over_saves_already_in_the_file_loses_nothing_and_opens() {
    let (f, visits, _) = checkpointed_then_restarted(10);
    for (field, offset) in HEADER_FIELDS {
        let g = copied(&f);
        flip_bytes(&wal(&g), offset, 1);
        let store = g
            .open()
            .unwrap_or_else(|e| panic!("{field}: nothing is lost, yet the open failed: {e}"));
        assert_all_current(&store, &visits);
    }
}

#[test]
fn a_log_restart_cut_short_by_a_power_cut_opens_with_every_save() {
    // SQLite's assumption: a write cut short has changed a run of bytes at
    // one end of what it was writing and left the rest as it was.
    let (f, visits, restart) = checkpointed_then_restarted(10);
    let old = std::fs::read(wal(&f)).unwrap();
    // Only the sequence's last byte and what follows it differ: a cut
    // before byte 16 leaves the old header (from the start) or the new one
    // (from the end), whole.
    for cut in [16, 18, 20, 23, 24, 26, 28, 31] {
        for from_the_end in [false, true] {
            let mut header = old[..32].to_vec();
            if from_the_end {
                header[cut..].copy_from_slice(&restart[cut..]);
            } else {
                header[..cut].copy_from_slice(&restart[..cut]);
            }
            assert!(header[..] != old[..32] && header != restart, "{cut}: torn");
            let g = copied(&f);
            let mut log = old.clone();
            log[..32].copy_from_slice(&header);
            std::fs::write(wal(&g), log).unwrap();
            let store = g.open().unwrap_or_else(|e| {
                panic!("cut at {cut} (from the end: {from_the_end}): the open failed: {e}")
            });
            assert_all_current(&store, &visits);
        }
    }
}

#[test]
fn saves_over_a_log_restart_cut_short_survive_a_kill_before_a_checkpoint() {
    // A cut that leaves the old salts under the new sequence: SQLite ignores
    // the header but keeps its salts, and without the store's own restart
    // its next writer would write the new frames under them, over frames of
    // the old generation that would then look like damage after them.
    let (f, mut visits, restart) = checkpointed_then_restarted(10);
    let mut log = std::fs::read(wal(&f)).unwrap();
    log[..16].copy_from_slice(&restart[..16]);
    std::fs::write(wal(&f), log).unwrap();
    let mut store = f.open().unwrap();
    assert_eq!(
        std::fs::metadata(wal(&f)).unwrap().len(),
        0,
        "the open restarted the log before writing"
    );
    let saved = sample::new_visit(10, morning());
    store.save(&saved).unwrap();
    visits.push(saved);
    // Killed before a checkpoint: the save is only in the log.
    let killed = copied(&f);
    drop(store);
    let store = killed
        .open()
        .unwrap_or_else(|e| panic!("nothing is lost, yet the open failed: {e}"));
    assert_all_current(&store, &visits);
}

#[test]
fn a_log_whose_first_block_is_gone_over_saves_not_yet_in_the_file_is_corrupt_and_left_as_it_was() {
    // Block-level damage to the first 4 KiB takes the header and the first
    // frame together; the later frames still show what the file lacks.
    let (f, _) = killed_with_saves_in_the_log(10);
    let mut log = std::fs::read(wal(&f)).unwrap();
    log[..4096].fill(0);
    std::fs::write(wal(&f), log).unwrap();
    assert_log_corrupt_and_kept(&f, "the first block", "header");
}

#[test]
fn a_log_whose_first_block_is_gone_over_saves_already_in_the_file_opens() {
    let (f, visits, _) = checkpointed_then_restarted(10);
    let mut log = std::fs::read(wal(&f)).unwrap();
    log[..4096].fill(0);
    std::fs::write(wal(&f), log).unwrap();
    let store = f
        .open()
        .unwrap_or_else(|e| panic!("nothing is lost, yet the open failed: {e}"));
    assert_all_current(&store, &visits);
}
