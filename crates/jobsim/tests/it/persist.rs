//! The job store: a simulator started again on the same root (after its runtime died with
//! jobs running, or after `kill -9` of the binary) knows every job it had created. Finished
//! jobs answer as before, running ones run to the end, unstarted ones wait for START, and
//! ids keep increasing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use plan_bkjob::routes::{HttpMethod, Route};
use plan_bkjob::{ApiVersion, RunStatus, code};
use plan_jobsim::{SimOptions, SimState, router};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::support::{CREDS, spawn_binary, v3_body};

/// 3 MiB moved at 1 MB/s: a transfer that is still running after a second.
const BIG: usize = 3 * 1024 * 1024;

fn sandbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        std::fs::create_dir_all(dir.path().join("hosts/0").join(ip)).expect("mkdir");
    }
    let data = dir.path().join("hosts/0/10.0.0.1/data");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(data.join("a.bin"), b"small").expect("write");
    std::fs::write(data.join("big.bin"), big_bytes()).expect("write");
    std::fs::write(
        dir.path().join("jobsim.toml"),
        "[sim]\nstart_delay_ms = 10\nhost_wait_ms = 10\nspeed_mb = 1\n",
    )
    .expect("write");
    dir
}

fn big_bytes() -> Vec<u8> {
    (0..BIG).map(|i| (i % 251) as u8).collect()
}

fn transfer(file: &str, start: bool) -> Value {
    let mut body = v3_body();
    body["file_source_list"][0]["file_list"] = json!([format!("/data/{file}")]);
    body["start_task"] = json!(start);
    body
}

async fn call(state: &Arc<SimState>, api: &str, body: &Value) -> Value {
    call_path(state, &format!("/api/c/compapi/v2/jobv3/{api}/"), body).await
}

/// A call to the gateway by the method it publishes `api` under: a GET's query holds the
/// body's scalars.
async fn call_gateway(state: &Arc<SimState>, api: &str, body: &Value) -> Value {
    let route = Route::find(ApiVersion::V3, api).expect("a v3 API");
    let path = format!("/api/bk-job/prod/api/v3/{api}");
    if route.gateway_method() == HttpMethod::Post {
        return call_path(state, &path, body).await;
    }
    let query: Vec<String> = body
        .as_object()
        .expect("object")
        .iter()
        .filter(|(_, v)| !v.is_array())
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.as_str().map_or_else(|| v.to_string(), str::to_owned)
            )
        })
        .collect();
    let req = Request::get(format!("{path}?{}", query.join("&")))
        .header("x-bkapi-authorization", CREDS)
        .body(Body::empty())
        .expect("request");
    let resp = router(state.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    serde_json::from_slice(&bytes).expect("json")
}

/// A POST to `path` (ESB or gateway) with credentials in the header.
async fn call_path(state: &Arc<SimState>, path: &str, body: &Value) -> Value {
    let req = Request::post(path)
        .header("x-bkapi-authorization", CREDS)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = router(state.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    serde_json::from_slice(&bytes).expect("json")
}

async fn submit(state: &Arc<SimState>, body: &Value) -> u64 {
    let reply = call(state, "fast_transfer_file", body).await;
    reply["data"]["job_instance_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no job in {reply}"))
}

async fn status(state: &Arc<SimState>, id: u64) -> Value {
    let body = json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id, "return_ip_result": true});
    call(state, "get_job_instance_status", &body).await
}

fn job_status(reply: &Value) -> i64 {
    reply["data"]["job_instance"]["status"]
        .as_i64()
        .unwrap_or_else(|| panic!("no status in {reply}"))
}

/// Follows a job on the (paused) clock until it is finished.
async fn wait(state: &Arc<SimState>, id: u64) -> Value {
    for _ in 0..10_000 {
        let reply = status(state, id).await;
        if reply["data"]["finished"] == json!(true) {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} never finished");
}

fn is_stored(root: &Path, id: u64, status: RunStatus) -> bool {
    let file = root.join(format!(".jobsim/jobs/{id}.state.json"));
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .is_some_and(|s| s["status"] == json!(status.code()))
}

/// The store writes a job's new status off the request path; a test that needs it written
/// waits for the file (in real time, bounded).
fn wait_for_stored_status(root: &Path, id: u64, status: RunStatus) {
    for _ in 0..1_000 {
        if is_stored(root, id, status) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("job {id}'s status {status:?} was never stored");
}

/// As [`wait_for_stored_status`] from inside the simulator's runtime, whose writer task must
/// run meanwhile: yields to it without letting the paused clock move.
async fn stored_in_runtime(root: &Path, id: u64, status: RunStatus) {
    for _ in 0..1_000 {
        if is_stored(root, id, status) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
        tokio::task::yield_now().await;
    }
    panic!("job {id}'s status {status:?} was never stored");
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime")
}

#[test]
fn a_simulator_started_again_on_the_root_continues_its_jobs() {
    let dir = sandbox();
    let root = dir.path();
    let target = root.join("hosts/0/10.0.0.2/tmp/out");

    // The first simulator: one job finished, one transferring, one waiting for START.
    let first = paused_runtime();
    let (done, done_reply, running, waiting) = first.block_on(async {
        let state = SimState::new(root, SimOptions::default()).expect("state");
        let done = submit(&state, &transfer("a.bin", true)).await;
        let done_reply = wait(&state, done).await;
        let running = submit(&state, &transfer("big.bin", true)).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mid = status(&state, running).await;
        assert_eq!(
            job_status(&mid),
            i64::from(RunStatus::Running.code()),
            "{mid}"
        );
        let waiting = submit(&state, &transfer("a.bin", false)).await;
        stored_in_runtime(root, done, RunStatus::Success).await;
        stored_in_runtime(root, running, RunStatus::Running).await;
        (done, done_reply, running, waiting)
    });
    let partial = std::fs::metadata(target.join("big.bin")).map_or(0, |m| m.len());
    assert!(
        partial < BIG as u64,
        "the transfer was cut short ({partial} bytes)"
    );
    // The runtime dies with every task of the simulator in it, as a killed process would.
    first.shutdown_background();

    let second = paused_runtime();
    second.block_on(async {
        let state = SimState::new(root, SimOptions::default()).expect("state");
        // The finished job answers as it did.
        let again = status(&state, done).await;
        assert_eq!(again["data"], done_reply["data"], "{again}");
        let log = call(
            &state,
            "get_job_instance_ip_log",
            &json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": done,
                    "step_instance_id": done + 1, "bk_cloud_id": 0, "ip": "10.0.0.2"}),
        )
        .await;
        assert_eq!(log["code"], 0, "{log}");
        assert!(log.to_string().contains("a.bin"), "{log}");
        // The running job is running, then ends as one run would have.
        let resumed = status(&state, running).await;
        assert_eq!(job_status(&resumed), i64::from(RunStatus::Running.code()), "{resumed}");
        let end = wait(&state, running).await;
        assert_eq!(job_status(&end), i64::from(RunStatus::Success.code()), "{end}");
        // The unstarted job waits for START, and runs on it.
        let blank = status(&state, waiting).await;
        assert_eq!(job_status(&blank), i64::from(RunStatus::Blank.code()), "{blank}");
        let start = call(
            &state,
            "operate_job_instance",
            &json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": waiting, "operation_code": 2}),
        )
        .await;
        assert_eq!(start["code"], 0, "{start}");
        let started = wait(&state, waiting).await;
        assert_eq!(job_status(&started), i64::from(RunStatus::Success.code()), "{started}");
        // New jobs take new ids; an id no simulator gave answers as JOB does.
        let next = submit(&state, &transfer("a.bin", true)).await;
        assert!(next > waiting, "{next} after {waiting}");
        let unknown = status(&state, next + 1_000_000).await;
        assert_eq!(unknown["code"], code::TASK_INSTANCE_NOT_EXIST, "{unknown}");
        // The job list knows them all.
        let now = chrono::Local::now().timestamp_millis();
        let list = call(
            &state,
            "get_job_instance_list",
            &json!({"bk_scope_type": "biz", "bk_scope_id": "2",
                    "create_time_start": now - 3_600_000, "create_time_end": now + 3_600_000}),
        )
        .await;
        assert_eq!(list["data"]["total"], 4, "{list}");
    });
    assert_eq!(
        std::fs::read(target.join("big.bin")).expect("delivered"),
        big_bytes()
    );
}

#[test]
fn ids_are_never_reused_across_restarts() {
    let dir = sandbox();
    let rt = paused_runtime();
    rt.block_on(async {
        let mut last = 0;
        for _ in 0..3 {
            let state = SimState::new(dir.path(), SimOptions::default()).expect("state");
            let id = submit(&state, &transfer("a.bin", false)).await;
            assert!(id > last, "{id} after {last}");
            last = id;
        }
    });
    // Even with every job's files gone, the high-water mark keeps ids increasing.
    let jobs = dir.path().join(".jobsim/jobs");
    for entry in std::fs::read_dir(&jobs).expect("store") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().ends_with(".json") {
            std::fs::remove_file(path).expect("remove");
        }
    }
    rt.block_on(async {
        let state = SimState::new(dir.path(), SimOptions::default()).expect("state");
        let id = submit(&state, &transfer("a.bin", false)).await;
        let status = status(&state, id - 2).await;
        assert_eq!(status["code"], code::TASK_INSTANCE_NOT_EXIST, "{status}");
    });
}

#[test]
fn damaged_or_hostile_store_files_are_skipped_without_a_panic() {
    let dir = sandbox();
    let jobs = dir.path().join(".jobsim/jobs");
    std::fs::create_dir_all(&jobs).expect("mkdir");
    std::fs::write(jobs.join("10000.req.json"), b"{\"format\":1,\"id\":").expect("write");
    std::fs::write(jobs.join("10002.req.json"), b"\xff\xfe not json").expect("write");
    std::fs::write(
        jobs.join("10004.req.json"),
        json!({"format": 1, "id": 10004, "api": "jobv3/fast_transfer_file",
               "params": {"file_target_path": "/../../etc"}, "app_code": "a", "username": "u",
               "name": "n", "stuck": false, "create_ms": 1})
        .to_string(),
    )
    .expect("write");
    std::fs::write(
        jobs.join("10006.req.json"),
        json!({"format": 99}).to_string(),
    )
    .expect("write");
    std::fs::write(jobs.join("next_id"), "not a number").expect("write");
    std::fs::write(jobs.join(".10008.req.json.0000000000000000.tmp"), b"half").expect("write");
    let rt = paused_runtime();
    rt.block_on(async {
        let state = SimState::new(dir.path(), SimOptions::default()).expect("state");
        for id in [10_000, 10_002, 10_004, 10_006] {
            let reply = status(&state, id).await;
            assert_eq!(reply["code"], code::TASK_INSTANCE_NOT_EXIST, "{reply}");
        }
        let id = submit(&state, &transfer("a.bin", false)).await;
        // Past every id a file of the store names, readable or not.
        assert!(id > 10_006, "{id}");
    });
    assert!(!jobs.join(".10008.req.json.0000000000000000.tmp").exists());
}

#[test]
fn no_secret_is_stored() {
    let dir = sandbox();
    let rt = paused_runtime();
    rt.block_on(async {
        let state = SimState::new(dir.path(), SimOptions::default()).expect("state");
        let mut body = transfer("a.bin", true);
        body["bk_app_secret"] = json!("s3cr3t-in-body");
        body["bk_token"] = json!("t0ken-in-body");
        body["file_source_list"][0]["account"]["bk_app_secret"] = json!("s3cr3t-nested");
        let id = submit(&state, &body).await;
        wait(&state, id).await;
    });
    for entry in std::fs::read_dir(dir.path().join(".jobsim/jobs")).expect("store") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).unwrap_or_default();
        assert!(
            !text.contains("s3cr3t") && !text.contains("t0ken"),
            "{text}"
        );
    }
}

#[test]
fn the_binary_killed_with_sigkill_continues_its_jobs_when_started_again() {
    let dir = sandbox();
    let root = dir.path();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = reqwest::Client::new();
    let post = |base: String, api: &'static str, body: Value| {
        let client = client.clone();
        async move {
            client
                .post(format!("{base}/api/c/compapi/v2/jobv3/{api}/"))
                .header("x-bkapi-authorization", CREDS)
                .json(&body)
                .send()
                .await
                .expect("send")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let status_body =
        |id: u64| json!({"bk_biz_id": 2, "job_instance_id": id, "return_ip_result": true});

    let (mut child, base) = spawn_binary(root);
    let id = rt.block_on(async {
        let reply = post(
            base.clone(),
            "fast_transfer_file",
            transfer("big.bin", true),
        )
        .await;
        let id = reply["data"]["job_instance_id"].as_u64().expect("id");
        // Running, with part of the file moved.
        for _ in 0..500 {
            let s = post(base.clone(), "get_job_instance_status", status_body(id)).await;
            if job_status(&s) == i64::from(RunStatus::Running.code()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        id
    });
    wait_for_stored_status(root, id, RunStatus::Running);
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    let (mut child, base) = spawn_binary(root);
    rt.block_on(async {
        let mut end = Value::Null;
        for _ in 0..1_000 {
            end = post(base.clone(), "get_job_instance_status", status_body(id)).await;
            if end["data"]["finished"] == json!(true) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            job_status(&end),
            i64::from(RunStatus::Success.code()),
            "{end}"
        );
        let next = post(base.clone(), "fast_transfer_file", transfer("a.bin", false)).await;
        let next = next["data"]["job_instance_id"].as_u64().expect("id");
        assert!(next > id, "{next} after {id}");
    });
    child.kill().expect("kill");
    child.wait().expect("reaped");
    assert_eq!(
        std::fs::read(root.join("hosts/0/10.0.0.2/tmp/out/big.bin")).expect("delivered"),
        big_bytes()
    );
}

/// A store directory planted as a symlink out of the sandbox is refused: the simulator does
/// not start, and nothing is written where the link points.
#[cfg(unix)]
#[test]
fn a_store_linked_out_of_the_root_is_refused() {
    let dir = sandbox();
    let outside = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join(".jobsim")).expect("mkdir");
    std::os::unix::fs::symlink(outside.path(), dir.path().join(".jobsim/jobs")).expect("symlink");
    let rt = paused_runtime();
    let started = rt.block_on(async { SimState::new(dir.path(), SimOptions::default()) });
    let err = started.expect_err("a store outside the root");
    assert!(err.to_string().contains(".jobsim/jobs"), "{err}");
    assert_eq!(
        std::fs::read_dir(outside.path()).expect("outside").count(),
        0
    );
}

/// A job `[sim] keep_jobs` archives leaves the store too: after a restart it is unknown, as
/// it was before the restart.
#[test]
fn archived_jobs_leave_the_store() {
    let dir = sandbox();
    let root = dir.path();
    std::fs::write(
        root.join("jobsim.toml"),
        "[sim]\nstart_delay_ms = 10\nhost_wait_ms = 10\nkeep_jobs = 1\n",
    )
    .expect("write");
    let rt = paused_runtime();
    let (old, kept) = rt.block_on(async {
        let state = SimState::new(root, SimOptions::default()).expect("state");
        let old = submit(&state, &transfer("a.bin", true)).await;
        wait(&state, old).await;
        let kept = submit(&state, &transfer("a.bin", true)).await;
        wait(&state, kept).await;
        let gone = root.join(format!(".jobsim/jobs/{old}.req.json"));
        for _ in 0..1_000 {
            if !gone.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            tokio::task::yield_now().await;
        }
        assert!(!gone.exists(), "{} still stored", gone.display());
        stored_in_runtime(root, kept, RunStatus::Success).await;
        (old, kept)
    });
    rt.block_on(async {
        let state = SimState::new(root, SimOptions::default()).expect("state");
        let archived = status(&state, old).await;
        assert_eq!(
            archived["code"],
            code::TASK_INSTANCE_NOT_EXIST,
            "{archived}"
        );
        let known = status(&state, kept).await;
        assert_eq!(
            job_status(&known),
            i64::from(RunStatus::Success.code()),
            "{known}"
        );
    });
}

/// A job the simulator does not know (here: its store deleted while it was stopped, as a JOB
/// that lost its database) is JOB's `1244006` on every API that names a job, in both families
/// and through both front doors.
#[test]
fn a_job_the_store_lost_is_1244006_on_every_api() {
    let dir = sandbox();
    let rt = paused_runtime();
    let id = rt.block_on(async {
        let state = SimState::new(dir.path(), SimOptions::default()).expect("state");
        let id = submit(&state, &transfer("a.bin", true)).await;
        wait(&state, id).await;
        id
    });
    std::fs::remove_dir_all(dir.path().join(".jobsim/jobs")).expect("rm store");
    rt.block_on(async {
        let state = SimState::new(dir.path(), SimOptions::default()).expect("state");
        let v3 = json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id,
                        "step_instance_id": id + 1, "bk_cloud_id": 0, "ip": "10.0.0.2",
                        "ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.2"}], "operation_code": 1});
        let v2 = json!({"bk_biz_id": 2, "job_instance_id": id, "operation_code": 1});
        let calls = [
            ("jobv3", "get_job_instance_status", &v3),
            ("jobv3", "get_job_instance_ip_log", &v3),
            ("jobv3", "batch_get_job_instance_ip_log", &v3),
            ("jobv3", "operate_job_instance", &v3),
            ("job", "get_job_instance_status", &v2),
            ("job", "get_job_instance_log", &v2),
            ("job", "operate_job_instance", &v2),
        ];
        for (group, api, body) in calls {
            let reply = call_path(&state, &format!("/api/c/compapi/v2/{group}/{api}/"), body).await;
            assert_eq!(
                reply["code"],
                code::TASK_INSTANCE_NOT_EXIST,
                "{group}/{api}: {reply}"
            );
            assert_eq!(
                reply["message"], "Task instance does not exist",
                "{group}/{api}"
            );
            if group == "jobv3" {
                let reply = call_gateway(&state, api, body).await;
                assert_eq!(
                    reply["code"],
                    code::TASK_INSTANCE_NOT_EXIST,
                    "gateway {api}: {reply}"
                );
            }
        }
    });
}
