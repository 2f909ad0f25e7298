//! `plan diff`.

use crate::args::DiffArgs;
use crate::exit::ExitStatus;
use crate::printer::Printer;

pub(crate) fn run(_args: &DiffArgs, _printer: &Printer) -> anyhow::Result<ExitStatus> {
    anyhow::bail!("`plan diff` is not available in this build yet")
}
