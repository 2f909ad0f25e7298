//! `plan`: declarative file distribution for BlueKing JOB.
//!
//! This crate is only the command line: clap types, one module per command, rendering and the
//! mapping to exit codes. Parsing, ordering, execution and the simulator live in library crates.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod ci_formats;
mod commands;
mod diagnostics;
mod exit;
mod git;
mod load;
mod printer;
mod refresh;
mod render;
mod resolve;
mod saved;

use args::{Cli, Command};
use exit::ExitStatus;
use printer::Printer;

fn main() -> ExitCode {
    survive_file_size_limits();
    let cli = Cli::parse();
    let printer = Printer::from_args(&cli.global);
    init_tracing(&printer);
    run(&cli.command, &printer).into()
}

/// Runs one command. `Err` from a command is a failure outside the plan: printed, exit 4.
fn run(command: &Command, printer: &Printer) -> ExitStatus {
    let result = match command {
        Command::Check(args) => commands::check::run(args, printer),
        Command::Show(args) => commands::show::run(args, printer),
        Command::Graph(args) => commands::graph::run(args, printer),
        Command::Diff(args) => commands::diff::run(args, printer),
        Command::Apply(args) => commands::apply::run(args, printer),
        Command::Drift(args) => commands::drift::run(args, printer),
        Command::Completions(args) => commands::completions::run(args),
        Command::Schema(args) => commands::schema::run(args),
        Command::Report(args) => commands::report::run(args, printer),
        Command::Import(args) => commands::import::run(args, printer),
    };
    result.unwrap_or_else(|error| {
        diagnostics::print_error(printer, &error);
        ExitStatus::CannotStart
    })
}

/// Under a file-size limit (`ulimit -f`), a write past it raises SIGXFSZ, whose default action
/// kills the process in the middle of a journal line. Caught instead (into a flag nobody
/// reads), the write fails with EFBIG, and `apply` stops as "journal write failed".
fn survive_file_size_limits() {
    #[cfg(unix)]
    {
        let ignored = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Refused only for signals that cannot be caught, which SIGXFSZ is not.
        let _ = signal_hook::flag::register(signal_hook::consts::SIGXFSZ, ignored);
    }
}

/// Logs go to stderr and only with `-v` (info) or `-vv` (debug); `RUST_LOG` overrides.
/// Nothing logged anywhere may contain a credential: the client redacts before logging, and
/// every line passes the scrubber on its way to stderr.
fn init_tracing(printer: &Printer) {
    let default = match printer.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(printer::ScrubbedStderr::from_env())
        .with_ansi(printer.fancy)
        .with_target(false)
        .try_init();
}
