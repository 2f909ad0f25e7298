//! JOB's path rules (bk-job-api.md §4): the absolute-path validator, source path kinds and
//! target macros. How a host path maps into the sandbox is in `hostfs`.

use std::sync::LazyLock;

use regex::Regex;

static LINUX: LazyLock<Regex> = LazyLock::new(|| {
    // FilePathValidateUtil's Linux pattern, used with Java's full-match semantics.
    Regex::new(r"^(?:/(((../)*|(./)*)|(\.?[^.].*/{0,1}))+)$").expect("static regex")
});
static WINDOWS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^[A-Za-z]:[\\/](?:[^\\/:?"<>|]+[\\/])*(?:REGEX:.*|[^\\/:?"<>|]+)?$"#)
        .expect("static regex")
});
static VAR_FORM1: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[A-Za-z]:[\\/]|/).*\[[a-zA-Z0-9:/_-]+\]").expect("static regex")
});
static VAR_FORM2: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{[A-Za-z_][A-Za-z0-9_-]*\}").expect("static regex"));

/// `FilePathValidateUtil.validateFileSystemAbsolutePath`.
pub fn is_valid_absolute_path(path: &str) -> bool {
    if path.trim().is_empty() {
        return false;
    }
    if VAR_FORM1.is_match(path) || VAR_FORM2.is_match(path) {
        return true;
    }
    if path.starts_with('/') {
        return LINUX.is_match(path);
    }
    WINDOWS.is_match(path)
}

/// What a source path entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceKind {
    /// A single file.
    File,
    /// A directory (trailing separator): transferred into the target as `<target>/<dirname>/`.
    Dir,
    /// `REGEX:<re>` on the file-name part.
    Regex(String),
    /// A `*` wildcard in the file-name part.
    Wildcard(String),
}

/// A source path split into the directory it lives in and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceSpec {
    /// Directory part, as written (ends with a separator).
    pub(crate) dir: String,
    /// File or directory name (empty for patterns).
    pub(crate) name: String,
    /// Kind.
    pub(crate) kind: SourceKind,
}

fn is_sep(c: char) -> bool {
    c == '/' || c == '\\'
}

/// Splits a source entry per §4.2.
pub(crate) fn parse_source(path: &str) -> SourceSpec {
    if let Some(pos) = path.find("REGEX:") {
        return SourceSpec {
            dir: path[..pos].to_string(),
            name: String::new(),
            kind: SourceKind::Regex(path[pos + "REGEX:".len()..].to_string()),
        };
    }
    let trimmed = path.trim_end_matches(is_sep);
    let is_dir = trimmed.len() != path.len();
    let cut = trimmed.rfind(is_sep).map_or(0, |i| i + 1);
    let dir = trimmed[..cut].to_string();
    let name = trimmed[cut..].to_string();
    let kind = if is_dir {
        SourceKind::Dir
    } else if name.contains('*') {
        SourceKind::Wildcard(name.clone())
    } else {
        SourceKind::File
    };
    SourceSpec { dir, name, kind }
}

/// Whether a wildcard pattern (`*` = any run of characters) matches a whole name.
pub(crate) fn wildcard_match(pattern: &str, name: &str) -> bool {
    let escaped: Vec<String> = pattern.split('*').map(regex::escape).collect();
    Regex::new(&format!("^{}$", escaped.join(".*"))).is_ok_and(|re| re.is_match(name))
}

/// Resolves `[FILESRCIP]`, `[DATE:<java pattern>]` and `[DATEFMT:<strftime>]` in a target.
pub(crate) fn resolve_target_macros(
    target: &str,
    src_cloud: u64,
    src_ip: &str,
    now: chrono::DateTime<chrono::Local>,
) -> String {
    let srcip = format!("{src_cloud}_{src_ip}").replace(':', "_");
    let mut out = target.replace("[FILESRCIP]", &srcip);
    static DATE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\[(DATE|DATEFMT):([^\]]*)\]").expect("static regex"));
    out = DATE
        .replace_all(&out, |caps: &regex::Captures<'_>| {
            let fmt = if &caps[1] == "DATE" {
                java_to_strftime(&caps[2])
            } else {
                caps[2].to_string()
            };
            let mut s = String::new();
            use std::fmt::Write as _;
            if write!(s, "{}", now.format(&fmt)).is_err() {
                return caps[0].to_string();
            }
            s
        })
        .into_owned();
    out
}

/// Converts the common Java `SimpleDateFormat` letters to strftime.
fn java_to_strftime(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let rep = match (c, n) {
            ('y', 2) => Some("%y"),
            ('y', _) => Some("%Y"),
            ('M', _) => Some("%m"),
            ('d', _) => Some("%d"),
            ('H', _) => Some("%H"),
            ('h', _) => Some("%I"),
            ('m', _) => Some("%M"),
            ('s', _) => Some("%S"),
            ('S', _) => Some("%3f"),
            _ => None,
        };
        match rep {
            Some(r) => out.push_str(r),
            None => {
                for _ in 0..n {
                    if c == '%' {
                        out.push_str("%%");
                    } else {
                        out.push(c);
                    }
                }
            }
        }
        i += n;
    }
    out
}

/// `FilePathUtils.standardizedDirPath`: the target with a trailing separator.
pub(crate) fn standardized_dir(path: &str) -> String {
    if path.ends_with('/') || path.ends_with('\\') {
        path.to_string()
    } else if !path.contains('/') && path.contains('\\') {
        format!("{path}\\")
    } else {
        format!("{path}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validator_table() {
        let valid = [
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
            "/[FILESRCIP]/logs",
            "C:\\[DATE:yyyy-MM-dd]\\logs",
        ];
        let invalid = [
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
            "1:\\test.log",
            "AA:\\test.log",
            "C:\\user\\abc?a",
            "C:\\user\\abc|a",
            "C:\\tmp\\REGE:a|b",
            "${!#path}",
        ];
        for p in valid {
            assert!(is_valid_absolute_path(p), "expected valid: {p:?}");
        }
        for p in invalid {
            assert!(!is_valid_absolute_path(p), "expected invalid: {p:?}");
        }
    }

    #[test]
    fn source_kinds() {
        assert_eq!(parse_source("/data/a.tgz").kind, SourceKind::File);
        let d = parse_source("/data/dir/");
        assert_eq!(
            (d.dir.as_str(), d.name.as_str(), d.kind),
            ("/data/", "dir", SourceKind::Dir)
        );
        let r = parse_source("/etc/REGEX:^a.*\\.conf$");
        assert_eq!(r.dir, "/etc/");
        assert_eq!(r.kind, SourceKind::Regex("^a.*\\.conf$".into()));
        assert_eq!(
            parse_source("/logs/log*.log").kind,
            SourceKind::Wildcard("log*.log".into())
        );
        assert!(wildcard_match("log*.log", "log-1.log"));
        assert!(!wildcard_match("log*.log", "log-1.txt"));
    }

    #[test]
    fn macros() {
        use chrono::TimeZone as _;
        let now = chrono::Local
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("time");
        assert_eq!(
            resolve_target_macros("/d/[FILESRCIP]/[DATE:yyyy-MM-dd]/", 0, "::1", now),
            "/d/0___1/2026-01-02/"
        );
        assert_eq!(
            resolve_target_macros("/d/[DATEFMT:%Y%m]", 1, "1.2.3.4", now),
            "/d/202601"
        );
    }
}
