//! The lifecycle as spans, built after the fact from the timeline: one
//! `startup` span with a child per component start, and one `shutdown`
//! span with a child per finished phase, each with a child per component.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use orderly::{events::EventKind, events::LifecycleEvent, phase::Phase, runtime::Lifecycle};

struct Recorder<'a, T: Tracer> {
    tracer: &'a T,
    epoch: SystemTime,
}

impl<T: Tracer> Recorder<'_, T>
where
    T::Span: Send + Sync + 'static,
{
    fn span(&self, name: String, from: Duration, to: Duration, parent: &Context, attributes: Vec<KeyValue>) -> Context {
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(self.epoch + from)
            .with_attributes(attributes)
            .start_with_context(self.tracer, parent);
        let context = parent.with_span(span);
        context.span().end_with_timestamp(self.epoch + to);
        context
    }
}

/// Pairs each component's begin event with its end event, in order.
fn pairs<'e>(
    events: &'e [LifecycleEvent],
    begin: EventKind,
    end: &[EventKind],
    phase: Option<Phase>,
) -> Vec<(&'e str, Duration, Duration, EventKind)> {
    let mut open: HashMap<&str, Duration> = HashMap::new();
    let mut out = Vec::new();
    for event in events.iter().filter(|e| phase.is_none() || e.phase == phase) {
        let Some(component) = event.component.as_deref() else { continue };
        if event.event == begin {
            open.insert(component, event.at);
        } else if end.contains(&event.event) {
            if let Some(from) = open.remove(component) {
                out.push((component, from, event.at, event.event));
            }
        }
    }
    out
}

pub(super) fn record<T: Tracer>(tracer: &T, lifecycle: &Lifecycle)
where
    T::Span: Send + Sync + 'static,
{
    let events = lifecycle.timeline().events();
    let recorder = Recorder { tracer, epoch: lifecycle.epoch() };
    let root = Context::new();

    let starts =
        pairs(&events, EventKind::Starting, &[EventKind::Ready, EventKind::Failed, EventKind::Cancelled], None);
    if let Some(end) = starts.iter().map(|(_, _, to, _)| *to).max() {
        let startup = recorder.span("startup".into(), Duration::ZERO, end, &root, Vec::new());
        for (component, from, to, outcome) in &starts {
            let attributes =
                vec![KeyValue::new("component", component.to_string()), KeyValue::new("outcome", outcome.as_str())];
            recorder.span(format!("start {component}"), *from, *to, &startup, attributes);
        }
    }

    let Some(requested) = events.iter().find(|e| e.event == EventKind::ShutdownRequested) else { return };
    let last = events.last().map_or(requested.at, |e| e.at);
    let reason = vec![KeyValue::new("reason", requested.detail.clone().unwrap_or_default())];
    let shutdown = recorder.span("shutdown".into(), requested.at, last, &root, reason);
    for started in events.iter().filter(|e| e.event == EventKind::PhaseStarted && e.component.is_none()) {
        let finished = events
            .iter()
            .find(|e| e.event == EventKind::PhaseFinished && e.phase == started.phase && e.component.is_none());
        let (Some(phase), Some(finished)) = (started.phase, finished) else { continue };
        let span = recorder.span(format!("phase {phase}"), started.at, finished.at, &shutdown, Vec::new());
        let stops = pairs(
            &events,
            EventKind::Stopping,
            &[EventKind::Stopped, EventKind::Failed, EventKind::Panicked, EventKind::TimedOut],
            Some(phase),
        );
        for (component, from, to, outcome) in stops {
            let attributes =
                vec![KeyValue::new("component", component.to_string()), KeyValue::new("outcome", outcome.as_str())];
            recorder.span(format!("stop {component}"), from, to, &span, attributes);
        }
    }
}
