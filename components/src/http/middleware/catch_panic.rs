//! A handler that panics answers 500 (JSON, cause logged) instead of
//! taking its connection, and possibly its worker thread, down with it.

use std::any::Any;
use std::panic::AssertUnwindSafe;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use futures::FutureExt;

use crate::http::ApiError;

/// The 500 for a panic, keeping its message for the log.
pub(crate) fn panic_error(panic: Box<dyn Any + Send>) -> actix_web::Error {
    ApiError::internal(format!("handler panicked: {}", orderly::panic_message(panic.as_ref()))).into()
}

/// The middleware on its own (the server applies it inside `guard`).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) async fn catch_panic<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    AssertUnwindSafe(next.call(req)).catch_unwind().await.unwrap_or_else(|panic| Err(panic_error(panic)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::middleware::from_fn;
    use actix_web::{test, web, App, HttpResponse};

    #[actix_web::test]
    async fn a_panicking_handler_gets_500() {
        let app = test::init_service(App::new().wrap(from_fn(catch_panic)).route(
            "/",
            web::get().to(|| async {
                if std::hint::black_box(true) {
                    panic!("boom");
                }
                HttpResponse::Ok().finish()
            }),
        ))
        .await;
        let result = test::try_call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        let (status, _) = crate::http::middleware::test_support::seen_by_client(result);
        assert_eq!(status, 500);
    }
}
