//! Drives restarts of a running graph in a loop, for a profiler: component
//! 0 of a layered DAG fails, it and its dependents restart, again.
//! Instructions per restart are steady where wall time on a shared host is
//! not, so a change's cost can be read from two runs:
//!
//! valgrind --tool=callgrind target/profiling/restart-profile 1000 200
//!
//! Read the total (`I refs`) of a run with 0 restarts and one with N; the
//! difference over N is one restart. Its members: `closure_of(graph, 0)`.
//! Run natively, it prints the median restart's wall time.

use std::sync::Arc;
use std::time::Instant;

use orderly::ShutdownReason;
use orderly_benches::{closure_of, graph, restarting_runtime, OnRestarted, Shape};
use orderly_testing::{TaskEnding, TaskSwitch};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let restarts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let deps = graph(Shape::Layered, n);
    let (members, _, _) = closure_of(&deps, 0);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    rt.block_on(async {
        let switch = TaskSwitch::new();
        let restarted = Arc::new(OnRestarted::default());
        let runtime = restarting_runtime(&deps, &switch, restarted.clone());
        runtime.start().await.expect("start");
        let mut took = Vec::with_capacity(restarts);
        for _ in 0..restarts {
            let began = Instant::now();
            switch.flip(TaskEnding::Fail("crash".into()));
            restarted.0.notified().await;
            took.push(began.elapsed());
        }
        took.sort();
        if let Some(median) = took.get(took.len() / 2) {
            println!("median restart {median:?}");
        }
        let report = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
        assert!(report.is_clean(), "{report:?}");
    });
    println!("{restarts} restarts of {} members in a graph of {n}", members.len());
}
