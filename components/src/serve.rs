//! Running an actix-web server on a listener we bound, and stopping it on
//! our schedule rather than actix's.
//!
//! actix's own stop has fixed delays (workers are checked once a second,
//! and a system stop sleeps 300 ms). We never wait for those: we close the
//! listener ourselves, track connections ourselves, and only send actix the
//! stop commands, so a stop is as fast as the work in flight allows.

use actix_web::dev::{Server, ServerHandle};
use tokio::task::JoinHandle;

use crate::net::ListenerCloser;

/// How long a retired server stays idle before it stops: long enough for
/// its workers to take a connection handed to them before the pause.
#[cfg(feature = "http")]
const SETTLE: std::time::Duration = std::time::Duration::from_millis(25);

/// An actix server that is running.
pub(crate) struct Serving {
    handle: ServerHandle,
    task: JoinHandle<()>,
    /// `None` once a server that took over the socket has it.
    closer: Option<ListenerCloser>,
    /// How this server is retired when another takes over.
    #[cfg(feature = "http")]
    retirement: Option<Retirement>,
    /// Retiring: it stops itself once its connections are done, so dropping
    /// this must not cut them (its task is left to end on its own).
    retiring: bool,
}

/// What a server that hands over needs to stop without losing a request:
/// its own connections, and the switch that has its responses ask their
/// clients to close the connection.
#[cfg(feature = "http")]
#[derive(Clone, Default)]
pub(crate) struct Retirement {
    pub(crate) connections: std::sync::Arc<crate::idle::InProgress>,
    pub(crate) retiring: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Serving {
    /// Drives `server` on the current runtime. `closer` closes its listener.
    pub(crate) fn spawn(server: Server, closer: ListenerCloser, logger: slog::Logger) -> Self {
        let handle = server.handle();
        let task = tokio::spawn(async move {
            if let Err(error) = server.await {
                slog::error!(logger, "server stopped with an error"; "error" => %error);
            }
        });
        Self {
            handle,
            task,
            closer: Some(closer),
            #[cfg(feature = "http")]
            retirement: None,
            retiring: false,
        }
    }

    /// Stops taking connections now, and tells every open connection to
    /// finish its current response and close (no keep-alive reuse).
    #[cfg(feature = "http")] // the management server stops at once instead
    pub(crate) fn stop_accepting(&mut self) {
        // The command is sent by the call itself; its future only waits for
        // workers, which are checked once a second: we track that ourselves.
        drop(self.handle.stop(true));
        if let Some(closer) = &mut self.closer {
            closer.close();
        }
    }

    /// Whether its server task has ended (it was stopped).
    #[cfg(feature = "http")]
    pub(crate) fn has_ended(&self) -> bool {
        self.task.is_finished()
    }

    /// Retires this server through `retirement` when another takes over.
    #[cfg(feature = "http")]
    pub(crate) fn counting(mut self, retirement: Retirement) -> Self {
        self.retirement = Some(retirement);
        self
    }

    /// Hands the listening socket to a server that takes over.
    #[cfg(feature = "http")]
    pub(crate) fn take_closer(&mut self) -> Option<ListenerCloser> {
        self.closer.take()
    }

    /// Closes this server's listening socket (a new address took over).
    #[cfg(feature = "http")]
    pub(crate) fn close_listener(&mut self) {
        if let Some(closer) = &mut self.closer {
            closer.close();
        }
    }

    /// Takes no more connections at once, and asks each client to close its
    /// connection with its next response; once its connections are done
    /// (or at `until`), stops. A connection it accepted but has not read
    /// from yet is served, not cut.
    #[cfg(feature = "http")]
    pub(crate) fn retire(&mut self, until: std::time::Instant) {
        self.retiring = true;
        let (handle, retirement) = (self.handle.clone(), self.retirement.clone());
        if let Some(retirement) = &retirement {
            retirement.retiring.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        tokio::spawn(async move {
            handle.pause().await;
            if let Some(retirement) = retirement {
                // A connection the accept thread handed to a worker just
                // before the pause is counted only once the worker takes it,
                // and a graceful stop drops what a worker has not taken: so
                // idle twice, a moment apart, before the stop.
                while retirement.connections.wait_until_idle(until).await {
                    tokio::time::sleep(SETTLE).await;
                    if retirement.connections.count() == 0 || std::time::Instant::now() >= until {
                        break;
                    }
                }
            }
            // Sent by the call itself; nothing left to wait for.
            drop(handle.stop(true));
        });
    }

    /// The closer of this server's listening socket, while it has it.
    #[cfg(feature = "http")]
    pub(crate) fn closer(&self) -> Option<&ListenerCloser> {
        self.closer.as_ref()
    }

    /// Closes the listener and every connection, waiting at most until `deadline`.
    #[cfg(feature = "admin")] // only the management server stops at once
    pub(crate) async fn stop_now(&mut self, deadline: std::time::Instant) {
        if let Some(closer) = &mut self.closer {
            closer.close();
        }
        let _ = tokio::time::timeout_at(deadline.into(), self.handle.stop(false)).await;
        self.task.abort();
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if !self.retiring {
            self.task.abort();
        }
    }
}
