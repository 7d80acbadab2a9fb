//! Builders that importers and the generator use to emit well-formed trees.

use trim_env::Action;

use crate::schema::{CandidateRec, Dataset, Meta, NodeRow, ProblemInfo};

/// Accumulates problems and their sample trees into a [`Dataset`].
pub struct DatasetBuilder {
    ds: Dataset,
    trees_per_problem: Vec<u32>,
}

impl DatasetBuilder {
    /// An empty dataset with `meta`.
    pub fn new(meta: Meta) -> Self {
        DatasetBuilder {
            ds: Dataset::new(meta, vec![], vec![]),
            trees_per_problem: vec![],
        }
    }

    /// Register a problem; returns its index.
    pub fn add_problem(&mut self, info: ProblemInfo) -> u32 {
        self.ds.problems.push(info);
        self.trees_per_problem.push(0);
        (self.ds.problems.len() - 1) as u32
    }

    /// Start the next sample tree of `problem`.
    pub fn tree(&mut self, problem: u32) -> TreeWriter<'_> {
        let tree = self.trees_per_problem[problem as usize];
        self.trees_per_problem[problem as usize] += 1;
        let start = self.ds.rows.len();
        TreeWriter {
            rows: &mut self.ds.rows,
            problem,
            tree,
            start,
        }
    }

    /// Metadata, for importers that fill it in as they go.
    pub fn meta_mut(&mut self) -> &mut Meta {
        &mut self.ds.meta
    }

    /// Number of node rows so far.
    pub fn n_rows(&self) -> usize {
        self.ds.rows.len()
    }

    /// The finished dataset.
    pub fn finish(self) -> Dataset {
        self.ds
    }
}

/// Appends the nodes of one sample tree. Node ids are `0, 1, 2, …` in insertion order.
pub struct TreeWriter<'a> {
    rows: &'a mut Vec<NodeRow>,
    problem: u32,
    tree: u32,
    start: usize,
}

impl TreeWriter<'_> {
    fn push(
        &mut self,
        parent: Option<(u32, Action)>,
        depth: u16,
        weak: CandidateRec,
        strong: Option<CandidateRec>,
    ) -> u32 {
        let node = (self.rows.len() - self.start) as u32;
        self.rows.push(NodeRow {
            problem: self.problem,
            tree: self.tree,
            node,
            parent: parent.map(|p| p.0),
            action: parent.map(|p| p.1),
            depth,
            weak,
            strong,
            continue_correct: None,
            regenerate_correct: None,
        });
        node
    }

    /// The root decision (step 0). Must be called first, once.
    pub fn root(&mut self, weak: CandidateRec, strong: Option<CandidateRec>) -> u32 {
        assert_eq!(self.rows.len(), self.start, "root must be the first node");
        self.push(None, 0, weak, strong)
    }

    /// A child of `parent` reached by `action`.
    pub fn child(
        &mut self,
        parent: u32,
        action: Action,
        weak: CandidateRec,
        strong: Option<CandidateRec>,
    ) -> u32 {
        let depth = self.row(parent).depth + 1;
        self.push(Some((parent, action)), depth, weak, strong)
    }

    /// Record the final-answer correctness reached by `action` at `node` (its candidate finished).
    pub fn set_outcome(&mut self, node: u32, action: Action, correct: bool) {
        let row = self.row_mut(node);
        match action {
            Action::Continue => row.continue_correct = Some(correct),
            Action::Regenerate => row.regenerate_correct = Some(correct),
        }
    }

    /// A node of this tree.
    pub fn row(&self, node: u32) -> &NodeRow {
        &self.rows[self.start + node as usize]
    }

    fn row_mut(&mut self, node: u32) -> &mut NodeRow {
        &mut self.rows[self.start + node as usize]
    }

    /// Nodes written so far in this tree.
    pub fn len(&self) -> usize {
        self.rows.len() - self.start
    }

    /// True before the root is written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
