//! Background work through the durable job queue.
//!
//! `POST /greetings` with `{"name": "…"}` enqueues a `greet` job and answers
//! 202 with its id; a worker runs it and writes the greeting in the job's
//! own transaction, so it lands exactly once. `GET /greetings` lists the
//! latest ones, through the cache for 200 ms.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use orderly::{BoxError, Component, Dependency, StartContext};
use orderly_components::cache::Cache;
use orderly_components::http::{ApiError, HttpServer};
use orderly_components::postgres::Database;
use orderly_components::workers::{Job, JobContext, JobHandler, QueueError, Workers};
use serde::Deserialize;

/// The greeter's routes and job handler.
#[derive(Default)]
pub struct Greeter;

#[derive(Deserialize)]
struct NewGreeting {
    name: String,
}

/// Writes one greeting.
struct Greet;

#[orderly::async_trait]
impl JobHandler for Greet {
    async fn run(&self, job: &Job, ctx: &JobContext<'_>) -> Result<(), BoxError> {
        let name = job.payload["name"].as_str().ok_or("a greet job needs a name")?;
        let tx = ctx.transaction().ok_or("greet jobs are durable")?;
        tx.execute(
            "INSERT INTO greetings (job_id, name, greeting) VALUES ($1, $2, $3)",
            &[&job.id, &name, &format!("hello, {name}!")],
        )
        .await?;
        Ok(())
    }
}

fn queue_error(error: QueueError) -> ApiError {
    match error {
        QueueError::Unavailable(_) | QueueError::Stopping | QueueError::Rejected { .. } => {
            ApiError::unavailable("the job queue is unavailable; try again", std::time::Duration::from_secs(1))
        }
        other => ApiError::internal(other),
    }
}

async fn create(body: web::Json<NewGreeting>, workers: web::Data<Workers>) -> Result<HttpResponse, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::bad_request("name must be 1 to 100 characters"));
    }
    let id = workers.enqueue("greet", serde_json::json!({ "name": name })).await.map_err(queue_error)?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "job": id })))
}

async fn list(database: web::Data<Database>) -> Result<HttpResponse, ApiError> {
    let client = database.get().await?;
    let rows = client
        .query("SELECT job_id, greeting FROM greetings ORDER BY id DESC LIMIT 20", &[])
        .await
        .map_err(ApiError::internal)?;
    let greetings: Vec<_> = rows
        .iter()
        .map(|r| serde_json::json!({ "job": r.get::<_, i64>(0), "greeting": r.get::<_, String>(1) }))
        .collect();
    Ok(HttpResponse::Ok().json(greetings))
}

#[orderly::component]
impl Component for Greeter {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![
            Dependency::on::<HttpServer>(),
            Dependency::on::<Workers>(),
            Dependency::on::<Database>(),
            Dependency::on::<Cache>(),
        ]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let workers: Arc<Workers> = ctx.dependency::<Workers>()?;
        let database: Arc<Database> = ctx.dependency::<Database>()?;
        let cache: Arc<Cache> = ctx.dependency::<Cache>()?;
        workers.handle("greet", Greet);
        ctx.dependency::<HttpServer>()?.routes(move |cfg| {
            cfg.service(
                web::scope("/greetings")
                    .app_data(web::Data::from(workers.clone()))
                    .app_data(web::Data::from(database.clone()))
                    .app_data(web::Data::from(cache.clone()))
                    .route("", web::post().to(create))
                    .route("", web::get().to(list)),
            );
        })?;
        Ok(())
    }
}

orderly::register_default!(Greeter);
