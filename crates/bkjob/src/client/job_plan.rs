//! Reading JOB's saved job plans (`plan import`): v3 `get_job_plan_list`, every page within a
//! bound, and `get_job_plan_detail`.

use super::{ApiError, Client, Kind, to_body};
use crate::code;
use crate::common::scope_for_biz;
use crate::job_plan::JobPlanSummary;
use crate::job_plan::{JobPlanDetail, JobPlanDetailRequest, JobPlanListRequest, JobPlanPage};
use crate::routes::Route;

/// The page size [`Client::job_plans`] asks for. JOB's plan list sets no upper bound on
/// `length`; 100 keeps each answer small.
pub const JOB_PLAN_PAGE_LENGTH: i64 = 100;

/// The most plans [`Client::job_plans`] reads: a bound on the calls one listing costs,
/// whatever JOB holds (and on a JOB that keeps announcing more).
pub const JOB_PLANS_MAX: usize = 5_000;

/// A business's job plans as far as they were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPlanListing {
    /// The plans, in JOB's order.
    pub plans: Vec<JobPlanSummary>,
    /// How many plans JOB says the business has (more than `plans` when the listing stopped
    /// at [`JOB_PLANS_MAX`]).
    pub total: i64,
}

impl Client {
    /// v3 `get_job_plan_list`: one page (GET with a query through the gateway, POST through
    /// ESB).
    pub async fn job_plan_page(
        &self,
        request: &JobPlanListRequest,
    ) -> Result<JobPlanPage, ApiError> {
        self.call(Route::JobPlanListV3, Kind::Idempotent, to_body(request)?)
            .await
    }

    /// Every job plan of business `bk_biz_id`, page after page, at most [`JOB_PLANS_MAX`].
    pub async fn job_plans(&self, bk_biz_id: i64) -> Result<JobPlanListing, ApiError> {
        let mut request = JobPlanListRequest {
            bk_scope_type: scope_for_biz(bk_biz_id).as_str().to_owned(),
            bk_scope_id: bk_biz_id.to_string(),
            start: Some(0),
            length: Some(JOB_PLAN_PAGE_LENGTH),
            ..JobPlanListRequest::default()
        };
        let mut plans = Vec::new();
        loop {
            let page = self.job_plan_page(&request).await?;
            let read = page.data.len();
            plans.extend(page.data);
            let offset = request.start.unwrap_or(0) + read as i64;
            if read == 0 || offset >= page.total || plans.len() >= JOB_PLANS_MAX {
                plans.truncate(JOB_PLANS_MAX);
                let total = page.total.max(plans.len() as i64);
                return Ok(JobPlanListing { plans, total });
            }
            request.start = Some(offset);
        }
    }

    /// v3 `get_job_plan_detail` of one plan of business `bk_biz_id`. A plan JOB does not
    /// have (in this business) is [`code::TASK_PLAN_NOT_EXIST`], whether JOB says so or, as
    /// older versions do, answers success with no data.
    pub async fn job_plan_detail(
        &self,
        bk_biz_id: i64,
        job_plan_id: i64,
    ) -> Result<JobPlanDetail, ApiError> {
        let request = JobPlanDetailRequest {
            bk_scope_type: scope_for_biz(bk_biz_id).as_str().to_owned(),
            bk_scope_id: bk_biz_id.to_string(),
            job_plan_id,
        };
        let detail: Option<JobPlanDetail> = self
            .call(Route::JobPlanDetailV3, Kind::Idempotent, to_body(&request)?)
            .await?;
        detail.ok_or_else(|| ApiError::Api {
            api: Route::JobPlanDetailV3.name().to_owned(),
            code: code::TASK_PLAN_NOT_EXIST,
            message: format!("job plan {job_plan_id} does not exist in business {bk_biz_id}"),
            permission: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    use super::*;
    use crate::client::{ClientConfig, Credentials, Endpoint, RetryPolicy, UserAuth};

    fn client(server: &MockServer, gateway: bool) -> Client {
        let config = ClientConfig {
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_millis(500),
            retry: RetryPolicy {
                max_attempts: 2,
                initial_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
                max_total: Duration::from_secs(5),
            },
        };
        let creds = Credentials::new("app", "secret-xyz", UserAuth::Username("admin".into()));
        let base = if gateway {
            format!("{}/api/bk-job/prod", server.uri())
        } else {
            server.uri()
        };
        Client::new(Endpoint::parse(&base, false).expect("url"), creds, config).expect("client")
    }

    fn ok(data: serde_json::Value) -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "result": true, "code": 0, "message": "", "data": data
        }))
    }

    /// A page of plans for the request's `start`, out of `total`.
    fn page(request: &Request, total: i64) -> ResponseTemplate {
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json");
        let start = body["start"].as_i64().unwrap_or(0);
        let length = body["length"].as_i64().unwrap_or(20);
        let plans: Vec<serde_json::Value> = (start..(start + length).min(total))
            .map(|i| serde_json::json!({"id": i + 1, "name": format!("plan {i}")}))
            .collect();
        ok(serde_json::json!({"start": start, "length": length, "total": total, "data": plans}))
    }

    #[tokio::test]
    async fn every_page_is_read() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/c/compapi/v2/jobv3/get_job_plan_list/"))
            .respond_with(|r: &Request| page(r, 250))
            .mount(&server)
            .await;
        let listing = client(&server, false).job_plans(2).await.expect("list");
        assert_eq!(listing.plans.len(), 250);
        assert_eq!(listing.total, 250);
        assert_eq!(listing.plans[249].id, 250);
        assert_eq!(server.received_requests().await.expect("rec").len(), 3);
    }

    #[tokio::test]
    async fn a_listing_larger_than_the_bound_stops_there() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(|r: &Request| page(r, 1_000_000))
            .mount(&server)
            .await;
        let listing = client(&server, false).job_plans(2).await.expect("list");
        assert_eq!(listing.plans.len(), JOB_PLANS_MAX);
        assert_eq!(listing.total, 1_000_000);
        let calls = server.received_requests().await.expect("rec").len();
        assert_eq!(calls, JOB_PLANS_MAX / JOB_PLAN_PAGE_LENGTH as usize);
    }

    #[tokio::test]
    async fn the_gateway_is_asked_by_get_with_a_query() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/bk-job/prod/api/v3/get_job_plan_detail"))
            .and(query_param("job_plan_id", "7"))
            .and(query_param("bk_scope_id", "2"))
            .respond_with(ok(
                serde_json::json!({"id": 7, "name": "release", "step_list": []}),
            ))
            .mount(&server)
            .await;
        let detail = client(&server, true)
            .job_plan_detail(2, 7)
            .await
            .expect("detail");
        assert_eq!(detail.summary.name, "release");
    }

    /// Older JOBs answer an unknown plan with success and `data: null`.
    #[tokio::test]
    async fn no_data_is_a_missing_plan() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ok(serde_json::Value::Null))
            .mount(&server)
            .await;
        let error = client(&server, false)
            .job_plan_detail(2, 9)
            .await
            .expect_err("missing");
        assert_eq!(error.code(), Some(code::TASK_PLAN_NOT_EXIST));
        assert!(error.to_string().contains("job plan 9"), "{error}");
    }
}
