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

/// A world whose business 2 has a dynamic group and topology nodes, with an IPv6-only host.
const CMDB_WORLD: &str = r#"
[[business]]
id = 2
name = "web"
dynamic_groups = { g-web = ["0:10.0.0.2", "0:10.0.0.1", "0:[fd00::1]", "0:10.0.0.99"] }
topo_nodes = [
  { node_type = "module", id = 10, hosts = ["0:10.0.0.3"] },
  { node_type = "set", id = 5, hosts = ["0:10.0.0.3", "0:10.0.0.4"] },
]
"#;

async fn cmdb(sim: &Sim, api: &str, body: Value) -> Value {
    let r = sim
        .call(
            axum::http::Method::POST,
            &format!("/api/c/compapi/v2/cc/{api}/"),
            &[("x-bkapi-authorization", crate::support::CREDS)],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, axum::http::StatusCode::OK, "{}", r.body);
    r.body
}

fn host_ids(answer: &Value) -> Vec<i64> {
    answer["data"]["info"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .filter_map(|h| h["bk_host_id"].as_i64())
        .collect()
}

#[tokio::test]
async fn cmdb_lists_a_dynamic_groups_hosts_as_the_world_has_them() {
    let sim = sim_with_ipv6(CMDB_WORLD);
    let page = json!({"start": 0, "limit": 200});
    let r = cmdb(
        &sim,
        "execute_dynamic_group",
        json!({"bk_biz_id": 2, "id": "g-web", "fields": ["bk_host_id", "bk_host_innerip", "bk_host_innerip_v6"], "page": page}),
    )
    .await;
    // 10.0.0.99 has no host directory: CMDB has no such host.
    assert_eq!(r["data"]["count"], json!(3), "{r}");
    assert_eq!(host_ids(&r), [1001, 1002, 1005]);
    assert_eq!(
        r["data"]["info"][2],
        json!({"bk_host_id": 1005, "bk_host_innerip": "", "bk_host_innerip_v6": "fd00::1"})
    );
    assert_eq!(r["message"], json!("success"));
    assert!(r["request_id"].is_string() && r.get("permission").is_some());
    // Paging: CMDB's count is the whole group, `info` this page.
    let second = cmdb(
        &sim,
        "execute_dynamic_group",
        json!({"bk_biz_id": 2, "id": "g-web", "page": {"start": 2, "limit": 2}}),
    )
    .await;
    assert_eq!(
        (second["data"]["count"].clone(), host_ids(&second)),
        (json!(3), vec![1005])
    );
}

#[tokio::test]
async fn cmdb_lists_topology_nodes_and_the_whole_business() {
    let sim = sim_with_ipv6(CMDB_WORLD);
    let page = json!({"start": 0, "limit": 500});
    let node = |obj: &str, id: i64| json!({"bk_biz_id": 2, "bk_obj_id": obj, "bk_inst_id": id, "fields": ["bk_host_id"], "page": page});
    assert_eq!(
        host_ids(&cmdb(&sim, "find_host_by_topo", node("module", 10)).await),
        [1003]
    );
    assert_eq!(
        host_ids(&cmdb(&sim, "find_host_by_topo", node("set", 5)).await),
        [1003, 1004]
    );
    assert_eq!(
        host_ids(&cmdb(&sim, "find_host_by_topo", node("module", 11)).await),
        Vec::<i64>::new()
    );
    let biz = cmdb(
        &sim,
        "list_biz_hosts",
        json!({"bk_biz_id": 2, "page": page}),
    )
    .await;
    assert_eq!(host_ids(&biz), [1001, 1002, 1003, 1004, 1005]);
    // The same through the CMDB gateway, the business in the path.
    let r = sim
        .call(
            axum::http::Method::POST,
            "/api/bk-cmdb/prod/api/v3/findmany/hosts/by_topo/biz/2",
            &[("x-bkapi-authorization", crate::support::CREDS)],
            Some(&json!({"bk_obj_id": "set", "bk_inst_id": 5, "page": page})),
        )
        .await;
    assert!(r.headers.contains_key("x-bkapi-request-id"));
    assert_eq!(host_ids(&r.body), [1003, 1004]);
}

#[tokio::test]
async fn cmdb_refuses_as_cmdb_does() {
    let sim = sim_with_ipv6(CMDB_WORLD);
    let page = json!({"start": 0, "limit": 10});
    let cases = [
        (
            "execute_dynamic_group",
            json!({"bk_biz_id": 2, "id": "nope", "page": page}),
            1_199_019,
        ),
        (
            "execute_dynamic_group",
            json!({"bk_biz_id": 3, "id": "g-web", "page": page}),
            1_199_019,
        ),
        (
            "execute_dynamic_group",
            json!({"bk_biz_id": 2, "page": page}),
            1_199_001,
        ),
        (
            "execute_dynamic_group",
            json!({"bk_biz_id": 2, "id": "g-web"}),
            1_199_001,
        ),
        (
            "execute_dynamic_group",
            json!({"bk_biz_id": 2, "id": "g-web", "page": {"start": 0, "limit": 201}}),
            1_199_077,
        ),
        (
            "find_host_by_topo",
            json!({"bk_biz_id": 2, "bk_obj_id": "biz", "bk_inst_id": 2, "page": page}),
            1_199_006,
        ),
        (
            "find_host_by_topo",
            json!({"bk_biz_id": 2, "bk_obj_id": "set", "page": page}),
            1_199_001,
        ),
        (
            "list_biz_hosts",
            json!({"bk_biz_id": "x", "page": page}),
            1_199_006,
        ),
    ];
    for (api, body, code) in cases {
        let r = cmdb(&sim, api, body.clone()).await;
        assert_eq!(
            (&r["code"], &r["result"], &r["data"]),
            (&json!(code), &json!(false), &Value::Null),
            "{api} {body}: {r}"
        );
    }
}

const FILE_SOURCE_WORLD: &str = r#"
[[business]]
id = 2

[[business]]
id = 3

[[file_source]]
id = 7
code = "bkrepo-main"
business = 2

[[file_source]]
id = 8
code = "cos-other"
business = 3
"#;

fn file_source_body(source: Value) -> Value {
    let mut body = v3_body();
    body["file_source_list"] = json!([source]);
    body
}

#[tokio::test(start_paused = true)]
async fn a_third_party_file_source_delivers_its_files_renamed() {
    let sim = Sim::with_config(FILE_SOURCE_WORLD);
    let stored = sim
        .dir
        .path()
        .join("file_sources/bkrepo-main/releases/app-1.2.tgz");
    std::fs::create_dir_all(stored.parent().expect("parent")).expect("mkdir");
    std::fs::write(&stored, b"artifact").expect("write");
    for (n, source) in [
        json!({"file_type": 3, "file_source_code": "bkrepo-main", "file_list": ["releases/app-1.2.tgz"]}),
        json!({"file_type": 3, "file_source_id": 7, "file_list": ["/releases/app-1.2.tgz"]}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = file_source_body(source);
        body["file_target_name"] = json!(format!("app-{n}.tgz"));
        let id = job_id(&sim.esb("jobv3/fast_transfer_file", body).await);
        let done = sim.wait(id).await;
        assert_eq!(done["data"]["job_instance"]["status"], json!(3), "{done}");
        assert_eq!(
            sim.read("10.0.0.2", &format!("/tmp/out/app-{n}.tgz")).as_deref(),
            Some(&b"artifact"[..])
        );
        // The file worker's upload log starts with the pull from the file source (status 0).
        let step = &done["data"]["step_instance_list"][0]["step_instance_id"];
        let log = sim
            .esb(
                "jobv3/get_job_instance_ip_log",
                json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id,
                    "step_instance_id": step, "bk_cloud_id": 0, "ip": "10.0.0.2"}),
            )
            .await;
        let upload = log["data"]["file_logs"]
            .as_array()
            .and_then(|logs| logs.iter().find(|l| l["mode"] == 0))
            .unwrap_or_else(|| panic!("{log}"));
        assert_eq!(upload["src_ip"]["ip"], json!("127.0.0.1"), "{upload}");
        let first = upload["log_content"].as_str().and_then(|c| c.lines().next());
        assert!(
            first.is_some_and(|l| l.contains("Status: 0") && l.contains("Pulled from file source bkrepo-main")),
            "{upload}"
        );
    }
}

#[tokio::test]
async fn file_sources_are_validated_as_job_does() {
    let sim = Sim::with_config(FILE_SOURCE_WORLD);
    let source = |extra: Value| {
        let mut s = json!({"file_type": 3, "file_list": ["releases/app.tgz"]});
        s.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        file_source_body(s)
    };
    let cases = [
        (
            source(json!({})),
            1_241_004,
            "Missing request parameter [file_source.file_source_id/file_source.file_source_code]",
        ),
        (
            source(json!({"file_source_code": "nope"})),
            1_240_002,
            "Internal Server Error",
        ),
        (
            source(json!({"file_source_code": "cos-other"})),
            1_240_002,
            "Internal Server Error",
        ),
        (
            source(json!({"file_source_id": 8})),
            1_260_017,
            "FileSource[id=8] does not belong to specified business",
        ),
        (
            source(json!({"file_type": 2, "file_source_id": 7})),
            1_241_005,
            "Invalid request parameter [file_source.file_type]",
        ),
    ];
    for (body, code, message) in cases {
        let r = sim.esb("jobv3/fast_transfer_file", body.clone()).await;
        assert_eq!(
            (&r["code"], &r["message"]),
            (&json!(code), &json!(message)),
            "{body}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_file_missing_from_the_source_fails_the_targets() {
    let sim = Sim::with_config(FILE_SOURCE_WORLD);
    std::fs::create_dir_all(sim.dir.path().join("file_sources/bkrepo-main")).expect("mkdir");
    let body = file_source_body(
        json!({"file_type": 3, "file_source_id": 7, "file_list": ["releases/missing.tgz"]}),
    );
    let id = job_id(&sim.esb("jobv3/fast_transfer_file", body).await);
    let done = sim.wait(id).await;
    assert_eq!(done["data"]["job_instance"]["status"], json!(4), "{done}");
    let host = &done["data"]["step_instance_list"][0]["step_ip_result_list"][0];
    assert_eq!(host["status"], json!(320), "{done}");
}

#[test]
fn a_file_source_code_is_one_plain_name() {
    let error = plan_jobsim::Config::from_toml(
        "[[file_source]]\nid = 1\ncode = \"../escape\"\nbusiness = 2\n",
    )
    .expect_err("refused");
    assert!(error.to_string().contains("one plain name"), "{error}");
}
