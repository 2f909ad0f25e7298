//! What a refresh costs against the transfer it saves (issue 20), through the real refresh
//! and executor against an in-process jobsim.
//!
//! `cargo bench -p plan-executor --bench refresh` (about a minute; ~1.2 GB of disk: the
//! sandbox's 100 MiB files are sparse, the 10 delivered copies are not).
//!
//! A 100 MiB file to 100 hosts, 90 of which already hold it. Measured: the refresh (its JOB
//! jobs, its API calls, its wall time, hashing 100 x 100 MiB), the converged transfer (to the
//! 10 hosts that differ) and, for comparison, the full transfer `plan apply` without
//! `--converge` would send to the 90 others as well (bytes; its time at a per-host download
//! limit is that of the 10-host transfer in the simulator, which runs hosts in parallel).

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

#[path = "support/mod.rs"]
mod support;

use std::time::Instant;

use plan_executor::{RefreshSettings, Schedule};
use support::{MIB, PushSpec, SOURCE, secs, target};

const HOSTS: usize = 100;
const UP_TO_DATE: usize = 90;
const SIZE: u64 = 100 * MIB;
/// Per-host download limit of the transfers, MB/s.
const SPEED_MB: u64 = 100;

fn main() {
    let client_rt = support::client_runtime();
    let sandbox = support::Sandbox::new(HOSTS, 0, 0);
    sandbox.write(SOURCE, "/data/app.bin", SIZE);
    for i in 0..UP_TO_DATE {
        sandbox.write(&target(i), "/recv/app.bin", SIZE);
    }
    let all: Vec<String> = (0..HOSTS).map(target).collect();
    let spec = |hosts: &[String]| PushSpec {
        name: "app".into(),
        bytes: SIZE,
        speed_mb: Some(SPEED_MB),
        target: hosts.join("\", \""),
        after: Vec::new(),
    };
    let text = support::plan_text("refresh", "v3", &[spec(&all)]);
    let parsed = plan_parser::parse_str("plan.toml", &text, &plan_parser::ParseOptions::default())
        .unwrap_or_else(|e| panic!("plan: {e:?}"));
    let graph = plan_graph::build(&parsed.plan).unwrap_or_else(|e| panic!("graph: {e:?}"));

    let before = sandbox.sim().requests().len();
    let client = sandbox.client();
    let started = Instant::now();
    let refresh = client_rt
        .block_on(plan_executor::refresh(
            &client,
            &parsed.plan,
            // What `plan show --refresh`, `plan drift` and `--converge` use.
            RefreshSettings::default(),
        ))
        .unwrap_or_else(|e| panic!("refresh: {e}"));
    let refresh_time = started.elapsed();
    let refresh_calls = sandbox.sim().requests().len() - before;
    let converged = plan_executor::converge(&parsed.plan, &graph, &refresh);
    let narrowed: Vec<String> = converged.plan.pushes[0]
        .target
        .hosts
        .ips
        .iter()
        .map(|h| h.ip.to_string())
        .collect();
    assert_eq!(narrowed.len(), HOSTS - UP_TO_DATE, "{refresh:?}");
    println!(
        "refresh: {} JOB jobs ({} hosts x {} MiB hashed), {refresh_calls} API calls, {}",
        refresh.jobs.len(),
        HOSTS + 1,
        SIZE / MIB,
        secs(refresh_time)
    );

    let options = support::options(Schedule::Stages, 8, 100);
    let run = support::run(
        &sandbox,
        &client_rt,
        "converged",
        "v3",
        &[spec(&narrowed)],
        options,
    );
    println!(
        "converged transfer: {} hosts, {} MiB sent, {} API calls, {}",
        narrowed.len(),
        narrowed.len() as u64 * SIZE / MIB,
        run.requests.len(),
        secs(run.makespan)
    );
    println!(
        "full transfer avoided: {} hosts, {} MiB sent ({} MiB more than converged)",
        HOSTS,
        HOSTS as u64 * SIZE / MIB,
        UP_TO_DATE as u64 * SIZE / MIB
    );
    sandbox.stop();
}
