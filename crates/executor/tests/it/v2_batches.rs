//! Batches the plan cuts under v2 (`rolling`), against jobsim: a stop (first interrupt)
//! while a batch runs lets that batch finish and sends no further batch; the resumed run
//! sends only the batches not done.

use plan_executor::{Event, Interrupt, Interruption, PushStatus};

use crate::support::{World, fast_options, plan, run, settings};

/// One push to four hosts in batches of two, `max_failed = 0`.
const BATCHED: &str = r#"
[plan]
name = "rel"
bk_biz_id = 2
account = "root"
api = "v2"

[[push]]
name = "app"
from = { hosts = "10.0.0.1", files = ["/data/release/app.tar.gz"] }
to = { hosts = ["10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2"], path = "/opt/app/" }
rolling = { expression = "2", max_failed = 0 }
"#;

#[tokio::test]
async fn a_stop_during_a_batch_sends_no_further_batch_and_resume_sends_the_rest() {
    let world = World::new("[sim]\nstart_delay_ms = 300\n").await;
    world.write("10.0.0.1", "/data/release/app.tar.gz", b"batched");
    let (plan, graph) = plan(BATCHED);
    let interrupt = Interrupt::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (api, state, i2) = (world.api(), world.state_dir(), interrupt.clone());
    let (p2, g2) = (plan.clone(), graph.clone());
    let handle = tokio::spawn(async move {
        plan_executor::apply(api, p2, g2, settings(&state, fast_options(), false), i2, tx).await
    });
    let mut progress_batches = Vec::new();
    while let Some(event) = rx.recv().await {
        match event {
            Event::PushSubmitted { .. } => interrupt.stop(),
            Event::PushProgress { batch, .. } => progress_batches.extend(batch),
            _ => {}
        }
    }
    let report = handle.await.expect("join").expect("start");
    assert_eq!(report.interrupted, Interruption::Stop);
    let push = &report.pushes[0];
    assert_eq!(push.status, PushStatus::Interrupted, "{push:?}");
    let statuses: Vec<PushStatus> = push.batches.iter().map(|b| b.status).collect();
    assert_eq!(statuses, [PushStatus::Succeeded, PushStatus::NotStarted]);
    assert!(
        push.error
            .as_deref()
            .is_some_and(|e| e.contains("before batch 2/2 was sent")),
        "{push:?}"
    );
    assert!(
        progress_batches
            .iter()
            .all(|b| b.index == 1 && b.count == 2)
    );
    assert!(!progress_batches.is_empty(), "progress names the batch");
    assert_eq!(world.submissions_of("rel/app batch 2/2"), 0);
    assert_eq!(world.read("10.0.2.1", "/opt/app/app.tar.gz"), None);

    let resumed = run(&world, &(plan, graph), fast_options(), true).await;
    let push = resumed.push("app");
    assert_eq!(push.status, PushStatus::Succeeded, "{push:?}");
    let statuses: Vec<PushStatus> = push.batches.iter().map(|b| b.status).collect();
    assert_eq!(
        statuses,
        [PushStatus::AlreadySucceeded, PushStatus::Succeeded]
    );
    assert_eq!(push.hosts_ok, 4, "{push:?}");
    assert_eq!(world.submissions_of("rel/app batch 1/2"), 1);
    assert_eq!(world.submissions_of("rel/app batch 2/2"), 1);
    for host in ["10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.2"] {
        assert_eq!(
            world.read(host, "/opt/app/app.tar.gz").as_deref(),
            Some(&b"batched"[..]),
            "{host}"
        );
    }
}
