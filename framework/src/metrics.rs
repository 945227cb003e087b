//! Lifecycle metrics, registered on the runtime's own Prometheus registry
//! (never the process-global one, so parallel tests do not collide).

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

use crate::events::{EventKind, EventSink, LifecycleEvent};
use crate::phase::Phase;

/// Buckets from 1 ms to 30 s: hooks span connection set-up to full drains.
const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Turns lifecycle events into Prometheus metrics:
///
/// - `orderly_component_start_seconds{component}`: `start`, retries included;
/// - `orderly_component_ready_seconds{component}`: from `start` returning to ready;
/// - `orderly_shutdown_phase_seconds{phase}`: each stop phase;
/// - `orderly_component_stop_seconds{component,phase}`: each stop hook, also when it failed or was abandoned;
/// - `orderly_lifecycle_events_total{event}`: every transition.
pub struct LifecycleMetrics {
    start: HistogramVec,
    ready: HistogramVec,
    phase: HistogramVec,
    stop: HistogramVec,
    /// Resolved once per kind, so counting an event does no label hashing.
    events: Vec<IntCounter>,
}

impl LifecycleMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let histogram = |name: &str, help: &str, labels: &[&str]| -> Result<HistogramVec, prometheus::Error> {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()), labels)?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let start = histogram(
            "orderly_component_start_seconds",
            "Time a component's start took, retries included.",
            &["component"],
        )?;
        let ready = histogram(
            "orderly_component_ready_seconds",
            "Time from a component's start returning to it reporting ready.",
            &["component"],
        )?;
        let phase = histogram("orderly_shutdown_phase_seconds", "Time each stop phase took.", &["phase"])?;
        let stop = histogram(
            "orderly_component_stop_seconds",
            "Time a component's stop hook took, per phase.",
            &["component", "phase"],
        )?;
        let events_vec = IntCounterVec::new(
            Opts::new("orderly_lifecycle_events_total", "Lifecycle transitions, by event."),
            &["event"],
        )?;
        registry.register(Box::new(events_vec.clone()))?;
        let events = EventKind::ALL.iter().map(|k| events_vec.with_label_values(&[k.as_str()])).collect();
        Ok(Self { start, ready, phase, stop, events })
    }
}

impl EventSink for LifecycleMetrics {
    fn on_event(&self, e: &LifecycleEvent) {
        if let Some(counter) = EventKind::ALL.iter().position(|k| *k == e.event).and_then(|i| self.events.get(i)) {
            counter.inc();
        }
        let Some(elapsed) = e.elapsed.map(|d| d.as_secs_f64()) else { return };
        let component = e.component.as_deref().unwrap_or("app");
        match (e.event, e.phase) {
            (EventKind::Started, _) => self.start.with_label_values(&[component]).observe(elapsed),
            (EventKind::Ready, _) => self.ready.with_label_values(&[component]).observe(elapsed),
            (EventKind::PhaseFinished, Some(Phase::Stop(p))) => {
                self.phase.with_label_values(&[p.as_str()]).observe(elapsed)
            }
            (
                EventKind::Stopped | EventKind::Failed | EventKind::TimedOut | EventKind::Panicked,
                Some(Phase::Stop(p)),
            ) => self.stop.with_label_values(&[component, p.as_str()]).observe(elapsed),
            _ => {}
        }
    }
}
