//! Real fleets (issue 15) end to end, the built binary against the simulator: a run over a
//! dynamic group with IPv6-only hosts reports each host by its `bk_host_id`, retries the
//! failed one inside the same job, and asks for logs by host id; `plan show --resolve` lists the hosts
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
    // The retry ran that host again inside the same job (v3, `operate_step_instance` code
    // 2): one job, and only the failed host ran again.
    let submissions: Vec<&Value> = requests
        .iter()
        .filter(|r| r["api"] == "fast_transfer_file")
        .collect();
    assert_eq!(submissions.len(), 1);
    let retries: Vec<&Value> = requests
        .iter()
        .filter(|r| r["api"] == "operate_step_instance")
        .collect();
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0]["body"]["operation_code"], 2);
    let retried: Vec<&Value> = journal
        .iter()
        .filter(|l| l["type"] == "push_retry_requested")
        .collect();
    assert_eq!(retried.len(), 1, "{journal:?}");
    assert_eq!(retried[0]["hosts"], json!(["0:[fd00::2]"]));
    assert_eq!(
        attempts[1]["job_instance_id"],
        attempts[0]["job_instance_id"]
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

/// The plan of the dynamic-group run, also reaching a topology node and a static host.
const REVIEW_PLAN: &str = r#"
[plan]
name = "fleet"
bk_biz_id = 2
account = "root"
api = "v3"

[hosts.src]
ips = ["10.0.0.1"]
[hosts.web]
dynamic_groups = ["g-web"]
topo_nodes = ["module:10"]
ips = ["10.0.2.1"]

[[push]]
name = "to-web"
from = { hosts = "src", files = ["/data/app.tgz"] }
to = { hosts = "web", path = "/opt/app/" }
"#;

fn review() -> Fixture {
    let f = Fixture::new(REVIEW_PLAN, GROUP_WORLD);
    for v6 in ["fd00::1", "fd00::2"] {
        std::fs::create_dir_all(f.path("sandbox/hosts/0").join(v6)).expect("mkdir");
    }
    f
}

/// Each way `document` breaks `plan schema --output OUTPUT`, as `path: problem`.
fn violations(f: &Fixture, output: &str, document: &Value) -> Vec<String> {
    let out = f
        .plan()
        .args(["schema", "--output", output])
        .output()
        .expect("run plan");
    let schema: Value = serde_json::from_slice(&out.stdout).expect("schema json");
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    validator
        .iter_errors(document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn show(f: &Fixture, args: &[&str]) -> std::process::Output {
    f.plan()
        .args(["show", "plan.toml"])
        .args(args)
        .output()
        .expect("run plan")
}

#[test]
fn show_resolve_lists_exactly_the_hosts_of_each_group_and_node() {
    let f = review();
    let out = show(
        &f,
        &["--resolve", "--sandbox", "sandbox", "--format", "json"],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let document: Value = serde_json::from_slice(&out.stdout).expect("json");
    let resolved = &document["resolved"];
    let hosts = |v: &Value| -> Vec<(String, i64)> {
        v.as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|h| {
                (
                    h["host"].as_str().unwrap_or_default().to_owned(),
                    h["host_id"].as_i64().unwrap_or(0),
                )
            })
            .collect()
    };
    // What the world puts in the group (3001, 3002 pinned; 10.0.2.1 numbered 1004).
    assert_eq!(
        hosts(&resolved["dynamic_groups"]["g-web"]),
        [
            ("0:10.0.2.1".to_owned(), 1004),
            ("0:[fd00::1]".to_owned(), 3001),
            ("0:[fd00::2]".to_owned(), 3002)
        ]
    );
    assert_eq!(
        hosts(&resolved["topo_nodes"]["module:10"]),
        [
            ("0:10.0.2.2".to_owned(), 1005),
            ("0:[fd00::2]".to_owned(), 3002)
        ]
    );
    // The push reaches each host once: the static 10.0.2.1 is the group's 10.0.2.1.
    let targets = &resolved["pushes"][0]["targets"];
    assert_eq!(resolved["pushes"][0]["push"], "to-web");
    assert_eq!(targets.as_array().map(Vec::len), Some(4), "{targets}");
    // The rest of the document is `plan show`'s.
    assert_eq!(document["format_version"], json!(1), "{document}");
    // And the whole validates against `plan schema --output show`, which types `resolved`.
    assert_eq!(violations(&f, "show", &document), Vec::<String>::new());
    let mut wrong = document.clone();
    wrong["resolved"]["pushes"][0]["targets"][0]["host_id"] = json!("1004");
    assert!(!violations(&f, "show", &wrong).is_empty());

    let out = show(&f, &["--resolve", "--sandbox", "sandbox"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("to-web: 4 hosts"), "{stdout}");
    assert!(
        stdout.contains(
            "dynamic group g-web: 0:10.0.2.1 (host_id:1004), 0:[fd00::1] (host_id:3001), 0:[fd00::2] (host_id:3002)"
        ),
        "{stdout}"
    );
    let markdown = text(
        &show(
            &f,
            &["--resolve", "--sandbox", "sandbox", "--format", "markdown"],
        )
        .stdout,
    );
    assert!(markdown.contains("Hosts each push reaches"), "{markdown}");
    assert!(
        markdown.contains("0:[fd00::2] (host_id:3002)"),
        "{markdown}"
    );
}

#[test]
fn show_without_resolve_asks_nobody_and_is_unchanged() {
    let f = review();
    let plain = show(&f, &[]);
    assert_eq!(code(&plain), 0);
    assert!(!text(&plain.stdout).contains("Hosts each push reaches"));
    assert!(f.requests().is_empty(), "no simulator was started");
    // --sandbox alone is a usage error: it means nothing without --resolve.
    assert_eq!(code(&show(&f, &["--sandbox", "sandbox"])), 2);
    // A CMDB that cannot be reached is exit 4.
    let unreachable = show(&f, &["--resolve", "--endpoint", "http://127.0.0.1:9"]);
    assert_eq!(code(&unreachable), 4, "{}", text(&unreachable.stderr));
}

#[test]
fn diff_resolve_shows_the_hosts_that_join_or_leave() {
    let f = review();
    let old = REVIEW_PLAN.replace(r#"topo_nodes = ["module:10"]"#, "");
    std::fs::write(f.path("old.toml"), old).expect("write");
    let out = f
        .plan()
        .args([
            "diff",
            "old.toml",
            "plan.toml",
            "--resolve",
            "--sandbox",
            "sandbox",
        ])
        .output()
        .expect("run plan");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // module:10 adds 10.0.2.2; fd00::2 was already in the group.
    assert!(stdout.contains("Hosts that join or leave"), "{stdout}");
    assert!(
        stdout.contains("    + 0:10.0.2.2 (host_id:1005)"),
        "{stdout}"
    );
    assert!(!stdout.contains("+ 0:[fd00::2]"), "{stdout}");
    let json = f
        .plan()
        .args([
            "diff",
            "plan.toml",
            "old.toml",
            "--resolve",
            "--sandbox",
            "sandbox",
            "--format",
            "json",
        ])
        .output()
        .expect("run plan");
    let document: Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(violations(&f, "diff", &document), Vec::<String>::new());
    let mut wrong = document.clone();
    wrong["resolved"]["hosts"][0]["left"] = json!("0:10.0.2.2");
    assert!(!violations(&f, "diff", &wrong).is_empty());
    assert_eq!(
        document["resolved"]["hosts"],
        json!([{"push": "to-web", "joined": [], "left": [{"host": "0:10.0.2.2", "host_id": 1005}]}])
    );
}

#[test]
fn a_file_source_plan_lands_the_artifact_renamed() {
    let plan = r#"
[plan]
name = "artifacts"
bk_biz_id = 2
account = "root"
api = "v3"

[hosts.web]
host_ids = [3001, 3002]

[[push]]
name = "release"
from = { file_source = "bkrepo-main", files = ["releases/app.tgz"] }
to = { hosts = "web", path = "/opt/app/", file_target_name = "app-1.2.tgz" }
"#;
    let world =
        format!("{GROUP_WORLD}\n[[file_source]]\nid = 7\ncode = \"bkrepo-main\"\nbusiness = 2\n")
            .replace("flaky_jobs = 1", "");
    let f = Fixture::new(plan, &world);
    for v6 in ["fd00::1", "fd00::2"] {
        std::fs::create_dir_all(f.path("sandbox/hosts/0").join(v6)).expect("mkdir");
    }
    let artifact = f.path("sandbox/file_sources/bkrepo-main/releases/app.tgz");
    std::fs::create_dir_all(artifact.parent().expect("parent")).expect("mkdir");
    std::fs::write(&artifact, b"artifact 1.2").expect("write");
    let out = f.apply_sandbox(&["--yes"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    for v6 in ["fd00::1", "fd00::2"] {
        assert_eq!(
            f.read(v6, "/opt/app/app-1.2.tgz").as_deref(),
            Some(&b"artifact 1.2"[..]),
            "{v6}"
        );
    }
    let submission = f
        .requests()
        .into_iter()
        .find(|r| r["api"] == "fast_transfer_file")
        .expect("submitted");
    assert_eq!(
        submission["body"]["file_source_list"],
        json!([{"file_list": ["releases/app.tgz"], "file_type": 3, "file_source_code": "bkrepo-main"}])
    );
}

#[test]
fn a_group_cmdb_does_not_know_is_shown_unresolved_with_cmdbs_reason() {
    let f = review();
    let plan = REVIEW_PLAN.replace(r#"["g-web"]"#, r#"["g-web", "g-gone"]"#);
    std::fs::write(f.path("plan.toml"), plan).expect("write");
    let out = show(&f, &["--resolve", "--sandbox", "sandbox"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("dynamic group g-gone: not resolved:"),
        "{stdout}"
    );
    assert!(stdout.contains("1199019"), "{stdout}");
    // The rest is still listed.
    assert!(stdout.contains("to-web: 4 hosts"), "{stdout}");
}

#[test]
fn show_resolve_names_the_address_behind_each_host_id() {
    let f = review();
    let plan = REVIEW_PLAN.replace(r#"ips = ["10.0.2.1"]"#, "host_ids = [3001, 1005]");
    std::fs::write(f.path("plan.toml"), plan).expect("write");
    let out = show(&f, &["--resolve", "--sandbox", "sandbox"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // 3001 is also in the group, 1005 also in the node: each host once, with its address.
    assert!(stdout.contains("to-web: 4 hosts"), "{stdout}");
    assert!(
        stdout.contains("all: 0:[fd00::1] (host_id:3001), 0:10.0.2.2 (host_id:1005),"),
        "{stdout}"
    );
}
