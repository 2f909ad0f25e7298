//! Runs against the simulator: what lands where, and what the report says.

use std::sync::Arc;
use std::time::Duration;

use plan_bkjob::RunStatus;
use plan_executor::{
    ContinuePolicy, Event, Interrupt, Interruption, Options, PollPolicy, PushStatus, Schedule,
    TerminateReason,
};

use crate::support::*;

#[tokio::test]
async fn two_stages_deliver_every_byte_in_order() {
    let world = World::new("").await;
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    world.write("10.0.0.1", "/data/release/app.tar.gz", &payload);
    let plan = plan(TWO_STAGES);
    let out = run(&world, &plan, fast_options(), false).await;
    let report = out.report();
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(out.push("to-relays").status, PushStatus::Succeeded);
    assert_eq!(out.push("to-web").hosts_ok, 2);
    for ip in ["10.0.2.1", "10.0.2.2"] {
        assert_eq!(
            world.read(ip, "/opt/app/app.tar.gz"),
            Some(payload.clone()),
            "{ip}"
        );
    }
    // Stage 2 was submitted only after stage 1's job was seen finished.
    let submits = world.calls("fast_push_file");
    assert_eq!(submits.len(), 2);
    assert_eq!(task_base(&submits[0].body["task_name"]), "rel/to-relays");
    assert_eq!(task_base(&submits[1].body["task_name"]), "rel/to-web");
    let first_job = submits[0].job_instance_id;
    let statuses = world.calls("get_job_instance_status");
    let finished_seen = statuses
        .iter()
        .position(|r| r.body["job_instance_id"].as_u64() == first_job)
        .expect("stage 1 polled");
    assert!(finished_seen < statuses.len());
    assert!(
        submits[1].time >= statuses[finished_seen].time,
        "stage 2 started before stage 1 was polled"
    );
    // Credentials never reach the simulator's log (it strips them; the body had them).
    let log = std::fs::read_to_string(world.dir.path().join("sandbox/.jobsim/requests.jsonl"))
        .expect("request log");
    assert!(!log.contains("\"secret\""));
    // Events: submitted with job ids, and a final report.
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::PushSubmitted { push, .. } if push == "to-web"))
    );
    assert!(matches!(out.events.last(), Some(Event::RunFinished { .. })));
    // The journal says the run succeeded, and no credential is in it.
    let journal = std::fs::read_to_string(&report.journal).expect("journal");
    assert!(
        journal
            .lines()
            .next()
            .is_some_and(|l| l.contains("\"format_version\":1"))
    );
    assert!(
        journal
            .lines()
            .last()
            .is_some_and(|l| l.contains("\"status\":\"succeeded\""))
    );
    assert!(!journal.contains("secret"));
}

#[tokio::test]
async fn missing_source_file_fails_with_320_and_stage_two_never_starts() {
    let world = World::new("").await;
    let plan = plan(TWO_STAGES);
    let out = run(&world, &plan, fast_options(), false).await;
    let failed = out.push("to-relays");
    assert_eq!(failed.status, PushStatus::Failed);
    assert_eq!(failed.failed_hosts.len(), 1);
    let host = &failed.failed_hosts[0];
    assert_eq!(host.host, "0:10.0.1.1");
    assert_eq!(host.status.code(), 320);
    assert_eq!(host.label, "File pull failed");
    assert!(host.log_excerpt.is_some(), "{host:?}");
    assert_eq!(out.push("to-web").status, PushStatus::Blocked);
    assert_eq!(world.calls("fast_push_file").len(), 1);
}

#[tokio::test]
async fn unknown_target_host_is_refused_at_submission() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let text = TWO_STAGES.replace(r#"ips = ["10.0.1.1"]"#, r#"ips = ["10.0.1.1", "10.0.9.9"]"#);
    let out = run(&world, &plan(&text), fast_options(), false).await;
    let push = out.push("to-relays");
    assert_eq!(push.status, PushStatus::Rejected);
    assert_eq!(push.error_code, Some(1_244_030));
    assert!(
        push.error
            .as_deref()
            .unwrap_or_default()
            .contains("10.0.9.9"),
        "{push:?}"
    );
    assert_eq!(out.push("to-web").status, PushStatus::Blocked);
}

#[tokio::test]
async fn transient_5xx_and_429_are_absorbed() {
    let world = World::new(
        r#"
[[fault]]
api = "fast_push_file"
kind = "http_503"
count = 2
[[fault]]
api = "get_job_instance_status"
kind = "http_502"
count = 2
[[fault]]
api = "get_job_instance_status"
kind = "http_429"
count = 1
[[fault]]
api = "fast_push_file"
kind = "esb_1306429"
count = 1
"#,
    )
    .await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"payload");
    let out = run(&world, &plan(TWO_STAGES), fast_options(), false).await;
    assert!(out.report().succeeded(), "{:#?}", out.report());
    assert_eq!(
        world.read("10.0.2.2", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"payload"[..])
    );
    // Exactly one accepted submission per push despite the faults.
    assert_eq!(world.submissions_of("rel/to-relays"), 1);
    assert_eq!(world.submissions_of("rel/to-web"), 1);
}

#[tokio::test]
async fn a_job_past_its_deadline_is_terminated() {
    let world =
        World::new("[[fault]]\napi = \"fast_push_file\"\nkind = \"stuck\"\ncount = 1\n").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let (mut plan, graph) = plan(TWO_STAGES);
    // The plan's timeout (what the executor's deadline is based on) is 1 s; JOB is asked for
    // an hour, so only the executor's deadline can end the job.
    let p = Arc::get_mut(&mut plan).expect("unique");
    for push in &mut p.pushes {
        push.timeout = Some(plan_parser::Setting {
            value: 1,
            origin: plan_parser::Origin::Push,
            span: push.span,
        });
    }
    let options = Options {
        poll: PollPolicy {
            deadline_margin: Duration::from_millis(500),
            ..fast_options().poll
        },
        ..fast_options()
    };
    let out = run_with(
        LongJobTimeout(world.api()),
        &(plan, graph),
        settings(&world.state_dir(), options, false),
        Interrupt::new(),
    )
    .await;
    let push = out.push("to-relays");
    assert_eq!(push.status, PushStatus::TimedOut, "{push:#?}");
    assert_eq!(
        push.failed_hosts.first().map(|h| h.status.code()),
        Some(403)
    );
    assert_eq!(world.calls("operate_job_instance").len(), 1);
    assert_eq!(
        world.calls("operate_job_instance")[0].body["operation_code"],
        1
    );
    assert_eq!(out.push("to-web").status, PushStatus::Blocked);
    assert!(out.events.iter().any(|e| matches!(
        e,
        Event::PushTerminating {
            reason: TerminateReason::Deadline,
            ..
        }
    )));
}

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
from = { hosts = "10.0.0.1", files = ["/data/missing.txt"] }
to = { hosts = "10.0.1.2", path = "/data/b/" }

[[push]]
name = "a2"
from = { hosts = "10.0.1.1", files = ["/data/a/a.txt"] }
to = { hosts = "10.0.2.1", path = "/opt/a/" }

[[push]]
name = "b2"
from = { hosts = "10.0.1.2", files = ["/data/b/missing.txt"] }
to = { hosts = "10.0.2.2", path = "/opt/b/" }
"#;

#[tokio::test]
async fn continue_independent_runs_the_unaffected_branch() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/a.txt", b"branch a");
    let plan = plan(BRANCHES);
    let never = run(&world, &plan, fast_options(), false).await;
    assert_eq!(never.push("b1").status, PushStatus::Failed);
    assert_eq!(never.push("a2").status, PushStatus::NotStarted);
    assert_eq!(never.push("b2").status, PushStatus::Blocked);

    let world = World::new("").await;
    world.write("10.0.0.1", "/data/a.txt", b"branch a");
    let options = Options {
        continue_policy: ContinuePolicy::Independent,
        schedule: Schedule::Eager,
        ..fast_options()
    };
    let independent = run(&world, &plan, options, false).await;
    assert_eq!(independent.push("a2").status, PushStatus::Succeeded);
    assert_eq!(independent.push("b2").status, PushStatus::Blocked);
    assert_eq!(
        world.read("10.0.2.1", "/opt/a/a.txt").as_deref(),
        Some(&b"branch a"[..])
    );
    assert!(!independent.report().succeeded());
}

#[tokio::test]
async fn retries_repush_only_to_the_failed_hosts() {
    // 10.0.2.2 fails the first attempt (a file stands where its target directory must be)
    // and is repaired when the retry is announced (the simulator's start delay leaves time).
    let world = World::new("[sim]\nstart_delay_ms = 1000\n").await;
    world.write("10.0.1.1", "/data/stage/app.tar.gz", b"ok");
    let text = r#"
[plan]
name = "retry"
bk_biz_id = 2
account = "root"

[[push]]
name = "spread"
from = { hosts = "10.0.1.1", files = ["/data/stage/app.tar.gz"] }
to = { hosts = ["10.0.2.1", "10.0.2.2"], path = "/opt/app/" }
retries = 2
"#;
    let (plan, graph) = plan(text);
    world.write("10.0.2.2", "/opt/app", b"not a directory");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let api = world.api();
    let state = world.state_dir();
    let plan2 = (Arc::clone(&plan), Arc::clone(&graph));
    let handle = tokio::spawn(async move {
        plan_executor::apply(
            api,
            plan2.0,
            plan2.1,
            settings(&state, fast_options(), false),
            Interrupt::new(),
            tx,
        )
        .await
    });
    // Repair the host as soon as the first attempt is seen failing.
    let mut repaired = false;
    while let Some(event) = rx.recv().await {
        if let Event::PushRetrying { hosts, .. } = &event {
            assert_eq!(hosts, &vec!["0:10.0.2.2".to_owned()]);
            std::fs::remove_file(world.host_path("10.0.2.2", "/opt/app")).expect("repair");
            repaired = true;
        }
    }
    let report = handle.await.expect("join").expect("start");
    assert!(repaired, "no retry happened: {report:#?}");
    assert_eq!(
        report.pushes[0].status,
        PushStatus::Succeeded,
        "{report:#?}"
    );
    assert_eq!(report.pushes[0].attempts, 2);
    let submits = world.calls("fast_push_file");
    assert_eq!(submits.len(), 2);
    let second_targets = &submits[1].body["target_server"]["ip_list"];
    assert_eq!(
        second_targets.as_array().map(Vec::len),
        Some(1),
        "{second_targets}"
    );
    assert_eq!(second_targets[0]["ip"], "10.0.2.2");
}

#[tokio::test]
async fn first_interrupt_follows_running_jobs_and_starts_nothing_new() {
    let world = World::new("[sim]\nstart_delay_ms = 800\n").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let (plan, graph) = plan(TWO_STAGES);
    let interrupt = Interrupt::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let api = world.api();
    let state = world.state_dir();
    let i2 = interrupt.clone();
    let handle = tokio::spawn(async move {
        plan_executor::apply(
            api,
            plan,
            graph,
            settings(&state, fast_options(), false),
            i2,
            tx,
        )
        .await
    });
    while let Some(event) = rx.recv().await {
        if matches!(event, Event::PushSubmitted { .. }) {
            interrupt.stop();
        }
    }
    let report = handle.await.expect("join").expect("start");
    assert_eq!(report.interrupted, Interruption::Stop);
    assert_eq!(report.pushes[0].status, PushStatus::Succeeded);
    assert_eq!(report.pushes[1].status, PushStatus::NotStarted);
    assert!(world.calls("operate_job_instance").is_empty());
}

#[tokio::test]
async fn second_interrupt_terminates_running_jobs() {
    let world = World::new("[sim]\nstart_delay_ms = 100\n[[fault]]\napi = \"fast_push_file\"\nkind = \"stuck\"\ncount = 1\n").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let (plan, graph) = plan(TWO_STAGES);
    let interrupt = Interrupt::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let api = world.api();
    let state = world.state_dir();
    let i2 = interrupt.clone();
    let handle = tokio::spawn(async move {
        plan_executor::apply(
            api,
            plan,
            graph,
            settings(&state, fast_options(), false),
            i2,
            tx,
        )
        .await
    });
    while let Some(event) = rx.recv().await {
        if let Event::PushProgress {
            job_status: RunStatus::Running,
            ..
        } = event
        {
            assert_eq!(interrupt.escalate(), 1);
            assert_eq!(interrupt.escalate(), 2);
        }
    }
    let report = handle.await.expect("join").expect("start");
    assert_eq!(report.interrupted, Interruption::Terminate);
    assert_eq!(
        report.pushes[0].status,
        PushStatus::Interrupted,
        "{report:#?}"
    );
    assert_eq!(world.calls("operate_job_instance").len(), 1);
    let journal = std::fs::read_to_string(&report.journal).expect("journal");
    assert!(journal.contains("push_terminate_requested"));
    assert!(journal.contains("\"status\":\"interrupted\""));
}

#[tokio::test]
async fn v3_through_the_gateway_and_esb_reports_hosts_and_logs() {
    let v3 = TWO_STAGES.replace("account = \"root\"", "account = \"root\"\napi = \"v3\"");
    for gateway in [true, false] {
        let world = World::new("").await;
        let plan = plan(&v3);
        let base = if gateway {
            format!("{}/api/bk-job/prod", world.sim.base_url())
        } else {
            world.sim.base_url()
        };
        // First without the source file: per-host 320 with a log from the batch log API.
        let out = run_with(
            world.api_at(&base),
            &plan,
            settings(&world.state_dir(), fast_options(), false),
            Interrupt::new(),
        )
        .await;
        let failed = out.push("to-relays");
        assert_eq!(failed.status, PushStatus::Failed, "gateway={gateway}");
        assert_eq!(failed.failed_hosts[0].status.code(), 320);
        assert!(failed.failed_hosts[0].error_code.is_some());
        assert!(
            failed.failed_hosts[0]
                .log_excerpt
                .as_deref()
                .unwrap_or_default()
                .contains("app.tar.gz"),
            "{failed:#?}"
        );
        assert!(!world.calls("batch_get_job_instance_ip_log").is_empty());
        assert!(world.calls("fast_push_file").is_empty());
        // Then with it, resumed.
        world.write("10.0.0.1", "/data/release/app.tar.gz", b"v3 bytes");
        let out = run_with(
            world.api_at(&base),
            &plan,
            settings(&world.state_dir(), fast_options(), true),
            Interrupt::new(),
        )
        .await;
        assert!(out.report().succeeded(), "{:#?}", out.report());
        assert_eq!(
            world.read("10.0.2.1", "/opt/app/app.tar.gz").as_deref(),
            Some(&b"v3 bytes"[..])
        );
        let fronts: Vec<String> = world
            .calls("fast_transfer_file")
            .iter()
            .map(|r| r.front.clone())
            .collect();
        assert!(
            fronts
                .iter()
                .all(|f| f == if gateway { "gateway" } else { "esb" }),
            "{fronts:?}"
        );
    }
}

/// Six pushes of one stage against the simulator: its request log shows the submissions in
/// file order, whether they run one at a time or all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_reaches_jobsim_in_file_order() {
    let names = ["f-six", "e-five", "d-four", "c-three", "b-two", "a-one"];
    let mut text = String::from(
        "[plan]\nname = \"order\"\nbk_biz_id = 2\naccount = \"root\"\napi = \"v3\"\n\n[hosts.src]\nips = [\"10.0.0.1\"]\n[hosts.web]\nips = [\"10.0.2.1\"]\n",
    );
    for n in names {
        text.push_str(&format!(
            "\n[[push]]\nname = \"{n}\"\nfrom = {{ hosts = \"src\", files = [\"/data/{n}.txt\"] }}\nto = {{ hosts = \"web\", path = \"/data/{n}/\" }}\n"
        ));
    }
    for parallelism in [8, 1] {
        let world = World::new("").await;
        for n in names {
            world.write("10.0.0.1", &format!("/data/{n}.txt"), n.as_bytes());
        }
        let options = Options {
            parallelism,
            ..fast_options()
        };
        let out = run(&world, &plan(&text), options, false).await;
        assert!(out.report().succeeded(), "{:#?}", out.report());
        let order: Vec<String> = world
            .calls("fast_transfer_file")
            .iter()
            .map(|r| task_base(&r.body["task_name"]).to_owned())
            .collect();
        let expected: Vec<String> = names.iter().map(|n| format!("order/{n}")).collect();
        assert_eq!(order, expected, "parallelism {parallelism}");
    }
}
