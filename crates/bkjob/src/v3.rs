//! v3 (`jobv3/` on ESB, `/api/v3/` on the API gateway): `fast_transfer_file`,
//! `get_job_instance_status`, `batch_get_job_instance_ip_log`, `get_job_instance_list`.

use serde::{Deserialize, Serialize};

use crate::common::{DynamicGroup, IpHost, TopoNodeRef};
use crate::lenient::{null_default, positive_id};
use crate::status::{FileMode, FileStatus, HostStatus, RunStatus};

/// The v3 `server` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerV3 {
    /// CMDB host ids (`bk_host_id`); JOB ignores `ip_list` when this is non-empty.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub host_id_list: Vec<i64>,
    /// Static hosts.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_list: Vec<IpHost>,
    /// Dynamic groups.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dynamic_group_list: Vec<DynamicGroup>,
    /// Topology nodes.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub topo_node_list: Vec<TopoNodeRef>,
}

/// `file_source.account`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountV3 {
    /// Account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Account alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

impl AccountV3 {
    /// Neither an id nor an alias (a file-source source, which takes no account).
    pub fn is_empty(&self) -> bool {
        self.id.is_none() && self.alias.is_none()
    }
}

impl ServerV3 {
    /// No selector at all (a file-source source, which has no hosts).
    pub fn is_empty(&self) -> bool {
        self.host_id_list.is_empty()
            && self.ip_list.is_empty()
            && self.dynamic_group_list.is_empty()
            && self.topo_node_list.is_empty()
    }
}

/// One entry of `file_source_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSourceV3 {
    /// Absolute paths on the source hosts.
    #[serde(default, deserialize_with = "null_default")]
    pub file_list: Vec<String>,
    /// [`file_type`](crate::file_type): 1 server file (the default when absent), 3 third-party file source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_type: Option<i32>,
    /// Source account (server files only; left out when empty).
    #[serde(default, skip_serializing_if = "AccountV3::is_empty")]
    pub account: AccountV3,
    /// Source hosts (server files only; left out when empty).
    #[serde(default, skip_serializing_if = "ServerV3::is_empty")]
    pub server: ServerV3,
    /// The third-party file source's id (`file_type` 3; the id or the code is required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_source_id: Option<i64>,
    /// The third-party file source's code, resolved to its id by JOB (`file_type` 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_source_code: Option<String>,
}

/// `file_source_list[].file_type` values (JOB's `TaskFileTypeEnum`).
pub mod file_type {
    /// A file on the source hosts (the default when `file_type` is absent).
    pub const SERVER: i32 = 1;
    /// A file of a third-party file source (bkrepo, COS, Artifactory, ...): `file_list`
    /// entries are paths inside the source (`bucket/path`), no `server` or `account`.
    pub const FILE_SOURCE: i32 = 3;
}

/// `fast_transfer_file` request body (credentials are never part of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FastTransferFileRequest {
    /// `biz` or `biz_set`.
    pub bk_scope_type: String,
    /// The business (set) id as a string.
    pub bk_scope_id: String,
    /// Job name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_name: Option<String>,
    /// Target account id (wins over the alias when > 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<i64>,
    /// Target account alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_alias: Option<String>,
    /// Target directory.
    pub file_target_path: String,
    /// Rename at the target (single-file sources only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_target_name: Option<String>,
    /// Sources.
    pub file_source_list: Vec<FileSourceV3>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// MB/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_speed_limit: Option<u32>,
    /// MB/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_speed_limit: Option<u32>,
    /// 1 = strict, 2 = force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_mode: Option<i32>,
    /// Target hosts.
    pub target_server: ServerV3,
    /// Called when the job reaches a final status (v2's name is `bk_callback_url`): JOB POSTs
    /// `{job_instance_id, status, step_instances: [{step_instance_id, status}]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// Rolling execution: the targets (or source files) in batches, see
    /// [`rolling`](crate::rolling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_config: Option<crate::rolling::RollingConfigV3>,
    /// `false` creates the job without starting it (two-phase submission, JOB 3.12+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_task: Option<bool>,
}

/// `data` of v3 `get_job_instance_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInstanceStatusV3 {
    /// The job status is in the finished set.
    #[serde(default, deserialize_with = "null_default")]
    pub finished: bool,
    /// The job.
    #[serde(default)]
    pub job_instance: Option<JobInstanceV3>,
    /// The steps.
    #[serde(default, deserialize_with = "null_default")]
    pub step_instance_list: Vec<StepInstanceStatusV3>,
}

/// v3 `job_instance`. Times are epoch milliseconds; `total_time` is milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInstanceV3 {
    /// Id.
    #[serde(deserialize_with = "positive_id")]
    pub job_instance_id: i64,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Job status.
    pub status: RunStatus,
    /// Creation time.
    #[serde(default)]
    pub create_time: Option<i64>,
    /// Start time.
    #[serde(default)]
    pub start_time: Option<i64>,
    /// End time.
    #[serde(default)]
    pub end_time: Option<i64>,
    /// Milliseconds.
    #[serde(default)]
    pub total_time: Option<i64>,
    /// Business.
    #[serde(default)]
    pub bk_biz_id: Option<i64>,
    /// Scope type.
    #[serde(default)]
    pub bk_scope_type: Option<String>,
    /// Scope id.
    #[serde(default)]
    pub bk_scope_id: Option<String>,
}

/// v3 step status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepInstanceStatusV3 {
    /// Id.
    #[serde(deserialize_with = "positive_id")]
    pub step_instance_id: i64,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// 2 = file.
    #[serde(default, rename = "type")]
    pub step_type: Option<i32>,
    /// Step status.
    pub status: RunStatus,
    /// Execution counter.
    #[serde(default)]
    pub execute_count: Option<i32>,
    /// Creation time.
    #[serde(default)]
    pub create_time: Option<i64>,
    /// Start time.
    #[serde(default)]
    pub start_time: Option<i64>,
    /// End time.
    #[serde(default)]
    pub end_time: Option<i64>,
    /// Milliseconds.
    #[serde(default)]
    pub total_time: Option<i64>,
    /// Target hosts, only with `return_ip_result=true` (null otherwise).
    #[serde(default)]
    pub step_ip_result_list: Option<Vec<StepIpResultV3>>,
}

/// v3 per-host result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepIpResultV3 {
    /// CMDB host id.
    #[serde(default)]
    pub bk_host_id: Option<i64>,
    /// IPv4 address (empty for an IPv6-only host).
    #[serde(default, deserialize_with = "null_default")]
    pub ip: String,
    /// IPv6 address, when the host has one (JOB 3.8+).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6: String,
    /// BK-Net.
    #[serde(default, deserialize_with = "null_default")]
    pub bk_cloud_id: i64,
    /// Host status.
    pub status: HostStatus,
    /// Script tag (null for files).
    #[serde(default)]
    pub tag: Option<String>,
    /// Script exit code (null for files).
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Raw GSE code.
    #[serde(default)]
    pub error_code: Option<i64>,
    /// Start time (ms).
    #[serde(default)]
    pub start_time: Option<i64>,
    /// End time (ms).
    #[serde(default)]
    pub end_time: Option<i64>,
    /// Milliseconds.
    #[serde(default)]
    pub total_time: Option<i64>,
}

/// `batch_get_job_instance_ip_log` request body (at most 500 hosts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchIpLogRequest {
    /// Scope type.
    pub bk_scope_type: String,
    /// Scope id.
    pub bk_scope_id: String,
    /// Job.
    pub job_instance_id: i64,
    /// Step.
    pub step_instance_id: i64,
    /// Host ids (win over `ip_list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id_list: Option<Vec<i64>>,
    /// Hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_list: Option<Vec<IpHost>>,
}

/// `data` of `batch_get_job_instance_ip_log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchIpLogV3 {
    /// Job.
    #[serde(default)]
    pub job_instance_id: Option<i64>,
    /// Step.
    #[serde(default)]
    pub step_instance_id: Option<i64>,
    /// 2 = file.
    #[serde(default)]
    pub log_type: Option<i32>,
    /// One entry per requested host of a script step (null for file steps).
    #[serde(default, deserialize_with = "null_default")]
    pub script_task_logs: Vec<ScriptTaskLogV3>,
    /// One entry per requested host of a file step.
    #[serde(default, deserialize_with = "null_default")]
    pub file_task_logs: Vec<FileTaskLogV3>,
}

/// One host's file logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileTaskLogV3 {
    /// CMDB host id.
    #[serde(default)]
    pub bk_host_id: Option<i64>,
    /// BK-Net.
    #[serde(default, deserialize_with = "null_default")]
    pub bk_cloud_id: i64,
    /// IPv4 address (empty for an IPv6-only host).
    #[serde(default, deserialize_with = "null_default")]
    pub ip: String,
    /// IPv6 address, when the host has one.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6: String,
    /// Per-file entries.
    #[serde(default, deserialize_with = "null_default")]
    pub file_logs: Vec<FileLogV3>,
}

/// One file's log entry (`mode` 0 upload, 1 download).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileLogV3 {
    /// 0 upload (source side), 1 download (target side).
    #[serde(default, deserialize_with = "null_default")]
    pub mode: FileMode,
    /// Source host.
    #[serde(default)]
    pub src_ip: Option<IpHost>,
    /// Source path.
    #[serde(default)]
    pub src_path: Option<String>,
    /// Target host (downloads only).
    #[serde(default)]
    pub dest_ip: Option<IpHost>,
    /// Target path (downloads only).
    #[serde(default)]
    pub dest_path: Option<String>,
    /// `FileDistStatusEnum`: 1 waiting, 2 uploading, 3 downloading, 4 finished, 5 failed.
    #[serde(default)]
    pub status: Option<FileStatus>,
    /// Log lines.
    #[serde(default)]
    pub log_content: Option<String>,
    /// Display size, e.g. `"9.0 Bytes"`.
    #[serde(default)]
    pub size: Option<String>,
    /// Display speed, e.g. `"1 KB/s"`.
    #[serde(default)]
    pub speed: Option<String>,
    /// Display progress, e.g. `"100%"`.
    #[serde(default)]
    pub process: Option<String>,
}

/// `data` of `get_job_instance_ip_log` (one host; §7.4). For a file step, `file_logs` holds the
/// host's downloads and every source's uploads; `size`/`speed`/`process` are not filled here,
/// but each entry's `log_content` carries JOB's progress lines (§7.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpLogV3 {
    /// 1 script, 2 file.
    #[serde(default)]
    pub log_type: Option<i32>,
    /// CMDB host id.
    #[serde(default)]
    pub bk_host_id: Option<i64>,
    /// BK-Net.
    #[serde(default)]
    pub bk_cloud_id: Option<i64>,
    /// Address.
    #[serde(default)]
    pub ip: Option<String>,
    /// Script output (null for file steps).
    #[serde(default)]
    pub log_content: Option<String>,
    /// Per-file entries.
    #[serde(default, deserialize_with = "null_default")]
    pub file_logs: Vec<FileLogV3>,
}

/// `get_job_instance_list` request (JOB's execution history of a scope): a GET query through
/// the gateway, a POST body through ESB. JOB requires the creation window, at most
/// [`JobInstanceListRequest::MAX_CREATE_TIME_SPAN_MS`] wide, and pages by `start`/`length`
/// (`length` 1 to [`JobInstanceListRequest::MAX_LENGTH`]). A `job_instance_id` makes JOB ignore
/// every other filter but the scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInstanceListRequest {
    /// `biz` or `biz_set`.
    pub bk_scope_type: String,
    /// The business (set) id as a string.
    pub bk_scope_id: String,
    /// Creation time from (epoch milliseconds, inclusive).
    pub create_time_start: i64,
    /// Creation time to (epoch milliseconds, inclusive).
    pub create_time_end: i64,
    /// One job (the other filters are then ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_instance_id: Option<i64>,
    /// Who started the job, matched exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Part of the job's name (JOB matches `%name%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// How the job was started ([`crate::start_way`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_mode: Option<i32>,
    /// 0 a plan, 1 a script, 2 a file distribution ([`crate::job_type`]).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub job_type: Option<i32>,
    /// Only jobs in this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// Only jobs with this target host address, matched exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Offset of the first job (JOB's default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    /// Jobs per page (JOB's default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<i64>,
}

impl JobInstanceListRequest {
    /// The widest creation window JOB accepts: 30 days (`MAX_SEARCH_TASK_HISTORY_RANGE_MILLS`).
    pub const MAX_CREATE_TIME_SPAN_MS: i64 = 30 * 24 * 60 * 60 * 1000;
    /// The most jobs one page holds (`@Range(min = 1, max = 1000)` on `length`).
    pub const MAX_LENGTH: i64 = 1000;
    /// The page size when `length` is not given.
    pub const DEFAULT_LENGTH: i64 = 20;
}

/// `data` of `get_job_instance_list`: one page of jobs, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInstanceListV3 {
    /// Offset of the page's first job.
    #[serde(default, deserialize_with = "null_default")]
    pub start: i64,
    /// The page size used.
    #[serde(default, deserialize_with = "null_default")]
    pub length: i64,
    /// How many jobs match, over every page.
    #[serde(default, deserialize_with = "null_default")]
    pub total: i64,
    /// The page's jobs (`null` when none).
    #[serde(default, deserialize_with = "null_default")]
    pub data: Vec<JobInstanceSummaryV3>,
}

/// One job of `get_job_instance_list` (bk-job's `EsbTaskInstanceV3DTO`). Times are epoch
/// milliseconds; `total_time` is milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInstanceSummaryV3 {
    /// Business (deprecated by JOB, still written).
    #[serde(default)]
    pub bk_biz_id: Option<i64>,
    /// Scope type.
    #[serde(default)]
    pub bk_scope_type: Option<String>,
    /// Scope id.
    #[serde(default)]
    pub bk_scope_id: Option<String>,
    /// Id.
    #[serde(deserialize_with = "positive_id")]
    pub job_instance_id: i64,
    /// The job plan it ran (-1 for a fast job: a transfer or a script).
    #[serde(default)]
    pub job_plan_id: Option<i64>,
    /// The job template it ran (-1 for a fast job).
    #[serde(default)]
    pub job_template_id: Option<i64>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Who started it.
    #[serde(default)]
    pub operator: Option<String>,
    /// How it was started ([`crate::start_way`]).
    #[serde(default)]
    pub launch_mode: Option<i32>,
    /// Job status.
    pub status: RunStatus,
    /// Creation time.
    #[serde(default)]
    pub create_time: Option<i64>,
    /// Start time.
    #[serde(default)]
    pub start_time: Option<i64>,
    /// End time.
    #[serde(default)]
    pub end_time: Option<i64>,
    /// Milliseconds.
    #[serde(default)]
    pub total_time: Option<i64>,
    /// 0 a plan, 1 a script, 2 a file distribution ([`crate::job_type`]).
    #[serde(default, rename = "type")]
    pub job_type: Option<i32>,
}

/// v3 `fast_execute_script` request body (credentials are never part of it). The script and
/// its parameters travel base64-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FastExecuteScriptV3Request {
    /// `biz` or `biz_set`.
    pub bk_scope_type: String,
    /// The business (set) id as a string.
    pub bk_scope_id: String,
    /// Job name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_name: Option<String>,
    /// The script, base64.
    pub script_content: String,
    /// `crate::script::language` (1 = shell).
    pub script_language: i32,
    /// The script's parameters, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_param: Option<String>,
    /// 1 hides the parameters in JOB's UI and logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_param_sensitive: Option<i32>,
    /// Seconds (JOB's default is 7200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// Target account id (wins over the alias when > 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<i64>,
    /// Target account alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_alias: Option<String>,
    /// Target hosts.
    pub target_server: ServerV3,
    /// Called once when the job ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

/// One host's output in `batch_get_job_instance_ip_log` of a script step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptTaskLogV3 {
    /// CMDB host id.
    #[serde(default)]
    pub bk_host_id: Option<i64>,
    /// BK-Net.
    #[serde(default, deserialize_with = "null_default")]
    pub bk_cloud_id: i64,
    /// IPv4 address (empty for an IPv6-only host).
    #[serde(default, deserialize_with = "null_default")]
    pub ip: String,
    /// IPv6 address, when the host has one.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6: String,
    /// What the script wrote (stdout and stderr, as GSE collects them).
    #[serde(default)]
    pub log_content: Option<String>,
}
