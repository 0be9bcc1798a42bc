//! Doorstep's clinical domain: the values every other crate passes around.
//!
//! Everything a person types or a practice system sends is parsed here into a
//! checked type before anything else sees it, so an impossible value is refused
//! once, at the edge, with an error that names the field and the reason (never
//! the patient or the value). The crate is plain Rust with no I/O: the store,
//! the sync endpoint, the optimiser's adapters and the uniffi surface all reuse
//! it.
//!
//! | module | holds |
//! | --- | --- |
//! | [`error`] | [`ValidationError`], the one error every parser returns |
//! | [`nhs_number`] | NHS numbers with their Modulus 11 check digit |
//! | [`location`] | WGS84 points and great-circle distance |
//! | [`text`] | bounded free text and identifiers |
//! | [`network`] | networks, practices, clinicians, skills and shifts |
//! | [`patient`] | patients and care homes |
//! | [`visit`] | visit requests, urgency and time windows |
//! | [`news2`] | the NEWS2 engine (RCP 2017 chart) |
//! | [`record`] | visit records and their versions |
//! | [`medication_review`] | structured medication reviews for care-home residents |
//! | [`history`] | append-only version histories, heads and forks |
//! | [`demo`] | the deterministic synthetic demo network |

pub mod demo;
pub mod error;
pub mod history;
pub mod location;
pub mod medication_review;
pub mod network;
pub mod news2;
pub mod nhs_number;
pub mod patient;
pub mod record;
pub mod text;
pub mod visit;

pub use error::ValidationError;
pub use location::Location;
pub use nhs_number::NhsNumber;
