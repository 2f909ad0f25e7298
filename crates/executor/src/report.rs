//! What the executor tells its caller: typed events while running, a report at the end.
//!
//! Both serialise to JSON (the CLI's `--format json` NDJSON is these events as they are), with
//! an `"event"` tag in snake case.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How one push ended (or why it did not run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
            PushStatus::Succeeded | PushStatus::AlreadySucceeded | PushStatus::Disabled
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
            PushStatus::Blocked => "blocked",
            PushStatus::NotStarted => "not started",
            PushStatus::JournalFailed => "journal write failed",
        }
    }
}

/// One target host's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostResult {
    /// `cloud:ip`.
    pub host: String,
    /// JOB's per-host status number (§6.2).
    pub status: i32,
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
    /// 9 (success) or 3 (succeeded last time).
    pub fn is_success(&self) -> bool {
        plan_bkjob::HostStatus::from_code(self.status).is_success()
    }
}

/// The final state of one push in this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Wall time of the push in this segment.
    #[serde(rename = "duration_ms", with = "millis")]
    pub duration: Duration,
    /// Why it failed, when that is not (only) per-host: JOB's message, a transport error...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// JOB / ESB / gateway code behind `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
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
            duration: Duration::ZERO,
            error: None,
            error_code: None,
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub interrupted: u8,
    /// Wall time.
    #[serde(rename = "duration_ms", with = "millis")]
    pub duration: Duration,
    /// Set when a journal write failed and the run stopped there: the first failed write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_error: Option<String>,
}

impl RunReport {
    /// Every push is done (succeeded now or before, or disabled), nothing was interrupted,
    /// and the journal holds all of it.
    pub fn succeeded(&self) -> bool {
        self.interrupted == 0
            && self.journal_error.is_none()
            && self.pushes.iter().all(|p| p.status.is_ok())
    }

    /// Pushes that ran and did not succeed.
    pub fn failures(&self) -> impl Iterator<Item = &PushReport> {
        self.pushes.iter().filter(|p| p.status.is_failure())
    }
}

/// What happens during a run, in order. Sent over a channel; the executor never prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        /// The text.
        message: String,
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
        /// JOB job status number.
        job_status: i32,
        /// Hosts with a final status.
        hosts_done: usize,
        /// Hosts JOB reports.
        hosts_total: usize,
    },
    /// The job is being terminated.
    PushTerminating {
        /// Push.
        push: String,
        /// The job.
        job_instance_id: i64,
        /// `deadline` or `interrupt`.
        reason: String,
    },
    /// Some hosts failed and are pushed to again.
    PushRetrying {
        /// Push.
        push: String,
        /// The next attempt.
        attempt: u32,
        /// The failed hosts (`cloud:ip`).
        hosts: Vec<String>,
    },
    /// A push ended (or was settled without running).
    PushFinished {
        /// The report.
        report: PushReport,
    },
    /// An interrupt was received.
    Interrupted {
        /// 1 = stop starting, 2 = terminate.
        level: u8,
    },
    /// The run ended.
    RunFinished {
        /// The final report.
        report: RunReport,
    },
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
