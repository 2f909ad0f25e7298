//! Attacks on `jobsim`: names, `file_target_name`, directories and symlinks that try to leave a
//! host's root, and oversized bodies.
//!
//! Each attack starts `jobsim` on loopback over a fresh sandbox with a directory beside it,
//! outside every host, holding a canary file and an empty marker directory. It calls the
//! simulator over HTTP as any client would, then checks that nothing was written outside
//! the sandbox (the outside directory holds exactly what it held), and that the canary's
//! bytes appear in no file of any host (nothing was read from outside).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::server::SimServer;

const CANARY: &[u8] = b"CANARY-FILE-7d1f3a: bytes that live outside the sandbox";
const WORLD: &str = "[sim]\nstart_delay_ms = 0\nhost_wait_ms = 0\n\n[[app]]\ncode = \"escape\"\nsecret = \"escape-secret\"\n";
const AUTH: &str =
    r#"{"bk_app_code":"escape","bk_app_secret":"escape-secret","bk_username":"admin"}"#;
const SOURCE: &str = "10.0.0.1";
const TARGET: &str = "10.0.0.2";

/// A sandbox under attack and the outside world next to it.
struct Attack {
    base: tempfile::TempDir,
    sim: SimServer,
    http: reqwest::Client,
}

impl Attack {
    fn new() -> Attack {
        let base = tempfile::tempdir().expect("tempdir");
        for ip in [SOURCE, TARGET, "10.0.0.3"] {
            std::fs::create_dir_all(base.path().join("sandbox/hosts/0").join(ip)).expect("host");
        }
        std::fs::write(base.path().join("sandbox/jobsim.toml"), WORLD).expect("world");
        std::fs::create_dir_all(base.path().join("outside/marker")).expect("marker");
        std::fs::write(base.path().join("outside/canary.txt"), CANARY).expect("canary");
        let sim = SimServer::start(&base.path().join("sandbox"));
        Attack {
            base,
            sim,
            http: reqwest::Client::new(),
        }
    }

    fn outside(&self) -> PathBuf {
        self.base.path().join("outside")
    }

    fn host(&self, ip: &str, path: &str) -> PathBuf {
        self.base
            .path()
            .join("sandbox/hosts/0")
            .join(ip)
            .join(path.trim_start_matches('/'))
    }

    fn write(&self, ip: &str, path: &str, bytes: &[u8]) {
        let p = self.host(ip, path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }

    fn link(&self, ip: &str, path: &str, to: &Path) {
        let p = self.host(ip, path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(to, p).expect("symlink");
    }

    fn post(&self, url: String, body: Vec<u8>) -> (u16, Value) {
        self.sim.runtime().block_on(async {
            let resp = self
                .http
                .post(url)
                .header("x-bkapi-authorization", AUTH)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("send");
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        })
    }

    /// A v3 transfer from 10.0.0.1 to 10.0.0.2, through ESB; the answer's body.
    fn transfer(&self, files: &[&str], target: &str, target_name: Option<&str>) -> Value {
        let mut body = json!({
            "bk_scope_type": "biz", "bk_scope_id": "2", "account_alias": "root",
            "file_target_path": target,
            "file_source_list": [{"file_list": files, "account": {"alias": "root"},
                                  "server": {"ip_list": [{"bk_cloud_id": 0, "ip": SOURCE}]}}],
            "target_server": {"ip_list": [{"bk_cloud_id": 0, "ip": TARGET}]},
        });
        if let Some(name) = target_name {
            body["file_target_name"] = json!(name);
        }
        let url = format!(
            "{}/api/c/compapi/v2/jobv3/fast_transfer_file/",
            self.sim.url
        );
        self.post(url, body.to_string().into_bytes()).1
    }

    /// Submits a transfer and follows its job to the end: JOB's status of the target host.
    fn run(&self, files: &[&str], target: &str) -> i64 {
        let r = self.transfer(files, target, None);
        let id = r["data"]["job_instance_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("not submitted: {r}"));
        let url = format!(
            "{}/api/c/compapi/v2/jobv3/get_job_instance_status/",
            self.sim.url
        );
        for _ in 0..2_000 {
            let query = json!({"bk_scope_type": "biz", "bk_scope_id": "2",
                               "job_instance_id": id, "return_ip_result": true});
            let (_, s) = self.post(url.clone(), query.to_string().into_bytes());
            if s["data"]["finished"] == true {
                return s["data"]["step_instance_list"][0]["step_ip_result_list"][0]["status"]
                    .as_i64()
                    .unwrap_or(-1);
            }
            // The job runs on the simulator's clock; this only paces the polling.
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("job {id} never finished");
    }

    /// Nothing written outside the sandbox; the canary's bytes in no host's file.
    fn assert_sandbox_held(&self) {
        let mut outside: Vec<String> = walk(&self.outside())
            .into_iter()
            .map(|(p, _)| {
                p.strip_prefix(self.outside())
                    .expect("under")
                    .display()
                    .to_string()
            })
            .collect();
        outside.sort();
        assert_eq!(
            outside,
            ["canary.txt", "marker"],
            "written outside the sandbox"
        );
        assert_eq!(
            std::fs::read(self.outside().join("canary.txt")).expect("canary"),
            CANARY
        );
        let mut top: Vec<_> = std::fs::read_dir(self.base.path())
            .expect("base")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        top.sort();
        assert_eq!(top, ["outside", "sandbox"], "written beside the sandbox");
        for (path, bytes) in walk(&self.base.path().join("sandbox")) {
            if let Some(bytes) = bytes {
                assert!(
                    !bytes.windows(CANARY.len()).any(|w| w == CANARY),
                    "{} holds the canary: read from outside",
                    path.display()
                );
            }
        }
    }
}

/// Every entry under `dir` (symlinks not followed), with the bytes of regular files.
fn walk(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let t = e.file_type().expect("type");
            let bytes = t.is_file().then(|| std::fs::read(e.path()).expect("read"));
            if t.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path(), bytes));
        }
    }
    out
}

#[test]
fn jobsim_refuses_a_file_target_name_that_leaves_the_target_directory() {
    let attack = Attack::new();
    attack.write(SOURCE, "/data/a.bin", b"payload");
    let marker = attack.outside().join("marker/pwned");
    let names = [
        marker.display().to_string(),
        "../../../../../../../../../outside/marker/pwned".to_string(),
        "../../../../x".to_string(),
        "sub/x".to_string(),
        "..".to_string(),
        "..\\..\\x".to_string(),
    ];
    for name in &names {
        let r = attack.transfer(&["/data/a.bin"], "/tmp/", Some(name));
        assert_eq!(r["code"], 1_241_005, "{name}: {r}");
        assert!(r["data"].is_null(), "{name} made a job: {r}");
    }
    assert!(
        attack
            .sim
            .requests()
            .iter()
            .all(|r| r.job_instance_id.is_none())
    );
    attack.assert_sandbox_held();
}

#[test]
fn jobsim_keeps_dot_dot_in_sources_and_targets_inside_the_host() {
    let attack = Attack::new();
    attack.write(SOURCE, "/data/a.bin", b"payload");
    let climb = "/..".repeat(12);
    let outside = attack.outside();
    // A target that climbs to the real outside directory lands under the host's root.
    let target = format!("{climb}{}/marker", outside.display());
    assert_eq!(attack.run(&["/data/a.bin"], &target), 9);
    assert!(
        attack
            .host(TARGET, &format!("{}/marker/a.bin", outside.display()))
            .is_file()
    );
    // A source that climbs to the canary is looked up on the source host, where it is not.
    let canary = format!("{climb}{}/canary.txt", outside.display());
    assert_ne!(attack.run(&[&canary], "/got/"), 9);
    // `/stage/x/../` is `/stage/`: delivered as `stage`, not as `..` above the target, which
    // would put the host-named directory inside it on 10.0.0.3, which is no target.
    attack.write(SOURCE, "/stage/10.0.0.3/planted.txt", b"planted");
    std::fs::create_dir_all(attack.host(SOURCE, "/stage/x")).expect("mkdir");
    assert_eq!(attack.run(&["/stage/x/../"], "/"), 9);
    assert!(attack.host(TARGET, "/stage/10.0.0.3/planted.txt").is_file());
    assert!(!attack.host("10.0.0.3", "/planted.txt").exists());
    attack.assert_sandbox_held();
}

#[test]
fn jobsim_reads_no_file_through_a_symlink_planted_on_a_source_host() {
    let attack = Attack::new();
    let outside = attack.outside();
    attack.link(SOURCE, "/data/abs.bin", &outside.join("canary.txt"));
    attack.link(
        SOURCE,
        "/data/rel.bin",
        Path::new("../../../../../outside/canary.txt"),
    );
    attack.link(SOURCE, "/data/dirlink", &outside);
    attack.write(SOURCE, "/data/tree/real.txt", b"real");
    attack.link(SOURCE, "/data/tree/leak.txt", &outside.join("canary.txt"));
    attack.link(SOURCE, "/data/tree/leakdir", &outside);
    // Followed by the operating system, each link does reach the canary.
    for link in ["/data/abs.bin", "/data/rel.bin", "/data/dirlink/canary.txt"] {
        assert_eq!(
            std::fs::read(attack.host(SOURCE, link)).expect("link"),
            CANARY
        );
    }
    for source in [
        "/data/abs.bin",
        "/data/rel.bin",
        "/data/dirlink/canary.txt",
        "/data/dirlink/",
        "/data/dirlink/REGEX:.*",
        "/data/dirlink/*.txt",
        "/data/*.bin",
    ] {
        assert_ne!(attack.run(&[source], "/got/"), 9, "{source} was delivered");
    }
    // A directory is copied without the symlinks planted in it.
    assert_eq!(attack.run(&["/data/tree/"], "/got/"), 9);
    assert!(attack.host(TARGET, "/got/tree/real.txt").is_file());
    assert!(!attack.host(TARGET, "/got/tree/leak.txt").exists());
    assert!(!attack.host(TARGET, "/got/tree/leakdir").exists());
    attack.assert_sandbox_held();
}

#[test]
fn jobsim_writes_nothing_through_a_symlink_planted_on_a_target_host() {
    let attack = Attack::new();
    let outside = attack.outside();
    attack.write(SOURCE, "/data/a.bin", b"payload");
    attack.write(SOURCE, "/data/dir/f.txt", b"f");
    attack.link(TARGET, "/deploy", &outside.join("marker"));
    attack.link(TARGET, "/rel", Path::new("../../../../outside/marker"));
    for link in ["/deploy", "/rel"] {
        assert!(
            attack
                .host(TARGET, link)
                .join("..")
                .join("canary.txt")
                .is_file()
        );
    }
    for target in ["/deploy", "/deploy/", "/deploy/sub/", "/rel", "/rel/deeper"] {
        for source in ["/data/a.bin", "/data/dir/"] {
            assert_ne!(attack.run(&[source], target), 9, "{source} -> {target}");
        }
    }
    // A link at the destination name is replaced by the file, never written through.
    attack.link(TARGET, "/land/a.bin", &outside.join("canary.txt"));
    assert_eq!(attack.run(&["/data/a.bin"], "/land"), 9);
    let landed = attack.host(TARGET, "/land/a.bin");
    assert!(!landed.is_symlink());
    assert_eq!(std::fs::read(landed).expect("landed"), b"payload");
    attack.assert_sandbox_held();
}

#[test]
fn jobsim_refuses_oversized_bodies_without_keeping_them() {
    let attack = Attack::new();
    // Ten 4 MB bodies at once, to both front doors, with no valid credentials: a JSON array
    // of small numbers, the shape that takes the most memory once parsed.
    let body = {
        let mut b = b"{\"bk_biz_id\":2,\"pad\":[".to_vec();
        while b.len() < 4 << 20 {
            b.extend_from_slice(b"0,");
        }
        b.extend_from_slice(b"0]}");
        b
    };
    let urls = [
        format!("{}/api/c/compapi/v2/job/fast_push_file/", attack.sim.url),
        format!("{}/api/v3/fast_transfer_file", attack.sim.gateway()),
    ];
    let answers: Vec<(u16, Value)> = attack.sim.runtime().block_on(async {
        let sends = (0..10).map(|i| {
            let (http, url, body) = (attack.http.clone(), urls[i % 2].clone(), body.clone());
            async move {
                let resp = http
                    .post(url)
                    .header("x-bkapi-authorization", r#"{"bk_app_code":"x"}"#)
                    .body(body)
                    .send()
                    .await
                    .expect("send");
                let status = resp.status().as_u16();
                (status, resp.json().await.unwrap_or(Value::Null))
            }
        });
        futures::future::join_all(sends).await
    });
    for (i, (status, body)) in answers.iter().enumerate() {
        assert_eq!(*status, 413, "{body}");
        if i % 2 == 1 {
            assert_eq!(body["code"], 1_641_301, "{body}");
        }
    }
    let recorded = attack.sim.requests();
    assert_eq!(recorded.len(), 10);
    let kept: usize = recorded.iter().map(|r| r.body.to_string().len()).sum();
    assert!(kept < 1024, "{kept} bytes of refused bodies kept");
    let log = std::fs::metadata(attack.base.path().join("sandbox/.jobsim/requests.jsonl"))
        .expect("log")
        .len();
    assert!(log < 16 * 1024, "request log of {log} bytes");
    attack.assert_sandbox_held();
}

/// A script (`fast_execute_script`) that names planted symlinks and `..` paths: the shell
/// subset resolves every path beneath the host's root, so nothing about the canary (digest,
/// size) is ever printed, and a write (a redirection) is refused before it runs.
#[test]
fn jobsim_scripts_read_nothing_outside_the_host() {
    let attack = Attack::new();
    let outside = attack.outside();
    attack.link(SOURCE, "/data/abs.bin", &outside.join("canary.txt"));
    attack.link(
        SOURCE,
        "/data/rel.bin",
        Path::new("../../../../../outside/canary.txt"),
    );
    attack.link(SOURCE, "/data/dirlink", &outside);
    let paths = [
        "/data/abs.bin",
        "/data/rel.bin",
        "/data/dirlink/canary.txt",
        "/../../../../outside/canary.txt",
        "../../../../outside/canary.txt",
    ];
    let mut script = format!("echo '{}'\n", plan_bkjob::script::CHECKSUM_HEADER);
    for path in paths {
        script.push_str(&format!(
            "sha256sum -- '{path}'\nstat -L -c 'size %s %n' -- '{path}'\nwc -c -- '{path}'\n"
        ));
    }
    script.push_str("echo leaked > /../../outside/marker/written\n");
    let output = attack.script(&script);
    let facts = plan_bkjob::script::parse_checksum_output(&output).expect("header");
    assert!(facts.is_empty(), "read through a path: {facts:?}\n{output}");
    let size = CANARY.len().to_string();
    assert!(!output.lines().any(|l| l.starts_with(&size)), "{output}");
    assert!(
        output.contains("unsupported shell syntax"),
        "the script ran on: {output}"
    );
    attack.assert_sandbox_held();
}

impl Attack {
    /// Runs a shell script on the source host through v3 `fast_execute_script` and returns
    /// its output once the job has finished.
    fn script(&self, script: &str) -> String {
        let url = |api: &str| format!("{}/api/c/compapi/v2/jobv3/{api}/", self.sim.url);
        let body = json!({
            "bk_scope_type": "biz", "bk_scope_id": "2", "account_alias": "root",
            "script_language": 1, "script_content": plan_bkjob::script::encode_content(script),
            "target_server": {"ip_list": [{"bk_cloud_id": 0, "ip": SOURCE}]},
        });
        let (_, r) = self.post(url("fast_execute_script"), body.to_string().into_bytes());
        let id = r["data"]["job_instance_id"]
            .as_u64()
            .unwrap_or_else(|| panic!("not submitted: {r}"));
        let status = json!({"bk_scope_type": "biz", "bk_scope_id": "2", "job_instance_id": id});
        for _ in 0..2_000 {
            let (_, s) = self.post(
                url("get_job_instance_status"),
                status.to_string().into_bytes(),
            );
            if s["data"]["finished"] == true {
                let log = json!({"bk_scope_type": "biz", "bk_scope_id": "2",
                                 "job_instance_id": id, "step_instance_id": id + 1,
                                 "bk_cloud_id": 0, "ip": SOURCE});
                let (_, l) =
                    self.post(url("get_job_instance_ip_log"), log.to_string().into_bytes());
                return l["data"]["log_content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
            }
            // The job runs on the simulator's clock; this only paces the polling.
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("script job {id} never finished");
    }
}
