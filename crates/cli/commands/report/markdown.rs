//! The report as Markdown (a merge-request note, a wiki page): the summary and the host
//! matrix as tables, the timeline as the text report draws it, in a code block.

use std::fmt::Write as _;

use super::model::{Push, Run};
use super::text::{
    MAX_FAILURES, MAX_HOSTS, MAX_PUSHES, failed_hosts, host_detail, host_label, matrix_hosts, when,
};
use super::timeline::duration;
use crate::render::count;

/// The summary's rows (label, value), for every format.
pub(crate) fn summary_rows(run: &Run) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        (
            "plan file",
            format!("{} ({})", or_dash(&run.plan_file), or_dash(&run.api)),
        ),
        (
            "hash",
            run.plan_hash
                .clone()
                .unwrap_or_else(|| "not recorded by the version that ran it".into()),
        ),
        ("run", run.run_id.clone()),
    ];
    for (i, segment) in run.segments.iter().enumerate() {
        let what = if segment.resumed {
            "resumed by"
        } else {
            "operator"
        };
        let mut value = format!(
            "{}@{}, {}",
            or_dash(&segment.operator),
            or_dash(&segment.host),
            when(run, segment.started)
        );
        if let Some(outcome) = &segment.outcome {
            let _ = write!(value, ", {outcome} {}", when(run, segment.ended));
        } else if i + 1 < run.segments.len() {
            value.push_str(", ended without closing the run");
        }
        if !segment.flags.is_empty() {
            let _ = write!(value, " [{}]", segment.flags.join(", "));
        }
        rows.push((what, value));
    }
    if let Some((start, end)) = run.span() {
        rows.push(("started", when(run, Some(start))));
        rows.push((
            "ended",
            format!(
                "{} — {} in all",
                when(run, Some(end)),
                duration((end - start).num_milliseconds())
            ),
        ));
    }
    rows.push(("outcome", run.outcome()));
    let counts: Vec<String> = run
        .counts()
        .into_iter()
        .map(|(label, n)| format!("{n} {label}"))
        .collect();
    rows.push((
        "pushes",
        format!("{} ({})", run.pushes.len(), counts.join(", ")),
    ));
    let hosts = run.hosts();
    let failed = run.failed_host_keys().len();
    rows.push((
        "hosts",
        format!(
            "{} ({} ok everywhere, {failed} failed somewhere)",
            hosts.len(),
            hosts.len() - failed
        ),
    ));
    let retries: usize = run.pushes.iter().map(Push::retries).sum();
    if retries > 0 {
        let pushes = run.pushes.iter().filter(|p| p.retries() > 0).count();
        rows.push((
            "retries",
            format!("{retries} (in {})", count(pushes, "push", "pushes")),
        ));
    }
    let interrupted = run.interruptions().count();
    if interrupted > 0 {
        let times = match interrupted {
            1 => "once".to_owned(),
            n => format!("{n} times"),
        };
        let resumed = if run
            .segments
            .last()
            .is_some_and(|s| s.outcome.as_deref() == Some("interrupted"))
        {
            ", not resumed since"
        } else {
            ", then resumed"
        };
        rows.push(("interrupted", format!("{times}{resumed}")));
    }
    rows
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

pub(crate) fn render(run: &Run) -> String {
    let mut out = format!(
        "## Run {} of plan **{}**: {}\n\n| | |\n|---|---|\n",
        cell(&run.run_id),
        cell(&run.plan),
        run.outcome()
    );
    for (label, value) in summary_rows(run) {
        let _ = writeln!(out, "| {label} | {} |", cell(&value));
    }
    let timeline = super::text::render_timeline(run);
    if !timeline.is_empty() {
        let fence = fence(&timeline);
        let _ = write!(out, "\n### Timeline\n\n{fence}text\n{timeline}{fence}\n");
    }
    matrix(&mut out, run);
    failures(&mut out, run);
    if !run.notes.is_empty() {
        out.push_str("\n### Notes on the journal\n\n");
        for note in &run.notes {
            let _ = writeln!(out, "- {}", cell(note));
        }
    }
    out
}

fn matrix(out: &mut String, run: &Run) {
    let hosts = matrix_hosts(run);
    if hosts.is_empty() {
        return;
    }
    let pushes: Vec<_> = run.pushes.iter().take(MAX_PUSHES).collect();
    out.push_str("\n### Hosts\n\n| host |");
    for p in &pushes {
        let _ = write!(out, " {} |", cell(&p.name));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(pushes.len()));
    out.push('\n');
    for (key, display) in &hosts {
        let _ = write!(out, "| {} |", cell(display));
        for p in &pushes {
            let label = p.host(key).map_or_else(
                || "-".to_owned(),
                |h| {
                    let mark = if h.is_success() { "" } else { "❌ " };
                    format!("{mark}{}", host_label(h))
                },
            );
            let _ = write!(out, " {} |", cell(&label));
        }
        out.push('\n');
    }
    let total = run.hosts().len();
    if total > MAX_HOSTS {
        let _ = writeln!(out, "\n... and {} more hosts", total - MAX_HOSTS);
    }
}

fn failures(out: &mut String, run: &Run) {
    let failed: Vec<_> = failed_hosts(run).collect();
    if failed.is_empty() {
        return;
    }
    out.push_str("\n### Failed hosts\n");
    for (push, host) in failed.iter().take(MAX_FAILURES) {
        let _ = writeln!(
            out,
            "\n**{}** on {}: {}",
            cell(&push.name),
            cell(&host.display()),
            cell(&host_detail(host))
        );
        if let Some(log) = &host.log_excerpt {
            let fence = fence(log);
            let _ = writeln!(out, "\n{fence}text\n{log}\n{fence}");
        }
    }
    if failed.len() > MAX_FAILURES {
        let _ = writeln!(
            out,
            "\n... and {} more failed hosts",
            failed.len() - MAX_FAILURES
        );
    }
}

/// A table cell: no line break, no pipe, no HTML.
fn cell(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// A code fence longer than any run of backticks in `text`, so the text cannot close it.
fn fence(text: &str) -> String {
    "`".repeat(crate::render::markdown::longest_backtick_run(text).max(2) + 1)
}
