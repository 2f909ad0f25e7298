//! Real transfers between sandbox hosts: bytes, directory layout, patterns, macros,
//! strict mode, overwrite, throttling (measured in virtual time) and the logs.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::support::{Sim, job_id, v2_body, v3_body};

fn host_status(s: &Value, i: usize) -> i64 {
    s["data"]["step_instance_list"][0]["step_ip_result_list"][i]["status"]
        .as_i64()
        .unwrap_or(-1)
}

async fn run_v3(sim: &Sim, body: Value) -> Value {
    let r = sim.esb("jobv3/fast_transfer_file", body).await;
    sim.wait(job_id(&r)).await
}

fn v3_with(files: Value, target: &str) -> Value {
    let mut b = v3_body();
    b["file_source_list"][0]["file_list"] = files;
    b["file_target_path"] = json!(target);
    b
}

#[tokio::test(start_paused = true)]
async fn file_bytes_are_identical() {
    let sim = Sim::new();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    sim.write("10.0.0.1", "/data/a.bin", &data);
    let r = sim.esb("job/fast_push_file", v2_body()).await;
    let done = sim.wait(job_id(&r)).await;
    assert_eq!(host_status(&done, 0), 9);
    assert_eq!(sim.read("10.0.0.2", "/tmp/out/a.bin"), Some(data));
}

#[tokio::test(start_paused = true)]
async fn directory_with_trailing_slash_lands_inside_target() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/srv/conf/app.toml", b"a");
    sim.write("10.0.0.1", "/srv/conf/sub/deep.txt", b"b");
    std::fs::create_dir_all(sim.host_path("10.0.0.1", "/srv/conf/empty")).expect("mkdir");
    let done = run_v3(&sim, v3_with(json!(["/srv/conf/"]), "/etc/app")).await;
    assert_eq!(host_status(&done, 0), 9, "{done}");
    assert_eq!(
        sim.read("10.0.0.2", "/etc/app/conf/app.toml").as_deref(),
        Some(&b"a"[..])
    );
    assert_eq!(
        sim.read("10.0.0.2", "/etc/app/conf/sub/deep.txt")
            .as_deref(),
        Some(&b"b"[..])
    );
    assert!(sim.host_path("10.0.0.2", "/etc/app/conf/empty").is_dir());
}

#[tokio::test(start_paused = true)]
async fn regex_and_wildcard_pick_matching_names_only() {
    let sim = Sim::new();
    for name in ["app-1.conf", "app-2.conf", "other.conf", "app-3.txt"] {
        sim.write("10.0.0.1", &format!("/etc/src/{name}"), name.as_bytes());
    }
    let done = run_v3(
        &sim,
        v3_with(json!(["/etc/src/REGEX:^app-[0-9]+\\.conf$"]), "/r/"),
    )
    .await;
    assert_eq!(host_status(&done, 0), 9);
    let mut got: Vec<String> = std::fs::read_dir(sim.host_path("10.0.0.2", "/r"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, ["app-1.conf", "app-2.conf"]);

    let done = run_v3(&sim, v3_with(json!(["/etc/src/*.txt"]), "/w/")).await;
    assert_eq!(host_status(&done, 0), 9);
    assert_eq!(
        sim.read("10.0.0.2", "/w/app-3.txt").as_deref(),
        Some(&b"app-3.txt"[..])
    );
    assert_eq!(sim.read("10.0.0.2", "/w/other.conf"), None);

    let done = run_v3(&sim, v3_with(json!(["/etc/src/REGEX:^nothing$"]), "/n/")).await;
    assert_eq!(
        host_status(&done, 0),
        320,
        "a pattern that matches nothing is a pull failure"
    );
}

#[tokio::test(start_paused = true)]
async fn filesrcip_and_date_macros_and_overwrite() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", b"one");
    sim.write("10.0.0.3", "/data/a.bin", b"three");
    let two_sources = json!({"ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.1"}, {"bk_cloud_id": 0, "ip": "10.0.0.3"}]});
    let mut b = v3_with(json!(["/data/a.bin"]), "/in/[FILESRCIP]/[DATE:yyyy]");
    b["file_source_list"][0]["server"] = two_sources.clone();
    let done = run_v3(&sim, b).await;
    assert_eq!(host_status(&done, 0), 9);
    let year = chrono::Local::now().format("%Y").to_string();
    assert_eq!(
        sim.read("10.0.0.2", &format!("/in/0_10.0.0.1/{year}/a.bin"))
            .as_deref(),
        Some(&b"one"[..])
    );
    assert_eq!(
        sim.read("10.0.0.2", &format!("/in/0_10.0.0.3/{year}/a.bin"))
            .as_deref(),
        Some(&b"three"[..])
    );

    // Without [FILESRCIP] the copies overwrite each other: one file, one of the contents.
    let mut b = v3_with(json!(["/data/a.bin"]), "/same");
    b["file_source_list"][0]["server"] = two_sources;
    let done = run_v3(&sim, b).await;
    assert_eq!(host_status(&done, 0), 9);
    let got = sim.read("10.0.0.2", "/same/a.bin").expect("delivered");
    assert!(got == b"one" || got == b"three", "last writer wins");
    let leftovers = std::fs::read_dir(sim.host_path("10.0.0.2", "/same"))
        .expect("dir")
        .count();
    assert_eq!(leftovers, 1, "no temporary files left behind");
}

#[tokio::test(start_paused = true)]
async fn rename_strict_mode_and_force_mode() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", b"abc");
    let mut b = v3_with(json!(["/data/a.bin"]), "/exists");
    b["file_target_name"] = json!("renamed.bin");
    b["transfer_mode"] = json!(1);
    std::fs::create_dir_all(sim.host_path("10.0.0.2", "/exists")).expect("mkdir");
    let done = run_v3(&sim, b).await;
    assert_eq!(host_status(&done, 0), 9);
    assert_eq!(
        sim.read("10.0.0.2", "/exists/renamed.bin").as_deref(),
        Some(&b"abc"[..])
    );

    let mut strict = v3_with(json!(["/data/a.bin"]), "/missing/dir");
    strict["transfer_mode"] = json!(1);
    let done = run_v3(&sim, strict).await;
    let h = &done["data"]["step_instance_list"][0]["step_ip_result_list"][0];
    assert_eq!(
        (h["status"].clone(), h["error_code"].clone()),
        (json!(329), json!(710))
    );
    assert!(!sim.host_path("10.0.0.2", "/missing").exists());

    let mut force = v3_with(json!(["/data/a.bin"]), "/missing/dir");
    force["transfer_mode"] = json!(2);
    assert_eq!(host_status(&run_v3(&sim, force).await, 0), 9);
    assert_eq!(
        sim.read("10.0.0.2", "/missing/dir/a.bin").as_deref(),
        Some(&b"abc"[..])
    );
}

#[tokio::test(start_paused = true)]
async fn speed_limit_is_min_of_upload_and_download() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", &vec![3u8; 4 * 1024 * 1024]);
    let mut b = v3_body();
    b["upload_speed_limit"] = json!(2);
    b["download_speed_limit"] = json!(1);
    let t0 = Instant::now();
    let done = run_v3(&sim, b).await;
    let elapsed = t0.elapsed();
    let host = &done["data"]["step_instance_list"][0]["step_ip_result_list"][0];
    let host_ms = host["total_time"].as_i64().expect("ms");
    assert!(
        (3600..=4400).contains(&host_ms),
        "4 MB at 1 MB/s takes 4 s ±10%, host took {host_ms} ms"
    );
    assert!(
        elapsed >= Duration::from_secs(4) && elapsed <= Duration::from_millis(4800),
        "{elapsed:?}"
    );
    let unlimited = {
        let t = Instant::now();
        run_v3(&sim, v3_with(json!(["/data/a.bin"]), "/fast")).await;
        t.elapsed()
    };
    assert!(
        unlimited < Duration::from_secs(1),
        "no limit: {unlimited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn logs_in_both_shapes() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a&b<c>.txt", b"hello");
    let mut b = v2_body();
    b["file_source"][0]["files"] = json!(["/data/a&b<c>.txt"]);
    let id = job_id(&sim.esb("job/fast_push_file", b).await);
    sim.wait(id).await;

    let log = sim
        .esb(
            "job/get_job_instance_log",
            json!({"bk_biz_id": 2, "job_instance_id": id}),
        )
        .await;
    let step = &log["data"][0];
    assert_eq!(step["is_finished"], json!(true));
    assert_eq!(step["step_results"][0]["ip_status"], json!(9));
    assert_eq!(step["step_results"][0]["tag"], json!(""));
    let ip_log = &step["step_results"][0]["ip_logs"][0];
    assert_eq!(ip_log["execute_count"], json!(0));
    let content = ip_log["log_content"].as_str().expect("content");
    assert!(
        content.contains("FileName: /tmp/out/a&amp;b&lt;c&gt;.txt"),
        "{content}"
    );
    assert!(
        content.contains("Status: 4 StatusDesc: finished"),
        "{content}"
    );
    assert!(
        content.contains("Progress: 100% Detail: success"),
        "{content}"
    );
    assert!(!content.contains("State:"));

    let scope = json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id, "step_instance_id": id + 1});
    let mut q = scope.clone();
    q["bk_cloud_id"] = json!(0);
    q["ip"] = json!("10.0.0.2");
    let one = sim.esb("jobv3/get_job_instance_ip_log", q).await;
    assert_eq!(one["data"]["log_type"], json!(2));
    assert_eq!(one["data"]["log_content"], Value::Null);
    let logs = one["data"]["file_logs"].as_array().expect("file logs");
    assert_eq!(
        logs.len(),
        2,
        "the download plus the source's upload: {logs:?}"
    );
    assert_eq!(logs[0]["mode"], json!(1));
    assert_eq!(logs[0]["size"], Value::Null);
    assert_eq!(logs[1]["mode"], json!(0));
    assert!(
        logs[0]["log_content"]
            .as_str()
            .expect("raw")
            .contains("a&b<c>.txt"),
        "v3 logs are not escaped"
    );

    let mut q = scope;
    q["host_id_list"] = json!([1002]);
    let batch = sim
        .esb("jobv3/batch_get_job_instance_ip_log", q.clone())
        .await;
    let tl = &batch["data"]["file_task_logs"];
    assert_eq!(tl.as_array().map(Vec::len), Some(1));
    assert_eq!(
        tl[0]["file_logs"].as_array().map(Vec::len),
        Some(1),
        "uploads only under requested sources"
    );
    assert_eq!(tl[0]["file_logs"][0]["size"], json!("5.0 Bytes"));
    assert_eq!(tl[0]["file_logs"][0]["process"], json!("100%"));
    assert_eq!(batch["data"]["script_task_logs"], Value::Null);
    q["host_id_list"] = json!([1002, 1001]);
    let batch = sim.esb("jobv3/batch_get_job_instance_ip_log", q).await;
    let tl = batch["data"]["file_task_logs"].as_array().expect("list");
    assert_eq!(tl.len(), 2);
    assert_eq!(tl[1]["file_logs"][0]["mode"], json!(0));
    assert_eq!(tl[1]["file_logs"][0]["dest_ip"], Value::Null);
}

#[tokio::test(start_paused = true)]
async fn directory_into_itself_on_the_same_host_terminates() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/x/a.txt", b"a");
    let mut b = v3_with(json!(["/data/"]), "/data/x/");
    b["target_server"] = json!({"ip_list": [{"bk_cloud_id": 0, "ip": "10.0.0.1"}]});
    let done = run_v3(&sim, b).await;
    assert_eq!(host_status(&done, 0), 9);
    assert_eq!(
        sim.read("10.0.0.1", "/data/x/data/x/a.txt").as_deref(),
        Some(&b"a"[..])
    );
    assert!(
        !sim.host_path("10.0.0.1", "/data/x/data/x/data").exists(),
        "copied once, not recursively"
    );
}

/// GSE reports each file of a task on its own: one missing entry fails only its own file
/// (and so the host, 320), while the entries that exist are still delivered, and every
/// log line carries its own file's detail (v2 log HTML-escaped, v3 upload side too).
#[tokio::test(start_paused = true)]
async fn a_missing_entry_fails_only_its_own_file() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/x&y<z>.txt", b"here");
    let mut body = v2_body();
    body["file_source"][0]["files"] = json!(["/data/x&y<z>.txt", "/data/missing.bin"]);
    let id = job_id(&sim.esb("job/fast_push_file", body).await);
    let done = sim.wait(id).await;
    assert_eq!(host_status(&done, 0), 320, "{done}");
    assert_eq!(
        sim.read("10.0.0.2", "/tmp/out/x&y<z>.txt").as_deref(),
        Some(&b"here"[..])
    );
    let log = sim
        .esb(
            "job/get_job_instance_log",
            json!({"bk_biz_id": 2, "job_instance_id": id}),
        )
        .await;
    let content = log["data"][0]["step_results"][0]["ip_logs"][0]["log_content"]
        .as_str()
        .expect("content")
        .to_string();
    let lines: Vec<&str> = content.lines().collect();
    let table = [
        (
            "FileName: /tmp/out/missing.bin Status: 5 StatusDesc: failed Detail: Source file /data/missing.bin does not exist",
            true,
        ),
        (
            "FileName: /tmp/out/x&amp;y&lt;z&gt;.txt FileSize: 4.0 Bytes Status: 4 StatusDesc: finished",
            true,
        ),
        ("x&amp;y&lt;z&gt;.txt Status: 5", false),
        ("x&amp;y&lt;z&gt;.txt FileSize: 4.0 Bytes Status: 5", false),
    ];
    for (needle, present) in table {
        assert_eq!(
            lines.iter().any(|l| l.contains(needle)),
            present,
            "{needle}: {content}"
        );
    }
    let step = done["data"]["step_instance_list"][0]["step_instance_id"].clone();
    let up = sim
        .esb(
            "jobv3/batch_get_job_instance_ip_log",
            json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id,
                   "step_instance_id": step, "host_id_list": [1001]}),
        )
        .await;
    let uploads = &up["data"]["file_task_logs"][0]["file_logs"];
    let by_path = |p: &str| {
        uploads
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["src_path"] == json!(p))
            .map(|f| (f["mode"].clone(), f["status"].clone()))
    };
    assert_eq!(
        by_path("/data/x&y<z>.txt"),
        Some((json!(0), json!(4))),
        "{up}"
    );
    assert_eq!(
        by_path("/data/missing.bin"),
        Some((json!(0), json!(5))),
        "{up}"
    );
}

/// START writes every target's download entries (§6.6 step 2), so a target's log lists its
/// files whatever GSE later reports: a stuck host keeps them WAITING with "--" figures until
/// it is terminated, an agent that is down or not installed fails them with the reason.
#[tokio::test(start_paused = true)]
async fn every_target_log_lists_its_files_from_start() {
    let sim = Sim::with_config(
        "[[host]]\nhost = \"0:10.0.0.2\"\nstuck = true\n\
         [[host]]\nhost = \"0:10.0.0.3\"\nagent = \"down\"\n\
         [[host]]\nhost = \"0:10.0.0.4\"\nagent = \"not_installed\"\n",
    );
    sim.write("10.0.0.1", "/data/a.bin", b"abc");
    let mut body = v3_with(json!(["/data/a.bin"]), "/tmp/out");
    body["target_server"] = json!({"host_id_list": [1002, 1003, 1004]});
    let r = sim.esb("jobv3/fast_transfer_file", body).await;
    let id = job_id(&r);
    let step = r["data"]["step_instance_id"].clone();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let logs = |host: u64| {
        sim.esb(
            "jobv3/batch_get_job_instance_ip_log",
            json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id,
                   "step_instance_id": step, "host_id_list": [host]}),
        )
    };
    let table = [
        (1002, 1, "", "--"),
        (1003, 5, "Detail: Agent is abnormal", "--"),
        (1004, 5, "Detail: Agent is not installed", "--"),
    ];
    for (host, status, detail, size) in table {
        let r = logs(host).await;
        let f = &r["data"]["file_task_logs"][0]["file_logs"][0];
        assert_eq!(f["mode"], json!(1), "{host}: {r}");
        assert_eq!(f["status"], json!(status), "{host}: {r}");
        assert_eq!(f["dest_path"], json!("/tmp/out/a.bin"), "{host}: {r}");
        assert_eq!(f["size"], json!(size), "{host}: {r}");
        let content = f["log_content"].as_str().unwrap_or_default();
        assert!(content.contains(detail), "{host}: {content}");
        if detail.is_empty() {
            assert_eq!(content, "", "{host}");
        }
    }
    let stop = sim
        .esb(
            "jobv3/operate_job_instance",
            json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id, "operation_code": 1}),
        )
        .await;
    assert_eq!(stop["code"], json!(0), "{stop}");
    let done = sim.wait(id).await;
    assert_eq!(host_status(&done, 0), 403, "{done}");
    let r = logs(1002).await;
    assert_eq!(
        r["data"]["file_task_logs"][0]["file_logs"][0]["dest_path"],
        json!("/tmp/out/a.bin"),
        "{r}"
    );
}

/// A host GSE timed out (303) or terminated (403) ends with its open file entries failed
/// and a closing line saying why: a finished job's log shows no file still downloading.
#[tokio::test(start_paused = true)]
async fn timed_out_and_terminated_hosts_close_their_file_entries() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", &vec![1u8; 4 * 1024 * 1024]);
    let mut body = v3_with(json!(["/data/a.bin"]), "/tmp/out");
    body["upload_speed_limit"] = json!(1);
    body["timeout"] = json!(2);
    let timed = sim.esb("jobv3/fast_transfer_file", body.clone()).await;
    body["timeout"] = json!(100);
    let stopped = sim.esb("jobv3/fast_transfer_file", body).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stop = sim
        .esb(
            "jobv3/operate_job_instance",
            json!({"bk_scope_type": "biz", "bk_scope_id": "2",
                   "job_instance_id": job_id(&stopped), "operation_code": 1}),
        )
        .await;
    assert_eq!(stop["code"], json!(0), "{stop}");
    let table = [
        (&timed, 303, "Detail: File transmission timeout"),
        (&stopped, 403, "Detail: Force terminated"),
    ];
    for (reply, host, detail) in table {
        let id = job_id(reply);
        let done = sim.wait(id).await;
        assert_eq!(host_status(&done, 0), host, "{done}");
        let log = sim
            .esb(
                "jobv3/get_job_instance_ip_log",
                json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id,
                       "step_instance_id": reply["data"]["step_instance_id"], "bk_host_id": 1002}),
            )
            .await;
        let f = &log["data"]["file_logs"][0];
        assert_eq!(f["mode"], json!(1), "{log}");
        assert_eq!(f["status"], json!(5), "{log}");
        let last = f["log_content"]
            .as_str()
            .and_then(|c| c.lines().last())
            .unwrap_or_default()
            .to_string();
        assert!(
            last.contains("FileName: /tmp/out/a.bin Status: 5 StatusDesc: failed")
                && last.ends_with(detail),
            "{host}: {last}"
        );
    }
}

/// An entry that cannot be expanded is logged at the place JOB shows for it before GSE
/// expands anything: the file (or `file_target_name`), the directory with its trailing
/// separator, or the pattern itself.
#[tokio::test(start_paused = true)]
async fn unexpandable_entries_are_logged_at_their_destination() {
    let table = [
        (
            "/data/REGEX:^zzz$",
            None,
            "FileName: /r/REGEX:^zzz$ Status: 5",
        ),
        ("/data/log*.zip", None, "FileName: /r/log*.zip Status: 5"),
        ("/data/nodir/", None, "Directory: /r/nodir/ Status: 5"),
        ("/data/none.bin", None, "FileName: /r/none.bin Status: 5"),
        (
            "/data/none.bin",
            Some("new.bin"),
            "FileName: /r/new.bin Status: 5",
        ),
    ];
    for (entry, rename, line) in table {
        let sim = Sim::new();
        std::fs::create_dir_all(sim.host_path("10.0.0.1", "/data")).expect("mkdir");
        let mut body = v3_with(json!([entry]), "/r");
        if let Some(n) = rename {
            body["file_target_name"] = json!(n);
        }
        let r = sim.esb("jobv3/fast_transfer_file", body).await;
        let id = job_id(&r);
        let done = sim.wait(id).await;
        assert_eq!(host_status(&done, 0), 320, "{entry}: {done}");
        let log = sim
            .esb(
                "jobv3/get_job_instance_ip_log",
                json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id,
                       "step_instance_id": r["data"]["step_instance_id"], "bk_host_id": 1002}),
            )
            .await;
        let content = log["data"]["file_logs"][0]["log_content"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(content.contains(line), "{entry}: {content}");
    }
}

/// Every progress line carries the speed so far (§6.6 step 3: progress and speed are
/// logged together), here the 1 MB/s limit: `Speed: 1,024 KB/s`.
#[tokio::test(start_paused = true)]
async fn progress_lines_carry_the_speed() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", &vec![3u8; 4 * 1024 * 1024]);
    let mut b = v3_body();
    b["download_speed_limit"] = json!(1);
    let r = sim.esb("jobv3/fast_transfer_file", b).await;
    let id = job_id(&r);
    sim.wait(id).await;
    let log = sim
        .esb(
            "jobv3/get_job_instance_ip_log",
            json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id,
                   "step_instance_id": r["data"]["step_instance_id"], "bk_host_id": 1002}),
        )
        .await;
    let content = log["data"]["file_logs"][0]["log_content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let progress: Vec<&str> = content
        .lines()
        .filter(|l| l.contains("StatusDesc: downloading") && !l.contains("Progress: 0%"))
        .collect();
    assert!(progress.len() >= 5, "{content}");
    for l in progress {
        assert!(
            l.contains(
                "FileSize: 4.0 MB Status: 3 StatusDesc: downloading Speed: 1,024 KB/s Progress: "
            ),
            "{l}"
        );
    }
}
