//! Lifecycle metrics, on the runtime's own Prometheus registry (never the
//! process-global one, so parallel tests do not collide).
//!
//! Recording costs nothing on the lifecycle's path: the runtime's timeline
//! already keeps every event, so the metrics are computed from it each
//! time the registry is gathered. There are a handful of events per
//! component per process lifetime, so a scrape reads a few thousand at most.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Counter, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::Registry;

use crate::event::{EventKind, LifecycleEvent};
use crate::phase::{Phase, StopPhase};
use crate::timeline::Timeline;

/// Buckets from 1 ms to 30 s: hooks span connection set-up to full drains.
const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Turns the timeline's lifecycle events into Prometheus metrics:
///
/// - `orderly_component_start_seconds{component}`: `start`, retries included;
/// - `orderly_component_ready_seconds{component}`: from `start` returning to ready;
/// - `orderly_shutdown_phase_seconds{phase}`: each stop phase;
/// - `orderly_component_stop_seconds{component,phase}`: each stop hook, also when it failed or was abandoned;
/// - `orderly_lifecycle_events_total{event}`: every transition;
/// - `orderly_component_failures_total{component}`: failures while running
///   that the component's policy let the app survive (`on_failure = "ignore"`);
/// - `orderly_component_restarts_total{component}`: restarts begun.
pub(crate) struct LifecycleMetrics {
    timeline: Timeline,
    descs: [Desc; 7],
}

/// What a scrape reads out of the events.
#[derive(Default)]
struct Samples {
    start: Vec<(Arc<str>, f64)>,
    ready: Vec<(Arc<str>, f64)>,
    phase: Vec<(StopPhase, f64)>,
    stop: Vec<(Arc<str>, StopPhase, f64)>,
    events: [u64; EventKind::ALL.len()],
    failures: BTreeMap<Arc<str>, u64>,
    restarts: BTreeMap<Arc<str>, u64>,
}

impl Samples {
    fn of(events: &[LifecycleEvent]) -> Self {
        let mut samples = Samples::default();
        for event in events {
            samples.add(event);
        }
        samples
    }

    fn add(&mut self, e: &LifecycleEvent) {
        self.events[e.event.index()] += 1;
        match (e.event, e.phase, &e.component) {
            (EventKind::Failed, None, Some(component)) => *self.failures.entry(component.clone()).or_default() += 1,
            (EventKind::Restarting, _, Some(component)) => *self.restarts.entry(component.clone()).or_default() += 1,
            _ => {}
        }
        let Some(seconds) = e.elapsed.map(|d| d.as_secs_f64()) else { return };
        let component = || e.component.clone().unwrap_or_else(|| Arc::from("app"));
        match (e.event, e.phase) {
            (EventKind::Started, _) => self.start.push((component(), seconds)),
            (EventKind::Ready, _) => self.ready.push((component(), seconds)),
            (EventKind::PhaseFinished, Some(Phase::Stop(p))) => self.phase.push((p, seconds)),
            (
                EventKind::Stopped | EventKind::Failed | EventKind::TimedOut | EventKind::Panicked,
                Some(Phase::Stop(p)),
            ) => self.stop.push((component(), p, seconds)),
            _ => {}
        }
    }
}

impl LifecycleMetrics {
    /// Registers on `registry` the metrics of the events `timeline` keeps.
    pub(crate) fn register(registry: &Registry, timeline: Timeline) -> Result<(), prometheus::Error> {
        let desc = |name: &str, help: &str, labels: &[&str]| {
            Desc::new(name.into(), help.into(), labels.iter().map(|l| l.to_string()).collect(), Default::default())
        };
        let descs = [
            desc(
                "orderly_component_start_seconds",
                "Time a component's start took, retries included.",
                &["component"],
            )?,
            desc(
                "orderly_component_ready_seconds",
                "Time from a component's start returning to it reporting ready.",
                &["component"],
            )?,
            desc("orderly_shutdown_phase_seconds", "Time each stop phase took.", &["phase"])?,
            desc(
                "orderly_component_stop_seconds",
                "Time a component's stop hook took, per phase.",
                &["component", "phase"],
            )?,
            desc("orderly_lifecycle_events_total", "Lifecycle transitions, by event.", &["event"])?,
            desc(
                "orderly_component_failures_total",
                "Failures of a component while running that the app survived (on_failure = ignore).",
                &["component"],
            )?,
            desc(
                "orderly_component_restarts_total",
                "Restarts of a component after it failed while running (its dependents restart with it).",
                &["component"],
            )?,
        ];
        registry.register(Box::new(Self { timeline, descs }))
    }
}

impl Collector for LifecycleMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let s = self.timeline.read(Samples::of);
        let by_component =
            |samples: &[(Arc<str>, f64)]| group(samples.iter().map(|(c, v)| (vec![("component", c.to_string())], *v)));
        let start = by_component(&s.start);
        let ready = by_component(&s.ready);
        let phase = group(s.phase.iter().map(|(p, v)| (vec![("phase", p.as_str().to_string())], *v)));
        let stop = group(
            s.stop.iter().map(|(c, p, v)| (vec![("component", c.to_string()), ("phase", p.as_str().to_string())], *v)),
        );
        let events: Vec<Metric> = EventKind::ALL
            .iter()
            .zip(&s.events)
            .map(|(kind, &count)| {
                let mut counter = Counter::default();
                counter.set_value(count as f64);
                let mut metric = Metric::default();
                metric.set_label(labels(&[("event", kind.as_str().to_string())]));
                metric.set_counter(counter);
                metric
            })
            .collect();
        let failures = per_component_counters(&s.failures);
        let restarts = per_component_counters(&s.restarts);
        let d = &self.descs;
        vec![
            family(&d[0], MetricType::HISTOGRAM, start),
            family(&d[1], MetricType::HISTOGRAM, ready),
            family(&d[2], MetricType::HISTOGRAM, phase),
            family(&d[3], MetricType::HISTOGRAM, stop),
            family(&d[4], MetricType::COUNTER, events),
            family(&d[5], MetricType::COUNTER, failures),
            family(&d[6], MetricType::COUNTER, restarts),
        ]
    }
}

/// One counter per component, in name order.
fn per_component_counters(counts: &BTreeMap<Arc<str>, u64>) -> Vec<Metric> {
    counts
        .iter()
        .map(|(component, count)| {
            let mut counter = Counter::default();
            counter.set_value(*count as f64);
            let mut metric = Metric::default();
            metric.set_label(labels(&[("component", component.to_string())]));
            metric.set_counter(counter);
            metric
        })
        .collect()
}

/// One histogram per label set, in label order.
fn group(samples: impl Iterator<Item = (Vec<(&'static str, String)>, f64)>) -> Vec<Metric> {
    let mut by_labels: BTreeMap<Vec<(&'static str, String)>, Vec<f64>> = BTreeMap::new();
    for (labels, value) in samples {
        by_labels.entry(labels).or_default().push(value);
    }
    by_labels
        .into_iter()
        .map(|(label_values, values)| {
            let mut histogram = Histogram::default();
            histogram.set_sample_count(values.len() as u64);
            histogram.set_sample_sum(values.iter().sum());
            histogram.set_bucket(
                BUCKETS
                    .iter()
                    .map(|&upper| {
                        let mut bucket = Bucket::default();
                        bucket.set_upper_bound(upper);
                        bucket.set_cumulative_count(values.iter().filter(|&&v| v <= upper).count() as u64);
                        bucket
                    })
                    .collect(),
            );
            let mut metric = Metric::default();
            metric.set_label(labels(&label_values));
            metric.set_histogram(histogram);
            metric
        })
        .collect()
}

fn labels(pairs: &[(&'static str, String)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.to_string());
            pair.set_value(value.clone());
            pair
        })
        .collect()
}

fn family(desc: &Desc, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(desc.fq_name.clone());
    family.set_help(desc.help.clone());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus::{Encoder, TextEncoder};

    use super::*;

    fn event(component: &str, event: EventKind, phase: Option<Phase>, ms: u64) -> LifecycleEvent {
        LifecycleEvent {
            at: Duration::ZERO,
            component: Some(component.into()),
            phase,
            event,
            elapsed: Some(Duration::from_millis(ms)),
            error: None,
            detail: None,
        }
    }

    #[test]
    fn events_become_histograms_and_counters_in_the_text_format() {
        let registry = Registry::new();
        let timeline = Timeline::new();
        LifecycleMetrics::register(&registry, timeline.clone()).unwrap();
        timeline.record(event("db", EventKind::Started, Some(Phase::Start), 20));
        timeline.record(event("db", EventKind::Stopped, Some(Phase::Stop(StopPhase::Close)), 3));
        timeline.record(event("api", EventKind::TimedOut, Some(Phase::Stop(StopPhase::Drain)), 2000));
        let mut text = Vec::new();
        TextEncoder::new().encode(&registry.gather(), &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        for expected in [
            "orderly_component_start_seconds_bucket{component=\"db\",le=\"0.01\"} 0",
            "orderly_component_start_seconds_bucket{component=\"db\",le=\"0.05\"} 1",
            "orderly_component_start_seconds_count{component=\"db\"} 1",
            "orderly_component_stop_seconds_sum{component=\"api\",phase=\"drain\"} 2",
            "orderly_component_stop_seconds_count{component=\"db\",phase=\"close\"} 1",
            "orderly_lifecycle_events_total{event=\"timed_out\"} 1",
            "# TYPE orderly_component_stop_seconds histogram",
        ] {
            assert!(text.contains(expected), "missing {expected} in:\n{text}");
        }
    }

    #[test]
    fn two_runtimes_never_share_metrics() {
        let (a, b) = (Registry::new(), Registry::new());
        let timeline = Timeline::new();
        LifecycleMetrics::register(&a, timeline.clone()).unwrap();
        timeline.record(event("x", EventKind::Started, None, 1));
        LifecycleMetrics::register(&b, Timeline::new()).unwrap();
        let names: Vec<String> = b.gather().iter().map(|f| f.name().to_string()).collect();
        assert_eq!(names, vec!["orderly_lifecycle_events_total"], "b saw a's start sample");
    }
}
