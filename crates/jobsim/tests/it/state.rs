//! The status model on tokio's paused clock: 1 -> 2 -> final, hosts 5 -> 7 -> final,
//! failures with GSE codes, timeout, terminate, two-phase start, stuck jobs.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

use crate::support::{Sim, job_id, v2_body, v3_body};

fn host_status(s: &Value, i: usize) -> (i64, i64) {
    let h = &s["data"]["step_instance_list"][0]["step_ip_result_list"][i];
    (
        h["status"].as_i64().unwrap_or(-99),
        h["error_code"].as_i64().unwrap_or(-99),
    )
}

fn job_status(s: &Value) -> i64 {
    s["data"]["job_instance"]["status"].as_i64().unwrap_or(-99)
}

const MB: usize = 1024 * 1024;

#[tokio::test(start_paused = true)]
async fn v2_job_walks_the_status_model() {
    let sim = Sim::new(); // start delay 200 ms, host wait 100 ms
    sim.write("10.0.0.1", "/data/a.bin", &vec![7u8; 2 * MB]);
    let body = {
        let mut b = v2_body();
        b["download_speed_limit"] = json!(1);
        b
    };
    let id = job_id(&sim.esb("job/fast_push_file", body).await);

    let s = sim.v2_status(id).await;
    assert_eq!(s["data"]["is_finished"], json!(false));
    assert_eq!(s["data"]["job_instance"]["status"], json!(1));
    assert_eq!(s["data"]["job_instance"]["start_time"], Value::Null);
    assert_eq!(
        s["data"]["blocks"][0]["step_instances"][0]["step_ip_status"],
        json!([])
    );

    sleep(Duration::from_millis(250)).await;
    let s = sim.v2_status(id).await;
    assert_eq!(s["data"]["job_instance"]["status"], json!(2));
    assert_eq!(
        s["data"]["blocks"][0]["step_instances"][0]["step_ip_status"],
        json!([{"ip": "10.0.0.2", "bk_cloud_id": 0, "status": 5}])
    );

    sleep(Duration::from_millis(200)).await;
    let s = sim.v2_status(id).await;
    assert_eq!(
        s["data"]["blocks"][0]["step_instances"][0]["step_ip_status"][0]["status"],
        json!(7)
    );

    let done = sim.wait(id).await;
    assert_eq!(job_status(&done), 3);
    assert_eq!(host_status(&done, 0), (9, 0));
    let s = sim.v2_status(id).await;
    assert_eq!(s["data"]["is_finished"], json!(true));
    let total = s["data"]["job_instance"]["total_time"]
        .as_f64()
        .expect("float seconds");
    assert!(
        (2.0..2.5).contains(&total),
        "2 MB at 1 MB/s plus host wait, got {total}"
    );
    let end = s["data"]["job_instance"]["end_time"]
        .as_str()
        .expect("string time");
    assert_eq!(
        end.len(),
        "2026-01-01 12:00:00".len(),
        "no zone suffix: {end}"
    );
}

#[tokio::test(start_paused = true)]
async fn mixed_hosts_fail_the_job_with_per_host_codes() {
    let sim = Sim::with_config(
        r#"
[[host]]
host = "0:10.0.0.3"
agent = "down"
[[host]]
host = "10.0.0.4"
missing_accounts = ["root"]
"#,
    );
    sim.write("10.0.0.1", "/data/a.bin", b"abc");
    let mut body = v3_body();
    body["target_server"] = json!({"ip_list": [
        {"bk_cloud_id": 0, "ip": "10.0.0.2"}, {"bk_cloud_id": 0, "ip": "10.0.0.3"}, {"bk_cloud_id": 0, "ip": "10.0.0.4"}]});
    let id = job_id(&sim.esb("jobv3/fast_transfer_file", body).await);
    let done = sim.wait(id).await;
    assert_eq!(job_status(&done), 4, "{done}");
    assert_eq!(done["data"]["step_instance_list"][0]["status"], json!(4));
    assert_eq!(host_status(&done, 0), (9, 0));
    assert_eq!(host_status(&done, 1), (310, 117));
    assert_eq!(host_status(&done, 2), (311, 122));
    assert_eq!(
        sim.read("10.0.0.2", "/tmp/out/a.bin").as_deref(),
        Some(&b"abc"[..])
    );
    assert_eq!(sim.read("10.0.0.3", "/tmp/out/a.bin"), None);
}

#[tokio::test(start_paused = true)]
async fn missing_source_file_fails_every_target_with_320() {
    let sim = Sim::new();
    let mut body = v3_body();
    body["target_server"] = json!({"host_id_list": [1002, 1003]});
    let id = job_id(&sim.esb("jobv3/fast_transfer_file", body).await);
    let done = sim.wait(id).await;
    assert_eq!(job_status(&done), 4);
    assert_eq!(host_status(&done, 0), (320, 104));
    assert_eq!(host_status(&done, 1), (320, 104));
}

#[tokio::test(start_paused = true)]
async fn source_agent_down_fails_targets() {
    let sim = Sim::with_config("[[host]]\nhost = \"0:10.0.0.1\"\nagent = \"down\"\n");
    sim.write("10.0.0.1", "/data/a.bin", b"abc");
    let id = job_id(&sim.esb("jobv3/fast_transfer_file", v3_body()).await);
    let done = sim.wait(id).await;
    assert_eq!(host_status(&done, 0), (310, 117));
}

#[tokio::test(start_paused = true)]
async fn timeout_marks_running_hosts_303() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", &vec![1u8; 4 * MB]);
    let mut body = v3_body();
    body["timeout"] = json!(2);
    body["upload_speed_limit"] = json!(1);
    let t0 = Instant::now();
    let id = job_id(&sim.esb("jobv3/fast_transfer_file", body).await);
    let done = sim.wait(id).await;
    let waited = t0.elapsed();
    assert_eq!(job_status(&done), 4);
    assert_eq!(host_status(&done, 0), (303, 120));
    assert!(
        waited < Duration::from_secs(3),
        "timed out after 2 s of running, waited {waited:?}"
    );
    assert_eq!(
        sim.read("10.0.0.2", "/tmp/out/a.bin"),
        None,
        "no partial file under the final name"
    );
}

async fn operate(sim: &Sim, id: u64, code: i64) -> Value {
    sim.esb(
        "jobv3/operate_job_instance",
        json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id, "operation_code": code}),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn terminate_goes_through_stopping_to_stop_success() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", &vec![1u8; 8 * MB]);
    let mut body = v3_body();
    body["download_speed_limit"] = json!(1);
    let id = job_id(&sim.esb("jobv3/fast_transfer_file", body).await);
    sleep(Duration::from_millis(1000)).await;
    assert_eq!(job_status(&sim.v3_status(id).await), 2);
    let r = operate(&sim, id, 1).await;
    assert_eq!(r["code"], json!(0), "{r}");
    assert_eq!(
        r["data"],
        json!({"job_instance_id": id, "job_instance_name": null, "step_instance_id": null})
    );
    let s = sim.v3_status(id).await;
    assert_eq!(job_status(&s), 10);
    assert_eq!(s["data"]["finished"], json!(false));
    let again = operate(&sim, id, 1).await;
    assert_eq!(
        (again["code"].clone(), again["message"].clone()),
        (json!(1_241_003), json!("Unsupported operation"))
    );
    let done = sim.wait(id).await;
    assert_eq!(job_status(&done), 11);
    assert_eq!(host_status(&done, 0), (403, 126));
    assert_eq!(operate(&sim, id, 1).await["code"], json!(1_241_003));
    // v2 operate omits step_instance_id.
    let v2 = sim
        .esb(
            "job/operate_job_instance",
            json!({"bk_biz_id": 2, "job_instance_id": id, "operation_code": 1}),
        )
        .await;
    assert_eq!(v2["code"], json!(1_241_003));
}

#[tokio::test(start_paused = true)]
async fn two_phase_start() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", b"abc");
    let mut body = v3_body();
    body["start_task"] = json!("false");
    let id = job_id(&sim.esb("jobv3/fast_transfer_file", body).await);
    sleep(Duration::from_secs(600)).await;
    let s = sim.v3_status(id).await;
    assert_eq!(job_status(&s), 1, "waits for operation_code 2");
    assert_eq!(
        operate(&sim, id, 1).await["code"],
        json!(1_241_003),
        "cannot terminate a pending job"
    );
    assert_eq!(operate(&sim, id, 2).await["code"], json!(0));
    let again = operate(&sim, id, 2).await;
    assert_eq!(again["code"], json!(1_241_015));
    assert_eq!(
        again["message"],
        json!(format!(
            "Unsupported operation,do not repeat start the job,job_instance_id={id}"
        ))
    );
    let done = sim.wait(id).await;
    assert_eq!(job_status(&done), 3);
    assert_eq!(operate(&sim, id, 2).await["code"], json!(1_241_015));
}

#[tokio::test(start_paused = true)]
async fn stuck_job_runs_until_timeout_or_terminate() {
    let sim =
        Sim::with_config("[[fault]]\napi = \"fast_transfer_file\"\nkind = \"stuck\"\ncount = 2\n");
    sim.write("10.0.0.1", "/data/a.bin", b"abc");
    let mut body = v3_body();
    body["timeout"] = json!(30);
    let timed = job_id(&sim.esb("jobv3/fast_transfer_file", body.clone()).await);
    let stopped = job_id(&sim.esb("jobv3/fast_transfer_file", body.clone()).await);
    let normal = job_id(&sim.esb("jobv3/fast_transfer_file", body).await);
    sleep(Duration::from_secs(20)).await;
    assert_eq!(
        host_status(&sim.v3_status(timed).await, 0).0,
        7,
        "still running"
    );
    assert_eq!(job_status(&sim.v3_status(normal).await), 3);
    assert_eq!(operate(&sim, stopped, 1).await["code"], json!(0));
    assert_eq!(host_status(&sim.wait(stopped).await, 0), (403, 126));
    let done = sim.wait(timed).await;
    assert_eq!(host_status(&done, 0), (303, 120));
}

#[tokio::test(start_paused = true)]
async fn running_job_quota() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("hosts/0/10.0.0.1/data")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("hosts/0/10.0.0.2")).expect("mkdir");
    std::fs::write(dir.path().join("hosts/0/10.0.0.1/data/a.bin"), b"x").expect("write");
    let state = plan_jobsim::SimState::new(
        dir.path(),
        plan_jobsim::SimOptions {
            max_running_jobs: Some(1),
            ..Default::default()
        },
    )
    .expect("state");
    let sim = Sim { dir, state };
    assert_eq!(
        sim.esb("jobv3/fast_transfer_file", v3_body()).await["code"],
        json!(0)
    );
    let r = sim.esb("jobv3/fast_transfer_file", v3_body()).await;
    assert_eq!(r["code"], json!(1_244_032));
}

#[tokio::test(start_paused = true)]
async fn failed_pull_is_explained_in_the_target_log() {
    let sim = Sim::new();
    let id = job_id(&sim.esb("job/fast_push_file", v2_body()).await);
    sim.wait(id).await;
    let log = sim
        .esb(
            "job/get_job_instance_log",
            json!({"bk_biz_id": 2, "job_instance_id": id}),
        )
        .await;
    let group = &log["data"][0]["step_results"][0];
    assert_eq!(group["ip_status"], json!(320));
    let content = group["ip_logs"][0]["log_content"]
        .as_str()
        .expect("content");
    assert!(
        content.contains("FileName: /tmp/out/a.bin Status: 5 StatusDesc: failed Detail: Source file /data/a.bin does not exist"),
        "{content}"
    );
}

#[tokio::test(start_paused = true)]
async fn running_job_quota_from_config_frees_up_when_jobs_end() {
    let sim = Sim::with_config("[sim]\nmax_running_jobs = 1\n");
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let first = job_id(&sim.esb("jobv3/fast_transfer_file", v3_body()).await);
    let r = sim.esb("jobv3/fast_transfer_file", v3_body()).await;
    assert_eq!(r["code"], json!(1_244_032));
    sim.wait(first).await;
    assert_eq!(
        sim.esb("jobv3/fast_transfer_file", v3_body()).await["code"],
        json!(0)
    );
}

#[tokio::test(start_paused = true)]
async fn flaky_host_fails_the_first_jobs_only() {
    let sim = Sim::with_config("[[host]]\nhost = \"0:10.0.0.2\"\nflaky_jobs = 1\n");
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let first = sim
        .wait(job_id(
            &sim.esb("jobv3/fast_transfer_file", v3_body()).await,
        ))
        .await;
    assert_eq!(host_status(&first, 0), (310, 117));
    let second = sim
        .wait(job_id(
            &sim.esb("jobv3/fast_transfer_file", v3_body()).await,
        ))
        .await;
    assert_eq!(host_status(&second, 0), (9, 0));
}

#[tokio::test(start_paused = true)]
async fn silent_host_ends_as_15_five_minutes_after_the_timeout() {
    let sim = Sim::with_config("[[host]]\nhost = \"0:10.0.0.3\"\nsilent = true\n");
    sim.write("10.0.0.1", "/data/a.bin", &vec![1u8; 4 * MB]);
    let mut body = v3_body();
    body["timeout"] = json!(10);
    body["download_speed_limit"] = json!(1);
    body["target_server"] = json!({"host_id_list": [1002, 1003]});
    let t0 = Instant::now();
    let id = job_id(&sim.esb("jobv3/fast_transfer_file", body).await);
    sleep(Duration::from_secs(60)).await;
    let s = sim.v3_status(id).await;
    assert_eq!(host_status(&s, 0), (9, 0), "the healthy host finished");
    assert_eq!(host_status(&s, 1).0, 7, "still waiting after the timeout");
    let done = sim.wait(id).await;
    assert_eq!(host_status(&done, 1), (15, -1));
    assert_eq!(job_status(&done), 4);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(310) && waited < Duration::from_secs(312),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn past_keep_jobs_the_oldest_finished_jobs_are_archived() {
    let sim = Sim::with_config("[sim]\nkeep_jobs = 2\n");
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = job_id(&sim.esb("job/fast_push_file", v2_body()).await);
        sim.wait(id).await;
        ids.push(id);
    }
    // The fourth job pushes the map past two: the oldest finished job goes, as JOB's
    // archiving makes it unknown, and the newer ones stay queryable.
    let running = job_id(&sim.esb("job/fast_push_file", v2_body()).await);
    assert_eq!(sim.v2_status(ids[0]).await["code"], json!(1_244_006));
    assert_eq!(sim.v2_status(ids[1]).await["code"], json!(1_244_006));
    assert_eq!(sim.v2_status(ids[2]).await["code"], json!(0));
    assert_eq!(sim.v2_status(running).await["code"], json!(0));
    sim.wait(running).await;
}
