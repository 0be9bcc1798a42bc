//! The round optimiser. Filled in by the optimiser issue.
