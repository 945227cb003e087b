//! The Postgres pool component (`[database]`): deadpool-postgres over
//! tokio-postgres, the app's migrations, and a private dev database when
//! no URL is configured.
//!
//! - `start` connects, retrying refused or timed-out connections with
//!   backoff for up to `connect_retry` (a database that comes up a little
//!   later is fine) while a wrong password or a missing database fails at
//!   once; then runs the migrations under an advisory lock.
//! - `ready` runs `SELECT 1` within a second.
//! - Phase 5 closes the pool: it waits, within the budget, for checked-out
//!   connections to come back, closes every connection, then stops the dev
//!   database if it started one.
//! - A full pool makes callers wait up to `wait_timeout`, then
//!   [`DbError::Unavailable`], which maps to 503.

mod dev_database;
mod migrations;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::sync::Arc;

use deadpool_postgres::Hook;
use deadpool_postgres::{HookError, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime};
use orderly::{
    config::Secret, config::Validate, config::Validation, runtime::Lifecycle, settings::RetryPolicy, BoxError,
    Component, Permanent, Readiness, ReloadContext, Reloaded, StartContext, StopContext,
};
use parking_lot::Mutex;
use serde::Deserialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

pub use dev_database::{DevDatabase, DevDatabaseError};
pub use migrations::{EmbeddedMigration, EmbeddedMigrations, MigrationError};

/// `[database]`. Every key can be set as `APP__DATABASE__<KEY>`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/db` (redacted in every dump). Empty:
    /// start a private dev database, if `dev_database` allows it.
    pub url: Secret<String>,
    /// With no `url`, start a private Postgres from the local binaries.
    /// Turn it off in production profiles, so a missing URL is an error.
    pub dev_database: bool,
    /// Where the dev database lives, kept between runs (reused if it holds
    /// one; its server is stopped on exit, its data kept). Empty (the
    /// default): a fresh one in a temporary folder, removed on exit.
    pub dev_database_dir: String,
    /// Connections at most.
    pub pool_size: usize,
    /// How long one connection attempt may take.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long `start` keeps retrying a database that refuses connections.
    #[serde(with = "humantime_serde")]
    pub connect_retry: Duration,
    /// How long a caller waits for a free connection before `DbError::Unavailable`.
    #[serde(with = "humantime_serde")]
    pub wait_timeout: Duration,
    /// `statement_timeout` of every connection; 0 = none.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
    /// Directory of `<version>_<name>.sql` files, applied with those compiled
    /// in by [`embed_migrations!`](crate::embed_migrations); empty: only those.
    pub migrations: String,
    /// `application_name` of the connections, as `pg_stat_activity` shows it.
    pub application_name: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Secret::new(String::new()),
            dev_database: true,
            dev_database_dir: String::new(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            connect_retry: Duration::from_secs(20),
            wait_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(30),
            migrations: "migrations".into(),
            application_name: "orderly".into(),
        }
    }
}

impl Validate for DatabaseConfig {
    fn validate(&self, v: &mut Validation) {
        let url = self.url.expose();
        v.check(
            url.is_empty() || url.parse::<tokio_postgres::Config>().is_ok(),
            "url",
            "is not a valid postgres:// URL (the value is not shown: it may hold a password)",
        );
        v.check(!url.is_empty() || self.dev_database, "url", "must be set when dev_database = false");
        v.check((1..=10_000).contains(&self.pool_size), "pool_size", "must be 1 to 10000");
        v.check(!self.connect_timeout.is_zero(), "connect_timeout", "must be greater than 0");
        v.check(!self.wait_timeout.is_zero(), "wait_timeout", "must be greater than 0");
    }
}

/// A database operation failed; handlers map it to a status.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection became free within `wait_timeout`, or the pool is
    /// closed, or the database is unreachable: 503, try again.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Postgres rejected a query.
    #[error("query failed: {0}")]
    Query(#[from] tokio_postgres::Error),
    /// The component has not started (or was stopped).
    #[error("the database component has not started")]
    NotStarted,
}

/// Whether a query failed because the database is unreachable or going
/// away (retrying later can work), not because of the query: the
/// connection closed or broke, or the server said it is shutting down or
/// not accepting connections (SQLSTATE classes 08 and 57).
pub fn is_unavailable(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(db) = error.as_db_error() {
        let class = &db.code().code()[..2];
        return class == "08" || class == "57";
    }
    std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
}

#[cfg(feature = "http")]
impl From<DbError> for crate::http::ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(_) | DbError::NotStarted => {
                crate::http::ApiError::unavailable("the database is unavailable; try again", Duration::from_secs(1))
            }
            DbError::Query(e) if is_unavailable(&e) => {
                crate::http::ApiError::unavailable("the database is unavailable; try again", Duration::from_secs(1))
            }
            DbError::Query(e) => crate::http::ApiError::internal(e),
        }
    }
}

/// Why `start` could not connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The database refused us for a reason retrying will not fix.
    #[error("connecting to {target}: {source} (not retried: fix the URL or the credentials)")]
    Rejected {
        /// host:port/db, never the password.
        target: String,
        /// The cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Still unreachable when `connect_retry` ran out.
    #[error("connecting to {target}: still failing after {tries} attempts over {waited:?}: {last}")]
    GaveUp {
        /// host:port/db.
        target: String,
        /// Attempts made.
        tries: u32,
        /// Time spent.
        waited: Duration,
        /// The last error.
        last: String,
    },
}

/// The Postgres pool component.
pub struct Database {
    /// The config in force: built with, or the last reload's.
    config: Mutex<DatabaseConfig>,
    /// The statement timeout in force, which new connections take and
    /// older ones are replaced for.
    statement_timeout: Arc<Mutex<StatementTimeout>>,
    lifecycle: Mutex<Option<Lifecycle>>,
    pool: Mutex<Option<Pool>>,
    /// How the pool connects, for a connection of its own (a `LISTEN`).
    connection: Mutex<Option<tokio_postgres::Config>>,
    dev: tokio::sync::Mutex<Option<DevDatabase>>,
}

impl Database {
    /// A pool with `config`.
    pub fn new(config: DatabaseConfig) -> Self {
        Self {
            statement_timeout: Arc::new(Mutex::new(StatementTimeout {
                value: config.statement_timeout,
                since: Instant::now(),
            })),
            config: Mutex::new(config),
            lifecycle: Mutex::new(None),
            pool: Mutex::new(None),
            connection: Mutex::new(None),
            dev: tokio::sync::Mutex::new(None),
        }
    }

    /// How the pool's connections are made (it holds the password): for a
    /// connection that must not come from the pool, such as one that
    /// `LISTEN`s for as long as the app runs.
    pub fn connection_config(&self) -> Result<tokio_postgres::Config, DbError> {
        self.connection.lock().clone().ok_or(DbError::NotStarted)
    }

    /// The pool (a cheap handle).
    pub fn pool(&self) -> Result<Pool, DbError> {
        self.pool.lock().clone().ok_or(DbError::NotStarted)
    }

    /// A connection, waiting at most `wait_timeout` for a free one.
    pub async fn get(&self) -> Result<Object, DbError> {
        let pool = self.pool()?;
        let mut timeouts = pool.timeouts();
        timeouts.wait = Some(self.config.lock().wait_timeout);
        pool.timeout_get(&timeouts).await.map_err(|e| match e {
            PoolError::Backend(e) => DbError::Unavailable(e.to_string()),
            other => DbError::Unavailable(other.to_string()),
        })
    }

    /// The port of the dev database, if this component started one.
    pub async fn dev_database_port(&self) -> Option<u16> {
        self.dev.lock().await.as_ref().map(DevDatabase::port)
    }
}

/// The statement timeout in force, and since when: connections made
/// before then are replaced when next checked out.
#[derive(Debug, Clone, Copy)]
struct StatementTimeout {
    value: Duration,
    since: Instant,
}

/// Hooks that keep every connection on the statement timeout in force: a
/// new one sets it, one made before the last change is replaced.
fn statement_timeout_hooks(
    builder: deadpool_postgres::PoolBuilder,
    timeout: &Arc<Mutex<StatementTimeout>>,
) -> deadpool_postgres::PoolBuilder {
    let on_create = timeout.clone();
    let on_recycle = timeout.clone();
    builder
        .post_create(Hook::async_fn(move |client, _| {
            let value = on_create.lock().value;
            Box::pin(async move {
                let sql = format!("SET statement_timeout = {}", value.as_millis());
                client.simple_query(&sql).await.map(drop).map_err(HookError::Backend)
            })
        }))
        .pre_recycle(Hook::sync_fn(move |_, metrics| {
            if metrics.created < on_recycle.lock().since {
                return Err(HookError::message("made before the statement timeout changed"));
            }
            Ok(())
        }))
}

/// `host:port/db` of a config, for messages (never the password).
fn target(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{}:{port}/{}", hosts.join(","), config.get_dbname().unwrap_or("postgres"))
}

/// Errors that retrying cannot fix: authentication, a missing database or role.
fn is_rejection(error: &tokio_postgres::Error) -> bool {
    error.code().is_some_and(|code| {
        [
            SqlState::INVALID_PASSWORD,
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            SqlState::INVALID_CATALOG_NAME,
            SqlState::INSUFFICIENT_PRIVILEGE,
        ]
        .contains(code)
    })
}

async fn connect_with_retry(
    pool: &Pool,
    config: &DatabaseConfig,
    target: &str,
    logger: &slog::Logger,
) -> Result<Object, BoxError> {
    // The framework's backoff: doubling from 50 ms up to 2 s, with full
    // jitter so that replicas waiting for the same database spread out.
    // The attempt count is unbounded; `connect_retry` bounds the time.
    let policy = RetryPolicy::new(u32::MAX, Duration::from_millis(50), Duration::from_secs(2));
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let error = match pool.get().await {
            Ok(client) => return Ok(client),
            Err(PoolError::Backend(e)) if is_rejection(&e) => {
                return Err(Permanent::new(ConnectError::Rejected { target: target.to_owned(), source: e }).into())
            }
            Err(e) => e.to_string(),
        };
        let backoff = policy.backoff(tries);
        if started.elapsed() + backoff > config.connect_retry {
            return Err(ConnectError::GaveUp {
                target: target.to_owned(),
                tries,
                waited: started.elapsed(),
                last: error,
            }
            .into());
        }
        slog::warn!(logger, "database not reachable yet; retrying"; "target" => target, "error" => &error, "attempt" => tries);
        tokio::time::sleep(backoff).await;
    }
}

#[orderly::component]
impl Component for Database {
    /// Each run builds its own pool; a dev database outlives a restart
    /// (its data with it) and stops at the shutdown.
    fn restartable(&self) -> bool {
        true
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let config = self.config.lock().clone();
        *self.lifecycle.lock() = Some(ctx.lifecycle());
        let url = if config.url.expose().is_empty() {
            let mut dev = self.dev.lock().await;
            match &*dev {
                // Kept from this value's earlier run: a restart, not a new database.
                Some(running) => running.url(),
                None => {
                    let started = match config.dev_database_dir.as_str() {
                        "" => DevDatabase::start().await,
                        kept => DevDatabase::start_kept(std::path::PathBuf::from(kept)).await,
                    }
                    .map_err(Permanent::new)?;
                    let kept = !config.dev_database_dir.is_empty();
                    slog::info!(ctx.logger(), "started a local dev database"; "port" => started.port(), "dir" => started.dir().display().to_string(), "kept" => kept);
                    dev.insert(started).url()
                }
            }
        } else {
            config.url.expose().clone()
        };
        let mut pg: tokio_postgres::Config = url.parse().map_err(Permanent::new)?;
        pg.connect_timeout(config.connect_timeout).application_name(&config.application_name);
        let target = target(&pg);
        *self.connection.lock() = Some(pg.clone());
        let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = statement_timeout_hooks(Pool::builder(manager), &self.statement_timeout)
            .max_size(config.pool_size)
            .wait_timeout(Some(config.wait_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(Permanent::new)?;
        let mut client = connect_with_retry(&pool, &config, &target, ctx.logger()).await?;
        let dir = (!config.migrations.is_empty()).then(|| PathBuf::from(&config.migrations));
        let found = migrations::collect(dir.as_deref()).map_err(Permanent::new)?;
        if !found.is_empty() {
            let applied = migrations::run(&mut client, &found).await.map_err(Permanent::new)?;
            slog::info!(ctx.logger(), "migrations";
                "dir" => dir.map(|d| d.display().to_string()).unwrap_or_default(),
                "known" => found.len(), "applied" => applied.join(","));
        }
        drop(client);
        slog::info!(ctx.logger(), "database pool ready"; "target" => &target, "pool_size" => config.pool_size);
        *self.pool.lock() = Some(pool);
        Ok(())
    }

    /// `pool_size` (the pool grows or shrinks as connections come back),
    /// `wait_timeout` and `statement_timeout` (new connections take it, older
    /// ones are replaced when next checked out) apply at once; the rest
    /// (`url`, the dev database, connecting, migrations) restarts the pool
    /// with its dependents.
    async fn reload(&self, ctx: &ReloadContext) -> Result<Reloaded, BoxError> {
        let Some(new) = ctx.replacement::<Database>() else { return Ok(Reloaded::NeedsRestart) };
        let new = new.config.lock().clone();
        let old = self.config.lock().clone();
        let live = DatabaseConfig {
            pool_size: old.pool_size,
            wait_timeout: old.wait_timeout,
            statement_timeout: old.statement_timeout,
            ..new.clone()
        };
        if serde_json::to_value(&live)? != serde_json::to_value(&old)? || live.url.expose() != old.url.expose() {
            return Ok(Reloaded::NeedsRestart);
        }
        let Ok(pool) = self.pool() else { return Ok(Reloaded::NeedsRestart) };
        pool.resize(new.pool_size);
        if new.statement_timeout != old.statement_timeout {
            *self.statement_timeout.lock() = StatementTimeout { value: new.statement_timeout, since: Instant::now() };
        }
        slog::info!(ctx.logger(), "reloaded in place"; "pool_size" => new.pool_size,
            "wait_timeout" => ?new.wait_timeout, "statement_timeout" => ?new.statement_timeout);
        *self.config.lock() = new;
        Ok(Reloaded::Applied)
    }

    async fn ready(&self) -> Readiness {
        let check = async {
            let client = self.get().await?;
            client.query_one("SELECT 1", &[]).await?;
            Ok::<(), DbError>(())
        };
        match tokio::time::timeout(Duration::from_secs(1), check).await {
            Ok(Ok(())) => Readiness::Ready,
            Ok(Err(e)) => Readiness::NotReady(e.to_string()),
            Err(_) => Readiness::NotReady("SELECT 1 took longer than 1 s".into()),
        }
    }

    async fn close(&self, ctx: &StopContext) -> Result<(), BoxError> {
        let pool = self.pool.lock().take();
        let mut left = 0;
        if let Some(pool) = pool {
            // Closing drops idle connections now and each checked-out one
            // when it comes back; wait for those within the budget.
            pool.close();
            while pool.status().size > 0 && Instant::now() < ctx.deadline() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            left = pool.status().size;
        }
        // A restart keeps the dev database (and what it holds) for the next run.
        let shutting_down = self.lifecycle.lock().as_ref().is_none_or(|l| l.health().is_shutting_down());
        if shutting_down {
            if let Some(dev) = self.dev.lock().await.take() {
                dev.stop().await?;
                slog::info!(ctx.logger(), "dev database stopped and removed");
            }
        }
        if left > 0 {
            return Err(format!("{left} connection(s) were still checked out when the close budget ran out").into());
        }
        Ok(())
    }
}

orderly::register!(Database: DatabaseConfig => Database::new);
