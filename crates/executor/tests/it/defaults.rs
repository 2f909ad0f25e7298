//! The documented defaults (docs/apply.md, "Polling, deadlines, retries of failed hosts"),
//! each asserted with `Options::default()` against a scripted JOB on a paused clock: the
//! polling backoff (1 s, then 2, 4, 8, 10 s), a job terminated at its timeout (JOB's 7200 s
//! when the plan sets none) plus 360 s, given up 120 s after a terminate JOB ignores, and a
//! job left in status 1 after its START started again 60 s later and given up 60 s after
//! that. Every other test shortens these; here nothing is overridden. (`plan apply` passes
//! the same values: crates/cli checks its defaults against `Options::default()`.)

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plan_bkjob::{ApiError, HostStatus, RunStatus};
use plan_executor::{
    ApiVersion, HostLog, HostState, Interrupt, JobApi, JobRef, Options, PushReport, PushStatus,
    Snapshot, StartOutcome,
};
use plan_graph::JobRequest;
use tokio::time::Instant;

use crate::support::{Outcome, plan, run_with, settings};

/// How the scripted job behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    /// Runs, and has succeeded at this status poll (1-based).
    SucceedsAtPoll(usize),
    /// Runs until JOB is asked to terminate it; it is then finished, terminated.
    RunsUntilTerminated,
    /// Runs forever: JOB accepts a terminate and nothing happens.
    IgnoresTerminate,
    /// Created unstarted (v3, two phases); START is accepted, and it stays in status 1.
    NeverLeavesStatus1,
}

/// A JOB with one job, recording when (since the submission was answered) each call came.
struct Scripted {
    job: Job,
    state: Mutex<Calls>,
}

#[derive(Default)]
struct Calls {
    submitted: Option<Instant>,
    terminate_asked: bool,
    polls: usize,
    /// `(call, time since the submission was answered)`, in order.
    log: Vec<(&'static str, Duration)>,
}

impl Scripted {
    fn new(job: Job) -> Arc<Scripted> {
        Arc::new(Scripted {
            job,
            state: Mutex::new(Calls::default()),
        })
    }

    fn record(&self, call: &'static str) -> usize {
        let mut s = self.state.lock().expect("lock");
        let since = s.submitted.map(|t| t.elapsed()).unwrap_or_default();
        s.log.push((call, since));
        if call == "status" {
            s.polls += 1;
        }
        s.polls
    }

    /// When each call of this kind came, in whole milliseconds since the submission.
    fn times_ms(&self, call: &str) -> Vec<u128> {
        let s = self.state.lock().expect("lock");
        s.log
            .iter()
            .filter(|(c, _)| *c == call)
            .map(|(_, at)| at.as_millis())
            .collect()
    }

    fn snapshot(&self, polls: usize) -> Snapshot {
        let terminate_asked = self.state.lock().expect("lock").terminate_asked;
        let (finished, status, host) = match self.job {
            Job::SucceedsAtPoll(n) if polls >= n => (true, RunStatus::Success, HostStatus::Success),
            Job::RunsUntilTerminated if terminate_asked => (
                true,
                RunStatus::StopSuccess,
                HostStatus::GseTaskTerminateSuccess,
            ),
            Job::NeverLeavesStatus1 => (false, RunStatus::Blank, HostStatus::Waiting),
            _ => (false, RunStatus::Running, HostStatus::Running),
        };
        Snapshot {
            finished,
            status,
            step_instance_id: Some(2),
            hosts: vec![HostState {
                bk_host_id: None,
                bk_cloud_id: 0,
                ip: "10.0.1.1".into(),
                status: host,
                error_code: None,
            }],
        }
    }
}

/// The scripted JOB as a `JobApi` (a local type, so the trait can be implemented for it).
struct ScriptedApi(Arc<Scripted>);

impl JobApi for ScriptedApi {
    async fn submit(&self, _request: &JobRequest, bk_biz_id: i64) -> Result<JobRef, ApiError> {
        self.0.state.lock().expect("lock").submitted = Some(Instant::now());
        self.0.record("submit");
        Ok(JobRef {
            api: if self.0.job == Job::NeverLeavesStatus1 {
                ApiVersion::V3
            } else {
                ApiVersion::V2
            },
            bk_biz_id,
            job_instance_id: 1,
            step_instance_id: None,
            start_pending: self.0.job == Job::NeverLeavesStatus1,
        })
    }

    async fn status(&self, _job: &JobRef) -> Result<Snapshot, ApiError> {
        let polls = self.0.record("status");
        Ok(self.0.snapshot(polls))
    }

    async fn host_logs(
        &self,
        _job: &JobRef,
        _hosts: &[HostState],
    ) -> Result<BTreeMap<String, HostLog>, ApiError> {
        Ok(BTreeMap::new())
    }

    async fn terminate(&self, _job: &JobRef) -> Result<(), ApiError> {
        self.0.record("terminate");
        self.0.state.lock().expect("lock").terminate_asked = true;
        Ok(())
    }

    fn two_phase(&self, _request: &JobRequest) -> bool {
        self.0.job == Job::NeverLeavesStatus1
    }

    async fn start(&self, _job: &JobRef, _again: bool) -> Result<StartOutcome, ApiError> {
        self.0.record("start");
        Ok(StartOutcome::Started)
    }
}

/// One push; `timeout` is the plan's line for it, if any.
fn one_push(timeout: &str) -> String {
    format!(
        "[plan]\nname = \"defaults\"\nbk_biz_id = 2\naccount = \"root\"\napi = \"v3\"\n\n\
         [[push]]\nname = \"only\"\nfrom = {{ hosts = \"10.0.0.1\", files = [\"/data/a.txt\"] }}\n\
         to = {{ hosts = \"10.0.1.1\", path = \"/data/a/\" }}\n{timeout}"
    )
}

/// A run with `Options::default()`: nothing shortened.
async fn run_defaults(job: &Arc<Scripted>, plan_text: &str, state_dir: &Path) -> Outcome {
    run_with(
        ScriptedApi(Arc::clone(job)),
        &plan(plan_text),
        settings(state_dir, Options::default(), false),
        Interrupt::new(),
    )
    .await
}

fn only(out: &Outcome) -> &PushReport {
    out.push("only")
}

#[tokio::test(start_paused = true)]
async fn polls_come_1_s_after_submission_then_every_2_4_8_and_10_s() {
    let job = Scripted::new(Job::SucceedsAtPoll(7));
    let dir = tempfile::tempdir().expect("tmp");
    let out = run_defaults(&job, &one_push(""), dir.path()).await;
    assert_eq!(
        only(&out).status,
        PushStatus::Succeeded,
        "{:#?}",
        out.report()
    );
    assert_eq!(
        job.times_ms("status"),
        [1_000, 3_000, 7_000, 15_000, 25_000, 35_000, 45_000]
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_is_terminated_360_s_past_its_timeout_or_jobs_7200_s() {
    for (timeout, deadline_ms) in [
        ("", (7_200 + 360) * 1_000),
        ("timeout = 60\n", (60 + 360) * 1_000),
    ] {
        let job = Scripted::new(Job::RunsUntilTerminated);
        let dir = tempfile::tempdir().expect("tmp");
        let out = run_defaults(&job, &one_push(timeout), dir.path()).await;
        assert_eq!(only(&out).status, PushStatus::TimedOut, "{timeout:?}");
        // Exactly at the deadline: the last wait is clipped to it.
        assert_eq!(job.times_ms("terminate"), [deadline_ms], "{timeout:?}");
        // Followed to its end: the poll right after the terminate sees it stopped.
        assert_eq!(job.times_ms("status").last(), Some(&deadline_ms));
    }
}

#[tokio::test(start_paused = true)]
async fn a_job_that_ignores_its_terminate_is_given_up_120_s_later() {
    let job = Scripted::new(Job::IgnoresTerminate);
    let dir = tempfile::tempdir().expect("tmp");
    let out = run_defaults(&job, &one_push("timeout = 60\n"), dir.path()).await;
    let report = only(&out);
    assert_eq!(report.status, PushStatus::TimedOut, "{report:#?}");
    let terminated = 420_000;
    assert_eq!(job.times_ms("terminate"), [terminated]);
    // After the terminate the backoff starts again at 1 s; the first poll more than 120 s
    // after it gives the job up: 1, 3, 7, 15, 25, ..., 115, 125 s.
    let after: Vec<u128> = job
        .times_ms("status")
        .into_iter()
        .filter_map(|t| t.checked_sub(terminated))
        .collect();
    let mut expected = vec![0, 1_000, 3_000, 7_000];
    expected.extend((15_000..=125_000).step_by(10_000));
    assert_eq!(after, expected);
}

#[tokio::test(start_paused = true)]
async fn a_job_left_in_status_1_gets_start_again_after_60_s_and_is_given_up_60_s_later() {
    let job = Scripted::new(Job::NeverLeavesStatus1);
    let dir = tempfile::tempdir().expect("tmp");
    let out = run_defaults(&job, &one_push(""), dir.path()).await;
    let report = only(&out);
    assert_eq!(report.status, PushStatus::Failed, "{report:#?}");
    let error = report.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("stayed in status 1 (not started) 60s after START was accepted, twice"),
        "{error}"
    );
    // START at once; again at the first poll 60 s or more later (polls at 1, 3, 7, 15, 25,
    // ..., 55, 65 s); given up at the first poll 60 s or more after that one.
    assert_eq!(job.times_ms("start"), [0, 65_000]);
    assert_eq!(job.times_ms("status").last(), Some(&130_000));
    assert!(job.times_ms("terminate").is_empty());
}
