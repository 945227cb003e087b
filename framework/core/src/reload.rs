//! Reload: new config for running components, without a process restart.
//!
//! The app (on SIGHUP) re-reads every config layer and validates all of
//! it; an invalid reload changes nothing. For each component whose section
//! changed, it builds a replacement value from the new config and hands it
//! to [`Runtime::reload`](crate::Runtime::reload), which, one component at
//! a time and never during a shutdown or a restart:
//!
//! 1. asks the running component to apply the change in place
//!    ([`Component::reload`](crate::Component::reload), given the
//!    replacement to copy from); `Applied` ends it there;
//! 2. otherwise (`NeedsRestart`, the default) restarts it along the graph
//!    (`restart.rs`): its dependents and it stop through their phases, the
//!    replacement takes its place, and they start again in order. That
//!    needs its dependents to be restartable; if one is not, nothing is
//!    touched and the report says the change waits for a process restart;
//! 3. if the replacement fails to start, the old value is put back and
//!    started again, so a bad reload never leaves a component down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::component::Component;
use crate::context::{ReloadContext, Reloaded};
use crate::error::{box_error_chain, BoxError};
use crate::event::EventKind;
use crate::hook::{run_one, BoxFuture, Ended};
use crate::restart::{clear_conditions, cycle, mark_restarting, member_names};
use crate::start::StartEnd;
use crate::state::Shared;
use crate::trigger::ShutdownReason;

/// How long a component's [`reload`](Component::reload) hook may take.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// What a reload did, per component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Applied in place by the component's hook.
    pub applied: Vec<String>,
    /// Restarted with its dependents, with the new config.
    pub restarted: Vec<String>,
    /// Not applied, each with why; the old config still runs for these.
    pub failed: Vec<String>,
}

impl ReloadReport {
    /// Every changed component took its new config.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Applies `changes` (component name, replacement built from new config).
pub(crate) async fn reload(shared: &Arc<Shared>, changes: Vec<(String, Arc<dyn Component>)>) -> ReloadReport {
    let mut report = ReloadReport::default();
    let _turn = shared.restart_turn.lock().await;
    for (name, replacement) in changes {
        let label: Arc<str> = name.as_str().into();
        let fail = |report: &mut ReloadReport, why: String| {
            shared.events.emit(EventKind::ReloadFailed.build().component(&label).error(why.clone()));
            report.failed.push(format!("component `{label}`: {why}"));
        };
        let Some(i) = shared.graph.index_of(&name) else {
            fail(&mut report, "is not running (disabled when the app started?)".into());
            continue;
        };
        if shared.shutdown.is_requested() || !shared.is_running() {
            fail(&mut report, "the app is not running".into());
            continue;
        }
        let node = &shared.graph.nodes[i];
        let ctx = ReloadContext { name: node.name.clone(), logger: shared.loggers[i].clone(), replacement };
        let component = node.component();
        let replacement = ctx.replacement.clone();
        let hook: BoxFuture<Result<Reloaded, BoxError>> = Box::pin(async move { component.reload(&ctx).await });
        // A shutdown waits for this turn: it must not wait for a slow hook.
        let shutdown = shared.shutdown.clone();
        let interrupted = async move {
            shutdown.wait().await;
        };
        let outcome = match run_one(hook, Instant::now() + RELOAD_TIMEOUT, interrupted).await {
            Ended::Returned(Ok(outcome)) => outcome,
            Ended::Returned(Err(error)) => {
                fail(&mut report, format!("its reload hook failed: {}", box_error_chain(&error)));
                continue;
            }
            Ended::Panicked(message) => {
                fail(&mut report, format!("its reload hook panicked: {message}"));
                continue;
            }
            Ended::OverLimit => {
                fail(&mut report, format!("its reload hook did not finish within {RELOAD_TIMEOUT:?}"));
                continue;
            }
            Ended::Aborted => {
                fail(&mut report, "a shutdown began during its reload hook".into());
                continue;
            }
        };
        if outcome == Reloaded::Applied {
            shared.events.emit(EventKind::Reloaded.build().component(&node.name).detail("applied in place"));
            report.applied.push(name);
            continue;
        }
        match restart_with(shared, i, replacement).await {
            Ok(names) => {
                shared
                    .events
                    .emit(EventKind::Reloaded.build().component(&node.name).detail(format!("restarted {names}")));
                report.restarted.push(name);
            }
            Err(why) => fail(&mut report, why),
        }
    }
    report
}

/// Restarts component `i` with `replacement` in its place, its dependents
/// with it. On a failed start the old value is put back and started again.
async fn restart_with(shared: &Arc<Shared>, i: usize, replacement: Arc<dyn Component>) -> Result<String, String> {
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
    let old = node.component();
    let outcome = match cycle(shared, &members, Duration::ZERO, Some((i, replacement))).await {
        Some(StartEnd::Complete) => Ok(names),
        Some(StartEnd::Failed(failure)) => {
            let why = format!("the new config failed to start ({failure}); the old config runs again");
            match cycle(shared, &members, Duration::ZERO, Some((i, old))).await {
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
