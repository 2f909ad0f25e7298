//! Orders the pushes of a plan and turns each push into its BK-JOB request.
//!
//! [`build`] takes a validated [`plan_parser::Plan`] and returns a [`PlanGraph`]: one node per
//! push, an edge for every `after` entry and for every inferred file flow (a push that reads
//! what another delivers runs after it), and stages (longest-path levels, file order within a
//! stage). Cycles and write conflicts between unordered pushes are reported as
//! [`plan_parser::Problem`]s with labels at the spans that cause them.
//!
//! [`request_for`] is the only place a JOB request body is built: `plan show` prints it and
//! `plan apply` sends it ([`request_for_hosts`] narrows it to the hosts a retry re-pushes to).
//! [`dot`], [`mermaid`], [`graph_json`] and [`show_json`] render the graph and the dry-run
//! document byte-stably. [`diff()`] compares two plans push by push. The JSON documents are
//! typed structs, and [`schema`] gives their JSON Schemas. [`content_hash`] is the plan's
//! `sha256:` over what would be sent and in what order, and [`SavedPlan`] the document of
//! `plan show --save` that `plan apply` applies exactly.
//!
//! Disabled pushes (`enabled = false`) stay in the graph with their edges and stages, marked by
//! [`PlanGraph::is_skipped`]; a run treats one as done as soon as its own dependencies are, so
//! its dependents never wait for skipped work but keep their order relative to everything else.

#![warn(missing_docs)]

mod build;
mod diff;
mod graph;
mod hosts;
mod infer;
mod kind;
mod path;
mod render;
mod request;
mod saved;
pub mod schema;
mod show_release;

pub use build::build;
pub use diff::{
    Attention, Cause, Change, ChangedPush, DiffSide, EdgeChange, FieldChange, GroupChange,
    HostsDelta, PlanDiff, PushEntry, Renamed, StageMove, VarChange, diff, diff_json, fields_json,
};
pub use graph::{Edge, EdgeKind, FileFlow, PlanGraph, Stage};
pub use hosts::{compact_hosts, compact_runs};
pub use kind::GraphErrorKind;
pub use render::{
    FORMAT_VERSION, MERMAID_MAX_EDGES, MermaidDiagram, dot, graph_json, mermaid, mermaid_diagram,
    problem_json, show_json, write_show_json, written_hosts,
};
pub use request::{JobRequest, request_for, request_for_host_ids, request_for_hosts};
pub use saved::{
    EmbeddedSources, HASH_PREFIX, MAX_SAVED_BYTES, Provenance, PushDifference,
    SAVED_FORMAT_VERSION, SavedEdge, SavedOptions, SavedPlan, SavedPlanError, SavedPush,
    SavedSource, SavedStage, SavedVar, canonical_json, compare_pushes, content_hash, hash_of,
    hashed_pushes, is_hash, route_name,
};

#[cfg(test)]
mod testutil;

#[cfg(test)]
mod props;
