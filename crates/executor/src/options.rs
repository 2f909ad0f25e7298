//! Run options: scheduling, failure policy, polling.

use std::time::Duration;

use tokio::time::Instant;

use crate::progress::Estimate;

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
///
/// # The polling policy
///
/// A blind backoff cannot be both prompt and frugal: doubling from 100 ms finds the end of a
/// 1 s job at 1.5 s (a third of the run lost per push of a chain), while a fixed 100 ms
/// interval needs a hundred status calls for a 10 s job. JOB itself says how far a transfer
/// got: its file logs carry each file's size, speed and progress (§6.6, §7.6), a line per
/// change of the percentage. So the poll loop (see `Pacer`) does this:
///
/// 1. Poll the status after `first`, then on the doubling backoff (`first`, 2x, 4x... up to
///    `max`) while no host transfers yet (status 1, hosts 5): no log is read then.
/// 2. Once a host runs (7), read one log (v3: one host's `get_job_instance_ip_log`; v2: the
///    job's `get_job_instance_log`) and estimate the remaining time: per host, files moving
///    side by side take the longest of `size x (100 - progress) / speed`, queued files follow
///    at the host's speed; the slowest host decides.
/// 3. Sleep until just after that estimate (a few ms plus 0.2 % of it, never more than
///    `max`) and poll the status; no log is read while the estimate has not passed.
/// 4. At the estimated end, a job still running gets one more log read and a new estimate
///    (now short and precise); a log showing every file arrived means JOB is closing the job,
///    and the status is polled on the backoff restarted at `first`.
///
/// The estimate errs late rather than early (the last reported percentage is a floor, and
/// the line was written before it was read), so a job is usually seen finished at the first
/// poll after its estimate: a job of 10 s costs 3 to 6 calls (status, log, status at the
/// least; one more status when the job was still queued at the first poll, one more status
/// and log when the first log read came before the first progress line), and the end is
/// seen within about 1 % of its duration plus a few ms. Without usable logs (no speed reported, an API
/// that reads none) the loop is the plain backoff.
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

/// Slack after an estimated end: JOB closes a host, the step and the job just after the last
/// byte arrived, so a poll that lands exactly on the estimate could still see them open.
const ESTIMATE_SLACK: Duration = Duration::from_millis(5);

/// Below this an estimate means "every file arrived": JOB is only closing the job.
const ESTIMATE_DONE: Duration = Duration::from_millis(1);

/// When to poll a job next and whether to read its logs first (see [`PollPolicy`]).
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    policy: PollPolicy,
    /// The next plain backoff wait.
    backoff: Duration,
    /// The estimated end of the transfers, from the last log read.
    eta: Option<Instant>,
    /// The logs showed every file arrived: only the status is polled from now on.
    drained: bool,
}

impl Pacer {
    pub(crate) fn new(policy: PollPolicy) -> Pacer {
        Pacer {
            policy,
            // `first_wait` is the first step of the backoff.
            backoff: policy.next(policy.first),
            eta: None,
            drained: false,
        }
    }

    /// The wait before the first poll.
    pub(crate) fn first_wait(&self) -> Duration {
        self.policy.first
    }

    fn cap(&self) -> Duration {
        self.policy.max.max(self.policy.first)
    }

    /// After a status poll found hosts transferring: whether to read the logs now (no
    /// estimate yet, or the estimated end has passed).
    pub(crate) fn wants_estimate(&self, now: Instant) -> bool {
        !self.drained && self.eta.is_none_or(|eta| now >= eta)
    }

    /// The wait after a poll that did not find the job finished, given the estimate when
    /// the logs were read and gave one.
    pub(crate) fn after_poll(&mut self, now: Instant, estimate: Option<Estimate>) -> Duration {
        if let Some(e) = estimate {
            if e.remaining >= ESTIMATE_DONE {
                self.eta = Some(now + e.remaining);
                // Should the end come later than estimated, the next polls start dense.
                self.backoff = self.policy.first;
            } else if e.complete {
                self.drained = true;
                self.eta = None;
                self.backoff = self.policy.first;
            } else {
                // Some file is not sized yet: estimate again at the next poll.
                self.eta = None;
            }
        }
        if let Some(eta) = self.eta
            && eta > now
        {
            let left = eta - now;
            return (left + ESTIMATE_SLACK + left / 500).min(self.cap());
        }
        let wait = self.backoff;
        self.backoff = self.policy.next(wait);
        wait
    }

    /// Reads no more logs for this job (JOB refused the log call): the backoff alone.
    pub(crate) fn without_estimates(&mut self) {
        self.drained = true;
        self.eta = None;
    }

    /// Starts over (after a terminate or a START sent again): the estimate no longer applies.
    pub(crate) fn reset(&mut self) {
        *self = Pacer::new(self.policy);
        self.backoff = self.policy.first;
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

    /// A job as JOB's logs show it: hosts wait `wait`, then one file of `secs` seconds moves
    /// at a constant speed, with a progress line at each whole percent.
    struct ModelJob {
        start: Instant,
        wait: Duration,
        secs: f64,
    }

    impl ModelJob {
        fn end(&self) -> Instant {
            self.start + self.wait + Duration::from_secs_f64(self.secs)
        }

        fn running(&self, now: Instant) -> bool {
            now >= self.start + self.wait
        }

        /// What one log read says at `now`: the last whole percent reported, at the speed.
        fn estimate(&self, now: Instant) -> Option<Estimate> {
            if !self.running(now) {
                return None;
            }
            let done = (now - self.start - self.wait).as_secs_f64() / self.secs;
            let percent = (done * 100.0).floor().min(100.0);
            Some(Estimate {
                remaining: Duration::from_secs_f64(self.secs * (100.0 - percent) / 100.0),
                complete: true,
                bytes_per_second: None,
            })
        }
    }

    /// Follows a model job the way `push::follow` does and returns (calls, lateness).
    async fn follow(policy: PollPolicy, wait: Duration, secs: f64) -> (u32, Duration) {
        let job = ModelJob {
            start: Instant::now(),
            wait,
            secs,
        };
        let mut pacer = Pacer::new(policy);
        let mut next = pacer.first_wait();
        let mut calls = 0;
        loop {
            tokio::time::sleep(next).await;
            let now = Instant::now();
            calls += 1;
            if now >= job.end() {
                return (calls, now - job.end());
            }
            let estimate = if job.running(now) && pacer.wants_estimate(now) {
                calls += 1;
                job.estimate(now)
            } else {
                None
            };
            next = pacer.after_poll(now, estimate);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_of_ten_seconds_takes_a_handful_of_calls_and_is_seen_ending_promptly() {
        let policy = PollPolicy {
            first: Duration::from_millis(100),
            ..PollPolicy::default()
        };
        for (wait_ms, secs) in [(0, 10.0), (300, 10.0), (0, 1.0), (300, 4.0), (50, 0.5)] {
            let (calls, late) = follow(policy, Duration::from_millis(wait_ms), secs).await;
            assert!(calls <= 5, "{secs} s after {wait_ms} ms: {calls} calls");
            // Within 1 % of the duration (the percent the log lags) plus the slack, or the
            // first poll for a job shorter than it.
            let bound = Duration::from_secs_f64(secs / 100.0 + secs / 500.0)
                + ESTIMATE_SLACK
                + policy.first.saturating_sub(Duration::from_secs_f64(secs));
            assert!(late <= bound, "{secs} s after {wait_ms} ms: {late:?} late");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_job_is_polled_at_most_every_max_and_without_logs_backs_off() {
        let policy = PollPolicy {
            first: Duration::from_millis(100),
            ..PollPolicy::default()
        };
        // 60 s: status every 10 s (the cap) and a single log read.
        let (calls, late) = follow(policy, Duration::ZERO, 60.0).await;
        assert!(calls <= 9, "{calls}");
        assert!(late <= Duration::from_millis(800), "{late:?}");
        // No estimate at all: the plain doubling backoff, as before.
        let mut pacer = Pacer::new(policy);
        let now = Instant::now();
        let mut waits = vec![pacer.first_wait()];
        waits.extend((0..8).map(|_| pacer.after_poll(now, None)));
        let waits: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(
            waits,
            vec![100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000]
        );
        // After a terminate, the backoff starts over at `first`.
        pacer.reset();
        assert_eq!(pacer.after_poll(now, None), policy.first);
        assert_eq!(pacer.after_poll(now, None), policy.first * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn after_every_file_arrived_only_the_status_is_polled_on_a_fresh_backoff() {
        let policy = PollPolicy {
            first: Duration::from_millis(100),
            ..PollPolicy::default()
        };
        let mut pacer = Pacer::new(policy);
        let now = Instant::now();
        let done = Estimate {
            remaining: Duration::ZERO,
            complete: true,
            bytes_per_second: None,
        };
        assert!(pacer.wants_estimate(now));
        assert_eq!(pacer.after_poll(now, Some(done)), policy.first);
        assert!(!pacer.wants_estimate(now + Duration::from_secs(1)));
        assert_eq!(pacer.after_poll(now, None), policy.first * 2);
        pacer.reset();
        assert!(pacer.wants_estimate(now));
        pacer.without_estimates();
        assert!(!pacer.wants_estimate(now));
        pacer.reset();
        // An estimate is slept out in one wait, capped at `max`.
        let soon = Estimate {
            remaining: Duration::from_secs(2),
            complete: true,
            bytes_per_second: None,
        };
        let wait = pacer.after_poll(now, Some(soon));
        assert!(wait > Duration::from_secs(2) && wait < Duration::from_millis(2020));
        assert!(!pacer.wants_estimate(now + Duration::from_secs(1)));
        assert!(pacer.wants_estimate(now + wait));
    }

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
