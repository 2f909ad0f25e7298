//! Real fleets (issue 15): IPv6 hosts, JOB's task-name column, the `bkBizIdCompatible`
//! switch, third-party file sources and the CMDB APIs a review resolves hosts with.

use serde_json::{Value, json};

use crate::support::{Sim, job_id, v2_body, v3_body};

/// A sandbox with an IPv6-only host `0:fd00::1` (host id 1005: it sorts after 0:10.0.0.1..4).
fn sim_with_ipv6(toml: &str) -> Sim {
    let sim = Sim::with_config(toml);
    std::fs::create_dir_all(sim.dir.path().join("hosts/0/fd00::1")).expect("mkdir");
    sim
}

#[tokio::test]
async fn an_ipv6_address_in_a_v2_ip_list_names_no_host() {
    let sim = sim_with_ipv6("");
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let mut body = v2_body();
    body["ip_list"] = json!([{"bk_cloud_id": 0, "ip": "fd00::1"}]);
    let r = sim.esb("job/fast_push_file", body).await;
    assert_eq!(r["code"], json!(1_244_030), "{r}");
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("execution object list: [(ip:0:fd00::1)]")),
        "{r}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_ipv6_only_host_is_named_by_id_with_an_empty_ip() {
    let sim = sim_with_ipv6("");
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let mut body = v3_body();
    body["target_server"] = json!({"host_id_list": [1005]});
    let id = job_id(&sim.esb("jobv3/fast_transfer_file", body).await);
    let done = sim.wait(id).await;
    let host = &done["data"]["step_instance_list"][0]["step_ip_result_list"][0];
    assert_eq!(host["bk_host_id"], json!(1005), "{done}");
    assert_eq!(host["ip"], json!(""));
    assert_eq!(host["ipv6"], json!("fd00::1"));
    assert_eq!(host["status"], json!(9));
    // Its log is asked for by host id; a blank IP is refused (the whole batch with it).
    let ask = |hosts: Value| {
        let mut body = json!({"bk_scope_type": "biz", "bk_scope_id": "2",
            "job_instance_id": id, "step_instance_id": done["data"]["step_instance_list"][0]["step_instance_id"]});
        body.as_object_mut()
            .expect("object")
            .extend(hosts.as_object().expect("object").clone());
        body
    };
    let by_id = sim
        .esb(
            "jobv3/batch_get_job_instance_ip_log",
            ask(json!({"host_id_list": [1005]})),
        )
        .await;
    assert_eq!(
        by_id["data"]["file_task_logs"][0]["bk_host_id"],
        json!(1005),
        "{by_id}"
    );
    let blank = sim
        .esb(
            "jobv3/batch_get_job_instance_ip_log",
            ask(json!({"ip_list": [{"bk_cloud_id": 0, "ip": ""}]})),
        )
        .await;
    assert_eq!(blank["code"], json!(1_240_003), "{blank}");
}

#[tokio::test]
async fn a_task_name_longer_than_jobs_column_fails_as_an_internal_error() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    for (api, body) in [
        ("job/fast_push_file", v2_body()),
        ("jobv3/fast_transfer_file", v3_body()),
    ] {
        let mut fits = body.clone();
        fits["task_name"] = json!("é".repeat(512));
        assert_eq!(sim.esb(api, fits).await["code"], json!(0), "{api}: 512 fit");
        let mut long = body;
        long["task_name"] = json!("x".repeat(513));
        let r = sim.esb(api, long).await;
        assert_eq!(
            (&r["code"], &r["message"]),
            (&json!(1_240_002), &json!("Internal Server Error")),
            "{api}"
        );
    }
}

#[tokio::test]
async fn without_biz_id_compatibility_only_scope_fields_name_a_scope() {
    let sim = Sim::with_config("[sim]\nbk_biz_id_compatible = false\n");
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let bare = sim.esb("job/fast_push_file", v2_body()).await;
    assert_eq!(
        (&bare["code"], &bare["message"]),
        (&json!(1_240_003), &json!("Invalid bk_scope_type"))
    );
    let mut scoped = v2_body();
    scoped["bk_scope_type"] = json!("biz");
    scoped["bk_scope_id"] = json!("2");
    assert_eq!(
        sim.esb("job/fast_push_file", scoped).await["code"],
        json!(0)
    );
    let mut v3 = v3_body();
    v3.as_object_mut().expect("object").remove("bk_scope_type");
    v3.as_object_mut().expect("object").remove("bk_scope_id");
    v3["bk_biz_id"] = json!(2);
    let r: Value = sim.esb("jobv3/fast_transfer_file", v3).await;
    assert_eq!(r["code"], json!(1_240_003));
}
