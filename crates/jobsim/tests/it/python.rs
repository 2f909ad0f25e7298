//! BlueKing's own Python clients against the `jobsim` binary, when they are installed.
//!
//! Runs `tests/python/bk_client_check.py` with `$JOBSIM_PYTHON` (default `python3`) if that
//! interpreter can import `bkapi_component.open` and `bkapi_client_core`. Without them the
//! check cannot run: under CI (`CI` set, as `.ci/run` installs the clients) that is a failure,
//! so CI cannot report the compatibility green unchecked; elsewhere the test says it skipped.

use std::process::Command;

/// The checks `bk_client_check.py` makes (its `check(...)` calls as they run).
const CHECKS: usize = 29;

#[test]
#[allow(
    clippy::print_stderr,
    reason = "a skipped check says why in the test output"
)]
fn bluekings_python_clients_work_unmodified() {
    let python = std::env::var("JOBSIM_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import bkapi_component.open, bkapi_client_core"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        let why = format!("{python} cannot import bkapi-component-open / bkapi-client-core");
        assert!(!under_ci(), "the check cannot run under CI: {why}");
        eprintln!("skipped: {why}");
        return;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/bk_client_check.py"
    );
    let out = Command::new(&python)
        .args([script, "--jobsim", env!("CARGO_BIN_EXE_jobsim")])
        .output()
        .expect("run the Python check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every check of the script ran (one that stops early or loses a check cannot pass).
    let last = stdout.lines().last().unwrap_or_default();
    assert_eq!(last, format!("{CHECKS} passed, 0 failed"), "{stdout}");
}

/// CI services set `CI` (to `true`, `1`, ...); an empty value or `false` means a local run.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}
