//! Credentials never leak. Canary values in `BK_APP_SECRET`, `BK_TOKEN` and `BK_ACCESS_TOKEN`
//! must not appear in stdout or stderr at any verbosity (`-q`, default, `-v`, `-vv`,
//! `RUST_LOG=trace`, which turns on reqwest's, hyper's and rustls's own logs), nor in any file
//! under the state dir (journal, lock, also while the run holds the lock), nor in
//! `plan show --format json|markdown`, nor in the simulator's request log (on disk and in
//! memory); also when calls fail, are retried, and when a server echoes the request back in
//! its error messages. v2 through ESB (the body carries `bk_app_secret` and `bk_token`) and
//! v3 through the API gateway (header only).

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::apply::{Fixture, TWO_STAGES, code, text};
use crate::faults::Sim;

const SECRET: &str = "CANARY-app-secret-7f3a9c51";
const TOKEN: &str = "CANARY-bk-token-51e2b8d0";
const ACCESS: &str = "CANARY-access-token-c0ffee42";
const CANARIES: [&str; 3] = [SECRET, TOKEN, ACCESS];

/// Fails with the place and the context when any canary appears in `haystack`.
fn assert_clean(place: &str, haystack: &str) {
    for canary in CANARIES {
        if let Some(at) = haystack.find(canary) {
            let from = haystack[..at]
                .char_indices()
                .rev()
                .nth(120)
                .map_or(0, |(i, _)| i);
            panic!(
                "{canary} leaked into {place}: ...{}...",
                &haystack[from..(at + canary.len()).min(haystack.len())]
            );
        }
    }
    // Escaped forms (JSON inside JSON, percent-encoding) would hide a leak from a plain search.
    for canary in CANARIES {
        let tail = &canary[canary.len() - 8..];
        assert!(
            !haystack.contains(tail),
            "{place}: a canary's tail `{tail}` appears"
        );
    }
}

/// Every line of the plan's journals so far.
fn journal_lines(f: &Fixture) -> Vec<String> {
    let Ok(runs) = std::fs::read_dir(f.path("state/runs/e2e")) else {
        return Vec::new();
    };
    runs.flatten()
        .filter_map(|run| std::fs::read_to_string(run.path()).ok())
        .flat_map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// Every file under `dir`, recursively, checked (a file that cannot be read fails the test,
/// rather than passing as empty).
fn assert_dir_clean(dir: &Path) -> usize {
    let mut checked = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            checked += assert_dir_clean(&path);
        } else {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_clean(
                &path.display().to_string(),
                &String::from_utf8_lossy(&bytes),
            );
            checked += 1;
        }
    }
    checked
}

fn assert_output_clean(what: &str, out: &Output) {
    assert_clean(&format!("stdout of {what}"), &text(&out.stdout));
    assert_clean(&format!("stderr of {what}"), &text(&out.stderr));
}

/// The ways to ask for more or less output.
const VERBOSITY: [(&str, &[&str], Option<&str>); 6] = [
    ("-q", &["-q"], None),
    ("default", &[], None),
    ("-v", &["-v"], None),
    ("-vv", &["-vv"], None),
    ("RUST_LOG=trace", &[], Some("trace")),
    (
        "-vv --format json, RUST_LOG=trace",
        &["-vv", "--format", "json"],
        Some("trace"),
    ),
];

fn run(
    f: &Fixture,
    url: &str,
    creds: &[(&str, &str)],
    args: &[&str],
    rust_log: Option<&str>,
) -> Output {
    let mut cmd = f.apply_endpoint(url);
    cmd.args(args);
    for (k, v) in creds {
        cmd.env(k, v);
    }
    match rust_log {
        Some(level) => cmd.env("RUST_LOG", level),
        None => cmd.env_remove("RUST_LOG"),
    };
    cmd.output().expect("run plan")
}

/// A world in which things go wrong on the way (retries, a failed host, a failed query) but
/// the run still gets far enough to write every kind of journal line.
const TROUBLE: &str = "\
[[app]]
code = \"plan-app\"
secret = \"CANARY-app-secret-7f3a9c51\"

[[host]]
host = \"0:10.0.2.2\"
agent = \"down\"

[[fault]]
api = \"*\"
kind = \"http_503\"
count = 2

[[fault]]
api = \"get_job_instance_status\"
kind = \"job_error\"
code = 1240002
count = 2
";

fn v3(plan: &str) -> String {
    plan.replacen("account = \"root\"", "account = \"root\"\napi = \"v3\"", 1)
}

/// Runs the plan at every verbosity against a troubled simulator and checks every output,
/// the state dir and the request log.
fn check_front_door(plan: &str, gateway: bool, creds: &[(&str, &str)]) -> usize {
    let mut checked = 0;
    for (name, args, rust_log) in VERBOSITY {
        let f = Fixture::new(plan, TROUBLE);
        f.write("10.0.0.1", "/data/release/app.tar.gz", b"payload");
        let sim = Sim::start(&f);
        let url = if gateway {
            sim.gateway()
        } else {
            sim.url.clone()
        };
        let out = run(&f, &url, creds, args, rust_log);
        // The run really happened: 10.0.2.2 failed, so exit 3; the secret was accepted.
        assert_eq!(code(&out), 3, "{name}: {}", text(&out.stderr));
        assert_eq!(
            f.read("10.0.1.1", "/data/stage/app.tar.gz").as_deref(),
            Some(&b"payload"[..]),
            "{name}"
        );
        assert_output_clean(name, &out);
        if rust_log.is_some() {
            // The trace really was on (and still said nothing secret).
            let stderr = text(&out.stderr);
            assert!(
                stderr.contains("TRACE") || stderr.contains("DEBUG"),
                "{name}"
            );
        }
        checked += 2;
        checked += assert_dir_clean(&f.path("state"));
        checked += assert_dir_clean(&f.path("sandbox/.jobsim"));
        let memory = serde_json::to_string(&sim.requests()).expect("json");
        assert!(memory.contains("fast_"), "the log is not empty");
        assert_clean("jobsim's request log in memory", &memory);
        checked += 1;
    }
    checked
}

/// The number of outputs and files searched, seen with `--nocapture`.
#[allow(
    clippy::print_stderr,
    reason = "the check's figures, read with --nocapture"
)]
fn figures(front: &str, checked: usize) {
    eprintln!("secrets-figures {front}: {checked} outputs and files searched for 3 canaries");
}

#[test]
fn v2_through_esb_with_bk_token_leaks_nothing_at_any_verbosity() {
    let creds = [
        ("BK_APP_CODE", "plan-app"),
        ("BK_APP_SECRET", SECRET),
        ("BK_TOKEN", TOKEN),
    ];
    let checked = check_front_door(TWO_STAGES, false, &creds);
    assert!(checked >= 30, "{checked}");
    figures("v2/ESB", checked);
}

#[test]
fn v3_through_the_gateway_with_an_access_token_leaks_nothing_at_any_verbosity() {
    let creds = [
        ("BK_APP_CODE", "plan-app"),
        ("BK_APP_SECRET", SECRET),
        ("BK_ACCESS_TOKEN", ACCESS),
    ];
    let checked = check_front_door(&v3(TWO_STAGES), true, &creds);
    assert!(checked >= 30, "{checked}");
    figures("v3/gateway", checked);
}

#[test]
fn the_lock_and_journal_of_a_running_apply_hold_no_secret() {
    let f = Fixture::new(TWO_STAGES, "[sim]\nstart_delay_ms = 1500\n");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"payload");
    let sim = Sim::start(&f);
    let mut cmd = f.plan();
    cmd.args([
        "apply",
        "plan.toml",
        "--endpoint",
        &sim.url,
        "--yes",
        "--poll-interval",
        "100",
    ])
    .env("BK_APP_CODE", "plan-app")
    .env("BK_APP_SECRET", SECRET)
    .env("BK_TOKEN", TOKEN)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    // Mid-run, once the job was submitted (it waits 1.5 s in JOB): the lock names its holder,
    // and the journal holds the submission. Both are read whole, never an empty file.
    let lock = f.path("state/locks/e2e.lock");
    let pid = format!("\"pid\": {}", child.id());
    let deadline = Instant::now() + Duration::from_secs(20);
    let held = loop {
        let held = std::fs::read_to_string(&lock).unwrap_or_default();
        let submitted = journal_lines(&f)
            .iter()
            .any(|l| l.contains("push_submitted"));
        if held.contains(&pid) && submitted {
            break held;
        }
        assert!(Instant::now() < deadline, "no holder or submission: {held}");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_clean("the lock file", &held);
    assert!(assert_dir_clean(&f.path("state")) >= 2);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_output_clean("a running apply", &out);
    assert_dir_clean(&f.path("state"));
}

#[test]
fn show_check_and_graph_print_no_secret() {
    let f = Fixture::new(TWO_STAGES, "");
    for args in [
        &["show", "plan.toml", "--format", "json"][..],
        &["show", "plan.toml", "--format", "markdown"],
        &["show", "plan.toml"],
        &["show", "plan.toml", "--format", "json", "--api", "v3"],
        &["check", "plan.toml", "--format", "json"],
        &["graph", "plan.toml", "--format", "json"],
    ] {
        let out = f
            .plan()
            .args(args)
            .env("BK_APP_CODE", "plan-app")
            .env("BK_APP_SECRET", SECRET)
            .env("BK_TOKEN", TOKEN)
            .env("BK_ACCESS_TOKEN", ACCESS)
            .env("RUST_LOG", "trace")
            .output()
            .expect("run plan");
        assert_eq!(code(&out), 0, "{args:?}: {}", text(&out.stderr));
        assert_output_clean(&format!("{args:?}"), &out);
        if args.contains(&"json") && args[0] == "show" {
            // The request bodies are there, without credentials.
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("show json");
            let body = &doc["pushes"][0]["request"];
            assert!(body.is_object(), "{doc}");
            for key in ["bk_app_secret", "bk_token", "access_token", "bk_app_code"] {
                assert!(body.get(key).is_none(), "{key} in {body}");
            }
        }
    }
}

/// A server that answers every request with the request itself (request line, headers and
/// body) inside its error message, as a careless proxy or a debug build of a service might;
/// `status` picks the HTTP status (200 with `result: false`, or a gateway-style error).
fn echo_server(status: u16) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    listener.set_nonblocking(false).expect("blocking");
    let handle = std::thread::spawn(move || {
        let stop = Instant::now() + Duration::from_secs(60);
        for stream in listener.incoming() {
            if Instant::now() > stop {
                break;
            }
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            // Keep-alive: answer request after request on one connection.
            let mut buf = Vec::new();
            loop {
                let mut chunk = [0u8; 8192];
                let Ok(n) = stream.read(&mut chunk) else {
                    break;
                };
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() < end + 4 + length {
                    continue;
                }
                let request = String::from_utf8_lossy(&buf[..end + 4 + length]).into_owned();
                buf.drain(..end + 4 + length);
                let body = if status == 200 {
                    serde_json::json!({"result": false, "code": 1_240_003, "message": format!("Bad Request: {request}"), "data": null})
                } else {
                    serde_json::json!({"result": false, "code": 1_650_001, "code_name": "INTERNAL_SERVER_ERROR", "message": request, "data": null})
                };
                let body = body.to_string();
                let reason = if status == 200 {
                    "OK"
                } else {
                    "Internal Server Error"
                };
                let answer = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(answer.as_bytes()).is_err() {
                    break;
                }
            }
        }
    });
    (url, handle)
}

#[test]
fn error_messages_that_echo_the_request_are_withheld() {
    for status in [200, 500] {
        let (url, _server) = echo_server(status);
        for gateway in [false, true] {
            let plan = if gateway {
                v3(TWO_STAGES)
            } else {
                TWO_STAGES.to_owned()
            };
            let f = Fixture::new(&plan, "");
            let base = if gateway {
                format!("{url}/api/bk-job/prod")
            } else {
                url.clone()
            };
            // The quietest and the loudest output (each run waits out the client's retries).
            for (name, args, rust_log) in [VERBOSITY[1], VERBOSITY[5]] {
                let out = run(
                    &f,
                    &base,
                    &[
                        ("BK_APP_CODE", "plan-app"),
                        ("BK_APP_SECRET", SECRET),
                        ("BK_TOKEN", TOKEN),
                    ],
                    args,
                    rust_log,
                );
                // The echo was received and refused or reported, never shown.
                assert!(
                    matches!(code(&out), 3 | 4),
                    "{status} {name}: {}",
                    text(&out.stderr)
                );
                assert_output_clean(&format!("{status} {name}"), &out);
                let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
                assert!(said.contains("withheld"), "{status} {name}: {said}");
                assert_dir_clean(&f.path("state"));
            }
        }
    }
}
