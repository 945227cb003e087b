//! The handlers of `/api/v1/orders`. Each is annotated for the OpenAPI
//! document (see [`crate::openapi`]), so the document is generated from the
//! same code that serves.

use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use orderly_components::cache::Cache;
use orderly_components::http::ApiError;

use super::cache_key;
use super::metrics::OrderMetrics;
use super::model::{self, ErrorBody, NewOrder, Order, OrderPage};
use super::store::{Created, OrderStore};

/// The idempotency key header.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// The longest idempotency key.
const MAX_IDEMPOTENCY_KEY: usize = 200;
/// The page size without `limit`.
pub const DEFAULT_LIMIT: i64 = 20;
/// The largest page.
pub const MAX_LIMIT: i64 = 100;

/// What the handlers share.
pub struct OrdersApi {
    pub(super) store: OrderStore,
    pub(super) cache: Arc<Cache>,
    pub(super) metrics: OrderMetrics,
    pub(super) ttls: Arc<super::CacheTtls>,
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else { return Ok(None) };
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key.to_owned()))
        }
        _ => Err(ApiError::bad_request(format!(
            "{IDEMPOTENCY_KEY} must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        ))),
    }
}

/// Creates an order and enqueues its confirmation.
#[utoipa::path(
    post,
    path = "/api/v1/orders",
    tag = "orders",
    request_body = NewOrder,
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[!-~]+$",
         description = "Retrying a create with the same key returns the first order instead of a duplicate (1 to 200 visible ASCII characters)."),
    ),
    responses(
        (status = 201, description = "Created (or, with a known Idempotency-Key, the order first created with it; then `Idempotent-Replayed: true`)", body = Order),
        (status = 400, description = "Malformed JSON or invalid fields; `error.details` lists every invalid field", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 413, description = "Body larger than http.max_body_bytes", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "The Idempotency-Key was used for a different order", body = ErrorBody),
        (status = 429, description = "This API key (or, without one, this client address) is over its rate limit (http.rate_limit); retry after Retry-After seconds", body = ErrorBody),
        (status = 503, description = "The database is unavailable, the server is overloaded or shutting down; retry", body = ErrorBody),
        (status = 504, description = "The request ran past http.request_timeout", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn create_order(
    req: HttpRequest,
    body: web::Json<serde_json::Value>,
    api: web::Data<OrdersApi>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let order = model::validate(&body).map_err(|problems| {
        api.metrics.rejected.with_label_values(&["validation"]).inc();
        let count = problems.len();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            format!("{count} field{} invalid", if count == 1 { " is" } else { "s are" }),
        )
        .with_details(serde_json::to_value(problems).unwrap_or_default())
    })?;
    let created = api.store.create(&order, key.as_deref()).await.inspect_err(|e| {
        if matches!(e, super::store::StoreError::KeyReused) {
            api.metrics.rejected.with_label_values(&["key_reused"]).inc();
        }
    })?;
    let (order, replayed) = match created {
        Created::New(order) => {
            api.metrics.created.inc();
            (order, false)
        }
        Created::Replayed(order) => {
            api.metrics.replayed.inc();
            (order, true)
        }
    };
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, format!("/api/v1/orders/{}", order.id)));
    if replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(response.json(order))
}

/// Parses an order id from the path: a positive integer, else 400.
fn order_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_request("an order id is a positive integer"))
}

/// Reads a cursor: the id the next page starts below. Any id the documented
/// pattern allows is accepted; one past the largest id means "from the top".
fn cursor(raw: &str) -> Result<i64, ApiError> {
    let invalid = || ApiError::bad_request("cursor must be a next_cursor from a previous page");
    if raw.is_empty() || raw.len() > 19 || raw.starts_with('0') || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let id = raw.parse::<u64>().map_err(|_| invalid())?;
    Ok(i64::try_from(id).unwrap_or(i64::MAX))
}

/// One order, served through the cache.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{id}",
    tag = "orders",
    params(("id" = i64, Path, minimum = 1, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 400, description = "The id is not a positive integer", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 429, description = "This API key (or, without one, this client address) is over its rate limit (http.rate_limit); retry after Retry-After seconds", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry", body = ErrorBody),
        (status = 504, description = "The request ran past http.request_timeout", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn get_order(id: web::Path<String>, api: web::Data<OrdersApi>) -> Result<HttpResponse, ApiError> {
    let id = order_id(&id)?;
    let key = cache_key(id);
    // A hit is the order's JSON as it was stored: answered without decoding.
    if let Some(json) = api.cache.get_json(&key).await {
        return Ok(HttpResponse::Ok().content_type("application/json").body(web::Bytes::copy_from_slice(&json)));
    }
    let order = api.store.get(id).await?.ok_or_else(|| ApiError::not_found(format!("no order {id}")))?;
    let ttl = api.ttls.of(order.status);
    api.cache.set(&key, &order, Some(ttl)).await;
    Ok(HttpResponse::Ok().json(order))
}

/// The query of `GET /api/v1/orders`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Orders per page, 1 to 100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page (opaque).
    #[param(value_type = Option<String>, pattern = "^[1-9][0-9]{0,18}$")]
    cursor: Option<String>,
}

/// Orders, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "orders",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of orders", body = OrderPage),
        (status = 400, description = "limit or cursor is invalid", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 429, description = "This API key (or, without one, this client address) is over its rate limit (http.rate_limit); retry after Retry-After seconds", body = ErrorBody),
        (status = 503, description = "The database is unavailable; retry", body = ErrorBody),
        (status = 504, description = "The request ran past http.request_timeout", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub async fn list_orders(query: web::Query<ListQuery>, api: web::Data<OrdersApi>) -> Result<HttpResponse, ApiError> {
    let limit = match &query.limit {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("limit must be an integer from 1 to {MAX_LIMIT}")))?,
    };
    let before = match &query.cursor {
        None => None,
        Some(raw) => Some(cursor(raw)?),
    };
    let (orders, more) = api.store.list(limit, before).await?;
    let next_cursor = if more { orders.last().map(|o| o.id.to_string()) } else { None };
    Ok(HttpResponse::Ok().json(OrderPage { orders, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_follow_their_documented_pattern() {
        assert_eq!(cursor("42").unwrap(), 42);
        assert_eq!(cursor("9265410177268246167").unwrap(), i64::MAX, "19 digits are within the pattern");
        for bad in ["0", "042", "-1", "", "1e3", "99999999999999999999", "' OR 1=1"] {
            assert_eq!(cursor(bad).unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn order_ids_are_positive_integers() {
        assert_eq!(order_id("42").unwrap(), 42);
        for bad in ["0", "-1", "abc", "1.5", "99999999999999999999", "", "1;DROP TABLE orders"] {
            assert_eq!(order_id(bad).unwrap_err().status(), 400, "{bad}");
        }
    }
}
