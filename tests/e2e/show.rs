//! `plan show` and `plan graph` on the plans in `plans/`: every output format, exit codes, and
//! the Markdown size limit on a generated plan.

use std::path::Path;
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn plan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plan"))
        .args(args)
        .current_dir(root())
        .env("PLAN_NO_PROGRESS", "1")
        .env("NO_COLOR", "1")
        .output()
        .expect("run plan")
}

fn stdout_of(args: &[&str]) -> String {
    let out = plan(args);
    assert!(
        out.status.success(),
        "plan {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

const PLANS: &[&str] = &["release", "logs", "windows", "fanout"];

#[test]
fn show_formats_on_every_plan() {
    for name in PLANS {
        let path = format!("plans/{name}.toml");
        for format in ["text", "json", "markdown"] {
            let out = stdout_of(&["show", &path, "--format", format]);
            insta::assert_snapshot!(format!("show-{name}-{format}"), out);
        }
    }
}

#[test]
fn graph_formats() {
    for name in ["release", "logs"] {
        let path = format!("plans/{name}.toml");
        for format in ["dot", "mermaid", "json"] {
            let out = stdout_of(&["graph", &path, "--format", format]);
            insta::assert_snapshot!(format!("graph-{name}-{format}"), out);
        }
    }
}

#[test]
fn show_json_is_the_contract_document() {
    let out = stdout_of(&["show", "plans/release.toml", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["plan"], "release-1-4");
    assert_eq!(doc["api"], "v2");
    assert_eq!(
        doc["stages"][1],
        serde_json::json!({"stage": 2, "pushes": ["relays-to-web"]})
    );
    let push = &doc["pushes"][1];
    assert_eq!(push["name"], "relays-to-web");
    assert_eq!(push["stage"], 2);
    assert_eq!(
        push["depends_on"],
        serde_json::json!(["artifact-to-relays"])
    );
    assert_eq!(push["inferred"][0]["after"], "artifact-to-relays");
    assert_eq!(push["request"]["account"], "deploy");
    assert_eq!(push["request"]["file_target_path"], "/opt/app/releases/");
    // No credential ever appears in a body.
    for key in [
        "bk_app_code",
        "bk_app_secret",
        "bk_username",
        "bk_token",
        "access_token",
    ] {
        assert!(!out.contains(key), "{key} in show output");
    }
}

#[test]
fn api_flag_switches_request_shape() {
    let out = stdout_of(&[
        "show",
        "plans/release.toml",
        "--format",
        "json",
        "--api",
        "v3",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["api"], "v3");
    let request = &doc["pushes"][0]["request"];
    assert_eq!(request["bk_scope_type"], "biz");
    assert_eq!(request["bk_scope_id"], "2");
    assert!(request.get("file_source_list").is_some());
    assert!(request.get("bk_biz_id").is_none());
}

#[test]
fn invalid_graph_exits_1_with_the_cycle_on_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cycle.toml");
    std::fs::write(
        &path,
        r#"[plan]
name = "cycle"
bk_biz_id = 2
account = "root"

[[push]]
name = "a"
after = ["b"]
from = { hosts = "10.0.0.1", files = ["/x/a"] }
to = { hosts = "10.0.0.2", path = "/a/" }

[[push]]
name = "b"
after = ["a"]
from = { hosts = "10.0.0.1", files = ["/x/b"] }
to = { hosts = "10.0.0.2", path = "/b/" }
"#,
    )
    .expect("write");
    let path = path.to_str().expect("utf-8 path");
    for command in ["show", "graph"] {
        let out = plan(&[command, path]);
        assert_eq!(out.status.code(), Some(1), "{command}");
        assert!(
            out.stdout.is_empty(),
            "{command} printed data for an invalid plan"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("plan::graph::cycle"), "{stderr}");
        assert!(stderr.contains("`a -> b -> a`"), "{stderr}");
        assert!(stderr.contains("cycle.toml:8:"), "{stderr}");
    }
}

/// A generated plan with thousands of pushes: the comment stays under 60,000 characters and
/// every table that is started is finished.
#[test]
fn markdown_summarises_huge_plans() {
    let mut text = String::from("[plan]\nname = \"huge\"\nbk_biz_id = 2\naccount = \"root\"\n");
    for i in 0..3000 {
        let host = format!("10.{}.{}.1", i / 250, i % 250);
        text.push_str(&format!(
            "\n[[push]]\nname = \"p{i}\"\nfrom = {{ hosts = \"10.255.0.1\", files = [\"/src/f{i}\"] }}\nto = {{ hosts = \"{host}\", path = \"/d{i}/\" }}\n"
        ));
        if i % 3 != 0 {
            // Every push but the first of each triple reads what the previous one delivered.
            let prev = i - 1;
            let prev_host = format!("10.{}.{}.1", prev / 250, prev % 250);
            text.push_str(&format!(
                "[[push]]\nname = \"r{i}\"\nfrom = {{ hosts = \"{prev_host}\", files = [\"/d{prev}/f{prev}\"] }}\nto = {{ hosts = \"10.254.0.1\", path = \"/r{i}/\" }}\n"
            ));
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.toml");
    std::fs::write(&path, text).expect("write");
    let out = stdout_of(&[
        "show",
        path.to_str().expect("utf-8"),
        "--format",
        "markdown",
    ]);
    assert!(out.len() < 60_000, "{} characters", out.len());
    assert!(out.starts_with("<!-- plan:show huge -->\n"));
    assert!(
        out.contains("**5000 pushes in 2 stages to 3001 hosts**"),
        "{}",
        &out[..400]
    );
    assert!(out.contains("```mermaid\nflowchart LR\n"));
    assert!(out.contains("not shown to keep this comment short"));
    // Tables are whole: every row has the header's five cells.
    for line in out.lines().filter(|l| l.starts_with('|')) {
        let cells = line.replace("\\|", "").matches('|').count();
        assert_eq!(cells, 6, "{line}");
    }
}
