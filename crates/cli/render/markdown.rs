//! `plan show --format markdown`: a pull-request comment.
//!
//! Layout: a stable marker line (so a bot can find and update its comment), a heading, the
//! one-line summary, warnings, a Mermaid stage diagram, then per stage a table and the request
//! bodies folded in `<details>`. The comment stays under [`LIMIT`] characters (GitHub refuses
//! longer comments): when the full text would not fit, request bodies are dropped first, then
//! the diagram shrinks to one node per stage, then tables end early, always after a whole row,
//! with a line that says what was left out. Nothing is cut in the middle of a table.

use std::fmt::Write as _;

use plan_graph::{EdgeKind, PlanGraph, request_for};
use plan_parser::{Plan, Problem, Push, Severity};

use super::{count, endpoint, push_index, scope, settings, stage_pushes, summary, written};

/// GitHub's limit is 65,536; stay well below it.
pub(crate) const LIMIT: usize = 60_000;
/// Room kept for the closing lines that say what was summarised.
const RESERVE: usize = 1_000;
/// Full diagrams are drawn up to this many pushes; bigger plans get one node per stage.
const DIAGRAM_PUSHES: usize = 80;
/// Stages drawn one node each in a summarised diagram; the rest share one node.
const DIAGRAM_STAGES: usize = 30;
/// The least room a stage is given in a summarised comment.
const MIN_STAGE_ROOM: usize = 800;
/// Static hosts spelled out in a table cell.
const HOSTS_SHOWN: usize = 4;
/// Warnings listed before "and N more".
const WARNINGS_SHOWN: usize = 30;

/// The whole comment, section by section: heading, warnings, diagram, stages, then what was
/// left out to stay under [`LIMIT`].
pub(crate) fn render(plan: &Plan, graph: &PlanGraph, warnings: &[Problem]) -> String {
    let mut out = String::new();
    write_heading(&mut out, plan, graph);
    write_warnings(&mut out, plan, graph, warnings);
    let _ = write!(out, "\n{}", fenced("mermaid", &diagram(plan, graph)));
    let sections = stage_sections(plan, graph);
    let room = LIMIT.saturating_sub(RESERVE).saturating_sub(out.len());
    let tables_len: usize = sections.iter().map(StageSection::len).sum();
    let left_out = if tables_len < room {
        write_all_stages(&mut out, plan, &sections, room - tables_len)
    } else {
        write_summarised_stages(&mut out, graph, &sections, room)
    };
    write_left_out(&mut out, &left_out);
    out
}

/// The marker line a bot finds its comment by, the heading, the summary and the description.
fn write_heading(out: &mut String, plan: &Plan, graph: &PlanGraph) {
    let _ = writeln!(out, "<!-- plan:show {} -->", plan.name.value);
    let _ = writeln!(out, "### `plan show`: {}\n", text(&plan.name.value));
    let _ = writeln!(
        out,
        "**{}** · api {} · {}",
        summary(plan, graph),
        plan.api,
        scope(plan)
    );
    let hash = plan_graph::content_hash(plan, graph);
    // The hidden line is for scripts (examples/ci), the visible one for the reviewer.
    let _ = writeln!(out, "\n<!-- plan:hash {} {hash} -->", plan.name.value);
    let _ = writeln!(out, "Content hash: `{hash}`");
    if let Some(description) = &plan.description {
        let _ = writeln!(out, "\n{}", text(description));
    }
}

/// The parser's and the graph's warnings in source order, the first [`WARNINGS_SHOWN`] listed.
fn write_warnings(out: &mut String, plan: &Plan, graph: &PlanGraph, warnings: &[Problem]) {
    let mut all: Vec<&Problem> = warnings.iter().chain(graph.warnings()).collect();
    if all.is_empty() {
        return;
    }
    all.sort_by_key(|p| p.primary_span());
    let _ = writeln!(
        out,
        "\n> [!WARNING]\n> {}:",
        count(all.len(), "warning", "warnings")
    );
    for problem in all.iter().take(WARNINGS_SHOWN) {
        let _ = writeln!(out, "> - {}", warning_line(plan, problem));
    }
    if all.len() > WARNINGS_SHOWN {
        let _ = writeln!(out, "> - and {} more", all.len() - WARNINGS_SHOWN);
    }
}

/// A stage's pushes with its heading and full table, rendered before knowing how much fits.
struct StageSection<'p> {
    number: usize,
    pushes: Vec<&'p Push>,
    heading: String,
    table: String,
}

impl StageSection<'_> {
    /// The heading and the full table.
    fn len(&self) -> usize {
        self.heading.len() + self.table.len()
    }
}

fn stage_sections<'p>(plan: &'p Plan, graph: &PlanGraph) -> Vec<StageSection<'p>> {
    let index = push_index(plan);
    graph
        .stages()
        .iter()
        .map(|stage| {
            let pushes = stage_pushes(plan, &index, &stage.pushes);
            StageSection {
                number: stage.number,
                heading: format!(
                    "\n#### Stage {} ({})\n\n",
                    stage.number,
                    count(pushes.len(), "push", "pushes")
                ),
                table: table(graph, &pushes),
                pushes,
            }
        })
        .collect()
}

/// What a comment too long to print whole leaves out.
#[derive(Default)]
struct LeftOut {
    /// Pushes whose request bodies are not shown.
    bodies: usize,
    /// Stages not shown at all: (number, pushes).
    stages: Vec<(usize, usize)>,
}

/// Every stage's table, each followed by its request bodies when all of them fit in `room`
/// (what is left once the tables are written).
fn write_all_stages(
    out: &mut String,
    plan: &Plan,
    sections: &[StageSection],
    room: usize,
) -> LeftOut {
    let bodies: Vec<String> = sections
        .iter()
        .map(|s| bodies(plan, s.number, &s.pushes))
        .collect();
    let with_bodies = bodies.iter().map(String::len).sum::<usize>() < room;
    let mut left_out = LeftOut::default();
    for (section, bodies) in sections.iter().zip(&bodies) {
        out.push_str(&section.heading);
        out.push_str(&section.table);
        if with_bodies {
            out.push_str(bodies);
        } else {
            left_out.bodies += section.pushes.len();
        }
    }
    left_out
}

/// No request bodies; as many stages as get [`MIN_STAGE_ROOM`] each, every one given an
/// equal share of the room still left and filled with whole rows; the others summarised.
fn write_summarised_stages(
    out: &mut String,
    graph: &PlanGraph,
    sections: &[StageSection],
    room: usize,
) -> LeftOut {
    let shown_stages = (room / MIN_STAGE_ROOM).clamp(1, sections.len().max(1));
    let mut left_out = LeftOut::default();
    for (i, section) in sections.iter().enumerate() {
        left_out.bodies += section.pushes.len();
        if i >= shown_stages {
            left_out.stages.push((section.number, section.pushes.len()));
            continue;
        }
        let room = LIMIT.saturating_sub(RESERVE).saturating_sub(out.len());
        let share = room / (shown_stages - i);
        out.push_str(&section.heading);
        if section.len() < share {
            out.push_str(&section.table);
        } else {
            write_table_start(out, graph, section, share);
        }
    }
    left_out
}

/// The first whole rows of a stage's table that fit in `share`, then how many were not shown.
fn write_table_start(out: &mut String, graph: &PlanGraph, section: &StageSection, share: usize) {
    out.push_str(TABLE_HEAD);
    let mut used = section.heading.len() + TABLE_HEAD.len();
    let mut shown = 0;
    for push in &section.pushes {
        let row = row(graph, push);
        if used + row.len() + 200 > share {
            break;
        }
        used += row.len();
        out.push_str(&row);
        shown += 1;
    }
    let rest = section.pushes.len() - shown;
    let _ = writeln!(
        out,
        "\n_…and {rest} more {} in this stage, not shown to keep this comment short._",
        if rest == 1 { "push" } else { "pushes" }
    );
}

/// The closing lines: which stages were not shown, and whose request bodies were left out.
fn write_left_out(out: &mut String, left_out: &LeftOut) {
    if let (Some(first), Some(last)) = (left_out.stages.first(), left_out.stages.last()) {
        let pushes: usize = left_out.stages.iter().map(|&(_, n)| n).sum();
        let range = if first.0 == last.0 {
            format!("stage {}", first.0)
        } else {
            format!("stages {}–{}", first.0, last.0)
        };
        let _ = writeln!(
            out,
            "\n_{range} ({}) not shown to keep this comment short._",
            count(pushes, "push", "pushes")
        );
    }
    if left_out.bodies > 0 || !left_out.stages.is_empty() {
        let _ = writeln!(
            out,
            "\n_Request bodies of {} left out; `plan show --format json` prints them all._",
            count(left_out.bodies, "push", "pushes")
        );
    }
}

fn warning_line(plan: &Plan, problem: &Problem) -> String {
    let severity = match problem.severity() {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let place = problem
        .primary_span()
        .filter(|s| plan.sources.iter().any(|(id, _)| id == s.file))
        .map(|s| {
            let (line, column) = plan.sources.line_col(s.file, s.start);
            format!(" ({}:{line}:{column})", plan.sources.get(s.file).name)
        })
        .unwrap_or_default();
    format!(
        "{severity} `{}`: {}{}",
        problem.code(),
        text(problem.message()),
        text(&place)
    )
}

/// The diagram with a node per push, for plans small enough to draw one (at most
/// [`DIAGRAM_PUSHES`] pushes, and edges Mermaid can draw once transitively reduced).
pub(crate) fn push_diagram(plan: &Plan, graph: &PlanGraph) -> Option<String> {
    drawn(plan, graph).ok()
}

/// The diagram with a node per push, or the `%%` comment that says why there is none.
fn drawn(plan: &Plan, graph: &PlanGraph) -> Result<String, Option<String>> {
    if plan.pushes.len() > DIAGRAM_PUSHES {
        return Err(None);
    }
    let diagram = plan_graph::mermaid_diagram(plan, graph);
    if diagram.per_stage {
        let comment = diagram.text.lines().find(|l| l.starts_with("%%"));
        Err(comment.map(str::to_owned))
    } else {
        Ok(diagram.text)
    }
}

/// The full diagram for small plans, one node per stage for big ones (and for small ones
/// with more edges than Mermaid draws, saying so).
pub(crate) fn diagram(plan: &Plan, graph: &PlanGraph) -> String {
    let mut out = String::from("flowchart LR\n");
    match drawn(plan, graph) {
        Ok(diagram) => return diagram,
        Err(Some(comment)) => {
            out.push_str(&comment);
            out.push('\n');
        }
        Err(None) => {}
    }
    let stages = graph.stages();
    let drawn = stages.len().min(DIAGRAM_STAGES);
    for stage in &stages[..drawn] {
        let _ = writeln!(
            out,
            "  s{}[\"stage {}: {}\"]",
            stage.number,
            stage.number,
            count(stage.pushes.len(), "push", "pushes")
        );
    }
    if let (Some(first), Some(last)) = (stages.get(drawn), stages.last()) {
        let pushes: usize = stages[drawn..].iter().map(|s| s.pushes.len()).sum();
        let _ = writeln!(
            out,
            "  s{}[\"stages {}–{}: {}\"]",
            first.number,
            first.number,
            last.number,
            count(pushes, "push", "pushes")
        );
    }
    let nodes = (drawn + 1).min(stages.len());
    for pair in stages[..nodes].windows(2) {
        let _ = writeln!(out, "  s{} --> s{}", pair[0].number, pair[1].number);
    }
    out
}

const TABLE_HEAD: &str = "| push | from | to | waits for | settings |\n|---|---|---|---|---|\n";

fn table(graph: &PlanGraph, pushes: &[&Push]) -> String {
    let mut out = String::from(TABLE_HEAD);
    for push in pushes {
        out.push_str(&row(graph, push));
    }
    out
}

fn row(graph: &PlanGraph, push: &Push) -> String {
    let name = &push.name.value;
    let mut cells = Vec::with_capacity(5);
    cells.push(if push.enabled {
        code(name)
    } else {
        format!("{} _(skipped)_", code(name))
    });
    cells.push(
        push.sources
            .iter()
            .map(|s| {
                let files: Vec<String> = s.files.iter().map(|f| code(&f.path)).collect();
                let from = match &s.file_source {
                    Some(file_source) => text(&file_source.value.to_string()),
                    None => hosts_cell(&s.host_refs, &s.hosts),
                };
                format!("{from}: {}", files.join(" "))
            })
            .collect::<Vec<_>>()
            .join("<br>"),
    );
    cells.push(format!(
        "{}: {}",
        hosts_cell(&push.target.host_refs, &push.target.hosts),
        code(&push.target.path.value)
    ));
    let waits: Vec<String> = graph
        .dependencies_of(name)
        .map(|e| {
            let why = match &e.kind {
                EdgeKind::Explicit { also: None, .. } => {
                    format!("{} (after)", code(&e.dependency))
                }
                EdgeKind::Explicit {
                    also: Some(flow), ..
                } => format!(
                    "{} (after; also {} {} on {})",
                    code(&e.dependency),
                    read_verb(flow.may_read),
                    code(&flow.file),
                    text(&flow.via)
                ),
                EdgeKind::Inferred {
                    file,
                    via,
                    may_read,
                    ..
                } => {
                    format!(
                        "{} ({} {} on {})",
                        code(&e.dependency),
                        read_verb(*may_read),
                        code(file),
                        text(via)
                    )
                }
            };
            if graph.is_skipped(&e.dependency) {
                format!("{why} _(skipped)_")
            } else {
                why
            }
        })
        .collect();
    cells.push(if waits.is_empty() {
        "—".to_owned()
    } else {
        waits.join("<br>")
    });
    cells.push(text(&settings(push)));
    format!("| {} |\n", cells.join(" | "))
}

/// "reads", or "may read" when a pattern only may match what the dependency delivers (the
/// edge's reason in `plan show` says how).
fn read_verb(may_read: bool) -> &'static str {
    if may_read { "may read" } else { "reads" }
}

fn hosts_cell(refs: &[plan_parser::HostRef], hosts: &plan_parser::HostSet) -> String {
    let literal = refs
        .iter()
        .all(|r| matches!(r, plan_parser::HostRef::Host(_)));
    if literal && refs.len() <= HOSTS_SHOWN {
        // Host strings resolve to themselves.
        return text(&written(refs));
    }
    let resolved = super::resolved(hosts, HOSTS_SHOWN);
    format!("{} ({})", text(&written(refs)), text(&resolved))
}

fn bodies(plan: &Plan, stage: usize, pushes: &[&Push]) -> String {
    let mut out = format!(
        "\n<details><summary>Request bodies, stage {stage} ({})</summary>\n\n",
        endpoint(plan)
    );
    for push in pushes {
        let body = serde_json::to_string_pretty(&request_for(plan, push)).unwrap_or_default();
        let _ = writeln!(
            out,
            "{}\n\n{}",
            code(&push.name.value),
            fenced("json", &body)
        );
    }
    out.push_str("</details>\n");
    out
}

/// Inline code, safe inside a table cell: `|` escaped (GFM reads `\|` as a pipe inside a
/// cell, code spans included), line breaks shown as a visible `\n` (a code span cannot hold a
/// `<br>`, and a raw newline would end the table row), and delimited by a backtick run longer
/// than any inside (CommonMark), padded when the text starts or ends with a backtick.
pub(crate) fn code(s: &str) -> String {
    let s = visible_breaks(s).replace('|', "\\|");
    let ticks = "`".repeat(longest_backtick_run(&s) + 1);
    if s.starts_with('`') || s.ends_with('`') || (s.starts_with(' ') && s.ends_with(' ')) {
        format!("{ticks} {s} {ticks}")
    } else {
        format!("{ticks}{s}{ticks}")
    }
}

/// Plain text, safe inside a table cell and against HTML: `|`, backticks and HTML's `<`, `>`,
/// `&` escaped, line breaks as `<br>`.
pub(crate) fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '`' => out.push_str("\\`"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// A fenced code block whose fence is longer than any backtick run in `body` (CommonMark:
/// a block closes only at a fence at least as long as its opening one), so no text inside can
/// close it early.
pub(crate) fn fenced(info: &str, body: &str) -> String {
    let fence = "`".repeat(longest_backtick_run(body).max(2) + 1);
    let body = body.strip_suffix('\n').unwrap_or(body);
    format!("{fence}{info}\n{body}\n{fence}\n")
}

/// Line breaks as a visible `\n` / `\r`, for text that must stay on one line (a code span,
/// a line of a `diff` block).
pub(crate) fn visible_breaks(s: &str) -> String {
    if !s.contains(['\n', '\r']) {
        return s.to_owned();
    }
    s.replace('\n', "\\n").replace('\r', "\\r")
}

/// The longest run of backticks in `s`.
pub(crate) fn longest_backtick_run(s: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::render::tests::load;

    /// Paths, accounts, group ids and a description that hold what Markdown, tables and HTML
    /// treat specially.
    pub(crate) const HOSTILE: &str = r#"
[plan]
name = "md"
bk_biz_id = 2
account = "ro|ot"
description = "line one\n```\n<b>bold</b> & | `x`"

[hosts.web]
dynamic_groups = ["dg|1<x>&y"]

[[push]]
name = "a"
from = { hosts = "10.0.0.9", files = ["/x/app|v1.tgz", "/x/new\nline.tgz", "/x/```tick.tgz"] }
to = { hosts = "web", path = "/stage/`` |/" }
"#;

    /// The fenced code blocks of a document as CommonMark reads them: (info, body). A block
    /// closes at a backtick fence at least as long as the one that opened it.
    pub(crate) fn fenced_blocks(doc: &str) -> Vec<(String, String)> {
        let mut blocks = Vec::new();
        let mut open: Option<(usize, String, String)> = None;
        for line in doc.lines() {
            let ticks = line.chars().take_while(|&c| c == '`').count();
            match &mut open {
                None if ticks >= 3 => open = Some((ticks, line[ticks..].to_owned(), String::new())),
                Some((n, _, _)) if ticks >= *n && line[ticks..].trim().is_empty() => {
                    let (_, info, body) = open.take().unwrap_or_default();
                    blocks.push((info, body));
                }
                Some((_, _, body)) => {
                    body.push_str(line);
                    body.push('\n');
                }
                None => {}
            }
        }
        assert!(open.is_none(), "a code block is never closed");
        blocks
    }

    /// The rows of every table, split into cells as GFM does (on `|` not escaped), after
    /// checking that each table's rows have as many cells as its header.
    pub(crate) fn table_rows(doc: &str) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let mut columns: Option<usize> = None;
        for line in doc.lines() {
            if !line.starts_with('|') {
                // A table ends at a line that is not a row; a broken row would leave its rest
                // here, as a line that is neither blank nor prose we write.
                columns = None;
                continue;
            }
            let mut cells = Vec::new();
            let mut cell = String::new();
            let mut chars = line[1..].chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\\' if chars.peek() == Some(&'|') => {
                        cell.push('|');
                        chars.next();
                    }
                    '|' => cells.push(std::mem::take(&mut cell).trim().to_owned()),
                    c => cell.push(c),
                }
            }
            let n = *columns.get_or_insert(cells.len());
            assert_eq!(cells.len(), n, "row with a wrong cell count: {line}");
            rows.push(cells);
        }
        rows
    }

    /// The code spans of a cell, decoded as CommonMark does.
    pub(crate) fn code_spans(cell: &str) -> Vec<String> {
        let chars: Vec<char> = cell.chars().collect();
        let run = |i: usize| chars[i..].iter().take_while(|&&c| c == '`').count();
        let mut spans = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] != '`' {
                i += 1;
                continue;
            }
            let n = run(i);
            let mut j = i + n;
            let mut closed = None;
            while j < chars.len() {
                if chars[j] == '`' {
                    let m = run(j);
                    if m == n {
                        closed = Some(j);
                        break;
                    }
                    j += m;
                } else {
                    j += 1;
                }
            }
            match closed {
                Some(j) => {
                    let mut s: String = chars[i + n..j].iter().collect();
                    if s.starts_with(' ') && s.ends_with(' ') && s.trim() != "" {
                        s = s[1..s.len() - 1].to_owned();
                    }
                    spans.push(s);
                    i = j + n;
                }
                None => i += n,
            }
        }
        spans
    }

    #[test]
    fn hostile_strings_keep_tables_code_and_html_intact() {
        let (parsed, graph) = load(HOSTILE);
        let doc = render(&parsed.plan, &graph, &parsed.warnings);

        let rows = table_rows(&doc);
        assert_eq!(rows.len(), 3, "{doc}"); // header, delimiter, push `a`
        let from = code_spans(&rows[2][1]);
        assert_eq!(
            from,
            ["/x/app|v1.tgz", "/x/new\\nline.tgz", "/x/```tick.tgz"],
            "{doc}"
        );
        assert_eq!(code_spans(&rows[2][2]), ["/stage/`` |/"], "{doc}");
        assert!(
            rows[2][2].contains("dynamic group dg|1&lt;x&gt;&amp;y"),
            "{doc}"
        );

        let blocks = fenced_blocks(&doc);
        let infos: Vec<&str> = blocks.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(infos, ["mermaid", "json"], "{doc}");
        let body: serde_json::Value = serde_json::from_str(&blocks[1].1).expect("json body");
        assert_eq!(body["file_target_path"], "/stage/`` |/");

        // The description is text, not HTML or code.
        assert!(!doc.contains("<b>"), "{doc}");
        assert!(doc.contains("&lt;b&gt;bold&lt;/b&gt; &amp;"), "{doc}");
        assert!(!doc.contains("\n```\n<b"), "{doc}");
    }

    #[test]
    fn a_body_holding_a_fence_gets_a_longer_one() {
        let block = fenced("json", "{\"a\": \"x\n````\ny\"}\n");
        assert!(block.starts_with("`````json\n"), "{block}");
        assert_eq!(fenced_blocks(&block)[0].1, "{\"a\": \"x\n````\ny\"}\n");
        assert_eq!(fenced("json", "{}"), "```json\n{}\n```\n");
    }

    #[test]
    fn code_spans_survive_backticks_pipes_and_breaks() {
        for s in ["plain", "a`b", "``x``", "`", " a ", "a|b", "a\nb", "x ```"] {
            let cell = code(s);
            let want = visible_breaks(s);
            assert_eq!(
                code_spans(&cell.replace("\\|", "|")),
                [want],
                "{s:?} -> {cell}"
            );
            assert!(!cell.contains('\n'));
        }
    }
}
