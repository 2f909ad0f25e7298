//! One push, from submission to its final per-host results: submit, follow with adaptive
//! polling, terminate at the deadline, fetch logs of failed hosts, retry only those hosts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use plan_bkjob::{ApiError, HostState, HostStatus, RunStatus, Snapshot, code};
use plan_graph::JobRequest;
use plan_parser::{HostAddr, HostId, Plan, Push};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::api::{JobApi, JobRef, StartOutcome};
use crate::interrupt::Interrupt;
use crate::journal::{Journal, JournalError, Record, now, sha256_hex};
use crate::options::{JOB_DEFAULT_TIMEOUT_SECS, Pacer, PollPolicy};
use crate::progress::Estimate;
use crate::report::{
    Batch, BatchReport, Event, Hint, HostResult, PushReport, PushStatus, TerminateReason,
};

mod delivery;

/// Shared by every push task of a run.
pub(crate) struct Ctx<A> {
    pub(crate) api: Arc<A>,
    pub(crate) plan: Arc<Plan>,
    pub(crate) journal: Arc<Journal>,
    /// The run's tag, appended to every task name sent (`crate::run_tag`).
    pub(crate) run_tag: String,
    /// Every job this process created: a job of the run's tag that is not among them was
    /// created by another process (the run taken over elsewhere).
    pub(crate) created_jobs: std::sync::Mutex<std::collections::BTreeSet<i64>>,
    pub(crate) events: UnboundedSender<Event>,
    pub(crate) interrupt: Interrupt,
    pub(crate) poll: PollPolicy,
    /// First submissions go out in the order the coordinator started their pushes.
    pub(crate) turns: Turns,
    /// `--continue never`: once a push failed, pushes still waiting for their turn to submit
    /// are not submitted.
    pub(crate) stop_new_on_failure: bool,
    /// A push of this run did not succeed (set before its turn is given back, so a push
    /// waiting behind a rejected submission sees it).
    pub(crate) failure_seen: std::sync::atomic::AtomicBool,
    /// Answers at a gate or a rolling batch waiting for a user.
    pub(crate) confirmer: crate::confirm::Confirmer,
}

/// Submission order. Each push task the coordinator starts gets the next ticket; its first
/// submission goes through two gates in ticket order:
///
/// * `intents`: it writes its `push_submitting` line once every earlier ticket wrote its own
///   (or needed none), so that fsync overlaps the previous submission's round trip;
/// * `answers`: it sends the request once every earlier ticket's first submission was
///   answered (or needed none).
///
/// Tasks run concurrently, so without the second gate the order of `fast_*` calls within a
/// stage (and of their `push_submitting` events) would be whichever task got to the network
/// first, not file order (stages) or longest path then file order (eager); and a push after
/// a refused one would already be on its way when `--continue never` should hold it back.
/// The first gate lets at most [`INTENTS_AHEAD`] intents run ahead of their turn to send
/// (their lines share an fsync, so a stage's calls go out at the pace of JOB's answers, not
/// of the disk); when such a turn comes and the run is stopping, the push journals that it
/// did not send (`not_sent`).
pub(crate) struct Turns {
    intents: Gate,
    answers: Gate,
}

/// How many first submissions may have their intent on disk while waiting to be sent. A
/// crash while they wait leaves them in doubt beside the one submission then in flight (which
/// alone refuses `--resume`); a stop before their turn journals them `not_sent`.
const INTENTS_AHEAD: u64 = 4;

/// Tickets done in any order; `next` is the lowest one not done yet.
struct Gate {
    /// The lowest ticket not done yet, and the done tickets above it.
    state: std::sync::Mutex<(u64, std::collections::BTreeSet<u64>)>,
    next: tokio::sync::watch::Sender<u64>,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            state: std::sync::Mutex::new((0, std::collections::BTreeSet::new())),
            next: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Waits until every ticket before `ticket` is done.
    async fn wait(&self, ticket: u64) {
        let mut rx = self.next.subscribe();
        // The sender lives as long as the context that owns both; an error cannot happen.
        let _ = rx.wait_for(|next| *next >= ticket).await;
    }

    fn done(&self, ticket: u64) {
        let mut state = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (next, done) = &mut *state;
        done.insert(ticket);
        while done.remove(next) {
            *next += 1;
        }
        self.next.send_replace(*next);
    }
}

impl Turns {
    pub(crate) fn new() -> Turns {
        Turns {
            intents: Gate::new(),
            answers: Gate::new(),
        }
    }
}

/// A task's ticket at both gates, each given back once passed, or when the task ends
/// without a submission (dropped, so a panic or early return never blocks later pushes).
struct Turn<'a> {
    turns: &'a Turns,
    intent: Option<u64>,
    answer: Option<u64>,
}

impl Turn<'_> {
    /// The intent is written (or none will be).
    fn release_intent(&mut self) {
        if let Some(ticket) = self.intent.take() {
            self.turns.intents.done(ticket);
        }
    }

    /// The first submission was answered (or none will be sent).
    fn release(&mut self) {
        self.release_intent();
        if let Some(ticket) = self.answer.take() {
            self.turns.answers.done(ticket);
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

impl<A> Ctx<A> {
    pub(crate) fn emit(&self, event: Event) {
        // A caller that stopped listening does not stop the run.
        let _ = self.events.send(event);
    }
}

/// Where a push task begins.
#[derive(Debug, Clone)]
pub(crate) enum Start {
    /// Submit the full request.
    Fresh,
    /// Follow a job an earlier segment submitted (never re-submitted).
    Attach(JobRef),
    /// Submit only to these hosts (the failed ones of an earlier attempt).
    Hosts(Vec<HostAddr>),
    /// Submit only to the hosts with these CMDB ids (the failed ones of an earlier attempt,
    /// as JOB named them).
    HostIds(Vec<HostId>),
    /// Run the failed hosts of a v3 job again inside it (`operate_step_instance` code 2).
    InJob(delivery::InJobRetry),
    /// The transfer succeeded in an earlier segment (this JOB instance, when known) and its
    /// verification did not run: verify only.
    Verify(Option<i64>),
}

impl Start {
    /// A retry of the failed hosts: by `bk_host_id` when JOB gave each one (v3), else by
    /// address; `None` when some host can be named neither way (then the whole push goes
    /// again).
    pub(crate) fn retry(failed: &[&HostResult]) -> Option<Start> {
        if failed.is_empty() {
            return None;
        }
        let ids: Option<Vec<HostId>> = failed.iter().map(|h| h.host_id.map(HostId)).collect();
        if let Some(ids) = ids {
            return Some(Start::HostIds(ids));
        }
        let addrs: Option<Vec<HostAddr>> = failed.iter().map(|h| parse_host(&h.host)).collect();
        addrs.map(Start::Hosts)
    }

    /// A retry of some hosts (not the whole push).
    pub(crate) fn is_retry(&self) -> bool {
        matches!(self, Start::Hosts(_) | Start::HostIds(_))
    }
}

/// What the coordinator hands a task.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub(crate) name: String,
    pub(crate) stage: usize,
    pub(crate) start: Start,
    /// The attempt number of the first submission in this segment.
    pub(crate) first_attempt: u32,
    /// Place in the submission order ([`Turns`]).
    pub(crate) ticket: u64,
    /// Host results of an earlier segment this one continues (a re-attached job, a retry of
    /// the failed hosts), so the outcome covers every target host.
    pub(crate) known_hosts: Vec<HostResult>,
    /// The batch (1-based) the job of `Start::Attach` belongs to, for a push the plan cuts
    /// into batches.
    pub(crate) attach_batch: Option<u32>,
    /// The push's gate was confirmed in an earlier segment: not asked again.
    pub(crate) gate_confirmed: bool,
    /// The last JOB rolling batch an earlier segment journaled finished: its job and index.
    pub(crate) job_batches_done: Option<(i64, u32)>,
    /// The JOB rolling batches an earlier segment journaled finished for that job.
    pub(crate) job_batches_before: Vec<BatchReport>,
    /// `Start::Attach` continues a retry inside the job whose intent the journal holds
    /// without its end: the step's execution count before it (whether JOB took it is read
    /// from the step before anything is sent).
    pub(crate) pending_retry: Option<Option<i32>>,
}

/// How following a job ended.
struct Followed {
    last: Option<Snapshot>,
    finished: bool,
    terminated: Option<TerminateReason>,
    error: Option<ApiError>,
    /// Why following stopped early, when no API error says it.
    note: Option<Note>,
    /// Following stopped because the journal can no longer be written.
    journal_failed: bool,
    /// JOB waits for a person after a rolling batch and no one confirmed (journaled).
    awaiting: Option<Box<crate::confirm::WaitPoint>>,
}

/// Why following stopped early, and what continuing the run would do about it.
struct Note {
    text: String,
    hint: Hint,
}

impl Followed {
    fn journal_failed(last: Option<Snapshot>) -> Followed {
        Followed {
            last,
            finished: false,
            terminated: None,
            error: None,
            note: None,
            journal_failed: true,
            awaiting: None,
        }
    }
}

/// Does one push: [`PushRun::attempts`] gets a job, follows it and retries its failed hosts
/// until the push is decided; [`PushRun::finish`] journals the outcome and reports it.
pub(crate) async fn run<A: JobApi>(ctx: Arc<Ctx<A>>, task: Task) -> PushReport {
    let started = Instant::now();
    // Taken first: every way out of this task, early or not, gives the turn back.
    let turn = Turn {
        turns: &ctx.turns,
        intent: Some(task.ticket),
        answer: Some(task.ticket),
    };
    let Some(push) = ctx.plan.push(&task.name) else {
        let mut report = PushReport::idle(&task.name, task.stage, PushStatus::Failed);
        report.error = Some("the push is not in the plan".into());
        return report;
    };
    let mut push_run = PushRun::new(&ctx, &task, push, turn);
    let status = push_run.attempts().await;
    push_run.finish(status, started).await
}

/// One push task's state over its attempts.
struct PushRun<'a, A> {
    ctx: &'a Ctx<A>,
    task: &'a Task,
    push: &'a Push,
    /// The push's timeout in seconds (JOB's default when the plan sets none).
    timeout: u32,
    retries: u32,
    turn: Turn<'a>,
    report: PushReport,
    /// The attempt being made (counted over the whole run).
    attempt: u32,
    /// Jobs followed in this segment (an attached job counts): at most 1 + retries.
    jobs: u32,
    /// Per host, the latest result over the attempts of this segment and those it continues.
    hosts: BTreeMap<String, HostResult>,
    /// The batch being sent, for a push the plan cuts into batches (v2 `rolling`), and its
    /// target hosts (`cloud:ip`): success, failure and retries look at those hosts only.
    batch: Option<(Batch, std::collections::BTreeSet<String>)>,
    /// JOB's own rolling batches (a v3 push with `rolling`), followed across the attempts.
    job_batches: Option<crate::job_batches::JobBatches>,
    /// Per target (`host` of its result), the job that last reached it in this segment.
    delivered_by: BTreeMap<String, JobRef>,
}

/// What one attempt leaves to do.
enum Next {
    /// The push is decided.
    Done(PushStatus),
    /// Submit again, to these hosts.
    Retry(Start),
}

impl<'a, A: JobApi> PushRun<'a, A> {
    fn new(ctx: &'a Ctx<A>, task: &'a Task, push: &'a Push, turn: Turn<'a>) -> Self {
        PushRun {
            ctx,
            task,
            push,
            timeout: push
                .timeout
                .as_ref()
                .map_or(JOB_DEFAULT_TIMEOUT_SECS, |t| t.value),
            retries: u32::from(push.retries),
            turn,
            report: PushReport::idle(&task.name, task.stage, PushStatus::Failed),
            attempt: task.first_attempt,
            jobs: 0,
            hosts: task
                .known_hosts
                .iter()
                .map(|h| (h.key(), h.clone()))
                .collect(),
            batch: None,
            job_batches: crate::job_batches::JobBatches::for_push(&ctx.plan, push).map(|b| {
                b.journaled_before(&task.start, task.job_batches_done, &task.job_batches_before)
            }),
            delivered_by: BTreeMap::new(),
        }
    }

    /// Attempts until the push is decided: get a job (attach, or submit and start), follow
    /// it to its end, then succeed, fail, or retry the failed hosts.
    async fn attempts(&mut self) -> PushStatus {
        if matches!(self.task.start, Start::Verify(_)) {
            self.turn.release();
            return self.verify_delivery(PushStatus::Succeeded).await;
        }
        let status = self.transfer().await;
        self.verify_delivery(status).await
    }

    /// The transfer: past the gate, then in batches or as one job with its retries.
    async fn transfer(&mut self) -> PushStatus {
        if let Err(status) = self.pass_gate().await {
            return status;
        }
        if let Some(batches) = crate::batches::of(&self.ctx.plan, self.push) {
            return self.batched(batches).await;
        }
        self.attempts_from(self.task.start.clone()).await
    }

    /// [`PushRun::attempts`] from `start`: for the whole push, or for the current batch.
    async fn attempts_from(&mut self, mut start: Start) -> PushStatus {
        loop {
            // The deadline counts from submission (or attachment), so time spent creating and
            // starting the job counts against it too.
            let submitted_at = Instant::now();
            let (mut job, started_at) = match self.get_job(start).await {
                Ok(got) => got,
                Err(status) => return status,
            };
            self.report.job_instance_id = Some(job.job_instance_id);
            self.jobs += 1;
            let followed = follow(
                self.ctx,
                self.task,
                &mut job,
                self.timeout,
                submitted_at,
                started_at,
                Batches {
                    plan: self.current_batch(),
                    job: self.job_batches.as_mut(),
                },
            )
            .await;
            match self.conclude(&job, followed).await {
                Next::Done(status) => return status,
                Next::Retry(next) => start = next,
            }
        }
    }

    /// A job to follow, and when our START of it was accepted (a job still in status 1 long
    /// after is started again); or how the push ended without one.
    async fn get_job(&mut self, start: Start) -> Result<(JobRef, Option<Instant>), PushStatus> {
        let (mut job, again) = match start {
            Start::InJob(retry) => return Ok((self.send_in_job_retry(retry).await?, None)),
            Start::Attach(job) => {
                // Nothing is submitted: later pushes need not wait for this one.
                self.turn.release();
                self.ctx.emit(Event::PushReattached {
                    push: self.task.name.clone(),
                    stage: self.task.stage,
                    job_instance_id: job.job_instance_id,
                });
                if let Some(count_before) = self.task.pending_retry.filter(|_| self.jobs == 0) {
                    return Ok((self.resume_in_job_retry(job, count_before).await?, None));
                }
                (job, true)
            }
            other => (self.submit(&other).await?, false),
        };
        // Created unstarted and not known started: start it now. For a re-attached job the
        // process ended in between, or START failed; a second START is refused harmlessly.
        if !job.start_pending {
            return Ok((job, None));
        }
        if let Err(error) = start_job(self.ctx, self.task, &mut job, again).await {
            if is_job_lost(&error) {
                return Err(self.job_lost(&job, &error).await);
            }
            self.report.job_instance_id = Some(job.job_instance_id);
            self.report.error_code = error.code();
            self.report.error = Some(start_failed(&job, &error));
            self.report.hint = Some(Hint::ResumeStartsJob);
            return Err(PushStatus::Failed);
        }
        Ok((job, Some(Instant::now())))
    }

    /// Journals the intent and submits once, in this push's turn for a first submission.
    async fn submit(&mut self, start: &Start) -> Result<JobRef, PushStatus> {
        let ctx = self.ctx;
        let request = match start {
            Start::Hosts(h) if !h.is_empty() => {
                plan_graph::request_for_hosts(&ctx.plan, self.push, h)
            }
            Start::HostIds(ids) if !ids.is_empty() => {
                plan_graph::request_for_host_ids(&ctx.plan, self.push, ids)
            }
            _ => plan_graph::request_for(&ctx.plan, self.push),
        };
        let request = match self.current_batch() {
            Some(batch) => crate::batches::named(&request, batch),
            None => request,
        };
        let request = crate::run_tag::tagged(&request, &ctx.run_tag);
        let first = self.turn.answer;
        if let Some(ticket) = first {
            // At most `INTENTS_AHEAD` intents written ahead of their turn to send.
            ctx.turns
                .answers
                .wait(ticket.saturating_sub(INTENTS_AHEAD))
                .await;
            ctx.turns.intents.wait(ticket).await;
            // This push's first submission: a stage's pushes start together and wait their
            // turn, so what happened meanwhile decides whether it goes out. After a failure
            // (`--continue never`) or an interrupt nothing new starts.
            if stopping(ctx) {
                return Err(PushStatus::NotStarted);
            }
        }
        let intent =
            write_intent(ctx, self.task, self.attempt, &request, self.current_batch()).await;
        self.turn.release_intent();
        let intent = match intent {
            Ok(i) => i,
            Err(error) => {
                // Nothing was sent: without its intent on disk, it is not sent.
                self.report.error = Some(format!("not submitted: {}", journal_failed(ctx, &error)));
                return Err(PushStatus::JournalFailed);
            }
        };
        if let Some(ticket) = first {
            ctx.turns.answers.wait(ticket).await;
            if stopping(ctx) {
                // Written ahead of its turn, never sent: say so, so the journal does not
                // leave the push in doubt.
                let _ = ctx
                    .journal
                    .append(&Record::PushSubmitFailed {
                        push: self.task.name.clone(),
                        attempt: self.attempt,
                        code: None,
                        message: "not sent: the run was stopping".into(),
                        outcome_unknown: false,
                        not_sent: true,
                        at: now(),
                    })
                    .await;
                return Err(PushStatus::NotStarted);
            }
        }
        let bk_biz_id = ctx.plan.bk_biz_id.value;
        match send(
            ctx,
            self.task,
            self.attempt,
            &intent,
            bk_biz_id,
            &mut self.turn,
        )
        .await
        {
            Ok(job) => Ok(job),
            Err(SendError::Api(status, error)) => {
                self.report.error_code = error.code();
                self.report.error = Some(match (status, intent.two_phase) {
                    (PushStatus::OutcomeUnknown, true) => format!(
                        "{error}; the job was sent with start_task=false, so if JOB created it, it waits unstarted and nothing was transferred"
                    ),
                    _ => error.to_string(),
                });
                Err(status)
            }
            Err(SendError::Journal(error, job)) => {
                self.report.job_instance_id = Some(job.job_instance_id);
                self.report.error = Some(format!(
                    "JOB created instance {}, but {}; the journal shows the submission in doubt",
                    job.job_instance_id,
                    journal_failed(ctx, &error)
                ));
                Err(PushStatus::JournalFailed)
            }
        }
    }

    /// What a followed job means for the push: its hosts' results are journaled and merged,
    /// then the push succeeded, failed, timed out, or retries its failed hosts.
    async fn conclude(&mut self, job: &JobRef, followed: Followed) -> Next {
        if followed.journal_failed {
            self.report.error = Some(format!(
                "following JOB instance {} stopped: {}",
                job.job_instance_id,
                self.ctx.journal.write_error().unwrap_or_default()
            ));
            self.report.hint = Some(Hint::ResumeFollowsJob);
            return Next::Done(PushStatus::JournalFailed);
        }
        if let Some(point) = followed.awaiting {
            return Next::Done(self.awaits(job, *point, followed.last).await);
        }
        if let Some(error) = followed.error.as_ref().filter(|e| is_job_lost(e))
            && !followed.finished
        {
            return Next::Done(self.job_lost(job, error).await);
        }
        if let Some(error) = &followed.error {
            self.report.error_code = error.code();
            self.report.error = Some(format!(
                "following JOB instance {}: {error}",
                job.job_instance_id
            ));
        }
        let Some(snapshot) = followed.last.as_ref().filter(|_| followed.finished) else {
            return Next::Done(self.not_seen_finishing(job, followed));
        };
        self.record_attempt(job, snapshot).await;
        let failed = self.failed_hosts();
        if snapshot.status == RunStatus::Success && failed.is_empty() {
            return Next::Done(PushStatus::Succeeded);
        }
        if let Some(reason) = followed.terminated {
            self.report.error = Some(match reason {
                TerminateReason::Deadline => format!(
                    "still running {}s after its timeout of {}s: terminated",
                    self.ctx.poll.deadline_margin.as_secs(),
                    self.timeout
                ),
                TerminateReason::Interrupt => "terminated on a second interrupt".to_owned(),
            });
            return Next::Done(match reason {
                TerminateReason::Deadline => PushStatus::TimedOut,
                TerminateReason::Interrupt => PushStatus::Interrupted,
            });
        }
        if failed.is_empty() {
            self.report.error = Some(format!(
                "JOB reported the job as {} without a failed host",
                snapshot.status
            ));
        }
        self.retry_failed_hosts(job, snapshot.status)
    }

    /// A job not followed to its end: the journal keeps it in flight, so continuing the run
    /// attaches to it again.
    /// JOB does not know the job (`1244006`): it was purged, or the JOB (a sandbox) lost
    /// it. Following it again could only get the same answer, so the journal records it
    /// lost (the push is no longer in flight, and a resume submits it again) and the push
    /// fails.
    async fn job_lost(&mut self, job: &JobRef, error: &ApiError) -> PushStatus {
        let recorded = self
            .ctx
            .journal
            .append(&Record::PushJobLost {
                push: self.task.name.clone(),
                job_instance_id: job.job_instance_id,
                message: error.to_string(),
                at: now(),
            })
            .await;
        self.report.job_instance_id = Some(job.job_instance_id);
        self.report.error_code = error.code();
        if let Err(e) = recorded {
            self.report.error = Some(format!(
                "JOB no longer knows instance {} ({error}), but {}",
                job.job_instance_id,
                journal_failed(self.ctx, &e)
            ));
            return PushStatus::JournalFailed;
        }
        self.report.error = Some(format!(
            "JOB no longer knows instance {} ({error}): JOB purged it, or lost it (a sandbox whose state was lost), so nothing of it can run any more; the journal records it as lost",
            job.job_instance_id
        ));
        self.report.hint = Some(Hint::ResumeResubmitsLostJob);
        PushStatus::Failed
    }

    /// `gate = true`: before the push's first submission in the run the confirmer is asked
    /// (not again once a segment confirmed it, and not for a job already in JOB or a retry
    /// of failed hosts, which the gate let through before). No one confirmed: nothing is
    /// sent, and the push waits at its gate.
    async fn pass_gate(&mut self) -> Result<(), PushStatus> {
        let first = !matches!(self.task.start, Start::Attach(_)) && !self.task.start.is_retry();
        if self.push.release.gate.is_none() || self.task.gate_confirmed || !first {
            return Ok(());
        }
        if stopping(self.ctx) {
            return Err(PushStatus::NotStarted);
        }
        let point = crate::confirm::WaitPoint::Gate;
        match crate::job_batches::ask(self.ctx, self.task, None, point.clone()).await {
            crate::job_batches::Asked::GoOn | crate::job_batches::Asked::Refused(_) => Ok(()),
            crate::job_batches::Asked::Waits => {
                self.report.error = Some(point.describe());
                self.report.hint = Some(Hint::ResumeConfirmsPush);
                self.report.waiting = Some(point);
                Err(PushStatus::WaitingAtGate)
            }
            crate::job_batches::Asked::JournalFailed(error) => {
                self.report.error = Some(format!(
                    "not submitted: {}",
                    journal_failed(self.ctx, &error)
                ));
                Err(PushStatus::JournalFailed)
            }
        }
    }

    /// JOB waits after a rolling batch and no one confirmed: the job stays waiting in JOB
    /// (in flight in the journal, so a resume follows it and asks again). The report holds
    /// the hosts of the batches that ran.
    async fn awaits(
        &mut self,
        job: &JobRef,
        point: crate::confirm::WaitPoint,
        last: Option<Snapshot>,
    ) -> PushStatus {
        if let Some(mut snapshot) = last {
            // Every target counts, those of the batches still to run included.
            self.report.hosts_total = snapshot.hosts.len();
            snapshot.hosts.retain(|h| h.status.is_finished());
            for r in host_results(self.ctx, job, &snapshot).await {
                self.hosts.insert(r.key(), r);
            }
        }
        self.report.error = Some(point.describe());
        self.report.hint = Some(Hint::ResumeConfirmsPush);
        self.report.waiting = Some(point);
        PushStatus::WaitingForConfirmation
    }

    fn not_seen_finishing(&mut self, job: &JobRef, followed: Followed) -> PushStatus {
        if self.report.error.is_none()
            && let Some(note) = followed.note
        {
            self.report.error = Some(note.text);
            self.report.hint = Some(note.hint);
        }
        if self.report.error.is_none() {
            self.report.error = Some(format!(
                "JOB instance {} was not seen finishing",
                job.job_instance_id
            ));
            self.report.hint = Some(Hint::ResumeFollowsJob);
        }
        match followed.terminated {
            Some(TerminateReason::Deadline) => PushStatus::TimedOut,
            _ if self.ctx.interrupt.is_stopping() => PushStatus::Interrupted,
            _ => PushStatus::Failed,
        }
    }

    /// Per-host results with the logs of the failed hosts, journaled and merged into the
    /// push's hosts (a host's latest attempt wins).
    async fn record_attempt(&mut self, job: &JobRef, snapshot: &Snapshot) {
        let results = host_results(self.ctx, job, snapshot).await;
        // What JOB already did, not an action to come: queued without waiting; the next
        // line this push waits for (`push_finished`, a retry's intent) covers it.
        drop(self.ctx.journal.enqueue(&Record::PushAttemptFinished {
            push: self.task.name.clone(),
            attempt: self.attempt,
            job_instance_id: job.job_instance_id,
            job_status: snapshot.status,
            hosts: results.clone(),
            batch: self.current_batch(),
            at: now(),
        }));
        self.log_attempt(job, &results);
        for r in results {
            self.hosts.insert(r.key(), r);
        }
    }

    /// Retries the failed hosts, if the push allows it and the run is not stopping.
    /// `job_status` is how the job ended: JOB retries inside a job only from a failed or
    /// stopped step, so a job that ended a success with failed hosts (rolling mode
    /// "ignore-failure", its step "ignore error") has them retried in a new job.
    fn retry_failed_hosts(&mut self, job: &JobRef, job_status: RunStatus) -> Next {
        if self.jobs > self.retries || self.ctx.interrupt.is_stopping() {
            return Next::Done(PushStatus::Failed);
        }
        let failed = self.failed_hosts();
        let failed_names: Vec<String> = failed.iter().map(|h| h.host.clone()).collect();
        // v3: the failed hosts run again inside the same job, as JOB's UI retries them.
        let in_job = plan_bkjob::StepOperation::RetryFailIp
            .allowed_in(job_status)
            .then(|| self.retry_in_job(job, &failed_names))
            .flatten();
        let in_job_id = in_job.as_ref().map(|_| job.job_instance_id);
        let start = in_job
            .or_else(|| Start::retry(&self.failed_hosts()))
            .unwrap_or_else(|| self.whole());
        self.attempt += 1;
        self.ctx.emit(Event::PushRetrying {
            push: self.task.name.clone(),
            attempt: self.attempt,
            hosts: failed_names,
            in_job: in_job_id,
        });
        Next::Retry(start)
    }

    /// Journals the push's outcome and returns its report. A push that ran is reported only
    /// as far as the journal holds it: one whose last line could not be written is not
    /// reported succeeded (or failed) on the strength of memory.
    async fn finish(self, status: PushStatus, started: Instant) -> PushReport {
        let PushRun {
            ctx,
            task,
            mut turn,
            mut report,
            attempt,
            hosts,
            job_batches: self_job_batches,
            ..
        } = self;
        // Whatever happened, later pushes no longer wait for this one's turn.
        turn.release();
        if let Some(job_batches) = self_job_batches {
            report.batches.extend(job_batches.into_reports());
        }
        if !status.is_ok() && !status.is_waiting() {
            ctx.failure_seen
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        report.status = status;
        report.attempts = attempt - task.first_attempt + 1;
        if matches!(status, PushStatus::NotStarted | PushStatus::WaitingAtGate) {
            // Held back before its first submission: it did not run (nothing to time).
            report.attempts = 0;
        }
        report.record_hosts(hosts.into_values());
        report.duration = if report.attempts == 0 {
            Duration::ZERO
        } else {
            started.elapsed()
        };
        let finished = ctx
            .journal
            .append(&Record::PushFinished {
                push: task.name.clone(),
                status,
                at: now(),
            })
            .await;
        if let Err(error) = finished
            && !matches!(status, PushStatus::NotStarted | PushStatus::JournalFailed)
        {
            let outcome = status.label();
            report.status = PushStatus::JournalFailed;
            report.error = Some(format!(
                "{outcome} in JOB, but {}",
                journal_failed(ctx, &error)
            ));
            report.hint = None;
        }
        report
    }
}

/// A push the plan cuts into batches (v2 `rolling`): one job per batch, in order.
impl<A: JobApi> PushRun<'_, A> {
    /// The batch being sent, if the push is batched.
    fn current_batch(&self) -> Option<Batch> {
        self.batch.as_ref().map(|(batch, _)| *batch)
    }

    /// The failed hosts the current attempt answers for: the push's, or the current batch's.
    fn failed_hosts(&self) -> Vec<&HostResult> {
        self.hosts
            .values()
            .filter(|h| !h.is_success())
            .filter(|h| {
                self.batch
                    .as_ref()
                    .is_none_or(|(_, hosts)| hosts.contains(&h.host))
            })
            .collect()
    }

    /// A submission to every target the current attempt answers for.
    fn whole(&self) -> Start {
        match &self.batch {
            Some((_, hosts)) => Start::Hosts(hosts.iter().filter_map(|h| parse_host(h)).collect()),
            None => Start::Fresh,
        }
    }

    /// Sends the batches in order, each with its own retries, and stops once the failures
    /// pass `max_failed` (or, without it, as the rolling mode says). On a resumed run a
    /// re-attached job's batch is followed first; a batch whose hosts all succeeded before
    /// is not sent again, and one with failed hosts is sent again as a failed push is (its
    /// failed hosts when the push has `retries`, else the whole batch).
    async fn batched(&mut self, batches: Vec<Vec<HostAddr>>) -> PushStatus {
        let count = u32::try_from(batches.len()).unwrap_or(u32::MAX);
        let total: usize = batches.iter().map(Vec::len).sum();
        // The report counts every target, those of batches never sent included.
        self.report.hosts_total = total;
        let mut order: Vec<u32> = (1..=count).collect();
        let attach = match &self.task.start {
            Start::Attach(_) => self.task.attach_batch.filter(|b| (1..=count).contains(b)),
            _ => None,
        };
        if let Some(first) = attach {
            order.retain(|b| *b != first);
            order.insert(0, first);
        }
        let mut reports: BTreeMap<u32, BatchReport> = BTreeMap::new();
        let mut outcome = PushStatus::Succeeded;
        let mut sent_before = false;
        for (position, index) in order.iter().copied().enumerate() {
            let batch = Batch { index, count };
            let hosts = &batches[index as usize - 1];
            let keys: std::collections::BTreeSet<String> =
                hosts.iter().map(ToString::to_string).collect();
            let start = if attach == Some(index) {
                self.task.start.clone()
            } else if keys.iter().all(|k| self.host_succeeded(k)) {
                reports.insert(
                    index,
                    self.batch_report(batch, &keys, PushStatus::AlreadySucceeded),
                );
                continue;
            } else {
                self.batch = Some((batch, keys.clone()));
                let failed = self.failed_hosts();
                match Start::retry(&failed) {
                    Some(retry) if self.retries > 0 => retry,
                    _ => Start::Hosts(hosts.clone()),
                }
            };
            // A job already in JOB is followed whatever happens; a new batch is not sent
            // once the run stops (before the segment's first submission, its turn decides).
            let stopping =
                self.ctx.interrupt.is_stopping() || self.ctx.journal.broken().is_cancelled();
            if attach != Some(index) && sent_before && stopping {
                self.report.error = Some(format!(
                    "the run stopped before {batch} was sent{}",
                    crate::batches::not_submitted(batch)
                ));
                outcome = PushStatus::Interrupted;
                break;
            }
            if attach != Some(index)
                && let Err(status) = self.confirm_batch(batch, &keys).await
            {
                outcome = status;
                break;
            }
            if sent_before {
                self.attempt += 1;
            }
            sent_before = true;
            self.batch = Some((batch, keys.clone()));
            self.jobs = 0;
            let status = self.attempts_from(start).await;
            let mut report = self.batch_report(batch, &keys, status);
            report.job_instance_id = self.report.job_instance_id;
            reports.insert(index, report);
            match status {
                PushStatus::Succeeded => {}
                PushStatus::Failed => {
                    outcome = PushStatus::Failed;
                    let failed = self.hosts.values().filter(|h| !h.is_success()).count();
                    let batch_failed = self.failed_hosts().len();
                    let rolling = self.push.release.rolling.as_ref();
                    let later = order[position + 1..].iter().any(|b| {
                        !batches[*b as usize - 1]
                            .iter()
                            .all(|h| self.host_succeeded(&h.to_string()))
                    });
                    if let Some(reason) = rolling.filter(|_| later).and_then(|r| {
                        crate::batches::stop_reason(r, failed, total, batch, batch_failed)
                    }) {
                        self.report.error =
                            Some(format!("{reason}{}", crate::batches::not_submitted(batch)));
                        break;
                    }
                }
                other => {
                    outcome = other;
                    break;
                }
            }
        }
        self.batch = None;
        for index in 1..=count {
            let batch = Batch { index, count };
            let keys = batches[index as usize - 1]
                .iter()
                .map(ToString::to_string)
                .collect();
            let report = reports
                .remove(&index)
                .unwrap_or_else(|| self.batch_report(batch, &keys, PushStatus::NotStarted));
            self.report.batches.push(report);
        }
        if outcome == PushStatus::Failed && self.report.error.is_none() {
            let failed = self.hosts.values().filter(|h| !h.is_success()).count();
            self.report.error = Some(format!(
                "{failed} of {total} target hosts failed; every batch was sent"
            ));
        }
        outcome
    }

    /// Mode `"manual"`: a person confirms before each batch after the first is submitted,
    /// as JOB's manual rolling asks between batches. A batch with results already (a failed
    /// one sent again on a resume) is not asked about: resuming was that decision. No one
    /// confirmed: the push waits, nothing of the batch sent, and a resume asks again.
    async fn confirm_batch(
        &mut self,
        batch: Batch,
        hosts: &std::collections::BTreeSet<String>,
    ) -> Result<(), PushStatus> {
        let manual = self
            .push
            .release
            .rolling
            .as_ref()
            .is_some_and(|r| r.mode == plan_parser::RollingMode::Manual);
        let sent_before = self.hosts.values().any(|h| hosts.contains(&h.host));
        if !manual || batch.index == 1 || sent_before {
            return Ok(());
        }
        let point = crate::confirm::WaitPoint::NextBatch {
            batch: batch.index,
            batches: batch.count,
        };
        match crate::job_batches::ask(self.ctx, self.task, None, point.clone()).await {
            crate::job_batches::Asked::GoOn | crate::job_batches::Asked::Refused(_) => Ok(()),
            crate::job_batches::Asked::Waits => {
                self.report.error = Some(point.describe());
                self.report.waiting = Some(point);
                Err(PushStatus::WaitingForConfirmation)
            }
            crate::job_batches::Asked::JournalFailed(error) => {
                self.report.error = Some(format!(
                    "{batch} not submitted: {}",
                    journal_failed(self.ctx, &error)
                ));
                Err(PushStatus::JournalFailed)
            }
        }
    }

    fn host_succeeded(&self, host: &str) -> bool {
        self.hosts
            .values()
            .any(|h| h.host == host && h.is_success())
    }

    /// A batch's hosts as far as their results are known.
    fn batch_report(
        &self,
        batch: Batch,
        keys: &std::collections::BTreeSet<String>,
        status: PushStatus,
    ) -> BatchReport {
        let results: Vec<&HostResult> = self
            .hosts
            .values()
            .filter(|h| keys.contains(&h.host))
            .collect();
        BatchReport {
            index: batch.index,
            count: batch.count,
            status,
            job_instance_id: None,
            hosts_total: keys.len(),
            hosts_ok: results.iter().filter(|h| h.is_success()).count(),
            failed_hosts: results
                .iter()
                .filter(|h| !h.is_success())
                .map(|h| h.host.clone())
                .collect(),
        }
    }
}

/// The message of a push stopped by a failed journal write: the run's first failure.
fn journal_failed<A>(ctx: &Ctx<A>, error: &JournalError) -> String {
    ctx.journal
        .write_error()
        .unwrap_or_else(|| format!("journal write failed: {error}"))
}

/// After a failure (`--continue never`), an interrupt or a failed journal write, nothing new
/// is submitted.
fn stopping<A>(ctx: &Ctx<A>) -> bool {
    let failed_before =
        ctx.stop_new_on_failure && ctx.failure_seen.load(std::sync::atomic::Ordering::SeqCst);
    failed_before || ctx.interrupt.is_stopping() || ctx.journal.broken().is_cancelled()
}

/// JOB's answer for a job it does not know (`1244006`).
fn is_job_lost(error: &ApiError) -> bool {
    error.code() == Some(code::TASK_INSTANCE_NOT_EXIST)
}

/// A submission whose intent is on disk.
struct Intent {
    /// The body as it will be sent.
    request: JobRequest,
    two_phase: bool,
    targets: usize,
    batch: Option<Batch>,
}

/// Journals the intent (durable before anything is sent). The body is `plan show`'s (v3:
/// start_task=false), or its one-phase form for a JOB that ignores start_task; the journal
/// hashes exactly what goes out.
async fn write_intent<A: JobApi>(
    ctx: &Ctx<A>,
    task: &Task,
    attempt: u32,
    request: &JobRequest,
    batch: Option<Batch>,
) -> Result<Intent, JournalError> {
    let two_phase = ctx.api.two_phase(request);
    let request = if two_phase {
        request.clone()
    } else {
        request.one_phase()
    };
    let body = serde_json::to_vec(&request).unwrap_or_default();
    let targets = static_targets(&request);
    let count = targets.len();
    let intent = Record::PushSubmitting {
        push: task.name.clone(),
        attempt,
        request_sha256: sha256_hex(&body),
        task_name: request.task_name().map(str::to_owned),
        targets,
        two_phase: request.creates_unstarted(),
        batch,
        at: now(),
    };
    // Nothing was sent: refusing to act without a record keeps the journal truthful.
    ctx.journal.append(&intent).await?;
    Ok(Intent {
        request,
        two_phase,
        targets: count,
        batch,
    })
}

/// Why a submission did not give a job to follow.
enum SendError {
    /// JOB refused it, or its answer was lost or unusable (the status says which).
    Api(PushStatus, ApiError),
    /// JOB created this job, but its id could not be journaled.
    Journal(JournalError, JobRef),
}

/// Submits once and journals the answer. The turn is given back as soon as the answer is
/// in (after `failure_seen` is set for a refusal, so the next push sees it), before the
/// answer's line is written: the next push's call need not wait for this fsync.
async fn send<A: JobApi>(
    ctx: &Ctx<A>,
    task: &Task,
    attempt: u32,
    intent: &Intent,
    bk_biz_id: i64,
    turn: &mut Turn<'_>,
) -> Result<JobRef, SendError> {
    ctx.emit(Event::PushSubmitting {
        push: task.name.clone(),
        stage: task.stage,
        attempt,
        hosts: intent.targets,
        batch: intent.batch,
    });
    let answer = ctx
        .api
        .submit(&intent.request, bk_biz_id)
        .await
        .and_then(|job| valid_job(job, &intent.request));
    if answer.is_err() {
        ctx.failure_seen
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    if let Ok(job) = &answer {
        ctx.created_jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(job.job_instance_id);
    }
    turn.release();
    match answer {
        Ok(job) => {
            let recorded = ctx
                .journal
                .append(&Record::PushSubmitted {
                    push: task.name.clone(),
                    attempt,
                    job,
                    batch: intent.batch,
                    at: now(),
                })
                .await;
            if let Err(error) = recorded {
                return Err(SendError::Journal(error, job));
            }
            ctx.emit(Event::PushSubmitted {
                push: task.name.clone(),
                stage: task.stage,
                attempt,
                job_instance_id: job.job_instance_id,
            });
            Ok(job)
        }
        Err(error) => {
            let unknown = error.submission_outcome_unknown();
            let _ = ctx
                .journal
                .append(&Record::PushSubmitFailed {
                    push: task.name.clone(),
                    attempt,
                    code: error.code(),
                    message: error.to_string(),
                    outcome_unknown: unknown,
                    not_sent: false,
                    at: now(),
                })
                .await;
            Err(SendError::Api(
                if unknown {
                    PushStatus::OutcomeUnknown
                } else {
                    PushStatus::Rejected
                },
                error,
            ))
        }
    }
}

/// JOB's job ids are positive: an answer with another one is not an answer to follow (and
/// not a refusal either), so the submission's outcome is unknown.
fn valid_job(job: JobRef, request: &JobRequest) -> Result<JobRef, ApiError> {
    if job.job_instance_id > 0 && job.step_instance_id.is_none_or(|step| step > 0) {
        return Ok(job);
    }
    Err(ApiError::Decode {
        api: match request {
            JobRequest::V2(_) => "fast_push_file",
            JobRequest::V3(_) => "fast_transfer_file",
        }
        .into(),
        message: format!(
            "the answer names job instance {} (step {}), which JOB never hands out",
            job.job_instance_id,
            job.step_instance_id
                .map_or_else(|| "none".to_owned(), |s| s.to_string())
        ),
    })
}

/// Starts a job created with `start_task=false` (its id is journaled already) and journals
/// that it runs. Falls back to one phase, with a warning, when JOB shows it ignores
/// `start_task`.
async fn start_job<A: JobApi>(
    ctx: &Ctx<A>,
    task: &Task,
    job: &mut JobRef,
    again: bool,
) -> Result<(), ApiError> {
    let outcome = ctx.api.start(job, again).await?;
    job.start_pending = false;
    let by_server = outcome == StartOutcome::StartedByServer;
    // Queued, not waited for: what comes next only reads (polls). Lost in a crash, the job
    // stays `start_pending` and `--resume` sends START again, which JOB answers 1241015.
    drop(ctx.journal.enqueue(&Record::PushStarted {
        push: task.name.clone(),
        job_instance_id: job.job_instance_id,
        by_server,
        at: now(),
    }));
    if by_server {
        ctx.emit(Event::warning(format!(
            "JOB started instance {} of push `{}` before it was asked to: this JOB ignores start_task=false (it predates 3.12), so the rest of the run submits in one phase; a lost submission answer will need checking by hand, as with v2",
            job.job_instance_id, task.name
        )));
    }
    Ok(())
}

fn start_failed(job: &JobRef, error: &ApiError) -> String {
    format!(
        "JOB instance {} was created (start_task=false) but could not be started: {error}; it waits unstarted",
        job.job_instance_id
    )
}

/// Polls until JOB says finished, paced by [`Pacer`]: on a backoff until hosts transfer,
/// then until the end JOB's file logs let it estimate (see [`PollPolicy`]). Terminates at
/// the deadline (`timeout` + margin from `submitted_at`) or on a second interrupt. A job we
/// started (`started_at`) that still shows status 1 `start_grace` later is started once
/// more, and given up one more grace later. Every way out is bounded: past the deadline, a
/// job that cannot be terminated (JOB refuses to terminate a job in status 1) or cannot be
/// reached is given up `after_terminate` later.
async fn follow<A: JobApi>(
    ctx: &Ctx<A>,
    task: &Task,
    job: &mut JobRef,
    timeout: u32,
    submitted_at: Instant,
    started_at: Option<Instant>,
    batches: Batches<'_>,
) -> Followed {
    let mut follower = Follower::new(ctx, task, job, timeout, submitted_at, started_at);
    follower.batch = batches.plan;
    follower.job_batches = batches.job;
    let mut wait = until_deadline(
        follower.pacer.first_wait(),
        Instant::now(),
        follower.deadline,
        None,
    );
    // The second interrupt wakes the poll loop once; after that, terminate is (re)tried on
    // the normal ticks (a pending job refuses it with 1241003 until it starts).
    let mut woken_by_terminate = false;
    let hard = ctx.interrupt.hard().clone();
    let journal_broken = ctx.journal.broken().clone();
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = hard.cancelled(), if !woken_by_terminate => woken_by_terminate = true,
            // Nothing this loop learns could be recorded any more: the run stops now.
            () = journal_broken.cancelled() => return Followed::journal_failed(follower.last),
        }
        let now_i = Instant::now();
        if follower.terminate_if_due(now_i).await.is_err() {
            return Followed::journal_failed(follower.last);
        }
        // What the logs said at this poll, when they were read.
        let estimate = match follower.poll(now_i).await {
            Polled::Running(estimate) => estimate,
            Polled::Ended(followed) => return followed,
        };
        let gave_up = follower.gave_up(now_i);
        // The estimate counts from when the log was read.
        let after = Instant::now();
        wait = until_deadline(
            follower.pacer.after_poll(after, estimate),
            after,
            follower.deadline,
            follower.terminate_tried,
        );
        if gave_up {
            return follower.give_up();
        }
    }
}

/// The batches a followed job belongs to: the plan's batch (v2 `rolling`), or JOB's own
/// rolling batches of the job (v3 `rolling`).
struct Batches<'b> {
    plan: Option<Batch>,
    job: Option<&'b mut crate::job_batches::JobBatches>,
}

/// What one status poll left.
enum Polled {
    /// Not finished; the logs' estimate when they were read.
    Running(Option<Estimate>),
    /// Following ended.
    Ended(Followed),
}

/// What following one job knows between two polls.
struct Follower<'a, A> {
    ctx: &'a Ctx<A>,
    task: &'a Task,
    job: &'a mut JobRef,
    poll: PollPolicy,
    deadline: Instant,
    pacer: Pacer,
    /// The terminate JOB took (or that failed otherwise than "not running"), and when.
    terminate_sent: Option<(TerminateReason, Instant)>,
    /// The first terminate attempt, accepted or not: the give-up clock starts there.
    terminate_tried: Option<Instant>,
    terminate_reason: Option<TerminateReason>,
    /// Status 1 after our START: since when we wait for it to leave 1.
    pending_since: Option<Instant>,
    /// START was already sent again.
    restarted: bool,
    last: Option<Snapshot>,
    last_error: Option<ApiError>,
    /// The last progress shown (job status, hosts done, hosts).
    shown: Option<(RunStatus, usize, usize, Option<u64>)>,
    /// Bytes a second a target receives, as the last log read said (shown with the progress).
    throughput: Option<u64>,
    /// The batch the job is, when the plan cuts the push into batches.
    batch: Option<Batch>,
    /// JOB's own rolling batches of the job (a v3 push with `rolling`).
    job_batches: Option<&'a mut crate::job_batches::JobBatches>,
    /// `timeout` + margin: the deadline's distance from the start of a job or of a batch.
    allowance: Duration,
}

impl<'a, A: JobApi> Follower<'a, A> {
    fn new(
        ctx: &'a Ctx<A>,
        task: &'a Task,
        job: &'a mut JobRef,
        timeout: u32,
        submitted_at: Instant,
        started_at: Option<Instant>,
    ) -> Self {
        let poll = ctx.poll;
        Follower {
            ctx,
            task,
            job,
            poll,
            deadline: submitted_at + Duration::from_secs(u64::from(timeout)) + poll.deadline_margin,
            pacer: Pacer::new(poll),
            terminate_sent: None,
            terminate_tried: None,
            terminate_reason: None,
            pending_since: started_at,
            restarted: false,
            last: None,
            last_error: None,
            shown: None,
            throughput: None,
            batch: None,
            job_batches: None,
            allowance: Duration::from_secs(u64::from(timeout)) + poll.deadline_margin,
        }
    }

    /// Past the deadline, or on a second interrupt, sends terminate once JOB may take it
    /// (journaled first). Fails only when the journal cannot be written.
    async fn terminate_if_due(&mut self, now_i: Instant) -> Result<(), JournalError> {
        let reason = if self.ctx.interrupt.is_terminating() {
            Some(TerminateReason::Interrupt)
        } else if now_i >= self.deadline {
            Some(TerminateReason::Deadline)
        } else {
            None
        };
        let already_finished = self.last.as_ref().is_some_and(|s| s.finished);
        let (None, Some(reason), false) = (self.terminate_sent, reason, already_finished) else {
            return Ok(());
        };
        self.terminate_tried.get_or_insert(now_i);
        self.terminate_reason.get_or_insert(reason);
        self.ctx
            .journal
            .append(&Record::PushTerminateRequested {
                push: self.task.name.clone(),
                job_instance_id: self.job.job_instance_id,
                reason,
                at: now(),
            })
            .await?;
        self.ctx.emit(Event::PushTerminating {
            push: self.task.name.clone(),
            job_instance_id: self.job.job_instance_id,
            reason,
        });
        match self.ctx.api.terminate(self.job).await {
            Ok(()) => {
                self.terminate_sent = Some((reason, now_i));
                self.pacer.reset();
            }
            // 1241003: not running (still pending, or finished meanwhile); the next poll
            // tells which, and a pending job is asked again.
            Err(e) if e.code() == Some(code::UNSUPPORTED_OPERATION) => {}
            Err(e) => {
                tracing::warn!(push = %self.task.name, error = %e, "terminate failed");
                self.terminate_sent = Some((reason, now_i));
            }
        }
        Ok(())
    }

    /// One status poll. Only JOB's verdict ends the following: anything else (a 5xx, a
    /// page that is not JOB's JSON, a timeout) says nothing about the job, which may well
    /// be finishing.
    async fn poll(&mut self, now_i: Instant) -> Polled {
        match self.ctx.api.status(self.job).await {
            Ok(snapshot) => self.observe(snapshot, now_i).await,
            Err(e) if !is_verdict(&e) => {
                tracing::debug!(push = %self.task.name, error = %e, "poll failed; will poll again");
                self.last_error = Some(e);
                Polled::Running(None)
            }
            Err(e) => Polled::Ended(self.end(false, Some(e), None)),
        }
    }

    /// A status JOB answered: shown when it changed, an estimate read while hosts transfer,
    /// the end when JOB says finished, START again for a job stuck in status 1.
    async fn observe(&mut self, snapshot: Snapshot, now_i: Instant) -> Polled {
        self.last_error = None;
        if self.job.step_instance_id.is_none() {
            self.job.step_instance_id = snapshot.step_instance_id;
        }
        if self.job_batches.is_some() {
            match self.follow_batches(&snapshot, now_i).await {
                Ok(true) => {
                    self.last = Some(snapshot);
                    return Polled::Running(None);
                }
                Ok(false) => {}
                Err(followed) => return Polled::Ended(*followed),
            }
        }
        self.show_progress(&snapshot);
        let finished = snapshot.finished;
        let pending = !finished && snapshot.status == RunStatus::Blank;
        let estimate = if finished {
            None
        } else {
            self.estimate(&snapshot, now_i).await
        };
        // A log read may have brought a throughput to show.
        self.show_progress(&snapshot);
        self.last = Some(snapshot);
        if finished {
            return Polled::Ended(self.end(true, None, None));
        }
        match self.start_again_if_stuck(pending, now_i).await {
            Some(followed) => Polled::Ended(followed),
            None => Polled::Running(estimate),
        }
    }

    /// JOB's rolling batches: records those that finished (each new batch has the job's
    /// whole timeout, as in JOB), shows the batch under way, and at a batch waiting for a
    /// person asks the confirmer. `Ok(true)`: confirmed, JOB goes on (poll again soon);
    /// `Err`: following ends (no one confirmed, JOB refused, or the journal failed).
    async fn follow_batches(
        &mut self,
        snapshot: &Snapshot,
        now_i: Instant,
    ) -> Result<bool, Box<Followed>> {
        let Some(batches) = self.job_batches.as_deref_mut() else {
            return Ok(false);
        };
        if batches
            .record(self.ctx, self.task, self.job, snapshot)
            .await
        {
            self.deadline = now_i + self.allowance;
        }
        self.batch = batches.position(snapshot);
        let Some(point) = batches.waiting(self.job, snapshot) else {
            return Ok(false);
        };
        self.show_progress(snapshot);
        let asked = crate::job_batches::ask(self.ctx, self.task, Some(self.job), point.clone());
        match asked.await {
            crate::job_batches::Asked::GoOn => {
                if let Some(batches) = self.job_batches.as_deref_mut() {
                    batches.reopen(&point);
                }
                // Asking may have taken long: the next batch has its whole timeout.
                self.deadline = Instant::now() + self.allowance;
                self.pacer.reset();
                Ok(true)
            }
            crate::job_batches::Asked::Waits => {
                self.last = Some(snapshot.clone());
                let mut followed = self.end(false, None, None);
                followed.awaiting = Some(Box::new(point));
                Err(Box::new(followed))
            }
            crate::job_batches::Asked::Refused(error) => {
                self.last = Some(snapshot.clone());
                Err(Box::new(self.end(false, Some(error), None)))
            }
            crate::job_batches::Asked::JournalFailed(_) => {
                Err(Box::new(Followed::journal_failed(Some(snapshot.clone()))))
            }
        }
    }

    /// A `push_progress` event when the job status or the hosts done changed.
    fn show_progress(&mut self, snapshot: &Snapshot) {
        let done = snapshot
            .hosts
            .iter()
            .filter(|h| h.status.is_finished())
            .count();
        // A finished job moves nothing: its last throughput is not shown as current.
        let throughput = self.throughput.filter(|_| !snapshot.finished);
        let key = (snapshot.status, done, snapshot.hosts.len(), throughput);
        if self.shown == Some(key) {
            return;
        }
        self.shown = Some(key);
        self.ctx.emit(Event::PushProgress {
            push: self.task.name.clone(),
            stage: self.task.stage,
            job_instance_id: self.job.job_instance_id,
            job_status: key.0,
            hosts_done: done,
            hosts_total: key.2,
            batch: self.batch,
            waiting: self
                .job_batches
                .as_deref()
                .is_some_and(|b| b.waiting(self.job, snapshot).is_some()),
            bytes_per_second: throughput,
        });
    }

    /// Hosts transferring and no terminate under way: what the logs say about the end
    /// decides the next wait (read only when the last estimate has passed).
    async fn estimate(&mut self, snapshot: &Snapshot, now_i: Instant) -> Option<Estimate> {
        let transferring: Vec<HostState> = snapshot
            .hosts
            .iter()
            .filter(|h| !h.status.is_finished())
            .cloned()
            .collect();
        let wanted = self.terminate_tried.is_none()
            && transferring.iter().any(|h| h.status == HostStatus::Running)
            && self.pacer.wants_estimate(now_i);
        if !wanted {
            return None;
        }
        match self.ctx.api.estimate(self.job, &transferring).await {
            Ok(e) => {
                if let Some(bytes) = e.and_then(|e| e.bytes_per_second) {
                    self.throughput = Some(bytes);
                }
                e
            }
            // A refusal (no permission for the log API, an old JOB without it) will not
            // change: this job is followed on the backoff alone.
            Err(e) if !e.is_retryable() => {
                tracing::debug!(push = %self.task.name, error = %e, "progress log refused; polling on the backoff");
                self.pacer.without_estimates();
                None
            }
            Err(e) => {
                tracing::debug!(push = %self.task.name, error = %e, "progress log unavailable; polling on the backoff");
                None
            }
        }
    }

    /// A job we started that is still in status 1 `start_grace` later gets START again;
    /// one more grace in status 1 and following ends (the job stays in flight).
    async fn start_again_if_stuck(&mut self, pending: bool, now_i: Instant) -> Option<Followed> {
        if !pending {
            self.pending_since = None;
            return None;
        }
        let since = self.pending_since?;
        if self.terminate_tried.is_some() || now_i.duration_since(since) < self.poll.start_grace {
            return None;
        }
        if self.restarted {
            let note = Note {
                text: format!(
                    "JOB instance {} stayed in status {} (not started) {}s after START was accepted, twice: it waits unstarted in JOB",
                    self.job.job_instance_id,
                    RunStatus::Blank.code(),
                    self.poll.start_grace.as_secs()
                ),
                hint: Hint::CheckThenResumeFollowsJob,
            };
            return Some(self.end(false, None, Some(note)));
        }
        self.restarted = true;
        self.pending_since = Some(now_i);
        self.ctx.emit(Event::warning(format!(
            "JOB instance {} of push `{}` is still in status {} (not started) {}s after JOB accepted its START: sending START again",
            self.job.job_instance_id,
            self.task.name,
            RunStatus::Blank.code(),
            self.poll.start_grace.as_secs()
        )));
        // A job that left status 1 meanwhile refuses with 1241015, which `again` reads as
        // started; any other failure is seen on the next polls.
        if let Err(e) = self.ctx.api.start(self.job, true).await {
            tracing::warn!(push = %self.task.name, error = %e, "START sent again failed");
        }
        self.pacer.reset();
        None
    }

    /// Once terminating, the wait is bounded whether or not JOB took the terminate (it
    /// refuses one for a job in status 1, so "retry on the next tick" alone could last
    /// forever); JOB unreachable well past the deadline is given up too.
    fn gave_up(&self, now_i: Instant) -> bool {
        match self.terminate_tried {
            Some(at) => now_i.duration_since(at) > self.poll.after_terminate,
            None => self.last_error.is_some() && now_i > self.deadline + self.poll.after_terminate,
        }
    }

    /// Following ends without JOB saying finished.
    fn give_up(mut self) -> Followed {
        let refused_pending = self.terminate_sent.is_none()
            && self
                .last
                .as_ref()
                .is_some_and(|s| s.status == RunStatus::Blank);
        let note = refused_pending.then(|| Note {
            text: format!(
                "JOB instance {} was still in status {} (not started) at its deadline and JOB refused to terminate it",
                self.job.job_instance_id,
                RunStatus::Blank.code()
            ),
            hint: Hint::ResumeFollowsJob,
        });
        let terminated = self.terminate_sent.map(|t| t.0).or(self.terminate_reason);
        let error = self.last_error.take();
        Followed {
            last: self.last,
            finished: false,
            terminated,
            error,
            note,
            journal_failed: false,
            awaiting: None,
        }
    }

    /// Following ends here (finished, JOB's verdict, or a job stuck unstarted).
    fn end(&mut self, finished: bool, error: Option<ApiError>, note: Option<Note>) -> Followed {
        Followed {
            last: self.last.take(),
            finished,
            terminated: self.terminate_sent.map(|t| t.0),
            error,
            note,
            journal_failed: false,
            awaiting: None,
        }
    }
}

/// A poll error that is JOB's (or its front end's) answer about this job or this caller, which
/// asking again cannot change: an error code in JOB's or ESB's envelope (`1244006` no such
/// job, a permission denied), or the gateway's coded 4xx (credentials, grants). Everything
/// else is not a verdict and is asked again until the deadline: a transport failure, a
/// timeout, any 5xx, a 4xx without a code (a proxy's page), an answer that is not JOB's
/// JSON, and the codes that say "try again" (`1240001`, `1240002`, `1306201`, rate limits,
/// quotas).
fn is_verdict(error: &ApiError) -> bool {
    let lasting = !matches!(
        error.class(),
        plan_bkjob::ErrorClass::Retryable
            | plan_bkjob::ErrorClass::Internal
            | plan_bkjob::ErrorClass::Capacity
    );
    match error {
        ApiError::Api { .. } => lasting,
        ApiError::Http { status, code, .. } => {
            code.is_some() && (400..500).contains(status) && *status != 429 && lasting
        }
        _ => false,
    }
}

/// A wait clipped at the deadline while no terminate was tried: a job still running then is
/// terminated at its deadline, not up to one backoff interval (`max`) later.
fn until_deadline(
    wait: Duration,
    now: Instant,
    deadline: Instant,
    terminate_tried: Option<Instant>,
) -> Duration {
    match terminate_tried {
        Some(_) => wait,
        None => wait.min(deadline.saturating_duration_since(now)),
    }
}

async fn host_results<A: JobApi>(
    ctx: &Ctx<A>,
    job: &JobRef,
    snapshot: &Snapshot,
) -> Vec<HostResult> {
    let failed: Vec<HostState> = snapshot
        .hosts
        .iter()
        .filter(|h| !h.status.is_success())
        .cloned()
        .collect();
    let logs = if failed.is_empty() {
        BTreeMap::new()
    } else {
        match ctx.api.host_logs(job, &failed).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the logs of failed hosts");
                BTreeMap::new()
            }
        }
    };
    snapshot
        .hosts
        .iter()
        .map(|h| {
            let key = h.key();
            let log = logs.get(&key);
            HostResult {
                status: h.status,
                label: h.status.label().to_owned(),
                error_code: h.error_code.or_else(|| log.and_then(|l| l.error_code)),
                log_excerpt: if h.status.is_success() {
                    None
                } else {
                    log.map(|l| excerpt(&l.content)).filter(|s| !s.is_empty())
                },
                host: h.address(),
                host_id: h.bk_host_id,
            }
        })
        .collect()
}

/// The last few lines of a log, at most ~800 characters.
pub(crate) fn excerpt(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = &lines[lines.len().saturating_sub(5)..];
    let text = tail.join("\n");
    let count = text.chars().count();
    if count > 800 {
        let skip = count - 800;
        format!("...{}", text.chars().skip(skip).collect::<String>())
    } else {
        text
    }
}

fn static_targets(request: &JobRequest) -> Vec<String> {
    let list = match request {
        JobRequest::V2(r) => r
            .target_server
            .as_ref()
            .map(|s| s.ip_list.clone())
            .unwrap_or_default(),
        JobRequest::V3(r) => r.target_server.ip_list.clone(),
    };
    list.iter().map(ToString::to_string).collect()
}

/// `cloud:ip` / `cloud:[v6]` back to an address.
pub(crate) fn parse_host(text: &str) -> Option<HostAddr> {
    let (cloud, ip) = text.split_once(':')?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    Some(HostAddr {
        cloud_id: cloud.parse().ok()?,
        ip: ip.parse::<IpAddr>().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_the_end() {
        let log = (1..=20)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(excerpt(&log), "line 16\nline 17\nline 18\nline 19\nline 20");
        let long = "x".repeat(2000);
        assert_eq!(excerpt(&long).chars().count(), 803);
    }

    #[test]
    fn hosts_parse_back() {
        assert_eq!(
            parse_host("0:10.0.0.1").map(|h| h.to_string()),
            Some("0:10.0.0.1".into())
        );
        assert_eq!(
            parse_host("2:[::1]").map(|h| h.to_string()),
            Some("2:[::1]".into())
        );
        assert!(parse_host("nonsense").is_none());
    }
}
