//! Drives start plus stop of a layered DAG in a loop, for a profiler:
//!
//! valgrind --tool=callgrind --toggle-collect='*Measured*' \
//!     target/profiling/lifecycle-profile 1000 10 [orderly|five|floor]
//!
//! `--toggle-collect` counts only what the bench times: building and
//! dropping the runtime are left out, as criterion's `iter_batched` does.
//! `floor` runs the hand-written floor of the bench instead, so the ratio of
//! two runs' instruction counts is steady where wall time is not. Run
//! natively, it prints the median round's wall time.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use orderly::{Runtime, ShutdownReason};
use orderly_benches::{dependents, floor_walk, graph, orderly_runtime, work, Shape};

/// A future whose polls callgrind can name (`--toggle-collect`): an async
/// block's poll is inlined into its caller.
struct Measured<F>(Pin<Box<F>>);

impl<F: Future> Future for Measured<F> {
    type Output = F::Output;

    #[inline(never)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.0.as_mut().poll(cx)
    }
}

async fn orderly_start_stop(runtime: &Runtime) {
    runtime.start().await.expect("start");
    runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
}

async fn floor_start_stop(deps: &[Vec<usize>], rdeps: &[Vec<usize>]) {
    floor_walk(deps, rdeps, |_| work(None)).await;
    floor_walk(rdeps, deps, |_| async {}).await;
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let mode = args.next().unwrap_or_else(|| "orderly".into());
    let deps = graph(Shape::Layered, n);
    let rdeps = dependents(&deps);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    let mut took = rt.block_on(async {
        let mut took = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            if mode == "floor" {
                let began = Instant::now();
                Measured(Box::pin(floor_start_stop(&deps, &rdeps))).await;
                took.push(began.elapsed());
            } else {
                let runtime = orderly_runtime(&deps, None, mode == "five");
                let began = Instant::now();
                Measured(Box::pin(orderly_start_stop(&runtime))).await;
                took.push(began.elapsed());
            }
        }
        took
    });
    took.sort();
    if let Some(median) = took.get(took.len() / 2) {
        println!("{mode}: median {median:?} over {rounds} rounds of {n}");
    }
}
