//! The HTTP server, a route contributed by a component, and the management
//! server's probes — started, called, and shut down in five phases.
//!
//! `cargo run -p orderly-components --example 01_http_server`

use std::sync::Arc;

use actix_web::web;
use orderly::{BoxError, Component, Dependency, Runtime, ShutdownReason, StartContext};
use orderly_components::admin::{Admin, AdminConfig};
use orderly_components::http::{ApiError, HttpConfig, HttpServer, RequestContext};
use orderly_components::metrics::Metrics;

/// Contributes `/hello/{name}`; the server never sees this type.
struct Hello;

async fn hello(name: web::Path<String>, request: RequestContext) -> Result<String, ApiError> {
    if name.len() > 40 {
        return Err(ApiError::bad_request("names are at most 40 characters"));
    }
    slog::info!(request.logger(), "greeting"; "name" => name.as_str());
    Ok(format!("hello, {name}\n"))
}

#[orderly::component]
impl Component for Hello {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<HttpServer>()]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        ctx.dependency::<HttpServer>()?.routes(ctx, |cfg| {
            cfg.route("/hello/{name}", web::get().to(hello));
        })?;
        Ok(())
    }
}

async fn get(url: String) -> Result<String, BoxError> {
    Ok(reqwest::get(url).await?.text().await?)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let http = Arc::new(HttpServer::new(HttpConfig { bind: "127.0.0.1:0".into(), ..HttpConfig::default() }));
    let admin = Arc::new(Admin::new(AdminConfig { bind: "127.0.0.1:0".into(), ..AdminConfig::default() }));
    let runtime = Runtime::builder()
        .component(Metrics::default())
        .component_arc(http.clone())
        .component_arc(admin.clone())
        .component(Hello)
        .build()?;
    runtime.start().await.map_err(|e| format!("{e:?}"))?;
    http.serving().await;
    let (base, probes) = (http.local_addr().ok_or("bound")?, admin.local_addr().ok_or("bound")?);

    print!("{}", get(format!("http://{base}/hello/ada")).await?);
    println!("/readyz: {}", get(format!("http://{probes}/readyz")).await?);
    let metrics = get(format!("http://{probes}/metrics")).await?;
    for line in metrics.lines().filter(|l| l.starts_with("http_requests_total")) {
        println!("{line}");
    }

    let report = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    println!("shutdown clean: {} in {:?}", report.is_clean(), report.elapsed);
    Ok(())
}
