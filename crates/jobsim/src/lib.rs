//! `plan-jobsim`: a BlueKing JOB simulator for the file-distribution API.
//!
//! It serves JOB's ESB paths (`/api/c/compapi/v2/job/...`, `/api/c/compapi/v2/jobv3/...`)
//! and the API-gateway paths (`/api/bk-job/{stage}/api/v3/...`) with JOB's validation
//! order, codes, envelopes and status model, and really moves files between sandbox hosts:
//! `ROOT/hosts/<bk_cloud_id>/<ip>/` is the root filesystem of one host. `ROOT/jobsim.toml`
//! (optional, see [`Config`]) describes businesses, accounts, apps, timings and faults.
//! Every call is appended to `ROOT/.jobsim/requests.jsonl` without credentials (bounded: see
//! the README). Every path is resolved beneath its host's directory: nothing outside a host is
//! read or written.
//!
//! Time comes from tokio's clock, so tests can run jobs on a paused clock; reported
//! timestamps are the wall clock at start plus tokio's elapsed time.

#![warn(missing_docs)]

mod cmdb;
mod coerce;
mod config;
mod dispatch;
mod engine;
mod error;
mod faults;
mod file_sources;
mod front;
mod host;
mod hostfs;
mod instance_list;
mod job;
mod job_plans;
mod operate;
mod paths;
mod persist;
mod query;
mod reqlog;
mod rolling;
mod script;
mod server;
mod shell;
mod sources;
mod step_status;
mod submit;
mod transfer;
mod world;

pub use config::{
    Account, App, Business, Config, FaultKind, FaultRule, FileSourceConfig, HostConfig,
    SimSettings, TopoNode, UnknownFaultKind,
};
pub use error::Error;
pub use reqlog::RecordedRequest;
pub use server::{JobSim, RunningSim, SimOptions, SimState, router};
