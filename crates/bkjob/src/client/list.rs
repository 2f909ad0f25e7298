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
