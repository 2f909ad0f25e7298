//! The BlueKing CMDB (bk-cmdb) APIs a review resolves hosts with: `execute_dynamic_group`
//! (a dynamic group's hosts), `find_host_by_topo` (the hosts below a set, module or custom
//! topology node) and `list_biz_hosts` (a whole business, the `biz` node). Their paths behind
//! ESB (`/api/c/compapi/v2/cc/<api>/`) and the API gateway (`/api/bk-cmdb/<stage>/api/v3/...`),
//! their request bodies and the host page they answer, shared by the client and `jobsim`.
//!
//! JOB itself expands a topology node by reading the business's topology
//! (`search_biz_inst_topo`, `get_biz_internal_module`), collecting the modules below the node
//! and listing their hosts (`find_module_host_relation`); `find_host_by_topo` answers the same
//! host set in one call per node, which is all a review needs.

use serde::{Deserialize, Serialize};

use crate::lenient::null_default;
use crate::routes::FrontDoor;

/// ESB's CMDB components path.
const ESB_CC: &str = "/api/c/compapi/v2/cc";

/// The host fields a review asks for.
pub const HOST_FIELDS: [&str; 4] = [
    "bk_host_id",
    "bk_cloud_id",
    "bk_host_innerip",
    "bk_host_innerip_v6",
];

/// CMDB's common error codes (`CCErrCommParamsNeedSet`, `CCErrCommParamsInvalid`,
/// `CCErrCommNotFound`, `CCErrCommPageLimitIsExceeded`).
pub mod cc_code {
    /// A required parameter is missing.
    pub const PARAMS_NEED_SET: i64 = 1_199_001;
    /// A parameter is invalid.
    pub const PARAMS_INVALID: i64 = 1_199_006;
    /// The object does not exist.
    pub const NOT_FOUND: i64 = 1_199_019;
    /// `page.limit` above the API's maximum.
    pub const PAGE_LIMIT_EXCEEDED: i64 = 1_199_077;
}

/// One CMDB API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmdbApi {
    /// The hosts of a dynamic group (`id`).
    ExecuteDynamicGroup,
    /// The hosts below a topology node other than `biz` (`bk_obj_id`, `bk_inst_id`).
    FindHostByTopo,
    /// Every host of a business.
    ListBizHosts,
}

/// What a CMDB path names: the API and, on the gateway, the ids in its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdbCall {
    /// The front door.
    pub door: FrontDoor,
    /// The API.
    pub api: CmdbApi,
    /// `{bk_biz_id}` of a gateway path.
    pub path_biz_id: Option<String>,
    /// `{id}` of the gateway's `execute_dynamic_group` path.
    pub path_group_id: Option<String>,
}

impl CmdbApi {
    /// Every API.
    pub const ALL: [CmdbApi; 3] = [
        CmdbApi::ExecuteDynamicGroup,
        CmdbApi::FindHostByTopo,
        CmdbApi::ListBizHosts,
    ];

    /// The API's name.
    pub fn name(self) -> &'static str {
        match self {
            CmdbApi::ExecuteDynamicGroup => "execute_dynamic_group",
            CmdbApi::FindHostByTopo => "find_host_by_topo",
            CmdbApi::ListBizHosts => "list_biz_hosts",
        }
    }

    /// The largest `page.limit` CMDB takes.
    pub fn max_page(self) -> u64 {
        match self {
            CmdbApi::ExecuteDynamicGroup => 200,
            CmdbApi::FindHostByTopo | CmdbApi::ListBizHosts => 500,
        }
    }

    /// The path behind a front door, relative to ESB's base URL or to the CMDB gateway's
    /// (`.../api/bk-cmdb/<stage>`). Every one is a POST.
    pub fn path(self, door: FrontDoor, bk_biz_id: i64, group_id: &str) -> String {
        match door {
            FrontDoor::Esb => format!("{ESB_CC}/{}/", self.name()),
            FrontDoor::Gateway => match self {
                CmdbApi::ExecuteDynamicGroup => {
                    format!("/api/v3/dynamicgroup/data/{bk_biz_id}/{group_id}")
                }
                CmdbApi::FindHostByTopo => {
                    format!("/api/v3/findmany/hosts/by_topo/biz/{bk_biz_id}")
                }
                CmdbApi::ListBizHosts => format!("/api/v3/hosts/app/{bk_biz_id}/list_hosts"),
            },
        }
    }

    /// Reads a request path: ESB's `/api/c/compapi/v2/cc/<api>/` or the CMDB gateway's
    /// `/api/bk-cmdb/<stage>/api/v3/...`. `None` for any other path.
    pub fn parse(path: &str) -> Option<CmdbCall> {
        if let Some(rest) = path.strip_prefix(ESB_CC) {
            let name = rest.trim_matches('/');
            let api = CmdbApi::ALL.into_iter().find(|a| a.name() == name)?;
            return Some(CmdbCall {
                door: FrontDoor::Esb,
                api,
                path_biz_id: None,
                path_group_id: None,
            });
        }
        let rest = path.strip_prefix("/api/bk-cmdb/")?;
        let (_stage, rest) = rest.split_once('/')?;
        let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
        let call = |api, biz: &str, group: Option<&str>| CmdbCall {
            door: FrontDoor::Gateway,
            api,
            path_biz_id: Some(biz.to_owned()),
            path_group_id: group.map(str::to_owned),
        };
        match parts.as_slice() {
            ["api", "v3", "dynamicgroup", "data", biz, id] => {
                Some(call(CmdbApi::ExecuteDynamicGroup, biz, Some(id)))
            }
            ["api", "v3", "findmany", "hosts", "by_topo", "biz", biz] => {
                Some(call(CmdbApi::FindHostByTopo, biz, None))
            }
            ["api", "v3", "hosts", "app", biz, "list_hosts"] => {
                Some(call(CmdbApi::ListBizHosts, biz, None))
            }
            _ => None,
        }
    }
}

/// `page` of a CMDB list request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// Offset of the first record.
    pub start: u64,
    /// Records per page.
    pub limit: u64,
}

/// `execute_dynamic_group` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecuteDynamicGroupRequest {
    /// Business.
    pub bk_biz_id: i64,
    /// The dynamic group id.
    pub id: String,
    /// Host fields to return.
    pub fields: Vec<String>,
    /// Page.
    pub page: Page,
}

/// `find_host_by_topo` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindHostByTopoRequest {
    /// Business.
    pub bk_biz_id: i64,
    /// The node's object: `set`, `module` or a custom mainline object (not `biz`).
    pub bk_obj_id: String,
    /// The node's instance id.
    pub bk_inst_id: i64,
    /// Host fields to return.
    pub fields: Vec<String>,
    /// Page.
    pub page: Page,
}

/// `list_biz_hosts` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListBizHostsRequest {
    /// Business.
    pub bk_biz_id: i64,
    /// Host fields to return.
    pub fields: Vec<String>,
    /// Page.
    pub page: Page,
}

/// `data` of the three APIs: one page of hosts and how many there are in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPage {
    /// Hosts matching, over every page.
    #[serde(default, deserialize_with = "null_default")]
    pub count: u64,
    /// This page.
    #[serde(default, deserialize_with = "null_default")]
    pub info: Vec<CmdbHost>,
}

/// A host as CMDB describes it (the fields of [`HOST_FIELDS`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CmdbHost {
    /// CMDB host id.
    #[serde(default, deserialize_with = "null_default")]
    pub bk_host_id: i64,
    /// BK-Net.
    #[serde(default, deserialize_with = "null_default")]
    pub bk_cloud_id: i64,
    /// Inner IPv4 address(es), comma-separated when several; empty for an IPv6-only host.
    #[serde(default, deserialize_with = "null_default")]
    pub bk_host_innerip: String,
    /// Inner IPv6 address(es).
    #[serde(default, deserialize_with = "null_default")]
    pub bk_host_innerip_v6: String,
}

impl CmdbHost {
    /// `cloud:ip` for a host with an IPv4 address (its first), `cloud:[v6]` for an
    /// IPv6-only host, `host_id:N` for a host with neither.
    pub fn address(&self) -> String {
        let first = |list: &str| {
            list.split(',')
                .map(str::trim)
                .find(|a| !a.is_empty())
                .map(str::to_owned)
        };
        match (
            first(&self.bk_host_innerip),
            first(&self.bk_host_innerip_v6),
        ) {
            (Some(v4), _) => format!("{}:{v4}", self.bk_cloud_id),
            (None, Some(v6)) => format!("{}:[{v6}]", self.bk_cloud_id),
            (None, None) => format!("host_id:{}", self.bk_host_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_parses_back_to_its_api() {
        for api in CmdbApi::ALL {
            for door in [FrontDoor::Esb, FrontDoor::Gateway] {
                let path = api.path(door, 2, "g1");
                let full = match door {
                    FrontDoor::Esb => path,
                    FrontDoor::Gateway => format!("/api/bk-cmdb/prod{path}"),
                };
                let call = CmdbApi::parse(&full).unwrap_or_else(|| panic!("{full}"));
                assert_eq!((call.api, call.door), (api, door), "{full}");
                if door == FrontDoor::Gateway {
                    assert_eq!(call.path_biz_id.as_deref(), Some("2"));
                }
            }
        }
        assert_eq!(
            CmdbApi::parse("/api/c/compapi/v2/cc/search_business/"),
            None
        );
        assert_eq!(
            CmdbApi::parse("/api/c/compapi/v2/jobv3/fast_transfer_file/"),
            None
        );
    }

    #[test]
    fn a_host_reads_as_its_first_address() {
        let host = |v4: &str, v6: &str| CmdbHost {
            bk_host_id: 7,
            bk_cloud_id: 2,
            bk_host_innerip: v4.into(),
            bk_host_innerip_v6: v6.into(),
        };
        assert_eq!(host("10.0.0.1,10.0.0.2", "").address(), "2:10.0.0.1");
        assert_eq!(host("", "fd00::1").address(), "2:[fd00::1]");
        assert_eq!(host("", "").address(), "host_id:7");
    }
}
