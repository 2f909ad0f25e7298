//! Inferred ordering at file precision, through the built binary: a push reading a sibling of
//! what another delivers runs beside it (one stage in `plan show` and in `plan apply`), and a
//! push reading the delivered file itself waits for it, with a reason that is true.

use serde_json::Value;

use crate::apply::{Fixture, code, text};

/// `deliver` puts `/dst/a.txt` on 10.0.1.1; `reader` reads `READ` from 10.0.1.1.
fn plan_reading(read: &str) -> String {
    format!(
        r#"
[plan]
name = "siblings"
bk_biz_id = 2
account = "root"

[[push]]
name = "deliver"
from = {{ hosts = ["10.0.0.1"], files = ["/src/a.txt"] }}
to = {{ hosts = ["10.0.1.1"], path = "/dst/" }}

[[push]]
name = "reader"
from = {{ hosts = ["10.0.1.1"], files = ["{read}"] }}
to = {{ hosts = ["10.0.2.1"], path = "/out/" }}
"#
    )
}

fn show_json(f: &Fixture) -> Value {
    let out = f
        .plan()
        .args(["show", "plan.toml", "--format", "json"])
        .output()
        .expect("run plan");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    serde_json::from_str(&text(&out.stdout)).expect("json")
}

fn show_text(f: &Fixture) -> String {
    let out = f
        .plan()
        .args(["show", "plan.toml"])
        .output()
        .expect("run plan");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The `apply_started` event of an `apply --format json` that succeeded.
fn applied(f: &Fixture) -> Value {
    let out = f.apply_sandbox(&["--format", "json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let first = text(&out.stdout)
        .lines()
        .next()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .expect("events");
    assert_eq!(first["event"], "apply_started");
    first
}

#[test]
fn a_push_reading_a_sibling_of_a_delivered_file_runs_in_the_same_stage() {
    let f = Fixture::new(&plan_reading("/dst/other.txt"), "");
    f.write("10.0.0.1", "/src/a.txt", b"a");
    f.write("10.0.1.1", "/dst/other.txt", b"other");

    let doc = show_json(&f);
    assert_eq!(
        doc["stages"],
        serde_json::json!([{"stage": 1, "pushes": ["deliver", "reader"]}])
    );
    assert_eq!(doc["pushes"][1]["depends_on"], serde_json::json!([]));
    let shown = show_text(&f);
    assert!(!shown.contains("waits for"), "{shown}");

    assert_eq!(applied(&f)["stages"], 1);
    assert_eq!(f.read("10.0.1.1", "/dst/a.txt").as_deref(), Some(&b"a"[..]));
    assert_eq!(
        f.read("10.0.2.1", "/out/other.txt").as_deref(),
        Some(&b"other"[..])
    );
    assert_eq!(f.submissions("siblings/deliver"), 1);
    assert_eq!(f.submissions("siblings/reader"), 1);
}

#[test]
fn a_push_reading_the_delivered_file_waits_and_says_why() {
    let f = Fixture::new(&plan_reading("/dst/a.txt"), "");
    f.write("10.0.0.1", "/src/a.txt", b"a");

    let doc = show_json(&f);
    assert_eq!(doc["stages"].as_array().map(Vec::len), Some(2));
    let shown = show_text(&f);
    assert!(
        shown.contains("waits for deliver: reads /dst/a.txt on 0:10.0.1.1, which deliver delivers"),
        "{shown}"
    );

    assert_eq!(applied(&f)["stages"], 2);
    // The reader ran after the delivery: it found the file and passed it on.
    assert_eq!(f.read("10.0.2.1", "/out/a.txt").as_deref(), Some(&b"a"[..]));
}

#[test]
fn a_pattern_that_could_match_the_delivered_file_may_read_it() {
    let f = Fixture::new(&plan_reading("/dst/*.txt"), "");
    let shown = show_text(&f);
    assert!(
        shown.contains(
            "waits for deliver: may read /dst/*.txt on 0:10.0.1.1, which could match /dst/a.txt that deliver delivers"
        ),
        "{shown}"
    );
    let out = f
        .plan()
        .args(["show", "plan.toml", "--format", "markdown"])
        .output()
        .expect("run plan");
    let comment = text(&out.stdout);
    assert!(
        comment.contains("`deliver` (may read `/dst/*.txt` on 0:10.0.1.1)"),
        "{comment}"
    );
    let f = Fixture::new(&plan_reading("/dst/*.log"), "");
    assert_eq!(show_json(&f)["stages"].as_array().map(Vec::len), Some(1));
}
