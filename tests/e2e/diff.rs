//! `plan diff` on realistic edits of a plan and its include, in every format; `--base` against
//! a real git repository; exit codes.

use std::path::Path;
use std::process::{Command, Output};

const INVENTORY: &str = r#"# Inventory shared by the release plans.
[hosts.build]
ips = ["10.0.0.5"]

[hosts.relay]
ips = ["0:10.0.1.1", "0:10.0.1.2"]

[hosts.web]
ips = ["0:10.0.3.1", "0:10.0.3.2"]
dynamic_groups = ["blo8gojho0skft7pr5q0"]
"#;

const PLAN: &str = r#"version = 1
include = ["inventory.toml"]

[plan]
name = "release"
bk_biz_id = 2
account = "root"
timeout = 600

[vars]
version = "1.4.2"

[[push]]
name = "artifact-to-relays"
from = { hosts = "build", files = ["/data/release/app-${version}.tar.gz"] }
to = { hosts = "relay", path = "/data/stage/" }

[[push]]
name = "relays-to-web"
from = { hosts = "relay", files = ["/data/stage/app-${version}.tar.gz"] }
to = { hosts = "web", path = "/opt/app/releases/[FILESRCIP]/" }

[[push]]
name = "configs"
after = ["relays-to-web"]
from = { hosts = "build", files = ["/etc/app/app.conf"] }
to = { hosts = "web", path = "/etc/app/" }

[[push]]
name = "logrotate"
from = { hosts = "build", files = ["/etc/logrotate.d/app"] }
to = { hosts = ["relay", "0:10.0.9.9"], path = "/etc/logrotate.d/" }
"#;

/// Writes `old/` and `new/` versions of the plan and its inventory into a temp dir.
fn versions(new_plan: &str, new_inventory: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (side, plan, inventory) in [("old", PLAN, INVENTORY), ("new", new_plan, new_inventory)] {
        let d = dir.path().join(side);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("release.toml"), plan).expect("write plan");
        std::fs::write(d.join("inventory.toml"), inventory).expect("write inventory");
    }
    dir
}

fn plan_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plan"))
        .args(args)
        .current_dir(dir)
        .env("PLAN_NO_PROGRESS", "1")
        .env("NO_COLOR", "1")
        .output()
        .expect("run plan")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

/// Runs the diff in all three formats and snapshots each; returns the JSON document.
fn snapshot_all(name: &str, new_plan: &str, new_inventory: &str) -> serde_json::Value {
    let dir = versions(new_plan, new_inventory);
    let mut json = serde_json::Value::Null;
    for format in ["text", "json", "markdown"] {
        let out = plan_in(
            dir.path(),
            &[
                "diff",
                "old/release.toml",
                "new/release.toml",
                "--format",
                format,
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "plan diff ({format}) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = stdout(&out);
        if format == "json" {
            json = serde_json::from_str(&text).expect("json document");
        }
        if format == "markdown" {
            assert!(text.starts_with("<!-- plan:diff release -->\n"), "{text}");
            assert!(text.len() < 60_000);
        }
        insta::assert_snapshot!(format!("diff-{name}-{format}"), text);
    }
    json
}

fn changed_names(doc: &serde_json::Value) -> Vec<String> {
    doc["changed"]
        .as_array()
        .expect("changed")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_owned())
        .collect()
}

#[test]
fn host_added_to_a_group_used_by_two_pushes() {
    let inventory = INVENTORY.replace(
        r#"ips = ["0:10.0.3.1", "0:10.0.3.2"]"#,
        r#"ips = ["0:10.0.3.1", "0:10.0.3.2", "0:10.0.3.9"]"#,
    );
    let doc = snapshot_all("group-host-added", PLAN, &inventory);
    assert_eq!(changed_names(&doc), ["relays-to-web", "configs"]);
    for c in doc["changed"].as_array().expect("changed") {
        assert_eq!(
            c["fields"],
            serde_json::json!([{"path": "target_server.ip_list", "added": ["0:10.0.3.9"], "removed": []}])
        );
        assert_eq!(
            c["causes"],
            serde_json::json!([{"group": "web", "file": "new/inventory.toml"}])
        );
    }
    assert_eq!(
        doc["summary"],
        "~2 changed; targets +1 host; 1 host group changed"
    );
    let kinds: Vec<&str> = doc["attention"]
        .as_array()
        .expect("attention")
        .iter()
        .map(|a| a["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["widened", "widened"]);
}

#[test]
fn renamed_push() {
    let plan = PLAN.replace(r#"name = "logrotate""#, r#"name = "logrotate-config""#);
    let doc = snapshot_all("renamed", &plan, INVENTORY);
    let renamed = &doc["renamed"];
    assert_eq!(renamed.as_array().map(Vec::len), Some(1), "{renamed}");
    assert_eq!(renamed[0]["old"], "logrotate");
    assert_eq!(renamed[0]["new"], "logrotate-config");
    assert_eq!(renamed[0]["fields"], serde_json::json!([]));
    assert_eq!(doc["added"], serde_json::json!([]));
    assert_eq!(doc["removed"], serde_json::json!([]));
}

#[test]
fn variable_change() {
    let plan = PLAN.replace(r#"version = "1.4.2""#, r#"version = "1.4.3""#);
    let doc = snapshot_all("variable", &plan, INVENTORY);
    assert_eq!(changed_names(&doc), ["artifact-to-relays", "relays-to-web"]);
    assert_eq!(
        doc["changed"][1]["fields"][0],
        serde_json::json!({
            "path": "file_source[0].files",
            "added": ["/data/stage/app-1.4.3.tar.gz"],
            "removed": ["/data/stage/app-1.4.2.tar.gz"]
        })
    );
    assert_eq!(
        doc["changed"][1]["causes"],
        serde_json::json!([{"var": "version"}])
    );
    assert_eq!(
        doc["vars"],
        serde_json::json!([{"name": "version", "old": "1.4.2", "new": "1.4.3"}])
    );
}

#[test]
fn removed_push() {
    let start = PLAN.find("[[push]]\nname = \"configs\"").expect("configs");
    let end = PLAN
        .find("[[push]]\nname = \"logrotate\"")
        .expect("logrotate");
    let plan = format!("{}{}", &PLAN[..start], &PLAN[end..]);
    let doc = snapshot_all("removed", &plan, INVENTORY);
    assert_eq!(doc["removed"][0]["name"], "configs");
    assert_eq!(doc["attention"][0]["kind"], "removed");
    assert_eq!(doc["stages"], serde_json::json!({"old": 3, "new": 2}));
    assert_eq!(
        doc["edges"]["removed"],
        serde_json::json!([{"from": "relays-to-web", "to": "configs", "kind": "explicit"}])
    );
}

#[test]
fn no_changes_and_exit_code() {
    let dir = versions(PLAN, INVENTORY);
    let args = ["diff", "old/release.toml", "new/release.toml"];
    let out = plan_in(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("\nno changes\n"), "{}", stdout(&out));
    let out = plan_in(dir.path(), &[&args[..], &["--exit-code"]].concat());
    assert_eq!(out.status.code(), Some(0));

    let changed = versions(&PLAN.replace("timeout = 600", "timeout = 900"), INVENTORY);
    let out = plan_in(changed.path(), &args);
    assert_eq!(out.status.code(), Some(0), "changes alone do not fail");
    let out = plan_in(changed.path(), &[&args[..], &["--exit-code"]].concat());
    assert_eq!(
        out.status.code(),
        Some(10),
        "--exit-code: 10 when there are changes"
    );
    assert!(
        stdout(&out).contains("timeout: 600 -> 900"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn an_invalid_version_exits_1_and_says_which() {
    let dir = versions(
        &PLAN.replace("hosts = \"build\"", "hosts = \"biuld\""),
        INVENTORY,
    );
    let out = plan_in(
        dir.path(),
        &["diff", "old/release.toml", "new/release.toml"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("biuld"), "{stderr}");
    assert!(
        stderr.contains("the new version of new/release.toml is invalid"),
        "{stderr}"
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A repository with the plan under `plans/` and its inventory one level down, committed;
/// then both are edited in the work tree.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("plans/inventory")).expect("mkdir");
    let plan = PLAN.replace("inventory.toml", "inventory/prod.toml");
    std::fs::write(root.join("plans/release.toml"), &plan).expect("write");
    std::fs::write(root.join("plans/inventory/prod.toml"), INVENTORY).expect("write");
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "base"]);
    // The change under review: a host in the inventory, a new push, a longer timeout.
    std::fs::write(
        root.join("plans/inventory/prod.toml"),
        INVENTORY.replace(
            r#"ips = ["0:10.0.1.1", "0:10.0.1.2"]"#,
            r#"ips = ["0:10.0.1.1", "0:10.0.1.2", "0:10.0.1.3"]"#,
        ),
    )
    .expect("write");
    std::fs::write(
        root.join("plans/release.toml"),
        format!(
            "{}\n[[push]]\nname = \"motd\"\nfrom = {{ hosts = \"build\", files = [\"/etc/motd\"] }}\nto = {{ hosts = \"web\", path = \"/etc/\" }}\n",
            plan.replace("timeout = 600", "timeout = 900")
        ),
    )
    .expect("write");
    dir
}

#[test]
fn base_reads_the_plan_and_its_includes_from_git() {
    let dir = repo();
    let root = dir.path();
    let out = plan_in(
        root,
        &[
            "diff",
            "plans/release.toml",
            "--base",
            "HEAD",
            "--format",
            "json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(doc["added"][0]["name"], "motd");
    // The inventory change is read from HEAD, so the relay host shows up as a change.
    let artifact = doc["changed"]
        .as_array()
        .expect("changed")
        .iter()
        .find(|c| c["name"] == "artifact-to-relays")
        .expect("artifact-to-relays changed");
    assert!(
        artifact["fields"]
            .as_array()
            .expect("fields")
            .contains(&serde_json::json!({"path": "target_server.ip_list", "added": ["0:10.0.1.3"], "removed": []})),
        "{artifact}"
    );
    assert_eq!(
        artifact["causes"],
        serde_json::json!([{"group": "relay", "file": "plans/inventory/prod.toml"}])
    );
    assert!(
        doc["changed"].as_array().expect("changed").len() >= 4,
        "the timeout changed on every push"
    );

    // From a subdirectory, with a path that climbs back up, the same files are read.
    let sub = root.join("plans/inventory");
    let out = plan_in(&sub, &["diff", "../release.toml", "--base", "HEAD"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.contains("HEAD:plans/release.toml"), "{text}");
    assert!(text.contains("+ motd (stage 1)"), "{text}");

    // From outside the repository, with an absolute path.
    let absolute = root.join("plans/release.toml");
    let out = plan_in(
        Path::new("/"),
        &[
            "diff",
            absolute.to_str().expect("utf-8 path"),
            "--base",
            "HEAD",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains("+ motd (stage 1)"),
        "{}",
        stdout(&out)
    );

    // Committed: no changes against HEAD, but changes against the first commit.
    git(root, &["commit", "-q", "-am", "change"]);
    let out = plan_in(
        root,
        &[
            "diff",
            "plans/release.toml",
            "--base",
            "HEAD",
            "--exit-code",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = plan_in(
        root,
        &[
            "diff",
            "plans/release.toml",
            "--base",
            "HEAD~1",
            "--exit-code",
        ],
    );
    assert_eq!(out.status.code(), Some(10), "{}", stdout(&out));
}

#[test]
fn base_without_the_plan_is_all_added_and_bad_revisions_are_refused() {
    let dir = repo();
    let root = dir.path();
    std::fs::write(
        root.join("plans/new.toml"),
        PLAN.replace("inventory.toml", "inventory/prod.toml"),
    )
    .expect("write");
    let out = plan_in(
        root,
        &[
            "diff",
            "plans/new.toml",
            "--base",
            "HEAD",
            "--format",
            "markdown",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = stdout(&out);
    assert!(md.contains("**new plan: +4 pushes in 3 stages"), "{md}");

    let out = plan_in(
        root,
        &["diff", "plans/release.toml", "--base", "no-such-rev"],
    );
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-rev"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_huge_diff_stays_under_the_comment_limit_and_keeps_its_summary() {
    let mut plan = PLAN.to_owned();
    for i in 0..900 {
        plan.push_str(&format!(
            "\n[[push]]\nname = \"fleet-{i:04}\"\nfrom = {{ hosts = \"build\", files = [\"/data/fleet/{i:04}/payload-with-a-long-name-{i}.tar.gz\"] }}\nto = {{ hosts = [\"web\", \"0:10.9.{}.{}\"], path = \"/opt/fleet/{i:04}/\" }}\n",
            i / 200,
            i % 200 + 1
        ));
    }
    let dir = versions(&plan, INVENTORY);
    let out = plan_in(
        dir.path(),
        &[
            "diff",
            "old/release.toml",
            "new/release.toml",
            "--format",
            "markdown",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let md = stdout(&out);
    assert!(md.len() < 60_000, "{} characters", md.len());
    assert!(md.starts_with("<!-- plan:diff release -->\n"));
    assert!(
        md.contains("**+900 pushes; targets +900 hosts**"),
        "{}",
        &md[..400]
    );
    // Whole rows only, and a line that says what was left out.
    assert!(md.contains("…and 800 more"), "{md}");
    for line in md.lines().filter(|l| l.starts_with("| ➕")) {
        assert!(line.ends_with(" |"), "cut row: {line}");
    }
}

/// The CI example only uses commands and flags that exist.
#[test]
fn ci_example_uses_real_flags() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The workflows and the scripts they call.
    let ci = root.join("examples/ci");
    let mut files: Vec<std::path::PathBuf> = ["plan-review.yml", "plan-apply.yml", "gitlab-ci.yml"]
        .iter()
        .map(|f| ci.join(f))
        .collect();
    for entry in std::fs::read_dir(ci.join("scripts")).expect("scripts") {
        files.push(entry.expect("entry").path());
    }
    let workflow: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect::<Vec<_>>()
        .join("\n");
    let mut checked = 0;
    for line in workflow.lines() {
        let line = line
            .trim()
            .trim_start_matches("- ")
            .trim_start_matches("run: ");
        let Some(rest) = line.strip_prefix("plan ") else {
            continue;
        };
        let command = rest.split_whitespace().next().expect("a subcommand");
        let help = plan_in(root, &[command, "--help"]);
        assert_eq!(help.status.code(), Some(0), "plan {command} --help");
        let help = stdout(&help);
        for flag in rest.split_whitespace().filter(|w| w.starts_with("--")) {
            assert!(
                help.contains(flag),
                "`plan {command}` has no {flag}: {line}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} flags found in the workflows");
}

/// Every example plan compared with itself: no changes, in every format.
#[test]
fn every_example_plan_has_no_changes_against_itself() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["release", "logs", "windows", "fanout"] {
        let path = format!("plans/{name}.toml");
        for format in ["text", "json", "markdown"] {
            let out = plan_in(
                root,
                &["diff", &path, &path, "--format", format, "--exit-code"],
            );
            assert_eq!(
                out.status.code(),
                Some(0),
                "{path} ({format}): {}{}",
                stdout(&out),
                String::from_utf8_lossy(&out.stderr)
            );
            let text = stdout(&out);
            assert!(text.contains("no changes"), "{path} ({format}): {text}");
        }
    }
}
