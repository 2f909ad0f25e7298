//! Status polls decide nothing but what JOB says: a 5xx, a page that is not JOB's JSON, a
//! timeout are asked again until the push's deadline, and only JOB's own verdict (a finished
//! job, or an error code such as `1244006`) ends the following. A scripted JOB on a paused
//! clock for the timing, then the real client against `jobsim` (and an HTML page from a
//! mock server) for the classification.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plan_bkjob::{ApiError, HostStatus, RunStatus, TransportKind};
use plan_executor::{
    ApiVersion, BkJobApi, HostLog, HostState, Interrupt, JobApi, JobRef, PushStatus, Snapshot,
};
use plan_graph::JobRequest;
use tokio::time::Instant;

use crate::support::{Outcome, TWO_STAGES, World, fast_options, plan, run_with, settings};

/// One push, timeout 120 s; with a 3 s margin its deadline is 123 s after submission.
const ONE_PUSH: &str = r#"
[plan]
name = "polls"
bk_biz_id = 2
account = "root"

[[push]]
name = "only"
from = { hosts = "10.0.0.1", files = ["/data/a.txt"] }
to = { hosts = "10.0.1.1", path = "/data/a/" }
timeout = 120
"#;

/// What one status poll of the scripted JOB answers.
#[derive(Clone)]
enum Answer {
    /// The job, running or (after `finish_after`) finished with success.
    Job,
    Error(ApiError),
}

/// A JOB whose job succeeds at the first poll at or after `finish_after`, and whose status
/// polls answer `errors` (by elapsed time since submission) instead of the job.
struct Scripted {
    finish_after: Duration,
    /// Until this long after submission, every poll gets `error`.
    errors_until: Duration,
    error: ApiError,
    state: Mutex<ScriptedState>,
}

#[derive(Default)]
struct ScriptedState {
    submitted: Option<Instant>,
    polls: Vec<(Duration, &'static str)>,
    terminates: usize,
}

impl Scripted {
    fn new(finish_after: Duration, errors_until: Duration, error: ApiError) -> Arc<Scripted> {
        Arc::new(Scripted {
            finish_after,
            errors_until,
            error,
            state: Mutex::new(ScriptedState::default()),
        })
    }

    fn polls(&self) -> Vec<(Duration, &'static str)> {
        self.state.lock().expect("lock").polls.clone()
    }

    fn answer(&self, since: Duration) -> Answer {
        if since < self.errors_until {
            Answer::Error(self.error.clone())
        } else {
            Answer::Job
        }
    }
}

struct ScriptedApi(Arc<Scripted>);

impl JobApi for ScriptedApi {
    async fn submit(&self, _request: &JobRequest, bk_biz_id: i64) -> Result<JobRef, ApiError> {
        self.0.state.lock().expect("lock").submitted = Some(Instant::now());
        Ok(JobRef {
            api: ApiVersion::V2,
            bk_biz_id,
            job_instance_id: 7,
            step_instance_id: None,
            start_pending: false,
        })
    }

    async fn status(&self, _job: &JobRef) -> Result<Snapshot, ApiError> {
        let mut state = self.0.state.lock().expect("lock");
        let since = state.submitted.map(|t| t.elapsed()).unwrap_or_default();
        match self.0.answer(since) {
            Answer::Error(e) => {
                state.polls.push((since, "error"));
                Err(e)
            }
            Answer::Job => {
                let finished = since >= self.0.finish_after;
                state
                    .polls
                    .push((since, if finished { "finished" } else { "running" }));
                Ok(Snapshot {
                    finished,
                    status: if finished {
                        RunStatus::Success
                    } else {
                        RunStatus::Running
                    },
                    step_instance_id: Some(70),
                    hosts: vec![HostState {
                        bk_host_id: None,
                        bk_cloud_id: 0,
                        ip: "10.0.1.1".into(),
                        status: if finished {
                            HostStatus::Success
                        } else {
                            HostStatus::Waiting
                        },
                        error_code: None,
                    }],
                })
            }
        }
    }

    async fn host_logs(
        &self,
        _job: &JobRef,
        _hosts: &[HostState],
    ) -> Result<BTreeMap<String, HostLog>, ApiError> {
        Ok(BTreeMap::new())
    }

    async fn terminate(&self, _job: &JobRef) -> Result<(), ApiError> {
        self.0.state.lock().expect("lock").terminates += 1;
        Err(self.0.error.clone())
    }
}

fn http_500() -> ApiError {
    ApiError::Http {
        api: "get_job_instance_status".into(),
        status: 500,
        code: None,
        code_name: None,
        message: "Internal Server Error".into(),
        retry_after: None,
    }
}

fn html_page() -> ApiError {
    ApiError::Decode {
        api: "get_job_instance_status".into(),
        message: "expected value at line 1 column 1: <html><body>Sign in</body></html>".into(),
    }
}

async fn run_scripted(fake: &Arc<Scripted>, dir: &std::path::Path) -> Outcome {
    let mut options = fast_options();
    options.poll.first = Duration::from_secs(1);
    options.poll.max = Duration::from_secs(10);
    options.poll.deadline_margin = Duration::from_secs(3);
    options.poll.after_terminate = Duration::from_secs(5);
    run_with(
        ScriptedApi(Arc::clone(fake)),
        &plan(ONE_PUSH),
        settings(dir, options, false),
        Interrupt::new(),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn a_500_on_every_poll_until_just_before_the_deadline_does_not_fail_the_push() {
    let fake = Scripted::new(
        Duration::from_secs(30),
        Duration::from_secs(115),
        http_500(),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let out = run_scripted(&fake, dir.path()).await;
    let push = out.push("only");
    assert_eq!(push.status, PushStatus::Succeeded, "{push:#?}");
    let polls = fake.polls();
    let errors = polls.iter().filter(|(_, a)| *a == "error").count();
    assert!(errors >= 10, "{polls:?}");
    assert_eq!(polls.last().map(|p| p.1), Some("finished"), "{polls:?}");
    assert!(polls.last().is_some_and(|p| p.0 < Duration::from_secs(123)));
    assert_eq!(fake.state.lock().expect("lock").terminates, 0);
}

#[tokio::test(start_paused = true)]
async fn an_html_page_instead_of_the_status_is_asked_again() {
    let fake = Scripted::new(Duration::ZERO, Duration::from_millis(1500), html_page());
    let dir = tempfile::tempdir().expect("tmp");
    let out = run_scripted(&fake, dir.path()).await;
    assert_eq!(out.push("only").status, PushStatus::Succeeded);
    let answers: Vec<&str> = fake.polls().iter().map(|p| p.1).collect();
    assert_eq!(answers, ["error", "finished"]);
}

#[tokio::test(start_paused = true)]
async fn a_poll_that_never_answers_ends_timed_out_at_the_deadline_never_failed() {
    let timeout = ApiError::Transport {
        api: "get_job_instance_status".into(),
        url: "http://127.0.0.1:1/".into(),
        kind: TransportKind::Timeout,
        message: "operation timed out".into(),
    };
    let fake = Scripted::new(Duration::ZERO, Duration::MAX, timeout);
    let dir = tempfile::tempdir().expect("tmp");
    let out = run_scripted(&fake, dir.path()).await;
    let push = out.push("only");
    // JOB never said: the push is not `failed`; its job stays in flight for `--resume`.
    assert_eq!(push.status, PushStatus::TimedOut, "{push:#?}");
    assert!(
        push.error
            .as_deref()
            .is_some_and(|e| e.contains("timed out")),
        "{push:#?}"
    );
    let last = fake.polls().last().map(|p| p.0).expect("polled");
    assert!(
        last >= Duration::from_secs(123) && last <= Duration::from_secs(123 + 5 + 10),
        "last poll {last:?}"
    );
    let history = plan_executor::latest_run(dir.path(), "polls")
        .expect("read")
        .expect("run");
    assert_eq!(history.in_flight(), vec!["only"]);
}

#[tokio::test(start_paused = true)]
async fn job_not_found_is_a_verdict_and_ends_the_following_at_once() {
    let gone = ApiError::Api {
        api: "get_job_instance_status".into(),
        code: 1_244_006,
        message: "Task instance does not exist".into(),
        permission: None,
    };
    let fake = Scripted::new(Duration::ZERO, Duration::MAX, gone);
    let dir = tempfile::tempdir().expect("tmp");
    let out = run_scripted(&fake, dir.path()).await;
    let push = out.push("only");
    assert_eq!(push.status, PushStatus::Failed, "{push:#?}");
    assert_eq!(push.error_code, Some(1_244_006));
    assert_eq!(fake.polls().len(), 1);
}

#[tokio::test]
async fn jobsim_answering_500_past_the_clients_retries_still_ends_succeeded() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    // The client gives up on a query after 5 attempts (support's policy): 12 failures in a
    // row outlast two of its rounds, which used to end the push `failed`.
    world.sim.state().inject(plan_jobsim::FaultRule::next(
        "get_job_instance_status",
        plan_jobsim::FaultKind::Http500,
        12,
    ));
    let out = run_with(
        world.api(),
        &plan(TWO_STAGES),
        settings(&world.state_dir(), fast_options(), false),
        Interrupt::new(),
    )
    .await;
    assert!(out.report().succeeded(), "{:#?}", out.report());
    let faulted = world
        .calls("get_job_instance_status")
        .iter()
        .filter(|r| r.fault.is_some())
        .count();
    assert_eq!(faulted, 12);
    assert_eq!(world.submissions_of("rel/to-relays"), 1);
    assert_eq!(
        world.read("10.0.2.2", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"x"[..])
    );
}

/// Status polls go to `html` (a server answering a sign-in page) for the first `pages` calls,
/// then to JOB: the real client decodes the page.
struct HtmlFirst {
    job: BkJobApi,
    html: BkJobApi,
    pages: Mutex<u32>,
}

impl JobApi for HtmlFirst {
    async fn submit(&self, request: &JobRequest, bk_biz_id: i64) -> Result<JobRef, ApiError> {
        self.job.submit(request, bk_biz_id).await
    }

    async fn status(&self, job: &JobRef) -> Result<Snapshot, ApiError> {
        let page = {
            let mut pages = self.pages.lock().expect("lock");
            let page = *pages > 0;
            *pages = pages.saturating_sub(1);
            page
        };
        if page {
            self.html.status(job).await
        } else {
            self.job.status(job).await
        }
    }

    async fn host_logs(
        &self,
        job: &JobRef,
        hosts: &[HostState],
    ) -> Result<BTreeMap<String, HostLog>, ApiError> {
        self.job.host_logs(job, hosts).await
    }

    async fn terminate(&self, job: &JobRef) -> Result<(), ApiError> {
        self.job.terminate(job).await
    }
}

#[tokio::test]
async fn an_html_page_from_the_real_client_does_not_end_the_push() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let page = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/html")
                .set_body_string("<html><body><h1>Sign in</h1></body></html>"),
        )
        .mount(&page)
        .await;
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let api = HtmlFirst {
        job: world.api(),
        html: world.api_at(&page.uri()),
        pages: Mutex::new(3),
    };
    let out = run_with(
        api,
        &plan(TWO_STAGES),
        settings(&world.state_dir(), fast_options(), false),
        Interrupt::new(),
    )
    .await;
    assert!(out.report().succeeded(), "{:#?}", out.report());
    assert_eq!(page.received_requests().await.map(|r| r.len()), Some(3));
}
