//! `plan show` for a terminal: stages, each push with its sources, targets, resolved hosts,
//! effective settings, why it waits, and the exact request body.

use std::fmt::Write as _;

use plan_graph::{EdgeKind, PlanGraph, request_for};
use plan_parser::Plan;

use super::{
    account, endpoint, push_index, resolved, scope, settings, stage_pushes, summary, written,
};

/// How many static hosts a line spells out before saying "and N more".
const HOSTS_SHOWN: usize = 12;

/// The whole text rendering (warnings are printed separately, on stderr).
pub(crate) fn render(plan: &Plan, graph: &PlanGraph) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "plan {} (api {}, {}): {}",
        plan.name.value,
        plan.api,
        scope(plan),
        summary(plan, graph)
    );
    let _ = writeln!(out, "hash {}", plan_graph::content_hash(plan, graph));
    if let Some(description) = &plan.description {
        let _ = writeln!(out, "{description}");
    }
    let index = push_index(plan);
    for stage in graph.stages() {
        let _ = writeln!(out, "\nstage {}", stage.number);
        for push in stage_pushes(plan, &index, &stage.pushes) {
            let name = &push.name.value;
            if push.enabled {
                let _ = writeln!(out, "  {name}");
            } else {
                let _ = writeln!(out, "  {name} (skipped: enabled = false)");
            }
            for edge in graph.dependencies_of(name) {
                // A skipped dependency is passed through: nothing to wait for but its own
                // dependencies.
                let skipped = if graph.is_skipped(&edge.dependency) {
                    " [skipped: nothing to wait for]"
                } else {
                    ""
                };
                match &edge.kind {
                    EdgeKind::Explicit { also: None, .. } => {
                        let _ = writeln!(out, "    waits for {} (after){skipped}", edge.dependency);
                    }
                    EdgeKind::Explicit {
                        also: Some(flow), ..
                    } => {
                        let _ = writeln!(
                            out,
                            "    waits for {} (after; also {}){skipped}",
                            edge.dependency, flow.reason
                        );
                    }
                    EdgeKind::Inferred { reason, .. } => {
                        let _ =
                            writeln!(out, "    waits for {}: {reason}{skipped}", edge.dependency);
                    }
                }
            }
            for source in &push.sources {
                let from = match &source.file_source {
                    Some(file_source) => file_source.value.to_string(),
                    None => format!(
                        "{} = {}",
                        written(&source.host_refs),
                        resolved(&source.hosts, HOSTS_SHOWN)
                    ),
                };
                let _ = writeln!(out, "    from {from}");
                for file in &source.files {
                    let _ = writeln!(out, "         {}", file.path);
                }
                // A file source takes no account (JOB reads it as the source's own).
                if source.file_source.is_none() {
                    let _ = writeln!(out, "         as {}", account(&source.account));
                }
            }
            let _ = writeln!(
                out,
                "    to   {} = {}",
                written(&push.target.host_refs),
                resolved(&push.target.hosts, HOSTS_SHOWN)
            );
            let _ = writeln!(out, "         {}", push.target.path.value);
            let _ = writeln!(out, "         as {}", account(&push.target.account));
            let _ = writeln!(out, "    with {}", settings(push));
            let body = request_for(plan, push);
            let json = serde_json::to_string(&body).unwrap_or_default();
            let _ = writeln!(out, "    request {} {json}", endpoint(plan));
        }
    }
    out
}
