//! Every exit code of the table in cli.md (and the README), through the built binary, from
//! each situation the table names: 0 success, 1 an invalid plan (nothing sent), 2 a usage
//! error, 3 a push failed, 4 the run could not start (credentials missing, endpoint
//! unreachable, lock held, journal mismatch on `--resume`), 5 a push waits for a
//! confirmation, 130 interrupted. The waits here
//! follow the run's own NDJSON events, never the clock.

use std::io::{BufRead as _, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::Value;

use crate::apply::{Fixture, TWO_STAGES, code, text};

/// A plan whose only problem is a push without a source.
const INVALID: &str = "[plan]\nname = \"e2e\"\nbk_biz_id = 2\naccount = \"root\"\n\n\
    [[push]]\nname = \"a\"\nto = { hosts = \"10.0.1.1\", path = \"/data/\" }\n";

fn fixture() -> Fixture {
    let f = Fixture::new(TWO_STAGES, "");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"exit codes");
    f
}

#[test]
fn exit_0_success() {
    let f = fixture();
    let out = f
        .plan()
        .args(["check", "plan.toml"])
        .output()
        .expect("check");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("done: 2 pushes (2 succeeded)"));
}

#[test]
fn exit_1_invalid_plan_and_nothing_sent() {
    let f = Fixture::new(INVALID, "");
    for args in [
        &["check", "plan.toml"][..],
        &["show", "plan.toml"],
        &["apply", "plan.toml", "--sandbox", "sandbox"],
    ] {
        let out = f.plan().args(args).output().expect("run plan");
        assert_eq!(code(&out), 1, "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("plan.toml:"), "{args:?}");
    }
    // NDJSON readers get one `error` line saying why there is no run.
    let out = f.apply_sandbox(&["--format", "json"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let lines: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an NDJSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", text(&out.stdout));
    assert_eq!(lines[0]["event"], "error", "{}", lines[0]);
    assert!(
        lines[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a valid plan"))
    );
    assert!(f.requests().is_empty(), "nothing was sent");
}

/// `plan check plan.toml 2>&1 | head -3` on a long list of problems: the reader has gone
/// before the diagnostics are written. The command still ends with its own exit code (1, the
/// plan is invalid), never a panic (101). The pipe's read end is closed before the command
/// starts, so every write fails, whatever the timing.
#[test]
fn a_closed_stdout_or_stderr_keeps_the_exit_code() {
    let f = Fixture::new(INVALID, "");
    for args in [&["check", "plan.toml"][..], &["show", "plan.toml"]] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let closed = writer.try_clone().expect("pipe");
        let out = f
            .plan()
            .args(args)
            .stdout(Stdio::from(closed))
            .stderr(Stdio::from(writer))
            .output()
            .expect("run plan");
        assert_eq!(code(&out), 1, "{args:?}");
    }
    let f = fixture();
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = f
        .plan()
        .args(["show", "plan.toml"])
        .stdout(Stdio::from(writer))
        .output()
        .expect("run plan");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
}

#[test]
fn exit_2_usage_error() {
    let f = fixture();
    for args in [
        &["apply"][..],
        &["apply", "plan.toml", "--parallelism", "0"],
        &["check", "plan.toml", "--format", "yaml"],
        &["frobnicate"],
    ] {
        let out = f.plan().args(args).output().expect("run plan");
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out.stderr));
    }
    assert!(f.requests().is_empty(), "nothing was sent");
}

#[test]
fn exit_3_a_push_failed() {
    let f = Fixture::new(TWO_STAGES, "");
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("failed") && stdout.contains("blocked"),
        "{stdout}"
    );
}

/// A gated push with no terminal to approve it: the run stops there, nothing is sent for it,
/// and the closing line names the command that approves it.
#[test]
fn exit_5_a_push_waits_for_a_confirmation() {
    let f = Fixture::new(
        &TWO_STAGES.replace("name = \"to-web\"\n", "name = \"to-web\"\ngate = true\n"),
        "",
    );
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"exit codes");
    let out = f.apply_sandbox(&[]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 5, "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("waiting at gate"), "{stdout}");
    assert!(stdout.contains("--resume --confirm to-web"), "{stdout}");
    assert_eq!(f.read("10.0.2.1", "/opt/app/app.tar.gz"), None);
}

/// `--junit` into a directory that does not exist: said before the run, not after it.
#[test]
fn exit_4_junit_report_that_could_not_be_written() {
    let f = fixture();
    let out = f.apply_sandbox(&["--junit", "no-such-dir/apply.xml"]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no-such-dir") && text(&out.stderr).contains("nothing was sent"),
        "{}",
        text(&out.stderr)
    );
    assert!(f.requests().is_empty(), "nothing was sent");
    let out = f.apply_sandbox(&["--junit", "apply.xml"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
}

#[test]
fn exit_4_credentials_missing_endpoint_unreachable_or_journal_mismatch() {
    let f = fixture();
    // No credentials in the environment (`Fixture::plan` removes them).
    let out = f
        .apply_endpoint("http://127.0.0.1:9")
        .output()
        .expect("run plan");
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("BK_APP_CODE"));

    // Credentials, and a port nothing listens on (bound, then closed again).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let out = f
        .apply_endpoint(&format!("http://127.0.0.1:{port}"))
        .env("BK_APP_CODE", "plan-app")
        .env("BK_APP_SECRET", "secret")
        .env("BK_USERNAME", "admin")
        .output()
        .expect("run plan");
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unreachable"),
        "{}",
        text(&out.stderr)
    );

    // A failed run, the plan edited, then `--resume`: the journal does not match.
    let f = Fixture::new(TWO_STAGES, "");
    assert_eq!(code(&f.apply_sandbox(&[])), 3);
    std::fs::write(
        f.path("plan.toml"),
        TWO_STAGES.replace("/opt/app/", "/opt/app-2/"),
    )
    .expect("edit");
    let out = f.apply_sandbox(&["--resume"]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("changed `to-web`"),
        "{}",
        text(&out.stderr)
    );
}

/// `plan apply --format json` running in the background, its events read as they come.
struct Running {
    child: Child,
    events: Lines<BufReader<ChildStdout>>,
}

impl Running {
    fn start(f: &Fixture) -> Running {
        let mut child = f
            .plan()
            .args([
                "apply",
                "plan.toml",
                "--sandbox",
                "sandbox",
                "--poll-interval",
                "100",
                "--format",
                "json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn plan");
        let stdout = child.stdout.take().expect("stdout");
        Running {
            child,
            events: BufReader::new(stdout).lines(),
        }
    }

    /// Reads events until one is `kind` (with `field == value` when given).
    fn wait_for(&mut self, kind: &str, field: Option<(&str, u64)>) {
        for line in self.events.by_ref() {
            let event: Value = serde_json::from_str(&line.expect("stdout")).expect("NDJSON");
            let matches = field.is_none_or(|(k, v)| event[k] == v);
            if event["event"] == kind && matches {
                return;
            }
        }
        panic!("the run ended without a `{kind}` event");
    }

    fn signal(&self, sig: &str) {
        let sent = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill {sig}");
    }
}

#[test]
fn exit_4_while_another_run_holds_the_lock_and_130_when_that_run_is_interrupted() {
    // The first job never finishes on its own: the first run holds the lock until it is
    // interrupted, however slow the machine.
    let f = Fixture::new(
        TWO_STAGES,
        "[[fault]]\napi = \"fast_push_file\"\nkind = \"stuck\"\ncount = 1\n",
    );
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let mut first = Running::start(&f);
    first.wait_for("push_submitted", None);

    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("is being applied by")
            && stderr.contains(&format!("pid {}", first.child.id())),
        "{stderr}"
    );

    // Ctrl-C once (stop starting pushes), and once more when it was seen (terminate the
    // running job): the run ends interrupted.
    first.signal("-INT");
    first.wait_for("interrupted", Some(("level", 1)));
    first.signal("-INT");
    first.wait_for("run_finished", None);
    let out = first.child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 130, "{}", text(&out.stderr));
}
