//! `jobs_total{queue,status}`, `job_duration_seconds{queue,kind}`,
//! `jobs_in_flight{queue}`, `queue_depth{queue}`,
//! `queue_jobs{queue,kind,state}` and `queue_oldest_ready_seconds{queue}`.

use std::collections::BTreeSet;

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::metrics::{register, MetricsError};

#[derive(Clone)]
pub(crate) struct WorkerMetrics {
    pub(crate) jobs: IntCounterVec,
    pub(crate) duration: HistogramVec,
    pub(crate) in_flight: IntGaugeVec,
    pub(crate) depth: IntGaugeVec,
    /// Jobs in the table by kind and state (ready, scheduled, running, dead).
    pub(crate) by_state: IntGaugeVec,
    pub(crate) oldest_ready: GaugeVec,
}

impl WorkerMetrics {
    pub(crate) fn register(registry: &Registry) -> Result<Self, MetricsError> {
        Ok(Self {
            jobs: register(
                registry,
                "jobs_total",
                IntCounterVec::new(
                    Opts::new("jobs_total", "Jobs by queue and outcome: done, failed, dead, released, dropped."),
                    &["queue", "status"],
                ),
            )?,
            duration: register(
                registry,
                "job_duration_seconds",
                HistogramVec::new(
                    HistogramOpts::new("job_duration_seconds", "Time a handler ran, by queue and job kind.")
                        .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0]),
                    &["queue", "kind"],
                ),
            )?,
            in_flight: register(
                registry,
                "jobs_in_flight",
                IntGaugeVec::new(Opts::new("jobs_in_flight", "Jobs running now."), &["queue"]),
            )?,
            depth: register(
                registry,
                "queue_depth",
                IntGaugeVec::new(Opts::new("queue_depth", "Jobs waiting or leased."), &["queue"]),
            )?,
            by_state: register(
                registry,
                "queue_jobs",
                IntGaugeVec::new(
                    Opts::new(
                        "queue_jobs",
                        "Durable jobs by kind and state: ready (due now), scheduled (later), running, dead.",
                    ),
                    &["queue", "kind", "state"],
                ),
            )?,
            oldest_ready: register(
                registry,
                "queue_oldest_ready_seconds",
                GaugeVec::new(
                    Opts::new(
                        "queue_oldest_ready_seconds",
                        "How long the oldest job that is due has waited to start; 0 when none waits.",
                    ),
                    &["queue"],
                ),
            )?,
        })
    }

    /// Sets the per-kind gauges of `queue` to `jobs`, and removes the
    /// series of kinds and states that have no job any more, so a drained
    /// queue reads as absent rather than as its last count. Returns the
    /// series now set, for the next call.
    pub(crate) fn set_jobs(
        &self,
        queue: &str,
        jobs: &[(String, String, i64)],
        previous: BTreeSet<(String, String)>,
    ) -> BTreeSet<(String, String)> {
        let current: BTreeSet<(String, String)> = jobs.iter().map(|(k, s, _)| (k.clone(), s.clone())).collect();
        for (kind, state) in previous.difference(&current) {
            let _ = self.by_state.remove_label_values(&[queue, kind, state]);
        }
        for (kind, state, count) in jobs {
            self.by_state.with_label_values(&[queue, kind, state]).set(*count);
        }
        current
    }
}
