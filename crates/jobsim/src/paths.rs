//! How GSE reads the paths of a job (bk-job-api.md §4.2-§4.3): what a source entry names (a
//! file, a directory, a `REGEX:` or `*` pattern) and the target's macros (`[FILESRCIP]`,
//! `[DATE:...]`, `[DATEFMT:...]`). Which paths JOB accepts at all is `plan_bkjob::paths`; how
//! a host path maps into the sandbox is in `hostfs`.

use std::sync::LazyLock;

use regex::Regex;

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
