//! Each run of a component is owned by the runtime (issue #18): when its
//! stop phases end, in a restart or the shutdown, the tasks it spawned end
//! too, so a restarted component never has two runs alive; and every start
//! attempt begins from a clean slate, so what a failed attempt provided is
//! gone before the next one.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orderly::{
    async_trait, events::EventKind, settings::ComponentOverrides, settings::RetryPolicy, settings::RuntimeSettings,
    BoxError, Component, Dependency, Restart, Runtime, ShutdownReason, StartContext,
};
use std::sync::Mutex;

/// Set when the future that owns it is dropped: a task that ended, however.
struct Ended(Arc<AtomicBool>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// On every run, spawns a ticker that never ends by itself; on its first
/// run also a task that fails, so the component is restarted.
#[derive(Default)]
struct Ticking {
    runs: AtomicU32,
    /// Per run: whether its ticker has ended, and how often it ticked.
    tickers: Mutex<Vec<(Arc<AtomicBool>, Arc<AtomicU32>)>>,
}

#[async_trait]
impl Component for Ticking {
    fn restart(&self) -> Restart {
        Restart::Transient
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst);
        let (ended, ticks) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU32::new(0)));
        self.tickers.lock().unwrap().push((ended.clone(), ticks.clone()));
        ctx.spawn(async move {
            let _ended = Ended(ended);
            loop {
                ticks.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        if run == 0 {
            // Once the app runs: a failure during the start would shut it
            // down instead (`on_failure` applies to a running app only).
            let started = ctx.all_started();
            ctx.spawn(async move {
                started.await;
                Err::<(), BoxError>("the first run's worker died".into())
            });
        }
        Ok(())
    }
}

async fn wait_for(runtime: &Runtime, kind: EventKind) {
    for _ in 0..5000 {
        if !runtime.timeline().of_kind(kind).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("no {kind} event: {:#?}", runtime.timeline().events());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_old_runs_tasks_have_ended_and_after_the_shutdown_every_runs() {
    let ticking = Arc::new(Ticking::default());
    let mut settings = RuntimeSettings::default();
    settings.components.insert(
        "ticking".into(),
        ComponentOverrides {
            restart_backoff: Some(Duration::ZERO),
            // The ticker ignores cancellation: it is aborted at this cap.
            stop_cap: Some(Duration::from_millis(20)),
            ..Default::default()
        },
    );
    let runtime = Runtime::builder().component_arc(ticking.clone()).settings(settings).build().unwrap();
    runtime.start().await.unwrap();
    wait_for(&runtime, EventKind::Restarted).await;

    let tickers = ticking.tickers.lock().unwrap().clone();
    assert_eq!(tickers.len(), 2, "two runs");
    assert!(tickers[0].0.load(Ordering::SeqCst), "the first run's ticker still runs after the restart");
    assert!(!tickers[1].0.load(Ordering::SeqCst), "the second run's ticker runs");
    let old_ticks = tickers[0].1.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(tickers[0].1.load(Ordering::SeqCst), old_ticks, "the first run ticked after it ended");

    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
    assert!(tickers[1].0.load(Ordering::SeqCst), "a task of the last run outlived the shutdown");
    let ended: Vec<_> =
        runtime.timeline().of_kind(EventKind::TasksEnded).into_iter().filter_map(|e| e.detail).collect();
    assert_eq!(ended.len(), 2, "one per run: {ended:?}");
    assert!(ended.iter().all(|d| d.ends_with("1 aborted at its cap")), "{ended:?}");
}

/// The resource a pool provides.
struct Connections;

/// Provides its connections on every attempt; the first attempt then fails.
#[derive(Default)]
struct FlakyPool {
    attempts: AtomicU32,
}

#[async_trait]
impl Component for FlakyPool {
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        ctx.provide(Arc::new(Connections));
        if self.attempts.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err("the first connection attempt was refused".into());
        }
        Ok(())
    }
}

struct UsesConnections;

#[async_trait]
impl Component for UsesConnections {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<FlakyPool>()]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        ctx.resource::<Connections>()?;
        Ok(())
    }
}

#[tokio::test]
async fn what_a_failed_start_attempt_provided_is_withdrawn_before_the_retry() {
    let mut settings = RuntimeSettings::default();
    let retry = RetryPolicy::new(3, Duration::from_millis(1), Duration::from_millis(1));
    settings.components.insert("flaky_pool".into(), ComponentOverrides { retry: Some(retry), ..Default::default() });
    let runtime = Runtime::builder()
        .component(FlakyPool::default())
        .component(UsesConnections)
        .settings(settings)
        .build()
        .unwrap();
    if let Err(error) = runtime.start().await {
        panic!("the dependent must start after the retry: {error}");
    }
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
}

/// Spawns a task that never ends and hands out its handle.
#[derive(Default)]
struct Handing {
    ended: Arc<AtomicBool>,
    handle: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[async_trait]
impl Component for Handing {
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let ended = Ended(self.ended.clone());
        let handle = ctx.spawn(async move {
            let _ended = ended;
            std::future::pending::<Result<(), BoxError>>().await
        });
        *self.handle.lock().unwrap() = Some(handle);
        Ok(())
    }
}

#[tokio::test]
async fn the_handle_spawn_returns_ends_the_task_itself_and_that_is_no_failure() {
    let handing = Arc::new(Handing::default());
    let runtime = Runtime::builder().component_arc(handing.clone()).build().unwrap();
    runtime.start().await.unwrap();
    let handle = handing.handle.lock().unwrap().take().unwrap();
    handle.abort();
    assert!(handle.await.unwrap_err().is_cancelled());
    assert!(handing.ended.load(Ordering::SeqCst), "the task itself was dropped, not a wrapper around it");
    assert!(runtime.shutdown_handle().reason().is_none(), "aborting one's own task is no failure");
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
    assert!(runtime.timeline().of_kind(EventKind::TasksEnded).is_empty(), "nothing was left to end");
}

/// Spawns a task that watches its run's cancellation.
struct Watching(Arc<AtomicBool>);

#[async_trait]
impl Component for Watching {
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let (token, ended) = (ctx.cancellation(), Ended(self.0.clone()));
        ctx.spawn(async move {
            let _ended = ended;
            token.cancelled().await;
            Ok(())
        });
        Ok(())
    }
}

#[tokio::test]
async fn a_task_that_watches_its_runs_cancellation_returns_on_its_own_at_the_shutdown() {
    let ended = Arc::new(AtomicBool::new(false));
    let runtime = Runtime::builder().component(Watching(ended.clone())).build().unwrap();
    runtime.start().await.unwrap();
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
    assert!(ended.load(Ordering::SeqCst));
    let events = runtime.timeline().of_kind(EventKind::TasksEnded);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].detail.as_deref(), Some("run 0: 1 cancelled, 0 aborted at its cap"), "{events:?}");
}
