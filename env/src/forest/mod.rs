//! The replay forest: every problem's rollout trees as struct-of-arrays columns.
//!
//! A node is a decision point at step `t` after one particular action history. It holds the weak
//! candidate step (tokens, PRM score in context) and, when it was generated, the strong candidate
//! for the same prefix. Each of the two actions leads to a [`Branch`]: the next decision node, a
//! terminal outcome (final answer correct or wrong), or nothing (the branch was never generated,
//! so the action is masked).
//!
//! Columns are one contiguous allocation each so that stepping an episode touches a handful of
//! cache lines: the replay loop is a few loads per step (issue: ≥ 20 M steps/s per core).

use std::fmt;

use crate::signals::SignalColumns;

/// The router's two actions, in the official TRIM order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Action {
    /// Keep the weak model's step.
    Continue = 0,
    /// Discard the weak step; the strong model rewrites it from the same prefix.
    Regenerate = 1,
}

impl Action {
    /// Both actions, indexable by `action as usize`.
    pub const ALL: [Action; 2] = [Action::Continue, Action::Regenerate];

    /// The action encoded as `0` (continue) or `1` (regenerate).
    pub fn from_index(i: u8) -> Option<Action> {
        match i {
            0 => Some(Action::Continue),
            1 => Some(Action::Regenerate),
            _ => None,
        }
    }

    /// Lower-case name used in files and logs.
    pub fn name(self) -> &'static str {
        match self {
            Action::Continue => "continue",
            Action::Regenerate => "regenerate",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an action at a node leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Branch {
    /// Not generated: the action is unavailable (masked) at this node.
    Absent,
    /// The episode ends; the final answer is correct or not.
    Outcome(bool),
    /// The next decision node (global node index in the forest).
    Node(u32),
}

/// Packed encoding of a [`Branch`] in one `u32` so a node's children fit in 8 bytes.
const ABSENT: u32 = u32::MAX;
const WRONG: u32 = u32::MAX - 1;
const CORRECT: u32 = u32::MAX - 2;
/// Largest number of nodes a forest can hold (the top three `u32` values encode non-nodes).
pub const MAX_NODES: usize = (u32::MAX - 3) as usize;

impl Branch {
    #[inline(always)]
    fn encode(self) -> u32 {
        match self {
            Branch::Absent => ABSENT,
            Branch::Outcome(false) => WRONG,
            Branch::Outcome(true) => CORRECT,
            Branch::Node(i) => i,
        }
    }

    #[inline(always)]
    fn decode(code: u32) -> Branch {
        match code {
            ABSENT => Branch::Absent,
            WRONG => Branch::Outcome(false),
            CORRECT => Branch::Outcome(true),
            i => Branch::Node(i),
        }
    }
}

/// One candidate step as the environment sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Candidate {
    /// Decoded tokens of the step (≥ 1).
    pub tokens: u32,
    /// PRM score of the prefix ending with this step, in `[0, 1]`.
    pub prm: f32,
}

/// Why a forest could not be built. The `data` crate reports file/row context; this type only
/// describes the structural fault.
#[derive(Clone, Debug, PartialEq)]
pub enum ForestError {
    /// A branch points at a node index that does not exist or is not deeper than its parent.
    BadChild {
        node: u32,
        action: Action,
        child: u32,
    },
    /// A node has neither action available.
    DeadEnd { node: u32 },
    /// A node that is not a tree root is reached by no branch, or by more than one.
    Orphan { node: u32, parents: usize },
    /// A regenerate branch exists but the node has no strong candidate.
    MissingStrong { node: u32 },
    /// Token count of zero or a PRM score outside `[0, 1]` / not finite.
    BadCandidate { node: u32, what: &'static str },
    /// The per-problem tree ranges or roots are inconsistent.
    BadIndex { what: String },
}

impl fmt::Display for ForestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForestError::BadChild {
                node,
                action,
                child,
            } => write!(
                f,
                "node {node}: {action} branch points at invalid or non-deeper node {child}"
            ),
            ForestError::DeadEnd { node } => write!(f, "node {node}: no action is available"),
            ForestError::Orphan { node, parents } => {
                write!(f, "node {node}: reached by {parents} branches (expected 1)")
            }
            ForestError::MissingStrong { node } => {
                write!(
                    f,
                    "node {node}: regenerate branch without a strong candidate"
                )
            }
            ForestError::BadCandidate { node, what } => write!(f, "node {node}: {what}"),
            ForestError::BadIndex { what } => write!(f, "forest index: {what}"),
        }
    }
}

impl std::error::Error for ForestError {}

/// Incrementally builds a [`Forest`]; nodes of a tree must be pushed parent-first.
#[derive(Default)]
pub struct ForestBuilder {
    f: Forest,
    open_problem: bool,
}

impl ForestBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserve room for `nodes` nodes.
    pub fn with_capacity(nodes: usize) -> Self {
        let mut b = Self::default();
        b.f.weak.reserve(nodes);
        b.f.strong.reserve(nodes);
        b.f.next.reserve(nodes);
        b.f.depth.reserve(nodes);
        b
    }

    /// Start a new problem; the trees pushed until the next call belong to it.
    pub fn begin_problem(&mut self) {
        if self.f.problem_trees.is_empty() {
            self.f.problem_trees.push(0);
        }
        self.f.problem_trees.push(self.f.tree_root.len() as u32);
        self.open_problem = true;
    }

    /// Start a new sample tree of the current problem. The next pushed node is its root.
    pub fn begin_tree(&mut self) {
        assert!(self.open_problem, "begin_problem must be called first");
        self.f.tree_root.push(self.f.weak.len() as u32);
        *self.f.problem_trees.last_mut().expect("problem open") = self.f.tree_root.len() as u32;
    }

    /// Number of nodes pushed so far; the next node gets this index.
    pub fn next_index(&self) -> u32 {
        self.f.weak.len() as u32
    }

    /// Push a node. Children are global node indices and may refer to nodes pushed later.
    pub fn push_node(
        &mut self,
        depth: u16,
        weak: Candidate,
        strong: Option<Candidate>,
        children: [Branch; 2],
    ) -> u32 {
        let i = self.next_index();
        self.f.weak.push(weak);
        self.f.strong.push(strong.unwrap_or(Candidate {
            tokens: 0,
            prm: f32::NAN,
        }));
        self.f
            .next
            .push([children[0].encode(), children[1].encode()]);
        self.f.depth.push(depth);
        i
    }

    /// Overwrite the branch of an already pushed node (for builders that learn child indices late).
    pub fn set_branch(&mut self, node: u32, action: Action, branch: Branch) {
        self.f.next[node as usize][action as usize] = branch.encode();
    }

    /// The forest without checks (tests build deliberately partial forests and prune them).
    #[cfg(test)]
    pub(crate) fn into_unchecked(self) -> Forest {
        self.f
    }

    /// Check every structural invariant and return the forest.
    pub fn finish(self) -> Result<Forest, ForestError> {
        let f = self.f;
        f.check()?;
        Ok(f)
    }
}

/// All problems' rollout trees, struct-of-arrays.
#[derive(Clone, Debug, Default)]
pub struct Forest {
    /// The weak candidate per node. Tokens and score sit together (8 bytes): a step reads
    /// both, and one column instead of two halves the memory streams a replay follows.
    weak: Vec<Candidate>,
    /// The strong candidate per node; `tokens == 0` (and a NaN score) when it was not generated.
    strong: Vec<Candidate>,
    next: Vec<[u32; 2]>,
    depth: Vec<u16>,
    /// Root node of each sample tree.
    tree_root: Vec<u32>,
    /// Tree ranges per problem: problem `p` owns trees `problem_trees[p]..problem_trees[p+1]`.
    problem_trees: Vec<u32>,
    /// Optional weak-candidate signals (judge score, mean log-prob), in node order.
    signals: SignalColumns,
}

impl Forest {
    fn check(&self) -> Result<(), ForestError> {
        let n = self.weak.len();
        if n > MAX_NODES {
            return Err(ForestError::BadIndex {
                what: format!("{n} nodes exceed the maximum {MAX_NODES}"),
            });
        }
        let bad_index = |what: String| Err(ForestError::BadIndex { what });
        if self.problem_trees.windows(2).any(|w| w[0] >= w[1]) {
            return bad_index("a problem has no sample tree".into());
        }
        if self.problem_trees.last().copied().unwrap_or(0) as usize != self.tree_root.len() {
            return bad_index("tree ranges do not cover all trees".into());
        }
        let mut indegree = vec![0u32; n];
        for (i, (w, s)) in self.weak.iter().zip(&self.strong).enumerate() {
            let node = i as u32;
            check_candidate(node, w.tokens, w.prm, "weak")?;
            let has_strong = s.tokens > 0;
            if has_strong {
                check_candidate(node, s.tokens, s.prm, "strong")?;
            }
            let [c, r] = self.next[i];
            if c == ABSENT && r == ABSENT {
                return Err(ForestError::DeadEnd { node });
            }
            if r != ABSENT && !has_strong {
                return Err(ForestError::MissingStrong { node });
            }
            for (a, code) in [(Action::Continue, c), (Action::Regenerate, r)] {
                if let Branch::Node(child) = Branch::decode(code) {
                    let ok = (child as usize) < n
                        && self.depth[child as usize] == self.depth[i].saturating_add(1);
                    if !ok {
                        return Err(ForestError::BadChild {
                            node,
                            action: a,
                            child,
                        });
                    }
                    indegree[child as usize] += 1;
                }
            }
        }
        for &root in &self.tree_root {
            if root as usize >= n || self.depth[root as usize] != 0 {
                return bad_index(format!("tree root {root} is not a depth-0 node"));
            }
            indegree[root as usize] += 1;
        }
        if let Some((node, &parents)) = indegree.iter().enumerate().find(|&(_, &d)| d != 1) {
            return Err(ForestError::Orphan {
                node: node as u32,
                parents: parents as usize,
            });
        }
        Ok(())
    }

    /// Number of problems.
    pub fn n_problems(&self) -> usize {
        self.problem_trees.len().saturating_sub(1)
    }

    /// Number of sample trees over all problems.
    pub fn n_trees(&self) -> usize {
        self.tree_root.len()
    }

    /// Number of decision nodes over all trees.
    pub fn n_nodes(&self) -> usize {
        self.weak.len()
    }

    /// Global indices of the sample trees of problem `p`.
    #[inline]
    pub fn trees_of(&self, p: usize) -> std::ops::Range<usize> {
        self.problem_trees[p] as usize..self.problem_trees[p + 1] as usize
    }

    /// Root node of sample tree `tree` (a global tree index).
    #[inline]
    pub fn root(&self, tree: usize) -> u32 {
        self.tree_root[tree]
    }

    /// The optional weak-candidate signal columns.
    #[inline(always)]
    pub fn signals(&self) -> &SignalColumns {
        &self.signals
    }

    /// Attach weak-candidate signal columns (one value per node, in node order).
    pub fn set_signals(&mut self, signals: SignalColumns) -> Result<(), ForestError> {
        let n = self.weak.len();
        for c in [&signals.judge_score, &signals.mean_logprob]
            .into_iter()
            .flatten()
        {
            if c.len() != n {
                return Err(ForestError::BadIndex {
                    what: format!("a signal column has {} values for {n} nodes", c.len()),
                });
            }
        }
        self.signals = signals;
        Ok(())
    }

    /// Depth (step index `t`, from 0) of a node.
    #[inline(always)]
    pub fn depth(&self, node: u32) -> u16 {
        self.depth[node as usize]
    }

    /// The weak candidate at a node.
    #[inline(always)]
    pub fn weak(&self, node: u32) -> Candidate {
        self.weak[node as usize]
    }

    /// The strong candidate at a node, if it was generated.
    #[inline(always)]
    pub fn strong(&self, node: u32) -> Option<Candidate> {
        let s = self.strong[node as usize];
        (s.tokens > 0).then_some(s)
    }

    /// Where `action` leads from `node`.
    #[inline(always)]
    pub fn branch(&self, node: u32, action: Action) -> Branch {
        Branch::decode(self.next[node as usize][action as usize])
    }

    /// Which actions are available at `node`: `[continue, regenerate]`.
    #[inline(always)]
    pub fn mask(&self, node: u32) -> [bool; 2] {
        let [c, r] = self.next[node as usize];
        [c != ABSENT, r != ABSENT]
    }

    /// Ask the CPU to fetch the first nodes of sample tree `tree` (the columns a step reads).
    /// A hint only: an index past the end is ignored and no value changes.
    #[inline(always)]
    pub fn prefetch_tree(&self, tree: usize) {
        let Some(&root) = self.tree_root.get(tree) else {
            return;
        };
        let i = root as usize;
        // A typical episode's continue run spans about nine 8-byte nodes: two lines.
        prefetch(self.weak.as_ptr().wrapping_add(i));
        prefetch(self.weak.as_ptr().wrapping_add(i + 8));
        prefetch(self.next.as_ptr().wrapping_add(i));
        prefetch(self.next.as_ptr().wrapping_add(i + 8));
        prefetch(self.strong.as_ptr().wrapping_add(i));
    }

    /// Largest node depth in the forest.
    pub fn max_depth(&self) -> u16 {
        self.depth.iter().copied().max().unwrap_or(0)
    }

    /// Tree coverage: how much of the action space the data supports.
    pub fn coverage(&self) -> Coverage {
        let mut cov = Coverage {
            nodes: self.n_nodes(),
            trees: self.n_trees(),
            problems: self.n_problems(),
            ..Coverage::default()
        };
        for (i, &[c, r]) in self.next.iter().enumerate() {
            cov.with_strong += usize::from(self.strong[i].tokens > 0);
            cov.continue_available += usize::from(c != ABSENT);
            cov.regenerate_available += usize::from(r != ABSENT);
            cov.both_available += usize::from(c != ABSENT && r != ABSENT);
        }
        // Longest all-weak and all-strong prefixes that exist, per tree.
        for &root in &self.tree_root {
            for (a, complete) in [
                (Action::Continue, &mut cov.trees_with_all_weak),
                (Action::Regenerate, &mut cov.trees_with_all_strong),
            ] {
                let mut node = root;
                loop {
                    match self.branch(node, a) {
                        Branch::Node(n) => node = n,
                        Branch::Outcome(_) => {
                            *complete += 1;
                            break;
                        }
                        Branch::Absent => break,
                    }
                }
            }
        }
        cov
    }
}

/// A read hint for the cache line holding `p` (no-op off x86-64).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and does not read the value into the program; `p` is
    // in bounds of a live column (callers index a checked root) and only its address is used.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[inline]
fn check_candidate(node: u32, tokens: u32, prm: f32, who: &'static str) -> Result<(), ForestError> {
    if tokens == 0 {
        return Err(ForestError::BadCandidate {
            node,
            what: if who == "weak" {
                "weak tokens must be >= 1"
            } else {
                "strong tokens must be >= 1"
            },
        });
    }
    if !(0.0..=1.0).contains(&prm) {
        return Err(ForestError::BadCandidate {
            node,
            what: if who == "weak" {
                "weak PRM score outside [0, 1] or NaN"
            } else {
                "strong PRM score outside [0, 1] or NaN"
            },
        });
    }
    Ok(())
}

/// What fraction of the action space the trees cover (see [`Forest::coverage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Coverage {
    pub problems: usize,
    pub trees: usize,
    pub nodes: usize,
    /// Nodes where the strong candidate was generated.
    pub with_strong: usize,
    /// Nodes whose continue branch exists.
    pub continue_available: usize,
    /// Nodes whose regenerate branch exists.
    pub regenerate_available: usize,
    /// Nodes where the policy has a real choice.
    pub both_available: usize,
    /// Trees where always-continue reaches an outcome.
    pub trees_with_all_weak: usize,
    /// Trees where always-regenerate reaches an outcome.
    pub trees_with_all_strong: usize,
}

#[cfg(test)]
pub(crate) mod tests;
