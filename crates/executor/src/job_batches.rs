//! Following JOB's own rolling batches (a v3 push with `rolling` over its targets): which
//! batch a job is at, each batch's hosts as it finishes (journaled and reported), whether
//! JOB waits for a person after one, and asking the confirmer at that point or at a gate.
//!
//! JOB's status answer has no field naming the current batch (docs/rolling.md): the batches
//! show in the hosts' statuses (finished batches final, later ones waiting, 5). So the batch
//! sizes come from the push's expression over the hosts JOB lists (`RollingExpr`, the same
//! arithmetic JOB uses), the batches done from the hosts with a final status, and each
//! finished batch's hosts from `get_step_instance_status` with `batch` (or, when that cannot
//! tell, the job's host list cut by the sizes).

use plan_bkjob::rolling::RollingExpr;
use plan_bkjob::{ApiError, ApiVersion, HostState, HostStatus, RunStatus, Snapshot};
use plan_parser::{Plan, Push, RollingOver};

use crate::api::{JobApi, JobRef};
use crate::confirm::WaitPoint;
use crate::journal::{JournalError, Record, now};
use crate::lock::current_user;
use crate::push::{Ctx, Start, Task};
use crate::report::{Batch, BatchReport, Event, HostResult, PushStatus};

/// What the executor knows of a job's rolling batches between two polls.
pub(crate) struct JobBatches {
    expression: RollingExpr,
    /// Batches with every host final at the last poll (a batch run again lowers it).
    done: usize,
    /// Each batch seen finishing, in order.
    seen: Vec<BatchReport>,
    /// The batches an earlier segment journaled finished for the job this one follows
    /// again: reported for those this segment does not see finishing.
    earlier: Vec<BatchReport>,
}

impl JobBatches {
    /// For a v3 push that JOB rolls over its targets; `None` otherwise.
    pub(crate) fn for_push(plan: &Plan, push: &Push) -> Option<JobBatches> {
        if plan.api != ApiVersion::V3 {
            return None;
        }
        match &push.release.rolling.as_ref()?.over {
            RollingOver::Targets { parsed, .. } => Some(JobBatches {
                expression: parsed.clone(),
                done: 0,
                seen: Vec::new(),
                earlier: Vec::new(),
            }),
            RollingOver::Sources { .. } => None,
        }
    }

    /// For a job an earlier segment followed (`Start::Attach`), the batches it journaled
    /// finished (`earlier`, in index order) are not journaled again, and are reported.
    pub(crate) fn journaled_before(
        mut self,
        start: &Start,
        done: Option<(i64, u32)>,
        earlier: &[BatchReport],
    ) -> Self {
        if let (Start::Attach(job), Some((journaled_job, batch))) = (start, done)
            && job.job_instance_id == journaled_job
        {
            self.done = batch as usize;
            self.earlier = earlier.to_vec();
        }
        self
    }

    /// Every batch for the push's report, in batch order: those seen finishing in this
    /// segment (a batch run again after a confirmation twice, in the order seen), and
    /// before them those only an earlier segment saw (`already done` when they succeeded).
    pub(crate) fn into_reports(self) -> Vec<BatchReport> {
        let seen = self.seen;
        let seen_indexes: Vec<u32> = seen.iter().map(|b| b.index).collect();
        let mut reports: Vec<BatchReport> = self
            .earlier
            .into_iter()
            .filter(|b| !seen_indexes.contains(&b.index))
            .map(|mut b| {
                if b.status == PushStatus::Succeeded {
                    b.status = PushStatus::AlreadySucceeded;
                }
                b
            })
            .chain(seen)
            .collect();
        reports.sort_by_key(|b| b.index);
        reports
    }

    /// A confirmed wait at a failed batch runs its failed hosts again: the batch counts as
    /// not finished, so its new end is journaled whether or not a poll sees it running.
    pub(crate) fn reopen(&mut self, point: &WaitPoint) {
        if let WaitPoint::Batch {
            batch,
            failed: true,
            ..
        } = point
        {
            self.done = self.done.min((*batch as usize).saturating_sub(1));
        }
    }

    fn sizes(&self, snapshot: &Snapshot) -> Vec<usize> {
        self.expression
            .batch_sizes(snapshot.hosts.len())
            .unwrap_or_default()
    }

    /// The batch under way (the last one once every host is final); while JOB waits for a
    /// confirmation after a batch, that batch (the next one has not started).
    pub(crate) fn position(&self, snapshot: &Snapshot) -> Option<Batch> {
        let sizes = self.sizes(snapshot);
        let count = sizes.len();
        if count == 0 {
            return None;
        }
        let done = batches_done(&sizes, snapshot);
        let index = if waits(snapshot) {
            done.max(1)
        } else {
            (done + 1).min(count)
        };
        Some(Batch {
            index: to_u32(index),
            count: to_u32(count),
        })
    }

    /// Where JOB waits for a person after a batch: status 7 (manual mode), or a failed
    /// batch that paused the job (final status 4 with later batches' hosts still waiting).
    pub(crate) fn waiting(&self, job: &JobRef, snapshot: &Snapshot) -> Option<WaitPoint> {
        if !waits(snapshot) {
            return None;
        }
        let sizes = self.sizes(snapshot);
        Some(WaitPoint::Batch {
            job_instance_id: job.job_instance_id,
            batch: to_u32(batches_done(&sizes, snapshot).max(1)),
            batches: to_u32(sizes.len()),
            failed: snapshot.status == RunStatus::Fail,
        })
    }

    /// Journals and reports the batches that finished since the last poll. True when a
    /// batch finished (the next one has the job's whole timeout again, as in JOB).
    pub(crate) async fn record<A: JobApi>(
        &mut self,
        ctx: &Ctx<A>,
        task: &Task,
        job: &JobRef,
        snapshot: &Snapshot,
    ) -> bool {
        let sizes = self.sizes(snapshot);
        let done = batches_done(&sizes, snapshot);
        let before = std::mem::replace(&mut self.done, done);
        for index in before + 1..=done {
            let hosts = batch_hosts(ctx, job, snapshot, &sizes, index).await;
            self.finished(ctx, task, job, index, sizes.len(), hosts);
        }
        done > before
    }

    fn finished<A>(
        &mut self,
        ctx: &Ctx<A>,
        task: &Task,
        job: &JobRef,
        index: usize,
        count: usize,
        hosts: Vec<HostResult>,
    ) {
        let status = if hosts.iter().all(HostResult::is_success) {
            PushStatus::Succeeded
        } else {
            PushStatus::Failed
        };
        let report = BatchReport::of_hosts(
            to_u32(index),
            to_u32(count),
            status,
            job.job_instance_id,
            &hosts,
        );
        // What JOB already did: queued without waiting, as `push_attempt_finished` is.
        drop(ctx.journal.enqueue(&Record::PushBatchFinished {
            push: task.name.clone(),
            job_instance_id: job.job_instance_id,
            batch: to_u32(index),
            batches: to_u32(count),
            status,
            hosts,
            at: now(),
        }));
        ctx.emit(Event::PushBatchFinished {
            push: task.name.clone(),
            stage: task.stage,
            batches: to_u32(count),
            report: report.clone(),
        });
        self.seen.push(report);
    }
}

/// JOB waits for a person after a batch: status 7 (manual mode), or a failed batch that
/// paused the job (final status 4 with later batches' hosts still waiting).
fn waits(snapshot: &Snapshot) -> bool {
    match snapshot.status {
        RunStatus::WaitingUser => !snapshot.finished,
        RunStatus::Fail => {
            snapshot.finished
                && snapshot
                    .hosts
                    .iter()
                    .any(|h| h.status == HostStatus::Waiting)
        }
        _ => false,
    }
}

/// How many batches have every host final: the cumulative sizes the finished hosts cover.
fn batches_done(sizes: &[usize], snapshot: &Snapshot) -> usize {
    let finished = snapshot
        .hosts
        .iter()
        .filter(|h| h.status.is_finished())
        .count();
    sizes
        .iter()
        .scan(0, |sum, size| {
            *sum += size;
            Some(*sum)
        })
        .take_while(|sum| *sum <= finished)
        .count()
}

/// Batch `index`'s hosts: as JOB lists the batch, else the job's host list cut by the sizes.
async fn batch_hosts<A: JobApi>(
    ctx: &Ctx<A>,
    job: &JobRef,
    snapshot: &Snapshot,
    sizes: &[usize],
    index: usize,
) -> Vec<HostResult> {
    let listed = match ctx.api.batch_hosts(job, to_u32(index)).await {
        Ok(Some(hosts)) if hosts.len() == sizes[index - 1] => hosts,
        Ok(_) => cut(snapshot, sizes, index),
        Err(e) => {
            tracing::debug!(job = job.job_instance_id, error = %e, "batch hosts unavailable; cutting the host list");
            cut(snapshot, sizes, index)
        }
    };
    listed
        .iter()
        .map(|h| {
            // The job's status carries the GSE code the batch listing leaves out.
            let code = snapshot
                .hosts
                .iter()
                .find(|s| s.key() == h.key())
                .and_then(|s| s.error_code);
            HostResult {
                host: h.address(),
                host_id: h.bk_host_id,
                status: h.status,
                label: h.status.label().to_owned(),
                error_code: h.error_code.or(code),
                log_excerpt: None,
            }
        })
        .collect()
}

fn cut(snapshot: &Snapshot, sizes: &[usize], index: usize) -> Vec<HostState> {
    let start: usize = sizes[..index - 1].iter().sum();
    snapshot
        .hosts
        .iter()
        .skip(start)
        .take(sizes[index - 1])
        .cloned()
        .collect()
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// How asking at a wait point went.
pub(crate) enum Asked {
    /// Confirmed and journaled; for a batch, JOB took the operation.
    GoOn,
    /// No one confirmed: journaled as awaiting.
    Waits,
    /// JOB refused the operation that goes on (the confirmation is journaled).
    Refused(ApiError),
    /// The journal could not be written.
    JournalFailed(JournalError),
}

/// Asks the confirmer at `point` (not when the run is stopping: no one should be asked to
/// approve more of a run being stopped). A yes is journaled with the OS user before the
/// batch is operated on (13 after a batch that succeeded, 2 after a failed one); a no is
/// journaled as awaiting.
pub(crate) async fn ask<A: JobApi>(
    ctx: &Ctx<A>,
    task: &Task,
    job: Option<&JobRef>,
    point: WaitPoint,
) -> Asked {
    let push = task.name.clone();
    let confirmed = !ctx.interrupt.is_stopping() && ctx.confirmer.ask(&push, &point).await;
    if !confirmed {
        let line = Record::PushAwaitingConfirmation {
            push: push.clone(),
            point: point.clone(),
            at: now(),
        };
        if let Err(e) = ctx.journal.append(&line).await {
            return Asked::JournalFailed(e);
        }
        ctx.emit(Event::PushAwaitingConfirmation { push, point });
        return Asked::Waits;
    }
    let by = current_user();
    let line = Record::PushConfirmed {
        push: push.clone(),
        point: point.clone(),
        by: by.clone(),
        at: now(),
    };
    if let Err(e) = ctx.journal.append(&line).await {
        return Asked::JournalFailed(e);
    }
    let sent = match (&point, job) {
        (WaitPoint::Batch { failed: true, .. }, Some(job)) => {
            ctx.api.retry_failed_in_job(job).await
        }
        (WaitPoint::Batch { .. }, Some(job)) => ctx.api.continue_rolling(job).await,
        _ => Ok(()),
    };
    ctx.emit(Event::PushConfirmed { push, point, by });
    match sent {
        Ok(()) => Asked::GoOn,
        Err(e) => Asked::Refused(e),
    }
}

#[cfg(test)]
mod tests {
    use plan_bkjob::ApiVersion;

    use super::*;

    fn snapshot(status: RunStatus, finished: bool, hosts: &[HostStatus]) -> Snapshot {
        Snapshot {
            finished,
            status,
            step_instance_id: Some(2),
            hosts: hosts
                .iter()
                .enumerate()
                .map(|(i, s)| HostState {
                    bk_host_id: None,
                    bk_cloud_id: 0,
                    ip: format!("10.0.0.{}", i + 1),
                    status: *s,
                    error_code: None,
                })
                .collect(),
        }
    }

    fn batches(expression: &str) -> JobBatches {
        JobBatches {
            expression: RollingExpr::parse(expression).expect("expression"),
            done: 0,
            seen: Vec::new(),
            earlier: Vec::new(),
        }
    }

    const JOB: JobRef = JobRef {
        api: ApiVersion::V3,
        bk_biz_id: 2,
        job_instance_id: 9,
        step_instance_id: Some(2),
        start_pending: false,
    };

    use HostStatus::{Failed, Running, Success, Waiting};

    #[test]
    fn the_batch_under_way_follows_the_hosts_with_a_final_status() {
        let b = batches("1 +1");
        // 1, 2, 3: batch 1 done, batch 2 running.
        let s = snapshot(
            RunStatus::Running,
            false,
            &[Success, Running, Success, Waiting, Waiting, Waiting],
        );
        assert_eq!(b.position(&s), Some(Batch { index: 2, count: 3 }));
        assert_eq!(b.waiting(&JOB, &s), None);
        let done = snapshot(RunStatus::Success, true, &[Success; 6]);
        assert_eq!(b.position(&done), Some(Batch { index: 3, count: 3 }));
        assert_eq!(b.position(&snapshot(RunStatus::Blank, false, &[])), None);
    }

    #[test]
    fn job_waits_for_a_user_in_7_and_after_a_failed_batch_in_4_with_hosts_left() {
        let b = batches("2");
        let manual = snapshot(
            RunStatus::WaitingUser,
            false,
            &[Success, Success, Waiting, Waiting],
        );
        assert_eq!(
            b.waiting(&JOB, &manual),
            Some(WaitPoint::Batch {
                job_instance_id: 9,
                batch: 1,
                batches: 2,
                failed: false
            })
        );
        let paused = snapshot(RunStatus::Fail, true, &[Success, Failed, Waiting, Waiting]);
        assert!(matches!(
            b.waiting(&JOB, &paused),
            Some(WaitPoint::Batch {
                batch: 1,
                failed: true,
                ..
            })
        ));
        // A failure in the last batch ends the job: nothing to continue.
        let ended = snapshot(RunStatus::Fail, true, &[Success, Success, Success, Failed]);
        assert_eq!(b.waiting(&JOB, &ended), None);
    }

    fn batch(index: u32, status: PushStatus) -> BatchReport {
        BatchReport::of_hosts(index, 3, status, 9, &[])
    }

    #[test]
    fn a_resumed_job_reports_the_batches_an_earlier_segment_saw_finish() {
        let earlier = [
            batch(1, PushStatus::Succeeded),
            batch(2, PushStatus::Failed),
        ];
        let attach = Start::Attach(JOB);
        let mut b = batches("1 30% 100%").journaled_before(&attach, Some((9, 2)), &earlier);
        assert_eq!(b.done, 2);
        b.seen = vec![
            batch(2, PushStatus::Succeeded),
            batch(3, PushStatus::Succeeded),
        ];
        let statuses: Vec<(u32, PushStatus)> = b
            .into_reports()
            .iter()
            .map(|r| (r.index, r.status))
            .collect();
        assert_eq!(
            statuses,
            [
                (1, PushStatus::AlreadySucceeded),
                (2, PushStatus::Succeeded),
                (3, PushStatus::Succeeded)
            ]
        );
        // Another job: what the earlier one did is not this job's batches.
        let other = batches("1 30% 100%").journaled_before(&attach, Some((8, 2)), &earlier);
        assert!(other.into_reports().is_empty());
    }

    #[test]
    fn a_confirmed_failed_batch_counts_as_not_finished_again() {
        let mut b = batches("2");
        b.done = 1;
        b.reopen(&WaitPoint::Batch {
            job_instance_id: 9,
            batch: 1,
            batches: 2,
            failed: true,
        });
        assert_eq!(b.done, 0);
        let mut b = batches("2");
        b.done = 1;
        b.reopen(&WaitPoint::Gate);
        assert_eq!(b.done, 1);
    }
}
