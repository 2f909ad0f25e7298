//! v3 `get_step_instance_status` (JOB's `EsbGetStepInstanceStatusV3Resource`): one step's hosts
//! grouped by status, for one rolling batch (`batch`: absent the latest, 0 every batch, N
//! batch N) and one execution (`execute_count`). The only v3 read that says which hosts a
//! rolling batch holds; `get_job_instance_status` lists every host of every batch.

use serde::{Deserialize, Serialize};

use crate::lenient::null_default;
use crate::status::{HostStatus, RunStatus};

/// The query (a GET through the gateway, a POST body through ESB).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInstanceStatusRequest {
    /// `biz` or `biz_set`.
    pub bk_scope_type: String,
    /// The business (set) id as a string.
    pub bk_scope_id: String,
    /// The job (positive).
    pub job_instance_id: i64,
    /// The step (positive).
    pub step_instance_id: i64,
    /// Which execution (absent: the latest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute_count: Option<i32>,
    /// Which rolling batch: absent the latest, 0 every batch, N batch N.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<i32>,
    /// At most this many hosts listed per status group (`host_size` still counts them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_host_num_per_group: Option<i32>,
    /// Only hosts in this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<HostStatus>,
}

/// `data` of `get_step_instance_status` (JOB's `EsbStepInstanceStatusV3DTO`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepInstanceStatusDetailV3 {
    /// The step.
    pub step_instance_id: i64,
    /// Its executions so far (0, plus one per retry).
    #[serde(default)]
    pub execute_count: Option<i32>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// 1 script, 2 file.
    #[serde(default, rename = "type")]
    pub step_type: Option<i32>,
    /// Step status.
    pub status: RunStatus,
    /// Creation time (ms).
    #[serde(default)]
    pub create_time: Option<i64>,
    /// Start time (ms).
    #[serde(default)]
    pub start_time: Option<i64>,
    /// End time (ms).
    #[serde(default)]
    pub end_time: Option<i64>,
    /// Milliseconds.
    #[serde(default)]
    pub total_time: Option<i64>,
    /// The hosts by status (left out when there are none).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub step_result_group_list: Vec<StepResultGroupV3>,
}

/// One status's hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResultGroupV3 {
    /// The hosts' status.
    pub result_type: HostStatus,
    /// Its label.
    #[serde(default)]
    pub result_type_desc: Option<String>,
    /// Script tag (null for files).
    #[serde(default)]
    pub tag: Option<String>,
    /// How many hosts are in the group (the list may be cut).
    #[serde(default)]
    pub host_size: Option<i64>,
    /// The hosts (at most `max_host_num_per_group`).
    #[serde(default, deserialize_with = "null_default")]
    pub host_result_list: Vec<StepHostResultV3>,
}

/// One host's result in a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepHostResultV3 {
    /// CMDB host id.
    #[serde(default)]
    pub bk_host_id: Option<i64>,
    /// IPv4 address.
    #[serde(default)]
    pub ip: Option<String>,
    /// IPv6 address.
    #[serde(default)]
    pub ipv6: Option<String>,
    /// BK-Net.
    #[serde(default)]
    pub bk_cloud_id: Option<i64>,
    /// Host status.
    pub status: HostStatus,
    /// Its label.
    #[serde(default)]
    pub status_desc: Option<String>,
    /// Script exit code (null for files).
    #[serde(default)]
    pub exit_code: Option<i64>,
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
