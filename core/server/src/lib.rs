//! Doorstep's sync endpoint: where devices push visit records and pull their
//! network's changes, scoped by the network named in a verified token.
//!
//! | module | holds |
//! | --- | --- |
//! | [`app`] | configuration, state, router, [`Application`] |
//! | [`auth`] | JWT verification, the own signing key, the [`auth::Caller`] extractor |
//! | [`routes`] | `/healthz`, `/.well-known/jwks.json`, `/sync/v1/...` |
//! | [`storage`] | the [`storage::Storage`] trait, its SQLite and PostgreSQL backends |
//! | [`error`] | [`error::ApiError`], turned into precise 4xx or plain 5xx |
//! | [`token`] | issuing the endpoint's own tokens |
//!
//! The wire types are [`doorstep_sync::wire`], shared with devices.

pub mod app;
pub mod auth;
pub mod error;
mod files;
pub mod routes;
pub mod storage;
pub mod token;

pub use app::{AppState, Application, Config, router};
