//! The executor's view of JOB: four operations, one implementation over the HTTP client.
//!
//! The trait exists so the scheduler can be tested with a scripted fake; production and the
//! integration tests use [`BkJobApi`] against JOB or `jobsim`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use plan_bkjob::{
    ApiError, BatchIpLogRequest, Client, FileMode, HostStatus, IpHost, OperateJobInstanceRequest,
    OperationCode, RunStatus, StartAnswer, scope_for_biz,
};
use plan_graph::JobRequest;
use plan_parser::Api;

use crate::progress::{self, Estimate};

/// A job JOB created for a push.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct JobRef {
    /// API family it was created with (decides which status/log APIs apply).
    pub api: Api2,
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

/// [`plan_parser::Api`], serialisable (the journal stores it).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Api2 {
    /// v2.
    V2,
    /// v3.
    V3,
}

impl From<Api> for Api2 {
    fn from(api: Api) -> Self {
        match api {
            Api::V2 => Api2::V2,
            Api::V3 => Api2::V3,
        }
    }
}

/// One host in a status answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostState {
    /// BK-Net.
    pub bk_cloud_id: i64,
    /// Address.
    pub ip: String,
    /// Status.
    pub status: HostStatus,
    /// GSE code (v3 reports it in the status; v2 only in the log).
    pub error_code: Option<i64>,
}

impl HostState {
    /// `cloud:ip`.
    pub fn key(&self) -> String {
        IpHost::new(self.bk_cloud_id, self.ip.clone()).to_string()
    }
}

/// A job's state at one poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// JOB's `is_finished` / `finished`: the only signal to stop polling.
    pub finished: bool,
    /// Job status.
    pub status: RunStatus,
    /// The file step, when known.
    pub step_instance_id: Option<i64>,
    /// Target hosts.
    pub hosts: Vec<HostState>,
}

/// A failed host's log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostLog {
    /// GSE code from the log API (v2 reports it only here).
    pub error_code: Option<i64>,
    /// Unescaped log text.
    pub content: String,
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

    /// v2 has one log call for the whole job: the lines of each of `hosts`, unescaped.
    async fn v2_host_logs(
        &self,
        job: &JobRef,
        hosts: &[HostState],
    ) -> Result<BTreeMap<String, HostLog>, ApiError> {
        let steps = self
            .client
            .log_v2(job.bk_biz_id, job.job_instance_id)
            .await?;
        let wanted: BTreeSet<String> = hosts.iter().map(HostState::key).collect();
        let mut out = BTreeMap::new();
        for log in steps
            .into_iter()
            .flat_map(|step| step.step_results)
            .flat_map(|group| group.ip_logs)
        {
            let key = IpHost::new(log.bk_cloud_id, log.ip.clone()).to_string();
            if wanted.contains(&key) {
                let content =
                    plan_bkjob::unescape_log(log.log_content.as_deref().unwrap_or_default());
                out.insert(
                    key,
                    HostLog {
                        error_code: log.error_code,
                        content,
                    },
                );
            }
        }
        Ok(out)
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
            JobRequest::V2(r) => (Api2::V2, self.client.submit_v2(r).await?),
            JobRequest::V3(r) => (Api2::V3, self.client.submit_v3(r).await?),
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
        let scope = scope_for_biz(job.bk_biz_id);
        let answer = self
            .client
            .start_v3(
                scope.as_str(),
                &job.bk_biz_id.to_string(),
                job.job_instance_id,
            )
            .await;
        match answer {
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
        match job.api {
            Api2::V2 => {
                let s = self
                    .client
                    .status_v2(job.bk_biz_id, job.job_instance_id)
                    .await?;
                let step = s.blocks.iter().flat_map(|b| b.step_instances.iter()).next();
                Ok(Snapshot {
                    finished: s.is_finished,
                    status: s
                        .job_instance
                        .as_ref()
                        .map_or(RunStatus::Unknown(0), |j| j.status),
                    step_instance_id: step.map(|st| st.step_instance_id),
                    hosts: step
                        .map(|st| {
                            st.step_ip_status
                                .iter()
                                .map(|h| HostState {
                                    bk_cloud_id: h.bk_cloud_id,
                                    ip: h.ip.clone(),
                                    status: h.status,
                                    error_code: None,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            }
            Api2::V3 => {
                let scope = scope_for_biz(job.bk_biz_id);
                let s = self
                    .client
                    .status_v3(
                        scope.as_str(),
                        &job.bk_biz_id.to_string(),
                        job.job_instance_id,
                        true,
                    )
                    .await?;
                let step = s.step_instance_list.first();
                Ok(Snapshot {
                    finished: s.finished,
                    status: s
                        .job_instance
                        .as_ref()
                        .map_or(RunStatus::Unknown(0), |j| j.status),
                    step_instance_id: step.map(|st| st.step_instance_id),
                    hosts: step
                        .and_then(|st| st.step_ip_result_list.as_ref())
                        .map(|list| {
                            list.iter()
                                .map(|h| HostState {
                                    bk_cloud_id: h.bk_cloud_id,
                                    ip: h.ip.clone(),
                                    status: h.status,
                                    error_code: h.error_code,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            }
        }
    }

    async fn host_logs(
        &self,
        job: &JobRef,
        hosts: &[HostState],
    ) -> Result<BTreeMap<String, HostLog>, ApiError> {
        let mut out = BTreeMap::new();
        match job.api {
            Api2::V2 => return self.v2_host_logs(job, hosts).await,
            Api2::V3 => {
                let Some(step) = job.step_instance_id else {
                    return Ok(out);
                };
                let scope = scope_for_biz(job.bk_biz_id);
                for chunk in hosts.chunks(500) {
                    let request = BatchIpLogRequest {
                        bk_scope_type: scope.as_str().to_owned(),
                        bk_scope_id: job.bk_biz_id.to_string(),
                        job_instance_id: job.job_instance_id,
                        step_instance_id: step,
                        host_id_list: None,
                        ip_list: Some(
                            chunk
                                .iter()
                                .map(|h| IpHost::new(h.bk_cloud_id, h.ip.clone()))
                                .collect(),
                        ),
                    };
                    let logs = self.client.batch_ip_log_v3(&request).await?;
                    for host in logs.file_task_logs {
                        let key = IpHost::new(host.bk_cloud_id, host.ip.clone()).to_string();
                        let content: String = host
                            .file_logs
                            .iter()
                            .filter_map(|f| f.log_content.as_deref())
                            .collect::<Vec<_>>()
                            .join("");
                        out.insert(
                            key,
                            HostLog {
                                error_code: None,
                                content,
                            },
                        );
                    }
                }
            }
        }
        Ok(out)
    }

    async fn estimate(
        &self,
        job: &JobRef,
        hosts: &[HostState],
    ) -> Result<Option<Estimate>, ApiError> {
        match job.api {
            Api2::V2 => {
                let per_host: Vec<Vec<plan_bkjob::file_log::FileProgress>> = self
                    .v2_host_logs(job, hosts)
                    .await?
                    .values()
                    .map(|log| plan_bkjob::file_log::FileProgress::from_log(&log.content))
                    .collect();
                Ok(progress::estimate(per_host.iter().map(Vec::as_slice)))
            }
            Api2::V3 => {
                let Some(step) = job.step_instance_id else {
                    return Ok(None);
                };
                // One host stands for the push: its targets share the speed limits and the
                // files, and a host that lags is caught by the poll at the estimated end.
                // The single-host API keeps the batch log API for failure reports.
                let Some(host) = hosts
                    .iter()
                    .find(|h| h.status == HostStatus::Running)
                    .or_else(|| hosts.first())
                else {
                    return Ok(None);
                };
                let scope = scope_for_biz(job.bk_biz_id);
                let log = self
                    .client
                    .ip_log_v3(
                        scope.as_str(),
                        &job.bk_biz_id.to_string(),
                        job.job_instance_id,
                        step,
                        &IpHost::new(host.bk_cloud_id, host.ip.clone()),
                    )
                    .await?;
                let files: Vec<plan_bkjob::file_log::FileProgress> = log
                    .file_logs
                    .iter()
                    .filter(|f| f.mode == FileMode::Download)
                    .map(|f| {
                        plan_bkjob::file_log::FileProgress::from_v3_entry(
                            f.status,
                            f.size.as_deref(),
                            f.speed.as_deref(),
                            f.process.as_deref(),
                            f.log_content.as_deref(),
                        )
                    })
                    .collect();
                Ok(progress::estimate([files.as_slice()]))
            }
        }
    }

    async fn terminate(&self, job: &JobRef) -> Result<(), ApiError> {
        let mut request = OperateJobInstanceRequest {
            bk_biz_id: None,
            bk_scope_type: None,
            bk_scope_id: None,
            job_instance_id: job.job_instance_id,
            operation_code: OperationCode::Terminate.code(),
        };
        match job.api {
            Api2::V2 => {
                request.bk_biz_id = Some(job.bk_biz_id);
                self.client.operate_v2(&request).await.map(|_| ())
            }
            Api2::V3 => {
                request.bk_scope_type = Some(scope_for_biz(job.bk_biz_id).as_str().to_owned());
                request.bk_scope_id = Some(job.bk_biz_id.to_string());
                self.client.operate_v3(&request).await.map(|_| ())
            }
        }
    }
}
