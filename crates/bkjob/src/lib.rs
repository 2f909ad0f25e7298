//! The BlueKing JOB file-distribution API as data: request and response bodies for the v2
//! (`job/`) and v3 (`jobv3/`, API gateway) families, the response envelope, the job and host
//! status enums with JOB's labels, the error codes a client meets, and the file-log line
//! format ([`file_log`]), and the
//! path rule JOB checks every path with ([`paths`]).
//!
//! The types follow what the real server does (not only what its docs say): responses are
//! parsed leniently (a missing field and `null` mean the same, unknown status values are kept),
//! requests serialise to exactly the bodies JOB accepts. Nothing here does I/O; the HTTP client
//! lives behind the `client` feature so the simulator and the planner share these types without
//! pulling in reqwest.

#[cfg(feature = "client")]
mod client;
pub mod cmdb;
mod codes;
mod common;
mod envelope;
pub mod file_log;
pub mod job_plan;
mod lenient;
pub mod limits;
pub mod paths;
pub mod rolling;
pub mod routes;
pub mod script;
mod status;
mod step_operation;
pub mod step_status;
pub mod task_name;
mod v2;
mod v3;
mod version;

#[cfg(feature = "client")]
pub use client::{
    ApiError, Client, ClientConfig, ConfigError, Credentials, ENV_ACCESS_TOKEN, ENV_APP_CODE,
    ENV_APP_SECRET, ENV_TOKEN, ENV_USERNAME, Endpoint, FIND_JOBS_MAX, FRAGMENT, Flavor, HostLog,
    HostState, JOB_PLAN_PAGE_LENGTH, JOB_PLANS_MAX, JobKey, JobPlanListing, ListedJob,
    MAX_ANSWER_BYTES, MissingCredentials, RetryPolicy, ScriptRequest, ScriptResult, Scrubber,
    Snapshot, StartAnswer, TlsConfig, TransportKind, UserAuth, WITHHELD,
};
pub use codes::{ErrorClass, classify_code, code, gse_code};
pub use common::{DynamicGroup, IpHost, ScopeType, TopoNodeRef, scope_for_biz};
pub use envelope::{Envelope, GatewayErrorBody};
pub use status::{
    FileMode, FileStatus, HostStatus, RunStatus, job_type, log_type, start_way, step_type,
};
pub use step_operation::{OperateStepInstanceRequest, StepOperation};
pub use v2::{
    FastExecuteScriptRequest, FastPushFileRequest, FileSourceV2, IpLogV2, JobExecuteData,
    JobInstanceStatusV2, JobInstanceV2, OperateJobInstanceRequest, OperationCode, ServerV2,
    StatusBlockV2, StepInstanceLogV2, StepInstanceStatusV2, StepIpStatusV2, StepResultGroupV2,
};
pub use v3::file_type;
pub use v3::{
    AccountV3, BatchIpLogRequest, BatchIpLogV3, FastExecuteScriptV3Request,
    FastTransferFileRequest, FileLogV3, FileSourceV3, FileTaskLogV3, IpLogV3,
    JobInstanceListRequest, JobInstanceListV3, JobInstanceStatusV3, JobInstanceSummaryV3,
    JobInstanceV3, ScriptTaskLogV3, ServerV3, StepInstanceStatusV3, StepIpResultV3,
};
pub use version::{ApiVersion, UnknownApiVersion};

/// Unescapes the HTML entities JOB's v2 log API writes (`&amp;`, `&lt;`, `&gt;`, `&quot;`, ...).
pub fn unescape_log(content: &str) -> String {
    html_escape::decode_html_entities(content).into_owned()
}
