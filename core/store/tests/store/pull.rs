//! Pulled data: applied with its cursor in one transaction, stored beside
//! local versions so both survive.

use doorstep_domain::history::Head;
use doorstep_domain::record::VisitContent;
use doorstep_store::{
    Acknowledgement, Origin, OutboxState, PullBatch, PulledRecord, StoreError, SyncCursor,
};

use crate::{Fixture, morning, sample};

#[test]
fn pulled_versions_and_the_cursor_commit_together() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    assert_eq!(store.sync_cursor().unwrap(), None);
    let other_device = sample::new_visit(1, morning());
    let mut batch = PullBatch::new(SyncCursor("c-1".into()));
    batch
        .records
        .push(PulledRecord::Visit(other_device.clone()));
    let report = store.apply_pull(&batch).unwrap();
    assert_eq!(report.new_versions, 1);
    assert_eq!(store.sync_cursor().unwrap(), Some(SyncCursor("c-1".into())));
    let history = store
        .history::<VisitContent>(other_device.meta.record_id)
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].origin, Origin::Pulled);
    assert_eq!(
        store.outbox_counts().unwrap().unsynced(),
        0,
        "pulled versions are not pushed back"
    );
}

#[test]
fn a_pulled_amendment_and_a_local_amendment_of_one_version_both_survive_as_a_fork() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let first = sample::new_visit(2, morning());
    store.save(&first).unwrap();
    let local = sample::amend_visit(&first, "phone-1", "Local amendment.");
    store.save(&local).unwrap();
    let remote = sample::amend_visit(&first, "ipad-7", "Remote amendment.");
    let mut batch = PullBatch::new(SyncCursor("c-2".into()));
    batch.records.push(PulledRecord::Visit(remote.clone()));
    store.apply_pull(&batch).unwrap();
    let current = store
        .current::<VisitContent>(first.meta.record_id)
        .unwrap()
        .unwrap();
    assert!(current.head.is_forked());
    let Head::Forked(heads) = current.head else {
        unreachable!()
    };
    assert_eq!(heads.len(), 2);
    assert!(heads.contains(&local.meta.version_id) && heads.contains(&remote.meta.version_id));
    assert_eq!(current.version_count, 3);
}

#[test]
fn applying_a_batch_twice_or_an_echo_of_our_own_version_changes_nothing() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let ours = sample::new_visit(3, morning());
    store.save(&ours).unwrap();
    let mut batch = PullBatch::new(SyncCursor("c-3".into()));
    batch.records.push(PulledRecord::Visit(ours.clone()));
    batch.patients.push(sample::patient(3));
    let first = store.apply_pull(&batch).unwrap();
    let second = store.apply_pull(&batch).unwrap();
    assert_eq!((first.new_versions, first.known_versions), (0, 1));
    assert_eq!(second, first);
    let history = store.history::<VisitContent>(ours.meta.record_id).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].origin, Origin::Local);
}

#[test]
fn a_bad_batch_applies_nothing_and_leaves_the_cursor() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    store
        .apply_pull(&PullBatch::new(SyncCursor("before".into())))
        .unwrap();
    let good = sample::new_visit(4, morning());
    let mut bad = sample::new_visit(5, morning());
    bad.content.departed_at = Some(morning() - jiff::SignedDuration::from_mins(5));
    let mut batch = PullBatch::new(SyncCursor("after".into()));
    batch.records = vec![PulledRecord::Visit(good.clone()), PulledRecord::Visit(bad)];
    batch.patients.push(sample::patient(4));
    match store.apply_pull(&batch) {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, "records[1].content.departed_at"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        store.sync_cursor().unwrap(),
        Some(SyncCursor("before".into()))
    );
    assert!(
        store
            .current::<VisitContent>(good.meta.record_id)
            .unwrap()
            .is_none()
    );
    assert!(store.patient(&sample::nhs_number(4)).unwrap().is_none());

    // A version id the device already holds with other content also stops the batch.
    let ours = sample::new_visit(6, morning());
    store.save(&ours).unwrap();
    let mut clash = ours.clone();
    clash.content.treatment = doorstep_domain::text::FreeText::parse("t", "Different").unwrap();
    let mut batch = PullBatch::new(SyncCursor("after".into()));
    batch.records = vec![
        PulledRecord::Visit(good.clone()),
        PulledRecord::Visit(clash),
    ];
    assert!(matches!(
        store.apply_pull(&batch),
        Err(StoreError::VersionConflict(_))
    ));
    assert_eq!(
        store.sync_cursor().unwrap(),
        Some(SyncCursor("before".into()))
    );
    assert!(
        store
            .current::<VisitContent>(good.meta.record_id)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_filed_answer_arriving_by_pull_moves_the_item() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let change = store
        .save(&sample::new_visit(7, morning()))
        .unwrap()
        .change_id()
        .expect("a new save queues a change");
    store.mark_sent(&[change]).unwrap();
    let mut batch = PullBatch::new(SyncCursor("c-7".into()));
    batch
        .acknowledgements
        .push((change, Acknowledgement::Filed));
    assert_eq!(store.apply_pull(&batch).unwrap().acknowledged, 1);
    assert_eq!(
        store.outbox_item(change).unwrap().unwrap().state,
        OutboxState::Filed
    );
}

#[test]
fn a_pulled_version_naming_a_record_of_another_kind_is_refused_and_the_record_stays_readable() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let visit = sample::new_visit(1, morning());
    store.save(&visit).unwrap();
    let mut review = sample::new_review(2, jiff::civil::date(2026, 11, 24));
    review.meta.record_id = visit.meta.record_id;
    let mut batch = PullBatch::new(SyncCursor("after".into()));
    batch.records = vec![PulledRecord::MedicationReview(review)];
    match store.apply_pull(&batch) {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, "records[0].meta.record_id"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(store.sync_cursor().unwrap(), None);
    let current = store
        .current::<VisitContent>(visit.meta.record_id)
        .unwrap()
        .expect("the visit is still there");
    assert_eq!(current.version, visit);
}

#[test]
fn saving_again_a_version_that_came_from_the_endpoint_queues_nothing_and_says_so() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let visit = sample::new_visit(8, morning());
    let mut batch = PullBatch::new(SyncCursor("c-8".into()));
    batch.records = vec![PulledRecord::Visit(visit.clone())];
    store.apply_pull(&batch).unwrap();
    assert_eq!(
        store.save(&visit).unwrap(),
        doorstep_store::Saved::AlreadySynced
    );
    assert_eq!(store.outbox_counts().unwrap().pending, 0);
    let mut changed = visit.clone();
    changed.content.treatment = doorstep_domain::text::FreeText::parse("t", "Other").unwrap();
    assert!(matches!(
        store.save(&changed),
        Err(StoreError::VersionConflict(_))
    ));
}
