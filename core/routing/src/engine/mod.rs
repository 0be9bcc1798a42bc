//! The vehicle-routing engine: a hybrid genetic search with granular local search and
//! constant-time move pricing by time-window segments, which anneals its first solution by ruin
//! and recreate when the budget is too short for the genetic search to converge. It knows
//! nothing of clinicians or patients; [`crate::vrptw`] and the planner compile their problems
//! into its [`Instance`].
//!
//! | file | holds |
//! |---|---|
//! | `segment.rs` | time-window segments and the travel matrix |
//! | `instance.rs` | the compiled problem and how a route is priced |
//! | `individual.rs` | one solution and the distance between two |
//! | `local_search.rs` | the moves and the descent to a local optimum |
//! | `local_search/ruin.rs` | ruin and recreate under annealing, for budgets too short to evolve |
//! | `genetic.rs` | population, crossover, penalties, the main loop |

mod genetic;
mod individual;
mod instance;
mod local_search;
mod segment;

pub(crate) use genetic::{Limits, Params, solve};
pub(crate) use instance::{Client, Instance, Vehicle, Weights};
pub(crate) use segment::{Matrix, NO_LOC};

use crate::Budget;

impl Budget {
    /// The engine's stopping rule for this budget, counted from now.
    pub(crate) fn limits(&self) -> Limits {
        Limits {
            deadline: self.time_limit.map(|t| std::time::Instant::now() + t),
            max_iterations: self.iterations,
        }
    }
}
