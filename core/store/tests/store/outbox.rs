//! The outbox: order, per-item states, a rejected item never blocking and
//! sent again only when asked, and pushes chosen by size.

use doorstep_domain::record::VisitContent;
use doorstep_store::{Acknowledgement, ChangeId, OutboxItem, OutboxState, PushLimit, StoreError};

use crate::{Fixture, morning, sample, up_to};

fn saved(store: &mut doorstep_store::Store, n: u32) -> ChangeId {
    store
        .save(&sample::new_visit(n, morning()))
        .unwrap()
        .change_id()
        .expect("a new save queues a change")
}

#[test]
fn push_batches_come_oldest_first_with_uuid_v7_ids() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let ids: Vec<ChangeId> = (0..5).map(|n| saved(&mut store, n)).collect();
    let batch = store.push_batch(up_to(3)).unwrap();
    assert_eq!(
        batch.iter().map(|i| i.change_id).collect::<Vec<_>>(),
        ids[..3]
    );
    assert!(batch.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(ids.iter().all(|id| id.0.get_version_num() == 7));
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "v7 ids sort by creation"
    );
}

#[test]
fn sent_items_are_pushed_again_until_the_endpoint_answers() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let a = saved(&mut store, 1);
    let b = saved(&mut store, 2);
    assert_eq!(store.mark_sent(&[a, b]).unwrap(), 2);
    assert_eq!(
        store.outbox_item(a).unwrap().unwrap().state,
        OutboxState::Sent
    );
    let again: Vec<ChangeId> = store
        .push_batch(up_to(10))
        .unwrap()
        .iter()
        .map(|i| i.change_id)
        .collect();
    assert_eq!(again, [a, b]);
    store
        .acknowledge(&[(a, Acknowledgement::Accepted)])
        .unwrap();
    let left: Vec<ChangeId> = store
        .push_batch(up_to(10))
        .unwrap()
        .iter()
        .map(|i| i.change_id)
        .collect();
    assert_eq!(left, [b]);
}

#[test]
fn a_rejected_item_keeps_its_reason_stays_and_never_blocks_later_items() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let a = saved(&mut store, 1);
    let b = saved(&mut store, 2);
    let c = saved(&mut store, 3);
    store.mark_sent(&[a, b, c]).unwrap();
    let reason = "practice D99001 is not in this network".to_string();
    store
        .acknowledge(&[
            (
                a,
                Acknowledgement::Rejected {
                    reason: reason.clone(),
                },
            ),
            (b, Acknowledgement::Accepted),
        ])
        .unwrap();
    let next: Vec<ChangeId> = store
        .push_batch(up_to(1))
        .unwrap()
        .iter()
        .map(|i| i.change_id)
        .collect();
    assert_eq!(
        next,
        [c],
        "the rejected head of the queue does not hold up c"
    );
    let rejected = store.rejected_items().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].change_id, a);
    assert_eq!(rejected[0].state, OutboxState::Rejected { reason });
    let counts = store.outbox_counts().unwrap();
    assert_eq!((counts.rejected, counts.accepted, counts.sent), (1, 1, 1));
    assert_eq!(
        store.unsynced_count().unwrap(),
        2,
        "rejected counts as unsynced"
    );
}

#[test]
fn states_only_move_forward_so_late_and_repeated_answers_change_nothing() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let a = saved(&mut store, 1);
    let b = saved(&mut store, 2);
    assert_eq!(
        store
            .acknowledge(&[(a, Acknowledgement::Accepted)])
            .unwrap(),
        1
    );
    assert_eq!(
        store.acknowledge(&[(a, Acknowledgement::Filed)]).unwrap(),
        1
    );
    // Late or contradictory answers after filing are skipped.
    let late = [
        (a, Acknowledgement::Accepted),
        (
            a,
            Acknowledgement::Rejected {
                reason: "late".into(),
            },
        ),
    ];
    assert_eq!(store.acknowledge(&late).unwrap(), 0);
    assert_eq!(store.mark_sent(&[a]).unwrap(), 0);
    assert_eq!(
        store.outbox_item(a).unwrap().unwrap().state,
        OutboxState::Filed
    );
    // An unknown id is skipped, and a lost "accepted" does not stop "filed".
    let unknown = ChangeId(uuid::Uuid::now_v7());
    assert_eq!(
        store
            .acknowledge(&[
                (unknown, Acknowledgement::Accepted),
                (b, Acknowledgement::Filed)
            ])
            .unwrap(),
        1
    );
    assert_eq!(
        store.outbox_item(b).unwrap().unwrap().state,
        OutboxState::Filed
    );
    assert_eq!(store.unsynced_count().unwrap(), 0);
}

#[test]
fn an_overlong_rejection_reason_is_bounded() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let a = saved(&mut store, 1);
    let reason = "x".repeat(5_000);
    store
        .acknowledge(&[(a, Acknowledgement::Rejected { reason })])
        .unwrap();
    match store.outbox_item(a).unwrap().unwrap().state {
        OutboxState::Rejected { reason } => assert_eq!(
            reason.chars().count(),
            doorstep_store::outbox::MAX_REASON_CHARS
        ),
        other => panic!("expected rejected, got {other:?}"),
    }
}

fn ids(items: &[OutboxItem]) -> Vec<ChangeId> {
    items.iter().map(|i| i.change_id).collect()
}

fn reject(store: &mut doorstep_store::Store, id: ChangeId, reason: &str) {
    let moved = store
        .acknowledge(&[(
            id,
            Acknowledgement::Rejected {
                reason: reason.into(),
            },
        )])
        .unwrap();
    assert_eq!(moved, 1);
}

#[test]
fn a_rejected_item_sent_again_goes_first_in_the_next_push_exactly_as_it_was() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let visit = sample::new_visit(1, morning());
    let a = store.save(&visit).unwrap().change_id().unwrap();
    let b = saved(&mut store, 2);
    store.mark_sent(&[a, b]).unwrap();
    reject(
        &mut store,
        a,
        "PayloadTooLarge: the endpoint refused this change as too large even on its own (HTTP 413)",
    );
    let c = saved(&mut store, 3);
    let before = store.outbox_item(a).unwrap().unwrap();
    assert_eq!(ids(&store.push_batch(up_to(10)).unwrap()), [b, c]);

    store.requeue_rejected(a).unwrap();

    let after = store.outbox_item(a).unwrap().unwrap();
    assert_eq!(after.state, OutboxState::Pending, "the reason is cleared");
    assert_eq!(
        (after.seq, after.change_id, after.version_id, &after.payload),
        (
            before.seq,
            before.change_id,
            before.version_id,
            &before.payload
        ),
        "same change, same record, same place in the queue"
    );
    assert_eq!(after.created_at, before.created_at);
    assert!(after.state_changed_at >= before.state_changed_at);
    assert_eq!(ids(&store.push_batch(up_to(10)).unwrap()), [a, b, c]);
    assert!(store.rejected_items().unwrap().is_empty());
    let history = store.history::<VisitContent>(visit.meta.record_id).unwrap();
    assert_eq!(history.len(), 1, "no new version");
    assert_eq!(history[0].version, visit);
    let counts = store.outbox_counts().unwrap();
    assert_eq!((counts.pending, counts.sent, counts.rejected), (2, 1, 0));
    assert_eq!(store.unsynced_count().unwrap(), 3, "still unsynced");

    // Sent again and refused again: the new reason is kept.
    store.mark_sent(&[a]).unwrap();
    reject(
        &mut store,
        a,
        "NotYours: meta.author: is not the signed-in clinician",
    );
    assert_eq!(
        store.outbox_item(a).unwrap().unwrap().state,
        OutboxState::Rejected {
            reason: "NotYours: meta.author: is not the signed-in clinician".into()
        }
    );
    // Sent again and accepted this time.
    store.requeue_rejected(a).unwrap();
    store.mark_sent(&[a]).unwrap();
    store
        .acknowledge(&[(a, Acknowledgement::Accepted)])
        .unwrap();
    assert_eq!(
        store.outbox_item(a).unwrap().unwrap().state,
        OutboxState::Accepted
    );
}

#[test]
fn sending_again_an_unknown_or_unrejected_item_is_refused_and_changes_nothing() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let pending = saved(&mut store, 1);
    let sent = saved(&mut store, 2);
    let accepted = saved(&mut store, 3);
    let filed = saved(&mut store, 4);
    let rejected = saved(&mut store, 5);
    store.mark_sent(&[sent, accepted, filed, rejected]).unwrap();
    store
        .acknowledge(&[
            (accepted, Acknowledgement::Accepted),
            (filed, Acknowledgement::Filed),
        ])
        .unwrap();
    reject(&mut store, rejected, "refused");
    // The second tap on "send again" finds the item queued already.
    store.requeue_rejected(rejected).unwrap();
    let before: Vec<OutboxItem> = [pending, sent, accepted, filed, rejected]
        .iter()
        .map(|id| store.outbox_item(*id).unwrap().unwrap())
        .collect();
    let counts = store.outbox_counts().unwrap();

    for (id, state) in [
        (pending, "pending"),
        (sent, "sent"),
        (accepted, "accepted"),
        (filed, "filed"),
        (rejected, "pending"),
    ] {
        match store.requeue_rejected(id) {
            Err(StoreError::NotRejected {
                change_id,
                state: found,
            }) => assert_eq!((change_id, found), (id, state)),
            other => panic!("expected a refusal for a {state} item, got {other:?}"),
        }
    }
    let unknown = ChangeId(uuid::Uuid::now_v7());
    match store.requeue_rejected(unknown) {
        Err(StoreError::UnknownChange(id)) => assert_eq!(id, unknown),
        other => panic!("expected a refusal for an unknown id, got {other:?}"),
    }

    let after: Vec<OutboxItem> = [pending, sent, accepted, filed, rejected]
        .iter()
        .map(|id| store.outbox_item(*id).unwrap().unwrap())
        .collect();
    assert_eq!(after, before, "no state, reason or time changed");
    assert_eq!(store.outbox_counts().unwrap(), counts);
}

/// Every payload's length in bytes, in push order.
fn payload_lengths(store: &doorstep_store::Store) -> Vec<usize> {
    store
        .push_batch(up_to(usize::MAX))
        .unwrap()
        .iter()
        .map(|i| i.payload.len())
        .collect()
}

#[test]
fn a_push_batch_stops_before_the_item_that_would_pass_the_byte_budget() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let all: Vec<ChangeId> = (0..5).map(|n| saved(&mut store, n)).collect();
    let lengths = payload_lengths(&store);
    let overhead = 128;
    let three: usize = lengths[..3].iter().map(|l| l + overhead).sum();
    let limit = |items, bytes| PushLimit {
        items,
        bytes,
        overhead_per_item: overhead,
    };
    assert_eq!(
        ids(&store.push_batch(limit(10, three)).unwrap()),
        all[..3],
        "three fit exactly"
    );
    assert_eq!(
        ids(&store.push_batch(limit(10, three - 1)).unwrap()),
        all[..2],
        "one byte less and the third waits"
    );
    assert_eq!(
        ids(&store.push_batch(limit(2, three)).unwrap()),
        all[..2],
        "the count still bounds the batch"
    );
    assert!(store.push_batch(limit(0, three)).unwrap().is_empty());
    // Items already answered leave the budget to those behind them.
    store
        .acknowledge(&[(all[0], Acknowledgement::Accepted)])
        .unwrap();
    assert_eq!(ids(&store.push_batch(limit(10, three)).unwrap()), all[1..4]);
}

#[test]
fn a_change_larger_than_the_byte_budget_comes_alone_so_it_is_never_stuck() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let a = saved(&mut store, 1);
    let b = saved(&mut store, 2);
    let tiny = PushLimit {
        items: 10,
        bytes: 100,
        overhead_per_item: 128,
    };
    let batch = store.push_batch(tiny).unwrap();
    assert_eq!(ids(&batch), [a]);
    assert!(batch[0].payload.len() > 100, "larger than the budget");
    store.mark_sent(&[a]).unwrap();
    reject(&mut store, a, "PayloadTooLarge");
    assert_eq!(ids(&store.push_batch(tiny).unwrap()), [b]);
}

#[test]
fn records_beyond_the_byte_budget_are_not_read() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let first: Vec<ChangeId> = (0..2).map(|n| saved(&mut store, n)).collect();
    let lengths = payload_lengths(&store);
    // A third queued change whose stored record cannot be read as text
    // stands for the large records a push has no room for: if the store
    // read it, the batch would fail.
    let conn = crate::raw_connection(&f);
    let version = uuid::Uuid::now_v7().to_string();
    let record = uuid::Uuid::now_v7().to_string();
    conn.execute(
        "INSERT INTO record_versions
             (version_id, record_id, kind, supersedes, origin, body, stored_at)
         VALUES (?1, ?2, 'visit', NULL, 'local', CAST(zeroblob(600000) || x'ff' AS TEXT), ?3)",
        rusqlite::params![version, record, morning().to_string()],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO outbox
             (change_id, version_id, kind, record_id, state, created_at, state_changed_at)
         VALUES (?1, ?2, 'visit', ?3, 'pending', ?4, ?4)",
        rusqlite::params![
            uuid::Uuid::now_v7().to_string(),
            version,
            record,
            morning().to_string()
        ],
    )
    .unwrap();
    drop(conn);
    let budget = PushLimit {
        items: 100,
        bytes: lengths.iter().sum::<usize>() + 599_000,
        overhead_per_item: 0,
    };
    assert_eq!(ids(&store.push_batch(budget).unwrap()), first);
    assert!(
        store.push_batch(up_to(100)).is_err(),
        "the stand-in cannot be read once it is in the batch"
    );
}

#[test]
fn accepted_changes_the_endpoint_lost_go_again_in_their_place_and_the_others_stay_as_they_are() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let [a, b, c, d, e] = [1, 2, 3, 4, 5].map(|n| saved(&mut store, n));
    store
        .acknowledge(&[
            (a, Acknowledgement::Accepted),
            (b, Acknowledgement::Filed),
            (
                c,
                Acknowledgement::Rejected {
                    reason: "refused".into(),
                },
            ),
            (e, Acknowledgement::Accepted),
        ])
        .unwrap();
    assert_eq!(store.accepted_change_ids().unwrap(), [a, e]);
    // The endpoint says it lacks a, e and (wrongly, or after a restore of
    // the practice's system too) b and c: only the accepted ones go again.
    assert_eq!(store.reoffer(&[e, a, b, c]).unwrap(), 2);
    let batch = store.push_batch(up_to(10)).unwrap();
    assert_eq!(
        batch.iter().map(|i| i.change_id).collect::<Vec<_>>(),
        [a, d, e],
        "the accepted ones go again in their old places"
    );
    let state = |id| store.outbox_item(id).unwrap().unwrap().state;
    assert_eq!(state(b), OutboxState::Filed);
    assert!(matches!(state(c), OutboxState::Rejected { .. }));
    assert!(store.accepted_change_ids().unwrap().is_empty());
    assert_eq!(store.reoffer(&[a, e]).unwrap(), 0);
}
