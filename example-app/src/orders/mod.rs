//! The orders API (`[orders]`): `POST/GET /api/v1/orders`,
//! `GET /api/v1/orders/{id}`, behind the API key check, plus the
//! `send_confirmation` job that each new order enqueues in its own
//! transaction.
//!
//! It is built only from the standard components: the HTTP server (routes),
//! Postgres (orders), the workers (confirmations), the cache (reads) and
//! metrics (business counters); and from the app's [`ApiKeys`] and
//! [`Faults`]. It joins no stop phase of its own: the server drains its
//! requests (phase 2), the workers finish its jobs (phase 3).

pub mod confirmation;
pub mod metrics;
pub mod model;
pub mod routes;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, HttpResponse};
use orderly::{BoxError, Component, Dependency, FromConfig, Readiness, StartContext, Validate, Validation};
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
use crate::faults::Faults;

/// The cache key of an order.
pub fn cache_key(id: i64) -> String {
    format!("order:{id}")
}

/// `[orders]`.
#[derive(Debug, Clone, Deserialize)]
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

/// The orders component.
pub struct Orders {
    config: OrdersConfig,
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
            Dependency::on::<Faults>(),
        ]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let faults = ctx.dependency::<Faults>()?;
        let cache = ctx.dependency::<Cache>()?;
        let workers = ctx.dependency::<Workers>()?;
        let metrics = OrderMetrics::register(&ctx.dependency::<Metrics>()?.registry()?)?;
        let auth = web::Data::new(ctx.dependency::<ApiKeys>()?.authenticator(&faults)?);
        workers.handle(
            CONFIRMATION_JOB,
            SendConfirmation { cache: cache.clone(), faults: faults.clone(), metrics: metrics.clone() },
        );
        let api = web::Data::new(OrdersApi {
            store: OrderStore::new(ctx.dependency::<Database>()?, workers, faults.clone()),
            cache,
            metrics,
            cache_ttl: self.config.cache_ttl,
            pending_cache_ttl: self.config.pending_cache_ttl,
        });
        ctx.dependency::<HttpServer>()?.routes(move |cfg| {
            // Public, and registered before the scope so that it matches first.
            cfg.route(
                "/api/v1/openapi.json",
                web::get().to(|| async {
                    HttpResponse::Ok().content_type("application/json").body(crate::openapi::document())
                }),
            );
            cfg.service(
                web::scope("/api/v1")
                    .app_data(auth.clone())
                    .app_data(api.clone())
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
        *self.faults.lock() = Some(faults);
        Ok(())
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

impl FromConfig for Orders {
    type Config = OrdersConfig;

    fn from_config(config: OrdersConfig) -> Result<Self, BoxError> {
        Ok(Self { config, faults: Mutex::new(None) })
    }
}

orderly::register!(Orders);
