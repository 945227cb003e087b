//! The app's own routes, contributed to the standard HTTP server.
//!
//! `Site` depends on the server (to add routes) and on the visit log (to
//! record visits); the server knows nothing about either. Every visit is
//! buffered in the visit log, which writes it to disk in phase 4, after the
//! server has drained: the visits of the last requests are kept too.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{web, HttpResponse};
use orderly::{BoxError, Component, Dependency, StartContext};
use orderly_components::http::{ApiError, HttpServer, RequestContext};
use serde::Deserialize;

use crate::visit_log::{Visit, VisitBook, VisitLog};

/// The longest `/work` accepts, so a client cannot hold a worker for long.
const MAX_WORK: Duration = Duration::from_secs(30);

/// The site's routes.
#[derive(Default)]
pub struct Site;

fn record(book: &VisitBook, path: &str, status: u16) {
    let at_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    book.record(Visit { at_unix_ms, path: path.to_owned(), status });
}

async fn hello(book: web::Data<VisitBook>) -> String {
    record(&book, "/", 200);
    format!("hello from example-app; visit number {}\n", book.recorded())
}

async fn visits(book: web::Data<VisitBook>) -> HttpResponse {
    record(&book, "/visits", 200);
    HttpResponse::Ok().json(serde_json::json!({ "recorded": book.recorded(), "dropped": book.dropped() }))
}

#[derive(Deserialize)]
struct Work {
    ms: u64,
}

/// Simulates a slow request (a report, an upstream call): shows the drain.
async fn work(
    query: web::Query<Work>,
    book: web::Data<VisitBook>,
    request: RequestContext,
) -> Result<String, ApiError> {
    let took = Duration::from_millis(query.ms);
    if took > MAX_WORK {
        return Err(ApiError::bad_request(format!("ms must be at most {}", MAX_WORK.as_millis())));
    }
    slog::info!(request.logger(), "work started"; "ms" => query.ms);
    tokio::time::sleep(took).await;
    record(&book, "/work", 200);
    Ok(format!("worked {} ms\n", query.ms))
}

#[orderly::component]
impl Component for Site {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<HttpServer>(), Dependency::on::<VisitLog>()]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let book: Arc<VisitBook> = ctx.resource::<VisitBook>()?;
        ctx.dependency::<HttpServer>()?.routes(move |cfg| {
            // Data on the app, not an empty-prefix scope: a scope matches every
            // path and would hide the routes other components add.
            cfg.app_data(web::Data::from(book.clone()))
                .route("/", web::get().to(hello))
                .route("/visits", web::get().to(visits))
                .route("/work", web::get().to(work));
        })?;
        Ok(())
    }
}

orderly::register_default!(Site);
