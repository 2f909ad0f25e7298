//! Error codes a file-distribution client meets (JOB, ESB and API gateway), and how to treat them.

/// Named error codes (bk-job `ErrorCode`, ESB `errors.py`, gateway `errorx.lua`).
pub mod code {
    /// Success.
    pub const OK: i64 = 0;
    /// JOB: service unavailable (retryable).
    pub const SERVICE_UNAVAILABLE: i64 = 1_240_001;
    /// JOB: internal error.
    pub const INTERNAL_ERROR: i64 = 1_240_002;
    /// JOB: bad request / bean validation.
    pub const BAD_REQUEST: i64 = 1_240_003;
    /// JOB: invalid request parameters (operate_job_instance).
    pub const ILLEGAL_PARAM: i64 = 1_241_002;
    /// JOB: unsupported operation (terminate not in 2/7).
    pub const UNSUPPORTED_OPERATION: i64 = 1_241_003;
    /// JOB: missing request parameter `[name]`.
    pub const MISSING_PARAM_WITH_PARAM_NAME: i64 = 1_241_004;
    /// JOB: invalid request parameter `[name]`.
    pub const ILLEGAL_PARAM_WITH_PARAM_NAME: i64 = 1_241_005;
    /// JOB: missing or invalid request parameter `[name]`.
    pub const MISSING_OR_ILLEGAL_PARAM_WITH_PARAM_NAME: i64 = 1_241_007;
    /// JOB: start of a job that is not in status 1.
    pub const UNSUPPORTED_OPERATION_REPEAT_START_JOB: i64 = 1_241_015;
    /// JOB: the job plan does not exist (in this business).
    pub const TASK_PLAN_NOT_EXIST: i64 = 1_243_009;
    /// JOB: unknown or archived business.
    pub const APP_NOT_EXIST: i64 = 1_243_049;
    /// JOB: host is empty.
    pub const SERVER_EMPTY: i64 = 1_244_001;
    /// JOB: host outside the business.
    pub const HOST_INVALID: i64 = 1_244_002;
    /// JOB: account does not exist.
    pub const ACCOUNT_NOT_EXIST: i64 = 1_244_003;
    /// JOB: no permission to use the account.
    pub const ACCOUNT_NO_PERMISSION: i64 = 1_244_004;
    /// JOB: task instance does not exist (or another business's).
    pub const TASK_INSTANCE_NOT_EXIST: i64 = 1_244_006;
    /// JOB: step instance does not exist.
    pub const STEP_INSTANCE_NOT_EXIST: i64 = 1_244_007;
    /// JOB: too many file tasks.
    pub const FILE_TASKS_EXCEEDS_LIMIT: i64 = 1_244_021;
    /// JOB: task abandoned by the eviction policy.
    pub const TASK_ABANDONED: i64 = 1_244_025;
    /// JOB: invalid rolling strategy (`rolling_config`).
    pub const INVALID_ROLLING_EXPR: i64 = 1_244_026;
    /// JOB: the rolling expression makes more batches than allowed ("Rolling batch can not
    /// be greater than 500").
    pub const EXCEED_MAX_ALLOWED_BATCH_SIZE: i64 = 1_244_027;
    /// JOB: the target hosts resolved to nothing.
    pub const STEP_TARGET_EXECUTE_OBJECT_EMPTY: i64 = 1_244_028;
    /// JOB: a source's hosts resolved to nothing.
    pub const STEP_SOURCE_EXECUTE_OBJECT_EMPTY: i64 = 1_244_029;
    /// JOB: a host id or cloud+IP not in CMDB.
    pub const EXECUTE_OBJECT_NOT_EXIST: i64 = 1_244_030;
    /// JOB: running-job quota of the scope.
    pub const RUNNING_JOB_EXCEED_RESOURCE_SCOPE_QUOTA: i64 = 1_244_032;
    /// JOB: running-job quota of the app.
    pub const RUNNING_JOB_EXCEED_APP_QUOTA: i64 = 1_244_033;
    /// JOB: running-job quota of the system.
    pub const RUNNING_JOB_EXCEED_SYSTEM_QUOTA: i64 = 1_244_034;
    /// JOB: rolling over source files (`rolling_config.type` 2) with a source that is not a
    /// server file.
    pub const FILE_SOURCE_ROLLING_ONLY_SUPPORT_SERVER_FILE: i64 = 1_244_035;
    /// JOB: a third-party file source id that is not the job's business's
    /// ("FileSource[id={0}] does not belong to specified business").
    pub const FILE_SOURCE_ID_NOT_IN_BIZ: i64 = 1_260_017;
    /// JOB: IAM permission denied (carries `permission`).
    pub const BK_PERMISSION_DENIED: i64 = 9_900_403;
    /// JOB: permission denied.
    pub const PERMISSION_DENIED: i64 = 1_238_001;
    /// JOB: GSE is not available.
    pub const GSE_ERROR: i64 = 1_210_001;
    /// ESB: generic component error, including every authentication failure.
    pub const ESB_COMPONENT_ERROR: i64 = 1_306_000;
    /// ESB: third-party (JOB) request error.
    pub const ESB_THIRD_PARTY_ERROR: i64 = 1_306_201;
    /// ESB: APP has no permission for the component.
    pub const ESB_APP_PERMISSION: i64 = 1_306_403;
    /// ESB: bad parameters (e.g. malformed `X-Bkapi-Authorization`).
    pub const ESB_PARAMS_ERROR: i64 = 1_306_406;
    /// ESB: rate limited.
    pub const ESB_RATE_LIMITED: i64 = 1_306_429;
    /// Gateway: invalid arguments, including authentication failures (HTTP 400).
    pub const GATEWAY_INVALID_ARGS: i64 = 1_640_001;
    /// Gateway: app without the resource grant (HTTP 403).
    pub const GATEWAY_APP_NO_PERMISSION: i64 = 1_640_301;
    /// Gateway: unknown path (HTTP 404).
    pub const GATEWAY_API_NOT_FOUND: i64 = 1_640_401;
    /// Gateway: rate limited by the resource strategy (HTTP 429).
    pub const GATEWAY_RATE_LIMITED: i64 = 1_642_902;
    /// Gateway: request body too large (HTTP 413).
    pub const GATEWAY_BODY_TOO_LARGE: i64 = 1_641_301;
    /// Gateway: internal server error (HTTP 500).
    pub const GATEWAY_INTERNAL_ERROR: i64 = 1_650_001;
    /// Gateway: bad gateway, the backend did not answer properly (HTTP 502).
    pub const GATEWAY_BAD_GATEWAY: i64 = 1_650_200;
    /// Gateway: the backend is unavailable (HTTP 503).
    pub const GATEWAY_SERVICE_UNAVAILABLE: i64 = 1_650_300;
    /// Gateway: the backend did not answer in time (HTTP 504).
    pub const GATEWAY_TIMEOUT: i64 = 1_650_401;
}

/// GSE's per-task codes as JOB reports them in a host's `error_code` (§6.3: `GSECode`'s
/// `AtomicErrorCode`, and the failure codes `Consts.GSE_ERROR_CODE_2_STATUS_MAP` maps to host
/// statuses).
pub mod gse_code {
    /// The task finished.
    pub const FINISHED: i64 = 0;
    /// Any other error (also what a host without an agent reports).
    pub const ERROR: i64 = -1;
    /// A source file or directory does not exist (host status 320).
    pub const FILE_NOT_FOUND: i64 = 104;
    /// The task is running.
    pub const RUNNING: i64 = 115;
    /// The agent is abnormal or down (host status 310).
    pub const AGENT_ABNORMAL: i64 = 117;
    /// A file exceeds the size limit (host status 321).
    pub const FILE_SIZE_EXCEED: i64 = 119;
    /// GSE's own transfer timeout (host status 303).
    pub const TIMEOUT: i64 = 120;
    /// The account does not exist on the host (host status 311).
    pub const USER_NOT_EXIST: i64 = 122;
    /// The task was force-terminated (host status 403).
    pub const TERMINATED: i64 = 126;
    /// One of the target-side failures GSE reports as 701 to 710 (host status 329); 710 is
    /// what `jobsim` reports for a missing target directory with `transfer_mode` 1 (JOB's
    /// own code for it is unconfirmed).
    pub const TARGET_DIR_MISSING: i64 = 710;
}

/// What a client should do with an error code (bk-job-api.md §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Gateway or ESB authentication / authorisation failure: fix credentials, do not retry.
    Auth,
    /// The request is wrong (validation): do not retry; show the message.
    Validation,
    /// Something named in the request does not exist, or permission is missing.
    NotFoundOrPermission,
    /// Capacity or quota: retry later or split the job.
    Capacity,
    /// Transient: retry with backoff.
    Retryable,
    /// Internal server error: retry only with care (a submission may have happened).
    Internal,
    /// Not a known class.
    Other,
}

/// Classifies a JOB/ESB/gateway `code` from a response body.
pub fn classify_code(value: i64) -> ErrorClass {
    use code::*;
    match value {
        SERVICE_UNAVAILABLE | ESB_THIRD_PARTY_ERROR | ESB_RATE_LIMITED | GATEWAY_RATE_LIMITED => {
            ErrorClass::Retryable
        }
        1_642_900..=1_642_999 => ErrorClass::Retryable,
        1_650_200..=1_650_499 => ErrorClass::Retryable,
        INTERNAL_ERROR => ErrorClass::Internal,
        1_650_000..=1_650_199 => ErrorClass::Internal,
        ESB_COMPONENT_ERROR | ESB_PARAMS_ERROR | ESB_APP_PERMISSION => ErrorClass::Auth,
        1_640_001..=1_640_399 => ErrorClass::Auth,
        BAD_REQUEST
        | ILLEGAL_PARAM
        | UNSUPPORTED_OPERATION
        | MISSING_PARAM_WITH_PARAM_NAME
        | ILLEGAL_PARAM_WITH_PARAM_NAME
        | MISSING_OR_ILLEGAL_PARAM_WITH_PARAM_NAME
        | UNSUPPORTED_OPERATION_REPEAT_START_JOB
        | SERVER_EMPTY
        | STEP_TARGET_EXECUTE_OBJECT_EMPTY
        | STEP_SOURCE_EXECUTE_OBJECT_EMPTY
        | INVALID_ROLLING_EXPR
        | EXCEED_MAX_ALLOWED_BATCH_SIZE
        | FILE_SOURCE_ROLLING_ONLY_SUPPORT_SERVER_FILE => ErrorClass::Validation,
        APP_NOT_EXIST
        | HOST_INVALID
        | ACCOUNT_NOT_EXIST
        | ACCOUNT_NO_PERMISSION
        | TASK_INSTANCE_NOT_EXIST
        | STEP_INSTANCE_NOT_EXIST
        | EXECUTE_OBJECT_NOT_EXIST
        | BK_PERMISSION_DENIED
        | PERMISSION_DENIED
        | 1_211_003
        | GATEWAY_API_NOT_FOUND => ErrorClass::NotFoundOrPermission,
        FILE_TASKS_EXCEEDS_LIMIT
        | TASK_ABANDONED
        | RUNNING_JOB_EXCEED_RESOURCE_SCOPE_QUOTA
        | RUNNING_JOB_EXCEED_APP_QUOTA
        | RUNNING_JOB_EXCEED_SYSTEM_QUOTA => ErrorClass::Capacity,
        _ => ErrorClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_codes_are_the_documented_ones() {
        for c in [1_240_001, 1_306_201, 1_306_429, 1_642_902, 1_650_300] {
            assert_eq!(classify_code(c), ErrorClass::Retryable, "{c}");
        }
        for c in [1_240_003, 1_244_030, 1_244_021, 1_306_000, 1_640_001] {
            assert_ne!(classify_code(c), ErrorClass::Retryable, "{c}");
        }
    }
}
