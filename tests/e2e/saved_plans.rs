//! Saved plans and content hashes, through the built binary against the simulator: a saved
//! plan applies the same request bodies as its TOML without reading it; a tampered, cut,
//! newer or mismatched one sends nothing (the simulator's request log stays empty); `--expect`
//! refuses another hash and names the pushes that differ; every `show` format and `diff`
//! print the same hash; `diff --exit-code` tells unchanged, changed and invalid apart.

use serde_json::Value;

use crate::apply::{Fixture, TWO_STAGES, code, text};

/// The fixture with the source file in place.
fn fixture() -> Fixture {
    let f = Fixture::new(TWO_STAGES, "");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"saved plans");
    f
}

fn run(f: &Fixture, args: &[&str]) -> std::process::Output {
    f.plan().args(args).output().expect("run plan")
}

/// `plan show plan.toml --format json`, parsed.
fn show_json(f: &Fixture, plan: &str) -> Value {
    let out = run(f, &["show", plan, "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn save(f: &Fixture, file: &str) -> Value {
    let out = run(f, &["show", "plan.toml", "--save", file]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&format!("saved {file} (sha256:")));
    serde_json::from_slice(&std::fs::read(f.path(file)).expect("saved file")).expect("json")
}

/// The accepted submissions of the sandbox's request log, by push (the task name without
/// whatever `apply` appends to it), with their bodies.
fn submitted(f: &Fixture) -> Vec<(String, Value)> {
    f.requests()
        .into_iter()
        .filter(|r| r["api"] == "fast_push_file" && !r["job_instance_id"].is_null())
        .map(|r| {
            let task = r["body"]["task_name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let push = task
                .strip_prefix("e2e/")
                .unwrap_or(&task)
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .next()
                .unwrap_or_default()
                .to_owned();
            (push, r["body"].clone())
        })
        .collect()
}

/// Every field of `expected` is in `actual` with the same value (the task name only as a
/// prefix: a run may add its id to it).
fn assert_body_sent(expected: &Value, actual: &Value) {
    for (key, value) in expected.as_object().expect("body") {
        if key == "task_name" {
            let sent = actual[key].as_str().unwrap_or_default();
            assert!(
                sent.starts_with(value.as_str().unwrap_or_default()),
                "{sent}"
            );
        } else {
            assert_eq!(&actual[key], value, "{key}: {actual}");
        }
    }
}

/// `text` with the last `from` (in the request bodies, after the embedded sources) replaced.
fn replace_last(text: &str, from: &str, to: &str) -> String {
    let at = text.rfind(from).expect("present");
    format!("{}{to}{}", &text[..at], &text[at + from.len()..])
}

fn refused_with_nothing_sent(f: &Fixture, args: &[&str], says: &str) {
    let out = run(f, args);
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 1, "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?}: {stderr}");
    assert!(stderr.contains("nothing was sent"), "{args:?}: {stderr}");
    assert!(f.requests().is_empty(), "{args:?}: nothing may reach JOB");
}

#[test]
fn a_saved_plan_applies_the_bodies_of_its_toml_without_reading_it() {
    let f = fixture();
    let shown = show_json(&f, "plan.toml");
    let saved = save(&f, "reviewed.json");
    assert_eq!(saved["hash"], shown["hash"]);
    assert_eq!(saved["format_version"], 1);
    assert_eq!(saved["pushes"][0]["route"], "job/fast_push_file");
    assert_eq!(saved["sources"][0]["name"], "plan.toml");
    // The TOML changes after the review: the saved plan must not see it.
    std::fs::write(
        f.path("plan.toml"),
        TWO_STAGES.replace("10.0.2.2", "10.0.1.2"),
    )
    .expect("write");
    let out = run(
        &f,
        &[
            "apply",
            "reviewed.json",
            "--sandbox",
            "sandbox",
            "--poll-interval",
            "100",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        f.read("10.0.2.2", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"saved plans"[..])
    );
    assert_eq!(f.read("10.0.1.2", "/opt/app/app.tar.gz"), None);
    let sent = submitted(&f);
    assert_eq!(sent.len(), 2, "{sent:?}");
    for push in shown["pushes"].as_array().expect("pushes") {
        let name = push["name"].as_str().expect("name");
        let bodies: Vec<&Value> = sent
            .iter()
            .filter(|(p, _)| p == name)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(bodies.len(), 1, "{name} submitted once");
        assert_body_sent(&push["request"], bodies[0]);
    }
}

#[test]
fn saving_over_the_plan_itself_is_refused() {
    let f = fixture();
    let out = run(&f, &["show", "plan.toml", "--save", "./plan.toml"]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is the plan or one of its includes"));
    assert_eq!(
        std::fs::read_to_string(f.path("plan.toml")).expect("plan"),
        TWO_STAGES
    );
}

#[test]
fn tampered_cut_newer_and_foreign_saved_plans_send_nothing() {
    let f = fixture();
    save(&f, "reviewed.json");
    let original = std::fs::read_to_string(f.path("reviewed.json")).expect("read");
    let apply = ["apply", "bad.json", "--sandbox", "sandbox"];
    let cases: [(String, &str); 7] = [
        // A target host edited in the request body.
        (
            replace_last(&original, "10.0.2.2", "10.6.6.6"),
            "does not match its hash",
        ),
        // The embedded TOML edited, its digest left.
        (
            original.replace("/opt/app/", "/opt/evil/"),
            "does not match its hash",
        ),
        (
            original[..original.len() / 2].to_owned(),
            "not a complete JSON document",
        ),
        (
            original.replace("\"format_version\": 1", "\"format_version\": 9"),
            "saved by a newer plan (format_version 9",
        ),
        (
            original.replacen('{', "{\n  \"extra\": 1,", 1),
            "not a saved plan",
        ),
        ("{\"plan\": \"e2e\"}".to_owned(), "not a saved plan"),
        // A reason reworded: nothing sent changes, but it is not what was reviewed.
        (
            original.replacen("which to-relays delivers", "which nobody delivers", 1),
            "`edges` is not what its embedded plan resolves to",
        ),
    ];
    for (content, says) in cases {
        std::fs::write(f.path("bad.json"), &content).expect("write");
        refused_with_nothing_sent(&f, &apply, says);
    }
    // Every message says what to do.
    std::fs::write(f.path("bad.json"), &original[..10]).expect("write");
    let out = run(&f, &apply);
    assert!(text(&out.stderr).contains("plan show PLAN --save FILE"));
}

#[test]
fn a_rewritten_source_with_its_digest_fixed_is_still_refused() {
    let f = fixture();
    let mut saved = save(&f, "reviewed.json");
    let source = &mut saved["sources"][0];
    let edited = source["text"]
        .as_str()
        .expect("text")
        .replace("10.0.2.2", "10.0.1.2");
    let digest = {
        use sha2::Digest as _;
        format!("sha256:{:x}", sha2::Sha256::digest(edited.as_bytes()))
    };
    source["text"] = Value::String(edited);
    source["sha256"] = Value::String(digest);
    std::fs::write(
        f.path("bad.json"),
        serde_json::to_string_pretty(&saved).expect("json"),
    )
    .expect("write");
    refused_with_nothing_sent(
        &f,
        &["apply", "bad.json", "--sandbox", "sandbox"],
        "to-web: changed",
    );
}

#[test]
fn expect_refuses_another_hash_and_names_what_differs() {
    let f = fixture();
    let reviewed = save(&f, "reviewed.json");
    let hash = reviewed["hash"].as_str().expect("hash").to_owned();
    std::fs::write(
        f.path("plan.toml"),
        TWO_STAGES.replace("10.0.2.2", "10.0.1.2"),
    )
    .expect("write");
    let now = show_json(&f, "plan.toml")["hash"]
        .as_str()
        .expect("hash")
        .to_owned();
    assert_ne!(now, hash);

    let apply = |expect: &str| {
        vec![
            "apply".to_owned(),
            "plan.toml".to_owned(),
            "--sandbox".to_owned(),
            "sandbox".to_owned(),
            "--expect".to_owned(),
            expect.to_owned(),
        ]
    };
    let by_hash = apply(&hash);
    let by_hash: Vec<&str> = by_hash.iter().map(String::as_str).collect();
    refused_with_nothing_sent(
        &f,
        &by_hash,
        &format!("resolves to {now}, not the expected {hash}"),
    );
    let by_file = apply("reviewed.json");
    let by_file: Vec<&str> = by_file.iter().map(String::as_str).collect();
    refused_with_nothing_sent(&f, &by_file, "the pushes that differ: to-web: changed");

    // The hash the plan has now applies, in upper case too.
    let out = run(
        &f,
        &[
            "apply",
            "plan.toml",
            "--sandbox",
            "sandbox",
            "--poll-interval",
            "100",
            "--expect",
            &now.to_ascii_uppercase().replacen("SHA256:", "sha256:", 1),
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(submitted(&f).len(), 2);
}

#[test]
fn expect_that_is_not_a_hash_is_a_usage_error() {
    let f = fixture();
    for bad in ["sha256:abc", "md5:0123", "deadbeef", "sha256:missing.json"] {
        let out = run(
            &f,
            &[
                "apply",
                "plan.toml",
                "--sandbox",
                "sandbox",
                "--expect",
                bad,
            ],
        );
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), 2, "{bad}: {stderr}");
        assert!(stderr.contains("`sha256:` and 64 hex digits"), "{stderr}");
    }
    assert!(f.requests().is_empty());
    save(&f, "reviewed.json");
    let out = run(
        &f,
        &[
            "apply",
            "reviewed.json",
            "--sandbox",
            "sandbox",
            "--var",
            "x=1",
        ],
    );
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is a saved plan"));
}

#[test]
fn every_show_format_and_diff_print_one_hash_that_ignores_formatting() {
    let f = fixture();
    let hash = show_json(&f, "plan.toml")["hash"]
        .as_str()
        .expect("hash")
        .to_owned();
    assert!(hash.starts_with("sha256:") && hash.len() == 71, "{hash}");
    let out = run(&f, &["show", "plan.toml"]);
    assert!(text(&out.stdout).contains(&format!("\nhash {hash}\n")));
    let out = run(&f, &["show", "plan.toml", "--format", "markdown"]);
    let markdown = text(&out.stdout);
    assert!(
        markdown.contains(&format!("<!-- plan:hash e2e {hash} -->")),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!("Content hash: `{hash}`")),
        "{markdown}"
    );

    // Comments, blank lines, key order and a variable: the same requests, the same hash.
    let reformatted = format!(
        "# reviewed\n{}",
        TWO_STAGES
            .replace(
                "name = \"e2e\"\nbk_biz_id = 2",
                "bk_biz_id = 2   # business\nname = \"e2e\""
            )
            .replace("\"/opt/app/\"", "\"${dst}\"")
            .replace(
                "[hosts.src]",
                "[vars]\ndst = \"/opt/app/\"\n\n\n[hosts.src]"
            )
    );
    std::fs::write(f.path("reformatted.toml"), reformatted).expect("write");
    assert_eq!(show_json(&f, "reformatted.toml")["hash"], hash.as_str());

    let out = run(
        &f,
        &["diff", "plan.toml", "reformatted.toml", "--format", "json"],
    );
    let diff: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(diff["old_hash"], hash.as_str());
    assert_eq!(diff["new_hash"], hash.as_str());
    let out = run(&f, &["diff", "plan.toml", "reformatted.toml"]);
    assert!(text(&out.stdout).contains(&format!("hash {hash} (unchanged)")));

    std::fs::write(
        f.path("changed.toml"),
        TWO_STAGES.replace("10.0.2.2", "10.0.1.2"),
    )
    .expect("write");
    let new = show_json(&f, "changed.toml")["hash"]
        .as_str()
        .expect("hash")
        .to_owned();
    let out = run(&f, &["diff", "plan.toml", "changed.toml"]);
    assert!(text(&out.stdout).contains(&format!("hash {hash} -> {new}")));
    let out = run(
        &f,
        &["diff", "plan.toml", "changed.toml", "--format", "markdown"],
    );
    assert!(text(&out.stdout).contains(&format!("<!-- plan:hash e2e {new} -->")));
}

#[test]
fn diff_exit_code_tells_unchanged_changed_invalid_and_usage_apart() {
    let f = fixture();
    std::fs::write(f.path("same.toml"), format!("# comment\n{TWO_STAGES}")).expect("write");
    std::fs::write(
        f.path("changed.toml"),
        TWO_STAGES.replace("10.0.2.2", "10.0.1.2"),
    )
    .expect("write");
    std::fs::write(
        f.path("invalid.toml"),
        TWO_STAGES.replace("hosts = \"web\"", "hosts = \"wbe\""),
    )
    .expect("write");
    for (new, expected) in [("same.toml", 0), ("changed.toml", 10), ("invalid.toml", 1)] {
        let out = run(
            &f,
            &[
                "diff",
                "plan.toml",
                new,
                "--exit-code",
                "--format",
                "markdown",
            ],
        );
        assert_eq!(code(&out), expected, "{new}: {}", text(&out.stderr));
    }
    let out = run(&f, &["diff", "plan.toml", "--exit-code"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));

    // The same pushes in another order within their stage: the order of submissions is part
    // of what was reviewed.
    let (head, pushes) = TWO_STAGES.split_once("[[push]]").expect("pushes");
    let (first, second) = pushes.split_once("[[push]]").expect("two pushes");
    let independent = |p: &str| p.replace("hosts = \"relay\", files", "hosts = \"src\", files");
    let one_stage = format!("{head}[[push]]{}[[push]]{}", first, independent(second));
    let swapped = format!(
        "{head}[[push]]{}\n[[push]]{}",
        independent(second).trim_end(),
        first
    );
    std::fs::write(f.path("one-stage.toml"), one_stage).expect("write");
    std::fs::write(f.path("swapped.toml"), swapped).expect("write");
    let out = run(
        &f,
        &["diff", "one-stage.toml", "swapped.toml", "--exit-code"],
    );
    assert_eq!(code(&out), 10, "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("the same pushes in another order within a stage"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&f, &["--help"]);
    assert!(text(&out.stdout).contains("10   diff --exit-code"));
}

#[test]
fn the_saved_plan_validates_against_its_schema() {
    let f = fixture();
    let saved = save(&f, "reviewed.json");
    let out = run(&f, &["schema", "--output", "saved"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let schema: Value = serde_json::from_slice(&out.stdout).expect("json");
    jsonschema::meta::validate(&schema).expect("a valid schema");
    let validator = jsonschema::draft202012::new(&schema).expect("compiles");
    let problems: Vec<String> = validator
        .iter_errors(&saved)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_saved_plan_reads_nothing_from_disk_and_hostile_ones_fail_cleanly() {
    let f = fixture();
    // The plan includes an inventory; the saved plan embeds it.
    let with_include = TWO_STAGES
        .replace("[hosts.web]\nips = [\"10.0.2.1\", \"10.0.2.2\"]\n", "")
        .replacen("[plan]", "include = [\"web.toml\"]\n\n[plan]", 1);
    std::fs::write(f.path("plan.toml"), &with_include).expect("plan");
    std::fs::write(
        f.path("web.toml"),
        "[hosts.web]\nips = [\"10.0.2.1\", \"10.0.2.2\"]\n",
    )
    .expect("include");
    let saved = save(&f, "reviewed.json");
    assert_eq!(saved["sources"][1]["name"], "web.toml");

    // The include dropped from the document (digests stay consistent): the file on disk is
    // still there, and is not read.
    let mut without = saved.clone();
    without["sources"]
        .as_array_mut()
        .expect("sources")
        .truncate(1);
    std::fs::write(
        f.path("bad.json"),
        serde_json::to_string(&without).expect("json"),
    )
    .expect("write");
    let out = run(&f, &["apply", "bad.json", "--sandbox", "sandbox"]);
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 1, "{stderr}");
    assert!(
        stderr.contains("not embedded in the saved plan"),
        "{stderr}"
    );
    assert!(f.requests().is_empty());

    // Deep nesting, binary garbage and an empty file: refused, no panic.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for content in [deep.into_bytes(), vec![0xff, 0xfe, 0x00, 0x7b], Vec::new()] {
        std::fs::write(f.path("bad.json"), &content).expect("write");
        let out = run(&f, &["apply", "bad.json", "--sandbox", "sandbox"]);
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), 1, "{stderr}");
        assert!(stderr.contains("nothing was sent"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(f.requests().is_empty());

    // The intact saved plan applies, its include from the document.
    std::fs::remove_file(f.path("web.toml")).expect("rm");
    let out = run(
        &f,
        &[
            "apply",
            "reviewed.json",
            "--sandbox",
            "sandbox",
            "--poll-interval",
            "100",
        ],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(submitted(&f).len(), 2);
}
