//! What a change to a plan changes: the data behind `plan diff`.
//!
//! Two versions of a plan are compared by what they would make JOB do, not by their text:
//! each push's resolved hosts and its exact request body (the one `plan show` prints and
//! `plan apply` sends). A host added to a group, a changed variable or a changed include
//! therefore shows up on every push it reaches, field by field, with the group or variable
//! named as the likely cause. A push whose body is unchanged apart from its task name, under a
//! new name, is reported as renamed rather than removed and added. Stage moves and added or
//! removed edges are compared after renames are applied, so renaming a push does not look like
//! a reordering.
//!
//! [`diff`] computes a [`PlanDiff`]; [`diff_json`] renders it as the versioned JSON document.
//! Human renderings (text, Markdown) live in the command line and use the same data.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use plan_parser::{HostAddr, HostRef, HostSet, Plan, Problem, Push};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::graph::{EdgeKind, PlanGraph};
use crate::render::{EdgeEntry, EdgeOrigin, FORMAT_VERSION, ResolvedHosts, written_hosts};
use crate::request::request_for;

/// One version of a plan, as `plan show` would see it.
#[derive(Debug, Clone, Copy)]
pub struct DiffSide<'a> {
    /// The validated plan.
    pub plan: &'a Plan,
    /// Its graph.
    pub graph: &'a PlanGraph,
    /// The parser's warnings (the graph's own warnings are taken from `graph`).
    pub warnings: &'a [Problem],
}

/// How one field changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A value was set, unset or replaced (`None`: absent on that side).
    Value {
        /// Before (absent: the field was not in the old body).
        old: Option<Value>,
        /// After (absent: the field is not in the new body).
        new: Option<Value>,
    },
    /// Members of a list (hosts, files, selectors, names) were added or removed.
    Items {
        /// Members only in the new version, in its order (hosts as `cloud:ip`).
        added: Vec<String>,
        /// Members only in the old version, in its order.
        removed: Vec<String>,
    },
    /// Same members, different order (JOB receives them in the new order).
    Order,
}

/// One changed field: a request body field (`target_server.ip_list`,
/// `file_source[0].files`, `timeout`), or a setting that is not sent (`enabled`,
/// `retries`, `after`), or a plan setting (`plan.name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// Dotted path, array positions in brackets.
    pub path: String,
    /// What changed.
    pub change: Change,
}

impl fmt::Display for FieldChange {
    /// `timeout: 600 -> 1800`, `target_server.ip_list: +0:10.0.0.9, -0:10.0.0.8`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path)?;
        match &self.change {
            Change::Value { old, new } => {
                write!(
                    f,
                    "{} -> {}",
                    value_text(old.as_ref()),
                    value_text(new.as_ref())
                )
            }
            Change::Items { added, removed } => {
                let parts: Vec<String> = added
                    .iter()
                    .map(|a| format!("+{a}"))
                    .chain(removed.iter().map(|r| format!("-{r}")))
                    .collect();
                f.write_str(&parts.join(", "))
            }
            Change::Order => f.write_str("same members, new order"),
        }
    }
}

fn value_text(value: Option<&Value>) -> String {
    match value {
        None => "(unset)".to_owned(),
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
    }
}

/// A change to a set of hosts: static hosts and other selectors (dynamic groups, topo nodes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostsDelta {
    /// Static hosts only in the new version.
    pub added: Vec<HostAddr>,
    /// Static hosts only in the old version.
    pub removed: Vec<HostAddr>,
    /// Dynamic groups and topo nodes only in the new version (`dynamic group ID`, `topo module:1000`).
    pub added_selectors: Vec<String>,
    /// Dynamic groups and topo nodes only in the old version.
    pub removed_selectors: Vec<String>,
}

impl HostsDelta {
    fn between(old: &HostSet, new: &HostSet) -> Self {
        let selectors = |h: &HostSet| -> Vec<String> {
            h.dynamic_groups
                .iter()
                .map(|g| format!("dynamic group {g}"))
                .chain(h.topo_nodes.iter().map(|t| format!("topo {t}")))
                .collect()
        };
        let (old_sel, new_sel) = (selectors(old), selectors(new));
        HostsDelta {
            added: only_in(&new.ips, &old.ips),
            removed: only_in(&old.ips, &new.ips),
            added_selectors: only_in(&new_sel, &old_sel),
            removed_selectors: only_in(&old_sel, &new_sel),
        }
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.added_selectors.is_empty()
            && self.removed_selectors.is_empty()
    }

    /// True when the new version reaches hosts the old one did not (more hosts or selectors).
    pub fn widened(&self) -> bool {
        !self.added.is_empty() || !self.added_selectors.is_empty()
    }

    /// `+2 hosts, -1 host, +1 dynamic group / topo node`; empty when nothing changed.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!("+{}", count(self.added.len(), "host", "hosts")));
        }
        if !self.removed.is_empty() {
            parts.push(format!("-{}", count(self.removed.len(), "host", "hosts")));
        }
        if !self.added_selectors.is_empty() {
            parts.push(format!(
                "+{}",
                count(
                    self.added_selectors.len(),
                    "dynamic group / topo node",
                    "dynamic groups / topo nodes"
                )
            ));
        }
        if !self.removed_selectors.is_empty() {
            parts.push(format!(
                "-{}",
                count(
                    self.removed_selectors.len(),
                    "dynamic group / topo node",
                    "dynamic groups / topo nodes"
                )
            ));
        }
        parts.join(", ")
    }

    /// Every member, `+0:10.0.0.9` / `-dynamic group ID`, added first.
    pub fn items(&self) -> Vec<String> {
        self.added
            .iter()
            .map(|h| format!("+{h}"))
            .chain(self.added_selectors.iter().map(|s| format!("+{s}")))
            .chain(self.removed.iter().map(|h| format!("-{h}")))
            .chain(self.removed_selectors.iter().map(|s| format!("-{s}")))
            .collect()
    }
}

/// Items of `a` not in `b`, in `a`'s order, without repeats.
fn only_in<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for x in a {
        if !b.contains(x) && !out.contains(x) {
            out.push(x.clone());
        }
    }
    out
}

/// A push present in only one version.
#[derive(Debug, Clone)]
pub struct PushEntry {
    /// Its name.
    pub name: String,
    /// Its stage in that version.
    pub stage: usize,
    /// False when it is in the file but skipped (`enabled = false`).
    pub enabled: bool,
    /// Its resolved targets.
    pub targets: HostSet,
    /// Its request body in that version.
    pub request: Value,
}

/// A push under a new name: its request body is the same apart from the task name, or its
/// definition as written is the same (its body may then differ through a changed group or
/// variable).
#[derive(Debug, Clone)]
pub struct Renamed {
    /// The old name.
    pub old: String,
    /// The new name.
    pub new: String,
    /// Every changed field apart from the task name (which carries the push name), with
    /// `enabled`, `retries` and `after`; empty for a pure rename.
    pub fields: Vec<FieldChange>,
    /// How its resolved targets changed.
    pub targets: HostsDelta,
    /// Groups and variables that explain the field changes.
    pub causes: Vec<Cause>,
}

/// Why a push's body changed although the push itself may not have been edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// A host group the push names resolves to different hosts.
    Group {
        /// The group.
        name: String,
        /// The file that defines it in the new version (an include, or the plan itself).
        file: Option<String>,
    },
    /// A variable changed value and the body's change matches it.
    Var {
        /// The variable.
        name: String,
    },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Group {
                name,
                file: Some(file),
            } => write!(f, "group `{name}` ({file})"),
            Cause::Group { name, file: None } => write!(f, "group `{name}`"),
            Cause::Var { name } => write!(f, "variable `{name}`"),
        }
    }
}

/// A push in both versions (same name) whose body or settings differ.
#[derive(Debug, Clone)]
pub struct ChangedPush {
    /// Its name.
    pub name: String,
    /// Every changed field, in body order, then `enabled`, `retries`, `after`.
    pub fields: Vec<FieldChange>,
    /// How its resolved targets changed.
    pub targets: HostsDelta,
    /// Groups and variables that explain (part of) the change.
    pub causes: Vec<Cause>,
    /// The old request body.
    pub old_request: Value,
    /// The new request body.
    pub new_request: Value,
}

/// A push that runs in a different stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageMove {
    /// The push (its new name when renamed).
    pub push: String,
    /// The old stage.
    pub old: usize,
    /// The new stage.
    pub new: usize,
}

/// An edge present in only one version (names are the new names for renamed pushes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeChange {
    /// The push that runs first.
    pub dependency: String,
    /// The push that waits.
    pub dependent: String,
    /// `None` for an `after` entry, the reason for an inferred edge.
    pub reason: Option<String>,
}

impl EdgeChange {
    /// `a -> b (after)`, `a -> b (reads ...)`.
    pub fn describe(&self) -> String {
        format!(
            "{} -> {} ({})",
            self.dependency,
            self.dependent,
            self.reason.as_deref().unwrap_or("after")
        )
    }
}

/// A change to a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarChange {
    /// Its name.
    pub name: String,
    /// Old value (absent: not defined before).
    pub old: Option<String>,
    /// New value (absent: no longer defined).
    pub new: Option<String>,
}

/// A change to what a host group resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChange {
    /// Its name.
    pub name: String,
    /// The file defining it (new version, else old).
    pub file: Option<String>,
    /// False when the group is new.
    pub existed: bool,
    /// False when the group was removed.
    pub exists: bool,
    /// What it reaches now compared with before.
    pub hosts: HostsDelta,
}

/// Something a reviewer should look at before approving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attention {
    /// A push is gone: its files will no longer be delivered.
    Removed {
        /// The push.
        push: String,
    },
    /// A push stays in the file but will be skipped.
    Disabled {
        /// The push.
        push: String,
    },
    /// A push now reaches hosts it did not reach before.
    Widened {
        /// The push.
        push: String,
        /// The change of its targets.
        hosts: HostsDelta,
    },
    /// A warning the old version did not have (overwriting copies, unused names, ...).
    NewWarning {
        /// Its code.
        code: String,
        /// Its message.
        message: String,
        /// The push it is about, when it points into one.
        push: Option<String>,
    },
    /// Two pushes that were ordered no longer are: they may now run at the same time.
    LostOrdering {
        /// The push that used to run first.
        dependency: String,
        /// The push that used to wait.
        dependent: String,
        /// Why it used to wait (`after`, or the inferred reason).
        was: String,
    },
}

impl Attention {
    /// A short kind name for machine output: `removed`, `disabled`, `widened`, `new_warning`,
    /// `lost_ordering`.
    pub fn kind(&self) -> &'static str {
        match self {
            Attention::Removed { .. } => "removed",
            Attention::Disabled { .. } => "disabled",
            Attention::Widened { .. } => "widened",
            Attention::NewWarning { .. } => "new_warning",
            Attention::LostOrdering { .. } => "lost_ordering",
        }
    }

    /// One line for people (Markdown-free; names in backticks).
    pub fn message(&self) -> String {
        match self {
            Attention::Removed { push } => {
                format!("push `{push}` is removed: its files will no longer be delivered")
            }
            Attention::Disabled { push } => {
                format!("push `{push}` is now disabled: it will be skipped")
            }
            Attention::Widened { push, hosts } => {
                format!("push `{push}` reaches more targets: {}", hosts.summary())
            }
            Attention::NewWarning {
                code,
                message,
                push: Some(push),
            } => format!("new warning `{code}` on push `{push}`: {message}"),
            Attention::NewWarning {
                code,
                message,
                push: None,
            } => format!("new warning `{code}`: {message}"),
            Attention::LostOrdering {
                dependency,
                dependent,
                was,
            } => format!(
                "`{dependent}` no longer runs after `{dependency}` (was: {was}); they may now run at the same time"
            ),
        }
    }
}

/// Everything that differs between two versions of a plan.
#[derive(Debug, Clone, Default)]
pub struct PlanDiff {
    /// The old plan's name (`None` when there was no old version: everything is added).
    pub old_name: Option<String>,
    /// The new plan's name.
    pub new_name: String,
    /// Plan settings: `plan.name`, `plan.description`, `plan.bk_biz_id`, `plan.api`,
    /// `plan.task_prefix`.
    pub settings: Vec<FieldChange>,
    /// Changed, added and removed variables, by name.
    pub vars: Vec<VarChange>,
    /// Host groups that resolve differently, by name.
    pub groups: Vec<GroupChange>,
    /// Pushes only in the new version, in its file order.
    pub added: Vec<PushEntry>,
    /// Pushes only in the old version, in its file order.
    pub removed: Vec<PushEntry>,
    /// Pushes under a new name, in the new file order.
    pub renamed: Vec<Renamed>,
    /// Pushes in both versions that changed, in the new file order.
    pub changed: Vec<ChangedPush>,
    /// Pushes in both versions (renames applied) whose stage changed.
    pub stage_moves: Vec<StageMove>,
    /// Edges only in the new version.
    pub edges_added: Vec<EdgeChange>,
    /// Edges only in the old version (renames applied).
    pub edges_removed: Vec<EdgeChange>,
    /// Number of stages before (0 without an old version).
    pub old_stages: usize,
    /// Number of stages after.
    pub new_stages: usize,
    /// The union of the targets of the pushes that run, before and after.
    pub targets: HostsDelta,
    /// What a reviewer should look at first, most serious first: removed pushes, lost
    /// orderings, disabled pushes, widened targets, new warnings.
    pub attention: Vec<Attention>,
    /// The old version's content hash ([`crate::content_hash`]); `None` without an old version.
    pub old_hash: Option<String>,
    /// The new version's content hash: what `plan apply --expect` takes.
    pub new_hash: String,
}

impl PlanDiff {
    /// True when anything at all differs (what `plan diff --exit-code` reports).
    pub fn has_changes(&self) -> bool {
        self.old_name.is_none()
            || !self.settings.is_empty()
            || !self.vars.is_empty()
            || !self.groups.is_empty()
            || self.has_push_changes()
    }

    /// True when some push is added, removed, renamed, changed, moved, or ordered differently:
    /// when `apply` would do something different.
    pub fn has_push_changes(&self) -> bool {
        !self.added.is_empty()
            || !self.removed.is_empty()
            || !self.renamed.is_empty()
            || !self.changed.is_empty()
            || !self.stage_moves.is_empty()
            || !self.edges_added.is_empty()
            || !self.edges_removed.is_empty()
            || self.hashes_differ()
    }

    /// True when the two versions' content hashes differ. Beside the changes above, this is
    /// the case when the same pushes run in another order within a stage.
    pub fn hashes_differ(&self) -> bool {
        self.old_hash
            .as_deref()
            .is_some_and(|old| old != self.new_hash)
    }

    /// The one-line summary:
    /// `+1 push, -1 push, 1 renamed, ~2 changed; 3 -> 4 stages; targets +12 hosts`.
    ///
    /// Changes that do not change what runs (a description, an unused variable) are said
    /// separately, so a reorganisation is never mistaken for a change to the pushes.
    pub fn summary(&self) -> String {
        if self.old_name.is_none() {
            return format!(
                "new plan: +{} in {}; targets +{}",
                count(self.added.len(), "push", "pushes"),
                count(self.new_stages, "stage", "stages"),
                count(self.targets.added.len(), "host", "hosts")
            );
        }
        let mut parts: Vec<String> = Vec::new();
        let mut pushes: Vec<String> = Vec::new();
        if !self.added.is_empty() {
            pushes.push(format!("+{}", count(self.added.len(), "push", "pushes")));
        }
        if !self.removed.is_empty() {
            pushes.push(format!("-{}", count(self.removed.len(), "push", "pushes")));
        }
        if !self.renamed.is_empty() {
            pushes.push(format!("{} renamed", self.renamed.len()));
        }
        if !self.changed.is_empty() {
            pushes.push(format!("~{} changed", self.changed.len()));
        }
        if !self.stage_moves.is_empty() {
            pushes.push(format!(
                "{} moved",
                count(self.stage_moves.len(), "stage move", "stage moves")
            ));
        }
        let edges = self.edges_added.len() + self.edges_removed.len();
        if pushes.is_empty() && edges > 0 {
            pushes.push(format!("{} changed", count(edges, "edge", "edges")));
        }
        if pushes.is_empty() && self.hashes_differ() {
            pushes.push("the same pushes in another order within a stage".to_owned());
        }
        if pushes.is_empty() {
            pushes.push("no push changes".to_owned());
        }
        parts.push(pushes.join(", "));
        if self.old_stages != self.new_stages {
            parts.push(format!("{} -> {} stages", self.old_stages, self.new_stages));
        }
        let targets = self.targets.summary();
        if !targets.is_empty() {
            parts.push(format!("targets {targets}"));
        }
        let mut other = Vec::new();
        if !self.settings.is_empty() {
            other.push(count(self.settings.len(), "plan setting", "plan settings"));
        }
        if !self.vars.is_empty() {
            other.push(count(self.vars.len(), "variable", "variables"));
        }
        if !self.groups.is_empty() {
            other.push(count(self.groups.len(), "host group", "host groups"));
        }
        if !other.is_empty() {
            parts.push(format!("{} changed", other.join(", ")));
        }
        if !self.has_changes() {
            return "no changes".to_owned();
        }
        parts.join("; ")
    }
}

/// `1 push`, `2 pushes`.
fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Facts about one version's pushes, by name.
struct Indexed<'a> {
    side: DiffSide<'a>,
    bodies: HashMap<&'a str, Value>,
}

impl<'a> Indexed<'a> {
    fn new(side: DiffSide<'a>) -> Self {
        let bodies = side
            .plan
            .pushes
            .iter()
            .map(|p| (p.name.value.as_str(), request_for(side.plan, p).to_json()))
            .collect();
        Indexed { side, bodies }
    }

    fn push(&self, name: &str) -> Option<&'a Push> {
        self.side.plan.push(name)
    }

    fn body(&self, name: &str) -> Value {
        self.bodies.get(name).cloned().unwrap_or(Value::Null)
    }

    fn entry(&self, push: &Push) -> PushEntry {
        let name = push.name.value.clone();
        PushEntry {
            stage: self.side.graph.stage_of(&name).unwrap_or(0),
            enabled: push.enabled,
            targets: push.target.hosts.clone(),
            request: self.body(&name),
            name,
        }
    }

    /// Each warning as (code, message, the push it points into): the same warning on another
    /// push is a new one, although its message may be the same.
    fn warnings(&self) -> Vec<(String, String, Option<String>)> {
        let mut out = Vec::new();
        for p in self.side.warnings.iter().chain(self.side.graph.warnings()) {
            let push = p.primary_span().and_then(|span| {
                self.side
                    .plan
                    .pushes
                    .iter()
                    // A push's span is its `[[push]]` header: the warning belongs to the
                    // last push that starts before it.
                    .filter(|push| push.span.file == span.file && push.span.start <= span.start)
                    .max_by_key(|push| push.span.start)
                    .map(|push| push.name.value.clone())
            });
            let key = (p.code().to_owned(), p.message().to_owned(), push);
            if !out.contains(&key) {
                out.push(key);
            }
        }
        out
    }
}

/// The body without its task name (which embeds the push name), for rename matching.
fn without_task_name(body: &Value) -> Value {
    let mut body = body.clone();
    if let Value::Object(map) = &mut body {
        map.remove("task_name");
    }
    body
}

/// Compares two versions of a plan. `old` is `None` when the plan did not exist before (every
/// push is then added).
pub fn diff(old: Option<DiffSide<'_>>, new: DiffSide<'_>) -> PlanDiff {
    let new_ix = Indexed::new(new);
    let mut out = PlanDiff {
        new_name: new.plan.name.value.clone(),
        new_stages: new.graph.stages().len(),
        new_hash: crate::content_hash(new.plan, new.graph),
        old_hash: old.map(|old| crate::content_hash(old.plan, old.graph)),
        ..PlanDiff::default()
    };
    let Some(old) = old else {
        out.added = new.plan.pushes.iter().map(|p| new_ix.entry(p)).collect();
        out.targets = HostsDelta::between(&HostSet::default(), &run_targets(new.plan));
        return out;
    };
    let old_ix = Indexed::new(old);
    out.old_name = Some(old.plan.name.value.clone());
    out.old_stages = old.graph.stages().len();
    out.settings = plan_settings(old.plan, new.plan);
    out.vars = vars(old.plan, new.plan);
    out.groups = groups(old.plan, new.plan);
    out.targets = HostsDelta::between(&run_targets(old.plan), &run_targets(new.plan));

    let matching = Matching::new(old.plan, new.plan, &old_ix, &new_ix);
    out.removed = matching.removed.iter().map(|p| old_ix.entry(p)).collect();
    out.added = matching.added.iter().map(|p| new_ix.entry(p)).collect();
    let changed_vars: Vec<&VarChange> = out
        .vars
        .iter()
        .filter(|v| v.old.is_some() && v.new.is_some())
        .collect();
    let why = Why {
        groups: &out.groups,
        vars: &changed_vars,
        names: &matching.names,
    };
    let renamed = renamed(&matching.renamed_pairs, &old_ix, &new_ix, &why);
    let changed = changed(old.plan, new.plan, &old_ix, &new_ix, &why);
    out.renamed = renamed;
    out.changed = changed;
    out.stage_moves = stage_moves(old, new, &matching.names);
    (out.edges_added, out.edges_removed) = edge_changes(old, new, &matching.names);
    out.attention = attention(&out, &old_ix, &new_ix);
    out
}

/// How the pushes of two versions pair up: by name, then renames among the rest.
struct Matching<'a> {
    /// Pushes of the old version with no counterpart, in file order.
    removed: Vec<&'a Push>,
    /// Pushes of the new version with no counterpart, in file order.
    added: Vec<&'a Push>,
    /// Old name -> new name, for every push in both versions (renamed or not).
    names: BTreeMap<String, String>,
    /// (old, new) of each renamed push, in the new version's order.
    renamed_pairs: Vec<(&'a Push, &'a Push)>,
}

impl<'a> Matching<'a> {
    /// Added and removed by name, then renames paired among them: first the same request under
    /// a new name, then the same definition as written (hosts as named, files, path, accounts,
    /// settings), whose request may still differ through a changed group or variable (the
    /// fields say how).
    fn new(old: &'a Plan, new: &'a Plan, old_ix: &Indexed<'_>, new_ix: &Indexed<'_>) -> Self {
        let mut matching = Matching {
            removed: old
                .pushes
                .iter()
                .filter(|p| new.push(&p.name.value).is_none())
                .collect(),
            added: new
                .pushes
                .iter()
                .filter(|p| old.push(&p.name.value).is_none())
                .collect(),
            names: old
                .pushes
                .iter()
                .filter(|p| new.push(&p.name.value).is_some())
                .map(|p| (p.name.value.clone(), p.name.value.clone()))
                .collect(),
            renamed_pairs: Vec::new(),
        };
        matching.pair_renames(
            |r| without_task_name(&old_ix.body(&r.name.value)),
            |a| without_task_name(&new_ix.body(&a.name.value)),
        );
        matching.pair_renames(written_key, written_key);
        matching.renamed_pairs.sort_by_key(|(_, a)| a.index);
        matching
    }

    /// Pairs each removed push with the first added one whose key equals its own.
    fn pair_renames<K: PartialEq>(
        &mut self,
        old_key: impl Fn(&Push) -> K,
        new_key: impl Fn(&Push) -> K,
    ) {
        let Matching {
            removed,
            added,
            names,
            renamed_pairs,
        } = self;
        removed.retain(|r| {
            let key = old_key(r);
            match added.iter().position(|a| new_key(a) == key) {
                Some(i) => {
                    let a = added.remove(i);
                    names.insert(r.name.value.clone(), a.name.value.clone());
                    renamed_pairs.push((r, a));
                    false
                }
                None => true,
            }
        });
    }
}

/// What a push's changes are explained by.
struct Why<'x> {
    groups: &'x [GroupChange],
    /// Variables in both versions whose value changed.
    vars: &'x [&'x VarChange],
    /// Old name -> new name (see [`Matching::names`]).
    names: &'x BTreeMap<String, String>,
}

impl Why<'_> {
    /// The fields that differ between two versions of a push: those of the request bodies
    /// given, then those no request carries (`enabled`, `retries`, `after`).
    fn fields(
        &self,
        old: &Push,
        new: &Push,
        old_body: &Value,
        new_body: &Value,
    ) -> Vec<FieldChange> {
        let mut fields = Vec::new();
        diff_values(String::new(), Some(old_body), Some(new_body), &mut fields);
        fields.extend(unsent_fields(old, new, self.names));
        fields
    }

    fn causes(&self, old: &Push, new: &Push, fields: &[FieldChange]) -> Vec<Cause> {
        causes(old, new, self.groups, self.vars, fields)
    }
}

/// Every renamed push, with what changed besides its name.
fn renamed(
    pairs: &[(&Push, &Push)],
    old_ix: &Indexed<'_>,
    new_ix: &Indexed<'_>,
    why: &Why<'_>,
) -> Vec<Renamed> {
    pairs
        .iter()
        .map(|(o, n)| {
            let fields = why.fields(
                o,
                n,
                &without_task_name(&old_ix.body(&o.name.value)),
                &without_task_name(&new_ix.body(&n.name.value)),
            );
            Renamed {
                old: o.name.value.clone(),
                new: n.name.value.clone(),
                targets: HostsDelta::between(&o.target.hosts, &n.target.hosts),
                causes: why.causes(o, n, &fields),
                fields,
            }
        })
        .collect()
}

/// The pushes of the same name in both versions that differ, in the new version's order.
fn changed(
    old: &Plan,
    new: &Plan,
    old_ix: &Indexed<'_>,
    new_ix: &Indexed<'_>,
    why: &Why<'_>,
) -> Vec<ChangedPush> {
    let mut out = Vec::new();
    for n in &new.pushes {
        let Some(o) = old.push(&n.name.value) else {
            continue;
        };
        let (old_body, new_body) = (old_ix.body(&o.name.value), new_ix.body(&n.name.value));
        let fields = why.fields(o, n, &old_body, &new_body);
        if fields.is_empty() {
            continue;
        }
        let targets = HostsDelta::between(&o.target.hosts, &n.target.hosts);
        let causes = why.causes(o, n, &fields);
        out.push(ChangedPush {
            name: n.name.value.clone(),
            fields,
            targets,
            causes,
            old_request: old_body,
            new_request: new_body,
        });
    }
    out
}

/// Pushes in both versions whose stage changed, renames applied, in the new version's order.
fn stage_moves(
    old: DiffSide<'_>,
    new: DiffSide<'_>,
    names: &BTreeMap<String, String>,
) -> Vec<StageMove> {
    let mut moves = Vec::new();
    for o in &old.plan.pushes {
        let Some(new_name) = names.get(&o.name.value) else {
            continue;
        };
        let (Some(was), Some(is)) = (
            old.graph.stage_of(&o.name.value),
            new.graph.stage_of(new_name),
        ) else {
            continue;
        };
        if was != is {
            moves.push(StageMove {
                push: new_name.clone(),
                old: was,
                new: is,
            });
        }
    }
    moves.sort_by_key(|m| new.plan.push(&m.push).map_or(usize::MAX, |p| p.index));
    moves
}

/// Edges (added, removed), renames applied; an edge to or from a removed or added push counts
/// too.
fn edge_changes(
    old: DiffSide<'_>,
    new: DiffSide<'_>,
    names: &BTreeMap<String, String>,
) -> (Vec<EdgeChange>, Vec<EdgeChange>) {
    let map = |name: &str| names.get(name).cloned().unwrap_or_else(|| name.to_owned());
    let old_edges: Vec<EdgeChange> = old
        .graph
        .edges()
        .iter()
        .map(|e| EdgeChange {
            dependency: map(&e.dependency),
            dependent: map(&e.dependent),
            reason: edge_reason(&e.kind),
        })
        .collect();
    let new_edges: Vec<EdgeChange> = new
        .graph
        .edges()
        .iter()
        .map(|e| EdgeChange {
            dependency: e.dependency.clone(),
            dependent: e.dependent.clone(),
            reason: edge_reason(&e.kind),
        })
        .collect();
    let same =
        |a: &EdgeChange, b: &EdgeChange| a.dependency == b.dependency && a.dependent == b.dependent;
    let added = new_edges
        .iter()
        .filter(|e| !old_edges.iter().any(|o| same(o, e)))
        .cloned()
        .collect();
    let removed = old_edges
        .iter()
        .filter(|e| !new_edges.iter().any(|n| same(n, e)))
        .cloned()
        .collect();
    (added, removed)
}

/// A push as written, apart from its name and `after`: hosts as named, files, target path,
/// accounts and settings.
fn written_key(push: &Push) -> String {
    let sources: Vec<(Vec<String>, Vec<&str>, &str)> = push
        .sources
        .iter()
        .map(|s| {
            (
                written_hosts(&s.host_refs),
                s.files.iter().map(|f| f.path.as_str()).collect(),
                s.account.value.as_str(),
            )
        })
        .collect();
    let t = &push.target;
    format!(
        "{:?}",
        (
            sources,
            (written_hosts(&t.host_refs), &t.path.value, &t.account.value),
            push.timeout.as_ref().map(|s| s.value),
            push.upload_speed_limit.as_ref().map(|s| s.value),
            push.download_speed_limit.as_ref().map(|s| s.value),
            push.transfer_mode.as_ref().map(|m| m.value),
            push.retries,
            push.enabled,
        )
    )
}

fn edge_reason(kind: &EdgeKind) -> Option<String> {
    match kind {
        EdgeKind::Explicit { .. } => None,
        EdgeKind::Inferred { reason, .. } => Some(reason.clone()),
    }
}

/// The targets of every push that runs.
fn run_targets(plan: &Plan) -> HostSet {
    let mut set = HostSet::default();
    for push in plan.pushes.iter().filter(|p| p.enabled) {
        let hosts = &push.target.hosts;
        for ip in &hosts.ips {
            if !set.ips.contains(ip) {
                set.ips.push(*ip);
            }
        }
        for g in &hosts.dynamic_groups {
            if !set.dynamic_groups.contains(g) {
                set.dynamic_groups.push(g.clone());
            }
        }
        for t in &hosts.topo_nodes {
            if !set.topo_nodes.contains(t) {
                set.topo_nodes.push(t.clone());
            }
        }
    }
    set
}

fn plan_settings(old: &Plan, new: &Plan) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut cmp = |path: &str, a: Option<Value>, b: Option<Value>| {
        if a != b {
            out.push(FieldChange {
                path: format!("plan.{path}"),
                change: Change::Value { old: a, new: b },
            });
        }
    };
    cmp(
        "name",
        Some(json!(old.name.value)),
        Some(json!(new.name.value)),
    );
    cmp(
        "description",
        old.description.as_ref().map(|d| json!(d)),
        new.description.as_ref().map(|d| json!(d)),
    );
    cmp(
        "bk_biz_id",
        Some(json!(old.bk_biz_id.value)),
        Some(json!(new.bk_biz_id.value)),
    );
    cmp(
        "api",
        Some(json!(old.api.as_str())),
        Some(json!(new.api.as_str())),
    );
    cmp(
        "task_prefix",
        old.task_prefix.as_ref().map(|d| json!(d)),
        new.task_prefix.as_ref().map(|d| json!(d)),
    );
    out
}

fn vars(old: &Plan, new: &Plan) -> Vec<VarChange> {
    let names: BTreeSet<&String> = old.vars.keys().chain(new.vars.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let (a, b) = (old.vars.get(name), new.vars.get(name));
            (a != b).then(|| VarChange {
                name: name.clone(),
                old: a.cloned(),
                new: b.cloned(),
            })
        })
        .collect()
}

fn groups(old: &Plan, new: &Plan) -> Vec<GroupChange> {
    let names: BTreeSet<&String> = old.groups.keys().chain(new.groups.keys()).collect();
    let empty = HostSet::default();
    names
        .into_iter()
        .filter_map(|name| {
            let (a, b) = (old.groups.get(name), new.groups.get(name));
            let hosts = HostsDelta::between(
                a.map_or(&empty, |g| &g.hosts),
                b.map_or(&empty, |g| &g.hosts),
            );
            if hosts.is_empty() && a.is_some() == b.is_some() {
                return None;
            }
            let file = b
                .map(|g| (new, g))
                .or(a.map(|g| (old, g)))
                .and_then(|(plan, g)| plan.sources.try_get(g.span.file).map(|f| f.name.clone()));
            Some(GroupChange {
                name: name.clone(),
                file,
                existed: a.is_some(),
                exists: b.is_some(),
                hosts,
            })
        })
        .collect()
}

/// Changes that are not in the request body: `enabled`, `retries`, `after` (renames applied).
fn unsent_fields(old: &Push, new: &Push, names: &BTreeMap<String, String>) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if old.enabled != new.enabled {
        out.push(FieldChange {
            path: "enabled".into(),
            change: Change::Value {
                old: Some(json!(old.enabled)),
                new: Some(json!(new.enabled)),
            },
        });
    }
    if old.retries != new.retries {
        out.push(FieldChange {
            path: "retries".into(),
            change: Change::Value {
                old: Some(json!(old.retries)),
                new: Some(json!(new.retries)),
            },
        });
    }
    let was: Vec<String> = old
        .after
        .iter()
        .map(|a| {
            names
                .get(&a.value)
                .cloned()
                .unwrap_or_else(|| a.value.clone())
        })
        .collect();
    let is: Vec<String> = new.after.iter().map(|a| a.value.clone()).collect();
    let (added, removed) = (only_in(&is, &was), only_in(&was, &is));
    if !added.is_empty() || !removed.is_empty() {
        out.push(FieldChange {
            path: "after".into(),
            change: Change::Items { added, removed },
        });
    }
    out
}

/// Groups the push names whose resolution changed, and variables whose old value appears in
/// an old value of a changed field and whose new value in the new one.
fn causes(
    old: &Push,
    new: &Push,
    groups: &[GroupChange],
    vars: &[&VarChange],
    fields: &[FieldChange],
) -> Vec<Cause> {
    let mut out = Vec::new();
    let referenced = |push: &Push| -> Vec<String> {
        push.sources
            .iter()
            .flat_map(|s| s.host_refs.iter())
            .chain(push.target.host_refs.iter())
            .filter_map(|r| match r {
                HostRef::Group(g) => Some(g.value.clone()),
                HostRef::Host(_) | HostRef::Range(_) | HostRef::HostId(_) => None,
            })
            .collect()
    };
    let mut names = referenced(new);
    for name in referenced(old) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    for name in names {
        if let Some(g) = groups
            .iter()
            .find(|g| g.name == name && g.existed && g.exists)
        {
            // Only when the push still names it on both sides: otherwise the push itself changed.
            if referenced(old).contains(&name) && referenced(new).contains(&name) {
                out.push(Cause::Group {
                    name: g.name.clone(),
                    file: g.file.clone(),
                });
            }
        }
    }
    for var in vars {
        let (Some(was), Some(is)) = (&var.old, &var.new) else {
            continue;
        };
        if was.is_empty() {
            continue;
        }
        let explains = fields.iter().any(|f| match &f.change {
            Change::Value {
                old: Some(Value::String(a)),
                new: Some(Value::String(b)),
            } => a.contains(was.as_str()) && b.contains(is.as_str()),
            Change::Items { added, removed } => {
                removed.iter().any(|r| r.contains(was.as_str()))
                    && added.iter().any(|a| a.contains(is.as_str()))
            }
            _ => false,
        });
        if explains {
            out.push(Cause::Var {
                name: var.name.clone(),
            });
        }
    }
    out
}

/// Compares two JSON values under `path`, appending one change per differing leaf or list.
fn diff_values(path: String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<FieldChange>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().collect();
            keys.extend(b.keys().filter(|k| !a.contains_key(*k)));
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                diff_values(child, a.get(key), b.get(key), out);
            }
        }
        (a, b) if item_list(a).is_some() && item_list(b).is_some() => {
            let (a, b) = (
                item_list(a).unwrap_or_default(),
                item_list(b).unwrap_or_default(),
            );
            let (added, removed) = (only_in(&b, &a), only_in(&a, &b));
            let change = if added.is_empty() && removed.is_empty() {
                Change::Order
            } else {
                Change::Items { added, removed }
            };
            out.push(FieldChange { path, change });
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                diff_values(format!("{path}[{i}]"), a.get(i), b.get(i), out);
            }
        }
        (a, b) => out.push(FieldChange {
            path,
            change: Change::Value {
                old: a.cloned(),
                new: b.cloned(),
            },
        }),
    }
}

/// A list whose members read as one short string each (hosts, files, selectors); an absent
/// value counts as an empty list so a list that appears or disappears reads as items.
fn item_list(value: Option<&Value>) -> Option<Vec<String>> {
    match value {
        None => Some(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(item_text).collect(),
        Some(_) => None,
    }
}

/// `10.0.0.1` hosts as `cloud:ip`, topo nodes as `type:id`, dynamic groups as their id.
fn item_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Object(map) => object_item(map),
        _ => None,
    }
}

fn object_item(map: &Map<String, Value>) -> Option<String> {
    let keys: BTreeSet<&str> = map.keys().map(String::as_str).collect();
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if keys == BTreeSet::from(["bk_cloud_id", "ip"]) {
        let ip = text(&map["ip"])?;
        let ip = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip
        };
        Some(format!("{}:{ip}", text(&map["bk_cloud_id"])?))
    } else if keys == BTreeSet::from(["id", "node_type"]) {
        Some(format!(
            "{}:{}",
            text(&map["node_type"])?,
            text(&map["id"])?
        ))
    } else if keys == BTreeSet::from(["id"]) {
        text(&map["id"])
    } else {
        None
    }
}

fn attention(diff: &PlanDiff, old: &Indexed<'_>, new: &Indexed<'_>) -> Vec<Attention> {
    let mut out = Vec::new();
    for r in &diff.removed {
        if r.enabled {
            out.push(Attention::Removed {
                push: r.name.clone(),
            });
        }
    }
    for e in &diff.edges_removed {
        let both = new.push(&e.dependency).is_some() && new.push(&e.dependent).is_some();
        if both && !new.side.graph.has_path(&e.dependency, &e.dependent) {
            out.push(Attention::LostOrdering {
                dependency: e.dependency.clone(),
                dependent: e.dependent.clone(),
                was: e.reason.clone().unwrap_or_else(|| "after".to_owned()),
            });
        }
    }
    for c in &diff.changed {
        let now_off = c.fields.iter().any(|f| {
            f.path == "enabled"
                && matches!(
                    &f.change,
                    Change::Value {
                        new: Some(Value::Bool(false)),
                        ..
                    }
                )
        });
        if now_off {
            out.push(Attention::Disabled {
                push: c.name.clone(),
            });
        }
    }
    let moved = diff
        .renamed
        .iter()
        .map(|r| (&r.new, &r.targets))
        .chain(diff.changed.iter().map(|c| (&c.name, &c.targets)));
    for (name, targets) in moved {
        if targets.widened() {
            out.push(Attention::Widened {
                push: name.clone(),
                hosts: targets.clone(),
            });
        }
    }
    let before = old.warnings();
    for key in new.warnings() {
        if !before.contains(&key) {
            let (code, message, push) = key;
            out.push(Attention::NewWarning {
                code,
                message,
                push,
            });
        }
    }
    out
}

/// `plan diff --format json`: the versioned document (`format_version` 1).
///
/// ```json
/// {"format_version": 1, "plan": "release-1-4", "old_plan": "release-1-4",
///  "summary": "...", "has_changes": true, "stages": {"old": 3, "new": 3},
///  "targets": {...}, "attention": [{"kind": "removed", "message": "..."}],
///  "added": [...], "removed": [...], "renamed": [...], "changed": [...],
///  "stage_moves": [...], "edges": {"added": [...], "removed": [...]},
///  "settings": [...], "vars": [...], "groups": [...]}
/// ```
pub fn diff_json(diff: &PlanDiff) -> Value {
    // Serialising these plain structs cannot fail; `Null` keeps this infallible anyway.
    serde_json::to_value(DiffDocument::new(diff)).unwrap_or(Value::Null)
}

/// Field changes as JSON: `{"path", "old", "new"}`, `{"path", "added", "removed"}` or
/// `{"path", "reordered": true}`.
pub fn fields_json(fields: &[FieldChange]) -> Vec<Value> {
    field_entries(fields)
        .iter()
        .map(|f| serde_json::to_value(f).unwrap_or(Value::Null))
        .collect()
}

/// `plan diff --format json`.
#[derive(Serialize, JsonSchema)]
#[schemars(title = "plan diff --format json")]
pub(crate) struct DiffDocument<'a> {
    /// [`FORMAT_VERSION`].
    format_version: u32,
    /// The new version's plan name.
    plan: &'a str,
    /// The old version's plan name; `null` when there was no old version.
    old_plan: Option<&'a str>,
    /// One line for people.
    summary: String,
    has_changes: bool,
    /// The old version's content hash (`sha256:...`); `null` when there was no old version.
    old_hash: Option<&'a str>,
    /// The new version's content hash: `plan apply PLAN --expect` this applies exactly it.
    new_hash: &'a str,
    /// How many stages each version has.
    stages: StageCounts,
    /// How the targets of all pushes together changed.
    targets: HostsDeltaEntry<'a>,
    /// What a reviewer should look at before approving.
    attention: Vec<AttentionEntry<'a>>,
    /// Pushes only in the new version.
    added: Vec<PushSideEntry<'a>>,
    /// Pushes only in the old version.
    removed: Vec<PushSideEntry<'a>>,
    renamed: Vec<RenamedEntry<'a>>,
    changed: Vec<ChangedEntry<'a>>,
    stage_moves: Vec<StageMoveEntry<'a>>,
    edges: EdgeChanges<'a>,
    /// Changes to `[plan]` settings (`plan.name`, `plan.api`, ...).
    settings: Vec<FieldEntry<'a>>,
    vars: Vec<VarEntry<'a>>,
    groups: Vec<GroupEntry<'a>>,
}

impl<'a> DiffDocument<'a> {
    fn new(diff: &'a PlanDiff) -> Self {
        DiffDocument {
            format_version: FORMAT_VERSION,
            plan: &diff.new_name,
            old_plan: diff.old_name.as_deref(),
            summary: diff.summary(),
            has_changes: diff.has_changes(),
            old_hash: diff.old_hash.as_deref(),
            new_hash: &diff.new_hash,
            stages: StageCounts {
                old: diff.old_stages,
                new: diff.new_stages,
            },
            targets: HostsDeltaEntry::of(&diff.targets),
            attention: diff.attention.iter().map(AttentionEntry::of).collect(),
            added: diff.added.iter().map(PushSideEntry::of).collect(),
            removed: diff.removed.iter().map(PushSideEntry::of).collect(),
            renamed: diff.renamed.iter().map(RenamedEntry::of).collect(),
            changed: diff.changed.iter().map(ChangedEntry::of).collect(),
            stage_moves: diff.stage_moves.iter().map(StageMoveEntry::of).collect(),
            edges: EdgeChanges {
                added: diff.edges_added.iter().map(edge_entry).collect(),
                removed: diff.edges_removed.iter().map(edge_entry).collect(),
            },
            settings: field_entries(&diff.settings),
            vars: diff.vars.iter().map(VarEntry::of).collect(),
            groups: diff.groups.iter().map(GroupEntry::of).collect(),
        }
    }
}

/// Stage counts of the two versions.
#[derive(Serialize, JsonSchema)]
struct StageCounts {
    old: usize,
    new: usize,
}

/// Edges only in one version.
#[derive(Serialize, JsonSchema)]
struct EdgeChanges<'a> {
    added: Vec<EdgeEntry<'a>>,
    removed: Vec<EdgeEntry<'a>>,
}

fn edge_entry(edge: &EdgeChange) -> EdgeEntry<'_> {
    EdgeEntry {
        from: &edge.dependency,
        to: &edge.dependent,
        kind: match edge.reason {
            None => EdgeOrigin::Explicit,
            Some(_) => EdgeOrigin::Inferred,
        },
        reason: edge.reason.as_deref(),
    }
}

/// A [`HostsDelta`]: static hosts as `cloud:ip`, other selectors as described.
#[derive(Serialize, JsonSchema)]
struct HostsDeltaEntry<'a> {
    added: Vec<String>,
    removed: Vec<String>,
    /// `dynamic group ID`, `topo module:1000`.
    added_selectors: &'a [String],
    removed_selectors: &'a [String],
}

impl<'a> HostsDeltaEntry<'a> {
    fn of(delta: &'a HostsDelta) -> Self {
        HostsDeltaEntry {
            added: delta.added.iter().map(ToString::to_string).collect(),
            removed: delta.removed.iter().map(ToString::to_string).collect(),
            added_selectors: &delta.added_selectors,
            removed_selectors: &delta.removed_selectors,
        }
    }
}

/// One [`Attention`] item, tagged by `kind`.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum AttentionEntry<'a> {
    /// A push is gone.
    Removed { message: String, push: &'a str },
    /// A push will be skipped.
    Disabled { message: String, push: &'a str },
    /// A push reaches hosts it did not reach before.
    Widened {
        message: String,
        push: &'a str,
        hosts: HostsDeltaEntry<'a>,
    },
    /// A warning the old version did not have.
    NewWarning {
        message: String,
        code: &'a str,
        push: Option<&'a str>,
    },
    /// Two pushes that were ordered no longer are.
    LostOrdering {
        message: String,
        from: &'a str,
        to: &'a str,
    },
}

impl<'a> AttentionEntry<'a> {
    fn of(item: &'a Attention) -> Self {
        let message = item.message();
        match item {
            Attention::Removed { push } => AttentionEntry::Removed { message, push },
            Attention::Disabled { push } => AttentionEntry::Disabled { message, push },
            Attention::Widened { push, hosts } => AttentionEntry::Widened {
                message,
                push,
                hosts: HostsDeltaEntry::of(hosts),
            },
            Attention::NewWarning { code, push, .. } => AttentionEntry::NewWarning {
                message,
                code,
                push: push.as_deref(),
            },
            Attention::LostOrdering {
                dependency,
                dependent,
                ..
            } => AttentionEntry::LostOrdering {
                message,
                from: dependency,
                to: dependent,
            },
        }
    }
}

/// A push present in only one version.
#[derive(Serialize, JsonSchema)]
struct PushSideEntry<'a> {
    name: &'a str,
    /// Its stage in that version.
    stage: usize,
    enabled: bool,
    targets: ResolvedHosts<'a>,
    /// Its JOB request body in that version.
    request: &'a Value,
}

impl<'a> PushSideEntry<'a> {
    fn of(push: &'a PushEntry) -> Self {
        PushSideEntry {
            name: &push.name,
            stage: push.stage,
            enabled: push.enabled,
            targets: ResolvedHosts::of(&push.targets),
            request: &push.request,
        }
    }
}

/// A push under a new name.
#[derive(Serialize, JsonSchema)]
struct RenamedEntry<'a> {
    old: &'a str,
    new: &'a str,
    fields: Vec<FieldEntry<'a>>,
    targets: HostsDeltaEntry<'a>,
    causes: Vec<CauseEntry<'a>>,
}

impl<'a> RenamedEntry<'a> {
    fn of(renamed: &'a Renamed) -> Self {
        RenamedEntry {
            old: &renamed.old,
            new: &renamed.new,
            fields: field_entries(&renamed.fields),
            targets: HostsDeltaEntry::of(&renamed.targets),
            causes: renamed.causes.iter().map(CauseEntry::of).collect(),
        }
    }
}

/// A push in both versions whose body or settings differ.
#[derive(Serialize, JsonSchema)]
struct ChangedEntry<'a> {
    name: &'a str,
    fields: Vec<FieldEntry<'a>>,
    targets: HostsDeltaEntry<'a>,
    causes: Vec<CauseEntry<'a>>,
}

impl<'a> ChangedEntry<'a> {
    fn of(changed: &'a ChangedPush) -> Self {
        ChangedEntry {
            name: &changed.name,
            fields: field_entries(&changed.fields),
            targets: HostsDeltaEntry::of(&changed.targets),
            causes: changed.causes.iter().map(CauseEntry::of).collect(),
        }
    }
}

/// A push that runs in a different stage.
#[derive(Serialize, JsonSchema)]
struct StageMoveEntry<'a> {
    push: &'a str,
    old: usize,
    new: usize,
}

impl<'a> StageMoveEntry<'a> {
    fn of(moved: &'a StageMove) -> Self {
        StageMoveEntry {
            push: &moved.push,
            old: moved.old,
            new: moved.new,
        }
    }
}

/// A changed variable; `null` on the side where it is not defined.
#[derive(Serialize, JsonSchema)]
struct VarEntry<'a> {
    name: &'a str,
    old: Option<&'a str>,
    new: Option<&'a str>,
}

impl<'a> VarEntry<'a> {
    fn of(var: &'a VarChange) -> Self {
        VarEntry {
            name: &var.name,
            old: var.old.as_deref(),
            new: var.new.as_deref(),
        }
    }
}

/// A host group that resolves differently.
#[derive(Serialize, JsonSchema)]
struct GroupEntry<'a> {
    name: &'a str,
    file: Option<&'a str>,
    /// False when the group is new.
    existed: bool,
    /// False when the group was removed.
    exists: bool,
    hosts: HostsDeltaEntry<'a>,
}

impl<'a> GroupEntry<'a> {
    fn of(group: &'a GroupChange) -> Self {
        GroupEntry {
            name: &group.name,
            file: group.file.as_deref(),
            existed: group.existed,
            exists: group.exists,
            hosts: HostsDeltaEntry::of(&group.hosts),
        }
    }
}

/// One changed field: a value replaced, list members added or removed, or a new order.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
enum FieldEntry<'a> {
    /// `null` on the side where the field is absent.
    Value {
        path: &'a str,
        old: &'a Option<Value>,
        new: &'a Option<Value>,
    },
    Items {
        path: &'a str,
        added: &'a [String],
        removed: &'a [String],
    },
    Order {
        path: &'a str,
        /// Always `true`.
        reordered: bool,
    },
}

fn field_entries(fields: &[FieldChange]) -> Vec<FieldEntry<'_>> {
    fields
        .iter()
        .map(|f| match &f.change {
            Change::Value { old, new } => FieldEntry::Value {
                path: &f.path,
                old,
                new,
            },
            Change::Items { added, removed } => FieldEntry::Items {
                path: &f.path,
                added,
                removed,
            },
            Change::Order => FieldEntry::Order {
                path: &f.path,
                reordered: true,
            },
        })
        .collect()
}

/// A [`Cause`]: `{"group", "file"}` or `{"var"}`.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
enum CauseEntry<'a> {
    Group {
        group: &'a str,
        file: Option<&'a str>,
    },
    Var {
        var: &'a str,
    },
}

impl<'a> CauseEntry<'a> {
    fn of(cause: &'a Cause) -> Self {
        match cause {
            Cause::Group { name, file } => CauseEntry::Group {
                group: name,
                file: file.as_deref(),
            },
            Cause::Var { name } => CauseEntry::Var { var: name },
        }
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
