//! Host selectors shared by both API versions.

use serde::{Deserialize, Serialize};

use crate::lenient::null_default;

/// A host by BK-Net and address: `{"bk_cloud_id": 0, "ip": "10.0.0.1"}`.
///
/// Responses may add `bk_host_id` and other fields; requests from plans send only the pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IpHost {
    /// BK-Net (cloud area) id.
    #[serde(default, deserialize_with = "null_default")]
    pub bk_cloud_id: i64,
    /// The address as text (IPv4; IPv6 for hosts that have one).
    #[serde(default, deserialize_with = "null_default")]
    pub ip: String,
    /// CMDB host id, present in some responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bk_host_id: Option<i64>,
}

impl IpHost {
    /// A host selector without a host id.
    pub fn new(bk_cloud_id: i64, ip: impl Into<String>) -> Self {
        IpHost {
            bk_cloud_id,
            ip: ip.into(),
            bk_host_id: None,
        }
    }
}

impl std::fmt::Display for IpHost {
    /// `cloud:ip`, with IPv6 in brackets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ip.contains(':') {
            write!(f, "{}:[{}]", self.bk_cloud_id, self.ip)
        } else {
            write!(f, "{}:{}", self.bk_cloud_id, self.ip)
        }
    }
}

/// A CMDB topology node: `{"id": 1000, "node_type": "module"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopoNodeRef {
    /// `bk_inst_id`.
    pub id: i64,
    /// `bk_obj_id`: `biz`, `set`, `module` or a custom mainline object.
    pub node_type: String,
}

/// A v3 dynamic group reference: `{"id": "<group id>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DynamicGroup {
    /// The CMDB dynamic group id.
    pub id: String,
}

/// `bk_scope_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeType {
    /// A business.
    Biz,
    /// A business set.
    BizSet,
}

impl ScopeType {
    /// `"biz"` or `"biz_set"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeType::Biz => "biz",
            ScopeType::BizSet => "biz_set",
        }
    }
}

/// The scope JOB derives from a bare `bk_biz_id`: ids 8000000..=9999999 are business sets.
pub fn scope_for_biz(bk_biz_id: i64) -> ScopeType {
    if (8_000_000..=9_999_999).contains(&bk_biz_id) {
        ScopeType::BizSet
    } else {
        ScopeType::Biz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn biz_set_range_follows_job() {
        assert_eq!(scope_for_biz(2), ScopeType::Biz);
        assert_eq!(scope_for_biz(7_999_999), ScopeType::Biz);
        assert_eq!(scope_for_biz(8_000_000), ScopeType::BizSet);
        assert_eq!(scope_for_biz(9_999_999), ScopeType::BizSet);
        assert_eq!(scope_for_biz(10_000_000), ScopeType::Biz);
    }

    #[test]
    fn ip_host_accepts_nulls_and_extra_fields() {
        let host: IpHost = serde_json::from_str(
            r#"{"bk_cloud_id": null, "ip": "10.0.0.1", "bk_host_id": 7, "alive": 1}"#,
        )
        .expect("lenient host");
        assert_eq!(host.bk_cloud_id, 0);
        assert_eq!(host.bk_host_id, Some(7));
        assert_eq!(host.to_string(), "0:10.0.0.1");
    }
}
