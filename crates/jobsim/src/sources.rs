//! What each source host of a job sends, found once at START (§4.2): every `file_list` entry
//! expanded on its host, or why the whole host or one entry fails; and where each file lands
//! in a target directory (§4.3).

use plan_bkjob::{HostStatus, gse_code};

use crate::engine::Job;
use crate::hostfs::{HostFs, detail};
use crate::paths::{SourceKind, parse_source, resolve_target_macros, standardized_dir};
use crate::submit::JobSpec;
use crate::transfer::{Item, expand};
use crate::world::{Agent, HostRef, World};

/// Why a host fails: the status and GSE code it ends with, and the log's detail.
#[derive(Debug, Clone)]
pub(crate) struct HostFailure {
    pub(crate) status: HostStatus,
    /// GSE's code (`plan_bkjob::gse_code`).
    pub(crate) code: i64,
    pub(crate) detail: String,
}

impl HostFailure {
    pub(crate) fn new(status: HostStatus, code: i64, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
        }
    }

    fn agent_abnormal() -> Self {
        Self::new(
            HostStatus::GseAgentError,
            gse_code::AGENT_ABNORMAL,
            "Agent is abnormal",
        )
    }
}

/// What one source host delivers.
#[derive(Debug)]
pub(crate) struct SourcePlan {
    pub(crate) host: HostRef,
    /// The third-party file source the host (a file worker) pulled these files from.
    pub(crate) pulled_from: Option<String>,
    /// One expansion per file entry, in request order; `Err` when the whole source host
    /// fails (agent, account).
    items: Result<Vec<EntryPlan>, HostFailure>,
    entries: Vec<String>,
}

/// One `file_list` entry on one source host. GSE reports every file of a task on its own,
/// so a missing entry fails only its own file: the other entries are still delivered and
/// their logs carry their own details (the target host still ends as 320).
#[derive(Debug, Clone)]
struct EntryPlan {
    entry: String,
    items: Result<Vec<Item>, HostFailure>,
}

/// One file a source sends, as the logs list it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SourceFile<'a> {
    /// Found on the source host.
    Found(&'a Item),
    /// An entry that cannot be sent, and why.
    Failed {
        entry: &'a str,
        failure: &'a HostFailure,
    },
}

impl SourcePlan {
    /// The same source host with only the `file_list` entries in `entries`: its share of a
    /// batch of source files (`rolling_config.type` 2).
    pub(crate) fn with_entries(&self, entries: std::ops::Range<usize>) -> SourcePlan {
        let pick = |n: usize| entries.start.min(n)..entries.end.min(n);
        SourcePlan {
            host: self.host.clone(),
            pulled_from: self.pulled_from.clone(),
            items: match &self.items {
                Ok(plans) => Ok(plans[pick(plans.len())].to_vec()),
                Err(failure) => Err(failure.clone()),
            },
            entries: self.entries[pick(self.entries.len())].to_vec(),
        }
    }

    /// Every file, in request order.
    pub(crate) fn files(&self) -> Vec<SourceFile<'_>> {
        match &self.items {
            Ok(entries) => entries.iter().flat_map(EntryPlan::files).collect(),
            Err(failure) => self
                .entries
                .iter()
                .map(|entry| SourceFile::Failed { entry, failure })
                .collect(),
        }
    }
}

impl SourceFile<'_> {
    /// `(source path, destination path)` of the file in a target directory.
    pub(crate) fn paths(self, target_dir: &str, rename: Option<&str>) -> (String, String) {
        match self {
            SourceFile::Found(item) => (item.display.clone(), item_dest(target_dir, item)),
            SourceFile::Failed { entry, .. } => {
                (entry.to_owned(), entry_dest(target_dir, entry, rename))
            }
        }
    }
}

impl EntryPlan {
    fn files(&self) -> Vec<SourceFile<'_>> {
        match &self.items {
            Ok(items) => items.iter().map(SourceFile::Found).collect(),
            Err(failure) => vec![SourceFile::Failed {
                entry: &self.entry,
                failure,
            }],
        }
    }
}

/// Every source host of a job, expanded (blocking directory reads).
pub(crate) fn plan_sources(world: &World, job: &Job) -> Vec<SourcePlan> {
    let mut out = Vec::new();
    for src in &job.spec.sources {
        for host in &src.hosts {
            let root = match &src.file_source {
                Some(file_source) => file_source.root.clone(),
                None => world.host_root(host.cloud, &host.ip),
            };
            let items = match source_failure(world, host, &src.account.alias) {
                Some(failure) => Err(failure),
                None => Ok(expand_entries(
                    &root,
                    &src.files,
                    job.spec.target_name.as_deref(),
                )),
            };
            out.push(SourcePlan {
                host: host.clone(),
                pulled_from: src.file_source.as_ref().map(|f| f.code.clone()),
                items,
                entries: src.files.clone(),
            });
        }
    }
    out
}

/// Why a whole source host cannot send: its agent, or the account missing on it.
fn source_failure(world: &World, host: &HostRef, account: &str) -> Option<HostFailure> {
    match world.agent(host) {
        Agent::Down => Some(HostFailure::agent_abnormal()),
        Agent::NotInstalled => Some(HostFailure::new(
            HostStatus::Failed,
            gse_code::ERROR,
            "Agent is not installed",
        )),
        Agent::Alive if world.account_missing_on(host, account) => Some(HostFailure::new(
            HostStatus::GseUserError,
            gse_code::USER_NOT_EXIST,
            format!("User {account} does not exist on the source host"),
        )),
        Agent::Alive => None,
    }
}

/// Each entry expanded on a live source host (its root, or a file source's); a root that
/// cannot be opened fails each.
fn expand_entries(
    root: &std::path::Path,
    files: &[String],
    rename: Option<&str>,
) -> Vec<EntryPlan> {
    let host_fs =
        HostFs::open(root).map_err(|e| format!("Cannot open the source host: {}", detail(&e)));
    files
        .iter()
        .map(|entry| EntryPlan {
            entry: entry.clone(),
            items: host_fs
                .clone()
                .and_then(|fs| expand(&fs, entry, rename))
                .map_err(|detail| {
                    HostFailure::new(HostStatus::GseFileError, gse_code::FILE_NOT_FOUND, detail)
                }),
        })
        .collect()
}

/// A target host's agent as a job meets it: abnormal for a `flaky_jobs` host's next job
/// (counted here), down or not installed, or without the job's account.
pub(crate) fn target_failure(world: &World, host: &HostRef, account: &str) -> Option<HostFailure> {
    if world.take_flaky(host) {
        return Some(HostFailure::agent_abnormal());
    }
    match world.agent(host) {
        Agent::Down => return Some(HostFailure::agent_abnormal()),
        Agent::NotInstalled => {
            return Some(HostFailure::new(
                HostStatus::AgentNotInstalled,
                gse_code::ERROR,
                "Agent is not installed",
            ));
        }
        Agent::Alive => {}
    }
    world.account_missing_on(host, account).then(|| {
        HostFailure::new(
            HostStatus::GseUserError,
            gse_code::USER_NOT_EXIST,
            format!("User {account} does not exist on the target host"),
        )
    })
}

/// The job's target directory for files from `source`, macros resolved, with its
/// trailing separator.
pub(crate) fn target_dir(
    spec: &JobSpec,
    source: &HostRef,
    now: chrono::DateTime<chrono::Local>,
) -> String {
    standardized_dir(&resolve_target_macros(
        &spec.target_path,
        source.cloud,
        &source.ip,
        now,
    ))
}

/// Where a found file lands: `<target>/<name>`, or `<target>/<dir>/` for a directory.
pub(crate) fn item_dest(target_dir: &str, item: &Item) -> String {
    if item.is_dir {
        format!("{target_dir}{}/", item.dest_name)
    } else {
        format!("{target_dir}{}", item.dest_name)
    }
}

/// Where a source entry lands when it could not be expanded: `<target>/<name>` for a
/// file (or `file_target_name`), `<target>/<dir>/` for a directory, and the pattern itself
/// (`<target>/REGEX:<re>`, `<target>/log*.log`) for a pattern, as JOB shows it before GSE
/// expands anything.
fn entry_dest(target_dir: &str, entry: &str, rename: Option<&str>) -> String {
    let spec = parse_source(entry);
    match &spec.kind {
        SourceKind::Regex(re) => format!("{target_dir}REGEX:{re}"),
        SourceKind::Dir => format!("{target_dir}{}/", spec.name),
        SourceKind::File => format!("{target_dir}{}", rename.unwrap_or(&spec.name)),
        SourceKind::Wildcard(_) => format!("{target_dir}{}", spec.name),
    }
}
