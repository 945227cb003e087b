//! Walking the graph concurrently: a node becomes runnable once every node
//! it waits for has completed. Start waits for dependencies; each stop phase
//! walks the reversed graph and waits for dependents.

use std::collections::VecDeque;

/// Counts, per node, how many predecessors are still outstanding.
pub(crate) struct Walk<'g> {
    outstanding: Vec<usize>,
    successors: &'g [Vec<usize>],
    included: &'g [bool],
}

impl<'g> Walk<'g> {
    /// `predecessors[i]`: the nodes `i` waits for; `successors` is its transpose.
    /// Only nodes marked in `included` take part; the others are ignored on both sides.
    pub(crate) fn new(predecessors: &[Vec<usize>], successors: &'g [Vec<usize>], included: &'g [bool]) -> Self {
        let outstanding = predecessors
            .iter()
            .enumerate()
            .map(|(i, preds)| if included[i] { preds.iter().filter(|&&p| included[p]).count() } else { 0 })
            .collect();
        Self { outstanding, successors, included }
    }

    /// The included nodes with nothing to wait for, in index order.
    ///
    /// Callers launch from the front and append released nodes at the back:
    /// everything runnable now begins before anything it releases, so
    /// independent components begin together rather than one chain first.
    pub(crate) fn roots(&self) -> VecDeque<usize> {
        (0..self.outstanding.len()).filter(|&i| self.included[i] && self.outstanding[i] == 0).collect()
    }

    /// Marks `node` complete and appends the nodes that became runnable to `runnable`.
    pub(crate) fn complete(&mut self, node: usize, runnable: &mut impl Extend<usize>) {
        for &next in &self.successors[node] {
            if self.included[next] {
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
        let all = vec![true; 3];
        let mut walk = Walk::new(&preds, &succs, &all);
        assert_eq!(walk.roots(), vec![0, 1]);
        let mut runnable = Vec::new();
        walk.complete(0, &mut runnable);
        assert!(runnable.is_empty());
        walk.complete(1, &mut runnable);
        assert_eq!(runnable, vec![2]);
    }

    #[test]
    fn excluded_nodes_are_not_waited_for() {
        let preds = vec![vec![], vec![0]];
        let succs = vec![vec![1], vec![]];
        let included = vec![false, true];
        assert_eq!(Walk::new(&preds, &succs, &included).roots(), vec![1]);
    }
}
