//! The release settings `apply` cannot carry out yet: refused before anything is sent, so a
//! gate or a verification is never silently skipped (docs/rolling.md, "What apply does").

use plan_parser::{ApiVersion, Plan, RollingMode};

/// Why the plan cannot be applied as written, and what to do, when one of its enabled pushes
/// needs confirmations between plan-made (v2) batches.
pub(super) fn not_yet_applied(plan: &Plan) -> Option<(String, &'static str)> {
    plan.pushes.iter().filter(|p| p.enabled).find_map(|push| {
        let release = &push.release;
        let what = if plan.api == ApiVersion::V2
            && release
                .rolling
                .as_ref()
                .is_some_and(|r| r.mode == RollingMode::Manual)
        {
            // Plan-made batches stop on failures (`max_failed`, or the mode); asking before
            // each batch is JOB's manual mode, which v2 does not have.
            "`rolling` with mode \"manual\" under v2 (batches made by the plan)"
        } else {
            return None;
        };
        Some((
            format!(
                "push `{}` asks for {what}, which this version of `plan apply` cannot carry out: nothing was sent",
                push.name.value
            ),
            "`plan show` prints what it will do; for now remove the key, or use `api = \"v3\"` with rolling mode \"pause-on-failure\" or \"ignore-failure\", which JOB carries out itself",
        ))
    })
}
