//! The column-wise node table: one vector per field, the form the parquet reader fills directly
//! and the validator checks. [`NodeRow`]s (the exchange form of importers and the generator)
//! convert to it with [`NodeTable::from_rows`], so one validator serves both.
//!
//! Optional fields are a value plus a presence bit in [`NodeFlags`]; an absent value is stored as
//! zero. 43 bytes per node, against ~170 for a `NodeRow`.

use trim_env::Action;

use crate::schema::{CandidateRec, NodeRow, StepState};

/// Presence bits and boolean values of one node, packed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeFlags(pub u16);

impl NodeFlags {
    pub const PARENT: u16 = 1 << 0;
    pub const ACTION: u16 = 1 << 1;
    pub const WEAK_FINISHED: u16 = 1 << 2;
    pub const WEAK_STATE: u16 = 1 << 3;
    /// `strong_tokens` is set (the strong candidate exists once the reader checked that
    /// `strong_prm` and `strong_finished` are set with it).
    pub const STRONG: u16 = 1 << 4;
    pub const STRONG_PRM: u16 = 1 << 5;
    pub const STRONG_FINISHED_SET: u16 = 1 << 6;
    pub const STRONG_FINISHED: u16 = 1 << 7;
    pub const STRONG_STATE: u16 = 1 << 8;
    pub const CONTINUE_SET: u16 = 1 << 9;
    pub const CONTINUE_CORRECT: u16 = 1 << 10;
    pub const REGENERATE_SET: u16 = 1 << 11;
    pub const REGENERATE_CORRECT: u16 = 1 << 12;

    /// True when every bit of `bits` is set.
    #[inline(always)]
    pub fn has(self, bits: u16) -> bool {
        self.0 & bits == bits
    }

    /// `Some(value bit)` when `set` is present.
    #[inline(always)]
    pub fn opt_bool(self, set: u16, value: u16) -> Option<bool> {
        self.has(set).then(|| self.has(value))
    }
}

/// Correctness states of a node's two candidates (statistics only, never the environment).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStates {
    pub weak: Option<u8>,
    pub strong: Option<u8>,
}

/// Table values are range-checked where a table is filled (the parquet reader refuses an action
/// outside 0..=1 and a state outside 0..=2; rows are typed), so converting back cannot fail.
const RANGE_CHECKED: &str = "table values are range-checked where the table is filled";

fn typed_state(v: u8) -> StepState {
    StepState::from_u8(v).expect(RANGE_CHECKED)
}

/// Every node of a dataset, struct-of-arrays, in file order. Row `i` of each vector is node `i`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeTable {
    /// Index into the problem list (first-appearance order for files).
    pub problem: Vec<u32>,
    pub tree: Vec<u32>,
    pub node: Vec<u32>,
    pub parent: Vec<u32>,
    pub action: Vec<u8>,
    pub depth: Vec<u16>,
    pub weak_tokens: Vec<u32>,
    pub weak_prm: Vec<f32>,
    pub weak_state: Vec<u8>,
    pub strong_tokens: Vec<u32>,
    pub strong_prm: Vec<f32>,
    pub strong_state: Vec<u8>,
    pub flags: Vec<NodeFlags>,
    /// The optional signal columns.
    pub signals: SignalTable,
}

/// The optional per-candidate signal columns (`None`: no row carries that signal). Kept as
/// `Option<f32>` per row, so a null and a stored NaN stay distinct and the validator can refuse
/// the NaN.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SignalTable {
    pub weak_judge_score: Option<Vec<Option<f32>>>,
    pub weak_mean_logprob: Option<Vec<Option<f32>>>,
    pub strong_judge_score: Option<Vec<Option<f32>>>,
    pub strong_mean_logprob: Option<Vec<Option<f32>>>,
}

/// Which signal a column holds, and of which candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalColumn {
    /// Column name (parquet) and checksum name.
    pub name: &'static str,
    pub strong: bool,
    /// `judge_score` (in `[0, 1]`) or `mean_logprob` (≤ 0).
    pub judge: bool,
}

impl SignalTable {
    /// The four columns, in file order.
    pub const COLUMNS: [SignalColumn; 4] = [
        SignalColumn {
            name: "weak_judge_score",
            strong: false,
            judge: true,
        },
        SignalColumn {
            name: "weak_mean_logprob",
            strong: false,
            judge: false,
        },
        SignalColumn {
            name: "strong_judge_score",
            strong: true,
            judge: true,
        },
        SignalColumn {
            name: "strong_mean_logprob",
            strong: true,
            judge: false,
        },
    ];

    /// The columns with their values, in the order of [`Self::COLUMNS`].
    pub fn columns(&self) -> [(SignalColumn, Option<&Vec<Option<f32>>>); 4] {
        let v = [
            &self.weak_judge_score,
            &self.weak_mean_logprob,
            &self.strong_judge_score,
            &self.strong_mean_logprob,
        ];
        std::array::from_fn(|k| (Self::COLUMNS[k], v[k].as_ref()))
    }

    /// Mutable access to column `k` of [`Self::COLUMNS`].
    pub fn column_mut(&mut self, k: usize) -> &mut Option<Vec<Option<f32>>> {
        match k {
            0 => &mut self.weak_judge_score,
            1 => &mut self.weak_mean_logprob,
            2 => &mut self.strong_judge_score,
            _ => &mut self.strong_mean_logprob,
        }
    }

    /// The value of column `col` for a candidate.
    pub fn pick(col: SignalColumn, c: &CandidateRec) -> Option<f32> {
        if col.judge {
            c.judge_score
        } else {
            c.mean_logprob
        }
    }

    /// The value of column `col` in a node row (None without it or without the candidate).
    pub fn of_row(col: SignalColumn, r: &NodeRow) -> Option<f32> {
        let c = if col.strong {
            r.strong.as_ref()
        } else {
            Some(&r.weak)
        };
        c.and_then(|c| Self::pick(col, c))
    }

    /// The columns of `rows`: each present when some row carries it.
    fn of_rows<'a>(rows: impl Iterator<Item = &'a NodeRow> + Clone) -> Self {
        let mut t = SignalTable::default();
        for (k, col) in Self::COLUMNS.into_iter().enumerate() {
            let get = |r: &NodeRow| Self::of_row(col, r);
            if rows.clone().any(|r| get(r).is_some()) {
                *t.column_mut(k) = Some(rows.clone().map(get).collect());
            }
        }
        t
    }

    fn value(col: Option<&Vec<Option<f32>>>, i: usize) -> Option<f32> {
        col.and_then(|c| c.get(i).copied().flatten())
    }
}

/// The optional audit text columns, kept only when the caller wants [`NodeRow`]s back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditColumns {
    pub weak_text: Option<Vec<Option<String>>>,
    pub weak_hash: Option<Vec<Option<String>>>,
    pub strong_text: Option<Vec<Option<String>>>,
    pub strong_hash: Option<Vec<Option<String>>>,
}

/// Take row `i` of an optional audit column.
fn take(col: &mut Option<Vec<Option<String>>>, i: usize) -> Option<String> {
    col.as_mut()
        .and_then(|c| c.get_mut(i))
        .and_then(Option::take)
}

impl NodeTable {
    /// A table of `n` zeroed nodes, to be filled column by column.
    pub fn zeroed(n: usize) -> Self {
        NodeTable {
            problem: vec![0; n],
            tree: vec![0; n],
            node: vec![0; n],
            parent: vec![0; n],
            action: vec![0; n],
            depth: vec![0; n],
            weak_tokens: vec![0; n],
            weak_prm: vec![0.0; n],
            weak_state: vec![0; n],
            strong_tokens: vec![0; n],
            strong_prm: vec![0.0; n],
            strong_state: vec![0; n],
            flags: vec![NodeFlags::default(); n],
            signals: SignalTable::default(),
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.problem.len()
    }

    /// True when the table holds no node.
    pub fn is_empty(&self) -> bool {
        self.problem.is_empty()
    }

    /// The table of `rows`, with each row's problem index mapped by `problem_of`.
    pub fn from_rows<'a>(
        rows: impl ExactSizeIterator<Item = &'a NodeRow> + Clone,
        problem_of: impl Fn(&NodeRow) -> u32,
    ) -> Self {
        let mut t = NodeTable::zeroed(0);
        let n = rows.len();
        t.reserve(n);
        t.signals = SignalTable::of_rows(rows.clone());
        for r in rows {
            t.push_row(r, problem_of(r));
        }
        t
    }

    fn reserve(&mut self, n: usize) {
        self.problem.reserve_exact(n);
        self.tree.reserve_exact(n);
        self.node.reserve_exact(n);
        self.parent.reserve_exact(n);
        self.action.reserve_exact(n);
        self.depth.reserve_exact(n);
        self.weak_tokens.reserve_exact(n);
        self.weak_prm.reserve_exact(n);
        self.weak_state.reserve_exact(n);
        self.strong_tokens.reserve_exact(n);
        self.strong_prm.reserve_exact(n);
        self.strong_state.reserve_exact(n);
        self.flags.reserve_exact(n);
    }

    fn push_row(&mut self, r: &NodeRow, problem: u32) {
        let mut f = 0u16;
        let mut bit = |on: bool, b: u16| {
            if on {
                f |= b;
            }
        };
        bit(r.parent.is_some(), NodeFlags::PARENT);
        bit(r.action.is_some(), NodeFlags::ACTION);
        bit(r.weak.finished, NodeFlags::WEAK_FINISHED);
        bit(r.weak.state.is_some(), NodeFlags::WEAK_STATE);
        if let Some(s) = &r.strong {
            bit(true, NodeFlags::STRONG | NodeFlags::STRONG_PRM);
            bit(true, NodeFlags::STRONG_FINISHED_SET);
            bit(s.finished, NodeFlags::STRONG_FINISHED);
            bit(s.state.is_some(), NodeFlags::STRONG_STATE);
        }
        bit(r.continue_correct.is_some(), NodeFlags::CONTINUE_SET);
        bit(
            r.continue_correct == Some(true),
            NodeFlags::CONTINUE_CORRECT,
        );
        bit(r.regenerate_correct.is_some(), NodeFlags::REGENERATE_SET);
        bit(
            r.regenerate_correct == Some(true),
            NodeFlags::REGENERATE_CORRECT,
        );
        let strong = r.strong.as_ref();
        self.problem.push(problem);
        self.tree.push(r.tree);
        self.node.push(r.node);
        self.parent.push(r.parent.unwrap_or(0));
        self.action.push(r.action.map_or(0, |a| a as u8));
        self.depth.push(r.depth);
        self.weak_tokens.push(r.weak.tokens);
        self.weak_prm.push(r.weak.prm);
        self.weak_state.push(r.weak.state.map_or(0, |s| s as u8));
        self.strong_tokens.push(strong.map_or(0, |s| s.tokens));
        self.strong_prm.push(strong.map_or(0.0, |s| s.prm));
        self.strong_state
            .push(strong.and_then(|s| s.state).map_or(0, |s| s as u8));
        self.flags.push(NodeFlags(f));
    }

    /// States of node `i`'s candidates.
    #[inline]
    pub fn states(&self, i: usize) -> NodeStates {
        let f = self.flags[i];
        NodeStates {
            weak: f.has(NodeFlags::WEAK_STATE).then_some(self.weak_state[i]),
            strong: f
                .has(NodeFlags::STRONG | NodeFlags::STRONG_STATE)
                .then_some(self.strong_state[i]),
        }
    }

    /// Node `i` as a [`NodeRow`], its audit strings taken out of `audit`.
    pub fn row(&self, i: usize, audit: &mut AuditColumns) -> NodeRow {
        let f = self.flags[i];
        let st = self.states(i);
        let s = &self.signals;
        let strong = f.has(NodeFlags::STRONG).then(|| CandidateRec {
            tokens: self.strong_tokens[i],
            prm: self.strong_prm[i],
            finished: f.has(NodeFlags::STRONG_FINISHED),
            state: st.strong.map(typed_state),
            text: take(&mut audit.strong_text, i),
            hash: take(&mut audit.strong_hash, i),
            judge_score: SignalTable::value(s.strong_judge_score.as_ref(), i),
            mean_logprob: SignalTable::value(s.strong_mean_logprob.as_ref(), i),
        });
        NodeRow {
            problem: self.problem[i],
            tree: self.tree[i],
            node: self.node[i],
            parent: f.has(NodeFlags::PARENT).then_some(self.parent[i]),
            action: f
                .has(NodeFlags::ACTION)
                .then(|| Action::from_index(self.action[i]).expect(RANGE_CHECKED)),
            depth: self.depth[i],
            weak: CandidateRec {
                tokens: self.weak_tokens[i],
                prm: self.weak_prm[i],
                finished: f.has(NodeFlags::WEAK_FINISHED),
                state: st.weak.map(typed_state),
                text: take(&mut audit.weak_text, i),
                hash: take(&mut audit.weak_hash, i),
                judge_score: SignalTable::value(s.weak_judge_score.as_ref(), i),
                mean_logprob: SignalTable::value(s.weak_mean_logprob.as_ref(), i),
            },
            strong,
            continue_correct: f.opt_bool(NodeFlags::CONTINUE_SET, NodeFlags::CONTINUE_CORRECT),
            regenerate_correct: f
                .opt_bool(NodeFlags::REGENERATE_SET, NodeFlags::REGENERATE_CORRECT),
        }
    }

    /// Every node as a [`NodeRow`] (the exchange form), consuming the audit strings.
    pub fn into_rows(self, mut audit: AuditColumns) -> Vec<NodeRow> {
        (0..self.len()).map(|i| self.row(i, &mut audit)).collect()
    }
}
