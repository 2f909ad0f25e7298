//! A run's tag: the short id every task name of the run carries (`<plan task name>#<tag>`),
//! so that JOB's job list tells which run created a job, from any machine.
//!
//! A run id is `<UTC start>-<tag>`: it sorts by start time (the journal's file name) and ends
//! with the tag. A run id of an older form (`<UTC start>-<pid>`) gets a tag derived from it,
//! the same every time, so a run keeps one tag across its segments.

use plan_bkjob::task_name::{RUN_TAG_LEN, is_run_tag, with_run_tag};
use plan_graph::JobRequest;

use crate::journal::sha256_hex;

/// The tag of a run.
pub fn run_tag(run_id: &str) -> String {
    match run_id.rsplit_once('-') {
        Some((_, tag)) if is_run_tag(tag) => tag.to_owned(),
        _ => sha256_hex(run_id.as_bytes())[..RUN_TAG_LEN].to_owned(),
    }
}

/// A fresh tag: unpredictable enough that two runs started in the same millisecond on two
/// machines do not share one (time, process, host and a process-wide counter, hashed).
pub(crate) fn fresh_tag() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seed = format!(
        "{:?}/{}/{}/{}",
        std::time::SystemTime::now(),
        std::process::id(),
        crate::lock::host_name(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    sha256_hex(seed.as_bytes())[..RUN_TAG_LEN].to_owned()
}

/// The body as this run sends it: the plan's task name with the run's tag appended. The
/// rest of the body is the plan's, byte for byte.
pub(crate) fn tagged(request: &JobRequest, tag: &str) -> JobRequest {
    renamed(request, |base| with_run_tag(base, tag))
}

/// A copy of the body with its task name (when it has one) passed through `name`.
pub(crate) fn renamed(request: &JobRequest, name: impl FnOnce(&str) -> String) -> JobRequest {
    let mut request = request.clone();
    let task_name = match &mut request {
        JobRequest::V2(r) => &mut r.task_name,
        JobRequest::V3(r) => &mut r.task_name,
    };
    if let Some(base) = task_name.as_deref() {
        *task_name = Some(name(base));
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_id_ends_with_its_tag() {
        assert_eq!(run_tag("20261206T092439.123Z-a1b2c3d4"), "a1b2c3d4");
    }

    #[test]
    fn an_older_run_id_gets_a_stable_derived_tag() {
        let tag = run_tag("20261206T092439.123Z-4711");
        assert!(is_run_tag(&tag), "{tag}");
        assert_eq!(tag, run_tag("20261206T092439.123Z-4711"));
        assert_ne!(tag, run_tag("20261206T092439.123Z-4712"));
    }

    #[test]
    fn fresh_tags_are_tags_and_differ() {
        let (a, b) = (fresh_tag(), fresh_tag());
        assert!(is_run_tag(&a) && is_run_tag(&b));
        assert_ne!(a, b);
    }
}
