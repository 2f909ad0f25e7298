//! The plan's own path rules on top of JOB's (`plan_bkjob::paths`): `REGEX:` placement, `.` and
//! `..` components, the file-name split.
//!
//! JOB checks `file_target_path` and every server-source path with its rule and rejects the
//! whole request when one fails, so the plan checks the same rule first, at the exact string;
//! the rule itself lives in `plan_bkjob::paths`, shared with the simulator.

pub(crate) use plan_bkjob::paths::is_windows;
pub use plan_bkjob::paths::{PathError, validate_job_path};

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
    // A `.` component starts the path or follows a separator; most paths have neither, and
    // this byte scan spares them the search for `REGEX:` and the split.
    let bytes = path.as_bytes();
    let may_have_one = bytes.first() == Some(&b'.')
        || bytes
            .windows(2)
            .any(|pair| matches!(pair, [b'/' | b'\\', b'.']));
    if !may_have_one {
        return None;
    }
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
