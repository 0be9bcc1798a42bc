//! Migrations: a file of every earlier schema version, holding data, opens
//! under this build with all its data readable through the current API.

use doorstep_domain::network::NetworkId;
use doorstep_domain::record::VisitContent;
use doorstep_store::{OutboxState, StoreError, SyncCursor, schema};
use jiff::civil::date;

use crate::{Fixture, morning, raw_connection, sample};

/// What the fixture of an old version holds, to check after migrating.
struct Written {
    visit: doorstep_domain::record::VisitRecord,
    change_id: uuid::Uuid,
    /// From version 2 on: a first version of another record the endpoint
    /// refused, with its change id and reason.
    refused: Option<(doorstep_domain::record::VisitRecord, uuid::Uuid, String)>,
}

/// Stores `visit` in `record_versions` as a local version, with that table's
/// SQL as every schema version so far has it.
fn insert_version(conn: &rusqlite::Connection, visit: &doorstep_domain::record::VisitRecord) {
    conn.execute(
        "INSERT INTO record_versions
             (version_id, record_id, kind, supersedes, origin, body, stored_at)
         VALUES (?1, ?2, 'visit', NULL, 'local', ?3, '2026-11-24T10:00:00Z')",
        rusqlite::params![
            visit.meta.version_id.0.to_string(),
            visit.meta.record_id.0.to_string(),
            serde_json::to_string(visit).unwrap(),
        ],
    )
    .unwrap();
}

/// Builds a store at `version` with data, written with that version's SQL.
fn fixture_at(f: &Fixture, version: i64) -> Written {
    // Creates the key and an empty file, then starts over at `version`.
    drop(f.open().unwrap());
    doorstep_store::Store::wipe_files(f.path()).unwrap();
    let mut conn = raw_connection(f);
    schema::migrate_to(&mut conn, version).unwrap();
    let visit = sample::new_visit(1, morning());
    let change_id = uuid::Uuid::now_v7();
    let round = sample::round(date(2026, 11, 24), 3);
    insert_version(&conn, &visit);
    let mut refused = None;
    match version {
        1 => {
            conn.execute(
                "INSERT INTO outbox (change_id, version_id, kind, record_id, state, created_at)
                 VALUES (?1, ?2, 'visit', ?3, 'sent', '2026-11-24T10:00:01Z')",
                rusqlite::params![
                    change_id.to_string(),
                    visit.meta.version_id.0.to_string(),
                    visit.meta.record_id.0.to_string(),
                ],
            )
            .unwrap();
        }
        // Version 3 rebuilt the outbox with a new state and column; rows
        // written as version 2 wrote them are valid in it, and in versions 4
        // to 6.
        2..=6 => {
            if version >= 4 {
                conn.execute(
                    "INSERT INTO sync_network (id, network, bound_at)
                     VALUES (1, 'east-dorset', '2026-11-24T10:00:03Z')",
                    [],
                )
                .unwrap();
            }
            let items = [
                (change_id, &visit, "sent", None),
                (
                    uuid::Uuid::now_v7(),
                    &sample::new_visit(2, morning()),
                    "rejected",
                    Some("Invalid: body.record.meta.written_at: check the date"),
                ),
            ];
            for (id, version, state, reason) in items {
                if state == "rejected" {
                    insert_version(&conn, version);
                    refused = Some((version.clone(), id, reason.unwrap().to_owned()));
                }
                conn.execute(
                    "INSERT INTO outbox
                         (change_id, version_id, kind, record_id, state, reason, created_at,
                          state_changed_at)
                     VALUES (?1, ?2, 'visit', ?3, ?4, ?5, '2026-11-24T10:00:01Z',
                             '2026-11-24T10:00:05Z')",
                    rusqlite::params![
                        id.to_string(),
                        version.meta.version_id.0.to_string(),
                        version.meta.record_id.0.to_string(),
                        state,
                        reason,
                    ],
                )
                .unwrap();
            }
        }
        other => panic!("no fixture for schema version {other}: add one when adding a migration"),
    }
    conn.execute(
        "INSERT INTO rounds (day, body) VALUES ('2026-11-24', ?1)",
        [serde_json::to_string(&round).unwrap()],
    )
    .unwrap();
    for n in 0..3 {
        let p = sample::patient(n);
        conn.execute(
            "INSERT INTO patients (nhs_number, body) VALUES (?1, ?2)",
            [
                p.nhs_number.as_str().to_owned(),
                serde_json::to_string(&p).unwrap(),
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO round_patients (day, nhs_number) VALUES ('2026-11-24', ?1)",
            [p.nhs_number.as_str()],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO sync_cursor (id, cursor, applied_at)
         VALUES (1, 'cursor-v1', '2026-11-24T10:00:02Z')",
        [],
    )
    .unwrap();
    Written {
        visit,
        change_id,
        refused,
    }
}

#[test]
fn every_earlier_schema_version_with_data_migrates_to_the_latest() {
    for version in 1..schema::LATEST {
        let f = Fixture::default();
        let written = fixture_at(&f, version);
        let mut store = f.open().unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            schema::LATEST,
            "from version {version}"
        );
        let current = store
            .current::<VisitContent>(written.visit.meta.record_id)
            .unwrap()
            .unwrap();
        assert_eq!(current.version, written.visit);
        let item = store
            .outbox_item(doorstep_store::ChangeId(written.change_id))
            .unwrap()
            .unwrap();
        assert_eq!(item.state, OutboxState::Sent);
        assert_eq!(store.revoked_at().unwrap(), None, "not revoked (version 7)");
        if version == 1 {
            assert_eq!(
                item.state_changed_at, item.created_at,
                "back-filled by version 2"
            );
        } else {
            assert_eq!(
                item.state_changed_at,
                "2026-11-24T10:00:05Z".parse().unwrap(),
                "kept by version 3"
            );
        }
        // Unbound until its first sync, which binds it (version 4); a file of
        // version 4 or later keeps its binding.
        let east = NetworkId::parse("east-dorset").unwrap();
        assert_eq!(
            store.check_network(&east).unwrap(),
            version >= 4,
            "from version {version}"
        );
        store.bind_network(&east).unwrap();
        assert!(matches!(
            store.bind_network(&NetworkId::parse("west-dorset").unwrap()),
            Err(StoreError::OtherNetwork { .. })
        ));
        assert_eq!(store.push_batch(crate::up_to(10)).unwrap().len(), 1);
        let round = store.round(date(2026, 11, 24)).unwrap().unwrap();
        assert_eq!(round.patients.len(), 3);
        assert_eq!(
            store.sync_cursor().unwrap(),
            Some(SyncCursor("cursor-v1".into()))
        );
        let mut records = vec![written.visit.meta.record_id];
        if let Some((refused, id, reason)) = written.refused {
            check_refused_item_after_migrating(&mut store, &refused, id, reason);
            records.push(refused.meta.record_id);
        }
        // A change saved now goes after every item the file held.
        let last_seq = records
            .iter()
            .flat_map(|r| store.outbox_for_record(*r).unwrap())
            .map(|i| i.seq)
            .max()
            .unwrap();
        let later = store
            .save(&sample::new_visit(3, morning()))
            .unwrap()
            .change_id()
            .unwrap();
        let later = store.outbox_item(later).unwrap().unwrap();
        assert!(later.seq > last_seq, "from version {version}");
        let pushed: Vec<_> = store
            .push_batch(crate::up_to(10))
            .unwrap()
            .into_iter()
            .map(|i| i.change_id)
            .collect();
        assert_eq!(pushed.last(), Some(&later.change_id));
    }
}

/// A rejected item written under an older schema keeps its reason and its
/// place, and can be corrected (a state the older schema did not allow).
fn check_refused_item_after_migrating(
    store: &mut doorstep_store::Store,
    refused: &doorstep_domain::record::VisitRecord,
    id: uuid::Uuid,
    reason: String,
) {
    let id = doorstep_store::ChangeId(id);
    let rejected = store.rejected_items().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].change_id, id);
    assert_eq!(
        rejected[0].state,
        OutboxState::Rejected {
            reason: reason.clone()
        }
    );
    let base = store.correction_base(id).unwrap();
    assert_eq!(base.supersedes, None, "it was a first version");
    let mut correction = refused.clone();
    correction.meta = base.meta(
        doorstep_domain::record::VersionId(uuid::Uuid::now_v7()),
        sample::author(),
        sample::device(),
        refused.meta.written_at,
    );
    let corrected_by = store.correct_rejected(id, &correction).unwrap();
    assert_eq!(
        store.outbox_item(id).unwrap().unwrap().state,
        OutboxState::Withdrawn {
            reason,
            corrected_by
        }
    );
    assert_eq!(
        store
            .current::<VisitContent>(refused.meta.record_id)
            .unwrap()
            .unwrap()
            .version,
        correction
    );
}

#[test]
fn a_migration_that_runs_out_of_storage_says_so_and_leaves_the_file_as_it_was() {
    // Version 3 copies the outbox into a table of a new shape: on a phone
    // with no room left, that copy fails, and the shell must hear "storage
    // full" (free some space), not a failed migration (a fault of the build).
    let f = Fixture::default();
    fixture_at(&f, 2);
    let mut conn = raw_connection(&f);
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |row| row.get(0))
        .unwrap();
    conn.pragma_update(None, "max_page_count", pages).unwrap();
    let error = schema::migrate_to(&mut conn, schema::LATEST).unwrap_err();
    assert!(matches!(error, StoreError::DiskFull), "{error:?}");
    assert_eq!(schema::version(&conn).unwrap(), 2);
    drop(conn);
    let store = f.open().unwrap();
    assert_eq!(store.schema_version().unwrap(), schema::LATEST);
}

#[test]
fn a_new_file_is_created_at_the_latest_version() {
    let f = Fixture::default();
    assert_eq!(f.open().unwrap().schema_version().unwrap(), schema::LATEST);
}
