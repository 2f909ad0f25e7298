//! What the executor tells its caller: typed events while running, a report at the end.
//!
//! Both serialise to JSON (the CLI's `--format json` NDJSON is these events, with each
//! [`Hint`] worded by the caller), with an `"event"` tag in snake case. Their JSON Schema is
//! [`crate::schema::events_schema`].
//!
//! Nothing here names the caller's flags: where the way on is the caller's (continuing the
//! run), a [`Hint`] says so and the caller words it.

use std::borrow::Cow;
use std::time::Duration;

use plan_bkjob::{HostStatus, RunStatus};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How one push ended (or why it did not run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PushStatus {
    /// Every target host received the files.
    Succeeded,
    /// Succeeded in an earlier segment of this run (skipped on `--resume`).
    AlreadySucceeded,
    /// The job ran and at least one host failed.
    Failed,
    /// JOB refused the submission (validation, unknown host, permission, quota...).
    Rejected,
    /// The submission's response was lost: JOB may or may not have created the job.
    OutcomeUnknown,
    /// Still running at its deadline; terminated through `operate_job_instance`.
    TimedOut,
    /// Terminated because of a second interrupt, or not followed to its end.
    Interrupted,
    /// `enabled = false` in the plan.
    Disabled,
    /// `gate = true` and no one approved it (no terminal to ask, or the answer was no):
    /// nothing was sent for it, and the run stopped there for this push.
    WaitingAtGate,
    /// JOB's rolling job waits for a confirmation after a batch (manual mode, or a pause
    /// after a failed batch) and no one confirmed: the job waits in JOB.
    WaitingForConfirmation,
    /// `--converge`: a refresh found every target holding the push's files, so no JOB job
    /// was submitted for it.
    UpToDate,
    /// Not started because a push it depends on did not succeed.
    Blocked,
    /// Not started because the run stopped (a failure with `--continue never`, or an interrupt).
    NotStarted,
    /// The journal could not be written (a full disk, a file-size limit, an I/O error), so
    /// the run stopped at once: what this push did is on disk only up to its last whole line
    /// (a job JOB created is followed again by `--resume` or shows as in doubt).
    JournalFailed,
}

impl PushStatus {
    /// Succeeded now or before, or disabled: nothing left to do for this push.
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            PushStatus::Succeeded
                | PushStatus::AlreadySucceeded
                | PushStatus::Disabled
                | PushStatus::UpToDate
        )
    }

    /// A push that ran (or was submitted) and did not succeed.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            PushStatus::Failed
                | PushStatus::Rejected
                | PushStatus::OutcomeUnknown
                | PushStatus::TimedOut
                | PushStatus::Interrupted
                | PushStatus::JournalFailed
        )
    }

    /// Stopped at a point that needs a person (a gate, a rolling batch waiting for a
    /// confirmation): neither done nor failed.
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            PushStatus::WaitingAtGate | PushStatus::WaitingForConfirmation
        )
    }

    /// A short word for people.
    pub fn label(self) -> &'static str {
        match self {
            PushStatus::Succeeded => "succeeded",
            PushStatus::AlreadySucceeded => "already done",
            PushStatus::Failed => "failed",
            PushStatus::Rejected => "rejected",
            PushStatus::OutcomeUnknown => "outcome unknown",
            PushStatus::TimedOut => "timed out",
            PushStatus::Interrupted => "interrupted",
            PushStatus::Disabled => "disabled",
            PushStatus::WaitingAtGate => "waiting at gate",
            PushStatus::WaitingForConfirmation => "waiting for confirmation",
            PushStatus::UpToDate => "up to date",
            PushStatus::Blocked => "blocked",
            PushStatus::NotStarted => "not started",
            PushStatus::JournalFailed => "journal write failed",
        }
    }
}

/// One target host's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostResult {
    /// The host as people read it: `cloud:ip`, `cloud:[v6]` for an IPv6-only host, or
    /// `host_id:N` when JOB gave no address.
    pub host: String,
    /// JOB's `bk_host_id`, when it gave one (v3 does): what the host is keyed by, so two
    /// hosts never collapse into one (IPv6-only hosts share an empty `ip` in JOB's answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<i64>,
    /// JOB's per-host status (§6.2), its number on the wire.
    #[schemars(with = "i32")]
    pub status: HostStatus,
    /// JOB's label for it (`File pull failed`).
    pub label: String,
    /// The raw GSE error code, when JOB reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// The end of the host's log (failed hosts only), HTML-unescaped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_excerpt: Option<String>,
}

impl HostResult {
    /// The host for people: its address with its id beside it when JOB gave one
    /// (`0:[fd00::1] (host_id:1005)`), else `host`.
    pub fn display(&self) -> String {
        match self.host_id {
            Some(id) if !self.host.starts_with("host_id:") => {
                format!("{} (host_id:{id})", self.host)
            }
            _ => self.host.clone(),
        }
    }

    /// What names the host uniquely: `host_id:N` when JOB gave an id, else `host`.
    pub fn key(&self) -> String {
        match self.host_id {
            Some(id) => format!("host_id:{id}"),
            None => self.host.clone(),
        }
    }

    /// 9 (success) or 3 (succeeded last time).
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

/// The final state of one push in this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PushReport {
    /// Push name.
    pub name: String,
    /// Stage number (1-based).
    pub stage: usize,
    /// How it ended.
    pub status: PushStatus,
    /// The JOB instance of the last attempt, if one was created.
    pub job_instance_id: Option<i64>,
    /// Attempts made in this run segment (0 when not started).
    pub attempts: u32,
    /// Target hosts JOB reported (0 when unknown).
    pub hosts_total: usize,
    /// Hosts that received the files.
    pub hosts_ok: usize,
    /// Hosts that did not, with their JOB status and log excerpt.
    pub failed_hosts: Vec<HostResult>,
    /// Hosts that received the files (`host` of their result), the first
    /// [`SUCCEEDED_HOSTS_LISTED`] of them: a line stays readable for a fleet of 100,000.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub succeeded_hosts: Vec<String>,
    /// Succeeded hosts past the first [`SUCCEEDED_HOSTS_LISTED`], counted but not listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub succeeded_hosts_unlisted: usize,
    /// Wall time of the push in this segment.
    #[serde(rename = "duration_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub duration: Duration,
    /// Why it failed, when that is not (only) per-host: JOB's message, a transport error...
    /// (with [`PushReport::hint`] worded after it by the caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// JOB / ESB / gateway code behind `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// What continuing the run would do about this push, for the caller to word after
    /// `error` (it is not serialised: the caller's wording is).
    #[serde(skip)]
    pub hint: Option<Hint>,
    /// Per batch, when the plan cuts the push's targets into batches (v2 `rolling`), in
    /// batch order, those of earlier segments included; for JOB's own rolling (v3), each
    /// batch as this segment saw it finish (a batch run again after a confirmation appears
    /// again), with those only an earlier segment saw finish (from the journal) before
    /// them, in batch order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<BatchReport>,
    /// Where the push waits for a person, when its status is `waiting_at_gate` or
    /// `waiting_for_confirmation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<crate::confirm::WaitPoint>,
    /// What the push's verification (`verify`) found, when it ran in this segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Box<crate::verify::Verification>>,
    /// Each attempt of this segment that JOB ran to its end, in order: a retry inside the
    /// same job (v3) shows the same job id again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempt_log: Vec<AttemptReport>,
}

/// One attempt of a push: a job, or a retry of a job's failed hosts inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AttemptReport {
    /// 1-based, counted over the whole run.
    pub attempt: u32,
    /// The JOB instance.
    pub job_instance_id: i64,
    /// A retry of the failed hosts inside the same job (`operate_step_instance` code 2),
    /// not a new job.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_same_job: bool,
    /// Hosts JOB reported for the job when it finished.
    pub hosts: usize,
    /// Those that did not receive the files.
    pub failed: usize,
    /// The batch this job sent, when the plan cuts the push into batches (v2 `rolling`):
    /// the next batch's job is not a retry, another job of the same batch is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
}

impl BatchReport {
    /// A JOB rolling batch that finished with `hosts`, as its `push_batch_finished` says.
    pub(crate) fn of_hosts(
        index: u32,
        count: u32,
        status: PushStatus,
        job_instance_id: i64,
        hosts: &[HostResult],
    ) -> Self {
        let failed_hosts: Vec<String> = hosts
            .iter()
            .filter(|h| !h.is_success())
            .map(|h| h.host.clone())
            .collect();
        BatchReport {
            index,
            count,
            status,
            job_instance_id: Some(job_instance_id),
            hosts_total: hosts.len(),
            hosts_ok: hosts.len() - failed_hosts.len(),
            failed_hosts,
        }
    }
}

/// Which batch of a push a job or a line is about: batch `index` of `count` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Batch {
    /// 1-based.
    pub index: u32,
    /// How many batches the push has.
    pub count: u32,
}

impl std::fmt::Display for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "batch {}/{}", self.index, self.count)
    }
}

/// One batch of a push whose targets the plan cut into batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchReport {
    /// 1-based.
    pub index: u32,
    /// How many batches the push has (0 in a report written before it was recorded).
    #[serde(default)]
    pub count: u32,
    /// `succeeded`, `already_succeeded` (in an earlier segment), `failed` (a host failed),
    /// `not_started` (never submitted: an earlier batch stopped the push), or how its job
    /// ended otherwise (`timed_out`, `rejected`...).
    pub status: PushStatus,
    /// The JOB instance of its last job, when one is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_instance_id: Option<i64>,
    /// Its target hosts.
    pub hosts_total: usize,
    /// Those that received the files.
    pub hosts_ok: usize,
    /// Those that did not (`host` of their result; the push's `failed_hosts` has the details).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_hosts: Vec<String>,
}

impl PushReport {
    pub(crate) fn idle(name: &str, stage: usize, status: PushStatus) -> Self {
        PushReport {
            name: name.to_owned(),
            stage,
            status,
            job_instance_id: None,
            attempts: 0,
            hosts_total: 0,
            hosts_ok: 0,
            failed_hosts: Vec::new(),
            succeeded_hosts: Vec::new(),
            succeeded_hosts_unlisted: 0,
            duration: Duration::ZERO,
            error: None,
            error_code: None,
            hint: None,
            batches: Vec::new(),
            waiting: None,
            verification: None,
            attempt_log: Vec::new(),
        }
    }

    /// The push's per-host results: totals, the failed hosts whole, the succeeded ones
    /// listed up to [`SUCCEEDED_HOSTS_LISTED`].
    pub(crate) fn record_hosts(&mut self, hosts: impl IntoIterator<Item = HostResult>) {
        let (ok, failed): (Vec<HostResult>, Vec<HostResult>) =
            hosts.into_iter().partition(HostResult::is_success);
        // A total set before (every target of a push whose later batches never ran, or
        // whose job waits before them) stays: the report counts the push's targets.
        self.hosts_total = self.hosts_total.max(ok.len() + failed.len());
        self.hosts_ok = ok.len();
        self.failed_hosts = failed;
        self.succeeded_hosts_unlisted = ok.len().saturating_sub(SUCCEEDED_HOSTS_LISTED);
        self.succeeded_hosts = ok
            .into_iter()
            .take(SUCCEEDED_HOSTS_LISTED)
            .map(|h| h.host)
            .collect();
    }
}

/// How many succeeded hosts a [`PushReport`] lists by name (the rest are counted).
pub const SUCCEEDED_HOSTS_LISTED: usize = 1000;

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunReport {
    /// The run id (the journal's file stem).
    pub run_id: String,
    /// The plan name.
    pub plan: String,
    /// The journal file.
    pub journal: String,
    /// True when this was a `--resume` of an earlier segment.
    pub resumed: bool,
    /// Every push, in stage then file order.
    pub pushes: Vec<PushReport>,
    /// 0 = not interrupted, 1 = stopped (first Ctrl-C), 2 = terminated (second Ctrl-C).
    pub interrupted: Interruption,
    /// Wall time.
    #[serde(rename = "duration_ms", with = "millis")]
    #[schemars(with = "u64")]
    pub duration: Duration,
    /// Set when a journal write failed and the run stopped there: the first failed write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_error: Option<String>,
}

impl RunReport {
    /// Every push is done (succeeded now or before, or disabled), nothing was interrupted,
    /// and the journal holds all of it.
    pub fn succeeded(&self) -> bool {
        self.interrupted == Interruption::None
            && self.journal_error.is_none()
            && self.pushes.iter().all(|p| p.status.is_ok())
    }

    /// Nothing failed, the run was not interrupted, and at least one push waits for a person
    /// (at its gate, or JOB's rolling batch waiting for a confirmation).
    pub fn awaits_confirmation(&self) -> bool {
        self.interrupted == Interruption::None
            && self.journal_error.is_none()
            && self.failures().next().is_none()
            && self.pushes.iter().any(|p| p.status.is_waiting())
    }

    /// Pushes that ran and did not succeed.
    pub fn failures(&self) -> impl Iterator<Item = &PushReport> {
        self.pushes.iter().filter(|p| p.status.is_failure())
    }
}

/// What happens during a run, in order. Sent over a channel; the executor never prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The run (or a resumed segment of it) starts.
    RunStarted {
        /// Run id.
        run_id: String,
        /// Plan name.
        plan: String,
        /// Journal path.
        journal: String,
        /// Resuming an earlier run.
        resumed: bool,
        /// Pushes in the plan.
        pushes: usize,
        /// Stages.
        stages: usize,
        /// Pushes already done before this segment.
        already_done: Vec<String>,
        /// Pushes whose jobs are re-attached by id.
        reattached: Vec<String>,
    },
    /// Something the user should know that does not stop the run (stale lock taken over...).
    Warning {
        /// The text (with `hint` worded after it by the caller).
        message: String,
        /// What the caller can offer instead, for it to word (not serialised: its wording is).
        #[serde(skip)]
        hint: Option<Hint>,
    },
    /// A push is about to be submitted (the intent is journaled already).
    PushSubmitting {
        /// Push.
        push: String,
        /// Stage.
        stage: usize,
        /// 1 for the first submission, 2.. for retries of failed hosts.
        attempt: u32,
        /// Target hosts named statically in the request (dynamic groups resolve in JOB).
        hosts: usize,
        /// The batch this job is, when the plan cuts the push into batches.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch: Option<Batch>,
    },
    /// JOB accepted it.
    PushSubmitted {
        /// Push.
        push: String,
        /// Stage.
        stage: usize,
        /// Attempt.
        attempt: u32,
        /// The job.
        job_instance_id: i64,
    },
    /// An earlier segment's job is followed again (resume).
    PushReattached {
        /// Push.
        push: String,
        /// Stage.
        stage: usize,
        /// The job.
        job_instance_id: i64,
    },
    /// A poll showed a change.
    PushProgress {
        /// Push.
        push: String,
        /// Stage.
        stage: usize,
        /// The job.
        job_instance_id: i64,
        /// JOB's job status, its number on the wire.
        #[schemars(with = "i32")]
        job_status: RunStatus,
        /// Hosts with a final status.
        hosts_done: usize,
        /// Hosts JOB reports.
        hosts_total: usize,
        /// The batch this job is, when the plan cuts the push into batches; for JOB's own
        /// rolling, the batch under way, or the one that ran when JOB waits after it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch: Option<Batch>,
        /// JOB waits for a confirmation after `batch` (a manual-mode batch done, or a
        /// failed batch that paused the job).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        waiting: bool,
        /// Bytes a second one target host receives, from JOB's file logs (the speeds of the
        /// files it receives side by side, averaged over the hosts read), once a log was read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes_per_second: Option<u64>,
    },
    /// One of JOB's rolling batches of a v3 job finished (journaled as `push_batch_finished`,
    /// with every host of the batch).
    PushBatchFinished {
        /// Push.
        push: String,
        /// Stage.
        stage: usize,
        /// JOB's batches of the job.
        batches: u32,
        /// The batch: its index, status (`succeeded` or `failed`) and hosts.
        report: BatchReport,
    },
    /// A push stopped at a point that needs a person (journaled first).
    PushAwaitingConfirmation {
        /// Push.
        push: String,
        /// Where it waits.
        point: crate::confirm::WaitPoint,
    },
    /// A person confirmed and the push goes on (journaled first).
    PushConfirmed {
        /// Push.
        push: String,
        /// What was confirmed.
        point: crate::confirm::WaitPoint,
        /// Who: the OS user of the process that asked.
        by: String,
    },
    /// The job is being terminated.
    PushTerminating {
        /// Push.
        push: String,
        /// The job.
        job_instance_id: i64,
        /// Why.
        reason: TerminateReason,
    },
    /// Some hosts failed and are pushed to again.
    PushRetrying {
        /// Push.
        push: String,
        /// The next attempt.
        attempt: u32,
        /// The failed hosts (`cloud:ip`).
        hosts: Vec<String>,
        /// Set when the failed hosts run again inside this same job (v3,
        /// `operate_step_instance` code 2) rather than in a new job.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_job: Option<i64>,
    },
    /// A push's delivered files were checked (`verify`): `verified` of `hosts` hold what
    /// the sources hold.
    PushVerified {
        /// Push.
        push: String,
        /// The transfer job verified.
        job_instance_id: i64,
        /// What the check found.
        verification: Box<crate::verify::Verification>,
    },
    /// A push ended (or was settled without running).
    PushFinished {
        /// The report.
        report: PushReport,
    },
    /// An interrupt was received.
    Interrupted {
        /// 1 = stop starting, 2 = terminate.
        level: Interruption,
    },
    /// The run ended.
    RunFinished {
        /// The final report.
        report: RunReport,
    },
}

impl Event {
    /// A warning without a hint.
    pub fn warning(message: impl Into<String>) -> Event {
        Event::Warning {
            message: message.into(),
            hint: None,
        }
    }
}

/// What the user can do next where that is the caller's to offer (continuing the run), for
/// the caller to word: the executor does not know the caller's flags.
///
/// Deliberately exhaustive (not `#[non_exhaustive]`): callers match every hint without a
/// fallback, so a new hint does not compile until each caller words it, instead of printing
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hint {
    /// The job was not followed to its end, and continuing the run follows it again.
    ResumeFollowsJob,
    /// The job waits unstarted (after an accepted START, twice): check it in JOB; continuing
    /// the run follows it again, up to its deadline.
    CheckThenResumeFollowsJob,
    /// The job was created unstarted and START failed: continuing the run starts it.
    ResumeStartsJob,
    /// The last run was not finished (nothing of it is running): it could have been
    /// continued instead of starting a new one.
    ResumeLastRun,
    /// JOB no longer knows the push's job (`1244006`), and the journal records it lost:
    /// continuing the run submits the push again.
    ResumeResubmitsLostJob,
    /// The push waits for a person (its gate, or JOB's rolling batch): continuing the run
    /// with this push approved goes on.
    ResumeConfirmsPush,
}

/// How far the caller's interrupts went. Ordered: each level includes the one before.
/// On the wire, its number (0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Interruption {
    /// 0: not interrupted.
    #[default]
    None,
    /// 1: stop starting pushes, follow running jobs to their end (first Ctrl-C, SIGTERM).
    Stop,
    /// 2: terminate running jobs too (second Ctrl-C).
    Terminate,
}

impl Interruption {
    /// The number on the wire.
    pub fn level(self) -> u8 {
        match self {
            Interruption::None => 0,
            Interruption::Stop => 1,
            Interruption::Terminate => 2,
        }
    }

    /// The interruption of a number on the wire.
    pub fn from_level(level: u8) -> Option<Interruption> {
        match level {
            0 => Some(Interruption::None),
            1 => Some(Interruption::Stop),
            2 => Some(Interruption::Terminate),
            _ => None,
        }
    }

    /// Stopped or terminated.
    pub fn is_interrupted(self) -> bool {
        self != Interruption::None
    }
}

impl Serialize for Interruption {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.level())
    }
}

impl<'de> Deserialize<'de> for Interruption {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let level = u8::deserialize(deserializer)?;
        Interruption::from_level(level).ok_or_else(|| {
            serde::de::Error::custom(format!("interruption level {level} (0, 1 or 2)"))
        })
    }
}

impl JsonSchema for Interruption {
    fn schema_name() -> Cow<'static, str> {
        "Interruption".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "0 = not interrupted, 1 = stopped (first Ctrl-C), 2 = terminated (second Ctrl-C).",
            "type": "integer",
            "enum": [0, 1, 2],
        })
    }
}

/// Why a job was terminated (`operate_job_instance` code 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TerminateReason {
    /// Still running past the push's timeout plus the margin.
    Deadline,
    /// The caller asked to terminate running jobs (second Ctrl-C).
    Interrupt,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(n: usize, status: i32) -> HostResult {
        HostResult {
            host: format!("0:10.0.{}.{}", n / 256, n % 256),
            host_id: None,
            status: HostStatus::from_code(status),
            label: String::new(),
            error_code: None,
            log_excerpt: None,
        }
    }

    /// Succeeded hosts are listed up to the cap and counted past it; failed ones all kept.
    #[test]
    fn a_report_lists_succeeded_hosts_up_to_the_cap() {
        let mut report = PushReport::idle("a", 1, PushStatus::Failed);
        let extra = 5;
        let hosts = (0..SUCCEEDED_HOSTS_LISTED + extra)
            .map(|n| host(n, 9))
            .chain([host(9999, 310)]);
        report.record_hosts(hosts);
        assert_eq!(report.hosts_total, SUCCEEDED_HOSTS_LISTED + extra + 1);
        assert_eq!(report.hosts_ok, SUCCEEDED_HOSTS_LISTED + extra);
        assert_eq!(report.succeeded_hosts.len(), SUCCEEDED_HOSTS_LISTED);
        assert_eq!(report.succeeded_hosts[0], "0:10.0.0.0");
        assert_eq!(report.succeeded_hosts_unlisted, extra);
        assert_eq!(report.failed_hosts.len(), 1);
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["succeeded_hosts_unlisted"], extra);

        let mut small = PushReport::idle("b", 1, PushStatus::Succeeded);
        small.record_hosts([host(1, 9)]);
        let json = serde_json::to_value(&small).expect("json");
        assert_eq!(json["succeeded_hosts"], serde_json::json!(["0:10.0.0.1"]));
        assert!(json.get("succeeded_hosts_unlisted").is_none(), "{json}");
    }
}
