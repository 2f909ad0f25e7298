//! The two front doors (ESB and the API gateway): authentication, envelopes and the
//! front-door-specific error shapes (bk-job-api.md §1.2-§1.4).

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use plan_bkjob::code;

use crate::coerce::Params;
use crate::config::Config;

/// Which door a request came through.
pub(crate) use plan_bkjob::routes::FrontDoor as Front;

/// JOB's own answer, before the front door wraps it.
#[derive(Debug, Clone)]
pub(crate) enum JobReply {
    Ok(Value),
    Err { code: i64, message: String },
}

impl JobReply {
    pub(crate) fn err(code: i64, message: impl Into<String>) -> Self {
        Self::Err {
            code,
            message: message.into(),
        }
    }
}

pub(crate) fn hex_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A finished HTTP answer plus what the request log needs to know about it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Option<Value>,
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub(crate) fn code(&self) -> Option<i64> {
        self.body
            .as_ref()
            .and_then(|b| b.get("code"))
            .and_then(Value::as_i64)
    }
    pub(crate) fn into_response(self) -> Response {
        let mut resp = match &self.body {
            Some(b) => (self.status, axum::Json(b.clone())).into_response(),
            None => self.status.into_response(),
        };
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(k, v);
            }
        }
        resp
    }
}

/// Wraps JOB's reply for the front door (§1.3).
pub(crate) fn wrap(front: Front, reply: JobReply) -> Answer {
    let job_request_id = hex_id();
    let mut m = Map::new();
    match front {
        Front::Esb => {
            // ESB fills in defaults for the keys JOB omitted.
            let (code, message, data) = match reply {
                JobReply::Ok(d) => (code::OK, String::new(), d),
                JobReply::Err { code, message } => (code, message, Value::Null),
            };
            m.insert("result".into(), json!(code == code::OK));
            m.insert("code".into(), json!(code));
            m.insert("message".into(), json!(message));
            m.insert("data".into(), data);
            m.insert("job_request_id".into(), json!(job_request_id));
            m.insert("request_id".into(), json!(hex_id()));
            Answer {
                status: StatusCode::OK,
                body: Some(Value::Object(m)),
                headers: vec![],
            }
        }
        Front::Gateway => {
            match reply {
                JobReply::Ok(d) => {
                    m.insert("result".into(), json!(true));
                    m.insert("code".into(), json!(code::OK));
                    m.insert("data".into(), d);
                }
                JobReply::Err { code, message } => {
                    m.insert("result".into(), json!(false));
                    m.insert("code".into(), json!(code));
                    m.insert("message".into(), json!(message));
                }
            }
            m.insert("job_request_id".into(), json!(job_request_id));
            Answer {
                status: StatusCode::OK,
                body: Some(Value::Object(m)),
                headers: vec![("x-bkapi-request-id", hex_id())],
            }
        }
    }
}

/// An ESB component error (always HTTP 200).
pub(crate) fn esb_error(code: i64, message: &str) -> Answer {
    Answer {
        status: StatusCode::OK,
        body: Some(
            json!({"result": false, "code": code, "data": null, "message": message, "request_id": hex_id()}),
        ),
        headers: vec![],
    }
}

/// ESB's 404 for an unknown path.
pub(crate) fn esb_not_found() -> Answer {
    Answer {
        status: StatusCode::NOT_FOUND,
        body: Some(json!({"result": false, "data": null, "message": "The content does not exist"})),
        headers: vec![],
    }
}

/// The API gateway's own errors: each with its HTTP status, code and code name
/// (bk-job-api.md §1.4, the gateway's `errorx.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GatewayError {
    InvalidArgs,
    AppNoPermission,
    ApiNotFound,
    BodyTooLarge,
    RateLimited,
    InternalError,
    BadGateway,
    ServiceUnavailable,
    Timeout,
}

impl GatewayError {
    fn parts(self) -> (StatusCode, i64, &'static str) {
        match self {
            Self::InvalidArgs => (
                StatusCode::BAD_REQUEST,
                code::GATEWAY_INVALID_ARGS,
                "INVALID_ARGS",
            ),
            Self::AppNoPermission => (
                StatusCode::FORBIDDEN,
                code::GATEWAY_APP_NO_PERMISSION,
                "APP_NO_PERMISSION",
            ),
            Self::ApiNotFound => (
                StatusCode::NOT_FOUND,
                code::GATEWAY_API_NOT_FOUND,
                "API_NOT_FOUND",
            ),
            Self::BodyTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                code::GATEWAY_BODY_TOO_LARGE,
                "BODY_SIZE_LIMIT_EXCEED",
            ),
            Self::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                code::GATEWAY_RATE_LIMITED,
                "RATE_LIMIT_RESTRICTION",
            ),
            Self::InternalError => (
                StatusCode::INTERNAL_SERVER_ERROR,
                code::GATEWAY_INTERNAL_ERROR,
                "INTERNAL_SERVER_ERROR",
            ),
            Self::BadGateway => (
                StatusCode::BAD_GATEWAY,
                code::GATEWAY_BAD_GATEWAY,
                "BAD_GATEWAY",
            ),
            Self::ServiceUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                code::GATEWAY_SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
            ),
            Self::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                code::GATEWAY_TIMEOUT,
                "GATEWAY_TIMEOUT",
            ),
        }
    }

    /// The HTTP status the gateway answers with.
    pub(crate) fn status(self) -> StatusCode {
        self.parts().0
    }

    /// The code's name, e.g. `BAD_GATEWAY`.
    pub(crate) fn code_name(self) -> &'static str {
        self.parts().2
    }

    /// The error's answer with its real HTTP status and headers.
    pub(crate) fn answer(self, message: &str) -> Answer {
        let (status, code, code_name) = self.parts();
        Answer {
            status,
            body: Some(
                json!({"code_name": code_name, "code": code, "message": message, "result": false, "data": null}),
            ),
            headers: vec![
                ("x-bkapi-error-code", code.to_string()),
                ("x-bkapi-error-message", message.to_string()),
                ("x-bkapi-request-id", hex_id()),
            ],
        }
    }
}

fn gw_invalid(reason: &str) -> Answer {
    GatewayError::InvalidArgs.answer(&format!("Parameters error [reason=\"{reason}\"]"))
}

/// Who is calling.
#[derive(Debug, Clone, Default)]
pub(crate) struct Caller {
    pub(crate) app_code: String,
    pub(crate) username: String,
}

#[derive(Debug, Default)]
struct Creds {
    app_code: String,
    app_secret: String,
    signature: String,
    bk_token: String,
    username: String,
    access_token: String,
}

fn str_of(m: &Map<String, Value>, keys: &[&str]) -> String {
    keys.iter()
        .filter_map(|k| m.get(*k))
        .find_map(|v| match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

fn creds_from(m: &Map<String, Value>) -> Creds {
    Creds {
        app_code: str_of(m, &["bk_app_code", "app_code"]),
        app_secret: str_of(m, &["bk_app_secret", "app_secret"]),
        signature: str_of(m, &["bk_signature"]),
        bk_token: str_of(m, &["bk_token"]),
        username: str_of(m, &["bk_username", "username"]),
        access_token: str_of(m, &["access_token", "bk_access_token"]),
    }
}

/// How strictly callers are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMode {
    /// As JOB's front doors answer, except that tokens and signatures are trusted unverified
    /// and, with no `[[app]]`, any app code and secret is accepted.
    Lenient,
    /// Only a registered app's code and secret: what the simulator cannot verify (tokens,
    /// signatures, unknown apps) is refused. For a simulator other machines can reach.
    VerifiedOnly,
}

/// ESB authentication (§1.2). `Err` carries the finished ESB error answer.
pub(crate) fn esb_auth(
    config: &Config,
    headers: &HeaderMap,
    params: &Params,
    mode: AuthMode,
) -> Result<Caller, Answer> {
    let creds = match headers.get("x-bkapi-authorization") {
        Some(h) => {
            let parsed = h
                .to_str()
                .ok()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .and_then(|v| v.as_object().cloned());
            match parsed {
                Some(m) => creds_from(&m),
                None => {
                    return Err(esb_error(
                        code::ESB_PARAMS_ERROR,
                        "Parameters error, request header X-Bkapi-Authorization is not a valid JSON format string",
                    ));
                }
            }
        }
        None => creds_from(&params.0),
    };
    let fail = |msg: String| Err(esb_error(code::ESB_COMPONENT_ERROR, &msg));
    let verified_only = mode == AuthMode::VerifiedOnly;
    if verified_only && !creds.access_token.is_empty() {
        return fail("access_token is not accepted here: use bk_app_code and bk_app_secret".into());
    }
    if !creds.access_token.is_empty() {
        // Tokens identify both the app and the user; the simulator does not verify them.
        let app = if creds.app_code.is_empty() {
            "token-app".to_string()
        } else {
            creds.app_code
        };
        let user = if creds.username.is_empty() {
            "admin".to_string()
        } else {
            creds.username
        };
        return Ok(Caller {
            app_code: app,
            username: user,
        });
    }
    if creds.app_code.is_empty() {
        return fail("APP Code [bk_app_code] cannot be empty".into());
    }
    if creds.app_secret.is_empty() && creds.signature.is_empty() {
        return fail("Signature [bk_signature] and APP Secret [bk_app_secret] cannot be empty at the same time".into());
    }
    let app = config.apps.iter().find(|a| a.code == creds.app_code);
    if !config.apps.is_empty() || verified_only {
        let Some(app) = app else {
            return fail(format!(
                "Invalid APP Code [bk_app_code={}], please confirm if the APP Code has been registered",
                creds.app_code
            ));
        };
        // A signature is not verified, so it stands in for the secret only when lenient.
        if (creds.signature.is_empty() || verified_only) && app.secret != creds.app_secret {
            return fail(format!(
                "APP Secret verification failed, pelase confirm if the APP Secret and APP Code [bk_app_code={}] match",
                creds.app_code
            ));
        }
    }
    if !creds.bk_token.is_empty() {
        let user = if creds.username.is_empty() {
            "admin".to_string()
        } else {
            creds.username
        };
        return Ok(Caller {
            app_code: creds.app_code,
            username: user,
        });
    }
    let may_use_username = app.is_none_or(|a| a.allow_username);
    if !creds.username.is_empty() && may_use_username {
        return Ok(Caller {
            app_code: creds.app_code,
            username: creds.username,
        });
    }
    fail("User authentication failed, please provide a valid user identity, such as bk_token, bk_username".into())
}

/// API-gateway authentication (header only) and the resource grant check.
pub(crate) fn gateway_auth(
    config: &Config,
    headers: &HeaderMap,
    api: &str,
    mode: AuthMode,
) -> Result<Caller, Answer> {
    let verified_only = mode == AuthMode::VerifiedOnly;
    let m = headers
        .get("x-bkapi-authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let creds = creds_from(&m);
    if verified_only && !creds.access_token.is_empty() {
        return Err(gw_invalid("access_token is not accepted here"));
    }
    let caller = if !creds.access_token.is_empty() {
        Caller {
            app_code: if creds.app_code.is_empty() {
                "token-app".into()
            } else {
                creds.app_code.clone()
            },
            username: if creds.username.is_empty() {
                "admin".into()
            } else {
                creds.username.clone()
            },
        }
    } else {
        if creds.app_code.is_empty() {
            return Err(gw_invalid("app code cannot be empty"));
        }
        if creds.app_code.chars().count() > 32 {
            return Err(gw_invalid("app code cannot be longer than 32 characters"));
        }
        if creds.app_secret.is_empty() && creds.signature.is_empty() {
            return Err(gw_invalid(
                "please provide bk_app_secret or bk_signature to verify app",
            ));
        }
        if creds.app_secret.chars().count() > 128 {
            return Err(gw_invalid(
                "app secret cannot be longer than 128 characters",
            ));
        }
        let app = config.apps.iter().find(|a| a.code == creds.app_code);
        if !config.apps.is_empty() || verified_only {
            match app {
                None => return Err(gw_invalid("app not found")),
                Some(a)
                    if (creds.signature.is_empty() || verified_only)
                        && a.secret != creds.app_secret =>
                {
                    return Err(gw_invalid("bk_app_code or bk_app_secret is incorrect"));
                }
                Some(_) => {}
            }
        }
        let username_ok = app.is_none_or(|a| a.allow_username);
        if creds.bk_token.is_empty() && (creds.username.is_empty() || !username_ok) {
            return Err(gw_invalid(
                "user authentication failed, please provide a valid user identity, such as bk_username, bk_token, access_token",
            ));
        }
        Caller {
            app_code: creds.app_code.clone(),
            username: if creds.username.is_empty() {
                "admin".into()
            } else {
                creds.username.clone()
            },
        }
    };
    if let Some(app) = config.apps.iter().find(|a| a.code == caller.app_code)
        && let Some(granted) = &app.gateway_apis
        && !granted.iter().any(|g| g == api)
    {
        return Err(GatewayError::AppNoPermission.answer(&format!(
            "App has no permission to the resource [reason=\"app_code={}, resource={api}\"]",
            caller.app_code
        )));
    }
    Ok(caller)
}
