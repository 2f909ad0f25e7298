//! The response envelope (`EsbResp`, plus ESB's additions) and the gateway's error body.

use serde::{Deserialize, Serialize};

use crate::lenient::null_default;

/// Every JOB response: `{result, code, message, data, job_request_id, request_id, permission}`.
///
/// Missing and `null` mean the same for every field: JOB omits `message` on success and `data`
/// on errors, only ESB adds `request_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// `true` iff `code == 0`.
    #[serde(default, deserialize_with = "null_default")]
    pub result: bool,
    /// 0 on success, else a JOB/ESB code.
    #[serde(default, deserialize_with = "null_default")]
    pub code: i64,
    /// Human text for the code (language depends on the deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The payload.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    /// JOB's own request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_request_id: Option<String>,
    /// ESB's request id (absent through the API gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// IAM details on code 9900403.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<serde_json::Value>,
}

fn none<T>() -> Option<T> {
    None
}

/// The API gateway's own error body (non-200 statuses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayErrorBody {
    /// E.g. `INVALID_ARGS`, `APP_NO_PERMISSION`, `RATE_LIMIT_RESTRICTION`.
    #[serde(default, deserialize_with = "null_default")]
    pub code_name: String,
    /// E.g. 1640001.
    #[serde(default, deserialize_with = "null_default")]
    pub code: i64,
    /// E.g. `Parameters error [reason="app code cannot be empty"]`.
    #[serde(default, deserialize_with = "null_default")]
    pub message: String,
    /// Always false.
    #[serde(default, deserialize_with = "null_default")]
    pub result: bool,
    /// Always null.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_without_data_and_success_without_message_parse() {
        let err: Envelope<serde_json::Value> =
            serde_json::from_str(r#"{"result":false,"code":1244006,"message":"Task instance does not exist","job_request_id":"x"}"#)
                .expect("error envelope");
        assert!(err.data.is_none());
        assert_eq!(err.code, 1_244_006);
        let ok: Envelope<serde_json::Value> =
            serde_json::from_str(r#"{"result":true,"code":0,"data":{"a":1},"job_request_id":"y"}"#)
                .expect("success envelope");
        assert!(ok.message.is_none());
        assert!(ok.data.is_some());
    }
}
