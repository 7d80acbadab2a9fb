//! Parquet, the canonical on-disk format: one row per node, metadata JSON and the content
//! checksum in the footer. Writing is here; reading is `parquet_read` (column-wise).

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;

use super::checksum::{CHECKSUM_KEY, Content, StrColumnHasher, content_sha256};
use super::contain::contain;
use crate::error::{DataError, Loc, Result};
use crate::schema::{Dataset, META_KEY, NodeRow, NodeTable, ProblemInfo, SignalTable};

/// Column names, in file order. Optional audit columns come last.
pub mod col {
    pub const PROBLEM_ID: &str = "problem_id";
    pub const DATASET: &str = "dataset";
    pub const SPLIT: &str = "split";
    pub const WEAK_MODEL: &str = "weak_model";
    pub const STRONG_MODEL: &str = "strong_model";
    pub const PRM_MODEL: &str = "prm_model";
    pub const TREE: &str = "tree";
    pub const NODE: &str = "node";
    pub const PARENT: &str = "parent";
    pub const ACTION: &str = "action";
    pub const DEPTH: &str = "depth";
    pub const WEAK_TOKENS: &str = "weak_tokens";
    pub const WEAK_PRM: &str = "weak_prm";
    pub const WEAK_FINISHED: &str = "weak_finished";
    pub const WEAK_STATE: &str = "weak_state";
    pub const STRONG_TOKENS: &str = "strong_tokens";
    pub const STRONG_PRM: &str = "strong_prm";
    pub const STRONG_FINISHED: &str = "strong_finished";
    pub const STRONG_STATE: &str = "strong_state";
    pub const CONTINUE_CORRECT: &str = "continue_correct";
    pub const REGENERATE_CORRECT: &str = "regenerate_correct";
    pub const WEAK_TEXT: &str = "weak_text";
    pub const WEAK_HASH: &str = "weak_hash";
    pub const STRONG_TEXT: &str = "strong_text";
    pub const STRONG_HASH: &str = "strong_hash";
}

fn pl_err(path: &Path, what: &str) -> impl Fn(PolarsError) -> DataError {
    let path = path.to_path_buf();
    let what = what.to_string();
    move |e| DataError::file(&path, format!("{what}: {e}"))
}

/// Problems as a reader numbers them (first appearance in the rows, one per `problem_id`), and
/// each dataset problem's index in that order. A problem without rows cannot be written (a
/// parquet file has no row to hold it), nor can two different problems share an id.
fn reader_problems<'a>(path: &Path, ds: &'a Dataset) -> Result<(Vec<&'a ProblemInfo>, Vec<u32>)> {
    const NONE: u32 = u32::MAX;
    let mut remap = vec![NONE; ds.problems.len()];
    let mut order: Vec<&ProblemInfo> = vec![];
    let mut by_id: HashMap<&str, u32> = HashMap::new();
    for (i, r) in ds.rows.iter().enumerate() {
        let p = r.problem as usize;
        let Some(info) = ds.problems.get(p) else {
            return Err(DataError::new(
                path,
                Loc::Row(i),
                Some("problem"),
                format!(
                    "problem index {p} out of range ({} problems)",
                    ds.problems.len()
                ),
            ));
        };
        if remap[p] != NONE {
            continue;
        }
        let k = *by_id.entry(&info.problem_id).or_insert_with(|| {
            order.push(info);
            (order.len() - 1) as u32
        });
        if order[k as usize] != info {
            return Err(DataError::new(
                path,
                Loc::Problem(info.problem_id.clone()),
                Some(col::PROBLEM_ID),
                "two problems with this id have different fields: cannot write them",
            ));
        }
        remap[p] = k;
    }
    if let Some(p) = remap.iter().position(|&k| k == NONE) {
        return Err(DataError::new(
            path,
            Loc::Problem(ds.problems[p].problem_id.clone()),
            None,
            "problem has no nodes: nothing to write",
        ));
    }
    Ok((order, remap))
}

/// The content checksum a reader will compute for `ds` written as parquet with `meta_json`.
fn parquet_checksum(path: &Path, ds: &Dataset, meta_json: &str) -> Result<String> {
    let (problems, remap) = reader_problems(path, ds)?;
    let table = NodeTable::from_rows(ds.rows.iter(), |r| remap[r.problem as usize]);
    Ok(content_sha256(Content {
        meta_text: Some(meta_json),
        problems: problems.into_iter(),
        table: &table,
        audit: audit_digests(&ds.rows),
    }))
}

/// Digests of the four audit columns of `rows`, in file order.
pub(crate) fn audit_digests<'a>(
    rows: impl IntoIterator<Item = &'a NodeRow> + Clone,
) -> [String; 4] {
    type Pick = fn(&NodeRow) -> Option<&str>;
    let picks: [Pick; 4] = [
        |r| r.weak.text.as_deref(),
        |r| r.weak.hash.as_deref(),
        |r| r.strong.as_ref().and_then(|s| s.text.as_deref()),
        |r| r.strong.as_ref().and_then(|s| s.hash.as_deref()),
    ];
    picks.map(|pick| {
        let mut h = StrColumnHasher::new();
        rows.clone().into_iter().for_each(|r| h.push(pick(r)));
        h.finish()
    })
}

/// Write `ds` as parquet (zstd), atomically, with its content checksum in the footer.
pub fn write_parquet(path: &Path, ds: &Dataset) -> Result<()> {
    let meta_json = serde_json::to_string(&ds.meta)
        .map_err(|e| DataError::file(path, format!("cannot encode metadata: {e}")))?;
    // Also checks every row's problem index, so the columns below cannot index out of range.
    let checksum = parquet_checksum(path, ds, &meta_json)?;
    let mut df = frame(path, ds)?;
    super::write_atomic(path, |w| {
        contain(path, "writing parquet", || {
            ParquetWriter::new(w)
                .with_compression(ParquetCompression::Zstd(None))
                .with_key_value_metadata(Some(KeyValueMetadata::from_static(vec![
                    (META_KEY.to_string(), meta_json),
                    (CHECKSUM_KEY.to_string(), checksum),
                ])))
                .finish(&mut df)
                .map_err(pl_err(path, "cannot write parquet"))?;
            Ok(())
        })
    })
}

/// The signal columns some row carries (judge score, mean log-prob per candidate), in order.
fn signal_columns(rows: &[NodeRow]) -> Vec<(&'static str, Column)> {
    let mut out = vec![];
    for sig in SignalTable::COLUMNS {
        let get = |r: &NodeRow| SignalTable::of_row(sig, r);
        if rows.iter().any(|r| get(r).is_some()) {
            let values: Vec<Option<f32>> = rows.iter().map(get).collect();
            out.push((sig.name, Column::new("".into(), values)));
        }
    }
    out
}

/// The table to write: one row per node, columns in file order (audit columns only when some
/// row carries them).
fn frame(path: &Path, ds: &Dataset) -> Result<DataFrame> {
    let rows = &ds.rows;
    let pinfo = |f: fn(&ProblemInfo) -> &str| -> Column {
        let v: Vec<&str> = rows
            .iter()
            .map(|r| f(&ds.problems[r.problem as usize]))
            .collect();
        Column::new("".into(), v)
    };
    let mut cols: Vec<(&str, Column)> = vec![
        (col::PROBLEM_ID, pinfo(|p| &p.problem_id)),
        (col::DATASET, pinfo(|p| &p.dataset)),
        (col::SPLIT, pinfo(|p| &p.split)),
        (col::WEAK_MODEL, pinfo(|p| &p.weak_model)),
        (col::STRONG_MODEL, pinfo(|p| &p.strong_model)),
        (col::PRM_MODEL, pinfo(|p| &p.prm_model)),
    ];
    macro_rules! column {
        ($name:expr, $f:expr) => {
            cols.push((
                $name,
                Column::new("".into(), rows.iter().map($f).collect::<Vec<_>>()),
            ))
        };
    }
    column!(col::TREE, |r| r.tree);
    column!(col::NODE, |r| r.node);
    column!(col::PARENT, |r| r.parent);
    column!(col::ACTION, |r| r.action.map(|a| a as u8));
    column!(col::DEPTH, |r| r.depth);
    column!(col::WEAK_TOKENS, |r| r.weak.tokens);
    column!(col::WEAK_PRM, |r| r.weak.prm);
    column!(col::WEAK_FINISHED, |r| r.weak.finished);
    column!(col::WEAK_STATE, |r| r.weak.state.map(|s| s as u8));
    column!(col::STRONG_TOKENS, |r| r.strong.as_ref().map(|s| s.tokens));
    column!(col::STRONG_PRM, |r| r.strong.as_ref().map(|s| s.prm));
    column!(col::STRONG_FINISHED, |r| r
        .strong
        .as_ref()
        .map(|s| s.finished));
    column!(col::STRONG_STATE, |r| r
        .strong
        .as_ref()
        .and_then(|s| s.state)
        .map(|s| s as u8));
    column!(col::CONTINUE_CORRECT, |r| r.continue_correct);
    column!(col::REGENERATE_CORRECT, |r| r.regenerate_correct);
    cols.extend(signal_columns(rows));
    // Audit columns only when some row carries them.
    type Pick = fn(&NodeRow) -> Option<&str>;
    let audit: [(&str, Pick); 4] = [
        (col::WEAK_TEXT, |r| r.weak.text.as_deref()),
        (col::WEAK_HASH, |r| r.weak.hash.as_deref()),
        (col::STRONG_TEXT, |r| {
            r.strong.as_ref().and_then(|s| s.text.as_deref())
        }),
        (col::STRONG_HASH, |r| {
            r.strong.as_ref().and_then(|s| s.hash.as_deref())
        }),
    ];
    for (name, pick) in audit {
        if rows.iter().any(|r| pick(r).is_some()) {
            column!(name, pick);
        }
    }
    let columns = cols
        .into_iter()
        .map(|(name, c)| c.with_name(name.into()))
        .collect();
    DataFrame::new(rows.len(), columns).map_err(pl_err(path, "cannot build table"))
}
