//! `plan report` of a run with a failure, a retry and an interruption, against a standalone
//! simulator: text, Markdown, and the HTML page rendered by a real headless Chromium.
//!
//! Chromium is Debian's `chromium` (`.ci/run` installs it; `$PLAN_CHROMIUM` names another
//! binary). Without it the browser check says it skipped, except under CI (`CI` set), where
//! it fails, so CI cannot pass it unchecked. With `PLAN_REPORT_SCREENSHOT=FILE`, the
//! browser's screenshot of the page is also copied to FILE (how docs/img/report.png is made).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::apply::{Fixture, code, text};
use crate::server::SimServer;

/// The quickstart's plan, on the fixture's hosts, with a retry allowed on the first push.
const QUICKSTART: &str = r#"
[plan]
name = "quickstart"
description = "ship app 1.0.0 to the relays, then to the web tier"
bk_biz_id = 2
account = "root"
timeout = 600

[hosts.build]
ips = ["10.0.0.1"]
[hosts.relays]
ips = ["10.0.1.1", "10.0.1.2"]
[hosts.web]
ips = ["10.0.2.1", "10.0.2.2"]

[[push]]
name = "artifact-to-relays"
from = { hosts = "build", files = ["/data/release/app-1.0.0.tar.gz"] }
to = { hosts = "relays", path = "/data/stage/" }
retries = 1

[[push]]
name = "config-to-web"
from = { hosts = "build", files = ["/data/release/app.conf"] }
to = { hosts = "web", path = "/opt/app/conf/" }

[[push]]
name = "relays-to-web"
from = { hosts = "0:10.0.1.1", files = ["/data/stage/app-1.0.0.tar.gz"] }
to = { hosts = "web", path = "/opt/app/releases/" }
"#;

/// Jobs start 1.5 s after START (time to interrupt one running); the first job reaching
/// 10.0.1.1 fails there (the retry delivers); 10.0.2.2's agent is down (the failure).
const WORLD: &str = "[sim]\nstart_delay_ms = 1500\n\n[[host]]\nhost = \"0:10.0.1.1\"\nflaky_jobs = 1\n\n[[host]]\nhost = \"0:10.0.2.2\"\nagent = \"down\"\n";

const PUSHES: [&str; 3] = ["artifact-to-relays", "config-to-web", "relays-to-web"];

/// Runs the quickstart interrupted once and resumed to its end (exit 3: a push failed).
fn eventful_run() -> Fixture {
    let f = Fixture::new(QUICKSTART, WORLD);
    f.write("10.0.0.1", "/data/release/app-1.0.0.tar.gz", b"app 1.0.0");
    f.write("10.0.0.1", "/data/release/app.conf", b"port = 8080\n");
    let server = SimServer::start(&f.path("sandbox"));
    let apply = |extra: &[&str]| {
        let mut cmd = f.apply_endpoint(&server.url);
        cmd.args(["--continue", "independent"])
            .args(extra)
            .env("BK_APP_CODE", "app")
            .env("BK_APP_SECRET", "report-secret-value")
            .env("BK_USERNAME", "admin");
        cmd
    };
    let child = apply(&[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn plan");
    wait_for_journal(&f, "push_submitted", "artifact-to-relays");
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 130, "{}", text(&out.stderr));
    let out = apply(&["--resume"]).output().expect("resume");
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    f
}

/// Waits until a journal line holds both needles (the process writes it before acting).
fn wait_for_journal(f: &Fixture, kind: &str, push: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let journals = std::fs::read_dir(f.path("state/runs/quickstart"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let seen = journals.iter().any(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .any(|l| l.contains(kind) && l.contains(push))
        });
        if seen {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the journal never showed {kind} of {push}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn report(f: &Fixture, args: &[&str]) -> std::process::Output {
    f.plan()
        .args(["report", "plan.toml"])
        .args(args)
        .output()
        .expect("plan report")
}

#[test]
fn the_report_of_a_failed_retried_and_interrupted_run_shows_each_in_every_format() {
    let f = eventful_run();

    let out = report(&f, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let plain = text(&out.stdout);
    assert!(plain.contains("of plan quickstart: failed"), "{plain}");
    assert!(plain.contains("interrupted at +"), "{plain}");
    assert!(plain.contains("(2 attempts: 1 retry)"), "{plain}");
    assert!(
        plain.contains("config-to-web on 0:10.0.2.2: Abnormal Agent (status 310"),
        "{plain}"
    );
    assert!(!plain.contains('\u{1b}'), "no colour off a terminal");
    // The hash the run journaled is the plan's, as `plan show` prints it.
    let show = text(
        &f.plan()
            .args(["show", "plan.toml"])
            .output()
            .expect("show")
            .stdout,
    );
    let hash = show
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .expect("show prints the hash");
    assert!(plain.contains(&format!("hash       {hash}\n")), "{plain}");
    assert!(!plain.contains("report-secret-value"));

    // Colours when asked for (a terminal, or --color always), never otherwise.
    let out = report(&f, &["--color", "always"]);
    assert!(
        text(&out.stdout).contains("\u{1b}["),
        "{}",
        text(&out.stdout)
    );
    // Without PLAN: the only plan with runs in the state dir; a journal file as PLAN reads the
    // plan file it names for the stages.
    let out = f.plan().arg("report").output().expect("plan report");
    assert_eq!(text(&out.stdout), plain);
    let journal = f
        .path("state/runs/quickstart")
        .join(format!("{}.jsonl", run_ids(&f).pop().expect("a run")));
    let out = f
        .plan()
        .args(["report", &journal.display().to_string(), "--format", "html"])
        .output()
        .expect("plan report");
    assert!(
        text(&out.stdout).contains("data-stage=\"2\""),
        "{}",
        text(&out.stderr)
    );
    // No journal: the error names where it looked.
    let out = f
        .plan()
        .args(["report", "plan.toml", "--state-dir", "elsewhere"])
        .output()
        .expect("plan report");
    assert_eq!(code(&out), 4);
    assert!(
        text(&out.stderr).contains("has no run in `elsewhere/runs/quickstart`"),
        "{}",
        text(&out.stderr)
    );

    let out = report(&f, &["--format", "markdown"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let md = text(&out.stdout);
    assert!(
        md.contains("### Timeline") && md.contains("### Hosts"),
        "{md}"
    );
    assert!(
        md.contains("| 0:10.0.2.2 | - | ❌ Abnormal Agent |"),
        "{md}"
    );

    // An unknown run id lists the runs there are.
    let run_id = run_ids(&f).pop().expect("a run");
    let out = report(&f, &["--run", "20990101T000000.000Z-00000000"]);
    assert_eq!(code(&out), 4);
    assert!(text(&out.stderr).contains(&run_id), "{}", text(&out.stderr));
    let out = report(
        &f,
        &["--run", &run_id, "--format", "html", "-o", "report.html"],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let page = std::fs::read_to_string(f.path("report.html")).expect("report.html");
    assert!(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"));
    assert!(!page.contains("report-secret-value"));

    let Some(browser) = chromium() else { return };
    let dom = render(&browser, &f.path("report.html"), &f.path("chromium"));
    for push in PUSHES {
        let row = element(
            &dom,
            &format!("<g class=\"push\" data-push=\"{push}\""),
            "</g>",
        );
        assert!(row.contains("class=\"span running"), "{push} ran: {row}");
        assert!(
            row.contains("class=\"span queued"),
            "{push} was queued: {row}"
        );
    }
    let relays = element(
        &dom,
        "<g class=\"push\" data-push=\"artifact-to-relays\"",
        "</g>",
    );
    assert!(
        relays.contains("retry\" data-attempt=\"2\""),
        "the retry: {relays}"
    );
    assert!(dom.contains("class=\"interruption\"") && dom.contains("interrupted ▸"));
    assert!(dom.contains("class=\"resume\""));
    assert!(dom.contains("data-stage=\"2\""), "the stage boundary");
    let web2 = element(&dom, "<tr data-host=\"0:10.0.2.2\">", "</tr>");
    assert!(
        web2.contains("class=\"cell bad\" data-push=\"config-to-web\" data-status=\"310\"")
            && web2.contains("Abnormal Agent"),
        "{web2}"
    );
    assert!(dom.contains(
        "<article class=\"failure\" data-push=\"config-to-web\" data-host=\"0:10.0.2.2\">"
    ));

    let png = screenshot(&browser, &f.path("report.html"), &f.path("chromium-shot"));
    if let Some(keep) = std::env::var_os("PLAN_REPORT_SCREENSHOT") {
        std::fs::write(keep, &png).expect("copy the screenshot");
    }
}

/// Run ids of the fixture's plan, oldest first.
fn run_ids(f: &Fixture) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(f.path("state/runs/quickstart"))
        .expect("runs")
        .filter_map(Result::ok)
        .filter_map(|e| Some(e.path().file_stem()?.to_string_lossy().into_owned()))
        .collect();
    ids.sort();
    ids
}

/// The text from `start` to the first `end` after it.
fn element<'d>(dom: &'d str, start: &str, end: &str) -> &'d str {
    let from = dom
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in the page:\n{dom}"));
    let to = dom[from..]
        .find(end)
        .map_or(dom.len(), |i| from + i + end.len());
    &dom[from..to]
}

/// `$PLAN_CHROMIUM`, else `chromium` on the PATH; `None` (skipped) outside CI when absent.
#[allow(
    clippy::print_stderr,
    reason = "a skipped check says why in the test output"
)]
fn chromium() -> Option<String> {
    let browser = std::env::var("PLAN_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let found = Command::new(&browser)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(browser);
    }
    let under_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(
        !under_ci,
        "the browser check cannot run under CI: no `{browser}`"
    );
    eprintln!("skipped: no `{browser}` to render the report in (install Debian's chromium)");
    None
}

/// Chromium headless, offline as far as flags go, with a profile of its own.
fn headless(browser: &str, profile: &Path) -> Command {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// The page's DOM after Chromium loaded it from disk.
fn render(browser: &str, page: &Path, profile: &Path) -> String {
    let out = headless(browser, profile)
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The page as Chromium draws it at 1280 x 1400: a PNG.
fn screenshot(browser: &str, page: &Path, profile: &Path) -> Vec<u8> {
    let shot = profile.with_extension("png");
    let out = headless(browser, profile)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,1400")
        .arg("--hide-scrollbars")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    png
}
