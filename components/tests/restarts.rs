//! Every standard component restarts along the graph under its own load,
//! three times in a row, and nothing is lost: requests that were accepted
//! are answered, jobs run exactly once, the final push carries every
//! count. A restarted server keeps its listening socket open for its next
//! run, so no connection is refused: a client sees, at most, a slower answer.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orderly::events::EventKind;
use orderly::{config::Secret, BoxError, Component, Dependency, Runtime, StartContext};
use orderly_components::cache::{Cache, CacheBackend, CacheConfig};
use orderly_components::http::HttpConfig;
use orderly_components::metrics::{Metrics, MetricsConfig, PushConfig};
use orderly_components::postgres::{Database, DatabaseConfig, DevDatabase};
use orderly_components::workers::{enqueue, Job, JobContext, JobHandler, Workers, WorkersConfig};
use orderly_test_services::{free_port, series_value, Pushgateway, Redis};
use support::*;

/// What a load of clients saw.
#[derive(Default)]
struct Seen {
    ok: AtomicUsize,
    /// Turned away while a restart ran: refused, or reset in the kernel's
    /// queue before a worker accepted it. None may be: the socket stays open.
    not_accepted: AtomicUsize,
    /// Counts up when a restart begins and when it ends: odd while one
    /// runs. A request sent or ended meanwhile may be turned away.
    restarts: AtomicUsize,
    /// Anything else: an answer other than 200, or an error outside a restart.
    failed: std::sync::Mutex<Vec<String>>,
}

/// Clients asking `url` with a new connection each time until `stop`.
fn load(url: String, clients: usize, stop: Arc<AtomicBool>, seen: Arc<Seen>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            let (url, stop, seen) = (url.clone(), stop.clone(), seen.clone());
            tokio::spawn(async move {
                let client = fresh_connection_client();
                while !stop.load(Ordering::Relaxed) {
                    let before = seen.restarts.load(Ordering::SeqCst);
                    let sent = client.get(&url).send().await;
                    let during_restart = before % 2 == 1 || seen.restarts.load(Ordering::SeqCst) != before;
                    match sent {
                        Ok(response) if response.status() == 200 => {
                            seen.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(response) => seen.failed.lock().unwrap().push(format!("status {}", response.status())),
                        Err(_) if during_restart => {
                            seen.not_accepted.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                        Err(error) => seen.failed.lock().unwrap().push(format!("{error:?}")),
                    }
                }
            })
        })
        .collect()
}

fn restarted_events(runtime: &Runtime, component: &str) -> Vec<String> {
    runtime
        .timeline()
        .of_kind(EventKind::Restarted)
        .into_iter()
        .filter(|e| e.component.as_deref() == Some(component))
        .map(|e| e.detail.unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_stack_restarts_three_times_each_under_load_and_the_final_push_has_every_request() {
    let gateway = Pushgateway::start();
    let push = PushConfig {
        url: gateway.url.clone(),
        interval: Duration::from_millis(100),
        job: "restarts".into(),
        instance: "one".into(),
        ..PushConfig::default()
    };
    // A fixed port, as in production: every run binds it again.
    let http = HttpConfig { bind: format!("127.0.0.1:{}", free_port()), ..http_config() };
    let (runtime, server, admin, accepted) = build_with_metrics(
        Metrics::new(MetricsConfig { push, ..MetricsConfig::default() }),
        http.clone(),
        admin_config(),
        Default::default(),
    );
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    assert!(server.serving().await);
    let base = format!("http://{}", http.bind);
    let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Seen::default()));
    let clients = load(format!("{base}/slow?ms=3"), 4, stop.clone(), seen.clone());

    for component in ["http", "metrics", "admin"] {
        for round in 1..=3 {
            tokio::time::sleep(Duration::from_millis(60)).await;
            let before = seen.ok.load(Ordering::Relaxed);
            seen.restarts.fetch_add(1, Ordering::SeqCst);
            let members = runtime.restart(component, "a test").await.unwrap_or_else(|e| panic!("{component}: {e}"));
            seen.restarts.fetch_add(1, Ordering::SeqCst);
            assert!(server.serving().await, "{component} round {round}: serving again");
            // The routes came back with their component's new start.
            let hello = client().get(format!("{base}/hello")).send().await.unwrap();
            assert_eq!(hello.status(), 200, "{component} round {round} ({members})");
            let probes = format!("http://{}/readyz", admin.local_addr().unwrap());
            assert_eq!(client().get(probes).send().await.unwrap().status(), 200, "{component} round {round}");
            tokio::time::sleep(Duration::from_millis(60)).await;
            assert!(seen.ok.load(Ordering::Relaxed) > before, "{component} round {round}: served under load again");
        }
        assert_eq!(restarted_events(&runtime, component).len(), 3, "{component}");
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert!(seen.failed.lock().unwrap().is_empty(), "requests that failed: {:?}", seen.failed.lock());
    assert_eq!(seen.not_accepted.load(Ordering::Relaxed), 0, "no connection refused or reset by a restart");
    assert_eq!(seen.ok.load(Ordering::Relaxed), accepted.count(), "every request a handler saw was answered 200");
    // A restart of metrics takes its dependents along, the routes included.
    let members = &restarted_events(&runtime, "metrics")[0];
    assert!(members.contains("http") && members.contains("test_routes"), "{members}");
    // In graph order: stopped dependents first, started dependencies first.
    let events = runtime.timeline().events();
    let restarting =
        events.iter().position(|e| e.event == EventKind::Restarting && e.component.as_deref() == Some("metrics"));
    let after = &events[restarting.expect("metrics restarted")..];
    let at = |component: &str, kind: EventKind, phase: Option<orderly::phase::Phase>| {
        after
            .iter()
            .position(|e| {
                e.component.as_deref() == Some(component) && e.event == kind && (phase.is_none() || e.phase == phase)
            })
            .unwrap_or_else(|| panic!("no {kind:?} of {component}"))
    };
    let start = Some(orderly::phase::Phase::Start);
    assert!(at("metrics", EventKind::Started, start) < at("http", EventKind::Starting, start));
    assert!(at("http", EventKind::Ready, None) < at("test_routes", EventKind::Starting, start));
    let drain = Some(orderly::phase::Phase::Stop(orderly::StopPhase::Drain));
    assert!(at("http", EventKind::Stopped, drain) < at("metrics", EventKind::Started, start));
    assert!(runtime.shutdown(reason()).await.is_clean());

    let text = client().get(gateway.metrics_url()).send().await.unwrap().text().await.unwrap();
    let labels = [r#"job="restarts""#, r#"route="/slow""#, r#"status="200""#];
    let pushed = series_value(&text, "http_requests_total", &labels).unwrap_or(0.0);
    assert_eq!(pushed as usize, seen.ok.load(Ordering::Relaxed), "every answered request is in the final push");
    let restarts = series_value(&text, "orderly_component_restarts_total", &[r#"component="http""#]);
    assert!(restarts.is_some_and(|n| n >= 3.0), "http restarted 3 times itself and 3 times with metrics: {restarts:?}");
}

/// Writes the job's payload number into `effects`, in the job's transaction.
struct Effect;

#[orderly::async_trait]
impl JobHandler for Effect {
    async fn run(&self, job: &Job, ctx: &JobContext<'_>) -> Result<(), BoxError> {
        let tx = ctx.transaction().ok_or("durable jobs have a transaction")?;
        let n = job.payload["n"].as_i64().ok_or("no n")?;
        tx.execute("INSERT INTO effects (n, job_id) VALUES ($1, $2)", &[&n, &job.id]).await?;
        Ok(())
    }
}

/// Registers the handler on every start, as an app's component does.
struct Effects;

#[orderly::component]
impl Component for Effects {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Workers>()]
    }

    fn restartable(&self) -> bool {
        true
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        ctx.dependency::<Workers>()?.handle("effect", Effect);
        Ok(())
    }
}

async fn client_of(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_and_the_workers_restart_three_times_each_under_jobs_with_every_job_run_once() {
    let server = DevDatabase::start().await.expect("a throwaway postgres");
    let url = server.url();
    let observer = client_of(&url).await;
    observer.batch_execute("CREATE TABLE effects (n BIGINT PRIMARY KEY, job_id BIGINT NOT NULL)").await.unwrap();
    let database =
        DatabaseConfig { url: Secret::new(url.clone()), migrations: String::new(), ..DatabaseConfig::default() };
    let workers =
        Arc::new(Workers::new(WorkersConfig { poll_interval: Duration::from_millis(20), ..WorkersConfig::default() }));
    let runtime = Runtime::builder()
        .component(Metrics::default())
        .component(Database::new(database))
        .component_arc(workers.clone())
        .component(Effects)
        .build()
        .unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();

    // Jobs keep coming from outside the app (another service) throughout.
    let producer = {
        let url = url.clone();
        tokio::spawn(async move {
            let manager = deadpool_postgres::Manager::new(url.parse().unwrap(), tokio_postgres::NoTls);
            let pool = deadpool_postgres::Pool::builder(manager).max_size(1).build().unwrap();
            let client = pool.get().await.unwrap();
            for n in 0..600_i64 {
                enqueue(&client, "default", "effect", &serde_json::json!({ "n": n }), 5).await.unwrap();
                if n % 20 == 0 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        })
    };
    let mut probes = 0_i64;
    for component in ["database", "workers"] {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            runtime.restart(component, "a test").await.unwrap_or_else(|e| panic!("{component}: {e}"));
            // The workers' own enqueue goes through the new run's pool.
            workers.enqueue("effect", serde_json::json!({ "n": 10_000 + probes })).await.unwrap();
            probes += 1;
        }
        assert_eq!(restarted_events(&runtime, component).len(), 3, "{component}");
    }
    producer.await.unwrap();
    let done = async {
        loop {
            let row = observer.query_one("SELECT count(*) FROM orderly_jobs WHERE status = 'done'", &[]).await.unwrap();
            if row.get::<_, i64>(0) >= 600 + probes {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), done).await.expect("every job done");
    let effects: i64 = observer.query_one("SELECT count(*) FROM effects", &[]).await.unwrap().get(0);
    let distinct: i64 = observer.query_one("SELECT count(DISTINCT n) FROM effects", &[]).await.unwrap().get(0);
    let dead: i64 =
        observer.query_one("SELECT count(*) FROM orderly_jobs WHERE status = 'dead'", &[]).await.unwrap().get(0);
    let jobs = 600 + probes;
    assert_eq!((effects, distinct, dead), (jobs, jobs, 0), "every job ran exactly once, none lost");
    assert!(runtime.shutdown(reason()).await.is_clean());
    // A backend ends a moment after its client closed: wait for that, not longer.
    let sessions = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'orderly'";
    let mut left = -1;
    for _ in 0..250 {
        left = observer.query_one(sessions, &[]).await.unwrap().get::<_, i64>(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0, "no connection of any run is left");
}

/// Reads and writes the cache until stopped; counts what it did.
struct CacheUser;

#[orderly::component]
impl Component for CacheUser {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Cache>()]
    }

    fn restartable(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_restarts_three_times_on_either_backend_with_a_fresh_store_each_run() {
    let redis = Redis::start();
    for backend in [CacheBackend::Memory, CacheBackend::Redis] {
        let config = CacheConfig {
            backend,
            redis_url: Secret::new(format!("redis://127.0.0.1:{}", redis.port())),
            key_prefix: format!("{backend:?}:"),
            ..CacheConfig::default()
        };
        let cache = Arc::new(Cache::new(config));
        let runtime = Runtime::builder()
            .component(Metrics::default())
            .component_arc(cache.clone())
            .component(CacheUser)
            .build()
            .unwrap();
        runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
        let (stop, misses) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let reader = {
            let (cache, stop, misses) = (cache.clone(), stop.clone(), misses.clone());
            tokio::spawn(async move {
                let mut n = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    cache.set("key", &n, None).await;
                    if cache.get::<u64>("key").await.is_none() {
                        misses.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        for round in 1..=3 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            runtime.restart("cache", "a test").await.unwrap();
            cache.set("after", &round, None).await;
            assert_eq!(cache.get::<u32>("after").await, Some(round), "{backend:?} round {round}: the new store works");
        }
        stop.store(true, Ordering::Relaxed);
        reader.await.unwrap();
        assert_eq!(restarted_events(&runtime, "cache").len(), 3);
        assert!(cache.last_error().is_none(), "{backend:?}: no call went to a closed pool: {:?}", cache.last_error());
        assert!(runtime.shutdown(reason()).await.is_clean());
    }
}
