//! Pulled data: applied with its cursor in one transaction, stored beside
//! local versions so both survive, and refused whole when a version clashes
//! with what the device holds.

use doorstep_domain::history::Head;
use doorstep_domain::record::{RecordId, VisitContent, VisitRecord};
use doorstep_store::round::MAX_CARE_HOME_RESIDENTS;
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

/// Applies `batch` expecting a refusal naming `field`, and checks that
/// nothing in it was applied: the cursor, the versions it held, its patient
/// summaries and the care homes are as they were.
fn assert_refused_whole(store: &mut doorstep_store::Store, batch: &PullBatch, field: &str) {
    let cursor = store.sync_cursor().unwrap();
    let homes = store.care_homes().unwrap();
    match store.apply_pull(batch) {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, field),
        other => panic!("expected a refusal naming {field}, got {other:?}"),
    }
    assert_eq!(store.sync_cursor().unwrap(), cursor);
    for record in &batch.records {
        let PulledRecord::Visit(v) = record else {
            unreachable!("these batches hold visits")
        };
        let held = store.history::<VisitContent>(v.meta.record_id).unwrap();
        assert!(
            held.iter().all(
                |h| h.version.meta.version_id != v.meta.version_id || h.origin == Origin::Local
            ),
            "a pulled version of the refused batch was stored"
        );
    }
    for patient in &batch.patients {
        assert!(store.patient(&patient.nhs_number).unwrap().is_none());
    }
    assert_eq!(store.care_homes().unwrap(), homes);
}

/// An amendment of `previous` filed under another record.
fn amendment_under_another_record(previous: &VisitRecord) -> VisitRecord {
    let mut stray = sample::amend_visit(previous, "ipad-7", "Amended elsewhere.");
    stray.meta.record_id = RecordId(uuid::Uuid::now_v7());
    stray
}

#[test]
fn a_pulled_amendment_of_a_version_held_under_another_record_is_refused_with_its_batch() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    store
        .apply_pull(&PullBatch::new(SyncCursor("before".into())))
        .unwrap();
    let local = sample::new_visit(1, morning());
    store.save(&local).unwrap();
    let good = sample::new_visit(2, morning());
    let mut batch = PullBatch::new(SyncCursor("after".into()));
    batch.records = vec![
        PulledRecord::Visit(good.clone()),
        PulledRecord::Visit(amendment_under_another_record(&local)),
    ];
    batch.patients.push(sample::patient(2));
    assert_refused_whole(&mut store, &batch, "records[1].meta.supersedes");
    assert!(
        store
            .current::<VisitContent>(good.meta.record_id)
            .unwrap()
            .is_none()
    );
    let current = store
        .current::<VisitContent>(local.meta.record_id)
        .unwrap()
        .unwrap();
    assert_eq!((current.version, current.version_count), (local, 1));

    // The same when the version amended was pulled, not written here.
    let pulled = sample::new_visit(3, morning());
    let mut first = PullBatch::new(SyncCursor("c-3".into()));
    first.records = vec![PulledRecord::Visit(pulled.clone())];
    store.apply_pull(&first).unwrap();
    let mut batch = PullBatch::new(SyncCursor("c-4".into()));
    batch.records = vec![PulledRecord::Visit(amendment_under_another_record(&pulled))];
    assert_refused_whole(&mut store, &batch, "records[0].meta.supersedes");
    assert_eq!(store.sync_cursor().unwrap(), Some(SyncCursor("c-3".into())));
}

#[test]
fn a_pulled_version_amended_a_page_earlier_under_another_record_is_refused_with_its_batch() {
    // Pages come in the endpoint's order, so an amendment of a version not
    // yet seen is kept; the version it amends must then come under the same
    // record, or the two records' histories would be tied together.
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let base = sample::new_visit(1, morning());
    let stray = amendment_under_another_record(&base);
    let mut first = PullBatch::new(SyncCursor("c-1".into()));
    first.records = vec![PulledRecord::Visit(stray.clone())];
    store.apply_pull(&first).unwrap();
    let mut batch = PullBatch::new(SyncCursor("c-2".into()));
    batch.records = vec![PulledRecord::Visit(base.clone())];
    batch.patients.push(sample::patient(1));
    assert_refused_whole(&mut store, &batch, "records[0].meta.version_id");
    assert_eq!(store.sync_cursor().unwrap(), Some(SyncCursor("c-1".into())));
    let held = store.history::<VisitContent>(stray.meta.record_id).unwrap();
    assert_eq!(held.len(), 1);

    // The same through a merge: a reconciling version of one record, pulled,
    // names a head the device has not seen, which then comes under another.
    let head = sample::new_visit(2, morning());
    let elsewhere = sample::new_visit(3, morning());
    let mut merging = sample::amend_visit(&head, "ipad-7", "Reconciled.");
    merging.meta.merges = vec![elsewhere.meta.version_id];
    let mut earlier = PullBatch::new(SyncCursor("c-3".into()));
    earlier.records = vec![PulledRecord::Visit(head), PulledRecord::Visit(merging)];
    store.apply_pull(&earlier).unwrap();
    let mut batch = PullBatch::new(SyncCursor("c-4".into()));
    batch.records = vec![PulledRecord::Visit(elsewhere)];
    assert_refused_whole(&mut store, &batch, "records[0].meta.version_id");
    assert_eq!(store.sync_cursor().unwrap(), Some(SyncCursor("c-3".into())));
}

#[test]
fn a_pulled_patient_summary_no_living_patient_fits_is_refused_with_its_batch() {
    // Whatever the device's date says (it may be wrong), a birth in 1850 or
    // a medicine list of thousands is no real summary.
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let mut batch = PullBatch::new(SyncCursor("c-1".into()));
    batch.patients.push(sample::patient(1));
    let mut old = sample::patient(2);
    old.date_of_birth = jiff::civil::date(1850, 1, 1);
    batch.patients.push(old);
    assert_refused_whole(&mut store, &batch, "patients[1].date_of_birth");
    let mut long = sample::patient(2);
    long.medicines = vec![long.medicines[0].clone(); 201];
    batch.patients[1] = long;
    assert_refused_whole(&mut store, &batch, "patients[1].medicines");
    batch.patients.truncate(1);
    store.apply_pull(&batch).unwrap();
}

#[test]
fn a_pulled_care_home_no_real_home_fits_is_refused_with_its_batch() {
    // Residents past any real home's beds, or a review due in 1900, are no
    // care home a pharmacist should be shown.
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let mut batch = PullBatch::new(SyncCursor("c-1".into()));
    batch.patients.push(sample::patient(1));
    let residents = u32::try_from(MAX_CARE_HOME_RESIDENTS).unwrap();
    batch.care_homes.push(sample::care_home(residents + 1));
    assert_refused_whole(&mut store, &batch, "care_homes[0].residents");
    for year in [1900, 2100] {
        let mut misdated = sample::care_home(3);
        misdated.residents[2].review_due = jiff::civil::date(year, 1, 1);
        batch.care_homes = vec![misdated];
        assert_refused_whole(&mut store, &batch, "care_homes[0].residents[2].review_due");
    }
    assert!(store.care_homes().unwrap().is_empty());
    batch.care_homes = vec![sample::care_home(residents)];
    store.apply_pull(&batch).unwrap();
    assert_eq!(store.care_homes().unwrap(), batch.care_homes);
}

#[test]
fn an_amendment_under_another_record_is_refused_whatever_its_place_in_the_batch() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let base = sample::new_visit(1, morning());
    let stray = amendment_under_another_record(&base);
    let mut batch = PullBatch::new(SyncCursor("c-1".into()));
    batch.records = vec![
        PulledRecord::Visit(stray.clone()),
        PulledRecord::Visit(base.clone()),
    ];
    assert_refused_whole(&mut store, &batch, "records[0].meta.supersedes");
    // Reversed, the version amended comes first, and is refused for the
    // amendment of it under another record.
    batch.records.reverse();
    assert_refused_whole(&mut store, &batch, "records[0].meta.version_id");
    assert_eq!(store.sync_cursor().unwrap(), None);
}

#[test]
fn pulled_versions_that_would_close_a_history_into_a_cycle_are_refused_with_their_batch() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    // `first` and `second` each name the other as the version they amend, as
    // only an endpoint that does not check lineage could serve them.
    let first = sample::new_visit(1, morning());
    let second = sample::amend_visit(&first, "ipad-7", "Amended.");
    let mut looped = first.clone();
    looped.meta.supersedes = Some(second.meta.version_id);
    let mut batch = PullBatch::new(SyncCursor("c-1".into()));
    batch.records = vec![
        PulledRecord::Visit(looped.clone()),
        PulledRecord::Visit(second.clone()),
    ];
    assert_refused_whole(&mut store, &batch, "records[0].meta.supersedes");
    assert_eq!(store.sync_cursor().unwrap(), None);
    // So is a longer loop through versions pulled earlier: the device holds
    // `b` and `c` (amending `b`), `b` amending `x`, never seen here; `x`
    // then comes as an amendment of `c`.
    let x = sample::new_visit(2, morning());
    let b = sample::amend_visit(&x, "ipad-7", "Amended.");
    let c = sample::amend_visit(&b, "ipad-7", "Amended again.");
    let mut earlier = PullBatch::new(SyncCursor("c-2".into()));
    earlier.records = vec![
        PulledRecord::Visit(b.clone()),
        PulledRecord::Visit(c.clone()),
    ];
    store.apply_pull(&earlier).unwrap();
    let mut x_looped = x.clone();
    x_looped.meta.supersedes = Some(c.meta.version_id);
    let mut batch = PullBatch::new(SyncCursor("c-3".into()));
    batch.records = vec![PulledRecord::Visit(x_looped)];
    assert_refused_whole(&mut store, &batch, "records[0].meta.supersedes");
    assert_eq!(store.sync_cursor().unwrap(), Some(SyncCursor("c-2".into())));
    // The real `x` goes in, and the record reads as one history.
    batch.records = vec![PulledRecord::Visit(x.clone())];
    store.apply_pull(&batch).unwrap();
    let current = store
        .current::<VisitContent>(x.meta.record_id)
        .unwrap()
        .unwrap();
    assert_eq!(current.head, Head::Single(c.meta.version_id));
}

#[test]
fn a_pulled_amendment_of_a_version_never_seen_here_is_stored() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    // The endpoint refused `unseen`, and its author's device, built before
    // corrections took a refused version's place, corrected it by amending it.
    let unseen = sample::new_visit(1, morning());
    let correction = sample::amend_visit(&unseen, "ipad-7", "Corrected.");
    // A same-record amendment of a version the device holds goes in too.
    let held = sample::new_visit(2, morning());
    store.save(&held).unwrap();
    let amendment = sample::amend_visit(&held, "ipad-7", "Amended.");
    let mut batch = PullBatch::new(SyncCursor("c-1".into()));
    batch.records = vec![
        PulledRecord::Visit(correction.clone()),
        PulledRecord::Visit(amendment.clone()),
    ];
    assert_eq!(store.apply_pull(&batch).unwrap().new_versions, 2);
    let current = store
        .current::<VisitContent>(correction.meta.record_id)
        .unwrap()
        .unwrap();
    assert_eq!(current.version, correction);
    assert_eq!(current.head, Head::Single(correction.meta.version_id));
    assert_eq!(
        store
            .current::<VisitContent>(held.meta.record_id)
            .unwrap()
            .unwrap()
            .version,
        amendment
    );
    assert_eq!(store.sync_cursor().unwrap(), Some(SyncCursor("c-1".into())));
}

#[test]
fn a_pulled_version_held_already_with_other_content_or_lineage_is_refused_with_its_batch() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let first = sample::new_visit(1, morning());
    let second = sample::amend_visit(&first, "ipad-7", "Amended.");
    let mut batch = PullBatch::new(SyncCursor("c-1".into()));
    batch.records = vec![
        PulledRecord::Visit(first.clone()),
        PulledRecord::Visit(second.clone()),
    ];
    store.apply_pull(&batch).unwrap();

    let other_base = sample::new_visit(2, morning());
    let mut relinked = second.clone();
    relinked.meta.supersedes = Some(other_base.meta.version_id);
    let mut moved = second.clone();
    moved.meta.record_id = other_base.meta.record_id;
    let mut rewritten = second.clone();
    rewritten.content.treatment = doorstep_domain::text::FreeText::parse("t", "Other").unwrap();
    // The same new version twice in one batch, the second time changed.
    let twice = sample::new_visit(3, morning());
    let mut twice_changed = twice.clone();
    twice_changed.content.treatment = doorstep_domain::text::FreeText::parse("t", "Other").unwrap();
    for records in [
        vec![PulledRecord::Visit(relinked)],
        vec![PulledRecord::Visit(moved)],
        vec![PulledRecord::Visit(rewritten)],
        vec![
            PulledRecord::Visit(twice),
            PulledRecord::Visit(twice_changed),
        ],
    ] {
        let mut clash = PullBatch::new(SyncCursor("c-2".into()));
        clash.records = std::iter::once(PulledRecord::Visit(other_base.clone()))
            .chain(records)
            .collect();
        assert!(matches!(
            store.apply_pull(&clash),
            Err(StoreError::VersionConflict(_))
        ));
        assert_eq!(store.sync_cursor().unwrap(), Some(SyncCursor("c-1".into())));
        assert!(
            store
                .current::<VisitContent>(other_base.meta.record_id)
                .unwrap()
                .is_none()
        );
        let current = store
            .current::<VisitContent>(first.meta.record_id)
            .unwrap()
            .unwrap();
        assert_eq!((&current.version, current.version_count), (&second, 2));
    }
}

#[test]
fn a_store_syncs_with_one_network_and_refuses_another_changing_nothing() {
    use doorstep_domain::network::NetworkId;
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let east = NetworkId::parse("east-dorset").unwrap();
    let west = NetworkId::parse("west-dorset").unwrap();
    assert!(!store.check_network(&east).unwrap(), "bound to none yet");
    assert!(!store.check_network(&west).unwrap());
    store.bind_network(&east).unwrap();
    store.bind_network(&east).unwrap();
    assert!(store.check_network(&east).unwrap());
    assert!(matches!(
        store.check_network(&west),
        Err(StoreError::OtherNetwork { .. })
    ));
    let refused = store.bind_network(&west).expect_err("refused");
    assert!(
        matches!(&refused, StoreError::OtherNetwork { bound, asked } if *bound == east && *asked == west),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("wipe it"), "{refused}");
    // Still bound to the first, across a reopen.
    drop(store);
    let mut store = f.open().unwrap();
    store.bind_network(&east).unwrap();
    assert!(store.bind_network(&west).is_err());

    // A binding this build cannot read back (a network id by other rules) is
    // a value it cannot decode, not a damaged file to discard.
    drop(store);
    crate::raw_connection(&f)
        .execute(
            "UPDATE sync_network SET network = 'East Dorset!' WHERE id = 1",
            [],
        )
        .unwrap();
    let store = f.open().unwrap();
    let refused = store.check_network(&west).expect_err("refused");
    assert!(matches!(refused, StoreError::Decode { .. }), "{refused:?}");
}

#[test]
fn a_revocation_is_kept_in_the_file_and_its_first_time_stays() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    assert_eq!(store.revoked_at().unwrap(), None);
    store.mark_revoked().unwrap();
    let first = store.revoked_at().unwrap().expect("revoked");
    drop(store);
    let mut store = f.open().unwrap();
    assert_eq!(store.revoked_at().unwrap(), Some(first));
    store.mark_revoked().unwrap();
    assert_eq!(store.revoked_at().unwrap(), Some(first));
}
