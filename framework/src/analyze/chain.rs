//! Critical chains, as `systemd-analyze critical-chain` draws them for a
//! boot: the components that decided how long something took.
//!
//! - **Startup.** A component starts once its last dependency is ready.
//!   The chain begins at the component that became ready last (the app is
//!   ready then) and follows, at each link, the dependency that became
//!   ready last: the one it waited for.
//! - **Each stop phase.** A component's hook begins once the hooks of its
//!   dependents in that phase have ended. The chain begins at the hook that
//!   ended last and follows, at each link, the dependent (direct or not)
//!   whose hook in that phase ended last before it began.

use std::collections::{BTreeMap, BTreeSet};

use orderly_core::phase::StopPhase;
use serde::{Deserialize, Serialize};

use super::trial::Trial;

/// Each component's dependencies, by name.
pub(crate) type Graph = BTreeMap<String, Vec<String>>;

/// One link of a chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Link {
    pub(crate) component: String,
    /// When it began, in ms from the start of what the chain explains.
    pub(crate) at_ms: f64,
    /// How long it took (start and readiness; or its stop hook).
    pub(crate) took_ms: f64,
    /// Its part of the whole, 0 to 1.
    pub(crate) share: f64,
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The startup's critical chain in `trial`, the last component first.
pub(crate) fn startup_chain(trial: &Trial, graph: &Graph) -> Vec<Link> {
    let total = trial.time_to_ready.max(f64::EPSILON);
    let ready_at = |name: &str| trial.components.get(name).map(|t| t.ready_at);
    let last = trial.components.iter().max_by(|a, b| a.1.ready_at.total_cmp(&b.1.ready_at)).map(|(n, _)| n.clone());
    let mut chain = Vec::new();
    let mut next = last;
    while let Some(name) = next {
        let Some(timing) = trial.components.get(&name) else { break };
        let took = timing.ready_at - timing.began;
        chain.push(Link {
            component: name.clone(),
            at_ms: round(timing.began),
            took_ms: round(took),
            share: round(took / total),
        });
        next = graph
            .get(&name)
            .into_iter()
            .flatten()
            .filter_map(|dep| ready_at(dep).map(|at| (dep, at)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(dep, _)| dep.clone());
    }
    chain
}

/// Every component that depends on `name`, directly or not.
fn dependents_of(graph: &Graph, name: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(current) = todo.pop() {
        for (dependent, deps) in graph {
            if deps.contains(&current) && found.insert(dependent.clone()) {
                todo.push(dependent.clone());
            }
        }
    }
    found
}

/// Per stop phase that anyone joined in `trial`, its critical chain, the
/// hook that ended last first; times from the phase's first hook.
pub(crate) fn shutdown_chains(trial: &Trial, graph: &Graph) -> BTreeMap<String, Vec<Link>> {
    let mut chains = BTreeMap::new();
    for phase in StopPhase::ALL {
        let hooks: Vec<_> = trial.hooks.iter().filter(|h| h.phase == phase).collect();
        let Some(origin) = hooks.iter().map(|h| h.began).min_by(f64::total_cmp) else { continue };
        let length = trial.phases.get(&phase).copied().unwrap_or_default().max(f64::EPSILON);
        let mut chain = Vec::new();
        let mut next = hooks.iter().max_by(|a, b| a.ended.total_cmp(&b.ended)).copied();
        while let Some(hook) = next {
            let took = hook.ended - hook.began;
            chain.push(Link {
                component: hook.component.clone(),
                at_ms: round(hook.began - origin),
                took_ms: round(took),
                share: round(took / length),
            });
            let dependents = dependents_of(graph, &hook.component);
            next = hooks
                .iter()
                .filter(|h| dependents.contains(&h.component) && h.ended <= hook.began + 0.001)
                .max_by(|a, b| a.ended.total_cmp(&b.ended))
                .copied();
        }
        chains.insert(phase.as_str().to_string(), chain);
    }
    chains
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::trial::{Hook, Timing};

    fn graph() -> Graph {
        [("db", vec![]), ("cache", vec![]), ("api", vec!["db", "cache"])]
            .into_iter()
            .map(|(n, d)| (n.to_string(), d.into_iter().map(str::to_string).collect()))
            .collect()
    }

    #[test]
    fn the_startup_chain_follows_the_dependency_that_was_ready_last() {
        let mut trial = Trial::default();
        let timing = |began, ready_at| Timing { began, start: 0.0, ready: 0.0, ready_at };
        trial.components.insert("db".into(), timing(0.0, 80.0));
        trial.components.insert("cache".into(), timing(0.0, 10.0));
        trial.components.insert("api".into(), timing(80.0, 100.0));
        trial.time_to_ready = 100.0;
        let chain = startup_chain(&trial, &graph());
        let names: Vec<&str> = chain.iter().map(|l| l.component.as_str()).collect();
        assert_eq!(names, ["api", "db"]);
        assert_eq!((chain[0].at_ms, chain[0].took_ms, chain[0].share), (80.0, 20.0, 0.2));
        assert_eq!(chain[1].share, 0.8);
    }

    #[test]
    fn a_stop_phase_chain_follows_the_dependent_that_ended_last() {
        let mut trial = Trial::default();
        let hook = |c: &str, began, ended| Hook { component: c.into(), phase: StopPhase::Close, began, ended };
        trial.hooks = vec![hook("api", 100.0, 130.0), hook("cache", 130.0, 131.0), hook("db", 130.0, 150.0)];
        trial.phases.insert(StopPhase::Close, 50.0);
        let chains = shutdown_chains(&trial, &graph());
        let names: Vec<&str> = chains["close"].iter().map(|l| l.component.as_str()).collect();
        assert_eq!(names, ["db", "api"]);
        assert_eq!(chains["close"][0].at_ms, 30.0);
    }
}
