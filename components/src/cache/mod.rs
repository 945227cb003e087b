//! The cache component (`[cache]`): an in-process cache (moka: TTL and
//! capacity) by default, or Redis (deadpool-redis) chosen by config, behind
//! one typed API — get, set and delete with TTL, and get-or-load that
//! coalesces concurrent loads of the same key.
//!
//! When Redis is down, the cache degrades to misses: after
//! `breaker_failures` failures in a row a circuit breaker opens and calls
//! skip Redis for `breaker_cooldown`, then one trial call checks whether it
//! is back. `ready()` reports `Degraded` meanwhile, which does not fail
//! readiness: the app keeps serving from its database. Recovery is
//! automatic.

mod breaker;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_redis::redis::AsyncCommands;
use orderly::{
    config::Secret, config::Validate, config::Validation, BoxError, Component, Dependency, Readiness, ReloadContext,
    Reloaded, StartContext, StopContext,
};
use parking_lot::{Mutex, RwLock};
use prometheus::{IntCounterVec, IntGauge, Opts};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use self::breaker::Breaker;
use crate::metrics::{Metrics, MetricsError};

/// Which store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheBackend {
    /// In this process (moka).
    Memory,
    /// A Redis server (shared by every replica).
    Redis,
}

/// `[cache]`. Every key can be set as `APP__CACHE__<KEY>`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// `memory` or `redis`.
    pub backend: CacheBackend,
    /// Entries at most (memory backend).
    pub capacity: u64,
    /// TTL when none is given.
    #[serde(with = "humantime_serde")]
    pub default_ttl: Duration,
    /// `redis://host:port/db` (redacted in dumps).
    pub redis_url: Secret<String>,
    /// How long one Redis call may take before it counts as a failure.
    #[serde(with = "humantime_serde")]
    pub redis_timeout: Duration,
    /// Failures in a row that open the breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before one trial call.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
    /// Prepended to every key (share one Redis between apps safely).
    pub key_prefix: String,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            backend: CacheBackend::Memory,
            capacity: 10_000,
            default_ttl: Duration::from_secs(300),
            redis_url: Secret::new("redis://127.0.0.1:6379".into()),
            redis_timeout: Duration::from_millis(250),
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(5),
            key_prefix: String::new(),
        }
    }
}

impl Validate for CacheConfig {
    fn validate(&self, v: &mut Validation) {
        v.check(self.capacity >= 1, "capacity", "must be at least 1");
        v.check(!self.default_ttl.is_zero(), "default_ttl", "must be greater than 0");
        v.check(
            self.backend != CacheBackend::Redis || self.redis_url.expose().starts_with("redis://"),
            "redis_url",
            "must be a redis:// URL (the value is not shown)",
        );
        v.check(!self.redis_timeout.is_zero(), "redis_timeout", "must be greater than 0");
        v.check(self.breaker_failures >= 1, "breaker_failures", "must be at least 1");
    }
}

/// A value and how long it lives.
#[derive(Clone)]
struct Entry {
    bytes: Arc<[u8]>,
    ttl: Duration,
}

struct PerEntryTtl;

impl moka::Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: std::time::Instant) -> Option<Duration> {
        Some(entry.ttl)
    }
}

enum Store {
    Memory(moka::future::Cache<String, Entry>),
    Redis(deadpool_redis::Pool),
}

#[derive(Clone)]
struct CacheMetrics {
    requests: IntCounterVec,
    errors: IntCounterVec,
    breaker_open: IntGauge,
}

impl CacheMetrics {
    fn register(registry: &prometheus::Registry) -> Result<Self, MetricsError> {
        use crate::metrics::register;
        Ok(Self {
            requests: register(
                registry,
                "cache_requests_total",
                IntCounterVec::new(
                    Opts::new("cache_requests_total", "Cache reads by backend and result (hit, miss)."),
                    &["backend", "result"],
                ),
            )?,
            errors: register(
                registry,
                "cache_errors_total",
                IntCounterVec::new(
                    Opts::new("cache_errors_total", "Cache calls that failed or were skipped by the open breaker."),
                    &["backend"],
                ),
            )?,
            breaker_open: register(
                registry,
                "cache_breaker_open",
                IntGauge::new("cache_breaker_open", "1 while the Redis breaker is open (serving misses)."),
            )?,
        })
    }
}

/// An in-process store of `capacity` entries, each with its own TTL.
fn memory_store(capacity: u64) -> moka::future::Cache<String, Entry> {
    moka::future::Cache::builder().max_capacity(capacity).expire_after(PerEntryTtl).build()
}

/// Loads in progress, by key: concurrent `get_or_load` calls share one.
type Loads = Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<[u8]>>>>>;

/// The cache component.
pub struct Cache {
    /// The config in force: built with, or the last reload's.
    config: RwLock<CacheConfig>,
    /// The current run's store; none before the start and after the close.
    store: RwLock<Option<Arc<Store>>>,
    breaker: Breaker,
    metrics: RwLock<Option<CacheMetrics>>,
    loads: Loads,
    last_error: Mutex<Option<String>>,
}

impl Cache {
    /// A cache with `config`.
    pub fn new(config: CacheConfig) -> Self {
        let breaker = Breaker::new(config.breaker_failures, config.breaker_cooldown);
        Self {
            config: RwLock::new(config),
            store: RwLock::new(None),
            breaker,
            metrics: RwLock::new(None),
            loads: Mutex::default(),
            last_error: Mutex::new(None),
        }
    }

    /// The last Redis error, for diagnostics.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.config.read().key_prefix)
    }

    fn default_ttl(&self) -> Duration {
        self.config.read().default_ttl
    }

    fn store(&self) -> Option<Arc<Store>> {
        self.store.read().clone()
    }

    fn backend_label(&self) -> &'static str {
        match self.config.read().backend {
            CacheBackend::Memory => "memory",
            CacheBackend::Redis => "redis",
        }
    }

    fn count(&self, result: &str) {
        if let Some(m) = &*self.metrics.read() {
            m.requests.with_label_values(&[self.backend_label(), result]).inc();
        }
    }

    /// Runs one Redis call through the breaker and the timeout; `None` when
    /// skipped or failed (counted, remembered for `ready`).
    async fn redis<T, F, Fut>(&self, pool: &deadpool_redis::Pool, call: F) -> Option<T>
    where
        F: FnOnce(deadpool_redis::Connection) -> Fut,
        Fut: Future<Output = deadpool_redis::redis::RedisResult<T>>,
    {
        let fail = |error: String| {
            self.breaker.failure(Instant::now());
            *self.last_error.lock() = Some(error);
            if let Some(m) = &*self.metrics.read() {
                m.errors.with_label_values(&["redis"]).inc();
                m.breaker_open.set(i64::from(self.breaker.is_open()));
            }
            None
        };
        if !self.breaker.allow(Instant::now()) {
            if let Some(m) = &*self.metrics.read() {
                m.errors.with_label_values(&["redis"]).inc();
            }
            return None;
        }
        let attempt = async {
            let connection = pool.get().await.map_err(|e| e.to_string())?;
            call(connection).await.map_err(|e| e.to_string())
        };
        let timeout = self.config.read().redis_timeout;
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(value)) => {
                self.breaker.success();
                if let Some(m) = &*self.metrics.read() {
                    m.breaker_open.set(0);
                }
                Some(value)
            }
            Ok(Err(e)) => fail(e),
            Err(_) => fail(format!("no answer within {timeout:?}")),
        }
    }

    async fn get_bytes(&self, key: &str) -> Option<Arc<[u8]>> {
        let key = self.key(key);
        let found = match &*self.store()? {
            Store::Memory(cache) => cache.get(&key).await.map(|e| e.bytes),
            Store::Redis(pool) => self
                .redis(pool, |mut c| async move { c.get::<_, Option<Vec<u8>>>(key).await })
                .await
                .flatten()
                .map(Arc::from),
        };
        self.count(if found.is_some() { "hit" } else { "miss" });
        found
    }

    async fn set_bytes(&self, key: &str, bytes: Arc<[u8]>, ttl: Duration) {
        let key = self.key(key);
        match self.store().as_deref() {
            Some(Store::Memory(cache)) => cache.insert(key, Entry { bytes, ttl }).await,
            Some(Store::Redis(pool)) => {
                let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                self.redis(pool, |mut c| async move { c.pset_ex::<_, _, ()>(key, &bytes[..], ms).await }).await;
            }
            None => {}
        }
    }

    /// The value under `key`, or `None` (missing, expired, undecodable, or Redis unavailable).
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let bytes = self.get_bytes(key).await?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The JSON text stored under `key` by [`set`](Self::set), undecoded:
    /// a handler that only passes the value on can answer with it as is.
    pub async fn get_json(&self, key: &str) -> Option<Arc<[u8]>> {
        self.get_bytes(key).await
    }

    /// Stores `value` for `ttl` (or the default TTL). Best effort: with
    /// Redis down, it is skipped.
    pub async fn set<T: Serialize>(&self, key: &str, value: &T, ttl: Option<Duration>) {
        if let Ok(bytes) = serde_json::to_vec(value) {
            self.set_bytes(key, bytes.into(), ttl.unwrap_or_else(|| self.default_ttl())).await;
        }
    }

    /// Removes `key`.
    pub async fn delete(&self, key: &str) {
        let key = self.key(key);
        match self.store().as_deref() {
            Some(Store::Memory(cache)) => cache.invalidate(&key).await,
            Some(Store::Redis(pool)) => {
                self.redis(pool, |mut c| async move { c.del::<_, ()>(key).await }).await;
            }
            None => {}
        }
    }

    /// The cached value, or `load`'s, which is then cached. Concurrent calls
    /// for the same key in this process share one load. A failed load is
    /// not cached: the next waiting caller then runs its own.
    pub async fn get_or_load<T, E, F, Fut>(&self, key: &str, ttl: Option<Duration>, load: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(value) = self.get(key).await {
            return Ok(value);
        }
        let cell = self.loads.lock().entry(key.to_owned()).or_default().clone();
        // Made now, polled only if this caller does the load (futures are lazy).
        let load = load();
        let mut load = std::pin::pin!(load);
        let mut ours: Option<Result<T, E>> = None;
        let shared = cell
            .get_or_try_init(|| async {
                let result = load.as_mut().await;
                let bytes = result.as_ref().ok().and_then(|value| serde_json::to_vec(value).ok());
                ours = Some(result);
                let bytes: Arc<[u8]> = bytes.ok_or(())?.into();
                self.set_bytes(key, bytes.clone(), ttl.unwrap_or_else(|| self.default_ttl())).await;
                Ok::<_, ()>(bytes)
            })
            .await
            .cloned();
        // The first caller to finish clears the entry, so later calls start afresh.
        {
            let mut loads = self.loads.lock();
            if loads.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                loads.remove(key);
            }
        }
        if let Some(result) = ours {
            return result;
        }
        if let Some(value) = shared.ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()) {
            return Ok(value);
        }
        // Our load was never polled: run it now.
        load.await
    }
}

#[orderly::component]
impl Component for Cache {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Metrics>()]
    }

    /// Each run builds its own store (a fresh Redis pool; the memory
    /// store starts empty) and drops it at the close.
    fn restartable(&self) -> bool {
        true
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        ctx.dependency::<Metrics>()?;
        *self.metrics.write() = Some(ctx.metric_set(CacheMetrics::register)?);
        let config = self.config.read().clone();
        let store = match config.backend {
            CacheBackend::Memory => Store::Memory(memory_store(config.capacity)),
            CacheBackend::Redis => {
                let pool = deadpool_redis::Config::from_url(config.redis_url.expose().clone())
                    .builder()?
                    .max_size(16)
                    .wait_timeout(Some(config.redis_timeout))
                    .create_timeout(Some(config.redis_timeout))
                    .runtime(deadpool_redis::Runtime::Tokio1)
                    .build()?;
                Store::Redis(pool)
            }
        };
        let store = Arc::new(store);
        *self.store.write() = Some(store.clone());
        if let Store::Redis(pool) = &*store {
            // Redis being down is not a reason to refuse to start: we serve misses.
            let ping: Option<String> = self
                .redis(pool, |mut c| async move { deadpool_redis::redis::cmd("PING").query_async(&mut c).await })
                .await;
            if ping.is_none() {
                slog::warn!(ctx.logger(), "redis is not reachable; serving misses until it is";
                    "error" => self.last_error.lock().clone().unwrap_or_default());
            }
        }
        slog::info!(ctx.logger(), "cache ready"; "backend" => self.backend_label());
        Ok(())
    }

    /// `default_ttl`, `capacity`, `redis_timeout` and `key_prefix` apply at
    /// once (a new capacity starts a store of that size, empty);
    /// `backend`, `redis_url` and the breaker's settings restart the cache
    /// with its dependents.
    async fn reload(&self, ctx: &ReloadContext) -> Result<Reloaded, BoxError> {
        let Some(new) = ctx.replacement::<Cache>() else { return Ok(Reloaded::NeedsRestart) };
        let new = new.config.read().clone();
        let old = self.config.read().clone();
        if new.backend != old.backend
            || new.redis_url.expose() != old.redis_url.expose()
            || new.breaker_failures != old.breaker_failures
            || new.breaker_cooldown != old.breaker_cooldown
        {
            return Ok(Reloaded::NeedsRestart);
        }
        if new.capacity != old.capacity && matches!(self.store().as_deref(), Some(Store::Memory(_))) {
            // moka cannot resize a store, and moving the entries would
            // restart their TTLs (a stale value would outlive its TTL): the
            // new store starts empty, and misses load afresh.
            *self.store.write() = Some(Arc::new(Store::Memory(memory_store(new.capacity))));
        }
        slog::info!(ctx.logger(), "reloaded in place"; "default_ttl" => ?new.default_ttl, "capacity" => new.capacity);
        *self.config.write() = new;
        Ok(Reloaded::Applied)
    }

    async fn ready(&self) -> Readiness {
        if self.breaker.is_open() {
            let why = self.last_error.lock().clone().unwrap_or_default();
            return Readiness::Degraded(format!("redis unavailable ({why}); serving misses"));
        }
        Readiness::Ready
    }

    async fn close(&self, _ctx: &StopContext) -> Result<(), BoxError> {
        let store = self.store.write().take();
        if let Some(Store::Redis(pool)) = store.as_deref() {
            pool.close();
        }
        Ok(())
    }
}

orderly::register!(Cache: CacheConfig => Cache::new);
