//! Polling, log and operate APIs (§7, §8) in both versions' shapes.

use std::sync::Arc;

use plan_bkjob::{ApiVersion, HostStatus, OperationCode, code, log_type, start_way};
use serde_json::{Value, json};

use crate::coerce::{BadType, Params, i64_list, object_list};
use crate::engine::{Engine, FileLog, Job, JobState};
use crate::front::{Front, JobReply};
use crate::script;
use crate::submit::{check_scope_exists, missing_or_illegal, scope_of};
use crate::world::{HostRef, Scope};

type Check<T> = Result<T, JobReply>;

fn bad<T>(r: Result<T, BadType>) -> Check<T> {
    r.map_err(|_| JobReply::err(code::BAD_REQUEST, "Bad Request"))
}

fn not_exist() -> JobReply {
    JobReply::err(
        code::TASK_INSTANCE_NOT_EXIST,
        "Task instance does not exist",
    )
}

fn v2_time(ms: Option<i64>) -> Value {
    match ms.and_then(chrono::DateTime::from_timestamp_millis) {
        Some(t) => json!(
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        ),
        None => Value::Null,
    }
}

fn total_ms(start: Option<i64>, end: Option<i64>) -> Option<i64> {
    Some(end? - start?)
}

fn v2_total(start: Option<i64>, end: Option<i64>) -> Value {
    total_ms(start, end).map_or(Value::Null, |ms| json!(ms as f64 / 1000.0))
}

/// Scope check + `job_instance_id` + lookup, shared by every query API.
fn find_job(engine: &Engine, p: &Params, front: Front, is_get: bool) -> Check<(Scope, Arc<Job>)> {
    let scope = scope_of(p)?;
    check_scope_exists(&engine.world, &scope)?;
    let id = job_id(p, front, is_get, "job_instance_id")?;
    let job = engine.get(id).ok_or_else(not_exist)?;
    if job.spec.scope != scope {
        return Err(not_exist());
    }
    Ok((scope, job))
}

fn job_id(p: &Params, front: Front, is_get: bool, key: &str) -> Check<u64> {
    // JOB's @GetMapping handlers need the parameter; ESB always forwards a JSON POST.
    if front == Front::Gateway && is_get && !p.has(key) {
        return Err(JobReply::err(code::BAD_REQUEST, "Bad Request"));
    }
    match bad(p.i64(key))? {
        Some(id) if id >= 1 => Ok(id.unsigned_abs()),
        _ => Err(missing_or_illegal(key)),
    }
}

/// v2 `get_job_instance_status`.
pub(crate) fn v2_status(engine: &Engine, p: &Params, front: Front, is_get: bool) -> JobReply {
    let (_, job) = match find_job(engine, p, front, is_get) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let s = job.snapshot();
    let started = s.start_ms.is_some();
    let ip_status: Vec<Value> = s
        .hosts
        .iter()
        .map(|h| json!({"ip": h.host.ipv4(), "bk_cloud_id": h.host.cloud, "status": h.status}))
        .collect();
    JobReply::Ok(json!({
        "is_finished": s.status.is_finished(),
        "job_instance": {
            "job_instance_id": job.id, "bk_job_id": -1, "status": s.status, "name": job.spec.name,
            "operator": job.spec.caller.username, "create_time": v2_time(Some(s.create_ms)),
            "start_time": v2_time(s.start_ms), "end_time": v2_time(s.end_ms),
            "total_time": v2_total(s.start_ms, s.end_ms), "start_way": start_way::API,
            "current_step_instance_id": if started { json!(job.step_id) } else { Value::Null },
            "bk_biz_id": job.spec.scope.id, "bk_scope_type": job.spec.scope.kind,
            "bk_scope_id": job.spec.scope.id.to_string(),
        },
        "blocks": [{"step_instances": [{
            "step_instance_id": job.step_id, "step_id": -1, "name": job.spec.name, "type": script::step_type(&job),
            "operator": job.spec.caller.username, "status": s.step_status, "execute_count": s.execute_count,
            "start_time": v2_time(s.start_ms), "end_time": v2_time(s.end_ms),
            "total_time": v2_total(s.start_ms, s.end_ms), "create_time": v2_time(Some(s.create_ms)),
            "pause": null, "step_ip_status": ip_status,
        }]}],
    }))
}

/// v3 `get_job_instance_status`.
pub(crate) fn v3_status(engine: &Engine, p: &Params, front: Front, is_get: bool) -> JobReply {
    let (_, job) = match find_job(engine, p, front, is_get) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let with_ips = match bad(p.bool("return_ip_result")) {
        Ok(b) => b.unwrap_or(false),
        Err(e) => return e,
    };
    let s = job.snapshot();
    let ips = if with_ips {
        Value::Array(
            s.hosts
                .iter()
                .map(|h| {
                    json!({"bk_host_id": h.host.id, "ip": h.host.ipv4(), "ipv6": h.host.ipv6(), "bk_cloud_id": h.host.cloud,
                        "status": h.status, "tag": script::tag(&job), "exit_code": script::exit_code(h), "error_code": h.error_code,
                        "start_time": h.start_ms, "end_time": h.end_ms, "total_time": total_ms(h.start_ms, h.end_ms)})
                })
                .collect(),
        )
    } else {
        Value::Null
    };
    JobReply::Ok(json!({
        "finished": s.status.is_finished(),
        "job_instance": {
            "job_instance_id": job.id, "name": job.spec.name, "status": s.status,
            "create_time": s.create_ms, "start_time": s.start_ms, "end_time": s.end_ms,
            "total_time": total_ms(s.start_ms, s.end_ms), "bk_biz_id": job.spec.scope.id,
            "bk_scope_type": job.spec.scope.kind, "bk_scope_id": job.spec.scope.id.to_string(),
        },
        "step_instance_list": [{
            "step_instance_id": job.step_id, "name": job.spec.name, "type": script::step_type(&job), "status": s.step_status,
            "execute_count": s.execute_count, "create_time": s.create_ms, "start_time": s.start_ms, "end_time": s.end_ms,
            "total_time": total_ms(s.start_ms, s.end_ms), "step_ip_result_list": ips,
        }],
    }))
}

/// v2 `get_job_instance_log`: hosts grouped by status, HTML-escaped content.
pub(crate) fn v2_log(engine: &Engine, p: &Params, front: Front, is_get: bool) -> JobReply {
    let (_, job) = match find_job(engine, p, front, is_get) {
        Ok(x) => x,
        Err(e) => return e,
    };
    let s = job.snapshot();
    let mut groups: Vec<(HostStatus, Vec<Value>)> = Vec::new();
    for h in &s.hosts {
        let content: String = match job.spec.script {
            Some(_) => script::log(h).to_owned(),
            None => h.files.iter().map(|f| f.content.as_str()).collect(),
        };
        let escaped = html_escape::encode_safe(&content)
            .replace("&#x27;", "'")
            .replace("&quot;", "\"")
            .replace("&#x2F;", "/");
        let entry = json!({
            "start_time": v2_time(h.start_ms), "end_time": v2_time(h.end_ms),
            "total_time": v2_total(h.start_ms, h.end_ms), "execute_count": s.execute_count, "error_code": h.error_code,
            "exit_code": script::exit_code(h), "log_content": escaped, "bk_cloud_id": h.host.cloud, "ip": h.host.ipv4(),
        });
        match groups.iter_mut().find(|(st, _)| *st == h.status) {
            Some((_, v)) => v.push(entry),
            None => groups.push((h.status, vec![entry])),
        }
    }
    let results: Vec<Value> = groups
        .into_iter()
        .map(|(st, logs)| json!({"ip_status": st, "tag": "", "ip_logs": logs}))
        .collect();
    JobReply::Ok(json!([{
        "is_finished": s.step_status.is_finished(), "step_instance_id": job.step_id,
        "name": job.spec.name, "status": s.step_status, "step_results": results,
    }]))
}

fn ip_obj(h: &HostRef) -> Value {
    json!({"bk_host_id": h.id, "bk_cloud_id": h.cloud, "ip": h.ipv4(), "ipv6": h.ipv6()})
}

fn file_log_json(f: &FileLog, with_sizes: bool) -> Value {
    json!({
        "mode": f.mode, "src_ip": ip_obj(&f.src), "src_path": f.src_path,
        "dest_ip": f.dest.as_ref().map(ip_obj), "dest_path": f.dest_path, "status": f.status,
        "log_content": f.content,
        "size": if with_sizes { json!(f.size.clone().unwrap_or_else(|| "--".into())) } else { Value::Null },
        "speed": if with_sizes { json!(f.speed.clone().unwrap_or_else(|| "--".into())) } else { Value::Null },
        "process": if with_sizes { json!(f.process.clone().unwrap_or_else(|| "--".into())) } else { Value::Null },
    })
}

fn step_of(p: &Params, front: Front, is_get: bool, job: &Job) -> Check<()> {
    if front == Front::Gateway && is_get && !p.has("step_instance_id") {
        return Err(JobReply::err(code::BAD_REQUEST, "Bad Request"));
    }
    match bad(p.i64("step_instance_id"))? {
        Some(id) if id >= 1 => {
            if id.unsigned_abs() == job.step_id {
                Ok(())
            } else {
                Err(not_exist())
            }
        }
        _ => Err(JobReply::err(
            code::BAD_REQUEST,
            "Step instance id must be a positive number",
        )),
    }
}

fn v3_ids(engine: &Engine, p: &Params, front: Front, is_get: bool) -> Check<Arc<Job>> {
    let scope = scope_of(p)?;
    if front == Front::Gateway && is_get && !p.has("job_instance_id") {
        return Err(JobReply::err(code::BAD_REQUEST, "Bad Request"));
    }
    let id = match bad(p.i64("job_instance_id"))? {
        Some(id) if id >= 1 => id.unsigned_abs(),
        _ => {
            return Err(JobReply::err(
                code::BAD_REQUEST,
                "Job instance id must be a positive number",
            ));
        }
    };
    // Bean validation of the step id comes before the scope and job lookups.
    if !matches!(bad(p.i64("step_instance_id"))?, Some(s) if s >= 1) {
        return Err(JobReply::err(
            code::BAD_REQUEST,
            "Step instance id must be a positive number",
        ));
    }
    check_scope_exists(&engine.world, &scope)?;
    let job = engine.get(id).ok_or_else(not_exist)?;
    if job.spec.scope != scope {
        return Err(not_exist());
    }
    step_of(p, front, is_get, &job)?;
    Ok(job)
}

fn logs_for(s: &JobState, host: &HostRef) -> (bool, Vec<FileLog>, Vec<FileLog>) {
    let target = s
        .hosts
        .iter()
        .find(|h| h.host.cloud == host.cloud && h.host.ip == host.ip);
    let downloads = target.map(|h| h.files.clone()).unwrap_or_default();
    let uploads: Vec<FileLog> = s
        .uploads
        .iter()
        .filter(|u| u.src.cloud == host.cloud && u.src.ip == host.ip)
        .cloned()
        .collect();
    (target.is_some(), downloads, uploads)
}

/// v3 `get_job_instance_ip_log`.
pub(crate) fn v3_ip_log(engine: &Engine, p: &Params, front: Front, is_get: bool) -> JobReply {
    let job = match v3_ids(engine, p, front, is_get) {
        Ok(j) => j,
        Err(e) => return e,
    };
    let (host_id, cloud, ip) = match (
        bad(p.i64("bk_host_id")),
        bad(p.i64("bk_cloud_id")),
        bad(p.string("ip")),
    ) {
        (Ok(h), Ok(c), Ok(i)) => (h, c, i),
        _ => return JobReply::err(code::BAD_REQUEST, "Bad Request"),
    };
    let s = job.snapshot();
    let all_hosts: Vec<HostRef> = s
        .hosts
        .iter()
        .map(|h| h.host.clone())
        .chain(s.uploads.iter().map(|u| u.src.clone()))
        .collect();
    let host = match (host_id, cloud, ip) {
        (Some(id), _, _) if id > 0 => all_hosts
            .iter()
            .find(|h| h.id == id.unsigned_abs())
            .cloned()
            .unwrap_or(HostRef {
                id: id.unsigned_abs(),
                cloud: 0,
                ip: String::new(),
            }),
        (_, Some(c), Some(i)) if c >= 0 && !i.is_empty() => all_hosts
            .iter()
            .find(|h| h.cloud == c.unsigned_abs() && h.ip == i)
            .cloned()
            .unwrap_or(HostRef {
                id: 0,
                cloud: c.unsigned_abs(),
                ip: i,
            }),
        _ => return missing_or_illegal("host_id/(bk_cloud_id+ip)"),
    };
    if job.spec.script.is_some() {
        return script::ip_log(&s, &host);
    }
    let (_, downloads, _) = logs_for(&s, &host);
    // This API returns the target's downloads plus the uploads of every source host.
    let file_logs: Vec<Value> = downloads
        .iter()
        .chain(s.uploads.iter())
        .map(|f| file_log_json(f, false))
        .collect();
    JobReply::Ok(json!({
        "log_type": log_type::FILE, "bk_host_id": if host.id > 0 { json!(host.id) } else { Value::Null },
        "bk_cloud_id": host.cloud, "ip": host.ipv4(), "ipv6": host.ipv6(), "log_content": null, "file_logs": file_logs,
    }))
}

/// v3 `batch_get_job_instance_ip_log`.
pub(crate) fn v3_batch_log(engine: &Engine, p: &Params, front: Front, is_get: bool) -> JobReply {
    let job = match v3_ids(engine, p, front, is_get) {
        Ok(j) => j,
        Err(e) => return e,
    };
    let ids = match bad(i64_list(p, "host_id_list")) {
        Ok(v) => v.unwrap_or_default(),
        Err(e) => return e,
    };
    let ips = match bad(object_list(p, "ip_list")) {
        Ok(v) => v.unwrap_or_default(),
        Err(e) => return e,
    };
    let s = job.snapshot();
    let known: Vec<HostRef> = s
        .hosts
        .iter()
        .map(|h| h.host.clone())
        .chain(s.uploads.iter().map(|u| u.src.clone()))
        .collect();
    let mut wanted: Vec<HostRef> = Vec::new();
    if !ids.is_empty() {
        for id in &ids {
            if let Some(h) = known.iter().find(|h| h.id == id.unsigned_abs()) {
                wanted.push(h.clone());
            }
        }
    } else {
        for ip in &ips {
            let (c, i) = match (bad(ip.i64("bk_cloud_id")), bad(ip.string("ip"))) {
                (Ok(c), Ok(i)) => (c, i),
                _ => return JobReply::err(code::BAD_REQUEST, "Bad Request"),
            };
            let Some(c) = c.filter(|c| *c >= 0) else {
                return JobReply::err(code::BAD_REQUEST, "Invalid BK-Net");
            };
            let Some(i) = i.filter(|i| {
                i.parse::<std::net::Ipv4Addr>().is_ok() || i.parse::<std::net::Ipv6Addr>().is_ok()
            }) else {
                return JobReply::err(code::BAD_REQUEST, "Invalid IP");
            };
            if let Some(h) = known
                .iter()
                .find(|h| h.cloud == c.unsigned_abs() && h.ip == i)
            {
                wanted.push(h.clone());
            }
        }
    }
    let count = if ids.is_empty() { ips.len() } else { ids.len() };
    if count == 0 || count > 500 {
        return missing_or_illegal("host_id_list/ip_list");
    }
    wanted.dedup();
    if job.spec.script.is_some() {
        return script::batch_log(&job, &s, &wanted);
    }
    let mut task_logs = Vec::new();
    for h in &wanted {
        let (_, downloads, uploads) = logs_for(&s, h);
        let logs: Vec<Value> = downloads
            .iter()
            .chain(uploads.iter())
            .map(|f| file_log_json(f, true))
            .collect();
        if logs.is_empty() {
            continue;
        }
        task_logs.push(
            json!({"bk_host_id": h.id, "bk_cloud_id": h.cloud, "ip": h.ipv4(), "ipv6": h.ipv6(), "file_logs": logs}),
        );
    }
    JobReply::Ok(json!({
        "job_instance_id": job.id, "step_instance_id": job.step_id, "log_type": log_type::FILE,
        "script_task_logs": null, "file_task_logs": task_logs,
    }))
}

/// `operate_job_instance` (v2 and v3). Without `deliver_start`, a START is acknowledged but
/// never reaches the engine (the `start_lost` fault: JOB's asynchronous START event lost, so
/// the job stays in status 1).
pub(crate) fn operate(
    engine: &Engine,
    p: &Params,
    version: ApiVersion,
    deliver_start: bool,
) -> JobReply {
    let scope = match scope_of(p) {
        Ok(s) => s,
        Err(e) => return e,
    };
    if let Err(e) = check_scope_exists(&engine.world, &scope) {
        return e;
    }
    let invalid = || JobReply::err(code::ILLEGAL_PARAM, "Invalid request parameters");
    let id = match p.i64("job_instance_id") {
        Ok(Some(id)) if id > 0 => id.unsigned_abs(),
        Ok(_) => return invalid(),
        Err(_) => return JobReply::err(code::BAD_REQUEST, "Bad Request"),
    };
    let operation = match p.i64("operation_code") {
        Ok(Some(c)) => match operation_of(c) {
            Some(operation) => operation,
            None => return invalid(),
        },
        Ok(None) => return invalid(),
        Err(_) => return JobReply::err(code::BAD_REQUEST, "Bad Request"),
    };
    let Some(job) = engine.get(id).filter(|j| j.spec.scope == scope) else {
        return not_exist();
    };
    let r = match operation {
        OperationCode::Terminate => engine.terminate(&job),
        OperationCode::Start if deliver_start => engine.start(&job),
        OperationCode::Start => engine.acknowledge_start(&job),
    };
    match r {
        Err(e) => e,
        Ok(()) if version == ApiVersion::V3 => JobReply::Ok(
            json!({"job_instance_id": job.id, "job_instance_name": null, "step_instance_id": null}),
        ),
        Ok(()) => JobReply::Ok(json!({"job_instance_id": job.id, "job_instance_name": null})),
    }
}

/// The operation an `operation_code` names.
fn operation_of(code: i64) -> Option<OperationCode> {
    [OperationCode::Terminate, OperationCode::Start]
        .into_iter()
        .find(|operation| i64::from(operation.code()) == code)
}
