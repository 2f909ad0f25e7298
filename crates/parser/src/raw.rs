//! The first layer: the spanned TOML tree of one file, walked by hand into owned raw structs
//! that mirror the format, with every key and type checked.
//!
//! Walking the tree (instead of deriving `Deserialize` with `deny_unknown_fields`) lets one
//! run report every unknown key, wrong type and credential at once, each with a "did you mean"
//! where one fits; serde would stop at the first.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::kind::ParseErrorKind;
use crate::model::{ApiVersion, FileId, Located, Span, TopoNode, TransferMode};
use crate::problem::{Problem, shown};

mod release;

pub(crate) const CREDENTIALS_HELP: &str = "credentials come from the environment \
     (BK_APP_CODE, BK_APP_SECRET, BK_USERNAME/BK_TOKEN/BK_ACCESS_TOKEN), not the plan";

/// Everything one file of a plan says.
#[derive(Debug, Default)]
pub(crate) struct RawFile {
    pub(crate) include: Vec<Located<String>>,
    pub(crate) plan: Option<RawPlan>,
    pub(crate) vars: Vec<(Located<String>, Located<String>)>,
    pub(crate) groups: Vec<RawGroup>,
    pub(crate) pushes: Vec<RawPush>,
}

#[derive(Debug)]
pub(crate) struct RawPlan {
    pub(crate) span: Span,
    pub(crate) name: Option<Located<String>>,
    pub(crate) description: Option<String>,
    pub(crate) bk_biz_id: Option<Located<i64>>,
    pub(crate) bk_scope_type: Option<Located<String>>,
    /// `bk_scope_id`, an integer or a string of digits as JOB writes it.
    pub(crate) bk_scope_id: Option<Located<i64>>,
    pub(crate) account: Option<Located<String>>,
    /// `account` is written, even when its value could not be read (already reported).
    pub(crate) account_key: bool,
    pub(crate) timeout: Option<Located<i64>>,
    pub(crate) upload_speed_limit: Option<Located<i64>>,
    pub(crate) download_speed_limit: Option<Located<i64>>,
    pub(crate) api: Option<Located<ApiVersion>>,
    pub(crate) task_prefix: Option<Located<String>>,
    pub(crate) callback_url: Option<Located<String>>,
}

#[derive(Debug)]
pub(crate) struct RawGroup {
    pub(crate) name: Located<String>,
    pub(crate) ips: Vec<Located<String>>,
    pub(crate) host_ids: Vec<Located<i64>>,
    pub(crate) dynamic_groups: Vec<Located<String>>,
    pub(crate) topo_nodes: Vec<Located<TopoNode>>,
    pub(crate) groups: Vec<Located<String>>,
    /// Some entry could not be read: the group may look emptier than it is.
    pub(crate) had_errors: bool,
}

/// A `hosts = ...` value: the names as written and the span of the whole value.
#[derive(Debug, Clone)]
pub(crate) struct RawHosts {
    pub(crate) names: Vec<Located<String>>,
    pub(crate) span: Span,
}

#[derive(Debug)]
pub(crate) struct RawSource {
    pub(crate) span: Span,
    pub(crate) hosts: Option<RawHosts>,
    pub(crate) files: Option<Vec<Located<String>>>,
    pub(crate) account: Option<Located<String>>,
    /// `account` is written, even when its value could not be read (already reported).
    pub(crate) account_key: bool,
    pub(crate) account_id: Option<Located<i64>>,
    /// `file_source = "CODE"`: a JOB third-party file source instead of hosts.
    pub(crate) file_source: Option<Located<String>>,
    /// `file_source_id = N`.
    pub(crate) file_source_id: Option<Located<i64>>,
    /// The span of the first file-source key written (valid or not), for the v3-only error.
    pub(crate) file_source_key: Option<Span>,
}

#[derive(Debug)]
pub(crate) struct RawTarget {
    pub(crate) span: Span,
    pub(crate) hosts: Option<RawHosts>,
    pub(crate) path: Option<Located<String>>,
    pub(crate) account: Option<Located<String>>,
    /// `account` is written, even when its value could not be read (already reported).
    pub(crate) account_key: bool,
    pub(crate) account_id: Option<Located<i64>>,
    pub(crate) file_target_name: Option<Located<String>>,
}

#[derive(Debug)]
pub(crate) struct RawPush {
    pub(crate) span: Span,
    pub(crate) name: Option<Located<String>>,
    /// `None` when `from` is missing or unreadable (already reported).
    pub(crate) sources: Option<Vec<RawSource>>,
    pub(crate) target: Option<RawTarget>,
    pub(crate) after: Vec<Located<String>>,
    pub(crate) timeout: Option<Located<i64>>,
    pub(crate) upload_speed_limit: Option<Located<i64>>,
    pub(crate) download_speed_limit: Option<Located<i64>>,
    pub(crate) transfer_mode: Option<Located<TransferMode>>,
    /// The span of the `transfer_mode` key, for the v3-only error.
    pub(crate) transfer_mode_key: Option<Span>,
    pub(crate) retries: Option<Located<i64>>,
    pub(crate) enabled: Option<bool>,
    /// `rolling`, `gate`, `verify`, `callback_url`.
    pub(crate) release: crate::release::RawRelease,
}

/// Which keys a file may hold at its top level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// The plan file.
    Main,
    /// A file named in `include`: only `[hosts]` and `[vars]`.
    Include,
}

type Value<'i> = Spanned<DeValue<'i>>;

const TOP_KEYS: &[&str] = &["version", "include", "plan", "vars", "hosts", "push"];
const PLAN_KEYS: &[&str] = &[
    "name",
    "description",
    "bk_biz_id",
    "bk_scope_type",
    "bk_scope_id",
    "account",
    "timeout",
    "upload_speed_limit",
    "download_speed_limit",
    "api",
    "task_prefix",
    "callback_url",
];
const GROUP_KEYS: &[&str] = &["ips", "host_ids", "dynamic_groups", "topo_nodes", "groups"];
const TOPO_KEYS: &[&str] = &["node_type", "id"];
const PUSH_KEYS: &[&str] = &[
    "name",
    "from",
    "to",
    "after",
    "timeout",
    "upload_speed_limit",
    "download_speed_limit",
    "transfer_mode",
    "retries",
    "enabled",
    "rolling",
    "gate",
    "verify",
    "callback_url",
];
const SOURCE_KEYS: &[&str] = &[
    "hosts",
    "files",
    "account",
    "account_id",
    "file_source",
    "file_source_id",
];
const TARGET_KEYS: &[&str] = &["hosts", "path", "account", "account_id", "file_target_name"];

/// True for key names that are, or look like, credentials (refused as keys and `[vars]`
/// names).
pub fn looks_like_credential(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    const EXACT: &[&str] = &[
        "bk_app_secret",
        "bk_app_code",
        "bk_token",
        "bk_username",
        "access_token",
        "app_code",
        "app_secret",
        "username",
        "password",
    ];
    const PARTS: &[&str] = &[
        "secret",
        "token",
        "password",
        "passwd",
        "credential",
        "api_key",
        "apikey",
        "private_key",
        // BlueKing's login ticket, the gateway's header, cloud-style key pairs
        "ticket",
        "authorization",
        "access_key",
        "accesskey",
        "cookie",
    ];
    EXACT.contains(&key.as_str()) || PARTS.iter().any(|p| key.contains(p))
}

/// The closest candidate to `word`, when one is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // Every key, name and variable a plan can mean is far shorter; comparing a 10 MB word
    // against each candidate would take seconds for a suggestion that cannot be right.
    if word.len() > 1024 {
        return None;
    }
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Formats the help line of a did-you-mean.
pub(crate) fn did_you_mean_help<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    did_you_mean(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

fn describe(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Walks one file's tree, collecting problems.
pub(crate) struct Walker<'p> {
    pub(crate) file: FileId,
    pub(crate) problems: &'p mut Vec<Problem>,
}

impl Walker<'_> {
    fn span(&self, range: std::ops::Range<usize>) -> Span {
        Span::new(self.file, range)
    }

    fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// An unknown key: a credential error when it looks like one, else a did-you-mean.
    fn unknown_key(
        &mut self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        known: &[&str],
        place: &str,
    ) {
        let name: &str = key.get_ref();
        let span = self.span(key.span());
        if looks_like_credential(name) {
            self.push(
                Problem::error(
                    ParseErrorKind::CredentialInPlan.code(),
                    format!("credentials are not accepted in a plan (`{name}` in {place})"),
                )
                .with_label(span, "remove this key")
                .with_help(CREDENTIALS_HELP),
            );
        } else {
            self.push(
                Problem::error(
                    ParseErrorKind::UnknownKey.code(),
                    format!("unknown key `{}` in {place}", shown(name)),
                )
                .with_label(span, "unknown key")
                .with_help_opt(
                    did_you_mean_help(name, known.iter().copied()).or_else(|| {
                        Some(format!(
                            "known keys here: {}",
                            known
                                .iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    }),
                ),
            );
        }
    }

    /// Reports each required key missing from `table`.
    fn require(&mut self, table: &DeTable<'_>, keys: &[&str], span: Span, place: &str) {
        let known = [
            TOP_KEYS,
            PLAN_KEYS,
            GROUP_KEYS,
            TOPO_KEYS,
            PUSH_KEYS,
            SOURCE_KEYS,
            TARGET_KEYS,
        ];
        if keys.iter().all(|key| table.contains_key(*key)) {
            return;
        }
        for key in keys {
            // A misspelling of the key (`file = [...]`) is already reported as an unknown key
            // with "did you mean `files`?": saying the key is missing too would only repeat it.
            let misspelled = table.iter().any(|(k, _)| {
                let k: &str = k.get_ref();
                !known.iter().any(|list| list.contains(&k)) && did_you_mean(k, [*key]).is_some()
            });
            if !table.contains_key(*key) && !misspelled {
                self.push(
                    Problem::error(
                        ParseErrorKind::MissingKey.code(),
                        format!("{place} is missing `{key}`"),
                    )
                    .with_label(span, format!("`{key}` is required here")),
                );
            }
        }
    }

    fn wrong_type(&mut self, value: &Value<'_>, expected: &str, what: &str) {
        let span = self.span(value.span());
        let what = match what.strip_suffix("[]") {
            Some(key) => format!("each entry of `{key}`"),
            None => format!("`{what}`"),
        };
        self.push(
            Problem::error(
                ParseErrorKind::WrongType.code(),
                format!(
                    "{what} must be {expected}, found {}",
                    describe(value.get_ref())
                ),
            )
            .with_label(span, format!("expected {expected}")),
        );
    }

    fn string(&mut self, value: &Value<'_>, what: &str) -> Option<Located<String>> {
        match value.get_ref() {
            DeValue::String(s) => Some(Located {
                value: s.to_string(),
                span: self.span(value.span()),
            }),
            _ => {
                self.wrong_type(value, "a string", what);
                None
            }
        }
    }

    fn integer(&mut self, value: &Value<'_>, what: &str) -> Option<Located<i64>> {
        match value.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(Located {
                    value: n,
                    span: self.span(value.span()),
                }),
                Err(_) => {
                    let span = self.span(value.span());
                    self.push(
                        Problem::error(
                            ParseErrorKind::OutOfRange.code(),
                            format!("`{what}` is too large"),
                        )
                        .with_label(span, "does not fit in a 64-bit integer"),
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(value, "an integer", what);
                None
            }
        }
    }

    fn boolean(&mut self, value: &Value<'_>, what: &str) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(value, "a boolean (`true` or `false`)", what);
                None
            }
        }
    }

    /// An array of strings; wrong elements are reported and skipped.
    fn string_list(&mut self, value: &Value<'_>, what: &str) -> Option<Vec<Located<String>>> {
        match value.get_ref() {
            DeValue::Array(items) => {
                let mut strings = Vec::with_capacity(items.len());
                for item in items.iter() {
                    // The entry's description is only formatted for an error: lists are read
                    // for every host group and push.
                    match item.get_ref() {
                        DeValue::String(s) => strings.push(Located {
                            value: s.to_string(),
                            span: self.span(item.span()),
                        }),
                        _ => self.wrong_type(item, "a string", &format!("{what}[]")),
                    }
                }
                Some(strings)
            }
            _ => {
                self.wrong_type(value, "an array of strings", what);
                None
            }
        }
    }

    /// `bk_scope_id`: JOB's field is a string of digits; plans may write the integer.
    fn scope_id(&mut self, value: &Value<'_>) -> Option<Located<i64>> {
        match value.get_ref() {
            DeValue::String(s) => {
                let span = self.span(value.span());
                match s.parse::<i64>() {
                    Ok(id) if s.chars().all(|c| c.is_ascii_digit()) => {
                        Some(Located { value: id, span })
                    }
                    _ => {
                        self.push(
                            Problem::error(
                                ParseErrorKind::InvalidScope.code(),
                                format!(
                                    "`bk_scope_id` `{}` is not a business or business set id",
                                    shown(s)
                                ),
                            )
                            .with_label(span, "expected digits")
                            .with_help("write the id as an integer: `bk_scope_id = 9991001`"),
                        );
                        None
                    }
                }
            }
            _ => self.integer(value, "bk_scope_id"),
        }
    }

    /// An array of integers; wrong elements are reported and skipped.
    fn integer_list(&mut self, value: &Value<'_>, what: &str) -> Vec<Located<i64>> {
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(value, "an array of integers", what);
            return Vec::new();
        };
        let item_name = format!("{what}[]");
        items
            .iter()
            .filter_map(|item| match item.get_ref() {
                DeValue::Integer(_) => self.integer(item, what),
                _ => {
                    self.wrong_type(item, "an integer", &item_name);
                    None
                }
            })
            .collect()
    }

    /// Reads one file's top level.
    pub(crate) fn file(&mut self, root: &DeTable<'_>, kind: FileKind) -> RawFile {
        let mut raw = RawFile::default();
        for (key, value) in root.iter() {
            let name: &str = key.get_ref();
            if kind == FileKind::Include && !matches!(name, "hosts" | "vars") {
                if looks_like_credential(name) || !TOP_KEYS.contains(&name) {
                    self.unknown_key(key, &["hosts", "vars"], "an included file");
                } else {
                    let span = self.span(key.span());
                    self.push(
                        Problem::error(
                            ParseErrorKind::IncludeForbiddenKey.code(),
                            format!("`{name}` is not allowed in an included file"),
                        )
                        .with_label(span, "only [hosts] and [vars] may be here")
                        .with_help("move it to the plan file"),
                    );
                }
                continue;
            }
            match name {
                "version" => {
                    if let Some(v) = self.integer(value, "version")
                        && v.value != 1
                    {
                        self.push(
                            Problem::error(
                                ParseErrorKind::UnsupportedVersion.code(),
                                format!("unsupported format version {}", v.value),
                            )
                            .with_label(v.span, "only version 1 exists"),
                        );
                    }
                }
                "include" => raw.include = self.string_list(value, "include").unwrap_or_default(),
                "plan" => raw.plan = self.plan(value),
                "vars" => raw.vars = self.vars(value),
                "hosts" => raw.groups = self.hosts(value),
                "push" => raw.pushes = self.pushes(value),
                _ => self.unknown_key(key, TOP_KEYS, "the top level"),
            }
        }
        if kind == FileKind::Main {
            let start = self.span(0..0);
            // A misspelled `[[psuh]]` or `[paln]` is already reported with a "did you mean";
            // saying the table is missing as well would only repeat it, at line 1.
            let misspelled = |wanted: &str| {
                root.iter().any(|(key, _)| {
                    let key: &str = key.get_ref();
                    !TOP_KEYS.contains(&key)
                        && did_you_mean(key, TOP_KEYS.iter().copied()) == Some(wanted)
                })
            };
            if !root.contains_key("plan") && !misspelled("plan") {
                self.push(
                    Problem::error(
                        ParseErrorKind::MissingPlan.code(),
                        "the plan has no [plan] table",
                    )
                    .with_label(start, "expected [plan] in this file")
                    .with_help("add `[plan]` with at least `name` and `bk_biz_id`"),
                );
            }
            if !root.contains_key("push") && !misspelled("push") {
                self.push(
                    Problem::error(ParseErrorKind::NoPush.code(), "the plan has no [[push]]")
                        .with_label(start, "expected at least one [[push]] in this file")
                        .with_help("each [[push]] is one file distribution (one JOB call)"),
                );
            }
        }
        raw
    }

    fn table<'v, 'i>(&mut self, value: &'v Value<'i>, what: &str) -> Option<&'v DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(value, "a table", what);
                None
            }
        }
    }

    fn plan(&mut self, value: &Value<'_>) -> Option<RawPlan> {
        let table = self.table(value, "plan")?;
        let mut plan = RawPlan {
            span: self.span(value.span()),
            name: None,
            description: None,
            bk_biz_id: None,
            bk_scope_type: None,
            bk_scope_id: None,
            account: None,
            account_key: false,
            timeout: None,
            upload_speed_limit: None,
            download_speed_limit: None,
            api: None,
            task_prefix: None,
            callback_url: None,
        };
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "name" => plan.name = self.string(value, "name"),
                "description" => {
                    plan.description = self.string(value, "description").map(|s| s.value);
                }
                "bk_biz_id" => plan.bk_biz_id = self.integer(value, "bk_biz_id"),
                "bk_scope_type" => plan.bk_scope_type = self.string(value, "bk_scope_type"),
                "bk_scope_id" => plan.bk_scope_id = self.scope_id(value),
                "account" => {
                    plan.account_key = true;
                    plan.account = self.string(value, "account");
                }
                "timeout" => plan.timeout = self.integer(value, "timeout"),
                "upload_speed_limit" => {
                    plan.upload_speed_limit = self.integer(value, "upload_speed_limit");
                }
                "download_speed_limit" => {
                    plan.download_speed_limit = self.integer(value, "download_speed_limit");
                }
                "api" => {
                    if let Some(s) = self.string(value, "api") {
                        match s.value.as_str() {
                            "v2" => {
                                plan.api = Some(Located {
                                    value: ApiVersion::V2,
                                    span: s.span,
                                })
                            }
                            "v3" => {
                                plan.api = Some(Located {
                                    value: ApiVersion::V3,
                                    span: s.span,
                                })
                            }
                            other => self.push(
                                Problem::error(
                                    ParseErrorKind::InvalidApi.code(),
                                    format!("unknown api `{other}`"),
                                )
                                .with_label(s.span, "expected \"v2\" or \"v3\"")
                                .with_help(
                                    "\"v2\" uses fast_push_file, \"v3\" uses fast_transfer_file",
                                ),
                            ),
                        }
                    }
                }
                "task_prefix" => plan.task_prefix = self.string(value, "task_prefix"),
                "callback_url" => plan.callback_url = self.string(value, "callback_url"),
                _ => self.unknown_key(key, PLAN_KEYS, "[plan]"),
            }
        }
        // A scope is `bk_biz_id`, or `bk_scope_type` with `bk_scope_id` (checked together later).
        let scoped = table.contains_key("bk_scope_type") || table.contains_key("bk_scope_id");
        let required: &[&str] = if scoped {
            &["name"]
        } else {
            &["name", "bk_biz_id"]
        };
        self.require(table, required, plan.span, "[plan]");
        Some(plan)
    }

    fn vars(&mut self, value: &Value<'_>) -> Vec<(Located<String>, Located<String>)> {
        let Some(table) = self.table(value, "vars") else {
            return Vec::new();
        };
        let mut vars = Vec::new();
        for (key, value) in table.iter() {
            let name = Located {
                value: key.get_ref().to_string(),
                span: self.span(key.span()),
            };
            if looks_like_credential(&name.value) {
                self.push(
                    Problem::error(
                        ParseErrorKind::CredentialInPlan.code(),
                        format!(
                            "credentials are not accepted in a plan (`{}` in [vars])",
                            name.value
                        ),
                    )
                    .with_label(name.span, "remove this variable")
                    .with_help(CREDENTIALS_HELP),
                );
                continue;
            }
            if let Some(v) = self.string(value, &format!("vars.{}", name.value)) {
                vars.push((name, v));
            }
        }
        vars
    }

    fn hosts(&mut self, value: &Value<'_>) -> Vec<RawGroup> {
        let Some(table) = self.table(value, "hosts") else {
            return Vec::new();
        };
        // Sized once: growing a vector of thousands of groups (or pushes below) copies it
        // each time and frees blocks large enough to make the allocator consolidate.
        let mut groups = Vec::with_capacity(table.len());
        for (key, value) in table.iter() {
            let name = Located {
                value: key.get_ref().to_string(),
                span: self.span(key.span()),
            };
            let Some(body) = (match value.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => {
                    self.wrong_type(value, "a table", &format!("hosts.{}", name.value));
                    None
                }
            }) else {
                continue;
            };
            let mut group = RawGroup {
                name,
                ips: Vec::new(),
                host_ids: Vec::new(),
                dynamic_groups: Vec::new(),
                topo_nodes: Vec::new(),
                groups: Vec::new(),
                had_errors: false,
            };
            let before = self.problems.len();
            for (key, value) in body.iter() {
                match key.get_ref().as_ref() {
                    "ips" => group.ips = self.string_list(value, "ips").unwrap_or_default(),
                    "host_ids" => group.host_ids = self.integer_list(value, "host_ids"),
                    "dynamic_groups" => {
                        group.dynamic_groups = self
                            .string_list(value, "dynamic_groups")
                            .unwrap_or_default();
                    }
                    "groups" => {
                        group.groups = self.string_list(value, "groups").unwrap_or_default();
                    }
                    "topo_nodes" => group.topo_nodes = self.topo_nodes(value),
                    sub if matches!(value.get_ref(), DeValue::Table(_))
                        && did_you_mean(sub, GROUP_KEYS.iter().copied()).is_none()
                        && !looks_like_credential(sub) =>
                    {
                        // `[hosts.web.prod]` nests a table `prod` in group `web`; the user
                        // meant a group named `web.prod`.
                        let what = format!("hosts.{}", group.name.value);
                        let full = format!("{}.{sub}", group.name.value);
                        let span = self.span(key.span());
                        self.push(
                            Problem::error(
                                ParseErrorKind::UnknownKey.code(),
                                format!("unknown key `{sub}` in [{what}]"),
                            )
                            .with_label(span, "a dot in a table name nests tables")
                            .with_help(format!(
                                "for a group named `{full}`, quote the name: [hosts.\"{full}\"]"
                            )),
                        );
                    }
                    _ => {
                        let place = format!("[hosts.{}]", group.name.value);
                        self.unknown_key(key, GROUP_KEYS, &place);
                    }
                }
            }
            group.had_errors = self.problems.len() > before;
            groups.push(group);
        }
        groups
    }

    fn topo_nodes(&mut self, value: &Value<'_>) -> Vec<Located<TopoNode>> {
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(value, "an array", "topo_nodes");
            return Vec::new();
        };
        let mut nodes = Vec::new();
        for item in items.iter() {
            let span = self.span(item.span());
            match item.get_ref() {
                DeValue::String(s) => match parse_topo_node(s) {
                    Ok(node) => nodes.push(Located { value: node, span }),
                    Err(why) => self.push(
                        Problem::error(
                            ParseErrorKind::InvalidTopoNode.code(),
                            format!("invalid topology node `{s}`"),
                        )
                        .with_label(span, why)
                        .with_help("write `node_type:id`, e.g. \"module:1000\" or \"set:7\""),
                    ),
                },
                DeValue::Table(t) => {
                    let mut node_type = None;
                    let mut id = None;
                    for (key, value) in t.iter() {
                        match key.get_ref().as_ref() {
                            "node_type" => node_type = self.string(value, "node_type"),
                            "id" => id = self.integer(value, "id"),
                            _ => self.unknown_key(key, TOPO_KEYS, "a topology node"),
                        }
                    }
                    match (node_type, id) {
                        (Some(t), Some(id)) => {
                            if let Err(why) = check_node_type(&t.value) {
                                self.push(
                                    Problem::error(
                                        ParseErrorKind::InvalidTopoNode.code(),
                                        format!("invalid topology node type `{}`", t.value),
                                    )
                                    .with_label(t.span, why),
                                );
                            } else if id.value < 0 {
                                self.push(
                                    Problem::error(
                                        ParseErrorKind::InvalidTopoNode.code(),
                                        "a topology node id must be >= 0",
                                    )
                                    .with_label(id.span, "negative id"),
                                );
                            } else {
                                nodes.push(Located {
                                    value: TopoNode {
                                        node_type: t.value,
                                        id: id.value,
                                    },
                                    span,
                                });
                            }
                        }
                        (t, id) => {
                            let missing = match (t.is_none(), id.is_none()) {
                                (true, true) => "`node_type` and `id`",
                                (true, false) => "`node_type`",
                                _ => "`id`",
                            };
                            self.push(
                                Problem::error(
                                    ParseErrorKind::MissingKey.code(),
                                    format!("topology node is missing {missing}"),
                                )
                                .with_label(span, "in this table"),
                            );
                        }
                    }
                }
                _ => self.wrong_type(item, "a string or a table", "topo_nodes[]"),
            }
        }
        nodes
    }

    fn pushes(&mut self, value: &Value<'_>) -> Vec<RawPush> {
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(value, "an array of tables (`[[push]]`)", "push");
            return Vec::new();
        };
        if items.is_empty() {
            // `push = []` is the array of tables written inline, with nothing in it.
            let span = self.span(value.span());
            self.push(
                Problem::error(ParseErrorKind::NoPush.code(), "the plan has no [[push]]")
                    .with_label(span, "an empty list of pushes")
                    .with_help("each [[push]] is one file distribution (one JOB call)"),
            );
            return Vec::new();
        }
        let mut pushes = Vec::with_capacity(items.len());
        for item in items.iter() {
            let Some(table) = self.table(item, "push") else {
                continue;
            };
            let mut push = RawPush {
                span: self.span(item.span()),
                name: None,
                sources: None,
                target: None,
                after: Vec::new(),
                timeout: None,
                upload_speed_limit: None,
                download_speed_limit: None,
                transfer_mode: None,
                transfer_mode_key: None,
                retries: None,
                enabled: None,
                release: crate::release::RawRelease::default(),
            };
            for (key, value) in table.iter() {
                match key.get_ref().as_ref() {
                    "name" => push.name = self.string(value, "name"),
                    "from" => push.sources = self.sources(value),
                    "to" => push.target = self.target(value),
                    "after" => push.after = self.string_list(value, "after").unwrap_or_default(),
                    "timeout" => push.timeout = self.integer(value, "timeout"),
                    "upload_speed_limit" => {
                        push.upload_speed_limit = self.integer(value, "upload_speed_limit");
                    }
                    "download_speed_limit" => {
                        push.download_speed_limit = self.integer(value, "download_speed_limit");
                    }
                    "retries" => push.retries = self.integer(value, "retries"),
                    "enabled" => push.enabled = self.boolean(value, "enabled"),
                    "transfer_mode" => {
                        push.transfer_mode_key = Some(self.span(key.span()));
                        if let Some(s) = self.string(value, "transfer_mode") {
                            match s.value.as_str() {
                                "force" => {
                                    push.transfer_mode = Some(Located {
                                        value: TransferMode::Force,
                                        span: s.span,
                                    });
                                }
                                "strict" => {
                                    push.transfer_mode = Some(Located {
                                        value: TransferMode::Strict,
                                        span: s.span,
                                    });
                                }
                                other => self.push(
                                    Problem::error(
                                        ParseErrorKind::InvalidTransferMode.code(),
                                        format!(
                                            "unknown transfer mode `{other}`: expected \"force\" or \"strict\""
                                        ),
                                    )
                                    .with_label(s.span, "unknown mode")
                                    .with_help_opt(did_you_mean_help(other, ["force", "strict"])),
                                ),
                            }
                        }
                    }
                    other if self.release_key(other, value, &mut push.release) => {}
                    _ => self.unknown_key(key, PUSH_KEYS, "[[push]]"),
                }
            }
            const REQUIRED: [&str; 3] = ["name", "from", "to"];
            if !REQUIRED.iter().all(|key| table.contains_key(*key)) {
                let place = match &push.name {
                    Some(name) => format!("push `{}`", name.value),
                    None => "[[push]]".to_owned(),
                };
                self.require(table, &REQUIRED, push.span, &place);
            }
            pushes.push(push);
        }
        pushes
    }

    fn hosts_value(&mut self, value: &Value<'_>) -> Option<RawHosts> {
        let span = self.span(value.span());
        match value.get_ref() {
            DeValue::String(s) => Some(RawHosts {
                names: vec![Located {
                    value: s.to_string(),
                    span,
                }],
                span,
            }),
            DeValue::Array(_) => Some(RawHosts {
                names: self.string_list(value, "hosts")?,
                span,
            }),
            _ => {
                self.wrong_type(
                    value,
                    "a group name, a host string or an array of them",
                    "hosts",
                );
                None
            }
        }
    }

    fn sources(&mut self, value: &Value<'_>) -> Option<Vec<RawSource>> {
        match value.get_ref() {
            DeValue::Table(t) => Some(vec![self.source(t, self.span(value.span()))]),
            DeValue::Array(items) => {
                if items.is_empty() {
                    let span = self.span(value.span());
                    self.push(
                        Problem::error(ParseErrorKind::EmptyFrom.code(), "`from` lists no source")
                            .with_label(span, "empty array")
                            .with_help("add a table such as `{ hosts = \"build\", files = [\"/data/app.tar.gz\"] }`"),
                    );
                    return None;
                }
                let mut sources = Vec::new();
                for item in items.iter() {
                    if let Some(t) = self.table(item, "from[]") {
                        sources.push(self.source(t, self.span(item.span())));
                    }
                }
                Some(sources)
            }
            _ => {
                self.wrong_type(value, "a table or an array of tables", "from");
                None
            }
        }
    }

    fn source(&mut self, table: &DeTable<'_>, span: Span) -> RawSource {
        let mut source = RawSource {
            span,
            hosts: None,
            files: None,
            account: None,
            account_key: false,
            account_id: None,
            file_source: None,
            file_source_id: None,
            file_source_key: None,
        };
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "hosts" => source.hosts = self.hosts_value(value),
                "account_id" => source.account_id = self.integer(value, "account_id"),
                "file_source" => {
                    source.file_source_key.get_or_insert(self.span(key.span()));
                    source.file_source = self.string(value, "file_source");
                }
                "file_source_id" => {
                    source.file_source_key.get_or_insert(self.span(key.span()));
                    source.file_source_id = self.integer(value, "file_source_id");
                }
                "files" => {
                    source.files = self.string_list(value, "files");
                    if source.files.as_ref().is_some_and(Vec::is_empty) {
                        let span = self.span(value.span());
                        self.push(
                            Problem::error(ParseErrorKind::EmptyFiles.code(), "`files` is empty")
                                .with_label(span, "list at least one file or directory"),
                        );
                    }
                }
                "account" => {
                    source.account_key = true;
                    source.account = self.string(value, "account");
                }
                _ => self.unknown_key(key, SOURCE_KEYS, "`from`"),
            }
        }
        // A file source stands in for `hosts`.
        let from_file_source =
            table.contains_key("file_source") || table.contains_key("file_source_id");
        let required: &[&str] = if from_file_source {
            &["files"]
        } else {
            &["hosts", "files"]
        };
        self.require(table, required, span, "`from`");
        source
    }

    fn target(&mut self, value: &Value<'_>) -> Option<RawTarget> {
        let table = self.table(value, "to")?;
        let mut target = RawTarget {
            span: self.span(value.span()),
            hosts: None,
            path: None,
            account: None,
            account_key: false,
            account_id: None,
            file_target_name: None,
        };
        for (key, value) in table.iter() {
            match key.get_ref().as_ref() {
                "hosts" => target.hosts = self.hosts_value(value),
                "account_id" => target.account_id = self.integer(value, "account_id"),
                "file_target_name" => {
                    target.file_target_name = self.string(value, "file_target_name");
                }
                "path" => target.path = self.string(value, "path"),
                "account" => {
                    target.account_key = true;
                    target.account = self.string(value, "account");
                }
                _ => self.unknown_key(key, TARGET_KEYS, "`to`"),
            }
        }
        self.require(table, &["hosts", "path"], target.span, "`to`");
        Some(target)
    }
}

fn check_node_type(node_type: &str) -> Result<(), &'static str> {
    if node_type.is_empty() {
        Err("the node type is empty")
    } else if !node_type
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Err("a node type is a CMDB object id such as `module` or `set`")
    } else {
        Ok(())
    }
}

/// Parses `"node_type:id"`.
fn parse_topo_node(s: &str) -> Result<TopoNode, &'static str> {
    let Some((node_type, id)) = s.split_once(':') else {
        return Err("missing `:` between node type and id");
    };
    check_node_type(node_type)?;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err("the id after `:` must be an integer >= 0");
    }
    let id = id.parse::<i64>().map_err(|_| "the id is too large")?;
    Ok(TopoNode {
        node_type: node_type.to_owned(),
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(list: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        v.sort();
        v
    }

    /// The schema editors use (generated from the types in `schema.rs`) and the keys the
    /// parser accepts are the same: a key added to one and not the other fails here.
    #[test]
    fn json_schema_matches_the_known_keys() {
        use crate::schema::keys_at;
        let schema = crate::schema::plan_schema();
        for (path, known) in [
            (&[][..], TOP_KEYS),
            (&["plan"][..], PLAN_KEYS),
            (&["hosts", "*"][..], GROUP_KEYS),
            (&["hosts", "*", "topo_nodes", "[]"][..], TOPO_KEYS),
            (&["push", "[]"][..], PUSH_KEYS),
            (&["push", "[]", "from"][..], SOURCE_KEYS),
            (&["push", "[]", "from", "[]"][..], SOURCE_KEYS),
            (&["push", "[]", "to"][..], TARGET_KEYS),
        ] {
            assert_eq!(keys_at(&schema, path), sorted(known), "at {path:?}");
        }
        let include = crate::schema::include_schema();
        assert_eq!(keys_at(&include, &[]), ["hosts", "vars"]);
        assert_eq!(
            keys_at(&include, &["hosts", "*"]),
            keys_at(&schema, &["hosts", "*"])
        );
    }

    #[test]
    fn credential_keys() {
        for key in [
            "bk_app_secret",
            "BK_APP_CODE",
            "bk_token",
            "bk_username",
            "access_token",
            "my_api_key",
            "db_password",
            "bk_ticket",
            "authorization",
            "access_key",
            "aws_secret_access_key",
            "session_cookie",
        ] {
            assert!(looks_like_credential(key), "{key}");
        }
        for key in [
            "account",
            "timeout",
            "name",
            "files",
            "tokens_dir_is_not_a_key",
        ] {
            // `tokens_dir...` contains "token": deliberately treated as a credential.
            assert_eq!(looks_like_credential(key), key.contains("token"), "{key}");
        }
    }

    #[test]
    fn did_you_mean_finds_close_keys_only() {
        assert_eq!(
            did_you_mean("timout", PUSH_KEYS.iter().copied()),
            Some("timeout")
        );
        assert_eq!(
            did_you_mean("acount", PLAN_KEYS.iter().copied()),
            Some("account")
        );
        assert_eq!(did_you_mean("zzz", PUSH_KEYS.iter().copied()), None);
    }
}
