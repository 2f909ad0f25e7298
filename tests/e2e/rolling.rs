//! Rolling, gates and verification as `plan` shows and sends them (issue 16): the batches
//! `plan show` prints for static targets in every format, a rolling expression JOB refuses
//! pointed at inside the string by `plan check`, and a v3 rolling push applied on the sandbox
//! with `rolling_config` and `callback_url` on the wire.

use serde_json::Value;

use crate::apply::{Fixture, code, text};

const WORLD: &str = "[[business]]\nid = 2\n";

fn plan(api: &str, rolling: &str, target: &str) -> String {
    format!(
        r#"[plan]
name = "roll"
bk_biz_id = 2
account = "root"
api = "{api}"

[[push]]
name = "app"
from = {{ hosts = "10.0.0.1", files = ["/data/app.tgz"] }}
to = {{ hosts = {target}, path = "/opt/app/" }}
rolling = {rolling}
gate = true
verify = "size"
"#
    )
}

fn show(f: &Fixture, format: &str) -> String {
    let out = f
        .plan()
        .args(["show", "plan.toml", "--format", format])
        .output()
        .expect("run plan");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn show_prints_the_batches_and_the_gate_in_every_format() {
    let f = Fixture::new(
        &plan(
            "v3",
            r#"{ expression = "1 30% 100%", mode = "manual" }"#,
            r#""10.0.1.[1:20]""#,
        ),
        WORLD,
    );
    let shown = show(&f, "text");
    assert!(
        shown.contains(r#"gate (waits for an approval), rolling "1 30% 100%" manual: 3 batches (1, 6, 13) of 20 hosts, verify size"#),
        "{shown}"
    );
    let markdown = show(&f, "markdown");
    assert!(
        markdown.contains("3 batches (1, 6, 13) of 20 hosts"),
        "{markdown}"
    );
    assert!(markdown.contains("gate"), "{markdown}");
    let json: Value = serde_json::from_str(&show(&f, "json")).expect("json");
    let push = &json["pushes"][0];
    assert_eq!(push["release"]["gate"], true);
    assert_eq!(push["release"]["verify"], "size");
    assert_eq!(
        push["release"]["rolling"]["batches"],
        serde_json::json!([1, 6, 13])
    );
    assert_eq!(push["release"]["rolling"]["batched_by"], "job");
    assert_eq!(
        push["request"]["rolling_config"]["expression"],
        "1 30% 100%"
    );
    assert_eq!(push["request"]["rolling_config"]["mode"], 3);
}

#[test]
fn v2_batches_are_the_plans_and_dynamic_targets_are_refused() {
    let f = Fixture::new(
        &plan(
            "v2",
            r#"{ expression = "25%", max_failed = "10%" }"#,
            r#""10.0.1.[1:20]""#,
        ),
        WORLD,
    );
    let json: Value = serde_json::from_str(&show(&f, "json")).expect("json");
    let rolling = &json["pushes"][0]["release"]["rolling"];
    assert_eq!(rolling["batched_by"], "plan");
    assert_eq!(rolling["batches"], serde_json::json!([5, 5, 5, 5]));
    assert_eq!(rolling["max_failed"], "10%");

    let dynamic = plan("v2", r#"{ expression = "25%" }"#, r#""web""#)
        + "\n[hosts.web]\ndynamic_groups = [\"dg-1\"]\n";
    let f = Fixture::new(&dynamic, WORLD);
    let out = f
        .plan()
        .args(["check", "plan.toml"])
        .output()
        .expect("run plan");
    assert_eq!(code(&out), 1);
    let said = text(&out.stderr) + &text(&out.stdout);
    assert!(
        said.contains("plan::parser::rolling_needs_static_hosts"),
        "{said}"
    );
    assert!(
        said.contains("api = \\\"v3\\\"") || said.contains("api = \"v3\""),
        "{said}"
    );
}

#[test]
fn check_points_inside_the_expression_at_the_part_job_refuses() {
    let f = Fixture::new(
        &plan("v3", r#"{ expression = "1 30% 0" }"#, r#""10.0.1.[1:20]""#),
        WORLD,
    );
    let out = f
        .plan()
        .args(["check", "plan.toml", "--format", "json"])
        .output()
        .expect("run plan");
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(said.contains("plan::parser::invalid_rolling"), "{said}");
    // Line 11 is the rolling line; `0` is its 33rd character.
    assert!(said.contains("\"line\": 11"), "{said}");
    assert!(said.contains("\"column\": 33"), "{said}");
}

#[test]
fn a_v3_rolling_push_sends_rolling_config_and_delivers_every_batch() {
    let f = Fixture::new(
        &plan(
            "v3",
            r#"{ expression = "1 +1", mode = "ignore-failure" }"#,
            r#"["10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2"]"#,
        )
        .replace(
            "gate = true\n",
            "callback_url = \"http://127.0.0.1:9/hook\"\n",
        )
        .replace("verify = \"size\"\n", ""),
        WORLD,
    );
    f.write("10.0.0.1", "/data/app.tgz", b"release 2.0");
    let out = f.apply_sandbox(&["--yes"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    for host in ["10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2"] {
        assert_eq!(
            f.read(host, "/opt/app/app.tgz").as_deref(),
            Some(&b"release 2.0"[..]),
            "{host}"
        );
    }
    let requests = f.requests();
    let body = requests
        .iter()
        .find(|r| r["api"] == "fast_transfer_file" && r["job_instance_id"].as_i64().is_some())
        .map(|r| &r["body"])
        .expect("a submission");
    assert_eq!(
        body["rolling_config"],
        serde_json::json!({"type": 1, "mode": 2, "expression": "1 +1"})
    );
    assert_eq!(body["callback_url"], "http://127.0.0.1:9/hook");
}

/// A gated push run without a terminal stops at its gate before anything is sent for it
/// (exit 5).
#[test]
fn a_gate_without_a_terminal_sends_nothing() {
    let f = Fixture::new(
        &plan(
            "v3",
            r#"{ expression = "1 +1" }"#,
            r#"["10.0.1.1", "10.0.1.2"]"#,
        )
        .replace("verify = \"size\"\n", ""),
        WORLD,
    );
    f.write("10.0.0.1", "/data/app.tgz", b"release 2.0");
    let out = f.apply_sandbox(&["--yes"]);
    assert_eq!(code(&out), 5, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).contains("waiting at gate"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !f.requests()
            .iter()
            .any(|r| r["api"] == "fast_transfer_file"),
        "nothing is submitted"
    );
    assert_eq!(f.read("10.0.1.1", "/opt/app/app.tgz"), None);
}

/// Twenty hosts in batches of five, a host of batch 2 with its agent down: under
/// `"pause-on-failure"` JOB stops after batch 2, so batches 1 and 2 (but the down host) have
/// the file and batches 3 and 4 get nothing; with no terminal to confirm, the push waits for a
/// confirmation (exit 5).
#[test]
fn pause_on_failure_stops_after_the_failed_batch_and_sends_nothing_further() {
    let hosts: Vec<String> = (1..=20).map(|i| format!("10.0.3.{i}")).collect();
    let world = format!("{WORLD}\n[[host]]\nhost = \"0:10.0.3.7\"\nagent = \"down\"\n");
    let f = Fixture::new(
        &plan("v3", r#"{ expression = "5" }"#, r#""10.0.3.[1:20]""#)
            .replace("gate = true\n", "")
            .replace("verify = \"size\"\n", ""),
        &world,
    );
    for host in &hosts {
        std::fs::create_dir_all(f.path("sandbox/hosts/0").join(host)).expect("mkdir");
    }
    f.write("10.0.0.1", "/data/app.tgz", b"release 3.0");
    let out = f.apply_sandbox(&["--yes"]);
    assert_eq!(code(&out), 5, "{}{}", text(&out.stdout), text(&out.stderr));
    for (i, host) in hosts.iter().enumerate() {
        let delivered = f.read(host, "/opt/app/app.tgz").is_some();
        let expected = i < 10 && host != "10.0.3.7";
        assert_eq!(delivered, expected, "{host} (batch {})", i / 5 + 1);
    }
}
