//! Reload: new config for running components, without a process restart,
//! all or nothing.
//!
//! The app (on SIGHUP) re-reads every config layer and validates all of
//! it; an invalid reload changes nothing. For each component whose section
//! changed, it builds two values, a replacement from the new config and a
//! fresh copy of the config in force, and hands them to
//! [`Runtime::reload`](crate::Runtime::reload), which, holding the restart
//! turn (never during a shutdown or a restart), applies them in order:
//!
//! 1. the running component applies the change in place
//!    ([`Component::reload`](crate::Component::reload), given the
//!    replacement to copy from); `Applied` ends the step there;
//! 2. otherwise (`NeedsRestart`, the default) it restarts along the graph
//!    (`restart.rs`): its dependents and it stop through their phases, the
//!    replacement takes its place, and they start again in order. That
//!    needs its dependents to be restartable; if one is not, the step fails
//!    before anything stops;
//! 3. a replacement that fails to start fails its step: the fresh copy of
//!    the config in force takes its place and starts (never the value that
//!    ran before, which may not start twice).
//!
//! When a step fails, the steps before it are undone, last first: an
//! in-place change by the reload hook given the copy of the old config, a
//! restart by restarting again with that copy. The report names the step
//! that failed and what was rolled back; `reloaded` events are emitted only
//! for a reload that took whole. The shell changes the log level only then.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::component::Component;
use crate::context::{ReloadContext, Reloaded};
use crate::error::{box_error_chain, BoxError};
use crate::event::EventKind;
use crate::graph::Policy;
use crate::hook::{run_one, BoxFuture, Ended};
use crate::restart::{clear_conditions, cycle, mark_restarting, member_names};
use crate::settings::ComponentSettings;
use crate::start::StartEnd;
use crate::state::Shared;
use crate::toggle::{self, Toggle};
use crate::trigger::ShutdownReason;

/// How long a component's [`reload`](Component::reload) hook may take.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// One component's new config, for [`Runtime::reload`](crate::Runtime::reload):
/// a changed section, or the component enabled or disabled.
pub struct ReloadChange {
    name: String,
    what: What,
}

enum What {
    Section { replacement: Arc<dyn Component>, current: Arc<dyn Component> },
    Enable(Arc<dyn Component>),
    Disable(Arc<dyn Component>),
}

impl ReloadChange {
    /// The component called `name` is to run with `replacement` (built from
    /// the new config). `current` is a fresh value built from the config it
    /// runs with now, never started: what a rollback hands its reload hook,
    /// or starts in its place.
    pub fn new(name: impl Into<String>, replacement: Arc<dyn Component>, current: Arc<dyn Component>) -> Self {
        Self { name: name.into(), what: What::Section { replacement, current } }
    }

    /// The disabled component called `name` is to run, as `component`
    /// (built from the new config): it starts along the graph, after its
    /// dependencies, and its running dependents (those that declared it
    /// optional) start again to see it.
    pub fn enable(name: impl Into<String>, component: Arc<dyn Component>) -> Self {
        Self { name: name.into(), what: What::Enable(component) }
    }

    /// The component called `name` is to stop running: it stops through
    /// the five phases, with its running dependents, which start again
    /// without it (each must have declared it optional, or be disabled by
    /// the same reload). `current`, a fresh value built from the config in
    /// force, starts in its place if the reload is undone.
    pub fn disable(name: impl Into<String>, current: Arc<dyn Component>) -> Self {
        Self { name: name.into(), what: What::Disable(current) }
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What a reload did, per component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Applied in place by the component's hook.
    pub applied: Vec<String>,
    /// Restarted with its dependents, with the new config.
    pub restarted: Vec<String>,
    /// The step that failed, with why (empty when the reload took whole),
    /// and any rollback that failed in turn. The old config runs.
    pub failed: Vec<String>,
    /// Components whose change had been applied and was undone because a
    /// later step failed.
    pub rolled_back: Vec<String>,
    /// Components the reload enabled: they run now.
    pub enabled: Vec<String>,
    /// Components the reload disabled: they stopped.
    pub disabled: Vec<String>,
    /// The changes could not hold (`failed` says why) and were refused
    /// before any step applied: nothing was tried, so nothing rolled back.
    pub refused: bool,
}

impl ReloadReport {
    /// Every changed component took its new config.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Each change of lifecycle settings resolved to the component it is for
/// and the policy it makes, or every problem with them.
pub(crate) fn resolve_settings(
    shared: &Shared,
    changes: &[(String, ComponentSettings)],
) -> Result<Vec<(usize, Policy)>, Vec<String>> {
    let mut problems = Vec::new();
    let mut resolved = Vec::new();
    for (name, settings) in changes {
        let Some(i) = shared.graph.index_of(name) else {
            if settings.enabled {
                let why = shared.graph.unavailable.get(name).map_or("it is not part of this app", String::as_str);
                problems.push(format!("component `{name}` cannot be enabled: {why}"));
            }
            continue;
        };
        match crate::graph::supervision_of(&*shared.graph.nodes[i].component(), settings) {
            Ok(supervision) => resolved.push((i, Policy { settings: *settings, supervision })),
            Err(problem) => problems.push(format!("component `{name}`: {problem}")),
        }
    }
    let proposed = |j: usize| resolved.iter().find(|(i, _)| *i == j).map(|(_, p)| p);
    let supervision = |j: usize| proposed(j).map_or_else(|| shared.graph.nodes[j].supervision(), |p| p.supervision);
    let enabled = |j: usize| proposed(j).map_or_else(|| shared.graph.nodes[j].enabled(), |p| p.settings.enabled);
    problems.extend(toggle::enabled_set_problems(shared, supervision, enabled));
    problems.sort();
    problems.dedup();
    if problems.is_empty() {
        Ok(resolved)
    } else {
        Err(problems)
    }
}

/// Applies new lifecycle settings, all or none, between restarts.
pub(crate) async fn reload_settings(
    shared: &Arc<Shared>,
    changes: &[(String, ComponentSettings)],
) -> Result<(), Vec<String>> {
    let _turn = shared.restart_turn.lock().await;
    let resolved = resolve_settings(shared, changes)?;
    for (i, policy) in resolved {
        shared.graph.nodes[i].set_policy(policy);
        shared
            .events
            .emit(EventKind::Reloaded.build().component(&shared.graph.nodes[i].name).detail("lifecycle settings"));
    }
    Ok(())
}

/// How a step was applied, and so how it is undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    InPlace,
    Restarted,
}

/// A step done, and how to undo it.
type Done<'a> = (usize, &'a Arc<dyn Component>, Applied, String, &'a str);

/// Applies every change or none: the changed sections in order, then every
/// component enabled or disabled, in one shift (`toggle.rs`), checked
/// before any step.
pub(crate) async fn reload(shared: &Arc<Shared>, changes: Vec<ReloadChange>) -> ReloadReport {
    let mut report = ReloadReport::default();
    let _turn = shared.restart_turn.lock().await;
    let mut sections = Vec::new();
    let mut toggles = Vec::new();
    for ReloadChange { name, what } in changes {
        match what {
            What::Section { replacement, current } => sections.push((name, replacement, current)),
            What::Enable(component) => toggles.push(Toggle::Enable { name, component }),
            What::Disable(current) => toggles.push(Toggle::Disable { name, current }),
        }
    }
    let shift = match toggle::plan(shared, toggles) {
        Ok(shift) => (!shift.is_empty()).then_some(shift),
        Err(problems) => {
            report.failed = problems;
            report.refused = true;
            return report;
        }
    };
    let mut done: Vec<Done> = Vec::new();
    for (name, replacement, current) in &sections {
        match apply(shared, name, replacement, current).await {
            Ok((i, how, detail)) => done.push((i, current, how, detail, name)),
            Err(why) => {
                undo_all(shared, done, name, why, &mut report).await;
                return report;
            }
        }
    }
    let mut toggled = String::new();
    if let Some(shift) = shift {
        let (enabled, disabled) = shift.names(shared);
        let outcome = match shared.shutdown.is_requested() || !shared.is_running() {
            true => Err("the app is not running".to_string()),
            false => toggle::shift(shared, shift).await,
        };
        match outcome {
            Ok(detail) => {
                toggled = detail;
                report.enabled = enabled;
                report.disabled = disabled;
            }
            Err(why) => {
                let names: Vec<String> = enabled.iter().chain(&disabled).cloned().collect();
                undo_all(shared, done, &names.join(", "), why, &mut report).await;
                return report;
            }
        }
    }
    for (i, _, how, detail, name) in done {
        shared.events.emit(EventKind::Reloaded.build().component(&shared.graph.nodes[i].name).detail(detail));
        match how {
            Applied::InPlace => report.applied.push(name.to_string()),
            Applied::Restarted => report.restarted.push(name.to_string()),
        }
    }
    for name in report.enabled.iter().chain(&report.disabled) {
        let i = shared.graph.index_of(name);
        if let Some(node) = i.map(|i| &shared.graph.nodes[i]) {
            shared.events.emit(EventKind::Reloaded.build().component(&node.name).detail(toggled.clone()));
        }
    }
    report
}

/// Step `failed` could not be applied (`why`): the steps done before it
/// are undone, last first, and the report says so.
async fn undo_all(shared: &Arc<Shared>, done: Vec<Done<'_>>, failed: &str, why: String, report: &mut ReloadReport) {
    let label: Arc<str> = failed.into();
    shared.events.emit(EventKind::ReloadFailed.build().component(&label).error(why.clone()));
    report.failed.push(format!("component `{label}`: {why}"));
    let cause = format!("rolled back: the reload of `{label}` failed");
    for (i, current, how, _, name) in done.into_iter().rev() {
        match undo(shared, i, current, how).await {
            Ok(()) => {
                let node = &shared.graph.nodes[i].name;
                shared.events.emit(EventKind::ReloadFailed.build().component(node).error(cause.clone()));
                report.rolled_back.push(name.to_string());
            }
            Err(why) => report.failed.push(format!("component `{name}`: not rolled back: {why}")),
        }
    }
}

/// One step: the change applied in place, or by a restart.
async fn apply(
    shared: &Arc<Shared>,
    name: &str,
    replacement: &Arc<dyn Component>,
    current: &Arc<dyn Component>,
) -> Result<(usize, Applied, String), String> {
    let i = shared.graph.index_of(name).ok_or("is not part of this app")?;
    if !shared.graph.nodes[i].enabled() {
        return Err("is disabled: its section applies when a reload enables it".into());
    }
    if shared.shutdown.is_requested() || !shared.is_running() {
        return Err("the app is not running".into());
    }
    if reload_hook(shared, i, replacement.clone()).await? == Reloaded::Applied {
        return Ok((i, Applied::InPlace, "applied in place".into()));
    }
    let names = restart_with(shared, i, replacement.clone(), Some(current)).await?;
    Ok((i, Applied::Restarted, format!("restarted {names}")))
}

/// Undoes one step with the copy of the config in force before it.
async fn undo(shared: &Arc<Shared>, i: usize, current: &Arc<dyn Component>, how: Applied) -> Result<(), String> {
    match how {
        Applied::InPlace => match reload_hook(shared, i, current.clone()).await? {
            Reloaded::Applied => Ok(()),
            Reloaded::NeedsRestart => Err("its reload hook could not take its old config back in place".into()),
        },
        // The replacement ran; the copy of the old config takes its place (the
        // value that ran before may not start twice). Its dependents started
        // again once, so they may again.
        Applied::Restarted => restart_with(shared, i, current.clone(), None).await.map(drop),
    }
}

/// Runs component `i`'s reload hook with `replacement` to copy from.
async fn reload_hook(shared: &Arc<Shared>, i: usize, replacement: Arc<dyn Component>) -> Result<Reloaded, String> {
    let node = &shared.graph.nodes[i];
    let ctx = ReloadContext { name: node.name.clone(), logger: shared.loggers[i].clone(), replacement };
    let component = node.component();
    let hook: BoxFuture<Result<Reloaded, BoxError>> = Box::pin(async move { component.reload(&ctx).await });
    // A shutdown waits for this turn: it must not wait for a slow hook.
    let shutdown = shared.shutdown.clone();
    let interrupted = async move {
        shutdown.wait().await;
    };
    match run_one(hook, Instant::now() + RELOAD_TIMEOUT, interrupted).await {
        Ended::Returned(Ok(outcome)) => Ok(outcome),
        Ended::Returned(Err(error)) => Err(format!("its reload hook failed: {}", box_error_chain(&error))),
        Ended::Panicked(message) => Err(format!("its reload hook panicked: {message}")),
        Ended::OverLimit => Err(format!("its reload hook did not finish within {RELOAD_TIMEOUT:?}")),
        Ended::Aborted => Err("a shutdown began during its reload hook".into()),
    }
}

/// Restarts component `i` with `replacement` in its place, its dependents
/// with it. If the replacement fails to start, `fallback` (a fresh copy of
/// the config in force) takes its place and starts; if that fails too, or
/// there is none (the replacement was the old config), the component cannot
/// run and the app shuts down.
async fn restart_with(
    shared: &Arc<Shared>,
    i: usize,
    replacement: Arc<dyn Component>,
    fallback: Option<&Arc<dyn Component>>,
) -> Result<String, String> {
    let node = &shared.graph.nodes[i];
    let members = shared.running_with_dependents(i).ok_or("the app is not running")?;
    let stuck: Vec<&str> = members
        .iter()
        .filter(|&j| j != i && !shared.graph.nodes[j].component().restartable())
        .map(|j| &*shared.graph.nodes[j].name)
        .collect();
    if !stuck.is_empty() {
        return Err(format!(
            "cannot apply in place, and its dependents {} cannot start twice: restart the process to apply it",
            stuck.join(", ")
        ));
    }
    let names = member_names(shared, &members, i);
    mark_restarting(shared, &members, i, "reloading: starting with the new config");
    let outcome = match cycle(shared, &members, &members, Duration::ZERO, Some((i, replacement))).await {
        Some(StartEnd::Complete) => Ok(names),
        Some(StartEnd::Failed(failure)) => {
            let why = format!("the new config failed to start ({failure}); the old config runs again");
            let again = match fallback {
                Some(fallback) => cycle(shared, &members, &members, Duration::ZERO, Some((i, fallback.clone()))).await,
                None => Some(StartEnd::Failed(failure)),
            };
            match again {
                Some(StartEnd::Complete) | Some(StartEnd::Interrupted(_)) | None => Err(why),
                Some(StartEnd::Failed(again)) => {
                    let error = format!("{why}, but it failed to start again: {again}");
                    shared.shutdown.trigger(ShutdownReason::ComponentFailed {
                        component: node.name.to_string(),
                        error: error.clone(),
                    });
                    Err(error)
                }
            }
        }
        Some(StartEnd::Interrupted(_)) | None => Err("a shutdown began during the reload".into()),
    };
    clear_conditions(shared, &members);
    outcome
}
