//! Reads `plan` TOML files into a validated [`Plan`].
//!
//! The TOML text is parsed into a spanned tree (`toml::de::DeTable`) and walked by hand, so
//! that one wrong key or type does not hide the others: every problem of a plan is reported
//! in one run, each a [`Problem`] with a stable code (`plan::parser::...`) and a label at the
//! exact span, in the right file when it comes from an `include`d file. The result is either a
//! [`Parsed`] plan (plus warnings) or [`PlanErrors`], a miette diagnostic holding every
//! problem, sorted by position.
//!
//! Rules that need the dependency graph (ordering, cycles between pushes, write conflicts)
//! live in `plan-graph`, which reports through the same [`Problem`] type.
//!
//! With the `schema` feature, `plan_schema()` and `include_schema()` return the JSON Schema of
//! the format (for editors), generated from types that the tests keep in step with the parser.

#![warn(missing_docs)]

mod hosts;
mod kind;
mod loader;
mod model;
mod paths;
mod problem;
mod raw;
mod release;
// Without the feature, the tests still build it (schemars is a dev-dependency): the parser's
// key lists are checked against it in every test run.
#[cfg(any(feature = "schema", test))]
#[cfg_attr(not(feature = "schema"), allow(unreachable_pub))]
mod schema;
mod validate;
mod vars;

use std::path::Path;

pub use kind::{PLAN_INVALID, ParseErrorKind};
pub use loader::{
    FsLoader, IncludeRefused, MAX_INCLUDE_BYTES, SourceLoader, include_root, read_include,
};
pub use model::*;
pub use paths::{PathError, validate_job_path};
pub use problem::{AttachedProblem, PlanErrors, Problem, Severity, reports, sort_problems};
pub use raw::looks_like_credential;
pub use release::{MaxFailed, Release, Rolling, RollingMode, RollingOver, Verify, mode_name};
#[cfg(feature = "schema")]
pub use schema::{include_schema, plan_schema};

/// Options that change how a plan is read.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// `--var NAME=VALUE` overrides, applied over `[vars]` (later entries win).
    pub vars: Vec<(String, String)>,
    /// `--api`: overrides `[plan] api` when set.
    pub api: Option<ApiVersion>,
}

/// A valid plan and the warnings found while reading it.
#[derive(Debug)]
pub struct Parsed {
    /// The validated plan.
    pub plan: Plan,
    /// Warnings (unused vars and groups, overwriting copies, ...), sorted by position.
    pub warnings: Vec<Problem>,
}

/// Reads the plan at `path` (and the files it includes) from the filesystem.
pub fn parse_file(path: &Path, options: &ParseOptions) -> Result<Parsed, PlanErrors> {
    parse_with(path, &FsLoader, options)
}

/// Reads the plan at `path`, loading it and its includes through `loader`.
pub fn parse_with(
    path: &Path,
    loader: &dyn SourceLoader,
    options: &ParseOptions,
) -> Result<Parsed, PlanErrors> {
    validate::parse(path, loader, options)
}

/// Parses `text` as the plan named `name`; includes are resolved relative to `name` and read
/// from the filesystem under the same rules as [`FsLoader`]'s. For tests and fuzzing.
pub fn parse_str(name: &str, text: &str, options: &ParseOptions) -> Result<Parsed, PlanErrors> {
    let loader = loader::MainTextLoader {
        main: Path::new(name).to_path_buf(),
        text: text.to_owned(),
    };
    validate::parse(Path::new(name), &loader, options)
}
