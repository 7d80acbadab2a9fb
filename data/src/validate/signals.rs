//! The optional signal columns (`judge_score`, `mean_logprob` per candidate): range checks,
//! coverage, and the weak-candidate columns the forest serves to the peer rules.

use trim_env::SignalColumns;

use super::Source;
use crate::error::Result;
use crate::schema::{NodeFlags as F, NodeTable, SignalTable};

/// Every present signal column: values in range (judge scores in `[0, 1]`, mean
/// log-probabilities finite and ≤ 0), a weak column set on every node (a rule reading it must
/// never meet a gap), a strong column set only where a strong candidate exists.
pub(super) fn check(src: &Source<'_>) -> Result<()> {
    let t = src.table;
    for (col, values) in t.signals.columns() {
        let Some(values) = values else { continue };
        for (i, v) in values.iter().enumerate() {
            let has_candidate = !col.strong || t.flags[i].has(F::STRONG);
            match *v {
                None if col.strong || !has_candidate => {}
                None => {
                    return Err(src.err(
                        i,
                        Some(col.name),
                        format!(
                            "null, but other nodes carry {}: a weak signal column must be set \
                             on every node (or left out of the file)",
                            col.name
                        ),
                    ));
                }
                Some(_) if !has_candidate => {
                    return Err(src.err(
                        i,
                        Some(col.name),
                        "set, but the node has no strong candidate",
                    ));
                }
                Some(x) if col.judge && !(0.0..=1.0).contains(&x) => {
                    return Err(src.err(
                        i,
                        Some(col.name),
                        format!("{x} is not a judge score in [0, 1]"),
                    ));
                }
                Some(x) if !col.judge && !is_logprob(x) => {
                    return Err(src.err(
                        i,
                        Some(col.name),
                        format!("{x} is not a mean log-probability (finite, ≤ 0)"),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// A mean log-probability: finite and ≤ 0.
fn is_logprob(x: f32) -> bool {
    x.is_finite() && x <= 0.0
}

/// The weak candidates' signal columns in forest node order (`forest_row[n]` is the table row
/// of forest node `n`). Call after [`check`]: every weak value is set.
pub(super) fn forest_columns(t: &NodeTable, forest_row: &[u32]) -> SignalColumns {
    let gather = |c: &Option<Vec<Option<f32>>>| {
        c.as_ref().map(|v| {
            forest_row
                .iter()
                .map(|&r| v[r as usize].unwrap_or(f32::NAN))
                .collect()
        })
    };
    let s: &SignalTable = &t.signals;
    SignalColumns {
        judge_score: gather(&s.weak_judge_score),
        mean_logprob: gather(&s.weak_mean_logprob),
    }
}
