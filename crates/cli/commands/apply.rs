//! `plan apply`.

use crate::args::ApplyArgs;
use crate::exit::ExitStatus;
use crate::printer::Printer;

pub(crate) fn run(_args: &ApplyArgs, _printer: &Printer) -> anyhow::Result<ExitStatus> {
    anyhow::bail!("`plan apply` is not available in this build yet")
}
