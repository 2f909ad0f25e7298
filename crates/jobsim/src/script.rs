//! `fast_execute_script` (v2 `job/`, v3 `jobv3/` and the gateway's `api/v3/`): the request
//! validated in JOB's order (`EsbFastExecuteScriptResourceImpl`,
//! `EsbFastExecuteScriptV3ResourceImpl`), the run (each target host runs the script through
//! the shell subset of [`crate::shell`] over its own directory), and the script step's
//! parts of the status and log answers.
//!
//! The status model is the transfers': job and step 1 → 2 → 3/4/11, hosts 5 → 7 → final.
//! A host ends 9 when the script exits 0 and 104 (`SCRIPT_NOT_ZERO_EXIT_CODE`) otherwise,
//! with its exit code; a host whose agent is down, not installed or without the account
//! fails before anything runs, as in a transfer; the job's timeout ends hosts still running
//! as 102, a terminate as 403.

use std::sync::Arc;

use base64::Engine as _;
use plan_bkjob::script::language;
use plan_bkjob::{HostStatus, code, gse_code};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::coerce::Params;
use crate::engine::{Engine, HostTask, Job, JobState};
use crate::front::JobReply;
use crate::hostfs::{HostFs, detail};
use crate::job::Outcome;
use crate::sources::target_failure;
use crate::submit::{
    AccountRef, ScriptJob, SubmitCtx, bad_t, callback_of, check_scope_exists, illegal, ip_sels,
    missing, missing_or_illegal, scope_of_submission, script_job, server_is_empty, v2_server,
    v3_server,
};
use crate::world::{HostRef, World};

type Check<T> = Result<T, JobReply>;

/// The script of a job, decoded.
#[derive(Debug, Clone)]
pub(crate) struct ScriptSpec {
    /// The script's text.
    pub(crate) content: String,
    /// `script_language` / `script_type` (only shell runs in the sandbox).
    pub(crate) language: i32,
}

/// One host's result of a script job (stored with its host: `persist`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct ScriptOutput {
    /// The script's exit code, once it ended.
    pub(crate) exit_code: Option<i64>,
    /// What it wrote, or why it did not run.
    pub(crate) log: String,
}

/// v2 `fast_execute_script`: bean validation (scope, `script_timeout`), then the script
/// (`script_id`, else `script_type` and `script_content`), the targets, the account, as
/// `EsbFastExecuteScriptResourceImpl` checks them.
pub(crate) fn parse_v2(p: &Params, ctx: &SubmitCtx<'_>) -> Check<crate::submit::JobSpec> {
    let world = ctx.world;
    let task_name = bad_t(p.string("task_name"))?;
    let content = bad_t(p.string("script_content"))?;
    let account = bad_t(p.string("account"))?;
    let script_type = bad_t(p.i64("script_type"))?;
    let script_id = bad_t(p.i64("script_id"))?;
    let ip_list = bad_t(crate::coerce::object_list(p, "ip_list"))?;
    let groups = bad_t(crate::coerce::string_list(p, "custom_query_id"))?;
    let target_server = bad_t(p.object("target_server"))?;
    let scope = scope_of_submission(p, world)?;
    let timeout_s = timeout_of(p, "script_timeout", world)?;
    let callback = callback_of(p, "bk_callback_url", world)?;
    check_scope_exists(world, &scope)?;
    if let Some(id) = script_id {
        // The sandbox has no script library to look `script_id` up in.
        return Err(illegal(if id < 1 {
            "script_id"
        } else {
            "script_id (not simulated)"
        }));
    }
    let language = script_type
        .filter(|t| language_ok(*t))
        .ok_or_else(|| illegal("script_type"))?;
    let content = content
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| illegal("script_content"))?;
    let ips = ip_list.unwrap_or_default();
    let groups = groups.unwrap_or_default();
    if ips.is_empty() && groups.is_empty() && target_server.is_none() {
        return Err(missing_or_illegal("ip_list|custom_query_id|target_server"));
    }
    let account = account
        .filter(|a| !a.trim().is_empty())
        .ok_or_else(|| missing("account"))?;
    let target_sels = match &target_server {
        Some(ts) => v2_server(ts)?,
        None => {
            let mut sels = ip_sels(&ips, false)?;
            sels.extend(groups.into_iter().map(crate::submit::Sel::Group));
            sels
        }
    };
    let script = ScriptSpec {
        content: decode(&content).ok_or_else(|| illegal("script_content"))?,
        language: i32::try_from(language).unwrap_or_default(),
    };
    let job = ScriptJob {
        name: name_of(task_name, world, ctx.now),
        scope,
        account: AccountRef::Alias(account),
        target_sels,
        timeout_s,
        callback,
    };
    script_job(ctx, job, script)
}

/// v3 `fast_execute_script`: bean validation (scope, `timeout`, the server's fields,
/// `callback_url`), then the script (`script_version_id` | `script_id` | `script_content`
/// with a valid `script_language`), the target server, the account, as
/// `EsbFastExecuteScriptV3ResourceImpl` checks them.
pub(crate) fn parse_v3(p: &Params, ctx: &SubmitCtx<'_>) -> Check<crate::submit::JobSpec> {
    let world = ctx.world;
    let task_name = bad_t(p.string("task_name"))?;
    let content = bad_t(p.string("script_content"))?.filter(|c| !c.is_empty());
    let script_id = bad_t(p.string("script_id"))?.filter(|c| !c.is_empty());
    let version_id = bad_t(p.i64("script_version_id"))?;
    let script_language = bad_t(p.i64("script_language"))?;
    let account_id = bad_t(p.i64("account_id"))?;
    let account_alias = bad_t(p.string("account_alias"))?;
    let target_server = bad_t(p.object("target_server"))?;
    let scope = scope_of_submission(p, world)?;
    let timeout_s = timeout_of(p, "timeout", world)?;
    let target_sels = target_server.as_ref().map(v3_server).transpose()?;
    let callback = callback_of(p, "callback_url", world)?;
    check_scope_exists(world, &scope)?;
    if version_id.is_none() && script_id.is_none() && content.is_none() {
        return Err(missing("script_version_id|script_id|script_content"));
    }
    match version_id {
        Some(id) if id < 1 => return Err(illegal("script_version_id")),
        // The sandbox has no script library to look a version or a script up in.
        Some(_) => return Err(illegal("script_version_id (not simulated)")),
        None if script_id.is_some() => return Err(illegal("script_id (not simulated)")),
        None => {}
    }
    let language = script_language
        .filter(|l| language_ok(*l))
        .ok_or_else(|| illegal("script_language"))?;
    let target_sels = match (&target_server, target_sels) {
        (Some(ts), Some(sels)) if !server_is_empty(ts) => sels,
        _ => return Err(missing("target_server")),
    };
    let account = match (
        account_id.filter(|i| *i > 0),
        account_alias.filter(|a| !a.trim().is_empty()),
    ) {
        (Some(id), _) => AccountRef::Id(id.unsigned_abs()),
        (None, Some(alias)) => AccountRef::Alias(alias),
        (None, None) => return Err(missing("account_id|account_alias")),
    };
    let script = ScriptSpec {
        content: decode(content.as_deref().unwrap_or_default())
            .ok_or_else(|| illegal("script_content"))?,
        language: i32::try_from(language).unwrap_or_default(),
    };
    let job = ScriptJob {
        name: name_of(task_name, world, ctx.now),
        scope,
        account,
        target_sels,
        timeout_s,
        callback,
    };
    script_job(ctx, job, script)
}

fn language_ok(language: i64) -> bool {
    i32::try_from(language).is_ok_and(language::is_valid)
}

/// JOB's `@Range(min = 1, max = MAX_JOB_TIMEOUT_SECONDS)` on the timeout field; absent is
/// JOB's default, 7200 s.
fn timeout_of(p: &Params, key: &str, world: &World) -> Check<u64> {
    let max = world.config().sim.max_timeout;
    match bad_t(p.i64(key))? {
        None => Ok(u64::from(plan_bkjob::limits::TIMEOUT_DEFAULT_SECONDS)),
        Some(t) if t < 1 || t.unsigned_abs() > max => Err(JobReply::err(
            code::BAD_REQUEST,
            format!("Job timeout must be between 1 and {max}"),
        )),
        Some(t) => Ok(t.unsigned_abs()),
    }
}

/// Base64 (standard, padding optional, surrounding whitespace ignored) to UTF-8 text, as
/// JOB's `Base64Util.decodeContentToStr` reads it; `None` when it is not base64.
fn decode(content: &str) -> Option<String> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let cleaned: String = content.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = engine.decode(cleaned).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn name_of(
    task_name: Option<String>,
    world: &World,
    now: chrono::DateTime<chrono::Local>,
) -> String {
    task_name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| {
            let prefix = if world.config().sim.language == "zh" {
                "快速执行脚本"
            } else {
                "Script Execution"
            };
            format!("{prefix}_{}", now.format("%Y%m%d%H%M%S%3f"))
        })
}

/// Runs the script on every target host after `host_wait`, until each has ended, the
/// deadline passes (hosts still running end 102) or a terminate comes (403).
pub(crate) async fn run_hosts(engine: &Arc<Engine>, job: &Arc<Job>, deadline: Instant) -> Outcome {
    let stopped = tokio::select! {
        () = tokio::time::sleep(engine.timings.host_wait) => false,
        () = job.stop.notified() => true,
    };
    let mut hosts = JoinSet::new();
    let outcome = if stopped {
        Outcome::Stopped
    } else {
        for idx in 0..job.spec.targets.len() {
            hosts.spawn(run_host(engine.clone(), job.clone(), idx));
        }
        wait(&mut hosts, job, deadline).await
    };
    let (status, code) = match outcome {
        Outcome::Done => return outcome,
        Outcome::TimedOut => (HostStatus::ScriptTimeout, gse_code::TIMEOUT),
        Outcome::Stopped => {
            tokio::time::sleep(engine.timings.stop_delay).await;
            (HostStatus::GseTaskTerminateSuccess, gse_code::TERMINATED)
        }
    };
    hosts.abort_all();
    let now = engine.clock.now_ms();
    job.with(|s| {
        for h in s.hosts.iter_mut().filter(|h| !h.status.is_finished()) {
            h.status = status;
            h.error_code = code;
            h.end_ms = Some(now);
        }
    });
    outcome
}

async fn wait(hosts: &mut JoinSet<()>, job: &Job, deadline: Instant) -> Outcome {
    loop {
        tokio::select! {
            next = hosts.join_next() => if next.is_none() { return Outcome::Done },
            () = tokio::time::sleep_until(deadline) => return Outcome::TimedOut,
            () = job.stop.notified() => return Outcome::Stopped,
        }
    }
}

/// One target host: running, its agent and account checked, the script run off the async
/// threads, its exit code giving the host's status.
async fn run_host(engine: Arc<Engine>, job: Arc<Job>, idx: usize) {
    let Some(host) = job.spec.targets.get(idx).cloned() else {
        return;
    };
    let waiting = job.with(|s| {
        s.hosts.get_mut(idx).is_some_and(|h| {
            let waiting = h.status == HostStatus::Waiting;
            if waiting {
                h.status = HostStatus::Running;
                h.error_code = gse_code::RUNNING;
            }
            waiting
        })
    });
    if !waiting {
        return;
    }
    let world = &engine.world;
    if job.stuck || world.host_stuck(&host) || world.host_silent(&host) {
        // GSE never reports on this host.
        std::future::pending::<()>().await;
    }
    let account = &job.spec.target_account.alias;
    let result = match target_failure(world, &host, account) {
        Some(failure) => Err((failure.status, failure.code, failure.detail)),
        None => {
            let root = world.host_root(host.cloud, &host.ip);
            let script = job.spec.script.clone();
            tokio::task::spawn_blocking(move || run_script(&root, script.as_deref()))
                .await
                .unwrap_or_else(|e| Err((HostStatus::ScriptFailed, gse_code::ERROR, e.to_string())))
        }
    };
    let now = engine.clock.now_ms();
    job.with(|s| {
        if let Some(h) = s
            .hosts
            .get_mut(idx)
            .filter(|h| h.status == HostStatus::Running)
        {
            end(h, result, now);
        }
    });
}

type HostResult = Result<crate::shell::Ran, (HostStatus, i64, String)>;

fn run_script(root: &std::path::Path, script: Option<&ScriptSpec>) -> HostResult {
    let Some(script) = script else {
        return Err((
            HostStatus::ScriptFailed,
            gse_code::ERROR,
            "no script".into(),
        ));
    };
    if script.language != language::SHELL {
        return Err((
            HostStatus::ScriptFailed,
            gse_code::ERROR,
            format!(
                "jobsim: only shell scripts (script_language {}) run in the sandbox, not {}",
                language::SHELL,
                script.language
            ),
        ));
    }
    let fs = HostFs::open(root).map_err(|e| {
        (
            HostStatus::ScriptFailed,
            gse_code::ERROR,
            format!("Cannot open the host: {}", detail(&e)),
        )
    })?;
    Ok(crate::shell::run(&script.content, &fs))
}

fn end(h: &mut HostTask, result: HostResult, now: i64) {
    let (status, code, output) = match result {
        Ok(ran) => {
            let status = if ran.exit_code == 0 {
                HostStatus::Success
            } else {
                HostStatus::ScriptNotZeroExitCode
            };
            let output = ScriptOutput {
                exit_code: Some(i64::from(ran.exit_code)),
                log: ran.output,
            };
            (status, gse_code::FINISHED, output)
        }
        Err((status, code, why)) => (
            status,
            code,
            ScriptOutput {
                exit_code: None,
                log: format!("{why}\n"),
            },
        ),
    };
    h.status = status;
    h.error_code = code;
    h.end_ms = Some(now);
    h.script = Some(output);
}

/// A host's `exit_code` in the status and log answers: known once its script ended.
pub(crate) fn exit_code(h: &HostTask) -> Value {
    h.script
        .as_ref()
        .and_then(|s| s.exit_code)
        .map_or(Value::Null, |c| json!(c))
}

/// A host's script output (empty before it ends).
pub(crate) fn log(h: &HostTask) -> &str {
    h.script.as_ref().map_or("", |s| s.log.as_str())
}

/// The step's `type`: a script step, or a file step.
pub(crate) fn step_type(job: &Job) -> i32 {
    if job.spec.script.is_some() {
        plan_bkjob::step_type::SCRIPT
    } else {
        plan_bkjob::step_type::FILE
    }
}

/// A host's `tag` in v3's status: JOB's empty tag for a script step, null for a file step.
pub(crate) fn tag(job: &Job) -> Value {
    if job.spec.script.is_some() {
        json!("")
    } else {
        Value::Null
    }
}

/// v3 `get_job_instance_ip_log` of a script step: the host's output, no file logs.
pub(crate) fn ip_log(s: &JobState, host: &HostRef) -> JobReply {
    let output = s
        .hosts
        .iter()
        .find(|h| h.host.cloud == host.cloud && h.host.ip == host.ip)
        .map_or("", log);
    JobReply::Ok(json!({
        "log_type": plan_bkjob::log_type::SCRIPT,
        "bk_host_id": if host.id > 0 { json!(host.id) } else { Value::Null },
        "bk_cloud_id": host.cloud, "ip": host.ipv4(), "ipv6": host.ipv6(),
        "log_content": output, "file_logs": null,
    }))
}

/// v3 `batch_get_job_instance_ip_log` of a script step: one entry per wanted target host.
pub(crate) fn batch_log(job: &Job, s: &JobState, wanted: &[HostRef]) -> JobReply {
    let logs: Vec<Value> = wanted
        .iter()
        .filter_map(|w| s.hosts.iter().find(|h| h.host == *w))
        .map(|h| {
            json!({"bk_host_id": h.host.id, "bk_cloud_id": h.host.cloud, "ip": h.host.ipv4(),
                "ipv6": h.host.ipv6(), "log_content": log(h)})
        })
        .collect();
    JobReply::Ok(json!({
        "job_instance_id": job.id, "step_instance_id": job.step_id,
        "log_type": plan_bkjob::log_type::SCRIPT, "script_task_logs": logs, "file_task_logs": null,
    }))
}
