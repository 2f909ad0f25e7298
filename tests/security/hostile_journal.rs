//! `plan report` of hostile journals: edited by hand, cut anywhere, holding markup, terminal
//! escapes, wrong types, huge and deeply nested values, bytes that are not UTF-8. The report
//! never panics (exit 0, or 4 when nothing can be read), keeps every text as text (no markup
//! from the journal in the HTML page, no escape sequence in any format), and stays bounded.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

const FORMATS: [&str; 3] = ["text", "markdown", "html"];

fn at(seconds: u32) -> String {
    format!("2026-01-01T12:00:{seconds:02}.000Z")
}

/// A run whose texts are all hostile.
fn hostile_lines() -> Vec<Value> {
    let evil = "<script>alert(1)</script>\u{1b}]0;owned\u{7}\u{1b}[2J`|</title>";
    let host = |status: i64| {
        json!({"host": format!("0:{evil}"), "status": status, "label": evil,
            "log_excerpt": format!("{evil}\n{}", "A".repeat(300_000))})
    };
    vec![
        json!({"type": "run_started", "format_version": 1, "run_id": evil, "plan": evil,
            "plan_file": evil, "api": evil, "user": evil, "host": evil, "pid": 1, "at": at(0),
            "pushes": {evil: "aa", "ok": "bb"}}),
        json!({"type": "push_submitting", "push": evil, "attempt": 1, "request_sha256": "aa",
            "task_name": evil, "targets": [evil], "at": at(1)}),
        json!({"type": "push_submitted", "push": evil, "attempt": 1,
            "job": {"api": "v3", "bk_biz_id": 2, "job_instance_id": 1, "start_pending": false}, "at": at(2)}),
        json!({"type": "push_attempt_finished", "push": evil, "attempt": "one", "job_instance_id": 1,
            "job_status": 4, "hosts": [host(310), host(9), {"host": 5}], "at": at(3)}),
        json!({"type": "push_submitting", "push": "ok", "attempt": 4_294_967_296_i64,
            "targets": "not a list", "at": "yesterday"}),
        json!({"type": evil, "push": evil, "at": at(4), "field": evil}),
        json!({"type": "push_finished", "push": evil, "status": evil, "at": at(5)}),
        json!({"type": "run_finished", "status": evil, "at": at(6)}),
    ]
}

fn journal_bytes() -> Vec<u8> {
    let mut bytes = Vec::new();
    for line in hostile_lines() {
        bytes.extend(serde_json::to_vec(&line).expect("json"));
        bytes.push(b'\n');
    }
    // Deep nesting (past serde_json's recursion limit), bytes that are not UTF-8, an empty
    // object, a bare number.
    bytes.extend("[".repeat(100_000).as_bytes());
    bytes.extend(b"\n\xff\xfe{\"type\":\"run_resumed\"}\n{}\n42\n");
    bytes
}

fn report(journal: &Path, format: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plan"))
        .args(["report", &journal.display().to_string(), "--format", format])
        .env("NO_COLOR", "1")
        .env_remove("PLAN_STATE_DIR")
        .output()
        .expect("run plan report")
}

fn check(out: &Output, format: &str, what: &str) {
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        code == 0 || code == 4,
        "{what} ({format}): exit {code}\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "{what} ({format}): an escape sequence"
    );
    assert!(!stdout.contains('\u{7}'), "{what} ({format}): a bell");
    if format == "html" {
        assert!(
            !stdout.contains("<script"),
            "{what}: markup from the journal"
        );
    }
    // Bounded: a 300,000-character log line is clipped.
    assert!(
        stdout.len() < 200_000,
        "{what} ({format}): {} bytes",
        stdout.len()
    );
}

#[test]
fn hostile_journals_are_reported_as_text_whole_or_cut_anywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = journal_bytes();
    let path = dir.path().join("run.jsonl");
    std::fs::write(&path, &bytes).expect("journal");
    for format in FORMATS {
        let out = report(&path, format);
        check(&out, format, "the whole journal");
        assert_eq!(out.status.code(), Some(0));
        if format == "html" {
            let page = String::from_utf8_lossy(&out.stdout);
            assert!(
                page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "shown as text"
            );
        }
    }
    // Cut at every line end and in the middle of every line, as a kill during a write (or an
    // editor) leaves it.
    let mut cuts = vec![0];
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' {
            let start = *cuts.last().unwrap_or(&0);
            cuts.push(start + (i - start) / 2);
            cuts.push(i + 1);
        }
    }
    for cut in cuts {
        std::fs::write(&path, &bytes[..cut]).expect("cut journal");
        check(
            &report(&path, "html"),
            "html",
            &format!("cut at byte {cut}"),
        );
    }
}
