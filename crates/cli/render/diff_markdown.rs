//! `plan diff --format markdown`: a pull-request comment.
//!
//! Layout: a marker line (a bot finds and updates its comment by it), the summary, what needs
//! attention, a table of the pushes that changed, the ordering and plan-level changes, the new
//! version's stage diagram with changes coloured, and the details folded. Like `plan show`'s
//! comment it stays under [`LIMIT`] characters, dropping details first, never cutting a table.

use std::fmt::Write as _;

use plan_graph::{Attention, Change, FieldChange, PlanDiff, PlanGraph};
use plan_parser::Plan;

use super::diff_text::{Labels, causes_text, hash_line, plan_lines, targets_text};
use super::markdown::{LIMIT, code, diagram, fenced, push_diagram, text, visible_breaks};

/// Members of one list spelled out in a table cell before "and N more".
const ITEMS_SHOWN: usize = 6;
/// Rows of the push table (and lines of the other lists) in the compact forms, tried in turn.
const ROWS_COMPACT: [usize; 3] = [100, 30, 10];
/// Field changes listed in one table row before "and N more".
const FIELDS_SHOWN: usize = 8;
/// Attention items listed before "and N more".
const ATTENTION_SHOWN: usize = 30;

/// How much of the comment to write: everything, without the folded details and the diagram,
/// or only the summary and what needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Full,
    /// No diagram or details; at most this many rows per list.
    Compact(usize),
    Summary,
}

impl Level {
    /// How many of `total` rows to show.
    fn rows(self, total: usize) -> usize {
        match self {
            Level::Compact(rows) => rows.min(total),
            Level::Full | Level::Summary => total,
        }
    }
}

/// The pull-request comment: a marker line, the summary, what needs attention, a table of
/// the pushes that changed, the stage diagram, and the details folded. It stays under
/// [`LIMIT`] characters by dropping the details and the diagram first, then everything but
/// the summary, never cutting a table in the middle.
pub(crate) fn render(diff: &PlanDiff, plan: &Plan, graph: &PlanGraph, labels: &Labels) -> String {
    let levels = std::iter::once(Level::Full).chain(ROWS_COMPACT.map(Level::Compact));
    for level in levels {
        let out = markdown_at(diff, plan, graph, labels, level);
        if out.len() < LIMIT {
            return out;
        }
    }
    markdown_at(diff, plan, graph, labels, Level::Summary)
}

fn markdown_at(
    diff: &PlanDiff,
    plan: &Plan,
    graph: &PlanGraph,
    labels: &Labels,
    level: Level,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "<!-- plan:diff {} -->", diff.new_name);
    let _ = writeln!(out, "### `plan diff`: {}\n", text(&diff.new_name));
    let _ = writeln!(
        out,
        "**{}** · {} → {}",
        text(&diff.summary()),
        code(&labels.old),
        code(&labels.new)
    );
    // The hidden line is for scripts (examples/ci): the hash `plan apply --expect` takes.
    let _ = writeln!(
        out,
        "\n<!-- plan:hash {} {} -->",
        diff.new_name, diff.new_hash
    );
    let _ = writeln!(out, "{}", code(&hash_line(diff)));

    if !diff.attention.is_empty() {
        let serious = diff.attention.iter().any(|a| {
            matches!(
                a,
                Attention::Removed { .. } | Attention::LostOrdering { .. }
            )
        });
        let _ = writeln!(
            out,
            "\n> [!{}]\n> **Needs attention** ({}):",
            if serious { "CAUTION" } else { "WARNING" },
            diff.attention.len()
        );
        for item in diff.attention.iter().take(ATTENTION_SHOWN) {
            let _ = writeln!(out, "> - {}", inline(&item.message()));
        }
        if diff.attention.len() > ATTENTION_SHOWN {
            let _ = writeln!(
                out,
                "> - and {} more",
                diff.attention.len() - ATTENTION_SHOWN
            );
        }
    }

    if level == Level::Summary {
        let _ = writeln!(
            out,
            "\n_The full diff is too long for a comment: `plan diff --format json` prints all of it._"
        );
        return out;
    }

    let rows = push_rows(diff, graph);
    if !rows.is_empty() {
        out.push_str("\n| | push | stage | what changes |\n|---|---|---|---|\n");
        let shown = level.rows(rows.len());
        for row in rows.iter().take(shown) {
            out.push_str(row);
        }
        if rows.len() > shown {
            let _ = writeln!(
                out,
                "\n_…and {} more, not shown to keep this comment short._",
                rows.len() - shown
            );
        }
    }
    if !diff.edges_added.is_empty() || !diff.edges_removed.is_empty() {
        out.push_str("\n**Ordering**\n\n");
        let edges = diff
            .edges_added
            .iter()
            .map(|e| ("+", e))
            .chain(diff.edges_removed.iter().map(|e| ("−", e)));
        let total = diff.edges_added.len() + diff.edges_removed.len();
        let shown = level.rows(total);
        for (sign, e) in edges.take(shown) {
            let _ = writeln!(
                out,
                "- {sign} {} → {} ({})",
                code(&e.dependency),
                code(&e.dependent),
                text(e.reason.as_deref().unwrap_or("after"))
            );
        }
        if total > shown {
            let _ = writeln!(out, "- and {} more", total - shown);
        }
    }

    let plan_lines = plan_lines(diff, labels);
    if !plan_lines.is_empty() {
        out.push_str("\n**Plan, variables and host groups**\n\n");
        let shown = level.rows(plan_lines.len());
        for line in plan_lines.iter().take(shown) {
            let _ = writeln!(out, "- {}", text(&cap_line(line)).replace(" -&gt; ", " → "));
        }
        if plan_lines.len() > shown {
            let _ = writeln!(out, "- and {} more", plan_lines.len() - shown);
        }
    }

    if level == Level::Full {
        let _ = write!(
            out,
            "\n{}",
            fenced("mermaid", &diff_diagram(diff, plan, graph))
        );
        details(&mut out, diff);
    } else {
        let _ = writeln!(
            out,
            "\n_The stage diagram and request bodies are left out to keep this comment short; `plan diff --format json` prints everything._"
        );
    }
    out
}

/// One table row per added, removed, renamed and changed push, in that order.
fn push_rows(diff: &PlanDiff, graph: &PlanGraph) -> Vec<String> {
    let mut rows = Vec::new();
    for p in &diff.added {
        rows.push(format!(
            "| ➕ added | {} | {} | to {}{} |\n",
            code(&p.name),
            p.stage,
            text(&targets_text(p)),
            if p.enabled { "" } else { " _(skipped)_" }
        ));
    }
    for p in &diff.removed {
        rows.push(format!(
            "| ➖ removed | {} | {} | was sent to {} |\n",
            code(&p.name),
            p.stage,
            text(&targets_text(p))
        ));
    }
    for r in &diff.renamed {
        let mut cells = field_cells(&r.fields);
        if cells.is_empty() {
            cells.push("same request".to_owned());
        }
        if !r.causes.is_empty() {
            let causes: Vec<String> = r.causes.iter().map(ToString::to_string).collect();
            cells.push(format!("_via {}_", inline(&causes.join(", "))));
        }
        rows.push(format!(
            "| ✏️ renamed | {} → {} | {} | {} |\n",
            code(&r.old),
            code(&r.new),
            stage_cell(diff, graph, &r.new),
            cells.join("<br>")
        ));
    }
    for c in &diff.changed {
        let mut cells = field_cells(&c.fields);
        if !c.causes.is_empty() {
            let causes: Vec<String> = c.causes.iter().map(ToString::to_string).collect();
            cells.push(format!("_via {}_", inline(&causes.join(", "))));
        }
        rows.push(format!(
            "| 🔄 changed | {} | {} | {} |\n",
            code(&c.name),
            stage_cell(diff, graph, &c.name),
            cells.join("<br>")
        ));
    }
    for m in &diff.stage_moves {
        let listed = diff.changed.iter().any(|c| c.name == m.push)
            || diff.renamed.iter().any(|r| r.new == m.push);
        if !listed {
            rows.push(format!(
                "| ↕️ moved | {} | **{} → {}** | runs in another stage; its request is unchanged |\n",
                code(&m.push),
                m.old,
                m.new
            ));
        }
    }
    rows
}

/// `2`, or `2 → 3` when the push moved.
fn stage_cell(diff: &PlanDiff, graph: &PlanGraph, name: &str) -> String {
    match diff.stage_moves.iter().find(|m| m.push == name) {
        Some(m) => format!("**{} → {}**", m.old, m.new),
        None => graph
            .stage_of(name)
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

/// The field changes of one row, at most [`FIELDS_SHOWN`].
fn field_cells(fields: &[FieldChange]) -> Vec<String> {
    let mut cells: Vec<String> = fields.iter().take(FIELDS_SHOWN).map(field_cell).collect();
    if fields.len() > FIELDS_SHOWN {
        cells.push(format!("and {} more fields", fields.len() - FIELDS_SHOWN));
    }
    cells
}

/// One field change in a table cell, long lists capped.
fn field_cell(f: &FieldChange) -> String {
    let body = match &f.change {
        Change::Value { .. } | Change::Order => {
            let full = f.to_string();
            let rest = full.split_once(": ").map_or(full.as_str(), |(_, r)| r);
            text(&cap(rest, 120)).replace(" -&gt; ", " → ")
        }
        Change::Items { added, removed } => {
            let items: Vec<String> = added
                .iter()
                .map(|a| format!("+{a}"))
                .chain(removed.iter().map(|r| format!("−{r}")))
                .collect();
            let mut shown: Vec<String> = items.iter().take(ITEMS_SHOWN).map(|i| code(i)).collect();
            if items.len() > ITEMS_SHOWN {
                shown.push(format!("and {} more", items.len() - ITEMS_SHOWN));
            }
            shown.join(" ")
        }
    };
    format!("{}: {body}", code(&f.path))
}

/// A group line's item list capped to keep the comment short.
fn cap_line(line: &str) -> String {
    cap(line, 300)
}

fn cap(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// Markdown-safe text that keeps `code` spans written with backticks.
///
/// A span is a backtick, text without one, and a backtick; a backtick that opens nothing (an
/// empty pair, or one in a path the message quotes) stays literal text, escaped.
fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('`') {
        out.push_str(&text(&rest[..open]));
        let after = &rest[open + 1..];
        match after.find('`') {
            Some(close) if close > 0 => {
                out.push_str(&code(&after[..close]));
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&text("`"));
                rest = after;
            }
        }
    }
    out.push_str(&text(rest));
    out
}

/// The new version's stage diagram with added and changed pushes coloured, and removed pushes
/// drawn apart. Big plans get show's one-node-per-stage diagram, uncoloured.
fn diff_diagram(diff: &PlanDiff, plan: &Plan, graph: &PlanGraph) -> String {
    let Some(mut out) = push_diagram(plan, graph) else {
        return diagram(plan, graph);
    };
    let id = |name: &str| plan.pushes.iter().position(|p| p.name.value == name);
    let mut classes: Vec<(&str, Vec<String>)> = vec![
        (
            "added",
            diff.added
                .iter()
                .filter_map(|p| id(&p.name))
                .map(|i| format!("p{i}"))
                .collect(),
        ),
        (
            "changed",
            diff.changed
                .iter()
                .map(|c| c.name.as_str())
                .chain(diff.renamed.iter().map(|r| r.new.as_str()))
                .filter_map(id)
                .map(|i| format!("p{i}"))
                .collect(),
        ),
    ];
    if !diff.removed.is_empty() {
        out.push_str("  subgraph removed[\"removed\"]\n    direction TB\n");
        for (i, p) in diff.removed.iter().enumerate() {
            let _ = writeln!(out, "    r{i}[\"{}\"]", p.name.replace('"', "#quot;"));
        }
        out.push_str("  end\n");
        classes.push((
            "removed",
            (0..diff.removed.len()).map(|i| format!("r{i}")).collect(),
        ));
    }
    for (class, ids) in &classes {
        if ids.is_empty() {
            continue;
        }
        let style = match *class {
            "added" => "fill:#e6ffec,stroke:#1a7f37",
            "changed" => "fill:#fff8c5,stroke:#9a6700",
            _ => "fill:#ffebe9,stroke:#cf222e,stroke-dasharray: 5 5",
        };
        let _ = writeln!(out, "  class {} {class}", ids.join(","));
        let _ = writeln!(out, "  classDef {class} {style};");
    }
    out
}

/// Folded details: each changed push's fields as a `diff` block, then the request bodies of
/// added and removed pushes.
fn details(out: &mut String, diff: &PlanDiff) {
    if !diff.changed.is_empty() || diff.renamed.iter().any(|r| !r.fields.is_empty()) {
        let mut block = String::new();
        for r in diff.renamed.iter().filter(|r| !r.fields.is_empty()) {
            let _ = writeln!(block, "  {} (renamed from {})", r.new, r.old);
            for f in &r.fields {
                diff_lines(&mut block, f);
            }
        }
        for c in &diff.changed {
            let causes = visible_breaks(&causes_text(c).replace('`', ""));
            let _ = writeln!(block, "  {}{causes}", c.name);
            for f in &c.fields {
                diff_lines(&mut block, f);
            }
        }
        let _ = write!(
            out,
            "\n<details><summary>Changed fields</summary>\n\n{}</details>\n",
            fenced("diff", &block)
        );
    }
    for (title, entries) in [("Added", &diff.added), ("Removed", &diff.removed)] {
        if entries.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n<details><summary>{title} pushes: request bodies</summary>\n"
        );
        for p in entries.iter() {
            let body = serde_json::to_string_pretty(&p.request).unwrap_or_default();
            let _ = writeln!(out, "{}\n\n{}", code(&p.name), fenced("json", &body));
        }
        out.push_str("</details>\n");
    }
}

/// A field change as `-`/`+` lines GitHub colours.
fn diff_lines(out: &mut String, f: &FieldChange) {
    let json = |v: &Option<serde_json::Value>| match v {
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
        None => "(unset)".to_owned(),
    };
    match &f.change {
        Change::Value { old, new } => {
            let _ = writeln!(out, "-     {}: {}", f.path, json(old));
            let _ = writeln!(out, "+     {}: {}", f.path, json(new));
        }
        // A member is one line whatever it holds: a newline in a path would start a line the
        // block colours as something else.
        Change::Items { added, removed } => {
            for r in removed {
                let _ = writeln!(out, "-     {}: {}", f.path, visible_breaks(r));
            }
            for a in added {
                let _ = writeln!(out, "+     {}: {}", f.path, visible_breaks(a));
            }
        }
        Change::Order => {
            let _ = writeln!(out, "!     {}: same members, new order", f.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::version;

    #[test]
    fn hostile_paths_keep_the_comment_intact() {
        use crate::render::markdown::tests::{HOSTILE, code_spans, fenced_blocks, table_rows};
        let old = version(HOSTILE);
        let new_text = HOSTILE
            .replace("/x/app|v1.tgz", "/x/app|v2\\n```\\n+ok.tgz")
            .replace(
                "[[push]]",
                "[[push]]\nname = \"gone\"\nfrom = { hosts = \"10.0.0.9\", files = [\"/y/z.tgz\"] }\nto = { hosts = \"10.0.0.8\", path = \"/q/`x`|\\n/\" }\n\n[[push]]",
            );
        let new = version(&new_text);
        // Both directions: one adds a push, the other removes it.
        for (old, new) in [(&old, &new), (&new, &old)] {
            let labels = Labels {
                old: "old.toml".into(),
                new: "new.toml".into(),
                scope: None,
            };
            let diff = plan_graph::diff(Some(old.diff_side()), new.diff_side());
            let doc = render(&diff, &new.parsed.plan, &new.graph, &labels);
            let rows = table_rows(&doc);
            assert!(rows.len() >= 4, "{doc}");
            let blocks = fenced_blocks(&doc);
            let infos: Vec<&str> = blocks.iter().map(|(i, _)| i.as_str()).collect();
            assert_eq!(infos, ["mermaid", "diff", "json"], "{doc}");
            for line in blocks[1].1.lines() {
                assert!(
                    line.starts_with(['-', '+', '!', ' ']),
                    "a line the diff block does not colour as ours: {line:?}\n{doc}"
                );
            }
            assert!(
                blocks[1].1.contains("/x/app|v2\\n```\\n+ok.tgz"),
                "{}",
                blocks[1].1
            );
            let body: serde_json::Value = serde_json::from_str(&blocks[2].1).expect("json");
            assert_eq!(body["file_target_path"], "/q/`x`|\n/");
            let changed = rows
                .iter()
                .find(|r| r[0].contains("changed"))
                .unwrap_or_else(|| panic!("{doc}"));
            assert!(
                code_spans(&changed[3])
                    .iter()
                    .any(|s| s.contains("/x/app|v2\\n```\\n+ok.tgz")),
                "{doc}"
            );
        }
    }

    #[test]
    fn inline_keeps_code_spans_and_escapes_stray_backticks() {
        assert_eq!(inline("push `a` reads `/x/b`"), "push `a` reads `/x/b`");
        assert_eq!(
            inline("the path \"/x/```y\" has"),
            "the path \"/x/\\`\\`\\`y\" has"
        );
        assert_eq!(inline("a | b"), "a \\| b");
    }

    /// Three layers of 20 pushes, each after the whole layer before: 800 edges.
    pub(crate) fn dense_layers(extra: &str) -> String {
        let mut toml =
            String::from("[plan]\nname = \"dense\"\nbk_biz_id = 2\naccount = \"root\"\n");
        for i in 0..60 {
            let after: Vec<String> = (if i < 20 {
                0..0
            } else {
                (i / 20 - 1) * 20..(i / 20) * 20
            })
            .map(|j| format!("\"n{j}\""))
            .collect();
            toml.push_str(&format!(
                "[[push]]\nname = \"n{i}\"\nafter = [{}]\nfrom = {{ hosts = \"10.9.9.9\", files = [\"/x/a{extra}\"] }}\nto = {{ hosts = \"10.0.0.1\", path = \"/t{i}/\" }}\n",
                after.join(", ")
            ));
        }
        toml
    }

    #[test]
    fn a_diagram_summarised_per_stage_gets_no_push_classes() {
        let old = version(&dense_layers(""));
        let new = version(&dense_layers("b"));
        let diff = plan_graph::diff(Some(old.diff_side()), new.diff_side());
        assert_eq!(diff.changed.len(), 60);
        let diagram = diff_diagram(&diff, &new.parsed.plan, &new.graph);
        assert!(diagram.contains("one node per stage"), "{diagram}");
        assert!(!diagram.contains("class "), "{diagram}");
        assert!(!diagram.contains("p0"), "{diagram}");
    }
}
