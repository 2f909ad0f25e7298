//! Scripts `plan` runs through JOB's `fast_execute_script`: the script languages JOB knows,
//! and the **checksum script** that reads the size and SHA-256 of files on hosts (delivery
//! verification and refresh use the same one), with the parser of what it prints.
//!
//! The checksum script is a flat list of POSIX shell commands, one file at a time, so a real
//! host (bash, GNU coreutils or busybox) and `jobsim`'s sandboxed subset run it alike:
//!
//! ```text
//! #!/bin/bash
//! echo 'plan-checksum v1'
//! stat -c 'size %s %n' -- '/data/app/a.tgz'
//! sha256sum -- '/data/app/a.tgz'
//! exit 0
//! ```
//!
//! Each file costs one `stat` (no read) and one `sha256sum` (one read). A file that is
//! missing or unreadable prints only an error line, which the parser ignores, so its facts
//! stay unknown: a missing file has neither size nor digest. The script always exits 0, so a
//! host that ran it is a JOB success whatever it found; a host whose agent is down fails as
//! JOB reports it, and has no output to parse.

use std::collections::BTreeMap;
use std::fmt;

/// `script_language` (v3) / `script_type` (v2): JOB's `ScriptTypeEnum`.
pub mod language {
    /// Shell (bash on Linux).
    pub const SHELL: i32 = 1;
    /// Windows batch.
    pub const BAT: i32 = 2;
    /// Perl.
    pub const PERL: i32 = 3;
    /// Python.
    pub const PYTHON: i32 = 4;
    /// PowerShell.
    pub const POWERSHELL: i32 = 5;

    /// A language `fast_execute_script` accepts (1 to 5).
    pub fn is_valid(language: i32) -> bool {
        (SHELL..=POWERSHELL).contains(&language)
    }
}

/// The first line the checksum script prints: its format and version. Output without it
/// was not written by this script (another script, or a host that never ran it).
pub const CHECKSUM_HEADER: &str = "plan-checksum v1";

/// The prefix of the size line `stat -c 'size %s %n'` prints.
const SIZE_PREFIX: &str = "size ";

/// A script's text as `fast_execute_script` carries it in `script_content` (and parameters
/// in `script_param`): base64, standard alphabet, padded.
pub fn encode_content(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A path the checksum script cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafePath {
    /// Not absolute: the script's working directory is JOB's, not the plan's.
    #[error("{0:?} is not an absolute path")]
    Relative(String),
    /// A line break or NUL would split or end the command, and the output line.
    #[error("{0:?} contains a line break or NUL")]
    ControlCharacter(String),
}

/// The checksum script for `paths` (absolute, in the order given; duplicates are read once).
pub fn checksum_script<S: AsRef<str>>(paths: &[S]) -> Result<String, UnsafePath> {
    let mut script = format!("#!/bin/bash\necho '{CHECKSUM_HEADER}'\n");
    let mut seen = std::collections::BTreeSet::new();
    for path in paths.iter().map(AsRef::as_ref) {
        if !path.starts_with('/') {
            return Err(UnsafePath::Relative(path.to_owned()));
        }
        if path.contains(['\n', '\r', '\0']) {
            return Err(UnsafePath::ControlCharacter(path.to_owned()));
        }
        if !seen.insert(path) {
            continue;
        }
        let quoted = quote(path);
        script.push_str(&format!("stat -c '{SIZE_PREFIX}%s %n' -- {quoted}\n"));
        script.push_str(&format!("sha256sum -- {quoted}\n"));
    }
    script.push_str("exit 0\n");
    Ok(script)
}

/// `path` in single quotes, each `'` written as `'\''`: nothing in it is expanded.
fn quote(path: &str) -> String {
    format!("'{}'", path.replace('\'', r"'\''"))
}

/// What the checksum script found about one file on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileFacts {
    /// Bytes, when `stat` could read it.
    pub size: Option<u64>,
    /// Lower-case hex SHA-256, when `sha256sum` could read it.
    pub sha256: Option<String>,
}

impl FileFacts {
    /// Neither size nor digest: the file is not there (or cannot be seen).
    pub fn is_missing(&self) -> bool {
        self.size.is_none() && self.sha256.is_none()
    }
}

/// Output that is not the checksum script's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumOutputError {
    /// The header line is missing: the script did not run, or another one did.
    #[error("the output does not start with `{CHECKSUM_HEADER}`")]
    NoHeader,
}

/// Reads one host's output of the checksum script: every path that printed a size or a
/// digest, with what it printed. A path that printed neither is absent from the map (look
/// it up with `.get(path).cloned().unwrap_or_default()`). Lines that are neither (errors
/// of `stat` or `sha256sum`, anything JOB adds) are skipped.
pub fn parse_checksum_output(
    output: &str,
) -> Result<BTreeMap<String, FileFacts>, ChecksumOutputError> {
    let mut lines = output.lines().map(|l| l.trim_end_matches('\r'));
    if !lines.by_ref().any(|l| l.trim() == CHECKSUM_HEADER) {
        return Err(ChecksumOutputError::NoHeader);
    }
    let mut facts: BTreeMap<String, FileFacts> = BTreeMap::new();
    for line in lines {
        if let Some((size, path)) = size_line(line) {
            facts.entry(path.to_owned()).or_default().size = Some(size);
        } else if let Some((digest, path)) = digest_line(line) {
            facts.entry(path).or_default().sha256 = Some(digest);
        }
    }
    Ok(facts)
}

/// `size <bytes> <path>`.
fn size_line(line: &str) -> Option<(u64, &str)> {
    let rest = line.strip_prefix(SIZE_PREFIX)?;
    let (size, path) = rest.split_once(' ')?;
    Some((size.parse().ok()?, path))
}

/// `<64 hex>  <path>`, or GNU's escaped form `\<64 hex>  <path with \\ and \n>` for a name
/// holding a backslash or a line break.
fn digest_line(line: &str) -> Option<(String, String)> {
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let digest = line.get(..64)?;
    let path = line.get(64..)?.strip_prefix("  ")?;
    if !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let path = if escaped {
        unescape(path)
    } else {
        path.to_owned()
    };
    Some((digest.to_ascii_lowercase(), path))
}

/// GNU coreutils' file-name escaping undone: `\\` is `\`, `\n` a line break.
fn unescape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// How one file on one host compares with what it should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Same size and digest.
    Same,
    /// Not there.
    Missing,
    /// Another size.
    DifferentSize,
    /// Same size, other bytes (or a digest that could not be read).
    DifferentContent,
}

impl Verdict {
    /// Compares what a host holds with the expected size and digest.
    pub fn of(found: &FileFacts, size: u64, sha256: &str) -> Verdict {
        if found.is_missing() {
            Verdict::Missing
        } else if found.size != Some(size) {
            Verdict::DifferentSize
        } else if found
            .sha256
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(sha256))
        {
            Verdict::Same
        } else {
            Verdict::DifferentContent
        }
    }
}

impl FileFacts {
    /// How `found` (a target's file) compares with these facts (the source's): `None` when
    /// the source's size or digest is unknown, so nothing can be said.
    pub fn compare(&self, found: &FileFacts) -> Option<Verdict> {
        let (size, sha256) = (self.size?, self.sha256.as_deref()?);
        Some(Verdict::of(found, size, sha256))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Same => "same",
            Verdict::Missing => "missing",
            Verdict::DifferentSize => "different size",
            Verdict::DifferentContent => "different content",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn the_script_quotes_every_path_and_reads_each_once() {
        let script =
            checksum_script(&["/data/a b.tgz", "/data/it's", "/data/a b.tgz"]).expect("script");
        assert_eq!(
            script,
            "#!/bin/bash\necho 'plan-checksum v1'\n\
             stat -c 'size %s %n' -- '/data/a b.tgz'\nsha256sum -- '/data/a b.tgz'\n\
             stat -c 'size %s %n' -- '/data/it'\\''s'\nsha256sum -- '/data/it'\\''s'\n\
             exit 0\n"
        );
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert_eq!(
            checksum_script(&["data/x"]),
            Err(UnsafePath::Relative("data/x".into()))
        );
        assert!(matches!(
            checksum_script(&["/data/x\nrm -rf /"]),
            Err(UnsafePath::ControlCharacter(_))
        ));
    }

    #[test]
    fn output_is_read_per_path() {
        let output = format!(
            "plan-checksum v1\nsize 0 /data/empty\n{EMPTY_SHA}  /data/empty\n\
             stat: cannot statx '/data/gone': No such file or directory\n\
             sha256sum: /data/gone: No such file or directory\n\
             size 3 /data/a b\n\\{EMPTY_SHA}  /data/back\\\\slash\n"
        );
        let facts = parse_checksum_output(&output).expect("parsed");
        assert_eq!(
            facts["/data/empty"],
            FileFacts {
                size: Some(0),
                sha256: Some(EMPTY_SHA.into())
            }
        );
        assert!(!facts.contains_key("/data/gone"));
        assert_eq!(facts["/data/a b"].size, Some(3));
        assert_eq!(facts["/data/a b"].sha256, None);
        assert_eq!(
            facts["/data/back\\slash"].sha256.as_deref(),
            Some(EMPTY_SHA)
        );
    }

    #[test]
    fn output_without_the_header_is_not_ours() {
        assert_eq!(
            parse_checksum_output("size 1 /x\n"),
            Err(ChecksumOutputError::NoHeader)
        );
    }

    #[test]
    fn verdicts() {
        let found = FileFacts {
            size: Some(0),
            sha256: Some(EMPTY_SHA.to_uppercase()),
        };
        assert_eq!(Verdict::of(&found, 0, EMPTY_SHA), Verdict::Same);
        assert_eq!(Verdict::of(&found, 1, EMPTY_SHA), Verdict::DifferentSize);
        assert_eq!(
            Verdict::of(&found, 0, &"0".repeat(64)),
            Verdict::DifferentContent
        );
        assert_eq!(
            Verdict::of(&FileFacts::default(), 0, EMPTY_SHA),
            Verdict::Missing
        );
        let source = FileFacts {
            size: Some(0),
            sha256: Some(EMPTY_SHA.into()),
        };
        assert_eq!(source.compare(&found), Some(Verdict::Same));
        assert_eq!(FileFacts::default().compare(&found), None);
    }

    #[test]
    fn languages() {
        assert!(language::is_valid(language::SHELL));
        assert!(!language::is_valid(0));
        assert!(!language::is_valid(6));
    }
}
