//! Runs visible in JOB: other runs of the plan refuse or stop a run, a run is rebuilt from
//! JOB when its journal is gone, and a job JOB no longer knows is diagnosed, not looped on.

use std::sync::atomic::{AtomicBool, Ordering};

use plan_bkjob::ApiError;
use plan_executor::{
    BkJobApi, Event, Hint, Interrupt, JobApi, JobRef, PushStatus, Record, RunHistory, Snapshot,
    StartError,
};
use plan_graph::JobRequest;

use crate::support::*;

fn v3(text: &str) -> String {
    text.replacen("account = \"root\"", "account = \"root\"\napi = \"v3\"", 1)
}

/// Two independent pushes in one stage (v3).
const SIBLINGS: &str = r#"
[plan]
name = "sib"
bk_biz_id = 2
account = "root"
api = "v3"

[[push]]
name = "a"
from = { hosts = "10.0.0.1", files = ["/data/a.txt"] }
to = { hosts = "10.0.1.1", path = "/data/a/" }

[[push]]
name = "b"
from = { hosts = "10.0.0.1", files = ["/data/b.txt"] }
to = { hosts = "10.0.1.2", path = "/data/b/" }
"#;

/// Every line of the journal validates against the published journal schema.
fn assert_schema_valid(path: &str) {
    let schema = plan_executor::schema::journal_schema().to_value();
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    for line in std::fs::read_to_string(path).expect("journal").lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("json");
        assert!(validator.is_valid(&value), "{line}");
    }
}

fn records(path: &str) -> Vec<Record> {
    std::fs::read_to_string(path)
        .expect("journal")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Creates, as another run tagged `tag` would, an unstarted job of `push` (it stays
/// pending: not finished).
async fn foreign_job(world: &World, text: &str, push: &str, tag: &str) -> i64 {
    let (plan, _) = plan(text);
    let mut request = plan_graph::request_for(&plan, plan.push(push).expect("push"));
    let JobRequest::V3(body) = &mut request else {
        panic!("a v3 plan")
    };
    body.task_name = Some(format!("{}/{push}#{tag}", plan.name.value));
    world
        .api()
        .client()
        .submit_v3(body)
        .await
        .expect("foreign job")
        .job_instance_id
}

fn submitted_tags(world: &World) -> Vec<String> {
    world
        .calls("fast_transfer_file")
        .iter()
        .filter(|r| r.job_instance_id.is_some())
        .map(|r| {
            let name = r.body["task_name"].as_str().unwrap_or_default();
            plan_bkjob::task_name::split_run_tag(name)
                .map(|(_, tag)| tag.to_owned())
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn another_run_with_a_job_not_finished_refuses_the_run_unless_forced() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let text = v3(TWO_STAGES);
    let foreign = foreign_job(&world, &text, "to-web", "deadbeef").await;
    let plan = plan(&text);

    let refused = run(&world, &plan, fast_options(), false).await;
    match &refused.result {
        Err(StartError::OtherRunActive { runs, .. }) => {
            assert_eq!(runs.len(), 1);
            assert_eq!(runs[0].run_tag, "deadbeef");
            assert_eq!(runs[0].operator, "admin");
            assert_eq!(runs[0].jobs[0].job_instance_id, foreign);
            assert_eq!(runs[0].jobs[0].push, "to-web");
            assert!(runs[0].jobs[0].started_at.is_some());
            let message = refused.result.as_ref().err().map(ToString::to_string);
            let message = message.unwrap_or_default();
            assert!(
                message.contains("#deadbeef") && message.contains(&foreign.to_string()),
                "{message}"
            );
        }
        other => panic!("{:?}", other.as_ref().map(|r| &r.pushes)),
    }
    // Nothing of this run was submitted, and no journal was started.
    assert_eq!(world.calls("fast_transfer_file").len(), 1);
    assert!(!world.state_dir().join("runs").exists());

    let mut forced = settings(&world.state_dir(), fast_options(), false);
    forced.force = true;
    let out = run_with(world.api(), &plan, forced, Interrupt::new()).await;
    assert!(out.report().succeeded(), "{:#?}", out.report());
    assert!(out.events.iter().any(
        |e| matches!(e, Event::Warning { message, .. } if message.contains("#deadbeef") && message.contains("forced"))
    ));
    assert!(matches!(
        records(&out.report().journal).first(),
        Some(Record::RunStarted { force: true, .. })
    ));
    assert_schema_valid(&out.report().journal);
}

/// A `JobApi` that, once its first job is submitted, has another run create a job of the
/// plan's second stage in JOB: the run sees it only after starting.
struct AnotherRunStartsMeanwhile {
    inner: BkJobApi,
    /// The other run's connection to JOB.
    other: BkJobApi,
    /// The other run's tag; `None`: this run's own (another process took this run over).
    other_tag: Option<String>,
    plan_text: String,
    done: AtomicBool,
}

impl JobApi for AnotherRunStartsMeanwhile {
    async fn submit(&self, request: &JobRequest, bk_biz_id: i64) -> Result<JobRef, ApiError> {
        let job = self.inner.submit(request, bk_biz_id).await?;
        if !self.done.swap(true, Ordering::SeqCst) {
            let (plan, _) = plan(&self.plan_text);
            let mut other = plan_graph::request_for(&plan, plan.push("to-web").expect("push"));
            let own_tag = request
                .task_name()
                .and_then(plan_bkjob::task_name::split_run_tag)
                .map(|(_, tag)| tag.to_owned())
                .unwrap_or_default();
            let tag = self.other_tag.clone().unwrap_or(own_tag);
            if let JobRequest::V3(body) = &mut other {
                body.task_name = Some(format!("rel/to-web#{tag}"));
            }
            self.other.submit(&other, bk_biz_id).await?;
        }
        Ok(job)
    }

    async fn status(&self, job: &JobRef) -> Result<Snapshot, ApiError> {
        self.inner.status(job).await
    }

    async fn host_logs(
        &self,
        job: &JobRef,
        hosts: &[plan_executor::HostState],
    ) -> Result<std::collections::BTreeMap<String, plan_executor::HostLog>, ApiError> {
        self.inner.host_logs(job, hosts).await
    }

    async fn terminate(&self, job: &JobRef) -> Result<(), ApiError> {
        self.inner.terminate(job).await
    }

    fn two_phase(&self, request: &JobRequest) -> bool {
        self.inner.two_phase(request)
    }

    async fn start(
        &self,
        job: &JobRef,
        again: bool,
    ) -> Result<plan_executor::StartOutcome, ApiError> {
        self.inner.start(job, again).await
    }

    async fn list_jobs(
        &self,
        api: plan_executor::ApiVersion,
        bk_biz_id: i64,
        name: &str,
    ) -> Result<Option<Vec<plan_bkjob::ListedJob>>, ApiError> {
        self.inner.list_jobs(api, bk_biz_id, name).await
    }
}

#[tokio::test]
async fn a_run_that_sees_another_run_after_starting_submits_nothing_more() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let text = v3(TWO_STAGES);
    let plan = plan(&text);
    let api = AnotherRunStartsMeanwhile {
        inner: world.api(),
        other: world.api(),
        other_tag: Some("0badc0de".into()),
        plan_text: text.clone(),
        done: AtomicBool::new(false),
    };
    let out = run_with(
        api,
        &plan,
        settings(&world.state_dir(), fast_options(), false),
        Interrupt::new(),
    )
    .await;
    // Stage 1 ran and was followed to its end; stage 2 was not submitted.
    assert_eq!(out.push("to-relays").status, PushStatus::Succeeded);
    assert_eq!(out.push("to-web").status, PushStatus::NotStarted);
    assert!(!out.report().succeeded());
    assert!(out.events.iter().any(
        |e| matches!(e, Event::Warning { message, .. } if message.contains("#0badc0de") && message.contains("submits nothing more"))
    ));
    // Ours and the other run's: nothing more.
    assert_eq!(world.calls("fast_transfer_file").len(), 2);
}

#[tokio::test]
async fn resume_without_a_journal_rebuilds_the_run_from_job() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/a.txt", b"a");
    let plan = plan(SIBLINGS);
    let first = run(&world, &plan, fast_options(), false).await;
    assert_eq!(first.push("a").status, PushStatus::Succeeded);
    assert_eq!(first.push("b").status, PushStatus::Failed);
    let tag = plan_executor::run_tag(&first.report().run_id);

    // Another machine: no state dir at all.
    std::fs::remove_dir_all(world.state_dir()).expect("rm state");
    world.write("10.0.0.1", "/data/b.txt", b"b");
    let second = run(&world, &plan, fast_options(), true).await;
    let report = second.report();
    assert!(report.resumed);
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(second.push("a").status, PushStatus::AlreadySucceeded);
    assert_eq!(second.push("b").status, PushStatus::Succeeded);
    assert_eq!(world.submissions_of("sib/a"), 1);
    assert_eq!(world.submissions_of("sib/b"), 2);
    assert!(second.events.iter().any(
        |e| matches!(e, Event::Warning { message, .. } if message.contains(&format!("continuing run `#{tag}` as JOB shows it")))
    ));
    assert_eq!(
        world.read("10.0.1.2", "/data/b/b.txt").as_deref(),
        Some(&b"b"[..])
    );
    // The same run, continued: the same tag on every job, a fresh journal saying so.
    assert!(report.run_id.ends_with(&tag), "{} {tag}", report.run_id);
    assert!(submitted_tags(&world).iter().all(|t| t == &tag));
    let lines = records(&report.journal);
    assert!(matches!(
        lines.first(),
        Some(Record::RunStarted {
            rebuilt_from_job: true,
            ..
        })
    ));
    let rebuilt: Vec<&str> = lines
        .iter()
        .filter_map(|r| match r {
            Record::PushRebuilt { push, .. } => Some(push.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(rebuilt, ["a", "b"]);
    assert_schema_valid(&report.journal);

    // Complete now: nothing to resume, from JOB either.
    std::fs::remove_dir_all(world.state_dir()).expect("rm state");
    let third = run(&world, &plan, fast_options(), true).await;
    assert!(
        matches!(&third.result, Err(StartError::NothingToResume { last_run: Some(r), .. }) if r.contains(&tag)),
        "{:?}",
        third.result.as_ref().err()
    );
}

#[tokio::test]
async fn resume_without_a_journal_over_v2_says_job_cannot_list() {
    let world = World::new("").await;
    let plan = plan(TWO_STAGES);
    let out = run(&world, &plan, fast_options(), true).await;
    assert!(matches!(
        out.result,
        Err(StartError::NothingToResume {
            job_cannot_list: true,
            ..
        })
    ));
    assert!(world.calls("get_job_instance_list").is_empty());
}

#[tokio::test]
async fn a_job_job_no_longer_knows_is_diagnosed_and_the_next_resume_submits_it_again() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"lost");
    let plan = plan(TWO_STAGES);
    // A journal whose job of `to-relays` is in flight, a job this JOB never had (a
    // sandbox that lost its state, or a job JOB purged).
    let journal =
        plan_executor::Journal::create(&world.state_dir(), "rel", "20260101T000000.000Z-1a2b3c4d")
            .expect("journal");
    let hashes = plan
        .0
        .pushes
        .iter()
        .map(|p| {
            let body = serde_json::to_vec(&plan_graph::request_for(&plan.0, p)).expect("json");
            (p.name.value.clone(), plan_executor::sha256_hex(&body))
        })
        .collect();
    let job = JobRef {
        api: plan_executor::ApiVersion::V2,
        bk_biz_id: 2,
        job_instance_id: 987_654,
        step_instance_id: None,
        start_pending: false,
    };
    for record in started_then_submitted(hashes, job) {
        journal.write(&record).expect("write");
    }
    drop(journal);

    let resumed = run(&world, &plan, fast_options(), true).await;
    let relays = resumed.push("to-relays");
    assert_eq!(relays.status, PushStatus::Failed);
    assert_eq!(relays.hint, Some(Hint::ResumeResubmitsLostJob));
    assert!(
        relays
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no longer knows instance 987654")),
        "{:?}",
        relays.error
    );
    assert_schema_valid(&resumed.report().journal);
    let history = RunHistory::read(std::path::Path::new(&resumed.report().journal)).expect("read");
    assert!(history.in_flight().is_empty(), "no longer in flight");

    // No loop: the next resume submits the push again and finishes the run.
    let again = run(&world, &plan, fast_options(), true).await;
    assert!(again.report().succeeded(), "{:#?}", again.report());
    assert_eq!(world.submissions_of("rel/to-relays"), 1);
    assert_eq!(world.submissions_of("rel/to-web"), 1);
    assert_eq!(
        world.read("10.0.2.1", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"lost"[..])
    );
}

fn started_then_submitted(
    pushes: std::collections::BTreeMap<String, String>,
    job: JobRef,
) -> Vec<Record> {
    let at = "2026-01-01T00:00:00.000Z".to_owned();
    let lines = serde_json::json!([
        {"type": "run_started", "format_version": plan_executor::JOURNAL_FORMAT_VERSION,
         "run_id": "20260101T000000.000Z-1a2b3c4d", "plan": "rel", "plan_file": "plan.toml",
         "api": "v2", "user": "u", "host": "h", "pid": 1, "at": at, "pushes": pushes},
        {"type": "push_submitting", "push": "to-relays", "attempt": 1, "request_sha256": "x",
         "task_name": "rel/to-relays#1a2b3c4d", "targets": ["0:10.0.1.1"], "at": at},
        {"type": "push_submitted", "push": "to-relays", "attempt": 1, "job": job, "at": at},
    ]);
    serde_json::from_value(lines).expect("records")
}

#[tokio::test]
async fn a_run_taken_over_by_another_process_submits_nothing_more() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let text = v3(TWO_STAGES);
    let plan = plan(&text);
    // Another process (a `--resume` elsewhere) submits stage 2 under this run's own tag.
    let api = AnotherRunStartsMeanwhile {
        inner: world.api(),
        other: world.api(),
        other_tag: None,
        plan_text: text.clone(),
        done: AtomicBool::new(false),
    };
    let out = run_with(
        api,
        &plan,
        settings(&world.state_dir(), fast_options(), false),
        Interrupt::new(),
    )
    .await;
    assert_eq!(out.push("to-relays").status, PushStatus::Succeeded);
    assert_eq!(out.push("to-web").status, PushStatus::NotStarted);
    assert!(out.events.iter().any(
        |e| matches!(e, Event::Warning { message, .. } if message.contains("another process continues this run"))
    ));
    assert_eq!(world.calls("fast_transfer_file").len(), 2);
}

#[tokio::test]
async fn the_checks_cost_one_list_call_per_stage() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let out = run(&world, &plan(&v3(TWO_STAGES)), fast_options(), false).await;
    assert!(out.report().succeeded(), "{:#?}", out.report());
    // Before the run (stage 1), then before stage 2.
    assert_eq!(world.calls("get_job_instance_list").len(), 2);

    // Forced: the one before the run (to say what is forced), none per stage.
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let mut forced = settings(&world.state_dir(), fast_options(), false);
    forced.force = true;
    let out = run_with(
        world.api(),
        &plan(&v3(TWO_STAGES)),
        forced,
        Interrupt::new(),
    )
    .await;
    assert!(out.report().succeeded(), "{:#?}", out.report());
    assert_eq!(world.calls("get_job_instance_list").len(), 1);
}
