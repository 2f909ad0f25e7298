//! What the journal records decides `--resume`, line by line: a successful attempt is done
//! even without its `push_finished`, a damaged journal refuses to be trusted, and an answer
//! naming a job id JOB never hands out is not a job.

use std::path::PathBuf;

use plan_bkjob::ApiError;
use plan_executor::{
    BkJobApi, HostLog, HostState, Interrupt, JobApi, JobRef, PushStatus, Snapshot, StartError,
};
use plan_graph::JobRequest;

use crate::support::*;

/// The run's journal (the only one under the state dir).
fn journal_of(world: &World) -> PathBuf {
    let dir = world.state_dir().join("runs/rel");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("runs dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.remove(0)
}

/// The journal cut just after the first line containing every needle, plus `tail` (a torn
/// piece of the next line, as a kill in the middle of a write leaves).
fn cut_after(path: &PathBuf, needles: &[&str], tail: usize) {
    let text = std::fs::read_to_string(path).expect("journal");
    let mut kept = String::new();
    let mut lines = text.split_inclusive('\n');
    for line in lines.by_ref() {
        kept.push_str(line);
        if needles.iter().all(|n| line.contains(n)) {
            break;
        }
    }
    let next = lines.next().unwrap_or_default();
    kept.push_str(&next[..tail.min(next.len().saturating_sub(1))]);
    std::fs::write(path, kept).expect("cut");
}

#[tokio::test]
async fn a_recorded_successful_attempt_is_done_though_its_push_finished_is_torn() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"once");
    let plan = plan(TWO_STAGES);
    let first = run(&world, &plan, fast_options(), false).await;
    assert!(first.report().succeeded());
    // Killed while writing to-relays' push_finished: its attempt's success is on disk.
    let journal = journal_of(&world);
    cut_after(&journal, &["push_attempt_finished", "to-relays"], 20);

    let resumed = run(&world, &plan, fast_options(), true).await;
    assert!(resumed.report().succeeded(), "{:#?}", resumed.report());
    assert_eq!(
        resumed.push("to-relays").status,
        PushStatus::AlreadySucceeded
    );
    // Submitted once in all: by the first run.
    assert_eq!(world.submissions_of("rel/to-relays"), 1);
    // to-web had not started when the first run was "killed": the resume runs it.
    assert_eq!(resumed.push("to-web").status, PushStatus::Succeeded);
}

#[tokio::test]
async fn a_damaged_line_in_the_middle_refuses_resume_and_a_new_run_naming_it() {
    let world = World::new("").await;
    // The source file is missing: the run fails, so it is unfinished.
    let plan = plan(TWO_STAGES);
    let first = run(&world, &plan, fast_options(), false).await;
    assert!(!first.report().succeeded());
    let journal = journal_of(&world);
    let text = std::fs::read_to_string(&journal).expect("journal");
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 4, "{text}");
    lines[2] = "{\"type\":\"push_submitted\",\"push\":\"to-rel";
    std::fs::write(&journal, lines.join("\n") + "\n").expect("garble");

    for resume in [true, false] {
        let out = run(&world, &plan, fast_options(), resume).await;
        match &out.result {
            Err(e @ StartError::DamagedJournal { lines, .. }) => {
                assert_eq!(lines, &vec![3]);
                assert!(e.to_string().contains("line 3"), "{e}");
            }
            other => panic!("resume={resume}: {:?}", other.as_ref().map(|r| &r.pushes)),
        }
    }
    assert_eq!(world.submissions_of("rel/to-relays"), 1);
}

/// Submits through JOB, then reports the job under an id JOB never hands out.
struct ImpossibleId(BkJobApi, i64);

impl JobApi for ImpossibleId {
    async fn submit(&self, request: &JobRequest, bk_biz_id: i64) -> Result<JobRef, ApiError> {
        let mut job = self.0.submit(request, bk_biz_id).await?;
        job.job_instance_id = self.1;
        Ok(job)
    }

    async fn status(&self, job: &JobRef) -> Result<Snapshot, ApiError> {
        self.0.status(job).await
    }

    async fn host_logs(
        &self,
        job: &JobRef,
        hosts: &[HostState],
    ) -> Result<std::collections::BTreeMap<String, HostLog>, ApiError> {
        self.0.host_logs(job, hosts).await
    }

    async fn terminate(&self, job: &JobRef) -> Result<(), ApiError> {
        self.0.terminate(job).await
    }
}

#[tokio::test]
async fn a_job_id_of_zero_or_below_is_an_unknown_outcome_never_a_job() {
    for id in [0, -5] {
        let world = World::new("").await;
        world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
        let plan = plan(TWO_STAGES);
        let out = run_with(
            ImpossibleId(world.api(), id),
            &plan,
            settings(&world.state_dir(), fast_options(), false),
            Interrupt::new(),
        )
        .await;
        let push = out.push("to-relays");
        assert_eq!(push.status, PushStatus::OutcomeUnknown, "{push:#?}");
        assert_eq!(push.job_instance_id, None);
        let journal = std::fs::read_to_string(journal_of(&world)).expect("journal");
        assert!(!journal.contains("push_submitted"), "{journal}");
        assert!(journal.contains("\"outcome_unknown\":true"), "{journal}");
        assert!(world.calls("get_job_instance_status").is_empty());
        // In doubt: `--resume` refuses rather than submit again.
        let resumed = run(&world, &plan, fast_options(), true).await;
        assert!(matches!(resumed.result, Err(StartError::InDoubt { .. })));
        assert_eq!(world.submissions_of("rel/to-relays"), 1);
    }
}
