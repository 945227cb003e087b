//! Knowing when the drain is done, and cutting off what is left at the end.
//!
//! actix checks its workers' connections once a second, so we count for
//! ourselves: every connection holds a guard in its extensions (dropped when
//! the connection is), and every request holds one until its response body
//! has been sent. After phase 1, actix tells each connection to finish its
//! current response and close, so "no connections left" means every
//! accepted request has been answered and flushed.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{HeaderValue, CONNECTION};
use actix_web::web::Bytes;

use crate::idle::{Busy, InProgress};

/// Counters shared by every worker thread of one server.
#[derive(Default)]
pub(crate) struct Drain {
    connections: Arc<InProgress>,
    in_flight: AtomicUsize,
    cut_off: AtomicUsize,
    draining: AtomicBool,
    cancelled: AtomicBool,
    /// Woken when the phase budget runs out and in-flight requests must stop.
    cancel: tokio::sync::Notify,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DrainOutcome {
    /// Requests cancelled because the budget ran out.
    pub(crate) cut_off: usize,
    /// Connections still open when the deadline came.
    pub(crate) connections_left: usize,
}

impl Drain {
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.count()
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Counts a new connection until the returned guard is dropped.
    pub(crate) fn connection(&self) -> Busy {
        self.connections.enter()
    }

    /// Counts a request in flight until the guard is dropped.
    pub(crate) fn request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        RequestGuard(self.clone())
    }

    /// From now on every response closes its connection.
    pub(crate) fn begin(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Waits until no connection is open, cancelling whatever still runs at
    /// `cancel_at`, and giving up at `deadline`.
    pub(crate) async fn wait(&self, cancel_at: Instant, deadline: Instant) -> DrainOutcome {
        if !self.connections.wait_until_idle(cancel_at).await {
            self.cancelled.store(true, Ordering::SeqCst);
            self.cancel.notify_waiters();
            self.connections.wait_until_idle(deadline).await;
        }
        DrainOutcome { cut_off: self.cut_off.load(Ordering::SeqCst), connections_left: self.connections() }
    }

    /// Resolves when in-flight requests must be cut off.
    async fn cancelled(&self) {
        let cancel = self.cancel.notified();
        let mut cancel = std::pin::pin!(cancel);
        cancel.as_mut().enable();
        if !self.cancelled.load(Ordering::SeqCst) {
            cancel.await;
        }
    }
}

/// Held by a request until its body has been sent (or dropped).
pub(crate) struct RequestGuard(Arc<Drain>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted while it streams.
struct Tracked {
    body: BoxBody,
    _guard: RequestGuard,
}

impl MessageBody for Tracked {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

impl Drain {
    /// Resolves when the request must be cut off, counting it as cut off.
    pub(crate) async fn cut_off(&self) {
        self.cancelled().await;
        self.cut_off.fetch_add(1, Ordering::SeqCst);
    }

    /// Keeps the request counted until its body has been sent, and marks
    /// the response `Connection: close` once the server is draining.
    pub(crate) fn track_until_sent(
        &self,
        response: ServiceResponse<BoxBody>,
        guard: RequestGuard,
    ) -> ServiceResponse<BoxBody> {
        let mut response = response;
        if self.is_draining() {
            response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response.map_body(|_, body| BoxBody::new(Tracked { body, _guard: guard }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wait_returns_when_the_last_connection_closes() {
        let drain = Arc::new(Drain::default());
        let connection = drain.connection();
        drain.begin();
        let far = Instant::now() + Duration::from_secs(30);
        let waiter = tokio::spawn({
            let drain = drain.clone();
            async move { drain.wait(far, far).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(connection);
        assert_eq!(waiter.await.unwrap(), DrainOutcome { cut_off: 0, connections_left: 0 });
    }

    #[tokio::test]
    async fn cancel_at_wakes_requests_that_are_still_running() {
        let drain = Arc::new(Drain::default());
        let _connection = drain.connection();
        let cancelled = tokio::spawn({
            let drain = drain.clone();
            async move { drain.cancelled().await }
        });
        let now = Instant::now();
        let outcome = drain.wait(now, now + Duration::from_millis(20)).await;
        cancelled.await.unwrap();
        assert_eq!(outcome.connections_left, 1);
    }
}
