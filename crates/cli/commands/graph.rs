//! `plan graph`.

use crate::args::GraphArgs;
use crate::exit::ExitStatus;
use crate::printer::Printer;

pub(crate) fn run(_args: &GraphArgs, _printer: &Printer) -> anyhow::Result<ExitStatus> {
    anyhow::bail!("`plan graph` is not available in this build yet")
}
