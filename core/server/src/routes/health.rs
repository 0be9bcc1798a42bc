//! `GET /healthz`: unauthenticated check for load balancers and the operator
//! that this instance can serve: its database answers and can store (on
//! SQLite, the one writer thread still takes work; on PostgreSQL, the session
//! is not read-only) within [`HEALTH_TIMEOUT`].
//!
//! A failure is 503 with a short fixed reason, never the database's own
//! message (the endpoint's address, table names and driver errors stay in
//! the log).
//!
//! Anyone may ask, so asking must not cost the database: one check runs at a
//! time, and requests that come while it runs take its answer. A flood of
//! checks thus holds at most one pool connection on PostgreSQL, and adds one
//! job at a time behind the SQLite writer (one every [`HEALTH_TIMEOUT`] while
//! the writer is stuck, as each check that times out leaves its job queued).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::storage::StorageError;

/// Longest the database check may take before `/healthz` answers 503: under
/// a load balancer's usual check timeout (5 s), so a stuck writer or an
/// unreachable PostgreSQL gets a 503 with a reason rather than no answer.
pub const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

type Answer = (StatusCode, Json<Value>);

/// The check in progress, shared by the requests that wait for it.
#[derive(Default)]
struct Checks {
    /// How many checks have ended; changed only with `last` held.
    ended: std::sync::atomic::AtomicU64,
    /// The last check's answer; held while a check runs.
    last: tokio::sync::Mutex<Option<Answer>>,
}

/// The health route.
pub fn router() -> Router<AppState> {
    let checks = std::sync::Arc::new(Checks::default());
    Router::new().route(
        "/healthz",
        get(move |State(state): State<AppState>| async move {
            use std::sync::atomic::Ordering;
            let seen = checks.ended.load(Ordering::SeqCst);
            let mut last = checks.last.lock().await;
            // A check that ended while this request waited answers it too.
            if checks.ended.load(Ordering::SeqCst) != seen
                && let Some(answer) = last.as_ref()
            {
                return answer.clone();
            }
            let answer = healthz(&state).await;
            *last = Some(answer.clone());
            checks.ended.fetch_add(1, Ordering::SeqCst);
            answer
        }),
    )
}

async fn healthz(state: &AppState) -> Answer {
    let reason = match tokio::time::timeout(HEALTH_TIMEOUT, state.storage.ping()).await {
        Ok(Ok(())) => return (StatusCode::OK, Json(json!({ "status": "ok" }))),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "health check failed");
            match e {
                StorageError::ReadOnly => {
                    "the database only takes reads; point the endpoint at the primary"
                }
                _ => "the database does not answer",
            }
        }
        Err(_) => {
            tracing::error!(
                timeout = ?HEALTH_TIMEOUT,
                "health check failed: the database did not answer in time"
            );
            "the database did not answer in time"
        }
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "reason": reason })),
    )
}
