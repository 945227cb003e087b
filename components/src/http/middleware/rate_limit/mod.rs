//! Per-client rate limits by route group (`[http.rate_limit]`), so one
//! noisy client runs out of its own budget instead of everyone's
//! `max_concurrent_requests`.
//!
//! Each group is governor's generic cell-rate algorithm (GCRA) over a
//! [`store::BoundedStore`]: a client may send `burst` requests at once and
//! `requests` per `per` in the long run. Every answer in a group carries the
//! IETF draft's `RateLimit-Policy` and `RateLimit` headers; past the limit
//! the answer is 429 with `Retry-After`, as a JSON error like every other.
//! Paths outside every group are not looked at beyond the prefix match.

mod client;
mod store;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use governor::clock::{Clock, MonotonicClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter};

use self::client::{client_key, ClientKey, TrustedProxies};
use self::store::BoundedStore;
use crate::http::rate_limit_config::{parse_network, ClientKeyKind, RateLimitConfig, RateLimitGroup};
use crate::http::ApiError;

/// Checks between two sweeps of a group's full buckets.
const SWEEP_EVERY: u64 = 1 << 16;

type Limiter = RateLimiter<ClientKey, BoundedStore<ClientKey>, MonotonicClock, StateInformationMiddleware>;

/// The headers a limited group puts on its answers.
pub(crate) type Headers = [(HeaderName, HeaderValue); 2];

/// What the limits say about one request.
pub(crate) enum Verdict {
    /// Within its group's limit: serve it, and add the headers.
    Allowed(Headers),
    /// Over it: answer 429 with the error (which carries the headers).
    Limited(actix_web::Error),
}

/// Every group's limiter, longest prefix first.
pub(crate) struct RateLimits {
    groups: Vec<Group>,
    proxies: TrustedProxies,
}

struct Group {
    name: String,
    /// Without a trailing `/`.
    prefix: String,
    key: ClientKeyKind,
    limiter: Limiter,
    clock: MonotonicClock,
    policy: HeaderValue,
    burst: u32,
    interval: Duration,
    checks: AtomicU64,
}

impl RateLimits {
    /// The limits `config` describes, or `None` when it has no group
    /// (the request path then never reaches this module).
    pub(crate) fn from_config(config: &RateLimitConfig) -> Option<Arc<Self>> {
        if config.groups.is_empty() {
            return None;
        }
        let per_group = config.max_clients;
        let mut groups: Vec<Group> =
            config.groups.iter().filter_map(|(name, group)| Group::new(name, group, per_group)).collect();
        groups.sort_by_key(|group| std::cmp::Reverse(group.prefix.len()));
        let proxies = TrustedProxies::new(config.trusted_proxies.iter().filter_map(|p| parse_network(p)).collect());
        Some(Arc::new(Self { groups, proxies }))
    }

    /// The verdict for `req`, or `None` if no group covers its path.
    pub(crate) fn check(&self, req: &ServiceRequest) -> Option<Verdict> {
        let path = req.path();
        let group = self.groups.iter().find(|group| covers(&group.prefix, path))?;
        Some(group.check(client_key(group.key, &self.proxies, req)))
    }

    /// Clients remembered, over every group (for tests and the bound).
    #[cfg(test)]
    fn clients(&self) -> usize {
        self.groups.iter().map(|group| group.limiter.len()).sum()
    }
}

/// Whether `prefix` covers `path` on whole segments.
fn covers(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Group {
    /// `None` only for settings validation refuses (zero rate or burst).
    fn new(name: &str, config: &RateLimitGroup, max_clients: usize) -> Option<Self> {
        let burst = NonZeroU32::new(config.burst_size())?;
        let interval = config.replenish_interval();
        let quota = Quota::with_period(interval)?.allow_burst(burst);
        let limiter: Limiter = RateLimiter::new(quota, BoundedStore::new(max_clients), MonotonicClock);
        // The window a full bucket takes to come back, in whole seconds.
        let window = seconds_up(interval * burst.get());
        let policy = HeaderValue::from_str(&format!("\"{name}\";q={};w={window}", burst.get())).ok()?;
        Some(Self {
            name: name.to_owned(),
            prefix: config.prefix.trim_end_matches('/').to_owned(),
            key: config.key,
            limiter,
            clock: MonotonicClock,
            policy,
            burst: burst.get(),
            interval,
            checks: AtomicU64::new(0),
        })
    }

    fn check(&self, key: ClientKey) -> Verdict {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            // Buckets full again are no different from unknown clients.
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let refill = self.interval * self.burst.saturating_sub(remaining);
                Verdict::Allowed(self.headers(remaining, seconds_up(refill)))
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let retry_after = Duration::from_secs(seconds_up(wait).max(1));
                let error = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("too many requests from this client for `{}`; try again later", self.name),
                )
                .with_retry_after(retry_after);
                let headers = self.headers(0, retry_after.as_secs());
                Verdict::Limited(super::ErrorWithHeaders::add(error.into(), headers))
            }
        }
    }

    fn headers(&self, remaining: u32, reset_seconds: u64) -> Headers {
        // Built by hand, not with `format!`: it runs on every request of the group.
        let mut state = Vec::with_capacity(self.name.len() + 24);
        state.push(b'"');
        state.extend_from_slice(self.name.as_bytes());
        state.extend_from_slice(b"\";r=");
        state.extend_from_slice(itoa::Buffer::new().format(remaining).as_bytes());
        state.extend_from_slice(b";t=");
        state.extend_from_slice(itoa::Buffer::new().format(reset_seconds).as_bytes());
        [
            (HeaderName::from_static("ratelimit-policy"), self.policy.clone()),
            // The name was accepted in the policy header, so this value is valid too.
            (
                HeaderName::from_static("ratelimit"),
                HeaderValue::from_maybe_shared(bytes_of(state)).unwrap_or_else(|_| HeaderValue::from_static("")),
            ),
        ]
    }
}

fn bytes_of(value: Vec<u8>) -> actix_web::web::Bytes {
    actix_web::web::Bytes::from(value)
}

/// A duration in whole seconds, rounded up.
fn seconds_up(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests;
