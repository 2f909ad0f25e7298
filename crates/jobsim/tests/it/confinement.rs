//! Every path stays inside its host: `file_target_name` escapes are refused at submission,
//! `..` never climbs out of a host root or a target directory, symlinks that leave a host are
//! refused as sources and as targets, and a host directory that is a symlink is no host.

use std::os::unix::fs::symlink;
use std::path::Path;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{CREDS, Sim, job_id, v3_body};

const OUTSIDE: &[u8] = b"outside-the-sandbox";

fn host_status(s: &Value) -> i64 {
    s["data"]["step_instance_list"][0]["step_ip_result_list"][0]["status"]
        .as_i64()
        .unwrap_or(-1)
}

/// A sandbox, and a directory beside it (outside every host) holding one file.
fn sim_with_outside() -> (Sim, tempfile::TempDir) {
    let sim = Sim::new();
    let outside = tempfile::tempdir().expect("outside dir");
    std::fs::write(outside.path().join("secret.txt"), OUTSIDE).expect("outside file");
    (sim, outside)
}

fn v3(files: Value, target: &str) -> Value {
    let mut b = v3_body();
    b["file_source_list"][0]["file_list"] = files;
    b["file_target_path"] = json!(target);
    b
}

async fn run(sim: &Sim, body: Value) -> Value {
    let r = sim.esb("jobv3/fast_transfer_file", body).await;
    assert_eq!(r["code"], 0, "{r}");
    sim.wait(job_id(&r)).await
}

/// The download log of the last job on 10.0.0.2 (the target of every job here).
async fn target_log(sim: &Sim, done: &Value) -> String {
    let id = done["data"]["job_instance"]["job_instance_id"]
        .as_u64()
        .expect("job id");
    let q = json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id,
                   "step_instance_id": id + 1, "bk_cloud_id": 0, "ip": "10.0.0.2"});
    let log = sim.esb("jobv3/get_job_instance_ip_log", q).await;
    log["data"]["file_logs"]
        .as_array()
        .expect("file logs")
        .iter()
        .filter_map(|l| l["log_content"].as_str())
        .collect()
}

/// Every regular file under `dir`, with its bytes.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let t = e.file_type().expect("type");
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let bytes = std::fs::read(e.path()).expect("read");
                out.push((e.path().display().to_string(), bytes));
            }
        }
    }
    out
}

fn assert_nothing_leaked(sim: &Sim, outside: &Path) {
    let entries: Vec<_> = std::fs::read_dir(outside)
        .expect("outside")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(entries, ["secret.txt"], "something was written outside");
    assert_eq!(
        std::fs::read(outside.join("secret.txt")).expect("outside file"),
        OUTSIDE
    );
    for (path, bytes) in files_under(&sim.dir.path().join("hosts")) {
        assert_ne!(bytes, OUTSIDE, "{path} holds the outside file's bytes");
    }
}

#[tokio::test(start_paused = true)]
async fn a_target_name_that_is_not_one_plain_name_is_refused() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    for name in ["/etc/passwd", "../../../../x", "a/b", "..", ".", "a\\b"] {
        let mut body = v3_body();
        body["file_target_name"] = json!(name);
        let r = sim.esb("jobv3/fast_transfer_file", body).await;
        assert_eq!(r["code"], 1_241_005, "{name}: {r}");
        assert_eq!(r["message"], "Invalid request parameter [file_target_name]");
    }
    let mut body = v3_body();
    body["file_target_name"] = json!("renamed.bin");
    let done = run(&sim, body).await;
    assert_eq!(host_status(&done), 9, "{done}");
    assert_eq!(
        sim.read("10.0.0.2", "/tmp/out/renamed.bin").as_deref(),
        Some(&b"x"[..])
    );
}

#[tokio::test(start_paused = true)]
async fn dot_dot_never_leaves_the_host_or_the_target_directory() {
    let sim = Sim::new();
    // A directory named like a host: `/stage/x/../` copied as `..` would have landed in
    // `hosts/0/`, creating files on host 10.0.0.3, which is no target.
    sim.write("10.0.0.1", "/stage/10.0.0.3/planted.txt", b"p");
    std::fs::create_dir_all(sim.host_path("10.0.0.1", "/stage/x")).expect("mkdir");
    let done = run(&sim, v3(json!(["/stage/x/../"]), "/")).await;
    assert_eq!(host_status(&done), 9, "{done}");
    assert_eq!(
        sim.read("10.0.0.2", "/stage/10.0.0.3/planted.txt")
            .as_deref(),
        Some(&b"p"[..])
    );
    assert!(sim.read("10.0.0.3", "/planted.txt").is_none());

    // `..` past the root stays at the root, on the source and on the target.
    sim.write("10.0.0.1", "/data/a.bin", b"a");
    let done = run(&sim, v3(json!(["/../../../data/a.bin"]), "/../../../../up")).await;
    assert_eq!(host_status(&done), 9, "{done}");
    assert_eq!(
        sim.read("10.0.0.2", "/up/a.bin").as_deref(),
        Some(&b"a"[..])
    );
    assert!(!sim.dir.path().join("up").exists());
    assert!(!sim.dir.path().join("hosts/up").exists());
}

#[tokio::test(start_paused = true)]
async fn a_symlink_out_of_the_host_is_not_read_as_a_source() {
    let (sim, outside) = sim_with_outside();
    let secret = outside.path().join("secret.txt");
    std::fs::create_dir_all(sim.host_path("10.0.0.1", "/data/dir")).expect("mkdir");
    symlink(&secret, sim.host_path("10.0.0.1", "/data/a.bin")).expect("file link");
    symlink(outside.path(), sim.host_path("10.0.0.1", "/data/out")).expect("dir link");
    symlink(&secret, sim.host_path("10.0.0.1", "/data/dir/inner.bin")).expect("inner link");
    // Relative, climbing out of the host root through `..`.
    symlink(
        "../../../../../../../../../../..",
        sim.host_path("10.0.0.1", "/data/up"),
    )
    .expect("relative link");
    let sources = [
        "/data/a.bin",
        "/data/out/secret.txt",
        "/data/out/",
        "/data/up/etc/hostname",
        "/data/out/REGEX:.*",
        "/data/*.bin",
    ];
    for source in sources {
        let done = run(&sim, v3(json!([source]), "/got")).await;
        assert_ne!(host_status(&done), 9, "{source} was delivered: {done}");
    }
    let done = run(&sim, v3(json!(["/data/out/secret.txt"]), "/got")).await;
    let log = target_log(&sim, &done).await;
    assert!(log.contains("path leads outside the host"), "{log}");
    // A directory source copies its tree without the symlinks in it.
    sim.write("10.0.0.1", "/data/dir/real.txt", b"r");
    let done = run(&sim, v3(json!(["/data/dir/"]), "/tree")).await;
    assert_eq!(host_status(&done), 9, "{done}");
    assert_eq!(
        sim.read("10.0.0.2", "/tree/dir/real.txt").as_deref(),
        Some(&b"r"[..])
    );
    assert!(!sim.host_path("10.0.0.2", "/tree/dir/inner.bin").exists());
    assert_nothing_leaked(&sim, outside.path());
}

#[tokio::test(start_paused = true)]
async fn a_symlink_out_of_the_host_is_not_written_through() {
    let (sim, outside) = sim_with_outside();
    sim.write("10.0.0.1", "/data/a.bin", b"payload");
    std::fs::create_dir_all(sim.host_path("10.0.0.2", "/tmp")).expect("mkdir");
    // The target directory itself, and a directory on the way to it.
    symlink(outside.path(), sim.host_path("10.0.0.2", "/tmp/out")).expect("target link");
    symlink(outside.path(), sim.host_path("10.0.0.2", "/via")).expect("parent link");
    for target in ["/tmp/out", "/via/deeper", "/tmp/out/"] {
        let done = run(&sim, v3(json!(["/data/a.bin"]), target)).await;
        assert_ne!(host_status(&done), 9, "{target}: {done}");
        let log = target_log(&sim, &done).await;
        assert!(log.contains("path leads outside the host"), "{log}");
    }
    // Strict mode does not learn through the link that the directory exists.
    let mut strict = v3(json!(["/data/a.bin"]), "/via");
    strict["transfer_mode"] = json!(1);
    assert_ne!(host_status(&run(&sim, strict).await), 9);
    // A file link at the destination is replaced, not written through.
    std::fs::create_dir_all(sim.host_path("10.0.0.2", "/land")).expect("mkdir");
    symlink(
        outside.path().join("secret.txt"),
        sim.host_path("10.0.0.2", "/land/a.bin"),
    )
    .expect("file link");
    let done = run(&sim, v3(json!(["/data/a.bin"]), "/land")).await;
    assert_eq!(host_status(&done), 9, "{done}");
    let landed = sim.host_path("10.0.0.2", "/land/a.bin");
    assert!(
        !std::fs::symlink_metadata(&landed)
            .expect("landed")
            .is_symlink()
    );
    assert_eq!(std::fs::read(landed).expect("read"), b"payload");
    assert_nothing_leaked(&sim, outside.path());
}

#[tokio::test(start_paused = true)]
async fn a_symlink_inside_the_host_is_followed_like_on_a_host() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/releases/v2/app.bin", b"v2");
    symlink("releases/v2", sim.host_path("10.0.0.1", "/current")).expect("link");
    let done = run(&sim, v3(json!(["/current/app.bin"]), "/deploy")).await;
    assert_eq!(host_status(&done), 9, "{done}");
    assert_eq!(
        sim.read("10.0.0.2", "/deploy/app.bin").as_deref(),
        Some(&b"v2"[..])
    );
}

#[tokio::test(start_paused = true)]
async fn a_host_directory_that_is_a_symlink_is_no_host() {
    let (sim, outside) = sim_with_outside();
    symlink(outside.path(), sim.dir.path().join("hosts/0/10.9.9.9")).expect("host link");
    sim.write("10.0.0.1", "/data/a.bin", b"x");
    let mut body = v3_body();
    body["target_server"] = json!({"ip_list": [{"bk_cloud_id": 0, "ip": "10.9.9.9"}]});
    let r = sim.esb("jobv3/fast_transfer_file", body).await;
    assert_eq!(r["code"], 1_244_030, "{r}");
    assert_nothing_leaked(&sim, outside.path());
}

#[tokio::test]
async fn an_oversized_body_is_answered_413_and_not_kept() {
    let sim = Sim::with_config("[sim]\nmax_body_bytes = 4096\n");
    let big = json!({"bk_biz_id": 2, "pad": "x".repeat(10_000)}).to_string();
    let gw = sim
        .call_text(
            Method::POST,
            "/api/bk-job/prod/api/v3/fast_transfer_file",
            &[("x-bkapi-authorization", CREDS)],
            Some(big.clone()),
        )
        .await;
    assert_eq!(gw.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(gw.body["code"], 1_641_301);
    assert_eq!(gw.body["code_name"], "BODY_SIZE_LIMIT_EXCEED");
    let esb = sim
        .call_text(
            Method::POST,
            "/api/c/compapi/v2/jobv3/fast_transfer_file/",
            &[("x-bkapi-authorization", CREDS)],
            Some(big),
        )
        .await;
    assert_eq!(esb.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(esb.body["result"], false);
    let recorded = sim.state.requests();
    assert_eq!(recorded.len(), 2);
    for r in &recorded {
        assert_eq!(r.http_status, 413);
        assert!(!r.body.to_string().contains("xxxx"), "{}", r.body);
    }
    // Just under the limit is read and answered by JOB's validation.
    let small = json!({"bk_biz_id": 2, "pad": "x".repeat(3000)});
    let ok = sim
        .gw(Method::POST, "fast_transfer_file", Some(small))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
}

#[tokio::test]
async fn the_request_log_keeps_a_bounded_tail() {
    let sim = Sim::with_config("[sim]\nrequest_log_bytes = 20000\n");
    let calls = 300;
    for id in 0..calls {
        sim.v2_status(id).await;
    }
    let kept = sim.state.requests();
    let dropped = sim.state.requests_dropped();
    assert!(kept.len() < 300 && dropped > 0, "{} kept", kept.len());
    assert_eq!(kept.len() as u64 + dropped, calls);
    assert_eq!(
        kept.last().map(|r| r.body["job_instance_id"].clone()),
        Some(json!(calls - 1))
    );
    let file = sim.dir.path().join(".jobsim/requests.jsonl");
    let size = std::fs::metadata(&file).expect("log").len();
    let rotated = std::fs::metadata(file.with_extension("jsonl.1"))
        .expect("old")
        .len();
    assert!(size <= 20_000 && rotated <= 20_000, "{size} {rotated}");
}
