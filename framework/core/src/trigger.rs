//! [`Shutdown`]: the handle that starts a shutdown, from a signal, a
//! component's fatal error, an admin request or a test.
//!
//! Part of the model: it names only the error vocabulary.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

/// Why the app is shutting down. The first request wins; later ones are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownReason {
    /// The process received a signal (`SIGTERM`, `SIGINT`).
    Signal(&'static str),
    /// Someone asked for it: an admin endpoint, a test, the app's own logic.
    Requested {
        /// Who asked.
        by: String,
        /// Why, in words.
        reason: String,
    },
    /// A component failed while running; the exit code is non-zero.
    ComponentFailed {
        /// The component that failed.
        component: String,
        /// Its error chain.
        error: String,
    },
    /// A component failed more often than its restart limit allows; exit code 5.
    RestartLimitExceeded {
        /// The component that kept failing.
        component: String,
        /// The limit and the restart history, with each cause.
        error: String,
    },
}

impl ShutdownReason {
    /// Whether this reason makes the exit code non-zero even after a clean shutdown.
    pub fn is_failure(&self) -> bool {
        matches!(self, ShutdownReason::ComponentFailed { .. } | ShutdownReason::RestartLimitExceeded { .. })
    }
}

impl fmt::Display for ShutdownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShutdownReason::Signal(name) => write!(f, "received {name}"),
            ShutdownReason::Requested { by, reason } => write!(f, "requested by {by}: {reason}"),
            ShutdownReason::ComponentFailed { component, error } => {
                write!(f, "component `{component}` failed: {error}")
            }
            ShutdownReason::RestartLimitExceeded { component, error } => {
                write!(f, "component `{component}` kept failing: {error}")
            }
        }
    }
}

/// A cloneable handle to request a shutdown and to wait for one.
///
/// ```
/// # tokio_test_block_on(async {
/// use orderly_core::{Shutdown, ShutdownReason};
/// let shutdown = Shutdown::new();
/// shutdown.request("admin", "maintenance window");
/// shutdown.request("admin", "ignored: the first request wins");
/// let reason = shutdown.wait().await;
/// assert_eq!(reason.to_string(), "requested by admin: maintenance window");
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    reason: watch::Sender<Option<ShutdownReason>>,
    /// Set, under the channel's lock, when `reason` becomes `Some`: asking
    /// whether a shutdown was requested (the start does, per component)
    /// is one load rather than a lock.
    requested: AtomicBool,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A handle with no shutdown requested yet.
    pub fn new() -> Self {
        Self { inner: Arc::new(Inner { reason: watch::Sender::new(None), requested: AtomicBool::new(false) }) }
    }

    /// Asks for a graceful shutdown. Returns false if one was already requested.
    pub fn request(&self, by: &str, reason: &str) -> bool {
        self.trigger(ShutdownReason::Requested { by: by.to_string(), reason: reason.to_string() })
    }

    /// Reports that `component` failed while running: the app shuts down
    /// gracefully and exits non-zero.
    pub fn fail(&self, component: &str, error: &(dyn std::error::Error + 'static)) -> bool {
        self.trigger(ShutdownReason::ComponentFailed {
            component: component.to_string(),
            error: crate::error::error_chain(error),
        })
    }

    /// Requests a shutdown for `reason`. Returns false if one was already requested.
    pub fn trigger(&self, reason: ShutdownReason) -> bool {
        self.inner.reason.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(reason);
            self.inner.requested.store(true, Ordering::Release);
            true
        })
    }

    /// Whether a shutdown was requested.
    pub fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::Acquire)
    }

    /// The reason, if a shutdown was requested.
    pub fn reason(&self) -> Option<ShutdownReason> {
        // The flag is set before the channel's lock is released, so a
        // reader that sees it finds the reason there.
        match self.is_requested() {
            true => self.inner.reason.borrow().clone(),
            false => None,
        }
    }

    /// Waits until a shutdown is requested, and returns why.
    pub async fn wait(&self) -> ShutdownReason {
        let mut rx = self.inner.reason.subscribe();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            // The sender lives in `self`, so the channel cannot close here.
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
