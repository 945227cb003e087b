//! Retrying a component's `start` on transient failures: exponential backoff
//! with full jitter, bounded by the start timeout.
//!
//! Part of the model: it names nothing else in the crate.

use std::time::Duration;

use serde::Deserialize;

/// How often and how patiently to retry a failing `start`.
///
/// Errors wrapped in [`Permanent`](crate::Permanent) are never retried. All
/// attempts together stay within the component's start timeout.
///
/// ```
/// use std::time::Duration;
/// use orderly_core::settings::RetryPolicy;
/// let policy = RetryPolicy::new(5, Duration::from_millis(100), Duration::from_secs(2));
/// assert!(policy.backoff(1) <= Duration::from_millis(100));
/// assert!(policy.backoff(10) <= Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. 1 means no retry.
    pub attempts: u32,
    /// The backoff cap after the first failure.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// The largest backoff cap.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// A policy of `attempts` tries with backoff doubling from `initial_backoff` up to `max_backoff`.
    pub fn new(attempts: u32, initial_backoff: Duration, max_backoff: Duration) -> Self {
        Self { attempts, initial_backoff, max_backoff }
    }

    /// No retry: one attempt.
    pub fn none() -> Self {
        Self::new(1, Duration::ZERO, Duration::ZERO)
    }

    /// How long to wait after failed attempt number `failed_attempt` (1-based):
    /// a uniformly random time up to `min(max_backoff, initial * 2^(n-1))`.
    /// Full jitter spreads replicas that fail together (a database restart).
    pub fn backoff(&self, failed_attempt: u32) -> Duration {
        self.ceiling(failed_attempt).mul_f64(fastrand::f64())
    }

    /// The backoff's ceiling after failed attempt number `failed_attempt`
    /// (1-based), without jitter: `min(max_backoff, initial * 2^(n-1))`.
    /// For schedules that must be predictable (a durable job's next run).
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = orderly_core::settings::RetryPolicy::new(9, Duration::from_secs(1), Duration::from_secs(10));
    /// let secs: Vec<u64> = (1..=6).map(|n| policy.ceiling(n).as_secs()).collect();
    /// assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
    /// ```
    pub fn ceiling(&self, failed_attempt: u32) -> Duration {
        let exponent = failed_attempt.saturating_sub(1).min(31);
        self.initial_backoff.saturating_mul(1u32 << exponent).min(self.max_backoff)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap() {
        let policy = RetryPolicy::new(10, Duration::from_millis(10), Duration::from_millis(50));
        for _ in 0..100 {
            assert!(policy.backoff(1) <= Duration::from_millis(10));
            assert!(policy.backoff(2) <= Duration::from_millis(20));
            assert!(policy.backoff(30) <= Duration::from_millis(50));
        }
    }

    #[test]
    fn backoff_is_jittered() {
        let policy = RetryPolicy::new(10, Duration::from_secs(1), Duration::from_secs(1));
        let samples: std::collections::BTreeSet<Duration> = (0..20).map(|_| policy.backoff(1)).collect();
        assert!(samples.len() > 1, "20 samples were all equal: {samples:?}");
    }
}
