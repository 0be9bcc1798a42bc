//! The round optimiser: plans and re-plans the day's home visits across a primary care
//! network's practices, and explains every visit it leaves out. Pure Rust, one thread, no I/O,
//! deterministic for a seed under an iteration budget.
//!
//! | file | holds |
//! |---|---|
//! | `model.rs` | the problem: clinicians, visits, care homes, travel, budget |
//! | `clock.rs` | time of day |
//! | `plan.rs` | the answer: rounds, stops, unplanned visits with reasons, objective weights |
//! | `planner.rs` | [`plan()`]: compile, search, replay, explain |
//! | `replan.rs` | [`replan`] and its [`Event`]s |
//! | `validate.rs` | the rules a problem must meet before it is planned |
//! | `vrptw.rs` | VRPLIB VRPTW instances for benchmarking the engine |
//! | `engine/` | the hybrid genetic search shared by all of the above |
//! | `error.rs` | [`RoutingError`] |

mod clock;
mod engine;
mod error;
mod model;
pub mod plan;
mod planner;
mod replan;
mod validate;
pub mod vrptw;

pub use clock::Clock;
pub use error::RoutingError;
pub use model::{
    Break, Budget, CareHome, Clinician, Location, Problem, Resident, Travel, TravelMatrix, Urgency,
    Visit, Window,
};
pub use plan::{FreeFrom, Plan, Reason, Round, Stop, StopKind, Summary, Unplanned};
pub use planner::plan;
pub use replan::{Event, replan};
