//! The `doorstep` command.
fn main() {}
