//! `plan schema`: the committed schemas under `schemas/` are what the binary prints, and the
//! editor configuration points at them.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn plan_stdout(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_plan"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run plan");
    assert!(
        out.status.success(),
        "plan {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn committed_schemas_are_up_to_date() {
    for (args, file) in [
        (&["schema"][..], "schemas/plan.schema.json"),
        (
            &["schema", "--include-file"][..],
            "schemas/plan-include.schema.json",
        ),
    ] {
        let printed = plan_stdout(args);
        let committed = std::fs::read_to_string(root().join(file)).unwrap_or_default();
        assert!(
            printed == committed,
            "{file} is stale: regenerate it with `cargo run -q -- {} > {file}` and commit it",
            args.join(" ")
        );
        let doc: serde_json::Value = serde_json::from_str(&printed).expect("valid JSON");
        assert_eq!(
            doc["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{file}"
        );
    }
}

#[test]
fn include_file_schema_allows_only_hosts_and_vars() {
    let doc: serde_json::Value =
        serde_json::from_str(&plan_stdout(&["schema", "--include-file"])).expect("json");
    let mut keys: Vec<&String> = doc["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .collect();
    keys.sort();
    assert_eq!(keys, ["hosts", "vars"]);
    assert_eq!(doc["additionalProperties"], false);
    assert!(doc.get("required").is_none());
    let plan: serde_json::Value = serde_json::from_str(&plan_stdout(&["schema"])).expect("json");
    // Derived, not rewritten: the group definition is the plan schema's own.
    assert_eq!(doc["properties"]["hosts"], plan["properties"]["hosts"]);
    assert_eq!(plan["required"], serde_json::json!(["plan", "push"]));
}

#[test]
fn taplo_config_points_at_the_committed_schemas() {
    let config = std::fs::read_to_string(root().join(".taplo.toml")).expect(".taplo.toml");
    let paths: Vec<&str> = config
        .lines()
        .filter_map(|l| l.trim().strip_prefix("path = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .collect();
    assert_eq!(
        paths,
        [
            "./schemas/plan-include.schema.json",
            "./schemas/plan.schema.json"
        ]
    );
    for path in paths {
        assert!(root().join(path).is_file(), "{path}");
    }
}

#[test]
fn completions_know_the_review_commands() {
    let bash = plan_stdout(&["completions", "bash"]);
    for word in ["diff", "schema", "--base", "--exit-code", "--include-file"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
}
