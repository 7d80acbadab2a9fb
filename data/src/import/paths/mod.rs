//! `trim data import paths`: logged serving traces (one row per executed step) merged into
//! rollout trees.
//!
//! Why: a deployed router executes one path per request. Logging each executed step with both
//! candidates it saw (the weak step and, when it was generated, the strong step for the same
//! prefix) is enough to rebuild the part of the rollout tree that was actually explored, so
//! policies can be trained and evaluated offline on real traffic. The schema and merge rules are
//! documented for serving stacks in `data/docs/paths-schema.md`.
//!
//! Merge rules: a trace is a path from a root. Two traces of one problem share a node only when
//! their recorded candidates at that prefix agree (equal weak candidate; equal strong candidate
//! where both recorded one — a strong candidate recorded by one trace fills in for another that did
//! not generate it). A trace goes into the first existing sample tree of its problem with which it
//! is consistent all the way, otherwise it starts a new sample tree. Branches no trace executed are
//! absent, so the action is masked; a finished candidate that was never kept has no known outcome
//! and is therefore written unfinished with its branch masked.
//!
//! Modules: [`schema`] (the row, its columns, options and summary), `read_jsonl` and
//! `read_parquet` (the two readers), `check` (the row checker), [`merge`](mod@merge) with `tree`
//! (traces into trees), [`simulate`] (walking trees to produce logs), [`write`](mod@write) (the
//! log writers).

mod check;
pub mod merge;
mod raw;
mod read_jsonl;
mod read_parquet;
pub mod schema;
pub mod simulate;
mod tree;
pub mod write;

use std::path::Path;

use crate::error::{DataError, Loc, Result};
use crate::io::Format;
use crate::schema::Dataset;

pub use merge::merge;
pub use schema::{DEFAULT_MAX_STEPS, INFO_DEFAULTS, Options, Report, TraceRow, col};
pub use simulate::{log_explored, log_traces};
pub use write::write_traces;

/// Read a trace log (`.jsonl` or `.parquet`), checking every row. Rows keep their location
/// (JSONL line or parquet row) for the merge's error messages.
pub fn read_traces(path: &Path, max_steps: u16) -> Result<Vec<(Loc, TraceRow)>> {
    let meta =
        std::fs::metadata(path).map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    if meta.len() == 0 {
        return Err(DataError::file(path, "empty file"));
    }
    let raw = match Format::of(path)? {
        Format::Jsonl => read_jsonl::read_jsonl_rows(path)?,
        Format::Parquet => read_parquet::read_parquet_rows(path)?,
    };
    if raw.is_empty() {
        return Err(DataError::file(path, "no trace rows"));
    }
    raw.into_iter()
        .map(|(loc, r)| {
            let row = check::check_row(path, &loc, r, max_steps)?;
            Ok((loc, row))
        })
        .collect()
}

/// Read, check and merge a trace log.
pub fn import(path: &Path, opts: &Options) -> Result<(Dataset, Report)> {
    let rows = read_traces(path, opts.max_steps)?;
    merge(path, &rows, opts)
}

#[cfg(test)]
mod tests;
