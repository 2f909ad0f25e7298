//! `plan check` as a user runs it: the built binary on plans written from the format reference.
//!
//! Each invalid plan under `tests/fixtures/check/invalid/` marks the line of its offending value
//! with a `# <- error` comment (in the included file when the error is there); the JSON output
//! must put every error on a marked line, exit 1, and name the expected code.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const DIR: &str = "tests/fixtures/check";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `plan` in `tests/fixtures/check`, so diagnostics name files relative to it.
fn plan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plan"))
        .args(args)
        .current_dir(root().join(DIR))
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .expect("run plan")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `(file, line)` of every line marked `# <- error` in `files` (paths relative to `DIR`).
fn marked(files: &[&str]) -> BTreeSet<(String, u64)> {
    let mut set = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(root().join(DIR).join(file)).expect("fixture");
        for (i, line) in text.lines().enumerate() {
            if line.contains("# <- error") {
                set.insert(((*file).to_owned(), i as u64 + 1));
            }
        }
    }
    set
}

/// The check document has exactly the keys cli.md lists, and every diagnostic too.
fn assert_contract_shape(doc: &Value) {
    let keys: BTreeSet<&str> = doc
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["valid", "diagnostics"]));
    for d in doc["diagnostics"].as_array().expect("array") {
        let keys: BTreeSet<&str> = d
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "severity", "code", "message", "file", "line", "column", "help"
            ]),
            "{d}"
        );
    }
}

fn errors(doc: &Value) -> Vec<&Value> {
    doc["diagnostics"]
        .as_array()
        .expect("array")
        .iter()
        .filter(|d| d["severity"] == "error")
        .collect()
}

#[test]
fn valid_plans_exit_0_with_warnings_allowed() {
    for (file, extra) in [
        ("valid/contract_example.toml", &[][..]),
        ("valid/ranges_and_host_ids.toml", &[]),
        ("valid/topo_nodes.toml", &[]),
        ("valid/windows_paths.toml", &[]),
        ("valid/v3_transfer_mode.toml", &[]),
        ("valid/disabled_and_retries.toml", &[]),
        ("valid/inferred_overlap.toml", &[]),
        ("valid/warnings_only.toml", &[]),
        ("valid/subtables_and_dotted_keys.toml", &[]),
        ("valid/job_path_examples.toml", &[]),
        ("valid/fanout_including_source.toml", &[]),
        (
            "valid/needs_var_override.toml",
            &["--var", "extra=more", "--var", "version=2.0"],
        ),
    ] {
        let mut args = vec!["check", file];
        args.extend_from_slice(extra);
        let text = plan(&args);
        assert_eq!(
            code(&text),
            0,
            "{file}: {}",
            String::from_utf8_lossy(&text.stderr)
        );
        args.extend(["--format", "json"]);
        let out = plan(&args);
        assert_eq!(code(&out), 0, "{file}");
        let doc = json(&out);
        assert_contract_shape(&doc);
        assert_eq!(doc["valid"], true, "{file}");
        assert!(errors(&doc).is_empty(), "{file}: {doc}");
    }
}

#[test]
fn warnings_are_printed_and_do_not_fail() {
    let out = plan(&["check", "valid/warnings_only.toml", "--format", "json"]);
    assert_eq!(code(&out), 0);
    let doc = json(&out);
    let codes: BTreeSet<&str> = doc["diagnostics"]
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["code"].as_str().expect("code"))
        .collect();
    assert_eq!(
        codes,
        BTreeSet::from([
            "plan::parser::unused_var",
            "plan::parser::unused_group",
            "plan::parser::overwriting_copies",
        ])
    );
    // the overwrite warning points at the source with two hosts, not at the one with
    // [FILESRCIP] in its target path
    let lines: Vec<u64> = doc["diagnostics"]
        .as_array()
        .expect("array")
        .iter()
        .filter(|d| d["code"] == "plan::parser::overwriting_copies")
        .map(|d| d["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, vec![16]);
}

#[test]
fn invalid_plans_exit_1_with_each_error_on_the_offending_line() {
    for (file, expected) in [
        ("invalid/toml_syntax.toml", "plan::parser::toml_syntax"),
        ("invalid/dup_key.toml", "plan::parser::toml_syntax"),
        ("invalid/wrong_type.toml", "plan::parser::wrong_type"),
        ("invalid/typo_push.toml", "plan::parser::unknown_key"),
        ("invalid/cred_plan.toml", "plan::parser::credential_in_plan"),
        ("invalid/rel_file.toml", "plan::parser::invalid_path"),
        ("invalid/win_badchar.toml", "plan::parser::invalid_path"),
        ("invalid/bad_regex.toml", "plan::parser::invalid_regex"),
        ("invalid/timeout_low.toml", "plan::parser::out_of_range"),
        ("invalid/crlf_timeout.toml", "plan::parser::out_of_range"),
        (
            "invalid/dup_delivery.toml",
            "plan::parser::duplicate_delivery",
        ),
        ("invalid/undefined_var.toml", "plan::parser::undefined_var"),
        ("invalid/after_typo.toml", "plan::parser::unknown_push"),
        ("invalid/self_dep.toml", "plan::parser::self_dependency"),
        ("invalid/v3_only.toml", "plan::parser::v3_only"),
        ("invalid/empty_target.toml", "plan::parser::no_hosts"),
        ("invalid/ipv6_nobracket.toml", "plan::parser::invalid_host"),
        ("invalid/ipv6_in_v2.toml", "plan::parser::ipv6_host_in_v2"),
        (
            "invalid/host_range_reversed.toml",
            "plan::parser::invalid_host_range",
        ),
        ("invalid/group_cycle.toml", "plan::parser::group_cycle"),
        ("invalid/cycle_explicit.toml", "plan::graph::cycle"),
        ("invalid/cycle_inferred.toml", "plan::graph::cycle"),
        ("invalid/cycle_mixed.toml", "plan::graph::cycle"),
        ("invalid/write_conflict.toml", "plan::graph::write_conflict"),
        ("invalid/conflict_dyn.toml", "plan::graph::write_conflict"),
    ] {
        let text = plan(&["check", file]);
        assert_eq!(code(&text), 1, "{file}");
        let stderr = String::from_utf8_lossy(&text.stderr);
        assert!(!stderr.contains("panicked"), "{file}: {stderr}");
        assert!(stderr.contains(expected), "{file}: {stderr}");

        let out = plan(&["check", file, "--format", "json"]);
        assert_eq!(code(&out), 1, "{file}");
        let doc = json(&out);
        assert_contract_shape(&doc);
        assert_eq!(doc["valid"], false);
        let marked = marked(&[file]);
        let errs = errors(&doc);
        assert!(
            errs.iter().any(|d| d["code"] == expected),
            "{file}: no {expected} in {doc}"
        );
        for d in &errs {
            // the file is named as given on the command line
            assert_eq!(d["file"], file, "{file}");
            let line = d["line"].as_u64().expect("line");
            assert!(
                marked.contains(&(file.to_owned(), line)),
                "{file}: {} at line {line}, expected one of {marked:?}",
                d["code"],
            );
            assert!(d["column"].as_u64().is_some_and(|c| c >= 1), "{d}");
        }
    }
}

#[test]
fn an_error_in_an_included_file_names_that_file_and_line() {
    let out = plan(&["check", "invalid/include_bad_ip.toml", "--format", "json"]);
    assert_eq!(code(&out), 1);
    let doc = json(&out);
    let errs = errors(&doc);
    assert_eq!(errs.len(), 1, "{doc}");
    assert_eq!(errs[0]["code"], "plan::parser::invalid_host");
    assert_eq!(errs[0]["file"], "invalid/inventory/bad_ip.toml");
    let marked = marked(&["invalid/inventory/bad_ip.toml"]);
    assert!(marked.contains(&(
        "invalid/inventory/bad_ip.toml".to_owned(),
        errs[0]["line"].as_u64().expect("line")
    )));
}

#[test]
fn var_overrides_are_applied_before_the_rules() {
    // without the override the plan names an undefined variable, at its line
    let out = plan(&["check", "valid/needs_var_override.toml", "--format", "json"]);
    assert_eq!(code(&out), 1);
    let doc = json(&out);
    let errs = errors(&doc);
    assert_eq!(errs.len(), 1, "{doc}");
    assert_eq!(errs[0]["code"], "plan::parser::undefined_var");
    assert_eq!(errs[0]["line"], 11);
    assert!(
        errs[0]["help"]
            .as_str()
            .is_some_and(|h| h.contains("--var extra=VALUE")),
        "{doc}"
    );

    // an override that makes a path relative is reported at the path, with the value used
    let ok = plan(&["check", "invalid/var_makes_relative.toml"]);
    assert_eq!(code(&ok), 0, "{}", String::from_utf8_lossy(&ok.stderr));
    let out = plan(&[
        "check",
        "invalid/var_makes_relative.toml",
        "--var",
        "dir=relative",
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 1);
    let doc = json(&out);
    let errs = errors(&doc);
    assert_eq!(errs.len(), 1, "{doc}");
    assert_eq!(errs[0]["code"], "plan::parser::invalid_path");
    let marked = marked(&["invalid/var_makes_relative.toml"]);
    assert!(marked.contains(&(
        "invalid/var_makes_relative.toml".to_owned(),
        errs[0]["line"].as_u64().expect("line")
    )));
    assert!(
        errs[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("relative/sub/")),
        "{doc}"
    );
}

#[test]
fn github_format_prints_one_annotation_per_diagnostic() {
    let out = plan(&[
        "check",
        "invalid/write_conflict.toml",
        "valid/warnings_only.toml",
        "--format",
        "github",
    ]);
    assert_eq!(code(&out), 1);
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        lines[0].starts_with(
            "::error file=invalid/write_conflict.toml,line=16,col=39,title=plan%3A%3Agraph%3A%3Awrite_conflict::"
        ),
        "{stdout}"
    );
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.starts_with("::warning file=valid/warnings_only.toml,line=")),
        "{stdout}"
    );
    // an annotation is one line: newlines in help are escaped
    assert!(lines.iter().all(|l| !l.contains('\r')));
}

#[test]
fn several_plans_are_checked_together() {
    let out = plan(&[
        "check",
        "valid/topo_nodes.toml",
        "invalid/wrong_type.toml",
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 1);
    let doc = json(&out);
    assert_eq!(doc["valid"], false);
    let files: BTreeSet<&str> = errors(&doc)
        .iter()
        .map(|d| d["file"].as_str().expect("file"))
        .collect();
    assert_eq!(files, BTreeSet::from(["invalid/wrong_type.toml"]));

    let text = plan(&[
        "check",
        "valid/topo_nodes.toml",
        "valid/ranges_and_host_ids.toml",
    ]);
    assert_eq!(code(&text), 0);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["check"][..],
        &["check", "valid/topo_nodes.toml", "--format", "yaml"],
        &["check", "valid/topo_nodes.toml", "--var", "novalue"],
        &["check", "valid/topo_nodes.toml", "--var", "1bad=x"],
        &["check", "valid/topo_nodes.toml", "--no-such-flag"],
    ] {
        let out = plan(args);
        assert_eq!(code(&out), 2, "{args:?}");
    }
}

#[test]
fn a_missing_plan_file_is_invalid_not_a_crash() {
    let out = plan(&["check", "no-such-plan.toml", "--format", "json"]);
    assert_eq!(code(&out), 1);
    let doc = json(&out);
    assert_eq!(doc["valid"], false);
    assert_eq!(errors(&doc)[0]["code"], "plan::parser::unreadable");
}
