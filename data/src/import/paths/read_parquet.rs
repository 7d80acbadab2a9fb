//! The parquet reader of trace logs, on the crate's one column reader
//! ([`crate::io::ParquetColumns`]): typed columns, an absent optional column read as all-null,
//! a column of the wrong type an error naming it. Damaged bytes (a polars panic, or a column
//! shorter than the table) are errors naming the file.

use std::path::Path;

use polars::prelude::Column;

use crate::error::{DataError, Loc, Result};
use crate::io::ParquetColumns;

use super::raw::{RawAction, RawCand, RawRow};
use super::schema::col;

/// Columns a trace log must have; the others may be absent (all-null).
const REQUIRED: [&str; 7] = [
    col::TRACE_ID,
    col::PROBLEM_ID,
    col::STEP,
    col::ACTION,
    col::WEAK_TOKENS,
    col::WEAK_PRM,
    col::WEAK_FINISHED,
];

/// Every row of a parquet trace log, with its row index.
pub(super) fn read_parquet_rows(path: &Path) -> Result<Vec<(Loc, RawRow)>> {
    let pq = ParquetColumns::open(path)?;
    pq.require(&REQUIRED)?;
    let c = PqCols { pq: &pq };
    let mut trace = c.strings(col::TRACE_ID, true)?;
    let mut problem = c.strings(col::PROBLEM_ID, true)?;
    let step = c.ints(col::STEP)?;
    let mut action = c.actions(col::ACTION)?;
    let mut weak = CandCols::read(&c, "weak")?;
    let mut strong = CandCols::read(&c, "strong")?;
    let correct = c.bools(col::CORRECT)?;
    let propensity = c.floats(col::PROPENSITY)?;
    let mut policy_id = c.strings(col::POLICY_ID, true)?;
    let mut info: Vec<Vec<Option<String>>> = col::INFO
        .iter()
        .map(|n| c.strings(n, false))
        .collect::<Result<_>>()?;
    let rows = (0..pq.n_rows())
        .map(|i| {
            let row = RawRow {
                trace_id: trace[i].take(),
                problem_id: problem[i].take(),
                step: step[i],
                action: action[i].take(),
                weak: weak.take(i),
                strong: strong.take(i),
                correct: correct[i],
                info: std::array::from_fn(|k| info[k][i].take()),
                propensity: propensity[i],
                policy_id: policy_id[i].take(),
            };
            (Loc::Row(i), row)
        })
        .collect();
    Ok(rows)
}

/// One candidate's columns (`weak_*` or `strong_*`).
struct CandCols {
    tokens: Vec<Option<i64>>,
    prm: Vec<Option<f64>>,
    finished: Vec<Option<bool>>,
    state: Vec<Option<i64>>,
    hash: Vec<Option<String>>,
    text: Vec<Option<String>>,
    judge_score: Vec<Option<f64>>,
    mean_logprob: Vec<Option<f64>>,
}

impl CandCols {
    fn read(c: &PqCols<'_>, who: &str) -> Result<Self> {
        let k = |s: &str| format!("{who}_{s}");
        Ok(CandCols {
            tokens: c.ints(&k("tokens"))?,
            prm: c.floats(&k("prm"))?,
            finished: c.bools(&k("finished"))?,
            state: c.ints(&k("state"))?,
            hash: c.strings(&k("hash"), false)?,
            text: c.strings(&k("text"), false)?,
            judge_score: c.floats(&k("judge_score"))?,
            mean_logprob: c.floats(&k("mean_logprob"))?,
        })
    }

    /// Row `i`'s candidate (its strings moved out).
    fn take(&mut self, i: usize) -> RawCand {
        RawCand {
            tokens: self.tokens[i],
            prm: self.prm[i],
            finished: self.finished[i],
            state: self.state[i],
            hash: self.hash[i].take(),
            text: self.text[i].take(),
            judge_score: self.judge_score[i],
            mean_logprob: self.mean_logprob[i],
        }
    }
}

/// Whole typed columns of a trace log: an absent column reads as all-null (the row checker then
/// reports a missing required field).
struct PqCols<'a> {
    pq: &'a ParquetColumns<'a>,
}

impl PqCols<'_> {
    fn nulls<T: Clone>(&self) -> Vec<Option<T>> {
        vec![None; self.pq.n_rows()]
    }

    fn ints(&self, name: &str) -> Result<Vec<Option<i64>>> {
        match self.pq.column(name)? {
            Some(c) => self.ints_of(name, &c),
            None => Ok(self.nulls()),
        }
    }

    /// The values of an integer column already decoded.
    fn ints_of(&self, name: &str, c: &Column) -> Result<Vec<Option<i64>>> {
        let mut out = self.nulls();
        self.pq.for_each_int(name, c, 0, |row, v| {
            let path = self.pq.path();
            let range = |_| DataError::new(path, Loc::Row(row), Some(name), "integer out of range");
            out[row] = v.map(|x| i64::try_from(x).map_err(range)).transpose()?;
            Ok(())
        })?;
        Ok(out)
    }

    fn floats(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let mut out = self.nulls();
        if let Some(c) = self.pq.column(name)? {
            self.pq.for_each_float(name, &c, 0, |row, v| {
                out[row] = v;
                Ok(())
            })?;
        }
        Ok(out)
    }

    fn bools(&self, name: &str) -> Result<Vec<Option<bool>>> {
        let mut out = self.nulls();
        if let Some(c) = self.pq.column(name)? {
            self.pq.for_each_bool(name, &c, 0, |row, v| {
                out[row] = v;
                Ok(())
            })?;
        }
        Ok(out)
    }

    /// Strings; with `allow_int`, integer columns are accepted and printed.
    fn strings(&self, name: &str, allow_int: bool) -> Result<Vec<Option<String>>> {
        let Some(c) = self.pq.column(name)? else {
            return Ok(self.nulls());
        };
        if allow_int && c.dtype().is_integer() {
            let ints = self.ints_of(name, &c)?;
            return Ok(ints.into_iter().map(|v| v.map(|x| x.to_string())).collect());
        }
        self.strings_of(name, &c)
    }

    /// The values of a string column already decoded.
    fn strings_of(&self, name: &str, c: &Column) -> Result<Vec<Option<String>>> {
        let mut out = self.nulls();
        self.pq.for_each_str(name, c, 0, |row, v| {
            out[row] = v.map(str::to_owned);
            Ok(())
        })?;
        Ok(out)
    }

    /// Actions as logged: an integer or a string column (a null-typed one is a type error).
    fn actions(&self, name: &str) -> Result<Vec<Option<RawAction>>> {
        let Some(c) = self.pq.column(name)? else {
            return Ok((0..self.pq.n_rows()).map(|_| None).collect());
        };
        let dtype = c.dtype();
        if dtype.is_integer() {
            let ints = self.ints_of(name, &c)?;
            return Ok(ints.into_iter().map(|v| v.map(RawAction::Int)).collect());
        }
        if dtype.is_string() {
            let strs = self.strings_of(name, &c)?;
            return Ok(strs.into_iter().map(|v| v.map(RawAction::Str)).collect());
        }
        Err(DataError::new(
            self.pq.path(),
            Loc::File,
            Some(name),
            format!("wrong type: expected an integer or string column, found {dtype}"),
        ))
    }
}
