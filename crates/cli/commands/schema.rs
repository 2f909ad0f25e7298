//! `plan schema`: the JSON Schema of the plan format, for editors (taplo, Even Better TOML).
//!
//! The schemas are generated from the parser's schema types (`plan_parser::plan_schema` and
//! `plan_parser::include_schema`, which the parser tests against the keys, bounds and names
//! it accepts) and printed as pretty JSON. `--include-file` prints the schema of a file named
//! in `include`: only `[hosts]` and `[vars]`, nothing required. Both are committed under
//! `schemas/` (a test fails when they are stale); regenerate with
//! `cargo run -q -- schema > schemas/plan.schema.json` and
//! `cargo run -q -- schema --include-file > schemas/plan-include.schema.json`.
//!
//! `--output show|graph|diff|check|events|journal|saved` prints the schema of a machine output instead, generated
//! from the types that serialise it (`docs/outputs.md` lists them and their promises).

use crate::args::{OutputSchema, SchemaArgs};
use crate::exit::ExitStatus;
use crate::printer::write_json;
use crate::refresh::Refreshed;
use crate::render::resolved::{ResolvedChanges, ResolvedDocument};

pub(crate) fn run(args: &SchemaArgs) -> anyhow::Result<ExitStatus> {
    let schema = match (args.output, args.include_file) {
        (Some(output), _) => output_schema(output),
        (None, true) => plan_parser::include_schema(),
        (None, false) => plan_parser::plan_schema(),
    };
    write_json(&schema)?;
    Ok(ExitStatus::Success)
}

/// The schema of a machine output, from the type that writes it.
pub(crate) fn output_schema(output: OutputSchema) -> serde_json::Value {
    let schema = match output {
        OutputSchema::Show => with_property::<Refreshed>(
            with_property::<ResolvedDocument<'static>>(
                plan_graph::schema::show_schema(),
                "resolved",
            ),
            "refresh",
        ),
        OutputSchema::Graph => plan_graph::schema::graph_schema(),
        OutputSchema::Diff => with_property::<Refreshed>(
            with_property::<ResolvedChanges<'static>>(
                plan_graph::schema::diff_schema(),
                "resolved",
            ),
            "refresh",
        ),
        OutputSchema::Check => crate::commands::check::schema(),
        OutputSchema::Events => plan_executor::schema::events_schema(),
        OutputSchema::Journal => plan_executor::schema::journal_schema(),
        OutputSchema::Saved => plan_graph::schema::saved_schema(),
    };
    schema.to_value()
}

/// `schema` with the optional property `name` of type `T`: what the CLI adds to a graph
/// crate's document (`--resolve`'s `resolved`, `--refresh`'s `refresh`), described by the
/// type that writes it.
fn with_property<T: schemars::JsonSchema>(
    mut schema: schemars::Schema,
    name: &str,
) -> schemars::Schema {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let property = generator.subschema_for::<T>().to_value();
    let definitions = generator.take_definitions(true);
    let root = schema
        .as_object_mut()
        .expect("a document schema is an object");
    let defs = root
        .entry("$defs")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()
        .expect("$defs is an object");
    for (key, value) in definitions {
        let previous = defs.insert(key.clone(), value.clone());
        // Two types of one name would make one `$ref` mean both.
        assert!(
            previous.is_none_or(|p| p == value),
            "two schema definitions named {key}"
        );
    }
    root.entry("properties")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()
        .expect("properties is an object")
        .insert(name.to_owned(), property);
    schema
}
