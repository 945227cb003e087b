//! `/debug/pprof/*`: CPU and heap profiles on the management port, behind
//! the same gate as the other debug endpoints (`debug = true`, loopback
//! clients unless `debug_remote`). Built with the `profiling` feature;
//! without it they answer 501 and say so. The endpoints are listed in the
//! module above.
//!
//! One profile at a time (409 names the running one). None starts once
//! the shutdown has begun (503), and a running one is abandoned when it
//! begins, so a profile never holds the shutdown up.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{debug_allowed, not_found, AdminState};

/// The query of a CPU profile.
#[derive(Debug, Deserialize)]
#[cfg_attr(not(feature = "profiling"), allow(dead_code))]
struct ProfileQuery {
    seconds: Option<u64>,
    format: Option<String>,
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message.to_string() }))
}

/// What every profile request checks first: the gate, then the shutdown.
fn refused(state: &AdminState, req: &HttpRequest) -> Option<HttpResponse> {
    if !debug_allowed(state, req) {
        return Some(not_found());
    }
    if state.lifecycle.health().is_shutting_down() {
        return Some(
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "1"))
                .json(json!({ "error": "the shutdown has begun; no profile is taken" })),
        );
    }
    None
}

pub(super) async fn profile(state: web::Data<AdminState>, req: HttpRequest) -> HttpResponse {
    cpu(state, req, false).await
}

pub(super) async fn flamegraph(state: web::Data<AdminState>, req: HttpRequest) -> HttpResponse {
    cpu(state, req, true).await
}

#[cfg(not(feature = "profiling"))]
async fn cpu(state: web::Data<AdminState>, req: HttpRequest, _svg: bool) -> HttpResponse {
    refused(&state, &req).unwrap_or_else(not_built)
}

#[cfg(not(feature = "profiling"))]
pub(super) async fn heap(state: web::Data<AdminState>, req: HttpRequest) -> HttpResponse {
    refused(&state, &req).unwrap_or_else(not_built)
}

#[cfg(not(feature = "profiling"))]
pub(super) async fn heap_summary(state: web::Data<AdminState>, req: HttpRequest) -> HttpResponse {
    refused(&state, &req).unwrap_or_else(not_built)
}

#[cfg(not(feature = "profiling"))]
fn not_built() -> HttpResponse {
    error(StatusCode::NOT_IMPLEMENTED, "this binary was built without the `profiling` feature of orderly-components")
}

#[cfg(feature = "profiling")]
async fn cpu(state: web::Data<AdminState>, req: HttpRequest, svg: bool) -> HttpResponse {
    use std::time::Duration;

    use crate::profiling::{cpu_profile, CpuProfileFormat, Slot, MAX_PROFILE_SECONDS};

    if let Some(refusal) = refused(&state, &req) {
        return refusal;
    }
    let query = match web::Query::<ProfileQuery>::from_query(req.query_string()) {
        Ok(query) => query.into_inner(),
        Err(cause) => return error(StatusCode::BAD_REQUEST, format!("bad query: {cause}")),
    };
    let seconds = query.seconds.unwrap_or(10);
    if !(1..=MAX_PROFILE_SECONDS).contains(&seconds) {
        return error(StatusCode::BAD_REQUEST, format!("seconds must be between 1 and {MAX_PROFILE_SECONDS}"));
    }
    let format = match (svg, query.format.as_deref()) {
        (true, _) | (false, Some("svg" | "flamegraph")) => CpuProfileFormat::FlameGraph,
        (false, None | Some("pprof" | "proto")) => CpuProfileFormat::Pprof,
        (false, Some(other)) => {
            return error(StatusCode::BAD_REQUEST, format!("format `{other}`: use pprof (the default) or svg"))
        }
    };
    let client = req.peer_addr().map_or_else(|| "a client".to_owned(), |peer| peer.to_string());
    let slot = match Slot::take(format!("CPU profile of {seconds} s for {client}")) {
        Ok(slot) => slot,
        Err(taken) => return error(StatusCode::CONFLICT, taken),
    };
    slog::info!(state.logger, "CPU profile started"; "seconds" => seconds, "client" => &client);
    let health = state.lifecycle.health().clone();
    let outcome = cpu_profile(Duration::from_secs(seconds), format, async move { health.shutting_down().await }).await;
    drop(slot);
    match outcome {
        Ok(profile) => {
            slog::info!(state.logger, "CPU profile finished"; "seconds" => seconds, "samples" => profile.samples, "bytes" => profile.bytes.len());
            let (content_type, file) = match format {
                CpuProfileFormat::Pprof => ("application/octet-stream", "cpu.pb"),
                CpuProfileFormat::FlameGraph => ("image/svg+xml", "cpu.svg"),
            };
            HttpResponse::Ok()
                .content_type(content_type)
                .insert_header(("Content-Disposition", format!("inline; filename=\"{file}\"")))
                .insert_header(("Cache-Control", "no-store"))
                .insert_header(("X-Profile-Samples", profile.samples.to_string()))
                .body(profile.bytes)
        }
        Err(failure) => profile_failed(&state, failure),
    }
}

#[cfg(feature = "profiling")]
fn profile_failed(state: &AdminState, failure: crate::profiling::ProfileError) -> HttpResponse {
    use crate::profiling::ProfileError;

    slog::warn!(state.logger, "profile not taken"; "error" => %failure);
    let status = match failure {
        ProfileError::Busy(_) => StatusCode::CONFLICT,
        ProfileError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        ProfileError::HeapProfilingOff => StatusCode::NOT_IMPLEMENTED,
        ProfileError::Cpu(_) | ProfileError::Heap(_) | ProfileError::Report(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, failure)
}

#[cfg(feature = "profiling")]
pub(super) async fn heap(state: web::Data<AdminState>, req: HttpRequest) -> HttpResponse {
    use crate::profiling::{heap_profile, Slot};

    if let Some(refusal) = refused(&state, &req) {
        return refusal;
    }
    let client = req.peer_addr().map_or_else(|| "a client".to_owned(), |peer| peer.to_string());
    let slot = match Slot::take(format!("heap profile for {client}")) {
        Ok(slot) => slot,
        Err(taken) => return error(StatusCode::CONFLICT, taken),
    };
    let outcome = heap_profile().await;
    drop(slot);
    match outcome {
        Ok(bytes) => {
            slog::info!(state.logger, "heap profile taken"; "bytes" => bytes.len(), "client" => &client);
            HttpResponse::Ok()
                .content_type("application/octet-stream")
                .insert_header(("Content-Disposition", "inline; filename=\"heap.pb.gz\""))
                .insert_header(("Cache-Control", "no-store"))
                .body(bytes)
        }
        Err(failure) => profile_failed(&state, failure),
    }
}

#[cfg(feature = "profiling")]
pub(super) async fn heap_summary(state: web::Data<AdminState>, req: HttpRequest) -> HttpResponse {
    if !debug_allowed(&state, &req) {
        return not_found();
    }
    HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(crate::profiling::heap_summary())
}
