//! v3 `get_step_instance_status` (`EsbGetStepInstanceStatusV3ResourceImpl`): the job's one step
//! with its hosts grouped by status, for one rolling batch. `batch` absent is the latest
//! batch, 0 every batch, N batch N; `max_host_num_per_group` cuts each group's list (its
//! `host_size` still counts every host); `status` keeps one group. The simulator keeps only
//! the latest execution, so `execute_count` is read but every answer is the latest one's.

use plan_bkjob::{HostStatus, code};
use serde_json::{Value, json};

use crate::coerce::Params;
use crate::engine::{Engine, Job, JobState};
use crate::front::{Front, JobReply};
use crate::submit::{bad_t, check_scope_exists, scope_of};

pub(crate) fn v3_step_status(engine: &Engine, p: &Params, front: Front, is_get: bool) -> JobReply {
    match answer(engine, p, front, is_get) {
        Ok(data) => JobReply::Ok(data),
        Err(e) => e,
    }
}

fn answer(engine: &Engine, p: &Params, front: Front, is_get: bool) -> Result<Value, JobReply> {
    let scope = scope_of(p)?;
    check_scope_exists(&engine.world, &scope)?;
    let job_id = positive(
        p,
        front,
        is_get,
        "job_instance_id",
        "Job instance id must be a positive number",
    )?;
    let step_id = positive(
        p,
        front,
        is_get,
        "step_instance_id",
        "Step instance id must be a positive number",
    )?;
    bad_t(p.i64("execute_count"))?;
    let batch = bad_t(p.i64("batch"))?;
    let max_per_group = bad_t(p.i64("max_host_num_per_group"))?.filter(|n| *n > 0);
    let only_status = bad_t(p.i64("status"))?;
    let job = engine
        .get(job_id)
        .filter(|j| j.spec.scope == scope)
        .ok_or_else(|| {
            JobReply::err(
                code::TASK_INSTANCE_NOT_EXIST,
                "Task instance does not exist",
            )
        })?;
    if step_id != job.step_id {
        return Err(JobReply::err(
            code::STEP_INSTANCE_NOT_EXIST,
            "Task step instance does not exist",
        ));
    }
    let s = job.snapshot();
    let hosts = hosts_of_batch(&job, &s, batch);
    let mut groups: Vec<(HostStatus, Vec<Value>)> = Vec::new();
    for &i in &hosts {
        let Some(h) = s.hosts.get(i) else { continue };
        if only_status.is_some_and(|want| want != i64::from(h.status.code())) {
            continue;
        }
        let result = json!({
            "bk_host_id": h.host.id, "ip": h.host.ipv4(), "ipv6": h.host.ipv6(),
            "bk_cloud_id": h.host.cloud, "status": h.status, "status_desc": h.status.label(),
            "exit_code": Value::Null, "start_time": h.start_ms, "end_time": h.end_ms,
            "total_time": h.start_ms.zip(h.end_ms).map(|(a, b)| b - a),
        });
        match groups.iter_mut().find(|(status, _)| *status == h.status) {
            Some((_, list)) => list.push(result),
            None => groups.push((h.status, vec![result])),
        }
    }
    groups.sort_by_key(|(status, _)| status.code());
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(status, list)| {
            let size = list.len();
            let shown =
                max_per_group.map_or(size, |n| size.min(usize::try_from(n).unwrap_or(size)));
            json!({"result_type": status, "result_type_desc": status.label(), "tag": Value::Null,
                   "host_size": size, "host_result_list": &list[..shown]})
        })
        .collect();
    let mut step = json!({
        "step_instance_id": job.step_id, "execute_count": s.execute_count, "name": job.spec.name,
        "type": plan_bkjob::step_type::FILE, "status": s.step_status, "create_time": s.create_ms,
        "start_time": s.start_ms, "end_time": s.end_ms,
        "total_time": s.start_ms.zip(s.end_ms).map(|(a, b)| b - a),
    });
    // JOB leaves an empty group list out (`NON_EMPTY`).
    if !groups.is_empty() {
        step["step_result_group_list"] = Value::Array(groups);
    }
    Ok(step)
}

/// JOB's `@NotNull @Min(1)` on an id: `1240003` with its message (the gateway's GET needs it).
fn positive(
    p: &Params,
    front: Front,
    is_get: bool,
    key: &str,
    message: &str,
) -> Result<u64, JobReply> {
    if front == Front::Gateway && is_get && !p.has(key) {
        return Err(JobReply::err(code::BAD_REQUEST, "Bad Request"));
    }
    match bad_t(p.i64(key))? {
        Some(id) if id >= 1 => Ok(id.unsigned_abs()),
        _ => Err(JobReply::err(code::BAD_REQUEST, message)),
    }
}

/// The targets `batch` names: the latest batch (absent), every target (0), batch N; a job
/// without rolling is one batch.
fn hosts_of_batch(job: &Job, s: &JobState, batch: Option<i64>) -> Vec<usize> {
    let all = || (0..s.hosts.len()).collect();
    match (batch, s.rolling) {
        (Some(0), _) | (_, None) => all(),
        (None, Some(rolling)) => crate::rolling::hosts_of(job, rolling.batch),
        (Some(n), Some(_)) => usize::try_from(n)
            .ok()
            .filter(|n| *n >= 1)
            .map(|n| crate::rolling::hosts_of(job, n))
            .unwrap_or_default(),
    }
}
