//! Runs what `plan check` does on one file, without printing diagnostics, so the planning path
//! can be profiled or timed on its own (the CLI's own start-up and output stay out of it).
//!
//! ```text
//! cargo run --release -p plan-graph --example gen -- --pushes 10000 > big.toml
//! cargo build --release -p plan-graph --example check_plan
//! valgrind --tool=callgrind target/release/examples/check_plan check big.toml
//! valgrind --tool=callgrind target/release/examples/check_plan toml big.toml
//! ```
//!
//! Modes: `read` (only reads the file: subtract it from the others), `toml` (a bare
//! `toml::from_str::<toml::Value>`), `detable` (the spanned tree the parser walks) and `check`
//! (parse, validate, order, collect and sort the problems, as `plan check` does).
//!
//! `compare PLAN.toml [ROUNDS]` times the three in turn, round after round, and prints the
//! fastest and the median time of each with the ratios: on a busy machine, alternating keeps
//! a burst of load from landing on one side only, and the fastest round is the least
//! disturbed.

use std::process::ExitCode;

use plan_parser::{ParseOptions, Severity};

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports what it did"
)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, path, rest @ ..] = &args[..]
        && mode == "compare"
    {
        let rounds = rest.first().and_then(|r| r.parse().ok()).unwrap_or(20);
        return compare(std::path::Path::new(path), rounds);
    }
    let [mode, path] = &args[..] else {
        eprintln!("usage: check_plan read|toml|detable|check PLAN.toml");
        return ExitCode::from(2);
    };
    let path = std::path::Path::new(path);
    match mode.as_str() {
        "read" => match std::fs::read_to_string(path) {
            Ok(text) => println!("{} bytes", text.len()),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        "toml" | "detable" => {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            if mode == "toml" {
                match toml::from_str::<toml::Value>(&text) {
                    Ok(value) => println!(
                        "{} top-level keys",
                        value.as_table().map_or(0, toml::Table::len)
                    ),
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                let (tree, errors) = toml::de::DeTable::parse_recoverable(&text);
                println!(
                    "{} top-level keys, {} errors",
                    tree.get_ref().len(),
                    errors.len()
                );
            }
        }
        "check" => {
            let parsed = match plan_parser::parse_file(path, &ParseOptions::default()) {
                Ok(parsed) => parsed,
                Err(errors) => {
                    eprintln!("{} problems", errors.problems().len());
                    return ExitCode::FAILURE;
                }
            };
            let mut problems = parsed.warnings;
            match plan_graph::build(&parsed.plan) {
                Ok(graph) => {
                    problems.extend(graph.warnings().iter().cloned());
                    println!(
                        "{} pushes, {} edges, {} stages",
                        parsed.plan.pushes.len(),
                        graph.edges().len(),
                        graph.stages().len()
                    );
                }
                Err(errors) => problems.extend(errors.problems().iter().cloned()),
            }
            plan_parser::sort_problems(&mut problems);
            let errors = problems
                .iter()
                .filter(|p| p.severity() == Severity::Error)
                .count();
            println!("{errors} errors, {} warnings", problems.len() - errors);
        }
        other => {
            eprintln!("unknown mode `{other}`");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

/// What `plan check` does with the text of one file (see the module docs).
fn check(text: &str) -> usize {
    match plan_parser::parse_str("plan.toml", text, &ParseOptions::default()) {
        Ok(parsed) => {
            let mut problems = parsed.warnings;
            match plan_graph::build(&parsed.plan) {
                Ok(graph) => problems.extend(graph.warnings().iter().cloned()),
                Err(errors) => problems.extend(errors.problems().iter().cloned()),
            }
            plan_parser::sort_problems(&mut problems);
            problems.len()
        }
        Err(errors) => errors.problems().len(),
    }
}

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports what it measured"
)]
fn compare(path: &std::path::Path, rounds: usize) -> ExitCode {
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut times: [Vec<Duration>; 3] = Default::default();
    for _ in 0..rounds.max(1) {
        let start = Instant::now();
        black_box(toml::from_str::<toml::Value>(black_box(&text)).is_ok());
        times[0].push(start.elapsed());
        let start = Instant::now();
        black_box(toml::de::DeTable::parse(black_box(&text)).is_ok());
        times[1].push(start.elapsed());
        let start = Instant::now();
        black_box(check(black_box(&text)));
        times[2].push(start.elapsed());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut summary = Vec::new();
    for (name, t) in ["toml_value", "toml_detable", "plan_check"]
        .iter()
        .zip(&mut times)
    {
        t.sort();
        let (min, median) = (t[0], t[t.len() / 2]);
        println!(
            "{name:>13}: fastest {:8.2} ms, median {:8.2} ms",
            ms(min),
            ms(median)
        );
        summary.push((ms(min), ms(median)));
    }
    let (check_min, check_median) = summary[2];
    println!(
        "plan_check / toml_value: fastest {:.2}x, median {:.2}x",
        check_min / summary[0].0,
        check_median / summary[0].1
    );
    println!(
        "plan_check / toml_detable: fastest {:.2}x, median {:.2}x",
        check_min / summary[1].0,
        check_median / summary[1].1
    );
    ExitCode::SUCCESS
}
