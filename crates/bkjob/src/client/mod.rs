//! The HTTP client for JOB's file-distribution APIs over ESB or the BlueKing API gateway.
//!
//! One [`Client`] per run, built once with its timeouts. Every call returns the parsed `data`
//! or an [`ApiError`] already classified per bk-job-api.md §13. Retries happen here, with
//! exponential backoff and jitter ([`RetryPolicy`]), and only for the retryable classes.
//!
//! **Submissions are special.** `fast_push_file` / `fast_transfer_file` create a job; sending
//! one twice pushes the files twice. A submission is re-sent only when the failure proves JOB
//! did not act on it (connect refused, rate limited, 503, `1240001`). When the response was
//! lost after the request went out (timeout, reset, 502/504, `1306201`, an unreadable 200), the
//! call fails with an error for which [`ApiError::submission_outcome_unknown`] is true, and the
//! caller must not submit again on its own:
//!
//! * v2 has no API to look a job up by name, so the executor reports the push as "outcome
//!   unknown", journals it, and `plan apply --resume` refuses to run that push again until the
//!   user has checked JOB's history for the push's task name (see `docs/apply.md`).
//! * v3 does better with two-phase submission (`start_task=false`, then
//!   `operate_job_instance` code 2): a job created but never started transfers nothing.
//!   [`Client::submit_v3`] sends the body it is given (the executor sets `start_task`);
//!   [`Client::start_v3`] sends the START and tells a repeat of our own START (its answer was
//!   lost) from a job JOB started by itself (a JOB that ignores `start_task`).
//!
//! [`Client::check_credentials`] lets a caller find refused credentials before submitting.
//!
//! Credentials never appear in logs, errors or `Debug` output: they are held by
//! [`Credentials`] (whose `Debug` redacts) and written only into outgoing requests, to the
//! configured endpoint only: redirects are not followed (a 3xx is [`ApiError::Redirect`]).
//! Whatever the server says (messages, `code_name`, headers, the strings of `data`, the
//! values serde quotes in its errors) passes through one [`Scrubber`] before it leaves the
//! client, so a server that echoes the request cannot put a secret on a terminal, in a log or
//! in the journal. Every answer is read with a size cap ([`MAX_ANSWER_BYTES`]).

mod answer;
mod cmdb;
mod credentials;
mod error;
mod file_entries;
mod job_plan;
mod list;
mod neutral;
mod retry;
mod script;
mod scrub;
mod step_operation;

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use answer::{Body, MAX_ERROR_BYTES};

pub use answer::MAX_ANSWER_BYTES;
pub use credentials::{
    Credentials, ENV_ACCESS_TOKEN, ENV_APP_CODE, ENV_APP_SECRET, ENV_TOKEN, ENV_USERNAME,
    MissingCredentials, UserAuth,
};
pub use error::{ApiError, ConfigError, TransportKind};
pub use job_plan::{JOB_PLAN_PAGE_LENGTH, JOB_PLANS_MAX, JobPlanListing};
pub use list::{FIND_JOBS_MAX, ListedJob};
pub use neutral::{HostLog, HostState, JobKey, Snapshot};
pub use retry::RetryPolicy;
pub use script::{ScriptRequest, ScriptResult};
pub use scrub::{FRAGMENT, Scrubber, WITHHELD};

use crate::ApiVersion;
use crate::common::IpHost;
use crate::routes::{FrontDoor, HttpMethod, Route};
use crate::v2::{
    FastPushFileRequest, JobExecuteData, JobInstanceStatusV2, OperateJobInstanceRequest,
    StepInstanceLogV2,
};
use crate::v3::{
    BatchIpLogRequest, BatchIpLogV3, FastTransferFileRequest, IpLogV3, JobInstanceStatusV3,
};

/// The answer to a START ([`Client::start_v3`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAnswer {
    /// JOB accepted the START.
    Started,
    /// `1241015` after an earlier START whose answer was lost: that START was taken.
    AlreadyStarted,
    /// `1241015` to the first START JOB saw: the job was running before we asked, so this JOB
    /// ignores `start_task=false` (it predates 3.12) and starts every job at creation.
    StartedByServer,
}

/// Which front door the base URL is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// ESB: `<base>/api/c/compapi/v2/job/<api>/` and `<base>/api/c/compapi/v2/jobv3/<api>/`.
    Esb,
    /// API gateway: `<base>/api/v3/<api>` where base is `.../api/bk-job/<stage>`.
    Gateway,
}

/// A base URL and its flavour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: url::Url,
    flavor: Flavor,
}

impl Endpoint {
    /// Parses a base URL. The flavour is the gateway when `gateway` is set or the path contains
    /// `/api/bk-job/`, ESB otherwise. Credentials in the URL (`user:pass@`) are refused, since
    /// the URL is printed in messages.
    pub fn parse(url: &str, gateway: bool) -> Result<Self, ConfigError> {
        let bad = |reason: &str| ConfigError::Endpoint {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = url::Url::parse(url.trim()).map_err(|e| bad(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https"));
        }
        if parsed.host_str().is_none() {
            return Err(bad("there is no host"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad(
                "credentials do not belong in the URL; use BK_APP_CODE / BK_APP_SECRET",
            ));
        }
        let flavor = if gateway || parsed.path().contains("/api/bk-job/") {
            Flavor::Gateway
        } else {
            Flavor::Esb
        };
        let mut base = parsed;
        base.set_query(None);
        base.set_fragment(None);
        Ok(Endpoint { base, flavor })
    }

    /// The flavour.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The base URL as text (no credentials, ever).
    pub fn as_str(&self) -> &str {
        self.base.as_str()
    }

    /// `host:port` of the endpoint (for a reachability probe).
    pub fn socket_authority(&self) -> Option<(String, u16)> {
        Some((
            self.base.host_str()?.to_owned(),
            self.base.port_or_known_default()?,
        ))
    }

    fn url(&self, route: Route) -> String {
        let base = self.base.as_str().trim_end_matches('/');
        let door = match self.flavor {
            Flavor::Esb => FrontDoor::Esb,
            Flavor::Gateway => FrontDoor::Gateway,
        };
        format!("{base}{}", route.path(door))
    }
}

/// Whether a call may be repeated freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Creates a job: re-sent only when JOB certainly did not act on it.
    Submit,
    /// Reads or an operation JOB rejects when repeated (`operate_job_instance`).
    Idempotent,
}

/// Timeouts and retries.
#[derive(Debug, Clone, Copy)]
pub struct ClientConfig {
    /// TCP/TLS connect timeout: short, so an unreachable endpoint is reported quickly.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Retries of retryable failures.
    pub retry: RetryPolicy,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            // The gateway's own backend timeout is 60 s; a little more lets its 504 arrive.
            request_timeout: Duration::from_secs(70),
            retry: RetryPolicy::default(),
        }
    }
}

/// How the server's TLS certificate is checked. The default verifies it against the
/// platform's public roots (webpki), as a browser would.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// PEM text of extra CA certificates to trust (a private CA of an on-premise BlueKing),
    /// each holding one or more `BEGIN CERTIFICATE` blocks. Added to the public roots.
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Accept any certificate, for any name: no protection against interception. Only for
    /// a test deployment that cannot be given a proper certificate or CA.
    pub insecure_skip_verify: bool,
}

/// A JOB API client. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: Endpoint,
    credentials: Credentials,
    scrubber: Scrubber,
    config: ClientConfig,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint.as_str())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the client (one connection pool, rustls, certificates verified).
    pub fn new(
        endpoint: Endpoint,
        credentials: Credentials,
        config: ClientConfig,
    ) -> Result<Self, ConfigError> {
        Self::with_tls(endpoint, credentials, config, &TlsConfig::default())
    }

    /// As [`Client::new`], with extra trusted CAs or, loudly, no verification at all.
    pub fn with_tls(
        endpoint: Endpoint,
        credentials: Credentials,
        config: ClientConfig,
        tls: &TlsConfig,
    ) -> Result<Self, ConfigError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let mut auth = HeaderValue::from_str(&credentials.header_value()).map_err(|_| {
            ConfigError::Http("credentials contain characters not allowed in an HTTP header".into())
        })?;
        auth.set_sensitive(true);
        headers.insert("X-Bkapi-Authorization", auth);
        headers.insert("Blueking-Language", HeaderValue::from_static("en"));
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // Following a redirect would send the credentials (the header, and for v2 the
            // body on a 307/308) to whatever host the answer names, https or not.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("plan/", env!("CARGO_PKG_VERSION")));
        for pem in &tls.extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ConfigError::Tls(format!("not a PEM certificate: {e}")))?;
            if certs.is_empty() {
                return Err(ConfigError::Tls(
                    "no `-----BEGIN CERTIFICATE-----` block in it".into(),
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if tls.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        Ok(Client {
            http,
            endpoint,
            scrubber: Scrubber::new(&credentials),
            credentials,
            config,
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The scrubber for this client's credentials, for any other text from outside.
    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    /// Opens (and closes) a TCP connection to the endpoint within the connect timeout: a cheap
    /// "is anything listening there" check before a run starts.
    pub async fn probe(&self) -> Result<(), ApiError> {
        let fail = |kind, message: String| ApiError::Transport {
            api: "connect".into(),
            url: self.endpoint.as_str().to_owned(),
            kind,
            message,
        };
        let (host, port) = self
            .endpoint
            .socket_authority()
            .ok_or_else(|| fail(TransportKind::Connect, "no host or port".into()))?;
        match tokio::time::timeout(
            self.config.connect_timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(fail(TransportKind::Connect, e.to_string())),
            Err(_) => Err(fail(
                TransportKind::Connect,
                format!("no connection within {:?}", self.config.connect_timeout),
            )),
        }
    }

    /// v2 `fast_push_file`. See the module docs for what happens when the response is lost.
    pub async fn submit_v2(
        &self,
        request: &FastPushFileRequest,
    ) -> Result<JobExecuteData, ApiError> {
        self.call(Route::FastPushFile, Kind::Submit, to_body(request)?)
            .await
    }

    /// v3 `fast_transfer_file`, exactly the body given (set `start_task` for two-phase).
    pub async fn submit_v3(
        &self,
        request: &FastTransferFileRequest,
    ) -> Result<JobExecuteData, ApiError> {
        self.call(Route::FastTransferFile, Kind::Submit, to_body(request)?)
            .await
    }

    /// v2 `get_job_instance_status`.
    pub async fn status_v2(
        &self,
        bk_biz_id: i64,
        job_instance_id: i64,
    ) -> Result<JobInstanceStatusV2, ApiError> {
        let body = serde_json::json!({"bk_biz_id": bk_biz_id, "job_instance_id": job_instance_id});
        self.call(Route::StatusV2, Kind::Idempotent, body).await
    }

    /// v2 `get_job_instance_log` (`log_content` is HTML-escaped: see [`crate::unescape_log`]).
    pub async fn log_v2(
        &self,
        bk_biz_id: i64,
        job_instance_id: i64,
    ) -> Result<Vec<StepInstanceLogV2>, ApiError> {
        let body = serde_json::json!({"bk_biz_id": bk_biz_id, "job_instance_id": job_instance_id});
        let mut steps: Vec<StepInstanceLogV2> =
            self.call(Route::LogV2, Kind::Idempotent, body).await?;
        let contents = steps
            .iter_mut()
            .flat_map(|step| step.step_results.iter_mut())
            .flat_map(|group| group.ip_logs.iter_mut())
            .filter_map(|log| log.log_content.as_mut());
        for content in contents {
            self.scrubber.scrub_html_escaped(content);
        }
        Ok(steps)
    }

    /// v3 `get_job_instance_status` (GET with a query through the gateway, POST through ESB).
    pub async fn status_v3(
        &self,
        bk_scope_type: &str,
        bk_scope_id: &str,
        job_instance_id: i64,
        return_ip_result: bool,
    ) -> Result<JobInstanceStatusV3, ApiError> {
        let body = serde_json::json!({
            "bk_scope_type": bk_scope_type,
            "bk_scope_id": bk_scope_id,
            "job_instance_id": job_instance_id,
            "return_ip_result": return_ip_result,
        });
        self.call(Route::StatusV3, Kind::Idempotent, body).await
    }

    /// v3 `get_job_instance_ip_log` for one host: by `bk_host_id` when the host has one (an
    /// IPv6-only host has no IPv4 address to name it by), else by BK-Net and address (GET
    /// with a query through the gateway, POST through ESB).
    pub async fn ip_log_v3(
        &self,
        bk_scope_type: &str,
        bk_scope_id: &str,
        job_instance_id: i64,
        step_instance_id: i64,
        host: &IpHost,
    ) -> Result<IpLogV3, ApiError> {
        let mut body = serde_json::json!({
            "bk_scope_type": bk_scope_type,
            "bk_scope_id": bk_scope_id,
            "job_instance_id": job_instance_id,
            "step_instance_id": step_instance_id,
        });
        let named_by = match host.bk_host_id {
            Some(id) => serde_json::json!({ "bk_host_id": id }),
            None => serde_json::json!({ "bk_cloud_id": host.bk_cloud_id, "ip": host.ip }),
        };
        if let (Some(body), serde_json::Value::Object(named_by)) = (body.as_object_mut(), named_by)
        {
            body.extend(named_by);
        }
        self.call(Route::IpLogV3, Kind::Idempotent, body).await
    }

    /// v3 `batch_get_job_instance_ip_log` (at most 500 hosts per call).
    pub async fn batch_ip_log_v3(
        &self,
        request: &BatchIpLogRequest,
    ) -> Result<BatchIpLogV3, ApiError> {
        self.call(Route::BatchIpLogV3, Kind::Idempotent, to_body(request)?)
            .await
    }

    /// `operate_job_instance` on the v2 (`job/`) path.
    pub async fn operate_v2(
        &self,
        request: &OperateJobInstanceRequest,
    ) -> Result<JobExecuteData, ApiError> {
        // Repeating a terminate is harmless (JOB answers 1241003), so it is retried like a read.
        self.call(Route::OperateV2, Kind::Idempotent, to_body(request)?)
            .await
    }

    /// `operate_job_instance` on the v3 path.
    pub async fn operate_v3(
        &self,
        request: &OperateJobInstanceRequest,
    ) -> Result<JobExecuteData, ApiError> {
        self.call(Route::OperateV3, Kind::Idempotent, to_body(request)?)
            .await
    }

    /// v3 `operate_job_instance` code 2: starts a job created with `start_task=false`.
    ///
    /// A lost answer is re-sent like any operation (JOB refuses a second START with
    /// `1241015`), so the answer says whether `1241015` can be our own earlier START
    /// ([`StartAnswer::AlreadyStarted`]) or can only mean that JOB started the job by itself
    /// ([`StartAnswer::StartedByServer`]: a JOB before 3.12, which ignores `start_task`; its
    /// "Invalid request parameters" `1241002` to an operation code it does not know means the
    /// same).
    pub async fn start_v3(
        &self,
        bk_scope_type: &str,
        bk_scope_id: &str,
        job_instance_id: i64,
    ) -> Result<StartAnswer, ApiError> {
        let request = OperateJobInstanceRequest {
            bk_biz_id: None,
            bk_scope_type: Some(bk_scope_type.to_owned()),
            bk_scope_id: Some(bk_scope_id.to_owned()),
            job_instance_id,
            operation_code: crate::v2::OperationCode::Start.code(),
        };
        let (result, earlier_may_have_acted) = self
            .call_tracked::<JobExecuteData>(Route::OperateV3, Kind::Idempotent, to_body(&request)?)
            .await;
        match result {
            Ok(_) => Ok(StartAnswer::Started),
            Err(e) if e.code() == Some(crate::code::UNSUPPORTED_OPERATION_REPEAT_START_JOB) => {
                Ok(if earlier_may_have_acted {
                    StartAnswer::AlreadyStarted
                } else {
                    StartAnswer::StartedByServer
                })
            }
            // "Invalid request parameters" to a START of a job JOB just created: a JOB that
            // does not know operation code 2 either, so it ignored start_task too.
            Err(e) if e.code() == Some(crate::code::ILLEGAL_PARAM) && !earlier_may_have_acted => {
                Ok(StartAnswer::StartedByServer)
            }
            Err(e) => Err(e),
        }
    }

    /// Checks that the front door accepts the credentials, before anything is submitted: one
    /// status query (v3, or v2 when `v2` is set) for a job id that cannot exist. ESB and the
    /// gateway check credentials before JOB sees the call, so an auth failure comes back as
    /// such, and JOB's "Task instance does not exist" (or any other JOB answer) means the
    /// credentials passed. Returns the error when it is an authentication or app permission
    /// failure ([`ErrorClass::Auth`](crate::ErrorClass::Auth)), when the endpoint cannot be
    /// reached, or when what answered is not JOB behind ESB or the gateway (see
    /// [`ApiError::is_not_bk_job`]): a wrong base URL must stop the run here, not turn every
    /// push into a rejection.
    pub async fn check_credentials(&self, bk_biz_id: i64, v2: bool) -> Result<(), ApiError> {
        // JOB ids are positive longs; the largest one is never handed out.
        let id = i64::MAX;
        let result = if v2 {
            self.status_v2(bk_biz_id, id).await.map(|_| ())
        } else {
            let scope = crate::scope_for_biz(bk_biz_id);
            self.status_v3(scope.as_str(), &bk_biz_id.to_string(), id, false)
                .await
                .map(|_| ())
        };
        match result {
            Err(e)
                if e.class() == crate::ErrorClass::Auth
                    || e.is_not_bk_job()
                    || matches!(e, ApiError::Transport { .. }) =>
            {
                Err(e)
            }
            _ => Ok(()),
        }
    }

    async fn call<T: DeserializeOwned + Serialize>(
        &self,
        route: Route,
        kind: Kind,
        body: serde_json::Value,
    ) -> Result<T, ApiError> {
        self.call_tracked(route, kind, body).await.0
    }

    /// As `call`, also telling whether an earlier attempt may have reached JOB and been acted
    /// on (its answer was lost), which makes a "repeated operation" answer our own doing.
    async fn call_tracked<T: DeserializeOwned + Serialize>(
        &self,
        route: Route,
        kind: Kind,
        body: serde_json::Value,
    ) -> (Result<T, ApiError>, bool) {
        let api = route.name();
        let started = Instant::now();
        let mut attempt: u32 = 0;
        let mut may_have_acted = false;
        loop {
            let result = self.once(route, &body).await;
            let error = match result {
                Ok(value) => return (Ok(value), may_have_acted),
                // The one way out for errors: scrubbed before anything logs or returns them.
                Err(error) => self.scrubber.error(error),
            };
            attempt += 1;
            let retry = match kind {
                Kind::Submit => error.submission_is_safe_to_retry(),
                // A read may be repeated after any server-side failure: JOB's 1240002, the
                // gateway's 1650001 or a bare 500 are often one bad moment (§11.14), and
                // giving up on the first one would abandon a job that is running fine.
                Kind::Idempotent => {
                    error.is_retryable() || error.class() == crate::ErrorClass::Internal
                }
            };
            let delay = self.config.retry.delay(attempt - 1, error.retry_after());
            if !retry
                || attempt >= self.config.retry.max_attempts
                || started.elapsed() + delay > self.config.retry.max_total
            {
                return (Err(error), may_have_acted);
            }
            may_have_acted |= error.submission_outcome_unknown();
            tracing::debug!(api, attempt, ?delay, error = %error, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    async fn once<T: DeserializeOwned + Serialize>(
        &self,
        route: Route,
        body: &serde_json::Value,
    ) -> Result<T, ApiError> {
        let url = self.endpoint.url(route);
        let request = self.request(route, &url, body)?;
        self.exchange(route.name(), &url, request).await
    }

    /// Sends one request and reads its answer: redirects refused, error statuses and
    /// envelopes turned into [`ApiError`]s, the body size-capped and scrubbed.
    async fn exchange<T: DeserializeOwned + Serialize>(
        &self,
        api: &str,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let transport = |e: reqwest::Error| {
            let kind = if e.is_connect() {
                TransportKind::Connect
            } else if e.is_timeout() {
                TransportKind::Timeout
            } else {
                TransportKind::Other
            };
            ApiError::Transport {
                api: api.to_owned(),
                url: url.to_owned(),
                kind,
                message: error_chain(&e),
            }
        };
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned());
            return Err(ApiError::Redirect {
                api: api.to_owned(),
                status: status.as_u16(),
                location,
            });
        }
        let retry_after = retry_after(response.headers());
        if !status.is_success() {
            // The status decides; the body only explains, so a body that cannot be read
            // (or is huge) leaves the explanation short, not the error different.
            let bytes = match answer::read_capped(&mut response, MAX_ERROR_BYTES).await {
                Ok(Body::Whole(bytes)) => bytes,
                Ok(Body::TooLarge { .. }) | Err(_) => Vec::new(),
            };
            return Err(answer::http_error(
                &self.scrubber,
                api,
                status.as_u16(),
                retry_after,
                &bytes,
            ));
        }
        match answer::read_capped(&mut response, MAX_ANSWER_BYTES)
            .await
            .map_err(transport)?
        {
            Body::Whole(bytes) => answer::decode(&self.scrubber, api, url, &bytes),
            Body::TooLarge { announced } => Err(answer::too_large(api, announced)),
        }
    }

    /// The request for one call: a GET with a query for the gateway's reads, a POST with a
    /// JSON body otherwise.
    fn request(
        &self,
        route: Route,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::RequestBuilder, ApiError> {
        let api = route.name();
        if route.gateway_method() == HttpMethod::Get && self.endpoint.flavor == Flavor::Gateway {
            let mut u = url::Url::parse(url).map_err(|e| ApiError::Decode {
                api: api.to_owned(),
                message: e.to_string(),
            })?;
            if let Some(map) = body.as_object() {
                let mut pairs = u.query_pairs_mut();
                for (k, v) in map {
                    let text = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    pairs.append_pair(k, &text);
                }
            }
            return Ok(self.http.get(u));
        }
        let mut body = body.clone();
        // ESB's v2 components read credentials from the body as well (the seed document
        // sends both); the header alone is enough for jobv3 and the gateway.
        if route.version() == ApiVersion::V2
            && self.endpoint.flavor == Flavor::Esb
            && let Some(map) = body.as_object_mut()
        {
            for (k, v) in self.credentials.pairs() {
                map.insert(k.to_owned(), serde_json::Value::String(v.to_owned()));
            }
        }
        Ok(self.http.post(url).json(&body))
    }
}

fn to_body<T: Serialize>(value: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::Decode {
        api: "request".into(),
        message: e.to_string(),
    })
}

fn error_chain(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `Retry-After: <seconds>` or the gateway's `X-Bkapi-RateLimit-Reset` (seconds until reset,
/// or an epoch timestamp in seconds on some deployments).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<u64> {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v.ceil() as u64)
    };
    if let Some(s) = number("retry-after") {
        return Some(Duration::from_secs(s));
    }
    let reset = number("x-bkapi-ratelimit-reset")?;
    if reset > 1_000_000_000 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs();
        Some(Duration::from_secs(reset.saturating_sub(now)))
    } else {
        Some(Duration::from_secs(reset))
    }
}

#[cfg(test)]
mod tests;
