//! Saved plans and the content hash: what was reviewed is what runs.
//!
//! The content hash of a plan (`sha256:<64 hex>`) is computed over what `plan apply` would
//! send and in what order: for each push in execution order (stages, then file order within a
//! stage) its name, stage, the pushes it waits for, whether it runs, its retries, the API route
//! and the exact request body, in canonical JSON (object keys sorted, no whitespace). Each push
//! has a digest of its own; the plan's hash is the digest of those digests in order. Anything
//! that changes no request and no order (comments, formatting, the order of keys, a variable
//! renamed to the same value, the wording of an edge's reason) keeps the hash.
//!
//! The run id `plan apply` adds to task names is not part of a body here: bodies are hashed as
//! [`crate::request_for`] builds them.
//!
//! A [`SavedPlan`] (`plan show --save FILE`) is the resolved plan as a versioned JSON document:
//! every push with its route, request body and digest, stages and edges, the variables, and the
//! source texts (plan and includes) with their digests. `plan apply FILE` parses the embedded
//! texts again (never the files on disk), and applies only when the result has the saved hash
//! and the saved bodies ([`SavedPlan::check_integrity`], [`SavedPlan::compare`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use plan_parser::{ApiVersion, ParseOptions, Plan, Push, SourceLoader};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::graph::{EdgeKind, PlanGraph};
use crate::request::request_for;

/// The version of the saved-plan document this build writes and the newest it reads.
pub const SAVED_FORMAT_VERSION: u32 = 1;

/// How every hash this module makes starts.
pub const HASH_PREFIX: &str = "sha256:";

/// Bumped when what the hash covers changes; part of the hashed bytes, so hashes of two
/// schemes never compare equal by accident.
const HASH_SCHEME: &str = "plan content hash 1";

/// The most bytes `plan apply` reads of a saved plan: far above the largest plan the parser
/// accepts with its bodies, and a bound on what a hostile file makes it hold.
pub const MAX_SAVED_BYTES: u64 = 256 << 20;

/// The ESB/gateway-neutral name of the API a push goes to: `job/fast_push_file` (v2) or
/// `jobv3/fast_transfer_file` (v3).
pub fn route_name(api: ApiVersion) -> &'static str {
    match api {
        ApiVersion::V2 => "job/fast_push_file",
        ApiVersion::V3 => "jobv3/fast_transfer_file",
    }
}

/// True when `s` is `sha256:` followed by 64 lowercase or uppercase hex digits.
pub fn is_hash(s: &str) -> bool {
    s.strip_prefix(HASH_PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `sha256:<hex>` of some bytes.
fn sha256(bytes: &[u8]) -> String {
    format!("{HASH_PREFIX}{}", hex::encode(Sha256::digest(bytes)))
}

/// One push as it is hashed and saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedPush {
    /// The push's name.
    pub name: String,
    /// Its stage (1-based).
    pub stage: usize,
    /// The pushes it waits for (`after` and inferred), sorted by name.
    pub depends_on: Vec<String>,
    /// False for a push that is skipped (`enabled = false`): nothing is sent for it.
    pub enabled: bool,
    /// Extra attempts for the hosts that failed.
    pub retries: u8,
    /// The API it goes to: `job/fast_push_file` or `jobv3/fast_transfer_file`.
    pub route: String,
    /// `sha256:` of the canonical JSON of every other field of this entry.
    pub digest: String,
    /// The exact request body (the run id `apply` adds to `task_name` aside).
    #[schemars(with = "Value")]
    pub request: Value,
}

impl SavedPush {
    fn new(plan: &Plan, graph: &PlanGraph, push: &Push) -> Self {
        let name = &push.name.value;
        let mut depends_on: Vec<String> = graph
            .dependencies_of(name)
            .map(|e| e.dependency.clone())
            .collect();
        depends_on.sort_unstable();
        depends_on.dedup();
        let request = request_for(plan, push);
        let mut entry = SavedPush {
            name: name.clone(),
            stage: graph.stage_of(name).unwrap_or(0),
            depends_on,
            enabled: push.enabled,
            retries: push.retries,
            route: route_name(request.api()).to_owned(),
            digest: String::new(),
            request: request.to_json(),
        };
        entry.digest = entry.computed_digest();
        entry
    }

    /// The digest of this entry's content (its `digest` field aside).
    pub fn computed_digest(&self) -> String {
        let content = serde_json::json!({
            "name": self.name,
            "stage": self.stage,
            "depends_on": self.depends_on,
            "enabled": self.enabled,
            "retries": self.retries,
            "route": self.route,
            "request": self.request,
        });
        sha256(canonical_json(&content).as_bytes())
    }
}

/// Every push of the plan in execution order, each with its digest.
pub fn hashed_pushes(plan: &Plan, graph: &PlanGraph) -> Vec<SavedPush> {
    graph
        .stages()
        .iter()
        .flat_map(|s| s.pushes.iter())
        // The graph's index, not `Plan::push`: a linear search per push is quadratic.
        .filter_map(|name| graph.by_name.get(name.as_str()))
        .filter_map(|&i| plan.pushes.get(i))
        .map(|push| SavedPush::new(plan, graph, push))
        .collect()
}

/// The plan's hash from its pushes' digests, in the order given.
pub fn hash_of(pushes: &[SavedPush]) -> String {
    let mut text = String::with_capacity(HASH_SCHEME.len() + 1 + pushes.len() * 72);
    text.push_str(HASH_SCHEME);
    text.push('\n');
    for push in pushes {
        text.push_str(&push.digest);
        text.push('\n');
    }
    sha256(text.as_bytes())
}

/// The content hash of a plan: `sha256:<64 hex>` over what `plan apply` would send and in
/// what order.
pub fn content_hash(plan: &Plan, graph: &PlanGraph) -> String {
    hash_of(&hashed_pushes(plan, graph))
}

/// JSON with object keys sorted and no whitespace: one text for one value, whatever order its
/// keys were built or read in.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(&mut out, value);
    out
}

fn write_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(out, &map[key.as_str()]);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

/// One file the plan was read from, embedded so `plan apply` never reads the TOML again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedSource {
    /// The path the parser read it under (the plan file first, then includes).
    pub name: String,
    /// `sha256:` of `text`.
    pub sha256: String,
    /// The full text.
    pub text: String,
}

/// A `--var NAME=VALUE` given when the plan was saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedVar {
    /// The variable.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// How the plan was read: the flags that change what the sources resolve to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedOptions {
    /// `--var` overrides, in the order given.
    pub vars: Vec<SavedVar>,
    /// `--api`, when given (`v2` or `v3`).
    pub api: Option<String>,
}

/// One stage of a saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedStage {
    /// 1-based.
    pub stage: usize,
    /// Its pushes in file order.
    pub pushes: Vec<String>,
}

/// One edge of a saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedEdge {
    /// The push that runs first.
    pub from: String,
    /// The push that waits for it.
    pub to: String,
    /// `explicit` (an `after` entry) or `inferred` (a file flow).
    pub kind: String,
    /// Why a file flow orders the two; absent on a plain `after` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where and how a plan was saved: facts for people, not part of the hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// RFC 3339 UTC time of saving.
    pub created_at: String,
    /// `plan <version>`.
    pub tool_version: String,
    /// `git rev-parse HEAD` of the repository holding the plan, when there is one.
    pub git_revision: Option<String>,
    /// The flags the plan was read with.
    pub options: SavedOptions,
}

/// `plan show PLAN --save FILE`: the resolved plan, applicable by `plan apply FILE`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "plan show --save")]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    /// [`SAVED_FORMAT_VERSION`].
    pub format_version: u32,
    /// The plan's name.
    pub plan: String,
    /// `v2` or `v3`.
    pub api: String,
    /// The business (or business set) id.
    pub bk_biz_id: i64,
    /// The content hash: `sha256:` over the pushes' digests in order.
    pub hash: String,
    /// RFC 3339 UTC time of saving.
    pub created_at: String,
    /// The `plan` that saved it.
    pub tool_version: String,
    /// The git commit the plan was saved at, when it lives in a repository.
    pub git_revision: Option<String>,
    /// The flags the plan was read with.
    pub options: SavedOptions,
    /// The effective variables (the plan's, with `--var` applied), by name.
    pub vars: BTreeMap<String, String>,
    /// The plan file, then every include, with their texts.
    pub sources: Vec<SavedSource>,
    /// The stages, in order.
    pub stages: Vec<SavedStage>,
    /// Every edge.
    pub edges: Vec<SavedEdge>,
    /// Every push in execution order, with its route, digest and request body.
    pub pushes: Vec<SavedPush>,
}

/// Why a saved plan cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedPlanError {
    /// Larger than [`MAX_SAVED_BYTES`].
    TooLarge {
        /// Its size.
        size: u64,
    },
    /// Not JSON, or JSON cut short.
    NotJson {
        /// serde's description, with line and column.
        detail: String,
    },
    /// JSON, but not a saved plan (a field missing, unknown or of the wrong type).
    NotASavedPlan {
        /// serde's description.
        detail: String,
    },
    /// Written by a newer `plan`.
    NewerVersion {
        /// The version found.
        found: u64,
    },
    /// The content does not match its digests: the file was edited after it was saved.
    Tampered {
        /// What does not match.
        detail: String,
    },
}

impl std::fmt::Display for SavedPlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SavedPlanError::TooLarge { size } => write!(
                f,
                "it is {size} bytes, over the limit of {MAX_SAVED_BYTES} bytes for a saved plan"
            ),
            SavedPlanError::NotJson { detail } => {
                write!(f, "it is not a complete JSON document ({detail})")
            }
            SavedPlanError::NotASavedPlan { detail } => {
                write!(f, "it is not a saved plan ({detail})")
            }
            SavedPlanError::NewerVersion { found } => write!(
                f,
                "it was saved by a newer plan (format_version {found}; this plan reads up to {SAVED_FORMAT_VERSION})"
            ),
            SavedPlanError::Tampered { detail } => {
                write!(
                    f,
                    "its content does not match its hash: {detail}; it was changed after it was saved"
                )
            }
        }
    }
}

impl std::error::Error for SavedPlanError {}

/// A push whose saved entry and current entry differ (or that is only on one side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushDifference {
    /// Only in the current plan.
    Added(String),
    /// Only in the saved one.
    Removed(String),
    /// In both, with another digest (body, route, stage, dependencies, enabled or retries).
    Changed(String),
    /// The same pushes with the same digests, in another order.
    Reordered,
}

impl std::fmt::Display for PushDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushDifference::Added(name) => write!(f, "{name}: added"),
            PushDifference::Removed(name) => write!(f, "{name}: removed"),
            PushDifference::Changed(name) => write!(f, "{name}: changed"),
            PushDifference::Reordered => f.write_str("the pushes run in another order"),
        }
    }
}

/// What differs between two lists of pushes, by name.
pub fn compare_pushes(expected: &[SavedPush], actual: &[SavedPush]) -> Vec<PushDifference> {
    let by_name = |list: &[SavedPush]| -> BTreeMap<String, String> {
        list.iter()
            .map(|p| (p.name.clone(), p.digest.clone()))
            .collect()
    };
    let (old, new) = (by_name(expected), by_name(actual));
    let mut out = Vec::new();
    for push in actual {
        match old.get(&push.name) {
            None => out.push(PushDifference::Added(push.name.clone())),
            Some(digest) if *digest != push.digest => {
                out.push(PushDifference::Changed(push.name.clone()));
            }
            Some(_) => {}
        }
    }
    for push in expected {
        if !new.contains_key(&push.name) {
            out.push(PushDifference::Removed(push.name.clone()));
        }
    }
    if out.is_empty() && hash_of(expected) != hash_of(actual) {
        out.push(PushDifference::Reordered);
    }
    out
}

impl SavedPlan {
    /// The saved document of a valid plan.
    pub fn new(plan: &Plan, graph: &PlanGraph, provenance: Provenance) -> Self {
        let pushes = hashed_pushes(plan, graph);
        SavedPlan {
            format_version: SAVED_FORMAT_VERSION,
            plan: plan.name.value.clone(),
            api: plan.api.as_str().to_owned(),
            bk_biz_id: plan.bk_biz_id.value,
            hash: hash_of(&pushes),
            created_at: provenance.created_at,
            tool_version: provenance.tool_version,
            git_revision: provenance.git_revision,
            options: provenance.options,
            vars: plan.vars.clone(),
            sources: plan
                .sources
                .iter()
                .map(|(_, file)| SavedSource {
                    name: file.name.clone(),
                    sha256: sha256(file.text.as_bytes()),
                    text: file.text.to_string(),
                })
                .collect(),
            stages: graph
                .stages()
                .iter()
                .map(|s| SavedStage {
                    stage: s.number,
                    pushes: s.pushes.clone(),
                })
                .collect(),
            edges: graph.edges().iter().map(saved_edge).collect(),
            pushes,
        }
    }

    /// Reads a saved plan from its bytes: JSON, a version this build reads, every field
    /// known. Nothing is checked against the hash yet ([`SavedPlan::check_integrity`]).
    ///
    /// # Errors
    /// Too large, not JSON (a truncated file), newer, or not a saved plan.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, SavedPlanError> {
        if bytes.len() as u64 > MAX_SAVED_BYTES {
            return Err(SavedPlanError::TooLarge {
                size: bytes.len() as u64,
            });
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| SavedPlanError::NotJson {
            detail: e.to_string(),
        })?;
        // The version first: a newer document is refused as newer, whatever its fields.
        match value.get("format_version").and_then(Value::as_u64) {
            Some(found) if found > u64::from(SAVED_FORMAT_VERSION) => {
                return Err(SavedPlanError::NewerVersion { found });
            }
            _ => {}
        }
        serde_json::from_value(value).map_err(|e| SavedPlanError::NotASavedPlan {
            detail: e.to_string(),
        })
    }

    /// Checks the document against itself: each source's text against its digest, each push
    /// against its digest, and the hash against the pushes.
    ///
    /// # Errors
    /// [`SavedPlanError::Tampered`] naming the first thing that does not match.
    pub fn check_integrity(&self) -> Result<(), SavedPlanError> {
        if self.format_version == 0 || !is_hash(&self.hash) {
            return Err(SavedPlanError::Tampered {
                detail: "the format version or the hash is not one plan writes".to_owned(),
            });
        }
        if !matches!(self.options.api.as_deref(), None | Some("v2" | "v3")) {
            return Err(SavedPlanError::Tampered {
                detail: "`options.api` is neither v2 nor v3".to_owned(),
            });
        }
        if self.sources.is_empty() {
            return Err(SavedPlanError::Tampered {
                detail: "no plan file is embedded".to_owned(),
            });
        }
        for source in &self.sources {
            if sha256(source.text.as_bytes()) != source.sha256 {
                return Err(SavedPlanError::Tampered {
                    detail: format!("the text of `{}` has another digest", source.name),
                });
            }
        }
        for push in &self.pushes {
            if push.computed_digest() != push.digest {
                return Err(SavedPlanError::Tampered {
                    detail: format!("push `{}` has another digest", push.name),
                });
            }
        }
        if hash_of(&self.pushes) != self.hash {
            return Err(SavedPlanError::Tampered {
                detail: "the pushes have another hash".to_owned(),
            });
        }
        Ok(())
    }

    /// The path the plan file was read under; the embedded sources are parsed as if from it.
    pub fn main_path(&self) -> &Path {
        Path::new(self.sources.first().map_or("", |s| s.name.as_str()))
    }

    /// The parser's options the plan was saved with.
    pub fn parse_options(&self) -> ParseOptions {
        ParseOptions {
            vars: self
                .options
                .vars
                .iter()
                .map(|v| (v.name.clone(), v.value.clone()))
                .collect(),
            api: self.options.api.as_deref().and_then(|api| match api {
                "v2" => Some(ApiVersion::V2),
                "v3" => Some(ApiVersion::V3),
                _ => None,
            }),
        }
    }

    /// A loader that serves the embedded texts and nothing else: the files on disk are never
    /// read when a saved plan is applied.
    pub fn loader(&self) -> EmbeddedSources<'_> {
        EmbeddedSources {
            sources: &self.sources,
        }
    }

    /// What differs between the saved pushes and those of `plan` as built now; empty when
    /// `plan` has the saved hash.
    pub fn compare(&self, plan: &Plan, graph: &PlanGraph) -> Vec<PushDifference> {
        compare_pushes(&self.pushes, &hashed_pushes(plan, graph))
    }

    /// The first field of this document that `plan` (parsed again from the embedded
    /// sources) does not reproduce, the facts about saving aside (`created_at`,
    /// `tool_version`, `git_revision`, `options`): a hand-edited field is caught even where
    /// it would change nothing sent. `None` when the whole document is reproduced.
    pub fn unreproduced_field(&self, plan: &Plan, graph: &PlanGraph) -> Option<&'static str> {
        let provenance = Provenance {
            created_at: self.created_at.clone(),
            tool_version: self.tool_version.clone(),
            git_revision: self.git_revision.clone(),
            options: self.options.clone(),
        };
        let rebuilt = SavedPlan::new(plan, graph, provenance);
        let fields: [(&'static str, bool); 10] = [
            (
                "format_version",
                rebuilt.format_version == self.format_version,
            ),
            ("plan", rebuilt.plan == self.plan),
            ("api", rebuilt.api == self.api),
            ("bk_biz_id", rebuilt.bk_biz_id == self.bk_biz_id),
            ("hash", rebuilt.hash == self.hash),
            ("vars", rebuilt.vars == self.vars),
            ("sources", rebuilt.sources == self.sources),
            ("stages", rebuilt.stages == self.stages),
            ("edges", rebuilt.edges == self.edges),
            ("pushes", rebuilt.pushes == self.pushes),
        ];
        fields
            .into_iter()
            .find(|(_, same)| !same)
            .map(|(name, _)| name)
    }
}

fn saved_edge(edge: &crate::Edge) -> SavedEdge {
    let (kind, reason) = match &edge.kind {
        EdgeKind::Explicit { also, .. } => ("explicit", also.as_ref().map(|f| f.reason.clone())),
        EdgeKind::Inferred { reason, .. } => ("inferred", Some(reason.clone())),
    };
    SavedEdge {
        from: edge.dependency.clone(),
        to: edge.dependent.clone(),
        kind: kind.to_owned(),
        reason,
    }
}

/// Serves a saved plan's embedded texts by the names the parser read them under.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedSources<'a> {
    sources: &'a [SavedSource],
}

impl EmbeddedSources<'_> {
    fn find(&self, path: &Path) -> std::io::Result<String> {
        let name = path.display().to_string();
        self.sources
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.text.clone())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("`{name}` is not embedded in the saved plan"),
                )
            })
    }
}

impl SourceLoader for EmbeddedSources<'_> {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        self.find(path)
    }

    fn load_include(&self, _plan: &Path, path: &Path) -> std::io::Result<String> {
        self.find(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"
[plan]
name = "rel"
bk_biz_id = 2
api = "v3"
account = "root"

[vars]
dir = "/opt/app/"

[hosts.web]
ips = ["10.0.0.2", "10.0.0.3"]

[[push]]
name = "a"
from = { hosts = ["10.0.0.1"], files = ["/data/a.tgz"] }
to = { hosts = ["10.0.0.9"], path = "/stage/" }

[[push]]
name = "b"
from = { hosts = ["10.0.0.9"], files = ["/stage/a.tgz"] }
to = { hosts = ["web"], path = "${dir}" }
"#;

    fn load(text: &str) -> (Plan, PlanGraph) {
        let parsed = plan_parser::parse_str("plans/rel.toml", text, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{:?}", e.problems()));
        let graph = crate::build(&parsed.plan).expect("valid");
        (parsed.plan, graph)
    }

    fn hash(text: &str) -> String {
        let (plan, graph) = load(text);
        content_hash(&plan, &graph)
    }

    #[test]
    fn the_hash_has_the_documented_form() {
        let h = hash(PLAN);
        assert!(is_hash(&h), "{h}");
        assert!(!is_hash("sha256:abc"));
        assert!(!is_hash(&h.replace("sha256:", "md5:")));
        assert!(!is_hash(&format!("{h}0")));
    }

    #[test]
    fn formatting_comments_key_order_and_variable_names_keep_the_hash() {
        let base = hash(PLAN);
        let reformatted = PLAN
            .replace("[plan]\n", "# the release\n[plan]   # yes\n")
            .replace(
                "name = \"rel\"\nbk_biz_id = 2",
                "bk_biz_id = 2\nname = \"rel\"",
            )
            .replace("\n\n", "\n\n\n");
        assert_eq!(hash(&reformatted), base);
        let renamed = PLAN
            .replace("dir = ", "target_dir = ")
            .replace("${dir}", "${target_dir}");
        assert_eq!(hash(&renamed), base);
        let inlined = PLAN
            .replace("${dir}", "/opt/app/")
            .replace("dir = \"/opt/app/\"", "");
        assert_eq!(hash(&inlined), base);
    }

    #[test]
    fn what_is_sent_and_its_order_change_the_hash() {
        let base = hash(PLAN);
        let changes = [
            PLAN.replace("\"10.0.0.3\"", "\"10.0.0.4\""),
            PLAN.replace("/opt/app/", "/opt/other/"),
            PLAN.replace("api = \"v3\"", "api = \"v2\""),
            PLAN.replace("name = \"b\"", "name = \"b2\""),
            PLAN.replace("name = \"rel\"", "name = \"rel2\""),
            format!("{PLAN}retries = 2\n"),
            format!("{PLAN}enabled = false\n"),
            // The same bodies, b no longer waiting for a.
            PLAN.replace("files = [\"/stage/a.tgz\"]", "files = [\"/stage/b.tgz\"]"),
        ];
        for changed in changes {
            assert_ne!(hash(&changed), base, "{changed}");
        }
    }

    #[test]
    fn a_saved_plan_round_trips_and_checks_itself() {
        let (plan, graph) = load(PLAN);
        let saved = SavedPlan::new(&plan, &graph, Provenance::default());
        assert_eq!(saved.hash, content_hash(&plan, &graph));
        let bytes = serde_json::to_vec_pretty(&saved).expect("json");
        let read = SavedPlan::from_slice(&bytes).expect("read");
        read.check_integrity().expect("intact");
        // Parsed again from the embedded texts only.
        let parsed =
            plan_parser::parse_with(read.main_path(), &read.loader(), &read.parse_options())
                .expect("parses");
        let graph = crate::build(&parsed.plan).expect("valid");
        assert_eq!(read.compare(&parsed.plan, &graph), []);
        assert_eq!(read.pushes[1].depends_on, ["a"]);
        assert_eq!(read.pushes[1].route, "jobv3/fast_transfer_file");
    }

    #[test]
    fn edits_truncation_and_newer_versions_are_refused() {
        let (plan, graph) = load(PLAN);
        let saved = SavedPlan::new(&plan, &graph, Provenance::default());
        let text = serde_json::to_string_pretty(&saved).expect("json");

        let truncated = &text.as_bytes()[..text.len() / 2];
        assert!(matches!(
            SavedPlan::from_slice(truncated),
            Err(SavedPlanError::NotJson { .. })
        ));

        let newer = text.replace("\"format_version\": 1", "\"format_version\": 2");
        assert_eq!(
            SavedPlan::from_slice(newer.as_bytes()).expect_err("newer"),
            SavedPlanError::NewerVersion { found: 2 }
        );

        let body_edited = text.replace("10.0.0.3", "10.6.6.6");
        let read = SavedPlan::from_slice(body_edited.as_bytes()).expect("json");
        assert!(matches!(
            read.check_integrity(),
            Err(SavedPlanError::Tampered { .. })
        ));

        let mut digest_fixed = SavedPlan::from_slice(body_edited.as_bytes()).expect("json");
        for push in &mut digest_fixed.pushes {
            push.digest = push.computed_digest();
        }
        assert!(
            digest_fixed.check_integrity().is_err(),
            "the hash no longer matches"
        );

        let extra = text.replacen('{', "{\"injected\": true,", 1);
        assert!(matches!(
            SavedPlan::from_slice(extra.as_bytes()),
            Err(SavedPlanError::NotASavedPlan { .. })
        ));
    }

    #[test]
    fn a_rewritten_source_is_caught_by_comparing_with_the_saved_pushes() {
        let (plan, graph) = load(PLAN);
        let mut saved = SavedPlan::new(&plan, &graph, Provenance::default());
        // Text and its digest rewritten consistently: the document's own checks pass...
        let text = saved.sources[0].text.replace("10.0.0.3", "10.6.6.6");
        saved.sources[0].sha256 = sha256(text.as_bytes());
        saved.sources[0].text = text;
        saved.check_integrity().expect("self-consistent");
        // ...but the plan it parses to is not the saved one.
        let parsed =
            plan_parser::parse_with(saved.main_path(), &saved.loader(), &saved.parse_options())
                .expect("parses");
        let graph = crate::build(&parsed.plan).expect("valid");
        assert_eq!(
            saved.compare(&parsed.plan, &graph),
            [PushDifference::Changed("b".into())]
        );
    }

    #[test]
    fn every_field_but_the_facts_of_saving_must_be_reproduced() {
        let (plan, graph) = load(PLAN);
        let saved = SavedPlan::new(&plan, &graph, Provenance::default());
        assert_eq!(saved.unreproduced_field(&plan, &graph), None);
        let mut edited = saved.clone();
        edited.edges[0].reason = Some("a sentence the reviewer trusted".into());
        assert_eq!(edited.unreproduced_field(&plan, &graph), Some("edges"));
        let mut edited = saved.clone();
        edited.vars.insert("extra".into(), "1".into());
        assert_eq!(edited.unreproduced_field(&plan, &graph), Some("vars"));
        let mut edited = saved;
        edited.created_at = "2001-01-01T00:00:00Z".into();
        assert_eq!(edited.unreproduced_field(&plan, &graph), None);
        edited.options.api = Some("v9".into());
        assert!(edited.check_integrity().is_err());
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let value = serde_json::json!({"b": [{"z": 1, "a": "x\"y"}], "a": null});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":null,"b":[{"a":"x\"y","z":1}]}"#
        );
    }

    #[test]
    fn differences_name_pushes() {
        let (plan, graph) = load(PLAN);
        let old = hashed_pushes(&plan, &graph);
        let (plan2, graph2) = load(&PLAN.replace("\"10.0.0.3\"", "\"10.0.0.4\""));
        let new = hashed_pushes(&plan2, &graph2);
        assert_eq!(
            compare_pushes(&old, &new),
            [PushDifference::Changed("b".into())]
        );
        assert_eq!(
            compare_pushes(&old, &new[..1]),
            [PushDifference::Removed("b".into())]
        );
        assert_eq!(
            compare_pushes(&old[..1], &old),
            [PushDifference::Added("b".into())]
        );
    }
}
