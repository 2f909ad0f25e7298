//! `plan apply` with `api = "v3"`, the built binary against the simulator over HTTP, through
//! ESB's `jobv3/` and through the API gateway: the same happy path and failures as v2
//! (`apply.rs`), only v3 calls on the wire, two-phase submission (`start_task=false`, then
//! START) and what happens when an answer is lost, strict mode, gateway credentials and rate
//! limits, host logs in chunks of 500.

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::apply::{Fixture, TWO_STAGES, code, fault_tally, task_base, text};
use crate::server::SimServer;

/// The two-stage plan of `apply.rs`, in v3.
fn v3(plan: &str) -> String {
    plan.replacen("account = \"root\"", "account = \"root\"\napi = \"v3\"", 1)
}

/// `plan apply plan.toml --endpoint URL` with the given credential variables.
fn apply_endpoint(f: &Fixture, url: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = f.apply_endpoint(url);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run plan")
}

const CREDS: &[(&str, &str)] = &[
    ("BK_APP_CODE", "plan-app"),
    ("BK_APP_SECRET", "right-secret"),
    ("BK_USERNAME", "admin"),
];

/// A world with one registered app (so the gateway checks secrets).
const ONE_APP: &str = "[[app]]\ncode = \"plan-app\"\nsecret = \"right-secret\"\n";

fn calls<'a>(requests: &'a [Value], api: &str) -> Vec<&'a Value> {
    requests.iter().filter(|r| r["api"] == api).collect()
}

/// Jobs created for a task name (accepted `fast_transfer_file` calls).
fn created(requests: &[Value], task: &str) -> Vec<i64> {
    calls(requests, "fast_transfer_file")
        .into_iter()
        .filter(|r| task_base(&r["body"]["task_name"]) == task)
        .filter_map(|r| r["job_instance_id"].as_i64())
        .collect()
}

/// Every call was a v3 call through the given front door: no `job/` (v2) path, no v2 API.
fn assert_only_v3(requests: &[Value], front: &str) {
    assert!(!requests.is_empty());
    for r in requests {
        let path = r["path"].as_str().unwrap_or_default();
        assert_eq!(r["front"], front, "{r}");
        match front {
            "esb" => assert!(path.starts_with("/api/c/compapi/v2/jobv3/"), "{path}"),
            _ => assert!(path.starts_with("/api/bk-job/prod/api/v3/"), "{path}"),
        }
        assert!(!path.contains("/job/"), "a v2 path: {path}");
        assert_ne!(r["api"], "fast_push_file", "{r}");
        assert_ne!(r["api"], "get_job_instance_log", "{r}");
    }
}

/// Two-phase submission on the wire: each job created with `start_task=false`, then started
/// once with `operate_job_instance` code 2, after its creation.
fn assert_two_phase(requests: &[Value], task: &str) {
    let jobs = created(requests, task);
    assert_eq!(jobs.len(), 1, "{task}: {jobs:?}");
    let create = requests
        .iter()
        .position(|r| r["api"] == "fast_transfer_file" && r["job_instance_id"] == jobs[0])
        .expect("create");
    assert_eq!(requests[create]["body"]["start_task"], false);
    let starts: Vec<usize> = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r["api"] == "operate_job_instance"
                && r["body"]["operation_code"] == 2
                && r["body"]["job_instance_id"] == jobs[0]
                && r["code"] == 0
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(starts.len(), 1, "{task}: one accepted START");
    assert!(starts[0] > create);
}

fn assert_happy(f: &Fixture, out: &Output, requests: &[Value], payload: &[u8]) {
    assert_eq!(code(out), 0, "{}", text(&out.stderr));
    for ip in ["10.0.2.1", "10.0.2.2"] {
        assert_eq!(
            f.read(ip, "/opt/app/app.tar.gz").as_deref(),
            Some(payload),
            "{ip}"
        );
    }
    let report = text(&out.stdout);
    assert!(report.contains("done: 2 pushes (2 succeeded)"), "{report}");
    assert_two_phase(requests, "e2e/to-relays");
    assert_two_phase(requests, "e2e/to-web");
    // The v3 body, field by field as bk-job-api.md §3.1 names them.
    let body = &calls(requests, "fast_transfer_file")[0]["body"];
    assert_eq!(body["bk_scope_type"], "biz");
    assert_eq!(body["bk_scope_id"], "2");
    assert_eq!(body["account_alias"], "root");
    assert_eq!(task_base(&body["task_name"]), "e2e/to-relays");
    assert_ne!(
        body["task_name"], "e2e/to-relays",
        "apply appends the run tag"
    );
    assert_eq!(body["file_target_path"], "/data/stage/");
    assert_eq!(
        body["file_source_list"][0]["file_list"][0],
        "/data/release/app.tar.gz"
    );
    assert_eq!(body["file_source_list"][0]["account"]["alias"], "root");
    assert_eq!(
        body["file_source_list"][0]["server"]["ip_list"][0]["ip"],
        "10.0.0.1"
    );
    assert_eq!(body["target_server"]["ip_list"][0]["ip"], "10.0.1.1");
    assert!(body.get("bk_biz_id").is_none() && body.get("file_source").is_none());
    // Status with per-host results (for every job; against a real endpoint the first query
    // is the credentials check, for a job id that cannot exist).
    let jobs: Vec<i64> = calls(requests, "fast_transfer_file")
        .iter()
        .filter_map(|r| r["job_instance_id"].as_i64())
        .collect();
    let polls: Vec<&Value> = calls(requests, "get_job_instance_status")
        .into_iter()
        .filter(|r| {
            let id = &r["body"]["job_instance_id"];
            let id = id
                .as_i64()
                .or_else(|| id.as_str().and_then(|s| s.parse().ok()));
            id.is_some_and(|id| jobs.contains(&id))
        })
        .collect();
    assert!(polls.len() >= 2);
    for p in polls {
        let flag = &p["body"]["return_ip_result"];
        assert!(flag == true || flag == "true", "{p}");
    }
}

#[test]
fn v3_through_esb_jobv3_delivers_with_only_v3_calls() {
    let f = Fixture::new(&v3(TWO_STAGES), "");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    f.write("10.0.0.1", "/data/release/app.tar.gz", &payload);
    let out = f.apply_sandbox(&[]);
    let requests = f.requests();
    assert_happy(&f, &out, &requests, &payload);
    assert_only_v3(&requests, "esb");
}

#[test]
fn api_flag_turns_a_v2_plan_into_v3() {
    let f = Fixture::new(TWO_STAGES, "");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"flag");
    let out = f.apply_sandbox(&["--api", "v3"]);
    let requests = f.requests();
    assert_happy(&f, &out, &requests, b"flag");
    assert_only_v3(&requests, "esb");
}

#[test]
fn v3_through_the_gateway_delivers_with_only_v3_calls() {
    // Through the sandbox's gateway front door (`--gateway`) ...
    let f = Fixture::new(&v3(TWO_STAGES), "");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"gateway bytes");
    let out = f.apply_sandbox(&["--gateway"]);
    let requests = f.requests();
    assert_happy(&f, &out, &requests, b"gateway bytes");
    assert_only_v3(&requests, "gateway");

    // ... and through a gateway URL with real (checked) credentials.
    let f = Fixture::new(&v3(TWO_STAGES), ONE_APP);
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"gateway bytes");
    let server = SimServer::start(&f.path("sandbox"));
    let out = apply_endpoint(&f, &server.gateway(), CREDS, &[]);
    let requests = f.requests();
    assert_happy(&f, &out, &requests, b"gateway bytes");
    assert_only_v3(&requests, "gateway");
    assert!(!text(&out.stderr).contains("right-secret"));
}

#[test]
fn an_access_token_alone_is_enough_for_the_gateway() {
    let f = Fixture::new(&v3(TWO_STAGES), ONE_APP);
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"token");
    let server = SimServer::start(&f.path("sandbox"));
    let out = apply_endpoint(
        &f,
        &server.gateway(),
        &[("BK_ACCESS_TOKEN", "oauth-token-123")],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(
        f.read("10.0.2.2", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"token"[..])
    );
    let log = std::fs::read_to_string(f.path("sandbox/.jobsim/requests.jsonl")).expect("log");
    assert!(!log.contains("oauth-token-123"));
}

#[test]
fn missing_source_fails_with_320_through_esb_and_gateway() {
    for gateway in [false, true] {
        let f = Fixture::new(&v3(TWO_STAGES), "");
        let args: &[&str] = if gateway { &["--gateway"] } else { &[] };
        let out = f.apply_sandbox(args);
        assert_eq!(code(&out), 3, "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("plan.toml:"), "{stderr}");
        assert!(
            stderr.contains("push `to-relays` failed on 1 of 1 hosts"),
            "{stderr}"
        );
        assert!(
            stderr.contains("host 0:10.0.1.1 (host_id:1002): status 320 File pull failed"),
            "{stderr}"
        );
        // v3 reports the GSE code in the status itself.
        assert!(stderr.contains("error code 104"), "{stderr}");
        assert!(text(&out.stdout).contains("blocked"));
        let requests = f.requests();
        assert!(created(&requests, "e2e/to-web").is_empty());
        // The failed host's log came from the v3 batch log API.
        assert_eq!(calls(&requests, "batch_get_job_instance_ip_log").len(), 1);
        assert_only_v3(&requests, if gateway { "gateway" } else { "esb" });
    }
}

#[test]
fn unknown_target_host_is_refused_at_submission() {
    let plan = v3(TWO_STAGES).replace(r#"ips = ["10.0.1.1"]"#, r#"ips = ["10.0.1.1", "10.0.9.9"]"#);
    let f = Fixture::new(&plan, "");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let out = f.apply_sandbox(&["--gateway"]);
    assert_eq!(code(&out), 3);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("push `to-relays` was refused by JOB"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1244030") && stderr.contains("10.0.9.9"),
        "{stderr}"
    );
}

const STRICT: &str = r#"
[plan]
name = "strict"
bk_biz_id = 2
account = "root"
api = "v3"

[[push]]
name = "into-missing"
from = { hosts = "10.0.0.1", files = ["/data/a.txt"] }
to = { hosts = "10.0.1.1", path = "/data/not/there/" }
transfer_mode = "strict"

[[push]]
name = "forced"
from = { hosts = "10.0.0.1", files = ["/data/a.txt"] }
to = { hosts = "10.0.1.2", path = "/data/created/" }
transfer_mode = "force"
"#;

#[test]
fn strict_mode_into_a_missing_directory_fails_with_329() {
    for gateway in [false, true] {
        let f = Fixture::new(STRICT, "");
        f.write("10.0.0.1", "/data/a.txt", b"strict");
        let args: &[&str] = if gateway {
            &["--gateway", "--continue", "independent"]
        } else {
            &["--continue", "independent"]
        };
        let out = f.apply_sandbox(args);
        assert_eq!(code(&out), 3, "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("push `into-missing` failed on 1 of 1 hosts"),
            "{stderr}"
        );
        assert!(
            stderr.contains("host 0:10.0.1.1 (host_id:1002): status 329 File Transmission Error"),
            "{stderr}"
        );
        assert!(!f.host_file("10.0.1.1", "/data/not").exists());
        // Force mode created its directory.
        assert_eq!(
            f.read("10.0.1.2", "/data/created/a.txt").as_deref(),
            Some(&b"strict"[..])
        );
        let requests = f.requests();
        let modes: Vec<&Value> = calls(&requests, "fast_transfer_file")
            .iter()
            .map(|r| &r["body"]["transfer_mode"])
            .collect();
        assert!(modes.contains(&&Value::from(1)) && modes.contains(&&Value::from(2)));
    }
}

#[test]
fn a_lost_submission_answer_never_creates_a_second_job() {
    // JOB creates the job (unstarted), then the connection drops before the answer.
    let f = Fixture::new(
        &v3(TWO_STAGES),
        "[[fault]]\napi = \"fast_transfer_file\"\nkind = \"drop_after\"\ncount = 1\n",
    );
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"once");
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("answer was lost"), "{stderr}");
    assert!(stderr.contains("waits unstarted"), "{stderr}");
    let requests = f.requests();
    assert_eq!(calls(&requests, "fast_transfer_file").len(), 1, "sent once");
    assert_eq!(created(&requests, "e2e/to-relays").len(), 1);
    // The orphan was never started: nothing moved.
    assert!(calls(&requests, "operate_job_instance").is_empty());
    assert!(f.read("10.0.1.1", "/data/stage/app.tar.gz").is_none());

    // A resume refuses rather than create a second job, and says why it is safe to start over.
    let out = f.apply_sandbox(&["--resume"]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("start_task=false"), "{stderr}");
    assert!(stderr.contains("e2e/to-relays"), "{stderr}");
    assert_eq!(created(&f.requests(), "e2e/to-relays").len(), 1);
}

#[test]
fn a_lost_start_answer_is_resent_and_the_repeat_is_understood() {
    let f = Fixture::new(
        &v3(TWO_STAGES),
        "[[fault]]\napi = \"operate_job_instance\"\nkind = \"drop_after\"\ncount = 1\n",
    );
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"started once");
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("ignores start_task"));
    assert!(!text(&out.stderr).contains("ignores start_task"));
    let requests = f.requests();
    let job = created(&requests, "e2e/to-relays");
    assert_eq!(job.len(), 1);
    let starts: Vec<Option<i64>> = calls(&requests, "operate_job_instance")
        .iter()
        .filter(|r| r["body"]["job_instance_id"] == job[0])
        .map(|r| r["code"].as_i64())
        .collect();
    // Dropped (no answer), then the repeat JOB refuses as already started.
    assert_eq!(starts, vec![None, Some(1_241_015)], "{starts:?}");
    assert_eq!(
        f.read("10.0.2.1", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"started once"[..])
    );
    // Both pushes were still submitted in two phases.
    assert_eq!(
        calls(&requests, "fast_transfer_file")
            .iter()
            .filter(|r| r["body"]["start_task"] == false)
            .count(),
        2
    );
}

#[test]
fn a_job_that_ignores_start_task_is_detected_and_the_run_falls_back() {
    let f = Fixture::new(&v3(TWO_STAGES), "[sim]\nignore_start_task = true\n");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"legacy");
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("ignores start_task=false"), "{said}");
    assert_eq!(
        f.read("10.0.2.2", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"legacy"[..])
    );
    let requests = f.requests();
    let bodies: Vec<&Value> = calls(&requests, "fast_transfer_file")
        .iter()
        .map(|r| &r["body"])
        .collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["start_task"], false);
    assert!(bodies[1].get("start_task").is_none(), "{}", bodies[1]);
    // One START (answered "already started"), none for the one-phase job.
    assert_eq!(calls(&requests, "operate_job_instance").len(), 1);
    let journal = journal_text(&f, "e2e");
    assert!(journal.contains("\"by_server\":true"), "{journal}");
}

fn journal_text(f: &Fixture, plan: &str) -> String {
    let dir = f.path("state/runs").join(plan);
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).expect("runs").flatten() {
        text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
    }
    text
}

#[test]
fn gateway_credential_failures_cannot_start_with_the_gateways_reason() {
    let f = Fixture::new(&v3(TWO_STAGES), ONE_APP);
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let server = SimServer::start(&f.path("sandbox"));
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[
                ("BK_APP_CODE", "plan-app"),
                ("BK_APP_SECRET", "wrong-secret"),
                ("BK_USERNAME", "admin"),
            ],
            "bk_app_code or bk_app_secret is incorrect",
        ),
        (
            &[
                ("BK_APP_CODE", "nobody"),
                ("BK_APP_SECRET", "whatever"),
                ("BK_USERNAME", "admin"),
            ],
            "app not found",
        ),
        // No app code at all: refused before anything is sent.
        (
            &[("BK_APP_SECRET", "right-secret"), ("BK_USERNAME", "admin")],
            "BK_APP_CODE",
        ),
    ];
    for (env, reason) in cases {
        let out = apply_endpoint(&f, &server.gateway(), env, &[]);
        assert_eq!(code(&out), 4, "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(stderr.contains(reason), "{reason}: {stderr}");
        assert!(!stderr.contains("wrong-secret") && !stderr.contains("right-secret"));
    }
    let requests = f.requests();
    assert!(calls(&requests, "fast_transfer_file").is_empty());
    for r in &requests {
        assert_eq!(r["http_status"], 400, "{r}");
        assert_eq!(r["code"], 1_640_001, "{r}");
    }
    assert!(!f.path("state/runs").exists(), "no run was started");
}

#[test]
fn gateway_rate_limits_are_waited_out_as_the_headers_say() {
    let f = Fixture::new(
        &v3(TWO_STAGES),
        "[[fault]]\napi = \"fast_transfer_file\"\nkind = \"http_429\"\ncount = 2\n",
    );
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"patience");
    let started = Instant::now();
    let out = f.apply_sandbox(&["--gateway"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let requests = f.requests();
    let submits = calls(&requests, "fast_transfer_file");
    let statuses: Vec<&Value> = submits.iter().map(|r| &r["http_status"]).collect();
    assert_eq!(statuses[..3], [429, 429, 200], "{statuses:?}");
    assert_eq!(created(&requests, "e2e/to-relays").len(), 1);
    // X-Bkapi-RateLimit-Reset: 1 (second), twice.
    let gap = at(&submits[2]["time"]) - at(&submits[0]["time"]);
    assert!(
        gap >= chrono::TimeDelta::milliseconds(1900),
        "re-sent after {gap}"
    );
    assert!(started.elapsed() >= Duration::from_millis(1900));
}

/// The time of a request log entry, parsed whole (date and offset included, so a gap that
/// spans midnight is still right).
fn at(time: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let t = time.as_str().unwrap_or_else(|| panic!("no time: {time}"));
    chrono::DateTime::parse_from_rfc3339(t).unwrap_or_else(|e| panic!("{t}: {e}"))
}

#[test]
fn logs_of_more_than_500_failed_hosts_are_fetched_in_chunks_of_500() {
    let ips: Vec<String> = (0..600)
        .map(|i| format!("10.9.{}.{}", i / 200, i % 200 + 1))
        .collect();
    let list = ips
        .iter()
        .map(|ip| format!("\"{ip}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let plan = format!(
        r#"
[plan]
name = "wide"
bk_biz_id = 2
account = "root"
api = "v3"

[[push]]
name = "everywhere"
from = {{ hosts = "10.0.0.1", files = ["/data/missing.bin"] }}
to = {{ hosts = [{list}], path = "/opt/wide/" }}
"#
    );
    let f = Fixture::new(&plan, "");
    for ip in &ips {
        std::fs::create_dir_all(f.path("sandbox/hosts/0").join(ip)).expect("host dir");
    }
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("push `everywhere` failed on 600 of 600 hosts"),
        "{stderr}"
    );
    let requests = f.requests();
    // JOB names every v3 host by its bk_host_id: the logs are asked for by id, never by IP.
    let batches: Vec<usize> = calls(&requests, "batch_get_job_instance_ip_log")
        .iter()
        .inspect(|r| assert!(r["body"].get("ip_list").is_none(), "{r}"))
        .map(|r| r["body"]["host_id_list"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(batches, vec![500, 100]);
    assert_only_v3(&requests, "esb");
}

#[test]
fn show_prints_v3_bodies_and_v2_refuses_v3_only_keys() {
    let f = Fixture::new(STRICT, "");
    // The plan says v3: `show` prints fast_transfer_file bodies.
    let out = f
        .plan()
        .args(["show", "plan.toml", "--format", "json"])
        .output()
        .expect("show");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["api"], "v3");
    let request = &doc["pushes"][0]["request"];
    assert_eq!(request["bk_scope_type"], "biz");
    assert_eq!(request["account_alias"], "root");
    assert_eq!(request["transfer_mode"], 1);
    assert_eq!(request["file_source_list"][0]["account"]["alias"], "root");
    assert_eq!(
        request["start_task"], false,
        "show prints the two-phase body apply sends"
    );
    // Byte for byte what apply sends (the simulator's request log holds no credentials).
    let sent_by = Fixture::new(STRICT, "");
    sent_by.apply_sandbox(&[]);
    let requests = sent_by.requests();
    // Apply appends its run tag to the task name (`#<8 hex>`); the rest is show's.
    let sent: Vec<Value> = calls(&requests, "fast_transfer_file")
        .into_iter()
        .map(|r| {
            let mut body = r["body"].clone();
            body["task_name"] = json!(task_base(&r["body"]["task_name"]));
            body
        })
        .collect();
    let same_push: Vec<&Value> = sent
        .iter()
        .filter(|b| b["task_name"] == request["task_name"])
        .collect();
    assert_eq!(same_push, vec![request]);

    // `--api v3` on a v2 plan does the same.
    let g = Fixture::new(TWO_STAGES, "");
    let out = g
        .plan()
        .args(["show", "plan.toml", "--format", "json", "--api", "v3"])
        .output()
        .expect("show");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["api"], "v3");
    assert_eq!(
        doc["pushes"][0]["request"]["target_server"]["ip_list"][0]["ip"],
        "10.0.1.1"
    );

    // `--api v2` over a plan with transfer_mode: refused at check time, on every command.
    for args in [
        vec!["check", "plan.toml", "--api", "v2"],
        vec!["show", "plan.toml", "--api", "v2"],
        vec!["apply", "plan.toml", "--sandbox", "sandbox", "--api", "v2"],
    ] {
        let out = f.plan().args(&args).output().expect("run");
        assert_eq!(code(&out), 1, "{args:?}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("`transfer_mode` is only available with api = \"v3\""),
            "{args:?}: {stderr}"
        );
    }
    assert!(f.requests().is_empty());
}

#[test]
fn transient_faults_are_absorbed_through_esb_and_gateway() {
    for gateway in [false, true] {
        let f = Fixture::new(
            &v3(TWO_STAGES),
            "[[fault]]\napi = \"fast_transfer_file\"\nkind = \"http_503\"\ncount = 2\n\
             [[fault]]\napi = \"get_job_instance_status\"\nkind = \"http_502\"\ncount = 3\n\
             [[fault]]\napi = \"operate_job_instance\"\nkind = \"http_503\"\ncount = 1\n",
        );
        f.write("10.0.0.1", "/data/release/app.tar.gz", b"through the storm");
        let args: &[&str] = if gateway { &["--gateway"] } else { &[] };
        let out = f.apply_sandbox(args);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        assert_eq!(
            f.read("10.0.2.1", "/opt/app/app.tar.gz").as_deref(),
            Some(&b"through the storm"[..])
        );
        let requests = f.requests();
        assert_eq!(created(&requests, "e2e/to-relays").len(), 1);
        assert_eq!(created(&requests, "e2e/to-web").len(), 1);
        // Every injected fault hit the run, each on its API.
        assert_eq!(
            fault_tally(&requests),
            [
                ("fast_transfer_file", "http_503", 2),
                ("get_job_instance_status", "http_502", 3),
                ("operate_job_instance", "http_503", 1),
            ],
            "gateway={gateway}"
        );
        // Through the gateway a front-end error carries its 16503xx/16502xx code; ESB's
        // plain HTTP error has no body code.
        let (unavailable, bad_gateway) = if gateway {
            (json!(1_650_300), json!(1_650_200))
        } else {
            (Value::Null, Value::Null)
        };
        let answers = |api: &str| -> Vec<(Value, Value)> {
            calls(&requests, api)
                .iter()
                .map(|r| (r["http_status"].clone(), r["code"].clone()))
                .collect()
        };
        let ok = (json!(200), json!(0));
        let unavailable = (json!(503), unavailable);
        assert_eq!(
            answers("fast_transfer_file"),
            [
                unavailable.clone(),
                unavailable.clone(),
                ok.clone(),
                ok.clone()
            ]
        );
        assert_eq!(
            answers("operate_job_instance"),
            [unavailable, ok.clone(), ok.clone()]
        );
        assert_eq!(
            answers("get_job_instance_status")[..4],
            [
                (json!(502), bad_gateway.clone()),
                (json!(502), bad_gateway.clone()),
                (json!(502), bad_gateway),
                ok
            ]
        );
        assert_only_v3(&requests, if gateway { "gateway" } else { "esb" });
    }
}

#[test]
fn a_bad_gateway_on_the_log_read_of_a_failed_push_is_read_again() {
    // The source file is missing: the push fails, and its hosts' logs are read for the
    // report; the first read meets a 502, the second is answered.
    let f = Fixture::new(
        &v3(TWO_STAGES),
        "[[fault]]\napi = \"batch_get_job_instance_ip_log\"\nkind = \"http_502\"\ncount = 1\n",
    );
    let out = f.apply_sandbox(&[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("host 0:10.0.1.1 (host_id:1002): status 320 File pull failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("does not exist"),
        "JOB's log line: {stderr}"
    );
    let requests = f.requests();
    assert_eq!(
        fault_tally(&requests),
        [("batch_get_job_instance_ip_log", "http_502", 1)]
    );
    let reads: Vec<&Value> = calls(&requests, "batch_get_job_instance_ip_log")
        .iter()
        .map(|r| &r["http_status"])
        .collect();
    assert_eq!(reads, [502, 200]);
}

#[test]
fn json_events_and_dry_run_through_the_gateway() {
    let f = Fixture::new(&v3(TWO_STAGES), "");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let out = f.apply_sandbox(&["--gateway", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("nothing was submitted"));
    assert!(calls(&f.requests(), "fast_transfer_file").is_empty());

    let out = f.apply_sandbox(&["--gateway", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let events: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(events[0]["event"], "apply_started");
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(kinds.contains(&"push_submitted"), "{kinds:?}");
    assert!(!kinds.contains(&"warning"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"run_finished"));
    assert_eq!(
        events.last().expect("events")["report"]["pushes"][1]["hosts_ok"],
        2
    );
}

#[test]
fn an_ipv6_static_host_is_refused_at_check_time_under_v3() {
    let plan = TWO_STAGES.replace(
        r#"ips = ["10.0.1.1"]"#,
        r#"ips = ["10.0.1.1", "0:[fd00::7]"]"#,
    );
    let f = Fixture::new(&plan, "");
    // An error for v2 (JOB finds static hosts by IPv4 only) ...
    let out = f
        .plan()
        .args(["check", "plan.toml"])
        .output()
        .expect("check");
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("plan::parser::ipv6_host_in_v2"),
        "{}",
        text(&out.stderr)
    );
    // ... and at the host string for v3, on check and apply alike.
    for args in [
        vec!["check", "plan.toml", "--api", "v3"],
        vec!["apply", "plan.toml", "--sandbox", "sandbox", "--api", "v3"],
    ] {
        let out = f.plan().args(&args).output().expect("run");
        assert_eq!(code(&out), 1, "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("IPv6 host `0:[fd00::7]` cannot be sent with api = \"v3\""),
            "{stderr}"
        );
        assert!(stderr.contains("plan.toml:"), "{stderr}");
        assert!(stderr.contains("dynamic group"), "{stderr}");
    }
    assert!(f.requests().is_empty());
}

#[test]
fn a_gateway_permission_refusal_is_reported_with_its_status_and_code_name() {
    // The app may query but was not granted `fast_transfer_file` on the gateway.
    let f = Fixture::new(
        &v3(TWO_STAGES),
        "[[app]]\ncode = \"plan-app\"\nsecret = \"right-secret\"\n\
         gateway_apis = [\"get_job_instance_status\", \"batch_get_job_instance_ip_log\", \"operate_job_instance\", \"get_job_instance_list\"]\n",
    );
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let server = SimServer::start(&f.path("sandbox"));
    let out = apply_endpoint(&f, &server.gateway(), CREDS, &[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("push `to-relays` was refused by JOB"),
        "{stderr}"
    );
    assert!(
        stderr.contains("HTTP 403 (code 1640301 APP_NO_PERMISSION)"),
        "{stderr}"
    );
    assert!(stderr.contains("resource=fast_transfer_file"), "{stderr}");
    let requests = f.requests();
    let submits = calls(&requests, "fast_transfer_file");
    assert_eq!(submits.len(), 1, "a 403 is not retried");
    assert_eq!(submits[0]["http_status"], 403);
}

#[test]
fn an_endpoint_that_is_not_bk_job_cannot_start_instead_of_rejecting_every_push() {
    let f = Fixture::new(&v3(TWO_STAGES), "");
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"x");
    let server = SimServer::start(&f.path("sandbox"));
    // `--gateway` with the server's bare base URL (the gateway lives under
    // /api/bk-job/<stage>), and an ESB URL with a stray path: both answer HTTP 404.
    let cases: [(String, &[&str]); 2] = [
        (server.url.clone(), &["--gateway"]),
        (format!("{}/esb", server.url), &[]),
    ];
    for (url, args) in cases {
        let out = apply_endpoint(&f, &url, CREDS, args);
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), 4, "{url}: {stderr}");
        assert!(
            stderr.contains("does not answer as BK-JOB") && stderr.contains("/api/bk-job/<stage>"),
            "{url}: {stderr}"
        );
        assert!(!stderr.contains("refused by JOB"), "{stderr}");
    }
    let requests = f.requests();
    assert!(calls(&requests, "fast_transfer_file").is_empty());
    assert!(!f.path("state/runs").exists(), "no run was started");
}
