//! `doorstep backup` on the embedded endpoint: a copy consistent as of one
//! moment while pushes go on, that restores to an endpoint serving exactly
//! what the copy holds; and every way a backup can fail leaves no file that
//! could be taken for one.

use std::sync::Arc;

use axum::http::StatusCode;
use doorstep_server::storage::sqlite::{
    self, BackupError, Revocations, SqliteStorage, backup, lock_data_dir, restore,
};

use doorstep_domain::network::{DeviceId, NetworkId};
use doorstep_server::storage::NetworkScope;
use doorstep_sync::wire::PULL_PATH;

use crate::device::NET;
use crate::helpers::{Backend, TestApp, amend, batch, new_visit, reconcile, statuses};

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

/// An endpoint on SQLite in the data directory `data` (made first), as
/// `doorstep serve --data` runs one, and its database's path.
fn endpoint_in(data: &std::path::Path) -> (std::path::PathBuf, TestApp) {
    std::fs::create_dir_all(data).unwrap();
    let live = data.join(doorstep_server::app::SQLITE_FILE);
    let app = TestApp::over(
        tempfile::tempdir().unwrap(),
        None,
        Arc::new(SqliteStorage::open(&live).unwrap()),
    );
    (live, app)
}

/// The restore epoch a database file holds.
fn epoch_of(file: &std::path::Path) -> String {
    rusqlite::Connection::open(file)
        .unwrap()
        .query_row("SELECT epoch FROM sync_epoch", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_puts_the_backup_in_place_keeps_what_it_replaced_and_starts_a_new_epoch() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let (live, app) = endpoint_in(&data);
    let token = app.device_token(NET, "para-1", "phone-1");
    let push = |from: u64, to: u64| {
        let changes = (from..to)
            .map(|i| new_visit("para-1", "phone-1", i))
            .collect();
        batch(NET, "phone-1", changes)
    };
    app.push(&token, &push(0, 3)).await;
    let file = root.path().join("nightly.sqlite3");
    backup(&live, &file).unwrap();
    app.push(&token, &push(3, 5)).await;

    // While an endpoint serves from the directory, nothing is touched.
    let serving = lock_data_dir(&data).unwrap();
    let refused = restore(&data, &file, Revocations::Required).expect_err("refused");
    assert!(matches!(refused, BackupError::InUse(_)), "{refused}");
    drop(serving);
    drop(app);

    let restored = restore(&data, &file, Revocations::Required).unwrap();
    assert_eq!(restored.summary.changes, 3);
    // What it replaced is kept whole, write-ahead log included.
    let aside = restored.replaced.clone().expect("the old database kept");
    let kept: i64 = rusqlite::Connection::open(&aside)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM sync_changes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 5);
    // A new epoch, neither the backup's nor that of an earlier restore of it.
    let first = epoch_of(&live);
    assert!(!first.is_empty());
    assert_ne!(first, epoch_of(&file));
    let again = restore(&data, &file, Revocations::Required).unwrap();
    assert_ne!(epoch_of(&live), first);
    assert_ne!(again.replaced, restored.replaced);

    let app = TestApp::over(
        tempfile::tempdir().unwrap(),
        None,
        Arc::new(SqliteStorage::open(&live).unwrap()),
    );
    assert_eq!(app.pull_all(&token_for(&app), 500).await.0.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_never_gives_a_revoked_device_its_access_back() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let (live, app) = endpoint_in(&data);
    let scope = NetworkScope::for_verified_network(NetworkId::parse(NET).unwrap());
    let revoke = |device: &'static str| {
        let (storage, scope) = (Arc::clone(&app.state.storage), scope.clone());
        async move {
            storage
                .revoke_device(&scope, &DeviceId::parse(device).unwrap())
                .await
                .unwrap()
        }
    };
    revoke("phone-3").await;
    let file = root.path().join("nightly.sqlite3");
    backup(&live, &file).unwrap();
    // Stolen after the backup was taken.
    revoke("phone-2").await;
    drop(app);

    let restored = restore(&data, &file, Revocations::Required).unwrap();
    assert_eq!(restored.revocations_carried, 1, "phone-3 was in the backup");
    assert_eq!(restored.revocations_unread, None);
    let app = TestApp::over(
        tempfile::tempdir().unwrap(),
        None,
        Arc::new(SqliteStorage::open(&live).unwrap()),
    );
    // Each may still hand over what it holds, and is told it is revoked; it
    // pulls nothing.
    for device in ["phone-2", "phone-3"] {
        let token = app.device_token(NET, "para-1", device);
        let (status, body) = app
            .push(
                &token,
                &batch(NET, device, vec![new_visit("para-1", device, 1)]),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{device}: {body}");
        assert_eq!(body["device_status"], "revoked", "{device}");
        let (status, body) = app.get(&token, PULL_PATH).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{device}: {body}");
        assert_eq!(body["code"], "device_revoked", "{device}");
    }
    let token = app.device_token(NET, "para-1", "phone-1");
    let (status, body) = app.get(&token, PULL_PATH).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    drop(app);

    // A database too damaged to read its revocations: refused, nothing in
    // the directory changes, unless the operator says to go on without them.
    let data = root.path().join("damaged");
    std::fs::create_dir_all(&data).unwrap();
    let live = data.join(doorstep_server::app::SQLITE_FILE);
    std::fs::write(&live, "a disk that failed").unwrap();
    let names = || files_in(&data);
    let before = names();
    let refused = restore(&data, &file, Revocations::Required).expect_err("refused");
    assert!(
        matches!(refused, BackupError::RevocationsUnreadable { .. }),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("--forget-revocations"),
        "{refused}"
    );
    assert_eq!(names(), before);
    assert_eq!(
        std::fs::read_to_string(&live).unwrap(),
        "a disk that failed"
    );

    let forced = restore(&data, &file, Revocations::ForgetIfUnreadable).unwrap();
    assert!(forced.revocations_unread.is_some());
    assert_eq!(forced.revocations_carried, 0);
    let aside = forced.replaced.expect("the damaged database kept");
    assert_eq!(
        std::fs::read_to_string(aside).unwrap(),
        "a disk that failed"
    );
}

/// The files in `dir`, but for the serving lock a restore takes.
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != sqlite::SERVE_LOCK_FILE)
        .collect();
    names.sort();
    names
}

#[test]
fn a_restore_that_cannot_know_the_revocations_asks_first_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let source = root.path().join("source");
    std::fs::create_dir_all(&source).unwrap();
    let file = root.path().join("nightly.sqlite3");
    drop(SqliteStorage::open(&source.join("server.sqlite3")).unwrap());
    backup(&source.join("server.sqlite3"), &file).unwrap();

    // A new machine: no database to say which devices were revoked since.
    let data = root.path().join("new-machine");
    std::fs::create_dir_all(&data).unwrap();
    let refused = restore(&data, &file, Revocations::Required).expect_err("refused");
    assert!(
        refused.to_string().contains("no database here"),
        "{refused}"
    );
    assert!(files_in(&data).is_empty());
    let forced = restore(&data, &file, Revocations::ForgetIfUnreadable).unwrap();
    assert_eq!(forced.replaced, None);
    assert!(forced.revocations_unread.is_some());

    // A database in WAL mode without the table: reading it leaves no log
    // files behind when the restore is refused.
    let data = root.path().join("other");
    std::fs::create_dir_all(&data).unwrap();
    let live = data.join(doorstep_server::app::SQLITE_FILE);
    let conn = rusqlite::Connection::open(&live).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch("CREATE TABLE notes (text TEXT)")
        .unwrap();
    drop(conn);
    let before = files_in(&data);
    assert_eq!(before, [doorstep_server::app::SQLITE_FILE]);
    let refused = restore(&data, &file, Revocations::Required).expect_err("refused");
    assert!(
        matches!(refused, BackupError::RevocationsUnreadable { .. }),
        "{refused}"
    );
    assert_eq!(files_in(&data), before);

    // A log left without its database (here: one holding five revocations
    // committed to a copy of the same backup, which SQLite would replay into
    // the restored database) is moved aside too, never replayed.
    std::fs::remove_file(&live).unwrap();
    let other = root.path().join("other.sqlite3");
    std::fs::copy(&file, &other).unwrap();
    let writer = rusqlite::Connection::open(&other).unwrap();
    writer
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
             INSERT INTO sync_revoked_devices (network, device, revoked_at)
             SELECT 'east-dorset', 'phone-' || value, '2026-12-04T09:00:00Z'
             FROM json_each('[1, 2, 3, 4, 5]');",
        )
        .unwrap();
    let stray = data.join(format!("{}-wal", doorstep_server::app::SQLITE_FILE));
    std::fs::copy(format!("{}-wal", other.display()), &stray).unwrap();
    drop(writer);
    let frames = std::fs::read(&stray).unwrap();
    let restored = restore(&data, &file, Revocations::ForgetIfUnreadable).unwrap();
    let revoked: i64 = rusqlite::Connection::open(&live)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM sync_revoked_devices", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(revoked, 0, "the stray log was replayed");
    assert!(!stray.exists());
    let aside = restored.replaced.expect("the stray log kept");
    assert_eq!(
        std::fs::read(format!("{}-wal", aside.display())).unwrap(),
        frames
    );

    // A restore cut short after moving the old database aside: the next
    // one says where the database with the revocations went.
    let data = root.path().join("cut-short");
    std::fs::create_dir_all(&data).unwrap();
    let aside = data.join(format!(
        "{}.replaced-1-0",
        doorstep_server::app::SQLITE_FILE
    ));
    std::fs::copy(&file, &aside).unwrap();
    let refused = restore(&data, &file, Revocations::Required).expect_err("refused");
    assert!(
        refused.to_string().contains(&aside.display().to_string()),
        "{refused}"
    );
}

/// Pushes to `app` a record whose history forked (a first version and two
/// amendments of it) and a version reconciling the fork, whose merge the
/// endpoint keeps in `sync_merges`.
async fn push_a_reconciled_fork(app: &TestApp) {
    let token = app.device_token(NET, "para-1", "phone-1");
    let base = new_visit("para-1", "phone-1", 1);
    let left = amend(&base, "para-1", "phone-1", 2);
    let right = amend(&base, "para-1", "phone-1", 3);
    let merge = reconcile(&left, &[&right], "para-1", "phone-1", 4);
    let (_, body) = app
        .push(&token, &batch(NET, "phone-1", vec![base, left, right]))
        .await;
    assert_eq!(statuses(&body), ["accepted", "accepted", "forked"]);
    let (_, body) = app.push(&token, &batch(NET, "phone-1", vec![merge])).await;
    assert_eq!(statuses(&body), ["accepted"]);
}

/// Runs `sql` on the SQLite database at `file`.
fn alter(file: &std::path::Path, sql: &str) {
    rusqlite::Connection::open(file)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_or_restore_that_lost_the_merges_of_a_reconciled_fork_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let (live, app) = endpoint_in(&data);
    push_a_reconciled_fork(&app).await;
    let whole = root.path().join("whole.sqlite3");
    assert_eq!(backup(&live, &whole).unwrap().changes, 4);

    // A backup that lost the merge (restored, the endpoint would list the
    // reconciled record as forked again) is refused, changing nothing.
    let lost = root.path().join("lost.sqlite3");
    std::fs::copy(&whole, &lost).unwrap();
    alter(&lost, "DELETE FROM sync_merges");
    let before = files_in(&data);
    let refused = restore(&data, &lost, Revocations::Required).expect_err("refused");
    assert!(matches!(refused, BackupError::Unsound(_)), "{refused}");
    assert!(refused.to_string().contains("sync_merges"), "{refused}");
    assert_eq!(files_in(&data), before);

    // So is a backup of a database that lost it, or lost the whole table,
    // and no file is left that could be taken for a backup.
    for damage in ["DELETE FROM sync_merges", "DROP TABLE sync_merges"] {
        alter(&live, damage);
        let out = root.path().join("nightly.sqlite3");
        let refused = backup(&live, &out).expect_err(damage);
        assert!(matches!(refused, BackupError::Unsound(_)), "{refused}");
        assert!(refused.to_string().contains("sync_merges"), "{refused}");
        assert!(!out.exists(), "{damage}");
    }
    drop(app);
    let restored = restore(&data, &whole, Revocations::Required).unwrap();
    assert_eq!(restored.summary.changes, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_from_before_merges_existed_passes_its_check_and_restores() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let (live, app) = endpoint_in(&data);
    let token = app.device_token(NET, "para-1", "phone-1");
    app.push(
        &token,
        &batch(NET, "phone-1", vec![new_visit("para-1", "phone-1", 1)]),
    )
    .await;
    // A database as an endpoint built before merges left it: no table, and
    // no version naming a merge.
    alter(&live, "DROP TABLE sync_merges");
    let file = root.path().join("nightly.sqlite3");
    assert_eq!(backup(&live, &file).unwrap().changes, 1);
    drop(app);
    assert_eq!(
        restore(&data, &file, Revocations::Required)
            .unwrap()
            .summary
            .changes,
        1
    );
}
