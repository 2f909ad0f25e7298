//! The JSON Schema of the plan format, generated from the types below (`plan schema` prints it).
//!
//! These types describe the shape of a plan file as the parser reads it: the keys of each
//! table, their types, ranges, name patterns and enums, with the doc comments that editors
//! show on hover. They are never deserialized into (the parser walks a spanned tree so that it
//! can report every problem at once); they exist to generate the schema. The parser's tests
//! check that its lists of accepted keys and the keys here are the same, and that it accepts
//! and rejects at the same numeric bounds, enum values and name patterns, so the two cannot
//! drift apart.
//!
//! Rules that need more than one value (references between names, cycles, paths after
//! variable substitution) are only checked by the parser.

// The fields are read by the schema derive only.
#![allow(dead_code)]

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use schemars::transform::{Transform, transform_subschemas};
use schemars::{JsonSchema, Schema};

/// Where the committed copies of the schemas are published.
const SCHEMA_BASE: &str = "https://github.com/plan-rs/plan/schemas/";

/// The JSON Schema (draft 2020-12) of a plan file, for editors.
///
/// It describes the shape (keys, types, ranges, name patterns); rules that need more than one
/// value (references, cycles, paths after substitution) are only checked by the parser.
pub fn plan_schema() -> serde_json::Value {
    generate::<PlanFile>("plan.schema.json")
}

/// The JSON Schema (draft 2020-12) of a file named in a plan's `include`: only `[hosts]` and
/// `[vars]`, with the same definitions as [`plan_schema`].
pub fn include_schema() -> serde_json::Value {
    generate::<IncludeFile>("plan-include.schema.json")
}

fn generate<T: JsonSchema>(file: &str) -> serde_json::Value {
    let generator = SchemaSettings::draft2020_12()
        .with_transform(TomlValues)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>();
    let mut rest = schema
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    // What the document is comes first, as in any hand-written schema; then the root table.
    let mut root = serde_json::Map::new();
    for key in ["$schema", "$id", "title", "description"] {
        let value = match key {
            "$id" => Some(serde_json::Value::from(format!("{SCHEMA_BASE}{file}"))),
            _ => rest.remove(key),
        };
        if let Some(value) = value {
            root.insert(key.into(), value);
        }
    }
    root.append(&mut rest);
    serde_json::Value::Object(root)
}

/// Adapts the generated schema to TOML, which has no `null` and one integer type.
///
/// An optional key is absent, never null, so `Option<T>` must not add `null`; the integer
/// `format`s (`int64`, `uint8`, ...) name Rust types, not anything a plan author can act on.
#[derive(Clone)]
struct TomlValues;

impl Transform for TomlValues {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(object) = schema.as_object_mut() {
            if let Some(serde_json::Value::Array(types)) = object.get("type") {
                let mut types: Vec<serde_json::Value> =
                    types.iter().filter(|t| *t != "null").cloned().collect();
                let kept = if types.len() == 1 {
                    types.remove(0)
                } else {
                    serde_json::Value::Array(types)
                };
                object.insert("type".into(), kept);
            }
            if let Some(serde_json::Value::Array(options)) = object.get_mut("anyOf") {
                options.retain(|o| o.get("type").is_none_or(|t| t != "null"));
                if options.len() == 1 {
                    // `{"anyOf": [X]}` (plus a description) is X.
                    if let Some(serde_json::Value::Object(only)) = options.pop() {
                        object.remove("anyOf");
                        for (key, value) in only {
                            object.entry(key).or_insert(value);
                        }
                    }
                }
            }
            if object.get("type").is_some_and(|t| t == "integer") {
                object.remove("format");
            }
            if let Some(serde_json::Value::String(text)) = object.get_mut("description") {
                *text = unwrap_lines(text);
            }
        }
        transform_subschemas(self, schema);
    }
}

/// Joins the lines of each paragraph of a doc comment: the line breaks are the source's, not
/// the text's, and editors show descriptions in a box of their own width.
fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .split('\n')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A plan file of `plan`: file distributions through BlueKing JOB. Credentials are never part
/// of a plan.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "plan")]
struct PlanFile {
    /// Format version; only 1 exists.
    #[schemars(extend("const" = 1))]
    version: Option<i64>,
    /// Files (relative to this one) holding only [hosts] and [vars].
    #[schemars(inner(length(min = 1)))]
    include: Option<Vec<String>>,
    plan: PlanTable,
    vars: Option<Vars>,
    hosts: Option<HostGroups>,
    /// Each [[push]] is one file distribution: one JOB call.
    #[schemars(length(min = 1))]
    push: Vec<Push>,
}

/// A file named in a plan's `include`: only [hosts] and [vars]. Credentials are never part of
/// a plan.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "plan include")]
struct IncludeFile {
    vars: Option<Vars>,
    hosts: Option<HostGroups>,
}

/// Plan-wide settings; `account`, `timeout` and the speed limits are defaults each push may
/// override.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct PlanTable {
    /// The plan's name, used in JOB task names (`<plan>/<push>`).
    name: Name,
    description: Option<String>,
    /// The business id (bk_biz_id) every push runs in; or write `bk_scope_type` and
    /// `bk_scope_id`.
    #[schemars(range(min = 1))]
    bk_biz_id: Option<i64>,
    /// JOB's scope type: a business or a business set (with `bk_scope_id`).
    bk_scope_type: Option<ScopeTypeName>,
    /// The business or business set id (with `bk_scope_type`).
    bk_scope_id: Option<ScopeId>,
    account: Option<Account>,
    timeout: Option<Timeout>,
    upload_speed_limit: Option<SpeedLimit>,
    download_speed_limit: Option<SpeedLimit>,
    api: Option<Api>,
    /// Prefixes JOB task names: `<task_prefix><plan>/<push>`.
    task_prefix: Option<String>,
    /// JOB POSTs the job's status here when a job ends (every push that sets none).
    callback_url: Option<CallbackUrl>,
}

/// An http:// or https:// URL JOB calls when a job ends.
#[derive(JsonSchema)]
#[schemars(inline)]
struct CallbackUrl(
    #[schemars(pattern(r"^https?://[^\s@/]+"), length(max = 512))]
    String,
);

/// Batches: over target hosts (`expression`) or over source files.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct RollingTable {
    /// JOB's rolling expression, e.g. "1 30% 100%" (N, N%, +N, *N parts).
    expression: Option<String>,
    /// Rolling over sources: source hosts per batch (v3).
    #[schemars(range(min = 1))]
    sources_per_batch: Option<i64>,
    /// Rolling over sources: files of one source host per batch (v3).
    #[schemars(range(min = 1))]
    files_per_source: Option<i64>,
    /// What happens after a batch.
    mode: Option<RollingModeName>,
    /// v2 batches: failed hosts that stop the push (a number, or "10%").
    max_failed: Option<MaxFailedValue>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
enum RollingModeName {
    /// Stop after a batch with a failed host (the default).
    PauseOnFailure,
    /// Go on after failed batches.
    IgnoreFailure,
    /// Wait for a confirmation after every batch.
    Manual,
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum MaxFailedValue {
    Hosts(#[schemars(range(min = 0))] i64),
    Percent(#[schemars(pattern(r"^[0-9]{1,3}%$"))] String),
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
enum VerifyName {
    /// Sizes from JOB's file log against the source's.
    Size,
    /// Hash the delivered files on sources and targets.
    Sha256,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
enum ScopeTypeName {
    /// A business.
    Biz,
    /// A business set.
    BizSet,
}

/// An id, as an integer or as JOB's string of digits.
#[derive(JsonSchema)]
#[serde(untagged)]
enum ScopeId {
    Number(#[schemars(range(min = 1))] i64),
    Digits(#[schemars(pattern(r"^[0-9]+$"))] String),
}

/// A name: 1 to 64 of `A-Z a-z 0-9 _ . -`.
#[derive(JsonSchema)]
#[schemars(inline)]
struct Name(#[schemars(pattern(r"^[A-Za-z0-9_.-]{1,64}$"))] String);

/// Execution account alias; `${var}` allowed. Defaults to `[plan] account`.
#[derive(JsonSchema)]
#[schemars(inline)]
struct Account(#[schemars(length(min = 1))] String);

/// Seconds.
#[derive(JsonSchema)]
#[schemars(inline)]
struct Timeout(#[schemars(range(min = 1, max = 259200))] i64);

/// MB/s; absent = unlimited. BK-JOB carries at most 2097151 (it converts to KB/s in a 32-bit
/// integer).
#[derive(JsonSchema)]
#[schemars(inline)]
struct SpeedLimit(#[schemars(range(min = 1, max = 2_097_151))] i64);

/// The request shape.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Api {
    /// `fast_push_file` (the default).
    V2,
    /// `fast_transfer_file`.
    V3,
}

/// `${name}` substitution in push strings (files, paths, accounts); `--var name=value`
/// overrides; `$${` writes a literal `${`.
#[derive(JsonSchema)]
struct Vars(BTreeMap<VarName, String>);

#[derive(JsonSchema)]
#[schemars(inline)]
struct VarName(#[schemars(pattern(r"^[A-Za-z_][A-Za-z0-9_-]*$"))] String);

/// Named host groups ([hosts.NAME]); NAME is `A-Z a-z 0-9 _ . -`.
#[derive(JsonSchema)]
struct HostGroups(BTreeMap<GroupName, HostGroup>);

#[derive(JsonSchema)]
#[schemars(inline)]
struct GroupName(#[schemars(pattern(r"^[A-Za-z0-9_.-]+$"))] String);

/// A host group: any mix of selectors, naming at least one host after `groups` is expanded.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct HostGroup {
    /// Host strings: `ip` (cloud 0), `cloud:ip`, `cloud:[ipv6]`, ranges (`10.0.1.[1:40]`),
    /// CIDR blocks (`10.0.2.0/28`), CMDB host ids (`host_id:1001`).
    ips: Option<Vec<String>>,
    /// CMDB host ids (`bk_host_id`), v3 only.
    #[schemars(inner(range(min = 1)))]
    host_ids: Option<Vec<i64>>,
    /// CMDB dynamic group ids.
    #[schemars(inner(pattern(r"^\S+$")))]
    dynamic_groups: Option<Vec<String>>,
    /// CMDB topology nodes: `"node_type:id"` or `{ node_type, id }`.
    topo_nodes: Option<Vec<TopoNode>>,
    /// Other groups whose hosts this one includes.
    groups: Option<Vec<GroupName>>,
}

/// A CMDB topology node (bk_obj_id and bk_inst_id).
#[derive(JsonSchema)]
#[serde(untagged)]
enum TopoNode {
    /// `"node_type:id"`, e.g. `"module:1000"` or `"set:7"`.
    Text(#[schemars(pattern(r"^[A-Za-z0-9_-]+:[0-9]+$"))] String),
    /// `{ node_type = "module", id = 1000 }`.
    Table(TopoNodeTable),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(inline)]
struct TopoNodeTable {
    /// A CMDB object id such as `module` or `set`.
    #[schemars(pattern(r"^[A-Za-z0-9_-]+$"))]
    node_type: String,
    #[schemars(range(min = 0))]
    id: i64,
}

/// One distribution: one JOB call.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct Push {
    /// Unique in the plan; used in the JOB task name.
    name: Name,
    /// Where the files come from: one source, or several.
    from: Sources,
    /// Where the files go.
    to: Target,
    /// Names of pushes this one runs after (ordering the file flow does not imply).
    after: Option<Vec<Name>>,
    timeout: Option<Timeout>,
    upload_speed_limit: Option<SpeedLimit>,
    download_speed_limit: Option<SpeedLimit>,
    transfer_mode: Option<TransferMode>,
    /// Re-push to the hosts that failed, up to this many more times (default 0).
    #[schemars(range(min = 0, max = 5))]
    retries: Option<i64>,
    /// `false` keeps the push in the file but out of the run (shown as skipped).
    enabled: Option<bool>,
    /// Rolling batches (JOB's rolling_config under v3, plan-made batches under v2).
    rolling: Option<RollingTable>,
    /// Wait for an approval before the push starts.
    gate: Option<bool>,
    /// Check the delivered bytes after the push.
    verify: Option<VerifyName>,
    /// JOB POSTs the job's status here when the job ends.
    callback_url: Option<CallbackUrl>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum Sources {
    One(Source),
    Many(#[schemars(length(min = 1))] Vec<Source>),
}

/// Files on some hosts.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct Source {
    /// The source hosts (or a file source: `file_source` / `file_source_id`).
    hosts: Option<Hosts>,
    /// Absolute paths; `REGEX:` for the file name, `*` wildcard, trailing `/` for a directory.
    /// From a file source: paths inside it (`bucket/path`).
    #[schemars(length(min = 1), inner(length(min = 1)))]
    files: Vec<String>,
    account: Option<Account>,
    /// The execution account by JOB account id instead of alias (v3 only).
    #[schemars(range(min = 1))]
    account_id: Option<i64>,
    /// A JOB third-party file source (bkrepo, COS, Artifactory) by code, instead of hosts
    /// (v3 only).
    #[schemars(length(min = 1))]
    file_source: Option<String>,
    /// A JOB third-party file source by id, instead of hosts (v3 only).
    #[schemars(range(min = 1))]
    file_source_id: Option<i64>,
}

/// The target hosts and directory.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct Target {
    hosts: Hosts,
    /// Absolute target directory; `[FILESRCIP]` keeps one copy per source host.
    #[schemars(length(min = 1))]
    path: String,
    account: Option<Account>,
    /// The execution account by JOB account id instead of alias (v3 only).
    #[schemars(range(min = 1))]
    account_id: Option<i64>,
    /// Renames the one file delivered (v3 only; a single file source, no pattern).
    #[schemars(length(min = 1))]
    file_target_name: Option<String>,
}

/// A group name, a host string (`ip`, `cloud:ip`, `cloud:[ipv6]`), or an array mixing both.
#[derive(JsonSchema)]
#[serde(untagged)]
enum Hosts {
    One(#[schemars(length(min = 1))] String),
    Many(#[schemars(inner(length(min = 1)))] Vec<String>),
}

/// v3 only: what JOB does when the target directory is missing.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
enum TransferMode {
    /// Create it.
    Force,
    /// Fail.
    Strict,
}

/// The sorted property names of the table at `path` in `schema`, following `$ref`s.
///
/// Each step of `path` is a key, `[]` (the items of an array) or `*` (the value of any key of
/// a map); at a choice (`anyOf`), the first option that has the step is taken.
#[cfg(test)]
pub(crate) fn keys_at(schema: &serde_json::Value, path: &[&str]) -> Vec<String> {
    use serde_json::Value;
    fn resolve<'v>(root: &'v Value, mut node: &'v Value) -> &'v Value {
        while let Some(name) = node
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
        {
            node = &root["$defs"][name];
        }
        node
    }
    fn step<'v>(root: &'v Value, node: &'v Value, s: &str) -> Option<&'v Value> {
        let node = resolve(root, node);
        let direct = match s {
            "[]" => node.get("items"),
            "*" => node
                .get("patternProperties")
                .and_then(Value::as_object)
                .and_then(|p| p.values().next())
                .or_else(|| node.get("additionalProperties").filter(|v| v.is_object())),
            key => node.get("properties").and_then(|p| p.get(key)),
        };
        direct.or_else(|| {
            node.get("anyOf")?
                .as_array()?
                .iter()
                .find_map(|option| step(root, option, s))
        })
    }
    let mut node = schema;
    for s in path {
        node = step(schema, node, s).unwrap_or_else(|| panic!("no `{s}` in {path:?}"));
    }
    let node = resolve(schema, node);
    let tables: Vec<&Value> = match node.get("anyOf").and_then(Value::as_array) {
        Some(options) => options.iter().map(|o| resolve(schema, o)).collect(),
        None => vec![node],
    };
    let mut keys: Vec<String> = tables
        .iter()
        .filter_map(|t| t.get("properties").and_then(Value::as_object))
        .flat_map(|p| p.keys().cloned())
        .collect();
    assert!(!keys.is_empty(), "no table at {path:?}");
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    use crate::{ParseOptions, Severity, parse_str};

    /// A valid plan with one host group, one variable and one push; `{...}` holes take the
    /// value under test.
    struct Template {
        plan_name: String,
        push_name: String,
        group: String,
        var: String,
        group_body: String,
        plan_extra: String,
        push_extra: String,
        bk_biz_id: String,
    }

    impl Default for Template {
        fn default() -> Self {
            Self {
                plan_name: "p".into(),
                push_name: "a".into(),
                group: "web".into(),
                var: "v".into(),
                group_body: "ips = [\"0:10.0.0.1\"]".into(),
                plan_extra: String::new(),
                push_extra: String::new(),
                bk_biz_id: "2".into(),
            }
        }
    }

    impl Template {
        fn text(&self) -> String {
            let Self {
                plan_name,
                push_name,
                group,
                var,
                group_body,
                plan_extra,
                push_extra,
                bk_biz_id,
            } = self;
            format!(
                "[plan]\nname = \"{plan_name}\"\nbk_biz_id = {bk_biz_id}\naccount = \"root\"\n{plan_extra}\n\n\
                 [vars]\n\"{var}\" = \"x\"\n\n\
                 [hosts.\"{group}\"]\n{group_body}\n\n\
                 [[push]]\nname = \"{push_name}\"\n\
                 from = {{ hosts = \"{group}\", files = [\"/a\"] }}\n\
                 to = {{ hosts = \"0:10.0.0.2\", path = \"/b/\" }}\n{push_extra}\n"
            )
        }

        /// The error codes the parser reports (empty when the plan is valid).
        fn errors(&self) -> Vec<&'static str> {
            match parse_str("plan.toml", &self.text(), &ParseOptions::default()) {
                Ok(_) => Vec::new(),
                Err(errors) => errors
                    .problems()
                    .iter()
                    .filter(|p| p.severity() == Severity::Error)
                    .map(|p| p.code())
                    .collect(),
            }
        }
    }

    fn def<'s>(schema: &'s Value, name: &str) -> &'s Value {
        schema["$defs"]
            .get(name)
            .unwrap_or_else(|| panic!("no $defs/{name}"))
    }

    fn property<'s>(schema: &'s Value, def_name: &str, key: &str) -> &'s Value {
        def(schema, def_name)["properties"]
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in $defs/{def_name}"))
    }

    fn consts(schema: &Value) -> Vec<String> {
        schema["oneOf"]
            .as_array()
            .expect("oneOf")
            .iter()
            .map(|v| v["const"].as_str().expect("const").to_owned())
            .collect()
    }

    /// Calls `f` on every subschema.
    fn walk(schema: &Value, f: &mut dyn FnMut(&serde_json::Map<String, Value>)) {
        match schema {
            Value::Object(object) => {
                f(object);
                object.values().for_each(|v| walk(v, f));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, f)),
            _ => {}
        }
    }

    #[test]
    fn the_plan_schema_is_draft_2020_12_and_requires_plan_and_push() {
        let schema = plan_schema();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(
            schema["$id"],
            "https://github.com/plan-rs/plan/schemas/plan.schema.json"
        );
        assert_eq!(schema["title"], "plan");
        assert_eq!(schema["required"], serde_json::json!(["plan", "push"]));
        assert_eq!(schema["properties"]["version"]["const"], 1);
        assert_eq!(schema["properties"]["push"]["minItems"], 1);
        let keys: Vec<&String> = schema.as_object().expect("object").keys().collect();
        assert_eq!(keys[..4], ["$schema", "$id", "title", "description"]);
    }

    #[test]
    fn every_table_rejects_unknown_keys_and_toml_has_no_null() {
        for schema in [plan_schema(), include_schema()] {
            let mut tables = 0;
            walk(&schema, &mut |object| {
                if object.contains_key("properties") || object.contains_key("patternProperties") {
                    tables += 1;
                    assert_eq!(
                        object.get("additionalProperties"),
                        Some(&Value::Bool(false)),
                        "{object:?}"
                    );
                }
                if let Some(t) = object.get("type") {
                    assert!(t.is_string() && t != "null", "{object:?}");
                }
                assert!(!object.contains_key("format"), "{object:?}");
                if let Some(Value::String(d)) = object.get("description") {
                    assert!(!d.contains('\n'), "{d:?}");
                }
            });
            assert!(tables >= 3, "{tables}");
        }
    }

    #[test]
    fn the_include_schema_has_only_hosts_and_vars_with_the_same_definitions() {
        let include = include_schema();
        let plan = plan_schema();
        assert_eq!(
            include["$id"],
            "https://github.com/plan-rs/plan/schemas/plan-include.schema.json"
        );
        assert_eq!(include["title"], "plan include");
        assert!(include.get("required").is_none());
        assert_eq!(include["additionalProperties"], false);
        for key in ["hosts", "vars"] {
            assert_eq!(include["properties"][key], plan["properties"][key], "{key}");
        }
        let defs = include["$defs"].as_object().expect("$defs");
        assert!(defs.contains_key("HostGroup") && !defs.contains_key("Push"));
        for (name, body) in defs {
            assert_eq!(body, def(&plan, name), "$defs/{name}");
        }
    }

    /// The schema's numeric bounds are the parser's: it accepts each bound and rejects one
    /// beyond, as `out_of_range`.
    #[test]
    fn numeric_bounds_agree_with_the_parser() {
        let schema = plan_schema();
        let mut checked = 0;
        for (def_name, key) in [
            ("PlanTable", "bk_biz_id"),
            ("PlanTable", "timeout"),
            ("PlanTable", "upload_speed_limit"),
            ("PlanTable", "download_speed_limit"),
            ("Push", "timeout"),
            ("Push", "upload_speed_limit"),
            ("Push", "download_speed_limit"),
            ("Push", "retries"),
        ] {
            let rule = property(&schema, def_name, key);
            assert_eq!(rule["type"], "integer", "{def_name}.{key}");
            let at = |n: i64| {
                let mut t = Template::default();
                match (def_name, key) {
                    (_, "bk_biz_id") => t.bk_biz_id = n.to_string(),
                    ("PlanTable", _) => t.plan_extra = format!("{key} = {n}"),
                    _ => t.push_extra = format!("{key} = {n}"),
                }
                t.errors()
            };
            let min = rule["minimum"].as_i64().expect("minimum");
            let mut bounds = vec![(min, min - 1)];
            if let Some(max) = rule["maximum"].as_i64() {
                bounds.push((max, max + 1));
            }
            for (inside, outside) in bounds {
                assert_eq!(
                    at(inside),
                    Vec::<&str>::new(),
                    "{def_name}.{key} = {inside}"
                );
                assert_eq!(
                    at(outside),
                    ["plan::parser::out_of_range"],
                    "{def_name}.{key} = {outside}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 15);
    }

    /// Every value the schema lists is one the parser accepts, and a value outside the list is
    /// rejected by both.
    #[test]
    fn enums_agree_with_the_parser() {
        let schema = plan_schema();
        let apis = consts(def(&schema, "Api"));
        assert_eq!(apis, ["v2", "v3"]);
        for api in apis.iter().map(String::as_str).chain(["v4"]) {
            let t = Template {
                plan_extra: format!("api = \"{api}\""),
                ..Template::default()
            };
            assert_eq!(
                t.errors().is_empty(),
                apis.iter().any(|a| a == api),
                "{api}"
            );
        }
        let modes = consts(def(&schema, "TransferMode"));
        assert_eq!(modes, ["force", "strict"]);
        for mode in modes.iter().map(String::as_str).chain(["Force", "lax"]) {
            let t = Template {
                plan_extra: "api = \"v3\"".into(),
                push_extra: format!("transfer_mode = \"{mode}\""),
                ..Template::default()
            };
            assert_eq!(
                t.errors().is_empty(),
                modes.iter().any(|m| m == mode),
                "{mode}"
            );
        }
    }

    /// Every key the schema requires is one the parser reports missing, and a plan holding
    /// only the required keys (plus an account, which a push needs from somewhere) is valid.
    #[test]
    fn required_keys_agree_with_the_parser() {
        const SECTIONS: &[(&str, &[&str])] = &[
            (
                "[plan]",
                &["name = \"p\"", "bk_biz_id = 2", "account = \"root\""],
            ),
            ("[hosts.web]", &[]),
            (
                "[[hosts.web.topo_nodes]]",
                &["node_type = \"set\"", "id = 7"],
            ),
            ("[[push]]", &["name = \"a\""]),
            (
                "[push.from]",
                &["hosts = \"0:10.0.0.1\"", "files = [\"/a\"]"],
            ),
            ("[push.to]", &["hosts = \"web\"", "path = \"/b/\""]),
        ];
        // The text without the table `skip_table` (and its subtables), or without the line
        // `key = ...` (or the subtable `key`) of the table `header`.
        let text = |skip_table: &str, header: &str, key: &str| {
            let mut out = String::new();
            for (h, lines) in SECTIONS {
                let name = h.trim_matches(['[', ']']);
                if !skip_table.is_empty()
                    && (name == skip_table || name.starts_with(&format!("{skip_table}.")))
                {
                    continue;
                }
                if *h != header && name == format!("{}.{key}", header.trim_matches(['[', ']'])) {
                    continue;
                }
                out.push_str(h);
                out.push('\n');
                for line in *lines {
                    if *h == header && line.starts_with(&format!("{key} =")) {
                        continue;
                    }
                    out.push_str(line);
                    out.push('\n');
                }
            }
            out
        };
        let errors = |text: String| match parse_str("plan.toml", &text, &ParseOptions::default()) {
            Ok(_) => Vec::new(),
            Err(errors) => errors
                .problems()
                .iter()
                .filter(|p| p.severity() == Severity::Error)
                .map(|p| p.code())
                .collect(),
        };
        assert_eq!(errors(text("", "", "")), Vec::<&str>::new());

        let schema = plan_schema();
        let required = |rule: &Value| -> Vec<String> {
            rule["required"]
                .as_array()
                .expect("required")
                .iter()
                .map(|k| k.as_str().expect("key").to_owned())
                .collect()
        };
        let mut checked = 0;
        for key in required(&schema) {
            let code = match key.as_str() {
                "plan" => "plan::parser::missing_plan",
                "push" => "plan::parser::no_push",
                other => panic!("a new required top-level key `{other}`"),
            };
            let found = errors(text(&key, "", ""));
            assert!(found.contains(&code), "without {key}: {found:?}");
            checked += 1;
        }
        let topo_table = def(&schema, "TopoNode")["anyOf"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["type"] == "object"))
            .expect("the table form");
        for (rule, header) in [
            (def(&schema, "PlanTable"), "[plan]"),
            (topo_table, "[[hosts.web.topo_nodes]]"),
            (def(&schema, "Push"), "[[push]]"),
            (def(&schema, "Source"), "[push.from]"),
            (def(&schema, "Target"), "[push.to]"),
        ] {
            for key in required(rule) {
                let found = errors(text("", header, &key));
                assert!(
                    found.contains(&"plan::parser::missing_key"),
                    "{header} without {key}: {found:?}"
                );
                checked += 1;
            }
        }
        // Not among them: `bk_biz_id` (`bk_scope_type` with `bk_scope_id` may replace it) and
        // a source's `hosts` (a file source may replace it).
        assert_eq!(checked, 11);
    }

    /// For each sample, the schema's pattern matches exactly when the parser accepts it.
    fn patterns_agree(pattern: &Value, samples: &[&str], with: impl Fn(&str) -> Template) {
        let pattern = pattern.as_str().expect("a pattern");
        let re = regex::Regex::new(pattern).expect("the pattern compiles");
        for sample in samples {
            let errors = with(sample).errors();
            assert_eq!(
                re.is_match(sample),
                errors.is_empty(),
                "{sample:?} against {pattern}: {errors:?}"
            );
        }
    }

    /// The one `patternProperties` key of a definition: the pattern its keys must match.
    fn key_pattern(schema: &Value, name: &str) -> Value {
        def(schema, name)["patternProperties"]
            .as_object()
            .and_then(|p| p.keys().next())
            .map(|k| Value::from(k.as_str()))
            .expect("one pattern")
    }

    #[test]
    fn name_patterns_agree_with_the_parser() {
        let schema = plan_schema();
        let long = "n".repeat(64);
        let too_long = "n".repeat(65);
        let names = ["a", "rel-1.4_x", &long, &too_long, "a b", "a/b", "", "é"];
        patterns_agree(
            &property(&schema, "Push", "name")["pattern"],
            &names,
            |name| Template {
                push_name: name.into(),
                ..Template::default()
            },
        );
        patterns_agree(
            &property(&schema, "PlanTable", "name")["pattern"],
            &names,
            |name| Template {
                plan_name: name.into(),
                ..Template::default()
            },
        );
        patterns_agree(
            &key_pattern(&schema, "HostGroups"),
            &["web", "web.1", "a-b_C", "a b", "a/b", "a:b", ""],
            |group| Template {
                group: group.into(),
                ..Template::default()
            },
        );
        patterns_agree(
            &key_pattern(&schema, "Vars"),
            &["v", "_v", "v-1", "V_2", "1v", "a b", "v.x", "", "é"],
            |var| Template {
                var: var.into(),
                ..Template::default()
            },
        );
    }

    #[test]
    fn host_selector_patterns_agree_with_the_parser() {
        let schema = plan_schema();
        let topo = def(&schema, "TopoNode")["anyOf"].as_array().expect("anyOf");
        let text = topo.iter().find(|o| o["type"] == "string").expect("text");
        let table = topo.iter().find(|o| o["type"] == "object").expect("table");
        patterns_agree(
            &text["pattern"],
            &[
                "module:1000",
                "set:7",
                "a_b-c:0",
                "module",
                ":7",
                "module:",
                "module:-1",
                "mo dule:1",
                "module:1a",
            ],
            |node| Template {
                group_body: format!("topo_nodes = [\"{node}\"]"),
                ..Template::default()
            },
        );
        patterns_agree(
            &table["properties"]["node_type"]["pattern"],
            &["module", "set", "custom_obj-1", "", "mo dule", "a:b"],
            |node_type| Template {
                group_body: format!("topo_nodes = [{{ node_type = \"{node_type}\", id = 1 }}]"),
                ..Template::default()
            },
        );
        assert_eq!(table["properties"]["id"]["minimum"], 0);
        for (id, ok) in [(0, true), (-1, false)] {
            let t = Template {
                group_body: format!("topo_nodes = [{{ node_type = \"set\", id = {id} }}]"),
                ..Template::default()
            };
            assert_eq!(t.errors().is_empty(), ok, "id = {id}");
        }
        patterns_agree(
            &property(&schema, "HostGroup", "dynamic_groups")["items"]["pattern"],
            &["blo8gojho0skft7pr5q0", "a-b", "", " ", "a b"],
            |id| Template {
                group_body: format!("dynamic_groups = [\"{id}\"]"),
                ..Template::default()
            },
        );
    }
}
