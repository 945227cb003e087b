//! Errors that handlers return, rendered as JSON with the right status.
//!
//! A handler returns `Result<_, ApiError>`. Client errors carry a message
//! meant for the client; server errors keep their cause for the log and
//! show the client only a generic message, so internals never leak.

use std::fmt;
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use orderly::BoxError;

/// An error a handler returns; maps to a status and a JSON body:
/// `{"error": {"status": 404, "code": "not_found", "message": "…"}}`.
///
/// ```
/// use actix_web::web;
/// use orderly_components::http::ApiError;
///
/// async fn order(id: web::Path<u64>) -> Result<String, ApiError> {
///     if *id == 0 {
///         return Err(ApiError::bad_request("order ids start at 1"));
///     }
///     Err(ApiError::not_found(format!("no order {id}")))
/// }
/// ```
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
    details: Option<serde_json::Value>,
    source: Option<BoxError>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    status: u16,
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
}

impl ApiError {
    /// An error with any status; `code` is a stable, machine-readable word.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None, details: None, source: None }
    }

    /// 400: the request is wrong; `message` tells the client how.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 413: the body is larger than `limit` bytes.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the body is larger than {limit} bytes"))
    }

    /// 415.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", message)
    }

    /// 503 with `Retry-After`: a dependency is down or the server is full.
    /// The client may try again.
    pub fn unavailable(message: impl Into<String>, retry_after: Duration) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message).with_retry_after(retry_after)
    }

    /// 503: more requests in flight than `http.max_concurrent_requests`.
    pub fn overloaded() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "too many requests in flight; try again shortly")
            .with_retry_after(Duration::from_secs(1))
    }

    /// 504: the handler ran past `http.request_timeout` and was cancelled.
    pub fn timeout(limit: Duration) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", format!("the request took longer than {limit:?}"))
    }

    /// 503: the server is shutting down and cut the request off.
    pub fn shutting_down() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the server is shutting down; try again")
            .with_retry_after(Duration::from_secs(1))
    }

    /// Status 500: the cause is logged with the request id; the client sees
    /// only `internal error`.
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        Self {
            source: Some(cause.into()),
            ..Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error")
        }
    }

    /// Adds machine-readable `details` beside the message (for example
    /// every invalid field of a request), shown to the client as
    /// `error.details`. Only for client errors: a server error's details
    /// would leak internals, so they are dropped there.
    ///
    /// ```
    /// use orderly_components::http::ApiError;
    /// let error = ApiError::bad_request("2 fields are invalid")
    ///     .with_details(serde_json::json!([{"field": "customer", "message": "is required"}]));
    /// assert_eq!(error.details().unwrap()[0]["field"], "customer");
    /// ```
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        if self.status.is_client_error() {
            self.details = Some(details);
        }
        self
    }

    /// The details shown to the client, if any.
    pub fn details(&self) -> Option<&serde_json::Value> {
        self.details.as_ref()
    }

    /// Adds a `Retry-After` header.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The cause kept for the log, if any.
    pub fn cause(&self) -> Option<&BoxError> {
        self.source.as_ref()
    }

    /// A generic error for `status`, used for errors that did not come from
    /// an `ApiError` (for example actix's own 404 and 405).
    pub(crate) fn generic(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            s if s.is_server_error() => "internal",
            _ => "bad_request",
        };
        let message = if status.is_server_error() {
            "internal error"
        } else {
            status.canonical_reason().unwrap_or("request failed")
        };
        Self::new(status, code, message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.status.as_u16(), self.code, self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {}", orderly::events::error_chain(source.as_ref()))?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = Body {
            error: Inner {
                status: self.status.as_u16(),
                code: self.code,
                message: &self.message,
                details: self.details.as_ref(),
            },
        };
        let mut response = HttpResponse::build(self.status);
        if let Some(after) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, after.as_secs().max(1).to_string()));
        }
        response.json(body)
    }
}

/// Extractor settings that turn malformed input into `ApiError`s: bad JSON
/// is 400, the wrong content type 415, an oversized body 413.
pub(crate) mod extractors {
    use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError, UrlencodedError};
    use actix_web::{web, HttpRequest};

    use super::ApiError;

    fn payload(error: &PayloadError, limit: usize) -> ApiError {
        match error {
            PayloadError::Overflow => ApiError::payload_too_large(limit),
            _ => ApiError::bad_request("the request body could not be read"),
        }
    }

    pub(crate) fn json(limit: usize) -> web::JsonConfig {
        web::JsonConfig::default().limit(limit).error_handler(move |error, _: &HttpRequest| {
            let api = match &error {
                JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                    ApiError::payload_too_large(limit)
                }
                JsonPayloadError::ContentType => {
                    ApiError::unsupported_media_type("expected Content-Type: application/json")
                }
                // serde's message describes the client's input, never our internals.
                JsonPayloadError::Deserialize(e) => ApiError::bad_request(format!("invalid JSON: {e}")),
                JsonPayloadError::Payload(e) => payload(e, limit),
                _ => ApiError::bad_request("invalid JSON body"),
            };
            api.into()
        })
    }

    pub(crate) fn bytes(limit: usize) -> web::PayloadConfig {
        web::PayloadConfig::new(limit)
    }

    pub(crate) fn form(limit: usize) -> web::FormConfig {
        web::FormConfig::default().limit(limit).error_handler(move |error, _: &HttpRequest| {
            let api = match &error {
                UrlencodedError::Overflow { .. } => ApiError::payload_too_large(limit),
                UrlencodedError::ContentType => {
                    ApiError::unsupported_media_type("expected Content-Type: application/x-www-form-urlencoded")
                }
                _ => ApiError::bad_request(format!("invalid form body: {error}")),
            };
            api.into()
        })
    }

    pub(crate) fn query() -> web::QueryConfig {
        web::QueryConfig::default().error_handler(|error: QueryPayloadError, _: &HttpRequest| {
            ApiError::bad_request(format!("invalid query string: {error}")).into()
        })
    }

    pub(crate) fn path() -> web::PathConfig {
        web::PathConfig::default().error_handler(|error: PathError, _: &HttpRequest| {
            ApiError::bad_request(format!("invalid path: {error}")).into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn body_of(error: &ApiError) -> serde_json::Value {
        let bytes = to_bytes(error.error_response().into_body()).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[actix_web::test]
    async fn client_errors_keep_their_message() {
        let body = body_of(&ApiError::bad_request("name is required")).await;
        assert_eq!(body["error"]["status"], 400);
        assert_eq!(body["error"]["code"], "bad_request");
        assert_eq!(body["error"]["message"], "name is required");
    }

    #[actix_web::test]
    async fn internal_errors_hide_their_cause() {
        let error = ApiError::internal("password authentication failed for user app");
        let body = body_of(&error).await;
        assert_eq!(body["error"]["message"], "internal error");
        assert!(!body.to_string().contains("password"));
        assert!(error.to_string().contains("password"), "the cause stays for the log");
    }

    #[actix_web::test]
    async fn details_reach_client_errors_only() {
        let details = serde_json::json!([{"field": "items[0].quantity", "message": "must be at least 1"}]);
        let body = body_of(&ApiError::bad_request("1 field is invalid").with_details(details.clone())).await;
        assert_eq!(body["error"]["details"], details);
        let body = body_of(&ApiError::internal("boom").with_details(details)).await;
        assert!(body["error"].get("details").is_none());
    }

    #[actix_web::test]
    async fn unavailable_sets_retry_after() {
        let response = ApiError::overloaded().error_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "1");
    }
}
