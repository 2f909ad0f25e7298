//! The coordinator with a scripted JOB (no network, paused clock): parallelism, stages vs
//! eager, longest path first, disabled pushes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use plan_bkjob::{ApiError, HostStatus, RunStatus};
use plan_executor::{
    ApiVersion, HostLog, HostState, Interrupt, JobApi, JobRef, Options, PushStatus, Schedule,
    Snapshot,
};
use plan_graph::JobRequest;

use crate::support::{Outcome, fast_options, plan, run_with, settings};

/// One run of the plan `text` against the scripted JOB, keeping its state under `state_dir`.
async fn run_fake(fake: &Arc<Fake>, text: &str, state_dir: &Path, options: Options) -> Outcome {
    run_with(
        FakeApi(Arc::clone(fake)),
        &plan(text),
        settings(state_dir, options, false),
        Interrupt::new(),
    )
    .await
}

/// A JOB whose jobs finish after a scripted number of polls.
#[derive(Default)]
struct Fake {
    state: Mutex<FakeState>,
    /// Polls until finished, by push name (default 1).
    polls: BTreeMap<String, u32>,
    /// Pushes whose job fails.
    failing: Vec<String>,
    /// How long JOB takes to answer a push's submission (ms); it is logged when answered.
    submit_delay_ms: BTreeMap<String, u64>,
}

#[derive(Default)]
struct FakeState {
    next: i64,
    jobs: BTreeMap<i64, (String, u32, bool)>,
    running: usize,
    max_running: usize,
    log: Vec<String>,
    /// When (paused clock) each submission was answered and each terminate asked.
    at: Vec<(String, tokio::time::Instant)>,
}

impl Fake {
    fn new(polls: &[(&str, u32)], failing: &[&str]) -> Arc<Fake> {
        Arc::new(Fake {
            polls: polls.iter().map(|(n, p)| ((*n).to_owned(), *p)).collect(),
            failing: failing.iter().map(|s| (*s).to_owned()).collect(),
            ..Fake::default()
        })
    }

    fn log(&self) -> Vec<String> {
        self.state.lock().expect("lock").log.clone()
    }

    fn max_running(&self) -> usize {
        self.state.lock().expect("lock").max_running
    }
}

fn push_name(request: &JobRequest) -> String {
    request
        .task_name()
        .map(|t| plan_bkjob::task_name::split_run_tag(t).map_or(t, |(base, _)| base))
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or_default()
        .to_owned()
}

/// The fake as a `JobApi` (a local type, so the trait can be implemented for it).
struct FakeApi(Arc<Fake>);

impl JobApi for FakeApi {
    async fn submit(&self, request: &JobRequest, bk_biz_id: i64) -> Result<JobRef, ApiError> {
        let name = push_name(request);
        if let Some(ms) = self.0.submit_delay_ms.get(&name) {
            tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
        }
        let mut s = self.0.state.lock().expect("lock");
        s.next += 1;
        let id = s.next;
        let polls = self.0.polls.get(&name).copied().unwrap_or(1);
        s.jobs.insert(id, (name.clone(), polls, false));
        s.running += 1;
        s.max_running = s.max_running.max(s.running);
        s.log.push(format!("submit {name}"));
        s.at.push((format!("submit {name}"), tokio::time::Instant::now()));
        Ok(JobRef {
            api: ApiVersion::V2,
            bk_biz_id,
            job_instance_id: id,
            step_instance_id: None,
            start_pending: false,
        })
    }

    async fn status(&self, job: &JobRef) -> Result<Snapshot, ApiError> {
        let mut s = self.0.state.lock().expect("lock");
        let Some((name, left, done)) = s.jobs.get_mut(&job.job_instance_id) else {
            return Err(ApiError::Api {
                api: "get_job_instance_status".into(),
                code: 1_244_006,
                message: "Task instance does not exist".into(),
                permission: None,
            });
        };
        *left = left.saturating_sub(1);
        let finished = *left == 0;
        let name = name.clone();
        let first_time = finished && !*done;
        if finished {
            *done = true;
        }
        if first_time {
            s.running -= 1;
            s.log.push(format!("finish {name}"));
        }
        let ok = !self.0.failing.contains(&name);
        let host = if !finished {
            HostStatus::Running
        } else if ok {
            HostStatus::Success
        } else {
            HostStatus::GseFileError
        };
        Ok(Snapshot {
            finished,
            status: match (finished, ok) {
                (false, _) => RunStatus::Running,
                (true, true) => RunStatus::Success,
                (true, false) => RunStatus::Fail,
            },
            step_instance_id: Some(job.job_instance_id + 1000),
            hosts: vec![HostState {
                bk_host_id: None,
                bk_cloud_id: 0,
                ip: "10.0.9.1".into(),
                status: host,
                error_code: None,
            }],
        })
    }

    async fn host_logs(
        &self,
        _job: &JobRef,
        _hosts: &[HostState],
    ) -> Result<BTreeMap<String, HostLog>, ApiError> {
        Ok(BTreeMap::new())
    }

    async fn terminate(&self, job: &JobRef) -> Result<(), ApiError> {
        let mut s = self.0.state.lock().expect("lock");
        let entry = format!("terminate {}", job.job_instance_id);
        s.at.push((entry, tokio::time::Instant::now()));
        Ok(())
    }
}

fn push(name: &str, after: &[&str], extra: &str) -> String {
    let after = if after.is_empty() {
        String::new()
    } else {
        format!(
            "after = [{}]\n",
            after
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "[[push]]\nname = \"{name}\"\nfrom = {{ hosts = \"10.0.0.1\", files = [\"/src/{name}.txt\"] }}\nto = {{ hosts = \"10.0.9.1\", path = \"/dst/{name}/\" }}\n{after}{extra}\n"
    )
}

fn plan_of(pushes: &[String]) -> String {
    format!(
        "[plan]\nname = \"sched\"\nbk_biz_id = 2\naccount = \"root\"\n\n{}",
        pushes.concat()
    )
}

fn index(log: &[String], entry: &str) -> usize {
    log.iter()
        .position(|l| l == entry)
        .unwrap_or_else(|| panic!("{entry} not in {log:?}"))
}

#[tokio::test(start_paused = true)]
async fn parallelism_bounds_the_jobs_in_flight() {
    let text = plan_of(
        &(1..=5)
            .map(|i| push(&format!("p{i}"), &[], ""))
            .collect::<Vec<_>>(),
    );
    let fake = Fake::new(
        &[("p1", 3), ("p2", 5), ("p3", 2), ("p4", 4), ("p5", 1)],
        &[],
    );
    let dir = tempfile::tempdir().expect("tmp");
    let options = Options {
        parallelism: 2,
        ..fast_options()
    };
    let out = run_fake(&fake, &text, dir.path(), options).await;
    assert!(out.report().succeeded(), "{:#?}", out.report());
    assert_eq!(fake.max_running(), 2);
    assert_eq!(
        fake.log()
            .iter()
            .filter(|l| l.starts_with("submit"))
            .count(),
        5
    );
}

#[tokio::test(start_paused = true)]
async fn stages_wait_for_the_whole_stage_and_eager_does_not() {
    // slow and fast are stage 1; after-fast (stage 2) depends only on fast.
    let text = plan_of(&[
        push("slow", &[], ""),
        push("fast", &[], ""),
        push("after-fast", &["fast"], ""),
    ]);
    let scripted = [("slow", 20), ("fast", 1), ("after-fast", 1)];
    let dir = tempfile::tempdir().expect("tmp");

    let fake = Fake::new(&scripted, &[]);
    let staged = run_fake(&fake, &text, &dir.path().join("a"), fast_options()).await;
    assert!(staged.report().succeeded());
    let log = fake.log();
    assert!(
        index(&log, "submit after-fast") > index(&log, "finish slow"),
        "{log:?}"
    );

    let fake = Fake::new(&scripted, &[]);
    let options = Options {
        schedule: Schedule::Eager,
        ..fast_options()
    };
    let eager = run_fake(&fake, &text, &dir.path().join("b"), options).await;
    assert!(eager.report().succeeded());
    let log = fake.log();
    assert!(
        index(&log, "submit after-fast") < index(&log, "finish slow"),
        "{log:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn eager_starts_the_longest_remaining_chain_first() {
    // `short` comes first in the file, but `head` starts a chain of three.
    let text = plan_of(&[
        push("short", &[], ""),
        push("head", &[], ""),
        push("middle", &["head"], ""),
        push("tail", &["middle"], ""),
    ]);
    let fake = Fake::new(&[], &[]);
    let dir = tempfile::tempdir().expect("tmp");
    let options = Options {
        schedule: Schedule::Eager,
        parallelism: 1,
        ..fast_options()
    };
    let out = run_fake(&fake, &text, dir.path(), options).await;
    assert!(out.report().succeeded());
    let submits: Vec<String> = fake
        .log()
        .into_iter()
        .filter(|l| l.starts_with("submit"))
        .collect();
    assert_eq!(submits[0], "submit head", "{submits:?}");
}

#[tokio::test(start_paused = true)]
async fn disabled_pushes_are_skipped_and_do_not_block_their_dependents() {
    let text = plan_of(&[
        push("first", &[], ""),
        push("off", &["first"], "enabled = false\n"),
        push("last", &["off"], ""),
    ]);
    let fake = Fake::new(&[], &[]);
    let dir = tempfile::tempdir().expect("tmp");
    let out = run_fake(&fake, &text, dir.path(), fast_options()).await;
    assert!(out.report().succeeded(), "{:#?}", out.report());
    assert_eq!(out.push("off").status, PushStatus::Disabled);
    assert_eq!(out.push("last").status, PushStatus::Succeeded);
    assert!(!fake.log().contains(&"submit off".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn a_failure_blocks_dependents_and_never_starts_the_rest() {
    let text = plan_of(&[
        push("bad", &[], ""),
        push("other", &[], ""),
        push("needs-bad", &["bad"], ""),
        push("needs-other", &["other"], ""),
    ]);
    let fake = Fake::new(&[("other", 5)], &["bad"]);
    let dir = tempfile::tempdir().expect("tmp");
    let out = run_fake(&fake, &text, dir.path(), fast_options()).await;
    assert_eq!(out.push("bad").status, PushStatus::Failed);
    assert_eq!(out.push("bad").failed_hosts[0].status.code(), 320);
    // `other` was already running: followed to its end.
    assert_eq!(out.push("other").status, PushStatus::Succeeded);
    assert_eq!(out.push("needs-bad").status, PushStatus::Blocked);
    assert_eq!(out.push("needs-other").status, PushStatus::NotStarted);
}

fn submissions(log: &[String]) -> Vec<&str> {
    log.iter()
        .filter_map(|l| l.strip_prefix("submit "))
        .collect()
}

fn submitting_events(events: &[plan_executor::Event]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            plan_executor::Event::PushSubmitting { push, .. } => Some(push.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_stage_is_submitted_in_file_order_even_when_all_start_at_once() {
    // Names out of alphabetical order, and JOB slower to answer the earlier ones: only
    // waiting for each answer keeps the calls in file order.
    let names = ["zeta", "alpha", "mid", "beta"];
    let text = plan_of(&names.iter().map(|n| push(n, &[], "")).collect::<Vec<_>>());
    let fake = Arc::new(Fake {
        submit_delay_ms: [("zeta", 300), ("alpha", 200), ("mid", 100)]
            .iter()
            .map(|(n, ms)| ((*n).to_owned(), *ms))
            .collect(),
        // Long enough that all four are in flight together when nothing limits them.
        polls: names.iter().map(|n| ((*n).to_owned(), 20)).collect(),
        ..Fake::default()
    });
    for parallelism in [8, 1] {
        fake.state.lock().expect("lock").log.clear();
        let dir = tempfile::tempdir().expect("tmp");
        let options = Options {
            parallelism,
            ..fast_options()
        };
        let out = run_fake(&fake, &text, dir.path(), options).await;
        assert!(out.report().succeeded(), "{:#?}", out.report());
        assert_eq!(submissions(&fake.log()), names, "parallelism {parallelism}");
        assert_eq!(
            submitting_events(&out.events),
            names,
            "parallelism {parallelism}"
        );
    }
    assert_eq!(
        fake.max_running(),
        4,
        "all four ran at once with parallelism 8"
    );
}

#[tokio::test(start_paused = true)]
async fn eager_submits_the_longest_remaining_path_first_then_file_order() {
    let text = plan_of(&[
        push("short", &[], ""),
        push("other", &[], ""),
        push("long1", &[], ""),
        push("long2", &["long1"], ""),
    ]);
    let fake = Arc::new(Fake {
        submit_delay_ms: [("long1", 200), ("short", 100)]
            .iter()
            .map(|(n, ms)| ((*n).to_owned(), *ms))
            .collect(),
        ..Fake::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let options = Options {
        schedule: Schedule::Eager,
        ..fast_options()
    };
    let out = run_fake(&fake, &text, dir.path(), options).await;
    assert!(out.report().succeeded(), "{:#?}", out.report());
    assert_eq!(
        submissions(&fake.log()),
        ["long1", "short", "other", "long2"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stuck_job_is_terminated_at_its_deadline_not_a_backoff_later() {
    // Timeout 60 s, margin 3 s: the deadline is 63 s after submission. The job never ends,
    // so the status is polled on the doubling backoff capped at 10 s (polls at 0.1, 0.3, ...
    // 52.7, 62.7, 72.7 s): unclipped, the terminate would go out at 72.7 s, 9.7 s late.
    let text = plan_of(&[push("stuck", &[], "timeout = 60\n")]);
    let fake = Fake::new(&[("stuck", u32::MAX)], &[]);
    let dir = tempfile::tempdir().expect("tmp");
    let mut options = fast_options();
    options.poll.first = std::time::Duration::from_millis(100);
    options.poll.max = std::time::Duration::from_secs(10);
    options.poll.deadline_margin = std::time::Duration::from_secs(3);
    options.poll.after_terminate = std::time::Duration::from_secs(5);
    let out = run_fake(&fake, &text, dir.path(), options).await;
    assert_eq!(out.push("stuck").status, PushStatus::TimedOut);
    let at = fake.state.lock().expect("lock").at.clone();
    let submitted = at
        .iter()
        .find(|(e, _)| e == "submit stuck")
        .map(|(_, t)| *t)
        .expect("submitted");
    let terminates: Vec<std::time::Duration> = at
        .iter()
        .filter(|(e, _)| e.starts_with("terminate "))
        .map(|(_, t)| t.duration_since(submitted))
        .collect();
    assert_eq!(terminates.len(), 1, "{at:?}");
    let late = terminates[0].saturating_sub(std::time::Duration::from_secs(63));
    assert!(
        terminates[0] >= std::time::Duration::from_secs(63)
            && late <= std::time::Duration::from_millis(20),
        "terminated {:?} after submission, deadline 63 s",
        terminates[0]
    );
}
