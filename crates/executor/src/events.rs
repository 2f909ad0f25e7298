//! The NDJSON lines `plan apply --format json` writes around the run: its start, a dry run,
//! and why it could not start. The run's own events are [`crate::Event`]; together they are
//! [`crate::schema::EventLine`].

use plan_bkjob::ApiVersion;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The version of the NDJSON event stream (`format_version` of `apply_started` and `error`).
pub const EVENTS_FORMAT_VERSION: u32 = 1;

/// A line the caller of [`crate::apply`] writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApplyEvent {
    /// The first line.
    ApplyStarted {
        /// [`EVENTS_FORMAT_VERSION`].
        format_version: u32,
        /// Plan name.
        plan: String,
        /// The plan's API family.
        #[schemars(with = "crate::api::ApiVersionSchema")]
        api: ApiVersion,
        /// What the run talks to.
        target: Target,
        /// The endpoint's URL.
        endpoint: String,
        /// Nothing is submitted.
        dry_run: bool,
        /// Pushes in the plan.
        pushes: usize,
        /// Stages.
        stages: usize,
    },
    /// What a dry run would submit, stage by stage.
    DryRun {
        /// The stages in order.
        stages: Vec<DryRunStage>,
    },
    /// Something the archived stream must say too (`--insecure-skip-tls-verify`), right
    /// after `apply_started`.
    Warning {
        /// What the run does that it should not.
        message: String,
    },
    /// The apply could not start (or could not go on: a journal write failed).
    Error {
        /// [`EVENTS_FORMAT_VERSION`].
        format_version: u32,
        /// What went wrong.
        message: String,
        /// What the user can do about it.
        help: Option<String>,
    },
}

/// What an apply talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The embedded simulator (`--sandbox`).
    Sandbox,
    /// A BK-JOB endpoint.
    Endpoint,
}

/// One stage of a dry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DryRunStage {
    /// Stage number (1-based).
    pub stage: usize,
    /// Its pushes in file order.
    pub pushes: Vec<DryRunPush>,
}

/// One push of a dry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DryRunPush {
    /// Push name.
    pub name: String,
    /// `enabled` in the plan.
    pub enabled: bool,
    /// The request body it would send (JOB's `fast_push_file` / `fast_transfer_file`).
    pub request: serde_json::Value,
}
