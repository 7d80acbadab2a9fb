//! The parquet reader of trace logs: typed columns, an absent optional column read as all-null,
//! a column of the wrong type an error naming it. Damaged bytes can make polars panic or hand
//! back columns shorter than the table: both are reported as errors naming the file.

use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use polars::prelude::*;

use crate::error::{DataError, Loc, Result};

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

/// Every row of a parquet trace log, with its row index. A decoder panic (polars on damaged
/// bytes) is contained and reported as an error naming the file.
pub(super) fn read_parquet_rows(path: &Path) -> Result<Vec<(Loc, RawRow)>> {
    catch_unwind(AssertUnwindSafe(|| rows_of(path))).unwrap_or_else(|_| {
        Err(DataError::file(
            path,
            "cannot read parquet data: the decoder failed on damaged bytes (corrupt file?)",
        ))
    })
}

fn rows_of(path: &Path) -> Result<Vec<(Loc, RawRow)>> {
    let df = read_frame(path)?;
    let c = PqCols { df: &df, path };
    for name in REQUIRED {
        if df.column(name).is_err() {
            return Err(DataError::new(
                path,
                Loc::File,
                Some(name),
                "missing required column",
            ));
        }
    }
    let mut trace = c.strings(col::TRACE_ID, true)?;
    let mut problem = c.strings(col::PROBLEM_ID, true)?;
    let step = c.ints(col::STEP)?;
    let mut action = c.actions(col::ACTION)?;
    let mut weak = CandCols::read(&c, "weak")?;
    let mut strong = CandCols::read(&c, "strong")?;
    let correct = c.bools(col::CORRECT)?;
    let mut info: Vec<Vec<Option<String>>> = col::INFO
        .iter()
        .map(|n| c.strings(n, false))
        .collect::<Result<_>>()?;
    let rows = (0..df.height())
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
            };
            (Loc::Row(i), row)
        })
        .collect();
    Ok(rows)
}

/// Decode the whole file.
fn read_frame(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    ParquetReader::new(file).finish().map_err(|e| {
        DataError::file(
            path,
            format!("cannot read parquet data (truncated or corrupt?): {e}"),
        )
    })
}

/// One candidate's columns (`weak_*` or `strong_*`).
struct CandCols {
    tokens: Vec<Option<i64>>,
    prm: Vec<Option<f64>>,
    finished: Vec<Option<bool>>,
    state: Vec<Option<i64>>,
    hash: Vec<Option<String>>,
    text: Vec<Option<String>>,
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
        }
    }
}

/// Typed parquet columns: an absent column reads as all-null (the row checker then reports a
/// missing required field); a column of the wrong type is an error naming it.
struct PqCols<'a> {
    df: &'a DataFrame,
    path: &'a Path,
}

impl PqCols<'_> {
    fn pl(&self, name: &str) -> impl Fn(PolarsError) -> DataError {
        let path = self.path.to_path_buf();
        let name = name.to_string();
        move |e| DataError::new(&path, Loc::File, Some(&name), format!("cannot read: {e}"))
    }

    fn type_err(&self, name: &str, want: &str, got: &DataType) -> DataError {
        DataError::new(
            self.path,
            Loc::File,
            Some(name),
            format!("wrong type: expected {want}, found {got}"),
        )
    }

    fn nulls<T: Clone>(&self) -> Vec<Option<T>> {
        vec![None; self.df.height()]
    }

    /// `values` of column `name`, which must cover every row of the table (a damaged file can
    /// decode to a shorter column).
    fn full<T>(&self, name: &str, values: Vec<T>) -> Result<Vec<T>> {
        if values.len() == self.df.height() {
            return Ok(values);
        }
        Err(DataError::new(
            self.path,
            Loc::File,
            Some(name),
            format!(
                "column has {} values for {} rows (truncated or corrupt file?)",
                values.len(),
                self.df.height()
            ),
        ))
    }

    /// Column `name` when it holds values: `None` when absent or all-null (dtype null), an error
    /// when its type is not `ok` (`want` describes the expected type).
    fn typed(
        &self,
        name: &str,
        ok: &dyn Fn(&DataType) -> bool,
        want: &str,
    ) -> Result<Option<&Column>> {
        match self.df.column(name) {
            Err(_) => Ok(None),
            Ok(c) if *c.dtype() == DataType::Null => Ok(None),
            Ok(c) if ok(c.dtype()) => Ok(Some(c)),
            Ok(c) => Err(self.type_err(name, want, c.dtype())),
        }
    }

    fn ints(&self, name: &str) -> Result<Vec<Option<i64>>> {
        let Some(c) = self.typed(name, &DataType::is_integer, "an integer column")? else {
            return Ok(self.nulls());
        };
        let c = c.cast(&DataType::Int64).map_err(self.pl(name))?;
        self.full(name, c.i64().map_err(self.pl(name))?.iter().collect())
    }

    fn floats(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let Some(c) = self.typed(name, &DataType::is_float, "a float column")? else {
            return Ok(self.nulls());
        };
        let c = c.cast(&DataType::Float64).map_err(self.pl(name))?;
        self.full(name, c.f64().map_err(self.pl(name))?.iter().collect())
    }

    fn bools(&self, name: &str) -> Result<Vec<Option<bool>>> {
        let is_bool = |d: &DataType| *d == DataType::Boolean;
        let Some(c) = self.typed(name, &is_bool, "a boolean column")? else {
            return Ok(self.nulls());
        };
        self.full(name, c.bool().map_err(self.pl(name))?.iter().collect())
    }

    /// Strings; with `allow_int`, integer columns are accepted and printed.
    fn strings(&self, name: &str, allow_int: bool) -> Result<Vec<Option<String>>> {
        let is_str = |d: &DataType| *d == DataType::String || (allow_int && d.is_integer());
        let Some(c) = self.typed(name, &is_str, "a string column")? else {
            return Ok(self.nulls());
        };
        if c.dtype().is_integer() {
            return Ok(self
                .ints(name)?
                .into_iter()
                .map(|v| v.map(|x| x.to_string()))
                .collect());
        }
        let values = c.str().map_err(self.pl(name))?.iter();
        self.full(name, values.map(|v| v.map(str::to_owned)).collect())
    }

    /// Actions as logged: an integer or a string column (a null-typed one is a type error).
    fn actions(&self, name: &str) -> Result<Vec<Option<RawAction>>> {
        let Ok(c) = self.df.column(name) else {
            return Ok((0..self.df.height()).map(|_| None).collect());
        };
        if c.dtype().is_integer() {
            return Ok(self
                .ints(name)?
                .into_iter()
                .map(|v| v.map(RawAction::Int))
                .collect());
        }
        if *c.dtype() == DataType::String {
            return Ok(self
                .strings(name, false)?
                .into_iter()
                .map(|v| v.map(RawAction::Str))
                .collect());
        }
        Err(self.type_err(name, "an integer or string column", c.dtype()))
    }
}
