//! Integration tests of plan-parser: fixtures, diagnostics snapshots, properties.

mod diagnostics;
mod hostile;
mod properties;
mod valid;
