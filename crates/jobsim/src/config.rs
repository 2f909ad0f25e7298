//! `ROOT/jobsim.toml`: the world around the sandbox hosts (see the crate README for the
//! full reference). Every section is optional; an absent file means "accept everything".

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The parsed `jobsim.toml`. `Config::default()` is what an absent file means.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Timing, limits and behaviour switches.
    #[serde(default)]
    pub sim: SimSettings,
    /// Businesses. When empty, every `bk_biz_id >= 1` exists and holds every host.
    #[serde(default, rename = "business")]
    pub businesses: Vec<Business>,
    /// Per-host facts (pinned host ids, agent state, missing OS accounts).
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostConfig>,
    /// Registered apps. When empty, any non-empty app code and secret is accepted and every
    /// app may use `bk_username` (on loopback; a non-loopback address requires apps).
    #[serde(default, rename = "app")]
    pub apps: Vec<App>,
    /// Injected faults on API calls, applied in order.
    #[serde(default, rename = "fault")]
    pub faults: Vec<FaultRule>,
    /// Third-party file sources (`file_type = 3`), their files under
    /// `ROOT/file_sources/<code>/`.
    #[serde(default, rename = "file_source")]
    pub file_sources: Vec<FileSourceConfig>,
    /// Saved job plans, each what `get_job_plan_detail` returns in `data` (`plan import`).
    #[serde(default, rename = "job_plan")]
    pub job_plans: Vec<plan_bkjob::job_plan::JobPlanDetail>,
}

/// `[[file_source]]`: a JOB third-party file source (bkrepo, COS, Artifactory).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// `file_source_id`.
    pub id: u64,
    /// `file_source_code`: one plain name, the directory `ROOT/file_sources/<code>/`.
    pub code: String,
    /// The business (`bk_biz_id` / `bk_scope_id`) it belongs to.
    pub business: u64,
}

/// `[sim]`: timings and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimSettings {
    /// Delay between submission (status 1) and START (job 2, hosts 5), in ms.
    pub start_delay_ms: u64,
    /// Delay between a host entering 5 (waiting) and 7 (running), in ms.
    pub host_wait_ms: u64,
    /// Delay between a terminate request (job 10) and the job reaching 11, in ms.
    pub stop_delay_ms: u64,
    /// Platform speed cap in MB/s applied on top of the request's limits; 0 = none.
    pub speed_mb: u64,
    /// `job.execute.limit.file-task.max-tasks`.
    pub file_task_limit: u64,
    /// The largest accepted `timeout` in seconds.
    pub max_timeout: u64,
    /// Callback transport: `"json-then-form"` (3.11+, default) or `"form"` (<= 3.10).
    pub callback_mode: String,
    /// If non-empty, callback URLs must start with one of these base URLs.
    pub callback_whitelist: Vec<String>,
    /// Language of default job names: `"en"` (default) or `"zh"`.
    pub language: String,
    /// Seed for `rate` faults.
    pub seed: u64,
    /// Running-job quota: new jobs get `1244032` while this many are unfinished; 0 = off.
    pub max_running_jobs: usize,
    /// Behave like JOB before 3.12: `start_task=false` is ignored (every job starts at
    /// creation) and `operate_job_instance` code 2 answers `1241015` (false).
    pub ignore_start_task: bool,
    /// Finished jobs kept queryable; beyond it the oldest finished ones are archived (queries
    /// answer `1244006`, as JOB's `job-backup` does to old jobs). 0 = keep every job.
    pub keep_jobs: usize,
    /// JOB's `bkBizIdCompatible` switch (on by default): a submission may name its scope by
    /// `bk_biz_id` alone. Off, only `bk_scope_type` + `bk_scope_id` do.
    pub bk_biz_id_compatible: bool,
    /// Largest request body accepted, in bytes; a larger one is answered 413 and not kept.
    /// JOB's API gateway allows 40 MB; the default, 1 MiB, holds a submission to some 25,000
    /// hosts by IP (130,000 by host id) and keeps the simulator's memory small.
    pub max_body_bytes: usize,
    /// Bytes of JSON the request log keeps in memory, and per generation of
    /// `.jobsim/requests.jsonl` (rotated to `requests.jsonl.1`).
    pub request_log_bytes: usize,
}

impl Default for SimSettings {
    fn default() -> Self {
        Self {
            start_delay_ms: 200,
            host_wait_ms: 100,
            stop_delay_ms: 100,
            speed_mb: 0,
            file_task_limit: 100_000,
            max_timeout: 259_200,
            callback_mode: "json-then-form".into(),
            callback_whitelist: Vec::new(),
            language: "en".into(),
            seed: 0,
            max_running_jobs: 0,
            ignore_start_task: false,
            keep_jobs: 0,
            bk_biz_id_compatible: true,
            max_body_bytes: 1024 * 1024,
            request_log_bytes: 32 * 1024 * 1024,
        }
    }
}

/// `[[business]]`: one CMDB business (or business set, for ids 8000000-9999999).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Business {
    /// `bk_biz_id` / `bk_scope_id`.
    pub id: u64,
    /// Display name used in `1244002` messages.
    #[serde(default)]
    pub name: Option<String>,
    /// `"cloud:ip"` or `"ip"` strings. Absent = every sandbox host is in the business.
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
    /// OS accounts. Absent = any alias is accepted (and any id, named after its alias).
    #[serde(default)]
    pub accounts: Option<Vec<Account>>,
    /// Dynamic group id -> host strings.
    #[serde(default)]
    pub dynamic_groups: BTreeMap<String, Vec<String>>,
    /// Topology nodes and their hosts.
    #[serde(default)]
    pub topo_nodes: Vec<TopoNode>,
}

/// An OS account of a business.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// `account_id`.
    pub id: u64,
    /// The alias clients name (v2 `account`, v3 `account_alias`).
    pub alias: String,
    /// The OS user name; defaults to the alias.
    #[serde(default)]
    pub name: Option<String>,
}

/// A CMDB topology node (`bk_obj_id` + `bk_inst_id`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopoNode {
    /// `node_type`, e.g. `module`.
    pub node_type: String,
    /// `id` (bk_inst_id).
    pub id: i64,
    /// Host strings.
    #[serde(default)]
    pub hosts: Vec<String>,
}

/// `[[host]]`: facts about one sandbox host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// `"cloud:ip"` or `"ip"` (cloud 0).
    pub host: String,
    /// Pinned `bk_host_id`.
    #[serde(default)]
    pub host_id: Option<u64>,
    /// `"alive"` (default), `"down"` (GSE 117 -> host 310) or `"not_installed"` (host 18).
    #[serde(default)]
    pub agent: Option<String>,
    /// Account aliases that do not exist on this host (GSE 122 -> host 311).
    #[serde(default)]
    pub missing_accounts: Vec<String>,
    /// A job touching this host as a target never finishes on it (until terminate/timeout).
    #[serde(default)]
    pub stuck: bool,
    /// GSE never reports on this host, not even its own timeout: JOB's safety net ends it
    /// as 15 (LOG_ERROR) five minutes after the job's timeout.
    #[serde(default)]
    pub silent: bool,
    /// The agent is abnormal (310 / GSE 117) for the first N jobs that target this host,
    /// then healthy: a transient failure that a retry gets past.
    #[serde(default)]
    pub flaky_jobs: u64,
    /// Every file delivered to this host arrives altered (its middle byte inverted, its size
    /// kept) while JOB still reports the transfer a success: what delivery verification
    /// exists to catch.
    #[serde(default)]
    pub corrupt_deliveries: bool,
}

/// `[[app]]`: a registered app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// `bk_app_code`.
    pub code: String,
    /// `bk_app_secret`.
    pub secret: String,
    /// Whether the app may authenticate the user with a bare `bk_username`.
    #[serde(default = "yes")]
    pub allow_username: bool,
    /// Gateway resources (API names) the app was granted; absent = all.
    #[serde(default)]
    pub gateway_apis: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

/// `[[fault]]`: an injected failure on matching API calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// API name (`fast_push_file`, `get_job_instance_status`, ...) or `"*"`.
    #[serde(default = "star")]
    pub api: String,
    /// What happens (see [`FaultKind`]); a kind the simulator does not know is an error.
    pub kind: FaultKind,
    /// Affect the next `count` matching calls.
    #[serde(default)]
    pub count: Option<u64>,
    /// Or affect each matching call with this probability (seeded by `[sim] seed`).
    #[serde(default)]
    pub rate: Option<f64>,
    /// For `slow`.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// For `job_error`: the JOB code to answer with (default 1240002).
    #[serde(default)]
    pub code: Option<i64>,
}

fn star() -> String {
    "*".into()
}

impl FaultRule {
    /// A fault of `kind` on the next `count` calls to `api` (`"*"` for any API).
    pub fn next(api: &str, kind: FaultKind, count: u64) -> Self {
        Self {
            api: api.into(),
            kind,
            count: Some(count),
            rate: None,
            delay_ms: None,
            code: None,
        }
    }
}

/// What an injected fault does to a call, spelled in `jobsim.toml` and the request log as
/// [`FaultKind::as_str`] gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum FaultKind {
    /// `drop`: the connection is closed without an answer; the call is not processed.
    Drop,
    /// `slow`: processed, then answered after `delay_ms` (default 2000).
    Slow,
    /// `drop_after`: processed (a submission creates its job), then closed without an answer.
    DropAfter,
    /// `http_500`: the front door's 500; not processed.
    Http500,
    /// `http_502`: the front door's 502; not processed.
    Http502,
    /// `http_503`: the front door's 503; not processed.
    Http503,
    /// `http_504`: processed, then the front door's 504 (nginx's page in front of ESB).
    Http504,
    /// `http_429`: the gateway's 429 with rate-limit headers, or ESB's `1306429` at HTTP 200.
    Http429,
    /// `http_429_bare`: the gateway's 429 without rate-limit headers (ESB as `http_429`).
    Http429Bare,
    /// `esb_1306429`: ESB's rate-limit answer `1306429` at HTTP 200, on either front door.
    Esb1306429,
    /// `job_error`: JOB answers the error `code` (default 1240002); not processed.
    JobError,
    /// `stuck`: the submitted job never finishes until terminated or timed out.
    Stuck,
    /// `start_lost`: a START is answered as accepted, but the job stays in status 1.
    StartLost,
    /// `malformed`: processed, then HTTP 200 with half of the JSON body.
    Malformed,
}

impl FaultKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [FaultKind; 14] = [
        FaultKind::Drop,
        FaultKind::Slow,
        FaultKind::DropAfter,
        FaultKind::Http500,
        FaultKind::Http502,
        FaultKind::Http503,
        FaultKind::Http504,
        FaultKind::Http429,
        FaultKind::Http429Bare,
        FaultKind::Esb1306429,
        FaultKind::JobError,
        FaultKind::Stuck,
        FaultKind::StartLost,
        FaultKind::Malformed,
    ];

    /// The name in `jobsim.toml` and in the request log.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Drop => "drop",
            FaultKind::Slow => "slow",
            FaultKind::DropAfter => "drop_after",
            FaultKind::Http500 => "http_500",
            FaultKind::Http502 => "http_502",
            FaultKind::Http503 => "http_503",
            FaultKind::Http504 => "http_504",
            FaultKind::Http429 => "http_429",
            FaultKind::Http429Bare => "http_429_bare",
            FaultKind::Esb1306429 => "esb_1306429",
            FaultKind::JobError => "job_error",
            FaultKind::Stuck => "stuck",
            FaultKind::StartLost => "start_lost",
            FaultKind::Malformed => "malformed",
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<FaultKind> for &'static str {
    fn from(kind: FaultKind) -> Self {
        kind.as_str()
    }
}

/// A fault kind the simulator does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault kind `{name}`; the kinds are {}", known_kinds())]
pub struct UnknownFaultKind {
    /// The name as given.
    pub name: String,
}

fn known_kinds() -> String {
    let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.as_str()).collect();
    names.join(", ")
}

impl std::str::FromStr for FaultKind {
    type Err = UnknownFaultKind;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| UnknownFaultKind { name: name.into() })
    }
}

impl TryFrom<String> for FaultKind {
    type Error = UnknownFaultKind;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

impl Config {
    /// Parses a `jobsim.toml` text.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let config: Self = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        // A code names a directory of the sandbox: one plain name, never a path out of it.
        if let Some(bad) = config
            .file_sources
            .iter()
            .find(|s| !crate::hostfs::is_plain_name(&s.code))
        {
            return Err(Error::Config(format!(
                "[[file_source]] code `{}` must be one plain name (it is the directory file_sources/<code>/)",
                bad.code
            )));
        }
        Ok(config)
    }

    /// Loads `ROOT/jobsim.toml`, or the default when the file does not exist.
    pub fn load(root: &Path) -> Result<Self, Error> {
        let path = root.join("jobsim.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_toml(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::Io(format!("{}: {e}", path.display()))),
        }
    }
}
