//! `plan diff` for a terminal (`--format text`), and the lines the Markdown comment shares
//! with it: the labels of the two versions, push targets, causes, and the plan-level lines.

use std::fmt::Write as _;

use plan_graph::{ChangedPush, PlanDiff, PushEntry};
use plan_parser::Plan;

use super::{count, scope};

/// What the two versions are called in headings: file names, or `REV:path`.
pub(crate) struct Labels {
    pub(crate) old: String,
    pub(crate) new: String,
    /// `business 9000000 -> business set 9000000`, when the JOB scope changes kind.
    pub(crate) scope: Option<String>,
}

/// The scope line when a version runs in a business set and the other does not (a changed
/// `bk_biz_id` or `api` can make JOB read the same id as a business set), or a set changes.
pub(crate) fn scope_change(old: Option<&Plan>, new: &Plan) -> Option<String> {
    let old = old?;
    let (was, is) = (scope(old), scope(new));
    (was != is && (was.contains(" set ") || is.contains(" set ")))
        .then(|| format!("scope: {was} -> {is}"))
}

/// `hash OLD -> NEW`, `hash NEW (unchanged)`, or `hash NEW (new plan)`.
pub(crate) fn hash_line(diff: &PlanDiff) -> String {
    match &diff.old_hash {
        Some(old) if *old == diff.new_hash => format!("hash {old} (unchanged)"),
        Some(old) => format!("hash {old} -> {}", diff.new_hash),
        None => format!("hash {} (new plan)", diff.new_hash),
    }
}

/// The terminal rendering: a heading, the summary, then one section per kind of change.
pub(crate) fn render(diff: &PlanDiff, labels: &Labels) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan diff: {} ({} -> {})",
        diff.new_name, labels.old, labels.new
    );
    let _ = writeln!(out, "{}", diff.summary());
    let _ = writeln!(out, "{}", hash_line(diff));
    if !diff.attention.is_empty() {
        out.push_str("\nNeeds attention:\n");
        for item in &diff.attention {
            let _ = writeln!(out, "  ! {}", item.message());
        }
    }
    if !diff.added.is_empty() {
        out.push_str("\nAdded:\n");
        for p in &diff.added {
            let _ = writeln!(out, "  + {}", entry_line(p));
        }
    }
    if !diff.removed.is_empty() {
        out.push_str("\nRemoved:\n");
        for p in &diff.removed {
            let _ = writeln!(out, "  - {}", entry_line(p));
        }
    }
    if !diff.renamed.is_empty() {
        out.push_str("\nRenamed:\n");
        for r in &diff.renamed {
            let what = if r.fields.is_empty() {
                " (same request apart from the task name)".to_owned()
            } else {
                format!(" (same definition{})", causes_text_of(&r.causes))
            };
            let _ = writeln!(out, "  {} -> {}{what}", r.old, r.new);
            for f in &r.fields {
                let _ = writeln!(out, "      {f}");
            }
        }
    }
    if !diff.changed.is_empty() {
        out.push_str("\nChanged:\n");
        for c in &diff.changed {
            let _ = writeln!(out, "  ~ {}{}", c.name, causes_text(c));
            for f in &c.fields {
                let _ = writeln!(out, "      {f}");
            }
        }
    }
    if !diff.stage_moves.is_empty() {
        out.push_str("\nStage moves:\n");
        for m in &diff.stage_moves {
            let _ = writeln!(out, "  {}: stage {} -> {}", m.push, m.old, m.new);
        }
    }
    if !diff.edges_added.is_empty() || !diff.edges_removed.is_empty() {
        out.push_str("\nEdges:\n");
        for e in &diff.edges_added {
            let _ = writeln!(out, "  + {}", e.describe());
        }
        for e in &diff.edges_removed {
            let _ = writeln!(out, "  - {}", e.describe());
        }
    }
    let plan_lines = plan_lines(diff, labels);
    if !plan_lines.is_empty() {
        out.push_str("\nPlan, variables and host groups:\n");
        for line in plan_lines {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// `configs (stage 3) -> edge (web, relay): 2 hosts + 3 dynamic groups / topo nodes, skipped`.
fn entry_line(p: &PushEntry) -> String {
    let mut line = format!("{} (stage {}) -> {}", p.name, p.stage, targets_text(p));
    if !p.enabled {
        line.push_str(", skipped");
    }
    line
}

pub(super) fn targets_text(p: &PushEntry) -> String {
    let selectors = p.targets.dynamic_groups.len() + p.targets.topo_nodes.len();
    let mut s = count(p.targets.ips.len(), "host", "hosts");
    if selectors > 0 {
        s.push_str(&format!(
            " + {}",
            count(
                selectors,
                "dynamic group / topo node",
                "dynamic groups / topo nodes"
            )
        ));
    }
    s
}

pub(super) fn causes_text(c: &ChangedPush) -> String {
    match causes_text_of(&c.causes) {
        s if s.is_empty() => s,
        s => format!(" ({})", s.trim_start_matches(", ")),
    }
}

/// `, via group `web` (inventory.toml), variable `version``; empty without causes.
pub(super) fn causes_text_of(causes: &[plan_graph::Cause]) -> String {
    if causes.is_empty() {
        String::new()
    } else {
        let causes: Vec<String> = causes.iter().map(ToString::to_string).collect();
        format!(", via {}", causes.join(", "))
    }
}

/// Plan settings, variables and groups, one line each.
pub(super) fn plan_lines(diff: &PlanDiff, labels: &Labels) -> Vec<String> {
    let mut lines: Vec<String> = diff.settings.iter().map(ToString::to_string).collect();
    lines.extend(labels.scope.clone());
    let quoted = |v: &Option<String>| match v {
        Some(v) => format!("{v:?}"),
        None => "(unset)".to_owned(),
    };
    for v in &diff.vars {
        lines.push(format!(
            "var {}: {} -> {}",
            v.name,
            quoted(&v.old),
            quoted(&v.new)
        ));
    }
    for g in &diff.groups {
        let state = match (g.existed, g.exists) {
            (false, _) => " (new)",
            (_, false) => " (removed)",
            _ => "",
        };
        let file = g
            .file
            .as_deref()
            .map(|f| format!(" in {f}"))
            .unwrap_or_default();
        lines.push(format!(
            "group {}{state}{file}: {}",
            g.name,
            g.hosts.items().join(", ")
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Loaded;
    use crate::render::tests::{scoped, version};

    fn text_diff(old: &Loaded, new: &Loaded) -> String {
        let labels = Labels {
            old: "old.toml".into(),
            new: "new.toml".into(),
            scope: scope_change(Some(&old.parsed.plan), &new.parsed.plan),
        };
        render(
            &plan_graph::diff(Some(old.diff_side()), new.diff_side()),
            &labels,
        )
    }

    #[test]
    fn a_move_into_a_business_set_names_the_scope() {
        let old = version(&scoped(2, "v3"));
        let new = version(&scoped(9_000_000, "v3"));
        let out = text_diff(&old, &new);
        assert!(
            out.contains("  scope: business 2 -> business set 9000000\n"),
            "{out}"
        );
        // The same id under v2 is a business; v3 reads it as a set.
        let old = version(&scoped(9_000_000, "v2"));
        let out = text_diff(&old, &new);
        assert!(
            out.contains("  scope: business 9000000 -> business set 9000000\n"),
            "{out}"
        );
    }

    #[test]
    fn a_change_between_businesses_needs_no_scope_line() {
        let out = text_diff(&version(&scoped(2, "v3")), &version(&scoped(3, "v3")));
        assert!(!out.contains("scope:"), "{out}");
        assert!(out.contains("plan.bk_biz_id: 2 -> 3"), "{out}");
    }
}
