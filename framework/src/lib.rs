//! # orderly
//!
//! Services assembled from [`Component`]s that start along their dependency
//! graph and stop in five ordered, budgeted phases.
//!
//! - A component implements one trait, [`Component`], whose hooks all
//!   default to no-ops: `start`, `ready`, and one hook per [`StopPhase`].
//! - Components register with [`register!`] and an app links their crates
//!   with [`link!`]; or a [`Runtime`] is built explicitly.
//! - The graph is validated before anything starts ([`GraphError`]).
//! - Start is concurrent along the graph, with timeouts, retries and exact
//!   rollback ([`start`](Runtime::start)).
//! - Shutdown flips readiness, waits a propagation delay, then runs the
//!   five phases in order under one deadline split into phase budgets
//!   (see the `shutdown` module's source: it reads top to bottom).
//! - Every transition is a [`LifecycleEvent`], feeding logs, Prometheus
//!   metrics and a [`Timeline`].
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use orderly::{async_trait, BoxError, Component, Runtime, ShutdownReason, StopContext};
//!
//! struct Listener;
//!
//! #[async_trait]
//! impl Component for Listener {
//!     async fn stop_accepting(&self, _ctx: &StopContext) -> Result<(), BoxError> {
//!         Ok(()) // close the listening socket here
//!     }
//! }
//!
//! let runtime = Runtime::builder().component(Listener).build()?;
//! runtime.start().await.map_err(|e| format!("{e:?}"))?;
//! let report = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
//! assert!(report.is_clean());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod app;
mod cli;
mod component;
mod config;
mod context;
mod dependency;
mod events;
mod exit;
mod graph;
mod health;
mod logging;
mod metrics;
mod phase;
mod registry;
mod retry;
mod runtime;
mod settings;
mod shutdown;
mod start;
mod supervise;
pub mod testing;
mod timeline;
mod trigger;
mod walk;

pub use app::App;
pub use async_trait::async_trait;
pub use cli::{AppInfo, Cli};
pub use component::{default_name, BoxError, Component, Permanent, Readiness};
pub use config::{ConfigErrors, ConfigIssue, ConfigSources, LoadedConfig, NoConfig, Secret, Validate, Validation};
pub use context::{AccessError, StartContext, StopContext};
pub use dependency::Dependency;
pub use events::{error_chain, EventKind, EventSink, LifecycleEvent, LogEvents};
pub use exit::ExitStatus;
pub use graph::{GraphError, GraphErrors, GraphFormat};
pub use health::{AppState, Health, ReadinessReport};
pub use logging::{build_logger, LogFormat, LogGuard, LogLevel, LogSettings};
pub use metrics::LifecycleMetrics;
pub use phase::{Phase, StopPhase};
pub use registry::{FromConfig, Linked, Registration};
pub use retry::RetryPolicy;
pub use runtime::{BuildError, RunOutcome, Runtime, RuntimeBuilder};
pub use settings::{
    ComponentOverrides, ComponentSettings, PhaseBudgets, RuntimeSettings, ShutdownSettings, StartDefaults,
};
pub use shutdown::{ShutdownReport, StopProblem};
pub use start::StartFailure;
pub use timeline::Timeline;
pub use trigger::{Shutdown, ShutdownReason};

/// Re-exports used by this crate's macros. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
}

/// The README's Rust examples, compiled as doctests so they stay true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
