//! The orders' business metrics, on the runtime's registry beside the
//! framework's own.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// Counters of what the orders API did.
#[derive(Clone)]
pub struct OrderMetrics {
    /// `orders_created_total`: new orders stored.
    pub created: IntCounter,
    /// `orders_idempotent_replays_total`: retried creates answered with the first order.
    pub replayed: IntCounter,
    /// `orders_rejected_total{reason}`: creates refused (`validation`, `key_reused`).
    pub rejected: IntCounterVec,
    /// `order_confirmations_total`: confirmation jobs whose writes succeeded (their commit follows).
    pub confirmations: IntCounter,
}

impl OrderMetrics {
    /// Registers the counters on `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self {
            created: IntCounter::new("orders_created_total", "Orders created.")?,
            replayed: IntCounter::new(
                "orders_idempotent_replays_total",
                "Creates retried with a known Idempotency-Key, answered with the first order.",
            )?,
            rejected: IntCounterVec::new(
                Opts::new("orders_rejected_total", "Creates refused, by reason."),
                &["reason"],
            )?,
            confirmations: IntCounter::new("order_confirmations_total", "Order confirmation jobs committed.")?,
        };
        registry.register(Box::new(metrics.created.clone()))?;
        registry.register(Box::new(metrics.replayed.clone()))?;
        registry.register(Box::new(metrics.rejected.clone()))?;
        registry.register(Box::new(metrics.confirmations.clone()))?;
        for reason in ["validation", "key_reused"] {
            metrics.rejected.with_label_values(&[reason]);
        }
        Ok(metrics)
    }
}
