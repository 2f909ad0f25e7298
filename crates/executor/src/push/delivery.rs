//! Two things a push does after JOB answered for a job: run a v3 job's failed hosts again
//! inside the same job (`operate_step_instance` code 2, as JOB's UI does), exactly once
//! however the process ends; and check what the targets received (`verify`).

use plan_bkjob::{RunStatus, StepOperation};

use super::{Event, PushRun, PushStatus, Record, Start, now};
use crate::api::{JobApi, JobRef, StepExecution};
use crate::report::AttemptReport;
use crate::verify::{Verification, VerifyJob, VerifyMethod, verify};

/// A retry inside a job, as the coordinator or the push task asks for it.
#[derive(Debug, Clone)]
pub(crate) struct InJobRetry {
    pub(crate) job: JobRef,
    /// The failed hosts run again (for the journal and the events).
    pub(crate) hosts: Vec<String>,
}

impl<A: JobApi> PushRun<'_, A> {
    /// Whether the failed hosts of `job` run again inside it: JOB can (v3, its step known)
    /// and the push's failed hosts are all of this job (a push continued from an earlier
    /// job's results retries in a new job, as before).
    pub(super) fn retry_in_job(&self, job: &JobRef, failed: &[String]) -> Option<Start> {
        if !self.ctx.api.retries_in_job(job) {
            return None;
        }
        let all_here = failed.iter().all(|h| {
            self.delivered_by
                .get(h)
                .is_some_and(|j| j.job_instance_id == job.job_instance_id)
        });
        all_here.then(|| {
            Start::InJob(InJobRetry {
                job: *job,
                hosts: failed.to_vec(),
            })
        })
    }

    /// Asks JOB to run the job's failed hosts again: the intent first (fsync'd), then
    /// `operate_step_instance` code 2. An answer that does not say it was taken (lost, or
    /// refused because a lost first answer was taken) is settled by the step's execution
    /// count, never by asking again blindly.
    pub(super) async fn send_in_job_retry(
        &mut self,
        retry: InJobRetry,
    ) -> Result<JobRef, PushStatus> {
        let job = retry.job;
        let before = self.step_execution(&job).await;
        let intent = Record::PushRetryRequested {
            push: self.task.name.clone(),
            attempt: self.attempt,
            job,
            hosts: retry.hosts,
            execute_count: before.map(|s| s.execute_count),
            at: now(),
        };
        if let Err(error) = self.ctx.journal.append(&intent).await {
            self.report.error = Some(format!(
                "not retried inside JOB instance {}: {}",
                job.job_instance_id,
                super::journal_failed(self.ctx, &error)
            ));
            return Err(PushStatus::JournalFailed);
        }
        self.operate_retry(job, before.map(|s| s.execute_count))
            .await
    }

    /// A resumed run whose journal holds a retry intent without its attempt's end: the
    /// step's execution count says whether JOB took the retry (then the job is followed),
    /// or not (then it is asked now, once). A step that cannot be read, or that is no
    /// longer in a status JOB retries from, is followed as it is.
    pub(super) async fn resume_in_job_retry(
        &mut self,
        job: JobRef,
        count_before: Option<i32>,
    ) -> Result<JobRef, PushStatus> {
        let now_step = self.step_execution(&job).await;
        let taken = match (now_step, count_before) {
            (Some(step), Some(before)) => step.execute_count > before,
            _ => true,
        };
        let retryable = now_step.is_some_and(|s| StepOperation::RetryFailIp.allowed_in(s.status));
        if taken || !retryable {
            return Ok(job);
        }
        self.operate_retry(job, count_before).await
    }

    async fn operate_retry(
        &mut self,
        job: JobRef,
        count_before: Option<i32>,
    ) -> Result<JobRef, PushStatus> {
        let Err(error) = self.ctx.api.retry_failed_in_job(&job).await else {
            return Ok(job);
        };
        let after = self.step_execution(&job).await;
        if let (Some(after), Some(before)) = (after, count_before)
            && after.execute_count > before
        {
            return Ok(job);
        }
        self.report.job_instance_id = Some(job.job_instance_id);
        self.report.error_code = error.code();
        self.report.error = Some(format!(
            "JOB did not run the failed hosts of instance {} again: {error}",
            job.job_instance_id
        ));
        Err(PushStatus::Failed)
    }

    async fn step_execution(&self, job: &JobRef) -> Option<StepExecution> {
        match self.ctx.api.step_execution(job).await {
            Ok(step) => step,
            Err(e) => {
                tracing::warn!(push = %self.task.name, error = %e, "cannot read the step's state");
                None
            }
        }
    }

    /// One finished attempt in the report, and which job last reached each of its hosts.
    pub(super) fn log_attempt(&mut self, job: &JobRef, hosts: &[crate::report::HostResult]) {
        let in_same_job = self
            .report
            .attempt_log
            .last()
            .is_some_and(|a| a.job_instance_id == job.job_instance_id);
        self.report.attempt_log.push(AttemptReport {
            attempt: self.attempt,
            job_instance_id: job.job_instance_id,
            in_same_job,
            hosts: hosts.len(),
            failed: hosts.iter().filter(|h| !h.is_success()).count(),
            batch: self.current_batch(),
        });
        for host in hosts {
            self.delivered_by.insert(host.host.clone(), *job);
        }
    }

    /// A succeeded push with `verify` is checked before it is reported succeeded; a
    /// verification that does not pass fails it (not retried: the bytes JOB moved arrived
    /// altered, and sending them again the same way proves nothing; see docs/rolling.md).
    pub(super) async fn verify_delivery(&mut self, status: PushStatus) -> PushStatus {
        let Some(asked) = self.push.release.verify.as_ref() else {
            return status;
        };
        if status != PushStatus::Succeeded {
            return status;
        }
        let Some(job) = self.last_job().await else {
            self.report.error = Some("nothing to verify: no job of the push is known".into());
            return PushStatus::Failed;
        };
        let targets: Vec<crate::report::HostResult> = self.hosts.values().cloned().collect();
        let hard = self.ctx.interrupt.hard().clone();
        let verifying = verify(
            self.ctx.api.as_ref(),
            VerifyMethod::from(asked.value),
            VerifyJob {
                plan: &self.ctx.plan,
                push: self.push,
                run_tag: &self.ctx.run_tag,
                job: &job,
                delivered_by: &self.delivered_by,
                targets: &targets,
            },
        );
        // A second interrupt does not wait for the script job (up to its timeout): the
        // push ends interrupted without a verdict, and a resumed run verifies it.
        let verification = tokio::select! {
            v = verifying => v,
            () = hard.cancelled() => {
                self.report.error = Some("interrupted before its verification ended: continuing the run verifies it".into());
                return PushStatus::Interrupted;
            }
        };
        self.record_verification(&job, verification).await
    }

    async fn record_verification(
        &mut self,
        job: &JobRef,
        verification: Verification,
    ) -> PushStatus {
        let passed = verification.passed();
        let recorded = self
            .ctx
            .journal
            .append(&Record::PushVerified {
                push: self.task.name.clone(),
                job_instance_id: job.job_instance_id,
                verification: Box::new(verification.clone()),
                at: now(),
            })
            .await;
        self.ctx.emit(Event::PushVerified {
            push: self.task.name.clone(),
            job_instance_id: job.job_instance_id,
            verification: Box::new(verification.clone()),
        });
        let summary = verification.summary();
        let table = (verification.error.is_none() && !passed).then(|| verification.table());
        self.report.verification = Some(Box::new(verification));
        if let Err(error) = recorded {
            self.report.error = Some(format!(
                "{summary}, but {}",
                super::journal_failed(self.ctx, &error)
            ));
            return PushStatus::JournalFailed;
        }
        if passed {
            return PushStatus::Succeeded;
        }
        self.report.error = Some(match table {
            Some(table) => format!("{summary}:\n{table}"),
            None => summary,
        });
        PushStatus::Failed
    }

    /// The push's last job: the one followed in this segment, else (a resumed run that only
    /// verifies) the one the journal names, its step asked of JOB.
    async fn last_job(&mut self) -> Option<JobRef> {
        if let Some(job) = self.delivered_by.values().max_by_key(|j| j.job_instance_id) {
            return Some(*job);
        }
        let job_instance_id = match &self.task.start {
            Start::Verify(Some(id)) => *id,
            _ => self.report.job_instance_id?,
        };
        let mut job = JobRef {
            api: self.ctx.plan.api,
            bk_biz_id: self.ctx.plan.bk_biz_id.value,
            job_instance_id,
            step_instance_id: None,
            start_pending: false,
        };
        if let Ok(snapshot) = self.ctx.api.status(&job).await
            && snapshot.status != RunStatus::Unknown(0)
        {
            job.step_instance_id = snapshot.step_instance_id;
        }
        self.report.job_instance_id = Some(job_instance_id);
        Some(job)
    }
}
