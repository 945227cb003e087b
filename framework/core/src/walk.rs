//! Walking the graph concurrently, the one driver behind start and every
//! stop phase.
//!
//! A node becomes runnable once every node it waits for has completed:
//! start waits for dependencies; each stop phase walks the reversed graph
//! and waits for dependents. [`drive`] owns the walk, the in-flight set and
//! the inline-or-spawned split; a [`Pass`] (the start, or one stop phase)
//! says what each node runs, emits its events and decides when to halt.
//!
//! The engine: it knows indices and a `Pass`, never components, events or the
//! state.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::task::JoinHandle;

use crate::hook::{join_result, launch, BoxFuture, Ended, Launched};
use crate::nodeset::NodeSet;

/// What one walk over the graph does at each node.
pub(crate) trait Pass {
    /// What a node's task returns.
    type Output: Send + 'static;
    /// Why the walk ended early.
    type Halt;

    /// Node `i` is runnable: run its task, pass through it, or halt the walk.
    fn begin(&mut self, i: usize) -> Begin<Self::Output, Self::Halt>;

    /// Node `i`'s task was still pending after its first poll and now runs
    /// in its own task (a hook that ends inline is not announced here).
    fn spawned(&mut self, _i: usize) {}

    /// Node `i`'s task ended (`OverLimit`: its limit passed first and it was
    /// aborted). `Err` halts the walk; `Ok` completes the node.
    fn end(&mut self, i: usize, end: Ended<Self::Output>) -> Result<(), Self::Halt>;
}

/// What a pass does with a runnable node.
pub(crate) enum Begin<T, H> {
    /// Run `task`; if it is still running at `limit`, it is aborted.
    Run {
        /// The node's work, as an owned future.
        task: BoxFuture<T>,
        /// When it is abandoned, if ever.
        limit: Option<Instant>,
    },
    /// Nothing to do here: the node completes at once, keeping the order
    /// of those around it.
    PassThrough,
    /// Begin nothing more.
    Halt(H),
}

/// The tasks still running when a walk halted, already told to abort.
pub(crate) struct InFlight<T>(FuturesUnordered<Tracked<T>>);

impl<T> InFlight<T> {
    /// The nodes whose tasks were running.
    pub(crate) fn nodes(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().map(|tracked| tracked.node)
    }

    /// Waits for the next aborted task to end: a task that returned before
    /// its abort took effect reports what it returned.
    pub(crate) async fn next(&mut self) -> Option<(usize, Ended<T>)> {
        self.0.next().await
    }
}

/// Walks the nodes `walk` includes, running each through `pass`, until all
/// completed, the pass halts, or `interrupt` fires. Whatever still runs
/// then is aborted and handed back.
pub(crate) async fn drive<P: Pass>(
    mut walk: Walk<'_>,
    pass: &mut P,
    interrupt: impl Future<Output = P::Halt>,
) -> (Option<P::Halt>, InFlight<P::Output>) {
    let mut interrupt = std::pin::pin!(interrupt);
    let mut runnable = walk.roots();
    let mut in_flight = FuturesUnordered::new();
    let halt = 'walk: loop {
        while let Some(i) = runnable.pop_front() {
            match pass.begin(i) {
                Begin::PassThrough => walk.complete(i, &mut runnable),
                Begin::Halt(halt) => break 'walk Some(halt),
                Begin::Run { task, limit } => match launch(task).await {
                    Launched::Done(ended) => match pass.end(i, ended) {
                        Ok(()) => walk.complete(i, &mut runnable),
                        Err(halt) => break 'walk Some(halt),
                    },
                    Launched::Running(handle) => {
                        pass.spawned(i);
                        in_flight.push(Tracked::new(i, handle, limit));
                    }
                },
            }
        }
        if in_flight.is_empty() {
            break None;
        }
        tokio::select! {
            biased;
            Some((i, end)) = in_flight.next() => match pass.end(i, end) {
                Ok(()) => walk.complete(i, &mut runnable),
                Err(halt) => break Some(halt),
            },
            halt = &mut interrupt => break Some(halt),
        }
    };
    in_flight.iter().for_each(|tracked| tracked.handle.abort());
    (halt, InFlight(in_flight))
}

/// A spawned task raced against its limit (one future type: no box).
struct Tracked<T> {
    node: usize,
    handle: JoinHandle<T>,
    // Boxed because a timer cannot move once polled; only spawned tasks
    // with a limit pay for it.
    limit: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> Tracked<T> {
    fn new(node: usize, handle: JoinHandle<T>, limit: Option<Instant>) -> Self {
        let limit = limit.map(|at| Box::pin(tokio::time::sleep_until(at.into())));
        Self { node, handle, limit }
    }
}

impl<T> Future for Tracked<T> {
    type Output = (usize, Ended<T>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is Unpin (the timer is boxed).
        let this = self.get_mut();
        if let Poll::Ready(result) = Pin::new(&mut this.handle).poll(cx) {
            return Poll::Ready((this.node, join_result(result)));
        }
        let over = this.limit.as_mut().is_some_and(|limit| limit.as_mut().poll(cx).is_ready());
        if !over {
            return Poll::Pending;
        }
        this.handle.abort();
        Poll::Ready((this.node, Ended::OverLimit))
    }
}

/// Counts, per node, how many predecessors are still outstanding.
pub(crate) struct Walk<'g> {
    outstanding: Vec<usize>,
    successors: &'g [Vec<usize>],
    included: &'g NodeSet,
}

impl<'g> Walk<'g> {
    /// `predecessors[i]`: the nodes `i` waits for; `successors` is its transpose.
    /// Only nodes marked in `included` take part; the others are ignored on both sides.
    pub(crate) fn new(predecessors: &[Vec<usize>], successors: &'g [Vec<usize>], included: &'g NodeSet) -> Self {
        let outstanding = predecessors
            .iter()
            .enumerate()
            .map(
                |(i, preds)| {
                    if included.contains(i) {
                        preds.iter().filter(|&&p| included.contains(p)).count()
                    } else {
                        0
                    }
                },
            )
            .collect();
        Self { outstanding, successors, included }
    }

    /// The included nodes with nothing to wait for, in index order.
    ///
    /// Callers launch from the front and append released nodes at the back:
    /// everything runnable now begins before anything it releases, so
    /// independent components begin together rather than one chain first.
    pub(crate) fn roots(&self) -> VecDeque<usize> {
        (0..self.outstanding.len()).filter(|&i| self.included.contains(i) && self.outstanding[i] == 0).collect()
    }

    /// Marks `node` complete and appends the nodes that became runnable to `runnable`.
    pub(crate) fn complete(&mut self, node: usize, runnable: &mut impl Extend<usize>) {
        for &next in &self.successors[node] {
            if self.included.contains(next) {
                self.outstanding[next] -= 1;
                if self.outstanding[next] == 0 {
                    runnable.extend([next]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_a_node_when_its_last_predecessor_completes() {
        // 2 waits for 0 and 1.
        let preds = vec![vec![], vec![], vec![0, 1]];
        let succs = vec![vec![2], vec![2], vec![]];
        let all = NodeSet::full(3);
        let mut walk = Walk::new(&preds, &succs, &all);
        assert_eq!(walk.roots(), vec![0, 1]);
        let mut runnable = Vec::new();
        walk.complete(0, &mut runnable);
        assert!(runnable.is_empty());
        walk.complete(1, &mut runnable);
        assert_eq!(runnable, vec![2]);
    }

    /// Records what the driver asks; node `halt_at` halts, nodes in `slow`
    /// wait forever, node `pass_through` is passed through.
    struct Recorder {
        begun: Vec<usize>,
        spawned: Vec<usize>,
        ended: Vec<(usize, &'static str)>,
        slow: Vec<usize>,
        limit: Option<Instant>,
        halt_at: Option<usize>,
        pass_through: Option<usize>,
    }

    impl Recorder {
        fn new() -> Self {
            Self {
                begun: vec![],
                spawned: vec![],
                ended: vec![],
                slow: vec![],
                limit: None,
                halt_at: None,
                pass_through: None,
            }
        }
    }

    impl Pass for Recorder {
        type Output = usize;
        type Halt = &'static str;

        fn begin(&mut self, i: usize) -> Begin<usize, &'static str> {
            if self.halt_at == Some(i) {
                return Begin::Halt("halted");
            }
            if self.pass_through == Some(i) {
                return Begin::PassThrough;
            }
            self.begun.push(i);
            let slow = self.slow.contains(&i);
            Begin::Run {
                task: Box::pin(async move {
                    if slow {
                        std::future::pending::<()>().await;
                    }
                    i
                }),
                limit: self.limit,
            }
        }

        fn spawned(&mut self, i: usize) {
            self.spawned.push(i);
        }

        fn end(&mut self, i: usize, end: Ended<usize>) -> Result<(), &'static str> {
            let what = match end {
                Ended::Returned(n) if n == i => "returned",
                Ended::OverLimit => "over limit",
                _ => "other",
            };
            self.ended.push((i, what));
            Ok(())
        }
    }

    /// 0 → 1 → 2 (1 waits for 0, 2 for 1), plus 3 on its own.
    fn chain_and_one() -> (Vec<Vec<usize>>, Vec<Vec<usize>>, NodeSet) {
        (vec![vec![], vec![0], vec![1], vec![]], vec![vec![1], vec![2], vec![], vec![]], NodeSet::full(4))
    }

    #[tokio::test]
    async fn drive_runs_every_node_after_what_it_waits_for_inline() {
        let (preds, succs, all) = chain_and_one();
        let mut pass = Recorder::new();
        pass.pass_through = Some(1);
        let (halt, in_flight) = drive(Walk::new(&preds, &succs, &all), &mut pass, std::future::pending()).await;
        assert_eq!(halt, None);
        assert_eq!(in_flight.nodes().count(), 0);
        // Roots first, then what each releases; the passed-through node is not run.
        assert_eq!(pass.begun, vec![0, 3, 2]);
        assert!(pass.spawned.is_empty(), "ready futures are not spawned");
        assert_eq!(pass.ended, vec![(0, "returned"), (3, "returned"), (2, "returned")]);
    }

    #[tokio::test]
    async fn a_halt_begins_nothing_more_and_hands_back_what_runs() {
        let (preds, succs, all) = chain_and_one();
        let mut pass = Recorder::new();
        pass.slow = vec![0];
        pass.halt_at = Some(3);
        let (halt, mut in_flight) = drive(Walk::new(&preds, &succs, &all), &mut pass, std::future::pending()).await;
        assert_eq!(halt, Some("halted"));
        assert_eq!(pass.begun, vec![0]);
        assert_eq!(pass.spawned, vec![0]);
        assert_eq!(in_flight.nodes().collect::<Vec<_>>(), vec![0]);
        // Handed back already aborted.
        assert!(matches!(in_flight.next().await, Some((0, Ended::Aborted))));
    }

    #[tokio::test]
    async fn a_task_past_its_limit_is_aborted_and_its_successors_go_on() {
        let (preds, succs, all) = chain_and_one();
        let mut pass = Recorder::new();
        pass.slow = vec![1];
        pass.limit = Some(Instant::now() + std::time::Duration::from_millis(5));
        let (halt, _) = drive(Walk::new(&preds, &succs, &all), &mut pass, std::future::pending()).await;
        assert_eq!(halt, None);
        assert_eq!(pass.ended, vec![(0, "returned"), (3, "returned"), (1, "over limit"), (2, "returned")]);
    }

    #[tokio::test]
    async fn an_interrupt_ends_the_walk_while_tasks_run() {
        let (preds, succs, all) = chain_and_one();
        let mut pass = Recorder::new();
        pass.slow = vec![0, 3];
        let (halt, in_flight) = drive(Walk::new(&preds, &succs, &all), &mut pass, async { "interrupted" }).await;
        assert_eq!(halt, Some("interrupted"));
        let mut running: Vec<usize> = in_flight.nodes().collect();
        running.sort_unstable();
        assert_eq!(running, vec![0, 3]);
        assert!(pass.ended.is_empty());
    }

    #[test]
    fn excluded_nodes_are_not_waited_for() {
        let preds = vec![vec![], vec![0]];
        let succs = vec![vec![1], vec![]];
        let mut included = NodeSet::empty(2);
        included.insert(1);
        assert_eq!(Walk::new(&preds, &succs, &included).roots(), vec![1]);
    }
}
