//! Domain integration tests, one binary: the NEWS2 chart, the serde forms of
//! every record type, and the demo network.

mod demo;
mod news2_chart;
mod records;
