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

/// An actix server that is running.
pub(crate) struct Serving {
    handle: ServerHandle,
    task: JoinHandle<()>,
    /// `None` once a server that took over the socket has it.
    closer: Option<ListenerCloser>,
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
        Self { handle, task, closer: Some(closer) }
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

    /// Hands the listening socket to a server that takes over, and stops
    /// taking connections: actix drops its own descriptor of the socket,
    /// which stays open for the new server, and each open connection
    /// finishes its current response and closes.
    #[cfg(feature = "http")]
    pub(crate) fn hand_over(&mut self) -> Option<ListenerCloser> {
        let closer = self.closer.take();
        drop(self.handle.stop(true));
        closer
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
        self.task.abort();
    }
}
