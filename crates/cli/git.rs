//! Plans as they were at a git revision, for `plan diff --base REV`.
//!
//! [`GitLoader`] reads the plan and its includes with `git` itself (`ls-tree`, `cat-file`,
//! `show`) under the same include rules as the filesystem loader: a regular file inside the
//! repository, symbolic links followed only while they stay inside it, at most
//! `MAX_INCLUDE_BYTES`, its size read from the tree before the blob is.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use plan_parser::{IncludeRefused, MAX_INCLUDE_BYTES, SourceLoader};

/// Reads files as they were at a git revision: `git show REV:path`, with paths taken
/// relative to the repository root (`git rev-parse --show-toplevel`).
pub(crate) struct GitLoader {
    root: PathBuf,
    cwd: PathBuf,
    rev: String,
}

impl GitLoader {
    /// The repository is the one holding `plan` (so `plan diff /elsewhere/plan.toml --base
    /// main` works from any directory).
    pub(crate) fn new(rev: &str, plan: &Path) -> anyhow::Result<Self> {
        let cwd = std::env::current_dir()?;
        let cwd = cwd.canonicalize().unwrap_or(cwd);
        let dir = cwd
            .join(plan)
            .parent()
            .filter(|d| d.is_dir())
            .map_or_else(|| cwd.clone(), Path::to_path_buf);
        let top = git(&dir, &["rev-parse", "--show-toplevel"])
            .map_err(|e| anyhow::anyhow!("--base needs a git repository: {e}"))?;
        let root = PathBuf::from(top.trim_end_matches(['\n', '\r']));
        let root = root.canonicalize().unwrap_or(root);
        git(
            &root,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{rev}^{{commit}}"),
            ],
        )
        .map_err(|_| anyhow::anyhow!("`{rev}` is not a git revision of {}", root.display()))?;
        Ok(GitLoader {
            root,
            cwd,
            rev: rev.to_owned(),
        })
    }

    /// `path` (relative to the current directory, `..` allowed) relative to the repository
    /// root, with `/` separators; `None` outside the repository.
    pub(crate) fn repo_path(&self, path: &Path) -> Option<String> {
        let joined = self.cwd.join(path);
        // Resolve symlinks through the directory when it still exists (the file itself may
        // be gone from the work tree); lexical clean-up below handles the rest.
        let joined = match (joined.parent().map(Path::canonicalize), joined.file_name()) {
            (Some(Ok(dir)), Some(name)) => dir.join(name),
            _ => joined,
        };
        let mut parts: Vec<String> = Vec::new();
        for component in joined.components() {
            match component {
                Component::ParentDir => {
                    parts.pop();
                }
                Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
        let root: Vec<String> = self
            .root
            .components()
            .filter_map(|c| match c {
                Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        parts
            .strip_prefix(root.as_slice())
            .map(|rest| rest.join("/"))
    }

    /// True when the file exists at the revision.
    pub(crate) fn exists(&self, path: &Path) -> anyhow::Result<bool> {
        match self.load(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(anyhow::anyhow!(
                "reading {} at {}: {e}",
                path.display(),
                self.rev
            )),
        }
    }
}

impl GitLoader {
    /// Mode, object id and size of `rel` in the revision's tree; `NotFound` when absent.
    fn tree_entry(&self, rel: &str) -> std::io::Result<(String, String, u64)> {
        let output = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["ls-tree", "-l", "-z", "--full-tree", &self.rev, "--", rel])
            .output()?;
        let listing = String::from_utf8_lossy(&output.stdout);
        let entry = listing.split(['\t', '\0']).next().unwrap_or_default();
        let fields: Vec<&str> = entry.split_whitespace().collect();
        let [mode, _kind, id, size] = fields[..] else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("not found at {}", self.rev),
            ));
        };
        Ok((mode.to_owned(), id.to_owned(), size.parse().unwrap_or(0)))
    }

    fn blob(&self, id: &str) -> std::io::Result<Vec<u8>> {
        let output = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["cat-file", "blob", id])
            .output()?;
        if !output.status.success() {
            return Err(std::io::Error::other(format!("cannot read blob {id}")));
        }
        Ok(output.stdout)
    }
}

/// `target` (a symbolic link's text) taken relative to the directory of `link`, both relative
/// to the repository root; `None` when it is absolute or climbs out of the repository.
fn link_target(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            name => parts.push(name),
        }
    }
    Some(parts.join("/"))
}

impl SourceLoader for GitLoader {
    /// The same rules as on disk: a regular file inside the repository (symbolic links are
    /// followed while they stay inside it), at most `MAX_INCLUDE_BYTES`, its size read from
    /// the tree before the blob is.
    fn load_include(&self, _plan: &Path, path: &Path) -> std::io::Result<String> {
        let outside = || {
            IncludeRefused::OutsideRoot {
                root: self.root.clone(),
            }
            .into_io()
        };
        let mut rel = self.repo_path(path).ok_or_else(outside)?;
        // Linux follows at most 40 links in one lookup.
        for _ in 0..40 {
            let (mode, id, size) = self.tree_entry(&rel)?;
            if size > MAX_INCLUDE_BYTES {
                return Err(IncludeRefused::TooLarge { size }.into_io());
            }
            match mode.as_str() {
                "100644" | "100755" => {
                    return String::from_utf8(self.blob(&id)?).map_err(|_| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("{rel} at {} is not UTF-8", self.rev),
                        )
                    });
                }
                "120000" => {
                    let target = String::from_utf8_lossy(&self.blob(&id)?).into_owned();
                    rel = link_target(&rel, &target).ok_or_else(outside)?;
                }
                "040000" => {
                    return Err(IncludeRefused::NotAFile {
                        kind: "a directory",
                    }
                    .into_io());
                }
                _ => {
                    return Err(IncludeRefused::NotAFile {
                        kind: "a submodule",
                    }
                    .into_io());
                }
            }
        }
        Err(IncludeRefused::NotAFile {
            kind: "a chain of symbolic links",
        }
        .into_io())
    }

    fn load(&self, path: &Path) -> std::io::Result<String> {
        let rel = self.repo_path(path).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is outside the git repository", path.display()),
            )
        })?;
        let output = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["show", &format!("{}:{rel}", self.rev)])
            .output()?;
        if output.status.success() {
            return String::from_utf8(output.stdout).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{rel} at {} is not UTF-8", self.rev),
                )
            });
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let kind =
            if stderr.contains("does not exist") || stderr.contains("exists on disk, but not in") {
                std::io::ErrorKind::NotFound
            } else {
                std::io::ErrorKind::Other
            };
        Err(std::io::Error::new(
            kind,
            format!("not found at {}: {}", self.rev, stderr.trim()),
        ))
    }
}

pub(crate) fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git").arg("-C").arg(dir).args(args).output()?;
    if !output.status.success() {
        anyhow::bail!("{}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::link_target;

    #[test]
    fn a_link_target_is_taken_from_the_links_directory() {
        assert_eq!(
            link_target("plans/inv.toml", "shared/hosts.toml").as_deref(),
            Some("plans/shared/hosts.toml")
        );
        assert_eq!(
            link_target("plans/a/inv.toml", "../../hosts.toml").as_deref(),
            Some("hosts.toml")
        );
        assert_eq!(
            link_target("plans/inv.toml", "./x//y.toml").as_deref(),
            Some("plans/x/y.toml")
        );
    }

    #[test]
    fn a_link_target_outside_the_repository_is_refused() {
        assert_eq!(link_target("plans/inv.toml", "/etc/passwd"), None);
        assert_eq!(link_target("plans/inv.toml", "../../outside.toml"), None);
    }
}
