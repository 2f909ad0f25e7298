//! Real fleets (issue 15) end to end, the built binary against the simulator: a run over a
//! dynamic group with IPv6-only hosts reports each host by its `bk_host_id`, retries the
//! failed one by host id, and asks for logs by host id; `plan show --resolve` lists the hosts
//! CMDB puts in each group and node.

use serde_json::{Value, json};

use crate::apply::{Fixture, code, text};

/// Web hosts behind a dynamic group: two IPv6-only hosts (ids 3001, 3002) and one IPv4 host.
const GROUP_PLAN: &str = r#"
[plan]
name = "fleet"
bk_biz_id = 2
account = "root"
api = "v3"

[hosts.src]
ips = ["10.0.0.1"]
[hosts.web]
dynamic_groups = ["g-web"]

[[push]]
name = "to-web"
from = { hosts = "src", files = ["/data/app.tgz"] }
to = { hosts = "web", path = "/opt/app/" }
retries = 1
"#;

/// The group's IPv6 host 3002 has an abnormal agent for its first job: it fails once.
const GROUP_WORLD: &str = r#"
[[business]]
id = 2
dynamic_groups = { g-web = ["0:[fd00::1]", "0:[fd00::2]", "0:10.0.2.1"] }
topo_nodes = [{ node_type = "module", id = 10, hosts = ["0:10.0.2.2", "0:[fd00::2]"] }]

[[host]]
host = "0:[fd00::1]"
host_id = 3001

[[host]]
host = "0:[fd00::2]"
host_id = 3002
flaky_jobs = 1
"#;

fn fleet() -> Fixture {
    let f = Fixture::new(GROUP_PLAN, GROUP_WORLD);
    for v6 in ["fd00::1", "fd00::2"] {
        std::fs::create_dir_all(f.path("sandbox/hosts/0").join(v6)).expect("mkdir");
    }
    f.write("10.0.0.1", "/data/app.tgz", b"release");
    f
}

fn journal(f: &Fixture) -> Vec<Value> {
    let dir = f.path("state/runs/fleet");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).expect("runs").flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        lines.extend(
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok()),
        );
    }
    lines
}

#[test]
fn a_dynamic_group_of_ipv6_only_hosts_reports_each_host_by_id() {
    let f = fleet();
    let out = f.apply_sandbox(&["--yes", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    for v6 in ["fd00::1", "fd00::2"] {
        assert_eq!(
            f.read(v6, "/opt/app/app.tgz").as_deref(),
            Some(&b"release"[..]),
            "{v6}"
        );
    }

    // The first attempt: three hosts, none collapsed, each by id beside its address.
    let journal = journal(&f);
    let attempts: Vec<&Value> = journal
        .iter()
        .filter(|l| l["type"] == "push_attempt_finished")
        .collect();
    assert_eq!(
        attempts.len(),
        2,
        "a failed attempt and its retry: {journal:?}"
    );
    let hosts: Vec<(Value, Value)> = attempts[0]["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| (h["host_id"].clone(), h["host"].clone()))
        .collect();
    assert_eq!(hosts.len(), 3, "{hosts:?}");
    assert!(
        hosts.contains(&(json!(3001), json!("0:[fd00::1]"))),
        "{hosts:?}"
    );
    assert!(
        hosts.contains(&(json!(3002), json!("0:[fd00::2]"))),
        "{hosts:?}"
    );
    let failed: Vec<&Value> = attempts[0]["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .filter(|h| h["status"] != 9)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["host_id"], 3002);

    let requests = f.requests();
    // The failed host's log was asked for by host id, never by a blank IP.
    let logs: Vec<&Value> = requests
        .iter()
        .filter(|r| r["api"] == "batch_get_job_instance_ip_log")
        .collect();
    assert!(!logs.is_empty());
    for call in &logs {
        assert_eq!(call["body"]["host_id_list"], json!([3002]), "{call}");
        assert!(call["body"].get("ip_list").is_none(), "{call}");
        assert_eq!(call["code"], 0, "{call}");
    }
    // The retry went to that host alone, by id.
    let submissions: Vec<&Value> = requests
        .iter()
        .filter(|r| r["api"] == "fast_transfer_file")
        .collect();
    assert_eq!(submissions.len(), 2);
    assert_eq!(
        submissions[1]["body"]["target_server"],
        json!({"host_id_list": [3002]})
    );

    // The report: three hosts, all received the files in the end.
    let last: Value = text(&out.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .expect("run_finished");
    assert_eq!(last["report"]["pushes"][0]["hosts_total"], 3, "{last}");
    assert_eq!(last["report"]["pushes"][0]["hosts_ok"], 3, "{last}");
}
