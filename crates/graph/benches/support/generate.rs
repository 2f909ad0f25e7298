//! The one generator of large, realistic plans, shared by the `gen` example (which prints a
//! plan anyone can feed to `plan check`) and the benchmarks (included with `#[path]`).
//!
//! The shape of a big release plan:
//!
//! - `[vars]` with a release version, used in the paths of the staging pushes;
//! - a few build hosts (`build-K`, one static host each);
//! - `n / 20` relay groups (`relay-R`, 3 static hosts each);
//! - `n / 5` target groups (`tier-T`): most list 2 to 6 static hosts (some in another cloud
//!   area), a third of them as one range of 2 to 8 hosts (`10.60.7.[1:5]`) and another third
//!   with a CIDR block (`/29`, 6 hosts) besides, so a group holds about as many hosts as a
//!   hand-written one; every 97th names its hosts by CMDB id only (`host_ids` and
//!   `host_id:N`: JOB ignores addresses beside ids, so the two never share a target);
//!   every 7th is a CMDB dynamic group, every 5th lists topology nodes (in both spellings),
//!   every 11th is a union of two other groups plus a host of its own;
//! - the pushes, in blocks of four: a staging push from a build host onto a relay group, two
//!   pushes that read that package from one relay host (an inferred edge each) and deliver it
//!   to a target group, and a mirror push that reads what the previous push delivered from its
//!   target group (another inferred edge, with `[FILESRCIP]` so copies from several hosts do
//!   not overwrite each other);
//! - every tenth push also has an explicit `after` on an earlier one, two in every 16 read a
//!   `REGEX:` or a wildcard source, and a few override `timeout`, `retries` or a speed limit.
//!
//! Every group is used and every push writes into its own directory, so the plan checks clean:
//! no warnings, no write conflicts. The output depends only on `pushes` and `seed`.

use std::fmt::Write as _;

/// SplitMix64: a tiny deterministic generator, so plans are the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n >= 1`).
    fn below(&mut self, n: usize) -> usize {
        // The modulo bias is irrelevant for picking groups.
        (self.next() % n.max(1) as u64) as usize
    }
}

/// What a target group selects, so pushes can read back from it correctly.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TierKind {
    Static,
    HostIds,
    Dynamic,
    Topo,
    Union,
}

fn tier_kind(t: usize) -> TierKind {
    // Group 0 stays static so that every union group can include at least one static group.
    if t == 0 {
        TierKind::Static
    } else if t.is_multiple_of(11) {
        TierKind::Union
    } else if t.is_multiple_of(7) {
        TierKind::Dynamic
    } else if t.is_multiple_of(5) {
        TierKind::Topo
    } else if t % 97 == 3 {
        TierKind::HostIds
    } else {
        TierKind::Static
    }
}

/// An IPv4 address made unique by `(net, index)`.
fn ipv4(net: usize, index: usize) -> String {
    format!("10.{}.{}.{}", net, (index / 250) % 250, index % 250 + 1)
}

/// How many hosts the generated ranges and CIDR blocks select.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Ranges {
    /// Ranges of 2 to 8 hosts and `/29` blocks (6 hosts): about a hand-written group's size.
    Small,
    /// Each range five times as long (10 to 40 hosts) and `/27` blocks (30 hosts): what
    /// planning costs when ranges stand for many hosts.
    Large,
}

/// A plan of exactly `pushes` pushes (at least 1), deterministic for a given `seed`.
#[allow(dead_code, reason = "each user of this module calls one of the two")]
pub(crate) fn generate(pushes: usize, seed: u64) -> String {
    generate_with(pushes, seed, Ranges::Small)
}

/// [`generate`] with the ranges' size chosen: the same plan, but for the hosts each range and
/// block selects.
pub(crate) fn generate_with(pushes: usize, seed: u64, ranges: Ranges) -> String {
    let (range_factor, cidr_prefix) = match ranges {
        Ranges::Small => (1, 29),
        Ranges::Large => (5, 27),
    };
    let pushes = pushes.max(1);
    let mut rng = Rng(seed);
    let builds = (pushes / 2_000).max(1);
    let relays = (pushes / 20).max(1);
    let tiers = (pushes / 5).max(1);
    let mut out = String::with_capacity(pushes * 300 + tiers * 120);

    let _ = write!(
        out,
        "# Generated: {pushes} pushes, seed {seed}.\n\
         version = 1\n\n\
         [plan]\n\
         name = \"release-{seed}\"\n\
         description = \"generated release plan\"\n\
         bk_biz_id = 2\n\
         api = \"v3\"\n\
         account = \"root\"\n\
         timeout = 900\n\
         download_speed_limit = 200\n\n\
         [vars]\n\
         version = \"4.2.{seed}\"\n\
         channel = \"stable\"\n\n"
    );

    for k in 0..builds {
        let _ = write!(out, "[hosts.build-{k}]\nips = [\"{}\"]\n\n", ipv4(0, k));
    }
    for r in 0..relays {
        let _ = write!(
            out,
            "[hosts.relay-{r}]\nips = [\"{}\", \"{}\", \"{}\"]\n\n",
            ipv4(1, r),
            ipv4(2, r),
            ipv4(3, r)
        );
    }
    for t in 0..tiers {
        let _ = writeln!(out, "[hosts.tier-{t}]");
        match tier_kind(t) {
            TierKind::Static if t % 3 == 1 => {
                // One range, its own /24 (`t` < 64,000 at 320,000 pushes).
                let _ = write!(
                    out,
                    "ips = [\"10.{}.{}.[1:{}]\"]\n\n",
                    60 + t / 250,
                    t % 250,
                    (2 + rng.below(7)) * range_factor
                );
            }
            TierKind::HostIds => {
                let _ = write!(
                    out,
                    "host_ids = [{}, {}]\nips = [\"host_id:{}\"]\n\n",
                    100_000 + 3 * t,
                    100_001 + 3 * t,
                    100_002 + 3 * t
                );
            }
            TierKind::Static => {
                let count = 2 + rng.below(5);
                out.push_str("ips = [");
                if t % 3 == 2 {
                    let _ = write!(
                        out,
                        "\"10.{}.{}.0/{cidr_prefix}\", ",
                        120 + t / 250,
                        t % 250
                    );
                }
                for h in 0..count {
                    if h > 0 {
                        out.push_str(", ");
                    }
                    let index = t * 8 + h;
                    if t % 13 == 4 {
                        let _ = write!(out, "\"2:{}\"", ipv4(20 + index / 62_500, index));
                    } else {
                        let _ = write!(out, "\"{}\"", ipv4(10 + index / 62_500, index));
                    }
                }
                out.push_str("]\n\n");
            }
            TierKind::Dynamic => {
                let _ = write!(out, "dynamic_groups = [\"dg{t:016x}\"]\n\n");
            }
            TierKind::Topo => {
                let _ = write!(
                    out,
                    "topo_nodes = [\"module:{}\", {{ node_type = \"set\", id = {} }}]\n\n",
                    10_000 + t,
                    500 + t / 4
                );
            }
            TierKind::Union => {
                // Two earlier groups (any kind, never a union: no deep chains) and a host.
                // (`t >= 11`, and no group below 11 is a union: both loops end quickly.)
                let mut pick = |not: Option<usize>| loop {
                    let c = rng.below(t);
                    if !matches!(tier_kind(c), TierKind::Union | TierKind::HostIds)
                        && Some(c) != not
                    {
                        break c;
                    }
                };
                let a = pick(None);
                let b = pick(Some(a));
                let _ = write!(
                    out,
                    "groups = [\"tier-{a}\", \"tier-{b}\"]\nips = [\"{}\"]\n\n",
                    ipv4(30, t)
                );
            }
        }
    }

    // The tier the push at `i` delivers to (pushes 1, 2 and 3 of each block of four deliver
    // to tiers): round robin from a random start, so every tier is used.
    let offset = rng.below(tiers);
    let tier_of = |i: usize| (3 * (i / 4) + (i % 4).saturating_sub(1) + offset) % tiers;
    for i in 0..pushes {
        let _ = write!(out, "[[push]]\nname = \"p{i}\"\n");
        let base = i - i % 4;
        if i % 10 == 9 {
            let back = 3 + rng.below(30).min(i - 1);
            let _ = writeln!(out, "after = [\"p{}\"]", i.saturating_sub(back));
        }
        match i % 4 {
            0 => {
                let build = (i / 4) % builds;
                let relay = (i / 4) % relays;
                let _ = write!(
                    out,
                    "from = {{ hosts = \"build-{build}\", files = [\"/data/release/${{version}}/svc{i}/pkg-{i}.tar.gz\", \"/data/release/${{version}}/svc{i}/conf/\"] }}\n\
                     to = {{ hosts = \"relay-{relay}\", path = \"/data/stage/svc{i}/\" }}\n"
                );
            }
            1 | 2 => {
                let relay = (base / 4) % relays;
                let relay_host = ipv4(1 + rng.below(3), relay);
                let tier = tier_of(i);
                let files = if i % 16 == 5 {
                    format!(
                        "\"/data/stage/svc{base}/pkg-{base}.tar.gz\", \"/data/stage/svc{base}/conf/REGEX:^app-[a-z]+\\\\.(ini|conf)$\""
                    )
                } else if i % 16 == 10 {
                    format!("\"/data/stage/svc{base}/pkg-*.tar.gz\"")
                } else {
                    format!(
                        "\"/data/stage/svc{base}/pkg-{base}.tar.gz\", \"/data/stage/svc{base}/conf/\""
                    )
                };
                let to_hosts = if i % 9 == 1 && tier_kind(tier) == TierKind::HostIds {
                    format!("[\"tier-{tier}\", \"host_id:{}\"]", 900_000 + i)
                } else if i % 9 == 1 {
                    format!("[\"tier-{tier}\", \"{}\"]", ipv4(40, i))
                } else {
                    format!("\"tier-{tier}\"")
                };
                let _ = write!(
                    out,
                    "from = {{ hosts = \"{relay_host}\", files = [{files}], account = \"deploy\" }}\n\
                     to = {{ hosts = {to_hosts}, path = \"/opt/svc{base}/${{channel}}/p{i}/\", account = \"deploy\" }}\n"
                );
                if i % 8 == 1 {
                    out.push_str("timeout = 1800\nretries = 2\n");
                }
                if i % 12 == 2 {
                    out.push_str("upload_speed_limit = 50\n");
                }
            }
            _ => {
                // Reads what the previous push delivered, on that push's target group.
                let prev_tier = tier_of(i - 1);
                let tier = tier_of(i);
                let _ = write!(
                    out,
                    "from = {{ hosts = \"tier-{prev_tier}\", files = [\"/opt/svc{base}/${{channel}}/p{}/pkg-{base}.tar.gz\"] }}\n\
                     to = {{ hosts = \"tier-{tier}\", path = \"/srv/mirror/p{i}/[FILESRCIP]/\" }}\n",
                    i - 1
                );
            }
        }
        out.push('\n');
    }
    out
}
