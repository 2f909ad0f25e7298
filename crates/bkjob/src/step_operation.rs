//! `operate_step_instance` (v2 `job/` and v3 `jobv3/`, the same body): what a user does to a
//! step that failed, waits for a confirmation or waits between rolling batches (JOB's
//! `StepOperationEnum`, `TaskExecuteServiceImpl.doStepOperation`).
//!
//! JOB's preconditions, each refused with `1241003` "Unsupported operation" otherwise:
//!
//! | operation             | the step's status must be          | then                                   |
//! |-----------------------|------------------------------------|----------------------------------------|
//! | 2 `RetryFailIp`       | 4 failed, 9 abnormal, 11 terminated | job 2; the failed hosts (of the current rolling batch) run again, `execute_count` + 1 |
//! | 3 `IgnoreError`       | 4 failed, 9 abnormal               | job 2; step 6, the next batch (or the end) |
//! | 8 `RetryAllIp`        | 4 failed, 9 abnormal, 11 terminated | as 2, every host of the batch          |
//! | 13 `RollingContinue`  | 7 waiting for a user, rolling step | job 2; the next batch starts           |
//!
//! A missing or non-positive id, a missing or unknown code: `1241002`. An unknown job (or
//! another business's): `1244006`; an unknown step of it: `1244007`.

use serde::{Deserialize, Serialize};

use crate::status::RunStatus;

/// An `operation_code` of `operate_step_instance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "i32", try_from = "i32")]
pub enum StepOperation {
    /// 2: run the failed hosts again, in the same job instance.
    RetryFailIp,
    /// 3: accept the failure and go on.
    IgnoreError,
    /// 6: confirm a manual-confirmation step (plan steps only).
    ConfirmContinue,
    /// 8: run every host again, in the same job instance.
    RetryAllIp,
    /// 9: end a manual-confirmation step's flow (plan steps only).
    ConfirmTerminate,
    /// 10: ask for a confirmation again (plan steps only).
    ConfirmRestart,
    /// 11: go on after a terminated step.
    NextStep,
    /// 12: skip a step being terminated.
    Skip,
    /// 13: start the next rolling batch of a step waiting for a user.
    RollingContinue,
}

impl StepOperation {
    /// Every operation JOB knows, by code.
    pub const ALL: [StepOperation; 9] = [
        StepOperation::RetryFailIp,
        StepOperation::IgnoreError,
        StepOperation::ConfirmContinue,
        StepOperation::RetryAllIp,
        StepOperation::ConfirmTerminate,
        StepOperation::ConfirmRestart,
        StepOperation::NextStep,
        StepOperation::Skip,
        StepOperation::RollingContinue,
    ];

    /// The number on the wire.
    pub fn code(self) -> i32 {
        match self {
            StepOperation::RetryFailIp => 2,
            StepOperation::IgnoreError => 3,
            StepOperation::ConfirmContinue => 6,
            StepOperation::RetryAllIp => 8,
            StepOperation::ConfirmTerminate => 9,
            StepOperation::ConfirmRestart => 10,
            StepOperation::NextStep => 11,
            StepOperation::Skip => 12,
            StepOperation::RollingContinue => 13,
        }
    }

    /// The operation for a code (none for one JOB refuses with `1241002`).
    pub fn from_code(code: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.code() == code)
    }

    /// Whether JOB accepts this operation on a step in `status` (its first precondition; a
    /// rolling continue also needs a rolling step, the confirmation ones a confirmation step).
    pub fn allowed_in(self, status: RunStatus) -> bool {
        match self {
            StepOperation::RetryFailIp | StepOperation::RetryAllIp => matches!(
                status,
                RunStatus::Fail | RunStatus::AbnormalState | RunStatus::StopSuccess
            ),
            StepOperation::IgnoreError => {
                matches!(status, RunStatus::Fail | RunStatus::AbnormalState)
            }
            StepOperation::ConfirmContinue
            | StepOperation::ConfirmTerminate
            | StepOperation::RollingContinue => status == RunStatus::WaitingUser,
            StepOperation::ConfirmRestart => status == RunStatus::ConfirmTerminated,
            StepOperation::NextStep => status == RunStatus::StopSuccess,
            StepOperation::Skip => status == RunStatus::Stopping,
        }
    }
}

impl From<StepOperation> for i32 {
    fn from(op: StepOperation) -> i32 {
        op.code()
    }
}

impl TryFrom<i32> for StepOperation {
    type Error = String;
    fn try_from(code: i32) -> Result<Self, String> {
        StepOperation::from_code(code).ok_or_else(|| format!("unknown step operation {code}"))
    }
}

/// `operate_step_instance` request body: v2 names the business by `bk_biz_id`, v3 by scope.
/// The answer's `data` is a [`JobExecuteData`](crate::JobExecuteData) echoing both ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperateStepInstanceRequest {
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
    /// The step.
    pub step_instance_id: i64,
    /// What to do.
    pub operation_code: StepOperation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_jobs() {
        let codes: Vec<i32> = StepOperation::ALL.iter().map(|op| op.code()).collect();
        assert_eq!(codes, [2, 3, 6, 8, 9, 10, 11, 12, 13]);
        for code in [0, 1, 4, 5, 7, 14, -1] {
            assert_eq!(StepOperation::from_code(code), None, "{code}");
        }
    }

    #[test]
    fn preconditions_follow_job() {
        use RunStatus::*;
        assert!(StepOperation::RollingContinue.allowed_in(WaitingUser));
        for status in [Running, RollingWaiting, Fail, Success] {
            assert!(
                !StepOperation::RollingContinue.allowed_in(status),
                "{status}"
            );
        }
        assert!(StepOperation::RetryFailIp.allowed_in(StopSuccess));
        assert!(!StepOperation::IgnoreError.allowed_in(StopSuccess));
        for op in [
            StepOperation::RetryFailIp,
            StepOperation::IgnoreError,
            StepOperation::RetryAllIp,
        ] {
            assert!(
                op.allowed_in(Fail) && op.allowed_in(AbnormalState),
                "{op:?}"
            );
            assert!(
                !op.allowed_in(Running) && !op.allowed_in(WaitingUser),
                "{op:?}"
            );
        }
    }

    #[test]
    fn the_body_is_jobs() {
        let body = OperateStepInstanceRequest {
            bk_biz_id: None,
            bk_scope_type: Some("biz".into()),
            bk_scope_id: Some("2".into()),
            job_instance_id: 10_000,
            step_instance_id: 10_001,
            operation_code: StepOperation::RollingContinue,
        };
        assert_eq!(
            serde_json::to_value(&body).expect("serialises"),
            serde_json::json!({"bk_scope_type": "biz", "bk_scope_id": "2",
                "job_instance_id": 10_000, "step_instance_id": 10_001, "operation_code": 13})
        );
    }
}
