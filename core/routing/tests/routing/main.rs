//! Integration tests of the round optimiser, one binary (see STYLE.md): planning and its
//! reasons, re-planning events, and the VRPTW engine checked against an independent checker.

mod fixtures;
mod plan;
mod properties;
mod replan;
mod validate;
mod vrptw;
