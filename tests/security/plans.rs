//! Hostile plans: includes that reach outside the repository or into special files, and inputs
//! sized to make planning quadratic, exhaust memory or overflow the stack.
//!
//! Every run is the built `plan` with the canary credentials in its environment and a time
//! limit; a run past the limit is killed and fails the test. Outputs are searched for every
//! run of 8 characters of each canary, and for the text of the files outside the repository.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;

const SECRET: &str = "CANARY-SECRET-123";
const TOKEN: &str = "CANARY-TOKEN-456";
/// What a file outside the repository holds; it must never be shown.
const OUTSIDE_TEXT: &str = "CANARY-OUTSIDE-789";
/// The shortest run of a canary that counts as a leak.
const RUN: usize = 8;
/// Any run of `plan` here ends well within this (the slowest takes a few seconds in a debug
/// build); a run that blocks on a FIFO or reads `/dev/zero` forever is killed at it.
const LIMIT: Duration = Duration::from_secs(60);

const HEAD: &str = "[plan]\nname = \"hostile\"\nbk_biz_id = 2\naccount = \"root\"\n";
const PUSH: &str = "[[push]]\nname = \"p\"\nfrom = { hosts = \"10.0.0.1\", files = [\"/src/a\"] }\nto = { hosts = \"10.0.0.2\", path = \"/dst/\" }\n";

/// A git repository (`repo/`, with `repo/plans/`) beside a file outside it.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("repo");
        std::fs::create_dir_all(root.join("plans")).expect("plans");
        let status = std::process::Command::new("git")
            .args(["init", "-q"])
            .arg(&root)
            .status()
            .expect("git init");
        assert!(status.success());
        std::fs::write(
            dir.path().join("outside.toml"),
            format!("[vars]\nleak = \"{OUTSIDE_TEXT}\"\nbroken =\n"),
        )
        .expect("outside file");
        Repo { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside.toml")
    }

    /// Writes `repo/plans/p.toml` with `text`; its path.
    fn plan(&self, text: &str) -> PathBuf {
        let path = self.root().join("plans/p.toml");
        std::fs::write(&path, text).expect("write plan");
        path
    }

    /// A plan including `include` (a TOML string as written).
    fn including(&self, include: &str) -> PathBuf {
        self.plan(&format!("include = [{include:?}]\n{HEAD}{PUSH}"))
    }

    fn link(&self, name: &str, to: &Path) {
        std::os::unix::fs::symlink(to, self.root().join("plans").join(name)).expect("symlink");
    }
}

/// Runs `plan ARGS` from `dir` with the canary credentials set, within [`LIMIT`].
fn plan(dir: &Path, args: &[&str]) -> Output {
    let started = Instant::now();
    let out = Command::cargo_bin("plan")
        .expect("plan binary")
        .args(args)
        .current_dir(dir)
        .env("BK_APP_CODE", "plan-app")
        .env("BK_APP_SECRET", SECRET)
        .env("BK_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .timeout(LIMIT)
        .output()
        .expect("run plan");
    assert!(
        started.elapsed() < LIMIT,
        "`plan {}` did not finish within {LIMIT:?}",
        args.join(" ")
    );
    out
}

/// Fails when any run of [`RUN`] characters of a canary, or the text of the file outside the
/// repository, is in the output.
fn assert_nothing_leaks(out: &Output, what: &str) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .to_lowercase();
    for canary in [SECRET, TOKEN, OUTSIDE_TEXT] {
        let canary = canary.to_lowercase();
        for start in 0..=canary.len() - RUN {
            let run = &canary[start..start + RUN];
            assert!(
                !text.contains(run),
                "{what}: `{run}` of a canary in:\n{text}"
            );
        }
    }
}

/// `plan check PLAN` in every output format: each exits 1 with `code` and shows nothing but
/// the plan.
fn assert_refused(plan_path: &Path, code: &str) {
    let dir = plan_path.parent().expect("plans dir");
    let name = plan_path.to_str().expect("utf-8 path");
    for format in ["text", "json", "github", "codeclimate", "junit"] {
        let out = plan(dir, &["check", name, "--format", format]);
        let what = format!("{name} ({format})");
        assert_eq!(out.status.code(), Some(1), "{what}: {out:?}");
        assert_nothing_leaks(&out, &what);
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // GitHub annotations escape `:` in titles.
        let written = if format == "github" {
            code.replace(':', "%3A")
        } else {
            code.to_owned()
        };
        assert!(shown.contains(&written), "{what}: no {code} in:\n{shown}");
    }
}

#[test]
fn an_include_of_the_process_environment_is_refused_and_shows_no_credential() {
    let repo = Repo::new();
    assert_refused(
        &repo.including("/proc/self/environ"),
        "plan::parser::include_outside_root",
    );
    repo.link("env.toml", Path::new("/proc/self/environ"));
    assert_refused(
        &repo.including("env.toml"),
        "plan::parser::include_outside_root",
    );
}

#[test]
fn includes_that_leave_the_repository_are_refused_and_their_lines_never_shown() {
    let repo = Repo::new();
    let outside = repo.outside();
    for include in [
        outside.to_str().expect("utf-8 path"),
        "../../outside.toml",
        "../.git/../../outside.toml",
        "../.git/config",
    ] {
        assert_refused(
            &repo.including(include),
            "plan::parser::include_outside_root",
        );
    }
    // A symbolic link planted in the repository is followed before the check, not after.
    repo.link("inventory.toml", &outside);
    assert_refused(
        &repo.including("inventory.toml"),
        "plan::parser::include_outside_root",
    );
    // Inside the repository, `..` out of the plan's directory is fine.
    std::fs::write(
        repo.root().join("inventory.toml"),
        "[hosts.web]\nips = [\"10.0.0.9\"]\n",
    )
    .expect("inventory");
    let valid = repo.plan(&format!(
        "include = [\"../inventory.toml\"]\n{HEAD}{}",
        PUSH.replace("\"10.0.0.2\"", "\"web\"")
    ));
    let out = plan(&repo.root(), &["check", valid.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn includes_outside_git_stay_in_the_plans_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("plans")).expect("plans");
    std::fs::write(
        dir.path().join("outside.toml"),
        format!("[vars]\nleak = \"{OUTSIDE_TEXT}\"\n"),
    )
    .expect("outside");
    let plan_path = dir.path().join("plans/p.toml");
    std::fs::write(
        &plan_path,
        format!("include = [\"../outside.toml\"]\n{HEAD}{PUSH}"),
    )
    .expect("plan");
    assert_refused(&plan_path, "plan::parser::include_outside_root");
}

#[test]
fn device_fifo_and_directory_includes_end_quickly_without_being_read() {
    let repo = Repo::new();
    assert_refused(
        &repo.including("/dev/zero"),
        "plan::parser::include_outside_root",
    );
    repo.link("zero.toml", Path::new("/dev/zero"));
    assert_refused(
        &repo.including("zero.toml"),
        "plan::parser::include_outside_root",
    );
    // A FIFO nobody writes to: opening it for reading would block for ever.
    let fifo = repo.root().join("plans/fifo.toml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    assert_refused(
        &repo.including("fifo.toml"),
        "plan::parser::include_not_a_file",
    );
    assert_refused(&repo.including("."), "plan::parser::include_not_a_file");
    // Larger than the cap: refused from its size, before a byte is read.
    std::fs::write(repo.root().join("plans/big.toml"), vec![b'#'; 5 << 20]).expect("big");
    assert_refused(
        &repo.including("big.toml"),
        "plan::parser::include_too_large",
    );
}

#[test]
fn a_source_directory_climbing_out_with_dot_dot_is_an_error() {
    let repo = Repo::new();
    for (from, to) in [("/stage/x/../", "/dst/"), ("/src/a", "/dst/../etc/")] {
        let push = PUSH
            .replace("\"/src/a\"", &format!("{from:?}"))
            .replace("\"/dst/\"", &format!("{to:?}"));
        assert_refused(
            &repo.plan(&format!("{HEAD}{push}")),
            "plan::parser::dot_component",
        );
    }
}

#[test]
fn variables_expanding_to_gigabytes_stop_at_the_budget() {
    // 8,000 references to a 512 KiB variable: 4 GB of paths, each under the per-value limit.
    let repo = Repo::new();
    let mut text = format!("{HEAD}[vars]\nbig = \"{}\"\n", "x".repeat(512 << 10));
    for i in 0..1000 {
        let files: Vec<String> = (0..8).map(|j| format!("\"/s/{i}/{j}/${{big}}\"")).collect();
        text.push_str(&format!(
            "[[push]]\nname = \"p{i}\"\nfrom = {{ hosts = \"10.0.0.1\", files = [{}] }}\nto = {{ hosts = \"10.0.0.2\", path = \"/d/{i}/\" }}\n",
            files.join(", ")
        ));
    }
    let path = repo.plan(&text);
    let out = plan(
        &repo.root(),
        &["check", path.to_str().expect("utf-8"), "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let budget = doc["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["code"] == "plan::parser::expansion_limit")
        .count();
    assert_eq!(budget, 1, "{doc}");
    // Messages name long values cut short: not megabytes per line.
    assert!(out.stdout.len() < 1 << 20, "{} bytes", out.stdout.len());
}

/// A chain of `n` pushes, each after the one before.
fn chain(n: usize) -> String {
    let mut text =
        format!("{HEAD}[hosts.a]\nips = [\"10.0.0.1\"]\n[hosts.b]\nips = [\"10.0.0.2\"]\n");
    for i in 0..n {
        text.push_str(&format!(
            "[[push]]\nname = \"p{i}\"\nfrom = {{ hosts = \"a\", files = [\"/src/{i}\"] }}\nto = {{ hosts = \"b\", path = \"/dst/{i}/\" }}\n"
        ));
        if i > 0 {
            text.push_str(&format!("after = [\"p{}\"]\n", i - 1));
        }
    }
    text
}

#[test]
fn a_long_chain_is_checked_shown_and_drawn_on_a_one_mebibyte_stack() {
    // A 90,000-push chain overflowed the 8 MiB main stack of a release build (about 90 bytes
    // per recursive frame). 20,000 pushes on a 1 MiB stack take the same margin away, in a few
    // seconds of a debug build.
    let repo = Repo::new();
    let path = repo.plan(&chain(20_000));
    let path = path.to_str().expect("utf-8");
    let runs: Vec<Vec<&str>> = vec![
        vec!["check", path],
        vec!["show", path],
        vec!["show", path, "--format", "json"],
        vec!["show", path, "--format", "markdown"],
        vec!["graph", path],
        vec!["graph", path, "--format", "mermaid"],
        vec!["graph", path, "--format", "json"],
    ];
    let binary = assert_cmd::cargo::cargo_bin("plan");
    // One after the other: nothing here recurses with the chain's length (each run also
    // passes on a 400 KiB stack), but `show --format json` writes 39 MB in some 10 s of a
    // debug build, and seven such runs at once on a loaded machine outlast `LIMIT`.
    for args in &runs {
        let out = Command::new("sh")
            .arg("-c")
            .arg("ulimit -s 1024 && exec \"$0\" \"$@\"")
            .arg(&binary)
            .args(args)
            .timeout(LIMIT)
            .output()
            .expect("run plan");
        assert_eq!(
            out.status.code(),
            Some(0),
            "plan {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs `git ARGS` in `dir`, as a committer that needs no configuration.
fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(["-c", "user.name=plan", "-c", "user.email=plan@example.com"])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git");
    assert!(status.success(), "git {}", args.join(" "));
}

#[test]
fn plan_diff_base_reads_includes_at_the_revision_under_the_same_rules() {
    let repo = Repo::new();
    let root = repo.root();
    std::fs::write(
        root.join("inventory.toml"),
        "[hosts.web]\nips = [\"10.0.0.9\"]\n",
    )
    .expect("inventory");
    // Committed symbolic links: one inside the repository, one to the process environment.
    repo.link("inside.toml", Path::new("../inventory.toml"));
    repo.link("env.toml", Path::new("/proc/self/environ"));
    let with = |include: &str| {
        format!(
            "include = [\"{include}\"]\n{HEAD}{}",
            PUSH.replace("\"10.0.0.2\"", "\"web\"")
        )
    };
    let plan_path = repo.plan(&with("inside.toml"));
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "inside"]);
    let plan_arg = plan_path.to_str().expect("utf-8");
    let out = plan(&root, &["diff", plan_arg, "--base", "HEAD"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    for include in ["env.toml", "../../outside.toml", "../.git/config"] {
        repo.plan(&with(include));
        git(&root, &["commit", "-q", "-a", "-m", include]);
        repo.plan(&with("inside.toml"));
        let out = plan(&root, &["diff", plan_arg, "--base", "HEAD"]);
        assert_eq!(out.status.code(), Some(1), "{include}: {out:?}");
        assert_nothing_leaks(&out, include);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("include_outside_root") || stderr.contains("include_unreadable"),
            "{include}: {stderr}"
        );
        assert!(!stderr.contains("[core]"), "{include}: {stderr}");
    }
}
