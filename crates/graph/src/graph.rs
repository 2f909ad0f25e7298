//! The built graph: pushes, edges, stages. Read-only once built.

use std::collections::BTreeMap;

use petgraph::graph::{DiGraph, NodeIndex};
use plan_parser::{Problem, Span};

/// Why one push waits for another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeKind {
    /// The dependent lists the dependency in `after`.
    Explicit {
        /// The `after` entry.
        span: Span,
        /// The file flow inferred between the same two pushes, when the dependent also reads
        /// what the dependency delivers: kept so a reviewer sees both reasons.
        also: Option<Box<FileFlow>>,
    },
    /// The dependent reads what the dependency delivers.
    Inferred {
        /// For people: `reads /data/stage/app.tar.gz on relay, which artifact delivers`.
        reason: String,
        /// True when the dependent only may read what the dependency delivers (a pattern
        /// could match a delivered name, or a directory named at run time could be the one
        /// read); `reason` then says "may read".
        may_read: bool,
        /// The dependent's `files` entry whose read was inferred.
        read_span: Span,
        /// The dependency's `to.path`.
        path_span: Span,
        /// The file entry as written (after variable substitution).
        file: String,
        /// The hosts the two pushes share, named as the reading source writes them (a group
        /// name or a host string).
        via: String,
    },
}

/// A file flow found on an edge that is explicit too: the dependent reads what the dependency
/// delivers (the same facts as [`EdgeKind::Inferred`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFlow {
    /// For people: `reads /data/stage/app.tar.gz on relay, which artifact delivers`.
    pub reason: String,
    /// True when the dependent only may read what the dependency delivers; `reason` then says
    /// "may read".
    pub may_read: bool,
    /// The dependent's `files` entry whose read was inferred.
    pub read_span: Span,
    /// The dependency's `to.path`.
    pub path_span: Span,
    /// The file entry as written (after variable substitution).
    pub file: String,
    /// The hosts the two pushes share, named as the reading source writes them.
    pub via: String,
}

/// An edge: `dependent` runs after `dependency`.
///
/// When a push both lists another in `after` and reads what it delivers, there is one edge,
/// [`EdgeKind::Explicit`] (the author said so), and the file flow is kept in its `also`
/// ([`Edge::file_flow_reason`]), so both reasons can be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The push that runs first.
    pub dependency: String,
    /// The push that waits.
    pub dependent: String,
    /// Why.
    pub kind: EdgeKind,
}

impl Edge {
    /// True for an inferred (file-flow) edge.
    pub fn is_inferred(&self) -> bool {
        matches!(self.kind, EdgeKind::Inferred { .. })
    }

    /// The inferred reason, if this edge was inferred.
    pub fn reason(&self) -> Option<&str> {
        match &self.kind {
            EdgeKind::Inferred { reason, .. } => Some(reason),
            EdgeKind::Explicit { .. } => None,
        }
    }

    /// The file-flow reason of the edge, inferred or found on an explicit edge too: `Some` for
    /// every edge whose dependent reads what its dependency delivers.
    pub fn file_flow_reason(&self) -> Option<&str> {
        match &self.kind {
            EdgeKind::Inferred { reason, .. } => Some(reason),
            EdgeKind::Explicit { also, .. } => also.as_deref().map(|f| f.reason.as_str()),
        }
    }

    /// True for an explicit edge whose dependent also reads what the dependency delivers.
    pub fn is_explicit_and_inferred(&self) -> bool {
        matches!(&self.kind, EdgeKind::Explicit { also: Some(_), .. })
    }

    /// The span the edge comes from: the `after` entry or the `files` entry that reads.
    pub fn origin(&self) -> Span {
        match &self.kind {
            EdgeKind::Explicit { span, .. } => *span,
            EdgeKind::Inferred { read_span, .. } => *read_span,
        }
    }
}

/// One stage: pushes whose longest chain of dependencies has the same length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// 1-based stage number.
    pub number: usize,
    /// Push names in file order.
    pub pushes: Vec<String>,
}

/// Per-push facts the graph keeps.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) enabled: bool,
    pub(crate) stage: usize,
    pub(crate) remaining: usize,
    /// Edge ids where this push is the dependent, ordered by the dependency's file position.
    pub(crate) incoming: Vec<usize>,
    /// Edge ids where this push is the dependency, ordered by the dependent's file position.
    pub(crate) outgoing: Vec<usize>,
}

/// The ordered pushes of a valid plan.
///
/// Every iteration order is deterministic: stages in order, pushes in file order within a
/// stage, edges by the file position of their dependent then dependency.
///
/// Disabled pushes (`enabled = false`) keep their place and their edges so reviewers see where
/// they would run; [`PlanGraph::is_skipped`] marks them. A run treats a skipped push as done
/// the moment its own dependencies are done: its dependents do not wait for its (absent) work,
/// but they still run after whatever it was waiting for, so enabling it later never reorders
/// anything else.
#[derive(Debug, Clone)]
pub struct PlanGraph {
    pub(crate) nodes: Vec<Node>,
    pub(crate) by_name: BTreeMap<String, usize>,
    pub(crate) edges: Vec<Edge>,
    pub(crate) stages: Vec<Stage>,
    pub(crate) graph: DiGraph<usize, usize>,
    pub(crate) warnings: Vec<Problem>,
}

impl PlanGraph {
    /// Stages in order (stage 1 first).
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The stage number of a push, if it exists.
    pub fn stage_of(&self, name: &str) -> Option<usize> {
        self.node(name).map(|n| n.stage)
    }

    /// Every edge, ordered by the dependent's then the dependency's file position.
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// The edges into `name`: what it waits for, in file order of the dependencies.
    pub fn dependencies_of<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Edge> + 'a {
        let ids = self.node(name).map_or(&[][..], |n| &n.incoming[..]);
        ids.iter().map(move |&e| &self.edges[e])
    }

    /// The edges out of `name`: what waits for it, in file order of the dependents.
    pub fn dependents_of<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Edge> + 'a {
        let ids = self.node(name).map_or(&[][..], |n| &n.outgoing[..]);
        ids.iter().map(move |&e| &self.edges[e])
    }

    /// The number of pushes on the longest chain that starts at `name` (itself included, so
    /// 1 for a push nothing waits for). An eager scheduler starts the ready push with the
    /// largest value first.
    pub fn longest_remaining_path(&self, name: &str) -> Option<usize> {
        self.node(name).map(|n| n.remaining)
    }

    /// True when the push is disabled (`enabled = false`): shown, but not run.
    pub fn is_skipped(&self, name: &str) -> bool {
        self.node(name).is_some_and(|n| !n.enabled)
    }

    /// Push names in file order.
    pub fn push_names(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| n.name.as_str())
    }

    /// Warnings found while ordering (the plan is still valid).
    pub fn warnings(&self) -> &[Problem] {
        &self.warnings
    }

    /// True when a chain of edges leads from `from` to `to` (`to` runs after `from`).
    pub fn has_path(&self, from: &str, to: &str) -> bool {
        match (self.by_name.get(from), self.by_name.get(to)) {
            (Some(&a), Some(&b)) => {
                a != b
                    && petgraph::algo::has_path_connecting(
                        &self.graph,
                        NodeIndex::new(a),
                        NodeIndex::new(b),
                        None,
                    )
            }
            _ => false,
        }
    }

    fn node(&self, name: &str) -> Option<&Node> {
        self.by_name.get(name).map(|&i| &self.nodes[i])
    }
}
