//! A small round-robin HTTP proxy that routes only to instances whose
//! `/readyz` answers 200, the way a Kubernetes Service follows the ready
//! endpoints of its pods (probed every 50 ms here). It never retries: a
//! request it could not deliver is a 502 the client sees, so a test counts
//! every failure the rollout caused.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One instance behind the proxy.
struct Endpoint {
    http: SocketAddr,
    admin: SocketAddr,
    ready: bool,
    served: usize,
}

/// The proxy and its endpoint list.
#[derive(Clone)]
pub struct Proxy {
    endpoints: Arc<Mutex<Vec<Endpoint>>>,
    next: Arc<AtomicUsize>,
    pub addr: SocketAddr,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy { endpoints: Arc::default(), next: Arc::default(), addr: listener.local_addr().unwrap() };
        let upstream = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap();
        let serving = proxy.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (proxy, upstream) = (serving.clone(), upstream.clone());
                tokio::spawn(async move { proxy.serve(stream, upstream).await });
            }
        });
        let probing = proxy.clone();
        tokio::spawn(async move { probing.probe_forever().await });
        proxy
    }

    /// Adds an instance; it gets traffic once its readiness probe passes.
    pub fn add(&self, http: SocketAddr, admin: SocketAddr) {
        self.endpoints.lock().push(Endpoint { http, admin, ready: false, served: 0 });
    }

    /// Removes an instance (its pod is gone); returns how many requests it served.
    pub fn remove(&self, http: SocketAddr) -> usize {
        let mut endpoints = self.endpoints.lock();
        let at = endpoints.iter().position(|e| e.http == http).expect("a known endpoint");
        endpoints.remove(at).served
    }

    /// Whether `http` is routed to now.
    pub fn is_ready(&self, http: SocketAddr) -> bool {
        self.endpoints.lock().iter().any(|e| e.http == http && e.ready)
    }

    async fn probe_forever(&self) {
        let probe = reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(300)).build().unwrap();
        loop {
            let targets: Vec<(SocketAddr, SocketAddr)> =
                self.endpoints.lock().iter().map(|e| (e.http, e.admin)).collect();
            for (http, admin) in targets {
                let ready =
                    matches!(probe.get(format!("http://{admin}/readyz")).send().await, Ok(r) if r.status() == 200);
                if let Some(e) = self.endpoints.lock().iter_mut().find(|e| e.http == http) {
                    e.ready = ready;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pick(&self) -> Option<SocketAddr> {
        let mut endpoints = self.endpoints.lock();
        let mut ready: Vec<&mut Endpoint> = endpoints.iter_mut().filter(|e| e.ready).collect();
        if ready.is_empty() {
            return None;
        }
        let n = ready.len();
        let chosen = &mut ready[self.next.fetch_add(1, Ordering::Relaxed) % n];
        chosen.served += 1;
        Some(chosen.http)
    }

    async fn serve(&self, mut stream: TcpStream, upstream: reqwest::Client) {
        let Some((method, path, headers, body)) = read_request(&mut stream).await else { return };
        let (status, content_type, body) = match self.pick() {
            None => (503, "text/plain".to_owned(), b"no ready endpoint".to_vec()),
            Some(backend) => {
                let mut request = upstream.request(method, format!("http://{backend}{path}")).body(body);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let content_type = response
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("application/octet-stream")
                            .to_owned();
                        (status, content_type, response.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
                    }
                    Err(e) => (502, "text/plain".to_owned(), format!("upstream {backend}: {e}").into_bytes()),
                }
            }
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(&body).await;
    }
}

type Request = (reqwest::Method, String, Vec<(String, String)>, Vec<u8>);

/// Reads one request: head, then a Content-Length body.
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buffer[..end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = reqwest::Method::from_bytes(first.next()?.as_bytes()).ok()?;
    let path = first.next()?.to_owned();
    let mut headers = Vec::new();
    let mut length = 0;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_owned());
        if name == "content-length" {
            length = value.parse().ok()?;
        }
        if !["host", "connection", "content-length"].contains(&name.as_str()) {
            headers.push((name, value));
        }
    }
    let mut body = buffer[end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    Some((method, path, headers, body))
}
