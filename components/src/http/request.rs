//! What a handler can know about its request beyond the request itself:
//! its id, a logger that carries the id, and its trace context.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header::HeaderValue;
use actix_web::{FromRequest, HttpMessage, HttpRequest};

/// The request's id: the client's `X-Request-ID` when valid, else generated.
/// Held as the header value it is echoed as (cloning it is a reference count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub(crate) HeaderValue);

impl RequestId {
    /// The id as text (always plain ASCII: validated or generated).
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

/// The logger requests log through (the HTTP server component's).
#[derive(Clone)]
pub(crate) struct RequestLogger(pub(crate) slog::Logger);

/// Extract it in a handler to log with the request id attached, and to
/// start child spans of the request's span.
///
/// ```
/// use orderly_components::http::RequestContext;
///
/// async fn hello(request: RequestContext) -> &'static str {
///     slog::info!(request.logger(), "saying hello");
///     "hello"
/// }
/// ```
pub struct RequestContext {
    id: Option<RequestId>,
    logger: slog::Logger,
    trace: Option<opentelemetry::Context>,
}

impl RequestContext {
    /// The request id (absent only outside the server's middleware stack).
    pub fn request_id(&self) -> Option<&RequestId> {
        self.id.as_ref()
    }

    /// A logger whose records carry `request_id`.
    pub fn logger(&self) -> &slog::Logger {
        &self.logger
    }

    /// The OpenTelemetry context holding the request's span, when tracing is on.
    pub fn trace_context(&self) -> Option<&opentelemetry::Context> {
        self.trace.as_ref()
    }
}

impl FromRequest for RequestContext {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let base = req
            .app_data::<RequestLogger>()
            .map(|l| l.0.clone())
            .unwrap_or_else(|| slog::Logger::root(slog::Discard, slog::o!()));
        let extensions = req.extensions();
        let id = extensions.get::<RequestId>().cloned();
        let logger = match &id {
            Some(id) => base.new(slog::o!("request_id" => id.as_str().to_owned())),
            None => base,
        };
        let trace = extensions.get::<opentelemetry::Context>().cloned();
        ready(Ok(Self { id, logger, trace }))
    }
}
