//! Refresh, `--converge` and `plan drift` (issue 20), the built binary against the sandbox's
//! simulator: half the targets already hold the file, one holds a corrupted copy, the rest
//! nothing. What differs is named exactly, only those hosts get a transfer (counted in the
//! simulator's request log), a plan in place submits no transfer, and drift follows a file
//! changed by hand and restored.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const PLAN: &str = r#"
[plan]
name = "converge"
bk_biz_id = 2
account = "root"

[hosts.src]
ips = ["10.0.0.1"]
[hosts.web]
ips = ["10.0.2.1", "10.0.2.2", "10.0.2.3", "10.0.2.4", "10.0.2.5", "10.0.2.6", "10.0.2.7", "10.0.2.8"]

[[push]]
name = "app"
from = { hosts = "src", files = ["/data/release/app.tar.gz"] }
to = { hosts = "web", path = "/opt/app/" }
"#;

const SOURCE: &str = "10.0.0.1";
const TARGETS: [&str; 8] = [
    "10.0.2.1", "10.0.2.2", "10.0.2.3", "10.0.2.4", "10.0.2.5", "10.0.2.6", "10.0.2.7", "10.0.2.8",
];
const DELIVERED: &str = "opt/app/app.tar.gz";

struct World {
    dir: tempfile::TempDir,
}

impl World {
    /// `.1`–`.4` hold the file, `.5` a copy with one byte changed (same size), `.6`–`.8`
    /// nothing.
    fn new(plan: &str, jobsim_toml: &str) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let world = World { dir };
        std::fs::write(world.path("plan.toml"), plan).expect("plan");
        std::fs::create_dir_all(world.path("sandbox")).expect("sandbox");
        std::fs::write(world.path("sandbox/jobsim.toml"), jobsim_toml).expect("jobsim.toml");
        let body = artifact();
        world.write(SOURCE, "data/release/app.tar.gz", &body);
        for ip in &TARGETS[..4] {
            world.write(ip, DELIVERED, &body);
        }
        let mut corrupted = body.clone();
        corrupted[100] ^= 0xff;
        world.write(TARGETS[4], DELIVERED, &corrupted);
        for ip in &TARGETS[5..] {
            std::fs::create_dir_all(world.host(ip)).expect("host");
        }
        world
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn host(&self, ip: &str) -> PathBuf {
        self.path("sandbox/hosts/0").join(ip)
    }

    fn write(&self, ip: &str, rel: &str, bytes: &[u8]) {
        let path = self.host(ip).join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }

    fn read(&self, ip: &str, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.host(ip).join(rel)).ok()
    }

    fn plan(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_plan"))
            .current_dir(self.dir.path())
            .env("PLAN_NO_PROGRESS", "1")
            .env("NO_COLOR", "1")
            .env("PLAN_STATE_DIR", self.path("state"))
            .env_remove("BK_JOB_ENDPOINT")
            .args(args)
            .output()
            .expect("run plan")
    }

    fn apply_converge(&self) -> Output {
        self.plan(&[
            "apply",
            "plan.toml",
            "--sandbox",
            "sandbox",
            "--converge",
            "--poll-interval",
            "100",
        ])
    }

    fn requests(&self) -> Vec<Value> {
        requests(&self.path("sandbox/.jobsim/requests.jsonl"))
    }

    /// The target hosts of every accepted transfer submission, per submission.
    fn transfers(&self) -> Vec<Vec<String>> {
        self.requests()
            .iter()
            .filter(|r| r["api"] == "fast_push_file" && !r["job_instance_id"].is_null())
            .map(|r| {
                r["body"]["target_server"]["ip_list"]
                    .as_array()
                    .expect("ip_list")
                    .iter()
                    .map(|h| h["ip"].as_str().expect("ip").to_owned())
                    .collect()
            })
            .collect()
    }

    fn script_jobs(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r["api"] == "fast_execute_script" && !r["job_instance_id"].is_null())
            .count()
    }
}

fn requests(log: &Path) -> Vec<Value> {
    match std::fs::read_to_string(log) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", log.display()),
    }
}

fn artifact() -> Vec<u8> {
    (0..64 * 1024u32).map(|i| (i % 251) as u8).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn refresh_json(world: &World) -> Value {
    let out = world.plan(&[
        "show",
        "plan.toml",
        "--refresh",
        "--sandbox",
        "sandbox",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let document: Value = serde_json::from_slice(&out.stdout).expect("json");
    document["refresh"].clone()
}

fn differing(verdict: &Value) -> Vec<(String, String)> {
    verdict["differing"]
        .as_array()
        .map(|hosts| {
            hosts
                .iter()
                .map(|h| {
                    let found = h["files"][0]["found"].as_str().unwrap_or("unreadable");
                    (
                        h["host"].as_str().expect("host").to_owned(),
                        found.to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn show_refresh_names_exactly_the_hosts_that_differ_and_sends_nothing() {
    let world = World::new(PLAN, "");
    let refresh = refresh_json(&world);
    let push = &refresh["pushes"][0];
    assert_eq!(push["push"], "app");
    assert_eq!(push["verdict"], "differs");
    assert_eq!(push["hosts"], 8);
    assert_eq!(
        differing(push),
        vec![
            ("0:10.0.2.5".to_owned(), "different content".to_owned()),
            ("0:10.0.2.6".to_owned(), "missing".to_owned()),
            ("0:10.0.2.7".to_owned(), "missing".to_owned()),
            ("0:10.0.2.8".to_owned(), "missing".to_owned()),
        ]
    );
    // The source and the targets: two script jobs, no transfer.
    assert_eq!(world.script_jobs(), 2);
    assert!(world.transfers().is_empty());
    let out = world.plan(&["show", "plan.toml", "--refresh", "--sandbox", "sandbox"]);
    let shown = text(&out.stdout);
    assert!(shown.contains("app: 4 of 8 hosts differ"), "{shown}");
    assert!(
        shown.contains("0:10.0.2.5: different content /opt/app/app.tar.gz"),
        "{shown}"
    );
    let out = world.plan(&[
        "show",
        "plan.toml",
        "--refresh",
        "--sandbox",
        "sandbox",
        "--format",
        "markdown",
    ]);
    let comment = text(&out.stdout);
    assert!(
        comment.contains("| `app` | 4 of 8 hosts differ |"),
        "{comment}"
    );
}

#[test]
fn converge_sends_only_to_the_hosts_that_differ_then_nothing() {
    let world = World::new(PLAN, "");
    let out = world.apply_converge();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        world.transfers(),
        vec![vec!["10.0.2.5", "10.0.2.6", "10.0.2.7", "10.0.2.8"]]
    );
    for ip in TARGETS {
        assert_eq!(world.read(ip, DELIVERED), Some(artifact()), "{ip}");
    }
    // Applied again: in place, no transfer job, exit 0.
    let out = world.apply_converge();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(world.transfers().len(), 1);
    assert!(
        text(&out.stderr).contains("app: up to date, not pushed"),
        "{}",
        text(&out.stderr)
    );
}

/// A plan already in place still gives a run's outputs: the NDJSON lines of a run whose
/// every push is `up to date`, and a JUnit file with each push a passed case, so a CI job
/// reading either sees the apply.
#[test]
fn a_plan_in_place_still_reports_its_pushes_up_to_date_in_ndjson_and_junit() {
    let world = World::new(PLAN, "");
    let out = world.apply_converge();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = world.plan(&[
        "apply",
        "plan.toml",
        "--sandbox",
        "sandbox",
        "--converge",
        "--format",
        "json",
        "--junit",
        "again.xml",
        "--poll-interval",
        "100",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(world.transfers().len(), 1, "no transfer the second time");
    let events: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "apply_started",
            "run_started",
            "push_finished",
            "run_finished"
        ],
        "{}",
        text(&out.stdout)
    );
    let schema = validator(&["schema", "--output", "events"]);
    for event in &events {
        let problems: Vec<String> = schema.iter_errors(event).map(|e| e.to_string()).collect();
        assert!(problems.is_empty(), "{event}: {problems:#?}");
    }
    let finished = &events[2]["report"];
    assert_eq!(finished["name"], "app");
    assert_eq!(finished["status"], "up_to_date");
    assert_eq!(finished["hosts_total"], 8);
    assert_eq!(finished["hosts_ok"], 8);
    assert_eq!(events[3]["report"]["pushes"][0]["status"], "up_to_date");
    let junit = std::fs::read_to_string(world.path("again.xml")).expect("again.xml written");
    assert!(
        junit.contains("tests=\"1\" failures=\"0\" errors=\"0\""),
        "{junit}"
    );
    assert!(junit.contains("skipped=\"0\""), "{junit}");
    assert!(junit.contains("name=\"app\""), "{junit}");

    // The text report of the same run: the push's line, up to date.
    let out = world.apply_converge();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(
        report
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("app") && l.contains("up to date")),
        "{report}"
    );
    assert!(report.contains("1 up to date"), "{report}");
    assert_eq!(world.transfers().len(), 1);
}

#[test]
fn drift_follows_a_file_changed_by_hand_and_restored() {
    let world = World::new(PLAN, "");
    let drift = |w: &World| w.plan(&["drift", "plan.toml", "--sandbox", "sandbox"]);
    let out = drift(&world);
    assert_eq!(out.status.code(), Some(11), "{}", text(&out.stderr));
    assert_eq!(world.apply_converge().status.code(), Some(0));
    let out = drift(&world);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("in place"));
    world.write(TARGETS[2], DELIVERED, b"edited by hand");
    let out = drift(&world);
    assert_eq!(out.status.code(), Some(11));
    let report = text(&out.stdout);
    assert!(
        report.contains("0:10.0.2.3: different size /opt/app/app.tar.gz"),
        "{report}"
    );
    assert!(!report.contains("0:10.0.2.4"), "{report}");
    world.write(TARGETS[2], DELIVERED, &artifact());
    assert_eq!(drift(&world).status.code(), Some(0));
    assert_eq!(world.transfers().len(), 1, "drift never sends a file");
}

#[test]
fn a_target_whose_agent_is_down_counts_as_differing_and_says_so() {
    let world = World::new(PLAN, "[[host]]\nhost = \"0:10.0.2.1\"\nagent = \"down\"\n");
    let refresh = refresh_json(&world);
    let hosts = refresh["pushes"][0]["differing"]
        .as_array()
        .expect("differing")
        .clone();
    let down = hosts
        .iter()
        .find(|h| h["host"] == "0:10.0.2.1")
        .expect("the host whose agent is down differs");
    assert!(
        down["unreadable"]
            .as_str()
            .is_some_and(|why| !why.is_empty()),
        "{down}"
    );
    let out = world.plan(&["drift", "plan.toml", "--sandbox", "sandbox"]);
    assert_eq!(out.status.code(), Some(11));
    assert!(
        text(&out.stdout).contains("could not be read"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_push_the_refresh_cannot_read_is_always_pushed_with_the_reason() {
    let plan = PLAN.replace("/data/release/app.tar.gz", "/data/release/*.tar.gz");
    let world = World::new(&plan, "");
    let refresh = refresh_json(&world);
    let push = &refresh["pushes"][0];
    assert_eq!(push["verdict"], "cannot_tell");
    assert!(
        push["reason"]
            .as_str()
            .is_some_and(|r| r.contains("wildcard")),
        "{push}"
    );
    assert_eq!(world.script_jobs(), 0);
    let out = world.apply_converge();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(world.transfers(), vec![TARGETS.to_vec()]);
    assert!(text(&out.stderr).contains("pushed to every target"));
}

#[test]
fn a_converge_run_resumed_keeps_its_refresh_and_its_narrowed_targets() {
    // The first run fails on 10.0.2.6 (its agent is down); brought back up, the resumed run
    // sends the same narrowed push again and reads nothing again.
    let world = World::new(PLAN, "[[host]]\nhost = \"0:10.0.2.6\"\nagent = \"down\"\n");
    let out = world.apply_converge();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(world.script_jobs(), 2);
    std::fs::write(world.path("sandbox/jobsim.toml"), "").expect("agent back up");
    let out = world.plan(&[
        "apply",
        "plan.toml",
        "--sandbox",
        "sandbox",
        "--converge",
        "--resume",
        "--poll-interval",
        "100",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("the refresh recorded in the run's journal:"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        world.script_jobs(),
        2,
        "the resumed run reads nothing again"
    );
    let narrowed = vec!["10.0.2.5", "10.0.2.6", "10.0.2.7", "10.0.2.8"];
    assert_eq!(world.transfers(), vec![narrowed.clone(), narrowed]);
    // One journal, its one `refresh` line kept (not read or written again by the resume).
    let journals: Vec<PathBuf> = std::fs::read_dir(world.path("state/runs/converge"))
        .expect("runs dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert_eq!(journals.len(), 1, "{journals:?}");
    let journal = std::fs::read_to_string(&journals[0]).expect("journal");
    let kinds: Vec<String> = journal
        .lines()
        .map(|l| {
            let record: Value = serde_json::from_str(l).expect("journal line");
            record["type"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "refresh").count(),
        1,
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "run_resumed"), "{kinds:?}");
    for ip in TARGETS {
        assert_eq!(world.read(ip, DELIVERED), Some(artifact()), "{ip}");
    }
}

#[test]
fn a_refresh_job_refuses_stops_converge_unless_the_fallback_is_asked() {
    let world = World::new(
        PLAN,
        "[[fault]]\napi = \"fast_execute_script\"\nkind = \"job_error\"\ncode = 1244010\n",
    );
    let out = world.apply_converge();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("cannot converge: JOB refused the refresh script"),
        "{said}"
    );
    assert!(said.contains("--converge-fallback"), "{said}");
    assert!(world.transfers().is_empty(), "nothing sent");
    let out = world.plan(&[
        "apply",
        "plan.toml",
        "--sandbox",
        "sandbox",
        "--converge",
        "--converge-fallback",
        "--poll-interval",
        "100",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("warning: the refresh failed"));
    assert_eq!(world.transfers(), vec![TARGETS.to_vec()]);
}

#[test]
fn drift_says_once_why_jobs_refused_the_refresh() {
    let world = World::new(
        PLAN,
        "[[fault]]\napi = \"fast_execute_script\"\nkind = \"job_error\"\ncode = 1244010\n",
    );
    let out = world.plan(&["drift", "plan.toml", "--sandbox", "sandbox"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("cannot refresh what the targets hold: JOB refused the refresh script"),
        "{said}"
    );
    assert_eq!(said.matches("1244010").count(), 1, "{said}");
}

/// A `REGEX:` source names its files only when JOB sends them, even a pattern without a
/// wildcard character: listed as "cannot tell", it does not make `plan drift` exit 11.
#[test]
fn drift_lists_a_regex_source_without_counting_it() {
    let plan = PLAN.replace(
        "/data/release/app.tar.gz",
        r"/data/release/REGEX:^app\\.tar\\.gz$",
    );
    let world = World::new(&plan, "");
    let out = world.plan(&[
        "apply",
        "plan.toml",
        "--sandbox",
        "sandbox",
        "--poll-interval",
        "100",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = world.plan(&["drift", "plan.toml", "--sandbox", "sandbox"]);
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}{}", text(&out.stderr));
    assert!(said.contains("is a REGEX: pattern"), "{said}");
}

#[test]
fn drift_without_a_target_says_where_to_read() {
    let world = World::new(PLAN, "");
    let out = world.plan(&["drift", "plan.toml"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).contains("--sandbox DIR"),
        "{}",
        text(&out.stderr)
    );
}

/// `app` as in [`PLAN`], and `copy`, whose every target already holds its file.
const TWO_PUSHES: &str = r#"
[[push]]
name = "copy"
from = { hosts = "src", files = ["/data/release/app.tar.gz"] }
to = { hosts = "web", path = "/srv/copy/" }
"#;

fn validator(args: &[&str]) -> jsonschema::Validator {
    let out = Command::new(env!("CARGO_BIN_EXE_plan"))
        .args(args)
        .output()
        .expect("plan schema");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let schema: Value = serde_json::from_slice(&out.stdout).expect("schema json");
    jsonschema::validator_for(&schema).expect("valid schema")
}

#[test]
fn an_up_to_date_push_is_reported_up_to_date_and_the_journal_holds_each_refresh() {
    let world = World::new(&format!("{PLAN}{TWO_PUSHES}"), "");
    for ip in TARGETS {
        world.write(ip, "srv/copy/app.tar.gz", &artifact());
    }
    let out = world.plan(&[
        "apply",
        "plan.toml",
        "--sandbox",
        "sandbox",
        "--converge",
        "--junit",
        "junit.xml",
        "--poll-interval",
        "100",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        world.transfers(),
        vec![vec!["10.0.2.5", "10.0.2.6", "10.0.2.7", "10.0.2.8"]],
        "`copy` is not a JOB job"
    );
    // JUnit: in place is a pass (Ansible's "ok"), not a skipped test case.
    let junit = std::fs::read_to_string(world.path("junit.xml")).expect("junit.xml");
    assert!(junit.contains("skipped=\"0\""), "{junit}");
    assert!(junit.contains("failures=\"0\""), "{junit}");
    let report = text(&out.stdout);
    let line = report
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("copy"))
        .unwrap_or_else(|| panic!("no report line for `copy`: {report}"));
    assert!(line.contains("up to date"), "{line}");
    assert!(!report.contains("disabled"), "{report}");

    // The journal: one `refresh` line per push, with its verdict and differing hosts,
    // written before the first submission; every line valid against the schema.
    let runs = world.path("state/runs/converge");
    let journal = std::fs::read_dir(&runs)
        .expect("runs dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("a journal");
    let records: Vec<Value> = std::fs::read_to_string(&journal)
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("journal line"))
        .collect();
    let schema = validator(&["schema", "--output", "journal"]);
    for record in &records {
        let problems: Vec<String> = schema.iter_errors(record).map(|e| e.to_string()).collect();
        assert!(problems.is_empty(), "{record}: {problems:#?}");
    }
    let position = |kind: &str, push: &str| {
        records
            .iter()
            .position(|r| r["type"] == kind && r["push"] == push)
    };
    let app = position("refresh", "app").expect("app's refresh");
    let copy = position("refresh", "copy").expect("copy's refresh");
    let first_submission = records
        .iter()
        .position(|r| r["type"] == "push_submitting")
        .expect("a submission");
    assert!(app < first_submission && copy < first_submission);
    assert_eq!(records[copy]["verdict"]["verdict"], "up_to_date");
    assert_eq!(records[app]["verdict"]["verdict"], "differs");
    assert_eq!(
        differing(&records[app]["verdict"])
            .into_iter()
            .map(|(host, _)| host)
            .collect::<Vec<_>>(),
        ["0:10.0.2.5", "0:10.0.2.6", "0:10.0.2.7", "0:10.0.2.8"]
    );
    assert!(
        !runs.join("converge-refresh.json").exists(),
        "the journal is the one record"
    );
}

#[test]
fn ndjson_reports_an_up_to_date_push_as_up_to_date() {
    let world = World::new(&format!("{PLAN}{TWO_PUSHES}"), "");
    for ip in TARGETS {
        world.write(ip, "srv/copy/app.tar.gz", &artifact());
    }
    let out = world.plan(&[
        "apply",
        "plan.toml",
        "--sandbox",
        "sandbox",
        "--converge",
        "--format",
        "json",
        "--poll-interval",
        "100",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let events = validator(&["schema", "--output", "events"]);
    let mut copy_status = None;
    for line in text(&out.stdout).lines() {
        let event: Value = serde_json::from_str(line).expect(line);
        let problems: Vec<String> = events.iter_errors(&event).map(|e| e.to_string()).collect();
        assert!(problems.is_empty(), "{line}: {problems:#?}");
        if event["event"] == "push_finished" && event["report"]["name"] == "copy" {
            copy_status = Some(event["report"]["status"].clone());
        }
    }
    assert_eq!(
        copy_status,
        Some(Value::from("up_to_date")),
        "{}",
        text(&out.stdout)
    );
}

/// A refresh that holds every verdict: `app` differs (a host's agent down among them),
/// `kept` is up to date, `logs` cannot tell (a wildcard).
const EVERY_VERDICT: &str = r#"
[[push]]
name = "kept"
from = { hosts = "src", files = ["/data/release/app.tar.gz"] }
to = { hosts = ["10.0.2.1", "10.0.2.2"], path = "/srv/copy/" }

[[push]]
name = "logs"
from = { hosts = "src", files = ["/data/release/*.tar.gz"] }
to = { hosts = "web", path = "/srv/logs/" }
"#;

#[test]
fn show_and_diff_refresh_json_validate_against_their_schemas() {
    let world = World::new(
        &format!("{PLAN}{EVERY_VERDICT}"),
        "[[host]]\nhost = \"0:10.0.2.6\"\nagent = \"down\"\n",
    );
    for ip in &TARGETS[..2] {
        world.write(ip, "srv/copy/app.tar.gz", &artifact());
    }
    std::fs::write(world.path("old.toml"), PLAN).expect("old plan");
    for (output, args) in [
        ("show", &["show", "plan.toml"][..]),
        ("diff", &["diff", "old.toml", "plan.toml"][..]),
    ] {
        let mut args = args.to_vec();
        args.extend(["--refresh", "--sandbox", "sandbox", "--format", "json"]);
        let out = world.plan(&args);
        assert!(out.status.success(), "{output}: {}", text(&out.stderr));
        let document: Value = serde_json::from_slice(&out.stdout).expect("json");
        let verdicts: Vec<&str> = document["refresh"]["pushes"]
            .as_array()
            .expect("refreshed pushes")
            .iter()
            .map(|p| p["verdict"].as_str().expect("verdict"))
            .collect();
        assert_eq!(
            verdicts,
            ["differs", "up_to_date", "cannot_tell"],
            "{output}: {document}"
        );
        let schema = validator(&["schema", "--output", output]);
        let problems: Vec<String> = schema
            .iter_errors(&document)
            .map(|e| e.to_string())
            .collect();
        assert!(problems.is_empty(), "{output}: {problems:#?}");
        // The schema describes the object, it does not merely allow any: a count that is not
        // a number and a host without its name are refused.
        let mut wrong = document.clone();
        wrong["refresh"]["pushes"][1]["hosts"] = "eight".into();
        assert!(!schema.is_valid(&wrong), "{output}");
        let mut wrong = document.clone();
        wrong["refresh"]["pushes"][0]["differing"][0]
            .as_object_mut()
            .expect("a differing host")
            .remove("host");
        assert!(!schema.is_valid(&wrong), "{output}");
    }
}

/// v3, hosts CMDB knows: `app` goes to a dynamic group (`.1` holds the file, `.5` a corrupted
/// copy, `.6` nothing), `by-id` to two host ids (`.2` holds it, `.7` nothing).
const CMDB_PLAN: &str = r#"
[plan]
name = "converge"
bk_biz_id = 2
account = "root"
api = "v3"

[hosts.src]
ips = ["10.0.0.1"]
[hosts.web]
dynamic_groups = ["g-web"]
[hosts.pinned]
host_ids = [2002, 2007]

[[push]]
name = "app"
from = { hosts = "src", files = ["/data/release/app.tar.gz"] }
to = { hosts = "web", path = "/opt/app/" }

[[push]]
name = "by-id"
from = { hosts = "src", files = ["/data/release/app.tar.gz"] }
to = { hosts = "pinned", path = "/opt/app/" }
"#;

const CMDB_WORLD: &str = r#"
[[business]]
id = 2
dynamic_groups = { g-web = ["0:10.0.2.1", "0:10.0.2.5", "0:10.0.2.6"] }

[[host]]
host = "0:10.0.2.1"
host_id = 2001
[[host]]
host = "0:10.0.2.2"
host_id = 2002
[[host]]
host = "0:10.0.2.5"
host_id = 2005
[[host]]
host = "0:10.0.2.6"
host_id = 2006
[[host]]
host = "0:10.0.2.7"
host_id = 2007
"#;

/// The `host_id_list` of every accepted v3 transfer, per submission.
fn transfers_by_id(world: &World) -> Vec<Vec<i64>> {
    world
        .requests()
        .iter()
        .filter(|r| r["api"] == "fast_transfer_file" && !r["job_instance_id"].is_null())
        .map(|r| {
            let server = &r["body"]["target_server"];
            assert!(
                server["ip_list"].as_array().is_none_or(Vec::is_empty),
                "{server}"
            );
            server["host_id_list"]
                .as_array()
                .expect("host_id_list")
                .iter()
                .map(|id| id.as_i64().expect("host id"))
                .collect()
        })
        .collect()
}

#[test]
fn hosts_named_by_id_or_through_cmdb_are_refreshed_and_converged_by_id_over_v3() {
    let world = World::new(CMDB_PLAN, CMDB_WORLD);
    let refresh = refresh_json(&world);
    let verdicts: Vec<(Value, Vec<(String, String)>)> = refresh["pushes"]
        .as_array()
        .expect("pushes")
        .iter()
        .map(|p| (p["verdict"].clone(), differing(p)))
        .collect();
    let host = |h: &str, found: &str| (h.to_owned(), found.to_owned());
    assert_eq!(
        verdicts,
        vec![
            (
                Value::from("differs"),
                vec![
                    host("host_id:2005", "different content"),
                    host("host_id:2006", "missing")
                ]
            ),
            (
                Value::from("differs"),
                vec![host("host_id:2007", "missing")]
            ),
        ],
        "{refresh}"
    );
    // The script jobs read the targets by id too.
    let by_id = world
        .requests()
        .iter()
        .filter(|r| r["api"] == "fast_execute_script" && !r["job_instance_id"].is_null())
        .filter(|r| r["body"]["target_server"]["host_id_list"].is_array())
        .count();
    assert_eq!(by_id, 2, "the group's job and the pinned hosts' job");

    let out = world.apply_converge();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(transfers_by_id(&world), vec![vec![2005, 2006], vec![2007]]);
    for ip in ["10.0.2.1", "10.0.2.2", "10.0.2.5", "10.0.2.6", "10.0.2.7"] {
        assert_eq!(world.read(ip, DELIVERED), Some(artifact()), "{ip}");
    }
    // Hosts the plan does not name are not touched.
    assert_eq!(world.read("10.0.2.8", DELIVERED), None);

    let out = world.apply_converge();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(transfers_by_id(&world).len(), 2, "in place: nothing sent");
    let out = world.plan(&["drift", "plan.toml", "--sandbox", "sandbox"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn a_group_cmdb_cannot_resolve_cannot_tell_and_says_why() {
    let world = World::new(&CMDB_PLAN.replace("g-web", "g-gone"), CMDB_WORLD);
    let refresh = refresh_json(&world);
    let app = &refresh["pushes"][0];
    assert_eq!(app["verdict"], "cannot_tell", "{app}");
    let reason = app["reason"].as_str().expect("reason");
    assert!(
        reason.contains("CMDB could not resolve its dynamic group g-gone"),
        "{reason}"
    );
    assert_eq!(refresh["pushes"][1]["verdict"], "differs", "{refresh}");
}

#[test]
fn a_v2_dynamic_group_is_refreshed_and_converged_by_address() {
    let v2 = PLAN.replace(
        "ips = [\"10.0.2.1\", \"10.0.2.2\", \"10.0.2.3\", \"10.0.2.4\", \"10.0.2.5\", \"10.0.2.6\", \"10.0.2.7\", \"10.0.2.8\"]",
        "dynamic_groups = [\"g-web\"]",
    );
    assert_ne!(v2, PLAN);
    let world = World::new(&v2, CMDB_WORLD);
    let refresh = refresh_json(&world);
    assert_eq!(
        differing(&refresh["pushes"][0]),
        vec![
            ("0:10.0.2.5".to_owned(), "different content".to_owned()),
            ("0:10.0.2.6".to_owned(), "missing".to_owned()),
        ],
        "{refresh}"
    );
    let out = world.apply_converge();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(world.transfers(), vec![vec!["10.0.2.5", "10.0.2.6"]]);
    for ip in ["10.0.2.1", "10.0.2.5", "10.0.2.6"] {
        assert_eq!(world.read(ip, DELIVERED), Some(artifact()), "{ip}");
    }
}

/// `hotfix` writes another `app.tar.gz` on `.1`, and `app` runs after it: the refresh, done
/// before the run, finds `.1` up to date for `app`; `hotfix` then changes that file.
const HOTFIX: &str = r#"
[[push]]
name = "hotfix"
from = { hosts = "src", files = ["/data/hotfix/app.tar.gz"] }
to = { hosts = "10.0.2.1", path = "/opt/app/" }
"#;

#[test]
fn a_target_changed_after_the_refresh_is_not_pushed_and_the_run_says_it_was_skipped() {
    let plan = PLAN.replace(
        "to = { hosts = \"web\", path = \"/opt/app/\" }",
        "to = { hosts = \"web\", path = \"/opt/app/\" }\nafter = [\"hotfix\"]",
    );
    let world = World::new(&format!("{plan}{HOTFIX}"), "");
    let mut hotfix = artifact();
    hotfix[7] ^= 0xff;
    world.write(SOURCE, "data/hotfix/app.tar.gz", &hotfix);

    let out = world.apply_converge();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // `hotfix` ran first, on `.1` only; `app` then went to the hosts that differed at the
    // refresh, not to `.1`, which held its file then.
    assert_eq!(
        world.transfers(),
        vec![
            vec!["10.0.2.1"],
            vec!["10.0.2.5", "10.0.2.6", "10.0.2.7", "10.0.2.8"]
        ]
    );
    for ip in &TARGETS[1..] {
        assert_eq!(world.read(ip, DELIVERED), Some(artifact()), "{ip}");
    }
    assert_eq!(world.read(TARGETS[0], DELIVERED), Some(hotfix));
    let said = text(&out.stderr);
    assert!(
        said.contains(
            "app: 4 hosts differ, pushed to them only; not pushed, up to date at the refresh: \
             0:10.0.2.1, 0:10.0.2.2, 0:10.0.2.3, 0:10.0.2.4"
        ),
        "{said}"
    );
    // What the run could not see, the next refresh does: drift names the changed host.
    let out = world.plan(&["drift", "plan.toml", "--sandbox", "sandbox"]);
    assert_eq!(out.status.code(), Some(11), "{}", text(&out.stdout));
    let report = text(&out.stdout);
    assert!(
        report.contains("0:10.0.2.1: different content /opt/app/app.tar.gz"),
        "{report}"
    );
}
