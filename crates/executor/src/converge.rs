//! `--converge`: the plan narrowed to what a refresh found different.
//!
//! A push that differs goes only to the targets that differ (its `target_server` narrowed to
//! them); a push whose every target is up to date leaves the run (no JOB job). The refresh is
//! done once, before the run, so a push that reads what another delivers cannot be refreshed
//! after that one ran: when that one changes something (it differs, or cannot tell), the
//! reader is assumed to differ on every target and is pushed whole.

use std::collections::BTreeMap;

use plan_graph::{EdgeKind, PlanGraph};
use plan_parser::Plan;

use crate::refresh::{PushRefresh, Refresh};

/// What `--converge` does with each push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Convergence {
    /// Every target holds the files: not pushed.
    UpToDate,
    /// Pushed to `hosts` only (`cloud:ip` or `host_id:N`); `skipped` held every file at
    /// the refresh and are not pushed to, even if they changed since.
    Narrowed {
        /// The targets that differ.
        hosts: Vec<String>,
        /// The targets up to date at the refresh.
        skipped: Vec<String>,
    },
    /// Pushed to every target, and why.
    Whole(String),
}

/// The plan to run under `--converge`, and what became of each push.
#[derive(Debug, Clone)]
pub struct Converged {
    /// The plan with narrowed targets and up-to-date pushes disabled.
    pub plan: Plan,
    /// Per enabled push of the original plan, in file order.
    pub pushes: Vec<(String, Convergence)>,
}

impl Converged {
    /// The pushes left out because every target is up to date.
    pub fn up_to_date(&self) -> impl Iterator<Item = &str> {
        self.pushes
            .iter()
            .filter(|(_, c)| *c == Convergence::UpToDate)
            .map(|(n, _)| n.as_str())
    }
}

/// Narrows `plan` to what `refresh` found different, in the graph's order.
pub fn converge(plan: &Plan, graph: &PlanGraph, refresh: &Refresh) -> Converged {
    let mut decided: BTreeMap<String, Convergence> = BTreeMap::new();
    // Stages in order: a reader's dependencies are decided before it.
    for name in graph.stages().iter().flat_map(|s| s.pushes.iter()) {
        let Some(verdict) = refresh.of(name) else {
            continue;
        };
        let changed_source = graph
            .dependencies_of(name)
            .filter(|edge| reads_what_it_delivers(&edge.kind))
            .map(|edge| edge.dependency.as_str())
            .find(|dep| {
                decided
                    .get(*dep)
                    .is_some_and(|c| *c != Convergence::UpToDate)
            });
        let convergence = match (changed_source, verdict) {
            (Some(dep), _) => Convergence::Whole(format!(
                "it reads what `{dep}` delivers, and `{dep}` changes something"
            )),
            (None, PushRefresh::UpToDate { .. }) => Convergence::UpToDate,
            (
                None,
                PushRefresh::Differs {
                    differing,
                    up_to_date,
                    ..
                },
            ) => Convergence::Narrowed {
                hosts: differing.iter().map(|h| h.host.clone()).collect(),
                skipped: up_to_date.clone(),
            },
            (None, PushRefresh::CannotTell { reason, .. }) => Convergence::Whole(reason.clone()),
        };
        decided.insert(name.clone(), convergence);
    }
    let mut narrowed = plan.clone();
    for push in narrowed.pushes.iter_mut() {
        match decided.get(&push.name.value) {
            Some(Convergence::UpToDate) => push.enabled = false,
            Some(Convergence::Narrowed { hosts, .. }) => {
                // The differing hosts as the refresh read them: addresses, or host ids (those
                // of the push's dynamic groups and topology nodes, resolved when it read them).
                if let Some(set) = crate::refresh::host_set_of(hosts) {
                    push.target.hosts = set;
                }
            }
            _ => {}
        }
    }
    let pushes = plan
        .pushes
        .iter()
        .filter_map(|p| {
            let name = &p.name.value;
            decided.remove(name).map(|c| (name.clone(), c))
        })
        .collect();
    Converged {
        plan: narrowed,
        pushes,
    }
}

fn reads_what_it_delivers(kind: &EdgeKind) -> bool {
    matches!(
        kind,
        EdgeKind::Inferred { .. } | EdgeKind::Explicit { also: Some(_), .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refresh::{HostDifference, RefreshedPush};

    const PLAN: &str = r#"
[plan]
name = "c"
bk_biz_id = 2
account = "root"

[[push]]
name = "to-relay"
from = { hosts = "10.0.0.1", files = ["/data/app.tgz"] }
to = { hosts = "10.0.1.1", path = "/stage/" }

[[push]]
name = "relay-to-web"
from = { hosts = "10.0.1.1", files = ["/stage/app.tgz"] }
to = { hosts = ["10.0.2.1", "10.0.2.2"], path = "/opt/" }
"#;

    fn refresh(relay: PushRefresh, web: PushRefresh) -> Refresh {
        Refresh {
            pushes: vec![
                RefreshedPush {
                    push: "to-relay".into(),
                    verdict: relay,
                },
                RefreshedPush {
                    push: "relay-to-web".into(),
                    verdict: web,
                },
            ],
            jobs: Vec::new(),
        }
    }

    fn differs(host: &str) -> PushRefresh {
        PushRefresh::Differs {
            hosts: 2,
            differing: vec![HostDifference {
                host: host.into(),
                unreadable: None,
                files: Vec::new(),
            }],
            up_to_date: Vec::new(),
        }
    }

    fn converged(refresh: &Refresh) -> Converged {
        let parsed = plan_parser::parse_str("p.toml", PLAN, &plan_parser::ParseOptions::default())
            .expect("plan");
        let graph = plan_graph::build(&parsed.plan).expect("graph");
        converge(&parsed.plan, &graph, refresh)
    }

    #[test]
    fn up_to_date_pushes_leave_the_run_and_differing_ones_are_narrowed() {
        let c = converged(&refresh(
            PushRefresh::UpToDate { hosts: 1 },
            differs("0:10.0.2.2"),
        ));
        assert_eq!(c.up_to_date().collect::<Vec<_>>(), ["to-relay"]);
        assert!(!c.plan.pushes[0].enabled);
        let web = &c.plan.pushes[1];
        assert!(web.enabled);
        let targets: Vec<String> = web
            .target
            .hosts
            .ips
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(targets, ["0:10.0.2.2"]);
    }

    #[test]
    fn a_reader_of_what_a_changed_push_delivers_is_pushed_whole() {
        let c = converged(&refresh(
            differs("0:10.0.1.1"),
            PushRefresh::UpToDate { hosts: 2 },
        ));
        assert!(
            matches!(&c.pushes[1].1, Convergence::Whole(why) if why.contains("to-relay")),
            "{:?}",
            c.pushes
        );
        assert_eq!(c.plan.pushes[1].target.hosts.ips.len(), 2);
        assert!(c.plan.pushes[1].enabled);
    }
}
