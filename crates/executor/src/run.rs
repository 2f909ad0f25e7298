//! The coordinator: decides what starts when; the push tasks do the work.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use plan_graph::PlanGraph;
use plan_parser::Plan;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::api::JobApi;
use crate::interrupt::Interrupt;
use crate::journal::{
    JOURNAL_FORMAT_VERSION, Journal, JournalError, Record, RunHistory, RunOutcome, latest_run,
    new_run_id, now, sha256_hex,
};
use crate::lock::{LockError, PlanLock, current_user, host_name};
use crate::options::{ContinuePolicy, Options, Schedule};
use crate::preflight::{ForeignRun, OtherRuns, OwnJobs, other_runs, survey};
use crate::push::{self, Ctx, Start, Task};
use crate::report::{Event, Hint, HostResult, Interruption, PushReport, PushStatus, RunReport};

/// Where and how a run happens.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Scheduling, failure and polling policy.
    pub options: Options,
    /// Journals and locks live here (`runs/`, `locks/`).
    pub state_dir: PathBuf,
    /// Continue the last unfinished run instead of starting one.
    pub resume: bool,
    /// The plan file as the user named it (journaled).
    pub plan_file: String,
    /// TLS certificate verification is off for this run (journaled with the run's start
    /// or resumption).
    pub insecure_skip_tls_verify: bool,
    /// Go ahead although JOB shows another run of the plan with jobs not finished, or
    /// refuses to list jobs (journaled with the run's start or resumption).
    pub force: bool,
    /// `--converge`: the refresh the plan was narrowed with. A new run journals it before
    /// its first submission; a push it found up to date (and left out of the plan) is
    /// reported `up to date`, not `disabled`.
    pub refresh: Option<crate::refresh::Refresh>,
    /// The plan's content hash (`sha256:...`), journaled with the run's start so a report
    /// names what ran; `None` leaves it out.
    pub plan_hash: Option<String>,
    /// Answers at a gate (`gate = true`) or a JOB rolling batch waiting for a user; the
    /// default declines (no one to ask), so the push stops there and the run reports it
    /// waiting.
    pub confirmer: crate::confirm::Confirmer,
}

/// A push whose submission's outcome is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InDoubtPush {
    /// Push.
    pub name: String,
    /// The task name JOB shows for it.
    pub task_name: Option<String>,
    /// When the submission was sent.
    pub at: String,
    /// Sent with `start_task=false` (v3 two-phase): a job JOB may have created waits
    /// unstarted, so nothing was transferred.
    pub unstarted: bool,
}

/// The run could not start (exit 4 in the CLI).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Another apply holds the plan's lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Without `--resume`, the last run may still have jobs running in JOB.
    #[error("plan `{plan}` has an unfinished run `{run_id}` with jobs that may still be running in JOB: {}", pushes.join(", "))]
    UnfinishedRun {
        /// Plan.
        plan: String,
        /// The run.
        run_id: String,
        /// Its journal.
        journal: PathBuf,
        /// Pushes in flight or in doubt.
        pushes: Vec<String>,
        /// Those of `pushes` whose submission is in doubt: `--resume` refuses them too, so
        /// the way on is checking JOB and abandoning the run, not `--resume`.
        in_doubt: Vec<InDoubtPush>,
    },
    /// `--resume` found nothing to continue.
    #[error("plan `{plan}` has no unfinished run to resume{}", if *job_cannot_list { " in this state dir, and JOB's v2 API cannot list jobs to find one" } else { "" })]
    NothingToResume {
        /// Plan.
        plan: String,
        /// The last run, when there is one (it completed).
        last_run: Option<String>,
        /// No journal was at hand and JOB could not be asked for the run (v2 has no job
        /// list).
        job_cannot_list: bool,
    },
    /// JOB shows jobs of this plan not finished under another run (another machine, another
    /// state dir): two runs would push the same files at once.
    #[error(
        "plan `{plan}` has jobs not finished in JOB under another run: {}",
        describe_foreign(runs)
    )]
    OtherRunActive {
        /// Plan.
        plan: String,
        /// The other runs, with their jobs.
        runs: Vec<ForeignRun>,
    },
    /// JOB refused to list the plan's jobs (`get_job_instance_list`), so whether another run
    /// is active (or which run to resume) cannot be told.
    #[error(
        "JOB did not list the jobs of plan `{plan}`, so whether another run of it is active cannot be told: {error}"
    )]
    JobListRefused {
        /// Plan.
        plan: String,
        /// JOB's answer.
        error: Box<plan_bkjob::ApiError>,
    },
    /// `--resume` on a plan whose pushes changed since the run started.
    #[error(
        "plan `{plan}` changed since run `{run_id}` started: {}",
        describe_changes(changed, added, removed)
    )]
    PlanChanged {
        /// Plan.
        plan: String,
        /// The run.
        run_id: String,
        /// Pushes whose request body differs.
        changed: Vec<String>,
        /// Pushes not in the run.
        added: Vec<String>,
        /// Pushes of the run no longer in the plan.
        removed: Vec<String>,
    },
    /// The last run's journal has unreadable lines that are not a torn tail: what it says
    /// about the pushes cannot be trusted, so neither `--resume` nor a new run starts on it.
    #[error("journal `{}` of run `{run_id}` of plan `{plan}` cannot be read at line{} {}: the file was damaged or edited, so what it records about the pushes cannot be trusted", journal.display(), if lines.len() == 1 { "" } else { "s" }, lines.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    DamagedJournal {
        /// Plan.
        plan: String,
        /// The run.
        run_id: String,
        /// Its journal.
        journal: PathBuf,
        /// The unreadable lines (1-based).
        lines: Vec<usize>,
    },
    /// `--resume` on a run where a submission's outcome is unknown.
    #[error("run `{run_id}` of plan `{plan}` sent {} whose outcome is unknown: {}", if pushes.len() == 1 { "a submission" } else { "submissions" }, pushes.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "))]
    InDoubt {
        /// Plan.
        plan: String,
        /// The run.
        run_id: String,
        /// Its journal.
        journal: PathBuf,
        /// The pushes.
        pushes: Vec<InDoubtPush>,
    },
}

/// The pushes of a journaled run whose submission is in doubt.
fn in_doubt_pushes(history: &RunHistory) -> Vec<InDoubtPush> {
    history
        .pushes
        .iter()
        .filter_map(|(name, p)| {
            p.in_doubt.as_ref().map(|(_, task_name, at)| InDoubtPush {
                name: name.clone(),
                task_name: task_name.clone(),
                at: at.clone(),
                unstarted: p.in_doubt_unstarted,
            })
        })
        .collect()
}

/// At most this many runs, and jobs per run, are named in a message (JOB may list thousands).
const NAMED_AT_MOST: usize = 5;

/// The longest operator text quoted from JOB, in characters.
const OPERATOR_CHARS: usize = 64;

fn describe_foreign(runs: &[ForeignRun]) -> String {
    let run_text = |run: &ForeignRun| {
        let jobs = named(&run.jobs, ", ", |j| {
            format!(
                "job {} (`{}`, {}{})",
                j.job_instance_id,
                j.push,
                j.status,
                j.started_at
                    .as_deref()
                    .map(|t| format!(", since {t}"))
                    .unwrap_or_default()
            )
        });
        let operator = if run.operator.is_empty() {
            String::new()
        } else {
            format!(
                " by {}",
                run.operator
                    .chars()
                    .take(OPERATOR_CHARS)
                    .collect::<String>()
            )
        };
        format!("run `#{}`{operator}: {jobs}", run.run_tag)
    };
    named(runs, "; ", run_text)
}

/// The first [`NAMED_AT_MOST`] items, joined, and how many more there are.
fn named<T>(items: &[T], separator: &str, text: impl Fn(&T) -> String) -> String {
    let shown: Vec<String> = items.iter().take(NAMED_AT_MOST).map(text).collect();
    let more = items.len().saturating_sub(NAMED_AT_MOST);
    let mut out = shown.join(separator);
    if more > 0 {
        out.push_str(&format!(" and {more} more"));
    }
    out
}

fn describe_changes(changed: &[String], added: &[String], removed: &[String]) -> String {
    let mut parts = Vec::new();
    let list = |names: &[String]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !changed.is_empty() {
        parts.push(format!("changed {}", list(changed)));
    }
    if !added.is_empty() {
        parts.push(format!("added {}", list(added)));
    }
    if !removed.is_empty() {
        parts.push(format!("removed {}", list(removed)));
    }
    parts.join("; ")
}

/// Runs a plan: takes the lock, opens (or continues) the journal, runs every push, writes
/// the end of the journal, releases the lock. Events go to `events` as they happen.
///
/// The graph must be the one [`plan_graph::build`] returned for this plan (it is acyclic;
/// a cycle would leave pushes waiting forever, which validation rules out).
pub async fn apply<A: JobApi>(
    api: A,
    plan: Arc<Plan>,
    graph: Arc<PlanGraph>,
    settings: Settings,
    interrupt: Interrupt,
    events: UnboundedSender<Event>,
) -> Result<RunReport, StartError> {
    // Held until this function returns, however it returns (the OS lock goes with it).
    let lock = PlanLock::acquire(&settings.state_dir, &plan.name.value)?;
    if let Some(previous) = &lock.taken_over_from {
        let _ = events.send(Event::warning(format!(
            "took over the lock of plan `{}` left by {previous}, whose process is gone",
            plan.name.value
        )));
    }
    let (journal, history) = open_journal(&api, &plan, &settings, &events).await?;
    let journal = Arc::new(journal);
    let watch_other_runs = !settings.force && plan.api == plan_bkjob::ApiVersion::V3;
    let ctx = Arc::new(Ctx {
        api: Arc::new(api),
        plan: Arc::clone(&plan),
        journal: Arc::clone(&journal),
        run_tag: crate::run_tag::run_tag(journal.run_id()),
        created_jobs: std::sync::Mutex::default(),
        events: events.clone(),
        interrupt,
        poll: settings.options.poll,
        turns: push::Turns::new(),
        stop_new_on_failure: settings.options.continue_policy == ContinuePolicy::Never,
        failure_seen: std::sync::atomic::AtomicBool::new(false),
        confirmer: settings.confirmer.clone(),
    });
    let mut coordinator = Coordinator::new(ctx, graph, settings.options, history.as_ref());
    coordinator.watch_other_runs = watch_other_runs;
    coordinator.up_to_date = settings
        .refresh
        .iter()
        .flat_map(|r| &r.pushes)
        .filter_map(|r| match r.verdict {
            crate::refresh::PushRefresh::UpToDate { hosts } => Some((r.push.clone(), hosts)),
            _ => None,
        })
        .collect();
    let mut report = coordinator.run().await;
    close_journal(&journal, &mut report).await;
    let _ = events.send(Event::RunFinished {
        report: report.clone(),
    });
    drop(lock);
    Ok(report)
}

/// The sha256 of every push's full request body, by push name: what a resumed run must
/// find unchanged.
fn request_hashes(plan: &Plan) -> BTreeMap<String, String> {
    plan.pushes
        .iter()
        .map(|p| {
            let body = serde_json::to_vec(&plan_graph::request_for(plan, p)).unwrap_or_default();
            (p.name.value.clone(), sha256_hex(&body))
        })
        .collect()
}

/// The journal this run writes: the last unfinished run's, continued (`resume`), or a new
/// one. Refuses a damaged last journal either way.
async fn open_journal<A: JobApi>(
    api: &A,
    plan: &Plan,
    settings: &Settings,
    events: &UnboundedSender<Event>,
) -> Result<(Journal, Option<RunHistory>), StartError> {
    let plan_name = &plan.name.value;
    let last = latest_run(&settings.state_dir, plan_name)?.filter(|h| !h.is_complete());
    if let Some(history) = last.as_ref().filter(|h| !h.damaged_lines.is_empty()) {
        return Err(StartError::DamagedJournal {
            plan: plan_name.clone(),
            run_id: history.run_id.clone(),
            journal: history.path.clone(),
            lines: history.damaged_lines.clone(),
        });
    }
    let hashes = request_hashes(plan);
    if settings.resume {
        if last.is_none() && latest_run(&settings.state_dir, plan_name)?.is_none() {
            // No journal of the plan here (a fresh machine): the run is looked up in JOB.
            let (journal, history) = crate::rebuild::from_job(api, plan, hashes, settings).await?;
            let _ = events.send(Event::warning(format!(
                "no journal of plan `{plan_name}` in this state dir: continuing run `#{}` as JOB shows it ({} of {} pushes have jobs there), in a fresh journal",
                crate::run_tag::run_tag(journal.run_id()),
                history.pushes.len(),
                plan.pushes.len()
            )));
            check_other_runs(
                api,
                plan,
                &crate::run_tag::run_tag(journal.run_id()),
                settings,
                events,
            )
            .await?;
            return Ok((journal, Some(history)));
        }
        let (journal, history) = resume_run(api, plan, last, &hashes, settings, events).await?;
        return Ok((journal, Some(history)));
    }
    if let Some(history) = &last {
        refuse_busy_run(plan_name, history)?;
    }
    // No job carries an empty tag: every unfinished job of the plan is another run's.
    check_other_runs(api, plan, "", settings, events).await?;
    if let Some(history) = last {
        let _ = events.send(Event::Warning {
            message: format!(
                "the last run of plan `{plan_name}` (`{}`) did not complete ({} of {} pushes succeeded); starting a new run",
                history.run_id,
                history.succeeded().len(),
                history.push_hashes.len()
            ),
            hint: Some(Hint::ResumeLastRun),
        });
    }
    Ok((new_run(plan, hashes, settings).await?, None))
}

/// Continues the last unfinished run: only when the plan is unchanged push by push and no
/// submission is in doubt.
async fn resume_run<A: JobApi>(
    api: &A,
    plan: &Plan,
    last: Option<RunHistory>,
    hashes: &BTreeMap<String, String>,
    settings: &Settings,
    events: &UnboundedSender<Event>,
) -> Result<(Journal, RunHistory), StartError> {
    let plan_name = plan.name.value.as_str();
    let Some(history) = last else {
        let last_run = latest_run(&settings.state_dir, plan_name)?.map(|h| h.run_id);
        return Err(StartError::NothingToResume {
            plan: plan_name.to_owned(),
            last_run,
            job_cannot_list: false,
        });
    };
    check_unchanged(plan_name, &history, hashes)?;
    let in_doubt = in_doubt_pushes(&history);
    if !in_doubt.is_empty() {
        return Err(StartError::InDoubt {
            plan: plan_name.to_owned(),
            run_id: history.run_id.clone(),
            journal: history.path.clone(),
            pushes: in_doubt,
        });
    }
    check_other_runs(
        api,
        plan,
        &crate::run_tag::run_tag(&history.run_id),
        settings,
        events,
    )
    .await?;
    let journal = Journal::append_to(&history.path)?;
    journal
        .append(&Record::RunResumed {
            user: current_user(),
            host: host_name(),
            pid: std::process::id(),
            at: now(),
            insecure_skip_tls_verify: settings.insecure_skip_tls_verify,
            force: settings.force,
        })
        .await?;
    Ok((journal, history))
}

/// Before the first submission: JOB's jobs of this plan that have not finished, under a run
/// other than `own_tag`'s, refuse the run (`--force`: a warning). A JOB that refuses the
/// list refuses the run too (`--force`: a warning), since nothing could be told.
async fn check_other_runs<A: JobApi>(
    api: &A,
    plan: &Plan,
    own_tag: &str,
    settings: &Settings,
    events: &UnboundedSender<Event>,
) -> Result<(), StartError> {
    let plan_name = plan.name.value.clone();
    let error = match other_runs(api, plan, own_tag).await {
        Ok(OtherRuns::Unknown) => return Ok(()),
        Ok(OtherRuns::Found(runs)) if runs.is_empty() => return Ok(()),
        Ok(OtherRuns::Found(runs)) => StartError::OtherRunActive {
            plan: plan_name,
            runs,
        },
        Err(error) => StartError::JobListRefused {
            plan: plan_name,
            error: Box::new(error),
        },
    };
    if !settings.force {
        return Err(error);
    }
    let _ = events.send(Event::warning(format!("{error}; going ahead (forced)")));
    Ok(())
}

/// A new run may not start beside an unfinished one whose jobs may still be running (in
/// flight or in doubt): the two would push concurrently.
fn refuse_busy_run(plan_name: &str, history: &RunHistory) -> Result<(), StartError> {
    let mut busy: Vec<String> = history
        .in_flight()
        .into_iter()
        .chain(history.in_doubt())
        .map(str::to_owned)
        .collect();
    busy.sort();
    busy.dedup();
    if busy.is_empty() {
        return Ok(());
    }
    Err(StartError::UnfinishedRun {
        plan: plan_name.to_owned(),
        run_id: history.run_id.clone(),
        journal: history.path.clone(),
        pushes: busy,
        in_doubt: in_doubt_pushes(history),
    })
}

/// Creates the journal of run `run_id` and writes its `run_started` line.
pub(crate) async fn start_journal(
    plan: &Plan,
    hashes: BTreeMap<String, String>,
    settings: &Settings,
    run_id: String,
    rebuilt_from_job: bool,
) -> Result<Journal, StartError> {
    let journal = Journal::create(&settings.state_dir, &plan.name.value, &run_id)?;
    journal
        .append(&Record::RunStarted {
            format_version: JOURNAL_FORMAT_VERSION,
            run_id,
            plan: plan.name.value.clone(),
            plan_file: settings.plan_file.clone(),
            api: plan.api,
            user: current_user(),
            host: host_name(),
            pid: std::process::id(),
            at: now(),
            pushes: hashes,
            insecure_skip_tls_verify: settings.insecure_skip_tls_verify,
            force: settings.force,
            rebuilt_from_job,
            plan_hash: settings.plan_hash.clone(),
        })
        .await?;
    Ok(journal)
}

/// Creates the journal of a new run and writes its first line.
async fn new_run(
    plan: &Plan,
    hashes: BTreeMap<String, String>,
    settings: &Settings,
) -> Result<Journal, StartError> {
    let journal = start_journal(plan, hashes, settings, new_run_id(), false).await?;
    // The refresh is on disk before anything it decided is sent.
    for refreshed in settings.refresh.iter().flat_map(|r| &r.pushes) {
        journal
            .append(&Record::Refresh {
                push: refreshed.push.clone(),
                verdict: refreshed.verdict.clone(),
                at: now(),
            })
            .await?;
    }
    Ok(journal)
}

/// Writes `run_finished`. The run's last line counts too: a journal without it is not the
/// whole story, so a failure to write it is the report's `journal_error`.
async fn close_journal(journal: &Journal, report: &mut RunReport) {
    let status = if report.interrupted.is_interrupted() {
        RunOutcome::Interrupted
    } else if report.succeeded() {
        RunOutcome::Succeeded
    } else if report.awaits_confirmation() {
        RunOutcome::AwaitingConfirmation
    } else {
        RunOutcome::Failed
    };
    let _ = journal
        .append(&Record::RunFinished { status, at: now() })
        .await;
    report.journal_error = journal.write_error();
}

fn check_unchanged(
    plan: &str,
    history: &RunHistory,
    now_hashes: &BTreeMap<String, String>,
) -> Result<(), StartError> {
    let mut changed = Vec::new();
    let mut removed = Vec::new();
    for (name, hash) in &history.push_hashes {
        match now_hashes.get(name) {
            Some(h) if h == hash => {}
            Some(_) => changed.push(name.clone()),
            None => removed.push(name.clone()),
        }
    }
    let added: Vec<String> = now_hashes
        .keys()
        .filter(|n| !history.push_hashes.contains_key(*n))
        .cloned()
        .collect();
    if changed.is_empty() && added.is_empty() && removed.is_empty() {
        Ok(())
    } else {
        Err(StartError::PlanChanged {
            plan: plan.to_owned(),
            run_id: history.run_id.clone(),
            changed,
            added,
            removed,
        })
    }
}

#[derive(Debug, Clone)]
enum State {
    Waiting(Start, u32),
    Running,
    Done(PushStatus),
}

struct Coordinator<A> {
    ctx: Arc<Ctx<A>>,
    graph: Arc<PlanGraph>,
    options: Options,
    /// Push names in stage order, file order within a stage.
    order: Vec<(String, usize)>,
    states: BTreeMap<String, State>,
    reports: BTreeMap<String, PushReport>,
    resumed: bool,
    already_done: Vec<String>,
    reattached: Vec<String>,
    /// Per push continued from an earlier segment, its hosts' results there: the report
    /// covers every target host, not only those a retry or a re-attached job reached.
    known_hosts: BTreeMap<String, Vec<HostResult>>,
    /// Per push the plan cuts into batches whose job is re-attached, that job's batch.
    attach_batches: BTreeMap<String, u32>,
    /// Ask JOB for other runs of the plan before each later stage (v3, not forced).
    watch_other_runs: bool,
    /// The latest stage JOB was asked about before its first submission (the first one by
    /// the check before the run started).
    checked_stage: Option<usize>,
    /// JOB showed another run of the plan active after this one started: nothing new is
    /// submitted.
    other_run_seen: bool,
    /// When this process started the run (epoch milliseconds): a job of the run's tag
    /// created since, and not by this process, was created by another one.
    started_ms: i64,
    /// `--converge`: pushes left out because a refresh found them in place; reported
    /// `up to date` rather than `disabled`, each with the targets the refresh read.
    up_to_date: BTreeMap<String, usize>,
    /// Pushes whose gate an earlier segment confirmed: not asked again.
    gates_confirmed: BTreeSet<String>,
    /// Per push, the last JOB rolling batch an earlier segment journaled finished (its job
    /// and index).
    job_batches_done: BTreeMap<String, (i64, u32)>,
    /// Per push, the JOB rolling batches an earlier segment journaled finished.
    job_batches_before: BTreeMap<String, Vec<crate::report::BatchReport>>,
    /// Re-attached pushes whose retry inside the job was journaled without its end: the
    /// step's execution count before it.
    pending_retries: BTreeMap<String, Option<i32>>,
}

impl<A: JobApi> Coordinator<A> {
    fn new(
        ctx: Arc<Ctx<A>>,
        graph: Arc<PlanGraph>,
        options: Options,
        history: Option<&RunHistory>,
    ) -> Self {
        let order: Vec<(String, usize)> = graph
            .stages()
            .iter()
            .flat_map(|s| s.pushes.iter().map(move |p| (p.clone(), s.number)))
            .collect();
        let mut states = BTreeMap::new();
        let mut reports = BTreeMap::new();
        let mut already_done = Vec::new();
        let mut reattached = Vec::new();
        let mut known_hosts = BTreeMap::new();
        let mut attach_batches = BTreeMap::new();
        for (name, stage) in &order {
            let past = history.and_then(|h| h.pushes.get(name));
            let retries = ctx.plan.push(name).map_or(0, |p| p.retries);
            let verifies = ctx
                .plan
                .push(name)
                .is_some_and(|p| p.release.verify.is_some());
            let state = match past {
                // Transferred, not verified yet (the process ended in between): verify only.
                Some(p) if verifies && p.awaits_verification() => {
                    known_hosts.insert(name.clone(), p.last_hosts.clone());
                    State::Waiting(Start::Verify(p.last_job), p.last_attempt.max(1))
                }
                Some(p) if p.succeeded() => {
                    already_done.push(name.clone());
                    let mut r = PushReport::idle(name, *stage, PushStatus::AlreadySucceeded);
                    r.job_instance_id = p.last_job;
                    r.record_hosts(p.last_hosts.iter().cloned());
                    reports.insert(name.clone(), r);
                    State::Done(PushStatus::AlreadySucceeded)
                }
                Some(p) if p.in_flight.is_some() => {
                    reattached.push(name.clone());
                    known_hosts.insert(name.clone(), p.last_hosts.clone());
                    if let Some(batch) = p.in_flight_batch {
                        attach_batches.insert(name.clone(), batch);
                    }
                    let job = p.in_flight.unwrap_or_else(|| unreachable!());
                    State::Waiting(Start::Attach(job), p.last_attempt.max(1))
                }
                // Its verification found targets differing: the others hold what the sources
                // hold (checked), so only those are sent to again (a push in batches goes
                // whole, as its batches decide by JOB's results).
                Some(p)
                    if p.verified == Some(false)
                        && ctx
                            .plan
                            .push(name)
                            .is_some_and(|push| crate::batches::of(&ctx.plan, push).is_none())
                        && Start::retry(&p.unverified.iter().collect::<Vec<_>>()).is_some() =>
                {
                    let hosts: Vec<&HostResult> = p.unverified.iter().collect();
                    known_hosts.insert(name.clone(), p.last_hosts.clone());
                    let start = Start::retry(&hosts).unwrap_or(Start::Fresh);
                    State::Waiting(start, p.last_attempt + 1)
                }
                Some(p) => {
                    let failed: Vec<&HostResult> =
                        p.last_hosts.iter().filter(|h| !h.is_success()).collect();
                    let start = match Start::retry(&failed) {
                        Some(retry)
                            if retries > 0
                                && matches!(
                                    p.outcome(),
                                    Some(
                                        PushStatus::Failed
                                            | PushStatus::TimedOut
                                            | PushStatus::Interrupted
                                    )
                                ) =>
                        {
                            retry
                        }
                        _ => Start::Fresh,
                    };
                    // A batched push skips its batches that succeeded, by their hosts.
                    let batched = ctx
                        .plan
                        .push(name)
                        .is_some_and(|push| crate::batches::of(&ctx.plan, push).is_some());
                    if start.is_retry() || batched {
                        known_hosts.insert(name.clone(), p.last_hosts.clone());
                    }
                    State::Waiting(start, p.last_attempt + 1)
                }
                None => State::Waiting(Start::Fresh, 1),
            };
            states.insert(name.clone(), state);
        }
        Coordinator {
            ctx,
            graph,
            options,
            order,
            states,
            reports,
            resumed: history.is_some(),
            already_done,
            reattached,
            known_hosts,
            attach_batches,
            watch_other_runs: false,
            checked_stage: None,
            other_run_seen: false,
            started_ms: chrono::Utc::now().timestamp_millis(),
            up_to_date: BTreeMap::new(),
            gates_confirmed: history
                .iter()
                .flat_map(|h| &h.pushes)
                .filter(|(_, p)| p.gate_confirmed)
                .map(|(name, _)| name.clone())
                .collect(),
            job_batches_done: history
                .iter()
                .flat_map(|h| &h.pushes)
                .filter_map(|(name, p)| Some((name.clone(), p.job_batches_done?)))
                .collect(),
            job_batches_before: history
                .iter()
                .flat_map(|h| &h.pushes)
                .filter(|(_, p)| !p.job_batches.is_empty())
                .map(|(name, p)| (name.clone(), p.job_batches.clone()))
                .collect(),
            pending_retries: history
                .iter()
                .flat_map(|h| &h.pushes)
                .filter_map(|(name, p)| Some((name.clone(), p.retry_pending?.1)))
                .collect(),
        }
    }

    /// Before the first submission of a stage after the first: asks JOB whether another run
    /// of the plan has jobs not finished, and stops submitting if so. One list call per
    /// stage; a list call that fails here is passed over (the check before the run passed).
    /// `quiet`: no push task runs, so every job this process created is known (a task
    /// whose job JOB created but whose answer is still on its way would look like another
    /// process's); only then do jobs of this run's own tag count.
    async fn check_other_runs_before_stage(&mut self, failed: bool, quiet: bool) {
        if !self.watch_other_runs || self.other_run_seen || self.ctx.interrupt.is_stopping() {
            return;
        }
        let next_fresh = self
            .ready(failed)
            .into_iter()
            .filter(|(name, _)| {
                !matches!(
                    self.states.get(name),
                    Some(State::Waiting(Start::Attach(_), _))
                )
            })
            .map(|(_, stage)| stage)
            .min();
        let Some(stage) = next_fresh else { return };
        let checked = self
            .checked_stage
            .replace(stage.max(self.checked_stage.unwrap_or(0)));
        if checked.is_none_or(|c| stage <= c) {
            return;
        }
        let created = self
            .ctx
            .created_jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let own = OwnJobs {
            since_ms: self.started_ms,
            created: &created,
        };
        let Ok(Some(found)) = survey(&*self.ctx.api, &self.ctx.plan, &self.ctx.run_tag, &own).await
        else {
            return;
        };
        let plan = self.ctx.plan.name.value.clone();
        let why = if !found.others.is_empty() {
            StartError::OtherRunActive {
                plan,
                runs: found.others,
            }
            .to_string()
        } else if quiet && !found.taken_over.is_empty() {
            let jobs = found
                .taken_over
                .iter()
                .map(|j| format!("job {} (`{}`)", j.job_instance_id, j.push))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "another process continues this run of plan `{plan}` (`#{}`, e.g. a `--resume` on another machine): JOB shows {jobs}, which this process did not submit",
                self.ctx.run_tag
            )
        } else {
            return;
        };
        self.other_run_seen = true;
        let _ = self.ctx.events.send(Event::warning(format!(
            "{why}; this run submits nothing more (its jobs already in JOB are followed)"
        )));
    }

    fn deps(&self, name: &str) -> Vec<String> {
        self.graph
            .dependencies_of(name)
            .map(|e| e.dependency.clone())
            .collect()
    }

    fn status(&self, name: &str) -> Option<PushStatus> {
        match self.states.get(name) {
            Some(State::Done(s)) => Some(*s),
            _ => None,
        }
    }

    /// Settles pushes that will never run (blocked) and disabled ones whose dependencies are
    /// done, repeatedly, since one settles the next.
    fn settle(&mut self) {
        loop {
            let mut changed = false;
            for (name, stage) in self.order.clone() {
                if !matches!(self.states.get(&name), Some(State::Waiting(..))) {
                    continue;
                }
                let deps = self.deps(&name);
                // A dependency that never started (the run stopped first) does not block:
                // this push did not start for the same reason.
                let blocked = deps.iter().any(|d| {
                    self.status(d)
                        .is_some_and(|s| !s.is_ok() && s != PushStatus::NotStarted)
                });
                let disabled = self.graph.is_skipped(&name);
                let deps_ok = deps
                    .iter()
                    .all(|d| self.status(d).is_some_and(PushStatus::is_ok));
                let status = if blocked {
                    Some(PushStatus::Blocked)
                } else if disabled && deps_ok && self.up_to_date.contains_key(&name) {
                    Some(PushStatus::UpToDate)
                } else if disabled && deps_ok {
                    Some(PushStatus::Disabled)
                } else {
                    None
                };
                if let Some(status) = status {
                    let mut report = PushReport::idle(&name, stage, status);
                    if let Some(&hosts) = self.up_to_date.get(&name) {
                        // In place on every target the refresh read: each is ok, none was sent to.
                        (report.hosts_total, report.hosts_ok) = (hosts, hosts);
                    }
                    self.finish(report);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    fn finish(&mut self, report: PushReport) {
        self.states
            .insert(report.name.clone(), State::Done(report.status));
        let _ = self.ctx.events.send(Event::PushFinished {
            report: report.clone(),
        });
        self.reports.insert(report.name.clone(), report);
    }

    /// Pushes that may start now, best first.
    fn ready(&self, failed: bool) -> Vec<(String, usize)> {
        let stop_new = failed && self.options.continue_policy == ContinuePolicy::Never;
        // The first stage with a push not done yet: in `stages` mode nothing later may start.
        // A push waiting for a person holds its stage open: the stages after it wait too.
        let open_stage = self
            .order
            .iter()
            .filter(|(n, _)| !matches!(self.states.get(n), Some(State::Done(s)) if !s.is_waiting()))
            .map(|(_, stage)| *stage)
            .min()
            .unwrap_or(usize::MAX);
        let mut ready: Vec<(String, usize)> = Vec::new();
        for (index, (name, stage)) in self.order.iter().enumerate() {
            let Some(State::Waiting(start, _)) = self.states.get(name) else {
                continue;
            };
            // A job already in JOB is followed regardless of policy: it runs either way.
            if matches!(start, Start::Attach(_)) {
                ready.push((name.clone(), index));
                continue;
            }
            if stop_new || self.graph.is_skipped(name) {
                continue;
            }
            let deps_ok = self
                .deps(name)
                .iter()
                .all(|d| self.status(d).is_some_and(PushStatus::is_ok));
            if !deps_ok {
                continue;
            }
            let allowed = match self.options.schedule {
                Schedule::Eager => true,
                Schedule::Stages => *stage <= open_stage,
            };
            if allowed {
                ready.push((name.clone(), index));
            }
        }
        if self.options.schedule == Schedule::Eager {
            ready.sort_by_key(|(name, index)| {
                let attach = matches!(
                    self.states.get(name),
                    Some(State::Waiting(Start::Attach(_), _))
                );
                (
                    !attach,
                    std::cmp::Reverse(self.graph.longest_remaining_path(name).unwrap_or(0)),
                    *index,
                )
            });
        } else {
            ready.sort_by_key(|(name, index)| {
                let attach = matches!(
                    self.states.get(name),
                    Some(State::Waiting(Start::Attach(_), _))
                );
                (!attach, *index)
            });
        }
        ready
            .into_iter()
            .map(|(n, _)| {
                let stage = self.graph.stage_of(&n).unwrap_or(0);
                (n, stage)
            })
            .collect()
    }

    /// Runs every push: announces the run, starts and joins push tasks until nothing runs
    /// and nothing is ready, settles what never ran, and reports.
    async fn run(mut self) -> RunReport {
        let started = Instant::now();
        self.announce();
        self.drive().await;
        self.settle_what_never_ran();
        self.into_report(started)
    }

    /// `run_started`.
    fn announce(&self) {
        let _ = self.ctx.events.send(Event::RunStarted {
            run_id: self.ctx.journal.run_id().to_owned(),
            plan: self.ctx.plan.name.value.clone(),
            journal: self.ctx.journal.path().display().to_string(),
            resumed: self.resumed,
            pushes: self.order.len(),
            stages: self.graph.stages().len(),
            already_done: self.already_done.clone(),
            reattached: self.reattached.clone(),
        });
    }

    /// The scheduling loop: each turn settles pushes that can no longer run, starts ready
    /// ones up to `parallelism`, then waits for a task to end or an interrupt to arrive.
    async fn drive(&mut self) {
        let mut flight = Flight::default();
        let mut failed = false;
        let mut stop_seen = false;
        let mut terminate_seen = false;
        let soft = self.ctx.interrupt.soft().clone();
        let hard = self.ctx.interrupt.hard().clone();
        loop {
            self.settle();
            self.check_other_runs_before_stage(failed, flight.running.is_empty())
                .await;
            self.start_ready(&mut flight, failed);
            if flight.running.is_empty() {
                return;
            }
            tokio::select! {
                joined = flight.tasks.join_next_with_id() => {
                    let Some(report) = flight.joined(joined) else { return };
                    // A push waiting for a person is no failure: `--continue never` keeps
                    // starting what does not depend on it.
                    if !report.status.is_ok() && !report.status.is_waiting() {
                        failed = true;
                    }
                    self.finish(report);
                }
                () = soft.cancelled(), if !stop_seen => {
                    stop_seen = true;
                    let _ = self.ctx.events.send(Event::Interrupted { level: Interruption::Stop });
                }
                () = hard.cancelled(), if !terminate_seen => {
                    terminate_seen = true;
                    let _ = self.ctx.events.send(Event::Interrupted { level: Interruption::Terminate });
                }
            }
        }
    }

    /// Starts ready pushes, best first, while fewer than `parallelism` run.
    fn start_ready(&mut self, flight: &mut Flight, failed: bool) {
        let parallelism = self.options.parallelism.max(1);
        let stopping = self.ctx.interrupt.is_stopping();
        // A journal that cannot be written stops everything: not even a job already in
        // JOB is followed, since nothing about it could be recorded.
        let journal_broken = self.ctx.journal.broken().is_cancelled();
        for (name, stage) in self.ready(failed) {
            if flight.running.len() >= parallelism {
                break;
            }
            let Some(State::Waiting(start, first_attempt)) = self.states.get(&name).cloned() else {
                continue;
            };
            // After an interrupt (or another run seen in JOB) only jobs already in JOB are
            // followed.
            let hold_new = stopping || self.other_run_seen;
            if journal_broken || (hold_new && !matches!(start, Start::Attach(_))) {
                continue;
            }
            self.states.insert(name.clone(), State::Running);
            let task = Task {
                name: name.clone(),
                stage,
                start,
                first_attempt,
                ticket: flight.tickets,
                known_hosts: self.known_hosts.remove(&name).unwrap_or_default(),
                attach_batch: self.attach_batches.remove(&name),
                gate_confirmed: self.gates_confirmed.contains(&name),
                job_batches_done: self.job_batches_done.get(&name).copied(),
                job_batches_before: self.job_batches_before.remove(&name).unwrap_or_default(),
                pending_retry: self.pending_retries.remove(&name),
            };
            flight.tickets += 1;
            let handle = flight.tasks.spawn(push::run(Arc::clone(&self.ctx), task));
            flight.running.insert(handle.id(), (name, stage));
        }
    }

    /// Whatever is still waiting never ran: blocked behind a push that did not succeed, or
    /// not started because the run stopped.
    fn settle_what_never_ran(&mut self) {
        let waiting: Vec<(String, usize)> = self
            .order
            .iter()
            .filter(|(n, _)| matches!(self.states.get(n), Some(State::Waiting(..))))
            .cloned()
            .collect();
        let not_ok: BTreeSet<String> = self
            .states
            .iter()
            .filter(|(_, s)| {
                matches!(s, State::Done(st) if !st.is_ok() && *st != PushStatus::NotStarted)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for (name, stage) in waiting {
            let blocked = self.deps(&name).iter().any(|d| not_ok.contains(d));
            let status = if blocked {
                PushStatus::Blocked
            } else {
                PushStatus::NotStarted
            };
            self.finish(PushReport::idle(&name, stage, status));
        }
    }

    fn into_report(self, started: Instant) -> RunReport {
        let interrupted = if self.ctx.interrupt.is_terminating() {
            Interruption::Terminate
        } else if self.ctx.interrupt.is_stopping() {
            Interruption::Stop
        } else {
            Interruption::None
        };
        let pushes = self
            .order
            .iter()
            .filter_map(|(n, _)| self.reports.get(n).cloned())
            .collect();
        RunReport {
            run_id: self.ctx.journal.run_id().to_owned(),
            plan: self.ctx.plan.name.value.clone(),
            journal: self.ctx.journal.path().display().to_string(),
            resumed: self.resumed,
            pushes,
            interrupted,
            duration: started.elapsed(),
            journal_error: self.ctx.journal.write_error(),
        }
    }
}

/// The push tasks running, and the next submission ticket.
#[derive(Default)]
struct Flight {
    tasks: JoinSet<PushReport>,
    running: BTreeMap<tokio::task::Id, (String, usize)>,
    /// Tickets in the order pushes start: their first submissions go out in this order.
    tickets: u64,
}

impl Flight {
    /// The report of a task that ended (a panicked one is a failed push); `None` when no
    /// task was left.
    fn joined(
        &mut self,
        joined: Option<Result<(tokio::task::Id, PushReport), tokio::task::JoinError>>,
    ) -> Option<PushReport> {
        match joined? {
            Ok((id, report)) => {
                self.running.remove(&id);
                Some(report)
            }
            Err(e) => {
                let (name, stage) = self.running.remove(&e.id()).unwrap_or_default();
                let mut r = PushReport::idle(&name, stage, PushStatus::Failed);
                r.error = Some(format!("internal error: {e}"));
                Some(r)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preflight::ForeignJob;

    #[test]
    fn a_refusal_names_a_bounded_number_of_runs_and_jobs() {
        let job = |id| ForeignJob {
            push: "p".into(),
            job_instance_id: id,
            status: "2 Running".into(),
            started_at: None,
        };
        let run = |tag: &str| ForeignRun {
            run_tag: tag.into(),
            operator: "x".repeat(10_000),
            jobs: (1..=40).map(job).collect(),
        };
        let runs: Vec<ForeignRun> = (0..30).map(|i| run(&format!("{i:08x}"))).collect();
        let text = describe_foreign(&runs);
        assert!(text.contains("and 35 more"), "{text}");
        assert!(text.ends_with("and 25 more"), "{text}");
        assert!(text.len() < 4_000, "{}", text.len());
    }
}
