//! Plans written to reach outside the repository or to make planning expensive: includes of
//! special files and of files outside the plan's repository, `..` in paths, and inputs sized to
//! be quadratic, to expand without bound or to recurse once per group. Each ends in a
//! diagnostic at the plan's own text, quickly, on a small stack.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plan_parser::{ParseOptions, PlanErrors, Severity, parse_file, parse_str};

const HEAD: &str = "[plan]\nname = \"h\"\nbk_biz_id = 1\naccount = \"root\"\n";
const PUSH: &str = "[[push]]\nname = \"a\"\nfrom = { hosts = \"10.0.0.1\", files = [\"/a\"] }\nto = { hosts = \"10.0.0.2\", path = \"/b/\" }\n";
/// What the files outside the repository hold: it must never show in a diagnostic.
const SECRET: &str = "CANARY-SECRET-123";

/// A repository (`repo/.git`) with `repo/plans/`, beside a file outside it.
fn repository() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join(".git")).expect(".git");
    std::fs::create_dir_all(repo.join("plans")).expect("plans");
    std::fs::write(
        dir.path().join("outside.toml"),
        format!("[vars]\nsecret = \"{SECRET}\"\nbroken = \n"),
    )
    .expect("write");
    (dir, repo)
}

/// Parses `repo/plans/p.toml` including `include`, expecting errors.
fn include_errors(repo: &Path, include: &str) -> PlanErrors {
    let plan = repo.join("plans/p.toml");
    let text = format!("include = [{include:?}]\n{HEAD}{PUSH}");
    std::fs::write(&plan, text).expect("write plan");
    parse_file(&plan, &ParseOptions::default()).expect_err("the include is refused")
}

/// The one error's code and line, after checking that nothing but the plan is shown.
fn refused(errors: &PlanErrors) -> (&'static str, usize) {
    let mut rendered = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .render_report(&mut rendered, errors)
        .expect("render");
    for problem in errors.problems() {
        rendered.push_str(problem.message());
    }
    assert!(!rendered.contains(SECRET), "{rendered}");
    assert_eq!(errors.sources().len(), 1, "only the plan itself is read");
    let [problem] = errors.problems() else {
        panic!("one problem: {:?}", errors.problems());
    };
    let span = problem.primary_span().expect("label");
    (
        problem.code(),
        errors.sources().line_col(span.file, span.start).0,
    )
}

#[test]
fn includes_outside_the_repository_are_refused_at_the_include_entry() {
    let (dir, repo) = repository();
    let outside = dir.path().join("outside.toml");
    let absolute = outside.to_str().expect("utf-8 path");
    for include in [
        absolute,
        "../../outside.toml",
        "/proc/self/environ",
        "/etc/passwd",
    ] {
        assert_eq!(
            refused(&include_errors(&repo, include)),
            ("plan::parser::include_outside_root", 1),
            "{include}"
        );
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&outside, repo.join("plans/inventory.toml")).expect("link");
        assert_eq!(
            refused(&include_errors(&repo, "inventory.toml")),
            ("plan::parser::include_outside_root", 1)
        );
        std::os::unix::fs::symlink("/proc/self/environ", repo.join("plans/env.toml"))
            .expect("link");
        assert_eq!(
            refused(&include_errors(&repo, "env.toml")),
            ("plan::parser::include_outside_root", 1)
        );
    }
}

#[test]
fn includes_inside_the_repository_may_climb_out_of_the_plans_directory() {
    let (_dir, repo) = repository();
    std::fs::write(
        repo.join("inventory.toml"),
        "[hosts.web]\nips = [\"10.0.0.9\"]\n",
    )
    .expect("write");
    let plan = repo.join("plans/p.toml");
    let text = format!(
        "include = [\"../inventory.toml\"]\n{HEAD}{}",
        PUSH.replace("\"10.0.0.2\"", "\"web\"")
    );
    std::fs::write(&plan, text).expect("write plan");
    let parsed = parse_file(&plan, &ParseOptions::default()).expect("valid");
    assert_eq!(parsed.plan.groups["web"].hosts.ips.len(), 1);
}

#[test]
fn special_and_oversized_includes_are_refused_without_being_read() {
    let (_dir, repo) = repository();
    let started = Instant::now();
    assert_eq!(
        refused(&include_errors(&repo, ".")),
        ("plan::parser::include_not_a_file", 1)
    );
    std::fs::write(repo.join("plans/big.toml"), vec![b'#'; 5 << 20]).expect("write");
    assert_eq!(
        refused(&include_errors(&repo, "big.toml")),
        ("plan::parser::include_too_large", 1)
    );
    #[cfg(unix)]
    {
        // A FIFO nobody writes to: opening it for reading would block forever.
        let fifo = repo.join("plans/fifo.toml");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(status.success());
        assert_eq!(
            refused(&include_errors(&repo, "fifo.toml")),
            ("plan::parser::include_not_a_file", 1)
        );
        std::os::unix::fs::symlink("/dev/zero", repo.join("plans/zero.toml")).expect("link");
        assert_eq!(
            refused(&include_errors(&repo, "zero.toml")),
            ("plan::parser::include_outside_root", 1)
        );
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn dot_components_in_paths_are_errors_at_the_path() {
    for (from, to, line) in [
        ("/stage/x/../", "/b/", 7),
        ("/stage/./a", "/b/", 7),
        ("/a", "/b/../c/", 8),
    ] {
        let push = PUSH
            .replace("\"/a\"", &format!("{from:?}"))
            .replace("\"/b/\"", &format!("{to:?}"));
        let errors = parse_str("h.toml", &format!("{HEAD}{push}"), &ParseOptions::default())
            .expect_err("invalid");
        let problem = &errors.problems()[0];
        let span = problem.primary_span().expect("label");
        assert_eq!(
            (
                problem.code(),
                errors.sources().line_col(span.file, span.start).0
            ),
            ("plan::parser::dot_component", line),
            "{from} {to}"
        );
    }
}

/// `n` hosts `10.x.y.z`, as TOML strings.
fn hosts(n: usize) -> String {
    (0..n)
        .map(|i| format!("\"10.{}.{}.{}\"", (i >> 16) & 255, (i >> 8) & 255, i & 255))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn one_large_group_is_read_in_linear_time() {
    // 100,000 hosts, each compared with all others, took minutes; a debug build reads them in
    // about a second.
    let text = format!(
        "{HEAD}[hosts.big]\nips = [{}]\n{}",
        hosts(100_000),
        PUSH.replace("\"10.0.0.2\"", "\"big\"")
    );
    let started = Instant::now();
    let parsed = parse_str("h.toml", &text, &ParseOptions::default()).expect("valid");
    assert_eq!(parsed.plan.pushes[0].target.hosts.ips.len(), 100_000);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn expansion_has_a_budget_for_the_whole_plan() {
    // 8,000 references to a 512 KiB variable: 4 GB of paths, each under the per-value limit.
    let mut text = format!("{HEAD}[vars]\nbig = \"{}\"\n", "x".repeat(512 << 10));
    for i in 0..1000 {
        let files: Vec<String> = (0..8).map(|j| format!("\"/s/{i}/{j}/${{big}}\"")).collect();
        text.push_str(&format!(
            "[[push]]\nname = \"p{i}\"\nfrom = {{ hosts = \"10.0.0.1\", files = [{}] }}\nto = {{ hosts = \"10.0.0.2\", path = \"/d/{i}/\" }}\n",
            files.join(", ")
        ));
    }
    let started = Instant::now();
    let errors = parse_str("h.toml", &text, &ParseOptions::default()).expect_err("invalid");
    let budget: Vec<_> = errors
        .problems()
        .iter()
        .filter(|p| p.code() == "plan::parser::expansion_limit")
        .collect();
    assert_eq!(budget.len(), 1, "reported once");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );

    // A group of 10,000 hosts named by 500 pushes: five million copies of a selector.
    let mut text = format!("{HEAD}[hosts.big]\nips = [{}]\n", hosts(10_000));
    for i in 0..500 {
        text.push_str(&format!(
            "[[push]]\nname = \"p{i}\"\nfrom = {{ hosts = \"10.0.0.1\", files = [\"/s/{i}\"] }}\nto = {{ hosts = \"big\", path = \"/d/{i}/\" }}\n"
        ));
    }
    let errors = parse_str("h.toml", &text, &ParseOptions::default()).expect_err("invalid");
    let codes: Vec<_> = errors.problems().iter().map(|p| p.code()).collect();
    assert_eq!(codes, ["plan::parser::host_expansion_limit"]);
}

#[test]
fn ranges_count_against_the_host_budget() {
    // 10,000 pushes each writing a /16: 655 million hosts if nothing stopped them.
    let mut text = String::from(HEAD);
    for i in 0..10_000 {
        text.push_str(&format!(
            "[[push]]\nname = \"p{i}\"\nfrom = {{ hosts = \"10.0.0.1\", files = [\"/s/{i}\"] }}\nto = {{ hosts = \"10.{}.0.0/16\", path = \"/d/{i}/\" }}\n",
            i % 200
        ));
    }
    let started = Instant::now();
    let errors = parse_str("h.toml", &text, &ParseOptions::default()).expect_err("invalid");
    let codes: Vec<_> = errors.problems().iter().map(|p| p.code()).collect();
    assert_eq!(
        codes,
        ["plan::parser::host_expansion_limit"],
        "reported once"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_chain_of_groups_is_expanded_without_recursion() {
    // Each group includes the next; a v3 plan also looks through the chain for IPv6 hosts.
    let n = 20_000;
    let mut text = HEAD.replace("account", "api = \"v3\"\naccount");
    for i in 0..n {
        text.push_str(&format!("[hosts.g{i}]\ngroups = [\"g{}\"]\n", i + 1));
    }
    text.push_str(&format!("[hosts.g{n}]\nips = [\"0:[::1]\"]\n"));
    text.push_str(&PUSH.replace("\"10.0.0.2\"", "\"g0\""));
    let run = move || {
        let errors = parse_str("h.toml", &text, &ParseOptions::default()).expect_err("IPv6");
        let errors: Vec<_> = errors
            .problems()
            .iter()
            .filter(|p| p.severity() == Severity::Error)
            .map(|p| p.code())
            .collect();
        assert_eq!(errors, ["plan::parser::ipv6_host_in_v3"]);
    };
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(run)
        .expect("spawn")
        .join()
        .expect("expanded without a deep stack");
}
