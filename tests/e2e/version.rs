//! `plan --version`: the package version and the commit the binary was built from.

use std::process::Command;

fn version_line(flag: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_plan"))
        .arg(flag)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// `plan 0.1.0 (3f2c1a9b0d4e 2026-12-06)`: a commit of this repository, with its date. The
/// commit is checked against the repository rather than against HEAD, which may have moved
/// since the binary was built.
#[test]
fn version_names_a_commit_of_this_repository() {
    let line = version_line("--version");
    let pattern =
        regex::Regex::new(r"^plan (\d+\.\d+\.\d+) \(([0-9a-f]{12}) (\d{4}-\d{2}-\d{2})\)\n$")
            .unwrap();
    let Some(captures) = pattern.captures(&line) else {
        // Only a build without git (a source tarball) may say so, and then in these words.
        assert_eq!(
            line,
            format!("plan {} (commit unknown)\n", env!("CARGO_PKG_VERSION"))
        );
        assert!(!has_git(), "built from a git checkout, yet: {line}");
        return;
    };
    assert_eq!(&captures[1], env!("CARGO_PKG_VERSION"));
    let kind = Command::new("git")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["cat-file", "-t", &captures[2]])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&kind.stdout).trim(),
        "commit",
        "{line}"
    );
    let date = Command::new("git")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["log", "-1", "--format=%cs", &captures[2]])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&date.stdout).trim(), &captures[3]);
}

#[test]
fn short_flag_says_the_same() {
    assert_eq!(version_line("-V"), version_line("--version"));
}

fn has_git() -> bool {
    Command::new("git")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["rev-parse", "HEAD"])
        .output()
        .is_ok_and(|output| output.status.success())
}
