//! Where plan text comes from: the filesystem, or anything else (git blobs for `plan diff`).

use std::path::{Path, PathBuf};

/// Reads plan and included files; the filesystem by default, git blobs for `plan diff --base`.
pub trait SourceLoader {
    /// The full text of the file at `path` (as resolved by the parser: includes are joined to
    /// the including file's directory).
    fn load(&self, path: &Path) -> std::io::Result<String>;
}

/// Reads files from the filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsLoader;

impl SourceLoader for FsLoader {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

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
}
