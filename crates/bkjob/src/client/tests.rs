//! The client against wiremock: URLs, auth, envelope handling, retry classes.

use std::time::Duration;

use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::*;
use crate::v2::{FileSourceV2, ServerV2};
use crate::{IpHost, RunStatus};

fn creds() -> Credentials {
    Credentials::new("app", "secret-xyz", UserAuth::Username("admin".into()))
}

fn fast() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(500),
        retry: RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_total: Duration::from_secs(5),
        },
    }
}

fn client(server: &MockServer, gateway: bool) -> Client {
    let base = if gateway {
        format!("{}/api/bk-job/prod", server.uri())
    } else {
        server.uri()
    };
    Client::new(Endpoint::parse(&base, false).expect("url"), creds(), fast()).expect("client")
}

fn push_request() -> FastPushFileRequest {
    FastPushFileRequest {
        bk_biz_id: 2,
        bk_scope_type: None,
        bk_scope_id: None,
        task_name: Some("p/a".into()),
        account: "root".into(),
        file_target_path: "/data/".into(),
        file_source: vec![FileSourceV2 {
            files: vec!["/src/a.txt".into()],
            account: "root".into(),
            target_server: Some(ServerV2 {
                ip_list: vec![IpHost::new(0, "10.0.0.1")],
                ..ServerV2::default()
            }),
            ip_list: None,
            custom_query_id: None,
        }],
        target_server: Some(ServerV2 {
            ip_list: vec![IpHost::new(0, "10.0.0.2")],
            ..ServerV2::default()
        }),
        ip_list: None,
        custom_query_id: None,
        timeout: None,
        upload_speed_limit: None,
        download_speed_limit: None,
        bk_callback_url: None,
    }
}

/// A v2 submission to a server that answers it with `answer`: the error, and (checked when the
/// server goes) the submission was sent exactly once, never again.
async fn submitted_once(answer: ResponseTemplate) -> ApiError {
    let server = MockServer::start().await;
    Mock::given(path("/api/c/compapi/v2/job/fast_push_file/"))
        .respond_with(answer)
        .expect(1)
        .mount(&server)
        .await;
    client(&server, false)
        .submit_v2(&push_request())
        .await
        .expect_err("the submission fails")
}

fn ok(data: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "result": true, "code": 0, "message": "", "data": data, "request_id": "r"
    }))
}

#[tokio::test]
async fn v2_submit_sends_credentials_in_header_and_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/c/compapi/v2/job/fast_push_file/"))
        .and(body_partial_json(serde_json::json!({
            "bk_app_code": "app", "bk_app_secret": "secret-xyz", "bk_username": "admin",
            "bk_biz_id": 2, "task_name": "p/a"
        })))
        .respond_with(ok(
            serde_json::json!({"job_instance_id": 10, "job_instance_name": "p/a"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let data = client(&server, false)
        .submit_v2(&push_request())
        .await
        .expect("submitted");
    assert_eq!(data.job_instance_id, 10);
    let requests = server.received_requests().await.unwrap_or_default();
    let auth = requests[0]
        .headers
        .get("X-Bkapi-Authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let auth: serde_json::Value = serde_json::from_str(auth).expect("auth header is JSON");
    assert_eq!(
        auth,
        serde_json::json!({"bk_app_code": "app", "bk_app_secret": "secret-xyz", "bk_username": "admin"})
    );
}

#[tokio::test]
async fn submission_is_retried_after_503_but_not_after_502() {
    let server = MockServer::start().await;
    Mock::given(path("/api/c/compapi/v2/job/fast_push_file/"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(path("/api/c/compapi/v2/job/fast_push_file/"))
        .respond_with(ok(serde_json::json!({"job_instance_id": 11})))
        .mount(&server)
        .await;
    let c = client(&server, false);
    let data = c.submit_v2(&push_request()).await.expect("absorbed");
    assert_eq!(data.job_instance_id, 11);
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(3));

    let err = submitted_once(ResponseTemplate::new(502)).await;
    assert!(err.submission_outcome_unknown(), "{err}");
}

#[tokio::test]
async fn lost_response_to_a_submission_is_not_resent() {
    let err = submitted_once(
        ok(serde_json::json!({"job_instance_id": 12})).set_delay(Duration::from_secs(2)),
    )
    .await;
    assert!(
        matches!(
            err,
            ApiError::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.submission_outcome_unknown());
}

#[tokio::test]
async fn esb_rate_limit_is_retried_and_job_errors_are_not() {
    let server = MockServer::start().await;
    Mock::given(path("/api/c/compapi/v2/job/get_job_instance_status/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "result": false, "code": 1306429, "message": "Access frequency limit", "data": null
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/c/compapi/v2/job/get_job_instance_status/"))
        .respond_with(ok(serde_json::json!({
            "is_finished": true,
            "job_instance": {"job_instance_id": 5, "status": 3, "end_time": null},
            "blocks": [{"step_instances": [{"step_instance_id": 6, "status": 3,
                "step_ip_status": [{"ip": "10.0.0.2", "bk_cloud_id": 0, "status": 9}]}]}]
        })))
        .mount(&server)
        .await;
    Mock::given(path("/api/c/compapi/v2/job/get_job_instance_log/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "result": false, "code": 1244006, "message": "Task instance does not exist"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server, false);
    let status = c.status_v2(2, 5).await.expect("status");
    assert!(status.is_finished);
    assert_eq!(
        status.job_instance.map(|j| j.status),
        Some(RunStatus::Success)
    );
    let err = c.log_v2(2, 5).await.expect_err("not found");
    assert_eq!(err.code(), Some(1_244_006));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn gateway_uses_v3_paths_get_queries_and_honours_429() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/bk-job/prod/api/v3/get_job_instance_status"))
        .and(query_param("job_instance_id", "7"))
        .and(query_param("return_ip_result", "true"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("X-Bkapi-RateLimit-Reset", "0")
                .set_body_json(serde_json::json!({
                    "code_name": "RATE_LIMIT_RESTRICTION", "code": 1642902,
                    "message": "too many", "result": false, "data": null
                })),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/bk-job/prod/api/v3/get_job_instance_status"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "result": true, "code": 0, "job_request_id": "j",
            "data": {"finished": false, "job_instance": {"job_instance_id": 7, "status": 2},
                     "step_instance_list": [{"step_instance_id": 8, "status": 2, "step_ip_result_list": null}]}
        })))
        .mount(&server)
        .await;
    let c = client(&server, true);
    assert_eq!(c.endpoint().flavor(), Flavor::Gateway);
    let status = c.status_v3("biz", "2", 7, true).await.expect("status");
    assert!(!status.finished);
    let requests = server.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 2);
    // The gateway reads credentials only from the header; they never go into the query.
    let r: &Request = &requests[0];
    assert!(!r.url.as_str().contains("secret"));
}

#[tokio::test]
async fn gateway_auth_error_is_classified_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/api/bk-job/prod/api/v3/fast_transfer_file"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "code_name": "INVALID_ARGS", "code": 1640001,
            "message": "Parameters error [reason=\"app code cannot be empty\"]",
            "result": false, "data": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server, true);
    let request: FastTransferFileRequest = serde_json::from_value(serde_json::json!({
        "bk_scope_type": "biz", "bk_scope_id": "2", "file_target_path": "/d/",
        "file_source_list": [], "target_server": {}
    }))
    .expect("request");
    let err = c.submit_v3(&request).await.expect_err("auth");
    assert_eq!(err.class(), crate::ErrorClass::Auth);
    assert!(err.to_string().contains("INVALID_ARGS"), "{err}");
    assert!(!err.submission_outcome_unknown());
}

#[tokio::test]
async fn unreachable_endpoint_fails_fast_as_connect_error() {
    // A port nothing listens on: bind, learn the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let c = Client::new(
        Endpoint::parse(&format!("http://127.0.0.1:{port}"), false).expect("url"),
        creds(),
        fast(),
    )
    .expect("client");
    let err = c.probe().await.expect_err("nothing listens");
    assert!(matches!(
        err,
        ApiError::Transport {
            kind: TransportKind::Connect,
            ..
        }
    ));
    let err = c.submit_v2(&push_request()).await.expect_err("refused");
    assert!(err.submission_is_safe_to_retry());
    assert!(!err.to_string().contains("secret"));
}

#[test]
fn endpoint_flavour_and_urls() {
    let esb = Endpoint::parse("https://paas.example.com/", false).expect("esb");
    assert_eq!(esb.flavor(), Flavor::Esb);
    assert_eq!(
        esb.url(Route::FastTransferFile),
        "https://paas.example.com/api/c/compapi/v2/jobv3/fast_transfer_file/"
    );
    let gw = Endpoint::parse("https://bkapi.example.com/api/bk-job/prod", false).expect("gw");
    assert_eq!(gw.flavor(), Flavor::Gateway);
    assert_eq!(
        gw.url(Route::OperateV3),
        "https://bkapi.example.com/api/bk-job/prod/api/v3/operate_job_instance"
    );
    assert!(Endpoint::parse("https://u:p@example.com", false).is_err());
    assert!(Endpoint::parse("ftp://example.com", false).is_err());
}

fn job_error(code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "result": false, "code": code, "message": message, "request_id": "r"
    }))
}

#[tokio::test]
async fn start_tells_a_lost_start_from_a_job_that_started_by_itself() {
    let repeat = "Unsupported operation,do not repeat start the job,job_instance_id=7";
    // The first START's answer is lost (timeout); the re-sent one is refused as a repeat:
    // that repeat is our own first START.
    let server = MockServer::start().await;
    Mock::given(path("/api/bk-job/prod/api/v3/operate_job_instance"))
        .and(body_partial_json(
            serde_json::json!({"job_instance_id": 7, "operation_code": 2, "bk_scope_id": "2"}),
        ))
        .respond_with(
            ok(serde_json::json!({"job_instance_id": 7})).set_delay(Duration::from_secs(2)),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/bk-job/prod/api/v3/operate_job_instance"))
        .respond_with(job_error(1_241_015, repeat))
        .expect(1)
        .mount(&server)
        .await;
    let answer = client(&server, true).start_v3("biz", "2", 7).await;
    assert_eq!(answer.expect("start"), StartAnswer::AlreadyStarted);

    // Refused as a repeat on the very first START: JOB started it without being asked.
    let server = MockServer::start().await;
    Mock::given(path("/api/c/compapi/v2/jobv3/operate_job_instance/"))
        .respond_with(job_error(1_241_015, repeat))
        .expect(1)
        .mount(&server)
        .await;
    let answer = client(&server, false).start_v3("biz", "2", 7).await;
    assert_eq!(answer.expect("start"), StartAnswer::StartedByServer);

    // A JOB that does not know operation code 2 at all.
    let server = MockServer::start().await;
    Mock::given(path("/api/c/compapi/v2/jobv3/operate_job_instance/"))
        .respond_with(job_error(1_241_002, "Invalid request parameters"))
        .expect(1)
        .mount(&server)
        .await;
    let answer = client(&server, false).start_v3("biz", "2", 7).await;
    assert_eq!(answer.expect("start"), StartAnswer::StartedByServer);

    // Accepted; any other refusal is an error.
    let server = MockServer::start().await;
    Mock::given(path("/api/c/compapi/v2/jobv3/operate_job_instance/"))
        .respond_with(ok(serde_json::json!({"job_instance_id": 7})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/c/compapi/v2/jobv3/operate_job_instance/"))
        .respond_with(job_error(1_244_006, "Task instance does not exist"))
        .mount(&server)
        .await;
    let c = client(&server, false);
    assert_eq!(
        c.start_v3("biz", "2", 7).await.expect("start"),
        StartAnswer::Started
    );
    let err = c.start_v3("biz", "2", 8).await.expect_err("no such job");
    assert_eq!(err.code(), Some(1_244_006));
}

#[tokio::test]
async fn credentials_check_passes_on_any_job_answer_and_fails_on_auth() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/bk-job/prod/api/v3/get_job_instance_status"))
        .and(query_param("job_instance_id", i64::MAX.to_string()))
        .respond_with(job_error(1_244_006, "Task instance does not exist"))
        .expect(1)
        .mount(&server)
        .await;
    client(&server, true)
        .check_credentials(2, false)
        .await
        .expect("JOB answered: the credentials passed");

    let server = MockServer::start().await;
    Mock::given(path("/api/bk-job/prod/api/v3/get_job_instance_status"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "code_name": "INVALID_ARGS", "code": 1640001,
            "message": "Parameters error [reason=\"bk_app_code or bk_app_secret is incorrect\"]",
            "result": false, "data": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, true)
        .check_credentials(2, false)
        .await
        .expect_err("refused");
    assert!(
        err.to_string()
            .contains("bk_app_code or bk_app_secret is incorrect"),
        "{err}"
    );

    // ESB v2 reports auth failures at HTTP 200 with 1306000.
    let server = MockServer::start().await;
    Mock::given(path("/api/c/compapi/v2/job/get_job_instance_status/"))
        .respond_with(job_error(
            1_306_000,
            "APP Code [bk_app_code] cannot be empty",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, false)
        .check_credentials(2, true)
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Some(1_306_000));
}

#[tokio::test]
async fn an_access_token_alone_is_the_whole_header() {
    let server = MockServer::start().await;
    Mock::given(path("/api/bk-job/prod/api/v3/get_job_instance_status"))
        .respond_with(job_error(1_244_006, "Task instance does not exist"))
        .expect(1)
        .mount(&server)
        .await;
    let c = Client::new(
        Endpoint::parse(&format!("{}/api/bk-job/prod", server.uri()), false).expect("url"),
        Credentials::access_token_only("oauth-abc"),
        fast(),
    )
    .expect("client");
    c.check_credentials(2, false).await.expect("passes");
    let requests = server.received_requests().await.unwrap_or_default();
    let header = requests[0]
        .headers
        .get("x-bkapi-authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let header: serde_json::Value = serde_json::from_str(&header).expect("json");
    assert_eq!(header, serde_json::json!({"access_token": "oauth-abc"}));
}

#[tokio::test]
async fn credentials_check_fails_when_what_answers_is_not_bk_job() {
    // ESB without the jobv3 component, a 404 page, an HTML page: the run could not succeed,
    // so the check reports it instead of letting every push be refused.
    let cases = [
        job_error(1_306_404, "component not found"),
        ResponseTemplate::new(404).set_body_json(serde_json::json!({
            "result": false, "data": null, "message": "The content does not exist"
        })),
        ResponseTemplate::new(200).set_body_string("<html>login</html>"),
    ];
    for template in cases {
        let server = MockServer::start().await;
        Mock::given(path("/api/c/compapi/v2/jobv3/get_job_instance_status/"))
            .respond_with(template)
            .mount(&server)
            .await;
        let err = client(&server, false)
            .check_credentials(2, false)
            .await
            .expect_err("not BK-JOB");
        assert!(err.is_not_bk_job(), "{err}");
    }
}

fn finished_v2() -> ResponseTemplate {
    ok(serde_json::json!({
        "is_finished": true,
        "job_instance": {"job_instance_id": 5, "status": 3},
        "blocks": []
    }))
}

#[tokio::test]
async fn reads_are_retried_after_server_side_errors_and_submissions_are_not() {
    // A bare 500, the gateway-style 500 body and JOB's 1240002, then the answer.
    let server = MockServer::start().await;
    Mock::given(path("/api/c/compapi/v2/job/get_job_instance_status/"))
        .respond_with(ResponseTemplate::new(500).set_body_string("oops"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/c/compapi/v2/job/get_job_instance_status/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "result": false, "code": 1240002, "message": "Internal Server Error"
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/c/compapi/v2/job/get_job_instance_status/"))
        .respond_with(finished_v2())
        .mount(&server)
        .await;
    let status = client(&server, false)
        .status_v2(2, 5)
        .await
        .expect("absorbed");
    assert!(status.is_finished);
    assert_eq!(server.received_requests().await.map(|r| r.len()), Some(3));

    let err = submitted_once(job_error(1_240_002, "Internal Server Error")).await;
    assert!(err.submission_outcome_unknown(), "{err}");
}

#[tokio::test]
async fn an_answer_cut_short_is_a_broken_transfer() {
    let server = MockServer::start().await;
    Mock::given(path("/api/c/compapi/v2/job/get_job_instance_status/"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("{\"result\": true, \"code\": 0, \"da"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/api/c/compapi/v2/job/get_job_instance_status/"))
        .respond_with(finished_v2())
        .mount(&server)
        .await;
    let c = client(&server, false);
    assert!(c.status_v2(2, 5).await.expect("asked again").is_finished);

    let err =
        submitted_once(ResponseTemplate::new(200).set_body_string("{\"result\": true, \"co")).await;
    assert!(
        matches!(
            err,
            ApiError::Transport {
                kind: TransportKind::Other,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("cut short"), "{err}");
    assert!(err.submission_outcome_unknown());
    // A whole answer that is simply not JOB's JSON is still "not BK-JOB", not a transfer error.
    let server = MockServer::start().await;
    Mock::given(path("/api/c/compapi/v2/job/get_job_instance_status/"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>login</html>"))
        .mount(&server)
        .await;
    let err = client(&server, false)
        .status_v2(2, 5)
        .await
        .expect_err("not json");
    assert!(err.is_not_bk_job(), "{err:?}");
}

#[test]
fn certificate_errors_are_not_retried_and_advice_follows_the_class() {
    let tls = ApiError::Transport {
        api: "get_job_instance_status".into(),
        url: "https://job.example.com/".into(),
        kind: TransportKind::Connect,
        message: "client error (Connect): invalid peer certificate: UnknownIssuer".into(),
    };
    assert!(tls.is_certificate_error());
    assert!(!tls.is_retryable());
    assert!(!tls.submission_is_safe_to_retry());
    let refused = ApiError::Transport {
        api: "fast_push_file".into(),
        url: "https://job.example.com/".into(),
        kind: TransportKind::Connect,
        message: "tcp connect error: Connection refused (os error 111)".into(),
    };
    assert!(!refused.is_certificate_error());
    assert!(refused.submission_is_safe_to_retry());

    for (code, needle) in [
        (1_240_003, "invalid"),
        (1_244_030, "CMDB"),
        (9_900_403, "IAM"),
        (1_244_032, "quota"),
        (1_244_021, "split"),
        (1_306_000, "BK_APP_SECRET"),
        (1_240_001, "--resume"),
    ] {
        let advice = ApiError::advice_for_code(code).unwrap_or_default();
        assert!(advice.contains(needle), "{code}: {advice}");
    }
    assert_eq!(ApiError::advice_for_code(1_240_002), None);
}

#[test]
fn a_ca_file_without_a_certificate_is_refused() {
    let endpoint = Endpoint::parse("https://job.example.com", false).expect("url");
    let tls = TlsConfig {
        extra_ca_pem: vec![b"not a certificate".to_vec()],
        insecure_skip_verify: false,
    };
    let err = Client::with_tls(endpoint.clone(), creds(), fast(), &tls).expect_err("refused");
    assert!(matches!(err, ConfigError::Tls(_)), "{err:?}");
    let insecure = TlsConfig {
        insecure_skip_verify: true,
        ..TlsConfig::default()
    };
    assert!(Client::with_tls(endpoint, creds(), fast(), &insecure).is_ok());
}

/// A canary secret that the hostile answers below echo back.
const SECRET: &str = "secret-xyz";

fn canary_client(server: &MockServer) -> Client {
    let creds = Credentials::new(
        "app",
        "CANARY-SECRET-123",
        UserAuth::Token("CANARY-TOKEN-456".into()),
    );
    Client::new(
        Endpoint::parse(&server.uri(), false).expect("url"),
        creds,
        fast(),
    )
    .expect("client")
}

/// No run of 8 characters of either canary in `text`, in any case.
fn assert_no_canary(text: &str) {
    let lower = text.to_ascii_lowercase();
    for canary in ["canary-secret-123", "canary-token-456"] {
        for at in 0..=canary.len() - FRAGMENT {
            let piece = &canary[at..at + FRAGMENT];
            assert!(!lower.contains(piece), "`{piece}` leaked: {text}");
        }
    }
}

#[tokio::test]
async fn redirects_are_not_followed_and_name_where_they_point() {
    for status in [301, 302, 303, 307, 308] {
        let elsewhere = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ok(serde_json::json!({"job_instance_id": 1})))
            .expect(0)
            .mount(&elsewhere)
            .await;
        let server = MockServer::start().await;
        let location = format!(
            "{}/api/c/compapi/v2/job/fast_push_file/?leak=CANARY-SECRET-123",
            elsewhere.uri()
        );
        Mock::given(path("/api/c/compapi/v2/job/fast_push_file/"))
            .respond_with(ResponseTemplate::new(status).insert_header("Location", location))
            .expect(1)
            .mount(&server)
            .await;
        let err = canary_client(&server)
            .submit_v2(&push_request())
            .await
            .expect_err("a redirect is an error");
        assert!(matches!(err, ApiError::Redirect { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&elsewhere.uri()), "{text}");
        assert!(text.contains("does not follow redirects"), "{text}");
        assert_no_canary(&text);
        assert_no_canary(&format!("{err:?}"));
        // The endpoint answered without passing the call on: a refusal, never re-sent.
        assert!(!err.submission_outcome_unknown(), "{status}");
        assert!(!err.submission_is_safe_to_retry(), "{status}");
        assert!(err.is_not_bk_job(), "{status}");
    }
}

#[tokio::test]
async fn echoed_credentials_are_withheld_from_every_error_text() {
    let echo = "X-Bkapi-Authorization: {\"bk_app_code\":\"app\",\"bk_app_secret\":\"CANARY-SECRET-123\",\"bk_token\":\"CANARY-TOKEN-456\"}";
    // Cut by the server at 200 characters, in the middle of the secret.
    let cut: String = format!("{}CANARY-SECRET-123", "x".repeat(184))
        .chars()
        .take(200)
        .collect();
    let answers = [
        job_error(1_240_003, echo),
        job_error(1_240_003, &cut),
        ResponseTemplate::new(500).set_body_json(serde_json::json!({
            "code": 1_650_001, "code_name": echo, "message": echo, "result": false
        })),
        ResponseTemplate::new(502).set_body_string(format!("<html><pre>{echo}</pre></html>")),
        ResponseTemplate::new(200).set_body_string(format!("<html><pre>{echo}</pre></html>")),
        // A value of the wrong type: serde's error quotes it.
        ok(serde_json::json!({"job_instance_id": echo})),
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"result": true, "code": echo, "data": null})),
        // JSON escapes spell the secret in the raw bytes without showing it.
        ResponseTemplate::new(200).set_body_string(
            r#"{"result": false, "code": 1240003, "message": "\u0043ANARY-SECRET-123"}"#,
        ),
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "result": false, "code": 9_900_403, "message": echo,
            "permission": {"actions": [{"id": echo, "name": echo}]}
        })),
    ];
    for answer in answers {
        let server = MockServer::start().await;
        Mock::given(path("/api/c/compapi/v2/job/fast_push_file/"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let err = canary_client(&server)
            .submit_v2(&push_request())
            .await
            .expect_err("refused");
        assert_no_canary(&err.to_string());
        assert_no_canary(&format!("{err:?}"));
        assert_no_canary(&err.permission_actions().join(" "));
    }
}

#[tokio::test]
async fn echoed_credentials_are_withheld_from_the_data_of_an_answer() {
    let server = MockServer::start().await;
    Mock::given(path("/api/c/compapi/v2/job/fast_push_file/"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            r#"{"result": true, "code": 0, "data": {"job_instance_id": 3,
                "job_instance_name": "p/a CANARY-TOKEN-456 \u0043ANARY-SECRET-123"}}"#,
        ))
        .mount(&server)
        .await;
    let data = canary_client(&server)
        .submit_v2(&push_request())
        .await
        .expect("accepted");
    assert_eq!(data.job_instance_id, 3);
    let name = data.job_instance_name.unwrap_or_default();
    assert_no_canary(&name);
    assert!(name.starts_with("p/a "), "{name}");
    assert!(name.contains(WITHHELD), "{name}");
}

#[tokio::test]
async fn impossible_job_ids_are_invalid_answers() {
    for data in [
        serde_json::json!({"job_instance_id": 0}),
        serde_json::json!({"job_instance_id": -5}),
        serde_json::json!({"job_instance_id": 9, "step_instance_id": 0}),
    ] {
        let err = submitted_once(ok(data.clone())).await;
        assert!(matches!(err, ApiError::Decode { .. }), "{data}: {err:?}");
        assert!(err.to_string().contains("not a JOB id"), "{err}");
        // JOB may have created a job whose id we could not read: never submitted again.
        assert!(err.submission_outcome_unknown(), "{data}");
    }
}

#[tokio::test]
async fn an_answer_larger_than_the_cap_is_refused_unread() {
    let server = MockServer::start().await;
    let huge = vec![b' '; MAX_ANSWER_BYTES + 1];
    Mock::given(path("/api/c/compapi/v2/job/fast_push_file/"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(huge))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, false)
        .submit_v2(&push_request())
        .await
        .expect_err("too large");
    assert!(err.to_string().contains("larger than the 32 MiB"), "{err}");
    assert!(err.submission_outcome_unknown());
}

/// A server that answers every request with an endless chunked body, `pause` between 64 KiB
/// chunks; it reports how many bytes it managed to write before the client hung up.
async fn endless_chunked(pause: Duration) -> (String, tokio::sync::mpsc::Receiver<usize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let mut written = 0usize;
                let start = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n10\r\n{\"data\": \"aaaaaa\r\n";
                if stream.write_all(start).await.is_err() {
                    return;
                }
                let chunk = format!("10000\r\n{}\r\n", "a".repeat(0x10000));
                while stream.write_all(chunk.as_bytes()).await.is_ok() {
                    written += 0x10000;
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
                let _ = tx.send(written).await;
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn an_endless_chunked_answer_stops_at_the_cap() {
    let (url, mut written) = endless_chunked(Duration::ZERO).await;
    let c = Client::new(
        Endpoint::parse(&url, false).expect("url"),
        creds(),
        ClientConfig {
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::none(),
            ..fast()
        },
    )
    .expect("client");
    let err = c.status_v2(2, 5).await.expect_err("too large");
    assert!(err.to_string().contains("larger than"), "{err}");
    drop(c);
    let written = written.recv().await.expect("the server saw the hang-up");
    // The cap, and what the kernel's socket buffers held besides: nowhere near endless.
    assert!(written < MAX_ANSWER_BYTES + (16 << 20), "{written}");
}

#[tokio::test]
async fn a_slow_answer_is_cut_by_the_request_timeout() {
    let (url, _written) = endless_chunked(Duration::from_millis(50)).await;
    let c = Client::new(
        Endpoint::parse(&url, false).expect("url"),
        creds(),
        ClientConfig {
            retry: RetryPolicy::none(),
            ..fast()
        },
    )
    .expect("client");
    let started = std::time::Instant::now();
    let err = c.status_v2(2, 5).await.expect_err("too slow");
    assert!(
        matches!(
            err,
            ApiError::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{err:?}"
    );
    // The 500 ms request timeout covers the body, which never ends.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_test_secret_is_withheld_too() {
    let scrubber = Scrubber::new(&creds());
    assert_eq!(scrubber.scrub(SECRET), WITHHELD);
    // A username is an identifier, shown in diagnostics.
    assert_eq!(scrubber.scrub("admin"), "admin");
}
