//! Refresh: what the hosts hold now, compared with what the plan delivers.
//!
//! One `fast_execute_script` job per group of hosts (the hosts of a push's targets, or of its
//! sources, under one account; pushes naming the same hosts share a job) runs
//! `plan_bkjob::script::checksum_script` over every path the group needs: each file is read
//! once per host, whatever the number of pushes naming it. A 5,000-host push is then two
//! jobs (its sources and its targets), not 5,000.
//!
//! A push is refreshed when every source is a literal file and its hosts can be named: static
//! addresses, or over v3 CMDB host ids (named in the plan, or the hosts CMDB resolves for a
//! dynamic group or topology node: `hosts`); any other push "cannot tell" and is always
//! pushed, with the reason.

mod hosts;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use plan_bkjob::script::{FileFacts, UnsafePath, Verdict, checksum_script};
use plan_bkjob::{ApiError, Client, IpHost, JobKey, ScriptRequest};
use plan_parser::{Plan, Push};

pub(crate) use hosts::host_set_of;
use hosts::{CmdbHosts, ReadHost};
use serde::{Deserialize, Serialize};

/// How long a refresh waits, and how often it asks.
#[derive(Debug, Clone, Copy)]
pub struct RefreshSettings {
    /// The first wait before a status poll of a refresh job; later waits double up to
    /// [`MAX_POLL_INTERVAL`] (hashing large files on many hosts takes a while, and a poll
    /// every half second would cost more calls than the refresh saves).
    pub poll_interval: Duration,
    /// A refresh job still running after this is an error (the script reads files, it does
    /// not transfer them: minutes mean something is wrong).
    pub timeout: Duration,
}

impl Default for RefreshSettings {
    fn default() -> Self {
        RefreshSettings {
            poll_interval: Duration::from_millis(500),
            timeout: Duration::from_secs(600),
        }
    }
}

/// What a refresh found for one push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum PushRefresh {
    /// Every target holds every file the push delivers, byte for byte.
    UpToDate {
        /// How many targets were read.
        hosts: usize,
    },
    /// Some targets do not hold what the push delivers.
    Differs {
        /// How many targets were read.
        hosts: usize,
        /// The targets that differ, each with its files.
        differing: Vec<HostDifference>,
        /// The targets that hold every file (`--converge` does not push to them, and says
        /// so). Absent in journals written before it was recorded.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        up_to_date: Vec<String>,
    },
    /// The push cannot be refreshed: it is always pushed.
    CannotTell {
        /// Why, for people.
        reason: String,
        /// The push is of a kind the refresh reads (literal files on static hosts), but
        /// this time its sources could not be read: `plan drift` counts it as drift.
        unread: bool,
    },
}

impl PushRefresh {
    /// The targets to push to under `--converge`: `None` is every target.
    pub fn differing_hosts(&self) -> Option<Vec<&str>> {
        match self {
            PushRefresh::UpToDate { .. } => Some(Vec::new()),
            PushRefresh::Differs { differing, .. } => {
                Some(differing.iter().map(|h| h.host.as_str()).collect())
            }
            PushRefresh::CannotTell { .. } => None,
        }
    }

    /// True when every target already holds the push's files.
    pub fn is_up_to_date(&self) -> bool {
        matches!(self, PushRefresh::UpToDate { .. })
    }
}

/// One target that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HostDifference {
    /// `cloud:ip`.
    pub host: String,
    /// The host could not be read (its agent is down, the account is refused, the script's
    /// output is not ours): it counts as differing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// The delivered files that differ (empty when the host could not be read).
    pub files: Vec<FileDifference>,
}

/// One delivered file that differs on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileDifference {
    /// The delivered path.
    pub path: String,
    /// `missing`, `different size` or `different content`.
    pub found: String,
}

/// One refresh job (what the refresh cost).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RefreshJob {
    /// JOB's job instance id.
    pub job_instance_id: i64,
    /// Hosts it read.
    pub hosts: usize,
    /// Distinct paths it read on each.
    pub files: usize,
}

/// One push's refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RefreshedPush {
    /// The push.
    pub push: String,
    /// What its targets hold.
    #[serde(flatten)]
    pub verdict: PushRefresh,
}

/// A whole refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Refresh {
    /// Per enabled push, in file order.
    pub pushes: Vec<RefreshedPush>,
    /// The script jobs it took.
    pub jobs: Vec<RefreshJob>,
}

impl Refresh {
    /// The verdict of a push.
    pub fn of(&self, push: &str) -> Option<&PushRefresh> {
        self.pushes
            .iter()
            .find(|p| p.push == push)
            .map(|p| &p.verdict)
    }

    /// True when no push differs and none that could be read went unread: what `plan drift`
    /// exits 0 for (pushes the refresh never reads, wildcards and the like, do not count).
    pub fn in_place(&self) -> bool {
        self.pushes.iter().all(|p| match &p.verdict {
            PushRefresh::UpToDate { .. } => true,
            PushRefresh::Differs { .. } => false,
            PushRefresh::CannotTell { unread, .. } => !unread,
        })
    }
}

/// Why a refresh could not be done at all.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// JOB refused (or lost) a script job or a read of its results.
    #[error("JOB refused the refresh script: {0}")]
    Job(#[from] ApiError),
    /// A path the checksum script cannot name safely.
    #[error("the refresh script cannot read a path: {0}")]
    Script(#[from] UnsafePath),
    /// A refresh job was still running at the refresh timeout.
    #[error("a refresh job (JOB job {job_instance_id}) was still running after {seconds} s")]
    TimedOut {
        /// The job.
        job_instance_id: i64,
        /// The timeout.
        seconds: u64,
    },
}

/// A push that can be refreshed: where its files are read and where they land.
struct Readable {
    /// Per source: account, hosts, literal paths.
    sources: Vec<(String, Vec<ReadHost>, Vec<String>)>,
    target_account: String,
    targets: Vec<ReadHost>,
    /// (source path, delivered path).
    deliveries: Vec<(String, String)>,
}

/// Hosts under one account: one script job.
type GroupKey = (String, Vec<String>);

/// Reads the plan's enabled pushes on the hosts and says, per push, what differs.
pub async fn refresh(
    client: &Client,
    plan: &Plan,
    settings: RefreshSettings,
) -> Result<Refresh, RefreshError> {
    let cmdb = hosts::ask_cmdb(client, plan).await;
    let pushes: Vec<(&Push, Result<Readable, String>)> = plan
        .pushes
        .iter()
        .filter(|p| p.enabled)
        .map(|p| (p, readable(p, plan.api, &cmdb)))
        .collect();
    let mut groups: BTreeMap<GroupKey, (Vec<ReadHost>, BTreeSet<String>)> = BTreeMap::new();
    for readable in pushes.iter().filter_map(|(_, r)| r.as_ref().ok()) {
        for (account, hosts, paths) in &readable.sources {
            add_to_group(&mut groups, account, hosts, paths.iter().cloned());
        }
        let delivered = readable.deliveries.iter().map(|(_, d)| d.clone());
        add_to_group(
            &mut groups,
            &readable.target_account,
            &readable.targets,
            delivered,
        );
    }
    // Every group's job at once: the refresh takes as long as its slowest job.
    let reads = groups
        .iter()
        .map(|((account, _), (hosts, paths))| async move {
            let read = read_group(client, plan, account, hosts, paths, settings).await?;
            Ok::<_, RefreshError>((account, read))
        });
    let mut found: BTreeMap<(String, String), HostFacts> = BTreeMap::new();
    let mut jobs = Vec::new();
    for (account, (job, facts)) in futures::future::try_join_all(reads).await? {
        jobs.push(job);
        for (host, host_facts) in facts {
            merge_facts(&mut found, (account.clone(), host), host_facts);
        }
    }
    let pushes = pushes
        .into_iter()
        .map(|(push, readable)| {
            let verdict = match readable {
                Ok(r) => judge(&r, &found),
                Err(reason) => PushRefresh::CannotTell {
                    reason,
                    unread: false,
                },
            };
            RefreshedPush {
                push: push.name.value.clone(),
                verdict,
            }
        })
        .collect();
    Ok(Refresh { pushes, jobs })
}

/// A host in two groups (two pushes naming overlapping host sets) is read by two jobs, each
/// for its own paths: what both found is kept, and a job that could not read the host makes
/// it unreadable (it then counts as differing, said why).
fn merge_facts(
    found: &mut BTreeMap<(String, String), HostFacts>,
    key: (String, String),
    facts: HostFacts,
) {
    match (found.get_mut(&key), facts) {
        (Some(Ok(known)), Ok(more)) => known.extend(more),
        (Some(Err(_)), _) => {}
        (_, facts) => {
            found.insert(key, facts);
        }
    }
}

/// Adds the hosts to the job of their group; hosts read by address and hosts read by id are
/// two jobs (JOB ignores `ip_list` when `host_id_list` is set).
fn add_to_group(
    groups: &mut BTreeMap<GroupKey, (Vec<ReadHost>, BTreeSet<String>)>,
    account: &str,
    hosts: &[ReadHost],
    paths: impl Iterator<Item = String> + Clone,
) {
    let (by_id, by_address): (Vec<ReadHost>, Vec<ReadHost>) =
        hosts.iter().cloned().partition(ReadHost::by_id);
    for hosts in [by_address, by_id].into_iter().filter(|h| !h.is_empty()) {
        let mut names: Vec<String> = hosts.iter().map(ReadHost::name).collect();
        names.sort();
        names.dedup();
        let entry = groups
            .entry((account.to_owned(), names))
            .or_insert_with(|| (hosts, BTreeSet::new()));
        entry.1.extend(paths.clone());
    }
}

/// Whether a push can be refreshed, and what to read; `Err` is why not.
fn readable(
    push: &Push,
    api: plan_bkjob::ApiVersion,
    cmdb: &CmdbHosts,
) -> Result<Readable, String> {
    let target = &push.target;
    let targets = hosts::hosts_of(&target.hosts, api, cmdb)?;
    if target.account_id.is_some() {
        return Err(
            "its target account is given by id: the refresh script runs under an account alias"
                .into(),
        );
    }
    let mut sources = Vec::new();
    let mut deliveries = Vec::new();
    for source in &push.sources {
        if source.file_source.is_some() {
            return Err("it reads from a third-party file source".into());
        }
        if source.account_id.is_some() {
            return Err(
                "its source account is given by id: the refresh script runs under an account alias"
                    .into(),
            );
        }
        let source_hosts = hosts::hosts_of(&source.hosts, api, cmdb)
            .map_err(|why| format!("its sources: {why}"))?;
        let mut paths = Vec::new();
        for file in &source.files {
            literal(&file.path)?;
            deliveries.push((file.path.clone(), delivered_path(push, &file.path)));
            paths.push(file.path.clone());
        }
        sources.push((source.account.value.clone(), source_hosts, paths));
    }
    Ok(Readable {
        sources,
        target_account: target.account.value.clone(),
        targets,
        deliveries,
    })
}

/// A source entry the refresh can read: one absolute file, named literally.
pub(crate) fn literal(path: &str) -> Result<(), String> {
    // `REGEX:` starts the file-name part (`/data/REGEX:^app\.conf$`), so anywhere in the
    // path it is a pattern, as the parser reads it, even without a wildcard character.
    if path.contains("REGEX:") {
        return Err(format!(
            "`{path}` is a REGEX: pattern: which files it names is known only when JOB sends them"
        ));
    }
    if path.contains(['*', '?', '[']) {
        return Err(format!(
            "`{path}` is a wildcard: which files it names is known only when JOB sends them"
        ));
    }
    if path.ends_with('/') || path.ends_with('\\') {
        return Err(format!(
            "`{path}` is a directory: only single files are refreshed"
        ));
    }
    if !path.starts_with('/') {
        return Err(format!(
            "`{path}` is not an absolute Unix path: the refresh script is a shell script"
        ));
    }
    Ok(())
}

/// Where a push delivers the source file `path` on each target.
pub(crate) fn delivered_path(push: &Push, path: &str) -> String {
    let target = &push.target;
    let name = match &target.file_target_name {
        Some(name) => name.value.clone(),
        None => file_name(path).to_owned(),
    };
    join(&target.path.value, &name)
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// One host's files, or why it could not be read.
pub(crate) type HostFacts = Result<BTreeMap<String, FileFacts>, String>;

/// Runs the checksum script on a group of hosts and reads every host's answer.
async fn read_group(
    client: &Client,
    plan: &Plan,
    account: &str,
    hosts: &[ReadHost],
    paths: &BTreeSet<String>,
    settings: RefreshSettings,
) -> Result<(RefreshJob, BTreeMap<String, HostFacts>), RefreshError> {
    let paths: Vec<&String> = paths.iter().collect();
    let ip_hosts: Vec<IpHost> = hosts.iter().map(ReadHost::ip_host).collect();
    // A group's hosts are all read by id or all by address: JOB's answer names them so.
    let by_id = hosts.first().is_some_and(ReadHost::by_id);
    let task_name = refresh_task_name(plan);
    let job = ChecksumJob {
        api: plan.api,
        bk_biz_id: plan.bk_biz_id.value,
        task_name: &task_name,
        account,
        hosts: &ip_hosts,
    };
    let (key, results) = run_checksums(client, &job, &paths, settings).await?;
    let mut facts: BTreeMap<String, HostFacts> = BTreeMap::new();
    for (host, host_facts) in results {
        let name = match host.bk_host_id {
            Some(id) if by_id => ReadHost::Id(id).name(),
            _ => host.to_string(),
        };
        facts.insert(name, host_facts);
    }
    for host in hosts {
        facts
            .entry(host.name())
            .or_insert_with(|| Err("JOB reported nothing for this host".into()));
    }
    let job = RefreshJob {
        job_instance_id: key.job_instance_id,
        hosts: hosts.len(),
        files: paths.len(),
    };
    Ok((job, facts))
}

/// Where and as whom one checksum script job runs.
pub(crate) struct ChecksumJob<'a> {
    pub(crate) api: plan_bkjob::ApiVersion,
    pub(crate) bk_biz_id: i64,
    pub(crate) task_name: &'a str,
    /// Execution account alias on every host.
    pub(crate) account: &'a str,
    pub(crate) hosts: &'a [IpHost],
}

/// Runs the checksum script over `paths` on the job's hosts, waits for it to finish, and
/// reads what each host holds (as JOB names the host in its results). The one way the
/// executor reads files on hosts: refresh and delivery verification both come here.
pub(crate) async fn run_checksums<S: AsRef<str>>(
    client: &Client,
    job: &ChecksumJob<'_>,
    paths: &[S],
    settings: RefreshSettings,
) -> Result<(JobKey, Vec<(IpHost, HostFacts)>), RefreshError> {
    let script = checksum_script(paths)?;
    let request = ScriptRequest {
        api: job.api,
        bk_biz_id: job.bk_biz_id,
        task_name: job.task_name,
        script: &script,
        account: job.account,
        timeout_s: Some(u32::try_from(settings.timeout.as_secs()).unwrap_or(u32::MAX)),
        hosts: job.hosts,
    };
    let key = client.execute_script(&request).await?;
    wait(client, &key, settings).await?;
    let results = client.script_results(&key).await?;
    let facts = results
        .into_iter()
        .map(|result| {
            let facts = result.checksum_facts();
            (result.host, facts)
        })
        .collect();
    Ok((key, facts))
}

/// `[task_prefix]<plan>:refresh`: not of the form `<plan>/<push>#<tag>`, so no apply takes a
/// refresh job for one of its runs.
pub fn refresh_task_name(plan: &Plan) -> String {
    format!(
        "{}{}:refresh",
        plan.task_prefix.as_deref().unwrap_or(""),
        plan.name.value
    )
}

/// The longest wait between two polls of a refresh job.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(5);

async fn wait(
    client: &Client,
    key: &JobKey,
    settings: RefreshSettings,
) -> Result<(), RefreshError> {
    let deadline = tokio::time::Instant::now() + settings.timeout;
    let mut interval = settings.poll_interval;
    loop {
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(MAX_POLL_INTERVAL);
        if client.job_status(key).await?.finished {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(RefreshError::TimedOut {
                job_instance_id: key.job_instance_id,
                seconds: settings.timeout.as_secs(),
            });
        }
    }
}

/// A push's verdict from what its hosts hold.
fn judge(readable: &Readable, found: &BTreeMap<(String, String), HostFacts>) -> PushRefresh {
    let mut expected: Vec<(&str, FileFacts)> = Vec::new();
    for (account, hosts, paths) in &readable.sources {
        for path in paths {
            match source_facts(account, hosts, path, found) {
                Ok(facts) => {
                    let delivered = readable
                        .deliveries
                        .iter()
                        .find(|(s, _)| s == path)
                        .map_or(path.as_str(), |(_, d)| d.as_str());
                    expected.push((delivered, facts));
                }
                Err(reason) => {
                    return PushRefresh::CannotTell {
                        reason,
                        unread: true,
                    };
                }
            }
        }
    }
    let account = &readable.target_account;
    let mut differing = Vec::new();
    let mut up_to_date = Vec::new();
    for host in &readable.targets {
        let name = host.name();
        let difference = match found.get(&(account.clone(), name.clone())) {
            Some(Ok(files)) => differences(&expected, files),
            Some(Err(why)) => Some((Some(why.clone()), Vec::new())),
            None => Some((Some("not read".into()), Vec::new())),
        };
        match difference {
            Some((unreadable, files)) => differing.push(HostDifference {
                host: name,
                unreadable,
                files,
            }),
            None => up_to_date.push(name),
        }
    }
    let hosts = readable.targets.len();
    if differing.is_empty() {
        PushRefresh::UpToDate { hosts }
    } else {
        PushRefresh::Differs {
            hosts,
            differing,
            up_to_date,
        }
    }
}

type Difference = (Option<String>, Vec<FileDifference>);

fn differences(
    expected: &[(&str, FileFacts)],
    files: &BTreeMap<String, FileFacts>,
) -> Option<Difference> {
    let missing = FileFacts::default();
    let files: Vec<FileDifference> = expected
        .iter()
        .filter_map(|(path, facts)| {
            let on_host = files.get(*path).unwrap_or(&missing);
            match facts.compare(on_host) {
                Some(Verdict::Same) => None,
                Some(verdict) => Some(FileDifference {
                    path: (*path).to_owned(),
                    found: verdict.to_string(),
                }),
                None => Some(FileDifference {
                    path: (*path).to_owned(),
                    found: "unknown".into(),
                }),
            }
        })
        .collect();
    (!files.is_empty()).then_some((None, files))
}

/// What a source file is: the same size and digest on every source host, or why not.
fn source_facts(
    account: &str,
    hosts: &[ReadHost],
    path: &str,
    found: &BTreeMap<(String, String), HostFacts>,
) -> Result<FileFacts, String> {
    let mut agreed: Option<FileFacts> = None;
    for host in hosts {
        let name = host.name();
        let facts = match found.get(&(account.to_owned(), name.clone())) {
            Some(Ok(files)) => files.get(path).cloned().unwrap_or_default(),
            Some(Err(why)) => return Err(format!("source {name} could not be read: {why}")),
            None => return Err(format!("source {name} was not read")),
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
    agreed.ok_or_else(|| "no source host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(paths: &[&str]) -> HostFacts {
        Ok(paths
            .iter()
            .map(|p| ((*p).to_owned(), FileFacts::default()))
            .collect())
    }

    #[test]
    fn a_regex_file_name_is_a_pattern_even_without_a_wildcard_character() {
        assert!(literal("/rel/REGEX:^app\\.conf$").is_err());
        assert!(literal("/rel/app.conf").is_ok());
        // With wildcard characters in it, it is still named for what it is.
        let why = literal("/rel/REGEX:^app-[0-9]*\\.tgz$").expect_err("a pattern");
        assert!(why.contains("is a REGEX: pattern:"), "{why}");
        assert!(!why.contains("wildcard"), "{why}");
    }

    #[test]
    fn a_host_two_jobs_read_keeps_what_both_found_and_an_unread_one_stays_unread() {
        let key = || ("root".to_owned(), "0:10.0.0.1".to_owned());
        let mut found = BTreeMap::new();
        merge_facts(&mut found, key(), facts(&["/a"]));
        merge_facts(&mut found, key(), facts(&["/b"]));
        let read = found[&key()].as_ref().expect("read");
        assert_eq!(read.keys().collect::<Vec<_>>(), ["/a", "/b"]);
        merge_facts(&mut found, key(), Err("agent down".into()));
        merge_facts(&mut found, key(), facts(&["/c"]));
        assert_eq!(found[&key()], Err("agent down".to_owned()));
    }
}
