//! The report for a terminal: the summary, a character timeline, the host matrix and the
//! failed hosts' log tails; colours only when asked for (a terminal without `NO_COLOR`).

use std::fmt::Write as _;

use owo_colors::OwoColorize as _;
use plan_executor::HostResult;

use super::model::{Push, Run};
use super::timeline::{Scale, clock, duration};

/// Columns of the timeline's bars.
const BAR_WIDTH: usize = 60;
/// Pushes drawn on the timeline and in the matrix; the rest are counted.
pub(crate) const MAX_PUSHES: usize = 500;
/// Hosts in the matrix (failed ones first when there are more); the rest are counted.
pub(crate) const MAX_HOSTS: usize = 1000;
/// Failed hosts whose log tails are shown.
pub(crate) const MAX_FAILURES: usize = 200;

/// How text is coloured.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn good(self, s: &str) -> String {
        if self.0 {
            s.green().to_string()
        } else {
            s.to_owned()
        }
    }
    fn bad(self, s: &str) -> String {
        if self.0 {
            s.red().to_string()
        } else {
            s.to_owned()
        }
    }
    fn warn(self, s: &str) -> String {
        if self.0 {
            s.yellow().to_string()
        } else {
            s.to_owned()
        }
    }
    fn head(self, s: &str) -> String {
        if self.0 {
            s.bold().to_string()
        } else {
            s.to_owned()
        }
    }
    fn dim(self, s: &str) -> String {
        if self.0 {
            s.dimmed().to_string()
        } else {
            s.to_owned()
        }
    }
    /// A status word in the colour of its meaning.
    fn status(self, s: &str) -> String {
        match tone(s) {
            Tone::Good => self.good(s),
            Tone::Bad => self.bad(s),
            Tone::Warn => self.warn(s),
            Tone::Plain => s.to_owned(),
        }
    }
}

/// What a status word means, for colours and CSS classes alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    Good,
    Bad,
    Warn,
    Plain,
}

impl Tone {
    pub(crate) fn class(self) -> &'static str {
        match self {
            Tone::Good => "good",
            Tone::Bad => "bad",
            Tone::Warn => "warn",
            Tone::Plain => "plain",
        }
    }
}

/// The tone of a push status or run outcome word.
pub(crate) fn tone(word: &str) -> Tone {
    match word {
        "succeeded" | "already done" | "up to date" => Tone::Good,
        "failed" | "rejected" | "outcome unknown" | "timed out" | "journal write failed" => {
            Tone::Bad
        }
        "interrupted"
        | "unfinished"
        | "blocked"
        | "not started"
        | "awaiting confirmation"
        | "waiting at gate"
        | "waiting for confirmation" => Tone::Warn,
        _ => Tone::Plain,
    }
}

/// The tone of a host's result.
pub(crate) fn host_tone(host: &HostResult) -> Tone {
    if host.is_success() {
        Tone::Good
    } else if host.status.is_finished() {
        Tone::Bad
    } else {
        Tone::Warn
    }
}

/// A host's label as JOB words it (its status number's label when the journal has none).
pub(crate) fn host_label(host: &HostResult) -> String {
    if host.label.is_empty() {
        host.status.label().to_owned()
    } else {
        host.label.clone()
    }
}

pub(crate) fn render(run: &Run, colour: bool) -> String {
    let paint = Paint(colour);
    let mut out = String::new();
    summary(&mut out, run, paint);
    timeline(&mut out, run, paint);
    matrix(&mut out, run, paint);
    failures(&mut out, run, paint);
    notes(&mut out, run, paint);
    out
}

fn summary(out: &mut String, run: &Run, paint: Paint) {
    let outcome = run.outcome();
    let _ = writeln!(
        out,
        "{} {} of plan {}: {}",
        paint.head("Run"),
        run.run_id,
        paint.head(&run.plan),
        paint.status(&outcome)
    );
    for (label, value) in super::markdown::summary_rows(run) {
        let _ = writeln!(out, "  {label:<10} {value}");
    }
}

fn timeline(out: &mut String, run: &Run, paint: Paint) {
    let body = timeline_body(run, paint);
    if !body.is_empty() {
        let _ = write!(out, "\n{}\n{body}", paint.head("Timeline"));
    }
}

/// The timeline without colours (the Markdown report's code block).
pub(crate) fn render_timeline(run: &Run) -> String {
    timeline_body(run, Paint(false))
}

fn timeline_body(run: &Run, paint: Paint) -> String {
    let mut out = String::new();
    let Some(scale) = Scale::new(run, BAR_WIDTH as f64) else {
        return out;
    };
    let _ = writeln!(
        out,
        "  {}",
        paint.dim("· queued  = running  # retry running  ┊ not running  ✓ ✗ ! end")
    );
    let width = name_width(run);
    let mut stage = None;
    for push in run.pushes.iter().take(MAX_PUSHES) {
        if push.stage.is_some() && push.stage != stage {
            stage = push.stage;
            let _ = writeln!(
                out,
                "  {}",
                paint.dim(&format!("stage {}", push.stage.unwrap_or(0)))
            );
        }
        let status = push.status_label();
        let _ = writeln!(
            out,
            "  {:<width$} |{}| {}{}",
            push.name,
            bar(push, &scale),
            paint.status(&status),
            attempts_note(push)
        );
        for line in batch_lines(push) {
            let _ = writeln!(out, "  {:<width$}  {}", "", paint.dim(&line));
        }
        for mark in &push.marks {
            let at = mark
                .at
                .map(|t| format!("+{} ", duration(scale.offset(t))))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<width$}  {}",
                "",
                paint.dim(&format!("{at}{}", mark.text))
            );
        }
    }
    more(&mut out, run.pushes.len(), MAX_PUSHES, "pushes");
    let _ = writeln!(
        out,
        "  {:<width$}  0{:>w$}",
        "",
        duration(scale.offset(scale.end)),
        w = BAR_WIDTH - 1
    );
    for mark in &run.marks {
        let at = mark
            .at
            .map(|t| format!("+{} ", duration(scale.offset(t))))
            .unwrap_or_default();
        let _ = writeln!(out, "  {}", paint.dim(&format!("{at}{}", mark.text)));
    }
    for (i, segment) in run.segments.iter().enumerate() {
        if let (Some("interrupted"), Some(ended)) = (segment.outcome.as_deref(), segment.ended) {
            let resumed = run.segments.get(i + 1).and_then(|s| s.started);
            let _ = writeln!(
                out,
                "  {} at +{}{}",
                paint.warn("interrupted"),
                duration(scale.offset(ended)),
                resumed.map_or_else(
                    || ", not resumed".to_owned(),
                    |t| format!(", resumed at +{}", duration(scale.offset(t)))
                )
            );
        }
    }
    out
}

/// One push's row of characters.
fn bar(push: &Push, scale: &Scale) -> String {
    let mut cells = vec![' '; BAR_WIDTH];
    let column = |x: f64| (x.floor().max(0.0) as usize).min(BAR_WIDTH - 1);
    for b in &scale.breaks {
        for c in &mut cells[column(b.x0)..=column(b.x1 - 0.01)] {
            *c = '┊';
        }
    }
    for (i, a) in push.attempts.iter().enumerate() {
        let running_from = a.running_from();
        if let (Some(from), Some(to)) = (a.intent, running_from.or(a.finished)) {
            cells[column(scale.x(from))..=column(scale.x(to))].fill('·');
        }
        if let Some(from) = running_from {
            let to = a.finished.map_or(scale.end, |t| t.max(from));
            let c = if push.is_retry(i) { '#' } else { '=' };
            cells[column(scale.x(from))..=column(scale.x(to))].fill(c);
        }
    }
    if let Some(at) = push
        .finished
        .or_else(|| push.attempts.last().and_then(|a| a.finished))
    {
        cells[column(scale.x(at))] = match tone(&push.status_label()) {
            Tone::Good => '✓',
            Tone::Bad => '✗',
            _ => '!',
        };
    }
    cells.into_iter().collect()
}

/// ` (2 attempts: 1 retry)` when a push ran more than once; ` (4 batches)` or ` (4 batches,
/// 1 retry)` for a push the plan cut into batches, whose batches' jobs are not attempts.
fn attempts_note(push: &Push) -> String {
    let batches = push
        .attempts
        .iter()
        .filter_map(|a| a.batch.map(|(_, n)| n))
        .max();
    let retries = match push.retries() {
        0 => None,
        1 => Some("1 retry".to_owned()),
        n => Some(format!("{n} retries")),
    };
    match (batches, retries) {
        (Some(n), None) => format!(" ({n} batches)"),
        (Some(n), Some(retries)) => format!(" ({n} batches, {retries})"),
        (None, Some(retries)) => format!(" ({} attempts: {retries})", push.attempts.len()),
        (None, None) => String::new(),
    }
}

/// Under a push the plan cut into batches, one line per batch sent: how its last job
/// ended, the job, its hosts ok/failed, and its retries.
fn batch_lines(push: &Push) -> Vec<String> {
    push.batches()
        .into_iter()
        .map(|batch| {
            let last = batch.last;
            let outcome = if last.finished.is_none() {
                "unfinished"
            } else if last.succeeded() {
                "succeeded"
            } else {
                "failed"
            };
            let failed = batch.hosts.values().filter(|ok| !**ok).count();
            let job = last
                .job
                .map_or_else(|| "no job".to_owned(), |id| format!("job {id}"));
            let retried = match batch.jobs {
                1 => String::new(),
                2 => ", after 1 retry".to_owned(),
                n => format!(", after {} retries", n - 1),
            };
            format!(
                "{} {outcome}: {job}, {}/{failed} hosts ok/failed{retried}",
                last.batch_label().unwrap_or_default(),
                batch.hosts.len() - failed
            )
        })
        .collect()
}

fn matrix(out: &mut String, run: &Run, paint: Paint) {
    let hosts = matrix_hosts(run);
    if hosts.is_empty() {
        return;
    }
    let pushes: Vec<&Push> = run.pushes.iter().take(MAX_PUSHES).collect();
    let _ = writeln!(out, "\n{}", paint.head("Hosts"));
    let host_width = hosts
        .iter()
        .map(|(_, d)| d.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let widths: Vec<usize> = pushes
        .iter()
        .map(|p| {
            let labels = hosts
                .iter()
                .filter_map(|(k, _)| p.host(k))
                .map(|h| host_label(h).chars().count());
            labels.chain([p.name.chars().count(), 1]).max().unwrap_or(1)
        })
        .collect();
    let mut header = format!("  {:<host_width$}", "host");
    for (p, w) in pushes.iter().zip(&widths) {
        let _ = write!(header, "  {:<w$}", p.name);
    }
    let _ = writeln!(out, "{}", header.trim_end());
    for (key, display) in &hosts {
        let mut row = format!("  {display:<host_width$}");
        for (p, w) in pushes.iter().zip(&widths) {
            let cell = match p.host(key) {
                Some(h) => {
                    let label = format!("{:<w$}", host_label(h));
                    match host_tone(h) {
                        Tone::Good => paint.good(&label),
                        Tone::Bad => paint.bad(&label),
                        _ => paint.warn(&label),
                    }
                }
                None => format!("{:<w$}", "-"),
            };
            let _ = write!(row, "  {cell}");
        }
        let _ = writeln!(out, "{}", row.trim_end());
    }
    more(out, run.hosts().len(), MAX_HOSTS, "hosts");
}

/// The matrix's hosts (key, as displayed): every host up to [`MAX_HOSTS`], failed ones first
/// when there are more.
pub(crate) fn matrix_hosts(run: &Run) -> Vec<(String, String)> {
    let mut keys = run.hosts();
    if keys.len() > MAX_HOSTS {
        let failed = run.failed_host_keys();
        keys.sort_by_key(|k| !failed.contains(k));
        keys.truncate(MAX_HOSTS);
    }
    let mut displays: std::collections::HashMap<String, String> =
        keys.iter().map(|k| (k.clone(), String::new())).collect();
    for host in run.pushes.iter().flat_map(|p| &p.hosts) {
        if let Some(display) = displays.get_mut(&host.key())
            && display.is_empty()
        {
            *display = host.display();
        }
    }
    keys.into_iter()
        .map(|k| {
            let display = displays.remove(&k).unwrap_or_default();
            (k, display)
        })
        .collect()
}

fn failures(out: &mut String, run: &Run, paint: Paint) {
    let failed: Vec<(&Push, &HostResult)> = failed_hosts(run).collect();
    if failed.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{}", paint.head("Failed hosts"));
    for (push, host) in failed.iter().take(MAX_FAILURES) {
        let _ = writeln!(
            out,
            "  {} on {}: {}",
            push.name,
            host.display(),
            paint.bad(&host_detail(host))
        );
        for line in host.log_excerpt.iter().flat_map(|l| l.lines()) {
            let _ = writeln!(out, "    {}", paint.dim(&format!("| {line}")));
        }
    }
    more(out, failed.len(), MAX_FAILURES, "failed hosts");
}

/// Every push's hosts whose latest result is not a success.
pub(crate) fn failed_hosts(run: &Run) -> impl Iterator<Item = (&Push, &HostResult)> {
    run.pushes
        .iter()
        .flat_map(|p| p.failed_hosts().map(move |h| (p, h)))
}

/// `Agent abnormal (status 310, GSE error 1030)`.
pub(crate) fn host_detail(host: &HostResult) -> String {
    let code = host
        .error_code
        .map_or(String::new(), |c| format!(", GSE error {c}"));
    format!("{} (status {}{code})", host_label(host), host.status.code())
}

fn notes(out: &mut String, run: &Run, paint: Paint) {
    if run.notes.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{}", paint.head("Notes on the journal"));
    for note in &run.notes {
        let _ = writeln!(out, "  {}", paint.warn(note));
    }
}

fn more(out: &mut String, total: usize, shown: usize, what: &str) {
    if total > shown {
        let _ = writeln!(out, "  ... and {} more {what}", total - shown);
    }
}

fn name_width(run: &Run) -> usize {
    run.pushes
        .iter()
        .take(MAX_PUSHES)
        .map(|p| p.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 40)
}

/// A time with its offset from the run's start.
pub(crate) fn when(run: &Run, t: Option<super::model::Time>) -> String {
    match (t, run.span()) {
        (Some(t), Some((start, _))) if t != start => {
            format!(
                "{} (+{})",
                clock(t),
                duration((t - start).num_milliseconds())
            )
        }
        (Some(t), _) => clock(t),
        (None, _) => "-".into(),
    }
}
