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
