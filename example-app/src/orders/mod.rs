//! The orders API (`[orders]`): `POST/GET /api/v1/orders`,
//! `GET /api/v1/orders/{id}`, behind the API key check, plus the
//! `send_confirmation` job that each new order enqueues in its own
//! transaction.
//!
//! It is built only from the standard components: the HTTP server (routes),
//! Postgres (orders), the workers (confirmations), the cache (reads) and
//! metrics (business counters); and from the app's [`ApiKeys`]. The app's
//! [`Faults`], when present and switched on, are a layer around the API
//! scope and the job handler that the store, the authentication and the
//! job do not know about. It joins no stop phase of its own: the server
//! drains its requests (phase 2), the workers finish its jobs (phase 3).

pub mod confirmation;
pub mod metrics;
pub mod model;
pub mod routes;
pub mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, HttpResponse};
use orderly::{
    config::Validate, config::Validation, BoxError, Component, Dependency, Readiness, ReloadContext, Reloaded,
    StartContext,
};
use orderly_components::cache::Cache;
use orderly_components::http::HttpServer;
use orderly_components::metrics::Metrics;
use orderly_components::postgres::Database;
use orderly_components::workers::Workers;
use parking_lot::Mutex;
use serde::Deserialize;

use self::confirmation::SendConfirmation;
use self::metrics::OrderMetrics;
use self::routes::OrdersApi;
use self::store::{OrderStore, CONFIRMATION_JOB};
use crate::auth::{require_bearer, ApiKeys};
use crate::faults::{inject_request_faults, Faults};

/// The cache key of an order.
pub fn cache_key(id: i64) -> String {
    format!("order:{id}")
}

/// `[orders]`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrdersConfig {
    /// How long a confirmed order (its final state) stays cached.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// How long a pending order stays cached: it changes when its
    /// confirmation runs, and other replicas' caches are not told.
    #[serde(with = "humantime_serde")]
    pub pending_cache_ttl: Duration,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self { cache_ttl: Duration::from_secs(300), pending_cache_ttl: Duration::from_secs(1) }
    }
}

impl Validate for OrdersConfig {
    fn validate(&self, v: &mut Validation) {
        v.check(!self.cache_ttl.is_zero(), "cache_ttl", "must be greater than 0");
        v.check(!self.pending_cache_ttl.is_zero(), "pending_cache_ttl", "must be greater than 0");
        v.check(self.pending_cache_ttl <= self.cache_ttl, "pending_cache_ttl", "must not exceed cache_ttl");
    }
}

/// How long orders stay cached; a reload changes them in place.
pub struct CacheTtls {
    confirmed_ms: AtomicU64,
    pending_ms: AtomicU64,
}

impl CacheTtls {
    fn new(config: &OrdersConfig) -> Self {
        let ttls = Self { confirmed_ms: AtomicU64::new(0), pending_ms: AtomicU64::new(0) };
        ttls.set(config);
        ttls
    }

    fn set(&self, config: &OrdersConfig) {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.confirmed_ms.store(ms(config.cache_ttl), Ordering::Relaxed);
        self.pending_ms.store(ms(config.pending_cache_ttl), Ordering::Relaxed);
    }

    fn copy_from(&self, other: &CacheTtls) {
        self.confirmed_ms.store(other.confirmed_ms.load(Ordering::Relaxed), Ordering::Relaxed);
        self.pending_ms.store(other.pending_ms.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// The TTL for an order in `status`.
    pub fn of(&self, status: model::OrderStatus) -> Duration {
        Duration::from_millis(match status {
            model::OrderStatus::Pending => self.pending_ms.load(Ordering::Relaxed),
            model::OrderStatus::Confirmed => self.confirmed_ms.load(Ordering::Relaxed),
        })
    }
}

/// The orders component.
pub struct Orders {
    ttls: Arc<CacheTtls>,
    faults: Mutex<Option<Arc<Faults>>>,
}

#[orderly::component]
impl Component for Orders {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![
            Dependency::on::<HttpServer>(),
            Dependency::on::<Database>(),
            Dependency::on::<Workers>(),
            Dependency::on::<Cache>(),
            Dependency::on::<Metrics>(),
            Dependency::on::<ApiKeys>(),
            // A layer for experiments: the app runs without it.
            Dependency::on::<Faults>().optional(),
        ]
    }

    /// Every start registers its handler and routes again: the orders
    /// restart with the database, the workers, the cache or the keys.
    fn restartable(&self) -> bool {
        true
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let faults = ctx.dependency::<Faults>().ok();
        let cache = ctx.dependency::<Cache>()?;
        let workers = ctx.dependency::<Workers>()?;
        ctx.dependency::<Metrics>()?;
        // Registered once per runtime: a restart counts on.
        let metrics = ctx.metric_set(OrderMetrics::register)?;
        let auth = web::Data::new(ctx.dependency::<ApiKeys>()?.authenticator()?);
        let confirmation = SendConfirmation { cache: cache.clone(), metrics: metrics.clone() };
        match faults.as_ref().filter(|faults| faults.affects_jobs()) {
            Some(faults) => workers.handle(CONFIRMATION_JOB, faults.wrap_job(confirmation)),
            None => workers.handle(CONFIRMATION_JOB, confirmation),
        }
        let request_faults = faults.clone().filter(|faults| faults.affects_requests()).map(web::Data::new);
        let api = web::Data::new(OrdersApi {
            store: OrderStore::new(ctx.dependency::<Database>()?, workers),
            cache,
            metrics,
            ttls: self.ttls.clone(),
        });
        ctx.dependency::<HttpServer>()?.routes(ctx, move |cfg| {
            // Public, and registered before the scope so that it matches first.
            cfg.route(
                "/api/v1/openapi.json",
                web::get().to(|| async {
                    HttpResponse::Ok().content_type("application/json").body(crate::openapi::document())
                }),
            );
            let mut scope = web::scope("/api/v1").app_data(auth.clone()).app_data(api.clone());
            if let Some(faults) = &request_faults {
                scope = scope.app_data(faults.clone());
            }
            cfg.service(
                scope
                    // Inner: the faults act after authentication, as a slow or failing backend would.
                    .wrap(Condition::new(request_faults.is_some(), from_fn(inject_request_faults)))
                    .wrap(from_fn(require_bearer))
                    // One resource per path, so another method gets 405 with `Allow`, not 404.
                    .service(
                        web::resource("/orders")
                            .route(web::post().to(routes::create_order))
                            .route(web::get().to(routes::list_orders)),
                    )
                    .service(web::resource("/orders/{id}").route(web::get().to(routes::get_order))),
            );
        })?;
        *self.faults.lock() = faults;
        Ok(())
    }

    /// `[orders]` holds only cache TTLs, and they change in place: orders
    /// cached from now on get the new ones.
    async fn reload(&self, ctx: &ReloadContext) -> Result<Reloaded, BoxError> {
        let new = ctx.replacement::<Orders>().ok_or("the replacement is not an Orders")?;
        self.ttls.copy_from(&new.ttls);
        slog::info!(ctx.logger(), "cache TTLs changed";
            "cache_ttl" => ?new.ttls.of(model::OrderStatus::Confirmed),
            "pending_cache_ttl" => ?new.ttls.of(model::OrderStatus::Pending));
        Ok(Reloaded::Applied)
    }

    async fn ready(&self) -> Readiness {
        match &*self.faults.lock() {
            Some(faults) if faults.db_failure() => {
                Readiness::NotReady("database calls fail: faults.db_failure is on".into())
            }
            _ => Readiness::Ready,
        }
    }
}

impl Orders {
    /// The orders component with `config` (usually built from `[orders]`).
    pub fn new(config: OrdersConfig) -> Self {
        Self { ttls: Arc::new(CacheTtls::new(&config)), faults: Mutex::new(None) }
    }
}

orderly::register!(Orders: OrdersConfig => Orders::new);
