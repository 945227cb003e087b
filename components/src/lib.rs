//! Standard components for orderly services.
//!
//! Each component is a Cargo feature and registers like any user component,
//! so an app runs them by linking this crate:
//! `orderly::link![orderly_components]`. A component is turned off with the
//! framework's usual `disabled` list.
//!
//! | feature | component (section) | phases | what it is |
//! |---|---|---|---|
//! | `metrics` | [`metrics::Metrics`] (`[metrics]`) | — | the runtime's Prometheus registry as a typed dependency, plus `process_*` metrics |
//! | `http` | [`http::HttpServer`] (`[http]`) | 1 stop accepting, 2 drain | actix-web server; routes come from other components |
//! | `admin` | [`admin::Admin`] (`[admin]`) | 5 close | probes, `/metrics`, `/debug/lifecycle` on its own port |
//! | `tracing` | [`tracing::Tracing`] (`[tracing]`) | 4 flush | OpenTelemetry traces over OTLP/HTTP |
//! | `postgres` | [`postgres::Database`] (`[database]`) | 5 close | deadpool-postgres pool, migrations, a private dev database when no URL is set |
//! | `cache` | [`cache::Cache`] (`[cache]`) | 5 close | moka in-process or Redis behind one API, circuit breaker, coalesced loads |
//! | `workers` | [`workers::Workers`] (`[workers]`) | 1 stop claiming, 3 stop workers | job runners over a durable Postgres queue and a bounded in-memory queue |
#![warn(missing_docs)]
#![deny(unreachable_pub)]

#[cfg(feature = "admin")]
pub mod admin;
#[cfg(feature = "cache")]
pub mod cache;
#[cfg(feature = "http")]
pub mod http;
#[cfg(any(feature = "http", feature = "workers"))]
mod idle;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(any(feature = "http", feature = "admin"))]
mod net;
#[cfg(any(feature = "http", feature = "admin"))]
pub use net::BindError;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "profiling")]
pub mod profiling;
#[cfg(any(feature = "http", feature = "admin"))]
mod serve;
#[cfg(feature = "tracing")]
pub mod tracing;
#[cfg(feature = "workers")]
pub mod workers;

/// This machine's name (`/etc/hostname`), for lease owners and the
/// Pushgateway's `instance` label.
#[cfg(any(feature = "metrics", feature = "workers"))]
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Re-exports used by this crate's macros. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "postgres")]
    pub use inventory;
}
