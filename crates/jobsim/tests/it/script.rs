//! `fast_execute_script`: JOB's validation (v2 and v3), the status model of a script step,
//! the shell subset over the sandbox hosts (the checksum script `plan` sends, unsupported
//! commands, paths that lead out of a host), the `corrupt_deliveries` host fault, and
//! plan-bkjob's client against the simulator on loopback, for both families.

use std::time::Duration;

use axum::http::Method;
use base64::Engine as _;
use plan_bkjob::script::{FileFacts, checksum_script, parse_checksum_output};
use plan_bkjob::{
    ApiVersion, Client, ClientConfig, Credentials, Endpoint, HostStatus, IpHost, RetryPolicy,
    RunStatus, ScriptRequest, UserAuth,
};
use plan_jobsim::JobSim;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Sim, job_id};

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A valid v3 script job on 10.0.0.1 and 10.0.0.2.
fn v3_script(script: &str) -> Value {
    json!({
        "bk_scope_type": "biz", "bk_scope_id": "2", "account_alias": "root",
        "script_content": b64(script), "script_language": 1,
        "target_server": {"ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.1"},
                                      {"bk_cloud_id": 0, "ip": "10.0.0.2"}]},
    })
}

/// The same job in v2's names.
fn v2_script(script: &str) -> Value {
    json!({
        "bk_biz_id": 2, "account": "root", "script_content": b64(script), "script_type": 1,
        "ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.1"}, {"bk_cloud_id": 0, "ip": "10.0.0.2"}],
    })
}

fn code_of(reply: &Value) -> i64 {
    reply["code"].as_i64().unwrap_or(0)
}

fn hosts(status: &Value) -> &Vec<Value> {
    status["data"]["step_instance_list"][0]["step_ip_result_list"]
        .as_array()
        .expect("hosts")
}

/// Each target's output through `batch_get_job_instance_ip_log`, by IP.
async fn outputs(sim: &Sim, id: u64, step: u64) -> Vec<(String, String)> {
    let logs = sim
        .esb(
            "jobv3/batch_get_job_instance_ip_log",
            json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id,
                   "step_instance_id": step,
                   "ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.1"}, {"bk_cloud_id": 0, "ip": "10.0.0.2"}]}),
        )
        .await;
    assert_eq!(logs["data"]["log_type"], json!(1), "{logs}");
    assert_eq!(logs["data"]["file_task_logs"], Value::Null);
    logs["data"]["script_task_logs"]
        .as_array()
        .expect("script logs")
        .iter()
        .map(|l| {
            (
                l["ip"].as_str().unwrap_or_default().to_owned(),
                l["log_content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn v3_validation_follows_job() {
    let sim = Sim::with_config("[[business]]\nid = 2\n");
    let cases: Vec<(Value, i64, &str)> = vec![
        (
            json!({"script_content": null}),
            1_241_004,
            "script_version_id|script_id|script_content",
        ),
        (json!({"script_language": 9}), 1_241_005, "script_language"),
        (
            json!({"script_language": null}),
            1_241_005,
            "script_language",
        ),
        (
            json!({"script_content": "%%% not base64"}),
            1_241_005,
            "script_content",
        ),
        (
            json!({"script_version_id": 0}),
            1_241_005,
            "script_version_id",
        ),
        (json!({"target_server": {}}), 1_241_004, "target_server"),
        (
            json!({"account_alias": " "}),
            1_241_004,
            "account_id|account_alias",
        ),
        (json!({"timeout": 0}), 1_240_003, "timeout"),
        (json!({"timeout": 999_999_999}), 1_240_003, "timeout"),
        (json!({"timeout": "soon"}), 1_240_003, "Bad Request"),
        (json!({"bk_scope_id": "77"}), 1_243_049, "not exist"),
        (
            json!({"target_server": {"ip_list": [{"bk_cloud_id": 0, "ip": "10.9.9.9"}]}}),
            1_244_030,
            "10.9.9.9",
        ),
    ];
    for (patch, code, says) in cases {
        let mut body = v3_script("echo hi\n");
        for (k, v) in patch.as_object().expect("patch") {
            body[k] = v.clone();
        }
        let r = sim.esb("jobv3/fast_execute_script", body).await;
        assert_eq!(code_of(&r), code, "{patch}: {r}");
        assert!(
            r["message"].as_str().unwrap_or_default().contains(says),
            "{patch}: {r}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn v2_validation_follows_job() {
    let sim = Sim::new();
    let cases: Vec<(Value, i64, &str)> = vec![
        (json!({"script_type": 0}), 1_241_005, "script_type"),
        (json!({"script_content": ""}), 1_241_005, "script_content"),
        (
            json!({"ip_list": []}),
            1_241_007,
            "ip_list|custom_query_id|target_server",
        ),
        (json!({"account": ""}), 1_241_004, "account"),
        (json!({"script_timeout": 0}), 1_240_003, "timeout"),
        (json!({"script_id": 0}), 1_241_005, "script_id"),
    ];
    for (patch, code, says) in cases {
        let mut body = v2_script("echo hi\n");
        for (k, v) in patch.as_object().expect("patch") {
            body[k] = v.clone();
        }
        let r = sim.esb("job/fast_execute_script", body).await;
        assert_eq!(code_of(&r), code, "{patch}: {r}");
        assert!(
            r["message"].as_str().unwrap_or_default().contains(says),
            "{patch}: {r}"
        );
    }
    // A valid v2 submission names its step, and the v2 status calls it a script step.
    let r = sim
        .esb("job/fast_execute_script", v2_script("echo hi\n"))
        .await;
    assert!(r["data"]["step_instance_id"].as_u64().is_some(), "{r}");
    let done = sim.wait(job_id(&r)).await;
    let v2 = sim.v2_status(job_id(&r)).await;
    assert_eq!(
        v2["data"]["blocks"][0]["step_instances"][0]["type"],
        json!(1)
    );
    assert_eq!(done["data"]["job_instance"]["status"], json!(3), "{done}");
}

#[tokio::test(start_paused = true)]
async fn the_checksum_script_reads_each_host() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/app/a.tgz", b"first host");
    sim.write("10.0.0.2", "/data/app/a.tgz", b"second host, other bytes");
    sim.write("10.0.0.1", "/data/app/it's here", b"");
    let paths = ["/data/app/a.tgz", "/data/app/it's here"];
    let script = checksum_script(&paths).expect("script");
    let r = sim
        .esb("jobv3/fast_execute_script", v3_script(&script))
        .await;
    let (id, step) = (
        job_id(&r),
        r["data"]["step_instance_id"].as_u64().expect("step"),
    );
    let done = sim.wait(id).await;
    assert_eq!(done["data"]["job_instance"]["status"], json!(3), "{done}");
    assert_eq!(done["data"]["step_instance_list"][0]["type"], json!(1));
    for host in hosts(&done) {
        assert_eq!(host["status"], json!(9), "{host}");
        assert_eq!(host["exit_code"], json!(0), "{host}");
    }
    let outputs = outputs(&sim, id, step).await;
    assert_eq!(outputs.len(), 2);
    for (ip, output) in outputs {
        let facts = parse_checksum_output(&output).expect("checksum output");
        let want = |bytes: &[u8]| FileFacts {
            size: Some(bytes.len() as u64),
            sha256: Some(sha256(bytes)),
        };
        match ip.as_str() {
            "10.0.0.1" => {
                assert_eq!(facts["/data/app/a.tgz"], want(b"first host"));
                assert_eq!(facts["/data/app/it's here"], want(b""));
            }
            "10.0.0.2" => {
                assert_eq!(facts["/data/app/a.tgz"], want(b"second host, other bytes"));
                assert!(!facts.contains_key("/data/app/it's here"), "{output}");
            }
            other => panic!("unexpected host {other}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_unsupported_command_fails_the_host() {
    let sim = Sim::with_config("[[host]]\nhost = \"10.0.0.2\"\nagent = \"down\"\n");
    let r = sim
        .gw(
            Method::POST,
            "fast_execute_script",
            Some(v3_script("echo start\nrm -rf /data\n")),
        )
        .await;
    let id = job_id(&r.body);
    let done = sim.wait(id).await;
    assert_eq!(done["data"]["job_instance"]["status"], json!(4), "{done}");
    let hosts = hosts(&done);
    assert_eq!(hosts[0]["status"], json!(104), "{done}");
    assert_eq!(hosts[0]["exit_code"], json!(127));
    // The host whose agent is down never ran it.
    assert_eq!(hosts[1]["status"], json!(310), "{done}");
    assert_eq!(hosts[1]["exit_code"], Value::Null);
    let one = sim
        .gw(
            Method::GET,
            &format!(
                "get_job_instance_ip_log?bk_scope_type=biz&bk_scope_id=2&job_instance_id={id}\
                 &step_instance_id={}&bk_cloud_id=0&ip=10.0.0.1",
                id + 1
            ),
            None,
        )
        .await;
    let log = one.body["data"]["log_content"].as_str().expect("log");
    assert_eq!(
        log, "start\njobsim: unsupported command 'rm'\n",
        "{}",
        one.body
    );
    assert_eq!(one.body["data"]["log_type"], json!(1));
    // plan-bkjob's types read the answers as they are.
    let typed: plan_bkjob::IpLogV3 =
        serde_json::from_value(one.body["data"].clone()).expect("IpLogV3");
    assert_eq!(typed.log_type, Some(plan_bkjob::log_type::SCRIPT));
    assert!(typed.file_logs.is_empty());
    // The v2 log groups the hosts by status, with their exit codes.
    let v2 = sim
        .esb(
            "job/get_job_instance_log",
            json!({"bk_biz_id": 2, "job_instance_id": id}),
        )
        .await;
    let typed: Vec<plan_bkjob::StepInstanceLogV2> =
        serde_json::from_value(v2["data"].clone()).expect("StepInstanceLogV2");
    assert_eq!(typed[0].step_results.len(), 2);
    let groups = v2["data"][0]["step_results"].as_array().expect("groups");
    let failed = groups
        .iter()
        .find(|g| g["ip_status"] == json!(104))
        .expect("104");
    assert_eq!(failed["ip_logs"][0]["exit_code"], json!(127));
    assert!(
        failed["ip_logs"][0]["log_content"]
            .as_str()
            .is_some_and(|l| l.contains("unsupported command &#x27;rm&#x27;")
                || l.contains("unsupported command 'rm'")),
        "{v2}"
    );
}

#[cfg(unix)]
#[tokio::test(start_paused = true)]
async fn a_path_outside_the_host_is_refused() {
    let sim = Sim::new();
    std::fs::write(sim.dir.path().join("secret"), b"not a host's").expect("write");
    std::fs::create_dir_all(sim.host_path("10.0.0.1", "/data")).expect("mkdir");
    std::os::unix::fs::symlink(
        sim.dir.path().join("secret"),
        sim.host_path("10.0.0.1", "/data/link"),
    )
    .expect("symlink");
    std::fs::create_dir_all(sim.host_path("10.0.0.2", "/")).expect("mkdir");
    let script = "sha256sum /data/link\nsha256sum /../../../secret\n";
    let r = sim
        .esb("jobv3/fast_execute_script", v3_script(script))
        .await;
    let (id, step) = (job_id(&r), job_id(&r) + 1);
    sim.wait(id).await;
    let secret_digest = sha256(b"not a host's");
    for (ip, output) in outputs(&sim, id, step).await {
        assert!(!output.contains(&secret_digest), "{ip}: {output}");
        if ip == "10.0.0.1" {
            assert!(
                output.contains("/data/link: path leads outside the host"),
                "{output}"
            );
        }
        assert!(
            output.contains("/../../../secret: No such file or directory"),
            "{ip}: {output}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_corrupted_delivery_keeps_its_size_and_loses_its_digest() {
    let sim = Sim::with_config("[[host]]\nhost = \"10.0.0.3\"\ncorrupt_deliveries = true\n");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    sim.write("10.0.0.1", "/data/a.bin", &data);
    let mut body = crate::support::v3_body();
    body["target_server"]["ip_list"] = json!([{"bk_cloud_id": 0, "ip": "10.0.0.2"},
                                              {"bk_cloud_id": 0, "ip": "10.0.0.3"}]);
    let r = sim.esb("jobv3/fast_transfer_file", body).await;
    let done = sim.wait(job_id(&r)).await;
    // JOB reports success on both.
    assert_eq!(done["data"]["job_instance"]["status"], json!(3), "{done}");
    let good = sim.read("10.0.0.2", "/tmp/out/a.bin").expect("delivered");
    let bad = sim.read("10.0.0.3", "/tmp/out/a.bin").expect("delivered");
    assert_eq!(good, data);
    assert_eq!(bad.len(), data.len());
    assert_ne!(sha256(&bad), sha256(&data));
    assert_eq!(bad.iter().zip(&data).filter(|(a, b)| a != b).count(), 1);
    // A delivered directory: each of its files altered the same way.
    sim.write("10.0.0.1", "/srv/conf/a.toml", b"abc");
    sim.write("10.0.0.1", "/srv/conf/sub/b.toml", b"de");
    let mut body = crate::support::v3_body();
    body["file_source_list"][0]["file_list"] = json!(["/srv/conf/"]);
    body["target_server"]["ip_list"] = json!([{"bk_cloud_id": 0, "ip": "10.0.0.3"}]);
    let r = sim.esb("jobv3/fast_transfer_file", body).await;
    let done = sim.wait(job_id(&r)).await;
    assert_eq!(done["data"]["job_instance"]["status"], json!(3), "{done}");
    assert_eq!(
        sim.read("10.0.0.3", "/tmp/out/conf/a.toml"),
        Some(vec![b'a', !b'b', b'c'])
    );
    assert_eq!(
        sim.read("10.0.0.3", "/tmp/out/conf/sub/b.toml"),
        Some(vec![b'd', !b'e'])
    );
}

fn client(base: &str) -> Client {
    Client::new(
        Endpoint::parse(base, false).expect("endpoint"),
        Credentials::new("app", "secret", UserAuth::Username("admin".into())),
        ClientConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        },
    )
    .expect("client")
}

/// The client runs the checksum script through the simulator on loopback, over v2 (ESB),
/// v3 (ESB) and v3 (the gateway), and reads every host's exit code and output back.
#[tokio::test]
async fn the_client_runs_a_script_on_both_families() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (ip, bytes) in [("10.0.0.1", &b"one"[..]), ("10.0.0.2", &b"two!"[..])] {
        let file = dir.path().join("hosts/0").join(ip).join("data/f");
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(file, bytes).expect("write");
    }
    std::fs::write(
        dir.path().join("jobsim.toml"),
        "[sim]\nstart_delay_ms = 10\nhost_wait_ms = 10\n",
    )
    .expect("config");
    let sim = JobSim::start(dir.path(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("jobsim");
    let script = checksum_script(&["/data/f"]).expect("script");
    let hosts = [IpHost::new(0, "10.0.0.1"), IpHost::new(0, "10.0.0.2")];
    let gateway = format!("{}/api/bk-job/prod", sim.base_url());
    for (api, base) in [
        (ApiVersion::V2, sim.base_url()),
        (ApiVersion::V3, sim.base_url()),
        (ApiVersion::V3, gateway),
    ] {
        let client = client(&base);
        let request = ScriptRequest {
            api,
            bk_biz_id: 2,
            task_name: "plan-verify",
            script: &script,
            account: "root",
            timeout_s: Some(60),
            hosts: &hosts,
        };
        let job = client.execute_script(&request).await.expect("submitted");
        let mut snapshot = client.job_status(&job).await.expect("status");
        for _ in 0..500 {
            if snapshot.finished {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            snapshot = client.job_status(&job).await.expect("status");
        }
        assert_eq!(snapshot.status, RunStatus::Success, "{api}: {snapshot:?}");
        // The neutral log call a failure report uses reads a script step's output too.
        let logs = client.host_logs(&job, &snapshot.hosts).await.expect("logs");
        assert_eq!(logs.len(), 2, "{api}: {logs:?}");
        assert!(
            logs.values()
                .all(|l| l.content.contains(plan_bkjob::script::CHECKSUM_HEADER)),
            "{api}: {logs:?}"
        );
        let mut results = client.script_results(&job).await.expect("results");
        results.sort_by(|a, b| a.host.ip.cmp(&b.host.ip));
        assert_eq!(results.len(), 2, "{api}: {results:?}");
        for (result, bytes) in results.iter().zip([&b"one"[..], &b"two!"[..]]) {
            assert_eq!(result.status, HostStatus::Success, "{api}");
            assert_eq!(result.exit_code, Some(0), "{api}");
            let facts = result.checksum_facts().expect("ours");
            assert_eq!(
                facts["/data/f"].sha256.as_deref(),
                Some(sha256(bytes).as_str()),
                "{api}"
            );
        }
    }
    sim.shutdown().await;
}

/// A host GSE never reports on (`stuck`) is still running at the job's timeout: it ends 102
/// with no exit code, while the other host's result stands.
#[tokio::test(start_paused = true)]
async fn a_host_still_running_at_the_timeout_ends_102() {
    let sim = Sim::with_config("[[host]]\nhost = \"10.0.0.2\"\nstuck = true\n");
    let mut body = v3_script("echo hi\n");
    body["timeout"] = json!(5);
    let id = job_id(&sim.esb("jobv3/fast_execute_script", body).await);
    let done = sim.wait(id).await;
    assert_eq!(done["data"]["job_instance"]["status"], json!(4), "{done}");
    let hosts = hosts(&done);
    assert_eq!(hosts[0]["status"], json!(9));
    assert_eq!(hosts[1]["status"], json!(102), "{done}");
    assert_eq!(hosts[1]["error_code"], json!(120));
    assert_eq!(hosts[1]["exit_code"], Value::Null);
}

/// A terminate of a running script job: job 10, then 11 with the hosts still running 403.
#[tokio::test(start_paused = true)]
async fn a_terminated_script_job_ends_403() {
    let sim = Sim::with_config("[[host]]\nhost = \"10.0.0.1\"\nstuck = true\n");
    let mut body = v3_script("echo hi\n");
    body["target_server"] = json!({"ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.1"}]});
    let id = job_id(&sim.esb("jobv3/fast_execute_script", body).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let running = sim.v3_status(id).await;
    assert_eq!(hosts(&running)[0]["status"], json!(7), "{running}");
    let r = sim
        .esb(
            "jobv3/operate_job_instance",
            json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id, "operation_code": 1}),
        )
        .await;
    assert_eq!(code_of(&r), 0, "{r}");
    let done = sim.wait(id).await;
    assert_eq!(done["data"]["job_instance"]["status"], json!(11), "{done}");
    assert_eq!(hosts(&done)[0]["status"], json!(403));
}
