//! `doorstep backup` on the embedded endpoint: a copy consistent as of one
//! moment while pushes go on, that restores to an endpoint serving exactly
//! what the copy holds; and every way a backup can fail leaves no file that
//! could be taken for one.

use std::sync::Arc;

use axum::http::StatusCode;
use doorstep_server::storage::sqlite::{BackupError, SqliteStorage, backup};

use crate::device::NET;
use crate::helpers::{Backend, TestApp, batch, new_visit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_pushes_go_on_restores_to_a_consistent_endpoint() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let first = (0..50).map(|i| new_visit("para-1", "phone-1", i)).collect();
    let (status, _) = app.push(&token, &batch(NET, "phone-1", first)).await;
    assert_eq!(status, StatusCode::OK);

    // Pushes of ten go on while the backup is taken.
    let app = Arc::new(app);
    let pushing = {
        let (app, token) = (Arc::clone(&app), token.clone());
        tokio::spawn(async move {
            for round in 0..20u64 {
                let changes = (0..10)
                    .map(|i| new_visit("para-1", "phone-1", 1_000 + round * 10 + i))
                    .collect();
                let (status, _) = app.push(&token, &batch(NET, "phone-1", changes)).await;
                assert_eq!(status, StatusCode::OK);
            }
        })
    };
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("nightly.sqlite3");
    let database = app.dir.path().join("server.sqlite3");
    let summary = tokio::task::spawn_blocking({
        let (database, file) = (database.clone(), file.clone());
        move || backup(&database, &file)
    })
    .await
    .unwrap()
    .unwrap();
    pushing.await.unwrap();
    assert!((50..=250).contains(&summary.changes), "{summary:?}");
    assert_eq!(summary.networks, 1);
    assert_eq!(summary.bytes, std::fs::metadata(&file).unwrap().len());

    // Restored, the endpoint serves exactly what the backup counted, in
    // unbroken order: the first push and whole pushes after it.
    let restored = TestApp::over(
        tempfile::tempdir().unwrap(),
        None,
        Arc::new(SqliteStorage::open(&file).unwrap()),
    );
    let (changes, _) = restored.pull_all(&token_for(&restored), 500).await;
    assert_eq!(changes.len() as u64, summary.changes);
    assert_eq!(summary.changes % 10, 0, "no push is half in the backup");

    // A second backup to the same file is refused and leaves it as it was.
    let before = std::fs::read(&file).unwrap();
    let again = backup(&database, &file).expect_err("refused");
    assert!(matches!(again, BackupError::Exists(_)), "{again}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

fn token_for(app: &TestApp) -> String {
    app.token(
        NET,
        doorstep_server::auth::TokenRole::Coordinator,
        "it-desk",
        None,
    )
}

#[test]
fn a_backup_that_cannot_be_made_leaves_nothing_that_looks_like_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup.sqlite3");

    let missing = backup(&dir.path().join("absent.sqlite3"), &out).expect_err("refused");
    assert!(matches!(missing, BackupError::NoDatabase(_)), "{missing}");
    assert!(missing.to_string().contains("pg_dump"), "{missing}");

    let not_a_database = dir.path().join("notes.sqlite3");
    std::fs::write(&not_a_database, "these are not the endpoint's changes").unwrap();
    let refused = backup(&not_a_database, &out).expect_err("refused");
    assert!(matches!(refused, BackupError::Sqlite(_)), "{refused}");
    assert_eq!(
        std::fs::read_to_string(&not_a_database).unwrap(),
        "these are not the endpoint's changes"
    );

    // An SQLite file that is not the endpoint's: copied, then found wanting.
    let other = dir.path().join("other.sqlite3");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE notes (text TEXT)")
        .unwrap();
    let unsound = backup(&other, &out).expect_err("refused");
    assert!(matches!(unsound, BackupError::Unsound(_)), "{unsound}");

    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains("backup"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
