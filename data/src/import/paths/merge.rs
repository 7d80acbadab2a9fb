//! The merge: checked rows grouped into traces and problems, each trace checked as a whole
//! (contiguous steps, one outcome, finished exactly at its end) and placed into the first sample
//! tree of its problem it is consistent with, or a new one.

use std::collections::HashMap;
use std::path::Path;

use trim_env::Action;

use crate::build::DatasetBuilder;
use crate::error::{DataError, Loc, Result};
use crate::io::sha256_file;
use crate::schema::{Dataset, Meta, ProblemInfo, SourceRef};

use super::schema::{INFO_DEFAULTS, Options, Report, TraceRow, col};
use super::tree::{MNode, consistent, emit, insert};

/// A problem under construction: its fields (with where each was first given) and its trees.
struct MProblem {
    id: String,
    info: [Option<(String, Loc)>; 5],
    trees: Vec<Vec<MNode>>,
}

/// Rows grouped by trace and by problem, in order of first appearance.
struct Groups<'a> {
    /// Row indices of each trace, in file order.
    traces: Vec<Vec<usize>>,
    problems: Vec<MProblem>,
    problem_ix: HashMap<&'a str, usize>,
}

/// An error at `loc` of `path` naming `field`.
fn err(path: &Path, loc: &Loc, field: &str, reason: String) -> DataError {
    DataError::new(path, loc.clone(), Some(field), reason)
}

/// Merge checked rows (from `read_traces`) into trees. `path` names the input in errors.
pub fn merge(path: &Path, rows: &[(Loc, TraceRow)], opts: &Options) -> Result<(Dataset, Report)> {
    if rows.is_empty() {
        return Err(DataError::file(path, "no trace rows"));
    }
    let mut g = group(path, rows)?;
    for t in &g.traces {
        let (steps, correct) = check_trace(path, rows, t, opts)?;
        let prob = &mut g.problems[g.problem_ix[steps[0].problem_id.as_str()]];
        match prob
            .trees
            .iter_mut()
            .find(|tree| consistent(tree, &steps, correct))
        {
            Some(tree) => insert(tree, &steps, correct),
            None => {
                let mut tree = vec![];
                insert(&mut tree, &steps, correct);
                prob.trees.push(tree);
            }
        }
    }
    let mut b = DatasetBuilder::new(describe(path, opts));
    let mut report = Report {
        rows: rows.len(),
        traces: g.traces.len(),
        problems: g.problems.len(),
        ..Report::default()
    };
    for prob in &g.problems {
        let info = |k: usize| {
            prob.info[k]
                .as_ref()
                .map_or(INFO_DEFAULTS[k].to_string(), |(v, _)| v.clone())
        };
        let p = b.add_problem(ProblemInfo {
            problem_id: prob.id.clone(),
            dataset: info(0),
            split: info(1),
            weak_model: info(2),
            strong_model: info(3),
            prm_model: info(4),
        });
        for tree in &prob.trees {
            let mut tw = b.tree(p);
            emit(&mut tw, tree);
            report.trees += 1;
            report.nodes += tree.len();
        }
    }
    b.meta_mut().params = serde_json::json!({
        "max_steps": opts.max_steps,
        "rows": report.rows,
        "traces": report.traces,
        "trees": report.trees,
        "nodes": report.nodes,
    });
    Ok((b.finish(), report))
}

/// Group rows by trace and problem; a trace stays in one problem, and a problem's fields agree
/// on every row that gives them.
fn group<'a>(path: &Path, rows: &'a [(Loc, TraceRow)]) -> Result<Groups<'a>> {
    let mut trace_ix: HashMap<&str, usize> = HashMap::new();
    let mut g = Groups {
        traces: vec![],
        problems: vec![],
        problem_ix: HashMap::new(),
    };
    for (i, (loc, r)) in rows.iter().enumerate() {
        match trace_ix.get(r.trace_id.as_str()) {
            Some(&t) => {
                let (first_loc, first) = &rows[g.traces[t][0]];
                if first.problem_id != r.problem_id {
                    let reason = format!(
                        "trace `{}` belongs to problem `{}` ({first_loc}) but to `{}` here",
                        r.trace_id, first.problem_id, r.problem_id
                    );
                    return Err(err(path, loc, col::PROBLEM_ID, reason));
                }
                g.traces[t].push(i);
            }
            None => {
                trace_ix.insert(&r.trace_id, g.traces.len());
                g.traces.push(vec![i]);
            }
        }
        let problems = &mut g.problems;
        let p = *g.problem_ix.entry(&r.problem_id).or_insert_with(|| {
            problems.push(MProblem {
                id: r.problem_id.clone(),
                info: Default::default(),
                trees: vec![],
            });
            problems.len() - 1
        });
        agree_info(path, loc, r, &mut g.problems[p].info)?;
    }
    Ok(g)
}

/// Record the problem-level fields of row `r`, refusing a value that differs from an earlier one.
fn agree_info(
    path: &Path,
    loc: &Loc,
    r: &TraceRow,
    info: &mut [Option<(String, Loc)>; 5],
) -> Result<()> {
    for (k, v) in r.info.iter().enumerate() {
        let Some(v) = v else { continue };
        match &info[k] {
            None => info[k] = Some((v.clone(), loc.clone())),
            Some((prev, prev_loc)) if prev != v => {
                let reason = format!(
                    "problem `{}` has `{prev}` ({prev_loc}) and `{v}` here",
                    r.problem_id
                );
                return Err(err(path, loc, col::INFO[k], reason));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// One trace's rows in step order and its final correctness, after checking that its steps are
/// `0..n` exactly once, that it has one outcome, and that the kept candidate finishes exactly at
/// the last step (or the step cap ends it).
fn check_trace<'a>(
    path: &Path,
    rows: &'a [(Loc, TraceRow)],
    trace: &[usize],
    opts: &Options,
) -> Result<(Vec<&'a TraceRow>, bool)> {
    let mut idx = trace.to_vec();
    idx.sort_by_key(|&i| rows[i].1.step);
    let id = &rows[idx[0]].1.trace_id;
    for (k, &i) in idx.iter().enumerate() {
        let (loc, r) = &rows[i];
        if r.step as usize != k {
            let reason = if k > 0 && rows[idx[k - 1]].1.step == r.step {
                format!("duplicate step {} in trace `{id}`", r.step)
            } else if k == 0 {
                format!("trace `{id}` starts at step {}, not 0", r.step)
            } else {
                format!(
                    "trace `{id}` has no step {k}: steps are not contiguous ({} follows {})",
                    r.step,
                    k - 1
                )
            };
            return Err(err(path, loc, col::STEP, reason));
        }
    }
    let steps: Vec<(&Loc, &TraceRow)> = idx.iter().map(|&i| (&rows[i].0, &rows[i].1)).collect();
    let correct = trace_outcome(path, id, &steps)?;
    check_finish(path, id, &steps, opts.max_steps)?;
    let Some(correct) = correct else {
        let reason = format!("no row of trace `{id}` gives its final correctness");
        return Err(err(path, steps[steps.len() - 1].0, col::CORRECT, reason));
    };
    Ok((steps.into_iter().map(|(_, r)| r).collect(), correct))
}

/// The trace's final correctness, if a row gives it; rows that give it must agree.
fn trace_outcome(path: &Path, id: &str, steps: &[(&Loc, &TraceRow)]) -> Result<Option<bool>> {
    let mut correct: Option<(bool, &Loc)> = None;
    for &(loc, r) in steps {
        let Some(c) = r.correct else { continue };
        match correct {
            Some((c0, loc0)) if c0 != c => {
                let reason = format!(
                    "conflicting outcomes: trace `{id}` has correct = {c0} ({loc0}) and \
                     correct = {c} here"
                );
                return Err(err(path, loc, col::CORRECT, reason));
            }
            Some(_) => {}
            None => correct = Some((c, loc)),
        }
    }
    Ok(correct.map(|(c, _)| c))
}

/// The kept candidate finishes exactly at the last step, or the step cap ends the trace.
fn check_finish(path: &Path, id: &str, steps: &[(&Loc, &TraceRow)], max_steps: u16) -> Result<()> {
    let n = steps.len();
    for (k, &(loc, r)) in steps.iter().enumerate() {
        let who = match r.action {
            Action::Regenerate => "strong",
            Action::Continue => "weak",
        };
        let field = format!("{who}_finished");
        let fin = r.kept().finished;
        if k + 1 < n && fin {
            let reason = format!(
                "the kept {who} candidate finished the solution, but trace `{id}` continues at \
                 step {}",
                k + 1
            );
            return Err(err(path, loc, &field, reason));
        }
        if k + 1 == n && !fin && r.step + 1 < u32::from(max_steps) {
            let reason = format!(
                "trace `{id}` ends at step {} but the kept {who} candidate is not finished (and \
                 the step cap {max_steps} is not reached)",
                r.step
            );
            return Err(err(path, loc, &field, reason));
        }
    }
    Ok(())
}

/// The provenance of a merged dataset (everything in it is logged, nothing synthetic).
fn describe(path: &Path, opts: &Options) -> Meta {
    let mut meta = Meta::new(opts.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("paths")
            .to_string()
    }));
    meta.description = "Rollout trees merged from logged serving traces (one row per executed \
                        step); branches no trace executed are absent (masked). Schema and merge \
                        rules: data/docs/paths-schema.md."
        .into();
    meta.real = vec![
        "every executed step: weak and strong candidates as logged (tokens, PRM scores, \
         finished flags)"
            .into(),
        "final-answer correctness of every logged trace".into(),
    ];
    meta.synthetic = vec![];
    meta.tokenizer = "as logged by the serving system".into();
    meta.sources = vec![SourceRef {
        name: path
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("traces")
            .to_string(),
        origin: "serving trace log".into(),
        sha256: sha256_file(path).ok(),
    }];
    meta.command = opts.command.clone();
    meta
}
