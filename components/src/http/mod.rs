//! The public HTTP server (actix-web 4) and its middleware stack.
//!
//! - [`HttpServer`] (`[http]`): binds in `start`, so "address in use" fails
//!   startup and rolls back; serves once the start it is part of is complete
//!   (the app's, or a restart's);
//!   phase 1 closes the listener and tells every connection to close after
//!   its current response; phase 2 waits for in-flight requests, cuts off
//!   what still runs at the end of its budget (503, counted) and reports it.
//! - Routes come from components that depend on the server
//!   ([`HttpServer::routes`]); the server never sees their types.
//! - Middleware, one module each: request id, access log, metrics, tracing,
//!   security headers, per-client rate limits (`[http.rate_limit]`), JSON
//!   errors, drain tracking, backpressure, timeout, panic guard.
//! - Handlers return [`ApiError`] for typed, JSON errors, and extract
//!   [`RequestContext`] for a logger carrying the request id.

mod app_template;
mod config;
mod drain;
mod error;
mod live;
pub(crate) mod middleware;
mod rate_limit_config;
mod request;
mod routes;
mod server;

pub use config::HttpConfig;
pub use error::ApiError;
pub use rate_limit_config::{ClientKeyKind, RateLimitConfig, RateLimitGroup};
pub use request::{RequestContext, RequestId};
pub use server::{HttpError, HttpServer};
