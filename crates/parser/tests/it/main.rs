//! Integration tests of plan-parser: fixtures, diagnostics snapshots, properties.

mod diagnostics;
mod properties;
mod valid;
