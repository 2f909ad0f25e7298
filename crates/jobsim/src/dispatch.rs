//! One request, from bytes to answer, in the order JOB's front doors take it: the body is
//! read (bounded), the path routed, the method and parameters checked, a fault taken, the
//! caller authenticated, the API run, and the answer delivered (as a fault shapes it). Every
//! request is recorded once, whatever phase ended it, before any delay.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use plan_bkjob::cmdb::{CmdbApi, CmdbCall};
use plan_bkjob::routes::{HttpMethod, Route, UnknownRoute};
use plan_bkjob::{ApiVersion, code};
use serde_json::{Map, Value, json};

use crate::coerce::Params;
use crate::config::{FaultKind, FaultRule};
use crate::faults::{self, Reply};
use crate::front::{
    Answer, AuthMode, Caller, Front, GatewayError, JobReply, esb_auth, esb_error, esb_not_found,
    gateway_auth, wrap,
};
use crate::reqlog::{RecordedRequest, recorded_body};
use crate::server::SimState;
use crate::submit::{JobSpec, SubmitCtx, parse_v2, parse_v3};
use crate::{instance_list, query};

/// How much of a refused body is read and thrown away, so the client sees the 413 instead
/// of a reset connection; past it the connection is closed.
const DRAIN_MAX: usize = 64 * 1024 * 1024;

/// Request fields that carry credentials: a call without any of them (and without the
/// header) is anonymous.
const CREDENTIAL_FIELDS: [&str; 5] = [
    "bk_app_code",
    "app_code",
    "bk_token",
    "access_token",
    "bk_username",
];

/// The router's only handler: every path goes through here.
pub(crate) async fn dispatch(
    State(st): State<Arc<SimState>>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let mut rec = RecordedRequest::arrived(parts.method.as_str(), parts.uri.path());
    let reply = match read_body(body, st.max_body).await {
        Ok(body) => {
            // Held while the body is parsed and the call handled, not while it is read.
            let _permit = st.parse_gate.acquire().await.ok();
            let request = Incoming {
                method: parts.method,
                uri: parts.uri,
                headers: parts.headers,
                body,
            };
            handle(&st, &request, &mut rec)
        }
        Err(refused) => refused_body(&parts.uri, refused, &mut rec),
    };
    record(&st, rec, &reply);
    respond(reply).await
}

/// A request whose body has been read.
struct Incoming {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// A call routed to an API, with its parameters.
struct Call {
    front: Front,
    route: Route,
    is_get: bool,
    params: Params,
}

/// Takes a request through every phase; each phase either passes it on or gives the reply.
fn handle(st: &SimState, request: &Incoming, rec: &mut RecordedRequest) -> Reply {
    if let Some(cmdb) = CmdbApi::parse(request.uri.path()) {
        return handle_cmdb(st, request, &cmdb, rec);
    }
    let call = match read_call(request, rec) {
        Ok(call) => call,
        Err(answer) => return Reply::now(answer),
    };
    let fault = st.take_fault(call.route.name());
    rec.fault = fault.as_ref().map(|f| f.kind);
    if let Some(reply) = fault
        .as_ref()
        .and_then(|f| faults::before_auth(f, call.front))
    {
        return reply;
    }
    let caller = match authenticate(
        st,
        &request.headers,
        call.front,
        call.route.name(),
        &call.params,
    ) {
        Ok(caller) => caller,
        Err(answer) => return Reply::now(answer),
    };
    let faulted = |rule: &FaultRule| faults::after_auth(rule, call.front, &caller, &rec.path);
    if let Some(answer) = fault.as_ref().and_then(faulted) {
        return Reply::now(answer);
    }
    let reply = run_api(st, &call, &caller, fault.as_ref().map(|f| f.kind), rec);
    faults::deliver(fault.as_ref(), call.front, wrap(call.front, reply))
}

/// A CMDB call (`crate::cmdb`) through the same phases as JOB's: method and parameters,
/// fault, authentication, the answer in CMDB's envelope, delivery.
fn handle_cmdb(
    st: &SimState,
    request: &Incoming,
    call: &CmdbCall,
    rec: &mut RecordedRequest,
) -> Reply {
    let front = call.door;
    rec.front = front.as_str().into();
    rec.api = call.api.name().into();
    let is_get = request.method == Method::GET;
    if request.method != Method::POST && !(is_get && front == Front::Esb) {
        return Reply::now(match front {
            Front::Gateway => api_not_found(),
            Front::Esb => esb_not_found(),
        });
    }
    let Ok(params) = read_params(front, is_get, &request.uri, &request.body) else {
        rec.body = Value::String("<unparseable>".into());
        return Reply::now(esb_error(
            code::ESB_COMPONENT_ERROR,
            "Request JSON string is wrong in format, which cannot be analyzed.",
        ));
    };
    rec.body = recorded_body(&params.0);
    let fault = st.take_fault(call.api.name());
    rec.fault = fault.as_ref().map(|f| f.kind);
    if let Some(reply) = fault.as_ref().and_then(|f| faults::before_auth(f, front)) {
        return reply;
    }
    let caller = match authenticate(st, &request.headers, front, call.api.name(), &params) {
        Ok(caller) => caller,
        Err(answer) => return Reply::now(answer),
    };
    let faulted = |rule: &FaultRule| faults::after_auth(rule, front, &caller, &rec.path);
    if let Some(answer) = fault.as_ref().and_then(faulted) {
        return Reply::now(answer);
    }
    let answer = crate::cmdb::run(&st.engine.world, call, &params);
    faults::deliver(fault.as_ref(), front, answer)
}

/// Routes the path, checks the method and reads the parameters, noting each in `rec`.
fn read_call(request: &Incoming, rec: &mut RecordedRequest) -> Result<Call, Answer> {
    let (front, route) = match Route::parse(request.uri.path()) {
        Ok(found) => found,
        Err(UnknownRoute(front)) => {
            rec.front = front_name(front).into();
            return Err(match front {
                Some(Front::Gateway) => api_not_found(),
                // A path under neither front door gets ESB's 404 body too: a client pointed at
                // the wrong base URL then still sees a JSON answer that says what happened.
                Some(Front::Esb) | None => esb_not_found(),
            });
        }
    };
    rec.front = front.as_str().into();
    rec.api = route.name().into();
    check_method(front, route, &request.method)?;
    let is_get = request.method == Method::GET;
    let Ok(params) = read_params(front, is_get, &request.uri, &request.body) else {
        rec.body = Value::String("<unparseable>".into());
        return Err(match front {
            Front::Esb => esb_error(
                code::ESB_COMPONENT_ERROR,
                "Request JSON string is wrong in format, which cannot be analyzed.",
            ),
            Front::Gateway => wrap(front, JobReply::err(code::BAD_REQUEST, "Bad Request")),
        });
    };
    rec.body = recorded_body(&params.0);
    Ok(Call {
        front,
        route,
        is_get,
        params,
    })
}

/// `"gateway"` for the gateway's prefix, `"esb"` for anything else.
fn front_name(front: Option<Front>) -> &'static str {
    front.unwrap_or(Front::Esb).as_str()
}

/// The gateway publishes each API under one method; ESB takes GET and POST for all.
fn check_method(front: Front, route: Route, method: &Method) -> Result<(), Answer> {
    let allowed = match front {
        Front::Gateway => *method == http_method(route.gateway_method()),
        Front::Esb => *method == Method::GET || *method == Method::POST,
    };
    match (allowed, front) {
        (true, _) => Ok(()),
        (false, Front::Gateway) => Err(api_not_found()),
        (false, Front::Esb) => Err(esb_not_found()),
    }
}

fn http_method(method: HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
    }
}

/// Parameters: the query for GET; JSON (or, on ESB, form fields) for POST.
fn read_params(front: Front, is_get: bool, uri: &Uri, body: &Bytes) -> Result<Params, ()> {
    if is_get {
        return Ok(Params(query_params(uri)));
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let fields = if text.starts_with('{') {
        serde_json::from_str::<Map<String, Value>>(text).map_err(|_| ())?
    } else if front == Front::Esb {
        url::form_urlencoded::parse(text.as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect()
    } else if text.is_empty() {
        Map::new()
    } else {
        return Err(());
    };
    Ok(Params(fields))
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

/// Who is calling, by the front door's rules; `Err` is the door's refusal.
fn authenticate(
    st: &SimState,
    headers: &HeaderMap,
    front: Front,
    api: &str,
    params: &Params,
) -> Result<Caller, Answer> {
    let anonymous = st.allow_anonymous
        && !headers.contains_key("x-bkapi-authorization")
        && !CREDENTIAL_FIELDS.iter().any(|k| params.has(k));
    if anonymous {
        return Ok(Caller {
            app_code: "anonymous".into(),
            username: "admin".into(),
        });
    }
    let config = st.engine.world.config();
    let mode = if st.verified_only {
        AuthMode::VerifiedOnly
    } else {
        AuthMode::Lenient
    };
    match front {
        Front::Esb => esb_auth(config, headers, params, mode),
        Front::Gateway => gateway_auth(config, headers, api, mode),
    }
}

/// JOB's own answer to the call. The `stuck` and `start_lost` faults act here, inside the
/// engine; a submission notes its job in `rec`.
fn run_api(
    st: &SimState,
    call: &Call,
    caller: &Caller,
    fault: Option<FaultKind>,
    rec: &mut RecordedRequest,
) -> JobReply {
    let engine = &st.engine;
    let (p, front, is_get) = (&call.params, call.front, call.is_get);
    match call.route {
        Route::FastPushFile
        | Route::FastTransferFile
        | Route::FastExecuteScriptV2
        | Route::FastExecuteScriptV3 => {
            let stuck = fault == Some(FaultKind::Stuck);
            submit(st, call, caller, stuck, rec)
        }
        Route::StatusV2 => query::v2_status(engine, p, front, is_get),
        Route::StatusV3 => query::v3_status(engine, p, front, is_get),
        Route::LogV2 => query::v2_log(engine, p, front, is_get),
        Route::IpLogV3 => query::v3_ip_log(engine, p, front, is_get),
        Route::BatchIpLogV3 => query::v3_batch_log(engine, p, front, is_get),
        Route::JobInstanceListV3 => instance_list::v3_job_list(engine, p, front, is_get),
        Route::JobPlanListV3 => crate::job_plans::v3_plan_list(engine, p),
        Route::JobPlanDetailV3 => crate::job_plans::v3_plan_detail(engine, p, front, is_get),
        Route::OperateV2 | Route::OperateV3 => {
            let deliver_start = fault != Some(FaultKind::StartLost);
            query::operate(engine, p, call.route.version(), deliver_start)
        }
        Route::OperateStepV2 | Route::OperateStepV3 => crate::operate::operate_step(engine, p),
        Route::StepStatusV3 => crate::step_status::v3_step_status(engine, p, front, is_get),
    }
}

/// `fast_push_file` / `fast_transfer_file`: validated in JOB's order, then handed to the
/// engine.
fn submit(
    st: &SimState,
    call: &Call,
    caller: &Caller,
    stuck: bool,
    rec: &mut RecordedRequest,
) -> JobReply {
    let engine = &st.engine;
    let ctx = SubmitCtx {
        world: &engine.world,
        caller,
        now: engine.clock.now(),
        running_jobs: engine.running_jobs(),
        max_running_jobs: st.max_running_jobs,
    };
    let version = call.route.version();
    let script = matches!(
        call.route,
        Route::FastExecuteScriptV2 | Route::FastExecuteScriptV3
    );
    let spec = match parse_submission(call.route, &call.params, &ctx) {
        Ok(spec) => spec,
        Err(refusal) => return refusal,
    };
    let job = engine.submit(spec, stuck);
    // Stored before it is answered: a job id a client holds is one a restart still knows.
    if let Some(store) = engine.store.get() {
        store.save_request(&job, call.route, &call.params);
    }
    rec.job_instance_id = Some(job.id);
    match version {
        // v2's answer to a script job names its step too (`EsbJobExecuteDTO`).
        ApiVersion::V2 if !script => {
            JobReply::Ok(json!({"job_instance_id": job.id, "job_instance_name": job.spec.name}))
        }
        _ => JobReply::Ok(
            json!({"job_instance_id": job.id, "job_instance_name": job.spec.name, "step_instance_id": job.step_id}),
        ),
    }
}

/// A submission validated in JOB's order into the job it creates (also how the job store
/// rebuilds a stored job on a restart).
pub(crate) fn parse_submission(
    route: Route,
    params: &Params,
    ctx: &SubmitCtx<'_>,
) -> Result<JobSpec, JobReply> {
    let script = matches!(
        route,
        Route::FastExecuteScriptV2 | Route::FastExecuteScriptV3
    );
    match (route.version(), script) {
        (ApiVersion::V2, false) => parse_v2(params, ctx),
        (ApiVersion::V3, false) => parse_v3(params, ctx),
        (ApiVersion::V2, true) => crate::script::parse_v2(params, ctx),
        (ApiVersion::V3, true) => crate::script::parse_v3(params, ctx),
    }
}

fn api_not_found() -> Answer {
    GatewayError::ApiNotFound.answer("API not found")
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
fn refused_body(uri: &Uri, refused: RefusedBody, rec: &mut RecordedRequest) -> Reply {
    let front = match Route::parse(uri.path()) {
        Ok((front, _)) => Some(front),
        Err(UnknownRoute(front)) => front,
    };
    rec.front = front_name(front).into();
    let RefusedBody::TooLarge(bytes) = refused else {
        return Reply::Dropped;
    };
    rec.body = json!({ "jobsim_refused_bytes": bytes });
    let message = "Request body size too large.";
    Reply::now(if front == Some(Front::Gateway) {
        GatewayError::BodyTooLarge.answer(message)
    } else {
        Answer {
            status: GatewayError::BodyTooLarge.status(),
            body: Some(json!({"result": false, "data": null, "message": message})),
            headers: vec![],
        }
    })
}

/// Records the call as it will be answered: its status and code, or status 0 and no code
/// when the connection is closed without an answer.
fn record(st: &SimState, mut rec: RecordedRequest, reply: &Reply) {
    let answer = match reply {
        Reply::Answer { answer, .. } | Reply::Raw { answer, .. } => Some(answer),
        Reply::Dropped => None,
    };
    rec.time = chrono::Local::now().to_rfc3339();
    rec.code = answer.and_then(Answer::code);
    rec.http_status = answer.map_or(0, |a| a.status.as_u16());
    st.log.record(rec);
}

/// Sends the reply: after its delay, or as raw text, or not at all.
async fn respond(reply: Reply) -> Response {
    match reply {
        Reply::Answer { answer, delay } => {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            answer.into_response()
        }
        Reply::Raw {
            answer,
            content_type,
            text,
        } => raw_response(answer, content_type, text),
        Reply::Dropped => dropped(),
    }
}

/// The answer's status and headers with a body given as text.
fn raw_response(ans: Answer, content_type: &'static str, text: String) -> Response {
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

fn dropped() -> Response {
    // The body fails before any byte is sent, so the connection is closed without an answer.
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("dropped"))
    });
    Response::new(Body::from_stream(stream))
}
