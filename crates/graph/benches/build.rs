//! Ordering cost on generated plans of 1k, 10k and 50k pushes, next to a bare TOML parse of
//! the same text (the floor any plan tool pays) and the full parse + validation.
//!
//! Run: `cargo bench -p plan-graph --bench build`. Results are recorded in BENCHMARKS.md.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use plan_parser::ParseOptions;

/// A plan shaped like a large real one: a quarter of the pushes stage a package from the build
/// host onto a relay group; the others read one of those packages from the relays (an inferred
/// edge each) and deliver it to a target group, some of them dynamic; every tenth push also
/// has an explicit `after`.
fn generate(pushes: usize) -> String {
    let relays = (pushes / 20).max(1);
    let targets = (pushes / 10).max(1);
    let mut out = String::with_capacity(pushes * 260);
    out.push_str("[plan]\nname = \"bench\"\nbk_biz_id = 2\naccount = \"root\"\ntimeout = 600\n\n");
    out.push_str("[hosts.build]\nips = [\"10.0.0.5\"]\n");
    for r in 0..relays {
        let _ = writeln!(
            out,
            "[hosts.r{r}]\nips = [\"10.1.{}.{}\", \"10.2.{}.{}\", \"10.3.{}.{}\"]",
            r / 250,
            r % 250,
            r / 250,
            r % 250,
            r / 250,
            r % 250
        );
    }
    for t in 0..targets {
        let (a, b) = (t / 250, t % 250);
        if t % 7 == 0 {
            let _ = writeln!(out, "[hosts.t{t}]\ndynamic_groups = [\"dg-{t}\"]");
        } else {
            let _ = writeln!(
                out,
                "[hosts.t{t}]\nips = [\"10.4.{a}.{b}\", \"10.5.{a}.{b}\", \"10.6.{a}.{b}\", \"10.7.{a}.{b}\"]"
            );
        }
    }
    for i in 0..pushes {
        let _ = writeln!(out, "\n[[push]]\nname = \"p{i}\"");
        if i % 10 == 9 {
            let _ = writeln!(out, "after = [\"p{}\"]", i - 3);
        }
        if i % 4 == 0 {
            let relay = (i / 20) % relays;
            let _ = writeln!(
                out,
                "from = {{ hosts = \"build\", files = [\"/data/release/pkg-{i}.tar.gz\"] }}\nto = {{ hosts = \"r{relay}\", path = \"/data/stage/b{i}/\" }}"
            );
        } else {
            let base = i - i % 4;
            let relay = (base / 20) % relays;
            let target = i % targets;
            let _ = writeln!(
                out,
                "from = {{ hosts = \"r{relay}\", files = [\"/data/stage/b{base}/pkg-{base}.tar.gz\"] }}\nto = {{ hosts = \"t{target}\", path = \"/opt/app/p{i}/\" }}"
            );
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    for &size in &[1_000usize, 10_000, 50_000] {
        let text = generate(size);
        let parsed = plan_parser::parse_str("bench.toml", &text, &ParseOptions::default())
            .expect("the generated plan is valid");
        let graph = plan_graph::build(&parsed.plan).expect("the generated plan orders");
        assert!(graph.edges().len() > size / 2, "most pushes are ordered");

        let mut group = c.benchmark_group(format!("{size} pushes"));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(if size > 10_000 { 20 } else { 5 }));
        group.bench_function(BenchmarkId::new("toml_value_parse", size), |b| {
            b.iter(|| toml::from_str::<toml::Value>(black_box(&text)).expect("toml"));
        });
        group.bench_function(BenchmarkId::new("plan_graph_build", size), |b| {
            b.iter(|| plan_graph::build(black_box(&parsed.plan)).expect("valid"));
        });
        group.bench_function(BenchmarkId::new("parse_validate_and_build", size), |b| {
            b.iter(|| {
                let parsed = plan_parser::parse_str(
                    "bench.toml",
                    black_box(&text),
                    &ParseOptions::default(),
                )
                .expect("valid");
                plan_graph::build(&parsed.plan).expect("valid")
            });
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
