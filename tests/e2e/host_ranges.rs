//! Plans that name hosts by range, CIDR block and CMDB host id, and read from a JOB file
//! source (issue 15), applied by the built binary on a sandbox: the bodies on the wire are
//! the ones JOB's request classes take, and the files land on every host the plan names.

use serde_json::Value;

use std::process::Output;

use crate::apply::{Fixture, code, text};

/// What the command printed, both streams.
fn output(out: &Output) -> String {
    text(&out.stdout) + &text(&out.stderr)
}

/// `10.0.1.[1:2]` and `10.0.2.0/30` are the four sandbox hosts 10.0.1.1, 10.0.1.2, 10.0.2.1
/// and 10.0.2.2 (a /30 without its network and broadcast addresses).
const RANGE_PLAN: &str = r#"
[plan]
name = "ranges"
bk_biz_id = 2
account = "root"

[hosts.web]
ips = ["10.0.1.[1:2]", "10.0.2.0/30"]

[[push]]
name = "to-web"
from = { hosts = "10.0.0.1", files = ["/data/app.tgz"] }
to = { hosts = "web", path = "/opt/app/" }
"#;

const WORLD: &str = "[[business]]\nid = 2\n";

const TARGETS: [&str; 4] = ["10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2"];

fn fixture(plan: &str, world: &str) -> Fixture {
    let f = Fixture::new(plan, world);
    f.write("10.0.0.1", "/data/app.tgz", b"release 1.4");
    f
}

/// The body of the one accepted submission of `api`.
fn submitted(f: &Fixture, api: &str) -> Value {
    let requests = f.requests();
    let bodies: Vec<&Value> = requests
        .iter()
        .filter(|r| r["api"] == api && r["job_instance_id"].as_i64().is_some())
        .map(|r| &r["body"])
        .collect();
    assert_eq!(bodies.len(), 1, "{requests:?}");
    bodies[0].clone()
}

fn addresses(server: &Value) -> Vec<String> {
    server["ip_list"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|h| format!("{}:{}", h["bk_cloud_id"], h["ip"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_range_plan_lands_on_every_host_of_the_range_in_v2() {
    let f = fixture(RANGE_PLAN, WORLD);
    let out = f.apply_sandbox(&["--yes"]);
    assert_eq!(code(&out), 0, "{}", output(&out));
    for ip in TARGETS {
        assert_eq!(
            f.read(ip, "/opt/app/app.tgz").as_deref(),
            Some(&b"release 1.4"[..]),
            "{ip}"
        );
    }
    let body = submitted(&f, "fast_push_file");
    assert_eq!(
        addresses(&body["target_server"]),
        ["0:10.0.1.1", "0:10.0.1.2", "0:10.0.2.1", "0:10.0.2.2"]
    );
    // The scope beside `bk_biz_id`, which JOB reads only while its compatibility switch is on.
    assert_eq!(body["bk_biz_id"], 2);
    assert_eq!(body["bk_scope_type"], "biz");
    assert_eq!(body["bk_scope_id"], "2");
}

#[test]
fn a_range_plan_lands_on_every_host_of_the_range_in_v3() {
    let plan = RANGE_PLAN.replacen("account = \"root\"", "account = \"root\"\napi = \"v3\"", 1);
    let f = fixture(&plan, WORLD);
    let out = f.apply_sandbox(&["--yes"]);
    assert_eq!(code(&out), 0, "{}", output(&out));
    for ip in TARGETS {
        assert!(f.read(ip, "/opt/app/app.tgz").is_some(), "{ip}");
    }
    let body = submitted(&f, "fast_transfer_file");
    assert_eq!(
        addresses(&body["target_server"]),
        ["0:10.0.1.1", "0:10.0.1.2", "0:10.0.2.1", "0:10.0.2.2"]
    );
}

/// Hosts by CMDB id in both spellings; the world pins each sandbox host's id.
const HOST_ID_PLAN: &str = r#"
[plan]
name = "by-id"
bk_biz_id = 2
account = "root"
api = "v3"

[hosts.web]
host_ids = [1011, 1012]

[[push]]
name = "to-web"
from = { hosts = "host_id:1001", files = ["/data/app.tgz"] }
to = { hosts = ["web", "host_id:1021"], path = "/opt/app/" }
"#;

const HOST_ID_WORLD: &str = r#"
[[business]]
id = 2

[[host]]
host = "0:10.0.0.1"
host_id = 1001

[[host]]
host = "0:10.0.1.1"
host_id = 1011

[[host]]
host = "0:10.0.1.2"
host_id = 1012

[[host]]
host = "0:10.0.2.1"
host_id = 1021
"#;

#[test]
fn a_host_id_plan_sends_host_id_list_and_lands_on_those_hosts() {
    let f = fixture(HOST_ID_PLAN, HOST_ID_WORLD);
    let out = f.apply_sandbox(&["--yes"]);
    assert_eq!(code(&out), 0, "{}", output(&out));
    for ip in ["10.0.1.1", "10.0.1.2", "10.0.2.1"] {
        assert!(f.read(ip, "/opt/app/app.tgz").is_some(), "{ip}");
    }
    assert!(
        f.read("10.0.2.2", "/opt/app/app.tgz").is_none(),
        "a host the plan does not name"
    );
    let body = submitted(&f, "fast_transfer_file");
    assert_eq!(
        body["target_server"],
        serde_json::json!({"host_id_list": [1011, 1012, 1021]})
    );
    assert_eq!(
        body["file_source_list"][0]["server"],
        serde_json::json!({"host_id_list": [1001]})
    );
}

#[test]
fn host_ids_and_ipv6_hosts_in_a_v2_plan_fail_at_check() {
    let plan = HOST_ID_PLAN.replace("api = \"v3\"\n", "");
    let f = fixture(&plan, HOST_ID_WORLD);
    let out = f
        .plan()
        .args(["check", "plan.toml"])
        .output()
        .expect("run plan");
    assert_eq!(code(&out), 1, "{}", output(&out));
    assert!(
        output(&out).contains("plan::parser::host_id_in_v2"),
        "{}",
        output(&out)
    );

    let ipv6 = RANGE_PLAN.replace("\"10.0.2.0/30\"", "\"0:[fd00::2]\"");
    let f = fixture(&ipv6, WORLD);
    let out = f
        .plan()
        .args(["check", "plan.toml"])
        .output()
        .expect("run plan");
    assert_eq!(code(&out), 1, "{}", output(&out));
    assert!(
        output(&out).contains("plan::parser::ipv6_host_in_v2"),
        "{}",
        output(&out)
    );
    assert!(f.requests().is_empty(), "check never calls JOB");
}

/// An artifact from a JOB file source, renamed on delivery.
const FILE_SOURCE_PLAN: &str = r#"
[plan]
name = "artifacts"
bk_biz_id = 2
account = "root"
api = "v3"

[[push]]
name = "app"
from = { file_source = "bkrepo-release", files = ["release/app-1.4.tgz"] }
to = { hosts = "10.0.1.[1:2]", path = "/opt/app/", file_target_name = "app.tgz" }
"#;

const FILE_SOURCE_WORLD: &str = r#"
[[business]]
id = 2

[[file_source]]
id = 5
code = "bkrepo-release"
business = 2
"#;

#[test]
fn a_file_source_plan_sends_file_type_3_and_lands_the_renamed_file() {
    let f = Fixture::new(FILE_SOURCE_PLAN, FILE_SOURCE_WORLD);
    let artifact = f.path("sandbox/file_sources/bkrepo-release/release/app-1.4.tgz");
    std::fs::create_dir_all(artifact.parent().expect("parent")).expect("mkdir");
    std::fs::write(&artifact, b"artifact 1.4").expect("artifact");
    let out = f.apply_sandbox(&["--yes"]);
    assert_eq!(code(&out), 0, "{}", output(&out));
    for ip in ["10.0.1.1", "10.0.1.2"] {
        assert_eq!(
            f.read(ip, "/opt/app/app.tgz").as_deref(),
            Some(&b"artifact 1.4"[..]),
            "{ip}"
        );
        assert!(
            f.read(ip, "/opt/app/app-1.4.tgz").is_none(),
            "renamed on {ip}"
        );
    }
    let body = submitted(&f, "fast_transfer_file");
    assert_eq!(
        body["file_source_list"],
        serde_json::json!([{
            "file_list": ["release/app-1.4.tgz"],
            "file_type": 3,
            "file_source_code": "bkrepo-release"
        }])
    );
    assert_eq!(body["file_target_name"], "app.tgz");
}
