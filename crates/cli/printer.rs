//! Decides how much to print and whether output may be fancy (colours, progress bars), and
//! keeps credentials out of log lines.

use std::io::{IsTerminal, Write};

use plan_bkjob::Scrubber;

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
    /// `--color` as given: a command writing colours to stdout decides with it.
    pub(crate) color: ColorChoice,
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
            color: args.color,
        }
    }

    /// Colours in what a command writes to stdout: `--color`, else only on a terminal without
    /// `NO_COLOR`.
    pub(crate) fn stdout_colours(&self) -> bool {
        match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

/// Where log lines go: stderr, through the credential scrubber. The client already scrubs what
/// it logs; this also covers what libraries log at any verbosity (reqwest's, hyper's and
/// rustls's traces under `RUST_LOG=trace`), whatever a future version of them prints.
pub(crate) struct ScrubbedStderr(Scrubber);

impl ScrubbedStderr {
    /// Scrubs the secrets set in the environment.
    pub(crate) fn from_env() -> Self {
        ScrubbedStderr(Scrubber::from_env())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubbedLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbedLine {
            scrubber: &self.0,
            line: Vec::new(),
        }
    }
}

/// One log event, held until it is whole so a secret split across writes is still seen.
pub(crate) struct ScrubbedLine<'a> {
    scrubber: &'a Scrubber,
    line: Vec<u8>,
}

impl Write for ScrubbedLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedLine<'_> {
    fn drop(&mut self) {
        let text = self.scrubber.scrub(&String::from_utf8_lossy(&self.line));
        // A log line that cannot be written is dropped, as tracing's own stderr writer does.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

/// Writes a command's data to stdout; a closed pipe (`plan show | head`) is not an error.
pub(crate) fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Writes text to stderr. A closed stderr (`plan check 2>&1 | head`) is not an error either:
/// the exit code still says how the command ended.
pub(crate) fn write_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

/// Writes a machine document to stdout as pretty JSON and a newline.
pub(crate) fn write_json(document: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(document)?;
    text.push('\n');
    write_stdout(&text)
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::fmt::MakeWriter as _;

    use super::*;

    #[test]
    fn log_lines_are_scrubbed_whole() {
        let writer = ScrubbedStderr(Scrubber::for_secrets(["CANARY-SECRET-123"]));
        let mut line = writer.make_writer();
        line.write_all(b"header: CANARY-SEC").expect("buffered");
        line.write_all(b"RET-123\n").expect("buffered");
        let text = line.scrubber.scrub(&String::from_utf8_lossy(&line.line));
        assert_eq!(text, format!("header: {}\n", plan_bkjob::WITHHELD));
    }
}
