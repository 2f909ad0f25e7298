//! Runs a validated, ordered plan against BK-JOB.
//!
//! [`apply`] takes the plan, its graph, a [`JobApi`] (normally [`BkJobApi`] over
//! `plan_bkjob::Client`), [`Settings`], an injected [`Interrupt`] and a channel for [`Event`]s.
//! It takes the plan's [lock](PlanLock), writes the [journal](Journal) line by line (each line
//! on disk before the action it records; lines of concurrent pushes share one fsync), runs
//! the pushes stage by stage (or eagerly) with at most `parallelism` jobs in flight, follows
//! every job to its end, and returns a [`RunReport`]. It never prints and never listens for signals: the caller renders events and
//! decides what an interrupt is. `ARCHITECTURE.md` describes the design.

#![warn(missing_docs)]

mod api;
mod batches;
mod confirm;
mod converge;
mod events;
mod interrupt;
mod job_batches;
mod journal;
mod lock;
mod options;
mod preflight;
mod progress;
mod push;
mod rebuild;
mod refresh;
mod report;
mod run;
mod run_tag;
pub mod schema;
mod state_dir;
mod verify;

pub use api::{
    BkJobApi, ChecksumRead, ChecksumScript, JobApi, JobRef, StartOutcome, StepExecution,
};
pub use batches::plan_batch_sizes;
pub use confirm::{Confirmer, WaitPoint};
pub use converge::{Converged, Convergence, converge};
pub use events::{ApplyEvent, DryRunPush, DryRunStage, EVENTS_FORMAT_VERSION, LineStamp, Target};
pub use interrupt::Interrupt;
pub use journal::{
    JOURNAL_FORMAT_VERSION, Journal, JournalError, PushHistory, Record, RunHistory, RunOutcome,
    latest_run, new_run_id, runs_dir, sha256_hex,
};
pub use lock::{LockError, LockHolder, PlanLock};
pub use options::{ContinuePolicy, JOB_DEFAULT_TIMEOUT_SECS, Options, PollPolicy, Schedule};
pub use plan_bkjob::{ApiVersion, HostLog, HostState, Snapshot};
pub use preflight::{ForeignJob, ForeignRun};
pub use progress::Estimate;
pub use refresh::{
    FileDifference, HostDifference, MAX_POLL_INTERVAL, PushRefresh, Refresh, RefreshError,
    RefreshJob, RefreshSettings, RefreshedPush, refresh, refresh_task_name,
};
pub use report::{
    AttemptReport, Batch, BatchReport, Event, Hint, HostResult, Interruption, PushReport,
    PushStatus, RunReport, SUCCEEDED_HOSTS_LISTED, TerminateReason,
};
pub use run::{InDoubtPush, Settings, StartError, apply};
pub use run_tag::run_tag;
pub use state_dir::default_state_dir;
pub use verify::{
    FileMismatch, HostMismatch, HostUnverified, Verification, VerifyMethod, cannot_verify,
};
