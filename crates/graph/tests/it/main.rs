//! Integration tests of plan-graph on real plan files: renderings of the plans in `plans/`
//! and the diagnostics users see for cycles and write conflicts.

mod dag;
mod diagnostics;
mod generated;
mod plans;

use std::path::{Path, PathBuf};

use plan_parser::{ParseOptions, Parsed, PlanErrors, SourceLoader};

/// Reads files relative to a root, so diagnostics name them as a user in that root would.
struct RootLoader(PathBuf);

impl SourceLoader for RootLoader {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(self.0.join(path))
    }

    fn load_include(&self, plan: &Path, path: &Path) -> std::io::Result<String> {
        let root = plan_parser::include_root(&self.0.join(plan))?;
        plan_parser::read_include(&root, &self.0.join(path))
    }
}

/// Parses `plans/...` from the workspace root, anything else from `tests/fixtures/`.
fn parse(path: &str) -> Result<Parsed, PlanErrors> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = if path.starts_with("plans/") {
        dir.join("../..")
    } else {
        dir.join("tests/fixtures")
    };
    plan_parser::parse_with(Path::new(path), &RootLoader(root), &ParseOptions::default())
}

/// Renders problems as users see them (no colours, 80 columns).
fn render(errors: &PlanErrors) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(80);
    let mut out = String::new();
    for problem in errors.attached() {
        handler
            .render_report(&mut out, problem)
            .expect("rendering to a string");
    }
    out
}
