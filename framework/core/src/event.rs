//! The lifecycle as one stream of events.
//!
//! Every transition — a component starting, becoming ready, stopping in a
//! phase, failing, being abandoned — is one [`LifecycleEvent`]. The log
//! output, the Prometheus metrics and the in-memory [`Timeline`](crate::timeline::Timeline)
//! are all [`EventSink`]s fed from the same stream, so they never disagree.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::phase::Phase;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A component's `start` began.
    Starting,
    /// A component's `start` failed and will be tried again after a backoff.
    Retrying,
    /// A component's `start` returned `Ok`.
    Started,
    /// A component reported ready after starting.
    Ready,
    /// A component waiting to become ready after `start`, with its reason
    /// (once per distinct reason).
    NotReady,
    /// The whole app reports not ready from now on: a shutdown began. The
    /// first step of every shutdown, before the propagation delay.
    ReadinessWithdrawn,
    /// A component's start was cancelled because another component failed or
    /// a shutdown was requested. It never started, so it is not stopped.
    Cancelled,
    /// A shutdown was requested; `detail` says by whom and why.
    ShutdownRequested,
    /// A stop phase began.
    PhaseStarted,
    /// A component's hook for a phase began.
    Stopping,
    /// A component's hook for a phase returned `Ok`.
    Stopped,
    /// A hook returned an error; `error` has the chain.
    Failed,
    /// A hook panicked; `error` has the panic message.
    Panicked,
    /// A hook overran its timeout or cap and was abandoned (its task aborted).
    TimedOut,
    /// A component's hook never ran because its phase ran out of budget.
    Skipped,
    /// A stop phase ended.
    PhaseFinished,
    /// A component that had started was stopped again because start failed.
    RolledBack,
    /// The shutdown ended; `detail` says whether it was clean.
    ShutdownFinished,
    /// A component failed while running and is being restarted, with its
    /// dependents; `error` has the cause, `detail` the count and who stops.
    Restarting,
    /// A restarted component and its dependents are ready again; `elapsed`
    /// runs from the failure.
    Restarted,
    /// A component failed more often than its restart limit allows; the app
    /// shuts down. `error` has the restart history.
    RestartLimitExceeded,
    /// A component took new config on reload; `detail` says whether in
    /// place or by a restart (with whom).
    Reloaded,
    /// A component did not take new config on reload; `error` says why. Its
    /// old config still runs.
    ReloadFailed,
    /// A run of a component ended (its stop phases were over, or a start
    /// attempt failed) while background tasks it spawned still ran: they
    /// were cancelled, and aborted if still running at its cap. `detail`
    /// says how many of each.
    TasksEnded,
}

impl EventKind {
    /// Every kind, for pre-registering metrics.
    pub(crate) const ALL: [EventKind; 24] = [
        EventKind::Starting,
        EventKind::Retrying,
        EventKind::Started,
        EventKind::Ready,
        EventKind::NotReady,
        EventKind::ReadinessWithdrawn,
        EventKind::Cancelled,
        EventKind::ShutdownRequested,
        EventKind::PhaseStarted,
        EventKind::Stopping,
        EventKind::Stopped,
        EventKind::Failed,
        EventKind::Panicked,
        EventKind::TimedOut,
        EventKind::Skipped,
        EventKind::PhaseFinished,
        EventKind::RolledBack,
        EventKind::ShutdownFinished,
        EventKind::Restarting,
        EventKind::Restarted,
        EventKind::RestartLimitExceeded,
        EventKind::Reloaded,
        EventKind::ReloadFailed,
        EventKind::TasksEnded,
    ];

    /// The kind's position in [`EventKind::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The snake_case name used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Starting => "starting",
            EventKind::Retrying => "retrying",
            EventKind::Started => "started",
            EventKind::Ready => "ready",
            EventKind::NotReady => "not_ready",
            EventKind::ReadinessWithdrawn => "readiness_withdrawn",
            EventKind::Cancelled => "cancelled",
            EventKind::ShutdownRequested => "shutdown_requested",
            EventKind::PhaseStarted => "phase_started",
            EventKind::Stopping => "stopping",
            EventKind::Stopped => "stopped",
            EventKind::Failed => "failed",
            EventKind::Panicked => "panicked",
            EventKind::TimedOut => "timed_out",
            EventKind::Skipped => "skipped",
            EventKind::PhaseFinished => "phase_finished",
            EventKind::RolledBack => "rolled_back",
            EventKind::ShutdownFinished => "shutdown_finished",
            EventKind::Restarting => "restarting",
            EventKind::Restarted => "restarted",
            EventKind::RestartLimitExceeded => "restart_limit_exceeded",
            EventKind::Reloaded => "reloaded",
            EventKind::ReloadFailed => "reload_failed",
            EventKind::TasksEnded => "tasks_ended",
        }
    }

    /// Whether this kind reports a problem.
    pub fn is_problem(self) -> bool {
        matches!(self, EventKind::Failed | EventKind::Panicked | EventKind::TimedOut | EventKind::Skipped)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One lifecycle transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LifecycleEvent {
    /// When, measured from the runtime's creation.
    #[serde(serialize_with = "as_seconds")]
    pub at: Duration,
    /// The component, or `None` for app-wide events (phases, shutdown).
    pub component: Option<Arc<str>>,
    /// The lifecycle phase, where one applies.
    pub phase: Option<Phase>,
    /// What happened.
    pub event: EventKind,
    /// How long the step took, on events that end a step.
    #[serde(serialize_with = "as_optional_seconds")]
    pub elapsed: Option<Duration>,
    /// The error chain, outermost first, joined with ": ".
    pub error: Option<String>,
    /// Free text: a shutdown's reason, a retry's attempt number.
    pub detail: Option<String>,
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn as_optional_seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

/// Something that consumes lifecycle events: a logger, metrics, a timeline,
/// or a test. Called synchronously on the lifecycle's path, so keep it fast.
pub trait EventSink: Send + Sync {
    /// Receives one event.
    fn on_event(&self, event: &LifecycleEvent);
}

/// A small builder so call sites name only the fields that apply.
pub(crate) struct EventBuilder {
    pub(crate) at: Option<Instant>,
    pub(crate) component: Option<Arc<str>>,
    pub(crate) phase: Option<Phase>,
    pub(crate) event: EventKind,
    pub(crate) elapsed: Option<Duration>,
    pub(crate) error: Option<String>,
    pub(crate) detail: Option<String>,
}

impl EventKind {
    pub(crate) fn build(self) -> EventBuilder {
        EventBuilder { at: None, component: None, phase: None, event: self, elapsed: None, error: None, detail: None }
    }
}

impl EventBuilder {
    pub(crate) fn component(mut self, name: &Arc<str>) -> Self {
        self.component = Some(name.clone());
        self
    }
    pub(crate) fn phase(mut self, phase: Phase) -> Self {
        self.phase = Some(phase);
        self
    }
    pub(crate) fn elapsed(mut self, elapsed: Duration) -> Self {
        self.elapsed = Some(elapsed);
        self
    }
    pub(crate) fn error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
    /// Stamps the event with an earlier instant than its emission.
    pub(crate) fn at(mut self, at: Instant) -> Self {
        self.at = Some(at);
        self
    }
}

/// Writes every event to a slog logger, with `component`, `phase`, `event`
/// and `elapsed_ms` keys. Problems log at warning or error, the rest at info.
pub struct LogEvents {
    logger: slog::Logger,
}

impl LogEvents {
    /// Logs events to `logger`.
    pub fn new(logger: slog::Logger) -> Self {
        Self { logger }
    }
}

impl EventSink for LogEvents {
    fn on_event(&self, e: &LifecycleEvent) {
        // The message is formatted lazily and the fields borrowed: a logger
        // that discards the record costs almost nothing.
        let fields = EventFields(e);
        let logger = &self.logger;
        match e.event {
            EventKind::Failed | EventKind::Panicked | EventKind::RestartLimitExceeded => {
                slog::error!(logger, "lifecycle {}", e.event.as_str(); fields)
            }
            EventKind::TimedOut
            | EventKind::Skipped
            | EventKind::Retrying
            | EventKind::Cancelled
            | EventKind::Restarting
            | EventKind::ReloadFailed
            | EventKind::TasksEnded => {
                slog::warn!(logger, "lifecycle {}", e.event.as_str(); fields)
            }
            _ => slog::info!(logger, "lifecycle {}", e.event.as_str(); fields),
        }
    }
}

/// An event's fields as log keys; fields that do not apply are left out
/// rather than logged as null.
struct EventFields<'a>(&'a LifecycleEvent);

impl slog::KV for EventFields<'_> {
    fn serialize(&self, _: &slog::Record<'_>, s: &mut dyn slog::Serializer) -> slog::Result {
        let e = self.0;
        if let Some(detail) = &e.detail {
            s.emit_str("detail", detail)?;
        }
        if let Some(error) = &e.error {
            s.emit_str("error", error)?;
        }
        if let Some(elapsed) = e.elapsed {
            s.emit_f64("elapsed_ms", elapsed.as_secs_f64() * 1000.0)?;
        }
        if let Some(phase) = e.phase {
            s.emit_str("phase", phase.as_str())?;
        }
        s.emit_str("event", e.event.as_str())?;
        s.emit_str("component", e.component.as_deref().unwrap_or("app"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_listed_in_declaration_order() {
        for (i, kind) in EventKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind}");
        }
    }

    #[test]
    fn event_serializes_with_seconds() {
        let e = LifecycleEvent {
            at: Duration::from_millis(1500),
            component: Some("db".into()),
            phase: Some(Phase::Start),
            event: EventKind::Started,
            elapsed: Some(Duration::from_millis(250)),
            error: None,
            detail: None,
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["at"], 1.5);
        assert_eq!(json["elapsed"], 0.25);
        assert_eq!(json["event"], "started");
        assert_eq!(json["phase"], "start");
    }
}
