//! `GET /.well-known/jwks.json`: the endpoint's own public signing key, so
//! other services can verify the tokens it issues.

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
    Json(json!({ "keys": [state.signing_key.public_jwk()] }))
}
