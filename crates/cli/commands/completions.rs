//! `plan completions SHELL`: a completion script for bash, zsh, fish, elvish or PowerShell.

use clap::CommandFactory;

use crate::args::{Cli, CompletionsArgs};
use crate::exit::ExitStatus;
use crate::printer::write_stdout;

pub(crate) fn run(args: &CompletionsArgs) -> anyhow::Result<ExitStatus> {
    let mut command = Cli::command();
    // Built whole, then written as every command's output is: clap_complete panics on a
    // closed pipe (`plan completions zsh | head`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "plan", &mut script);
    write_stdout(&String::from_utf8_lossy(&script))?;
    Ok(ExitStatus::Success)
}
