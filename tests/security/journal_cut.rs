//! Journals cut at every line, full disks and file-size limits: every push is submitted at most
//! once, and a journal that cannot be trusted refuses to resume.
//!
//! One real run of a three-push plan gives the journal a kill could cut. For every prefix of
//! it (at each line end, and in the middle of each line, as a kill during a write leaves), the
//! state dir is reset to that prefix and `plan apply --resume` runs against the same `jobsim`,
//! which still knows the run's jobs. A kill at that point means the pushes whose intent
//! (`push_submitting`) is in the prefix may have been submitted and the others certainly were
//! not (the intent is on disk before the request leaves). From `jobsim`'s request log: a push
//! with its intent in the prefix is never submitted again, any other push at most once, and the
//! resume finishes every push unless the prefix leaves a submission in doubt (then it refuses
//! and sends nothing).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use plan_jobsim::RecordedRequest;
use serde_json::Value;

use crate::server::SimServer;

/// Two independent pushes in stage 1, one in stage 2 reading what the first delivered.
const PLAN: &str = r#"
[plan]
name = "cut"
bk_biz_id = 2
account = "root"

[hosts.src]
ips = ["10.0.0.1"]
[hosts.relay]
ips = ["10.0.1.1"]
[hosts.web]
ips = ["10.0.2.1", "10.0.2.2"]

[[push]]
name = "to-relays"
from = { hosts = "src", files = ["/data/release/app.tar.gz"] }
to = { hosts = "relay", path = "/data/stage/" }

[[push]]
name = "conf"
from = { hosts = "src", files = ["/data/release/app.conf"] }
to = { hosts = "web", path = "/opt/conf/" }

[[push]]
name = "to-web"
from = { hosts = "relay", files = ["/data/stage/app.tar.gz"] }
to = { hosts = "web", path = "/opt/app/" }
"#;

const PUSHES: [&str; 3] = ["to-relays", "conf", "to-web"];
const HOSTS: [&str; 4] = ["10.0.0.1", "10.0.1.1", "10.0.2.1", "10.0.2.2"];

/// A directory with the sandbox, the plan (in `plans/`, under a git work tree `repo/`) and
/// `state/`.
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new(jobsim_toml: &str) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let world = World { dir };
        for ip in HOSTS {
            std::fs::create_dir_all(world.host(ip)).expect("host");
        }
        std::fs::write(world.path("sandbox/jobsim.toml"), jobsim_toml).expect("jobsim.toml");
        std::fs::create_dir_all(world.path("repo/.git")).expect("repo");
        std::fs::create_dir_all(world.path("repo/plans")).expect("plans");
        std::fs::write(world.path("repo/plans/plan.toml"), PLAN).expect("plan");
        for (file, bytes) in [("app.tar.gz", &b"app"[..]), ("app.conf", b"conf")] {
            let path = world.host("10.0.0.1").join("data/release").join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, bytes).expect("source");
        }
        world
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn host(&self, ip: &str) -> PathBuf {
        self.path("sandbox/hosts/0").join(ip)
    }

    fn sim(&self) -> SimServer {
        SimServer::start(&self.path("sandbox"))
    }

    /// `plan apply PLAN --endpoint URL` from `cwd`, state under `state/` unless `own_state`
    /// (then the plan's default state dir decides).
    fn apply(&self, sim: &SimServer, cwd: &str, plan: &str, own_state: bool) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plan"));
        cmd.current_dir(self.path(cwd))
            .args([
                "apply",
                plan,
                "--endpoint",
                &sim.url,
                "--yes",
                "--poll-interval",
                "100",
            ])
            .env("PLAN_NO_PROGRESS", "1")
            .env("NO_COLOR", "1")
            .env("BK_APP_CODE", "plan-app")
            .env("BK_APP_SECRET", "journal-secret")
            .env("BK_USERNAME", "admin")
            .env_remove("BK_TOKEN")
            .env_remove("BK_ACCESS_TOKEN")
            .env_remove("BK_JOB_ENDPOINT");
        if own_state {
            cmd.env_remove("PLAN_STATE_DIR");
        } else {
            cmd.env("PLAN_STATE_DIR", self.path("state"));
        }
        cmd
    }

    fn run(&self, sim: &SimServer, args: &[&str]) -> Output {
        self.apply(sim, "repo", "plans/plan.toml", false)
            .args(args)
            .output()
            .expect("run plan")
    }

    /// The one journal of the plan under `state/`.
    fn journal(&self) -> PathBuf {
        let dir = self.path("state/runs/cut");
        let files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("runs")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files.into_iter().next().expect("journal")
    }

    /// `state/` holding only `prefix` as the run's journal (no lock, nothing else).
    fn reset_state(&self, journal_name: &str, prefix: &[u8]) {
        let state = self.path("state");
        if state.exists() {
            std::fs::remove_dir_all(&state).expect("reset");
        }
        std::fs::create_dir_all(state.join("runs/cut")).expect("runs");
        std::fs::write(state.join("runs/cut").join(journal_name), prefix).expect("prefix");
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Accepted submissions in the simulator's log, by push, with their job ids.
fn submissions(requests: &[RecordedRequest]) -> BTreeMap<String, BTreeSet<u64>> {
    let mut out: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for r in requests {
        let submit = r.api == "fast_push_file" || r.api == "fast_transfer_file";
        let sent = r.body["task_name"].as_str().unwrap_or_default();
        // Without the run tag apply appends (`#<8 hex>`).
        let task = plan_bkjob::task_name::split_run_tag(sent).map_or(sent, |(base, _)| base);
        if let (true, Some(job), Some(push)) =
            (submit, r.job_instance_id, task.strip_prefix("cut/"))
        {
            out.entry(push.to_owned()).or_default().insert(job);
        }
    }
    out
}

/// What the whole lines of a journal prefix say, per push: intent written, answer recorded.
struct Prefix {
    intents: BTreeSet<String>,
    in_doubt: BTreeSet<String>,
}

fn read_prefix(prefix: &[u8]) -> Prefix {
    let mut intents = BTreeSet::new();
    let mut in_doubt = BTreeSet::new();
    // A torn last line was never acknowledged to its writer, so it was not acted on.
    for line in text(prefix)
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
    {
        let Ok(record) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let push = record["push"].as_str().unwrap_or_default().to_owned();
        match record["type"].as_str().unwrap_or_default() {
            "push_submitting" => {
                intents.insert(push.clone());
                in_doubt.insert(push);
            }
            "push_submitted" => {
                in_doubt.remove(&push);
            }
            "push_submit_failed" if record["outcome_unknown"] != true => {
                in_doubt.remove(&push);
            }
            _ => {}
        }
    }
    Prefix { intents, in_doubt }
}

/// Every cut a kill can leave: at each line end, and half-way through each line.
fn cuts(journal: &[u8]) -> Vec<usize> {
    let mut cuts = vec![0];
    let mut start = 0;
    for (i, b) in journal.iter().enumerate() {
        if *b == b'\n' {
            cuts.push(start + (i - start) / 2);
            cuts.push(i + 1);
            start = i + 1;
        }
    }
    cuts
}

/// One full run, then a resume from every prefix of its journal.
fn every_prefix_resumes_with_each_push_submitted_at_most_once(api: &str) {
    let world = World::new("");
    let sim = world.sim();
    let first = world.run(&sim, &["--api", api]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let journal_path = world.journal();
    let journal = std::fs::read(&journal_path).expect("journal");
    let name = journal_path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_owned();
    let mut seen: BTreeSet<u64> = submissions(&sim.requests())
        .values()
        .flatten()
        .copied()
        .collect();
    assert_eq!(seen.len(), PUSHES.len());
    let (mut finished, mut refused) = (0, 0);
    for cut in cuts(&journal) {
        let prefix = &journal[..cut];
        world.reset_state(&name, prefix);
        let out = world.run(&sim, &["--api", api, "--resume"]);
        let stderr = text(&out.stderr);
        let context = format!("cut at byte {cut}:\n{}\n{stderr}", text(prefix));
        // Jobs the resume created: ids not seen before.
        let mut new: BTreeMap<String, usize> = BTreeMap::new();
        for (push, jobs) in submissions(&sim.requests()) {
            let fresh = jobs.iter().filter(|j| seen.insert(**j)).count();
            *new.entry(push).or_default() += fresh;
        }
        let prefix = read_prefix(prefix);
        for push in PUSHES {
            let before = usize::from(prefix.intents.contains(push));
            let resent = new.get(push).copied().unwrap_or(0);
            assert!(
                before + resent <= 1,
                "`{push}` submitted {} times in all; {context}",
                before + resent
            );
        }
        match out.status.code() {
            Some(0) => {
                finished += 1;
                for push in PUSHES {
                    let before = usize::from(prefix.intents.contains(push));
                    let resent = new.get(push).copied().unwrap_or(0);
                    assert_eq!(before + resent, 1, "`{push}`; {context}");
                }
            }
            Some(4) if !prefix.in_doubt.is_empty() => {
                refused += 1;
                assert!(stderr.contains("outcome is unknown"), "{context}");
                assert!(new.is_empty() || new.values().all(|n| *n == 0), "{context}");
            }
            // An empty prefix (killed before its first line) or a finished run: nothing to do.
            Some(4) if prefix.intents.is_empty() || cut == journal.len() => {
                assert!(stderr.contains("no unfinished run to resume"), "{context}");
            }
            other => panic!("exit {other:?}; {context}"),
        }
    }
    // Most cuts finish the run; those right after an intent refuse.
    assert!(finished > refused, "{finished} finished, {refused} refused");
    assert!(refused > 0);
    figures(api, journal.len(), cuts(&journal).len(), finished, refused);
}

/// The matrix's figures for docs/reliability.md, seen with `-- --nocapture`.
#[allow(
    clippy::print_stderr,
    reason = "the matrix's figures, read with --nocapture"
)]
fn figures(api: &str, bytes: usize, cuts: usize, finished: usize, refused: usize) {
    eprintln!(
        "journal-cut {api}: journal {bytes} bytes, {cuts} cuts: {finished} resumed to the end, {refused} refused (in doubt), the rest nothing to resume"
    );
}

#[test]
fn journal_cut_at_every_line_and_mid_line_resumes_submitting_each_push_at_most_once_v2() {
    every_prefix_resumes_with_each_push_submitted_at_most_once("v2");
}

#[test]
fn journal_cut_at_every_line_and_mid_line_resumes_submitting_each_push_at_most_once_v3() {
    // v3 is two-phase: a cut between `push_submitted` and `push_started` resumes by
    // starting the job again (answered "already started"), never by a new submission.
    every_prefix_resumes_with_each_push_submitted_at_most_once("v3");
}

#[test]
fn journal_with_a_garbled_middle_line_refuses_resume_naming_the_line() {
    let world = World::new("");
    let sim = world.sim();
    let first = world.run(&sim, &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let path = world.journal();
    let journal = std::fs::read_to_string(&path).expect("journal");
    // Killed after line 6; line 3 then damaged on disk.
    let mut lines: Vec<String> = journal.lines().take(6).map(str::to_owned).collect();
    lines[2] = lines[2]
        .replacen("\"push\"", "\"pu\u{0}sh\"", 1)
        .replacen('{', "", 1);
    std::fs::write(&path, lines.join("\n") + "\n").expect("garble");
    let calls = sim.requests().len();
    let out = world.run(&sim, &["--resume"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("cannot be read at line 3"), "{stderr}");
    assert!(stderr.contains(".abandoned"), "{stderr}");
    // Refused before any call: not even the credentials check reaches a submission.
    let after = sim.requests();
    assert!(
        after[calls..]
            .iter()
            .all(|r| r.api != "fast_push_file" && r.api != "fast_transfer_file"),
        "{:?}",
        &after[calls..]
    );
}

/// `plan apply ... --format json` under `ulimit -f BLOCKS` (512-byte blocks, POSIX `sh`).
fn apply_with_file_size_limit(world: &World, sim: &SimServer, blocks: u64) -> Output {
    let plan = world.apply(sim, "repo", "plans/plan.toml", false);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -f \"$1\" && shift && exec \"$@\"")
        .arg("sh")
        .arg(blocks.to_string())
        .arg(plan.get_program())
        .args(plan.get_args())
        .args(["--format", "json"])
        .current_dir(world.path("repo"));
    for (key, value) in plan.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.output().expect("run plan under a file-size limit")
}

#[test]
fn a_file_size_limit_stops_the_run_as_journal_write_failed_and_resume_finishes_it() {
    // How long the whole journal is, from a run without a limit.
    let reference = World::new("");
    let sim = reference.sim();
    let out = reference.run(&sim, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let full = std::fs::metadata(reference.journal())
        .expect("journal")
        .len();

    let world = World::new("");
    let sim = world.sim();
    // A quarter of it (half if `sh` counts kilobytes): the run starts, then a write fails.
    let blocks = (full / 4).div_ceil(512);
    let out = apply_with_file_size_limit(&world, &sim, blocks);
    let stderr = text(&out.stderr);
    // Not killed by SIGXFSZ: plan exits, and says why.
    assert_eq!(out.status.code(), Some(4), "{:?} {stderr}", out.status);
    assert!(stderr.contains("journal write failed"), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(!stderr.contains("refused by JOB"), "{stderr}");
    let journal = std::fs::read_to_string(world.journal()).expect("journal");
    assert!(
        (journal.len() as u64) <= blocks * 512 && journal.ends_with('\n'),
        "{journal}"
    );
    for line in journal.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    // No push is reported succeeded without its success on disk.
    let report = text(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "run_finished")
        .expect("run_finished");
    assert!(
        report["report"]["journal_error"]
            .as_str()
            .is_some_and(|e| e.contains("File too large")),
        "{report}"
    );
    let pushes = report["report"]["pushes"].as_array().expect("pushes");
    assert!(
        pushes.iter().any(|p| p["status"] == "journal_failed"),
        "{report}"
    );
    for p in pushes.iter().filter(|p| p["status"] == "succeeded") {
        let name = p["name"].as_str().expect("name");
        let on_disk = journal.lines().any(|l| {
            l.contains(&format!("\"push\":\"{name}\""))
                && (l.contains("\"type\":\"push_finished\"") && l.contains("\"succeeded\"")
                    || l.contains("\"type\":\"push_attempt_finished\"")
                        && l.contains("\"job_status\":3"))
        });
        assert!(on_disk, "`{name}` reported succeeded:\n{journal}");
    }

    // Room again: the resume finishes, or refuses a submission the journal holds in doubt;
    // either way nothing is submitted twice.
    let out = world.run(&sim, &["--resume"]);
    let stderr = text(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(4) => assert!(stderr.contains("outcome is unknown"), "{stderr}"),
        other => panic!("exit {other:?}: {stderr}"),
    }
    for (push, jobs) in submissions(&sim.requests()) {
        assert!(jobs.len() <= 1, "`{push}` submitted {} times", jobs.len());
    }
}

/// Waits until some file under `dir` has a line containing every needle (the apply running
/// meanwhile has done what the line records).
fn wait_for_line(dir: &Path, needles: &[&str], child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = std::fs::read_dir(dir).into_iter().flatten().any(|entry| {
            let text = entry
                .ok()
                .and_then(|e| std::fs::read_to_string(e.path()).ok())
                .unwrap_or_default();
            text.lines().any(|l| needles.iter().all(|n| l.contains(n)))
        });
        if found {
            return;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the first apply ended before {needles:?} was seen"
        );
        assert!(Instant::now() < deadline, "{needles:?} never seen");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_same_plan_from_two_working_directories_meets_one_lock_and_one_journal() {
    // The first submission's job never finishes, so the first apply holds the lock as long as
    // the test needs.
    let world = World::new("[[fault]]\napi = \"fast_push_file\"\nkind = \"stuck\"\ncount = 1\n");
    let sim = world.sim();
    std::fs::create_dir_all(world.path("repo/plans/elsewhere")).expect("cwd");
    let mut first = world
        .apply(&sim, "repo", "plans/plan.toml", true)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("first apply");
    // The plan's state dir is at its repository's root, whatever the working directory.
    let state = world.path("repo/.plan");
    wait_for_line(&state.join("locks"), &["\"pid\""], &mut first);
    wait_for_line(&state.join("runs/cut"), &["push_submitted"], &mut first);

    let second = world
        .apply(&sim, "repo/plans/elsewhere", "../plan.toml", true)
        .output()
        .expect("second apply");
    let stderr = text(&second.stderr);
    assert_eq!(second.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("is being applied by") && stderr.contains(&format!("pid {}", first.id())),
        "{stderr}"
    );

    // Killed: the OS lock goes with the process; its journal stays where both directories
    // look, so the next apply from the other directory sees the job still running.
    first.kill().expect("kill");
    first.wait().expect("reap");
    let third = world
        .apply(&sim, "repo/plans/elsewhere", "../plan.toml", true)
        .output()
        .expect("third apply");
    let stderr = text(&third.stderr);
    assert_eq!(third.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("has an unfinished run") && stderr.contains("--resume"),
        "{stderr}"
    );
    assert!(!world.path("repo/plans/elsewhere/.plan").exists());
    assert!(!world.path("repo/plans/.plan").exists());
    for (push, jobs) in submissions(&sim.requests()) {
        assert_eq!(jobs.len(), 1, "`{push}`");
    }
}
