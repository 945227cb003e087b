//! A small circuit breaker: after `threshold` failures in a row it opens
//! and calls are skipped for `cooldown`; then one trial call is let
//! through: success closes it, failure opens it again. No I/O here, so it
//! is tested on its own.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial is in progress.
    HalfOpen,
}

/// The breaker.
pub(crate) struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    cooldown: Duration,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self { state: Mutex::new(State::Closed { failures: 0 }), threshold, cooldown }
    }

    /// Whether a call may go through now (and, when it is the trial, claims it).
    pub(crate) fn allow(&self, now: Instant) -> bool {
        let mut state = self.state.lock();
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if now >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    pub(crate) fn success(&self) {
        *self.state.lock() = State::Closed { failures: 0 };
    }

    pub(crate) fn failure(&self, now: Instant) {
        let mut state = self.state.lock();
        *state = match *state {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed { failures: failures + 1 },
            _ => State::Open { until: now + self.cooldown },
        };
    }

    /// Whether calls are being skipped.
    pub(crate) fn is_open(&self) -> bool {
        !matches!(*self.state.lock(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_then_tries_once_after_the_cooldown() {
        let breaker = Breaker::new(3, Duration::from_secs(5));
        let t0 = Instant::now();
        for _ in 0..2 {
            breaker.failure(t0);
        }
        assert!(breaker.allow(t0) && !breaker.is_open(), "still closed below the threshold");
        breaker.failure(t0);
        assert!(breaker.is_open() && !breaker.allow(t0 + Duration::from_secs(4)), "open during the cooldown");
        assert!(breaker.allow(t0 + Duration::from_secs(5)), "one trial after it");
        assert!(!breaker.allow(t0 + Duration::from_secs(5)), "only one");
        breaker.failure(t0 + Duration::from_secs(5));
        assert!(!breaker.allow(t0 + Duration::from_secs(6)), "a failed trial opens it again");
        assert!(breaker.allow(t0 + Duration::from_secs(10)));
        breaker.success();
        assert!(!breaker.is_open() && breaker.allow(t0 + Duration::from_secs(10)), "a good trial closes it");
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = Breaker::new(2, Duration::from_secs(1));
        let now = Instant::now();
        breaker.failure(now);
        breaker.success();
        breaker.failure(now);
        assert!(!breaker.is_open());
    }
}
