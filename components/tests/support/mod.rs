//! A real HTTP server and management server in a runtime, on random
//! loopback ports, with test routes contributed by a component.
#![allow(dead_code)] // each test file uses a different part

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use orderly::{settings::ShutdownSettings, BoxError, Component, Dependency, Runtime, StartContext};
use orderly_components::admin::{Admin, AdminConfig};
use orderly_components::http::{ApiError, HttpConfig, HttpServer, RequestContext};
use orderly_components::metrics::Metrics;
use serde::Deserialize;

/// Counts requests that reached a handler: the server accepted them.
#[derive(Default)]
pub struct Accepted(AtomicUsize);

impl Accepted {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Deserialize)]
struct Slow {
    ms: u64,
}

/// The routes the tests call, contributed like any app's.
pub struct TestRoutes {
    pub accepted: Arc<Accepted>,
}

fn routes(cfg: &mut web::ServiceConfig, accepted: Arc<Accepted>) {
    cfg.app_data(web::Data::from(accepted))
        .route("/hello", web::get().to(|| async { "hello" }))
        .route(
            "/slow",
            web::get().to(|q: web::Query<Slow>, accepted: web::Data<Accepted>| async move {
                accepted.0.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(q.ms)).await;
                "done"
            }),
        )
        .route(
            "/hang",
            web::get().to(|accepted: web::Data<Accepted>| async move {
                accepted.0.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
                "never"
            }),
        )
        .route("/users/{id}", web::get().to(|id: web::Path<u32>| async move { format!("user {id}") }))
        .route(
            "/echo",
            web::post().to(|body: web::Json<serde_json::Value>| async move { HttpResponse::Ok().json(body.0) }),
        )
        .route(
            "/fail",
            web::get().to(|| async { Err::<String, _>(ApiError::internal("pool exhausted: db at 10.1.2.3")) }),
        )
        .route(
            "/whoami",
            web::get().to(|ctx: RequestContext| async move {
                ctx.request_id().map(|id| id.as_str().to_owned()).unwrap_or_default()
            }),
        )
        .route(
            "/panic",
            web::get().to(|| async {
                if std::hint::black_box(true) {
                    panic!("handler bug");
                }
                "unreachable"
            }),
        );
}

#[orderly::component]
impl Component for TestRoutes {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<HttpServer>()]
    }

    /// Adds its routes again on every start: it restarts with the server.
    fn restartable(&self) -> bool {
        true
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let accepted = self.accepted.clone();
        ctx.dependency::<HttpServer>()?.routes(ctx, move |cfg| routes(cfg, accepted.clone()))?;
        Ok(())
    }
}

pub struct Service {
    pub runtime: Runtime,
    pub http: Arc<HttpServer>,
    pub admin: Arc<Admin>,
    pub accepted: Arc<Accepted>,
    pub base: String,
    pub admin_base: String,
}

pub fn http_config() -> HttpConfig {
    HttpConfig { bind: "127.0.0.1:0".into(), workers: 2, access_log: false, ..HttpConfig::default() }
}

pub fn admin_config() -> AdminConfig {
    AdminConfig { bind: "127.0.0.1:0".into(), ..AdminConfig::default() }
}

pub fn build(
    http: HttpConfig,
    admin: AdminConfig,
    shutdown: ShutdownSettings,
) -> (Runtime, Arc<HttpServer>, Arc<Admin>, Arc<Accepted>) {
    build_with_metrics(Metrics::default(), http, admin, shutdown)
}

pub fn build_with_metrics(
    metrics: Metrics,
    http: HttpConfig,
    admin: AdminConfig,
    shutdown: ShutdownSettings,
) -> (Runtime, Arc<HttpServer>, Arc<Admin>, Arc<Accepted>) {
    let server = Arc::new(HttpServer::new(http));
    let admin = Arc::new(Admin::new(admin));
    let accepted = Arc::new(Accepted::default());
    let runtime = Runtime::builder()
        .component(metrics)
        .component_arc(server.clone())
        .component_arc(admin.clone())
        .component(TestRoutes { accepted: accepted.clone() })
        .shutdown_settings(shutdown)
        .build()
        .expect("valid graph");
    (runtime, server, admin, accepted)
}

pub async fn start_with(http: HttpConfig, admin: AdminConfig, shutdown: ShutdownSettings) -> Service {
    let (runtime, http, admin, accepted) = build(http, admin, shutdown);
    runtime.start().await.map_err(|e| format!("{e:?}")).expect("starts");
    assert!(http.serving().await, "the server serves once the app has started");
    let base = format!("http://{}", http.local_addr().expect("bound"));
    let admin_base = format!("http://{}", admin.local_addr().expect("bound"));
    Service { runtime, http, admin, accepted, base, admin_base }
}

pub async fn start() -> Service {
    start_with(http_config(), admin_config(), ShutdownSettings::default()).await
}

/// A client that opens a new connection for every request, so each request
/// is either refused or accepted, never sent on a connection being closed.
pub fn fresh_connection_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().pool_max_idle_per_host(0).build().expect("client")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}

pub fn reason() -> orderly::ShutdownReason {
    orderly::ShutdownReason::Signal("SIGTERM")
}
