//! `plan apply` following JOB's own rolling batches and gates (issue 16), against a `jobsim`
//! the test starts on loopback (`--endpoint`), so a job left waiting in JOB is still there for
//! the next `plan apply`: without a terminal nothing confirms, the run stops with exit 5 and
//! names `plan apply PLAN --resume --confirm PUSH`, which continues the same job.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::apply::{Fixture, code, text};
use crate::faults::CREDS;
use crate::server::SimServer;

const WORLD: &str = "[[business]]\nid = 2\n";

fn plan(rolling: &str, extra: &str) -> String {
    format!(
        r#"[plan]
name = "roll"
bk_biz_id = 2
account = "root"
api = "v3"

[[push]]
name = "app"
from = {{ hosts = "10.0.0.1", files = ["/data/app.tgz"] }}
to = {{ hosts = "10.0.3.[1:20]", path = "/opt/app/" }}
rolling = {rolling}
{extra}"#
    )
}

/// A fixture with twenty target hosts `10.0.3.1..20` and the source file.
fn fixture(plan: &str, world: &str) -> Fixture {
    let f = Fixture::new(plan, world);
    for i in 1..=20 {
        std::fs::create_dir_all(f.path(&format!("sandbox/hosts/0/10.0.3.{i}"))).expect("mkdir");
    }
    f.write("10.0.0.1", "/data/app.tgz", b"release 9");
    f
}

fn apply(f: &Fixture, url: &str, args: &[&str]) -> Output {
    let mut cmd = f.apply_endpoint(url);
    cmd.args(args);
    for (k, v) in CREDS {
        cmd.env(k, v);
    }
    cmd.env("USER", "release-manager");
    cmd.output().expect("run plan")
}

fn delivered(f: &Fixture) -> Vec<bool> {
    (1..=20)
        .map(|i| f.read(&format!("10.0.3.{i}"), "/opt/app/app.tgz").is_some())
        .collect()
}

/// Every line of the plan's journal.
fn journal(state: &Path) -> Vec<Value> {
    let dir = state.join("runs/roll");
    let path = std::fs::read_dir(&dir)
        .expect("runs")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .expect("a journal");
    std::fs::read_to_string(path)
        .expect("journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

fn operations(sim: &SimServer) -> Vec<i64> {
    sim.requests()
        .iter()
        .filter(|r| r.api == "operate_step_instance")
        .filter_map(|r| r.body["operation_code"].as_i64())
        .collect()
}

/// "1 30% 100%" over 20 hosts is batches of 1, 6 and 13. A host of batch 2 fails once
/// (its agent is abnormal for one execution): JOB pauses after batch 2, batch 3's hosts get
/// nothing, and with no terminal to ask the run ends with exit 5 and the command that goes
/// on. That command retries batch 2's failed host inside the same job (JOB's
/// `RETRY_FAIL_IP`), then batch 3 runs.
#[test]
fn a_failed_batch_pauses_the_job_until_resume_confirm_continues_it() {
    let world = format!("{WORLD}\n[[host]]\nhost = \"0:10.0.3.4\"\nflaky_jobs = 1\n");
    let f = fixture(
        &plan(
            r#"{ expression = "1 30% 100%", mode = "pause-on-failure" }"#,
            "",
        ),
        &world,
    );
    let sim = SimServer::start(&f.path("sandbox"));
    // `-v`: the progress as lines, so the test reads it.
    let out = apply(&f, &sim.url, &["-v"]);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(code(&out), 5, "{said}");
    assert!(said.contains("waiting for confirmation"), "{said}");
    assert!(said.contains("batch 2/3"), "{said}");
    assert!(
        said.contains("batch 2/3 failed, waiting for a confirmation"),
        "the progress names the batch that ran: {said}"
    );
    assert!(!said.contains("batch 3/3"), "batch 3 never started: {said}");
    assert!(said.contains("--resume --confirm app"), "{said}");
    let got = delivered(&f);
    assert!(got[0], "batch 1");
    assert_eq!(
        got[1..7].iter().filter(|d| **d).count(),
        5,
        "batch 2 but its failed host"
    );
    assert!(!got[3], "the failed host");
    assert!(
        got[7..].iter().all(|d| !d),
        "batch 3 receives nothing: {got:?}"
    );
    assert!(operations(&sim).is_empty(), "nothing confirmed");
    let lines = journal(&f.path("state"));
    let batches: Vec<(i64, &str, usize)> = of_type(&lines, "push_batch_finished")
        .iter()
        .map(|l| {
            (
                l["batch"].as_i64().unwrap_or(0),
                l["status"].as_str().unwrap_or(""),
                l["hosts"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(batches, vec![(1, "succeeded", 1), (2, "failed", 6)]);
    let waits = of_type(&lines, "push_awaiting_confirmation");
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0]["push"], "app");
    assert_eq!(waits[0]["point"]["kind"], "batch");
    assert!(waits[0]["point"]["job_instance_id"].as_i64().is_some());

    // Resuming without --confirm asks no one and sends nothing: exit 5 again.
    let again = apply(&f, &sim.url, &["--resume"]);
    assert_eq!(code(&again), 5, "{}", text(&again.stderr));
    // The resumed report lists the batches the first segment saw, from the journal.
    let table = text(&again.stdout);
    assert!(batch_row(&table, "1/3").contains("already done"), "{table}");
    assert!(batch_row(&table, "2/3").contains("failed"), "{table}");
    assert!(operations(&sim).is_empty());
    assert!(delivered(&f)[7..].iter().all(|d| !d));

    // --confirm without --resume is a usage error.
    let usage = apply(&f, &sim.url, &["--confirm", "app"]);
    assert_eq!(code(&usage), 2, "{}", text(&usage.stderr));

    let done = apply(&f, &sim.url, &["--resume", "--confirm", "app"]);
    let said = text(&done.stdout) + &text(&done.stderr);
    assert_eq!(code(&done), 0, "{said}");
    // The report lists each batch as it finished, batch 2 twice, each out of the job's 3.
    assert!(said.contains("batch 3/3"), "{said}");
    assert!(!said.contains("batch 2/4"), "{said}");
    // Batch 1 finished in the first segment: listed from the journal, `already done`.
    let table = text(&done.stdout);
    let rows: Vec<&str> = table.lines().filter(|l| l.contains("  batch ")).collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows[0].contains("batch 1/3") && rows[0].contains("already done"),
        "{table}"
    );
    assert!(
        rows[1].contains("batch 2/3") && rows[1].contains("succeeded"),
        "{table}"
    );
    assert!(
        rows[2].contains("batch 3/3") && rows[2].contains("succeeded"),
        "{table}"
    );
    assert!(delivered(&f).iter().all(|d| *d), "{:?}", delivered(&f));
    assert_eq!(
        operations(&sim),
        vec![2],
        "the failed host again, in the same job"
    );
    assert_eq!(f_submissions(&sim), 1, "one job for the push");
    let lines = journal(&f.path("state"));
    let confirmed = of_type(&lines, "push_confirmed");
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0]["by"], "release-manager");
    assert!(confirmed[0]["at"].as_str().is_some_and(|t| !t.is_empty()));
    // Each batch once per time it finished: batch 2 failed, then succeeded after the retry.
    let batches: Vec<(i64, &str)> = of_type(&lines, "push_batch_finished")
        .iter()
        .map(|l| {
            (
                l["batch"].as_i64().unwrap_or(0),
                l["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        batches,
        vec![
            (1, "succeeded"),
            (2, "failed"),
            (2, "succeeded"),
            (3, "succeeded")
        ]
    );
}

/// The report's row of batch `of` (`2/3`).
fn batch_row<'a>(table: &'a str, of: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.contains(&format!("  batch {of} ")))
        .unwrap_or_else(|| panic!("no row for batch {of}: {table}"))
}

fn f_submissions(sim: &SimServer) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.api == "fast_transfer_file" && r.job_instance_id.is_some())
        .count()
}

/// Manual mode: JOB waits for a user after every batch but the last; each `--confirm`
/// continues one batch (`ROLLING_CONTINUE`).
#[test]
fn manual_mode_waits_after_each_batch_and_each_confirm_continues_one() {
    let f = fixture(
        &plan(r#"{ expression = "10", mode = "manual" }"#, ""),
        WORLD,
    );
    let sim = SimServer::start(&f.path("sandbox"));
    let out = apply(&f, &sim.url, &["--format", "json"]);
    assert_eq!(code(&out), 5, "{}", text(&out.stderr));
    assert_eq!(delivered(&f).iter().filter(|d| **d).count(), 10);
    // NDJSON: where the push waits, and what continues it.
    let events: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect();
    let waiting = events
        .iter()
        .find(|e| e["event"] == "push_awaiting_confirmation")
        .expect("push_awaiting_confirmation");
    assert_eq!(waiting["point"]["batch"], 1);
    assert_eq!(waiting["point"]["batches"], 2);
    let finished = events
        .iter()
        .find(|e| e["event"] == "push_finished")
        .expect("push_finished");
    assert_eq!(finished["report"]["status"], "waiting_for_confirmation");
    // Every target counts, those of the batch still to run included.
    assert_eq!(
        finished["report"]["hosts_total"], 20,
        "{}",
        finished["report"]
    );
    assert_eq!(finished["report"]["hosts_ok"], 10);
    // The last progress says the batch that ran and that JOB waits, not the next batch.
    let progress = events
        .iter()
        .rfind(|e| e["event"] == "push_progress")
        .expect("push_progress");
    assert_eq!(progress["batch"]["index"], 1, "{progress}");
    assert_eq!(progress["batch"]["count"], 2, "{progress}");
    assert_eq!(progress["waiting"], true, "{progress}");
    assert_eq!(finished["report"]["waiting"]["failed"], false);
    let error = finished["report"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("--resume --confirm"), "{error}");
    let done = apply(&f, &sim.url, &["--resume", "--confirm", "app"]);
    let said = text(&done.stdout) + &text(&done.stderr);
    assert_eq!(code(&done), 0, "{said}");
    assert!(delivered(&f).iter().all(|d| *d));
    assert_eq!(operations(&sim), vec![13]);
}

/// A gated push with no terminal stops at its gate (nothing sent for it, exit 5); under
/// `--schedule eager` a push that does not depend on it runs; `--resume --confirm` sends it.
#[test]
fn a_gate_without_a_terminal_stops_the_push_before_anything_is_sent() {
    let text_plan = plan(r#"{ expression = "100%" }"#, "gate = true\n")
        + r#"
[[push]]
name = "free"
from = { hosts = "10.0.0.1", files = ["/data/app.tgz"] }
to = { hosts = "10.0.2.1", path = "/opt/free/" }
"#;
    let f = fixture(&text_plan, WORLD);
    let sim = SimServer::start(&f.path("sandbox"));
    let out = apply(&f, &sim.url, &["--schedule", "eager"]);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(code(&out), 5, "{said}");
    assert!(said.contains("waiting at gate"), "{said}");
    assert!(said.contains("--resume --confirm app"), "{said}");
    assert_eq!(f_submissions(&sim), 1, "only the free push");
    assert!(f.read("10.0.2.1", "/opt/free/app.tgz").is_some());
    assert!(delivered(&f).iter().all(|d| !d));

    // A name the plan does not have is a usage error, before anything is sent.
    let calls = sim.requests().len();
    let unknown = apply(&f, &sim.url, &["--resume", "--confirm", "nope"]);
    assert_eq!(code(&unknown), 2, "{}", text(&unknown.stderr));
    assert!(text(&unknown.stderr).contains("no push `nope`"));
    assert_eq!(sim.requests().len(), calls);

    // `free` waits for nothing: said, and nothing is approved for it.
    let done = apply(
        &f,
        &sim.url,
        &["--resume", "--confirm", "app", "--confirm", "free"],
    );
    assert_eq!(code(&done), 0, "{}", text(&done.stderr));
    assert!(
        text(&done.stderr).contains("`--confirm free`: push `free` did not wait"),
        "{}",
        text(&done.stderr)
    );
    assert!(delivered(&f).iter().all(|d| *d));
    let lines = journal(&f.path("state"));
    let confirmed = of_type(&lines, "push_confirmed");
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0]["point"]["kind"], "gate");
    assert_eq!(confirmed[0]["by"], "release-manager");
}

/// On a terminal `plan apply` asks; `y` goes on and `n` stops as without one (exit 5). The
/// terminal is util-linux's `script` (Debian's essential `bsdutils`), which runs the command
/// on a pseudo-terminal and passes it what the test writes to its stdin.
#[test]
fn on_a_terminal_the_gate_is_asked_and_the_answer_decides() {
    for (answer, exit, delivered_all) in [("n", 5, false), ("y", 0, true)] {
        let f = fixture(&plan(r#"{ expression = "100%" }"#, "gate = true\n"), WORLD);
        let command = format!(
            "{} apply plan.toml --sandbox sandbox --yes --poll-interval 100",
            env!("CARGO_BIN_EXE_plan")
        );
        let mut child = on_a_terminal(&f, &command)
            .spawn()
            .expect("util-linux `script`, which gives the command a pseudo-terminal");
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin
                .write_all(format!("{answer}\n").as_bytes())
                .expect("answer");
        }
        let out = child.wait_with_output().expect("script");
        let said = text(&out.stdout) + &text(&out.stderr);
        assert!(
            said.contains("push app is gated: start it? [y/N]"),
            "{said}"
        );
        assert_eq!(code(&out), exit, "{answer}: {said}");
        assert_eq!(delivered(&f).iter().all(|d| *d), delivered_all, "{answer}");
        let confirmed = of_type(&journal(&f.path("state")), "push_confirmed").len();
        assert_eq!(confirmed, usize::from(delivered_all), "{answer}");
    }
}

/// `line` run on a pseudo-terminal (`script -qec LINE /dev/null`, which passes on its exit
/// code), in the fixture's directory, with a clean environment.
fn on_a_terminal(f: &Fixture, line: &str) -> std::process::Command {
    let mut script = std::process::Command::new("script");
    script
        .args(["-qec", line, "/dev/null"])
        .current_dir(f.path("."))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PLAN_STATE_DIR", f.path("state"))
        .env("NO_COLOR", "1")
        .env("USER", "release-manager")
        .env("TERM", "dumb")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    script
}

/// Mode "ignore-failure": JOB runs every batch and ends the job a success with the failed
/// host's step "ignore error", from which JOB retries nothing inside the job. `retries` then
/// run the failed host again in a new job, instead of an operation JOB refuses.
#[test]
fn ignore_failure_retries_its_failed_hosts_in_a_new_job() {
    let world = format!("{WORLD}\n[[host]]\nhost = \"0:10.0.3.4\"\nflaky_jobs = 1\n");
    let f = fixture(
        &plan(
            r#"{ expression = "10%", mode = "ignore-failure" }"#,
            "retries = 1\n",
        ),
        &world,
    );
    let sim = SimServer::start(&f.path("sandbox"));
    let out = apply(&f, &sim.url, &[]);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(code(&out), 0, "{said}");
    assert!(delivered(&f).iter().all(|d| *d), "{:?}", delivered(&f));
    assert!(operations(&sim).is_empty(), "no retry JOB refuses: {said}");
    assert_eq!(f_submissions(&sim), 2, "the failed host in a new job");
}

/// A dry run says which push waits at a gate, and how it is approved.
#[test]
fn a_dry_run_names_the_gate() {
    let f = fixture(&plan(r#"{ expression = "5" }"#, "gate = true\n"), WORLD);
    let out = f.apply_sandbox(&["--dry-run"]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("waits at its gate: asked on a terminal, else `--resume --confirm app`"),
        "{stdout}"
    );
}
