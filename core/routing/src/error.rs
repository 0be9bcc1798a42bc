//! What can go wrong when a problem is handed to the optimiser. Messages name the field and the
//! rule, never a patient's details.

/// Why a problem could not be planned or a file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoutingError {
    /// The problem refers to something it does not define, or a value is out of range.
    #[error("invalid problem: {0}")]
    Invalid(String),
    /// A re-plan event names a clinician or visit the plan does not know.
    #[error("unknown {kind} in event: {id}")]
    UnknownId {
        /// `clinician` or `visit`.
        kind: &'static str,
        /// The identifier given.
        id: String,
    },
    /// A VRPLIB instance file could not be read.
    #[error("VRPLIB: {0}")]
    Vrplib(String),
}
