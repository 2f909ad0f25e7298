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

use std::process::ExitCode;

use plan_parser::{ParseOptions, Severity};

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports what it did"
)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
