//! One sandbox host's file system, as jobsim reads and writes it: every path is resolved
//! beneath the host's root directory through a handle on that directory (cap-std), never
//! through the process's view of the file system, so no name, `..` or symlink reaches
//! outside the host.
//!
//! * A JOB path is an absolute path on the host. `..` is resolved by name first and stops at
//!   the root, as `/..` is `/` on a real host; Windows paths `X:\a\b` live under `X/a/b`.
//! * A symlink that stays inside the host root is followed, as the host would follow it.
//!   One that leads out of it (an absolute target, or `..` past the root) is refused: the
//!   operation fails with "path leads outside the host", and nothing is read or written.
//! * A file is written under a fresh name (created exclusively, so never through a symlink)
//!   and renamed over its destination: a symlink at the destination is replaced, not
//!   followed.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::Dir;

/// A host's root directory, held open; cloning shares the handle.
#[derive(Debug, Clone)]
pub(crate) struct HostFs {
    root: Arc<Dir>,
}

impl HostFs {
    /// Opens the host directory `ROOT/hosts/<cloud>/<ip>` (checked by the world to be a
    /// directory, not a symlink).
    pub(crate) fn open(root: &Path) -> io::Result<Self> {
        Dir::open_ambient_dir(root, ambient_authority()).map(|dir| Self {
            root: Arc::new(dir),
        })
    }

    /// The root directory's handle: every operation through it stays beneath it.
    pub(crate) fn dir(&self) -> &Dir {
        &self.root
    }
}

/// An absolute host path as a path relative to the host root (`.` for the root itself).
pub(crate) fn relative(path: &str) -> PathBuf {
    let mut parts: Vec<&str> = Vec::new();
    let mut rest = path;
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        parts.push(&path[..1]);
        rest = &path[2..];
    }
    // A drive letter is part of the root: `C:\..` stays at `C:\`.
    let floor = parts.len();
    for part in rest.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                if parts.len() > floor {
                    parts.pop();
                }
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        PathBuf::from(".")
    } else {
        parts.iter().collect()
    }
}

/// The last name of a relative path, `None` for the root.
pub(crate) fn last_name(rel: &Path) -> Option<String> {
    rel.file_name().and_then(|n| n.to_str()).map(str::to_string)
}

/// Whether `name` is one plain file name: not empty, not `.` or `..`, no separator, no NUL.
/// A target file name must be one, or the file would land in another directory.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// Inverts the middle byte of a file (the `corrupt_deliveries` fault): its size and name
/// stay, its content differs. An empty file has no byte to alter and stays as it is.
pub(crate) fn flip_middle_byte(dir: &Dir, rel: &Path) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut file = dir.open_with(rel, cap_std::fs::OpenOptions::new().read(true).write(true))?;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let middle = SeekFrom::Start(len / 2);
    let mut byte = [0u8; 1];
    file.seek(middle)?;
    file.read_exact(&mut byte)?;
    file.seek(middle)?;
    file.write_all(&[!byte[0]])
}

/// [`flip_middle_byte`] on every regular file beneath a delivered directory (symlinks are
/// not followed).
pub(crate) fn flip_every_file(dir: &Dir, rel: &Path) -> io::Result<()> {
    let mut pending = vec![rel.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in dir.read_dir(&current)? {
            let entry = entry?;
            let path = current.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                flip_middle_byte(dir, &path)?;
            }
        }
    }
    Ok(())
}

/// An I/O error as a log detail; a refused escape says so in words.
pub(crate) fn detail(err: &io::Error) -> String {
    if err.kind() == io::ErrorKind::PermissionDenied
        && err.to_string().contains("outside of the filesystem")
    {
        "path leads outside the host".to_string()
    } else {
        err.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_below_the_root() {
        assert_eq!(relative("/a/../../b"), Path::new("b"));
        assert_eq!(relative("/../../etc/passwd"), Path::new("etc/passwd"));
        assert_eq!(relative("/stage/x/../"), Path::new("stage"));
        assert_eq!(relative("/"), Path::new("."));
        assert_eq!(relative("C:\\x\\y"), Path::new("C/x/y"));
        assert_eq!(relative("C:\\..\\..\\y"), Path::new("C/y"));
    }

    #[test]
    fn plain_names() {
        for ok in ["a.tgz", "a b", ".hidden", "...", "x..y"] {
            assert!(is_plain_name(ok), "{ok:?}");
        }
        for bad in ["", ".", "..", "/etc/passwd", "../x", "a/b", "a\\b", "a\0b"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }
}
