//! Sign-out and wipe: refused while changes are unsynced, unless the caller
//! confirms discarding exactly that many; then key and files are gone.

use doorstep_domain::record::VisitContent;
use doorstep_store::{Acknowledgement, KeyProvider, KeySlot, StoreError, WipeError};

use crate::{Fixture, morning, sample};

#[test]
fn logout_with_unsynced_items_is_refused_unless_exactly_that_many_are_confirmed() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let ids: Vec<_> = (0..3)
        .map(|n| {
            store
                .save(&sample::new_visit(n, morning()))
                .unwrap()
                .change_id()
                .expect("a new save queues a change")
        })
        .collect();
    store
        .acknowledge(&[
            (ids[0], Acknowledgement::Accepted),
            (
                ids[1],
                Acknowledgement::Rejected {
                    reason: "refused".into(),
                },
            ),
        ])
        .unwrap();
    // One pending and one rejected: two the endpoint does not hold.
    for wrong in [0, 1, 3] {
        match store.wipe(wrong) {
            Err(WipeError::Refused {
                store: back,
                error: StoreError::UnsyncedItems { count },
            }) => {
                assert_eq!(count, 2);
                store = *back;
            }
            other => panic!("expected a refusal for {wrong}, got {other:?}"),
        }
    }
    assert!(f.path().exists());
    assert_eq!(
        store.outbox_counts().unwrap().unsynced(),
        2,
        "nothing was lost by refusing"
    );
    let report = store.wipe(2).unwrap();
    assert_eq!(report.discarded_unsynced, 2);
    assert!(!f.path().exists());
    assert_eq!(
        f.keys.read_key(KeySlot::Current).unwrap(),
        None,
        "the key is destroyed"
    );
}

#[test]
fn wipe_with_pending_items_is_refused_and_the_store_stays_usable() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let visit = sample::new_visit(1, morning());
    store.save(&visit).unwrap();
    let Err(WipeError::Refused { store: back, .. }) = store.wipe(0) else {
        panic!("a pending item must stop the wipe");
    };
    let mut store = *back;
    store
        .save(&sample::amend_visit(
            &visit,
            "phone-1",
            "Amended after the refusal.",
        ))
        .unwrap();
    assert_eq!(
        store
            .current::<VisitContent>(visit.meta.record_id)
            .unwrap()
            .unwrap()
            .version_count,
        2
    );
}

#[test]
fn wipe_when_everything_is_filed_needs_no_confirmation_and_leaves_nothing() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let change = store
        .save(&sample::new_visit(1, morning()))
        .unwrap()
        .change_id()
        .expect("a new save queues a change");
    store
        .acknowledge(&[(change, Acknowledgement::Filed)])
        .unwrap();
    assert_eq!(store.wipe(0).unwrap().discarded_unsynced, 0);
    for (path, bytes) in f.file_bytes() {
        assert!(bytes.is_none(), "{} remains", path.display());
    }
    let fresh = f.open().unwrap();
    assert_eq!(fresh.outbox_counts().unwrap(), Default::default());
}

/// A keystore that cannot clear one of its slots (the device locked part-way
/// through a wipe).
struct StuckSlot(KeySlot, doorstep_store::MemoryKeyProvider);

impl StuckSlot {
    fn new(slot: KeySlot) -> Self {
        Self(slot, doorstep_store::MemoryKeyProvider::default())
    }
}

impl KeyProvider for StuckSlot {
    fn read_key(
        &self,
        slot: KeySlot,
    ) -> Result<Option<doorstep_store::DatabaseKey>, doorstep_store::KeyError> {
        self.1.read_key(slot)
    }
    fn write_key(
        &self,
        slot: KeySlot,
        key: &doorstep_store::DatabaseKey,
    ) -> Result<(), doorstep_store::KeyError> {
        self.1.write_key(slot, key)
    }
    fn delete_key(&self, slot: KeySlot) -> Result<(), doorstep_store::KeyError> {
        if slot == self.0 {
            return Err(doorstep_store::KeyError::Unavailable(
                "device locked".into(),
            ));
        }
        self.1.delete_key(slot)
    }
}

#[test]
fn a_wipe_that_has_destroyed_the_key_finishes_even_if_the_next_slot_will_not_clear() {
    let f = Fixture::default();
    let keys = std::sync::Arc::new(StuckSlot::new(KeySlot::Next));
    let store = doorstep_store::Store::open(&f.config, keys.clone()).unwrap();
    assert_eq!(store.wipe(0).unwrap().discarded_unsynced, 0);
    assert_eq!(keys.read_key(KeySlot::Current).unwrap(), None);
    for (path, bytes) in f.file_bytes() {
        assert!(bytes.is_none(), "{} remains", path.display());
    }
}

#[test]
fn a_wipe_that_cannot_destroy_every_copy_of_the_key_is_refused_and_the_store_still_opens() {
    // Making a re-key's key current can leave it in both slots (Next could not
    // be cleared). A wipe that clears Next but not Current has destroyed
    // nothing: Current still opens the file, so the wipe must say it was
    // refused, not go on to delete files it may fail to delete.
    let f = Fixture::default();
    let keys = std::sync::Arc::new(StuckSlot::new(KeySlot::Current));
    let mut store = doorstep_store::Store::open(&f.config, keys.clone()).unwrap();
    let saved = sample::new_visit(1, morning());
    store.save(&saved).unwrap();
    let key = keys.read_key(KeySlot::Current).unwrap().expect("a key");
    keys.write_key(KeySlot::Next, &key).unwrap();
    let Err(WipeError::Refused { store, error }) = store.wipe(1) else {
        panic!("the wipe went on with the key still in the keystore");
    };
    assert!(matches!(error, StoreError::Key(_)), "{error:?}");
    drop(store);
    let reopened = doorstep_store::Store::open(&f.config, keys).unwrap();
    assert_eq!(reopened.unsynced_count().unwrap(), 1);
}
