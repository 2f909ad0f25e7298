//! What can go wrong talking to JOB, classified the way a client must act on it (§13).

use std::time::Duration;

use crate::codes::{ErrorClass, classify_code, code};

/// How a request failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The connection could not be made: the request was certainly not sent.
    Connect,
    /// No answer in time: the request may have been received and acted on.
    Timeout,
    /// The connection broke, or the answer could not be read: the request may have been acted on.
    Other,
}

/// A failed API call, after the client's own retries.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// DNS, TCP, TLS, timeout or a broken connection.
    #[error("`{api}`: cannot reach {url}: {message}")]
    Transport {
        /// The API called.
        api: String,
        /// The URL without query (never carries credentials).
        url: String,
        /// What happened.
        kind: TransportKind,
        /// The underlying error text.
        message: String,
    },
    /// A non-2xx answer from the API gateway (a body with `code_name`) or another front end.
    #[error("`{api}`: HTTP {status}{}: {message}", code.map(|c| format!(" (code {c}{})", code_name.as_deref().map(|n| format!(" {n}")).unwrap_or_default())).unwrap_or_default())]
    Http {
        /// The API called.
        api: String,
        /// HTTP status.
        status: u16,
        /// Gateway code (`1640001`, `1650300`, ...), when the body had one.
        code: Option<i64>,
        /// Gateway code name (`INVALID_ARGS`, ...).
        code_name: Option<String>,
        /// The gateway message or a short excerpt of the body.
        message: String,
        /// How long the server asked us to wait (429 `Retry-After` / `X-Bkapi-RateLimit-Reset`).
        retry_after: Option<Duration>,
    },
    /// HTTP 200 with `result: false`: a JOB or ESB error code.
    #[error("`{api}`: {} (code {code})", if message.is_empty() { "error" } else { message.as_str() })]
    Api {
        /// The API called.
        api: String,
        /// JOB / ESB code.
        code: i64,
        /// The server's message (language depends on the deployment).
        message: String,
        /// IAM details on `9900403`.
        permission: Option<Box<serde_json::Value>>,
    },
    /// A 3xx: the endpoint sent the call somewhere else. Redirects are never followed (the
    /// credentials would go along, to a host nobody configured), so the call reached no JOB
    /// through this endpoint: a definitive error, never retried.
    #[error("`{api}`: the endpoint answered HTTP {status}, a redirect to {}; plan does not follow redirects (the credentials would go along): give the URL JOB answers on as --endpoint", location.as_deref().map_or_else(|| "nowhere (no Location)".to_owned(), |l| format!("`{l}`")))]
    Redirect {
        /// The API called.
        api: String,
        /// HTTP status (301, 302, 303, 307, 308, ...).
        status: u16,
        /// The `Location` header, scrubbed, when there was one.
        location: Option<String>,
    },
    /// The answer was not the JSON expected.
    #[error("`{api}`: unexpected response: {message}")]
    Decode {
        /// The API called.
        api: String,
        /// What was wrong.
        message: String,
    },
}

impl ApiError {
    /// The API the call was for.
    pub fn api(&self) -> &str {
        match self {
            ApiError::Transport { api, .. }
            | ApiError::Http { api, .. }
            | ApiError::Api { api, .. }
            | ApiError::Redirect { api, .. }
            | ApiError::Decode { api, .. } => api,
        }
    }

    /// The JOB / ESB / gateway code, when there is one.
    pub fn code(&self) -> Option<i64> {
        match self {
            ApiError::Api { code, .. } => Some(*code),
            ApiError::Http { code, .. } => *code,
            _ => None,
        }
    }

    /// The class of the error (§13).
    pub fn class(&self) -> ErrorClass {
        match self {
            // Retrying a handshake the certificate failed only repeats the failure.
            ApiError::Transport { .. } if self.is_certificate_error() => ErrorClass::Other,
            ApiError::Transport { .. } => ErrorClass::Retryable,
            ApiError::Http { status, code, .. } => match (status, code) {
                (429 | 502..=504, _) => ErrorClass::Retryable,
                (_, Some(c)) => classify_code(*c),
                (400 | 401 | 403, None) => ErrorClass::Auth,
                (404, None) => ErrorClass::NotFoundOrPermission,
                (500..=599, None) => ErrorClass::Internal,
                _ => ErrorClass::Other,
            },
            ApiError::Api { code, .. } => classify_code(*code),
            ApiError::Redirect { .. } | ApiError::Decode { .. } => ErrorClass::Other,
        }
    }

    /// The answer says the URL is not BK-JOB's: an HTTP 404 or 405 (ESB's "The content does
    /// not exist" without a code, the gateway's `1640401` API_NOT_FOUND, any other web
    /// server's page), ESB's `1306404` (no such component), a redirect, or a body that is not
    /// JOB's JSON envelope. JOB itself answers its own
    /// errors, "Task instance does not exist" included, inside an envelope.
    pub fn is_not_bk_job(&self) -> bool {
        match self {
            ApiError::Http { status, .. } => matches!(status, 404 | 405),
            ApiError::Redirect { .. } | ApiError::Decode { .. } => true,
            // ESB's "component not found": this ESB has no such JOB API (e.g. no `jobv3/`).
            ApiError::Api { code, .. } => *code == 1_306_404,
            ApiError::Transport { .. } => false,
        }
    }

    /// Worth retrying an idempotent call (a query): connect errors, timeouts, broken
    /// connections, 429, 502-504, `1306429`, `1306201`, `1240001` and the gateway's rate-limit
    /// and upstream codes.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    /// Worth re-sending a *submission*: only when the server certainly did not act on it.
    ///
    /// A connect error means nothing was sent; 429 / `1306429` / `1642xxx` are rejections in
    /// front of JOB; 503 / `1650300` is the gateway refusing; `1240001` is JOB answering that it
    /// did not take the request. A timeout, a broken connection, 502, 504 or ESB's `1306201`
    /// may come after JOB created the job, so they are *not* retried (see
    /// [`ApiError::submission_outcome_unknown`]).
    pub fn submission_is_safe_to_retry(&self) -> bool {
        match self {
            ApiError::Transport { kind, .. } => {
                *kind == TransportKind::Connect && !self.is_certificate_error()
            }
            ApiError::Http { status, code, .. } => {
                matches!(status, 429 | 503)
                    || matches!(code, Some(c) if (1_642_900..=1_642_999).contains(c) || *c == 1_650_300)
            }
            ApiError::Api { code: c, .. } => {
                *c == code::ESB_RATE_LIMITED || *c == code::SERVICE_UNAVAILABLE
            }
            // A redirect is not followed, and not sent again to the same place either.
            ApiError::Redirect { .. } | ApiError::Decode { .. } => false,
        }
    }

    /// True when a submission failed in a way that leaves open whether JOB created the job:
    /// the response was lost (timeout, reset), or a front end reported an upstream failure
    /// after forwarding (502, 504, 500 without a JOB body, `1306201`, `1240002`).
    pub fn submission_outcome_unknown(&self) -> bool {
        match self {
            ApiError::Transport { kind, .. } => *kind != TransportKind::Connect,
            ApiError::Http { status, .. } => {
                !self.submission_is_safe_to_retry()
                    && (*status == 502 || *status == 504 || *status >= 500)
            }
            ApiError::Api { code: c, .. } => {
                *c == code::ESB_THIRD_PARTY_ERROR || *c == code::INTERNAL_ERROR
            }
            // The endpoint answered itself, without passing the call on to JOB.
            ApiError::Redirect { .. } => false,
            // A 200 whose body we could not read (or too large to read, or holding an
            // impossible job id): JOB may well have created the job.
            ApiError::Decode { .. } => true,
        }
    }

    /// The TLS handshake failed because the server's certificate was not accepted (unknown
    /// or private CA, self-signed, expired, issued for another name): retrying cannot help;
    /// trusting the right CA can.
    pub fn is_certificate_error(&self) -> bool {
        match self {
            ApiError::Transport { message, .. } => {
                let m = message.to_ascii_lowercase();
                m.contains("invalid peer certificate")
                    || m.contains("certificate verify failed")
                    || m.contains("unknownissuer")
                    || m.contains("self-signed certificate")
                    || m.contains("self signed certificate")
            }
            _ => false,
        }
    }

    /// How long the server asked the client to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The IAM action names of a `9900403` permission denial (to tell the user what to apply for).
    pub fn permission_actions(&self) -> Vec<String> {
        let ApiError::Api {
            permission: Some(p),
            ..
        } = self
        else {
            return Vec::new();
        };
        p.get("actions")
            .and_then(|a| a.as_array())
            .map(|actions| {
                actions
                    .iter()
                    .filter_map(|a| {
                        a.get("name")
                            .or_else(|| a.get("id"))
                            .and_then(|n| n.as_str())
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl ApiError {
    /// What a user can do about an error `code` JOB, ESB or the gateway answered (after the
    /// client's own retries), by the code's class (bk-job-api.md §9, §13); `None` when the
    /// code says nothing a user can act on.
    pub fn advice_for_code(value: i64) -> Option<&'static str> {
        use crate::codes::code::*;
        Some(match value {
            BK_PERMISSION_DENIED | PERMISSION_DENIED | ACCOUNT_NO_PERMISSION => {
                "the user lacks a permission in JOB (IAM): apply for the permission the message names, then rerun with `--resume`"
            }
            FILE_TASKS_EXCEEDS_LIMIT => {
                "one job may hold at most JOB's file-task limit (source hosts x files x target hosts): split the push into smaller ones"
            }
            RUNNING_JOB_EXCEED_RESOURCE_SCOPE_QUOTA
            | RUNNING_JOB_EXCEED_APP_QUOTA
            | RUNNING_JOB_EXCEED_SYSTEM_QUOTA => {
                "JOB's running-job quota is full: rerun with `--resume` when jobs have finished, or lower `--parallelism`"
            }
            TASK_ABANDONED => "JOB abandoned the job: rerun with `--resume`",
            _ => match classify_code(value) {
                ErrorClass::Auth => {
                    "ESB or the API gateway refused the call: check BK_APP_CODE, BK_APP_SECRET, the user credential and the app's grants"
                }
                ErrorClass::Validation => {
                    "JOB finds the request invalid, so sending it again cannot succeed: fix the push (`plan show` prints the exact body sent)"
                }
                ErrorClass::NotFoundOrPermission => {
                    "something the push names is unknown to JOB in this business (host, account, business or job): check the plan against CMDB and JOB's accounts"
                }
                ErrorClass::Retryable => {
                    "JOB stayed unavailable or rate-limited through every retry: rerun with `--resume` later"
                }
                ErrorClass::Capacity | ErrorClass::Internal | ErrorClass::Other => return None,
            },
        })
    }
}

/// The client could not be built or the endpoint is not a usable URL.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The endpoint is not an absolute http(s) URL.
    #[error("endpoint `{url}` is not a valid http(s) URL: {reason}")]
    Endpoint {
        /// The URL as given.
        url: String,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be created (TLS setup).
    #[error("cannot create the HTTP client: {0}")]
    Http(String),
    /// A CA certificate given to trust is unusable.
    #[error("cannot use the CA certificate: {0}")]
    Tls(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, code: Option<i64>) -> ApiError {
        ApiError::Http {
            api: "fast_push_file".into(),
            status,
            code,
            code_name: None,
            message: String::new(),
            retry_after: None,
        }
    }

    fn api(code: i64) -> ApiError {
        ApiError::Api {
            api: "fast_push_file".into(),
            code,
            message: String::new(),
            permission: None,
        }
    }

    #[test]
    fn submission_retry_only_when_nothing_happened() {
        assert!(http(429, Some(1_642_902)).submission_is_safe_to_retry());
        assert!(http(503, None).submission_is_safe_to_retry());
        assert!(api(1_306_429).submission_is_safe_to_retry());
        assert!(api(1_240_001).submission_is_safe_to_retry());
        for unknown in [
            http(502, None),
            http(504, Some(1_650_401)),
            api(1_306_201),
            api(1_240_002),
        ] {
            assert!(!unknown.submission_is_safe_to_retry(), "{unknown}");
            assert!(unknown.submission_outcome_unknown(), "{unknown}");
        }
        assert!(!api(1_244_030).submission_outcome_unknown());
        assert!(!api(1_244_030).is_retryable());
        let timeout = ApiError::Transport {
            api: "fast_push_file".into(),
            url: "http://x".into(),
            kind: TransportKind::Timeout,
            message: "timed out".into(),
        };
        assert!(timeout.is_retryable());
        assert!(timeout.submission_outcome_unknown());
    }

    #[test]
    fn permission_actions_are_listed() {
        let e = ApiError::Api {
            api: "fast_push_file".into(),
            code: 9_900_403,
            message: "denied".into(),
            permission: Some(Box::new(
                serde_json::json!({"actions": [{"id": "quick_transfer_file", "name": "Quick file transfer"}]}),
            )),
        };
        assert_eq!(e.permission_actions(), vec!["Quick file transfer"]);
        assert_eq!(e.class(), ErrorClass::NotFoundOrPermission);
    }
}
