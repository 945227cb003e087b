//! example-app: an orders service assembled from orderly components. The
//! components live in this library so that tests (and other binaries) can
//! link them with `orderly::link![example_app]`; `main.rs` only runs them.
//!
//! From `orderly-components`: the HTTP server (`[http]`), the management
//! server (`[admin]`), metrics and the Pushgateway flusher (`[metrics]`),
//! tracing (`[tracing]`), the Postgres pool (`[database]`), the workers
//! (`[workers]`) and the cache (`[cache]`). This crate adds:
//!
//! - [`orders::Orders`] (`[orders]`): the orders API and its confirmation job.
//! - [`auth::ApiKeys`] (`[api]`): the API keys and the bearer check.
//! - [`faults::Faults`] (`[faults]`): fault injection for experiments.
//! - [`openapi`]: the API's OpenAPI 3 document.
#![warn(missing_docs)]

// The SQL in `migrations/`, carried in the binary (listed by build.rs).
orderly_components::embed_migrations!(include!(concat!(env!("OUT_DIR"), "/migrations.rs")));

pub mod auth;
pub mod faults;
pub mod openapi;
pub mod orders;
