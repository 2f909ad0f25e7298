//! Rolling execution as JOB runs it (v3 `rolling_config`, serial mode, batches of target
//! hosts; bk-job `GseStepEventHandler.onSuccess/onFail`, `JobListener.nextStep`): the batches
//! run in order, and after each one the mode decides.
//!
//! * A batch where every host succeeded: the last one ends the job (3); otherwise the step
//!   waits (15) and the next batch starts, or, in manual mode, the step and the job wait for
//!   a user (7) until `operate_step_instance` 13.
//! * A batch with a failed host: in ignore-failure mode the step is 6 and the next batch
//!   starts (the last one ends the job as 3); otherwise the step and the job fail (4, a final
//!   status: the callback is sent) and nothing more runs until `operate_step_instance` 2 or 8
//!   (the batch's failed or all hosts again, `execute_count` + 1) or 3 (go on).
//!
//! A job without `rolling_config` is one batch of every target in pause-on-failure mode, so
//! the same operations retry it inside the same job instance.

use std::sync::Arc;
use std::time::Duration;

use plan_bkjob::rolling::{
    FileSourceRollingConfigV3, MAX_ALLOWED_ROLLING_BATCH_SIZE, RollingExpr, RollingExprError,
    RollingMode, SourceSlice, execution_mode, file_source_batches, rolling_type,
};
use plan_bkjob::{FileStatus, HostStatus, RunStatus, code, gse_code};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::coerce::Params;
use crate::engine::{Engine, Job, JobState};
use crate::front::JobReply;
use crate::host::run_host;
use crate::sources::SourcePlan;
use crate::submit::{JobSpec, bad_t};

/// A `rolling_config` that passed JOB's bean validation; its expression is checked once the
/// targets are known.
#[derive(Debug, Clone)]
pub(crate) struct RollingRequest {
    mode: RollingMode,
    over: RollOver,
}

/// What the batches are made of.
#[derive(Debug, Clone)]
enum RollOver {
    /// Target hosts, by a rolling expression (`type` 1).
    Targets(String),
    /// Source files, by their limits (`type` 2).
    SourceFiles(FileSourceRollingConfigV3),
}

/// How a job rolls: its mode, each batch's targets (indexes into the job's targets) and, when
/// it rolls over source files, each batch's share of the sources (every batch then goes to
/// every target).
#[derive(Debug, Clone)]
pub(crate) struct RollingSpec {
    pub(crate) mode: RollingMode,
    pub(crate) batches: Vec<Vec<usize>>,
    pub(crate) source_batches: Option<Vec<Vec<SourceSlice>>>,
}

/// Which batch a rolling job is at (from 1), of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RollingState {
    pub(crate) batch: usize,
    pub(crate) total: usize,
}

fn bean(message: &str) -> JobReply {
    JobReply::err(code::BAD_REQUEST, message)
}

/// JOB's bean validation of `rolling_config` (`EsbRollingConfigDTO`, §3.3 step 1): absent or
/// null means no rolling.
pub(crate) fn bean_check(p: &Params) -> Result<Option<RollingRequest>, JobReply> {
    let Some(config) = bad_t(p.object("rolling_config"))? else {
        return Ok(None);
    };
    let kind = bad_t(config.i64("type"))?.unwrap_or(rolling_type::TARGET_EXECUTE_OBJECT.into());
    if ![
        rolling_type::TARGET_EXECUTE_OBJECT,
        rolling_type::FILE_SOURCE,
    ]
    .map(i64::from)
    .contains(&kind)
    {
        return Err(bean("Illegal rolling type"));
    }
    let mode = match bad_t(config.i64("mode"))? {
        None => RollingMode::PauseOnFailure,
        Some(m) => i32::try_from(m)
            .ok()
            .and_then(RollingMode::from_code)
            .ok_or_else(|| bean("Illegal rolling mode"))?,
    };
    let execution = bad_t(config.i64("execution_mode"))?.unwrap_or(execution_mode::SERIAL.into());
    if ![execution_mode::SERIAL, execution_mode::PARALLEL]
        .map(i64::from)
        .contains(&execution)
    {
        return Err(bean("Rolling execution mode value is illegal"));
    }
    let over = if kind == i64::from(rolling_type::FILE_SOURCE) {
        RollOver::SourceFiles(source_file_limits(&config)?)
    } else {
        let expression = bad_t(config.string("expression"))?.unwrap_or_default();
        if RollingExpr::parse(&expression) == Err(RollingExprError::Blank) {
            return Err(bean("Rolling expression cannot be blank"));
        }
        RollOver::Targets(expression)
    };
    if execution == i64::from(execution_mode::PARALLEL) {
        return Err(bean(
            "jobsim does not simulate parallel rolling (rolling_config.execution_mode 2)",
        ));
    }
    Ok(Some(RollingRequest { mode, over }))
}

/// `rolling_config.file_source` (`type` 2): required, each limit absent or positive.
fn source_file_limits(config: &Params) -> Result<FileSourceRollingConfigV3, JobReply> {
    let Some(limits) = bad_t(config.object("file_source"))? else {
        return Err(bean("Rolling file source config cannot be null"));
    };
    let positive = |key: &str, message: &str| match bad_t(limits.i64(key))? {
        None => Ok(None),
        Some(n) => match i32::try_from(n) {
            Ok(n) if n > 0 => Ok(Some(n)),
            Ok(_) => Err(bean(message)),
            Err(_) => Err(bean("Bad Request")),
        },
    };
    Ok(FileSourceRollingConfigV3 {
        max_execute_object_num_in_batch: positive(
            "max_execute_object_num_in_batch",
            "Max execute object num in batch must be positive integer or null",
        )?,
        max_file_num_of_single_execute_object: positive(
            "max_file_num_of_single_execute_object",
            "Max file num of execute object must be positive integer or null",
        )?,
    })
}

/// Rolling over source files takes server files only (`checkRollingFileSources`, right after
/// `file_source_list` is found non-empty): `1244035` otherwise.
pub(crate) fn check_source_types(
    request: Option<&RollingRequest>,
    sources: &[Params],
) -> Result<(), JobReply> {
    let Some(RollingRequest {
        over: RollOver::SourceFiles(_),
        ..
    }) = request
    else {
        return Ok(());
    };
    for source in sources {
        if bad_t(source.i64("file_type"))?.is_some_and(|t| t != 1) {
            return Err(JobReply::err(
                code::FILE_SOURCE_ROLLING_ONLY_SUPPORT_SERVER_FILE,
                "The file source rolling policy only support server file",
            ));
        }
    }
    Ok(())
}

/// The batches, when JOB saves the rolling config (after the hosts are resolved): over the
/// targets by the expression (`1244026` for one JOB refuses, `1244027` for too many batches),
/// or over the sources (`(hosts, file_list entries)` of each) by their limits.
pub(crate) fn plan_batches(
    request: RollingRequest,
    targets: usize,
    sources: &[(usize, usize)],
) -> Result<RollingSpec, JobReply> {
    let expression = match request.over {
        RollOver::Targets(expression) => expression,
        RollOver::SourceFiles(limits) => {
            let source_batches = file_source_batches(sources, &limits);
            return Ok(RollingSpec {
                mode: request.mode,
                batches: vec![(0..targets).collect(); source_batches.len()],
                source_batches: Some(source_batches),
            });
        }
    };
    let expr = RollingExpr::parse(&expression).map_err(|e| match e {
        RollingExprError::NumberTooLarge { .. } => {
            JobReply::err(code::INTERNAL_ERROR, "Internal Server Error")
        }
        _ => JobReply::err(code::INVALID_ROLLING_EXPR, "Invalid rolling strategy"),
    })?;
    let sizes = expr.batch_sizes(targets).map_err(|_| {
        JobReply::err(
            code::EXCEED_MAX_ALLOWED_BATCH_SIZE,
            format!("Rolling batch can not be greater than {MAX_ALLOWED_ROLLING_BATCH_SIZE}"),
        )
    })?;
    let mut next = 0;
    let batches = sizes
        .into_iter()
        .map(|size| {
            let batch: Vec<usize> = (next..next + size).collect();
            next += size;
            batch
        })
        .collect();
    Ok(RollingSpec {
        mode: request.mode,
        batches,
        source_batches: None,
    })
}

/// Each batch's targets: the rolling spec's, or one batch of every target.
fn batches_of(job: &Job) -> Vec<Vec<usize>> {
    match &job.spec.rolling {
        Some(rolling) => rolling.batches.clone(),
        None => vec![(0..job.spec.targets.len()).collect()],
    }
}

fn mode_of(job: &Job) -> RollingMode {
    job.spec
        .rolling
        .as_ref()
        .map_or(RollingMode::PauseOnFailure, |r| r.mode)
}

/// The state a rolling job starts with (batch 1 of its total).
pub(crate) fn initial_state(spec: &JobSpec) -> Option<RollingState> {
    spec.rolling.as_ref().map(|r| RollingState {
        batch: 1,
        total: r.batches.len(),
    })
}

/// How a batch's hosts ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchEnd {
    Done,
    TimedOut,
    Stopped,
}

/// Runs the batches from `batch` (from 1), that batch's `hosts` only (every host of it, or
/// the ones a retry runs again), until the job ends or waits.
pub(crate) async fn run_from(
    engine: Arc<Engine>,
    job: Arc<Job>,
    sources: Arc<Vec<SourcePlan>>,
    mut batch: usize,
    mut hosts: Vec<usize>,
) {
    let batches = batches_of(&job);
    let mode = mode_of(&job);
    loop {
        begin_batch(&job, batch, &hosts);
        let batch_sources = sources_of_batch(&job, &sources, batch);
        let end = run_batch(&engine, &job, &batch_sources, &hosts).await;
        crate::job::close_open_files(&engine.clock, &job);
        if end == BatchEnd::Stopped {
            finalize(
                &engine,
                &job,
                RunStatus::StopSuccess,
                RunStatus::StopSuccess,
            );
            return;
        }
        let batch_hosts = batches.get(batch - 1).map_or(&[][..], Vec::as_slice);
        let failed = job.with(|s| {
            batch_hosts.iter().any(|&i| {
                s.hosts
                    .get(i)
                    .is_some_and(|h| h.status != HostStatus::Success)
            })
        });
        if failed && mode != RollingMode::IgnoreFailure {
            finalize(&engine, &job, RunStatus::Fail, RunStatus::Fail);
            return;
        }
        let step = if failed {
            RunStatus::IgnoreError
        } else {
            RunStatus::Success
        };
        if !after_batch(&engine, &job, batch, step) {
            return;
        }
        batch += 1;
        hosts = batches.get(batch - 1).cloned().unwrap_or_default();
    }
}

/// After a batch that passed (succeeded, or its failure ignored, as `step`): the last one
/// ends the job as a success; in manual mode the job waits for a user; otherwise the step
/// waits (15) and the caller starts the next batch (true).
pub(crate) fn after_batch(engine: &Engine, job: &Job, batch: usize, step: RunStatus) -> bool {
    if batch >= batches_of(job).len() {
        finalize(engine, job, RunStatus::Success, step);
        return false;
    }
    job.with(|s| {
        if mode_of(job) == RollingMode::Manual {
            s.status = RunStatus::WaitingUser;
            s.step_status = RunStatus::WaitingUser;
            false
        } else {
            s.step_status = if step == RunStatus::IgnoreError {
                step
            } else {
                RunStatus::RollingWaiting
            };
            true
        }
    })
}

/// What batch `batch` sends: every source, or its share of them when the job rolls over
/// source files (the plans are in `plan_sources`' order: each entry's hosts in turn).
fn sources_of_batch(
    job: &Job,
    sources: &Arc<Vec<SourcePlan>>,
    batch: usize,
) -> Arc<Vec<SourcePlan>> {
    let Some(slices) = job
        .spec
        .rolling
        .as_ref()
        .and_then(|r| r.source_batches.as_ref())
        .and_then(|b| b.get(batch - 1))
    else {
        return sources.clone();
    };
    let mut first_plan = Vec::with_capacity(job.spec.sources.len());
    let mut next = 0;
    for source in &job.spec.sources {
        first_plan.push(next);
        next += source.hosts.len();
    }
    let picked = slices
        .iter()
        .flat_map(|slice| {
            let first = first_plan.get(slice.source).copied().unwrap_or(usize::MAX);
            slice.hosts.clone().filter_map(move |h| {
                let plan = sources.get(first.checked_add(h)?)?;
                Some(plan.with_entries(slice.files.clone()))
            })
        })
        .collect();
    Arc::new(picked)
}

/// The job and step run `batch`. Rolling over source files, every batch goes to the same
/// targets: those that ended a previous batch wait again (their logs kept).
fn begin_batch(job: &Job, batch: usize, hosts: &[usize]) {
    let rerun_targets = job
        .spec
        .rolling
        .as_ref()
        .is_some_and(|r| r.source_batches.is_some());
    job.with(|s| {
        if rerun_targets {
            // Every target is in every batch of source files; a retry runs only `hosts`
            // again, and the batch's other targets keep their result.
            for &i in hosts {
                let Some(h) = s.hosts.get_mut(i) else {
                    continue;
                };
                if h.status.is_finished() && h.status != HostStatus::AgentNotInstalled {
                    h.status = HostStatus::Waiting;
                    h.error_code = gse_code::RUNNING;
                    h.end_ms = None;
                }
            }
        }
        // A terminate between two batches stands: `run_batch` then stops at once.
        if s.status != RunStatus::Stopping {
            s.status = RunStatus::Running;
        }
        s.step_status = RunStatus::Running;
        s.end_ms = None;
        if let Some(rolling) = &mut s.rolling {
            rolling.batch = batch;
        }
    });
}

/// One batch: after GSE's `host_wait`, one task per host, until every host reported, the
/// timeout (counted per batch, as each batch is its own GSE task) or a terminate.
async fn run_batch(
    engine: &Arc<Engine>,
    job: &Arc<Job>,
    sources: &Arc<Vec<SourcePlan>>,
    hosts: &[usize],
) -> BatchEnd {
    let timeout = Duration::from_secs(job.spec.timeout_s);
    let deadline = Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400));
    let stopped = tokio::select! {
        () = tokio::time::sleep(engine.timings.host_wait) => false,
        () = job.stop.notified() => true,
    };
    if stopped {
        return BatchEnd::Stopped;
    }
    let mut tasks = JoinSet::new();
    for &idx in hosts {
        tasks.spawn(run_host(engine.clone(), job.clone(), sources.clone(), idx));
    }
    let end = loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break BatchEnd::Done },
            () = tokio::time::sleep_until(deadline) => break BatchEnd::TimedOut,
            () = job.stop.notified() => break BatchEnd::Stopped,
        }
    };
    match end {
        BatchEnd::Done => {}
        BatchEnd::TimedOut => {
            tasks.abort_all();
            end_open_hosts(
                engine,
                job,
                hosts,
                HostStatus::GseTimeout,
                gse_code::TIMEOUT,
            );
        }
        BatchEnd::Stopped => {
            tokio::time::sleep(engine.timings.stop_delay).await;
            tasks.abort_all();
            end_open_hosts(
                engine,
                job,
                hosts,
                HostStatus::GseTaskTerminateSuccess,
                gse_code::TERMINATED,
            );
        }
    }
    end
}

fn end_open_hosts(engine: &Engine, job: &Job, hosts: &[usize], status: HostStatus, code: i64) {
    let now = engine.clock.now_ms();
    job.with(|s| {
        for &i in hosts {
            if let Some(h) = s.hosts.get_mut(i).filter(|h| !h.status.is_finished()) {
                h.status = status;
                h.error_code = code;
                h.end_ms = Some(now);
            }
        }
    });
}

/// The job reaches a final status: open uploads end, the running quota is freed, and JOB's
/// callback is sent (once per final status: a paused job that goes on sends another).
fn finalize(engine: &Engine, job: &Job, status: RunStatus, step: RunStatus) {
    let end = engine.clock.now_ms();
    job.with(|s| {
        crate::job::end_open_uploads(&engine.clock, s, status == RunStatus::Success);
        s.status = status;
        s.step_status = step;
        s.end_ms = Some(end);
    });
    engine.job_finished();
    crate::job::send_callback(engine, job, status);
}

/// A terminate while the job waits for a user between batches: nothing runs, so JOB ends the
/// step at once (`GseStepEventHandler.stopStep`: "set step status stop_success directly").
pub(crate) fn stop_waiting(engine: &Engine, job: &Job) {
    finalize(engine, job, RunStatus::StopSuccess, RunStatus::StopSuccess);
}

/// Makes `hosts` run again: waiting, their logs empty (a new `execute_count` has new logs).
/// A host without an installed agent is not executable and keeps its result, as in JOB.
pub(crate) fn reset_hosts(s: &mut JobState, hosts: &[usize], now_ms: i64) {
    for &i in hosts {
        let Some(h) = s.hosts.get_mut(i) else {
            continue;
        };
        if h.status == HostStatus::AgentNotInstalled {
            continue;
        }
        h.status = HostStatus::Waiting;
        h.error_code = gse_code::RUNNING;
        h.start_ms = Some(now_ms);
        h.end_ms = None;
        for f in &mut h.files {
            f.status = FileStatus::Waiting;
            f.content.clear();
            f.size = Some("--".into());
            f.speed = Some("--".into());
            f.process = Some("--".into());
        }
    }
}

/// The batch a job is at and that batch's targets. A job the job store restored knows its
/// hosts but not its batch: rolling over targets, the batch is also the last one any of whose
/// hosts ran (later batches' hosts wait, or have no agent installed), whichever is later.
pub(crate) fn current_batch(job: &Job, s: &JobState) -> (usize, Vec<usize>) {
    let batches = batches_of(job);
    let recorded = s.rolling.map_or(1, |r| r.batch);
    let over_targets = job
        .spec
        .rolling
        .as_ref()
        .is_some_and(|r| r.source_batches.is_none());
    let ran = |batch: &Vec<usize>| {
        batch.iter().any(|&i| {
            s.hosts.get(i).is_some_and(|h| {
                !matches!(
                    h.status,
                    HostStatus::Waiting | HostStatus::AgentNotInstalled
                )
            })
        })
    };
    let last_run = if over_targets {
        batches.iter().rposition(ran).map_or(0, |i| i + 1)
    } else {
        0
    };
    let batch = recorded.max(last_run).max(1);
    let hosts = batches.get(batch - 1).cloned().unwrap_or_default();
    (batch, hosts)
}

/// The targets of `batch` (from 1).
pub(crate) fn hosts_of(job: &Job, batch: usize) -> Vec<usize> {
    batches_of(job).get(batch - 1).cloned().unwrap_or_default()
}
