//! `--resolve` for `plan show` and `plan diff`: the hosts behind each dynamic group and
//! topology node a plan names, asked of CMDB once per selector (`plan_bkjob::Client`'s CMDB
//! calls) at the sandbox's simulator or a real endpoint, and the hosts each push reaches.
//!
//! Static hosts and host ids are what the plan says; a group or node is what CMDB answers
//! now. A host reached twice (a static IP also in a group) counts once: hosts are the same
//! when their `bk_host_id`s are, or their addresses.

use std::collections::BTreeMap;
use std::time::Duration;

use plan_bkjob::cmdb::CmdbHost;
use plan_bkjob::{Client, ClientConfig, Credentials, Endpoint, UserAuth};
use plan_parser::{HostSet, Plan, Push, TopoNode};
use serde::Serialize;

use crate::args::ResolveArgs;

/// One host a push reaches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
pub(crate) struct ResolvedHost {
    /// `cloud:ip`, `cloud:[v6]`, or `host_id:N` when only the id is known.
    pub(crate) host: String,
    /// CMDB's `bk_host_id`, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) host_id: Option<i64>,
}

impl ResolvedHost {
    fn from_cmdb(h: &CmdbHost) -> Self {
        // What a server writes is data: no control character reaches a terminal through it.
        let host = h.address().chars().filter(|c| !c.is_control()).collect();
        ResolvedHost {
            host,
            host_id: Some(h.bk_host_id),
        }
    }

    /// The same host: equal ids, or equal addresses.
    fn same(&self, other: &ResolvedHost) -> bool {
        match (self.host_id, other.host_id) {
            (Some(a), Some(b)) if a == b => true,
            _ => self.host == other.host && !self.host.starts_with("host_id:"),
        }
    }

    /// `0:10.0.0.1 (host_id:1001)`, or the address alone.
    pub(crate) fn label(&self) -> String {
        match self.host_id {
            Some(id) if !self.host.starts_with("host_id:") => {
                format!("{} (host_id:{id})", self.host)
            }
            _ => self.host.clone(),
        }
    }
}

/// What CMDB answered for one selector: its hosts, or why there are none to show.
pub(crate) type Answer = Result<Vec<ResolvedHost>, String>;

/// Every dynamic group and topology node of a plan, resolved.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Resolution {
    /// Where CMDB was asked (the endpoint's URL, or `sandbox DIR`).
    pub(crate) source: String,
    /// Dynamic group id → its hosts.
    pub(crate) dynamic_groups: BTreeMap<String, Answer>,
    /// `node_type:id` → its hosts.
    pub(crate) topo_nodes: BTreeMap<String, Answer>,
    /// The business's hosts by `bk_host_id`, asked when a plan names hosts by id, so each is
    /// shown with its address; the reason when CMDB could not list them.
    #[serde(skip)]
    pub(crate) by_id: Result<BTreeMap<i64, ResolvedHost>, String>,
}

impl Default for Resolution {
    fn default() -> Self {
        Resolution {
            source: String::new(),
            dynamic_groups: BTreeMap::new(),
            topo_nodes: BTreeMap::new(),
            by_id: Ok(BTreeMap::new()),
        }
    }
}

impl Resolution {
    /// The hosts a set of selectors reaches, each once, in the order they are named; and the
    /// selectors CMDB could not answer for.
    pub(crate) fn hosts(&self, set: &HostSet) -> (Vec<ResolvedHost>, Vec<String>) {
        let mut hosts: Vec<ResolvedHost> = Vec::new();
        let mut unresolved = Vec::new();
        let add = |h: ResolvedHost, hosts: &mut Vec<ResolvedHost>| {
            if !hosts.iter().any(|k| k.same(&h)) {
                hosts.push(h);
            }
        };
        for ip in &set.ips {
            add(
                ResolvedHost {
                    host: ip.to_string(),
                    host_id: None,
                },
                &mut hosts,
            );
        }
        for id in &set.host_ids {
            let known = self.by_id.as_ref().ok().and_then(|m| m.get(&id.0));
            let host = known.cloned().unwrap_or(ResolvedHost {
                host: id.to_string(),
                host_id: Some(id.0),
            });
            add(host, &mut hosts);
        }
        if let (false, Err(why)) = (set.host_ids.is_empty(), &self.by_id) {
            unresolved.push(format!("host ids: {why}"));
        }
        let answers = set
            .dynamic_groups
            .iter()
            .map(|g| (format!("dynamic group {g}"), self.dynamic_groups.get(g)))
            .chain(set.topo_nodes.iter().map(|n| {
                (
                    format!("topology node {n}"),
                    self.topo_nodes.get(&n.to_string()),
                )
            }));
        for (name, answer) in answers {
            match answer {
                Some(Ok(list)) => list.iter().for_each(|h| add(h.clone(), &mut hosts)),
                Some(Err(why)) => unresolved.push(format!("{name}: {why}")),
                None => unresolved.push(format!("{name}: not asked")),
            }
        }
        (hosts, unresolved)
    }

    /// The hosts a push delivers to.
    pub(crate) fn targets(&self, push: &Push) -> (Vec<ResolvedHost>, Vec<String>) {
        self.hosts(&push.target.hosts)
    }
}

/// Every group and node the plans name (targets and sources).
fn selectors<'p>(plans: &[&'p Plan]) -> (Vec<&'p str>, Vec<&'p TopoNode>) {
    let mut groups: Vec<&str> = Vec::new();
    let mut nodes: Vec<&TopoNode> = Vec::new();
    let sets = plans.iter().flat_map(|plan| {
        plan.pushes.iter().flat_map(|p| {
            std::iter::once(&p.target.hosts).chain(p.sources.iter().map(|s| &s.hosts))
        })
    });
    for set in sets {
        for g in &set.dynamic_groups {
            if !groups.contains(&g.as_str()) {
                groups.push(g);
            }
        }
        for n in &set.topo_nodes {
            if !nodes.contains(&n) {
                nodes.push(n);
            }
        }
    }
    (groups, nodes)
}

/// Resolves what the plans name, in the business of the last one. `Err` is a target that
/// cannot be opened or reached (exit 4).
pub(crate) fn resolve(args: &ResolveArgs, plans: &[&Plan]) -> anyhow::Result<Resolution> {
    let Some(plan) = plans.last() else {
        return Ok(Resolution::default());
    };
    let biz = plan.bk_biz_id.value;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (client, source, sim) = connect(args).await?;
        let resolution = ask(&client, source, biz, plans).await;
        if let Some(sim) = sim {
            sim.shutdown().await;
        }
        resolution
    })
}

/// Asks CMDB for every selector; a selector CMDB refuses is noted, a target that does not
/// answer at all is an error.
async fn ask(
    client: &Client,
    source: String,
    biz: i64,
    plans: &[&Plan],
) -> anyhow::Result<Resolution> {
    client
        .probe()
        .await
        .map_err(|e| anyhow::anyhow!("{source} is unreachable: {e}"))?;
    let (groups, nodes) = selectors(plans);
    let mut resolution = Resolution {
        source,
        ..Resolution::default()
    };
    let listed = |hosts: Vec<CmdbHost>| hosts.iter().map(ResolvedHost::from_cmdb).collect();
    for group in groups {
        let answer = client.dynamic_group_hosts(biz, group).await;
        resolution.dynamic_groups.insert(
            group.to_owned(),
            answer.map(listed).map_err(|e| printable(&e)),
        );
    }
    if plans
        .iter()
        .flat_map(|p| p.pushes.iter())
        .any(|p| !p.target.hosts.host_ids.is_empty())
    {
        // One listing of the business names every host id the plans use.
        let listed = client.topo_node_hosts(biz, "biz", biz).await;
        resolution.by_id = listed
            .map(|hosts| {
                hosts
                    .iter()
                    .map(|h| (h.bk_host_id, ResolvedHost::from_cmdb(h)))
                    .collect()
            })
            .map_err(|e| printable(&e));
    }
    for node in nodes {
        let answer = client.topo_node_hosts(biz, &node.node_type, node.id).await;
        resolution.topo_nodes.insert(
            node.to_string(),
            answer.map(listed).map_err(|e| printable(&e)),
        );
    }
    Ok(resolution)
}

/// The client for `--sandbox` (a private simulator, shut down by the caller) or the
/// endpoint (`--endpoint` or BK_JOB_ENDPOINT, credentials from the environment).
pub(crate) async fn connect(
    args: &ResolveArgs,
) -> anyhow::Result<(Client, String, Option<plan_jobsim::RunningSim>)> {
    let config = ClientConfig {
        connect_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(30),
        ..ClientConfig::default()
    };
    if let Some(dir) = &args.sandbox {
        anyhow::ensure!(
            dir.is_dir(),
            "sandbox `{}` is not a directory",
            dir.display()
        );
        let (sim, app) = plan_jobsim::JobSim::start_private(dir).await?;
        let base = if args.gateway {
            format!("{}/api/bk-job/prod", sim.base_url())
        } else {
            sim.base_url()
        };
        let credentials =
            Credentials::new(&app.code, &app.secret, UserAuth::Username("sandbox".into()));
        let client = Endpoint::parse(&base, args.gateway)
            .map_err(anyhow::Error::from)
            .and_then(|endpoint| Ok(Client::new(endpoint, credentials, config)?));
        return match client {
            Ok(client) => Ok((client, format!("sandbox `{}`", dir.display()), Some(sim))),
            Err(e) => {
                sim.shutdown().await;
                Err(e)
            }
        };
    }
    let url = match &args.endpoint {
        Some(url) => url.clone(),
        None => std::env::var("BK_JOB_ENDPOINT").map_err(|_| {
            anyhow::anyhow!(
                "--resolve needs a CMDB to ask: pass `--sandbox DIR`, or `--endpoint URL` (or set BK_JOB_ENDPOINT)"
            )
        })?,
    };
    let endpoint = Endpoint::parse(&url, args.gateway)?;
    let credentials = Credentials::from_env()?;
    let source = endpoint.as_str().to_owned();
    Ok((Client::new(endpoint, credentials, config)?, source, None))
}

/// An error as one line of printable text (the client has scrubbed it of credentials).
fn printable(error: &plan_bkjob::ApiError) -> String {
    error
        .to_string()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
