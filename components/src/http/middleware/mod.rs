//! The middleware stack, one concern per module.
//!
//! The server runs one layer (see [`app_template`](super::app_template)): `observe`
//! (request id, tracing, metrics, access log and security headers; the
//! route template read once per request, after routing; the per-client
//! rate limits, checked first) around `guard` (the concurrency
//! limit, drain tracking and cut-off, the time limit, the panic guard and
//! JSON errors) around the router. Each concern keeps its own module with
//! the pieces those two layers call, and its tests drive the stack exactly
//! as the server builds it ([`test_support::shipped`]), never a layer
//! assembled for the test alone.

pub(crate) mod access_log;
pub(crate) mod backpressure;
pub(crate) mod catch_panic;
pub(crate) mod guard;
pub(crate) mod json_errors;
pub(crate) mod metrics;
pub(crate) mod observe;
pub(crate) mod rate_limit;
pub(crate) mod request_id;
pub(crate) mod security_headers;
pub(crate) mod timeout;
pub(crate) mod tracing;

use std::fmt;

use actix_web::dev::ServiceResponse;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// The label of a request no route matched. Labels and log fields use the
/// route template a request matched (`/users/{id}`), never the raw path,
/// so they stay bounded.
pub(crate) const UNMATCHED: &str = "unmatched";

/// The status a layer's result will reach the client with.
pub(crate) fn status_of<B>(result: &Result<ServiceResponse<B>, actix_web::Error>) -> StatusCode {
    match result {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    }
}

/// An error that an inner layer returned, with headers an outer layer must
/// still put on its response (actix renders errors after the middleware).
#[derive(Debug)]
pub(crate) struct ErrorWithHeaders {
    error: actix_web::Error,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ErrorWithHeaders {
    /// Wraps `error` so its rendered response carries `headers` (wrapping
    /// an already wrapped error is fine: each layer adds its own).
    pub(crate) fn add(
        error: actix_web::Error,
        headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
    ) -> actix_web::Error {
        ErrorWithHeaders { error, headers: headers.into_iter().collect() }.into()
    }
}

impl fmt::Display for ErrorWithHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl ResponseError for ErrorWithHeaders {
    fn status_code(&self) -> StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.error.error_response();
        for (name, value) in &self.headers {
            if !response.headers().contains_key(name) {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
        response
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::sync::Arc;

    use actix_web::dev::ServiceResponse;
    use actix_web::http::header::HeaderMap;
    use actix_web::http::StatusCode;
    use actix_web::web::ServiceConfig;

    use super::backpressure::Limit;
    use super::metrics::HttpMetrics;
    use crate::http::app_template::AppTemplate;

    /// The stack the server ships, serving `routes`, with the server's
    /// defaults; a test changes the field it is about before `app()`.
    pub(crate) fn shipped(routes: impl Fn(&mut ServiceConfig) + Send + Sync + 'static) -> AppTemplate {
        let defaults = crate::http::HttpConfig::default();
        AppTemplate {
            logger: slog::Logger::root(slog::Discard, slog::o!()),
            metrics: HttpMetrics::register(&prometheus::Registry::new()).expect("a fresh registry takes the metrics"),
            drain: Arc::default(),
            limit: Limit::new(defaults.max_concurrent_requests),
            live: crate::http::live::Live::new(crate::http::live::Settings::of(&defaults)),
            access_log: None,
            routes: Arc::from(vec![Arc::new(routes) as super::super::routes::Configure]),
            traced: Arc::default(),
            retiring: Arc::default(),
        }
    }

    /// Status and headers of what the client would get, whether the
    /// service answered or returned an error for actix to render.
    pub(crate) fn seen_by_client<B>(result: Result<ServiceResponse<B>, actix_web::Error>) -> (StatusCode, HeaderMap) {
        match result {
            Ok(response) => (response.status(), response.headers().clone()),
            Err(error) => {
                let response = error.error_response();
                (response.status(), response.headers().clone())
            }
        }
    }
}
