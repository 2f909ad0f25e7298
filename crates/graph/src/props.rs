//! Property tests: random plans whose edges are a mix of `after` entries and inferred reads.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use crate::testutil::plan;
use crate::{PlanGraph, build};

/// A random plan: push `i` delivers into `/d<i>/` on its own host; an edge
/// `(dep, dependent, inferred)` becomes an `after` entry or a read of `/d<dep>/f<dep>` on
/// `dep`'s target host. Pushes `0..order.len()` are written in the order `order`.
fn make_plan(edges: &[(usize, usize, bool)], order: &[usize]) -> plan_parser::Plan {
    let name = |i: usize| format!("p{i}");
    let mut p = plan();
    for &i in order {
        let host = format!("10.0.{i}.1");
        let own = format!("/src/f{i}");
        let mut reads: Vec<(String, String)> = Vec::new();
        let mut after = Vec::new();
        for &(dep, dependent, inferred) in edges {
            if dependent != i {
                continue;
            }
            if inferred {
                reads.push((format!("10.0.{dep}.1"), format!("/d{dep}/f{dep}")));
            } else {
                after.push(name(dep));
            }
        }
        let source_hosts = ["10.255.0.1".to_owned()];
        let mut from: Vec<(Vec<&str>, Vec<&str>)> =
            vec![(vec![source_hosts[0].as_str()], vec![own.as_str()])];
        for (h, f) in &reads {
            from.push((vec![h.as_str()], vec![f.as_str()]));
        }
        let from_refs: Vec<(&[&str], &[&str])> =
            from.iter().map(|(h, f)| (&h[..], &f[..])).collect();
        let after_refs: Vec<&str> = after.iter().map(String::as_str).collect();
        let target = format!("/d{i}/");
        p = p.push(
            &name(i),
            &from_refs,
            (&[host.as_str()], &target),
            &after_refs,
        );
    }
    p.build()
}

/// Directed edges without self loops; `acyclic` keeps only edges from lower to higher ids.
fn graph_strategy(
    acyclic: bool,
) -> impl Strategy<Value = (usize, Vec<(usize, usize, bool)>, Vec<usize>)> {
    (1usize..24).prop_flat_map(move |n| {
        let edge = (0..n, 0..n, any::<bool>());
        let edges = proptest::collection::vec(edge, 0..(n * 2)).prop_map(move |es| {
            let mut seen = BTreeSet::new();
            es.into_iter()
                .filter(|&(a, b, _)| a != b && (!acyclic || a < b))
                .filter(|&(a, b, _)| seen.insert((a, b)))
                .collect::<Vec<_>>()
        });
        let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
        (Just(n), edges, order)
    })
}

fn has_cycle(n: usize, edges: &[(usize, usize, bool)]) -> bool {
    // Kahn: a cycle leaves nodes unprocessed.
    let mut indegree = vec![0usize; n];
    let mut out: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &(a, b, _) in edges {
        indegree[b] += 1;
        out.entry(a).or_default().push(b);
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut done = 0;
    while let Some(u) = ready.pop() {
        done += 1;
        for &v in out.get(&u).map_or(&[][..], |v| &v[..]) {
            indegree[v] -= 1;
            if indegree[v] == 0 {
                ready.push(v);
            }
        }
    }
    done < n
}

fn snapshot(g: &PlanGraph) -> String {
    format!("{:?}\n{:?}", g.stages(), g.edges())
}

proptest! {
    #[test]
    fn dags_order_every_edge(input in graph_strategy(true)) {
        let (n, edges, order) = input;
        let plan = make_plan(&edges, &order);
        let g = build(&plan).expect("a DAG is valid");

        // Every edge of the input is in the graph, and goes to a later stage.
        prop_assert_eq!(g.edges().len(), edges.len());
        for e in g.edges() {
            let from = g.stage_of(&e.dependency).expect("stage");
            let to = g.stage_of(&e.dependent).expect("stage");
            prop_assert!(from < to, "{} -> {}", e.dependency, e.dependent);
        }
        for &(a, b, inferred) in &edges {
            let found = g.dependencies_of(&format!("p{b}")).find(|e| e.dependency == format!("p{a}"));
            prop_assert!(found.is_some_and(|e| e.is_inferred() == inferred));
        }

        // Stages partition the pushes, numbered 1.., non-empty, each in file order, and each
        // push sits exactly one stage after its latest dependency.
        let mut all: Vec<&str> = Vec::new();
        for (i, stage) in g.stages().iter().enumerate() {
            prop_assert_eq!(stage.number, i + 1);
            prop_assert!(!stage.pushes.is_empty());
            let positions: Vec<usize> = stage
                .pushes
                .iter()
                .map(|s| plan.pushes.iter().position(|p| &p.name.value == s).expect("push"))
                .collect();
            prop_assert!(positions.windows(2).all(|w| w[0] < w[1]));
            all.extend(stage.pushes.iter().map(String::as_str));
        }
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), n);
        prop_assert_eq!(all.len(), n);
        for p in &plan.pushes {
            let name = &p.name.value;
            let expected = g
                .dependencies_of(name)
                .map(|e| g.stage_of(&e.dependency).unwrap_or(0) + 1)
                .max()
                .unwrap_or(1);
            prop_assert_eq!(g.stage_of(name), Some(expected));
            let remaining = g
                .dependents_of(name)
                .map(|e| g.longest_remaining_path(&e.dependent).unwrap_or(0) + 1)
                .max()
                .unwrap_or(1);
            prop_assert_eq!(g.longest_remaining_path(name), Some(remaining));
        }

        // Deterministic: the same plan gives the same graph and renderings.
        let again = build(&plan).expect("valid");
        prop_assert_eq!(snapshot(&g), snapshot(&again));
        prop_assert_eq!(crate::dot(&plan, &g), crate::dot(&plan, &again));
        prop_assert_eq!(crate::mermaid(&plan, &g), crate::mermaid(&plan, &again));
    }

    #[test]
    fn cycles_are_always_found_with_a_valid_path(input in graph_strategy(false)) {
        let (n, edges, order) = input;
        let plan = make_plan(&edges, &order);
        let cyclic = has_cycle(n, &edges);
        match build(&plan) {
            Ok(_) => prop_assert!(!cyclic, "a cycle went unnoticed"),
            Err(errors) => {
                prop_assert!(cyclic, "no cycle, but: {:?}", errors.problems());
                let depends: BTreeSet<(String, String)> = edges
                    .iter()
                    .map(|&(a, b, _)| (format!("p{b}"), format!("p{a}")))
                    .collect();
                for problem in errors.problems() {
                    prop_assert_eq!(problem.code(), "plan::graph::cycle");
                    let path = problem
                        .message()
                        .split('`')
                        .nth(3)
                        .expect("the path is the second code span");
                    let names: Vec<&str> = path.split(" -> ").collect();
                    prop_assert!(names.len() >= 3);
                    prop_assert_eq!(names.first(), names.last());
                    for w in names.windows(2) {
                        prop_assert!(
                            depends.contains(&(w[0].to_owned(), w[1].to_owned())),
                            "{} does not depend on {}", w[0], w[1]
                        );
                    }
                    // One label per edge of the cycle.
                    prop_assert_eq!(problem.labels().len(), names.len() - 1);
                }
            }
        }
    }
}

/// One random writer: target hosts (indexes into a small pool), target directory, file name,
/// and `after` entries (indexes of earlier pushes).
type Writer = (Vec<usize>, usize, usize, Vec<usize>);

fn writers_strategy() -> impl Strategy<Value = Vec<Writer>> {
    (2usize..10).prop_flat_map(|n| {
        (0..n)
            .map(|i| {
                (
                    proptest::collection::vec(0usize..3, 1..3),
                    0usize..2,
                    0usize..3,
                    proptest::collection::vec(0..i.max(1), 0..(if i == 0 { 1 } else { 3 })),
                )
                    .prop_map(move |(hosts, dir, name, after)| {
                        let after = if i == 0 { Vec::new() } else { after };
                        (hosts, dir, name, after)
                    })
            })
            .collect::<Vec<_>>()
    })
}

proptest! {
    /// Write conflicts are reported exactly when some two pushes that nothing orders deliver
    /// one name into one directory on a shared host, and every reported pair is such a pair.
    #[test]
    fn conflicts_match_a_brute_force_check(writers in writers_strategy()) {
        let n = writers.len();
        let host = |h: usize| format!("10.0.0.{}", h + 1);
        let mut p = plan();
        for (i, (hosts, dir, name, after)) in writers.iter().enumerate() {
            let hosts: Vec<String> = hosts.iter().map(|&h| host(h)).collect();
            let host_refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
            let file = format!("/src{i}/f{name}");
            let after: Vec<String> = after.iter().map(|a| format!("p{a}")).collect();
            let after_refs: Vec<&str> = after.iter().map(String::as_str).collect();
            p = p.push(
                &format!("p{i}"),
                &[(&["10.255.0.1"], &[file.as_str()])],
                (&host_refs, &format!("/d{dir}/")),
                &after_refs,
            );
        }
        let plan = p.build();

        // reach[a][b]: b runs after a.
        let mut reach = vec![vec![false; n]; n];
        for (b, (_, _, _, after)) in writers.iter().enumerate() {
            for &a in after {
                reach[a][b] = true;
            }
        }
        for k in 0..n {
            for a in 0..n {
                for b in 0..n {
                    if reach[a][k] && reach[k][b] {
                        reach[a][b] = true;
                    }
                }
            }
        }
        let conflicting = |a: usize, b: usize| {
            let (ha, da, na, _) = &writers[a];
            let (hb, db, nb, _) = &writers[b];
            da == db && na == nb && ha.iter().any(|h| hb.contains(h)) && !reach[a][b] && !reach[b][a]
        };
        let any = (0..n).any(|a| (a + 1..n).any(|b| conflicting(a, b)));
        match build(&plan) {
            Ok(_) => prop_assert!(!any, "a conflict went unnoticed"),
            Err(errors) => {
                prop_assert!(any, "no conflict, but: {:?}", errors.problems());
                for problem in errors.problems() {
                    prop_assert_eq!(problem.code(), "plan::graph::write_conflict");
                    let names: Vec<usize> = problem
                        .message()
                        .split('`')
                        .filter_map(|s| s.strip_prefix('p').and_then(|i| i.parse().ok()))
                        .collect();
                    prop_assert_eq!(names.len(), 2);
                    prop_assert!(conflicting(names[0], names[1]), "{}", problem.message());
                }
            }
        }
    }
}

/// A small world for inference: every entry is read from its push's source hosts and delivered
/// into its target; the oracle works on concrete paths (component lists) and knows each
/// pattern's matches by hand, independently of the regular expressions the graph compiles.
mod file_precision {
    use std::borrow::Cow;

    use proptest::prelude::*;

    use crate::infer::infer;
    use crate::path::{NormEntry, target_dir};
    use crate::testutil::plan;

    const HOSTS: [&str; 2] = ["10.0.0.1", "10.0.0.2"];
    const TARGETS: [&str; 4] = ["/a/", "/a/b/", "/c/", "/"];
    const DIRS: [&str; 4] = ["/a/", "/a/b/", "/c/", "/s/"];
    /// Every component a path of this world is made of.
    const NAMES: [&str; 8] = ["a", "b", "c", "d", "s", "x", "y", "z"];
    const FILES: [&str; 3] = ["x", "y", "b"];
    const SUBDIRS: [&str; 2] = ["b", "d"];
    const PATTERNS: [&str; 5] = ["*", "x*", "?", "REGEX:^y", "REGEX:b$"];

    /// What each pattern matches, written out.
    fn matches(pattern: &str, name: &str) -> bool {
        match pattern {
            "*" => true,
            "x*" => name.starts_with('x'),
            "?" => name.chars().count() == 1,
            "REGEX:^y" => name.starts_with('y'),
            "REGEX:b$" => name.ends_with('b'),
            other => unreachable!("{other}"),
        }
    }

    fn components(dir: &str) -> Vec<&str> {
        dir.split('/').filter(|c| !c.is_empty()).collect()
    }

    /// An entry: a file, a directory or a pattern, in one of `DIRS`.
    #[derive(Debug, Clone)]
    enum Entry {
        File(usize, usize),
        Dir(usize, usize),
        Pattern(usize, usize),
    }

    impl Entry {
        fn path(&self) -> String {
            match *self {
                Entry::File(d, n) => format!("{}{}", DIRS[d], FILES[n]),
                Entry::Dir(d, n) => format!("{}{}/", DIRS[d], SUBDIRS[n]),
                Entry::Pattern(d, p) => format!("{}{}", DIRS[d], PATTERNS[p]),
            }
        }

        /// Whether reading this entry reads `path`.
        fn reads(&self, path: &[&str]) -> bool {
            match *self {
                Entry::File(d, n) => {
                    let mut p = components(DIRS[d]);
                    p.push(FILES[n]);
                    path == p.as_slice()
                }
                Entry::Dir(d, n) => {
                    let mut p = components(DIRS[d]);
                    p.push(SUBDIRS[n]);
                    path.starts_with(&p)
                }
                Entry::Pattern(d, pattern) => {
                    let dir = components(DIRS[d]);
                    path.len() == dir.len() + 1
                        && path.starts_with(&dir)
                        && matches(PATTERNS[pattern], path[dir.len()])
                }
            }
        }

        /// Whether delivering this entry into `target` may write `path`: a pattern's match may
        /// be a directory, delivered whole.
        fn delivers(&self, target: &str, path: &[&str]) -> bool {
            let target = components(target);
            if path.len() <= target.len() || !path.starts_with(&target) {
                return false;
            }
            let name = path[target.len()];
            match *self {
                Entry::File(_, n) => path.len() == target.len() + 1 && name == FILES[n],
                Entry::Dir(_, n) => name == SUBDIRS[n],
                Entry::Pattern(_, p) => matches(PATTERNS[p], name),
            }
        }
    }

    #[derive(Debug, Clone)]
    struct GenPush {
        from: Vec<usize>,
        entries: Vec<Entry>,
        to: Vec<usize>,
        target: usize,
    }

    fn entry() -> impl Strategy<Value = Entry> {
        prop_oneof![
            (0..DIRS.len(), 0..FILES.len()).prop_map(|(d, n)| Entry::File(d, n)),
            (0..DIRS.len(), 0..SUBDIRS.len()).prop_map(|(d, n)| Entry::Dir(d, n)),
            (0..DIRS.len(), 0..PATTERNS.len()).prop_map(|(d, p)| Entry::Pattern(d, p)),
        ]
    }

    fn hosts() -> impl Strategy<Value = Vec<usize>> {
        prop::sample::subsequence(vec![0, 1], 1..=2)
    }

    fn push() -> impl Strategy<Value = GenPush> {
        (
            hosts(),
            prop::collection::vec(entry(), 1..=2),
            hosts(),
            0..TARGETS.len(),
        )
            .prop_map(|(from, entries, to, target)| GenPush {
                from,
                entries,
                to,
                target,
            })
    }

    /// Every path of up to `depth` components below `prefix`, `prefix` included.
    fn below<'n>(prefix: Vec<&'n str>, depth: usize, out: &mut Vec<Vec<&'n str>>) {
        if depth > 0 {
            for name in NAMES {
                let mut p = prefix.clone();
                p.push(name);
                below(p, depth - 1, out);
            }
        }
        out.push(prefix);
    }

    /// B may read what A delivers: a shared host and a path both touch; two patterns in one
    /// directory are taken to meet (the graph does not intersect patterns).
    fn oracle(reader: &GenPush, writer: &GenPush, paths: &[Vec<&str>]) -> bool {
        if !reader.from.iter().any(|h| writer.to.contains(h)) {
            return false;
        }
        reader.entries.iter().any(|read| {
            writer.entries.iter().any(|delivered| {
                let patterns_meet = matches!(
                    (read, delivered),
                    (Entry::Pattern(d, _), Entry::Pattern(..)) if DIRS[*d] == TARGETS[writer.target]
                );
                patterns_meet
                    || paths
                        .iter()
                        .any(|p| read.reads(p) && delivered.delivers(TARGETS[writer.target], p))
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

        /// An edge exists exactly when the reader may read a path the writer delivers.
        #[test]
        fn an_edge_exists_iff_some_delivered_path_may_be_read(
            pushes in prop::collection::vec(push(), 1..=5)
        ) {
            let mut p = plan();
            for (i, g) in pushes.iter().enumerate() {
                let from: Vec<&str> = g.from.iter().map(|&h| HOSTS[h]).collect();
                let to: Vec<&str> = g.to.iter().map(|&h| HOSTS[h]).collect();
                let files: Vec<String> = g.entries.iter().map(Entry::path).collect();
                let files: Vec<&str> = files.iter().map(String::as_str).collect();
                p = p.push(&format!("p{i}"), &[(&from, &files)], (&to, TARGETS[g.target]), &[]);
            }
            let plan = p.build();
            let targets: Vec<Cow<'_, str>> =
                plan.pushes.iter().map(|p| target_dir(&p.target.path.value)).collect();
            let entries: Vec<Vec<Vec<NormEntry>>> = plan
                .pushes
                .iter()
                .map(|p| {
                    p.sources
                        .iter()
                        .map(|s| s.files.iter().map(|f| NormEntry::new(&f.path)).collect())
                        .collect()
                })
                .collect();
            let mut found: Vec<(usize, usize)> = infer(&plan, &targets, &entries)
                .iter()
                .map(|r| (r.dependent, r.dependency))
                .collect();
            found.sort_unstable();
            let mut paths = Vec::new();
            // Deep enough for every witness: the deepest entry or delivery is three components.
            below(Vec::new(), 3, &mut paths);
            let mut expected = Vec::new();
            for (b, reader) in pushes.iter().enumerate() {
                for (a, writer) in pushes.iter().enumerate() {
                    if oracle(reader, writer, &paths) {
                        expected.push((b, a));
                    }
                }
            }
            prop_assert_eq!(found, expected, "{:#?}", pushes);
        }
    }
}
