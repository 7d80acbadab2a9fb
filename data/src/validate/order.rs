//! Grouping rows into problems and sample trees without moving them: the validator walks the
//! rows of each (problem, tree) in file order, problems in index order and trees in ascending
//! id order. Files written by trim are already grouped, so the common case costs one scan and
//! no allocation; otherwise a stable sort of row indices by (problem, tree) gives the order.

use super::tree::TreeRows;
use crate::error::Result;
use crate::schema::NodeTable;

/// Row indices in (problem, tree, file) order, or `None` when the file order already is.
pub(super) fn group_order(t: &NodeTable) -> Option<Vec<u32>> {
    let key = |i: usize| (t.problem[i], t.tree[i]);
    if (1..t.len()).all(|i| key(i - 1) <= key(i)) {
        return None;
    }
    let mut order: Vec<u32> = (0..t.len() as u32).collect();
    order.sort_by_key(|&i| key(i as usize));
    Some(order)
}

/// One step of the walk.
pub(super) enum Group<'a> {
    /// The next problem starts.
    Problem,
    /// A sample tree of the current problem.
    Tree(TreeRows<'a>),
}

/// Call `f` for each problem and each of its trees, in order.
pub(super) fn for_each_tree<'a>(
    t: &NodeTable,
    order: Option<&'a [u32]>,
    mut f: impl FnMut(Group<'a>) -> Result<()>,
) -> Result<()> {
    let row = |k: usize| order.map_or(k, |o| o[k] as usize);
    let n = t.len();
    let mut start = 0;
    while start < n {
        let first = row(start);
        let (p, tree) = (t.problem[first], t.tree[first]);
        if start == 0 || t.problem[row(start - 1)] != p {
            f(Group::Problem)?;
        }
        let mut end = start + 1;
        while end < n && t.problem[row(end)] == p && t.tree[row(end)] == tree {
            end += 1;
        }
        f(Group::Tree(TreeRows {
            order,
            start,
            len: end - start,
        }))?;
        start = end;
    }
    Ok(())
}
