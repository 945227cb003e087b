//! What a hook receives: its name, its logger, typed access to what it
//! declared, and the means to report trouble.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;

use crate::supervise::Ended;

use crate::component::{BoxError, Component};
use crate::failure::Supervision;
use crate::graph::Graph;
use crate::phase::StopPhase;
use crate::restart::Condition;
use crate::runtime::Shared;
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

type AnyArc = Arc<dyn Any + Send + Sync>;

/// Resources that components provide during `start`, by type.
#[derive(Default)]
pub(crate) struct Resources {
    by_type: RwLock<HashMap<TypeId, Vec<(usize, AnyArc)>>>,
}

impl Resources {
    /// Forgets what the marked components provided: they were stopped for
    /// a restart, and provide anew when they start again.
    pub(crate) fn withdraw(&self, providers: &[bool]) {
        for provided in self.by_type.write().values_mut() {
            provided.retain(|(j, _)| !providers[*j]);
        }
    }
}

/// The context of a component's `start`.
pub struct StartContext {
    pub(crate) index: usize,
    /// One reference to everything the runtime shares, rather than one per part:
    /// contexts are made per component, on the start path.
    pub(crate) shared: Arc<Shared>,
}

impl StartContext {
    /// This component's name.
    pub fn name(&self) -> &str {
        &self.shared.graph.nodes[self.index].name
    }

    /// A logger whose records carry `component = <name>`.
    pub fn logger(&self) -> &slog::Logger {
        &self.shared.loggers[self.index]
    }

    /// The runtime's Prometheus registry, for this component's own metrics.
    pub fn metrics_registry(&self) -> &prometheus::Registry {
        &self.shared.registry
    }

    /// The app's shutdown handle, for fatal errors and admin requests.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shared.shutdown
    }

    /// The app's lifecycle: health for probes, the timeline, the graph.
    pub fn lifecycle(&self) -> crate::Lifecycle {
        crate::Lifecycle::of(&self.shared)
    }

    fn graph(&self) -> &Graph {
        &self.shared.graph
    }

    /// The declared dependency of type `T`, which has started and is ready.
    pub fn dependency<T: Component>(&self) -> Result<Arc<T>, AccessError> {
        let requested = std::any::type_name::<T>();
        let of_type = |j: &usize| {
            let any: AnyArc = self.graph().nodes[*j].component();
            any.downcast::<T>().ok()
        };
        // Declared dependencies first: the common case costs only their number.
        if let Some(found) = self.graph().dependencies[self.index].iter().find_map(of_type) {
            return Ok(found);
        }
        let component = self.name().to_string();
        Err(match (0..self.graph().len()).find(|j| of_type(j).is_some()) {
            Some(j) => {
                AccessError::NotDeclared { component, requested, provider: self.graph().nodes[j].name.to_string() }
            }
            None => AccessError::NotFound { component, requested },
        })
    }

    /// A resource of type `R` that one of the declared dependencies provided
    /// with [`provide`](StartContext::provide) — for example `Arc<PgPool>`.
    pub fn resource<R: Any + Send + Sync>(&self) -> Result<Arc<R>, AccessError> {
        let requested = std::any::type_name::<R>();
        let declared = &self.graph().dependencies[self.index];
        let by_type = self.shared.resources.by_type.read();
        let providers = by_type.get(&TypeId::of::<R>()).map(Vec::as_slice).unwrap_or_default();
        let mut matching = providers.iter().filter(|(j, _)| declared.contains(j));
        match (matching.next(), matching.next()) {
            (Some((_, value)), None) => value
                .clone()
                .downcast::<R>()
                .map_err(|_| AccessError::NotFound { component: self.name().to_string(), requested }),
            (Some(_), Some(_)) => Err(AccessError::Ambiguous {
                component: self.name().to_string(),
                requested,
                providers: providers
                    .iter()
                    .filter(|(j, _)| declared.contains(j))
                    .map(|(j, _)| self.graph().nodes[*j].name.to_string())
                    .collect(),
            }),
            (None, _) => Err(match providers.first() {
                Some((j, _)) => AccessError::NotDeclared {
                    component: self.name().to_string(),
                    requested,
                    provider: self.graph().nodes[*j].name.to_string(),
                },
                None => AccessError::NotFound { component: self.name().to_string(), requested },
            }),
        }
    }

    /// Offers a resource to the components that depend on this one.
    pub fn provide<R: Any + Send + Sync>(&self, resource: Arc<R>) {
        self.shared.resources.by_type.write().entry(TypeId::of::<R>()).or_default().push((self.index, resource));
    }

    /// Runs `task` in the background under supervision. If it returns an
    /// error or panics, the component's failure policy applies (see
    /// [`OnFailure`](crate::OnFailure) and [`Restart`](crate::Restart)):
    /// by default the app shuts down gracefully and exits non-zero, naming
    /// this component; it may instead be restarted along the graph, or the
    /// failure ignored and the component reported degraded. A `permanent`
    /// component is also restarted when the task returns `Ok`. Errors of
    /// background work are never silent.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let shared = self.shared.clone();
        let index = self.index;
        let generation = shared.graph.nodes[index].supervised.generation();
        let inner = tokio::spawn(task);
        tokio::spawn(async move {
            let end = match crate::supervise::join(inner).await {
                Ended::Returned(Ok(())) => TaskEnd::Finished,
                Ended::Returned(Err(error)) => TaskEnd::Failed(crate::events::box_error_chain(&error)),
                Ended::Panicked(message) => TaskEnd::Failed(format!("background task panicked: {message}")),
                // Aborted on purpose by its owner (a background task has no limit).
                Ended::Aborted | Ended::OverLimit => return,
            };
            task_ended(&shared, index, generation, end);
        })
    }
}

/// How a supervised background task ended.
enum TaskEnd {
    /// It returned `Ok`.
    Finished,
    /// It returned an error or panicked; the error chain or panic message.
    Failed(String),
}

/// Applies a component's failure policy to the end of one of its background
/// tasks, started in its run `generation`.
fn task_ended(shared: &Arc<Shared>, index: usize, generation: u64, end: TaskEnd) {
    let node = &shared.graph.nodes[index];
    let (error, restart) = match (end, node.supervision) {
        (TaskEnd::Finished, Supervision::Restart { on_clean_exit: true }) => {
            ("its background task returned, and it is permanent".to_string(), true)
        }
        (TaskEnd::Finished, _) => return,
        (TaskEnd::Failed(error), supervision) => (error, supervision.restarts()),
    };
    // During start, a failure fails the start; restarts begin once the app runs.
    if restart && shared.is_running() {
        crate::restart::request(shared, index, generation, error);
        return;
    }
    match node.supervision {
        Supervision::Ignore => {
            *node.supervised.condition.lock() =
                Some(Condition::Degraded(format!("failed while running (ignored): {error}")));
            shared.events.emit(
                crate::events::EventKind::Failed
                    .build()
                    .component(&node.name)
                    .error(error)
                    .detail("on_failure = ignore: the app goes on, the component is degraded"),
            );
        }
        _ => {
            shared.shutdown.trigger(crate::ShutdownReason::ComponentFailed { component: node.name.to_string(), error });
        }
    }
}

/// The context of one stop hook.
pub struct StopContext {
    pub(crate) name: Arc<str>,
    pub(crate) phase: StopPhase,
    pub(crate) component_logger: slog::Logger,
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

    /// A logger whose records carry `component` and `phase`.
    pub fn logger(&self) -> &slog::Logger {
        self.logger.get_or_init(|| self.component_logger.new(slog::o!("phase" => self.phase.as_str())))
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
