//! Malformed requests never crash the simulator: random methods, paths under both front doors
//! (every v2 and v3 API name, and junk), query strings, headers (credential garbage, huge and
//! non-UTF-8 values, odd content types) and bodies (random bytes, valid requests truncated or
//! with a field given a wrong type, a huge number or deep nesting), driven through the router
//! in-process. Every answer must be a well-formed response: JSON in JOB's, the gateway's or
//! ESB's envelope, except for `HEAD`, whose body HTTP leaves out. Then the same over a real socket with raw
//! garbage bytes: the server must keep answering.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::LazyLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use plan_jobsim::router;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::support::{CREDS, Sim, v2_body, v3_body};

const APIS: &[&str] = &[
    "fast_push_file",
    "fast_transfer_file",
    "fast_execute_script",
    "get_job_instance_status",
    "get_job_instance_log",
    "get_job_instance_ip_log",
    "batch_get_job_instance_ip_log",
    "operate_job_instance",
    "get_job_detail",
    "",
    "..",
    "%00",
    "fast_push_file%2F..",
];

/// A request as the fuzzer builds it: raw enough to be invalid at every layer.
#[derive(Debug, Clone)]
struct Fuzzed {
    method: Method,
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        4 => Just(Method::POST),
        3 => Just(Method::GET),
        1 => prop::sample::select(vec![
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::HEAD,
            Method::OPTIONS,
            Method::TRACE,
        ]),
        1 => "[A-Z]{1,12}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap_or(Method::GET)),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let api = prop_oneof![
        4 => prop::sample::select(APIS).prop_map(str::to_owned),
        1 => "[a-z_%0-9.]{0,30}",
    ];
    let front = prop::sample::select(vec![
        "/api/c/compapi/v2/job/",
        "/api/c/compapi/v2/jobv3/",
        "/api/c/compapi/job/",
        "/api/c/compapi/jobv3/",
        "/api/bk-job/prod/api/v3/",
        "/api/bk-job/x/api/v3/",
        "/api/bk-job//api/v3/",
        "/api/bk-job/prod/api/v2/",
        "/",
        "//",
        "/api/",
    ]);
    let tail = prop::sample::select(vec!["", "/", "//", "/extra", "?", "/%2e%2e/"]);
    prop_oneof![
        8 => (front, api, tail).prop_map(|(f, a, t)| format!("{f}{a}{t}")),
        1 => "/[ -~]{0,60}".prop_map(|p| p.replace([' ', '"', '<', '>', '\\', '^', '`', '{', '|', '}'], "_")),
        1 => Just(format!("/api/c/compapi/v2/job/{}", "a".repeat(20_000))),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "bk_biz_id",
        "job_instance_id",
        "bk_scope_type",
        "bk_scope_id",
        "return_ip_result",
        "ip",
        "bk_cloud_id",
        "step_instance_id",
        "bk_app_code",
        "bk_app_secret",
        "bk_username",
        "x",
    ]);
    let value = prop_oneof![
        Just("2".to_owned()),
        Just("biz".to_owned()),
        Just("true".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just("-1".to_owned()),
        Just("1e400".to_owned()),
        Just("%ZZ".to_owned()),
        Just("%00".to_owned()),
        Just("%FF%FE".to_owned()),
        Just("%5B1,2%5D".to_owned()),
        "[a-z0-9%]{0,12}",
    ];
    prop::collection::vec((key, value), 0..5).prop_map(|pairs| {
        if pairs.is_empty() {
            String::new()
        } else {
            let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("?{}", joined.join("&"))
        }
    })
}

fn auth_header() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        3 => Just(Some(CREDS.as_bytes().to_vec())),
        1 => Just(None),
        1 => Just(Some(b"{".to_vec())),
        1 => Just(Some(b"null".to_vec())),
        1 => Just(Some(br#"{"bk_app_code": 1, "bk_app_secret": [], "bk_username": {}}"#.to_vec())),
        1 => Just(Some(br#"{"bk_app_code":"app","bk_app_secret":"secret","bk_token":""}"#.to_vec())),
        1 => Just(Some(b"\xff\xfe{\x80\x81}".to_vec())),
        1 => Just(Some(format!("{{\"bk_app_code\":\"{}\"}}", "a".repeat(60_000)).into_bytes())),
        1 => prop::collection::vec(0x20u8..0x7f, 0..200).prop_map(Some),
    ]
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(vec![
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("text/plain"),
        Some("application/json; charset=gbk"),
        Some("garbage/;;;"),
        None,
    ])
}

/// A valid request body of each API, to be broken.
fn valid_bodies() -> Vec<Value> {
    vec![
        v2_body(),
        v3_body(),
        json!({"bk_biz_id": 2, "job_instance_id": 1}),
        json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": 1, "return_ip_result": true}),
        json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": 1, "step_instance_id": 1,
               "ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.2"}]}),
        json!({"bk_biz_id": 2, "job_instance_id": 1, "operation_code": 1}),
        // `fast_execute_script` (v3 names; `echo hi` in base64).
        json!({"bk_scope_type": "biz", "bk_scope_id": "2", "account_alias": "root",
               "script_content": "ZWNobyBoaQo=", "script_language": 1, "timeout": 60,
               "target_server": {"ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.2"}]}}),
    ]
}

/// Every place in `value` where a value sits: `(path of keys/indexes)`.
fn slots(value: &Value, path: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(path.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(Value::String(k.clone()));
                slots(v, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Value::from(i));
                slots(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn set(value: &mut Value, path: &[Value], new: Value) {
    let mut at = value;
    for step in path {
        at = match (at, step) {
            (Value::Object(map), Value::String(k)) => match map.get_mut(k) {
                Some(v) => v,
                None => return,
            },
            (Value::Array(items), Value::Number(i)) => {
                match i.as_u64().and_then(|i| items.get_mut(i as usize)) {
                    Some(v) => v,
                    None => return,
                }
            }
            _ => return,
        };
    }
    *at = new;
}

static DEEP: LazyLock<String> =
    LazyLock::new(|| format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)));

/// Values that are wrong somewhere: other JSON types, numbers past i64/u64/f64, huge strings.
fn wrong_values() -> Vec<&'static str> {
    vec![
        "null",
        "true",
        "\"\"",
        "\"2\"",
        "-1",
        "0",
        "1.5",
        "18446744073709551616",
        "-9223372036854775809",
        "1e400",
        "[]",
        "[null]",
        "{}",
        "{\"id\": {}}",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"/data/\\u202e.bin\"",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    let bodies = valid_bodies();
    let mutated = (
        prop::sample::select(bodies.clone()),
        any::<prop::sample::Index>(),
        prop::sample::select(wrong_values()),
    )
        .prop_map(|(mut body, at, wrong)| {
            let mut all = Vec::new();
            slots(&body, &mut Vec::new(), &mut all);
            let path = all[at.index(all.len())].clone();
            // The raw text is spliced in, so invalid JSON (a lone surrogate) stays invalid.
            let marker = "\u{1}WRONG\u{1}";
            set(&mut body, &path, Value::String(marker.into()));
            body.to_string()
                .replace(&Value::String(marker.into()).to_string(), wrong)
                .into_bytes()
        });
    let truncated = (
        prop::sample::select(bodies.clone()),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(body, at)| {
            let text = body.to_string().into_bytes();
            text[..at.index(text.len() + 1)].to_vec()
        });
    // Half a MiB is handled; 2 MiB is over the default body limit (1 MiB) and refused.
    let huge = (
        prop::sample::select(bodies.clone()),
        prop::sample::select(vec![1 << 19, 2 << 20]),
    )
        .prop_map(|(mut body, len)| {
            set(
                &mut body,
                &[Value::from("file_target_path")],
                Value::String(format!("/{}", "x".repeat(len))),
            );
            body.to_string().into_bytes()
        });
    let form = prop::collection::vec(("[a-z_]{1,12}", "[ -~]{0,20}"), 0..6).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes()
    });
    prop_oneof![
        3 => mutated,
        2 => truncated,
        2 => prop::collection::vec(any::<u8>(), 0..300),
        1 => prop::sample::select(bodies).prop_map(|b| b.to_string().into_bytes()),
        1 => Just(DEEP.as_bytes().to_vec()),
        1 => Just(format!("{{\"bk_biz_id\": {}}}", DEEP.as_str()).into_bytes()),
        1 => huge,
        1 => form,
        1 => Just(Vec::new()),
    ]
}

fn fuzzed() -> impl Strategy<Value = Fuzzed> {
    (
        method(),
        path(),
        query(),
        auth_header(),
        content_type(),
        body(),
        // Header values: visible ASCII and the obs-text bytes HTTP allows (not UTF-8).
        prop::collection::vec(
            (
                "x-[a-z]{1,8}",
                prop::collection::vec(prop_oneof![0x20u8..0x7f, 0x80u8..=0xff], 0..40),
            ),
            0..3,
        ),
    )
        .prop_map(|(method, path, query, auth, ctype, body, extra)| {
            let mut headers = Vec::new();
            if let Some(auth) = auth {
                headers.push(("x-bkapi-authorization".to_owned(), auth));
            }
            if let Some(ctype) = ctype {
                headers.push(("content-type".to_owned(), ctype.as_bytes().to_vec()));
            }
            headers.extend(extra);
            Fuzzed {
                method,
                uri: format!("{path}{query}"),
                headers,
                body,
            }
        })
}

/// Sends one fuzzed request in-process; `None` when it cannot even be expressed as an HTTP
/// request (an invalid URI or header byte): hyper would refuse it before the router.
async fn send(sim: &Sim, req: &Fuzzed) -> Option<(u16, Vec<u8>)> {
    let mut builder = Request::builder()
        .method(req.method.clone())
        .uri(req.uri.as_str());
    for (name, value) in &req.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(value).ok()?;
        builder = builder.header(name, value);
    }
    let request = builder.body(Body::from(req.body.clone())).ok()?;
    let response = router(sim.state.clone())
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body that can be read");
    Some((status, bytes.to_vec()))
}

/// A well-formed answer: a real status, and JSON in one of the envelopes BK-JOB's front doors
/// answer with wherever a body is sent.
fn assert_well_formed(req: &Fuzzed, status: u16, body: &[u8]) {
    assert!((200..600).contains(&status), "{status} for {req:?}");
    if req.method == Method::HEAD && body.is_empty() {
        return;
    }
    let json: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}) with HTTP {status}: {:?} for {} {}",
            String::from_utf8_lossy(&body[..body.len().min(300)]),
            req.method,
            &req.uri[..req.uri.len().min(200)]
        )
    });
    // JOB's and the gateway's bodies carry a numeric `code`; ESB's own 404 page for a path it
    // does not know is `{"result": false, "data": null, "message": "..."}`.
    let job = json.get("code").is_some_and(|c| c.is_i64() || c.is_u64());
    let esb_page = json.get("result") == Some(&Value::Bool(false))
        && json.get("message").is_some_and(Value::is_string);
    assert!(
        job || esb_page,
        "not an envelope: {json} (HTTP {status}) for {} {}",
        req.method,
        &req.uri[..req.uri.len().min(200)]
    );
}

/// The number of fuzzed requests one run sends (proptest cases).
const CASES: u32 = 4_000;

#[test]
fn malformed_requests_always_get_a_well_formed_answer() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", b"payload");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let sent = std::cell::Cell::new(0u32);
    runner
        .run(&fuzzed(), |req| {
            if let Some((status, body)) = runtime.block_on(send(&sim, &req)) {
                assert_well_formed(&req, status, &body);
                sent.set(sent.get() + 1);
            }
            Ok(())
        })
        .expect("every malformed request answered");
    let sent = sent.get();
    // Most requests are expressible; the rest are refused by the HTTP layer before the router.
    assert!(sent > CASES * 3 / 4, "{sent} of {CASES} sent");
    report(sent);
    // Still healthy: a valid submission is accepted and its job runs.
    let reply = runtime.block_on(sim.esb("job/fast_push_file", v2_body()));
    assert_eq!(reply["code"], 0, "{reply}");
}

#[allow(
    clippy::print_stderr,
    reason = "the number of requests fuzzed is the test's figure"
)]
fn report(sent: u32) {
    eprintln!("jobsim fuzz: {sent} malformed requests answered in-process");
}

/// How the server met one connection of raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Met {
    /// An HTTP/1.1 answer with this status.
    Status(u16),
    /// Closed without a word: the request was cut off mid-body (the client sent less than
    /// it announced, or a chunk size that is not one), so there is no request to answer.
    Closed,
    /// HTTP/2's connection preface: the server speaks HTTP/2 and opens with SETTINGS.
    Http2Settings,
}

impl Met {
    fn of(reply: &[u8]) -> Met {
        if reply.is_empty() {
            return Met::Closed;
        }
        // An HTTP/2 frame header: 3 bytes of length, then the type (4 = SETTINGS).
        if reply.get(3) == Some(&4) && !reply.starts_with(b"HTTP/") {
            return Met::Http2Settings;
        }
        let status = reply
            .strip_prefix(b"HTTP/1.1 ")
            .and_then(|rest| std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok())
            .unwrap_or_else(|| panic!("not HTTP: {:?}", String::from_utf8_lossy(reply)));
        Met::Status(status)
    }
}

/// Sends raw bytes on a fresh connection, half-closing it after them when `half_close`,
/// and reads what comes back until the server closes.
fn send_raw(addr: std::net::SocketAddr, bytes: &[u8], half_close: bool) -> Met {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // The server may close before reading everything (a 1 MB header): not an error here.
    let _ = stream.write_all(bytes);
    if half_close {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    // Data that arrived before a reset is still read; the reset itself is no answer.
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    Met::of(&reply)
}

/// Raw bytes on a real socket: no HTTP, broken HTTP, a header of 1 MB, a body shorter than its
/// `Content-Length`, a bad chunk size, a connection closed mid-request. Each connection gets
/// the answer hyper gives that input (400 for what does not parse, 431 for the huge header)
/// or is closed; afterwards the server still answers a valid request.
#[test]
fn raw_garbage_on_a_socket_leaves_the_server_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("hosts/0/10.0.0.1")).expect("mkdir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let sim = runtime
        .block_on(plan_jobsim::JobSim::start(
            dir.path(),
            "127.0.0.1:0".parse().expect("addr"),
        ))
        .expect("jobsim");
    let addr = sim.addr();
    let big_header = format!(
        "POST /api/c/compapi/v2/job/fast_push_file/ HTTP/1.1\r\nHost: x\r\nX-Bkapi-Authorization: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let bad = Met::Status(400);
    let mut garbage: Vec<(Vec<u8>, Met)> = vec![
        (b"\x00\x01\x02\x03\xff\xfe\xfd".to_vec(), bad),
        (b"GARBAGE\r\n\r\n".to_vec(), bad),
        (b"GET\r\n\r\n".to_vec(), bad),
        (b"GET / HTTP/9.9\r\n\r\n".to_vec(), bad),
        (b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), bad),
        (b"POST /api/c/compapi/v2/job/fast_push_file/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"bk_biz_id\"".to_vec(), Met::Closed),
        (b"POST /api/c/compapi/v2/job/fast_push_file/ HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n".to_vec(), bad),
        (b"POST /api/c/compapi/v2/job/fast_push_file/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n".to_vec(), Met::Closed),
        (b"POST /api/c/compapi/v2/job/fast_push_file/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_vec(), bad),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: \x01\x02\r\n\r\n".to_vec(), bad),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00".to_vec(), Met::Http2Settings),
        (big_header.into_bytes(), Met::Status(431)),
    ];
    // Parsed as HTTP and refused by the simulator itself (a query it cannot decode, no
    // credentials). hyper drops a request in flight when its client half-closes, so this one
    // keeps its side open and asks the server to close after answering.
    let answered_by_jobsim = b"GET /api/bk-job/prod/api/v3/get_job_instance_status?job_instance_id=%ZZ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    // Random bytes, from a fixed seed: none is an HTTP request line.
    let mut x: u64 = 0x5EED;
    for len in [1usize, 17, 300, 4096] {
        let bytes = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x & 0xff) as u8
            })
            .collect();
        garbage.push((bytes, bad));
    }
    for (bytes, expected) in &garbage {
        let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]);
        assert_eq!(send_raw(addr, bytes, true), *expected, "{shown:?}");
    }
    assert_eq!(send_raw(addr, answered_by_jobsim, false), bad);
    // A connection that goes away mid-request.
    drop(TcpStream::connect(addr).and_then(|mut s| s.write_all(b"POST /api/c/compapi/v2/job/")));

    // Still up: a valid call over a fresh connection gets JOB's answer.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let status = runtime.block_on(async {
        client
            .post(format!(
                "{}/api/c/compapi/v2/job/get_job_instance_status/",
                sim.base_url()
            ))
            .header("x-bkapi-authorization", CREDS)
            .json(&json!({"bk_biz_id": 2, "job_instance_id": 424242}))
            .send()
            .await
            .expect("the server still answers")
            .json::<Value>()
            .await
            .expect("JSON")
    });
    assert_eq!(status["code"], 1_244_006, "no such job: {status}");
    assert_eq!(status["result"], false, "{status}");
    runtime.block_on(sim.shutdown());
}
