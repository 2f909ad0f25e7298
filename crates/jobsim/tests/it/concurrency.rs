//! Hundreds of jobs at once: none blocks another, ids are unique, every file lands.

use std::collections::BTreeSet;

use serde_json::json;

use crate::support::{Sim, job_id, v3_body};

#[tokio::test(start_paused = true)]
async fn two_hundred_concurrent_jobs() {
    let sim = Sim::new();
    sim.write("10.0.0.1", "/data/a.bin", &vec![9u8; 256 * 1024]);
    let mut ids = Vec::new();
    for i in 0..200 {
        let mut b = v3_body();
        b["file_target_path"] = json!(format!("/out/{i}"));
        b["download_speed_limit"] = json!(1); // 0.25 s each if alone; together they must overlap
        ids.push(job_id(&sim.esb("jobv3/fast_transfer_file", b).await));
    }
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 200);
    let t0 = tokio::time::Instant::now();
    let mut done = Vec::new();
    for id in &ids {
        done.push(sim.wait(*id).await);
    }
    let elapsed = t0.elapsed();
    for s in &done {
        assert_eq!(s["data"]["job_instance"]["status"], json!(3), "{s}");
    }
    assert!(
        elapsed.as_secs_f64() < 5.0,
        "jobs ran in parallel: {elapsed:?} for 200 x 0.25 s"
    );
    for i in 0..200 {
        assert_eq!(
            sim.read("10.0.0.2", &format!("/out/{i}/a.bin"))
                .map(|b| b.len()),
            Some(256 * 1024)
        );
    }
}
