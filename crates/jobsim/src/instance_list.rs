//! v3 `get_job_instance_list`: a scope's jobs created in a time window, filtered and paged,
//! newest first, as bk-job's `EsbGetJobInstanceListV3ResourceImpl` and
//! `TaskInstanceDAOImpl.listPageTaskInstance` answer it.
//!
//! JOB's order: Jackson's types, bean validation (the scope, `length` in 1..=1000), the scope's
//! existence, then `checkRequest` (the creation window is required, positive, non-empty and at
//! most 30 days wide; `type` must be a task type). Filters that name no value JOB knows
//! (`launch_mode`, `status`) throw inside the query, which JOB answers as an internal error.

use plan_bkjob::{JobInstanceListRequest, RunStatus, code, job_type, start_way};
use serde_json::{Value, json};

use crate::coerce::{BadType, Params};
use crate::engine::{Engine, Job};
use crate::front::{Front, JobReply};
use crate::submit::{check_scope_exists, missing_or_illegal, scope_of};
use crate::world::Scope;

type Check<T> = Result<T, JobReply>;

/// JOB's default page size when a POST body carries `"length": null` (the DAO's
/// `getLengthOrDefault(10)`; a missing `length` is the request's own default, 20).
const NULL_LENGTH: i64 = 10;

fn bad_request() -> JobReply {
    JobReply::err(code::BAD_REQUEST, "Bad Request")
}

fn bad<T>(r: Result<T, BadType>) -> Check<T> {
    r.map_err(|_| bad_request())
}

/// An `Integer` field: Jackson refuses a number that does not fit 32 bits.
fn int(p: &Params, key: &str) -> Check<Option<i64>> {
    match bad(p.i64(key))? {
        Some(v) if i32::try_from(v).is_err() => Err(bad_request()),
        other => Ok(other),
    }
}

/// What one request asks for, read and validated.
struct Query {
    scope: Scope,
    job_instance_id: Option<i64>,
    create_from: i64,
    create_to: i64,
    cron_id: Option<i64>,
    operator: Option<String>,
    name: Option<String>,
    launch_mode: Option<i64>,
    job_type: Option<i64>,
    status: Option<RunStatus>,
    ip: Option<String>,
    start: i64,
    length: i64,
}

/// v3 `get_job_instance_list`.
pub(crate) fn v3_job_list(engine: &Engine, p: &Params, front: Front, is_get: bool) -> JobReply {
    match read_query(engine, p, front, is_get) {
        Ok(query) => JobReply::Ok(page(engine, &query)),
        Err(refusal) => refusal,
    }
}

fn read_query(engine: &Engine, p: &Params, front: Front, is_get: bool) -> Check<Query> {
    let get = front == Front::Gateway && is_get;
    // The GET handler's required `@RequestParam`s.
    if get && !(p.has("create_time_start") && p.has("create_time_end")) {
        return Err(bad_request());
    }
    // 0. Types.
    let job_instance_id = bad(p.i64("job_instance_id"))?;
    let create_from = bad(p.i64("create_time_start"))?;
    let create_to = bad(p.i64("create_time_end"))?;
    let cron_id = bad(p.i64("job_cron_id"))?;
    let operator = bad(p.string("operator"))?;
    let name = bad(p.string("name"))?;
    let launch_mode = int(p, "launch_mode")?;
    let job_type = int(p, "type")?;
    let status = int(p, "status")?;
    let ip = bad(p.string("ip"))?;
    let start = int(p, "start")?;
    let length = int(p, "length")?;
    // 1. Bean validation: the scope, then `@Range(min = 1, max = 1000)` on `length`.
    let scope = scope_of(p)?;
    let length = match length {
        Some(n) if !(1..=JobInstanceListRequest::MAX_LENGTH).contains(&n) => {
            return Err(JobReply::err(
                code::BAD_REQUEST,
                format!(
                    "The param 'length' must be in range: [1,{}]",
                    JobInstanceListRequest::MAX_LENGTH
                ),
            ));
        }
        Some(n) => n,
        // Jackson leaves an explicit `null` as null, and the DAO then takes its own default.
        None if !get && p.0.get("length").is_some_and(Value::is_null) => NULL_LENGTH,
        None => JobInstanceListRequest::DEFAULT_LENGTH,
    };
    // 2. The scope exists.
    check_scope_exists(&engine.world, &scope)?;
    // 3. `checkRequest`.
    let (create_from, create_to) = creation_window(create_from, create_to)?;
    if job_type.is_some_and(|t| !(job_type::PLAN..=job_type::FILE).contains(&(t as i32))) {
        return Err(JobReply::err(
            code::ILLEGAL_PARAM,
            "Invalid request parameters",
        ));
    }
    // 4. The query's enum lookups: `TaskStartupModeEnum.getStartupMode` and
    // `RunStatusEnum.valueOf` throw on a value they do not know.
    let internal = || JobReply::err(code::INTERNAL_ERROR, "Internal error");
    if launch_mode.is_some_and(|m| !(start_way::WEB..=start_way::CRON).contains(&(m as i32))) {
        return Err(internal());
    }
    let status = match status.map(|s| RunStatus::from_code(s as i32)) {
        Some(RunStatus::Unknown(_)) => return Err(internal()),
        other => other,
    };
    Ok(Query {
        scope,
        job_instance_id: job_instance_id.filter(|id| *id > 0),
        create_from,
        create_to,
        cron_id: cron_id.filter(|id| *id > 0),
        operator: operator.filter(|o| !o.trim().is_empty()),
        name: name.filter(|n| !n.trim().is_empty()),
        launch_mode,
        job_type,
        status,
        ip: ip.filter(|i| !i.is_empty()),
        // The DAO's `getStartOrDefault(0)`: a negative start is the first page.
        start: start.filter(|s| *s >= 0).unwrap_or(0),
        length,
    })
}

/// `create_time_start` and `create_time_end`: both present and positive, the end after the
/// start, at most 30 days apart.
fn creation_window(from: Option<i64>, to: Option<i64>) -> Check<(i64, i64)> {
    let from = from
        .filter(|t| *t >= 1)
        .ok_or_else(|| missing_or_illegal("create_time_start"))?;
    let to = to
        .filter(|t| *t >= 1)
        .ok_or_else(|| missing_or_illegal("create_time_end"))?;
    let span = to.saturating_sub(from);
    if span <= 0 {
        return Err(missing_or_illegal("create_time_start|create_time_end"));
    }
    if span > JobInstanceListRequest::MAX_CREATE_TIME_SPAN_MS {
        return Err(JobReply::err(
            code::ILLEGAL_PARAM,
            "Invalid request parameters",
        ));
    }
    Ok((from, to))
}

/// The page: `{start, length, total, data}`, `data` null when the page is empty (JOB only
/// sets it for a non-empty page).
fn page(engine: &Engine, q: &Query) -> Value {
    let mut jobs: Vec<_> = engine
        .jobs()
        .into_iter()
        .filter(|job| matches(job, q))
        .collect();
    // `ORDER BY create_time DESC`; ids grow with time, so they order equal times the same way.
    jobs.sort_by_key(|job| std::cmp::Reverse((job.with(|s| s.create_ms), job.id)));
    let total = jobs.len();
    let offset = usize::try_from(q.start).unwrap_or(usize::MAX);
    let length = usize::try_from(q.length).unwrap_or(0);
    let data: Vec<Value> = jobs
        .iter()
        .skip(offset)
        .take(length)
        .map(|job| summary(engine, job))
        .collect();
    json!({
        "start": q.start,
        "length": q.length,
        "total": total,
        "data": if data.is_empty() { Value::Null } else { Value::Array(data) },
    })
}

/// `buildSearchCondition`: the scope always; a job id alone when given; every other filter
/// otherwise.
fn matches(job: &Job, q: &Query) -> bool {
    let spec = &job.spec;
    if spec.scope != q.scope {
        return false;
    }
    if let Some(id) = q.job_instance_id {
        return i64::try_from(job.id).is_ok_and(|own| own == id);
    }
    let (create_ms, status) = job.with(|s| (s.create_ms, s.status));
    // MySQL compares with the table's case-insensitive collation.
    let operator_ok = q
        .operator
        .as_ref()
        .is_none_or(|o| o.to_lowercase() == spec.caller.username.to_lowercase());
    let host_ok = q.ip.as_ref().is_none_or(|ip| {
        let sources = spec.sources.iter().flat_map(|s| s.hosts.iter());
        spec.targets.iter().chain(sources).any(|h| &h.ip == ip)
    });
    (q.create_from..=q.create_to).contains(&create_ms)
        && q.cron_id.is_none()
        && operator_ok
        && q.name.as_ref().is_none_or(|n| like_contains(&spec.name, n))
        && q.status.is_none_or(|s| s == status)
        && q.launch_mode.is_none_or(|m| m == i64::from(start_way::API))
        && q.job_type.is_none_or(|t| t == i64::from(type_of(job)))
        && host_ok
}

/// `TaskTypeEnum`: a `fast_execute_script` job is a script job, any other a file distribution.
fn type_of(job: &Job) -> i32 {
    if job.spec.script.is_some() {
        job_type::SCRIPT
    } else {
        job_type::FILE
    }
}

/// One job as `EsbTaskInstanceV3DTO`. A fast transfer has no plan or template (-1); a running
/// job's `total_time` is its time so far (`computeTotalTime`).
fn summary(engine: &Engine, job: &Job) -> Value {
    let s = job.snapshot();
    let total_time = match (s.start_ms, s.end_ms) {
        (Some(start), Some(end)) => Some(end - start),
        (Some(start), None)
            if matches!(
                s.status,
                RunStatus::Running | RunStatus::WaitingUser | RunStatus::Stopping
            ) =>
        {
            Some(engine.clock.now_ms() - start)
        }
        _ => None,
    };
    let scope = &job.spec.scope;
    json!({
        "bk_biz_id": scope.id, "bk_scope_type": scope.kind, "bk_scope_id": scope.id.to_string(),
        "job_instance_id": job.id, "job_plan_id": -1, "job_template_id": -1,
        "name": job.spec.name, "operator": job.spec.caller.username,
        "launch_mode": start_way::API, "status": s.status,
        "start_time": s.start_ms, "end_time": s.end_ms, "total_time": total_time,
        "create_time": s.create_ms, "type": type_of(job),
    })
}

/// `name LIKE '%needle%'` as MySQL matches it under a case-insensitive collation: `%` is any
/// run of characters, `_` one character, `\` makes the next character literal. JOB does not
/// escape the name, so its wildcards stay wildcards.
fn like_contains(haystack: &str, needle: &str) -> bool {
    let text: Vec<char> = haystack.to_lowercase().chars().collect();
    let mut pattern = vec![Token::Any];
    let mut chars = needle
        .to_lowercase()
        .chars()
        .collect::<Vec<_>>()
        .into_iter();
    while let Some(c) = chars.next() {
        let token = match c {
            '%' => Token::Any,
            '_' => Token::One,
            '\\' => Token::Char(chars.next().unwrap_or('\\')),
            c => Token::Char(c),
        };
        // Runs of `%` are one `%`: it keeps the matcher's work within text × pattern.
        if !(token == Token::Any && pattern.last() == Some(&Token::Any)) {
            pattern.push(token);
        }
    }
    if pattern.last() != Some(&Token::Any) {
        pattern.push(Token::Any);
    }
    let fixed = pattern.iter().filter(|t| **t != Token::Any).count();
    fixed <= text.len() && wildcard_match(&text, &pattern)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Any,
    One,
    Char(char),
}

/// Greedy wildcard matching with one backtrack point (the last `%`): linear in practice,
/// text × pattern at worst.
fn wildcard_match(text: &[char], pattern: &[Token]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::Any) => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(Token::One) => {
                t += 1;
                p += 1;
            }
            Some(Token::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match backtrack {
                Some((bp, bt)) => {
                    p = bp + 1;
                    t = bt + 1;
                    backtrack = Some((bp, bt + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|tok| *tok == Token::Any)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_is_a_case_insensitive_contains_with_wildcards() {
        for (name, needle, want) in [
            ("plan:site/push-a@r1", "push-a", true),
            ("plan:site/push-a@r1", "PUSH-A", true),
            ("plan:site/push-a@r1", "push_a", true),
            ("plan:site/pushXa@r1", "push_a", true),
            ("plan:site/push-a@r1", "push%r1", true),
            ("plan:site/push-a@r1", "push-b", false),
            ("plan:site/push-a@r1", "plan:site/push-a@r1", true),
            ("plan:site/push-a@r1", "plan:site/push-a@r12", false),
            ("100% done", "100\\%", true),
            ("100 done", "100\\%", false),
            ("a_b", "a\\_b", true),
            ("axb", "a\\_b", false),
            ("", "%", true),
            ("abc", "", true),
        ] {
            assert_eq!(
                like_contains(name, needle),
                want,
                "{name:?} LIKE %{needle}%"
            );
        }
    }

    #[test]
    fn long_patterns_stay_cheap() {
        let name = "a".repeat(512);
        let needle = format!("{}b", "%a".repeat(5000));
        assert!(!like_contains(&name, &needle));
    }

    #[test]
    fn the_window_is_required_positive_and_at_most_30_days() {
        let day = 24 * 60 * 60 * 1000;
        assert!(creation_window(Some(1), Some(2)).is_ok());
        assert!(creation_window(Some(1), Some(1 + 30 * day)).is_ok());
        for (from, to) in [
            (None, Some(5)),
            (Some(0), Some(5)),
            (Some(5), None),
            (Some(5), Some(5)),
            (Some(6), Some(5)),
            (Some(1), Some(2 + 30 * day)),
        ] {
            assert!(creation_window(from, to).is_err(), "{from:?}..{to:?}");
        }
    }
}
