//! `plan schema`: the JSON Schema of the plan format, for editors (taplo, Even Better TOML).
//!
//! The schema is the parser's own (`plan_parser::JSON_SCHEMA`, which the parser tests against
//! the keys it accepts), printed as is. `--include-file` prints the schema of a file named in
//! `include`, derived from the same document: only `[hosts]` and `[vars]`, nothing required.
//! Both are committed under `schemas/` (a test fails when they are stale); regenerate with
//! `cargo run -q -- schema > schemas/plan.schema.json` and
//! `cargo run -q -- schema --include-file > schemas/plan-include.schema.json`.

use serde_json::Value;

use crate::args::SchemaArgs;
use crate::exit::ExitStatus;

use super::show::write_stdout;

pub(crate) fn run(args: &SchemaArgs) -> anyhow::Result<ExitStatus> {
    let text = if args.include_file {
        include_file_schema()?
    } else {
        plan_schema()
    };
    write_stdout(&text)?;
    Ok(ExitStatus::Success)
}

/// The plan file schema, ending in a newline.
fn plan_schema() -> String {
    let mut text = plan_parser::JSON_SCHEMA.to_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The schema of an included file: the plan schema restricted to `hosts` and `vars`.
fn include_file_schema() -> anyhow::Result<String> {
    let mut schema: Value = serde_json::from_str(plan_parser::JSON_SCHEMA)?;
    let Value::Object(root) = &mut schema else {
        anyhow::bail!("the plan schema is not a JSON object");
    };
    if let Some(Value::String(id)) = root.get_mut("$id") {
        *id = id.replace("plan.schema.json", "plan-include.schema.json");
    }
    root.insert("title".into(), Value::from("plan include"));
    root.insert(
        "description".into(),
        Value::from(
            "A file named in a plan's `include`: only [hosts] and [vars]. Credentials are never part of a plan.",
        ),
    );
    root.remove("required");
    match root.get_mut("properties") {
        Some(Value::Object(properties)) => {
            properties.retain(|key, _| key == "hosts" || key == "vars");
            if properties.len() != 2 {
                anyhow::bail!("the plan schema lacks `hosts` or `vars`");
            }
        }
        _ => anyhow::bail!("the plan schema has no properties"),
    }
    let mut text = serde_json::to_string_pretty(&schema)?;
    text.push('\n');
    Ok(text)
}
