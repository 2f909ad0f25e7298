//! `plan check PLAN...`: parse, validate and order each plan; print every problem.
//!
//! Exit 0 when every plan is valid (warnings allowed), 1 when any plan has an error.

use plan_parser::{ParseOptions, Problem, Severity, SourceFiles};
use schemars::JsonSchema;
use serde::Serialize;

use crate::args::{CheckArgs, CheckFormat};
use crate::ci_formats;
use crate::diagnostics::{self, JsonDiagnostic};
use crate::exit::ExitStatus;
use crate::load::{load, parse_options};
use crate::printer::{Printer, write_json, write_stdout};

/// The outcome for one plan file: its sources and every problem, parser and graph.
struct Checked {
    name: String,
    /// The names of the plan's pushes, when it parsed.
    pushes: Vec<String>,
    sources: SourceFiles,
    problems: Vec<Problem>,
}

impl Checked {
    fn errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity() == Severity::Error)
            .count()
    }
}

/// `plan check --format json`: whether every plan is valid, and every problem of every plan
/// in the order the plans were given.
#[derive(Serialize, JsonSchema)]
#[schemars(title = "plan check --format json")]
struct JsonReport {
    /// No plan has an error (warnings allowed).
    valid: bool,
    /// Every error and warning.
    diagnostics: Vec<JsonDiagnostic>,
}

/// The JSON Schema of `plan check --format json`.
pub(crate) fn schema() -> schemars::Schema {
    schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<JsonReport>()
}

fn check_one(path: &std::path::Path, options: &ParseOptions) -> Checked {
    let name = path.display().to_string();
    match load(path, options) {
        Ok(loaded) => Checked {
            name,
            pushes: (loaded.parsed.plan.pushes.iter())
                .map(|p| p.name.value.clone())
                .collect(),
            sources: loaded.parsed.plan.sources,
            problems: loaded.warnings,
        },
        Err(rejected) => Checked {
            name,
            pushes: Vec::new(),
            sources: rejected.sources,
            problems: rejected.problems,
        },
    }
}

pub(crate) fn run(args: &CheckArgs, printer: &Printer) -> anyhow::Result<ExitStatus> {
    let options = parse_options(&args.vars, args.api);
    let results: Vec<Checked> = args
        .plans
        .iter()
        .map(|path| check_one(path, &options))
        .collect();
    let valid = results.iter().all(|r| r.errors() == 0);

    match args.format {
        CheckFormat::Text => {
            for result in &results {
                diagnostics::print_problems(printer, &result.sources, &result.problems);
                let errors = result.errors();
                let warnings = result.problems.len() - errors;
                let summary = if errors > 0 {
                    let mut s = format!(
                        "`{}` is invalid: {}",
                        result.name,
                        diagnostics::count(errors, "error")
                    );
                    if warnings > 0 {
                        s.push_str(&format!(", {}", diagnostics::count(warnings, "warning")));
                    }
                    s
                } else if warnings > 0 {
                    format!(
                        "`{}` is valid ({})",
                        result.name,
                        diagnostics::count(warnings, "warning")
                    )
                } else {
                    format!("`{}` is valid", result.name)
                };
                if !printer.quiet || errors > 0 {
                    crate::printer::write_stderr(&format!("{summary}\n"));
                }
            }
        }
        CheckFormat::Json => {
            let report = JsonReport {
                valid,
                diagnostics: results
                    .iter()
                    .flat_map(|r| diagnostics::to_json(&r.sources, &r.problems))
                    .collect(),
            };
            write_json(&report)?;
        }
        CheckFormat::Github => {
            let mut text = String::new();
            for result in &results {
                let json = diagnostics::to_json(&result.sources, &result.problems);
                text.push_str(&diagnostics::github_annotations(&json));
            }
            write_stdout(&text)?;
        }
        CheckFormat::Codeclimate => {
            let diagnostics: Vec<JsonDiagnostic> = results
                .iter()
                .flat_map(|r| diagnostics::to_json(&r.sources, &r.problems))
                .collect();
            write_json(&ci_formats::code_quality(&diagnostics))?;
        }
        CheckFormat::Junit => {
            let plans: Vec<ci_formats::CheckedPlan<'_>> = results
                .iter()
                .map(|r| ci_formats::CheckedPlan {
                    file: &r.name,
                    pushes: r.pushes.clone(),
                    diagnostics: diagnostics::to_json(&r.sources, &r.problems),
                })
                .collect();
            write_stdout(&ci_formats::junit(&plans))?;
        }
    }
    Ok(if valid {
        ExitStatus::Success
    } else {
        ExitStatus::Invalid
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn fixtures(kind: &str) -> Vec<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/plans")
            .join(kind);
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("fixtures")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn valid_plans_check_clean_including_graph_rules() {
        let plans = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
        let mut paths = fixtures("valid");
        paths.extend(["release.toml", "logs.toml", "windows.toml"].map(|p| plans.join(p)));
        for path in paths {
            let checked = check_one(&path, &ParseOptions::default());
            assert_eq!(checked.errors(), 0, "{}", path.display());
        }
    }

    #[test]
    fn invalid_plans_report_their_code_with_a_line() {
        for path in fixtures("invalid") {
            let text = std::fs::read_to_string(&path).expect("fixture");
            let code = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .expect("expect line")
                .trim()
                .to_owned();
            let checked = check_one(&path, &ParseOptions::default());
            assert!(checked.errors() > 0, "{} should be invalid", path.display());
            let json = diagnostics::to_json(&checked.sources, &checked.problems);
            let d = json
                .iter()
                .find(|d| d.code == code)
                .unwrap_or_else(|| panic!("{}: no {code}", path.display()));
            assert!(
                d.line.is_some_and(|l| l >= 1),
                "{}: no line",
                path.display()
            );
        }
    }

    /// What `plan check` prints when piped: one `file:line:col` line per problem.
    #[test]
    fn plain_output_snapshot() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let checked = check_one(
            Path::new("tests/fixtures/plans/invalid/many_problems.toml"),
            &ParseOptions::default(),
        );
        // Tests run in the package root, so the relative path above resolves.
        assert!(
            root.join("tests/fixtures/plans/invalid/many_problems.toml")
                .exists()
        );
        let text = diagnostics::render_problems(&checked.sources, &checked.problems, false);
        insta::assert_snapshot!(text);
    }

    #[test]
    fn json_output_snapshot() {
        let checked = check_one(
            Path::new("tests/fixtures/plans/invalid/duplicate_group_across_files.toml"),
            &ParseOptions::default(),
        );
        let report = JsonReport {
            valid: checked.errors() == 0,
            diagnostics: diagnostics::to_json(&checked.sources, &checked.problems),
        };
        insta::assert_json_snapshot!(report);
    }

    #[test]
    fn graph_problems_are_reported_by_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cycle.toml");
        std::fs::write(
            &path,
            r#"[plan]
name = "cycle"
bk_biz_id = 1
account = "root"

[[push]]
name = "a"
after = ["b"]
from = { hosts = "10.0.0.1", files = ["/a"] }
to = { hosts = "10.0.0.2", path = "/t/" }

[[push]]
name = "b"
after = ["a"]
from = { hosts = "10.0.0.1", files = ["/b"] }
to = { hosts = "10.0.0.2", path = "/u/" }
"#,
        )
        .expect("write");
        let checked = check_one(&path, &ParseOptions::default());
        assert!(checked.errors() > 0);
        assert!(
            checked
                .problems
                .iter()
                .any(|p| p.code().starts_with("plan::graph::")),
            "{:?}",
            checked.problems
        );
    }
}
