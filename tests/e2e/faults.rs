//! The fault matrix: `plan apply --endpoint`, the built binary, against an in-test `jobsim`
//! that misbehaves in one way per test. Each row checks the exit code (cli.md), the report a
//! user reads, the journal, and the simulator's request log: a failure is retried when
//! retrying is right, never when the call may already have acted (a submission is never sent
//! twice), every run ends within a generous bound, and the diagnostic says what failed,
//! where, and what to do.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use plan_jobsim::{FaultKind, FaultRule, RecordedRequest};
use serde_json::Value;

use crate::apply::{Fixture, TWO_STAGES, code, task_base, text};
use crate::server::SimServer;

/// A simulator on loopback, controlled by the test while `plan` runs as a child process; it
/// reports its figures for the matrix when dropped.
pub(crate) struct Sim(SimServer);

impl Sim {
    pub(crate) fn start(f: &Fixture) -> Sim {
        Sim(SimServer::start(&f.path("sandbox")))
    }
}

impl std::ops::Deref for Sim {
    type Target = SimServer;

    fn deref(&self) -> &SimServer {
        &self.0
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        tally(&self.0.requests());
    }
}

/// One line per simulator for the matrix's figures, seen with
/// `cargo test --test e2e faults -- --nocapture`: the calls it answered (every one of them
/// checked by the row's assertions) and how many an injected fault hit.
#[allow(
    clippy::print_stderr,
    reason = "the matrix's figures, read with --nocapture"
)]
fn tally(requests: &[RecordedRequest]) {
    let faulted = requests.iter().filter(|r| r.fault.is_some()).count();
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    eprintln!(
        "matrix-figures {test}: calls={} faulted={faulted}",
        requests.len()
    );
}

pub(crate) const CREDS: &[(&str, &str)] = &[
    ("BK_APP_CODE", "plan-app"),
    ("BK_APP_SECRET", "right-secret"),
    ("BK_USERNAME", "admin"),
];

/// `plan apply plan.toml --endpoint URL --yes --poll-interval 100 ARGS` with `CREDS`.
fn command(f: &Fixture, url: &str, args: &[&str]) -> Command {
    let mut cmd = f.apply_endpoint(url);
    cmd.args(args);
    for (k, v) in CREDS {
        cmd.env(k, v);
    }
    cmd
}

/// One run and how long it took.
fn apply(f: &Fixture, url: &str, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = command(f, url, args).output().expect("run plan");
    (out, started.elapsed())
}

/// Starts a run, waits until the request log satisfies `ready` (at most 30 s), does
/// `action`, and waits for the run to end.
fn apply_during(
    f: &Fixture,
    sim: &Sim,
    url: &str,
    args: &[&str],
    ready: impl Fn(&[RecordedRequest]) -> bool,
    action: impl FnOnce(&Sim),
) -> (Output, Duration) {
    let started = Instant::now();
    let child: Child = command(f, url, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn plan");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(&sim.requests()) {
        assert!(Instant::now() < deadline, "the run never reached the point");
        std::thread::sleep(Duration::from_millis(10));
    }
    action(sim);
    let out = child.wait_with_output().expect("wait plan");
    (out, started.elapsed())
}

/// A job of `api` was created (the moment to break things while it runs).
fn job_created(api: &'static str) -> impl Fn(&[RecordedRequest]) -> bool {
    move |r| {
        r.iter()
            .any(|r| r.api == api && r.job_instance_id.is_some())
    }
}

fn calls<'a>(requests: &'a [RecordedRequest], api: &str) -> Vec<&'a RecordedRequest> {
    requests.iter().filter(|r| r.api == api).collect()
}

/// Jobs created for a task name.
fn created(requests: &[RecordedRequest], task: &str) -> usize {
    requests
        .iter()
        .filter(|r| task_base(&r.body["task_name"]) == task && r.job_instance_id.is_some())
        .count()
}

/// Submissions sent for a task name (answered or not).
fn sent(requests: &[RecordedRequest], task: &str) -> usize {
    requests
        .iter()
        .filter(|r| {
            matches!(r.api.as_str(), "fast_push_file" | "fast_transfer_file")
                && task_base(&r.body["task_name"]) == task
        })
        .count()
}

/// Every journal line of the plan's runs, parsed.
fn journal(f: &Fixture) -> Vec<Value> {
    let dir = f.path("state/runs/e2e");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).expect("runs").flatten() {
        let body = std::fs::read_to_string(entry.path()).expect("journal");
        lines.extend(
            body.lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("journal line")),
        );
    }
    lines
}

fn records<'a>(journal: &'a [Value], kind: &str) -> Vec<&'a Value> {
    journal.iter().filter(|r| r["type"] == kind).collect()
}

/// The run's last journal line says how it ended; every push that ended has its line.
fn assert_run_finished(journal: &[Value], status: &str) {
    let last = journal.last().expect("journal has lines");
    assert_eq!(last["type"], "run_finished", "{last}");
    assert_eq!(last["status"], status, "{last}");
}

fn push_status<'a>(journal: &'a [Value], push: &str) -> Vec<&'a Value> {
    records(journal, "push_finished")
        .into_iter()
        .filter(|r| r["push"] == push)
        .map(|r| &r["status"])
        .collect()
}

fn both(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn v3(plan: &str) -> String {
    plan.replacen("account = \"root\"", "account = \"root\"\napi = \"v3\"", 1)
}

/// Jobs stay in flight long enough (submit -> START) for a fault to land while they run.
const SLOW_START: &str = "[sim]\nstart_delay_ms = 700\n";

fn fixture(plan: &str, jobsim: &str) -> Fixture {
    let f = Fixture::new(plan, jobsim);
    f.write("10.0.0.1", "/data/release/app.tar.gz", b"payload");
    f
}

/// Both pushes delivered, each submitted exactly once.
fn assert_delivered_once(f: &Fixture, requests: &[RecordedRequest]) {
    for task in ["e2e/to-relays", "e2e/to-web"] {
        assert_eq!(sent(requests, task), 1, "{task} sent once");
    }
    assert_delivered(f, requests);
}

/// Both pushes delivered, each by exactly one job.
fn assert_delivered(f: &Fixture, requests: &[RecordedRequest]) {
    for task in ["e2e/to-relays", "e2e/to-web"] {
        assert_eq!(created(requests, task), 1, "{task} created once");
    }
    for ip in ["10.0.2.1", "10.0.2.2"] {
        assert_eq!(
            f.read(ip, "/opt/app/app.tar.gz").as_deref(),
            Some(&b"payload"[..])
        );
    }
}

const BOUND: Duration = Duration::from_secs(60);

// Row 1: HTTP 500/502/503/504 bursts on the status queries a run makes while its job runs.
// Reads are always safe to repeat: the burst is absorbed, nothing is submitted twice.
#[test]
fn row01_5xx_bursts_on_queries_are_retried_and_absorbed() {
    for (kind, gateway) in [
        ("http_500", false),
        ("http_502", false),
        ("http_503", false),
        ("http_504", false),
        ("http_500", true),
        ("http_504", true),
    ] {
        let plan = if gateway {
            v3(TWO_STAGES)
        } else {
            TWO_STAGES.to_owned()
        };
        let f = fixture(&plan, SLOW_START);
        let sim = Sim::start(&f);
        let (url, submit) = if gateway {
            (sim.gateway(), "fast_transfer_file")
        } else {
            (sim.url.clone(), "fast_push_file")
        };
        let (out, took) = apply_during(&f, &sim, &url, &[], job_created(submit), |s| {
            s.inject("get_job_instance_status", kind, 3)
        });
        assert_eq!(code(&out), 0, "{kind} gateway={gateway}: {}", both(&out));
        let requests = sim.requests();
        let status: u16 = kind[5..].parse().expect("status");
        let failed = calls(&requests, "get_job_instance_status")
            .iter()
            .filter(|r| r.http_status == status)
            .count();
        assert_eq!(failed, 3, "{kind}: the burst hit the run's queries");
        assert_delivered_once(&f, &requests);
        let j = journal(&f);
        assert_run_finished(&j, "succeeded");
        assert!(text(&out.stdout).contains("done: 2 pushes (2 succeeded)"));
        assert!(took < BOUND, "{kind}: {took:?}");
    }
}

// Row 2: the same statuses on the submission. 503 (and the gateway's 1650300) proves JOB
// never saw it: re-sent. 500, 502 and 504 may come after JOB created the job: never re-sent;
// the push is "outcome unknown", the journal says so, and the report names the task to look
// up in JOB (v2) or says the unstarted job transfers nothing (v3 two-phase).
#[test]
fn row02_5xx_on_submission_resent_only_when_jobs_never_saw_it() {
    // Safe: re-sent, delivered once.
    let f = fixture(
        TWO_STAGES,
        "[[fault]]\napi = \"fast_push_file\"\nkind = \"http_503\"\ncount = 2\n",
    );
    let sim = Sim::start(&f);
    let (out, took) = apply(&f, &sim.url, &[]);
    assert_eq!(code(&out), 0, "{}", both(&out));
    let requests = sim.requests();
    let statuses: Vec<u16> = calls(&requests, "fast_push_file")
        .iter()
        .map(|r| r.http_status)
        .collect();
    assert_eq!(statuses[..3], [503, 503, 200], "{statuses:?}");
    assert_eq!(created(&requests, "e2e/to-relays"), 1);
    assert!(took < BOUND);
    drop(sim);

    for (kind, gateway) in [
        ("http_500", false),
        ("http_502", false),
        ("http_504", false),
        ("http_504", true),
    ] {
        let plan = if gateway {
            v3(TWO_STAGES)
        } else {
            TWO_STAGES.to_owned()
        };
        let submit = if gateway {
            "fast_transfer_file"
        } else {
            "fast_push_file"
        };
        let f = fixture(
            &plan,
            &format!("[[fault]]\napi = \"{submit}\"\nkind = \"{kind}\"\ncount = 1\n"),
        );
        let sim = Sim::start(&f);
        let url = if gateway {
            sim.gateway()
        } else {
            sim.url.clone()
        };
        let (out, took) = apply(&f, &url, &[]);
        assert_eq!(code(&out), 3, "{kind}: {}", both(&out));
        let requests = sim.requests();
        assert_eq!(
            sent(&requests, "e2e/to-relays"),
            1,
            "{kind}: a submission that may have acted is never re-sent"
        );
        assert_eq!(
            sent(&requests, "e2e/to-web"),
            0,
            "{kind}: stage 2 never starts"
        );
        // 504 comes from a front end that gave up while JOB went on: the job exists.
        assert_eq!(
            created(&requests, "e2e/to-relays"),
            usize::from(kind == "http_504"),
            "{kind}"
        );
        let j = journal(&f);
        let failed = records(&j, "push_submit_failed");
        assert_eq!(failed.len(), 1, "{kind}: {j:?}");
        assert_eq!(failed[0]["outcome_unknown"], true, "{kind}");
        assert_eq!(push_status(&j, "to-relays"), ["outcome_unknown"], "{kind}");
        assert_run_finished(&j, "failed");
        let said = both(&out);
        assert!(said.contains("to-relays"), "{kind}: {said}");
        assert!(
            said.contains(&format!("HTTP {}", &kind[5..])),
            "{kind}: {said}"
        );
        if gateway {
            assert!(said.contains("waits unstarted"), "{kind}: {said}");
            // Never started: nothing moved.
            assert!(calls(&requests, "operate_job_instance").is_empty());
        } else {
            // What to do: look the task up in JOB before running it again.
            assert!(said.contains("e2e/to-relays"), "{kind}: {said}");
        }
        assert!(took < BOUND, "{kind}: {took:?}");
    }
}

// Row 2, the client's default bound: a submission refused with 503 every time is sent six
// times in all (docs/apply.md: "bounded in attempts (6)"), after backoffs of at least half
// of 0.2, 0.4, 0.8, 1.6 and 3.2 s, then the push fails without stage 2.
#[test]
fn row02_a_submission_503_every_time_is_sent_six_times_then_fails() {
    let f = fixture(
        TWO_STAGES,
        "[[fault]]\napi = \"fast_push_file\"\nkind = \"http_503\"\ncount = 100\n",
    );
    let sim = Sim::start(&f);
    let (out, _) = apply(&f, &sim.url, &[]);
    assert_eq!(code(&out), 3, "{}", both(&out));
    let requests = sim.requests();
    let sends = calls(&requests, "fast_push_file");
    let statuses: Vec<u16> = sends.iter().map(|r| r.http_status).collect();
    assert_eq!(statuses, [503; 6]);
    let waited = at(sends[5]) - at(sends[0]);
    assert!(
        waited >= chrono::TimeDelta::milliseconds(3_100),
        "backed off {waited} only"
    );
    assert_eq!(sent(&requests, "e2e/to-web"), 0);
    let j = journal(&f);
    assert_eq!(
        records(&j, "push_submit_failed")[0]["outcome_unknown"],
        false
    );
    assert_run_finished(&j, "failed");
}

// Row 3: rate limits. The gateway's 429 with X-Bkapi-RateLimit-Reset is waited out as the
// header says; a 429 without headers and ESB's 1306429 (HTTP 200) back off on the client's
// own schedule. A rate limit is a refusal in front of JOB: submissions are re-sent.
#[test]
fn row03_rate_limits_with_and_without_headers_are_waited_out() {
    for (kind, gateway) in [
        ("http_429", true),
        ("http_429_bare", true),
        ("http_429", false),
    ] {
        let plan = v3(TWO_STAGES);
        let f = fixture(
            &plan,
            &format!(
                "[[fault]]\napi = \"fast_transfer_file\"\nkind = \"{kind}\"\ncount = 2\n\
                 [[fault]]\napi = \"get_job_instance_status\"\nkind = \"{kind}\"\ncount = 2\n"
            ),
        );
        let sim = Sim::start(&f);
        let url = if gateway {
            sim.gateway()
        } else {
            sim.url.clone()
        };
        let (out, took) = apply(&f, &url, &[]);
        assert_eq!(code(&out), 0, "{kind}: {}", both(&out));
        let requests = sim.requests();
        let submits = calls(&requests, "fast_transfer_file");
        let answers: Vec<(u16, Option<i64>)> =
            submits.iter().map(|r| (r.http_status, r.code)).collect();
        let limited = if gateway {
            (429, Some(1_642_902))
        } else {
            (200, Some(1_306_429))
        };
        assert_eq!(answers[..3], [limited, limited, (200, Some(0))], "{kind}");
        assert_eq!(
            sent(&requests, "e2e/to-relays"),
            3,
            "{kind}: refused twice, re-sent"
        );
        assert_delivered(&f, &requests);
        // Only the header says how long: a second each time, so at least two in all.
        if kind == "http_429" && gateway {
            assert!(took >= Duration::from_millis(1900), "{took:?}");
        }
        assert_run_finished(&journal(&f), "succeeded");
        assert!(took < BOUND, "{kind}: {took:?}");
    }
}

// Row 4: connection refused in the middle of a run (the server goes away for two seconds
// while a job runs, then comes back with the same state). Queries are retried until it is
// back; the running job is followed to its end, nothing is submitted twice.
#[test]
fn row04_connection_refused_mid_run_is_ridden_out() {
    let f = fixture(TWO_STAGES, SLOW_START);
    let sim = Sim::start(&f);
    let url = sim.url.clone();
    let (out, took) = apply_during(&f, &sim, &url, &[], job_created("fast_push_file"), |s| {
        s.running().refuse_for(Duration::from_secs(2))
    });
    assert_eq!(code(&out), 0, "{}", both(&out));
    let requests = sim.requests();
    assert_delivered_once(&f, &requests);
    // The log has a hole of at least the refusal while the first job was in flight.
    let first = requests
        .iter()
        .position(|r| r.job_instance_id.is_some())
        .expect("job");
    let widest = requests[first..]
        .windows(2)
        .map(|w| at(&w[1]) - at(&w[0]))
        .max()
        .expect("calls after the job was created");
    assert!(
        widest >= chrono::TimeDelta::milliseconds(1900),
        "no call was answered for {widest} only"
    );
    assert_run_finished(&journal(&f), "succeeded");
    assert!(took < BOUND, "{took:?}");
    drop(sim);

    // Refused when the submission goes out: the credentials check is answered late (it is
    // in flight when the listener closes), so the submission that follows meets a closed
    // port. A refused connection proves nothing was sent: the submission is re-sent.
    let f = fixture(
        TWO_STAGES,
        "[[fault]]\napi = \"get_job_instance_status\"\nkind = \"slow\"\ndelay_ms = 400\ncount = 1\n",
    );
    let sim = Sim::start(&f);
    let url = sim.url.clone();
    let checked = |r: &[RecordedRequest]| r.iter().any(|r| r.api == "get_job_instance_status");
    let (out, took) = apply_during(&f, &sim, &url, &[], checked, |s| {
        s.running().refuse_for(Duration::from_millis(1500))
    });
    assert_eq!(code(&out), 0, "{}", both(&out));
    let requests = sim.requests();
    assert_delivered_once(&f, &requests);
    let submit = calls(&requests, "fast_push_file")[0];
    let gap = at(submit) - at(&requests[0]);
    assert!(
        gap >= chrono::TimeDelta::milliseconds(1400),
        "the submission got through after {gap} only"
    );
    assert!(took < BOUND, "{took:?}");
}

/// The time of a request log entry, parsed whole (date and offset included, so a gap that
/// spans midnight is still right).
fn at(r: &RecordedRequest) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(&r.time).unwrap_or_else(|e| panic!("{}: {e}", r.time))
}

// Row 5: the connection is reset (closed without an answer). A query is repeated; a
// submission is not (the client cannot know JOB did not act), so the push ends "outcome
// unknown" with the task name to look up.
#[test]
fn row05_connection_reset_repeats_queries_but_never_a_submission() {
    let f = fixture(TWO_STAGES, SLOW_START);
    let sim = Sim::start(&f);
    let url = sim.url.clone();
    let (out, _) = apply_during(&f, &sim, &url, &[], job_created("fast_push_file"), |s| {
        s.inject("get_job_instance_status", "drop", 2)
    });
    assert_eq!(code(&out), 0, "{}", both(&out));
    let requests = sim.requests();
    let dropped = calls(&requests, "get_job_instance_status")
        .iter()
        .filter(|r| r.http_status == 0)
        .count();
    assert_eq!(dropped, 2);
    assert_delivered_once(&f, &requests);
    drop(sim);

    let f = fixture(
        TWO_STAGES,
        "[[fault]]\napi = \"fast_push_file\"\nkind = \"drop\"\ncount = 1\n",
    );
    let sim = Sim::start(&f);
    let (out, took) = apply(&f, &sim.url, &[]);
    assert_eq!(code(&out), 3, "{}", both(&out));
    let requests = sim.requests();
    let submits = calls(&requests, "fast_push_file");
    assert_eq!(submits.len(), 1, "never re-sent");
    assert_eq!(submits[0].http_status, 0);
    let j = journal(&f);
    assert_eq!(push_status(&j, "to-relays"), ["outcome_unknown"]);
    assert_eq!(
        records(&j, "push_submit_failed")[0]["outcome_unknown"],
        true
    );
    let said = both(&out);
    assert!(said.contains("e2e/to-relays"), "{said}");
    assert!(took < BOUND, "{took:?}");
    drop(sim);

    // The same after JOB created the job (v2: it runs): still sent once, one job.
    let f = fixture(
        TWO_STAGES,
        "[[fault]]\napi = \"fast_push_file\"\nkind = \"drop_after\"\ncount = 1\n",
    );
    let sim = Sim::start(&f);
    let (out, _) = apply(&f, &sim.url, &[]);
    assert_eq!(code(&out), 3, "{}", both(&out));
    let requests = sim.requests();
    assert_eq!(sent(&requests, "e2e/to-relays"), 1, "never re-sent");
    assert_eq!(created(&requests, "e2e/to-relays"), 1);
    assert_eq!(push_status(&journal(&f), "to-relays"), ["outcome_unknown"]);
    assert!(both(&out).contains("look for task `e2e/to-relays`"));
}

// Row 6: an answer that never comes (the client's timeout, made short with --http-timeout).
// The submission is processed by JOB (the job exists) but the answer is too late: never
// re-sent, "outcome unknown". A late answer to a query is simply asked again.
#[test]
fn row06_client_timeout_never_resubmits_and_repeats_queries() {
    let f = fixture(
        TWO_STAGES,
        "[[fault]]\napi = \"fast_push_file\"\nkind = \"slow\"\ndelay_ms = 4000\ncount = 1\n",
    );
    let sim = Sim::start(&f);
    let (out, took) = apply(&f, &sim.url, &["--http-timeout", "1"]);
    assert_eq!(code(&out), 3, "{}", both(&out));
    let requests = sim.requests();
    assert_eq!(sent(&requests, "e2e/to-relays"), 1, "never re-sent");
    assert_eq!(created(&requests, "e2e/to-relays"), 1, "JOB did create it");
    let j = journal(&f);
    assert_eq!(push_status(&j, "to-relays"), ["outcome_unknown"]);
    let said = both(&out);
    assert!(said.contains("e2e/to-relays"), "{said}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    drop(sim);

    let f = fixture(TWO_STAGES, SLOW_START);
    let sim = Sim::start(&f);
    let url = sim.url.clone();
    let (out, took) = apply_during(
        &f,
        &sim,
        &url,
        &["--http-timeout", "1"],
        job_created("fast_push_file"),
        |s| {
            s.running().state().inject(FaultRule {
                delay_ms: Some(3000),
                ..FaultRule::next("get_job_instance_status", FaultKind::Slow, 2)
            })
        },
    );
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert_delivered_once(&f, &sim.requests());
    assert!(took < BOUND, "{took:?}");
}

// Row 7: malformed JSON, an HTTP 200 whose body stops half-way. On a query it is a broken
// transfer and is asked again; on a submission JOB may have created the job: not re-sent.
#[test]
fn row07_malformed_json_answers() {
    let f = fixture(TWO_STAGES, SLOW_START);
    let sim = Sim::start(&f);
    let url = sim.url.clone();
    let (out, _) = apply_during(&f, &sim, &url, &[], job_created("fast_push_file"), |s| {
        s.inject("get_job_instance_status", "malformed", 2)
    });
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert_delivered_once(&f, &sim.requests());
    drop(sim);

    let f = fixture(
        TWO_STAGES,
        "[[fault]]\napi = \"fast_push_file\"\nkind = \"malformed\"\ncount = 1\n",
    );
    let sim = Sim::start(&f);
    let (out, took) = apply(&f, &sim.url, &[]);
    assert_eq!(code(&out), 3, "{}", both(&out));
    let requests = sim.requests();
    assert_eq!(sent(&requests, "e2e/to-relays"), 1);
    assert_eq!(created(&requests, "e2e/to-relays"), 1);
    let j = journal(&f);
    assert_eq!(push_status(&j, "to-relays"), ["outcome_unknown"]);
    let said = both(&out);
    assert!(said.contains("cut short"), "{said}");
    assert!(took < BOUND, "{took:?}");
}

/// What a §9 row expects of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Retried by the client, then delivered (exit 0).
    Absorbed,
    /// Refused, never re-sent: exit 3, `rejected`, with this advice in the report.
    Rejected(&'static str),
    /// The submission may have acted: exit 3, `outcome_unknown`, never re-sent.
    Unknown,
}

// Row 8: HTTP 200 envelopes with `result: false`, one per error class of bk-job-api.md §9:
// unavailable and rate-limited (retried), internal (a submission's outcome unknown),
// validation, not found, permission (IAM), quota and file-task capacity (refused, with what
// to do), and a refused credential (cannot start, nothing sent).
#[test]
fn row08_result_false_each_error_class_of_section_9() {
    let table: [(&str, i64, u64, Expect); 9] = [
        ("job_error", 1_240_001, 2, Expect::Absorbed),
        ("esb_1306429", 1_306_429, 2, Expect::Absorbed),
        ("job_error", 1_240_002, 1, Expect::Unknown),
        ("job_error", 1_240_003, 1, Expect::Rejected("invalid")),
        (
            "job_error",
            1_244_003,
            1,
            Expect::Rejected("unknown to JOB"),
        ),
        ("job_error", 9_900_403, 1, Expect::Rejected("IAM")),
        ("job_error", 1_244_032, 1, Expect::Rejected("quota")),
        (
            "job_error",
            1_244_021,
            1,
            Expect::Rejected("split the push"),
        ),
        (
            "job_error",
            1_243_049,
            1,
            Expect::Rejected("unknown to JOB"),
        ),
    ];
    for (kind, job_code, count, expect) in table {
        let f = fixture(
            TWO_STAGES,
            &format!(
                "[[fault]]\napi = \"fast_push_file\"\nkind = \"{kind}\"\ncode = {job_code}\ncount = {count}\n"
            ),
        );
        let sim = Sim::start(&f);
        let (out, took) = apply(&f, &sim.url, &[]);
        let requests = sim.requests();
        let answered: Vec<Option<i64>> = calls(&requests, "fast_push_file")
            .iter()
            .map(|r| r.code)
            .collect();
        assert!(
            answered[..count as usize]
                .iter()
                .all(|c| *c == Some(job_code)),
            "{job_code}: {answered:?}"
        );
        let j = journal(&f);
        let said = both(&out);
        match expect {
            Expect::Absorbed => {
                assert_eq!(code(&out), 0, "{job_code}: {said}");
                assert_eq!(answered.len(), 1 + count as usize + 1, "{job_code}");
                assert_delivered(&f, &requests);
                assert_run_finished(&j, "succeeded");
            }
            Expect::Rejected(advice) => {
                assert_eq!(code(&out), 3, "{job_code}: {said}");
                assert_eq!(answered.len(), 1, "{job_code}: never re-sent");
                assert_eq!(push_status(&j, "to-relays"), ["rejected"], "{job_code}");
                let failed = records(&j, "push_submit_failed");
                assert_eq!(failed[0]["code"], job_code);
                assert_eq!(failed[0]["outcome_unknown"], false);
                assert!(said.contains(&format!("code {job_code}")), "{said}");
                assert!(said.contains("was refused by JOB"), "{said}");
                assert!(said.contains(advice), "{job_code}: {said}");
                assert_run_finished(&j, "failed");
            }
            Expect::Unknown => {
                assert_eq!(code(&out), 3, "{job_code}: {said}");
                assert_eq!(answered.len(), 1, "{job_code}: never re-sent");
                assert_eq!(push_status(&j, "to-relays"), ["outcome_unknown"]);
                assert!(said.contains("look for task `e2e/to-relays`"), "{said}");
            }
        }
        assert_eq!(
            sent(&requests, "e2e/to-web"),
            usize::from(expect == Expect::Absorbed)
        );
        assert!(took < BOUND, "{job_code}: {took:?}");
    }

    // The same classes on a query while the job runs: internal errors are asked again; a
    // "no such job" ends the following (the job is left to `--resume`), never a re-submission.
    for (job_code, count, ok) in [(1_240_002, 2, true), (1_244_006, 1, false)] {
        let f = fixture(TWO_STAGES, SLOW_START);
        let sim = Sim::start(&f);
        let url = sim.url.clone();
        let (out, took) = apply_during(&f, &sim, &url, &[], job_created("fast_push_file"), |s| {
            s.running().state().inject(FaultRule {
                code: Some(job_code),
                ..FaultRule::next("get_job_instance_status", FaultKind::JobError, count)
            })
        });
        let requests = sim.requests();
        assert_eq!(sent(&requests, "e2e/to-relays"), 1, "{job_code}");
        let said = both(&out);
        if ok {
            assert_eq!(code(&out), 0, "{job_code}: {said}");
            assert_delivered_once(&f, &requests);
        } else {
            assert_eq!(code(&out), 3, "{job_code}: {said}");
            assert!(said.contains("Task instance does not exist"), "{said}");
            assert!(said.contains("--resume"), "{said}");
            // (The credentials check before the run asks for a job that cannot exist.)
            let polls_after_fault = calls(&requests, "get_job_instance_status")
                .iter()
                .filter(|r| r.body["job_instance_id"] != i64::MAX)
                .skip_while(|r| r.code != Some(job_code))
                .count();
            assert_eq!(polls_after_fault, 1, "not found is not asked again");
        }
        assert!(took < BOUND, "{job_code}: {took:?}");
    }

    // Authentication (ESB 1306000): the run cannot start; one call, nothing submitted.
    let f = fixture(
        TWO_STAGES,
        "[[app]]\ncode = \"plan-app\"\nsecret = \"another-secret\"\n",
    );
    let sim = Sim::start(&f);
    let (out, _) = apply(&f, &sim.url, &[]);
    assert_eq!(code(&out), 4, "{}", both(&out));
    let requests = sim.requests();
    assert_eq!(requests.len(), 1, "only the credentials check");
    assert_eq!(requests[0].code, Some(1_306_000));
    let said = both(&out);
    assert!(said.contains("refused the credentials"), "{said}");
    assert!(said.contains("BK_APP_SECRET"), "{said}");
    assert!(!f.path("state/runs").exists(), "no run was started");
}

// Row 9: a job stuck in status 2 past its deadline (a target whose agent never reports).
// At timeout + --deadline-margin the run terminates it (`operate_job_instance` code 1, once),
// follows it to its end and reports the push timed out; stage 2 never starts.
#[test]
fn row09_job_stuck_past_its_deadline_is_terminated() {
    let plan = TWO_STAGES.replacen(
        "to = { hosts = \"relay\", path = \"/data/stage/\" }",
        "to = { hosts = \"relay\", path = \"/data/stage/\" }\ntimeout = 60",
        1,
    );
    let f = fixture(&plan, "[[host]]\nhost = \"0:10.0.1.1\"\nsilent = true\n");
    let sim = Sim::start(&f);
    let (out, took) = apply(&f, &sim.url, &["--deadline-margin", "0"]);
    assert_eq!(code(&out), 3, "{}", both(&out));
    let said = both(&out);
    assert!(
        said.contains("push `to-relays` timed out and was terminated"),
        "{said}"
    );
    assert!(said.contains("timeout of 60s"), "{said}");
    let requests = sim.requests();
    let terminates: Vec<&RecordedRequest> = calls(&requests, "operate_job_instance")
        .into_iter()
        .filter(|r| r.body["operation_code"] == 1 || r.body["operation_code"] == "1")
        .collect();
    assert_eq!(terminates.len(), 1, "terminated once");
    assert_eq!(terminates[0].code, Some(0));
    assert_eq!(sent(&requests, "e2e/to-relays"), 1);
    assert_eq!(sent(&requests, "e2e/to-web"), 0);
    let j = journal(&f);
    let asked = records(&j, "push_terminate_requested");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["reason"], "deadline");
    assert_eq!(push_status(&j, "to-relays"), ["timed_out"]);
    assert_run_finished(&j, "failed");
    assert!(
        took >= Duration::from_secs(59),
        "not before its deadline: {took:?}"
    );
    // Generous: the deadline is 60 s, the rest is polling cadence and a loaded CI machine.
    assert!(took < Duration::from_secs(120), "{took:?}");
}

/// TWO_STAGES with `retries = 1` on the second push.
fn with_web_retry() -> String {
    TWO_STAGES.replacen(
        "to = { hosts = \"web\", path = \"/opt/app/\" }",
        "to = { hosts = \"web\", path = \"/opt/app/\" }\nretries = 1",
        1,
    )
}

// Row 10: a host whose agent is down. The other host gets the files; the push retries only
// the failed host (as many times as the plan allows), then fails with the host, its status
// and JOB's log. An agent that recovers between attempts is delivered to on the retry.
#[test]
fn row10_agent_down_fails_that_host_and_retries_only_it() {
    let f = fixture(
        &with_web_retry(),
        "[[host]]\nhost = \"0:10.0.2.2\"\nagent = \"down\"\n",
    );
    let sim = Sim::start(&f);
    let (out, took) = apply(&f, &sim.url, &[]);
    assert_eq!(code(&out), 3, "{}", both(&out));
    let said = both(&out);
    assert!(
        said.contains("push `to-web` failed on 1 of 2 hosts"),
        "{said}"
    );
    assert!(said.contains("host 0:10.0.2.2: status 310"), "{said}");
    assert_eq!(
        f.read("10.0.2.1", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"payload"[..])
    );
    assert!(f.read("10.0.2.2", "/opt/app/app.tar.gz").is_none());
    let requests = sim.requests();
    let web: Vec<&RecordedRequest> = calls(&requests, "fast_push_file")
        .into_iter()
        .filter(|r| task_base(&r.body["task_name"]) == "e2e/to-web")
        .collect();
    assert_eq!(web.len(), 2, "first attempt and one retry");
    let targets = |r: &RecordedRequest| {
        r.body["target_server"]["ip_list"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(targets(web[0]), 2);
    assert_eq!(targets(web[1]), 1, "the retry names only the failed host");
    assert_eq!(web[1].body["target_server"]["ip_list"][0]["ip"], "10.0.2.2");
    let j = journal(&f);
    assert_eq!(records(&j, "push_attempt_finished").len(), 3);
    assert_eq!(push_status(&j, "to-web"), ["failed"]);
    assert!(took < BOUND, "{took:?}");
    drop(sim);

    let f = fixture(
        &with_web_retry(),
        "[[host]]\nhost = \"0:10.0.2.2\"\nflaky_jobs = 1\n",
    );
    let sim = Sim::start(&f);
    let (out, _) = apply(&f, &sim.url, &[]);
    assert_eq!(code(&out), 0, "{}", both(&out));
    assert_eq!(
        f.read("10.0.2.2", "/opt/app/app.tar.gz").as_deref(),
        Some(&b"payload"[..])
    );
    assert_eq!(sent(&sim.requests(), "e2e/to-web"), 2);
}

const TWO_SOURCES: &str = r#"
[plan]
name = "e2e"
bk_biz_id = 2
account = "root"

[hosts.mirrors]
ips = ["10.0.1.1", "10.0.1.2"]
[hosts.web]
ips = ["10.0.2.1", "10.0.2.2"]

[[push]]
name = "from-mirrors"
from = { hosts = "mirrors", files = ["/data/pkg/app.tar.gz"] }
to = { hosts = "web", path = "/opt/app/" }
"#;

// Row 11: the source file is missing on one of several source hosts. JOB fails every target
// with 320 (the upload from that source failed); the report says so per host with JOB's log
// naming the source, and the push is not re-submitted (no retries in the plan).
#[test]
fn row11_source_missing_on_one_of_several_sources() {
    let f = Fixture::new(TWO_SOURCES, "");
    f.write("10.0.1.1", "/data/pkg/app.tar.gz", b"from one mirror only");
    let sim = Sim::start(&f);
    let (out, took) = apply(&f, &sim.url, &[]);
    assert_eq!(code(&out), 3, "{}", both(&out));
    let said = both(&out);
    assert!(
        said.contains("push `from-mirrors` failed on 2 of 2 hosts"),
        "{said}"
    );
    assert!(said.contains("status 320"), "{said}");
    assert!(
        said.contains("Source file /data/pkg/app.tar.gz does not exist"),
        "JOB's log says why: {said}"
    );
    let requests = sim.requests();
    assert_eq!(sent(&requests, "e2e/from-mirrors"), 1);
    let j = journal(&f);
    let finished = records(&j, "push_attempt_finished");
    assert_eq!(finished.len(), 1);
    let hosts = finished[0]["hosts"].as_array().expect("hosts");
    assert!(hosts.iter().all(|h| h["status"] == 320), "{hosts:?}");
    assert_run_finished(&j, "failed");
    assert!(took < BOUND, "{took:?}");
}

// Row 12: partial failure across 50 targets: 5 agents down. One job; 45 hosts delivered;
// the report counts 45/5 and names the 5 (grouped: one cause); the journal holds all 50
// results; the logs of the failed hosts are fetched once.
#[test]
fn row12_partial_failure_across_50_targets() {
    for api in ["v2", "v3"] {
        let ips: Vec<String> = (1..=50).map(|i| format!("10.0.3.{i}")).collect();
        let down: Vec<&String> = ips.iter().filter(|ip| ip.ends_with('0')).collect();
        let list = ips
            .iter()
            .map(|ip| format!("\"{ip}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let plan = format!(
            "[plan]\nname = \"e2e\"\nbk_biz_id = 2\naccount = \"root\"\napi = \"{api}\"\n\n\
             [hosts.src]\nips = [\"10.0.0.1\"]\n[hosts.fleet]\nips = [{list}]\n\n\
             [[push]]\nname = \"to-fleet\"\n\
             from = {{ hosts = \"src\", files = [\"/data/release/app.tar.gz\"] }}\n\
             to = {{ hosts = \"fleet\", path = \"/opt/app/\" }}\n"
        );
        let jobsim: String = down
            .iter()
            .map(|ip| format!("[[host]]\nhost = \"0:{ip}\"\nagent = \"down\"\n"))
            .collect();
        let f = fixture(&plan, &jobsim);
        for ip in &ips {
            std::fs::create_dir_all(f.path("sandbox/hosts/0").join(ip)).expect("mkdir");
        }
        let sim = Sim::start(&f);
        let (out, took) = apply(&f, &sim.url, &[]);
        assert_eq!(code(&out), 3, "{api}: {}", both(&out));
        let said = both(&out);
        assert!(
            said.contains("push `to-fleet` failed on 5 of 50 hosts"),
            "{said}"
        );
        assert!(said.contains("45/5"), "{api}: {said}");
        let hosts_line = said
            .lines()
            .find(|l| l.contains("status 310"))
            .unwrap_or_default()
            .to_owned();
        for ip in &down {
            assert!(
                hosts_line.contains(&format!("0:{ip}")),
                "{ip}: {hosts_line}"
            );
        }
        for ip in &ips {
            let got = f.read(ip, "/opt/app/app.tar.gz");
            assert_eq!(got.is_some(), !down.contains(&ip), "{ip}");
        }
        let requests = sim.requests();
        let submit = if api == "v2" {
            "fast_push_file"
        } else {
            "fast_transfer_file"
        };
        assert_eq!(calls(&requests, submit).len(), 1);
        let log_api = if api == "v2" {
            "get_job_instance_log"
        } else {
            "batch_get_job_instance_ip_log"
        };
        // Logs come in one call for all failed hosts, not one per host: the report's read
        // follows the poll that saw the job finished (v2 reads the same API for progress
        // estimates while the job runs; those come before).
        let last_poll = requests
            .iter()
            .rposition(|r| r.api == "get_job_instance_status")
            .expect("polled");
        let report_reads = calls(&requests[last_poll..], log_api).len();
        assert_eq!(report_reads, 1, "{api}");
        if api == "v3" {
            // v3 estimates read one host's log with another API.
            assert_eq!(calls(&requests, log_api).len(), 1);
        }
        let j = journal(&f);
        let finished = records(&j, "push_attempt_finished");
        let results = finished[0]["hosts"].as_array().expect("hosts");
        assert_eq!(results.len(), 50);
        assert_eq!(results.iter().filter(|h| h["status"] == 9).count(), 45);
        assert_run_finished(&j, "failed");
        assert!(took < BOUND, "{api}: {took:?}");
    }
}
