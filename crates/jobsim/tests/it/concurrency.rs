//! Hundreds of jobs at once: none blocks another, ids are unique, every file lands.

use std::collections::BTreeSet;

use serde_json::json;

use crate::support::{Sim, job_id, v3_body};

#[tokio::test(start_paused = true)]
async fn two_hundred_concurrent_jobs() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", &vec![9u8; 256 * 1024]);
    let mut ids = Vec::new();
    for i in 0..200 {
        let mut b = v3_body();
        b["file_target_path"] = json!(format!("/out/{i}"));
        b["download_speed_limit"] = json!(1); // 0.25 s each if alone; together they must overlap
        ids.push(job_id(&sim.esb("jobv3/fast_transfer_file", b).await));
    }
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 200);
    let t0 = tokio::time::Instant::now();
    let mut done = Vec::new();
    for id in &ids {
        done.push(sim.wait(*id).await);
    }
    let elapsed = t0.elapsed();
    for s in &done {
        assert_eq!(s["data"]["job_instance"]["status"], json!(3), "{s}");
    }
    assert!(
        elapsed.as_secs_f64() < 5.0,
        "jobs ran in parallel: {elapsed:?} for 200 x 0.25 s"
    );
    for i in 0..200 {
        assert_eq!(
            sim.read("10.0.0.2", &format!("/out/{i}/a.bin"))
                .map(|b| b.len()),
            Some(256 * 1024)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_keep_the_request_log_whole() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    let sim = Sim::with_config("[sim]\nstart_delay_ms = 0\nhost_wait_ms = 0\n");
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let mut set = tokio::task::JoinSet::new();
    for i in 0..100 {
        let state = sim.state.clone();
        let mut b = v3_body();
        b["file_target_path"] = json!(format!("/c/{i}"));
        set.spawn(async move {
            let req = Request::post("/api/c/compapi/v2/jobv3/fast_transfer_file/")
                .header("x-bkapi-authorization", crate::support::CREDS)
                .body(Body::from(b.to_string()))
                .expect("request");
            plan_jobsim::router(state)
                .oneshot(req)
                .await
                .expect("infallible")
                .status()
        });
    }
    while let Some(status) = set.join_next().await {
        assert_eq!(status.expect("task"), axum::http::StatusCode::OK);
    }
    let text = std::fs::read_to_string(sim.dir.path().join(".jobsim/requests.jsonl")).expect("log");
    let ids: BTreeSet<u64> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("whole JSON line"))
        .filter_map(|v| v["job_instance_id"].as_u64())
        .collect();
    assert_eq!(ids.len(), 100);
}

/// Many two-phase jobs at once, each started the moment its creation is answered (START
/// racing the engine task that was just spawned for it): every one runs to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phase_jobs_started_at_once_all_run() {
    let sim = std::sync::Arc::new(Sim::with_config(
        "[sim]\nstart_delay_ms = 0\nhost_wait_ms = 0\n",
    ));
    sim.write("10.0.0.1", "/data/a.bin", b"two phases");
    let mut set = tokio::task::JoinSet::new();
    for i in 0..64 {
        let sim = sim.clone();
        set.spawn(async move {
            let mut b = v3_body();
            b["file_target_path"] = json!(format!("/two/{i}"));
            b["start_task"] = json!(false);
            let id = job_id(&sim.esb("jobv3/fast_transfer_file", b).await);
            let started = sim
                .esb(
                    "jobv3/operate_job_instance",
                    json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id, "operation_code": 2}),
                )
                .await;
            assert_eq!(started["code"], json!(0), "{started}");
            // Until JOB says finished, however long a loaded machine takes: a START lost to
            // the race leaves the job in status 1 for good, and only then does the guard (ten
            // minutes, far beyond any slowness) turn that hang into a failure.
            let guard = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
            loop {
                let s = sim.v3_status(id).await;
                if s["data"]["finished"] == json!(true) {
                    return (id, s["data"]["job_instance"]["status"].clone());
                }
                assert!(tokio::time::Instant::now() < guard, "job {id} never finished: {s}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        let (id, status) = joined.expect("task");
        assert_eq!(status, json!(3), "job {id}");
    }
}
