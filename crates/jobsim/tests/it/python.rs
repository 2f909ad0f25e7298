//! BlueKing's own Python clients against the `jobsim` binary, when they are installed.
//!
//! Runs `tests/python/bk_client_check.py` with `$JOBSIM_PYTHON` (default `python3`) if that
//! interpreter can import `bkapi_component.open` and `bkapi_client_core`; otherwise the test
//! says so and passes without checking anything.

use std::process::Command;

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
        eprintln!("skipped: {python} cannot import bkapi-component-open / bkapi-client-core");
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
    assert!(stdout.trim_end().ends_with(", 0 failed"), "{stdout}");
}
