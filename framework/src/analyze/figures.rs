//! The report over all trial runs: medians, the worst run, every run's
//! value (each run read by `trial.rs`).
//!
//! Plain data, serialized as `analyze --format json`: the keys are stable
//! (maps in name order), so two reports diff and compare cleanly.

use std::collections::BTreeMap;

use orderly_core::phase::StopPhase;
use serde::{Deserialize, Serialize};

use super::chain::{shutdown_chains, startup_chain, Graph, Link};
use super::trial::Timing;
use super::trial::Trial;

/// One figure over every run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stat {
    pub(crate) median_ms: f64,
    pub(crate) worst_ms: f64,
    pub(crate) best_ms: f64,
    /// Every run's value, in run order.
    pub(crate) runs_ms: Vec<f64>,
}

impl Stat {
    pub(crate) fn of(values: Vec<f64>) -> Self {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let median = match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        Stat {
            median_ms: round(median),
            worst_ms: round(sorted.last().copied().unwrap_or(0.0)),
            best_ms: round(sorted.first().copied().unwrap_or(0.0)),
            runs_ms: values.into_iter().map(round).collect(),
        }
    }

    /// How far apart the runs were: the noise a change must exceed.
    pub(crate) fn spread(&self) -> f64 {
        self.worst_ms - self.best_ms
    }
}

/// One component's startup over every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Startup {
    /// When its start began, from the run's first start.
    pub(crate) began: Stat,
    /// Its `start`, retries included.
    pub(crate) start: Stat,
    /// From `start` returning to ready.
    pub(crate) ready: Stat,
    /// Both: what it adds to the time to ready when on the critical chain.
    pub(crate) start_to_ready: Stat,
}

/// Everything `analyze` reports, over every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) app: String,
    pub(crate) runs: u32,
    /// Runs that started and shut down; the figures are theirs.
    pub(crate) completed: u32,
    /// Runs that did not start, each with why: not counted as times.
    pub(crate) failures: Vec<String>,
    pub(crate) time_to_ready: Stat,
    pub(crate) shutdown: Stat,
    pub(crate) startup: BTreeMap<String, Startup>,
    /// Each stop phase's length.
    pub(crate) phases: BTreeMap<String, Stat>,
    /// Each stop hook: component, then phase.
    pub(crate) stop_hooks: BTreeMap<String, BTreeMap<String, Stat>>,
    /// Which run the chains are from: the one with the median time to ready.
    pub(crate) median_run: u32,
    pub(crate) critical_chain: Vec<Link>,
    /// Per stop phase that anyone joined, its chain in the median run.
    pub(crate) shutdown_chains: BTreeMap<String, Vec<Link>>,
}

impl Report {
    /// The report over `trials` (`None` for a run that did not start).
    pub(crate) fn of(app: &str, trials: &[Option<Trial>], failures: Vec<String>, graph: &Graph) -> Self {
        let done: Vec<(u32, &Trial)> =
            trials.iter().enumerate().filter_map(|(k, t)| t.as_ref().map(|t| (k as u32 + 1, t))).collect();
        let over = |f: &dyn Fn(&Trial) -> Option<f64>| Stat::of(done.iter().filter_map(|(_, t)| f(t)).collect());
        let mut startup = BTreeMap::new();
        let names: std::collections::BTreeSet<&String> = done.iter().flat_map(|(_, t)| t.components.keys()).collect();
        for name in names {
            let of = |f: fn(&Timing) -> f64| over(&|t: &Trial| t.components.get(name).map(f));
            startup.insert(
                name.clone(),
                Startup {
                    began: of(|t| t.began),
                    start: of(|t| t.start),
                    ready: of(|t| t.ready),
                    start_to_ready: of(|t| t.ready_at - t.began),
                },
            );
        }
        let mut phases = BTreeMap::new();
        for phase in StopPhase::ALL {
            let stat = over(&|t: &Trial| t.phases.get(&phase).copied());
            if !stat.runs_ms.is_empty() {
                phases.insert(phase.as_str().to_string(), stat);
            }
        }
        let mut stop_hooks: BTreeMap<String, BTreeMap<String, Stat>> = BTreeMap::new();
        let hooks: std::collections::BTreeSet<(&str, StopPhase)> =
            done.iter().flat_map(|(_, t)| t.hooks.iter().map(|h| (h.component.as_str(), h.phase))).collect();
        for (component, phase) in hooks {
            let took = |t: &Trial| {
                t.hooks.iter().find(|h| h.component == component && h.phase == phase).map(|h| h.ended - h.began)
            };
            stop_hooks.entry(component.to_string()).or_default().insert(phase.as_str().to_string(), over(&took));
        }
        let time_to_ready = over(&|t: &Trial| Some(t.time_to_ready));
        // The run whose time to ready is the median (the lower one of an even count).
        let mut by_ready: Vec<&(u32, &Trial)> = done.iter().collect();
        by_ready.sort_by(|a, b| a.1.time_to_ready.total_cmp(&b.1.time_to_ready));
        let median = by_ready.get(by_ready.len().saturating_sub(1) / 2).copied();
        Report {
            app: app.to_string(),
            runs: trials.len() as u32,
            completed: done.len() as u32,
            failures,
            time_to_ready,
            shutdown: over(&|t: &Trial| Some(t.shutdown)),
            startup,
            phases,
            stop_hooks,
            median_run: median.map_or(0, |(k, _)| *k),
            critical_chain: median.map(|(_, t)| startup_chain(t, graph)).unwrap_or_default(),
            shutdown_chains: median.map(|(_, t)| shutdown_chains(t, graph)).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_odd_and_an_even_count_and_the_spread() {
        let odd = Stat::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((odd.median_ms, odd.worst_ms, odd.best_ms, odd.spread()), (2.0, 3.0, 1.0, 2.0));
        assert_eq!(odd.runs_ms, [3.0, 1.0, 2.0], "in run order");
        assert_eq!(Stat::of(vec![4.0, 1.0, 2.0, 3.0]).median_ms, 2.5);
        assert_eq!(Stat::of(Vec::new()), Stat::default());
    }
}
