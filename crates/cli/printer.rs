//! Decides how much to print and whether output may be fancy (colours, progress bars).

use std::io::IsTerminal;

use crate::args::{ColorChoice, GlobalArgs};

/// Output policy derived from the global flags and the environment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printer {
    /// `-q`: only errors and the final result.
    pub(crate) quiet: bool,
    /// `-v` count.
    pub(crate) verbose: u8,
    /// Fancy diagnostics and colours on stderr.
    pub(crate) fancy: bool,
    /// Progress bars may be drawn on stderr.
    pub(crate) progress: bool,
    /// stdin and stderr are a terminal (prompts are allowed).
    pub(crate) interactive: bool,
}

impl Printer {
    pub(crate) fn from_args(args: &GlobalArgs) -> Self {
        let stderr_tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let fancy = match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stderr_tty && !no_color,
        };
        // Tests and CI set PLAN_NO_PROGRESS so snapshots never contain bar redraws.
        let progress_env_off = std::env::var_os("PLAN_NO_PROGRESS").is_some();
        Printer {
            quiet: args.quiet,
            verbose: args.verbose,
            fancy,
            progress: stderr_tty && !args.no_progress && !args.quiet && !progress_env_off,
            interactive: stderr_tty && std::io::stdin().is_terminal(),
        }
    }
}
