//! The replay seam: what an episode needs from a source of sample trees.
//!
//! Two kinds of world implement it: the stored [`Forest`] (every node materialised, a node is a
//! `u32` index into its columns) and worlds that generate nodes on demand (the data crate's
//! lazy synthetic world, whose node *is* the generated state). Episodes, the batched env,
//! evaluation and the reference policies are generic over it, so every replay rule lives once,
//! in [`Episode`](crate::Episode), whatever holds the trees. Monomorphised: the stored forest
//! pays nothing for the abstraction.

use std::fmt;
use std::ops::Range;

use crate::forest::{Action, Branch, Candidate, Forest};
use crate::signals::{SignalKinds, Signals};

/// Where an action at a node leads, in any world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next<N> {
    /// Not available (masked) at this node.
    Absent,
    /// The episode ends; the final answer is correct or not.
    Outcome(bool),
    /// The next decision node.
    Node(N),
}

/// A source of per-problem sample trees that an episode replays.
pub trait World: Sync {
    /// A decision node: an index for stored trees, the node's own state for generated ones.
    type Node: Copy + Send + Sync + fmt::Debug + PartialEq;

    /// Number of problems.
    fn n_problems(&self) -> usize;
    /// Global indices of the sample trees of problem `p`.
    fn trees_of(&self, problem: usize) -> Range<usize>;
    /// Root node of global sample tree `tree`.
    fn root(&self, tree: usize) -> Self::Node;
    /// Decisions before this node (0 at a root).
    fn depth(&self, node: &Self::Node) -> u16;
    /// The weak candidate at a node.
    fn weak(&self, node: &Self::Node) -> Candidate;
    /// The strong candidate at a node, if the world offers one.
    fn strong(&self, node: &Self::Node) -> Option<Candidate>;
    /// Which actions are available: `[continue, regenerate]`.
    fn mask(&self, node: &Self::Node) -> [bool; 2];
    /// Where `action` leads from `node`.
    fn next(&self, node: &Self::Node, action: Action) -> Next<Self::Node>;
    /// Largest number of decisions in one episode (sizes history buffers).
    fn max_depth(&self) -> u16;
    /// A number naming the node in error messages (the node index of a stored forest).
    fn node_id(&self, node: &Self::Node) -> u64;
    /// Hint that an episode of `tree` starts soon. A stored forest asks the CPU to fetch the
    /// root's cache lines, so loops that play trees in order overlap the next episode's first
    /// memory misses with the current episode's steps. Changes no result.
    #[inline(always)]
    fn prefetch_tree(&self, _tree: usize) {}
    /// Which optional signals every weak candidate of this world carries (none by default).
    fn signal_kinds(&self) -> SignalKinds {
        SignalKinds::default()
    }
    /// The optional signals of the weak candidate at `node` (NaN where the world has none).
    /// Asked for only by policies that read them ([`crate::Policy::wants_signals`]).
    #[inline(always)]
    fn weak_signals(&self, _node: &Self::Node) -> Signals {
        Signals::NONE
    }
}

impl World for Forest {
    type Node = u32;

    #[inline]
    fn n_problems(&self) -> usize {
        Forest::n_problems(self)
    }

    #[inline]
    fn trees_of(&self, problem: usize) -> Range<usize> {
        Forest::trees_of(self, problem)
    }

    #[inline]
    fn root(&self, tree: usize) -> u32 {
        Forest::root(self, tree)
    }

    #[inline(always)]
    fn depth(&self, node: &u32) -> u16 {
        Forest::depth(self, *node)
    }

    #[inline(always)]
    fn weak(&self, node: &u32) -> Candidate {
        Forest::weak(self, *node)
    }

    #[inline(always)]
    fn strong(&self, node: &u32) -> Option<Candidate> {
        Forest::strong(self, *node)
    }

    #[inline(always)]
    fn mask(&self, node: &u32) -> [bool; 2] {
        Forest::mask(self, *node)
    }

    #[inline(always)]
    fn next(&self, node: &u32, action: Action) -> Next<u32> {
        match Forest::branch(self, *node, action) {
            Branch::Absent => Next::Absent,
            Branch::Outcome(c) => Next::Outcome(c),
            Branch::Node(n) => Next::Node(n),
        }
    }

    fn max_depth(&self) -> u16 {
        Forest::max_depth(self)
    }

    fn node_id(&self, node: &u32) -> u64 {
        u64::from(*node)
    }

    #[inline(always)]
    fn prefetch_tree(&self, tree: usize) {
        Forest::prefetch_tree(self, tree)
    }

    fn signal_kinds(&self) -> SignalKinds {
        self.signals().kinds()
    }

    #[inline]
    fn weak_signals(&self, node: &u32) -> Signals {
        self.signals().at(*node as usize)
    }
}
