//! `docs/diagnostics.md` is generated from the kind enums of the parser and the graph: every
//! code with its one-line meaning. This test fails when the file is stale; run it with
//! `UPDATE_DOCS=1` to rewrite it.

use std::fmt::Write as _;
use std::path::Path;

use plan_graph::GraphErrorKind;
use plan_parser::{PLAN_INVALID, ParseErrorKind};

fn table<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::from("| code | meaning |\n|---|---|\n");
    for (code, meaning) in rows {
        let _ = writeln!(out, "| `{code}` | {} |", meaning.replace('|', "\\|"));
    }
    out
}

fn generated() -> String {
    let parser = ParseErrorKind::ALL.iter().map(|k| (k.code(), k.meaning()));
    let graph = GraphErrorKind::ALL.iter().map(|k| (k.code(), k.meaning()));
    format!(
        "# Diagnostic codes\n\n\
         <!-- Generated from `plan_parser::ParseErrorKind` and `plan_graph::GraphErrorKind` by \
         `crates/graph/tests/diagnostics_doc.rs`; do not edit. Regenerate with \
         `UPDATE_DOCS=1 cargo test -p plan-graph --test diagnostics_doc`. -->\n\n\
         Every problem `plan check` (and every command that reads a plan) reports carries one of \
         these codes. The codes are stable: they are never renamed, new ones may be added. A run \
         with errors is summarised under `{PLAN_INVALID}`.\n\n\
         ## Reading the plan (`plan::parser::*`)\n\n{}\n\
         ## Ordering the pushes (`plan::graph::*`)\n\n{}",
        table(parser),
        table(graph),
    )
}

#[test]
fn diagnostics_doc_lists_every_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/diagnostics.md");
    let expected = generated();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).expect("write docs/diagnostics.md");
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == expected,
        "docs/diagnostics.md is stale: run `UPDATE_DOCS=1 cargo test -p plan-graph --test diagnostics_doc`"
    );
    for kind in ParseErrorKind::ALL {
        assert!(written.contains(&format!("`{}`", kind.code())), "{kind:?}");
    }
    for kind in GraphErrorKind::ALL {
        assert!(written.contains(&format!("`{}`", kind.code())), "{kind:?}");
    }
}
