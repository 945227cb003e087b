//! `[http]`: the public HTTP server's settings.

use std::net::SocketAddr;
use std::time::Duration;

use orderly::{config::Validate, config::Validation};
use serde::Deserialize;

use super::RateLimitConfig;

/// `[http]`. Every key can be set as `APP__HTTP__<KEY>`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on, `host:port` (`http.bind`). Port 0 picks a free port.
    pub bind: String,
    /// Worker threads; 0 means one per CPU.
    pub workers: usize,
    /// How long an idle keep-alive connection stays open; 0 disables keep-alive.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// How long a client may take to send a request's head; 0 disables the limit.
    #[serde(with = "humantime_serde")]
    pub client_request_timeout: Duration,
    /// Largest request body accepted by the JSON, form and bytes extractors.
    pub max_body_bytes: usize,
    /// How long a handler may run before it is cancelled and the client gets 504.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Requests served at once; beyond it, 503 with `Retry-After` at once, never a queue.
    pub max_concurrent_requests: usize,
    /// Connections the kernel queues before they are accepted.
    pub backlog: u32,
    /// One JSON log line per request.
    pub access_log: bool,
    /// Per-client rate limits by route group (`[http.rate_limit]`); off until a group is configured.
    pub rate_limit: RateLimitConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            workers: 0,
            keep_alive: Duration::from_secs(5),
            client_request_timeout: Duration::from_secs(5),
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 1024,
            backlog: 1024,
            access_log: true,
            rate_limit: RateLimitConfig::default(),
        }
    }
}

impl HttpConfig {
    /// The bind address, parsed (validation has checked it).
    pub fn bind_addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        self.bind.parse()
    }

    /// The worker count with 0 resolved to the number of CPUs.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

impl Validate for HttpConfig {
    fn validate(&self, v: &mut Validation) {
        v.check(
            self.bind_addr().is_ok(),
            "bind",
            format!("`{}` is not host:port (for example 0.0.0.0:8080)", self.bind),
        );
        v.check(self.workers <= 1024, "workers", "must be at most 1024 (0 means one per CPU)");
        v.check(self.max_body_bytes > 0, "max_body_bytes", "must be greater than 0");
        v.check(!self.request_timeout.is_zero(), "request_timeout", "must be greater than 0");
        v.check(self.max_concurrent_requests > 0, "max_concurrent_requests", "must be greater than 0");
        v.check(self.backlog > 0, "backlog", "must be greater than 0");
        self.rate_limit.validate(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let mut v = Validation::default();
        HttpConfig::default().validate(&mut v);
        assert!(v.issues().is_empty(), "{v:?}");
    }

    #[test]
    fn every_bad_key_is_reported() {
        let config = HttpConfig {
            bind: "localhost".into(),
            max_body_bytes: 0,
            request_timeout: Duration::ZERO,
            max_concurrent_requests: 0,
            ..HttpConfig::default()
        };
        let mut v = Validation::default();
        config.validate(&mut v);
        let text = format!("{v:?}");
        for key in ["bind", "max_body_bytes", "request_timeout", "max_concurrent_requests"] {
            assert!(text.contains(key), "{key} missing from {text}");
        }
    }
}
