use super::*;
use crate::testutil::plan;

fn stages(g: &PlanGraph) -> Vec<Vec<&str>> {
    g.stages()
        .iter()
        .map(|s| s.pushes.iter().map(String::as_str).collect())
        .collect()
}

fn codes_of(errors: &PlanErrors) -> Vec<&'static str> {
    errors.problems().iter().map(Problem::code).collect()
}

/// The example of the plan-format contract, by hand.
fn release() -> Plan {
    plan()
        .group("build", &["10.0.0.5"])
        .group("relay", &["0:10.0.1.1", "0:10.0.1.2"])
        .group("web", &["dyn:blo8gojho0skft7pr5q0", "module:1000", "set:7"])
        .group(
            "edge",
            &[
                "dyn:blo8gojho0skft7pr5q0",
                "module:1000",
                "set:7",
                "0:10.0.1.1",
                "0:10.0.1.2",
            ],
        )
        .push(
            "artifact-to-relays",
            &[(&["build"], &["/data/release/app-1.4.2.tar.gz"])],
            (&["relay"], "/data/stage/"),
            &[],
        )
        .push(
            "relays-to-web",
            &[(&["relay"], &["/data/stage/app-1.4.2.tar.gz"])],
            (&["web", "0:10.0.9.9"], "/opt/app/releases/"),
            &[],
        )
        .push(
            "configs",
            &[
                (&["build"], &["/etc/app/REGEX:^app-.*\\.conf$"]),
                (&["build"], &["/etc/app/extra/"]),
            ],
            (&["edge"], "/etc/app/"),
            &["relays-to-web"],
        )
        .build()
}

#[test]
fn contract_example_orders_by_file_flow_and_after() {
    let g = build(&release()).expect("valid");
    assert_eq!(
        stages(&g),
        vec![
            vec!["artifact-to-relays"],
            vec!["relays-to-web"],
            vec!["configs"]
        ]
    );
    let deps: Vec<_> = g.dependencies_of("relays-to-web").collect();
    assert_eq!(deps.len(), 1);
    assert_eq!(deps[0].dependency, "artifact-to-relays");
    assert_eq!(
        deps[0].reason(),
        Some("reads /data/stage/app-1.4.2.tar.gz on relay, which artifact-to-relays delivers")
    );
    let deps: Vec<_> = g.dependencies_of("configs").collect();
    assert_eq!(deps.len(), 1);
    assert!(!deps[0].is_inferred());
    assert_eq!(g.longest_remaining_path("artifact-to-relays"), Some(3));
    assert_eq!(g.longest_remaining_path("configs"), Some(1));
    assert_eq!(g.stage_of("configs"), Some(3));
    assert!(g.warnings().is_empty());
    assert!(g.has_path("artifact-to-relays", "configs"));
    assert!(!g.has_path("configs", "artifact-to-relays"));
}

/// (what B reads, B's source hosts, A's target hosts, A's path, edge expected): A delivers
/// `/src/a.tgz`, so its file lands at `A's path` + `a.tgz`.
#[test]
fn inference_table() {
    let cases: &[(&str, &str, &str, &str, bool)] = &[
        (
            "/data/stage/a.tgz",
            "10.0.0.1",
            "10.0.0.1",
            "/data/stage/",
            true,
        ),
        (
            "/data/stage/a.tgz",
            "10.0.0.1",
            "10.0.0.1",
            "/data/stage",
            true,
        ),
        (
            "/data//stage/a.tgz",
            "10.0.0.1",
            "10.0.0.1",
            "/data/stage///",
            true,
        ),
        // A sibling of the delivered file, and a file deeper in the target: not delivered.
        (
            "/data/stage/b.tgz",
            "10.0.0.1",
            "10.0.0.1",
            "/data/stage/",
            false,
        ),
        (
            "/data/stage/deep/a.tgz",
            "10.0.0.1",
            "10.0.0.1",
            "/data/stage/",
            false,
        ),
        (
            "/data/stage/a.tgz/x",
            "10.0.0.1",
            "10.0.0.1",
            "/data/stage/",
            false,
        ),
        ("/data/stage/", "10.0.0.1", "10.0.0.1", "/data/stage", true),
        (
            "/data/stage/REGEX:^a.*$",
            "10.0.0.1",
            "10.0.0.1",
            "/data/stage/",
            true,
        ),
        (
            "/data/stage/REGEX:^b",
            "10.0.0.1",
            "10.0.0.1",
            "/data/stage/",
            false,
        ),
        (
            "/data/stage/REGEX:tgz",
            "10.0.0.1",
            "10.0.0.1",
            "/data/stage/",
            true,
        ),
        (
            "/data/stage/*.tgz",
            "10.0.0.1",
            "10.0.0.1",
            "/data/stage/",
            true,
        ),
        (
            "/data/stage/a.tg?",
            "10.0.0.1",
            "10.0.0.1",
            "/data/stage/",
            true,
        ),
        (
            "/data/stage/*.log",
            "10.0.0.1",
            "10.0.0.1",
            "/data/stage/",
            false,
        ),
        ("/data/stage/*.tgz", "10.0.0.1", "10.0.0.1", "/data/", false),
        (
            "/data/stage2/a.tgz",
            "10.0.0.1",
            "10.0.0.1",
            "/data/stage/",
            false,
        ),
        ("/data/a.tgz", "10.0.0.1", "10.0.0.1", "/data/stage/", false),
        ("/data/", "10.0.0.1", "10.0.0.1", "/data/stage/", true),
        ("/data/", "10.0.0.2", "10.0.0.1", "/data/stage/", false),
        ("/dat/", "10.0.0.1", "10.0.0.1", "/data/stage/", false),
        ("/data/st", "10.0.0.1", "10.0.0.1", "/data/stage/", false),
        (
            "/data/REGEX:.*",
            "10.0.0.1",
            "10.0.0.1",
            "/data/stage/",
            false,
        ),
        (
            "/data/stage/a.tgz",
            "10.0.0.2",
            "10.0.0.1",
            "/data/stage/",
            false,
        ),
        (
            "/data/stage/a.tgz",
            "1:10.0.0.1",
            "0:10.0.0.1",
            "/data/stage/",
            false,
        ),
        (
            "/data/stage/a.tgz",
            "dyn:g1",
            "dyn:g1",
            "/data/stage/",
            true,
        ),
        (
            "/data/stage/a.tgz",
            "dyn:g1",
            "dyn:g2",
            "/data/stage/",
            false,
        ),
        (
            "/data/stage/a.tgz",
            "dyn:g1",
            "10.0.0.1",
            "/data/stage/",
            false,
        ),
        (
            "/data/stage/a.tgz",
            "module:7",
            "module:7",
            "/data/stage/",
            true,
        ),
        (
            "/data/stage/a.tgz",
            "module:7",
            "set:7",
            "/data/stage/",
            false,
        ),
        ("C:\\data\\a.tgz", "10.0.0.1", "10.0.0.1", "c:/data", true),
        ("C:\\data\\b.tgz", "10.0.0.1", "10.0.0.1", "c:/data", false),
        ("/a.tgz", "10.0.0.1", "10.0.0.1", "/", true),
        // A macro in the target: every read below the part before it may meet it.
        (
            "/logs/0_10.0.0.9/a.log",
            "10.0.0.1",
            "10.0.0.1",
            "/logs/[FILESRCIP]/",
            true,
        ),
        (
            "/logs/0_10.0.0.9/",
            "10.0.0.1",
            "10.0.0.1",
            "/logs/[FILESRCIP]",
            true,
        ),
        (
            "/logs/x/REGEX:.*",
            "10.0.0.1",
            "10.0.0.1",
            "/logs/[DATE:yyyy-MM-dd]/",
            true,
        ),
        (
            "/logs/2026/12/a.log",
            "10.0.0.1",
            "10.0.0.1",
            "/logs/[DATE:yyyy/MM]/",
            true,
        ),
        (
            "/logs/a.log",
            "10.0.0.1",
            "10.0.0.1",
            "/logs/[FILESRCIP]/",
            false,
        ),
        ("/logs/", "10.0.0.1", "10.0.0.1", "/logs/[FILESRCIP]/", true),
        (
            "/other/x/a.log",
            "10.0.0.1",
            "10.0.0.1",
            "/logs/[FILESRCIP]/",
            false,
        ),
    ];
    for &(read, from, to, path, expected) in cases {
        let p = plan()
            .push("a", &[(&["10.9.9.9"], &["/src/a.tgz"])], (&[to], path), &[])
            .push("b", &[(&[from], &[read])], (&["10.8.8.8"], "/out/"), &[])
            .build();
        let g = build(&p).expect("valid");
        assert_eq!(
            g.edges().len(),
            usize::from(expected),
            "{read} on {from} after {path} on {to}"
        );
    }
}

/// The sentence of each way a read meets a delivery: (what A delivers into `/dst/`, what B
/// reads, the reason, or `None` for no edge). Every sentence is true of its plan.
#[test]
fn every_reason_says_how_the_read_meets_the_delivery() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "/src/a.txt",
            "/dst/a.txt",
            Some("reads /dst/a.txt on 0:10.0.0.1, which a delivers"),
        ),
        ("/src/a.txt", "/dst/other.txt", None),
        ("/src/a.txt", "/dst/sub/b.txt", None),
        (
            "/src/conf/",
            "/dst/conf/x",
            Some("reads /dst/conf/x on 0:10.0.0.1, under /dst/conf/ which a delivers"),
        ),
        (
            "/src/conf/",
            "/dst/conf/deep/",
            Some("reads /dst/conf/deep/ on 0:10.0.0.1, under /dst/conf/ which a delivers"),
        ),
        (
            "/src/conf/",
            "/dst/conf/",
            Some("reads /dst/conf/ on 0:10.0.0.1, which a delivers"),
        ),
        ("/src/conf/", "/dst/config/x", None),
        (
            "/src/a.txt",
            "/dst/",
            Some("reads /dst/ on 0:10.0.0.1, where a delivers /dst/a.txt"),
        ),
        (
            "/src/a.txt",
            "/",
            Some("reads / on 0:10.0.0.1, where a delivers /dst/a.txt"),
        ),
        (
            "/src/app-1.tgz",
            "/dst/app-*.tgz",
            Some(
                "may read /dst/app-*.tgz on 0:10.0.0.1, which could match /dst/app-1.tgz that a delivers",
            ),
        ),
        ("/src/app-1.tgz", "/dst/web-*.tgz", None),
        (
            "/src/conf/",
            "/dst/REGEX:^co",
            Some(
                "may read /dst/REGEX:^co on 0:10.0.0.1, which could match /dst/conf/ that a delivers",
            ),
        ),
        (
            "/src/conf/",
            "/dst/conf/*.ini",
            Some("may read /dst/conf/*.ini on 0:10.0.0.1, under /dst/conf/ which a delivers"),
        ),
        (
            "/src/*.log",
            "/dst/app.log",
            Some(
                "may read /dst/app.log on 0:10.0.0.1, which could be one of the /dst/*.log that a delivers",
            ),
        ),
        ("/src/*.log", "/dst/app.txt", None),
        (
            "/src/REGEX:^app",
            "/dst/app.d/x",
            Some(
                "may read /dst/app.d/x on 0:10.0.0.1, which could be under one of the /dst/REGEX:^app that a delivers",
            ),
        ),
        (
            "/src/*.log",
            "/dst/REGEX:x",
            Some("may read /dst/REGEX:x on 0:10.0.0.1, where a delivers /dst/*.log"),
        ),
        (
            "/src/*.log",
            "/dst/",
            Some("reads /dst/ on 0:10.0.0.1, where a delivers /dst/*.log"),
        ),
    ];
    for &(delivered, read, reason) in cases {
        let p = plan()
            .push(
                "a",
                &[(&["10.9.9.9"], &[delivered])],
                (&["10.0.0.1"], "/dst"),
                &[],
            )
            .push(
                "b",
                &[(&["10.0.0.1"], &[read])],
                (&["10.8.8.8"], "/out/"),
                &[],
            )
            .build();
        let g = build(&p).expect("valid");
        let found: Vec<Option<&str>> = g.edges().iter().map(Edge::reason).collect();
        assert_eq!(
            found,
            Vec::from_iter(reason.map(Some)),
            "{delivered} -> {read}"
        );
        if let Some(edge) = g.edges().first() {
            let may = matches!(edge.kind, EdgeKind::Inferred { may_read: true, .. });
            assert_eq!(may, reason.is_some_and(|r| r.starts_with("may read")));
        }
    }
}

/// A target with a macro is named as written; Windows paths keep their separators.
#[test]
fn reasons_name_targets_as_written() {
    let p = plan()
        .push(
            "a",
            &[(&["10.9.9.9"], &["/src/a.log"])],
            (&["10.0.0.1"], "/logs/[FILESRCIP]"),
            &[],
        )
        .push(
            "b",
            &[(&["10.0.0.1"], &["/logs/0_10.9.9.9/a.log"])],
            (&["10.8.8.8"], "/out/"),
            &[],
        )
        .push(
            "w",
            &[(&["10.9.9.9"], &["C:\\src\\conf\\"])],
            (&["10.0.0.2"], "D:\\app"),
            &[],
        )
        .push(
            "r",
            &[(&["10.0.0.2"], &["D:\\app\\conf\\x.ini"])],
            (&["10.8.8.8"], "/out2/"),
            &[],
        )
        .build();
    let g = build(&p).expect("valid");
    let reasons: Vec<Option<&str>> = g.edges().iter().map(Edge::reason).collect();
    assert_eq!(
        reasons,
        vec![
            Some(
                "may read /logs/0_10.9.9.9/a.log on 0:10.0.0.1, under /logs/[FILESRCIP]/ where a delivers"
            ),
            Some(
                "reads D:\\app\\conf\\x.ini on 0:10.0.0.2, under D:\\app\\conf\\ which w delivers"
            ),
        ]
    );
}

/// When one push reads what another delivers in two ways, the certain read explains the edge.
#[test]
fn a_certain_read_is_preferred_to_a_possible_one() {
    let p = plan()
        .push(
            "a",
            &[(&["10.9.9.9"], &["/src/a.txt"])],
            (&["10.0.0.1"], "/dst/"),
            &[],
        )
        .push(
            "b",
            &[(&["10.0.0.1"], &["/dst/*.txt", "/dst/a.txt"])],
            (&["10.8.8.8"], "/out/"),
            &[],
        )
        .build();
    let g = build(&p).expect("valid");
    assert_eq!(g.edges().len(), 1);
    assert_eq!(
        g.edges()[0].reason(),
        Some("reads /dst/a.txt on 0:10.0.0.1, which a delivers")
    );
}

#[test]
fn reason_names_the_host_as_written() {
    let p = plan()
        .group("relay", &["10.0.1.1", "10.0.1.2"])
        .push(
            "a",
            &[(&["10.9.9.9"], &["/x/a"])],
            (&["10.0.1.2"], "/stage/"),
            &[],
        )
        .push(
            "b",
            &[(&["relay"], &["/stage/a"])],
            (&["10.8.8.8"], "/out/"),
            &[],
        )
        .push(
            "c",
            &[(&["10.0.1.2"], &["/stage/a"])],
            (&["10.8.8.8"], "/out2/"),
            &[],
        )
        .build();
    let g = build(&p).expect("valid");
    let reasons: Vec<_> = g.edges().iter().filter_map(Edge::reason).collect();
    assert_eq!(
        reasons,
        vec![
            "reads /stage/a on relay, which a delivers",
            "reads /stage/a on 0:10.0.1.2, which a delivers"
        ]
    );
}

#[test]
fn explicit_wins_and_edges_are_not_duplicated() {
    let p = plan()
        .push(
            "a",
            &[(&["10.9.9.9"], &["/x/a", "/x/b"])],
            (&["10.0.0.1"], "/stage/"),
            &[],
        )
        .push(
            "b",
            &[(&["10.0.0.1"], &["/stage/a", "/stage/b"])],
            (&["10.0.0.2"], "/o/"),
            &["a", "a"],
        )
        .build();
    let g = build(&p).expect("valid");
    assert_eq!(g.edges().len(), 1);
    assert!(matches!(g.edges()[0].kind, EdgeKind::Explicit { .. }));
    // The file flow is not lost: the explicit edge carries the first read.
    assert!(g.edges()[0].is_explicit_and_inferred());
    assert_eq!(
        g.edges()[0].file_flow_reason(),
        Some("reads /stage/a on 0:10.0.0.1, which a delivers")
    );
    assert_eq!(g.edges()[0].reason(), None);
    let doc = crate::show_json(&p, &g, &[]);
    let b = &doc["pushes"][1];
    assert_eq!(b["depends_on"], serde_json::json!(["a"]));
    assert_eq!(b["after"], serde_json::json!(["a"]));
    assert_eq!(
        b["inferred"],
        serde_json::json!([{"after": "a", "reason": "reads /stage/a on 0:10.0.0.1, which a delivers"}])
    );
}

#[test]
fn an_after_without_a_file_flow_has_no_inferred_reason() {
    let p = plan()
        .push(
            "a",
            &[(&["10.9.9.9"], &["/x/a"])],
            (&["10.0.0.1"], "/stage/"),
            &[],
        )
        .push(
            "b",
            &[(&["10.0.0.3"], &["/stage/a"])],
            (&["10.0.0.2"], "/o/"),
            &["a"],
        )
        .build();
    let g = build(&p).expect("valid");
    assert!(!g.edges()[0].is_explicit_and_inferred());
    assert_eq!(g.edges()[0].file_flow_reason(), None);
    let doc = crate::show_json(&p, &g, &[]);
    assert_eq!(doc["pushes"][1]["inferred"], serde_json::json!([]));
}

#[test]
fn an_after_on_a_disabled_push_it_reads_from_warns() {
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
        .build();
    p.pushes[0].enabled = false;
    let g = build(&p).expect("valid");
    assert!(
        g.warnings()
            .iter()
            .any(|w| w.code() == GraphErrorKind::ReadsDisabled.code()),
        "{:?}",
        g.warnings()
    );
}

#[test]
fn stages_are_longest_path_levels_in_file_order() {
    // d has no deps, c after a, b after c and d, e after a.
    let p = plan()
        .push(
            "b",
            &[(&["10.0.0.1"], &["/x/1"])],
            (&["10.0.0.9"], "/b/"),
            &["c", "d"],
        )
        .push(
            "a",
            &[(&["10.0.0.1"], &["/x/2"])],
            (&["10.0.0.9"], "/a/"),
            &[],
        )
        .push(
            "e",
            &[(&["10.0.0.1"], &["/x/3"])],
            (&["10.0.0.9"], "/e/"),
            &["a"],
        )
        .push(
            "c",
            &[(&["10.0.0.1"], &["/x/4"])],
            (&["10.0.0.9"], "/c/"),
            &["a"],
        )
        .push(
            "d",
            &[(&["10.0.0.1"], &["/x/5"])],
            (&["10.0.0.9"], "/d/"),
            &[],
        )
        .build();
    let g = build(&p).expect("valid");
    assert_eq!(stages(&g), vec![vec!["a", "d"], vec!["e", "c"], vec!["b"]]);
    let deps: Vec<_> = g
        .dependencies_of("b")
        .map(|e| e.dependency.as_str())
        .collect();
    assert_eq!(deps, vec!["c", "d"]);
    let dependents: Vec<_> = g.dependents_of("a").map(|e| e.dependent.as_str()).collect();
    assert_eq!(dependents, vec!["e", "c"]);
    assert_eq!(g.longest_remaining_path("a"), Some(3));
    assert_eq!(g.longest_remaining_path("d"), Some(2));
    assert_eq!(g.longest_remaining_path("nope"), None);
}

#[test]
fn explicit_cycle_is_reported_as_a_path_with_a_label_per_edge() {
    let p = plan()
        .push(
            "a",
            &[(&["10.0.0.1"], &["/x/1"])],
            (&["10.0.0.9"], "/a/"),
            &["c"],
        )
        .push(
            "b",
            &[(&["10.0.0.1"], &["/x/2"])],
            (&["10.0.0.9"], "/b/"),
            &["a"],
        )
        .push(
            "c",
            &[(&["10.0.0.1"], &["/x/3"])],
            (&["10.0.0.9"], "/c/"),
            &["b"],
        )
        .push(
            "d",
            &[(&["10.0.0.1"], &["/x/4"])],
            (&["10.0.0.9"], "/d/"),
            &["c"],
        )
        .build();
    let err = build(&p).expect_err("cycle");
    assert_eq!(codes_of(&err), vec![GraphErrorKind::Cycle.code()]);
    let problem = &err.problems()[0];
    assert_eq!(
        problem.message(),
        "push `a` has circular dependency `a -> c -> b -> a`"
    );
    let labels: Vec<_> = problem.labels().iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        labels,
        vec![
            "`a` runs after `c`",
            "`c` runs after `b`",
            "`b` runs after `a`"
        ]
    );
    // Each label sits on the `after` entry that makes the edge.
    assert_eq!(problem.labels()[0].0, p.pushes[0].after[0].span);
    assert_eq!(problem.labels()[1].0, p.pushes[2].after[0].span);
    assert_eq!(problem.labels()[2].0, p.pushes[1].after[0].span);
}

#[test]
fn mixed_cycle_labels_the_inferred_read() {
    // b reads what a delivers; a runs after b.
    let p = plan()
        .push(
            "a",
            &[(&["10.0.0.1"], &["/x/1"])],
            (&["10.0.0.2"], "/stage/"),
            &["b"],
        )
        .push(
            "b",
            &[(&["10.0.0.2"], &["/stage/1"])],
            (&["10.0.0.3"], "/out/"),
            &[],
        )
        .build();
    let err = build(&p).expect_err("cycle");
    let problem = &err.problems()[0];
    assert_eq!(
        problem.message(),
        "push `a` has circular dependency `a -> b -> a`"
    );
    assert_eq!(problem.labels()[0].0, p.pushes[0].after[0].span);
    assert_eq!(problem.labels()[1].0, p.pushes[1].sources[0].files[0].span);
    assert_eq!(
        problem.labels()[1].1,
        "`b` reads /stage/1 on 0:10.0.0.2, which a delivers"
    );
}

#[test]
fn a_push_reading_beside_what_it_delivers_is_not_self_dependent() {
    // fan-out that includes the source host: it reads /data/pkg/app.tgz and delivers
    // /data/app.tgz, which it never reads
    let p = plan()
        .group("all", &["10.0.0.1", "10.0.0.2"])
        .push(
            "spread",
            &[(&["10.0.0.1"], &["/data/pkg/app.tgz"])],
            (&["all"], "/data/"),
            &[],
        )
        .build();
    build(&p).expect("reads beside its own delivery");
    // reading the directory it delivers into is reading its own output
    let whole = plan()
        .push(
            "spread",
            &[(&["10.0.0.1"], &["/data/", "/src/app.tgz"])],
            (&["10.0.0.1", "10.0.0.2"], "/data/"),
            &[],
        )
        .build();
    let err = build(&whole).expect_err("self");
    assert_eq!(codes_of(&err), vec![GraphErrorKind::SelfDependency.code()]);
    // so is reading inside a directory it delivers
    let nested = plan()
        .push(
            "spread",
            &[(&["10.0.0.1"], &["/src/conf/", "/data/conf/app.conf"])],
            (&["10.0.0.1"], "/data/"),
            &[],
        )
        .build();
    let err = build(&nested).expect_err("self");
    assert_eq!(codes_of(&err), vec![GraphErrorKind::SelfDependency.code()]);
}

#[test]
fn inferred_self_dependency() {
    let p = plan()
        .group("relay", &["10.0.1.1", "10.0.1.2"])
        .push(
            "a",
            &[(&["relay"], &["/stage/x"])],
            (&["relay"], "/stage/"),
            &[],
        )
        .build();
    let err = build(&p).expect_err("self");
    assert_eq!(codes_of(&err), vec![GraphErrorKind::SelfDependency.code()]);
    assert_eq!(err.problems()[0].message(), "push `a` depends on itself");
    assert_eq!(
        err.problems()[0].primary_span(),
        Some(p.pushes[0].sources[0].files[0].span)
    );
}

#[test]
fn two_cycles_are_two_problems() {
    let p = plan()
        .push(
            "a",
            &[(&["10.0.0.1"], &["/x/1"])],
            (&["10.0.0.9"], "/a/"),
            &["b"],
        )
        .push(
            "b",
            &[(&["10.0.0.1"], &["/x/2"])],
            (&["10.0.0.9"], "/b/"),
            &["a"],
        )
        .push(
            "c",
            &[(&["10.0.0.1"], &["/x/3"])],
            (&["10.0.0.9"], "/c/"),
            &["d"],
        )
        .push(
            "d",
            &[(&["10.0.0.1"], &["/x/4"])],
            (&["10.0.0.9"], "/d/"),
            &["c"],
        )
        .build();
    let err = build(&p).expect_err("cycles");
    assert_eq!(
        codes_of(&err),
        vec![GraphErrorKind::Cycle.code(), GraphErrorKind::Cycle.code()]
    );
}

#[test]
fn unordered_writers_of_one_file_conflict() {
    let p = plan()
        .push(
            "a",
            &[(&["10.0.0.1"], &["/x/app.tgz"])],
            (&["10.0.0.9", "10.0.0.8"], "/stage"),
            &[],
        )
        .push(
            "b",
            &[(&["10.0.0.2"], &["/y/app.tgz"])],
            (&["10.0.0.8"], "/stage/"),
            &[],
        )
        .build();
    let err = build(&p).expect_err("conflict");
    assert_eq!(codes_of(&err), vec![GraphErrorKind::WriteConflict.code()]);
    let problem = &err.problems()[0];
    assert_eq!(
        problem.message(),
        "pushes `a` and `b` both write /stage/app.tgz on 0:10.0.0.8, and nothing orders them"
    );
    let spans: Vec<_> = problem.labels().iter().map(|(s, _)| *s).collect();
    assert_eq!(
        spans,
        vec![
            p.pushes[1].sources[0].files[0].span,
            p.pushes[0].sources[0].files[0].span
        ]
    );
    assert!(
        problem
            .help()
            .is_some_and(|h| h.contains("after = [\"a\"]"))
    );
}

#[test]
fn ordered_or_disjoint_writers_do_not_conflict() {
    let ordered = plan()
        .push(
            "a",
            &[(&["10.0.0.1"], &["/x/app.tgz"])],
            (&["10.0.0.8"], "/stage/"),
            &[],
        )
        .push(
            "m",
            &[(&["10.0.0.1"], &["/x/m"])],
            (&["10.0.0.7"], "/m/"),
            &["a"],
        )
        .push(
            "b",
            &[(&["10.0.0.2"], &["/y/app.tgz"])],
            (&["10.0.0.8"], "/stage/"),
            &["m"],
        )
        .build();
    build(&ordered).expect("ordered through m");
    let other_dir = plan()
        .push(
            "a",
            &[(&["10.0.0.1"], &["/x/app.tgz"])],
            (&["10.0.0.8"], "/stage/"),
            &[],
        )
        .push(
            "b",
            &[(&["10.0.0.2"], &["/y/app.tgz"])],
            (&["10.0.0.8"], "/stage/sub/"),
            &[],
        )
        .build();
    build(&other_dir).expect("different directories");
    let other_host = plan()
        .push(
            "a",
            &[(&["10.0.0.1"], &["/x/app.tgz"])],
            (&["10.0.0.8"], "/stage/"),
            &[],
        )
        .push(
            "b",
            &[(&["10.0.0.2"], &["/y/app.tgz"])],
            (&["10.0.0.7"], "/stage/"),
            &[],
        )
        .build();
    build(&other_host).expect("different hosts");
}

#[test]
fn filesrcip_targets_conflict_only_for_shared_source_hosts() {
    let separate = plan()
        .push(
            "a",
            &[(&["10.0.0.1"], &["/x/app.log"])],
            (&["10.0.0.8"], "/logs/[FILESRCIP]/"),
            &[],
        )
        .push(
            "b",
            &[(&["10.0.0.2"], &["/y/app.log"])],
            (&["10.0.0.8"], "/logs/[FILESRCIP]/"),
            &[],
        )
        .build();
    build(&separate).expect("each source host has its own directory");
    let shared = plan()
        .push(
            "a",
            &[(&["10.0.0.1"], &["/x/app.log"])],
            (&["10.0.0.8"], "/logs/[FILESRCIP]/"),
            &[],
        )
        .push(
            "b",
            &[(&["10.0.0.1"], &["/y/app.log"])],
            (&["10.0.0.8"], "/logs/[FILESRCIP]/"),
            &[],
        )
        .build();
    let err = build(&shared).expect_err("same source host, same directory");
    assert_eq!(codes_of(&err), vec![GraphErrorKind::WriteConflict.code()]);
}

#[test]
fn directory_and_file_of_one_name_conflict() {
    let p = plan()
        .push(
            "a",
            &[(&["10.0.0.1"], &["/x/app/"])],
            (&["dyn:g"], "/stage/"),
            &[],
        )
        .push(
            "b",
            &[(&["10.0.0.2"], &["/y/app"])],
            (&["dyn:g"], "/stage/"),
            &[],
        )
        .build();
    let err = build(&p).expect_err("conflict");
    assert_eq!(
        err.problems()[0].message(),
        "pushes `a` and `b` both write /stage/app on dynamic group g, and nothing orders them"
    );
}

#[test]
fn filesrcip_keeps_copies_from_different_source_hosts_apart() {
    let collect = |b_source: &'static str| {
        plan()
            .push(
                "a",
                &[(&["10.0.0.1"], &["/var/log/app.log"])],
                (&["10.0.0.9"], "/logs/[FILESRCIP]/"),
                &[],
            )
            .push(
                "b",
                &[(&[b_source], &["/var/log/app.log"])],
                (&["10.0.0.9"], "/logs/[FILESRCIP]/"),
                &[],
            )
            .build()
    };
    // each source host writes under its own directory
    build(&collect("10.0.0.2")).expect("different source hosts");
    // the same source host writes the same file twice
    let err = build(&collect("10.0.0.1")).expect_err("conflict");
    assert_eq!(
        err.problems()[0].message(),
        "pushes `a` and `b` both write /logs/0_10.0.0.1/app.log on 0:10.0.0.9, and nothing orders them"
    );
    // a dynamic source may hold any host: still a conflict with another dynamic source
    let dynamic = plan()
        .push(
            "a",
            &[(&["dyn:g"], &["/var/log/app.log"])],
            (&["10.0.0.9"], "/logs/[FILESRCIP]/"),
            &[],
        )
        .push(
            "b",
            &[(&["dyn:g"], &["/var/log/app.log"])],
            (&["10.0.0.9"], "/logs/[FILESRCIP]/"),
            &[],
        )
        .build();
    build(&dynamic).expect_err("dynamic sources");
}

#[test]
fn disabled_pushes_stay_in_the_graph_but_do_not_conflict() {
    let p = plan()
        .push(
            "a",
            &[(&["10.0.0.1"], &["/x/app.tgz"])],
            (&["10.0.0.8"], "/stage/"),
            &[],
        )
        .with_last(|p| p.enabled = false)
        .push(
            "b",
            &[(&["10.0.0.2"], &["/y/app.tgz"])],
            (&["10.0.0.8"], "/stage/"),
            &[],
        )
        .push(
            "c",
            &[(&["10.0.0.8"], &["/stage/app.tgz"])],
            (&["10.0.0.5"], "/out/"),
            &[],
        )
        .build();
    let g = build(&p).expect("a is disabled: no conflict");
    assert!(g.is_skipped("a"));
    assert!(!g.is_skipped("b"));
    assert_eq!(stages(&g), vec![vec!["a", "b"], vec!["c"]]);
    let deps: Vec<_> = g
        .dependencies_of("c")
        .map(|e| e.dependency.as_str())
        .collect();
    assert_eq!(deps, vec!["a", "b"]);
    let warnings: Vec<_> = g.warnings().iter().map(Problem::code).collect();
    assert_eq!(warnings, vec![GraphErrorKind::ReadsDisabled.code()]);
}

#[test]
fn output_is_deterministic() {
    let a = build(&release()).expect("valid");
    let b = build(&release()).expect("valid");
    assert_eq!(a.edges(), b.edges());
    assert_eq!(a.stages(), b.stages());
}

/// A long chain, ordered and rendered on a 256 KiB stack: a step that recursed once per push
/// (petgraph's Tarjan did, and a 90,000-push chain overflowed the main thread's 8 MiB) cannot
/// fit 20,000 frames there.
#[test]
fn a_chain_of_twenty_thousand_pushes_needs_no_deep_stack() {
    fn chain(n: usize) -> Plan {
        let mut p = plan().group("a", &["10.0.0.1"]).group("b", &["10.0.0.2"]);
        for i in 0..n {
            let before = format!("p{}", i.wrapping_sub(1));
            let after: &[&str] = if i == 0 { &[] } else { &[before.as_str()] };
            p = p.push(
                &format!("p{i}"),
                &[(&["a"], &[format!("/src/{i}").as_str()])],
                (&["b"], &format!("/dst/{i}/")),
                after,
            );
        }
        p.build()
    }
    let run = || {
        let n = 20_000;
        let mut plan = chain(n);
        // Short lines under every span, as in a real plan (the test source is one long line,
        // which diagnostics scan per label).
        plan.sources = plan_parser::SourceFiles::default();
        plan.sources.add("chain.toml", "[[push]]\n".repeat(n * 12));
        let graph = build(&plan).expect("a chain is valid");
        assert_eq!(graph.stages().len(), n);
        assert_eq!(graph.longest_remaining_path("p0"), Some(n));
        assert!(graph.has_path("p0", &format!("p{}", n - 1)));
        assert!(crate::dot(&plan, &graph).contains("p19999"));
        assert!(crate::mermaid(&plan, &graph).contains("stage"));
        assert_eq!(
            crate::graph_json(&plan, &graph)["nodes"]
                .as_array()
                .map(Vec::len),
            Some(n)
        );
        assert!(crate::show_json(&plan, &graph, &[])["pushes"].is_array());
        // The same chain closed into one cycle of every push.
        let span = plan.pushes[0].name.span;
        plan.pushes[0].after.push(plan_parser::Located {
            value: format!("p{}", n - 1),
            span,
        });
        let errors = build(&plan).expect_err("a cycle");
        assert_eq!(codes_of(&errors), [GraphErrorKind::Cycle.code()]);
        assert_eq!(errors.problems()[0].labels().len(), n);
    };
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(run)
        .expect("spawn")
        .join()
        .expect("ordered without a deep stack");
}

/// The conflict check only ever sees fewer orderings than before file precision, so every
/// conflict it caught is still caught; what a needless edge used to hide is now found.
#[test]
fn a_conflict_a_needless_edge_used_to_hide_is_caught() {
    // b reads /dst/sub/a.txt on H (a file a does not deliver) and delivers a.txt into /dst/
    // on H, where a delivers its own a.txt: two writers of /dst/a.txt with nothing between.
    let p = plan()
        .push(
            "a",
            &[(&["10.9.9.9"], &["/src/a.txt"])],
            (&["10.0.0.1"], "/dst/"),
            &[],
        )
        .push(
            "b",
            &[(&["10.0.0.1"], &["/dst/sub/a.txt"])],
            (&["10.0.0.1"], "/dst/"),
            &[],
        )
        .build();
    let err = build(&p).expect_err("conflict");
    assert_eq!(codes_of(&err), vec![GraphErrorKind::WriteConflict.code()]);
    assert_eq!(
        err.problems()[0].message(),
        "pushes `a` and `b` both write /dst/a.txt on 0:10.0.0.1, and nothing orders them"
    );
    // Ordered by `after`, the same plan is valid.
    let ordered = plan()
        .push(
            "a",
            &[(&["10.9.9.9"], &["/src/a.txt"])],
            (&["10.0.0.1"], "/dst/"),
            &[],
        )
        .push(
            "b",
            &[(&["10.0.0.1"], &["/dst/sub/a.txt"])],
            (&["10.0.0.1"], "/dst/"),
            &["a"],
        )
        .build();
    build(&ordered).expect("ordered writers");
}

/// Reading what another push writes is never left unordered: each way of reading a delivered
/// file (the file, its directory, a directory above, a pattern) waits for the writer.
#[test]
fn every_read_of_a_written_file_waits_for_its_writer() {
    for read in [
        "/dst/a.txt",
        "/dst/",
        "/",
        "/dst/*.txt",
        "/dst/a.t?t",
        "/dst/REGEX:^a",
    ] {
        let p = plan()
            .push(
                "w",
                &[(&["10.9.9.9"], &["/src/a.txt"])],
                (&["10.0.0.1"], "/dst/"),
                &[],
            )
            .push(
                "r",
                &[(&["10.0.0.1"], &[read])],
                (&["10.8.8.8"], "/out/"),
                &[],
            )
            .build();
        let g = build(&p).expect("valid");
        assert!(g.has_path("w", "r"), "{read}");
    }
}

/// `file_target_name` renames the one delivered file: readers of the new name wait, readers of
/// the old one do not, and two pushes delivering one name conflict.
#[test]
fn a_renamed_delivery_is_read_and_written_under_its_new_name() {
    let renamed = |p: &mut Push| {
        p.target.file_target_name = Some(plan_parser::Located {
            value: "b.txt".to_owned(),
            span: p.target.path.span,
        });
    };
    let p = plan()
        .push(
            "a",
            &[(&["10.9.9.9"], &["/src/a.txt"])],
            (&["10.0.0.1"], "/dst/"),
            &[],
        )
        .with_last(renamed)
        .push(
            "new",
            &[(&["10.0.0.1"], &["/dst/b.txt"])],
            (&["10.8.8.8"], "/out/"),
            &[],
        )
        .push(
            "old",
            &[(&["10.0.0.1"], &["/dst/a.txt"])],
            (&["10.8.8.8"], "/out2/"),
            &[],
        )
        .build();
    let g = build(&p).expect("valid");
    let reasons: Vec<_> = g
        .edges()
        .iter()
        .map(|e| (e.dependent.as_str(), e.reason()))
        .collect();
    assert_eq!(
        reasons,
        vec![(
            "new",
            Some("reads /dst/b.txt on 0:10.0.0.1, which a delivers")
        )]
    );
    let conflicting = plan()
        .push(
            "a",
            &[(&["10.9.9.9"], &["/src/a.txt"])],
            (&["10.0.0.1"], "/dst/"),
            &[],
        )
        .with_last(renamed)
        .push(
            "b",
            &[(&["10.9.9.9"], &["/src/b.txt"])],
            (&["10.0.0.1"], "/dst/"),
            &[],
        )
        .build();
    let err = build(&conflicting).expect_err("conflict");
    assert_eq!(
        err.problems()[0].message(),
        "pushes `a` and `b` both write /dst/b.txt on 0:10.0.0.1, and nothing orders them"
    );
}

/// Thousands of pushes delivering into one directory and thousands reading other files of it
/// make no edge (at directory precision this was every pair: millions of edges).
#[test]
fn a_directory_full_of_siblings_makes_no_edge() {
    let n = 2_000;
    let mut p = plan();
    let files: Vec<(String, String)> = (0..n)
        .map(|i| (format!("/src/in{i}"), format!("/x/other{i}")))
        .collect();
    for (i, (delivered, read)) in files.iter().enumerate() {
        p = p
            .push(
                &format!("p{i}"),
                &[(&["10.0.0.1"], &[delivered.as_str()])],
                (&["10.0.0.2"], "/x/"),
                &[],
            )
            .push(
                &format!("q{i}"),
                &[(&["10.0.0.2"], &[read.as_str()])],
                (&["10.0.0.3"], "/y/"),
                &[],
            );
    }
    let g = build(&p.build()).expect("valid");
    assert!(g.edges().is_empty());
    assert_eq!(g.stages().len(), 1);
}

/// Past 256 distinct names delivered into one directory a pattern is not matched against
/// them: every delivery there may be read (more waiting, never less).
#[test]
fn a_pattern_over_a_crowded_directory_waits_for_every_delivery() {
    let files: Vec<String> = (0..300).map(|i| format!("/src/f{i}")).collect();
    let file_refs: Vec<&str> = files.iter().map(String::as_str).collect();
    let crowded = |read: &str| {
        plan()
            .push(
                "many",
                &[(&["10.9.9.9"], &file_refs)],
                (&["10.0.0.1"], "/x/"),
                &[],
            )
            .push(
                "one",
                &[(&["10.9.9.9"], &["/src/app.tgz"])],
                (&["10.0.0.1"], "/x/"),
                &[],
            )
            .push(
                "r",
                &[(&["10.0.0.1"], &[read])],
                (&["10.8.8.8"], "/out/"),
                &[],
            )
            .build()
    };
    let g = build(&crowded("/x/*.log")).expect("valid");
    let waits: Vec<_> = g
        .dependencies_of("r")
        .map(|e| e.dependency.as_str())
        .collect();
    assert_eq!(waits, vec!["many", "one"]);
    assert!(
        g.dependencies_of("r")
            .all(|e| e.reason().is_some_and(|r| r.starts_with("may read")))
    );
}

/// The warning about reading what a disabled push delivers says "may read" for a pattern.
#[test]
fn a_pattern_over_a_disabled_delivery_may_read_it() {
    let p = plan()
        .push(
            "a",
            &[(&["10.9.9.9"], &["/src/a.log"])],
            (&["10.0.0.1"], "/dst/"),
            &[],
        )
        .with_last(|p| p.enabled = false)
        .push(
            "b",
            &[(&["10.0.0.1"], &["/dst/*.log"])],
            (&["10.8.8.8"], "/out/"),
            &[],
        )
        .build();
    let g = build(&p).expect("valid");
    let messages: Vec<&str> = g.warnings().iter().map(Problem::message).collect();
    assert_eq!(
        messages,
        vec!["push `b` may read what disabled push `a` delivers"]
    );
}

#[test]
fn a_source_hosts_filesrcip_directory_is_cloud_underscore_address() {
    let dir = |text: &str| {
        let host: plan_parser::HostAddr = plan_parser::HostAddr {
            cloud_id: text
                .split_once(':')
                .map_or(0, |(c, _)| c.parse().expect("cloud")),
            ip: text
                .split_once(':')
                .map_or(text, |(_, ip)| ip)
                .parse()
                .expect("ip"),
        };
        let mut out = String::new();
        push_host_dir(&mut out, &host);
        out
    };
    assert_eq!(dir("0:10.0.0.1"), "0_10.0.0.1");
    assert_eq!(
        dir("18446744073709551615:255.255.255.0"),
        "18446744073709551615_255.255.255.0"
    );
    assert_eq!(dir("2:fd00::1"), "2_fd00__1");
    let mut arena = "before".to_owned();
    let mut dirs = vec![Some(0..1)];
    source_dirs(
        "/a/[FILESRCIP]/b/[FILESRCIP]",
        &HostSet {
            ips: vec![plan_parser::HostAddr {
                cloud_id: 3,
                ip: "10.1.2.3".parse().expect("ip"),
            }],
            dynamic_groups: vec!["dg".to_owned()],
            ..HostSet::default()
        },
        &mut arena,
        &mut dirs,
    );
    assert_eq!(dirs, [Some(0..1), Some(6..arena.len()), None], "appended");
    assert_eq!(&arena[6..], "/a/3_10.1.2.3/b/3_10.1.2.3");
}

#[test]
fn a_filesrcip_directory_meets_the_same_directory_written_out() {
    let written_out = |dir: &str| {
        plan()
            .push(
                "a",
                &[(&["10.0.0.1", "10.0.0.2"], &["/x/app.log"])],
                (&["10.0.0.8"], "/logs/[FILESRCIP]/"),
                &[],
            )
            .push(
                "b",
                &[(&["10.0.0.3"], &["/y/app.log"])],
                (&["10.0.0.8"], dir),
                &[],
            )
            .build()
    };
    let err = build(&written_out("/logs/0_10.0.0.2/")).expect_err("the same directory");
    assert_eq!(codes_of(&err), vec![GraphErrorKind::WriteConflict.code()]);
    assert!(
        err.problems()[0]
            .message()
            .contains("/logs/0_10.0.0.2/app.log"),
        "{:?}",
        err.problems()[0].message()
    );
    build(&written_out("/logs/0_10.0.0.9/")).expect("no source host 10.0.0.9");
    build(&written_out("/other/0_10.0.0.2/")).expect("another directory");
    // Which pushes' per-host directories are not built: those no other push can meet.
    let lone = |b_dir: &str| {
        let p = plan()
            .push(
                "a",
                &[(&["10.0.0.1"], &["/x/app.log"])],
                (&["10.0.0.8"], "/logs/[FILESRCIP]/"),
                &[],
            )
            .push(
                "b",
                &[(&["10.0.0.3"], &["/y/app.log"])],
                (&["10.0.0.8"], b_dir),
                &[],
            )
            .build();
        let targets: Vec<Cow<'_, str>> = p
            .pushes
            .iter()
            .map(|p| target_dir(&p.target.path.value))
            .collect();
        let entries: Vec<Vec<Vec<NormEntry>>> = p
            .pushes
            .iter()
            .map(|p| {
                p.sources
                    .iter()
                    .map(|s| s.files.iter().map(|f| NormEntry::new(&f.path)).collect())
                    .collect()
            })
            .collect();
        lone_macro_pushes(&p, &targets, &entries)
    };
    assert_eq!(lone("/other/[FILESRCIP]/"), [true, true]);
    assert_eq!(lone("/logs/0_10.0.0.1/[FILESRCIP]/"), [false, false]);
    assert_eq!(lone("/[FILESRCIP]/"), [false, false]);
    assert_eq!(lone("/logs/x/"), [false, false]);
    assert_eq!(lone("/log/"), [true, false]);
}
