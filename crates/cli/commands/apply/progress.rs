//! Live progress: indicatif bars on a terminal (one line per running push: stage, name, JOB
//! instance id, hosts done/total, elapsed), plain lines otherwise, NDJSON with `--format json`.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use plan_executor::{Event, Interruption, PushStatus, TerminateReason};
use tokio::sync::mpsc::UnboundedReceiver;

use super::report::{Out, human_duration, worded};

pub(super) async fn render(mut rx: UnboundedReceiver<Event>, out: Out) {
    if out.json {
        while let Some(event) = rx.recv().await {
            out.json_line(&worded(event));
        }
        return;
    }
    let mut view = View::new(out);
    while let Some(event) = rx.recv().await {
        view.show(&worded(event));
    }
    view.clear();
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
        View {
            multi: out.printer.progress.then(MultiProgress::new),
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
            let style = ProgressStyle::with_template("{spinner} {prefix} {wide_msg} {elapsed:>5}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let bar = multi.add(ProgressBar::new_spinner().with_style(style));
            bar.set_prefix(format!("stage {stage}  {push}"));
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bars.insert(push.to_owned(), bar);
        }
        self.bars.get(push)
    }

    fn show(&mut self, event: &Event) {
        let quiet = self.out.printer.quiet;
        match event {
            Event::RunStarted {
                run_id,
                resumed,
                already_done,
                reattached,
                ..
            } if *resumed && !quiet => {
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
            Event::Warning { message, .. } => self.line(&format!("warning: {message}")),
            Event::PushSubmitting {
                push,
                stage,
                attempt,
                hosts,
            } => {
                self.stages.insert(push.clone(), *stage);
                let what = if *attempt > 1 {
                    format!(
                        "retrying (attempt {attempt}) on {hosts} host{}",
                        if *hosts == 1 { "" } else { "s" }
                    )
                } else {
                    "submitting".to_owned()
                };
                if let Some(bar) = self.bar(push, *stage) {
                    bar.set_message(what);
                } else if !quiet {
                    self.line(&format!("[stage {stage}] {push}: {what}"));
                }
            }
            Event::PushSubmitted {
                push,
                stage,
                job_instance_id,
                ..
            } => {
                self.jobs.insert(push.clone(), *job_instance_id);
                if let Some(bar) = self.bar(push, *stage) {
                    bar.set_message(format!("JOB {job_instance_id}  submitted"));
                } else if !quiet {
                    self.line(&format!(
                        "[stage {stage}] {push}: submitted, JOB instance {job_instance_id}"
                    ));
                }
            }
            Event::PushReattached {
                push,
                stage,
                job_instance_id,
            } => {
                self.jobs.insert(push.clone(), *job_instance_id);
                if let Some(bar) = self.bar(push, *stage) {
                    bar.set_message(format!("JOB {job_instance_id}  re-attached"));
                } else if !quiet {
                    self.line(&format!(
                        "[stage {stage}] {push}: following JOB instance {job_instance_id} from the earlier run"
                    ));
                }
            }
            Event::PushProgress {
                push,
                stage,
                job_instance_id,
                job_status,
                hosts_done,
                hosts_total,
            } => {
                let status = job_status.label();
                let text =
                    format!("JOB {job_instance_id}  {status}  hosts {hosts_done}/{hosts_total}");
                if let Some(bar) = self.bar(push, *stage) {
                    bar.set_message(text);
                } else if !quiet && self.out.printer.verbose > 0 {
                    self.line(&format!("[stage {stage}] {push}: {text}"));
                }
            }
            Event::PushTerminating {
                push,
                job_instance_id,
                reason,
            } => {
                let why = match reason {
                    TerminateReason::Deadline => "past its deadline",
                    TerminateReason::Interrupt => "interrupted",
                };
                self.line(&format!(
                    "{push}: terminating JOB instance {job_instance_id} ({why})"
                ));
            }
            Event::PushRetrying {
                push,
                attempt,
                hosts,
            } if !quiet => {
                let stage = self
                    .stages
                    .get(push)
                    .map(|s| format!("[stage {s}] "))
                    .unwrap_or_default();
                self.line(&format!(
                    "{stage}{push}: failed on {}; attempt {attempt} pushes to {} again",
                    hosts.join(", "),
                    if hosts.len() == 1 { "it" } else { "them" }
                ));
            }
            Event::PushFinished { report } => {
                if let Some(bar) = self.bars.remove(&report.name) {
                    bar.finish_and_clear();
                }
                let ran = report.attempts > 0;
                let interesting = ran || !matches!(report.status, PushStatus::AlreadySucceeded);
                if quiet || !interesting {
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
                self.line(&format!(
                    "[stage {}] {}: {}{job}{hosts}{duration}",
                    report.stage,
                    report.name,
                    report.status.label()
                ));
            }
            Event::Interrupted { level } => {
                let text = if *level == Interruption::Stop {
                    "interrupted: starting nothing new; following running jobs to their end (Ctrl-C again terminates them)"
                } else {
                    "interrupted again: terminating running jobs"
                };
                self.line(text);
            }
            Event::RunFinished { .. } => {}
            _ => {}
        }
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
