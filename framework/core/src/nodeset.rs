//! [`NodeSet`]: a set of components by their index in the graph, beside
//! [`PhaseSet`](crate::phase::PhaseSet). Which components run, which a
//! restart stops, which a walk includes: one type and its operations, in
//! place of `Vec<bool>` and hand-written loops. Part of the model; it
//! names nothing else in the crate.

/// A set of graph indices below a fixed size (the graph's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct NodeSet {
    members: Vec<bool>,
}

impl NodeSet {
    /// No node of a graph of `len`.
    pub(crate) fn empty(len: usize) -> Self {
        Self { members: vec![false; len] }
    }

    /// Every node of a graph of `len`.
    pub(crate) fn full(len: usize) -> Self {
        Self { members: vec![true; len] }
    }

    /// Whether node `i` is a member (a node outside the graph is not).
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.members.get(i).copied().unwrap_or(false)
    }

    /// Adds node `i`.
    pub(crate) fn insert(&mut self, i: usize) {
        if let Some(member) = self.members.get_mut(i) {
            *member = true;
        }
    }

    /// Removes node `i`.
    pub(crate) fn remove(&mut self, i: usize) {
        if let Some(member) = self.members.get_mut(i) {
            *member = false;
        }
    }

    /// Adds node `i`; `false` if it was a member already.
    pub(crate) fn insert_new(&mut self, i: usize) -> bool {
        match self.members.get_mut(i) {
            Some(member) => !std::mem::replace(member, true),
            None => false,
        }
    }

    /// The members, in index order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.members.iter().enumerate().filter(|(_, &member)| member).map(|(i, _)| i)
    }

    /// The members of both.
    pub(crate) fn intersection(&self, other: &NodeSet) -> NodeSet {
        NodeSet { members: self.members.iter().zip(&other.members).map(|(&a, &b)| a && b).collect() }
    }

    /// Adds every member of `other`.
    pub(crate) fn union_with(&mut self, other: &NodeSet) {
        self.members.iter_mut().zip(&other.members).for_each(|(a, &b)| *a |= b);
    }

    /// Removes every member of `other`.
    pub(crate) fn subtract(&mut self, other: &NodeSet) {
        self.members.iter_mut().zip(&other.members).for_each(|(a, &b)| *a &= !b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations_keep_the_graph_size() {
        let mut a = NodeSet::empty(4);
        a.insert(1);
        a.insert(3);
        let mut b = NodeSet::empty(4);
        b.insert(1);
        b.insert(2);
        assert_eq!(a.intersection(&b).iter().collect::<Vec<_>>(), vec![1]);
        let mut c = a.clone();
        c.union_with(&b);
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![1, 2, 3]);
        c.subtract(&b);
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![3]);
        assert!(!c.insert_new(3) && c.insert_new(0));
        assert!(!c.contains(99) && NodeSet::full(2).contains(1));
    }
}
