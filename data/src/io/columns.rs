//! The one polars column reader of the crate: open a parquet file's footer once, decode it one
//! row group at a time (so peak memory is one row group, not the whole table, and the decode
//! buffers are reused) or one whole column, and visit values typed, with errors that name the
//! file, the column and the row. Every polars call runs inside [`contain`], so damaged bytes
//! give an error instead of a panic.

use std::path::Path;
use std::sync::Arc;

use polars::prelude::*;

use super::contain::contain;
use crate::error::{DataError, Loc, Result};

/// A parquet file opened for column-at-a-time decoding.
pub struct ParquetColumns<'a> {
    path: &'a Path,
    metadata: FileMetadataRef,
    schema: Arc<ArrowSchema>,
}

fn unreadable(path: &Path, what: &str) -> impl Fn(PolarsError) -> DataError {
    let path = path.to_path_buf();
    let what = what.to_string();
    move |e| {
        DataError::file(
            &path,
            format!("{what}: not a readable parquet file (truncated or corrupt?): {e}"),
        )
    }
}

impl<'a> ParquetColumns<'a> {
    /// Read the footer (schema, row groups, key-value metadata) of `path`.
    pub fn open(path: &'a Path) -> Result<Self> {
        contain(path, "reading the footer", || {
            let file = std::fs::File::open(path)
                .map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
            let mut reader = ParquetReader::new(file);
            let err = unreadable(path, "cannot read the footer");
            let metadata = reader.get_metadata().map_err(&err)?.clone();
            let schema = reader.schema().map_err(&err)?;
            Ok(ParquetColumns {
                path,
                metadata,
                schema,
            })
        })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        self.path
    }

    /// Rows in the file, as the footer says.
    pub fn n_rows(&self) -> usize {
        self.metadata.num_rows
    }

    /// A footer key-value entry.
    pub fn key_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .key_value_metadata
            .as_ref()?
            .iter()
            .find(|kv| kv.key == key)?
            .value
            .as_deref()
    }

    /// True when the file has a column `name`.
    pub fn has(&self, name: &str) -> bool {
        self.schema.get(name).is_some()
    }

    /// Refuse the file unless it has every column of `names`.
    pub fn require(&self, names: &[&str]) -> Result<()> {
        match names.iter().find(|n| !self.has(n)) {
            Some(n) => Err(DataError::new(
                self.path,
                Loc::File,
                Some(n),
                "missing required column",
            )),
            None => Ok(()),
        }
    }

    /// Decode the file row group by row group (every column), in file order.
    pub fn row_groups(&self) -> Result<impl Iterator<Item = Result<Batch>> + '_> {
        let groups = &self.metadata.row_groups;
        let total: usize = groups.iter().map(|g| g.num_rows()).sum();
        if total != self.n_rows() {
            return Err(DataError::file(
                self.path,
                format!(
                    "damaged file: row groups hold {total} rows but the footer says {}",
                    self.n_rows()
                ),
            ));
        }
        // The footer without row groups; each decode gets a copy holding just its own.
        let mut template = (*self.metadata).clone();
        template.row_groups.clear();
        let mut base = 0;
        Ok(groups.iter().enumerate().map(move |(k, g)| {
            let mut md = template.clone();
            md.row_groups.push(g.clone());
            md.num_rows = g.num_rows();
            let batch = self.decode_group(k, Arc::new(md), base);
            base += g.num_rows();
            batch
        }))
    }

    fn decode_group(&self, k: usize, md: FileMetadataRef, base: usize) -> Result<Batch> {
        let what = format!("reading row group {k}");
        let rows = md.num_rows;
        let df = contain(self.path, &what, || {
            let file = std::fs::File::open(self.path)
                .map_err(|e| DataError::file(self.path, format!("cannot open: {e}")))?;
            let mut reader = ParquetReader::new(file);
            reader.set_metadata(md);
            reader.finish().map_err(unreadable(self.path, &what))
        })?;
        if df.height() != rows {
            return Err(DataError::file(
                self.path,
                format!(
                    "damaged file: row group {k} decodes to {} rows, not {rows}",
                    df.height()
                ),
            ));
        }
        Ok(Batch { base, df })
    }

    /// Decode the whole column `name` (`None` when the file has no such column).
    pub fn column(&self, name: &str) -> Result<Option<Column>> {
        if !self.has(name) {
            return Ok(None);
        }
        let what = format!("reading column `{name}`");
        let col = contain(self.path, &what, || {
            let file = std::fs::File::open(self.path)
                .map_err(|e| DataError::file(self.path, format!("cannot open: {e}")))?;
            let mut reader = ParquetReader::new(file);
            reader.set_metadata(self.metadata.clone());
            let df = reader
                .with_columns(Some(vec![name.to_string()]))
                .finish()
                .map_err(unreadable(self.path, &what))?;
            df.column(name)
                .cloned()
                .map_err(unreadable(self.path, &what))
        })?;
        if col.len() != self.n_rows() {
            return Err(DataError::new(
                self.path,
                Loc::File,
                Some(name),
                format!(
                    "damaged file: column has {} values but the footer says {} rows",
                    col.len(),
                    self.n_rows()
                ),
            ));
        }
        Ok(Some(col))
    }

    /// Decode a column the format requires.
    pub fn required(&self, name: &str) -> Result<Column> {
        self.column(name)?.ok_or_else(|| {
            DataError::new(self.path, Loc::File, Some(name), "missing required column")
        })
    }

    fn type_err(&self, name: &str, want: &str, got: &DataType) -> DataError {
        DataError::new(
            self.path,
            Loc::File,
            Some(name),
            format!("wrong type: expected {want}, found {got}"),
        )
    }

    fn pl_err(&self, name: &str) -> impl Fn(PolarsError) -> DataError {
        let path = self.path.to_path_buf();
        let name = name.to_string();
        move |e| DataError::new(&path, Loc::File, Some(&name), format!("cannot read: {e}"))
    }

    /// Visit an integer column (any integer type; a `Null`-typed column is all nulls). Rows
    /// are numbered from `base` (the first row of a [`Batch`]).
    pub fn for_each_int(
        &self,
        name: &str,
        c: &Column,
        base: usize,
        mut f: impl FnMut(usize, Option<i128>) -> Result<()>,
    ) -> Result<()> {
        let pl = self.pl_err(name);
        macro_rules! visit {
            ($ca:expr) => {
                visit_prim($ca.map_err(&pl)?, base, |row, v| f(row, v.map(i128::from)))
            };
        }
        match c.dtype() {
            DataType::UInt8 => visit!(c.u8()),
            DataType::UInt16 => visit!(c.u16()),
            DataType::UInt32 => visit!(c.u32()),
            DataType::UInt64 => visit!(c.u64()),
            DataType::Int32 => visit!(c.i32()),
            DataType::Int64 => visit!(c.i64()),
            DataType::Null => (base..base + c.len()).try_for_each(|row| f(row, None)),
            d if d.is_integer() => {
                let c = c.cast(&DataType::Int64).map_err(&pl)?;
                visit!(c.i64())
            }
            d => Err(self.type_err(name, "an integer column", d)),
        }
    }

    /// Visit a float column (f32 or f64; a `Null`-typed column is all nulls), rows from `base`.
    pub fn for_each_float(
        &self,
        name: &str,
        c: &Column,
        base: usize,
        mut f: impl FnMut(usize, Option<f64>) -> Result<()>,
    ) -> Result<()> {
        let pl = self.pl_err(name);
        match c.dtype() {
            DataType::Float32 => visit_prim(c.f32().map_err(&pl)?, base, |row, v| {
                f(row, v.map(f64::from))
            }),
            DataType::Float64 => visit_prim(c.f64().map_err(&pl)?, base, f),
            DataType::Null => (base..base + c.len()).try_for_each(|row| f(row, None)),
            d if d.is_float() => {
                let c = c.cast(&DataType::Float64).map_err(&pl)?;
                visit_prim(c.f64().map_err(&pl)?, base, f)
            }
            d => Err(self.type_err(name, "a float column", d)),
        }
    }

    /// Visit a boolean column (a `Null`-typed column is all nulls), rows from `base`.
    pub fn for_each_bool(
        &self,
        name: &str,
        c: &Column,
        base: usize,
        mut f: impl FnMut(usize, Option<bool>) -> Result<()>,
    ) -> Result<()> {
        if *c.dtype() == DataType::Null {
            return (base..base + c.len()).try_for_each(|row| f(row, None));
        }
        let ca = c
            .bool()
            .map_err(|_| self.type_err(name, "a boolean column", c.dtype()))?;
        let mut row = base;
        let no_nulls = ca.null_count() == 0;
        for arr in ca.downcast_iter() {
            if no_nulls {
                for v in arr.values_iter() {
                    f(row, Some(v))?;
                    row += 1;
                }
            } else {
                for v in arr.iter() {
                    f(row, v)?;
                    row += 1;
                }
            }
        }
        Ok(())
    }

    /// Visit a string column (a `Null`-typed column is all nulls), rows from `base`.
    pub fn for_each_str(
        &self,
        name: &str,
        c: &Column,
        base: usize,
        mut f: impl FnMut(usize, Option<&str>) -> Result<()>,
    ) -> Result<()> {
        self.for_each_str_run(name, c, base, |rows, v| {
            rows.into_iter().try_for_each(|row| f(row, v))
        })
    }

    /// Visit a string column run by run: `f` gets a range of consecutive rows that hold the
    /// same value (dictionary-encoded columns such as `problem_id` repeat long runs), so a
    /// value is looked at once per run rather than once per row.
    pub fn for_each_str_run(
        &self,
        name: &str,
        c: &Column,
        base: usize,
        mut f: impl FnMut(std::ops::Range<usize>, Option<&str>) -> Result<()>,
    ) -> Result<()> {
        if *c.dtype() == DataType::Null {
            return f(base..base + c.len(), None);
        }
        let ca = c
            .str()
            .map_err(|_| self.type_err(name, "a string column", c.dtype()))?;
        let mut row = base;
        let no_nulls = ca.null_count() == 0;
        for arr in ca.downcast_iter() {
            // Equal views (same bytes, or same buffer and offset) are equal strings.
            let views = arr.views();
            if no_nulls {
                let mut start = 0;
                for i in 1..=views.len() {
                    if i == views.len() || views[i].as_u128() != views[start].as_u128() {
                        f(row + start..row + i, Some(arr.value(start)))?;
                        start = i;
                    }
                }
                row += views.len();
                continue;
            }
            let mut run: Option<(usize, u128, Option<&str>)> = None;
            for (view, v) in views.iter().zip(arr.iter()) {
                let key = view.as_u128();
                match run {
                    Some((_, k, rv)) if k == key && rv.is_some() == v.is_some() => {}
                    Some((start, _, rv)) => {
                        f(start..row, rv)?;
                        run = Some((row, key, v));
                    }
                    None => run = Some((row, key, v)),
                }
                row += 1;
            }
            if let Some((start, _, rv)) = run {
                f(start..row, rv)?;
            }
        }
        Ok(())
    }

    /// Copy a null-free column whose type is exactly `T` into `out` (one slot per row) and
    /// return true; false (nothing copied) for any other column, which the caller then visits
    /// value by value.
    pub fn copy_exact<T: PolarsNumericType>(&self, c: &Column, out: &mut [T::Native]) -> bool {
        if *c.dtype() != T::get_static_dtype() || c.len() != out.len() {
            return false;
        }
        let Ok(ca) = c.as_materialized_series().unpack::<T>() else {
            return false;
        };
        if ca.null_count() != 0 {
            return false;
        }
        let mut at = 0;
        for arr in ca.downcast_iter() {
            let v = arr.values().as_slice();
            out[at..at + v.len()].copy_from_slice(v);
            at += v.len();
        }
        true
    }

    /// The error for a null in a required field.
    pub fn null_err(&self, name: &str, row: usize) -> DataError {
        DataError::new(
            self.path,
            Loc::Row(row),
            Some(name),
            "null in a required field",
        )
    }
}

/// A decoded row group: its columns, and the file row of its first row.
pub struct Batch {
    pub base: usize,
    df: DataFrame,
}

impl Batch {
    /// Column `name` of this row group.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.df.column(name).ok()
    }

    /// Rows in this row group.
    pub fn len(&self) -> usize {
        self.df.height()
    }

    /// True for an empty row group.
    pub fn is_empty(&self) -> bool {
        self.df.height() == 0
    }
}

/// Visit the values of a numeric chunked array, chunk by chunk, without copying it; rows are
/// numbered from `base`.
fn visit_prim<T: PolarsNumericType>(
    ca: &ChunkedArray<T>,
    base: usize,
    mut f: impl FnMut(usize, Option<T::Native>) -> Result<()>,
) -> Result<()> {
    let mut row = base;
    let no_nulls = ca.null_count() == 0;
    for arr in ca.downcast_iter() {
        if no_nulls {
            for &v in arr.values().iter() {
                f(row, Some(v))?;
                row += 1;
            }
        } else {
            for v in arr.iter() {
                f(row, v.copied())?;
                row += 1;
            }
        }
    }
    Ok(())
}
