//! v3 two-phase submission against the simulator: `start_task=false`, the job id journaled,
//! then START; a START that failed is done by `--resume`; a JOB that ignores `start_task`.

use plan_executor::{Event, Hint, PushStatus, Record, RunHistory};

use crate::support::*;

fn v3() -> String {
    TWO_STAGES.replace("account = \"root\"", "account = \"root\"\napi = \"v3\"")
}

fn journal(path: &str) -> Vec<Record> {
    std::fs::read_to_string(path)
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect()
}

#[tokio::test]
async fn the_job_id_is_journaled_before_the_job_is_started() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"two phases");
    let plan = plan(&v3());
    let out = run(&world, &plan, fast_options(), false).await;
    assert!(out.report().succeeded(), "{:#?}", out.report());
    assert_eq!(
        world.read("10.0.2.2", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"two phases"[..])
    );
    let records = journal(&out.report().journal);
    let of_relays: Vec<&Record> = records
        .iter()
        .filter(|r| match r {
            Record::PushSubmitting { push, .. }
            | Record::PushSubmitted { push, .. }
            | Record::PushStarted { push, .. }
            | Record::PushAttemptFinished { push, .. } => push == "to-relays",
            _ => false,
        })
        .collect();
    assert!(
        matches!(
            of_relays.as_slice(),
            [
                Record::PushSubmitting { two_phase: true, .. },
                Record::PushSubmitted { job, .. },
                Record::PushStarted { by_server: false, .. },
                Record::PushAttemptFinished { .. },
            ] if job.start_pending
        ),
        "{of_relays:#?}"
    );
    // On the wire: exactly `plan show`'s bodies (start_task=false included) but for the
    // run's tag in the task name, then one START per job.
    let (p, _) = &plan;
    let calls = world.calls("fast_transfer_file");
    assert_eq!(calls.len(), 2);
    for (call, push) in calls.iter().zip(&p.pushes) {
        assert_eq!(call.body["start_task"], false);
        assert_eq!(
            untagged(&call.body),
            plan_graph::request_for(p, push).to_json()
        );
    }
    let starts = world.calls("operate_job_instance");
    assert_eq!(starts.len(), 2);
    assert!(
        starts
            .iter()
            .all(|r| r.body["operation_code"] == 2 && r.code == Some(0))
    );
}

#[tokio::test]
async fn a_job_left_unstarted_is_started_by_resume_never_created_again() {
    // START is refused once (not retryable): the job exists, unstarted, its id journaled.
    let world = World::new(
        "[[fault]]\napi = \"operate_job_instance\"\nkind = \"job_error\"\ncode = 1240003\ncount = 1\n",
    )
    .await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"later");
    let plan = plan(&v3());
    let out = run(&world, &plan, fast_options(), false).await;
    let relays = out.push("to-relays");
    assert_eq!(relays.status, PushStatus::Failed, "{relays:#?}");
    let error = relays.error.as_deref().unwrap_or_default();
    assert!(error.contains("could not be started"), "{error}");
    assert!(world.read("10.0.1.1", "/data/stage/app.tar.gz").is_none());
    let history = RunHistory::read(std::path::Path::new(&out.report().journal)).expect("read");
    let flying = history.pushes["to-relays"].in_flight.expect("in flight");
    assert!(flying.start_pending);

    let out = run(&world, &plan, fast_options(), true).await;
    assert!(out.report().succeeded(), "{:#?}", out.report());
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::PushReattached { push, .. } if push == "to-relays"))
    );
    assert_eq!(world.submissions_of("rel/to-relays"), 1);
    assert_eq!(
        world.read("10.0.2.1", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"later"[..])
    );
}

#[tokio::test]
async fn a_job_that_ignores_start_task_turns_the_run_one_phase_with_a_warning() {
    let world = World::new("[sim]\nignore_start_task = true\n").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"old job");
    let plan = plan(&v3());
    let api = world.api();
    let out = run_with(
        api.clone(),
        &plan,
        settings(&world.state_dir(), fast_options(), false),
        plan_executor::Interrupt::new(),
    )
    .await;
    assert!(out.report().succeeded(), "{:#?}", out.report());
    assert!(!api.start_task_supported());
    let warned = out.events.iter().any(
        |e| matches!(e, Event::Warning { message, .. } if message.contains("ignores start_task=false")),
    );
    assert!(warned, "{:#?}", out.events);
    let bodies: Vec<serde_json::Value> = world
        .calls("fast_transfer_file")
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(bodies[0]["start_task"], false);
    assert!(bodies[1].get("start_task").is_none());
    assert_eq!(world.calls("operate_job_instance").len(), 1);
    // The first body is `plan show`'s (but for the run's tag); the fallback drops start_task
    // and nothing else, and the journal hashes each body as it was sent.
    let (p, _) = &plan;
    let shown: Vec<plan_graph::JobRequest> = p
        .pushes
        .iter()
        .map(|push| plan_graph::request_for(p, push))
        .collect();
    assert_eq!(untagged(&bodies[0]), shown[0].to_json());
    assert_eq!(untagged(&bodies[1]), shown[1].one_phase().to_json());
    let hashes: Vec<String> = journal(&out.report().journal)
        .into_iter()
        .filter_map(|r| match r {
            Record::PushSubmitting { request_sha256, .. } => Some(request_sha256),
            _ => None,
        })
        .collect();
    let sent = |body: &serde_json::Value| {
        plan_executor::sha256_hex(&serde_json::to_vec(body).expect("json"))
    };
    assert_eq!(hashes, vec![sent(&bodies[0]), sent(&bodies[1])]);
}

#[tokio::test]
async fn v2_stays_one_phase() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"v2");
    let plan = plan(TWO_STAGES);
    let out = run(&world, &plan, fast_options(), false).await;
    assert!(out.report().succeeded());
    assert!(world.calls("operate_job_instance").is_empty());
    let text = std::fs::read_to_string(&out.report().journal).expect("journal");
    assert!(!text.contains("two_phase") && !text.contains("start_pending"));
    assert!(!text.contains("push_started"));
}

fn grace_options(start_grace_ms: u64) -> plan_executor::Options {
    let mut options = fast_options();
    options.poll.start_grace = std::time::Duration::from_millis(start_grace_ms);
    options
}

/// Ends a run that would otherwise poll forever, failing the test instead of hanging it.
async fn bounded(out: impl std::future::Future<Output = Outcome>) -> Outcome {
    tokio::time::timeout(std::time::Duration::from_secs(60), out)
        .await
        .expect("the run polled a job forever")
}

#[tokio::test]
async fn a_job_still_pending_after_its_start_was_accepted_is_started_again() {
    // JOB answers the first START but never acts on it: the job stays in status 1.
    let world =
        World::new("[[fault]]\napi = \"operate_job_instance\"\nkind = \"start_lost\"\ncount = 1\n")
            .await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"again");
    let plan = plan(&v3());
    let out = bounded(run(&world, &plan, grace_options(300), false)).await;
    assert!(out.report().succeeded(), "{:#?}", out.report());
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::Warning { message, .. }
            if message.contains("still in status 1") && message.contains("sending START again"))),
        "{:#?}",
        out.events
    );
    let first = out.push("to-relays").job_instance_id.expect("job");
    let starts: Vec<_> = world
        .calls("operate_job_instance")
        .into_iter()
        .filter(|r| r.body["job_instance_id"] == first)
        .collect();
    assert_eq!(starts.len(), 2, "{starts:#?}");
    assert!(starts.iter().all(|r| r.code == Some(0)));
    assert_eq!(world.submissions_of("rel/to-relays"), 1);
}

#[tokio::test]
async fn a_job_that_never_leaves_status_1_is_given_up_with_a_clear_message() {
    let world =
        World::new("[[fault]]\napi = \"operate_job_instance\"\nkind = \"start_lost\"\n").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"never");
    let plan = plan(&v3());
    let out = bounded(run(&world, &plan, grace_options(200), false)).await;
    let relays = out.push("to-relays");
    assert_eq!(relays.status, PushStatus::Failed, "{relays:#?}");
    let error = relays.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("stayed in status 1")
            && relays.hint == Some(Hint::CheckThenResumeFollowsJob),
        "{error}"
    );
    assert_eq!(out.push("to-web").status, PushStatus::Blocked);
    assert_eq!(world.submissions_of("rel/to-relays"), 1);
}

#[tokio::test]
async fn the_deadline_ends_a_job_stuck_in_status_1_that_refuses_terminate() {
    // START is never applied and the grace is long: only the deadline can end the push, and
    // JOB refuses to terminate a job in status 1 (1241003) however often it is asked.
    let world =
        World::new("[[fault]]\napi = \"operate_job_instance\"\nkind = \"start_lost\"\n").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"deadline");
    let mut plan = plan(&v3());
    let p = std::sync::Arc::get_mut(&mut plan.0).expect("unique");
    for push in &mut p.pushes {
        push.timeout = Some(plan_parser::Setting {
            value: 1,
            origin: plan_parser::Origin::Push,
            span: push.span,
        });
    }
    let mut options = grace_options(3_600_000);
    options.poll.deadline_margin = std::time::Duration::from_millis(300);
    options.poll.after_terminate = std::time::Duration::from_millis(500);
    let out = bounded(run(&world, &plan, options, false)).await;
    let relays = out.push("to-relays");
    assert_eq!(relays.status, PushStatus::TimedOut, "{relays:#?}");
    let error = relays.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("status 1") && error.contains("refused to terminate"),
        "{error}"
    );
}

#[tokio::test]
async fn a_misread_started_by_server_does_not_leave_the_job_pending() {
    // The first START is answered 1241015 without JOB acting on it: it reads as "this JOB
    // ignores start_task", yet the job waits in status 1. It is started again, runs, and the
    // accepted START shows that two phases work after all.
    let world = World::new(
        "[[fault]]\napi = \"operate_job_instance\"\nkind = \"job_error\"\ncode = 1241015\ncount = 1\n",
    )
    .await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"misread");
    let plan = plan(&v3());
    let api = world.api();
    let out = bounded(run_with(
        api.clone(),
        &plan,
        settings(&world.state_dir(), grace_options(300), false),
        plan_executor::Interrupt::new(),
    ))
    .await;
    assert!(out.report().succeeded(), "{:#?}", out.report());
    assert_eq!(
        world.read("10.0.2.2", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"misread"[..])
    );
    assert!(api.start_task_supported());
    let bodies: Vec<serde_json::Value> = world
        .calls("fast_transfer_file")
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(bodies.len(), 2);
    assert!(
        bodies.iter().all(|b| b["start_task"] == false),
        "{bodies:#?}"
    );
}
