//! The `jobsim` binary's memory under bodies sent to exhaust it: oversized ones are refused
//! and never kept, bodies just under the limit (JSON arrays of small numbers, the shape that
//! grows most once parsed) are parsed a few at a time and let go. Measured on the binary, a
//! process of its own, by its peak resident set (`VmHWM`).

use std::io::Write as _;
use std::process::Child;

use serde_json::Value;

use crate::support::{CREDS, spawn_binary};

/// Peak resident set allowed after every attack below. Kept whole, the oversized bodies alone
/// would be 40 MB, and parsed they take 30 to 40 times their size.
const PEAK_MIB: u64 = 160;

struct Binary {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Binary {
    fn start() -> Binary {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("hosts/0/10.0.0.1")).expect("mkdir");
        let (child, base) = spawn_binary(dir.path());
        Binary {
            child,
            base,
            _dir: dir,
        }
    }

    /// `VmHWM` of the process, in MiB.
    fn peak_mib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmHWM")
            / 1024
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `{"bk_biz_id":2,"pad":[0,0,...]}` of about `len` bytes.
fn zeros(len: usize) -> Vec<u8> {
    let mut b = b"{\"bk_biz_id\":2,\"pad\":[".to_vec();
    while b.len() + 4 < len {
        b.extend_from_slice(b"0,");
    }
    b.extend_from_slice(b"0]}");
    b
}

/// Sends `count` copies of `body` at once to `url`; the HTTP statuses.
async fn flood(url: &str, body: &[u8], count: usize, auth: &str) -> Vec<u16> {
    let client = reqwest::Client::new();
    let sends = (0..count).map(|_| {
        let req = client
            .post(url)
            .header("x-bkapi-authorization", auth)
            .header("content-type", "application/json")
            .body(body.to_vec());
        async move {
            let resp = req.send().await.expect("send");
            let status = resp.status().as_u16();
            let _: Value = resp.json().await.expect("json answer");
            status
        }
    });
    futures::future::join_all(sends).await
}

#[test]
fn floods_of_large_bodies_leave_the_simulator_small() {
    let bin = Binary::start();
    let url = format!("{}/api/c/compapi/v2/job/fast_push_file/", bin.base);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let before = bin.peak_mib();
    let refused = rt.block_on(flood(&url, &zeros(4 << 20), 10, r#"{"bk_app_code":"x"}"#));
    assert!(refused.iter().all(|s| *s == 413), "{refused:?}");
    let after_refused = bin.peak_mib();
    // Just under the limit, with credentials: read, parsed and answered by JOB's validation.
    let parsed = rt.block_on(flood(&url, &zeros(1_000_000), 10, CREDS));
    assert!(parsed.iter().all(|s| *s == 200), "{parsed:?}");
    let after_parsed = bin.peak_mib();
    // The figures docs/reliability.md quotes (seen with `--nocapture`).
    let _ = writeln!(
        std::io::stderr(),
        "jobsim peak RSS: {before} MiB at start, {after_refused} MiB after 10 x 4 MB refused, {after_parsed} MiB after 10 x 1 MB parsed"
    );
    assert!(after_parsed < PEAK_MIB, "{after_parsed} MiB");
}
