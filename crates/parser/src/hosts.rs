//! Host strings: `ip` (cloud 0), `cloud:ip`, `cloud:[ipv6]`, as BK-JOB's `{bk_cloud_id, ip}`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::HostAddr;

/// True when a `hosts` string is meant as a host rather than a group name: it has a `:` or a
/// `[`, or it is made of digits and dots only. Group names of that last shape are refused, so
/// the two never overlap. Surrounding spaces are ignored here, so that ` 10.0.0.1` is
/// reported as a host with spaces rather than as an unknown group.
pub(crate) fn looks_like_host(s: &str) -> bool {
    let s = s.trim();
    s.contains([':', '[', ']'])
        || (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// Parses a host string; the error says what is wrong with it.
pub(crate) fn parse_host(s: &str) -> Result<HostAddr, String> {
    if s.trim() != s {
        return Err(
            "host strings may not have surrounding spaces (BK-JOB does not trim them)".into(),
        );
    }
    if s.is_empty() {
        return Err("the host string is empty".into());
    }
    if s.starts_with('[') {
        return Err("an IPv6 address needs a cloud id: write `0:[addr]`".into());
    }
    let (cloud, ip) = match s.split_once(':') {
        Some((cloud, ip)) if !cloud.is_empty() && cloud.chars().all(|c| c.is_ascii_digit()) => {
            let cloud_id = cloud
                .parse::<u64>()
                .map_err(|_| format!("cloud id `{cloud}` is too large"))?;
            (cloud_id, ip)
        }
        Some((cloud, rest)) => {
            if s.parse::<Ipv6Addr>().is_ok() {
                return Err(
                    "write an IPv6 address in brackets after a cloud id: `0:[addr]`".into(),
                );
            }
            if cloud.starts_with('-') && cloud[1..].chars().all(|c| c.is_ascii_digit()) {
                return Err(format!(
                    "cloud id `{cloud}` is negative; it must be an integer >= 0"
                ));
            }
            if rest.is_empty() {
                return Err(format!("`{s}` has no address after the `:`"));
            }
            return Err(format!(
                "cloud id `{cloud}` is not an integer >= 0 (expected `ip` or `cloud:ip`)"
            ));
        }
        None => (0, s),
    };
    if let Some(inner) = ip.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return Err("missing `]` after the IPv6 address".into());
        };
        if inner.parse::<Ipv4Addr>().is_ok() {
            return Err("brackets are for IPv6; write an IPv4 address without them".into());
        }
        return inner
            .parse::<Ipv6Addr>()
            .map(|v6| HostAddr {
                cloud_id: cloud,
                ip: IpAddr::V6(v6),
            })
            .map_err(|_| format!("`{inner}` is not an IPv6 address"));
    }
    if ip.parse::<Ipv6Addr>().is_ok() {
        return Err("write an IPv6 address in brackets: `cloud:[addr]`".into());
    }
    ip.parse::<Ipv4Addr>()
        .map(|v4| HostAddr {
            cloud_id: cloud,
            ip: IpAddr::V4(v4),
        })
        .map_err(|_| format!("`{ip}` is not an IPv4 address (dotted quad, e.g. `10.0.0.1`)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_host_strings() {
        for (s, shown) in [
            ("10.0.0.5", "0:10.0.0.5"),
            ("0:10.0.1.1", "0:10.0.1.1"),
            ("7:192.168.0.1", "7:192.168.0.1"),
            ("0:[::1]", "0:[::1]"),
            ("3:[fe80::1:2]", "3:[fe80::1:2]"),
        ] {
            let host = parse_host(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(host.to_string(), shown);
        }
    }

    #[test]
    fn invalid_host_strings() {
        for s in [
            "",
            " 10.0.0.1",
            "10.0.0",
            "10.0.0.256",
            "010.0.0.1",
            "-1:10.0.0.1",
            "a:10.0.0.1",
            "::1",
            "[::1]",
            "0:::1",
            "0:[10.0.0.1]",
            "0:[::1",
            "0:",
            "99999999999999999999:10.0.0.1",
            "10.0.0.1:80",
        ] {
            assert!(parse_host(s).is_err(), "{s:?} should be invalid");
        }
    }

    #[test]
    fn host_or_group() {
        assert!(looks_like_host("10.0.0.1"));
        assert!(looks_like_host("0:[::1]"));
        assert!(!looks_like_host("web"));
        assert!(!looks_like_host("web-1.prod"));
        // spaces make it an invalid host, not an unknown group
        assert!(looks_like_host(" 10.0.0.1"));
        assert!(looks_like_host("10.0.0.1 "));
        assert!(!looks_like_host(" web"));
    }
}
