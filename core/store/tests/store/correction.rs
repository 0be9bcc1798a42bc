//! Correcting a change the endpoint refused: the correction takes the refused
//! version's place in the lineage (so no fork appears on the device, the
//! endpoint or any other device), the refused version stays in the history,
//! withdrawn, and every refusal changes nothing. What was queued on top of a
//! refused change is held back with it, so it never reaches the endpoint
//! alone, and is corrected or sent again with it.

use doorstep_domain::history::Head;
use doorstep_domain::record::{RecordVersion, VersionId, VisitContent, VisitRecord};
use doorstep_domain::text::FreeText;
use doorstep_store::{
    Acknowledgement, ChangeId, OutboxCounts, OutboxItem, OutboxState, PullBatch, PulledRecord,
    Store, StoreError, StoredVersion, SyncCursor, WipeError,
};
use jiff::SignedDuration;
use uuid::Uuid;

use crate::{Fixture, morning, next_push, sample, up_to};

const REASON: &str = "Invalid: body.record.meta.written_at: is more than 24 hours after the \
                      endpoint's clock; check the device's date and time";

fn save(store: &mut Store, version: &VisitRecord) -> ChangeId {
    store.save(version).unwrap().change_id().unwrap()
}

/// The endpoint's refusal of `id`, for [`Store::acknowledge`].
fn refusal(id: ChangeId) -> (ChangeId, Acknowledgement) {
    (
        id,
        Acknowledgement::Rejected {
            reason: REASON.into(),
        },
    )
}

fn reject(store: &mut Store, id: ChangeId) {
    assert_eq!(store.acknowledge(&[refusal(id)]).unwrap(), 1);
}

/// A first visit record saved and accepted by the endpoint: the V0 that the
/// refused changes of these tests amend.
fn synced_visit(store: &mut Store, seed: u32) -> VisitRecord {
    let v0 = sample::new_visit(seed, morning());
    let c0 = save(store, &v0);
    accept(store, c0);
    v0
}

/// `v0` amended, and that amendment amended in turn, both saved on this
/// device before any answer came: the chain of changes whose refusal these
/// tests put right.
fn amend_twice(
    store: &mut Store,
    v0: &VisitRecord,
    first: &str,
    second: &str,
) -> (VisitRecord, VisitRecord, ChangeId, ChangeId) {
    let v1 = sample::amend_visit(v0, "phone-1", first);
    let v1b = sample::amend_visit(&v1, "phone-1", second);
    let c1 = save(store, &v1);
    let c1b = save(store, &v1b);
    (v1, v1b, c1, c1b)
}

fn accept(store: &mut Store, id: ChangeId) {
    assert_eq!(
        store
            .acknowledge(&[(id, Acknowledgement::Accepted)])
            .unwrap(),
        1
    );
}

/// The clinician's correction of `refused` (its content with the treatment
/// put right), with the envelope the store says a correction of `rejected`
/// must carry.
fn correction_of(store: &Store, rejected: ChangeId, refused: &VisitRecord) -> VisitRecord {
    let base = store.correction_base(rejected).unwrap();
    let mut content = refused.content.clone();
    content.treatment = FreeText::parse("treatment", "Paracetamol 1 g given at 10:05.").unwrap();
    RecordVersion {
        meta: base.meta(
            VersionId(Uuid::now_v7()),
            sample::author(),
            sample::device(),
            refused.meta.written_at + SignedDuration::from_mins(10),
        ),
        content,
    }
}

/// Everything a refused correction must leave as it was: the record's
/// history (with what is withdrawn), its outbox items and the counts.
type Snapshot = (
    Vec<StoredVersion<VisitContent>>,
    Vec<OutboxItem>,
    OutboxCounts,
);

/// Asserts the outbox holds `(accepted, pending, rejected, withdrawn)` items
/// and `unsynced` changes the endpoint lacks, counted both ways the store
/// counts them.
fn assert_tally(
    store: &Store,
    (accepted, pending, rejected, withdrawn): (u64, u64, u64, u64),
    unsynced: u64,
) {
    let counts = store.outbox_counts().unwrap();
    assert_eq!(
        (
            counts.accepted,
            counts.pending,
            counts.rejected,
            counts.withdrawn
        ),
        (accepted, pending, rejected, withdrawn)
    );
    assert_eq!(
        (counts.unsynced(), store.unsynced_count().unwrap()),
        (unsynced, unsynced)
    );
}

fn snapshot(store: &Store, record: &VisitRecord) -> Snapshot {
    (
        store.history(record.meta.record_id).unwrap(),
        store.outbox_for_record(record.meta.record_id).unwrap(),
        store.outbox_counts().unwrap(),
    )
}

fn current(store: &Store, record: &VisitRecord) -> doorstep_store::CurrentRecord<VisitContent> {
    store
        .current::<VisitContent>(record.meta.record_id)
        .unwrap()
        .unwrap()
}

#[test]
fn a_corrected_amendment_supersedes_what_the_refused_one_did_and_the_record_does_not_fork() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 1);
    let v1 = sample::amend_visit(&v0, "phone-1", "Paracetamol given.");
    let c1 = save(&mut store, &v1);
    store.mark_sent(&[c1]).unwrap();
    reject(&mut store, c1);

    let base = store.correction_base(c1).unwrap();
    assert_eq!(base.record_id, v0.meta.record_id);
    assert_eq!(base.supersedes, Some(v0.meta.version_id), "not v1");
    assert_eq!(base.withdraws, [c1]);
    let v2 = correction_of(&store, c1, &v1);
    let c2 = store.correct_rejected(c1, &v2).unwrap();

    let now = current(&store, &v0);
    assert_eq!(now.version, v2);
    assert_eq!(now.head, Head::Single(v2.meta.version_id), "no local fork");
    assert_eq!(now.version_count, 3, "the refused version is still held");
    let history = store.history::<VisitContent>(v0.meta.record_id).unwrap();
    let shown: Vec<_> = history.iter().map(|v| (&v.version, v.withdrawn)).collect();
    assert_eq!(shown, [(&v0, false), (&v1, true), (&v2, false)]);

    assert_eq!(
        store.outbox_item(c1).unwrap().unwrap().state,
        OutboxState::Withdrawn {
            reason: REASON.into(),
            corrected_by: c2
        },
        "the reason is kept, with the correction that took its place"
    );
    assert_eq!(
        store.outbox_item(c2).unwrap().unwrap().state,
        OutboxState::Pending
    );
    assert!(store.rejected_items().unwrap().is_empty());
    assert_tally(&store, (1, 1, 0, 1), 1);
    let pushed = next_push(&store);
    assert_eq!(pushed, [c2], "the withdrawn change is never pushed");

    // Nothing the endpoint says moves a withdrawn item, and it cannot be
    // sent again.
    let late = [
        (c1, Acknowledgement::Accepted),
        (c1, Acknowledgement::Filed),
    ];
    assert_eq!(store.acknowledge(&late).unwrap(), 0);
    assert!(matches!(
        store.requeue_rejected(c1),
        Err(StoreError::NotRejected {
            state: "withdrawn",
            ..
        })
    ));

    // Survives closing and reopening.
    drop(store);
    let store = f.open().unwrap();
    assert_eq!(current(&store, &v0).head, Head::Single(v2.meta.version_id));
}

#[test]
fn a_corrected_first_version_is_replaced_by_a_first_version_and_wipe_counts_only_the_correction() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v1 = sample::new_visit(2, morning());
    let c1 = save(&mut store, &v1);
    reject(&mut store, c1);
    let base = store.correction_base(c1).unwrap();
    assert_eq!(base.supersedes, None);

    let v2 = correction_of(&store, c1, &v1);
    assert_eq!(
        v2.meta.supersedes, None,
        "the correction is a first version"
    );
    let c2 = store.correct_rejected(c1, &v2).unwrap();

    let now = current(&store, &v1);
    assert_eq!(now.version, v2);
    assert_eq!(now.head, Head::Single(v2.meta.version_id));
    let history = store.history::<VisitContent>(v1.meta.record_id).unwrap();
    assert_eq!(
        history.iter().map(|v| v.withdrawn).collect::<Vec<_>>(),
        [true, false]
    );
    assert!(matches!(
        store.outbox_item(c1).unwrap().unwrap().state,
        OutboxState::Withdrawn { corrected_by, .. } if corrected_by == c2
    ));

    // A wipe loses the correction only: the refused version was never going
    // to reach the endpoint.
    let store = match store.wipe(2) {
        Err(WipeError::Refused {
            store,
            error: StoreError::UnsyncedItems { count: 1 },
        }) => *store,
        other => panic!("expected a refusal counting one change, got {other:?}"),
    };
    assert_eq!(store.wipe(1).unwrap().discarded_unsynced, 1);
}

#[test]
fn correcting_the_newest_of_refused_changes_built_on_each_other_withdraws_them_all() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 3);
    // Amended twice before the first amendment's refusal came back; the
    // endpoint refused both.
    let (v1, v1b, c1, c1b) = amend_twice(&mut store, &v0, "First amendment.", "Second amendment.");
    store.mark_sent(&[c1, c1b]).unwrap();
    assert_eq!(store.acknowledge(&[c1, c1b].map(refusal)).unwrap(), 2);

    let before = snapshot(&store, &v0);
    let naive = correction_of(&store, c1b, &v1);
    match store.correct_rejected(c1, &naive) {
        Err(StoreError::RejectedChangeAmended {
            change_id,
            amended_by,
        }) => assert_eq!((change_id, amended_by), (c1, v1b.meta.version_id)),
        other => panic!("the older refused change is amended: {other:?}"),
    }
    assert_eq!(snapshot(&store, &v0), before, "nothing changed");

    let base = store.correction_base(c1b).unwrap();
    assert_eq!(base.supersedes, Some(v0.meta.version_id));
    assert_eq!(base.withdraws, [c1b, c1], "newest first");
    let v2 = correction_of(&store, c1b, &v1b);
    let c2 = store.correct_rejected(c1b, &v2).unwrap();

    for id in [c1, c1b] {
        assert_eq!(
            store.outbox_item(id).unwrap().unwrap().state,
            OutboxState::Withdrawn {
                reason: REASON.into(),
                corrected_by: c2
            }
        );
    }
    let now = current(&store, &v0);
    assert_eq!(now.head, Head::Single(v2.meta.version_id));
    assert_eq!(now.version_count, 4);
    let counts = store.outbox_counts().unwrap();
    assert_eq!(
        (counts.withdrawn, counts.rejected, counts.unsynced()),
        (2, 0, 1)
    );
}

#[test]
fn every_refused_correction_changes_nothing() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = sample::new_visit(4, morning());
    let c0 = save(&mut store, &v0);
    accept(&mut store, c0);
    let v1 = sample::amend_visit(&v0, "phone-1", "Refused amendment.");
    let c1 = save(&mut store, &v1);
    reject(&mut store, c1);
    let elsewhere = sample::new_visit(5, morning());
    let pending = save(&mut store, &elsewhere);
    let good = correction_of(&store, c1, &v1);
    let before = snapshot(&store, &v0);

    let invalid = |field: &'static str| {
        move |result: Result<ChangeId, StoreError>| match result {
            Err(StoreError::Invalid(e)) => assert_eq!(e.field, field),
            other => panic!("expected a refusal on {field}, got {other:?}"),
        }
    };
    // Unknown and unrejected items.
    let unknown = ChangeId(Uuid::now_v7());
    assert!(matches!(
        store.correct_rejected(unknown, &good),
        Err(StoreError::UnknownChange(id)) if id == unknown
    ));
    for (id, state) in [(c0, "accepted"), (pending, "pending")] {
        match store.correct_rejected(id, &good) {
            Err(StoreError::NotRejected {
                change_id,
                state: found,
            }) => assert_eq!((change_id, found), (id, state)),
            other => panic!("expected a refusal of a {state} item, got {other:?}"),
        }
    }
    // Another record.
    let mut other_record = good.clone();
    other_record.meta.record_id = elsewhere.meta.record_id;
    invalid("meta.record_id")(store.correct_rejected(c1, &other_record));
    // Another kind of record.
    let mut review = sample::new_review(4, jiff::civil::date(2026, 11, 24));
    review.meta = good.meta.clone();
    invalid("meta.record_id")(store.correct_rejected(c1, &review));
    // The naive amendment of the refused version, and a second first version.
    let naive = sample::amend_visit(&v1, "phone-1", "Amends the refused version.");
    invalid("meta.supersedes")(store.correct_rejected(c1, &naive));
    let mut unrooted = good.clone();
    unrooted.meta.supersedes = None;
    invalid("meta.supersedes")(store.correct_rejected(c1, &unrooted));
    // A version id already stored.
    let mut reused = good.clone();
    reused.meta.version_id = v1.meta.version_id;
    invalid("meta.version_id")(store.correct_rejected(c1, &reused));
    // Content that fails the domain's checks.
    let mut broken = good.clone();
    broken.content.departed_at = Some(broken.content.arrived_at - SignedDuration::from_mins(1));
    invalid("content.departed_at")(store.correct_rejected(c1, &broken));

    assert_eq!(snapshot(&store, &v0), before);
    assert_eq!(store.rejected_items().unwrap().len(), 1);

    // The good one goes through; a second tap finds the item withdrawn.
    let c2 = store.correct_rejected(c1, &good).unwrap();
    let after = snapshot(&store, &v0);
    let mut again = good.clone();
    again.meta.version_id = VersionId(Uuid::now_v7());
    assert!(matches!(
        store.correct_rejected(c1, &again),
        Err(StoreError::NotRejected {
            state: "withdrawn",
            ..
        })
    ));
    assert!(matches!(
        store.correction_base(c1),
        Err(StoreError::NotRejected {
            state: "withdrawn",
            ..
        })
    ));
    assert_eq!(snapshot(&store, &v0), after);
    assert_eq!(
        store.outbox_item(c2).unwrap().unwrap().version_id,
        good.meta.version_id
    );
}

#[test]
fn a_refused_change_amended_by_a_version_the_endpoint_took_cannot_be_corrected() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 6);
    let (_, v1b, c1, c1b) = amend_twice(&mut store, &v0, "Refused.", "Taken on top of it.");
    store.mark_sent(&[c1, c1b]).unwrap();
    // An endpoint built before it refused what amends a version refused in
    // the same push answers so: v1 refused, v1b taken (forking the record
    // there). v1b keeps its own answer, though v1's refusal comes first.
    let answers = [refusal(c1), (c1b, Acknowledgement::Accepted)];
    assert_eq!(store.acknowledge(&answers).unwrap(), 2);
    assert_eq!(
        store.outbox_item(c1b).unwrap().unwrap().state,
        OutboxState::Accepted
    );
    let before = snapshot(&store, &v0);

    // Withdrawing v1 would leave v1b, which the endpoint holds, amending a
    // version withdrawn here. Shaped as a correction of v1 must be:
    // superseding v0.
    let correction = sample::amend_visit(&v0, "phone-1", "Put right.");
    assert!(matches!(
        store.correction_base(c1),
        Err(StoreError::RejectedChangeAmended { change_id, amended_by })
            if change_id == c1 && amended_by == v1b.meta.version_id
    ));
    assert!(matches!(
        store.correct_rejected(c1, &correction),
        Err(StoreError::RejectedChangeAmended { .. })
    ));
    assert!(matches!(
        store.correct_rejected(c1b, &correction),
        Err(StoreError::NotRejected {
            state: "accepted",
            ..
        })
    ));
    assert_eq!(snapshot(&store, &v0), before);
}

/// Asserts that the store refused `held` itself because it builds on
/// `refused`, which the endpoint refused: the reason names that change and
/// carries nothing of the record.
fn assert_held_back_behind(
    store: &Store,
    held: ChangeId,
    version: &VisitRecord,
    refused: ChangeId,
) {
    let item = store.outbox_item(held).unwrap().unwrap();
    let OutboxState::Rejected { reason } = &item.state else {
        panic!("{held} is {:?}, not rejected", item.state);
    };
    assert!(reason.contains("builds on"), "{reason}");
    assert!(reason.contains(&refused.to_string()), "{reason}");
    for clinical in [
        version.content.treatment.as_str(),
        version.content.patient.as_str(),
    ] {
        assert!(!reason.contains(clinical), "no clinical text: {reason}");
    }
}

#[test]
fn amendments_queued_on_a_refused_change_are_refused_with_it_all_the_way_up_the_chain() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 9);
    // Amended three times before the first amendment's refusal came back;
    // only the first was pushed (in a push of its own).
    let (v1, c1) = queued(&mut store, &v0, "First amendment.");
    let (v1b, c1b) = queued(&mut store, &v1, "Second amendment.");
    let (v1c, c1c) = queued(&mut store, &v1b, "Third amendment.");
    let elsewhere = save(&mut store, &sample::new_visit(10, morning()));
    store.mark_sent(&[c1]).unwrap();
    reject(&mut store, c1);

    // Pushed, v1b would reach the endpoint amending a version it never
    // holds: the record would fork there and on every device.
    assert_held_back_behind(&store, c1b, &v1b, c1);
    assert_held_back_behind(&store, c1c, &v1c, c1);
    let pushed = next_push(&store);
    assert_eq!(pushed, [elsewhere], "another record's change still goes");
    let listed: Vec<_> = store
        .rejected_items()
        .unwrap()
        .iter()
        .map(|i| i.change_id)
        .collect();
    assert_eq!(listed, [c1, c1b, c1c]);
    let counts = store.outbox_counts().unwrap();
    assert_eq!((counts.rejected, counts.unsynced()), (3, 4));

    // Correcting the newest withdraws them all and supersedes v0.
    let base = store.correction_base(c1c).unwrap();
    assert_eq!(base.supersedes, Some(v0.meta.version_id));
    assert_eq!(base.withdraws, [c1c, c1b, c1]);
    let v2 = correction_of(&store, c1c, &v1c);
    let c2 = store.correct_rejected(c1c, &v2).unwrap();
    let now = current(&store, &v0);
    assert_eq!(now.head, Head::Single(v2.meta.version_id));
    assert_eq!(now.version_count, 5);
    for id in [c1, c1b, c1c] {
        assert!(matches!(
            store.outbox_item(id).unwrap().unwrap().state,
            OutboxState::Withdrawn { corrected_by, .. } if corrected_by == c2
        ));
    }
    let pushed = next_push(&store);
    assert_eq!(pushed, [elsewhere, c2]);
}

#[test]
fn an_amendment_sent_with_a_change_refused_alone_is_refused_with_it() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 11);
    let (_, v1b, c1, c1b) = amend_twice(&mut store, &v0, "Refused.", "Sent with it.");
    // Both were sent; the answer names v1 alone and v1b has no answer of its
    // own: a 422 from an endpoint that names only the change that failed its
    // checks, or a push answered 413 and halved, v1 then refused as too large
    // on its own. Pushed again, v1b would be taken and fork the record.
    store.mark_sent(&[c1, c1b]).unwrap();
    reject(&mut store, c1);

    assert_held_back_behind(&store, c1b, &v1b, c1);
    assert!(store.push_batch(up_to(10)).unwrap().is_empty());
    assert_eq!(store.outbox_counts().unwrap().sent, 0);
    let v2 = correction_of(&store, c1b, &v1b);
    store.correct_rejected(c1b, &v2).unwrap();
    assert_eq!(current(&store, &v0).head, Head::Single(v2.meta.version_id));
}

#[test]
fn sending_a_refused_change_again_leaves_its_amendments_refused_until_they_are_sent_after_it() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 12);
    let (_, v1b, c1, c1b) = amend_twice(&mut store, &v0, "Refused.", "Queued on top of it.");
    store.mark_sent(&[c1]).unwrap();
    reject(&mut store, c1);
    assert_held_back_behind(&store, c1b, &v1b, c1);

    // Sent alone, v1b would fork the record at the endpoint.
    let before = snapshot(&store, &v0);
    assert!(matches!(
        store.requeue_rejected(c1b),
        Err(StoreError::BuildsOnRejected { change_id, rejected })
            if change_id == c1b && rejected == c1
    ));
    assert_eq!(snapshot(&store, &v0), before, "nothing changed");

    // v1 again: v1b stays refused until the clinician sends it again too,
    // which it may now that v1 is queued; it goes behind v1.
    store.requeue_rejected(c1).unwrap();
    assert_held_back_behind(&store, c1b, &v1b, c1);
    assert_eq!(next_push(&store), [c1]);
    store.requeue_rejected(c1b).unwrap();
    assert_eq!(next_push(&store), [c1, c1b]);

    // Refused again in a push of its own: v1b is held back again.
    store.mark_sent(&[c1]).unwrap();
    reject(&mut store, c1);
    assert_held_back_behind(&store, c1b, &v1b, c1);

    // Both sent again, and taken this time.
    store.requeue_rejected(c1).unwrap();
    store.requeue_rejected(c1b).unwrap();
    store.mark_sent(&[c1, c1b]).unwrap();
    let taken = [
        (c1, Acknowledgement::Accepted),
        (c1b, Acknowledgement::Accepted),
    ];
    assert_eq!(store.acknowledge(&taken).unwrap(), 2);
    assert_eq!(current(&store, &v0).head, Head::Single(v1b.meta.version_id));
    assert_eq!(store.outbox_counts().unwrap().unsynced(), 0);
}

#[test]
fn neither_a_refused_nor_a_withdrawn_version_can_be_amended_but_the_correction_can() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 7);
    let v1 = sample::amend_visit(&v0, "phone-1", "Refused.");
    let c1 = save(&mut store, &v1);
    reject(&mut store, c1);

    let refused_save = |store: &mut Store, version: &VisitRecord| {
        let before = snapshot(store, &v0);
        match store.save(version) {
            Err(StoreError::Invalid(e)) => assert_eq!(e.field, "meta.supersedes"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(snapshot(store, &v0), before);
    };
    // Today's way of correcting, amending the refused version, would fork
    // the record at the endpoint: refused.
    refused_save(
        &mut store,
        &sample::amend_visit(&v1, "phone-1", "Amends the refused version."),
    );

    let v2 = correction_of(&store, c1, &v1);
    store.correct_rejected(c1, &v2).unwrap();
    // Amending the withdrawn version would bring the fork back: refused.
    refused_save(
        &mut store,
        &sample::amend_visit(&v1, "phone-1", "Amends the withdrawn version."),
    );
    // A new first version of the record only comes through a correction.
    let mut first = sample::new_visit(7, morning());
    first.meta.record_id = v0.meta.record_id;
    refused_save(&mut store, &first);
    // The correction is amended like any version.
    let v3 = sample::amend_visit(&v2, "phone-1", "Amends the correction.");
    save(&mut store, &v3);
    assert_eq!(current(&store, &v0).head, Head::Single(v3.meta.version_id));
}

#[test]
fn the_correction_pulled_back_is_recognised_as_held_and_the_record_stays_single() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 8);
    let v1 = sample::amend_visit(&v0, "phone-1", "Refused.");
    let c1 = save(&mut store, &v1);
    reject(&mut store, c1);
    let v2 = correction_of(&store, c1, &v1);
    let c2 = store.correct_rejected(c1, &v2).unwrap();
    accept(&mut store, c2);

    // What the endpoint serves: v0 and v2, never v1.
    let mut batch = PullBatch::new(SyncCursor("c-1".into()));
    batch.records = vec![
        PulledRecord::Visit(v0.clone()),
        PulledRecord::Visit(v2.clone()),
    ];
    let report = store.apply_pull(&batch).unwrap();
    assert_eq!((report.new_versions, report.known_versions), (0, 2));
    let now = current(&store, &v0);
    assert_eq!(now.head, Head::Single(v2.meta.version_id));
    assert_eq!(now.version_count, 3);
    assert!(matches!(
        store.outbox_item(c1).unwrap().unwrap().state,
        OutboxState::Withdrawn { .. }
    ));
    assert_eq!(store.outbox_counts().unwrap().unsynced(), 0);
}

#[test]
fn saving_a_refused_version_again_is_refused_saying_how_to_put_it_right() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 7);
    let v1 = sample::amend_visit(&v0, "phone-1", "Paracetamol given.");
    let c1 = save(&mut store, &v1);
    store.mark_sent(&[c1]).unwrap();
    reject(&mut store, c1);
    let before = snapshot(&store, &v0);
    match store.save(&v1) {
        Err(
            e @ StoreError::AlreadyRefused {
                change_id,
                version_id,
            },
        ) if change_id == c1 && version_id == v1.meta.version_id => {
            let said = e.to_string();
            assert!(said.contains("correct"), "{said}");
            assert!(!said.contains("Paracetamol"), "no clinical text: {said}");
        }
        other => panic!("expected AlreadyRefused naming {c1}, got {other:?}"),
    }
    assert_eq!(
        snapshot(&store, &v0),
        before,
        "saving again changed nothing"
    );

    // Corrected, the refused version is withdrawn: the answer names the
    // correction, the version to amend now.
    let v2 = correction_of(&store, c1, &v1);
    let c2 = store.correct_rejected(c1, &v2).unwrap();
    let before = snapshot(&store, &v0);
    match store.save(&v1) {
        Err(
            e @ StoreError::AlreadyWithdrawn {
                change_id,
                corrected_by,
                ..
            },
        ) if change_id == c1 && corrected_by == c2 => {
            let said = e.to_string();
            assert!(said.contains(&c2.to_string()), "{said}");
            assert!(said.contains("amend"), "{said}");
        }
        other => panic!("expected AlreadyWithdrawn naming {c2}, got {other:?}"),
    }
    assert_eq!(snapshot(&store, &v0), before);
    assert_tally(&store, (1, 1, 0, 1), 1);
}

#[test]
fn an_edited_version_saved_under_a_refused_versions_id_is_refused_as_that_change() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 14);
    let v1 = sample::amend_visit(&v0, "phone-1", "Paracetamol given.");
    let c1 = save(&mut store, &v1);
    reject(&mut store, c1);
    // The refused version put right on an edit screen that kept its id:
    // that id is the refused change's, so this is not a new change, and the
    // way on is a correction.
    let mut edited = v1.clone();
    edited.content.treatment =
        FreeText::parse("treatment", "Paracetamol 1 g given at 10:05.").unwrap();
    let before = snapshot(&store, &v0);
    assert!(matches!(
        store.save(&edited),
        Err(StoreError::AlreadyRefused { change_id, .. }) if change_id == c1
    ));
    assert_eq!(snapshot(&store, &v0), before, "nothing saved");
    let v2 = correction_of(&store, c1, &v1);
    let c2 = store.correct_rejected(c1, &v2).unwrap();
    let before = snapshot(&store, &v0);
    assert!(matches!(
        store.save(&edited),
        Err(StoreError::AlreadyWithdrawn { corrected_by, .. }) if corrected_by == c2
    ));
    assert_eq!(snapshot(&store, &v0), before, "nothing saved");
    assert_tally(&store, (1, 1, 0, 1), 1);
}

#[test]
fn two_amendments_of_one_refused_change_are_each_corrected_and_none_stays_stuck() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 13);
    // v1 queued, then amended twice from the same base (two edit screens
    // opened on it, or a save retried under a new version id) before the
    // endpoint refused it: both are held back with it.
    let (v1, c1) = queued(&mut store, &v0, "Refused.");
    let (a, ca) = queued(&mut store, &v1, "One screen's edit.");
    let (b, cb) = queued(&mut store, &v1, "The other screen's edit.");
    store.mark_sent(&[c1]).unwrap();
    reject(&mut store, c1);
    assert_held_back_behind(&store, ca, &a, c1);
    assert_held_back_behind(&store, cb, &b, c1);
    // v1 itself is still put right through its newest amendment.
    assert!(matches!(
        store.correction_base(c1),
        Err(StoreError::RejectedChangeAmended { change_id, .. }) if change_id == c1
    ));

    // Correcting b withdraws b and v1: a never reached the endpoint either,
    // so it does not stop the correction, and stays rejected on its own.
    let base = store.correction_base(cb).unwrap();
    assert_eq!(base.supersedes, Some(v0.meta.version_id));
    assert_eq!(base.withdraws, [cb, c1]);
    let b2 = correction_of(&store, cb, &b);
    let cb2 = store.correct_rejected(cb, &b2).unwrap();
    for id in [cb, c1] {
        assert!(matches!(
            store.outbox_item(id).unwrap().unwrap().state,
            OutboxState::Withdrawn { corrected_by, .. } if corrected_by == cb2
        ));
    }
    assert_held_back_behind(&store, ca, &a, c1);
    let listed: Vec<_> = store
        .rejected_items()
        .unwrap()
        .iter()
        .map(|i| i.change_id)
        .collect();
    assert_eq!(listed, [ca]);

    // Sent again, a would reach the endpoint amending a version it never
    // holds: refused, and nothing changes.
    let before = snapshot(&store, &v0);
    assert!(matches!(
        store.requeue_rejected(ca),
        Err(StoreError::BuildsOnWithdrawn { change_id, withdrawn })
            if change_id == ca && withdrawn == c1
    ));
    assert_eq!(snapshot(&store, &v0), before);

    // Its correction takes v1's place too: it supersedes v0, and withdraws
    // a alone (v1 is withdrawn already, by b's correction).
    let base = store.correction_base(ca).unwrap();
    assert_eq!(base.supersedes, Some(v0.meta.version_id));
    assert_eq!(base.withdraws, [ca]);
    let a2 = correction_of(&store, ca, &a);
    let ca2 = store.correct_rejected(ca, &a2).unwrap();
    assert!(matches!(
        store.outbox_item(ca).unwrap().unwrap().state,
        OutboxState::Withdrawn { reason, corrected_by }
            if corrected_by == ca2 && reason.contains("builds on")
    ));
    assert!(matches!(
        store.outbox_item(c1).unwrap().unwrap().state,
        OutboxState::Withdrawn { corrected_by, .. } if corrected_by == cb2
    ));

    // Nothing is left rejected; the two corrections go, and the record forks
    // where the clinician forked it, at v0, to be reconciled once synced.
    assert!(store.rejected_items().unwrap().is_empty());
    assert_tally(&store, (1, 2, 0, 3), 2);
    let pushed = next_push(&store);
    assert_eq!(pushed, [cb2, ca2]);
    let Head::Forked(heads) = current(&store, &v0).head else {
        panic!("a and b were two edits of one version");
    };
    assert_eq!(heads.len(), 2);
    assert!(heads.contains(&a2.meta.version_id) && heads.contains(&b2.meta.version_id));
    store.mark_sent(&[cb2, ca2]).unwrap();
    let taken = [
        (cb2, Acknowledgement::Accepted),
        (ca2, Acknowledgement::Accepted),
    ];
    assert_eq!(store.acknowledge(&taken).unwrap(), 2);
    assert_eq!(store.outbox_counts().unwrap().unsynced(), 0);
}

/// The reason `id` is rejected for, as the store gives it.
fn rejection_reason(store: &Store, id: ChangeId) -> String {
    match store.outbox_item(id).unwrap().unwrap().state {
        OutboxState::Rejected { reason } => reason,
        other => panic!("{id} is {other:?}, not rejected"),
    }
}

/// Asserts that `held`, rejected behind `refused`, which a correction has
/// since withdrawn, is told what it can do: be corrected, not sent again
/// after `refused`, which can never be sent again.
fn assert_told_to_correct(store: &Store, held: ChangeId, version: &VisitRecord, refused: ChangeId) {
    assert_held_back_behind(store, held, version, refused);
    let reason = rejection_reason(store, held);
    assert!(
        !reason.contains(&format!("send change {refused} again")),
        "{reason}"
    );
    assert!(reason.contains("withdrawn"), "{reason}");
    assert!(
        reason.contains("Correct the newest change of its branch"),
        "{reason}"
    );
    let listed = store.rejected_items().unwrap();
    let shown = listed.iter().find(|i| i.change_id == held).unwrap();
    assert_eq!(
        shown.state,
        OutboxState::Rejected { reason },
        "listed with the same reason"
    );
}

/// `base` amended on this device with `treatment` and saved: the version
/// and its change id.
fn queued(store: &mut Store, base: &VisitRecord, treatment: &str) -> (VisitRecord, ChangeId) {
    let version = sample::amend_visit(base, "phone-1", treatment);
    let change = save(store, &version);
    (version, change)
}

/// Two branches queued on `v1`, an amendment of `v0`: the two edit screens
/// opened on `v1` (`a` and `b`), and `a` amended again (`a_more`), all
/// saved, in that order, before any answer came. Returns `a`, `a_more` and
/// `b`, then the change ids of `v1`, `a`, `a_more` and `b`.
fn two_branches(store: &mut Store, v0: &VisitRecord) -> ([VisitRecord; 3], [ChangeId; 4]) {
    let (v1, c1) = queued(store, v0, "Refused.");
    let (a, ca) = queued(store, &v1, "One screen's edit.");
    let (a_more, ca_more) = queued(store, &a, "Amended on top of it.");
    let (b, cb) = queued(store, &v1, "The other screen's edit.");
    ([a, a_more, b], [c1, ca, ca_more, cb])
}

/// `v1`, an amendment of `v0`, amended by `a`, and `a` amended twice from
/// the same base (`b1` and `b2`: two edit screens on it), all saved before
/// `v1`, sent alone, was refused: the store holds back `a`, `b1` and `b2`,
/// each naming `v1`. Returns `b1` and `b2`, then the change ids of `v1`,
/// `a`, `b1` and `b2`.
fn fork_above_refused(store: &mut Store, v0: &VisitRecord) -> ([VisitRecord; 2], [ChangeId; 4]) {
    let (v1, c1) = queued(store, v0, "Refused.");
    let (a, ca) = queued(store, &v1, "Built on it.");
    let (b1, cb1) = queued(store, &a, "One screen's edit.");
    let (b2, cb2) = queued(store, &a, "The other screen's edit.");
    store.mark_sent(&[c1]).unwrap();
    reject(store, c1);
    ([b1, b2], [c1, ca, cb1, cb2])
}

#[test]
fn once_a_correction_withdraws_a_refused_change_its_other_branch_is_told_to_be_corrected() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 15);
    // Two edits of v1, the first amended again, all before v1's refusal.
    let ([a, a_more, b], [c1, ca, ca_more, cb]) = two_branches(&mut store, &v0);
    store.mark_sent(&[c1]).unwrap();
    reject(&mut store, c1);
    assert!(rejection_reason(&store, ca).contains(&format!("send change {c1} again")));

    let b2 = correction_of(&store, cb, &b);
    let cb2 = store.correct_rejected(cb, &b2).unwrap();
    for (id, version) in [(ca, &a), (ca_more, &a_more)] {
        assert_told_to_correct(&store, id, version, c1);
        assert!(rejection_reason(&store, id).contains(&cb2.to_string()));
    }

    // What the reason says is what the store lets the clinician do: v1
    // cannot go first, so neither can a; its branch's newest is corrected,
    // and that correction withdraws the branch.
    assert!(matches!(
        store.requeue_rejected(ca),
        Err(StoreError::BuildsOnWithdrawn { withdrawn, .. }) if withdrawn == c1
    ));
    let base = store.correction_base(ca_more).unwrap();
    assert_eq!(base.withdraws, [ca_more, ca]);
    assert_eq!(base.supersedes, Some(v0.meta.version_id));
    let a2 = correction_of(&store, ca_more, &a_more);
    store.correct_rejected(ca_more, &a2).unwrap();
    assert!(store.rejected_items().unwrap().is_empty());
    assert_tally(&store, (1, 2, 0, 4), 2);
}

#[test]
fn the_endpoints_own_reason_on_the_other_branch_is_kept_when_a_correction_withdraws_its_base() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 16);
    let ([_, a_more, b], [c1, ca, ca_more, cb]) = two_branches(&mut store, &v0);
    // The endpoint refused v1 and a in one push, each with a reason of its
    // own; the store held back b behind v1 and a_more behind a.
    store.mark_sent(&[c1, ca]).unwrap();
    let endpoints = "amends a version refused in this push, so it is refused with it";
    let answers = [
        refusal(c1),
        (
            ca,
            Acknowledgement::Rejected {
                reason: endpoints.into(),
            },
        ),
    ];
    assert_eq!(store.acknowledge(&answers).unwrap(), 2);
    assert_held_back_behind(&store, ca_more, &a_more, ca);

    let b2 = correction_of(&store, cb, &b);
    store.correct_rejected(cb, &b2).unwrap();
    assert_eq!(
        rejection_reason(&store, ca),
        endpoints,
        "the endpoint's words are kept"
    );
    // a cannot be sent again now, so neither can a_more after it.
    let reason = rejection_reason(&store, ca_more);
    assert!(!reason.contains("again, then this one"), "{reason}");
    assert_told_to_correct(&store, ca_more, &a_more, c1);
}

#[test]
fn a_branch_held_back_behind_a_change_since_sent_again_is_told_to_be_corrected_once_its_base_is_withdrawn()
 {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 17);
    let ([b1, b2], [c1, ca, cb1, cb2]) = fork_above_refused(&mut store, &v0);
    assert_held_back_behind(&store, cb2, &b2, c1);

    // v1 goes again and is taken; the rest stay held back, still naming v1.
    store.requeue_rejected(c1).unwrap();
    assert_eq!(next_push(&store), [c1]);
    store.mark_sent(&[c1]).unwrap();
    accept(&mut store, c1);

    // Correcting b1 withdraws b1 and a, not v1, which the endpoint holds:
    // b2, which amends a, can no longer go after it, and its reason, naming
    // v1, must say so.
    let base = store.correction_base(cb1).unwrap();
    assert_eq!(base.withdraws, [cb1, ca]);
    let b1_fixed = correction_of(&store, cb1, &b1);
    let cb1_fixed = store.correct_rejected(cb1, &b1_fixed).unwrap();
    assert!(matches!(
        store.requeue_rejected(cb2),
        Err(StoreError::BuildsOnWithdrawn { withdrawn, .. }) if withdrawn == ca
    ));
    assert_told_to_correct(&store, cb2, &b2, ca);
    let reason = rejection_reason(&store, cb2);
    assert!(reason.contains(&cb1_fixed.to_string()), "{reason}");
    assert!(!reason.contains(&c1.to_string()), "{reason}");

    // As it says, b2 is corrected, and nothing is left rejected.
    let b2_fixed = correction_of(&store, cb2, &b2);
    store.correct_rejected(cb2, &b2_fixed).unwrap();
    assert!(store.rejected_items().unwrap().is_empty());
    assert_tally(&store, (2, 2, 0, 3), 2);
}

#[test]
fn a_withdrawn_change_the_store_held_back_is_not_said_to_have_been_refused_by_the_endpoint() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 18);
    let ([b1, b2], [c1, ca, cb1, cb2]) = fork_above_refused(&mut store, &v0);

    // Correcting b1 withdraws b1, a and v1. b2 amends a, which the endpoint
    // never saw: the store held it back with v1.
    let base = store.correction_base(cb1).unwrap();
    assert_eq!(base.withdraws, [cb1, ca, c1]);
    let b1_fixed = correction_of(&store, cb1, &b1);
    store.correct_rejected(cb1, &b1_fixed).unwrap();
    assert_told_to_correct(&store, cb2, &b2, ca);
    let reason = rejection_reason(&store, cb2);
    assert!(!reason.contains("the endpoint refused"), "{reason}");
    assert!(
        reason.contains("held back with a refused change"),
        "{reason}"
    );
}

#[test]
fn saving_a_version_whose_correction_was_refused_and_corrected_in_turn_names_the_live_correction() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 19);
    let v1 = sample::amend_visit(&v0, "phone-1", "Paracetamol given.");
    let c1 = save(&mut store, &v1);
    reject(&mut store, c1);
    // Corrected, and the correction refused and corrected in turn: v1's
    // correction is withdrawn too, and cannot be amended.
    let v2 = correction_of(&store, c1, &v1);
    let c2 = store.correct_rejected(c1, &v2).unwrap();
    store.mark_sent(&[c2]).unwrap();
    reject(&mut store, c2);
    let v3 = correction_of(&store, c2, &v2);
    let c3 = store.correct_rejected(c2, &v3).unwrap();

    for (refused, change) in [(&v1, c1), (&v2, c2)] {
        let before = snapshot(&store, &v0);
        match store.save(refused) {
            Err(
                e @ StoreError::AlreadyWithdrawn {
                    change_id,
                    corrected_by,
                    ..
                },
            ) if change_id == change && corrected_by == c3 => {
                assert!(e.to_string().contains(&c3.to_string()), "{e}");
            }
            other => panic!("expected AlreadyWithdrawn naming {c3}, got {other:?}"),
        }
        assert_eq!(snapshot(&store, &v0), before, "nothing saved");
    }
    // The correction named is the one that can be amended.
    let v4 = sample::amend_visit(&v3, "phone-1", "Amended after all that.");
    store.save(&v4).unwrap();
}

#[test]
fn saving_again_a_change_the_store_held_back_points_at_its_reason_not_at_sending_it_again() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let v0 = synced_visit(&mut store, 20);
    let (v1, a, c1, ca) = amend_twice(&mut store, &v0, "Refused.", "Held back with it.");
    store.mark_sent(&[c1]).unwrap();
    reject(&mut store, c1);
    assert_held_back_behind(&store, ca, &a, c1);
    let before = snapshot(&store, &v0);
    let said = match store.save(&a) {
        Err(e @ StoreError::AlreadyRefused { change_id, .. }) if change_id == ca => e.to_string(),
        other => panic!("expected AlreadyRefused naming {ca}, got {other:?}"),
    };
    assert_eq!(snapshot(&store, &v0), before, "nothing saved");
    // Sent again now, it fails: the message offers no such way, and points
    // at the item's own reason, which says what works.
    assert!(matches!(
        store.requeue_rejected(ca),
        Err(StoreError::BuildsOnRejected { rejected, .. }) if rejected == c1
    ));
    assert!(!said.contains("send it again"), "{said}");
    assert!(said.contains("reason"), "{said}");
    assert!(!said.contains(v1.content.treatment.as_str()), "{said}");
}
