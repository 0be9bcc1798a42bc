//! `/healthz` as a load balancer sees it when PostgreSQL goes away, and what a
//! device's push and pull get then: the endpoint reaches its database through
//! a proxy, which is then closed. (A
//! stopped or stuck SQLite writer is tested beside the writer, in
//! `src/storage/sqlite.rs`: only a failing write can stop it.)

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use doorstep_server::storage::postgres::PostgresStorage;
use serde_json::{Value, json};

use crate::device::NET;
use crate::helpers::{Backend, TestApp, batch, fresh_schema, new_visit};
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
    let schema = fresh_schema();
    let storage = PostgresStorage::connect(&through(&url, proxy.addr), Some(&schema), 4)
        .await
        .unwrap();
    let app = TestApp::over(
        tempfile::tempdir().unwrap(),
        Some(schema),
        Arc::new(storage),
    );
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
