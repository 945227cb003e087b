//! The inner layer: what protects the server from each request, in one
//! pass — the concurrency limit, the drain's count and cut-off, the time
//! limit and the panic guard — and the JSON rendering of whatever went
//! wrong. Each concern lives in its own module; this only composes them.
//! `observe` runs it around the router, so the whole stack is one layer.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, CONNECTION};
use futures::FutureExt;

use super::backpressure::Limit;
use super::{catch_panic, json_errors};
use crate::http::drain::Drain;
use crate::http::{ApiError, RequestId};

/// What `guard` enforces.
#[derive(Clone)]
pub(crate) struct Guards {
    pub(crate) logger: slog::Logger,
    pub(crate) drain: Arc<Drain>,
    pub(crate) limit: Arc<Limit>,
    /// Set when a new server took over from this one: every response
    /// asks its client to close the connection, so the next request goes
    /// to the new server without a race on an idle connection.
    pub(crate) retiring: Arc<AtomicBool>,
}

/// Runs `call` (the rest of the stack) under the guards, cancelled after `request_timeout`.
pub(crate) async fn guarded<B, F, Fut>(
    guards: &Guards,
    request_timeout: Duration,
    id: &RequestId,
    req: ServiceRequest,
    call: F,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error>
where
    B: MessageBody + 'static,
    F: FnOnce(ServiceRequest) -> Fut,
    Fut: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    let counted = guards.drain.request();
    let result = match guards.limit.try_acquire() {
        None => Err(ApiError::overloaded().into()),
        Some(_permit) => {
            let work = AssertUnwindSafe(call(req)).catch_unwind();
            tokio::select! {
                biased;
                done = tokio::time::timeout(request_timeout, work) => match done {
                    Ok(Ok(result)) => result,
                    Ok(Err(panic)) => Err(catch_panic::panic_error(panic)),
                    Err(_) => Err(ApiError::timeout(request_timeout).into()),
                },
                () = guards.drain.cut_off() => Err(ApiError::shutting_down().into()),
            }
        }
    };
    let response = json_errors::convert(&guards.logger, Some(id), result)?;
    let mut response = guards.drain.track_until_sent(response, counted);
    if guards.retiring.load(Ordering::Relaxed) {
        response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}
