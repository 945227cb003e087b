//! Drives start plus stop of a layered DAG in a loop, for a profiler:
//! valgrind --tool=callgrind target/profiling/lifecycle-profile 1000 20

use orderly::ShutdownReason;
use orderly_benches::{graph, orderly_runtime, Shape};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let five = args.next().is_some_and(|a| a == "five");
    let deps = graph(Shape::Layered, n);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    rt.block_on(async {
        for _ in 0..rounds {
            let runtime = orderly_runtime(&deps, None, five);
            runtime.start().await.expect("start");
            runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
        }
    });
}
