//! The execution engine's state and its operations: jobs and their per-host and per-file
//! state (JOB's status model, §6), submission, START, terminate and archiving. Running a job
//! is in `job` (one task per job) and `host` (one task per target host), so jobs never wait
//! for each other. Locks guard only in-memory state and are never held across an `.await`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plan_bkjob::file_log::{FileLogLine, TIME_FORMAT};
use plan_bkjob::{FileMode, FileStatus, HostStatus, RunStatus, code};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::front::JobReply;
use crate::submit::JobSpec;
use crate::world::{HostRef, World};

/// The first job id of a simulator whose store holds none (JOB's ids are large numbers).
const FIRST_JOB_ID: u64 = 10_000;

/// The simulator's clock: tokio's (pausable) monotonic time, anchored to the wall clock
/// at start, so reported timestamps move with virtual time in tests.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    wall: chrono::DateTime<chrono::Local>,
    base: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            wall: chrono::Local::now(),
            base: Instant::now(),
        }
    }
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Local> {
        let elapsed = chrono::Duration::from_std(self.base.elapsed()).unwrap_or_default();
        self.wall + elapsed
    }
    pub(crate) fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
    /// A file-log line stamped with the current time.
    pub(crate) fn stamp(&self, line: &FileLogLine<'_>) -> String {
        line.stamped(&self.now().format(TIME_FORMAT).to_string())
    }
}

/// One per-file log entry (an upload on a source, a download on a target).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct FileLog {
    pub(crate) mode: FileMode,
    pub(crate) src: HostRef,
    pub(crate) src_path: String,
    pub(crate) dest: Option<HostRef>,
    pub(crate) dest_path: Option<String>,
    pub(crate) status: FileStatus,
    pub(crate) content: String,
    pub(crate) size: Option<String>,
    pub(crate) speed: Option<String>,
    pub(crate) process: Option<String>,
}

impl FileLog {
    /// Ends an entry as failed, with a closing line that says why.
    pub(crate) fn fail(&mut self, clock: &Clock, detail: &str) {
        self.status = FileStatus::Failed;
        let path = self.dest_path.clone().unwrap_or_default();
        let line = FileLogLine::new(&path, FileStatus::Failed).detail(detail);
        self.content.push_str(&clock.stamp(&line));
    }
}

/// One target host's task (stored whole for a finished job: `persist`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct HostTask {
    pub(crate) host: HostRef,
    pub(crate) status: HostStatus,
    /// GSE's code for the host (`plan_bkjob::gse_code`).
    pub(crate) error_code: i64,
    pub(crate) start_ms: Option<i64>,
    pub(crate) end_ms: Option<i64>,
    pub(crate) files: Vec<FileLog>,
    /// A script job's exit code and output on this host (`None` for a transfer, and until
    /// the script ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) script: Option<crate::script::ScriptOutput>,
}

/// Mutable state of a job.
#[derive(Debug, Clone)]
pub(crate) struct JobState {
    pub(crate) status: RunStatus,
    pub(crate) step_status: RunStatus,
    pub(crate) create_ms: i64,
    pub(crate) start_ms: Option<i64>,
    pub(crate) end_ms: Option<i64>,
    pub(crate) hosts: Vec<HostTask>,
    pub(crate) uploads: Vec<FileLog>,
    pub(crate) start_requested: bool,
    /// The step's `execute_count`: 0, plus one per retry (`operate_step_instance` 2 or 8).
    pub(crate) execute_count: u32,
    /// Where a rolling job is (`None` for a job without `rolling_config`).
    pub(crate) rolling: Option<crate::rolling::RollingState>,
}

impl JobState {
    /// The job and its one step move to `status` together.
    pub(crate) fn set_status(&mut self, status: RunStatus) {
        self.status = status;
        self.step_status = status;
    }
}

/// A job instance.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) step_id: u64,
    pub(crate) spec: JobSpec,
    pub(crate) state: Mutex<JobState>,
    /// The `stuck` fault: no target host ever reports.
    pub(crate) stuck: bool,
    /// START for a job created with `start_task=false`.
    pub(crate) start: Notify,
    /// Terminate.
    pub(crate) stop: Notify,
    /// Where a move of the job's status is announced to the job store (`persist`).
    pub(crate) changes: Option<Arc<crate::persist::Changes>>,
}

impl Job {
    pub(crate) fn snapshot(&self) -> JobState {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut JobState) -> R) -> R {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // A rolling job's step status and batch are its progress between batches: the job
        // store keeps them too, so a restarted simulator goes on at the same batch.
        let progress = |s: &JobState| {
            (
                s.status,
                s.step_status,
                s.start_requested,
                s.rolling.map(|r| r.batch),
            )
        };
        let before = progress(&guard);
        let result = f(&mut guard);
        let moved = progress(&guard) != before;
        drop(guard);
        if moved && let Some(changes) = &self.changes {
            changes.mark(self.id);
        }
        result
    }
}

/// Where a restored rolling job goes on (`persist`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RollingResume {
    /// It waits for a user between batches (status 7).
    Waiting,
    /// It runs this batch (from 1), then the next ones.
    Batch(usize),
}

/// Engine timings (from `[sim]`).
#[derive(Debug, Clone)]
pub(crate) struct Timings {
    pub(crate) start_delay: Duration,
    pub(crate) host_wait: Duration,
    pub(crate) stop_delay: Duration,
    pub(crate) speed_mb: Option<u64>,
    pub(crate) form_callback: bool,
    /// JOB before 3.12: `start_task=false` is ignored, START is refused.
    pub(crate) ignore_start_task: bool,
    /// Most jobs kept (0 = all): see [`Engine::archive_old_jobs`].
    pub(crate) keep_jobs: usize,
}

/// All jobs of one simulator.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) world: Arc<World>,
    pub(crate) clock: Clock,
    pub(crate) timings: Timings,
    jobs: Mutex<BTreeMap<u64, Arc<Job>>>,
    next_id: AtomicU64,
    running: AtomicUsize,
    /// The job store under `ROOT/.jobsim/jobs` (none when the simulator keeps no files).
    pub(crate) store: std::sync::OnceLock<Arc<crate::persist::Store>>,
    /// JOB's callback client.
    pub(crate) http: reqwest::Client,
}

impl Engine {
    pub(crate) fn new(world: Arc<World>, timings: Timings) -> Self {
        // JOB's callback client (Apache HttpClient) follows no redirect on a POST (a 3xx is
        // just a non-200 reply) and uses no proxy from the environment.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            world,
            clock: Clock::new(),
            timings,
            jobs: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(FIRST_JOB_ID),
            running: AtomicUsize::new(0),
            store: std::sync::OnceLock::new(),
            http,
        }
    }

    pub(crate) fn running_jobs(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    pub(crate) fn get(&self, id: u64) -> Option<Arc<Job>> {
        self.jobs.lock().ok()?.get(&id).cloned()
    }

    /// Every job the simulator still knows (archived ones are gone), oldest first.
    pub(crate) fn jobs(&self) -> Vec<Arc<Job>> {
        self.jobs
            .lock()
            .map(|jobs| jobs.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Persists a validated job (status 1) and schedules it.
    pub(crate) fn submit(self: &Arc<Self>, spec: JobSpec, stuck: bool) -> Arc<Job> {
        let id = self.next_id.fetch_add(2, Ordering::Relaxed);
        if let Some(store) = self.store.get() {
            store.reserve(id);
        }
        let job = self.new_job(id, spec, stuck, self.clock.now_ms());
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(id, job.clone());
            self.archive_old_jobs(&mut jobs);
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(crate::job::run_job(self.clone(), job.clone()));
        job
    }

    /// Ids start past every id the job store holds or ever handed out.
    pub(crate) fn continue_ids_from(&self, first_free: u64) {
        self.next_id.fetch_max(first_free, Ordering::Relaxed);
    }

    /// A job the store kept, known again under its id; `run` starts it again (a job that had
    /// started), or lets it wait for START as before.
    pub(crate) fn adopt(self: &Arc<Self>, job: Arc<Job>, run: bool) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(job.id, job.clone());
        }
        if job.with(|s| s.status.is_finished()) {
            return;
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        if run {
            // `run_job` takes this permit as a START and begins without `start_delay`.
            job.start.notify_one();
        }
        tokio::spawn(crate::job::run_job(self.clone(), job));
    }

    /// A rolling job the store kept mid-way, known again under its id: it waits for a user
    /// as it did, or its batches go on from the one `next` names. Either way it counts as
    /// running, as before the restart.
    pub(crate) fn adopt_rolling(self: &Arc<Self>, job: Arc<Job>, next: RollingResume) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(job.id, job.clone());
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        if let RollingResume::Batch(batch) = next {
            tokio::spawn(crate::job::resume_rolling(self.clone(), job, batch));
        }
    }

    /// A job in status 1, created at `create_ms`.
    pub(crate) fn new_job(&self, id: u64, spec: JobSpec, stuck: bool, create_ms: i64) -> Arc<Job> {
        let rolling = crate::rolling::initial_state(&spec);
        Arc::new(Job {
            id,
            step_id: id + 1,
            spec,
            state: Mutex::new(JobState {
                status: RunStatus::Blank,
                step_status: RunStatus::Blank,
                create_ms,
                start_ms: None,
                end_ms: None,
                hosts: Vec::new(),
                uploads: Vec::new(),
                start_requested: false,
                execute_count: 0,
                rolling,
            }),
            stuck,
            start: Notify::new(),
            stop: Notify::new(),
            changes: self.store.get().map(|store| store.changes.clone()),
        })
    }

    /// A job has reached its final status: it no longer counts against the running quota.
    pub(crate) fn job_finished(&self) {
        self.running.fetch_sub(1, Ordering::Relaxed);
    }

    /// A finished job runs again (a retry or an ignored error of a rolling step): JOB counts
    /// it against the running quota again.
    pub(crate) fn job_resumed(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    /// Past `keep_jobs`, forgets the oldest finished jobs, as JOB's `job-backup` archives old
    /// job instances: queries for them answer `1244006`. A simulator that serves a long soak
    /// would otherwise hold every job it ever ran. Unfinished jobs are never archived.
    fn archive_old_jobs(&self, jobs: &mut BTreeMap<u64, Arc<Job>>) {
        let keep = self.timings.keep_jobs;
        if keep == 0 || jobs.len() <= keep {
            return;
        }
        let excess = jobs.len() - keep;
        // Ids grow with time, so the map's order is the jobs' age.
        let archived: Vec<u64> = jobs
            .iter()
            .filter(|(_, job)| job.with(|s| s.status.is_finished()))
            .map(|(id, _)| *id)
            .take(excess)
            .collect();
        for id in archived {
            jobs.remove(&id);
            // The job store lets it go too.
            if let Some(store) = self.store.get() {
                store.changes.mark(id);
            }
        }
    }

    /// `operate_job_instance` code 1.
    pub(crate) fn terminate(&self, job: &Job) -> Result<(), JobReply> {
        let prior = job.with(|s| {
            let prior = s.status;
            if matches!(prior, RunStatus::Running | RunStatus::WaitingUser) {
                s.status = RunStatus::Stopping;
            }
            prior
        });
        match prior {
            RunStatus::Running => {
                job.stop.notify_one();
                Ok(())
            }
            // Only a rolling job waits for a user, between batches, when nothing runs.
            RunStatus::WaitingUser => {
                crate::rolling::stop_waiting(self, job);
                Ok(())
            }
            _ => Err(JobReply::err(
                code::UNSUPPORTED_OPERATION,
                "Unsupported operation",
            )),
        }
    }

    /// `operate_job_instance` code 2.
    pub(crate) fn start(&self, job: &Job) -> Result<(), JobReply> {
        // A JOB that ignores `start_task` started the job itself: a START is a repeat.
        let ok = !self.timings.ignore_start_task
            && job.with(|s| {
                if s.status == RunStatus::Blank && !s.start_requested {
                    s.start_requested = true;
                    true
                } else {
                    false
                }
            });
        if ok {
            job.start.notify_one();
            Ok(())
        } else {
            Err(JobReply::err(
                code::UNSUPPORTED_OPERATION_REPEAT_START_JOB,
                format!(
                    "Unsupported operation,do not repeat start the job,job_instance_id={}",
                    job.id
                ),
            ))
        }
    }
}

impl Engine {
    /// The `start_lost` fault: answers a START as [`Engine::start`] would, but the job is
    /// never started (it stays in status 1, and a later START is accepted).
    pub(crate) fn acknowledge_start(&self, job: &Job) -> Result<(), JobReply> {
        let pending = !self.timings.ignore_start_task
            && job.with(|s| s.status == RunStatus::Blank && !s.start_requested);
        if pending { Ok(()) } else { self.start(job) }
    }
}
