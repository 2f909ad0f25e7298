//! The JSON Schemas of the documents this crate writes: `plan show`, `plan graph` and
//! `plan diff --format json`. Generated from the types that serialise them, so a schema cannot
//! drift from the output.

use schemars::{JsonSchema, Schema, generate::SchemaSettings};

use crate::diff::DiffDocument;
use crate::render::{GraphDocument, ShowDocument};

/// The schema of `plan show --format json`.
pub fn show_schema() -> Schema {
    schema_for::<ShowDocument<'static>>()
}

/// The schema of `plan graph --format json`.
pub fn graph_schema() -> Schema {
    schema_for::<GraphDocument<'static>>()
}

/// The schema of `plan diff --format json`.
pub fn diff_schema() -> Schema {
    schema_for::<DiffDocument<'static>>()
}

/// The schema of a saved plan (`plan show --save FILE`).
pub fn saved_schema() -> Schema {
    schema_for::<crate::saved::SavedPlan>()
}

fn schema_for<T: JsonSchema>() -> Schema {
    SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
}
