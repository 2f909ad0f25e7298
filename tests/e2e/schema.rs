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

/// Validates `value` against `schema`, appending `path: problem` for each violation.
///
/// Supports exactly the keywords the plan schema uses; any other keyword fails the test, so a
/// schema change can never be skipped silently here. `root` is the whole document, for `$ref`.
fn validate(
    root: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    path: &str,
    errors: &mut Vec<String>,
) {
    use serde_json::Value;
    let validate = |schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>| {
        validate(root, schema, value, path, errors);
    };
    let Value::Object(rules) = schema else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{path}: not allowed"));
        }
        return;
    };
    for (keyword, rule) in rules {
        match keyword.as_str() {
            "$schema" | "$id" | "title" | "description" | "default" | "examples" => {}
            // Definitions are checked where a `$ref` uses them.
            "$defs" => {}
            "$ref" => {
                let pointer = rule
                    .as_str()
                    .and_then(|r| r.strip_prefix('#'))
                    .unwrap_or_else(|| panic!("only local $ref: {rule}"));
                let target = root
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling $ref {rule}"));
                validate(target, value, path, errors);
            }
            "type" => {
                let ok = |t: &str| match t {
                    "object" => value.is_object(),
                    "array" => value.is_array(),
                    "string" => value.is_string(),
                    "integer" => value.is_i64() || value.is_u64(),
                    "number" => value.is_number(),
                    "boolean" => value.is_boolean(),
                    other => panic!("unknown type {other}"),
                };
                let fits = match rule {
                    Value::String(t) => ok(t),
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(ok),
                    other => panic!("type {other}"),
                };
                if !fits {
                    errors.push(format!("{path}: expected {rule}, found {value}"));
                }
            }
            "const" if value != rule => errors.push(format!("{path}: expected {rule}")),
            "enum" if !rule.as_array().expect("enum").contains(value) => {
                errors.push(format!("{path}: {value} not in {rule}"));
            }
            "const" | "enum" => {}
            "pattern" | "minLength" => {
                if let Some(s) = value.as_str() {
                    if keyword == "minLength" {
                        if (s.chars().count() as u64) < rule.as_u64().expect("minLength") {
                            errors.push(format!("{path}: too short"));
                        }
                    } else {
                        let re = regex::Regex::new(rule.as_str().expect("pattern")).expect("regex");
                        if !re.is_match(s) {
                            errors.push(format!("{path}: {s:?} does not match {rule}"));
                        }
                    }
                }
            }
            "minimum" | "maximum" => {
                if let (Some(n), Some(limit)) = (value.as_f64(), rule.as_f64()) {
                    let bad = if keyword == "minimum" {
                        n < limit
                    } else {
                        n > limit
                    };
                    if bad {
                        errors.push(format!("{path}: {n} beyond {keyword} {limit}"));
                    }
                }
            }
            "minItems" => {
                if let Some(items) = value.as_array()
                    && (items.len() as u64) < rule.as_u64().expect("minItems")
                {
                    errors.push(format!("{path}: too few items"));
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    validate(rule, item, &format!("{path}[{i}]"), errors);
                }
            }
            "required" => {
                if let Some(map) = value.as_object() {
                    for key in rule
                        .as_array()
                        .expect("required")
                        .iter()
                        .filter_map(Value::as_str)
                    {
                        if !map.contains_key(key) {
                            errors.push(format!("{path}: missing `{key}`"));
                        }
                    }
                }
            }
            "properties" | "patternProperties" | "additionalProperties" | "propertyNames" => {
                let Some(map) = value.as_object() else {
                    continue;
                };
                let known = rules.get("properties").and_then(Value::as_object);
                let patterns: Vec<(regex::Regex, &Value)> = rules
                    .get("patternProperties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(p, s)| (regex::Regex::new(p).expect("pattern regex"), s))
                    .collect();
                for (key, item) in map {
                    let child = format!("{path}.{key}");
                    match keyword.as_str() {
                        "properties" => {
                            if let Some(s) = known.and_then(|k| k.get(key)) {
                                validate(s, item, &child, errors);
                            }
                        }
                        "patternProperties" => {
                            for (_, s) in patterns.iter().filter(|(re, _)| re.is_match(key)) {
                                validate(s, item, &child, errors);
                            }
                        }
                        "additionalProperties" => {
                            let named = known.is_some_and(|k| k.contains_key(key));
                            if !named && !patterns.iter().any(|(re, _)| re.is_match(key)) {
                                validate(rule, item, &child, errors);
                            }
                        }
                        _ => validate(rule, &Value::from(key.as_str()), &child, errors),
                    }
                }
            }
            "oneOf" | "anyOf" => {
                let passing = rule
                    .as_array()
                    .expect("oneOf/anyOf")
                    .iter()
                    .filter(|s| {
                        let mut e = Vec::new();
                        validate(s, value, path, &mut e);
                        e.is_empty()
                    })
                    .count();
                let fits = if keyword == "oneOf" {
                    passing == 1
                } else {
                    passing >= 1
                };
                if !fits {
                    errors.push(format!("{path}: matches {passing} of {keyword}"));
                }
            }
            other => panic!("the test validator does not know the keyword `{other}`"),
        }
    }
}

fn schema_errors(schema: &serde_json::Value, toml_text: &str) -> Vec<String> {
    let value: serde_json::Value = toml::from_str(toml_text).expect("TOML");
    let mut errors = Vec::new();
    validate(schema, schema, &value, "$", &mut errors);
    errors
}

#[test]
fn every_example_plan_and_inventory_validates_against_the_schema() {
    let plan_schema: serde_json::Value =
        serde_json::from_str(&plan_stdout(&["schema"])).expect("json");
    let include_schema: serde_json::Value =
        serde_json::from_str(&plan_stdout(&["schema", "--include-file"])).expect("json");
    let mut checked = 0;
    for dir in [
        "plans",
        "plans/inventory",
        "examples/quickstart",
        "tests/fixtures/plans/valid",
        "tests/fixtures/plans/valid/inventory",
    ] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
            continue;
        };
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
    }
    assert!(checked >= 6, "only {checked} files checked");
}

#[test]
fn the_schema_rejects_what_the_parser_rejects() {
    let schema: serde_json::Value = serde_json::from_str(&plan_stdout(&["schema"])).expect("json");
    let good = "[plan]\nname = \"p\"\nbk_biz_id = 2\n\n[[push]]\nname = \"a\"\nfrom = { hosts = \"0:10.0.0.1\", files = [\"/a\"] }\nto = { hosts = \"0:10.0.0.2\", path = \"/b/\" }\n";
    assert_eq!(schema_errors(&schema, good), Vec::<String>::new());
    for (bad, why) in [
        (
            good.replace("bk_biz_id = 2", "bk_biz_id = 2\ntimout = 60"),
            "unknown key",
        ),
        (
            good.replace("bk_biz_id = 2", "bk_biz_id = \"2\""),
            "wrong type",
        ),
        (
            good.replace("bk_biz_id = 2", "bk_biz_id = 2\ntimeout = 5"),
            "out of range",
        ),
        (good.replace("name = \"a\"", "name = \"a b\""), "bad name"),
        (
            good.replace("[plan]\n", "[plan]\nbk_app_secret = \"x\"\n"),
            "credential",
        ),
        (
            good.replace("[[push]]\nname = \"a\"\n", "[[push]]\n"),
            "missing name",
        ),
        (
            good.replace("bk_biz_id = 2", "bk_biz_id = 2\napi = \"v4\""),
            "unknown api",
        ),
        (
            good.replace("to = {", "transfer_mode = \"lax\"\nto = {"),
            "unknown transfer mode",
        ),
        (
            good.replace(
                "from = { hosts = \"0:10.0.0.1\", files = [\"/a\"] }",
                "from = []",
            ),
            "no source",
        ),
        (
            good.replace("files = [\"/a\"]", "files = [\"/a\"], acount = \"root\""),
            "unknown key in a source",
        ),
        (
            format!("{good}[hosts.web]\nipz = [\"10.0.0.1\"]\n"),
            "unknown key in a group",
        ),
        (
            format!("{good}[hosts.\"a b\"]\nips = [\"10.0.0.1\"]\n"),
            "bad group name",
        ),
        (
            format!("{good}[hosts.web]\ntopo_nodes = [\"module\"]\n"),
            "bad topology node",
        ),
        (
            format!("{good}[hosts.web]\ntopo_nodes = [{{ node_type = \"set\", id = -1 }}]\n"),
            "negative topology node id",
        ),
        (format!("{good}[vars]\n1x = \"y\"\n"), "bad variable name"),
    ] {
        assert!(
            !schema_errors(&schema, &bad).is_empty(),
            "{why} was accepted:\n{bad}"
        );
    }
}
