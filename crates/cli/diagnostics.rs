//! Rendering of diagnostics to stderr: fancy on a terminal, plain `file:line:col` otherwise,
//! plus the machine-readable forms (`--format json`, GitHub annotations) that `check`, `show`
//! and `apply` share.

use std::fmt::Write as _;

use plan_parser::{Problem, Severity, SourceFiles, Span};
use serde::Serialize;

use crate::printer::Printer;

/// Prints an error that stopped a command before or outside plan validation.
pub(crate) fn print_error(_printer: &Printer, error: &anyhow::Error) {
    // Errors from the client are scrubbed already; this one also covers any other cause
    // that quotes something it read (a file, an answer).
    let text = plan_bkjob::Scrubber::from_env().scrub(&format!("{error:#}"));
    crate::printer::write_stderr(&format!("error: {text}\n"));
}

/// One problem in the shape of `check --format json` (and GitHub annotations).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub(crate) struct JsonDiagnostic {
    /// `"error"` or `"warning"`.
    #[schemars(with = "SeveritySchema")]
    pub(crate) severity: &'static str,
    /// The stable code, e.g. `plan::parser::unknown_key`.
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// The file of the primary label (the plan file when the problem has no label).
    pub(crate) file: String,
    /// 1-based line of the primary label's start; `null` without a label.
    pub(crate) line: Option<usize>,
    /// 1-based column (in characters) of the primary label's start.
    pub(crate) column: Option<usize>,
    pub(crate) help: Option<String>,
}

/// The values `severity` takes, for the schema.
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code, reason = "only its schema is used")]
enum SeveritySchema {
    Error,
    Warning,
}

/// The file name, line and column of a span.
pub(crate) fn locate(sources: &SourceFiles, span: Span) -> Option<(String, usize, usize)> {
    let file = sources.try_get(span.file)?;
    let (line, column) = sources.line_col(span.file, span.start);
    Some((file.name.clone(), line, column))
}

/// Converts problems to their JSON shape, in the order given.
pub(crate) fn to_json(sources: &SourceFiles, problems: &[Problem]) -> Vec<JsonDiagnostic> {
    let main = sources
        .iter()
        .next()
        .map(|(_, f)| f.name.clone())
        .unwrap_or_default();
    problems
        .iter()
        .map(|p| {
            let located = p.primary_span().and_then(|s| locate(sources, s));
            let (file, line, column) = match located {
                Some((file, line, column)) => (file, Some(line), Some(column)),
                None => (main.clone(), None, None),
            };
            JsonDiagnostic {
                severity: p.severity().as_str(),
                code: p.code(),
                message: p.message().to_owned(),
                file,
                line,
                column,
                help: p.help().map(str::to_owned),
            }
        })
        .collect()
}

/// GitHub Actions workflow commands, one line per diagnostic.
pub(crate) fn github_annotations(diagnostics: &[JsonDiagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let mut props = format!("file={}", escape_property(&d.file));
        if let (Some(line), Some(col)) = (d.line, d.column) {
            let _ = write!(props, ",line={line},col={col}");
        }
        let _ = write!(props, ",title={}", escape_property(d.code));
        let mut message = d.message.clone();
        if let Some(help) = &d.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        let _ = writeln!(out, "::{} {props}::{}", d.severity, escape_data(&message));
    }
    out
}

/// Escaping of workflow-command data (the message).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping of workflow-command properties (file, title).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Renders problems for people: miette's graphical report (with colours) when `fancy`, plain
/// `file:line:col: severity[code]: message` lines otherwise.
pub(crate) fn render_problems(sources: &SourceFiles, problems: &[Problem], fancy: bool) -> String {
    let mut out = String::new();
    if fancy {
        // miette's own handler: colours, unicode, and wrapping at the terminal's width.
        let handler = miette::MietteHandlerOpts::new()
            .color(true)
            .unicode(true)
            .terminal_links(false)
            .build();
        for report in plan_parser::reports(sources, problems) {
            let _ = writeln!(out, "{:?}", Rendered(&handler, report.as_ref()));
        }
    } else {
        let mut sorted = problems.to_vec();
        plan_parser::sort_problems(&mut sorted);
        for p in &sorted {
            render_plain(&mut out, sources, p);
        }
    }
    out
}

/// Renders one diagnostic through a [`miette::ReportHandler`] via `Debug`, the trait's entry.
struct Rendered<'a>(&'a miette::MietteHandler, &'a dyn miette::Diagnostic);

impl std::fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        miette::ReportHandler::debug(self.0, self.1, f)
    }
}

fn render_plain(out: &mut String, sources: &SourceFiles, p: &Problem) {
    let main = sources
        .iter()
        .next()
        .map(|(_, f)| f.name.clone())
        .unwrap_or_default();
    let mut labels = p.labels().iter();
    let primary = labels.next();
    let place = primary
        .and_then(|(span, _)| locate(sources, *span))
        .map_or(main, |(file, line, col)| format!("{file}:{line}:{col}"));
    let _ = write!(
        out,
        "{place}: {}[{}]: {}",
        p.severity().as_str(),
        p.code(),
        p.message()
    );
    match primary {
        Some((_, text)) if !text.is_empty() => {
            let _ = writeln!(out, " ({text})");
        }
        _ => out.push('\n'),
    }
    let mut secondary: Vec<&(Span, String)> = labels.collect();
    secondary.sort_by_key(|(span, _)| (span.file, span.start));
    for (span, text) in secondary {
        if let Some((file, line, col)) = locate(sources, *span) {
            let _ = writeln!(out, "  {file}:{line}:{col}: note: {text}");
        }
    }
    if let Some(help) = p.help() {
        let _ = writeln!(out, "  help: {help}");
    }
}

/// Prints problems (errors and warnings) to stderr the way the printer wants them.
pub(crate) fn print_problems(printer: &Printer, sources: &SourceFiles, problems: &[Problem]) {
    let shown: Vec<Problem> = problems
        .iter()
        .filter(|p| !printer.quiet || p.severity() == Severity::Error)
        .cloned()
        .collect();
    if shown.is_empty() {
        return;
    }
    crate::printer::write_stderr(&render_problems(sources, &shown, printer.fancy));
}

/// `1 error`, `2 warnings`.
pub(crate) fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use plan_parser::{FileId, Problem, SourceFiles, Span};

    use super::*;

    fn sources() -> SourceFiles {
        let mut s = SourceFiles::default();
        s.add("plan.toml", "[plan]\nname = 1\n");
        s.add("inv.toml", "[hosts.a]\n");
        s
    }

    #[test]
    fn json_has_line_and_column_of_the_primary_label() {
        let p = Problem::error("plan::parser::wrong_type", "bad")
            .with_label(Span::new(FileId(0), 14..15), "here")
            .with_help("fix it");
        let json = to_json(&sources(), &[p]);
        assert_eq!(json[0].file, "plan.toml");
        assert_eq!((json[0].line, json[0].column), (Some(2), Some(8)));
        assert_eq!(json[0].help.as_deref(), Some("fix it"));
        assert_eq!(json[0].severity, "error");
    }

    #[test]
    fn plain_output_names_file_line_col_and_secondary_labels() {
        let p = Problem::error("plan::parser::duplicate_group", "defined twice")
            .with_label(Span::new(FileId(0), 7..11), "again")
            .with_label(Span::new(FileId(1), 1..9), "first");
        let text = render_problems(&sources(), &[p], false);
        assert_eq!(
            text,
            "plan.toml:2:1: error[plan::parser::duplicate_group]: defined twice (again)\n  inv.toml:1:2: note: first\n"
        );
    }

    #[test]
    fn github_annotations_escape() {
        let d = JsonDiagnostic {
            severity: "warning",
            code: "plan::parser::unused_var",
            message: "50% unused".into(),
            file: "a,b.toml".into(),
            line: Some(3),
            column: Some(1),
            help: None,
        };
        assert_eq!(
            github_annotations(&[d]),
            "::warning file=a%2Cb.toml,line=3,col=1,title=plan%3A%3Aparser%3A%3Aunused_var::50%25 unused\n"
        );
    }
}
