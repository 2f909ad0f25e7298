//! Byte-stable renderings of a [`PlanGraph`]: Graphviz dot, Mermaid, and JSON documents.
//!
//! Stages are clusters (dot) or subgraphs (Mermaid); inferred edges are dashed (dot) or dotted
//! (`-.->`, Mermaid); skipped pushes are greyed out. Nodes and edges are written in stage, then
//! file order, so the output can be snapshot-tested and diffed.

use std::collections::HashMap;
use std::fmt::Write as _;

use plan_parser::{HostRef, HostSet, Origin, Plan, Problem, Push, Setting};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::graph::{EdgeKind, PlanGraph};
use crate::request::{JobRequest, request_for};

/// The version of the JSON documents below; bumped only on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// Push name -> file position, first definition wins.
fn positions(plan: &Plan) -> HashMap<&str, usize> {
    let mut map = HashMap::with_capacity(plan.pushes.len());
    for (i, p) in plan.pushes.iter().enumerate() {
        map.entry(p.name.value.as_str()).or_insert(i);
    }
    map
}

/// A quoted dot string.
fn dot_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Graphviz dot: one cluster per stage, inferred edges dashed and labelled with their reason,
/// skipped pushes grey and dashed.
pub fn dot(plan: &Plan, graph: &PlanGraph) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", dot_quote(&plan.name.value));
    out.push_str("  rankdir=LR;\n");
    out.push_str("  node [shape=box, fontname=\"Helvetica\"];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for stage in graph.stages() {
        let _ = writeln!(out, "  subgraph cluster_stage_{} {{", stage.number);
        let _ = writeln!(
            out,
            "    label={};",
            dot_quote(&format!("stage {}", stage.number))
        );
        out.push_str("    style=rounded;\n");
        for name in &stage.pushes {
            if graph.is_skipped(name) {
                let _ = writeln!(
                    out,
                    "    {} [label={}, style=dashed, color=gray, fontcolor=gray];",
                    dot_quote(name),
                    dot_quote(&format!("{name}\n(skipped)"))
                );
            } else {
                let _ = writeln!(out, "    {};", dot_quote(name));
            }
        }
        out.push_str("  }\n");
    }
    for edge in ordered_edges(graph) {
        match &edge.kind {
            EdgeKind::Explicit { also: None, .. } => {
                let _ = writeln!(
                    out,
                    "  {} -> {};",
                    dot_quote(&edge.dependency),
                    dot_quote(&edge.dependent)
                );
            }
            EdgeKind::Explicit {
                also: Some(flow), ..
            } => {
                let _ = writeln!(
                    out,
                    "  {} -> {} [label={}];",
                    dot_quote(&edge.dependency),
                    dot_quote(&edge.dependent),
                    dot_quote(&format!("after; also {}", flow.reason))
                );
            }
            EdgeKind::Inferred { reason, .. } => {
                let _ = writeln!(
                    out,
                    "  {} -> {} [style=dashed, label={}];",
                    dot_quote(&edge.dependency),
                    dot_quote(&edge.dependent),
                    dot_quote(reason)
                );
            }
        }
    }
    out.push_str("}\n");
    out
}

/// Edges in the order their dependents appear in stages.
fn ordered_edges(graph: &PlanGraph) -> impl Iterator<Item = &crate::Edge> {
    graph
        .stages()
        .iter()
        .flat_map(|s| s.pushes.iter())
        .flat_map(|name| graph.dependencies_of(name))
}

/// The most edges Mermaid draws with its default configuration (`maxEdges`); a bigger diagram
/// does not render at all.
pub const MERMAID_MAX_EDGES: usize = 500;

/// The transitive reduction is computed for plans up to this many pushes (its reachability
/// sets take `pushes² / 8` bytes); bigger dense plans are drawn one node per stage directly.
const REDUCTION_MAX_PUSHES: usize = 20_000;

/// Stage nodes drawn in a per-stage diagram; more stages share nodes (`stages 1–4`).
const MERMAID_MAX_STAGE_NODES: usize = 400;

/// A Mermaid diagram and how it was drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MermaidDiagram {
    /// The flowchart.
    pub text: String,
    /// True when even the transitive reduction has more than [`MERMAID_MAX_EDGES`] edges and
    /// the diagram has one node per stage (node ids `s<N>`, no push nodes).
    pub per_stage: bool,
}

/// A Mermaid flowchart: a subgraph per stage, `-->` for `after`, `-.->` for inferred file
/// flow, skipped pushes in a grey class. Node ids are `p<N>` (file position) so any push name
/// is safe; labels are quoted. See [`mermaid_diagram`] for plans with many edges.
pub fn mermaid(plan: &Plan, graph: &PlanGraph) -> String {
    mermaid_diagram(plan, graph).text
}

/// [`mermaid`], drawable by Mermaid whatever the plan: with more than [`MERMAID_MAX_EDGES`]
/// edges the diagram draws the transitive reduction (an edge `a -> c` is left out when a path
/// `a -> ... -> c` exists, so the order shown is the same), and when that is still too many,
/// one node per stage. A `%%` comment line says which.
pub fn mermaid_diagram(plan: &Plan, graph: &PlanGraph) -> MermaidDiagram {
    let total = graph.edges().len();
    let keep = if total > MERMAID_MAX_EDGES && graph.nodes.len() <= REDUCTION_MAX_PUSHES {
        Some(transitive_reduction(graph))
    } else {
        None
    };
    let kept = keep
        .as_ref()
        .map_or(total, |k| k.iter().filter(|&&k| k).count());
    if kept > MERMAID_MAX_EDGES {
        return MermaidDiagram {
            text: mermaid_per_stage(graph, total, keep.is_some().then_some(kept)),
            per_stage: true,
        };
    }
    let positions = positions(plan);
    let id = |name: &str| {
        positions
            .get(name)
            .map_or_else(|| "unknown".to_owned(), |i| format!("p{i}"))
    };
    let mut out = String::from("flowchart LR\n");
    if kept < total {
        let _ = writeln!(
            out,
            "%% {kept} of {total} edges drawn: the transitive reduction (an edge a -> c is left \
             out when a path a -> ... -> c exists)"
        );
    }
    for stage in graph.stages() {
        let _ = writeln!(
            out,
            "  subgraph s{}[\"stage {}\"]",
            stage.number, stage.number
        );
        out.push_str("    direction TB\n");
        for name in &stage.pushes {
            let label = mermaid_text(name);
            if graph.is_skipped(name) {
                let _ = writeln!(out, "    {}[\"{label} (skipped)\"]:::skipped", id(name));
            } else {
                let _ = writeln!(out, "    {}[\"{label}\"]", id(name));
            }
        }
        out.push_str("  end\n");
    }
    for id_edge in ordered_edge_ids(graph) {
        if keep.as_ref().is_some_and(|k| !k[id_edge]) {
            continue;
        }
        let edge = &graph.edges[id_edge];
        let arrow = if edge.is_inferred() { "-.->" } else { "-->" };
        let _ = writeln!(
            out,
            "  {} {arrow} {}",
            id(&edge.dependency),
            id(&edge.dependent)
        );
    }
    if plan.pushes.iter().any(|p| !p.enabled) {
        out.push_str("  classDef skipped stroke-dasharray: 5 5,color:#888;\n");
    }
    MermaidDiagram {
        text: out,
        per_stage: false,
    }
}

/// Edge ids in the order their dependents appear in stages.
fn ordered_edge_ids(graph: &PlanGraph) -> impl Iterator<Item = usize> + '_ {
    graph
        .stages()
        .iter()
        .flat_map(|s| s.pushes.iter())
        .filter_map(|name| graph.by_name.get(name))
        .flat_map(|&i| graph.nodes[i].incoming.iter().copied())
}

/// One node per stage (runs of stages sharing a node when there are very many), each stage
/// after the one before it: every push past stage 1 waits for some push of the stage before,
/// so this chain is the transitive reduction of the stages' order.
fn mermaid_per_stage(graph: &PlanGraph, total: usize, reduced: Option<usize>) -> String {
    let mut out = String::from("flowchart LR\n");
    let why = match reduced {
        Some(kept) => format!("{total} edges ({kept} in the transitive reduction)"),
        None => format!("{total} edges"),
    };
    let _ = writeln!(
        out,
        "%% {why}: more than Mermaid draws ({MERMAID_MAX_EDGES}), summarised as one node per stage"
    );
    let stages = graph.stages();
    let per_node = stages.len().div_ceil(MERMAID_MAX_STAGE_NODES).max(1);
    let groups: Vec<&[crate::Stage]> = stages.chunks(per_node).collect();
    for group in &groups {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let pushes: usize = group.iter().map(|s| s.pushes.len()).sum();
        let what = if pushes == 1 { "push" } else { "pushes" };
        if first.number == last.number {
            let _ = writeln!(
                out,
                "  s{}[\"stage {}: {pushes} {what}\"]",
                first.number, first.number
            );
        } else {
            let _ = writeln!(
                out,
                "  s{}[\"stages {}–{}: {pushes} {what}\"]",
                first.number, first.number, last.number
            );
        }
    }
    for pair in groups.windows(2) {
        let _ = writeln!(out, "  s{} --> s{}", pair[0][0].number, pair[1][0].number);
    }
    out
}

/// `keep[edge id]`: false for an edge `a -> c` implied by a longer path `a -> ... -> c`.
///
/// Nodes are visited from the last stage back; a node's successors in stage order, each kept
/// only when no earlier successor already reaches it (every edge climbs at least one stage, so
/// a successor that reaches another comes first). Reachability sets are bitsets:
/// `O(edges x pushes / 64)` time.
fn transitive_reduction(graph: &PlanGraph) -> Vec<bool> {
    let n = graph.nodes.len();
    let words = n.div_ceil(64);
    let mut reach: Vec<Vec<u64>> = vec![Vec::new(); n];
    let mut keep = vec![false; graph.edges.len()];
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(graph.nodes[i].stage));
    let mut successors: Vec<(usize, usize, usize)> = Vec::new();
    for u in order {
        successors.clear();
        // Edge ids are the petgraph edge indices (added in id order).
        successors.extend(graph.nodes[u].outgoing.iter().filter_map(|&e| {
            let (_, v) = graph
                .graph
                .edge_endpoints(petgraph::graph::EdgeIndex::new(e))?;
            Some((graph.nodes[v.index()].stage, v.index(), e))
        }));
        successors.sort_unstable();
        let mut covered = vec![0u64; words];
        for &(_, v, e) in &successors {
            if covered[v / 64] & (1 << (v % 64)) != 0 {
                continue;
            }
            keep[e] = true;
            covered[v / 64] |= 1 << (v % 64);
            for (c, r) in covered.iter_mut().zip(&reach[v]) {
                *c |= r;
            }
        }
        reach[u] = covered;
    }
    keep
}

/// Text safe inside a quoted Mermaid label.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            // `#` first: an entity code is `#name;`, so a literal `#` must not start one.
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// How an edge came to be, as the JSON documents spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EdgeOrigin {
    /// An `after` entry (possibly also a file flow).
    Explicit,
    /// Inferred from a file flow only.
    Inferred,
}

/// One edge of `graph --format json` (and of `diff --format json`'s `edges`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct EdgeEntry<'a> {
    /// The push that runs first.
    pub(crate) from: &'a str,
    /// The push that waits for it.
    pub(crate) to: &'a str,
    pub(crate) kind: EdgeOrigin,
    /// Why a file flow orders the two; absent on a plain `after` entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'a str>,
}

impl<'a> EdgeEntry<'a> {
    fn of(edge: &'a crate::Edge) -> Self {
        let (kind, reason) = match &edge.kind {
            EdgeKind::Explicit { also, .. } => (
                EdgeOrigin::Explicit,
                also.as_ref().map(|f| f.reason.as_str()),
            ),
            EdgeKind::Inferred { reason, .. } => (EdgeOrigin::Inferred, Some(reason.as_str())),
        };
        EdgeEntry {
            from: &edge.dependency,
            to: &edge.dependent,
            kind,
            reason,
        }
    }
}

/// One stage: its number and its pushes in file order.
#[derive(Debug, Serialize, JsonSchema)]
struct StageEntry<'a> {
    /// 1-based.
    stage: usize,
    pushes: &'a [String],
}

fn stage_entries(graph: &PlanGraph) -> Vec<StageEntry<'_>> {
    graph
        .stages()
        .iter()
        .map(|s| StageEntry {
            stage: s.number,
            pushes: &s.pushes,
        })
        .collect()
}

/// `plan graph --format json`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(title = "plan graph --format json")]
pub(crate) struct GraphDocument<'a> {
    /// [`FORMAT_VERSION`].
    format_version: u32,
    /// The plan's name.
    plan: &'a str,
    stages: Vec<StageEntry<'a>>,
    /// Every push, in file order.
    nodes: Vec<GraphNode<'a>>,
    edges: Vec<EdgeEntry<'a>>,
}

/// One push of `graph --format json`.
#[derive(Debug, Serialize, JsonSchema)]
struct GraphNode<'a> {
    name: &'a str,
    /// `null` only for a push the graph does not know (a repeated name).
    stage: Option<usize>,
    /// False for a skipped push (`enabled = false`).
    enabled: bool,
    /// Pushes on the longest chain from this one to the end, itself included.
    longest_remaining_path: Option<usize>,
}

impl<'a> GraphDocument<'a> {
    fn new(plan: &'a Plan, graph: &'a PlanGraph) -> Self {
        let nodes = plan
            .pushes
            .iter()
            .map(|p| GraphNode {
                name: &p.name.value,
                stage: graph.stage_of(&p.name.value),
                enabled: p.enabled,
                longest_remaining_path: graph.longest_remaining_path(&p.name.value),
            })
            .collect();
        GraphDocument {
            format_version: FORMAT_VERSION,
            plan: &plan.name.value,
            stages: stage_entries(graph),
            nodes,
            edges: graph.edges().iter().map(EdgeEntry::of).collect(),
        }
    }
}

/// `plan graph --format json`: stages, nodes and edges.
pub fn graph_json(plan: &Plan, graph: &PlanGraph) -> Value {
    to_value(&GraphDocument::new(plan, graph))
}

/// A document as a JSON value; serialising these plain structs cannot fail.
fn to_value(document: &impl Serialize) -> Value {
    serde_json::to_value(document).unwrap_or(Value::Null)
}

/// The hosts as written, for display: group names and host strings.
pub fn written_hosts(refs: &[HostRef]) -> Vec<String> {
    refs.iter()
        .map(|r| match r {
            HostRef::Group(g) => g.value.clone(),
            HostRef::Host(h) => h.value.to_string(),
            HostRef::Range(r) => r.value.to_string(),
            HostRef::HostId(id) => id.value.to_string(),
        })
        .collect()
}

/// What a set of hosts resolves to: static hosts as `cloud:ip`, dynamic group ids, topo nodes.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ResolvedHosts<'a> {
    /// Static hosts, `cloud:ip`.
    ips: Vec<String>,
    /// CMDB host ids (`bk_host_id`, v3); left out when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    host_ids: Vec<i64>,
    /// CMDB dynamic group ids.
    dynamic_groups: &'a [String],
    /// CMDB topology nodes, `kind:id`.
    topo_nodes: Vec<String>,
}

impl<'a> ResolvedHosts<'a> {
    pub(crate) fn of(hosts: &'a HostSet) -> Self {
        ResolvedHosts {
            ips: hosts.ips.iter().map(ToString::to_string).collect(),
            host_ids: hosts.host_ids.iter().map(|id| id.0).collect(),
            dynamic_groups: &hosts.dynamic_groups,
            topo_nodes: hosts.topo_nodes.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Where an effective setting comes from.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum OriginName {
    /// Written on the push.
    Push,
    /// Inherited from `[plan]`.
    Plan,
}

/// An effective setting with its origin.
#[derive(Debug, Serialize, JsonSchema)]
struct SettingEntry<T> {
    value: T,
    origin: OriginName,
}

impl<'a, T> SettingEntry<&'a T> {
    fn of(setting: &'a Setting<T>) -> Self {
        SettingEntry {
            value: &setting.value,
            origin: match setting.origin {
                Origin::Push => OriginName::Push,
                Origin::Plan => OriginName::Plan,
            },
        }
    }
}

/// The values `severity` takes, for the schema.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "only its schema is used")]
enum SeverityName {
    Error,
    Warning,
}

/// One problem as machine-readable output spells it (the `check --format json` shape).
#[derive(Debug, Serialize, JsonSchema)]
struct ProblemEntry {
    #[schemars(with = "SeverityName")]
    severity: &'static str,
    /// The stable code, e.g. `plan::graph::overwrite`.
    code: &'static str,
    message: String,
    /// The file of the primary label (the plan file when the problem has no label).
    file: Option<String>,
    /// 1-based line of the primary label's start; `null` without a label.
    line: Option<usize>,
    /// 1-based column (in characters) of the primary label's start.
    column: Option<usize>,
    help: Option<String>,
}

/// One problem as machine-readable output spells it (the `check --format json` shape).
pub fn problem_json(plan: &Plan, problem: &Problem) -> Value {
    to_value(&problem_entry(plan, problem, &mut |file, offset| {
        plan.sources.line_col(file, offset)
    }))
}

/// Line starts of each source file, built once, so placing many problems does not scan the
/// file from its start for each one (`SourceFiles::line_col` does).
#[derive(Default)]
struct LineIndex {
    starts: HashMap<plan_parser::FileId, Vec<usize>>,
}

impl LineIndex {
    /// The same answer as `SourceFiles::line_col`: 1-based line and column in characters.
    fn line_col(
        &mut self,
        plan: &Plan,
        file: plan_parser::FileId,
        offset: usize,
    ) -> (usize, usize) {
        let text = &plan.sources.get(file).text;
        let starts = self.starts.entry(file).or_insert_with(|| {
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        let mut offset = offset.min(text.len());
        while offset > 0 && !text.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line start at or before the offset.
        let line = starts.partition_point(|&s| s <= offset).max(1);
        let column = text[starts[line - 1]..offset].chars().count() + 1;
        (line, column)
    }
}

fn problem_entry(
    plan: &Plan,
    problem: &Problem,
    line_col: &mut dyn FnMut(plan_parser::FileId, usize) -> (usize, usize),
) -> ProblemEntry {
    let position = problem
        .primary_span()
        .filter(|s| plan.sources.iter().any(|(id, _)| id == s.file));
    let (file, line, column) = match position {
        Some(span) => {
            let (line, column) = line_col(span.file, span.start);
            (
                Some(plan.sources.get(span.file).name.clone()),
                Some(line),
                Some(column),
            )
        }
        // Like `check --format json`: a problem without a label belongs to the plan file.
        None => (
            plan.sources.iter().next().map(|(_, f)| f.name.clone()),
            None,
            None,
        ),
    };
    ProblemEntry {
        severity: problem.severity().as_str(),
        code: problem.code(),
        message: problem.message().to_owned(),
        file,
        line,
        column,
        help: problem.help().map(str::to_owned),
    }
}

/// One push of `show --format json`.
#[derive(Debug, Serialize, JsonSchema)]
struct ShowPush<'a> {
    name: &'a str,
    stage: Option<usize>,
    /// False for a skipped push (`enabled = false`).
    enabled: bool,
    /// Every push it waits for, `after` and inferred.
    depends_on: Vec<&'a str>,
    /// The pushes of its `after` entries.
    after: Vec<&'a str>,
    /// The pushes it waits for because it reads what they deliver.
    inferred: Vec<InferredDependency<'a>>,
    sources: Vec<SourceEntry<'a>>,
    target: TargetEntry<'a>,
    settings: PushSettings<'a>,
    /// Gate, verification, callback and rolling; left out when the push has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    release: Option<crate::show_release::ReleaseEntry<'a>>,
    /// Pushes on the longest chain from this one to the end, itself included.
    longest_remaining_path: Option<usize>,
    /// The exact JOB request body `plan apply` sends (`fast_push_file` in v2,
    /// `fast_transfer_file` in v3).
    #[schemars(with = "Value")]
    request: JobRequest,
}

/// A dependency inferred from a file flow.
#[derive(Debug, Serialize, JsonSchema)]
struct InferredDependency<'a> {
    /// The push that delivers what this one reads.
    after: &'a str,
    reason: &'a str,
}

/// One `from` table.
#[derive(Debug, Serialize, JsonSchema)]
struct SourceEntry<'a> {
    /// The hosts as written (group names and host strings).
    hosts: Vec<String>,
    resolved: ResolvedHosts<'a>,
    /// A JOB file source read instead of hosts (`file source CODE` or `file source #ID`);
    /// left out for hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file_source: Option<String>,
    files: Vec<&'a str>,
    account: SettingEntry<&'a String>,
}

/// The `to` table.
#[derive(Debug, Serialize, JsonSchema)]
struct TargetEntry<'a> {
    /// The hosts as written (group names and host strings).
    hosts: Vec<String>,
    resolved: ResolvedHosts<'a>,
    path: &'a str,
    /// The name the one delivered file gets; left out when files keep their names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file_target_name: Option<&'a str>,
    account: SettingEntry<&'a String>,
}

/// The push's effective settings; `null` when neither the push nor `[plan]` sets one.
#[derive(Debug, Serialize, JsonSchema)]
struct PushSettings<'a> {
    /// Seconds.
    timeout: Option<SettingEntry<&'a u32>>,
    /// MB/s.
    upload_speed_limit: Option<SettingEntry<&'a u32>>,
    /// MB/s.
    download_speed_limit: Option<SettingEntry<&'a u32>>,
    /// `force` or `strict`.
    transfer_mode: Option<&'static str>,
    retries: u8,
}

impl<'a> ShowPush<'a> {
    fn new(plan: &'a Plan, graph: &'a PlanGraph, push: &'a Push) -> Self {
        let name = &push.name.value;
        let deps: Vec<&crate::Edge> = graph.dependencies_of(name).collect();
        ShowPush {
            name,
            stage: graph.stage_of(name),
            enabled: push.enabled,
            depends_on: deps.iter().map(|e| e.dependency.as_str()).collect(),
            after: deps
                .iter()
                .filter(|e| !e.is_inferred())
                .map(|e| e.dependency.as_str())
                .collect(),
            inferred: deps
                .iter()
                .filter_map(|e| {
                    e.file_flow_reason().map(|reason| InferredDependency {
                        after: &e.dependency,
                        reason,
                    })
                })
                .collect(),
            sources: push.sources.iter().map(SourceEntry::of).collect(),
            target: TargetEntry::of(&push.target),
            settings: PushSettings::of(push),
            release: crate::show_release::ReleaseEntry::of(push, plan.api),
            longest_remaining_path: graph.longest_remaining_path(name),
            request: request_for(plan, push),
        }
    }
}

impl<'a> SourceEntry<'a> {
    fn of(source: &'a plan_parser::Source) -> Self {
        SourceEntry {
            hosts: written_hosts(&source.host_refs),
            resolved: ResolvedHosts::of(&source.hosts),
            file_source: source.file_source.as_ref().map(|f| f.value.to_string()),
            files: source.files.iter().map(|f| f.path.as_str()).collect(),
            account: SettingEntry::of(&source.account),
        }
    }
}

impl<'a> TargetEntry<'a> {
    fn of(target: &'a plan_parser::Target) -> Self {
        TargetEntry {
            hosts: written_hosts(&target.host_refs),
            resolved: ResolvedHosts::of(&target.hosts),
            path: &target.path.value,
            file_target_name: target.file_target_name.as_ref().map(|n| n.value.as_str()),
            account: SettingEntry::of(&target.account),
        }
    }
}

impl<'a> PushSettings<'a> {
    fn of(push: &'a Push) -> Self {
        PushSettings {
            timeout: push.timeout.as_ref().map(SettingEntry::of),
            upload_speed_limit: push.upload_speed_limit.as_ref().map(SettingEntry::of),
            download_speed_limit: push.download_speed_limit.as_ref().map(SettingEntry::of),
            transfer_mode: push.transfer_mode.as_ref().map(|m| m.value.as_str()),
            retries: push.retries,
        }
    }
}

/// `plan show --format json`: the versioned dry-run document of `design/cli.md`.
#[derive(Serialize, JsonSchema)]
#[schemars(title = "plan show --format json")]
pub(crate) struct ShowDocument<'a> {
    /// [`FORMAT_VERSION`].
    format_version: u32,
    /// The plan's name.
    plan: &'a str,
    description: Option<&'a str>,
    /// `v2` or `v3`.
    api: &'static str,
    bk_biz_id: i64,
    /// The content hash (`sha256:...`) over what `apply` sends and in what order:
    /// `plan apply PLAN --expect` it to apply exactly this document.
    hash: String,
    stages: Vec<StageEntry<'a>>,
    /// The parser's and the graph's warnings, sorted.
    warnings: Vec<ProblemEntry>,
    /// Every push, in stage order, file order within a stage.
    #[schemars(with = "Vec<ShowPush<'static>>")]
    pushes: ShowPushes<'a>,
}

/// The pushes of a show document, serialised one at a time as they are made: a dense plan's
/// document holds every dependency of every push, and building it whole first takes several
/// times its size.
struct ShowPushes<'a> {
    plan: &'a Plan,
    graph: &'a PlanGraph,
}

impl Serialize for ShowPushes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (plan, graph) = (self.plan, self.graph);
        serializer.collect_seq(
            graph
                .stages()
                .iter()
                .flat_map(|s| s.pushes.iter())
                .filter_map(|name| graph.by_name.get(name.as_str()))
                .map(|&i| ShowPush::new(plan, graph, &plan.pushes[i])),
        )
    }
}

impl<'a> ShowDocument<'a> {
    /// `warnings` are the parser's; the graph's own warnings are added and all are sorted.
    fn new(plan: &'a Plan, graph: &'a PlanGraph, warnings: &[Problem]) -> Self {
        let mut all: Vec<Problem> = warnings.iter().chain(graph.warnings()).cloned().collect();
        plan_parser::sort_problems(&mut all);
        let mut lines = LineIndex::default();
        let warnings = all
            .iter()
            .map(|p| {
                problem_entry(plan, p, &mut |file, offset| {
                    lines.line_col(plan, file, offset)
                })
            })
            .collect();
        ShowDocument {
            format_version: FORMAT_VERSION,
            plan: &plan.name.value,
            description: plan.description.as_deref(),
            api: plan.api.as_str(),
            bk_biz_id: plan.bk_biz_id.value,
            hash: crate::content_hash(plan, graph),
            stages: stage_entries(graph),
            warnings,
            pushes: ShowPushes { plan, graph },
        }
    }
}

/// `plan show --format json`: the versioned document of `design/cli.md`.
///
/// `warnings` are the parser's; the graph's own warnings are added. Pushes are listed in stage
/// order, file order within a stage. [`write_show_json`] writes the same document without
/// holding all of it in memory.
pub fn show_json(plan: &Plan, graph: &PlanGraph, warnings: &[Problem]) -> Value {
    to_value(&ShowDocument::new(plan, graph, warnings))
}

/// Writes [`show_json`] pretty-printed (exactly `serde_json::to_string_pretty` of it, without
/// the final newline), one push at a time.
///
/// # Errors
/// Whatever writing to `out` returns.
pub fn write_show_json(
    plan: &Plan,
    graph: &PlanGraph,
    warnings: &[Problem],
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    serde_json::to_writer_pretty(out, &ShowDocument::new(plan, graph, warnings))
        .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::plan;

    /// The quoted strings of one dot line are closed on that line: every `"` not escaped
    /// pairs up.
    fn dot_quotes_balanced(line: &str) -> bool {
        let mut open = false;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' if open => {
                    chars.next();
                }
                '"' => open = !open,
                _ => {}
            }
        }
        !open
    }

    #[test]
    fn dot_and_mermaid_quote_whatever_names_and_paths_hold() {
        let p = plan()
            .push(
                "a\"<x>#1",
                &[(&["10.9.9.9"], &["/x/q\"\\\n.tgz"])],
                (&["10.0.0.1"], "/st\"a\\ge/"),
                &[],
            )
            .push(
                "b",
                &[(&["10.0.0.1"], &["/st\"a\\ge/q\"\\\n.tgz"])],
                (&["10.0.0.2"], "/o/"),
                &[],
            )
            .build();
        let g = crate::build(&p).expect("valid");
        assert_eq!(g.edges().len(), 1);

        let dot = dot(&p, &g);
        for line in dot.lines() {
            assert!(dot_quotes_balanced(line), "{line}\n{dot}");
        }
        assert!(
            dot.contains(
                r#"label="reads /st\"a\\ge/q\"\\\n.tgz on 0:10.0.0.1, which a\"<x>#1 delivers""#
            ),
            "{dot}"
        );
        // Lines: header 4, two clusters of 4 + 1 node each, one edge, the closing brace.
        assert_eq!(dot.lines().count(), 4 + 2 * 5 + 1 + 1, "{dot}");

        let mermaid = mermaid(&p, &g);
        assert!(
            mermaid.contains("p0[\"a#quot;#lt;x#gt;#35;1\"]"),
            "{mermaid}"
        );
        for line in mermaid.lines() {
            assert!(line.matches('"').count() % 2 == 0, "{line}");
        }
    }

    /// `layers` layers of `width` pushes; each push runs after every push of every earlier
    /// layer (`all`) or of the layer just before it.
    fn layered(layers: usize, width: usize, all: bool) -> plan_parser::Plan {
        let mut p = plan();
        for l in 0..layers {
            for w in 0..width {
                let first = if all { 0 } else { l.saturating_sub(1) * width };
                let after: Vec<String> = (first..l * width).map(|i| format!("n{i}")).collect();
                let after: Vec<&str> = after.iter().map(String::as_str).collect();
                let name = format!("n{}", l * width + w);
                let target = format!("/t{}/", l * width + w);
                p = p.push(
                    &name,
                    &[(&["10.9.9.9"], &["/x/a"])],
                    (&["10.0.0.1"], &target),
                    &after,
                );
            }
        }
        p.build()
    }

    fn edge_lines(mermaid: &str) -> usize {
        mermaid.lines().filter(|l| l.contains("-->")).count()
    }

    #[test]
    fn mermaid_over_500_edges_draws_the_transitive_reduction() {
        // 40 pushes, each after all before it: 780 edges, a chain of 39 once reduced.
        let p = layered(40, 1, true);
        let g = crate::build(&p).expect("valid");
        assert_eq!(g.edges().len(), 780);
        let d = mermaid_diagram(&p, &g);
        assert!(!d.per_stage);
        assert_eq!(edge_lines(&d.text), 39, "{}", d.text);
        assert!(d.text.contains("  p0 --> p1\n") && d.text.contains("  p38 --> p39\n"));
        assert!(!d.text.contains("  p0 --> p2\n"));
        assert!(
            d.text
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("%% 39 of 780 edges drawn")),
            "{}",
            d.text
        );
    }

    #[test]
    fn mermaid_at_500_edges_or_fewer_draws_every_edge() {
        // 32 pushes, each after all before it: 496 edges, all drawn.
        let p = layered(32, 1, true);
        let g = crate::build(&p).expect("valid");
        let d = mermaid_diagram(&p, &g);
        assert_eq!(edge_lines(&d.text), 496);
        assert!(!d.text.contains("%%"));
    }

    #[test]
    fn mermaid_summarises_per_stage_when_the_reduction_is_too_big() {
        // Three layers of 20, each push after the whole layer before: 800 edges, none implied.
        let p = layered(3, 20, false);
        let g = crate::build(&p).expect("valid");
        assert_eq!(g.edges().len(), 800);
        let d = mermaid_diagram(&p, &g);
        assert!(d.per_stage);
        assert_eq!(
            d.text,
            "flowchart LR\n\
             %% 800 edges (800 in the transitive reduction): more than Mermaid draws (500), \
             summarised as one node per stage\n  \
             s1[\"stage 1: 20 pushes\"]\n  s2[\"stage 2: 20 pushes\"]\n  \
             s3[\"stage 3: 20 pushes\"]\n  s1 --> s2\n  s2 --> s3\n"
        );
    }

    #[test]
    fn transitive_reduction_keeps_exactly_the_edges_no_longer_path_implies() {
        // a -> b -> c, a -> c (implied), d -> c (not implied), a -> d: a -> c is still implied.
        let p = plan()
            .push(
                "a",
                &[(&["10.9.9.9"], &["/x/a"])],
                (&["10.0.0.1"], "/ta/"),
                &[],
            )
            .push(
                "b",
                &[(&["10.9.9.9"], &["/x/a"])],
                (&["10.0.0.1"], "/tb/"),
                &["a"],
            )
            .push(
                "d",
                &[(&["10.9.9.9"], &["/x/a"])],
                (&["10.0.0.1"], "/td/"),
                &["a"],
            )
            .push(
                "c",
                &[(&["10.9.9.9"], &["/x/a"])],
                (&["10.0.0.1"], "/tc/"),
                &["a", "b", "d"],
            )
            .build();
        let g = crate::build(&p).expect("valid");
        let keep = transitive_reduction(&g);
        let kept: Vec<(String, String)> = g
            .edges()
            .iter()
            .zip(&keep)
            .filter(|&(_, &k)| k)
            .map(|(e, _)| (e.dependency.clone(), e.dependent.clone()))
            .collect();
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            kept,
            [
                pair("a", "b"),
                pair("a", "d"),
                pair("b", "c"),
                pair("d", "c")
            ]
        );
    }

    #[test]
    fn streamed_show_json_is_the_document_byte_for_byte() {
        let mut p = plan()
            .push(
                "a",
                &[(&["10.9.9.9"], &["/x/a"])],
                (&["10.0.0.1"], "/stage/"),
                &[],
            )
            .push(
                "b",
                &[(&["10.0.0.1"], &["/stage/a"])],
                (&["10.0.0.2"], "/o/"),
                &["a"],
            )
            .push(
                "c",
                &[(&["10.0.0.2"], &["/o/a"])],
                (&["10.0.0.3"], "/p/"),
                &[],
            )
            .build();
        p.pushes[0].enabled = false;
        p.description = Some("d\u{e9}scription".into());
        let g = crate::build(&p).expect("valid");
        assert!(!g.warnings().is_empty());
        let whole = serde_json::to_string_pretty(&show_json(&p, &g, &[])).expect("json");
        let mut streamed = Vec::new();
        write_show_json(&p, &g, &[], &mut streamed).expect("write");
        assert_eq!(String::from_utf8(streamed).expect("utf-8"), whole);
    }

    #[test]
    fn the_line_index_places_offsets_like_line_col() {
        let mut sources = plan_parser::SourceFiles::default();
        let text = "ab\n\u{e9}t\u{e9}\n\n[x]\r\nz";
        let id = sources.add("t.toml", text.to_owned());
        let mut p = plan().build();
        p.sources = sources;
        let mut index = LineIndex::default();
        for offset in 0..=text.len() + 2 {
            assert_eq!(
                index.line_col(&p, id, offset),
                p.sources.line_col(id, offset),
                "offset {offset}"
            );
        }
    }
}
