//! Lifecycle benches: graph validation, and start plus five-phase stop,
//! against a hand-written floor and tokio-graceful-shutdown in the same run.
//! Results and the command: benches/RESULTS.md.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use orderly::ShutdownReason;
use orderly_benches::{
    dependents, floor_start_stop, floor_walk, graph, name, orderly_runtime, work, OnRestarted, Shape,
};
use tokio::sync::Notify;
use tokio_graceful_shutdown::{IntoSubsystem, SubsystemBuilder, SubsystemHandle, Toplevel};

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

fn batch(n: usize) -> BatchSize {
    if n >= 1_000 {
        BatchSize::PerIteration
    } else {
        BatchSize::SmallInput
    }
}

/// The floor for components that join all five phases: the start walk,
/// then the reversed graph walked once per phase.
async fn floor_start_five_phases(deps: &[Vec<usize>], rdeps: &[Vec<usize>]) {
    floor_walk(deps, rdeps, |_| work(None)).await;
    for _ in 0..5 {
        floor_walk(rdeps, deps, |_| async {}).await;
    }
}

/// Starts and stops `runtime`, returned so that criterion drops it outside
/// the timed part.
async fn orderly_start_stop(runtime: orderly::Runtime) -> orderly::Runtime {
    orderly_benches::orderly_start_stop(&runtime).await;
    runtime
}

/// tokio-graceful-shutdown has no dependencies, only a tree of subsystems:
/// each node is started by its first dependency (a root if it has none).
struct TgsTree {
    n: usize,
    roots: Vec<usize>,
    children: Arc<Vec<Vec<usize>>>,
}

impl TgsTree {
    fn new(deps: &[Vec<usize>]) -> Self {
        let mut children = vec![Vec::new(); deps.len()];
        let mut roots = Vec::new();
        for (i, ds) in deps.iter().enumerate() {
            match ds.first() {
                Some(&parent) => children[parent].push(i),
                None => roots.push(i),
            }
        }
        Self { n: deps.len(), roots, children: Arc::new(children) }
    }
}

#[derive(Clone)]
struct TgsNode {
    i: usize,
    n: usize,
    children: Arc<Vec<Vec<usize>>>,
    started: Arc<AtomicUsize>,
    all_started: Arc<Notify>,
}

impl IntoSubsystem<Box<dyn std::error::Error + Send + Sync>> for TgsNode {
    async fn run(self, s: &mut SubsystemHandle) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        for &child in &self.children[self.i] {
            s.start(SubsystemBuilder::new(name(child), TgsNode { i: child, ..self.clone() }.into_subsystem()));
        }
        if self.started.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            self.all_started.notify_one();
        }
        s.on_shutdown_requested().await;
        Ok(())
    }
}

/// One tokio-graceful-shutdown run: (time until every subsystem runs, time to stop them all).
async fn tgs_start_stop(tree: &TgsTree) -> (Duration, Duration) {
    let began = Instant::now();
    let started_at = Arc::new(Mutex::new(Duration::ZERO));
    let node = TgsNode {
        i: 0,
        n: tree.n,
        children: tree.children.clone(),
        started: Arc::new(AtomicUsize::new(0)),
        all_started: Arc::new(Notify::new()),
    };
    let roots = tree.roots.clone();
    let record = started_at.clone();
    Toplevel::new(async move |s: &mut SubsystemHandle| {
        for &root in &roots {
            s.start(SubsystemBuilder::new(name(root), TgsNode { i: root, ..node.clone() }.into_subsystem()));
        }
        node.all_started.notified().await;
        *record.lock().expect("lock") = began.elapsed();
        s.request_shutdown();
    })
    .handle_shutdown_requests(Duration::from_secs(600))
    .await
    .expect("tokio-graceful-shutdown run");
    let start = *started_at.lock().expect("lock");
    (start, began.elapsed() - start)
}

fn validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for shape in Shape::ALL {
        for n in SIZES {
            let deps = graph(shape, n);
            group.bench_with_input(BenchmarkId::new(format!("orderly/{}", shape.as_str()), n), &deps, |b, deps| {
                // Building includes resolving names, checking cycles and registering metrics.
                b.iter_batched(|| deps.clone(), |deps| orderly_runtime(&deps, None, false), batch(n));
            });
        }
    }
    group.finish();
}

fn start_stop(c: &mut Criterion) {
    let rt = tokio_runtime();
    let mut group = c.benchmark_group("start_stop");
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for shape in Shape::ALL {
        for n in SIZES {
            let deps = graph(shape, n);
            let rdeps = dependents(&deps);
            let id = |f: &str| BenchmarkId::new(format!("{f}/{}", shape.as_str()), n);
            group.bench_function(id("floor"), |b| b.to_async(&rt).iter(|| floor_start_stop(&deps, &rdeps, None)));
            group.bench_function(id("orderly"), |b| {
                b.to_async(&rt).iter_batched(|| orderly_runtime(&deps, None, false), orderly_start_stop, batch(n))
            });
            group.bench_function(id("floor_5_phases"), |b| {
                b.to_async(&rt).iter(|| floor_start_five_phases(&deps, &rdeps))
            });
            group.bench_function(id("orderly_5_phases"), |b| {
                b.to_async(&rt).iter_batched(|| orderly_runtime(&deps, None, true), orderly_start_stop, batch(n))
            });
            // Nested subsystems make a 10,000-deep chain take seconds per run (quadratic).
            if !(shape == Shape::Chain && n == 10_000) {
                let tree = TgsTree::new(&deps);
                group.bench_function(id("tokio_graceful_shutdown"), |b| b.to_async(&rt).iter(|| tgs_start_stop(&tree)));
            }
        }
    }
    group.finish();
}

/// Start and stop timed separately on a layered DAG of 1,000 components.
fn split(c: &mut Criterion) {
    let rt = tokio_runtime();
    let deps = graph(Shape::Layered, 1_000);
    let rdeps = dependents(&deps);
    let tree = TgsTree::new(&deps);
    for (step, is_start) in [("start", true), ("stop", false)] {
        let mut group = c.benchmark_group(format!("layered_1000_{step}"));
        group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
        group.bench_function("floor", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (deps, rdeps) = (&deps, &rdeps);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let t = Instant::now();
                        floor_walk(deps, rdeps, |_| work(None)).await;
                        let started = t.elapsed();
                        let t = Instant::now();
                        floor_walk(rdeps, deps, |_| async {}).await;
                        total += if is_start { started } else { t.elapsed() };
                    }
                    total
                }
            })
        });
        for (label, five) in [("orderly", false), ("orderly_5_phases", true)] {
            group.bench_function(label, |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    let deps = &deps;
                    async move {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let runtime = orderly_runtime(deps, None, five);
                            let t = Instant::now();
                            runtime.start().await.unwrap_or_else(|e| panic!("{e:?}"));
                            let started = t.elapsed();
                            let t = Instant::now();
                            runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
                            total += if is_start { started } else { t.elapsed() };
                        }
                        total
                    }
                })
            });
        }
        group.bench_function("tokio_graceful_shutdown", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let tree = &tree;
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (start, stop) = tgs_start_stop(tree).await;
                        total += if is_start { start } else { stop };
                    }
                    total
                }
            })
        });
        group.finish();
    }
}

/// 100 components in ten layers, each taking 10 ms to start: concurrency
/// along the graph is what matters, and serial start takes ten times as long.
fn slow_starts(c: &mut Criterion) {
    let rt = tokio_runtime();
    let deps = graph(Shape::Layered, 100);
    let rdeps = dependents(&deps);
    let ten_ms = Some(Duration::from_millis(10));
    let mut group = c.benchmark_group("layered_100_10ms_starts");
    group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    group.bench_function("floor", |b| b.to_async(&rt).iter(|| floor_start_stop(&deps, &rdeps, ten_ms)));
    group.bench_function("orderly", |b| {
        b.to_async(&rt).iter_batched(
            || orderly_runtime(&deps, ten_ms, false),
            orderly_start_stop,
            BatchSize::SmallInput,
        )
    });
    group.sample_size(10).measurement_time(Duration::from_secs(12));
    group.bench_function("serial", |b| {
        b.to_async(&rt).iter(|| async {
            for _ in 0..deps.len() {
                work(ten_ms).await;
            }
        })
    });
    group.finish();
}

/// From a component's failure to it and its dependents being ready again
/// (no backoff), against the floor: the failed task joined, then the same
/// sub-graph stopped in reverse order and started again by hand.
fn restart(c: &mut Criterion) {
    let rt = tokio_runtime();
    let mut group = c.benchmark_group("restart");
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for (shape, n) in [(Shape::Chain, 10), (Shape::Chain, 100), (Shape::Layered, 1_000)] {
        let deps = graph(shape, n);
        let (members, sub, sub_rdeps) = orderly_benches::closure_of(&deps, 0);
        let id =
            |f: &str| BenchmarkId::new(format!("{f}/{}", shape.as_str()), format!("{n} ({} restart)", members.len()));
        group
            .bench_function(id("floor"), |b| b.to_async(&rt).iter(|| orderly_benches::floor_restart(&sub, &sub_rdeps)));
        let switch = orderly_testing::TaskSwitch::new();
        let restarted = Arc::new(OnRestarted::default());
        let runtime = orderly_benches::restarting_runtime(&deps, &switch, restarted.clone());
        rt.block_on(runtime.start()).unwrap_or_else(|e| panic!("start failed: {e:?}"));
        group.bench_function(id("orderly"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (switch, restarted) = (switch.clone(), restarted.clone());
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let began = Instant::now();
                        switch.flip(orderly_testing::TaskEnding::Fail("crash".into()));
                        restarted.0.notified().await;
                        total += began.elapsed();
                    }
                    total
                }
            })
        });
        let report = rt.block_on(runtime.shutdown(ShutdownReason::Signal("SIGTERM")));
        assert!(report.is_clean());
    }
    group.finish();
}

criterion_group!(benches, validate, start_stop, split, slow_starts, restart);
criterion_main!(benches);
