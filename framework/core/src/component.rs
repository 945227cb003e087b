//! The [`Component`] trait: the one thing a service is assembled from.
//!
//! Part of the model, with the contexts and `Dependency` in its signatures
//! (the one two-way tie the layout allows); it names nothing of the graph,
//! the engine or the runtime.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::context::{ReloadContext, Reloaded};
use crate::context::{StartContext, StopContext};
use crate::dependency::Dependency;
use crate::error::BoxError;
use crate::failure::{OnFailure, Restart};
use crate::phase::PhaseSet;
use crate::readiness::Readiness;

/// A part of a service with a lifecycle: it starts, reports when it is ready,
/// and stops in up to five ordered phases.
///
/// The lifecycle, in the order the runtime drives it:
///
/// 1. **`start`** runs once every [dependency](Component::dependencies) has
///    started *and* reported ready (and again after a restart, for
///    [restartable](Component::restartable) components). Independent components start concurrently.
///    Acquire resources here; an error (or a timeout, or a panic) stops the
///    start and rolls back exactly the components that had started.
/// 2. **`ready`** is polled until it reports [`Readiness::Ready`] before
///    dependents start, and afterwards by readiness probes. It is separate
///    from "start returned": a cache may be started but still warming.
/// 3. On shutdown, readiness flips to not-ready for the whole app, then the
///    five stop hooks run phase by phase — every component's phase 1 before any
///    phase 2 — and within a phase dependents stop before their dependencies:
///    [`stop_accepting`](Component::stop_accepting),
///    [`drain`](Component::drain),
///    [`stop_workers`](Component::stop_workers),
///    [`flush`](Component::flush),
///    [`close`](Component::close).
///
/// Every hook has a no-op default, and a component joins only the stop phases
/// it overrides: a phase it does not override costs nothing and produces no
/// events. Each hook runs under a budget; one that overruns is abandoned and
/// named, and the shutdown goes on.
///
/// Hooks must not block the thread (use `tokio::task::spawn_blocking`): a
/// blocked thread delays its phase, and past the shutdown deadline the
/// process is ended by the watchdog.
///
/// Implement it with `#[orderly_core::component]` (which applies `async_trait` and
/// records which stop hooks the impl defines); plain `#[async_trait]` works
/// too, at the cost of calling the no-op hooks.
///
/// ```
/// use orderly_core::{BoxError, Component, StartContext, StopContext, StopPhase, phase::PhaseSet};
///
/// struct Greeter;
///
/// #[orderly_core::component]
/// impl Component for Greeter {
///     async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
///         slog::info!(ctx.logger(), "hello");
///         Ok(())
///     }
///
///     async fn close(&self, _ctx: &StopContext) -> Result<(), BoxError> {
///         Ok(()) // joins phase 5 only
///     }
/// }
///
/// assert_eq!(Greeter.name(), "greeter");
/// assert_eq!(Greeter.joined_phases(), PhaseSet::of(&[StopPhase::Close]));
/// ```
#[async_trait]
pub trait Component: Any + Send + Sync {
    /// The component's name in logs, metrics, config and the graph.
    ///
    /// Defaults to the type's name in snake_case (`PgPool` → `pg_pool`).
    fn name(&self) -> &str {
        default_name::<Self>()
    }

    /// The components this one needs started and ready before it starts, and
    /// which must stop after it in every phase.
    fn dependencies(&self) -> Vec<Dependency> {
        Vec::new()
    }

    /// What a failure while running (an error or panic of a task started
    /// with [`StartContext::spawn`]) does: shut the app down (the default),
    /// restart the component along the graph, or be ignored, leaving the
    /// component degraded. Config can override it:
    /// `[components.<name>] on_failure = "ignore"`.
    fn on_failure(&self) -> OnFailure {
        OnFailure::Shutdown
    }

    /// Which ends of this component's background work restart it (OTP's
    /// restart types); `temporary`, never, by default. Config can override
    /// it: `[components.<name>] restart = "transient"`.
    fn restart(&self) -> Restart {
        Restart::Temporary
    }

    /// Whether `start` may run again after the stop hooks ran: when this
    /// component restarts, or when a dependency of it restarts (its
    /// dependents are stopped first and started again after it). A restart
    /// hands the component a fresh [`StartContext`]; its resources are
    /// provided anew.
    ///
    /// Defaults to true exactly when the component restarts on its own
    /// account in code. The runtime refuses to build a graph in which a
    /// component that may restart has a dependent that is not restartable,
    /// naming both, so no component is ever started twice unprepared.
    fn restartable(&self) -> bool {
        self.restart() != Restart::Temporary || self.on_failure() == OnFailure::Restart
    }

    /// The stop phases this component may join; the runtime does not call
    /// the hooks of the others. Generated by [`#[orderly_core::component]`](crate::component)
    /// from the hooks the impl defines — do not write it by hand. The
    /// default, every phase, is always correct, merely slower.
    fn joined_phases(&self) -> PhaseSet {
        PhaseSet::ALL
    }

    /// Whether [`ready`](Self::ready) can report anything but ready. When
    /// it cannot, a start records the component ready as soon as `start`
    /// returns, without calling it. Generated by
    /// [`#[orderly_core::component]`](crate::component) (true exactly when the
    /// impl defines `ready`) — do not write it by hand. The default, true,
    /// is always correct, merely slower.
    fn checks_readiness(&self) -> bool {
        true
    }

    /// Applies changed config on reload (SIGHUP) while running. `ctx`
    /// holds the component as built from the new config; copy from it
    /// what can change in place (a TTL, a limit) and return
    /// [`Reloaded::Applied`]. The default, [`Reloaded::NeedsRestart`], has
    /// the runtime restart the component with the new value instead, along
    /// with its dependents, which must then be
    /// [restartable](Component::restartable).
    async fn reload(&self, ctx: &ReloadContext) -> Result<Reloaded, BoxError> {
        let _ = ctx;
        Ok(Reloaded::NeedsRestart)
    }

    /// Acquire resources and begin serving. Runs after every dependency
    /// is ready. Retries and the timeout come from the component's settings.
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let _ = ctx;
        Ok(())
    }

    /// Whether the component can take traffic now. Polled until ready after
    /// `start`, and by readiness probes while running. Keep it cheap.
    async fn ready(&self) -> Readiness {
        Readiness::Ready
    }

    /// Liveness: whether the component still works at all, not whether it
    /// takes traffic now. An error says it is stuck for good (a loop that
    /// stopped making progress, a deadlocked worker) and only a new process
    /// will help: `/healthz` answers 503 and a health-gated systemd watchdog
    /// (`[systemd] watchdog = "liveness"`) stops pinging. Not ready is not
    /// dead: a component that waits for its database is alive. Asked only
    /// while the app runs, and never while the component restarts.
    async fn live(&self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Phase 1: stop accepting new work (close listeners, stop claiming jobs).
    async fn stop_accepting(&self, ctx: &StopContext) -> Result<(), BoxError> {
        ctx.mark_not_joined();
        Ok(())
    }

    /// Phase 2: drain in-flight requests.
    async fn drain(&self, ctx: &StopContext) -> Result<(), BoxError> {
        ctx.mark_not_joined();
        Ok(())
    }

    /// Phase 3: stop background workers; let the current job finish or hand it back.
    async fn stop_workers(&self, ctx: &StopContext) -> Result<(), BoxError> {
        ctx.mark_not_joined();
        Ok(())
    }

    /// Phase 4: flush buffered data (metrics, traces, logs).
    async fn flush(&self, ctx: &StopContext) -> Result<(), BoxError> {
        ctx.mark_not_joined();
        Ok(())
    }

    /// Phase 5: close external connections (database, cache, queues).
    async fn close(&self, ctx: &StopContext) -> Result<(), BoxError> {
        ctx.mark_not_joined();
        Ok(())
    }
}

/// The default name of a component type: the last path segment of its type
/// name, without generics, in snake_case. Interned, so it is computed once.
pub fn default_name<T: ?Sized + 'static>() -> &'static str {
    static NAMES: RwLock<Option<HashMap<TypeId, &'static str>>> = RwLock::new(None);
    let id = TypeId::of::<T>();
    if let Some(name) = NAMES.read().as_ref().and_then(|m| m.get(&id).copied()) {
        return name;
    }
    let name: &'static str = Box::leak(snake_case(short_type_name(std::any::type_name::<T>())).into_boxed_str());
    NAMES.write().get_or_insert_with(HashMap::new).entry(id).or_insert(name)
}

fn short_type_name(full: &str) -> &str {
    let without_generics = full.split('<').next().unwrap_or(full);
    without_generics.rsplit("::").next().unwrap_or(without_generics)
}

fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower = i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Debug for dyn Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Component").field("name", &self.name()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct PgPool;
    #[async_trait]
    impl Component for PgPool {}

    struct HTTPServer<T>(T);
    #[async_trait]
    impl<T: Send + Sync + 'static> Component for HTTPServer<T> {}

    #[test]
    fn default_name_is_snake_case_of_the_type() {
        assert_eq!(PgPool.name(), "pg_pool");
        assert_eq!(HTTPServer(1u8).name(), "http_server");
        assert_eq!(snake_case("Cache2Warm"), "cache2_warm");
    }

    #[test]
    fn default_name_is_interned() {
        assert!(std::ptr::eq(default_name::<PgPool>(), default_name::<PgPool>()));
    }

    #[test]
    fn degraded_counts_as_ready() {
        assert!(Readiness::Degraded("redis down".into()).is_ready());
        assert!(!Readiness::NotReady("warming".into()).is_ready());
    }
}
