//! Hostile values: numbers past every integer type, nesting deep enough to overflow a naive
//! recursive parser, 10 MB strings, NUL bytes, bidirectional and zero-width characters, long
//! lines and files that are not UTF-8. Each must end in a clear diagnostic at the right line
//! (or be accepted, for values that are harmless), quickly and without a panic.

use std::time::{Duration, Instant};

use plan_parser::{ParseOptions, Parsed, PlanErrors, Severity, parse_file, parse_str};

const HEAD: &str = "[plan]\nname = \"h\"\nbk_biz_id = 1\naccount = \"root\"\n";
/// A valid push on lines 5 to 8 (after [`HEAD`]).
const PUSH: &str = "[[push]]\nname = \"a\"\nfrom = { hosts = \"10.0.0.1\", files = [\"/a\"] }\nto = { hosts = \"10.0.0.2\", path = \"/b/\" }\n";

fn parse(text: &str) -> Result<Parsed, PlanErrors> {
    parse_str("h.toml", text, &ParseOptions::default())
}

/// `(code, line, column)` of every error, in order.
fn errors(text: &str) -> Vec<(&'static str, usize, usize)> {
    let errors = parse(text).expect_err("the plan must be invalid");
    let found: Vec<_> = errors
        .problems()
        .iter()
        .filter(|p| p.severity() == Severity::Error)
        .map(|p| {
            let span = p.primary_span().expect("every error has a label");
            let (line, col) = errors.sources().line_col(span.file, span.start);
            (p.code(), line, col)
        })
        .collect();
    // Rendering must work too (spans inside the text, no panic).
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .render_report(&mut out, &errors)
        .expect("render");
    found
}

fn first_error(text: &str) -> (&'static str, usize, usize) {
    errors(text)[0]
}

/// The message of the first error.
fn message(text: &str) -> String {
    parse(text).expect_err("invalid").problems()[0]
        .message()
        .to_owned()
}

fn warnings(text: &str) -> Vec<(&'static str, String)> {
    parse(text)
        .expect("valid")
        .warnings
        .iter()
        .map(|w| (w.code(), w.message().to_owned()))
        .collect()
}

fn with_plan(key_line: &str) -> String {
    format!("{HEAD}{key_line}\n{PUSH}")
}

#[test]
fn numbers_past_every_integer_type_are_out_of_range_at_their_value() {
    let cases = [
        // i64 overflow: TOML's integer is i64, the error is the parser's own
        (
            "timeout = 9223372036854775808",
            "plan::parser::out_of_range",
            5,
            11,
        ),
        (
            "timeout = 99999999999999999999999999",
            "plan::parser::out_of_range",
            5,
            11,
        ),
        (
            "timeout = 9223372036854775807",
            "plan::parser::out_of_range",
            5,
            11,
        ),
        (
            "timeout = -9223372036854775808",
            "plan::parser::out_of_range",
            5,
            11,
        ),
        (
            "upload_speed_limit = 9223372036854775807",
            "plan::parser::out_of_range",
            5,
            22,
        ),
        ("timeout = 1e400", "plan::parser::wrong_type", 5, 11),
        ("timeout = inf", "plan::parser::wrong_type", 5, 11),
        ("timeout = nan", "plan::parser::wrong_type", 5, 11),
        (
            "timeout = 0x7fffffffffffffff",
            "plan::parser::out_of_range",
            5,
            11,
        ),
    ];
    for (line, code, l, c) in cases {
        assert_eq!(first_error(&with_plan(line)), (code, l, c), "{line}");
    }
    let biz = HEAD.replace("bk_biz_id = 1", "bk_biz_id = 99999999999999999999");
    assert_eq!(
        first_error(&format!("{biz}{PUSH}")),
        ("plan::parser::out_of_range", 3, 13)
    );
    assert_eq!(
        first_error(&format!("{HEAD}{PUSH}retries = 9223372036854775807\n")),
        ("plan::parser::out_of_range", 9, 11)
    );
    let cloud = PUSH.replace("\"10.0.0.2\"", "\"99999999999999999999999:10.0.0.2\"");
    assert_eq!(
        first_error(&format!("{HEAD}{cloud}")),
        ("plan::parser::invalid_host", 8, 16)
    );
}

#[test]
fn nesting_ten_thousand_deep_is_a_syntax_error_not_a_stack_overflow() {
    let n = 10_000;
    // Run on a thread with a small stack: if anything recursed once per level, it would
    // overflow here long before 10,000.
    let handle = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            let arrays = format!("{HEAD}x = {}{}\n{PUSH}", "[".repeat(n), "]".repeat(n));
            let tables = format!("{HEAD}x = {}1{}\n{PUSH}", "{a=".repeat(n), "}".repeat(n));
            let unclosed = format!("{HEAD}x = {}\n{PUSH}", "[".repeat(n));
            let dotted = format!("{HEAD}{} = 1\n{PUSH}", vec!["a"; n].join("."));
            let header = format!("{HEAD}{PUSH}[{}]\n", vec!["a"; n].join("."));
            let vars = format!(
                "{HEAD}[vars]\nv = {}{}\n{PUSH}",
                "[".repeat(n),
                "]".repeat(n)
            );
            [arrays, tables, unclosed, dotted, header, vars]
                .iter()
                .map(|text| first_error(text))
                .collect::<Vec<_>>()
        })
        .expect("spawn");
    let found = handle.join().expect("no stack overflow");
    for (code, line, _) in &found {
        assert_eq!(*code, "plan::parser::toml_syntax");
        assert!((5..=10).contains(line), "{found:?}");
    }
    assert_eq!(found[0].1, 5);
    assert_eq!(found[1].1, 5);
    assert_eq!(found[5].1, 6);
}

/// Ten megabytes in one string: accepted where any length is fine, a short one-line error
/// where it is not, and in time linear in the size (a quadratic step would take minutes).
#[test]
fn ten_megabyte_strings_are_handled_in_linear_time_with_short_messages() {
    let big = "a".repeat(10 << 20);
    let start = Instant::now();
    parse(&format!("{HEAD}description = \"{big}\"\n{PUSH}")).expect("a long description is fine");
    parse(&format!("{HEAD}# {big}\n{PUSH}")).expect("a long comment is fine");
    let path = PUSH.replace("\"/a\"", &format!("\"/{big}\""));
    parse(&format!("{HEAD}{path}")).expect("JOB decides about a long path");

    let cases = [
        (
            format!(
                "{HEAD}{}",
                PUSH.replace("name = \"a\"", &format!("name = \"{big}\""))
            ),
            ("plan::parser::invalid_name", 6, 8),
        ),
        (
            format!("{HEAD}{big} = 1\n{PUSH}"),
            ("plan::parser::unknown_key", 5, 1),
        ),
        (
            format!("{HEAD}{PUSH}x = {big}\n"),
            ("plan::parser::toml_syntax", 9, 5),
        ),
    ];
    for (text, expected) in &cases {
        let errors = parse(text).expect_err("invalid");
        let p = &errors.problems()[0];
        let span = p.primary_span().expect("label");
        let (line, col) = errors.sources().line_col(span.file, span.start);
        assert_eq!((p.code(), line, col), *expected);
        // The message names the value, cut short: not ten megabytes on one line.
        assert!(p.message().len() < 200, "{}", &p.message()[..200]);
    }
    assert!(
        message(&cases[0].0).contains("… (10485760 characters)"),
        "{}",
        &message(&cases[0].0)[..100]
    );
    // Generous: ~2 s in a debug build on a slow machine; a quadratic step takes minutes.
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn variables_cannot_expand_a_string_past_a_megabyte() {
    let text = format!(
        "{HEAD}[vars]\nv = \"{}\"\n{}",
        "x".repeat(1 << 19),
        PUSH.replace("\"/a\"", &format!("\"/{}\"", "${v}".repeat(1000)))
    );
    let start = Instant::now();
    // The second `${v}` is the one that crosses the limit (1 + 2 x 512 KiB).
    assert_eq!(first_error(&text), ("plan::parser::value_too_long", 9, 45));
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn nul_characters_are_errors_where_they_reach_job() {
    // A raw NUL byte is not allowed in TOML at all.
    assert_eq!(
        first_error(&with_plan("description = \"a\0b\"")),
        ("plan::parser::toml_syntax", 5, 17)
    );
    let source = PUSH.replace("\"/a\"", "\"/a\\u0000b\"");
    assert_eq!(
        first_error(&format!("{HEAD}{source}")),
        ("plan::parser::nul_character", 7, 39)
    );
    let target = PUSH.replace("\"/b/\"", "\"/b\\u0000/\"");
    assert_eq!(
        first_error(&format!("{HEAD}{target}")),
        ("plan::parser::nul_character", 8, 35)
    );
    let via_var = PUSH.replace("\"/a\"", "\"/${v}\"");
    assert_eq!(
        first_error(&format!("{HEAD}[vars]\nv = \"x\\u0000\"\n{via_var}")),
        ("plan::parser::nul_character", 9, 39)
    );
    let account = HEAD.replace("\"root\"", "\"ro\\u0000ot\"");
    assert_eq!(
        first_error(&format!("{account}{PUSH}")),
        ("plan::parser::invalid_account", 4, 11)
    );
    let name = PUSH.replace("name = \"a\"", "name = \"a\\u0000b\"");
    assert_eq!(
        first_error(&format!("{HEAD}{name}")),
        ("plan::parser::invalid_name", 6, 8)
    );
    // The message shows the NUL as an escape, never as the raw byte.
    assert_eq!(
        message(&format!("{HEAD}{name}")),
        "invalid push name `a\\u{0000}b`"
    );
    assert_eq!(
        first_error(&format!(
            "{HEAD}[hosts.\"g\\u0000\"]\nips = [\"10.0.0.1\"]\n{PUSH}"
        )),
        ("plan::parser::invalid_group_name", 5, 8)
    );
}

#[test]
fn bidi_and_zero_width_characters_in_names_are_rejected_and_named() {
    for (c, name) in [
        ('\u{202E}', "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ('\u{2066}', "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ('\u{200B}', "U+200B ZERO WIDTH SPACE"),
        ('\u{200D}', "U+200D ZERO WIDTH JOINER"),
        ('\u{FEFF}', "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
    ] {
        let push = PUSH.replace("name = \"a\"", &format!("name = \"de{c}ploy\""));
        let text = format!("{HEAD}{push}");
        let errors = parse(&text).expect_err("invalid");
        let p = &errors.problems()[0];
        assert_eq!(p.code(), "plan::parser::invalid_name");
        assert_eq!(
            p.message(),
            format!("invalid push name `de\\u{{{:04X}}}ploy`", c as u32)
        );
        assert!(p.labels()[0].1.contains(name), "{:?}", p.labels());
        assert_eq!(first_error(&text), ("plan::parser::invalid_name", 6, 8));

        let group = format!("{HEAD}[hosts.\"we{c}b\"]\nips = [\"10.0.0.1\"]\n{PUSH}");
        let errors = parse(&group).expect_err("invalid");
        let p = &errors.problems()[0];
        assert_eq!(p.code(), "plan::parser::invalid_group_name");
        assert!(p.labels()[0].1.contains(name), "{:?}", p.labels());
        assert!(!p.message().contains(c), "{}", p.message());

        let plan = HEAD.replace("name = \"h\"", &format!("name = \"h{c}\""));
        assert_eq!(
            first_error(&format!("{plan}{PUSH}")),
            ("plan::parser::invalid_name", 2, 8)
        );
        let account = HEAD.replace("\"root\"", &format!("\"ro{c}ot\""));
        assert_eq!(
            first_error(&format!("{account}{PUSH}")),
            ("plan::parser::invalid_account", 4, 11)
        );
    }
}

#[test]
fn bidi_characters_in_paths_are_warned_about() {
    let push = PUSH.replace("\"/a\"", "\"/data/invoice\u{202E}fdp.exe\"");
    let found = warnings(&format!("{HEAD}{push}"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "plan::parser::invisible_character");
    assert!(found[0].1.contains("\\u{202E}"), "{}", found[0].1);
    let target = PUSH.replace("\"/b/\"", "\"/b\u{200B}/\"");
    let found = warnings(&format!("{HEAD}{target}"));
    assert_eq!(found[0].0, "plan::parser::invisible_character");
    // In a comment or the description it reaches no one: no problem.
    assert!(warnings(&format!("{HEAD}# \u{202E} note\n{PUSH}")).is_empty());
}

#[test]
fn an_overlong_line_of_references_reports_each_at_its_column() {
    let n = 2_000;
    let text = format!("{HEAD}{PUSH}after = [{}]\n", vec!["\"zz\""; n].join(","));
    let start = Instant::now();
    let found = errors(&text);
    assert_eq!(found.len(), n);
    assert_eq!(found[0], ("plan::parser::unknown_push", 9, 10));
    assert_eq!(
        found[n - 1],
        ("plan::parser::unknown_push", 9, 10 + 5 * (n - 1))
    );
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_file_that_is_not_utf8_points_at_the_first_bad_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gbk.toml");
    let mut bytes = format!("{HEAD}{PUSH}").into_bytes();
    // "description = <GBK bytes>" on line 9, column 16
    bytes.extend_from_slice(b"description = \"\xc4\xe3\xba\xc3\"\n");
    std::fs::write(&path, &bytes).expect("write");
    let errors = parse_file(&path, &ParseOptions::default()).expect_err("not UTF-8");
    let p = &errors.problems()[0];
    assert_eq!(p.code(), "plan::parser::not_utf8");
    let span = p.primary_span().expect("label");
    assert_eq!(errors.sources().line_col(span.file, span.start), (9, 16));
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .render_report(&mut out, &errors)
        .expect("render");
    assert!(out.contains("invalid UTF-8 starts here"), "{out}");

    // The same in an included file: the error is in that file, and names the include.
    let main = dir.path().join("main.toml");
    std::fs::write(&main, format!("include = [\"gbk.toml\"]\n{HEAD}{PUSH}")).expect("write");
    let errors = parse_file(&main, &ParseOptions::default()).expect_err("not UTF-8");
    let p = &errors.problems()[0];
    assert_eq!(p.code(), "plan::parser::not_utf8");
    assert_eq!(p.labels().len(), 2);
    let span = p.primary_span().expect("label");
    assert!(errors.sources().get(span.file).name.ends_with("gbk.toml"));
}

#[test]
fn a_byte_order_mark_is_accepted_and_every_position_after_it_is_right() {
    const BOM: &str = "\u{FEFF}";
    let parsed = parse(&format!("{BOM}{HEAD}{PUSH}")).expect("a BOM is fine");
    let plain = parse(&format!("{HEAD}{PUSH}")).expect("valid");
    // Byte offsets count the BOM's three bytes: the span still covers the push's name.
    let (push, plain_push) = (&parsed.plan.pushes[0], &plain.plan.pushes[0]);
    assert_eq!(push.span.start, plain_push.span.start + BOM.len());
    assert_eq!(push.span.len, plain_push.span.len);

    // An error after the BOM: the same line and column as without it, labelling its text.
    for (tail, expected) in [
        (
            format!("{HEAD}{PUSH}after = [\"zz\"]\n"),
            [("plan::parser::unknown_push", 9, 10, "\"zz\"")],
        ),
        // On the BOM's own line the BOM is no column (editors do not show it).
        (
            format!("bogus = 1\n{HEAD}{PUSH}"),
            [("plan::parser::unknown_key", 1, 1, "bogus")],
        ),
    ] {
        for text in [tail.clone(), format!("{BOM}{tail}")] {
            assert_eq!(errors(&text), expected.map(|(c, l, col, _)| (c, l, col)));
            let found = parse(&text).expect_err("invalid");
            let span = found.problems()[0].primary_span().expect("label");
            let source = &found.sources().get(span.file).text;
            assert_eq!(&source[span.start..span.start + span.len], expected[0].3);
        }
    }
}

/// miette's renderer pads to a label with a formatting width, which Rust caps at 65,535: a
/// label further into a line made it panic ("Formatting argument out of range"), so `plan
/// check` crashed on a plan with one long line. Such a label is now left out of the snippet
/// and its position is part of the message.
#[test]
fn an_error_past_column_65535_renders_with_its_position() {
    let pad = " ".repeat(100_000);
    let text = format!("{HEAD}{PUSH}after = [{pad}\"zz\"]\n");
    let found = errors(&text); // renders too: this panicked before
    assert_eq!(found, vec![("plan::parser::unknown_push", 9, 100_010)]);
    let errors = parse(&text).expect_err("invalid");
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .render_report(&mut out, &errors)
        .expect("render");
    assert!(
        out.contains("(at h.toml:9:100010, too far into the line to show)"),
        "{}",
        &out[..out.len().min(2000)]
    );
    // The problem itself keeps its span (JSON output and editors use it).
    assert!(errors.problems()[0].primary_span().is_some());
    // A tab counts as several columns in the renderer: 20,000 tabs are past its limit too.
    let tabs = "\t".repeat(20_000);
    errors_rendered(&format!("{HEAD}{PUSH}after = [{tabs}\"zz\"]\n"));
}

fn errors_rendered(text: &str) {
    let _ = errors(text);
}
