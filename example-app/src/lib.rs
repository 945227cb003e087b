//! The components of example-app. They live in a library so that tests
//! (and other binaries) can link them with `orderly::link![example_app]`.
//!
//! The standard components come from `orderly-components`: the HTTP server
//! (`[http]`), the management server (`[admin]`), metrics, tracing, the
//! Postgres pool (`[database]`) and the workers (`[workers]`).
//! This crate adds:
//!
//! - [`site::Site`]: the app's routes (`/`, `/visits`, `/work?ms=`),
//!   contributed to the HTTP server.
//! - [`greeter::Greeter`]: `POST /greetings` enqueues a durable job that a
//!   worker runs; `GET /greetings` reads what the jobs wrote (Postgres:
//!   a private dev database unless `database.url` is set).
//! - [`housekeeper::Housekeeper`]: a background worker that persists the
//!   visit log every few seconds. Stops in phase 3.
//! - [`visit_log::VisitLog`]: buffers visits and writes them to a file.
//!   Flushes in phase 4, closes the file in phase 5.

pub mod greeter;
pub mod housekeeper;
pub mod site;
pub mod visit_log;
