//! Journal, resume, lock and signals, with the binary against a standalone simulator that
//! keeps running while `plan` is killed, interrupted and resumed (as a real JOB would).

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::apply::{Fixture, TWO_STAGES, code, count_submissions, task_base, text};
use crate::server::SimServer;

/// The fixture's sandbox served on loopback, with the request log as JSON.
struct Server(SimServer);

impl Server {
    fn start(f: &Fixture) -> Server {
        Server(SimServer::start(&f.path("sandbox")))
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        self.0
            .requests()
            .into_iter()
            .filter_map(|r| serde_json::to_value(r).ok())
            .collect()
    }

    fn submissions(&self, task: &str) -> usize {
        count_submissions(&self.requests(), task)
    }

    fn calls(&self, api: &str) -> usize {
        self.requests().iter().filter(|r| r["api"] == api).count()
    }
}

fn apply_cmd(f: &Fixture, server: &Server, extra: &[&str]) -> Command {
    let mut cmd = f.plan();
    cmd.args([
        "apply",
        "plan.toml",
        "--endpoint",
        &server.0.url,
        "--poll-interval",
        "100",
    ])
    .args(extra)
    .env("BK_APP_CODE", "app")
    .env("BK_APP_SECRET", "e2e-secret-value")
    .env("BK_USERNAME", "admin");
    cmd
}

fn run(f: &Fixture, server: &Server, extra: &[&str]) -> Output {
    apply_cmd(f, server, extra).output().expect("run plan")
}

fn spawn(f: &Fixture, server: &Server, extra: &[&str]) -> Child {
    apply_cmd(f, server, extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn plan")
}

/// The journals of the fixture's plan.
fn journal_text(f: &Fixture, plan: &str) -> String {
    let dir = f.path("state/runs").join(plan);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("")
}

/// Waits until the journal has a line containing every needle (the process is running; the
/// journal is what it promises to have written before acting).
fn wait_for_journal(f: &Fixture, plan: &str, needles: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let journal = journal_text(f, plan);
        if journal
            .lines()
            .any(|l| needles.iter().all(|n| l.contains(n)))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "journal never showed {needles:?}:\n{journal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig}");
}

fn kill9(mut child: Child) {
    signal(&child, "-KILL");
    // Reap it, so its pid is really gone (a zombie would look alive to the lock).
    let _ = child.wait();
}

#[test]
fn killed_at_several_points_then_resumed_submits_each_push_once() {
    let f = Fixture::new(TWO_STAGES, "[sim]\nstart_delay_ms = 1500\n");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"resumable");
    let server = Server::start(&f);

    // Killed while stage 1's job runs.
    let child = spawn(&f, &server, &[]);
    wait_for_journal(&f, "e2e", &["push_submitted", "to-relays"]);
    kill9(child);

    // A plain apply refuses: the job may still be running.
    let out = run(&f, &server, &[]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--resume"),
        "{}",
        text(&out.stderr)
    );

    // Resumed, then killed again while stage 2's job runs.
    let child = spawn(&f, &server, &["--resume"]);
    wait_for_journal(&f, "e2e", &["push_submitted", "to-web"]);
    kill9(child);

    // Resumed to the end.
    let out = run(&f, &server, &["--resume"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("already done: to-relays"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(server.submissions("e2e/to-relays"), 1);
    assert_eq!(server.submissions("e2e/to-web"), 1);
    // The report names the job that did an already-done push, as it did when it ran.
    let relays_job = server
        .requests()
        .iter()
        .find(|r| {
            r["api"] == "fast_push_file" && task_base(&r["body"]["task_name"]) == "e2e/to-relays"
        })
        .and_then(|r| r["job_instance_id"].as_i64())
        .expect("to-relays job");
    let stdout = text(&out.stdout);
    let row = stdout
        .lines()
        .find(|l| l.contains("to-relays"))
        .unwrap_or_default();
    assert!(
        row.contains("already done") && row.contains(&relays_job.to_string()),
        "{stdout}"
    );
    assert_eq!(
        f.read("10.0.2.2", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"resumable"[..])
    );
    // The stale locks of the killed processes were taken over with a warning.
    assert!(
        text(&out.stderr).contains("took over the lock"),
        "{}",
        text(&out.stderr)
    );
    // No credential on disk.
    let journal = journal_text(&f, "e2e");
    assert!(!journal.contains("e2e-secret-value"));
    assert!(
        !std::fs::read_to_string(f.path("sandbox/.jobsim/requests.jsonl"))
            .unwrap_or_default()
            .contains("e2e-secret-value")
    );
}

#[test]
fn killed_during_a_submission_is_not_resubmitted_blindly() {
    let f = Fixture::new(
        TWO_STAGES,
        "[[fault]]\napi = \"fast_push_file\"\nkind = \"slow\"\ndelay_ms = 3000\ncount = 1\n",
    );
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let server = Server::start(&f);
    let child = spawn(&f, &server, &[]);
    wait_for_journal(&f, "e2e", &["push_submitting", "to-relays"]);
    kill9(child);
    let out = run(&f, &server, &["--resume"]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("outcome is unknown") && stderr.contains("e2e/to-relays"),
        "{stderr}"
    );
    assert!(server.calls("fast_push_file") <= 1);
}

#[test]
fn first_sigint_finishes_running_jobs_and_exits_130() {
    let f = Fixture::new(TWO_STAGES, "[sim]\nstart_delay_ms = 1500\n");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let server = Server::start(&f);
    let child = spawn(&f, &server, &[]);
    wait_for_journal(&f, "e2e", &["push_submitted", "to-relays"]);
    signal(&child, "-INT");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 130, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("succeeded") && stdout.contains("not started"),
        "{stdout}"
    );
    assert_eq!(server.calls("operate_job_instance"), 0);
    assert!(journal_text(&f, "e2e").contains("\"status\":\"interrupted\""));

    // The interrupted run resumes with only stage 2 left.
    let out = run(&f, &server, &["--resume"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(server.submissions("e2e/to-relays"), 1);
    assert_eq!(server.submissions("e2e/to-web"), 1);
}

#[test]
fn second_sigint_terminates_running_jobs() {
    let f = Fixture::new(
        TWO_STAGES,
        "[[fault]]\napi = \"fast_push_file\"\nkind = \"stuck\"\ncount = 1\n",
    );
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let server = Server::start(&f);
    let child = spawn(&f, &server, &[]);
    wait_for_journal(&f, "e2e", &["push_submitted", "to-relays"]);
    signal(&child, "-INT");
    // The first interrupt is acted on (journal unchanged, so give the handler a moment by
    // waiting for a poll after it); then the second.
    let polls = server.calls("get_job_instance_status");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.calls("get_job_instance_status") <= polls && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, "-INT");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 130, "{}", text(&out.stderr));
    // Accepted exactly once (a job still pending refuses with 1241003 and is asked again).
    let accepted = server
        .requests()
        .iter()
        .filter(|r| r["api"] == "operate_job_instance" && r["code"] == 0)
        .count();
    assert_eq!(accepted, 1);
    let journal = journal_text(&f, "e2e");
    assert!(journal.contains("push_terminate_requested"), "{journal}");
    assert!(
        text(&out.stderr).contains("terminating"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn sigterm_behaves_like_the_first_ctrl_c() {
    let f = Fixture::new(TWO_STAGES, "[sim]\nstart_delay_ms = 1000\n");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let server = Server::start(&f);
    let child = spawn(&f, &server, &[]);
    wait_for_journal(&f, "e2e", &["push_submitted", "to-relays"]);
    signal(&child, "-TERM");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 130, "{}", text(&out.stderr));
    assert_eq!(server.calls("operate_job_instance"), 0);
    assert!(text(&out.stdout).contains("not started"));
}

#[test]
fn a_second_apply_is_refused_while_the_first_holds_the_lock() {
    let f = Fixture::new(TWO_STAGES, "[sim]\nstart_delay_ms = 1500\n");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let server = Server::start(&f);
    let child = spawn(&f, &server, &[]);
    wait_for_journal(&f, "e2e", &["push_submitted", "to-relays"]);
    let out = run(&f, &server, &[]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("is being applied by") && stderr.contains(&format!("pid {}", child.id())),
        "{stderr}"
    );
    let first = child.wait_with_output().expect("wait");
    assert_eq!(code(&first), 0, "{}", text(&first.stderr));
    assert_eq!(server.submissions("e2e/to-relays"), 1);
}

#[test]
fn a_plan_edited_between_a_failed_run_and_the_resume_is_refused() {
    let f = Fixture::new(TWO_STAGES, "");
    let server = Server::start(&f);
    let out = run(&f, &server, &[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    std::fs::write(
        f.path("plan.toml"),
        TWO_STAGES.replace("/data/release/app.tar.gz", "/data/release/app-2.tar.gz"),
    )
    .expect("edit");
    let out = run(&f, &server, &["--resume"]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("changed `to-relays`"), "{stderr}");
    assert!(!stderr.contains("`to-web`"), "{stderr}");
    // Undo the edit, provide the file: the resume goes through.
    std::fs::write(f.path("plan.toml"), TWO_STAGES).expect("undo");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"fixed");
    let out = run(&f, &server, &["--resume"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        f.read("10.0.2.1", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"fixed"[..])
    );
}

#[test]
fn killed_during_a_retry_then_resumed_reports_every_target_host() {
    // to-relays goes to two hosts; 10.0.1.2 fails its first job, so attempt 2 targets it
    // alone. Killed while attempt 2 runs (start_delay keeps it running), resumed: the
    // re-attached retry finishes, and the push's report covers both hosts, not only the one
    // the retry reached.
    let plan = TWO_STAGES
        .replace(r#"ips = ["10.0.1.1"]"#, r#"ips = ["10.0.1.1", "10.0.1.2"]"#)
        .replace(
            "to = { hosts = \"relay\", path = \"/data/stage/\" }",
            "to = { hosts = \"relay\", path = \"/data/stage/\" }\nretries = 1",
        );
    let f = Fixture::new(
        &plan,
        "[sim]\nstart_delay_ms = 1500\n[[host]]\nhost = \"0:10.0.1.2\"\nflaky_jobs = 1\n",
    );
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"retried");
    let server = Server::start(&f);

    let child = spawn(&f, &server, &["--format", "json"]);
    wait_for_journal(&f, "e2e", &["push_submitted", "to-relays", "\"attempt\":2"]);
    kill9(child);

    let out = run(&f, &server, &["--resume", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let last = text(&out.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .expect("run_finished");
    let pushes = last["report"]["pushes"].as_array().expect("pushes");
    let relays = pushes
        .iter()
        .find(|p| p["name"] == "to-relays")
        .expect("to-relays");
    assert_eq!(relays["status"], "succeeded", "{relays}");
    assert_eq!(relays["hosts_total"], 2, "{relays}");
    assert_eq!(relays["hosts_ok"], 2, "{relays}");
    // Attempt 1 (both hosts) and attempt 2 (the failed one), each submitted once.
    assert_eq!(server.submissions("e2e/to-relays"), 2);
    for ip in ["10.0.1.1", "10.0.1.2"] {
        assert_eq!(
            f.read(ip, "/data/stage/app.tar.gz").as_deref(),
            Some(&b"retried"[..])
        );
    }
}
