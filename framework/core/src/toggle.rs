//! Enabling and disabling components while the app runs: the last step of
//! a reload (`reload.rs`), all of a reload's toggles together.
//!
//! A disabled component stays in the graph, not started (`graph.rs`). A
//! reload that enables or disables some is one shift of the running set:
//!
//! 1. Checked before anything of the reload applies: every enabled
//!    component's required dependencies are enabled after it too; a
//!    component to enable was not left out of the graph and, if its type
//!    started before in this process, is restartable; every running
//!    dependent of a toggled component (one that declared it optional) can
//!    start again, since it must, to see it come or go.
//! 2. The components to disable are taken out of the probes at once, and
//!    those dependents report not ready (`restarting: …`). A component
//!    being enabled is not asked by the probes until it is ready: the app
//!    was ready without it.
//! 3. The components to disable and those dependents stop through the five
//!    phases, dependents first; then the enabled ones (new values, built
//!    from the new config) and the dependents start along the graph.
//! 4. If a start fails, the shift is undone the same way: what started
//!    stops, the disabled ones come back (fresh copies of the config in
//!    force), and the report says why. If that fails too, the app cannot
//!    run as configured and shuts down.

use std::sync::Arc;

use crate::component::Component;
use crate::failure::Supervision;
use crate::nodeset::NodeSet;
use crate::restart::{clear_conditions, cycle};
use crate::start::StartEnd;
use crate::state::Shared;
use crate::supervised::Condition;
use crate::trigger::ShutdownReason;

/// One component to enable or disable.
pub(crate) enum Toggle {
    /// Enable it, running `component` (built from the new config).
    Enable { name: String, component: Arc<dyn Component> },
    /// Disable it; `current` (a fresh copy of the config in force) starts
    /// in its place if the reload is undone.
    Disable { name: String, current: Arc<dyn Component> },
}

impl Toggle {
    pub(crate) fn name(&self) -> &str {
        match self {
            Toggle::Enable { name, .. } | Toggle::Disable { name, .. } => name,
        }
    }

    fn enables(&self) -> bool {
        matches!(self, Toggle::Enable { .. })
    }
}

/// A checked shift of the running set.
pub(crate) struct Shift {
    /// The components to enable, each with its new value.
    enable: Vec<(usize, Arc<dyn Component>)>,
    /// The components to disable, each with a fresh copy for an undo.
    disable: Vec<(usize, Arc<dyn Component>)>,
    /// Those that stop: the disabled ones and the running dependents of
    /// every toggled one.
    stop: NodeSet,
    /// Those that start: the stopped dependents and the enabled ones.
    start: NodeSet,
}

impl Shift {
    /// Nothing to enable or disable (every toggle asked for the state in force).
    pub(crate) fn is_empty(&self) -> bool {
        self.enable.is_empty() && self.disable.is_empty()
    }

    /// The names enabled and disabled, for the report.
    pub(crate) fn names(&self, shared: &Shared) -> (Vec<String>, Vec<String>) {
        let names = |list: &[(usize, Arc<dyn Component>)]| {
            list.iter().map(|(i, _)| shared.graph.nodes[*i].name.to_string()).collect()
        };
        (names(&self.enable), names(&self.disable))
    }
}

/// The problems of the components enabled after a reload (`enabled(j)`),
/// each with its supervision after it (`supervision(j)`): required dependencies disabled,
/// and restart policies the graph could not hold. Each names both sides.
pub(crate) fn enabled_set_problems(
    shared: &Shared,
    supervision: impl Fn(usize) -> Supervision,
    enabled: impl Fn(usize) -> bool,
) -> Vec<String> {
    let graph = &shared.graph;
    let mut problems = Vec::new();
    for (i, deps) in graph.dependencies.iter().enumerate().filter(|(i, _)| enabled(*i)) {
        for &k in deps.iter().filter(|&&k| !enabled(k) && !graph.optional.contains(&(i, k))) {
            problems.push(format!(
                "component `{}` requires `{}`, which would be disabled (components.{}.enabled = false): \
                 disable `{}` too, or keep `{}`",
                graph.nodes[i].name, graph.nodes[k].name, graph.nodes[k].name, graph.nodes[i].name, graph.nodes[k].name
            ));
        }
    }
    problems.extend(graph.restart_problems_with(supervision, enabled));
    problems
}

/// Checks `toggles` against the graph and what runs now; the shift they
/// make, or every problem with them. Changes nothing.
pub(crate) fn plan(shared: &Shared, toggles: Vec<Toggle>) -> Result<Shift, Vec<String>> {
    let graph = &shared.graph;
    let mut problems = Vec::new();
    let (mut enable, mut disable) = (Vec::new(), Vec::new());
    for toggle in toggles {
        let Some(i) = graph.index_of(toggle.name()) else {
            let name = toggle.name();
            problems.push(match (&toggle, graph.unavailable.get(name)) {
                (Toggle::Enable { .. }, Some(why)) => format!("component `{name}` cannot be enabled: {why}"),
                _ => format!("component `{name}` is not part of this app"),
            });
            continue;
        };
        let node = &graph.nodes[i];
        // Asked for the state in force: nothing to do.
        if node.enabled() == toggle.enables() {
            continue;
        }
        match toggle {
            Toggle::Enable { component, .. } => {
                let ran = node.supervised.ran.load(std::sync::atomic::Ordering::Relaxed);
                if ran && !component.restartable() {
                    problems.push(format!(
                        "component `{}` ran before in this process, and its type cannot start twice \
                         (Component::restartable is false): enabling it again takes a new process",
                        node.name
                    ));
                }
                enable.push((i, component));
            }
            Toggle::Disable { current, .. } => disable.push((i, current)),
        }
    }
    let toggled = |list: &[(usize, Arc<dyn Component>)], j: usize| list.iter().any(|(i, _)| *i == j);
    let enabled_after = |j: usize| (graph.nodes[j].enabled() || toggled(&enable, j)) && !toggled(&disable, j);
    problems.extend(enabled_set_problems(shared, |j| graph.nodes[j].supervision(), enabled_after));

    // What runs of the toggled ones and their dependents stops: the
    // disabled ones themselves (they run), and every dependent that runs.
    let mut reached = NodeSet::empty(graph.len());
    for (i, _) in enable.iter().chain(&disable) {
        reached.union_with(&graph.with_dependents(*i));
    }
    let stop = shared.running_among(&reached);
    let mut start = stop.clone();
    for (i, _) in &disable {
        start.remove(*i);
    }
    let toggled_names: Vec<String> =
        enable.iter().chain(&disable).map(|(i, _)| format!("`{}`", graph.nodes[*i].name)).collect();
    for j in start.iter().filter(|&j| !graph.nodes[j].component().restartable()) {
        problems.push(format!(
            "component `{}` would start again to see {} come or go, but it cannot start twice \
             (Component::restartable is false)",
            graph.nodes[j].name,
            toggled_names.join(", ")
        ));
    }
    for (i, _) in &enable {
        start.insert(*i);
    }
    if problems.is_empty() {
        Ok(Shift { enable, disable, stop, start })
    } else {
        Err(problems)
    }
}

/// Carries out a checked shift. `Ok` with what it did; `Err` with why, the
/// shift undone (or the app shutting down, if even that failed).
pub(crate) async fn shift(shared: &Arc<Shared>, shift: Shift) -> Result<String, String> {
    let quoted = |names: Vec<String>| -> Vec<String> { names.iter().map(|name| format!("`{name}`")).collect() };
    let (enabled, disabled) = shift.names(shared);
    let (enabled, disabled) = (quoted(enabled), quoted(disabled));
    let Shift { enable, disable, stop, start } = shift;
    let graph = &shared.graph;
    let why: Arc<str> = match (enabled.is_empty(), disabled.is_empty()) {
        (false, true) => format!("restarting: {} enabled by a reload", enabled.join(", ")),
        (true, false) => format!("restarting: {} disabled by a reload", disabled.join(", ")),
        _ => format!("restarting: {} enabled and {} disabled by a reload", enabled.join(", "), disabled.join(", ")),
    }
    .into();
    for (i, _) in &disable {
        graph.nodes[*i].set_enabled(false);
    }
    for j in start.iter() {
        *graph.nodes[j].supervised.condition.lock() = Some(Condition::Restarting(why.clone()));
    }
    for (i, component) in &enable {
        graph.nodes[*i].replace(component.clone());
        *graph.nodes[*i].supervised.condition.lock() = Some(Condition::Enabling);
        graph.nodes[*i].set_enabled(true);
    }
    let mut touched = stop.clone();
    touched.union_with(&start);
    let end = cycle(shared, &stop, &start, std::time::Duration::ZERO, None).await;
    let failure = match end {
        Some(StartEnd::Complete) => {
            clear_conditions(shared, &touched);
            let mut did = Vec::new();
            if !enabled.is_empty() {
                did.push(format!("enabled {}", enabled.join(", ")));
            }
            if !disabled.is_empty() {
                did.push(format!("disabled {}", disabled.join(", ")));
            }
            return Ok(did.join("; "));
        }
        Some(StartEnd::Failed(failure)) => failure,
        Some(StartEnd::Interrupted(_)) | None => return Err("a shutdown began during the reload".into()),
    };

    // Undo: what started stops, the enabled ones go back to disabled, the
    // disabled ones come back as fresh copies, and what ran starts again.
    let why = format!("the reload failed to start ({failure}); what ran before runs again");
    let back: Arc<str> = format!("restarting: {why}").into();
    for (i, _) in &enable {
        graph.nodes[*i].set_enabled(false);
    }
    let mut stuck = Vec::new();
    for (i, current) in &disable {
        if graph.nodes[*i].supervised.ran.load(std::sync::atomic::Ordering::Relaxed) && !current.restartable() {
            stuck.push(format!("`{}`", graph.nodes[*i].name));
        }
        graph.nodes[*i].replace(current.clone());
        graph.nodes[*i].set_enabled(true);
    }
    for j in stop.iter() {
        *graph.nodes[j].supervised.condition.lock() = Some(Condition::Restarting(back.clone()));
    }
    let error = if stuck.is_empty() {
        match cycle(shared, &start, &stop, std::time::Duration::ZERO, None).await {
            Some(StartEnd::Complete) => None,
            Some(StartEnd::Failed(again)) => Some(format!("{why}, but it failed to start again: {again}")),
            Some(StartEnd::Interrupted(_)) | None => return Err("a shutdown began during the reload".into()),
        }
    } else {
        Some(format!("{why}, but {} cannot start twice (Component::restartable is false)", stuck.join(", ")))
    };
    clear_conditions(shared, &touched);
    match error {
        None => Err(why),
        Some(error) => {
            let component = failure.component.clone();
            shared.shutdown.trigger(ShutdownReason::ComponentFailed { component, error: error.clone() });
            Err(error)
        }
    }
}
