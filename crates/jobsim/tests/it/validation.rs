//! Every submission and query validation path, with JOB's exact code and message, in
//! JOB's order (bk-job-api.md §2.2, §3.3, §7, §8).

use axum::http::Method;
use serde_json::{Value, json};

use crate::support::{Sim, v2_body, v3_body};

fn set(mut v: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    let target = if parent.is_empty() {
        &mut v
    } else {
        v.pointer_mut(parent).expect("parent exists")
    };
    match target {
        Value::Object(m) => {
            if value.is_null() {
                m.remove(key);
            } else {
                m.insert(key.to_string(), value);
            }
        }
        Value::Array(a) => a[key.parse::<usize>().expect("index")] = value,
        _ => panic!("cannot set {pointer}"),
    }
    v
}

type Case = (&'static str, Value, i64, &'static str);

async fn check(sim: &Sim, api: &str, cases: Vec<Case>) {
    for (name, body, code, message) in cases {
        let r = sim.esb(api, body).await;
        assert_eq!(r["code"], json!(code), "case `{name}`: {r}");
        assert_eq!(r["result"], json!(code == 0), "case `{name}`");
        if code != 0 {
            assert_eq!(r["message"], json!(message), "case `{name}`");
            assert_eq!(r["data"], Value::Null, "case `{name}`");
        }
    }
}

const CALLBACK_MSG: &str = "Callback url is invalid or not in the allowed list, please contact the platform administrator to add it";

#[tokio::test]
async fn v2_fast_push_file_validation_order() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let b = v2_body;
    let cases: Vec<Case> = vec![
        ("valid", b(), 0, ""),
        (
            "unknown fields are ignored",
            set(b(), "/no_such_field", json!({"x": 1})),
            0,
            "",
        ),
        (
            "strings coerce to numbers",
            set(set(b(), "/bk_biz_id", json!("2")), "/timeout", json!("60")),
            0,
            "",
        ),
        (
            "no scope at all",
            set(b(), "/bk_biz_id", Value::Null),
            1_240_003,
            "Invalid bk_scope_type",
        ),
        (
            "bk_biz_id 0",
            set(b(), "/bk_biz_id", json!(0)),
            1_240_003,
            "Invalid bk_biz_id",
        ),
        (
            "bk_biz_id not a number",
            set(b(), "/bk_biz_id", json!("abc")),
            1_240_003,
            "Bad Request",
        ),
        (
            "bad scope type",
            set(b(), "/bk_scope_type", json!("org")),
            1_240_003,
            "Invalid bk_scope_type",
        ),
        (
            "blank scope id",
            set(b(), "/bk_scope_type", json!("biz")),
            1_240_003,
            "Invalid bk_scope_id",
        ),
        (
            "timeout 0",
            set(b(), "/timeout", json!(0)),
            1_240_003,
            "Job timeout must be between 1 and 259200",
        ),
        (
            "timeout too big",
            set(b(), "/timeout", json!(259_201)),
            1_240_003,
            "Job timeout must be between 1 and 259200",
        ),
        (
            "callback scheme",
            set(b(), "/bk_callback_url", json!("ftp://h/x")),
            1_240_003,
            CALLBACK_MSG,
        ),
        (
            "callback userinfo",
            set(b(), "/bk_callback_url", json!("http://u:p@h/x")),
            1_240_003,
            CALLBACK_MSG,
        ),
        (
            "blank callback is none",
            set(b(), "/bk_callback_url", json!("")),
            0,
            "",
        ),
        (
            "relative target",
            set(b(), "/file_target_path", json!("tmp/out")),
            1_241_007,
            "Missing or invalid request parameter [file_target_path]",
        ),
        (
            "v2 does not trim the target",
            set(b(), "/file_target_path", json!(" /tmp/out")),
            1_241_007,
            "Missing or invalid request parameter [file_target_path]",
        ),
        (
            "path before account",
            set(
                set(b(), "/file_target_path", json!("x")),
                "/account",
                json!(""),
            ),
            1_241_007,
            "Missing or invalid request parameter [file_target_path]",
        ),
        (
            "blank account",
            set(b(), "/account", json!(" ")),
            1_241_004,
            "Missing request parameter [account]",
        ),
        (
            "no sources",
            set(b(), "/file_source", json!([])),
            1_241_004,
            "Missing request parameter [file_source]",
        ),
        (
            "no files",
            set(b(), "/file_source/0/files", json!([])),
            1_241_004,
            "Missing request parameter [file_source.files]",
        ),
        (
            "relative source",
            set(b(), "/file_source/0/files", json!(["data/a.bin"])),
            1_241_005,
            "Invalid request parameter [file_source.files]",
        ),
        (
            "no source account",
            set(b(), "/file_source/0/account", Value::Null),
            1_241_004,
            "Missing request parameter [file_source.account]",
        ),
        (
            "no source hosts",
            set(b(), "/file_source/0/ip_list", Value::Null),
            1_241_004,
            "Missing request parameter [file_source.ip_list|file_source.custom_query_id|file_source.target_servers]",
        ),
        (
            "no target hosts",
            set(b(), "/ip_list", json!([])),
            1_241_004,
            "Missing request parameter [ip_list|custom_query_id|target_servers]",
        ),
        (
            "target_server wins even when empty",
            set(
                set(b(), "/target_server", json!({})),
                "/task_name",
                json!("t"),
            ),
            1_244_028,
            "Step [t] target execute object is empty",
        ),
        (
            "unknown target host",
            set(
                b(),
                "/ip_list",
                json!([{"bk_cloud_id": 0, "ip": "10.0.0.9"}]),
            ),
            1_244_030,
            "Execute object referenced by the job does not exist. Number of non-existent execution objects: 1, execution object list: [(ip:0:10.0.0.9)]",
        ),
        (
            "v2 does not validate IPs",
            set(
                b(),
                "/ip_list",
                json!([{"bk_cloud_id": 0, "ip": " 10.0.0.2"}]),
            ),
            1_244_030,
            "Execute object referenced by the job does not exist. Number of non-existent execution objects: 1, execution object list: [(ip:0: 10.0.0.2)]",
        ),
        (
            "unknown source host",
            set(
                b(),
                "/file_source/0/ip_list",
                json!([{"bk_cloud_id": 1, "ip": "10.0.0.1"}]),
            ),
            1_244_030,
            "Execute object referenced by the job does not exist. Number of non-existent execution objects: 1, execution object list: [(ip:1:10.0.0.1)]",
        ),
    ];
    check(&sim, "job/fast_push_file", cases).await;
}

#[tokio::test]
async fn v3_fast_transfer_file_validation_order() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let b = v3_body;
    let ts = "/target_server";
    let cases: Vec<Case> = vec![
        ("valid", b(), 0, ""),
        (
            "biz id still accepted",
            set(
                set(
                    set(b(), "/bk_scope_type", Value::Null),
                    "/bk_scope_id",
                    Value::Null,
                ),
                "/bk_biz_id",
                json!(2),
            ),
            0,
            "",
        ),
        (
            "no scope",
            set(
                set(b(), "/bk_scope_type", Value::Null),
                "/bk_scope_id",
                Value::Null,
            ),
            1_240_003,
            "Invalid bk_scope_type",
        ),
        (
            "timeout 0",
            set(b(), "/timeout", json!(0)),
            1_240_003,
            "Job timeout must be greater or equal than 1",
        ),
        (
            "timeout too big",
            set(b(), "/timeout", json!(300_000)),
            1_240_003,
            "Job timeout must be between 1 and 259200",
        ),
        (
            "invalid ip",
            set(
                b(),
                ts,
                json!({"ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.256"}]}),
            ),
            1_240_003,
            "Invalid IP",
        ),
        (
            "untrimmed ip",
            set(
                b(),
                ts,
                json!({"ip_list": [{"bk_cloud_id": 0, "ip": " 10.0.0.2"}]}),
            ),
            1_240_003,
            "Invalid IP",
        ),
        (
            "invalid cloud",
            set(
                b(),
                ts,
                json!({"ip_list": [{"bk_cloud_id": -1, "ip": "10.0.0.2"}]}),
            ),
            1_240_003,
            "Invalid BK-Net",
        ),
        (
            "missing cloud",
            set(b(), ts, json!({"ip_list": [{"ip": "10.0.0.2"}]})),
            1_240_003,
            "Invalid BK-Net",
        ),
        (
            "source ip validated too",
            set(
                b(),
                "/file_source_list/0/server",
                json!({"ip_list": [{"bk_cloud_id": 0, "ip": "x"}]}),
            ),
            1_240_003,
            "Invalid IP",
        ),
        (
            "group without id",
            set(b(), ts, json!({"dynamic_group_list": [{}]})),
            1_240_003,
            "DynamicGroup ID cannot be empty",
        ),
        (
            "topo without id",
            set(
                b(),
                ts,
                json!({"topo_node_list": [{"node_type": "module"}]}),
            ),
            1_240_003,
            "Topo node ID can not be empty",
        ),
        (
            "topo without type",
            set(b(), ts, json!({"topo_node_list": [{"id": 3}]})),
            1_240_003,
            "Topo node type can not be empty",
        ),
        (
            "bad callback",
            set(b(), "/callback_url", json!("not a url")),
            1_240_003,
            CALLBACK_MSG,
        ),
        (
            "target trimmed in v3",
            set(b(), "/file_target_path", json!("  /tmp/out  ")),
            0,
            "",
        ),
        (
            "windows target ok",
            set(b(), "/file_target_path", json!("D:/Download/")),
            0,
            "",
        ),
        (
            "bare drive",
            set(b(), "/file_target_path", json!("C:")),
            1_241_007,
            "Missing or invalid request parameter [file_target_path]",
        ),
        (
            "no account",
            set(b(), "/account_alias", Value::Null),
            1_241_004,
            "Missing request parameter [account_id|account_alias]",
        ),
        (
            "account id 0",
            set(
                set(b(), "/account_alias", json!("")),
                "/account_id",
                json!(0),
            ),
            1_241_004,
            "Missing request parameter [account_id|account_alias]",
        ),
        (
            "no target server",
            set(b(), ts, Value::Null),
            1_241_004,
            "Missing request parameter [target_server]",
        ),
        (
            "empty target server",
            set(b(), ts, json!({"ip_list": [], "host_id_list": []})),
            1_241_004,
            "Missing request parameter [target_server]",
        ),
        (
            "no sources",
            set(b(), "/file_source_list", json!([])),
            1_241_004,
            "Missing request parameter [file_source_list]",
        ),
        (
            "no files",
            set(b(), "/file_source_list/0/file_list", json!([])),
            1_241_004,
            "Missing request parameter [file_source.file_list]",
        ),
        (
            "bad file type",
            set(b(), "/file_source_list/0/file_type", json!(9)),
            1_241_005,
            "Invalid request parameter [file_source.file_type]",
        ),
        (
            "relative file",
            set(b(), "/file_source_list/0/file_list", json!(["./a"])),
            1_241_005,
            "Invalid request parameter [file_source.file_list]",
        ),
        (
            "file entries trimmed",
            set(
                b(),
                "/file_source_list/0/file_list",
                json!([" /data/a.bin "]),
            ),
            0,
            "",
        ),
        (
            "no source account",
            set(b(), "/file_source_list/0/account", Value::Null),
            1_241_004,
            "Missing request parameter [file_source.account]",
        ),
        (
            "empty source account",
            set(b(), "/file_source_list/0/account", json!({})),
            1_241_004,
            "Missing request parameter [file_source.account.account_id|file_source.account.account_alias]",
        ),
        (
            "no source server",
            set(b(), "/file_source_list/0/server", Value::Null),
            1_241_004,
            "Missing request parameter [file_source.server]",
        ),
        (
            "empty source server",
            set(b(), "/file_source_list/0/server", json!({})),
            1_241_004,
            "Missing request parameter [file_source.server]",
        ),
        (
            "rolling expression JOB refuses",
            set(b(), "/rolling_config", json!({"expression": "10% 0%"})),
            1_244_026,
            "Invalid rolling strategy",
        ),
        (
            "unknown host id",
            set(b(), ts, json!({"host_id_list": [99_999]})),
            1_244_030,
            "Execute object referenced by the job does not exist. Number of non-existent execution objects: 1, execution object list: [(host_id:99999)]",
        ),
        (
            "host ids win over ips",
            set(
                b(),
                ts,
                json!({"host_id_list": [1002], "ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.9"}]}),
            ),
            0,
            "",
        ),
        (
            "unknown topo node is empty",
            set(
                set(
                    b(),
                    ts,
                    json!({"topo_node_list": [{"id": 5, "node_type": "module"}]}),
                ),
                "/task_name",
                json!("n"),
            ),
            1_244_028,
            "Step [n] target execute object is empty",
        ),
    ];
    check(&sim, "jobv3/fast_transfer_file", cases).await;
}

const WORLD: &str = r#"
[sim]
file_task_limit = 3

[[business]]
id = 2
name = "Blue"
hosts = ["0:10.0.0.1", "0:10.0.0.2", "10.0.0.4"]
accounts = [{ id = 1, alias = "root" }, { id = 7, alias = "deploy", name = "app" }]
dynamic_groups = { g1 = ["0:10.0.0.2"] }
topo_nodes = [{ node_type = "module", id = 1000, hosts = ["0:10.0.0.4"] }]
"#;

#[tokio::test]
async fn registry_checks_scope_accounts_hosts_limits() {
    let sim = Sim::with_config(WORLD);
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let cases: Vec<Case> = vec![
        ("valid", v2_body(), 0, ""),
        (
            "unknown business",
            set(v2_body(), "/bk_biz_id", json!(3)),
            1_243_049,
            "Business/Business Set not exist or archived",
        ),
        (
            "biz set id range",
            set(v2_body(), "/bk_biz_id", json!(8_000_001)),
            1_243_049,
            "Business/Business Set not exist or archived",
        ),
        (
            "unknown target account",
            set(v2_body(), "/account", json!("nobody")),
            1_244_003,
            "Account [nobody] does not exist",
        ),
        (
            "unknown source account",
            set(v2_body(), "/file_source/0/account", json!("ghost")),
            1_244_003,
            "Account [ghost] does not exist",
        ),
        (
            "host outside the business",
            set(
                v2_body(),
                "/ip_list",
                json!([{"bk_cloud_id": 0, "ip": "10.0.0.3"}]),
            ),
            1_244_002,
            "Hosts invalid. Please check whether the source or target host exists under the business [Blue] of CMDB. Besides, please contact JOB administrator to add them to ip whitelist if you have to use hosts between businesses. Invalid 1 hosts:0:10.0.0.3",
        ),
        (
            "missing beats invalid",
            set(
                v2_body(),
                "/ip_list",
                json!([{"bk_cloud_id": 0, "ip": "10.0.0.3"}, {"bk_cloud_id": 0, "ip": "10.9.9.9"}]),
            ),
            1_244_030,
            "Execute object referenced by the job does not exist. Number of non-existent execution objects: 1, execution object list: [(ip:0:10.9.9.9)]",
        ),
        (
            "v2 dynamic group",
            set(
                v2_body(),
                "/target_server",
                json!({"dynamic_group_id_list": ["g1"]}),
            ),
            0,
            "",
        ),
        (
            "v2 topo node",
            set(
                v2_body(),
                "/target_server",
                json!({"topo_node_list": [{"id": 1000, "node_type": "module"}]}),
            ),
            0,
            "",
        ),
        (
            "file-task limit",
            set(
                v2_body(),
                "/ip_list",
                json!([{"bk_cloud_id": 0, "ip": "10.0.0.2"}, {"bk_cloud_id": 0, "ip": "10.0.0.4"}]),
            ),
            0,
            "",
        ),
        (
            "file-task limit exceeded",
            set(
                set(
                    v2_body(),
                    "/ip_list",
                    json!([{"bk_cloud_id": 0, "ip": "10.0.0.2"}, {"bk_cloud_id": 0, "ip": "10.0.0.4"}]),
                ),
                "/file_source/0/files",
                json!(["/a", "/b"]),
            ),
            1_244_021,
            "The number of file tasks exceeds the limit:3",
        ),
    ];
    check(&sim, "job/fast_push_file", cases).await;
    let v3: Vec<Case> = vec![
        (
            "account by id",
            set(
                set(v3_body(), "/account_alias", Value::Null),
                "/account_id",
                json!(7),
            ),
            0,
            "",
        ),
        (
            "unknown account id",
            set(
                set(v3_body(), "/account_alias", Value::Null),
                "/account_id",
                json!(77),
            ),
            1_244_003,
            "Account [ID=77] does not exist",
        ),
        // JOB re-reads the target account for a source given by id, so a wrong one passes.
        (
            "source id quirk",
            set(
                v3_body(),
                "/file_source_list/0/account",
                json!({"id": 12_345}),
            ),
            0,
            "",
        ),
        (
            "v3 dynamic group",
            set(
                v3_body(),
                "/target_server",
                json!({"dynamic_group_list": [{"id": "g1"}]}),
            ),
            0,
            "",
        ),
        (
            "v3 unknown business",
            set(v3_body(), "/bk_scope_id", json!("5")),
            1_243_049,
            "Business/Business Set not exist or archived",
        ),
    ];
    check(&sim, "jobv3/fast_transfer_file", v3).await;
}

#[tokio::test(start_paused = true)]
async fn query_and_operate_validation() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let id = crate::support::job_id(&sim.esb("jobv3/fast_transfer_file", v3_body()).await);
    let step = id + 1;
    let scope = json!({"bk_scope_type": "biz", "bk_scope_id": "2"});
    let with = |extra: Value| {
        let mut v = scope.clone();
        for (k, x) in extra.as_object().expect("object") {
            v[k] = x.clone();
        }
        v
    };
    let status: Vec<Case> = vec![
        ("ok", with(json!({"job_instance_id": id})), 0, ""),
        (
            "string id coerces",
            with(json!({"job_instance_id": id.to_string()})),
            0,
            "",
        ),
        (
            "missing id",
            scope.clone(),
            1_241_007,
            "Missing or invalid request parameter [job_instance_id]",
        ),
        (
            "zero id",
            with(json!({"job_instance_id": 0})),
            1_241_007,
            "Missing or invalid request parameter [job_instance_id]",
        ),
        (
            "unknown job",
            with(json!({"job_instance_id": 1})),
            1_244_006,
            "Task instance does not exist",
        ),
        (
            "other business",
            json!({"bk_biz_id": 3, "job_instance_id": id}),
            1_244_006,
            "Task instance does not exist",
        ),
    ];
    check(&sim, "jobv3/get_job_instance_status", status.clone()).await;
    check(&sim, "job/get_job_instance_status", status.clone()).await;
    check(&sim, "job/get_job_instance_log", status).await;

    let ip_log: Vec<Case> = vec![
        (
            "ok by ip",
            with(
                json!({"job_instance_id": id, "step_instance_id": step, "bk_cloud_id": 0, "ip": "10.0.0.2"}),
            ),
            0,
            "",
        ),
        (
            "ok by host id",
            with(json!({"job_instance_id": id, "step_instance_id": step, "bk_host_id": 1002})),
            0,
            "",
        ),
        (
            "no job id",
            with(json!({"step_instance_id": step, "bk_host_id": 1002})),
            1_240_003,
            "Job instance id must be a positive number",
        ),
        (
            "no step id",
            with(json!({"job_instance_id": id, "bk_host_id": 1002})),
            1_240_003,
            "Step instance id must be a positive number",
        ),
        (
            "no host",
            with(json!({"job_instance_id": id, "step_instance_id": step})),
            1_241_007,
            "Missing or invalid request parameter [host_id/(bk_cloud_id+ip)]",
        ),
        (
            "unknown step",
            with(json!({"job_instance_id": id, "step_instance_id": step + 10, "bk_host_id": 1002})),
            1_244_006,
            "Task instance does not exist",
        ),
    ];
    check(&sim, "jobv3/get_job_instance_ip_log", ip_log).await;

    let many: Vec<u64> = (0..501).collect();
    let batch: Vec<Case> = vec![
        (
            "ok",
            with(json!({"job_instance_id": id, "step_instance_id": step, "host_id_list": [1002]})),
            0,
            "",
        ),
        (
            "none",
            with(json!({"job_instance_id": id, "step_instance_id": step})),
            1_241_007,
            "Missing or invalid request parameter [host_id_list/ip_list]",
        ),
        (
            "too many",
            with(json!({"job_instance_id": id, "step_instance_id": step, "host_id_list": many})),
            1_241_007,
            "Missing or invalid request parameter [host_id_list/ip_list]",
        ),
        (
            "bad ip",
            with(
                json!({"job_instance_id": id, "step_instance_id": step, "ip_list": [{"bk_cloud_id": 0, "ip": "nope"}]}),
            ),
            1_240_003,
            "Invalid IP",
        ),
    ];
    check(&sim, "jobv3/batch_get_job_instance_ip_log", batch).await;

    let operate: Vec<Case> = vec![
        (
            "no id",
            with(json!({"operation_code": 1})),
            1_241_002,
            "Invalid request parameters",
        ),
        (
            "no code",
            with(json!({"job_instance_id": id})),
            1_241_002,
            "Invalid request parameters",
        ),
        (
            "unknown code",
            with(json!({"job_instance_id": id, "operation_code": 3})),
            1_241_002,
            "Invalid request parameters",
        ),
        (
            "unknown job",
            with(json!({"job_instance_id": 5, "operation_code": 1})),
            1_244_006,
            "Task instance does not exist",
        ),
        (
            "terminate in status 1",
            with(json!({"job_instance_id": id, "operation_code": 1})),
            1_241_003,
            "Unsupported operation",
        ),
    ];
    check(&sim, "jobv3/operate_job_instance", operate).await;

    // A GET through the gateway without the id is a Spring binding error.
    let r = sim
        .gw(
            Method::GET,
            "get_job_instance_status?bk_scope_type=biz&bk_scope_id=2",
            None,
        )
        .await;
    assert_eq!(r.body["code"], json!(1_240_003));
    assert_eq!(r.body["message"], json!("Bad Request"));
    assert!(
        r.body.get("data").is_none(),
        "JOB errors carry no data: {}",
        r.body
    );
}

#[test]
fn shipped_scenarios_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("scenarios dir") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&p).expect("read");
            plan_jobsim::Config::from_toml(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 3);
    assert!(
        plan_jobsim::Config::from_toml("[sim]\nno_such_key = 1\n").is_err(),
        "unknown keys are errors"
    );
}
