//! Injected faults: the rule table (`[[fault]]` and [`crate::SimState::inject`]) and what
//! each [`FaultKind`] does to a call, at the three points where faults act: before
//! authentication (the front door fails, nothing is processed), after it (rate limits and JOB
//! errors), and once the call was processed (its answer is lost, cut short, late or replaced).

use std::time::Duration;

use axum::http::StatusCode;
use plan_bkjob::code;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};

use crate::config::{FaultKind, FaultRule};
use crate::front::{Answer, Caller, Front, GatewayError, JobReply, esb_error, wrap};

/// The rules in force, each with the calls it has left (`None`: every call, or by `rate`).
#[derive(Debug)]
pub(crate) struct Faults {
    rules: Vec<(FaultRule, Option<u64>)>,
    rng: rand::rngs::StdRng,
}

impl Faults {
    /// The `[[fault]]` rules of a configuration; `rate` draws are seeded by `seed`.
    pub(crate) fn new(rules: &[FaultRule], seed: u64) -> Self {
        Self {
            rules: rules.iter().map(|f| (f.clone(), f.count)).collect(),
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        }
    }

    /// Adds a rule after the others.
    pub(crate) fn add(&mut self, rule: FaultRule) {
        let count = rule.count;
        self.rules.push((rule, count));
    }

    /// The first rule that fires on a call to `api`, counting it against the rule.
    pub(crate) fn take(&mut self, api: &str) -> Option<FaultRule> {
        for (rule, remaining) in &mut self.rules {
            if rule.api != "*" && rule.api != api {
                continue;
            }
            let fire = match (remaining.as_mut(), rule.rate) {
                (Some(0), _) => false,
                (Some(n), _) => {
                    *n -= 1;
                    true
                }
                (None, Some(rate)) => self.rng.random::<f64>() < rate,
                (None, None) => true,
            };
            if fire {
                return Some(rule.clone());
            }
        }
        None
    }
}

/// How a call is answered on the wire.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The answer, held back `delay` first (the `slow` fault).
    Answer {
        answer: Answer,
        delay: Option<Duration>,
    },
    /// The answer's status and headers with this body text instead of its JSON: the cut-off
    /// JSON of `malformed`, nginx's page of a 504 in front of ESB. Recorded as `answer`.
    Raw {
        answer: Answer,
        content_type: &'static str,
        text: String,
    },
    /// The connection is closed without an answer.
    Dropped,
}

impl Reply {
    /// An answer sent at once.
    pub(crate) fn now(answer: Answer) -> Self {
        Reply::Answer {
            answer,
            delay: None,
        }
    }
}

/// The faults that act before authentication: the call is not processed.
pub(crate) fn before_auth(rule: &FaultRule, front: Front) -> Option<Reply> {
    let failure = match rule.kind {
        FaultKind::Drop => return Some(Reply::Dropped),
        FaultKind::Http500 => GatewayError::InternalError,
        FaultKind::Http502 => GatewayError::BadGateway,
        FaultKind::Http503 => GatewayError::ServiceUnavailable,
        _ => return None,
    };
    let answer = match front {
        // The gateway's 5xx bodies carry the code name as their message too.
        Front::Gateway => failure.answer(failure.code_name()),
        Front::Esb => Answer {
            status: failure.status(),
            body: Some(
                json!({"result": false, "data": null, "message": "Request is abnormal, please contact the component developer"}),
            ),
            headers: vec![],
        },
    };
    Some(Reply::now(answer))
}

/// The faults that act once the caller is known: rate limits and JOB errors. `path` is
/// the request's path, which ESB names in its rate-limit message.
pub(crate) fn after_auth(
    rule: &FaultRule,
    front: Front,
    caller: &Caller,
    path: &str,
) -> Option<Answer> {
    match (rule.kind, front) {
        (FaultKind::Http429, Front::Gateway) => {
            let mut answer = gateway_rate_limited();
            answer.headers.extend([
                ("x-bkapi-ratelimit-limit", "10".to_string()),
                ("x-bkapi-ratelimit-remaining", "0".to_string()),
                ("x-bkapi-ratelimit-reset", "1".to_string()),
                ("x-bkapi-ratelimit-plugin", "bk-rate-limit".to_string()),
            ]);
            Some(answer)
        }
        // A 429 without any X-Bkapi-RateLimit-* header (a deployment whose strategy does
        // not send them, or the 1642904 concurrency limit): the client picks its own wait.
        (FaultKind::Http429Bare, Front::Gateway) => Some(gateway_rate_limited()),
        (FaultKind::Http429 | FaultKind::Http429Bare | FaultKind::Esb1306429, _) => {
            let message = format!(
                "Access frequency limit, Access frequency of APP [{}] to component [{path}] exceeds the limit; the frequency limit is [10/second], please try again later",
                caller.app_code
            );
            Some(match front {
                Front::Esb => esb_error(code::ESB_RATE_LIMITED, &message),
                Front::Gateway => wrap(front, JobReply::err(code::ESB_RATE_LIMITED, message)),
            })
        }
        (FaultKind::JobError, _) => {
            let code = rule.code.unwrap_or(code::INTERNAL_ERROR);
            Some(wrap(front, JobReply::err(code, job_error_message(code))))
        }
        _ => None,
    }
}

fn gateway_rate_limited() -> Answer {
    GatewayError::RateLimited.answer("App has exceeded the resource request rate limit")
}

/// How a processed call's answer reaches the client under a fault, if one applies.
pub(crate) fn deliver(rule: Option<&FaultRule>, front: Front, answer: Answer) -> Reply {
    let Some(rule) = rule else {
        return Reply::now(answer);
    };
    match rule.kind {
        // The front end gave up waiting for JOB, which went on and did the work (a job
        // submitted this way exists): the gateway's 504 body, or nginx's page in front of ESB.
        FaultKind::Http504 => match front {
            Front::Gateway => {
                Reply::now(GatewayError::Timeout.answer("Request backend service timeout"))
            }
            Front::Esb => Reply::Raw {
                answer: Answer {
                    status: StatusCode::GATEWAY_TIMEOUT,
                    body: None,
                    headers: vec![],
                },
                content_type: "text/html",
                text: NGINX_504.to_owned(),
            },
        },
        // The answer arrives cut short: HTTP 200 with half of JOB's JSON (the call was
        // processed; a submission created its job).
        FaultKind::Malformed => {
            let text = answer
                .body
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default();
            let half: String = text.chars().take(text.chars().count() / 2).collect();
            Reply::Raw {
                answer,
                content_type: "application/json",
                text: half,
            }
        }
        // Processed (a job may have been created), but the answer is lost.
        FaultKind::DropAfter => Reply::Dropped,
        FaultKind::Slow => Reply::Answer {
            answer,
            delay: Some(Duration::from_millis(rule.delay_ms.unwrap_or(2000))),
        },
        _ => Reply::now(answer),
    }
}

/// nginx's page when the upstream (ESB) did not answer in time.
const NGINX_504: &str = "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// JOB's English message for an error code of bk-job-api.md §9 (parameters filled with
/// plausible values), for `job_error` faults.
fn job_error_message(value: i64) -> &'static str {
    use code::*;
    match value {
        SERVICE_UNAVAILABLE => "Service Unavailable",
        BAD_REQUEST => "Bad Request",
        ILLEGAL_PARAM => "Invalid request parameters",
        MISSING_PARAM_WITH_PARAM_NAME => "Missing request parameter [account]",
        APP_NOT_EXIST => "Business/Business Set not exist or archived",
        ACCOUNT_NOT_EXIST => "Account [root] does not exist",
        ACCOUNT_NO_PERMISSION => "No permission to use this account[root]",
        TASK_INSTANCE_NOT_EXIST => "Task instance does not exist",
        FILE_TASKS_EXCEEDS_LIMIT => "The number of file tasks exceeds the limit:100000",
        TASK_ABANDONED => "Task abandoned",
        RUNNING_JOB_EXCEED_RESOURCE_SCOPE_QUOTA => {
            "The total number of jobs currently executed exceeds the resource scope quota limit"
        }
        RUNNING_JOB_EXCEED_APP_QUOTA => {
            "The total number of jobs currently executed exceeds the bk app quota limit"
        }
        RUNNING_JOB_EXCEED_SYSTEM_QUOTA => {
            "The total number of jobs currently executed exceeds the system quota limit"
        }
        PERMISSION_DENIED | BK_PERMISSION_DENIED => {
            "User (admin) permission not allowed, please confirm and apply permission in IAM and try again"
        }
        GSE_ERROR => "GSE is not available",
        _ => "Internal Server Error",
    }
}
