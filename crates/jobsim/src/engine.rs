//! The execution engine: JOB's status model (§6) driven on tokio's clock, one task per
//! job and one per target host, so jobs never wait for each other. Locks guard only
//! in-memory state and are never held across an `.await`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::front::JobReply;
use crate::hostfs::{HostFs, detail, relative};
use crate::paths::{resolve_target_macros, standardized_dir};
use crate::submit::JobSpec;
use crate::transfer::{Item, Throttle, copy_dir, copy_file, expand, human_size, human_speed};
use crate::world::{Agent, HostRef, World};

// Job/step statuses (RunStatusEnum).
pub(crate) const JOB_BLANK: i32 = 1;
pub(crate) const JOB_RUNNING: i32 = 2;
const JOB_SUCCESS: i32 = 3;
const JOB_FAIL: i32 = 4;
const JOB_WAITING_USER: i32 = 7;
const JOB_STOPPING: i32 = 10;
const JOB_STOP_SUCCESS: i32 = 11;

/// Whether a job/step status is final.
pub(crate) fn is_finished(status: i32) -> bool {
    plan_bkjob::RunStatus::from_code(status).is_finished()
}

// Host statuses (ExecuteObjectTaskStatusEnum) and the GSE codes that go with them.
const HOST_WAITING: i32 = 5;
const HOST_RUNNING: i32 = 7;
const HOST_SUCCESS: i32 = 9;
const HOST_FAILED: i32 = 11;
const HOST_AGENT_NOT_INSTALLED: i32 = 18;
const HOST_LOG_ERROR: i32 = 15;
const HOST_GSE_TIMEOUT: i32 = 303;
const HOST_AGENT_ERROR: i32 = 310;
const HOST_USER_ERROR: i32 = 311;
const HOST_FILE_ERROR: i32 = 320;
const HOST_FILE_TASK_ERROR: i32 = 329;
const HOST_TERMINATED: i32 = 403;

const GSE_RUNNING: i64 = 115;
const GSE_FILE_NOT_FOUND: i64 = 104;
const GSE_AGENT_ABNORMAL: i64 = 117;
const GSE_TIMEOUT: i64 = 120;
const GSE_USER_NOT_EXIST: i64 = 122;
const GSE_TERMINATED: i64 = 126;
/// The GSE code reported when strict mode meets a missing target directory (the real
/// code is unconfirmed; we report 710 with host status 329).
const GSE_TARGET_DIR_MISSING: i64 = 710;

// File distribution statuses (FileDistStatusEnum).
const FILE_WAITING: i32 = 1;
const FILE_UPLOADING: i32 = 2;
const FILE_DOWNLOADING: i32 = 3;
const FILE_FINISHED: i32 = 4;
const FILE_FAILED: i32 = 5;

fn file_status_desc(s: i32) -> &'static str {
    match s {
        FILE_WAITING => "waiting",
        FILE_UPLOADING => "uploading",
        FILE_DOWNLOADING => "downloading",
        FILE_FINISHED => "finished",
        _ => "failed",
    }
}

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
    pub(crate) fn fmt(&self) -> String {
        self.now().format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

/// One per-file log entry (mode 0 upload on a source, mode 1 download on a target).
#[derive(Debug, Clone)]
pub(crate) struct FileLog {
    pub(crate) mode: u8,
    pub(crate) src: HostRef,
    pub(crate) src_path: String,
    pub(crate) dest: Option<HostRef>,
    pub(crate) dest_path: Option<String>,
    pub(crate) status: i32,
    pub(crate) content: String,
    pub(crate) size: Option<String>,
    pub(crate) speed: Option<String>,
    pub(crate) process: Option<String>,
}

/// One target host's task.
#[derive(Debug, Clone)]
pub(crate) struct HostTask {
    pub(crate) host: HostRef,
    pub(crate) status: i32,
    pub(crate) error_code: i64,
    pub(crate) start_ms: Option<i64>,
    pub(crate) end_ms: Option<i64>,
    pub(crate) files: Vec<FileLog>,
}

/// Mutable state of a job.
#[derive(Debug, Clone)]
pub(crate) struct JobState {
    pub(crate) status: i32,
    pub(crate) step_status: i32,
    pub(crate) create_ms: i64,
    pub(crate) start_ms: Option<i64>,
    pub(crate) end_ms: Option<i64>,
    pub(crate) hosts: Vec<HostTask>,
    pub(crate) uploads: Vec<FileLog>,
    start_requested: bool,
}

/// A job instance.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) step_id: u64,
    pub(crate) spec: JobSpec,
    pub(crate) state: Mutex<JobState>,
    stuck: bool,
    start: Notify,
    stop: Notify,
}

impl Job {
    pub(crate) fn snapshot(&self) -> JobState {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
    fn with<R>(&self, f: impl FnOnce(&mut JobState) -> R) -> R {
        match self.state.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }
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
    timings: Timings,
    jobs: Mutex<BTreeMap<u64, Arc<Job>>>,
    next_id: AtomicU64,
    running: AtomicUsize,
    http: reqwest::Client,
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
            next_id: AtomicU64::new(10_000),
            running: AtomicUsize::new(0),
            http,
        }
    }

    pub(crate) fn running_jobs(&self) -> usize {
        self.running.load(Ordering::Relaxed)
    }

    pub(crate) fn get(&self, id: u64) -> Option<Arc<Job>> {
        self.jobs.lock().ok()?.get(&id).cloned()
    }

    /// Persists a validated job (status 1) and schedules it.
    pub(crate) fn submit(self: &Arc<Self>, spec: JobSpec, stuck: bool) -> Arc<Job> {
        let id = self.next_id.fetch_add(2, Ordering::Relaxed);
        let job = Arc::new(Job {
            id,
            step_id: id + 1,
            spec,
            state: Mutex::new(JobState {
                status: JOB_BLANK,
                step_status: JOB_BLANK,
                create_ms: self.clock.now_ms(),
                start_ms: None,
                end_ms: None,
                hosts: Vec::new(),
                uploads: Vec::new(),
                start_requested: false,
            }),
            stuck,
            start: Notify::new(),
            stop: Notify::new(),
        });
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(id, job.clone());
            self.archive_old_jobs(&mut jobs);
        }
        self.running.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(run_job(self.clone(), job.clone()));
        job
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
            .filter(|(_, job)| job.with(|s| is_finished(s.status)))
            .map(|(id, _)| *id)
            .take(excess)
            .collect();
        for id in archived {
            jobs.remove(&id);
        }
    }

    /// `operate_job_instance` code 1.
    pub(crate) fn terminate(&self, job: &Job) -> Result<(), JobReply> {
        let ok = job.with(|s| {
            if s.status == JOB_RUNNING || s.status == JOB_WAITING_USER {
                s.status = JOB_STOPPING;
                true
            } else {
                false
            }
        });
        if ok {
            job.stop.notify_one();
            Ok(())
        } else {
            Err(JobReply::err(
                plan_bkjob::code::UNSUPPORTED_OPERATION,
                "Unsupported operation",
            ))
        }
    }

    /// `operate_job_instance` code 2.
    pub(crate) fn start(&self, job: &Job) -> Result<(), JobReply> {
        // A JOB that ignores `start_task` started the job itself: a START is a repeat.
        let ok = !self.timings.ignore_start_task
            && job.with(|s| {
                if s.status == JOB_BLANK && !s.start_requested {
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
                plan_bkjob::code::UNSUPPORTED_OPERATION_REPEAT_START_JOB,
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
            && job.with(|s| s.status == JOB_BLANK && !s.start_requested);
        if pending { Ok(()) } else { self.start(job) }
    }
}

/// What a source host delivers, expanded once per job at START.
#[derive(Debug)]
struct SourcePlan {
    host: HostRef,
    /// `Err((host status, gse code, detail))` when the whole source host fails (agent,
    /// account); otherwise one expansion per file entry, in request order.
    items: Result<Vec<EntryPlan>, (i32, i64, String)>,
    entries: Vec<String>,
}

/// One `file_list` entry on one source host. GSE reports every file of a task on its own,
/// so a missing entry fails only its own file: the other entries are still delivered and
/// their logs carry their own details (the target host still ends as 320).
#[derive(Debug)]
struct EntryPlan {
    entry: String,
    items: Result<Vec<Item>, (i32, i64, String)>,
}

fn log_line(
    clock: &Clock,
    name: &str,
    size: Option<u64>,
    status: i32,
    speed: Option<u64>,
    pct: Option<u8>,
    detail: &str,
) -> String {
    let label = if name.ends_with('/') || name.ends_with('\\') {
        "Directory"
    } else {
        "FileName"
    };
    let mut raw = format!("{label}: {name}");
    if let Some(sz) = size {
        raw.push_str(&format!(" FileSize: {}", human_size(sz)));
    }
    raw.push_str(&format!(
        " Status: {status} StatusDesc: {}",
        file_status_desc(status)
    ));
    if let Some(kb) = speed {
        raw.push_str(&format!(" Speed: {}", human_speed(kb)));
    }
    if let Some(p) = pct {
        raw.push_str(&format!(" Progress: {p}%"));
    }
    if !detail.is_empty() {
        raw.push_str(&format!(" Detail: {detail}"));
    }
    format!("[{}] {raw}\n", clock.fmt())
}

async fn run_job(engine: Arc<Engine>, job: Arc<Job>) {
    if job.spec.start_task || engine.timings.ignore_start_task {
        tokio::time::sleep(engine.timings.start_delay).await;
    } else {
        job.start.notified().await;
    }
    let clock = engine.clock.clone();
    let world = engine.world.clone();
    let now = clock.now_ms();
    let targets = job.spec.targets.clone();
    job.with(|s| {
        s.status = JOB_RUNNING;
        s.step_status = JOB_RUNNING;
        s.start_ms = Some(now);
        s.hosts = targets
            .iter()
            .map(|h| {
                let not_installed = world.agent(h) == Agent::NotInstalled;
                HostTask {
                    host: h.clone(),
                    status: if not_installed {
                        HOST_AGENT_NOT_INSTALLED
                    } else {
                        HOST_WAITING
                    },
                    error_code: if not_installed { -1 } else { GSE_RUNNING },
                    start_ms: Some(now),
                    end_ms: not_installed.then_some(now),
                    files: Vec::new(),
                }
            })
            .collect();
    });
    // A configured maximum can be absurdly large; such a deadline simply never comes.
    let deadline = Instant::now()
        .checked_add(Duration::from_secs(job.spec.timeout_s))
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400));

    // Expand sources on their hosts (blocking directory reads off the async threads).
    let plans = {
        let world = world.clone();
        let job2 = job.clone();
        tokio::task::spawn_blocking(move || plan_sources(&world, &job2))
            .await
            .unwrap_or_default()
    };
    let plans = Arc::new(plans);
    job.with(|s| {
        for p in plans.iter() {
            let entries: Vec<(String, Option<u64>, i32, String)> = match &p.items {
                Ok(plans) => plans
                    .iter()
                    .flat_map(|ep| match &ep.items {
                        Ok(items) => items
                            .iter()
                            .map(|i| (i.display.clone(), Some(i.size), FILE_WAITING, String::new()))
                            .collect::<Vec<_>>(),
                        Err((_, _, detail)) => {
                            vec![(ep.entry.clone(), None, FILE_FAILED, detail.clone())]
                        }
                    })
                    .collect(),
                Err((_, _, detail)) => p
                    .entries
                    .iter()
                    .map(|e| (e.clone(), None, FILE_FAILED, detail.clone()))
                    .collect(),
            };
            for (path, size, status, content) in entries {
                let line = log_line(&clock, &path, size, status, None, None, &content);
                s.uploads.push(FileLog {
                    mode: 0,
                    src: p.host.clone(),
                    src_path: path,
                    dest: None,
                    dest_path: None,
                    status,
                    content: line,
                    size: size.map(human_size),
                    speed: Some("--".into()),
                    process: Some("--".into()),
                });
            }
        }
    });

    // START writes every target's download entries up front (§6.6 step 2): WAITING with
    // "--" figures, or FAILED on a target whose agent is not installed. A host GSE never
    // reports on (stuck, silent) keeps them, so its log still lists what it was to get.
    let start_now = clock.now();
    let initial: Vec<(HostRef, String, String)> = plans
        .iter()
        .flat_map(|p| {
            let target_dir = standardized_dir(&resolve_target_macros(
                &job.spec.target_path,
                p.host.cloud,
                &p.host.ip,
                start_now,
            ));
            let by_name = |e: &str| {
                (
                    p.host.clone(),
                    e.to_string(),
                    entry_dest(&target_dir, e, job.spec.target_name.as_deref()),
                )
            };
            match &p.items {
                Ok(entries) => entries
                    .iter()
                    .flat_map(|ep| match &ep.items {
                        Ok(items) => items
                            .iter()
                            .map(|i| {
                                let dest = if i.is_dir {
                                    format!("{target_dir}{}/", i.dest_name)
                                } else {
                                    format!("{target_dir}{}", i.dest_name)
                                };
                                (p.host.clone(), i.display.clone(), dest)
                            })
                            .collect::<Vec<_>>(),
                        Err(_) => vec![by_name(&ep.entry)],
                    })
                    .collect::<Vec<_>>(),
                Err(_) => p.entries.iter().map(|e| by_name(e)).collect(),
            }
        })
        .collect();
    job.with(|s| {
        for h in &mut s.hosts {
            let not_installed = h.status == HOST_AGENT_NOT_INSTALLED;
            for (src, src_path, dest_path) in &initial {
                let (status, content) = if not_installed {
                    (
                        FILE_FAILED,
                        log_line(
                            &clock,
                            dest_path,
                            None,
                            FILE_FAILED,
                            None,
                            None,
                            "Agent is not installed",
                        ),
                    )
                } else {
                    (FILE_WAITING, String::new())
                };
                h.files.push(FileLog {
                    mode: 1,
                    src: src.clone(),
                    src_path: src_path.clone(),
                    dest: Some(h.host.clone()),
                    dest_path: Some(dest_path.clone()),
                    status,
                    content,
                    size: Some("--".into()),
                    speed: Some("--".into()),
                    process: Some("--".into()),
                });
            }
        }
    });

    let stopped = tokio::select! {
        () = tokio::time::sleep(engine.timings.host_wait) => false,
        () = job.stop.notified() => true,
    };
    let mut set = JoinSet::new();
    let mut outcome = Outcome::Done;
    if stopped {
        outcome = Outcome::Stopped;
    } else {
        for idx in 0..targets.len() {
            set.spawn(run_host(engine.clone(), job.clone(), plans.clone(), idx));
        }
        loop {
            tokio::select! {
                next = set.join_next() => if next.is_none() { break },
                () = tokio::time::sleep_until(deadline) => { outcome = Outcome::TimedOut; break }
                () = job.stop.notified() => { outcome = Outcome::Stopped; break }
            }
        }
    }
    if outcome == Outcome::TimedOut {
        // GSE's own timeout: hosts it still reports on end as 303. Silent hosts (GSE never
        // reports) wait for JOB's safety net, 5 minutes after the timeout, and become 15.
        let silent: Vec<bool> = targets.iter().map(|h| world.host_silent(h)).collect();
        let now = clock.now_ms();
        let waiting_for_silent = job.with(|s| {
            let mut left = false;
            for (h, quiet) in s.hosts.iter_mut().zip(&silent) {
                if h.status == HOST_WAITING || h.status == HOST_RUNNING {
                    if *quiet {
                        left = true;
                    } else {
                        h.status = HOST_GSE_TIMEOUT;
                        h.error_code = GSE_TIMEOUT;
                        h.end_ms = Some(now);
                    }
                }
            }
            left
        });
        if waiting_for_silent {
            let net = deadline + Duration::from_secs(300);
            let stopped = tokio::select! {
                () = tokio::time::sleep_until(net) => false,
                () = job.stop.notified() => true,
            };
            if stopped {
                outcome = Outcome::Stopped;
            } else {
                let now = clock.now_ms();
                job.with(|s| {
                    for h in &mut s.hosts {
                        if h.status == HOST_WAITING || h.status == HOST_RUNNING {
                            h.status = HOST_LOG_ERROR;
                            h.error_code = -1;
                            h.end_ms = Some(now);
                        }
                    }
                });
            }
        }
        if outcome == Outcome::TimedOut {
            set.abort_all();
        }
    }
    if outcome == Outcome::Stopped {
        tokio::time::sleep(engine.timings.stop_delay).await;
        set.abort_all();
        let now = clock.now_ms();
        job.with(|s| {
            for h in &mut s.hosts {
                if h.status == HOST_WAITING || h.status == HOST_RUNNING {
                    h.status = HOST_TERMINATED;
                    h.error_code = GSE_TERMINATED;
                    h.end_ms = Some(now);
                }
            }
        });
    }
    // GSE ends the files of a host it timed out or terminated: entries still open fail
    // with a closing line, so a finished job's log shows no file as still downloading.
    job.with(|s| {
        for h in &mut s.hosts {
            let detail = match h.status {
                HOST_GSE_TIMEOUT => "File transmission timeout",
                HOST_TERMINATED => "Force terminated",
                _ => continue,
            };
            for f in h
                .files
                .iter_mut()
                .filter(|f| matches!(f.status, FILE_WAITING | FILE_UPLOADING | FILE_DOWNLOADING))
            {
                f.status = FILE_FAILED;
                let path = f.dest_path.clone().unwrap_or_default();
                f.content.push_str(&log_line(
                    &clock,
                    &path,
                    None,
                    FILE_FAILED,
                    None,
                    None,
                    detail,
                ));
            }
        }
    });
    let end = clock.now_ms();
    let final_status = job.with(|s| {
        let all_ok = s.hosts.iter().all(|h| h.status == HOST_SUCCESS);
        let status = match outcome {
            Outcome::Stopped => JOB_STOP_SUCCESS,
            _ if all_ok => JOB_SUCCESS,
            _ => JOB_FAIL,
        };
        // An upload succeeded when some target received that file; a failure elsewhere in
        // the job (another entry missing, another host down) does not fail it.
        let delivered: Vec<(HostRef, String)> = s
            .hosts
            .iter()
            .flat_map(|h| h.files.iter())
            .filter(|f| f.status == FILE_FINISHED)
            .map(|f| (f.src.clone(), f.src_path.clone()))
            .collect();
        for u in &mut s.uploads {
            if u.status == FILE_WAITING || u.status == FILE_UPLOADING {
                let uploads_ok = status == JOB_SUCCESS
                    || delivered
                        .iter()
                        .any(|(h, p)| *h == u.src && *p == u.src_path);
                u.status = if uploads_ok { FILE_FINISHED } else { FILE_FAILED };
                u.process = Some(if uploads_ok { "100%".into() } else { "--".into() });
                let size = u.size.clone().unwrap_or_default();
                u.content.push_str(&format!(
                    "[{}] FileName: {} FileSize: {size} Status: {} StatusDesc: {} Progress: {} Detail: {}\n",
                    clock.fmt(),
                    u.src_path,
                    u.status,
                    file_status_desc(u.status),
                    u.process.as_deref().unwrap_or("--"),
                    if uploads_ok { "success" } else { "upload ended" }
                ));
            }
        }
        s.status = status;
        s.step_status = status;
        s.end_ms = Some(end);
        status
    });
    engine.running.fetch_sub(1, Ordering::Relaxed);
    if let Some(url) = job.spec.callback.clone() {
        let body = serde_json::json!({
            "job_instance_id": job.id,
            "status": final_status,
            "step_instances": [{"step_instance_id": job.step_id, "status": final_status}],
        })
        .to_string();
        let http = engine.http.clone();
        let form_first = engine.timings.form_callback;
        tokio::spawn(async move { send_callback(http, url, body, form_first).await });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    TimedOut,
    Stopped,
}

fn plan_sources(world: &World, job: &Job) -> Vec<SourcePlan> {
    let mut out = Vec::new();
    for src in &job.spec.sources {
        for host in &src.hosts {
            let items = match world.agent(host) {
                Agent::Down => Err((
                    HOST_AGENT_ERROR,
                    GSE_AGENT_ABNORMAL,
                    "Agent is abnormal".to_string(),
                )),
                Agent::NotInstalled => Err((HOST_FAILED, -1, "Agent is not installed".to_string())),
                Agent::Alive if world.account_missing_on(host, &src.account.alias) => Err((
                    HOST_USER_ERROR,
                    GSE_USER_NOT_EXIST,
                    format!(
                        "User {} does not exist on the source host",
                        src.account.alias
                    ),
                )),
                Agent::Alive => {
                    let host_fs = HostFs::open(&world.host_root(host.cloud, &host.ip))
                        .map_err(|e| format!("Cannot open the source host: {}", detail(&e)));
                    let rename = job.spec.target_name.as_deref();
                    Ok(src
                        .files
                        .iter()
                        .map(|f| EntryPlan {
                            entry: f.clone(),
                            items: host_fs
                                .clone()
                                .and_then(|fs| expand(&fs, f, rename))
                                .map_err(|detail| (HOST_FILE_ERROR, GSE_FILE_NOT_FOUND, detail)),
                        })
                        .collect())
                }
            };
            out.push(SourcePlan {
                host: host.clone(),
                items,
                entries: src.files.clone(),
            });
        }
    }
    out
}

async fn run_host(engine: Arc<Engine>, job: Arc<Job>, plans: Arc<Vec<SourcePlan>>, idx: usize) {
    let clock = engine.clock.clone();
    let world = engine.world.clone();
    let Some(host) = job.spec.targets.get(idx).cloned() else {
        return;
    };
    let set = |status: i32, code: i64| {
        let now = clock.now_ms();
        job.with(|s| {
            if let Some(h) = s.hosts.get_mut(idx) {
                h.status = status;
                h.error_code = code;
                if status != HOST_RUNNING {
                    h.end_ms = Some(now);
                }
            }
        });
    };
    if job
        .snapshot()
        .hosts
        .get(idx)
        .is_none_or(|h| h.status != HOST_WAITING)
    {
        return;
    }
    set(HOST_RUNNING, GSE_RUNNING);
    if job.stuck || world.host_stuck(&host) || world.host_silent(&host) {
        // A stuck GSE task: nothing is ever reported for this host.
        std::future::pending::<()>().await;
    }
    let fail_all = |status: i32, code: i64, detail: &str| {
        job.with(|s| {
            if let Some(h) = s.hosts.get_mut(idx) {
                for f in h.files.iter_mut().filter(|f| f.status == FILE_WAITING) {
                    f.status = FILE_FAILED;
                    let dest = f.dest_path.clone().unwrap_or_default();
                    f.content.push_str(&log_line(
                        &clock,
                        &dest,
                        None,
                        FILE_FAILED,
                        None,
                        None,
                        detail,
                    ));
                }
            }
        });
        set(status, code);
    };
    if world.take_flaky(&host) {
        return fail_all(HOST_AGENT_ERROR, GSE_AGENT_ABNORMAL, "Agent is abnormal");
    }
    match world.agent(&host) {
        Agent::Down => return fail_all(HOST_AGENT_ERROR, GSE_AGENT_ABNORMAL, "Agent is abnormal"),
        Agent::NotInstalled => {
            return fail_all(HOST_AGENT_NOT_INSTALLED, -1, "Agent is not installed");
        }
        Agent::Alive => {}
    }
    if world.account_missing_on(&host, &job.spec.target_account.alias) {
        let detail = format!(
            "User {} does not exist on the target host",
            job.spec.target_account.alias
        );
        return fail_all(HOST_USER_ERROR, GSE_USER_NOT_EXIST, &detail);
    }
    let speed = [
        job.spec.upload_limit,
        job.spec.download_limit,
        engine.timings.speed_mb,
    ]
    .into_iter()
    .flatten()
    .min();
    let mut throttle = Throttle::new(speed);
    let target_fs = match HostFs::open(&world.host_root(host.cloud, &host.ip)) {
        Ok(fs) => fs,
        Err(e) => {
            let detail = format!("Cannot open the target host: {}", detail(&e));
            return fail_all(HOST_FILE_TASK_ERROR, -1, &detail);
        }
    };
    let mut failure: Option<(i32, i64)> = None;
    let now = clock.now();
    for plan in plans.iter() {
        let target_dir = standardized_dir(&resolve_target_macros(
            &job.spec.target_path,
            plan.host.cloud,
            &plan.host.ip,
            now,
        ));
        let failed_entry = |e: &str, detail: &str| {
            let dest = entry_dest(&target_dir, e, job.spec.target_name.as_deref());
            push_log(
                &job,
                idx,
                &plan.host,
                e,
                &dest,
                None,
                FILE_FAILED,
                &log_line(&clock, &dest, None, FILE_FAILED, None, None, detail),
            );
        };
        let entries = match &plan.items {
            Ok(entries) => entries,
            Err((status, code, detail)) => {
                failure.get_or_insert((*status, *code));
                for e in &plan.entries {
                    failed_entry(e, detail);
                }
                continue;
            }
        };
        let mut items = Vec::new();
        for ep in entries {
            match &ep.items {
                Ok(found) => items.extend(found.iter().cloned()),
                Err((status, code, detail)) => {
                    failure.get_or_insert((*status, *code));
                    failed_entry(&ep.entry, detail);
                }
            }
        }
        let target_rel = relative(&target_dir);
        for item in items {
            let dest_display = if item.is_dir {
                format!("{target_dir}{}/", item.dest_name)
            } else {
                format!("{target_dir}{}", item.dest_name)
            };
            let log_idx = push_log(
                &job,
                idx,
                &plan.host,
                &item.display,
                &dest_display,
                Some(human_size(item.size)),
                FILE_DOWNLOADING,
                &log_line(
                    &clock,
                    &dest_display,
                    Some(item.size),
                    FILE_DOWNLOADING,
                    None,
                    Some(0),
                    "",
                ),
            );
            let result = deliver(
                &job,
                &item,
                TargetDir {
                    host: &target_fs,
                    rel: &target_rel,
                },
                &mut throttle,
                idx,
                log_idx,
                &clock,
            )
            .await;
            let kb = throttle.kb_per_sec();
            let (status, detail) = match &result {
                Ok(()) => (FILE_FINISHED, "success".to_string()),
                Err((_, _, d)) => (FILE_FAILED, d.clone()),
            };
            let line = log_line(
                &clock,
                &dest_display,
                Some(item.size),
                status,
                Some(kb),
                Some(if status == FILE_FINISHED { 100 } else { 0 }),
                &detail,
            );
            job.with(|s| {
                if let Some(f) = s.hosts.get_mut(idx).and_then(|h| h.files.get_mut(log_idx)) {
                    f.status = status;
                    f.content.push_str(&line);
                    f.speed = Some(human_speed(kb));
                    f.process = Some(if status == FILE_FINISHED {
                        "100%".into()
                    } else {
                        "--".into()
                    });
                }
            });
            if let Err((st, code, _)) = result {
                failure.get_or_insert((st, code));
            }
        }
    }
    match failure {
        None => set(HOST_SUCCESS, 0),
        Some((st, code)) => set(st, code),
    }
}

/// Where a source entry lands when it could not be expanded: `<target>/<name>` for a
/// file (or `file_target_name`), `<target>/<dir>/` for a directory, and the pattern itself
/// (`<target>/REGEX:<re>`, `<target>/log*.log`) for a pattern, as JOB shows it before GSE
/// expands anything.
fn entry_dest(target_dir: &str, entry: &str, rename: Option<&str>) -> String {
    let spec = crate::paths::parse_source(entry);
    match &spec.kind {
        crate::paths::SourceKind::Regex(re) => format!("{target_dir}REGEX:{re}"),
        crate::paths::SourceKind::Dir => format!("{target_dir}{}/", spec.name),
        crate::paths::SourceKind::File => {
            format!("{target_dir}{}", rename.unwrap_or(&spec.name))
        }
        crate::paths::SourceKind::Wildcard(_) => format!("{target_dir}{}", spec.name),
    }
}

#[allow(clippy::too_many_arguments)]
fn push_log(
    job: &Job,
    idx: usize,
    src: &HostRef,
    src_path: &str,
    dest_path: &str,
    size: Option<String>,
    status: i32,
    line: &str,
) -> usize {
    job.with(|s| {
        let Some(h) = s.hosts.get_mut(idx) else {
            return 0;
        };
        let dest = h.host.clone();
        // The entry START wrote for this file, if it is still waiting.
        if let Some(i) = h.files.iter().position(|f| {
            f.mode == 1 && f.status == FILE_WAITING && f.src == *src && f.src_path == src_path
        }) {
            if let Some(f) = h.files.get_mut(i) {
                f.dest_path = Some(dest_path.to_string());
                f.status = status;
                f.content.push_str(line);
                f.size = size.or_else(|| Some("--".into()));
                f.process = Some("0%".into());
            }
            return i;
        }
        h.files.push(FileLog {
            mode: 1,
            src: src.clone(),
            src_path: src_path.to_string(),
            dest: Some(dest),
            dest_path: Some(dest_path.to_string()),
            status,
            content: line.to_string(),
            size,
            speed: Some("--".into()),
            process: Some("0%".into()),
        });
        h.files.len() - 1
    })
}

/// A target directory: its host, and its path there relative to the host root.
#[derive(Clone, Copy)]
struct TargetDir<'a> {
    host: &'a HostFs,
    rel: &'a std::path::Path,
}

async fn deliver(
    job: &Job,
    item: &Item,
    target: TargetDir<'_>,
    throttle: &mut Throttle,
    idx: usize,
    log_idx: usize,
    clock: &Clock,
) -> Result<(), (i32, i64, String)> {
    let host = target.host.dir();
    let cannot = |e: &std::io::Error| {
        (
            HOST_FILE_TASK_ERROR,
            -1,
            format!("Cannot create target directory: {}", detail(e)),
        )
    };
    match host.metadata(target.rel) {
        Ok(m) if m.is_dir() => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !job.spec.strict => {
            host.create_dir_all(target.rel).map_err(|e| cannot(&e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Err(cannot(&e)),
        _ if job.spec.strict => {
            return Err((
                HOST_FILE_TASK_ERROR,
                GSE_TARGET_DIR_MISSING,
                "Target directory does not exist".into(),
            ));
        }
        // Not a directory: creating it fails and says why.
        _ => host.create_dir_all(target.rel).map_err(|e| cannot(&e))?,
    }
    let dest = target.rel.join(&item.dest_name);
    let src = item.host.dir();
    let io = if item.is_dir {
        copy_dir(src, &item.rel, host, &dest, throttle).await
    } else {
        let size = item.size;
        copy_file(src, &item.rel, host, &dest, throttle, |pct, kb| {
            job.with(|s| {
                if let Some(f) = s.hosts.get_mut(idx).and_then(|h| h.files.get_mut(log_idx)) {
                    let path = f.dest_path.clone().unwrap_or_default();
                    f.content.push_str(&log_line(
                        clock,
                        &path,
                        Some(size),
                        FILE_DOWNLOADING,
                        Some(kb),
                        Some(pct),
                        "",
                    ));
                    f.process = Some(format!("{pct}%"));
                    f.speed = Some(human_speed(kb));
                }
            });
        })
        .await
    };
    io.map_err(|e| {
        (
            HOST_FILE_TASK_ERROR,
            -1,
            format!("Transfer failed: {}", detail(&e)),
        )
    })
}

async fn send_callback(http: reqwest::Client, url: String, body: String, form_first: bool) {
    let post = |ct: &'static str| {
        http.post(url.as_str())
            .header(reqwest::header::CONTENT_TYPE, ct)
            .body(body.clone())
            .send()
    };
    if form_first {
        // <= 3.10: form content type carrying the JSON text; one retry on an exception.
        if post("application/x-www-form-urlencoded").await.is_err() {
            let _ = post("application/x-www-form-urlencoded").await;
        }
        return;
    }
    match post("application/json").await {
        Ok(r) if r.status() == reqwest::StatusCode::OK => {}
        Ok(_) => {
            let _ = post("application/x-www-form-urlencoded").await;
        }
        Err(e) => tracing::debug!(%e, "callback failed; not retried"),
    }
}
