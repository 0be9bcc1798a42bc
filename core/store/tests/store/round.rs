//! Offline round data: the day's round with summaries, care homes, removals.

use doorstep_store::{PullBatch, SyncCursor};
use jiff::civil::date;

use crate::{Fixture, sample};

#[test]
fn a_days_round_loads_with_the_summaries_that_are_on_the_device() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let day = date(2026, 11, 24);
    let mut batch = PullBatch::new(SyncCursor("r-1".into()));
    batch.rounds.push(sample::round(day, 12));
    batch.patients = (0..10).map(sample::patient).collect();
    store.apply_pull(&batch).unwrap();
    let loaded = store.round(day).unwrap().unwrap();
    assert_eq!(loaded.round, batch.rounds[0]);
    assert_eq!(
        loaded.patients.len(),
        10,
        "patients 10 and 11 have no summary yet"
    );
    assert_eq!(loaded.patients[&sample::nhs_number(3)], sample::patient(3));
    assert!(!loaded.patients.contains_key(&sample::nhs_number(11)));
    assert!(store.round(date(2026, 11, 25)).unwrap().is_none());
}

#[test]
fn a_newer_round_replaces_the_days_round() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let day = date(2026, 11, 24);
    store.save_round(&sample::round(day, 5)).unwrap();
    let mut replanned = sample::round(day, 3);
    replanned.stops.reverse();
    store.save_round(&replanned).unwrap();
    store
        .apply_pull(&PullBatch {
            patients: (0..5).map(sample::patient).collect(),
            ..PullBatch::new(SyncCursor("r".into()))
        })
        .unwrap();
    let loaded = store.round(day).unwrap().unwrap();
    assert_eq!(loaded.round, replanned);
    assert_eq!(
        loaded.patients.len(),
        3,
        "only the new round's patients are joined"
    );
}

#[test]
fn patients_off_the_caseload_are_forgotten() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let mut batch = PullBatch::new(SyncCursor("p-1".into()));
    batch.patients = vec![sample::patient(1), sample::patient(2)];
    store.apply_pull(&batch).unwrap();
    let mut batch = PullBatch::new(SyncCursor("p-2".into()));
    batch.removed_patients.push(sample::nhs_number(1));
    store.apply_pull(&batch).unwrap();
    assert!(store.patient(&sample::nhs_number(1)).unwrap().is_none());
    assert_eq!(
        store.patient(&sample::nhs_number(2)).unwrap(),
        Some(sample::patient(2))
    );
}

#[test]
fn care_homes_and_their_residents_are_kept_and_replaced() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let home = sample::care_home;
    let mut batch = PullBatch::new(SyncCursor("h-1".into()));
    batch.care_homes.push(home(3));
    store.apply_pull(&batch).unwrap();
    batch.care_homes = vec![home(5)];
    store.apply_pull(&batch).unwrap();
    assert_eq!(store.care_homes().unwrap(), [home(5)]);
    assert_eq!(
        store
            .care_home(&home(0).id)
            .unwrap()
            .unwrap()
            .residents
            .len(),
        5
    );
}

#[test]
fn an_impossible_round_is_refused_and_the_stored_one_kept() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let day = date(2026, 11, 24);
    let good = sample::round(day, 3);
    store.save_round(&good).unwrap();

    let mut backwards = sample::round(day, 3);
    backwards.stops[1].planned_end =
        backwards.stops[1].planned_start - jiff::SignedDuration::from_hours(30);
    match store.save_round(&backwards) {
        Err(doorstep_store::StoreError::Invalid(e)) => {
            assert_eq!(e.field, "stops[1].planned_end");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    let mut no_time = sample::round(day, 3);
    if let doorstep_store::StopWork::Visit { request } = &mut no_time.stops[2].work {
        request.expected_minutes = 0;
    }
    let mut batch = PullBatch::new(SyncCursor("r-2".into()));
    batch.rounds.push(no_time);
    match store.apply_pull(&batch) {
        Err(doorstep_store::StoreError::Invalid(e)) => {
            assert_eq!(e.field, "rounds[0].stops[2].work.request.expected_minutes");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(store.round(day).unwrap().unwrap().round, good);
    assert_eq!(store.sync_cursor().unwrap(), None);
}
