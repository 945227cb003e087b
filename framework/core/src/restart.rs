//! Restarting a failed component along the dependency graph: OTP's
//! `rest_for_one`, but over the real graph rather than start order.
//!
//! A restart of component `c`, after its background work failed (or ended,
//! for a `permanent` one):
//!
//! 0. At the failure, `c`'s dependents are marked as going down with it:
//!    their own failures are `c`'s from then on. The restart waits for the
//!    coalescing window; if a dependency of `c` failed within it, `c` went
//!    down with that one, and only the most upstream failure restarts.
//! 1. Restarts run one at a time, and never once a shutdown was requested.
//!    A failure from before `c`'s last restart is stale and ignored.
//! 2. The restart counts against `c`'s limit: more than `max_restarts`
//!    within `period`, and the app gives up on it: `restart_limit_exceeded`,
//!    then the normal five-phase shutdown, and exit code 5.
//! 3. `c` and every component that depends on it, directly or not, report
//!    not ready (`restarting: …`); liveness is untouched.
//! 4. They stop through the five phases, dependents first, each hook under
//!    its phase budget and cap, as in a shutdown (without the app-wide
//!    phase events: the app is not shutting down).
//! 5. The backoff: exponential with full jitter, from the framework's retry policy.
//! 6. They start along the graph, `c` first, each waiting for its
//!    dependencies to be ready, with their own start timeouts and retries.
//!    All ready: `restarted`. A start that fails is another failure of `c`:
//!    back to 2, stopping what this attempt started.
//!
//! A shutdown requested at any point ends the restart where it is: nothing
//! new starts, the backoff is cut short, and the shutdown (which waits for
//! the restart's turn) stops exactly the components that are running.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::component::Component;
use crate::event::EventKind;
use crate::nodeset::NodeSet;
use crate::shutdown::stop_phases;
use crate::start::{start_all, StartEnd};
use crate::state::Shared;
use crate::supervised::{Condition, Supervised};
use crate::trigger::ShutdownReason;

/// What a failure while the app runs leads to, once its window has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Consequence {
    /// The component restarts along the graph.
    Restart,
    /// The app shuts down (`on_failure = "shutdown"`).
    Shutdown,
}

/// Component `i`'s run `run` failed with `cause` while the app runs.
/// Returns at once.
///
/// At once, every dependent of `i` is marked as going down with it: their
/// own failures from now on are `i`'s (no policy runs for them, nothing is
/// counted against them). The consequence waits for the coalescing window
/// (`[supervision] coalesce_window`): a dependency of `i` failing within it
/// marks `i` in turn, and `i`'s failure is then dropped as its. So of
/// several components failing close together, the most upstream one acts,
/// with the others as its members, whichever failure arrived first.
pub(crate) fn request(shared: &Arc<Shared>, i: usize, run: u64, cause: String, consequence: Consequence) {
    let failed_at = Instant::now();
    let closure = shared.mark_going_down(i);
    let shared = shared.clone();
    tokio::spawn(async move {
        let window = shared.supervision.coalesce_window;
        if !window.is_zero() {
            let shutdown = shared.shutdown.clone();
            tokio::select! {
                () = tokio::time::sleep(window) => {}
                _ = shutdown.wait() => {
                    slog::info!(shared.loggers[i], "not restarted: the app is shutting down"; "error" => &cause);
                    return;
                }
            }
        }
        if is_stale(&shared, i, run, &cause) {
            return;
        }
        match consequence {
            Consequence::Shutdown => {
                let component = shared.graph.nodes[i].name.to_string();
                shared.shutdown.trigger(ShutdownReason::ComponentFailed { component, error: cause });
            }
            Consequence::Restart => restart(&shared, i, &closure, run, cause, failed_at).await,
        }
    });
}

/// Whether run `run` of component `i` is no longer current: it was
/// restarted since, or went down with a dependency (logged, with whom).
fn is_stale(shared: &Shared, i: usize, run: u64, cause: &str) -> bool {
    let supervised = &shared.graph.nodes[i].supervised;
    if supervised.generation() == run {
        return false;
    }
    match supervised.down_with() {
        Some(k) => {
            slog::info!(shared.loggers[i], "its failure is `{}`'s: it goes down with it", shared.graph.nodes[k].name; "error" => cause)
        }
        None => slog::debug!(shared.loggers[i], "a stale failure, from before the last restart"; "error" => cause),
    }
    true
}

/// Restarts component `i`, whose `closure` is it and its dependents.
async fn restart(
    shared: &Arc<Shared>,
    i: usize,
    closure: &NodeSet,
    generation: u64,
    mut cause: String,
    failed_at: Instant,
) {
    let node = &shared.graph.nodes[i];
    let _turn = shared.restart_turn.lock().await;
    if shared.shutdown.is_requested() {
        slog::info!(shared.loggers[i], "not restarted: the app is shutting down"; "error" => &cause);
        return;
    }
    if is_stale(shared, i, generation, &cause) {
        return;
    }
    // Fixed from here: the component and its dependents that run now, and
    // those a dependent's restart left stopped when it yielded to this one.
    let Some(members) = shared.take_members(closure) else { return };
    let names = member_names(shared, &members, i);
    mark_restarting(shared, &members, i, &format!("restarting: {cause}"));

    // The limits count a failure at the time it happened, not when its
    // restart got its turn.
    let mut failed = failed_at;
    loop {
        let limits = node.settings().restarts;
        let counted = count_restart(&node.supervised, &limits, &cause, failed).map_err(|history| {
            format!(
                "more than {} restart(s) within {}: {}",
                limits.max_restarts,
                humantime::format_duration(limits.period),
                history.join("; ")
            )
        });
        let count = match counted
            .and_then(|count| count_app_restart(shared, &node.name, &cause, failed).map(|()| count))
        {
            Ok(count) => count,
            Err(error) => {
                shared.events.emit(EventKind::RestartLimitExceeded.build().component(&node.name).error(error.clone()));
                shared
                    .shutdown
                    .trigger(ShutdownReason::RestartLimitExceeded { component: node.name.to_string(), error });
                return;
            }
        };
        let backoff = limits.backoff(count);
        shared.events.emit(EventKind::Restarting.build().component(&node.name).error(cause.clone()).detail(format!(
            "restart {count} of {} within {}; stopping {names}; backoff {}",
            limits.max_restarts,
            humantime::format_duration(limits.period),
            humantime::format_duration(round_ms(backoff))
        )));
        match cycle(shared, &members, &members, backoff, None).await {
            Some(StartEnd::Complete) => break,
            None | Some(StartEnd::Interrupted(_)) => return,
            // A dependency failed while this restart ran: the start failed
            // for want of it. Not counted; its restart takes these members
            // along, those that run and those left stopped.
            Some(StartEnd::Failed(failure)) if node.supervised.down_with().is_some() => {
                slog::info!(shared.loggers[i], "restart yields to a failed dependency's"; "error" => failure.to_string());
                shared.park(&members);
                return;
            }
            // A failed start is another failure of the component: count it and try again.
            Some(StartEnd::Failed(failure)) => {
                cause = format!("restart failed: {failure}");
                failed = Instant::now();
            }
        }
    }

    clear_conditions(shared, &members);
    shared.events.emit(EventKind::Restarted.build().component(&node.name).elapsed(failed_at.elapsed()).detail(names));
}

/// Restarts component `i` along the graph because someone asked (an
/// operator, a test), not because it failed: nothing is counted against
/// its limits. Waits for the restart turn; the same events as a restart
/// after a failure (`restarting`, then `restarted` naming the members).
/// A start that fails then is a failure of the component's, and the app
/// shuts down naming it, as when a reload's config cannot start again.
pub(crate) async fn restart_on_request(shared: &Arc<Shared>, i: usize, why: &str) -> Result<String, String> {
    let node = &shared.graph.nodes[i];
    let _turn = shared.restart_turn.lock().await;
    if shared.shutdown.is_requested() {
        return Err("the app is shutting down".into());
    }
    if !node.enabled() {
        return Err(format!("`{}` is disabled: it does not run", node.name));
    }
    let members = shared.running_with_dependents(i).ok_or("the app is not running")?;
    let stuck: Vec<&str> = members
        .iter()
        .filter(|&j| !shared.graph.nodes[j].component().restartable())
        .map(|j| &*shared.graph.nodes[j].name)
        .collect();
    if !stuck.is_empty() {
        return Err(format!("{} cannot start twice (`restartable()` is false)", stuck.join(", ")));
    }
    let began = Instant::now();
    let names = member_names(shared, &members, i);
    mark_restarting(shared, &members, i, &format!("restarting: {why}"));
    shared.events.emit(
        EventKind::Restarting
            .build()
            .component(&node.name)
            .error(why.to_string())
            .detail(format!("on request; stopping {names}")),
    );
    let end = cycle(shared, &members, &members, Duration::ZERO, None).await;
    clear_conditions(shared, &members);
    match end {
        Some(StartEnd::Complete) => {
            shared.events.emit(
                EventKind::Restarted.build().component(&node.name).elapsed(began.elapsed()).detail(names.clone()),
            );
            Ok(names)
        }
        Some(StartEnd::Failed(failure)) => {
            let error = format!("it failed to start again after a restart on request: {failure}");
            shared
                .shutdown
                .trigger(ShutdownReason::ComponentFailed { component: node.name.to_string(), error: error.clone() });
            Err(error)
        }
        Some(StartEnd::Interrupted(_)) | None => Err("a shutdown began during the restart".into()),
    }
}

/// Marks the members as restarting: not ready, with why.
pub(crate) fn mark_restarting(shared: &Shared, members: &NodeSet, i: usize, why: &str) {
    // One text for every dependent, shared: a restart may take hundreds along.
    let with: Arc<str> = format!("restarting with `{}`", shared.graph.nodes[i].name).into();
    let own: Arc<str> = why.into();
    for j in members.iter() {
        let why = if j == i { own.clone() } else { with.clone() };
        *shared.graph.nodes[j].supervised.condition.lock() = Some(Condition::Restarting(why));
    }
}

/// The members are well again, and go down with no one.
pub(crate) fn clear_conditions(shared: &Shared, members: &NodeSet) {
    for j in members.iter() {
        let supervised = &shared.graph.nodes[j].supervised;
        *supervised.condition.lock() = None;
        supervised.clear_down_with();
    }
}

/// One turn of a restart: those of `stop` that run stop through the five
/// phases (dependents first), what they provided is withdrawn, `swap` puts
/// a new component value in place of one of them (a reload), the backoff
/// passes, and every one of `start` starts along the graph (a restart
/// starts what it stopped; a reload that enables or disables components
/// starts another set). `None` if a shutdown came during the backoff.
pub(crate) async fn cycle(
    shared: &Arc<Shared>,
    stop: &NodeSet,
    start: &NodeSet,
    backoff: Duration,
    swap: Option<(usize, Arc<dyn Component>)>,
) -> Option<StartEnd> {
    let running = shared.running_among(stop);
    // A new run of each: ends of their current background tasks (which the
    // stop provokes) are stale from now on, not failures to restart for.
    for j in running.iter() {
        shared.graph.nodes[j].supervised.generation.fetch_add(1, Ordering::AcqRel);
    }
    // Those that start again as the same value may keep for their next run
    // what a stop for good would let go (a listening socket).
    let swapped = swap.as_ref().map(|(i, _)| *i);
    for j in running.iter().filter(|&j| start.contains(j) && Some(j) != swapped) {
        shared.graph.nodes[j].supervised.starts_again.store(true, Ordering::Release);
    }
    stop_phases(shared, &running, None).await;
    for j in running.iter() {
        shared.graph.nodes[j].supervised.starts_again.store(false, Ordering::Release);
    }
    // A shutdown came: it finishes this stop itself (the members still run,
    // and each has a record of the phases already begun for it).
    if shared.shutdown.is_requested() {
        return None;
    }
    // A restarted component is a fresh process: its old run's tasks end
    // before the new run begins.
    shared.end_runs(&running, None).await;
    shared.mark_stopped(&running);
    shared.resources.withdraw(&running);
    if let Some((i, component)) = swap {
        shared.graph.nodes[i].replace(component);
    }
    // A zero backoff must not wait for the timer's next tick (1 ms).
    if !backoff.is_zero() {
        let shutdown = shared.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait() => return None,
        }
    }
    let (started, end) = start_all(shared, start).await;
    shared.mark_started(&started);
    Some(end)
}

/// Records a restart within the period; `Err` with the history when it is one too many.
fn count_restart(
    supervised: &Supervised,
    limits: &crate::settings::RestartSettings,
    cause: &str,
    now: Instant,
) -> Result<u32, Vec<String>> {
    let mut history = supervised.history.lock();
    while history.front().is_some_and(|(at, _)| now.duration_since(*at) > limits.period) {
        history.pop_front();
    }
    if history.len() >= limits.max_restarts as usize {
        let mut lines: Vec<String> = history
            .iter()
            .map(|(at, why)| {
                format!("{} ago: {why}", humantime::format_duration(round_ms(now.saturating_duration_since(*at))))
            })
            .collect();
        lines.push(format!("now: {cause}"));
        return Err(lines);
    }
    history.push_back((now, cause.to_string()));
    Ok(u32::try_from(history.len()).unwrap_or(u32::MAX))
}

/// Records a restart of `component` against the app-wide intensity
/// (`[supervision]`); `Err` naming every component that restarted within
/// the period, with its count and the causes, when it is one too many.
fn count_app_restart(shared: &Shared, component: &Arc<str>, cause: &str, now: Instant) -> Result<(), String> {
    let limits = shared.supervision;
    let mut history = shared.app_restarts.lock();
    while history.front().is_some_and(|(at, _, _)| now.saturating_duration_since(*at) > limits.restart_period) {
        history.pop_front();
    }
    if history.len() < limits.max_restarts as usize {
        history.push_back((now, component.clone(), cause.to_string()));
        return Ok(());
    }
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (_, name, _) in history.iter() {
        *counts.entry(name).or_default() += 1;
    }
    *counts.entry(component).or_default() += 1;
    let who: Vec<String> = counts.iter().map(|(name, n)| format!("{name} ({n})")).collect();
    let causes: Vec<String> = history.iter().map(|(_, name, why)| format!("{name}: {why}")).collect();
    Err(format!(
        "more than {} restarts across the app within {}: {}; {}; now {component}: {cause}",
        limits.max_restarts,
        humantime::format_duration(limits.restart_period),
        who.join(", "),
        causes.join("; ")
    ))
}

/// "`c` and its dependents a, b" for logs.
pub(crate) fn member_names(shared: &Shared, members: &NodeSet, i: usize) -> String {
    let dependents: Vec<&str> = members.iter().filter(|&j| j != i).map(|j| &*shared.graph.nodes[j].name).collect();
    match dependents.is_empty() {
        true => format!("`{}`", shared.graph.nodes[i].name),
        false => format!("`{}` and its dependents {}", shared.graph.nodes[i].name, dependents.join(", ")),
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_counts_restarts_within_the_period_only() {
        let supervised = Supervised::default();
        let limits = crate::settings::RestartSettings { max_restarts: 2, ..Default::default() };
        assert_eq!(count_restart(&supervised, &limits, "one", Instant::now()), Ok(1));
        assert_eq!(count_restart(&supervised, &limits, "two", Instant::now()), Ok(2));
        let history = count_restart(&supervised, &limits, "three", Instant::now()).unwrap_err();
        assert_eq!(history.len(), 3, "{history:?}");
        assert!(history[0].ends_with("ago: one") && history[2] == "now: three", "{history:?}");

        let instant = crate::settings::RestartSettings { period: Duration::ZERO, ..limits };
        let fresh = Supervised::default();
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(1));
            assert_eq!(
                count_restart(&fresh, &instant, "again", Instant::now()),
                Ok(1),
                "older restarts leave the window"
            );
        }
    }
}
