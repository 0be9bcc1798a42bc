//! The endpoint's integration tests, one binary: the sync suite on SQLite and
//! PostgreSQL, the JWT negative catalogue, network isolation as a property,
//! and two instances on one PostgreSQL.

mod auth;
mod helpers;
mod instances;
mod isolation;
mod sync_suite;
