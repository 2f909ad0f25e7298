//! The two API families of JOB's file distribution: v2 (`job/`, ESB only) and v3 (`jobv3/` on
//! ESB, `api/v3/` on the API gateway). Their request and answer shapes differ; a job is
//! always asked about through the family that created it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A JOB API family, `"v2"` or `"v3"` on the wire, in plans and on the command line.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    /// ESB `job/` (`fast_push_file`): the default.
    #[default]
    V2,
    /// `jobv3/` on ESB or the API gateway (`fast_transfer_file`).
    V3,
}

impl ApiVersion {
    /// `"v2"` or `"v3"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V2 => "v2",
            ApiVersion::V3 => "v3",
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not `v2` or `v3`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown JOB API version `{0}` (expected `v2` or `v3`)")]
pub struct UnknownApiVersion(pub String);

impl FromStr for ApiVersion {
    type Err = UnknownApiVersion;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "v2" => Ok(ApiVersion::V2),
            "v3" => Ok(ApiVersion::V3),
            other => Err(UnknownApiVersion(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_their_names_everywhere() {
        for version in [ApiVersion::V2, ApiVersion::V3] {
            let json = serde_json::to_string(&version).expect("json");
            assert_eq!(json, format!("\"{version}\""));
            assert_eq!(version.as_str().parse::<ApiVersion>(), Ok(version));
        }
        assert_eq!(ApiVersion::default(), ApiVersion::V2);
        assert!("V3".parse::<ApiVersion>().is_err());
    }
}
