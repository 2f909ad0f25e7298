//! Other runs of the same plan, as JOB sees them: every apply tags its task names with its
//! run (`crate::run_tag`), so JOB's job list (`get_job_instance_list`, v3 only) tells which
//! runs have jobs of this plan that have not finished, whichever machine started them.
//!
//! An apply asks before its first submission (and, unless forced, again before each later
//! stage): a job of this plan that has not finished under another run's tag means two runs
//! would push the same files at once, so the run is refused (or stops submitting).

use std::collections::{BTreeMap, BTreeSet};

use plan_bkjob::task_name::split_run_tag;
use plan_bkjob::{ApiError, ListedJob};
use plan_parser::Plan;

use crate::api::JobApi;

/// One job of another run that JOB shows not finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignJob {
    /// The push its task name names.
    pub push: String,
    /// The job.
    pub job_instance_id: i64,
    /// JOB's status label and number (e.g. `2 Running`).
    pub status: String,
    /// When JOB started it (or created it, while it waits), RFC 3339 UTC.
    pub started_at: Option<String>,
}

/// Another run of the plan with jobs JOB shows not finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignRun {
    /// Its tag (what its task names end with after `#`).
    pub run_tag: String,
    /// JOB's `operator` of its jobs (who ran it), comma-separated when several.
    pub operator: String,
    /// Its unfinished jobs, oldest first.
    pub jobs: Vec<ForeignJob>,
}

/// What JOB's job list says about other runs.
#[derive(Debug)]
pub(crate) enum OtherRuns {
    /// This API family has no job list (v2), or the `JobApi` lists none.
    Unknown,
    /// Runs of the plan, other than this one, with jobs not finished (empty: none).
    Found(Vec<ForeignRun>),
}

/// `[task_prefix]<plan>/`: what every task name of the plan starts with, and the fuzzy
/// `name` JOB's list is asked for.
pub(crate) fn plan_task_prefix(plan: &Plan) -> String {
    format!(
        "{}{}/",
        plan.task_prefix.as_deref().unwrap_or(""),
        plan.name.value
    )
}

/// A listed job's push and run tag, when its task name is one of this plan's runs': the
/// fuzzy match also finds other plans whose names contain this one's.
pub(crate) fn parse_job_name<'a>(prefix: &str, name: &'a str) -> Option<(&'a str, &'a str)> {
    let (base, tag) = split_run_tag(name)?;
    let push = base.strip_prefix(prefix)?;
    let is_push_name = !push.is_empty()
        && push
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    is_push_name.then_some((push, tag))
}

/// Every job of this plan's runs JOB lists, with its push and run tag. `None`: JOB cannot
/// be asked (v2).
pub(crate) async fn plan_jobs<A: JobApi>(
    api: &A,
    plan: &Plan,
) -> Result<Option<Vec<(String, String, ListedJob)>>, ApiError> {
    let prefix = plan_task_prefix(plan);
    let Some(listed) = api
        .list_jobs(plan.api, plan.bk_biz_id.value, &prefix)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(
        listed
            .into_iter()
            .filter_map(|job| {
                let (push, tag) = parse_job_name(&prefix, &job.name)?;
                Some((push.to_owned(), tag.to_owned(), job.clone()))
            })
            .collect(),
    ))
}

/// One run's operators and its unfinished jobs with their start (or creation) time.
type RunSeen = (Vec<String>, Vec<(i64, ForeignJob)>);

/// Runs of this plan other than `own_tag`'s with jobs JOB shows not finished.
pub(crate) async fn other_runs<A: JobApi>(
    api: &A,
    plan: &Plan,
    own_tag: &str,
) -> Result<OtherRuns, ApiError> {
    Ok(match plan_jobs(api, plan).await? {
        None => OtherRuns::Unknown,
        Some(jobs) => OtherRuns::Found(foreign_runs(&jobs, own_tag)),
    })
}

/// What this process knows of its own run's jobs: when it started (epoch milliseconds) and
/// the jobs it created since.
pub(crate) struct OwnJobs<'a> {
    pub(crate) since_ms: i64,
    pub(crate) created: &'a BTreeSet<i64>,
}

/// What a check during the run finds in JOB.
#[derive(Debug, Default)]
pub(crate) struct Survey {
    /// Other runs with jobs not finished.
    pub(crate) others: Vec<ForeignRun>,
    /// Jobs of this very run (its tag) that another process created since this one started:
    /// the run was taken over elsewhere (`--resume` on another machine) while this process
    /// still runs it.
    pub(crate) taken_over: Vec<ForeignJob>,
}

/// Other runs, and jobs of this run that another process created. `None`: JOB cannot be
/// asked (v2).
pub(crate) async fn survey<A: JobApi>(
    api: &A,
    plan: &Plan,
    own_tag: &str,
    own: &OwnJobs<'_>,
) -> Result<Option<Survey>, ApiError> {
    let Some(jobs) = plan_jobs(api, plan).await? else {
        return Ok(None);
    };
    let taken_over = jobs
        .iter()
        .filter(|(_, tag, job)| {
            tag == own_tag
                && job.create_time.is_some_and(|t| t >= own.since_ms)
                && !own.created.contains(&job.job_instance_id)
        })
        .map(|(push, _, job)| foreign_job(push, job))
        .collect();
    Ok(Some(Survey {
        others: foreign_runs(&jobs, own_tag),
        taken_over,
    }))
}

fn foreign_job(push: &str, job: &ListedJob) -> ForeignJob {
    ForeignJob {
        push: push.to_owned(),
        job_instance_id: job.job_instance_id,
        status: job.status.to_string(),
        started_at: job.start_time.or(job.create_time).and_then(rfc3339_ms),
    }
}

/// The runs other than `own_tag`'s with active jobs, each job oldest first.
fn foreign_runs(jobs: &[(String, String, ListedJob)], own_tag: &str) -> Vec<ForeignRun> {
    let mut runs: BTreeMap<String, RunSeen> = BTreeMap::new();
    let now_ms = chrono::Utc::now().timestamp_millis();
    for (push, tag, job) in jobs {
        if tag == own_tag || !is_active(job, now_ms) {
            continue;
        }
        let (operators, found) = runs.entry(tag.clone()).or_default();
        if !job.operator.is_empty() && !operators.contains(&job.operator) {
            operators.push(job.operator.clone());
        }
        found.push((
            job.start_time.or(job.create_time).unwrap_or(0),
            foreign_job(push, job),
        ));
    }
    runs.into_iter()
        .map(|(run_tag, (operators, mut jobs))| {
            jobs.sort_by_key(|(at, job)| (*at, job.job_instance_id));
            ForeignRun {
                run_tag,
                operator: operators.join(", "),
                jobs: jobs.into_iter().map(|(_, job)| job).collect(),
            }
        })
        .collect()
}

/// How long a job may stay pending (status 1, created unstarted by two-phase submission)
/// and still count as its run's: a run starts its job milliseconds after creating it, so one
/// still pending this long after was left by a run that died in between. It transfers
/// nothing unless that run is resumed, and a resume checks for other runs first; counting it
/// would refuse every apply of the plan for as long as JOB lists it.
const PENDING_ABANDONED_AFTER_MS: i64 = 10 * 60 * 1000;

/// Not finished, and not a pending job long abandoned.
fn is_active(job: &ListedJob, now_ms: i64) -> bool {
    if job.status.is_finished() {
        return false;
    }
    let abandoned = job.status == plan_bkjob::RunStatus::Blank
        && job
            .create_time
            .is_some_and(|created| now_ms - created > PENDING_ABANDONED_AFTER_MS);
    !abandoned
}

/// Milliseconds since the epoch (JOB's times) as RFC 3339 UTC.
fn rfc3339_ms(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_name_parses_to_push_and_tag_only_under_the_plan() {
        let prefix = "ops/web/";
        assert_eq!(
            parse_job_name(prefix, "ops/web/to-web#a1b2c3d4"),
            Some(("to-web", "a1b2c3d4"))
        );
        // Another plan whose name contains this one's.
        assert_eq!(parse_job_name(prefix, "xops/web/to-web#a1b2c3d4"), None);
        assert_eq!(parse_job_name(prefix, "ops/web/a/b#a1b2c3d4"), None);
        // No run tag: not an apply's job.
        assert_eq!(parse_job_name(prefix, "ops/web/to-web"), None);
        assert_eq!(parse_job_name(prefix, "ops/web/#a1b2c3d4"), None);
    }

    #[test]
    fn a_pending_job_counts_until_it_is_long_abandoned() {
        let job = |status, created| ListedJob {
            job_instance_id: 1,
            name: String::new(),
            operator: String::new(),
            status,
            create_time: Some(created),
            start_time: None,
        };
        let now = 100 * 60 * 1000;
        let pending = plan_bkjob::RunStatus::Blank;
        assert!(is_active(&job(pending, now - 60_000), now));
        assert!(!is_active(
            &job(pending, now - PENDING_ABANDONED_AFTER_MS - 1),
            now
        ));
        // A running job counts however old it is; a finished one never.
        assert!(is_active(&job(plan_bkjob::RunStatus::Running, 0), now));
        assert!(!is_active(&job(plan_bkjob::RunStatus::Success, now), now));
    }

    #[test]
    fn job_times_read_as_utc() {
        assert_eq!(
            rfc3339_ms(1_700_000_000_000).as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
    }
}
