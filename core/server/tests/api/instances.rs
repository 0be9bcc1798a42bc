//! Two endpoint instances on one PostgreSQL: no state lives in a process, so
//! pushes through either are stored once and pulls through either see the
//! same stream in the same order.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use doorstep_server::storage::Storage;
use doorstep_server::storage::postgres::PostgresStorage;

use crate::helpers::{Backend, TestApp, as_role, batch, fresh_schema, new_visit, owner, statuses};

const NET: &str = "east-dorset";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_store_each_change_once_and_pull_one_stream() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    push_through_two_instances_at_once(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_at_once_succeed_where_the_database_defaults_to_serializable() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    // A role whose sessions default to serializable, as some managed databases
    // set: the endpoint must not inherit it for a push.
    let url = role_with(&url, "default_transaction_isolation = 'serializable'").await;
    push_through_two_instances_at_once(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_times_out_waiting_for_its_networks_lock_is_503_and_stores_nothing() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    // A database of its own whose sessions give up on a lock after 200 ms. Its
    // own, so that nothing else waits there: the schema lock every test's
    // connection takes is per database, and another test's migration holding it
    // must not time this one out.
    let database = fresh_schema().replace("t_", "db_");
    let admin = owner(&url).await;
    for statement in [
        format!("CREATE DATABASE {database}"),
        format!("ALTER DATABASE {database} SET lock_timeout = '200ms'"),
    ] {
        admin.batch_execute(&statement).await.unwrap();
    }
    let (server, _) = url.rsplit_once('/').unwrap();
    let url = format!("{server}/{database}");
    let app = TestApp::new(&Backend::Postgres(url.clone())).await;
    let schema = app.schema.clone().unwrap();
    let token = app.device_token(NET, "para-1", "phone-1");
    let push = |n| batch(NET, "phone-1", vec![new_visit("para-1", "phone-1", n)]);
    let (status, _) = app.push(&token, &push(1)).await;
    assert_eq!(status, StatusCode::OK);
    // Another session holds the network's row, as a long push on another
    // instance would.
    let holder = owner(&url).await;
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT * FROM {schema}.sync_networks FOR UPDATE;"
        ))
        .await
        .unwrap();
    let (status, body) = app.push(&token, &push(2)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "unavailable");
    holder.batch_execute("ROLLBACK").await.unwrap();
    let (status, body) = app.push(&token, &push(2)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        statuses(&body),
        ["accepted"],
        "the refused push stored nothing"
    );
}

/// `url` as a new role whose sessions run with `setting`, allowed to make the
/// schemas the tests use.
async fn role_with(url: &str, setting: &str) -> String {
    let role = fresh_schema().replace("t_", "role_");
    owner(url)
        .await
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'role';
             ALTER ROLE {role} SET {setting};
             GRANT CREATE ON DATABASE postgres TO {role};"
        ))
        .await
        .unwrap();
    as_role(url, &role, "role")
}

/// The same batches pushed through two instances at once, from several
/// devices; each change is stored once and both instances pull one stream.
async fn push_through_two_instances_at_once(url: &str) {
    let url = url.to_owned();
    let schema = fresh_schema();
    let one: Arc<dyn Storage> = Arc::new(
        PostgresStorage::connect(&url, Some(&schema), 8)
            .await
            .unwrap(),
    );
    let two: Arc<dyn Storage> = Arc::new(
        PostgresStorage::connect(&url, Some(&schema), 8)
            .await
            .unwrap(),
    );
    let first = TestApp::over(tempfile::tempdir().unwrap(), Some(schema.clone()), one);
    // Both instances share the signing key, as a deployment shares its data dir.
    let second = {
        let mut app = TestApp::over(tempfile::tempdir().unwrap(), Some(schema), two);
        app.signing_key = Arc::clone(&first.signing_key);
        app.state.verifier = Arc::clone(&first.state.verifier);
        app.router = doorstep_server::router(app.state.clone());
        app
    };

    // The same batch through both at once (a device retrying on another
    // instance while the first push is still in flight), from several devices.
    let mut tasks = Vec::new();
    let mut expected = 0;
    for d in 0..6 {
        let device = format!("phone-{d}");
        let clinician = format!("para-{d}");
        let token = first.device_token(NET, &clinician, &device);
        let request = batch(
            NET,
            &device,
            (0..20).map(|i| new_visit(&clinician, &device, i)).collect(),
        );
        expected += request.changes.len();
        for app in [&first, &second] {
            let app_router = app.router.clone();
            let token = token.clone();
            let request = request.clone();
            tasks.push(tokio::spawn(async move {
                let body = serde_json::to_vec(&request).unwrap();
                let response = tower::ServiceExt::oneshot(
                    app_router,
                    axum::http::Request::post("/sync/v1/push")
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .body(axum::body::Body::from(body))
                        .unwrap(),
                )
                .await
                .unwrap();
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap();
                (
                    status,
                    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
                )
            }));
        }
    }
    let mut accepted = 0;
    let mut duplicate = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        for s in statuses(&body) {
            match s.as_str() {
                "accepted" => accepted += 1,
                "duplicate" => duplicate += 1,
                other => panic!("unexpected outcome {other}"),
            }
        }
    }
    assert_eq!((accepted, duplicate), (expected, expected));

    let reader = first.device_token(NET, "para-0", "phone-0");
    let (through_first, _) = first.pull_all(&reader, 25).await;
    let (through_second, _) = second.pull_all(&reader, 50).await;
    assert_eq!(through_first.len(), expected);
    assert_eq!(through_first, through_second);
    let mut ids: Vec<&str> = through_first
        .iter()
        .map(|c| c["change_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), expected, "no change twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_never_falls_back_to_plain_text() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    // The test server offers no TLS: `require` must refuse it, where the
    // default `prefer` (every other test) connects in plain text.
    let separator = if url.contains('?') { '&' } else { '?' };
    let result = PostgresStorage::connect(
        &format!("{url}{separator}sslmode=require"),
        Some(&fresh_schema()),
        1,
    )
    .await;
    assert!(result.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_sees_a_restores_new_epoch_without_a_restart() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    let schema = fresh_schema();
    let connect = || PostgresStorage::connect(&url, Some(&schema), 2);
    let first = TestApp::over(
        tempfile::tempdir().unwrap(),
        Some(schema.clone()),
        Arc::new(connect().await.unwrap()),
    );
    let second = {
        let mut app = TestApp::over(
            tempfile::tempdir().unwrap(),
            Some(schema.clone()),
            Arc::new(connect().await.unwrap()),
        );
        app.signing_key = Arc::clone(&first.signing_key);
        app.state.verifier = Arc::clone(&first.state.verifier);
        app.router = doorstep_server::router(app.state.clone());
        app
    };
    let token = first.device_token(NET, "para-1", "phone-1");
    let changes = (0..3).map(|i| new_visit("para-1", "phone-1", i)).collect();
    first.push(&token, &batch(NET, "phone-1", changes)).await;
    let (_, cursors) = first.pull_all(&token, 10).await;
    let before = cursors.last().unwrap().clone();
    let pull_from = |cursor: &str| format!("/sync/v1/pull?cursor={cursor}");
    assert_eq!(
        second.get(&token, &pull_from(&before)).await.0,
        StatusCode::OK
    );

    // The database is restored and given a new epoch, as the docs say, with
    // both instances left running.
    let client = owner(&url).await;
    client
        .batch_execute(&format!(
            "UPDATE {schema}.sync_epoch SET epoch = gen_random_uuid()::text"
        ))
        .await
        .unwrap();
    for app in [&first, &second] {
        let (status, body) = app.get(&token, &pull_from(&before)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["code"], "bad_cursor");
    }
    // A cursor either makes now, the other takes.
    let (_, cursors) = first.pull_all(&token, 10).await;
    let after = cursors.last().unwrap();
    assert_eq!(
        second.get(&token, &pull_from(after)).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_starting_beside_a_push_under_way_does_not_wait_for_it() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    let schema = fresh_schema();
    PostgresStorage::connect(&url, Some(&schema), 2)
        .await
        .unwrap();
    // A push under way on another instance holds its write lock on the
    // changes table for the length of its transaction.
    let pushing = owner(&url).await;
    pushing
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {schema}.sync_changes IN ROW EXCLUSIVE MODE;"
        ))
        .await
        .unwrap();
    let second = tokio::time::timeout(
        Duration::from_secs(10),
        PostgresStorage::connect(&url, Some(&schema), 2),
    )
    .await;
    pushing.batch_execute("ROLLBACK").await.unwrap();
    let second = second.expect("the second instance waited for the push to end");
    assert!(second.is_ok(), "{:?}", second.err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_missing_or_left_unfinished_is_built_at_the_next_start() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    let app = TestApp::new(&Backend::Postgres(url.clone())).await;
    let schema = app.schema.clone().unwrap();
    let token = app.device_token(NET, "para-1", "phone-1");
    let (status, _) = app
        .push(
            &token,
            &batch(NET, "phone-1", vec![new_visit("para-1", "phone-1", 1)]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // One index gone (a release that adds it, over tables in use), and one
    // whose concurrent build was cut short: it waited for a push under way
    // to end and ran out of time, leaving the index INVALID, which
    // `CREATE INDEX IF NOT EXISTS` takes for built.
    let admin = owner(&url).await;
    admin
        .batch_execute(&format!(
            "DROP INDEX {schema}.sync_changes_supersedes;
             DROP INDEX {schema}.sync_merges_record;"
        ))
        .await
        .unwrap();
    let pushing = owner(&url).await;
    pushing
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {schema}.sync_merges IN ROW EXCLUSIVE MODE;"
        ))
        .await
        .unwrap();
    admin
        .batch_execute("SET statement_timeout = '2s'")
        .await
        .unwrap();
    let build = format!(
        "CREATE INDEX CONCURRENTLY sync_merges_record ON {schema}.sync_merges (network, record_id)"
    );
    admin
        .batch_execute(&build)
        .await
        .expect_err("the build is cut short");
    pushing.batch_execute("ROLLBACK").await.unwrap();
    admin
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();
    let ready = |index: &'static str| {
        let (admin, schema) = (&admin, &schema);
        async move {
            admin
                .query_opt(
                    "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)",
                    &[&format!("{schema}.{index}")],
                )
                .await
                .unwrap()
                .map(|r| r.get::<_, bool>(0))
        }
    };
    assert_eq!(ready("sync_merges_record").await, Some(false));
    admin
        .batch_execute(&format!(
            "CREATE INDEX IF NOT EXISTS sync_merges_record ON {schema}.sync_merges (network, record_id)"
        ))
        .await
        .unwrap();
    assert_eq!(ready("sync_merges_record").await, Some(false));

    PostgresStorage::connect(&url, Some(&schema), 2)
        .await
        .unwrap();
    for index in [
        "sync_changes_record",
        "sync_changes_supersedes",
        "sync_merges_record",
    ] {
        assert_eq!(ready(index).await, Some(true), "{index} is not ready");
    }
    // What was stored is still served.
    assert_eq!(app.pull_all(&token, 10).await.0.len(), 1);
}
