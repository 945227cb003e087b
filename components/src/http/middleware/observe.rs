//! The outermost layer: what the server records about every request, in
//! one pass. It gives the request its id, starts its span, and once the
//! answer is known records the metrics and the access line, ends the span,
//! adds the security headers and echoes the id. In between, it runs the
//! request under the [`guard`](super::guard) module's protections. Each
//! concern lives in its own module; this layer only calls them in order, so
//! the route template is looked up once (after routing, from what the
//! router recorded), not three times, and one future wraps the request
//! instead of four.

use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ResourceMap, ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::middleware::Next;

use super::access_log::{AccessLog, Line};
use super::guard::{guarded, Guards};
use super::metrics::{HttpMetrics, LocalSeries};
use super::rate_limit::Verdict;
use super::{request_id, security_headers, status_of, tracing, ErrorWithHeaders, UNMATCHED};
use crate::http::live::WorkerSettings;

/// What `observe` records into (one per worker).
#[derive(Clone)]
pub(crate) struct Observers {
    pub(crate) metrics: HttpMetrics,
    pub(crate) local: Rc<LocalSeries>,
    pub(crate) access_log: Option<Arc<AccessLog>>,
    /// Whether requests get server spans (the tracing component exports).
    /// The tracing component's switch, which a reload may turn.
    pub(crate) traced: Arc<AtomicBool>,
}

/// The whole layer of one worker: built once per worker and shared by its
/// requests through one `Rc`, so a request clones one pointer, not each
/// handle inside.
pub(crate) struct Layer {
    pub(crate) observers: Observers,
    pub(crate) guards: Guards,
    /// The worker's copy of the settings a reload changes live (timeout,
    /// body limit, access log, per-client rate limits).
    pub(crate) settings: WorkerSettings,
    /// The worker's route map (a shallow copy, taken from its first request),
    /// to name the route of a request that ended in an error: such a request
    /// never comes back from the router.
    pub(crate) routes: OnceCell<ResourceMap>,
}

pub(crate) async fn observe<B: MessageBody + 'static>(
    layer: Rc<Layer>,
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let now = layer.settings.for_request();
    // A reloaded body limit: its extractor configs come before the App's.
    if let Some(configs) = now.extractors {
        req.add_data_container(configs);
    }
    let (observers, guards) = (&layer.observers, &layer.guards);
    let _in_flight = observers.metrics.in_flight();
    let id = request_id::assign(&req);
    let method = req.method().clone();
    let span = observers.traced.load(Ordering::Relaxed).then(|| tracing::start(&req));
    layer.routes.get_or_init(|| req.resource_map().clone());
    // Kept only for a request that ends in an error (see `routed_template`).
    let uri = req.uri().clone();

    // A client over its limit is answered before any guard or handler
    // runs; the guards run inside: the whole stack is one layer, one future.
    let (refusal, limit_headers) = match now.rate_limits.as_ref().and_then(|limits| limits.check(&req)) {
        Some(Verdict::Limited(error)) => (Some(error), None),
        Some(Verdict::Allowed(headers)) => (None, Some(headers)),
        None => (None, None),
    };
    let limited = refusal.is_some();
    let result = match refusal {
        Some(error) => Err(error),
        None => guarded(guards, now.request_timeout, &id, req, |req| next.call(req)).await,
    };

    // Read after the router ran, from what it recorded: the path is not matched a second time.
    let route = routed_template(&result, &layer.routes, &uri);
    let status = status_of(&result);
    let took = started.elapsed();
    if let Some(log) = observers.access_log.as_ref().filter(|_| now.access_log) {
        log.record(&Line {
            method: method.as_str(),
            route: &route,
            status: status.as_u16(),
            duration: took,
            request_id: id.as_str(),
        });
    }
    tracing::finish(span, method.as_str(), &route, status);
    if limited {
        observers.metrics.rate_limited(&route);
    }
    observers.metrics.observe(&observers.local, &method, route, status, took);
    let result = match result {
        Ok(mut response) => {
            let headers = response.headers_mut();
            security_headers::add(headers);
            for (name, value) in limit_headers.into_iter().flatten() {
                headers.insert(name, value);
            }
            Ok(response)
        }
        Err(error) => {
            Err(ErrorWithHeaders::add(error, security_headers::all().chain(limit_headers.into_iter().flatten())))
        }
    };
    request_id::echo(result, id)
}

/// The route template of a request that went through the router: read
/// from the request the answer carries, where actix recorded the matched
/// resource. A request that ended in an error (shed, timed out, panicked,
/// cut off) is not given back, so its path is matched once against the
/// worker's route map.
fn routed_template(
    result: &Result<ServiceResponse<BoxBody>, actix_web::Error>,
    routes: &OnceCell<ResourceMap>,
    uri: &Uri,
) -> String {
    let matched = match result {
        Ok(response) => response.request().match_pattern(),
        Err(_) => routes.get().and_then(|routes| routes.match_pattern(uri.path())),
    };
    matched.unwrap_or_else(|| UNMATCHED.to_owned())
}
