//! What `--resolve` adds to `plan show` and `plan diff`: the hosts each push reaches, with
//! each dynamic group's and topology node's hosts as CMDB answered them, and in a diff the
//! hosts a push gains or loses. Text and Markdown here; JSON is [`ResolvedDocument`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use plan_parser::{HostSet, Plan, Push};
use schemars::JsonSchema;
use serde::Serialize;

use crate::resolve::{Answer, Resolution, ResolvedHost};

/// The hosts one push reaches.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct PushHosts {
    /// Push name.
    pub(crate) push: String,
    /// Every target host, each once.
    pub(crate) targets: Vec<ResolvedHost>,
    /// Selectors CMDB gave no hosts for, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) unresolved: Vec<String>,
}

/// `"resolved"` of `plan show --resolve --format json`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ResolvedDocument<'r> {
    /// Where CMDB was asked.
    pub(crate) source: &'r str,
    /// Each dynamic group's hosts (or CMDB's refusal, as `{"error": ...}`).
    pub(crate) dynamic_groups: BTreeMap<&'r str, Selector<'r>>,
    /// Each topology node's hosts, by `node_type:id`.
    pub(crate) topo_nodes: BTreeMap<&'r str, Selector<'r>>,
    /// Each push's target hosts, in file order.
    pub(crate) pushes: Vec<PushHosts>,
}

/// One selector's hosts, or why CMDB gave none.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum Selector<'r> {
    /// The hosts.
    Hosts(&'r [ResolvedHost]),
    /// CMDB's refusal.
    Error {
        /// The message.
        error: &'r str,
    },
}

fn selectors<'r>(map: &'r BTreeMap<String, Answer>) -> BTreeMap<&'r str, Selector<'r>> {
    map.iter()
        .map(|(name, answer)| {
            let selector = match answer {
                Ok(hosts) => Selector::Hosts(hosts),
                Err(error) => Selector::Error { error },
            };
            (name.as_str(), selector)
        })
        .collect()
}

fn push_hosts(resolution: &Resolution, push: &Push) -> PushHosts {
    let (targets, unresolved) = resolution.targets(push);
    PushHosts {
        push: push.name.value.clone(),
        targets,
        unresolved,
    }
}

/// The JSON `resolved` object of a plan.
pub(crate) fn document<'r>(resolution: &'r Resolution, plan: &Plan) -> ResolvedDocument<'r> {
    ResolvedDocument {
        source: &resolution.source,
        dynamic_groups: selectors(&resolution.dynamic_groups),
        topo_nodes: selectors(&resolution.topo_nodes),
        pushes: plan
            .pushes
            .iter()
            .map(|p| push_hosts(resolution, p))
            .collect(),
    }
}

/// The selectors of a host set as `dynamic group g1`, `topology node module:10`.
fn named_selectors(set: &HostSet) -> Vec<(String, String)> {
    set.dynamic_groups
        .iter()
        .map(|g| (format!("dynamic group {g}"), g.clone()))
        .chain(
            set.topo_nodes
                .iter()
                .map(|n| (format!("topology node {n}"), n.to_string())),
        )
        .collect()
}

fn answer_of<'r>(
    resolution: &'r Resolution,
    kind_and_key: &(String, String),
) -> Option<&'r Answer> {
    if kind_and_key.0.starts_with("dynamic group") {
        resolution.dynamic_groups.get(&kind_and_key.1)
    } else {
        resolution.topo_nodes.get(&kind_and_key.1)
    }
}

fn host_list(hosts: &[ResolvedHost]) -> String {
    if hosts.is_empty() {
        return "no hosts".to_owned();
    }
    hosts
        .iter()
        .map(ResolvedHost::label)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The text section: each push, its total, and each group's and node's hosts.
pub(crate) fn text(resolution: &Resolution, plan: &Plan) -> String {
    let mut out = format!(
        "\nHosts each push reaches (resolved through CMDB, {}):\n",
        resolution.source
    );
    for push in &plan.pushes {
        let reached = push_hosts(resolution, push);
        let _ = writeln!(
            out,
            "  {}: {}",
            push.name.value,
            crate::render::count(reached.targets.len(), "host", "hosts")
        );
        for selector in named_selectors(&push.target.hosts) {
            let listed = match answer_of(resolution, &selector) {
                Some(Ok(hosts)) => host_list(hosts),
                Some(Err(why)) => format!("not resolved: {why}"),
                None => "not asked".to_owned(),
            };
            let _ = writeln!(out, "    {}: {listed}", selector.0);
        }
        let _ = writeln!(out, "    all: {}", host_list(&reached.targets));
    }
    out
}

/// The Markdown section: a table of pushes and their hosts, in a `<details>` block.
pub(crate) fn markdown(resolution: &Resolution, plan: &Plan) -> String {
    let mut out = String::from(
        "\n<details><summary>Hosts each push reaches (resolved through CMDB)</summary>\n\n",
    );
    out.push_str("| push | hosts | through |\n|---|---|---|\n");
    for push in &plan.pushes {
        let reached = push_hosts(resolution, push);
        let through: Vec<String> = named_selectors(&push.target.hosts)
            .iter()
            .map(|selector| match answer_of(resolution, selector) {
                Some(Ok(hosts)) => format!("{}: {}", selector.0, hosts.len()),
                Some(Err(_)) | None => format!("{}: not resolved", selector.0),
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            crate::render::markdown::code(&push.name.value),
            crate::render::markdown::text(&host_list(&reached.targets)),
            crate::render::markdown::text(&through.join("; ")),
        );
    }
    let _ = write!(
        out,
        "\nResolved through CMDB ({}).\n\n</details>\n",
        crate::render::markdown::text(&resolution.source)
    );
    out
}

/// `"resolved"` of `plan diff --resolve --format json`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ResolvedChanges<'r> {
    /// Where CMDB was asked.
    pub(crate) source: &'r str,
    /// The pushes whose hosts change ([`changes`]).
    pub(crate) hosts: &'r [HostChanges],
}

/// A push's hosts in the old and new versions: who joins, who leaves.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct HostChanges {
    /// Push name.
    pub(crate) push: String,
    /// Hosts the push reaches now and did not.
    pub(crate) joined: Vec<ResolvedHost>,
    /// Hosts it reached and no longer does.
    pub(crate) left: Vec<ResolvedHost>,
}

/// The pushes (by name, in the new file's order, then removed ones) whose hosts change
/// between the versions, both resolved through the same CMDB now.
pub(crate) fn changes(resolution: &Resolution, old: Option<&Plan>, new: &Plan) -> Vec<HostChanges> {
    let hosts_of = |plan: Option<&Plan>, name: &str| -> Vec<ResolvedHost> {
        plan.and_then(|p| p.pushes.iter().find(|push| push.name.value == name))
            .map(|push| resolution.targets(push).0)
            .unwrap_or_default()
    };
    let mut names: Vec<&str> = new.pushes.iter().map(|p| p.name.value.as_str()).collect();
    for p in old.iter().flat_map(|o| o.pushes.iter()) {
        if !names.contains(&p.name.value.as_str()) {
            names.push(&p.name.value);
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            let before = hosts_of(old, name);
            let after = hosts_of(Some(new), name);
            let joined: Vec<ResolvedHost> = after
                .iter()
                .filter(|h| !before.contains(h))
                .cloned()
                .collect();
            let left: Vec<ResolvedHost> = before
                .iter()
                .filter(|h| !after.contains(h))
                .cloned()
                .collect();
            (!joined.is_empty() || !left.is_empty()).then(|| HostChanges {
                push: name.to_owned(),
                joined,
                left,
            })
        })
        .collect()
}

/// The text section of a diff.
pub(crate) fn changes_text(resolution: &Resolution, changes: &[HostChanges]) -> String {
    let mut out = format!(
        "\nHosts that join or leave (resolved through CMDB, {}):\n",
        resolution.source
    );
    if changes.is_empty() {
        out.push_str("  none: every push reaches the same hosts\n");
    }
    for change in changes {
        let _ = writeln!(out, "  {}:", change.push);
        for h in &change.joined {
            let _ = writeln!(out, "    + {}", h.label());
        }
        for h in &change.left {
            let _ = writeln!(out, "    - {}", h.label());
        }
    }
    out
}

/// The Markdown section of a diff.
pub(crate) fn changes_markdown(resolution: &Resolution, changes: &[HostChanges]) -> String {
    let mut out = String::from("\n#### Hosts that join or leave (resolved through CMDB)\n\n");
    if changes.is_empty() {
        out.push_str("Every push reaches the same hosts.\n");
    } else {
        out.push_str("| push | joins | leaves |\n|---|---|---|\n");
        for change in changes {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                crate::render::markdown::code(&change.push),
                crate::render::markdown::text(&host_list_or_dash(&change.joined)),
                crate::render::markdown::text(&host_list_or_dash(&change.left)),
            );
        }
    }
    let _ = writeln!(
        out,
        "\nResolved through CMDB ({}).",
        crate::render::markdown::text(&resolution.source)
    );
    out
}

fn host_list_or_dash(hosts: &[ResolvedHost]) -> String {
    if hosts.is_empty() {
        "-".to_owned()
    } else {
        host_list(hosts)
    }
}
