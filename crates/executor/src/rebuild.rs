//! A run's journal rebuilt from JOB, for `--resume` on a machine that has none (a fresh CI
//! runner): the plan's jobs JOB lists carry their run's tag in their task names
//! (`crate::run_tag`), so the newest run is found, and what JOB shows of each push's jobs
//! under that tag becomes a fresh journal (`run_started` with `rebuilt_from_job`, then one
//! `push_rebuilt` line per push JOB has jobs of). The run then continues as any resume:
//! succeeded pushes are not sent again, running jobs are followed, failed pushes and
//! pushes never submitted are handled as a resume does.
//!
//! What JOB cannot tell is the plan each job was submitted from: a push the plan no longer
//! has refuses the resume, but a changed body is not seen (the journal's request hashes are
//! gone with it).

use std::collections::BTreeMap;

use plan_bkjob::{ListedJob, RunStatus};
use plan_parser::Plan;

use crate::api::{JobApi, JobRef};
use crate::journal::{Journal, Record, RunHistory, now, run_id_with_tag};
use crate::preflight::plan_jobs;
use crate::run::{Settings, StartError, start_journal};

/// The jobs of one push under the run's tag, newest first.
type PushJobs = BTreeMap<String, Vec<ListedJob>>;

/// Rebuilds the newest run of `plan` that JOB shows unfinished into a fresh journal under
/// `settings.state_dir`, and reads it back.
pub(crate) async fn from_job<A: JobApi>(
    api: &A,
    plan: &Plan,
    hashes: BTreeMap<String, String>,
    settings: &Settings,
) -> Result<(Journal, RunHistory), StartError> {
    let plan_name = plan.name.value.clone();
    let nothing = |last_run: Option<String>, job_cannot_list: bool| StartError::NothingToResume {
        plan: plan_name.clone(),
        last_run,
        job_cannot_list,
    };
    let jobs = match plan_jobs(api, plan).await {
        Ok(Some(jobs)) => jobs,
        Ok(None) => return Err(nothing(None, true)),
        Err(error) => {
            return Err(StartError::JobListRefused {
                plan: plan_name,
                error: Box::new(error),
            });
        }
    };
    let Some(tag) = newest_tag(&jobs) else {
        return Err(nothing(None, false));
    };
    let by_push = jobs_of_run(jobs, &tag);
    let removed: Vec<String> = by_push
        .keys()
        .filter(|push| plan.push(push).is_none())
        .cloned()
        .collect();
    if !removed.is_empty() {
        return Err(StartError::PlanChanged {
            plan: plan_name,
            run_id: format!("#{tag}"),
            changed: Vec::new(),
            added: Vec::new(),
            removed,
        });
    }
    if is_complete(plan, &by_push) {
        return Err(nothing(Some(format!("#{tag}")), false));
    }
    let journal = write_journal(plan, hashes, settings, &tag, &by_push).await?;
    let history = RunHistory::read(journal.path())?;
    Ok((journal, history))
}

/// The tag of the newest job (by creation time, then id).
fn newest_tag(jobs: &[(String, String, ListedJob)]) -> Option<String> {
    jobs.iter()
        .max_by_key(|(_, _, job)| (job.create_time.unwrap_or(0), job.job_instance_id))
        .map(|(_, tag, _)| tag.clone())
}

/// The run's jobs by push, newest first.
fn jobs_of_run(jobs: Vec<(String, String, ListedJob)>, tag: &str) -> PushJobs {
    let mut by_push = PushJobs::new();
    for (push, job_tag, job) in jobs {
        if job_tag == tag {
            by_push.entry(push).or_default().push(job);
        }
    }
    for jobs in by_push.values_mut() {
        jobs.sort_by_key(|job| {
            std::cmp::Reverse((job.create_time.unwrap_or(0), job.job_instance_id))
        });
    }
    by_push
}

/// Every push the run was to submit has a newest job that succeeded (and none runs): the
/// run completed, and there is nothing to resume. A disabled push is never submitted.
fn is_complete(plan: &Plan, by_push: &PushJobs) -> bool {
    plan.pushes.iter().filter(|push| push.enabled).all(|push| {
        by_push
            .get(&push.name.value)
            .and_then(|jobs| jobs.first())
            .is_some_and(|newest| newest.status == RunStatus::Success)
    })
}

async fn write_journal(
    plan: &Plan,
    hashes: BTreeMap<String, String>,
    settings: &Settings,
    tag: &str,
    by_push: &PushJobs,
) -> Result<Journal, StartError> {
    let journal = start_journal(plan, hashes, settings, run_id_with_tag(tag), true).await?;
    for (push, jobs) in by_push {
        let Some(newest) = jobs.first() else { continue };
        journal
            .append(&Record::PushRebuilt {
                push: push.clone(),
                jobs: u32::try_from(jobs.len()).unwrap_or(u32::MAX),
                job: JobRef {
                    api: plan.api,
                    bk_biz_id: plan.bk_biz_id.value,
                    job_instance_id: newest.job_instance_id,
                    step_instance_id: None,
                    // Created unstarted (two-phase) and never started: the resume starts it.
                    start_pending: newest.status == RunStatus::Blank,
                },
                job_status: newest.status,
                at: now(),
            })
            .await?;
    }
    Ok(journal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: i64, created: i64, status: RunStatus) -> ListedJob {
        ListedJob {
            job_instance_id: id,
            name: String::new(),
            operator: "alice".into(),
            status,
            create_time: Some(created),
            start_time: None,
        }
    }

    #[test]
    fn the_newest_job_names_the_run_and_its_pushes_sort_newest_first() {
        let jobs = vec![
            (
                "a".to_owned(),
                "00000001".to_owned(),
                job(1, 10, RunStatus::Success),
            ),
            (
                "a".to_owned(),
                "00000002".to_owned(),
                job(2, 20, RunStatus::Fail),
            ),
            (
                "a".to_owned(),
                "00000002".to_owned(),
                job(4, 40, RunStatus::Running),
            ),
            (
                "b".to_owned(),
                "00000002".to_owned(),
                job(3, 30, RunStatus::Success),
            ),
        ];
        assert_eq!(newest_tag(&jobs).as_deref(), Some("00000002"));
        let by_push = jobs_of_run(jobs, "00000002");
        let ids = |p: &str| {
            by_push[p]
                .iter()
                .map(|j| j.job_instance_id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("a"), [4, 2]);
        assert_eq!(ids("b"), [3]);
    }
}
