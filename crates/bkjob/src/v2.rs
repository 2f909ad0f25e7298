//! v2 (`job/`, ESB only): `fast_push_file`, `get_job_instance_status`, `get_job_instance_log`,
//! `operate_job_instance`.

use serde::{Deserialize, Serialize};

use crate::common::{IpHost, TopoNodeRef};
use crate::lenient::{null_default, positive_id, positive_id_opt};
use crate::status::{HostStatus, RunStatus};

/// The v2 `server` object (`target_server`, and `file_source[].target_server`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerV2 {
    /// Static hosts.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_list: Vec<IpHost>,
    /// CMDB dynamic group ids.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dynamic_group_id_list: Vec<String>,
    /// CMDB topology nodes.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub topo_node_list: Vec<TopoNodeRef>,
}

/// One entry of `file_source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSourceV2 {
    /// Absolute paths on the source hosts (trailing `/` = directory; `REGEX:` / `*` in the name).
    #[serde(default, deserialize_with = "null_default")]
    pub files: Vec<String>,
    /// Execution account alias on the source hosts.
    #[serde(default, deserialize_with = "null_default")]
    pub account: String,
    /// The source hosts (replaces the deprecated `ip_list` / `custom_query_id` when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_server: Option<ServerV2>,
    /// Deprecated host list; plans never send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_list: Option<Vec<IpHost>>,
    /// Deprecated dynamic group ids; plans never send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_query_id: Option<Vec<String>>,
}

/// `fast_push_file` request body (credentials are added by the client, never stored here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FastPushFileRequest {
    /// Business id.
    pub bk_biz_id: i64,
    /// Scope type; plans use `bk_biz_id` in v2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bk_scope_type: Option<String>,
    /// Scope id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bk_scope_id: Option<String>,
    /// Job (step) name; undocumented for v2 but honoured by JOB 3.x.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_name: Option<String>,
    /// Execution account alias on the targets.
    pub account: String,
    /// Target directory.
    pub file_target_path: String,
    /// Sources.
    pub file_source: Vec<FileSourceV2>,
    /// Target hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_server: Option<ServerV2>,
    /// Deprecated target host list; plans never send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_list: Option<Vec<IpHost>>,
    /// Deprecated dynamic group ids; plans never send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_query_id: Option<Vec<String>>,
    /// Seconds (JOB's default is 7200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// MB/s; absent = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_speed_limit: Option<u32>,
    /// MB/s; absent = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_speed_limit: Option<u32>,
    /// Called once when the job ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bk_callback_url: Option<String>,
}

/// `data` of a successful submission (v2 and v3; v3 and v2 scripts add `step_instance_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobExecuteData {
    /// The new job's id (positive: anything else is refused as an invalid answer).
    #[serde(deserialize_with = "positive_id")]
    pub job_instance_id: i64,
    /// The job's name (the task name, or JOB's default).
    #[serde(default)]
    pub job_instance_name: Option<String>,
    /// The job's step: v3 submissions and v2 `fast_execute_script` answer it (positive when
    /// present).
    #[serde(
        default,
        deserialize_with = "positive_id_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub step_instance_id: Option<i64>,
}

/// `operate_job_instance` `operation_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationCode {
    /// 1: terminate a running job.
    Terminate,
    /// 2: start a job created with `start_task=false`.
    Start,
}

impl OperationCode {
    /// The number on the wire.
    pub fn code(self) -> i32 {
        match self {
            OperationCode::Terminate => 1,
            OperationCode::Start => 2,
        }
    }
}

/// `operate_job_instance` request body (v2 and v3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperateJobInstanceRequest {
    /// Business id (v2) ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bk_biz_id: Option<i64>,
    /// ... or scope (v3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bk_scope_type: Option<String>,
    /// Scope id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bk_scope_id: Option<String>,
    /// The job.
    pub job_instance_id: i64,
    /// See [`OperationCode`].
    pub operation_code: i32,
}

/// `data` of v2 `get_job_instance_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInstanceStatusV2 {
    /// The job status is in the finished set.
    #[serde(default, deserialize_with = "null_default")]
    pub is_finished: bool,
    /// The job.
    #[serde(default)]
    pub job_instance: Option<JobInstanceV2>,
    /// One block per step (a file job has one).
    #[serde(default, deserialize_with = "null_default")]
    pub blocks: Vec<StatusBlockV2>,
}

/// v2 `job_instance`. Times are `yyyy-MM-dd HH:mm:ss` in JOB's zone; `total_time` is seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInstanceV2 {
    /// Id.
    #[serde(deserialize_with = "positive_id")]
    pub job_instance_id: i64,
    /// -1 for quick jobs.
    #[serde(default)]
    pub bk_job_id: Option<i64>,
    /// Job status.
    pub status: RunStatus,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Who started it.
    #[serde(default)]
    pub operator: Option<String>,
    /// Creation time.
    #[serde(default)]
    pub create_time: Option<String>,
    /// Start time.
    #[serde(default)]
    pub start_time: Option<String>,
    /// End time.
    #[serde(default)]
    pub end_time: Option<String>,
    /// Seconds.
    #[serde(default)]
    pub total_time: Option<f64>,
    /// 2 = API.
    #[serde(default)]
    pub start_way: Option<i32>,
    /// The running step.
    #[serde(default)]
    pub current_step_instance_id: Option<i64>,
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

/// v2 `blocks[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusBlockV2 {
    /// The steps of the block.
    #[serde(default, deserialize_with = "null_default")]
    pub step_instances: Vec<StepInstanceStatusV2>,
}

/// v2 step status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepInstanceStatusV2 {
    /// Id.
    #[serde(deserialize_with = "positive_id")]
    pub step_instance_id: i64,
    /// -1 for quick jobs.
    #[serde(default)]
    pub step_id: Option<i64>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// 2 = file.
    #[serde(default, rename = "type")]
    pub step_type: Option<i32>,
    /// Operator.
    #[serde(default)]
    pub operator: Option<String>,
    /// Step status.
    pub status: RunStatus,
    /// Execution counter.
    #[serde(default)]
    pub execute_count: Option<i32>,
    /// Start time.
    #[serde(default)]
    pub start_time: Option<String>,
    /// End time.
    #[serde(default)]
    pub end_time: Option<String>,
    /// Seconds.
    #[serde(default)]
    pub total_time: Option<f64>,
    /// Creation time.
    #[serde(default)]
    pub create_time: Option<String>,
    /// Always null for quick jobs.
    #[serde(default)]
    pub pause: Option<serde_json::Value>,
    /// Target hosts only.
    #[serde(default, deserialize_with = "null_default")]
    pub step_ip_status: Vec<StepIpStatusV2>,
}

/// v2 per-host status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepIpStatusV2 {
    /// Address.
    #[serde(default, deserialize_with = "null_default")]
    pub ip: String,
    /// BK-Net.
    #[serde(default, deserialize_with = "null_default")]
    pub bk_cloud_id: i64,
    /// Host status.
    pub status: HostStatus,
}

/// One step of v2 `get_job_instance_log` `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepInstanceLogV2 {
    /// The step is finished.
    #[serde(default, deserialize_with = "null_default")]
    pub is_finished: bool,
    /// Step id.
    #[serde(deserialize_with = "positive_id")]
    pub step_instance_id: i64,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Step status.
    pub status: RunStatus,
    /// Hosts grouped by `(ip_status, tag)`.
    #[serde(default, deserialize_with = "null_default")]
    pub step_results: Vec<StepResultGroupV2>,
}

/// v2 log group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResultGroupV2 {
    /// The hosts' status.
    pub ip_status: HostStatus,
    /// Script tag (empty for files).
    #[serde(default)]
    pub tag: Option<String>,
    /// One entry per host.
    #[serde(default, deserialize_with = "null_default")]
    pub ip_logs: Vec<IpLogV2>,
}

/// v2 per-host log. `log_content` is HTML-escaped: see [`crate::unescape_log`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpLogV2 {
    /// Start time.
    #[serde(default)]
    pub start_time: Option<String>,
    /// End time.
    #[serde(default)]
    pub end_time: Option<String>,
    /// Seconds.
    #[serde(default)]
    pub total_time: Option<f64>,
    /// Execution counter.
    #[serde(default)]
    pub execute_count: Option<i32>,
    /// Raw GSE code.
    #[serde(default)]
    pub error_code: Option<i64>,
    /// Script exit code (null for files).
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Concatenated per-file log lines, HTML-escaped.
    #[serde(default)]
    pub log_content: Option<String>,
    /// BK-Net.
    #[serde(default, deserialize_with = "null_default")]
    pub bk_cloud_id: i64,
    /// Address.
    #[serde(default, deserialize_with = "null_default")]
    pub ip: String,
}

/// v2 `fast_execute_script` request body (credentials are added by the client). The script
/// and its parameters travel base64-encoded; `script_type` and `script_timeout` are v2's
/// names for v3's `script_language` and `timeout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FastExecuteScriptRequest {
    /// Business id.
    pub bk_biz_id: i64,
    /// Job (step) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_name: Option<String>,
    /// The script, base64.
    pub script_content: String,
    /// `crate::script::language` (1 = shell).
    pub script_type: i32,
    /// The script's parameters, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_param: Option<String>,
    /// 1 hides the parameters in JOB's UI and logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_param_sensitive: Option<i32>,
    /// Seconds (JOB's default is 7200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_timeout: Option<u32>,
    /// Execution account alias on the targets.
    pub account: String,
    /// Target hosts.
    pub target_server: ServerV2,
    /// Called once when the job ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bk_callback_url: Option<String>,
}
