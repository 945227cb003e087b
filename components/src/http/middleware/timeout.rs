//! A per-request time limit (`http.request_timeout`): past it, the
//! handler's future is dropped (cancelled) and the client gets 504. The
//! limit is applied by [`guard`](super::guard), around the panic guard.

#[cfg(test)]
mod tests {
    use crate::http::middleware::test_support::shipped;
    use actix_web::{test, web, HttpResponse};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

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
        let stack = shipped(move |cfg| {
            let flag = flag.clone();
            cfg.route(
                "/slow",
                web::get().to(move || {
                    let guard = SetOnDrop(flag.clone());
                    async move {
                        std::future::pending::<()>().await;
                        drop(guard);
                        HttpResponse::Ok().finish()
                    }
                }),
            );
        });
        stack.live.update(|settings| settings.request_timeout = Duration::from_millis(20));
        let app = test::init_service(stack.app()).await;
        let result = test::try_call_service(&app, test::TestRequest::get().uri("/slow").to_request()).await;
        let (status, _) = crate::http::middleware::test_support::seen_by_client(result);
        assert_eq!(status, 504);
        assert!(dropped.load(Ordering::SeqCst), "the handler's future was dropped");
    }
}
