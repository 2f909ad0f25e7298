//! From a validated [`Plan`] to a [`PlanGraph`]: explicit and inferred edges, cycles, stages,
//! write conflicts.
//!
//! Inference follows "Ordering: explicit and inferred" in the plan format: B runs after A when
//! a source of B shares a host selector with A's target and B may read something A delivers:
//! the delivered file itself, something under a directory A delivers, or a name a pattern
//! could match. Reading a sibling of a delivered file makes no edge. How reads and deliveries
//! are matched, and at what cost, is `infer.rs`.
//!
//! Nothing here compares every pair of pushes. Conflicts are found by grouping deliveries by (host selector, directory, name) and checking
//! only neighbours in topological order within a group.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;

use rustc_hash::{FxHashMap, FxHashSet};

use petgraph::graph::{DiGraph, NodeIndex};
use plan_parser::{HostSet, Plan, PlanErrors, Problem, Push, Span};

use crate::graph::{Edge, EdgeKind, FileFlow, Node, PlanGraph, Stage};
use crate::hosts::{HostKey, keys, written_name, written_name_in};
use crate::infer::infer;
use crate::kind::GraphErrorKind;
use crate::path::{EntryKind, NormEntry, target_dir};

/// Orders the pushes of a plan.
///
/// # Errors
/// [`PlanErrors`] with one problem per cycle (`plan::graph::cycle`, the whole path, a label at
/// each edge's origin), per push that depends on itself (`plan::graph::self_dependency`) and
/// per pair of unordered pushes that can write the same file (`plan::graph::write_conflict`).
/// Warnings found along the way are included with the errors, or kept in
/// [`PlanGraph::warnings`] when the plan is valid.
pub fn build(plan: &Plan) -> Result<PlanGraph, PlanErrors> {
    let pushes = &plan.pushes;
    let n = pushes.len();
    let mut problems = Vec::new();

    let mut by_name = BTreeMap::new();
    for (i, push) in pushes.iter().enumerate() {
        by_name.entry(push.name.value.clone()).or_insert(i);
    }
    let targets: Vec<Cow<'_, str>> = pushes
        .iter()
        .map(|p| target_dir(&p.target.path.value))
        .collect();
    let entries: Vec<Vec<Vec<NormEntry>>> = pushes
        .iter()
        .map(|p| {
            p.sources
                .iter()
                .map(|s| {
                    let renamed = p.target.file_target_name.as_ref().map(|n| n.value.as_str());
                    s.files
                        .iter()
                        .map(|f| NormEntry::new(&f.path).delivered_as(renamed))
                        .collect()
                })
                .collect()
        })
        .collect();

    // Phase 1: the edges, explicit (`after`) first so they win over inferred ones.
    let mut self_dependent = vec![false; n];
    let mut edge_list = explicit_edges(pushes, &by_name, &mut self_dependent, &mut problems);
    inferred_edges(
        plan,
        &targets,
        &entries,
        &mut self_dependent,
        &mut edge_list,
        &mut problems,
    );
    let wiring = wire(pushes, merge_edges(edge_list), &mut problems);

    // Phase 2: cycles. Nothing past this point runs on a cyclic or otherwise invalid plan.
    let mut graph = DiGraph::<usize, usize>::with_capacity(n, wiring.edges.len());
    for i in 0..n {
        graph.add_node(i);
    }
    for (id, &(a, b)) in wiring.ends.iter().enumerate() {
        graph.add_edge(NodeIndex::new(a), NodeIndex::new(b), id);
    }
    let cycles = find_cycles(plan, &graph, &wiring.edges, &wiring.ends, &wiring.outgoing);
    let has_errors = !cycles.is_empty() || has_error(&problems);
    problems.extend(cycles);
    if has_errors {
        return Err(PlanErrors::new(plan.sources.clone(), problems));
    }

    // Phase 3: stages, then write conflicts (which need the stages).
    let (stage, remaining) = stage_numbers(n, &wiring);
    let stages = stages_of(pushes, &stage);
    problems.extend(find_conflicts(
        plan,
        &targets,
        &entries,
        &stage,
        &wiring.outgoing,
        &wiring.ends,
    ));
    if has_error(&problems) {
        return Err(PlanErrors::new(plan.sources.clone(), problems));
    }
    problems.sort_by_key(|p| p.primary_span());

    // Phase 4: the graph.
    let Wiring {
        edges,
        mut incoming,
        mut outgoing,
        ..
    } = wiring;
    let nodes = pushes
        .iter()
        .enumerate()
        .map(|(i, p)| Node {
            name: p.name.value.clone(),
            enabled: p.enabled,
            stage: stage[i],
            remaining: remaining[i],
            incoming: std::mem::take(&mut incoming[i]),
            outgoing: std::mem::take(&mut outgoing[i]),
        })
        .collect();
    Ok(PlanGraph {
        nodes,
        by_name,
        edges,
        stages,
        graph,
        warnings: problems,
    })
}

fn has_error(problems: &[Problem]) -> bool {
    problems
        .iter()
        .any(|p| p.severity() == plan_parser::Severity::Error)
}

/// `(dependent, dependency)` and the edge between them.
type EdgeEntry = ((usize, usize), EdgeKind);

/// The edges `after` writes; a push naming itself or an unknown push is a problem instead.
fn explicit_edges(
    pushes: &[Push],
    by_name: &BTreeMap<String, usize>,
    self_dependent: &mut [bool],
    problems: &mut Vec<Problem>,
) -> Vec<EdgeEntry> {
    let n = pushes.len();
    let mut edge_list: Vec<((usize, usize), EdgeKind)> = Vec::with_capacity(n);
    for (b, push) in pushes.iter().enumerate() {
        for after in &push.after {
            match by_name.get(&after.value) {
                Some(&a) if a == b => {
                    if !std::mem::replace(&mut self_dependent[b], true) {
                        problems.push(
                            Problem::error(
                                GraphErrorKind::SelfDependency.code(),
                                format!("push `{}` depends on itself", push.name.value),
                            )
                            .with_label(after.span, "a push cannot run after itself")
                            .with_help("remove this entry from `after`"),
                        );
                    }
                }
                Some(&a) => {
                    edge_list.push((
                        (b, a),
                        EdgeKind::Explicit {
                            span: after.span,
                            also: None,
                        },
                    ));
                }
                None => problems.push(
                    Problem::error(
                        GraphErrorKind::UnknownDependency.code(),
                        format!(
                            "push `{}` runs after unknown push `{}`",
                            push.name.value, after.value
                        ),
                    )
                    .with_label(after.span, "no push with this name"),
                ),
            }
        }
    }

    edge_list
}

/// The edges inferred from what each push may read of what another delivers, appended to
/// `edge_list`; a push that may read its own delivery is a problem instead.
fn inferred_edges<'a>(
    plan: &'a Plan,
    targets: &'a [Cow<'a, str>],
    entries: &'a [Vec<Vec<NormEntry<'a>>>],
    self_dependent: &mut [bool],
    edge_list: &mut Vec<EdgeEntry>,
    problems: &mut Vec<Problem>,
) {
    let pushes = &plan.pushes;
    // Every edge names the group it reads through: hashed once here, the plan's ordered map
    // of groups was searched name by name for each edge.
    let group_hosts: FxHashMap<&str, &HostSet> = plan
        .groups
        .iter()
        .map(|(name, group)| (name.as_str(), &group.hosts))
        .collect();
    for found in infer(plan, targets, entries) {
        let (a, b) = (found.dependency, found.dependent);
        let reader = &pushes[b];
        let source = &reader.sources[found.source];
        let file = &source.files[found.file];
        let via = written_name_in(
            |name| group_hosts.get(name).copied(),
            &source.host_refs,
            found.key,
        );
        if a == b {
            if !std::mem::replace(&mut self_dependent[b], true) {
                let itself = format!("`{}` itself", reader.name.value);
                problems.push(
                    Problem::error(
                        GraphErrorKind::SelfDependency.code(),
                        format!("push `{}` depends on itself", reader.name.value),
                    )
                    .with_label(
                        file.span,
                        found.why.sentence(reader, &file.path, &via, &itself),
                    )
                    .with_label(reader.target.path.span, "delivered here")
                    .with_help(
                        "read from hosts the push does not deliver to, or deliver outside the \
                         directories it reads",
                    ),
                );
            }
            continue;
        }
        let reason = found
            .why
            .sentence(&pushes[a], &file.path, &via, &pushes[a].name.value);
        edge_list.push((
            (b, a),
            EdgeKind::Inferred {
                reason,
                may_read: found.why.may,
                read_span: file.span,
                path_span: pushes[a].target.path.span,
                file: file.path.clone(),
                via,
            },
        ));
    }
}

/// One edge per pair of pushes.
fn merge_edges(mut edge_list: Vec<EdgeEntry>) -> Vec<EdgeEntry> {
    // Stable: an explicit edge comes before the inferred one between the same pushes. One edge
    // is kept; an inferred flow between pushes already ordered by `after` rides along on it.
    edge_list.sort_by_key(|&(key, _)| key);
    let mut merged: Vec<((usize, usize), EdgeKind)> = Vec::with_capacity(edge_list.len());
    for (key, kind) in edge_list {
        let Some((last_key, last_kind)) = merged.last_mut().filter(|(k, _)| *k == key) else {
            merged.push((key, kind));
            continue;
        };
        debug_assert_eq!(*last_key, key);
        // A second `after` entry naming the same push, or a second inferred read: the first
        // one stands.
        if let (
            EdgeKind::Explicit {
                also: also @ None, ..
            },
            EdgeKind::Inferred {
                reason,
                may_read,
                read_span,
                path_span,
                file,
                via,
            },
        ) = (last_kind, kind)
        {
            *also = Some(Box::new(FileFlow {
                reason,
                may_read,
                read_span,
                path_span,
                file,
                via,
            }));
        }
    }
    merged
}

/// The edges with their ends and each push's incoming and outgoing edge ids.
struct Wiring {
    edges: Vec<Edge>,
    incoming: Vec<Vec<usize>>,
    outgoing: Vec<Vec<usize>>,
    /// `(dependency, dependent)` of each edge.
    ends: Vec<(usize, usize)>,
}

/// Numbers the edges, ordered by dependent then dependency (file positions); an enabled push
/// reading what a disabled one delivers is warned about.
fn wire(pushes: &[Push], edge_list: Vec<EdgeEntry>, problems: &mut Vec<Problem>) -> Wiring {
    let n = pushes.len();
    let mut edges = Vec::with_capacity(edge_list.len());
    let mut incoming = vec![Vec::new(); n];
    let mut outgoing: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut ends = Vec::with_capacity(edge_list.len());
    for ((b, a), kind) in edge_list {
        let id = edges.len();
        let read = match &kind {
            EdgeKind::Inferred {
                read_span,
                may_read,
                ..
            } => Some((*read_span, *may_read)),
            EdgeKind::Explicit { also, .. } => also.as_deref().map(|f| (f.read_span, f.may_read)),
        };
        if let Some(read) = read
            && !pushes[a].enabled
            && pushes[b].enabled
        {
            problems.push(reads_disabled(&pushes[a], &pushes[b], read));
        }
        edges.push(Edge {
            dependency: pushes[a].name.value.clone(),
            dependent: pushes[b].name.value.clone(),
            kind,
        });
        ends.push((a, b));
        incoming[b].push(id);
        outgoing[a].push(id);
    }
    for out in &mut outgoing {
        out.sort_by_key(|&e| ends[e].1);
    }

    Wiring {
        edges,
        incoming,
        outgoing,
        ends,
    }
}

/// Each push's stage (longest chain of dependencies up to it) and remaining length (longest
/// chain after it), on an acyclic graph.
fn stage_numbers(n: usize, wiring: &Wiring) -> (Vec<usize>, Vec<usize>) {
    let Wiring {
        incoming,
        outgoing,
        ends,
        ..
    } = wiring;
    let order = topological_order(n, incoming, outgoing, ends);
    let mut stage = vec![1usize; n];
    for &u in &order {
        stage[u] = incoming[u]
            .iter()
            .map(|&e| stage[ends[e].0] + 1)
            .max()
            .unwrap_or(1);
    }
    let mut remaining = vec![1usize; n];
    for &u in order.iter().rev() {
        remaining[u] = outgoing[u]
            .iter()
            .map(|&e| remaining[ends[e].1] + 1)
            .max()
            .unwrap_or(1);
    }

    (stage, remaining)
}

/// The pushes of each stage, in file order.
fn stages_of(pushes: &[Push], stage: &[usize]) -> Vec<Stage> {
    let stage_count = stage.iter().copied().max().unwrap_or(0);
    let mut stages: Vec<Stage> = (1..=stage_count)
        .map(|number| Stage {
            number,
            pushes: Vec::new(),
        })
        .collect();
    for (i, push) in pushes.iter().enumerate() {
        stages[stage[i] - 1].pushes.push(push.name.value.clone());
    }

    stages
}

/// `read`: where the dependent reads, and whether it only may read (a pattern, a macro).
fn reads_disabled(
    dependency: &Push,
    dependent: &Push,
    (read_span, may_read): (Span, bool),
) -> Problem {
    let reads = if may_read { "may read" } else { "reads" };
    Problem::warning(
        GraphErrorKind::ReadsDisabled.code(),
        format!(
            "push `{}` {reads} what disabled push `{}` delivers",
            dependent.name.value, dependency.name.value
        ),
    )
    .with_label(read_span, "read here")
    .with_label(dependency.name.span, "disabled push")
    .with_help(format!(
        "`{}` will not wait for work that is skipped; make sure the file is already there, or \
         enable `{}`",
        dependent.name.value, dependency.name.value
    ))
}

/// True when two host sets share a selector.
fn overlap(x: &HostSet, y: &HostSet) -> bool {
    let mut sorted: Vec<HostKey<'_>> = keys(x).collect();
    sorted.sort_unstable();
    keys(y).any(|k| sorted.binary_search(&k).is_ok())
}

/// A topological order (Kahn), ties broken by file position so it is deterministic.
fn topological_order(
    n: usize,
    incoming: &[Vec<usize>],
    outgoing: &[Vec<usize>],
    ends: &[(usize, usize)],
) -> Vec<usize> {
    let mut indegree: Vec<usize> = incoming.iter().map(Vec::len).collect();
    let mut queue: VecDeque<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(u) = queue.pop_front() {
        order.push(u);
        for &e in &outgoing[u] {
            let v = ends[e].1;
            indegree[v] -= 1;
            if indegree[v] == 0 {
                queue.push_back(v);
            }
        }
    }
    order
}

/// One problem per strongly connected component with more than one push: the shortest cycle
/// through its first push (in file order), in "depends on" direction.
///
/// Kosaraju's algorithm, which petgraph runs with an explicit stack: its Tarjan recurses once
/// per push on a path, and a chain of 90,000 pushes overflowed the main thread's stack.
fn find_cycles(
    plan: &Plan,
    graph: &DiGraph<usize, usize>,
    edges: &[Edge],
    ends: &[(usize, usize)],
    outgoing: &[Vec<usize>],
) -> Vec<Problem> {
    let n = plan.pushes.len();
    let mut components: Vec<Vec<usize>> = petgraph::algo::kosaraju_scc(graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut c: Vec<usize> = c.into_iter().map(NodeIndex::index).collect();
            c.sort_unstable();
            c
        })
        .collect();
    components.sort();

    let mut member = vec![false; n];
    let mut problems = Vec::new();
    for component in components {
        for &u in &component {
            member[u] = true;
        }
        let start = component[0];
        // BFS along "runs before" edges until one leads back to `start`.
        let mut parent: FxHashMap<usize, usize> = FxHashMap::default(); // node -> edge id used to reach it
        let mut queue = VecDeque::from([start]);
        let mut closing = None;
        'bfs: while let Some(u) = queue.pop_front() {
            for &e in &outgoing[u] {
                let v = ends[e].1;
                if v == start {
                    closing = Some(e);
                    break 'bfs;
                }
                if member[v] && !parent.contains_key(&v) {
                    parent.insert(v, e);
                    queue.push_back(v);
                }
            }
        }
        for &u in &component {
            member[u] = false;
        }
        let Some(closing) = closing else {
            continue; // cannot happen in a strongly connected component
        };
        // Edges in execution order: start -> ... -> start.
        let mut path = vec![closing];
        let mut at = ends[closing].0;
        while at != start {
            let Some(&e) = parent.get(&at) else { break };
            path.push(e);
            at = ends[e].0;
        }
        path.reverse();
        problems.push(cycle_problem(plan, edges, ends, &path));
    }
    problems
}

/// `path`: edge ids in execution order forming a cycle. Reported in "depends on" order.
fn cycle_problem(plan: &Plan, edges: &[Edge], ends: &[(usize, usize)], path: &[usize]) -> Problem {
    let name = |i: usize| plan.pushes[i].name.value.as_str();
    let depends: Vec<usize> = path.iter().rev().copied().collect();
    let first = ends[depends[0]].1;
    let mut text = format!("`{}", name(first));
    for &e in &depends {
        text.push_str(" -> ");
        text.push_str(name(ends[e].0));
    }
    text.push('`');
    let mut problem = Problem::error(
        GraphErrorKind::Cycle.code(),
        format!("push `{}` has circular dependency {text}", name(first)),
    );
    let mut explicit = 0;
    for &e in &depends {
        let (a, b) = ends[e];
        let label = match &edges[e].kind {
            EdgeKind::Explicit { .. } => {
                explicit += 1;
                format!("`{}` runs after `{}`", name(b), name(a))
            }
            EdgeKind::Inferred { reason, .. } => format!("`{}` {reason}", name(b)),
        };
        problem = problem.with_label(edges[e].origin(), label);
    }
    let help = if explicit == depends.len() {
        "break the cycle by removing one of these `after` entries"
    } else if explicit == 0 {
        "break the cycle by changing a path or the hosts, so that no push reads what a push \
         waiting for it delivers"
    } else {
        "break the cycle by removing one of these `after` entries, or by changing a path so that \
         no push reads what a push waiting for it delivers"
    };
    problem.with_help(help)
}

/// A writer: (push, source, file) positions.
type Writer = (usize, usize, usize);
/// Where a file lands: (directory, name).
type Landing<'d> = (&'d str, &'d str);
/// A file landing on one target selector: (selector, directory, name).
type SelectorLanding<'k> = (HostKey<'k>, &'k str, &'k str);

/// Bounds the steps of the conflict check that multiply two sizes of the plan (entries by
/// `[FILESRCIP]` directories, writers by target selectors). Whether some two pushes share both
/// a source host and a target host is as hard as multiplying matrices, so no linear exact
/// check exists: past the budget the check stops and says so in a warning.
struct Budget {
    left: usize,
}

impl Budget {
    /// A few times the plan's own size (every entry and selector of every push), plus
    /// [`Budget::BASE`] for small plans.
    const BASE: usize = 1 << 20;
    const PER_ITEM: usize = 4;

    fn for_plan(plan: &Plan) -> Self {
        let size: usize = plan
            .pushes
            .iter()
            .map(|push| {
                let sources: usize = push
                    .sources
                    .iter()
                    .map(|s| s.files.len() + selector_count(&s.hosts))
                    .sum();
                sources + selector_count(&push.target.hosts)
            })
            .sum();
        Budget {
            left: Self::BASE.saturating_add(size.saturating_mul(Self::PER_ITEM)),
        }
    }

    /// Takes `steps` from the budget; `false` (and nothing taken) when they do not fit.
    fn spend(&mut self, steps: usize) -> bool {
        let fits = steps <= self.left;
        if fits {
            self.left -= steps;
        }
        fits
    }
}

fn selector_count(set: &HostSet) -> usize {
    set.ips.len() + set.dynamic_groups.len() + set.topo_nodes.len()
}

/// Two enabled pushes with no path between them that deliver the same name into the same
/// directory on a shared host selector.
fn find_conflicts(
    plan: &Plan,
    targets: &[Cow<'_, str>],
    entries: &[Vec<Vec<NormEntry>>],
    stage: &[usize],
    outgoing: &[Vec<usize>],
    ends: &[(usize, usize)],
) -> Vec<Problem> {
    let pushes = &plan.pushes;
    // The directories each source's files land in, computed first so that the grouping keys
    // below borrow them: keys are then plain references, hashed and compared without copying.
    // Every `[FILESRCIP]` directory is written into one arena: one allocation for all of them
    // rather than one per source host of every such push.
    let mut arena = String::new();
    let lone = lone_macro_pushes(plan, targets, entries);
    let dirs = SourceDirs::new(plan, targets, &lone, &mut arena);
    let mut budget = Budget::for_plan(plan);
    let Some(shared) = shared_deliveries(plan, entries, &dirs, &mut budget) else {
        return vec![unchecked_conflicts(plan)];
    };
    let Some(groups) = writers_by_selector(plan, &shared, &mut budget) else {
        return vec![unchecked_conflicts(plan)];
    };

    let mut reach = Reach::new(pushes.len());
    let mut reported: FxHashSet<(usize, usize)> = FxHashSet::default();
    let mut problems = Vec::new();
    for (key, mut writers) in groups {
        writers.sort_by_key(|&(p, _, _)| (stage[p], p));
        for pair in writers.windows(2) {
            let (a, asi, afi) = pair[0];
            let (b, bsi, bfi) = pair[1];
            if reported.contains(&(a, b)) || reach.reaches(a, b, stage, outgoing, ends) {
                continue;
            }
            // `[FILESRCIP]` gives every source host its own directory: copies from different
            // source hosts never meet.
            if key.1.contains("[FILESRCIP]")
                && !overlap(
                    &plan.pushes[a].sources[asi].hosts,
                    &plan.pushes[b].sources[bsi].hosts,
                )
            {
                continue;
            }
            reported.insert((a, b));
            problems.push(conflict_problem(
                plan,
                key,
                (a, asi, afi),
                (b, bsi, bfi),
                entries,
            ));
        }
    }
    problems
}

/// The pushes with `[FILESRCIP]` in their target that no other push can write over: none
/// delivers a name of theirs into a directory starting with the part of their target before
/// the macro (every directory the macro makes starts with it), nor has a macro of its own
/// after a part that starts with that one or begins it. Their directories, one per source
/// host, need not be built. A name delivered by more than [`LONE_CHECKED`] pushes is not
/// looked into (its pushes are not taken as alone), so this stays linear.
fn lone_macro_pushes(
    plan: &Plan,
    targets: &[Cow<'_, str>],
    entries: &[Vec<Vec<NormEntry>>],
) -> Vec<bool> {
    let mut lone = vec![false; plan.pushes.len()];
    let prefixes: Vec<Option<&str>> = targets
        .iter()
        .map(|t| {
            t.contains('[')
                .then(|| t.split_once("[FILESRCIP]").map(|(before, _)| before))
                .flatten()
        })
        .collect();
    let names = |a: usize| {
        entries[a]
            .iter()
            .flatten()
            .map(NormEntry::name)
            .filter(|name| !name.is_empty())
    };
    let enabled = || {
        plan.pushes
            .iter()
            .enumerate()
            .filter(|(_, push)| push.enabled)
            .map(|(a, _)| a)
    };
    // Each name a macro push delivers -> the pushes delivering it (up to one past
    // LONE_CHECKED), as linked lists through one vector: (head, length) and (push, next).
    let mut heads: FxHashMap<&str, (usize, usize)> = FxHashMap::default();
    for a in enabled().filter(|&a| prefixes[a].is_some()) {
        for name in names(a) {
            heads.entry(name).or_insert((usize::MAX, 0));
        }
    }
    if heads.is_empty() {
        return lone;
    }
    let mut links: Vec<(usize, usize)> =
        Vec::with_capacity(entries.iter().flatten().map(Vec::len).sum());
    for a in enabled() {
        for name in names(a) {
            if let Some((head, len)) = heads.get_mut(name)
                && *len <= LONE_CHECKED
                && (*head == usize::MAX || links[*head].0 != a)
            {
                links.push((a, *head));
                *head = links.len() - 1;
                *len += 1;
            }
        }
    }
    let may_meet = |prefix: &str, b: usize| match prefixes[b] {
        Some(other) => other.starts_with(prefix) || prefix.starts_with(other),
        None => targets[b].starts_with(prefix),
    };
    for a in enabled() {
        let Some(prefix) = prefixes[a] else {
            continue;
        };
        lone[a] = names(a).all(|name| {
            heads.get(name).is_some_and(|&(head, len)| {
                len <= LONE_CHECKED
                    && std::iter::successors(Some(head).filter(|&h| h != usize::MAX), |&at| {
                        Some(links[at].1).filter(|&next| next != usize::MAX)
                    })
                    .all(|at| links[at].0 == a || !may_meet(prefix, links[at].0))
            })
        });
    }
    lone
}

/// How many pushes delivering one name [`lone_macro_pushes`] compares.
const LONE_CHECKED: usize = 16;

/// The writers of every (directory, name) that two or more pushes deliver, in file order, one
/// writer per push; `None` when the budget runs out.
fn shared_deliveries<'d>(
    plan: &Plan,
    entries: &'d [Vec<Vec<NormEntry>>],
    dirs: &SourceDirs<'d>,
    budget: &mut Budget,
) -> Option<Vec<(Landing<'d>, Vec<Writer>)>> {
    let enabled = || plan.pushes.iter().enumerate().filter(|(_, p)| p.enabled);
    // First, which (directory, name) two pushes write at all: only those can hold a conflict,
    // and in most plans there are few.
    const SHARED: usize = usize::MAX;
    let mut writer_of: FxHashMap<Landing<'_>, usize> = FxHashMap::default();
    // Sized once for every (directory, name) (within the budget): growing the map re-hashes
    // each key, and `[FILESRCIP]` targets make one directory per source host.
    let landings: usize = enabled()
        .flat_map(|(a, _)| entries[a].iter().enumerate().map(move |(si, e)| (a, si, e)))
        .map(|(a, si, source_entries)| source_entries.len().saturating_mul(dirs.of(a, si).len()))
        .fold(0, usize::saturating_add);
    writer_of.reserve(landings.min(budget.left).max(plan.pushes.len() * 2));
    // The pushes that write a landing another push writes too: only their landings are
    // looked up again below (in most plans, none).
    let mut writes_shared = vec![false; plan.pushes.len()];
    for (a, _) in enabled() {
        for (si, source_entries) in entries[a].iter().enumerate() {
            if !budget.spend(source_entries.len().saturating_mul(dirs.of(a, si).len())) {
                return None;
            }
            for entry in source_entries.iter().filter(|e| !e.name().is_empty()) {
                for dir in dirs.of(a, si) {
                    let first = writer_of.entry((dir, entry.name())).or_insert(a);
                    if *first != a {
                        if *first != SHARED {
                            writes_shared[*first] = true;
                        }
                        writes_shared[a] = true;
                        *first = SHARED;
                    }
                }
            }
        }
    }
    let mut slots: FxHashMap<Landing<'_>, usize> = FxHashMap::default();
    let mut shared: Vec<(Landing<'_>, Vec<Writer>)> = Vec::new();
    for (a, _) in enabled().filter(|&(a, _)| writes_shared[a]) {
        for (si, source_entries) in entries[a].iter().enumerate() {
            for (fi, entry) in source_entries.iter().enumerate() {
                if entry.name().is_empty() {
                    continue;
                }
                for dir in dirs.of(a, si) {
                    let at = (*dir, entry.name());
                    if writer_of.get(&at) != Some(&SHARED) {
                        continue;
                    }
                    let slot = *slots.entry(at).or_insert_with(|| {
                        shared.push((at, Vec::new()));
                        shared.len() - 1
                    });
                    let writers = &mut shared[slot].1;
                    // Several entries of one push with one name are the parser's to report.
                    if writers.last().is_none_or(|w| w.0 != a) {
                        writers.push((a, si, fi));
                    }
                }
            }
        }
    }
    Some(shared)
}

/// Insertion-ordered groups of the writers that deliver one name into one directory on one
/// target selector; `None` when the budget runs out.
///
/// With `[FILESRCIP]`, every source host of a push is a directory of its own, and the same
/// pushes usually write all of them: the pairs found in one are those of the next. Each
/// distinct set of writing pushes is therefore grouped by target selector once, so two pushes
/// reading 3,000 hosts into 3,000 hosts cost 6,000 selectors, not 3,000 x 3,000.
fn writers_by_selector<'k>(
    plan: &'k Plan,
    shared: &[(Landing<'k>, Vec<Writer>)],
    budget: &mut Budget,
) -> Option<Vec<(SelectorLanding<'k>, Vec<Writer>)>> {
    let mut index: FxHashMap<SelectorLanding<'k>, usize> = FxHashMap::default();
    let mut groups: Vec<(SelectorLanding<'k>, Vec<Writer>)> = Vec::new();
    let mut pushes_seen: FxHashSet<Vec<usize>> = FxHashSet::default();
    for ((dir, name), writers) in shared {
        let writing: Vec<usize> = writers.iter().map(|w| w.0).collect();
        if writers.len() < 2 || !pushes_seen.insert(writing) {
            continue;
        }
        for &(a, si, fi) in writers {
            let hosts = &plan.pushes[a].target.hosts;
            if !budget.spend(selector_count(hosts)) {
                return None;
            }
            for key in keys(hosts) {
                let slot = *index.entry((key, dir, name)).or_insert_with(|| {
                    groups.push(((key, dir, name), Vec::new()));
                    groups.len() - 1
                });
                groups[slot].1.push((a, si, fi));
            }
        }
    }
    groups.retain(|(_, writers)| writers.len() > 1);
    Some(groups)
}

/// The warning when the conflict check ran out of budget (see [`Budget`]).
fn unchecked_conflicts(plan: &Plan) -> Problem {
    Problem::warning(
        GraphErrorKind::ConflictsUnchecked.code(),
        "write conflicts between pushes were not checked: the plan delivers too many files into too many `[FILESRCIP]` directories on too many hosts",
    )
    .with_label(plan.name.span, "this plan")
    .with_help(
        "make sure no two pushes that nothing orders write the same file on one host; fewer source hosts per push with `[FILESRCIP]` in `to.path` keeps the check within its budget",
    )
}

/// The directories a source's files land in. With `[FILESRCIP]` in the target path JOB writes
/// each source host's copy under `<cloud>_<ip>` (`:` replaced by `_`), so two pushes reading
/// different static hosts do not write the same file. Sources with dynamic groups or topo
/// nodes may hold any host: their copies keep the literal directory. Each directory is a
/// range of `arena`, or `None` for the target directory itself.
fn source_dirs(
    target: &str,
    sources: &HostSet,
    arena: &mut String,
    dirs: &mut Vec<Option<Range<usize>>>,
) {
    if !(target.contains('[') && target.contains("[FILESRCIP]")) {
        dirs.push(None);
        return;
    }
    // The target split once at each macro; every host's directory is the pieces joined by its
    // `<cloud>_<ip>`, written straight into the arena (`None`: the target itself).
    let pieces: Vec<&str> = target.split("[FILESRCIP]").collect();
    dirs.reserve(sources.ips.len() + 1);
    let mut host_dir = String::new();
    for host in &sources.ips {
        host_dir.clear();
        push_host_dir(&mut host_dir, host);
        let start = arena.len();
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                arena.push_str(&host_dir);
            }
            arena.push_str(piece);
        }
        dirs.push(Some(start..arena.len()));
    }
    if !sources.dynamic_groups.is_empty() || !sources.topo_nodes.is_empty() {
        dirs.push(None);
    }
}

/// The directories each source's files land in ([`source_dirs`]), in one vector for the whole
/// plan: nested vectors per push and per source were three allocations of every push.
struct SourceDirs<'d> {
    /// Every source's directories, one source after the other.
    dirs: Vec<&'d str>,
    /// Push -> the index in `sources` of its first source (disabled pushes have none).
    first_source: Vec<usize>,
    /// Source -> its range of `dirs`.
    sources: Vec<Range<usize>>,
}

impl<'d> SourceDirs<'d> {
    /// Every enabled push's sources' directories: the target directory, or with
    /// `[FILESRCIP]` one per source host written into `arena` (none for a push no other push
    /// can write over, see [`lone_macro_pushes`]).
    fn new(plan: &Plan, targets: &'d [Cow<'d, str>], lone: &[bool], arena: &'d mut String) -> Self {
        let pushes = &plan.pushes;
        let mut layout: Vec<Option<Range<usize>>> = Vec::with_capacity(pushes.len());
        let mut first_source = Vec::with_capacity(pushes.len());
        let mut sources = Vec::with_capacity(pushes.len());
        for (a, push) in pushes.iter().enumerate() {
            first_source.push(sources.len());
            if !push.enabled {
                continue;
            }
            for source in &push.sources {
                let start = layout.len();
                if !lone[a] {
                    source_dirs(&targets[a], &source.hosts, arena, &mut layout);
                }
                sources.push(start..layout.len());
            }
        }
        let arena: &'d str = arena;
        let mut dirs = Vec::with_capacity(layout.len());
        for (a, &first) in first_source.iter().enumerate() {
            let end = first_source.get(a + 1).copied().unwrap_or(sources.len());
            for range in &sources[first..end] {
                dirs.extend(
                    layout[range.clone()]
                        .iter()
                        .map(|r| r.clone().map_or(targets[a].as_ref(), |r| &arena[r])),
                );
            }
        }
        SourceDirs {
            dirs,
            first_source,
            sources,
        }
    }

    /// The directories source `si` of push `a` (enabled) delivers into.
    fn of(&self, a: usize, si: usize) -> &[&'d str] {
        &self.dirs[self.sources[self.first_source[a] + si].clone()]
    }
}

/// Appends the directory name JOB gives a source host's copies under `[FILESRCIP]`:
/// `<cloud>_<ip>`, with an IPv6 address's colons as underscores too. IPv4 digits are written
/// directly: this runs for every source host of every such push, and `fmt` was most of the
/// cost of the conflict check on plans with many source hosts.
fn push_host_dir(out: &mut String, host: &plan_parser::HostAddr) {
    let mut digits = itoa::Buffer::new();
    out.push_str(digits.format(host.cloud_id));
    out.push('_');
    match host.ip {
        std::net::IpAddr::V4(ip) => {
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(digits.format(octet));
            }
        }
        std::net::IpAddr::V6(ip) => out.push_str(&ip.to_string().replace(':', "_")),
    }
}

fn conflict_problem(
    plan: &Plan,
    key: (HostKey<'_>, &str, &str),
    first: (usize, usize, usize),
    second: (usize, usize, usize),
    entries: &[Vec<Vec<NormEntry>>],
) -> Problem {
    let (host, dir, name) = key;
    let pa = &plan.pushes[first.0];
    let pb = &plan.pushes[second.0];
    let fa = &pa.sources[first.1].files[first.2];
    let fb = &pb.sources[second.1].files[second.2];
    let via_a = written_name(plan, &pa.target.host_refs, host);
    let via_b = written_name(plan, &pb.target.host_refs, host);
    let what = match entries[second.0][second.1][second.2].kind {
        EntryKind::Directory => format!("{dir}{name}/"),
        EntryKind::File | EntryKind::Pattern => format!("{dir}{name}"),
    };
    Problem::error(
        GraphErrorKind::WriteConflict.code(),
        format!(
            "pushes `{}` and `{}` both write {what} on {host}, and nothing orders them",
            pa.name.value, pb.name.value
        ),
    )
    .with_label(
        fb.span,
        format!("`{}` delivers this to {via_b}", pb.name.value),
    )
    .with_label(
        fa.span,
        format!("`{}` delivers this to {via_a}", pa.name.value),
    )
    .with_help(format!(
        "add `after = [\"{}\"]` to push `{}` (or the reverse) so one runs first, or deliver \
         into different directories",
        pa.name.value, pb.name.value
    ))
}

/// Reachability queries that only walk nodes in stages before the target's.
struct Reach {
    stamp: Vec<u32>,
    epoch: u32,
    stack: Vec<usize>,
}

impl Reach {
    fn new(n: usize) -> Self {
        Reach {
            stamp: vec![0; n],
            epoch: 0,
            stack: Vec::new(),
        }
    }

    fn reaches(
        &mut self,
        from: usize,
        to: usize,
        stage: &[usize],
        outgoing: &[Vec<usize>],
        ends: &[(usize, usize)],
    ) -> bool {
        if stage[from] >= stage[to] {
            return false; // every edge climbs at least one stage
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.stamp.fill(0);
            self.epoch = 1;
        }
        self.stack.clear();
        self.stack.push(from);
        self.stamp[from] = self.epoch;
        while let Some(u) = self.stack.pop() {
            for &e in &outgoing[u] {
                let v = ends[e].1;
                if v == to {
                    return true;
                }
                if stage[v] < stage[to] && self.stamp[v] != self.epoch {
                    self.stamp[v] = self.epoch;
                    self.stack.push(v);
                }
            }
        }
        false
    }
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
