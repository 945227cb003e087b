//! The five stop phases, in the order the shutdown runs them.
//!
//! Every component joins only the phases whose hook it overrides; the
//! shutdown runs phase 1 for every component before any phase 2 hook starts.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One of the five ordered stop phases.
///
/// The order is fixed and documented because operators reason about it:
/// nothing may be flushed while producers still run, and nothing may close a
/// connection that a flush still needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopPhase {
    /// 1. Stop accepting new work: close listeners, stop claiming jobs.
    StopAccepting,
    /// 2. Drain in-flight requests.
    Drain,
    /// 3. Stop background workers: cancel, let the current job finish or hand it back.
    StopWorkers,
    /// 4. Flush buffered data: metrics, traces, logs.
    Flush,
    /// 5. Close external connections: database, cache, queues.
    Close,
}

impl StopPhase {
    /// All phases in the order the shutdown runs them.
    pub const ALL: [StopPhase; 5] =
        [StopPhase::StopAccepting, StopPhase::Drain, StopPhase::StopWorkers, StopPhase::Flush, StopPhase::Close];

    /// The phase's position, 1 to 5.
    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    /// The snake_case name used in config keys, metric labels and events.
    pub fn as_str(self) -> &'static str {
        match self {
            StopPhase::StopAccepting => "stop_accepting",
            StopPhase::Drain => "drain",
            StopPhase::StopWorkers => "stop_workers",
            StopPhase::Flush => "flush",
            StopPhase::Close => "close",
        }
    }
}

impl fmt::Display for StopPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of stop phases: the phases a component joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PhaseSet(u8);

impl PhaseSet {
    /// Every phase: the safe default when nothing better is known.
    pub const ALL: PhaseSet = PhaseSet(0b1_1111);

    /// No phase.
    pub const NONE: PhaseSet = PhaseSet(0);

    /// The set of `phases`.
    pub const fn of(phases: &[StopPhase]) -> PhaseSet {
        let mut bits = 0u8;
        let mut i = 0;
        while i < phases.len() {
            bits |= 1 << phases[i] as u8;
            i += 1;
        }
        PhaseSet(bits)
    }

    /// Whether `phase` is in the set.
    pub const fn contains(self, phase: StopPhase) -> bool {
        self.0 & (1 << phase as u8) != 0
    }

    /// The set with `phase` added.
    pub const fn with(self, phase: StopPhase) -> PhaseSet {
        PhaseSet(self.0 | 1 << phase as u8)
    }

    /// The phases of this set that are not in `other`.
    pub const fn without(self, other: PhaseSet) -> PhaseSet {
        PhaseSet(self.0 & !other.0)
    }

    /// The set as bits, one per phase in order (for an atomic).
    pub(crate) const fn bits(self) -> u8 {
        self.0
    }

    /// The set of `bits` (as [`bits`](Self::bits) gives them).
    pub(crate) const fn from_bits(bits: u8) -> PhaseSet {
        PhaseSet(bits & Self::ALL.0)
    }

    /// The phases in the set, in shutdown order.
    pub fn iter(self) -> impl Iterator<Item = StopPhase> {
        StopPhase::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}

/// Where in the lifecycle something happened: during start, or in a stop phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The component's `start` hook, including its retries.
    Start,
    /// Waiting for the component's `ready` to report ready after `start` returned.
    Ready,
    /// One of the five stop phases.
    Stop(StopPhase),
}

impl Phase {
    /// The snake_case name used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::Ready => "ready",
            Phase::Stop(p) => p.as_str(),
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_sets_hold_exactly_their_phases() {
        let set = PhaseSet::of(&[StopPhase::Drain, StopPhase::Close]);
        assert!(set.contains(StopPhase::Drain) && set.contains(StopPhase::Close));
        assert!(!set.contains(StopPhase::Flush));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![StopPhase::Drain, StopPhase::Close]);
        assert_eq!(PhaseSet::ALL.iter().count(), 5);
        assert_eq!(PhaseSet::NONE.iter().count(), 0);
    }

    #[test]
    fn phases_are_numbered_in_shutdown_order() {
        let numbers: Vec<u8> = StopPhase::ALL.iter().map(|p| p.number()).collect();
        assert_eq!(numbers, vec![1, 2, 3, 4, 5]);
        assert!(StopPhase::StopAccepting < StopPhase::Close);
    }
}
