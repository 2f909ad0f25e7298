//! Batches the plan cuts under v2 (issue 16): a push with `rolling` sends its static targets
//! one job per batch, in order, named `batch i/N`; `max_failed` stops the push once more
//! hosts failed than it allows, and `--resume` sends only what did not succeed; `retries`
//! stay inside their batch.

use serde_json::Value;

use crate::apply::{Fixture, code, task_base, text};
use crate::schema::{plan_stdout, validator, violations};

/// Every value validates against `plan schema --output KIND`.
fn assert_valid(kind: &str, values: &[Value]) {
    let schema = validator(
        &serde_json::from_str(&plan_stdout(&["schema", "--output", kind])).expect("json"),
    );
    for value in values {
        let problems = violations(&schema, value);
        assert!(problems.is_empty(), "{value}: {problems:#?}");
    }
}

/// Twenty targets `10.0.3.1`..`10.0.3.20`, in batches of five.
fn plan(rolling: &str, extra: &str) -> String {
    format!(
        r#"[plan]
name = "roll"
bk_biz_id = 2
account = "root"
api = "v2"

[[push]]
name = "app"
from = {{ hosts = "10.0.0.1", files = ["/data/app.tgz"] }}
to = {{ hosts = "10.0.3.[1:20]", path = "/opt/app/" }}
rolling = {rolling}
{extra}"#
    )
}

fn hosts() -> Vec<String> {
    (1..=20).map(|i| format!("10.0.3.{i}")).collect()
}

fn fixture(rolling: &str, extra: &str, world: &str) -> Fixture {
    let f = Fixture::new(
        &plan(rolling, extra),
        &format!("[[business]]\nid = 2\n{world}"),
    );
    for host in hosts() {
        std::fs::create_dir_all(f.path("sandbox/hosts/0").join(host)).expect("mkdir");
    }
    f.write("10.0.0.1", "/data/app.tgz", b"release 4.0");
    f
}

/// Accepted `fast_push_file` submissions, as (task name without the run tag, target hosts).
fn submissions(f: &Fixture) -> Vec<(String, Vec<String>)> {
    f.requests()
        .iter()
        .filter(|r| r["api"] == "fast_push_file" && !r["job_instance_id"].is_null())
        .map(|r| {
            let targets = r["body"]["target_server"]["ip_list"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|h| h["ip"].as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            (task_base(&r["body"]["task_name"]).to_owned(), targets)
        })
        .collect()
}

fn names(subs: &[(String, Vec<String>)]) -> Vec<&str> {
    subs.iter().map(|(name, _)| name.as_str()).collect()
}

fn delivered(f: &Fixture) -> Vec<bool> {
    hosts()
        .iter()
        .map(|h| f.read(h, "/opt/app/app.tgz").is_some())
        .collect()
}

fn journal_lines(f: &Fixture) -> Vec<Value> {
    let dir = f.path("state/runs/roll");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("runs dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let text = std::fs::read_to_string(files.last().expect("a journal")).expect("journal");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("journal line"))
        .collect()
}

/// `(type, batch index)` of the journal's batch lines, in order.
fn batch_lines(lines: &[Value]) -> Vec<(String, i64)> {
    lines
        .iter()
        .filter_map(|l| {
            let index = l["batch"]["index"].as_i64()?;
            assert_eq!(l["batch"]["count"], 4, "{l}");
            Some((l["type"].as_str().unwrap_or_default().to_owned(), index))
        })
        .collect()
}

/// `max_failed = 1` and two hosts of batch 2 down: batch 2 passes the threshold, so batches
/// 3 and 4 are never submitted and the push fails naming the threshold and the count. With
/// the hosts back, `--resume` sends batch 2 again and then 3 and 4, never batch 1.
#[test]
fn the_threshold_stops_the_batches_and_resume_sends_only_what_did_not_succeed() {
    let down = "[[host]]\nhost = \"0:10.0.3.7\"\nagent = \"down\"\n\
                [[host]]\nhost = \"0:10.0.3.8\"\nagent = \"down\"\n";
    let f = fixture(r#"{ expression = "5", max_failed = 1 }"#, "", down);

    let out = f.apply_sandbox(&["--yes"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(code(&out), 3, "{stdout}{stderr}");
    assert!(
        stderr.contains(
            "2 of 20 target hosts failed after batch 2/4, more than `max_failed = 1` allows"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("batches 3 to 4 of 4 were not submitted"),
        "{stderr}"
    );
    assert!(
        stderr.contains("failed on 2 of 20 hosts (10 of them in batches not sent)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("batch 3/4") && stdout.contains("not started"),
        "{stdout}"
    );
    assert_eq!(
        names(&submissions(&f)),
        ["roll/app batch 1/4", "roll/app batch 2/4"],
        "batch 3 is never submitted"
    );
    let expected: Vec<bool> = (1..=20).map(|i| i <= 10 && i != 7 && i != 8).collect();
    assert_eq!(delivered(&f), expected);

    // The hosts are back: the resume sends batch 2 (whole: no `retries`), then 3 and 4.
    std::fs::write(f.path("sandbox/jobsim.toml"), "[[business]]\nid = 2\n").expect("world");
    let out = f.apply_sandbox(&["--yes", "--resume"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let subs = submissions(&f);
    assert_eq!(
        names(&subs),
        [
            "roll/app batch 1/4",
            "roll/app batch 2/4",
            "roll/app batch 2/4",
            "roll/app batch 3/4",
            "roll/app batch 4/4"
        ]
    );
    assert_eq!(subs[4].1.first().map(String::as_str), Some("10.0.3.16"));
    assert_eq!(subs[4].1.len(), 5);
    assert!(delivered(&f).iter().all(|d| *d), "every host has the file");
    let out_text = text(&out.stdout);
    assert!(out_text.contains("already done"), "{out_text}");

    let lines = journal_lines(&f);
    let submitting: Vec<i64> = batch_lines(&lines)
        .into_iter()
        .filter(|(kind, _)| kind == "push_submitting")
        .map(|(_, index)| index)
        .collect();
    assert_eq!(submitting, [1, 2, 2, 3, 4]);
    let finished: Vec<i64> = batch_lines(&lines)
        .into_iter()
        .filter(|(kind, _)| kind == "push_attempt_finished")
        .map(|(_, index)| index)
        .collect();
    assert_eq!(finished, [1, 2, 2, 3, 4]);
    assert_valid("journal", &lines);
}

/// `retries` run again only the failed hosts of their batch, before the next batch: a host
/// whose agent fails its first job gets a second job of batch 2 of its own.
#[test]
fn retries_stay_inside_their_batch() {
    let flaky = "[[host]]\nhost = \"0:10.0.3.7\"\nflaky_jobs = 1\n";
    let f = fixture(r#"{ expression = "5" }"#, "retries = 1\n", flaky);
    let out = f.apply_sandbox(&["--yes", "--format", "json"]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}{}", text(&out.stderr));
    let subs = submissions(&f);
    assert_eq!(
        names(&subs),
        [
            "roll/app batch 1/4",
            "roll/app batch 2/4",
            "roll/app batch 2/4",
            "roll/app batch 3/4",
            "roll/app batch 4/4"
        ]
    );
    assert_eq!(
        subs[2].1,
        ["10.0.3.7"],
        "the retry sends to the failed host only"
    );
    assert!(delivered(&f).iter().all(|d| *d));

    // The push's report has a line per batch; progress events name the batch.
    let events: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let report = events
        .iter()
        .find(|e| e["event"] == "push_finished")
        .map(|e| &e["report"])
        .expect("push_finished");
    let batches = report["batches"].as_array().expect("batches");
    assert_eq!(batches.len(), 4, "{report}");
    assert!(
        batches
            .iter()
            .all(|b| b["status"] == "succeeded" && b["hosts_ok"] == 5),
        "{report}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "push_submitting" && e["batch"]["index"] == 3),
        "{stdout}"
    );
    assert_valid("events", &events);
}

/// The text report shows batches as batches and attempts only where a batch was retried:
/// batch 2's two jobs are its attempts, the other batches' single jobs are not.
#[test]
fn the_report_lists_attempts_only_for_a_retried_batch() {
    let flaky = "[[host]]\nhost = \"0:10.0.3.7\"\nflaky_jobs = 1\n";
    let f = fixture(r#"{ expression = "5" }"#, "retries = 1\n", flaky);
    let out = f.apply_sandbox(&["--yes"]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}{}", text(&out.stderr));
    let attempts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("  attempt "))
        .collect();
    assert_eq!(attempts.len(), 2, "{stdout}");
    assert!(
        attempts[0].contains("attempt 2") && attempts[0].contains("job, batch 2/4"),
        "{stdout}"
    );
    assert!(
        attempts[1].contains("attempt 3") && attempts[1].contains("job, batch 2/4"),
        "{stdout}"
    );
    assert!(
        attempts[1].contains("1/0"),
        "the retry reached the failed host: {stdout}"
    );
    assert_eq!(stdout.matches("  batch ").count(), 4, "{stdout}");

    // `plan report`: the push's batches and its one retry, a line per batch.
    let out = f
        .plan()
        .args(["report", "plan.toml"])
        .output()
        .expect("plan report");
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}{}", text(&out.stderr));
    assert!(report.contains("(4 batches, 1 retry)"), "{report}");
    assert!(!report.contains("attempts:"), "{report}");
    for (batch, line) in [
        ("1/4", "batch 1/4 succeeded: job "),
        ("2/4", "5/0 hosts ok/failed, after 1 retry"),
        ("3/4", "batch 3/4 succeeded: job "),
        ("4/4", "batch 4/4 succeeded: job "),
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.contains(&format!("batch {batch} ")) && l.contains(line)),
            "batch {batch}: {report}"
        );
    }
}

/// Without `max_failed`, `"ignore-failure"` sends every batch as JOB's mode would; the push
/// still fails, naming the hosts that did not get the files.
#[test]
fn ignore_failure_sends_every_batch_and_the_push_fails() {
    let down = "[[host]]\nhost = \"0:10.0.3.2\"\nagent = \"down\"\n";
    let f = fixture(r#"{ expression = "5", mode = "ignore-failure" }"#, "", down);
    let out = f.apply_sandbox(&["--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 3, "{}{stderr}", text(&out.stdout));
    assert_eq!(submissions(&f).len(), 4, "every batch is sent");
    // A batch is not an attempt: four batch rows, no attempt rows.
    let stdout = text(&out.stdout);
    assert_eq!(stdout.matches("  batch ").count(), 4, "{stdout}");
    assert!(!stdout.contains("attempt"), "{stdout}");
    let expected: Vec<bool> = (1..=20).map(|i| i != 2).collect();
    assert_eq!(delivered(&f), expected);
    assert!(
        stderr.contains("1 of 20 target hosts failed; every batch was sent"),
        "{stderr}"
    );
}

/// Killed (`kill -9`) while batch 2's job runs in a simulator that outlives the process, as
/// JOB does: `--resume` re-attaches to that job by its id (batch 2 is not submitted again,
/// batch 1 not at all) and sends batch 3, so each batch's job exists exactly once.
#[test]
fn killed_during_a_batch_then_resumed_reattaches_its_job_and_sends_the_rest() {
    let f = fixture(
        r#"{ expression = "7" }"#,
        "",
        "[sim]\nstart_delay_ms = 1500\n",
    );
    let server = crate::server::SimServer::start(&f.path("sandbox"));
    let apply = |extra: &[&str]| {
        let mut cmd = f.plan();
        cmd.args(["apply", "plan.toml", "--endpoint", &server.url, "--yes"])
            .args(["--poll-interval", "100", "--format", "json"])
            .args(extra)
            .env("BK_APP_CODE", "app")
            .env("BK_APP_SECRET", "e2e-secret-value")
            .env("BK_USERNAME", "admin");
        cmd
    };
    let mut child = apply(&[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn plan");
    // The journal says batch 2's job exists before the process does anything else with it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !journal_lines_so_far(&f)
        .iter()
        .any(|l| l["type"] == "push_submitted" && l["batch"]["index"] == 2)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "batch 2 never submitted"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    let _ = child.wait();

    let out = apply(&["--resume"]).output().expect("run plan");
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}{}", text(&out.stderr));
    let requests: Vec<Value> = server
        .requests()
        .into_iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    let submitted: Vec<&str> = requests
        .iter()
        .filter(|r| r["api"] == "fast_push_file" && !r["job_instance_id"].is_null())
        .map(|r| task_base(&r["body"]["task_name"]))
        .collect();
    assert_eq!(
        submitted,
        [
            "roll/app batch 1/3",
            "roll/app batch 2/3",
            "roll/app batch 3/3"
        ],
        "each batch's job exactly once"
    );
    assert!(delivered(&f).iter().all(|d| *d));
    let events: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        events.iter().any(|e| e["event"] == "push_reattached"),
        "{stdout}"
    );
    let report = events
        .iter()
        .find(|e| e["event"] == "push_finished")
        .map(|e| &e["report"])
        .expect("push_finished");
    let statuses: Vec<&str> = report["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| b["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        statuses,
        ["already_succeeded", "succeeded", "succeeded"],
        "{report}"
    );
}

/// The journal's lines as far as they are written (a torn last line is left out).
fn journal_lines_so_far(f: &Fixture) -> Vec<Value> {
    let Ok(dir) = std::fs::read_dir(f.path("state/runs/roll")) else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// Mode `"manual"`: a person confirms before each batch after the first. Without a terminal
/// no one is asked, so the run sends batch 1 and stops before batch 2 (exit 5, nothing of it
/// sent) naming the command that approves; that command sends batch 2, and asks again before
/// batch 3.
#[test]
fn manual_mode_waits_before_each_batch_until_confirmed() {
    let f = fixture(r#"{ expression = "10 5", mode = "manual" }"#, "", "");
    let out = f.apply_sandbox(&["--yes"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(code(&out), 5, "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("--resume --confirm app"),
        "{stdout}{stderr}"
    );
    assert_eq!(names(&submissions(&f)), ["roll/app batch 1/3"]);
    let expected: Vec<bool> = (1..=20).map(|i| i <= 10).collect();
    assert_eq!(delivered(&f), expected);

    let out = f.apply_sandbox(&["--yes", "--resume", "--confirm", "app"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(code(&out), 5, "{stdout}{stderr}");
    assert_eq!(
        names(&submissions(&f)),
        ["roll/app batch 1/3", "roll/app batch 2/3"],
        "one confirmation, one batch"
    );
    let out = f.apply_sandbox(&["--yes", "--resume", "--confirm", "app"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(delivered(&f).iter().all(|d| *d));
    let lines = journal_lines(&f);
    let confirmed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "push_confirmed")
        .map(|l| &l["point"])
        .collect();
    assert_eq!(
        confirmed,
        [
            &serde_json::json!({"kind": "next_batch", "batch": 2, "batches": 3}),
            &serde_json::json!({"kind": "next_batch", "batch": 3, "batches": 3})
        ]
    );
    assert!(
        lines
            .iter()
            .filter(|l| l["type"] == "push_confirmed")
            .all(|l| l["by"].as_str().is_some_and(|by| !by.is_empty()))
    );
}

/// A dry run says how the plan will send a batched push: its batches, one job each.
#[test]
fn a_dry_run_names_the_batches() {
    let f = fixture(r#"{ expression = "1 30% 100%" }"#, "", "");
    let out = f.apply_sandbox(&["--dry-run"]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("in 3 batches (1, 6, 13), one job each, task `roll/app batch 1/3`"),
        "{stdout}"
    );
    assert!(submissions(&f).is_empty());
}

/// Without `max_failed`, the default mode `"pause-on-failure"` stops after the first batch
/// with a failed host, as JOB's rolling would: nothing reaches the later batches.
#[test]
fn pause_on_failure_stops_after_the_failed_batch() {
    let down = "[[host]]\nhost = \"0:10.0.3.3\"\nagent = \"down\"\n";
    let f = fixture(r#"{ expression = "5" }"#, "", down);
    let out = f.apply_sandbox(&["--yes"]);
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 3, "{}{stderr}", text(&out.stdout));
    assert!(
        stderr.contains("1 target host of batch 1/4 failed, and rolling mode \"pause-on-failure\" stops after a batch with a failure; batches 2 to 4 of 4 were not submitted"),
        "{stderr}"
    );
    assert_eq!(names(&submissions(&f)), ["roll/app batch 1/4"]);
    let expected: Vec<bool> = (1..=20).map(|i| i <= 5 && i != 3).collect();
    assert_eq!(delivered(&f), expected);
}

/// With `retries`, a failed batch's retries go to its failed host only, and so does the
/// resume once the host is back: batch 2's other hosts never receive a second job.
#[test]
fn a_resumed_batch_with_retries_sends_only_its_failed_hosts() {
    let down = "[[host]]\nhost = \"0:10.0.3.7\"\nagent = \"down\"\n";
    let f = fixture(r#"{ expression = "5" }"#, "retries = 1\n", down);
    let out = f.apply_sandbox(&["--yes"]);
    assert_eq!(code(&out), 3, "{}{}", text(&out.stdout), text(&out.stderr));
    let subs = submissions(&f);
    assert_eq!(
        names(&subs),
        [
            "roll/app batch 1/4",
            "roll/app batch 2/4",
            "roll/app batch 2/4"
        ]
    );
    assert_eq!(subs[2].1, ["10.0.3.7"]);

    std::fs::write(f.path("sandbox/jobsim.toml"), "[[business]]\nid = 2\n").expect("world");
    let out = f.apply_sandbox(&["--yes", "--resume"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let subs = submissions(&f);
    assert_eq!(subs.len(), 6, "{subs:?}");
    assert_eq!(subs[3].0, "roll/app batch 2/4");
    assert_eq!(
        subs[3].1,
        ["10.0.3.7"],
        "the resume sends batch 2's failed host only"
    );
    assert_eq!(
        names(&subs[4..]),
        ["roll/app batch 3/4", "roll/app batch 4/4"]
    );
    assert!(delivered(&f).iter().all(|d| *d));
}
