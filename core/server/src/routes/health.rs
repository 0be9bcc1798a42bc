//! `GET /healthz`: unauthenticated check for load balancers and the operator
//! that this instance can serve: its database answers and can store (on
//! SQLite, the one writer thread still takes work; on PostgreSQL, the session
//! is not read-only) within [`HEALTH_TIMEOUT`].
//!
//! A failure is 503 with a short fixed reason, never the database's own
//! message (the endpoint's address, table names and driver errors stay in
//! the log).

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

/// The health route.
pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
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
