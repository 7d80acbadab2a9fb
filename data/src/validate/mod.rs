//! Validate datasets against every tree invariant and build the replay [`Forest`].
//!
//! There is one validator, over the column-wise [`NodeTable`]: files are decoded straight into
//! it ([`load_forest`], [`load_with`]) and in-memory rows are converted to it ([`validate`]).
//!
//! Invariants (each violation is a [`DataError`] naming file, row/line, problem, tree, node and
//! field): unique node ids per tree; exactly one root per tree (no parent, no action, depth 0);
//! every parent exists in the same tree (no orphans); parent links are acyclic; depth = parent
//! depth + 1; at most one child per (parent, action); tokens ≥ 1; PRM scores finite and in
//! [0, 1]; states in {0, 1, 2}; a finished candidate leads to an outcome and has no child; an
//! unfinished one has no outcome; a regenerate branch needs a strong candidate; every node
//! offers at least one action; every problem has nodes.

mod order;
mod signals;
mod tree;

use std::collections::BTreeMap;
use std::path::Path;

use trim_env::{Forest, ForestBuilder};

use crate::error::{DataError, Loc, Result};
use crate::io::{Decoded, Integrity, LoadOptions, read_decoded};
use crate::schema::{Dataset, Meta, NodeStates, NodeTable, ProblemInfo};
use order::Group;

/// A validated dataset with its rows (the exchange form: importers, `convert`, audit text).
pub struct Loaded {
    pub ds: Dataset,
    /// The struct-of-arrays forest; forest problem `p` is `ds.problems[p]`.
    pub forest: Forest,
    /// Row of `ds.rows` behind each forest node.
    pub forest_row: Vec<u32>,
}

/// A validated dataset without per-row structs: what replay, training, evaluation and
/// statistics need, at a fraction of [`Loaded`]'s memory (no rows, no audit text).
pub struct LoadedForest {
    pub meta: Meta,
    /// Forest problem `p` is `problems[p]`.
    pub problems: Vec<ProblemInfo>,
    pub forest: Forest,
    /// File row (0-based) behind each forest node.
    pub forest_row: Vec<u32>,
    /// Correctness states of each forest node's candidates (statistics only).
    pub states: Vec<NodeStates>,
    /// Whether the file's checksum was verified.
    pub integrity: Integrity,
}

fn problems_in_split(problems: &[ProblemInfo], split: &str) -> Vec<u32> {
    (0..problems.len() as u32)
        .filter(|&p| split == "all" || problems[p as usize].split == split)
        .collect()
}

fn splits(problems: &[ProblemInfo]) -> Vec<(String, usize)> {
    let mut m: BTreeMap<String, usize> = BTreeMap::new();
    for p in problems {
        *m.entry(p.split.clone()).or_default() += 1;
    }
    m.into_iter().collect()
}

impl Loaded {
    /// Indices of the problems whose split is `split` (all problems for `"all"`).
    pub fn problems_in_split(&self, split: &str) -> Vec<u32> {
        problems_in_split(&self.ds.problems, split)
    }

    /// Split names with their problem counts, sorted by name.
    pub fn splits(&self) -> Vec<(String, usize)> {
        splits(&self.ds.problems)
    }
}

impl LoadedForest {
    /// Indices of the problems whose split is `split` (all problems for `"all"`).
    pub fn problems_in_split(&self, split: &str) -> Vec<u32> {
        problems_in_split(&self.problems, split)
    }

    /// Split names with their problem counts, sorted by name.
    pub fn splits(&self) -> Vec<(String, usize)> {
        splits(&self.problems)
    }
}

/// Read and validate a dataset file, with rows; unverified files are accepted only when
/// `TRIM_ALLOW_UNVERIFIED=1` ([`LoadOptions::from_env`]).
pub fn load(path: &Path) -> Result<Loaded> {
    load_with(path, &LoadOptions::from_env())
}

/// Read and validate a dataset file, with rows.
pub fn load_with(path: &Path, opts: &LoadOptions) -> Result<Loaded> {
    let d = read_decoded(path, opts, true)?;
    let (_, forest, forest_row) = verified_forest(path, opts, &d)?;
    Ok(Loaded {
        ds: d.into_dataset(),
        forest,
        forest_row,
    })
}

/// Read and validate a dataset file into a forest, column-wise, without rows: the fast,
/// memory-lean path for replay.
pub fn load_forest(path: &Path, opts: &LoadOptions) -> Result<LoadedForest> {
    let d = read_decoded(path, opts, false)?;
    let (integrity, forest, forest_row) = verified_forest(path, opts, &d)?;
    let Decoded {
        meta,
        problems,
        table,
        ..
    } = d;
    let states = forest_row
        .iter()
        .map(|&r| table.states(r as usize))
        .collect();
    Ok(LoadedForest {
        meta,
        problems,
        forest,
        forest_row,
        states,
        integrity,
    })
}

/// Verify the checksum and validate, side by side (both only read the table); a checksum
/// failure wins, since it explains any invariant a damaged file breaks.
fn verified_forest(
    path: &Path,
    opts: &LoadOptions,
    d: &Decoded,
) -> Result<(Integrity, Forest, Vec<u32>)> {
    let src = Source {
        path,
        problems: &d.problems,
        table: &d.table,
        lines: d.lines.as_deref(),
    };
    let (integrity, built) = rayon::join(|| d.verify(path, opts), || build_forest(&src));
    let integrity = integrity?;
    let (forest, forest_row) = built?;
    Ok((integrity, forest, forest_row))
}

/// Check every invariant of `ds` (read from `path`) and build the forest.
pub fn validate(path: &Path, ds: Dataset) -> Result<Loaded> {
    let table = NodeTable::from_rows(ds.rows.iter(), |r| r.problem);
    let (forest, forest_row) = build_forest(&Source {
        path,
        problems: &ds.problems,
        table: &table,
        lines: ds.lines.as_deref(),
    })?;
    Ok(Loaded {
        ds,
        forest,
        forest_row,
    })
}

/// What the validator reads, and how it names places in errors.
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub problems: &'a [ProblemInfo],
    pub table: &'a NodeTable,
    /// JSONL line of each row.
    pub lines: Option<&'a [u32]>,
}

impl Source<'_> {
    /// An error at row `i`, naming its problem, tree and node.
    pub fn err(&self, i: usize, field: Option<&str>, reason: impl Into<String>) -> DataError {
        let t = self.table;
        DataError::new(
            self.path,
            Loc::Node {
                problem: self.problems[t.problem[i] as usize].problem_id.clone(),
                tree: t.tree[i],
                node: t.node[i],
                row: i,
                line: self.lines.and_then(|l| l.get(i)).map(|&l| l as usize),
            },
            field,
            reason,
        )
    }
}

/// Problem indices in range and every problem with at least one node.
fn check_problems(src: &Source<'_>) -> Result<()> {
    let n = src.problems.len();
    let mut has_nodes = vec![false; n];
    for (i, &p) in src.table.problem.iter().enumerate() {
        let Some(h) = has_nodes.get_mut(p as usize) else {
            let why = format!("problem index {p} out of range ({n} problems)");
            return Err(DataError::new(src.path, Loc::Row(i), Some("problem"), why));
        };
        *h = true;
    }
    match has_nodes.iter().position(|&h| !h) {
        Some(p) => Err(DataError::new(
            src.path,
            Loc::Problem(src.problems[p].problem_id.clone()),
            None,
            "problem has no nodes",
        )),
        None => Ok(()),
    }
}

/// Run every check and build the forest and the row behind each forest node.
fn build_forest(src: &Source<'_>) -> Result<(Forest, Vec<u32>)> {
    let t = src.table;
    if t.is_empty() {
        return Err(DataError::file(src.path, "dataset has no nodes"));
    }
    check_problems(src)?;
    signals::check(src)?;
    let order = order::group_order(t);
    let mut fb = ForestBuilder::with_capacity(t.len());
    let mut forest_row = Vec::with_capacity(t.len());
    let mut checker = tree::TreeChecker::new(src);
    order::for_each_tree(t, order.as_deref(), |g| {
        match g {
            Group::Problem => fb.begin_problem(),
            Group::Tree(rows) => checker.tree(rows, &mut fb, &mut forest_row)?,
        }
        Ok(())
    })?;
    drop(order);
    let internal = |e| DataError::file(src.path, format!("internal forest check failed: {e}"));
    let mut forest = fb.finish().map_err(internal)?;
    forest
        .set_signals(signals::forest_columns(t, &forest_row))
        .map_err(internal)?;
    Ok((forest, forest_row))
}
