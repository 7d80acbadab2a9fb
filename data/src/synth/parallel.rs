//! Problems built in parallel and assembled in order: each problem's trees are written into a
//! builder of its own on a worker thread (from the problem's own RNG stream), then the problems
//! are concatenated in index order, so the dataset does not depend on the thread count.

use rayon::prelude::*;

use crate::build::DatasetBuilder;
use crate::schema::{Meta, NodeRow, ProblemInfo};

use super::progress::{OnProgress, Progress};

/// One problem and its node rows (problem index 0 until assembled).
pub(crate) type Built = (ProblemInfo, Vec<NodeRow>);

/// Build problem `info` alone: `write` gets a builder that holds only it, and its index.
pub(crate) fn one_problem(
    info: ProblemInfo,
    write: impl FnOnce(&mut DatasetBuilder, u32),
) -> Built {
    let mut b = DatasetBuilder::new(Meta::new(""));
    let p = b.add_problem(info.clone());
    write(&mut b, p);
    (info, b.finish().rows)
}

/// Build problems `0..n` with `build` in parallel, reporting one [`Progress::Advance`] per
/// problem, and assemble them in index order.
pub(crate) fn build_problems(
    n: usize,
    on_progress: OnProgress<'_>,
    build: impl Fn(usize) -> Built + Sync,
) -> (Vec<ProblemInfo>, Vec<NodeRow>) {
    on_progress(Progress::Start {
        total: n as u64,
        unit: "problems",
    });
    let built: Vec<Built> = (0..n)
        .into_par_iter()
        .map(|p| {
            let b = build(p);
            on_progress(Progress::Advance);
            b
        })
        .collect();
    on_progress(Progress::Finish);
    let mut problems = Vec::with_capacity(built.len());
    let mut rows = Vec::with_capacity(built.iter().map(|b| b.1.len()).sum());
    for (p, (info, mut r)) in built.into_iter().enumerate() {
        for row in &mut r {
            row.problem = p as u32;
        }
        rows.append(&mut r);
        problems.push(info);
    }
    (problems, rows)
}
