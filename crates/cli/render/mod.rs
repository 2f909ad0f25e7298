//! Every human rendering of the CLI: a plan's dry run (`plan show` text and Markdown) and a
//! change to it (`plan diff` text and Markdown), with the phrases they share (counts, scope,
//! settings, hosts). The JSON documents, dot and Mermaid come from `plan-graph` so every
//! consumer sees the same data; `apply`'s progress and report live with the command
//! (`commands/apply/`), next to the events they follow.

pub(crate) mod diff_markdown;
pub(crate) mod diff_text;
pub(crate) mod markdown;
pub(crate) mod resolved;
pub(crate) mod text;

use std::collections::{BTreeSet, HashMap};

use plan_graph::PlanGraph;
use plan_parser::{HostAddr, HostRef, HostSet, Origin, Plan, Push, Setting, TopoNode};

/// `3 pushes in 2 stages to 41 hosts + 2 dynamic groups / topo nodes` (targets of the pushes
/// that run; skipped pushes are counted separately).
pub(crate) fn summary(plan: &Plan, graph: &PlanGraph) -> String {
    let mut ips: BTreeSet<HostAddr> = BTreeSet::new();
    let mut dynamic: BTreeSet<&str> = BTreeSet::new();
    let mut topo: BTreeSet<&TopoNode> = BTreeSet::new();
    for push in plan.pushes.iter().filter(|p| p.enabled) {
        ips.extend(push.target.hosts.ips.iter().copied());
        dynamic.extend(push.target.hosts.dynamic_groups.iter().map(String::as_str));
        topo.extend(push.target.hosts.topo_nodes.iter());
    }
    let pushes = plan.pushes.len();
    let skipped = plan.pushes.iter().filter(|p| !p.enabled).count();
    let stages = graph.stages().len();
    let mut out = count(pushes, "push", "pushes");
    if skipped > 0 {
        out.push_str(&format!(" ({skipped} skipped)"));
    }
    out.push_str(&format!(
        " in {} to {}",
        count(stages, "stage", "stages"),
        count(ips.len(), "host", "hosts")
    ));
    let selectors = dynamic.len() + topo.len();
    if selectors > 0 {
        out.push_str(&format!(" + {selectors} dynamic groups / topo nodes"));
    }
    out
}

/// The pushes of one stage, in file order.
pub(crate) fn stage_pushes<'p>(
    plan: &'p Plan,
    index: &HashMap<&str, usize>,
    names: &[String],
) -> Vec<&'p Push> {
    names
        .iter()
        .filter_map(|n| index.get(n.as_str()).map(|&i| &plan.pushes[i]))
        .collect()
}

/// Push name -> position in the plan.
pub(crate) fn push_index(plan: &Plan) -> HashMap<&str, usize> {
    let mut map = HashMap::with_capacity(plan.pushes.len());
    for (i, p) in plan.pushes.iter().enumerate() {
        map.entry(p.name.value.as_str()).or_insert(i);
    }
    map
}

/// Text read from JOB, a host or a journal is data: control characters (terminal escapes, a
/// newline that would end a TOML comment) become spaces.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `1 push`, `2 pushes`.
pub(crate) fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A push's targets counted: `4 hosts`, `2 hosts + 1 dynamic group + 1 topo node`.
pub(crate) fn target_hosts(push: &plan_parser::Push) -> String {
    let t = &push.target.hosts;
    let mut parts = vec![count(t.ips.len(), "host", "hosts")];
    if !t.dynamic_groups.is_empty() {
        parts.push(count(
            t.dynamic_groups.len(),
            "dynamic group",
            "dynamic groups",
        ));
    }
    if !t.topo_nodes.is_empty() {
        parts.push(count(t.topo_nodes.len(), "topo node", "topo nodes"));
    }
    parts.join(" + ")
}

/// The hosts as written: `relay, 0:10.0.9.9`.
pub(crate) fn written(refs: &[HostRef]) -> String {
    plan_graph::written_hosts(refs).join(", ")
}

/// What the hosts resolve to, at most `limit` entries of static hosts spelled out, runs of
/// addresses as ranges: `0:10.0.1.[1:40], 0:10.0.9.9, host_id:1001, dynamic group blo8...,
/// topo module:1000`.
pub(crate) fn resolved(hosts: &HostSet, limit: usize) -> String {
    let runs = plan_graph::compact_runs(&hosts.ips);
    let mut parts: Vec<String> = runs
        .iter()
        .take(limit)
        .map(|(text, _)| text.clone())
        .collect();
    let shown: usize = runs.iter().take(limit).map(|(_, count)| count).sum();
    if hosts.ips.len() > shown {
        parts.push(format!("and {} more", hosts.ips.len() - shown));
    }
    parts.extend(hosts.host_ids.iter().map(ToString::to_string));
    parts.extend(
        hosts
            .dynamic_groups
            .iter()
            .map(|g| format!("dynamic group {g}")),
    );
    parts.extend(hosts.topo_nodes.iter().map(|t| format!("topo {t}")));
    parts.join(", ")
}

fn origin_note(origin: Origin) -> &'static str {
    match origin {
        Origin::Plan => " (from [plan])",
        Origin::Push => "",
    }
}

/// `timeout 600s (from [plan]), download 20 MB/s, upload 50 MB/s (from [plan]), retries 2`.
pub(crate) fn settings(push: &Push) -> String {
    let mut parts = Vec::new();
    let mut add = |what: &str, setting: Option<&Setting<u32>>, unit: &str| {
        if let Some(s) = setting {
            parts.push(format!("{what} {}{unit}{}", s.value, origin_note(s.origin)));
        }
    };
    add("timeout", push.timeout.as_ref(), "s");
    add("upload", push.upload_speed_limit.as_ref(), " MB/s");
    add("download", push.download_speed_limit.as_ref(), " MB/s");
    if push.timeout.is_none() {
        parts.insert(0, "timeout 7200s (JOB default)".to_owned());
    }
    if let Some(mode) = &push.transfer_mode {
        parts.push(format!("transfer_mode {}", mode.value.as_str()));
    }
    if push.retries > 0 {
        parts.push(format!("retries {}", push.retries));
    }
    parts.extend(release_settings(push));
    parts.join(", ")
}

/// `gate`, `verify sha256`, `rolling "1 30% 100%" pause-on-failure: batches 1, 6, 13 of 20
/// hosts`, `max_failed 2`, `callback_url https://...`: the release settings a push has.
fn release_settings(push: &Push) -> Vec<String> {
    let release = &push.release;
    let mut parts = Vec::new();
    if release.gate.is_some() {
        parts.push("gate (waits for an approval)".to_owned());
    }
    if let Some(rolling) = &release.rolling {
        parts.push(rolling_summary(push, rolling));
        if let Some(max) = &rolling.max_failed {
            parts.push(format!("max_failed {}", max.value));
        }
    }
    if let Some(verify) = &release.verify {
        parts.push(format!("verify {}", verify.value.as_str()));
    }
    if let Some(url) = &release.callback_url {
        // Checked at parse time: no space or control character.
        parts.push(format!(
            "callback_url {}{}",
            url.value,
            origin_note(url.origin)
        ));
    }
    parts
}

/// The rolling of a push and, for static targets, the batches it makes.
fn rolling_summary(push: &Push, rolling: &plan_parser::Rolling) -> String {
    let mode = rolling.mode_name();
    match &rolling.over {
        plan_parser::RollingOver::Targets { parsed, .. } => {
            let hosts = &push.target.hosts;
            let batches = if hosts.dynamic_groups.is_empty() && hosts.topo_nodes.is_empty() {
                let total = hosts.ips.len() + hosts.host_ids.len();
                rolling.target_batches(total).map(|sizes| {
                    format!(
                        ": {} batches ({}) of {total} hosts",
                        sizes.len(),
                        batch_list(&sizes)
                    )
                })
            } else {
                Some(": batches cut by JOB once it resolves the hosts".to_owned())
            };
            format!("rolling \"{parsed}\" {mode}{}", batches.unwrap_or_default())
        }
        plan_parser::RollingOver::Sources {
            sources_per_batch,
            files_per_source,
        } => {
            let limit = |n: &Option<u32>| n.map_or_else(|| "any".to_owned(), |n| n.to_string());
            format!(
                "rolling over sources {mode}: {} source hosts, {} files each per batch",
                limit(sources_per_batch),
                limit(files_per_source)
            )
        }
    }
}

/// `1, 6, 13`, or the first ten and how many more.
pub(crate) fn batch_list(sizes: &[usize]) -> String {
    const SHOWN: usize = 10;
    let mut text = sizes
        .iter()
        .take(SHOWN)
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if sizes.len() > SHOWN {
        text.push_str(&format!(", ... {} more", sizes.len() - SHOWN));
    }
    text
}

/// `root (from [plan])`.
pub(crate) fn account(setting: &Setting<String>) -> String {
    format!("{}{}", setting.value, origin_note(setting.origin))
}

/// The JOB scope a plan runs in, as people say it: `business 2`, or `business set 9000000`
/// for a v3 plan whose id is in JOB's business-set range (the body's `bk_scope_type` is then
/// `biz_set`). A v2 body has no scope type: JOB takes the id as a business.
pub(crate) fn scope(plan: &Plan) -> String {
    scope_of(plan.api, plan.bk_biz_id.value)
}

/// [`scope`] for an API version and id.
pub(crate) fn scope_of(api: plan_parser::Api, bk_biz_id: i64) -> String {
    let set = api == plan_parser::Api::V3
        && plan_bkjob::scope_for_biz(bk_biz_id) == plan_bkjob::ScopeType::BizSet;
    if set {
        format!("business set {bk_biz_id}")
    } else {
        format!("business {bk_biz_id}")
    }
}

/// The API call a body goes to.
pub(crate) fn endpoint(plan: &Plan) -> &'static str {
    match plan.api {
        plan_parser::Api::V2 => "job/fast_push_file",
        plan_parser::Api::V3 => "jobv3/fast_transfer_file",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use plan_graph::PlanGraph;
    use plan_parser::{ParseOptions, Parsed};

    /// Parses and orders a plan written inline; panics on an invalid one (a test bug).
    pub(crate) fn load(toml: &str) -> (Parsed, PlanGraph) {
        let parsed = plan_parser::parse_str("plan.toml", toml, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{:?}", e.problems()));
        let graph =
            plan_graph::build(&parsed.plan).unwrap_or_else(|e| panic!("{:?}", e.problems()));
        (parsed, graph)
    }

    /// [`load`] as the command's loaded plan (for `plan diff`'s renderers).
    pub(crate) fn version(toml: &str) -> crate::load::Loaded {
        let (parsed, graph) = load(toml);
        crate::load::Loaded {
            parsed,
            graph,
            warnings: Vec::new(),
        }
    }

    /// A one-push plan with `bk_biz_id` and `api` as given.
    pub(crate) fn scoped(bk_biz_id: i64, api: &str) -> String {
        format!(
            r#"
[plan]
name = "scoped"
bk_biz_id = {bk_biz_id}
account = "root"
api = "{api}"

[[push]]
name = "one"
from = {{ hosts = "10.0.0.1", files = ["/data/a.tgz"] }}
to = {{ hosts = "10.0.0.2", path = "/data/in/" }}
"#
        )
    }

    #[test]
    fn a_v3_plan_in_the_business_set_range_says_business_set() {
        let (parsed, graph) = load(&scoped(9_000_000, "v3"));
        let text = super::text::render(&parsed.plan, &graph);
        assert!(
            text.lines()
                .next()
                .is_some_and(|l| l.contains("(api v3, business set 9000000)")),
            "{text}"
        );
        let markdown = super::markdown::render(&parsed.plan, &graph, &[]);
        assert!(
            markdown.contains("· api v3 · business set 9000000\n"),
            "{markdown}"
        );
    }

    #[test]
    fn an_ordinary_business_and_v2_stay_business() {
        for (id, api) in [
            (2, "v3"),
            (7_999_999, "v3"),
            (10_000_000, "v3"),
            (9_000_000, "v2"),
        ] {
            let (parsed, graph) = load(&scoped(id, api));
            let text = super::text::render(&parsed.plan, &graph);
            assert!(
                text.contains(&format!("(api {api}, business {id})")),
                "{text}"
            );
            let markdown = super::markdown::render(&parsed.plan, &graph, &[]);
            assert!(
                markdown.contains(&format!("· business {id}\n")),
                "{markdown}"
            );
        }
    }
}

#[cfg(test)]
mod both_reasons {
    use super::tests::load;

    const PLAN: &str = r#"
[plan]
name = "both"
bk_biz_id = 2
account = "root"

[[push]]
name = "a"
from = { hosts = "10.0.0.9", files = ["/x/app.tgz"] }
to = { hosts = "10.0.0.1", path = "/stage/" }

[[push]]
name = "b"
after = ["a"]
from = { hosts = "10.0.0.1", files = ["/stage/app.tgz"] }
to = { hosts = "10.0.0.2", path = "/o/" }
"#;

    #[test]
    fn an_after_that_also_reads_shows_both_reasons() {
        let (parsed, graph) = load(PLAN);
        let text = super::text::render(&parsed.plan, &graph);
        assert!(
            text.contains(
                "    waits for a (after; also reads /stage/app.tgz on 0:10.0.0.1, which a delivers)\n"
            ),
            "{text}"
        );
        let markdown = super::markdown::render(&parsed.plan, &graph, &[]);
        assert!(
            markdown.contains("`a` (after; also reads `/stage/app.tgz` on 0:10.0.0.1)"),
            "{markdown}"
        );
    }
}
