//! What a hook receives: [`StartContext`], [`StopContext`] and
//! [`ReloadContext`], with [`Reloaded`], what a reload hook answers.
//!
//! Part of the model. The contexts and the [`Component`] trait name each
//! other (the trait's signatures take the contexts): the one two-way tie
//! the layout allows. Everything else a context needs of the running app it
//! asks through [`Host`](crate::host), so it names nothing above the model.

use std::any::{Any, TypeId};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::component::Component;
use crate::error::{box_error_chain, panic_message, BoxError};
use crate::host::{Host, TaskEnd};
use crate::lifecycle::Lifecycle;
use crate::phase::StopPhase;
use crate::trigger::Shutdown;

/// Asking for a dependency or resource went wrong. Names both sides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The component exists but was not declared as a dependency.
    #[error(
        "component `{component}` asked for `{requested}` (provided by `{provider}`) without declaring it; \
         add it to `{component}`'s dependencies()"
    )]
    NotDeclared {
        /// Who asked.
        component: String,
        /// The type asked for.
        requested: &'static str,
        /// The component that has or provides it.
        provider: String,
    },
    /// Nothing of that type exists among the components or their resources.
    #[error("component `{component}` asked for `{requested}`, but no component is or provides one")]
    NotFound {
        /// Who asked.
        component: String,
        /// The type asked for.
        requested: &'static str,
    },
    /// Several declared dependencies provide the type.
    #[error("component `{component}` asked for `{requested}`, which several dependencies provide ({})", providers.join(", "))]
    Ambiguous {
        /// Who asked.
        component: String,
        /// The type asked for.
        requested: &'static str,
        /// The candidates.
        providers: Vec<String>,
    },
}

/// The context of a component's `start`.
pub struct StartContext {
    pub(crate) index: usize,
    /// The start walk this start is part of (`walks.rs`).
    pub(crate) walk: u64,
    /// One reference to the running app rather than one per part:
    /// contexts are made per component, on the start path.
    pub(crate) host: Arc<dyn Host>,
}

impl StartContext {
    /// This component's name.
    pub fn name(&self) -> &str {
        self.host.name(self.index)
    }

    /// A logger whose records carry `component = <name>`.
    pub fn logger(&self) -> &slog::Logger {
        self.host.logger(self.index)
    }

    /// The runtime's Prometheus registry, for this component's own metrics.
    pub fn metrics_registry(&self) -> &prometheus::Registry {
        self.host.metrics_registry()
    }

    /// The app's shutdown handle, for fatal errors and admin requests.
    pub fn shutdown(&self) -> &Shutdown {
        self.host.shutdown()
    }

    /// The app's lifecycle: health for probes, the timeline, the graph.
    pub fn lifecycle(&self) -> Lifecycle {
        self.host.lifecycle()
    }

    /// The declared dependency of type `T`, which has started and is ready.
    pub fn dependency<T: Component>(&self) -> Result<Arc<T>, AccessError> {
        let requested = std::any::type_name::<T>();
        // A disabled component is in the graph, but is nobody's dependency.
        let of_type = |j: &usize| self.host.enabled(*j).then(|| self.host.instance(*j).downcast::<T>().ok()).flatten();
        // Declared dependencies first: the common case costs only their number.
        if let Some(found) = self.host.declared(self.index).iter().find_map(of_type) {
            return Ok(found);
        }
        let component = self.name().to_string();
        Err(match (0..self.host.len()).find(|j| of_type(j).is_some()) {
            Some(j) => AccessError::NotDeclared { component, requested, provider: self.host.name(j).to_string() },
            None => AccessError::NotFound { component, requested },
        })
    }

    /// A resource of type `R` that one of the declared dependencies provided
    /// with [`provide`](StartContext::provide) — for example `Arc<PgPool>`.
    pub fn resource<R: Any + Send + Sync>(&self) -> Result<Arc<R>, AccessError> {
        let requested = std::any::type_name::<R>();
        let declared = self.host.declared(self.index);
        let providers = self.host.resources().of_type(TypeId::of::<R>());
        let mut matching = providers.iter().filter(|(j, _)| declared.contains(j));
        let component = || self.name().to_string();
        match (matching.next(), matching.next()) {
            (Some((_, value)), None) => {
                value.clone().downcast::<R>().map_err(|_| AccessError::NotFound { component: component(), requested })
            }
            (Some(_), Some(_)) => Err(AccessError::Ambiguous {
                component: component(),
                requested,
                providers: providers
                    .iter()
                    .filter(|(j, _)| declared.contains(j))
                    .map(|(j, _)| self.host.name(*j).to_string())
                    .collect(),
            }),
            (None, _) => Err(match providers.first() {
                Some((j, _)) => AccessError::NotDeclared {
                    component: component(),
                    requested,
                    provider: self.host.name(*j).to_string(),
                },
                None => AccessError::NotFound { component: component(), requested },
            }),
        }
    }

    /// Offers a resource to the components that depend on this one.
    pub fn provide<R: Any + Send + Sync>(&self, resource: Arc<R>) {
        self.host.resources().provide(self.index, TypeId::of::<R>(), resource);
    }

    /// Runs `task` in the background under supervision. If it returns an
    /// error or panics, the component's failure policy applies (see
    /// [`OnFailure`](crate::OnFailure) and [`Restart`](crate::Restart)):
    /// by default the app shuts down gracefully and exits non-zero, naming
    /// this component; it may instead be restarted along the graph, or the
    /// failure ignored and the component reported degraded. A `permanent`
    /// component is also restarted when the task returns `Ok`. Errors of
    /// background work are never silent.
    ///
    /// The task belongs to this run of the component: when the run ends
    /// (its stop phases are over, in a restart or the shutdown, or a start
    /// attempt failed), the runtime cancels [`cancellation`](Self::cancellation)
    /// and aborts the task if it is still running at the component's stop
    /// cap. The handle returned controls the task itself: aborting it ends
    /// the task, and that is no failure.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let host = self.host.clone();
        let index = self.index;
        let run = host.run_of(index);
        let tasks = host.run_tasks(index).clone();
        let guard = tasks.track();
        let handle = tokio::spawn(async move {
            let _guard = guard;
            let end = match AssertUnwindSafe(task).catch_unwind().await {
                Ok(Ok(())) => TaskEnd::Finished,
                Ok(Err(error)) => TaskEnd::Failed(box_error_chain(&error)),
                Err(panic) => TaskEnd::Failed(format!("background task panicked: {}", panic_message(panic.as_ref()))),
            };
            host.task_ended(index, run, end);
        });
        tasks.add_abort(handle.abort_handle());
        handle
    }

    /// This component's run: a number that a restart (or a retried start)
    /// changes. A service that keeps what its dependents give it per
    /// dependent (an HTTP server's routes) tells their runs apart by it.
    pub fn run(&self) -> u64 {
        self.host.run_of(self.index)
    }

    /// Waits until the start this one is part of has completed: `true`
    /// once every component in it started and is ready (at startup, the
    /// whole app; in a restart or a reload, the component and its
    /// dependents), `false` if it failed or a shutdown came first.
    ///
    /// A server that takes traffic only once its dependents have added
    /// their routes waits on it in a task it spawns; that works on the first
    /// start and on every restart alike, where the app's own
    /// [`Health::started`](crate::health::Health::started) has long been true.
    pub fn all_started(&self) -> impl Future<Output = bool> + Send + 'static {
        let (host, walk) = (self.host.clone(), self.walk);
        async move { host.walks().completed(walk).await }
    }

    /// The metric set `T` of this runtime: registered on the runtime's
    /// registry by `register` the first time any run of any component asks
    /// for a `T`, and the same handles on every later call. A restarted
    /// component (or a reload's replacement) thus counts on where its
    /// earlier run left off, rather than failing with `AlreadyReg` or
    /// resetting a counter.
    ///
    /// ```
    /// # use orderly_core::{BoxError, Component, StartContext};
    /// #[derive(Clone)]
    /// struct JobMetrics { done: prometheus::IntCounter }
    ///
    /// impl JobMetrics {
    ///     fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
    ///         let done = prometheus::IntCounter::new("jobs_done_total", "Jobs done.")?;
    ///         registry.register(Box::new(done.clone()))?;
    ///         Ok(Self { done })
    ///     }
    /// }
    ///
    /// struct Jobs;
    ///
    /// #[orderly_core::component]
    /// impl Component for Jobs {
    ///     async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
    ///         let metrics = ctx.metric_set(JobMetrics::register)?;
    ///         metrics.done.inc();
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn metric_set<T, E>(&self, register: impl FnOnce(&prometheus::Registry) -> Result<T, E>) -> Result<T, E>
    where
        T: Clone + Send + Sync + 'static,
    {
        self.host.metric_sets().get_or_register(self.host.metrics_registry(), register)
    }

    /// Cancelled when this run of the component ends: a task from
    /// [`spawn`](Self::spawn) that watches it can finish its current work
    /// and return before the runtime aborts it.
    pub fn cancellation(&self) -> CancellationToken {
        self.host.run_tasks(self.index).token()
    }
}

/// The context of one stop hook.
pub struct StopContext {
    pub(crate) name: Arc<str>,
    pub(crate) phase: StopPhase,
    /// The component's index, and when its hook began: the `stopping`
    /// event is announced (once) when the hook first logs, so that its own
    /// lines follow it.
    pub(crate) index: usize,
    pub(crate) began: Instant,
    pub(crate) host: Arc<dyn Host>,
    /// Made on first use: most hooks never log, and a child logger allocates.
    pub(crate) logger: std::sync::OnceLock<slog::Logger>,
    pub(crate) deadline: Instant,
    pub(crate) not_joined: AtomicBool,
}

impl StopContext {
    /// This component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The phase being run.
    pub fn phase(&self) -> StopPhase {
        self.phase
    }

    /// Whether this stop is a restart's, and this same component value
    /// starts again right after it (its dependency restarted, or it did,
    /// or a component it optionally depends on was enabled or disabled).
    /// `false` in the shutdown, when it is disabled, and when a reload puts
    /// a new value in its place.
    ///
    /// A server may then keep its listening socket open for its next run
    /// rather than close it: connections that arrive in between wait in
    /// the kernel's queue instead of being refused.
    pub fn starts_again(&self) -> bool {
        self.host.starts_again(self.index)
    }

    /// A logger whose records carry `component` and `phase`. The first
    /// call announces the hook (`stopping`), so the log reads in causal
    /// order: the runtime's line for the hook, then the hook's own.
    pub fn logger(&self) -> &slog::Logger {
        self.logger.get_or_init(|| {
            self.host.announce_stop(self.index, self.phase, self.began);
            self.host.logger(self.index).new(slog::o!("phase" => self.phase.as_str()))
        })
    }

    /// When this hook will be abandoned: its cap or the phase's end,
    /// whichever is first. A drain can cancel stragglers just before it.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Called by the default (no-op) hooks: the component does not join this phase.
    pub(crate) fn mark_not_joined(&self) {
        self.not_joined.store(true, Ordering::Relaxed);
    }

    pub(crate) fn joined(&self) -> bool {
        !self.not_joined.load(Ordering::Relaxed)
    }
}

/// What a component's [`reload`](Component::reload) hook did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reloaded {
    /// The new config is in effect; nothing is restarted.
    Applied,
    /// The change cannot be applied in place: restart the component (and
    /// its dependents) with the replacement built from the new config.
    NeedsRestart,
}

/// The context of a [`reload`](Component::reload) hook.
pub struct ReloadContext {
    pub(crate) name: Arc<str>,
    pub(crate) logger: slog::Logger,
    pub(crate) replacement: Arc<dyn Component>,
}

impl ReloadContext {
    /// This component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A logger whose records carry `component = <name>`.
    pub fn logger(&self) -> &slog::Logger {
        &self.logger
    }

    /// The component as built from the new config, to copy what can change
    /// in place from. `None` if it is not a `T`.
    pub fn replacement<T: Component>(&self) -> Option<Arc<T>> {
        let any: Arc<dyn Any + Send + Sync> = self.replacement.clone();
        any.downcast::<T>().ok()
    }
}
