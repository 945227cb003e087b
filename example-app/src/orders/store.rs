//! The orders' SQL. Every call goes through here, so the mapping of
//! database trouble to 503 lives in one place.

use std::sync::{Arc, LazyLock};

use deadpool_postgres::GenericClient;
use orderly_components::http::ApiError;
use orderly_components::postgres::{Database, DbError};
use orderly_components::workers::{QueueError, Workers};

use super::model::{NewItem, Order, OrderStatus, ValidOrder};

/// The job kind that confirms an order.
pub const CONFIRMATION_JOB: &str = "send_confirmation";

/// An order row with its items, timestamps as RFC 3339 UTC text.
const SELECT_ORDER: &str = "
SELECT o.id, o.customer, o.status, o.total_cents,
       to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
       to_char(o.confirmed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
       COALESCE((SELECT json_agg(json_build_object('sku', i.sku, 'quantity', i.quantity::BIGINT,
                                                   'unit_price_cents', i.unit_price_cents) ORDER BY i.position)
                 FROM order_items i WHERE i.order_id = o.id), '[]'::json)
FROM orders o";

/// One order by id.
static BY_ID: LazyLock<String> = LazyLock::new(|| format!("{SELECT_ORDER} WHERE o.id = $1"));

/// A page of orders below a cursor, newest first; one more than asked, to know if more follow.
static PAGE: LazyLock<String> =
    LazyLock::new(|| format!("{SELECT_ORDER} WHERE ($1::BIGINT IS NULL OR o.id < $1) ORDER BY o.id DESC LIMIT $2"));

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database (or the fault injected in its place) is unavailable.
    #[error("{0}")]
    Db(#[from] DbError),
    /// Enqueueing the confirmation failed.
    #[error("enqueueing the confirmation: {0}")]
    Queue(#[from] QueueError),
    /// A stored row did not have the shape this code expects.
    #[error("order {id} is malformed in the database: {reason}")]
    Malformed {
        /// The order.
        id: i64,
        /// What was wrong.
        reason: String,
    },
    /// An idempotency key came back with a different order.
    #[error("the Idempotency-Key was already used for a different order")]
    KeyReused,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        StoreError::Db(DbError::Query(error))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Db(e) => e.into(),
            StoreError::Queue(QueueError::Unavailable(_)) => {
                ApiError::unavailable("the job queue is unavailable; try again", std::time::Duration::from_secs(1))
            }
            StoreError::Queue(QueueError::Query { source, .. }) => ApiError::from(DbError::Query(source)),
            StoreError::KeyReused => ApiError::new(
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different order; use a new key",
            ),
            other => ApiError::internal(other),
        }
    }
}

/// What creating an order did.
pub enum Created {
    /// A new order, with its confirmation job enqueued.
    New(Order),
    /// A retry: the order first created with this idempotency key.
    Replayed(Order),
}

/// The orders in Postgres.
pub struct OrderStore {
    database: Arc<Database>,
    workers: Arc<Workers>,
}

fn order_from(row: &tokio_postgres::Row) -> Result<Order, StoreError> {
    let id: i64 = row.try_get(0)?;
    let malformed = |reason: String| StoreError::Malformed { id, reason };
    let status: String = row.try_get(2)?;
    let items: serde_json::Value = row.try_get(6)?;
    Ok(Order {
        id,
        customer: row.try_get(1)?,
        status: OrderStatus::parse(&status).ok_or_else(|| malformed(format!("status `{status}`")))?,
        total_cents: row.try_get(3)?,
        items: serde_json::from_value::<Vec<NewItem>>(items).map_err(|e| malformed(e.to_string()))?,
        created_at: row.try_get(4)?,
        confirmed_at: row.try_get(5)?,
    })
}

impl OrderStore {
    /// A store over the database, enqueueing on the workers' queue.
    pub fn new(database: Arc<Database>, workers: Arc<Workers>) -> Self {
        Self { database, workers }
    }

    /// A connection from the pool.
    pub async fn connection(&self) -> Result<deadpool_postgres::Object, DbError> {
        self.database.get().await
    }

    /// Stores an order and enqueues its confirmation in one transaction. With
    /// an idempotency key already used for the same order, returns that one.
    pub async fn create(&self, order: &ValidOrder, idempotency_key: Option<&str>) -> Result<Created, StoreError> {
        let mut client = self.connection().await?;
        let tx = client.transaction().await?;
        let fingerprint = idempotency_key.map(|_| order.fingerprint());
        let inserted = tx
            .query_opt(
                "INSERT INTO orders (customer, total_cents, idempotency_key, request_body) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
                &[&order.customer, &order.total_cents, &idempotency_key, &fingerprint],
            )
            .await?;
        let Some(row) = inserted else {
            // The key exists (a concurrent insert with it has committed by now).
            let row = tx
                .query_one("SELECT id, request_body FROM orders WHERE idempotency_key = $1", &[&idempotency_key])
                .await?;
            if row.try_get::<_, Option<String>>(1)? != fingerprint {
                return Err(StoreError::KeyReused);
            }
            let id: i64 = row.try_get(0)?;
            // Read in the transaction, which then rolls back: it wrote nothing.
            let existing = self.get_with(&tx, id).await?;
            return existing.map(Created::Replayed).ok_or(StoreError::Malformed { id, reason: "vanished".into() });
        };
        let id: i64 = row.try_get(0)?;
        let skus: Vec<&str> = order.items.iter().map(|i| i.sku.as_str()).collect();
        let quantities: Vec<i32> = order.items.iter().map(|i| i.quantity as i32).collect();
        let prices: Vec<i64> = order.items.iter().map(|i| i.unit_price_cents).collect();
        tx.execute(
            "INSERT INTO order_items (order_id, position, sku, quantity, unit_price_cents)
             SELECT $1, n::INT - 1, sku, quantity, price
             FROM unnest($2::TEXT[], $3::INT[], $4::BIGINT[]) WITH ORDINALITY AS t(sku, quantity, price, n)",
            &[&id, &skus, &quantities, &prices],
        )
        .await?;
        self.workers.enqueue_in(&tx, CONFIRMATION_JOB, serde_json::json!({ "order_id": id })).await?;
        let created = self.get_with(&tx, id).await?;
        tx.commit().await?;
        created.map(Created::New).ok_or(StoreError::Malformed { id, reason: "not found after insert".into() })
    }

    async fn get_with<C: GenericClient>(&self, client: &C, id: i64) -> Result<Option<Order>, StoreError> {
        // Prepared once per pooled connection, not once per query.
        let statement = client.prepare_cached(&BY_ID).await?;
        let row = client.query_opt(&statement, &[&id]).await?;
        row.as_ref().map(order_from).transpose()
    }

    /// One order.
    pub async fn get(&self, id: i64) -> Result<Option<Order>, StoreError> {
        let client = self.connection().await?;
        self.get_with(&client, id).await
    }

    /// Up to `limit` orders older than `before`, newest first, and whether more follow.
    pub async fn list(&self, limit: i64, before: Option<i64>) -> Result<(Vec<Order>, bool), StoreError> {
        let client = self.connection().await?;
        let statement = client.prepare_cached(&PAGE).await?;
        let rows = client.query(&statement, &[&before, &(limit + 1)]).await?;
        let mut orders = rows.iter().map(order_from).collect::<Result<Vec<_>, _>>()?;
        let more = orders.len() as i64 > limit;
        orders.truncate(limit as usize);
        Ok((orders, more))
    }
}
