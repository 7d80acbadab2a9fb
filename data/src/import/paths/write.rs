//! Trace-log writers: JSONL (one object per row, optional fields omitted) and parquet (optional
//! columns only when some row carries them). Both writes are atomic.

use std::path::Path;

use polars::prelude::*;
use serde::Serialize;

use crate::error::{DataError, Result};
use crate::io::{Format, write_atomic};

use super::schema::{TraceRow, col};

/// reading them back (as f64, then f32) is exact.
#[derive(Serialize)]
struct RowOut<'a> {
    trace_id: &'a str,
    problem_id: &'a str,
    step: u32,
    action: &'static str,
    weak_tokens: u32,
    weak_prm: f64,
    weak_finished: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    weak_state: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weak_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weak_text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weak_judge_score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weak_mean_logprob: Option<f32>,
    strong_tokens: Option<u32>,
    strong_prm: Option<f64>,
    strong_finished: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strong_state: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strong_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strong_text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strong_judge_score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strong_mean_logprob: Option<f32>,
    correct: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    split: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weak_model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strong_model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prm_model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    propensity: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_id: Option<&'a str>,
}

fn row_out(r: &TraceRow) -> RowOut<'_> {
    let s = r.strong.as_ref();
    let info = |k: usize| r.info[k].as_deref();
    RowOut {
        trace_id: &r.trace_id,
        problem_id: &r.problem_id,
        step: r.step,
        action: r.action.name(),
        weak_tokens: r.weak.tokens,
        weak_prm: f64::from(r.weak.prm),
        weak_finished: r.weak.finished,
        weak_state: r.weak.state.map(|s| s as u8),
        weak_hash: r.weak.hash.as_deref(),
        weak_text: r.weak.text.as_deref(),
        weak_judge_score: r.weak.judge_score,
        weak_mean_logprob: r.weak.mean_logprob,
        strong_tokens: s.map(|c| c.tokens),
        strong_prm: s.map(|c| f64::from(c.prm)),
        strong_finished: s.map(|c| c.finished),
        strong_state: s.and_then(|c| c.state).map(|s| s as u8),
        strong_hash: s.and_then(|c| c.hash.as_deref()),
        strong_text: s.and_then(|c| c.text.as_deref()),
        strong_judge_score: s.and_then(|c| c.judge_score),
        strong_mean_logprob: s.and_then(|c| c.mean_logprob),
        correct: r.correct,
        dataset: info(0),
        split: info(1),
        weak_model: info(2),
        strong_model: info(3),
        prm_model: info(4),
        propensity: r.propensity,
        policy_id: r.policy_id.as_deref(),
    }
}

/// Write a trace log atomically, as JSONL or parquet by the file extension.
pub fn write_traces(path: &Path, rows: &[TraceRow]) -> Result<()> {
    match Format::of(path)? {
        Format::Jsonl => write_atomic(path, |w| {
            use std::io::Write;
            for r in rows {
                serde_json::to_writer(&mut *w, &row_out(r))
                    .map_err(|e| DataError::file(path, format!("cannot encode: {e}")))?;
                w.write_all(b"\n")
                    .map_err(|e| DataError::file(path, format!("write failed: {e}")))?;
            }
            Ok(())
        }),
        Format::Parquet => write_traces_parquet(path, rows),
    }
}

fn write_traces_parquet(path: &Path, rows: &[TraceRow]) -> Result<()> {
    let mut df = DataFrame::new(rows.len(), trace_columns(rows))
        .map_err(|e| DataError::file(path, format!("cannot build table: {e}")))?;
    write_atomic(path, |w| {
        ParquetWriter::new(w)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(&mut df)
            .map_err(|e| DataError::file(path, format!("cannot write parquet: {e}")))?;
        Ok(())
    })
}

/// Column `name` holding `f` of every row.
fn column<'a, T, P: ?Sized>(
    name: &str,
    rows: &'a [TraceRow],
    f: impl Fn(&'a TraceRow) -> T,
) -> Column
where
    Series: NamedFrom<Vec<T>, P>,
{
    Column::new(name.into(), rows.iter().map(f).collect::<Vec<T>>())
}

/// Append column `name` only when some row carries a value.
fn optional<'a, T, P: ?Sized>(
    cols: &mut Vec<Column>,
    name: &str,
    rows: &'a [TraceRow],
    f: impl Fn(&'a TraceRow) -> Option<T>,
) where
    Series: NamedFrom<Vec<Option<T>>, P>,
{
    if rows.iter().any(|r| f(r).is_some()) {
        cols.push(column(name, rows, f));
    }
}

/// The log's columns in file order: required ones always, optional audit and problem-level
/// columns only when present.
fn trace_columns<'a>(rows: &'a [TraceRow]) -> Vec<Column> {
    let strong = |r: &'a TraceRow| r.strong.as_ref();
    let mut cols = vec![
        column(col::TRACE_ID, rows, |r| Some(r.trace_id.as_str())),
        column(col::PROBLEM_ID, rows, |r| Some(r.problem_id.as_str())),
        column(col::STEP, rows, |r| Some(r.step)),
        column(col::ACTION, rows, |r| r.action as u8),
        column(col::WEAK_TOKENS, rows, |r| Some(r.weak.tokens)),
        column(col::WEAK_PRM, rows, |r| r.weak.prm),
        column(col::WEAK_FINISHED, rows, |r| r.weak.finished),
    ];
    optional(&mut cols, col::WEAK_STATE, rows, |r| {
        r.weak.state.map(|s| s as u8)
    });
    optional(&mut cols, col::WEAK_HASH, rows, |r| r.weak.hash.as_deref());
    optional(&mut cols, col::WEAK_TEXT, rows, |r| r.weak.text.as_deref());
    optional(&mut cols, col::WEAK_JUDGE_SCORE, rows, |r| {
        r.weak.judge_score
    });
    optional(&mut cols, col::WEAK_MEAN_LOGPROB, rows, |r| {
        r.weak.mean_logprob
    });
    cols.push(column(col::STRONG_TOKENS, rows, |r| {
        strong(r).map(|s| s.tokens)
    }));
    cols.push(column(col::STRONG_PRM, rows, |r| strong(r).map(|s| s.prm)));
    cols.push(column(col::STRONG_FINISHED, rows, |r| {
        strong(r).map(|s| s.finished)
    }));
    optional(&mut cols, col::STRONG_STATE, rows, |r| {
        strong(r).and_then(|s| s.state).map(|s| s as u8)
    });
    optional(&mut cols, col::STRONG_HASH, rows, |r| {
        strong(r).and_then(|s| s.hash.as_deref())
    });
    optional(&mut cols, col::STRONG_TEXT, rows, |r| {
        strong(r).and_then(|s| s.text.as_deref())
    });
    optional(&mut cols, col::STRONG_JUDGE_SCORE, rows, |r| {
        strong(r).and_then(|s| s.judge_score)
    });
    optional(&mut cols, col::STRONG_MEAN_LOGPROB, rows, |r| {
        strong(r).and_then(|s| s.mean_logprob)
    });
    cols.push(column(col::CORRECT, rows, |r| r.correct));
    for (k, name) in col::INFO.iter().enumerate() {
        optional(&mut cols, name, rows, |r| r.info[k].as_deref());
    }
    optional(&mut cols, col::PROPENSITY, rows, |r| r.propensity);
    optional(&mut cols, col::POLICY_ID, rows, |r| r.policy_id.as_deref());
    cols
}
