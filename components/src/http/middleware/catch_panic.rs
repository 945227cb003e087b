//! A handler that panics answers 500 (JSON, cause logged) instead of
//! taking its connection, and possibly its worker thread, down with it.

use std::any::Any;

use crate::http::ApiError;

/// The 500 for a panic, keeping its message for the log.
pub(crate) fn panic_error(panic: Box<dyn Any + Send>) -> actix_web::Error {
    ApiError::internal(format!("handler panicked: {}", orderly::error::panic_message(panic.as_ref()))).into()
}

#[cfg(test)]
mod tests {
    use crate::http::middleware::test_support::shipped;
    use actix_web::{test, web, HttpResponse};

    #[actix_web::test]
    async fn a_panicking_handler_gets_500() {
        let app = test::init_service(
            shipped(|cfg| {
                cfg.route(
                    "/",
                    web::get().to(|| async {
                        if std::hint::black_box(true) {
                            panic!("boom");
                        }
                        HttpResponse::Ok().finish()
                    }),
                );
            })
            .app(),
        )
        .await;
        let result = test::try_call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        let (status, _) = crate::http::middleware::test_support::seen_by_client(result);
        assert_eq!(status, 500);
    }
}
