//! What one trial run's events say: when each component began, how long
//! its start and readiness took, each stop hook and phase.

use std::collections::BTreeMap;
use std::time::Duration;

use orderly_core::events::{EventKind, LifecycleEvent};
use orderly_core::phase::{Phase, StopPhase};

/// One component in one run, in ms from the run's first start.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Timing {
    pub(crate) began: f64,
    pub(crate) start: f64,
    pub(crate) ready: f64,
    pub(crate) ready_at: f64,
}

/// One stop hook in one run, in ms from the run's first start.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hook {
    pub(crate) component: String,
    pub(crate) phase: StopPhase,
    pub(crate) began: f64,
    pub(crate) ended: f64,
}

/// One trial run, read from its events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trial {
    pub(crate) components: BTreeMap<String, Timing>,
    pub(crate) hooks: Vec<Hook>,
    pub(crate) phases: BTreeMap<StopPhase, f64>,
    pub(crate) time_to_ready: f64,
    pub(crate) shutdown: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Trial {
    /// Reads a run that started and shut down.
    pub(crate) fn of(events: &[LifecycleEvent]) -> Self {
        let origin = events.iter().find(|e| e.event == EventKind::Starting).map_or(Duration::ZERO, |e| e.at);
        let at = |e: &LifecycleEvent| ms(e.at.saturating_sub(origin));
        let mut trial = Trial::default();
        let mut stopping: BTreeMap<(String, StopPhase), f64> = BTreeMap::new();
        for e in events {
            let name = e.component.as_deref().unwrap_or_default().to_string();
            let elapsed = e.elapsed.map_or(0.0, ms);
            match (e.event, e.phase) {
                (EventKind::Starting, _) => trial.components.entry(name).or_default().began = at(e),
                (EventKind::Started, _) => trial.components.entry(name).or_default().start = elapsed,
                (EventKind::Ready, _) => {
                    let timing = trial.components.entry(name).or_default();
                    timing.ready = elapsed;
                    timing.ready_at = at(e);
                }
                (EventKind::Stopping, Some(Phase::Stop(phase))) => {
                    stopping.insert((name, phase), at(e));
                }
                (
                    EventKind::Stopped | EventKind::Failed | EventKind::TimedOut | EventKind::Panicked,
                    Some(Phase::Stop(phase)),
                ) => {
                    let began = stopping.remove(&(name.clone(), phase)).unwrap_or(at(e) - elapsed);
                    trial.hooks.push(Hook { component: name, phase, began, ended: at(e) });
                }
                (EventKind::PhaseFinished, Some(Phase::Stop(phase))) => {
                    trial.phases.insert(phase, elapsed);
                }
                (EventKind::ShutdownFinished, _) => trial.shutdown = elapsed,
                _ => {}
            }
        }
        trial.time_to_ready = trial.components.values().map(|t| t.ready_at).fold(0.0, f64::max);
        trial
    }
}
