//! The report as one self-contained HTML page: inline CSS, the timeline as inline SVG, no
//! script and nothing fetched, so it opens from disk, from a CI artifact or a mail alike.
//!
//! Everything the journal says is escaped on its way into the page (text and attributes
//! alike): a host log line holding `<script>` is shown as those characters.

use std::fmt::Write as _;

use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

use super::markdown::summary_rows;
use super::model::{Attempt, Push, Run};
use super::text::{
    MAX_FAILURES, MAX_HOSTS, MAX_PUSHES, Tone, failed_hosts, host_detail, host_label, host_tone,
    matrix_hosts, tone,
};
use super::timeline::{Scale, duration, tick_label};

/// The SVG's coordinate system: names on the left, bars in the middle, statuses on the right.
const WIDTH: f64 = 1200.0;
const CHART_X: f64 = 260.0;
const CHART_WIDTH: f64 = 820.0;
const ROW: f64 = 30.0;
const TOP: f64 = 58.0;
/// Characters of a push name drawn in the timeline (the whole name is in its tooltip).
const NAME_CHARS: usize = 34;

const STYLE: &str = r#"
:root { --good: #2e7d32; --bad: #c62828; --warn: #e65100; --queued: #b0bec5; --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--ink); margin: 24px auto; max-width: 1240px; padding: 0 16px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 14px; margin: 14px 0 4px; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
.outcome { display: inline-block; padding: 2px 10px; border-radius: 12px; color: #fff; font-weight: 600; font-size: 13px; vertical-align: middle; }
.outcome.good { background: var(--good); } .outcome.bad { background: var(--bad); } .outcome.warn { background: var(--warn); } .outcome.plain { background: var(--muted); }
table { border-collapse: collapse; }
table.summary th { text-align: left; color: var(--muted); font-weight: 500; padding: 2px 16px 2px 0; vertical-align: top; white-space: nowrap; }
table.summary td { padding: 2px 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table.matrix { font-size: 12.5px; }
table.matrix th, table.matrix td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; white-space: nowrap; }
table.matrix thead th { background: #f5f7fa; }
table.matrix tbody th { font-weight: 500; }
td.good { color: var(--good); } td.bad { color: #fff; background: var(--bad); font-weight: 600; } td.warn { color: var(--warn); } td.none { color: #9aa5b1; }
td small { opacity: .75; margin-left: 4px; }
.failure { border-left: 4px solid var(--bad); padding: 2px 12px; margin: 10px 0; background: #fff8f8; }
.failure p { margin: 2px 0; }
pre.log { background: #1f2933; color: #e4e7eb; padding: 8px 10px; border-radius: 4px; overflow-x: auto; margin: 6px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.legend { color: var(--muted); font-size: 12.5px; }
.legend span { display: inline-block; width: 18px; height: 10px; margin: 0 4px 0 12px; vertical-align: middle; border-radius: 2px; }
.notes li { color: var(--warn); }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
svg.timeline { width: 100%; height: auto; font-size: 12px; }
svg .push-name { fill: var(--ink); } svg .push-status { font-weight: 600; }
svg .good { fill: var(--good); } svg .bad { fill: var(--bad); } svg .warn { fill: var(--warn); } svg .plain { fill: var(--muted); }
svg .queued { fill: var(--queued); } svg .span.finished { opacity: .35; }
svg .span.refused { fill: none; stroke: var(--bad); stroke-dasharray: 3 2; }
svg .retry { stroke: #111; stroke-width: 1.5; }
svg .attempt-label { fill: #fff; font-size: 10.5px; font-weight: 700; }
svg .attempt-label.outside { fill: var(--ink); }
svg .tick line { stroke: var(--line); } svg .tick text { fill: var(--muted); font-size: 11px; }
svg .stage-boundary { stroke: #52606d; stroke-dasharray: 5 4; } svg .stage-label { fill: #52606d; font-weight: 600; font-size: 11px; }
svg .band { fill: #f5f7fa; }
svg .break { fill: url(#hatch); } svg .break-label { fill: var(--muted); font-size: 11px; }
svg .interruption { stroke: var(--warn); stroke-width: 2.5; } svg .interruption-label { fill: var(--warn); font-weight: 700; font-size: 11px; }
svg .resume { stroke: var(--good); stroke-width: 2; stroke-dasharray: 2 3; } svg .resume-label { fill: var(--good); font-weight: 700; font-size: 11px; }
svg .mark { fill: #3e4c59; }
svg .batch-end { stroke-width: 2; } svg .batch-end.good { stroke: #1b5e20; } svg .batch-end.bad { stroke: #b71c1c; }
svg .batch-label { font-size: 9px; font-weight: 700; }
"#;

pub(crate) fn render(run: &Run) -> String {
    let outcome = run.outcome();
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>plan report: {} {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        text(&run.plan),
        text(&run.run_id)
    );
    let _ = writeln!(
        out,
        "<header><h1>Run <code>{}</code> of plan <code>{}</code> <span class=\"outcome {}\" id=\"outcome\">{}</span></h1></header>",
        text(&run.run_id),
        text(&run.plan),
        tone(&outcome).class(),
        text(&outcome)
    );
    summary(&mut out, run);
    timeline(&mut out, run);
    matrix(&mut out, run);
    failures(&mut out, run);
    notes(&mut out, run);
    let _ = writeln!(
        out,
        "<footer>Written by plan {} from the journal <code>{}</code>.</footer>\n</body>\n</html>",
        text(env!("PLAN_BUILD_VERSION")),
        text(&run.path.display().to_string())
    );
    out
}

fn summary(out: &mut String, run: &Run) {
    out.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<table class=\"summary\">\n");
    for (label, value) in summary_rows(run) {
        let _ = writeln!(
            out,
            "<tr data-row=\"{}\"><th>{}</th><td>{}</td></tr>",
            attr(label),
            text(label),
            text(&value)
        );
    }
    out.push_str("</table>\n</section>\n");
}

fn timeline(out: &mut String, run: &Run) {
    let Some(scale) = Scale::new(run, CHART_WIDTH) else {
        return;
    };
    let pushes: Vec<&Push> = run.pushes.iter().take(MAX_PUSHES).collect();
    let height = TOP + ROW * pushes.len() as f64 + 12.0;
    let _ = writeln!(
        out,
        "<section id=\"timeline\">\n<h2>Timeline</h2>\n<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"Timeline of the run\">"
    );
    out.push_str("<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#fbe9e7\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#ffab91\" stroke-width=\"2\"/></pattern></defs>\n");
    bands(out, &pushes);
    let x = |t| CHART_X + scale.x(t);
    for b in &scale.breaks {
        let _ = writeln!(
            out,
            "<rect class=\"break\" x=\"{:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\"><title>not running for {}</title></rect><text class=\"break-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">paused {}</text>",
            CHART_X + b.x0,
            (b.x1 - b.x0).max(1.0),
            height - TOP - 12.0,
            duration(b.millis),
            CHART_X + (b.x0 + b.x1) / 2.0,
            height - 2.0,
            duration(b.millis)
        );
    }
    for (position, millis) in scale.ticks(CHART_WIDTH) {
        let _ = writeln!(
            out,
            "<g class=\"tick\"><line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2:.1}\"/><text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\">{4}</text></g>",
            CHART_X + position,
            TOP - 4.0,
            height - 12.0,
            TOP - 8.0,
            text(&tick_label(millis))
        );
    }
    stage_boundaries(out, &pushes, &scale, height);
    for (row, push) in pushes.iter().enumerate() {
        push_row(out, push, row, &scale);
    }
    for (i, segment) in run.segments.iter().enumerate() {
        if let (Some("interrupted"), Some(ended)) = (segment.outcome.as_deref(), segment.ended) {
            let _ = writeln!(
                out,
                "<g class=\"interrupted\"><line class=\"interruption\" x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2:.1}\"><title>interrupted by its operator at {3}</title></line><text class=\"interruption-label\" x=\"{0:.1}\" y=\"11\" text-anchor=\"end\">interrupted ▸</text></g>",
                x(ended),
                14.0,
                height - 12.0,
                text(&super::timeline::clock(ended))
            );
            if let Some(resumed) = run.segments.get(i + 1).and_then(|s| s.started) {
                let _ = writeln!(
                    out,
                    "<g class=\"resumed\"><line class=\"resume\" x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2:.1}\"><title>resumed at {3}</title></line><text class=\"resume-label\" x=\"{0:.1}\" y=\"24\" text-anchor=\"start\">◂ resumed</text></g>",
                    x(resumed),
                    27.0,
                    height - 12.0,
                    text(&super::timeline::clock(resumed))
                );
            }
        }
    }
    out.push_str("</svg>\n");
    out.push_str("<p class=\"legend\"><span style=\"background:var(--queued)\"></span>queued (sent, not yet running in JOB)<span style=\"background:var(--good)\"></span>running, then succeeded<span style=\"background:var(--bad)\"></span>running, then failed<span style=\"background:var(--warn)\"></span>not followed to its end<span style=\"background:var(--muted);height:2px\"></span>finished, while the run went on<span style=\"background:#fbe9e7;border:1px solid #ffab91\"></span>not running (interrupted) · bars marked #2, #3 are retries · ◆ the push's end · ▾ an event (hover for details)</p>\n");
    if run.pushes.len() > MAX_PUSHES {
        let _ = writeln!(
            out,
            "<p>... and {} more pushes (the host matrix and the text report count them too).</p>",
            run.pushes.len() - MAX_PUSHES
        );
    }
    out.push_str("</section>\n");
}

/// Alternate stages get a light band behind their rows.
fn bands(out: &mut String, pushes: &[&Push]) {
    for (row, push) in pushes.iter().enumerate() {
        if push.stage.is_some_and(|s| s % 2 == 0) {
            let _ = writeln!(
                out,
                "<rect class=\"band\" x=\"0\" y=\"{:.1}\" width=\"{WIDTH}\" height=\"{ROW}\"/>",
                TOP + ROW * row as f64
            );
        }
    }
}

/// A dashed line where each stage after the first began (its first submission).
fn stage_boundaries(out: &mut String, pushes: &[&Push], scale: &Scale, height: f64) {
    let mut stages: Vec<usize> = pushes.iter().filter_map(|p| p.stage).collect();
    stages.sort_unstable();
    stages.dedup();
    for stage in stages.into_iter().filter(|s| *s > 1) {
        let began = pushes
            .iter()
            .filter(|p| p.stage == Some(stage))
            .flat_map(|p| p.attempts.iter().filter_map(|a| a.intent))
            .min();
        let Some(began) = began else { continue };
        let x = CHART_X + scale.x(began);
        let _ = writeln!(
            out,
            "<g class=\"stage\" data-stage=\"{stage}\"><line class=\"stage-boundary\" x1=\"{x:.1}\" y1=\"{}\" x2=\"{x:.1}\" y2=\"{:.1}\"/><text class=\"stage-label\" x=\"{:.1}\" y=\"37\">stage {stage}</text></g>",
            TOP - 14.0,
            height - 12.0,
            x + 3.0
        );
    }
}

fn push_row(out: &mut String, push: &Push, row: usize, scale: &Scale) {
    let y = TOP + ROW * row as f64;
    let status = push.status_label();
    let tone = tone(&status);
    let _ = writeln!(
        out,
        "<g class=\"push\" data-push=\"{}\" data-status=\"{}\" data-attempts=\"{}\">",
        attr(&push.name),
        attr(&status),
        push.attempts.len()
    );
    let _ = writeln!(
        out,
        "<text class=\"push-name\" x=\"8\" y=\"{:.1}\"><title>{}{}</title>{}</text>",
        y + 19.0,
        text(&push.name),
        push.stage
            .map_or(String::new(), |s| format!(" (stage {s})")),
        text(&short(&push.name))
    );
    for (i, attempt) in push.attempts.iter().enumerate() {
        attempt_spans(out, attempt, push.is_retry(i), y, scale);
    }
    if let Some(at) = push
        .finished
        .or_else(|| push.attempts.last().and_then(|a| a.finished))
    {
        let x = CHART_X + scale.x(at);
        let mid = y + ROW / 2.0;
        // After its end, a thin line in its colour: finished, while the run went on.
        let end = CHART_X + scale.x(scale.end);
        if end > x + 6.0 {
            let _ = writeln!(
                out,
                "<rect class=\"span finished {}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"2\"><title>{}</title></rect>",
                tone.class(),
                mid - 1.0,
                end - x,
                text(&status)
            );
        }
        let _ = writeln!(
            out,
            "<path class=\"end {}\" d=\"M{x:.1} {:.1} l5 6 l-5 6 l-5 -6 z\"><title>{}</title></path>",
            tone.class(),
            mid - 6.0,
            text(&status)
        );
    }
    for mark in &push.marks {
        let Some(at) = mark.at else { continue };
        let x = CHART_X + scale.x(at);
        if let Some(batch) = &mark.batch {
            // A batch's end: a tick across the bar, its number above.
            let tone = if mark.failed { "bad" } else { "good" };
            let _ = writeln!(
                out,
                "<g class=\"batch\" data-kind=\"{}\"><line class=\"batch-end {tone}\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"><title>{}</title></line><text class=\"batch-label {tone}\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text></g>",
                attr(&mark.kind),
                y + 4.0,
                y + ROW - 4.0,
                text(&mark.text),
                x - 1.5,
                y + 6.5,
                text(batch)
            );
            continue;
        }
        let _ = writeln!(
            out,
            "<path class=\"mark\" data-kind=\"{}\" d=\"M{:.1} {:.1} h8 l-4 6 z\"><title>{}</title></path>",
            attr(&mark.kind),
            x - 4.0,
            y + 1.0,
            text(&mark.text)
        );
    }
    let _ = writeln!(
        out,
        "<text class=\"push-status {}\" x=\"{:.1}\" y=\"{:.1}\">{}</text>\n</g>",
        tone.class(),
        CHART_X + CHART_WIDTH + 12.0,
        y + 19.0,
        text(&status)
    );
}

/// An attempt's queued and running spans, with its number when it is a retry (its batch
/// when it sends one).
fn attempt_spans(out: &mut String, a: &Attempt, retried: bool, y: f64, scale: &Scale) {
    let x = |t| CHART_X + scale.x(t);
    let running_from = a.running_from();
    let top = y + 7.0;
    let h = ROW - 14.0;
    let title = attempt_title(a, retried);
    let retry = if retried { " retry" } else { "" };
    if let (Some(from), Some(to)) = (a.intent, running_from.or(a.finished)) {
        let _ = writeln!(
            out,
            "<rect class=\"span queued\" data-attempt=\"{}\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{}</title></rect>",
            a.number,
            x(from),
            (x(to) - x(from)).max(1.0),
            text(&title)
        );
    }
    if a.submit_error.is_some() && running_from.is_none() {
        if let Some(from) = a.intent {
            let _ = writeln!(
                out,
                "<rect class=\"span refused\" data-attempt=\"{}\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{}</title></rect>",
                a.number,
                x(from),
                (x(a.finished.unwrap_or(from)) - x(from)).max(4.0),
                text(&title)
            );
        }
        return;
    }
    let Some(from) = running_from else { return };
    let to = a.finished.map_or(scale.end, |t| t.max(from));
    let tone = match (a.finished, a.job_status, a.succeeded()) {
        (Some(_), None, _) if a.retried_in_job => Tone::Bad,
        // Not followed to JOB's end of it.
        (None, _, _) | (Some(_), None, _) => Tone::Warn,
        (Some(_), Some(_), true) => Tone::Good,
        (Some(_), Some(_), false) => Tone::Bad,
    };
    let width = (x(to) - x(from)).max(2.0);
    let _ = writeln!(
        out,
        "<rect class=\"span running {}{retry}\" data-attempt=\"{}\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" height=\"{h:.1}\" rx=\"2\"><title>{}</title></rect>",
        tone.class(),
        a.number,
        x(from),
        text(&title)
    );
    let label = match (retried, a.batch) {
        (true, _) => Some(format!("#{}", a.number)),
        (false, Some((i, _))) => Some(format!("b{i}")),
        (false, None) => None,
    };
    if let Some(label) = label {
        // Inside a bar wide enough, else after it, or before it near the chart's end.
        let (lx, class, anchor) = if width >= 24.0 {
            (x(from) + 3.0, "attempt-label", "start")
        } else if x(from) + width + 24.0 < CHART_X + CHART_WIDTH {
            (x(from) + width + 3.0, "attempt-label outside", "start")
        } else {
            (x(from) - 3.0, "attempt-label outside", "end")
        };
        let _ = writeln!(
            out,
            "<text class=\"{class}\" x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            top + h - 3.5,
            text(&label)
        );
    }
}

/// The tooltip of an attempt's spans.
fn attempt_title(a: &Attempt, retried: bool) -> String {
    let mut title = format!("attempt {}", a.number);
    if let Some(batch) = a.batch_label() {
        let _ = write!(title, ", {batch}");
    }
    match (retried, a.in_job) {
        (true, true) => title.push_str(" (a retry of the failed hosts inside the same JOB job)"),
        (true, false) => title.push_str(" (a retry)"),
        _ => {}
    }
    if let Some(job) = a.job {
        let _ = write!(title, ", JOB job {job}");
    }
    if a.targets > 0 {
        let _ = write!(title, ", {} target hosts", a.targets);
    }
    if let (Some(intent), Some(running)) = (a.intent, a.running_from()) {
        let _ = write!(
            title,
            ", queued {}",
            duration((running - intent).num_milliseconds())
        );
    }
    if let (Some(running), Some(finished)) = (a.running_from(), a.finished) {
        let _ = write!(
            title,
            ", ran {}",
            duration((finished - running).num_milliseconds())
        );
    }
    match (a.job_status, &a.submit_error) {
        (_, Some(error)) => {
            let _ = write!(title, ": {error}");
        }
        (Some(status), None) => {
            let _ = write!(
                title,
                ", JOB status {status} ({})",
                plan_bkjob::RunStatus::from_code(status as i32).label()
            );
        }
        (None, None) if a.retried_in_job => {
            title.push_str(", stopped by JOB on a failure, its failed hosts retried in the job");
        }
        (None, None) => title.push_str(", not followed to its end"),
    }
    title
}

fn matrix(out: &mut String, run: &Run) {
    let hosts = matrix_hosts(run);
    if hosts.is_empty() {
        return;
    }
    let pushes: Vec<&Push> = run.pushes.iter().take(MAX_PUSHES).collect();
    out.push_str("<section id=\"hosts\">\n<h2>Hosts</h2>\n<div class=\"scroll\"><table class=\"matrix\">\n<thead><tr><th>host</th>");
    for p in &pushes {
        let _ = write!(
            out,
            "<th class=\"push\" data-push=\"{}\">{}</th>",
            attr(&p.name),
            text(&p.name)
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (key, display) in &hosts {
        let _ = write!(
            out,
            "<tr data-host=\"{}\"><th class=\"mono\">{}</th>",
            attr(key),
            text(display)
        );
        for p in &pushes {
            match p.host(key) {
                Some(h) => {
                    let _ = write!(
                        out,
                        "<td class=\"cell {}\" data-push=\"{}\" data-status=\"{}\" title=\"{}\">{}<small>{}</small></td>",
                        host_tone(h).class(),
                        attr(&p.name),
                        h.status.code(),
                        attr(&host_detail(h)),
                        text(&host_label(h)),
                        h.status.code()
                    );
                }
                None => out.push_str("<td class=\"cell none\">–</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table></div>\n");
    let total = run.hosts().len();
    if total > MAX_HOSTS {
        let _ = writeln!(
            out,
            "<p>... and {} more hosts, none failed.</p>",
            total - MAX_HOSTS
        );
    }
    out.push_str("<p class=\"legend\">JOB's label of each host's latest result in each push, and its status number.</p>\n</section>\n");
}

fn failures(out: &mut String, run: &Run) {
    let failed: Vec<_> = failed_hosts(run).collect();
    if failed.is_empty() {
        return;
    }
    out.push_str("<section id=\"failed-hosts\">\n<h2>Failed hosts</h2>\n");
    for (push, host) in failed.iter().take(MAX_FAILURES) {
        let _ = writeln!(
            out,
            "<article class=\"failure\" data-push=\"{}\" data-host=\"{}\"><h3>{} on <code>{}</code></h3><p class=\"detail\">{}</p>",
            attr(&push.name),
            attr(&host.key()),
            text(&push.name),
            text(&host.display()),
            text(&host_detail(host))
        );
        if let Some(log) = &host.log_excerpt {
            let _ = writeln!(out, "<pre class=\"log\">{}</pre>", text(log));
        }
        out.push_str("</article>\n");
    }
    if failed.len() > MAX_FAILURES {
        let _ = writeln!(
            out,
            "<p>... and {} more failed hosts.</p>",
            failed.len() - MAX_FAILURES
        );
    }
    out.push_str("</section>\n");
}

fn notes(out: &mut String, run: &Run) {
    if run.notes.is_empty() {
        return;
    }
    out.push_str("<section id=\"notes\">\n<h2>Notes on the journal</h2>\n<ul class=\"notes\">\n");
    for note in &run.notes {
        let _ = writeln!(out, "<li>{}</li>", text(note));
    }
    out.push_str("</ul>\n</section>\n");
}

fn short(name: &str) -> String {
    match name.char_indices().nth(NAME_CHARS) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name.to_owned(),
    }
}
