//! BK-JOB's absolute-path rule (`FilePathValidateUtil.validateFileSystemAbsolutePath`) and the
//! plan's own rules on top of it (`REGEX:` placement and syntax).
//!
//! JOB checks `file_target_path` and every server-source path with this rule and rejects the
//! whole request when one fails, so the plan checks the same rule first, at the exact string.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// Why a path is not one BK-JOB accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// Empty or only whitespace.
    Blank,
    /// Neither `/...` nor `X:\...` / `X:/...`.
    NotAbsolute,
    /// Starts with `/` but JOB's Linux pattern rejects it (e.g. `/..`).
    Linux,
    /// A Windows path with a separator right after the drive (`C:\\`).
    WindowsEmptyComponent,
    /// A Windows path with a character Windows forbids in names.
    WindowsChar(char),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Blank => f.write_str("the path is empty"),
            PathError::NotAbsolute => f.write_str(
                "the path is not absolute (it must start with `/`, or `X:\\` / `X:/` on Windows)",
            ),
            PathError::Linux => f.write_str("BK-JOB rejects this Linux path"),
            PathError::WindowsEmptyComponent => {
                f.write_str("a Windows path may not have two separators right after the drive")
            }
            PathError::WindowsChar(c) => {
                write!(
                    f,
                    "`{c}` is not allowed in a Windows file or directory name"
                )
            }
        }
    }
}

impl std::error::Error for PathError {}

// JOB's Linux pattern, anchored the way Java's `matches()` anchors it. `.` is unescaped in the
// original (so `../` matches any two characters and a slash); kept as is to accept exactly
// what JOB accepts.
static LINUX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^/(((../)*|(./)*)|(\.?[^.].*/?))+$").unwrap_or_else(|_| unreachable_regex())
});
// Form 1 of JOB's variable shortcut: an absolute prefix and a `[...]` built-in variable.
static BUILTIN_VAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z]:[\\/]|/).*\[[a-zA-Z0-9:/_-]+\]").unwrap_or_else(|_| unreachable_regex())
});
// Form 2: a `${name}` anywhere.
static DOLLAR_VAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{[A-Za-z_][A-Za-z0-9_-]*\}").unwrap_or_else(|_| unreachable_regex())
});

/// The patterns above are constants covered by tests; this keeps `unwrap` out of the library.
fn unreachable_regex() -> Regex {
    // An always-valid pattern that matches nothing useful; never reached in practice.
    Regex::new("$^").unwrap_or_else(|_| unreachable!("constant pattern"))
}

/// True for `X:\...` and `X:/...`.
pub(crate) fn is_windows(path: &str) -> bool {
    let b = path.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
}

/// Checks `path` the way BK-JOB's `validateFileSystemAbsolutePath` does (bk-job-api.md §4.1).
pub fn validate_job_path(path: &str) -> Result<(), PathError> {
    if path.trim().is_empty() {
        return Err(PathError::Blank);
    }
    // The `contains` tests are what each pattern needs at the least; they spare the regex
    // engine on the plain paths that make up almost every plan.
    if (path.contains('[') && BUILTIN_VAR.is_match(path))
        || (path.contains("${") && DOLLAR_VAR.is_match(path))
    {
        return Ok(());
    }
    if path.starts_with('/') {
        return if linux_fast_match(path) || LINUX.is_match(path) {
            Ok(())
        } else {
            Err(PathError::Linux)
        };
    }
    if !is_windows(path) {
        return Err(PathError::NotAbsolute);
    }
    let rest = &path[3..];
    if rest.starts_with(['\\', '/']) {
        return Err(PathError::WindowsEmptyComponent);
    }
    // Text after `REGEX:` may contain anything; names before it follow Windows' rules.
    let names = rest.find("REGEX:").map_or(rest, |i| &rest[..i]);
    if let Some(c) = names
        .chars()
        .find(|c| matches!(c, ':' | '?' | '"' | '<' | '>' | '|'))
    {
        return Err(PathError::WindowsChar(c));
    }
    Ok(())
}

/// A sufficient condition for [`LINUX`] to match, checked without the regex engine: after the
/// leading `/`, a first character that is not `.` followed by no line break is one repetition
/// of `\.?[^.].*/?` (`.` does not match `\n`). `false` means "ask the regex".
fn linux_fast_match(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    rest.chars().next().is_some_and(|c| c != '.') && !rest.contains('\n')
}

/// The first `.` or `..` component of `path` (the text after `REGEX:` is a pattern, not a
/// component), if any.
///
/// JOB itself accepts them: `FilePathValidateUtil.validateFileSystemAbsolutePath` (bk-job
/// `common-utils`) lets any Linux path through that starts with `/`, and its own tests pass
/// `/tmp/test/../test.log`. The plan refuses them because every rule after this one reads
/// paths as written: `/stage/x/../` would deliver a directory named `..` (landing beside the
/// target directory, not in it), and `/stage/x/../app.tgz` is the same file as
/// `/stage/app.tgz` to the host but not to the ordering and conflict checks.
pub(crate) fn dot_component(path: &str) -> Option<&str> {
    let names = regex_part(path).map_or(path, |(at, _)| &path[..at]);
    let separators: &[char] = if is_windows(path) {
        &['\\', '/']
    } else {
        &['/']
    };
    names
        .split(separators)
        .find(|component| matches!(*component, "." | ".."))
}

/// Splits a path into its directory part (with the trailing separator) and its file-name part.
pub(crate) fn split_file_name(path: &str) -> (&str, &str) {
    let sep = if is_windows(path) {
        path.rfind(['\\', '/'])
    } else {
        path.rfind('/')
    };
    match sep {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    }
}

/// Where `REGEX:` starts in a source path, and the pattern after it.
///
/// The pattern is everything after `REGEX:` (it may contain `/`, as JOB allows on Windows),
/// so `REGEX:` must start the file-name part: the character before it is a separator.
pub(crate) fn regex_part(path: &str) -> Option<(usize, &str)> {
    let i = path.find("REGEX:")?;
    Some((i, &path[i + "REGEX:".len()..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every example of bk-job-api.md §4.1, plus JOB's own unit-test cases.
    const VALID: &[&str] = &[
        "/",
        "///",
        "/tmp/",
        "/tmp////",
        "/tmp/test/../test.log",
        "/data/test_2022 04 12.apk",
        "/logs/log*.log",
        "/tmp/REGEX:myfile-[A-Za-z]{0,10}.tar.gz",
        "/tmp/REGEX:aa|bb",
        "C:\\",
        "C:/",
        "C:\\logs\\log*.log",
        "D:/Download/",
        "C:\\tmp\\REGEX:^[a-zA-Z0-9]",
        "${path}/test.txt",
        "${path}",
        "/[FILESRCIP]/logs",
        "C:\\[DATE:yyyy-MM-dd]\\logs",
        "C:\\Documents\\abc.txt",
        "c:\\Documents\\abc.txt",
        "C:\\Documents\\嘉 abc.txt",
        "C:\\logs\\..\\access.log",
        "C:\\.config\\conf",
        "/.hidden/file",
        "/../",
    ];

    const INVALID: &[&str] = &[
        "",
        "   ",
        "test.log",
        "./test.log",
        "../test.log",
        "data/x.apk",
        "[FILESRCIP]/logs",
        "C:",
        "C:test.log",
        "C:\\\\\\\\",
        "C:\\\\",
        "1:\\test.log",
        "AA:\\test.log",
        "C:\\user\\abc?a",
        "C:\\user\\abc|a",
        "C:\\user\\abc>a",
        "C:\\tmp\\REGE:a|b",
        "${!#path}",
        ":\\abc.txt",
        "/..",
    ];

    #[test]
    fn job_path_rules_table() {
        for path in VALID {
            assert_eq!(validate_job_path(path), Ok(()), "{path:?} should be valid");
        }
        for path in INVALID {
            assert!(
                validate_job_path(path).is_err(),
                "{path:?} should be invalid"
            );
        }
    }

    /// The shortcut never accepts a path the regex rejects.
    #[test]
    fn linux_fast_match_agrees_with_the_regex() {
        let parts = [
            "/", ".", "..", "a", "\n", "x/", "é", "[", " ", "REGEX:", "*",
        ];
        let mut checked = 0;
        for a in parts {
            for b in parts {
                for c in parts {
                    let path = format!("/{a}{b}{c}");
                    if linux_fast_match(&path) {
                        assert!(LINUX.is_match(&path), "{path:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100, "the shortcut applies to most paths");
        for path in VALID.iter().chain(INVALID).filter(|p| p.starts_with('/')) {
            if linux_fast_match(path) {
                assert!(LINUX.is_match(path), "{path:?}");
            }
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(validate_job_path(""), Err(PathError::Blank));
        assert_eq!(validate_job_path("a/b"), Err(PathError::NotAbsolute));
        assert_eq!(
            validate_job_path("C:\\a?b"),
            Err(PathError::WindowsChar('?'))
        );
        assert_eq!(
            validate_job_path("C:\\\\"),
            Err(PathError::WindowsEmptyComponent)
        );
    }

    #[test]
    fn dot_components_are_found_outside_patterns() {
        for path in [
            "/stage/x/../",
            "/stage/./app.tgz",
            "/..",
            "/a/..",
            "C:\\logs\\..\\access.log",
            "C:/logs/./x",
            "/tmp/test/../test.log",
        ] {
            assert!(dot_component(path).is_some(), "{path:?}");
        }
        for path in [
            "/",
            "///",
            "/stage/x/",
            "/.hidden/file",
            "/a/..b/c.",
            "/a/...",
            "/tmp/REGEX:^..$",
            "/tmp/REGEX:../x",
            "/a\\..\\b",
        ] {
            assert_eq!(dot_component(path), None, "{path:?}");
        }
    }

    #[test]
    fn file_name_split() {
        assert_eq!(split_file_name("/a/b.txt"), ("/a/", "b.txt"));
        assert_eq!(split_file_name("/a/"), ("/a/", ""));
        assert_eq!(split_file_name("C:\\a\\b"), ("C:\\a\\", "b"));
        assert_eq!(split_file_name("/a/b\\c"), ("/a/", "b\\c"));
    }
}
