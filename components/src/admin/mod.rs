//! The management server (`[admin]`): probes, metrics and lifecycle
//! introspection on their own port, apart from public traffic.
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /healthz` | liveness: 200 while every component's `live()` passes (each within `readiness_timeout`; asked only while the app runs), else 503 naming the dead ones |
//! | `GET /startupz` | 200 once every component has started and been ready, else 503 |
//! | `GET /readyz` | asks every component's `ready()` at once, each within `readiness_timeout`; 200 or 503 with each component's state; 503 from the first moment of shutdown |
//! | `GET /metrics` | the runtime's registry in Prometheus text format |
//! | `GET /debug/lifecycle` | the lifecycle timeline and the dependency graph (only with `debug = true`) |
//! | `GET /debug/lifecycle.svg` | the timeline drawn as a Gantt chart (only with `debug = true`) |
//! | `GET /debug/pprof/…` | CPU and heap profiles (only with `debug = true`; see Profiles below) |
//! | `GET /debug/<name>` | a page a component added ([`Lifecycle::add_debug_page`](orderly::runtime::Lifecycle::add_debug_page)), such as the workers' `/debug/jobs` (only with `debug = true`) |
//!
//! It binds in `start` and serves at once, so startup probes answer while
//! the rest of the app starts. It stays up through the whole drain and
//! closes only in phase 5: probes and `/metrics` keep answering while the
//! public server drains.
//!
//! Debug endpoints are off by default. When on, they answer only clients
//! on loopback, unless `debug_remote = true` says otherwise.
//!
//! # Profiles
//!
//! With the crate's `profiling` feature (and, for the heap,
//! [`heap_profiling_allocator!`](crate::heap_profiling_allocator) in the
//! binary):
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /debug/pprof/profile?seconds=N` | CPU profile of the whole process over N s (default 10, at most 300), pprof protobuf; `&format=svg` for a flame graph |
//! | `GET /debug/pprof/flamegraph?seconds=N` | the same, as a flame graph (SVG) |
//! | `GET /debug/pprof/heap` | live heap samples, pprof protobuf (gzipped) |
//! | `GET /debug/pprof/heap/summary` | allocated and resident bytes, JSON |
//!
//! One profile runs at a time (a second gets 409 naming the first). None
//! starts once the shutdown has begun (503), and one that runs is
//! abandoned when it begins: a profile never holds the shutdown up.

mod pprof;

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use orderly::{
    config::Validate, config::Validation, graph::GraphFormat, runtime::Lifecycle, BoxError, Component, Dependency,
    Readiness, StartContext, StopContext,
};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;

use crate::metrics::{self as metrics_mod, Metrics};
use crate::net::BoundListener;
use crate::serve::Serving;

/// `[admin]`. Every key can be set as `APP__ADMIN__<KEY>`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to listen on (`admin.bind`). Use `0.0.0.0:9090` for probes from the kubelet.
    pub bind: String,
    /// How long `/readyz` waits for each component's `ready()`.
    #[serde(with = "humantime_serde")]
    pub readiness_timeout: Duration,
    /// Serve `/debug/*` endpoints.
    pub debug: bool,
    /// Serve `/debug/*` to clients not on loopback too.
    pub debug_remote: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:9090".into(),
            readiness_timeout: Duration::from_millis(500),
            debug: false,
            debug_remote: false,
        }
    }
}

impl Validate for AdminConfig {
    fn validate(&self, v: &mut Validation) {
        v.check(self.bind.parse::<SocketAddr>().is_ok(), "bind", format!("`{}` is not host:port", self.bind));
        v.check(!self.readiness_timeout.is_zero(), "readiness_timeout", "must be greater than 0");
        v.check(!self.debug_remote || self.debug, "debug_remote", "has no effect unless `debug = true`");
    }
}

/// What the handlers share.
struct AdminState {
    lifecycle: Lifecycle,
    registry: prometheus::Registry,
    readiness_timeout: Duration,
    debug: bool,
    debug_remote: bool,
    /// The chart's title.
    title: String,
    /// For the profiles' log lines.
    #[cfg_attr(not(feature = "profiling"), allow(dead_code))]
    logger: slog::Logger,
}

/// The management server component.
pub struct Admin {
    config: AdminConfig,
    serving: Mutex<Option<Serving>>,
    /// Where the current run listens.
    local_addr: Mutex<Option<SocketAddr>>,
}

impl Admin {
    /// A management server with `config`.
    pub fn new(config: AdminConfig) -> Self {
        Self { config, serving: Mutex::new(None), local_addr: Mutex::new(None) }
    }

    /// The bound address, once started.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self.local_addr.lock()
    }
}

/// "example-app (pid 4242)": the binary's name, as the README's picture shows it.
fn chart_title() -> String {
    let exe = std::env::current_exe().ok();
    let name = exe.as_deref().and_then(|p| p.file_stem()).map(|n| n.to_string_lossy().into_owned());
    format!("{} (pid {})", name.unwrap_or_else(|| "lifecycle".into()), std::process::id())
}

async fn healthz(state: web::Data<AdminState>) -> HttpResponse {
    let report = state.lifecycle.health().liveness(state.readiness_timeout).await;
    let dead: serde_json::Map<String, serde_json::Value> =
        report.dead.into_iter().map(|(name, why)| (name, json!(why))).collect();
    let (status, word) =
        if report.alive { (StatusCode::OK, "alive") } else { (StatusCode::SERVICE_UNAVAILABLE, "dead") };
    HttpResponse::build(status).json(json!({ "status": word, "state": report.state, "dead": dead }))
}

async fn startupz(state: web::Data<AdminState>) -> HttpResponse {
    let health = state.lifecycle.health();
    let status = if health.is_started() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    HttpResponse::build(status).json(json!({ "started": health.is_started(), "state": health.state() }))
}

async fn readyz(state: web::Data<AdminState>) -> HttpResponse {
    let report = state.lifecycle.health().readiness(state.readiness_timeout).await;
    let components: serde_json::Map<String, serde_json::Value> = report
        .components
        .iter()
        .map(|(name, readiness)| {
            let value = match readiness {
                Readiness::Ready => json!({ "state": "ready" }),
                Readiness::Degraded(reason) => json!({ "state": "degraded", "reason": reason }),
                Readiness::NotReady(reason) => json!({ "state": "not_ready", "reason": reason }),
            };
            (name.clone(), value)
        })
        .collect();
    let status = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    HttpResponse::build(status).json(json!({ "ready": report.ready, "state": report.state, "components": components }))
}

async fn metrics(state: web::Data<AdminState>) -> HttpResponse {
    match metrics_mod::render(&state.registry) {
        Ok(text) => HttpResponse::Ok().content_type(metrics_mod::TEXT_FORMAT).body(text),
        Err(error) => HttpResponse::InternalServerError().json(json!({ "error": error.to_string() })),
    }
}

/// Whether this request may see the debug endpoints.
fn debug_allowed(state: &AdminState, req: &HttpRequest) -> bool {
    let local_client = req.peer_addr().is_some_and(|peer| peer.ip().is_loopback());
    state.debug && (local_client || state.debug_remote)
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({ "error": "not found" }))
}

async fn debug_lifecycle_svg(state: web::Data<AdminState>, req: HttpRequest) -> HttpResponse {
    if !debug_allowed(&state, &req) {
        return not_found();
    }
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "no-store"))
        .body(orderly::events::to_svg(state.lifecycle.timeline(), &state.title))
}

/// `/debug/<name>`: a page a component added.
async fn debug_page(state: web::Data<AdminState>, req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    if !debug_allowed(&state, &req) {
        return not_found();
    }
    match state.lifecycle.debug_page(&name) {
        Some(page) => HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(page().await),
        None => HttpResponse::NotFound().json(json!({
            "error": format!("no debug page `{name}`"),
            "pages": state.lifecycle.debug_pages(),
        })),
    }
}

async fn debug_lifecycle(state: web::Data<AdminState>, req: HttpRequest) -> HttpResponse {
    if !debug_allowed(&state, &req) {
        return not_found();
    }
    let lifecycle = &state.lifecycle;
    HttpResponse::Ok().json(json!({
        "state": lifecycle.health().state(),
        "timeline": lifecycle.timeline().to_json(),
        "graph": {
            "mermaid": lifecycle.render_graph(GraphFormat::Mermaid),
            "dot": lifecycle.render_graph(GraphFormat::Dot),
        },
    }))
}

#[orderly::component]
impl Component for Admin {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Metrics>()]
    }

    /// Each run binds its own socket and builds its own server. A reload of
    /// `[admin]` restarts it (it has no dependents): the probes are
    /// unreachable for the milliseconds that takes.
    fn restartable(&self) -> bool {
        true
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let registry = ctx.dependency::<Metrics>()?.registry()?;
        let addr: SocketAddr = self.config.bind.parse()?;
        let bound = BoundListener::bind(addr, 128)?;
        let local = bound.local_addr();
        let (listener, closer) = bound.split();
        listener.set_nonblocking(true)?;
        let state = web::Data::new(AdminState {
            lifecycle: ctx.lifecycle(),
            registry,
            readiness_timeout: self.config.readiness_timeout,
            debug: self.config.debug,
            debug_remote: self.config.debug_remote,
            title: chart_title(),
            logger: ctx.logger().clone(),
        });
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(state.clone())
                .route("/healthz", web::get().to(healthz))
                .route("/startupz", web::get().to(startupz))
                .route("/readyz", web::get().to(readyz))
                .route("/metrics", web::get().to(metrics))
                .route("/debug/lifecycle", web::get().to(debug_lifecycle))
                .route("/debug/lifecycle.svg", web::get().to(debug_lifecycle_svg))
                .route("/debug/pprof/profile", web::get().to(pprof::profile))
                .route("/debug/pprof/flamegraph", web::get().to(pprof::flamegraph))
                .route("/debug/pprof/heap", web::get().to(pprof::heap))
                .route("/debug/pprof/heap/summary", web::get().to(pprof::heap_summary))
                // Last: the fixed debug routes above win over a page's name.
                .route("/debug/{name}", web::get().to(debug_page))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .map_err(|e| format!("starting the management server on {local}: {e}"))?
        .run();
        *self.serving.lock() = Some(Serving::spawn(server, closer, ctx.logger().clone()));
        *self.local_addr.lock() = Some(local);
        slog::info!(ctx.logger(), "management server listening"; "addr" => local.to_string(), "debug" => self.config.debug);
        let lifecycle = ctx.lifecycle();
        lifecycle.announce_endpoint("probes", format!("http://{local}/readyz"));
        lifecycle.announce_endpoint("metrics", format!("http://{local}/metrics"));
        Ok(())
    }

    async fn close(&self, ctx: &StopContext) -> Result<(), BoxError> {
        let serving = self.serving.lock().take();
        if let Some(mut serving) = serving {
            serving.stop_now(ctx.deadline()).await;
        }
        Ok(())
    }
}

orderly::register!(Admin: AdminConfig => Admin::new);
