//! Runs visible in JOB, with the binary against a simulator that outlives `plan` (as a real
//! JOB would): a second apply from another state dir is refused naming the first run, a run
//! killed with its state dir deleted is resumed from another directory, and a job JOB no
//! longer knows is diagnosed with one way out instead of a loop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::apply::{Fixture, TWO_STAGES, code, task_base, text};
use crate::server::SimServer;

fn v3(plan: &str) -> String {
    plan.replacen("account = \"root\"", "account = \"root\"\napi = \"v3\"", 1)
}

/// `plan apply plan.toml --endpoint URL` run in `dir` with its state in `state`.
fn apply_in(f: &Fixture, dir: &Path, state: &Path, url: &str, extra: &[&str]) -> Command {
    let mut cmd = f.apply_endpoint(url);
    cmd.current_dir(dir)
        .env("PLAN_STATE_DIR", state)
        .args(extra)
        .env("BK_APP_CODE", "app")
        .env("BK_APP_SECRET", "e2e-secret-value")
        .env("BK_USERNAME", "admin");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run plan")
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn plan")
}

fn kill9(mut child: Child) {
    let ok = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -KILL");
    let _ = child.wait();
}

/// Every journal line of plan `plan` under `state`, and the journals' run ids.
fn journals(state: &Path, plan: &str) -> (String, Vec<String>) {
    let dir = state.join("runs").join(plan);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let text = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    let ids = files
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    (text, ids)
}

/// Waits until a journal line under `state` contains every needle.
fn wait_for_journal(state: &Path, plan: &str, needles: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (journal, _) = journals(state, plan);
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

fn requests(server: &SimServer) -> Vec<Value> {
    server
        .requests()
        .into_iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect()
}

/// Jobs JOB created for a push (by the plan's task name, whatever the run's tag).
fn jobs_of(requests: &[Value], task: &str) -> Vec<i64> {
    requests
        .iter()
        .filter(|r| r["api"] == "fast_transfer_file" || r["api"] == "fast_push_file")
        .filter(|r| task_base(&r["body"]["task_name"]) == task)
        .filter_map(|r| r["job_instance_id"].as_i64())
        .collect()
}

#[test]
fn a_second_apply_from_another_state_dir_is_refused_naming_the_first_run() {
    let f = Fixture::new(&v3(TWO_STAGES), "[sim]\nstart_delay_ms = 4000\n");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"visible");
    let server = SimServer::start(&f.path("sandbox"));
    let (dir, state_a, state_b) = (f.path(""), f.path("state-a"), f.path("state-b"));

    let first = spawn(&mut apply_in(&f, &dir, &state_a, &server.url, &[]));
    wait_for_journal(&state_a, "e2e", &["push_started", "to-relays"]);
    let (_, ids) = journals(&state_a, "e2e");
    let tag = ids[0].rsplit('-').next().expect("tag").to_owned();
    let first_job = jobs_of(&requests(&server), "e2e/to-relays")[0];

    // Another machine (another state dir, no shared lock): refused, nothing sent.
    let out = run(&mut apply_in(&f, &dir, &state_b, &server.url, &[]));
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    for needle in [
        format!("#{tag}"),
        "admin".to_owned(),
        format!("job {first_job}"),
        "`to-relays`".to_owned(),
        "--force".to_owned(),
    ] {
        assert!(stderr.contains(&needle), "{needle} in {stderr}");
    }
    assert_eq!(jobs_of(&requests(&server), "e2e/to-relays").len(), 1);
    assert!(journals(&state_b, "e2e").1.is_empty(), "no run started");

    // `--force` starts it, and the journal says so.
    let out = run(&mut apply_in(&f, &dir, &state_b, &server.url, &["--force"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("forced"),
        "{}",
        text(&out.stderr)
    );
    let (journal, _) = journals(&state_b, "e2e");
    let started: Value =
        serde_json::from_str(journal.lines().next().expect("a line")).expect("json");
    assert_eq!(started["type"], "run_started");
    assert_eq!(started["force"], true);
    assert_eq!(jobs_of(&requests(&server), "e2e/to-relays").len(), 2);
    kill9(first);
}

#[test]
fn killed_with_its_state_dir_deleted_then_resumed_elsewhere_submits_each_push_once() {
    let f = Fixture::new(&v3(TWO_STAGES), "[sim]\nstart_delay_ms = 1500\n");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"anywhere");
    let server = SimServer::start(&f.path("sandbox"));
    let state = f.path("runner-1/state");

    // The first runner dies while stage 1's job runs, and its state goes with it.
    let child = spawn(&mut apply_in(&f, &f.path(""), &state, &server.url, &[]));
    wait_for_journal(&state, "e2e", &["push_submitted", "to-relays"]);
    kill9(child);
    std::fs::remove_dir_all(f.path("runner-1")).expect("rm runner-1");

    // A fresh runner: another directory, no journal.
    let elsewhere = f.path("runner-2");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    std::fs::copy(f.path("plan.toml"), elsewhere.join("plan.toml")).expect("copy plan");
    let state = elsewhere.join("state");
    let out = run(&mut apply_in(
        &f,
        &elsewhere,
        &state,
        &server.url,
        &["--resume"],
    ));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let all = requests(&server);
    assert_eq!(
        jobs_of(&all, "e2e/to-relays").len(),
        1,
        "followed, not resent"
    );
    assert_eq!(jobs_of(&all, "e2e/to-web").len(), 1);
    for ip in ["10.0.2.1", "10.0.2.2"] {
        assert_eq!(
            f.read(ip, "/opt/app/app.tar.gz").as_deref(),
            Some(&b"anywhere"[..])
        );
    }
    let (journal, _) = journals(&state, "e2e");
    let started: Value =
        serde_json::from_str(journal.lines().next().expect("a line")).expect("json");
    assert_eq!(started["rebuilt_from_job"], true, "{journal}");
    assert!(journal.contains("\"type\":\"push_rebuilt\""), "{journal}");
}

/// Before: `--resume` got `1244006` for the lost job and kept failing, and a plain apply
/// said "use `--resume`" (the only way out was renaming the journal by hand).
#[test]
fn a_job_the_simulator_lost_is_diagnosed_and_one_resume_gets_out() {
    let f = Fixture::new(TWO_STAGES, "[sim]\nstart_delay_ms = 1500\n");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"no loop");
    let state = f.path("state");
    let dir = f.path("");
    {
        let server = SimServer::start(&f.path("sandbox"));
        let child = spawn(&mut apply_in(&f, &dir, &state, &server.url, &[]));
        wait_for_journal(&state, "e2e", &["push_submitted", "to-relays"]);
        kill9(child);
    }
    // The simulator's state is gone with its jobs.
    std::fs::remove_dir_all(f.path("sandbox/.jobsim")).expect("rm .jobsim");
    let server = SimServer::start(&f.path("sandbox"));

    // A plain apply is refused: the journal's job may still run.
    let out = run(&mut apply_in(&f, &dir, &state, &server.url, &[]));
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--resume"),
        "{}",
        text(&out.stderr)
    );

    // `--resume` meets JOB's 1244006: diagnosed, with the one command that gets out.
    let out = run(&mut apply_in(&f, &dir, &state, &server.url, &["--resume"]));
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(report.contains("no longer knows instance"), "{report}");
    assert!(
        report.contains("`--resume` submits this push again"),
        "{report}"
    );
    assert!(
        journals(&state, "e2e")
            .0
            .contains("\"type\":\"push_job_lost\"")
    );

    // That command finishes the run.
    let out = run(&mut apply_in(&f, &dir, &state, &server.url, &["--resume"]));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let all = requests(&server);
    assert_eq!(jobs_of(&all, "e2e/to-relays").len(), 1);
    assert_eq!(jobs_of(&all, "e2e/to-web").len(), 1);
    assert_eq!(
        f.read("10.0.2.2", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"no loop"[..])
    );
}

/// A JOB that does not let the app list jobs: nothing is submitted, the message says what
/// to grant or that `--force` goes ahead; `--force` does, and says so.
#[test]
fn a_job_list_refused_sends_nothing_unless_forced() {
    let f = Fixture::new(
        &v3(TWO_STAGES),
        "[[app]]\ncode = \"app\"\nsecret = \"e2e-secret-value\"\n\
         gateway_apis = [\"fast_transfer_file\", \"get_job_instance_status\", \"batch_get_job_instance_ip_log\", \"get_job_instance_ip_log\", \"operate_job_instance\"]\n",
    );
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"forced");
    let server = SimServer::start(&f.path("sandbox"));
    let (dir, state) = (f.path(""), f.path("state"));
    let out = run(&mut apply_in(&f, &dir, &state, &server.gateway(), &[]));
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("get_job_instance_list"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(jobs_of(&requests(&server), "e2e/to-relays").is_empty());

    let out = run(&mut apply_in(
        &f,
        &dir,
        &state,
        &server.gateway(),
        &["--force"],
    ));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("forced"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(jobs_of(&requests(&server), "e2e/to-web").len(), 1);
}
