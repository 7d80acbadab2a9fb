//! The one polars column reader of the crate: open a parquet file's footer once, decode one
//! column at a time (so peak memory is one decoded column, not the whole table), and visit its
//! values typed, with errors that name the file, the column and the row. Every polars call runs
//! inside [`contain`], so damaged bytes give an error instead of a panic.

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

    /// Decode column `name` (`None` when the file has no such column).
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

    /// Visit an integer column (any integer type; a `Null`-typed column is all nulls).
    pub fn for_each_int(
        &self,
        name: &str,
        c: &Column,
        mut f: impl FnMut(usize, Option<i128>) -> Result<()>,
    ) -> Result<()> {
        let pl = self.pl_err(name);
        macro_rules! visit {
            ($ca:expr) => {
                visit_prim($ca.map_err(&pl)?, |row, v| f(row, v.map(i128::from)))
            };
        }
        match c.dtype() {
            DataType::UInt8 => visit!(c.u8()),
            DataType::UInt16 => visit!(c.u16()),
            DataType::UInt32 => visit!(c.u32()),
            DataType::UInt64 => visit!(c.u64()),
            DataType::Int32 => visit!(c.i32()),
            DataType::Int64 => visit!(c.i64()),
            DataType::Null => (0..c.len()).try_for_each(|row| f(row, None)),
            d if d.is_integer() => {
                let c = c.cast(&DataType::Int64).map_err(&pl)?;
                visit!(c.i64())
            }
            d => Err(self.type_err(name, "an integer column", d)),
        }
    }

    /// Visit a float column (f32 or f64; a `Null`-typed column is all nulls).
    pub fn for_each_float(
        &self,
        name: &str,
        c: &Column,
        mut f: impl FnMut(usize, Option<f64>) -> Result<()>,
    ) -> Result<()> {
        let pl = self.pl_err(name);
        match c.dtype() {
            DataType::Float32 => visit_prim(c.f32().map_err(&pl)?, |row, v| {
                f(row, v.map(f64::from))
            }),
            DataType::Float64 => visit_prim(c.f64().map_err(&pl)?, f),
            DataType::Null => (0..c.len()).try_for_each(|row| f(row, None)),
            d if d.is_float() => {
                let c = c.cast(&DataType::Float64).map_err(&pl)?;
                visit_prim(c.f64().map_err(&pl)?, f)
            }
            d => Err(self.type_err(name, "a float column", d)),
        }
    }

    /// Visit a boolean column (a `Null`-typed column is all nulls).
    pub fn for_each_bool(
        &self,
        name: &str,
        c: &Column,
        mut f: impl FnMut(usize, Option<bool>) -> Result<()>,
    ) -> Result<()> {
        if *c.dtype() == DataType::Null {
            return (0..c.len()).try_for_each(|row| f(row, None));
        }
        let ca = c
            .bool()
            .map_err(|_| self.type_err(name, "a boolean column", c.dtype()))?;
        let mut row = 0;
        for arr in ca.downcast_iter() {
            for v in arr.iter() {
                f(row, v)?;
                row += 1;
            }
        }
        Ok(())
    }

    /// Visit a string column (a `Null`-typed column is all nulls).
    pub fn for_each_str(
        &self,
        name: &str,
        c: &Column,
        mut f: impl FnMut(usize, Option<&str>) -> Result<()>,
    ) -> Result<()> {
        if *c.dtype() == DataType::Null {
            return (0..c.len()).try_for_each(|row| f(row, None));
        }
        let ca = c
            .str()
            .map_err(|_| self.type_err(name, "a string column", c.dtype()))?;
        let mut row = 0;
        for arr in ca.downcast_iter() {
            for v in arr.iter() {
                f(row, v)?;
                row += 1;
            }
        }
        Ok(())
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

/// Visit the values of a numeric chunked array, chunk by chunk, without copying it.
fn visit_prim<T: PolarsNumericType>(
    ca: &ChunkedArray<T>,
    mut f: impl FnMut(usize, Option<T::Native>) -> Result<()>,
) -> Result<()> {
    let mut row = 0;
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
