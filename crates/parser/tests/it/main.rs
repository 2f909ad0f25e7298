//! Integration tests of plan-parser: fixtures, diagnostics snapshots, properties.

mod diagnostics;
mod hostile;
mod includes;
mod limits;
mod properties;
mod release;
mod valid;
