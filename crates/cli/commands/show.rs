//! `plan show`.

use crate::args::ShowArgs;
use crate::exit::ExitStatus;
use crate::printer::Printer;

pub(crate) fn run(_args: &ShowArgs, _printer: &Printer) -> anyhow::Result<ExitStatus> {
    anyhow::bail!("`plan show` is not available in this build yet")
}
