//! Standard components for orderly services.
//!
//! The HTTP server, management server, metrics, tracing, Postgres pool,
//! cache, workers and metrics flusher arrive here with the issues that build
//! them. Each is a Cargo feature and registers like any user component, so
//! an app runs them by linking this crate: `orderly::link![orderly_components]`.
#![warn(missing_docs)]
