//! Verified delivery and JOB-native retries as `plan apply` carries them out against the
//! sandbox over HTTP (issue 16): `verify = "sha256"` catches the bytes jobsim's
//! `corrupt_deliveries` hosts alter, and only on them; `verify = "size"` reads JOB's file log
//! (which a same-size corruption passes); a verification the process did not reach runs alone
//! on `--resume`; a v3 push's failed host runs again inside the same job.

use std::path::PathBuf;

use serde_json::Value;

use crate::apply::{Fixture, code, text};

const TARGETS: [&str; 4] = ["10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2"];

fn plan(api: &str, extra: &str) -> String {
    format!(
        r#"[plan]
name = "verified"
bk_biz_id = 2
account = "root"
api = "{api}"

[[push]]
name = "app"
from = {{ hosts = "10.0.0.1", files = ["/data/app.tgz"] }}
to = {{ hosts = ["10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2"], path = "/opt/app/" }}
{extra}
"#
    )
}

fn world(corrupt: &[&str]) -> String {
    let mut world = String::from("[[business]]\nid = 2\n");
    for host in corrupt {
        world.push_str(&format!(
            "\n[[host]]\nhost = \"0:{host}\"\ncorrupt_deliveries = true\n"
        ));
    }
    world
}

fn fixture(api: &str, extra: &str, world: &str) -> Fixture {
    let f = Fixture::new(&plan(api, extra), world);
    f.write(
        "10.0.0.1",
        "/data/app.tgz",
        b"release 4.0, every byte of it",
    );
    f
}

/// The NDJSON events of a run.
fn events(stdout: &[u8]) -> Vec<Value> {
    text(stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn verified_event(events: &[Value]) -> &Value {
    events
        .iter()
        .find(|e| e["event"] == "push_verified")
        .unwrap_or_else(|| panic!("no push_verified event in {events:?}"))
}

fn journal_files(f: &Fixture) -> Vec<PathBuf> {
    let dir = f.path("state/runs/verified");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn journal(f: &Fixture) -> Vec<Value> {
    journal_files(f)
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("journal line"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every journal line and NDJSON event of a run holds to `plan schema --output journal` and
/// `--output events`: what this module adds to both is published.
fn assert_schemas_hold(f: &Fixture, events: &[Value]) {
    for (output, values) in [("journal", journal(f)), ("events", events.to_vec())] {
        let out = f
            .plan()
            .args(["schema", "--output", output])
            .output()
            .expect("run plan");
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        let schema: Value = serde_json::from_slice(&out.stdout).expect("schema JSON");
        let validator = jsonschema::draft202012::new(&schema).expect("schema compiles");
        for value in &values {
            let problems: Vec<String> = validator
                .iter_errors(value)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect();
            assert!(problems.is_empty(), "{output}: {value}: {problems:?}");
        }
    }
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

fn api_calls(f: &Fixture, api: &str) -> usize {
    f.requests().iter().filter(|r| r["api"] == api).count()
}

fn differing_hosts(verification: &Value) -> Vec<String> {
    let mut hosts: Vec<String> = verification["differing"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| h["host"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    hosts.sort();
    hosts
}

#[test]
fn sha256_names_exactly_the_hosts_whose_bytes_were_corrupted() {
    for api in ["v3", "v2"] {
        let f = fixture(
            api,
            "verify = \"sha256\"",
            &world(&["10.0.1.2", "10.0.2.2"]),
        );
        let out = f.apply_sandbox(&["--yes", "--format", "json"]);
        assert_eq!(
            code(&out),
            3,
            "{api}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let events = events(&out.stdout);
        let verification = &verified_event(&events)["verification"];
        assert_eq!(verification["method"], "sha256", "{api}");
        assert_eq!(verification["hosts"], 4, "{api}");
        assert_eq!(verification["verified"], 2, "{api}");
        assert_eq!(
            differing_hosts(verification),
            ["0:10.0.1.2", "0:10.0.2.2"],
            "{api}"
        );
        // The table names the file, the source's digest prefix and the target's.
        let first = &verification["differing"][0]["files"][0];
        assert_eq!(first["path"], "/opt/app/app.tgz", "{api}");
        assert_eq!(first["expected"].as_str().map(str::len), Some(12), "{api}");
        assert_ne!(first["expected"], first["got"], "{api}");
        // The push is failed with the per-host table, naming those hosts and no other.
        let finished = events
            .iter()
            .find(|e| e["event"] == "push_finished")
            .expect("push_finished");
        assert_eq!(finished["report"]["status"], "failed", "{api}");
        let error = finished["report"]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("verified 2/4 hosts (sha256); 2 differ"),
            "{error}"
        );
        for host in ["10.0.1.2", "10.0.2.2"] {
            assert!(error.contains(host), "{api}: {error}");
        }
        for host in ["10.0.1.1", "10.0.2.1"] {
            assert!(!error.contains(host), "{api}: {error}");
        }
        // One script job, JOB's transfer reported a success all the same.
        assert_eq!(api_calls(&f, "fast_execute_script"), 1, "{api}");
        let lines = journal(&f);
        let recorded = of_type(&lines, "push_verified");
        assert_eq!(recorded.len(), 1, "{api}");
        assert_eq!(
            differing_hosts(&recorded[0]["verification"]),
            ["0:10.0.1.2", "0:10.0.2.2"]
        );
        assert_eq!(of_type(&lines, "push_attempt_finished")[0]["job_status"], 3);
        assert_schemas_hold(&f, &events);
    }
}

#[test]
fn sha256_passes_when_no_host_corrupts() {
    let f = fixture("v3", "verify = \"sha256\"", &world(&[]));
    let out = f.apply_sandbox(&["--yes"]);
    let said = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(code(&out), 0, "{said}");
    assert!(said.contains("verified 4/4 hosts (sha256)"), "{said}");
    for host in TARGETS {
        assert_eq!(
            f.read(host, "/opt/app/app.tgz").as_deref(),
            Some(&b"release 4.0, every byte of it"[..]),
            "{host}"
        );
    }
}

/// jobsim's `corrupt_deliveries` inverts a byte and keeps the size, and JOB's file log reports
/// the size it moved: size verification cannot see such a corruption, and says every host
/// verified (the reason `sha256` exists).
#[test]
fn size_reads_jobs_file_log_and_passes_a_same_size_corruption() {
    for api in ["v3", "v2"] {
        let f = fixture(api, "verify = \"size\"", &world(&["10.0.1.2"]));
        let out = f.apply_sandbox(&["--yes", "--format", "json"]);
        assert_eq!(
            code(&out),
            0,
            "{api}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let events = events(&out.stdout);
        let verification = &verified_event(&events)["verification"];
        assert_eq!(verification["method"], "size", "{api}");
        assert_eq!(verification["verified"], 4, "{api}");
        // The corruption is real: only the file log's sizes were compared.
        assert_ne!(
            f.read("10.0.1.2", "/opt/app/app.tgz").as_deref(),
            Some(&b"release 4.0, every byte of it"[..])
        );
        let scripts: Vec<Value> = f
            .requests()
            .into_iter()
            .filter(|r| r["api"] == "fast_execute_script")
            .collect();
        if api == "v3" {
            // JOB's v3 log names each download's source and size: no script runs.
            assert!(scripts.is_empty(), "{scripts:?}");
            continue;
        }
        // v2's log does not name sources: their sizes come from one script job on the
        // source alone.
        assert_eq!(scripts.len(), 1, "{api}");
        let body = scripts[0]["body"].to_string();
        assert!(body.contains("10.0.0.1"), "{body}");
        assert!(!body.contains("10.0.1.2"), "{body}");
    }
}

/// The process ended after JOB finished the transfer but before the verification: the
/// resumed run verifies only, sending no transfer again.
#[test]
fn resume_runs_a_verification_that_did_not_run_and_transfers_nothing() {
    let f = fixture("v3", "verify = \"sha256\"", &world(&["10.0.2.1"]));
    let out = f.apply_sandbox(&["--yes"]);
    assert_eq!(code(&out), 3, "{}{}", text(&out.stdout), text(&out.stderr));
    // Cut the journal back to the transfer's end, as a process killed then leaves it.
    let file = journal_files(&f).pop().expect("a journal");
    let kept: Vec<String> = std::fs::read_to_string(&file)
        .expect("journal")
        .lines()
        .take_while(|l| !l.contains("\"push_verified\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(kept.iter().any(|l| l.contains("\"push_attempt_finished\"")));
    std::fs::write(&file, kept.concat()).expect("rewrite journal");
    let transfers = api_calls(&f, "fast_transfer_file");
    let out = f.apply_sandbox(&["--yes", "--resume", "--format", "json"]);
    assert_eq!(code(&out), 3, "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(
        api_calls(&f, "fast_transfer_file"),
        transfers,
        "nothing sent again"
    );
    assert_eq!(api_calls(&f, "fast_execute_script"), 2);
    let events = events(&out.stdout);
    assert_eq!(
        differing_hosts(&verified_event(&events)["verification"]),
        ["0:10.0.2.1"]
    );
}

/// A host whose agent fails the first job that reaches it: over v3 `retries = 1` runs it
/// again inside the same job (`operate_step_instance` code 2), so JOB holds one job, the
/// journal two attempts of it.
#[test]
fn a_v3_retry_runs_the_failed_host_again_inside_the_same_job() {
    let f = fixture("v3", "retries = 1", FLAKY_WORLD);
    let out = f.apply_sandbox(&["--yes", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(
        f.read("10.0.2.2", "/opt/app/app.tgz").as_deref(),
        Some(&b"release 4.0, every byte of it"[..])
    );
    let requests = f.requests();
    let created: Vec<&Value> = requests
        .iter()
        .filter(|r| r["api"] == "fast_transfer_file" && !r["job_instance_id"].is_null())
        .collect();
    assert_eq!(created.len(), 1, "one job");
    let job = created[0]["job_instance_id"].as_i64().expect("job id");
    let retries: Vec<&Value> = requests
        .iter()
        .filter(|r| r["api"] == "operate_step_instance")
        .collect();
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0]["body"]["operation_code"], 2);
    assert_eq!(retries[0]["body"]["job_instance_id"], job);

    let lines = journal(&f);
    let attempts = of_type(&lines, "push_attempt_finished");
    assert_eq!(attempts.len(), 2);
    for (i, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt["attempt"], i as u64 + 1);
        assert_eq!(attempt["job_instance_id"], job);
    }
    assert_eq!(attempts[0]["job_status"], 4);
    assert_eq!(attempts[1]["job_status"], 3);
    let intent = of_type(&lines, "push_retry_requested");
    assert_eq!(intent.len(), 1);
    assert_eq!(intent[0]["attempt"], 2);
    assert_eq!(intent[0]["job"]["job_instance_id"], job);
    assert_eq!(intent[0]["hosts"], serde_json::json!(["0:10.0.2.2"]));

    // The events and the report show each attempt, the retry inside the same job.
    let events = events(&out.stdout);
    let retrying = events
        .iter()
        .find(|e| e["event"] == "push_retrying")
        .expect("push_retrying");
    assert_eq!(retrying["in_job"], job);
    let report = &events
        .iter()
        .find(|e| e["event"] == "push_finished")
        .expect("push_finished")["report"];
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["attempt_log"][0]["job_instance_id"], job);
    assert_eq!(report["attempt_log"][0]["failed"], 1);
    assert_eq!(report["attempt_log"][1]["job_instance_id"], job);
    assert_eq!(report["attempt_log"][1]["in_same_job"], true);
    assert_eq!(report["attempt_log"][1]["failed"], 0);
    assert_schemas_hold(&f, &events);
}

/// The journal cut right after a line of `kind` (the process killed there).
fn cut_journal_after(f: &Fixture, kind: &str) {
    let file = journal_files(f).pop().expect("a journal");
    let needle = format!("\"type\":\"{kind}\"");
    let mut kept = String::new();
    for line in std::fs::read_to_string(&file).expect("journal").lines() {
        kept.push_str(line);
        kept.push('\n');
        if line.contains(&needle) {
            break;
        }
    }
    assert!(kept.contains(&needle), "no {kind} line");
    std::fs::write(&file, kept).expect("rewrite journal");
}

const FLAKY_WORLD: &str =
    "[[business]]\nid = 2\n\n[[host]]\nhost = \"0:10.0.2.2\"\nflaky_jobs = 1\n";

/// Killed after the retry's intent, JOB having taken the retry: the resumed run reads the
/// step's execution count, sees the retry happened, and follows the job without asking again.
#[test]
fn a_resumed_retry_that_job_took_is_not_sent_again() {
    let f = fixture("v3", "retries = 1", FLAKY_WORLD);
    let out = f.apply_sandbox(&["--yes"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(api_calls(&f, "operate_step_instance"), 1);
    cut_journal_after(&f, "push_retry_requested");
    let out = f.apply_sandbox(&["--yes", "--resume"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(api_calls(&f, "operate_step_instance"), 1, "not sent twice");
    assert_eq!(api_calls(&f, "fast_transfer_file"), 1, "no new job");
    let lines = journal(&f);
    let attempts = of_type(&lines, "push_attempt_finished");
    assert_eq!(
        attempts.last().map(|a| &a["attempt"]),
        Some(&Value::from(2))
    );
    assert_eq!(
        attempts.last().map(|a| &a["job_status"]),
        Some(&Value::from(3))
    );
}

/// JOB refused the retry (nothing happened in JOB): the push fails with the job still
/// waiting on its failed host; the resumed run finds the step's execution count unchanged
/// and sends the retry then, once, in the same job.
#[test]
fn a_resumed_retry_that_job_did_not_take_is_sent_once() {
    let refusing = format!(
        "{FLAKY_WORLD}\n[[fault]]\napi = \"operate_step_instance\"\nkind = \"job_error\"\ncode = 1241003\n"
    );
    let f = fixture("v3", "retries = 1", &refusing);
    let out = f.apply_sandbox(&["--yes"]);
    assert_eq!(code(&out), 3, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stderr).contains("JOB did not run the failed hosts of instance"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(f.read("10.0.2.2", "/opt/app/app.tgz"), None);
    // The agent is healthy again (a restarted simulator would count `flaky_jobs` afresh).
    std::fs::write(f.path("sandbox/jobsim.toml"), "[[business]]\nid = 2\n").expect("world");
    let out = f.apply_sandbox(&["--yes", "--resume"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let answered: Vec<Value> = f
        .requests()
        .into_iter()
        .filter(|r| r["api"] == "operate_step_instance")
        .collect();
    assert_eq!(
        answered.len(),
        2,
        "refused once, then sent once: {answered:#?}"
    );
    assert_eq!(api_calls(&f, "fast_transfer_file"), 1, "no new job");
    assert_eq!(
        f.read("10.0.2.2", "/opt/app/app.tgz").as_deref(),
        Some(&b"release 4.0, every byte of it"[..])
    );
}

/// A verification that cannot run (JOB refuses the script job) fails the push: a transfer
/// nobody could check is not reported verified.
#[test]
fn a_verification_job_refuses_fails_the_push() {
    let refusing = format!(
        "{}\n[[fault]]\napi = \"fast_execute_script\"\nkind = \"job_error\"\ncode = 1244030\n",
        world(&[])
    );
    let f = fixture("v3", "verify = \"sha256\"", &refusing);
    let out = f.apply_sandbox(&["--yes", "--format", "json"]);
    assert_eq!(code(&out), 3, "{}{}", text(&out.stdout), text(&out.stderr));
    let events = events(&out.stdout);
    let verification = &verified_event(&events)["verification"];
    assert_eq!(verification["verified"], 0);
    let error = verification["error"].as_str().unwrap_or_default();
    assert!(error.contains("1244030"), "{error}");
    let finished = events
        .iter()
        .find(|e| e["event"] == "push_finished")
        .expect("push_finished");
    assert_eq!(finished["report"]["status"], "failed");
    assert!(
        finished["report"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("sha256 verification could not run"),
        "{finished}"
    );
}

/// `verify` on a source the verification cannot read (here a wildcard under v2's `"size"`,
/// which `plan check` accepts) is refused before anything is sent, not failed after the
/// transfer.
#[test]
fn a_verification_that_could_not_run_is_refused_before_anything_is_sent() {
    let f = Fixture::new(
        &plan("v2", "verify = \"size\"").replace("/data/app.tgz", "/data/*.tgz"),
        &world(&[]),
    );
    f.write("10.0.0.1", "/data/app.tgz", b"release");
    let out = f.apply_sandbox(&["--yes"]);
    assert_eq!(code(&out), 4, "{}{}", text(&out.stdout), text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("push `app` asks for `verify`, which cannot be carried out"),
        "{said}"
    );
    assert!(said.contains("wildcard"), "{said}");
    assert!(f.requests().is_empty(), "nothing sent");
}

/// A verification that found one host differing: once the cause is fixed, `--resume` sends
/// to that host alone (the others were checked) and verifies every target again.
#[test]
fn resume_after_a_failed_verification_sends_only_to_the_hosts_that_differed() {
    let f = fixture("v3", "verify = \"sha256\"", &world(&["10.0.1.2"]));
    let out = f.apply_sandbox(&["--yes"]);
    assert_eq!(code(&out), 3, "{}{}", text(&out.stdout), text(&out.stderr));
    std::fs::write(f.path("sandbox/jobsim.toml"), world(&[])).expect("world");
    let out = f.apply_sandbox(&["--yes", "--resume", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let transfers: Vec<Value> = f
        .requests()
        .into_iter()
        .filter(|r| r["api"] == "fast_transfer_file" && !r["job_instance_id"].is_null())
        .collect();
    assert_eq!(transfers.len(), 2);
    let second = &transfers[1]["body"]["target_server"];
    let named = second["host_id_list"].as_array().map_or(0, Vec::len)
        + second["ip_list"].as_array().map_or(0, Vec::len);
    assert_eq!(named, 1, "{second}");
    assert_eq!(
        f.read("10.0.1.2", "/opt/app/app.tgz").as_deref(),
        Some(&b"release 4.0, every byte of it"[..])
    );
    let events = events(&out.stdout);
    let verification = &verified_event(&events)["verification"];
    assert_eq!(verification["hosts"], 4);
    assert_eq!(verification["verified"], 4);
}

/// A source host that is also a target is one host of the script job, read once for both.
#[test]
fn a_source_that_is_also_a_target_is_read_once() {
    let f = Fixture::new(
        &plan("v3", "verify = \"sha256\"").replace(
            r#"hosts = ["10.0.1.1","#,
            r#"hosts = ["10.0.0.1", "10.0.1.1","#,
        ),
        &world(&[]),
    );
    f.write(
        "10.0.0.1",
        "/data/app.tgz",
        b"release 4.0, every byte of it",
    );
    let out = f.apply_sandbox(&["--yes", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let events = events(&out.stdout);
    assert_eq!(verified_event(&events)["verification"]["verified"], 5);
    let script = f
        .requests()
        .into_iter()
        .find(|r| r["api"] == "fast_execute_script")
        .expect("a script job");
    let server = &script["body"]["target_server"];
    let named = server["host_id_list"].as_array().map_or(0, Vec::len)
        + server["ip_list"].as_array().map_or(0, Vec::len);
    assert_eq!(named, 5, "{server}");
}

/// Under v3 `"size"` reads JOB's log alone, so a wildcard source verifies: every file it
/// matched, on every target, against its source's upload.
#[test]
fn v3_size_verifies_a_wildcard_source_from_jobs_log() {
    let f = Fixture::new(
        &plan("v3", "verify = \"size\"").replace("/data/app.tgz", "/data/*.tgz"),
        &world(&[]),
    );
    f.write("10.0.0.1", "/data/app.tgz", b"release");
    f.write("10.0.0.1", "/data/lib.tgz", b"a library, longer");
    let out = f.apply_sandbox(&["--yes", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    let events = events(&out.stdout);
    let verification = &verified_event(&events)["verification"];
    assert_eq!(verification["verified"], 4, "{verification}");
    assert_eq!(api_calls(&f, "fast_execute_script"), 0);
    assert_eq!(
        f.read("10.0.2.2", "/opt/app/lib.tgz").as_deref(),
        Some(&b"a library, longer"[..])
    );
}
