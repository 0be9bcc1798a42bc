//! The outbox: order, per-item states, and a rejected item never blocking.

use doorstep_store::{Acknowledgement, ChangeId, OutboxState};

use crate::{Fixture, morning, sample};

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
    let batch = store.push_batch(3).unwrap();
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
        .push_batch(10)
        .unwrap()
        .iter()
        .map(|i| i.change_id)
        .collect();
    assert_eq!(again, [a, b]);
    store
        .acknowledge(&[(a, Acknowledgement::Accepted)])
        .unwrap();
    let left: Vec<ChangeId> = store
        .push_batch(10)
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
        .push_batch(1)
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
