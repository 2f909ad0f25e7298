//! Both front doors: authentication failures in ESB's and the gateway's own shapes,
//! envelopes, unknown paths, injected faults, and the credential-free request log.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Sim, job_id, v2_body, v3_body};

const APPS: &str = r#"
[[app]]
code = "app"
secret = "secret"

[[app]]
code = "strict"
secret = "s2"
allow_username = false
gateway_apis = ["get_job_instance_status"]
"#;

fn is_hex32(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit()))
}

async fn esb_raw(sim: &Sim, auth: Option<&str>, body: Value) -> Value {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = auth {
        headers.push(("x-bkapi-authorization", a));
    }
    let r = sim
        .call(
            Method::POST,
            "/api/c/compapi/v2/job/fast_push_file/",
            &headers,
            Some(&body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "ESB answers auth errors with 200");
    r.body
}

#[tokio::test]
async fn esb_auth_failures() {
    let sim = Sim::with_config(APPS);
    let cases: Vec<(Option<&str>, Value, i64, &str)> = vec![
        (
            None,
            v2_body(),
            1_306_000,
            "APP Code [bk_app_code] cannot be empty",
        ),
        (
            Some("{not json"),
            v2_body(),
            1_306_406,
            "Parameters error, request header X-Bkapi-Authorization is not a valid JSON format string",
        ),
        (
            Some(r#"{"bk_app_code":"app"}"#),
            v2_body(),
            1_306_000,
            "Signature [bk_signature] and APP Secret [bk_app_secret] cannot be empty at the same time",
        ),
        (
            Some(r#"{"bk_app_code":"nope","bk_app_secret":"x"}"#),
            v2_body(),
            1_306_000,
            "Invalid APP Code [bk_app_code=nope], please confirm if the APP Code has been registered",
        ),
        (
            Some(r#"{"bk_app_code":"app","bk_app_secret":"bad"}"#),
            v2_body(),
            1_306_000,
            "APP Secret verification failed, pelase confirm if the APP Secret and APP Code [bk_app_code=app] match",
        ),
        (
            Some(r#"{"bk_app_code":"app","bk_app_secret":"secret"}"#),
            v2_body(),
            1_306_000,
            "User authentication failed, please provide a valid user identity, such as bk_token, bk_username",
        ),
        (
            Some(r#"{"bk_app_code":"strict","bk_app_secret":"s2","bk_username":"admin"}"#),
            v2_body(),
            1_306_000,
            "User authentication failed, please provide a valid user identity, such as bk_token, bk_username",
        ),
    ];
    for (auth, body, code, message) in cases {
        let r = esb_raw(&sim, auth, body).await;
        assert_eq!(r["code"], json!(code), "{auth:?}: {r}");
        assert_eq!(r["message"], json!(message));
        assert_eq!(r["result"], json!(false));
        assert_eq!(r["data"], Value::Null);
        assert!(is_hex32(&r["request_id"]), "{r}");
    }
    // Credentials in the parameters work when there is no header; a bk_token user too.
    let mut body = v2_body();
    body["bk_app_code"] = json!("strict");
    body["bk_app_secret"] = json!("s2");
    body["bk_token"] = json!("tok");
    let r = esb_raw(&sim, None, body).await;
    assert_eq!(r["code"], json!(0), "params auth with bk_token: {r}");
    // GET with credentials in the query string.
    let r = sim
        .call(Method::GET, "/api/c/compapi/v2/jobv3/get_job_instance_status?bk_app_code=app&bk_app_secret=secret&bk_username=u&bk_biz_id=2&job_instance_id=7", &[], None)
        .await;
    assert_eq!(r.body["code"], json!(1_244_006), "{}", r.body);
}

#[tokio::test]
async fn esb_envelope_and_unknown_paths() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let ok = sim.esb("jobv3/fast_transfer_file", v3_body()).await;
    assert_eq!(ok["result"], json!(true));
    assert_eq!(ok["message"], json!(""), "ESB defaults message");
    assert!(is_hex32(&ok["request_id"]) && ok["job_request_id"].is_string());
    let id = job_id(&ok);
    assert_eq!(ok["data"]["step_instance_id"], json!(id + 1));
    assert!(
        ok["data"]["job_instance_name"].as_str().is_some_and(
            |n| n.starts_with("File Transfer_") && n.len() == "File Transfer_".len() + 17
        )
    );
    let v2 = sim.esb("job/fast_push_file", v2_body()).await;
    assert!(
        v2["data"].get("step_instance_id").is_none(),
        "v2 omits step_instance_id"
    );
    assert!(job_id(&v2) > id, "ids increase");

    let r = sim
        .call(
            Method::POST,
            "/api/c/compapi/v2/job/no_such_api/",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body,
        json!({"result": false, "data": null, "message": "The content does not exist"})
    );
    // A path under neither front door (e.g. a base URL missing its gateway prefix) gets the
    // same JSON 404, not an empty page.
    for path in [
        "/api/v3/fast_transfer_file",
        "/foo/api/c/compapi/v2/job/fast_push_file/",
    ] {
        let r = sim.call(Method::POST, path, &[], None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            r.body,
            json!({"result": false, "data": null, "message": "The content does not exist"}),
            "{path}"
        );
    }
    // Without the version segment and without the trailing slash.
    let r = sim
        .call(
            Method::POST,
            "/api/c/compapi/jobv3/fast_transfer_file",
            &[("x-bkapi-authorization", crate::support::CREDS)],
            Some(&v3_body()),
        )
        .await;
    assert_eq!(r.body["code"], json!(0));
}

#[tokio::test]
async fn gateway_auth_and_envelope() {
    let sim = Sim::with_config(APPS);
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let gw = "/api/bk-job/prod/api/v3/fast_transfer_file";
    let bad = |reason: &str| format!("Parameters error [reason=\"{reason}\"]");
    let cases: Vec<(Option<&str>, String)> = vec![
        (None, bad("app code cannot be empty")),
        (
            Some(r#"{"bk_app_code":"app"}"#),
            bad("please provide bk_app_secret or bk_signature to verify app"),
        ),
        (
            Some(r#"{"bk_app_code":"zzz","bk_app_secret":"x"}"#),
            bad("app not found"),
        ),
        (
            Some(r#"{"bk_app_code":"app","bk_app_secret":"wrong"}"#),
            bad("bk_app_code or bk_app_secret is incorrect"),
        ),
        (
            Some(r#"{"bk_app_code":"app","bk_app_secret":"secret"}"#),
            bad(
                "user authentication failed, please provide a valid user identity, such as bk_username, bk_token, access_token",
            ),
        ),
    ];
    for (auth, message) in cases {
        let mut headers = vec![];
        if let Some(a) = auth {
            headers.push(("x-bkapi-authorization", a));
        }
        let r = sim.call(Method::POST, gw, &headers, Some(&v3_body())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.body,
            json!({"code_name": "INVALID_ARGS", "code": 1_640_001, "message": message, "result": false, "data": null})
        );
        assert_eq!(r.headers["x-bkapi-error-code"], "1640001");
        assert!(r.headers.contains_key("x-bkapi-error-message"));
    }
    // Credentials in the body are not read by the gateway.
    let mut body = v3_body();
    body["bk_app_code"] = json!("app");
    body["bk_app_secret"] = json!("secret");
    body["bk_username"] = json!("admin");
    let r = sim.call(Method::POST, gw, &[], Some(&body)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // No grant for this resource.
    let strict = [(
        "x-bkapi-authorization",
        r#"{"bk_app_code":"strict","bk_app_secret":"s2","bk_token":"t"}"#,
    )];
    let r = sim.call(Method::POST, gw, &strict, Some(&v3_body())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["code"], json!(1_640_301));
    assert_eq!(r.body["code_name"], json!("APP_NO_PERMISSION"));

    // Success: no message, no request_id in the body, request id in a header.
    let r = sim
        .gw(Method::POST, "fast_transfer_file", Some(v3_body()))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.get("message").is_none(), "{}", r.body);
    assert!(r.body.get("request_id").is_none());
    assert!(r.body["job_request_id"].is_string());
    assert!(r.headers.contains_key("x-bkapi-request-id"));
    let id = job_id(&r.body);
    // Errors: no data.
    let mut rel = v3_body();
    rel["file_target_path"] = json!("relative/path");
    let r = sim.gw(Method::POST, "fast_transfer_file", Some(rel)).await;
    assert_eq!(r.body["code"], json!(1_241_007));
    assert!(r.body.get("data").is_none());
    // GET status with query coercion.
    let r = sim
        .gw(Method::GET, &format!("get_job_instance_status?bk_scope_type=biz&bk_scope_id=2&job_instance_id={id}&return_ip_result=True"), None)
        .await;
    assert_eq!(r.body["code"], json!(0), "{}", r.body);
    assert!(r.body["data"]["step_instance_list"][0]["step_ip_result_list"].is_array());
    // Wrong method and unknown resource.
    for (m, p) in [
        (Method::GET, "fast_transfer_file"),
        (Method::POST, "get_job_instance_status"),
        (Method::POST, "nope"),
    ] {
        let r = sim.gw(m, p, Some(json!({}))).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{p}");
        assert_eq!(r.body["code"], json!(1_640_401));
    }
}

#[tokio::test]
async fn injected_faults() {
    let sim = Sim::with_config(
        r#"
[[fault]]
api = "fast_transfer_file"
kind = "http_429"
count = 1
[[fault]]
api = "get_job_instance_status"
kind = "http_503"
count = 2
[[fault]]
api = "fast_push_file"
kind = "esb_1306429"
count = 1
[[fault]]
api = "operate_job_instance"
kind = "job_error"
code = 1240001
count = 1
"#,
    );
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let r = sim
        .gw(Method::POST, "fast_transfer_file", Some(v3_body()))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["code"], json!(1_642_902));
    assert_eq!(r.headers["x-bkapi-ratelimit-remaining"], "0");
    let r = sim
        .gw(Method::POST, "fast_transfer_file", Some(v3_body()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "only the next call was limited");
    let id = job_id(&r.body);

    let q = format!("get_job_instance_status?bk_biz_id=2&job_instance_id={id}");
    assert_eq!(
        sim.gw(Method::GET, &q, None).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let r = sim.gw(Method::GET, &q, None).await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!(1_650_300))
    );
    assert_eq!(sim.gw(Method::GET, &q, None).await.status, StatusCode::OK);

    let r = sim.esb("job/fast_push_file", v2_body()).await;
    assert_eq!(r["code"], json!(1_306_429));
    assert!(r["message"].as_str().is_some_and(|m| m.starts_with("Access frequency limit, Access frequency of APP [app]")));
    let r = sim
        .esb(
            "job/operate_job_instance",
            json!({"bk_biz_id": 2, "job_instance_id": id, "operation_code": 1}),
        )
        .await;
    assert_eq!(
        (r["code"].clone(), r["message"].clone()),
        (json!(1_240_001), json!("Service Unavailable"))
    );
}

#[tokio::test]
async fn request_log_has_no_credentials() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let mut body = v2_body();
    body["bk_app_code"] = json!("app");
    body["bk_app_secret"] = json!("TOPSECRET1");
    body["bk_token"] = json!("TOPSECRET2");
    body["access_token"] = json!("TOPSECRET3");
    body["bk_username"] = json!("alice");
    let r = sim
        .call(
            Method::POST,
            "/api/c/compapi/v2/job/fast_push_file/",
            &[],
            Some(&body),
        )
        .await;
    let id = job_id(&r.body);
    let text = std::fs::read_to_string(sim.dir.path().join(".jobsim/requests.jsonl")).expect("log");
    assert!(!text.contains("TOPSECRET"), "{text}");
    let rec: Value = serde_json::from_str(text.lines().next().expect("a line")).expect("json line");
    assert_eq!(rec["api"], json!("fast_push_file"));
    assert_eq!(rec["body"]["bk_app_code"], json!("app"));
    assert_eq!(rec["body"]["bk_username"], json!("alice"));
    assert_eq!(rec["code"], json!(0));
    assert_eq!(rec["http_status"], json!(200));
    assert_eq!(rec["job_instance_id"], json!(id));
    assert_eq!(sim.state.requests().len(), 1);
}

#[tokio::test]
async fn malformed_bodies_and_form_fields() {
    let sim = Sim::new();
    let esb = "/api/c/compapi/v2/jobv3/get_job_instance_status/";
    let r = sim
        .call_text(
            Method::POST,
            esb,
            &[("x-bkapi-authorization", crate::support::CREDS)],
            Some("{oops".into()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["code"], json!(1_306_000));
    assert_eq!(
        r.body["message"],
        json!("Request JSON string is wrong in format, which cannot be analyzed.")
    );
    // Form fields (ESB reads them when the body is not JSON), credentials included.
    let r = sim
        .call_text(
            Method::POST,
            esb,
            &[],
            Some(
                "bk_app_code=a&bk_app_secret=s&bk_username=u&bk_biz_id=2&job_instance_id=5".into(),
            ),
        )
        .await;
    assert_eq!(r.body["code"], json!(1_244_006), "{}", r.body);
    // The gateway answers a malformed body with JOB's Bad Request.
    let r = sim
        .call_text(
            Method::POST,
            "/api/bk-job/prod/api/v3/operate_job_instance",
            &[("x-bkapi-authorization", crate::support::CREDS)],
            Some("{oops".into()),
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (StatusCode::OK, json!(1_240_003))
    );
}

#[tokio::test]
async fn anonymous_embedding_mode() {
    let dir = tempfile::tempdir().expect("tmp");
    let state = plan_jobsim::SimState::new(
        dir.path(),
        plan_jobsim::SimOptions {
            allow_anonymous: true,
            ..Default::default()
        },
    )
    .expect("state");
    let sim = Sim { dir, state };
    let q = json!({"bk_biz_id": 2, "job_instance_id": 5});
    let r = sim
        .call(
            Method::POST,
            "/api/c/compapi/v2/job/get_job_instance_status/",
            &[],
            Some(&q),
        )
        .await;
    assert_eq!(
        r.body["code"],
        json!(1_244_006),
        "no credentials accepted: {}",
        r.body
    );
    let r = sim
        .call(
            Method::POST,
            "/api/c/compapi/v2/job/get_job_instance_status/",
            &[("x-bkapi-authorization", r#"{"bk_app_code":"x"}"#)],
            Some(&q),
        )
        .await;
    assert_eq!(
        r.body["code"],
        json!(1_306_000),
        "credentials that are present are still checked"
    );
}
