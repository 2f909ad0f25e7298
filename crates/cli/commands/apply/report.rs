//! Output of `apply` that is not live progress: the start line, dry run, confirmation
//! summary, the final report and its diagnostics, start errors. NDJSON with `--format json`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use plan_executor::{
    ApplyEvent, DryRunPush, DryRunStage, Event, Hint, LineStamp, PushReport, PushStatus, RunReport,
    StartError, Target,
};
use plan_graph::PlanGraph;
use plan_parser::{Plan, Problem, Push};

use owo_colors::OwoColorize as _;

use crate::diagnostics::render_problems;
use crate::printer::Printer;
use crate::render::count;

use super::EVENTS_FORMAT_VERSION;

/// Where and how `apply` writes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Out {
    pub(super) printer: Printer,
    pub(super) json: bool,
    /// Colours in what goes to stdout (the report).
    pub(super) stdout_paint: Paint,
    /// Colours in what goes to stderr (progress, notices), as the diagnostics have them.
    pub(super) stderr_paint: Paint,
}

impl Out {
    pub(super) fn new(printer: Printer, json: bool) -> Self {
        let stdout_colours = printer.stdout_colours();
        Out {
            printer,
            json,
            stdout_paint: Paint(stdout_colours && !json),
            stderr_paint: Paint(printer.fancy),
        }
    }

    /// A line on stdout (the report, NDJSON). A closed pipe is not an error.
    pub(super) fn stdout(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Text on stderr (progress, notices, diagnostics).
    pub(super) fn stderr(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{text}");
        if !text.ends_with('\n') {
            let _ = writeln!(err);
        }
    }

    /// An NDJSON line of no run yet (before the executor opened its journal).
    pub(super) fn json_line(&self, value: &impl serde::Serialize) {
        self.json_line_of_run(value, None);
    }

    /// An NDJSON line, stamped with the time and, once there is one, the run id.
    pub(super) fn json_line_of_run(&self, value: &impl serde::Serialize, run_id: Option<&str>) {
        let stamped = LineStamp::now(run_id).stamp(value);
        match stamped.and_then(|v| serde_json::to_string(&v)) {
            Ok(line) => self.stdout(&line),
            Err(e) => tracing::warn!("cannot serialise an event: {e}"),
        }
    }

    pub(super) fn cannot_start(&self, message: &str, help: Option<&str>) {
        self.run_error(message, help, None);
    }

    /// An error of run `run_id` (or, without one, of an apply that has no run yet).
    pub(super) fn run_error(&self, message: &str, help: Option<&str>, run_id: Option<&str>) {
        if self.json {
            let error = ApplyEvent::Error {
                format_version: EVENTS_FORMAT_VERSION,
                message: message.to_owned(),
                help: help.map(str::to_owned),
            };
            self.json_line_of_run(&error, run_id);
        }
        let mut text = format!("error: {message}");
        if let Some(help) = help {
            let _ = write!(text, "\n  help: {help}");
        }
        self.stderr(&text);
    }

    pub(super) fn started(
        &self,
        plan: &Plan,
        graph: &PlanGraph,
        endpoint: &str,
        sandbox: bool,
        dry_run: bool,
    ) {
        if self.json {
            self.json_line(&ApplyEvent::ApplyStarted {
                format_version: EVENTS_FORMAT_VERSION,
                plan: plan.name.value.clone(),
                api: plan.api,
                target: if sandbox {
                    Target::Sandbox
                } else {
                    Target::Endpoint
                },
                endpoint: endpoint.to_owned(),
                dry_run,
                pushes: plan.pushes.len(),
                stages: graph.stages().len(),
            });
        } else if !self.printer.quiet {
            self.stderr(&format!(
                "{} plan `{}` ({} in {}, api {}) {} {endpoint}",
                if dry_run { "dry run of" } else { "applying" },
                plan.name.value,
                count(plan.pushes.len(), "push", "pushes"),
                count(graph.stages().len(), "stage", "stages"),
                plan.api,
                if sandbox {
                    "on the sandbox simulator at"
                } else {
                    "against"
                },
            ));
        }
    }

    pub(super) fn dry_run(&self, plan: &Plan, graph: &PlanGraph) {
        if self.json {
            let stages = graph
                .stages()
                .iter()
                .map(|s| DryRunStage {
                    stage: s.number,
                    pushes: s
                        .pushes
                        .iter()
                        .filter_map(|n| plan.push(n))
                        .map(|p| DryRunPush {
                            name: p.name.value.clone(),
                            enabled: p.enabled,
                            request: plan_graph::request_for(plan, p).to_json(),
                        })
                        .collect(),
                })
                .collect();
            self.json_line(&ApplyEvent::DryRun { stages });
            return;
        }
        let mut text = String::new();
        for stage in graph.stages() {
            let _ = writeln!(text, "stage {}", stage.number);
            for push in stage.pushes.iter().filter_map(|n| plan.push(n)) {
                let _ = writeln!(
                    text,
                    "  {}{}  ->  {} ({}), task `{}`",
                    push.name.value,
                    if push.enabled { "" } else { " (disabled)" },
                    push.target.path.value,
                    hosts_of(push),
                    plan.task_name(push)
                );
                if let Some(sizes) = plan_executor::plan_batch_sizes(plan, push) {
                    // Under v2 the plan cuts the batches: one job each, named by its batch.
                    let _ = writeln!(
                        text,
                        "    in {} batches ({}), one job each, task `{}`...",
                        sizes.len(),
                        crate::render::batch_list(&sizes),
                        plan_bkjob::task_name::with_batch(&plan.task_name(push), 1, sizes.len())
                    );
                }
                if push.release.gate.is_some() {
                    let _ = writeln!(
                        text,
                        "    waits at its gate: asked on a terminal, else `--resume --confirm {}`",
                        push.name.value
                    );
                }
            }
        }
        let _ = write!(text, "dry run: nothing was submitted");
        self.stdout(&text);
    }

    pub(super) fn summary_for_confirmation(&self, plan: &Plan, graph: &PlanGraph, endpoint: &str) {
        let mut text = format!(
            "plan `{}` (business {}) will be applied to {endpoint}:\n",
            plan.name.value, plan.bk_biz_id.value
        );
        for stage in graph.stages() {
            let pushes: Vec<String> = stage
                .pushes
                .iter()
                .filter_map(|n| plan.push(n))
                .filter(|p| p.enabled)
                .map(|p| format!("{} ({})", p.name.value, hosts_of(p)))
                .collect();
            let _ = writeln!(text, "  stage {}: {}", stage.number, pushes.join(", "));
        }
        self.stderr(&text);
    }

    pub(super) fn report(&self, plan: &Plan, report: &RunReport, closing: &Closing) {
        if self.json {
            // The `run_finished` event already carried the whole report.
            return;
        }
        let mut text = String::new();
        let name_width = report
            .pushes
            .iter()
            .map(|p| p.name.chars().count().max(batch_label_width(p)))
            .max()
            .unwrap_or(4)
            .max(4);
        let paint = self.stdout_paint;
        let header = format!(
            "{:<5}  {:<name_width$}  {:<15}  {:>12}  {:>12}  {:>9}",
            "stage", "push", "status", "job", "hosts ok/bad", "duration"
        );
        let _ = writeln!(text, "{}", paint.strong(&header));
        for p in &report.pushes {
            let job = p
                .job_instance_id
                .map_or_else(|| "-".to_owned(), |id| id.to_string());
            let hosts = if p.hosts_total == 0 && p.failed_hosts.is_empty() {
                "-".to_owned()
            } else {
                format!("{}/{}", p.hosts_ok, p.failed_hosts.len())
            };
            let duration = if p.attempts == 0 {
                "-".to_owned()
            } else {
                human_duration(p.duration)
            };
            let status = paint.status(p.status, &format!("{:<15}", p.status.label()));
            let _ = writeln!(
                text,
                "{:<5}  {:<name_width$}  {status}  {:>12}  {:>12}  {:>9}",
                p.stage, p.name, job, hosts, duration
            );
            write_batches(&mut text, p, name_width);
            write_attempts(&mut text, p, name_width);
        }
        let summary = summary_line(report, closing);
        let (verdict, rest) = summary.split_once(':').unwrap_or((&summary, ""));
        let verdict = if report.succeeded() {
            paint.status(PushStatus::Succeeded, verdict)
        } else if report.interrupted.is_interrupted() {
            paint.notice(verdict)
        } else {
            paint.status(PushStatus::Failed, verdict)
        };
        let _ = write!(text, "{}:{rest}", paint.strong(&verdict));
        self.stdout(&text);

        // One diagnostic per push that ran and failed, labelled at the push in the plan.
        let problems: Vec<Problem> = report
            .failures()
            .filter_map(|r| {
                plan.push(&r.name)
                    .map(|push| failure_problem(plan, push, r))
            })
            .collect();
        if !problems.is_empty() {
            self.stderr(&render_problems(
                &plan.sources,
                &problems,
                self.printer.fancy,
            ));
        }
        if !self.printer.quiet {
            self.stderr(&format!("journal: {}", report.journal));
        }
    }
}

/// The width of a push's batch rows' labels (`  batch 12/12`), 0 without batches.
fn batch_label_width(p: &PushReport) -> usize {
    let count = p.batches.len();
    if count == 0 {
        return 0;
    }
    format!("  batch {count}/{count}").len()
}

/// One row per batch under a push the plan cut into batches (v2 `rolling`), in the
/// push's columns: which batch, how it ended, its job, its hosts ok/bad.
fn write_batches(text: &mut String, p: &PushReport, name_width: usize) {
    for b in &p.batches {
        // A JOB batch run again after a confirmation is listed again: the count is the
        // push's batches, not the rows.
        let count = if b.count == 0 {
            p.batches.len()
        } else {
            b.count as usize
        };
        let job = b
            .job_instance_id
            .map_or_else(|| "-".to_owned(), |id| id.to_string());
        let hosts = if b.status == PushStatus::NotStarted {
            "-".to_owned()
        } else {
            format!("{}/{}", b.hosts_ok, b.failed_hosts.len())
        };
        let name = format!("  batch {}/{count}", b.index);
        let _ = writeln!(
            text,
            "{:<5}  {:<name_width$}  {:<15}  {:>12}  {:>12}",
            "",
            name,
            b.status.label(),
            job,
            hosts
        );
    }
}

/// Under a push (or a v2 batch) retried in this segment, one row per attempt of it
/// (`  attempt 2`, `retry in job` for a retry inside the same JOB instance, `job, batch 2/4`
/// for a batch's job), then the verification's summary when it ran.
fn write_attempts(text: &mut String, p: &PushReport, name_width: usize) {
    // A batch is not a retry: only a push (or one of its batches) sent more than once has
    // its attempts listed, each job of it.
    let sent_more_than_once = |a: &plan_executor::AttemptReport| {
        let batch = a.batch.map(|b| b.index);
        p.attempt_log
            .iter()
            .filter(|other| other.batch.map(|b| b.index) == batch)
            .count()
            > 1
    };
    for a in p.attempt_log.iter().filter(|a| sent_more_than_once(a)) {
        let how = match (a.in_same_job, a.batch) {
            (true, _) => "retry in job".to_owned(),
            (false, Some(batch)) => format!("job, {batch}"),
            (false, None) => "job".to_owned(),
        };
        let _ = writeln!(
            text,
            "{:<5}  {:<name_width$}  {:<15}  {:>12}  {:>12}",
            "",
            format!("  attempt {}", a.attempt),
            how,
            a.job_instance_id,
            format!("{}/{}", a.hosts - a.failed, a.failed)
        );
    }
    if let Some(verification) = &p.verification {
        let _ = writeln!(text, "{:<5}  {}", "", verification.summary());
    }
}

/// Colours for people: on a terminal without `NO_COLOR`, or with `--color always`; never in
/// a pipe or a file otherwise. Text is padded before it is painted, so columns still line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Paint(pub(super) bool);

impl Paint {
    /// A push status: green when done, red when it failed, yellow when it did not run.
    pub(super) fn status(self, status: PushStatus, text: &str) -> String {
        if !self.0 {
            text.to_owned()
        } else if status.is_ok() {
            text.green().to_string()
        } else if status.is_failure() {
            text.red().to_string()
        } else {
            text.yellow().to_string()
        }
    }

    /// Something to notice (a warning, an interrupt).
    pub(super) fn notice(self, text: &str) -> String {
        if self.0 {
            text.yellow().to_string()
        } else {
            text.to_owned()
        }
    }

    /// A heading or a name that guides the eye.
    pub(super) fn strong(self, text: &str) -> String {
        if self.0 {
            text.bold().to_string()
        } else {
            text.to_owned()
        }
    }
}

/// How the run ended from outside the executor: what the closing line can offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Closing {
    /// The command that continues this run (`plan apply PLAN --sandbox DIR --resume`).
    pub(super) resume: String,
    /// The user pressed Ctrl-C (SIGINT), as opposed to a SIGTERM or no interrupt at all.
    pub(super) ctrl_c: bool,
}

fn summary_line(report: &RunReport, closing: &Closing) -> String {
    let mut counts: Vec<(PushStatus, usize)> = Vec::new();
    for p in &report.pushes {
        match counts.iter_mut().find(|(s, _)| *s == p.status) {
            Some((_, n)) => *n += 1,
            None => counts.push((p.status, 1)),
        }
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(s, n)| format!("{n} {}", s.label()))
        .collect();
    let verdict = if report.interrupted.is_interrupted() {
        "interrupted"
    } else if report.succeeded() {
        "done"
    } else if report.awaits_confirmation() {
        "waiting"
    } else {
        "failed"
    };
    let mut line = format!(
        "{verdict}: {} ({}) in {}",
        count(report.pushes.len(), "push", "pushes"),
        parts.join(", "),
        human_duration(report.duration)
    );
    if report
        .pushes
        .iter()
        .any(|p| p.status == PushStatus::OutcomeUnknown)
    {
        // `--resume` refuses a run with a submission in doubt: pointing at it would send the
        // user in a circle.
        line.push_str(
            "\na submission's answer was lost: check JOB's job history for the task named above before anything else (`--resume` refuses this run; its diagnostic says how to go on)",
        );
    } else if report.interrupted.is_interrupted() {
        // Nothing needs fixing after a stop someone asked for: the run just goes on.
        let who = if closing.ctrl_c {
            "you interrupted the run"
        } else {
            "the run was stopped (SIGTERM)"
        };
        line.push_str(&format!(
            "\n{who}: `{}` continues it where it stopped (what succeeded is not sent again)",
            closing.resume
        ));
    } else if !report.succeeded() && !report.awaits_confirmation() {
        line.push_str(
            "\nfix the cause and rerun with `--resume` to redo only what did not succeed",
        );
    }
    line.push_str(&super::confirm::waiting_lines(report, &closing.resume));
    line
}

/// Hosts that failed alike: status, label, error code, the log's cause ([`cause`]), hosts.
type FailureGroup<'a> = (
    plan_bkjob::HostStatus,
    &'a str,
    Option<i64>,
    String,
    Vec<&'a plan_executor::HostResult>,
);

/// Hosts named in one failure block; the rest are counted.
const HOSTS_NAMED_PER_CAUSE: usize = 20;

/// The hosts of one failure block in few words: consecutive addresses under one
/// `cloud:a.b.c.` as the plan writes a range, `cloud:a.b.c.[first:last]`; the first
/// [`HOSTS_NAMED_PER_CAUSE`] of those words, then how many hosts are left. A lone host keeps
/// its id beside it ([`plan_executor::HostResult::display`]).
fn named_hosts(hosts: &[&plan_executor::HostResult]) -> String {
    if let [one] = hosts {
        return one.display();
    }
    // (the word's prefix, or the whole host when it is not IPv4; last octets; hosts)
    let mut words: Vec<(String, Vec<u8>)> = Vec::new();
    for h in hosts {
        match ipv4_prefix(&h.host) {
            Some((prefix, last)) => {
                match words.iter_mut().find(|w| !w.1.is_empty() && w.0 == prefix) {
                    Some(word) => word.1.push(last),
                    None => words.push((prefix, vec![last])),
                }
            }
            None => words.push((h.host.clone(), Vec::new())),
        }
    }
    let mut named: Vec<(String, usize)> = Vec::new();
    for (prefix, mut octets) in words {
        if octets.is_empty() {
            named.push((prefix, 1));
            continue;
        }
        octets.sort_unstable();
        octets.dedup();
        let mut start = 0;
        for i in 1..=octets.len() {
            let run_ends = i == octets.len() || octets[i] != octets[i - 1].saturating_add(1);
            if run_ends {
                let (first, last) = (octets[start], octets[i - 1]);
                let word = if first == last {
                    format!("{prefix}{first}")
                } else {
                    format!("{prefix}[{first}:{last}]")
                };
                named.push((word, i - start));
                start = i;
            }
        }
    }
    let shown: Vec<&str> = named
        .iter()
        .take(HOSTS_NAMED_PER_CAUSE)
        .map(|(word, _)| word.as_str())
        .collect();
    let mut text = shown.join(", ");
    let left: usize = named
        .iter()
        .skip(HOSTS_NAMED_PER_CAUSE)
        .map(|(_, n)| n)
        .sum();
    if left > 0 {
        let _ = write!(text, " and {}", count(left, "more host", "more hosts"));
    }
    text
}

/// `cloud:a.b.c.d` split into `cloud:a.b.c.` and `d`; `None` for any other form.
fn ipv4_prefix(host: &str) -> Option<(String, u8)> {
    let (cloud, address) = host.split_once(':')?;
    cloud.parse::<u64>().ok()?;
    let octets = address.parse::<std::net::Ipv4Addr>().ok()?.octets();
    let [a, b, c, d] = octets;
    Some((format!("{cloud}:{a}.{b}.{c}."), d))
}

/// What a failed host's log says went wrong, without what differs from host to host while
/// meaning the same: timestamps, sizes, speeds and percentages. A file's progress lines
/// count only by their last (the file's final state and JOB's detail); other lines count
/// once each. Hosts whose causes are equal failed the same way.
fn cause(log: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut files: Vec<&str> = Vec::new();
    for raw in log.lines() {
        let line = plan_bkjob::file_log::FileLogLine::parse(raw);
        let text = match line.name {
            Some(name) => {
                let state = [line.status_desc, line.detail]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ");
                let text = format!("{name}: {state}");
                if let Some(i) = files.iter().position(|f| *f == name) {
                    files.remove(i);
                    lines.retain(|l| !l.starts_with(&format!("{name}: ")));
                }
                files.push(name);
                text
            }
            None => plan_bkjob::file_log::without_time(raw).trim().to_owned(),
        };
        if !text.is_empty() && !lines.contains(&text) {
            lines.push(text);
        }
    }
    lines.join("\n")
}

/// ` (10 of them in batches not sent)` for a push whose later batches were never submitted:
/// its hosts total counts them, its ok and failed hosts only the batches that ran.
fn unsent_hosts(r: &PushReport) -> String {
    let unsent: usize = r
        .batches
        .iter()
        .filter(|b| b.status == PushStatus::NotStarted)
        .map(|b| b.hosts_total)
        .sum();
    if unsent == 0 {
        return String::new();
    }
    format!(" ({unsent} of them in batches not sent)")
}

fn failure_problem(plan: &Plan, push: &Push, r: &PushReport) -> Problem {
    let job = r
        .job_instance_id
        .map(|id| format!(" (JOB instance {id})"))
        .unwrap_or_default();
    let message = match r.status {
        PushStatus::Failed if !r.failed_hosts.is_empty() => format!(
            "push `{}` failed on {} of {} hosts{}{job}",
            r.name,
            r.failed_hosts.len(),
            r.hosts_total,
            unsent_hosts(r)
        ),
        PushStatus::Rejected => format!("push `{}` was refused by JOB{job}", r.name),
        PushStatus::OutcomeUnknown => format!(
            "push `{}`: the submission's answer was lost; JOB may or may not have created the job",
            r.name
        ),
        PushStatus::TimedOut => format!("push `{}` timed out and was terminated{job}", r.name),
        PushStatus::Interrupted => format!("push `{}` was interrupted{job}", r.name),
        _ => format!("push `{}` {}{job}", r.name, r.status.label()),
    };
    let mut help = String::new();
    // Hosts that failed the same way are listed together (every host is named, up to a
    // limit): a thousand identical failures are one cause, not a thousand.
    let mut groups: Vec<FailureGroup<'_>> = Vec::new();
    for h in &r.failed_hosts {
        let log = h.log_excerpt.as_deref().map(cause).unwrap_or_default();
        match groups
            .iter_mut()
            .find(|g| g.0 == h.status && g.2 == h.error_code && g.3 == log)
        {
            Some(g) => g.4.push(h),
            None => groups.push((h.status, &h.label, h.error_code, log, vec![h])),
        }
    }
    for (status, label, error_code, log, hosts) in &groups {
        let names = named_hosts(hosts);
        let _ = write!(
            help,
            "{} {names}: status {} {label}",
            if hosts.len() == 1 { "host" } else { "hosts" },
            status.code()
        );
        if let Some(code) = error_code {
            let _ = write!(help, ", error code {code}");
        }
        help.push('\n');
        for line in log.lines() {
            let _ = writeln!(help, "  | {line}");
        }
    }
    if let Some(error) = worded_error(r) {
        let _ = writeln!(help, "{error}");
    }
    if let Some(advice) = r.error_code.and_then(plan_bkjob::ApiError::advice_for_code) {
        let _ = writeln!(help, "{advice}");
    }
    if r.status == PushStatus::OutcomeUnknown {
        let _ = writeln!(
            help,
            "look for task `{}` in JOB's job history before running this push again",
            plan.task_name(push)
        );
    }
    let label = match r.status {
        PushStatus::Rejected => "JOB refused this push",
        PushStatus::TimedOut => "this push timed out",
        _ => "this push failed",
    };
    Problem::error("plan::apply::push_failed", message)
        .with_label(push.name.span, label)
        .with_help(help.trim_end().to_owned())
}

/// A push's error with its hint worded after it.
fn worded_error(report: &PushReport) -> Option<String> {
    let error = report.error.as_deref()?;
    Some(match report.hint {
        Some(hint) => format!("{error}{}", hint_words(hint)),
        None => error.to_owned(),
    })
}

/// How the CLI words a [`Hint`]: the flag that does it, joined to the text it follows. No
/// fallback arm: a new hint must be worded here before the CLI compiles.
fn hint_words(hint: Hint) -> &'static str {
    match hint {
        Hint::ResumeFollowsJob => "; `--resume` follows it again",
        Hint::CheckThenResumeFollowsJob => {
            " (check it there; `--resume` follows it again, up to its deadline)"
        }
        Hint::ResumeStartsJob => ", and `--resume` starts it",
        Hint::ResumeLastRun => ". `plan apply --resume` continues the last run instead",
        Hint::ResumeResubmitsLostJob => "; `--resume` submits this push again",
        Hint::ResumeConfirmsPush => {
            "; `--resume --confirm` with this push's name approves it and goes on"
        }
    }
}

/// An event as the CLI shows it (on a terminal and in NDJSON): every hint worded into the
/// text it follows.
pub(super) fn worded(event: Event) -> Event {
    match event {
        Event::Warning {
            message,
            hint: Some(hint),
        } => Event::Warning {
            message: format!("{message}{}", hint_words(hint)),
            hint: None,
        },
        Event::PushFinished { report } => Event::PushFinished {
            report: worded_push(report),
        },
        Event::RunFinished { report } => Event::RunFinished {
            report: worded_run(report),
        },
        other => other,
    }
}

/// A run report as the CLI shows it: each push's hint worded into its error.
pub(super) fn worded_run(mut report: RunReport) -> RunReport {
    report.pushes = report.pushes.into_iter().map(worded_push).collect();
    report
}

fn worded_push(mut report: PushReport) -> PushReport {
    report.error = worded_error(&report);
    report.hint = None;
    report
}

/// What the user can do about a run that could not start.
pub(super) fn start_error_help(error: &StartError) -> Option<String> {
    match error {
        StartError::Lock(plan_executor::LockError::Held { .. }) => Some(
            "wait for that apply to finish: the lock is the operating system's, held while its process runs and gone with it".into(),
        ),
        StartError::DamagedJournal { journal, .. } => Some(format!(
            "restore those lines from a copy if there is one; otherwise look this run's tasks up in JOB's job history (and let any job of it still running there finish), then rename `{}` to `{}.abandoned` and run without `--resume` (pushes that already succeeded run again)",
            journal.display(),
            journal.display()
        )),
        StartError::UnfinishedRun {
            journal, in_doubt, ..
        } if !in_doubt.is_empty() => Some(format!(
            "JOB may have created jobs for {} although no answer was recorded, and `--resume` does not continue a run with a submission in doubt: look {} up in JOB's job history (and let any job of this run still running there finish), then rename `{}` to `{}.abandoned` and run again",
            in_doubt
                .iter()
                .map(|p| format!("`{}`", p.name))
                .collect::<Vec<_>>()
                .join(", "),
            in_doubt
                .iter()
                .map(|p| format!(
                    "task `{}` (sent {})",
                    p.task_name.as_deref().unwrap_or("?"),
                    p.at
                ))
                .collect::<Vec<_>>()
                .join(", "),
            journal.display(),
            journal.display()
        )),
        StartError::UnfinishedRun { journal, .. } => Some(format!(
            "run the same command with `--resume` to follow those jobs and finish the run; to abandon the run instead (after checking JOB), rename `{}` to `{}.abandoned`",
            journal.display(),
            journal.display()
        )),
        StartError::NothingToResume {
            job_cannot_list: true,
            ..
        } => Some(
            "resume on the machine that holds the run's journal (or copy its state dir's `runs/<plan>/` here, or point `--state-dir` at it); to start a new run instead, check JOB's job history for jobs of this plan still running, then run without `--resume`".into(),
        ),
        StartError::NothingToResume { .. } => {
            Some("run without `--resume` to start a new run".into())
        }
        StartError::OtherRunActive { .. } => Some(
            "wait for that run to finish, or resume it where it runs; if it is abandoned (its machine is gone), `plan apply --resume` on any machine continues the newest run from JOB, and `--force` starts this one beside it".into(),
        ),
        StartError::JobListRefused { .. } => Some(
            "grant the app the permission to view the business's job history (JOB's `get_job_instance_list`), or pass `--force` to apply without asking JOB about other runs (recorded in the journal)".into(),
        ),
        StartError::PlanChanged { .. } => Some(
            "undo the changes to resume, or run without `--resume` to start a new run of the changed plan".into(),
        ),
        StartError::InDoubt {
            pushes, journal, ..
        } => Some(in_doubt_help(pushes, journal)),
        _ => None,
    }
}

/// `--resume` refused a run with submissions in doubt: how to go on.
fn in_doubt_help(pushes: &[plan_executor::InDoubtPush], journal: &std::path::Path) -> String {
    let names: Vec<String> = pushes
        .iter()
        .map(|p| {
            format!(
                "`{}` (task name `{}`, sent {})",
                p.name,
                p.task_name.as_deref().unwrap_or("?"),
                p.at
            )
        })
        .collect();
    if pushes.iter().all(|p| p.unstarted) {
        // Two-phase (v3): whatever JOB created was never started.
        return format!(
            "JOB may have created these jobs although no answer was recorded: {}. They were sent with start_task=false, so such a job waits unstarted in JOB's history and transferred nothing; `plan` still does not submit again on its own, since that would leave two jobs for one push. Rename `{}` to `{}.abandoned` and run without `--resume` (pushes that already succeeded run again); an unstarted job left in JOB never runs",
            names.join("; "),
            journal.display(),
            journal.display()
        );
    }
    format!(
        "JOB may have created these jobs although no answer was recorded: {}. Look them up in JOB's job history; a re-submission would push the files twice, so `plan` does not do it on its own. Once checked, rename `{}` to `{}.abandoned` and run without `--resume` (pushes that already succeeded run again)",
        names.join("; "),
        journal.display(),
        journal.display()
    )
}

fn hosts_of(push: &Push) -> String {
    let t = &push.target.hosts;
    let mut parts = vec![count(t.ips.len(), "host", "hosts")];
    if !t.dynamic_groups.is_empty() {
        parts.push(count(
            t.dynamic_groups.len(),
            "dynamic group",
            "dynamic groups",
        ));
    }
    if !t.topo_nodes.is_empty() {
        parts.push(count(t.topo_nodes.len(), "topo node", "topo nodes"));
    }
    parts.join(" + ")
}

/// Bytes a second for people: `512 B/s`, `1.5 KB/s`, `12.0 MB/s` (powers of 1024, as JOB's
/// logs count them).
pub(super) fn human_rate(bytes_per_second: u64) -> String {
    const UNITS: [&str; 4] = ["KB/s", "MB/s", "GB/s", "TB/s"];
    if bytes_per_second < 1024 {
        return format!("{bytes_per_second} B/s");
    }
    let mut value = bytes_per_second as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

pub(super) fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_worded_in_powers_of_1024() {
        assert_eq!(human_rate(512), "512 B/s");
        assert_eq!(human_rate(1536), "1.5 KB/s");
        assert_eq!(human_rate(12 * 1024 * 1024), "12.0 MB/s");
        assert_eq!(human_rate(u64::MAX), "16777216.0 TB/s");
    }

    fn failed_host(host: &str, log: &str) -> plan_executor::HostResult {
        plan_executor::HostResult {
            host: host.into(),
            host_id: None,
            status: plan_bkjob::HostStatus::from_code(320),
            label: "File pull failed".into(),
            error_code: Some(104),
            log_excerpt: Some(log.into()),
        }
    }

    /// Two hosts whose logs differ only in times, speeds and percentages failed the same
    /// way: one block; a third with another detail is a block of its own.
    #[test]
    fn failed_hosts_are_grouped_by_cause_not_by_progress() {
        let line = |time: &str, progress: &str, detail: &str| {
            format!(
                "[2026-11-28 17:45:{time}] FileName: /data/a.tgz FileSize: 4.0 MB Status: 5 StatusDesc: failed Speed: 1,024 KB/s Progress: {progress} Detail: {detail}"
            )
        };
        let running = "[2026-11-28 17:45:20] FileName: /data/a.tgz FileSize: 4.0 MB Status: 3 StatusDesc: downloading Speed: 2,048 KB/s Progress: 10%";
        let a = format!("{running}\n{}", line("24", "45%", "Transfer failed"));
        let b = line("25", "80%", "Transfer failed");
        let c = line("26", "45%", "No space left on device");
        assert_eq!(cause(&a), "/data/a.tgz: failed: Transfer failed");
        assert_eq!(cause(&a), cause(&b));
        assert_eq!(
            cause("[2026-11-28 17:45:24] agent gone\nagent gone"),
            "agent gone"
        );
        let (plan, _) = crate::render::tests::load(
            "[plan]\nname = \"p\"\nbk_biz_id = 1\naccount = \"root\"\n[[push]]\nname = \"a\"\nfrom = { hosts = \"10.0.0.1\", files = [\"/data/a.tgz\"] }\nto = { hosts = [\"10.0.1.1\", \"10.0.1.2\", \"10.0.1.3\"], path = \"/data/\" }\n",
        );
        let plan = plan.plan;
        // Read as a journal reader would: the fields this test needs, the rest defaulted.
        let mut report: PushReport = serde_json::from_value(serde_json::json!({
            "name": "a", "stage": 1, "status": "failed", "job_instance_id": 7, "attempts": 1,
            "hosts_total": 3, "hosts_ok": 0, "failed_hosts": [], "duration_ms": 0,
        }))
        .expect("a push report");
        report.failed_hosts = vec![
            failed_host("0:10.0.1.1", &a),
            failed_host("0:10.0.1.2", &b),
            failed_host("0:10.0.1.3", &c),
        ];
        let help = |report: &PushReport| {
            let push = plan.push("a").expect("push");
            failure_problem(&plan, push, report)
                .help()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            help(&report),
            "hosts 0:10.0.1.[1:2]: status 320 File pull failed, error code 104\n  | /data/a.tgz: failed: Transfer failed\nhost 0:10.0.1.3: status 320 File pull failed, error code 104\n  | /data/a.tgz: failed: No space left on device"
        );
        // 250 hosts alike: their ranges, the first 20 words, and what is left counted.
        report.failed_hosts = (0..250)
            .map(|i| failed_host(&format!("0:10.0.{}.{}", i % 25, i / 25 * 2), &b))
            .collect();
        let many = help(&report);
        assert_eq!(many.lines().count(), 2, "{many}");
        assert!(many.starts_with("hosts 0:10.0.0.0, 0:10.0.0.2, "), "{many}");
        assert!(many.contains(" and 230 more hosts: status 320"), "{many}");
        let hosts: Vec<plan_executor::HostResult> = [
            "0:10.0.2.3",
            "0:10.0.2.1",
            "0:10.0.2.2",
            "0:10.0.2.9",
            "0:[fd00::1]",
            "host_id:7",
            "2:10.0.2.4",
            "0:10.0.2.255",
            "0:10.0.2.254",
        ]
        .iter()
        .map(|h| failed_host(h, &b))
        .collect();
        let refs: Vec<&plan_executor::HostResult> = hosts.iter().collect();
        assert_eq!(
            named_hosts(&refs),
            "0:10.0.2.[1:3], 0:10.0.2.9, 0:10.0.2.[254:255], 0:[fd00::1], host_id:7, 2:10.0.2.4"
        );
    }

    fn journal() -> std::path::PathBuf {
        std::path::PathBuf::from("/state/runs/p/r1.jsonl")
    }

    fn in_doubt(unstarted: bool) -> plan_executor::InDoubtPush {
        plan_executor::InDoubtPush {
            name: "to-relays".into(),
            task_name: Some("rel/to-relays".into()),
            at: "2026-01-01T00:00:00Z".into(),
            unstarted,
        }
    }

    /// The executor says what continuing a run would do; the CLI names the flag that does it.
    #[test]
    fn start_errors_are_helped_with_the_cli_flags() {
        let help = |e: StartError| start_error_help(&e).unwrap_or_default();
        let unfinished = |in_doubt| StartError::UnfinishedRun {
            plan: "p".into(),
            run_id: "r1".into(),
            journal: journal(),
            pushes: vec!["to-relays".into()],
            in_doubt,
        };
        assert!(help(unfinished(vec![])).starts_with("run the same command with `--resume`"));
        let doubt = help(unfinished(vec![in_doubt(false)]));
        assert!(doubt.contains("`--resume` does not continue a run with a submission in doubt"));
        assert!(doubt.contains("task `rel/to-relays`"), "{doubt}");
        let refused = help(StartError::InDoubt {
            plan: "p".into(),
            run_id: "r1".into(),
            journal: journal(),
            pushes: vec![in_doubt(false)],
        });
        assert!(refused.contains("job history"), "{refused}");
        assert!(
            refused.contains("`/state/runs/p/r1.jsonl.abandoned`"),
            "{refused}"
        );
        let unstarted = help(StartError::InDoubt {
            plan: "p".into(),
            run_id: "r1".into(),
            journal: journal(),
            pushes: vec![in_doubt(true)],
        });
        assert!(unstarted.contains("waits unstarted"), "{unstarted}");
        let damaged = help(StartError::DamagedJournal {
            plan: "p".into(),
            run_id: "r1".into(),
            journal: journal(),
            lines: vec![3],
        });
        assert!(damaged.contains(".abandoned") && damaged.contains("without `--resume`"));
        assert_eq!(
            help(StartError::NothingToResume {
                plan: "p".into(),
                last_run: None,
                job_cannot_list: false,
            }),
            "run without `--resume` to start a new run"
        );
    }

    #[test]
    fn hints_are_worded_after_the_text_they_follow() {
        let mut report = PushReport {
            name: "a".into(),
            stage: 1,
            status: PushStatus::Failed,
            job_instance_id: Some(7),
            attempts: 1,
            hosts_total: 0,
            hosts_ok: 0,
            failed_hosts: vec![],
            succeeded_hosts: vec![],
            succeeded_hosts_unlisted: 0,
            duration: Duration::ZERO,
            error: Some("JOB instance 7 was not seen finishing".into()),
            error_code: None,
            hint: Some(Hint::ResumeFollowsJob),
            batches: Vec::new(),
            waiting: None,
            verification: None,
            attempt_log: Vec::new(),
        };
        assert_eq!(
            worded_error(&report).as_deref(),
            Some("JOB instance 7 was not seen finishing; `--resume` follows it again")
        );
        report.error = Some("JOB instance 7 stayed in status 1 (not started) 60s after START was accepted, twice: it waits unstarted in JOB".into());
        report.hint = Some(Hint::CheckThenResumeFollowsJob);
        let Event::PushFinished { report: shown } = worded(Event::PushFinished { report }) else {
            panic!("not a push_finished");
        };
        assert_eq!(shown.hint, None);
        assert_eq!(
            shown.error.as_deref(),
            Some(
                "JOB instance 7 stayed in status 1 (not started) 60s after START was accepted, twice: it waits unstarted in JOB (check it there; `--resume` follows it again, up to its deadline)"
            )
        );
        let warning = worded(Event::Warning {
            message: "the last run of plan `p` (`r1`) did not complete (0 of 1 pushes succeeded); starting a new run".into(),
            hint: Some(Hint::ResumeLastRun),
        });
        assert_eq!(
            serde_json::to_string(&warning).expect("json"),
            r#"{"event":"warning","message":"the last run of plan `p` (`r1`) did not complete (0 of 1 pushes succeeded); starting a new run. `plan apply --resume` continues the last run instead"}"#
        );
    }
}
