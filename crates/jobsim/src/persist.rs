//! The job store: every job the simulator created, kept under `ROOT/.jobsim/jobs/` so that a
//! simulator started again on the same root (after a stop, a crash or `kill -9`) still knows
//! them, as JOB's database outlives its processes.
//!
//! Per job, two files, each written whole to a temporary name and renamed over the old one
//! (a crash leaves the old file or the new one, never half of one):
//!
//! * `<id>.req.json`, written once before the submission is answered: the request as the
//!   simulator validated it (credentials removed), the caller, the job's name and creation
//!   time. On a restart the request is validated again to rebuild the job.
//! * `<id>.state.json`, rewritten when the job's status changes (by a writer task, off the
//!   request path): status, times, and for a finished job its hosts and file logs.
//!
//! `next_id` holds the high-water mark of the ids handed out, reserved ahead in blocks, so ids
//! keep increasing across restarts and none a client may hold is ever given to another job.
//!
//! On a restart a finished job answers as before; a job that was created but not started
//! waits for START as before; a rolling job goes on at the batch it had reached (a job
//! waiting for a user between batches waits again, for `operate_step_instance` 13; a batch
//! that was running runs again; earlier batches keep their results); any other job that was
//! running runs again from its start (its transfers are idempotent: the files end up as one
//! run would leave them). A job the store
//! cannot rebuild (its request no longer validates against the world, its files unreadable)
//! is left out, and queries for it answer `1244006` as for an archived job.
//!
//! Bounds: a job `[sim] keep_jobs` archives leaves the store too; past [`MAX_STORED_JOBS`]
//! the oldest finished jobs leave it (while running, and on the next start), and a file larger
//! than [`MAX_RECORD_BYTES`] is not read. Every path is a plain name inside the store's
//! directory, opened through a cap-std handle on it. Files are not fsync'd: they survive the
//! process, not a power cut.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};
use plan_bkjob::RunStatus;
use plan_bkjob::routes::Route;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

use crate::coerce::Params;
use crate::dispatch::parse_submission;
use crate::engine::{Engine, FileLog, HostTask, Job, RollingResume};
use crate::front::Caller;
use crate::submit::SubmitCtx;

/// The store's directory under the sandbox root.
pub(crate) const STORE_DIR: &str = ".jobsim/jobs";
/// The most jobs the store keeps.
pub(crate) const MAX_STORED_JOBS: usize = 10_000;
/// The largest record file read back.
pub(crate) const MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;
/// Ids reserved ahead in `next_id`, so a submission rarely writes it.
const ID_BLOCK: u64 = 1_000;
/// The format of the records; a record of another version is not read.
const FORMAT: u32 = 1;
/// Request fields that are credentials: never stored.
const SECRET_KEYS: [&str; 9] = [
    "bk_app_code",
    "bk_app_secret",
    "bk_username",
    "bk_token",
    "access_token",
    "bk_access_token",
    "app_secret",
    "bk_signature",
    "bk_ticket",
];

/// The submission of one job, as stored.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SavedRequest {
    format: u32,
    pub(crate) id: u64,
    /// `job/<api>` or `jobv3/<api>`.
    pub(crate) api: String,
    pub(crate) params: Value,
    pub(crate) app_code: String,
    pub(crate) username: String,
    pub(crate) name: String,
    pub(crate) stuck: bool,
    pub(crate) create_ms: i64,
}

impl SavedRequest {
    pub(crate) fn route(&self) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.to_string() == self.api)
    }
    pub(crate) fn params(&self) -> Params {
        Params(self.params.as_object().cloned().unwrap_or_default())
    }
    pub(crate) fn caller(&self) -> Caller {
        Caller {
            app_code: self.app_code.clone(),
            username: self.username.clone(),
        }
    }
}

/// What a job had reached, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SavedState {
    format: u32,
    pub(crate) status: RunStatus,
    pub(crate) step_status: RunStatus,
    pub(crate) start_ms: Option<i64>,
    pub(crate) end_ms: Option<i64>,
    pub(crate) start_requested: bool,
    /// For a finished job, and a rolling one that started: another running job is run
    /// again from its start.
    #[serde(default)]
    pub(crate) hosts: Vec<HostTask>,
    #[serde(default)]
    pub(crate) uploads: Vec<FileLog>,
    /// A rolling job's batch (from 1): a restarted simulator goes on there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rolling_batch: Option<usize>,
    /// The step's `execute_count` (retries inside the job).
    #[serde(default)]
    pub(crate) execute_count: u32,
}

/// A stored job read back.
#[derive(Debug)]
pub(crate) struct SavedJob {
    pub(crate) request: SavedRequest,
    pub(crate) state: Option<SavedState>,
}

/// Jobs whose status moved since the writer last saved them.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    dirty: Mutex<BTreeSet<u64>>,
    wake: Notify,
}

impl Changes {
    pub(crate) fn mark(&self, id: u64) {
        if let Ok(mut dirty) = self.dirty.lock() {
            dirty.insert(id);
        }
        self.wake.notify_one();
    }
    fn take(&self) -> BTreeSet<u64> {
        self.dirty
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default()
    }
}

/// The store of one sandbox root.
#[derive(Debug)]
pub(crate) struct Store {
    dir: Dir,
    reserved: Mutex<u64>,
    /// Jobs with a request file, to keep the store within [`MAX_STORED_JOBS`].
    stored: AtomicUsize,
    pub(crate) changes: Arc<Changes>,
}

impl Store {
    /// Opens (creating) `ROOT/.jobsim/jobs`.
    pub(crate) fn open(root: &Path) -> std::io::Result<Self> {
        let root = Dir::open_ambient_dir(root, ambient_authority())?;
        root.create_dir_all(STORE_DIR)?;
        let dir = root.open_dir(STORE_DIR)?;
        let reserved = read_small(&dir, "next_id")
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(0);
        Ok(Self {
            dir,
            reserved: Mutex::new(reserved),
            stored: AtomicUsize::new(0),
            changes: Arc::new(Changes::default()),
        })
    }

    /// The first id the simulator may hand out: past every id it ever reserved, and (once
    /// [`Store::load`] has seen them) every id a file of the store names, readable or not.
    pub(crate) fn first_free_id(&self) -> u64 {
        self.reserved.lock().map_or(0, |r| *r)
    }

    /// Makes sure `id` is below the stored high-water mark before it is handed out.
    pub(crate) fn reserve(&self, id: u64) {
        let Ok(mut reserved) = self.reserved.lock() else {
            return;
        };
        if id < *reserved {
            return;
        }
        let mark = id.saturating_add(ID_BLOCK);
        if write_atomic(&self.dir, "next_id", mark.to_string().as_bytes()).is_ok() {
            *reserved = mark;
        }
    }

    /// Stores a job's submission (before it is answered).
    pub(crate) fn save_request(&self, job: &Job, route: Route, params: &Params) {
        let mut params = Value::Object(params.0.clone());
        strip_secrets(&mut params);
        let record = SavedRequest {
            format: FORMAT,
            id: job.id,
            api: route.to_string(),
            params,
            app_code: job.spec.caller.app_code.clone(),
            username: job.spec.caller.username.clone(),
            name: job.spec.name.clone(),
            stuck: job.stuck,
            create_ms: job.with(|s| s.create_ms),
        };
        if let Ok(bytes) = serde_json::to_vec(&record)
            && write_atomic(&self.dir, &request_file(job.id), &bytes).is_ok()
        {
            self.stored.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Stores what a job has reached.
    fn save_state(&self, job: &Job) {
        let s = job.snapshot();
        // A rolling job's earlier batches stand: their hosts are kept while it runs.
        let keep_hosts = s.status.is_finished() || s.rolling.is_some();
        let state = SavedState {
            format: FORMAT,
            status: s.status,
            step_status: s.step_status,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            start_requested: s.start_requested,
            hosts: if keep_hosts { s.hosts } else { Vec::new() },
            uploads: if keep_hosts { s.uploads } else { Vec::new() },
            rolling_batch: s.rolling.map(|r| r.batch),
            execute_count: s.execute_count,
        };
        if let Ok(bytes) = serde_json::to_vec(&state) {
            let _ = write_atomic(&self.dir, &state_file(job.id), &bytes);
        }
    }

    fn forget(&self, id: u64) {
        if self.dir.remove_file(request_file(id)).is_ok() {
            let _ = self
                .stored
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
        let _ = self.dir.remove_file(state_file(id));
    }

    /// Past [`MAX_STORED_JOBS`], the oldest finished jobs leave the store (the simulator still
    /// answers for them until it stops, as it keeps them in memory).
    fn trim(&self, oldest_first: &[Arc<Job>]) {
        let finished = oldest_first
            .iter()
            .filter(|job| job.with(|s| s.status.is_finished()));
        for job in finished {
            if self.stored.load(Ordering::Relaxed) <= MAX_STORED_JOBS {
                return;
            }
            self.forget(job.id);
        }
    }

    /// Every job stored, oldest first; past [`MAX_STORED_JOBS`] the oldest finished ones are
    /// deleted and left out.
    pub(crate) fn load(&self) -> Vec<SavedJob> {
        let names: Vec<String> = self
            .dir
            .entries()
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        // A write the process did not live to rename.
        for temp in names
            .iter()
            .filter(|n| n.starts_with('.') && n.ends_with(".tmp"))
        {
            let _ = self.dir.remove_file(temp);
        }
        let mut ids: Vec<u64> = names
            .iter()
            .filter_map(|name| name.strip_suffix(".req.json")?.parse::<u64>().ok())
            .collect();
        ids.sort_unstable();
        let named = names.iter().filter_map(|name| {
            let id = name
                .strip_suffix(".req.json")
                .or(name.strip_suffix(".state.json"))?;
            id.parse::<u64>().ok()
        });
        if let (Some(newest), Ok(mut reserved)) = (named.max(), self.reserved.lock()) {
            *reserved = (*reserved).max(newest.saturating_add(2));
        }
        let mut jobs: Vec<SavedJob> = ids.into_iter().filter_map(|id| self.read(id)).collect();
        let mut excess = jobs.len().saturating_sub(MAX_STORED_JOBS);
        jobs.retain(|job| {
            let finished = job.state.as_ref().is_some_and(|s| s.status.is_finished());
            if excess > 0 && finished {
                excess -= 1;
                self.forget(job.request.id);
                return false;
            }
            true
        });
        self.stored.store(jobs.len(), Ordering::Relaxed);
        jobs
    }

    fn read(&self, id: u64) -> Option<SavedJob> {
        let request: SavedRequest =
            serde_json::from_str(&read_small(&self.dir, &request_file(id))?).ok()?;
        if request.format != FORMAT || request.id != id {
            return None;
        }
        let state = read_small(&self.dir, &state_file(id))
            .and_then(|text| serde_json::from_str::<SavedState>(&text).ok())
            .filter(|s| s.format == FORMAT);
        Some(SavedJob { request, state })
    }
}

/// Saves the jobs whose status moved, until the engine is gone.
pub(crate) async fn write_changes(engine: Weak<Engine>, store: Arc<Store>) {
    loop {
        store.changes.wake.notified().await;
        let ids = store.changes.take();
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let jobs: Vec<(u64, Option<Arc<Job>>)> =
            ids.into_iter().map(|id| (id, engine.get(id))).collect();
        let over = store.stored.load(Ordering::Relaxed) > MAX_STORED_JOBS;
        let all = if over { engine.jobs() } else { Vec::new() };
        drop(engine);
        let store = store.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for (id, job) in jobs {
                match job {
                    Some(job) => store.save_state(&job),
                    // Archived (`keep_jobs`): gone from the store as from memory.
                    None => store.forget(id),
                }
            }
            store.trim(&all);
        })
        .await;
    }
}

/// Removes every credential field, at any depth.
fn strip_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !SECRET_KEYS.contains(&key.as_str()));
            map.values_mut().for_each(strip_secrets);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_secrets),
        _ => {}
    }
}

fn request_file(id: u64) -> String {
    format!("{id}.req.json")
}

fn state_file(id: u64) -> String {
    format!("{id}.state.json")
}

/// A file of the store, if it is there, a regular file, and not over [`MAX_RECORD_BYTES`].
fn read_small(dir: &Dir, name: &str) -> Option<String> {
    let file = dir.open(name).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_RECORD_BYTES {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_RECORD_BYTES).read_to_string(&mut text).ok()?;
    Some(text)
}

/// Writes `name` whole: to a temporary name first, then renamed over it.
fn write_atomic(dir: &Dir, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let temp = format!(".{name}.{:016x}.tmp", rand::random::<u64>());
    let written = (|| {
        let mut file = dir.open_with(&temp, OpenOptions::new().write(true).create_new(true))?;
        file.write_all(bytes)?;
        file.flush()
    })();
    match written.and_then(|()| dir.rename(&temp, dir, name)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = dir.remove_file(&temp);
            Err(e)
        }
    }
}

/// Knows again every job the store holds, and continues ids past them. Needs a tokio runtime
/// to run the jobs that had started; without one they are known but do not run.
pub(crate) fn restore(engine: &Arc<Engine>, store: &Store) {
    let saved = store.load();
    engine.continue_ids_from(store.first_free_id());
    let can_run = tokio::runtime::Handle::try_current().is_ok();
    for job in saved {
        restore_one(engine, job, can_run);
    }
}

fn restore_one(engine: &Arc<Engine>, saved: SavedJob, can_run: bool) {
    let request = &saved.request;
    let Some(route) = request.route() else {
        return;
    };
    let caller = request.caller();
    let ctx = SubmitCtx {
        world: &engine.world,
        caller: &caller,
        now: engine.clock.now(),
        running_jobs: 0,
        max_running_jobs: None,
    };
    let Ok(mut spec) = parse_submission(route, &request.params(), &ctx) else {
        return;
    };
    spec.name.clone_from(&request.name);
    let finished = saved.state.as_ref().is_some_and(|s| s.status.is_finished());
    let started = saved
        .state
        .as_ref()
        .is_some_and(|s| s.start_requested || s.start_ms.is_some() || finished);
    if started {
        // A job that had started starts again at once, on the START permit `adopt` gives it.
        spec.start_task = false;
    }
    let job = engine.new_job(request.id, spec, request.stuck, request.create_ms);
    let rolling = saved
        .state
        .as_ref()
        .filter(|_| started && !finished)
        .and_then(|state| rolling_progress(&job, state));
    if let Some(state) = saved.state {
        job.with(|s| {
            s.start_requested = started;
            s.start_ms = state.start_ms;
            s.execute_count = state.execute_count;
            if let (Some(progress), Some(batch)) = (&mut s.rolling, state.rolling_batch) {
                progress.batch = batch.clamp(1, progress.total.max(1));
            }
            if finished || rolling.is_some() {
                s.status = state.status;
                s.step_status = state.step_status;
                s.end_ms = state.end_ms;
                s.hosts = state.hosts;
                s.uploads = state.uploads;
            } else if started {
                s.set_status(RunStatus::Running);
            }
        });
    }
    if !finished && !can_run {
        return;
    }
    match rolling {
        Some(next) => engine.adopt_rolling(job, next),
        None => engine.adopt(job, started && !finished),
    }
}

/// Where a rolling job that had started and not ended goes on: waiting for a user as it
/// was, or running a batch (the one it ran, or the next when it had just passed one). `None`
/// for a job that does not roll, or whose stored state predates its hosts being kept (it
/// runs again from its start).
fn rolling_progress(job: &Job, state: &SavedState) -> Option<RollingResume> {
    let total = job.spec.rolling.as_ref()?.batches.len();
    let batch = state.rolling_batch?.clamp(1, total.max(1));
    if state.hosts.is_empty() {
        return None;
    }
    Some(match (state.status, state.step_status) {
        (RunStatus::WaitingUser, _) => RollingResume::Waiting,
        // The batch had passed: the next one was about to start.
        (_, RunStatus::RollingWaiting | RunStatus::IgnoreError) => RollingResume::Batch(batch + 1),
        _ => RollingResume::Batch(batch),
    })
}
