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

use orderly_benches::{dependents, floor_start_stop, graph, median, orderly_runtime, orderly_start_stop, Shape};

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

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let mode = args.next().unwrap_or_else(|| "orderly".into());
    let deps = graph(Shape::Layered, n);
    let rdeps = dependents(&deps);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    let took = rt.block_on(async {
        let mut took = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            if mode == "floor" {
                let began = Instant::now();
                Measured(Box::pin(floor_start_stop(&deps, &rdeps, None))).await;
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
    println!("{mode}: median {:?} over {rounds} rounds of {n}", median(took));
}
