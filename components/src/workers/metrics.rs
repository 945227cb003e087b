//! `jobs_total{queue,status}`, `job_duration_seconds{queue,kind}`,
//! `jobs_in_flight{queue}` and `queue_depth{queue}`.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::metrics::{register, MetricsError};

#[derive(Clone)]
pub(crate) struct WorkerMetrics {
    pub(crate) jobs: IntCounterVec,
    pub(crate) duration: HistogramVec,
    pub(crate) in_flight: IntGaugeVec,
    pub(crate) depth: IntGaugeVec,
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
        })
    }
}
