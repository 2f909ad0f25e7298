//! JOB's saved job plans (执行方案), read for `plan import`: v3 `get_job_plan_list` and
//! `get_job_plan_detail` (bk-job's `EsbGetJobPlanListV3Resource`,
//! `EsbGetJobPlanDetailV3Resource`).
//!
//! Field names are bk-job's DTOs: `EsbPlanBasicInfoV3DTO` (a plan's id is `id`; the ESB
//! documentation's `job_plan_id` is read too), `EsbPlanInfoV3DTO` (`step_list`,
//! `global_var_list`), `EsbStepV3DTO`, `EsbFileStepV3DTO` (`source_speed_limit` and
//! `destination_speed_limit`, where `fast_transfer_file` says `upload_`/`download_`),
//! `EsbGlobalVarV3DTO`. Every field a plan file has no use for is kept out: unknown fields are
//! ignored, and a `null` reads as absent, as JOB writes either.

use serde::{Deserialize, Serialize};

use crate::lenient::null_default;
use crate::v3::ServerV3;

/// `get_job_plan_list`'s request (`EsbGetPlanListV3Request`): a business's plans, one page
/// (JOB's `start`, default 0, and `length`, default 20), optionally filtered. JOB matches
/// `name` as a substring; the times are epoch milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPlanListRequest {
    /// `biz` or `biz_set`.
    pub bk_scope_type: String,
    /// The business (set) id as a string.
    pub bk_scope_id: String,
    /// Only the plans of this job template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_template_id: Option<i64>,
    /// Only the plans this user created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// Only the plans whose name contains this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Created at or after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time_start: Option<i64>,
    /// Created at or before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time_end: Option<i64>,
    /// Only the plans this user changed last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modify_user: Option<String>,
    /// Last changed at or after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modify_time_start: Option<i64>,
    /// Last changed at or before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modify_time_end: Option<i64>,
    /// Offset of the first plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    /// Page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<i64>,
}

/// `get_job_plan_detail`'s request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPlanDetailRequest {
    /// `biz` or `biz_set`.
    pub bk_scope_type: String,
    /// The business (set) id as a string.
    pub bk_scope_id: String,
    /// The plan.
    pub job_plan_id: i64,
}

/// One page of `get_job_plan_list` (`EsbPageDataV3`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPlanPage {
    /// Offset of the page's first plan.
    #[serde(default, deserialize_with = "null_default")]
    pub start: i64,
    /// The page size used.
    #[serde(default, deserialize_with = "null_default")]
    pub length: i64,
    /// How many plans the business has, over every page.
    #[serde(default, deserialize_with = "null_default")]
    pub total: i64,
    /// The page's plans.
    #[serde(default, deserialize_with = "null_default")]
    pub data: Vec<JobPlanSummary>,
}

/// One plan of the list (`EsbPlanBasicInfoV3DTO`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPlanSummary {
    /// The plan's id.
    #[serde(alias = "job_plan_id")]
    pub id: i64,
    /// The business, when JOB writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bk_biz_id: Option<i64>,
    /// The job template the plan was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_template_id: Option<i64>,
    /// The plan's name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Who created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// When (epoch milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<i64>,
    /// Who last changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modify_user: Option<String>,
    /// When (epoch milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modify_time: Option<i64>,
}

/// `get_job_plan_detail`'s `data` (`EsbPlanInfoV3DTO`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPlanDetail {
    /// The plan's id, name and business.
    #[serde(flatten)]
    pub summary: JobPlanSummary,
    /// The steps, in the order JOB runs them.
    #[serde(default, deserialize_with = "null_default")]
    pub step_list: Vec<JobPlanStep>,
    /// The plan's global variables.
    #[serde(default, deserialize_with = "null_default")]
    pub global_var_list: Vec<GlobalVar>,
}

/// One step (`EsbStepV3DTO`): `type` says which of the `*_info` objects is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobPlanStep {
    /// The step's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// The step's name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// [`plan_step_type`].
    #[serde(rename = "type")]
    pub step_type: i32,
    /// A file distribution's settings (`type` 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_info: Option<FileStep>,
    /// A script's, kept opaque: `plan` does not run scripts from plans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_info: Option<serde_json::Value>,
    /// A manual confirmation's, kept opaque.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_info: Option<serde_json::Value>,
}

/// A job plan step's `type` (JOB's `TaskStepTypeEnum`).
pub mod plan_step_type {
    /// A script (shell, bat, perl, python, powershell) or SQL.
    pub const SCRIPT: i32 = 1;
    /// A file distribution.
    pub const FILE: i32 = 2;
    /// A manual confirmation.
    pub const APPROVAL: i32 = 3;
}

/// A file step (`EsbFileStepV3DTO`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStep {
    /// Where the files come from.
    #[serde(default, deserialize_with = "null_default")]
    pub file_source_list: Vec<PlanFileSource>,
    /// Where they go.
    #[serde(default)]
    pub file_destination: PlanFileDestination,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// MB/s per source host (`upload_speed_limit` of `fast_transfer_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_speed_limit: Option<i64>,
    /// MB/s per target host (`download_speed_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_speed_limit: Option<i64>,
    /// 1 strict, 2 force (JOB's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_mode: Option<i32>,
}

/// One source of a file step (`EsbFileSourceV3DTO`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFileSource {
    /// Paths on the source hosts (or inside a third-party file source).
    #[serde(default, deserialize_with = "null_default")]
    pub file_list: Vec<String>,
    /// 1 server file, 2 a file uploaded from a browser, 3 a third-party file source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_type: Option<i32>,
    /// The account on the source hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<PlanAccount>,
    /// The source hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<PlanServer>,
    /// The third-party file source (`file_type` 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_source_id: Option<i64>,
}

/// A file step's destination (`EsbFileDestinationV3DTO`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFileDestination {
    /// The target directory (or file path).
    #[serde(default, deserialize_with = "null_default")]
    pub path: String,
    /// The account on the target hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<PlanAccount>,
    /// The target hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<PlanServer>,
}

/// An execution account as a job plan names it (`EsbAccountV3BasicDTO`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanAccount {
    /// The account's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// The system user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The account's alias, which `fast_transfer_file` accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// Hosts of a step or of a host variable (`EsbServerV3DTO`): a host variable's name, or hosts
/// in the same fields as a request's [`ServerV3`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanServer {
    /// A host-list global variable standing for the hosts (empty when hosts are given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variable: Option<String>,
    /// The hosts.
    #[serde(flatten)]
    pub hosts: ServerV3,
}

/// A global variable (`EsbGlobalVarV3DTO`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalVar {
    /// The variable's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Its name, as `${name}` in steps.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// [`global_var_type`].
    #[serde(rename = "type", default, deserialize_with = "null_default")]
    pub var_type: i32,
    /// The value of a string, ciphertext, namespace or array variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The hosts of a host-list variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<PlanServer>,
    /// What the variable is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// 1 when the plan cannot run without a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<i32>,
}

/// A global variable's `type` (JOB's `TaskVariableTypeEnum`).
pub mod global_var_type {
    /// A string.
    pub const STRING: i32 = 1;
    /// A namespace (a value per host).
    pub const NAMESPACE: i32 = 2;
    /// A host list.
    pub const HOST_LIST: i32 = 3;
    /// A ciphertext (a password): JOB never returns its value.
    pub const CIPHER: i32 = 4;
    /// An associative array.
    pub const ASSOCIATIVE_ARRAY: i32 = 5;
    /// An indexed array.
    pub const INDEX_ARRAY: i32 = 6;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape bk-job writes: `id`, `source_speed_limit`, a host variable as a step's
    /// source, a script step and a third-party source next to it, `null` lists.
    #[test]
    fn detail_reads_bk_jobs_field_names() {
        let detail: JobPlanDetail = serde_json::from_value(serde_json::json!({
            "bk_biz_id": 2, "bk_scope_type": "biz", "bk_scope_id": "2",
            "id": 100, "job_template_id": 7, "name": "release",
            "global_var_list": [
                {"id": 11, "type": 1, "name": "version", "value": "1.4.2", "required": 1},
                {"id": 12, "type": 3, "name": "build", "server": {
                    "ip_list": [{"bk_host_id": 101, "bk_cloud_id": 0, "ip": "10.0.0.1"}]}},
                {"id": 13, "type": 4, "name": "password", "value": null}
            ],
            "step_list": [
                {"id": 1, "type": 1, "name": "stop", "script_info": {"script_type": 1}},
                {"id": 2, "type": 2, "name": "push", "file_info": {
                    "file_source_list": [
                        {"file_list": ["/data/app-${version}.tgz"], "file_type": 1,
                         "server": {"variable": "build"}, "account": {"id": 1, "name": "root"}},
                        {"file_list": ["bucket/a.txt"], "file_type": 3, "file_source_id": 4}
                    ],
                    "file_destination": {"path": "/opt/", "account": {"name": "app"},
                        "server": {"host_id_list": [7, 8], "ip_list": null}},
                    "timeout": 600, "source_speed_limit": 10, "destination_speed_limit": 20,
                    "transfer_mode": 1
                }}
            ]
        }))
        .unwrap();
        assert_eq!(detail.summary.id, 100);
        assert_eq!(detail.summary.bk_biz_id, Some(2));
        assert_eq!(
            detail.global_var_list[1].var_type,
            global_var_type::HOST_LIST
        );
        assert_eq!(detail.global_var_list[2].value, None);
        assert_eq!(detail.step_list[0].step_type, plan_step_type::SCRIPT);
        assert!(detail.step_list[0].script_info.is_some());
        let file = detail.step_list[1].file_info.as_ref().unwrap();
        assert_eq!(
            file.file_source_list[0]
                .server
                .as_ref()
                .unwrap()
                .variable
                .as_deref(),
            Some("build")
        );
        assert_eq!(file.file_source_list[1].file_source_id, Some(4));
        assert_eq!(
            file.file_destination
                .server
                .as_ref()
                .unwrap()
                .hosts
                .host_id_list,
            [7, 8]
        );
        assert_eq!(
            (file.source_speed_limit, file.destination_speed_limit),
            (Some(10), Some(20))
        );
        assert_eq!(file.transfer_mode, Some(1));
    }

    /// The ESB documentation's `job_plan_id` names the same field.
    #[test]
    fn list_page_reads_both_id_spellings() {
        let page: JobPlanPage = serde_json::from_value(serde_json::json!({
            "start": 0, "length": 20, "total": 2,
            "data": [{"id": 1, "name": "a"}, {"job_plan_id": 2, "name": "b", "bk_biz_id": 3}]
        }))
        .unwrap();
        let ids: Vec<i64> = page.data.iter().map(|plan| plan.id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(page.total, 2);
    }

    /// A plan without an id is not a plan: an error, not a plan numbered 0.
    #[test]
    fn a_summary_without_an_id_is_refused() {
        assert!(
            serde_json::from_value::<JobPlanSummary>(serde_json::json!({"name": "a"})).is_err()
        );
    }

    #[test]
    fn requests_write_jobs_names() {
        let request = JobPlanListRequest {
            bk_scope_type: "biz".into(),
            bk_scope_id: "2".into(),
            start: Some(20),
            ..JobPlanListRequest::default()
        };
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            serde_json::json!({"bk_scope_type": "biz", "bk_scope_id": "2", "start": 20})
        );
    }
}
