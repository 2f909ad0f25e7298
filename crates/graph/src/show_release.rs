//! The release settings of a push in `plan show --format json`: its gate, verification,
//! callback and rolling, with the batches JOB (v3) or the plan (v2) will cut for static
//! targets.

use plan_parser::{ApiVersion, Push, RollingOver};
use schemars::JsonSchema;
use serde::Serialize;

/// `release` of a pushed entry; left out when the push has no release setting.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ReleaseEntry<'a> {
    /// `gate = true`: the push waits for an approval (`--resume --confirm PUSH` when nobody
    /// can answer).
    gate: bool,
    /// `size` or `sha256`.
    verify: Option<&'static str>,
    /// The URL JOB calls when the job ends.
    callback_url: Option<&'a str>,
    rolling: Option<RollingEntry>,
}

/// The push's rolling.
#[derive(Debug, Serialize, JsonSchema)]
struct RollingEntry {
    /// `targets` (by expression) or `sources` (source files).
    over: &'static str,
    /// Who cuts the batches: `job` (v3 `rolling_config`) or `plan` (v2, one job a batch).
    batched_by: &'static str,
    /// The expression, canonical (rolling over targets).
    expression: Option<String>,
    /// `pause-on-failure`, `ignore-failure` or `manual`.
    mode: &'static str,
    /// `max_failed` as written (`2` or `10%`), v2 batches only.
    max_failed: Option<String>,
    /// The batch sizes over the static targets, in order; null when JOB resolves the targets
    /// (dynamic groups, topology nodes) or the rolling is over sources.
    batches: Option<Vec<usize>>,
}

impl<'a> ReleaseEntry<'a> {
    pub(crate) fn of(push: &'a Push, api: ApiVersion) -> Option<Self> {
        let release = &push.release;
        if release == &plan_parser::Release::default() {
            return None;
        }
        Some(ReleaseEntry {
            gate: release.gate.is_some(),
            verify: release.verify.as_ref().map(|v| v.value.as_str()),
            callback_url: release.callback_url.as_ref().map(|c| c.value.as_str()),
            rolling: release.rolling.as_ref().map(|rolling| {
                let hosts = &push.target.hosts;
                let is_static = hosts.dynamic_groups.is_empty() && hosts.topo_nodes.is_empty();
                let (over, expression) = match &rolling.over {
                    RollingOver::Targets { parsed, .. } => ("targets", Some(parsed.to_string())),
                    RollingOver::Sources { .. } => ("sources", None),
                };
                RollingEntry {
                    over,
                    batched_by: match api {
                        ApiVersion::V2 => "plan",
                        _ => "job",
                    },
                    expression,
                    mode: rolling.mode_name(),
                    max_failed: rolling.max_failed.as_ref().map(|m| m.value.to_string()),
                    batches: is_static
                        .then(|| rolling.target_batches(hosts.ips.len() + hosts.host_ids.len()))
                        .flatten(),
                }
            }),
        })
    }
}
