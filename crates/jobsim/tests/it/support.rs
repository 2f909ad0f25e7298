//! Test harness: a sandbox in a temp dir and the simulator's router called in-process
//! (no sockets), so tests can run on tokio's paused clock.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use plan_jobsim::{Config, SimOptions, SimState, router};
use serde_json::{Value, json};
use tower::ServiceExt as _;

pub(crate) const CREDS: &str =
    r#"{"bk_app_code":"app","bk_app_secret":"secret","bk_username":"admin"}"#;

pub(crate) struct Sim {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) state: Arc<SimState>,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl Sim {
    pub(crate) fn new() -> Self {
        Self::with_config("")
    }

    /// A sandbox with hosts 0:10.0.0.1..=4 and the given `jobsim.toml` text.
    pub(crate) fn with_config(toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for i in 1..=4 {
            std::fs::create_dir_all(dir.path().join(format!("hosts/0/10.0.0.{i}"))).expect("mkdir");
        }
        let config = Config::from_toml(toml).expect("config");
        let state = SimState::new(
            dir.path(),
            SimOptions {
                config: Some(config),
                ..SimOptions::default()
            },
        )
        .expect("state");
        Self { dir, state }
    }

    pub(crate) fn host_path(&self, ip: &str, path: &str) -> PathBuf {
        self.dir
            .path()
            .join("hosts/0")
            .join(ip)
            .join(path.trim_start_matches('/'))
    }

    pub(crate) fn write(&self, ip: &str, path: &str, bytes: &[u8]) {
        let p = self.host_path(ip, path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }

    pub(crate) fn read(&self, ip: &str, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.host_path(ip, path)).ok()
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        self.call_text(method, uri, headers, body.map(Value::to_string))
            .await
    }

    pub(crate) async fn call_text(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body.map_or_else(Body::empty, Body::from))
            .expect("request");
        let resp = router(self.state.clone())
            .oneshot(req)
            .await
            .expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("json body")
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// POST to an ESB path (`job/<api>` or `jobv3/<api>`) with credentials in the header.
    pub(crate) async fn esb(&self, group_api: &str, body: Value) -> Value {
        let r = self
            .call(
                Method::POST,
                &format!("/api/c/compapi/v2/{group_api}/"),
                &[
                    ("x-bkapi-authorization", CREDS),
                    ("content-type", "application/json"),
                ],
                Some(&body),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }

    /// Gateway call with credentials.
    pub(crate) async fn gw(&self, method: Method, api: &str, body: Option<Value>) -> Reply {
        self.call(
            method,
            &format!("/api/bk-job/prod/api/v3/{api}"),
            &[
                ("x-bkapi-authorization", CREDS),
                ("content-type", "application/json"),
            ],
            body.as_ref(),
        )
        .await
    }

    pub(crate) async fn v2_status(&self, id: u64) -> Value {
        self.esb(
            "job/get_job_instance_status",
            json!({"bk_biz_id": 2, "job_instance_id": id}),
        )
        .await
    }

    pub(crate) async fn v3_status(&self, id: u64) -> Value {
        self.esb(
            "jobv3/get_job_instance_status",
            json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id, "return_ip_result": true}),
        )
        .await
    }

    /// Polls v3 status every 100 ms (virtual time on a paused clock) until finished.
    pub(crate) async fn wait(&self, id: u64) -> Value {
        for _ in 0..100_000 {
            let s = self.v3_status(id).await;
            if s["data"]["finished"] == json!(true) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("job {id} never finished");
    }
}

/// A valid v2 push of `/data/a.bin` from 10.0.0.1 to 10.0.0.2:/tmp/out.
pub(crate) fn v2_body() -> Value {
    json!({
        "bk_biz_id": 2,
        "account": "root",
        "file_target_path": "/tmp/out",
        "file_source": [{"files": ["/data/a.bin"], "account": "root",
                         "ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.1"}]}],
        "ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.2"}],
    })
}

/// A valid v3 transfer of `/data/a.bin` from 10.0.0.1 to 10.0.0.2:/tmp/out.
pub(crate) fn v3_body() -> Value {
    json!({
        "bk_scope_type": "biz",
        "bk_scope_id": "2",
        "account_alias": "root",
        "file_target_path": "/tmp/out",
        "file_source_list": [{"file_list": ["/data/a.bin"], "account": {"alias": "root"},
                              "server": {"ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.1"}]}}],
        "target_server": {"ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.2"}]},
    })
}

pub(crate) fn job_id(reply: &Value) -> u64 {
    reply["data"]["job_instance_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no job id in {reply}"))
}

/// Starts the built `jobsim` binary over `root` on an ephemeral loopback port and reads the
/// base URL from its first line (`listening on URL`, part of its contract).
pub(crate) fn spawn_binary(root: &std::path::Path) -> (std::process::Child, String) {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_jobsim"))
        .args([
            "--root",
            root.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn jobsim");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("line");
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .expect("first line contract")
        .to_string();
    (child, base)
}
