//! Journal, resume and lock: nothing done twice, nothing lost.

use plan_executor::{Event, Hint, Interrupt, PlanLock, PushStatus, StartError};

use crate::support::*;

const BRANCHES: &str = r#"
[plan]
name = "branches"
bk_biz_id = 2
account = "root"

[[push]]
name = "a1"
from = { hosts = "10.0.0.1", files = ["/data/a.txt"] }
to = { hosts = "10.0.1.1", path = "/data/a/" }

[[push]]
name = "b1"
from = { hosts = "10.0.0.1", files = ["/data/b.txt"] }
to = { hosts = "10.0.1.2", path = "/data/b/" }

[[push]]
name = "a2"
from = { hosts = "10.0.1.1", files = ["/data/a/a.txt"] }
to = { hosts = "10.0.2.1", path = "/opt/a/" }
"#;

#[tokio::test]
async fn resume_skips_what_succeeded_and_reruns_what_failed() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/a.txt", b"a");
    let plan = plan(BRANCHES);
    let first = run(&world, &plan, fast_options(), false).await;
    assert_eq!(first.push("a1").status, PushStatus::Succeeded);
    assert_eq!(first.push("b1").status, PushStatus::Failed);
    assert_eq!(first.push("a2").status, PushStatus::NotStarted);

    world.write("10.0.0.1", "/data/b.txt", b"b");
    let second = run(&world, &plan, fast_options(), true).await;
    let report = second.report();
    assert!(report.resumed);
    assert_eq!(
        report.run_id,
        first.report().run_id,
        "resume continues the same run"
    );
    assert_eq!(second.push("a1").status, PushStatus::AlreadySucceeded);
    assert_eq!(second.push("b1").status, PushStatus::Succeeded);
    assert_eq!(second.push("a2").status, PushStatus::Succeeded);
    assert!(report.succeeded());
    assert_eq!(world.submissions_of("branches/a1"), 1);
    assert_eq!(world.submissions_of("branches/b1"), 2);
    assert_eq!(world.submissions_of("branches/a2"), 1);
    assert!(second.events.iter().any(
        |e| matches!(e, Event::RunStarted { already_done, .. } if already_done == &vec!["a1".to_owned()])
    ));

    // Nothing left to resume.
    let third = run(&world, &plan, fast_options(), true).await;
    assert!(matches!(
        third.result,
        Err(StartError::NothingToResume { .. })
    ));
}

#[tokio::test]
async fn resume_refuses_a_changed_plan_and_names_the_pushes() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/a.txt", b"a");
    let first = run(&world, &plan(BRANCHES), fast_options(), false).await;
    assert!(!first.report().succeeded());
    let edited = BRANCHES.replace("/data/b.txt", "/data/b2.txt");
    let second = run(&world, &plan(&edited), fast_options(), true).await;
    match &second.result {
        Err(StartError::PlanChanged {
            changed,
            added,
            removed,
            ..
        }) => {
            assert_eq!(changed, &vec!["b1".to_owned()]);
            assert!(added.is_empty() && removed.is_empty());
        }
        other => panic!("{:?}", other.as_ref().map(|r| &r.pushes)),
    }
    // Nothing was sent by the refused resume.
    assert_eq!(world.calls("fast_push_file").len(), 2);
    // A fresh run of the edited plan is allowed (with a warning about the unfinished run).
    let fresh = run(&world, &plan(&edited), fast_options(), false).await;
    assert!(fresh.events.iter().any(|e| matches!(
        e,
        Event::Warning {
            hint: Some(Hint::ResumeLastRun),
            ..
        }
    )));
}

#[tokio::test]
async fn a_run_killed_mid_job_is_reattached_not_resubmitted() {
    let world = World::new("[sim]\nstart_delay_ms = 1000\n").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"slow");
    let plan = plan(TWO_STAGES);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let api = world.api();
    let state = world.state_dir();
    let (p, g) = (plan.0.clone(), plan.1.clone());
    let handle = tokio::spawn(async move {
        plan_executor::apply(
            api,
            p,
            g,
            settings(&state, fast_options(), false),
            Interrupt::new(),
            tx,
        )
        .await
    });
    // "Kill" the process right after the job id is journaled: the future is dropped mid-poll.
    while let Some(event) = rx.recv().await {
        if matches!(event, Event::PushSubmitted { .. }) {
            handle.abort();
            break;
        }
    }
    let _ = handle.await;

    // Without --resume: refused, the job may still be running.
    let fresh = run(&world, &plan, fast_options(), false).await;
    match &fresh.result {
        Err(StartError::UnfinishedRun {
            pushes, in_doubt, ..
        }) => {
            assert_eq!(pushes, &vec!["to-relays".to_owned()]);
            // Nothing in doubt: continuing the run is the way on (the CLI's help names it).
            assert!(in_doubt.is_empty());
        }
        other => panic!("{:?}", other.as_ref().map(|r| &r.pushes)),
    }

    let resumed = run(&world, &plan, fast_options(), true).await;
    assert!(resumed.report().succeeded(), "{:#?}", resumed.report());
    assert!(
        resumed
            .events
            .iter()
            .any(|e| matches!(e, Event::PushReattached { push, .. } if push == "to-relays"))
    );
    assert_eq!(world.submissions_of("rel/to-relays"), 1);
    assert_eq!(world.submissions_of("rel/to-web"), 1);
    assert_eq!(
        world.read("10.0.2.1", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"slow"[..])
    );
}

#[tokio::test]
async fn a_second_apply_of_the_same_plan_is_refused_while_the_lock_is_held() {
    let world = World::new("").await;
    let held = PlanLock::acquire(&world.state_dir(), "rel").expect("lock");
    let out = run(&world, &plan(TWO_STAGES), fast_options(), false).await;
    match &out.result {
        Err(StartError::Lock(e)) => {
            assert!(e.to_string().contains(&std::process::id().to_string()))
        }
        other => panic!("{:?}", other.as_ref().map(|r| &r.pushes)),
    }
    assert!(world.sim.requests().is_empty());
    drop(held);
}

#[tokio::test]
async fn resume_of_a_push_with_retries_pushes_only_to_its_failed_hosts() {
    let world = World::new("").await;
    world.write("10.0.1.1", "/data/stage/app.tar.gz", b"ok");
    // A file where 10.0.2.2's target directory must be: that host fails every attempt.
    world.write("10.0.2.2", "/opt/app", b"not a directory");
    let text = r#"
[plan]
name = "retry"
bk_biz_id = 2
account = "root"

[[push]]
name = "spread"
from = { hosts = "10.0.1.1", files = ["/data/stage/app.tar.gz"] }
to = { hosts = ["10.0.2.1", "10.0.2.2"], path = "/opt/app/" }
retries = 1
"#;
    let plan = plan(text);
    let first = run(&world, &plan, fast_options(), false).await;
    let push = first.push("spread");
    assert_eq!(push.status, PushStatus::Failed);
    assert_eq!(push.attempts, 2);
    assert_eq!(push.hosts_ok, 1);
    assert_eq!(push.failed_hosts.len(), 1);

    std::fs::remove_file(world.host_path("10.0.2.2", "/opt/app")).expect("repair");
    let second = run(&world, &plan, fast_options(), true).await;
    assert!(second.report().succeeded(), "{:#?}", second.report());
    let submits = world.calls("fast_push_file");
    assert_eq!(submits.len(), 3);
    let last_targets = &submits[2].body["target_server"]["ip_list"];
    assert_eq!(
        last_targets.as_array().map(Vec::len),
        Some(1),
        "{last_targets}"
    );
    assert_eq!(last_targets[0]["ip"], "10.0.2.2");
    // The journal numbers attempts over the whole run.
    let journal = std::fs::read_to_string(&second.report().journal).expect("journal");
    assert!(journal.contains("\"attempt\":3"), "{journal}");
}

#[tokio::test]
async fn a_lost_submission_answer_is_not_resent_and_blocks_a_blind_resume() {
    let world =
        World::new("[[fault]]\napi = \"fast_push_file\"\nkind = \"drop\"\ncount = 1\n").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let plan = plan(TWO_STAGES);
    let first = run(&world, &plan, fast_options(), false).await;
    let push = first.push("to-relays");
    assert_eq!(push.status, PushStatus::OutcomeUnknown, "{push:#?}");
    assert_eq!(first.push("to-web").status, PushStatus::Blocked);
    // Sent once, never again: the client does not re-send a submission whose answer is lost.
    assert_eq!(world.calls("fast_push_file").len(), 1);

    let resumed = run(&world, &plan, fast_options(), true).await;
    match &resumed.result {
        Err(StartError::InDoubt { pushes, .. }) => {
            assert_eq!(pushes[0].name, "to-relays");
            // What the CLI's help tells to look up in JOB's job history.
            let task_name = pushes[0].task_name.as_deref().unwrap_or_default();
            assert!(task_name.starts_with("rel/to-relays#"), "{task_name}");
        }
        other => panic!("{:?}", other.as_ref().map(|r| &r.pushes)),
    }
    let fresh = run(&world, &plan, fast_options(), false).await;
    assert!(matches!(
        fresh.result,
        Err(StartError::UnfinishedRun { .. })
    ));
    assert_eq!(world.calls("fast_push_file").len(), 1);
}
