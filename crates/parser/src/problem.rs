//! Diagnostics: one [`Problem`] per mistake, and [`PlanErrors`] for all problems of a run.
//!
//! A `Problem` only knows spans (file id + byte range), so it can be built anywhere, also by
//! `plan-graph`. Rendering needs the text of the files, so problems are "attached" to a
//! [`SourceFiles`] table: the result is a self-contained miette diagnostic whose labels point
//! into the primary label's file, with labels in other files shown as a related advice.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

use crate::model::{FileId, SourceFiles, Span};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The plan is invalid; nothing may be sent.
    Error,
    /// The plan is valid but probably not what the author meant.
    Warning,
}

impl Severity {
    /// `"error"` or `"warning"`, as machine-readable output spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One diagnostic with a stable code (`plan::parser::...`, `plan::graph::...`).
///
/// The first label is the primary one: it decides the file the problem is reported in and its
/// position in sorted output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    code: &'static str,
    severity: Severity,
    message: String,
    labels: Vec<(Span, String)>,
    help: Option<String>,
}

impl Problem {
    /// An error (makes the plan invalid).
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            code,
            severity: Severity::Error,
            message: message.into(),
            labels: Vec::new(),
            help: None,
        }
    }

    /// A warning (printed, but the plan stays valid).
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(code, message)
        }
    }

    /// Adds a label; the first label added is the primary one.
    #[must_use]
    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push((span, text.into()));
        self
    }

    /// Sets the help line (replacing an earlier one).
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the help line when there is one.
    #[must_use]
    pub fn with_help_opt(self, help: Option<String>) -> Self {
        match help {
            Some(help) => self.with_help(help),
            None => self,
        }
    }

    /// The stable code, e.g. `plan::parser::unknown_key`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Error or warning.
    pub fn severity(&self) -> Severity {
        self.severity
    }

    /// The one-line message (lowercase, no trailing period).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The help line, if any.
    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// The span of the primary (first) label.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.first().map(|(span, _)| *span)
    }

    /// Every label: span and text, primary first.
    pub fn labels(&self) -> &[(Span, String)] {
        &self.labels
    }

    /// The key problems are sorted by: file, offset, then severity and code for ties.
    fn sort_key(&self) -> (FileId, usize, Severity, &'static str) {
        match self.primary_span() {
            Some(span) => (span.file, span.start, self.severity, self.code),
            None => (FileId(u32::MAX), usize::MAX, self.severity, self.code),
        }
    }

    /// Attaches the source text, giving a diagnostic miette can render on its own.
    pub fn attach(&self, sources: &SourceFiles) -> AttachedProblem {
        AttachedProblem::new(self, sources)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

/// Without sources a problem still renders its code, message and help (no snippets).
impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(miette_severity(self.severity))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }
}

fn miette_severity(severity: Severity) -> miette::Severity {
    match severity {
        Severity::Error => miette::Severity::Error,
        Severity::Warning => miette::Severity::Warning,
    }
}

/// A [`Problem`] together with the text of the file its labels point into.
///
/// Labels in other files than the primary label's are rendered as related advice diagnostics,
/// one per file, each with that file's text.
#[derive(Debug, Clone)]
pub struct AttachedProblem {
    code: &'static str,
    severity: miette::Severity,
    message: String,
    help: Option<String>,
    source: Option<NamedSource<Arc<str>>>,
    labels: Vec<LabeledSpan>,
    related: Vec<AttachedProblem>,
}

impl AttachedProblem {
    fn new(problem: &Problem, sources: &SourceFiles) -> Self {
        let valid = |span: &Span| (span.file.0 as usize) < sources.len();
        let primary_file = problem.primary_span().filter(valid).map(|s| s.file);
        let mut labels = Vec::new();
        let mut others: Vec<(FileId, Vec<LabeledSpan>)> = Vec::new();
        let mut unshown = Vec::new();
        for (index, (span, text)) in problem.labels.iter().enumerate() {
            if !valid(span) {
                continue;
            }
            let span = clamp(*span, sources);
            if too_far_right(span, sources) {
                let (line, column) = sources.line_col(span.file, span.start);
                unshown.push(format!("{}:{line}:{column}", sources.get(span.file).name));
                continue;
            }
            let text = (!text.is_empty()).then(|| text.clone());
            let label = if index == 0 {
                LabeledSpan::new_primary_with_span(text, span.source_span())
            } else {
                LabeledSpan::new_with_span(text, span.source_span())
            };
            if Some(span.file) == primary_file {
                labels.push(label);
            } else if let Some((_, list)) = others.iter_mut().find(|(f, _)| *f == span.file) {
                list.push(label);
            } else {
                others.push((span.file, vec![label]));
            }
        }
        let related = others
            .into_iter()
            .map(|(file, labels)| AttachedProblem {
                code: problem.code,
                severity: miette::Severity::Advice,
                message: format!("see also `{}`", sources.get(file).name),
                help: None,
                source: Some(sources.named_source(file)),
                labels,
                related: Vec::new(),
            })
            .collect();
        let mut message = problem.message.clone();
        if !unshown.is_empty() {
            message.push_str(&format!(
                " (at {}, too far into the line to show)",
                unshown.join(", ")
            ));
        }
        AttachedProblem {
            code: problem.code,
            severity: miette_severity(problem.severity),
            message,
            help: problem.help.clone(),
            source: primary_file.map(|f| sources.named_source(f)),
            labels,
            related,
        }
    }
}

/// The furthest column miette's graphical handler can underline: it pads to a label with a
/// formatting width, which Rust caps at `u16::MAX`, and panics past it. Kept well below, since
/// the handler counts a tab as several columns and a wide character as two.
const MAX_LABEL_COLUMN: usize = 60_000;

/// True when `span` starts so far into its line that rendering its underline would panic
/// (a plan with a 100 KB line): such a label is left out and its position told in the message.
fn too_far_right(span: Span, sources: &SourceFiles) -> bool {
    let text = &sources.get(span.file).text;
    let (_, column) = sources.line_col(span.file, span.start);
    // A character is at most 4 columns wide (a tab); below this nothing can overflow.
    if column.saturating_mul(4) < MAX_LABEL_COLUMN {
        return false;
    }
    let start = (0..=span.start.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let visual: usize = text[line_start..start]
        .chars()
        .map(|c| match c {
            '\t' => 4,
            c if c.is_ascii() => 1,
            _ => 2,
        })
        .sum();
    visual >= MAX_LABEL_COLUMN
}

/// Keeps a span inside its file so a bad span can never make rendering fail.
fn clamp(span: Span, sources: &SourceFiles) -> Span {
    let len = sources.get(span.file).text.len();
    let start = span.start.min(len);
    let end = span.start.saturating_add(span.len).min(len);
    Span::new(span.file, start..end)
}

impl fmt::Display for AttachedProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AttachedProblem {}

impl Diagnostic for AttachedProblem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        // Related advice repeats the code only through its parent.
        (self.severity != miette::Severity::Advice)
            .then(|| Box::new(self.code) as Box<dyn fmt::Display + 'a>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|r| r as &dyn Diagnostic)))
        }
    }
}

/// All problems of one run (errors and warnings) plus the files they point into.
///
/// A miette diagnostic whose `related()` are the problems, sorted by file, then offset.
#[derive(Debug)]
pub struct PlanErrors {
    sources: SourceFiles,
    problems: Vec<Problem>,
    attached: Vec<AttachedProblem>,
    summary: String,
}

impl PlanErrors {
    /// Wraps problems (sorting them by position) with the sources they point into.
    pub fn new(sources: SourceFiles, mut problems: Vec<Problem>) -> Self {
        sort_problems(&mut problems);
        let attached = problems.iter().map(|p| p.attach(&sources)).collect();
        let errors = problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        let warnings = problems.len() - errors;
        let name = sources
            .iter()
            .next()
            .map_or_else(|| "plan".to_owned(), |(_, f)| f.name.clone());
        let mut summary = format!("`{name}` is invalid: {}", count(errors, "error"));
        if warnings > 0 {
            summary.push_str(&format!(", {}", count(warnings, "warning")));
        }
        PlanErrors {
            sources,
            problems,
            attached,
            summary,
        }
    }

    /// Every problem, sorted by file, then offset.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// The files the problems point into.
    pub fn sources(&self) -> &SourceFiles {
        &self.sources
    }

    /// True when at least one problem is an error (always true for a failed parse).
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// The problems as self-contained diagnostics, in order.
    pub fn attached(&self) -> &[AttachedProblem] {
        &self.attached
    }
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary)
    }
}

impl std::error::Error for PlanErrors {}

impl Diagnostic for PlanErrors {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(crate::kind::PLAN_INVALID))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.attached.iter().map(|a| a as &dyn Diagnostic)))
    }
}

/// Sorts problems the way every output lists them: by file, then offset.
pub fn sort_problems(problems: &mut [Problem]) {
    problems.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
}

/// Renders problems (warnings or errors) with the right source attached, one report each, in
/// sorted order: what the CLI prints.
pub fn reports(sources: &SourceFiles, problems: &[Problem]) -> Vec<miette::Report> {
    let mut problems = problems.to_vec();
    sort_problems(&mut problems);
    problems
        .iter()
        .map(|p| miette::Report::new(p.attach(sources)))
        .collect()
}

/// A character that renders as nothing or reorders the text around it: bidirectional controls
/// (the "Trojan Source" marks), zero-width characters and the byte-order mark. A name or path
/// holding one reads differently in a review than what JOB receives.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// The unicode name of an invisible or control character, for messages.
pub(crate) fn char_name(c: char) -> &'static str {
    match c {
        '\0' => "NUL",
        '\u{061C}' => "ARABIC LETTER MARK",
        '\u{200B}' => "ZERO WIDTH SPACE",
        '\u{200C}' => "ZERO WIDTH NON-JOINER",
        '\u{200D}' => "ZERO WIDTH JOINER",
        '\u{200E}' => "LEFT-TO-RIGHT MARK",
        '\u{200F}' => "RIGHT-TO-LEFT MARK",
        '\u{202A}' => "LEFT-TO-RIGHT EMBEDDING",
        '\u{202B}' => "RIGHT-TO-LEFT EMBEDDING",
        '\u{202C}' => "POP DIRECTIONAL FORMATTING",
        '\u{202D}' => "LEFT-TO-RIGHT OVERRIDE",
        '\u{202E}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{2060}' => "WORD JOINER",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => "FIRST STRONG ISOLATE",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE",
        '\u{FEFF}' => "ZERO WIDTH NO-BREAK SPACE",
        c if c.is_control() => "a control character",
        _ => "an invisible character",
    }
}

/// A user's value longer than this many characters is cut in messages; a plan may hold a
/// 10 MB string and the message must stay readable.
const SHOWN_CHARS: usize = 128;

/// A user's value as a message shows it: invisible and control characters written as
/// `\u{202E}` (so the message reads as the bytes are); a value over 128 characters is cut
/// to its first 64, with the full length added.
pub(crate) fn shown(value: &str) -> String {
    let long = value.chars().nth(SHOWN_CHARS).is_some();
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if long && i == SHOWN_CHARS / 2 {
            out.push_str(&format!("… ({} characters)", value.chars().count()));
            break;
        }
        if is_invisible(c) || c.is_control() {
            out.push_str(&format!("\\u{{{:04X}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod shown_tests {
    use super::*;

    #[test]
    fn shown_escapes_invisible_characters_and_cuts_long_values() {
        assert_eq!(shown("web"), "web");
        assert_eq!(shown("ab\u{202E}cd"), "ab\\u{202E}cd");
        assert_eq!(shown("a\0b"), "a\\u{0000}b");
        let name = "x".repeat(65);
        assert_eq!(shown(&name), name);
        let long = "x".repeat(200);
        assert_eq!(
            shown(&long),
            format!("{}… (200 characters)", "x".repeat(64))
        );
        assert!(is_invisible('\u{200B}') && !is_invisible('é'));
        assert_eq!(char_name('\u{202E}'), "RIGHT-TO-LEFT OVERRIDE");
    }
}
