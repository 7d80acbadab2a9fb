//! Plain string tables from parquet (e.g. `trim collect`'s problem files), decoded with the
//! same containment and error naming as datasets, so callers outside this crate need no
//! polars.

use std::path::Path;

use super::columns::ParquetColumns;
use crate::error::{DataError, Loc, Result};

/// Some string columns of a parquet file.
#[derive(Debug, Clone, PartialEq)]
pub struct StringTable {
    pub rows: usize,
    /// One entry per requested column: `None` when an optional column is absent.
    pub columns: Vec<Option<Vec<Option<String>>>>,
}

/// Read `names` (each a string column) from `path`; a name not in `optional` must be present.
pub fn read_string_columns(path: &Path, names: &[&str], optional: &[&str]) -> Result<StringTable> {
    super::check_regular_file(path)?;
    let pc = ParquetColumns::open(path)?;
    let rows = pc.n_rows();
    let mut columns = Vec::with_capacity(names.len());
    for name in names {
        let Some(c) = pc.column(name)? else {
            if optional.contains(name) {
                columns.push(None);
                continue;
            }
            return Err(DataError::new(
                path,
                Loc::File,
                Some(name),
                "missing required column",
            ));
        };
        let mut values = vec![None; rows];
        pc.for_each_str(name, &c, 0, |row, v| {
            values[row] = v.map(str::to_owned);
            Ok(())
        })?;
        columns.push(Some(values));
    }
    Ok(StringTable { rows, columns })
}

/// Write a parquet file of string columns (equal lengths), atomically — problem files for
/// `trim collect`, and test fixtures.
pub fn write_string_columns(path: &Path, columns: &[(&str, Vec<String>)]) -> Result<()> {
    use polars::prelude::{Column, DataFrame, ParquetWriter};
    let rows = columns.first().map_or(0, |c| c.1.len());
    if columns.iter().any(|c| c.1.len() != rows) {
        return Err(DataError::file(path, "string columns of different lengths"));
    }
    let cols: Vec<Column> = (columns.iter())
        .map(|(name, v)| Column::new((*name).into(), v.clone()))
        .collect();
    let mut df = DataFrame::new(rows, cols)
        .map_err(|e| DataError::file(path, format!("cannot build table: {e}")))?;
    super::write_atomic(path, |w| {
        super::contain::contain(path, "writing parquet", || {
            ParquetWriter::new(w)
                .finish(&mut df)
                .map_err(|e| DataError::file(path, format!("cannot write parquet: {e}")))?;
            Ok(())
        })
    })
}
