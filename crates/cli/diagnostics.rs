//! Rendering of diagnostics to stderr: fancy on a terminal, plain `file:line:col` otherwise.

use crate::printer::Printer;

/// Prints an error that stopped a command before or outside plan validation.
#[allow(clippy::print_stderr, reason = "the CLI's one place that writes errors")]
pub(crate) fn print_error(_printer: &Printer, error: &anyhow::Error) {
    eprintln!("error: {error:#}");
}
