//! Migrations: a file of every earlier schema version, holding data, opens
//! under this build with all its data readable through the current API.

use doorstep_domain::record::VisitContent;
use doorstep_store::{OutboxState, SyncCursor, schema};
use jiff::civil::date;

use crate::{Fixture, morning, raw_connection, sample};

/// What the fixture of an old version holds, to check after migrating.
struct Written {
    visit: doorstep_domain::record::VisitRecord,
    change_id: uuid::Uuid,
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
    match version {
        1 => {
            conn.execute(
                "INSERT INTO record_versions
                     (version_id, record_id, kind, supersedes, origin, body, stored_at)
                 VALUES (?1, ?2, 'visit', NULL, 'local', ?3, '2026-11-24T10:00:00Z')",
                rusqlite::params![
                    visit.meta.version_id.0.to_string(),
                    visit.meta.record_id.0.to_string(),
                    serde_json::to_string(&visit).unwrap(),
                ],
            )
            .unwrap();
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
        }
        other => panic!("no fixture for schema version {other}: add one when adding a migration"),
    }
    Written { visit, change_id }
}

#[test]
fn every_earlier_schema_version_with_data_migrates_to_the_latest() {
    for version in 1..schema::LATEST {
        let f = Fixture::default();
        let written = fixture_at(&f, version);
        let store = f.open().unwrap();
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
        assert_eq!(
            item.state_changed_at, item.created_at,
            "back-filled by version 2"
        );
        assert_eq!(store.push_batch(crate::up_to(10)).unwrap().len(), 1);
        let round = store.round(date(2026, 11, 24)).unwrap().unwrap();
        assert_eq!(round.patients.len(), 3);
        assert_eq!(
            store.sync_cursor().unwrap(),
            Some(SyncCursor("cursor-v1".into()))
        );
    }
}

#[test]
fn a_new_file_is_created_at_the_latest_version() {
    let f = Fixture::default();
    assert_eq!(f.open().unwrap().schema_version().unwrap(), schema::LATEST);
}
