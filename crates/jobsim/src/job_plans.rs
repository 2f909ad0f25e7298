//! The world's saved job plans (`[[job_plan]]` in `jobsim.toml`), as JOB's
//! `get_job_plan_list` and `get_job_plan_detail` answer them (bk-job's `EsbPlanV3Resource`):
//! each entry is the detail's `data` in JOB's field names, written as TOML.
//!
//! JOB's order: the scope's fields, the scope's existence, then the request's own check
//! (`job_plan_id` positive). A plan is looked up by business and id together, so another
//! business's plan is as unknown as a missing one (`1243009`).

use plan_bkjob::code;
use plan_bkjob::job_plan::{JobPlanDetail, JobPlanPage, JobPlanSummary};
use serde_json::Value;

use crate::coerce::Params;
use crate::engine::Engine;
use crate::front::{Front, JobReply};
use crate::submit::{bad_t, check_scope_exists, missing_or_illegal, scope_of};
use crate::world::Scope;

/// JOB's page size when a request gives none (or one below 1).
const DEFAULT_PAGE_LENGTH: i64 = 20;

type Check<T> = Result<T, JobReply>;

/// The job plans of every business, in the order `jobsim.toml` lists them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JobPlans<'a> {
    plans: &'a [JobPlanDetail],
}

/// JOB's refusal: its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: i64,
    pub(crate) message: String,
}

/// The list's filters (`EsbGetPlanListV3Request`); `None` matches every plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListFilter {
    pub(crate) job_template_id: Option<i64>,
    pub(crate) creator: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) create_time: (Option<i64>, Option<i64>),
    pub(crate) last_modify_user: Option<String>,
    pub(crate) last_modify_time: (Option<i64>, Option<i64>),
}

impl ListFilter {
    fn matches(&self, plan: &JobPlanSummary) -> bool {
        let same = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        let within = |(from, to): (Option<i64>, Option<i64>), at: Option<i64>| {
            from.is_none_or(|f| at.is_some_and(|t| t >= f))
                && to.is_none_or(|e| at.is_some_and(|t| t <= e))
        };
        self.job_template_id
            .is_none_or(|id| plan.job_template_id == Some(id))
            && same(&self.creator, &plan.creator)
            && same(&self.last_modify_user, &plan.last_modify_user)
            // JOB's `LIKE %name%`, under MySQL's case-insensitive collation.
            && self.name.as_ref().is_none_or(|n| {
                plan.name.to_lowercase().contains(&n.to_lowercase())
            })
            && within(self.create_time, plan.create_time)
            && within(self.last_modify_time, plan.last_modify_time)
    }
}

impl<'a> JobPlans<'a> {
    pub(crate) fn new(plans: &'a [JobPlanDetail]) -> JobPlans<'a> {
        JobPlans { plans }
    }

    /// One page of a business's plans that pass `filter` (JOB's `start`, from 0, and
    /// `length`).
    pub(crate) fn list(
        &self,
        bk_biz_id: i64,
        filter: &ListFilter,
        start: Option<i64>,
        length: Option<i64>,
    ) -> JobPlanPage {
        let start = start.unwrap_or(0).max(0);
        let length = length
            .filter(|length| *length >= 1)
            .unwrap_or(DEFAULT_PAGE_LENGTH);
        let of_business: Vec<_> = self
            .of_business(bk_biz_id)
            .filter(|plan| filter.matches(&plan.summary))
            .collect();
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

    fn of_business(&self, bk_biz_id: i64) -> impl Iterator<Item = &'a JobPlanDetail> {
        self.plans
            .iter()
            .filter(move |plan| plan.summary.bk_biz_id == Some(bk_biz_id))
    }
}

/// v3 `get_job_plan_list`.
pub(crate) fn v3_plan_list(engine: &Engine, p: &Params) -> JobReply {
    match plan_list(engine, p) {
        Ok(data) => JobReply::Ok(data),
        Err(refusal) => refusal,
    }
}

fn plan_list(engine: &Engine, p: &Params) -> Check<Value> {
    let filter = ListFilter {
        job_template_id: bad_t(p.i64("job_template_id"))?,
        creator: non_blank(bad_t(p.string("creator"))?),
        name: non_blank(bad_t(p.string("name"))?),
        create_time: (
            bad_t(p.i64("create_time_start"))?,
            bad_t(p.i64("create_time_end"))?,
        ),
        last_modify_user: non_blank(bad_t(p.string("last_modify_user"))?),
        last_modify_time: (
            bad_t(p.i64("last_modify_time_start"))?,
            bad_t(p.i64("last_modify_time_end"))?,
        ),
    };
    let start = bad_t(p.i64("start"))?;
    let length = bad_t(p.i64("length"))?;
    let biz = business(engine, p)?;
    let page = JobPlans::new(&engine.world.config().job_plans).list(biz, &filter, start, length);
    let mut page = serde_json::to_value(page).unwrap_or(Value::Null);
    if let Some(plans) = page.get_mut("data").and_then(Value::as_array_mut) {
        plans.iter_mut().for_each(|plan| with_scope(plan, biz));
    }
    Ok(page)
}

/// v3 `get_job_plan_detail`.
pub(crate) fn v3_plan_detail(engine: &Engine, p: &Params, front: Front, is_get: bool) -> JobReply {
    match plan_detail(engine, p, front, is_get) {
        Ok(data) => JobReply::Ok(data),
        Err(refusal) => refusal,
    }
}

fn plan_detail(engine: &Engine, p: &Params, front: Front, is_get: bool) -> Check<Value> {
    // The GET handler's one required `@RequestParam`.
    if front == Front::Gateway && is_get && !p.has("job_plan_id") {
        return Err(JobReply::err(code::BAD_REQUEST, "Bad Request"));
    }
    let job_plan_id = bad_t(p.i64("job_plan_id"))?;
    let biz = business(engine, p)?;
    let job_plan_id = job_plan_id
        .filter(|id| *id >= 1)
        .ok_or_else(|| missing_or_illegal("job_plan_id"))?;
    JobPlans::new(&engine.world.config().job_plans)
        .detail(biz, job_plan_id)
        .map(|plan| {
            let mut plan = serde_json::to_value(plan).unwrap_or(Value::Null);
            with_scope(&mut plan, biz);
            plan
        })
        .map_err(|refusal| JobReply::err(refusal.code, refusal.message))
}

/// The business the request names (a business set holds no plans of its own), once the
/// scope is known to exist.
fn business(engine: &Engine, p: &Params) -> Check<i64> {
    let scope = scope_of(p)?;
    check_scope_exists(&engine.world, &scope)?;
    Ok(biz_of(&scope).unwrap_or(-1))
}

fn biz_of(scope: &Scope) -> Option<i64> {
    (scope.kind == "biz")
        .then(|| i64::try_from(scope.id).ok())
        .flatten()
}

/// JOB writes each plan's scope beside its `bk_biz_id` (`EsbPlanBasicInfoV3DTO`).
fn with_scope(plan: &mut Value, bk_biz_id: i64) {
    if let Some(plan) = plan.as_object_mut() {
        plan.insert("bk_scope_type".into(), "biz".into());
        plan.insert("bk_scope_id".into(), bk_biz_id.to_string().into());
    }
}

fn non_blank(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> JobPlans<'static> {
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
        JobPlans::new(Box::leak(config.job_plans.into_boxed_slice()))
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
        let all = plans.list(2, &ListFilter::default(), None, None);
        assert_eq!(
            (all.start, all.length, all.total),
            (0, DEFAULT_PAGE_LENGTH, 2)
        );
        let second = plans.list(2, &ListFilter::default(), Some(1), Some(1));
        assert_eq!(
            second.data.iter().map(|plan| plan.id).collect::<Vec<_>>(),
            [11]
        );
        assert_eq!(second.total, 2);
        assert!(
            plans
                .list(2, &ListFilter::default(), Some(5), Some(1))
                .data
                .is_empty()
        );
        assert_eq!(plans.list(4, &ListFilter::default(), None, None).total, 0);
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
