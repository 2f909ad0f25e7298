//! Host selectors as comparable keys.
//!
//! Two host sets overlap when they share a static host, a host id, a dynamic group id or a topo
//! node. A dynamic group and a static host are never assumed to overlap: which hosts a group
//! holds is only known to CMDB at run time (nor are a host id and an address, for the same
//! reason).

use std::fmt;

use plan_parser::{HostAddr, HostId, HostRef, HostSet, Plan, TopoNode};

/// One selector of a host set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum HostKey<'a> {
    Ip(HostAddr),
    HostId(HostId),
    Group(&'a str),
    Topo(&'a TopoNode),
}

impl fmt::Display for HostKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostKey::Ip(addr) => write!(f, "{addr}"),
            HostKey::HostId(id) => write!(f, "{id}"),
            HostKey::Group(id) => write!(f, "dynamic group {id}"),
            HostKey::Topo(node) => write!(f, "topo node {node}"),
        }
    }
}

/// Every selector of a set, in the set's order (static hosts, groups, topo nodes).
pub(crate) fn keys(set: &HostSet) -> impl Iterator<Item = HostKey<'_>> {
    set.ips
        .iter()
        .map(|&ip| HostKey::Ip(ip))
        .chain(set.host_ids.iter().map(|&id| HostKey::HostId(id)))
        .chain(set.dynamic_groups.iter().map(|g| HostKey::Group(g)))
        .chain(set.topo_nodes.iter().map(HostKey::Topo))
}

fn contains(set: &HostSet, key: HostKey<'_>) -> bool {
    match key {
        HostKey::Ip(ip) => set.ips.contains(&ip),
        HostKey::HostId(id) => set.host_ids.contains(&id),
        HostKey::Group(id) => set.dynamic_groups.iter().any(|g| g == id),
        HostKey::Topo(node) => set.topo_nodes.contains(node),
    }
}

/// Names the selector as the push writes it: the first group (or host string) of `refs` that
/// reaches `key`, falling back to the selector itself.
pub(crate) fn written_name(plan: &Plan, refs: &[HostRef], key: HostKey<'_>) -> String {
    for host_ref in refs {
        match host_ref {
            HostRef::Group(group) => {
                if plan
                    .groups
                    .get(&group.value)
                    .is_some_and(|g| contains(&g.hosts, key))
                {
                    return group.value.clone();
                }
            }
            HostRef::Host(host) => {
                if key == HostKey::Ip(host.value) {
                    return host.value.to_string();
                }
            }
            HostRef::Range(range) => {
                if let HostKey::Ip(ip) = key
                    && range.value.contains(&ip)
                {
                    return range.value.to_string();
                }
            }
            HostRef::HostId(id) => {
                if key == HostKey::HostId(id.value) {
                    return id.value.to_string();
                }
            }
        }
    }
    key.to_string()
}
