//! `plan check`.

use crate::args::CheckArgs;
use crate::exit::ExitStatus;
use crate::printer::Printer;

pub(crate) fn run(_args: &CheckArgs, _printer: &Printer) -> anyhow::Result<ExitStatus> {
    anyhow::bail!("`plan check` is not available in this build yet")
}
