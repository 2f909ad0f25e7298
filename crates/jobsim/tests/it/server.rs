//! The simulator over real sockets: the `jobsim` binary's contract, a library-started
//! server, dropped connections and the job-end callback.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use plan_jobsim::{FaultKind, FaultRule, JobSim};
use serde_json::{Value, json};

use crate::support::{CREDS, spawn_binary, v2_body};

fn sandbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("hosts/0/10.0.0.1/data")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("hosts/0/10.0.0.2")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("hosts/0/::1")).expect("mkdir");
    std::fs::write(dir.path().join("hosts/0/10.0.0.1/data/a.bin"), b"payload").expect("write");
    std::fs::write(
        dir.path().join("jobsim.toml"),
        "[sim]\nstart_delay_ms = 10\nhost_wait_ms = 10\n",
    )
    .expect("write");
    dir
}

async fn poll_v3(client: &reqwest::Client, base: &str, id: u64) -> Value {
    for _ in 0..500 {
        let s: Value = client
            .get(format!(
                "{base}/api/c/compapi/v2/jobv3/get_job_instance_status/"
            ))
            .header("x-bkapi-authorization", CREDS)
            .query(&[
                ("bk_biz_id", "2"),
                ("job_instance_id", &id.to_string()),
                ("return_ip_result", "true"),
            ])
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        if s["data"]["finished"] == json!(true) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {id} did not finish");
}

/// Serves `receiver` on a loopback port, runs one v2 job whose `bk_callback_url` is its `/cb`,
/// follows the job to its end, then waits until `deliveries()` counts two callbacks (2 s at
/// most) and a little longer, so an unexpected third delivery would be seen too.
async fn run_job_with_callback(
    receiver: axum::Router,
    deliveries: impl Fn() -> usize,
) -> (tempfile::TempDir, plan_jobsim::RunningSim, u64) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let cb_addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let dir = sandbox();
    let sim = JobSim::start(dir.path(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start");
    let client = reqwest::Client::new();
    let mut body = v2_body();
    body["bk_callback_url"] = json!(format!("http://{cb_addr}/cb"));
    let r: Value = client
        .post(format!(
            "{}/api/c/compapi/v2/job/fast_push_file/",
            sim.base_url()
        ))
        .header("x-bkapi-authorization", CREDS)
        .json(&body)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let id = r["data"]["job_instance_id"].as_u64().expect("id");
    poll_v3(&client, &sim.base_url(), id).await;
    for _ in 0..200 {
        if deliveries() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    (dir, sim, id)
}

#[test]
fn binary_prints_address_serves_and_stops_on_sigterm() {
    let dir = sandbox();
    let (mut child, base) = spawn_binary(dir.path());
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{base}"
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let r: Value = client
            .post(format!("{base}/api/c/compapi/v2/job/fast_push_file/"))
            .header("x-bkapi-authorization", CREDS)
            .json(&v2_body())
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        let id = r["data"]["job_instance_id"].as_u64().expect("id");
        let done = poll_v3(&client, &base, id).await;
        assert_eq!(done["data"]["job_instance"]["status"], json!(3));
    });
    assert_eq!(
        std::fs::read(dir.path().join("hosts/0/10.0.0.2/tmp/out/a.bin")).expect("landed"),
        b"payload"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    let log = std::fs::read_to_string(dir.path().join(".jobsim/requests.jsonl")).expect("log");
    assert!(log.lines().count() >= 2);
}

#[tokio::test]
async fn library_server_ipv6_host_and_dropped_connection() {
    let dir = sandbox();
    let sim = JobSim::start(dir.path(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start");
    let base = sim.base_url();
    assert_eq!(base, format!("http://{}", sim.addr()));
    let client = reqwest::Client::new();
    let submit = |api: &'static str, body: Value| {
        let request = client
            .post(format!("{base}/api/c/compapi/v2/{api}/"))
            .header("x-bkapi-authorization", CREDS)
            .json(&body)
            .send();
        async move {
            let reply: Value = request.await.expect("send").json().await.expect("json");
            reply
        }
    };
    // JOB looks static hosts up by cloud and IPv4: an IPv6 address in v2 names no host.
    let mut body = v2_body();
    body["ip_list"] = json!([{"bk_cloud_id": 0, "ip": "::1"}]);
    let refused = submit("job/fast_push_file", body).await;
    assert_eq!(refused["code"], json!(1_244_030), "{refused}");
    // v3 reaches it by host id ("::1" sorts after the IPv4 hosts: 1003), and names it by
    // id with the address in `ipv6`, `ip` empty, as JOB does.
    let mut body = crate::support::v3_body();
    body["target_server"] = json!({"host_id_list": [1003]});
    let r = submit("jobv3/fast_transfer_file", body).await;
    let id = r["data"]["job_instance_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("{r}"));
    let done = poll_v3(&client, &base, id).await;
    let host = &done["data"]["step_instance_list"][0]["step_ip_result_list"][0];
    assert_eq!(
        (&host["bk_host_id"], &host["ip"], &host["ipv6"]),
        (&json!(1003), &json!(""), &json!("::1"))
    );
    assert_eq!(
        std::fs::read(dir.path().join("hosts/0/::1/tmp/out/a.bin")).expect("landed"),
        b"payload"
    );

    sim.state().inject(FaultRule::next(
        "get_job_instance_status",
        FaultKind::Drop,
        1,
    ));
    let dropped = client
        .get(format!(
            "{base}/api/c/compapi/v2/jobv3/get_job_instance_status/"
        ))
        .header("x-bkapi-authorization", CREDS)
        .query(&[("bk_biz_id", "2"), ("job_instance_id", &id.to_string())])
        .send()
        .await;
    let failed = match dropped {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(failed, "the connection is closed without a complete answer");
    assert!(sim.requests().iter().any(|r| r.http_status == 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn callback_once_at_the_end_with_form_retry() {
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let seen2 = seen.clone();
    let app = axum::Router::new().route(
        "/cb",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen2.clone();
            async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let mut s = seen.lock().expect("lock");
                s.push((ct, serde_json::from_str(&body).unwrap_or(Value::Null)));
                // Refuse the first (JSON) delivery so JOB retries with a form content type.
                if s.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let seen_count = seen.clone();
    let (_dir, sim, id) =
        run_job_with_callback(app, move || seen_count.lock().expect("lock").len()).await;
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen.len(),
        2,
        "one JSON delivery plus one form retry: {seen:?}"
    );
    assert_eq!(seen[0].0, "application/json");
    assert_eq!(seen[1].0, "application/x-www-form-urlencoded");
    let expected = json!({"job_instance_id": id, "status": 3, "step_instances": [{"step_instance_id": id + 1, "status": 3}]});
    assert_eq!(seen[0].1, expected);
    assert_eq!(seen[1].1, expected);
    sim.shutdown().await;
}

#[tokio::test]
async fn lost_answers_leave_the_job_created() {
    let dir = sandbox();
    let sim = JobSim::start(dir.path(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start");
    let url = format!("{}/api/c/compapi/v2/job/fast_push_file/", sim.base_url());
    let rule = |kind: FaultKind, delay_ms: Option<u64>| FaultRule {
        api: "fast_push_file".into(),
        kind,
        count: Some(1),
        rate: None,
        delay_ms,
        code: None,
    };
    // A slow answer the client gives up on: the job exists all the same.
    sim.state().inject(rule(FaultKind::Slow, Some(2_000)));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let r = client
        .post(&url)
        .header("x-bkapi-authorization", CREDS)
        .json(&v2_body())
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()));
    // The answer is processed but lost on the wire.
    sim.state().inject(rule(FaultKind::DropAfter, None));
    let r = reqwest::Client::new()
        .post(&url)
        .header("x-bkapi-authorization", CREDS)
        .json(&v2_body())
        .send()
        .await;
    let failed = match r {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(failed);
    let created: Vec<_> = sim
        .requests()
        .into_iter()
        .filter_map(|r| r.job_instance_id)
        .collect();
    assert_eq!(created.len(), 2, "{:?}", sim.requests());
    sim.shutdown().await;
}

/// A redirect is a non-200 reply like any other: JOB does not follow it on a POST, it
/// retries once with a form content type at the same URL. A proxy set in the environment
/// is not used either.
#[tokio::test]
async fn callback_does_not_follow_redirects() {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let record = |path: &'static str, status: StatusCode| {
        let seen = seen.clone();
        move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                seen.lock().expect("lock").push((path.to_string(), ct));
                (status, [("location", "/elsewhere")])
            }
        }
    };
    let app = axum::Router::new()
        .route("/cb", axum::routing::post(record("/cb", StatusCode::FOUND)))
        .route(
            "/elsewhere",
            axum::routing::any(record("/elsewhere", StatusCode::OK)),
        );
    let seen_count = seen.clone();
    let (_dir, sim, _id) =
        run_job_with_callback(app, move || seen_count.lock().expect("lock").len()).await;
    let seen = seen.lock().expect("lock").clone();
    let expected = [
        ("/cb".to_string(), "application/json".to_string()),
        (
            "/cb".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
    ];
    assert_eq!(seen, expected);
    sim.shutdown().await;
}
