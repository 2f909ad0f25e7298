//! Verified delivery (`verify` on a push): once JOB reports a push's job a success, what the
//! targets received is checked against the sources.
//!
//! * `"size"`: the checksum script runs on the sources only (their exact sizes); each
//!   target's size is the one JOB's file log reports for the delivered file (its last line
//!   naming the file), compared in JOB's display units.
//! * `"sha256"`: one checksum script job (`plan_bkjob::script`, the refresh's script) hashes
//!   the delivered files on the targets and the source files on the sources (one job per
//!   execution account when the sources and targets run under different ones).
//!
//! A target whose file differs, or is missing, is listed with each file; a target the script
//! could not read (its agent, its account) "cannot be verified". Either fails the push: a
//! delivery nobody could check is not reported verified.

use std::collections::BTreeMap;

use plan_bkjob::file_log::{FileLogLine, display_size, parse_size};
use plan_bkjob::script::{FileFacts, Verdict};
use plan_bkjob::{FileLogV3, FileMode, HostState, IpHost};
use plan_parser::{Plan, Push, Verify};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::{ChecksumScript, JobApi, JobRef};
use crate::push::parse_host;
use crate::refresh::{HostFacts, delivered_path, literal};
use crate::report::HostResult;

/// How many hex digits of a SHA-256 the report shows.
const DIGEST_PREFIX: usize = 12;

/// How many rows the per-host table shows: a fleet where every host differs stays a
/// readable message (the `differing` list itself has every host).
pub(crate) const TABLE_ROWS: usize = 50;

/// How the delivered bytes were checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMethod {
    /// Sizes in JOB's file log against the source's.
    Size,
    /// SHA-256 of the delivered files against the source's, by a script job.
    Sha256,
}

impl From<Verify> for VerifyMethod {
    fn from(verify: Verify) -> Self {
        match verify {
            Verify::Size => VerifyMethod::Size,
            Verify::Sha256 => VerifyMethod::Sha256,
        }
    }
}

impl VerifyMethod {
    /// `size` or `sha256`, as plans write it.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyMethod::Size => "size",
            VerifyMethod::Sha256 => "sha256",
        }
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Verification {
    /// How it checked.
    pub method: VerifyMethod,
    /// Target hosts checked.
    pub hosts: usize,
    /// Target hosts holding every file as the sources do.
    pub verified: usize,
    /// Targets holding something else, each with its files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differing: Vec<HostMismatch>,
    /// Targets that could not be checked, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cannot_verify: Vec<HostUnverified>,
    /// The script jobs it ran (JOB job instance ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub script_jobs: Vec<i64>,
    /// Why nothing could be checked (a source unreadable, a script job refused): the push
    /// fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A target whose delivered files differ from the sources'.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostMismatch {
    /// `cloud:ip` (or `host_id:N` when JOB gave no address).
    pub host: String,
    /// JOB's `bk_host_id`, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<i64>,
    /// The files that differ.
    pub files: Vec<FileMismatch>,
}

/// One delivered file that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileMismatch {
    /// The delivered path.
    pub path: String,
    /// The source's: its size (`size`) or the first 12 hex digits of its SHA-256.
    pub expected: String,
    /// The target's, in the same form, or `missing`.
    pub got: String,
}

/// A target that could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostUnverified {
    /// `cloud:ip` (or `host_id:N` when JOB gave no address).
    pub host: String,
    /// JOB's `bk_host_id`, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<i64>,
    /// Why (JOB's status of the script on it, or what its output lacked).
    pub reason: String,
}

impl Verification {
    /// Every target checked and holding what the sources hold.
    pub fn passed(&self) -> bool {
        self.error.is_none()
            && self.differing.is_empty()
            && self.cannot_verify.is_empty()
            && self.verified == self.hosts
    }

    /// `verified 18/20 hosts (sha256); 2 differ`, with `N cannot be verified` when some
    /// could not be read, or why nothing was.
    pub fn summary(&self) -> String {
        if let Some(error) = &self.error {
            return format!(
                "{} verification could not run: {error}",
                self.method.as_str()
            );
        }
        let mut text = format!(
            "verified {}/{} hosts ({})",
            self.verified,
            self.hosts,
            self.method.as_str()
        );
        if !self.differing.is_empty() {
            let n = self.differing.len();
            text.push_str(&format!(
                "; {n} {}",
                if n == 1 { "differs" } else { "differ" }
            ));
        }
        if !self.cannot_verify.is_empty() {
            text.push_str(&format!(
                "; {} cannot be verified",
                self.cannot_verify.len()
            ));
        }
        text
    }

    /// The per-host table: `host  file  expected  got`, one line per file, then the hosts
    /// that could not be checked; at most [`TABLE_ROWS`] rows, then how many more.
    pub fn table(&self) -> String {
        let expected_title = match self.method {
            VerifyMethod::Size => "expected size",
            VerifyMethod::Sha256 => "source sha256",
        };
        let got_title = match self.method {
            VerifyMethod::Size => "got",
            VerifyMethod::Sha256 => "target sha256",
        };
        let mut rows: Vec<[String; 4]> = vec![[
            "host".into(),
            "file".into(),
            expected_title.into(),
            got_title.into(),
        ]];
        for host in &self.differing {
            for file in &host.files {
                rows.push([
                    host.host.clone(),
                    file.path.clone(),
                    file.expected.clone(),
                    file.got.clone(),
                ]);
            }
        }
        for host in &self.cannot_verify {
            rows.push([
                host.host.clone(),
                "-".into(),
                "-".into(),
                format!("cannot verify: {}", host.reason),
            ]);
        }
        let more = rows.len().saturating_sub(TABLE_ROWS + 1);
        rows.truncate(TABLE_ROWS + 1);
        let widths: Vec<usize> = (0..4)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut lines: Vec<String> = rows
            .iter()
            .map(|r| {
                let cells: Vec<String> = r
                    .iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect();
                cells.join("  ").trim_end().to_owned()
            })
            .collect();
        if more > 0 {
            lines.push(format!("... and {more} more rows"));
        }
        lines.join("\n")
    }

    fn failed(method: VerifyMethod, hosts: usize, error: String) -> Verification {
        Verification {
            method,
            hosts,
            verified: 0,
            differing: Vec::new(),
            cannot_verify: Vec::new(),
            script_jobs: Vec::new(),
            error: Some(error),
        }
    }
}

/// Why `push`'s `verify` cannot be carried out, before anything is sent: its sources are
/// not literal files on named hosts under an account alias (and, for `"sha256"`, its
/// target account is not an alias); under v3 `"size"` reads JOB's log alone and needs only
/// sources on hosts. `None` when it can be, or the push has no `verify`.
pub fn cannot_verify(api: plan_parser::ApiVersion, push: &Push) -> Option<String> {
    let method = VerifyMethod::from(push.release.verify.as_ref()?.value);
    if method == VerifyMethod::Size && api == plan_parser::ApiVersion::V3 {
        // JOB's own log names each download's source and size: no script reads anything.
        return push
            .sources
            .iter()
            .any(|s| s.file_source.is_some())
            .then(|| "it reads from a third-party file source, whose uploads JOB's log does not show per source host".to_owned());
    }
    if let Err(reason) = sources(push) {
        return Some(reason);
    }
    (method == VerifyMethod::Sha256 && push.target.account_id.is_some()).then(|| {
        "its target account is given by id: the checksum script runs under an account alias"
            .to_owned()
    })
}

/// What a verification needs of the run.
pub(crate) struct VerifyJob<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) push: &'a Push,
    /// The run's tag (the script jobs' task names carry it, as the push's jobs do).
    pub(crate) run_tag: &'a str,
    /// The push's last job: its file log gives the sizes of hosts no other job names.
    pub(crate) job: &'a JobRef,
    /// Per target (`host` of its result), the job that last delivered to it.
    pub(crate) delivered_by: &'a BTreeMap<String, JobRef>,
    /// Every target host JOB reported for the push.
    pub(crate) targets: &'a [HostResult],
}

impl<'a> VerifyJob<'a> {
    /// The job that last delivered to `target`: its file log has the target's entries.
    fn job_of(&self, target: &HostResult) -> JobRef {
        *self.delivered_by.get(&target.host).unwrap_or(self.job)
    }

    /// The targets grouped by the job that last delivered to them, by job instance id.
    fn targets_by_job(&self) -> BTreeMap<i64, (JobRef, Vec<&'a HostResult>)> {
        let mut by_job: BTreeMap<i64, (JobRef, Vec<&'a HostResult>)> = BTreeMap::new();
        for target in self.targets {
            let of = self.job_of(target);
            by_job
                .entry(of.job_instance_id)
                .or_insert_with(|| (of, Vec::new()))
                .1
                .push(target);
        }
        by_job
    }
}

/// Checks what the push delivered, as its `verify` asks.
pub(crate) async fn verify<A: JobApi>(
    api: &A,
    method: VerifyMethod,
    job: VerifyJob<'_>,
) -> Verification {
    let hosts = job.targets.len();
    if method == VerifyMethod::Size
        && let Some(verification) = sizes_from_job_logs(api, &job).await
    {
        return verification;
    }
    let sources = match sources(job.push) {
        Ok(s) => s,
        Err(reason) => return Verification::failed(method, hosts, reason),
    };
    let target_hosts: Vec<IpHost> = job.targets.iter().map(ip_host).collect();
    let mut reads = Reads::default();
    let mut groups: BTreeMap<&str, (Vec<IpHost>, Vec<String>)> = BTreeMap::new();
    for source in &sources {
        let group = groups.entry(source.account).or_default();
        add_hosts(&mut group.0, &source.hosts);
        extend_unique(&mut group.1, source.files.iter().map(|(s, _)| s.clone()));
    }
    if method == VerifyMethod::Sha256 {
        let Some(account) = job
            .push
            .target
            .account_id
            .is_none()
            .then_some(job.push.target.account.value.as_str())
        else {
            return Verification::failed(
                method,
                hosts,
                "the target account is given by id: the checksum script runs under an account alias".into(),
            );
        };
        let group = groups.entry(account).or_default();
        add_hosts(&mut group.0, &target_hosts);
        let delivered = sources
            .iter()
            .flat_map(|s| s.files.iter().map(|(_, d)| d.clone()));
        extend_unique(&mut group.1, delivered);
    }
    let task_name = verify_task_name(job.plan, job.push, job.run_tag);
    for (account, (hosts_of_group, paths)) in &groups {
        let script = ChecksumScript {
            api: job.plan.api,
            bk_biz_id: job.plan.bk_biz_id.value,
            task_name: &task_name,
            account,
            hosts: hosts_of_group,
            paths,
        };
        match api.checksums(script).await {
            Ok((script_job, facts)) => {
                reads.jobs.push(script_job);
                reads.by_account.insert((*account).to_owned(), facts);
            }
            Err(error) => {
                return Verification::failed(
                    method,
                    hosts,
                    format!("the checksum script job failed: {error}"),
                );
            }
        }
    }
    let expected = match expected_files(&sources, &reads) {
        Ok(e) => e,
        Err(reason) => return Verification::failed(method, hosts, reason),
    };
    let found = match method {
        VerifyMethod::Sha256 => {
            let account = job.push.target.account.value.as_str();
            job.targets
                .iter()
                .map(|t| reads.host(account, &ip_host(t)))
                .collect()
        }
        VerifyMethod::Size => logged_sizes(api, &job).await,
    };
    let mut verification = judge(method, job.targets, &expected, &found);
    verification.script_jobs = reads.jobs;
    verification
}

/// `"size"` from JOB's own file log (v3): each target's downloads against the uploads of
/// their sources (the same source host and path, as the download names them), so patterns
/// and directories verify too and no script runs. `None` when JOB's log has no such
/// entries (v2): the sources' sizes are then read by the checksum script.
async fn sizes_from_job_logs<A: JobApi>(api: &A, job: &VerifyJob<'_>) -> Option<Verification> {
    let by_job = job.targets_by_job();
    let mut judged = Verification {
        method: VerifyMethod::Size,
        hosts: job.targets.len(),
        verified: 0,
        differing: Vec::new(),
        cannot_verify: Vec::new(),
        script_jobs: Vec::new(),
        error: None,
    };
    for (of, targets) in by_job.values() {
        let states: Vec<HostState> = targets.iter().map(|t| host_state(t)).collect();
        let read = match logged_entries(api, of, &states).await? {
            Ok(read) => read,
            Err(error) => {
                return Some(Verification::failed(
                    VerifyMethod::Size,
                    judged.hosts,
                    error,
                ));
            }
        };
        for (target, state) in targets.iter().zip(&states) {
            let downloads: Vec<&FileLogV3> = read
                .targets
                .get(&state.key())
                .into_iter()
                .flatten()
                .filter(|e| e.mode == FileMode::Download)
                .collect();
            if downloads.is_empty() {
                judged.cannot_verify.push(HostUnverified {
                    host: target.host.clone(),
                    host_id: target.host_id,
                    reason: "JOB's file log lists no download for this host".into(),
                });
                continue;
            }
            let files: Vec<FileMismatch> =
                downloads.iter().filter_map(|d| read.compare(d)).collect();
            if !files.is_empty() {
                judged.differing.push(HostMismatch {
                    host: target.host.clone(),
                    host_id: target.host_id,
                    files,
                });
            }
        }
    }
    judged.verified = judged.hosts - judged.differing.len() - judged.cannot_verify.len();
    Some(judged)
}

/// One job's file log as a size verification reads it.
struct LoggedEntries {
    /// Per target (`HostState::key`), its entries.
    targets: BTreeMap<String, Vec<FileLogV3>>,
    /// Per (source host key, source path), the size its upload logged.
    uploads: BTreeMap<(String, String), String>,
}

impl LoggedEntries {
    /// A download against its source's upload: `None` when the sizes match.
    fn compare(&self, download: &FileLogV3) -> Option<FileMismatch> {
        let path = download.dest_path.clone().unwrap_or_default();
        let source = download
            .src_ip
            .as_ref()
            .map(|h| ip_state(h).key())
            .zip(download.src_path.clone());
        let expected = source
            .and_then(|k| self.uploads.get(&k))
            .map(|s| in_display_units(s));
        let got = entry_size(download).map(|s| in_display_units(&s));
        match (expected, got) {
            (Some(e), Some(g)) if e == g => None,
            (e, g) => Some(FileMismatch {
                path,
                expected: e.unwrap_or_else(|| "unknown (no upload logged)".into()),
                got: g.unwrap_or_else(|| "missing".into()),
            }),
        }
    }
}

/// The targets' entries, then those of the source hosts their downloads name. The outer
/// `None`: JOB's log has no entries (v2).
async fn logged_entries<A: JobApi>(
    api: &A,
    job: &JobRef,
    targets: &[HostState],
) -> Option<Result<LoggedEntries, String>> {
    let unreadable = |e: plan_bkjob::ApiError| format!("JOB's file log could not be read: {e}");
    let found = match api.file_log_entries(job, targets).await {
        Ok(found) => found?,
        Err(e) => return Some(Err(unreadable(e))),
    };
    let mut sources: Vec<HostState> = Vec::new();
    for download in found
        .values()
        .flatten()
        .filter(|e| e.mode == FileMode::Download)
    {
        if let Some(src) = &download.src_ip {
            let state = ip_state(src);
            if !sources.iter().any(|known| known.key() == state.key()) {
                sources.push(state);
            }
        }
    }
    let uploaded = match api.file_log_entries(job, &sources).await {
        Ok(uploaded) => uploaded.unwrap_or_default(),
        Err(e) => return Some(Err(unreadable(e))),
    };
    let mut uploads = BTreeMap::new();
    for (host, entries) in &uploaded {
        for upload in entries.iter().filter(|e| e.mode == FileMode::Upload) {
            if let (Some(path), Some(size)) = (&upload.src_path, entry_size(upload)) {
                uploads.insert((host.clone(), path.clone()), size);
            }
        }
    }
    Some(Ok(LoggedEntries {
        targets: found,
        uploads,
    }))
}

/// An entry's size: its display field (batch API), else the last size its lines report.
fn entry_size(entry: &FileLogV3) -> Option<String> {
    let shown = entry
        .size
        .as_deref()
        .filter(|s| parse_size(s).is_some())
        .map(str::to_owned);
    shown.or_else(|| {
        entry
            .log_content
            .as_deref()?
            .lines()
            .filter_map(|l| FileLogLine::parse(l).size.map(str::to_owned))
            .next_back()
    })
}

/// A size as JOB displays it, whatever spacing or precision the log used.
fn in_display_units(size: &str) -> String {
    parse_size(size).map_or_else(
        || size.to_owned(),
        |bytes| display_size(bytes.round().max(0.0) as u64),
    )
}

fn host_state(target: &HostResult) -> HostState {
    let host = ip_host(target);
    HostState {
        bk_host_id: host.bk_host_id,
        bk_cloud_id: host.bk_cloud_id,
        ip: host.ip,
        status: target.status,
        error_code: target.error_code,
    }
}

fn ip_state(host: &IpHost) -> HostState {
    HostState {
        bk_host_id: host.bk_host_id.filter(|id| *id > 0),
        bk_cloud_id: host.bk_cloud_id,
        ip: host.ip.clone(),
        status: plan_bkjob::HostStatus::Success,
        error_code: None,
    }
}

/// One source of the push: its account, hosts and (source path, delivered path) pairs.
struct Source<'a> {
    account: &'a str,
    hosts: Vec<IpHost>,
    files: Vec<(String, String)>,
}

/// The push's sources as the checksum script can read them, or why they cannot be.
fn sources(push: &Push) -> Result<Vec<Source<'_>>, String> {
    push.sources
        .iter()
        .map(|source| {
            if source.file_source.is_some() {
                return Err("it reads from a third-party file source, which no script can read".into());
            }
            if source.account_id.is_some() {
                return Err("its source account is given by id: the checksum script runs under an account alias".into());
            }
            let set = &source.hosts;
            if !set.dynamic_groups.is_empty() || !set.topo_nodes.is_empty() {
                return Err("its sources are resolved by CMDB (dynamic groups or topology nodes): only named source hosts are read".into());
            }
            let mut hosts: Vec<IpHost> = set
                .ips
                .iter()
                .map(|h| IpHost::new(i64::try_from(h.cloud_id).unwrap_or(i64::MAX), h.ip.to_string()))
                .collect();
            hosts.extend(set.host_ids.iter().map(|id| IpHost {
                bk_cloud_id: 0,
                ip: String::new(),
                bk_host_id: Some(id.0),
            }));
            let files = source
                .files
                .iter()
                .map(|f| {
                    literal(&f.path)?;
                    Ok((f.path.clone(), delivered_path(push, &f.path)))
                })
                .collect::<Result<_, String>>()?;
            Ok(Source {
                account: &source.account.value,
                hosts,
                files,
            })
        })
        .collect()
}

/// The script jobs' answers.
#[derive(Default)]
struct Reads {
    jobs: Vec<i64>,
    by_account: BTreeMap<String, Vec<(IpHost, HostFacts)>>,
}

impl Reads {
    /// What the script read on `host` under `account` (a host JOB did not report is not
    /// read).
    fn host(&self, account: &str, host: &IpHost) -> HostFacts {
        self.by_account
            .get(account)
            .and_then(|answers| answers.iter().find(|(h, _)| same_host(h, host)))
            .map_or_else(
                || Err("JOB reported nothing for this host".into()),
                |(_, f)| f.clone(),
            )
    }
}

fn same_host(a: &IpHost, b: &IpHost) -> bool {
    match (a.bk_host_id, b.bk_host_id) {
        (Some(x), Some(y)) => x == y,
        _ => a.bk_cloud_id == b.bk_cloud_id && !a.ip.is_empty() && a.ip == b.ip,
    }
}

/// Hosts added once each: a source that is also a target (named by address in the plan, by
/// id in JOB's results) is one host of the script job.
fn add_hosts(list: &mut Vec<IpHost>, hosts: &[IpHost]) {
    for host in hosts {
        if !list
            .iter()
            .any(|known| known == host || same_host(known, host))
        {
            list.push(host.clone());
        }
    }
}

fn extend_unique<T: PartialEq>(list: &mut Vec<T>, items: impl Iterator<Item = T>) {
    for item in items {
        if !list.contains(&item) {
            list.push(item);
        }
    }
}

/// A reported target as the script names it.
fn ip_host(target: &HostResult) -> IpHost {
    let (cloud, ip) = match parse_host(&target.host) {
        Some(addr) => (
            i64::try_from(addr.cloud_id).unwrap_or(i64::MAX),
            addr.ip.to_string(),
        ),
        None => (0, String::new()),
    };
    IpHost {
        bk_cloud_id: cloud,
        ip,
        bk_host_id: target.host_id,
    }
}

/// Per delivered path, what the sources hold (the same on every source host), or why it
/// cannot be known.
fn expected_files(
    sources: &[Source<'_>],
    reads: &Reads,
) -> Result<Vec<(String, FileFacts)>, String> {
    let mut expected = Vec::new();
    for source in sources {
        for (path, delivered) in &source.files {
            let mut agreed: Option<FileFacts> = None;
            for host in &source.hosts {
                let name = host_name(host);
                let facts = match reads.host(source.account, host) {
                    Ok(files) => files.get(path).cloned().unwrap_or_default(),
                    Err(why) => return Err(format!("source {name} could not be read: {why}")),
                };
                if facts.size.is_none() || facts.sha256.is_none() {
                    return Err(format!("source `{path}` is missing on {name}"));
                }
                match &agreed {
                    Some(first) if *first != facts => {
                        return Err(format!("source hosts hold different copies of `{path}`"));
                    }
                    _ => agreed = Some(facts),
                }
            }
            let facts = agreed.ok_or_else(|| format!("no source host for `{path}`"))?;
            expected.push((delivered.clone(), facts));
        }
    }
    Ok(expected)
}

fn host_name(host: &IpHost) -> String {
    match (host.ip.is_empty(), host.bk_host_id) {
        (true, Some(id)) => format!("host_id:{id}"),
        _ => host.to_string(),
    }
}

/// Per target, the size JOB's file log last reported for each delivered path (as `FileFacts`
/// holding a size only), or why the log could not be read. Each target's log is read from
/// the job that last delivered to it (one call per job).
async fn logged_sizes<A: JobApi>(api: &A, job: &VerifyJob<'_>) -> Vec<HostFacts> {
    let mut logs: BTreeMap<i64, Result<BTreeMap<String, plan_bkjob::HostLog>, String>> =
        BTreeMap::new();
    for (id, (of, targets)) in &job.targets_by_job() {
        let states: Vec<HostState> = targets.iter().map(|t| host_state(t)).collect();
        let read = api
            .host_logs(of, &states)
            .await
            .map_err(|e| format!("JOB's file log could not be read: {e}"));
        logs.insert(*id, read);
    }
    job.targets
        .iter()
        .map(
            |target| match logs.get(&job.job_of(target).job_instance_id) {
                Some(Ok(found)) => found
                    .get(&host_state(target).key())
                    .map(|log| reported_sizes(&log.content))
                    .ok_or_else(|| "JOB's file log has nothing for this host".to_owned()),
                Some(Err(why)) => Err(why.clone()),
                None => Err("JOB's file log was not read".to_owned()),
            },
        )
        .collect()
}

/// The last size each file's log lines report, by the name they give (a download's
/// destination path).
fn reported_sizes(log: &str) -> BTreeMap<String, FileFacts> {
    let mut sizes = BTreeMap::new();
    for line in log.lines() {
        let parsed = FileLogLine::parse(line);
        let (Some(name), Some(size)) = (parsed.name, parsed.size.and_then(parse_size)) else {
            continue;
        };
        let bytes = size.round().max(0.0) as u64;
        sizes.insert(
            name.to_owned(),
            FileFacts {
                size: Some(bytes),
                sha256: None,
            },
        );
    }
    sizes
}

/// Per target, each delivered file against the source's.
fn judge(
    method: VerifyMethod,
    targets: &[HostResult],
    expected: &[(String, FileFacts)],
    found: &[HostFacts],
) -> Verification {
    let mut differing = Vec::new();
    let mut cannot_verify = Vec::new();
    for (target, facts) in targets.iter().zip(found) {
        let files = match facts {
            Ok(files) => files,
            Err(reason) => {
                cannot_verify.push(HostUnverified {
                    host: target.host.clone(),
                    host_id: target.host_id,
                    reason: reason.clone(),
                });
                continue;
            }
        };
        let mismatches: Vec<FileMismatch> = expected
            .iter()
            .filter_map(|(path, source)| compare(method, path, source, files.get(path)))
            .collect();
        if !mismatches.is_empty() {
            differing.push(HostMismatch {
                host: target.host.clone(),
                host_id: target.host_id,
                files: mismatches,
            });
        }
    }
    Verification {
        method,
        hosts: targets.len(),
        verified: targets.len() - differing.len() - cannot_verify.len(),
        differing,
        cannot_verify,
        script_jobs: Vec::new(),
        error: None,
    }
}

/// One file: `None` when it matches.
fn compare(
    method: VerifyMethod,
    path: &str,
    source: &FileFacts,
    on_target: Option<&FileFacts>,
) -> Option<FileMismatch> {
    let missing = FileFacts::default();
    let on_target = on_target.unwrap_or(&missing);
    let mismatch = |expected: String, got: String| {
        Some(FileMismatch {
            path: path.to_owned(),
            expected,
            got,
        })
    };
    match method {
        VerifyMethod::Size => {
            // JOB's log shows sizes in display units: both sides are compared as JOB
            // would print them.
            let expected = display_size(source.size.unwrap_or_default());
            match on_target.size.map(display_size) {
                Some(got) if got == expected => None,
                Some(got) => mismatch(expected, got),
                None => mismatch(expected, "missing".into()),
            }
        }
        VerifyMethod::Sha256 => {
            let prefix = |d: &str| d.chars().take(DIGEST_PREFIX).collect::<String>();
            let expected = prefix(source.sha256.as_deref().unwrap_or_default());
            match source.compare(on_target) {
                Some(Verdict::Same) => None,
                Some(Verdict::Missing) | None if on_target.is_missing() => {
                    mismatch(expected, "missing".into())
                }
                _ => mismatch(
                    expected,
                    on_target
                        .sha256
                        .as_deref()
                        .map_or_else(|| "unreadable".into(), prefix),
                ),
            }
        }
    }
}

/// `[task_prefix]<plan>/<push>:verify#<tag>`: traced to its push and run, and never taken
/// for one of the push's transfer jobs (a push name holds no `:`).
fn verify_task_name(plan: &Plan, push: &Push, run_tag: &str) -> String {
    let base = format!(
        "{}{}/{}:verify",
        plan.task_prefix.as_deref().unwrap_or(""),
        plan.name.value,
        push.name.value
    );
    let base: String = base
        .chars()
        .take(plan_bkjob::task_name::PLAN_TASK_NAME_MAX_CHARS)
        .collect();
    plan_bkjob::task_name::with_run_tag(&base, run_tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> HostResult {
        HostResult {
            host: name.into(),
            host_id: None,
            status: plan_bkjob::HostStatus::Success,
            label: String::new(),
            error_code: None,
            log_excerpt: None,
        }
    }

    fn facts(size: u64, digest: &str) -> FileFacts {
        FileFacts {
            size: Some(size),
            sha256: Some(digest.repeat(64)),
        }
    }

    #[test]
    fn sha256_names_the_hosts_that_differ_and_those_it_could_not_read() {
        let expected = vec![("/opt/a".to_owned(), facts(3, "a"))];
        let same: HostFacts = Ok(BTreeMap::from([("/opt/a".to_owned(), facts(3, "a"))]));
        let changed: HostFacts = Ok(BTreeMap::from([("/opt/a".to_owned(), facts(3, "b"))]));
        let gone: HostFacts = Ok(BTreeMap::new());
        let down: HostFacts = Err("agent abnormal".into());
        let targets = [
            host("0:10.0.0.1"),
            host("0:10.0.0.2"),
            host("0:10.0.0.3"),
            host("0:10.0.0.4"),
        ];
        let v = judge(
            VerifyMethod::Sha256,
            &targets,
            &expected,
            &[same, changed, gone, down],
        );
        assert!(!v.passed());
        assert_eq!(v.verified, 1);
        assert_eq!(
            v.summary(),
            "verified 1/4 hosts (sha256); 2 differ; 1 cannot be verified"
        );
        let mut one = v.clone();
        one.differing.truncate(1);
        assert!(one.summary().contains("; 1 differs;"), "{}", one.summary());
        assert_eq!(v.differing[0].host, "0:10.0.0.2");
        assert_eq!(v.differing[0].files[0].expected, "aaaaaaaaaaaa");
        assert_eq!(v.differing[0].files[0].got, "bbbbbbbbbbbb");
        assert_eq!(v.differing[1].files[0].got, "missing");
        assert_eq!(v.cannot_verify[0].host, "0:10.0.0.4");
        let table = v.table();
        assert!(table.starts_with("host"), "{table}");
        assert!(
            table.contains("0:10.0.0.2  /opt/a  aaaaaaaaaaaa   bbbbbbbbbbbb"),
            "{table}"
        );
    }

    #[test]
    fn the_table_of_a_fleet_is_bounded() {
        let expected = vec![("/opt/a".to_owned(), facts(3, "a"))];
        let targets: Vec<HostResult> = (0..200)
            .map(|i| host(&format!("0:10.0.{}.{}", i / 250, i % 250)))
            .collect();
        let found: Vec<HostFacts> = targets.iter().map(|_| Ok(BTreeMap::new())).collect();
        let v = judge(VerifyMethod::Sha256, &targets, &expected, &found);
        assert_eq!(v.differing.len(), 200);
        let table = v.table();
        assert_eq!(table.lines().count(), TABLE_ROWS + 2, "{table}");
        assert!(table.ends_with("... and 150 more rows"), "{table}");
    }

    #[test]
    fn a_download_is_compared_with_its_sources_upload() {
        let entry = |json: serde_json::Value| -> FileLogV3 {
            serde_json::from_value(json).expect("a file log entry")
        };
        let source = r#"{"bk_host_id": 1001, "bk_cloud_id": 0, "ip": "10.0.0.1"}"#;
        let source: serde_json::Value = serde_json::from_str(source).expect("json");
        let download = |size: &str| {
            entry(
                serde_json::json!({"mode": 1, "src_ip": source, "src_path": "/data/a.tgz",
                "dest_path": "/opt/a.tgz", "size": size}),
            )
        };
        let logged = LoggedEntries {
            targets: BTreeMap::new(),
            uploads: BTreeMap::from([(
                ("host_id:1001".to_owned(), "/data/a.tgz".to_owned()),
                "4.00MB".to_owned(),
            )]),
        };
        assert_eq!(logged.compare(&download("4.0 MB")), None);
        let smaller = logged.compare(&download("3.5 MB")).expect("differs");
        assert_eq!(
            (
                smaller.path.as_str(),
                smaller.expected.as_str(),
                smaller.got.as_str()
            ),
            ("/opt/a.tgz", "4.0 MB", "3.5 MB")
        );
        let elsewhere = entry(serde_json::json!({"mode": 1, "src_path": "/data/b.tgz",
            "dest_path": "/opt/b.tgz", "size": "1.0 KB"}));
        assert_eq!(
            logged.compare(&elsewhere).map(|m| m.expected),
            Some("unknown (no upload logged)".to_owned())
        );
    }

    #[test]
    fn sizes_compare_in_jobs_display_units() {
        let log = "[2026-01-01 12:00:01] FileName: /opt/a FileSize: 4.0 MB Status: 4 StatusDesc: success Progress: 100%\n";
        let sizes = reported_sizes(log);
        let expected = vec![("/opt/a".to_owned(), facts(4 * 1024 * 1024, "a"))];
        let v = judge(
            VerifyMethod::Size,
            &[host("0:10.0.0.1")],
            &expected,
            &[Ok(sizes)],
        );
        assert!(v.passed(), "{v:?}");
        let smaller = vec![("/opt/a".to_owned(), facts(3 * 1024 * 1024, "a"))];
        let v = judge(
            VerifyMethod::Size,
            &[host("0:10.0.0.1")],
            &smaller,
            &[Ok(reported_sizes(log))],
        );
        assert_eq!(v.differing[0].files[0].expected, "3.0 MB");
        assert_eq!(v.differing[0].files[0].got, "4.0 MB");
    }
}
