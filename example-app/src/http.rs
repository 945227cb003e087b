//! A small HTTP/1.1 server on tokio, to show the first two stop phases.
//!
//! - `start` binds the listener, so "address in use" fails start (and rolls
//!   back) instead of surfacing later in a background task.
//! - Phase 1 (`stop_accepting`) closes the listener: new connections are refused.
//! - Phase 2 (`drain`) waits for requests in flight, up to the hook's
//!   deadline, and reports how many it had to cut off.
//!
//! Every response closes its connection, so no idle keep-alive connection
//! can hold the drain open. (The actix-web server component replaces this.)

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orderly::{BoxError, Component, Dependency, FromConfig, StartContext, StopContext, Validate, Validation};
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::visit_log::{Visit, VisitBook, VisitLog};

/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on, `host:port` (`APP__HTTP__BIND`).
    pub bind: String,
    /// Largest request head accepted; larger ones get 431.
    pub max_request_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { bind: "127.0.0.1:8080".into(), max_request_bytes: 8192 }
    }
}

impl Validate for HttpConfig {
    fn validate(&self, v: &mut Validation) {
        v.check(self.bind.parse::<SocketAddr>().is_ok(), "bind", format!("`{}` is not host:port", self.bind));
        v.check((256..=1 << 20).contains(&self.max_request_bytes), "max_request_bytes", "must be 256 to 1048576");
    }
}

/// Counts requests in flight and wakes the drain when none are left.
#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// Held while a request is served.
struct InFlightGuard(Arc<InFlight>);

impl InFlight {
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The HTTP server component.
pub struct Http {
    bind: SocketAddr,
    max_request: usize,
    in_flight: Arc<InFlight>,
    accept_loop: Mutex<Option<JoinHandle<()>>>,
    local_addr: Mutex<Option<SocketAddr>>,
}

impl Http {
    /// The bound address, once started (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self.local_addr.lock()
    }
}

#[orderly::component]
impl Component for Http {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<VisitLog>()]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let book: Arc<VisitBook> = ctx.resource::<VisitBook>()?;
        let listener = TcpListener::bind(self.bind).await.map_err(|e| format!("binding {}: {e}", self.bind))?;
        let addr = listener.local_addr()?;
        *self.local_addr.lock() = Some(addr);
        slog::info!(ctx.logger(), "listening"; "addr" => addr.to_string());
        let (in_flight, max_request, logger) = (self.in_flight.clone(), self.max_request, ctx.logger().clone());
        let accept = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let guard = in_flight.enter();
                        slog::debug!(logger, "connection accepted"; "peer" => peer.to_string());
                        let book = book.clone();
                        tokio::spawn(async move {
                            serve(stream, max_request, &book).await;
                            drop(guard);
                        });
                    }
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    Err(e) => {
                        slog::warn!(logger, "accept failed"; "error" => e.to_string());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        *self.accept_loop.lock() = Some(accept);
        Ok(())
    }

    async fn stop_accepting(&self, ctx: &StopContext) -> Result<(), BoxError> {
        let accept = self.accept_loop.lock().take();
        if let Some(accept) = accept {
            // Aborting the loop drops the listener, which closes the socket.
            accept.abort();
            let _ = accept.await;
        }
        slog::info!(ctx.logger(), "listener closed"; "in_flight" => self.in_flight.count.load(Ordering::SeqCst));
        Ok(())
    }

    async fn drain(&self, ctx: &StopContext) -> Result<(), BoxError> {
        // Stop just short of the deadline, so the cut-off count is ours to report.
        let until = ctx.deadline().checked_sub(Duration::from_millis(50)).unwrap_or(ctx.deadline());
        loop {
            let idle = self.in_flight.idle.notified();
            let left = self.in_flight.count.load(Ordering::SeqCst);
            if left == 0 {
                return Ok(());
            }
            if tokio::time::timeout_at(until.into(), idle).await.is_err() {
                let left = self.in_flight.count.load(Ordering::SeqCst);
                return Err(format!("{left} request(s) still in flight at the drain deadline were cut off").into());
            }
        }
    }
}

/// Serves one request on one connection, then closes it.
async fn serve(mut stream: TcpStream, max_request: usize, book: &VisitBook) {
    let (status, path, body) = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream, max_request)).await {
        Err(_) => (408, String::new(), "request timeout\n".to_string()),
        Ok(Err(status)) => (status, String::new(), format!("{}\n", reason(status))),
        Ok(Ok((method, path))) => {
            let (status, body) = route(&method, &path, book);
            (status, path, body)
        }
    };
    if !path.is_empty() {
        let at_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        book.record(Visit { at_unix_ms, path, status });
    }
    let response = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    );
    // The client may have gone; there is nobody left to tell.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads up to the end of the request head; returns (method, path) or an error status.
async fn read_head(stream: &mut TcpStream, max_request: usize) -> Result<(String, String), u16> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() >= max_request {
            return Err(431);
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(400),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let line = head.split(|&b| b == b'\r').next().ok_or(400u16)?;
    let line = std::str::from_utf8(line).map_err(|_| 400u16)?;
    match line.split(' ').collect::<Vec<_>>().as_slice() {
        [method, path, version] if version.starts_with("HTTP/1.") && path.starts_with('/') => {
            Ok((method.to_string(), path.to_string()))
        }
        _ => Err(400),
    }
}

fn route(method: &str, path: &str, book: &VisitBook) -> (u16, String) {
    match (method, path) {
        ("GET", "/") => (200, format!("hello from example-app; visit number {}\n", book.recorded() + 1)),
        ("GET", "/visits") => (200, format!("{{\"recorded\":{},\"dropped\":{}}}\n", book.recorded(), book.dropped())),
        (_, "/" | "/visits") => (405, "method not allowed\n".into()),
        _ => (404, "not found\n".into()),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

impl FromConfig for Http {
    type Config = HttpConfig;

    fn from_config(config: HttpConfig) -> Result<Self, BoxError> {
        let bind = config.bind.parse().map_err(|e| format!("http.bind `{}`: {e}", config.bind))?;
        Ok(Http {
            bind,
            max_request: config.max_request_bytes,
            in_flight: Arc::new(InFlight::default()),
            accept_loop: Mutex::new(None),
            local_addr: Mutex::new(None),
        })
    }
}

orderly::register!(Http);
