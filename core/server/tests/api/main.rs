//! The endpoint's integration tests, one binary: the sync suite on SQLite and
//! PostgreSQL, the JWT negative catalogue, network isolation as a property,
//! two instances on one PostgreSQL, the health check, the device's sync
//! engine end to end with fault injection, and a change the endpoint refused
//! corrected on the device without forking its record.

mod auth;
mod backup;
mod correction;
mod device;
mod faults;
mod health;
mod helpers;
mod instances;
mod isolation;
mod proxy;
mod recovery;
mod revocation;
mod startup;
mod sync_suite;
mod watched;
