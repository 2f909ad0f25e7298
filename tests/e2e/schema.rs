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
        let committed = std::fs::read_to_string(root().join(file)).expect(file);
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
    // Generated from the same types: the group and variable definitions are the plan schema's.
    for key in ["hosts", "vars"] {
        assert_eq!(doc["properties"][key], plan["properties"][key], "{key}");
    }
    let defs = doc["$defs"].as_object().expect("$defs");
    assert!(defs.contains_key("HostGroup"), "{defs:?}");
    for (name, def) in defs {
        assert_eq!(def, &plan["$defs"][name], "$defs/{name}");
    }
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

/// The schema as the `jsonschema` crate compiles it (draft 2020-12, patterns with ECMA-262
/// semantics), after checking the schema itself against the draft's meta-schema: an
/// independent validator, so it does not share the schema generator's blind spots.
fn validator(schema: &serde_json::Value) -> jsonschema::Validator {
    if let Err(e) = jsonschema::meta::validate(schema) {
        panic!("not a valid JSON Schema: {e} at {}", e.instance_path());
    }
    jsonschema::draft202012::new(schema).expect("the schema compiles")
}

/// Each violation of `toml_text` (read as TOML, then seen as JSON), as `path: problem`.
fn schema_errors(validator: &jsonschema::Validator, toml_text: &str) -> Vec<String> {
    let value: serde_json::Value = toml::from_str(toml_text).expect("TOML");
    validator
        .iter_errors(&value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn every_example_plan_and_inventory_validates_against_the_schema() {
    let plan_schema = validator(&serde_json::from_str(&plan_stdout(&["schema"])).expect("json"));
    let include_schema = validator(
        &serde_json::from_str(&plan_stdout(&["schema", "--include-file"])).expect("json"),
    );
    for dir in [
        "plans",
        "plans/inventory",
        "examples/quickstart",
        "tests/fixtures/plans/valid",
        "tests/fixtures/plans/valid/inventory",
    ] {
        // A directory that moved or emptied fails here rather than checking nothing.
        let entries = std::fs::read_dir(root().join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
        let mut checked = 0;
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let schema = if dir.ends_with("inventory") {
                &include_schema
            } else {
                &plan_schema
            };
            let text = std::fs::read_to_string(&path).expect("read");
            let errors = schema_errors(schema, &text);
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
            checked += 1;
        }
        assert!(checked > 0, "{dir}: no plan checked");
    }
}

#[test]
fn the_schema_rejects_what_the_parser_rejects() {
    let schema = validator(&serde_json::from_str(&plan_stdout(&["schema"])).expect("json"));
    let good = "[plan]\nname = \"p\"\nbk_biz_id = 2\n\n[[push]]\nname = \"a\"\nfrom = { hosts = \"0:10.0.0.1\", files = [\"/a\"] }\nto = { hosts = \"0:10.0.0.2\", path = \"/b/\" }\n";
    assert_eq!(schema_errors(&schema, good), Vec::<String>::new());
    for (bad, (why, path)) in [
        (
            good.replace("bk_biz_id = 2", "bk_biz_id = 2\ntimout = 60"),
            ("unknown key", "/plan"),
        ),
        (
            good.replace("bk_biz_id = 2", "bk_biz_id = \"2\""),
            ("wrong type", "/plan/bk_biz_id"),
        ),
        (
            good.replace("bk_biz_id = 2", "bk_biz_id = 2\ntimeout = 5"),
            ("out of range", "/plan/timeout"),
        ),
        (
            good.replace("name = \"a\"", "name = \"a b\""),
            ("bad name", "/push/0/name"),
        ),
        (
            good.replace("[plan]\n", "[plan]\nbk_app_secret = \"x\"\n"),
            ("credential", "/plan"),
        ),
        (
            good.replace("[[push]]\nname = \"a\"\n", "[[push]]\n"),
            ("missing name", "/push/0"),
        ),
        (
            good.replace("bk_biz_id = 2", "bk_biz_id = 2\napi = \"v4\""),
            ("unknown api", "/plan/api"),
        ),
        (
            good.replace("to = {", "transfer_mode = \"lax\"\nto = {"),
            ("unknown transfer mode", "/push/0/transfer_mode"),
        ),
        (
            good.replace(
                "from = { hosts = \"0:10.0.0.1\", files = [\"/a\"] }",
                "from = []",
            ),
            ("no source", "/push/0/from"),
        ),
        (
            good.replace("files = [\"/a\"]", "files = [\"/a\"], acount = \"root\""),
            ("unknown key in a source", "/push/0/from"),
        ),
        (
            format!("{good}[hosts.web]\nipz = [\"10.0.0.1\"]\n"),
            ("unknown key in a group", "/hosts/web"),
        ),
        (
            format!("{good}[hosts.\"a b\"]\nips = [\"10.0.0.1\"]\n"),
            ("bad group name", "/hosts"),
        ),
        (
            format!("{good}[hosts.web]\ntopo_nodes = [\"module\"]\n"),
            ("bad topology node", "/hosts/web/topo_nodes/0"),
        ),
        (
            format!("{good}[hosts.web]\ntopo_nodes = [{{ node_type = \"set\", id = -1 }}]\n"),
            ("negative topology node id", "/hosts/web/topo_nodes/0"),
        ),
        (
            format!("{good}[vars]\n1x = \"y\"\n"),
            ("bad variable name", "/vars"),
        ),
    ] {
        // One violation, reported where the problem is.
        let errors = schema_errors(&schema, &bad);
        let at: Vec<&str> = errors
            .iter()
            .filter_map(|e| e.split_once(": ").map(|(path, _)| path))
            .collect();
        assert_eq!(at, [path], "{why}: {errors:?}\n{bad}");
    }
}
