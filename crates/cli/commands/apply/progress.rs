//! Live progress: indicatif bars on a terminal (one line per running push: stage, name, JOB
//! instance id, hosts done/total, elapsed), plain lines otherwise, NDJSON with `--format json`.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use plan_executor::{Event, Interruption, PushReport, PushStatus, TerminateReason};
use tokio::sync::mpsc::UnboundedReceiver;

use super::report::{Out, human_duration, human_rate, worded};

pub(super) async fn render(mut rx: UnboundedReceiver<Event>, out: Out) {
    if out.json {
        let mut run_id: Option<String> = None;
        while let Some(event) = rx.recv().await {
            if let Event::RunStarted { run_id: id, .. } = &event {
                run_id = Some(id.clone());
            }
            out.json_line_of_run(&worded(event), run_id.as_deref());
        }
        return;
    }
    let mut view = View::new(out);
    while let Some(event) = rx.recv().await {
        view.show(&worded(event));
    }
    view.clear();
}

/// The bars on screen, for a question asked on the terminal meanwhile.
static BARS: std::sync::Mutex<Option<MultiProgress>> = std::sync::Mutex::new(None);

/// Runs `ask` (a question on the terminal) with the bars cleared and held still, so neither
/// overwrites the other; redrawn after.
pub(super) fn with_bars_hidden<R>(ask: impl FnOnce() -> R) -> R {
    let bars = BARS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    match bars {
        Some(multi) => multi.suspend(ask),
        None => ask(),
    }
}

struct View {
    out: Out,
    multi: Option<MultiProgress>,
    bars: BTreeMap<String, ProgressBar>,
    stages: BTreeMap<String, usize>,
    jobs: BTreeMap<String, i64>,
}

impl View {
    fn new(out: Out) -> Self {
        let multi = out.printer.progress.then(MultiProgress::new);
        *BARS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = multi.clone();
        View {
            multi,
            out,
            bars: BTreeMap::new(),
            stages: BTreeMap::new(),
            jobs: BTreeMap::new(),
        }
    }

    /// A line above the bars (or on stderr).
    fn line(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => self.out.stderr(text),
        }
    }

    fn bar(&mut self, push: &str, stage: usize) -> Option<&ProgressBar> {
        let multi = self.multi.as_ref()?;
        if !self.bars.contains_key(push) {
            // Coloured like the diagnostics: only when they are.
            let template = if self.out.stderr_paint.0 {
                "{spinner:.cyan} {prefix:.bold} {wide_msg} {elapsed:>5}"
            } else {
                "{spinner} {prefix} {wide_msg} {elapsed:>5}"
            };
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let bar = multi.add(ProgressBar::new_spinner().with_style(style));
            bar.set_prefix(format!("stage {stage}  {push}"));
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bars.insert(push.to_owned(), bar);
        }
        self.bars.get(push)
    }

    /// One event, by its kind; kinds with nothing to show are passed over.
    fn show(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                run_id,
                resumed: true,
                already_done,
                reattached,
                ..
            } => self.run_resumed(run_id, already_done, reattached),
            Event::Warning { message, .. } => {
                let warning = self.out.stderr_paint.notice("warning:");
                self.line(&format!("{warning} {message}"));
            }
            Event::PushSubmitting {
                push,
                stage,
                hosts,
                batch: Some(batch),
                ..
            } => self.batch_submitting(push, *stage, *hosts, *batch),
            Event::PushSubmitting {
                push,
                stage,
                attempt,
                hosts,
                batch: None,
            } => self.push_submitting(push, *stage, *attempt, *hosts),
            Event::PushSubmitted {
                push,
                stage,
                job_instance_id,
                ..
            } => self.push_submitted(push, *stage, *job_instance_id),
            Event::PushReattached {
                push,
                stage,
                job_instance_id,
            } => self.push_reattached(push, *stage, *job_instance_id),
            Event::PushProgress {
                push,
                stage,
                job_instance_id,
                job_status,
                hosts_done,
                hosts_total,
                batch,
                waiting,
                bytes_per_second,
            } => {
                let status = job_status.label();
                let batch = match batch {
                    Some(b) if *waiting => {
                        // A failed batch paused the job (4); a manual-mode one is done (7).
                        let ended = if matches!(job_status, plan_bkjob::RunStatus::Fail) {
                            "failed"
                        } else {
                            "done"
                        };
                        format!("{b} {ended}, waiting for a confirmation  ")
                    }
                    Some(b) => format!("{b}  "),
                    None => String::new(),
                };
                let mut text = format!(
                    "{batch}JOB {job_instance_id}  {status}  hosts {hosts_done}/{hosts_total}"
                );
                if let Some(bytes) = bytes_per_second {
                    text.push_str(&format!("  {} per host", human_rate(*bytes)));
                }
                self.push_progress(push, *stage, text, bytes_per_second.is_some());
            }
            Event::PushTerminating {
                push,
                job_instance_id,
                reason,
            } => self.push_terminating(push, *job_instance_id, *reason),
            Event::PushRetrying {
                push,
                attempt,
                hosts,
                in_job,
            } => self.push_retrying(push, *attempt, hosts, *in_job),
            Event::PushVerified {
                push, verification, ..
            } => self.push_verified(push, verification),
            Event::PushBatchFinished {
                push,
                batches,
                report,
                ..
            } => self.push_line(
                push,
                &format!(
                    "batch {}/{batches} {} ({}/{} hosts)",
                    report.index,
                    if report.status.is_ok() {
                        "done"
                    } else {
                        "failed"
                    },
                    report.hosts_ok,
                    report.hosts_total
                ),
            ),
            Event::PushAwaitingConfirmation { push, point } => {
                self.push_line(push, &format!("{}, not confirmed", point.describe()));
            }
            Event::PushConfirmed { push, point, by } => self.push_line(
                push,
                &format!("confirmed by {by}: {}", point.question(push)),
            ),
            Event::PushFinished { report } => self.push_finished(report),
            Event::Interrupted { level } => self.interrupted(*level),
            Event::RunStarted { .. } | Event::RunFinished { .. } => {}
            _ => {}
        }
    }

    /// A resumed run says what it skips and which jobs it follows again.
    fn run_resumed(&self, run_id: &str, already_done: &[String], reattached: &[String]) {
        if self.out.printer.quiet {
            return;
        }
        let mut text = format!("resuming run {run_id}");
        if !already_done.is_empty() {
            text.push_str(&format!("; already done: {}", already_done.join(", ")));
        }
        if !reattached.is_empty() {
            text.push_str(&format!(
                "; following jobs already in JOB: {}",
                reattached.join(", ")
            ));
        }
        self.line(&text);
    }

    /// A push's new state: on its bar when there are bars, else as a line unless quiet.
    fn push_state(&mut self, push: &str, stage: usize, on_bar: String, on_line: String) {
        if let Some(bar) = self.bar(push, stage) {
            bar.set_message(on_bar);
        } else if !self.out.printer.quiet {
            self.line(&on_line);
        }
    }

    fn push_submitting(&mut self, push: &str, stage: usize, attempt: u32, hosts: usize) {
        self.stages.insert(push.to_owned(), stage);
        let what = if attempt > 1 {
            format!(
                "retrying (attempt {attempt}) on {hosts} host{}",
                if hosts == 1 { "" } else { "s" }
            )
        } else {
            "submitting".to_owned()
        };
        let on_line = format!("[stage {stage}] {push}: {what}");
        self.push_state(push, stage, what, on_line);
    }

    /// A batch of a push the plan cuts into batches (v2 `rolling`): its first job, or a
    /// retry of its failed hosts (announced by `push_retrying` before it).
    fn batch_submitting(
        &mut self,
        push: &str,
        stage: usize,
        hosts: usize,
        batch: plan_executor::Batch,
    ) {
        self.stages.insert(push.to_owned(), stage);
        let what = format!(
            "submitting {batch} ({hosts} host{})",
            if hosts == 1 { "" } else { "s" }
        );
        let on_line = format!("[stage {stage}] {push}: {what}");
        self.push_state(push, stage, what, on_line);
    }

    fn push_submitted(&mut self, push: &str, stage: usize, job_instance_id: i64) {
        self.jobs.insert(push.to_owned(), job_instance_id);
        self.push_state(
            push,
            stage,
            format!("JOB {job_instance_id}  submitted"),
            format!("[stage {stage}] {push}: submitted, JOB instance {job_instance_id}"),
        );
    }

    fn push_reattached(&mut self, push: &str, stage: usize, job_instance_id: i64) {
        self.jobs.insert(push.to_owned(), job_instance_id);
        self.push_state(
            push,
            stage,
            format!("JOB {job_instance_id}  re-attached"),
            format!(
                "[stage {stage}] {push}: following JOB instance {job_instance_id} from the earlier run"
            ),
        );
    }

    /// Polls are frequent: without bars they are lines only with `--verbose`, or when they
    /// carry a throughput (read from JOB's logs at most a few times a job).
    fn push_progress(&mut self, push: &str, stage: usize, text: String, throughput: bool) {
        let printer = &self.out.printer;
        let as_line = !printer.quiet && (printer.verbose > 0 || throughput);
        if let Some(bar) = self.bar(push, stage) {
            bar.set_message(text);
        } else if as_line {
            self.line(&format!("[stage {stage}] {push}: {text}"));
        }
    }

    /// Shown even when quiet: terminating a job is never silent.
    fn push_terminating(&self, push: &str, job_instance_id: i64, reason: TerminateReason) {
        let why = match reason {
            TerminateReason::Deadline => "past its deadline",
            TerminateReason::Interrupt => "interrupted",
        };
        self.line(&format!(
            "{push}: terminating JOB instance {job_instance_id} ({why})"
        ));
    }

    fn push_retrying(&self, push: &str, attempt: u32, hosts: &[String], in_job: Option<i64>) {
        if self.out.printer.quiet {
            return;
        }
        let stage = self
            .stages
            .get(push)
            .map(|s| format!("[stage {s}] "))
            .unwrap_or_default();
        let them = if hosts.len() == 1 { "it" } else { "them" };
        let how = match in_job {
            Some(job) => format!("runs {them} again inside JOB instance {job}"),
            None => format!("pushes to {them} again"),
        };
        self.line(&format!(
            "{stage}{push}: failed on {}; attempt {attempt} {how}",
            hosts.join(", "),
        ));
    }

    /// The verification's summary, and its per-host table when something differs.
    fn push_verified(&self, push: &str, verification: &plan_executor::Verification) {
        if self.out.printer.quiet && verification.passed() {
            return;
        }
        let stage = self
            .stages
            .get(push)
            .map(|s| format!("[stage {s}] "))
            .unwrap_or_default();
        let mut text = format!("{stage}{push}: {}", verification.summary());
        if !verification.passed() && verification.error.is_none() {
            for row in verification.table().lines() {
                text.push_str("\n    ");
                text.push_str(row);
            }
        }
        self.line(&text);
    }

    /// A line about a push (its batches, its confirmations), unless quiet.
    fn push_line(&self, push: &str, text: &str) {
        if self.out.printer.quiet {
            return;
        }
        let stage = self
            .stages
            .get(push)
            .map(|s| format!("[stage {s}] "))
            .unwrap_or_default();
        self.line(&format!("{stage}{push}: {text}"));
    }

    /// The push's bar goes; a line stays, unless the push was settled by an earlier run.
    fn push_finished(&mut self, report: &PushReport) {
        if let Some(bar) = self.bars.remove(&report.name) {
            bar.finish_and_clear();
        }
        let ran = report.attempts > 0;
        let interesting = ran || !matches!(report.status, PushStatus::AlreadySucceeded);
        if self.out.printer.quiet || !interesting {
            return;
        }
        let job = report
            .job_instance_id
            .map(|id| format!(", JOB instance {id}"))
            .unwrap_or_default();
        let hosts = if report.hosts_total > 0 {
            format!(", {}/{} hosts ok", report.hosts_ok, report.hosts_total)
        } else {
            String::new()
        };
        let duration = if ran {
            format!(" in {}", human_duration(report.duration))
        } else {
            String::new()
        };
        let status = self
            .out
            .stderr_paint
            .status(report.status, report.status.label());
        self.line(&format!(
            "[stage {}] {}: {status}{job}{hosts}{duration}",
            report.stage, report.name
        ));
    }

    fn interrupted(&self, level: Interruption) {
        let text = if level == Interruption::Stop {
            "interrupted: starting nothing new; following running jobs to their end (Ctrl-C again terminates them)"
        } else {
            "interrupted again: terminating running jobs"
        };
        self.line(&self.out.stderr_paint.notice(text));
    }

    fn clear(&mut self) {
        for (_, bar) in std::mem::take(&mut self.bars) {
            bar.finish_and_clear();
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}
