//! The second layer: raw structs of every file -> the validated [`Plan`], checking every rule
//! of the format that does not need the dependency graph and collecting all problems.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use regex::Regex;
use toml::de::DeTable;

use crate::hosts::{HostEntry, HostError, check_host_id, looks_like_host, parse_host_entry};
use crate::kind::ParseErrorKind;
use crate::loader::{IncludeRefused, NotUtf8};
use crate::model::{
    ApiVersion, FileEntry, FileId, FileSourceRef, HostAddr, HostGroup, HostId, HostRange, HostRef,
    HostSet, Located, Origin, Plan, Push, ScopeType, Setting, Source, SourceFiles, Span, Target,
    TopoNode,
};
use crate::paths::{
    PathError, dot_component, is_windows, regex_part, split_file_name, validate_job_path,
};
use crate::problem::{Problem, Severity, char_name, is_invisible, shown, sort_problems};
use crate::raw::{
    FileKind, RawFile, RawGroup, RawHosts, RawPlan, RawPush, RawSource, RawTarget, Walker,
    did_you_mean_help,
};
use crate::vars::{MAX_EXPANDED, VarIssue, is_var_name, substitute};
use crate::{ParseOptions, Parsed, PlanErrors, SourceLoader};
use plan_bkjob::limits::{TIMEOUT_DEFAULT_SECONDS, TIMEOUT_MAX_SECONDS, TIMEOUT_MIN_SECONDS};
use plan_bkjob::scope_for_biz;
use plan_bkjob::task_name::{PLAN_TASK_NAME_MAX_CHARS, RUN_TAG_SUFFIX_CHARS, TASK_NAME_MAX_CHARS};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

mod release;

/// What substituted strings may hold in all, on top of [`EXPANSION_PER_BYTE`] times the size of
/// the plan's files: without a total, a 512 KiB variable used 8,000 times builds 4 GB of paths
/// while each stays under the per-value limit ([`MAX_EXPANDED`]).
const EXPANSION_BASE: usize = 16 << 20;
/// See [`EXPANSION_BASE`]: a large plan may use its variables in proportion to its size.
const EXPANSION_PER_BYTE: usize = 4;

/// How many host selectors groups and pushes may copy from the groups they name, on top of
/// [`HOSTS_PER_BYTE`] per byte of the plan's files. Ordering the plan costs about 100 bytes per
/// copied selector, so the budget keeps memory within a few times what reading the TOML takes
/// (about 30 bytes per byte of plan), with a floor for small plans naming large inventories.
const HOSTS_BASE: usize = 1 << 20;
/// See [`HOSTS_BASE`].
const HOSTS_PER_BYTE: usize = 1;

/// How many unknown names of one plan get a did-you-mean (see `Builder::suggest`).
const SUGGESTIONS: usize = 100;

/// The largest speed limit BK-JOB can carry: it shifts MB/s into KB/s (`<< 10`) in a Java
/// `int`, which overflows from 2^21 MB/s on.
const MAX_SPEED_MB: u32 = (1 << 21) - 1;

/// Reads, walks and validates a plan and its includes.
pub(crate) fn parse(
    path: &Path,
    loader: &dyn SourceLoader,
    options: &ParseOptions,
) -> Result<Parsed, PlanErrors> {
    let mut reading = Reading::default();
    if !reading.read_main(path, loader) {
        return Err(reading.failed());
    }
    reading.read_includes(path, loader);
    if !reading.syntax_ok {
        // Names defined in a file that did not parse, or that could not be read at all,
        // would show up as "unknown" everywhere: the problem is that file, said once.
        return Err(reading.failed());
    }
    validate(reading, options)
}

/// A plan's files as they are read, and the problems found reading them.
#[derive(Default)]
struct Reading {
    sources: SourceFiles,
    problems: Vec<Problem>,
    /// The plan file first, then its includes in order.
    files: Vec<RawFile>,
    /// Whether every file read so far parsed as TOML and decoded (and every include
    /// named could be read).
    syntax_ok: bool,
}

impl Reading {
    fn failed(self) -> PlanErrors {
        PlanErrors::new(self.sources, self.problems)
    }

    /// Reads and walks the plan file; `false` when it cannot be read or is not TOML.
    fn read_main(&mut self, path: &Path, loader: &dyn SourceLoader) -> bool {
        let main_name = path.display().to_string();
        let text = match loader.load(path) {
            Ok(text) => text,
            Err(err) if not_utf8(&err).is_some() => {
                let problem = not_utf8_problem(&mut self.sources, main_name, &err, None);
                self.problems.extend(problem);
                return false;
            }
            Err(err) => {
                self.sources.add(main_name.clone(), "");
                self.problems.push(Problem::error(
                    ParseErrorKind::Unreadable.code(),
                    format!("cannot read `{main_name}`: {err}"),
                ));
                return false;
            }
        };
        let main = self.sources.add(main_name, text);
        let Some(raw) = read_file(&self.sources, main, FileKind::Main, &mut self.problems) else {
            return false;
        };
        self.files.push(raw);
        self.syntax_ok = true;
        true
    }

    /// Reads the files the plan includes, in order, each at most once.
    fn read_includes(&mut self, path: &Path, loader: &dyn SourceLoader) {
        let base = path.parent().unwrap_or(Path::new(""));
        let main_path = normalize(path);
        let mut seen: Vec<(PathBuf, Span)> = Vec::new();
        let includes = self.files[0].include.clone();
        for include in includes {
            let Some(resolved) = self.include_to_read(&include, base, &main_path, &seen) else {
                continue;
            };
            seen.push((resolved.clone(), include.span));
            self.read_include(path, loader, &include, &resolved);
        }
    }

    /// Where an `include` entry points, unless it is empty, absolute, the plan itself or
    /// named twice (reported).
    fn include_to_read(
        &mut self,
        include: &Located<String>,
        base: &Path,
        main_path: &Path,
        seen: &[(PathBuf, Span)],
    ) -> Option<PathBuf> {
        if include.value.trim().is_empty() {
            self.problems.push(
                Problem::error(
                    ParseErrorKind::IncludeUnreadable.code(),
                    "empty include path",
                )
                .with_label(include.span, "name a file relative to this plan"),
            );
            return None;
        }
        if is_absolute_include(&include.value) {
            self.syntax_ok = false;
            self.problems.push(include_refused(
                include,
                &IncludeRefused::Absolute,
                "write the path relative to this plan's directory",
            ));
            return None;
        }
        let resolved = normalize(&base.join(&include.value));
        if resolved == main_path {
            self.problems.push(
                Problem::error(
                    ParseErrorKind::IncludeSelf.code(),
                    "a plan cannot include itself",
                )
                .with_label(include.span, "this is the plan file"),
            );
            return None;
        }
        if let Some((_, first)) = seen.iter().find(|(p, _)| *p == resolved) {
            self.problems.push(
                Problem::error(
                    ParseErrorKind::DuplicateInclude.code(),
                    format!("`{}` is included twice", shown(&include.value)),
                )
                .with_label(include.span, "included again here")
                .with_label(*first, "first included here"),
            );
            return None;
        }
        Some(resolved)
    }

    /// Loads and walks one included file; a refusal or read error is reported at `include`.
    fn read_include(
        &mut self,
        path: &Path,
        loader: &dyn SourceLoader,
        include: &Located<String>,
        resolved: &Path,
    ) {
        match loader.load_include(path, resolved) {
            Ok(text) => {
                let id = self.sources.add(resolved.display().to_string(), text);
                match read_file(&self.sources, id, FileKind::Include, &mut self.problems) {
                    Some(raw) => self.files.push(raw),
                    None => self.syntax_ok = false,
                }
            }
            Err(err) if not_utf8(&err).is_some() => {
                let name = resolved.display().to_string();
                self.problems.extend(not_utf8_problem(
                    &mut self.sources,
                    name,
                    &err,
                    Some(include.span),
                ));
                self.syntax_ok = false;
            }
            Err(err) => {
                self.syntax_ok = false;
                self.problems.push(match refused(&err) {
                    Some(refusal) => include_refused(
                        include,
                        refusal,
                        "an include names a regular file of at most 4 MiB inside the plan's repository (or the plan's directory outside git)",
                    ),
                    None => Problem::error(
                        ParseErrorKind::IncludeUnreadable.code(),
                        format!("cannot read included file `{}`: {err}", resolved.display()),
                    )
                    .with_label(include.span, "included here"),
                });
            }
        }
    }
}

/// Checks every rule of the format on the files read, within budgets proportional to their
/// size; the plan when no error was found, with the warnings.
fn validate(reading: Reading, options: &ParseOptions) -> Result<Parsed, PlanErrors> {
    let Reading {
        sources,
        problems,
        files,
        ..
    } = reading;
    let plan_bytes: usize = sources.iter().map(|(_, file)| file.text.len()).sum();
    let expansion_budget =
        EXPANSION_BASE.saturating_add(plan_bytes.saturating_mul(EXPANSION_PER_BYTE));
    let hosts_budget = HOSTS_BASE.saturating_add(plan_bytes.saturating_mul(HOSTS_PER_BYTE));
    let mut builder = Builder {
        sources: &sources,
        problems,
        options,
        vars: BTreeMap::new(),
        var_defs: BTreeMap::new(),
        used_vars: HashSet::default(),
        groups: BTreeMap::new(),
        group_raw: BTreeMap::new(),
        used_groups: HashSet::default(),
        patterns: HashMap::default(),
        hosts_left: Some(hosts_budget),
        hosts_budget,
        suggestions_left: std::cell::Cell::new(SUGGESTIONS),
        api_walked: HashSet::default(),
        api_reported: HashSet::default(),
        expansion_left: Some(expansion_budget),
        expansion_budget,
    };
    let plan = builder.build(&files);
    let mut problems = builder.problems;
    sort_problems(&mut problems);
    match plan {
        Some(mut plan) if !problems.iter().any(|p| p.severity() == Severity::Error) => {
            plan.sources = sources;
            Ok(Parsed {
                plan,
                warnings: problems,
            })
        }
        _ => Err(PlanErrors::new(sources, problems)),
    }
}

/// Parses one file's TOML and walks it; `None` when the TOML itself is broken.
fn read_file(
    sources: &SourceFiles,
    id: FileId,
    kind: FileKind,
    problems: &mut Vec<Problem>,
) -> Option<RawFile> {
    let text = std::sync::Arc::clone(&sources.get(id).text);
    let (tree, errors) = DeTable::parse_recoverable(&text);
    if !errors.is_empty() {
        // The parser recovers after an error and often trips again on the rest of the same
        // line (an unclosed `[` reports a missing `,`, `]` and `}`): one error per line is
        // what the user has to fix.
        let mut lines_seen = BTreeSet::new();
        for error in errors {
            let line = error.span().map(|span| sources.line_col(id, span.start).0);
            if line.is_none_or(|line| lines_seen.insert(line)) {
                problems.push(toml_problem(id, &text, &error));
            }
        }
        return None;
    }
    let mut walker = Walker { file: id, problems };
    Some(walker.file(tree.get_ref(), kind))
}

/// A TOML syntax error in the same shape as every other problem.
fn toml_problem(file: FileId, text: &str, error: &toml::de::Error) -> Problem {
    let message = error.message().trim().to_owned();
    let mut problem = Problem::error(
        ParseErrorKind::TomlSyntax.code(),
        format!("invalid TOML: {message}"),
    );
    let span = error.span().unwrap_or(text.len()..text.len());
    // The usual cause: a Windows path in a double-quoted string, where `\` starts an escape.
    if message.contains("escape") || message.contains("unicode") {
        problem = problem.with_help(
            "in a double-quoted TOML string `\\` starts an escape: write Windows paths in single quotes ('C:\\data\\app.zip'), or double each backslash",
        );
    }
    problem = problem.with_label(Span::new(file, span), "here");
    problem
}

/// Lexically resolves `.` and `..` so the same file included twice is recognised.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let at_parent = matches!(out.components().next_back(), Some(Component::ParentDir));
                if at_parent || !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn is_plan_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn is_group_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A group's own selectors and those of the groups it includes, merged in the order the file
/// writes them: when `groups = [...]` comes before `ips = [...]` (or `dynamic_groups`,
/// `topo_nodes`), the included hosts are seen first. That is the "first-seen" order requests
/// list hosts in.
fn in_written_order(raw: &RawGroup, own: &HostSet, nested: HostSet) -> HostSet {
    let groups_at = raw.groups.first().map(|g| (g.span.file, g.span.start));
    let nested_first = |own_at: Option<&Span>| matches!((groups_at, own_at.map(|s| (s.file, s.start))), (Some(g), Some(o)) if g < o);
    let mut merged = HostSetBuilder::default();
    if nested_first(raw.ips.first().map(|s| &s.span)) {
        merged.ips(&nested.ips);
        merged.ips(&own.ips);
    } else {
        merged.ips(&own.ips);
        merged.ips(&nested.ips);
    }
    if nested_first(raw.host_ids.first().map(|s| &s.span)) {
        merged.host_ids(&nested.host_ids);
        merged.host_ids(&own.host_ids);
    } else {
        merged.host_ids(&own.host_ids);
        merged.host_ids(&nested.host_ids);
    }
    if nested_first(raw.dynamic_groups.first().map(|s| &s.span)) {
        merged.dynamic_groups(&nested.dynamic_groups);
        merged.dynamic_groups(&own.dynamic_groups);
    } else {
        merged.dynamic_groups(&own.dynamic_groups);
        merged.dynamic_groups(&nested.dynamic_groups);
    }
    if nested_first(raw.topo_nodes.first().map(|s| &s.span)) {
        merged.topo_nodes(&nested.topo_nodes);
        merged.topo_nodes(&own.topo_nodes);
    } else {
        merged.topo_nodes(&own.topo_nodes);
        merged.topo_nodes(&nested.topo_nodes);
    }
    merged.finish()
}

/// How many selectors (static hosts, dynamic groups, topology nodes) a set holds.
fn selector_count(set: &HostSet) -> usize {
    set.ips.len() + set.host_ids.len() + set.dynamic_groups.len() + set.topo_nodes.len()
}

/// Builds a [`HostSet`] without duplicates, in first-seen order, in time linear in what is
/// added: a group of 400,000 hosts must not compare each with all the others.
#[derive(Default)]
struct HostSetBuilder {
    set: HostSet,
    seen_ips: HashSet<HostAddr>,
    seen_host_ids: HashSet<HostId>,
    seen_dynamic_groups: HashSet<String>,
    seen_topo_nodes: HashSet<TopoNode>,
    /// False while `set` is a copy of one deduplicated set whose selectors are not in the
    /// `seen_` sets yet: most pushes name one group, and hashing each of its hosts again
    /// only to find no duplicate was most of the per-host cost of resolving `hosts`.
    indexed: bool,
    /// While not `indexed`: the range `set.ips` starts with, when the set began with one;
    /// the static hosts added after it are in `seen_ips`. A group of a CIDR block and a few
    /// addresses then checks each address against the block instead of hashing the block.
    first_range: Option<HostRange>,
}

/// Below this many selectors a set being built is searched rather than hashed: most groups
/// and pushes hold a handful, and building the hash sets cost more than the scans.
const SCAN_BELOW: usize = 16;

impl HostSetBuilder {
    /// True while the set is small enough to be searched ([`SCAN_BELOW`]) and nothing is in
    /// the `seen_` sets yet.
    fn scanned(&self) -> bool {
        !self.indexed && self.first_range.is_none() && selector_count(&self.set) < SCAN_BELOW
    }

    /// Fills the `seen_` sets from `set` before anything is added to a copied set.
    fn index(&mut self) {
        if self.indexed {
            return;
        }
        self.indexed = true;
        self.first_range = None;
        self.seen_ips.extend(self.set.ips.iter().copied());
        self.seen_host_ids.extend(self.set.host_ids.iter().copied());
        self.seen_dynamic_groups
            .extend(self.set.dynamic_groups.iter().cloned());
        self.seen_topo_nodes
            .extend(self.set.topo_nodes.iter().cloned());
    }

    /// Adds a host; `false` when it was already there.
    fn ip(&mut self, ip: HostAddr) -> bool {
        if self.scanned() {
            let new = !self.set.ips.contains(&ip);
            if new {
                self.set.ips.push(ip);
            }
            return new;
        }
        if let Some(range) = self.first_range.filter(|_| !self.indexed) {
            if range.contains(&ip) {
                return false;
            }
        } else {
            self.index();
        }
        let new = self.seen_ips.insert(ip);
        if new {
            self.set.ips.push(ip);
        }
        new
    }

    /// Adds a host id; `false` when it was already there.
    fn host_id(&mut self, id: HostId) -> bool {
        if self.scanned() {
            let new = !self.set.host_ids.contains(&id);
            if new {
                self.set.host_ids.push(id);
            }
            return new;
        }
        self.index();
        let new = self.seen_host_ids.insert(id);
        if new {
            self.set.host_ids.push(id);
        }
        new
    }

    fn host_ids(&mut self, ids: &[HostId]) {
        for &id in ids {
            self.host_id(id);
        }
    }

    /// Adds what one host string selects; returns the first host it repeats, if any.
    fn entry(&mut self, entry: &HostEntry) -> Option<String> {
        match entry {
            HostEntry::One(host) => (!self.ip(*host)).then(|| host.to_string()),
            HostEntry::Id(id) => (!self.host_id(*id)).then(|| id.to_string()),
            HostEntry::Range(range) if !self.indexed && self.set.is_empty() => {
                // A range's hosts are distinct: the first entry of a set needs no look-ups,
                // and is indexed only if more than static hosts comes (see `first_range`).
                self.set.ips.extend(range.hosts());
                self.first_range = Some(*range);
                None
            }
            HostEntry::Range(range) => {
                let mut repeated = None;
                for host in range.hosts() {
                    if !self.ip(host) && repeated.is_none() {
                        repeated = Some(host.to_string());
                    }
                }
                repeated
            }
        }
    }

    fn ips(&mut self, ips: &[HostAddr]) {
        for &ip in ips {
            self.ip(ip);
        }
    }

    fn dynamic_groups(&mut self, ids: &[String]) {
        for id in ids {
            if self.scanned() {
                if !self.set.dynamic_groups.contains(id) {
                    self.set.dynamic_groups.push(id.clone());
                }
                continue;
            }
            self.index();
            if !self.seen_dynamic_groups.contains(id) {
                self.seen_dynamic_groups.insert(id.clone());
                self.set.dynamic_groups.push(id.clone());
            }
        }
    }

    fn topo_nodes(&mut self, nodes: &[TopoNode]) {
        for node in nodes {
            if self.scanned() {
                if !self.set.topo_nodes.contains(node) {
                    self.set.topo_nodes.push(node.clone());
                }
                continue;
            }
            self.index();
            if !self.seen_topo_nodes.contains(node) {
                self.seen_topo_nodes.insert(node.clone());
                self.set.topo_nodes.push(node.clone());
            }
        }
    }

    /// Adds every selector of a set the builder made (so without duplicates).
    fn extend(&mut self, more: &HostSet) {
        if !self.indexed && self.set.is_empty() && !more.is_empty() {
            // Nothing to compare with yet: a plain copy, indexed only if more comes.
            self.set = more.clone();
            return;
        }
        self.ips(&more.ips);
        self.host_ids(&more.host_ids);
        self.dynamic_groups(&more.dynamic_groups);
        self.topo_nodes(&more.topo_nodes);
    }

    fn finish(self) -> HostSet {
        self.set
    }
}

/// [`Builder::charge_hosts`] on the fields it changes, so that a caller holding a group
/// borrowed from the builder can charge its selectors.
fn charge_selectors(
    hosts_left: &mut Option<usize>,
    hosts_budget: usize,
    problems: &mut Vec<Problem>,
    count: usize,
    span: Span,
) -> bool {
    let Some(left) = *hosts_left else {
        return false;
    };
    if count <= left {
        *hosts_left = Some(left - count);
        return true;
    }
    *hosts_left = None;
    problems.push(
        Problem::error(
            ParseErrorKind::HostExpansionLimit.code(),
            format!("host groups expand this plan past {hosts_budget} host selectors in all"),
        )
        .with_label(span, "the budget runs out here")
        .with_help(format!(
            "every push and group copies the hosts of the groups it names; the plan may copy {HOSTS_BASE} selectors plus one per byte of its files in all: name a large group in fewer pushes (one push may carry many files)"
        )),
    );
    false
}

/// A group after its own entries were checked, before nested `groups` are expanded.
#[derive(Debug)]
struct GroupState {
    own: HostSet,
    broken: bool,
    expanded: Option<HostSet>,
}

struct Builder<'a> {
    sources: &'a SourceFiles,
    problems: Vec<Problem>,
    options: &'a ParseOptions,
    /// Effective values (plan, then `--var` overrides).
    vars: BTreeMap<String, String>,
    /// Where each plan-defined var is written.
    var_defs: BTreeMap<String, Span>,
    used_vars: HashSet<String>,
    groups: BTreeMap<String, GroupState>,
    group_raw: BTreeMap<String, &'a RawGroup>,
    used_groups: HashSet<String>,
    /// `REGEX:` patterns already compiled: `Err` holds why one does not compile.
    patterns: HashMap<String, Result<(), String>>,
    /// Selectors groups and pushes may still copy from the groups they name ([`HOSTS_BASE`]);
    /// `None` once exceeded (and reported).
    hosts_left: Option<usize>,
    /// The whole budget, for the message.
    hosts_budget: usize,
    /// How many more unknown names get a did-you-mean ([`SUGGESTIONS`]).
    suggestions_left: std::cell::Cell<usize>,
    /// Groups already walked for hosts the plan's API family cannot take.
    api_walked: HashSet<String>,
    /// Host selectors already reported as refused by the plan's API family.
    api_reported: HashSet<Span>,
    /// Bytes substituted strings may still produce ([`EXPANSION_BASE`]); `None` once exceeded
    /// (and reported).
    expansion_left: Option<usize>,
    /// The whole budget, for the message.
    expansion_budget: usize,
}

impl<'a> Builder<'a> {
    fn error(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// Charges `count` selectors copied from a group into another group or a push. `false`
    /// once the plan's budget ([`HOSTS_BASE`]) is spent, reported once at `span`: a group of
    /// 10,000 hosts named by a million pushes would otherwise copy ten billion selectors.
    fn charge_hosts(&mut self, count: usize, span: Span) -> bool {
        charge_selectors(
            &mut self.hosts_left,
            self.hosts_budget,
            &mut self.problems,
            count,
            span,
        )
    }

    /// Charges the `count` hosts a range or CIDR block expands to, like [`Self::charge_hosts`]:
    /// ten thousand pushes each naming a `/16` would otherwise build 655 million hosts.
    fn charge_range(&mut self, count: usize, span: Span) -> bool {
        let Some(left) = self.hosts_left else {
            return false;
        };
        if count <= left {
            self.hosts_left = Some(left - count);
            return true;
        }
        self.hosts_left = None;
        self.error(
            Problem::error(
                ParseErrorKind::HostExpansionLimit.code(),
                format!(
                    "host ranges and groups expand this plan past {} host selectors in all",
                    self.hosts_budget
                ),
            )
            .with_label(span, "the budget runs out here")
            .with_help(format!(
                "ranges, CIDR blocks and the groups pushes name may select {HOSTS_BASE} hosts plus one per byte of the plan's files in all: name a large range in a group and that group in fewer pushes, or select the hosts through a dynamic group or a topology node"
            )),
        );
        false
    }

    /// The earlier entry of a push's `hosts` that already selects `repeated` (only looked
    /// for when a warning is due).
    fn earlier_in_hosts(&self, earlier: &[Located<String>], repeated: &str) -> Option<Span> {
        earlier.iter().find_map(|name| {
            if looks_like_host(&name.value) {
                return earlier_entry(std::slice::from_ref(name), repeated);
            }
            let group = self.groups.get(&name.value)?;
            let set = group.expanded.as_ref().unwrap_or(&group.own);
            let in_group = set.ips.iter().any(|h| h.to_string() == repeated)
                || set.host_ids.iter().any(|h| h.to_string() == repeated);
            in_group.then_some(name.span)
        })
    }

    /// A did-you-mean help line, for the first [`SUGGESTIONS`] unknown names of the plan: each
    /// compares the name with every candidate, so a plan of a million misspelt references
    /// would be quadratic.
    fn suggest<'c>(
        &self,
        word: &str,
        candidates: impl IntoIterator<Item = &'c str>,
    ) -> Option<String> {
        let left = self.suggestions_left.get();
        if left == 0 {
            return None;
        }
        self.suggestions_left.set(left - 1);
        did_you_mean_help(word, candidates)
    }

    fn build(&mut self, files: &'a [RawFile]) -> Option<Plan> {
        let raw_plan = files.first().and_then(|f| f.plan.as_ref());
        self.collect_vars(files);
        self.collect_groups(files);
        let settings = raw_plan.map(|p| self.plan_settings(p));
        let pushes = self.pushes(
            files.first().map_or(&[][..], |f| &f.pushes[..]),
            settings.as_ref(),
        );
        self.unused_warnings();

        let settings = settings?;
        self.check_task_names(&settings, &pushes);
        let groups = std::mem::take(&mut self.groups)
            .into_iter()
            .filter_map(|(name, state)| {
                let raw = self.group_raw.get(&name)?;
                Some((
                    name.clone(),
                    HostGroup {
                        name,
                        span: raw.name.span,
                        hosts: state.expanded.unwrap_or(state.own),
                    },
                ))
            })
            .collect();
        Some(Plan {
            name: settings.name?,
            description: settings.description,
            bk_biz_id: settings.bk_biz_id?,
            scope_type: settings.scope_type,
            api: settings.api,
            task_prefix: settings.task_prefix.map(|t| t.value),
            vars: self.vars.clone(),
            groups,
            pushes,
            sources: SourceFiles::default(),
        })
    }

    // ---- vars ---------------------------------------------------------------------------

    fn collect_vars(&mut self, files: &[RawFile]) {
        for file in files {
            for (name, value) in &file.vars {
                if let Some(first) = self.var_defs.get(&name.value) {
                    let first = *first;
                    self.error(
                        Problem::error(
                            ParseErrorKind::DuplicateVar.code(),
                            format!("variable `{}` is defined twice", name.value),
                        )
                        .with_label(name.span, "defined again here")
                        .with_label(first, "first defined here"),
                    );
                    continue;
                }
                if !is_var_name(&name.value) {
                    self.error(
                        Problem::error(
                            ParseErrorKind::InvalidVarName.code(),
                            format!("`{}` is not a valid variable name", name.value),
                        )
                        .with_label(name.span, "expected [A-Za-z_][A-Za-z0-9_-]*"),
                    );
                    continue;
                }
                self.var_defs.insert(name.value.clone(), name.span);
                self.vars.insert(name.value.clone(), value.value.clone());
            }
        }
        for (name, value) in &self.options.vars {
            self.vars.insert(name.clone(), value.clone());
        }
    }

    /// Substitutes `${var}` in a string, reporting every bad reference at its own span.
    fn subst(&mut self, s: &Located<String>) -> Option<String> {
        if !s.value.contains('$') {
            // Nothing to substitute (most strings of a plan).
            return Some(s.value.clone());
        }
        // `None`: reported once where the budget ran out; the plan is already invalid.
        let left = self.expansion_left?;
        let used_vars = &mut self.used_vars;
        let result = substitute(&s.value, &self.vars, left.min(MAX_EXPANDED), |name| {
            if !used_vars.contains(name) {
                used_vars.insert(name.to_owned());
            }
        });
        self.expansion_left = Some(left - result.text.len().min(left));
        if result.issues.is_empty() {
            return Some(result.text);
        }
        for (range, issue) in result.issues {
            let span = self.inner_span(s, range);
            let problem = match issue {
                VarIssue::Undefined(name) => {
                    let help = self
                        .suggest(&name, self.vars.keys().map(String::as_str))
                        .unwrap_or_else(|| {
                            format!(
                                "define it under [vars] or pass `--var {name}=VALUE`; write `$${{` for a literal `${{`"
                            )
                        });
                    Problem::error(
                        ParseErrorKind::UndefinedVar.code(),
                        format!("undefined variable `{name}`"),
                    )
                    .with_label(span, "not defined in [vars] or by --var")
                    .with_help(help)
                }
                VarIssue::Unterminated => Problem::error(
                    ParseErrorKind::UnterminatedVar.code(),
                    "`${` without a closing `}`",
                )
                .with_label(span, "unterminated")
                .with_help("write `$${` for a literal `${`"),
                VarIssue::BadName(name) => Problem::error(
                    ParseErrorKind::InvalidVarName.code(),
                    format!("`{name}` is not a valid variable name"),
                )
                .with_label(span, "expected [A-Za-z_][A-Za-z0-9_-]*")
                .with_help("write `$${` for a literal `${`"),
                VarIssue::TooLong(len) if len < MAX_EXPANDED => {
                    self.expansion_left = None;
                    Problem::error(
                        ParseErrorKind::ExpansionLimit.code(),
                        format!(
                            "variables expand this plan past {} bytes in all",
                            self.expansion_budget
                        ),
                    )
                    .with_label(span, "the budget runs out here")
                    .with_help(format!(
                        "substituted strings may hold {EXPANSION_BASE} bytes plus {EXPANSION_PER_BYTE} times the size of the plan's files in all; a variable this large, used this often, is no set of paths JOB can take"
                    ))
                }
                VarIssue::TooLong(len) => Problem::error(
                    ParseErrorKind::ValueTooLong.code(),
                    format!("this value is longer than {len} bytes once variables are substituted"),
                )
                .with_label(span, "expands past the limit here")
                .with_help("a path or account this long is no file JOB can name; check the variables it uses"),
            };
            self.error(problem);
        }
        None
    }

    /// The span of `range` (bytes of the decoded string) inside the string literal, found by
    /// looking for the same text in the source; the whole string when escapes hide it.
    fn inner_span(&self, s: &Located<String>, range: std::ops::Range<usize>) -> Span {
        let Some(needle) = s.value.get(range.clone()) else {
            return s.span;
        };
        let nth = s.value[..range.start].matches(needle).count();
        let text = &self.sources.get(s.span.file).text;
        let Some(raw) = text.get(s.span.start..s.span.start + s.span.len) else {
            return s.span;
        };
        raw.match_indices(needle).nth(nth).map_or(s.span, |(i, _)| {
            Span::new(
                s.span.file,
                s.span.start + i..s.span.start + i + needle.len(),
            )
        })
    }

    // ---- host groups --------------------------------------------------------------------

    fn collect_groups(&mut self, files: &'a [RawFile]) {
        for file in files {
            for group in &file.groups {
                let name = &group.name;
                if let Some(first) = self.group_raw.get(&name.value) {
                    let first = first.name.span;
                    self.error(
                        Problem::error(
                            ParseErrorKind::DuplicateGroup.code(),
                            format!("host group `{}` is defined twice", name.value),
                        )
                        .with_label(name.span, "defined again here")
                        .with_label(first, "first defined here"),
                    );
                    continue;
                }
                if !is_group_name(&name.value) || looks_like_host(&name.value) {
                    let help = if is_group_name(&name.value) {
                        "a name of digits and dots would read as an IP address in `hosts`"
                    } else {
                        "group names use letters, digits, `_`, `.` and `-`"
                    };
                    let label =
                        invisible_label(&name.value).unwrap_or_else(|| "invalid name".to_owned());
                    self.error(
                        Problem::error(
                            ParseErrorKind::InvalidGroupName.code(),
                            format!("`{}` is not a valid host group name", shown(&name.value)),
                        )
                        .with_label(name.span, label)
                        .with_help(help),
                    );
                }
                let own = self.group_own(group);
                self.group_raw.insert(name.value.clone(), group);
                self.groups.insert(name.value.clone(), own);
            }
        }
        self.expand_groups();
        let empty: BTreeSet<String> = self
            .groups
            .iter()
            .filter(|(_, g)| !g.broken && g.expanded.as_ref().is_some_and(HostSet::is_empty))
            .map(|(name, _)| name.clone())
            .collect();
        // Report only the groups that are empty themselves, not those empty because a group
        // they include is (that one is reported); pushes using any of them stay quiet too.
        let reported: Vec<(String, Span)> = empty
            .iter()
            .filter_map(|name| {
                let raw = self.group_raw.get(name)?;
                let cascade = raw.groups.iter().any(|r| empty.contains(&r.value));
                (!cascade).then(|| (name.clone(), raw.name.span))
            })
            .collect();
        for name in &empty {
            self.mark_broken(name);
        }
        for (name, span) in reported {
            self.error(
                Problem::error(
                    ParseErrorKind::EmptyGroup.code(),
                    format!("host group `{name}` selects no hosts"),
                )
                .with_label(span, "empty after expanding `groups`")
                .with_help(
                    "give it `ips`, `dynamic_groups`, `topo_nodes` or `groups` that name hosts",
                ),
            );
        }
    }

    /// Checks a group's own `ips` and `dynamic_groups`.
    fn group_own(&mut self, group: &RawGroup) -> GroupState {
        let mut own = HostSetBuilder::default();
        let mut broken = group.had_errors;
        // Host ids and addresses in the order the file writes the two keys (first-seen order).
        let ids_first = matches!(
            (group.host_ids.first(), group.ips.first()),
            (Some(id), Some(ip)) if (id.span.file, id.span.start) < (ip.span.file, ip.span.start)
        );
        for pass in [ids_first, !ids_first] {
            if pass {
                for id in &group.host_ids {
                    match check_host_id(id.value) {
                        Ok(host_id) => {
                            if !own.host_id(host_id) {
                                self.duplicate_host(
                                    &Located {
                                        value: id.value.to_string(),
                                        span: id.span,
                                    },
                                    &host_id.to_string(),
                                    None,
                                );
                            }
                        }
                        Err(why) => {
                            self.error(
                                Problem::error(
                                    ParseErrorKind::InvalidHostId.code(),
                                    format!("invalid host id: {why}"),
                                )
                                .with_label(id.span, "not a positive integer")
                                .with_help("`host_ids` lists CMDB `bk_host_id`s, integers >= 1"),
                            );
                            broken = true;
                        }
                    }
                }
            } else {
                for (index, ip) in group.ips.iter().enumerate() {
                    match self.host_entry(ip) {
                        Some(entry) => {
                            if let Some(repeated) = own.entry(&entry) {
                                let earlier = earlier_entry(&group.ips[..index], &repeated);
                                self.duplicate_host(ip, &repeated, earlier);
                            }
                        }
                        None => broken = true,
                    }
                }
            }
        }
        for dynamic in &group.dynamic_groups {
            if dynamic.value.trim().is_empty() || dynamic.value.contains(char::is_whitespace) {
                self.error(
                    Problem::error(
                        ParseErrorKind::InvalidDynamicGroup.code(),
                        format!("invalid dynamic group id `{}`", shown(&dynamic.value)),
                    )
                    .with_label(dynamic.span, "a CMDB dynamic group id has no spaces"),
                );
                broken = true;
            } else {
                own.dynamic_groups(std::slice::from_ref(&dynamic.value));
            }
        }
        for node in &group.topo_nodes {
            own.topo_nodes(std::slice::from_ref(&node.value));
        }
        GroupState {
            own: own.finish(),
            broken,
            expanded: None,
        }
    }

    /// Parses a host string, reporting it when invalid. A range is charged to the plan's
    /// host budget: it is the one way a few bytes of plan select thousands of hosts.
    fn host_entry(&mut self, s: &Located<String>) -> Option<HostEntry> {
        match parse_host_entry(&s.value) {
            Ok(HostEntry::Range(range)) => {
                let len = usize::try_from(range.len()).unwrap_or(usize::MAX);
                self.charge_range(len, s.span)
                    .then_some(HostEntry::Range(range))
            }
            Ok(entry) => Some(entry),
            Err(error) => {
                self.host_error(s, error);
                None
            }
        }
    }

    fn host_error(&mut self, s: &Located<String>, error: HostError) {
        let HostError {
            kind,
            message,
            at,
            help,
        } = error;
        let span = at.map_or(s.span, |at| self.inner_span(s, at));
        let label = match kind {
            ParseErrorKind::InvalidHost => "not a host BK-JOB accepts",
            ParseErrorKind::InvalidHostId => "not a CMDB host id",
            ParseErrorKind::HostRangeTooLarge => "too many hosts",
            _ => "not a valid range",
        };
        // The reason goes into the message too: JSON and GitHub output carry no labels.
        self.error(
            Problem::error(
                kind.code(),
                format!("invalid host `{}`: {message}", shown(&s.value)),
            )
            .with_label(span, label)
            .with_help(help),
        );
    }

    /// Warns that an entry of a host list selects a host an earlier entry already selects.
    fn duplicate_host(&mut self, entry: &Located<String>, repeated: &str, earlier: Option<Span>) {
        let mut problem = Problem::warning(
            ParseErrorKind::DuplicateHost.code(),
            format!(
                "`{}` selects `{repeated}`, which an earlier entry already selects",
                shown(&entry.value)
            ),
        )
        .with_label(entry.span, "repeats a host");
        if let Some(earlier) = earlier {
            problem = problem.with_label(earlier, "first selected here");
        }
        self.error(problem.with_help(
            "each host is sent to JOB once; remove the overlap (or narrow the range) to say each host once",
        ));
    }

    /// Expands nested `groups` without recursion (deep chains must not overflow the stack),
    /// reporting unknown references and cycles.
    fn expand_groups(&mut self) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        let mut visiting: HashSet<String> = HashSet::default();
        let mut reported_cycles: HashSet<Vec<String>> = HashSet::default();
        for root in names {
            if self.groups.get(&root).is_none_or(|g| g.expanded.is_some()) {
                continue;
            }
            // Most groups include no other group: they are their own hosts, no walk needed.
            if self
                .group_raw
                .get(&root)
                .is_some_and(|raw| raw.groups.is_empty())
            {
                if let Some(state) = self.groups.get_mut(&root) {
                    // Moved, not copied: nothing reads a group's own hosts once it is expanded
                    // but the expansion of a group that includes others (not this one).
                    state.expanded = Some(std::mem::take(&mut state.own));
                }
                continue;
            }
            // (group, index of the next `groups` entry to follow)
            let mut stack: Vec<(String, usize)> = vec![(root.clone(), 0)];
            visiting.insert(root);
            while let Some((name, index)) = stack.last().cloned() {
                let Some(raw) = self.group_raw.get(&name).copied() else {
                    stack.pop();
                    continue;
                };
                if let Some(reference) = raw.groups.get(index) {
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                    let target = &reference.value;
                    if !self.groups.contains_key(target) {
                        let help = self.suggest(target, self.groups.keys().map(String::as_str));
                        self.error(
                            Problem::error(
                                ParseErrorKind::UnknownGroup.code(),
                                format!("unknown host group `{target}`"),
                            )
                            .with_label(reference.span, "no [hosts] group with this name")
                            .with_help_opt(help),
                        );
                        self.mark_broken(&name);
                    } else if visiting.contains(target) {
                        self.report_group_cycle(&stack, target, &mut reported_cycles);
                        self.mark_broken(&name);
                    } else if self
                        .groups
                        .get(target)
                        .is_some_and(|g| g.expanded.is_none())
                    {
                        visiting.insert(target.clone());
                        stack.push((target.clone(), 0));
                    }
                    self.used_groups.insert(target.clone());
                } else {
                    let mut nested = HostSetBuilder::default();
                    let mut broken = false;
                    for reference in &raw.groups {
                        let size = self
                            .groups
                            .get(&reference.value)
                            .and_then(|child| child.expanded.as_ref())
                            .map_or(0, selector_count);
                        if !self.charge_hosts(size, reference.span) {
                            broken = true;
                            break;
                        }
                        if let Some(child) = self.groups.get(&reference.value) {
                            broken |= child.broken;
                            if let Some(expanded) = &child.expanded {
                                nested.extend(expanded);
                            }
                        }
                    }
                    let empty = HostSet::default();
                    let own = self.groups.get(&name).map_or(&empty, |g| &g.own);
                    let set = in_written_order(raw, own, nested.finish());
                    if let Some(state) = self.groups.get_mut(&name) {
                        state.broken |= broken;
                        state.expanded = Some(set);
                    }
                    visiting.remove(&name);
                    stack.pop();
                }
            }
        }
    }

    fn mark_broken(&mut self, name: &str) {
        if let Some(state) = self.groups.get_mut(name) {
            state.broken = true;
        }
    }

    fn report_group_cycle(
        &mut self,
        stack: &[(String, usize)],
        target: &str,
        reported: &mut HashSet<Vec<String>>,
    ) {
        let Some(start) = stack.iter().position(|(n, _)| n == target) else {
            return;
        };
        let members = &stack[start..];
        let mut key: Vec<String> = members.iter().map(|(n, _)| n.clone()).collect();
        key.sort();
        if !reported.insert(key) {
            return;
        }
        let mut path: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
        path.push(target);
        let mut problem = Problem::error(
            ParseErrorKind::GroupCycle.code(),
            format!(
                "host group `{target}` includes itself: `{}`",
                path.join(" -> ")
            ),
        );
        for (i, (name, index)) in members.iter().enumerate() {
            let next = path.get(i + 1).copied().unwrap_or(target);
            if let Some(reference) = self
                .group_raw
                .get(name)
                .and_then(|raw| raw.groups.get(index.saturating_sub(1)))
            {
                problem = problem.with_label(reference.span, format!("`{name}` includes `{next}`"));
            }
        }
        self.error(problem.with_help("remove one of these `groups` entries to break the cycle"));
    }

    /// Host selectors JOB's API family cannot take, reported at the host string (once,
    /// however many pushes use it): IPv6 static hosts in both families (v3 validates
    /// `ip_list[].ip` as IPv4, "Invalid IP"; v2 looks static hosts up by cloud and IPv4 and
    /// fails the call with `1244030`), and host ids in v2 (it has no `host_id_list`).
    fn api_host_rules(&mut self, hosts: &RawHosts, api: ApiVersion) {
        let mut found: Vec<(Span, String, ApiRefusal)> = Vec::new();
        for name in &hosts.names {
            if looks_like_host(&name.value) {
                if let Some(refusal) = refusal(&name.value, api) {
                    found.push((name.span, name.value.clone(), refusal));
                }
            } else {
                self.refused_in_group(&name.value, api, &mut found);
            }
        }
        for (span, text, refusal) in found {
            if self.api_reported.insert(span) {
                self.error(api_refusal_problem(span, &text, refusal));
            }
        }
    }

    /// What [`Self::api_host_rules`] refuses among a group's `ips` and `host_ids`, following
    /// its `groups` without recursion (a chain of groups may be as long as the plan). Each
    /// group is walked once per plan: what it holds was reported when the first push used it.
    fn refused_in_group(
        &mut self,
        name: &str,
        api: ApiVersion,
        found: &mut Vec<(Span, String, ApiRefusal)>,
    ) {
        let mut stack: Vec<&'a RawGroup> = Vec::new();
        let visit = |builder: &mut Self, name: &str, stack: &mut Vec<&'a RawGroup>| {
            // Looked up before inserting: most names were walked already, and an owned copy
            // of each was an allocation per push.
            if !builder.api_walked.contains(name)
                && builder.api_walked.insert(name.to_owned())
                && let Some(raw) = builder.group_raw.get(name).copied()
            {
                stack.push(raw);
            }
        };
        visit(self, name, &mut stack);
        while let Some(raw) = stack.pop() {
            for ip in &raw.ips {
                if let Some(refusal) = refusal(&ip.value, api) {
                    found.push((ip.span, ip.value.clone(), refusal));
                }
            }
            if api == ApiVersion::V2 {
                for id in &raw.host_ids {
                    found.push((
                        id.span,
                        format!("host_id:{}", id.value),
                        ApiRefusal::HostIdInV2,
                    ));
                }
            }
            for nested in raw.groups.iter().rev() {
                visit(self, &nested.value, &mut stack);
            }
        }
    }

    /// Resolves a `hosts = ...` value of a push.
    fn resolve_hosts(&mut self, hosts: &RawHosts) -> (Vec<HostRef>, HostSet, bool) {
        let mut refs = Vec::new();
        let mut set = HostSetBuilder::default();
        let mut broken = false;
        for (index, name) in hosts.names.iter().enumerate() {
            if looks_like_host(&name.value) {
                match self.host_entry(name) {
                    Some(entry) => {
                        if let Some(repeated) = set.entry(&entry) {
                            let earlier = self.earlier_in_hosts(&hosts.names[..index], &repeated);
                            self.duplicate_host(name, &repeated, earlier);
                        }
                        let span = name.span;
                        refs.push(match entry {
                            HostEntry::One(value) => HostRef::Host(Located { value, span }),
                            HostEntry::Range(value) => HostRef::Range(Located { value, span }),
                            HostEntry::Id(value) => HostRef::HostId(Located { value, span }),
                        });
                    }
                    None => broken = true,
                }
                continue;
            }
            if !self.used_groups.contains(&name.value) {
                self.used_groups.insert(name.value.clone());
            }
            // One look-up of the group (a search among every group's name), its selectors
            // charged to the budget through the fields the look-up does not borrow.
            match self.groups.get(&name.value) {
                Some(group) => {
                    let hosts = group.expanded.as_ref().unwrap_or(&group.own);
                    if !charge_selectors(
                        &mut self.hosts_left,
                        self.hosts_budget,
                        &mut self.problems,
                        selector_count(hosts),
                        name.span,
                    ) {
                        broken = true;
                        continue;
                    }
                    broken |= group.broken;
                    set.extend(hosts);
                    refs.push(HostRef::Group(name.clone()));
                }
                None => {
                    broken = true;
                    if !self.charge_hosts(0, name.span) {
                        continue;
                    }
                    let help = if name.value.contains("${") {
                        Some(
                            "`${...}` is not substituted in `hosts`: write the group name or the host itself"
                                .to_owned(),
                        )
                    } else {
                        self.suggest(&name.value, self.groups.keys().map(String::as_str))
                    }
                    .or_else(|| {
                                Some(
                                "define it as [hosts.NAME], or write a host as `ip` or `cloud:ip`"
                                    .to_owned(),
                            )
                            });
                    self.error(
                        Problem::error(
                            ParseErrorKind::UnknownGroup.code(),
                            format!("unknown host group `{}`", shown(&name.value)),
                        )
                        .with_label(name.span, "no [hosts] group with this name")
                        .with_help_opt(help),
                    );
                }
            }
        }
        (refs, set.finish(), broken)
    }

    // ---- [plan] ---------------------------------------------------------------------------

    fn plan_settings(&mut self, raw: &RawPlan) -> PlanSettings {
        let name = raw.name.clone().filter(|name| {
            let ok = is_plan_name(&name.value);
            if !ok {
                self.invalid_name(name, "plan");
            }
            ok
        });
        let (bk_biz_id, scope_type) = self.scope(raw);
        let account = raw.account.as_ref().and_then(|a| {
            let value = self.subst(a)?;
            self.check_account(&value, a.span).then_some(Setting {
                value,
                origin: Origin::Plan,
                span: a.span,
            })
        });
        let timeout = raw
            .timeout
            .as_ref()
            .and_then(|t| self.timeout(t))
            .map(|value| Setting {
                value,
                origin: Origin::Plan,
                span: raw.timeout.as_ref().map_or(raw.span, |t| t.span),
            });
        let upload = raw
            .upload_speed_limit
            .as_ref()
            .and_then(|v| {
                self.speed(v, "upload_speed_limit")
                    .map(|value| (value, v.span))
            })
            .map(|(value, span)| Setting {
                value,
                origin: Origin::Plan,
                span,
            });
        let download = raw
            .download_speed_limit
            .as_ref()
            .and_then(|v| {
                self.speed(v, "download_speed_limit")
                    .map(|value| (value, v.span))
            })
            .map(|(value, span)| Setting {
                value,
                origin: Origin::Plan,
                span,
            });
        let callback_url = self.plan_callback_url(raw.callback_url.as_ref());
        PlanSettings {
            callback_url,
            span: raw.span,
            name,
            description: raw.description.clone(),
            bk_biz_id,
            scope_type,
            api: self
                .options
                .api
                .or(raw.api.as_ref().map(|a| a.value))
                .unwrap_or_default(),
            task_prefix: raw.task_prefix.clone(),
            account,
            account_written: raw.account_key,
            timeout,
            upload,
            download,
        }
    }

    /// The plan's scope: `bk_biz_id`, or `bk_scope_type` with `bk_scope_id` (both may be
    /// written when they agree).
    fn scope(&mut self, raw: &RawPlan) -> (Option<Located<i64>>, ScopeType) {
        let positive = |this: &mut Self, id: &Located<i64>, key: &str| {
            let ok = id.value >= 1;
            if !ok {
                this.error(
                    Problem::error(
                        ParseErrorKind::OutOfRange.code(),
                        format!("`{key}` must be >= 1"),
                    )
                    .with_label(id.span, format!("found {}", id.value)),
                );
            }
            ok
        };
        let biz = raw
            .bk_biz_id
            .clone()
            .filter(|id| positive(self, id, "bk_biz_id"));
        let scope_id = raw
            .bk_scope_id
            .clone()
            .filter(|id| positive(self, id, "bk_scope_id"));
        let scope_type = raw
            .bk_scope_type
            .as_ref()
            .and_then(|t| match t.value.as_str() {
                "biz" => Some(ScopeType::Biz),
                "biz_set" => Some(ScopeType::BizSet),
                other => {
                    self.error(
                        Problem::error(
                            ParseErrorKind::InvalidScope.code(),
                            format!("unknown `bk_scope_type` `{}`", shown(other)),
                        )
                        .with_label(t.span, "expected \"biz\" or \"biz_set\"")
                        .with_help_opt(did_you_mean_help(other, ["biz", "biz_set"])),
                    );
                    None
                }
            });
        let lone = match (&raw.bk_scope_type, &raw.bk_scope_id) {
            (Some(t), None) => Some((t.span, "`bk_scope_type` needs `bk_scope_id`")),
            (None, Some(id)) => Some((id.span, "`bk_scope_id` needs `bk_scope_type`")),
            _ => None,
        };
        if let Some((span, message)) = lone {
            self.error(
                Problem::error(ParseErrorKind::InvalidScope.code(), message)
                    .with_label(span, "JOB reads the two together")
                    .with_help("write both, e.g. `bk_scope_type = \"biz_set\"` and `bk_scope_id = 9991001`, or only `bk_biz_id`"),
            );
        }
        if let (Some(biz), Some(id)) = (&biz, &scope_id)
            && biz.value != id.value
        {
            self.error(
                Problem::error(
                    ParseErrorKind::InvalidScope.code(),
                    format!(
                        "`bk_biz_id` ({}) and `bk_scope_id` ({}) name different scopes",
                        biz.value, id.value
                    ),
                )
                .with_label(id.span, "the scope JOB uses")
                .with_label(biz.span, "a different id")
                .with_help("remove `bk_biz_id`: `bk_scope_type` and `bk_scope_id` say the scope"),
            );
        }
        match (scope_id, scope_type) {
            (Some(id), Some(t)) => (Some(id), t),
            (None, None) if raw.bk_scope_type.is_none() && raw.bk_scope_id.is_none() => {
                let t = biz
                    .as_ref()
                    .map_or(ScopeType::Biz, |b| scope_for_biz(b.value));
                (biz, t)
            }
            // Reported above.
            _ => (None, ScopeType::Biz),
        }
    }

    /// Every push's task name (`[task_prefix]<plan>/<push>`) must leave room for the run tag
    /// an apply appends within JOB's 512 characters; only a long `task_prefix` can pass it
    /// (names have at most 64 characters), so it is reported once, at the prefix.
    fn check_task_names(&mut self, settings: &PlanSettings, pushes: &[Push]) {
        let (Some(prefix), Some(name)) = (&settings.task_prefix, &settings.name) else {
            return;
        };
        let Some(longest) = pushes.iter().max_by_key(|p| p.name.value.chars().count()) else {
            return;
        };
        let len = prefix.value.chars().count()
            + name.value.chars().count()
            + 1
            + longest.name.value.chars().count();
        if len <= PLAN_TASK_NAME_MAX_CHARS {
            return;
        }
        self.error(
            Problem::error(
                ParseErrorKind::TaskNameTooLong.code(),
                format!(
                    "the task name of push `{}` has {len} characters, more than the {PLAN_TASK_NAME_MAX_CHARS} a plan may use",
                    longest.name.value
                ),
            )
            .with_label(prefix.span, "this prefix makes task names too long")
            .with_help(format!(
                "JOB stores at most {TASK_NAME_MAX_CHARS} characters (it fails the call with 1240002) and an apply appends {RUN_TAG_SUFFIX_CHARS} for its run tag: shorten `task_prefix`"
            )),
        );
    }

    fn invalid_name(&mut self, name: &Located<String>, what: &str) {
        let why = if let Some(label) = invisible_label(&name.value) {
            label
        } else if name.value.is_empty() {
            "empty".to_owned()
        } else if name.value.len() > 64 {
            format!("{} characters, at most 64 allowed", name.value.len())
        } else {
            "only letters, digits, `_`, `.` and `-` are allowed".to_owned()
        };
        self.error(
            Problem::error(
                ParseErrorKind::InvalidName.code(),
                format!("invalid {what} name `{}`", shown(&name.value)),
            )
            .with_label(name.span, why)
            .with_help("names match [A-Za-z0-9_.-]{1,64}; they become part of JOB task names"),
        );
    }

    fn check_account(&mut self, value: &str, span: Span) -> bool {
        if value.contains('\0') || value.chars().any(is_invisible) {
            let label = invisible_label(value).unwrap_or_else(|| "NUL (U+0000) here".to_owned());
            self.error(
                Problem::error(
                    ParseErrorKind::InvalidAccount.code(),
                    format!(
                        "the account `{}` contains an invisible character",
                        shown(value)
                    ),
                )
                .with_label(span, label)
                .with_help("an account alias is a plain name such as \"root\""),
            );
            return false;
        }
        if value.trim().is_empty() {
            self.error(
                Problem::error(ParseErrorKind::EmptyAccount.code(), "the account is empty")
                    .with_label(span, "an execution account alias, e.g. \"root\""),
            );
            return false;
        }
        true
    }

    /// JOB's own range (its docs say less: see docs/plan-format.md).
    fn timeout(&mut self, t: &Located<i64>) -> Option<u32> {
        let range = i64::from(TIMEOUT_MIN_SECONDS)..=i64::from(TIMEOUT_MAX_SECONDS);
        if range.contains(&t.value) {
            u32::try_from(t.value).ok()
        } else {
            self.error(
                Problem::error(
                    ParseErrorKind::OutOfRange.code(),
                    format!("`timeout` must be between {TIMEOUT_MIN_SECONDS} and {TIMEOUT_MAX_SECONDS} seconds"),
                )
                .with_label(t.span, format!("found {}", t.value))
                .with_help(format!("JOB refuses other values (1240003); leave the key out for JOB's default, {TIMEOUT_DEFAULT_SECONDS} s")),
            );
            None
        }
    }

    fn speed(&mut self, v: &Located<i64>, key: &str) -> Option<u32> {
        if v.value >= 1 {
            if let Some(value) = u32::try_from(v.value).ok().filter(|v| *v <= MAX_SPEED_MB) {
                return Some(value);
            }
            self.error(
                Problem::error(
                    ParseErrorKind::OutOfRange.code(),
                    format!("`{key}` is too large"),
                )
                .with_label(v.span, format!("at most {MAX_SPEED_MB} MB/s"))
                .with_help(
                    "BK-JOB converts the limit to KB/s in a 32-bit integer; leave the key out for no limit",
                ),
            );
            return None;
        }
        self.error(
            Problem::error(
                ParseErrorKind::OutOfRange.code(),
                format!("`{key}` must be at least 1 (MB/s)"),
            )
            .with_label(v.span, format!("found {}", v.value))
            .with_help("leave the key out for no limit"),
        );
        None
    }

    // ---- pushes ---------------------------------------------------------------------------

    fn pushes(&mut self, raw: &[RawPush], settings: Option<&PlanSettings>) -> Vec<Push> {
        let mut names: HashMap<String, Span> =
            HashMap::with_capacity_and_hasher(raw.len(), Default::default());
        for push in raw {
            let Some(name) = &push.name else { continue };
            if !is_plan_name(&name.value) {
                self.invalid_name(name, "push");
            }
            if let Some(first) = names.get(&name.value) {
                let first = *first;
                self.error(
                    Problem::error(
                        ParseErrorKind::DuplicatePush.code(),
                        format!("push name `{}` is used twice", name.value),
                    )
                    .with_label(name.span, "used again here")
                    .with_label(first, "first used here"),
                );
            } else {
                names.insert(name.value.clone(), name.span);
            }
        }
        // Sized once (`filter_map` gives no lower bound): see `raw::Walker::pushes`.
        let mut pushes = Vec::with_capacity(raw.len());
        pushes.extend(
            raw.iter()
                .enumerate()
                .filter_map(|(index, push)| self.push(index, push, settings, &names)),
        );
        pushes
    }

    /// One push: its settings, its target, then its sources (whose checks need the target's
    /// path), then the accounts neither side found.
    fn push(
        &mut self,
        index: usize,
        raw: &RawPush,
        settings: Option<&PlanSettings>,
        all_names: &HashMap<String, Span>,
    ) -> Option<Push> {
        let api = settings.map_or(ApiVersion::V2, |s| s.api);
        let push_name = raw.name.as_ref().map_or("?", |n| n.value.as_str());

        self.check_after(raw, push_name, all_names);
        let limits = self.push_limits(raw, settings);
        let retries = self.retries(raw);
        self.check_transfer_mode(raw, api);

        // Without [plan], or with a [plan] account that was itself wrong, "no account" would
        // only repeat an error already reported.
        let account_reported = settings.is_none_or(|s| s.account_written && s.account.is_none());
        let mut scope = PushScope {
            api,
            name: push_name,
            plan_account: settings.and_then(|s| s.account.clone()),
            missing_account: Vec::new(),
        };
        let target = raw
            .target
            .as_ref()
            .and_then(|t| self.push_target(t, &mut scope));
        let sources = self.push_sources(raw, target.as_ref(), &mut scope);
        if !account_reported {
            self.check_missing_account(raw, scope);
        }

        let enabled = raw.enabled.unwrap_or(true);
        let release = self.release(
            raw,
            settings,
            &release::ReleaseScope {
                api,
                target: target.as_ref(),
                sources: &sources,
                enabled,
            },
        );
        Some(Push {
            release,
            name: raw.name.clone()?,
            index,
            span: raw.span,
            sources: raw.sources.as_ref().map(|_| sources)?,
            target: target?,
            after: raw.after.clone(),
            timeout: limits.timeout,
            upload_speed_limit: limits.upload,
            download_speed_limit: limits.download,
            transfer_mode: raw.transfer_mode.clone(),
            retries,
            enabled,
        })
    }

    /// The push's timeout and speed limits, its own or inherited from `[plan]`.
    fn push_limits(&mut self, raw: &RawPush, settings: Option<&PlanSettings>) -> PushLimits {
        let timeout = own_or_plan(
            raw.timeout.as_ref(),
            settings.and_then(|s| s.timeout.as_ref()),
            |t| self.timeout(t),
        );
        let upload = own_or_plan(
            raw.upload_speed_limit.as_ref(),
            settings.and_then(|s| s.upload.as_ref()),
            |v| self.speed(v, "upload_speed_limit"),
        );
        let download = own_or_plan(
            raw.download_speed_limit.as_ref(),
            settings.and_then(|s| s.download.as_ref()),
            |v| self.speed(v, "download_speed_limit"),
        );
        PushLimits {
            timeout,
            upload,
            download,
        }
    }

    /// `transfer_mode` is a v3 key.
    fn check_transfer_mode(&mut self, raw: &RawPush, api: ApiVersion) {
        if let (Some(mode), ApiVersion::V2) = (&raw.transfer_mode, api) {
            let key = raw.transfer_mode_key.unwrap_or(mode.span);
            self.error(
                Problem::error(
                    ParseErrorKind::V3Only.code(),
                    "`transfer_mode` is only available with api = \"v3\"",
                )
                .with_label(key, "v3-only key in a v2 plan")
                .with_help(
                    "set `api = \"v3\"` in [plan] (or pass `--api v3`), or remove `transfer_mode`: v2 always creates missing directories",
                ),
            );
        }
    }

    /// The hosts of a push's `to` or `from` (`what`), with the checks that need only them.
    fn push_hosts(
        &mut self,
        written: Option<&RawHosts>,
        api: ApiVersion,
        what: &str,
    ) -> (Vec<HostRef>, HostSet) {
        let (host_refs, hosts, broken) = match written {
            Some(h) => self.resolve_hosts(h),
            None => (Vec::new(), HostSet::default(), true),
        };
        if let Some(h) = written {
            self.api_host_rules(h, api);
            if api == ApiVersion::V3 && !hosts.host_ids.is_empty() && !hosts.ips.is_empty() {
                self.host_ids_with_addresses(h, &hosts, what);
            }
        }
        if !broken
            && hosts.is_empty()
            && let Some(h) = written
        {
            self.no_hosts(h.span, what);
        }
        (host_refs, hosts)
    }

    /// JOB reads `host_id_list` and ignores `ip_list` whenever the first is non-empty: the
    /// addresses of a target or source that also names host ids would receive nothing.
    fn host_ids_with_addresses(&mut self, written: &RawHosts, hosts: &HostSet, what: &str) {
        self.error(
            Problem::error(
                ParseErrorKind::HostIdsWithAddresses.code(),
                format!(
                    "this {what} names hosts by CMDB id and by address: JOB would skip the {} address(es) ({} first)",
                    hosts.ips.len(),
                    hosts.ips[0]
                ),
            )
            .with_label(written.span, "host ids and addresses together")
            .with_help(
                "JOB ignores `ip_list` when `host_id_list` is set: name every static host of it by id (`host_id:N`, `host_ids`) or every one by `cloud:ip` (dynamic groups and topology nodes mix with either)",
            ),
        );
    }

    /// The push's `to`; `None` when any part of it is wrong (reported).
    fn push_target(&mut self, t: &RawTarget, scope: &mut PushScope) -> Option<Target> {
        let (host_refs, hosts) = self.push_hosts(t.hosts.as_ref(), scope.api, "target");
        let path = t.path.as_ref().and_then(|p| {
            let value = self.subst(p)?;
            self.check_target_path(p, &value).then_some(Located {
                value,
                span: p.span,
            })
        });
        let (account, account_id) = self.account_or_id(
            t.account.as_ref(),
            t.account_id.as_ref(),
            scope.plan_account.as_ref(),
            scope.api,
        );
        if account.is_none() && !t.account_key && t.account_id.is_none() {
            scope.missing_account.push(t.span);
        }
        if let (Some(name), ApiVersion::V2) = (&t.file_target_name, scope.api) {
            self.v3_only(
                name.span,
                "file_target_name",
                "remove it: v2 delivers files under their own names",
            );
        }
        Some(Target {
            host_refs,
            hosts,
            path: path?,
            file_target_name: t.file_target_name.clone(),
            account: account?,
            account_id,
            span: t.span,
        })
    }

    /// The push's `from` tables; those with a wrong account or no `files` are left out
    /// (reported).
    fn push_sources(
        &mut self,
        raw: &RawPush,
        target: Option<&Target>,
        scope: &mut PushScope,
    ) -> Vec<Source> {
        let mut sources = Vec::with_capacity(raw.sources.as_ref().map_or(0, Vec::len));
        let mut deliveries = Deliveries {
            by_name: HashMap::default(),
            source_hosts: Vec::new(),
            per_source_host: target.is_some_and(|t| {
                t.path.value.contains('[') && t.path.value.contains("[FILESRCIP]")
            }),
            target_dir: raw
                .target
                .as_ref()
                .and_then(|t| t.path.as_ref())
                .map_or("", |p| p.value.as_str()),
        };
        let several = raw.sources.as_ref().is_some_and(|s| s.len() > 1);
        for (source_index, s) in raw.sources.iter().flatten().enumerate() {
            if s.file_source_key.is_some() {
                if let Some(source) =
                    self.file_source_entry(s, source_index, &mut deliveries, scope)
                {
                    if several {
                        deliveries.source_hosts.push(HostSet::default());
                    }
                    sources.push(source);
                }
                continue;
            }
            let (host_refs, hosts) = self.push_hosts(s.hosts.as_ref(), scope.api, "source");
            // Only read to compare one source with another.
            if several {
                deliveries.source_hosts.push(hosts.clone());
            }
            let files = self.source_files(s, source_index, &hosts, &mut deliveries, scope.name);
            self.overwrite_warning(raw, s.hosts.as_ref(), &hosts, &files);
            let (account, account_id) = self.account_or_id(
                s.account.as_ref(),
                s.account_id.as_ref(),
                scope.plan_account.as_ref(),
                scope.api,
            );
            if account.is_none() && !s.account_key && s.account_id.is_none() {
                scope.missing_account.push(s.span);
            }
            if let (Some(account), Some(_)) = (account, &s.files) {
                sources.push(Source {
                    host_refs,
                    hosts,
                    files,
                    account,
                    account_id,
                    file_source: None,
                    span: s.span,
                });
            }
        }
        if let Some(target) = target {
            self.check_target_name(target, &sources);
        }
        sources
    }

    /// A `from` naming a JOB file source (v3 `file_type = 3`): no hosts, no account, and
    /// paths inside the source rather than absolute paths.
    fn file_source_entry<'r>(
        &mut self,
        s: &'r RawSource,
        source_index: usize,
        deliveries: &mut Deliveries<'r>,
        scope: &PushScope,
    ) -> Option<Source> {
        let key = s.file_source_key?;
        if scope.api == ApiVersion::V2 {
            self.v3_only(
                key,
                "a file source",
                "JOB's v2 API reads files from hosts only",
            );
        }
        if let Some(hosts) = &s.hosts {
            self.error(
                Problem::error(
                    ParseErrorKind::ConflictingKeys.code(),
                    "a `from` reads from hosts or from a file source, not both",
                )
                .with_label(hosts.span, "hosts")
                .with_label(key, "a file source")
                .with_help(
                    "split it into two `from` tables: one with `hosts`, one with the file source",
                ),
            );
        }
        let reference = match (&s.file_source, &s.file_source_id) {
            (Some(code), Some(id)) => {
                self.error(
                    Problem::error(
                        ParseErrorKind::ConflictingKeys.code(),
                        "`file_source` and `file_source_id` name the file source twice",
                    )
                    .with_label(id.span, "by id")
                    .with_label(code.span, "by code")
                    .with_help(
                        "keep one: the code (`file_source = \"CODE\"`) reads better in review",
                    ),
                );
                None
            }
            (Some(code), None) => {
                let valid = !code.value.is_empty()
                    && code
                        .value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if !valid {
                    self.error(
                        Problem::error(
                            ParseErrorKind::InvalidFileSource.code(),
                            format!("`{}` is not a file source code", shown(&code.value)),
                        )
                        .with_label(code.span, "not a JOB file source code")
                        .with_help("a file source code is the identifier JOB shows for the source, e.g. \"bkrepo-release\""),
                    );
                }
                valid.then(|| Located {
                    value: FileSourceRef::Code(code.value.clone()),
                    span: code.span,
                })
            }
            (None, Some(id)) => {
                if id.value < 1 {
                    self.error(
                        Problem::error(
                            ParseErrorKind::InvalidFileSource.code(),
                            format!("file source id {} is not a JOB file source id", id.value),
                        )
                        .with_label(id.span, "ids are integers >= 1")
                        .with_help("write the id JOB shows for the file source, or its code: `file_source = \"CODE\"`"),
                    );
                }
                (id.value >= 1).then_some(Located {
                    value: FileSourceRef::Id(id.value),
                    span: id.span,
                })
            }
            // The key was written with a value of the wrong type (reported).
            (None, None) => None,
        };
        let files = self.file_source_files(s, source_index, deliveries, scope.name);
        let account = self
            .account(s.account.as_ref(), scope.plan_account.as_ref())
            .unwrap_or(Setting {
                value: String::new(),
                origin: Origin::Plan,
                span: s.span,
            });
        let file_source = reference?;
        s.files.as_ref()?;
        Some(Source {
            host_refs: Vec::new(),
            hosts: HostSet::default(),
            files,
            account,
            account_id: None,
            file_source: Some(file_source),
            span: s.span,
        })
    }

    /// The entries of a file source's `files`: paths inside the source (`bucket/path`), not
    /// absolute paths on a host, so only emptiness and NUL are checked.
    fn file_source_files<'r>(
        &mut self,
        s: &'r RawSource,
        source_index: usize,
        deliveries: &mut Deliveries<'r>,
        push_name: &str,
    ) -> Vec<FileEntry> {
        let mut files = Vec::new();
        let mut distinct: HashMap<usize, bool> = HashMap::default();
        for entry in s.files.iter().flatten() {
            let Some(path) = self.subst(entry) else {
                continue;
            };
            if path.trim().is_empty() || path.contains('\0') {
                self.error(
                    Problem::error(
                        ParseErrorKind::InvalidPath.code(),
                        format!("`{}` is not a path in a file source", shown(&path)),
                    )
                    .with_label(entry.span, "empty or holding NUL")
                    .with_help("a file source path is `bucket/path/to/file`"),
                );
                continue;
            }
            if let Some(name) = delivered_name(&path, &entry.value) {
                match deliveries.clash(&name, source_index, &HostSet::default(), &mut distinct) {
                    Some(first) => {
                        self.duplicate_delivery(push_name, &name, deliveries, entry.span, first);
                    }
                    None => deliveries.add(name, entry.span, source_index),
                }
            }
            files.push(FileEntry {
                path,
                span: entry.span,
            });
        }
        files
    }

    /// `file_target_name` renames the one file a push delivers: one entry in all, naming a
    /// file (not a directory, not a pattern), and a plain name.
    fn check_target_name(&mut self, target: &Target, sources: &[Source]) {
        let Some(name) = &target.file_target_name else {
            return;
        };
        if name.value.is_empty()
            || name.value.contains(['/', '\\', '\0'])
            || name.value.chars().any(char::is_control)
        {
            self.error(
                Problem::error(
                    ParseErrorKind::InvalidTargetName.code(),
                    format!("`{}` is not a file name", shown(&name.value)),
                )
                .with_label(name.span, "a plain name, without `/`")
                .with_help("the directory goes in `path`; `file_target_name` is the delivered file's new name"),
            );
            return;
        }
        let entries: Vec<&FileEntry> = sources.iter().flat_map(|s| &s.files).collect();
        let one_file = match entries.as_slice() {
            [entry] => {
                !entry.is_directory() && !entry.path.contains("REGEX:") && !entry.path.contains('*')
            }
            _ => false,
        };
        if one_file {
            return;
        }
        let mut problem = Problem::error(
            ParseErrorKind::InvalidTargetName.code(),
            match entries.as_slice() {
                [_] => "`file_target_name` renames one file, and this source names a directory or a pattern".to_owned(),
                _ => format!("`file_target_name` renames one file, and this push delivers {} entries", entries.len()),
            },
        )
        .with_label(name.span, "renames one file");
        for entry in entries.iter().take(8) {
            problem = problem.with_label(entry.span, "delivered");
        }
        self.error(problem.with_help(
            "keep one file in `from` (its own push for each file to rename), or remove `file_target_name` to keep the files' own names",
        ));
    }

    /// A key only the v3 API has, written in a v2 plan.
    fn v3_only(&mut self, span: Span, what: &str, fix: &str) {
        self.error(
            Problem::error(
                ParseErrorKind::V3Only.code(),
                format!("{what} is only available with api = \"v3\""),
            )
            .with_label(span, "v3-only in a v2 plan")
            .with_help(format!(
                "set `api = \"v3\"` in [plan] (or pass `--api v3`), or {fix}"
            )),
        );
    }

    /// The execution account: `account_id` (v3) or the alias, own or inherited. With an id,
    /// the setting shows `id:N` and the id is returned too.
    fn account_or_id(
        &mut self,
        own: Option<&Located<String>>,
        id: Option<&Located<i64>>,
        plan: Option<&Setting<String>>,
        api: ApiVersion,
    ) -> (Option<Setting<String>>, Option<Located<i64>>) {
        let Some(id) = id else {
            return (self.account(own, plan), None);
        };
        if api == ApiVersion::V2 {
            self.v3_only(
                id.span,
                "`account_id`",
                "write the account's alias in `account`",
            );
        }
        if let Some(alias) = own {
            self.error(
                Problem::error(
                    ParseErrorKind::ConflictingKeys.code(),
                    "`account` and `account_id` name the account twice",
                )
                .with_label(id.span, "by id")
                .with_label(alias.span, "by alias")
                .with_help("keep one: JOB takes the id when both are sent"),
            );
            return (None, None);
        }
        if id.value < 1 {
            self.error(
                Problem::error(
                    ParseErrorKind::OutOfRange.code(),
                    "`account_id` must be >= 1",
                )
                .with_label(id.span, format!("found {}", id.value)),
            );
            return (None, None);
        }
        let setting = Setting {
            value: format!("id:{}", id.value),
            origin: Origin::Push,
            span: id.span,
        };
        (Some(setting), Some(id.clone()))
    }

    /// One source's valid file entries, each checked against what earlier entries deliver.
    fn source_files<'r>(
        &mut self,
        s: &'r RawSource,
        source_index: usize,
        hosts: &HostSet,
        deliveries: &mut Deliveries<'r>,
        push_name: &str,
    ) -> Vec<FileEntry> {
        let mut files = Vec::with_capacity(s.files.as_ref().map_or(0, Vec::len));
        // Whether this source's static hosts are disjoint from an earlier source's, asked
        // once per pair however many entries share a name.
        let mut distinct_sources: HashMap<usize, bool> = HashMap::default();
        for entry in s.files.iter().flatten() {
            let Some(path) = self.subst(entry) else {
                continue;
            };
            if !self.check_source_path(entry, &path) {
                continue;
            }
            if let Some(name) = delivered_name(&path, &entry.value) {
                match deliveries.clash(&name, source_index, hosts, &mut distinct_sources) {
                    Some(first) => {
                        self.duplicate_delivery(push_name, &name, deliveries, entry.span, first);
                    }
                    None => deliveries.add(name, entry.span, source_index),
                }
            }
            files.push(FileEntry {
                path,
                span: entry.span,
            });
        }
        files
    }

    fn duplicate_delivery(
        &mut self,
        push_name: &str,
        name: &str,
        deliveries: &Deliveries<'_>,
        again: Span,
        first: Span,
    ) {
        self.error(
            Problem::error(
                ParseErrorKind::DuplicateDelivery.code(),
                format!(
                    "push `{push_name}` delivers `{}` into `{}` twice",
                    shown(name),
                    shown(deliveries.target_dir)
                ),
            )
            .with_label(again, "delivers it again")
            .with_label(first, "first delivered here")
            .with_help(
                "JOB overwrites same-name files (and older JOB versions hang on it): drop one entry or push it to another directory",
            ),
        );
    }

    /// One error naming every `from`/`to` left without an account.
    fn check_missing_account(&mut self, raw: &RawPush, scope: PushScope) {
        if scope.missing_account.is_empty() {
            return;
        }
        let at = raw.name.as_ref().map_or(raw.span, |n| n.span);
        let mut problem = Problem::error(
            ParseErrorKind::MissingAccount.code(),
            format!("push `{}` has no execution account", scope.name),
        )
        .with_label(at, "no account for this push");
        for span in scope.missing_account {
            problem = problem.with_label(span, "needs an `account`");
        }
        self.error(problem.with_help(
            "set `account` in [plan] (the default for every push) or on the push's `from` and `to`",
        ));
    }

    /// `after` entries naming the push itself or no push of the plan.
    fn check_after(&mut self, raw: &RawPush, push_name: &str, all_names: &HashMap<String, Span>) {
        for after in &raw.after {
            if Some(&after.value) == raw.name.as_ref().map(|n| &n.value) {
                self.error(
                    Problem::error(
                        ParseErrorKind::SelfDependency.code(),
                        format!("push `{push_name}` lists itself in `after`"),
                    )
                    .with_label(after.span, "a push cannot run after itself"),
                );
            } else if !all_names.contains_key(&after.value) {
                // Candidates in name order, so that the suggestion among equally close names
                // does not depend on hashing.
                let help = if self.suggestions_left.get() > 0 {
                    let mut sorted: Vec<&str> = all_names.keys().map(String::as_str).collect();
                    sorted.sort_unstable();
                    self.suggest(&after.value, sorted)
                } else {
                    None
                };
                self.error(
                    Problem::error(
                        ParseErrorKind::UnknownPush.code(),
                        format!("`after` names unknown push `{}`", shown(&after.value)),
                    )
                    .with_label(after.span, "no push with this name")
                    .with_help_opt(help),
                );
            }
        }
    }

    /// `retries`, 0 to 5 (0 when absent or out of range, which is reported).
    fn retries(&mut self, raw: &RawPush) -> u8 {
        match &raw.retries {
            Some(r) if (0..=5).contains(&r.value) => u8::try_from(r.value).unwrap_or(0),
            Some(r) => {
                self.error(
                    Problem::error(
                        ParseErrorKind::OutOfRange.code(),
                        "`retries` must be between 0 and 5",
                    )
                    .with_label(r.span, format!("found {}", r.value)),
                );
                0
            }
            None => 0,
        }
    }

    fn account(
        &mut self,
        own: Option<&Located<String>>,
        plan: Option<&Setting<String>>,
    ) -> Option<Setting<String>> {
        match own {
            Some(a) => {
                let value = self.subst(a)?;
                self.check_account(&value, a.span).then_some(Setting {
                    value,
                    origin: Origin::Push,
                    span: a.span,
                })
            }
            None => plan.cloned(),
        }
    }

    fn no_hosts(&mut self, span: Span, what: &str) {
        self.error(
            Problem::error(
                ParseErrorKind::NoHosts.code(),
                format!("the {what} selects no host"),
            )
            .with_label(span, "no hosts here")
            .with_help("name a [hosts] group or write hosts as `ip` / `cloud:ip`"),
        );
    }

    /// One source entry delivers a copy per source host; without `[FILESRCIP]` in the target
    /// path they overwrite each other.
    fn overwrite_warning(
        &mut self,
        raw: &RawPush,
        written: Option<&RawHosts>,
        hosts: &HostSet,
        files: &[FileEntry],
    ) {
        let (Some(written), Some(path)) =
            (written, raw.target.as_ref().and_then(|t| t.path.as_ref()))
        else {
            return;
        };
        if files.is_empty() || path.value.contains("[FILESRCIP]") {
            return;
        }
        let dynamic = !hosts.dynamic_groups.is_empty() || !hosts.topo_nodes.is_empty();
        if hosts.ips.len() < 2 && !dynamic {
            return;
        }
        let label = if hosts.ips.len() >= 2 {
            format!("{} source hosts", hosts.ips.len())
        } else {
            "may select several hosts".to_owned()
        };
        self.problems.push(
            Problem::warning(
                ParseErrorKind::OverwritingCopies.code(),
                "every source host delivers the same files into one directory; the copies overwrite each other",
            )
            .with_label(written.span, label)
            .with_label(path.span, "no [FILESRCIP] in the target path")
            .with_help(
                "add `[FILESRCIP]` to `to.path` (e.g. \"/data/stage/[FILESRCIP]/\") to keep one copy per source host, or read from a single host; each copy also costs traffic",
            ),
        );
    }

    fn path_error(&mut self, entry: &Located<String>, value: &str, err: &PathError) {
        let substituted = if *value == entry.value {
            String::new()
        } else {
            format!(" (after substitution: `{}`)", shown(value))
        };
        // The reason goes into the message too: JSON and GitHub output carry no labels.
        let help = match err {
            PathError::WindowsChar(_) => {
                "Windows file and directory names may not contain `: ? \" < > |` (only the text after `REGEX:` may)"
            }
            PathError::WindowsEmptyComponent => {
                "write a single separator after the drive: `C:\\data\\app.zip` or `C:/data/app.zip`"
            }
            _ => {
                "paths are absolute: `/data/app.tar.gz` on Linux, `C:\\data\\app.zip` or `C:/data/app.zip` on Windows"
            }
        };
        self.error(
            Problem::error(
                ParseErrorKind::InvalidPath.code(),
                format!(
                    "BK-JOB would reject the path `{}`{substituted}: {err}",
                    shown(&entry.value)
                ),
            )
            .with_label(entry.span, "rejected by BK-JOB's path rule")
            .with_help(help),
        );
    }

    /// A tab or newline in a path is almost always a TOML escape written by accident
    /// (`"D:\new\temp"` holds a newline and a tab). JOB accepts such names, so this warns.
    fn control_character_warning(&mut self, entry: &Located<String>, value: &str) {
        // Printable ASCII, almost every path, holds none of the characters checked below.
        if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return;
        }
        // No file system takes a NUL in a name (C strings end at it): JOB and GSE would cut
        // the path short or fail, so this is an error, not a warning.
        if value.contains('\0') {
            self.error(
                Problem::error(
                    ParseErrorKind::NulCharacter.code(),
                    format!("the path `{}` contains a NUL character", shown(value)),
                )
                .with_label(entry.span, "NUL (U+0000) in this path")
                .with_help(
                    "no file system accepts NUL in a file name; remove the `\\u0000` escape",
                ),
            );
            return;
        }
        if let Some(label) = invisible_label(value) {
            self.problems.push(
                Problem::warning(
                    ParseErrorKind::InvisibleCharacter.code(),
                    format!("the path `{}` contains an invisible character", shown(value)),
                )
                .with_label(entry.span, label)
                .with_help(
                    "bidirectional and zero-width characters make a path read differently in a review than what JOB receives; remove it, or write it as a `\\u` escape if it is really meant",
                ),
            );
        }
        let Some(c) = value.chars().find(|c| c.is_control()) else {
            return;
        };
        self.problems.push(
            Problem::warning(
                ParseErrorKind::ControlCharacter.code(),
                format!(
                    "the path {:?} contains the control character U+{:04X}",
                    value, c as u32
                ),
            )
            .with_label(entry.span, "control character in this path")
            .with_help(
                "in a double-quoted TOML string `\\n`, `\\t`, `\\r` and `\\b` are escapes: write Windows paths in single quotes ('D:\\new\\temp'), or double each backslash",
            ),
        );
    }

    fn check_source_path(&mut self, entry: &Located<String>, value: &str) -> bool {
        self.control_character_warning(entry, value);
        if let Err(err) = validate_job_path(value) {
            self.path_error(entry, value, &err);
            return false;
        }
        if !self.check_dot_components(entry, value) {
            return false;
        }
        let Some((at, pattern)) = regex_part(value) else {
            return true;
        };
        let span = self.inner_span(entry, {
            let start = entry.value.find("REGEX:").unwrap_or(0);
            start..entry.value.len()
        });
        let before = &value[..at];
        if !(before.ends_with('/') || before.ends_with('\\')) {
            self.error(
                Problem::error(
                    ParseErrorKind::InvalidRegex.code(),
                    "`REGEX:` must start the file name",
                )
                .with_label(span, "not right after a `/`")
                .with_help("write the directory, then `REGEX:` and the pattern: \"/etc/app/REGEX:^app-.*\\\\.conf$\""),
            );
            return false;
        }
        if !is_windows(value) && pattern.contains('/') {
            self.error(
                Problem::error(
                    ParseErrorKind::InvalidRegex.code(),
                    "`REGEX:` applies to the file name only; the pattern may not contain `/`",
                )
                .with_label(span, "the pattern spans directories")
                .with_help("put the directories before `REGEX:`"),
            );
            return false;
        }
        if pattern.is_empty() {
            self.error(
                Problem::error(
                    ParseErrorKind::InvalidRegex.code(),
                    "empty `REGEX:` pattern",
                )
                .with_label(span, "nothing after `REGEX:`"),
            );
            return false;
        }
        // Plans repeat the same few patterns across many pushes; compiling one costs far more
        // than reading a push, so each distinct pattern is compiled once.
        let compiled = match self.patterns.get(pattern) {
            Some(result) => result.clone(),
            None => {
                let result = Regex::new(pattern).map(drop).map_err(|err| {
                    let text = err.to_string();
                    text.lines()
                        .rev()
                        .find_map(|l| l.strip_prefix("error: "))
                        .unwrap_or(&text)
                        .to_owned()
                });
                self.patterns.insert(pattern.to_owned(), result.clone());
                result
            }
        };
        if let Err(why) = compiled {
            self.error(
                Problem::error(
                    ParseErrorKind::InvalidRegex.code(),
                    format!("the pattern `{pattern}` does not compile"),
                )
                .with_label(span, why)
                .with_help("`REGEX:` takes a regular expression for the file name, e.g. `REGEX:^app-.*\\.conf$`"),
            );
            return false;
        }
        true
    }

    /// `.` and `..` are refused in every path (see [`dot_component`] for why JOB's own rule is
    /// not enough).
    fn check_dot_components(&mut self, entry: &Located<String>, value: &str) -> bool {
        let Some(component) = dot_component(value) else {
            return true;
        };
        let shown_value = if *value == entry.value {
            String::new()
        } else {
            format!(" (after substitution: `{}`)", shown(value))
        };
        self.error(
            Problem::error(
                ParseErrorKind::DotComponent.code(),
                format!(
                    "the path `{}`{shown_value} has a `{component}` component",
                    shown(&entry.value)
                ),
            )
            .with_label(entry.span, format!("`{component}` in this path"))
            .with_help(
                "write the path without `.` and `..`: the plan's ordering and conflict checks read paths as written, and a directory ending in `..` would land beside the target directory",
            ),
        );
        false
    }

    fn check_target_path(&mut self, entry: &Located<String>, value: &str) -> bool {
        self.control_character_warning(entry, value);
        if let Err(err) = validate_job_path(value) {
            self.path_error(entry, value, &err);
            return false;
        }
        if !self.check_dot_components(entry, value) {
            return false;
        }
        // A `:` first: most targets have none, and the search for `REGEX:` costs more.
        if (value.contains(':') && value.contains("REGEX:")) || value.contains('*') {
            self.error(
                Problem::error(
                    ParseErrorKind::InvalidTargetPath.code(),
                    "the target path is a directory: `REGEX:` and `*` only apply to source files",
                )
                .with_label(entry.span, "a pattern in the target directory")
                .with_help("JOB would create a directory with this literal name"),
            );
            return false;
        }
        true
    }

    // ---- warnings -------------------------------------------------------------------------

    fn unused_warnings(&mut self) {
        let unused_vars: Vec<(String, Span)> = self
            .var_defs
            .iter()
            // Included files are shared inventories: only the plan's own definitions count.
            .filter(|(name, span)| span.file == FileId::MAIN && !self.used_vars.contains(*name))
            .map(|(n, s)| (n.clone(), *s))
            .collect();
        for (name, span) in unused_vars {
            self.problems.push(
                Problem::warning(
                    ParseErrorKind::UnusedVar.code(),
                    format!("variable `{name}` is never used"),
                )
                .with_label(span, "defined here")
                .with_help(format!("use it as `${{{name}}}` in a push, or remove it")),
            );
        }
        let unused_groups: Vec<(String, Span)> = self
            .group_raw
            .iter()
            .filter(|(name, g)| {
                g.name.span.file == FileId::MAIN && !self.used_groups.contains(*name)
            })
            .map(|(n, g)| (n.clone(), g.name.span))
            .collect();
        for (name, span) in unused_groups {
            self.problems.push(
                Problem::warning(
                    ParseErrorKind::UnusedGroup.code(),
                    format!("host group `{name}` is never used"),
                )
                .with_label(span, "defined here")
                .with_help("no push or other group refers to it"),
            );
        }
    }
}

/// `[plan]` after its own checks; `None` fields were invalid (and reported).
struct PlanSettings {
    #[allow(dead_code, reason = "kept for future plan-level labels")]
    span: Span,
    name: Option<Located<String>>,
    description: Option<String>,
    bk_biz_id: Option<Located<i64>>,
    scope_type: ScopeType,
    api: ApiVersion,
    task_prefix: Option<Located<String>>,
    account: Option<Setting<String>>,
    /// `[plan] account` is written (valid or not).
    account_written: bool,
    timeout: Option<Setting<u32>>,
    upload: Option<Setting<u32>>,
    download: Option<Setting<u32>>,
    callback_url: Option<Setting<String>>,
}

/// What the checks of one push's target and sources share.
struct PushScope<'a> {
    api: ApiVersion,
    /// The push's name, `?` when it has none, for messages.
    name: &'a str,
    plan_account: Option<Setting<String>>,
    /// The `from`/`to` tables that have no account of their own and inherit none.
    missing_account: Vec<Span>,
}

/// A push's timeout and speed limits in effect.
struct PushLimits {
    timeout: Option<Setting<u32>>,
    upload: Option<Setting<u32>>,
    download: Option<Setting<u32>>,
}

/// The push's own value of a setting, checked, or else the one `[plan]` gives.
fn own_or_plan(
    own: Option<&Located<i64>>,
    plan: Option<&Setting<u32>>,
    check: impl FnOnce(&Located<i64>) -> Option<u32>,
) -> Option<Setting<u32>> {
    match own {
        Some(v) => check(v).map(|value| Setting {
            value,
            origin: Origin::Push,
            span: v.span,
        }),
        None => plan.cloned(),
    }
}

/// What one push's source entries deliver so far, to find two writing the same file.
struct Deliveries<'r> {
    /// Delivered name -> (entry span, index of its source) of every entry delivering it.
    by_name: HashMap<Cow<'r, str>, Delivering>,
    /// Each source's hosts, kept only when the push has several sources.
    source_hosts: Vec<HostSet>,
    /// With `[FILESRCIP]` in the target path each source host writes into its own
    /// directory, so sources on different hosts do not collide.
    per_source_host: bool,
    /// The target path as written, for messages (borrowed: one copy per push was an
    /// allocation of every push's planning).
    target_dir: &'r str,
}

/// The entries delivering one name, as (entry span, index of its source): the first kept
/// inline, as most names are delivered once (a vector per name was an allocation per file).
struct Delivering {
    first: (Span, usize),
    more: Vec<(Span, usize)>,
}

impl<'r> Deliveries<'r> {
    /// Records that the entry at `span` of source `source_index` delivers `name`.
    fn add(&mut self, name: Cow<'r, str>, span: Span, source_index: usize) {
        match self.by_name.entry(name) {
            std::collections::hash_map::Entry::Occupied(mut delivering) => {
                delivering.get_mut().more.push((span, source_index));
            }
            std::collections::hash_map::Entry::Vacant(vacant) => {
                vacant.insert(Delivering {
                    first: (span, source_index),
                    more: Vec::new(),
                });
            }
        }
    }

    /// The span of an earlier entry that delivers `name` to the same place as this source.
    fn clash(
        &self,
        name: &str,
        source_index: usize,
        hosts: &HostSet,
        distinct_sources: &mut HashMap<usize, bool>,
    ) -> Option<Span> {
        let earlier = self.by_name.get(name)?;
        std::iter::once(&earlier.first)
            .chain(&earlier.more)
            .find(|(_, other)| {
                !(self.per_source_host
                    && *other != source_index
                    && *distinct_sources.entry(*other).or_insert_with(|| {
                        self.source_hosts
                            .get(*other)
                            .is_some_and(|other| distinct_static_hosts(other, hosts))
                    }))
            })
            .map(|(span, _)| *span)
    }
}

/// What a source entry puts into the target directory: its file name (a pattern stands for
/// itself), or `dirname/` for a directory. `None` for the root directory.
///
/// Borrowed from `written` (the entry as the plan writes it, `path` before substitution)
/// when it ends with the name, as it does unless a variable is in the name: recording the
/// names of a push's entries then copies none.
fn delivered_name<'w>(path: &str, written: &'w str) -> Option<Cow<'w, str>> {
    let trimmed = path.trim_end_matches(['/', '\\']);
    if trimmed.len() != path.len() {
        let (_, name) = split_file_name(trimmed);
        if name.is_empty() || is_windows_drive(trimmed) {
            return None;
        }
        // `name/`, as written when the path ends with that one `/`.
        let as_written = path.len() == trimmed.len() + 1
            && path.ends_with('/')
            && written.len() > name.len()
            && written.ends_with(name_and_slash(path, name));
        return Some(if as_written {
            Cow::Borrowed(&written[written.len() - name.len() - 1..])
        } else {
            Cow::Owned([name, "/"].concat())
        });
    }
    let (_, name) = split_file_name(path);
    if name.is_empty() {
        return None;
    }
    Some(if written.ends_with(name) {
        Cow::Borrowed(&written[written.len() - name.len()..])
    } else {
        Cow::Owned(name.to_owned())
    })
}

/// The last `name.len() + 1` bytes of `path`: its name and the one `/` after it.
fn name_and_slash<'p>(path: &'p str, name: &str) -> &'p str {
    &path[path.len() - name.len() - 1..]
}

/// True when both sets name only static hosts and share none: with `[FILESRCIP]` in the
/// target path their copies land in different directories. Dynamic groups and topology
/// nodes may hold any host, so they never count as distinct.
/// The first of `earlier` host strings that selects `repeated` (written as `HostAddr` or
/// `HostId` display it).
fn earlier_entry(earlier: &[Located<String>], repeated: &str) -> Option<Span> {
    earlier.iter().find_map(|s| {
        let selects = match parse_host_entry(&s.value).ok()? {
            HostEntry::One(host) => host.to_string() == repeated,
            HostEntry::Id(id) => id.to_string() == repeated,
            HostEntry::Range(range) => range.hosts().any(|h| h.to_string() == repeated),
        };
        selects.then_some(s.span)
    })
}

/// Why a host selector cannot be sent with the plan's API family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ApiRefusal {
    Ipv6InV2,
    Ipv6InV3,
    HostIdInV2,
}

fn refusal(host: &str, api: ApiVersion) -> Option<ApiRefusal> {
    match (parse_host_entry(host).ok()?, api) {
        (HostEntry::One(h), ApiVersion::V2) if h.ip.is_ipv6() => Some(ApiRefusal::Ipv6InV2),
        (HostEntry::One(h), ApiVersion::V3) if h.ip.is_ipv6() => Some(ApiRefusal::Ipv6InV3),
        (HostEntry::Id(_), ApiVersion::V2) => Some(ApiRefusal::HostIdInV2),
        _ => None,
    }
}

fn api_refusal_problem(span: Span, text: &str, refusal: ApiRefusal) -> Problem {
    let text = shown(text);
    match refusal {
        ApiRefusal::Ipv6InV2 => Problem::error(
            ParseErrorKind::Ipv6HostInV2.code(),
            format!("IPv6 host `{text}` cannot be sent with api = \"v2\""),
        )
        .with_label(span, "JOB's v2 API finds static hosts by cloud and IPv4 only")
        .with_help(
            "JOB would fail the call (1244030, host not found): set api = \"v3\" and address the host by its CMDB host id (`host_id:1001` in `hosts` or `ips`, or `host_ids = [1001]` in its group), or select it through a dynamic group or a topology node",
        ),
        ApiRefusal::Ipv6InV3 => Problem::error(
            ParseErrorKind::Ipv6HostInV3.code(),
            format!("IPv6 host `{text}` cannot be sent with api = \"v3\""),
        )
        .with_label(span, "JOB's v3 API accepts only IPv4 addresses in `ip_list`")
        .with_help(
            "JOB would refuse the push with \"Invalid IP\": address the host by its CMDB host id (`host_id:1001` in `hosts` or `ips`, or `host_ids = [1001]` in its group), or select it through a dynamic group or a topology node",
        ),
        ApiRefusal::HostIdInV2 => Problem::error(
            ParseErrorKind::HostIdInV2.code(),
            format!("host id `{text}` cannot be sent with api = \"v2\""),
        )
        .with_label(span, "JOB's v2 API has no host ids")
        .with_help(
            "set api = \"v3\" in [plan] (or pass `--api v3`), which sends `host_id_list`, or write the host as `cloud:ip`",
        ),
    }
}

fn distinct_static_hosts(a: &HostSet, b: &HostSet) -> bool {
    let only_static = |h: &HostSet| h.dynamic_groups.is_empty() && h.topo_nodes.is_empty();
    if !(only_static(a) && only_static(b)) {
        return false;
    }
    let (small, large) = if a.ips.len() <= b.ips.len() {
        (a, b)
    } else {
        (b, a)
    };
    let small: HashSet<&HostAddr> = small.ips.iter().collect();
    !large.ips.iter().any(|ip| small.contains(ip))
}

fn is_windows_drive(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// "contains U+202E RIGHT-TO-LEFT OVERRIDE, ..." for the first invisible or NUL character of
/// `value`: names and paths show up in reviews, so one that renders differently than it is
/// must say why.
fn invisible_label(value: &str) -> Option<String> {
    let c = value.chars().find(|&c| c == '\0' || is_invisible(c))?;
    Some(format!(
        "contains U+{:04X} {}, which does not show when the plan is read",
        c as u32,
        char_name(c)
    ))
}

/// `/etc/x`, `\\server\share`, `C:\x` or `C:/x`: not relative to the plan on any system the
/// plan may be checked on.
fn is_absolute_include(value: &str) -> bool {
    Path::new(value).has_root() || value.starts_with(['/', '\\']) || is_windows(value)
}

fn refused(err: &std::io::Error) -> Option<&IncludeRefused> {
    err.get_ref()
        .and_then(|e| e.downcast_ref::<IncludeRefused>())
}

/// An include that is not read, labelled at its entry in the including plan: nothing of the
/// file it names is shown, as it may be anything but a plan.
fn include_refused(include: &Located<String>, refusal: &IncludeRefused, help: &str) -> Problem {
    let (code, label) = match refusal {
        IncludeRefused::Absolute
        | IncludeRefused::OutsideRoot { .. }
        | IncludeRefused::GitDirectory => (
            ParseErrorKind::IncludeOutsideRoot.code(),
            "outside the plan's repository",
        ),
        IncludeRefused::TooLarge { .. } => (ParseErrorKind::IncludeTooLarge.code(), "too large"),
        _ => (ParseErrorKind::IncludeNotAFile.code(), "not a regular file"),
    };
    Problem::error(
        code,
        format!("`{}` cannot be included: {refusal}", shown(&include.value)),
    )
    .with_label(include.span, label)
    .with_help(help.to_owned())
}

fn not_utf8(err: &std::io::Error) -> Option<&NotUtf8> {
    err.get_ref().and_then(|e| e.downcast_ref::<NotUtf8>())
}

/// A file that is not UTF-8, added to `sources` (decoded lossily) so the error can point at the
/// first bad byte, with the `include` entry that named it as a second label.
fn not_utf8_problem(
    sources: &mut SourceFiles,
    name: String,
    err: &std::io::Error,
    included_at: Option<Span>,
) -> Option<Problem> {
    let bad = not_utf8(err)?;
    let id = sources.add(name.clone(), bad.text.as_str());
    let mut problem = Problem::error(
        ParseErrorKind::NotUtf8.code(),
        format!("`{name}` is not UTF-8 text"),
    )
    .with_label(
        Span::new(id, bad.offset..bad.offset + 1),
        "invalid UTF-8 starts here",
    )
    .with_help(
        "plans are UTF-8 TOML; re-save the file as UTF-8 (`iconv -f GBK -t UTF-8` for a GBK file)",
    );
    if let Some(at) = included_at {
        problem = problem.with_label(at, "included here");
    }
    Some(problem)
}
