//! What `plan check` costs on generated plans of 1k, 10k and 50k pushes (and 10k with large
//! ranges, `check/10000-large-ranges`), next to a bare parse of the same text by the `toml`
//! crate, measured in the same run.
//!
//! Run: `cargo bench -p plan-graph --bench check` (add `-- --quick` while iterating). The
//! functions of each group:
//!
//! - `toml_value`: `toml::from_str::<toml::Value>`, the bare parse of the file (the baseline
//!   the targets are stated against);
//! - `toml_detable`: `toml::de::DeTable::parse`, the spanned tree alone (the part of the bare
//!   parse the plan parser also pays: it walks this tree instead of building a `Value`);
//! - `plan_check`: what `plan check` does between reading the file and printing: parse,
//!   validate, order (`plan_graph::build`), collect and sort the problems;
//! - `graph_build`: `plan_graph::build` alone, on the already parsed plan.
//!
//! The plans come from the shared generator (`support/generate.rs`, also the `gen` example).
//! Results, ratios and the growth exponent are recorded in BENCHMARKS.md.

#[path = "support/generate.rs"]
mod generate;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use generate::Ranges;
use plan_parser::{ParseOptions, Problem, Severity};

/// `plan check` on one text, minus reading the file and printing (see `check_one` in the CLI).
fn check(text: &str) -> Vec<Problem> {
    match plan_parser::parse_str("plan.toml", text, &ParseOptions::default()) {
        Ok(parsed) => {
            let mut problems = parsed.warnings;
            match plan_graph::build(&parsed.plan) {
                Ok(graph) => problems.extend(graph.warnings().iter().cloned()),
                Err(errors) => problems.extend(errors.problems().iter().cloned()),
            }
            plan_parser::sort_problems(&mut problems);
            problems
        }
        Err(errors) => errors.problems().to_vec(),
    }
}

fn bench(c: &mut Criterion) {
    let plans = [
        (1_000usize, Ranges::Small, ""),
        (10_000, Ranges::Small, ""),
        (10_000, Ranges::Large, "-large-ranges"),
        (50_000, Ranges::Small, ""),
    ];
    for (size, ranges, suffix) in plans {
        let text = generate::generate_with(size, 1, ranges);
        let problems = check(&text);
        assert!(
            problems.iter().all(|p| p.severity() != Severity::Error),
            "the generated plan is valid: {problems:?}"
        );
        let parsed = plan_parser::parse_str("plan.toml", &text, &ParseOptions::default())
            .expect("the generated plan is valid");
        let graph = plan_graph::build(&parsed.plan).expect("the generated plan orders");
        assert!(graph.edges().len() > size / 2, "most pushes are ordered");

        let mut group = c.benchmark_group(format!("check/{size}{suffix}"));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(match size {
            s if s > 10_000 => 30,
            s if s > 1_000 => 10,
            _ => 5,
        }));
        group.bench_function(BenchmarkId::new("toml_value", size), |b| {
            b.iter(|| toml::from_str::<toml::Value>(black_box(&text)).expect("toml"));
        });
        group.bench_function(BenchmarkId::new("toml_detable", size), |b| {
            b.iter(|| toml::de::DeTable::parse(black_box(&text)).expect("toml"));
        });
        group.bench_function(BenchmarkId::new("plan_check", size), |b| {
            b.iter(|| check(black_box(&text)));
        });
        group.bench_function(BenchmarkId::new("graph_build", size), |b| {
            b.iter(|| plan_graph::build(black_box(&parsed.plan)).expect("valid"));
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
