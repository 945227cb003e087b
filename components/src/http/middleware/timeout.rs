//! A per-request time limit: past it, the handler's future is dropped
//! (cancelled) and the client gets 504.

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::http::ApiError;

/// The middleware on its own (the server applies it inside `guard`).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) async fn timeout<B: MessageBody>(
    limit: Duration,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(response) => response,
        Err(_) => Err(ApiError::timeout(limit).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::middleware::from_fn;
    use actix_web::{test, web, App, HttpResponse};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Set when the handler's future is dropped before it finished.
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[actix_web::test]
    async fn cancels_the_handler_and_answers_504() {
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = dropped.clone();
        let app = test::init_service(
            App::new().wrap(from_fn(move |req, next| timeout(Duration::from_millis(20), req, next))).route(
                "/slow",
                web::get().to(move || {
                    let guard = SetOnDrop(flag.clone());
                    async move {
                        std::future::pending::<()>().await;
                        drop(guard);
                        HttpResponse::Ok().finish()
                    }
                }),
            ),
        )
        .await;
        let result = test::try_call_service(&app, test::TestRequest::get().uri("/slow").to_request()).await;
        let (status, _) = crate::http::middleware::test_support::seen_by_client(result);
        assert_eq!(status, 504);
        assert!(dropped.load(Ordering::SeqCst), "the handler's future was dropped");
    }
}
