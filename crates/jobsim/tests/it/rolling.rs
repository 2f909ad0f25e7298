//! Rolling execution (v3 `rolling_config`) and `operate_step_instance` on tokio's paused
//! clock: batches in order, the statuses while a batch waits, and JOB's operations 13, 2, 3
//! and 8 with their preconditions.

use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};
use tokio::time::sleep;

use crate::support::{Sim, job_id, v3_body};

/// Targets 10.0.1.1..=n, each an empty sandbox host; the source is 10.0.0.1:/data/a.bin.
fn fleet(toml: &str, n: usize) -> Sim {
    let sim = Sim::with_config(toml);
    for i in 1..=n {
        std::fs::create_dir_all(sim.dir.path().join(format!("hosts/0/10.0.1.{i}"))).expect("mkdir");
    }
    sim.write("10.0.0.1", "/data/a.bin", b"release 42");
    sim
}

fn rolling_body(n: usize, expression: &str, mode: i64) -> Value {
    let mut body = v3_body();
    let targets: Vec<Value> = (1..=n)
        .map(|i| json!({"bk_cloud_id": 0, "ip": format!("10.0.1.{i}")}))
        .collect();
    body["target_server"] = json!({"ip_list": targets});
    body["rolling_config"] = json!({"expression": expression, "mode": mode});
    body
}

fn delivered(sim: &Sim, host: usize) -> bool {
    sim.read(&format!("10.0.1.{host}"), "/tmp/out/a.bin")
        .is_some()
}

fn job_status(s: &Value) -> i64 {
    s["data"]["job_instance"]["status"].as_i64().unwrap_or(-1)
}

fn step(s: &Value) -> &Value {
    &s["data"]["step_instance_list"][0]
}

/// Each target's status, by its address's last number.
fn host_statuses(s: &Value) -> Vec<(usize, i64)> {
    let mut hosts: Vec<(usize, i64)> = step(s)["step_ip_result_list"]
        .as_array()
        .expect("host results")
        .iter()
        .map(|h| {
            let ip = h["ip"].as_str().unwrap_or_default();
            let n = ip
                .rsplit('.')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            (n, h["status"].as_i64().unwrap_or(-1))
        })
        .collect();
    hosts.sort_unstable();
    hosts
}

/// Polls (100 ms of virtual time apart) until the job's status is `status`.
async fn wait_for(sim: &Sim, id: u64, status: i64) -> Value {
    for _ in 0..10_000 {
        let s = sim.v3_status(id).await;
        if job_status(&s) == status {
            return s;
        }
        sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} never reached status {status}");
}

async fn operate_step(sim: &Sim, id: u64, step_id: u64, code: i64) -> Value {
    sim.esb(
        "jobv3/operate_step_instance",
        json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id,
               "step_instance_id": step_id, "operation_code": code}),
    )
    .await
}

fn step_id(submitted: &Value) -> u64 {
    submitted["data"]["step_instance_id"]
        .as_u64()
        .expect("step id")
}

fn code(reply: &Value) -> i64 {
    reply["code"].as_i64().unwrap_or(-1)
}

#[tokio::test(start_paused = true)]
async fn pause_on_failure_stops_after_the_failed_batch_until_continued() {
    // "1 30% 100%" over 20 hosts: batch 1 is host 1, batch 2 hosts 2-7, batch 3 hosts 8-20.
    let sim = fleet("[[host]]\nhost = \"10.0.1.3\"\nagent = \"down\"\n", 20);
    let submitted = sim
        .esb(
            "jobv3/fast_transfer_file",
            rolling_body(20, "1 30% 100%", 1),
        )
        .await;
    assert_eq!(code(&submitted), 0, "{submitted}");
    let (id, step_id) = (job_id(&submitted), step_id(&submitted));

    // The failed batch fails the step and the job: a final status, as JOB sets it.
    let paused = sim.wait(id).await;
    assert_eq!(job_status(&paused), 4);
    assert_eq!(step(&paused)["status"], json!(4));
    let statuses = host_statuses(&paused);
    assert_eq!(statuses[0], (1, 9));
    assert_eq!(statuses[2], (3, 310));
    assert!(
        statuses[1..7]
            .iter()
            .filter(|(n, _)| *n != 3)
            .all(|(_, st)| *st == 9)
    );
    assert!(statuses[7..].iter().all(|(_, st)| *st == 5), "{statuses:?}");
    assert!((1..=7).filter(|&h| h != 3).all(|h| delivered(&sim, h)));

    // Nothing reaches batch 3 while the job stays paused.
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(job_status(&sim.v3_status(id).await), 4);
    assert!((8..=20).all(|h| !delivered(&sim, h)));

    // Continuing a rolling step is for a step waiting for a user, not a failed one.
    let refused = operate_step(&sim, id, step_id, 13).await;
    assert_eq!(code(&refused), 1_241_003, "{refused}");

    // Ignoring the error goes on with batch 3, in the same job.
    let ignored = operate_step(&sim, id, step_id, 3).await;
    assert_eq!(code(&ignored), 0, "{ignored}");
    assert_eq!(ignored["data"]["job_instance_id"], json!(id));
    assert_eq!(job_status(&sim.v3_status(id).await), 2);
    let done = sim.wait(id).await;
    assert_eq!(job_status(&done), 3);
    assert!((8..=20).all(|h| delivered(&sim, h)));
    assert_eq!(host_statuses(&done)[2], (3, 310));
}

#[tokio::test(start_paused = true)]
async fn manual_mode_waits_for_a_user_after_every_batch() {
    let sim = fleet("", 20);
    let submitted = sim
        .esb(
            "jobv3/fast_transfer_file",
            rolling_body(20, "1 30% 100%", 3),
        )
        .await;
    let (id, step_id) = (job_id(&submitted), step_id(&submitted));

    let waiting = wait_for(&sim, id, 7).await;
    assert_eq!(step(&waiting)["status"], json!(7));
    assert_eq!(waiting["data"]["finished"], json!(false));
    assert!(delivered(&sim, 1) && (2..=20).all(|h| !delivered(&sim, h)));
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(job_status(&sim.v3_status(id).await), 7);
    assert!((2..=20).all(|h| !delivered(&sim, h)));

    // Retrying or ignoring is for a failed step.
    for op in [2, 3, 8] {
        assert_eq!(
            code(&operate_step(&sim, id, step_id, op).await),
            1_241_003,
            "{op}"
        );
    }
    // The gateway's door continues as ESB's does.
    let r = sim
        .gw(
            Method::POST,
            "operate_step_instance",
            Some(
                json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id,
                        "step_instance_id": step_id, "operation_code": 13}),
            ),
        )
        .await;
    assert_eq!(code(&r.body), 0, "{}", r.body);
    assert_eq!(r.body["data"]["step_instance_id"], json!(step_id));
    assert_eq!(job_status(&sim.v3_status(id).await), 2);

    wait_for(&sim, id, 7).await;
    assert!((1..=7).all(|h| delivered(&sim, h)));
    assert!((8..=20).all(|h| !delivered(&sim, h)));

    assert_eq!(code(&operate_step(&sim, id, step_id, 13).await), 0);
    let done = sim.wait(id).await;
    assert_eq!(job_status(&done), 3);
    assert_eq!(step(&done)["status"], json!(3));
    assert!((1..=20).all(|h| delivered(&sim, h)));
    // A finished job has nothing to continue.
    assert_eq!(code(&operate_step(&sim, id, step_id, 13).await), 1_241_003);
}

#[tokio::test(start_paused = true)]
async fn a_terminate_between_batches_ends_the_job_at_once() {
    let sim = fleet("", 4);
    let submitted = sim
        .esb("jobv3/fast_transfer_file", rolling_body(4, "1", 3))
        .await;
    let id = job_id(&submitted);
    wait_for(&sim, id, 7).await;
    let r = sim
        .esb(
            "jobv3/operate_job_instance",
            json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id, "operation_code": 1}),
        )
        .await;
    assert_eq!(code(&r), 0, "{r}");
    let s = sim.v3_status(id).await;
    assert_eq!(
        (job_status(&s), step(&s)["status"].clone()),
        (11, json!(11))
    );
    assert!((2..=4).all(|h| !delivered(&sim, h)));
}

#[tokio::test(start_paused = true)]
async fn retry_of_the_failed_hosts_keeps_the_job_id() {
    // Host 3's agent is abnormal once, then healthy: the retry gets past it.
    let sim = fleet("[[host]]\nhost = \"10.0.1.3\"\nflaky_jobs = 1\n", 20);
    let submitted = sim
        .esb(
            "jobv3/fast_transfer_file",
            rolling_body(20, "1 30% 100%", 1),
        )
        .await;
    let (id, step_id) = (job_id(&submitted), step_id(&submitted));
    let paused = sim.wait(id).await;
    assert_eq!(job_status(&paused), 4);
    assert_eq!(step(&paused)["execute_count"], json!(0));

    // Through v2's door, as JOB publishes the API in both families.
    let retried = sim
        .esb(
            "job/operate_step_instance",
            json!({"bk_biz_id": 2, "job_instance_id": id, "step_instance_id": step_id,
                   "operation_code": 2}),
        )
        .await;
    assert_eq!(code(&retried), 0, "{retried}");
    assert_eq!(retried["data"]["job_instance_id"], json!(id));
    let running = sim.v3_status(id).await;
    assert_eq!(job_status(&running), 2);
    assert_eq!(step(&running)["execute_count"], json!(1));
    // Only the failed host runs again; the batch's others keep their success.
    let statuses = host_statuses(&running);
    assert_eq!(statuses[2], (3, 5));
    assert!(
        statuses[..7]
            .iter()
            .filter(|(n, _)| *n != 3)
            .all(|(_, st)| *st == 9)
    );

    let done = sim.wait(id).await;
    assert_eq!(job_status(&done), 3);
    assert!(host_statuses(&done).iter().all(|(_, st)| *st == 9));
    assert!((1..=20).all(|h| delivered(&sim, h)));
}

#[tokio::test(start_paused = true)]
async fn a_job_without_rolling_is_retried_inside_the_same_job() {
    let sim = fleet("[[host]]\nhost = \"10.0.1.2\"\nflaky_jobs = 1\n", 3);
    let mut body = rolling_body(3, "1", 1);
    body.as_object_mut()
        .expect("object")
        .remove("rolling_config");
    let submitted = sim.esb("jobv3/fast_transfer_file", body).await;
    let (id, step_id) = (job_id(&submitted), step_id(&submitted));
    assert_eq!(job_status(&sim.wait(id).await), 4);
    // Retry every host: all three run again, execute_count 1.
    assert_eq!(code(&operate_step(&sim, id, step_id, 8).await), 0);
    let running = sim.v3_status(id).await;
    assert!(host_statuses(&running).iter().all(|(_, st)| *st == 5));
    let done = sim.wait(id).await;
    assert_eq!(
        (job_status(&done), step(&done)["execute_count"].clone()),
        (3, json!(1))
    );
}

#[tokio::test(start_paused = true)]
async fn ignore_failure_mode_rolls_on_and_ends_as_a_success() {
    let sim = fleet("[[host]]\nhost = \"10.0.1.2\"\nagent = \"down\"\n", 6);
    let submitted = sim
        .esb("jobv3/fast_transfer_file", rolling_body(6, "2", 2))
        .await;
    let id = job_id(&submitted);
    let done = sim.wait(id).await;
    // JOB: the failed batch is "ignore error", the job ends as a success.
    assert_eq!(job_status(&done), 3);
    assert!((1..=6).filter(|&h| h != 2).all(|h| delivered(&sim, h)));
    assert_eq!(host_statuses(&done)[1], (2, 310));
}

#[tokio::test(start_paused = true)]
async fn rolling_config_is_validated_as_job_does() {
    let sim = fleet("", 4);
    let cases: [(Value, i64, &str); 6] = [
        (
            json!({"expression": "1 0"}),
            1_244_026,
            "Invalid rolling strategy",
        ),
        (
            json!({"expression": " 1"}),
            1_244_026,
            "Invalid rolling strategy",
        ),
        (
            json!({"expression": "  "}),
            1_240_003,
            "Rolling expression cannot be blank",
        ),
        (
            json!({"expression": "1", "mode": 4}),
            1_240_003,
            "Illegal rolling mode",
        ),
        (
            json!({"expression": "1", "type": 3}),
            1_240_003,
            "Illegal rolling type",
        ),
        (
            json!({"expression": "1 9999999999"}),
            1_240_002,
            "Internal Server Error",
        ),
    ];
    for (config, want, message) in cases {
        let mut body = rolling_body(4, "1", 1);
        body["rolling_config"] = config.clone();
        let r = sim.esb("jobv3/fast_transfer_file", body).await;
        assert_eq!(
            (code(&r), r["message"].as_str()),
            (want, Some(message)),
            "{config}"
        );
    }
    // More than JOB's 500 batches over the resolved targets.
    for i in 5..=502 {
        std::fs::create_dir_all(sim.dir.path().join(format!(
            "hosts/0/10.0.{}.{}",
            2 + i / 250,
            i % 250
        )))
        .expect("mkdir");
    }
    let mut body = rolling_body(4, "1", 1);
    let targets: Vec<Value> = (1..=502)
        .map(|i| {
            let ip = if i <= 4 {
                format!("10.0.1.{i}")
            } else {
                format!("10.0.{}.{}", 2 + i / 250, i % 250)
            };
            json!({"bk_cloud_id": 0, "ip": ip})
        })
        .collect();
    body["target_server"] = json!({"ip_list": targets});
    let r = sim.esb("jobv3/fast_transfer_file", body).await;
    assert_eq!(code(&r), 1_244_027, "{r}");
    assert_eq!(
        r["message"],
        json!("Rolling batch can not be greater than 500")
    );
}

#[tokio::test(start_paused = true)]
async fn operate_step_instance_checks_in_jobs_order() {
    let sim = fleet("", 2);
    let submitted = sim
        .esb("jobv3/fast_transfer_file", rolling_body(2, "1", 3))
        .await;
    let (id, step_id) = (job_id(&submitted), step_id(&submitted));
    let base = json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id,
                      "step_instance_id": step_id, "operation_code": 13});
    let with = |key: &str, value: Value| {
        let mut b = base.clone();
        b[key] = value;
        b
    };
    let cases = [
        (with("job_instance_id", json!(0)), 1_241_002),
        (with("step_instance_id", Value::Null), 1_241_002),
        (with("operation_code", json!(5)), 1_241_002),
        (with("operation_code", Value::Null), 1_241_002),
        (with("job_instance_id", json!(id + 1_000)), 1_244_006),
        (with("step_instance_id", json!(step_id + 1)), 1_244_007),
        (with("operation_code", json!(6)), 1_241_003),
        // The job is still running its first batch.
        (base.clone(), 1_241_003),
    ];
    for (body, want) in cases {
        let r = sim.esb("jobv3/operate_step_instance", body.clone()).await;
        assert_eq!(code(&r), want, "{body} -> {r}");
    }
}

/// JOB's callback fires at each final status: when a failed batch pauses the job (4), and
/// again when the job, continued, ends (3). Real sockets: the receiver is on loopback.
#[tokio::test]
async fn callback_at_the_pause_and_again_at_the_end() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let receiver = axum::Router::new().route(
        "/cb",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(serde_json::from_str(&body).unwrap_or(Value::Null));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let cb_addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let dir = tempfile::tempdir().expect("tmp");
    for host in ["10.0.0.1/data", "10.0.1.1", "10.0.1.2", "10.0.1.3"] {
        std::fs::create_dir_all(dir.path().join("hosts/0").join(host)).expect("mkdir");
    }
    std::fs::write(dir.path().join("hosts/0/10.0.0.1/data/a.bin"), b"payload").expect("write");
    std::fs::write(
        dir.path().join("jobsim.toml"),
        "[sim]\nstart_delay_ms = 10\nhost_wait_ms = 10\n\n[[host]]\nhost = \"10.0.1.2\"\nflaky_jobs = 1\n",
    )
    .expect("write");
    let sim = plan_jobsim::JobSim::start(dir.path(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start");
    let client = reqwest::Client::new();
    let post = |api: &str, body: Value| {
        client
            .post(format!("{}/api/c/compapi/v2/jobv3/{api}/", sim.base_url()))
            .header("x-bkapi-authorization", crate::support::CREDS)
            .json(&body)
            .send()
    };
    let mut body = rolling_body(3, "1", 1);
    body["callback_url"] = json!(format!("http://{cb_addr}/cb"));
    let submitted: Value = post("fast_transfer_file", body)
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let (id, step_id) = (job_id(&submitted), step_id(&submitted));
    let next_callback = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>| {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a callback in time")
            .expect("receiver open")
    };

    let paused = next_callback(&mut rx).await;
    assert_eq!(
        paused,
        json!({"job_instance_id": id, "status": 4,
               "step_instances": [{"step_instance_id": step_id, "status": 4}]})
    );
    let retried: Value = post(
        "operate_step_instance",
        json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id,
               "step_instance_id": step_id, "operation_code": 2}),
    )
    .await
    .expect("send")
    .json()
    .await
    .expect("json");
    assert_eq!(code(&retried), 0, "{retried}");
    let done = next_callback(&mut rx).await;
    assert_eq!(done["status"], json!(3), "{done}");
    assert_eq!(done["step_instances"][0]["status"], json!(3));
    sim.shutdown().await;
}

/// Rolling over source files (`type` 2): each batch sends its share of the files to every
/// target; in manual mode nothing of the next batch moves until continued.
#[tokio::test(start_paused = true)]
async fn rolling_over_source_files_sends_one_share_per_batch() {
    let sim = fleet("", 2);
    sim.write("10.0.0.1", "/data/b.bin", b"b");
    sim.write("10.0.0.1", "/data/c.bin", b"c");
    let mut body = rolling_body(2, "1", 3);
    body["file_source_list"][0]["file_list"] = json!(["/data/a.bin", "/data/b.bin", "/data/c.bin"]);
    body["rolling_config"] = json!({"type": 2, "mode": 3,
        "file_source": {"max_execute_object_num_in_batch": 1, "max_file_num_of_single_execute_object": 1}});
    let submitted = sim.esb("jobv3/fast_transfer_file", body).await;
    assert_eq!(code(&submitted), 0, "{submitted}");
    let (id, step_id) = (job_id(&submitted), step_id(&submitted));
    let on_targets = |name: &str| {
        (1..=2).all(|h| {
            sim.read(&format!("10.0.1.{h}"), &format!("/tmp/out/{name}"))
                .is_some()
        })
    };
    let nowhere = |name: &str| {
        (1..=2).all(|h| {
            sim.read(&format!("10.0.1.{h}"), &format!("/tmp/out/{name}"))
                .is_none()
        })
    };

    wait_for(&sim, id, 7).await;
    assert!(on_targets("a.bin") && nowhere("b.bin") && nowhere("c.bin"));
    assert_eq!(code(&operate_step(&sim, id, step_id, 13).await), 0);
    wait_for(&sim, id, 7).await;
    assert!(on_targets("b.bin") && nowhere("c.bin"));
    assert_eq!(code(&operate_step(&sim, id, step_id, 13).await), 0);
    let done = sim.wait(id).await;
    assert_eq!(job_status(&done), 3);
    assert!(on_targets("c.bin"));
    assert!(host_statuses(&done).iter().all(|(_, st)| *st == 9));
}

/// A retry of a failed batch of source files runs its failed targets again and leaves the
/// others' success alone, then the batches go on to every target.
#[tokio::test(start_paused = true)]
async fn a_retry_of_a_batch_of_source_files_goes_on_to_the_next_batches() {
    let sim = fleet("[[host]]\nhost = \"10.0.1.2\"\nflaky_jobs = 1\n", 3);
    sim.write("10.0.0.1", "/data/b.bin", b"b");
    sim.write("10.0.0.1", "/data/c.bin", b"c");
    let mut body = rolling_body(3, "1", 1);
    body["file_source_list"][0]["file_list"] = json!(["/data/a.bin", "/data/b.bin", "/data/c.bin"]);
    body["rolling_config"] = json!({"type": 2, "mode": 1,
        "file_source": {"max_execute_object_num_in_batch": 1, "max_file_num_of_single_execute_object": 1}});
    let submitted = sim.esb("jobv3/fast_transfer_file", body).await;
    let (id, step_id) = (job_id(&submitted), step_id(&submitted));
    let paused = sim.wait(id).await;
    assert_eq!(job_status(&paused), 4);
    assert_eq!(host_statuses(&paused), vec![(1, 9), (2, 310), (3, 9)]);

    assert_eq!(code(&operate_step(&sim, id, step_id, 2).await), 0);
    let running = sim.v3_status(id).await;
    assert_eq!(host_statuses(&running), vec![(1, 9), (2, 5), (3, 9)]);
    let done = sim.wait(id).await;
    assert_eq!(job_status(&done), 3, "{done}");
    assert!(host_statuses(&done).iter().all(|(_, st)| *st == 9));
    for name in ["a.bin", "b.bin", "c.bin"] {
        assert!((1..=3).all(|h| {
            sim.read(&format!("10.0.1.{h}"), &format!("/tmp/out/{name}"))
                .is_some()
        }));
    }
}

#[tokio::test(start_paused = true)]
async fn rolling_over_source_files_is_validated_as_job_does() {
    let sim = fleet("", 2);
    let cases = [
        (
            json!({"type": 2}),
            1_240_003,
            "Rolling file source config cannot be null",
        ),
        (
            json!({"type": 2, "file_source": {"max_execute_object_num_in_batch": 0}}),
            1_240_003,
            "Max execute object num in batch must be positive integer or null",
        ),
        (
            json!({"type": 2, "file_source": {"max_file_num_of_single_execute_object": -1}}),
            1_240_003,
            "Max file num of execute object must be positive integer or null",
        ),
    ];
    for (config, want, message) in cases {
        let mut body = rolling_body(2, "1", 1);
        body["rolling_config"] = config.clone();
        let r = sim.esb("jobv3/fast_transfer_file", body).await;
        assert_eq!(
            (code(&r), r["message"].as_str()),
            (want, Some(message)),
            "{config}"
        );
    }
    // Only server files roll: JOB checks it as soon as file_source_list is found.
    let mut body = rolling_body(2, "1", 1);
    body["rolling_config"] = json!({"type": 2, "file_source": {}});
    body["file_source_list"][0]["file_type"] = json!(3);
    let r = sim.esb("jobv3/fast_transfer_file", body).await;
    assert_eq!(code(&r), 1_244_035, "{r}");
    assert_eq!(
        r["message"],
        json!("The file source rolling policy only support server file")
    );
}

/// `get_step_instance_status` answers per rolling batch: the latest by default, one by
/// number, every batch with 0; its answer decodes into plan-bkjob's type.
#[tokio::test(start_paused = true)]
async fn step_status_lists_one_batch_by_status() {
    let sim = fleet("[[host]]\nhost = \"10.0.1.3\"\nagent = \"down\"\n", 20);
    let submitted = sim
        .esb(
            "jobv3/fast_transfer_file",
            rolling_body(20, "1 30% 100%", 1),
        )
        .await;
    let (id, step_id) = (job_id(&submitted), step_id(&submitted));
    sim.wait(id).await;
    let query = |extra: Value| {
        let mut q = json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id,
                           "step_instance_id": step_id});
        for (k, v) in extra.as_object().expect("object") {
            q[k] = v.clone();
        }
        q
    };
    let groups = |reply: &Value| -> Vec<(i64, i64, usize)> {
        let data: plan_bkjob::step_status::StepInstanceStatusDetailV3 =
            serde_json::from_value(reply["data"].clone()).expect("plan-bkjob decodes it");
        data.step_result_group_list
            .iter()
            .map(|g| {
                (
                    i64::from(g.result_type.code()),
                    g.host_size.unwrap_or(-1),
                    g.host_result_list.len(),
                )
            })
            .collect()
    };
    // The latest batch: batch 2 (hosts 2-7), host 3's agent down.
    let latest = sim
        .esb("jobv3/get_step_instance_status", query(json!({})))
        .await;
    assert_eq!(groups(&latest), [(9, 5, 5), (310, 1, 1)], "{latest}");
    assert_eq!(latest["data"]["status"], json!(4));
    let third = sim
        .esb(
            "jobv3/get_step_instance_status",
            query(json!({"batch": 3, "max_host_num_per_group": 4})),
        )
        .await;
    assert_eq!(groups(&third), [(5, 13, 4)]);
    // Every batch, through the gateway's GET.
    let r = sim
        .call(
            Method::GET,
            &format!(
                "/api/bk-job/prod/api/v3/get_step_instance_status?bk_scope_type=biz&bk_scope_id=2&job_instance_id={id}&step_instance_id={step_id}&batch=0"
            ),
            &[("x-bkapi-authorization", crate::support::CREDS)],
            None,
        )
        .await;
    assert_eq!(
        groups(&r.body),
        [(5, 13, 13), (9, 6, 6), (310, 1, 1)],
        "{}",
        r.body
    );
    // JOB's checks: ids must be positive; a step not of the job is 1244007.
    let bad = sim
        .esb(
            "jobv3/get_step_instance_status",
            query(json!({"step_instance_id": 0})),
        )
        .await;
    assert_eq!(
        (code(&bad), bad["message"].clone()),
        (
            1_240_003,
            json!("Step instance id must be a positive number")
        )
    );
    let other = sim
        .esb(
            "jobv3/get_step_instance_status",
            query(json!({"step_instance_id": step_id + 2})),
        )
        .await;
    assert_eq!(code(&other), 1_244_007);
}

/// A simulator started again on its root (the job store) takes a paused rolling job on at the
/// batch it paused at: ignoring the error runs batch 3, not batch 2 again.
#[test]
fn a_paused_rolling_job_goes_on_at_its_batch_after_a_restart() {
    let toml = "[[host]]\nhost = \"10.0.1.3\"\nagent = \"down\"\n";
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("runtime")
    };
    let first = runtime();
    let (dir, id, step_id) = first.block_on(async {
        let sim = fleet(toml, 20);
        let submitted = sim
            .esb(
                "jobv3/fast_transfer_file",
                rolling_body(20, "1 30% 100%", 1),
            )
            .await;
        let (id, step_id) = (job_id(&submitted), step_id(&submitted));
        assert_eq!(job_status(&sim.wait(id).await), 4);
        // The store writes off the request path: wait (bounded) for the paused state.
        let stored = sim.dir.path().join(format!(".jobsim/jobs/{id}.state.json"));
        for _ in 0..1_000 {
            let text = std::fs::read_to_string(&stored).unwrap_or_default();
            if serde_json::from_str::<Value>(&text).is_ok_and(|s| s["status"] == json!(4)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            tokio::task::yield_now().await;
        }
        let crate::support::Sim { dir, state } = sim;
        drop(state);
        (dir, id, step_id)
    });
    first.shutdown_background();
    // Batch 2's delivery is gone: running batch 2 again would bring it back.
    std::fs::remove_file(dir.path().join("hosts/0/10.0.1.2/tmp/out/a.bin")).expect("rm");

    runtime().block_on(async {
        let config = plan_jobsim::Config::from_toml(toml).expect("config");
        let state = plan_jobsim::SimState::new(
            dir.path(),
            plan_jobsim::SimOptions {
                config: Some(config),
                ..plan_jobsim::SimOptions::default()
            },
        )
        .expect("state");
        let sim = crate::support::Sim { dir, state };
        assert_eq!(job_status(&sim.v3_status(id).await), 4);
        assert_eq!(code(&operate_step(&sim, id, step_id, 3).await), 0);
        let done = sim.wait(id).await;
        assert_eq!(job_status(&done), 3);
        assert!((8..=20).all(|h| delivered(&sim, h)));
        assert!(!delivered(&sim, 2), "batch 2 ran again");
    });
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime")
}

/// Waits (bounded) until the job store holds a state of job `id` that `reached` accepts:
/// the store writes off the request path.
async fn stored(sim: &Sim, id: u64, reached: impl Fn(&Value) -> bool) {
    let file = sim.dir.path().join(format!(".jobsim/jobs/{id}.state.json"));
    for _ in 0..1_000 {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if serde_json::from_str::<Value>(&text).is_ok_and(|s| reached(&s)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
        tokio::task::yield_now().await;
    }
    panic!("the job store never held the expected state of job {id}");
}

/// A simulator started again on `dir` (its job store) with the world `toml` describes.
fn restarted(dir: tempfile::TempDir, toml: &str) -> Sim {
    let config = plan_jobsim::Config::from_toml(toml).expect("config");
    let state = plan_jobsim::SimState::new(
        dir.path(),
        plan_jobsim::SimOptions {
            config: Some(config),
            ..plan_jobsim::SimOptions::default()
        },
    )
    .expect("state");
    Sim { dir, state }
}

/// A manual-mode job waiting for a user after batch 1 still waits after a restart, at batch
/// 1: nothing runs until `operate_step_instance` 13, which runs batch 2 (not batch 1 again),
/// and the job waits again after it.
#[test]
fn a_waiting_rolling_job_waits_at_its_batch_after_a_restart() {
    let first = paused_runtime();
    let (dir, id, step_id) = first.block_on(async {
        let sim = fleet("", 20);
        let submitted = sim
            .esb(
                "jobv3/fast_transfer_file",
                rolling_body(20, "1 30% 100%", 3),
            )
            .await;
        let (id, step_id) = (job_id(&submitted), step_id(&submitted));
        wait_for(&sim, id, 7).await;
        stored(&sim, id, |s| {
            s["status"] == json!(7) && s["rolling_batch"] == json!(1)
        })
        .await;
        let Sim { dir, state } = sim;
        drop(state);
        (dir, id, step_id)
    });
    first.shutdown_background();
    // Batch 1's delivery is gone: running batch 1 again would bring it back.
    std::fs::remove_file(dir.path().join("hosts/0/10.0.1.1/tmp/out/a.bin")).expect("rm");

    paused_runtime().block_on(async {
        let sim = restarted(dir, "");
        let waiting = sim.v3_status(id).await;
        assert_eq!(
            (job_status(&waiting), step(&waiting)["status"].clone()),
            (7, json!(7))
        );
        assert_eq!(
            host_statuses(&waiting)[0],
            (1, 9),
            "batch 1 keeps its result"
        );
        sleep(Duration::from_secs(3600)).await;
        assert_eq!(job_status(&sim.v3_status(id).await), 7);
        assert!(
            (1..=20).all(|h| !delivered(&sim, h)),
            "something ran while waiting"
        );

        assert_eq!(code(&operate_step(&sim, id, step_id, 13).await), 0);
        wait_for(&sim, id, 7).await;
        assert!((2..=7).all(|h| delivered(&sim, h)));
        assert!(!delivered(&sim, 1), "batch 1 ran again");
        assert!((8..=20).all(|h| !delivered(&sim, h)));

        assert_eq!(code(&operate_step(&sim, id, step_id, 13).await), 0);
        let done = sim.wait(id).await;
        assert_eq!(job_status(&done), 3);
        assert!((8..=20).all(|h| delivered(&sim, h)));
    });
}

/// A job stopped by the restart in the middle of batch 2 (a host of it never reported) runs
/// batch 2 again after it, then batch 3: batch 1 is not run again.
#[test]
fn a_rolling_job_cut_in_its_batch_runs_that_batch_again_after_a_restart() {
    let stuck = "[[host]]\nhost = \"10.0.1.5\"\nstuck = true\n";
    let first = paused_runtime();
    let (dir, id) = first.block_on(async {
        let sim = fleet(stuck, 20);
        let submitted = sim
            .esb(
                "jobv3/fast_transfer_file",
                rolling_body(20, "1 30% 100%", 1),
            )
            .await;
        let id = job_id(&submitted);
        // Batch 2 runs: its other hosts get the file, host 5 never reports.
        for _ in 0..10_000 {
            if delivered(&sim, 2) {
                break;
            }
            sleep(Duration::from_millis(100)).await;
        }
        assert!(delivered(&sim, 2) && !delivered(&sim, 8));
        stored(&sim, id, |s| {
            s["rolling_batch"] == json!(2) && s["step_status"] == json!(2)
        })
        .await;
        let Sim { dir, state } = sim;
        drop(state);
        (dir, id)
    });
    first.shutdown_background();
    std::fs::remove_file(dir.path().join("hosts/0/10.0.1.1/tmp/out/a.bin")).expect("rm");

    paused_runtime().block_on(async {
        // The host is healthy again: batch 2 can end.
        let sim = restarted(dir, "");
        let done = sim.wait(id).await;
        assert_eq!(job_status(&done), 3, "{done}");
        assert!((2..=20).all(|h| delivered(&sim, h)));
        assert!(!delivered(&sim, 1), "batch 1 ran again");
        assert!(host_statuses(&done).iter().all(|(_, st)| *st == 9));
    });
}
