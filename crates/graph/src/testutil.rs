//! Builds [`Plan`] values by hand for unit tests: every located value gets its own span.

use std::collections::BTreeMap;

use plan_parser::{
    ApiVersion, FileEntry, FileId, HostAddr, HostGroup, HostRef, HostSet, Located, Origin, Plan,
    Push, Setting, Source, SourceFiles, Span, Target, TopoNode,
};

/// A plan under construction.
pub(crate) struct TestPlan {
    plan: Plan,
    next: usize,
}

/// A plan named `test`, business 2, API v2, no pushes.
pub(crate) fn plan() -> TestPlan {
    let mut sources = SourceFiles::default();
    sources.add("test.toml", "x".repeat(100_000));
    TestPlan {
        plan: Plan {
            name: Located {
                value: "test".into(),
                span: Span::new(FileId::MAIN, 0..1),
            },
            description: None,
            bk_biz_id: Located {
                value: 2,
                span: Span::new(FileId::MAIN, 1..2),
            },
            scope_type: plan_parser::ScopeType::Biz,
            api: ApiVersion::V2,
            task_prefix: None,
            vars: BTreeMap::new(),
            groups: BTreeMap::new(),
            pushes: Vec::new(),
            sources,
        },
        next: 10,
    }
}

/// Parses a selector: `10.0.0.1`, `1:10.0.0.1`, `dyn:ID`, `module:1000`.
fn selector(set: &mut HostSet, s: &str) {
    if let Some(id) = s.strip_prefix("dyn:") {
        set.dynamic_groups.push(id.to_owned());
    } else if let Some((kind, id)) = s.split_once(':')
        && !kind.chars().all(|c| c.is_ascii_digit())
    {
        set.topo_nodes.push(TopoNode {
            node_type: kind.to_owned(),
            id: id.parse().expect("topo id"),
        });
    } else {
        let (cloud, ip) = s.split_once(':').unwrap_or(("0", s));
        set.ips.push(HostAddr {
            cloud_id: cloud.parse().expect("cloud"),
            ip: ip.parse().expect("ip"),
        });
    }
}

impl TestPlan {
    fn span(&mut self) -> Span {
        let start = self.next;
        self.next += 10;
        Span::new(FileId::MAIN, start..start + 5)
    }

    fn located<T>(&mut self, value: T) -> Located<T> {
        Located {
            value,
            span: self.span(),
        }
    }

    /// Defines a host group from selectors.
    pub(crate) fn group(mut self, name: &str, selectors: &[&str]) -> Self {
        self.add_group(name, selectors);
        self
    }

    fn add_group(&mut self, name: &str, selectors: &[&str]) {
        let mut hosts = HostSet::default();
        for s in selectors {
            selector(&mut hosts, s);
        }
        let span = self.span();
        self.plan.groups.insert(
            name.to_owned(),
            HostGroup {
                name: name.to_owned(),
                span,
                hosts,
            },
        );
    }

    /// Uses API v3.
    pub(crate) fn v3(mut self) -> Self {
        self.plan.api = ApiVersion::V3;
        self
    }

    /// `hosts = [...]`: each item a group name or a host selector.
    fn hosts(&mut self, refs: &[&str]) -> (Vec<HostRef>, HostSet) {
        let mut set = HostSet::default();
        let mut host_refs = Vec::new();
        for r in refs {
            let is_ip = r
                .split(':')
                .next_back()
                .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok());
            if !is_ip && !self.plan.groups.contains_key(*r) {
                // A dynamic group or topo node written inline: an implicit group of that name.
                self.add_group(r, &[r]);
            }
            if let Some(group) = self.plan.groups.get(*r) {
                let g = group.hosts.clone();
                for ip in g.ips {
                    if !set.ips.contains(&ip) {
                        set.ips.push(ip);
                    }
                }
                for d in g.dynamic_groups {
                    if !set.dynamic_groups.contains(&d) {
                        set.dynamic_groups.push(d);
                    }
                }
                for t in g.topo_nodes {
                    if !set.topo_nodes.contains(&t) {
                        set.topo_nodes.push(t);
                    }
                }
                host_refs.push(HostRef::Group(self.located((*r).to_owned())));
            } else {
                let mut one = HostSet::default();
                selector(&mut one, r);
                let addr = one.ips.first().copied().expect("host string");
                if !set.ips.contains(&addr) {
                    set.ips.push(addr);
                }
                host_refs.push(HostRef::Host(self.located(addr)));
            }
        }
        (host_refs, set)
    }

    fn account(&mut self) -> Setting<String> {
        Setting {
            value: "root".into(),
            origin: Origin::Plan,
            span: self.span(),
        }
    }

    /// Adds a push with one source per `from` item.
    pub(crate) fn push(
        mut self,
        name: &str,
        from: &[(&[&str], &[&str])],
        to: (&[&str], &str),
        after: &[&str],
    ) -> Self {
        let push_span = self.span();
        let name = self.located(name.to_owned());
        let mut sources = Vec::new();
        for (hosts, files) in from {
            let span = self.span();
            let (host_refs, hosts) = self.hosts(hosts);
            let files = files
                .iter()
                .map(|f| FileEntry {
                    path: (*f).to_owned(),
                    span: self.span(),
                })
                .collect();
            let account = self.account();
            sources.push(Source {
                host_refs,
                hosts,
                files,
                account,
                account_id: None,
                file_source: None,
                span,
            });
        }
        let target_span = self.span();
        let (host_refs, hosts) = self.hosts(to.0);
        let path = self.located(to.1.to_owned());
        let account = self.account();
        let after = after
            .iter()
            .map(|a| self.located((*a).to_owned()))
            .collect();
        let index = self.plan.pushes.len();
        self.plan.pushes.push(Push {
            name,
            index,
            span: push_span,
            sources,
            target: Target {
                host_refs,
                hosts,
                path,
                file_target_name: None,
                account,
                account_id: None,
                span: target_span,
            },
            after,
            timeout: None,
            upload_speed_limit: None,
            download_speed_limit: None,
            transfer_mode: None,
            retries: 0,
            enabled: true,
            release: Default::default(),
        });
        self
    }

    /// Changes the last push.
    pub(crate) fn with_last(mut self, f: impl FnOnce(&mut Push)) -> Self {
        if let Some(p) = self.plan.pushes.last_mut() {
            f(p);
        }
        self
    }

    /// The plan.
    pub(crate) fn build(self) -> Plan {
        self.plan
    }
}
