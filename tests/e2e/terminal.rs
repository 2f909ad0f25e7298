//! What `plan apply` and `plan show` tell people and CI systems: NDJSON lines stamped with
//! their time and run, succeeded hosts beside failed ones, colours only where asked for, the
//! closing line after the user's own Ctrl-C, and `plan show --format junit`.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use serde_json::Value;

use crate::apply::{Fixture, TWO_STAGES, code, text};

/// TWO_STAGES with `0:10.0.2.2`'s agent down: `to-web` fails there and succeeds on 10.0.2.1.
fn one_web_host_down() -> Fixture {
    let f = Fixture::new(
        TWO_STAGES,
        "[[host]]\nhost = \"0:10.0.2.2\"\nagent = \"down\"\n",
    );
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"payload");
    f
}

fn ndjson(stdout: &[u8]) -> Vec<Value> {
    text(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn every_ndjson_line_carries_its_time_and_the_run_and_finished_pushes_name_their_hosts() {
    let f = one_web_host_down();
    let out = f.apply_sandbox(&["--format", "json", "--yes"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let lines = ndjson(&out.stdout);
    let run_started = lines
        .iter()
        .position(|l| l["event"] == "run_started")
        .expect("run_started");
    let run_id = lines[run_started]["run_id"].as_str().expect("run id");
    let mut last = chrono::DateTime::<chrono::Utc>::MIN_UTC;
    for (i, line) in lines.iter().enumerate() {
        let ts = line["ts"]
            .as_str()
            .unwrap_or_else(|| panic!("no ts: {line}"));
        assert!(ts.ends_with('Z'), "not UTC: {ts}");
        let at = chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339");
        assert!(at >= last, "lines out of order at {line}");
        last = at.into();
        if i >= run_started {
            assert_eq!(line["run_id"], run_id, "{line}");
        } else {
            assert!(line.get("run_id").is_none(), "before the run: {line}");
        }
    }
    let finished = |push: &str| {
        lines
            .iter()
            .find(|l| l["event"] == "push_finished" && l["report"]["name"] == push)
            .unwrap_or_else(|| panic!("no push_finished for {push}"))["report"]
            .clone()
    };
    let relays = finished("to-relays");
    assert_eq!(relays["succeeded_hosts"], serde_json::json!(["0:10.0.1.1"]));
    let web = finished("to-web");
    assert_eq!(web["status"], "failed");
    assert_eq!(web["succeeded_hosts"], serde_json::json!(["0:10.0.2.1"]));
    assert_eq!(web["failed_hosts"][0]["host"], "0:10.0.2.2");
    assert!(web.get("succeeded_hosts_unlisted").is_none(), "{web}");

    // Resumed, the push done in the first segment still names the hosts it reached.
    let out = f.apply_sandbox(&["--format", "json", "--yes", "--resume"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let lines = ndjson(&out.stdout);
    let report = &lines.last().expect("run_finished")["report"];
    let relays = &report["pushes"][0];
    assert_eq!(relays["status"], "already_succeeded", "{report}");
    assert_eq!(relays["succeeded_hosts"], serde_json::json!(["0:10.0.1.1"]));
}

#[test]
fn piped_output_has_no_colour_unless_forced() {
    let f = one_web_host_down();
    let apply = |extra: &[&str], no_color: bool| {
        let mut cmd = f.plan();
        if !no_color {
            cmd.env_remove("NO_COLOR");
        }
        let out = cmd
            .args([
                "apply",
                "plan.toml",
                "--sandbox",
                "sandbox",
                "--poll-interval",
                "100",
            ])
            .args(extra)
            .output()
            .expect("run plan");
        assert_eq!(code(&out), 3, "{}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    let (stdout, stderr) = apply(&[], false);
    assert!(
        stdout.contains("to-web") && stderr.contains("0:10.0.2.2"),
        "{stdout}{stderr}"
    );
    assert!(
        !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "{stdout:?}{stderr:?}"
    );
    // `--color always` wins over a pipe, and over NO_COLOR.
    let (stdout, stderr) = apply(&["--color", "always", "--resume"], true);
    assert!(stdout.contains("\u{1b}[31mfailed"), "{stdout:?}");
    assert!(stdout.contains("\u{1b}[32malready done"), "{stdout:?}");
    assert!(stderr.contains('\u{1b}'), "{stderr:?}");
    let (stdout, stderr) = apply(&["--color", "never", "--resume"], false);
    assert!(
        !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "{stdout:?}{stderr:?}"
    );
}

/// The user's Ctrl-C, sent once the first push is submitted (the line on stderr says so):
/// the closing line names the command that continues the run, which then does.
#[test]
fn after_ctrl_c_the_closing_line_says_how_to_resume() {
    let f = Fixture::new(TWO_STAGES, "[sim]\nstart_delay_ms = 1500\n");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"payload");
    let mut child = f
        .plan()
        .args([
            "apply",
            "plan.toml",
            "--sandbox",
            "sandbox",
            "--poll-interval",
            "100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn plan");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut said = String::new();
    loop {
        let mut line = String::new();
        let read = stderr.read_line(&mut line).expect("read stderr");
        assert!(read > 0, "plan ended before submitting: {said}");
        said.push_str(&line);
        if line.contains("to-relays: submitted") {
            break;
        }
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("read stderr");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 130, "{said}{rest}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "you interrupted the run: `plan apply plan.toml --sandbox sandbox --resume` continues it"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("fix the cause"), "{stdout}");
    let resumed = f
        .plan()
        .args(["apply", "plan.toml", "--sandbox", "sandbox", "--resume"])
        .output()
        .expect("resume");
    assert_eq!(code(&resumed), 0, "{}", text(&resumed.stderr));
    assert_eq!(
        f.read("10.0.2.2", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"payload"[..])
    );
}

#[test]
fn show_junit_has_a_case_per_push_and_failures_at_the_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = TWO_STAGES.replace(
        "to = { hosts = \"web\", path = \"/opt/app/\" }",
        "to = { hosts = \"web\", path = \"/opt/app/\" }\nenabled = false",
    );
    std::fs::write(dir.path().join("plan.toml"), &plan).expect("plan");
    let show = |file: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_plan"))
            .current_dir(dir.path())
            .args(["show", file, "--format", "junit"])
            .output()
            .expect("run plan")
    };
    let out = show("plan.toml");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let xml = text(&out.stdout);
    assert!(
        xml.contains("<testsuites name=\"plan show\" tests=\"2\" failures=\"0\""),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<testsuite name=\"plan.toml\" tests=\"2\" failures=\"0\" errors=\"0\" skipped=\"1\">"
        ),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"push to-relays\">\n      <system-out>stage 1, 1 host</system-out>"),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"push to-web\">\n      <skipped message=\"disabled in the plan\"/>\n      <system-out>stage 2, 2 hosts</system-out>"),
        "{xml}"
    );

    std::fs::write(
        dir.path().join("bad.toml"),
        TWO_STAGES.replace("hosts = \"relay\", path", "hosts = \"relays\", path"),
    )
    .expect("plan");
    let out = show("bad.toml");
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let xml = text(&out.stdout);
    assert!(xml.contains("failures=\"1\""), "{xml}");
    assert!(
        xml.contains("name=\"plan::parser::unknown_group at bad.toml:17:"),
        "{xml}"
    );
    assert!(
        !xml.contains("name=\"push "),
        "an invalid plan has no push cases: {xml}"
    );
}

/// JOB paces the transfer at 1 MB/s (jobsim's `speed_mb`): the progress line read from
/// JOB's file log says so, per host, without `--verbose`.
#[test]
fn progress_lines_show_the_throughput_jobs_logs_report() {
    let f = paced();
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("per host"))
        .unwrap_or_else(|| panic!("no throughput line: {stderr}"));
    assert!(
        line.starts_with("[stage 1] big: JOB ") && line.ends_with("  1.0 MB/s per host"),
        "{line}"
    );
    assert!(line.contains("Running  hosts 0/1"), "{line}");
}

/// A plan whose one push JOB paces at 1 MB/s (2 MiB: about two seconds).
fn paced() -> Fixture {
    let f = Fixture::new(
        r#"
[plan]
name = "paced"
bk_biz_id = 2
account = "root"

[[push]]
name = "big"
from = { hosts = "10.0.0.1", files = ["/data/big.bin"] }
to = { hosts = "10.0.1.1", path = "/data/" }
"#,
        "[sim]\nspeed_mb = 1\n",
    );
    f.write("10.0.0.1", "/data/big.bin", &vec![7u8; 2 << 20]);
    f
}

/// On a terminal (util-linux's `script` gives `plan` a pseudo-terminal): the progress bar
/// carries the throughput, and the report is coloured unless `NO_COLOR` says not to.
#[test]
fn on_a_terminal_the_bar_shows_the_throughput_and_the_report_is_coloured() {
    for no_color in [false, true] {
        let f = paced();
        let line = format!(
            "{} apply plan.toml --sandbox sandbox --poll-interval 100",
            env!("CARGO_BIN_EXE_plan")
        );
        let mut script = std::process::Command::new("script");
        script
            .args(["-qec", &line, "/dev/null"])
            .current_dir(f.path("."))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PLAN_STATE_DIR", f.path("state"))
            .env("TERM", "xterm")
            .stdin(Stdio::null());
        if no_color {
            script.env("NO_COLOR", "1");
        }
        let out = script
            .output()
            .expect("util-linux `script`, which gives the command a pseudo-terminal");
        let said = text(&out.stdout);
        assert_eq!(code(&out), 0, "{said}");
        assert!(said.contains("1.0 MB/s per host"), "{said:?}");
        assert_eq!(said.contains("\u{1b}[32msucceeded"), !no_color, "{said:?}");
    }
}
