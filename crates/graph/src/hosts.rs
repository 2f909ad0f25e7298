//! Host selectors as comparable keys.
//!
//! Two host sets overlap when they share a static host, a host id, a dynamic group id or a topo
//! node. A dynamic group and a static host are never assumed to overlap: which hosts a group
//! holds is only known to CMDB at run time (nor are a host id and an address, for the same
//! reason).

use std::cmp::Ordering;
use std::fmt;
use std::net::IpAddr;

use plan_parser::{HostAddr, HostId, HostRef, HostSet, Plan, TopoNode};

/// One selector of a host set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum HostKey<'a> {
    Ip(HostAddr),
    HostId(HostId),
    Group(&'a str),
    Topo(&'a TopoNode),
}

/// The order a derived `Ord` would give (variants in declaration order, then their fields),
/// with static hosts compared as plain integers: host sets are sorted for every distinct set
/// a plan names, and the derived comparison (an enum inside an enum inside an enum) was most
/// of that cost.
impl Ord for HostKey<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (HostKey::Ip(a), HostKey::Ip(b)) => ip_order(a).cmp(&ip_order(b)),
            (HostKey::HostId(a), HostKey::HostId(b)) => a.cmp(b),
            (HostKey::Group(a), HostKey::Group(b)) => a.cmp(b),
            (HostKey::Topo(a), HostKey::Topo(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for HostKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl HostKey<'_> {
    fn rank(&self) -> u8 {
        match self {
            HostKey::Ip(_) => 0,
            HostKey::HostId(_) => 1,
            HostKey::Group(_) => 2,
            HostKey::Topo(_) => 3,
        }
    }
}

/// A static host as `HostAddr`'s derived order sees it: cloud id, then IPv4 before IPv6, then
/// the address's bits.
fn ip_order(host: &HostAddr) -> (u64, u8, u128) {
    match host.ip {
        IpAddr::V4(v4) => (host.cloud_id, 0, u128::from(v4.to_bits())),
        IpAddr::V6(v6) => (host.cloud_id, 1, v6.to_bits()),
    }
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
    written_name_in(|name| plan.groups.get(name).map(|g| &g.hosts), refs, key)
}

/// [`written_name`] with the groups' hosts found by `group_hosts` (a hashed index when
/// naming many edges: the plan's map of groups is ordered, searched name by name).
pub(crate) fn written_name_in<'p>(
    group_hosts: impl Fn(&str) -> Option<&'p HostSet>,
    refs: &[HostRef],
    key: HostKey<'_>,
) -> String {
    for host_ref in refs {
        match host_ref {
            HostRef::Group(group) => {
                if group_hosts(&group.value).is_some_and(|hosts| contains(hosts, key)) {
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

/// Static hosts for people: each run of three or more consecutive IPv4 addresses of one cloud
/// area within one `/24` written back as a range (`0:10.0.1.[1:40]`; two hosts read better
/// spelled out), every other host as `cloud:ip`, in
/// the set's order. `plan show` prints a 40-host range as one entry, not 40.
pub fn compact_hosts(hosts: &[HostAddr]) -> Vec<String> {
    compact_runs(hosts)
        .into_iter()
        .map(|(text, _)| text)
        .collect()
}

/// [`compact_hosts`] with how many hosts each entry stands for.
pub fn compact_runs(hosts: &[HostAddr]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < hosts.len() {
        let end = run_end(hosts, i);
        let (first, last) = (hosts[i], hosts[end]);
        match (first.ip, last.ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) if end >= i + 2 => {
                let [o1, o2, o3, x] = a.octets();
                let y = b.octets()[3];
                let text = format!("{}:{o1}.{o2}.{o3}.[{x}:{y}]", first.cloud_id);
                out.push((text, end - i + 1));
            }
            _ => {
                out.push((first.to_string(), 1));
                // A run too short to compact: its hosts one by one.
                for host in &hosts[i + 1..=end] {
                    out.push((host.to_string(), 1));
                }
            }
        }
        i = end + 1;
    }
    out
}

/// The index of the last host of the run starting at `start`: each next host is the next
/// IPv4 address in the same cloud area and `/24`.
fn run_end(hosts: &[HostAddr], start: usize) -> usize {
    let mut end = start;
    while let Some(next) = hosts.get(end + 1) {
        let (IpAddr::V4(a), IpAddr::V4(b)) = (hosts[end].ip, next.ip) else {
            break;
        };
        let (a, b) = (a.octets(), b.octets());
        let consecutive = next.cloud_id == hosts[end].cloud_id
            && a[..3] == b[..3]
            && a[3].checked_add(1) == Some(b[3]);
        if !consecutive {
            break;
        }
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(cloud_id: u64, ip: &str) -> HostAddr {
        HostAddr {
            cloud_id,
            ip: ip.parse().expect("ip"),
        }
    }

    /// A selector as the derived order of its variant and fields would compare it.
    fn derived(key: &HostKey<'_>) -> (u8, HostAddr, String, i64) {
        let none = host(0, "0.0.0.0");
        match *key {
            HostKey::Ip(a) => (0, a, String::new(), 0),
            HostKey::HostId(id) => (1, none, String::new(), id.0),
            HostKey::Group(g) => (2, none, g.to_owned(), 0),
            HostKey::Topo(t) => (3, none, t.node_type.clone(), t.id),
        }
    }

    #[test]
    fn host_keys_sort_as_the_derived_order_would() {
        let addrs = [
            host(0, "10.0.0.2"),
            host(0, "10.0.0.1"),
            host(1, "10.0.0.1"),
            host(0, "::1"),
            host(0, "fd00::1"),
            host(2, "9.9.9.9"),
            host(0, "255.0.0.0"),
        ];
        let node = |id| TopoNode {
            node_type: "module".to_owned(),
            id,
        };
        let nodes = [
            node(3),
            node(1),
            TopoNode {
                node_type: "set".to_owned(),
                id: 0,
            },
        ];
        let mut keys: Vec<HostKey<'_>> = addrs.iter().map(|&a| HostKey::Ip(a)).collect();
        keys.extend([
            HostKey::Topo(&nodes[0]),
            HostKey::Group("dg2"),
            HostKey::HostId(HostId(7)),
            HostKey::Topo(&nodes[1]),
            HostKey::Topo(&nodes[2]),
            HostKey::Group("dg1"),
            HostKey::HostId(HostId(2)),
        ]);
        keys.sort();
        let got: Vec<_> = keys.iter().map(derived).collect();
        let mut expected = got.clone();
        expected.sort();
        assert_eq!(got, expected);
    }

    #[test]
    fn runs_of_addresses_print_as_ranges() {
        let mut hosts: Vec<HostAddr> = (1..=40).map(|n| host(0, &format!("10.0.1.{n}"))).collect();
        hosts.push(host(0, "10.0.2.7"));
        hosts.push(host(2, "10.0.2.8"));
        hosts.push(host(2, "10.0.2.9"));
        hosts.push(host(0, "fd00::1"));
        hosts.push(host(0, "10.0.1.255"));
        hosts.push(host(0, "10.0.2.0"));
        assert_eq!(
            compact_hosts(&hosts),
            [
                "0:10.0.1.[1:40]",
                "0:10.0.2.7",
                "2:10.0.2.8",
                "2:10.0.2.9",
                "0:[fd00::1]",
                "0:10.0.1.255",
                "0:10.0.2.0"
            ]
        );
        assert!(compact_hosts(&[]).is_empty());
    }
}
