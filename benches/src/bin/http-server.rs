//! The servers the HTTP benches measure, as separate processes (see `http-harness`).
//!
//! - `http-server bare`: actix-web with `/hello`, `/hello/{name}` and
//!   `/readyz` routes and nothing else, stopped by actix's own SIGTERM handling. The floor.
//! - `http-server orderly`: an orderly app of the standard components
//!   (metrics, HTTP server with its full middleware stack and JSON access
//!   log, management server) plus the `/hello` and `/hello/{name}` routes; configured through
//!   `APP__…` variables like any app.
//!
//! Both read `BENCH_WORKERS` (default 1) and `BENCH_HTTP_BIND`. The bare
//! server also answers `/order` with `BENCH_ORDER_JSON`.

// Built with the `profiling` feature: jemalloc with its heap profiler, as
// an app that serves /debug/pprof/heap runs.
#[cfg(feature = "profiling")]
orderly_components::heap_profiling_allocator!();

use actix_web::{web, HttpResponse};
use orderly::{BoxError, Component, Dependency, StartContext};
use orderly_components::http::HttpServer;

/// Adds `/hello` to the orderly server.
#[derive(Default)]
pub struct Hello;

#[orderly::component]
impl Component for Hello {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<HttpServer>()]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        ctx.dependency::<HttpServer>()?.routes(ctx, |cfg| {
            cfg.route("/hello", web::get().to(|| async { "hello" }))
                .route("/hello/{name}", web::get().to(hello_name))
                .route("/sleep", web::get().to(sleep));
        })?;
        Ok(())
    }
}

/// `/hello/{name}`: a route with a parameter, as most API routes have.
async fn hello_name(name: web::Path<String>) -> String {
    format!("hello {name}")
}

/// `/sleep?ms=N`: a request that takes N ms, for the in-flight exit bench.
async fn sleep(query: web::Query<std::collections::HashMap<String, u64>>) -> &'static str {
    let ms = query.get("ms").copied().unwrap_or(200);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    "slept"
}

/// `/order`: the JSON of `BENCH_ORDER_JSON` from memory, for the
/// example-app bench's floor (its cache-hit read of the same order).
async fn order() -> HttpResponse {
    static BODY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = BODY.get_or_init(|| std::env::var("BENCH_ORDER_JSON").unwrap_or_else(|_| "{}".into()));
    HttpResponse::Ok().content_type("application/json").body(body.as_str())
}

fn workers() -> usize {
    std::env::var("BENCH_WORKERS").ok().and_then(|w| w.parse().ok()).unwrap_or(1)
}

fn bare() -> std::io::Result<()> {
    let bind = std::env::var("BENCH_HTTP_BIND").unwrap_or_else(|_| "127.0.0.1:8080".into());
    actix_web::rt::System::new().block_on(async move {
        actix_web::HttpServer::new(|| {
            actix_web::App::new()
                .route("/hello", web::get().to(|| async { "hello" }))
                .route("/hello/{name}", web::get().to(hello_name))
                .route("/sleep", web::get().to(sleep))
                .route("/readyz", web::get().to(HttpResponse::Ok))
                .route("/order", web::get().to(order))
        })
        .workers(workers())
        .bind(bind)?
        .run()
        .await
    })
}

const CONFIG: &str = r#"
[http]
bind = "127.0.0.1:8080"
[admin]
bind = "127.0.0.1:9090"
[components.workers]
enabled = false
[components.database]
enabled = false
[log]
format = "json"
[shutdown]
propagation_delay = "0s"
"#;

fn main() -> std::process::ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "bare" => match bare() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bare actix: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        "orderly" => {
            if let Ok(bind) = std::env::var("BENCH_HTTP_BIND") {
                std::env::set_var("APP__HTTP__BIND", bind);
            }
            std::env::set_var("APP__HTTP__WORKERS", workers().to_string());
            // Only the program name goes on to orderly's CLI, and a config
            // file when the reload bench gives one.
            let mut args = std::env::args().take(1).collect::<Vec<_>>();
            if let Ok(file) = std::env::var("BENCH_CONFIG") {
                args.extend(["--config".to_string(), file]);
            }
            orderly::app::App::new(orderly::app_info!(), orderly::link![orderly_components])
                .embedded_config(CONFIG)
                .component(Hello)
                .args(args)
                .run()
        }
        _ => {
            eprintln!("usage: http-server bare|orderly");
            std::process::ExitCode::from(2)
        }
    }
}
