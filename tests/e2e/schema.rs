//! `plan schema`: the committed schemas under `schemas/` are what the binary prints, and the
//! editor configuration points at them.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn plan_stdout(args: &[&str]) -> String {
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

/// A completion script piped into a reader that is already gone (`plan completions zsh |
/// head`) ends quietly, as every command's output does, instead of panicking.
#[test]
fn completions_into_a_closed_pipe_do_not_panic() {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_plan"))
        .args(["completions", "zsh"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run plan");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The schema as the `jsonschema` crate compiles it (draft 2020-12, patterns with ECMA-262
/// semantics), after checking the schema itself against the draft's meta-schema: an
/// independent validator, so it does not share the schema generator's blind spots.
pub(crate) fn validator(schema: &serde_json::Value) -> jsonschema::Validator {
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
            good.replace("bk_biz_id = 2", "bk_biz_id = 2\ntimeout = 0"),
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

/// Every plan file under `dir`, recursively, sorted.
fn plans_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() && path.file_name().is_some_and(|n| n != "sandbox") {
            found.extend(plans_under(&path));
        } else if path.extension().is_some_and(|e| e == "toml") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// Each violation of `value`, as `path: problem`.
pub(crate) fn violations(
    validator: &jsonschema::Validator,
    value: &serde_json::Value,
) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn check_json_of_every_fixture_validates_against_its_schema() {
    let schema = validator(
        &serde_json::from_str(&plan_stdout(&["schema", "--output", "check"])).expect("json"),
    );
    let plans: Vec<_> = ["examples", "plans", "tests/fixtures/plans"]
        .iter()
        .flat_map(|dir| plans_under(&root().join(dir)))
        .collect();
    assert!(plans.len() > 80, "{plans:?}");
    let (mut valid, mut invalid) = (0, 0);
    for plan in &plans {
        let out = Command::new(env!("CARGO_BIN_EXE_plan"))
            .args(["check", "--format", "json"])
            .arg(plan)
            .current_dir(root())
            .output()
            .expect("run plan");
        let document: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let problems = violations(&schema, &document);
        assert!(problems.is_empty(), "{}: {problems:#?}", plan.display());
        if document["valid"] == true {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    // Both shapes were seen: clean documents and documents full of diagnostics.
    assert!(
        valid > 5 && invalid > 50,
        "{valid} valid, {invalid} invalid"
    );
    // And the schema is not a formality: a severity nobody writes is refused.
    let wrong = serde_json::json!({"valid": false, "diagnostics": [{
        "severity": "fatal", "code": "plan::parser::x", "message": "m", "file": "f",
        "line": null, "column": null, "help": null,
    }]});
    assert!(!violations(&schema, &wrong).is_empty());
}

#[test]
fn apply_events_and_journal_lines_validate_against_their_schemas() {
    let events = validator(
        &serde_json::from_str(&plan_stdout(&["schema", "--output", "events"])).expect("json"),
    );
    let journal = validator(
        &serde_json::from_str(&plan_stdout(&["schema", "--output", "journal"])).expect("json"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    crate::apply::copy_dir(&root().join("examples/quickstart"), dir.path());
    let apply = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_plan"))
            .current_dir(dir.path())
            .env("PLAN_NO_PROGRESS", "1")
            .args(["apply", "plan.toml", "--sandbox", "sandbox", "--yes"])
            .args(["--state-dir", "state", "--format", "json"])
            .args(extra)
            .output()
            .expect("run plan");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            crate::apply::text(&out.stderr)
        );
        crate::apply::text(&out.stdout)
    };
    let mut kinds = std::collections::BTreeSet::new();
    for stream in [apply(&["--dry-run"]), apply(&[])] {
        for line in stream.lines() {
            let event: serde_json::Value = serde_json::from_str(line).expect(line);
            let problems = violations(&events, &event);
            assert!(problems.is_empty(), "{line}: {problems:#?}");
            kinds.insert(event["event"].as_str().unwrap_or_default().to_owned());
        }
    }
    for kind in [
        "apply_started",
        "dry_run",
        "run_started",
        "push_finished",
        "run_finished",
    ] {
        assert!(kinds.contains(kind), "no {kind} among {kinds:?}");
    }
    let runs = dir.path().join("state/runs/quickstart");
    let mut lines = 0;
    for entry in std::fs::read_dir(&runs).expect("journal dir").flatten() {
        let text = std::fs::read_to_string(entry.path()).expect("journal");
        for line in text.lines() {
            let record: serde_json::Value = serde_json::from_str(line).expect(line);
            let problems = violations(&journal, &record);
            assert!(problems.is_empty(), "{line}: {problems:#?}");
            lines += 1;
        }
    }
    assert!(lines >= 5, "{lines} journal lines in {}", runs.display());
}

/// `plan ARGS` run from the repository root: its stdout as JSON when it succeeds.
fn json_output(args: &[&std::ffi::OsStr]) -> Option<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_plan"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run plan");
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).expect("json"))
}

fn output_validator(output: &str) -> jsonschema::Validator {
    validator(&serde_json::from_str(&plan_stdout(&["schema", "--output", output])).expect("json"))
}

#[test]
fn show_graph_and_diff_json_of_every_fixture_validate_against_their_schemas() {
    let (show, graph, diff) = (
        output_validator("show"),
        output_validator("graph"),
        output_validator("diff"),
    );
    let plans: Vec<_> = ["examples", "plans", "tests/fixtures/plans"]
        .iter()
        .flat_map(|dir| plans_under(&root().join(dir)))
        .collect();
    let mut shown = Vec::new();
    for plan in &plans {
        let Some(document) =
            json_output(&["show".as_ref(), plan.as_ref(), "--format=json".as_ref()])
        else {
            continue;
        };
        let problems = violations(&show, &document);
        assert!(
            problems.is_empty(),
            "show {}: {problems:#?}",
            plan.display()
        );
        let document = json_output(&["graph".as_ref(), plan.as_ref(), "--format=json".as_ref()])
            .expect("graph succeeds where show does");
        let problems = violations(&graph, &document);
        assert!(
            problems.is_empty(),
            "graph {}: {problems:#?}",
            plan.display()
        );
        shown.push(plan);
    }
    assert!(shown.len() >= 10, "{shown:?}");

    // Each shown plan against itself (no changes) and against the next one (many changes).
    let (mut changed, mut unchanged) = (0, 0);
    let pairs = shown
        .iter()
        .zip(&shown)
        .chain(shown.iter().zip(shown.iter().skip(1)));
    for (old, new) in pairs {
        let args = [
            "diff".as_ref(),
            old.as_os_str(),
            new.as_os_str(),
            "--format=json".as_ref(),
        ];
        let document = json_output(&args).expect("diff of two valid plans succeeds");
        let problems = violations(&diff, &document);
        assert!(
            problems.is_empty(),
            "diff {} {}: {problems:#?}",
            old.display(),
            new.display()
        );
        if document["has_changes"] == true {
            changed += 1;
        } else {
            unchanged += 1;
        }
    }
    assert!(
        changed > 10 && unchanged > 10,
        "{changed} changed, {unchanged} unchanged"
    );

    // And the schemas are not formalities: kinds nobody writes are refused.
    let mut wrong = json_output(&[
        "graph".as_ref(),
        shown[0].as_os_str(),
        "--format=json".as_ref(),
    ])
    .expect("graph");
    wrong["nodes"][0]["enabled"] = "yes".into();
    assert!(!violations(&graph, &wrong).is_empty());
    let mut wrong = json_output(&[
        "diff".as_ref(),
        shown[0].as_os_str(),
        shown[1].as_os_str(),
        "--format=json".as_ref(),
    ])
    .expect("diff");
    wrong["attention"] = serde_json::json!([{"kind": "bogus", "message": "m"}]);
    assert!(!violations(&diff, &wrong).is_empty());
    let mut wrong = json_output(&[
        "show".as_ref(),
        shown[0].as_os_str(),
        "--format=json".as_ref(),
    ])
    .expect("show");
    wrong["warnings"] = serde_json::json!([{
        "severity": "fatal", "code": "plan::graph::x", "message": "m", "file": null,
        "line": null, "column": null, "help": null,
    }]);
    assert!(!violations(&show, &wrong).is_empty());
}
