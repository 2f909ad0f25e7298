//! `operate_step_instance` (v2 and v3, one body): JOB's checks in its order
//! (`EsbOperateStepInstanceV3ResourceImpl.checkRequest`, `TaskExecuteServiceImpl.doStepOperation`)
//! and what each operation this simulator runs does to a file job. The state changes JOB makes
//! synchronously (the job back to running, `execute_count` + 1) happen under the job's lock
//! before the answer, so a status read right after sees them; the batches then run on their
//! own task (`rolling::run_from`).

use std::sync::Arc;

use plan_bkjob::{RunStatus, StepOperation, code};
use serde_json::json;

use crate::coerce::Params;
use crate::engine::{Engine, Job, JobState};
use crate::front::JobReply;
use crate::rolling;
use crate::submit::{check_scope_exists, scope_of};

/// What runs after an accepted operation.
enum Next {
    /// The batch (from 1) runs these hosts again.
    Rerun { batch: usize, hosts: Vec<usize> },
    /// The batch's failure is ignored: the job goes on after it.
    Ignored { batch: usize },
    /// The next batch (this one) starts.
    Batch { batch: usize },
}

pub(crate) fn operate_step(engine: &Arc<Engine>, p: &Params) -> JobReply {
    let scope = match scope_of(p).and_then(|s| check_scope_exists(&engine.world, &s).map(|()| s)) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let invalid = || JobReply::err(code::ILLEGAL_PARAM, "Invalid request parameters");
    let bad = || JobReply::err(code::BAD_REQUEST, "Bad Request");
    let positive = |key: &str| match p.i64(key) {
        Ok(Some(id)) if id > 0 => Ok(id.unsigned_abs()),
        Ok(_) => Err(invalid()),
        Err(_) => Err(bad()),
    };
    let (job_id, step_id) = match (positive("job_instance_id"), positive("step_instance_id")) {
        (Ok(j), Ok(s)) => (j, s),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let operation = match p.i64("operation_code") {
        Ok(Some(c)) => match i32::try_from(c).ok().and_then(StepOperation::from_code) {
            Some(op) => op,
            None => return invalid(),
        },
        Ok(None) => return invalid(),
        Err(_) => return bad(),
    };
    let Some(job) = engine.get(job_id).filter(|j| j.spec.scope == scope) else {
        return JobReply::err(
            code::TASK_INSTANCE_NOT_EXIST,
            "Task instance does not exist",
        );
    };
    if step_id != job.step_id {
        return JobReply::err(
            code::STEP_INSTANCE_NOT_EXIST,
            "Task step instance does not exist",
        );
    }
    let now = engine.clock.now_ms();
    let Some(next) = job.with(|s| accept(&job, s, operation, now)) else {
        return JobReply::err(code::UNSUPPORTED_OPERATION, "Unsupported operation");
    };
    if operation != StepOperation::RollingContinue {
        // The job had ended (failed): JOB counts it as running again.
        engine.job_resumed();
    }
    tokio::spawn(carry_on(engine.clone(), job.clone(), next));
    JobReply::Ok(json!({
        "job_instance_id": job.id, "job_instance_name": null, "step_instance_id": job.step_id,
    }))
}

/// JOB's precondition for `operation` on the job's one step, and the synchronous part of its
/// effect; `None` is "Unsupported operation". Confirmation operations (6, 9, 10) need a
/// confirmation step, which a file job never is; 11 and 12 are not simulated; a script job's
/// steps are not retried here.
fn accept(job: &Job, s: &mut JobState, operation: StepOperation, now: i64) -> Option<Next> {
    let is_file_job = !job.spec.sources.is_empty();
    if !is_file_job || !operation.allowed_in(s.step_status) {
        return None;
    }
    let (batch, batch_hosts) = rolling::current_batch(job, s);
    let next = match operation {
        StepOperation::RetryFailIp | StepOperation::RetryAllIp => {
            let hosts: Vec<usize> = batch_hosts
                .into_iter()
                .filter(|&i| {
                    operation == StepOperation::RetryAllIp
                        || s.hosts
                            .get(i)
                            .is_some_and(|h| h.status != plan_bkjob::HostStatus::Success)
                })
                .collect();
            s.execute_count += 1;
            rolling::reset_hosts(s, &hosts, now);
            s.step_status = RunStatus::Running;
            Next::Rerun { batch, hosts }
        }
        StepOperation::IgnoreError => {
            s.step_status = RunStatus::IgnoreError;
            Next::Ignored { batch }
        }
        StepOperation::RollingContinue if s.rolling.is_some() => {
            s.step_status = RunStatus::Running;
            Next::Batch { batch: batch + 1 }
        }
        _ => return None,
    };
    s.status = RunStatus::Running;
    s.end_ms = None;
    Some(next)
}

async fn carry_on(engine: Arc<Engine>, job: Arc<Job>, next: Next) {
    let (batch, hosts) = match next {
        Next::Rerun { batch, hosts } => (batch, hosts),
        Next::Ignored { batch } => {
            if !rolling::after_batch(&engine, &job, batch, RunStatus::IgnoreError) {
                return;
            }
            (batch + 1, rolling::hosts_of(&job, batch + 1))
        }
        Next::Batch { batch } => (batch, rolling::hosts_of(&job, batch)),
    };
    let sources = crate::job::expand_sources(&engine, &job).await;
    rolling::run_from(engine, job, sources, batch, hosts).await;
}
