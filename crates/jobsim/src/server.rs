//! The HTTP server: routing of both front doors, fault injection, the request log, and the
//! running-server handle.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::coerce::Params;
use crate::config::{App, Config, FaultRule};
use crate::engine::{Engine, Timings};
use crate::error::Error;
use crate::front::{
    Answer, AuthMode, Front, JobReply, esb_auth, esb_error, esb_not_found, gateway_auth,
    gateway_error, wrap,
};
use crate::query;
use crate::reqlog::{RequestLog, recorded_body};
use crate::submit::{SubmitCtx, parse_v2, parse_v3};
use crate::world::World;

/// Programmatic settings on top of (or instead of) `ROOT/jobsim.toml`.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Use this configuration instead of reading `ROOT/jobsim.toml`.
    pub config: Option<Config>,
    /// Do not write `ROOT/.jobsim/requests.jsonl` (calls are still kept in memory).
    pub no_request_file: bool,
    /// Refuse new jobs with `1244032` once this many are running.
    pub max_running_jobs: Option<usize>,
    /// Accept calls that carry no credentials at all (as user `admin`); calls that do carry
    /// credentials are still checked. For embedding where no credentials exist.
    pub allow_anonymous: bool,
    /// Apps registered on top of `jobsim.toml`'s `[[app]]` tables.
    pub apps: Vec<App>,
    /// Accept only credentials the simulator can verify: a registered app's code and secret.
    /// Tokens, signatures and anonymous calls are refused. Always on when the simulator
    /// listens on a non-loopback address.
    pub verified_credentials_only: bool,
}

/// One API call as recorded in `ROOT/.jobsim/requests.jsonl` (credentials removed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Wall-clock time of the answer (RFC 3339).
    pub time: String,
    /// HTTP method.
    pub method: String,
    /// Request path (no query string).
    pub path: String,
    /// `"esb"` or `"gateway"`.
    pub front: String,
    /// API name, e.g. `fast_push_file`; empty for unknown paths.
    pub api: String,
    /// Parameters (JSON body or query) with credentials removed.
    pub body: Value,
    /// HTTP status answered; 0 when the connection was dropped on purpose.
    pub http_status: u16,
    /// The `code` of the answer body, when it had one.
    pub code: Option<i64>,
    /// The job created by this call, if any.
    pub job_instance_id: Option<u64>,
    /// The `[[fault]]` kind applied to this call, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

#[derive(Debug)]
struct Faults {
    rules: Vec<(FaultRule, Option<u64>)>,
    rng: rand::rngs::StdRng,
}

impl Faults {
    fn take(&mut self, api: &str) -> Option<FaultRule> {
        let mut hit = None;
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
                hit = Some(rule.clone());
                break;
            }
        }
        hit
    }
}

/// Shared state behind the router.
#[derive(Debug)]
pub struct SimState {
    engine: Arc<Engine>,
    faults: Mutex<Faults>,
    log: RequestLog,
    max_running_jobs: Option<usize>,
    allow_anonymous: bool,
    verified_only: bool,
    max_body: usize,
    /// Bodies parsed at once: a parsed body takes tens of times its size in memory.
    parse_gate: tokio::sync::Semaphore,
}

impl SimState {
    /// Builds the state for a sandbox root: reads `ROOT/jobsim.toml` unless
    /// `options.config` is given, and creates `ROOT/hosts` and `ROOT/.jobsim`.
    pub fn new(root: impl Into<PathBuf>, options: SimOptions) -> Result<Arc<Self>, Error> {
        let root = root.into();
        let mut config = match options.config {
            Some(c) => c,
            None => Config::load(&root)?,
        };
        config.apps.extend(options.apps);
        std::fs::create_dir_all(root.join("hosts"))
            .map_err(|e| Error::Io(format!("{}: {e}", root.display())))?;
        let log_file = if options.no_request_file {
            None
        } else {
            let dir = root.join(".jobsim");
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
            Some(dir.join("requests.jsonl"))
        };
        let sim = &config.sim;
        let timings = Timings {
            start_delay: Duration::from_millis(sim.start_delay_ms),
            host_wait: Duration::from_millis(sim.host_wait_ms),
            stop_delay: Duration::from_millis(sim.stop_delay_ms),
            speed_mb: (sim.speed_mb > 0).then_some(sim.speed_mb),
            form_callback: sim.callback_mode == "form",
            ignore_start_task: sim.ignore_start_task,
            keep_jobs: sim.keep_jobs,
        };
        let faults = Faults {
            rules: config.faults.iter().map(|f| (f.clone(), f.count)).collect(),
            rng: rand::rngs::StdRng::seed_from_u64(sim.seed),
        };
        let sim_quota = sim.max_running_jobs;
        let log = RequestLog::new(sim.request_log_bytes, log_file);
        let max_body = sim.max_body_bytes;
        let world = Arc::new(World::new(root, config));
        Ok(Arc::new(Self {
            engine: Arc::new(Engine::new(world, timings)),
            faults: Mutex::new(faults),
            log,
            max_running_jobs: options
                .max_running_jobs
                .or((sim_quota > 0).then_some(sim_quota)),
            allow_anonymous: options.allow_anonymous && !options.verified_credentials_only,
            verified_only: options.verified_credentials_only,
            max_body,
            parse_gate: tokio::sync::Semaphore::new(PARSE_PERMITS),
        }))
    }

    /// Adds a fault rule at run time (same meaning as a `[[fault]]` table).
    pub fn inject(&self, rule: FaultRule) {
        if let Ok(mut f) = self.faults.lock() {
            let n = rule.count;
            f.rules.push((rule, n));
        }
    }

    /// The calls answered so far that the log still keeps (`[sim] request_log_bytes` of the
    /// newest), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.requests()
    }

    /// How many of the oldest calls the in-memory log has let go to stay within its budget.
    pub fn requests_dropped(&self) -> u64 {
        self.log.dropped()
    }
}

/// Request bodies parsed at the same time.
const PARSE_PERMITS: usize = 4;

/// How much of a refused body is read and thrown away, so the client sees the 413 instead
/// of a reset connection; past it the connection is closed.
const DRAIN_MAX: usize = 64 * 1024 * 1024;

/// The simulator's router (both front doors), for serving or in-process tests.
pub fn router(state: Arc<SimState>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ver {
    V2,
    V3,
}

const V2_APIS: [&str; 4] = [
    "fast_push_file",
    "get_job_instance_status",
    "get_job_instance_log",
    "operate_job_instance",
];
const V3_APIS: [&str; 5] = [
    "fast_transfer_file",
    "get_job_instance_status",
    "get_job_instance_ip_log",
    "batch_get_job_instance_ip_log",
    "operate_job_instance",
];

fn gateway_method(api: &str) -> Method {
    match api {
        "get_job_instance_status" | "get_job_instance_ip_log" => Method::GET,
        _ => Method::POST,
    }
}

/// Parses a path into (front, version, api); `Err(front)` for an unknown path.
fn route(path: &str) -> Result<(Front, Ver, String), Option<Front>> {
    let trimmed = path.trim_end_matches('/');
    let parts: Vec<&str> = trimmed.split('/').collect();
    // ["", "api", "c", "compapi", ("v2",)? group, api]
    if parts.len() >= 5 && parts[1] == "api" && parts[2] == "c" && parts[3] == "compapi" {
        let rest: &[&str] = if parts[4] == "v2" {
            &parts[5..]
        } else {
            &parts[4..]
        };
        if let [group, api] = rest {
            let api = (*api).to_string();
            if *group == "job" && V2_APIS.contains(&api.as_str()) {
                return Ok((Front::Esb, Ver::V2, api));
            }
            if *group == "jobv3" && V3_APIS.contains(&api.as_str()) {
                return Ok((Front::Esb, Ver::V3, api));
            }
        }
        return Err(Some(Front::Esb));
    }
    // ["", "api", "bk-job", stage, "api", "v3", api]
    if parts.len() >= 3 && parts[1] == "api" && parts[2] == "bk-job" {
        if let [_, _, _, _stage, "api", "v3", api] = parts.as_slice()
            && V3_APIS.contains(api)
        {
            return Ok((Front::Gateway, Ver::V3, (*api).to_string()));
        }
        return Err(Some(Front::Gateway));
    }
    Err(None)
}

fn query_params(uri: &Uri) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(q) = uri.query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            m.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    m
}

fn api_not_found() -> Answer {
    gateway_error(
        StatusCode::NOT_FOUND,
        1_640_401,
        "API_NOT_FOUND",
        "API not found",
    )
}

fn dropped() -> Response {
    // The body fails before any byte is sent, so the connection is closed without an answer.
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("dropped"))
    });
    Response::new(Body::from_stream(stream))
}

/// What a request came to, before it is recorded and answered.
struct Handled {
    rec: RecordedRequest,
    /// `None`: close the connection without an answer.
    ans: Option<Answer>,
    /// `slow`: the call was processed, the answer is held back this long.
    delay: Option<Duration>,
    /// A body sent as is instead of the answer's JSON (content type, text): the cut-off
    /// JSON of `malformed`, the HTML page of a proxy's 504 in front of ESB.
    raw: Option<(&'static str, String)>,
}

async fn dispatch(State(st): State<Arc<SimState>>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let h = match read_body(body, st.max_body).await {
        Ok(body) => {
            // Held while the body is parsed and the call handled, not while it is read.
            let _permit = st.parse_gate.acquire().await.ok();
            handle(&st, parts.method, parts.uri, parts.headers, body).await
        }
        Err(refused) => refused_body(&parts.method, &parts.uri, refused),
    };
    let mut rec = h.rec;
    rec.time = chrono::Local::now().to_rfc3339();
    rec.code = h.ans.as_ref().and_then(Answer::code);
    rec.http_status = h.ans.as_ref().map_or(0, |a| a.status.as_u16());
    // Recorded before any delay, so a client that gives up still leaves a trace.
    st.log.record(rec);
    if let Some(d) = h.delay {
        tokio::time::sleep(d).await;
    }
    match h.ans {
        Some(ans) if h.raw.is_some() => raw_response(ans, h.raw),
        Some(ans) => ans.into_response(),
        None => dropped(),
    }
}

/// Why a request body was not read.
enum RefusedBody {
    /// Larger than `[sim] max_body_bytes`: this many bytes had arrived when it was refused.
    TooLarge(usize),
    /// The connection broke before the body was complete.
    Broken,
}

/// Reads a body of at most `max` bytes. A larger one is read on and thrown away (up to
/// [`DRAIN_MAX`]), so its bytes are never kept and the client still reads the answer.
async fn read_body(body: Body, max: usize) -> Result<Bytes, RefusedBody> {
    use futures::StreamExt as _;
    let mut stream = body.into_data_stream();
    let mut kept = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| RefusedBody::Broken)?;
        seen = seen.saturating_add(chunk.len());
        if seen > DRAIN_MAX {
            break;
        }
        if seen <= max {
            kept.extend_from_slice(&chunk);
        } else if !kept.is_empty() {
            kept = bytes::BytesMut::new();
        }
    }
    if seen > max {
        Err(RefusedBody::TooLarge(seen))
    } else {
        Ok(kept.freeze())
    }
}

/// The answer to a body that was not read: the gateway's 413 (`1641301`), or for ESB a 413
/// with ESB's page shape (ESB's own limit is not documented). The call is recorded without
/// its body.
fn refused_body(method: &Method, uri: &Uri, refused: RefusedBody) -> Handled {
    let path = uri.path().to_string();
    let front = route(&path).map_or_else(|f| f, |(f, _, _)| Some(f));
    let mut rec = RecordedRequest {
        time: String::new(),
        method: method.to_string(),
        path,
        front: if front == Some(Front::Gateway) {
            "gateway"
        } else {
            "esb"
        }
        .into(),
        api: String::new(),
        body: Value::Null,
        http_status: 0,
        code: None,
        job_instance_id: None,
        fault: None,
    };
    let RefusedBody::TooLarge(bytes) = refused else {
        return Handled {
            rec,
            ans: None,
            delay: None,
            raw: None,
        };
    };
    rec.body = json!({ "jobsim_refused_bytes": bytes });
    let ans = gateway_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        1_641_301,
        "BODY_SIZE_LIMIT_EXCEED",
        "Request body size too large.",
    );
    let ans = if front == Some(Front::Gateway) {
        ans
    } else {
        Answer {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            body: Some(
                json!({"result": false, "data": null, "message": "Request body size too large."}),
            ),
            headers: vec![],
        }
    };
    done(rec, ans)
}

/// The answer's status and headers with a body given as text.
fn raw_response(ans: Answer, raw: Option<(&'static str, String)>) -> Response {
    let (content_type, text) = raw.unwrap_or_default();
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = ans.status;
    for (k, v) in ans.headers {
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    resp
}

/// nginx's page when the upstream (ESB) did not answer in time.
const NGINX_504: &str = "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

async fn handle(
    st: &SimState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Handled {
    let path = uri.path().to_string();
    let is_get = method == Method::GET;
    let mut rec = RecordedRequest {
        time: chrono::Local::now().to_rfc3339(),
        method: method.to_string(),
        path: path.clone(),
        front: String::new(),
        api: String::new(),
        body: Value::Null,
        http_status: 0,
        code: None,
        job_instance_id: None,
        fault: None,
    };
    let (front, ver, api) = match route(&path) {
        Ok(r) => r,
        Err(front) => {
            rec.front = if front == Some(Front::Gateway) {
                "gateway"
            } else {
                "esb"
            }
            .into();
            let ans = match front {
                Some(Front::Gateway) => api_not_found(),
                // A path under neither front door gets ESB's 404 body too: a client pointed at
                // the wrong base URL then still sees a JSON answer that says what happened.
                Some(Front::Esb) | None => esb_not_found(),
            };
            return done(rec, ans);
        }
    };
    rec.front = if front == Front::Gateway {
        "gateway"
    } else {
        "esb"
    }
    .into();
    rec.api = api.clone();
    if front == Front::Gateway && method != gateway_method(&api) {
        return done(rec, api_not_found());
    }
    if front == Front::Esb && method != Method::GET && method != Method::POST {
        return done(rec, esb_not_found());
    }
    // Parameters: query for GET; JSON (or, on ESB, form fields) for POST.
    let params = if is_get {
        Ok(query_params(&uri))
    } else {
        let text = String::from_utf8_lossy(&body);
        let t = text.trim();
        if t.starts_with('{') {
            serde_json::from_str::<Map<String, Value>>(t).map_err(|_| ())
        } else if front == Front::Esb {
            Ok(url::form_urlencoded::parse(t.as_bytes())
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect())
        } else if t.is_empty() {
            Ok(Map::new())
        } else {
            Err(())
        }
    };
    let params = match params {
        Ok(p) => Params(p),
        Err(()) => {
            rec.body = Value::String("<unparseable>".into());
            let ans = match front {
                Front::Esb => esb_error(
                    1_306_000,
                    "Request JSON string is wrong in format, which cannot be analyzed.",
                ),
                Front::Gateway => wrap(front, JobReply::err(1_240_003, "Bad Request")),
            };
            return done(rec, ans);
        }
    };
    rec.body = recorded_body(&params.0);

    let fault = st.faults.lock().ok().and_then(|mut f| f.take(&api));
    rec.fault = fault.as_ref().map(|f| f.kind.clone());
    let mut delay = None;
    let drop_after = fault.as_ref().is_some_and(|f| f.kind == "drop_after");
    if let Some(f) = &fault {
        match f.kind.as_str() {
            "drop" => {
                return Handled {
                    rec,
                    ans: None,
                    delay: None,
                    raw: None,
                };
            }
            "slow" => delay = Some(Duration::from_millis(f.delay_ms.unwrap_or(2000))),
            "http_500" | "http_502" | "http_503" => {
                let (status, code, name) = match f.kind.as_str() {
                    "http_500" => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        1_650_001,
                        "INTERNAL_SERVER_ERROR",
                    ),
                    "http_502" => (StatusCode::BAD_GATEWAY, 1_650_200, "BAD_GATEWAY"),
                    _ => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        1_650_300,
                        "SERVICE_UNAVAILABLE",
                    ),
                };
                let ans = match front {
                    Front::Gateway => gateway_error(status, code, name, name),
                    Front::Esb => Answer {
                        status,
                        body: Some(
                            json!({"result": false, "data": null, "message": "Request is abnormal, please contact the component developer"}),
                        ),
                        headers: vec![],
                    },
                };
                return done(rec, ans);
            }
            _ => {}
        }
    }

    let config = st.engine.world.config();
    let mode = if st.verified_only {
        AuthMode::VerifiedOnly
    } else {
        AuthMode::Lenient
    };
    let anonymous = st.allow_anonymous
        && !headers.contains_key("x-bkapi-authorization")
        && ![
            "bk_app_code",
            "app_code",
            "bk_token",
            "access_token",
            "bk_username",
        ]
        .iter()
        .any(|k| params.has(k));
    let caller = match front {
        _ if anonymous => Ok(crate::front::Caller {
            app_code: "anonymous".into(),
            username: "admin".into(),
        }),
        Front::Esb => esb_auth(config, &headers, &params, mode),
        Front::Gateway => gateway_auth(config, &headers, &api, mode),
    };
    let caller = match caller {
        Ok(c) => c,
        Err(ans) => return done(rec, ans),
    };

    let mut stuck = false;
    let mut start_lost = false;
    if let Some(f) = &fault {
        match (f.kind.as_str(), front) {
            ("http_429", Front::Gateway) => {
                let mut ans = gateway_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    1_642_902,
                    "RATE_LIMIT_RESTRICTION",
                    "App has exceeded the resource request rate limit",
                );
                ans.headers.extend([
                    ("x-bkapi-ratelimit-limit", "10".to_string()),
                    ("x-bkapi-ratelimit-remaining", "0".to_string()),
                    ("x-bkapi-ratelimit-reset", "1".to_string()),
                    ("x-bkapi-ratelimit-plugin", "bk-rate-limit".to_string()),
                ]);
                return done(rec, ans);
            }
            // A 429 without any X-Bkapi-RateLimit-* header (a deployment whose strategy does
            // not send them, or the 1642904 concurrency limit): the client picks its own wait.
            ("http_429_bare", Front::Gateway) => {
                let mut ans = gateway_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    1_642_902,
                    "RATE_LIMIT_RESTRICTION",
                    "App has exceeded the resource request rate limit",
                );
                ans.headers
                    .retain(|(k, _)| !k.starts_with("x-bkapi-ratelimit"));
                return done(rec, ans);
            }
            ("http_429" | "http_429_bare" | "esb_1306429", _) => {
                let msg = format!(
                    "Access frequency limit, Access frequency of APP [{}] to component [{path}] exceeds the limit; the frequency limit is [10/second], please try again later",
                    caller.app_code
                );
                let ans = match front {
                    Front::Esb => esb_error(1_306_429, &msg),
                    Front::Gateway => wrap(front, JobReply::err(1_306_429, msg)),
                };
                return done(rec, ans);
            }
            ("job_error", _) => {
                let code = f.code.unwrap_or(1_240_002);
                return done(
                    rec,
                    wrap(front, JobReply::err(code, job_error_message(code))),
                );
            }
            ("stuck", _) => stuck = true,
            ("start_lost", _) => start_lost = true,
            _ => {}
        }
    }

    let engine = &st.engine;
    let reply = match (ver, api.as_str()) {
        (Ver::V2, "fast_push_file") | (Ver::V3, "fast_transfer_file") => {
            let ctx = SubmitCtx {
                world: &engine.world,
                caller: &caller,
                now: engine.clock.now(),
                running_jobs: engine.running_jobs(),
                max_running_jobs: st.max_running_jobs,
            };
            let parsed = if ver == Ver::V2 {
                parse_v2(&params, &ctx)
            } else {
                parse_v3(&params, &ctx)
            };
            match parsed {
                Err(e) => e,
                Ok(spec) => {
                    let job = engine.submit(spec, stuck);
                    rec.job_instance_id = Some(job.id);
                    if ver == Ver::V2 {
                        JobReply::Ok(
                            json!({"job_instance_id": job.id, "job_instance_name": job.spec.name}),
                        )
                    } else {
                        JobReply::Ok(
                            json!({"job_instance_id": job.id, "job_instance_name": job.spec.name, "step_instance_id": job.step_id}),
                        )
                    }
                }
            }
        }
        (Ver::V2, "get_job_instance_status") => query::v2_status(engine, &params, front, is_get),
        (Ver::V3, "get_job_instance_status") => query::v3_status(engine, &params, front, is_get),
        (Ver::V2, "get_job_instance_log") => query::v2_log(engine, &params, front, is_get),
        (Ver::V3, "get_job_instance_ip_log") => query::v3_ip_log(engine, &params, front, is_get),
        (Ver::V3, "batch_get_job_instance_ip_log") => {
            query::v3_batch_log(engine, &params, front, is_get)
        }
        (_, "operate_job_instance") => query::operate(engine, &params, ver == Ver::V3, !start_lost),
        _ => return done(rec, esb_not_found()),
    };
    let ans = wrap(front, reply);
    match fault.as_ref().map(|f| f.kind.as_str()) {
        // The front end gave up waiting for JOB, which went on and did the work (a job
        // submitted this way exists): the gateway's 504 body, or nginx's page in front of ESB.
        Some("http_504") => {
            let ans = match front {
                Front::Gateway => gateway_error(
                    StatusCode::GATEWAY_TIMEOUT,
                    1_650_401,
                    "GATEWAY_TIMEOUT",
                    "Request backend service timeout",
                ),
                Front::Esb => Answer {
                    status: StatusCode::GATEWAY_TIMEOUT,
                    body: None,
                    headers: vec![],
                },
            };
            let esb = front == Front::Esb;
            let mut h = done(rec, ans);
            if esb {
                h.raw = Some(("text/html", NGINX_504.to_owned()));
            }
            return h;
        }
        // The answer arrives cut short: HTTP 200 with half of JOB's JSON (the call was
        // processed; a submission created its job).
        Some("malformed") => {
            let text = ans.body.as_ref().map(Value::to_string).unwrap_or_default();
            let half: String = text.chars().take(text.chars().count() / 2).collect();
            let mut h = done(rec, ans);
            h.raw = Some(("application/json", half));
            return h;
        }
        _ => {}
    }
    if drop_after {
        // Processed (a job may have been created), but the answer is lost.
        let mut h = done(rec, ans);
        h.rec.code = None;
        h.ans = None;
        return h;
    }
    Handled {
        rec,
        ans: Some(ans),
        delay,
        raw: None,
    }
}

/// JOB's English message for an error code of bk-job-api.md §9 (parameters filled with
/// plausible values), for `job_error` faults.
fn job_error_message(code: i64) -> &'static str {
    match code {
        1_240_001 => "Service Unavailable",
        1_240_003 => "Bad Request",
        1_241_002 => "Invalid request parameters",
        1_241_004 => "Missing request parameter [account]",
        1_243_049 => "Business/Business Set not exist or archived",
        1_244_003 => "Account [root] does not exist",
        1_244_004 => "No permission to use this account[root]",
        1_244_006 => "Task instance does not exist",
        1_244_021 => "The number of file tasks exceeds the limit:100000",
        1_244_025 => "Task abandoned",
        1_244_032 => {
            "The total number of jobs currently executed exceeds the resource scope quota limit"
        }
        1_244_033 => "The total number of jobs currently executed exceeds the bk app quota limit",
        1_244_034 => "The total number of jobs currently executed exceeds the system quota limit",
        1_238_001 | 9_900_403 => {
            "User (admin) permission not allowed, please confirm and apply permission in IAM and try again"
        }
        1_210_001 => "GSE is not available",
        _ => "Internal Server Error",
    }
}

fn done(rec: RecordedRequest, ans: Answer) -> Handled {
    Handled {
        rec,
        ans: Some(ans),
        delay: None,
        raw: None,
    }
}

/// Entry point for starting a simulator on a socket.
#[derive(Debug)]
pub struct JobSim;

impl JobSim {
    /// Serves the sandbox at `root` on `listen` (`127.0.0.1:0` picks a free port), reading
    /// `ROOT/jobsim.toml` if present.
    pub async fn start(root: impl Into<PathBuf>, listen: SocketAddr) -> Result<RunningSim, Error> {
        Self::start_with(root, listen, SimOptions::default()).await
    }

    /// Like [`JobSim::start`], with programmatic options.
    ///
    /// On a non-loopback address (`0.0.0.0` included) other machines can call the simulator,
    /// so it starts only with registered apps and accepts only their code and secret
    /// ([`SimOptions::verified_credentials_only`]); with no `[[app]]` it refuses to start
    /// ([`Error::Exposed`]).
    pub async fn start_with(
        root: impl Into<PathBuf>,
        listen: SocketAddr,
        mut options: SimOptions,
    ) -> Result<RunningSim, Error> {
        let exposed = !listen.ip().is_loopback();
        options.verified_credentials_only |= exposed;
        let state = SimState::new(root, options)?;
        if exposed && state.engine.world.config().apps.is_empty() {
            return Err(Error::Exposed { addr: listen });
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Error::Bind {
                addr: listen,
                message: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| Error::Bind {
            addr: listen,
            message: e.to_string(),
        })?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (refuse_tx, refuse_rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
        let task = tokio::spawn(serve(listener, addr, state.clone(), rx, refuse_rx));
        Ok(RunningSim {
            addr,
            state,
            shutdown: Some(tx),
            refuse: refuse_tx,
            task,
        })
    }
}

impl JobSim {
    /// A simulator for one caller on this machine: on `127.0.0.1` (a free port), with a fresh
    /// app of random code and secret registered (on top of `jobsim.toml`'s), and only
    /// verified credentials accepted. Other local processes can reach the port but hold no
    /// credentials it accepts. Returns the app to call it with.
    pub async fn start_private(root: impl Into<PathBuf>) -> Result<(RunningSim, App), Error> {
        let app = App {
            code: format!("jobsim-{:08x}", rand::random::<u32>()),
            secret: format!("{:032x}", rand::random::<u128>()),
            allow_username: true,
            gateway_apis: None,
        };
        let options = SimOptions {
            apps: vec![app.clone()],
            verified_credentials_only: true,
            ..SimOptions::default()
        };
        let sim = Self::start_with(root, SocketAddr::from(([127, 0, 0, 1], 0)), options).await?;
        Ok((sim, app))
    }
}

/// Serves until shut down; a refusal closes the listener (and, gracefully, every
/// connection), leaves the port closed for its duration, then binds the same address again
/// with the same state.
async fn serve(
    mut listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: Arc<SimState>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
    mut refusals: tokio::sync::mpsc::UnboundedReceiver<Duration>,
) {
    loop {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, router(state.clone()))
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .into_future();
        let mut server = std::pin::pin!(server);
        let pause = tokio::select! {
            _ = &mut server => return,
            _ = &mut shutdown => None,
            Some(pause) = refusals.recv() => Some(pause),
        };
        let _ = stop_tx.send(());
        let _ = server.await;
        let Some(pause) = pause else { return };
        // Nothing listens now: connection attempts are refused.
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = &mut shutdown => return,
        }
        listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => break l,
                // The port is free again within moments (SO_REUSEADDR); keep trying.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
    }
}

/// A simulator serving on a socket. Dropping it leaves the server running until the
/// runtime ends; call [`RunningSim::shutdown`] to stop it cleanly.
#[derive(Debug)]
pub struct RunningSim {
    addr: SocketAddr,
    state: Arc<SimState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    refuse: tokio::sync::mpsc::UnboundedSender<Duration>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSim {
    /// The bound address (with the real port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The calls answered so far that the log keeps (see [`SimState::requests`]).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }
    /// The shared state (for [`SimState::inject`]).
    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }
    /// Connection refused for `pause`: the listener is closed (open connections end once
    /// their request in flight is answered), nothing listens on the port, then the same state
    /// is served again on the same address. Jobs keep running meanwhile. Returns at once.
    pub fn refuse_for(&self, pause: Duration) {
        let _ = self.refuse.send(pause);
    }

    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}
