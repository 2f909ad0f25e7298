//! Where plan text comes from: the filesystem, or anything else (git blobs for `plan diff`).
//!
//! Plans are reviewed in git and may come from anyone who can open a pull request, so an
//! `include` is read only when it is a regular file inside the plan's repository (the nearest
//! directory above the plan holding `.git`, or the plan's own directory outside git), after
//! every symbolic link is resolved, and no larger than [`MAX_INCLUDE_BYTES`]. Anything else is
//! refused before a byte of it is read, so a diagnostic can never show the lines of
//! `/proc/self/environ` or grow a buffer from `/dev/zero`.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The largest file an `include` may name. Inventories of tens of thousands of hosts fit many
/// times over; the cap bounds what a hostile include can make the parser hold.
pub const MAX_INCLUDE_BYTES: u64 = 4 << 20;

/// Reads plan and included files; the filesystem by default, git blobs for `plan diff --base`.
pub trait SourceLoader {
    /// The full text of the plan file at `path`.
    fn load(&self, path: &Path) -> std::io::Result<String>;

    /// The full text of a file that the plan at `plan` includes. `path` is the `include` entry
    /// joined to the plan's directory (relative, never absolute).
    ///
    /// Implementations refuse, with an [`IncludeRefused`] error (see
    /// [`IncludeRefused::into_io`]), anything that is not a regular file inside the plan's
    /// repository once symbolic links are resolved, or that is larger than
    /// [`MAX_INCLUDE_BYTES`], and read nothing of it.
    fn load_include(&self, plan: &Path, path: &Path) -> std::io::Result<String>;
}

/// Reads files from the filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsLoader;

impl SourceLoader for FsLoader {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        decode(std::fs::read(path)?)
    }

    fn load_include(&self, plan: &Path, path: &Path) -> std::io::Result<String> {
        read_include(&include_root(plan)?, path)
    }
}

/// Why an included file was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IncludeRefused {
    /// The `include` entry is an absolute path: includes are written relative to the plan
    /// (the parser refuses these before asking a loader).
    Absolute,
    /// The file (after `..` and symbolic links) is not inside `root`.
    OutsideRoot {
        /// The plan's repository root (or the plan's directory outside git).
        root: PathBuf,
    },
    /// Inside the repository's `.git` directory, whose `config` may hold credentials in remote
    /// URLs: never a plan's inventory.
    GitDirectory,
    /// A directory, FIFO, socket, device or a file whose size is not known before reading it
    /// (`/proc`): nothing of it is read.
    NotAFile {
        /// What it is instead, for the message.
        kind: &'static str,
    },
    /// Larger than [`MAX_INCLUDE_BYTES`].
    TooLarge {
        /// The size found.
        size: u64,
    },
}

impl IncludeRefused {
    /// The refusal as the `io::Error` a [`SourceLoader`] returns; the parser recognises it and
    /// reports it at the `include` entry.
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, self)
    }
}

impl std::fmt::Display for IncludeRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IncludeRefused::Absolute => f.write_str("the path is absolute"),
            IncludeRefused::OutsideRoot { root } => {
                write!(f, "the file is outside `{}`", root.display())
            }
            IncludeRefused::GitDirectory => f.write_str("the file is inside `.git`"),
            IncludeRefused::NotAFile { kind } => write!(f, "it is {kind}, not a regular file"),
            IncludeRefused::TooLarge { size } => write!(
                f,
                "it is {size} bytes, over the limit of {MAX_INCLUDE_BYTES} bytes"
            ),
        }
    }
}

impl std::error::Error for IncludeRefused {}

/// The directory that includes of the plan at `plan` must stay inside: the nearest directory
/// at or above the plan's own that holds `.git` (a directory, or a file for worktrees and
/// submodules), or the plan's directory when there is none. Symbolic links are resolved.
pub fn include_root(plan: &Path) -> std::io::Result<PathBuf> {
    let dir = match plan.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let dir = dir.canonicalize()?;
    let repository = dir
        .ancestors()
        .find(|ancestor| ancestor.join(".git").symlink_metadata().is_ok());
    Ok(repository.unwrap_or(&dir).to_path_buf())
}

/// Reads `path` when it is a regular file inside `root` (a canonical path, as
/// [`include_root`] returns) of at most [`MAX_INCLUDE_BYTES`].
///
/// The file's type and size come from `stat` before it is opened, so a FIFO or device is never
/// opened. What is read is bounded by that size: a file that yields more than `stat` said
/// (`/proc`, or one growing meanwhile) is refused rather than read on.
pub fn read_include(root: &Path, path: &Path) -> std::io::Result<String> {
    let real = path.canonicalize()?;
    let Ok(inside) = real.strip_prefix(root) else {
        return Err(IncludeRefused::OutsideRoot {
            root: root.to_path_buf(),
        }
        .into_io());
    };
    if inside.components().any(|c| c.as_os_str() == ".git") {
        return Err(IncludeRefused::GitDirectory.into_io());
    }
    let meta = real.metadata()?;
    if !meta.is_file() {
        return Err(IncludeRefused::NotAFile {
            kind: file_kind(&meta),
        }
        .into_io());
    }
    if meta.len() > MAX_INCLUDE_BYTES {
        return Err(IncludeRefused::TooLarge { size: meta.len() }.into_io());
    }
    let file = File::open(&real)?;
    if !same_file(&meta, &file.metadata()?) {
        // Replaced between the check and the open: read nothing of whatever it is now.
        return Err(IncludeRefused::NotAFile {
            kind: "a file replaced while it was opened",
        }
        .into_io());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(meta.len() + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > meta.len() {
        return Err(IncludeRefused::NotAFile {
            kind: "a special file whose size is not known before reading it",
        }
        .into_io());
    }
    decode(bytes)
}

/// Names what a non-regular file is, for the refusal's message.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    "a special file"
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    b.is_file() && a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    b.is_file()
}

/// UTF-8 text, or an [`NotUtf8`] error pointing at the first bad byte.
fn decode(bytes: Vec<u8>) -> std::io::Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        // Everything before the first bad byte is valid and copied as is, so the offset
        // holds in the lossy text too.
        let offset = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
        std::io::Error::new(std::io::ErrorKind::InvalidData, NotUtf8 { offset, text })
    })
}

/// A file that is not UTF-8: the error [`FsLoader`] returns (as `InvalidData`), so the parser
/// can point at the first bad byte instead of only naming the file.
#[derive(Debug)]
pub(crate) struct NotUtf8 {
    /// Byte offset of the first invalid sequence in `text`.
    pub(crate) offset: usize,
    /// The file decoded with U+FFFD for every invalid sequence (for the diagnostic's snippet).
    pub(crate) text: String,
}

impl std::fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the file is not UTF-8 text")
    }
}

impl std::error::Error for NotUtf8 {}

/// Serves the main file from memory and everything else from the filesystem.
#[derive(Debug)]
pub(crate) struct MainTextLoader {
    pub(crate) main: PathBuf,
    pub(crate) text: String,
}

impl SourceLoader for MainTextLoader {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        if path == self.main {
            Ok(self.text.clone())
        } else {
            FsLoader.load(path)
        }
    }

    fn load_include(&self, plan: &Path, path: &Path) -> std::io::Result<String> {
        FsLoader.load_include(plan, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(err: &std::io::Error) -> Option<&IncludeRefused> {
        err.get_ref().and_then(|e| e.downcast_ref())
    }

    fn repo() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical").join("repo");
        std::fs::create_dir_all(root.join(".git")).expect(".git");
        std::fs::write(dir.path().join("secret.toml"), "[vars]\nx = \"1\"\n").expect("write");
        std::fs::create_dir_all(root.join("plans")).expect("plans");
        (dir, root)
    }

    #[test]
    fn the_root_is_the_repository_or_the_plans_directory() {
        let (_dir, root) = repo();
        let plan = root.join("plans/p.toml");
        assert_eq!(include_root(&plan).expect("root"), root);
        let outside = tempfile::tempdir().expect("tempdir");
        let plan = outside.path().join("p.toml");
        assert_eq!(
            include_root(&plan).expect("root"),
            outside.path().canonicalize().expect("canonical")
        );
    }

    #[test]
    fn files_inside_the_repository_are_read_whatever_the_spelling() {
        let (_dir, root) = repo();
        std::fs::write(root.join("inv.toml"), "[vars]\na = \"1\"\n").expect("write");
        let text = read_include(&root, &root.join("plans/../inv.toml")).expect("read");
        assert!(text.contains("a = "));
    }

    #[test]
    fn escapes_special_files_and_big_files_are_refused_unread() {
        let (_dir, root) = repo();
        let escape = root.join("plans/../../secret.toml");
        let err = read_include(&root, &escape).expect_err("outside");
        assert!(matches!(
            refusal(&err),
            Some(IncludeRefused::OutsideRoot { .. })
        ));
        std::fs::write(
            root.join("big.toml"),
            vec![b'#'; MAX_INCLUDE_BYTES as usize + 1],
        )
        .expect("write");
        let err = read_include(&root, &root.join("big.toml")).expect_err("too large");
        assert!(matches!(
            refusal(&err),
            Some(IncludeRefused::TooLarge { .. })
        ));
        std::fs::write(root.join(".git/config"), "[core]\n").expect("write");
        let err = read_include(&root, &root.join("plans/../.git/config")).expect_err("git");
        assert_eq!(refusal(&err), Some(&IncludeRefused::GitDirectory));
        let err = read_include(&root, &root.join("plans")).expect_err("directory");
        assert_eq!(
            refusal(&err),
            Some(&IncludeRefused::NotAFile {
                kind: "a directory"
            })
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/hostname", root.join("link.toml")).expect("link");
            let err = read_include(&root, &root.join("link.toml")).expect_err("outside");
            assert!(matches!(
                refusal(&err),
                Some(IncludeRefused::OutsideRoot { .. })
            ));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn proc_files_that_stat_as_empty_are_not_read_on() {
        // `/proc` files say they are regular and empty, then yield text: a root of `/` would
        // take them in, so the size check must catch them.
        let err =
            read_include(Path::new("/"), Path::new("/proc/self/environ")).expect_err("refused");
        assert!(matches!(
            refusal(&err),
            Some(IncludeRefused::NotAFile { .. })
        ));
    }
}
