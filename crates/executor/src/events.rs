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

/// What every NDJSON line carries besides its event: when it was written and the run it
/// belongs to. Written by whoever writes the line ([`LineStamp::stamp`]), so a reader can
/// order lines from several runs and tell them apart without the `run_started` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineStamp {
    /// RFC 3339, UTC, milliseconds: `2026-12-06T12:00:00.123Z`.
    pub ts: String,
    /// The run's id, once the run has one (from `run_started` on).
    pub run_id: Option<String>,
}

impl LineStamp {
    /// A stamp for a line written now.
    pub fn now(run_id: Option<&str>) -> Self {
        LineStamp {
            ts: crate::journal::now(),
            run_id: run_id.map(str::to_owned),
        }
    }

    /// The line as JSON with `ts` and `run_id` added after its own fields (a line that has
    /// a `run_id` of its own, `run_started`, keeps it where it is).
    pub fn stamp(&self, line: &impl Serialize) -> serde_json::Result<serde_json::Value> {
        let mut value = serde_json::to_value(line)?;
        if let serde_json::Value::Object(fields) = &mut value {
            fields.insert("ts".into(), self.ts.clone().into());
            if let Some(run_id) = &self.run_id {
                fields.insert("run_id".into(), run_id.clone().into());
            }
        }
        Ok(value)
    }
}

/// The schema's view of a stamped line: the line's own fields, then the stamp's. Never
/// built: lines are stamped by [`LineStamp::stamp`], and only this type's schema is used.
#[derive(JsonSchema)]
#[allow(dead_code)]
pub(crate) struct StampedSchema<T: JsonSchema> {
    #[serde(flatten)]
    _line: T,
    /// When the line was written: RFC 3339, UTC, with milliseconds (`2026-12-06T12:00:00.123Z`).
    #[schemars(regex(pattern = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"))]
    ts: String,
    /// The run's id (the journal's file stem), on every line from `run_started` on; the lines
    /// written before the run has one (`apply_started`, `dry_run`, an `error` before the
    /// journal is open) have none.
    #[serde(default)]
    run_id: Option<String>,
}
