//! JOB's own rolling batches (v3) and gates, with an injected confirmer: the executor follows
//! each batch, asks where JOB waits for a user (manual mode, a pause after a failed batch) or
//! before a gated push, and goes on, or stops with the push waiting, as the answer says.

use std::sync::{Arc, Mutex};

use plan_executor::{
    Confirmer, Event, Interrupt, Options, PushStatus, Record, RunHistory, RunOutcome, Schedule,
    WaitPoint,
};

use crate::support::{World, fast_options, plan, run_with, settings};

/// `count` target hosts `10.0.3.1..`, with their sandbox directories.
fn hosts(world: &World, count: usize) -> Vec<String> {
    let hosts: Vec<String> = (1..=count).map(|i| format!("10.0.3.{i}")).collect();
    for ip in &hosts {
        std::fs::create_dir_all(world.host_path(ip, "/")).expect("mkdir");
    }
    hosts
}

fn rolling_plan(count: usize, rolling: &str, extra: &str) -> String {
    format!(
        r#"
[plan]
name = "roll"
bk_biz_id = 2
account = "root"
api = "v3"

[[push]]
name = "app"
from = {{ hosts = "10.0.0.1", files = ["/data/app.tgz"] }}
to = {{ hosts = "10.0.3.[1:{count}]", path = "/opt/app/" }}
rolling = {rolling}
{extra}
"#
    )
}

/// A confirmer that answers `yes` and writes down every question.
/// The questions a confirmer was asked: the push and where it waited.
type Asked = Arc<Mutex<Vec<(String, WaitPoint)>>>;

fn recording(yes: bool) -> (Confirmer, Asked) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&asked);
    let confirmer = Confirmer::new(move |push, point| {
        seen.lock()
            .expect("lock")
            .push((push.to_owned(), point.clone()));
        yes
    });
    (confirmer, asked)
}

fn journal_path(world: &World) -> std::path::PathBuf {
    let dir = world.state_dir().join("runs/roll");
    std::fs::read_dir(&dir)
        .expect("runs")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("a journal")
}

fn journal(world: &World) -> Vec<Record> {
    std::fs::read_to_string(journal_path(world))
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a journal line"))
        .collect()
}

fn batch_lines(records: &[Record]) -> Vec<(u32, u32, PushStatus, usize)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::PushBatchFinished {
                batch,
                batches,
                status,
                hosts,
                ..
            } => Some((*batch, *batches, *status, hosts.len())),
            _ => None,
        })
        .collect()
}

async fn apply_with(
    world: &World,
    text: &str,
    options: Options,
    resume: bool,
    confirmer: Confirmer,
) -> crate::support::Outcome {
    let mut s = settings(&world.state_dir(), options, resume);
    s.confirmer = confirmer;
    run_with(world.api(), &plan(text), s, Interrupt::new()).await
}

#[tokio::test]
async fn manual_mode_asks_after_every_batch_but_the_last_and_goes_on_when_confirmed() {
    let world = World::new("").await;
    let targets = hosts(&world, 10);
    world.write("10.0.0.1", "/data/app.tgz", b"release 4");
    let (confirmer, asked) = recording(true);
    let text = rolling_plan(10, r#"{ expression = "4", mode = "manual" }"#, "");
    let out = apply_with(&world, &text, fast_options(), false, confirmer).await;
    let app = out.push("app");
    assert_eq!(app.status, PushStatus::Succeeded, "{:?}", app.error);
    for ip in &targets {
        assert_eq!(
            world.read(ip, "/opt/app/app.tgz").as_deref(),
            Some(&b"release 4"[..]),
            "{ip}"
        );
    }
    let questions: Vec<(u32, u32, bool)> = asked
        .lock()
        .expect("lock")
        .iter()
        .map(|(push, point)| match point {
            WaitPoint::Batch {
                batch,
                batches,
                failed,
                ..
            } => {
                assert_eq!(push, "app");
                (*batch, *batches, *failed)
            }
            other => panic!("not a JOB batch: {other:?}"),
        })
        .collect();
    assert_eq!(questions, vec![(1, 3, false), (2, 3, false)]);
    // Each batch in the report and the journal, with its hosts (4, 4, 2).
    let sizes: Vec<(u32, usize)> = app
        .batches
        .iter()
        .map(|b| (b.index, b.hosts_total))
        .collect();
    assert_eq!(sizes, vec![(1, 4), (2, 4), (3, 2)]);
    let records = journal(&world);
    assert_eq!(
        batch_lines(&records),
        vec![
            (1, 3, PushStatus::Succeeded, 4),
            (2, 3, PushStatus::Succeeded, 4),
            (3, 3, PushStatus::Succeeded, 2)
        ]
    );
    let confirmed: Vec<&String> = records
        .iter()
        .filter_map(|r| match r {
            Record::PushConfirmed { by, .. } => Some(by),
            _ => None,
        })
        .collect();
    assert_eq!(confirmed.len(), 2);
    assert!(confirmed.iter().all(|by| !by.is_empty()));
    // JOB was told to go on twice, with ROLLING_CONTINUE.
    let operations: Vec<i64> = world
        .calls("operate_step_instance")
        .iter()
        .filter_map(|r| r.body["operation_code"].as_i64())
        .collect();
    assert_eq!(operations, vec![13, 13]);
    // The progress named the batch under way.
    assert!(out.events.iter().any(|e| matches!(
        e,
        Event::PushProgress { batch: Some(b), .. } if b.index == 2 && b.count == 3
    )));
}

#[tokio::test]
async fn a_failed_batch_pauses_and_a_confirmation_retries_its_failed_hosts_then_goes_on() {
    // 10.0.3.6 (batch 2 of 3) has its agent down for one execution.
    let world = World::new("[[host]]\nhost = \"0:10.0.3.6\"\nflaky_jobs = 1\n").await;
    let targets = hosts(&world, 12);
    world.write("10.0.0.1", "/data/app.tgz", b"release 5");
    let (confirmer, asked) = recording(true);
    let text = rolling_plan(12, r#"{ expression = "4", mode = "pause-on-failure" }"#, "");
    let out = apply_with(&world, &text, fast_options(), false, confirmer).await;
    let app = out.push("app");
    assert_eq!(app.status, PushStatus::Succeeded, "{:?}", app.error);
    assert!(
        targets
            .iter()
            .all(|ip| world.read(ip, "/opt/app/app.tgz").is_some())
    );
    let asked = asked.lock().expect("lock").clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(matches!(
        asked[0].1,
        WaitPoint::Batch {
            batch: 2,
            batches: 3,
            failed: true,
            ..
        }
    ));
    let operations: Vec<i64> = world
        .calls("operate_step_instance")
        .iter()
        .filter_map(|r| r.body["operation_code"].as_i64())
        .collect();
    assert_eq!(
        operations,
        vec![2],
        "the failed host runs again in the same job"
    );
    assert_eq!(world.submissions_of("roll/app"), 1);
    let lines = batch_lines(&journal(&world));
    assert_eq!(
        lines,
        vec![
            (1, 3, PushStatus::Succeeded, 4),
            (2, 3, PushStatus::Failed, 4),
            (2, 3, PushStatus::Succeeded, 4),
            (3, 3, PushStatus::Succeeded, 4)
        ]
    );
}

#[tokio::test]
async fn without_a_confirmation_the_job_waits_in_job_and_a_resume_asks_again() {
    let world = World::new("[[host]]\nhost = \"0:10.0.3.6\"\nflaky_jobs = 1\n").await;
    let targets = hosts(&world, 12);
    world.write("10.0.0.1", "/data/app.tgz", b"release 6");
    let text = rolling_plan(12, r#"{ expression = "4" }"#, "");
    let out = apply_with(&world, &text, fast_options(), false, Confirmer::decline()).await;
    let app = out.push("app");
    assert_eq!(app.status, PushStatus::WaitingForConfirmation);
    assert!(out.report().awaits_confirmation());
    // Batch 3's hosts received nothing; the journal keeps the job in flight.
    for ip in &targets[8..] {
        assert_eq!(world.read(ip, "/opt/app/app.tgz"), None, "{ip}");
    }
    assert!(world.calls("operate_step_instance").is_empty());
    let history = RunHistory::read(&journal_path(&world)).expect("history");
    assert_eq!(history.finished, Some(RunOutcome::AwaitingConfirmation));
    assert!(history.pushes["app"].in_flight.is_some());
    assert!(matches!(
        history.pushes["app"].waiting,
        Some(WaitPoint::Batch { batch: 2, .. })
    ));

    // Resumed without a yes: nothing is sent, the push still waits.
    let again = apply_with(&world, &text, fast_options(), true, Confirmer::decline()).await;
    assert_eq!(again.push("app").status, PushStatus::WaitingForConfirmation);
    assert!(world.calls("operate_step_instance").is_empty());

    // Resumed with a yes: the same job goes on and every host has the file.
    let (yes, _) = recording(true);
    let done = apply_with(&world, &text, fast_options(), true, yes).await;
    assert_eq!(
        done.push("app").status,
        PushStatus::Succeeded,
        "{:?}",
        done.push("app").error
    );
    assert!(
        targets
            .iter()
            .all(|ip| world.read(ip, "/opt/app/app.tgz").is_some())
    );
    assert_eq!(world.submissions_of("roll/app"), 1);
}

#[tokio::test]
async fn a_gate_no_one_approves_sends_nothing_while_independent_pushes_go_on_eagerly() {
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/app.tgz", b"release 7");
    let text = r#"
[plan]
name = "roll"
bk_biz_id = 2
account = "root"
api = "v3"

[[push]]
name = "gated"
from = { hosts = "10.0.0.1", files = ["/data/app.tgz"] }
to = { hosts = "10.0.1.1", path = "/opt/gated/" }
gate = true

[[push]]
name = "after-gated"
from = { hosts = "10.0.1.1", files = ["/opt/gated/app.tgz"] }
to = { hosts = "10.0.2.1", path = "/opt/next/" }

[[push]]
name = "free"
from = { hosts = "10.0.0.1", files = ["/data/app.tgz"] }
to = { hosts = "10.0.2.2", path = "/opt/free/" }
"#;
    let eager = Options {
        schedule: Schedule::Eager,
        ..fast_options()
    };
    let (no, asked) = recording(false);
    let out = apply_with(&world, text, eager, false, no).await;
    assert_eq!(out.push("gated").status, PushStatus::WaitingAtGate);
    assert_eq!(out.push("gated").waiting, Some(WaitPoint::Gate));
    assert_eq!(out.push("after-gated").status, PushStatus::Blocked);
    assert_eq!(out.push("free").status, PushStatus::Succeeded);
    assert_eq!(asked.lock().expect("lock").len(), 1);
    assert_eq!(world.submissions_of("roll/gated"), 0);
    assert_eq!(world.read("10.0.1.1", "/opt/gated/app.tgz"), None);
    assert!(out.report().awaits_confirmation());

    // Approved on resume: journaled with who, sent, and the push behind it follows.
    let (yes, asked) = recording(true);
    let done = apply_with(&world, text, eager, true, yes).await;
    assert_eq!(done.push("gated").status, PushStatus::Succeeded);
    assert_eq!(done.push("after-gated").status, PushStatus::Succeeded);
    assert_eq!(asked.lock().expect("lock").len(), 1);
    let records = journal(&world);
    let confirmed = records.iter().position(|r| {
        matches!(r, Record::PushConfirmed { push, point: WaitPoint::Gate, by, .. } if push == "gated" && !by.is_empty())
    });
    let submitted = records
        .iter()
        .position(|r| matches!(r, Record::PushSubmitting { push, .. } if push == "gated"));
    assert!(confirmed.is_some() && confirmed < submitted, "{records:?}");
}

/// The lines and events of a run that stops at a batch and of the resume that confirms it
/// validate against the published schemas (`plan schema --output journal` / `events`).
#[tokio::test]
async fn waiting_and_confirmed_lines_validate_against_the_schemas() {
    let world = World::new("").await;
    hosts(&world, 6);
    world.write("10.0.0.1", "/data/app.tgz", b"release 8");
    let text = rolling_plan(
        6,
        r#"{ expression = "3", mode = "manual" }"#,
        "gate = true\n",
    );
    let (yes_once, _) = recording(true);
    let gate_only = Confirmer::new(move |push, point| {
        *point == WaitPoint::Gate && yes_once.answer(push, point)
    });
    let waiting = apply_with(&world, &text, fast_options(), false, gate_only).await;
    assert_eq!(
        waiting.push("app").status,
        PushStatus::WaitingForConfirmation
    );
    let (yes, _) = recording(true);
    let done = apply_with(&world, &text, fast_options(), true, yes).await;
    assert_eq!(done.push("app").status, PushStatus::Succeeded);

    let journal = validator(plan_executor::schema::journal_schema());
    let events = validator(plan_executor::schema::events_schema());
    let mut kinds = std::collections::BTreeSet::new();
    for record in journal_values(&world) {
        let problems: Vec<String> = journal
            .iter_errors(&record)
            .map(|e| e.to_string())
            .collect();
        assert!(problems.is_empty(), "{record}: {problems:?}");
        kinds.insert(record["type"].as_str().unwrap_or("?").to_owned());
    }
    for event in waiting.events.iter().chain(&done.events) {
        let value = plan_executor::LineStamp::now(Some("run"))
            .stamp(event)
            .expect("serialises");
        let problems: Vec<String> = events.iter_errors(&value).map(|e| e.to_string()).collect();
        assert!(problems.is_empty(), "{value}: {problems:?}");
        kinds.insert(value["event"].as_str().unwrap_or("?").to_owned());
    }
    for kind in [
        "push_batch_finished",
        "push_awaiting_confirmation",
        "push_confirmed",
    ] {
        assert!(kinds.contains(kind), "{kind} in {kinds:?}");
    }
}

fn validator(schema: schemars::Schema) -> jsonschema::Validator {
    jsonschema::draft202012::new(&schema.to_value()).expect("the schema compiles")
}

fn journal_values(world: &World) -> Vec<serde_json::Value> {
    std::fs::read_to_string(journal_path(world))
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

/// Under `stages` a push waiting at its gate holds its stage: a later stage does not start,
/// even for a push that does not depend on the gated one; under `eager` it runs.
#[tokio::test]
async fn a_waiting_gate_holds_the_later_stages_under_stages_only() {
    let text = r#"
[plan]
name = "roll"
bk_biz_id = 2
account = "root"
api = "v3"

[[push]]
name = "gated"
from = { hosts = "10.0.0.1", files = ["/data/app.tgz"] }
to = { hosts = "10.0.1.1", path = "/opt/gated/" }
gate = true

[[push]]
name = "first"
from = { hosts = "10.0.0.1", files = ["/data/app.tgz"] }
to = { hosts = "10.0.1.2", path = "/opt/first/" }

[[push]]
name = "second"
from = { hosts = "10.0.1.2", files = ["/opt/first/app.tgz"] }
to = { hosts = "10.0.2.1", path = "/opt/second/" }
"#;
    for (schedule, second) in [
        (Schedule::Stages, PushStatus::NotStarted),
        (Schedule::Eager, PushStatus::Succeeded),
    ] {
        let world = World::new("").await;
        world.write("10.0.0.1", "/data/app.tgz", b"release 9");
        let options = Options {
            schedule,
            ..fast_options()
        };
        let out = apply_with(&world, text, options, false, Confirmer::decline()).await;
        assert_eq!(out.push("gated").status, PushStatus::WaitingAtGate);
        assert_eq!(out.push("first").status, PushStatus::Succeeded);
        assert_eq!(out.push("second").status, second, "{schedule:?}");
        assert!(out.report().awaits_confirmation(), "{schedule:?}");
    }
}
