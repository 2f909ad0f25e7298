//! A hostile server on loopback in front of `jobsim`: it echoes the credentials it receives into
//! every field of every answer, redirects elsewhere, answers huge and slowly. No canary may
//! appear in any output or file, and no request may reach any host but the endpoint.
//!
//! Every attack runs `plan apply` twice: v2 through ESB (the body carries `bk_app_secret` and
//! `bk_token`) at `-v`, and v3 through the API gateway (header only) at `-vv --format json` with
//! `RUST_LOG=trace`. stdout, stderr and every file the run leaves (journal, reports, and the
//! state dir and lock read while the run holds it) are searched for every run of 8 characters
//! of either canary, in any case.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::server::SimServer;

const SECRET: &str = "CANARY-SECRET-123";
const TOKEN: &str = "CANARY-TOKEN-456";
/// The shortest run of a canary that counts as a leak (plan withholds runs this long).
const RUN: usize = 8;

const PLAN: &str = r#"
[plan]
name = "hostile"
bk_biz_id = 2
account = "root"

[hosts.src]
ips = ["10.0.0.1"]
[hosts.web]
ips = ["10.0.2.1"]

[[push]]
name = "to-web"
from = { hosts = "src", files = ["/data/app.tar.gz"] }
to = { hosts = "web", path = "/opt/app/" }
"#;

/// The simulator knows the app, so the echoed secret is a real one.
const WORLD: &str = "[[app]]\ncode = \"plan-app\"\nsecret = \"CANARY-SECRET-123\"\n";

/// Which calls an attack hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Calls {
    /// Every call, the credentials check before the run included: the run cannot start.
    Every,
    /// Only submissions (`fast_push_file`, `fast_transfer_file`): the push fails.
    Submissions,
}

/// What the server in front of `jobsim` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    /// jobsim's answers, with the echo added as `message`, `code_name`, unknown fields, the
    /// job's name and a header: nothing a client needs is broken, so the run succeeds.
    EchoAround,
    /// jobsim's answers with the echo appended to every string (addresses, times, names).
    EchoEverywhere,
    /// The submission's `job_instance_id` is the echo: serde quotes it in its error.
    WrongType,
    /// JOB's refusal whose message carries the secret across its 200th character.
    Refuse(Calls),
    /// A gateway error whose `code_name` and `message` are the echo.
    GatewayError(Calls),
    /// An HTML page showing the echo.
    Html(Calls),
    /// A redirect (this status) to another loopback port, the echo in its query.
    Redirect(u16, Calls),
    /// The target's agent is down, so the push fails and its logs are read: every
    /// `log_content` carries the echo, plainly and spelled with HTML entities (`&#45;`), which
    /// v2's logs are unescaped from.
    EchoInLogs,
    /// The submission is passed on, then answered with 300 MB of blanks, announced or chunked.
    Huge { chunked: bool },
    /// The submission is passed on, then answered one byte every 200 ms, forever.
    Slow,
}

/// The server's state: the attack, where `jobsim` and the redirect trap are, and what it saw.
struct Front {
    attack: Attack,
    sim: String,
    trap: String,
    http: reqwest::Client,
    /// Requests whose echo carried the secret: the attack really had something to leak.
    echoed: AtomicUsize,
}

/// A hostile server in front of a `jobsim`, a trap that counts connections, and the plan.
struct Scene {
    dir: tempfile::TempDir,
    sim: SimServer,
    front: Arc<Front>,
    url: String,
    trapped: Arc<AtomicUsize>,
}

impl Scene {
    fn start(attack: Attack, plan: &str) -> Scene {
        Scene::start_with(attack, plan, "")
    }

    /// `world`: more of `jobsim.toml` (job plans, say).
    fn start_with(attack: Attack, plan: &str, world: &str) -> Scene {
        let extra_world = world;
        let dir = tempfile::tempdir().expect("tempdir");
        for ip in ["10.0.0.1", "10.0.2.1"] {
            std::fs::create_dir_all(dir.path().join("sandbox/hosts/0").join(ip)).expect("mkdir");
        }
        let source = dir.path().join("sandbox/hosts/0/10.0.0.1/data/app.tar.gz");
        std::fs::create_dir_all(source.parent().expect("parent")).expect("mkdir");
        std::fs::write(&source, b"payload").expect("source");
        let mut world = format!("{WORLD}\n{extra_world}\n");
        if attack == Attack::EchoInLogs {
            world.push_str("\n[[host]]\nhost = \"0:10.0.2.1\"\nagent = \"down\"\n");
        }
        std::fs::write(dir.path().join("sandbox/jobsim.toml"), world).expect("world");
        std::fs::write(dir.path().join("plan.toml"), plan).expect("plan");
        let sim = SimServer::start(&dir.path().join("sandbox"));
        let trapped = Arc::new(AtomicUsize::new(0));
        let (front, url) = sim.runtime().block_on(async {
            let trap = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let trap_url = format!("http://{}", trap.local_addr().expect("addr"));
            let counter = Arc::clone(&trapped);
            tokio::spawn(async move {
                while trap.accept().await.is_ok() {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            });
            let front = Arc::new(Front {
                attack,
                sim: sim.url.clone(),
                trap: trap_url,
                http: reqwest::Client::new(),
                echoed: AtomicUsize::new(0),
            });
            let app = axum::Router::new()
                .fallback(answer)
                .with_state(Arc::clone(&front));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let url = format!("http://{}", listener.local_addr().expect("addr"));
            tokio::spawn(async move { axum::serve(listener, app).await });
            (front, url)
        });
        Scene {
            dir,
            sim,
            front,
            url,
            trapped,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

async fn answer(State(front): State<Arc<Front>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let echo = echo(&parts.headers, &body);
    if echo.contains(SECRET) {
        front.echoed.fetch_add(1, Ordering::SeqCst);
    }
    let path = parts.uri.path();
    let submission = path.contains("fast_push_file") || path.contains("fast_transfer_file");
    let hit = |calls: Calls| calls == Calls::Every || submission;
    match front.attack {
        Attack::Redirect(status, calls) if hit(calls) => {
            let query: String = echo.chars().filter(char::is_ascii_alphanumeric).collect();
            let location = format!("{}{path}?echo={query}&secret={SECRET}", front.trap);
            return response(status, &[(header::LOCATION, location)], Body::empty());
        }
        Attack::Refuse(calls) if hit(calls) => {
            // ESB's auth failure stops the run before it starts; a validation code refuses
            // the push.
            let code = if calls == Calls::Every {
                1_306_000
            } else {
                1_240_003
            };
            let message = across_the_cut(&echo);
            return json_response(
                200,
                &json!({"result": false, "code": code, "message": message, "data": null}),
            );
        }
        Attack::GatewayError(calls) if hit(calls) => {
            let (status, code) = if calls == Calls::Every {
                (400, 1_640_001)
            } else {
                (500, 1_650_001)
            };
            let body = json!({"result": false, "code": code, "code_name": echo,
                              "message": across_the_cut(&echo), "data": null});
            return json_response(status, &body);
        }
        Attack::Html(calls) if hit(calls) => {
            let page = format!("<html><body><h1>Debug</h1><pre>{echo}</pre></body></html>");
            return response(
                200,
                &[(header::CONTENT_TYPE, "text/html".into())],
                page.into(),
            );
        }
        _ => {}
    }
    let (status, mut answer) = front.forward(&parts, body).await;
    match front.attack {
        Attack::EchoAround => echo_around(&mut answer, &echo),
        Attack::EchoEverywhere => {
            echo_into_strings(&mut answer, &echo);
            echo_around(&mut answer, &echo);
        }
        Attack::WrongType if submission => answer["data"]["job_instance_id"] = json!(echo),
        Attack::EchoInLogs => echo_into_logs(&mut answer, &echo),
        Attack::Huge { chunked } if submission => return huge(chunked),
        Attack::Slow if submission => return slow(),
        _ => {}
    }
    let mut out = json_response(status, &answer);
    if matches!(front.attack, Attack::EchoAround | Attack::EchoEverywhere)
        && let Ok(value) = HeaderValue::from_str(&echo)
    {
        out.headers_mut().insert("x-echo", value.clone());
        out.headers_mut().insert("retry-after", value);
    }
    out
}

impl Front {
    /// Passes the request on to `jobsim` as it came; its answer as JSON.
    async fn forward(&self, parts: &axum::http::request::Parts, body: Bytes) -> (u16, Value) {
        let target = format!(
            "{}{}",
            self.sim,
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let mut request = self.http.request(parts.method.clone(), target).body(body);
        for name in ["x-bkapi-authorization", "content-type"] {
            if let Some(value) = parts.headers.get(name) {
                request = request.header(name, value);
            }
        }
        let Ok(answer) = request.send().await else {
            return (502, Value::Null);
        };
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }
}

/// What the request carried: the auth header and the body, as a careless debug page shows it.
fn echo(headers: &HeaderMap, body: &[u8]) -> String {
    let auth = headers
        .get("x-bkapi-authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&body[..body.len().min(2000)]).replace(['\r', '\n'], " ");
    format!("you sent X-Bkapi-Authorization: {auth} with body {body}")
}

/// The echo placed so the secret spans characters 190 to 207: a message cut at 200 before
/// scrubbing would show `CANARY-SECRET-12`.
fn across_the_cut(echo: &str) -> String {
    let at = echo.find(SECRET).map_or(0, |i| echo[..i].chars().count());
    format!("{}{echo}", "x".repeat(190usize.saturating_sub(at)))
}

fn echo_around(answer: &mut Value, echo: &str) {
    let Some(map) = answer.as_object_mut() else {
        return;
    };
    for key in ["message", "code_name", "echo"] {
        map.insert(key.to_owned(), json!(echo));
    }
    if let Some(data) = map.get_mut("data").and_then(Value::as_object_mut) {
        data.insert("echo".to_owned(), json!(echo));
        if data.contains_key("job_instance_name") {
            data.insert("job_instance_name".to_owned(), json!(echo));
        }
    }
}

fn echo_into_logs(value: &mut Value, echo: &str) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if key == "log_content" {
                    let entities = echo.replace('-', "&#45;");
                    *value = json!(format!(
                        "{} {echo} {entities}",
                        value.as_str().unwrap_or("")
                    ));
                } else {
                    echo_into_logs(value, echo);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| echo_into_logs(v, echo)),
        _ => {}
    }
}

fn echo_into_strings(value: &mut Value, echo: &str) {
    match value {
        Value::String(s) => {
            s.push(' ');
            s.push_str(echo);
        }
        Value::Array(items) => items.iter_mut().for_each(|v| echo_into_strings(v, echo)),
        Value::Object(map) => map.values_mut().for_each(|v| echo_into_strings(v, echo)),
        _ => {}
    }
}

/// 300 MB of blanks (a valid start of JSON), announced by `Content-Length` or chunked.
fn huge(chunked: bool) -> Response {
    const MEG: usize = 1 << 20;
    const TOTAL: usize = 300;
    let block = Bytes::from(vec![b' '; MEG]);
    let chunks = futures::stream::iter(
        (0..TOTAL).map(move |_| Ok::<_, std::convert::Infallible>(block.clone())),
    );
    let mut headers = vec![(header::CONTENT_TYPE, "application/json".to_owned())];
    if !chunked {
        headers.push((header::CONTENT_LENGTH, (TOTAL * MEG).to_string()));
    }
    response(200, &headers, Body::from_stream(chunks))
}

/// One blank every 200 ms, for ten minutes.
fn slow() -> Response {
    let drip = futures::stream::unfold(0u32, |n| async move {
        (n < 3000).then_some(())?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some((
            Ok::<_, std::convert::Infallible>(Bytes::from_static(b" ")),
            n + 1,
        ))
    });
    response(
        200,
        &[(header::CONTENT_TYPE, "application/json".to_owned())],
        Body::from_stream(drip),
    )
}

fn response(status: u16, headers: &[(header::HeaderName, String)], body: Body) -> Response {
    let mut out = Response::new(body);
    *out.status_mut() = StatusCode::from_u16(status).expect("status");
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            out.headers_mut().insert(name.clone(), value);
        }
    }
    out
}

fn json_response(status: u16, body: &Value) -> Response {
    response(
        status,
        &[(header::CONTENT_TYPE, "application/json".to_owned())],
        body.to_string().into(),
    )
}

/// Fails naming the place when any run of [`RUN`] characters of a canary is in `text`.
fn assert_clean(place: &str, text: &str) {
    let lower = text.to_ascii_lowercase();
    for canary in [SECRET, TOKEN] {
        let canary = canary.to_ascii_lowercase();
        for at in 0..=canary.len() - RUN {
            let run = &canary[at..at + RUN];
            if let Some(found) = lower.find(run) {
                let from = found.saturating_sub(100);
                let to = (found + 100).min(text.len());
                panic!(
                    "`{run}` leaked into {place}: ...{}...",
                    String::from_utf8_lossy(&text.as_bytes()[from..to])
                );
            }
        }
    }
}

/// Searches every file under `dir` but the simulator's own configuration (which holds the
/// app's secret by design); returns how many were searched.
fn assert_files_clean(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut searched = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            searched += assert_files_clean(&path);
        } else if path.file_name().is_some_and(|n| n != "jobsim.toml") {
            // A file may be gone by now (the lock, at the end of a run).
            if let Ok(bytes) = std::fs::read(&path) {
                assert_clean(
                    &path.display().to_string(),
                    &String::from_utf8_lossy(&bytes),
                );
                searched += 1;
            }
        }
    }
    searched
}

/// How one run is made.
struct Run {
    /// v3 through the gateway front door, or v2 through ESB.
    gateway: bool,
    args: &'static [&'static str],
    rust_log: Option<&'static str>,
}

const RUNS: [Run; 2] = [
    Run {
        gateway: false,
        args: &["-v"],
        rust_log: None,
    },
    Run {
        gateway: true,
        args: &["-vv", "--format", "json"],
        rust_log: Some("trace"),
    },
];

/// What a run left: its exit code, what it said, its peak memory.
struct Outcome {
    code: i32,
    said: String,
    peak_rss_kib: u64,
}

/// Runs `plan apply` against the hostile server, searching the state dir (lock included)
/// while it runs and stdout, stderr and every file after.
fn apply(scene: &Scene, run: &Run) -> Outcome {
    let base = if run.gateway {
        format!("{}/api/bk-job/prod", scene.url)
    } else {
        scene.url.clone()
    };
    let stdout = scene.path("stdout.txt");
    let stderr = scene.path("stderr.txt");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_plan"));
    cmd.current_dir(scene.dir.path())
        .args(["apply", "plan.toml", "--endpoint", &base, "--yes"])
        .args(["--poll-interval", "100", "--http-timeout", "2"])
        .args(run.args)
        .env("PLAN_NO_PROGRESS", "1")
        .env("NO_COLOR", "1")
        .env("PLAN_STATE_DIR", scene.path("state"))
        .env("BK_APP_CODE", "plan-app")
        .env("BK_APP_SECRET", SECRET)
        .env("BK_TOKEN", TOKEN)
        .env_remove("BK_USERNAME")
        .env_remove("BK_ACCESS_TOKEN")
        .env_remove("BK_JOB_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout"))
        .stderr(std::fs::File::create(&stderr).expect("stderr"));
    match run.rust_log {
        Some(level) => cmd.env("RUST_LOG", level),
        None => cmd.env_remove("RUST_LOG"),
    };
    let mut child = cmd.spawn().expect("spawn plan");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut peak_rss_kib = 0;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "plan did not finish in 60 s");
        peak_rss_kib = peak_rss_kib.max(vm_hwm_kib(child.id()).unwrap_or(0));
        assert_files_clean(&scene.path("state"));
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = std::fs::read_to_string(stdout).unwrap_or_default();
    let stderr = std::fs::read_to_string(stderr).unwrap_or_default();
    assert_clean("stdout", &stdout);
    assert_clean("stderr", &stderr);
    assert!(
        assert_files_clean(scene.dir.path()) >= 3,
        "nothing searched"
    );
    if run.rust_log.is_some() {
        assert!(stderr.contains("TRACE"), "the trace was on: {stderr}");
    }
    Outcome {
        code: status.code().unwrap_or(-1),
        said: format!("{stdout}{stderr}"),
        peak_rss_kib,
    }
}

/// The high-water mark of a process's resident memory, while it runs.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn v3(plan: &str) -> String {
    plan.replacen("account = \"root\"", "account = \"root\"\napi = \"v3\"", 1)
}

/// Both runs of `attack`, each in a fresh scene; checks the exit code, that the attack had a
/// secret to leak, that nothing reached the trap; returns what each run left.
fn attack(attack: Attack, expected_code: i32) -> Vec<Outcome> {
    RUNS.iter()
        .map(|run| {
            let plan = if run.gateway {
                v3(PLAN)
            } else {
                PLAN.to_owned()
            };
            let scene = Scene::start(attack, &plan);
            let outcome = apply(&scene, run);
            let name = format!("{attack:?} gateway={}", run.gateway);
            assert_eq!(outcome.code, expected_code, "{name}: {}", outcome.said);
            assert!(
                scene.front.echoed.load(Ordering::SeqCst) > 0,
                "{name}: no request carried the secret to echo"
            );
            assert_eq!(
                scene.trapped.load(Ordering::SeqCst),
                0,
                "{name}: a request left for the redirect's target"
            );
            drop(scene.sim);
            outcome
        })
        .collect()
}

/// Every outcome said `needle` (the echo reached the output, withheld, or the error is named).
fn all_said(outcomes: &[Outcome], needle: &str) {
    for outcome in outcomes {
        assert!(
            outcome.said.contains(needle),
            "`{needle}` not in {}",
            outcome.said
        );
    }
}

#[test]
fn hostile_echo_around_the_answers_leaks_nothing_and_the_run_succeeds() {
    attack(Attack::EchoAround, 0);
}

#[test]
fn hostile_echo_in_every_string_of_every_answer_leaks_nothing() {
    // Addresses, times and names all end in the echo; JOB's verdicts (numbers) are intact.
    attack(Attack::EchoEverywhere, 0);
}

#[test]
fn hostile_echo_in_the_logs_of_a_failed_host_leaks_nothing() {
    all_said(&attack(Attack::EchoInLogs, 3), "credential withheld");
}

#[test]
fn hostile_wrong_type_quoted_by_serde_leaks_nothing_and_the_outcome_is_unknown() {
    let outcomes = attack(Attack::WrongType, 3);
    all_said(&outcomes, "credential withheld");
    all_said(&outcomes, "invalid type");
}

#[test]
fn hostile_refusals_cut_across_the_secret_leak_nothing() {
    // The exit-4 message (credentials refused) and the journal's push_submit_failed.
    all_said(
        &attack(Attack::Refuse(Calls::Every), 4),
        "credential withheld",
    );
    all_said(
        &attack(Attack::Refuse(Calls::Submissions), 3),
        "credential withheld",
    );
}

#[test]
fn hostile_gateway_errors_leak_nothing() {
    all_said(
        &attack(Attack::GatewayError(Calls::Every), 4),
        "credential withheld",
    );
    all_said(
        &attack(Attack::GatewayError(Calls::Submissions), 3),
        "credential withheld",
    );
}

#[test]
fn hostile_html_pages_leak_nothing() {
    all_said(
        &attack(Attack::Html(Calls::Every), 4),
        "credential withheld",
    );
    all_said(
        &attack(Attack::Html(Calls::Submissions), 3),
        "credential withheld",
    );
}

#[test]
fn hostile_redirects_are_not_followed_and_their_target_sees_nothing() {
    for status in [302, 307, 308] {
        all_said(
            &attack(Attack::Redirect(status, Calls::Every), 4),
            "does not follow redirects",
        );
    }
    all_said(
        &attack(Attack::Redirect(307, Calls::Submissions), 3),
        "does not follow redirects",
    );
}

#[test]
fn hostile_huge_answers_are_refused_with_bounded_memory() {
    for chunked in [false, true] {
        let outcomes = attack(Attack::Huge { chunked }, 3);
        all_said(&outcomes, "larger than the 32 MiB");
        for outcome in &outcomes {
            // 300 MB were offered; the cap is 32 MiB.
            let mib = outcome.peak_rss_kib / 1024;
            assert!(mib < 160, "chunked={chunked}: peak RSS {mib} MiB");
            figures(&format!("huge answer, chunked={chunked}"), mib);
        }
    }
}

#[test]
fn hostile_slow_answers_end_at_the_http_timeout() {
    let started = Instant::now();
    let outcomes = attack(Attack::Slow, 3);
    for outcome in &outcomes {
        // Text says "outcome unknown", NDJSON "outcome_unknown": the job may exist.
        assert!(
            outcome.said.contains("outcome unknown") || outcome.said.contains("outcome_unknown"),
            "{}",
            outcome.said
        );
    }
    // Two runs, each waiting out one 2 s answer, not the ten minutes it would drip for.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

/// The same push, following JOB's batches (v3) or made into batches (v2), verified by a
/// checksum script job: step statuses, script logs and file logs are read from the hostile
/// server too. `plan report` then renders the run's journal in every format.
const RELEASE_PLAN: &str = r#"
[plan]
name = "hostile"
bk_biz_id = 2
account = "root"

[hosts.src]
ips = ["10.0.0.1"]
[hosts.web]
ips = ["10.0.2.1"]

[[push]]
name = "to-web"
from = { hosts = "src", files = ["/data/app.tar.gz"] }
to = { hosts = "web", path = "/opt/app/" }
retries = 1
rolling = { expression = "1", mode = "pause-on-failure" }
verify = "sha256"
"#;

/// `expected`: the exit code when the attack leaves JOB's answers readable; `None` when it
/// garbles what a verification reads (the run may then fail, and must still leak nothing).
fn release_attack(attack: Attack, expected: Option<i32>) {
    for run in &RUNS {
        let plan = if run.gateway {
            v3(RELEASE_PLAN)
        } else {
            RELEASE_PLAN.to_owned()
        };
        let scene = Scene::start(attack, &plan);
        let outcome = apply(&scene, run);
        let name = format!("{attack:?} gateway={}", run.gateway);
        if let Some(code) = expected {
            assert_eq!(outcome.code, code, "{name}: {}", outcome.said);
            // The batch was followed and the checksum job ran: there was something to read.
            assert!(
                outcome.said.contains("verified"),
                "{name}: {}",
                outcome.said
            );
            assert!(outcome.said.contains("batch"), "{name}: {}", outcome.said);
        }
        assert!(
            scene.front.echoed.load(Ordering::SeqCst) > 0,
            "{name}: no request carried the secret to echo"
        );
        for format in ["text", "markdown", "html"] {
            let report = Command::new(env!("CARGO_BIN_EXE_plan"))
                .current_dir(scene.dir.path())
                .args(["report", "plan.toml", "--format", format])
                .env("PLAN_STATE_DIR", scene.path("state"))
                .env("NO_COLOR", "1")
                .output()
                .expect("plan report");
            assert_eq!(report.status.code(), Some(0), "{name} {format}");
            assert_clean(
                &format!("{name}: plan report --format {format}"),
                &format!(
                    "{}{}",
                    String::from_utf8_lossy(&report.stdout),
                    String::from_utf8_lossy(&report.stderr)
                ),
            );
        }
        drop(scene.sim);
    }
}

#[test]
fn hostile_echo_while_following_batches_and_verifying_leaks_nothing() {
    release_attack(Attack::EchoAround, Some(0));
    release_attack(Attack::EchoEverywhere, None);
    release_attack(Attack::EchoInLogs, None);
}

/// `plan import` reads job plans from the hostile server: their names, variables, paths and
/// hosts carry the echo. Neither the listing, the plan file, nor its summary may show it.
#[test]
fn hostile_job_plans_imported_leak_nothing() {
    let world = include_str!("../../examples/import/sandbox/jobsim.toml");
    for attack in [Attack::EchoAround, Attack::EchoEverywhere] {
        for run in &RUNS {
            let scene = Scene::start_with(attack, PLAN, world);
            let base = if run.gateway {
                format!("{}/api/bk-job/prod", scene.url)
            } else {
                scene.url.clone()
            };
            let name = format!("{attack:?} gateway={}", run.gateway);
            for plans in [&[][..], &["--job-plan", "1001", "-o", "imported.toml"]] {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_plan"));
                cmd.current_dir(scene.dir.path())
                    .args(["import", "--bk-biz-id", "2", "--endpoint", &base])
                    .args(plans)
                    .args(
                        run.args
                            .iter()
                            .filter(|a| **a != "--format" && **a != "json"),
                    )
                    .env("NO_COLOR", "1")
                    .env("BK_APP_CODE", "plan-app")
                    .env("BK_APP_SECRET", SECRET)
                    .env("BK_TOKEN", TOKEN)
                    .env_remove("BK_USERNAME")
                    .env_remove("BK_ACCESS_TOKEN")
                    .env_remove("BK_JOB_ENDPOINT");
                if run.gateway {
                    cmd.arg("--gateway");
                }
                match run.rust_log {
                    Some(level) => cmd.env("RUST_LOG", level),
                    None => cmd.env_remove("RUST_LOG"),
                };
                let out = cmd.output().expect("plan import");
                let said = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(
                    matches!(out.status.code(), Some(0 | 1)),
                    "{name} {plans:?}: {said}"
                );
                assert_clean(&format!("{name} {plans:?}"), &said);
            }
            assert!(
                scene.path("imported.toml").exists(),
                "{name}: nothing was imported"
            );
            assert!(
                scene.front.echoed.load(Ordering::SeqCst) > 0,
                "{name}: no request carried the secret to echo"
            );
            assert_files_clean(scene.dir.path());
            drop(scene.sim);
        }
    }
}

#[allow(
    clippy::print_stderr,
    reason = "the suite's figures, read with --nocapture"
)]
fn figures(what: &str, peak_rss_mib: u64) {
    eprintln!("hostile-figures {what}: peak RSS {peak_rss_mib} MiB");
}
