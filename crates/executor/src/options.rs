//! Run options: scheduling, failure policy, polling.

use std::time::Duration;

/// When a push may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schedule {
    /// Stage N+1 starts only when every push of stages 1..=N is done.
    #[default]
    Stages,
    /// A push starts as soon as its own dependencies succeeded; among ready pushes the one
    /// with the longest remaining chain first (then file order).
    Eager,
}

/// What happens after a push fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContinuePolicy {
    /// Start nothing new; jobs already running are followed to their end.
    #[default]
    Never,
    /// Keep starting pushes that do not depend (transitively) on a failed one.
    Independent,
}

/// How a job is followed once submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    /// The first wait after submission, and the start of the backoff.
    pub first: Duration,
    /// The longest wait between two polls (never below `first`).
    pub max: Duration,
    /// Added to a push's timeout (JOB's 7200 s when the plan sets none): a job still running
    /// after `timeout + margin` is terminated and followed to its end.
    pub deadline_margin: Duration,
    /// After a terminate request, how long to keep following before giving up on the job
    /// (it is then reported as not followed to its end, and `--resume` attaches to it again).
    pub after_terminate: Duration,
    /// How long a job we started (`operate_job_instance` code 2 accepted) may still show
    /// status 1 before START is sent once more; a job still in status 1 one more `start_grace`
    /// later is given up (reported failed, left to `--resume`), never polled forever.
    pub start_grace: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            first: Duration::from_secs(1),
            max: Duration::from_secs(10),
            deadline_margin: Duration::from_secs(360),
            after_terminate: Duration::from_secs(120),
            start_grace: Duration::from_secs(60),
        }
    }
}

impl PollPolicy {
    /// The wait after one of `previous`: doubled, capped at `max` (1 s, 2 s, 4 s, 8 s, 10 s...).
    pub fn next(&self, previous: Duration) -> Duration {
        previous.saturating_mul(2).min(self.max.max(self.first))
    }
}

/// JOB's timeout when a push sets none (seconds).
pub const JOB_DEFAULT_TIMEOUT_SECS: u32 = 7200;

/// Everything that shapes a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Most jobs in flight at once (at least 1).
    pub parallelism: usize,
    /// Stage-by-stage or eager.
    pub schedule: Schedule,
    /// Failure policy.
    pub continue_policy: ContinuePolicy,
    /// Polling.
    pub poll: PollPolicy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parallelism: 8,
            schedule: Schedule::Stages,
            continue_policy: ContinuePolicy::Never,
            poll: PollPolicy::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_backoff_doubles_to_the_cap() {
        let p = PollPolicy::default();
        let mut d = p.first;
        let mut seen = vec![d];
        for _ in 0..5 {
            d = p.next(d);
            seen.push(d);
        }
        let secs: Vec<u64> = seen.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 10, 10]);
        let slow = PollPolicy {
            first: Duration::from_secs(30),
            ..p
        };
        assert_eq!(slow.next(slow.first), Duration::from_secs(30));
    }
}
