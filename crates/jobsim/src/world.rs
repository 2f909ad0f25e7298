//! The simulated CMDB: hosts found in the sandbox, businesses, accounts, dynamic groups,
//! topology nodes and per-host agent facts, built from the sandbox plus `jobsim.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use crate::config::{Account, Config};

/// First automatically assigned `bk_host_id`.
const FIRST_HOST_ID: u64 = 1001;

/// One sandbox host.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub(crate) struct HostRef {
    pub(crate) id: u64,
    pub(crate) cloud: u64,
    pub(crate) ip: String,
}

impl HostRef {
    pub(crate) fn cloud_ip(&self) -> String {
        format!("{}:{}", self.cloud, self.ip)
    }

    /// The host's IPv4 address as JOB's `ip` field carries it: empty for an IPv6-only host.
    pub(crate) fn ipv4(&self) -> &str {
        if self.is_ipv6() { "" } else { &self.ip }
    }

    /// The IPv6 address (JOB's `ipv6` field), empty for an IPv4 host.
    pub(crate) fn ipv6(&self) -> &str {
        if self.is_ipv6() { &self.ip } else { "" }
    }

    fn is_ipv6(&self) -> bool {
        self.ip.contains(':')
    }
}

/// Agent state of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Agent {
    Alive,
    Down,
    NotInstalled,
}

/// A business scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub(crate) kind: String,
    pub(crate) id: u64,
}

impl Scope {
    /// `bk_biz_id` ids 8000000..=9999999 are business sets.
    pub(crate) fn from_biz_id(id: u64) -> Self {
        let kind = if (8_000_000..=9_999_999).contains(&id) {
            "biz_set"
        } else {
            "biz"
        };
        Self {
            kind: kind.into(),
            id,
        }
    }
}

/// A resolved OS account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedAccount {
    pub(crate) id: u64,
    pub(crate) alias: String,
}

#[derive(Debug, Default)]
struct Registry {
    by_key: BTreeMap<(u64, String), u64>,
    by_id: BTreeMap<u64, (u64, String)>,
    next: u64,
}

/// The world a simulator instance serves.
#[derive(Debug)]
pub(crate) struct World {
    root: PathBuf,
    config: Config,
    registry: Mutex<Registry>,
    /// Jobs left that see a `flaky_jobs` host's agent as abnormal.
    flaky: Mutex<BTreeMap<(u64, String), u64>>,
}

/// Parses `"cloud:ip"`, `"ip"`, or `"cloud:[v6]"`.
pub(crate) fn parse_host_str(s: &str) -> Option<(u64, String)> {
    let s = s.trim();
    if let Some((cloud, rest)) = s.split_once(':')
        && let Ok(c) = cloud.parse::<u64>()
    {
        let ip = rest.trim_start_matches('[').trim_end_matches(']');
        return Some((c, ip.to_string()));
    }
    if s.is_empty() {
        None
    } else {
        Some((
            0,
            s.trim_start_matches('[').trim_end_matches(']').to_string(),
        ))
    }
}

impl World {
    pub(crate) fn new(root: PathBuf, config: Config) -> Self {
        let mut reg = Registry {
            next: FIRST_HOST_ID,
            ..Registry::default()
        };
        for h in &config.hosts {
            if let (Some(id), Some(key)) = (h.host_id, parse_host_str(&h.host)) {
                reg.by_key.insert(key.clone(), id);
                reg.by_id.insert(id, key);
            }
        }
        let flaky = config
            .hosts
            .iter()
            .filter(|h| h.flaky_jobs > 0)
            .filter_map(|h| parse_host_str(&h.host).map(|k| (k, h.flaky_jobs)))
            .collect();
        let world = Self {
            root,
            config,
            registry: Mutex::new(reg),
            flaky: Mutex::new(flaky),
        };
        world.rescan();
        world
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// `ROOT/hosts/<cloud>/<ip>/`.
    pub(crate) fn host_root(&self, cloud: u64, ip: &str) -> PathBuf {
        self.root.join("hosts").join(cloud.to_string()).join(ip)
    }

    /// `ROOT/file_sources/<code>/`: the files of a third-party file source.
    pub(crate) fn file_source_root(&self, code: &str) -> PathBuf {
        self.root.join("file_sources").join(code)
    }

    /// A host is a real directory `hosts/<cloud>/<ip>`: a symlink there (or for the cloud)
    /// is not a host, so a host's root is always inside the sandbox.
    fn host_exists(&self, cloud: u64, ip: &str) -> bool {
        let real_dir = |p: &std::path::Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
        crate::hostfs::is_plain_name(ip)
            && real_dir(&self.root.join("hosts").join(cloud.to_string()))
            && real_dir(&self.host_root(cloud, ip))
    }

    /// Assigns ids to host directories not seen before, in `(cloud, ip)` order.
    fn rescan(&self) {
        let mut found = BTreeSet::new();
        if let Ok(clouds) = std::fs::read_dir(self.root.join("hosts")) {
            for c in clouds.flatten() {
                if !c.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let Some(cloud) = c.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) else {
                    continue;
                };
                if let Ok(ips) = std::fs::read_dir(c.path()) {
                    for i in ips.flatten() {
                        if i.file_type().is_ok_and(|t| t.is_dir())
                            && let Some(ip) = i.file_name().to_str()
                        {
                            found.insert((cloud, ip.to_string()));
                        }
                    }
                }
            }
        }
        let Ok(mut reg) = self.registry.lock() else {
            return;
        };
        for key in found {
            if reg.by_key.contains_key(&key) {
                continue;
            }
            while reg.by_id.contains_key(&reg.next) {
                reg.next += 1;
            }
            let id = reg.next;
            reg.next += 1;
            reg.by_key.insert(key.clone(), id);
            reg.by_id.insert(id, key);
        }
    }

    /// Looks a host up by cloud + ip; `None` when its directory does not exist.
    pub(crate) fn host_by_ip(&self, cloud: u64, ip: &str) -> Option<HostRef> {
        if !self.host_exists(cloud, ip) {
            return None;
        }
        let key = (cloud, ip.to_string());
        let known = self.registry.lock().ok()?.by_key.get(&key).copied();
        let id = match known {
            Some(id) => id,
            None => {
                self.rescan();
                *self.registry.lock().ok()?.by_key.get(&key)?
            }
        };
        Some(HostRef {
            id,
            cloud,
            ip: ip.to_string(),
        })
    }

    /// Looks a host up by `bk_host_id`.
    pub(crate) fn host_by_id(&self, id: u64) -> Option<HostRef> {
        let mut key = self.registry.lock().ok()?.by_id.get(&id).cloned();
        if key.is_none() {
            self.rescan();
            key = self.registry.lock().ok()?.by_id.get(&id).cloned();
        }
        let (cloud, ip) = key?;
        self.host_exists(cloud, &ip)
            .then_some(HostRef { id, cloud, ip })
    }

    /// Whether the scope exists (`1243049` otherwise).
    pub(crate) fn scope_exists(&self, scope: &Scope) -> bool {
        if scope.id < 1 {
            return false;
        }
        self.config.businesses.is_empty() || self.config.businesses.iter().any(|b| b.id == scope.id)
    }

    /// Display name of a business.
    pub(crate) fn biz_name(&self, scope: &Scope) -> String {
        self.config
            .businesses
            .iter()
            .find(|b| b.id == scope.id)
            .and_then(|b| b.name.clone())
            .unwrap_or_else(|| format!("biz-{}", scope.id))
    }

    /// Whether a host belongs to the business.
    pub(crate) fn in_business(&self, scope: &Scope, host: &HostRef) -> bool {
        let Some(biz) = self.config.businesses.iter().find(|b| b.id == scope.id) else {
            return self.config.businesses.is_empty();
        };
        match &biz.hosts {
            None => true,
            Some(list) => list
                .iter()
                .filter_map(|s| parse_host_str(s))
                .any(|(c, ip)| c == host.cloud && ip == host.ip),
        }
    }

    fn accounts(&self, scope: &Scope) -> Option<&Vec<Account>> {
        self.config
            .businesses
            .iter()
            .find(|b| b.id == scope.id)
            .and_then(|b| b.accounts.as_ref())
    }

    /// Resolves an account alias; any alias resolves when the business lists no accounts.
    pub(crate) fn account_by_alias(&self, scope: &Scope, alias: &str) -> Option<ResolvedAccount> {
        match self.accounts(scope) {
            None => Some(ResolvedAccount {
                id: synthetic_account_id(alias),
                alias: alias.to_string(),
            }),
            Some(list) => list
                .iter()
                .find(|a| a.alias == alias)
                .map(|a| ResolvedAccount {
                    id: a.id,
                    alias: a.alias.clone(),
                }),
        }
    }

    /// Resolves an account id; any id resolves (as alias `root`) when the business lists none.
    pub(crate) fn account_by_id(&self, scope: &Scope, id: u64) -> Option<ResolvedAccount> {
        match self.accounts(scope) {
            None => Some(ResolvedAccount {
                id,
                alias: "root".into(),
            }),
            Some(list) => list.iter().find(|a| a.id == id).map(|a| ResolvedAccount {
                id: a.id,
                alias: a.alias.clone(),
            }),
        }
    }

    /// Host strings of a dynamic group (empty when unknown).
    pub(crate) fn dynamic_group(&self, scope: &Scope, id: &str) -> Vec<(u64, String)> {
        self.config
            .businesses
            .iter()
            .filter(|b| b.id == scope.id)
            .flat_map(|b| b.dynamic_groups.get(id).into_iter().flatten())
            .filter_map(|s| parse_host_str(s))
            .collect()
    }

    /// Host strings of a topology node (empty when unknown). The business's own node
    /// (`biz` with the business's id), unless configured, holds every host of the business.
    pub(crate) fn topo_node(&self, scope: &Scope, node_type: &str, id: i64) -> Vec<(u64, String)> {
        let configured: Vec<&crate::config::TopoNode> = self
            .config
            .businesses
            .iter()
            .filter(|b| b.id == scope.id)
            .flat_map(|b| b.topo_nodes.iter())
            .filter(|n| n.node_type == node_type && n.id == id)
            .collect();
        if configured.is_empty() && node_type == "biz" && u64::try_from(id) == Ok(scope.id) {
            return self
                .business_hosts(scope)
                .into_iter()
                .map(|h| (h.cloud, h.ip))
                .collect();
        }
        configured
            .into_iter()
            .flat_map(|n| n.hosts.iter())
            .filter_map(|s| parse_host_str(s))
            .collect()
    }

    /// Whether the business defines the dynamic group.
    pub(crate) fn dynamic_group_exists(&self, scope: &Scope, id: &str) -> bool {
        self.config
            .businesses
            .iter()
            .any(|b| b.id == scope.id && b.dynamic_groups.contains_key(id))
    }

    /// Every sandbox host, by `bk_host_id`.
    pub(crate) fn all_hosts(&self) -> Vec<HostRef> {
        self.rescan();
        let Ok(reg) = self.registry.lock() else {
            return Vec::new();
        };
        let known: Vec<(u64, (u64, String))> = reg
            .by_id
            .iter()
            .map(|(id, key)| (*id, key.clone()))
            .collect();
        drop(reg);
        known
            .into_iter()
            .filter(|(_, (cloud, ip))| self.host_exists(*cloud, ip))
            .map(|(id, (cloud, ip))| HostRef { id, cloud, ip })
            .collect()
    }

    /// Every sandbox host of the business, by `bk_host_id`.
    pub(crate) fn business_hosts(&self, scope: &Scope) -> Vec<HostRef> {
        self.all_hosts()
            .into_iter()
            .filter(|h| self.in_business(scope, h))
            .collect()
    }

    fn host_config(&self, host: &HostRef) -> Option<&crate::config::HostConfig> {
        self.config.hosts.iter().find(|h| {
            parse_host_str(&h.host).is_some_and(|(c, ip)| c == host.cloud && ip == host.ip)
        })
    }

    pub(crate) fn agent(&self, host: &HostRef) -> Agent {
        match self.host_config(host).and_then(|h| h.agent.as_deref()) {
            Some("down") => Agent::Down,
            Some("not_installed") => Agent::NotInstalled,
            _ => Agent::Alive,
        }
    }

    /// For a `flaky_jobs` host: whether this job still sees its agent as abnormal (each call
    /// uses up one job).
    pub(crate) fn take_flaky(&self, host: &HostRef) -> bool {
        let Ok(mut f) = self.flaky.lock() else {
            return false;
        };
        match f.get_mut(&(host.cloud, host.ip.clone())) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn account_missing_on(&self, host: &HostRef, alias: &str) -> bool {
        self.host_config(host)
            .is_some_and(|h| h.missing_accounts.iter().any(|a| a == alias))
    }

    pub(crate) fn host_stuck(&self, host: &HostRef) -> bool {
        self.host_config(host).is_some_and(|h| h.stuck)
    }

    pub(crate) fn host_silent(&self, host: &HostRef) -> bool {
        self.host_config(host).is_some_and(|h| h.silent)
    }

    /// The `corrupt_deliveries` fault: files delivered to this host arrive altered.
    pub(crate) fn host_corrupts(&self, host: &HostRef) -> bool {
        self.host_config(host).is_some_and(|h| h.corrupt_deliveries)
    }
}

/// A stable id for an alias when no accounts are configured (so v3 responses carry one).
fn synthetic_account_id(alias: &str) -> u64 {
    alias.bytes().fold(1000u64, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b))
    }) % 1_000_000
        + 1
}
