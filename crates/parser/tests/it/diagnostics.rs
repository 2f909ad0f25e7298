//! One snapshot per invalid fixture: what a user sees for every rule.
//!
//! Each fixture under `tests/fixtures/plans/invalid/` starts with `# expect: <code>`; the test
//! checks that code is reported with a label, then snapshots the whole rendered diagnostic.

use std::path::{Path, PathBuf};

use plan_parser::{ParseOptions, PlanErrors, Severity, parse_file};

/// Relative to the crate (tests run there), so snapshots show a stable path.
const FIXTURES: &str = "../../tests/fixtures/plans";

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURES)
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let name = p.file_name().expect("file name").to_owned();
            Path::new(FIXTURES).join(kind).join(name)
        })
        .collect();
    files.sort();
    files
}

fn expected_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("fixture");
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect: "))
        .unwrap_or_else(|| panic!("{} has no `# expect:` line", path.display()))
        .trim()
        .to_owned()
}

fn render(diagnostic: &dyn miette::Diagnostic) -> String {
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(80)
        .render_report(&mut out, diagnostic)
        .expect("render");
    out
}

fn expect_plan_failure(path: &Path) -> PlanErrors {
    match parse_file(path, &ParseOptions::default()) {
        Ok(_) => panic!("{} should be invalid", path.display()),
        Err(errors) => errors,
    }
}

#[test]
fn invalid_fixtures() {
    let files = fixtures("invalid");
    assert!(files.len() >= 40, "fixtures missing");
    for path in files {
        let code = expected_code(&path);
        let errors = expect_plan_failure(&path);
        let problem = errors
            .problems()
            .iter()
            .find(|p| p.code() == code)
            .unwrap_or_else(|| {
                panic!(
                    "{}: expected {code}, got:\n{}",
                    path.display(),
                    render(&errors)
                )
            });
        assert!(
            problem.primary_span().is_some(),
            "{}: {code} has no label",
            path.display()
        );
        // sorted by file, then offset
        let keys: Vec<_> = errors
            .problems()
            .iter()
            .map(|p| p.primary_span().map(|s| (s.file, s.start)))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_by_key(|k| k.unwrap_or((plan_parser::FileId(u32::MAX), usize::MAX)));
        assert_eq!(keys, sorted, "{}: problems not sorted", path.display());

        let name = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        insta::assert_snapshot!(name, render(&errors));
    }
}

#[test]
fn warning_fixtures() {
    for path in fixtures("warnings") {
        let code = expected_code(&path);
        let parsed = parse_file(&path, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{} should be valid:\n{}", path.display(), render(&e)));
        assert!(
            parsed
                .warnings
                .iter()
                .all(|w| w.severity() == Severity::Warning)
        );
        assert!(
            parsed.warnings.iter().any(|w| w.code() == code),
            "{}: expected warning {code}",
            path.display()
        );
        let rendered: String = plan_parser::reports(&parsed.plan.sources, &parsed.warnings)
            .iter()
            .map(|r| render(r.as_ref()))
            .collect();
        let name = format!(
            "warning_{}",
            path.file_stem().expect("stem").to_string_lossy()
        );
        insta::assert_snapshot!(name, rendered);
    }
}

/// The line of the offending value, for a sample of rules (snapshots pin the rest).
#[test]
fn labels_point_at_the_offending_line() {
    for (fixture, code, line) in [
        (
            "unknown_key_did_you_mean.toml",
            "plan::parser::unknown_key",
            17,
        ),
        (
            "timeout_out_of_range.toml",
            "plan::parser::out_of_range",
            17,
        ),
        (
            "credential_in_plan.toml",
            "plan::parser::credential_in_plan",
            6,
        ),
        ("undefined_var.toml", "plan::parser::undefined_var", 18),
        ("v3_only_key.toml", "plan::parser::v3_only", 17),
    ] {
        let path = Path::new(FIXTURES).join("invalid").join(fixture);
        let errors = expect_plan_failure(&path);
        let p = errors
            .problems()
            .iter()
            .find(|p| p.code() == code)
            .expect("code reported");
        let span = p.primary_span().expect("label");
        assert_eq!(
            errors.sources().line_col(span.file, span.start).0,
            line,
            "{fixture}"
        );
    }
}

#[test]
fn errors_in_included_files_name_that_file() {
    let path = Path::new(FIXTURES).join("invalid/error_in_included_file.toml");
    let errors = expect_plan_failure(&path);
    let p = &errors.problems()[0];
    assert_eq!(p.code(), "plan::parser::invalid_host");
    let span = p.primary_span().expect("label");
    assert!(
        errors
            .sources()
            .get(span.file)
            .name
            .ends_with("inc/bad_host.toml")
    );
}

#[test]
fn plan_errors_render_every_problem_as_related() {
    let path = Path::new(FIXTURES).join("invalid/many_problems.toml");
    let errors = expect_plan_failure(&path);
    assert!(errors.problems().len() >= 5);
    // Long messages wrap at width 80 behind a `│` gutter: compare words, not lines.
    let words = |s: &str| {
        s.split_whitespace()
            .filter(|w| *w != "│")
            .collect::<Vec<_>>()
            .join(" ")
    };
    let text = words(&render(&errors));
    for p in errors.problems() {
        assert!(
            text.contains(&words(p.message())),
            "missing {}",
            p.message()
        );
    }
}
