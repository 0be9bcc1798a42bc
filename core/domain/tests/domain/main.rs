//! Domain integration tests, one binary: the NEWS2 chart, the serde forms of
//! every record type, the bounds on a record's size, and the demo network.

mod demo;
mod limits;
mod news2_chart;
mod records;
