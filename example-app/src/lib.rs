//! The components of example-app. They live in a library so that tests
//! (and other binaries) can link them with `orderly::link![example_app]`.
//!
//! - [`http::Http`]: an HTTP/1.1 server. Binds in `start`, closes its
//!   listener in phase 1, drains in-flight requests in phase 2.
//! - [`housekeeper::Housekeeper`]: a background worker that persists the
//!   visit log every few seconds. Stops in phase 3.
//! - [`visit_log::VisitLog`]: buffers visits and writes them to a file.
//!   Flushes in phase 4, closes the file in phase 5.

pub mod housekeeper;
pub mod http;
pub mod visit_log;
