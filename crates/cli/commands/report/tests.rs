//! The report of hand-written journals: a failure, a retry, an interruption, hostile text,
//! a truncated last line, kinds this version does not know.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::model::Run;
use super::{html, markdown, text};

const AT: &str = "2026-01-01T12:00:";

fn at(seconds: f64) -> String {
    format!("{AT}{seconds:06.3}Z")
}

fn started(seconds: f64) -> Value {
    json!({"type": "run_started", "format_version": 1, "run_id": "20260101T120000.000Z-1a2b3c4d",
        "plan": "web", "plan_file": "plan.toml", "api": "v3", "user": "alice", "host": "ops1",
        "pid": 7, "at": at(seconds), "pushes": {"to-relays": "aa", "to-web": "bb"}})
}

fn host(ip: &str, status: i64, label: &str, log: Option<&str>) -> Value {
    let mut h = json!({"host": format!("0:{ip}"), "status": status, "label": label});
    if let Some(log) = log {
        h["log_excerpt"] = json!(log);
    }
    h
}

/// A run with a retry on `to-relays`, an interruption, a resume and a failure on `to-web`.
fn eventful() -> Vec<Value> {
    vec![
        started(0.0),
        json!({"type": "push_submitting", "push": "to-relays", "attempt": 1, "request_sha256": "aa", "task_name": "web/to-relays#1a2b3c4d", "targets": ["0:10.0.1.1", "0:10.0.1.2"], "two_phase": true, "at": at(0.1)}),
        json!({"type": "push_submitted", "push": "to-relays", "attempt": 1, "job": {"api": "v3", "bk_biz_id": 2, "job_instance_id": 101, "start_pending": true}, "at": at(0.2)}),
        json!({"type": "push_started", "push": "to-relays", "job_instance_id": 101, "at": at(0.5)}),
        json!({"type": "push_attempt_finished", "push": "to-relays", "attempt": 1, "job_instance_id": 101, "job_status": 4,
            "hosts": [host("10.0.1.1", 9, "Success", None), host("10.0.1.2", 310, "Agent abnormal", Some("flaky"))], "at": at(2.0)}),
        json!({"type": "push_submitting", "push": "to-relays", "attempt": 2, "request_sha256": "cc", "task_name": "web/to-relays#1a2b3c4d", "targets": ["0:10.0.1.2"], "at": at(2.1)}),
        json!({"type": "push_submitted", "push": "to-relays", "attempt": 2, "job": {"api": "v3", "bk_biz_id": 2, "job_instance_id": 102, "start_pending": false}, "at": at(2.2)}),
        json!({"type": "push_attempt_finished", "push": "to-relays", "attempt": 2, "job_instance_id": 102, "job_status": 3,
            "hosts": [host("10.0.1.2", 9, "Success", None)], "at": at(3.0)}),
        json!({"type": "push_finished", "push": "to-relays", "status": "succeeded", "at": at(3.0)}),
        json!({"type": "run_finished", "status": "interrupted", "at": at(3.1)}),
        json!({"type": "run_resumed", "user": "bob", "host": "ops2", "pid": 8, "at": at(40.0)}),
        json!({"type": "push_submitting", "push": "to-web", "attempt": 1, "request_sha256": "bb", "task_name": "web/to-web#1a2b3c4d", "targets": ["0:10.0.2.1", "0:10.0.2.2"], "at": at(40.1)}),
        json!({"type": "push_submitted", "push": "to-web", "attempt": 1, "job": {"api": "v3", "bk_biz_id": 2, "job_instance_id": 103, "start_pending": false}, "at": at(40.2)}),
        json!({"type": "batch_started", "push": "to-web", "batch": 1, "hosts": 2, "at": at(40.3)}),
        json!({"type": "push_attempt_finished", "push": "to-web", "attempt": 1, "job_instance_id": 103, "job_status": 4,
            "hosts": [host("10.0.2.1", 9, "Success", None), host("10.0.2.2", 310, "Agent abnormal", Some("line 1\n<script>alert(1)</script>\n\u{1b}[31mred"))], "at": at(45.0)}),
        json!({"type": "push_finished", "push": "to-web", "status": "failed", "at": at(45.0)}),
        json!({"type": "run_finished", "status": "failed", "at": at(45.1)}),
    ]
}

fn write(lines: &[Value], tail: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("20260101T120000.000Z-1a2b3c4d.jsonl");
    let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    text.push_str(tail);
    std::fs::write(&path, text).expect("write");
    (dir, path)
}

fn read(lines: &[Value], tail: &str) -> Run {
    let (_dir, path) = write(lines, tail);
    let stages = BTreeMap::from([("to-relays".to_owned(), 1), ("to-web".to_owned(), 2)]);
    Run::read(&path, &stages).expect("read")
}

#[test]
fn a_run_with_a_retry_an_interruption_and_a_failure_reads_whole() {
    let run = read(&eventful(), "");
    assert_eq!(run.outcome(), "failed");
    assert_eq!(run.segments.len(), 2);
    assert_eq!(run.interruptions().count(), 1);
    let relays = &run.pushes[0];
    assert_eq!(
        (relays.name.as_str(), relays.attempts.len()),
        ("to-relays", 2)
    );
    assert_eq!(relays.status_label(), "succeeded");
    // The host that failed once and succeeded on the retry counts as a success.
    assert!(relays.failed_hosts().next().is_none());
    let web = &run.pushes[1];
    assert_eq!(web.status_label(), "failed");
    assert_eq!(web.marks.len(), 1, "the batch line is kept as an event");
    assert!(
        run.notes.iter().any(|n| n.contains("`batch_started`")),
        "{:?}",
        run.notes
    );

    let page = html::render(&run);
    for push in ["to-relays", "to-web"] {
        assert!(
            page.contains(&format!("<g class=\"push\" data-push=\"{push}\"")),
            "{push}"
        );
    }
    assert!(page.contains("class=\"span running good retry\" data-attempt=\"2\""));
    assert!(page.contains("class=\"interruption\""));
    assert!(page.contains("class=\"resume\""));
    assert!(page.contains("data-stage=\"2\""));
    assert!(page.contains("data-host=\"0:10.0.2.2\""));
    assert!(page.contains(">Agent abnormal<small>310</small>"));
    // Hostile log text is text, and no escape sequence reaches any output.
    assert!(!page.contains("<script>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let plain = text::render(&run, false);
    let md = markdown::render(&run);
    for out in [&page, &plain, &md] {
        assert!(!out.contains('\u{1b}'));
    }
    assert!(
        plain.contains("to-web on 0:10.0.2.2: Agent abnormal (status 310)"),
        "{plain}"
    );
    assert!(
        plain.contains("interrupted at +3.1 s, resumed at +40.0 s"),
        "{plain}"
    );
    assert!(plain.contains("(2 attempts: 1 retry)"), "{plain}");
    assert!(
        md.contains("| 0:10.0.2.2 | - | ❌ Agent abnormal |"),
        "{md}"
    );
    assert!(md.contains("operator | alice@ops1"), "{md}");
    assert!(md.contains("resumed by | bob@ops2"), "{md}");
}

#[test]
fn a_truncated_last_line_is_ignored_and_said() {
    let lines = eventful();
    let run = read(&lines[..8], "{\"type\":\"push_attempt_fini");
    assert_eq!(run.notes, ["line 9: last line truncated: ignored"]);
    assert_eq!(run.outcome(), "unfinished");
    assert_eq!(run.pushes[0].attempts.len(), 2);
    // Its last attempt reached the host that failed and delivered: JOB's success.
    assert_eq!(run.pushes[0].status_label(), "succeeded");
    let plain = text::render(&run, false);
    assert!(
        plain.contains("line 9: last line truncated: ignored"),
        "{plain}"
    );
}

#[test]
fn a_damaged_line_inside_and_another_format_are_said_and_the_rest_shown() {
    let mut lines = eventful();
    lines[0]["format_version"] = json!(0);
    lines.insert(3, json!("not an object"));
    lines[1]
        .as_object_mut()
        .expect("object")
        .remove("two_phase");
    let run = read(&lines, "");
    assert!(
        run.notes.iter().any(|n| n.contains("journal format 0")),
        "{:?}",
        run.notes
    );
    assert!(
        run.notes
            .iter()
            .any(|n| n == "line 4: not a journal line: ignored"),
        "{:?}",
        run.notes
    );
    assert_eq!(run.pushes.len(), 2);
    assert_eq!(run.outcome(), "failed");
}

#[test]
fn a_journal_without_its_first_line_is_shown_and_one_without_a_line_is_an_error() {
    let lines = eventful();
    let run = read(&lines[1..], "");
    assert_eq!(run.pushes.len(), 2);
    assert!(
        run.notes
            .iter()
            .any(|n| n.starts_with("no `run_started` line")),
        "{:?}",
        run.notes
    );
    let (_dir, path) = write(&[], "{\"type\": \"run_sta");
    let error = Run::read(&path, &BTreeMap::new()).expect_err("nothing readable");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    let missing = path.with_file_name("missing.jsonl");
    let error = Run::read(&missing, &BTreeMap::new()).expect_err("missing");
    assert!(error.to_string().contains("missing.jsonl"), "{error}");
}

#[test]
fn hostile_names_stay_text_in_every_format() {
    let mut lines = eventful();
    for line in &mut lines[1..9] {
        line["push"] = json!("<img src=x onerror=alert(1)>|`x`\"");
    }
    lines[0]["pushes"] = json!({"<img src=x onerror=alert(1)>|`x`\"": "aa", "to-web": "bb"});
    lines[0]["plan"] = json!("</title><script>x</script>");
    let run = read(&lines, "");
    let page = html::render(&run);
    assert!(
        !page.contains("<img") && !page.contains("<script"),
        "{page}"
    );
    assert!(page.contains("data-push=\"&lt;img src=x onerror=alert(1)&gt;|`x`&quot;\""));
    // Outside code blocks (whose text Markdown shows as it is), no HTML.
    let md = markdown::render(&run);
    let prose: String = md.split("```").step_by(2).collect();
    assert!(
        !prose.contains("<img") && !prose.contains("<script"),
        "{md}"
    );
}

#[test]
fn batches_confirmations_retries_in_the_job_and_verifications_are_drawn() {
    let job = json!({"api": "v3", "bk_biz_id": 2, "job_instance_id": 201, "start_pending": false});
    let lines = vec![
        started(0.0),
        json!({"type": "push_submitting", "push": "to-web", "attempt": 1, "request_sha256": "bb", "task_name": null, "targets": ["0:10.0.2.1", "0:10.0.2.2"], "batch": {"index": 1, "count": 2}, "at": at(0.1)}),
        json!({"type": "push_submitted", "push": "to-web", "attempt": 1, "job": job, "batch": {"index": 1, "count": 2}, "at": at(0.2)}),
        json!({"type": "push_batch_finished", "push": "to-web", "job_instance_id": 201, "batch": 1, "batches": 2, "status": "failed",
            "hosts": [host("10.0.2.1", 310, "Abnormal Agent", None)], "at": at(1.0)}),
        json!({"type": "push_awaiting_confirmation", "push": "to-web", "point": {"kind": "batch", "job_instance_id": 201, "batch": 1, "batches": 2, "failed": true}, "at": at(1.1)}),
        json!({"type": "run_finished", "status": "awaiting_confirmation", "at": at(1.2)}),
        json!({"type": "run_resumed", "user": "carol", "host": "ops3", "pid": 9, "at": at(5.0)}),
        json!({"type": "push_confirmed", "push": "to-web", "point": {"kind": "batch", "job_instance_id": 201, "batch": 1, "batches": 2, "failed": true}, "by": "carol", "at": at(5.1)}),
        json!({"type": "push_retry_requested", "push": "to-web", "attempt": 2, "job": job, "hosts": ["0:10.0.2.1"], "execute_count": 1, "at": at(5.2)}),
        json!({"type": "push_attempt_finished", "push": "to-web", "attempt": 2, "job_instance_id": 201, "job_status": 3,
            "hosts": [host("10.0.2.1", 9, "Success", None), host("10.0.2.2", 9, "Success", None)], "at": at(7.0)}),
        json!({"type": "push_verified", "push": "to-web", "job_instance_id": 201, "verification": {"method": "sha256", "hosts": 2, "verified": 2}, "at": at(7.5)}),
        json!({"type": "push_finished", "push": "to-web", "status": "succeeded", "at": at(7.6)}),
        json!({"type": "run_finished", "status": "succeeded", "at": at(7.7)}),
    ];
    let run = read(&lines, "");
    assert!(run.notes.is_empty(), "every kind is known: {:?}", run.notes);
    let web = run
        .pushes
        .iter()
        .find(|p| p.name == "to-web")
        .expect("to-web");
    let marks: Vec<&str> = web.marks.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        marks,
        [
            "batch 1/2 failed: 0 of 1 hosts ok",
            "waiting for a confirmation: after batch 1/2 (a host failed)",
            "confirmed by carol: after batch 1/2 (a host failed)",
            "verified (sha256): 2 of 2 hosts hold the sources' files",
        ]
    );
    assert_eq!(web.attempts.len(), 2);
    assert!(web.attempts[1].in_job && web.is_retry(1));
    assert_eq!(web.status_label(), "succeeded");
    assert_eq!(
        run.segments[0].outcome.as_deref(),
        Some("awaiting confirmation")
    );
    let page = html::render(&run);
    assert!(
        page.contains("class=\"span running good retry\" data-attempt=\"2\""),
        "{page}"
    );
    assert!(page.contains(">b1</text>"), "the batch's label: {page}");
    assert!(page.contains("data-kind=\"push_confirmed\""));
    assert!(
        page.contains("<text class=\"batch-label bad\""),
        "batch 1 failed: {page}"
    );
    assert!(
        page.contains("class=\"span running bad\" data-attempt=\"1\""),
        "stopped by JOB on its failure: {page}"
    );
    let plain = text::render(&run, false);
    assert!(plain.contains("confirmed by carol"), "{plain}");
}
