//! The checks of one sample tree and its emission into the forest builder.
//!
//! A tree is a run of table rows (file order within the tree). Four passes in row order, each
//! reporting the first violation it finds: (1) node ids unique, candidates in range, exactly one
//! root, parent and action set together; (2) every parent exists, at most one child per
//! (parent, action); (3) every node is reachable from the root — an unreachable node sits on a
//! parent-link cycle; (4) depth = parent depth + 1 and branch consistency. The tree is then
//! pushed in depth-first pre-order with the continue child first, so children get forest indices
//! after their parents and a run of `continue` steps reads consecutive nodes. Scratch buffers are reused across trees: no allocation per node.

use std::collections::HashMap;

use trim_env::{Branch, Candidate, ForestBuilder};

use super::Source;
use crate::error::Result;
use crate::schema::NodeFlags as F;

const NONE: u32 = u32::MAX;

/// The rows of one tree: `start..start + len` of the file order, or of a grouping permutation.
#[derive(Clone, Copy)]
pub(super) struct TreeRows<'a> {
    pub order: Option<&'a [u32]>,
    pub start: usize,
    pub len: usize,
}

impl TreeRows<'_> {
    /// Table row of the tree's `k`-th node.
    #[inline(always)]
    fn row(&self, k: usize) -> usize {
        match self.order {
            Some(o) => o[self.start + k] as usize,
            None => self.start + k,
        }
    }
}

/// Field names of one candidate's columns, for error messages.
struct Who {
    tokens: &'static str,
    prm: &'static str,
    state: &'static str,
}

const WEAK: Who = Who {
    tokens: "weak_tokens",
    prm: "weak_prm",
    state: "weak_state",
};
const STRONG: Who = Who {
    tokens: "strong_tokens",
    prm: "strong_prm",
    state: "strong_state",
};

/// Per-tree scratch state, reused across trees.
pub(super) struct TreeChecker<'a> {
    src: &'a Source<'a>,
    /// Node id → local index, for trees whose ids are dense (`NONE` = unused).
    slot: Vec<u32>,
    /// Node id → local index, for trees with sparse ids.
    sparse: HashMap<u32, u32>,
    dense: bool,
    /// Local index → local index of the continue / regenerate child.
    kids: Vec<[u32; 2]>,
    /// Local indices in forest order (depth-first, continue child first).
    order: Vec<u32>,
    /// Scratch stack of the depth-first walk.
    stack: Vec<u32>,
    /// Local index → forest node index (`NONE` until reached).
    pos: Vec<u32>,
}

impl<'a> TreeChecker<'a> {
    pub fn new(src: &'a Source<'a>) -> Self {
        TreeChecker {
            src,
            slot: vec![],
            sparse: HashMap::new(),
            dense: true,
            kids: vec![],
            order: vec![],
            stack: vec![],
            pos: vec![],
        }
    }

    /// Check one tree and push it into `fb`; `forest_row` receives each pushed node's row.
    pub fn tree(
        &mut self,
        rows: TreeRows<'_>,
        fb: &mut ForestBuilder,
        forest_row: &mut Vec<u32>,
    ) -> Result<()> {
        self.reset(rows);
        let result = self.check_and_emit(rows, fb, forest_row);
        self.clear_ids(rows);
        result
    }

    fn check_and_emit(
        &mut self,
        rows: TreeRows<'_>,
        fb: &mut ForestBuilder,
        forest_row: &mut Vec<u32>,
    ) -> Result<()> {
        let root = self.pass_ids_and_roots(rows)?;
        self.pass_links(rows)?;
        self.pass_reach(rows, root)?;
        self.pass_depths_and_branches(rows)?;
        self.emit(rows, fb, forest_row);
        Ok(())
    }

    /// Size the scratch buffers for a tree of `rows.len` nodes and pick the id index.
    fn reset(&mut self, rows: TreeRows<'_>) {
        let t = self.src.table;
        let m = rows.len;
        let max_id = (0..m).map(|k| t.node[rows.row(k)]).max().unwrap_or(0) as usize;
        self.dense = max_id <= 2 * m + 64;
        if self.dense && self.slot.len() <= max_id {
            self.slot.resize(max_id + 1, NONE);
        }
        self.sparse.clear();
        self.kids.clear();
        self.kids.resize(m, [NONE; 2]);
        self.pos.clear();
        self.pos.resize(m, NONE);
        self.order.clear();
    }

    /// Return the dense id slots to `NONE` (only the ids this tree used).
    fn clear_ids(&mut self, rows: TreeRows<'_>) {
        if self.dense {
            let t = self.src.table;
            for k in 0..rows.len {
                self.slot[t.node[rows.row(k)] as usize] = NONE;
            }
        }
    }

    #[inline(always)]
    fn local_of(&self, id: u32) -> Option<u32> {
        if self.dense {
            self.slot.get(id as usize).copied().filter(|&l| l != NONE)
        } else {
            self.sparse.get(&id).copied()
        }
    }

    /// Record `id` at local `k`; false when the id is already taken.
    #[inline(always)]
    fn insert_id(&mut self, id: u32, k: u32) -> bool {
        if self.dense {
            let s = &mut self.slot[id as usize];
            let fresh = *s == NONE;
            if fresh {
                *s = k;
            }
            fresh
        } else {
            use std::collections::hash_map::Entry;
            match self.sparse.entry(id) {
                Entry::Occupied(_) => false,
                Entry::Vacant(v) => {
                    v.insert(k);
                    true
                }
            }
        }
    }

    /// Pass 1: unique ids, candidate ranges, parent/action pairing, one root at depth 0.
    fn pass_ids_and_roots(&mut self, rows: TreeRows<'_>) -> Result<u32> {
        let (src, t) = (self.src, self.src.table);
        let mut root: Option<usize> = None;
        for k in 0..rows.len {
            let i = rows.row(k);
            if !self.insert_id(t.node[i], k as u32) {
                return Err(src.err(i, Some("node"), "duplicate node id in this tree"));
            }
            let f = t.flags[i];
            check_candidate(
                src,
                i,
                t.weak_tokens[i],
                t.weak_prm[i],
                f.has(F::WEAK_STATE).then_some(t.weak_state[i]),
                &WEAK,
            )?;
            if f.has(F::STRONG) {
                let state = f.has(F::STRONG_STATE).then_some(t.strong_state[i]);
                check_candidate(src, i, t.strong_tokens[i], t.strong_prm[i], state, &STRONG)?;
            }
            match (f.has(F::PARENT), f.has(F::ACTION)) {
                (false, false) => {
                    if let Some(other) = root {
                        let other = t.node[rows.row(other)];
                        let why = format!("second root in this tree (node {other} is also a root)");
                        return Err(src.err(i, Some("parent"), why));
                    }
                    if t.depth[i] != 0 {
                        return Err(src.err(i, Some("depth"), "root must have depth 0"));
                    }
                    root = Some(k);
                }
                (true, false) => {
                    return Err(src.err(i, Some("action"), "non-root node without an action"));
                }
                (false, true) => {
                    return Err(src.err(i, Some("parent"), "node has an action but no parent"));
                }
                (true, true) if t.action[i] > 1 => {
                    let why = format!(
                        "action {} is not 0 (continue) or 1 (regenerate)",
                        t.action[i]
                    );
                    return Err(src.err(i, Some("action"), why));
                }
                (true, true) => {}
            }
        }
        let why = "tree has no root (a node without parent)";
        root.map(|k| k as u32)
            .ok_or_else(|| src.err(rows.row(0), Some("parent"), why))
    }

    /// Pass 2: every parent exists in the tree; at most one child per (parent, action).
    fn pass_links(&mut self, rows: TreeRows<'_>) -> Result<()> {
        let (src, t) = (self.src, self.src.table);
        for k in 0..rows.len {
            let i = rows.row(k);
            if !t.flags[i].has(F::PARENT) {
                continue;
            }
            let (pa, a) = (t.parent[i], t.action[i] as usize);
            let Some(pl) = self.local_of(pa) else {
                let why = format!("orphan: parent node {pa} does not exist in this tree");
                return Err(src.err(i, Some("parent"), why));
            };
            let slot = &mut self.kids[pl as usize][a];
            if *slot != NONE {
                let other = t.node[rows.row(*slot as usize)];
                let name = if a == 0 { "continue" } else { "regenerate" };
                let why = format!(
                    "duplicate branch: node {other} is already the {name} child of node {pa}"
                );
                return Err(src.err(i, Some("action"), why));
            }
            *slot = k as u32;
        }
        Ok(())
    }

    /// Pass 3: depth-first pre-order from the root, continue child first; a node it misses is on
    /// a parent-link cycle (its parent chain never reaches the root). Marks reached nodes in `pos`.
    ///
    /// Why this order: the forest is laid out in it, so a run of `continue` actions (most steps
    /// of most policies) reads consecutive nodes of every column and the replay loop streams
    /// through memory instead of missing the cache at each step once the forest outgrows it.
    fn pass_reach(&mut self, rows: TreeRows<'_>, root: u32) -> Result<()> {
        self.stack.clear();
        self.stack.push(root);
        while let Some(l) = self.stack.pop() {
            if self.pos[l as usize] != NONE {
                continue;
            }
            self.pos[l as usize] = self.order.len() as u32;
            self.order.push(l);
            let [c, r] = self.kids[l as usize];
            for k in [r, c] {
                if k != NONE && self.pos[k as usize] == NONE {
                    self.stack.push(k);
                }
            }
        }
        if self.order.len() == rows.len {
            return Ok(());
        }
        // Walk up from the first unreached node until a node repeats: that closes the cycle.
        let t = self.src.table;
        let mut seen = vec![false; rows.len];
        let mut k = self.pos.iter().position(|&p| p == NONE).unwrap_or(0);
        while !seen[k] {
            seen[k] = true;
            let parent = t.parent[rows.row(k)];
            match self.local_of(parent) {
                Some(l) => k = l as usize,
                None => break,
            }
        }
        Err(self
            .src
            .err(rows.row(k), Some("parent"), "cycle in parent links"))
    }

    /// Pass 4: depth = parent depth + 1; outcomes and children agree with the candidates.
    fn pass_depths_and_branches(&self, rows: TreeRows<'_>) -> Result<()> {
        let (src, t) = (self.src, self.src.table);
        for k in 0..rows.len {
            let i = rows.row(k);
            if t.flags[i].has(F::PARENT)
                && let Some(pl) = self.local_of(t.parent[i])
            {
                let pd = t.depth[rows.row(pl as usize)];
                if u32::from(t.depth[i]) != u32::from(pd) + 1 {
                    let why = format!("depth {} but parent depth is {pd}", t.depth[i]);
                    return Err(src.err(i, Some("depth"), why));
                }
            }
            let kids = self.kids[k];
            check_branches(src, i, [kids[0] != NONE, kids[1] != NONE])?;
        }
        Ok(())
    }

    /// Push the tree in the order of [`Self::pass_reach`].
    fn emit(&self, rows: TreeRows<'_>, fb: &mut ForestBuilder, forest_row: &mut Vec<u32>) {
        let t = self.src.table;
        fb.begin_tree();
        let base = fb.next_index();
        for &l in &self.order {
            let i = rows.row(l as usize);
            let f = t.flags[i];
            let kids = self.kids[l as usize];
            let branch = |a: usize, set: u16, correct: u16| match kids[a] {
                NONE => match f.opt_bool(set, correct) {
                    Some(c) => Branch::Outcome(c),
                    None => Branch::Absent,
                },
                c => Branch::Node(base + self.pos[c as usize]),
            };
            let strong = f.has(F::STRONG).then(|| Candidate {
                tokens: t.strong_tokens[i],
                prm: t.strong_prm[i],
            });
            fb.push_node(
                t.depth[i],
                Candidate {
                    tokens: t.weak_tokens[i],
                    prm: t.weak_prm[i],
                },
                strong,
                [
                    branch(0, F::CONTINUE_SET, F::CONTINUE_CORRECT),
                    branch(1, F::REGENERATE_SET, F::REGENERATE_CORRECT),
                ],
            );
            forest_row.push(i as u32);
        }
    }
}

/// Tokens ≥ 1, PRM score finite and in [0, 1], state in {0, 1, 2}.
#[inline]
fn check_candidate(
    src: &Source<'_>,
    i: usize,
    tokens: u32,
    prm: f32,
    state: Option<u8>,
    who: &Who,
) -> Result<()> {
    if tokens == 0 {
        return Err(src.err(i, Some(who.tokens), "tokens must be >= 1"));
    }
    if !prm.is_finite() {
        return Err(src.err(i, Some(who.prm), "PRM score is NaN or infinite"));
    }
    if !(0.0..=1.0).contains(&prm) {
        let why = format!("PRM score {prm} outside [0, 1]");
        return Err(src.err(i, Some(who.prm), why));
    }
    if let Some(s) = state
        && s > 2
    {
        let why = format!("state {s} is not 0 (S0), 1 (S1) or 2 (S2)");
        return Err(src.err(i, Some(who.state), why));
    }
    Ok(())
}

/// Outcomes, finished flags and children agree; at least one action is available.
fn check_branches(src: &Source<'_>, i: usize, has_child: [bool; 2]) -> Result<()> {
    let f = src.table.flags[i];
    let weak_fin = f.has(F::WEAK_FINISHED);
    let bad = |field: &str, why: &str| Err(src.err(i, Some(field), why));
    match (weak_fin, f.has(F::CONTINUE_SET)) {
        (true, false) => {
            return bad(
                "continue_correct",
                "weak candidate is finished but has no outcome",
            );
        }
        (false, true) => {
            return bad(
                "continue_correct",
                "outcome given but the weak candidate is not finished",
            );
        }
        _ => {}
    }
    if weak_fin && has_child[0] {
        return bad(
            "weak_finished",
            "a continue child exists below a finished weak candidate",
        );
    }
    let strong = f.has(F::STRONG);
    let strong_fin = strong && f.has(F::STRONG_FINISHED);
    if !strong {
        if f.has(F::REGENERATE_SET) {
            return bad(
                "regenerate_correct",
                "outcome given but there is no strong candidate",
            );
        }
        if has_child[1] {
            return bad(
                "strong_tokens",
                "a regenerate child exists but the node has no strong candidate",
            );
        }
    } else {
        match (strong_fin, f.has(F::REGENERATE_SET)) {
            (true, false) => {
                return bad(
                    "regenerate_correct",
                    "strong candidate is finished but has no outcome",
                );
            }
            (false, true) => {
                return bad(
                    "regenerate_correct",
                    "outcome given but the strong candidate is not finished",
                );
            }
            _ => {}
        }
        if strong_fin && has_child[1] {
            return bad(
                "strong_finished",
                "a regenerate child exists below a finished strong candidate",
            );
        }
    }
    let can_continue = weak_fin || has_child[0];
    let can_regenerate = strong_fin || has_child[1];
    if !can_continue && !can_regenerate {
        let why = "dead end: neither action leads to a node or an outcome";
        return Err(src.err(i, None, why));
    }
    Ok(())
}
