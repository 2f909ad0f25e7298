//! Submission: v2 `fast_push_file` and v3 `fast_transfer_file` requests read leniently and
//! validated in JOB's order (bk-job-api.md §2.2, §3.1, §3.3), giving JOB's first error.

use std::net::Ipv4Addr;

use serde_json::Value;

use crate::coerce::{BadType, Params, i64_list, object_list, string_list};
use crate::file_sources::{self, FileSource, FileSourceRef};
use crate::front::{Caller, JobReply};
use crate::hostfs::is_plain_name;
use crate::world::{HostRef, ResolvedAccount, Scope, World};

use plan_bkjob::code;
use plan_bkjob::paths::is_valid_absolute_path;
use plan_bkjob::task_name::TASK_NAME_MAX_CHARS;

/// `file_type` (`TaskFileTypeEnum`): 1 a file on a server, 2 a JOB local file, 3 a
/// third-party file source, 4 a base64 file.
const FILE_TYPE_SERVER: i64 = 1;
const FILE_TYPE_THIRD_PARTY: i64 = 3;
const FILE_TYPE_BASE64: i64 = 4;
/// `transfer_mode` 1: the target directory must exist (2, the default, creates it).
const TRANSFER_MODE_STRICT: i64 = 1;

/// A host selector as the request named it.
#[derive(Debug, Clone)]
pub(crate) enum Sel {
    Ip(i64, String),
    Id(i64),
    Group(String),
    Topo(String, i64),
}

/// One file source of a validated job.
#[derive(Debug, Clone)]
pub(crate) struct JobSource {
    pub(crate) files: Vec<String>,
    pub(crate) account: ResolvedAccount,
    pub(crate) hosts: Vec<HostRef>,
    /// A third-party file source (`file_type = 3`): `hosts` is its file worker, whose files
    /// are the source's (`file_sources`).
    pub(crate) file_source: Option<FileSource>,
}

/// A validated, resolved job ready to run.
#[derive(Debug, Clone)]
pub(crate) struct JobSpec {
    pub(crate) scope: Scope,
    pub(crate) name: String,
    pub(crate) caller: Caller,
    pub(crate) target_path: String,
    pub(crate) target_name: Option<String>,
    pub(crate) target_account: ResolvedAccount,
    pub(crate) targets: Vec<HostRef>,
    pub(crate) sources: Vec<JobSource>,
    pub(crate) timeout_s: u64,
    pub(crate) upload_limit: Option<u64>,
    pub(crate) download_limit: Option<u64>,
    pub(crate) strict: bool,
    pub(crate) callback: Option<String>,
    pub(crate) start_task: bool,
    /// v3 `rolling_config`: the batches the targets run in (`None`: all at once).
    pub(crate) rolling: Option<crate::rolling::RollingSpec>,
    /// The script of a `fast_execute_script` job (which has no sources); `None` for a
    /// transfer.
    pub(crate) script: Option<std::sync::Arc<crate::script::ScriptSpec>>,
}

type Check<T> = Result<T, JobReply>;

fn bad() -> JobReply {
    JobReply::err(code::BAD_REQUEST, "Bad Request")
}
pub(crate) fn bad_t<T>(r: Result<T, BadType>) -> Check<T> {
    r.map_err(|_| bad())
}
pub(crate) fn missing(name: &str) -> JobReply {
    JobReply::err(
        code::MISSING_PARAM_WITH_PARAM_NAME,
        format!("Missing request parameter [{name}]"),
    )
}
pub(crate) fn illegal(name: &str) -> JobReply {
    JobReply::err(
        code::ILLEGAL_PARAM_WITH_PARAM_NAME,
        format!("Invalid request parameter [{name}]"),
    )
}
pub(crate) fn missing_or_illegal(name: &str) -> JobReply {
    JobReply::err(
        code::MISSING_OR_ILLEGAL_PARAM_WITH_PARAM_NAME,
        format!("Missing or invalid request parameter [{name}]"),
    )
}

/// Bean validation of the scope fields (§2.4), then existence (§2.2 step 1).
pub(crate) fn scope_of(p: &Params) -> Check<Scope> {
    let scope_type = bad_t(p.string("bk_scope_type"))?.unwrap_or_default();
    let scope_id = bad_t(p.string("bk_scope_id"))?.unwrap_or_default();
    let biz_id = bad_t(p.i64("bk_biz_id"))?;
    let scope = if !scope_type.is_empty() || !scope_id.is_empty() {
        if scope_type != "biz" && scope_type != "biz_set" {
            return Err(JobReply::err(code::BAD_REQUEST, "Invalid bk_scope_type"));
        }
        if scope_id.trim().is_empty() {
            return Err(JobReply::err(code::BAD_REQUEST, "Invalid bk_scope_id"));
        }
        // A non-numeric scope id names no business.
        let id = scope_id.trim().parse::<u64>().unwrap_or(0);
        Scope {
            kind: scope_type,
            id,
        }
    } else {
        match biz_id {
            None => return Err(JobReply::err(code::BAD_REQUEST, "Invalid bk_scope_type")),
            Some(id) if id < 1 => {
                return Err(JobReply::err(code::BAD_REQUEST, "Invalid bk_biz_id"));
            }
            Some(id) => Scope::from_biz_id(id.unsigned_abs()),
        }
    };
    Ok(scope)
}

/// With JOB's `bkBizIdCompatible` switch off (`[sim] bk_biz_id_compatible = false`), a bare
/// `bk_biz_id` names no scope: only `bk_scope_type` + `bk_scope_id` do.
pub(crate) fn scope_of_submission(p: &Params, world: &World) -> Check<Scope> {
    let named = |key: &str| p.get(key).is_some_and(|v| !v.is_null() && *v != "");
    if !world.config().sim.bk_biz_id_compatible && !named("bk_scope_type") && !named("bk_scope_id")
    {
        return Err(JobReply::err(code::BAD_REQUEST, "Invalid bk_scope_type"));
    }
    scope_of(p)
}

pub(crate) fn check_scope_exists(world: &World, scope: &Scope) -> Check<()> {
    if world.scope_exists(scope) {
        Ok(())
    } else {
        Err(JobReply::err(
            code::APP_NOT_EXIST,
            "Business/Business Set not exist or archived",
        ))
    }
}

fn timeout_of(p: &Params, world: &World, v3: bool) -> Check<u64> {
    let max = world.config().sim.max_timeout;
    match bad_t(p.i64("timeout"))? {
        None => Ok(7200),
        Some(t) if t < 1 && v3 => Err(JobReply::err(
            code::BAD_REQUEST,
            "Job timeout must be greater or equal than 1",
        )),
        Some(t) if t < 1 || t.unsigned_abs() > max => Err(JobReply::err(
            code::BAD_REQUEST,
            format!("Job timeout must be between 1 and {max}"),
        )),
        Some(t) => Ok(t.unsigned_abs()),
    }
}

pub(crate) fn callback_of(p: &Params, key: &str, world: &World) -> Check<Option<String>> {
    let Some(url) = bad_t(p.string(key))? else {
        return Ok(None);
    };
    if url.trim().is_empty() {
        return Ok(None);
    }
    let invalid = || {
        JobReply::err(
            code::BAD_REQUEST,
            "Callback url is invalid or not in the allowed list, please contact the platform administrator to add it",
        )
    };
    let parsed = url::Url::parse(url.trim()).map_err(|_| invalid())?;
    let ok_scheme = matches!(parsed.scheme(), "http" | "https");
    if !ok_scheme
        || parsed.host_str().is_none_or(str::is_empty)
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return Err(invalid());
    }
    let wl = &world.config().sim.callback_whitelist;
    if !wl.is_empty() && !wl.iter().any(|base| url.trim().starts_with(base.as_str())) {
        return Err(invalid());
    }
    Ok(Some(url.trim().to_string()))
}

fn speed_of(p: &Params, key: &str) -> Check<Option<u64>> {
    Ok(bad_t(p.i64(key))?.filter(|v| *v > 0).map(i64::unsigned_abs))
}

fn default_name(world: &World, now: chrono::DateTime<chrono::Local>) -> String {
    let prefix = if world.config().sim.language == "zh" {
        "快速分发文件"
    } else {
        "File Transfer"
    };
    format!("{prefix}_{}", now.format("%Y%m%d%H%M%S%3f"))
}

pub(crate) fn ip_sels(list: &[Params], v3_validate: bool) -> Check<Vec<Sel>> {
    let mut out = Vec::new();
    for ip in list {
        let cloud = bad_t(ip.i64("bk_cloud_id"))?;
        let addr = bad_t(ip.string("ip"))?;
        if v3_validate {
            match cloud {
                Some(c) if c >= 0 => {}
                _ => return Err(JobReply::err(code::BAD_REQUEST, "Invalid BK-Net")),
            }
            match &addr {
                Some(a) if a.parse::<Ipv4Addr>().is_ok() => {}
                _ => return Err(JobReply::err(code::BAD_REQUEST, "Invalid IP")),
            }
        }
        out.push(Sel::Ip(cloud.unwrap_or(0), addr.unwrap_or_default()));
    }
    Ok(out)
}

/// v2 `target_server` / `server` object (plain string group ids).
pub(crate) fn v2_server(s: &Params) -> Check<Vec<Sel>> {
    let mut sels = ip_sels(
        &bad_t(object_list(s, "ip_list"))?.unwrap_or_default(),
        false,
    )?;
    for g in bad_t(string_list(s, "dynamic_group_id_list"))?.unwrap_or_default() {
        sels.push(Sel::Group(g));
    }
    for t in bad_t(object_list(s, "topo_node_list"))?.unwrap_or_default() {
        let id = bad_t(t.i64("id"))?.unwrap_or(0);
        let ty = bad_t(t.string("node_type"))?.unwrap_or_default();
        sels.push(Sel::Topo(ty, id));
    }
    Ok(sels)
}

/// v3 `server` object, with nested bean validation; `None` when every list is empty.
pub(crate) fn v3_server(s: &Params) -> Check<Vec<Sel>> {
    let ids = bad_t(i64_list(s, "host_id_list"))?.unwrap_or_default();
    let ips = ip_sels(&bad_t(object_list(s, "ip_list"))?.unwrap_or_default(), true)?;
    let mut sels: Vec<Sel> = if ids.is_empty() {
        ips
    } else {
        ids.into_iter().map(Sel::Id).collect()
    };
    for g in bad_t(object_list(s, "dynamic_group_list"))?.unwrap_or_default() {
        match bad_t(g.string("id"))? {
            Some(id) => sels.push(Sel::Group(id)),
            None => {
                return Err(JobReply::err(
                    code::BAD_REQUEST,
                    "DynamicGroup ID cannot be empty",
                ));
            }
        }
    }
    for t in bad_t(object_list(s, "topo_node_list"))?.unwrap_or_default() {
        let Some(id) = bad_t(t.i64("id"))? else {
            return Err(JobReply::err(
                code::BAD_REQUEST,
                "Topo node ID can not be empty",
            ));
        };
        let Some(ty) = bad_t(t.string("node_type"))? else {
            return Err(JobReply::err(
                code::BAD_REQUEST,
                "Topo node type can not be empty",
            ));
        };
        sels.push(Sel::Topo(ty, id));
    }
    Ok(sels)
}

/// Host resolution across the whole job: non-existent hosts first (1244030), then hosts
/// outside the business (1244002), as TaskInstanceExecuteObjectProcessor does.
struct Resolver<'a> {
    world: &'a World,
    scope: &'a Scope,
    missing: Vec<String>,
    invalid: Vec<String>,
}

impl Resolver<'_> {
    fn resolve(&mut self, sels: &[Sel]) -> Vec<HostRef> {
        let mut out: Vec<HostRef> = Vec::new();
        let mut push = |h: HostRef, out: &mut Vec<HostRef>| {
            if !out.contains(&h) {
                out.push(h);
            }
        };
        for sel in sels {
            let pairs: Vec<(u64, String)> = match sel {
                Sel::Ip(c, ip) => {
                    // JOB looks static hosts up in CMDB by cloud and IPv4 (`bk_host_innerip`):
                    // an IPv6 address (reachable by host id, group or node) names no host.
                    if *c < 0 || ip.parse::<Ipv4Addr>().is_err() {
                        self.missing.push(format!("(ip:{c}:{ip})"));
                        continue;
                    }
                    vec![(c.unsigned_abs(), ip.clone())]
                }
                Sel::Id(id) => {
                    match u64::try_from(*id)
                        .ok()
                        .and_then(|id| self.world.host_by_id(id))
                    {
                        Some(h) => self.check_biz(h, &mut out, &mut push),
                        None => self.missing.push(format!("(host_id:{id})")),
                    }
                    continue;
                }
                Sel::Group(g) => self.world.dynamic_group(self.scope, g),
                Sel::Topo(t, id) => self.world.topo_node(self.scope, t, *id),
            };
            for (c, ip) in pairs {
                match self.world.host_by_ip(c, &ip) {
                    Some(h) => self.check_biz(h, &mut out, &mut push),
                    None => self.missing.push(format!("(ip:{c}:{ip})")),
                }
            }
        }
        out
    }

    fn check_biz(
        &mut self,
        h: HostRef,
        out: &mut Vec<HostRef>,
        push: &mut impl FnMut(HostRef, &mut Vec<HostRef>),
    ) {
        if self.world.in_business(self.scope, &h) {
            push(h, out);
        } else {
            let s = h.cloud_ip();
            if !self.invalid.contains(&s) {
                self.invalid.push(s);
            }
        }
    }

    fn finish(&mut self) -> Check<()> {
        self.missing.dedup();
        if !self.missing.is_empty() {
            return Err(JobReply::err(
                code::EXECUTE_OBJECT_NOT_EXIST,
                format!(
                    "Execute object referenced by the job does not exist. Number of non-existent execution objects: {}, execution object list: [{}]",
                    self.missing.len(),
                    self.missing.join(",")
                ),
            ));
        }
        if !self.invalid.is_empty() {
            return Err(JobReply::err(
                code::HOST_INVALID,
                format!(
                    "Hosts invalid. Please check whether the source or target host exists under the business [{}] of CMDB. Besides, please contact JOB administrator to add them to ip whitelist if you have to use hosts between businesses. Invalid {} hosts:{}",
                    self.world.biz_name(self.scope),
                    self.invalid.len(),
                    self.invalid.join(",")
                ),
            ));
        }
        Ok(())
    }
}

struct RawSource {
    files: Vec<String>,
    account: AccountRef,
    sels: Vec<Sel>,
    file_source: Option<FileSourceRef>,
}

#[derive(Debug, Clone)]
pub(crate) enum AccountRef {
    Alias(String),
    Id(u64),
}

fn account_not_exist(a: &AccountRef) -> JobReply {
    let name = match a {
        AccountRef::Alias(s) => s.clone(),
        AccountRef::Id(id) => format!("ID={id}"),
    };
    JobReply::err(
        code::ACCOUNT_NOT_EXIST,
        format!("Account [{name}] does not exist"),
    )
}

fn resolve_account(world: &World, scope: &Scope, a: &AccountRef) -> Check<ResolvedAccount> {
    let r = match a {
        AccountRef::Alias(s) => world.account_by_alias(scope, s),
        AccountRef::Id(id) => world.account_by_id(scope, *id),
    };
    r.ok_or_else(|| account_not_exist(a))
}

/// Context shared by both versions' submission.
pub(crate) struct SubmitCtx<'a> {
    pub(crate) world: &'a World,
    pub(crate) caller: &'a Caller,
    pub(crate) now: chrono::DateTime<chrono::Local>,
    pub(crate) running_jobs: usize,
    pub(crate) max_running_jobs: Option<usize>,
}

/// v2 `fast_push_file`.
pub(crate) fn parse_v2(p: &Params, ctx: &SubmitCtx<'_>) -> Check<JobSpec> {
    let world = ctx.world;
    // 0. Type coercion of every field (Jackson), then bean validation.
    let target_path = bad_t(p.string("file_target_path"))?;
    let account = bad_t(p.string("account"))?;
    let file_source = bad_t(object_list(p, "file_source"))?;
    let ip_list = bad_t(object_list(p, "ip_list"))?;
    let custom = bad_t(string_list(p, "custom_query_id"))?;
    let target_server = bad_t(p.object("target_server"))?;
    let task_name = bad_t(p.string("task_name"))?;
    let upload = speed_of(p, "upload_speed_limit")?;
    let download = speed_of(p, "download_speed_limit")?;
    let scope = scope_of_submission(p, world)?;
    let timeout_s = timeout_of(p, world, false)?;
    let callback = callback_of(p, "bk_callback_url", world)?;
    // 1. Scope.
    check_scope_exists(world, &scope)?;
    // 2. Target path (not trimmed in v2).
    let target_path = target_path.unwrap_or_default();
    if !is_valid_absolute_path(&target_path) {
        return Err(missing_or_illegal("file_target_path"));
    }
    // 3. Account.
    let account = account.unwrap_or_default();
    if account.trim().is_empty() {
        return Err(missing("account"));
    }
    // 4. Sources.
    let file_source = file_source.unwrap_or_default();
    if file_source.is_empty() {
        return Err(missing("file_source"));
    }
    let mut raw_sources = Vec::new();
    for src in &file_source {
        let files = bad_t(string_list(src, "files"))?.unwrap_or_default();
        if files.is_empty() {
            return Err(missing("file_source.files"));
        }
        if files.iter().any(|f| !is_valid_absolute_path(f)) {
            return Err(illegal("file_source.files"));
        }
        let acc = bad_t(src.string("account"))?.unwrap_or_default();
        if acc.is_empty() {
            return Err(missing("file_source.account"));
        }
        let sels = v2_selectors(src)?;
        let Some(sels) = sels else {
            return Err(missing(
                "file_source.ip_list|file_source.custom_query_id|file_source.target_servers",
            ));
        };
        raw_sources.push(RawSource {
            files,
            account: AccountRef::Alias(acc),
            sels,
            file_source: None,
        });
    }
    // 5. Targets.
    let target_sels = match &target_server {
        Some(ts) => v2_server(ts)?,
        None => {
            let ips = ip_list.unwrap_or_default();
            let groups = custom.unwrap_or_default();
            if ips.is_empty() && groups.is_empty() {
                return Err(missing("ip_list|custom_query_id|target_servers"));
            }
            let mut s = ip_sels(&ips, false)?;
            s.extend(groups.into_iter().map(Sel::Group));
            s
        }
    };
    let name = task_name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| default_name(world, ctx.now));
    finish(
        ctx,
        Finish {
            scope,
            name,
            target_path,
            target_name: None,
            target_account: AccountRef::Alias(account),
            target_sels,
            raw_sources,
            timeout_s,
            upload,
            download,
            strict: false,
            callback,
            start_task: true,
            source_id_quirk: false,
        },
    )
}

/// v2 per-source selectors: `target_server` wins; else `ip_list` and `custom_query_id`.
fn v2_selectors(src: &Params) -> Check<Option<Vec<Sel>>> {
    let ts = bad_t(src.object("target_server"))?;
    if let Some(ts) = ts {
        return v2_server(&ts).map(Some);
    }
    let ips = bad_t(object_list(src, "ip_list"))?.unwrap_or_default();
    let groups = bad_t(string_list(src, "custom_query_id"))?.unwrap_or_default();
    if ips.is_empty() && groups.is_empty() {
        return Ok(None);
    }
    let mut s = ip_sels(&ips, false)?;
    s.extend(groups.into_iter().map(Sel::Group));
    Ok(Some(s))
}

pub(crate) fn server_is_empty(s: &Params) -> bool {
    [
        "host_id_list",
        "ip_list",
        "dynamic_group_list",
        "topo_node_list",
    ]
    .iter()
    .all(|k| s.get(k).and_then(Value::as_array).is_none_or(Vec::is_empty))
}

/// v3 `fast_transfer_file`.
pub(crate) fn parse_v3(p: &Params, ctx: &SubmitCtx<'_>) -> Check<JobSpec> {
    let world = ctx.world;
    // 0. Types.
    let task_name = bad_t(p.string("task_name"))?;
    let account_id = bad_t(p.i64("account_id"))?;
    let account_alias = bad_t(p.string("account_alias"))?;
    let target_path = bad_t(p.string("file_target_path"))?;
    let target_name = bad_t(p.string("file_target_name"))?;
    let sources = bad_t(object_list(p, "file_source_list"))?;
    let upload = speed_of(p, "upload_speed_limit")?;
    let download = speed_of(p, "download_speed_limit")?;
    let transfer_mode = bad_t(p.i64("transfer_mode"))?;
    let target_server = bad_t(p.object("target_server"))?;
    let start_task = bad_t(p.bool("start_task"))?.unwrap_or(true);
    // 1. Bean validation: scope, timeout, nested servers, callback, rolling.
    let scope = scope_of_submission(p, world)?;
    let timeout_s = timeout_of(p, world, true)?;
    let target_sels = match &target_server {
        Some(ts) => Some(v3_server(ts)?),
        None => None,
    };
    let mut source_servers = Vec::new();
    for src in sources.iter().flatten() {
        match bad_t(src.object("server"))? {
            Some(s) => source_servers.push(Some((v3_server(&s)?, server_is_empty(&s)))),
            None => source_servers.push(None),
        }
    }
    let callback = callback_of(p, "callback_url", world)?;
    let rolling = crate::rolling::bean_check(p)?;
    // 2. Scope.
    check_scope_exists(world, &scope)?;
    // 3. Target path (trimmed in v3).
    let target_path = target_path.unwrap_or_default().trim().to_string();
    if !is_valid_absolute_path(&target_path) {
        return Err(missing_or_illegal("file_target_path"));
    }
    // JOB hands `file_target_name` to GSE unchecked, and on a real host `../x` or `/etc/x`
    // would be written there. The sandbox refuses any rename that is not one plain name, with
    // JOB's code for an invalid parameter, before anything runs.
    let target_name = target_name.filter(|n| !n.trim().is_empty());
    if target_name.as_deref().is_some_and(|n| !is_plain_name(n)) {
        return Err(illegal("file_target_name"));
    }
    // 4. Account presence.
    let target_account = match (
        account_id.filter(|i| *i > 0),
        account_alias.filter(|a| !a.trim().is_empty()),
    ) {
        (Some(id), _) => AccountRef::Id(id.unsigned_abs()),
        (None, Some(alias)) => AccountRef::Alias(alias),
        (None, None) => return Err(missing("account_id|account_alias")),
    };
    // 5. Target server.
    let target_sels = match (&target_server, target_sels) {
        (Some(ts), Some(sels)) if !server_is_empty(ts) => sels,
        _ => return Err(missing("target_server")),
    };
    // 6. Sources.
    let sources = sources.unwrap_or_default();
    if sources.is_empty() {
        return Err(missing("file_source_list"));
    }
    crate::rolling::check_source_types(rolling.as_ref(), &sources)?;
    let raw_sources = sources
        .iter()
        .zip(source_servers)
        .map(|(src, server)| v3_source(src, server))
        .collect::<Check<Vec<RawSource>>>()?;
    let name = task_name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| default_name(world, ctx.now));
    let mut spec = finish(
        ctx,
        Finish {
            scope,
            name,
            target_path,
            target_name,
            target_account,
            target_sels,
            raw_sources,
            timeout_s,
            upload,
            download,
            strict: transfer_mode == Some(TRANSFER_MODE_STRICT),
            callback,
            start_task,
            source_id_quirk: true,
        },
    )?;
    // 15. JOB computes the batches when it saves the rolling config, over the resolved targets.
    if let Some(request) = rolling {
        let sources: Vec<(usize, usize)> = spec
            .sources
            .iter()
            .map(|s| (s.hosts.len(), s.files.len()))
            .collect();
        spec.rolling = Some(crate::rolling::plan_batches(
            request,
            spec.targets.len(),
            &sources,
        )?);
    }
    Ok(spec)
}

/// One `file_source_list` entry of v3, validated in JOB's order (§3.3 step 6); `server` is
/// its bean-validated server and whether that server names no host.
fn v3_source(src: &Params, server: Option<(Vec<Sel>, bool)>) -> Check<RawSource> {
    let files: Vec<String> = bad_t(string_list(src, "file_list"))?
        .unwrap_or_default()
        .into_iter()
        .map(|f| f.trim().to_string())
        .collect();
    if files.is_empty() {
        return Err(missing("file_source.file_list"));
    }
    let file_type = bad_t(src.i64("file_type"))?.unwrap_or(FILE_TYPE_SERVER);
    if !(FILE_TYPE_SERVER..=FILE_TYPE_BASE64).contains(&file_type) {
        return Err(illegal("file_source.file_type"));
    }
    if file_type == FILE_TYPE_THIRD_PARTY {
        // Files named `bucket/path` in the file source; no account or server of its own.
        let Some(reference) = file_sources::reference(src)? else {
            return Err(missing(
                "file_source.file_source_id/file_source.file_source_code",
            ));
        };
        return Ok(RawSource {
            files: files.iter().map(|f| file_sources::entry_path(f)).collect(),
            account: AccountRef::Id(0),
            sels: Vec::new(),
            file_source: Some(reference),
        });
    }
    if file_type != FILE_TYPE_SERVER {
        // JOB local and base64 files are not simulated.
        return Err(illegal("file_source.file_type"));
    }
    if files.iter().any(|f| !is_valid_absolute_path(f)) {
        return Err(illegal("file_source.file_list"));
    }
    let Some(acc) = bad_t(src.object("account"))? else {
        return Err(missing("file_source.account"));
    };
    let acc_id = bad_t(acc.i64("id"))?.filter(|i| *i >= 1);
    let acc_alias = bad_t(acc.string("alias"))?.filter(|a| !a.trim().is_empty());
    let account = match (acc_id, acc_alias) {
        (Some(id), _) => AccountRef::Id(id.unsigned_abs()),
        (None, Some(a)) => AccountRef::Alias(a),
        (None, None) => {
            return Err(missing(
                "file_source.account.account_id|file_source.account.account_alias",
            ));
        }
    };
    let sels = match server {
        Some((sels, false)) => sels,
        _ => return Err(missing("file_source.server")),
    };
    Ok(RawSource {
        files,
        account,
        sels,
        file_source: None,
    })
}

struct Finish {
    scope: Scope,
    name: String,
    target_path: String,
    target_name: Option<String>,
    target_account: AccountRef,
    target_sels: Vec<Sel>,
    raw_sources: Vec<RawSource>,
    timeout_s: u64,
    upload: Option<u64>,
    download: Option<u64>,
    strict: bool,
    callback: Option<String>,
    start_task: bool,
    source_id_quirk: bool,
}

/// The engine checks shared by v2 and v3 (§3.3 steps 8-13).
fn finish(ctx: &SubmitCtx<'_>, f: Finish) -> Check<JobSpec> {
    let world = ctx.world;
    // 8. Running-job quota (off unless configured).
    if let Some(max) = ctx.max_running_jobs
        && ctx.running_jobs >= max
    {
        return Err(JobReply::err(
            code::RUNNING_JOB_EXCEED_RESOURCE_SCOPE_QUOTA,
            "The total number of jobs currently executed exceeds the resource scope quota limit",
        ));
    }
    // 9. Third-party file sources: a code resolved to its source (JOB's conversion).
    let file_sources = f
        .raw_sources
        .iter()
        .map(|s| {
            s.file_source
                .as_ref()
                .map(|r| file_sources::resolve(world, &f.scope, r))
                .transpose()
        })
        .collect::<Check<Vec<Option<FileSource>>>>()?;
    // 10. Accounts: target first, then each source.
    let target_account = resolve_account(world, &f.scope, &f.target_account)?;
    let mut source_accounts = Vec::new();
    for s in &f.raw_sources {
        let acc = match (&s.account, f.source_id_quirk) {
            // A file source's files are served by its worker, not under a source account.
            _ if s.file_source.is_some() => target_account.clone(),
            // JOB re-reads the target account for a source given by id (§3.3 step 10).
            (AccountRef::Id(_), true) => target_account.clone(),
            (a, _) => resolve_account(world, &f.scope, a)?,
        };
        source_accounts.push(acc);
    }
    // 11. Hosts.
    let mut resolver = Resolver {
        world,
        scope: &f.scope,
        missing: Vec::new(),
        invalid: Vec::new(),
    };
    let targets = resolver.resolve(&f.target_sels);
    let source_hosts: Vec<Vec<HostRef>> = f
        .raw_sources
        .iter()
        .map(|s| match s.file_source {
            Some(_) => vec![file_sources::worker()],
            None => resolver.resolve(&s.sels),
        })
        .collect();
    resolver.finish()?;
    // 12. Non-empty.
    if targets.is_empty() {
        return Err(JobReply::err(
            code::STEP_TARGET_EXECUTE_OBJECT_EMPTY,
            format!("Step [{}] target execute object is empty", f.name),
        ));
    }
    if source_hosts.iter().any(Vec::is_empty) {
        return Err(JobReply::err(
            code::STEP_SOURCE_EXECUTE_OBJECT_EMPTY,
            format!("Step [{}] source execute object is empty", f.name),
        ));
    }
    // 13. File-task limit.
    let per_target: u64 = f
        .raw_sources
        .iter()
        .zip(&source_hosts)
        .map(|(s, h)| (s.files.len() as u64).saturating_mul(h.len() as u64))
        .fold(0u64, u64::saturating_add);
    let limit = world.config().sim.file_task_limit;
    if per_target.saturating_mul(targets.len() as u64) > limit {
        return Err(JobReply::err(
            code::FILE_TASKS_EXCEEDS_LIMIT,
            format!("The number of file tasks exceeds the limit:{limit}"),
        ));
    }
    // 14. JOB stores the name in a `varchar(512)` column: a longer one fails the insert,
    // an uncaught exception answered as an internal error.
    if f.name.chars().count() > TASK_NAME_MAX_CHARS {
        return Err(JobReply::err(code::INTERNAL_ERROR, "Internal Server Error"));
    }
    let sources = f
        .raw_sources
        .into_iter()
        .zip(source_accounts)
        .zip(source_hosts)
        .zip(file_sources)
        .map(|(((s, account), hosts), file_source)| JobSource {
            files: s.files,
            account,
            hosts,
            file_source,
        })
        .collect();
    Ok(JobSpec {
        scope: f.scope,
        name: f.name,
        caller: ctx.caller.clone(),
        target_path: f.target_path,
        target_name: f.target_name,
        target_account,
        targets,
        sources,
        timeout_s: f.timeout_s,
        upload_limit: f.upload,
        download_limit: f.download,
        strict: f.strict,
        callback: f.callback,
        start_task: f.start_task,
        rolling: None,
        script: None,
    })
}

/// What a `fast_execute_script` request names besides its script, read by `script.rs`.
pub(crate) struct ScriptJob {
    pub(crate) scope: Scope,
    pub(crate) name: String,
    pub(crate) account: AccountRef,
    pub(crate) target_sels: Vec<Sel>,
    pub(crate) timeout_s: u64,
    pub(crate) callback: Option<String>,
}

/// A `fast_execute_script` job: its targets, account and name checked as a transfer's are
/// (quota, account, hosts, name; there are no sources), then its script attached.
pub(crate) fn script_job(
    ctx: &SubmitCtx<'_>,
    job: ScriptJob,
    script: crate::script::ScriptSpec,
) -> Check<JobSpec> {
    let mut spec = finish(
        ctx,
        Finish {
            scope: job.scope,
            name: job.name,
            target_path: String::new(),
            target_name: None,
            target_account: job.account,
            target_sels: job.target_sels,
            raw_sources: Vec::new(),
            timeout_s: job.timeout_s,
            upload: None,
            download: None,
            strict: false,
            callback: job.callback,
            start_task: true,
            source_id_quirk: false,
        },
    )?;
    spec.script = Some(std::sync::Arc::new(script));
    Ok(spec)
}
