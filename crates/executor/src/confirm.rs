//! The points where a run waits for a person, and the injected [`Confirmer`] that answers.
//!
//! Two kinds of wait: a push with `gate = true` before its first submission, and a JOB
//! rolling job that waits after a batch (JOB's status 7 "waiting for a user" in manual mode,
//! or a pause after a failed batch: status 4 with later batches' hosts still waiting). The
//! executor asks its confirmer; a yes is journaled (`push_confirmed`, with the OS user) and
//! the run goes on; a no (or a confirmer that cannot ask: no terminal) leaves the push at
//! the point (`push_awaiting_confirmation`), the job waiting in JOB, and the run ends with
//! the push `waiting at gate` or `waiting for confirmation`.

use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a push waits for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitPoint {
    /// `gate = true`: before the push's first submission; nothing was sent for it.
    Gate,
    /// A JOB rolling job waits after a batch, in JOB.
    Batch {
        /// The job that waits.
        job_instance_id: i64,
        /// The batch just finished (1-based).
        batch: u32,
        /// JOB's batches of the job.
        batches: u32,
        /// The batch had a failed host and JOB paused the job (status 4): going on runs the
        /// batch's failed hosts again (`operate_step_instance` 2), then the batches go on.
        /// Otherwise JOB waits for a user (status 7) and going on is `ROLLING_CONTINUE`
        /// (13), which starts the next batch.
        failed: bool,
    },
    /// Batches the plan cuts (v2 `rolling`, mode `"manual"`): before the next batch's job is
    /// submitted; nothing of that batch was sent.
    NextBatch {
        /// The batch to send next (1-based).
        batch: u32,
        /// The push's batches.
        batches: u32,
    },
}

impl WaitPoint {
    /// The question a person is asked (without the answer's choices).
    pub fn question(&self, push: &str) -> String {
        match self {
            WaitPoint::Gate => format!("push {push} is gated: start it?"),
            WaitPoint::Batch {
                batch,
                batches,
                failed: false,
                ..
            } => format!("push {push}: batch {batch}/{batches} done, continue?"),
            WaitPoint::Batch {
                batch,
                batches,
                failed: true,
                ..
            } => format!(
                "push {push}: batch {batch}/{batches} failed, retry its failed hosts and continue?"
            ),
            WaitPoint::NextBatch { batch, batches } => {
                format!("push {push}: send batch {batch}/{batches}?")
            }
        }
    }

    /// What the push waits for, for people: `at gate` or `for confirmation of batch 2/5`.
    pub fn describe(&self) -> String {
        match self {
            WaitPoint::Gate => "waiting at its gate".to_owned(),
            WaitPoint::Batch {
                job_instance_id,
                batch,
                batches,
                failed,
            } => format!(
                "JOB instance {job_instance_id} waits for a confirmation after batch {batch}/{batches}{}",
                if *failed { " (failed)" } else { "" }
            ),
            WaitPoint::NextBatch { batch, batches } => {
                format!("waiting for a confirmation before batch {batch}/{batches} is sent")
            }
        }
    }
}

/// Answers the run's questions: true goes on, false leaves the push waiting. Called on a
/// blocking thread (it may read a terminal); several pushes may ask at once, so an
/// implementation that prompts serialises its prompts.
#[derive(Clone)]
pub struct Confirmer(Arc<Answer>);

/// A confirmer's function: the push's name and the point it waits at, to yes or no.
type Answer = dyn Fn(&str, &WaitPoint) -> bool + Send + Sync;

impl Confirmer {
    /// A confirmer from a function of the push's name and the point it waits at.
    pub fn new(answer: impl Fn(&str, &WaitPoint) -> bool + Send + Sync + 'static) -> Self {
        Confirmer(Arc::new(answer))
    }

    /// Says no to everything: no one is there to ask (no terminal).
    pub fn decline() -> Self {
        Confirmer::new(|_, _| false)
    }

    /// The answer, on the calling thread (it may block reading a terminal).
    pub fn answer(&self, push: &str, point: &WaitPoint) -> bool {
        (self.0)(push, point)
    }

    /// Asks on a blocking thread; a confirmer that panics said no.
    pub(crate) async fn ask(&self, push: &str, point: &WaitPoint) -> bool {
        let answer = Arc::clone(&self.0);
        let (push, point) = (push.to_owned(), point.clone());
        tokio::task::spawn_blocking(move || answer(&push, &point))
            .await
            .unwrap_or(false)
    }
}

impl Default for Confirmer {
    fn default() -> Self {
        Confirmer::decline()
    }
}

impl fmt::Debug for Confirmer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Confirmer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_name_the_push_and_the_batch() {
        assert_eq!(
            WaitPoint::Gate.question("app"),
            "push app is gated: start it?"
        );
        let batch = WaitPoint::Batch {
            job_instance_id: 7,
            batch: 2,
            batches: 5,
            failed: false,
        };
        assert_eq!(batch.question("app"), "push app: batch 2/5 done, continue?");
        let line = serde_json::to_string(&batch).expect("json");
        assert_eq!(
            line,
            r#"{"kind":"batch","job_instance_id":7,"batch":2,"batches":5,"failed":false}"#
        );
    }

    #[tokio::test]
    async fn a_confirmer_that_panics_said_no() {
        let confirmer = Confirmer::new(|_, _| panic!("no terminal"));
        assert!(!confirmer.ask("app", &WaitPoint::Gate).await);
        assert!(
            Confirmer::new(|_, _| true)
                .ask("app", &WaitPoint::Gate)
                .await
        );
        assert!(!Confirmer::default().ask("app", &WaitPoint::Gate).await);
    }
}
