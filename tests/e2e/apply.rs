//! `plan apply`, the built binary, against the simulator over HTTP: files land byte for byte,
//! failures are reported with the push, the host and the JOB status, exit codes follow
//! cli.md. Journal, resume, lock and signals are in `apply_resume.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

pub(crate) const TWO_STAGES: &str = r#"
[plan]
name = "e2e"
bk_biz_id = 2
account = "root"

[hosts.src]
ips = ["10.0.0.1"]
[hosts.relay]
ips = ["10.0.1.1"]
[hosts.web]
ips = ["10.0.2.1", "10.0.2.2"]

[[push]]
name = "to-relays"
from = { hosts = "src", files = ["/data/release/app.tar.gz"] }
to = { hosts = "relay", path = "/data/stage/" }

[[push]]
name = "to-web"
from = { hosts = "relay", files = ["/data/stage/app.tar.gz"] }
to = { hosts = "web", path = "/opt/app/" }
"#;

pub(crate) const HOSTS: &[&str] = &["10.0.0.1", "10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2"];

/// A temp dir with `plan.toml`, `sandbox/` and `state/`.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
}

impl Fixture {
    pub(crate) fn new(plan: &str, jobsim_toml: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        for ip in HOSTS {
            std::fs::create_dir_all(dir.path().join("sandbox/hosts/0").join(ip)).expect("mkdir");
        }
        std::fs::write(dir.path().join("sandbox/jobsim.toml"), jobsim_toml).expect("jobsim.toml");
        std::fs::write(dir.path().join("plan.toml"), plan).expect("plan");
        Fixture { dir }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn host_file(&self, ip: &str, path: &str) -> PathBuf {
        self.path("sandbox/hosts/0")
            .join(ip)
            .join(path.trim_start_matches('/'))
    }

    pub(crate) fn write(&self, ip: &str, path: &str, bytes: &[u8]) {
        let p = self.host_file(ip, path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }

    pub(crate) fn read(&self, ip: &str, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.host_file(ip, path)).ok()
    }

    /// `plan` in the fixture dir, progress off, no colours, state under `state/`.
    pub(crate) fn plan(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plan"));
        cmd.current_dir(self.dir.path())
            .env("PLAN_NO_PROGRESS", "1")
            .env("NO_COLOR", "1")
            .env("PLAN_STATE_DIR", self.path("state"))
            .env_remove("BK_JOB_ENDPOINT")
            .env_remove("BK_APP_CODE")
            .env_remove("BK_APP_SECRET")
            .env_remove("BK_USERNAME")
            .env_remove("BK_TOKEN")
            .env_remove("BK_ACCESS_TOKEN");
        cmd
    }

    /// `plan apply plan.toml --endpoint URL --yes --poll-interval 100`, without credentials:
    /// the start of every run against a simulator the test started.
    pub(crate) fn apply_endpoint(&self, url: &str) -> Command {
        let mut cmd = self.plan();
        cmd.args([
            "apply",
            "plan.toml",
            "--endpoint",
            url,
            "--yes",
            "--poll-interval",
            "100",
        ]);
        cmd
    }

    /// `plan apply plan.toml --sandbox sandbox ARGS...`.
    pub(crate) fn apply_sandbox(&self, args: &[&str]) -> Output {
        self.plan()
            .args([
                "apply",
                "plan.toml",
                "--sandbox",
                "sandbox",
                "--poll-interval",
                "100",
            ])
            .args(args)
            .output()
            .expect("run plan")
    }

    /// The simulator's request log of the sandbox.
    /// Every line must parse: a log that cannot be read fails the test instead of looking
    /// empty. No file means no call was answered (the simulator writes it with its first).
    pub(crate) fn requests(&self) -> Vec<Value> {
        let log = self.path("sandbox/.jobsim/requests.jsonl");
        let text = match std::fs::read_to_string(&log) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("{}: {e}", log.display()),
        };
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Accepted submissions (by task name).
    pub(crate) fn submissions(&self, task: &str) -> usize {
        count_submissions(&self.requests(), task)
    }
}

pub(crate) fn count_submissions(requests: &[serde_json::Value], task: &str) -> usize {
    requests
        .iter()
        .filter(|r| {
            r["api"] == "fast_push_file"
                && !r["job_instance_id"].is_null()
                && task_base(&r["body"]["task_name"]) == task
        })
        .count()
}

/// A task name as the plan gives it (`plan show`'s): what apply sent, without the run tag
/// (`#<8 hex>`) it appends.
pub(crate) fn task_base(name: &Value) -> &str {
    let name = name.as_str().unwrap_or_default();
    plan_bkjob::task_name::split_run_tag(name).map_or(name, |(base, _)| base)
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn happy_path_delivers_every_byte() {
    let f = Fixture::new(TWO_STAGES, "");
    let payload: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(7) % 253) as u8)
        .collect();
    f.write("10.0.0.1", "/data/release/app.tar.gz", &payload);
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    for ip in ["10.0.2.1", "10.0.2.2"] {
        assert_eq!(
            f.read(ip, "/opt/app/app.tar.gz").as_deref(),
            Some(&payload[..]),
            "{ip}"
        );
    }
    let report = text(&out.stdout);
    assert!(
        report.contains("to-relays") && report.contains("succeeded"),
        "{report}"
    );
    assert!(report.contains("done: 2 pushes (2 succeeded)"), "{report}");
    assert_eq!(f.submissions("e2e/to-relays"), 1);
    assert_eq!(f.submissions("e2e/to-web"), 1);
}

#[test]
fn json_format_is_ndjson_with_a_version_first() {
    let f = Fixture::new(TWO_STAGES, "");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let out = f.apply_sandbox(&["--format", "json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(events[0]["event"], "apply_started");
    assert_eq!(events[0]["format_version"], 1);
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(kinds.contains(&"push_submitted"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"run_finished"));
    let last = events.last().expect("events");
    assert_eq!(last["report"]["pushes"][1]["hosts_ok"], 2);
}

#[test]
fn missing_source_file_fails_with_320_exit_3_and_stage_two_never_starts() {
    let f = Fixture::new(TWO_STAGES, "");
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    // The diagnostic points at the push in the plan and names host, status and label.
    assert!(stderr.contains("plan.toml:"), "{stderr}");
    assert!(
        stderr.contains("push `to-relays` failed on 1 of 1 hosts"),
        "{stderr}"
    );
    assert!(
        stderr.contains("host 0:10.0.1.1: status 320 File pull failed"),
        "{stderr}"
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("blocked"), "{stdout}");
    assert_eq!(f.submissions("e2e/to-web"), 0);
}

#[test]
fn unknown_target_host_is_refused_at_submission() {
    let plan = TWO_STAGES.replace(r#"ips = ["10.0.1.1"]"#, r#"ips = ["10.0.1.1", "10.0.9.9"]"#);
    let f = Fixture::new(&plan, "");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("push `to-relays` was refused by JOB"),
        "{stderr}"
    );
    assert!(stderr.contains("1244030"), "{stderr}");
    assert!(stderr.contains("10.0.9.9"), "{stderr}");
}

#[test]
fn transient_faults_are_absorbed() {
    let f = Fixture::new(
        TWO_STAGES,
        "[[fault]]\napi = \"fast_push_file\"\nkind = \"http_503\"\ncount = 2\n\
         [[fault]]\napi = \"get_job_instance_status\"\nkind = \"http_502\"\ncount = 3\n\
         [[fault]]\napi = \"get_job_instance_status\"\nkind = \"http_429\"\ncount = 2\n",
    );
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"through the storm");
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        f.read("10.0.2.1", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"through the storm"[..])
    );
    assert_eq!(f.submissions("e2e/to-relays"), 1);
    let requests = f.requests();
    // Every injected fault hit the run, each on its API: rules apply in order, so the
    // status polls met the three 502s, then the two 429s (ESB's 1306429 at HTTP 200).
    assert_eq!(
        fault_tally(&requests),
        [
            ("fast_push_file", "http_503", 2),
            ("get_job_instance_status", "http_429", 2),
            ("get_job_instance_status", "http_502", 3),
        ]
    );
    let submits: Vec<(&Value, &Value)> = requests
        .iter()
        .filter(|r| r["api"] == "fast_push_file")
        .map(|r| (&r["http_status"], &r["code"]))
        .collect();
    assert_eq!(
        submits[..3],
        [
            (&json!(503), &Value::Null),
            (&json!(503), &Value::Null),
            (&json!(200), &json!(0))
        ]
    );
    let polls: Vec<(&Value, &Value)> = requests
        .iter()
        .filter(|r| r["api"] == "get_job_instance_status")
        .map(|r| (&r["http_status"], &r["code"]))
        .take(6)
        .collect();
    let bad_gateway = (&json!(502), &Value::Null);
    let esb_limited = (&json!(200), &json!(1_306_429));
    assert_eq!(
        polls[..5],
        [
            bad_gateway,
            bad_gateway,
            bad_gateway,
            esb_limited,
            esb_limited
        ]
    );
    assert_eq!(polls[5], (&json!(200), &json!(0)));
}

/// How many calls each `[[fault]]` kind hit, per API, sorted: `(api, kind, calls)`.
pub(crate) fn fault_tally(requests: &[Value]) -> Vec<(&str, &str, usize)> {
    let mut tally = std::collections::BTreeMap::new();
    for r in requests {
        if let (Some(api), Some(kind)) = (r["api"].as_str(), r["fault"].as_str()) {
            *tally.entry((api, kind)).or_insert(0) += 1;
        }
    }
    tally
        .into_iter()
        .map(|((api, kind), calls)| (api, kind, calls))
        .collect()
}

#[test]
fn continue_independent_runs_the_unaffected_branch() {
    let plan = r#"
[plan]
name = "branches"
bk_biz_id = 2
account = "root"

[[push]]
name = "good"
from = { hosts = "10.0.0.1", files = ["/data/a.txt"] }
to = { hosts = "10.0.1.1", path = "/data/a/" }

[[push]]
name = "bad"
from = { hosts = "10.0.0.1", files = ["/data/missing.txt"] }
to = { hosts = "10.0.1.2", path = "/data/b/" }

[[push]]
name = "after-good"
from = { hosts = "10.0.1.1", files = ["/data/a/a.txt"] }
to = { hosts = "10.0.2.1", path = "/opt/a/" }
"#;
    let f = Fixture::new(plan, "");
    f.write("10.0.0.1", "/data/a.txt", b"independent");
    let out = f.apply_sandbox(&["--continue", "independent"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert_eq!(
        f.read("10.0.2.1", "/opt/a/a.txt").as_deref(),
        Some(&b"independent"[..])
    );

    let f = Fixture::new(plan, "");
    f.write("10.0.0.1", "/data/a.txt", b"independent");
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 3);
    assert!(
        f.read("10.0.2.1", "/opt/a/a.txt").is_none(),
        "--continue never started stage 2"
    );
    assert!(text(&out.stdout).contains("not started"));
}

#[test]
fn dry_run_submits_nothing() {
    let f = Fixture::new(TWO_STAGES, "");
    let out = f.apply_sandbox(&["--dry-run"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("nothing was submitted"));
    assert_eq!(f.submissions("e2e/to-relays"), 0);
    assert!(!f.path("state/runs").exists());
}

#[test]
fn endpoint_without_credentials_or_unreachable_cannot_start() {
    let f = Fixture::new(TWO_STAGES, "");
    let out = f
        .plan()
        .args(["apply", "plan.toml", "--endpoint", "http://127.0.0.1:9"])
        .env("BK_APP_CODE", "app")
        .output()
        .expect("run");
    assert_eq!(code(&out), 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("BK_APP_SECRET") && stderr.contains("BK_USERNAME"),
        "{stderr}"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let started = std::time::Instant::now();
    let out = f
        .plan()
        .args([
            "apply",
            "plan.toml",
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
        ])
        .env("BK_APP_CODE", "app")
        .env("BK_APP_SECRET", "topsecret")
        .env("BK_USERNAME", "admin")
        .output()
        .expect("run");
    assert_eq!(code(&out), 4);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("unreachable"),
        "{stderr}"
    );
    assert!(!stderr.contains("topsecret"));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn invalid_plan_exits_1_and_sends_nothing() {
    let f = Fixture::new("[plan]\nname = \"x\"\n", "");
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert!(f.requests().is_empty());
}

/// The quickstart works on a copy of the repository's example, the way the README runs it.
#[test]
fn quickstart_applies_on_a_copy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&root, dir.path());
    // Start from the committed state even if the example was run in this checkout.
    for ip in ["10.0.1.1", "10.0.1.2"] {
        let _ = std::fs::remove_dir_all(dir.path().join("sandbox/hosts/0").join(ip).join("data"));
    }
    for ip in ["10.0.2.1", "10.0.2.2", "10.0.2.3"] {
        let _ = std::fs::remove_dir_all(dir.path().join("sandbox/hosts/0").join(ip).join("opt"));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_plan"))
        .current_dir(dir.path())
        .env("PLAN_NO_PROGRESS", "1")
        .env("NO_COLOR", "1")
        .args([
            "apply",
            "plan.toml",
            "--sandbox",
            "sandbox",
            "--state-dir",
            "state",
        ])
        .output()
        .expect("run plan");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let source = std::fs::read(
        dir.path()
            .join("sandbox/hosts/0/10.0.0.1/data/release/app-1.0.0.tar.gz"),
    )
    .expect("source");
    for ip in ["10.0.2.1", "10.0.2.2", "10.0.2.3"] {
        let got = std::fs::read(
            dir.path()
                .join("sandbox/hosts/0")
                .join(ip)
                .join("opt/app/releases/app-1.0.0.tar.gz"),
        )
        .expect("delivered");
        assert_eq!(got, source, "{ip}");
        assert!(
            dir.path()
                .join("sandbox/hosts/0")
                .join(ip)
                .join("opt/app/conf/app.conf")
                .is_file()
        );
    }
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name == ".jobsim" || name == ".run" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn a_lost_submission_answer_never_points_at_a_resume_that_refuses() {
    let f = Fixture::new(
        TWO_STAGES,
        "[[fault]]\napi = \"fast_push_file\"\nkind = \"drop_after\"\ncount = 1\n",
    );
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("outcome unknown"), "{stdout}");
    assert!(!stdout.contains("rerun with `--resume`"), "{stdout}");
    assert!(stdout.contains("`--resume` refuses this run"), "{stdout}");
    // --resume refuses (the job may exist); a plain apply refuses too and, since --resume
    // cannot help, says to check the task in JOB and abandon the run instead.
    let resumed = f.apply_sandbox(&["--resume"]);
    assert_eq!(code(&resumed), 4, "{}", text(&resumed.stderr));
    let again = f.apply_sandbox(&[]);
    assert_eq!(code(&again), 4, "{}", text(&again.stderr));
    let stderr = text(&again.stderr);
    assert!(
        !stderr.contains("run the same command with `--resume`"),
        "{stderr}"
    );
    // The task name as sent, with the run's tag.
    assert!(stderr.contains("task `e2e/to-relays#"), "{stderr}");
    assert!(stderr.contains(".jsonl.abandoned"), "{stderr}");
    // JOB created the job once; nothing was sent again.
    assert_eq!(f.submissions("e2e/to-relays"), 1);
    assert_eq!(f.submissions("e2e/to-web"), 0);
}

#[test]
fn continue_never_submits_nothing_after_a_rejection_in_the_same_stage() {
    // Stage 1: `to-relays` is refused (unknown host) and `side` is independent of it. The
    // stage's pushes start together but submit in file order, so `side`'s turn comes after
    // the refusal is known: with `--continue never` (the default) it is not submitted.
    let plan = format!(
        "{}\n[[push]]\nname = \"side\"\nfrom = {{ hosts = \"src\", files = [\"/data/release/app.tar.gz\"] }}\nto = {{ hosts = \"10.0.1.2\", path = \"/side/\" }}\n",
        TWO_STAGES.replace(r#"ips = ["10.0.1.1"]"#, r#"ips = ["10.0.1.1", "10.0.9.9"]"#)
    );
    let f = Fixture::new(&plan, "");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let side = stdout
        .lines()
        .find(|l| l.contains(" side "))
        .unwrap_or_default();
    assert!(side.contains("not started"), "{stdout}");
    // It never ran: no job, no duration.
    assert!(side.trim_end().ends_with(" -"), "{stdout}");
    let web = stdout
        .lines()
        .find(|l| l.contains("to-web"))
        .unwrap_or_default();
    assert!(web.contains("blocked"), "{stdout}");
    assert_eq!(f.submissions("e2e/side"), 0);

    // `--continue independent` submits it.
    let f = Fixture::new(&plan, "");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let out = f.apply_sandbox(&["--continue", "independent"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert_eq!(f.submissions("e2e/side"), 1);
    assert_eq!(
        f.read("10.0.1.2", "/side/app.tar.gz").as_deref(),
        Some(&b"x"[..])
    );
}

#[test]
fn a_retry_is_announced_with_its_stage_and_the_failed_hosts() {
    let plan = TWO_STAGES.replace(
        "to = { hosts = \"relay\", path = \"/data/stage/\" }",
        "to = { hosts = \"relay\", path = \"/data/stage/\" }\nretries = 1",
    );
    let f = Fixture::new(&plan, "[[host]]\nhost = \"0:10.0.1.1\"\nflaky_jobs = 1\n");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("[stage 1] to-relays: failed on 0:10.0.1.1; attempt 2 pushes to it again"),
        "{stderr}"
    );
    assert!(
        stderr.contains("[stage 1] to-relays: retrying (attempt 2) on 1 host\n"),
        "{stderr}"
    );
}
