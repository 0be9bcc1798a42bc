//! The endpoint's routes, one module per resource, each with its own
//! `router()`; [`crate::app::router`] merges them and adds the layers.

pub mod health;
pub mod jwks;
pub mod sync;
