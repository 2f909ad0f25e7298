//! The world's saved job plans (`[[job_plan]]` in `jobsim.toml`), as JOB's
//! `get_job_plan_list` and `get_job_plan_detail` answer them: each entry is the detail's
//! `data` in JOB's field names, written as TOML.

use plan_bkjob::code;
use plan_bkjob::job_plan::{JobPlanDetail, JobPlanPage};

/// JOB's page size when a request gives none (or one below 1).
const DEFAULT_PAGE_LENGTH: i64 = 20;

/// The job plans of every business, in the order `jobsim.toml` lists them.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobPlans {
    plans: Vec<JobPlanDetail>,
}

/// JOB's refusal: its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: i64,
    pub(crate) message: String,
}

impl JobPlans {
    pub(crate) fn new(plans: Vec<JobPlanDetail>) -> JobPlans {
        JobPlans { plans }
    }

    /// One page of a business's plans (JOB's `start`, from 0, and `length`).
    pub(crate) fn list(
        &self,
        bk_biz_id: i64,
        start: Option<i64>,
        length: Option<i64>,
    ) -> JobPlanPage {
        let start = start.unwrap_or(0).max(0);
        let length = length
            .filter(|length| *length >= 1)
            .unwrap_or(DEFAULT_PAGE_LENGTH);
        let of_business: Vec<_> = self.of_business(bk_biz_id).collect();
        let data = of_business
            .iter()
            .skip(usize::try_from(start).unwrap_or(usize::MAX))
            .take(usize::try_from(length).unwrap_or(usize::MAX))
            .map(|plan| plan.summary.clone())
            .collect();
        JobPlanPage {
            start,
            length,
            total: i64::try_from(of_business.len()).unwrap_or(i64::MAX),
            data,
        }
    }

    /// A plan of the business: another business's plan is as unknown as a missing one, as
    /// JOB looks plans up by business and id together.
    pub(crate) fn detail(
        &self,
        bk_biz_id: i64,
        job_plan_id: i64,
    ) -> Result<JobPlanDetail, Refusal> {
        self.of_business(bk_biz_id)
            .find(|plan| plan.summary.id == job_plan_id)
            .cloned()
            .ok_or_else(|| Refusal {
                code: code::TASK_PLAN_NOT_EXIST,
                message: "Job plan does not exist".to_owned(),
            })
    }

    fn of_business(&self, bk_biz_id: i64) -> impl Iterator<Item = &JobPlanDetail> {
        self.plans
            .iter()
            .filter(move |plan| plan.summary.bk_biz_id == Some(bk_biz_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> JobPlans {
        let config: crate::config::Config = toml::from_str(
            r#"
            [[job_plan]]
            bk_biz_id = 2
            id = 10
            name = "release"
            [[job_plan.step_list]]
            id = 1
            type = 2
            name = "push"
            [job_plan.step_list.file_info]
            timeout = 600
            source_speed_limit = 10
            [[job_plan.step_list.file_info.file_source_list]]
            file_list = ["/data/app.tgz"]
            [job_plan.step_list.file_info.file_source_list.server]
            ip_list = [{ bk_cloud_id = 0, ip = "10.0.0.1" }]
            [job_plan.step_list.file_info.file_destination]
            path = "/opt/"
            [job_plan.step_list.file_info.file_destination.server]
            host_id_list = [7]

            [[job_plan]]
            bk_biz_id = 2
            id = 11
            name = "config"

            [[job_plan]]
            bk_biz_id = 3
            job_plan_id = 12
            name = "other business"
            "#,
        )
        .unwrap();
        JobPlans::new(config.job_plans)
    }

    #[test]
    fn a_job_plan_in_toml_reads_as_jobs_detail() {
        let detail = world().detail(2, 10).unwrap();
        let file = detail.step_list[0].file_info.as_ref().unwrap();
        assert_eq!(file.timeout, Some(600));
        assert_eq!(
            file.file_source_list[0]
                .server
                .as_ref()
                .unwrap()
                .hosts
                .ip_list[0]
                .ip,
            "10.0.0.1"
        );
        assert_eq!(
            file.file_destination
                .server
                .as_ref()
                .unwrap()
                .hosts
                .host_id_list,
            [7]
        );
    }

    #[test]
    fn list_pages_one_business() {
        let plans = world();
        let all = plans.list(2, None, None);
        assert_eq!(
            (all.start, all.length, all.total),
            (0, DEFAULT_PAGE_LENGTH, 2)
        );
        let second = plans.list(2, Some(1), Some(1));
        assert_eq!(
            second.data.iter().map(|plan| plan.id).collect::<Vec<_>>(),
            [11]
        );
        assert_eq!(second.total, 2);
        assert!(plans.list(2, Some(5), Some(1)).data.is_empty());
        assert_eq!(plans.list(4, None, None).total, 0);
    }

    #[test]
    fn another_business_plan_is_unknown() {
        let plans = world();
        assert_eq!(
            plans.detail(2, 12).unwrap_err().code,
            code::TASK_PLAN_NOT_EXIST
        );
        assert_eq!(
            plans.detail(2, 99).unwrap_err().code,
            code::TASK_PLAN_NOT_EXIST
        );
        assert_eq!(plans.detail(3, 12).unwrap().summary.name, "other business");
    }
}
