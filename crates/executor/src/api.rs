//! The executor's view of JOB: the operations the scheduler needs, one implementation over
//! the HTTP client.
//!
//! The trait exists so the scheduler can be tested with a scripted fake; production and the
//! integration tests use [`BkJobApi`] against JOB or `jobsim`. What JOB's two API families
//! answer, and how, is `plan_bkjob`'s (its version-neutral calls on [`JobKey`]); what is
//! left here is the executor's policy: two-phase submission and its fallback.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use plan_bkjob::FileLogV3;
use plan_bkjob::script::FileFacts;
use plan_bkjob::{
    ApiError, ApiVersion, Client, HostLog, HostState, IpHost, JobKey, ListedJob, RunStatus,
    Snapshot, StartAnswer,
};
use plan_graph::JobRequest;

use crate::progress::{self, Estimate};

/// A job JOB created for a push.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct JobRef {
    /// API family it was created with (decides which status/log APIs apply).
    #[schemars(with = "ApiVersionSchema")]
    pub api: ApiVersion,
    /// Business.
    pub bk_biz_id: i64,
    /// The job.
    pub job_instance_id: i64,
    /// v3 returns it at submission; v2 learns it from the status.
    pub step_instance_id: Option<i64>,
    /// Created with `start_task=false` and not yet known started: [`JobApi::start`] is due.
    #[serde(default, skip_serializing_if = "is_false")]
    pub start_pending: bool,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if signature"
)]
fn is_false(value: &bool) -> bool {
    !*value
}

/// How a START of a two-phase job ([`JobApi::start`]) went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// JOB started the job on our request (or had, on an earlier request whose answer was lost).
    Started,
    /// The job was already running before the first START: this JOB ignores
    /// `start_task=false`, and later submissions use one phase.
    StartedByServer,
}

/// A step's state as [`JobApi::step_execution`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepExecution {
    /// The step's status.
    pub status: RunStatus,
    /// Its executions so far (0, plus one per retry).
    pub execute_count: i32,
}

/// One checksum script job ([`JobApi::checksums`]).
#[derive(Debug, Clone, Copy)]
pub struct ChecksumScript<'a> {
    /// The API family and business of the plan.
    pub api: ApiVersion,
    /// Business.
    pub bk_biz_id: i64,
    /// The job's name in JOB's history.
    pub task_name: &'a str,
    /// Execution account alias on every host.
    pub account: &'a str,
    /// The hosts.
    pub hosts: &'a [IpHost],
    /// Absolute paths to read on each.
    pub paths: &'a [String],
}

/// What a checksum script job read: its job id and, per host as JOB named it, the host's
/// files or why it could not be read.
pub type ChecksumRead = (
    i64,
    Vec<(IpHost, Result<BTreeMap<String, FileFacts>, String>)>,
);

impl JobRef {
    /// The job as `plan_bkjob`'s version-neutral calls name it.
    pub fn key(&self) -> JobKey {
        JobKey {
            api: self.api,
            bk_biz_id: self.bk_biz_id,
            job_instance_id: self.job_instance_id,
            step_instance_id: self.step_instance_id,
        }
    }
}

/// [`ApiVersion`] as the schemas show it (`plan_bkjob` does not depend on schemars).
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code, reason = "a schema, never built")]
pub(crate) enum ApiVersionSchema {
    /// `job/` on ESB.
    V2,
    /// `jobv3/` on ESB or the API gateway.
    V3,
}

/// What the executor needs from JOB.
pub trait JobApi: Send + Sync + 'static {
    /// Submits a push (exactly once per call: the implementation must not re-send a
    /// submission whose outcome is unknown). The executor passes the body it journaled: the
    /// body of `plan_graph::request_for` (v3: `start_task: false`), or its
    /// [`JobRequest::one_phase`] form when [`JobApi::two_phase`] is false.
    fn submit(
        &self,
        request: &JobRequest,
        bk_biz_id: i64,
    ) -> impl Future<Output = Result<JobRef, ApiError>> + Send;

    /// One status poll, with per-host results.
    fn status(&self, job: &JobRef) -> impl Future<Output = Result<Snapshot, ApiError>> + Send;

    /// Logs of these hosts (`cloud:ip` keys), for failure reports.
    fn host_logs(
        &self,
        job: &JobRef,
        hosts: &[HostState],
    ) -> impl Future<Output = Result<BTreeMap<String, HostLog>, ApiError>> + Send;

    /// `operate_job_instance` code 1.
    fn terminate(&self, job: &JobRef) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// How long the transfers of a running job still need, from JOB's file logs (size,
    /// speed and progress of each file) of `hosts`, the job's unfinished hosts. The poll
    /// loop sleeps until the estimated end instead of probing on its backoff. `Ok(None)`:
    /// the logs tell nothing usable (and the default: no log is read); the loop then keeps
    /// its backoff. Every call counts against the job's polling budget, so an implementation
    /// reads as little as it can (one host's log on v3).
    fn estimate(
        &self,
        job: &JobRef,
        hosts: &[HostState],
    ) -> impl Future<Output = Result<Option<Estimate>, ApiError>> + Send {
        let _ = (job, hosts);
        std::future::ready(Ok(None))
    }

    /// True when this request's job should be created without starting it
    /// (`start_task=false`): the returned job has `start_pending`, and nothing runs before
    /// [`JobApi::start`]. When false, the executor submits [`JobRequest::one_phase`].
    /// One-phase by default; a wrapper around [`BkJobApi`] must forward this and
    /// [`JobApi::start`].
    fn two_phase(&self, request: &JobRequest) -> bool {
        let _ = request;
        false
    }

    /// `operate_job_instance` code 2 for a job created with `start_task=false`. `again` is set
    /// when an earlier process may already have started it (a re-attached job): "already
    /// started" is then expected and proves nothing about the server.
    fn start(
        &self,
        job: &JobRef,
        again: bool,
    ) -> impl Future<Output = Result<StartOutcome, ApiError>> + Send {
        let _ = (job, again);
        std::future::ready(Ok(StartOutcome::Started))
    }

    /// `operate_step_instance` 13 (`ROLLING_CONTINUE`) on the job's file step: a rolling
    /// job waiting for a user (7) starts its next batch. The default refuses: an
    /// implementation that cannot operate steps never continues a batch.
    fn continue_rolling(&self, job: &JobRef) -> impl Future<Output = Result<(), ApiError>> + Send {
        let _ = job;
        std::future::ready(Err(ApiError::Decode {
            api: "operate_step_instance".into(),
            message: "this JobApi cannot continue a rolling batch".into(),
        }))
    }

    /// The hosts of one rolling batch (1-based) of a v3 job, with their statuses (JOB's
    /// `get_step_instance_status` with `batch`). `Ok(None)`: this implementation cannot
    /// tell (the default); the executor then cuts the job's host list by the batch sizes.
    fn batch_hosts(
        &self,
        job: &JobRef,
        batch: u32,
    ) -> impl Future<Output = Result<Option<Vec<HostState>>, ApiError>> + Send {
        let _ = (job, batch);
        std::future::ready(Ok(None))
    }

    /// The jobs of business `bk_biz_id` whose task name contains `name`, created within
    /// JOB's widest window, newest first (`plan_bkjob::Client::find_jobs`). `Ok(None)`: JOB
    /// cannot list jobs in this API family (v2), or this implementation does not (the
    /// default): no other run can be seen, and a run cannot be rebuilt from JOB.
    fn list_jobs(
        &self,
        api: ApiVersion,
        bk_biz_id: i64,
        name: &str,
    ) -> impl Future<Output = Result<Option<Vec<ListedJob>>, ApiError>> + Send {
        let _ = (api, bk_biz_id, name);
        std::future::ready(Ok(None))
    }

    /// True when a failed job's failed hosts can run again inside the same job
    /// (`operate_step_instance` code 2, `RETRY_FAIL_IP`, as JOB's UI does): a v3 job whose
    /// file step is known. False (the default): a retry is a new job for the failed hosts.
    fn retries_in_job(&self, job: &JobRef) -> bool {
        let _ = job;
        false
    }

    /// The file step's status and execution count (v3 `get_step_instance_status`): how a
    /// retry inside the job is known to have happened (its count went up). `Ok(None)`: this
    /// implementation cannot tell (the default).
    fn step_execution(
        &self,
        job: &JobRef,
    ) -> impl Future<Output = Result<Option<StepExecution>, ApiError>> + Send {
        let _ = job;
        std::future::ready(Ok(None))
    }

    /// `operate_step_instance` code 2 on the job's file step: its failed hosts run again
    /// inside the job. Only called when [`JobApi::retries_in_job`] is true.
    fn retry_failed_in_job(
        &self,
        job: &JobRef,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        let _ = job;
        std::future::ready(Err(ApiError::Decode {
            api: "operate_step_instance".into(),
            message: "this JobApi cannot retry inside a job".into(),
        }))
    }

    /// The entries of the job's file log for each of `hosts` (by `HostState::key`): each
    /// download with its source host, source path, destination and size, each upload with
    /// its size (v3 `batch_get_job_instance_ip_log`). `Ok(None)`: this API family or
    /// implementation has no such entries (v2, and the default).
    fn file_log_entries(
        &self,
        job: &JobRef,
        hosts: &[HostState],
    ) -> impl Future<Output = Result<Option<BTreeMap<String, Vec<FileLogV3>>>, ApiError>> + Send
    {
        let _ = (job, hosts);
        std::future::ready(Ok(None))
    }

    /// Runs the checksum script (`plan_bkjob::script`) over `paths` on `hosts` under
    /// `account` as one script job named `task_name`, waits for it, and reads what each host
    /// holds: the script job's id and, per host as JOB named it, its files or why it could
    /// not be read. `Err` when the job could not be run or read (the default: this
    /// implementation runs no script).
    fn checksums(
        &self,
        script: ChecksumScript<'_>,
    ) -> impl Future<Output = Result<ChecksumRead, String>> + Send {
        let _ = script;
        std::future::ready(Err("this JobApi runs no script".to_owned()))
    }
}

/// [`JobApi`] over [`plan_bkjob::Client`] (ESB or gateway, v2 or v3 by the job's family).
///
/// v3 submissions are two-phase by default: `fast_transfer_file` with `start_task=false`,
/// then (after the executor journaled the job id) `operate_job_instance` code 2. When JOB
/// shows it ignores `start_task` (the job was running before the first START: JOB before
/// 3.12), later submissions of this run are one-phase.
#[derive(Debug, Clone)]
pub struct BkJobApi {
    client: Client,
    two_phase: bool,
    /// Cleared when the server turned out to ignore `start_task=false`.
    start_task_supported: Arc<AtomicBool>,
}

impl BkJobApi {
    /// Wraps a client (two-phase v3 submission on).
    pub fn new(client: Client) -> Self {
        BkJobApi {
            client,
            two_phase: true,
            start_task_supported: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Turns two-phase v3 submission on or off (off: `start_task` is never sent).
    #[must_use]
    pub fn with_two_phase(mut self, on: bool) -> Self {
        self.two_phase = on;
        self
    }

    /// False once the server has shown it ignores `start_task=false`.
    pub fn start_task_supported(&self) -> bool {
        self.start_task_supported.load(Ordering::Relaxed)
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `operate_step_instance` on the job's file step, in the job's business scope.
    async fn operate_file_step(
        &self,
        job: &JobRef,
        operation: plan_bkjob::StepOperation,
    ) -> Result<(), ApiError> {
        let scope = plan_bkjob::scope_for_biz(job.bk_biz_id);
        let request = plan_bkjob::OperateStepInstanceRequest {
            bk_biz_id: None,
            bk_scope_type: Some(scope.as_str().to_owned()),
            bk_scope_id: Some(job.bk_biz_id.to_string()),
            job_instance_id: job.job_instance_id,
            step_instance_id: job.step_instance_id.unwrap_or_default(),
            operation_code: operation,
        };
        self.client
            .operate_step(job.api, &request)
            .await
            .map(|_| ())
    }
}

impl JobApi for BkJobApi {
    fn two_phase(&self, request: &JobRequest) -> bool {
        matches!(request, JobRequest::V3(_)) && self.two_phase && self.start_task_supported()
    }

    async fn submit(&self, request: &JobRequest, bk_biz_id: i64) -> Result<JobRef, ApiError> {
        // The submission seam: v2 has one phase; a v3 body from `plan_graph` carries
        // start_task=false, so JOB creates the job unstarted, a lost answer leaves a job that
        // never runs, and the executor journals the id before `start` lets it run. The body
        // is sent as given (the executor already made it one-phase when this JOB ignores
        // start_task), unless two phases are switched off here. See ARCHITECTURE.md.
        let one_phase;
        let request = if self.two_phase {
            request
        } else {
            one_phase = request.one_phase();
            &one_phase
        };
        let start_pending = request.creates_unstarted();
        let (api, data) = match request {
            JobRequest::V2(r) => (ApiVersion::V2, self.client.submit_v2(r).await?),
            JobRequest::V3(r) => (ApiVersion::V3, self.client.submit_v3(r).await?),
        };
        Ok(JobRef {
            api,
            bk_biz_id,
            job_instance_id: data.job_instance_id,
            step_instance_id: data.step_instance_id,
            start_pending,
        })
    }

    async fn start(&self, job: &JobRef, again: bool) -> Result<StartOutcome, ApiError> {
        match self.client.start(&job.key()).await {
            // A START JOB accepted proves it honours start_task (a JOB before 3.12 has no job
            // in status 1 to start): undo a detection that an unrelated 1241015 misled.
            Ok(StartAnswer::Started) => {
                self.start_task_supported.store(true, Ordering::Relaxed);
                Ok(StartOutcome::Started)
            }
            Ok(StartAnswer::AlreadyStarted) => Ok(StartOutcome::Started),
            Ok(StartAnswer::StartedByServer) if again => Ok(StartOutcome::Started),
            // The job ran before anyone asked: this JOB ignores start_task. Nothing is lost
            // (the job is running once, as a one-phase submission would have), but later
            // submissions gain nothing from two phases.
            Ok(StartAnswer::StartedByServer) => {
                self.start_task_supported.store(false, Ordering::Relaxed);
                Ok(StartOutcome::StartedByServer)
            }
            Err(e) => Err(e),
        }
    }

    async fn status(&self, job: &JobRef) -> Result<Snapshot, ApiError> {
        self.client.job_status(&job.key()).await
    }

    async fn host_logs(
        &self,
        job: &JobRef,
        hosts: &[HostState],
    ) -> Result<BTreeMap<String, HostLog>, ApiError> {
        self.client.host_logs(&job.key(), hosts).await
    }

    async fn estimate(
        &self,
        job: &JobRef,
        hosts: &[HostState],
    ) -> Result<Option<Estimate>, ApiError> {
        let per_host = self.client.file_progress(&job.key(), hosts).await?;
        Ok(progress::estimate(per_host.iter().map(Vec::as_slice)))
    }

    async fn terminate(&self, job: &JobRef) -> Result<(), ApiError> {
        self.client.terminate(&job.key()).await
    }

    async fn continue_rolling(&self, job: &JobRef) -> Result<(), ApiError> {
        self.operate_file_step(job, plan_bkjob::StepOperation::RollingContinue)
            .await
    }

    async fn batch_hosts(
        &self,
        job: &JobRef,
        batch: u32,
    ) -> Result<Option<Vec<HostState>>, ApiError> {
        let (ApiVersion::V3, Some(step_instance_id)) = (job.api, job.step_instance_id) else {
            return Ok(None);
        };
        let request = plan_bkjob::step_status::StepInstanceStatusRequest {
            bk_scope_type: plan_bkjob::scope_for_biz(job.bk_biz_id).as_str().to_owned(),
            bk_scope_id: job.bk_biz_id.to_string(),
            job_instance_id: job.job_instance_id,
            step_instance_id,
            execute_count: None,
            batch: Some(i32::try_from(batch).unwrap_or(i32::MAX)),
            max_host_num_per_group: None,
            status: None,
        };
        let groups = self
            .client
            .step_status_v3(&request)
            .await?
            .step_result_group_list;
        let listed = groups
            .iter()
            .map(|g| g.host_result_list.len())
            .sum::<usize>();
        let counted = groups.iter().filter_map(|g| g.host_size).sum::<i64>();
        // A list JOB cut (more hosts counted than listed) does not name the whole batch.
        if i64::try_from(listed).unwrap_or(i64::MAX) < counted {
            return Ok(None);
        }
        let hosts = groups
            .into_iter()
            .flat_map(|g| g.host_result_list)
            .map(|h| HostState {
                bk_host_id: h.bk_host_id,
                bk_cloud_id: h.bk_cloud_id.unwrap_or(0),
                ip: h
                    .ip
                    .filter(|ip| !ip.is_empty())
                    .or(h.ipv6)
                    .unwrap_or_default(),
                status: h.status,
                error_code: None,
            })
            .collect();
        Ok(Some(hosts))
    }

    async fn list_jobs(
        &self,
        api: ApiVersion,
        bk_biz_id: i64,
        name: &str,
    ) -> Result<Option<Vec<ListedJob>>, ApiError> {
        self.client.find_jobs(api, bk_biz_id, name).await
    }

    fn retries_in_job(&self, job: &JobRef) -> bool {
        job.api == ApiVersion::V3 && job.step_instance_id.is_some()
    }

    async fn step_execution(&self, job: &JobRef) -> Result<Option<StepExecution>, ApiError> {
        let Some(step_instance_id) = job.step_instance_id else {
            return Ok(None);
        };
        let scope = plan_bkjob::scope_for_biz(job.bk_biz_id);
        let request = plan_bkjob::step_status::StepInstanceStatusRequest {
            bk_scope_type: scope.as_str().to_owned(),
            bk_scope_id: job.bk_biz_id.to_string(),
            job_instance_id: job.job_instance_id,
            step_instance_id,
            execute_count: None,
            batch: None,
            max_host_num_per_group: Some(1),
            status: None,
        };
        let step = self.client.step_status_v3(&request).await?;
        Ok(Some(StepExecution {
            status: step.status,
            execute_count: step.execute_count.unwrap_or(0),
        }))
    }

    async fn retry_failed_in_job(&self, job: &JobRef) -> Result<(), ApiError> {
        self.operate_file_step(job, plan_bkjob::StepOperation::RetryFailIp)
            .await
    }

    async fn file_log_entries(
        &self,
        job: &JobRef,
        hosts: &[HostState],
    ) -> Result<Option<BTreeMap<String, Vec<FileLogV3>>>, ApiError> {
        if job.api != ApiVersion::V3 {
            return Ok(None);
        }
        self.client
            .file_log_entries_v3(&job.key(), hosts)
            .await
            .map(Some)
    }

    async fn checksums(&self, script: ChecksumScript<'_>) -> Result<ChecksumRead, String> {
        let job = crate::refresh::ChecksumJob {
            api: script.api,
            bk_biz_id: script.bk_biz_id,
            task_name: script.task_name,
            account: script.account,
            hosts: script.hosts,
        };
        let settings = crate::refresh::RefreshSettings::default();
        crate::refresh::run_checksums(&self.client, &job, script.paths, settings)
            .await
            .map(|(key, facts)| (key.job_instance_id, facts))
            .map_err(|e| e.to_string())
    }
}
