//! Reconciling a forked record: a version that amends one head and merges
//! the others makes the record one line again, on this device and (pushed)
//! everywhere. A merge is checked like an amendment, and more strictly: it
//! names only versions of its own record that the endpoint holds. Every
//! refusal changes nothing.

use doorstep_domain::history::Head;
use doorstep_domain::record::{VersionId, VisitContent, VisitRecord};
use doorstep_store::{
    Acknowledgement, ChangeId, CorrectionBase, PullBatch, PulledRecord, Store, StoreError,
    SyncCursor,
};
use uuid::Uuid;

use crate::{Fixture, morning, sample};

fn save(store: &mut Store, version: &VisitRecord) -> ChangeId {
    store.save(version).unwrap().change_id().unwrap()
}

fn pull(store: &mut Store, cursor: &str, versions: &[&VisitRecord]) {
    let mut batch = PullBatch::new(SyncCursor(cursor.into()));
    batch.records = versions
        .iter()
        .map(|v| PulledRecord::Visit((*v).clone()))
        .collect();
    store.apply_pull(&batch).unwrap();
}

/// A version amending `kept` that merges `others`, with `kept`'s content.
fn reconciling(kept: &VisitRecord, others: &[&VisitRecord]) -> VisitRecord {
    let mut version = sample::amend_visit(kept, "phone-1", "Both treatments, reconciled.");
    version.meta.merges = others.iter().map(|o| o.meta.version_id).collect();
    version
}

/// A store holding a record whose first version this device wrote and the
/// endpoint accepted, amended here (queued) and on another device (pulled):
/// forked. Returns the store, the first version, the local and the pulled
/// amendment.
fn forked(f: &Fixture) -> (Store, VisitRecord, VisitRecord, VisitRecord) {
    let mut store = f.open().unwrap();
    let first = sample::new_visit(1, morning());
    let id = save(&mut store, &first);
    store
        .acknowledge(&[(id, Acknowledgement::Accepted)])
        .unwrap();
    let local = sample::amend_visit(&first, "phone-1", "Local amendment.");
    save(&mut store, &local);
    let remote = sample::amend_visit(&first, "ipad-7", "Remote amendment.");
    pull(&mut store, "c-1", &[&remote]);
    let head = store
        .current::<VisitContent>(first.meta.record_id)
        .unwrap()
        .unwrap()
        .head;
    assert!(head.is_forked(), "{head:?}");
    (store, first, local, remote)
}

/// The head of `version`'s record on this device, which must hold it.
fn head_of(store: &Store, version: &VisitRecord) -> Head {
    store
        .current::<VisitContent>(version.meta.record_id)
        .unwrap()
        .expect("the device holds the record")
        .head
}

/// A record pulled whole, forked: its first version and two amendments of it
/// from two other devices.
fn pulled_fork(store: &mut Store) -> (VisitRecord, VisitRecord, VisitRecord) {
    let first = sample::new_visit(1, morning());
    let a = sample::amend_visit(&first, "ipad-7", "One branch.");
    let b = sample::amend_visit(&first, "ipad-8", "The other branch.");
    pull(store, "c-1", &[&first, &a, &b]);
    (first, a, b)
}

/// A record forked and reconciled here: its first version and their branch
/// pulled, our branch saved here and accepted, and a merge keeping theirs
/// and merging ours, queued. Returns our branch, theirs and the merge, then
/// the change ids of our branch and of the merge.
fn merged_over_ours(
    store: &mut Store,
) -> (VisitRecord, VisitRecord, VisitRecord, ChangeId, ChangeId) {
    let first = sample::new_visit(1, morning());
    pull(store, "c-1", &[&first]);
    let ours = sample::amend_visit(&first, "phone-1", "Our branch.");
    let ours_change = save(store, &ours);
    store
        .acknowledge(&[(ours_change, Acknowledgement::Accepted)])
        .unwrap();
    let theirs = sample::amend_visit(&first, "ipad-7", "Their branch.");
    pull(store, "c-2", &[&theirs]);
    let merge = reconciling(&theirs, &[&ours]);
    let merge_change = save(store, &merge);
    (ours, theirs, merge, ours_change, merge_change)
}

/// The endpoint refuses `id`.
fn refuse(store: &mut Store, id: ChangeId) {
    store
        .acknowledge(&[(
            id,
            Acknowledgement::Rejected {
                reason: "Invalid: body.record.content: refused".into(),
            },
        )])
        .unwrap();
}

/// The correction of `refused` that `base` asks for: its content, under the
/// envelope the store suggests.
fn corrected(base: &CorrectionBase, refused: &VisitRecord) -> VisitRecord {
    let mut correction = refused.clone();
    correction.meta = base.meta(
        VersionId(Uuid::now_v7()),
        sample::author(),
        sample::device(),
        refused.meta.written_at,
    );
    correction
}

/// Saves `version` expecting a refusal naming `field`, and checks that the
/// record's history is as it was.
fn assert_refused(store: &mut Store, version: &VisitRecord, field: &str) {
    let record = version.meta.record_id;
    let before = store.history::<VisitContent>(record).unwrap().len();
    let unsynced = store.outbox_counts().unwrap().unsynced();
    match store.save(version) {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, field, "{e}"),
        other => panic!("expected a refusal naming {field}, got {other:?}"),
    }
    assert_eq!(store.history::<VisitContent>(record).unwrap().len(), before);
    assert_eq!(store.outbox_counts().unwrap().unsynced(), unsynced);
}

#[test]
fn a_version_merging_the_other_head_makes_the_record_one_line_and_is_queued() {
    let f = Fixture::default();
    let (mut store, first, local, remote) = forked(&f);
    let merge = reconciling(&local, &[&remote]);
    let id = save(&mut store, &merge);
    let current = store
        .current::<VisitContent>(first.meta.record_id)
        .unwrap()
        .unwrap();
    assert_eq!(current.head, Head::Single(merge.meta.version_id));
    assert_eq!(current.version, merge);
    let queued = store.outbox_item(id).unwrap().unwrap();
    assert_eq!(queued.version_id, merge.meta.version_id);
    // Reopened, the merge is read back as written.
    drop(store);
    let store = f.open().unwrap();
    let current = store
        .current::<VisitContent>(first.meta.record_id)
        .unwrap()
        .unwrap();
    assert_eq!(
        (current.head, current.version.meta.merges),
        (
            Head::Single(merge.meta.version_id),
            vec![remote.meta.version_id]
        )
    );
}

#[test]
fn a_merge_names_only_versions_of_its_record_that_the_endpoint_holds() {
    let f = Fixture::default();
    let (mut store, first, local, remote) = forked(&f);
    // The local branch is still queued: the endpoint may yet refuse it.
    assert_refused(&mut store, &reconciling(&remote, &[&local]), "meta.merges");
    // A version this device never held.
    let unseen = sample::amend_visit(&first, "ipad-9", "Never seen here.");
    assert_refused(
        &mut store,
        &reconciling(&local, &[&remote, &unseen]),
        "meta.merges",
    );
    // A version of another record, pulled.
    let other = sample::new_visit(2, morning());
    pull(&mut store, "c-2", &[&other]);
    assert_refused(
        &mut store,
        &reconciling(&local, &[&remote, &other]),
        "meta.merges",
    );
    // Once the local branch is accepted, either head may be kept.
    let local_change = store.outbox_for_record(first.meta.record_id).unwrap()[1].change_id;
    store
        .acknowledge(&[(local_change, Acknowledgement::Accepted)])
        .unwrap();
    let merge = reconciling(&remote, &[&local]);
    save(&mut store, &merge);
    assert_eq!(head_of(&store, &first), Head::Single(merge.meta.version_id));
}

#[test]
fn a_merge_from_another_device_reconciles_the_record_here_too() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let (first, a, b) = pulled_fork(&mut store);
    let mut merge = reconciling(&a, &[&b]);
    merge.meta.device = doorstep_domain::network::DeviceId::parse("ipad-7").unwrap();
    pull(&mut store, "c-2", &[&merge]);
    assert_eq!(head_of(&store, &first), Head::Single(merge.meta.version_id));
}

/// Pulls `batch` expecting a refusal naming `field` and nothing applied.
fn assert_pull_refused(store: &mut Store, versions: &[&VisitRecord], field: &str) {
    let cursor = store.sync_cursor().unwrap();
    let mut batch = PullBatch::new(SyncCursor("refused".into()));
    batch.records = versions
        .iter()
        .map(|v| PulledRecord::Visit((*v).clone()))
        .collect();
    match store.apply_pull(&batch) {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, field, "{e}"),
        other => panic!("expected a refusal naming {field}, got {other:?}"),
    }
    assert_eq!(store.sync_cursor().unwrap(), cursor);
    for v in versions {
        assert!(
            store
                .history::<VisitContent>(v.meta.record_id)
                .unwrap()
                .iter()
                .all(|h| h.version.meta.version_id != v.meta.version_id),
            "a version of the refused batch was stored"
        );
    }
}

#[test]
fn a_pulled_merge_of_another_records_version_or_closing_a_cycle_is_refused_with_its_batch() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let (first, a, b) = pulled_fork(&mut store);
    let other = sample::new_visit(2, morning());
    pull(&mut store, "c-1b", &[&other]);
    assert_pull_refused(
        &mut store,
        &[&reconciling(&a, &[&other])],
        "records[0].meta.merges",
    );
    // `c` amends `a` and merges `d`, which amends `b` and merges `c`: each
    // descends from the other, as only an endpoint that does not check
    // lineage could serve them.
    let mut c = sample::amend_visit(&a, "ipad-7", "Amended again.");
    let mut d = sample::amend_visit(&b, "ipad-8", "Amended again.");
    c.meta.merges = vec![d.meta.version_id];
    d.meta.merges = vec![c.meta.version_id];
    assert_pull_refused(&mut store, &[&c, &d], "records[0].meta.merges");
    assert_eq!(
        store.sync_cursor().unwrap(),
        Some(SyncCursor("c-1b".into()))
    );
    // Without the loop they go in, and the record is one line.
    d.meta.merges.clear();
    c.meta.merges = vec![d.meta.version_id];
    pull(&mut store, "c-2", &[&c, &d]);
    let merge = sample::amend_visit(&c, "ipad-7", "Once more.");
    pull(&mut store, "c-3", &[&merge]);
    assert_eq!(head_of(&store, &first), Head::Single(merge.meta.version_id));
}

#[test]
fn a_refused_merge_is_corrected_by_a_version_that_merges_what_it_merged() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let (first, a, b) = pulled_fork(&mut store);
    let merge = reconciling(&a, &[&b]);
    let id = save(&mut store, &merge);
    refuse(&mut store, id);
    let base = store.correction_base(id).unwrap();
    assert_eq!(
        (base.supersedes, base.merges.clone()),
        (Some(a.meta.version_id), vec![b.meta.version_id])
    );
    let correction = corrected(&base, &merge);
    // A correction merging a version of another record is refused.
    let stray = sample::new_visit(2, morning());
    pull(&mut store, "c-2", &[&stray]);
    let mut wrong = correction.clone();
    wrong.meta.merges.push(stray.meta.version_id);
    match store.correct_rejected(id, &wrong) {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, "meta.merges"),
        other => panic!("expected a refusal naming meta.merges, got {other:?}"),
    }
    store.correct_rejected(id, &correction).unwrap();
    assert_eq!(
        head_of(&store, &first),
        Head::Single(correction.meta.version_id)
    );
}

#[test]
fn a_merge_of_a_change_refused_since_is_held_back_with_it_and_corrected_without_it() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let (_, theirs, merge, ours_change, merge_change) = merged_over_ours(&mut store);
    // The endpoint, restored from an older backup, lost our branch; offered
    // again, it is refused under a rule made since.
    assert_eq!(store.reoffer(&[ours_change]).unwrap(), 1);
    refuse(&mut store, ours_change);
    // The merge waits with it rather than go alone and be refused for
    // merging a version the endpoint does not hold.
    let held = store.outbox_item(merge_change).unwrap().unwrap();
    assert!(
        matches!(&held.state, doorstep_store::OutboxState::Rejected { reason }
            if reason.contains(&ours_change.0.to_string())),
        "{:?}",
        held.state
    );
    assert!(matches!(
        store.requeue_rejected(merge_change),
        Err(StoreError::BuildsOnRejected { rejected, .. }) if rejected == ours_change
    ));
    assert!(matches!(
        store.correction_base(ours_change),
        Err(StoreError::RejectedChangeAmended { amended_by, .. })
            if amended_by == merge.meta.version_id
    ));
    // Corrected, the merge leaves out the branch refused since, so the
    // envelope the store suggests is one it takes.
    let base = store.correction_base(merge_change).unwrap();
    assert_eq!(
        (base.supersedes, base.merges.clone()),
        (Some(theirs.meta.version_id), vec![])
    );
    let correction = corrected(&base, &merge);
    store.correct_rejected(merge_change, &correction).unwrap();
    // Our refused branch can now be corrected in turn.
    assert!(store.correction_base(ours_change).is_ok());
}

#[test]
fn what_a_version_merges_cannot_be_changed_or_deleted_even_below_the_api() {
    let f = Fixture::default();
    let (mut store, first, local, remote) = forked(&f);
    let merge = reconciling(&local, &[&remote]);
    save(&mut store, &merge);
    let conn = crate::raw_connection(&f);
    for sql in [
        "UPDATE version_merges SET merged = version_id",
        "DELETE FROM version_merges",
    ] {
        let err = conn.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(head_of(&store, &first), Head::Single(merge.meta.version_id));
}

#[test]
fn a_merge_held_back_with_a_change_a_correction_then_withdrew_is_told_to_be_corrected() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let (ours, _, merge, ours_change, merge_change) = merged_over_ours(&mut store);
    let ours_more = sample::amend_visit(&ours, "phone-1", "Our branch, amended.");
    let more_change = save(&mut store, &ours_more);
    // Offered again after a restore, our branch is refused: the merge and
    // the amendment are held back with it.
    assert_eq!(store.reoffer(&[ours_change]).unwrap(), 1);
    refuse(&mut store, ours_change);

    // Correcting the amendment withdraws our refused branch: the merge can
    // no longer wait for it to be sent again.
    let base = store.correction_base(more_change).unwrap();
    assert_eq!(base.withdraws, [more_change, ours_change]);
    let correction = corrected(&base, &ours_more);
    store.correct_rejected(more_change, &correction).unwrap();
    let doorstep_store::OutboxState::Rejected { reason } =
        store.outbox_item(merge_change).unwrap().unwrap().state
    else {
        panic!("the merge stays rejected");
    };
    assert!(reason.contains(&ours_change.to_string()), "{reason}");
    assert!(!reason.contains("again, then this one"), "{reason}");
    assert!(
        reason.contains("Correct the newest change of its branch"),
        "{reason}"
    );
    assert!(matches!(
        store.requeue_rejected(merge_change),
        Err(StoreError::BuildsOnWithdrawn { withdrawn, .. }) if withdrawn == ours_change
    ));
    // As it says, the merge is corrected, leaving the withdrawn branch out.
    let base = store.correction_base(merge_change).unwrap();
    assert!(base.merges.is_empty());
    let fixed = corrected(&base, &merge);
    store.correct_rejected(merge_change, &fixed).unwrap();
    assert!(store.rejected_items().unwrap().is_empty());
}

#[test]
fn a_correction_of_refused_merges_of_more_heads_than_one_version_may_merge_is_refused_whole() {
    use doorstep_domain::record::MAX_MERGES;
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    // A record forked twenty ways on other devices.
    let first = sample::new_visit(1, morning());
    let heads: Vec<VisitRecord> = (0..20)
        .map(|i| sample::amend_visit(&first, &format!("ipad-{i}"), "A branch."))
        .collect();
    let mut pulled = vec![&first];
    pulled.extend(&heads);
    pull(&mut store, "c-1", &pulled);
    // Reconciled here in two versions, each within the limit, that together
    // merge nineteen heads: the first merge is refused, and the second is
    // held back with it.
    let merge = reconciling(&heads[0], &heads[1..11].iter().collect::<Vec<_>>());
    let merge_change = save(&mut store, &merge);
    let rest = reconciling(&merge, &heads[11..].iter().collect::<Vec<_>>());
    let rest_change = save(&mut store, &rest);
    refuse(&mut store, merge_change);

    // The base names every head the refused changes merged, none dropped.
    let base = store.correction_base(rest_change).unwrap();
    assert_eq!(base.supersedes, Some(heads[0].meta.version_id));
    let mut merged = base.merges.clone();
    merged.sort();
    let mut expected: Vec<VersionId> = heads[1..].iter().map(|h| h.meta.version_id).collect();
    expected.sort();
    assert_eq!(merged, expected, "every head the refused changes merged");

    // A correction merging them all is refused whole, saying how many and
    // what to do, and nothing changes.
    let history = store.history::<VisitContent>(first.meta.record_id).unwrap();
    let counts = store.outbox_counts().unwrap();
    let mut correction = corrected(&base, &rest);
    match store.correct_rejected(rest_change, &correction) {
        Err(e @ StoreError::TooManyMerges { .. }) => {
            let StoreError::TooManyMerges { merges, limit, .. } = &e else {
                unreachable!()
            };
            assert_eq!((*merges, *limit), (19, MAX_MERGES));
            let text = e.to_string();
            assert!(text.contains("19") && text.contains("16"), "{text}");
            assert!(text.contains("two steps"), "{text}");
        }
        other => panic!("expected the correction to be refused as merging too many, got {other:?}"),
    }
    assert_eq!(
        store.history::<VisitContent>(first.meta.record_id).unwrap(),
        history
    );
    assert_eq!(store.outbox_counts().unwrap(), counts);
    assert_eq!(store.rejected_items().unwrap().len(), 2);

    // In two steps, as it says: the correction merges sixteen, and an
    // amendment of it the other three, and the record is one line again.
    correction.meta.merges.truncate(MAX_MERGES);
    store.correct_rejected(rest_change, &correction).unwrap();
    assert!(head_of(&store, &first).is_forked());
    let left: Vec<&VisitRecord> = heads[1..]
        .iter()
        .filter(|h| !correction.meta.merges.contains(&h.meta.version_id))
        .collect();
    assert_eq!(left.len(), 3);
    let second = reconciling(&correction, &left);
    save(&mut store, &second);
    assert_eq!(
        head_of(&store, &first),
        Head::Single(second.meta.version_id)
    );
}
