//! Path normalisation for comparing what one push reads with what another delivers.
//!
//! Paths are compared as text after a light normalisation: `\` becomes `/` in Windows paths,
//! repeated separators collapse, and a Windows drive letter is lower-cased. `.` and `..`
//! components are left alone on purpose: JOB does not resolve them either, and guessing would
//! invent edges the author never meant. The strings sent to JOB are never changed; this is only
//! for comparisons.

/// Normalises a path for comparison (see the module docs).
pub(crate) fn normalise(path: &str) -> String {
    let windows = is_windows(path);
    let mut out = String::with_capacity(path.len());
    let mut previous_separator = false;
    for (i, c) in path.chars().enumerate() {
        let c = if windows && c == '\\' { '/' } else { c };
        if c == '/' {
            if previous_separator {
                continue;
            }
            previous_separator = true;
        } else {
            previous_separator = false;
        }
        if windows && i == 0 {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A target directory, normalised and ending with `/` (JOB treats the target as a directory
/// whether or not it ends with a separator).
pub(crate) fn target_dir(path: &str) -> String {
    let mut dir = normalise(path);
    if !dir.ends_with('/') {
        dir.push('/');
    }
    dir
}

/// `X:\...` or `X:/...`.
fn is_windows(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.len() >= 3
        && bytes[0].is_ascii_alphabetic()
        && bytes[1] == b':'
        && (bytes[2] == b'\\' || bytes[2] == b'/')
}

/// One `files` entry, normalised: the directory it lives in and the name it delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NormEntry {
    /// Normalised directory part, ending with `/`.
    pub(crate) dir: String,
    /// The name delivered into the target directory: a file name, a directory name (without
    /// its trailing separator) or the pattern text after the directory (`REGEX:...`, `*.log`).
    pub(crate) name: String,
    /// What kind of entry this is.
    pub(crate) kind: EntryKind,
    /// The full normalised location read: the file, the directory (ending with `/`), or for a
    /// pattern the directory it matches in.
    pub(crate) location: String,
}

/// The three shapes of a source entry JOB distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A single file.
    File,
    /// A whole directory (trailing separator).
    Directory,
    /// A `REGEX:` or `*` wildcard file name: the matches are only known on the source host.
    Pattern,
}

impl NormEntry {
    /// Splits a source path. `REGEX:` applies to the file-name part, so everything from the
    /// marker on is the name even when the expression contains a `/`.
    pub(crate) fn new(path: &str) -> NormEntry {
        let norm = normalise(path);
        if let Some(at) = norm.find("REGEX:") {
            let (dir, name) = norm.split_at(at);
            let dir = ensure_dir(dir);
            return NormEntry {
                location: dir.clone(),
                dir,
                name: name.to_owned(),
                kind: EntryKind::Pattern,
            };
        }
        if let Some(stripped) = norm.strip_suffix('/') {
            let (dir, name) = split_last(stripped);
            return NormEntry {
                location: norm.clone(),
                dir,
                name: name.to_owned(),
                kind: EntryKind::Directory,
            };
        }
        let (dir, name) = split_last(&norm);
        let kind = if name.contains('*') {
            EntryKind::Pattern
        } else {
            EntryKind::File
        };
        NormEntry {
            dir,
            name: name.to_owned(),
            kind,
            location: norm.clone(),
        }
    }

    /// The directories a push could have delivered into for this entry to read its output:
    /// every directory prefix of the location, shallowest first. A directory entry
    /// (`/data/stage/`) and a pattern (`/data/stage/REGEX:...`) include their own directory;
    /// a file includes the directory it lives in.
    pub(crate) fn reading_dirs(&self) -> impl Iterator<Item = &str> {
        self.location
            .char_indices()
            .filter(|&(_, c)| c == '/')
            .map(|(i, _)| &self.location[..=i])
    }
}

fn ensure_dir(dir: &str) -> String {
    if dir.ends_with('/') || dir.is_empty() {
        dir.to_owned()
    } else {
        format!("{dir}/")
    }
}

/// `"/a/b/c"` -> (`"/a/b/"`, `"c"`).
fn split_last(path: &str) -> (String, &str) {
    match path.rfind('/') {
        Some(i) => (path[..=i].to_owned(), &path[i + 1..]),
        None => (String::new(), path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_collapses_separators() {
        assert_eq!(normalise("/data//stage///x"), "/data/stage/x");
        assert_eq!(normalise("C:\\Tmp\\\\x"), "c:/Tmp/x");
        assert_eq!(normalise("/a\\b"), "/a\\b");
        assert_eq!(target_dir("/data/stage"), "/data/stage/");
        assert_eq!(target_dir("/data/stage//"), "/data/stage/");
        assert_eq!(target_dir("/"), "/");
    }

    #[test]
    fn entries_split_into_dir_and_name() {
        let e = NormEntry::new("/data/stage/app.tar.gz");
        assert_eq!(
            (e.dir.as_str(), e.name.as_str()),
            ("/data/stage/", "app.tar.gz")
        );
        assert_eq!(e.kind, EntryKind::File);

        let e = NormEntry::new("/etc/app/extra/");
        assert_eq!((e.dir.as_str(), e.name.as_str()), ("/etc/app/", "extra"));
        assert_eq!(e.kind, EntryKind::Directory);

        let e = NormEntry::new("/etc/app/REGEX:^a/b.*$");
        assert_eq!(
            (e.dir.as_str(), e.name.as_str()),
            ("/etc/app/", "REGEX:^a/b.*$")
        );
        assert_eq!(e.kind, EntryKind::Pattern);

        let e = NormEntry::new("/logs/log*.log");
        assert_eq!(e.kind, EntryKind::Pattern);
        assert_eq!(e.dir, "/logs/");
    }

    #[test]
    fn reading_dirs_cover_ancestors() {
        let e = NormEntry::new("/data/stage/app.tar.gz");
        let dirs: Vec<_> = e.reading_dirs().collect();
        assert_eq!(dirs, vec!["/", "/data/", "/data/stage/"]);
        let e = NormEntry::new("/etc/app/REGEX:x");
        let dirs: Vec<_> = e.reading_dirs().collect();
        assert_eq!(dirs, vec!["/", "/etc/", "/etc/app/"]);
        let e = NormEntry::new("/data/stage/");
        let dirs: Vec<_> = e.reading_dirs().collect();
        assert_eq!(dirs, vec!["/", "/data/", "/data/stage/"]);
    }
}
