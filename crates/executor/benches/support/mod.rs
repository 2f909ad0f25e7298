//! Shared by the execution benchmarks: a jobsim sandbox on loopback in its own runtime, plans
//! generated from a list of pushes, a run through `plan_executor::apply` (the code path of
//! `plan apply`), and what JOB and the simulator's request log say about each job afterwards.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each benchmark uses part of the harness"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use plan_bkjob::{ApiError, Client, ClientConfig, Credentials, Endpoint, RetryPolicy, UserAuth};
use plan_executor::{
    BkJobApi, HostLog, HostState, Interrupt, JobApi, JobRef, Options, PollPolicy, RunReport,
    Schedule, Settings, Snapshot, StartOutcome,
};
use plan_graph::JobRequest;
use plan_jobsim::{Config, JobSim, RecordedRequest, RunningSim, SimOptions};

/// One MiB: jobsim's `MB/s` speed limits count binary megabytes.
pub const MIB: u64 = 1024 * 1024;

/// The APIs a client calls while following a job (status and logs).
pub const FOLLOW_APIS: [&str; 4] = [
    "get_job_instance_status",
    "get_job_instance_log",
    "get_job_instance_ip_log",
    "batch_get_job_instance_ip_log",
];

/// A push to generate: a file of `bytes` from the source host to `target`, at `speed_mb`
/// (none: unlimited), after `after`.
#[derive(Debug, Clone)]
pub struct PushSpec {
    pub name: String,
    pub bytes: u64,
    pub speed_mb: Option<u64>,
    pub target: String,
    pub after: Vec<String>,
}

impl PushSpec {
    /// A push whose transfer takes `secs` at 1 MB/s (`secs` MiB), to `target`.
    pub fn timed(name: &str, secs: f64, target: &str, after: &[&str]) -> PushSpec {
        PushSpec {
            name: name.to_owned(),
            bytes: (secs * MIB as f64) as u64,
            speed_mb: Some(1),
            target: target.to_owned(),
            after: after.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// The configured duration: size / speed limit (0 when unlimited).
    pub fn configured(&self) -> Duration {
        match self.speed_mb {
            Some(mb) => Duration::from_secs_f64(self.bytes as f64 / (mb * MIB) as f64),
            None => Duration::ZERO,
        }
    }
}

/// The source host of every push.
pub const SOURCE: &str = "10.0.0.1";

/// The i-th target host (10.1.x.y).
pub fn target(i: usize) -> String {
    format!("10.1.{}.{}", i / 250, i % 250 + 1)
}

/// A sandbox with jobsim running in its own runtime (threads named `jobsim`), so the
/// client's CPU can be told apart from the server's.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub runtime: tokio::runtime::Runtime,
    pub sim: Option<RunningSim>,
}

impl Sandbox {
    /// `start_delay_ms` and `host_wait_ms` are JOB's queueing before a transfer starts; the
    /// benchmarks set them to 0 so a job's duration is its transfer.
    pub fn new(targets: usize, start_delay_ms: u64, host_wait_ms: u64) -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("sandbox");
        std::fs::create_dir_all(root.join("hosts/0").join(SOURCE)).expect("mkdir");
        for i in 0..targets {
            std::fs::create_dir_all(root.join("hosts/0").join(target(i))).expect("mkdir");
        }
        let mut config = Config::default();
        config.sim.start_delay_ms = start_delay_ms;
        config.sim.host_wait_ms = host_wait_ms;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("jobsim")
            // Threads that exit take their CPU time with them: keep the blocking pool.
            .thread_keep_alive(Duration::from_secs(3600))
            .enable_all()
            .build()
            .expect("runtime");
        let sim = runtime
            .block_on(JobSim::start_with(
                &root,
                "127.0.0.1:0".parse().expect("addr"),
                SimOptions {
                    config: Some(config),
                    no_request_file: true,
                    ..SimOptions::default()
                },
            ))
            .expect("jobsim");
        Sandbox {
            dir,
            runtime,
            sim: Some(sim),
        }
    }

    pub fn sim(&self) -> &RunningSim {
        self.sim.as_ref().expect("running")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("sandbox")
    }

    pub fn write(&self, ip: &str, path: &str, bytes: u64) {
        let p = self
            .root()
            .join("hosts/0")
            .join(ip)
            .join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        let f = std::fs::File::create(&p).expect("create");
        f.set_len(bytes).expect("size");
    }

    pub fn client(&self) -> Client {
        Client::new(
            Endpoint::parse(&self.sim().base_url(), false).expect("endpoint"),
            Credentials::new("bench", "secret", UserAuth::Username("admin".into())),
            ClientConfig {
                connect_timeout: Duration::from_secs(5),
                request_timeout: Duration::from_secs(30),
                retry: RetryPolicy::default(),
            },
        )
        .expect("client")
    }

    pub fn stop(mut self) {
        if let Some(sim) = self.sim.take() {
            self.runtime.block_on(sim.shutdown());
        }
    }
}

/// The plan text for these pushes (every push reads `/data/<name>.bin` on the source host).
pub fn plan_text(name: &str, api: &str, pushes: &[PushSpec]) -> String {
    let mut t = format!(
        "[plan]\nname = \"{name}\"\nbk_biz_id = 2\naccount = \"root\"\napi = \"{api}\"\n\n[hosts.src]\nips = [\"{SOURCE}\"]\n\n"
    );
    for p in pushes {
        let _ = writeln!(t, "[[push]]\nname = \"{}\"", p.name);
        let _ = writeln!(
            t,
            "from = {{ hosts = \"src\", files = [\"/data/{}.bin\"] }}",
            p.name
        );
        let _ = writeln!(
            t,
            "to = {{ hosts = [\"{}\"], path = \"/recv/\" }}",
            p.target
        );
        if let Some(mb) = p.speed_mb {
            let _ = writeln!(t, "download_speed_limit = {mb}");
        }
        if !p.after.is_empty() {
            let list: Vec<String> = p.after.iter().map(|a| format!("\"{a}\"")).collect();
            let _ = writeln!(t, "after = [{}]", list.join(", "));
        }
        t.push('\n');
    }
    t
}

/// What one run produced.
pub struct Run {
    pub report: RunReport,
    /// Wall time of `apply`, as `plan apply` would take.
    pub makespan: Duration,
    /// The simulator's request log right after the run.
    pub requests: Vec<RecordedRequest>,
    /// Per push: JOB's job id, its running time (start -> end, JOB's clock), its end (epoch ms).
    pub jobs: BTreeMap<String, JobTimes>,
}

#[derive(Debug, Clone, Copy)]
pub struct JobTimes {
    pub job_instance_id: i64,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl JobTimes {
    pub fn duration(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.end_ms - self.start_ms).unwrap_or(0))
    }
}

/// The poll policy of `plan apply --poll-interval <first_ms>` (max 10 s, as the CLI sets).
pub fn poll(first_ms: u64) -> PollPolicy {
    let first = Duration::from_millis(first_ms);
    PollPolicy {
        first,
        max: Duration::from_secs(10).max(first),
        ..PollPolicy::default()
    }
}

pub fn options(schedule: Schedule, parallelism: usize, first_ms: u64) -> Options {
    Options {
        parallelism,
        schedule,
        poll: poll(first_ms),
        ..Options::default()
    }
}

/// Writes the source files, runs the plan with `apply` on `client_rt`, then asks JOB (v3
/// status) for each job's times. The request log is taken before those extra calls.
pub fn run(
    sandbox: &Sandbox,
    client_rt: &tokio::runtime::Runtime,
    plan_name: &str,
    api: &str,
    pushes: &[PushSpec],
    options: Options,
) -> Run {
    run_with(
        sandbox,
        client_rt,
        plan_name,
        api,
        pushes,
        options,
        BkJobApi::new,
    )
}

/// [`run`] with the `JobApi` built from the client by `make_api`.
pub fn run_with<A: JobApi>(
    sandbox: &Sandbox,
    client_rt: &tokio::runtime::Runtime,
    plan_name: &str,
    api: &str,
    pushes: &[PushSpec],
    options: Options,
    make_api: impl FnOnce(Client) -> A,
) -> Run {
    for p in pushes {
        sandbox.write(SOURCE, &format!("/data/{}.bin", p.name), p.bytes);
    }
    let text = plan_text(plan_name, api, pushes);
    let parsed = plan_parser::parse_str("plan.toml", &text, &plan_parser::ParseOptions::default())
        .unwrap_or_else(|e| panic!("plan: {e:?}"));
    let graph = plan_graph::build(&parsed.plan).unwrap_or_else(|e| panic!("graph: {e:?}"));
    let plan = Arc::new(parsed.plan);
    let graph = Arc::new(graph);
    // The journal fsyncs every line; `PLAN_BENCH_STATE=/dev/shm/x` puts it on a tmpfs to
    // tell the disk's share of the makespan apart.
    let state = std::env::var_os("PLAN_BENCH_STATE")
        .map_or_else(|| sandbox.dir.path().to_path_buf(), PathBuf::from)
        .join(format!("state-{plan_name}"));
    let before = sandbox.sim().requests().len();
    let client = sandbox.client();
    let (report, makespan) = client_rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // Drain events as `plan apply` does (it renders them).
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let started = std::time::Instant::now();
        let report = plan_executor::apply(
            make_api(client.clone()),
            plan,
            graph,
            Settings {
                options,
                state_dir: state.clone(),
                resume: false,
                plan_file: "plan.toml".into(),
                insecure_skip_tls_verify: false,
                force: false,
                refresh: None,
                confirmer: plan_executor::Confirmer::default(),
                plan_hash: None,
            },
            Interrupt::new(),
            tx,
        )
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
        let makespan = started.elapsed();
        let _ = drain.await;
        (report, makespan)
    });
    let requests: Vec<RecordedRequest> = sandbox.sim().requests().split_off(before);
    if !report.succeeded() {
        let failed: Vec<String> = report
            .failures()
            .map(|p| format!("{}: {:?}", p.name, p.error))
            .collect();
        panic!("run {plan_name} failed: {failed:?}");
    }
    let jobs = client_rt.block_on(job_times(&client, &report));
    Run {
        report,
        makespan,
        requests,
        jobs,
    }
}

async fn job_times(client: &Client, report: &RunReport) -> BTreeMap<String, JobTimes> {
    let mut out = BTreeMap::new();
    for p in &report.pushes {
        let Some(id) = p.job_instance_id else {
            continue;
        };
        let s = client
            .status_v3("biz", "2", id, false)
            .await
            .unwrap_or_else(|e| panic!("status of {id}: {e}"));
        let j = s.job_instance.expect("job_instance");
        out.insert(
            p.name.clone(),
            JobTimes {
                job_instance_id: id,
                start_ms: j.start_time.unwrap_or(0),
                end_ms: j.end_time.unwrap_or(0),
            },
        );
    }
    out
}

/// Calls made while following each job (status and logs), by job id.
pub fn follow_calls(requests: &[RecordedRequest]) -> BTreeMap<i64, Vec<&RecordedRequest>> {
    let mut out: BTreeMap<i64, Vec<&RecordedRequest>> = BTreeMap::new();
    for r in requests {
        if !FOLLOW_APIS.contains(&r.api.as_str()) {
            continue;
        }
        if let Some(id) = r.body["job_instance_id"]
            .as_i64()
            .or_else(|| r.body["job_instance_id"].as_str()?.parse().ok())
        {
            out.entry(id).or_default().push(r);
        }
    }
    out
}

/// Milliseconds since the epoch of a request-log time.
pub fn epoch_ms(time: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Per job: the time from JOB's end of the job to the status answer that showed it finished
/// (the last status call for that job).
pub fn detection_lateness(run: &Run) -> Vec<Duration> {
    let calls = follow_calls(&run.requests);
    run.jobs
        .values()
        .filter_map(|j| {
            let last = calls
                .get(&j.job_instance_id)?
                .iter()
                .rev()
                .find(|r| r.api == "get_job_instance_status")?;
            let seen = epoch_ms(&last.time)?;
            Some(Duration::from_millis(
                u64::try_from(seen - j.end_ms).unwrap_or(0),
            ))
        })
        .collect()
}

/// Lower bound on the makespan of the eager schedule with `parallelism` slots, given each
/// push's duration: for every time t at which pushes can become ready at the earliest (the
/// longest chain of durations before them), t plus the work that cannot start before t
/// (its total over the slots, and the rounds of the shortest duration it needs). The
/// critical path is the case of one push.
pub fn eager_bound(
    pushes: &[PushSpec],
    durations: &BTreeMap<String, Duration>,
    parallelism: usize,
) -> Duration {
    let d = |n: &str| durations.get(n).copied().unwrap_or_default();
    // Earliest start of each push (pushes are listed after their dependencies).
    let mut est: BTreeMap<&str, Duration> = BTreeMap::new();
    for p in pushes {
        let s = p
            .after
            .iter()
            .map(|a| est.get(a.as_str()).copied().unwrap_or_default() + d(a))
            .max()
            .unwrap_or_default();
        est.insert(&p.name, s);
    }
    let mut bound = Duration::ZERO;
    let mut thresholds: Vec<Duration> = est.values().copied().collect();
    thresholds.sort();
    thresholds.dedup();
    for t in thresholds {
        let later: Vec<Duration> = pushes
            .iter()
            .filter(|p| est[p.name.as_str()] >= t)
            .map(|p| d(&p.name))
            .collect();
        bound = bound.max(t + slots_bound(&later, parallelism));
        // The critical path: the longest chain through each push.
        for p in pushes.iter().filter(|p| est[p.name.as_str()] == t) {
            bound = bound.max(tail(pushes, &p.name, &d) + t);
        }
    }
    bound
}

/// The longest chain of durations starting with push `name`.
fn tail(pushes: &[PushSpec], name: &str, d: &impl Fn(&str) -> Duration) -> Duration {
    let next = pushes
        .iter()
        .filter(|p| p.after.iter().any(|a| a == name))
        .map(|p| tail(pushes, &p.name, d))
        .max()
        .unwrap_or_default();
    d(name) + next
}

/// Lower bound for independent jobs on `parallelism` slots.
fn slots_bound(durations: &[Duration], parallelism: usize) -> Duration {
    if durations.is_empty() {
        return Duration::ZERO;
    }
    let p = parallelism.max(1);
    let total: Duration = durations.iter().sum();
    let longest = durations.iter().max().copied().unwrap_or_default();
    let shortest = durations.iter().min().copied().unwrap_or_default();
    let rounds = u32::try_from(durations.len().div_ceil(p)).unwrap_or(u32::MAX);
    longest
        .max(total / u32::try_from(p).unwrap_or(u32::MAX))
        .max(shortest * rounds)
}

/// Lower bound of the stage schedule: stages run one after the other, each at least its
/// slots bound (its longest push when it fits in `parallelism`).
pub fn stage_bound(
    report: &RunReport,
    durations: &BTreeMap<String, Duration>,
    parallelism: usize,
) -> Duration {
    let mut stages: BTreeMap<usize, Vec<Duration>> = BTreeMap::new();
    for p in &report.pushes {
        stages
            .entry(p.stage)
            .or_default()
            .push(durations.get(&p.name).copied().unwrap_or_default());
    }
    stages.values().map(|d| slots_bound(d, parallelism)).sum()
}

/// CPU time (user + system) of this process's threads whose name starts with `prefix`
/// (Linux `/proc/self/task/*/stat`; `None` elsewhere). Tokio names its blocking-pool
/// threads after the runtime, so a runtime's file I/O counts with it.
pub fn thread_cpu(prefix: &str) -> Option<Duration> {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        let (open, close) = (stat.find('(')?, stat.rfind(')')?);
        let name = stat.get(open + 1..close)?;
        if !name.starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
        // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the name and state.
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        total += (utime + stime) / ticks;
    }
    Some(Duration::from_secs_f64(total))
}

/// A runtime for the client, threads named `client`.
pub fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("client")
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
        .expect("runtime")
}

pub fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

/// The median time between consecutive job submissions the simulator answered (the
/// executor sends a stage's first submissions one at a time, in order).
pub fn submission_gap(run: &Run) -> Option<Duration> {
    let mut times: Vec<i64> = run
        .requests
        .iter()
        .filter(|r| r.api == "fast_transfer_file" || r.api == "fast_push_file")
        .filter_map(|r| epoch_ms(&r.time))
        .collect();
    times.sort_unstable();
    let mut gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    let mid = gaps.get(gaps.len() / 2)?;
    Some(Duration::from_millis(u64::try_from(*mid).unwrap_or(0)))
}

/// [`BkJobApi`] that reads no log while following: the plain backoff, for comparison.
pub struct NoEstimate(pub BkJobApi);

impl JobApi for NoEstimate {
    async fn submit(&self, request: &JobRequest, bk_biz_id: i64) -> Result<JobRef, ApiError> {
        self.0.submit(request, bk_biz_id).await
    }
    async fn status(&self, job: &JobRef) -> Result<Snapshot, ApiError> {
        self.0.status(job).await
    }
    async fn host_logs(
        &self,
        job: &JobRef,
        hosts: &[HostState],
    ) -> Result<BTreeMap<String, HostLog>, ApiError> {
        self.0.host_logs(job, hosts).await
    }
    async fn terminate(&self, job: &JobRef) -> Result<(), ApiError> {
        self.0.terminate(job).await
    }
    fn two_phase(&self, request: &JobRequest) -> bool {
        self.0.two_phase(request)
    }
    async fn start(&self, job: &JobRef, again: bool) -> Result<StartOutcome, ApiError> {
        self.0.start(job, again).await
    }
}
