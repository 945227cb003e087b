//! The actix `App` with the whole middleware stack, as every worker builds it.

use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App};

use super::drain::Drain;
use super::error::extractors;
use super::live::{Live, WorkerSettings};
use super::middleware::access_log::AccessLog;
use super::middleware::guard::Guards;
use super::middleware::observe::{self, Layer, Observers};
use super::middleware::{backpressure, metrics};
use super::request::RequestLogger;
use super::routes::Configure;
use super::ApiError;

/// What every worker's `App` shares.
#[derive(Clone)]
pub(crate) struct AppTemplate {
    pub(crate) logger: slog::Logger,
    pub(crate) metrics: metrics::HttpMetrics,
    pub(crate) drain: Arc<Drain>,
    pub(crate) limit: Arc<backpressure::Limit>,
    /// The request timeout, body limit, access log switch and rate limits,
    /// which a reload changes while the server serves.
    pub(crate) live: Arc<Live>,
    /// Where access lines go (written only while `live` has the log on).
    pub(crate) access_log: Option<Arc<AccessLog>>,
    pub(crate) routes: Arc<[Configure]>,
    /// Whether requests get server spans (the tracing component exports).
    pub(crate) traced: Arc<AtomicBool>,
    /// Set when a new server took over from the one built from this template.
    pub(crate) retiring: Arc<AtomicBool>,
}

impl AppTemplate {
    /// The app: extractor limits, routes, and the middleware, outermost last.
    pub(crate) fn app(
        &self,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody>,
            Error = actix_web::Error,
            InitError = (),
        >,
    > {
        let AppTemplate { logger, metrics, drain, limit, live, access_log, routes, traced, retiring } = self.clone();
        let error_logger = logger.clone();
        // Built per worker (this runs once on each worker thread).
        let observers = Observers { metrics, local: Default::default(), access_log, traced };
        let settings = WorkerSettings::new(live);
        let max_body_bytes = settings.body_limit();
        let mut app = App::new()
            .app_data(extractors::json(max_body_bytes))
            .app_data(extractors::bytes(max_body_bytes))
            .app_data(extractors::form(max_body_bytes))
            .app_data(extractors::query())
            .app_data(extractors::path())
            .app_data(RequestLogger(logger));
        for configure in routes.iter() {
            app = app.configure(|cfg| configure(cfg));
        }
        let guards = Guards { logger: error_logger, drain, limit, retiring };
        let layer = Rc::new(Layer { observers, guards, settings, routes: OnceCell::new() });
        app.default_service(web::to(|| async { Err::<&str, _>(ApiError::not_found("no such route")) }))
            .wrap(from_fn(move |req, next| observe::observe(layer.clone(), req, next)))
    }
}
