//! Parquet, the canonical on-disk format: one row per node, metadata JSON in the footer.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;

use crate::error::{DataError, Loc, Result};
use crate::schema::{CandidateRec, Dataset, META_KEY, Meta, NodeRow, ProblemInfo};

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

/// Write `ds` as parquet (zstd), atomically.
pub fn write_parquet(path: &Path, ds: &Dataset) -> Result<()> {
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
    column!(col::ACTION, |r| r.action);
    column!(col::DEPTH, |r| r.depth);
    column!(col::WEAK_TOKENS, |r| r.weak.tokens);
    column!(col::WEAK_PRM, |r| r.weak.prm);
    column!(col::WEAK_FINISHED, |r| r.weak.finished);
    column!(col::WEAK_STATE, |r| r.weak.state);
    column!(col::STRONG_TOKENS, |r| r.strong.as_ref().map(|s| s.tokens));
    column!(col::STRONG_PRM, |r| r.strong.as_ref().map(|s| s.prm));
    column!(col::STRONG_FINISHED, |r| r
        .strong
        .as_ref()
        .map(|s| s.finished));
    column!(col::STRONG_STATE, |r| r
        .strong
        .as_ref()
        .and_then(|s| s.state));
    column!(col::CONTINUE_CORRECT, |r| r.continue_correct);
    column!(col::REGENERATE_CORRECT, |r| r.regenerate_correct);
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
    let mut df = DataFrame::new(rows.len(), columns).map_err(pl_err(path, "cannot build table"))?;
    let meta_json = serde_json::to_string(&ds.meta)
        .map_err(|e| DataError::file(path, format!("cannot encode metadata: {e}")))?;
    super::write_atomic(path, |w| {
        ParquetWriter::new(w)
            .with_compression(ParquetCompression::Zstd(None))
            .with_key_value_metadata(Some(KeyValueMetadata::from_static(vec![(
                META_KEY.to_string(),
                meta_json,
            )])))
            .finish(&mut df)
            .map_err(pl_err(path, "cannot write parquet"))?;
        Ok(())
    })
}

/// Typed access to a column with errors that name the file, row and field.
struct Cols<'a> {
    df: &'a DataFrame,
    path: &'a Path,
}

impl Cols<'_> {
    fn get(&self, name: &str) -> Result<&Column> {
        self.df.column(name).map_err(|_| {
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

    fn null_err(&self, name: &str, row: usize) -> DataError {
        DataError::new(
            self.path,
            Loc::Row(row),
            Some(name),
            "null in a required field",
        )
    }

    /// Integers in `[lo, hi]`; any integer column type is accepted.
    fn ints(&self, name: &str, lo: i64, hi: i64, nullable: bool) -> Result<Vec<Option<i64>>> {
        let c = self.get(name)?;
        if !c.dtype().is_integer() {
            return Err(self.type_err(name, "an integer column", c.dtype()));
        }
        let c = c.cast(&DataType::Int64).map_err(pl_err(self.path, name))?;
        let ca = c.i64().map_err(pl_err(self.path, name))?;
        ca.iter()
            .enumerate()
            .map(|(row, v)| match v {
                None if nullable => Ok(None),
                None => Err(self.null_err(name, row)),
                Some(x) if x < lo || x > hi => Err(DataError::new(
                    self.path,
                    Loc::Row(row),
                    Some(name),
                    format!("value {x} outside [{lo}, {hi}]"),
                )),
                Some(x) => Ok(Some(x)),
            })
            .collect()
    }

    /// Floats (f32 or f64 columns); range checks happen in validation.
    fn floats(&self, name: &str, nullable: bool) -> Result<Vec<Option<f64>>> {
        let c = self.get(name)?;
        if !c.dtype().is_float() {
            return Err(self.type_err(name, "a float column", c.dtype()));
        }
        let c = c
            .cast(&DataType::Float64)
            .map_err(pl_err(self.path, name))?;
        let ca = c.f64().map_err(pl_err(self.path, name))?;
        self.nulls_checked(name, nullable, ca.iter())
    }

    fn bools(&self, name: &str, nullable: bool) -> Result<Vec<Option<bool>>> {
        let c = self.get(name)?;
        let ca = c
            .bool()
            .map_err(|_| self.type_err(name, "a boolean column", c.dtype()))?;
        self.nulls_checked(name, nullable, ca.iter())
    }

    fn strs(&self, name: &str, nullable: bool) -> Result<Vec<Option<String>>> {
        let c = self.get(name)?;
        let ca = c
            .str()
            .map_err(|_| self.type_err(name, "a string column", c.dtype()))?;
        self.nulls_checked(name, nullable, ca.iter().map(|v| v.map(str::to_owned)))
    }

    /// Collect a column, refusing nulls unless the field is nullable.
    fn nulls_checked<T>(
        &self,
        name: &str,
        nullable: bool,
        values: impl Iterator<Item = Option<T>>,
    ) -> Result<Vec<Option<T>>> {
        values
            .enumerate()
            .map(|(row, v)| match v {
                None if !nullable => Err(self.null_err(name, row)),
                v => Ok(v),
            })
            .collect()
    }

    fn opt_strs(&self, name: &str) -> Result<Option<Vec<Option<String>>>> {
        if self.df.column(name).is_err() {
            return Ok(None);
        }
        self.strs(name, true).map(Some)
    }
}

/// Read a parquet dataset: column presence and types, nulls, integer ranges, problem fields.
pub fn read_parquet(path: &Path) -> Result<Dataset> {
    let file = std::fs::File::open(path)
        .map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    let mut reader = ParquetReader::new(file);
    let meta_json = reader
        .get_metadata()
        .map_err(pl_err(
            path,
            "not a readable parquet file (truncated or corrupt?)",
        ))?
        .key_value_metadata
        .as_ref()
        .and_then(|kv| kv.iter().find(|k| k.key == META_KEY))
        .and_then(|k| k.value.clone());
    let df = reader.finish().map_err(pl_err(
        path,
        "cannot read parquet data (truncated or corrupt?)",
    ))?;
    if df.height() == 0 {
        return Err(DataError::file(path, "no rows"));
    }
    let meta = match meta_json {
        Some(j) => serde_json::from_str::<Meta>(&j).map_err(|e| {
            DataError::new(
                path,
                Loc::File,
                Some(META_KEY),
                format!("bad metadata JSON: {e}"),
            )
        })?,
        None => Meta::new(super::jsonl::stem(path)),
    };
    let c = Cols { df: &df, path };
    let u32max = i64::from(u32::MAX);
    let pid = c.strs(col::PROBLEM_ID, false)?;
    let dataset = c.strs(col::DATASET, false)?;
    let split = c.strs(col::SPLIT, false)?;
    let wm = c.strs(col::WEAK_MODEL, false)?;
    let sm = c.strs(col::STRONG_MODEL, false)?;
    let pm = c.strs(col::PRM_MODEL, false)?;
    let tree = c.ints(col::TREE, 0, u32max, false)?;
    let node = c.ints(col::NODE, 0, u32max, false)?;
    let parent = c.ints(col::PARENT, 0, u32max, true)?;
    let action = c.ints(col::ACTION, 0, 1, true)?;
    let depth = c.ints(col::DEPTH, 0, i64::from(u16::MAX), false)?;
    let wt = c.ints(col::WEAK_TOKENS, 0, u32max, false)?;
    let wp = c.floats(col::WEAK_PRM, false)?;
    let wf = c.bools(col::WEAK_FINISHED, false)?;
    let ws = c.ints(col::WEAK_STATE, 0, 2, true)?;
    let st = c.ints(col::STRONG_TOKENS, 0, u32max, true)?;
    let sp = c.floats(col::STRONG_PRM, true)?;
    let sf = c.bools(col::STRONG_FINISHED, true)?;
    let ss = c.ints(col::STRONG_STATE, 0, 2, true)?;
    let cc = c.bools(col::CONTINUE_CORRECT, true)?;
    let rc = c.bools(col::REGENERATE_CORRECT, true)?;
    let wtext = c.opt_strs(col::WEAK_TEXT)?;
    let whash = c.opt_strs(col::WEAK_HASH)?;
    let stext = c.opt_strs(col::STRONG_TEXT)?;
    let shash = c.opt_strs(col::STRONG_HASH)?;
    let pick = |v: &Option<Vec<Option<String>>>, i: usize| v.as_ref().and_then(|v| v[i].clone());

    let mut problems: Vec<ProblemInfo> = vec![];
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut rows = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let some = |v: &Vec<Option<String>>| v[i].clone().unwrap_or_default();
        let info = ProblemInfo {
            problem_id: some(&pid),
            dataset: some(&dataset),
            split: some(&split),
            weak_model: some(&wm),
            strong_model: some(&sm),
            prm_model: some(&pm),
        };
        let p = match index.get(&info.problem_id) {
            Some(&p) => {
                let known = &problems[p as usize];
                for (field, a, b) in [
                    (col::DATASET, &known.dataset, &info.dataset),
                    (col::SPLIT, &known.split, &info.split),
                    (col::WEAK_MODEL, &known.weak_model, &info.weak_model),
                    (col::STRONG_MODEL, &known.strong_model, &info.strong_model),
                    (col::PRM_MODEL, &known.prm_model, &info.prm_model),
                ] {
                    if a != b {
                        return Err(DataError::new(
                            path,
                            Loc::Row(i),
                            Some(field),
                            format!(
                                "problem `{}` has `{a}` on an earlier row and `{b}` here",
                                info.problem_id
                            ),
                        ));
                    }
                }
                p
            }
            None => {
                let p = problems.len() as u32;
                index.insert(info.problem_id.clone(), p);
                problems.push(info);
                p
            }
        };
        // Strong columns must be all set or all null.
        let strong = match (st[i], sp[i], sf[i]) {
            (Some(t), Some(prm), Some(fin)) => Some(CandidateRec {
                tokens: t as u32,
                prm: prm as f32,
                finished: fin,
                state: ss[i].map(|s| s as u8),
                text: pick(&stext, i),
                hash: pick(&shash, i),
            }),
            (None, None, None) => None,
            _ => {
                return Err(DataError::new(
                    path,
                    Loc::Row(i),
                    Some(col::STRONG_TOKENS),
                    "strong_tokens, strong_prm and strong_finished must be all set or all null",
                ));
            }
        };
        let req = |v: Option<i64>| v.unwrap_or_default();
        rows.push(NodeRow {
            problem: p,
            tree: req(tree[i]) as u32,
            node: req(node[i]) as u32,
            parent: parent[i].map(|x| x as u32),
            action: action[i].map(|x| x as u8),
            depth: req(depth[i]) as u16,
            weak: CandidateRec {
                tokens: req(wt[i]) as u32,
                prm: wp[i].unwrap_or(f64::NAN) as f32,
                finished: wf[i].unwrap_or(false),
                state: ws[i].map(|s| s as u8),
                text: pick(&wtext, i),
                hash: pick(&whash, i),
            },
            strong,
            continue_correct: cc[i],
            regenerate_correct: rc[i],
        });
    }
    Ok(Dataset::new(meta, problems, rows))
}
