//! Every error leaves as JSON, and no server error shows its cause.
//!
//! Handler and extractor errors arrive here as responses with the error
//! attached; errors of the layers inside (timeout, backpressure, drain,
//! panic guard) arrive as `Err` and are rendered by actix after the
//! middleware. Either way:
//! - an [`ApiError`] is already JSON and passes through;
//! - any other 4xx/5xx whose body is not JSON (actix's own 404 and 405, a
//!   handler's plain-text error) gets the generic JSON body for its status;
//! - server errors are logged with their cause and the request id.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::ResponseError;

use crate::http::{ApiError, RequestId};

fn is_json(value: Option<&HeaderValue>) -> bool {
    value.and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json") || v.contains("+json"))
}

fn log_server_error(
    logger: &slog::Logger,
    status: StatusCode,
    error: Option<&actix_web::Error>,
    id: Option<&RequestId>,
) {
    let cause = error.map(|e| match e.as_error::<ApiError>() {
        Some(api) => api.to_string(),
        None => e.to_string(),
    });
    slog::error!(logger, "request failed";
        "status" => status.as_u16(),
        "error" => cause.as_deref().unwrap_or("(the handler returned this status)"),
        "request_id" => id.map_or("", |id| id.as_str()),
    );
}

/// Turns whatever the inner layers produced into a JSON error where needed.
pub(crate) fn convert<B: MessageBody + 'static>(
    logger: &slog::Logger,
    id: Option<&RequestId>,
    result: Result<ServiceResponse<B>, actix_web::Error>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = match result {
        Ok(response) => response.map_into_boxed_body(),
        Err(error) => {
            let status = error.as_response_error().status_code();
            if status.is_server_error() {
                log_server_error(logger, status, Some(&error), id);
            }
            return Err(match error.as_error::<ApiError>() {
                Some(_) => error,
                None => ApiError::generic(status).into(),
            });
        }
    };
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return Ok(response);
    }
    let error = response.response().error();
    if status.is_server_error() {
        log_server_error(logger, status, error, id);
    }
    if error.and_then(|e| e.as_error::<ApiError>()).is_some() || is_json(response.headers().get(header::CONTENT_TYPE)) {
        return Ok(response);
    }
    let (request, old) = response.into_parts();
    let mut replacement = ApiError::generic(status).error_response();
    // Keep what the client needs to act on: which methods are allowed, when to retry.
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = old.headers().get(&name) {
            replacement.headers_mut().insert(name, value.clone());
        }
    }
    Ok(ServiceResponse::new(request, replacement))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::middleware::test_support::shipped;
    use actix_web::{test, web, HttpResponse};

    async fn call(path: &str, method: actix_web::http::Method) -> (u16, serde_json::Value) {
        let stack = shipped(|cfg| {
            cfg.service(web::resource("/ok").route(web::get().to(HttpResponse::Ok)))
                .route(
                    "/text-500",
                    web::get().to(|| async { HttpResponse::InternalServerError().body("db password is hunter2") }),
                )
                .route(
                    "/actix-error",
                    web::get().to(|| async {
                        Err::<HttpResponse, _>(actix_web::error::ErrorInternalServerError(
                            "connection to 10.0.0.5 refused",
                        ))
                    }),
                )
                .route("/api-error", web::get().to(|| async { Err::<HttpResponse, _>(ApiError::bad_request("no")) }));
        });
        let app = test::init_service(stack.app()).await;
        let res = test::call_service(&app, test::TestRequest::default().method(method).uri(path).to_request()).await;
        let status = res.status().as_u16();
        let body = test::read_body(res).await;
        (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }

    #[actix_web::test]
    async fn actix_404_and_405_become_json() {
        use actix_web::http::Method;
        let (status, body) = call("/nowhere", Method::GET).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
        let (status, body) = call("/ok", Method::POST).await;
        assert_eq!(status, 405, "{body}");
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }

    #[actix_web::test]
    async fn server_errors_never_leak_their_text() {
        use actix_web::http::Method;
        for path in ["/text-500", "/actix-error"] {
            let (status, body) = call(path, Method::GET).await;
            assert_eq!(status, 500);
            assert_eq!(body["error"]["message"], "internal error", "{path}: {body}");
        }
    }

    #[actix_web::test]
    async fn api_errors_pass_through() {
        let (status, body) = call("/api-error", actix_web::http::Method::GET).await;
        assert_eq!((status, body["error"]["message"].as_str()), (400, Some("no")));
    }
}
