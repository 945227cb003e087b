//! The `[http]` settings a reload changes while the server serves: the
//! request timeout, the body limit, the access log on or off and the rate
//! limits (`max_concurrent_requests` lives in the shared
//! [`Limit`](super::middleware::backpressure::Limit), one atomic).
//!
//! A request must not pay for a setting that changes a few times a year:
//! each worker keeps its own copy and compares one number (the generation,
//! read relaxed from a line no request writes) before using it, taking the
//! new copy only after a reload.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Extensions;
use parking_lot::Mutex;

use super::error::extractors;
use super::middleware::rate_limit::RateLimits;
use super::HttpConfig;

/// One version of the live settings.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) request_timeout: Duration,
    pub(crate) max_body_bytes: usize,
    pub(crate) access_log: bool,
    pub(crate) rate_limits: Option<Arc<RateLimits>>,
}

impl Settings {
    pub(crate) fn of(config: &HttpConfig) -> Self {
        Self {
            request_timeout: config.request_timeout,
            max_body_bytes: config.max_body_bytes,
            access_log: config.access_log,
            rate_limits: RateLimits::from_config(&config.rate_limit),
        }
    }
}

/// The settings in force, shared by every worker of every server of one run.
pub(crate) struct Live {
    generation: AtomicU64,
    settings: Mutex<Arc<Settings>>,
}

impl Live {
    pub(crate) fn new(settings: Settings) -> Arc<Self> {
        Arc::new(Self { generation: AtomicU64::new(0), settings: Mutex::new(Arc::new(settings)) })
    }

    /// Puts `settings` in force for every request that begins from now on.
    pub(crate) fn set(&self, settings: Settings) {
        *self.settings.lock() = Arc::new(settings);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The settings in force.
    pub(crate) fn current(&self) -> Arc<Settings> {
        self.settings.lock().clone()
    }

    /// Changes one setting (tests).
    #[cfg(test)]
    pub(crate) fn update(&self, change: impl FnOnce(&mut Settings)) {
        let mut settings = (**self.settings.lock()).clone();
        change(&mut settings);
        self.set(settings);
    }

    fn snapshot(&self) -> (u64, Arc<Settings>) {
        // The generation first: a reload in between is seen on the next request.
        let generation = self.generation.load(Ordering::Acquire);
        (generation, self.current())
    }
}

/// One worker's copy of the live settings.
pub(crate) struct WorkerSettings {
    live: Arc<Live>,
    /// The body limit the worker's `App` was built with: its extractor
    /// configs need replacing per request only once a reload changed it.
    built_body_limit: usize,
    current: RefCell<Current>,
}

struct Current {
    generation: u64,
    settings: Arc<Settings>,
    /// Extractor configs with the reloaded body limit, when it differs.
    extractors: Option<Rc<Extensions>>,
}

/// What one request uses.
pub(crate) struct ForRequest {
    pub(crate) request_timeout: Duration,
    pub(crate) access_log: bool,
    pub(crate) rate_limits: Option<Arc<RateLimits>>,
    pub(crate) extractors: Option<Rc<Extensions>>,
}

impl WorkerSettings {
    pub(crate) fn new(live: Arc<Live>) -> Self {
        let (generation, settings) = live.snapshot();
        let built_body_limit = settings.max_body_bytes;
        Self { live, built_body_limit, current: RefCell::new(Current { generation, settings, extractors: None }) }
    }

    /// The body limit to build the worker's `App` with.
    pub(crate) fn body_limit(&self) -> usize {
        self.built_body_limit
    }

    /// The settings for a request beginning now.
    pub(crate) fn for_request(&self) -> ForRequest {
        let mut current = self.current.borrow_mut();
        if self.live.generation.load(Ordering::Relaxed) != current.generation {
            let (generation, settings) = self.live.snapshot();
            let limit = settings.max_body_bytes;
            let extractors = (limit != self.built_body_limit).then(|| Rc::new(extractor_configs(limit)));
            *current = Current { generation, settings, extractors };
        }
        let settings = &current.settings;
        ForRequest {
            request_timeout: settings.request_timeout,
            access_log: settings.access_log,
            rate_limits: settings.rate_limits.clone(),
            extractors: current.extractors.clone(),
        }
    }
}

/// The extractor configs that carry the body limit, as the `App` sets them.
pub(crate) fn extractor_configs(limit: usize) -> Extensions {
    let mut configs = Extensions::new();
    configs.insert(extractors::json(limit));
    configs.insert(extractors::bytes(limit));
    configs.insert(extractors::form(limit));
    configs
}
