//! The hosts a refresh reads: static addresses, and over v3 CMDB host ids, whether the plan
//! names them (`host_ids`, `host_id:N`) or CMDB resolves them (the hosts of a dynamic group or
//! a topology node, asked once per selector, as `plan show --resolve` does).
//!
//! A host set's hosts are read in one way: by address when it names static addresses (a group
//! or node's hosts then by their address too) or under v2 (which has no host ids), else by
//! host id. JOB ignores `ip_list` when `host_id_list` is set, so a narrowed `target_server`
//! must name its hosts one way as well.

use std::collections::BTreeMap;

use plan_bkjob::cmdb::CmdbHost;
use plan_bkjob::{ApiVersion, Client, IpHost};
use plan_parser::{HostAddr, HostSet, Plan};

use crate::push::parse_host;

/// Prefix of a host read by id, as JOB's own messages print host ids.
const HOST_ID: &str = "host_id:";

/// One host the refresh reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ReadHost {
    /// A static address (`ip_list`).
    Addr(HostAddr),
    /// A CMDB host id (v3 `host_id_list`).
    Id(i64),
}

impl ReadHost {
    /// `cloud:ip`, or `host_id:N`: how the refresh names the host in its verdicts.
    pub(super) fn name(&self) -> String {
        match self {
            ReadHost::Addr(addr) => addr.to_string(),
            ReadHost::Id(id) => format!("{HOST_ID}{id}"),
        }
    }

    pub(super) fn by_id(&self) -> bool {
        matches!(self, ReadHost::Id(_))
    }

    /// The host in a script request.
    pub(super) fn ip_host(&self) -> IpHost {
        match self {
            ReadHost::Addr(addr) => IpHost::new(
                i64::try_from(addr.cloud_id).unwrap_or(i64::MAX),
                addr.ip.to_string(),
            ),
            ReadHost::Id(id) => IpHost {
                bk_cloud_id: 0,
                ip: String::new(),
                bk_host_id: Some(*id),
            },
        }
    }
}

/// The host set that a refresh's host names stand for: addresses as `ips`, `host_id:N` as
/// `host_ids` (what `--converge` narrows a push's targets to). `None` for a name that is
/// neither (never written by a refresh).
pub(crate) fn host_set_of(names: &[String]) -> Option<HostSet> {
    let mut set = HostSet::default();
    for name in names {
        match name.strip_prefix(HOST_ID) {
            Some(id) => set.host_ids.push(plan_parser::HostId(id.parse().ok()?)),
            None => set.ips.push(parse_host(name)?),
        }
    }
    Some(set)
}

/// CMDB's answers for the dynamic groups and topology nodes a plan names.
#[derive(Debug, Default)]
pub(super) struct CmdbHosts {
    groups: BTreeMap<String, Result<Vec<CmdbHost>, String>>,
    nodes: BTreeMap<String, Result<Vec<CmdbHost>, String>>,
}

/// Asks CMDB once for every dynamic group and topology node the plan's enabled pushes name.
/// A selector CMDB refuses is remembered with the reason: the pushes naming it cannot tell.
pub(super) async fn ask_cmdb(client: &Client, plan: &Plan) -> CmdbHosts {
    let mut cmdb = CmdbHosts::default();
    let biz = plan.bk_biz_id.value;
    let sets =
        plan.pushes.iter().filter(|p| p.enabled).flat_map(|p| {
            std::iter::once(&p.target.hosts).chain(p.sources.iter().map(|s| &s.hosts))
        });
    for set in sets {
        for group in &set.dynamic_groups {
            if !cmdb.groups.contains_key(group) {
                let answer = client.dynamic_group_hosts(biz, group).await;
                cmdb.groups
                    .insert(group.clone(), answer.map_err(|e| printable(&e.to_string())));
            }
        }
        for node in &set.topo_nodes {
            if let std::collections::btree_map::Entry::Vacant(entry) =
                cmdb.nodes.entry(node.to_string())
            {
                let answer = client.topo_node_hosts(biz, &node.node_type, node.id).await;
                entry.insert(answer.map_err(|e| printable(&e.to_string())));
            }
        }
    }
    cmdb
}

/// The hosts of a set, each once, in the order they are named; `Err` is why they cannot be
/// read.
pub(super) fn hosts_of(
    set: &HostSet,
    api: ApiVersion,
    cmdb: &CmdbHosts,
) -> Result<Vec<ReadHost>, String> {
    let by_address = !set.ips.is_empty() || api == ApiVersion::V2;
    let mut hosts: Vec<ReadHost> = Vec::new();
    let mut add = |host: ReadHost| {
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    };
    set.ips.iter().for_each(|ip| add(ReadHost::Addr(*ip)));
    set.host_ids.iter().for_each(|id| add(ReadHost::Id(id.0)));
    let resolved = set
        .dynamic_groups
        .iter()
        .map(|g| (format!("dynamic group {g}"), cmdb.groups.get(g)))
        .chain(
            set.topo_nodes
                .iter()
                .map(|n| (format!("topology node {n}"), cmdb.nodes.get(&n.to_string()))),
        );
    for (selector, answer) in resolved {
        let listed = match answer {
            Some(Ok(listed)) => listed,
            Some(Err(why)) => return Err(format!("CMDB could not resolve its {selector}: {why}")),
            None => return Err(format!("its {selector} was not resolved")),
        };
        for host in listed {
            if by_address {
                let addr = parse_host(&host.address()).ok_or_else(|| {
                    format!(
                        "host_id:{} of its {selector} has no address, and the push names its hosts by address (static addresses, or v2)",
                        host.bk_host_id
                    )
                })?;
                add(ReadHost::Addr(addr));
            } else {
                add(ReadHost::Id(host.bk_host_id));
            }
        }
    }
    Ok(hosts)
}

/// What a server wrote is data: no control character reaches a terminal through it.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_the_host_set_they_stand_for() {
        let names = ["0:10.0.0.1".to_owned(), "2:[fd00::1]".to_owned()];
        let set = host_set_of(&names).expect("addresses");
        assert_eq!(
            set.ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
            names
        );
        let set = host_set_of(&["host_id:1001".to_owned()]).expect("an id");
        assert_eq!(set.host_ids, [plan_parser::HostId(1001)]);
        assert!(host_set_of(&["host_id:x".to_owned()]).is_none());
        assert!(host_set_of(&["10.0.0.1".to_owned()]).is_none());
    }

    #[test]
    fn a_set_naming_addresses_or_under_v2_reads_its_groups_by_address() {
        let mut cmdb = CmdbHosts::default();
        let host: CmdbHost = serde_json::from_value(serde_json::json!({
            "bk_host_id": 7, "bk_cloud_id": 0, "bk_host_innerip": "10.0.0.9"
        }))
        .expect("host");
        cmdb.groups.insert("g".into(), Ok(vec![host]));
        cmdb.nodes.insert("module:1".into(), Err("refused".into()));
        let mut set = HostSet {
            ips: vec![parse_host("0:10.0.0.1").expect("addr")],
            dynamic_groups: vec!["g".into()],
            ..HostSet::default()
        };
        let names = |hosts: Vec<ReadHost>| hosts.iter().map(ReadHost::name).collect::<Vec<_>>();
        assert_eq!(
            names(hosts_of(&set, ApiVersion::V3, &cmdb).expect("hosts")),
            ["0:10.0.0.1", "0:10.0.0.9"]
        );
        set.ips.clear();
        assert_eq!(
            names(hosts_of(&set, ApiVersion::V3, &cmdb).expect("hosts")),
            ["host_id:7"]
        );
        assert_eq!(
            names(hosts_of(&set, ApiVersion::V2, &cmdb).expect("hosts")),
            ["0:10.0.0.9"]
        );
        set.topo_nodes.push(plan_parser::TopoNode {
            node_type: "module".into(),
            id: 1,
        });
        let why = hosts_of(&set, ApiVersion::V3, &cmdb).expect_err("refused node");
        assert!(why.contains("topology node module:1: refused"), "{why}");
    }
}
