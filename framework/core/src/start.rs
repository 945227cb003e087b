//! Start: concurrently along the graph, each component once all of its
//! dependencies are started and ready.
//!
//! Each component's `start` runs under its start timeout, with its retry
//! policy; then `ready` is polled (1 ms, doubling to 100 ms) until ready or
//! its readiness timeout. The first failure, timeout or panic — or a
//! shutdown request — stops the start: nothing new is launched, starts in
//! flight are cancelled, and the caller rolls back exactly the components
//! whose `start` returned `Ok`.
//!
//! The engine: it works on the running app's state (`state.rs`) and the walk;
//! it never names supervision or the runtime above it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::component::Component;
use crate::context::StartContext;
use crate::error::{box_error_chain, Permanent, StartFailure};
use crate::event::EventKind;
use crate::hook::{within, BoxFuture, Ended};
use crate::nodeset::NodeSet;
use crate::phase::Phase;
use crate::readiness::Readiness;
use crate::retry::RetryPolicy;
use crate::settings::ComponentSettings;
use crate::state::Shared;
use crate::trigger::ShutdownReason;
use crate::walk::{drive, Begin, Pass, Walk};

/// How the start ended.
#[derive(Debug)]
pub(crate) enum StartEnd {
    /// Every component started and is ready.
    Complete,
    /// A component failed; this is the first failure.
    Failed(StartFailure),
    /// A shutdown was requested before the start completed.
    Interrupted(ShutdownReason),
}

/// Starts the components marked in `included` (every one, or those a
/// restart stopped) along the graph; the others must already run. Returns
/// which ones started and how it ended.
pub(crate) async fn start_all(shared: &Arc<Shared>, included: &NodeSet) -> (NodeSet, StartEnd) {
    let walk = shared.walks.begin();
    let (started, end) = walk_and_start(shared, included).await;
    if matches!(end, StartEnd::Complete) {
        // Running before the walk's waiters wake: work that waits for this
        // start (`all_started`) and then fails is a running app's failure,
        // restarted by its policy, not a failure of the start.
        shared.mark_started(&started);
    }
    shared.walks.end(walk, matches!(end, StartEnd::Complete));
    (started, end)
}

async fn walk_and_start(shared: &Arc<Shared>, included: &NodeSet) -> (NodeSet, StartEnd) {
    let graph = &shared.graph;
    let mut pass = Starting { shared, started: NodeSet::empty(graph.len()) };
    if let Some(reason) = shared.shutdown.reason() {
        return (pass.started, StartEnd::Interrupted(reason));
    }
    let walk = Walk::new(&graph.dependencies, &graph.dependents, included);
    let interrupt = async { StartEnd::Interrupted(shared.shutdown.wait().await) };
    let (end, mut cancelled) = drive(walk, &mut pass, interrupt).await;

    // What was still starting has been cancelled. A start that returned
    // before its abort took effect did start, so it is counted and will be
    // rolled back.
    while let Some((i, end)) = cancelled.next().await {
        match end {
            // Cancelled while waiting for readiness: its start returned, so it holds
            // whatever it acquired and is rolled back with the rest.
            Ended::Aborted if start_returned(shared, i) => pass.started.insert(i),
            Ended::Aborted => shared.events.emit(
                EventKind::Cancelled
                    .build()
                    .component(&graph.nodes[i].name)
                    .phase(Phase::Start)
                    .detail("start was cancelled; it is not stopped"),
            ),
            // Finished before its abort took effect: counted either way.
            end => {
                let _ = pass.end(i, end);
            }
        }
    }
    (pass.started, end.unwrap_or(StartEnd::Complete))
}

/// The start as a walk along the graph: a component starts once its
/// dependencies are ready; the first failure or a shutdown request halts it.
struct Starting<'a> {
    shared: &'a Arc<Shared>,
    /// Whose `start` returned `Ok`: what a rollback stops.
    started: NodeSet,
}

impl Pass for Starting<'_> {
    type Output = Result<(), StartFailure>;
    type Halt = StartEnd;

    fn begin(&mut self, i: usize) -> Begin<Self::Output, StartEnd> {
        // Nothing starts once a shutdown was requested, even between two
        // starts that finish at once.
        match self.shared.shutdown.reason() {
            Some(reason) => Begin::Halt(StartEnd::Interrupted(reason)),
            // No limit here: the start and readiness timeouts are inside the task.
            None => Begin::Run { task: start_one(self.shared, i), limit: None },
        }
    }

    /// Marks a component whose start returned `Ok` (one that then failed,
    /// timed out or panicked while becoming ready did start: it is rolled
    /// back too); emits the event of a failure and halts with it.
    fn end(&mut self, i: usize, end: Ended<Self::Output>) -> Result<(), StartEnd> {
        let shared = self.shared;
        let name = &shared.graph.nodes[i].name;
        let failure = |phase, event, error| StartFailure { component: name.to_string(), phase, event, error };
        let started = start_returned(shared, i);
        if started {
            self.started.insert(i);
        }
        let failure = match end {
            Ended::Returned(Ok(())) => return Ok(()),
            Ended::Returned(Err(failure)) => failure,
            Ended::Panicked(message) if started => failure(Phase::Ready, EventKind::Panicked, message),
            Ended::Panicked(message) => failure(Phase::Start, EventKind::Panicked, message),
            // The start sets no limit (its timeouts are inside its task).
            Ended::Aborted | Ended::OverLimit => {
                failure(Phase::Start, EventKind::Failed, "its start task was aborted".into())
            }
        };
        shared.events.emit(failure.event.build().component(name).phase(failure.phase).error(failure.error.clone()));
        Err(StartEnd::Failed(failure))
    }
}

/// One component's start, retries and readiness wait included, as an owned future.
fn start_one(shared: &Arc<Shared>, i: usize) -> BoxFuture<Result<(), StartFailure>> {
    let shared = shared.clone();
    let ctx = StartContext { index: i, walk: shared.walks.current(), host: shared.clone() };
    Box::pin(async move {
        let shared = &shared;
        let node = &shared.graph.nodes[i];
        let name = &node.name;
        let fail = |phase, event, error| Err(StartFailure { component: name.to_string(), phase, event, error });
        // Taken once: a reload swaps components only while they are stopped.
        let (component, limits) = node.read_live(|component, settings| (component.clone(), StartLimits::of(settings)));
        let began = Instant::now();
        // Its type has begun to start in this process: from now on, starting
        // it again (a new value too) needs it to be restartable.
        if !node.supervised.ran.load(Ordering::Relaxed) {
            node.supervised.ran.store(true, Ordering::Relaxed);
        }
        shared.events.emit(EventKind::Starting.build().component(name).phase(Phase::Start).at(began));
        if let Err((event, error)) = attempts(shared, i, &ctx, &*component, &limits, began).await {
            // Nothing of a start that failed for good stays behind (boxed,
            // as every path taken only after a failure: see `attempts`).
            Box::pin(shared.clean_slate(i)).await;
            return fail(Phase::Start, event, error);
        }
        shared.start_returned[i].store(true, Ordering::Release);
        shared.started_afresh(i);
        let returned = Instant::now();
        shared.events.emit(
            EventKind::Started.build().component(name).phase(Phase::Start).elapsed(returned - began).at(returned),
        );
        // A component whose `ready` is the default is ready once started: not
        // polled, and ready at the instant it started (no second clock read).
        let (ready, waited) = if component.checks_readiness() {
            let deadline = returned + limits.ready_timeout;
            if let Err(error) = Box::pin(wait_until_ready(shared, i, &*component, deadline)).await {
                return fail(Phase::Ready, EventKind::TimedOut, error);
            }
            let ready = Instant::now();
            (ready, ready - returned)
        } else {
            (returned, Duration::ZERO)
        };
        shared.events.emit(EventKind::Ready.build().component(name).phase(Phase::Ready).elapsed(waited).at(ready));
        Ok(())
    })
}

/// What of a component's settings its start uses, kept for the start's
/// length (the whole settings would make every start's future larger).
struct StartLimits {
    start_timeout: Duration,
    ready_timeout: Duration,
    retry: RetryPolicy,
}

impl StartLimits {
    fn of(settings: &ComponentSettings) -> Self {
        Self { start_timeout: settings.start_timeout, ready_timeout: settings.ready_timeout, retry: settings.retry }
    }
}

/// `start`, tried as the component's retry policy allows until
/// `deadline`. Each failed attempt's run ends and what it provided is
/// withdrawn before the next attempt, which begins from a clean slate.
async fn attempts(
    shared: &Shared,
    i: usize,
    ctx: &StartContext,
    component: &dyn Component,
    limits: &StartLimits,
    began: Instant,
) -> Result<(), (EventKind, String)> {
    let name = &shared.graph.nodes[i].name;
    let deadline = || began + limits.start_timeout;
    let mut attempt = 1;
    loop {
        let error = match within(deadline, component.start(ctx)).await {
            Some(Ok(())) => return Ok(()),
            Some(Err(error)) => error,
            None => {
                let limit = humantime::format_duration(limits.start_timeout);
                return Err((EventKind::TimedOut, format!("start did not finish within {limit}")));
            }
        };
        let chain = box_error_chain(&error);
        if error.is::<Permanent>() || attempt >= limits.retry.attempts {
            return Err((EventKind::Failed, chain));
        }
        let backoff = limits.retry.backoff(attempt);
        if Instant::now() + backoff >= deadline() {
            let next = attempt + 1;
            return Err((EventKind::Failed, format!("{chain} (no time left in the start timeout for attempt {next})")));
        }
        shared.events.emit(
            EventKind::Retrying
                .build()
                .component(name)
                .phase(Phase::Start)
                .error(chain)
                .detail(format!("attempt {attempt} of {} failed; retrying in {:?}", limits.retry.attempts, backoff)),
        );
        // Boxed, as every path taken only after a failure: the future of
        // every component's start would carry their size.
        Box::pin(async {
            shared.clean_slate(i).await;
            tokio::time::sleep(backoff).await;
        })
        .await;
        attempt += 1;
    }
}

fn start_returned(shared: &Shared, i: usize) -> bool {
    shared.start_returned[i].load(Ordering::Acquire)
}

/// Polls `ready` with a doubling interval until it reports ready or `deadline` passes.
/// A `not_ready` event is emitted when the component first reports not ready,
/// and again only when its reason changes, so the timeline shows why it waits.
async fn wait_until_ready(
    shared: &Shared,
    i: usize,
    component: &dyn Component,
    deadline: Instant,
) -> Result<(), String> {
    let node = &shared.graph.nodes[i];
    let mut interval = Duration::from_millis(1);
    let mut last: Option<String> = None;
    loop {
        match within(|| deadline, component.ready()).await {
            Some(readiness) if readiness.is_ready() => return Ok(()),
            Some(Readiness::NotReady(reason)) => {
                if last.as_deref() != Some(reason.as_str()) {
                    shared.events.emit(
                        EventKind::NotReady.build().component(&node.name).phase(Phase::Ready).detail(reason.clone()),
                    );
                }
                last = Some(reason);
            }
            Some(_) => {}
            None => break,
        }
        if Instant::now() + interval >= deadline {
            break;
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_millis(100));
    }
    let limit = humantime::format_duration(node.settings().ready_timeout);
    Err(format!("not ready within {limit}: {}", last.as_deref().unwrap_or("ready() never returned")))
}
