//! Host strings: `ip` (cloud 0), `cloud:ip`, `cloud:[ipv6]` (BK-JOB's `{bk_cloud_id, ip}`),
//! IPv4 ranges (`10.0.1.[1:40]`, `2:10.0.[1:2].[10:19]`), CIDR blocks (`10.0.2.0/28`) and CMDB
//! host ids (`host_id:1001`, JOB's `bk_host_id`, spelt as JOB's own messages print it).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use crate::kind::ParseErrorKind;
use crate::model::{HostAddr, HostId, HostRange, MAX_HOSTS_PER_ENTRY, OctetRange};

/// The prefix of a host-id string: `host_id:1001`.
pub(crate) const HOST_ID_PREFIX: &str = "host_id:";

/// What one host string selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostEntry {
    /// One address.
    One(HostAddr),
    /// An IPv4 range or CIDR block (never a single address).
    Range(HostRange),
    /// A CMDB host id.
    Id(HostId),
}

/// Why a host string is refused: a message, the bytes of the string it is about (the range or
/// block when there is one) and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostError {
    pub(crate) kind: ParseErrorKind,
    pub(crate) message: String,
    /// Byte range within the host string; `None` for the whole string.
    pub(crate) at: Option<Range<usize>>,
    pub(crate) help: String,
}

const HOST_HELP: &str = "a host is `ip` (cloud 0), `cloud:ip`, `cloud:[ipv6]`, a range such as \
     `10.0.1.[1:40]`, a CIDR block such as `10.0.2.0/28`, or a CMDB host id `host_id:1001`";
const RANGE_HELP: &str = "write a range as `[first:last]` in place of an octet, e.g. \
     `10.0.1.[1:40]`, or a block as `address/prefix`, e.g. `10.0.2.0/28`";

fn invalid(message: impl Into<String>) -> HostError {
    HostError {
        kind: ParseErrorKind::InvalidHost,
        message: message.into(),
        at: None,
        help: HOST_HELP.to_owned(),
    }
}

fn bad_range(message: impl Into<String>, at: Range<usize>, help: impl Into<String>) -> HostError {
    HostError {
        kind: ParseErrorKind::InvalidHostRange,
        message: message.into(),
        at: Some(at),
        help: help.into(),
    }
}

/// True when a `hosts` string is meant as a host rather than a group name: it has a `:` or a
/// `[`, or it is made of digits, dots and `/` only. Group names of that last shape are refused,
/// so the two never overlap. Surrounding spaces are ignored here, so that ` 10.0.0.1` is
/// reported as a host with spaces rather than as an unknown group.
pub(crate) fn looks_like_host(s: &str) -> bool {
    let s = s.trim().as_bytes();
    // Bytes rather than chars: this runs for every name of every `hosts`.
    s.iter().any(|b| matches!(b, b':' | b'[' | b']'))
        || (!s.is_empty()
            && s.iter()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'/')))
}

/// Parses a host string that must name exactly one address (no range, no host id).
#[cfg(test)]
pub(crate) fn parse_host(s: &str) -> Result<HostAddr, String> {
    match parse_host_entry(s) {
        Ok(HostEntry::One(host)) => Ok(host),
        Ok(other) => Err(format!("not a single address: {other:?}")),
        Err(e) => Err(e.message),
    }
}

/// Parses a host string of any form; the error says what is wrong and where.
pub(crate) fn parse_host_entry(s: &str) -> Result<HostEntry, HostError> {
    if s.trim() != s {
        return Err(invalid(
            "host strings may not have surrounding spaces (BK-JOB does not trim them)",
        ));
    }
    if s.is_empty() {
        return Err(invalid("the host string is empty"));
    }
    if let Some(id) = s.strip_prefix(HOST_ID_PREFIX) {
        return parse_host_id_text(id, HOST_ID_PREFIX.len()).map(HostEntry::Id);
    }
    if s.starts_with('[') && s.ends_with(']') {
        return Err(invalid(
            "an IPv6 address needs a cloud id: write `0:[addr]`",
        ));
    }
    let (cloud, address, offset) = split_cloud(s)?;
    // The common case first: a plain IPv4 address is nothing else below (not IPv6, no `/`,
    // no brackets), and trying the IPv6 parser on it first was most of the cost of a host.
    if let Ok(v4) = address.parse::<Ipv4Addr>() {
        return Ok(HostEntry::One(HostAddr {
            cloud_id: cloud,
            ip: IpAddr::V4(v4),
        }));
    }
    if let Some(inner) = address.strip_prefix('[')
        && !inner.contains("].")
    {
        return parse_ipv6(cloud, inner).map(HostEntry::One);
    }
    if address.parse::<Ipv6Addr>().is_ok() {
        return Err(invalid("write an IPv6 address in brackets: `cloud:[addr]`"));
    }
    if address.contains('/') {
        return parse_cidr(cloud, address, offset);
    }
    if address.contains(['[', ']']) {
        return parse_octet_range(cloud, address, offset);
    }
    address
        .parse::<Ipv4Addr>()
        .map(|v4| {
            HostEntry::One(HostAddr {
                cloud_id: cloud,
                ip: IpAddr::V4(v4),
            })
        })
        .map_err(|_| {
            invalid(format!(
                "`{address}` is not an IPv4 address (dotted quad, e.g. `10.0.0.1`)"
            ))
        })
}

/// The cloud id, the address after it and the address's byte offset in `s`.
fn split_cloud(s: &str) -> Result<(u64, &str, usize), HostError> {
    let Some((cloud, rest)) = s.split_once(':') else {
        return Ok((0, s, 0));
    };
    if !cloud.is_empty() && cloud.chars().all(|c| c.is_ascii_digit()) {
        let cloud_id = cloud
            .parse::<u64>()
            .map_err(|_| invalid(format!("cloud id `{cloud}` is too large")))?;
        return Ok((cloud_id, rest, cloud.len() + 1));
    }
    // The `:` of a range (`10.0.1.[1:40]`) comes after a `[`: there is no cloud id.
    if cloud.contains('[') {
        return Ok((0, s, 0));
    }
    if s.parse::<Ipv6Addr>().is_ok() {
        return Err(invalid(
            "write an IPv6 address in brackets after a cloud id: `0:[addr]`",
        ));
    }
    if let Some(digits) = cloud.strip_prefix('-')
        && !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
    {
        return Err(invalid(format!(
            "cloud id `{cloud}` is negative; it must be an integer >= 0"
        )));
    }
    if rest.is_empty() {
        return Err(invalid(format!("`{s}` has no address after the `:`")));
    }
    Err(invalid(format!(
        "cloud id `{cloud}` is not an integer >= 0 (expected `ip` or `cloud:ip`)"
    )))
}

fn parse_ipv6(cloud: u64, inner: &str) -> Result<HostAddr, HostError> {
    let Some(inner) = inner.strip_suffix(']') else {
        return Err(invalid("missing `]` after the IPv6 address"));
    };
    if inner.parse::<Ipv4Addr>().is_ok() {
        return Err(invalid(
            "brackets are for IPv6; write an IPv4 address without them",
        ));
    }
    inner
        .parse::<Ipv6Addr>()
        .map(|v6| HostAddr {
            cloud_id: cloud,
            ip: IpAddr::V6(v6),
        })
        .map_err(|_| invalid(format!("`{inner}` is not an IPv6 address")))
}

/// The digits of a host id (after `host_id:`), `offset` bytes into the host string.
fn parse_host_id_text(id: &str, offset: usize) -> Result<HostId, HostError> {
    let at = offset..offset + id.len();
    let error = |message: String| HostError {
        kind: ParseErrorKind::InvalidHostId,
        message,
        at: Some(at.clone()),
        help: "a host id is CMDB's `bk_host_id`, a positive integer: `host_id:1001`".to_owned(),
    };
    if id.is_empty() {
        return Err(error("`host_id:` has no id after it".to_owned()));
    }
    if !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(error(format!("host id `{id}` is not a positive integer")));
    }
    match id.parse::<i64>() {
        Ok(0) => Err(error(
            "host id 0 is not a CMDB host id (they start at 1)".to_owned(),
        )),
        Ok(n) => Ok(HostId(n)),
        Err(_) => Err(error(format!("host id `{id}` is too large"))),
    }
}

/// Checks an integer of `host_ids`: CMDB host ids are positive.
pub(crate) fn check_host_id(value: i64) -> Result<HostId, String> {
    if value >= 1 {
        Ok(HostId(value))
    } else {
        Err(format!(
            "host id {value} is not a CMDB host id (they are integers >= 1)"
        ))
    }
}

/// One octet or `[first:last]`, `offset` bytes into the host string.
fn parse_octet(part: &str, offset: usize) -> Result<OctetRange, HostError> {
    let at = offset..offset + part.len();
    let number = |text: &str| -> Result<u8, HostError> {
        if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad_range(
                format!("`{part}` is not an octet or a range `[first:last]`"),
                at.clone(),
                RANGE_HELP,
            ));
        }
        if text.len() > 1 && text.starts_with('0') {
            return Err(bad_range(
                format!("`{text}` has a leading zero, which IPv4 addresses may not have"),
                at.clone(),
                format!("write `{}`", text.trim_start_matches('0').max("0")),
            ));
        }
        match text.parse::<u16>() {
            Ok(n) if n <= 255 => Ok(n as u8),
            _ => Err(bad_range(
                format!("`{text}` is past 255, the largest value of an IPv4 octet"),
                at.clone(),
                "each octet (and each end of a range) is 0 to 255",
            )),
        }
    };
    let Some(inner) = part.strip_prefix('[') else {
        if part.contains(['[', ']']) {
            return Err(bad_range(
                format!("`{part}` is not a range: a range is a whole octet `[first:last]`"),
                at,
                RANGE_HELP,
            ));
        }
        let n = number(part)?;
        return Ok(OctetRange { first: n, last: n });
    };
    let Some(inner) = inner.strip_suffix(']') else {
        return Err(bad_range(
            format!("range `{part}` has no closing `]`"),
            at,
            RANGE_HELP,
        ));
    };
    let Some((first, last)) = inner.split_once(':') else {
        let help = match inner.split_once('-') {
            Some((a, b)) => format!("write `[{a}:{b}]`: the ends are separated by `:`"),
            None => RANGE_HELP.to_owned(),
        };
        return Err(bad_range(
            format!("range `{part}` is not `[first:last]`"),
            at,
            help,
        ));
    };
    let (first, last) = (number(first)?, number(last)?);
    if first > last {
        return Err(bad_range(
            format!("range `{part}` runs backwards ({first} > {last})"),
            at,
            format!("write `[{last}:{first}]`: the first value comes first"),
        ));
    }
    Ok(OctetRange { first, last })
}

fn parse_octet_range(cloud: u64, address: &str, offset: usize) -> Result<HostEntry, HostError> {
    let parts: Vec<&str> = address.split('.').collect();
    if parts.len() != 4 {
        return Err(bad_range(
            format!(
                "`{address}` has {} parts; an IPv4 address (or range) has 4",
                parts.len()
            ),
            offset..offset + address.len(),
            RANGE_HELP,
        ));
    }
    let mut octets = [OctetRange { first: 0, last: 0 }; 4];
    let mut at = offset;
    for (octet, part) in octets.iter_mut().zip(&parts) {
        *octet = parse_octet(part, at)?;
        at += part.len() + 1;
    }
    let range = HostRange::Octets {
        cloud_id: cloud,
        octets,
    };
    finish_range(range, offset..offset + address.len())
}

fn parse_cidr(cloud: u64, address: &str, offset: usize) -> Result<HostEntry, HostError> {
    let whole = offset..offset + address.len();
    let Some((network, prefix)) = address.split_once('/') else {
        return Err(bad_range("no `/` in a CIDR block", whole, RANGE_HELP));
    };
    if network.contains(['[', ']']) {
        return Err(bad_range(
            format!("`{address}` mixes a range and a CIDR block"),
            whole,
            "write either a range (`10.0.1.[1:40]`) or a block (`10.0.2.0/28`)",
        ));
    }
    let prefix_at = offset + network.len() + 1..offset + address.len();
    let prefix_len = match prefix.parse::<u8>() {
        Ok(p) if p <= 32 && prefix.chars().all(|c| c.is_ascii_digit()) => p,
        _ => {
            return Err(bad_range(
                format!("`/{prefix}` is not a prefix length (0 to 32)"),
                prefix_at,
                "a block is `address/prefix`, e.g. `10.0.2.0/28`",
            ));
        }
    };
    let Ok(net) = network.parse::<Ipv4Addr>() else {
        return Err(bad_range(
            format!("`{network}` is not an IPv4 network address"),
            offset..offset + network.len(),
            "a block is an IPv4 address and a prefix length, e.g. `10.0.2.0/28` (IPv6 blocks are not taken: JOB addresses IPv6 hosts by host id)",
        ));
    };
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0);
    let bits = u32::from(net);
    if bits & !mask != 0 {
        let start = Ipv4Addr::from(bits & mask);
        return Err(bad_range(
            format!("CIDR block `{address}` has host bits set: the block starts at {start}"),
            whole,
            format!("write `{start}/{prefix_len}`, or the single host `{network}`"),
        ));
    }
    let range = HostRange::Cidr {
        cloud_id: cloud,
        network: net,
        prefix: prefix_len,
    };
    finish_range(range, whole)
}

/// Refuses a range past [`MAX_HOSTS_PER_ENTRY`]; a range of one address is that address.
fn finish_range(range: HostRange, at: Range<usize>) -> Result<HostEntry, HostError> {
    let len = range.len();
    if len > MAX_HOSTS_PER_ENTRY {
        return Err(HostError {
            kind: ParseErrorKind::HostRangeTooLarge,
            message: format!(
                "`{range}` expands to {len} hosts, more than the {MAX_HOSTS_PER_ENTRY} one entry may select"
            ),
            at: Some(at),
            help: "a range this large is rarely meant: narrow it, or select the hosts through a dynamic group or a topology node".to_owned(),
        });
    }
    if len == 1
        && let Some(host) = range.hosts().next()
    {
        return Ok(HostEntry::One(host));
    }
    Ok(HostEntry::Range(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(s: &str) -> Vec<String> {
        match parse_host_entry(s).unwrap_or_else(|e| panic!("{s}: {e:?}")) {
            HostEntry::Range(r) => r.hosts().map(|h| h.to_string()).collect(),
            HostEntry::One(h) => vec![h.to_string()],
            HostEntry::Id(id) => vec![id.to_string()],
        }
    }

    fn error(s: &str) -> HostError {
        parse_host_entry(s).expect_err(s)
    }

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
            assert!(parse_host_entry(s).is_err(), "{s:?} should be invalid");
        }
    }

    #[test]
    fn ranges_expand_in_order() {
        assert_eq!(
            expand("10.0.1.[1:3]"),
            ["0:10.0.1.1", "0:10.0.1.2", "0:10.0.1.3"]
        );
        assert_eq!(
            expand("2:10.0.[1:2].[10:11]"),
            ["2:10.0.1.10", "2:10.0.1.11", "2:10.0.2.10", "2:10.0.2.11"]
        );
        assert_eq!(expand("10.0.1.[7:7]"), ["0:10.0.1.7"], "one address");
        assert_eq!(expand("10.0.1.[1:40]").len(), 40);
        assert_eq!(
            expand("10.0.[0:255].[0:255]").len(),
            65_536,
            "the cap itself"
        );
    }

    #[test]
    fn cidr_blocks_leave_out_network_and_broadcast() {
        let block = expand("10.0.2.0/28");
        assert_eq!(block.len(), 14);
        assert_eq!(block.first().map(String::as_str), Some("0:10.0.2.1"));
        assert_eq!(block.last().map(String::as_str), Some("0:10.0.2.14"));
        // RFC 3021: a /31 is a point-to-point link, both addresses are hosts.
        assert_eq!(expand("5:10.0.2.0/31"), ["5:10.0.2.0", "5:10.0.2.1"]);
        assert_eq!(expand("10.0.2.9/32"), ["0:10.0.2.9"]);
        assert_eq!(expand("10.0.2.0/30"), ["0:10.0.2.1", "0:10.0.2.2"]);
        assert_eq!(expand("10.0.0.0/16").len(), 65_534);
    }

    #[test]
    fn host_ids() {
        assert_eq!(
            parse_host_entry("host_id:1001").ok(),
            Some(HostEntry::Id(HostId(1001)))
        );
        for (s, kind) in [
            ("host_id:", ParseErrorKind::InvalidHostId),
            ("host_id:0", ParseErrorKind::InvalidHostId),
            ("host_id:-3", ParseErrorKind::InvalidHostId),
            ("host_id:1.5", ParseErrorKind::InvalidHostId),
            (
                "host_id:99999999999999999999",
                ParseErrorKind::InvalidHostId,
            ),
        ] {
            let e = error(s);
            assert_eq!(e.kind, kind, "{s}");
            assert_eq!(e.at, Some(8..s.len()), "{s}: points at the id");
        }
        assert_eq!(check_host_id(7), Ok(HostId(7)));
        assert!(check_host_id(0).is_err());
        assert!(check_host_id(-1).is_err());
    }

    #[test]
    fn bad_ranges_point_at_the_range() {
        for (s, at, words) in [
            ("10.0.1.[40:1]", 7..13, "runs backwards"),
            ("10.0.1.[1:300]", 7..14, "past 255"),
            ("2:10.0.1.[1:40", 9..14, "no closing"),
            ("10.0.1.[1-40]", 7..13, "not `[first:last]`"),
            ("10.0.[1:2]", 0..10, "has 3 parts"),
            ("10.0.1.[a:b]", 7..12, "not an octet"),
            ("10.0.1.1[1:2]", 7..13, "whole octet"),
            ("10.0.1.[01:2]", 7..13, "leading zero"),
        ] {
            let e = error(s);
            assert_eq!(e.kind, ParseErrorKind::InvalidHostRange, "{s}");
            assert_eq!(e.at, Some(at), "{s}");
            assert!(e.message.contains(words), "{s}: {}", e.message);
        }
        let reversed = error("10.0.1.[40:1]");
        assert!(reversed.help.contains("[1:40]"), "{}", reversed.help);
    }

    #[test]
    fn bad_blocks() {
        let e = error("10.0.2.5/28");
        assert_eq!(e.kind, ParseErrorKind::InvalidHostRange);
        assert!(e.message.contains("host bits"), "{}", e.message);
        assert!(e.help.contains("10.0.2.0/28"), "{}", e.help);
        assert_eq!(error("1:10.0.2.0/33").at, Some(11..13));
        assert_eq!(error("10.0.2.0/").kind, ParseErrorKind::InvalidHostRange);
        assert_eq!(
            error("10.0.[1:2].0/24").kind,
            ParseErrorKind::InvalidHostRange
        );
        assert_eq!(error("10.0.0.0/15").kind, ParseErrorKind::HostRangeTooLarge);
        assert_eq!(error("0.0.0.0/0").kind, ParseErrorKind::HostRangeTooLarge);
        assert_eq!(
            error("10.[0:1].[0:255].[0:255]").kind,
            ParseErrorKind::HostRangeTooLarge
        );
    }

    #[test]
    fn host_or_group() {
        assert!(looks_like_host("10.0.0.1"));
        assert!(looks_like_host("0:[::1]"));
        assert!(looks_like_host("10.0.2.0/28"));
        assert!(looks_like_host("10.0.1.[1:40]"));
        assert!(looks_like_host("host_id:1001"));
        assert!(!looks_like_host("web"));
        assert!(!looks_like_host("web-1.prod"));
        // spaces make it an invalid host, not an unknown group
        assert!(looks_like_host(" 10.0.0.1"));
        assert!(looks_like_host("10.0.0.1 "));
        assert!(!looks_like_host(" web"));
    }

    proptest::proptest! {
        /// Whatever the string, parsing answers (no panic), an error's range lies within the
        /// string on character boundaries, and a range never exceeds the cap.
        #[test]
        fn any_string_parses_or_errs_within_bounds(s in "[0-9a-z_:\\[\\]./ -]{0,40}") {
            match parse_host_entry(&s) {
                Ok(HostEntry::Range(r)) => proptest::prop_assert!(r.len() <= MAX_HOSTS_PER_ENTRY),
                Ok(_) => {}
                Err(e) => {
                    if let Some(at) = e.at {
                        proptest::prop_assert!(at.end <= s.len() && at.start <= at.end);
                        proptest::prop_assert!(s.is_char_boundary(at.start) && s.is_char_boundary(at.end));
                    }
                }
            }
        }

        #[test]
        fn range_strings_round_trip(a in 0u8..=255, b in 0u8..=255, c in 0u8..=255, lo in 0u8..=255, hi in 0u8..=255) {
            let s = format!("{a}.{b}.{c}.[{lo}:{hi}]");
            match parse_host_entry(&s) {
                Ok(HostEntry::Range(r)) => {
                    proptest::prop_assert!(lo < hi);
                    proptest::prop_assert_eq!(r.len(), u64::from(hi - lo) + 1);
                    proptest::prop_assert_eq!(r.to_string(), format!("0:{s}"));
                }
                Ok(HostEntry::One(_)) => proptest::prop_assert_eq!(lo, hi),
                Ok(HostEntry::Id(_)) => proptest::prop_assert!(false),
                Err(e) => proptest::prop_assert!(lo > hi, "{}", e.message),
            }
        }
    }
}
