//! The outermost layer: what the server records about every request, in
//! one pass. It gives the request its id, starts its span, and once the
//! answer is known records the metrics and the access line, ends the span,
//! adds the security headers and echoes the id. In between, it runs the
//! request under the [`guard`](super::guard) module's protections. Each concern lives in its own module; this layer only
//! calls them in order, so the route template is matched once, not three
//! times, and one future wraps the request instead of four.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use super::access_log::{AccessLog, Line};
use super::guard::{guarded, Guards};
use super::metrics::{HttpMetrics, LocalSeries};
use super::{request_id, route_template, security_headers, status_of, tracing, ErrorWithHeaders};

/// What `observe` records into (one per worker).
#[derive(Clone)]
pub(crate) struct Observers {
    pub(crate) metrics: HttpMetrics,
    pub(crate) local: Rc<LocalSeries>,
    pub(crate) access_log: Option<Arc<AccessLog>>,
    /// Whether requests get server spans (the tracing component exports).
    pub(crate) traced: bool,
}

pub(crate) async fn observe<B: MessageBody + 'static>(
    observers: Observers,
    guards: Guards,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let _in_flight = observers.metrics.in_flight();
    let id = request_id::assign(&req);
    let route = route_template(&req);
    let method = req.method().clone();
    let span = observers.traced.then(|| tracing::start(&req, &route));

    // The guards run inside: the whole stack is one layer, one future.
    let result = guarded(&guards, &id, req, |req| next.call(req)).await;

    let status = status_of(&result);
    let took = started.elapsed();
    if let Some(log) = &observers.access_log {
        log.record(&Line {
            method: method.as_str(),
            route: &route,
            status: status.as_u16(),
            duration: took,
            request_id: id.as_str(),
        });
    }
    observers.metrics.observe(&observers.local, &method, route, status, took);
    tracing::finish(span, status);
    let result = match result {
        Ok(mut response) => {
            security_headers::add(response.headers_mut());
            Ok(response)
        }
        Err(error) => Err(ErrorWithHeaders::add(error, security_headers::all())),
    };
    request_id::echo(result, id)
}
