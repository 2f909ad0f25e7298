//! One module per command; each exposes `run(args, printer) -> anyhow::Result<ExitStatus>`.
//!
//! `Err` is reserved for failures outside the plan (I/O, an unreachable endpoint): the caller
//! prints them and exits 4. Plan problems are rendered by the command and mapped to exit 1.

pub(crate) mod apply;
pub(crate) mod check;
pub(crate) mod completions;
pub(crate) mod diff;
pub(crate) mod drift;
pub(crate) mod graph;
pub(crate) mod import;
pub(crate) mod report;
pub(crate) mod schema;
pub(crate) mod show;
