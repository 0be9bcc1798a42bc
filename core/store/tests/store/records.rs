//! Append-only records: saving, amending, reading current and history.

use doorstep_domain::history::Head;
use doorstep_domain::medication_review::MedicationReview;
use doorstep_domain::record::VisitContent;
use doorstep_store::{Origin, OutboxState, Saved, StoreError};

use crate::{Fixture, morning, sample};

#[test]
fn a_saved_visit_is_current_and_queued_in_one_step() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let visit = sample::new_visit(1, morning());
    let Saved::New(change) = store.save(&visit).unwrap() else {
        panic!("first save must be new");
    };
    let current = store
        .current::<VisitContent>(visit.meta.record_id)
        .unwrap()
        .unwrap();
    assert_eq!(current.version, visit);
    assert_eq!(current.head, Head::Single(visit.meta.version_id));
    let item = store.outbox_item(change).unwrap().unwrap();
    assert_eq!(item.state, OutboxState::Pending);
    assert_eq!(item.version_id, visit.meta.version_id);
    assert_eq!(item.record_id, visit.meta.record_id);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&item.payload).unwrap(),
        serde_json::to_value(&visit).unwrap()
    );
}

#[test]
fn an_amendment_becomes_current_and_the_history_keeps_both() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let first = sample::new_visit(2, morning());
    let second = sample::amend_visit(&first, "phone-1", "Paracetamol and codeine given.");
    store.save(&first).unwrap();
    store.save(&second).unwrap();
    let current = store
        .current::<VisitContent>(first.meta.record_id)
        .unwrap()
        .unwrap();
    assert_eq!(current.version, second);
    assert_eq!(current.version_count, 2);
    let history = store.history::<VisitContent>(first.meta.record_id).unwrap();
    assert_eq!(
        history.iter().map(|v| &v.version).collect::<Vec<_>>(),
        [&first, &second]
    );
    assert!(history.iter().all(|v| v.origin == Origin::Local));
    assert_eq!(
        store.outbox_for_record(first.meta.record_id).unwrap().len(),
        2
    );
}

#[test]
fn saving_the_same_version_again_keeps_one_copy_and_one_outbox_item() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let visit = sample::new_visit(3, morning());
    let first = store.save(&visit).unwrap();
    let again = store.save(&visit).unwrap();
    assert_eq!(Some(again), first.change_id().map(Saved::AlreadyStored));
    assert_eq!(
        store
            .history::<VisitContent>(visit.meta.record_id)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.outbox_counts().unwrap().pending, 1);
}

#[test]
fn a_reused_version_id_with_other_content_is_a_conflict_and_saves_nothing() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let visit = sample::new_visit(4, morning());
    store.save(&visit).unwrap();
    let mut forged = visit.clone();
    forged.content.treatment = doorstep_domain::text::FreeText::parse("t", "Other").unwrap();
    assert!(
        matches!(store.save(&forged), Err(StoreError::VersionConflict(id)) if id == visit.meta.version_id)
    );
    assert_eq!(
        store
            .current::<VisitContent>(visit.meta.record_id)
            .unwrap()
            .unwrap()
            .version,
        visit
    );
    assert_eq!(store.outbox_counts().unwrap().pending, 1);
}

#[test]
fn an_amendment_must_supersede_a_version_on_this_device() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let never_saved = sample::new_visit(5, morning());
    let orphan = sample::amend_visit(&never_saved, "phone-1", "Changed.");
    match store.save(&orphan) {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, "meta.supersedes"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(store.outbox_counts().unwrap().unsynced(), 0);
}

#[test]
fn a_second_first_version_of_a_record_is_refused() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let visit = sample::new_visit(6, morning());
    store.save(&visit).unwrap();
    let mut rival = sample::new_visit(6, morning());
    rival.meta.record_id = visit.meta.record_id;
    assert!(
        matches!(store.save(&rival), Err(StoreError::Invalid(e)) if e.field == "meta.supersedes")
    );
}

#[test]
fn an_invalid_record_is_refused_naming_the_field() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let mut visit = sample::new_visit(7, morning());
    visit.content.departed_at = Some(morning() - jiff::SignedDuration::from_mins(1));
    match store.save(&visit) {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, "content.departed_at"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        store
            .current::<VisitContent>(visit.meta.record_id)
            .unwrap()
            .is_none()
    );
}

#[test]
fn medication_reviews_are_kept_apart_from_visits() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let review = sample::new_review(8, jiff::civil::date(2026, 11, 24));
    store.save(&review).unwrap();
    let current = store
        .current::<MedicationReview>(review.meta.record_id)
        .unwrap()
        .unwrap();
    assert_eq!(current.version, review);
    assert!(
        store
            .current::<VisitContent>(review.meta.record_id)
            .is_err()
    );
    assert_eq!(
        store.record_ids::<MedicationReview>().unwrap(),
        [review.meta.record_id]
    );
    assert!(store.record_ids::<VisitContent>().unwrap().is_empty());
}

#[test]
fn records_survive_closing_and_reopening() {
    let f = Fixture::default();
    let visit = sample::new_visit(9, morning());
    {
        let mut store = f.open().unwrap();
        store.save(&visit).unwrap();
    }
    let store = f.open().unwrap();
    assert_eq!(
        store
            .current::<VisitContent>(visit.meta.record_id)
            .unwrap()
            .unwrap()
            .version,
        visit
    );
}

#[test]
fn stored_versions_cannot_be_changed_or_deleted_even_below_the_api() {
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let visit = sample::new_visit(10, morning());
    store.save(&visit).unwrap();
    let conn = crate::raw_connection(&f);
    for sql in [
        "UPDATE record_versions SET body = '{}'",
        "DELETE FROM record_versions",
    ] {
        let err = conn.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(
        store
            .current::<VisitContent>(visit.meta.record_id)
            .unwrap()
            .unwrap()
            .version,
        visit
    );
}

#[test]
fn two_stores_on_one_file_saving_at_once_take_turns_and_lose_nothing() {
    let f = Fixture::default();
    drop(f.open().unwrap());
    let savers: Vec<_> = (0..2u32)
        .map(|t| {
            let mut store = f.open().unwrap();
            std::thread::spawn(move || {
                for i in 0..40 {
                    store.save(&sample::new_visit(t * 100 + i, morning()))?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .collect();
    for saver in savers {
        saver.join().unwrap().unwrap();
    }
    let store = f.open().unwrap();
    assert_eq!(store.record_ids::<VisitContent>().unwrap().len(), 80);
    assert_eq!(store.outbox_counts().unwrap().unsynced(), 80);
}

#[test]
fn a_record_takes_at_most_its_limit_of_versions_and_the_one_past_it_is_refused() {
    use doorstep_domain::record::MAX_VERSIONS_PER_RECORD;
    let f = Fixture::default();
    let mut store = f.open().unwrap();
    let first = sample::new_visit(1, morning());
    store.save(&first).unwrap();
    // The rest of the history, as pulls would have brought it (quicker below
    // the API than a thousand saves).
    let mut conn = crate::raw_connection(&f);
    let tx = conn.transaction().unwrap();
    let mut last = first.clone();
    for _ in 1..MAX_VERSIONS_PER_RECORD {
        last = sample::amend_visit(&last, "ipad-7", "Amended again.");
        tx.execute(
            "INSERT INTO record_versions
                 (version_id, record_id, kind, supersedes, origin, body, stored_at)
             VALUES (?1, ?2, 'visit', ?3, 'pulled', ?4, '2026-11-24T12:00:00Z')",
            rusqlite::params![
                last.meta.version_id.0.to_string(),
                last.meta.record_id.0.to_string(),
                last.meta.supersedes.unwrap().0.to_string(),
                serde_json::to_string(&last).unwrap(),
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    let unsynced = store.outbox_counts().unwrap().unsynced();
    match store.save(&sample::amend_visit(&last, "phone-1", "One too many.")) {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, "meta.record_id", "{e}"),
        other => panic!("expected a refusal naming meta.record_id, got {other:?}"),
    }
    assert_eq!(store.outbox_counts().unwrap().unsynced(), unsynced);
    let current = store
        .current::<VisitContent>(first.meta.record_id)
        .unwrap()
        .unwrap();
    assert_eq!(
        (current.version, current.version_count),
        (last, MAX_VERSIONS_PER_RECORD)
    );
}
