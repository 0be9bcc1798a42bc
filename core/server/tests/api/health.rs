//! `/healthz` as a load balancer sees it when PostgreSQL goes away or turns
//! read-only, and what a device's push and pull get then: the endpoint
//! reaches its database through a proxy, which is then closed, or signs in as
//! a role whose sessions are then made read-only. (A stuck SQLite writer, and
//! a panicking write that no longer stops it, are tested beside the writer,
//! in `src/storage/sqlite.rs`.)

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use doorstep_server::storage::StorageError;
use doorstep_server::storage::postgres::PostgresStorage;
use serde_json::{Value, json};

use crate::device::NET;
use crate::helpers::{Backend, TestApp, as_role, batch, new_visit, owner};
use crate::proxy::Proxy;

/// The server a `postgres://user:password@host:port/db` URL names.
async fn server_of(url: &str) -> SocketAddr {
    let (_, rest) = url.split_once('@').expect("a URL with credentials");
    let host_port = rest.split('/').next().unwrap();
    tokio::net::lookup_host(host_port)
        .await
        .unwrap()
        .next()
        .unwrap()
}

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    let (credentials, rest) = url.split_once('@').unwrap();
    let (_, database) = rest.split_once('/').unwrap();
    format!("{credentials}@{addr}/{database}")
}

async fn healthz(app: &TestApp) -> (StatusCode, Value) {
    app.send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_ok_while_postgres_answers_and_503_with_a_reason_once_it_cannot_be_reached() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    let proxy = Proxy::start(server_of(&url).await).await;
    let app = TestApp::new(&Backend::Postgres(through(&url, proxy.addr))).await;
    assert_eq!(
        healthz(&app).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );

    proxy.close();
    let (status, body) = healthz(&app).await;
    assert_eq!(
        (status, body.clone()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable", "reason": "the database does not answer"})
        )
    );
    let text = body.to_string().to_lowercase();
    for internal in [
        "postgres",
        "connect",
        "refused",
        "pool",
        &proxy.addr.to_string(),
    ] {
        assert!(!text.contains(internal), "{text}");
    }

    // A device's push and pull are told to come back later (503), not that
    // the endpoint failed (500), whether the connection in hand was cut or
    // no new one can be made; nothing internal is in the answer.
    let token = app.device_token(NET, "para-1", "phone-1");
    for _ in 0..3 {
        let (status, body) = app
            .push(
                &token,
                &batch(NET, "phone-1", vec![new_visit("para-1", "phone-1", 1)]),
            )
            .await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::SERVICE_UNAVAILABLE, &json!("unavailable")),
            "{body}"
        );
        assert!(!body.to_string().contains("postgres"), "{body}");
        let (status, body) = app.get(&token, "/sync/v1/pull").await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::SERVICE_UNAVAILABLE, &json!("unavailable")),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_turns_read_only_is_503_with_a_reason_and_loses_nothing() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    // The endpoint signs in as a role of its own, so that making that role's
    // sessions read-only (as a failover onto a standby would) touches no other
    // test.
    let role = format!("r_{}", uuid::Uuid::now_v7().simple());
    let admin = owner(&url).await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN SUPERUSER PASSWORD 'standby-test'"
        ))
        .await
        .unwrap();
    let endpoint_url = as_role(&url, &role, "standby-test");
    let app = TestApp::new(&Backend::Postgres(endpoint_url.clone())).await;
    let schema = app.schema.clone().unwrap();
    let token = app.device_token(NET, "para-1", "phone-1");
    let (status, body) = app
        .push(
            &token,
            &batch(NET, "phone-1", vec![new_visit("para-1", "phone-1", 1)]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        healthz(&app).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );

    // Every new session of the role is read-only from now on, and the
    // sessions the endpoint holds are cut, so it must make new ones.
    admin
        .batch_execute(&format!(
            "ALTER ROLE {role} SET default_transaction_read_only = on;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
        ))
        .await
        .unwrap();

    let read_only = (
        StatusCode::SERVICE_UNAVAILABLE,
        json!({
            "status": "unavailable",
            "reason": "the database only takes reads; point the endpoint at the primary"
        }),
    );
    // The first request may still meet a connection being cut.
    let mut answer = healthz(&app).await;
    for _ in 0..20 {
        if answer == read_only {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        answer = healthz(&app).await;
    }
    assert_eq!(answer, read_only);

    // A push is told to come back later (503), not that the endpoint failed;
    // what was stored before is still served.
    let (status, body) = app
        .push(
            &token,
            &batch(NET, "phone-1", vec![new_visit("para-1", "phone-1", 2)]),
        )
        .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("unavailable")),
        "{body}"
    );
    let (status, body) = app.get(&token, "/sync/v1/pull").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changes"].as_array().map(Vec::len), Some(1), "{body}");

    // An endpoint started against a read-only database refuses to start,
    // saying why and what to do.
    let refused = PostgresStorage::connect(&endpoint_url, Some(&schema), 4)
        .await
        .err()
        .expect("a read-only database is refused");
    assert!(matches!(refused, StorageError::ReadOnly), "{refused:?}");
    assert!(
        refused
            .to_string()
            .contains("target_session_attrs=read-write"),
        "{refused}"
    );

    // The role goes, with the schema it made.
    drop(app);
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}';
             DROP OWNED BY {role}; DROP ROLE {role}"
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_health_checks_asks_the_database_one_at_a_time() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    let dir = tempfile::tempdir().unwrap();
    let (inner, schema) = Backend::Sqlite.storage(&dir).await;
    let storage = Arc::new(crate::watched::Watched::slow_to_answer(
        inner,
        std::time::Duration::from_millis(200),
    ));
    let app = Arc::new(TestApp::over(dir, schema, storage.clone()));
    let mut asking = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let app = Arc::clone(&app);
        asking.spawn(async move { healthz(&app).await });
    }
    let answers = asking.join_all().await;
    assert!(
        answers
            .iter()
            .all(|a| *a == (StatusCode::OK, json!({"status": "ok"}))),
        "{answers:?}"
    );
    assert_eq!(storage.most_pings_at_once.load(Ordering::SeqCst), 1);
    // The first check answers every request that came while it ran.
    assert!(
        storage.pings.load(Ordering::SeqCst) <= 2,
        "{}",
        storage.pings.load(Ordering::SeqCst)
    );
}
