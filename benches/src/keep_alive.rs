//! A keep-alive HTTP/1.1 load that counts answers over time: for a rate
//! before and after an event (a SIGHUP), which `wrk` cannot split.
//!
//! Each client thread keeps one connection and sends the next request as
//! soon as the answer is in; a `Connection: close` answer (a server that
//! hands over) makes it reconnect. Every 200 answer is counted in the
//! 10 ms bucket of the moment it arrived; anything else is counted as an
//! error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The width of one bucket.
pub const BUCKET: Duration = Duration::from_millis(10);

/// Answers per bucket since the load began, and the errors.
pub struct Counts {
    pub began: Instant,
    pub buckets: Vec<AtomicU64>,
    pub errors: AtomicU64,
}

impl Counts {
    /// Answers between `from` and `to` (measured from `began`).
    pub fn between(&self, from: Duration, to: Duration) -> u64 {
        let (a, b) = ((from.as_millis() / BUCKET.as_millis()) as usize, (to.as_millis() / BUCKET.as_millis()) as usize);
        self.buckets[a.min(self.buckets.len())..b.min(self.buckets.len())]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// One request on `stream`; `Some(keep)` for a 200 (whether the
/// connection stays open), `None` for anything else.
fn one(stream: &mut BufReader<TcpStream>, request: &[u8]) -> Option<bool> {
    stream.get_mut().write_all(request).ok()?;
    let mut line = String::new();
    stream.read_line(&mut line).ok()?;
    let ok = line.get(9..12) == Some("200");
    let (mut length, mut keep) = (0usize, true);
    loop {
        line.clear();
        stream.read_line(&mut line).ok()?;
        let header = line.trim_end().to_ascii_lowercase();
        if header.is_empty() {
            break;
        }
        if let Some(value) = header.strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        if header == "connection: close" {
            keep = false;
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    ok.then_some(keep)
}

/// Runs `clients` keep-alive clients against `addr` for `length`.
pub fn run(addr: SocketAddr, path: &str, clients: usize, length: Duration) -> Arc<Counts> {
    let counts = Arc::new(Counts {
        began: Instant::now(),
        buckets: (0..length.as_millis() / BUCKET.as_millis() + 1).map(|_| AtomicU64::new(0)).collect(),
        errors: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let request = format!("GET {path} HTTP/1.1\r\nhost: bench\r\n\r\n").into_bytes();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (counts, stop, request) = (counts.clone(), stop.clone(), request.clone());
            std::thread::spawn(move || {
                let mut stream: Option<BufReader<TcpStream>> = None;
                while !stop.load(Ordering::Relaxed) {
                    let connection = match stream.as_mut() {
                        Some(connection) => connection,
                        None => match TcpStream::connect(addr) {
                            Ok(s) => stream.insert(BufReader::new(s)),
                            Err(_) => {
                                counts.errors.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(1));
                                continue;
                            }
                        },
                    };
                    match one(connection, &request) {
                        Some(keep) => {
                            let at = counts.began.elapsed().as_millis() / BUCKET.as_millis();
                            if let Some(bucket) = counts.buckets.get(at as usize) {
                                bucket.fetch_add(1, Ordering::Relaxed);
                            }
                            if !keep {
                                stream = None;
                            }
                        }
                        None => {
                            counts.errors.fetch_add(1, Ordering::Relaxed);
                            stream = None;
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(length);
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
    counts
}
