//! A server span per request, continuing the caller's trace from a W3C
//! `traceparent` header. Only when the tracing component exports (the
//! server asks it at start, see `HttpServer::dependencies`): an app
//! without tracing pays one branch per request.

use actix_web::dev::ServiceRequest;
use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::HttpMessage;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{global, KeyValue};

use crate::http::RequestId;

/// Reads propagation headers from an actix request.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Starts the request's server span, continuing the caller's trace, and
/// keeps its context in the request's extensions. The span is named after
/// the method only: the route is known once the router ran, and
/// [`finish`] names it then (the OpenTelemetry conventions' name for a
/// server span, `{method} {route}`, is what exporters receive).
pub(crate) fn start(req: &ServiceRequest) -> opentelemetry::Context {
    let parent = global::get_text_map_propagator(|propagator| propagator.extract(&Headers(req.headers())));
    let tracer = global::tracer("orderly-http");
    let method = req.method().as_str();
    let mut attributes =
        vec![KeyValue::new("http.request.method", method.to_owned()), KeyValue::new("url.path", req.path().to_owned())];
    if let Some(id) = req.extensions().get::<RequestId>() {
        attributes.push(KeyValue::new("http.request_id", id.as_str().to_owned()));
    }
    let span = tracer
        .span_builder(method.to_owned())
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .start_with_context(&tracer, &parent);
    let context = parent.with_span(span);
    req.extensions_mut().insert(context.clone());
    context
}

/// Ends the span (if the request has one): named `{method} {route}`, with
/// the route and the response's status.
pub(crate) fn finish(context: Option<opentelemetry::Context>, method: &str, route: &str, status: StatusCode) {
    let Some(context) = context else { return };
    let span = context.span();
    span.update_name(format!("{method} {route}"));
    span.set_attribute(KeyValue::new("http.route", route.to_owned()));
    span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status.as_u16())));
    if status.is_server_error() {
        span.set_status(Status::error(status.as_str().to_owned()));
    }
    span.end();
}
