//! The plan generator the benchmarks and the `gen` example share makes plans that check clean
//! at every size: a benchmark of an invalid plan would measure the error path.

#[path = "../../benches/support/generate.rs"]
mod generate;

use plan_parser::{ParseOptions, parse_str};

#[test]
fn generated_plans_check_clean_and_are_mostly_ordered_by_file_flow() {
    for (pushes, seed) in [(1, 0), (7, 3), (400, 1), (2_003, 9)] {
        let text = generate::generate(pushes, seed);
        let parsed = parse_str("gen.toml", &text, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{pushes} pushes: {:?}", e.problems()));
        // A plan of a push or two leaves a group or a variable unused: a warning, not an error.
        if pushes >= 4 {
            assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        }
        assert_eq!(parsed.plan.pushes.len(), pushes);
        let graph = plan_graph::build(&parsed.plan)
            .unwrap_or_else(|e| panic!("{pushes} pushes: {:?}", e.problems()));
        assert!(graph.warnings().is_empty());
        if pushes >= 400 {
            let inferred = graph
                .edges()
                .iter()
                .filter(|e| matches!(e.kind, plan_graph::EdgeKind::Inferred { .. }))
                .count();
            assert!(inferred * 10 >= pushes * 7, "{inferred} inferred edges");
            assert!(graph.edges().len() > inferred, "some explicit `after`");
        }
    }
    assert_eq!(generate::generate(300, 5), generate::generate(300, 5));
}

#[test]
fn large_range_plans_are_the_same_plans_with_more_hosts() {
    let hosts = |text: &str| -> usize {
        let parsed = parse_str("gen.toml", text, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{:?}", e.problems()));
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        plan_graph::build(&parsed.plan).unwrap_or_else(|e| panic!("{:?}", e.problems()));
        parsed.plan.groups.values().map(|g| g.hosts.ips.len()).sum()
    };
    let small = generate::generate_with(2_003, 9, generate::Ranges::Small);
    let large = generate::generate_with(2_003, 9, generate::Ranges::Large);
    assert_eq!(small, generate::generate(2_003, 9));
    assert_eq!(small.lines().count(), large.lines().count());
    assert!(large.contains(".0/27\"") && !large.contains(".0/29\""));
    let (small_hosts, large_hosts) = (hosts(&small), hosts(&large));
    assert!(
        large_hosts > 2 * small_hosts,
        "{small_hosts} hosts, then {large_hosts}"
    );
}
