//! `plan schema`: the JSON Schema of the plan format, for editors (taplo, Even Better TOML).
//!
//! The schemas are generated from the parser's schema types (`plan_parser::plan_schema` and
//! `plan_parser::include_schema`, which the parser tests against the keys, bounds and names
//! it accepts) and printed as pretty JSON. `--include-file` prints the schema of a file named
//! in `include`: only `[hosts]` and `[vars]`, nothing required. Both are committed under
//! `schemas/` (a test fails when they are stale); regenerate with
//! `cargo run -q -- schema > schemas/plan.schema.json` and
//! `cargo run -q -- schema --include-file > schemas/plan-include.schema.json`.

use crate::args::SchemaArgs;
use crate::exit::ExitStatus;
use crate::printer::write_json;

pub(crate) fn run(args: &SchemaArgs) -> anyhow::Result<ExitStatus> {
    let schema = if args.include_file {
        plan_parser::include_schema()
    } else {
        plan_parser::plan_schema()
    };
    write_json(&schema)?;
    Ok(ExitStatus::Success)
}
