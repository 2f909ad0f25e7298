//! A hostile CMDB behind `plan show --resolve --endpoint`: it echoes the credentials it
//! receives into every host address and message, writes terminal escapes, and claims a
//! billion hosts while handing out a page at a time. Nothing secret or escaping reaches the
//! output, and the listing ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::json;

const SECRET: &str = "CANARY-SECRET-123";
const TOKEN: &str = "CANARY-TOKEN-456";

const PLAN: &str = r#"
[plan]
name = "hostile-cmdb"
bk_biz_id = 2
account = "root"
api = "v3"

[hosts.src]
ips = ["10.0.0.1"]
[hosts.web]
dynamic_groups = ["g-web"]
topo_nodes = ["module:10"]

[[push]]
name = "to-web"
from = { hosts = "src", files = ["/data/app.tar.gz"] }
to = { hosts = "web", path = "/opt/app/" }
"#;

/// Every call: one host whose addresses carry the echo and an escape sequence; the group
/// answers with a billion hosts counted, the node with a refusal whose message is the echo.
async fn answer(State(calls): State<Arc<AtomicUsize>>, request: Request) -> Response {
    calls.fetch_add(1, Ordering::SeqCst);
    let echo = request
        .headers()
        .get("x-bkapi-authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let body = if request.uri().path().contains("find_host_by_topo") {
        json!({"result": false, "code": 1_199_019, "message": format!("not found \u{1b}[2J{echo}"), "data": null})
    } else {
        json!({"result": true, "code": 0, "message": "success", "data": {
            "count": 1_000_000_000u64,
            "info": [{"bk_host_id": 1, "bk_cloud_id": 0,
                      "bk_host_innerip": format!("10.0.0.1\u{1b}]0;{echo}\u{7}"),
                      "bk_host_innerip_v6": echo}],
        }})
    };
    let mut response = Response::new(axum::body::Body::from(body.to_string()));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

fn leaks(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    [SECRET, TOKEN].iter().find_map(|canary| {
        let canary: Vec<char> = canary.to_lowercase().chars().collect();
        canary
            .windows(8)
            .map(|w| w.iter().collect::<String>())
            .find(|run| lower.contains(run.as_str()))
    })
}

#[test]
fn a_hostile_cmdb_leaks_nothing_escapes_nothing_and_ends() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let calls = Arc::new(AtomicUsize::new(0));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(Arc::clone(&calls));
    runtime.spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("plan.toml"), PLAN).expect("plan");
    for format in ["text", "json", "markdown"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_plan"))
            .current_dir(dir.path())
            .args(["show", "plan.toml", "--resolve", "--format", format])
            .args(["--endpoint", &format!("http://{addr}")])
            .env("BK_APP_CODE", "plan-app")
            .env("BK_APP_SECRET", SECRET)
            .env("BK_TOKEN", TOKEN)
            .env_remove("BK_USERNAME")
            .env_remove("BK_ACCESS_TOKEN")
            .env("NO_COLOR", "1")
            .output()
            .expect("run plan");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{format}: {stderr}");
        for (place, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            assert_eq!(leaks(text), None, "{format} {place}: {text}");
            assert!(!text.contains('\u{1b}'), "{format} {place}: an escape");
            assert!(!text.contains('\u{7}'), "{format} {place}: a bell");
        }
        assert!(stdout.contains("to-web"), "{format}: {stdout}");
    }
    // Each run: a short page ends the group, one refused call for the node.
    assert_eq!(calls.load(Ordering::SeqCst), 3 * 2);
}
