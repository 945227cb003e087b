//! The HTTP server component: binds in `start`, serves once the whole app
//! has started, stops accepting in phase 1 and drains in phase 2.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use actix_web::http::KeepAlive;
use actix_web::web::ServiceConfig;
use orderly::{
    config::FromConfig, runtime::Lifecycle, BoxError, Component, Dependency, Readiness, StartContext, StopContext,
};
use tokio::sync::watch;

use super::app_template::AppTemplate;
use super::drain::Drain;
use super::middleware::access_log::{AccessLog, FLUSH_EVERY};
use super::middleware::backpressure::Limit;
use super::middleware::metrics::HttpMetrics;
use super::middleware::rate_limit::RateLimits;
use super::routes::RouteTable;
use super::HttpConfig;
use crate::metrics::{Metrics, MetricsError};
use crate::net::{BindError, BoundListener, ListenerCloser};
use crate::serve::Serving;

/// What can go wrong with the HTTP server, with what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Routes were contributed after the server began serving.
    #[error(
        "routes were added after the HTTP server began serving; add them in `start` of a component \
         that declares `Dependency::on::<HttpServer>()`"
    )]
    RoutesSealed,
    /// The listener could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The server's metrics could not be registered.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The actix server could not be set up on the bound listener.
    #[error("starting the HTTP server on {addr}: {source}")]
    Serve {
        /// The bound address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The drain's budget ran out with requests still running; they were
    /// answered 503 and their connections closed.
    #[error("{count} request(s) were still running when the drain's budget ran out and were cut off")]
    CutOff {
        /// How many.
        count: usize,
    },
}

/// Where the server is, holding what it owns at that point: the value that
/// readiness and `serving()` watch is the one that owns the socket, so the
/// two can never disagree.
enum State {
    /// Constructed, not started.
    Idle,
    /// Listening (connections queue in the kernel) until the app has started.
    Bound(std::net::TcpListener, ListenerCloser),
    /// Workers are taking connections.
    Serving(Serving),
    /// No longer accepting; the actix server (if it ever served) is kept,
    /// not used, until the drain ends: dropping it ends its task.
    Draining { _server: Option<Serving> },
    /// Drained.
    Stopped,
}

impl State {
    /// Whether no more connections will be taken.
    fn has_stopped(&self) -> bool {
        matches!(self, State::Draining { .. } | State::Stopped)
    }
}

/// The HTTP server (`[http]`). Other components add routes to it:
///
/// ```
/// use actix_web::web;
/// use orderly::{BoxError, Component, Dependency, StartContext};
/// use orderly_components::http::HttpServer;
///
/// struct Hello;
///
/// #[orderly::component]
/// impl Component for Hello {
///     fn dependencies(&self) -> Vec<Dependency> {
///         vec![Dependency::on::<HttpServer>()]
///     }
///     async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
///         ctx.dependency::<HttpServer>()?.routes(|cfg| {
///             cfg.route("/hello", web::get().to(|| async { "hello" }));
///         })?;
///         Ok(())
///     }
/// }
/// ```
pub struct HttpServer {
    config: HttpConfig,
    routes: Arc<RouteTable>,
    drain: Arc<Drain>,
    state: Arc<watch::Sender<State>>,
    local_addr: OnceLock<SocketAddr>,
    metrics: OnceLock<HttpMetrics>,
    lifecycle: OnceLock<Lifecycle>,
    access_log: Option<Arc<AccessLog>>,
}

impl HttpServer {
    /// A server with `config` (usually built from `[http]` by the registry).
    pub fn new(config: HttpConfig) -> Self {
        Self {
            routes: Arc::default(),
            drain: Arc::default(),
            state: Arc::new(watch::Sender::new(State::Idle)),
            local_addr: OnceLock::new(),
            metrics: OnceLock::new(),
            lifecycle: OnceLock::new(),
            access_log: config.access_log.then(|| Arc::new(AccessLog::stdout())),
            config,
        }
    }

    /// Adds routes. Call it from the `start` of a component that depends on
    /// the server; `configure` runs once per worker thread, so share state
    /// through `web::Data::from(Arc<…>)`. Give a scope a real prefix: an
    /// empty-prefix scope matches every path and hides other components' routes.
    pub fn routes<F>(&self, configure: F) -> Result<(), HttpError>
    where
        F: Fn(&mut ServiceConfig) + Send + Sync + 'static,
    {
        if self.routes.add(Arc::new(configure)) {
            Ok(())
        } else {
            Err(HttpError::RoutesSealed)
        }
    }

    /// The bound address, once started (the real port when 0 was asked for).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr.get().copied()
    }

    /// Waits until workers take connections: `true`, or `false` if the
    /// server stopped (or the app shut down) before it served.
    pub async fn serving(&self) -> bool {
        let mut state = self.state.subscribe();
        let reached = state.wait_for(|s| matches!(s, State::Serving(_)) || s.has_stopped()).await;
        reached.is_ok_and(|s| matches!(*s, State::Serving(_)))
    }

    /// Requests being served right now.
    pub fn in_flight(&self) -> usize {
        self.drain.in_flight()
    }

    fn app_template(&self, logger: slog::Logger, metrics: HttpMetrics, traced: bool) -> AppTemplate {
        AppTemplate {
            logger,
            metrics,
            drain: self.drain.clone(),
            limit: Limit::new(self.config.max_concurrent_requests),
            request_timeout: self.config.request_timeout,
            max_body_bytes: self.config.max_body_bytes,
            access_log: self.access_log.clone(),
            rate_limits: RateLimits::from_config(&self.config.rate_limit),
            routes: Arc::from(Vec::new()),
            traced,
        }
    }
}

/// Starts the actix server on the bound listener, unless a stop came first.
fn serve(
    config: &HttpConfig,
    template: AppTemplate,
    routes: &RouteTable,
    state: &watch::Sender<State>,
    logger: &slog::Logger,
) -> Result<(), HttpError> {
    let mut outcome = Ok(());
    // The whole move from bound to serving happens under the state's lock,
    // so a stop cannot come in between.
    state.send_if_modified(|state| {
        let State::Bound(listener, _) = &*state else {
            return false; // stopped before the app finished starting
        };
        let (server, addr) = match start_workers(config, template, routes, listener) {
            Ok(started) => started,
            Err(error) => {
                outcome = Err(error);
                return false;
            }
        };
        if let State::Bound(_, closer) = std::mem::replace(state, State::Idle) {
            *state = State::Serving(Serving::spawn(server, closer, logger.clone()));
        }
        slog::info!(logger, "serving"; "addr" => addr.to_string(), "workers" => config.worker_count());
        true
    });
    outcome
}

/// Builds and runs the actix server on a clone of the bound listener.
fn start_workers(
    config: &HttpConfig,
    mut template: AppTemplate,
    routes: &RouteTable,
    listener: &std::net::TcpListener,
) -> Result<(actix_web::dev::Server, SocketAddr), HttpError> {
    let addr = listener
        .local_addr()
        .map_err(|source| HttpError::Serve { addr: config.bind.parse().unwrap_or(([0, 0, 0, 0], 0).into()), source })?;
    let serve_error = |source| HttpError::Serve { addr, source };
    let listener = listener.try_clone().map_err(serve_error)?;
    listener.set_nonblocking(true).map_err(serve_error)?;
    template.routes = routes.seal();
    let drain = template.drain.clone();
    let keep_alive =
        if config.keep_alive.is_zero() { KeepAlive::Disabled } else { KeepAlive::Timeout(config.keep_alive) };
    let server = actix_web::HttpServer::new(move || template.app())
        .workers(config.worker_count())
        .backlog(config.backlog)
        .keep_alive(keep_alive)
        .client_request_timeout(config.client_request_timeout)
        .disable_signals()
        .on_connect(move |_, extensions| {
            extensions.insert(drain.connection());
        })
        .listen(listener)
        .map_err(serve_error)?
        .run();
    Ok((server, addr))
}

#[orderly::component]
impl Component for HttpServer {
    fn name(&self) -> &str {
        <Self as FromConfig>::section()
    }

    fn dependencies(&self) -> Vec<Dependency> {
        vec![
            Dependency::on::<Metrics>(),
            // Started first when linked, so the first request is traced, and
            // asked (not a process global) whether it exports.
            #[cfg(feature = "tracing")]
            Dependency::on::<crate::tracing::Tracing>().optional(),
        ]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        if self.metrics.get().is_none() {
            let registry = ctx.dependency::<Metrics>()?.registry().map_err(HttpError::from)?;
            let _ = self.metrics.set(HttpMetrics::register(&registry).map_err(HttpError::from)?);
        }
        let _ = self.lifecycle.set(ctx.lifecycle());
        let addr = self.config.bind_addr()?;
        let bound = BoundListener::bind(addr, self.config.backlog).map_err(HttpError::from)?;
        let local = bound.local_addr();
        let _ = self.local_addr.set(local);
        let (listener, closer) = bound.split();
        self.state.send_replace(State::Bound(listener, closer));
        slog::info!(ctx.logger(), "listening"; "addr" => local.to_string(), "serving" => "once the app has started");
        ctx.lifecycle().announce_endpoint(ctx.name(), format!("http://{local}"));

        // Workers start once every component has: routes are complete then,
        // and connections that arrive meanwhile wait in the kernel's queue.
        let metrics = self.metrics.get().cloned().ok_or(HttpError::Metrics(MetricsError::NotStarted))?;
        #[cfg(feature = "tracing")]
        let traced = ctx.dependency::<crate::tracing::Tracing>().is_ok_and(|tracing| tracing.is_exporting());
        #[cfg(not(feature = "tracing"))]
        let traced = false;
        let template = self.app_template(ctx.logger().clone(), metrics, traced);
        let (config, routes, state) = (self.config.clone(), self.routes.clone(), self.state.clone());
        if let Some(log) = &self.access_log {
            let log = Arc::downgrade(log);
            // Ends with the server: it holds the log only weakly.
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(FLUSH_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    match log.upgrade() {
                        Some(log) => log.flush(),
                        None => return,
                    }
                }
            });
        }
        let (lifecycle, logger) = (ctx.lifecycle(), ctx.logger().clone());
        ctx.spawn(async move {
            if lifecycle.health().started().await {
                serve(&config, template, &routes, &state, &logger)?;
            }
            Ok(())
        });
        Ok(())
    }

    async fn ready(&self) -> Readiness {
        let app_running = self.lifecycle.get().is_some_and(|l| l.health().is_started());
        match &*self.state.borrow() {
            State::Serving(_) => Readiness::Ready,
            // While the app starts, being bound is all we can be: workers wait for it.
            State::Bound(..) if !app_running => Readiness::Ready,
            State::Bound(..) => Readiness::NotReady("starting workers".into()),
            State::Idle => Readiness::NotReady("not started".into()),
            State::Draining { .. } | State::Stopped => Readiness::NotReady("stopped".into()),
        }
    }

    async fn stop_accepting(&self, ctx: &StopContext) -> Result<(), BoxError> {
        self.drain.begin();
        self.state.send_if_modified(|state| {
            let serving = match std::mem::replace(state, State::Stopped) {
                State::Serving(mut serving) => {
                    serving.stop_accepting();
                    Some(serving)
                }
                // Never served: dropping the listener closes it.
                State::Bound(..) | State::Idle => None,
                // Stopped already (a second call): leave it as it was.
                earlier @ (State::Draining { .. } | State::Stopped) => {
                    *state = earlier;
                    return false;
                }
            };
            *state = State::Draining { _server: serving };
            true
        });
        slog::info!(ctx.logger(), "stopped accepting"; "in_flight" => self.drain.in_flight(), "connections" => self.drain.connections());
        Ok(())
    }

    async fn drain(&self, ctx: &StopContext) -> Result<(), BoxError> {
        let deadline = ctx.deadline();
        // Leave a little of the budget to answer the stragglers with a 503.
        let margin = deadline.saturating_duration_since(Instant::now()).mul_f64(0.1).min(Duration::from_millis(100));
        let outcome = self.drain.wait(deadline - margin, deadline).await;
        // The actix server task is waiting on its workers' once-a-second
        // check; nothing is left for it to do that we need.
        self.state.send_replace(State::Stopped);
        if let Some(log) = &self.access_log {
            log.flush();
        }
        if outcome.connections_left > 0 {
            slog::warn!(ctx.logger(), "connections still open at the end of the drain"; "connections" => outcome.connections_left);
        }
        if outcome.cut_off > 0 {
            if let Some(metrics) = self.metrics.get() {
                metrics.cut_off.inc_by(outcome.cut_off as u64);
            }
            return Err(HttpError::CutOff { count: outcome.cut_off }.into());
        }
        slog::info!(ctx.logger(), "drained");
        Ok(())
    }
}

orderly::register!(HttpServer: HttpConfig => HttpServer::new, section = "http");
