//! Path normalisation for comparing what one push reads with what another delivers.
//!
//! Paths are compared as text after a light normalisation: `\` becomes `/` in Windows paths,
//! repeated separators collapse, and a Windows drive letter is lower-cased. `.` and `..`
//! components are left alone on purpose: JOB does not resolve them either, and guessing would
//! invent edges the author never meant. The strings sent to JOB are never changed; this is only
//! for comparisons.

use std::borrow::Cow;

use plan_bkjob::paths::is_windows;
use regex::Regex;
use rustc_hash::FxHashMap;

/// Normalises a path for comparison (see the module docs). Most paths already are: they are
/// borrowed, not copied.
pub(crate) fn normalise(path: &str) -> Cow<'_, str> {
    let windows = is_windows(path);
    if !windows && !path.contains("//") {
        return Cow::Borrowed(path);
    }
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
    Cow::Owned(out)
}

/// A target directory, normalised and ending with `/` (JOB treats the target as a directory
/// whether or not it ends with a separator).
pub(crate) fn target_dir(path: &str) -> Cow<'_, str> {
    let mut dir = normalise(path);
    if !dir.ends_with('/') {
        dir.to_mut().push('/');
    }
    dir
}

/// One `files` entry, normalised: where it reads and the name it delivers.
///
/// At most one allocation per entry (none when the path is already normal): the normalised path,
/// with the name and location as ranges of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NormEntry<'p> {
    /// The normalised path (`REGEX:` entries keep their expression as written).
    norm: Cow<'p, str>,
    /// The name delivered into the target directory: a file name, a directory name (without
    /// its trailing separator) or the pattern text after the directory (`REGEX:...`, `*.log`).
    name: std::ops::Range<usize>,
    /// The location read: the file, the directory (ending with `/`), or for a pattern the
    /// directory it matches in.
    location_end: usize,
    /// What kind of entry this is.
    pub(crate) kind: EntryKind,
    /// A `REGEX:` entry's expression as written: a Windows path's normalisation turns its `\`
    /// into `/`, which would change what the expression means.
    regex: Option<&'p str>,
    /// The name the file is delivered under instead of its own (`file_target_name`).
    renamed: Option<&'p str>,
}

/// The three shapes of a source entry JOB distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    /// A single file.
    File,
    /// A whole directory (trailing separator).
    Directory,
    /// A `REGEX:` or wildcard (`*`, `?`) file name: the matches are only known on the source
    /// host.
    Pattern,
}

impl<'p> NormEntry<'p> {
    /// Splits a source path. `REGEX:` applies to the file-name part, so everything from the
    /// marker on is the name even when the expression contains a `/`.
    pub(crate) fn new(path: &'p str) -> NormEntry<'p> {
        let norm = normalise(path);
        // `contains(':')` first: a plain path skips the substring search.
        if let Some(at) = norm.contains(':').then(|| norm.find("REGEX:")).flatten() {
            // The directory part is everything before the marker (it ends with `/` in any
            // path the parser accepts; a bare `REGEX:` reads in no directory at all).
            let location_end = norm[..at].rfind('/').map_or(0, |i| i + 1);
            return NormEntry {
                name: at..norm.len(),
                location_end,
                kind: EntryKind::Pattern,
                norm,
                regex: path.find("REGEX:").map(|i| &path[i + "REGEX:".len()..]),
                renamed: None,
            };
        }
        if let Some(stripped) = norm.strip_suffix('/') {
            let start = stripped.rfind('/').map_or(0, |i| i + 1);
            return NormEntry {
                name: start..stripped.len(),
                location_end: norm.len(),
                kind: EntryKind::Directory,
                norm,
                regex: None,
                renamed: None,
            };
        }
        let start = norm.rfind('/').map_or(0, |i| i + 1);
        // JOB documents `*`; `?` is taken as a wildcard too, since the agent that expands the
        // name may read it as one: ordering then errs on the side of waiting.
        let kind = if norm[start..].contains(['*', '?']) {
            EntryKind::Pattern
        } else {
            EntryKind::File
        };
        let location_end = match kind {
            EntryKind::Pattern => start,
            EntryKind::File | EntryKind::Directory => norm.len(),
        };
        NormEntry {
            name: start..norm.len(),
            location_end,
            kind,
            norm,
            regex: None,
            renamed: None,
        }
    }

    /// The entry of a push with `file_target_name`: what it delivers lands under that name
    /// (the parser allows it only on a push delivering one file).
    pub(crate) fn delivered_as(mut self, file_target_name: Option<&'p str>) -> Self {
        if self.kind != EntryKind::Directory {
            self.renamed = file_target_name;
        }
        self
    }

    /// True when the entry delivers one file of a known name: a file, or anything renamed.
    pub(crate) fn delivers_one_name(&self) -> bool {
        self.kind == EntryKind::File || self.renamed.is_some()
    }

    /// The name pattern of a [`EntryKind::Pattern`] entry.
    pub(crate) fn pattern(&self) -> NamePattern<'_> {
        match self.regex {
            Some(expression) => NamePattern::Regex(expression),
            None => NamePattern::Wildcard(self.name()),
        }
    }

    /// The name delivered into the target directory (`file_target_name` when the push sets
    /// one).
    pub(crate) fn name(&self) -> &str {
        self.renamed.unwrap_or(&self.norm[self.name.clone()])
    }

    /// The directory the entry lives in (ending with `/`).
    #[cfg(test)]
    fn dir(&self) -> &str {
        match self.kind {
            EntryKind::Pattern => &self.norm[..self.location_end],
            EntryKind::File | EntryKind::Directory => &self.norm[..self.name.start],
        }
    }

    /// The full normalised location read.
    pub(crate) fn location(&self) -> &str {
        &self.norm[..self.location_end]
    }
}

/// What a pattern entry matches in its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NamePattern<'p> {
    /// The expression after `REGEX:`, as written.
    Regex(&'p str),
    /// A file name with `*` (any run of characters) or `?` (any one character).
    Wildcard(&'p str),
}

impl NamePattern<'_> {
    /// The regular expression that decides whether the pattern may match a name. JOB leaves
    /// the matching to the agent on the source host, whose dialect and anchoring are not
    /// documented: a `REGEX:` counts when it matches anywhere in the name (a superset of a
    /// whole-name match), a wildcard when it matches the whole name.
    fn regex(self) -> Result<Regex, regex::Error> {
        match self {
            NamePattern::Regex(expression) => Regex::new(expression),
            NamePattern::Wildcard(name) => {
                let mut expression = String::with_capacity(name.len() + 8);
                expression.push('^');
                let mut buffer = [0; 4];
                for c in name.chars() {
                    match c {
                        '*' => expression.push_str(".*"),
                        '?' => expression.push('.'),
                        _ => expression.push_str(&regex::escape(c.encode_utf8(&mut buffer))),
                    }
                }
                expression.push('$');
                Regex::new(&expression)
            }
        }
    }
}

/// Compiles each distinct pattern once, the first time a name is matched against it.
#[derive(Default)]
pub(crate) struct Matchers<'p> {
    ids: FxHashMap<NamePattern<'p>, usize>,
    /// `None`: the pattern does not compile (or is too large), so it may match anything.
    compiled: Vec<Option<Regex>>,
}

impl<'p> Matchers<'p> {
    /// True when `pattern` may match the name `name` (see [`NamePattern`]).
    pub(crate) fn may_match(&mut self, pattern: NamePattern<'p>, name: &str) -> bool {
        let id = *self.ids.entry(pattern).or_insert_with(|| {
            self.compiled.push(pattern.regex().ok());
            self.compiled.len() - 1
        });
        self.compiled[id]
            .as_ref()
            .is_none_or(|re| re.is_match(name))
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
        assert_eq!((e.dir(), e.name()), ("/data/stage/", "app.tar.gz"));
        assert_eq!(e.kind, EntryKind::File);

        let e = NormEntry::new("/etc/app/extra/");
        assert_eq!((e.dir(), e.name()), ("/etc/app/", "extra"));
        assert_eq!(e.kind, EntryKind::Directory);

        let e = NormEntry::new("/etc/app/REGEX:^a/b.*$");
        assert_eq!((e.dir(), e.name()), ("/etc/app/", "REGEX:^a/b.*$"));
        assert_eq!(e.kind, EntryKind::Pattern);

        let e = NormEntry::new("/logs/log*.log");
        assert_eq!(e.kind, EntryKind::Pattern);
        assert_eq!(e.dir(), "/logs/");
    }

    #[test]
    fn patterns_match_names_the_agent_may_pick() {
        let mut m = Matchers::default();
        let wildcard = |e: &'static str| NormEntry::new(e);
        let e = wildcard("/logs/app-*.tgz");
        assert!(m.may_match(e.pattern(), "app-1.tgz"));
        assert!(!m.may_match(e.pattern(), "app-1.tgz.old"));
        assert!(!m.may_match(e.pattern(), "other.tgz"));
        let e = wildcard("/logs/a?c");
        assert_eq!(e.kind, EntryKind::Pattern);
        assert!(m.may_match(e.pattern(), "abc") && m.may_match(e.pattern(), "a?c"));
        assert!(!m.may_match(e.pattern(), "ac"));
        // Other characters are literal, `.` and brackets included.
        let e = wildcard("/logs/[a].*");
        assert!(m.may_match(e.pattern(), "[a].log"));
        assert!(!m.may_match(e.pattern(), "a.log") && !m.may_match(e.pattern(), "[a]x"));
        // `REGEX:` counts wherever it matches in the name.
        let e = wildcard("/etc/REGEX:^app-.*\\.conf$");
        assert!(m.may_match(e.pattern(), "app-1.conf"));
        assert!(!m.may_match(e.pattern(), "app-1.conf.bak"));
        let e = wildcard("/etc/REGEX:conf");
        assert!(m.may_match(e.pattern(), "my.conf.bak"));
        // A Windows expression keeps its backslashes.
        let e = wildcard("C:\\logs\\REGEX:^a\\.log$");
        assert_eq!(e.pattern(), NamePattern::Regex("^a\\.log$"));
        assert!(m.may_match(e.pattern(), "a.log") && !m.may_match(e.pattern(), "axlog"));
        // An expression that does not compile may match anything.
        assert!(m.may_match(NamePattern::Regex("("), "x"));
    }
}
