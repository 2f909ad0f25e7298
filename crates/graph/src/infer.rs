//! Inferred ordering at file precision: which push may read what another delivers.
//!
//! A push delivers, into its target directory `T` (on its target hosts): `T` + the file name of
//! each file entry, `T` + the name of each directory entry and everything below it, and for a
//! pattern entry (`REGEX:`, `*`, `?`) whatever names the pattern matches on the source host
//! (each possibly a directory, taken whole). A push reads, on its source hosts: a file entry's
//! one path, a directory entry's directory and everything below it, and the names of one
//! directory a pattern entry may match. B waits for A when B may read something A delivers on
//! a host selector they share. Reading a sibling of a delivered file makes no edge.
//!
//! A target with a JOB macro (`/archive/[FILESRCIP]/`, `/logs/[DATE:yyyy-MM-dd]/`) delivers
//! into a directory only known at run time: every read below the part before the macro may
//! meet it.
//!
//! Nothing compares every pair of pushes. Deliveries are indexed by (directory, name), by
//! (directory, pattern) and by directory; a read looks up each of its ancestor directories
//! with the component that follows, so a read costs about `path depth x matching deliveries`.
//! Patterns are compiled once each, and matched only against the distinct names (or
//! patterns) delivered into one directory, up to [`MATCHED_PER_DIR`]; past that every one of
//! them is taken as a possible match.

use std::borrow::Cow;
use std::hash::Hash;

use plan_bkjob::paths::is_windows;
use std::cell::OnceCell;
use std::ops::Range;

use plan_parser::{HostRef, HostSet, Plan, Push};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::hosts::{HostKey, keys};
use crate::path::{EntryKind, Matchers, NamePattern, NormEntry};

/// How many distinct names (or patterns) delivered into one directory a pattern is matched
/// against; past it every delivery into the directory may match (more waiting, never less).
const MATCHED_PER_DIR: usize = 256;

/// The end of a linked list in [`Lists`].
const NONE: usize = usize::MAX;

/// One inferred read: `dependent`'s `sources[source].files[file]` may read on `key` what
/// `dependency` delivers.
pub(crate) struct Inferred<'a> {
    pub(crate) dependency: usize,
    pub(crate) dependent: usize,
    pub(crate) source: usize,
    pub(crate) file: usize,
    pub(crate) key: HostKey<'a>,
    pub(crate) why: Why,
}

/// How a read meets a delivery: what the sentence explaining the edge says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Why {
    /// The read is only possible: a pattern may match, or a directory named at run time may
    /// be the one read.
    pub(crate) may: bool,
    relation: Relation,
    /// The dependency's `(source, file)` entry the sentence names.
    delivered: (usize, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    /// The read path is a delivered path.
    Delivers,
    /// The read path lies under a delivered directory.
    Under,
    /// The read directory holds (at some depth) what is delivered.
    Holds,
    /// A read pattern may match a delivered name.
    CouldMatch,
    /// The read path may be one of the names a delivered pattern matches.
    OneOf,
    /// The read path may lie under a directory a delivered pattern matches.
    UnderOneOf,
    /// The read path lies below the fixed part of a target with a run-time macro.
    UnderMacro,
}

impl Why {
    fn new(may: bool, relation: Relation, delivery: Delivery) -> Why {
        Why {
            may,
            relation,
            delivered: (delivery.1, delivery.2),
        }
    }

    /// The sentence for people: `reads /dst/a.txt on web, which a delivers`. `read` is the
    /// reading entry as written, `via` the shared hosts, `who` names the dependency.
    pub(crate) fn sentence(&self, dependency: &Push, read: &str, via: &str, who: &str) -> String {
        let verb = if self.may { "may read" } else { "reads" };
        // Joined rather than `format!`ted: one sentence per inferred edge, and `fmt` was most
        // of its cost.
        let start = [verb, " ", read, " on ", via];
        let with = |parts: &[&str]| {
            let mut sentence =
                String::with_capacity(start.iter().chain(parts).map(|p| p.len()).sum());
            for part in start.iter().chain(parts) {
                sentence.push_str(part);
            }
            sentence
        };
        match self.relation {
            Relation::Delivers => with(&[", which ", who, " delivers"]),
            Relation::Under => with(&[
                ", under ",
                &delivered_path(dependency, self.delivered),
                " which ",
                who,
                " delivers",
            ]),
            Relation::Holds => with(&[
                ", where ",
                who,
                " delivers ",
                &delivered_path(dependency, self.delivered),
            ]),
            Relation::CouldMatch | Relation::OneOf | Relation::UnderOneOf => {
                let could = match self.relation {
                    Relation::CouldMatch => ", which could match ",
                    Relation::OneOf => ", which could be one of the ",
                    _ => ", which could be under one of the ",
                };
                with(&[
                    could,
                    &delivered_path(dependency, self.delivered),
                    " that ",
                    who,
                    " delivers",
                ])
            }
            Relation::UnderMacro => with(&[
                ", under ",
                &target_as_written(dependency),
                " where ",
                who,
                " delivers",
            ]),
        }
    }
}

/// The target directory as written, with the separator it uses at the end.
fn target_as_written(push: &Push) -> Cow<'_, str> {
    let target = push.target.path.value.as_str();
    if target.ends_with(['/', '\\']) {
        return Cow::Borrowed(target);
    }
    let separator = if is_windows(target) && !target.contains('/') {
        '\\'
    } else {
        '/'
    };
    Cow::Owned(format!("{target}{separator}"))
}

/// Where a push's entry lands, as written: the target directory and the entry's name (a
/// directory with its trailing separator, a pattern as written).
fn delivered_path(push: &Push, (source, file): (usize, usize)) -> String {
    let target = target_as_written(push);
    let Some(entry) = push
        .sources
        .get(source)
        .and_then(|s| s.files.get(file))
        .map(|f| f.path.as_str())
    else {
        return target.into_owned();
    };
    let separators: &[char] = if is_windows(entry) {
        &['/', '\\']
    } else {
        &['/']
    };
    let renamed = push.target.file_target_name.as_ref();
    let name = match (renamed, entry.find("REGEX:")) {
        (Some(renamed), _) if !entry.ends_with(separators) => renamed.value.as_str(),
        (_, Some(at)) => &entry[at..],
        (_, None) => {
            let trimmed = entry.trim_end_matches(separators);
            &entry[trimmed.rfind(separators).map_or(0, |i| i + 1)..]
        }
    };
    format!("{target}{name}")
}

/// `(push, source, file)`: one delivering entry.
type Delivery = (usize, usize, usize);

/// Every read of the plan that meets a delivery, each (dependency, dependent) pair once, with
/// a certain read preferred to a possible one; self reads are included (the caller reports
/// them).
pub(crate) fn infer<'a>(
    plan: &'a Plan,
    targets: &'a [Cow<'a, str>],
    entries: &'a [Vec<Vec<NormEntry<'a>>>],
) -> Vec<Inferred<'a>> {
    let pushes = &plan.pushes;
    let index = DeliveryIndex::new(plan, targets, entries);
    let mut reads = Reads {
        out: Vec::with_capacity(pushes.len()),
        seen: vec![(0, 0); pushes.len()],
    };
    let mut matchers = Matchers::default();
    let mut source_keys = SourceKeys::new(&index.targets.table);
    for (b, push) in pushes.iter().enumerate() {
        for (si, source) in push.sources.iter().enumerate() {
            source_keys.load(&source.host_refs, &source.hosts);
            for (fi, entry) in entries[b][si].iter().enumerate() {
                let mut query = Query {
                    index: &index,
                    source: &source_keys,
                    at: ReadAt {
                        dependent: b,
                        source: si,
                        file: fi,
                    },
                    reads: &mut reads,
                    matchers: &mut matchers,
                };
                match entry.kind {
                    EntryKind::File => query.file(entry.location()),
                    EntryKind::Directory => query.directory(entry.location()),
                    EntryKind::Pattern => query.pattern(entry.location(), entry.pattern()),
                }
            }
        }
    }
    reads.out
}

/// Which read of a dependent [`infer`] is looking at.
#[derive(Clone, Copy)]
struct ReadAt {
    dependent: usize,
    source: usize,
    file: usize,
}

/// The reads [`infer`] found, each (dependency, dependent) pair once.
struct Reads<'a> {
    out: Vec<Inferred<'a>>,
    /// `seen[a] == (b + 1, i)`: `b` already depends on `a`, through `out[i]`.
    seen: Vec<(usize, usize)>,
}

impl<'a> Reads<'a> {
    fn record(&mut self, dependency: usize, at: ReadAt, key: HostKey<'a>, why: Why) {
        let found = Inferred {
            dependency,
            dependent: at.dependent,
            source: at.source,
            file: at.file,
            key,
            why,
        };
        let (seen_by, i) = self.seen[dependency];
        if seen_by != at.dependent + 1 {
            self.seen[dependency] = (at.dependent + 1, self.out.len());
            self.out.push(found);
        } else if self.out[i].why.may && !why.may {
            // A certain read explains the edge better than a possible one found first.
            self.out[i] = found;
        }
    }
}

/// Host sets' selectors, as written and (when first needed) sorted for overlap checks by
/// binary search, each distinct set once where that is cheap to see: the hosts of pushes that
/// name one group and nothing else are that group's, so a group named by many pushes is listed
/// once, and sorted at most once (sorting every push's copy was a tenth of ordering a plan of
/// large groups; most sets are never searched, or only against themselves). The sets are
/// still compared, as a narrowed copy of a plan (converge) keeps the group's name over fewer
/// hosts.
#[derive(Default)]
struct KeyTable<'a> {
    written: Vec<HostKey<'a>>,
    /// Set id -> its slice of `written`.
    sets: Vec<Range<usize>>,
    /// Set id -> its selectors sorted, made when first searched.
    sorted: Vec<OnceCell<Box<[HostKey<'a>]>>>,
    /// A group's set (the first copy seen) and its id.
    by_group: FxHashMap<&'a str, (&'a HostSet, usize)>,
}

impl<'a> KeyTable<'a> {
    /// The id of `hosts` (reached through `refs`), added unless the set is a known group's;
    /// `true` with it when it is kept for later sets.
    fn add(&mut self, refs: &'a [HostRef], hosts: &'a HostSet) -> (usize, bool) {
        if let Some(id) = self.known(refs, hosts) {
            return (id, true);
        }
        let start = self.written.len();
        self.written.extend(keys(hosts));
        let id = self.sets.len();
        self.sets.push(start..self.written.len());
        self.sorted.push(OnceCell::new());
        match only_group(refs) {
            Some(group) if !self.by_group.contains_key(group) => {
                self.by_group.insert(group, (hosts, id));
                (id, true)
            }
            _ => (id, false),
        }
    }

    /// The id of a set already added as its group's.
    fn known(&self, refs: &[HostRef], hosts: &HostSet) -> Option<usize> {
        let &(known, id) = self.by_group.get(only_group(refs)?)?;
        (std::ptr::eq(known, hosts) || known == hosts).then_some(id)
    }

    fn written(&self, id: usize) -> &[HostKey<'a>] {
        &self.written[self.sets[id].clone()]
    }

    fn sorted(&self, id: usize) -> &[HostKey<'a>] {
        self.sorted[id].get_or_init(|| {
            let mut sorted: Box<[HostKey<'a>]> = self.written(id).into();
            sorted.sort_unstable();
            sorted
        })
    }

    /// Drops set `id` and those after it (they were not kept).
    fn truncate(&mut self, id: usize) {
        if let Some(range) = self.sets.get(id) {
            self.written.truncate(range.start);
            self.sets.truncate(id);
            self.sorted.truncate(id);
        }
    }
}

/// The group a `hosts` value names when it names one group and nothing else.
fn only_group(refs: &[HostRef]) -> Option<&str> {
    match refs {
        [HostRef::Group(group)] => Some(group.value.as_str()),
        _ => None,
    }
}

/// One source's selectors ([`KeyTable`]): a group's that a target names too are the
/// targets' set; others are added to the source's own table, whose last set is reused by a
/// source that is not one group's hosts.
struct SourceKeys<'q, 'a> {
    targets: &'q KeyTable<'a>,
    own: KeyTable<'a>,
    /// In `own` (else in `targets`), and its id there.
    in_own: bool,
    current: usize,
    kept: bool,
}

impl<'q, 'a> SourceKeys<'q, 'a> {
    fn new(targets: &'q KeyTable<'a>) -> Self {
        SourceKeys {
            targets,
            own: KeyTable::default(),
            in_own: true,
            current: 0,
            kept: true,
        }
    }

    fn load(&mut self, refs: &'a [HostRef], hosts: &'a HostSet) {
        if self.in_own && !self.kept {
            self.own.truncate(self.current);
        }
        if let Some(id) = self.targets.known(refs, hosts) {
            (self.in_own, self.current, self.kept) = (false, id, true);
            return;
        }
        self.in_own = true;
        (self.current, self.kept) = self.own.add(refs, hosts);
    }

    fn table(&self) -> &KeyTable<'a> {
        if self.in_own { &self.own } else { self.targets }
    }

    fn written(&self) -> &[HostKey<'a>] {
        self.table().written(self.current)
    }

    fn sorted(&self) -> &[HostKey<'a>] {
        self.table().sorted(self.current)
    }

    /// True when the source's hosts are target set `id` itself.
    fn is_target_set(&self, id: usize) -> bool {
        !self.in_own && self.current == id
    }
}

/// Every target's selectors ([`KeyTable`]; `set[a]` is push `a`'s set).
struct TargetKeys<'a> {
    table: KeyTable<'a>,
    set: Vec<usize>,
}

impl<'a> TargetKeys<'a> {
    fn new(pushes: &'a [Push]) -> Self {
        let mut table = KeyTable::default();
        // Sized for one set per push: growing these for thousands of pushes copied them each
        // time and freed blocks large enough to make the allocator consolidate.
        table.sets.reserve(pushes.len());
        table.sorted.reserve(pushes.len());
        table.by_group.reserve(pushes.len());
        let set = pushes
            .iter()
            .map(|push| table.add(&push.target.host_refs, &push.target.hosts).0)
            .collect();
        TargetKeys { table, set }
    }

    fn of(&self, a: usize) -> &[HostKey<'a>] {
        self.table.written(self.set[a])
    }

    /// A selector both push `a`'s target and the source have, searching the smaller in the
    /// larger (the first of either when they are one set).
    fn shared(&self, a: usize, source: &SourceKeys<'_, 'a>) -> Option<HostKey<'a>> {
        let target = self.of(a);
        if source.is_target_set(self.set[a]) {
            return target.first().copied();
        }
        let shared = if target.len() < source.written().len() {
            let sorted = source.sorted();
            target.iter().find(|k| sorted.binary_search(k).is_ok())
        } else {
            let sorted = self.table.sorted(self.set[a]);
            source
                .written()
                .iter()
                .find(|k| sorted.binary_search(k).is_ok())
        };
        shared.copied()
    }
}

/// Deliveries listed under a key, as linked lists through one vector (most lists hold one
/// delivery, and a vector per list was most of the cost of indexing), with a list per
/// (key, target selector) for keys two or more deliveries share: a read then looks up its own
/// few selectors instead of checking many deliveries.
struct Lists<'a, K> {
    /// Key -> (head of its list, length).
    heads: FxHashMap<K, (usize, usize)>,
    by_selector: FxHashMap<(K, HostKey<'a>), usize>,
    links: Vec<(Delivery, usize)>,
}

impl<'a, K: Copy + Eq + Hash> Lists<'a, K> {
    fn new() -> Self {
        Lists {
            heads: FxHashMap::default(),
            by_selector: FxHashMap::default(),
            links: Vec::new(),
        }
    }

    /// Adds a delivery under `key`; true when the key is new.
    fn add(&mut self, key: K, delivery: Delivery) -> bool {
        let mut new = false;
        let (head, len) = self.heads.entry(key).or_insert_with(|| {
            new = true;
            (NONE, 0)
        });
        self.links.push((delivery, *head));
        *head = self.links.len() - 1;
        *len += 1;
        new
    }

    /// Builds the per-selector lists, once every delivery is added.
    fn finish(&mut self, targets: &TargetKeys<'a>) {
        let shared: Vec<(K, usize)> = self
            .heads
            .iter()
            .filter(|&(_, &(_, len))| len >= 2)
            .map(|(&key, &(head, _))| (key, head))
            .collect();
        for (key, head) in shared {
            let deliveries: Vec<Delivery> = self.list(head).collect();
            for delivery in deliveries {
                for &selector in targets.of(delivery.0) {
                    let head = self.by_selector.entry((key, selector)).or_insert(NONE);
                    self.links.push((delivery, *head));
                    *head = self.links.len() - 1;
                }
            }
        }
    }

    fn list(&self, head: usize) -> impl Iterator<Item = Delivery> + '_ {
        std::iter::successors((head != NONE).then(|| self.links[head]), |&(_, next)| {
            (next != NONE).then(|| self.links[next])
        })
        .map(|(delivery, _)| delivery)
    }

    /// Calls `found` with each delivery under `key` whose target shares a selector with the
    /// source, and that selector.
    fn each(
        &self,
        key: K,
        targets: &TargetKeys<'a>,
        source: &SourceKeys<'_, 'a>,
        mut found: impl FnMut(Delivery, HostKey<'a>),
    ) {
        let Some(&(head, len)) = self.heads.get(&key) else {
            return;
        };
        if len < 2 || len <= source.written().len() {
            // Few deliveries: check each for a shared selector.
            for delivery in self.list(head) {
                if let Some(selector) = targets.shared(delivery.0, source) {
                    found(delivery, selector);
                }
            }
        } else {
            // Many deliveries: look up each selector of the source.
            for &selector in source.written() {
                if let Some(&head) = self.by_selector.get(&(key, selector)) {
                    for delivery in self.list(head) {
                        found(delivery, selector);
                    }
                }
            }
        }
    }
}

/// Where every push delivers, indexed for [`infer`]'s lookups.
struct DeliveryIndex<'a> {
    targets: TargetKeys<'a>,
    /// File entries by (target directory, file name).
    files: Lists<'a, (&'a str, &'a str)>,
    /// Directory entries by (target directory, directory name).
    dirs: Lists<'a, (&'a str, &'a str)>,
    /// Pattern entries by (target directory, pattern), and by target directory alone.
    patterns: Lists<'a, (&'a str, NamePattern<'a>)>,
    patterns_into: Lists<'a, &'a str>,
    /// The distinct patterns delivered into each directory.
    patterns_in: FxHashMap<&'a str, Vec<NamePattern<'a>>>,
    /// The distinct file and directory names delivered into each directory; only filled when
    /// some entry of the plan reads a pattern.
    names_in: FxHashMap<&'a str, Vec<&'a str>>,
    /// Every push with a plain target, under its directory (with its first entry).
    into_dir: Lists<'a, &'a str>,
    /// Every push whose target holds a JOB macro, under the part before the macro.
    macro_into: Lists<'a, &'a str>,
    /// (selector, target directory, push) of every target on a selector some directory read
    /// uses, sorted: the targets below a directory on one selector are one contiguous run.
    by_key_dir: Vec<(HostKey<'a>, &'a str, usize)>,
    /// What is delivered into each directory ([`Delivered`] bits): one lookup per ancestor of a read
    /// tells which of the lists above can hold anything for it (most ancestors hold nothing).
    delivered_into: FxHashMap<&'a str, u8>,
}

/// Bits of [`DeliveryIndex::delivered_into`].
struct Delivered;

impl Delivered {
    const FILES: u8 = 1;
    const DIRS: u8 = 2;
    const PATTERNS: u8 = 4;
    const MACRO: u8 = 8;
    const TARGET: u8 = 16;
}

impl<'a> DeliveryIndex<'a> {
    fn new(
        plan: &'a Plan,
        targets: &'a [Cow<'a, str>],
        entries: &'a [Vec<Vec<NormEntry<'a>>>],
    ) -> Self {
        let pushes = &plan.pushes;
        let reads_patterns = entries
            .iter()
            .flatten()
            .flatten()
            .any(|e| e.kind == EntryKind::Pattern);
        let mut index = DeliveryIndex {
            targets: TargetKeys::new(pushes),
            files: Lists::new(),
            dirs: Lists::new(),
            patterns: Lists::new(),
            patterns_into: Lists::new(),
            patterns_in: FxHashMap::default(),
            names_in: FxHashMap::default(),
            into_dir: Lists::new(),
            macro_into: Lists::new(),
            by_key_dir: Vec::new(),
            delivered_into: FxHashMap::default(),
        };
        let entry_count = entries.iter().flatten().map(Vec::len).sum();
        index.delivered_into.reserve(pushes.len());
        index.files.heads.reserve(entry_count);
        index.files.links.reserve(entry_count);
        index.dirs.heads.reserve(entry_count);
        index.dirs.links.reserve(entry_count);
        index.into_dir.heads.reserve(pushes.len());
        index.into_dir.links.reserve(pushes.len());
        for (a, dir) in targets.iter().enumerate() {
            let first = first_entry(a);
            if let Some(prefix) = macro_prefix(dir) {
                index.macro_into.add(prefix, first);
                index.mark(prefix, Delivered::MACRO);
                continue;
            }
            index.into_dir.add(dir, first);
            index.mark(dir, Delivered::TARGET);
            for (si, source_entries) in entries[a].iter().enumerate() {
                for (fi, entry) in source_entries.iter().enumerate() {
                    index.add_entry(dir, entry, (a, si, fi), reads_patterns);
                }
            }
        }
        let targets_keys = &index.targets;
        index.files.finish(targets_keys);
        index.dirs.finish(targets_keys);
        index.patterns.finish(targets_keys);
        index.patterns_into.finish(targets_keys);
        index.into_dir.finish(targets_keys);
        index.macro_into.finish(targets_keys);
        index.index_below(plan, targets, entries);
        index
    }

    fn add_entry(
        &mut self,
        dir: &'a str,
        entry: &'a NormEntry<'a>,
        delivery: Delivery,
        reads_patterns: bool,
    ) {
        let name = entry.name();
        let kind = if entry.delivers_one_name() {
            EntryKind::File
        } else {
            entry.kind
        };
        self.mark(
            dir,
            match kind {
                EntryKind::File => Delivered::FILES,
                EntryKind::Directory => Delivered::DIRS,
                EntryKind::Pattern => Delivered::PATTERNS,
            },
        );
        let new_name = match kind {
            EntryKind::File => {
                self.files.add((dir, name), delivery) && !self.dirs.heads.contains_key(&(dir, name))
            }
            EntryKind::Directory => {
                self.dirs.add((dir, name), delivery) && !self.files.heads.contains_key(&(dir, name))
            }
            EntryKind::Pattern => {
                let pattern = entry.pattern();
                if self.patterns.add((dir, pattern), delivery) {
                    self.patterns_in.entry(dir).or_default().push(pattern);
                }
                self.patterns_into.add(dir, delivery);
                false
            }
        };
        if new_name && reads_patterns {
            self.names_in.entry(dir).or_default().push(name);
        }
    }

    fn mark(&mut self, dir: &'a str, bit: u8) {
        *self.delivered_into.entry(dir).or_insert(0) |= bit;
    }

    /// What is delivered into `dir` ([`Delivered`] bits).
    fn delivered(&self, dir: &str) -> u8 {
        self.delivered_into.get(dir).copied().unwrap_or(0)
    }

    /// Only directory reads look below their own directory, and only the selectors that such
    /// reads use are needed.
    fn index_below(
        &mut self,
        plan: &'a Plan,
        targets: &'a [Cow<'a, str>],
        entries: &[Vec<Vec<NormEntry>>],
    ) {
        let mut directory_keys: FxHashSet<HostKey<'a>> = FxHashSet::default();
        for (push, push_entries) in plan.pushes.iter().zip(entries) {
            for (source, source_entries) in push.sources.iter().zip(push_entries) {
                if source_entries
                    .iter()
                    .any(|e| e.kind == EntryKind::Directory)
                {
                    directory_keys.extend(keys(&source.hosts));
                }
            }
        }
        if directory_keys.is_empty() {
            return;
        }
        for (a, dir) in targets.iter().enumerate() {
            self.by_key_dir.extend(
                self.targets
                    .of(a)
                    .iter()
                    .filter(|k| directory_keys.contains(k))
                    .map(|&k| (k, dir.as_ref(), a)),
            );
        }
        self.by_key_dir.sort_unstable();
    }
}

/// One read being looked up in the index.
struct Query<'q, 'a> {
    index: &'q DeliveryIndex<'a>,
    source: &'q SourceKeys<'q, 'a>,
    at: ReadAt,
    reads: &'q mut Reads<'a>,
    matchers: &'q mut Matchers<'a>,
}

/// Each directory `location` lies in, shallowest first, with the component of `location`
/// that follows it (empty for `location` itself when it is a directory).
fn ancestors(location: &str) -> impl Iterator<Item = (&str, &str)> {
    location
        .char_indices()
        .filter(|&(_, c)| c == '/')
        .map(move |(i, _)| {
            let rest = &location[i + 1..];
            let component = rest.find('/').map_or(rest, |end| &rest[..end]);
            (&location[..=i], component)
        })
}

impl<'a> Query<'_, 'a> {
    /// Records every delivery listed under `key` in `lists` that the source shares a host
    /// selector with.
    fn record<K: Copy + Eq + Hash>(
        &mut self,
        lists: &Lists<'a, K>,
        key: K,
        may: bool,
        relation: Relation,
    ) {
        let (at, reads) = (self.at, &mut *self.reads);
        lists.each(
            key,
            &self.index.targets,
            self.source,
            |delivery, selector| {
                reads.record(delivery.0, at, selector, Why::new(may, relation, delivery));
            },
        );
    }

    /// A file: the very path, a delivered directory above it, a pattern that may deliver it
    /// or a directory above it, a macro target above it.
    fn file(&mut self, path: &str) {
        let index = self.index;
        for (dir, component) in ancestors(path) {
            let into = index.delivered(dir);
            if into == 0 {
                continue;
            }
            let last = dir.len() + component.len() == path.len();
            if last {
                if into & Delivered::FILES != 0 {
                    self.record(&index.files, (dir, component), false, Relation::Delivers);
                }
                if into & Delivered::DIRS != 0 {
                    self.record(&index.dirs, (dir, component), false, Relation::Delivers);
                }
            } else {
                if into & Delivered::DIRS != 0 {
                    self.record(&index.dirs, (dir, component), false, Relation::Under);
                }
                if into & Delivered::MACRO != 0 {
                    self.record(&index.macro_into, dir, true, Relation::UnderMacro);
                }
            }
            if into & Delivered::PATTERNS != 0 {
                let relation = if last {
                    Relation::OneOf
                } else {
                    Relation::UnderOneOf
                };
                self.delivered_patterns(dir, component, relation);
            }
        }
    }

    /// A directory, with everything below it: deliveries into it or deeper, and whatever
    /// delivers it or a directory above it.
    fn directory(&mut self, location: &str) {
        let index = self.index;
        for (dir, component) in ancestors(location) {
            let into = index.delivered(dir);
            if dir.len() == location.len() {
                if into & Delivered::TARGET != 0 {
                    self.record(&index.into_dir, dir, false, Relation::Holds);
                }
                continue;
            }
            if into == 0 {
                continue;
            }
            let last = dir.len() + component.len() + 1 == location.len();
            if into & Delivered::DIRS != 0 {
                let relation = if last {
                    Relation::Delivers
                } else {
                    Relation::Under
                };
                self.record(&index.dirs, (dir, component), false, relation);
            }
            if last && into & Delivered::FILES != 0 {
                self.record(&index.files, (dir, component), false, Relation::Delivers);
            }
            if into & Delivered::PATTERNS != 0 {
                let relation = if last {
                    Relation::OneOf
                } else {
                    Relation::UnderOneOf
                };
                self.delivered_patterns(dir, component, relation);
            }
            if into & Delivered::MACRO != 0 {
                self.record(&index.macro_into, dir, true, Relation::UnderMacro);
            }
        }
        self.deliveries_below(location);
    }

    /// The names of one directory a pattern may match, and whatever delivers that directory
    /// or one above it.
    fn pattern(&mut self, location: &str, pattern: NamePattern<'a>) {
        let index = self.index;
        for (dir, component) in ancestors(location) {
            let into = index.delivered(dir);
            if into == 0 {
                continue;
            }
            if dir.len() < location.len() {
                if into & Delivered::DIRS != 0 {
                    self.record(&index.dirs, (dir, component), true, Relation::Under);
                }
                if into & Delivered::MACRO != 0 {
                    self.record(&index.macro_into, dir, true, Relation::UnderMacro);
                }
                if into & Delivered::PATTERNS != 0 {
                    self.delivered_patterns(dir, component, Relation::UnderOneOf);
                }
                continue;
            }
            match index.names_in.get(dir) {
                Some(names) if names.len() > MATCHED_PER_DIR => {
                    self.record(&index.into_dir, dir, true, Relation::Holds);
                }
                Some(names) => {
                    for &name in names {
                        if self.matchers.may_match(pattern, name) {
                            self.record(&index.files, (dir, name), true, Relation::CouldMatch);
                            self.record(&index.dirs, (dir, name), true, Relation::CouldMatch);
                        }
                    }
                }
                None => {}
            }
            if into & Delivered::PATTERNS != 0 {
                // Whether two patterns can match one name is not worked out: they may.
                self.record(&index.patterns_into, dir, true, Relation::Holds);
            }
        }
    }

    /// The patterns delivered into `dir` that may match `name`.
    fn delivered_patterns(&mut self, dir: &str, name: &str, relation: Relation) {
        let index = self.index;
        let Some(patterns) = index.patterns_in.get(dir) else {
            return;
        };
        if patterns.len() > MATCHED_PER_DIR {
            self.record(&index.patterns_into, dir, true, relation);
            return;
        }
        for &pattern in patterns {
            if self.matchers.may_match(pattern, name) {
                self.record(&index.patterns, (dir, pattern), true, relation);
            }
        }
    }

    /// A directory is read with everything below it, so a push that delivers into a deeper
    /// directory on a shared selector also feeds this read.
    fn deliveries_below(&mut self, below: &str) {
        let by_key_dir = &self.index.by_key_dir;
        for &key in self.source.written() {
            let start = by_key_dir.partition_point(|&(k, d, _)| (k, d) < (key, below));
            for &(_, _, a) in by_key_dir[start..]
                .iter()
                .take_while(|(k, d, _)| *k == key && d.starts_with(below))
                .filter(|(_, d, _)| d.len() > below.len())
            {
                self.reads.record(
                    a,
                    self.at,
                    key,
                    Why::new(false, Relation::Holds, first_entry(a)),
                );
            }
        }
    }
}

/// The first entry of push `a`: what a sentence names for everything the push delivers (every
/// push has one; the parser refuses an empty `files`).
fn first_entry(a: usize) -> Delivery {
    (a, 0, 0)
}

/// The part of a normalised target directory before the component holding its first JOB
/// macro (`[FILESRCIP]`, `[DATE:...]`, `[DATEFMT:...]`), if it has one. A macro may expand to
/// several components (`[DATE:yyyy/MM]`), so everything from that component on is unknown.
fn macro_prefix(dir: &str) -> Option<&str> {
    let open = dir.find('[')?;
    if !dir[open..].contains(']') {
        return None;
    }
    dir[..open].rfind('/').map(|i| &dir[..=i])
}
