//! The CI examples' shell steps (`examples/ci/scripts/`), run as the workflows run them,
//! against a fake forge on loopback that records every comment posted and updated: an
//! unchanged plan posts nothing, a changed one posts its diff with the content hash, an
//! invalid one fails with its diagnostics in the comment (never an empty comment), and the
//! apply-on-merge step applies exactly the hash the comment showed (each push sent once) and
//! refuses, with nothing sent, a plan that changed since.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::apply::{Fixture, TWO_STAGES, code, text};

/// The request number the fake forge says every commit was merged from.
const REQUEST: u64 = 7;

/// A comment as the fake forge keeps it.
#[derive(Debug, Clone)]
struct Comment {
    id: u64,
    body: String,
}

#[derive(Debug, Default)]
struct Forge {
    comments: Vec<Comment>,
    /// `METHOD path` of every call, in order.
    calls: Vec<String>,
}

/// A forge speaking just enough of GitHub's and GitLab's REST APIs, on 127.0.0.1:0, one
/// connection at a time (curl closes each).
struct FakeForge {
    url: String,
    state: Arc<Mutex<Forge>>,
}

impl FakeForge {
    fn start() -> FakeForge {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(Forge::default()));
        let served = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                serve(stream, &served);
            }
        });
        FakeForge { url, state }
    }

    fn comments(&self) -> Vec<Comment> {
        self.state.lock().expect("lock").comments.clone()
    }

    fn calls(&self, method: &str) -> usize {
        let state = self.state.lock().expect("lock");
        state
            .calls
            .iter()
            .filter(|c| c.starts_with(&format!("{method} ")))
            .count()
    }
}

/// Answers one request: reads the head and the body (`Content-Length`), routes it.
fn serve(stream: TcpStream, state: &Mutex<Forge>) {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0usize;
    let mut authorised = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("authorization: bearer test-token")
            || lower.starts_with("private-token: test-token")
        {
            authorised = true;
        }
        if lower.starts_with("expect: 100-continue") {
            let _ = reader.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        if line == "\r\n" {
            break;
        }
        if head.is_empty() {
            head = line.trim_end().to_owned();
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = head.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (status, answer) = if authorised {
        route(state, method, path, query, &body)
    } else {
        (401, json!({"message": "Bad credentials"}))
    };
    let answer = answer.to_string();
    let _ = write!(
        reader.get_mut(),
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

fn route(state: &Mutex<Forge>, method: &str, path: &str, query: &str, body: &[u8]) -> (u16, Value) {
    let mut forge = state.lock().expect("lock");
    forge.calls.push(format!("{method} {path}"));
    let posted = || {
        serde_json::from_slice::<Value>(body).ok()?["body"]
            .as_str()
            .map(str::to_owned)
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        // GitHub: /repos/o/r/issues/7/comments; GitLab: /projects/1/merge_requests/7/notes.
        (
            "GET",
            ["repos", _, _, "issues", _, "comments"]
            | ["projects", _, "merge_requests", _, "notes"],
        ) => {
            let first_page = query.split('&').any(|p| p == "page=1");
            let list: Vec<Value> = if first_page {
                forge
                    .comments
                    .iter()
                    .map(|c| json!({"id": c.id, "body": c.body}))
                    .collect()
            } else {
                Vec::new()
            };
            (200, Value::Array(list))
        }
        (
            "POST",
            ["repos", _, _, "issues", _, "comments"]
            | ["projects", _, "merge_requests", _, "notes"],
        ) => {
            let Some(body) = posted() else {
                return (422, json!({}));
            };
            let id = 100 + forge.comments.len() as u64;
            forge.comments.push(Comment { id, body });
            (201, json!({"id": id}))
        }
        ("PATCH", ["repos", _, _, "issues", "comments", id])
        | ("PUT", ["projects", _, "merge_requests", _, "notes", id]) => {
            let Some(body) = posted() else {
                return (422, json!({}));
            };
            match forge.comments.iter_mut().find(|c| c.id.to_string() == *id) {
                Some(comment) => {
                    comment.body = body;
                    (200, json!({"id": comment.id}))
                }
                None => (404, json!({})),
            }
        }
        ("GET", ["repos", _, _, "commits", _, "pulls"]) => (200, json!([{"number": REQUEST}])),
        ("GET", ["projects", _, "repository", "commits", _, "merge_requests"]) => {
            (200, json!([{"iid": REQUEST}]))
        }
        _ => (404, json!({"message": "Not Found"})),
    }
}

/// A git repository holding `plans/release.toml` (the two-stage plan) and a sandbox.
struct Repo {
    fixture: Fixture,
}

impl Repo {
    fn new() -> Repo {
        let fixture = Fixture::new(TWO_STAGES, "");
        fixture.write("10.0.0.1", "/data/release/app.tar.gz", b"ci examples");
        let repo = Repo { fixture };
        std::fs::create_dir_all(repo.path("plans")).expect("mkdir");
        repo.write_plan(TWO_STAGES);
        std::fs::write(repo.path(".gitignore"), "sandbox/\nstate*/\nout*/\n").expect("write");
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["add", "."]);
        repo.git(&["commit", "-q", "-m", "base"]);
        repo
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.fixture.path(rel)
    }

    fn write_plan(&self, text: &str) {
        std::fs::write(self.path("plans/release.toml"), text).expect("write plan");
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.fixture.dir.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("run git");
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
        text(&out.stdout).trim().to_owned()
    }

    /// `examples/ci/scripts/SCRIPT ARGS...` from the repository, with `plan` on the PATH and
    /// the forge's variables set as the workflows set them.
    fn script(&self, forge: &FakeForge, kind: &str, script: &str, args: &[&str]) -> Output {
        self.script_command(forge, kind, script, args)
            .output()
            .expect("run script")
    }

    /// The command [`Repo::script`] runs.
    fn script_command(
        &self,
        forge: &FakeForge,
        kind: &str,
        script: &str,
        args: &[&str],
    ) -> Command {
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/scripts");
        let bin = Path::new(env!("CARGO_BIN_EXE_plan"))
            .parent()
            .expect("bin dir");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("bash");
        cmd.arg(scripts.join(script))
            .args(args)
            .current_dir(self.fixture.dir.path())
            .env("PATH", path)
            .env("PLAN_NO_PROGRESS", "1")
            .env("NO_COLOR", "1")
            .env("PLAN_STATE_DIR", self.path("state"))
            .env("PLAN_FORGE", kind)
            .env("PLAN_REVIEW_PR", REQUEST.to_string())
            .env("GITHUB_API_URL", &forge.url)
            .env("GITHUB_TOKEN", "test-token")
            .env("GITHUB_REPOSITORY", "ops/plans")
            .env("CI_API_V4_URL", &forge.url)
            .env("CI_PROJECT_ID", "1")
            .env("GITLAB_TOKEN", "test-token")
            .env_remove("GITHUB_SHA")
            .env_remove("CI_COMMIT_SHA")
            .env_remove("BK_JOB_ENDPOINT");
        if script == "apply-merged.sh" {
            // The apply job has no request number: it asks the forge for the commit's.
            cmd.env_remove("PLAN_REVIEW_PR");
        }
        cmd
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Accepted submissions of the two pushes (whatever run id their task names carry).
    fn submissions(&self) -> usize {
        let requests = self.fixture.requests();
        ["to-relays", "to-web"]
            .iter()
            .map(|push| {
                requests
                    .iter()
                    .filter(|r| {
                        r["api"] == "fast_push_file"
                            && !r["job_instance_id"].is_null()
                            && r["body"]["task_name"]
                                .as_str()
                                .is_some_and(|t| t.starts_with(&format!("e2e/{push}")))
                    })
                    .count()
            })
            .sum()
    }
}

const KEY: &str = "plans__release.toml";
const MARKER: &str = "<!-- plan:file plans/release.toml -->";

fn changed_plan() -> String {
    TWO_STAGES.replace(
        r#"ips = ["10.0.2.1", "10.0.2.2"]"#,
        r#"ips = ["10.0.2.1", "10.0.2.2", "10.0.1.2"]"#,
    )
}

#[test]
fn review_posts_the_diff_of_a_changed_plan_with_its_hash_and_nothing_for_an_unchanged_one() {
    for kind in ["github", "gitlab"] {
        let repo = Repo::new();
        let forge = FakeForge::start();
        let base = repo.git(&["rev-parse", "HEAD"]);

        let out = repo.script(
            &forge,
            kind,
            "review-diff.sh",
            &["out1", &base, "plans/release.toml"],
        );
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        assert_eq!(repo.read(&format!("out1/{KEY}.state")), "unchanged\n");
        let out = repo.script(&forge, kind, "post-comments.sh", &["out1"]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        assert_eq!(
            forge.calls("POST"),
            0,
            "{kind}: nothing posted for an unchanged plan"
        );

        repo.write_plan(&changed_plan());
        let out = repo.script(
            &forge,
            kind,
            "review-diff.sh",
            &["out2", &base, "plans/release.toml"],
        );
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        assert_eq!(repo.read(&format!("out2/{KEY}.state")), "changed\n");
        let hash = repo.read(&format!("out2/{KEY}.hash"));
        let hash = hash.trim();
        assert!(hash.starts_with("sha256:") && hash.len() == 71, "{hash}");
        let out = repo.script(&forge, kind, "post-comments.sh", &["out2"]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        let comments = forge.comments();
        assert_eq!(comments.len(), 1, "{kind}: {comments:?}");
        let body = &comments[0].body;
        assert!(body.starts_with(&format!("{MARKER}\n")), "{body}");
        assert!(
            body.contains(&format!("<!-- plan:hash e2e {hash} -->")),
            "{body}"
        );
        assert!(body.contains("10.0.1.2"), "{body}");

        // Pushed again with the change reverted: the same comment now says so.
        repo.write_plan(TWO_STAGES);
        let out = repo.script(
            &forge,
            kind,
            "review-diff.sh",
            &["out3", &base, "plans/release.toml"],
        );
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        let out = repo.script(&forge, kind, "post-comments.sh", &["out3"]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        let comments = forge.comments();
        assert_eq!(comments.len(), 1, "{kind}: updated, not posted again");
        assert!(
            comments[0].body.contains("no changes"),
            "{}",
            comments[0].body
        );
    }
}

#[test]
fn review_of_an_invalid_plan_fails_with_its_diagnostics_in_the_comment() {
    let repo = Repo::new();
    let forge = FakeForge::start();
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.write_plan(&TWO_STAGES.replace("hosts = \"web\"", "hosts = \"wbe\""));
    let out = repo.script(
        &forge,
        "github",
        "review-diff.sh",
        &["out", &base, "plans/release.toml"],
    );
    assert_eq!(
        code(&out),
        0,
        "the diff step records, the post step fails: {}",
        text(&out.stderr)
    );
    assert_eq!(repo.read(&format!("out/{KEY}.state")), "invalid\n");
    let out = repo.script(&forge, "github", "post-comments.sh", &["out"]);
    assert_eq!(code(&out), 1, "the check fails: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("wbe"),
        "the log has the diagnostics"
    );
    let comments = forge.comments();
    assert_eq!(comments.len(), 1);
    let body = &comments[0].body;
    assert!(body.starts_with(MARKER), "{body}");
    assert!(body.contains("`plans/release.toml` is invalid"), "{body}");
    assert!(
        body.contains("wbe") && body.contains("plans/release.toml:"),
        "{body}"
    );
    assert!(
        !body.contains("plan:hash"),
        "an invalid plan shows no hash to apply: {body}"
    );

    // A usage error (an unknown base revision) is no plan problem: the step fails with it.
    let out = repo.script(
        &forge,
        "github",
        "review-diff.sh",
        &["out", "no-such-rev", "plans/release.toml"],
    );
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
}

#[test]
fn apply_on_merge_applies_exactly_the_reviewed_hash_and_refuses_anything_else() {
    for kind in ["github", "gitlab"] {
        let repo = Repo::new();
        let forge = FakeForge::start();
        let base = repo.git(&["rev-parse", "HEAD"]);
        repo.write_plan(&changed_plan());
        let out = repo.script(
            &forge,
            kind,
            "review-diff.sh",
            &["out", &base, "plans/release.toml"],
        );
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        let out = repo.script(&forge, kind, "post-comments.sh", &["out"]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        repo.git(&["commit", "-qam", "reviewed change"]);

        // Changed again after the review, then "merged": refused, nothing sent.
        repo.write_plan(&changed_plan().replace("10.0.1.2", "10.0.1.1"));
        let apply = [
            "plans/release.toml",
            "--sandbox",
            "sandbox",
            "--poll-interval",
            "100",
        ];
        let out = repo.script(&forge, kind, "apply-merged.sh", &apply);
        assert_eq!(code(&out), 1, "{kind}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("not the expected"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(repo.submissions(), 0, "{kind}: nothing sent");

        // As reviewed: applied, each push once.
        repo.write_plan(&changed_plan());
        let out = repo.script(&forge, kind, "apply-merged.sh", &apply);
        assert_eq!(
            code(&out),
            0,
            "{kind}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains(&format!("as reviewed in #{REQUEST}: sha256:")));
        assert_eq!(repo.submissions(), 2, "{kind}: each push once");
        assert_eq!(
            repo.fixture
                .read("10.0.1.2", "/opt/app/app.tar.gz")
                .as_deref(),
            Some(&b"ci examples"[..])
        );
    }
}

#[test]
fn apply_on_merge_without_a_reviewed_hash_applies_nothing() {
    let repo = Repo::new();
    let forge = FakeForge::start();
    let out = repo.script(
        &forge,
        "github",
        "apply-merged.sh",
        &["plans/release.toml", "--sandbox", "sandbox"],
    );
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no review comment with a content hash"));
    assert_eq!(repo.submissions(), 0);
}

/// Waits (polling, bounded) until a journal line of plan `e2e` under `state` holds every
/// needle: the run has reached that point.
fn wait_for_journal(state: &Path, needles: &[&str]) {
    let dir = state.join("runs/e2e");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let journal: String = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        if journal
            .lines()
            .any(|l| needles.iter().all(|n| l.contains(n)))
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the journal never showed {needles:?}:\n{journal}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_runner_that_dies_mid_apply_is_finished_by_the_re_run_on_a_fresh_runner() {
    use std::os::unix::process::CommandExt as _;

    let repo = Repo::new();
    let v3 =
        |plan: &str| plan.replacen("account = \"root\"", "account = \"root\"\napi = \"v3\"", 1);
    repo.write_plan(&v3(TWO_STAGES));
    std::fs::write(
        repo.path("sandbox/jobsim.toml"),
        "[sim]\nstart_delay_ms = 1500\n",
    )
    .expect("jobsim.toml");
    repo.git(&["commit", "-qam", "v3"]);
    let base = repo.git(&["rev-parse", "HEAD"]);
    let forge = FakeForge::start();
    repo.write_plan(&v3(&changed_plan()));
    let out = repo.script(
        &forge,
        "github",
        "review-diff.sh",
        &["out", &base, "plans/release.toml"],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = repo.script(&forge, "github", "post-comments.sh", &["out"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    repo.git(&["commit", "-qam", "reviewed"]);

    // A JOB that outlives the runners, as a real one does.
    let server = crate::server::SimServer::start(&repo.path("sandbox"));
    let apply = [
        "plans/release.toml",
        "--endpoint",
        &server.url,
        "--poll-interval",
        "100",
    ];
    let runner = |state: &str| {
        let mut cmd = repo.script_command(&forge, "github", "apply-merged.sh", &apply);
        cmd.env("PLAN_STATE_DIR", repo.path(state))
            .env("BK_APP_CODE", "app")
            .env("BK_APP_SECRET", "e2e-secret-value")
            .env("BK_USERNAME", "admin");
        cmd
    };

    // The first runner dies (the script and its plan, as a runner's process group does)
    // while stage 1's job runs, and its state dir goes with it.
    let mut first = runner("runner-1")
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    wait_for_journal(&repo.path("runner-1"), &["push_submitted", "to-relays"]);
    let killed = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", first.id())])
        .status()
        .expect("kill");
    assert!(killed.success());
    let _ = first.wait();
    std::fs::remove_dir_all(repo.path("runner-1")).expect("rm state");

    // The re-run, on a fresh runner: resumed from JOB and finished.
    let out = runner("runner-2").output().expect("re-run");
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let requests: Vec<Value> = server
        .requests()
        .into_iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    for push in ["e2e/to-relays", "e2e/to-web"] {
        let jobs = requests
            .iter()
            .filter(|r| r["api"] == "fast_transfer_file" && !r["job_instance_id"].is_null())
            .filter(|r| crate::apply::task_base(&r["body"]["task_name"]) == push)
            .count();
        assert_eq!(jobs, 1, "{push} submitted once");
    }
    assert_eq!(
        repo.fixture
            .read("10.0.1.2", "/opt/app/app.tar.gz")
            .as_deref(),
        Some(&b"ci examples"[..])
    );
    // Resumed from JOB (the journal says it was rebuilt), not started again.
    wait_for_journal(&repo.path("runner-2"), &["\"rebuilt_from_job\":true"]);
}

/// The shell lines of the `script:` of `job` in the GitLab template, as GitLab runs them
/// (single-quoted YAML scalars unquoted). Any other form of a line fails the test, so the
/// template cannot grow a step this test does not run.
fn gitlab_script(job: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/gitlab-ci.yml");
    let template = std::fs::read_to_string(path).expect("template");
    let mut lines = template.lines().skip_while(|l| *l != format!("{job}:"));
    assert!(lines.next().is_some(), "no job {job}");
    let job_lines: Vec<&str> = lines
        .take_while(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('#'))
        .collect();
    let script: Vec<String> = job_lines
        .iter()
        .skip_while(|l| **l != "  script:")
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| {
            let item = l
                .strip_prefix("    - ")
                .unwrap_or_else(|| panic!("{job}: `{l}`"));
            match item.strip_prefix('\'').and_then(|i| i.strip_suffix('\'')) {
                Some(quoted) => quoted.replace("''", "'"),
                None => item.to_owned(),
            }
        })
        .collect();
    assert!(!script.is_empty(), "{job} has no script");
    script
}

impl Repo {
    /// The template's `plan-review` job on a merge request from BASE.
    fn gitlab_review(&self, forge: &FakeForge, base: &str) -> Output {
        let iid = REQUEST.to_string();
        self.gitlab_job(
            forge,
            "plan-review",
            &[
                ("CI_MERGE_REQUEST_DIFF_BASE_SHA", base),
                ("CI_MERGE_REQUEST_IID", &iid),
            ],
        )
    }

    /// The template's `job` as GitLab runs it: every line of its `script:` in one shell that
    /// stops at the first failing line, with the template's variables and `vars` (GitLab's
    /// predefined ones, the job's own). No request number is set: a job that needs one takes
    /// it from `vars`, or asks the forge.
    fn gitlab_job(&self, forge: &FakeForge, job: &str, vars: &[(&str, &str)]) -> Output {
        let mut script = String::from("set -eo pipefail\n");
        for line in gitlab_script(job) {
            script.push_str(&line);
            script.push('\n');
        }
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/scripts");
        let mut cmd = self.script_command(forge, "gitlab", "post-comments.sh", &[]);
        cmd.env("SCRIPTS", scripts).env_remove("PLAN_REVIEW_PR");
        for (key, value) in vars {
            cmd.env(key, value);
        }
        // `bash -c SCRIPT` with the environment script_command set up.
        let mut run = Command::new("bash");
        run.args(["-c", &script])
            .current_dir(self.fixture.dir.path());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(value) => run.env(key, value),
                None => run.env_remove(key),
            };
        }
        run.output().expect("run the job")
    }
}

#[test]
fn the_gitlab_template_reviews_unchanged_changed_and_invalid_plans() {
    let repo = Repo::new();
    // The job fetches the base from `origin`: here, the repository itself.
    repo.git(&["remote", "add", "origin", "."]);
    let forge = FakeForge::start();
    let base = repo.git(&["rev-parse", "HEAD"]);

    let out = repo.gitlab_review(&forge, &base);
    assert_eq!(code(&out), 0, "unchanged: {}", text(&out.stderr));
    assert_eq!(
        forge.calls("POST"),
        0,
        "nothing posted for an unchanged plan"
    );
    let report: Value =
        serde_json::from_str(&repo.read("gl-code-quality-report.json")).expect("code quality");
    assert_eq!(report, json!([]), "a valid plan has no Code Quality issue");
    let junit = repo.read("plan-check.xml");
    assert!(
        junit.contains("name=\"push to-web\"/>") && junit.contains("failures=\"0\""),
        "{junit}"
    );

    repo.write_plan(&changed_plan());
    let out = repo.gitlab_review(&forge, &base);
    assert_eq!(code(&out), 0, "changed: {}", text(&out.stderr));
    let comments = forge.comments();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(comments[0].body.starts_with(MARKER), "{}", comments[0].body);
    assert!(
        comments[0].body.contains("10.0.1.2"),
        "{}",
        comments[0].body
    );
    assert!(comments[0].body.contains("<!-- plan:hash e2e sha256:"));

    repo.write_plan(&TWO_STAGES.replace("hosts = \"web\"", "hosts = \"wbe\""));
    let out = repo.gitlab_review(&forge, &base);
    assert_eq!(
        code(&out),
        1,
        "invalid: the job fails: {}",
        text(&out.stderr)
    );
    let comments = forge.comments();
    assert_eq!(comments.len(), 1, "the note is updated, not posted again");
    assert!(comments[0].body.contains("wbe"), "{}", comments[0].body);
    assert!(
        !comments[0].body.contains("plan:hash"),
        "{}",
        comments[0].body
    );
    let report: Value =
        serde_json::from_str(&repo.read("gl-code-quality-report.json")).expect("code quality");
    let issue = report
        .as_array()
        .and_then(|issues| {
            issues
                .iter()
                .find(|i| i["check_name"] == "plan::parser::unknown_group")
        })
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(issue["severity"], "major", "{report}");
    assert_eq!(issue["location"]["path"], "plans/release.toml", "{report}");
    assert!(
        issue["location"]["lines"]["begin"].as_u64() > Some(1),
        "{report}"
    );
    assert!(
        issue["description"]
            .as_str()
            .is_some_and(|d| d.contains("wbe"))
    );
    assert_eq!(issue["fingerprint"].as_str().map(str::len), Some(64));
    let junit = repo.read("plan-check.xml");
    assert!(
        junit.contains("<failure message=") && junit.contains("wbe"),
        "{junit}"
    );
}

#[test]
fn the_gitlab_template_applies_the_reviewed_plan_on_merge() {
    let repo = Repo::new();
    repo.git(&["remote", "add", "origin", "."]);
    let forge = FakeForge::start();
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.write_plan(&changed_plan());
    let out = repo.gitlab_review(&forge, &base);
    assert_eq!(code(&out), 0, "review: {}", text(&out.stderr));
    repo.git(&["add", "plans/release.toml"]);
    repo.git(&["commit", "-qm", "reviewed change"]);
    let merged = repo.git(&["rev-parse", "HEAD"]);

    let sim = crate::server::SimServer::start(&repo.path("sandbox"));
    let out = repo.gitlab_job(
        &forge,
        ".plan-apply",
        &[
            ("PLAN", "plans/release.toml"),
            ("CI_COMMIT_SHA", &merged),
            ("BK_JOB_ENDPOINT", &sim.url),
            // The project's CI/CD variables the template names.
            ("BK_APP_CODE", "ci-app"),
            ("BK_APP_SECRET", "ci-secret-0f9e"),
            ("BK_USERNAME", "ci-bot"),
        ],
    );
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("as reviewed in #{REQUEST}: sha256:")),
        "{}",
        text(&out.stderr)
    );
    let events = repo.read("apply.ndjson");
    assert!(
        events
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok())
            && events.lines().count() > 2,
        "the job's artifact is the NDJSON events: {events}"
    );
    let junit = repo.read("plan-apply.xml");
    assert!(
        junit.contains("tests=\"2\" failures=\"0\"") && junit.contains("name=\"to-web\""),
        "the job's JUnit report: {junit}"
    );
    for output in [text(&out.stdout), text(&out.stderr), events] {
        assert!(
            !output.contains("ci-secret-0f9e"),
            "the secret leaked: {output}"
        );
    }
    let submitted = sim
        .requests()
        .iter()
        .filter(|r| r.api == "fast_push_file" && r.job_instance_id.is_some())
        .count();
    assert_eq!(submitted, 2, "each push submitted once");
}

/// One `run:` step of a GitHub workflow job.
#[derive(Debug, Default)]
struct GithubStep {
    run: String,
    env: Vec<(String, String)>,
    condition: Option<String>,
    continue_on_error: bool,
    /// `shell: bash` runs with `-eo pipefail`; the default shell with `-e` only.
    shell_bash: bool,
}

/// A YAML scalar as written on one line: single quotes removed, a trailing comment dropped.
fn yaml_scalar(value: &str) -> String {
    let value = value.trim();
    if let Some(quoted) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return quoted.replace("''", "'");
    }
    let value = value.split(" #").next().unwrap_or(value).trim();
    value.trim_matches('"').to_owned()
}

/// The `run:` steps of `job` in the workflow `file` (steps with `uses:` are the runner's, and
/// `cargo install` is replaced by the binary under test). A form this reader does not know
/// fails the test, so the workflow cannot grow a step the test does not run.
fn github_steps(file: &str, job: &str) -> Vec<GithubStep> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/ci")
        .join(file);
    let workflow = std::fs::read_to_string(path).expect("workflow");
    let lines: Vec<&str> = workflow
        .lines()
        .skip_while(|l| *l != format!("  {job}:"))
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("   ") || l.trim_start().starts_with('#'))
        .skip_while(|l| *l != "    steps:")
        .skip(1)
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    let mut steps: Vec<Vec<String>> = Vec::new();
    for line in lines {
        if let Some(first) = line.strip_prefix("      - ") {
            steps.push(vec![format!("        {first}")]);
        } else {
            steps.last_mut().expect("a step").push(line.to_owned());
        }
    }
    let mut runs = Vec::new();
    for step in steps {
        if step.iter().any(|l| l.starts_with("        uses:")) {
            continue;
        }
        let mut parsed = GithubStep::default();
        let mut i = 0;
        while i < step.len() {
            let line = &step[i];
            let (key, value) = line
                .trim()
                .split_once(':')
                .unwrap_or_else(|| panic!("{file}: `{line}`"));
            assert!(
                line.starts_with("        ") && !line.starts_with("         "),
                "{file}: `{line}`"
            );
            match key {
                "name" | "id" => {}
                "if" => parsed.condition = Some(yaml_scalar(value)),
                "continue-on-error" => parsed.continue_on_error = yaml_scalar(value) == "true",
                "shell" => {
                    assert_eq!(yaml_scalar(value), "bash", "{file}: `{line}`");
                    parsed.shell_bash = true;
                }
                "run" if value.trim() == "|" => {
                    while step.get(i + 1).is_some_and(|l| l.starts_with("          ")) {
                        i += 1;
                        parsed.run.push_str(&step[i][10..]);
                        parsed.run.push('\n');
                    }
                }
                "run" => parsed.run = yaml_scalar(value),
                "env" => {
                    while step.get(i + 1).is_some_and(|l| l.starts_with("          ")) {
                        i += 1;
                        let (k, v) = step[i].trim().split_once(':').expect("KEY: value");
                        parsed.env.push((k.to_owned(), yaml_scalar(v)));
                    }
                }
                _ => panic!("{file}: a step key this test does not run: `{line}`"),
            }
            i += 1;
        }
        if !parsed.run.starts_with("cargo install") {
            runs.push(parsed);
        }
    }
    runs
}

/// `text` with every `${{ expr }}` replaced from `context`; an unknown expression fails.
fn github_expand(text: &str, context: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("closed expression") + start;
        let expr = rest[start + 3..end].trim();
        let value = context
            .iter()
            .find(|(k, _)| *k == expr)
            .unwrap_or_else(|| panic!("no value for ${{{{ {expr} }}}}"));
        out.push_str(value.1);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

impl Repo {
    /// Runs the `run:` steps of a workflow job as the runner does: a failing step stops the
    /// job (unless `continue-on-error`), `if:` is `always()` or a step's outcome. Returns
    /// whether the job succeeded, and every step's output.
    fn github_job(
        &self,
        forge: &FakeForge,
        file: &str,
        job: &str,
        env: &[(&str, &str)],
        context: &[(&str, &str)],
    ) -> (bool, Vec<Output>) {
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/scripts");
        let (mut ok, mut outcomes, mut outputs) = (true, Vec::new(), Vec::new());
        for (index, step) in github_steps(file, job).iter().enumerate() {
            let run = match step.condition.as_deref() {
                None => ok,
                Some("always()") => true,
                Some("steps.check.outcome == 'failure'") => {
                    ok && outcomes.contains(&"check-failed")
                }
                Some(other) => panic!("{file}: an `if:` this test does not evaluate: {other}"),
            };
            if !run {
                continue;
            }
            let base = self.script_command(forge, "github", "post-comments.sh", &[]);
            let mut cmd = Command::new("bash");
            cmd.args(["--noprofile", "--norc", "-e"]);
            if step.shell_bash {
                cmd.args(["-o", "pipefail"]);
            }
            cmd.args(["-c", &github_expand(&step.run, context)])
                .current_dir(self.fixture.dir.path());
            for (key, value) in base.get_envs() {
                match value {
                    Some(value) => cmd.env(key, value),
                    None => cmd.env_remove(key),
                };
            }
            cmd.env("SCRIPTS", &scripts).env_remove("PLAN_REVIEW_PR");
            for (key, value) in env {
                cmd.env(key, value);
            }
            for (key, value) in &step.env {
                cmd.env(key, github_expand(value, context));
            }
            let out = cmd.output().expect("run the step");
            if !out.status.success() {
                if step.continue_on_error {
                    // Only the review's check step is marked so; its outcome drives the last step.
                    assert_eq!(index, 0, "{file}: {}", step.run);
                    outcomes.push("check-failed");
                } else {
                    ok = false;
                }
            }
            outputs.push(out);
        }
        (ok, outputs)
    }
}

#[test]
fn the_github_workflows_review_unchanged_changed_and_invalid_plans_and_apply_on_merge() {
    let repo = Repo::new();
    let forge = FakeForge::start();
    let base = repo.git(&["rev-parse", "HEAD"]);
    let request = REQUEST.to_string();
    let review = |repo: &Repo| {
        repo.github_job(
            &forge,
            "plan-review.yml",
            "review",
            &[],
            &[
                ("github.event.pull_request.base.sha", &base),
                ("github.event.pull_request.number", &request),
                ("github.token", "test-token"),
            ],
        )
    };

    let (ok, _) = review(&repo);
    assert!(ok, "unchanged");
    assert_eq!(
        forge.calls("POST"),
        0,
        "nothing posted for an unchanged plan"
    );

    repo.write_plan(&TWO_STAGES.replace("hosts = \"web\"", "hosts = \"wbe\""));
    let (ok, outputs) = review(&repo);
    assert!(!ok, "an invalid plan fails the job");
    assert!(
        text(&outputs[0].stdout).contains("::error file=plans/release.toml,line="),
        "the check step annotates: {}",
        text(&outputs[0].stdout)
    );
    assert!(forge.comments()[0].body.contains("wbe"));

    repo.write_plan(&changed_plan());
    let (ok, _) = review(&repo);
    assert!(ok, "changed");
    let comments = forge.comments();
    assert_eq!(comments.len(), 1, "one comment, updated: {comments:?}");
    assert!(comments[0].body.contains("<!-- plan:hash e2e sha256:"));

    repo.git(&["add", "plans/release.toml"]);
    repo.git(&["commit", "-qm", "reviewed change"]);
    let merged = repo.git(&["rev-parse", "HEAD"]);
    let outputs_file = repo.path("out-github-output");
    let github_output = outputs_file.display().to_string();
    let (ok, _) = repo.github_job(
        &forge,
        "plan-apply.yml",
        "changed",
        &[("GITHUB_OUTPUT", &github_output)],
        &[],
    );
    assert!(ok, "the changed job");
    let listed = std::fs::read_to_string(&outputs_file).expect("GITHUB_OUTPUT");
    assert_eq!(listed.trim(), r#"plans=["plans/release.toml"]"#);

    let sim = crate::server::SimServer::start(&repo.path("sandbox"));
    let (ok, outputs) = repo.github_job(
        &forge,
        "plan-apply.yml",
        "apply",
        &[("GITHUB_SHA", &merged)],
        &[
            ("github.token", "test-token"),
            ("matrix.plan", "plans/release.toml"),
            ("vars.BK_JOB_ENDPOINT", &sim.url),
            ("secrets.BK_APP_CODE", "ci-app"),
            ("secrets.BK_APP_SECRET", "ci-secret-0f9e"),
            ("vars.BK_USERNAME", "ci-bot"),
        ],
    );
    assert!(ok, "apply: {}", text(&outputs[0].stderr));
    let submitted = sim
        .requests()
        .iter()
        .filter(|r| r.api == "fast_push_file" && r.job_instance_id.is_some())
        .count();
    assert_eq!(submitted, 2, "each push submitted once");
    let events = repo.read("apply.ndjson");
    assert!(!events.contains("ci-secret-0f9e"));
}

#[test]
fn apply_writes_a_junit_report_with_the_failed_push_and_its_hosts() {
    // The source file is missing: the first push fails on its source, the second never runs.
    let fixture = Fixture::new(TWO_STAGES, "");
    let out = fixture.apply_sandbox(&["--junit", "apply.xml"]);
    assert_ne!(code(&out), 0, "{}", text(&out.stderr));
    let xml = std::fs::read_to_string(fixture.path("apply.xml")).expect("the JUnit report");
    assert!(
        xml.contains("<testsuites name=\"plan apply\" tests=\"2\" failures=\"1\""),
        "{xml}"
    );
    let relays = xml
        .split("<testcase ")
        .find(|case| case.contains("name=\"to-relays\""))
        .unwrap_or_else(|| panic!("{xml}"));
    assert!(relays.contains("<failure message=\"failed\""), "{xml}");
    assert!(
        relays.contains("10.0.1."),
        "the failed hosts are listed: {xml}"
    );
    let web = xml
        .split("<testcase ")
        .find(|case| case.contains("name=\"to-web\""))
        .unwrap_or_else(|| panic!("{xml}"));
    assert!(web.contains("<skipped message="), "{xml}");
}
