//! The sandbox keeps its jobs: `plan apply --sandbox` killed with SIGKILL mid-transfer, then
//! `plan apply --resume --sandbox`, finishes the run with every push submitted once, because
//! the embedded simulator stored its jobs under `sandbox/.jobsim/jobs/` and the new one knows
//! them again.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::apply::{Fixture, TWO_STAGES, code, text};

/// 3 MiB at `speed_mb = 1`: the first push is still transferring seconds after it started.
const PAYLOAD: usize = 3 * 1024 * 1024;

fn payload() -> Vec<u8> {
    (0..PAYLOAD).map(|i| (i % 253) as u8).collect()
}

fn spawn_sandbox_apply(f: &Fixture) -> Child {
    f.plan()
        .args([
            "apply",
            "plan.toml",
            "--sandbox",
            "sandbox",
            "--poll-interval",
            "100",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn plan")
}

fn kill9(mut child: Child) {
    let killed = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(killed, "kill -KILL");
    let _ = child.wait();
}

/// The plan's journal lines under `state/`.
fn journal(f: &Fixture) -> String {
    let dir = f.path("state/runs/e2e");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (30 s at most) until the journal records the first push's job: submitted, and with
/// 3 MiB to move at 1 MB/s, transferring for seconds.
fn wait_until_transferring(f: &Fixture) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !journal(f)
        .lines()
        .any(|l| l.contains("push_submitted") && l.contains("to-relays"))
    {
        assert!(
            Instant::now() < deadline,
            "the first push was never submitted:\n{}",
            journal(f)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_of_a_sandbox_apply_then_resume_finishes_with_each_push_submitted_once() {
    let f = Fixture::new(
        TWO_STAGES,
        "[sim]\nstart_delay_ms = 10\nhost_wait_ms = 10\nspeed_mb = 1\n",
    );
    f.write("10.0.0.1", "/data/release/app.tar.gz", &payload());

    let child = spawn_sandbox_apply(&f);
    wait_until_transferring(&f);
    kill9(child);
    assert!(
        f.read("10.0.2.2", "/opt/app/app.tar.gz").is_none(),
        "the run was cut before its second stage"
    );

    let out = f.apply_sandbox(&["--resume"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(f.submissions("e2e/to-relays"), 1, "{:#?}", f.requests());
    assert_eq!(f.submissions("e2e/to-web"), 1, "{:#?}", f.requests());
    for ip in ["10.0.2.1", "10.0.2.2"] {
        assert_eq!(
            f.read(ip, "/opt/app/app.tar.gz").as_deref(),
            Some(&payload()[..]),
            "{ip}"
        );
    }
}
