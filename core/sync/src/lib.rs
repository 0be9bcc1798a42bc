//! Doorstep's sync protocol: the versioned wire types the device and the
//! endpoint share, (on the device) the engine that pushes the outbox and
//! pulls the network's changes, and the IT team's client for what only a
//! coordinator may ask.
//!
//! | module | holds |
//! | --- | --- |
//! | [`wire`] | request and response types of `/sync/v1/`, pinned by snapshots |
//! | [`engine`] | the device's sync engine over the store's outbox and pull API |
//! | [`endpoint`] | which URLs a token may be sent to (https, or http to this machine) |
//! | [`admin`] | what an IT team asks of the endpoint (revoking a device) |
//! | `fixtures` | synthetic records for tests and benchmarks (feature `fixtures`) |
//!
//! The endpoint (`doorstep-server`) depends on this crate for [`wire`] and
//! [`endpoint`] (it fetches an identity provider's keys by the same rule); it
//! does not use the engine.

pub mod admin;
pub mod endpoint;
pub mod engine;
pub mod wire;

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
