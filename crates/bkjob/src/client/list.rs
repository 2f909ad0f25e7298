//! Finding jobs by name: v3's `get_job_instance_list`, paged and bounded. JOB's v2 API has no
//! job list, so over v2 the answer is "cannot tell" ([`Client::find_jobs`] returns `None`),
//! never "none".

use super::{ApiError, Client, Kind, to_body};
use crate::ApiVersion;
use crate::common::scope_for_biz;
use crate::routes::Route;
use crate::status::RunStatus;
use crate::v3::{JobInstanceListRequest, JobInstanceListV3};

/// The most jobs [`Client::find_jobs`] reads (pages of [`JobInstanceListRequest::MAX_LENGTH`]):
/// a bound on the calls one search costs, whatever JOB holds.
pub const FIND_JOBS_MAX: usize = 10_000;

/// How far past our clock the creation window reaches: a job created by a JOB whose clock is
/// ahead of ours is still found.
const CLOCK_SLACK_MS: i64 = 10 * 60 * 1000;

/// One job JOB listed, as a caller needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedJob {
    /// The job.
    pub job_instance_id: i64,
    /// Its task name (empty when JOB sent none).
    pub name: String,
    /// Who started it (JOB's `operator`; empty when JOB sent none).
    pub operator: String,
    /// Its status.
    pub status: RunStatus,
    /// Created (epoch milliseconds).
    pub create_time: Option<i64>,
    /// Started (epoch milliseconds).
    pub start_time: Option<i64>,
}

impl Client {
    /// v3 `get_job_instance_list`: one page (GET with a query through the gateway, POST
    /// through ESB).
    pub async fn job_list_v3(
        &self,
        request: &JobInstanceListRequest,
    ) -> Result<JobInstanceListV3, ApiError> {
        self.call(
            Route::JobInstanceListV3,
            Kind::Idempotent,
            to_body(request)?,
        )
        .await
    }

    /// The jobs of business `bk_biz_id` whose task name contains `name` (JOB matches
    /// `%name%`: callers check the names they get), created within JOB's widest window (the
    /// last 30 days), newest first, at most [`FIND_JOBS_MAX`]. `Ok(None)` over v2, whose
    /// API cannot list jobs.
    pub async fn find_jobs(
        &self,
        api: ApiVersion,
        bk_biz_id: i64,
        name: &str,
    ) -> Result<Option<Vec<ListedJob>>, ApiError> {
        if api == ApiVersion::V2 {
            return Ok(None);
        }
        let end = now_ms() + CLOCK_SLACK_MS;
        let mut request = JobInstanceListRequest {
            bk_scope_type: scope_for_biz(bk_biz_id).as_str().to_owned(),
            bk_scope_id: bk_biz_id.to_string(),
            create_time_start: end - JobInstanceListRequest::MAX_CREATE_TIME_SPAN_MS,
            create_time_end: end,
            job_instance_id: None,
            operator: None,
            name: Some(name.to_owned()),
            launch_mode: None,
            job_type: None,
            status: None,
            ip: None,
            start: Some(0),
            length: Some(JobInstanceListRequest::MAX_LENGTH),
        };
        let mut jobs = Vec::new();
        loop {
            let page = self.job_list_v3(&request).await?;
            let read = page.data.len();
            jobs.extend(page.data.into_iter().map(|job| ListedJob {
                job_instance_id: job.job_instance_id,
                name: job.name.unwrap_or_default(),
                operator: job.operator.unwrap_or_default(),
                status: job.status,
                create_time: job.create_time,
                start_time: job.start_time,
            }));
            let offset = request.start.unwrap_or(0) + read as i64;
            if read == 0 || offset >= page.total || jobs.len() >= FIND_JOBS_MAX {
                jobs.truncate(FIND_JOBS_MAX);
                return Ok(Some(jobs));
            }
            request.start = Some(offset);
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wiremock::matchers::{body_partial_json, method, path};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    use super::*;
    use crate::client::{ClientConfig, Credentials, Endpoint, RetryPolicy, UserAuth};

    fn client(server: &MockServer) -> Client {
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
        Client::new(
            Endpoint::parse(&server.uri(), false).expect("url"),
            creds,
            config,
        )
        .expect("client")
    }

    /// A page of `get_job_instance_list` for the request's `start`, out of `total` jobs.
    fn page(request: &Request, total: i64) -> ResponseTemplate {
        let body: serde_json::Value = serde_json::from_slice(&request.body).expect("json");
        let start = body["start"].as_i64().unwrap_or(0);
        let length = body["length"].as_i64().unwrap_or(20);
        let jobs: Vec<serde_json::Value> = (start..(start + length).min(total))
            .map(|i| {
                serde_json::json!({"job_instance_id": i + 1, "name": format!("p/a#{:08x}", i),
                    "operator": "admin", "status": 2, "create_time": 1_700_000_000_000_i64 + i})
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "result": true, "code": 0, "job_request_id": "x",
            "data": {"start": start, "length": length, "total": total, "data": jobs}
        }))
    }

    #[tokio::test]
    async fn every_page_is_read_within_the_window_and_the_bound() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/c/compapi/v2/jobv3/get_job_instance_list/"))
            .and(body_partial_json(
                serde_json::json!({"bk_scope_type": "biz", "bk_scope_id": "2", "name": "p/"}),
            ))
            .respond_with(|r: &Request| page(r, 2_500))
            .mount(&server)
            .await;
        let jobs = client(&server)
            .find_jobs(ApiVersion::V3, 2, "p/")
            .await
            .expect("list")
            .expect("v3 lists");
        assert_eq!(jobs.len(), 2_500);
        assert_eq!(jobs[2_499].job_instance_id, 2_500);
        assert_eq!(jobs[0].operator, "admin");
        let requests = server.received_requests().await.expect("recorded");
        assert_eq!(requests.len(), 3, "pages of 1,000");
        for r in &requests {
            let body: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
            let span = body["create_time_end"].as_i64().unwrap_or(0)
                - body["create_time_start"].as_i64().unwrap_or(0);
            assert_eq!(span, JobInstanceListRequest::MAX_CREATE_TIME_SPAN_MS);
            assert_eq!(body["length"], 1000);
        }
    }

    #[tokio::test]
    async fn a_jobs_list_larger_than_the_bound_is_cut_there() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(|r: &Request| page(r, 1_000_000))
            .mount(&server)
            .await;
        let jobs = client(&server)
            .find_jobs(ApiVersion::V3, 2, "p/")
            .await
            .expect("list")
            .expect("v3 lists");
        assert_eq!(jobs.len(), FIND_JOBS_MAX);
        let calls = server.received_requests().await.expect("recorded").len();
        assert_eq!(calls, FIND_JOBS_MAX / 1000);
    }

    #[tokio::test]
    async fn v2_cannot_list_and_asks_nothing() {
        let server = MockServer::start().await;
        let found = client(&server).find_jobs(ApiVersion::V2, 2, "p/").await;
        assert!(matches!(found, Ok(None)));
        assert!(
            server
                .received_requests()
                .await
                .expect("recorded")
                .is_empty()
        );
    }
}
