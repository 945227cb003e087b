//! The components of example-app. They live in a library so that tests
//! (and other binaries) can link them with `orderly::link![example_app]`.
//!
//! The standard components come from `orderly-components`: the HTTP server
//! (`[http]`), the management server (`[admin]`), metrics and tracing.
//! This crate adds:
//!
//! - [`site::Site`]: the app's routes (`/`, `/visits`, `/work?ms=`),
//!   contributed to the HTTP server.
//! - [`housekeeper::Housekeeper`]: a background worker that persists the
//!   visit log every few seconds. Stops in phase 3.
//! - [`visit_log::VisitLog`]: buffers visits and writes them to a file.
//!   Flushes in phase 4, closes the file in phase 5.

pub mod housekeeper;
pub mod site;
pub mod visit_log;
