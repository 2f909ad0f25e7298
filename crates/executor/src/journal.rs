//! The run journal: append-only JSON lines, each fsync'd before the action it records.
//!
//! `STATE/runs/<plan>/<run-id>.jsonl`. The first line is `run_started` with
//! `format_version`; under `--converge`, a `refresh` line per refreshed push (what its
//! targets hold, before anything is sent); then, per push, `push_submitting` (the intent, with
//! the sha256 of the exact body, written *before* the request leaves), `push_submitted` (the
//! JOB instance id, right after the answer), `push_attempt_finished` (per-host results),
//! `push_finished` (the push's outcome); finally `run_finished`. A resumed run appends
//! `run_resumed` and continues in the same file, so one file tells the whole story of one run.
//!
//! Because every line is on disk before the next action, a process killed at any instant
//! leaves a journal from which [`RunHistory`] can tell, per push: done, in flight (with its
//! job id: re-attach), in doubt (intent written, no answer recorded: JOB may have created the
//! job), failed (with per-host results), or never started. No credential is ever written here.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use plan_bkjob::{ApiVersion, RunStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::api::JobRef;
use crate::refresh::{PushRefresh, RefreshedPush};
use crate::report::{Batch, HostResult, PushStatus, TerminateReason};

/// The journal format this version writes and reads.
pub const JOURNAL_FORMAT_VERSION: u32 = 1;

/// One journal line. Its JSON Schema is [`crate::schema::journal_schema`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Record {
    /// First line of a run.
    RunStarted {
        /// [`JOURNAL_FORMAT_VERSION`].
        format_version: u32,
        /// Run id (the file stem).
        run_id: String,
        /// Plan name.
        plan: String,
        /// The plan file as given.
        plan_file: String,
        /// The plan's API family.
        #[schemars(with = "crate::api::ApiVersionSchema")]
        api: ApiVersion,
        /// Who ran it (`$USER`).
        user: String,
        /// Where.
        host: String,
        /// Process id.
        pid: u32,
        /// RFC 3339.
        at: String,
        /// sha256 of every push's full request body, by push name: a changed plan is
        /// recognised push by push.
        pushes: BTreeMap<String, String>,
        /// TLS certificate verification was off (`--insecure-skip-tls-verify`): recorded so
        /// that whoever reads the journal later knows the endpoint's identity went unchecked.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        insecure_skip_tls_verify: bool,
        /// Started although JOB showed another run of the plan with jobs not finished
        /// (`--force`), or without asking JOB because it refused the job list.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
        /// No journal of this run was at hand (a fresh machine): this one was rebuilt from
        /// the jobs JOB lists under the run's tag; `push_rebuilt` lines follow, one per push
        /// JOB had jobs of.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        rebuilt_from_job: bool,
        /// The plan's content hash (`sha256:...`, as `plan show` prints it and `--expect`
        /// checks), when the caller gave it: what was reviewed is what ran. Absent in
        /// journals written before it was recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan_hash: Option<String>,
    },
    /// What JOB listed of a push's jobs under the run's tag, when the journal was rebuilt
    /// from JOB (after a `run_started` with `rebuilt_from_job`).
    PushRebuilt {
        /// Push.
        push: String,
        /// How many jobs JOB holds for it under the run's tag (its attempts so far).
        jobs: u32,
        /// The newest of them, enough to follow it again.
        job: JobRef,
        /// Its status in JOB's list, its number on the wire.
        #[schemars(with = "i32")]
        job_status: RunStatus,
        /// When.
        at: String,
    },
    /// JOB answered that it does not know a job of this run (`1244006`): it was purged, or
    /// the JOB (a sandbox) lost it. Nothing of it can run any more, so the push is no longer
    /// in flight: it counts as failed, and a resume submits it again.
    PushJobLost {
        /// Push.
        push: String,
        /// The job JOB does not know.
        job_instance_id: i64,
        /// JOB's message.
        message: String,
        /// When.
        at: String,
    },
    /// A later process continues the run (`--resume`).
    RunResumed {
        /// Who.
        user: String,
        /// Where.
        host: String,
        /// Process id.
        pid: u32,
        /// When.
        at: String,
        /// TLS certificate verification was off (`--insecure-skip-tls-verify`): recorded so
        /// that whoever reads the journal later knows the endpoint's identity went unchecked.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        insecure_skip_tls_verify: bool,
        /// Continued although JOB showed another run of the plan with jobs not finished
        /// (`--force`), or without asking JOB because it refused the job list.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// `--converge`: what a refresh read on a push's targets before the run, one line per
    /// refreshed push, written after `run_started` and before the first submission. A
    /// resumed converge run narrows the plan again from these lines.
    Refresh {
        /// Push.
        push: String,
        /// Up to date, the hosts that differ and how, or why it cannot tell.
        verdict: PushRefresh,
        /// When.
        at: String,
    },
    /// About to submit: written and fsync'd before the request is sent.
    PushSubmitting {
        /// Push.
        push: String,
        /// Attempt (1-based, counted over the whole run).
        attempt: u32,
        /// sha256 of the exact body sent (credentials excluded): the plan's body (v3 with
        /// `start_task: false`), or its one-phase form without `start_task` once JOB has shown
        /// it ignores `start_task`.
        request_sha256: String,
        /// The task name JOB will show (to find the job by hand if the answer is lost).
        task_name: Option<String>,
        /// Static target hosts of this body (`cloud:ip`); a retry names only the failed ones.
        targets: Vec<String>,
        /// Sent with `start_task=false`: a job JOB created from it does not run before START.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        two_phase: bool,
        /// The batch this job sends, when the plan cuts the push into batches (v2 `rolling`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch: Option<Batch>,
        /// When.
        at: String,
    },
    /// JOB accepted the submission.
    PushSubmitted {
        /// Push.
        push: String,
        /// Attempt.
        attempt: u32,
        /// The job, enough to follow it again.
        job: JobRef,
        /// The batch this job sends, when the plan cuts the push into batches.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch: Option<Batch>,
        /// When.
        at: String,
    },
    /// A job created with `start_task=false` was started (`operate_job_instance` code 2).
    PushStarted {
        /// Push.
        push: String,
        /// The job.
        job_instance_id: i64,
        /// JOB had started it by itself (it ignores `start_task`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        by_server: bool,
        /// When.
        at: String,
    },
    /// JOB refused, or the answer was lost.
    PushSubmitFailed {
        /// Push.
        push: String,
        /// Attempt.
        attempt: u32,
        /// Code, when there was one.
        code: Option<i64>,
        /// Message.
        message: String,
        /// True when JOB may have created the job anyway.
        outcome_unknown: bool,
        /// The request was never sent: its intent was written ahead of its turn and, when
        /// the turn came, the run was stopping (an interrupt, or a failure under
        /// `--continue never`). The attempt does not count.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        not_sent: bool,
        /// When.
        at: String,
    },
    /// `operate_job_instance` code 1 was sent.
    PushTerminateRequested {
        /// Push.
        push: String,
        /// The job.
        job_instance_id: i64,
        /// Why.
        reason: TerminateReason,
        /// When.
        at: String,
    },
    /// A job reached a finished status.
    PushAttemptFinished {
        /// Push.
        push: String,
        /// Attempt.
        attempt: u32,
        /// The job.
        job_instance_id: i64,
        /// JOB's job status, its number on the wire.
        #[schemars(with = "i32")]
        job_status: RunStatus,
        /// Every target host's result.
        hosts: Vec<HostResult>,
        /// The batch this job sent, when the plan cuts the push into batches: the push is
        /// decided only by its last batch (or its `push_finished`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch: Option<Batch>,
        /// When.
        at: String,
    },
    /// One of JOB's rolling batches of a v3 job was seen finished (a batch run again after
    /// a confirmation is journaled again). Records what JOB did: queued without waiting.
    PushBatchFinished {
        /// Push.
        push: String,
        /// The job.
        job_instance_id: i64,
        /// The batch (1-based).
        batch: u32,
        /// JOB's batches of the job.
        batches: u32,
        /// `succeeded`, or `failed` when a host of the batch failed.
        status: PushStatus,
        /// Every host of the batch.
        hosts: Vec<HostResult>,
        /// When.
        at: String,
    },
    /// The push stopped at a point that needs a person and no one confirmed: a gate (nothing
    /// sent), or JOB's job waiting after a batch (the job stays in flight: a resume follows
    /// it again and asks again).
    PushAwaitingConfirmation {
        /// Push.
        push: String,
        /// Where it waits.
        point: crate::confirm::WaitPoint,
        /// When.
        at: String,
    },
    /// A person confirmed; written before the push goes on (before the submission after a
    /// gate, before `operate_step_instance` for a batch). A confirmed gate is not asked
    /// again by a resumed run.
    PushConfirmed {
        /// Push.
        push: String,
        /// What was confirmed.
        point: crate::confirm::WaitPoint,
        /// Who: the OS user (`$USER`, else the name of the process's uid).
        by: String,
        /// When.
        at: String,
    },
    /// About to ask JOB to run a v3 job's failed hosts again inside the same job
    /// (`operate_step_instance` code 2): written and fsync'd before the request is sent. A
    /// resumed run that finds it without the attempt's `push_attempt_finished` reads the
    /// step's execution count to know whether JOB took it, and asks only if it did not.
    PushRetryRequested {
        /// Push.
        push: String,
        /// The attempt the retry is (1-based, counted over the whole run).
        attempt: u32,
        /// The job, the same as the failed attempt's.
        job: JobRef,
        /// The failed hosts run again (`cloud:ip` or `host_id:N`).
        hosts: Vec<String>,
        /// The step's execution count before the retry (JOB adds one when it takes it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execute_count: Option<i32>,
        /// When.
        at: String,
    },
    /// What a push's verification (`verify`) found, after JOB reported its job a success and
    /// before its `push_finished`.
    PushVerified {
        /// Push.
        push: String,
        /// The transfer job verified.
        job_instance_id: i64,
        /// Hosts checked, those that differ, those that could not be checked.
        verification: Box<crate::verify::Verification>,
        /// When.
        at: String,
    },
    /// The push's outcome in this segment.
    PushFinished {
        /// Push.
        push: String,
        /// Outcome.
        status: PushStatus,
        /// When.
        at: String,
    },
    /// The segment ended.
    RunFinished {
        /// How.
        status: RunOutcome,
        /// When.
        at: String,
    },
}

/// How a run segment ended (`run_finished`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every push is done, nothing was interrupted, the journal holds all of it.
    Succeeded,
    /// Some push did not succeed, or a journal write failed.
    Failed,
    /// An interrupt stopped the run.
    Interrupted,
    /// Nothing failed, but a push waits for a person (a gate, a rolling batch waiting for a
    /// confirmation).
    AwaitingConfirmation,
}

/// An open journal, appended to by the coordinator and the push tasks.
///
/// Lines written while an fsync is under way are group-committed: the next batch is written
/// with one `write` and made durable with one `sync_data`, on a blocking thread (never on the
/// runtime's worker threads). Each caller is answered once its own line is durable.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    run_id: String,
    shared: Arc<Shared>,
}

/// What the callers and the flushing thread share.
#[derive(Debug)]
struct Shared {
    /// Lines waiting for the next batch, in the order they were handed in, and whether a
    /// flusher is running (it takes every batch until the queue is empty).
    queue: Mutex<Queue>,
    /// The file and the length of its whole-line prefix.
    sink: Mutex<Sink>,
    /// Batches written (each one fsync): lines per batch tell how much is shared.
    batches: std::sync::atomic::AtomicU64,
    /// The first write that failed. From then on nothing more is written: a line after a
    /// lost one would give the journal a history with a hole in it.
    broken: std::sync::OnceLock<String>,
    /// Cancelled when `broken` is set, so that the run stops at once.
    broken_signal: CancellationToken,
}

#[derive(Debug, Default)]
struct Queue {
    lines: Vec<(String, Ack)>,
    flushing: bool,
}

#[derive(Debug)]
struct Sink {
    file: std::fs::File,
    /// Bytes known to end with a whole line: a failed batch is cut back to here.
    len: u64,
}

/// How a line's writer learns that it is durable.
#[derive(Debug)]
enum Ack {
    Async(tokio::sync::oneshot::Sender<Result<(), String>>),
    Blocking(std::sync::mpsc::Sender<Result<(), String>>),
}

impl Ack {
    fn send(self, result: Result<(), String>) {
        // A writer that stopped waiting (its task was dropped) needs no answer.
        match self {
            Ack::Async(tx) => {
                let _ = tx.send(result);
            }
            Ack::Blocking(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

impl Shared {
    fn new(file: std::fs::File, len: u64) -> Arc<Shared> {
        Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            sink: Mutex::new(Sink { file, len }),
            batches: std::sync::atomic::AtomicU64::new(0),
            broken: std::sync::OnceLock::new(),
            broken_signal: CancellationToken::new(),
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        // The queue is only pushed to and swapped: a panic elsewhere cannot leave it torn.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a line; returns true when the caller must start a flusher.
    fn push(&self, line: String, ack: Ack) -> bool {
        let mut queue = self.queue();
        queue.lines.push((line, ack));
        !std::mem::replace(&mut queue.flushing, true)
    }

    /// Writes batches until the queue is empty. Only one flusher runs at a time, so batches
    /// (and the lines within them) reach the file in the order they were queued.
    fn flush(&self) {
        loop {
            let batch = {
                let mut queue = self.queue();
                if queue.lines.is_empty() {
                    queue.flushing = false;
                    return;
                }
                std::mem::take(&mut queue.lines)
            };
            let result = self.write_batch(&batch);
            for (_, ack) in batch {
                ack.send(result.clone());
            }
        }
    }

    fn write_batch(&self, batch: &[(String, Ack)]) -> Result<(), String> {
        if let Some(first) = self.broken.get() {
            return Err(format!(
                "not written, after an earlier write failed: {first}"
            ));
        }
        let bytes: String = batch.iter().map(|(line, _)| line.as_str()).collect();
        self.batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut sink = self
            .sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // One write per batch of whole lines; sync_data makes "written" mean "on disk", so
        // the journal never claims less than what happened (a crash loses at most the batch
        // being written, whose writers were not answered yet and so had not acted on it).
        let written = sink
            .file
            .write_all(bytes.as_bytes())
            .and_then(|()| sink.file.sync_data());
        match written {
            Ok(()) => {
                sink.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cut a partly written batch back to whole lines (best effort), so a later
                // line never glues onto a torn one.
                let len = sink.len;
                let _ = sink.file.set_len(len);
                let message = e.to_string();
                let _ = self.broken.set(message.clone());
                self.broken_signal.cancel();
                Err(message)
            }
        }
    }
}

/// A journal could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("journal `{}`: {message}", path.display())]
pub struct JournalError {
    /// The file.
    pub path: PathBuf,
    /// What failed.
    pub message: String,
}

impl Journal {
    /// Creates `STATE/runs/<plan>/<run_id>.jsonl` (fails if it exists).
    pub fn create(state_dir: &Path, plan: &str, run_id: &str) -> Result<Self, JournalError> {
        let dir = runs_dir(state_dir, plan);
        let path = dir.join(format!("{run_id}.jsonl"));
        let err = |e: std::io::Error| JournalError {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&dir).map_err(err)?;
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(err)?;
        // Make the new file's directory entry durable too (best effort: not every platform
        // can open a directory for syncing).
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(Journal {
            path: path.clone(),
            run_id: run_id.to_owned(),
            shared: Shared::new(file, 0),
        })
    }

    /// Opens an existing journal to continue it. A torn last line (the process was killed
    /// while writing it) is ended first, so the next line starts on a line of its own.
    pub fn append_to(path: &Path) -> Result<Self, JournalError> {
        let err = |e: std::io::Error| JournalError {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        let mut len = file.metadata().map_err(err)?.len();
        if len > 0 && !ends_with_newline(&mut file, len).map_err(err)? {
            file.write_all(b"\n")
                .and_then(|()| file.sync_data())
                .map_err(err)?;
            len += 1;
        }
        let run_id = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Journal {
            path: path.to_owned(),
            run_id,
            shared: Shared::new(file, len),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Appends one line and returns once it is on disk (its batch was fsync'd). Lines
    /// written concurrently share one fsync, done on a blocking thread.
    pub async fn append(&self, record: &Record) -> Result<(), JournalError> {
        self.enqueue(record).await
    }

    /// Queues one line now and returns a future that resolves once it is on disk. Lines are
    /// written in the order they were queued, so a caller may queue a line without waiting
    /// for it and rely on a later line it does wait for: that one being durable implies the
    /// earlier one is (unless the earlier one's batch failed, which only its own future
    /// reports).
    pub(crate) fn enqueue(
        &self,
        record: &Record,
    ) -> impl std::future::Future<Output = Result<(), JournalError>> + use<> {
        let path = self.path.clone();
        let err = move |message: String| JournalError { path, message };
        let queued = serialize(record).map(|line| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if self.shared.push(line, Ack::Async(tx)) {
                self.start_flusher();
            }
            rx
        });
        async move {
            let result = match queued {
                Err(message) => Err(message),
                Ok(rx) => rx
                    .await
                    .unwrap_or_else(|_| Err("the journal writer stopped".into())),
            };
            result.map_err(err)
        }
    }

    /// Appends one line and waits (blocking the thread) until it is on disk. For callers
    /// outside an async context; async code uses [`Journal::append`].
    pub fn write(&self, record: &Record) -> Result<(), JournalError> {
        let err = |message: String| JournalError {
            path: self.path.clone(),
            message,
        };
        let line = serialize(record).map_err(err)?;
        let (tx, rx) = std::sync::mpsc::channel();
        if self.shared.push(line, Ack::Blocking(tx)) {
            // This thread may block: it writes the batch itself.
            self.shared.flush();
        }
        rx.recv()
            .unwrap_or_else(|_| Err("the journal writer stopped".into()))
            .map_err(err)
    }

    /// Cancelled once a write failed: from then on nothing more is written, and the run must
    /// stop (what it does next could not be recorded).
    pub(crate) fn broken(&self) -> &CancellationToken {
        &self.shared.broken_signal
    }

    /// Why the journal stopped being written (the first failed write), if it did.
    pub fn write_error(&self) -> Option<String> {
        self.shared
            .broken
            .get()
            .map(|first| format!("journal write failed: `{}`: {first}", self.path.display()))
    }

    /// How many batches (fsyncs) this handle has written.
    #[cfg(test)]
    fn batches(&self) -> u64 {
        self.shared
            .batches
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn start_flusher(&self) {
        let shared = Arc::clone(&self.shared);
        match tokio::runtime::Handle::try_current() {
            // Off the worker threads: other tasks keep running during the fsync (and a
            // paused test clock does not advance while it runs).
            Ok(handle) => {
                handle.spawn_blocking(move || shared.flush());
            }
            Err(_) => shared.flush(),
        }
    }
}

/// One record as one line.
fn serialize(record: &Record) -> Result<String, String> {
    let mut line = serde_json::to_string(record).map_err(|e| e.to_string())?;
    line.push('\n');
    Ok(line)
}

/// Whether the last byte of a non-empty file is a newline.
fn ends_with_newline(file: &mut std::fs::File, len: u64) -> std::io::Result<bool> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut last = [0_u8; 1];
    file.seek(SeekFrom::Start(len.saturating_sub(1)))?;
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// `STATE/runs/<plan>/`.
pub fn runs_dir(state_dir: &Path, plan: &str) -> PathBuf {
    state_dir.join("runs").join(safe_name(plan))
}

/// A plan name as a single path component.
pub(crate) fn safe_name(plan: &str) -> String {
    let s: String = plan
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// What the journal says about one push.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PushHistory {
    /// Highest attempt number written.
    pub last_attempt: u32,
    /// Submissions JOB accepted.
    pub submitted: u32,
    /// The outcome of the last segment that settled it.
    pub status: Option<PushStatus>,
    /// Submitted and not known finished: follow this job again.
    pub in_flight: Option<JobRef>,
    /// The intent was written but no answer recorded (or the answer was lost): the attempt
    /// number, the task name and when.
    pub in_doubt: Option<(u32, Option<String>, String)>,
    /// The submission in doubt was sent with `start_task=false`: a job JOB may have created
    /// from it waits unstarted and transferred nothing.
    pub in_doubt_unstarted: bool,
    /// Per host, its result in the latest finished attempt that reached it (a retry reaches
    /// only the hosts that failed, so this covers every target host that was followed).
    pub last_hosts: Vec<HostResult>,
    /// The JOB instance of the latest finished attempt (shown for a push already done).
    pub last_job: Option<i64>,
    /// The latest attempt's `push_attempt_finished` is on disk: whether JOB reported its job
    /// a success with every target host (over the run's attempts) done. Cleared by the next
    /// attempt's intent.
    pub attempt_succeeded: Option<bool>,
    /// The batch of the job `in_flight`, when the plan cuts the push into batches.
    pub in_flight_batch: Option<u32>,
    /// A retry inside the job was asked for (`push_retry_requested`) and its attempt is not
    /// recorded finished: the attempt number and the step's execution count before it.
    pub retry_pending: Option<(u32, Option<i32>)>,
    /// Its verification's verdict (`push_verified`) since the last transfer: `None` when
    /// the last transfer was not verified (yet).
    pub verified: Option<bool>,
    /// The targets that verification found differing or could not read (their results in
    /// `last_hosts`): what a resumed run sends to again.
    pub unverified: Vec<HostResult>,
    /// Its gate was confirmed (`push_confirmed`): a resumed run does not ask again.
    pub gate_confirmed: bool,
    /// Where it waits for a person, from its last `push_awaiting_confirmation` not
    /// confirmed since.
    pub waiting: Option<crate::confirm::WaitPoint>,
    /// The last JOB rolling batch journaled finished (`push_batch_finished`): its job and
    /// index. A resumed run following that job again does not journal those batches twice.
    pub job_batches_done: Option<(i64, u32)>,
    /// The JOB rolling batches journaled finished for the job of `job_batches_done`, the
    /// latest of each index, in index order: what a resumed run's report lists for the
    /// batches it does not see again.
    pub job_batches: Vec<crate::report::BatchReport>,
}

impl PushHistory {
    /// Its last transfer succeeded in JOB but no verification of it is recorded (the
    /// process ended in between): for a push with `verify`, what is left is the
    /// verification alone.
    pub fn awaits_verification(&self) -> bool {
        // An interrupt during the verification ends the push `interrupted` without a verdict.
        matches!(self.status, None | Some(PushStatus::Interrupted))
            && self.in_flight.is_none()
            && self.in_doubt.is_none()
            && self.attempt_succeeded == Some(true)
            && self.verified.is_none()
    }
    /// Succeeded in an earlier segment: its `push_finished` says so, or (the process ended
    /// before that line was whole) its last attempt is recorded as JOB's success. Either way
    /// the files are where they should be, and submitting again would push them twice.
    pub fn succeeded(&self) -> bool {
        self.in_flight.is_none()
            && self.in_doubt.is_none()
            && matches!(
                self.outcome(),
                Some(PushStatus::Succeeded | PushStatus::AlreadySucceeded)
            )
    }

    /// How the push ended as far as the journal knows: its `push_finished`, else what its
    /// last finished attempt says (`Succeeded` or `Failed`), else nothing.
    pub fn outcome(&self) -> Option<PushStatus> {
        if self.status.is_none() && self.verified == Some(false) {
            return Some(PushStatus::Failed);
        }
        self.status.or(match self.attempt_succeeded {
            Some(true) => Some(PushStatus::Succeeded),
            Some(false) => Some(PushStatus::Failed),
            None => None,
        })
    }
}

/// A journal read back.
#[derive(Debug, Clone, PartialEq)]
pub struct RunHistory {
    /// The file.
    pub path: PathBuf,
    /// Run id.
    pub run_id: String,
    /// `run_started.pushes`: push name -> request sha256.
    pub push_hashes: BTreeMap<String, String>,
    /// When it started.
    pub started_at: String,
    /// Who started it.
    pub user: String,
    /// The status of the last `run_finished`, if the last segment ended cleanly.
    pub finished: Option<RunOutcome>,
    /// Per push.
    pub pushes: BTreeMap<String, PushHistory>,
    /// The `refresh` lines of a `--converge` run, in the order written (empty otherwise).
    pub refresh: Vec<RefreshedPush>,
    /// Lines that could not be read (a torn last line after a crash is normal).
    pub unreadable_lines: usize,
    /// Numbers (1-based) of the unreadable lines that are not a torn tail: neither the last
    /// line nor one a resumed run ended (followed by its `run_resumed`). A crash tears only
    /// the line being written, so these mean the file was damaged or edited, and what it
    /// says about the pushes cannot be trusted.
    pub damaged_lines: Vec<usize>,
}

impl RunHistory {
    /// Reads a journal.
    pub fn read(path: &Path) -> Result<Self, JournalError> {
        let text = std::fs::read_to_string(path).map_err(|e| JournalError {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let mut history = RunHistory {
            path: path.to_owned(),
            run_id: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            push_hashes: BTreeMap::new(),
            started_at: String::new(),
            user: String::new(),
            finished: None,
            pushes: BTreeMap::new(),
            refresh: Vec::new(),
            unreadable_lines: 0,
            damaged_lines: Vec::new(),
        };
        let mut first = true;
        // An unreadable line is a torn tail until a line other than `run_resumed` follows it.
        let mut torn: Option<usize> = None;
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let Ok(record) = serde_json::from_str::<Record>(line) else {
                history.unreadable_lines += 1;
                history.damaged_lines.extend(torn.replace(index + 1));
                continue;
            };
            if let Some(number) = torn.take()
                && !matches!(record, Record::RunResumed { .. })
            {
                history.damaged_lines.push(number);
            }
            if first {
                first = false;
                match &record {
                    Record::RunStarted { format_version, .. }
                        if *format_version == JOURNAL_FORMAT_VERSION => {}
                    Record::RunStarted { format_version, .. } => {
                        return Err(JournalError {
                            path: path.to_owned(),
                            message: format!(
                                "written in journal format {format_version}; this version reads format {JOURNAL_FORMAT_VERSION}"
                            ),
                        });
                    }
                    _ => {
                        return Err(JournalError {
                            path: path.to_owned(),
                            message: "does not start with `run_started`".into(),
                        });
                    }
                }
            }
            history.apply(record);
        }
        if first {
            return Err(JournalError {
                path: path.to_owned(),
                message: EMPTY.into(),
            });
        }
        Ok(history)
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::RunStarted {
                run_id,
                pushes,
                at,
                user,
                ..
            } => {
                self.run_id = run_id;
                self.push_hashes = pushes;
                self.started_at = at;
                self.user = user;
            }
            Record::RunResumed { .. } => self.finished = None,
            Record::Refresh { push, verdict, .. } => {
                self.refresh.retain(|r| r.push != push);
                self.refresh.push(RefreshedPush { push, verdict });
            }
            Record::PushSubmitting {
                push,
                attempt,
                task_name,
                two_phase,
                at,
                ..
            } => {
                let p = self.pushes.entry(push).or_default();
                p.last_attempt = p.last_attempt.max(attempt);
                p.in_doubt = Some((attempt, task_name, at));
                p.in_doubt_unstarted = two_phase;
                p.status = None;
                p.attempt_succeeded = None;
                p.verified = None;
                p.unverified.clear();
            }
            Record::PushSubmitted {
                push, job, batch, ..
            } => {
                let p = self.pushes.entry(push).or_default();
                p.in_doubt = None;
                p.submitted += 1;
                p.in_flight = Some(job);
                p.in_flight_batch = batch.map(|b| b.index);
            }
            Record::PushSubmitFailed {
                push,
                attempt,
                outcome_unknown,
                not_sent,
                ..
            } => {
                let p = self.pushes.entry(push).or_default();
                if !outcome_unknown {
                    p.in_doubt = None;
                }
                if not_sent {
                    p.in_doubt_unstarted = false;
                    if p.last_attempt == attempt {
                        p.last_attempt = attempt.saturating_sub(1);
                    }
                }
            }
            Record::PushStarted {
                push,
                job_instance_id,
                ..
            } => {
                let p = self.pushes.entry(push).or_default();
                if let Some(job) = p
                    .in_flight
                    .as_mut()
                    .filter(|j| j.job_instance_id == job_instance_id)
                {
                    job.start_pending = false;
                }
            }
            Record::PushTerminateRequested { .. } => {}
            Record::PushRebuilt {
                push,
                jobs,
                job,
                job_status,
                ..
            } => {
                let p = self.pushes.entry(push).or_default();
                p.last_attempt = p.last_attempt.max(jobs);
                p.submitted += jobs;
                if job_status.is_finished() {
                    p.last_job = Some(job.job_instance_id);
                    p.attempt_succeeded = Some(job_status == RunStatus::Success);
                } else {
                    p.in_flight = Some(job);
                }
            }
            Record::PushJobLost {
                push,
                job_instance_id,
                ..
            } => {
                let p = self.pushes.entry(push).or_default();
                if p.in_flight
                    .is_some_and(|j| j.job_instance_id == job_instance_id)
                {
                    p.in_flight = None;
                }
                p.status = None;
                p.attempt_succeeded = Some(false);
            }
            Record::PushAttemptFinished {
                push,
                attempt,
                hosts,
                job_instance_id,
                job_status,
                batch,
                ..
            } => {
                let p = self.pushes.entry(push).or_default();
                p.in_flight = None;
                if p.retry_pending
                    .is_some_and(|(pending, _)| attempt >= pending)
                {
                    p.retry_pending = None;
                }
                p.in_flight_batch = None;
                p.last_job = Some(job_instance_id);
                // A retry reaches only the hosts that failed: keep each host's latest result
                // over the run's attempts, so the push's whole target set stays known.
                for h in hosts {
                    match p.last_hosts.iter_mut().find(|k| k.key() == h.key()) {
                        Some(known) => *known = h,
                        None => p.last_hosts.push(h),
                    }
                }
                // The push task's own rule for success: JOB's verdict, and no host failing.
                p.attempt_succeeded = Some(
                    job_status == RunStatus::Success
                        && p.last_hosts.iter().all(HostResult::is_success),
                );
                // A batch before the last one decides nothing yet: the push goes on.
                if batch.is_some_and(|b| b.index < b.count) && p.attempt_succeeded == Some(true) {
                    p.attempt_succeeded = None;
                }
            }
            Record::PushRetryRequested {
                push,
                attempt,
                job,
                execute_count,
                ..
            } => {
                let p = self.pushes.entry(push).or_default();
                p.last_attempt = p.last_attempt.max(attempt);
                p.in_flight = Some(job);
                p.retry_pending = Some((attempt, execute_count));
                p.status = None;
                p.attempt_succeeded = None;
                p.verified = None;
                p.unverified.clear();
            }
            Record::PushVerified {
                push, verification, ..
            } => {
                let p = self.pushes.entry(push).or_default();
                p.verified = Some(verification.passed());
                let named: Vec<&str> = verification
                    .differing
                    .iter()
                    .map(|h| h.host.as_str())
                    .chain(verification.cannot_verify.iter().map(|h| h.host.as_str()))
                    .collect();
                p.unverified = p
                    .last_hosts
                    .iter()
                    .filter(|h| named.contains(&h.host.as_str()))
                    .cloned()
                    .collect();
            }
            Record::PushBatchFinished {
                push,
                job_instance_id,
                batch,
                batches,
                status,
                hosts,
                ..
            } => {
                let p = self.pushes.entry(push).or_default();
                if p.job_batches_done
                    .is_some_and(|(job, _)| job != job_instance_id)
                {
                    p.job_batches.clear();
                }
                p.job_batches_done = Some((job_instance_id, batch));
                p.job_batches.retain(|b| b.index != batch);
                p.job_batches.push(crate::report::BatchReport::of_hosts(
                    batch,
                    batches,
                    status,
                    job_instance_id,
                    &hosts,
                ));
                p.job_batches.sort_by_key(|b| b.index);
            }
            Record::PushAwaitingConfirmation { push, point, .. } => {
                self.pushes.entry(push).or_default().waiting = Some(point);
            }
            Record::PushConfirmed { push, point, .. } => {
                let p = self.pushes.entry(push).or_default();
                p.waiting = None;
                if point == crate::confirm::WaitPoint::Gate {
                    p.gate_confirmed = true;
                }
            }
            Record::PushFinished { push, status, .. } => {
                let p = self.pushes.entry(push).or_default();
                p.status = Some(status);
            }
            Record::RunFinished { status, .. } => self.finished = Some(status),
        }
    }

    /// True when the run ended with every push done.
    pub fn is_complete(&self) -> bool {
        self.finished == Some(RunOutcome::Succeeded)
    }

    /// Pushes whose jobs may still be running in JOB (submitted, not known finished).
    pub fn in_flight(&self) -> Vec<&str> {
        self.pushes
            .iter()
            .filter(|(_, p)| p.in_flight.is_some())
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Pushes whose submission's outcome is unknown.
    pub fn in_doubt(&self) -> Vec<&str> {
        self.pushes
            .iter()
            .filter(|(_, p)| p.in_doubt.is_some())
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Pushes that succeeded.
    pub fn succeeded(&self) -> Vec<&str> {
        self.pushes
            .iter()
            .filter(|(_, p)| p.succeeded())
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// The message of a journal without a single readable line.
const EMPTY: &str = "is empty";

/// The most recent journal of `plan` (by run id, which sorts by start time), if any.
pub fn latest_run(state_dir: &Path, plan: &str) -> Result<Option<RunHistory>, JournalError> {
    let dir = runs_dir(state_dir, plan);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(JournalError {
                path: dir,
                message: e.to_string(),
            });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    // A journal without one whole line is a run killed while writing its first line: nothing
    // was acted on, so it is passed over.
    while let Some(path) = files.pop() {
        match RunHistory::read(&path) {
            Ok(history) => return Ok(Some(history)),
            Err(e) if e.message == EMPTY => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// A new run id: UTC start time (sortable) and a fresh run tag (what the run's task names
/// carry in JOB).
pub fn new_run_id() -> String {
    run_id_with_tag(&crate::run_tag::fresh_tag())
}

/// A run id starting now for a run whose tag is known (a run rebuilt from JOB keeps the tag
/// its jobs carry).
pub(crate) fn run_id_with_tag(tag: &str) -> String {
    format!("{}-{tag}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"))
}

/// Now, RFC 3339.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// sha256 hex of a body.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: i64) -> JobRef {
        JobRef {
            start_pending: false,
            api: ApiVersion::V2,
            bk_biz_id: 2,
            job_instance_id: id,
            step_instance_id: None,
        }
    }

    #[test]
    fn lines_are_tagged_json_objects() {
        let line = serde_json::to_value(Record::PushSubmitted {
            push: "a".into(),
            attempt: 2,
            job: job(7),
            batch: None,
            at: "t".into(),
        })
        .expect("json");
        assert_eq!(
            line,
            serde_json::json!({"type": "push_submitted", "push": "a", "attempt": 2,
                "job": {"api": "v2", "bk_biz_id": 2, "job_instance_id": 7, "step_instance_id": null},
                "at": "t"})
        );
    }

    #[test]
    fn history_tells_done_in_flight_in_doubt_and_failed_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::create(dir.path(), "rel/1", "r1").expect("create");
        let at = now();
        let w = |r: Record| journal.write(&r).expect("write");
        w(Record::RunStarted {
            format_version: JOURNAL_FORMAT_VERSION,
            run_id: "r1".into(),
            plan: "rel/1".into(),
            plan_file: "p.toml".into(),
            api: ApiVersion::V2,
            user: "u".into(),
            host: "h".into(),
            pid: 1,
            at: at.clone(),
            pushes: BTreeMap::from([("a".into(), "x".into())]),
            insecure_skip_tls_verify: false,
            force: false,
            rebuilt_from_job: false,
            plan_hash: None,
        });
        let submitting = |push: &str| Record::PushSubmitting {
            push: push.into(),
            attempt: 1,
            request_sha256: "x".into(),
            task_name: Some(format!("rel/{push}")),
            targets: vec![],
            two_phase: false,
            batch: None,
            at: at.clone(),
        };
        for p in ["done", "flying", "doubt", "failed"] {
            w(submitting(p));
        }
        for (p, id) in [("done", 1), ("flying", 2), ("failed", 4)] {
            w(Record::PushSubmitted {
                push: p.into(),
                attempt: 1,
                job: job(id),
                batch: None,
                at: at.clone(),
            });
        }
        for (p, id, ok) in [("done", 1, true), ("failed", 4, false)] {
            w(Record::PushAttemptFinished {
                push: p.into(),
                attempt: 1,
                job_instance_id: id,
                job_status: RunStatus::from_code(if ok { 3 } else { 4 }),
                hosts: vec![],
                batch: None,
                at: at.clone(),
            });
            w(Record::PushFinished {
                push: p.into(),
                status: if ok {
                    PushStatus::Succeeded
                } else {
                    PushStatus::Failed
                },
                at: at.clone(),
            });
        }
        // A torn last line, as a crash mid-write leaves.
        std::fs::OpenOptions::new()
            .append(true)
            .open(journal.path())
            .and_then(|mut f| f.write_all(b"{\"type\":\"push_sub"))
            .expect("torn");
        let history = latest_run(dir.path(), "rel/1")
            .expect("read")
            .expect("one run");
        assert_eq!(history.run_id, "r1");
        assert_eq!(history.succeeded(), vec!["done"]);
        assert_eq!(history.in_flight(), vec!["flying"]);
        assert_eq!(history.in_doubt(), vec!["doubt"]);
        assert_eq!(history.pushes["failed"].status, Some(PushStatus::Failed));
        assert_eq!(history.pushes["flying"].in_flight, Some(job(2)));
        assert_eq!(history.unreadable_lines, 1);
        assert!(!history.is_complete());
        assert!(
            journal
                .path()
                .starts_with(dir.path().join("runs").join("rel_1"))
        );
    }

    #[test]
    fn a_retry_intent_keeps_its_job_in_flight_and_a_failed_verification_fails_the_push() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::create(dir.path(), "p", "r1").expect("create");
        let w = |r: Record| journal.write(&r).expect("write");
        let finished = |push: &str, attempt: u32, status: i32| Record::PushAttemptFinished {
            push: push.into(),
            attempt,
            job_instance_id: 7,
            job_status: RunStatus::from_code(status),
            hosts: vec![],
            batch: None,
            at: now(),
        };
        w(started("r1"));
        for (push, status) in [("retried", 4), ("unverified", 3), ("differs", 3)] {
            w(submitting(push, 1));
            w(Record::PushSubmitted {
                push: push.into(),
                attempt: 1,
                job: job(7),
                batch: None,
                at: now(),
            });
            w(finished(push, 1, status));
        }
        w(Record::PushRetryRequested {
            push: "retried".into(),
            attempt: 2,
            job: job(7),
            hosts: vec!["0:10.0.0.1".into()],
            execute_count: Some(0),
            at: now(),
        });
        let differing = crate::verify::HostMismatch {
            host: "0:10.0.0.1".into(),
            host_id: None,
            files: vec![],
        };
        w(Record::PushVerified {
            push: "differs".into(),
            job_instance_id: 7,
            verification: Box::new(crate::verify::Verification {
                method: crate::verify::VerifyMethod::Sha256,
                hosts: 1,
                verified: 0,
                differing: vec![differing],
                cannot_verify: vec![],
                script_jobs: vec![8],
                error: None,
            }),
            at: now(),
        });
        let read = || latest_run(dir.path(), "p").expect("read").expect("one run");
        let history = read();
        let retried = &history.pushes["retried"];
        assert_eq!(retried.in_flight, Some(job(7)));
        assert_eq!(retried.retry_pending, Some((2, Some(0))));
        assert_eq!(retried.last_attempt, 2);
        let unverified = &history.pushes["unverified"];
        assert!(unverified.awaits_verification() && unverified.succeeded());
        let differs = &history.pushes["differs"];
        assert!(!differs.awaits_verification());
        assert_eq!(differs.outcome(), Some(PushStatus::Failed));
        assert!(!differs.succeeded());
        // The retry's attempt recorded: nothing pending, nothing in flight.
        w(finished("retried", 2, 3));
        let history = read();
        assert_eq!(history.pushes["retried"].retry_pending, None);
        assert_eq!(history.pushes["retried"].in_flight, None);
        assert!(history.pushes["retried"].succeeded());
    }

    fn started(run_id: &str) -> Record {
        Record::RunStarted {
            format_version: JOURNAL_FORMAT_VERSION,
            run_id: run_id.into(),
            plan: "p".into(),
            plan_file: "p.toml".into(),
            api: ApiVersion::V3,
            user: "u".into(),
            host: "h".into(),
            pid: 1,
            at: now(),
            pushes: BTreeMap::new(),
            insecure_skip_tls_verify: false,
            force: false,
            rebuilt_from_job: false,
            plan_hash: None,
        }
    }

    fn submitting(push: &str, attempt: u32) -> Record {
        Record::PushSubmitting {
            push: push.into(),
            attempt,
            request_sha256: "x".into(),
            task_name: None,
            targets: vec![],
            two_phase: true,
            batch: None,
            at: now(),
        }
    }

    fn resumed() -> Record {
        Record::RunResumed {
            user: "u".into(),
            host: "h".into(),
            pid: 2,
            at: now(),
            insecure_skip_tls_verify: false,
            force: false,
        }
    }

    /// The journal's file held by another thread, as a slow fsync holds it: a flusher that
    /// took a batch waits, and lines queued meanwhile wait for the next batch.
    struct SinkHeld {
        release: std::sync::mpsc::Sender<()>,
        holder: std::thread::JoinHandle<()>,
    }

    impl SinkHeld {
        fn hold(journal: &Journal) -> SinkHeld {
            let shared = Arc::clone(&journal.shared);
            let (held, is_held) = std::sync::mpsc::channel();
            let (release, released) = std::sync::mpsc::channel::<()>();
            let holder = std::thread::spawn(move || {
                let _sink = shared.sink.lock().expect("sink");
                held.send(()).expect("held");
                let _ = released.recv();
            });
            is_held.recv().expect("held");
            SinkHeld { release, holder }
        }

        fn release(self) {
            drop(self.release);
            self.holder.join().expect("holder");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lines_queued_during_an_fsync_share_the_next_one_and_each_push_keeps_its_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Arc::new(Journal::create(dir.path(), "p", "r1").expect("create"));
        journal.append(&started("r1")).await.expect("first line");
        let pushes = 100_u32;
        for attempt in 1..=3 {
            // A slow fsync: the flusher holds a batch of one line (the marker) while every
            // push queues its line, each waiting for its own line as the push tasks do.
            let held = SinkHeld::hold(&journal);
            let marker = journal.enqueue(&resumed());
            while !journal.shared.queue().lines.is_empty() {
                tokio::task::yield_now().await;
            }
            let queued = Arc::new(tokio::sync::Semaphore::new(0));
            let tasks: Vec<_> = (0..pushes)
                .map(|i| {
                    let (journal, queued) = (Arc::clone(&journal), Arc::clone(&queued));
                    tokio::spawn(async move {
                        let line = journal.enqueue(&submitting(&format!("p{i}"), attempt));
                        queued.add_permits(1);
                        line.await
                    })
                })
                .collect();
            drop(
                queued
                    .acquire_many(pushes)
                    .await
                    .expect("every line queued"),
            );
            held.release();
            marker.await.expect("marker");
            for t in tasks {
                t.await.expect("task").expect("append");
            }
        }
        // The first line, then per round the marker's batch and one batch for 100 lines.
        assert_eq!(journal.batches(), 1 + 3 * 2);
        let text = std::fs::read_to_string(journal.path()).expect("read");
        let mut seen: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for line in text.lines().skip(1) {
            match serde_json::from_str::<Record>(line).expect("a whole line") {
                Record::PushSubmitting { push, attempt, .. } => {
                    seen.entry(push).or_default().push(attempt);
                }
                Record::RunResumed { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(seen.len(), pushes as usize);
        assert!(seen.values().all(|a| a == &[1, 2, 3]), "{seen:?}");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn after_a_failed_write_nothing_more_is_written_and_the_run_is_told() {
        // Every write to /dev/full fails with ENOSPC, as on a full disk.
        let journal = Journal::append_to(Path::new("/dev/full")).expect("open");
        assert!(!journal.broken().is_cancelled());
        let first = journal.append(&started("r1")).await.expect_err("full");
        assert!(first.message.contains("No space left"), "{first}");
        assert!(journal.broken().is_cancelled());
        let message = journal.write_error().expect("recorded");
        assert!(
            message.starts_with("journal write failed: `/dev/full`"),
            "{message}"
        );
        let later = journal
            .append(&submitting("a", 1))
            .await
            .expect_err("latched");
        assert!(
            later.message.contains("after an earlier write failed"),
            "{later}"
        );
        assert_eq!(journal.batches(), 1, "the later line was not even tried");
    }

    #[test]
    fn refresh_lines_are_read_back_for_a_resumed_converge_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::create(dir.path(), "p", "r1").expect("create");
        journal.write(&started("r1")).expect("write");
        let verdict = PushRefresh::Differs {
            hosts: 2,
            differing: vec![crate::refresh::HostDifference {
                host: "0:10.0.0.2".into(),
                unreadable: Some("agent down".into()),
                files: Vec::new(),
            }],
            up_to_date: vec!["0:10.0.0.1".into()],
        };
        for (push, verdict) in [
            ("a", PushRefresh::UpToDate { hosts: 3 }),
            ("b", verdict.clone()),
        ] {
            journal
                .write(&Record::Refresh {
                    push: push.into(),
                    verdict,
                    at: "t".into(),
                })
                .expect("write");
        }
        journal.write(&submitting("b", 1)).expect("write");
        let history = RunHistory::read(journal.path()).expect("read");
        assert_eq!(history.unreadable_lines, 0);
        assert_eq!(
            history.refresh,
            vec![
                RefreshedPush {
                    push: "a".into(),
                    verdict: PushRefresh::UpToDate { hosts: 3 },
                },
                RefreshedPush {
                    push: "b".into(),
                    verdict,
                },
            ]
        );
        assert_eq!(history.in_doubt(), vec!["b"]);
    }

    #[test]
    fn a_damaged_middle_line_is_named_and_a_torn_tail_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::create(dir.path(), "p", "r1").expect("create");
        journal.write(&started("r1")).expect("write");
        let path = journal.path().to_owned();
        let append = |bytes: &[u8]| {
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(bytes))
                .expect("append");
        };
        // Line 2: a torn line a resumed run ended (followed by its run_resumed): tolerated.
        append(b"{\"type\":\"push_sub\n");
        append(serialize(&resumed()).expect("line").as_bytes());
        // Line 4: garbled in the middle; line 6: a torn tail.
        append(b"{\"type\":\"push_submitted\",garbage}\n");
        append(serialize(&submitting("a", 1)).expect("line").as_bytes());
        append(b"{\"type\":\"push_fin");
        let history = RunHistory::read(&path).expect("read");
        assert_eq!(history.unreadable_lines, 3);
        assert_eq!(history.damaged_lines, vec![4]);
        assert_eq!(history.in_doubt(), vec!["a"]);
    }

    #[test]
    fn a_recorded_successful_attempt_is_done_without_its_push_finished() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::create(dir.path(), "p", "r1").expect("create");
        journal.write(&started("r1")).expect("write");
        let host = |ip: &str, status: i32| HostResult {
            host: format!("0:{ip}"),
            host_id: None,
            status: plan_bkjob::HostStatus::from_code(status),
            label: String::new(),
            error_code: None,
            log_excerpt: None,
        };
        let finished = |push: &str, job: i64, job_status: i32, hosts: Vec<HostResult>| {
            Record::PushAttemptFinished {
                push: push.into(),
                attempt: 1,
                job_instance_id: job,
                job_status: RunStatus::from_code(job_status),
                hosts,
                batch: None,
                at: now(),
            }
        };
        for (push, id) in [("ok", 1), ("failed", 2), ("retried", 3)] {
            journal.write(&submitting(push, 1)).expect("write");
            journal
                .write(&Record::PushSubmitted {
                    push: push.into(),
                    attempt: 1,
                    job: job(id),
                    batch: None,
                    at: now(),
                })
                .expect("write");
        }
        journal
            .write(&finished("ok", 1, 3, vec![host("10.0.0.1", 9)]))
            .expect("write");
        journal
            .write(&finished(
                "failed",
                2,
                4,
                vec![host("10.0.0.1", 9), host("10.0.0.2", 4)],
            ))
            .expect("write");
        journal
            .write(&finished("retried", 3, 4, vec![host("10.0.0.1", 4)]))
            .expect("write");
        // The retry's intent: in doubt again, the earlier attempt's verdict no longer decides.
        journal.write(&submitting("retried", 2)).expect("write");
        let history = RunHistory::read(journal.path()).expect("read");
        assert_eq!(history.succeeded(), vec!["ok"]);
        assert_eq!(history.pushes["ok"].outcome(), Some(PushStatus::Succeeded));
        assert_eq!(history.pushes["failed"].outcome(), Some(PushStatus::Failed));
        assert_eq!(history.pushes["retried"].outcome(), None);
        assert_eq!(history.in_doubt(), vec!["retried"]);
    }

    #[test]
    fn a_blocking_write_outside_a_runtime_is_on_disk_when_it_returns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::create(dir.path(), "p", "r1").expect("create");
        journal.write(&started("r1")).expect("write");
        journal.write(&submitting("a", 1)).expect("write");
        let history = RunHistory::read(journal.path()).expect("read");
        assert_eq!(history.in_doubt(), vec!["a"]);
        assert_eq!(journal.batches(), 2);
    }

    #[tokio::test]
    async fn continuing_after_a_torn_line_starts_a_line_of_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::create(dir.path(), "p", "r1").expect("create");
        journal.append(&started("r1")).await.expect("append");
        let path = journal.path().to_owned();
        drop(journal);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"{\"type\":\"push_sub"))
            .expect("torn");
        let journal = Journal::append_to(&path).expect("continue");
        journal.append(&submitting("a", 1)).await.expect("append");
        let history = RunHistory::read(&path).expect("read");
        assert_eq!(history.unreadable_lines, 1);
        assert_eq!(history.in_doubt(), vec!["a"]);
    }

    #[tokio::test]
    async fn an_intent_not_sent_leaves_the_push_neither_in_doubt_nor_attempted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let journal = Journal::create(dir.path(), "p", "r1").expect("create");
        journal.append(&started("r1")).await.expect("append");
        journal.append(&submitting("a", 1)).await.expect("append");
        journal
            .append(&Record::PushSubmitFailed {
                push: "a".into(),
                attempt: 1,
                code: None,
                message: "not sent".into(),
                outcome_unknown: false,
                not_sent: true,
                at: now(),
            })
            .await
            .expect("append");
        let history = RunHistory::read(journal.path()).expect("read");
        assert!(history.in_doubt().is_empty());
        assert_eq!(history.pushes["a"].last_attempt, 0);
        assert!(!history.pushes["a"].in_doubt_unstarted);
    }
}
