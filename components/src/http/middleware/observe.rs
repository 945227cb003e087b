//! The outermost layer: what the server records about every request, in
//! one pass. It gives the request its id, starts its span, and once the
//! answer is known records the metrics and the access line, ends the span
//! and echoes the id. Each concern lives in its own module; this layer only
//! calls them in order, so the route template is matched once, not three
//! times, and one future wraps the request instead of four.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::HttpMessage;

use super::access_log::{AccessLog, Line};
use super::metrics::HttpMetrics;
use super::{request_id, route_template, status_of, tracing};
use crate::http::RequestId;

/// What `observe` records into.
#[derive(Clone)]
pub(crate) struct Observers {
    pub(crate) metrics: HttpMetrics,
    pub(crate) access_log: Option<Arc<AccessLog>>,
}

pub(crate) async fn observe<B: MessageBody>(
    observers: Observers,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let started = Instant::now();
    let _in_flight = observers.metrics.in_flight();
    let echo = request_id::assign(&req);
    let route = route_template(&req);
    let method = req.method().clone();
    let id = observers.access_log.as_ref().and_then(|_| req.extensions().get::<RequestId>().cloned());
    let span = tracing::start(&req, &route);

    let result = next.call(req).await;

    let status = status_of(&result);
    let took = started.elapsed();
    observers.metrics.observe(&method, &route, status, took);
    if let Some(log) = &observers.access_log {
        log.record(&Line {
            method: method.as_str(),
            route: &route,
            status: status.as_u16(),
            duration: took,
            request_id: id.as_ref().map_or("", |id| id.as_str()),
        });
    }
    tracing::finish(span, status);
    request_id::echo(result, echo)
}
