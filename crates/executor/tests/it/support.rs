//! A sandbox, a simulator on loopback, a plan, and a run that collects its events.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use plan_bkjob::{Client, ClientConfig, Credentials, Endpoint, RetryPolicy, UserAuth};
use plan_executor::{
    BkJobApi, Event, Interrupt, JobApi, Options, PollPolicy, RunReport, Settings, StartError,
};
use plan_graph::{JobRequest, PlanGraph};
use plan_jobsim::{JobSim, RunningSim};
use plan_parser::Plan;

pub(crate) struct World {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) sim: RunningSim,
}

/// Hosts of the standard sandbox: a source, two relays, two web hosts.
pub(crate) const HOSTS: &[&str] = &["10.0.0.1", "10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2"];

impl World {
    pub(crate) async fn new(jobsim_toml: &str) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("sandbox");
        for ip in HOSTS {
            std::fs::create_dir_all(root.join("hosts/0").join(ip)).expect("mkdir");
        }
        std::fs::write(root.join("jobsim.toml"), jobsim_toml).expect("jobsim.toml");
        let sim = JobSim::start(&root, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("jobsim");
        World { dir, sim }
    }

    pub(crate) fn host_path(&self, ip: &str, path: &str) -> PathBuf {
        self.dir
            .path()
            .join("sandbox/hosts/0")
            .join(ip)
            .join(path.trim_start_matches('/'))
    }

    pub(crate) fn write(&self, ip: &str, path: &str, bytes: &[u8]) {
        let p = self.host_path(ip, path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }

    pub(crate) fn read(&self, ip: &str, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.host_path(ip, path)).ok()
    }

    pub(crate) fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub(crate) fn api(&self) -> BkJobApi {
        self.api_at(&self.sim.base_url())
    }

    /// A client for `base` (e.g. the gateway root `<sim>/api/bk-job/prod`).
    pub(crate) fn api_at(&self, base: &str) -> BkJobApi {
        let client = Client::new(
            Endpoint::parse(base, false).expect("endpoint"),
            Credentials::new("app", "secret", UserAuth::Username("admin".into())),
            ClientConfig {
                connect_timeout: Duration::from_secs(2),
                request_timeout: Duration::from_secs(10),
                retry: RetryPolicy {
                    max_attempts: 5,
                    initial_delay: Duration::from_millis(10),
                    max_delay: Duration::from_millis(50),
                    max_total: Duration::from_secs(10),
                },
            },
        )
        .expect("client");
        BkJobApi::new(client)
    }

    /// Calls of one API the simulator answered.
    pub(crate) fn calls(&self, api: &str) -> Vec<plan_jobsim::RecordedRequest> {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| r.api == api)
            .collect()
    }

    /// Successful submissions per push (by task name `<plan>/<push>`).
    pub(crate) fn submissions_of(&self, task: &str) -> usize {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| {
                (r.api == "fast_push_file" || r.api == "fast_transfer_file")
                    && r.job_instance_id.is_some()
                    && task_base(&r.body["task_name"]) == task
            })
            .count()
    }
}

/// A body as sent, with the plan's task name instead of the run's (`plan show`'s body).
pub(crate) fn untagged(body: &serde_json::Value) -> serde_json::Value {
    let mut body = body.clone();
    body["task_name"] = serde_json::json!(task_base(&body["task_name"]));
    body
}

/// A task name as the plan gives it: what the run sent, without its run tag (`#<8 hex>`).
pub(crate) fn task_base(name: &serde_json::Value) -> &str {
    let name = name.as_str().unwrap_or_default();
    plan_bkjob::task_name::split_run_tag(name).map_or(name, |(base, _)| base)
}

pub(crate) fn plan(text: &str) -> (Arc<Plan>, Arc<PlanGraph>) {
    let parsed = plan_parser::parse_str("plan.toml", text, &plan_parser::ParseOptions::default())
        .unwrap_or_else(|e| panic!("plan: {e:?}"));
    let graph = plan_graph::build(&parsed.plan).unwrap_or_else(|e| panic!("graph: {e:?}"));
    (Arc::new(parsed.plan), Arc::new(graph))
}

pub(crate) fn fast_options() -> Options {
    Options {
        poll: PollPolicy {
            first: Duration::from_millis(50),
            max: Duration::from_millis(200),
            deadline_margin: Duration::from_secs(360),
            after_terminate: Duration::from_secs(10),
            start_grace: Duration::from_secs(60),
        },
        ..Options::default()
    }
}

pub(crate) fn settings(state_dir: &Path, options: Options, resume: bool) -> Settings {
    Settings {
        options,
        state_dir: state_dir.to_owned(),
        resume,
        plan_file: "plan.toml".into(),
        insecure_skip_tls_verify: false,
        force: false,
        refresh: None,
        confirmer: plan_executor::Confirmer::default(),
        plan_hash: None,
    }
}

pub(crate) struct Outcome {
    pub(crate) result: Result<RunReport, StartError>,
    pub(crate) events: Vec<Event>,
}

impl Outcome {
    pub(crate) fn report(&self) -> &RunReport {
        match &self.result {
            Ok(r) => r,
            Err(e) => panic!("run did not start: {e}"),
        }
    }

    pub(crate) fn push(&self, name: &str) -> &plan_executor::PushReport {
        self.report()
            .pushes
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no push {name}"))
    }
}

pub(crate) async fn run_with<A: JobApi>(
    api: A,
    (plan, graph): &(Arc<Plan>, Arc<PlanGraph>),
    settings: Settings,
    interrupt: Interrupt,
) -> Outcome {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let result = plan_executor::apply(
        api,
        Arc::clone(plan),
        Arc::clone(graph),
        settings,
        interrupt,
        tx,
    )
    .await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    Outcome { result, events }
}

pub(crate) async fn run(
    world: &World,
    plan: &(Arc<Plan>, Arc<PlanGraph>),
    options: Options,
    resume: bool,
) -> Outcome {
    run_with(
        world.api(),
        plan,
        settings(&world.state_dir(), options, resume),
        Interrupt::new(),
    )
    .await
}

/// Two stages: source -> relays, relays -> web (an inferred edge).
pub(crate) const TWO_STAGES: &str = r#"
[plan]
name = "rel"
bk_biz_id = 2
account = "root"

[hosts.src]
ips = ["10.0.0.1"]
[hosts.relay]
ips = ["10.0.1.1"]
[hosts.web]
ips = ["10.0.2.1", "10.0.2.2"]

[[push]]
name = "to-relays"
from = { hosts = "src", files = ["/data/release/app.tar.gz"] }
to = { hosts = "relay", path = "/data/stage/" }

[[push]]
name = "to-web"
from = { hosts = "relay", files = ["/data/stage/app.tar.gz"] }
to = { hosts = "web", path = "/opt/app/" }
"#;

/// A `JobApi` that asks JOB for a long timeout whatever the plan says, so the executor's own
/// deadline (from the plan's timeout) fires first: a JOB whose safety net fails.
pub(crate) struct LongJobTimeout(pub(crate) BkJobApi);

impl JobApi for LongJobTimeout {
    async fn submit(
        &self,
        request: &JobRequest,
        bk_biz_id: i64,
    ) -> Result<plan_executor::JobRef, plan_bkjob::ApiError> {
        let mut request = request.clone();
        match &mut request {
            JobRequest::V2(r) => r.timeout = Some(3600),
            JobRequest::V3(r) => r.timeout = Some(3600),
        }
        self.0.submit(&request, bk_biz_id).await
    }

    async fn status(
        &self,
        job: &plan_executor::JobRef,
    ) -> Result<plan_executor::Snapshot, plan_bkjob::ApiError> {
        self.0.status(job).await
    }

    async fn host_logs(
        &self,
        job: &plan_executor::JobRef,
        hosts: &[plan_executor::HostState],
    ) -> Result<std::collections::BTreeMap<String, plan_executor::HostLog>, plan_bkjob::ApiError>
    {
        self.0.host_logs(job, hosts).await
    }

    async fn terminate(&self, job: &plan_executor::JobRef) -> Result<(), plan_bkjob::ApiError> {
        self.0.terminate(job).await
    }

    fn two_phase(&self, request: &JobRequest) -> bool {
        self.0.two_phase(request)
    }

    async fn start(
        &self,
        job: &plan_executor::JobRef,
        again: bool,
    ) -> Result<plan_executor::StartOutcome, plan_bkjob::ApiError> {
        self.0.start(job, again).await
    }
}
