//! Prints a large, realistic generated plan (see `benches/support/generate.rs` for its shape).
//!
//! ```text
//! cargo run --release -p plan-graph --example gen -- --pushes 10000 [--seed 1] > big.toml
//! cargo run --release -p plan-graph --example gen -- --pushes 10000 --large-ranges > large.toml
//! plan check big.toml
//! ```
//!
//! `--large-ranges` makes each range five times as long (10 to 40 hosts) and each CIDR block a
//! `/27` (30 hosts) instead of a `/29`; the plan is otherwise the same.

#[path = "../benches/support/generate.rs"]
mod generate;

use std::io::Write as _;
use std::process::ExitCode;

const USAGE: &str = "usage: gen --pushes N [--seed S] [--large-ranges]";

fn parse_args() -> Result<(usize, u64, generate::Ranges), String> {
    let mut pushes = None;
    let mut seed = 1;
    let mut ranges = generate::Ranges::Small;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--pushes" => {
                pushes = Some(
                    value("--pushes")?
                        .parse()
                        .map_err(|e| format!("--pushes: {e}"))?,
                );
            }
            "--seed" => {
                seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--large-ranges" => ranges = generate::Ranges::Large,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unexpected argument `{other}`\n{USAGE}")),
        }
    }
    let pushes = pushes.ok_or_else(|| USAGE.to_owned())?;
    Ok((pushes, seed, ranges))
}

#[allow(
    clippy::print_stderr,
    reason = "a command-line tool reports usage errors"
)]
fn main() -> ExitCode {
    match parse_args() {
        Ok((pushes, seed, ranges)) => {
            let text = generate::generate_with(pushes, seed, ranges);
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("gen: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}
