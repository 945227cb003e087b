//! Listening sockets that the component owns, so that binding fails in
//! `start` and closing is immediate and certain.
//!
//! actix-server takes the listener and closes it on its accept thread some
//! time after being told to stop. Phase 1 must refuse new connections the
//! moment it returns, so we keep a second handle to the same socket and
//! shut it down ourselves: on Linux, `shutdown(2)` on a listening socket
//! moves it out of LISTEN at once, and new connections are refused.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Binding a listener failed; says which address and why.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({what}): {source}")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Which step failed.
    pub what: &'static str,
    /// The OS error (for example "Address already in use").
    #[source]
    pub source: io::Error,
}

/// A bound, listening socket, and a second handle to close it with.
pub(crate) struct BoundListener {
    listener: TcpListener,
    closer: Socket,
    addr: SocketAddr,
}

impl BoundListener {
    /// Binds and listens with `backlog`. "Address in use" and the like are
    /// returned here, in `start`, not later from a background task.
    pub(crate) fn bind(addr: SocketAddr, backlog: u32) -> Result<Self, BindError> {
        let fail = |what| move |source| BindError { addr, what, source };
        let socket =
            Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(fail("socket"))?;
        // Lets a restarted process bind while old connections sit in TIME_WAIT.
        socket.set_reuse_address(true).map_err(fail("SO_REUSEADDR"))?;
        socket.bind(&addr.into()).map_err(fail("bind"))?;
        socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX)).map_err(fail("listen"))?;
        let closer = socket.try_clone().map_err(fail("dup"))?;
        let listener: TcpListener = socket.into();
        let addr = listener.local_addr().map_err(fail("local_addr"))?;
        Ok(Self { listener, closer, addr })
    }

    /// The address actually bound (the real port when 0 was asked for).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Splits into the listener (for the server) and the handle that closes it.
    pub(crate) fn split(self) -> (TcpListener, ListenerCloser) {
        (self.listener, ListenerCloser { socket: Some(self.closer) })
    }
}

/// Closes a listening socket that someone else owns.
pub(crate) struct ListenerCloser {
    socket: Option<Socket>,
}

impl ListenerCloser {
    /// A second listener on the same socket (its own descriptor), for a
    /// new server to accept from the same queue while the old one stops:
    /// nothing queued is lost in between. `backlog` is applied again (Linux
    /// lets a listening socket change it).
    #[cfg(feature = "http")]
    pub(crate) fn share(&self, backlog: u32) -> io::Result<TcpListener> {
        let socket = self.socket.as_ref().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        let shared = socket.try_clone()?;
        shared.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        Ok(shared.into())
    }

    /// The address it listens on (`None` once closed).
    #[cfg(feature = "http")]
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.socket.as_ref()?.local_addr().ok()?.as_socket()
    }

    /// Stops listening now: connections not yet accepted are reset and new
    /// ones are refused. Idempotent.
    pub(crate) fn close(&mut self) {
        if let Some(socket) = self.socket.take() {
            // NotConnected is what some kernels answer for a listening
            // socket; the socket is closed by the drop below either way.
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for ListenerCloser {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_refuses_new_connections_at_once() {
        let bound = BoundListener::bind("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = bound.local_addr();
        let (listener, mut closer) = bound.split();
        std::net::TcpStream::connect(addr).expect("listening");
        closer.close();
        let refused = std::net::TcpStream::connect(addr).expect_err("closed");
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        drop(listener);
    }

    #[test]
    fn address_in_use_is_an_error_naming_the_address() {
        let first = BoundListener::bind("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let error = BoundListener::bind(first.local_addr(), 16).err().expect("in use");
        let text = error.to_string();
        assert!(text.contains(&first.local_addr().to_string()), "{text}");
        assert_eq!(error.source.kind(), io::ErrorKind::AddrInUse);
    }
}
