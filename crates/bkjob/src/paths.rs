//! JOB's absolute-path rule: `FilePathValidateUtil.validateFileSystemAbsolutePath` (bk-job
//! `common-utils`), which JOB applies to `file_target_path` and to every server-source path,
//! rejecting the whole request when one fails (bk-job-api.md §4.1).
//!
//! The three patterns below are JOB's, written for Rust's engine with Java's semantics kept:
//! `matches()` anchors both ends, and Java's `.` stops at every line terminator (`\n`, `\r`,
//! U+0085, U+2028, U+2029) where Rust's stops only at `\n`. The planner checks a plan with
//! [`validate_job_path`] (which also says why a path fails); the simulator accepts and refuses
//! requests with [`is_valid_absolute_path`]: one rule for both.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// Why a path is not one JOB accepts.
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
    /// A Windows path JOB's pattern rejects for another reason (a line break after `REGEX:`).
    Windows,
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
            PathError::Windows => f.write_str("BK-JOB rejects this Windows path"),
        }
    }
}

impl std::error::Error for PathError {}

/// Java's `.`: any character but a line terminator.
const JAVA_DOT: &str = r"[^\n\r\x{85}\x{2028}\x{2029}]";

/// `LINUX_PATH_REGEX`. Its `.` in `../` and `./` is unescaped in JOB's source (so `../` matches
/// any two characters and a slash); kept as is to accept exactly what JOB accepts.
static LINUX: LazyLock<Regex> =
    LazyLock::new(|| java_pattern(r"/(((DOT{2}/)*|(DOT/)*)|(\.?[^.]DOT*/?))+"));
/// `CONVENTIONAL_DOS_PATH_REGEX`: a drive, a separator and a first character that is not one,
/// then names without `/ \ : ? " < > |` (or `REGEX:` and anything after it), each optionally
/// followed by a separator; or the bare drive root.
static WINDOWS: LazyLock<Regex> = LazyLock::new(|| {
    java_pattern(r#"[A-Za-z]:[/\\][^/\\](([^/\\:?"<>|]|REGEX:(DOT*))*[/\\]?)*|[A-Za-z]:[/\\]"#)
});
/// `VARIABLE_REGEX`: a path holding a built-in variable (`[FILESRCIP]`, `[DATE:...]`) after an
/// absolute prefix, or a `${name}` anywhere, is accepted whatever else it holds.
static VARIABLE: LazyLock<Regex> = LazyLock::new(|| {
    java_pattern(
        r"(([A-Za-z]:[/\\])|(/))DOT*\[[a-zA-Z0-9:/_-]*\]DOT*|DOT*\$\{[a-zA-Z_][a-zA-Z0-9_-]*\}DOT*",
    )
});

/// Compiles one of JOB's patterns (`DOT` standing for Java's `.`) with `matches()` anchoring.
fn java_pattern(pattern: &str) -> Regex {
    let pattern = format!("^(?:{})$", pattern.replace("DOT", JAVA_DOT));
    // The patterns are constants, compiled by every test of this module.
    Regex::new(&pattern).unwrap_or_else(|err| unreachable!("JOB's path pattern: {err}"))
}

/// True for `X:\...` and `X:/...`.
pub fn is_windows(path: &str) -> bool {
    let b = path.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
}

/// Whether JOB accepts `path` (`validateFileSystemAbsolutePath`).
pub fn is_valid_absolute_path(path: &str) -> bool {
    validate_job_path(path).is_ok()
}

/// Checks `path` the way JOB's `validateFileSystemAbsolutePath` does, and says why it fails.
pub fn validate_job_path(path: &str) -> Result<(), PathError> {
    if path.trim().is_empty() {
        return Err(PathError::Blank);
    }
    // What the variable pattern needs at the least: spares the regex engine on the plain paths
    // that make up almost every plan.
    if (path.contains('[') || (path.contains('$') && path.contains("${")))
        && VARIABLE.is_match(path)
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
    if WINDOWS.is_match(path) {
        Ok(())
    } else {
        Err(windows_reason(&path[3..]))
    }
}

/// Why JOB's Windows pattern rejected a path, from what follows `X:\`.
fn windows_reason(rest: &str) -> PathError {
    if rest.starts_with(['\\', '/']) {
        return PathError::WindowsEmptyComponent;
    }
    // The first character after the drive may be anything but a separator; text after
    // `REGEX:` may hold anything.
    let names = rest.find("REGEX:").map_or(rest, |i| &rest[..i]);
    names
        .chars()
        .skip(1)
        .find(|c| matches!(c, ':' | '?' | '"' | '<' | '>' | '|'))
        .map_or(PathError::Windows, PathError::WindowsChar)
}

/// A sufficient condition for [`LINUX`] to match, checked without the regex engine: after the
/// leading `/`, a first character that is not `.` followed by no line break is one repetition
/// of `\.?[^.].*/?`. `false` means "ask the regex".
fn linux_fast_match(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    rest.chars().next().is_some_and(|c| c != '.') && !has_line_break(rest)
}

/// True when `text` holds a line break the regex engine's `.` does not match (`\n`, `\r`,
/// U+0085, U+2028, U+2029). Bytes first: every path of a plan comes here, and none of these
/// can be in a string without one of the bytes `\n`, `\r`, 0xC2 or 0xE2.
fn has_line_break(text: &str) -> bool {
    text.bytes()
        .any(|b| matches!(b, b'\n' | b'\r' | 0xC2 | 0xE2))
        && text.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'])
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every example of bk-job-api.md §4.1, JOB's own unit-test cases, and edges of its patterns.
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
        "/a\rb",
        "/a\n.b",
        // JOB's Windows pattern: empty names after the first, any first character, a `[]`.
        "C:\\a\\\\b",
        "C:/a//b/",
        "C:\\?x",
        "C:\\a?[]",
        "C:\\tmp\\fooREGEX:a|b",
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
        "/.",
        // Java's `.` stops at a line break: `REGEX:` takes no line break, nor does a variable.
        "C:\\tmp\\REGEX:a\n|b",
        "C:\\a\r[X]?",
    ];

    #[test]
    fn job_path_rules_table() {
        for path in VALID {
            assert_eq!(validate_job_path(path), Ok(()), "{path:?} should be valid");
            assert!(is_valid_absolute_path(path), "{path:?}");
        }
        for path in INVALID {
            assert!(
                validate_job_path(path).is_err(),
                "{path:?} should be invalid"
            );
            assert!(!is_valid_absolute_path(path), "{path:?}");
        }
    }

    /// The shortcut never accepts a path the regex rejects.
    #[test]
    fn linux_fast_match_agrees_with_the_regex() {
        let parts = [
            "/", ".", "..", "a", "\n", "\r", "x/", "é", "[", " ", "REGEX:", "*",
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
        assert_eq!(validate_job_path("/.."), Err(PathError::Linux));
        assert_eq!(
            validate_job_path("C:\\a?b"),
            Err(PathError::WindowsChar('?'))
        );
        assert_eq!(
            validate_job_path("C:\\\\"),
            Err(PathError::WindowsEmptyComponent)
        );
        assert_eq!(
            validate_job_path("C:\\tmp\\REGEX:a\n|b"),
            Err(PathError::Windows)
        );
    }

    #[test]
    fn windows_drives() {
        assert!(is_windows("C:\\x") && is_windows("z:/") && is_windows("C:\\"));
        assert!(!is_windows("C:") && !is_windows("1:\\") && !is_windows("/C:\\"));
    }
}
