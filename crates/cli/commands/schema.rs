//! `plan schema`: the JSON Schema of the plan format.

use crate::args::SchemaArgs;
use crate::exit::ExitStatus;

pub(crate) fn run(_args: &SchemaArgs) -> anyhow::Result<ExitStatus> {
    anyhow::bail!("`plan schema` is not available in this build yet")
}
