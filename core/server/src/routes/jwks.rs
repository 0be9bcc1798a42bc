//! `GET /.well-known/jwks.json`: the endpoint's own public keys (the signing
//! key, then any retired key still trusted), so other services can verify the
//! tokens it issues, across a rotation too.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use crate::app::AppState;

/// The JWKS route.
pub fn router() -> Router<AppState> {
    Router::new().route("/.well-known/jwks.json", get(jwks))
}

async fn jwks(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "keys": state.verifier.own_jwks() }))
}
