//! `plan completions SHELL`: a completion script for bash, zsh, fish, elvish or PowerShell.

use clap::CommandFactory;

use crate::args::{Cli, CompletionsArgs};
use crate::exit::ExitStatus;

pub(crate) fn run(args: &CompletionsArgs) -> anyhow::Result<ExitStatus> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "plan", &mut std::io::stdout());
    Ok(ExitStatus::Success)
}
