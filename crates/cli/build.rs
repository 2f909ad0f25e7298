//! Stamps the commit the binary is built from into `plan --version`.
//!
//! `PLAN_BUILD_VERSION` becomes `0.1.0 (3f2c1a9b0d4e 2026-12-06)`: the package version, the
//! commit's short hash and its commit date. A release build from a source tarball has no git:
//! `PLAN_BUILD_COMMIT` (set by a release pipeline) names the commit instead, and without either
//! the version says `commit unknown` rather than failing the build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_owned());
    println!("cargo:rerun-if-env-changed=PLAN_BUILD_COMMIT");
    let stamp = match std::env::var("PLAN_BUILD_COMMIT") {
        Ok(commit) if is_hex(&commit) => commit.chars().take(12).collect(),
        _ => {
            let dir = Path::new(&manifest_dir);
            watch_head(dir);
            git_stamp(dir).unwrap_or_else(|| "commit unknown".to_owned())
        }
    };
    println!("cargo:rustc-env=PLAN_BUILD_VERSION={version} ({stamp})");
}

/// Asks cargo to run this again when HEAD moves (a commit, a checkout). The repository is
/// found without git too: had a git that failed once (a lock, a moment without `git` on the
/// PATH) left nothing to watch, `commit unknown` would stay in every later build.
fn watch_head(dir: &Path) {
    let Some(git_dir) = git(dir, &["rev-parse", "--absolute-git-dir"])
        .map(PathBuf::from)
        .or_else(|| dir.ancestors().map(|a| a.join(".git")).find(|g| g.is_dir()))
    else {
        return;
    };
    // HEAD names a branch; the branch's ref file (or packed-refs) moves on commit.
    for watched in ["HEAD", "packed-refs"] {
        println!("cargo:rerun-if-changed={}", git_dir.join(watched).display());
    }
    let head = std::fs::read_to_string(git_dir.join("HEAD")).unwrap_or_default();
    if let Some(branch) = head.trim().strip_prefix("ref: ") {
        println!("cargo:rerun-if-changed={}", git_dir.join(branch).display());
    }
}

/// `<short hash> <commit date>` of HEAD, or `None` outside a git checkout or without git.
fn git_stamp(dir: &Path) -> Option<String> {
    git(dir, &["log", "-1", "--format=%h %cs", "--abbrev=12"])
}

/// Runs git in `dir`, its trimmed stdout when it succeeds with some.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .ok()?;
    let stdout = String::from_utf8(output.stdout).ok()?;
    let stdout = stdout.trim();
    (output.status.success() && !stdout.is_empty()).then(|| stdout.to_owned())
}

fn is_hex(text: &str) -> bool {
    text.len() >= 7 && text.chars().all(|c| c.is_ascii_hexdigit())
}
