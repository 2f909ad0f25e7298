//! A simulator other machines can reach: on a non-loopback address it starts only with
//! `[[app]]` credentials and accepts only those (no tokens, signatures or anonymous calls);
//! the embedded, private simulator accepts only the app it was started with. Binding
//! `0.0.0.0:0` is local; every request goes to 127.0.0.1.

use std::process::Command;

use plan_jobsim::{Config, Error, JobSim, SimOptions};
use serde_json::{Value, json};

use crate::support::v2_body;

const APPS: &str = "[[app]]\ncode = \"ops\"\nsecret = \"right-secret\"\n";

fn sandbox(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("hosts/0/10.0.0.1/data")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("hosts/0/10.0.0.2")).expect("mkdir");
    std::fs::write(dir.path().join("hosts/0/10.0.0.1/data/a.bin"), b"x").expect("write");
    std::fs::write(dir.path().join("jobsim.toml"), config).expect("config");
    dir
}

/// Submits a v2 push on loopback with `auth` as the `X-Bkapi-Authorization` header.
async fn submit(port: u16, auth: &Value) -> Value {
    reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/api/c/compapi/v2/job/fast_push_file/"
        ))
        .header("x-bkapi-authorization", auth.to_string())
        .json(&v2_body())
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn an_unspecified_address_without_apps_is_refused() {
    let dir = sandbox("");
    let err = JobSim::start(dir.path(), "0.0.0.0:0".parse().expect("addr"))
        .await
        .expect_err("started exposed without apps");
    assert!(matches!(err, Error::Exposed { .. }), "{err}");
    assert!(err.to_string().contains("[[app]]"), "{err}");
    // Loopback stays as it was: any app is accepted where only this machine can call.
    let sim = JobSim::start(dir.path(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("loopback");
    let r = submit(
        sim.addr().port(),
        &json!({"bk_app_code": "any", "bk_app_secret": "any", "bk_username": "admin"}),
    )
    .await;
    assert_eq!(r["code"], 0, "{r}");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_exposed_simulator_accepts_only_registered_secrets() {
    let dir = sandbox(APPS);
    let sim = JobSim::start(dir.path(), "0.0.0.0:0".parse().expect("addr"))
        .await
        .expect("exposed with apps");
    let port = sim.addr().port();
    let refused = [
        json!({"bk_app_code": "ops", "bk_app_secret": "wrong", "bk_username": "admin"}),
        json!({"bk_app_code": "other", "bk_app_secret": "right-secret", "bk_username": "admin"}),
        json!({"bk_app_code": "ops", "bk_signature": "forged", "bk_username": "admin"}),
        json!({"access_token": "forged"}),
        json!({"bk_app_code": "ops", "access_token": "forged"}),
    ];
    for auth in &refused {
        let r = submit(port, auth).await;
        assert_eq!(r["code"], 1_306_000, "{auth} accepted: {r}");
    }
    let r = submit(
        port,
        &json!({"bk_app_code": "ops", "bk_app_secret": "right-secret", "bk_username": "admin"}),
    )
    .await;
    assert_eq!(r["code"], 0, "{r}");
    assert!(
        sim.requests()
            .iter()
            .all(|r| r.job_instance_id.is_none() || r.code == Some(0))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn anonymous_calls_are_never_exposed() {
    let dir = sandbox(APPS);
    let options = SimOptions {
        config: Some(Config::from_toml(APPS).expect("config")),
        allow_anonymous: true,
        ..SimOptions::default()
    };
    let sim = JobSim::start_with(dir.path(), "0.0.0.0:0".parse().expect("addr"), options)
        .await
        .expect("start");
    let r: Value = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/api/c/compapi/v2/job/fast_push_file/",
            sim.addr().port()
        ))
        .json(&v2_body())
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(r["code"], 1_306_000, "{r}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_private_simulator_accepts_only_its_own_app() {
    let dir = sandbox("");
    let (sim, app) = JobSim::start_private(dir.path()).await.expect("start");
    assert!(sim.addr().ip().is_loopback());
    let port = sim.addr().port();
    for auth in [
        json!({"bk_app_code": "plan-sandbox", "bk_app_secret": "sandbox", "bk_username": "x"}),
        json!({"bk_app_code": app.code, "bk_app_secret": "guess", "bk_username": "x"}),
        json!({"bk_app_code": app.code, "bk_signature": "forged", "bk_username": "x"}),
        json!({"access_token": "forged"}),
    ] {
        let r = submit(port, &auth).await;
        assert_eq!(r["code"], 1_306_000, "{auth} accepted: {r}");
    }
    let r = submit(
        port,
        &json!({"bk_app_code": app.code, "bk_app_secret": app.secret, "bk_username": "x"}),
    )
    .await;
    assert_eq!(r["code"], 0, "{r}");
    sim.shutdown().await;
}

#[test]
fn the_binary_warns_and_refuses_a_non_loopback_address_without_apps() {
    let dir = sandbox("");
    let out = Command::new(env!("CARGO_BIN_EXE_jobsim"))
        .args([
            "--root",
            dir.path().to_str().expect("utf8"),
            "--listen",
            "0.0.0.0:0",
        ])
        .output()
        .expect("run jobsim");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "it listened");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning: jobsim on 0.0.0.0:0"), "{stderr}");
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0"),
        "{stderr}"
    );
}
