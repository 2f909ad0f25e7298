//! Diagnostics in the formats CI systems read: GitLab Code Quality (Code Climate JSON) and
//! JUnit XML. Both are built from [`JsonDiagnostic`], the same shape `--format json` prints.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::diagnostics::JsonDiagnostic;

/// One Code Quality issue: the fields GitLab reads
/// (<https://docs.gitlab.com/ci/testing/code_quality/#code-quality-report-format>).
#[derive(Debug, Serialize)]
pub(crate) struct CodeQualityIssue {
    description: String,
    check_name: &'static str,
    /// Stable across pushes that do not touch the problem, so GitLab's merge-request widget
    /// tells new problems from old ones.
    fingerprint: String,
    severity: &'static str,
    location: CodeQualityLocation,
}

#[derive(Debug, Serialize)]
struct CodeQualityLocation {
    path: String,
    lines: CodeQualityLines,
}

#[derive(Debug, Serialize)]
struct CodeQualityLines {
    begin: usize,
}

/// The Code Quality report of `diagnostics`: errors are `major`, warnings `minor`.
///
/// The fingerprint hashes the file, the code, the message and how many identical problems
/// came before in that file, but not the line: a problem that only moves because lines were
/// added above it stays the same issue.
pub(crate) fn code_quality(diagnostics: &[JsonDiagnostic]) -> Vec<CodeQualityIssue> {
    let mut seen: HashMap<(String, &str, &str), usize> = HashMap::new();
    diagnostics
        .iter()
        .map(|d| {
            let path = relative_path(&d.file);
            let occurrence = seen
                .entry((path.clone(), d.code, d.message.as_str()))
                .and_modify(|n| *n += 1)
                .or_insert(0);
            let mut hasher = Sha256::new();
            for part in [path.as_str(), d.code, d.message.as_str()] {
                hasher.update(part.as_bytes());
                hasher.update([0]);
            }
            hasher.update(occurrence.to_string().as_bytes());
            let mut description = d.message.clone();
            if let Some(help) = &d.help {
                let _ = write!(description, " (help: {help})");
            }
            CodeQualityIssue {
                description,
                check_name: d.code,
                fingerprint: format!("{:x}", hasher.finalize()),
                severity: if d.severity == "error" {
                    "major"
                } else {
                    "minor"
                },
                location: CodeQualityLocation {
                    path,
                    lines: CodeQualityLines {
                        begin: d.line.unwrap_or(1),
                    },
                },
            }
        })
        .collect()
}

/// GitLab wants paths relative to the repository root: `./plans/a.toml` is `plans/a.toml`.
fn relative_path(file: &str) -> String {
    let mut path = file;
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    path.to_owned()
}

/// What `plan check` found in one plan file, for the JUnit report.
pub(crate) struct CheckedPlan<'a> {
    /// The plan file as given.
    pub(crate) file: &'a str,
    /// The plan's pushes, when it parsed.
    pub(crate) pushes: Vec<String>,
    pub(crate) diagnostics: Vec<JsonDiagnostic>,
}

/// A JUnit XML report: one `<testsuite>` per plan file, one passing `<testcase>` per push of
/// a plan that parsed, and one `<testcase>` per diagnostic: errors are `<failure>`s,
/// warnings pass with the warning in `<system-out>`. A plan with neither pushes nor
/// diagnostics still has one test case, so a suite is never empty.
pub(crate) fn junit(plans: &[CheckedPlan<'_>]) -> String {
    let mut suites = String::new();
    let (mut tests, mut failures) = (0, 0);
    for plan in plans {
        let (cases, suite_tests, suite_failures) = junit_cases(plan);
        tests += suite_tests;
        failures += suite_failures;
        let _ = writeln!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{suite_tests}\" failures=\"{suite_failures}\" errors=\"0\" skipped=\"0\">\n{cases}  </testsuite>",
            xml_escape(plan.file)
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"plan check\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">\n{suites}</testsuites>\n"
    )
}

/// The test cases of one plan, with how many there are and how many fail.
fn junit_cases(plan: &CheckedPlan<'_>) -> (String, usize, usize) {
    let class = xml_escape(plan.file);
    let mut cases = String::new();
    for push in &plan.pushes {
        let _ = writeln!(
            cases,
            "    <testcase classname=\"{class}\" name=\"push {}\"/>",
            xml_escape(push)
        );
    }
    let (mut tests, failures) = diagnostic_cases(&class, &plan.diagnostics, &mut cases);
    tests += plan.pushes.len();
    if tests == 0 {
        tests = 1;
        let _ = writeln!(
            cases,
            "    <testcase classname=\"{class}\" name=\"check\"/>"
        );
    }
    (cases, tests, failures)
}

/// A push as `plan show --format junit` reports it.
pub(crate) struct ShownPush {
    pub(crate) name: String,
    /// `stage 2, 4 hosts`.
    pub(crate) summary: String,
    /// `enabled = false` in the plan: the push is skipped.
    pub(crate) enabled: bool,
}

/// `plan show --format junit`: one `<testsuite>` for the plan, a `<testcase>` per push
/// (passing, its stage and hosts in `<system-out>`; `<skipped>` when disabled in the plan),
/// then the diagnostics as `plan check --format junit` reports them: an invalid plan has no
/// pushes, and a failure per error at its place in the file.
pub(crate) fn show_junit(
    file: &str,
    pushes: &[ShownPush],
    diagnostics: &[JsonDiagnostic],
) -> String {
    let class = xml_escape(file);
    let mut cases = String::new();
    let mut skipped = 0;
    for push in pushes {
        let name = xml_escape(&format!("push {}", push.name));
        let summary = xml_escape(&push.summary);
        if push.enabled {
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{class}\" name=\"{name}\">\n      <system-out>{summary}</system-out>\n    </testcase>"
            );
        } else {
            skipped += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{class}\" name=\"{name}\">\n      <skipped message=\"disabled in the plan\"/>\n      <system-out>{summary}</system-out>\n    </testcase>"
            );
        }
    }
    let (mut tests, failures) = diagnostic_cases(&class, diagnostics, &mut cases);
    tests += pushes.len();
    if tests == 0 {
        tests = 1;
        let _ = writeln!(cases, "    <testcase classname=\"{class}\" name=\"show\"/>");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"plan show\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">\n  <testsuite name=\"{class}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n{cases}  </testsuite>\n</testsuites>\n"
    )
}

/// One test case per diagnostic, appended to `cases`: errors are failures at their place,
/// warnings pass with the warning in `<system-out>`. Returns (tests, failures).
fn diagnostic_cases(
    class: &str,
    diagnostics: &[JsonDiagnostic],
    cases: &mut String,
) -> (usize, usize) {
    let (mut tests, mut failures) = (0, 0);
    for d in diagnostics {
        tests += 1;
        let place = match (d.line, d.column) {
            (Some(line), Some(column)) => format!("{}:{line}:{column}", d.file),
            _ => d.file.clone(),
        };
        let mut detail = format!("{place}: {}: {}", d.severity, d.message);
        if let Some(help) = &d.help {
            let _ = write!(detail, "\nhelp: {help}");
        }
        let name = xml_escape(&format!("{} at {place}", d.code));
        if d.severity == "error" {
            failures += 1;
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{class}\" name=\"{name}\">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                xml_escape(&d.message),
                d.code,
                xml_escape(&detail)
            );
        } else {
            let _ = writeln!(
                cases,
                "    <testcase classname=\"{class}\" name=\"{name}\">\n      <system-out>{}</system-out>\n    </testcase>",
                xml_escape(&detail)
            );
        }
    }
    (tests, failures)
}

/// The JUnit XML report of an apply (`plan apply --junit FILE`): one `<testsuite>` for the
/// run, one `<testcase>` per push with its duration. A failed push is a `<failure>` with
/// JOB's error and each failed host (its JOB status label and log excerpt); a push that
/// did not run (skipped, interrupted, disabled) is `<skipped>` with its status. A push
/// `--converge` found up to date passes: its targets hold what it delivers (Ansible's "ok").
pub(crate) fn apply_junit(report: &plan_executor::RunReport) -> String {
    let plan = xml_escape(&report.plan);
    let (mut cases, mut failures, mut skipped) = (String::new(), 0, 0);
    for push in &report.pushes {
        let _ = write!(
            cases,
            "    <testcase classname=\"{plan}.stage{}\" name=\"{}\" time=\"{:.3}\"",
            push.stage,
            xml_escape(&push.name),
            push.duration.as_secs_f64()
        );
        if push.status.is_failure() {
            failures += 1;
            let mut detail = push.error.clone().unwrap_or_default();
            for host in &push.failed_hosts {
                let _ = write!(detail, "\n{}: {}", host.display(), host.label);
                if let Some(log) = &host.log_excerpt {
                    let _ = write!(detail, "\n  {}", log.replace('\n', "\n  "));
                }
            }
            let _ = writeln!(
                cases,
                ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                xml_escape(push.status.label()),
                xml_escape(push.status.label()),
                xml_escape(detail.trim_start())
            );
        } else if push.status.is_ok() && push.status != plan_executor::PushStatus::Disabled {
            let _ = writeln!(cases, "/>");
        } else {
            skipped += 1;
            let _ = writeln!(
                cases,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                xml_escape(push.status.label())
            );
        }
    }
    let tests = report.pushes.len();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"plan apply\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">\n  <testsuite name=\"{plan} run {}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\">\n{cases}  </testsuite>\n</testsuites>\n",
        xml_escape(&report.run_id),
        report.duration.as_secs_f64()
    )
}

/// Text and attribute escaping; characters XML 1.0 cannot hold at all (most control
/// characters, which a hostile plan may contain) become U+FFFD.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostic(severity: &'static str, line: usize, message: &str) -> JsonDiagnostic {
        JsonDiagnostic {
            severity,
            code: "plan::parser::unknown_group",
            message: message.into(),
            file: "./plans/a.toml".into(),
            line: Some(line),
            column: Some(3),
            help: Some("did you mean `web`?".into()),
        }
    }

    #[test]
    fn code_quality_fingerprints_ignore_the_line_but_tell_duplicates_apart() {
        let moved = code_quality(&[diagnostic("error", 12, "unknown group `wbe`")]);
        let first = code_quality(&[
            diagnostic("error", 4, "unknown group `wbe`"),
            diagnostic("error", 9, "unknown group `wbe`"),
            diagnostic("warning", 9, "other"),
        ]);
        assert_eq!(moved[0].fingerprint, first[0].fingerprint);
        assert_ne!(first[0].fingerprint, first[1].fingerprint);
        let json = serde_json::to_value(&first).expect("json");
        assert_eq!(json[0]["severity"], "major");
        assert_eq!(json[2]["severity"], "minor");
        assert_eq!(json[0]["check_name"], "plan::parser::unknown_group");
        assert_eq!(json[0]["location"]["path"], "plans/a.toml");
        assert_eq!(json[0]["location"]["lines"]["begin"], 4);
        assert_eq!(
            json[0]["description"],
            "unknown group `wbe` (help: did you mean `web`?)"
        );
    }

    #[test]
    fn junit_fails_errors_passes_pushes_and_escapes_hostile_text() {
        let xml = junit(&[
            CheckedPlan {
                file: "ok.toml",
                pushes: vec!["to-web".into()],
                diagnostics: vec![diagnostic("warning", 2, "w")],
            },
            CheckedPlan {
                file: "bad.toml",
                pushes: Vec::new(),
                diagnostics: vec![diagnostic("error", 4, "<a> & \"b\" \u{1b}[31m")],
            },
            CheckedPlan {
                file: "empty.toml",
                pushes: Vec::new(),
                diagnostics: Vec::new(),
            },
        ]);
        assert!(
            xml.contains("<testsuites name=\"plan check\" tests=\"4\" failures=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"push to-web\"/>"), "{xml}");
        assert!(
            xml.contains("&lt;a&gt; &amp; &quot;b&quot; \u{FFFD}[31m"),
            "{xml}"
        );
        assert!(!xml.contains('\u{1b}'));
        assert!(xml.contains("<testcase classname=\"empty.toml\" name=\"check\"/>"));
    }
}
