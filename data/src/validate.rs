//! Validate node rows against every tree invariant and build the replay [`Forest`].
//!
//! Invariants (each violation is a [`DataError`] naming file, row/line, problem, tree, node and
//! field): unique node ids per tree; exactly one root per tree (no parent, no action, depth 0);
//! every parent exists in the same tree (no orphans); parent links are acyclic; depth = parent
//! depth + 1; at most one child per (parent, action); tokens ≥ 1; PRM scores finite and in
//! [0, 1]; states in {0, 1, 2}; a finished candidate leads to an outcome and has no child; an
//! unfinished one has no outcome; a regenerate branch needs a strong candidate; every node
//! offers at least one action.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use trim_env::{Branch, Candidate, Forest, ForestBuilder};

use crate::error::{DataError, Loc, Result};
use crate::schema::{CandidateRec, Dataset, NodeRow};

/// A validated dataset, ready for replay.
pub struct Loaded {
    pub ds: Dataset,
    /// The struct-of-arrays forest; forest problem `p` is `ds.problems[p]`.
    pub forest: Forest,
    /// Row of `ds.rows` behind each forest node.
    pub forest_row: Vec<u32>,
}

impl Loaded {
    /// Indices of the problems whose split is `split` (all problems for `"all"`).
    pub fn problems_in_split(&self, split: &str) -> Vec<u32> {
        (0..self.ds.problems.len() as u32)
            .filter(|&p| split == "all" || self.ds.problems[p as usize].split == split)
            .collect()
    }

    /// Split names with their problem counts, sorted by name.
    pub fn splits(&self) -> Vec<(String, usize)> {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for p in &self.ds.problems {
            *m.entry(p.split.clone()).or_default() += 1;
        }
        m.into_iter().collect()
    }
}

/// Read and validate a dataset file.
pub fn load(path: &Path) -> Result<Loaded> {
    let ds = crate::io::read_dataset(path)?;
    validate(path, ds)
}

struct Ctx<'a> {
    path: &'a Path,
    ds: &'a Dataset,
}

impl Ctx<'_> {
    fn err(&self, row: usize, field: Option<&str>, reason: impl Into<String>) -> DataError {
        let r = &self.ds.rows[row];
        DataError::new(
            self.path,
            Loc::Node {
                problem: self.ds.problems[r.problem as usize].problem_id.clone(),
                tree: r.tree,
                node: r.node,
                row,
                line: self.ds.lines.as_ref().map(|l| l[row] as usize),
            },
            field,
            reason,
        )
    }

    fn check_candidate(&self, row: usize, c: &CandidateRec, who: &str) -> Result<()> {
        if c.tokens == 0 {
            return Err(self.err(row, Some(&format!("{who}_tokens")), "tokens must be >= 1"));
        }
        if !c.prm.is_finite() {
            return Err(self.err(
                row,
                Some(&format!("{who}_prm")),
                "PRM score is NaN or infinite",
            ));
        }
        if !(0.0..=1.0).contains(&c.prm) {
            return Err(self.err(
                row,
                Some(&format!("{who}_prm")),
                format!("PRM score {} outside [0, 1]", c.prm),
            ));
        }
        if let Some(s) = c.state
            && s > 2
        {
            return Err(self.err(
                row,
                Some(&format!("{who}_state")),
                format!("state {s} is not 0 (S0), 1 (S1) or 2 (S2)"),
            ));
        }
        Ok(())
    }
}

/// Check every invariant of `ds` (read from `path`) and build the forest.
pub fn validate(path: &Path, ds: Dataset) -> Result<Loaded> {
    if ds.rows.is_empty() {
        return Err(DataError::file(path, "dataset has no nodes"));
    }
    let cx = Ctx { path, ds: &ds };
    // Group rows by problem, then by tree (BTreeMap: trees in ascending id order).
    let mut groups: Vec<BTreeMap<u32, Vec<usize>>> = vec![BTreeMap::new(); ds.problems.len()];
    for (i, r) in ds.rows.iter().enumerate() {
        groups[r.problem as usize]
            .entry(r.tree)
            .or_default()
            .push(i);
    }
    for (p, g) in groups.iter().enumerate() {
        if g.is_empty() {
            return Err(DataError::new(
                path,
                Loc::Problem(ds.problems[p].problem_id.clone()),
                None,
                "problem has no nodes",
            ));
        }
    }

    let mut fb = ForestBuilder::with_capacity(ds.rows.len());
    let mut forest_row = Vec::with_capacity(ds.rows.len());
    let mut id_to_row: HashMap<u32, usize> = HashMap::new();
    let mut children: HashMap<(u32, u8), usize> = HashMap::new();
    let mut reach: HashMap<u32, u8> = HashMap::new();
    for g in &groups {
        fb.begin_problem();
        for rows in g.values() {
            id_to_row.clear();
            children.clear();
            reach.clear();
            let mut root: Option<usize> = None;
            for &i in rows {
                let r = &ds.rows[i];
                if id_to_row.insert(r.node, i).is_some() {
                    return Err(cx.err(i, Some("node"), "duplicate node id in this tree"));
                }
                cx.check_candidate(i, &r.weak, "weak")?;
                if let Some(s) = &r.strong {
                    cx.check_candidate(i, s, "strong")?;
                }
                match (r.parent, r.action) {
                    (None, None) => {
                        if let Some(other) = root {
                            return Err(cx.err(
                                i,
                                Some("parent"),
                                format!(
                                    "second root in this tree (node {} is also a root)",
                                    ds.rows[other].node
                                ),
                            ));
                        }
                        if r.depth != 0 {
                            return Err(cx.err(i, Some("depth"), "root must have depth 0"));
                        }
                        root = Some(i);
                    }
                    (Some(_), None) => {
                        return Err(cx.err(i, Some("action"), "non-root node without an action"));
                    }
                    (None, Some(_)) => {
                        return Err(cx.err(i, Some("parent"), "node has an action but no parent"));
                    }
                    (Some(_), Some(a)) if a > 1 => {
                        return Err(cx.err(
                            i,
                            Some("action"),
                            format!("action {a} is not 0 (continue) or 1 (regenerate)"),
                        ));
                    }
                    (Some(_), Some(_)) => {}
                }
            }
            let Some(root) = root else {
                return Err(cx.err(
                    rows[0],
                    Some("parent"),
                    "tree has no root (a node without parent)",
                ));
            };
            // Parents exist; at most one child per (parent, action).
            for &i in rows {
                let r = &ds.rows[i];
                if let (Some(pa), Some(a)) = (r.parent, r.action) {
                    if !id_to_row.contains_key(&pa) {
                        return Err(cx.err(
                            i,
                            Some("parent"),
                            format!("orphan: parent node {pa} does not exist in this tree"),
                        ));
                    }
                    if let Some(other) = children.insert((pa, a), i) {
                        return Err(cx.err(
                            i,
                            Some("action"),
                            format!(
                                "duplicate branch: node {} is already the {} child of node {pa}",
                                ds.rows[other].node,
                                if a == 0 { "continue" } else { "regenerate" }
                            ),
                        ));
                    }
                }
            }
            // Acyclic: every node must reach the root through parent links.
            // reach: 1 = on the current walk, 2 = reaches the root.
            reach.insert(ds.rows[root].node, 2);
            let mut walk = vec![];
            for &i in rows {
                let mut id = ds.rows[i].node;
                walk.clear();
                loop {
                    match reach.get(&id) {
                        Some(2) => break,
                        Some(_) => {
                            return Err(cx.err(
                                id_to_row[&id],
                                Some("parent"),
                                "cycle in parent links",
                            ));
                        }
                        None => {
                            reach.insert(id, 1);
                            walk.push(id);
                            id = ds.rows[id_to_row[&id]]
                                .parent
                                .expect("non-root nodes have parents");
                        }
                    }
                }
                for id in &walk {
                    reach.insert(*id, 2);
                }
            }
            // Depths and branch consistency.
            for &i in rows {
                let r = &ds.rows[i];
                if let Some(pa) = r.parent {
                    let pd = ds.rows[id_to_row[&pa]].depth;
                    if u32::from(r.depth) != u32::from(pd) + 1 {
                        return Err(cx.err(
                            i,
                            Some("depth"),
                            format!("depth {} but parent depth is {pd}", r.depth),
                        ));
                    }
                }
                check_branches(&cx, i, r, &children)?;
            }
            // Emit the tree breadth-first so children get indices after their parents.
            fb.begin_tree();
            let base = fb.next_index();
            let mut order = vec![root];
            let mut k = 0;
            while k < order.len() {
                let r = &ds.rows[order[k]];
                for a in 0..2u8 {
                    if let Some(&c) = children.get(&(r.node, a)) {
                        order.push(c);
                    }
                }
                k += 1;
            }
            let mut pos: HashMap<usize, u32> = HashMap::with_capacity(order.len());
            for (k, &i) in order.iter().enumerate() {
                pos.insert(i, base + k as u32);
            }
            for &i in &order {
                let r = &ds.rows[i];
                let branch = |a: u8, outcome: Option<bool>| match children.get(&(r.node, a)) {
                    Some(c) => Branch::Node(pos[c]),
                    None => outcome.map_or(Branch::Absent, Branch::Outcome),
                };
                fb.push_node(
                    r.depth,
                    Candidate {
                        tokens: r.weak.tokens,
                        prm: r.weak.prm,
                    },
                    r.strong.as_ref().map(|s| Candidate {
                        tokens: s.tokens,
                        prm: s.prm,
                    }),
                    [
                        branch(0, r.continue_correct),
                        branch(1, r.regenerate_correct),
                    ],
                );
                forest_row.push(i as u32);
            }
        }
    }
    let forest = fb
        .finish()
        .map_err(|e| DataError::file(path, format!("internal forest check failed: {e}")))?;
    Ok(Loaded {
        ds,
        forest,
        forest_row,
    })
}

fn check_branches(
    cx: &Ctx<'_>,
    i: usize,
    r: &NodeRow,
    children: &HashMap<(u32, u8), usize>,
) -> Result<()> {
    let has_child = |a: u8| children.contains_key(&(r.node, a));
    // Continue branch.
    match (r.weak.finished, r.continue_correct) {
        (true, None) => {
            return Err(cx.err(
                i,
                Some("continue_correct"),
                "weak candidate is finished but has no outcome",
            ));
        }
        (false, Some(_)) => {
            return Err(cx.err(
                i,
                Some("continue_correct"),
                "outcome given but the weak candidate is not finished",
            ));
        }
        _ => {}
    }
    if r.weak.finished && has_child(0) {
        return Err(cx.err(
            i,
            Some("weak_finished"),
            "a continue child exists below a finished weak candidate",
        ));
    }
    // Regenerate branch.
    match &r.strong {
        None => {
            if r.regenerate_correct.is_some() {
                return Err(cx.err(
                    i,
                    Some("regenerate_correct"),
                    "outcome given but there is no strong candidate",
                ));
            }
            if has_child(1) {
                return Err(cx.err(
                    i,
                    Some("strong_tokens"),
                    "a regenerate child exists but the node has no strong candidate",
                ));
            }
        }
        Some(s) => {
            match (s.finished, r.regenerate_correct) {
                (true, None) => {
                    return Err(cx.err(
                        i,
                        Some("regenerate_correct"),
                        "strong candidate is finished but has no outcome",
                    ));
                }
                (false, Some(_)) => {
                    return Err(cx.err(
                        i,
                        Some("regenerate_correct"),
                        "outcome given but the strong candidate is not finished",
                    ));
                }
                _ => {}
            }
            if s.finished && has_child(1) {
                return Err(cx.err(
                    i,
                    Some("strong_finished"),
                    "a regenerate child exists below a finished strong candidate",
                ));
            }
        }
    }
    let can_continue = r.weak.finished || has_child(0);
    let can_regen = r.strong.as_ref().is_some_and(|s| s.finished) || has_child(1);
    if !can_continue && !can_regen {
        return Err(cx.err(
            i,
            None,
            "dead end: neither action leads to a node or an outcome",
        ));
    }
    Ok(())
}
