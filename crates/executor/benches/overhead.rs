//! Per-job overhead of following jobs, through the real executor and an in-process jobsim.
//!
//! `cargo bench -p plan-executor --bench overhead` (about a minute).
//!
//! 1. Calls per job: one push whose transfer runs 10 s (10 MiB at 1 MB/s), with jobsim's
//!    default queueing (`start_delay_ms` 200, `host_wait_ms` 100). Every call made while
//!    following the job counts (status and log calls, from the simulator's request log),
//!    with the polling policy, and with the same loop when no log is read (plain doubling
//!    backoff), for `--poll-interval` 100 and 1000 and both API families.
//! 2. Throughput: 2,000 independent pushes of zero-duration jobs (1 KiB, no speed limit,
//!    no queueing in jobsim) on 64 slots. Pushes per second, CPU per push of the client's
//!    threads and of the simulator's (both in this process, in separate runtimes, so they
//!    share the machine's cores), and the time from JOB's end of each job to the status
//!    answer that showed it finished.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use plan_bkjob::Client;
use plan_executor::{BkJobApi, Schedule};
use support::{MIB, PushSpec, detection_lateness, follow_calls, secs, target};

fn main() {
    // `-- calls` or `-- throughput` runs one part.
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let part = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    let client_rt = support::client_runtime();
    if part("calls") {
        calls_per_job(&client_rt);
    }
    if part("throughput") {
        throughput(&client_rt, 2000, 64, 100);
        throughput(&client_rt, 2000, 64, 20);
    }
}

fn calls_per_job(client_rt: &tokio::runtime::Runtime) {
    println!("one job whose transfer runs 10 s (jobsim start_delay 200 ms, host_wait 100 ms)");
    println!(
        "{:<6} {:<13} {:>8} {:>7} {:>8} {:>10} {:>10}",
        "api", "policy", "first ms", "calls", "status", "job (s)", "late (ms)"
    );
    let push = PushSpec {
        name: "ten".into(),
        bytes: 10 * MIB,
        speed_mb: Some(1),
        target: target(0),
        after: vec![],
    };
    let mut k = 0;
    for api in ["v3", "v2"] {
        for first_ms in [100, 1000] {
            for estimate in [true, false] {
                k += 1;
                let sandbox = support::Sandbox::new(1, 200, 100);
                let options = support::options(Schedule::Stages, 1, first_ms);
                let name = format!("ten{k}");
                let run = if estimate {
                    support::run(
                        &sandbox,
                        client_rt,
                        &name,
                        api,
                        std::slice::from_ref(&push),
                        options,
                    )
                } else {
                    support::run_with(
                        &sandbox,
                        client_rt,
                        &name,
                        api,
                        std::slice::from_ref(&push),
                        options,
                        |c: Client| support::NoEstimate(BkJobApi::new(c)),
                    )
                };
                let calls = follow_calls(&run.requests);
                let job = run.jobs.values().next().expect("one job");
                let mine = calls.get(&job.job_instance_id).cloned().unwrap_or_default();
                let status = mine
                    .iter()
                    .filter(|r| r.api == "get_job_instance_status")
                    .count();
                let late = detection_lateness(&run)
                    .first()
                    .copied()
                    .unwrap_or_default();
                if std::env::var_os("PLAN_BENCH_VERBOSE").is_some() {
                    // Each call, ms after JOB started the job.
                    let seq: Vec<String> = mine
                        .iter()
                        .filter_map(|r| {
                            let at = support::epoch_ms(&r.time)? - job.start_ms;
                            Some(format!("{}@{at}", short(&r.api)))
                        })
                        .collect();
                    println!("    {}", seq.join(" "));
                }
                println!(
                    "{:<6} {:<13} {:>8} {:>7} {:>8} {:>10} {:>10}",
                    api,
                    if estimate { "estimate" } else { "backoff only" },
                    first_ms,
                    mine.len(),
                    status,
                    secs(job.duration()),
                    late.as_millis()
                );
                sandbox.stop();
            }
        }
    }
    println!();
}

fn throughput(client_rt: &tokio::runtime::Runtime, n: usize, parallelism: usize, first_ms: u64) {
    let hosts = 64;
    let sandbox = support::Sandbox::new(hosts, 0, 0);
    let pushes: Vec<PushSpec> = (0..n)
        .map(|i| PushSpec {
            name: format!("p{i}"),
            bytes: 1024,
            speed_mb: None,
            target: target(i % hosts),
            after: vec![],
        })
        .collect();
    let client_before = support::thread_cpu("client");
    let server_before = support::thread_cpu("jobsim");
    let run = support::run(
        &sandbox,
        client_rt,
        &format!("tp{first_ms}"),
        "v3",
        &pushes,
        support::options(Schedule::Stages, parallelism, first_ms),
    );
    let client_cpu = support::thread_cpu("client")
        .zip(client_before)
        .map(|(a, b)| a.saturating_sub(b));
    let server_cpu = support::thread_cpu("jobsim")
        .zip(server_before)
        .map(|(a, b)| a.saturating_sub(b));
    let calls = follow_calls(&run.requests);
    let per_job = calls.values().map(Vec::len).sum::<usize>() as f64 / n as f64;
    let mut late = detection_lateness(&run);
    late.sort();
    let pct = |q: f64| {
        late.get(((late.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
            .as_millis()
    };
    let per_push = |d: Option<Duration>| {
        d.map_or("n/a".to_owned(), |d| {
            format!("{:.2} ms", d.as_secs_f64() * 1000.0 / n as f64)
        })
    };
    let job_avg = run.jobs.values().map(|j| j.duration()).sum::<Duration>()
        / u32::try_from(n.max(1)).unwrap_or(1);
    println!(
        "{n} zero-duration pushes, parallelism {parallelism}, --poll-interval {first_ms} (v3, jobsim without queueing)"
    );
    println!(
        "  makespan {} s, {:.0} pushes/s (ideal with this poll interval: {:.0}/s = parallelism / first poll)",
        secs(run.makespan),
        n as f64 / run.makespan.as_secs_f64(),
        parallelism as f64 * 1000.0 / first_ms as f64
    );
    println!(
        "  CPU per push: client {}, simulator {} (same process, 2 cores shared)",
        per_push(client_cpu),
        per_push(server_cpu)
    );
    println!(
        "  follow calls per job {per_job:.2}; JOB-side job time avg {} ms",
        job_avg.as_millis()
    );
    println!(
        "  job end -> seen finished: p50 {} ms, p99 {} ms, max {} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!();
    sandbox.stop();
}

fn short(api: &str) -> &'static str {
    match api {
        "get_job_instance_status" => "status",
        "get_job_instance_ip_log" | "get_job_instance_log" => "log",
        _ => "other",
    }
}
