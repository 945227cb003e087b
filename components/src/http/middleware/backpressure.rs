//! A concurrency limit that rejects instead of queueing: past
//! `http.max_concurrent_requests`, a request gets 503 with `Retry-After`
//! at once, so a load balancer can send it elsewhere.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Requests being served, shared by all workers.
pub(crate) struct Limit {
    active: AtomicUsize,
    /// Changed by a reload while requests run: those already admitted
    /// finish, new ones see the new limit.
    max: AtomicUsize,
}

impl Limit {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { active: AtomicUsize::new(0), max: AtomicUsize::new(max) })
    }

    /// Puts a new limit in force.
    pub(crate) fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }
}

impl Limit {
    /// A slot, or `None` when the limit is reached (answer 503 at once).
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        if self.active.fetch_add(1, Ordering::AcqRel) >= self.max.load(Ordering::Relaxed) {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Permit(self.clone()))
    }
}

/// Held while a request runs.
pub(crate) struct Permit(Arc<Limit>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::middleware::test_support::shipped;
    use actix_web::{test, web, HttpResponse};
    use tokio::sync::Notify;

    #[actix_web::test]
    async fn rejects_past_the_limit_and_recovers() {
        let release = Arc::new(Notify::new());
        let gate = release.clone();
        let mut stack = shipped(move |cfg| {
            let gate = gate.clone();
            cfg.route(
                "/",
                web::get().to(move || {
                    let gate = gate.clone();
                    async move {
                        gate.notified().await;
                        HttpResponse::Ok().finish()
                    }
                }),
            );
        });
        stack.limit = Limit::new(1);
        let app = test::init_service(stack.app()).await;
        let first = test::call_service(&app, test::TestRequest::get().uri("/").to_request());
        let mut first = std::pin::pin!(first);
        assert!(futures::poll!(first.as_mut()).is_pending(), "the first request holds the only slot");
        let second = test::try_call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        let (status, headers) = crate::http::middleware::test_support::seen_by_client(second);
        assert_eq!(status, 503);
        assert_eq!(headers.get("retry-after").unwrap(), "1");
        release.notify_one();
        assert_eq!(first.await.status(), 200);
        release.notify_one();
        let third = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        assert_eq!(third.status(), 200, "the slot was released");
    }
}
