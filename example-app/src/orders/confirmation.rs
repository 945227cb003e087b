//! The `send_confirmation` job: writes the customer's notification and
//! marks the order confirmed, in the job's own transaction, so both commit
//! with the job's completion or not at all.
//!
//! It is idempotent: a second run (which the durable queue only allows
//! after a crash rolled the first one back) finds the order confirmed and
//! the notification written, and changes nothing but the run counter,
//! `confirmation_runs`, which is there so tests can prove each order was
//! confirmed exactly once.

use std::sync::Arc;

use orderly::BoxError;
use orderly_components::cache::Cache;
use orderly_components::workers::{Job, JobContext, JobHandler};

use super::cache_key;
use super::metrics::OrderMetrics;

/// The handler of `send_confirmation` jobs.
pub struct SendConfirmation {
    pub(super) cache: Arc<Cache>,
    pub(super) metrics: OrderMetrics,
}

#[orderly::async_trait]
impl JobHandler for SendConfirmation {
    async fn run(&self, job: &Job, ctx: &JobContext<'_>) -> Result<(), BoxError> {
        let order_id = job.payload["order_id"].as_i64().ok_or("a send_confirmation job needs an order_id")?;
        let tx = ctx.transaction().ok_or("send_confirmation jobs are durable")?;
        let row = tx
            .query_opt(
                "UPDATE orders SET status = 'confirmed', confirmed_at = COALESCE(confirmed_at, now()),
                        confirmation_runs = confirmation_runs + 1
                 WHERE id = $1 RETURNING customer, total_cents",
                &[&order_id],
            )
            .await?;
        let Some(row) = row else {
            return Err(orderly::Permanent::new(format!("order {order_id} does not exist")).into());
        };
        let (customer, total): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
        let message = format!("Dear {customer}, your order {order_id} ({total} cents) is confirmed.");
        tx.execute(
            "INSERT INTO notifications (order_id, kind, message) VALUES ($1, 'order_confirmed', $2)
             ON CONFLICT (order_id, kind) DO NOTHING",
            &[&order_id, &message],
        )
        .await?;
        // The cached copy still says pending. A reader between this and the
        // commit can cache the old state again; pending entries live only
        // `orders.pending_cache_ttl`, which bounds that.
        self.cache.delete(&cache_key(order_id)).await;
        self.metrics.confirmations.inc();
        Ok(())
    }
}
