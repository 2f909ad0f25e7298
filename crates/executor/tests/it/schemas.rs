//! The journal's lines and the run's events validate against the schemas the executor
//! publishes (`schema::journal_schema`, `schema::events_schema`), for runs that write every
//! kind of journal line and event; and the schemas refuse what the types cannot be.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use plan_executor::schema::{events_schema, journal_schema};
use plan_executor::{
    ApiVersion, ApplyEvent, DryRunPush, DryRunStage, EVENTS_FORMAT_VERSION, Event, Interrupt,
    LineStamp, Options, PollPolicy, Target,
};
use serde_json::{Value, json};

use crate::support::*;

/// The schema as the `jsonschema` crate compiles it, after checking it against the draft's
/// meta-schema: an independent validator, so it does not share the generator's blind spots.
fn validator(schema: schemars::Schema) -> jsonschema::Validator {
    let schema = schema.to_value();
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("not a valid JSON Schema: {e} at {}", e.instance_path());
    }
    jsonschema::draft202012::new(&schema).expect("the schema compiles")
}

fn errors(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// What the runs wrote, checked line by line; the kinds seen are collected.
struct Checked {
    journal: jsonschema::Validator,
    events: jsonschema::Validator,
    line_types: BTreeSet<String>,
    event_kinds: BTreeSet<String>,
}

impl Checked {
    fn new() -> Checked {
        Checked {
            journal: validator(journal_schema()),
            events: validator(events_schema()),
            line_types: BTreeSet::new(),
            event_kinds: BTreeSet::new(),
        }
    }

    fn journal_file(&mut self, path: &str) {
        let text = std::fs::read_to_string(path).expect("journal");
        for line in text.lines() {
            let value: Value = serde_json::from_str(line).expect("a journal line is JSON");
            assert_eq!(
                errors(&self.journal, &value),
                Vec::<String>::new(),
                "{line}"
            );
            self.line_types
                .insert(value["type"].as_str().unwrap_or("?").to_owned());
        }
    }

    fn events(&mut self, events: &[Event]) {
        for event in events {
            let value = LineStamp::now(Some("run"))
                .stamp(event)
                .expect("an event serialises");
            assert_eq!(
                errors(&self.events, &value),
                Vec::<String>::new(),
                "{value}"
            );
            self.event_kinds
                .insert(value["event"].as_str().unwrap_or("?").to_owned());
        }
    }

    fn outcome(&mut self, out: &Outcome) {
        self.events(&out.events);
        self.journal_file(&out.report().journal);
    }
}

/// A run stopped (first interrupt) once its first job is submitted: its events.
async fn stopped_after_first_submission(world: &World, text: &str) -> Vec<Event> {
    let (plan, graph) = plan(text);
    let interrupt = Interrupt::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = tokio::spawn(plan_executor::apply(
        world.api(),
        plan,
        graph,
        settings(&world.state_dir(), fast_options(), false),
        interrupt.clone(),
        tx,
    ));
    let mut events = Vec::new();
    while let Some(event) = rx.recv().await {
        if matches!(event, Event::PushSubmitted { .. }) {
            interrupt.stop();
        }
        events.push(event);
    }
    handle.await.expect("join").expect("start");
    events
}

#[tokio::test]
async fn journals_and_events_of_varied_runs_validate() {
    let mut checked = Checked::new();

    // v2: a missing source fails stage 1 (host logs, not started), then a resume after the
    // file appears (run_resumed, already succeeded pushes), then an unknown host is refused.
    let world = World::new("").await;
    let failed = run(&world, &plan(TWO_STAGES), fast_options(), false).await;
    checked.outcome(&failed);
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let resumed = run(&world, &plan(TWO_STAGES), fast_options(), true).await;
    assert!(resumed.report().succeeded(), "{:#?}", resumed.report());
    checked.outcome(&resumed);
    let refused_text =
        TWO_STAGES.replace(r#"ips = ["10.0.1.1"]"#, r#"ips = ["10.0.1.1", "10.0.9.9"]"#);
    let refused = run(&world, &plan(&refused_text), fast_options(), false).await;
    checked.outcome(&refused);

    // v3, two phases: push_started.
    let v3 = TWO_STAGES.replace("account = \"root\"", "account = \"root\"\napi = \"v3\"");
    let world = World::new("").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let two_phase = run(&world, &plan(&v3), fast_options(), false).await;
    assert!(two_phase.report().succeeded(), "{:#?}", two_phase.report());
    checked.outcome(&two_phase);

    // A job stuck past its deadline: terminated.
    let world =
        World::new("[[fault]]\napi = \"fast_push_file\"\nkind = \"stuck\"\ncount = 1\n").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let (mut stuck_plan, graph) = plan(TWO_STAGES);
    for push in &mut Arc::get_mut(&mut stuck_plan).expect("unique").pushes {
        push.timeout = Some(plan_parser::Setting {
            value: 1,
            origin: plan_parser::Origin::Push,
            span: push.span,
        });
    }
    let options = Options {
        poll: PollPolicy {
            deadline_margin: Duration::from_millis(300),
            ..fast_options().poll
        },
        ..fast_options()
    };
    let stuck = run_with(
        LongJobTimeout(world.api()),
        &(stuck_plan, graph),
        settings(&world.state_dir(), options, false),
        Interrupt::new(),
    )
    .await;
    checked.outcome(&stuck);

    // An interrupt while a job runs.
    let world = World::new("[sim]\nstart_delay_ms = 100\n").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let events = stopped_after_first_submission(&world, TWO_STAGES).await;
    checked.events(&events);

    let lines: Vec<&str> = checked.line_types.iter().map(String::as_str).collect();
    assert_eq!(
        lines,
        [
            "push_attempt_finished",
            "push_finished",
            "push_started",
            "push_submit_failed",
            "push_submitted",
            "push_submitting",
            "push_terminate_requested",
            "run_finished",
            "run_resumed",
            "run_started",
        ]
    );
    let kinds: Vec<&str> = checked.event_kinds.iter().map(String::as_str).collect();
    assert_eq!(
        kinds,
        [
            "interrupted",
            "push_finished",
            "push_progress",
            "push_submitted",
            "push_submitting",
            "push_terminating",
            "run_finished",
            "run_started",
        ]
    );
}

#[test]
fn the_lines_around_a_run_validate_too() {
    let events = validator(events_schema());
    let lines = [
        ApplyEvent::ApplyStarted {
            format_version: EVENTS_FORMAT_VERSION,
            plan: "p".into(),
            api: ApiVersion::V3,
            target: Target::Sandbox,
            endpoint: "http://127.0.0.1:1".into(),
            dry_run: true,
            pushes: 1,
            stages: 1,
        },
        ApplyEvent::DryRun {
            stages: vec![DryRunStage {
                stage: 1,
                pushes: vec![DryRunPush {
                    name: "a".into(),
                    enabled: true,
                    request: json!({"bk_biz_id": 2}),
                }],
            }],
        },
        ApplyEvent::Error {
            format_version: EVENTS_FORMAT_VERSION,
            message: "m".into(),
            help: None,
        },
    ];
    for line in lines {
        let value = LineStamp::now(None).stamp(&line).expect("json");
        assert_eq!(errors(&events, &value), Vec::<String>::new(), "{value}");
    }
    let warning = serde_json::to_value(Event::warning("w")).expect("json");
    assert_eq!(warning, json!({"event": "warning", "message": "w"}));
    let stamped = LineStamp::now(Some("r1"))
        .stamp(&Event::warning("w"))
        .expect("json");
    let ts = stamped["ts"].as_str().expect("ts").to_owned();
    assert_eq!(
        stamped,
        json!({"event": "warning", "message": "w", "ts": ts, "run_id": "r1"})
    );
    assert!(errors(&events, &stamped).is_empty());
    // Unstamped, or stamped with something that is not a UTC time, a line is refused.
    assert!(!errors(&events, &warning).is_empty());
    let mut local = stamped.clone();
    local["ts"] = json!("2026-12-06T12:00:00+08:00");
    assert!(!errors(&events, &local).is_empty());
}

#[test]
fn the_schemas_refuse_what_the_types_cannot_be() {
    let events = validator(events_schema());
    let journal = validator(journal_schema());
    let refused_events = [
        json!({"event": "interrupted", "level": 3}),
        json!({"event": "push_progress", "push": "a", "stage": 1, "job_instance_id": 7,
            "job_status": "running", "hosts_done": 0, "hosts_total": 1}),
        json!({"event": "push_terminating", "push": "a", "job_instance_id": 7, "reason": "boredom"}),
        json!({"event": "apply_started", "format_version": 1, "plan": "p", "api": "v4",
            "target": "sandbox", "endpoint": "e", "dry_run": false, "pushes": 1, "stages": 1}),
        json!({"event": "nonsense"}),
    ];
    for mut value in refused_events {
        value["ts"] = json!("2026-12-06T12:00:00.000Z");
        assert!(!errors(&events, &value).is_empty(), "accepted {value}");
    }
    let refused_lines = [
        json!({"type": "run_finished", "status": "partial", "at": "t"}),
        json!({"type": "push_terminate_requested", "push": "a", "job_instance_id": 7,
            "reason": "boredom", "at": "t"}),
        json!({"type": "push_submitted", "push": "a", "attempt": 1, "at": "t",
            "job": {"api": "v4", "bk_biz_id": 2, "job_instance_id": 7, "step_instance_id": null}}),
    ];
    for value in refused_lines {
        assert!(!errors(&journal, &value).is_empty(), "accepted {value}");
    }
}
