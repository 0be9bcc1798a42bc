//! What can go wrong when a problem is handed to the optimiser. Errors name the field and the
//! rule, never a patient's details.

use doorstep_domain::ValidationError;

/// Why a problem could not be planned or a file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoutingError {
    /// A value no real day can have, an item defined twice, an impossible re-plan event or a
    /// budget that cannot work: the domain's one validation error, so the field's JSON path
    /// (`visits[3].minutes`, `events[0].minutes`, `budget.time_limit`) reaches the CLI and the
    /// shells as it does for every other refused input. The path says which input was wrong,
    /// so the message does not claim it was the problem.
    #[error("invalid {0}")]
    Invalid(#[from] ValidationError),
    /// A re-plan event names a clinician or visit the plan does not know. Kept apart from
    /// [`RoutingError::Invalid`] because the caller can act on it (the shell's list of today's
    /// clinicians or visits is out of date) rather than correct a value.
    #[error("{field}: unknown {kind} {id}")]
    UnknownId {
        /// The JSON path of the event's field that names it, as in `events[2].clinician`.
        field: String,
        /// `clinician` or `visit`.
        kind: &'static str,
        /// The identifier given.
        id: String,
    },
    /// A VRPLIB instance file could not be read.
    #[error("VRPLIB: {0}")]
    Vrplib(String),
}
