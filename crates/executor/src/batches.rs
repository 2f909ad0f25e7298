//! Batches the plan cuts itself: under v2, where JOB has no rolling, a push with `rolling`
//! sends its static targets batch by batch, one job each, sized by JOB's own expression
//! (`plan_bkjob::rolling::RollingExpr`, the sizes `plan show` prints). What stops the
//! batches is `max_failed` when the plan sets it, else the rolling mode as JOB reads it.

use plan_bkjob::rolling::RollingMode;
use plan_graph::JobRequest;
use plan_parser::{ApiVersion, HostAddr, Plan, Push, Rolling};

use crate::report::Batch;

/// The target hosts of each batch, in order, when the plan cuts `push` into batches (a v2
/// push with `rolling` over its targets); `None` for a push sent as one job (v3 rolls
/// inside JOB).
pub(crate) fn of(plan: &Plan, push: &Push) -> Option<Vec<Vec<HostAddr>>> {
    if plan.api != ApiVersion::V2 {
        return None;
    }
    let rolling = push.release.rolling.as_ref()?;
    // The parser refuses v2 rolling over dynamic groups or topology nodes, and v2 has no
    // host ids: the addresses are every target.
    let hosts = &push.target.hosts.ips;
    let sizes = rolling.target_batches(hosts.len())?;
    let mut rest = hosts.as_slice();
    let mut batches = Vec::with_capacity(sizes.len());
    for size in sizes {
        let (batch, after) = rest.split_at(size.min(rest.len()));
        batches.push(batch.to_vec());
        rest = after;
    }
    Some(batches)
}

/// The sizes of the batches the plan sends `push` in (v2 `rolling`), in order; `None` for a
/// push sent as one job.
pub fn plan_batch_sizes(plan: &Plan, push: &Push) -> Option<Vec<usize>> {
    of(plan, push).map(|batches| batches.iter().map(Vec::len).collect())
}

/// The body of one batch's job: the push's task name with `batch i/N` (the run tag is
/// appended after it, as for any job).
pub(crate) fn named(request: &JobRequest, batch: Batch) -> JobRequest {
    crate::run_tag::renamed(request, |base| {
        plan_bkjob::task_name::with_batch(base, batch.index as usize, batch.count as usize)
    })
}

/// After a batch that ended with failed hosts: why no further batch is submitted, or `None`
/// to go on. `failed` counts the push's failed target hosts over every batch so far, of
/// `total`; `batch_failed` those of this batch.
///
/// With `max_failed` the threshold alone decides (Ansible's `max_fail_percentage`: the
/// push stops once more hosts failed than it allows). Without it the mode does, as JOB's
/// rolling would: `pause-on-failure` (and `manual`, which pauses too) stops after a batch
/// with a failure, `ignore-failure` goes on.
pub(crate) fn stop_reason(
    rolling: &Rolling,
    failed: usize,
    total: usize,
    batch: Batch,
    batch_failed: usize,
) -> Option<String> {
    if let Some(max) = &rolling.max_failed {
        return max.value.exceeded(failed, total).then(|| {
            format!(
                "{failed} of {total} target hosts failed after {batch}, more than `max_failed = {}` allows",
                quoted(max.value)
            )
        });
    }
    match rolling.mode {
        RollingMode::IgnoreFailure => None,
        RollingMode::PauseOnFailure | RollingMode::Manual => (batch_failed > 0).then(|| {
            format!(
                "{batch_failed} target host{} of {batch} failed, and rolling mode \"{}\" stops after a batch with a failure",
                if batch_failed == 1 { "" } else { "s" },
                rolling.mode_name()
            )
        }),
    }
}

/// `max_failed` as the plan writes it (`2`, `"10%"`).
fn quoted(max: plan_parser::MaxFailed) -> String {
    match max {
        plan_parser::MaxFailed::Hosts(n) => n.to_string(),
        plan_parser::MaxFailed::Percent(_) => format!("\"{max}\""),
    }
}

/// The batches after `batch` that were never submitted, for the push's message.
pub(crate) fn not_submitted(batch: Batch) -> String {
    match batch.count - batch.index {
        0 => String::new(),
        1 => format!("; batch {}/{} was not submitted", batch.count, batch.count),
        _ => format!(
            "; batches {} to {} of {} were not submitted",
            batch.index + 1,
            batch.count,
            batch.count
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Plan {
        plan_parser::parse_str("plan.toml", text, &plan_parser::ParseOptions::default())
            .unwrap_or_else(|e| panic!("{e:?}"))
            .plan
    }

    fn v2_plan(rolling: &str) -> Plan {
        plan(&format!(
            r#"
[plan]
name = "rel"
bk_biz_id = 2
api = "v2"
account = "root"

[[push]]
name = "app"
from = {{ hosts = "10.0.0.1", files = ["/data/app.tgz"] }}
to = {{ hosts = ["10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5", "10.0.1.6", "10.0.1.7"], path = "/opt/app/" }}
rolling = {rolling}
"#
        ))
    }

    #[test]
    fn a_v2_push_is_cut_by_jobs_expression_in_target_order() {
        let plan = v2_plan(r#"{ expression = "1 50%", max_failed = 1 }"#);
        let batches = of(&plan, &plan.pushes[0]).expect("batched");
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 4, 2]);
        assert_eq!(batches[0][0].to_string(), "0:10.0.1.1");
        assert_eq!(batches[2][1].to_string(), "0:10.0.1.7");
    }

    #[test]
    fn the_threshold_stops_only_once_exceeded() {
        let plan = v2_plan(r#"{ expression = "2", max_failed = 1 }"#);
        let rolling = plan.pushes[0].release.rolling.as_ref().expect("rolling");
        let batch = Batch { index: 2, count: 4 };
        assert_eq!(stop_reason(rolling, 1, 7, batch, 1), None);
        let reason = stop_reason(rolling, 2, 7, batch, 2).expect("stops");
        assert!(
            reason.contains("2 of 7") && reason.contains("`max_failed = 1`"),
            "{reason}"
        );
        let plan = v2_plan(r#"{ expression = "2", max_failed = "30%" }"#);
        let rolling = plan.pushes[0].release.rolling.as_ref().expect("rolling");
        assert_eq!(
            stop_reason(rolling, 2, 7, batch, 2),
            None,
            "2 of 7 is within 30%"
        );
        let reason = stop_reason(rolling, 3, 7, batch, 1).expect("3 of 7 is over 30%");
        assert!(reason.contains("`max_failed = \"30%\"`"), "{reason}");
    }

    #[test]
    fn without_a_threshold_the_mode_decides() {
        let batch = Batch { index: 1, count: 4 };
        let plan = v2_plan(r#"{ expression = "2" }"#);
        let rolling = plan.pushes[0].release.rolling.as_ref().expect("rolling");
        let reason = stop_reason(rolling, 1, 7, batch, 1).expect("pause-on-failure stops");
        assert!(reason.contains("pause-on-failure"), "{reason}");
        let plan = v2_plan(r#"{ expression = "2", mode = "ignore-failure" }"#);
        let rolling = plan.pushes[0].release.rolling.as_ref().expect("rolling");
        assert_eq!(stop_reason(rolling, 5, 7, batch, 2), None);
    }

    /// A batch before the last one that succeeded leaves the push undecided (a resume goes
    /// on with the next batch, never counts the push done), a batch's job in flight names
    /// its batch, and the last batch's success decides the push.
    #[test]
    fn the_journal_counts_a_batched_push_done_only_after_its_last_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r1.jsonl");
        let at = "2026-12-06T12:00:00Z";
        let batch = |index: u32| serde_json::json!({"index": index, "count": 2});
        let host = |ip: &str| serde_json::json!({"host": ip, "status": 9, "label": "Success"});
        let job = |id: i64| serde_json::json!({"api": "v2", "bk_biz_id": 2, "job_instance_id": id});
        let mut lines = vec![
            serde_json::json!({"type": "run_started", "format_version": crate::journal::JOURNAL_FORMAT_VERSION,
                "run_id": "r1", "plan": "rel", "plan_file": "p.toml", "api": "v2", "user": "u",
                "host": "h", "pid": 1, "at": at, "pushes": {"app": "x"}}),
            serde_json::json!({"type": "push_submitted", "push": "app", "attempt": 1, "job": job(1),
                "batch": batch(1), "at": at}),
            serde_json::json!({"type": "push_attempt_finished", "push": "app", "attempt": 1,
                "job_instance_id": 1, "job_status": 3, "hosts": [host("0:10.0.1.1")],
                "batch": batch(1), "at": at}),
        ];
        let read = |lines: &[serde_json::Value]| {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(&path, text).expect("write");
            crate::journal::RunHistory::read(&path)
                .expect("read")
                .pushes["app"]
                .clone()
        };
        let after_batch_1 = read(&lines);
        assert!(!after_batch_1.succeeded(), "{after_batch_1:?}");
        assert_eq!(after_batch_1.outcome(), None);
        lines.push(
            serde_json::json!({"type": "push_submitted", "push": "app", "attempt": 2,
            "job": job(2), "batch": batch(2), "at": at}),
        );
        let flying = read(&lines);
        assert_eq!(flying.in_flight.map(|j| j.job_instance_id), Some(2));
        assert_eq!(flying.in_flight_batch, Some(2));
        lines.push(
            serde_json::json!({"type": "push_attempt_finished", "push": "app", "attempt": 2,
            "job_instance_id": 2, "job_status": 3, "hosts": [host("0:10.0.1.2")],
            "batch": batch(2), "at": at}),
        );
        let done = read(&lines);
        assert!(done.succeeded(), "{done:?}");
        assert_eq!(done.in_flight_batch, None);
        assert_eq!(done.last_hosts.len(), 2, "both batches' hosts are known");
    }

    #[test]
    fn a_batch_job_names_its_batch_before_the_run_tag() {
        let plan = v2_plan(r#"{ expression = "2" }"#);
        let request = plan_graph::request_for(&plan, &plan.pushes[0]);
        let named = named(&request, Batch { index: 3, count: 4 });
        let tagged = crate::run_tag::tagged(&named, "0123abcd");
        assert_eq!(tagged.task_name(), Some("rel/app batch 3/4#0123abcd"));
        assert_eq!(
            not_submitted(Batch { index: 2, count: 4 }),
            "; batches 3 to 4 of 4 were not submitted"
        );
        assert_eq!(not_submitted(Batch { index: 4, count: 4 }), "");
    }
}
