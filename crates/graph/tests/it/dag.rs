//! Random plans shaped like real ones (pushes side by side in one stage, chains, fan-in and
//! fan-out, edges from `after` and from file flow, explicit cycles and inferred ones, pushes
//! writing the same file unordered) against a brute-force oracle that reads the ordering rules
//! of the plan format literally: every pair of pushes, every path.
//!
//! The world is small on purpose, so that flows and collisions are frequent: three hosts,
//! three directories (one inside another), three file names.

use plan_parser::{ParseOptions, parse_str};
use proptest::prelude::*;

const HOSTS: [&str; 3] = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
/// Target directories are the first three; the last is only read (where the pushes start).
const DIRS: [&str; 4] = ["/a/", "/b/", "/a/x/", "/src/"];
const TARGET_DIRS: usize = 3;
const NAMES: [&str; 3] = ["f", "g", "h"];

/// One push: indexes into `HOSTS`, `DIRS` and `NAMES`, and the pushes it lists in `after`.
#[derive(Debug, Clone)]
struct GenPush {
    from_hosts: Vec<usize>,
    /// `(directory, name)` of each `files` entry; names differ within a push.
    files: Vec<(usize, usize)>,
    to_hosts: Vec<usize>,
    to_dir: usize,
    after: Vec<usize>,
}

fn subset(of: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::sample::subsequence((0..of).collect::<Vec<_>>(), 1..=of)
}

/// How a generated push reads one file.
#[derive(Debug, Clone, Copy)]
enum Read {
    /// From the read-only directory.
    Source,
    /// From where an earlier push (raw index) delivers, on one of its target hosts.
    Flow(usize),
    /// From any directory (`DIRS` index), whatever delivers there.
    Anywhere(usize),
}

/// A push with raw `after` indexes and reads, and whether it is wild. [`plan`] turns `after`
/// into earlier pushes and reads into flows from earlier pushes, or for a wild push (one in
/// eight) into any push and any directory, so that a cycle may close.
fn push() -> impl Strategy<Value = (GenPush, Vec<Read>, bool)> {
    let read = prop_oneof![
        2 => Just(Read::Source),
        2 => any::<usize>().prop_map(Read::Flow),
        1 => (0..DIRS.len()).prop_map(Read::Anywhere),
    ];
    (
        subset(HOSTS.len()),
        prop::sample::subsequence((0..NAMES.len()).collect::<Vec<_>>(), 1..=2),
        prop::collection::vec(read, 2),
        subset(HOSTS.len()),
        0..TARGET_DIRS,
        prop::collection::vec(any::<usize>(), 0..=2),
        prop::bool::weighted(0.125),
    )
        .prop_map(
            |(from_hosts, names, reads, to_hosts, to_dir, after, wild)| {
                let files = names.into_iter().map(|n| (TARGET_DIRS, n)).collect();
                let push = GenPush {
                    from_hosts,
                    files,
                    to_hosts,
                    to_dir,
                    after,
                };
                (push, reads, wild)
            },
        )
}

fn plan() -> impl Strategy<Value = Vec<GenPush>> {
    prop::collection::vec(push(), 1..=7).prop_map(|generated| {
        let n = generated.len();
        let mut pushes: Vec<GenPush> = Vec::with_capacity(n);
        for (i, (mut p, reads, wild)) in generated.into_iter().enumerate() {
            let choices = if wild { n } else { i };
            p.after = p
                .after
                .iter()
                .filter(|_| choices > 0)
                .map(|a| a % choices.max(1))
                .filter(|&a| a != i)
                .collect();
            p.after.sort_unstable();
            p.after.dedup();
            for (at, read) in reads.into_iter().enumerate().take(p.files.len()) {
                match read {
                    Read::Flow(from) if i > 0 => {
                        let writer = &pushes[from % i];
                        // Read one of the writer's files, unless this push already reads a
                        // file of that name (a push delivers each name once).
                        let (_, written) = writer.files[from % writer.files.len()];
                        if !p.files.iter().any(|&(_, n)| n == written) {
                            p.files[at].1 = written;
                        }
                        let dir = &mut p.files[at].0;
                        *dir = writer.to_dir;
                        let host = writer.to_hosts[from % writer.to_hosts.len()];
                        if !p.from_hosts.contains(&host) {
                            p.from_hosts.push(host);
                        }
                    }
                    Read::Anywhere(d) if wild => p.files[at].0 = d,
                    _ => {}
                }
            }
            // A push reading under its own target on a host it delivers to reads its own
            // output, which is an error of its own (tested elsewhere): it reads elsewhere.
            if overlaps(&p.from_hosts, &p.to_hosts) {
                let own = DIRS[p.to_dir];
                for (dir, _) in &mut p.files {
                    if DIRS[*dir].starts_with(own) {
                        *dir = TARGET_DIRS;
                    }
                }
            }
            pushes.push(p);
        }
        pushes
    })
}

fn overlaps(a: &[usize], b: &[usize]) -> bool {
    a.iter().any(|h| b.contains(h))
}

fn name(i: usize) -> String {
    format!("p{i}")
}

fn to_toml(pushes: &[GenPush]) -> String {
    let list = |hosts: &[usize]| {
        let quoted: Vec<String> = hosts.iter().map(|&h| format!("{:?}", HOSTS[h])).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut out = String::from("[plan]\nname = \"dag\"\nbk_biz_id = 2\naccount = \"root\"\n");
    for (i, p) in pushes.iter().enumerate() {
        let files: Vec<String> = p
            .files
            .iter()
            .map(|&(d, n)| format!("\"{}{}\"", DIRS[d], NAMES[n]))
            .collect();
        out.push_str(&format!(
            "\n[[push]]\nname = \"{}\"\nfrom = {{ hosts = {}, files = [{}] }}\nto = {{ hosts = {}, path = \"{}\" }}\n",
            name(i),
            list(&p.from_hosts),
            files.join(", "),
            list(&p.to_hosts),
            DIRS[p.to_dir],
        ));
        if !p.after.is_empty() {
            let after: Vec<String> = p
                .after
                .iter()
                .map(|&a| format!("\"{}\"", name(a)))
                .collect();
            out.push_str(&format!("after = [{}]\n", after.join(", ")));
        }
    }
    out
}

/// What the plan format says about a plan, worked out pair by pair.
#[derive(Debug)]
struct Oracle {
    /// `depends[b][a]`: an edge, b runs after a; `Some(true)` when it is inferred only.
    depends: Vec<Vec<Option<bool>>>,
    /// `reach[a][b]`: a path of one or more edges from b back to a (b waits for a).
    reach: Vec<Vec<bool>>,
}

impl Oracle {
    fn new(pushes: &[GenPush]) -> Oracle {
        let n = pushes.len();
        let mut depends = vec![vec![None; n]; n];
        for (b, reader) in pushes.iter().enumerate() {
            for (a, writer) in pushes.iter().enumerate() {
                // B reads what A delivers: B's source hosts overlap A's target hosts, and a
                // `files` entry of B is a file A delivers (A's `to.path` + a name A reads).
                // Reading a sibling, or a file deeper in A's target, is not.
                let flows = a != b
                    && overlaps(&reader.from_hosts, &writer.to_hosts)
                    && reader.files.iter().any(|&(d, n)| {
                        d == writer.to_dir && writer.files.iter().any(|&(_, m)| m == n)
                    });
                if reader.after.contains(&a) {
                    depends[b][a] = Some(false);
                } else if flows {
                    depends[b][a] = Some(true);
                }
            }
        }
        // Transitive closure, Floyd-Warshall style.
        let mut reach: Vec<Vec<bool>> = (0..n)
            .map(|a| (0..n).map(|b| depends[b][a].is_some()).collect())
            .collect();
        for k in 0..n {
            for a in 0..n {
                for b in 0..n {
                    if reach[a][k] && reach[k][b] {
                        reach[a][b] = true;
                    }
                }
            }
        }
        Oracle { depends, reach }
    }

    fn has_cycle(&self) -> bool {
        (0..self.reach.len()).any(|a| self.reach[a][a])
    }

    /// 1 + the largest stage among its dependencies (acyclic plans only).
    fn stage(&self, b: usize) -> usize {
        (0..self.depends.len())
            .filter(|&a| self.depends[b][a].is_some())
            .map(|a| self.stage(a) + 1)
            .max()
            .unwrap_or(1)
    }

    /// Pushes with no path between them that write the same name into the same directory on
    /// a shared host.
    fn conflict(&self, pushes: &[GenPush], a: usize, b: usize) -> bool {
        let (pa, pb) = (&pushes[a], &pushes[b]);
        a != b
            && !self.reach[a][b]
            && !self.reach[b][a]
            && pa.to_dir == pb.to_dir
            && overlaps(&pa.to_hosts, &pb.to_hosts)
            && pa
                .files
                .iter()
                .any(|(_, n)| pb.files.iter().any(|(_, m)| n == m))
    }
}

/// The pushes a diagnostic names in backticks, in order.
fn named(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn index(push: &str) -> usize {
    push.trim_start_matches('p')
        .parse()
        .expect("a generated push name")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, .. ProptestConfig::default() })]

    #[test]
    fn stages_edges_cycles_and_conflicts_are_what_the_rules_say(pushes in plan()) {
        let text = to_toml(&pushes);
        let parsed = parse_str("dag.toml", &text, &ParseOptions::default())
            .map_err(|e| TestCaseError::fail(format!("{:?}\n{text}", e.problems())))?;
        let oracle = Oracle::new(&pushes);
        let n = pushes.len();
        let conflicts: Vec<(usize, usize)> = (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .filter(|&(a, b)| oracle.conflict(&pushes, a, b))
            .collect();
        match plan_graph::build(&parsed.plan) {
            Ok(graph) => {
                prop_assert!(!oracle.has_cycle(), "a cycle was missed\n{text}");
                prop_assert!(conflicts.is_empty(), "conflicts {conflicts:?} were missed\n{text}");
                let mut edges: Vec<(usize, usize, bool)> = graph
                    .edges()
                    .iter()
                    .map(|e| (index(&e.dependent), index(&e.dependency), e.is_inferred()))
                    .collect();
                edges.sort_unstable();
                let mut expected = Vec::new();
                for b in 0..n {
                    for a in 0..n {
                        if let Some(inferred) = oracle.depends[b][a] {
                            expected.push((b, a, inferred));
                        }
                    }
                }
                prop_assert_eq!(edges, expected, "{}", text);
                for (i, _) in pushes.iter().enumerate() {
                    prop_assert_eq!(graph.stage_of(&name(i)), Some(oracle.stage(i)), "{}", text);
                }
                // Stages list their pushes in file order.
                for stage in graph.stages() {
                    let order: Vec<usize> = stage.pushes.iter().map(|p| index(p)).collect();
                    prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
                }
                for a in 0..n {
                    for b in 0..n {
                        prop_assert_eq!(graph.has_path(&name(a), &name(b)), a != b && oracle.reach[a][b]);
                    }
                }
            }
            Err(errors) => {
                let codes: Vec<&str> = errors.problems().iter()
                    .filter(|p| p.severity() == plan_parser::Severity::Error)
                    .map(|p| p.code())
                    .collect();
                if oracle.has_cycle() {
                    prop_assert!(codes.contains(&"plan::graph::cycle"), "{codes:?}\n{text}");
                } else {
                    prop_assert!(!conflicts.is_empty(), "{codes:?}\n{text}");
                    prop_assert!(codes.iter().all(|c| *c == "plan::graph::write_conflict"), "{codes:?}");
                }
                for p in errors.problems() {
                    let pushes_named = named(p.message());
                    match p.code() {
                        // `x` has circular dependency `x -> y -> ... -> x`: each step an edge.
                        "plan::graph::cycle" => {
                            let path = pushes_named.last().expect("the cycle");
                            let steps: Vec<usize> = path.split(" -> ").map(index).collect();
                            prop_assert_eq!(steps.first(), steps.last());
                            for w in steps.windows(2) {
                                prop_assert!(oracle.depends[w[0]][w[1]].is_some(), "{}\n{}", p.message(), text);
                            }
                        }
                        "plan::graph::write_conflict" => {
                            let (a, b) = (index(&pushes_named[0]), index(&pushes_named[1]));
                            prop_assert!(
                                conflicts.contains(&(a.min(b), a.max(b))),
                                "{}\n{}", p.message(), text
                            );
                        }
                        other => prop_assert!(false, "{other}: {}\n{text}", p.message()),
                    }
                }
            }
        }
    }
}
