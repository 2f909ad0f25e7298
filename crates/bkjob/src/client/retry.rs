//! Retry policy: exponential backoff with half jitter (each delay random in `[base/2, base]`),
//! bounded in attempts and total time.

use std::time::Duration;

use rand::Rng;

/// How often and how long the client retries a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Base delay before the first retry; doubled each time.
    pub initial_delay: Duration,
    /// Upper bound of one delay (also caps a server's `Retry-After`).
    pub max_delay: Duration,
    /// No retry is started once this much time has passed since the first attempt.
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_total: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay before retry number `retry` (0-based): a random value in
    /// `[base/2, base]` with `base = initial * 2^retry` capped at `max_delay`, or the server's
    /// hint when it gave one (capped too). Half-jitter keeps a floor so a 429 is not hammered.
    pub fn delay(&self, retry: u32, server_hint: Option<Duration>) -> Duration {
        if let Some(hint) = server_hint {
            return hint.min(self.max_delay);
        }
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        let base = self
            .initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let half = base / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_bounded() {
        let p = RetryPolicy::default();
        for retry in 0..30 {
            let d = p.delay(retry, None);
            assert!(d <= p.max_delay, "{retry}: {d:?}");
        }
        let first = p.delay(0, None);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
        let fourth = p.delay(3, None);
        assert!(fourth >= Duration::from_millis(800), "{fourth:?}");
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(p.delay(0, Some(Duration::from_secs(300))), p.max_delay);
    }
}
