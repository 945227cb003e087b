//! The HTTP server component: binds in `start`, serves once the start it
//! is part of is complete (the app's, or a restart's), stops accepting in
//! phase 1 and drains in phase 2. A reload applies `[http]` while it serves:
//! live for the next request, or by a new server taking over the socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::KeepAlive;
use actix_web::web::ServiceConfig;
use orderly::{
    config::FromConfig, runtime::Lifecycle, BoxError, Component, Dependency, Readiness, ReloadContext, Reloaded,
    StartContext, StopContext,
};
use parking_lot::Mutex;
use tokio::sync::watch;

use super::app_template::AppTemplate;
use super::drain::Drain;
use super::live::{Live, Settings};
use super::middleware::access_log::{AccessLog, FLUSH_EVERY};
use super::middleware::backpressure::Limit;
use super::middleware::metrics::HttpMetrics;
use super::routes::{Added, RouteTable};
use super::HttpConfig;
use crate::metrics::{Metrics, MetricsError};
use crate::net::{BindError, BoundListener, ListenerCloser};
use crate::serve::{Retirement, Serving};

/// What can go wrong with the HTTP server, with what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
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
///         ctx.dependency::<HttpServer>()?.routes(ctx, |cfg| {
///             cfg.route("/hello", web::get().to(|| async { "hello" }));
///         })?;
///         Ok(())
///     }
/// }
/// ```
pub struct HttpServer {
    /// The config in force: the one built with, or the last reload's.
    config: Mutex<HttpConfig>,
    /// This run's state; a restart begins a fresh one.
    run: Mutex<Arc<Run>>,
    metrics: Mutex<Option<HttpMetrics>>,
    lifecycle: Mutex<Option<Lifecycle>>,
    /// Where access lines go, written while the live settings have the log on.
    access_log: Arc<AccessLog>,
    /// The listening socket a restart kept open for the next run, so that
    /// connections wait in the kernel's queue instead of being refused.
    parked: Mutex<Option<ListenerCloser>>,
}

/// One run of the server: what a restart must not carry over. A run's
/// routes are its dependents' (they add them again when they start again),
/// its drain counts its own requests, its listener is its own.
struct Run {
    routes: RouteTable,
    drain: Arc<Drain>,
    state: watch::Sender<State>,
    /// Where it listens (a reload may move it).
    local_addr: Mutex<Option<SocketAddr>>,
    limit: Arc<Limit>,
    live: Arc<Live>,
    /// What each worker's `App` is built from, routes sealed, once serving:
    /// a server that takes over on a reload is built from it.
    template: Mutex<Option<AppTemplate>>,
    /// Servers that handed the socket over on a reload, kept until the
    /// drain: their connections finish their current response.
    retired: Mutex<Vec<Serving>>,
}

impl Run {
    fn new(config: &HttpConfig) -> Self {
        Self {
            routes: RouteTable::default(),
            drain: Arc::default(),
            state: watch::Sender::new(State::Idle),
            local_addr: Mutex::new(None),
            limit: Limit::new(config.max_concurrent_requests),
            live: Live::new(Settings::of(config)),
            template: Mutex::new(None),
            retired: Mutex::new(Vec::new()),
        }
    }
}

impl HttpServer {
    /// A server with `config` (usually built from `[http]` by the registry).
    pub fn new(config: HttpConfig) -> Self {
        Self {
            run: Mutex::new(Arc::new(Run::new(&config))),
            config: Mutex::new(config),
            metrics: Mutex::new(None),
            lifecycle: Mutex::new(None),
            access_log: Arc::new(AccessLog::stdout()),
            parked: Mutex::new(None),
        }
    }

    fn run(&self) -> Arc<Run> {
        self.run.lock().clone()
    }

    /// The socket the last run kept open for this one, as a listener, if it
    /// listens where `addr` asks (port 0: any port). Otherwise it is closed.
    fn unpark(
        &self,
        addr: SocketAddr,
        backlog: u32,
        logger: &slog::Logger,
    ) -> Option<(std::net::TcpListener, ListenerCloser, SocketAddr)> {
        let closer = self.parked.lock().take()?;
        let local = closer.local_addr()?;
        if local.ip() != addr.ip() || (addr.port() != 0 && addr.port() != local.port()) {
            return None;
        }
        match closer.share(backlog) {
            Ok(listener) => Some((listener, closer, local)),
            Err(error) => {
                slog::warn!(logger, "the socket kept open for the restart cannot be used; binding again"; "error" => %error);
                None
            }
        }
    }

    /// Adds routes. Call it from the `start` of a component that depends on
    /// the server, with that start's context; `configure` runs once per
    /// worker thread, so share state through `web::Data::from(Arc<…>)`.
    /// Give a scope a real prefix: an empty-prefix scope matches every path
    /// and hides other components' routes.
    ///
    /// Routes belong to their component's run and to the server's: when the
    /// server restarts, its dependents restart after it and add their routes
    /// again; when a dependent restarts on its own (a failure, a reload of
    /// its section) while the server serves, its new routes replace its old
    /// ones through a new server that takes over the socket once that
    /// restart is complete. No connection is refused in between.
    pub fn routes<F>(&self, ctx: &StartContext, configure: F) -> Result<(), HttpError>
    where
        F: Fn(&mut ServiceConfig) + Send + Sync + 'static,
    {
        let run = self.run();
        if run.routes.add(ctx.name(), ctx.run(), Arc::new(configure)) == Added::Changed {
            let (config, logger, all_started) = (self.config.lock().clone(), ctx.logger().clone(), ctx.all_started());
            // Owned by the contributor's run: if that ends first, so does this.
            ctx.spawn(async move {
                if all_started.await && run.routes.changed_since_served() {
                    hand_over(&run, &config, false, &logger)?;
                }
                Ok(())
            });
        }
        Ok(())
    }

    /// The bound address, once started (the real port when 0 was asked for).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self.run().local_addr.lock()
    }

    /// Waits until workers take connections: `true`, or `false` if the
    /// server stopped (or the app shut down) before it served.
    pub async fn serving(&self) -> bool {
        let mut state = self.run().state.subscribe();
        let reached = state.wait_for(|s| matches!(s, State::Serving(_)) || s.has_stopped()).await;
        reached.is_ok_and(|s| matches!(*s, State::Serving(_)))
    }

    /// Requests being served right now.
    pub fn in_flight(&self) -> usize {
        self.run().drain.in_flight()
    }

    fn app_template(
        &self,
        run: &Run,
        logger: slog::Logger,
        metrics: HttpMetrics,
        traced: Arc<std::sync::atomic::AtomicBool>,
    ) -> AppTemplate {
        AppTemplate {
            logger,
            metrics,
            drain: run.drain.clone(),
            limit: run.limit.clone(),
            live: run.live.clone(),
            access_log: Some(self.access_log.clone()),
            routes: Arc::from(Vec::new()),
            traced,
            retiring: Arc::default(),
        }
    }
}

/// A new server takes over from the one serving: on a reload that changes
/// how the server listens (`bind`, `workers`, `keep_alive`,
/// `client_request_timeout`, `backlog`), or when a contributor's restart
/// changed the routes. It is built with the routes in force; the old one
/// stops taking connections and finishes those it has. On the same
/// address the new server accepts from the same socket, so no connection
/// is refused or lost in between; on a new address the new socket is
/// bound before the old one closes (`rebind`: `bind` changed).
fn hand_over(
    run: &Run,
    config: &HttpConfig,
    rebind: bool,
    logger: &slog::Logger,
) -> Result<Option<SocketAddr>, HttpError> {
    let Some(mut template) = run.template.lock().clone() else { return Ok(None) };
    template.routes = run.routes.seal();
    let local = *run.local_addr.lock();
    let mut outcome = Ok(None);
    run.state.send_if_modified(|state| {
        let State::Serving(old) = state else { return false };
        let taken = match old.closer() {
            Some(closer) if !rebind => closer
                .share(config.backlog)
                .map(|listener| (listener, None))
                .map_err(|source| HttpError::Serve { addr: local.unwrap_or(([0, 0, 0, 0], 0).into()), source }),
            _ => config
                .bind_addr()
                .map_err(|_| HttpError::Serve {
                    addr: ([0, 0, 0, 0], 0).into(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidInput, config.bind.clone()),
                })
                .and_then(|addr| BoundListener::bind(addr, config.backlog).map_err(HttpError::from))
                .map(|bound| {
                    let (listener, closer) = bound.split();
                    (listener, Some(closer))
                }),
        };
        let (listener, new_closer) = match taken {
            Ok(taken) => taken,
            Err(error) => {
                outcome = Err(error);
                return false;
            }
        };
        let (server, addr, retirement) = match start_workers(config, template.clone(), &listener) {
            Ok(started) => started,
            Err(error) => {
                outcome = Err(error);
                return false;
            }
        };
        let State::Serving(mut old) = std::mem::replace(state, State::Idle) else { return false };
        let closer = match new_closer {
            // A new address: the new socket is open already; the old one closes now.
            Some(closer) => {
                old.close_listener();
                closer
            }
            None => match old.take_closer() {
                Some(closer) => closer,
                None => return false,
            },
        };
        // The old server takes no more connections, and stops once those it
        // has are done: stopping it at once would close connections it
        // accepted whose request it has not read yet.
        let cap = config.keep_alive + config.request_timeout + Duration::from_secs(1);
        old.retire(Instant::now() + cap);
        let mut retired = run.retired.lock();
        // Those stopped by now are done: a service reloaded for weeks keeps no trail of them.
        retired.retain(|server| !server.has_ended());
        retired.push(old);
        *state = State::Serving(Serving::spawn(server, closer, logger.clone()).counting(retirement));
        slog::info!(logger, "a new server took over"; "addr" => addr.to_string(), "workers" => config.worker_count());
        *run.local_addr.lock() = Some(addr);
        outcome = Ok(Some(addr));
        true
    });
    outcome
}

/// How long a server stopped by a restart may go on answering the
/// connections it had, once paused (the drain waits for them first).
const RETIRE_LIMIT: Duration = Duration::from_secs(30);

/// Starts the actix server on the bound listener, unless a stop came first.
fn serve(config: &HttpConfig, mut template: AppTemplate, run: &Run, logger: &slog::Logger) -> Result<(), HttpError> {
    let state = &run.state;
    let mut outcome = Ok(());
    // The whole move from bound to serving happens under the state's lock,
    // so a stop cannot come in between.
    state.send_if_modified(|state| {
        let State::Bound(listener, _) = &*state else {
            return false; // stopped before the app finished starting
        };
        template.routes = run.routes.seal();
        let (server, addr, retirement) = match start_workers(config, template.clone(), listener) {
            Ok(started) => started,
            Err(error) => {
                outcome = Err(error);
                return false;
            }
        };
        if let State::Bound(_, closer) = std::mem::replace(state, State::Idle) {
            *state = State::Serving(Serving::spawn(server, closer, logger.clone()).counting(retirement));
        }
        *run.template.lock() = Some(template.clone());
        slog::info!(logger, "serving"; "addr" => addr.to_string(), "workers" => config.worker_count());
        true
    });
    outcome
}

/// Builds and runs the actix server on a clone of the bound listener.
fn start_workers(
    config: &HttpConfig,
    mut template: AppTemplate,
    listener: &std::net::TcpListener,
) -> Result<(actix_web::dev::Server, SocketAddr, Retirement), HttpError> {
    let addr = listener
        .local_addr()
        .map_err(|source| HttpError::Serve { addr: config.bind.parse().unwrap_or(([0, 0, 0, 0], 0).into()), source })?;
    let serve_error = |source| HttpError::Serve { addr, source };
    let listener = listener.try_clone().map_err(serve_error)?;
    listener.set_nonblocking(true).map_err(serve_error)?;
    let drain = template.drain.clone();
    // This server's own connections, beside the run's: a server that hands
    // over waits for exactly its own.
    let retirement = Retirement::default();
    template.retiring = retirement.retiring.clone();
    let counted = retirement.connections.clone();
    let keep_alive =
        if config.keep_alive.is_zero() { KeepAlive::Disabled } else { KeepAlive::Timeout(config.keep_alive) };
    let server = actix_web::HttpServer::new(move || template.app())
        .workers(config.worker_count())
        .backlog(config.backlog)
        .keep_alive(keep_alive)
        .client_request_timeout(config.client_request_timeout)
        .disable_signals()
        .on_connect(move |_, extensions| {
            extensions.insert((drain.connection(), counted.enter()));
        })
        .listen(listener)
        .map_err(serve_error)?
        .run();
    Ok((server, addr, retirement))
}

/// Whether two configs differ in how the server listens, which only a new
/// server can change (the rest changes live).
fn listens_differently(a: &HttpConfig, b: &HttpConfig) -> bool {
    a.bind != b.bind
        || a.worker_count() != b.worker_count()
        || a.keep_alive != b.keep_alive
        || a.client_request_timeout != b.client_request_timeout
        || a.backlog != b.backlog
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

    /// Every run starts from a fresh state: its own routes, drain and socket.
    fn restartable(&self) -> bool {
        true
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let config = self.config.lock().clone();
        let metrics = ctx.metric_set(HttpMetrics::register).map_err(HttpError::from)?;
        *self.metrics.lock() = Some(metrics.clone());
        let addr = config.bind_addr()?;
        let (listener, closer, local) = match self.unpark(addr, config.backlog, ctx.logger()) {
            Some(kept) => kept,
            None => {
                let bound = BoundListener::bind(addr, config.backlog).map_err(HttpError::from)?;
                let local = bound.local_addr();
                let (listener, closer) = bound.split();
                (listener, closer, local)
            }
        };
        let run = Arc::new(Run::new(&config));
        *run.local_addr.lock() = Some(local);
        *self.lifecycle.lock() = Some(ctx.lifecycle());
        run.state.send_replace(State::Bound(listener, closer));
        *self.run.lock() = run.clone();
        slog::info!(ctx.logger(), "listening"; "addr" => local.to_string(), "serving" => "once the start is complete");
        ctx.lifecycle().announce_endpoint(ctx.name(), format!("http://{local}"));

        // Workers start once every component of this start has: routes are
        // complete then, and connections that arrive meanwhile wait in the
        // kernel's queue.
        #[cfg(feature = "tracing")]
        let traced = ctx
            .dependency::<crate::tracing::Tracing>()
            .map_or_else(|_| Arc::default(), |tracing| tracing.exporting_switch());
        #[cfg(not(feature = "tracing"))]
        let traced = Arc::default();
        let template = self.app_template(&run, ctx.logger().clone(), metrics, traced);
        let log = Arc::downgrade(&self.access_log);
        let ended = ctx.cancellation();
        ctx.spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = ended.cancelled() => return Ok(()),
                }
                match log.upgrade() {
                    Some(log) => log.flush(),
                    None => return Ok(()),
                }
            }
        });
        let (all_started, logger) = (ctx.all_started(), ctx.logger().clone());
        ctx.spawn(async move {
            if all_started.await {
                serve(&config, template, &run, &logger)?;
            }
            Ok(())
        });
        Ok(())
    }

    async fn ready(&self) -> Readiness {
        match &*self.run().state.borrow() {
            State::Serving(_) => Readiness::Ready,
            // Until the start it is part of completes, being bound is all it
            // can be: workers wait for the routes of the components after it.
            State::Bound(..) => Readiness::Ready,
            State::Idle => Readiness::NotReady("not started".into()),
            State::Draining { .. } | State::Stopped => Readiness::NotReady("stopped".into()),
        }
    }

    /// Applies `[http]` while serving: the request timeout, body limit,
    /// `max_concurrent_requests`, access log and rate limits at once for new
    /// requests; `bind`, `workers`, `keep_alive`, `client_request_timeout`
    /// and `backlog` by a new server taking over (see `hand_over`). Nothing
    /// stops and no dependent restarts.
    async fn reload(&self, ctx: &ReloadContext) -> Result<Reloaded, BoxError> {
        let Some(new) = ctx.replacement::<HttpServer>() else { return Ok(Reloaded::NeedsRestart) };
        let new = new.config.lock().clone();
        let run = self.run();
        let old = self.config.lock().clone();
        if listens_differently(&old, &new) {
            if !matches!(&*run.state.borrow(), State::Serving(_)) {
                return Ok(Reloaded::NeedsRestart);
            }
            if let Some(addr) = hand_over(&run, &new, new.bind != old.bind, ctx.logger())? {
                if let Some(lifecycle) = &*self.lifecycle.lock() {
                    lifecycle.announce_endpoint(ctx.name(), format!("http://{addr}"));
                }
            }
        }
        run.limit.set_max(new.max_concurrent_requests);
        let mut settings = Settings::of(&new);
        if new.rate_limit == old.rate_limit {
            // The clients' buckets go on: another key's change must not grant every client a new burst.
            settings.rate_limits = run.live.current().rate_limits.clone();
        }
        run.live.set(settings);
        slog::info!(ctx.logger(), "reloaded in place";
            "request_timeout" => ?new.request_timeout, "max_body_bytes" => new.max_body_bytes,
            "max_concurrent_requests" => new.max_concurrent_requests, "access_log" => new.access_log);
        *self.config.lock() = new;
        Ok(Reloaded::Applied)
    }

    async fn stop_accepting(&self, ctx: &StopContext) -> Result<(), BoxError> {
        let run = self.run();
        run.drain.begin();
        // Stopped by a restart that starts it again: the socket stays open
        // for the next run (connections queue), only this server stops.
        let keep = ctx.starts_again();
        let mut kept = None;
        run.state.send_if_modified(|state| {
            let serving = match std::mem::replace(state, State::Stopped) {
                State::Serving(mut serving) if keep => {
                    // As in a hand-over: a connection it accepted while being
                    // paused is served, not cut; the rest wait for the next run.
                    kept = serving.take_closer();
                    serving.retire(Instant::now() + RETIRE_LIMIT);
                    Some(serving)
                }
                State::Serving(mut serving) => {
                    serving.stop_accepting();
                    Some(serving)
                }
                // Never served: dropping the listener closes it (unless kept).
                State::Bound(_, closer) => {
                    kept = keep.then_some(closer);
                    None
                }
                State::Idle => None,
                // Stopped already (a second call): leave it as it was.
                earlier @ (State::Draining { .. } | State::Stopped) => {
                    *state = earlier;
                    return false;
                }
            };
            *state = State::Draining { _server: serving };
            true
        });
        let socket = if kept.is_some() { "kept open for the restart" } else { "closed" };
        slog::info!(ctx.logger(), "stopped accepting";
            "in_flight" => run.drain.in_flight(), "connections" => run.drain.connections(), "socket" => socket);
        *self.parked.lock() = kept;
        Ok(())
    }

    async fn drain(&self, ctx: &StopContext) -> Result<(), BoxError> {
        let run = self.run();
        let deadline = ctx.deadline();
        // Leave a little of the budget to answer the stragglers with a 503.
        let margin = deadline.saturating_duration_since(Instant::now()).mul_f64(0.1).min(Duration::from_millis(100));
        let outcome = run.drain.wait(deadline - margin, deadline).await;
        // The actix server task is waiting on its workers' once-a-second
        // check; nothing is left for it to do that we need.
        run.state.send_replace(State::Stopped);
        run.retired.lock().clear();
        self.access_log.flush();
        if outcome.connections_left > 0 {
            slog::warn!(ctx.logger(), "connections still open at the end of the drain"; "connections" => outcome.connections_left);
        }
        if outcome.cut_off > 0 {
            if let Some(metrics) = &*self.metrics.lock() {
                metrics.cut_off.inc_by(outcome.cut_off as u64);
            }
            return Err(HttpError::CutOff { count: outcome.cut_off }.into());
        }
        slog::info!(ctx.logger(), "drained");
        Ok(())
    }
}

orderly::register!(HttpServer: HttpConfig => HttpServer::new, section = "http");
