//! The JSON Schemas of what the executor writes for others to read: the journal's lines and
//! the NDJSON events of `plan apply --format json`. Generated from the types that serialise
//! them, so a schema cannot drift from the output.

use schemars::{JsonSchema, Schema, generate::SchemaSettings};
use serde::Serialize;

use crate::events::{ApplyEvent, StampedSchema};
use crate::journal::Record;
use crate::report::Event;

/// One line of `plan apply --format json`: a line the caller writes around the run
/// ([`ApplyEvent`]) or one of the run's [`Event`]s.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
#[schemars(title = "plan apply --format json: one NDJSON line")]
pub enum EventLine {
    /// Written by the caller: the start of the apply, a dry run, or why it could not start.
    Apply(ApplyEvent),
    /// Sent by the run.
    Run(Event),
}

/// The schema of one journal line ([`Record`], `STATE/runs/<plan>/<run-id>.jsonl`).
pub fn journal_schema() -> Schema {
    let mut schema = generator().into_root_schema_for::<Record>();
    schema.insert("title".into(), "plan journal: one line".into());
    schema
}

/// The schema of one NDJSON line of `plan apply --format json` ([`EventLine`]).
pub fn events_schema() -> Schema {
    let mut schema = generator().into_root_schema_for::<StampedSchema<EventLine>>();
    schema.insert(
        "title".into(),
        "plan apply --format json: one NDJSON line".into(),
    );
    schema.insert(
        "description".into(),
        "An event (a line the caller writes around the run, or one of the run's events), stamped with when it was written (`ts`) and the run's id (`run_id`, once the run has one).".into(),
    );
    schema
}

fn generator() -> schemars::SchemaGenerator {
    SchemaSettings::draft2020_12().into_generator()
}
