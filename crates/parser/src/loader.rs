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
        let bytes = std::fs::read(path)?;
        String::from_utf8(bytes).map_err(|e| {
            // Everything before the first bad byte is valid and copied as is, so the offset
            // holds in the lossy text too.
            let offset = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            std::io::Error::new(std::io::ErrorKind::InvalidData, NotUtf8 { offset, text })
        })
    }
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
}
