//! Makespan against its lower bound, for both schedules, through the real executor and an
//! in-process jobsim on loopback.
//!
//! `cargo bench -p plan-executor --bench makespan` (about a minute).
//!
//! Each push moves one file from the source host to its own target at 1 MB/s
//! (`download_speed_limit = 1`), so a file of N MiB takes N seconds in JOB. jobsim's
//! `start_delay_ms` and `host_wait_ms` (JOB queueing a job, GSE starting a host) are 0: a
//! job's running time is its transfer, and every bound below counts only that.
//!
//! The bound of each run is computed from the running time JOB reports for each job
//! (v3 `start_time` -> `end_time`, asked after the run), so a slower simulator does not make
//! the client look better; the bound from the configured durations (size / speed) is shown
//! beside it. Eager: the critical path, or for a wide stage what the pushes that cannot
//! start earlier need on `--parallelism` slots. Stages: the sum over stages of each stage's
//! longest push (or its pushes over the slots). Efficiency = bound / makespan, where the
//! makespan is the wall time of `plan_executor::apply` (the code path of `plan apply`),
//! with `--poll-interval 100`.
//!
//! An argument runs the scenarios whose name contains it (`-- fan`). `PLAN_BENCH_STATE=DIR`
//! puts the journals in DIR (e.g. a tmpfs, to tell the disk's fsyncs apart);
//! `PLAN_BENCH_BACKOFF_ONLY=1` follows jobs without reading logs (the plain doubling backoff).

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use plan_executor::Schedule;
use support::{PushSpec, detection_lateness, follow_calls, secs, target};

struct Scenario {
    name: &'static str,
    api: &'static str,
    parallelism: usize,
    pushes: Vec<PushSpec>,
}

fn scenarios() -> Vec<Scenario> {
    let mut out = Vec::new();
    // A chain of six 1 s pushes.
    let chain: Vec<PushSpec> = (0..6)
        .map(|i| {
            let after = if i == 0 {
                vec![]
            } else {
                vec![format!("c{}", i - 1)]
            };
            let refs: Vec<&str> = after.iter().map(String::as_str).collect();
            PushSpec::timed(&format!("c{i}"), 1.0, &target(i), &refs)
        })
        .collect();
    out.push(Scenario {
        name: "chain 6x1s",
        api: "v3",
        parallelism: 8,
        pushes: chain.clone(),
    });
    out.push(Scenario {
        name: "chain 6x1s (v2)",
        api: "v2",
        parallelism: 8,
        pushes: chain,
    });
    // 1 -> 500: a 1 s push, then 500 pushes of 0.5 s on 64 slots.
    let mut fan = vec![PushSpec::timed("root", 1.0, &target(0), &[])];
    fan.extend((0..500).map(|i| PushSpec::timed(&format!("f{i}"), 0.5, &target(i + 1), &["root"])));
    out.push(Scenario {
        name: "fan-out 1->500",
        api: "v3",
        parallelism: 64,
        pushes: fan,
    });
    // A diamond: a (1 s) -> b (3 s) and c (1 s) -> d (1 s).
    out.push(Scenario {
        name: "diamond 1/3|1/1",
        api: "v3",
        parallelism: 8,
        pushes: vec![
            PushSpec::timed("a", 1.0, &target(0), &[]),
            PushSpec::timed("b", 3.0, &target(1), &["a"]),
            PushSpec::timed("c", 1.0, &target(2), &["a"]),
            PushSpec::timed("d", 1.0, &target(3), &["b", "c"]),
        ],
    });
    // Two skewed chains side by side: 4 s then 1 s, and 1 s then 4 s.
    out.push(Scenario {
        name: "skewed 4+1 | 1+4",
        api: "v3",
        parallelism: 8,
        pushes: vec![
            PushSpec::timed("x1", 4.0, &target(0), &[]),
            PushSpec::timed("y1", 1.0, &target(1), &[]),
            PushSpec::timed("x2", 1.0, &target(2), &["x1"]),
            PushSpec::timed("y2", 4.0, &target(3), &["y1"]),
        ],
    });
    out
}

fn main() {
    let only: Option<String> = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .filter(|a| !a.is_empty());
    let client_rt = support::client_runtime();
    println!(
        "{:<18} {:<7} {:>6} {:>9} {:>9} {:>9} {:>6} {:>6} {:>11} {:>14} {:>12} {:>8}",
        "scenario",
        "schedule",
        "pushes",
        "bound(s)",
        "config(s)",
        "makespan",
        "eff",
        "effcfg",
        "calls/job",
        "late ms avg/max",
        "cpu s c/sim",
        "subgap"
    );
    let mut rows = Vec::new();
    for (k, sc) in scenarios().into_iter().enumerate() {
        if only.as_deref().is_some_and(|o| !sc.name.contains(o)) {
            continue;
        }
        for schedule in [Schedule::Eager, Schedule::Stages] {
            let targets = sc.pushes.len() + 1;
            let cpu_before = (support::thread_cpu("client"), support::thread_cpu("jobsim"));
            let sandbox = support::Sandbox::new(targets, 0, 0);
            let plan_name = format!("mk{k}-{}", schedule_name(schedule));
            let options = support::options(schedule, sc.parallelism, 100);
            // `PLAN_BENCH_BACKOFF_ONLY=1`: no log is read, the plain doubling backoff (the
            // policy before estimates), for comparison.
            let run = if std::env::var_os("PLAN_BENCH_BACKOFF_ONLY").is_some() {
                support::run_with(
                    &sandbox,
                    &client_rt,
                    &plan_name,
                    sc.api,
                    &sc.pushes,
                    options,
                    |c| support::NoEstimate(plan_executor::BkJobApi::new(c)),
                )
            } else {
                support::run(
                    &sandbox, &client_rt, &plan_name, sc.api, &sc.pushes, options,
                )
            };
            let cpu = |now: Option<Duration>, before: Option<Duration>| {
                now.zip(before)
                    .map_or("-".to_owned(), |(a, b)| secs(a.saturating_sub(b)))
            };
            let cpu = format!(
                "{}/{}",
                cpu(support::thread_cpu("client"), cpu_before.0),
                cpu(support::thread_cpu("jobsim"), cpu_before.1)
            );
            let measured: BTreeMap<String, Duration> = run
                .jobs
                .iter()
                .map(|(n, j)| (n.clone(), j.duration()))
                .collect();
            let configured: BTreeMap<String, Duration> = sc
                .pushes
                .iter()
                .map(|p| (p.name.clone(), p.configured()))
                .collect();
            let bound = |d: &BTreeMap<String, Duration>| match schedule {
                Schedule::Eager => support::eager_bound(&sc.pushes, d, sc.parallelism),
                Schedule::Stages => support::stage_bound(&run.report, d, sc.parallelism),
            };
            let (b, bc) = (bound(&measured), bound(&configured));
            let calls = follow_calls(&run.requests);
            let per_job: Vec<usize> = run
                .jobs
                .values()
                .map(|j| calls.get(&j.job_instance_id).map_or(0, Vec::len))
                .collect();
            let late = detection_lateness(&run);
            let late_avg =
                late.iter().sum::<Duration>() / u32::try_from(late.len().max(1)).unwrap_or(1);
            let late_max = late.iter().max().copied().unwrap_or_default();
            let eff = b.as_secs_f64() / run.makespan.as_secs_f64();
            let effc = bc.as_secs_f64() / run.makespan.as_secs_f64();
            let row = format!(
                "{:<18} {:<7} {:>6} {:>9} {:>9} {:>9} {:>6.3} {:>6.3} {:>11} {:>14} {:>12} {:>8}",
                sc.name,
                schedule_name(schedule),
                sc.pushes.len(),
                secs(b),
                secs(bc),
                secs(run.makespan),
                eff,
                effc,
                format!(
                    "{:.1}/{}",
                    per_job.iter().sum::<usize>() as f64 / per_job.len().max(1) as f64,
                    per_job.iter().max().copied().unwrap_or(0)
                ),
                format!("{}/{}", late_avg.as_millis(), late_max.as_millis()),
                cpu,
                support::submission_gap(&run)
                    .map_or("-".to_owned(), |g| format!("{}ms", g.as_millis())),
            );
            println!("{row}");
            rows.push((sc.name, schedule, eff));
            sandbox.stop();
        }
    }
    let missed: Vec<String> = rows
        .iter()
        .filter(|r| r.2 < 0.95)
        .map(|r| format!("{} {}: {:.3}", r.0, schedule_name(r.1), r.2))
        .collect();
    if missed.is_empty() {
        println!("every run reached an efficiency of 0.95 or more");
    } else {
        println!("below 0.95: {}", missed.join("; "));
    }
}

fn schedule_name(s: Schedule) -> &'static str {
    match s {
        Schedule::Eager => "eager",
        Schedule::Stages => "stages",
    }
}
