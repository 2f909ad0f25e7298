//! The fault kinds that answer after JOB did the work (`http_504`, `malformed`), the 429
//! without rate-limit headers, and a refused connection (`RunningSim::refuse_for`).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use plan_jobsim::{FaultKind, FaultRule, JobSim, router};
use serde_json::Value;
use tower::ServiceExt as _;

use crate::support::{CREDS, Sim, v2_body, v3_body};

/// One raw call through the router: status, content type, body text.
async fn raw(sim: &Sim, uri: &str, body: &Value) -> (StatusCode, String, String) {
    let req = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("x-bkapi-authorization", CREDS)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = router(sim.state.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        content_type,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test]
async fn http_504_and_malformed_answer_after_the_job_was_created() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let state = &sim.state;
    state.inject(FaultRule::next("fast_transfer_file", FaultKind::Http504, 1));
    let (status, _, body) = raw(
        &sim,
        "/api/bk-job/prod/api/v3/fast_transfer_file",
        &v3_body(),
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    let body: Value = serde_json::from_str(&body).expect("gateway json");
    assert_eq!(body["code"], 1_650_401);
    assert_eq!(body["result"], false);

    state.inject(FaultRule::next("fast_push_file", FaultKind::Http504, 1));
    let (status, content_type, body) =
        raw(&sim, "/api/c/compapi/v2/job/fast_push_file/", &v2_body()).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(body.contains("504 Gateway Time-out"), "{body}");

    state.inject(FaultRule::next("fast_push_file", FaultKind::Malformed, 1));
    let (status, _, body) = raw(&sim, "/api/c/compapi/v2/job/fast_push_file/", &v2_body()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with('{'), "{body}");
    let err = serde_json::from_str::<Value>(&body).expect_err("cut short");
    assert!(err.is_eof(), "{err}");

    // Each of the three calls created its job; the log says so.
    let created: Vec<_> = state
        .requests()
        .into_iter()
        .filter(|r| r.job_instance_id.is_some())
        .map(|r| (r.api, r.http_status))
        .collect();
    assert_eq!(
        created,
        [
            ("fast_transfer_file".to_owned(), 504),
            ("fast_push_file".to_owned(), 504),
            ("fast_push_file".to_owned(), 200),
        ]
    );
    // The next call is answered normally.
    let (status, _, body) = raw(&sim, "/api/c/compapi/v2/job/fast_push_file/", &v2_body()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["code"],
        0
    );
}

#[tokio::test]
async fn a_bare_429_has_no_rate_limit_headers() {
    let sim = Sim::with_config(
        "[[fault]]\napi = \"fast_transfer_file\"\nkind = \"http_429_bare\"\ncount = 2\n",
    );
    let r = sim
        .gw(Method::POST, "fast_transfer_file", Some(v3_body()))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["code"], 1_642_902);
    assert!(
        r.headers
            .keys()
            .all(|k| !k.as_str().starts_with("x-bkapi-ratelimit")),
        "{:?}",
        r.headers
    );
    // On ESB it is ESB's rate limit, at HTTP 200.
    let r = sim.esb("jobv3/fast_transfer_file", v3_body()).await;
    assert_eq!(r["code"], 1_306_429);
}

/// A plain TCP connect from the test thread: it blocks the (single-threaded, paused-clock)
/// runtime, so no simulated time passes while the port is looked at.
fn port_refuses(addr: std::net::SocketAddr) -> bool {
    match std::net::TcpStream::connect(addr) {
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => true,
        Err(e) => panic!("connect {addr}: {e}"),
    }
}

// On a paused clock the refusal's 600 ms pass only when the test lets them: the closed port
// is seen however slow the machine, and the wait for it to open again takes no real time.
#[tokio::test(start_paused = true)]
async fn refused_for_a_while_then_the_same_state_on_the_same_port() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("hosts/0/10.0.0.1/data")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("hosts/0/10.0.0.2")).expect("mkdir");
    std::fs::write(dir.path().join("hosts/0/10.0.0.1/data/a.bin"), b"x").expect("write");
    let sim = JobSim::start(dir.path(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start");
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("{}/api/c/compapi/v2/job/fast_push_file/", sim.base_url());
    let submit = || {
        client
            .post(&url)
            .header("x-bkapi-authorization", CREDS)
            .json(&v2_body())
            .send()
    };
    let first: Value = submit().await.expect("up").json().await.expect("json");
    assert_eq!(first["code"], 0);

    let refusing_since = tokio::time::Instant::now();
    sim.refuse_for(Duration::from_millis(600));
    // The listener closes once the server has wound down its connections: until then a
    // connection is still accepted. Yielding runs the server without moving the clock.
    let mut yields = 0;
    while !port_refuses(sim.addr()) {
        yields += 1;
        assert!(yields < 100_000, "the port never closed");
        tokio::task::yield_now().await;
    }
    assert_eq!(
        refusing_since.elapsed(),
        Duration::ZERO,
        "the port closed with no simulated time passing"
    );
    // The port stays the simulator's while refusing: a server starting meanwhile (a test
    // running in parallel) is not given it and cannot answer calls meant for this one.
    assert!(
        std::net::TcpListener::bind(sim.addr()).is_err(),
        "another server took the port while it refused"
    );

    // Then the clock moves: the port opens again once the 600 ms are over, not before.
    while port_refuses(sim.addr()) {
        assert!(
            refusing_since.elapsed() < Duration::from_secs(60),
            "the port never opened again"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refusing_since.elapsed() >= Duration::from_millis(600));
    let second: Value = submit()
        .await
        .expect("serving again")
        .json()
        .await
        .expect("json");
    // Same state: ids go on from where they were (a job and its step take one each).
    let id = |v: &Value| v["data"]["job_instance_id"].as_u64().expect("id");
    assert!(id(&second) > id(&first));
    assert_eq!(
        sim.requests().len(),
        2,
        "a refused connection is never recorded"
    );
    sim.shutdown().await;
}

#[test]
fn an_unknown_fault_kind_in_jobsim_toml_is_an_error_naming_the_kinds() {
    let err = plan_jobsim::Config::from_toml("[[fault]]\nkind = \"http_5003\"\n")
        .expect_err("a misspelt kind is refused");
    let message = err.to_string();
    assert!(
        message.contains("unknown fault kind `http_5003`"),
        "{message}"
    );
    for kind in FaultKind::ALL {
        assert!(message.contains(kind.as_str()), "{kind} missing: {message}");
    }
}

#[test]
fn every_fault_kind_reads_back_from_its_name() {
    for kind in FaultKind::ALL {
        let text = format!("[[fault]]\nkind = \"{kind}\"\n");
        let config = plan_jobsim::Config::from_toml(&text).expect("known kind");
        assert_eq!(config.faults[0].kind, kind);
        assert_eq!(kind.as_str().parse::<FaultKind>(), Ok(kind));
        assert_eq!(
            serde_json::to_string(&kind).expect("json"),
            format!("\"{kind}\"")
        );
    }
    assert!("DROP".parse::<FaultKind>().is_err());
}
