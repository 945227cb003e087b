//! Drives restarts of a running graph in a loop, for a profiler: component
//! 0 of a DAG fails, it and its dependents restart, again.
//! Instructions per restart are steady where wall time on a shared host is
//! not, so a change's cost can be read from two runs:
//!
//! valgrind --tool=callgrind target/profiling/restart-profile 1000 200 [orderly|floor] [layered|chain]
//!
//! Read the total (`I refs`) of a run with 0 restarts and one with N; the
//! difference over N is one restart. Its members: `closure_of(graph, 0)`.
//! `floor` runs the bench's hand-written floor instead. Run natively, it
//! prints the median restart's wall time.

use std::sync::Arc;
use std::time::Instant;

use orderly::ShutdownReason;
use orderly_benches::{closure_of, floor_restart, graph, median, restarting_runtime, OnRestarted, Shape};
use orderly_testing::{TaskEnding, TaskSwitch};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let restarts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let floor = args.next().is_some_and(|a| a == "floor");
    let shape = if args.next().is_some_and(|a| a == "chain") { Shape::Chain } else { Shape::Layered };
    let deps = graph(shape, n);
    let (members, sub, sub_rdeps) = closure_of(&deps, 0);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    let took = rt.block_on(async {
        let mut took = Vec::with_capacity(restarts);
        if floor {
            for _ in 0..restarts {
                let began = Instant::now();
                floor_restart(&sub, &sub_rdeps).await;
                took.push(began.elapsed());
            }
            return took;
        }
        let switch = TaskSwitch::new();
        let restarted = Arc::new(OnRestarted::default());
        let runtime = restarting_runtime(&deps, &switch, restarted.clone());
        runtime.start().await.expect("start");
        for _ in 0..restarts {
            let began = Instant::now();
            switch.flip(TaskEnding::Fail("crash".into()));
            restarted.0.notified().await;
            took.push(began.elapsed());
        }
        let report = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
        assert!(report.is_clean(), "{report:?}");
        took
    });
    let median = median(took);
    let what = if floor { "floor" } else { "orderly" };
    println!("{what}: median restart {median:?}; {restarts} restarts of {} members in a graph of {n}", members.len());
}
