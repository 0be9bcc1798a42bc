//! Encryption at rest: nothing identifying is readable in the files on disk,
//! neither in the database nor in its write-ahead log.

use doorstep_store::{PullBatch, SyncCursor};

use crate::{Fixture, morning, sample};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn assert_nothing_readable(f: &Fixture, patients: &[u32]) {
    let mut checked = 0;
    for (path, bytes) in f.files() {
        let Some(bytes) = bytes else { continue };
        checked += bytes.len();
        for n in patients {
            let nhs = sample::nhs_number(*n);
            for needle in [
                sample::family_name(*n),
                nhs.as_str().to_owned(),
                nhs.formatted(),
            ] {
                assert!(
                    !contains(&bytes, &needle),
                    "{} holds an identifier in clear",
                    path.display()
                );
            }
        }
        for needle in [
            "Heath Close",
            "Penicillin",
            "Apixaban",
            "Fall at home",
            "SQLite format 3",
        ] {
            assert!(
                !contains(&bytes, needle),
                "{} holds {needle:?} in clear",
                path.display()
            );
        }
    }
    assert!(checked > 0);
}

#[test]
fn the_files_on_disk_hold_no_patient_name_or_nhs_number_in_clear() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let patients: Vec<u32> = (0..20).collect();
    let mut batch = PullBatch::new(SyncCursor("c".into()));
    batch.patients = patients.iter().map(|n| sample::patient(*n)).collect();
    batch
        .rounds
        .push(sample::round(jiff::civil::date(2026, 11, 24), 20));
    store.apply_pull(&batch).unwrap();
    for n in &patients {
        store.save(&sample::new_visit(*n, morning())).unwrap();
    }
    // While open, recent pages live in the write-ahead log.
    assert_nothing_readable(&f, &patients);
    drop(store);
    assert_nothing_readable(&f, &patients);
}
