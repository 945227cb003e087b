//! Graph shapes and baselines shared by the benches.
//!
//! Every graph lists, for each node, the nodes it depends on; dependencies
//! always have lower indices, so index order is a valid start order.

pub mod keep_alive;
pub mod process;

use std::future::Future;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use orderly::{BoxError, Component, Dependency, Runtime, StartContext, StopContext};

/// The shape of a benchmark graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// No edges: everything independent.
    Wide,
    /// Ten layers; each node depends on up to three random nodes of the layer above.
    Layered,
    /// Node `i` depends on node `i - 1`.
    Chain,
}

impl Shape {
    /// All shapes.
    pub const ALL: [Shape; 3] = [Shape::Wide, Shape::Layered, Shape::Chain];

    /// The name used in benchmark ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Wide => "wide",
            Shape::Layered => "layered",
            Shape::Chain => "chain",
        }
    }
}

/// The dependencies of each of `n` nodes, for a shape. Deterministic.
pub fn graph(shape: Shape, n: usize) -> Vec<Vec<usize>> {
    match shape {
        Shape::Wide => vec![Vec::new(); n],
        Shape::Chain => (0..n).map(|i| if i == 0 { Vec::new() } else { vec![i - 1] }).collect(),
        Shape::Layered => {
            let mut rng = fastrand::Rng::with_seed(42);
            let width = n.div_ceil(10).max(1);
            (0..n)
                .map(|i| {
                    let layer = i / width;
                    if layer == 0 {
                        return Vec::new();
                    }
                    let above = (layer - 1) * width..layer * width;
                    let mut deps: Vec<usize> = (0..3).map(|_| rng.usize(above.clone())).collect();
                    deps.sort_unstable();
                    deps.dedup();
                    deps
                })
                .collect()
        }
    }
}

/// The transpose of `deps`.
pub fn dependents(deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); deps.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            out[d].push(i);
        }
    }
    out
}

/// The name of node `i`.
pub fn name(i: usize) -> String {
    format!("c{i:05}")
}

/// The hand-written floor: the DAG driven by `FuturesUnordered`, a node
/// run once all of `waits_for[node]` completed. No events, no phases, no
/// timeouts, no panic isolation.
pub async fn floor_walk<F, Fut>(waits_for: &[Vec<usize>], releases: &[Vec<usize>], mut run: F)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut remaining: Vec<usize> = waits_for.iter().map(Vec::len).collect();
    let mut running = FuturesUnordered::new();
    for (i, _) in remaining.iter().enumerate().filter(|(_, r)| **r == 0) {
        running.push(tagged(run(i), i));
    }
    while let Some(done) = running.next().await {
        for &next in &releases[done] {
            remaining[next] -= 1;
            if remaining[next] == 0 {
                running.push(tagged(run(next), next));
            }
        }
    }
}

/// The floor of a start plus stop: the graph walked in dependency order
/// (each start doing `start_work`), then in reverse.
pub async fn floor_start_stop(deps: &[Vec<usize>], rdeps: &[Vec<usize>], start_work: Option<Duration>) {
    floor_walk(deps, rdeps, |_| work(start_work)).await;
    floor_walk(rdeps, deps, |_| async {}).await;
}

/// The floor of a restart: the failed task joined, then the sub-graph
/// (`closure_of`'s) stopped in reverse order and started again by hand.
pub async fn floor_restart(sub: &[Vec<usize>], sub_rdeps: &[Vec<usize>]) {
    let failed: tokio::task::JoinHandle<Result<(), String>> = tokio::spawn(async { Err("crash".into()) });
    let _ = failed.await;
    floor_walk(sub_rdeps, sub, |_| async {}).await;
    floor_walk(sub, sub_rdeps, |_| async {}).await;
}

/// Starts `runtime` and shuts it down, which must go cleanly.
pub async fn orderly_start_stop(runtime: &Runtime) {
    runtime.start().await.unwrap_or_else(|e| panic!("start failed: {e:?}"));
    let report = runtime.shutdown(orderly::ShutdownReason::Signal("SIGTERM")).await;
    assert!(report.is_clean(), "{report:?}");
}

/// The middle of `samples` (zero for none).
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Runs `fut`, then yields `node`: one future type for every push.
async fn tagged<Fut: Future<Output = ()>>(fut: Fut, node: usize) -> usize {
    fut.await;
    node
}

/// Simulated start work: nothing, or an async sleep.
pub async fn work(duration: Option<Duration>) {
    if let Some(d) = duration {
        tokio::time::sleep(d).await;
    }
}

/// A component for benches: starts with `work`, joins no stop phase.
pub struct Noop {
    name: String,
    deps: Vec<String>,
    work: Option<Duration>,
}

#[orderly::component]
impl Component for Noop {
    fn name(&self) -> &str {
        &self.name
    }
    fn dependencies(&self) -> Vec<Dependency> {
        self.deps.iter().map(Dependency::named).collect()
    }
    fn restartable(&self) -> bool {
        true // stateless: starting again is harmless (the restart bench does)
    }
    async fn start(&self, _: &StartContext) -> Result<(), BoxError> {
        work(self.work).await;
        Ok(())
    }
}

/// A component for benches that joins all five stop phases with empty hooks.
pub struct FivePhase(Noop);

#[orderly::component]
impl Component for FivePhase {
    fn name(&self) -> &str {
        &self.0.name
    }
    fn dependencies(&self) -> Vec<Dependency> {
        self.0.dependencies()
    }
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        self.0.start(ctx).await
    }
    async fn stop_accepting(&self, _: &StopContext) -> Result<(), BoxError> {
        Ok(())
    }
    async fn drain(&self, _: &StopContext) -> Result<(), BoxError> {
        Ok(())
    }
    async fn stop_workers(&self, _: &StopContext) -> Result<(), BoxError> {
        Ok(())
    }
    async fn flush(&self, _: &StopContext) -> Result<(), BoxError> {
        Ok(())
    }
    async fn close(&self, _: &StopContext) -> Result<(), BoxError> {
        Ok(())
    }
}

/// An orderly runtime over `deps` (events recorded to the timeline, the
/// metrics and a discarding logger, as in production minus the I/O).
pub fn orderly_runtime(deps: &[Vec<usize>], start_work: Option<Duration>, five_phases: bool) -> Runtime {
    deps.iter()
        .enumerate()
        .fold(Runtime::builder(), |builder, (i, ds)| {
            let noop = Noop { name: name(i), deps: ds.iter().map(|&d| name(d)).collect(), work: start_work };
            if five_phases {
                builder.component(FivePhase(noop))
            } else {
                builder.component(noop)
            }
        })
        .build()
        .unwrap_or_else(|e| panic!("bench graph is invalid: {e}"))
}

/// [`orderly_runtime`] with no-op components, except that component 0
/// restarts (`transient`, no backoff, no limit) each time `switch` flips;
/// `sink` sees every event.
pub fn restarting_runtime(
    deps: &[Vec<usize>],
    switch: &orderly_testing::TaskSwitch,
    sink: std::sync::Arc<dyn orderly::events::EventSink>,
) -> Runtime {
    use orderly_testing::Probe;
    let first_deps: Vec<String> = deps[0].iter().map(|&d| name(d)).collect();
    let first_deps: Vec<&str> = first_deps.iter().map(String::as_str).collect();
    let first =
        Probe::new(&name(0)).depends_on(&first_deps).restarts(orderly::Restart::Transient).background_task(switch);
    let mut settings = orderly::settings::RuntimeSettings::default();
    // No deliberate waits and no limits: the bench measures the machinery,
    // not the policy, over thousands of restarts (the app-wide intensity
    // would otherwise end the app after 20).
    settings.supervision.coalesce_window = Duration::ZERO;
    settings.supervision.max_restarts = u32::MAX;
    settings.components.insert(
        name(0),
        orderly::settings::ComponentOverrides {
            max_restarts: Some(u32::MAX),
            restart_backoff: Some(Duration::ZERO),
            restart_backoff_max: Some(Duration::ZERO),
            ..Default::default()
        },
    );
    deps.iter()
        .enumerate()
        .skip(1)
        .fold(Runtime::builder().component(first), |builder, (i, ds)| {
            builder.component(Noop { name: name(i), deps: ds.iter().map(|&d| name(d)).collect(), work: None })
        })
        .settings(settings)
        .event_sink(sink)
        .build()
        .unwrap_or_else(|e| panic!("bench graph is invalid: {e}"))
}

/// An event sink that signals each `restarted` event: what a restart's
/// latency is measured to.
#[derive(Default)]
pub struct OnRestarted(pub tokio::sync::Notify);

impl orderly::events::EventSink for OnRestarted {
    fn on_event(&self, e: &orderly::events::LifecycleEvent) {
        if e.event == orderly::events::EventKind::Restarted {
            self.0.notify_one();
        }
    }
}

/// Node `i` and everything that depends on it, directly or not, as a graph
/// of its own: (the members' old indices, their dependencies, their dependents).
pub fn closure_of(deps: &[Vec<usize>], i: usize) -> (Vec<usize>, Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let rdeps = dependents(deps);
    let mut member = vec![false; deps.len()];
    let mut todo = vec![i];
    while let Some(j) = todo.pop() {
        if !std::mem::replace(&mut member[j], true) {
            todo.extend(&rdeps[j]);
        }
    }
    let members: Vec<usize> = (0..deps.len()).filter(|&j| member[j]).collect();
    let index = |j: usize| members.iter().position(|&m| m == j);
    let sub: Vec<Vec<usize>> = members.iter().map(|&j| deps[j].iter().filter_map(|&d| index(d)).collect()).collect();
    let sub_rdeps = dependents(&sub);
    (members, sub, sub_rdeps)
}
