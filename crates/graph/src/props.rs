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
