//! Reading the canonical parquet form straight into a [`NodeTable`]: no per-row structs, one
//! decoded row group in memory at a time, the content checksum computed on the way. Checks here are the per-value ones (column present, type, nulls, integer ranges, a
//! problem's fields agreeing on every row, strong columns all set or all null); tree invariants
//! are the validator's.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::{Column, Float32Type, UInt16Type, UInt32Type};

use super::checksum::{CHECKSUM_KEY, LoadOptions, StrColumnHasher, verify};
use super::columns::{Batch, ParquetColumns};
use super::parquet::col;
use super::{ContentCheck, Decoded};
use crate::error::{DataError, Loc, Result};
use crate::schema::{
    AuditColumns, Dataset, META_KEY, Meta, NodeFlags as F, NodeTable, ProblemInfo, SignalTable,
};

const U32: i128 = u32::MAX as i128;

/// Every column the format requires (the audit columns are optional).
const REQUIRED: [&str; 21] = [
    col::PROBLEM_ID,
    col::DATASET,
    col::SPLIT,
    col::WEAK_MODEL,
    col::STRONG_MODEL,
    col::PRM_MODEL,
    col::TREE,
    col::NODE,
    col::PARENT,
    col::ACTION,
    col::DEPTH,
    col::WEAK_TOKENS,
    col::WEAK_PRM,
    col::WEAK_FINISHED,
    col::WEAK_STATE,
    col::STRONG_TOKENS,
    col::STRONG_PRM,
    col::STRONG_FINISHED,
    col::STRONG_STATE,
    col::CONTINUE_CORRECT,
    col::REGENERATE_CORRECT,
];

/// Decode `path`; audit strings are kept only with `keep_audit` (they are always checksummed).
pub(crate) fn read_parquet_decoded(
    path: &Path,
    opts: &LoadOptions,
    keep_audit: bool,
) -> Result<Decoded> {
    let pc = ParquetColumns::open(path)?;
    let meta_text = pc.key_value(META_KEY).map(str::to_owned);
    let recorded = pc.key_value(CHECKSUM_KEY).map(str::to_owned);
    if recorded.is_none() {
        // Refuse an unverified file before decoding it, unless the caller allows it.
        verify(path, opts, None, String::new)?;
    }
    let meta = parse_meta(path, meta_text.as_deref())?;
    let n = pc.n_rows();
    if n == 0 {
        return Err(DataError::file(path, "no rows"));
    }
    if n > trim_env::forest::MAX_NODES {
        let max = trim_env::forest::MAX_NODES;
        return Err(DataError::file(
            path,
            format!("{n} rows exceed the maximum of {max}"),
        ));
    }
    pc.require(&REQUIRED)?;
    let mut t = NodeTable::zeroed(n);
    let mut problems = ProblemReader::default();
    let mut audit = AuditReader::new(keep_audit);
    let groups = pc.row_groups()?;
    // Decode the next row group (polars, in parallel over columns) while this thread fills
    // the table from the current one.
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Batch>>(1);
        s.spawn(move || {
            for b in groups {
                if tx.send(b).is_err() {
                    break;
                }
            }
        });
        for b in rx {
            let b = b?;
            problems.read(&pc, &b, &mut t)?;
            read_structure(&pc, &b, &mut t)?;
            read_candidates(&pc, &b, &mut t)?;
            read_signals(&pc, &b, &mut t)?;
            audit.read(&pc, &b, &t)?;
        }
        Ok::<(), DataError>(())
    })?;
    check_strong_complete(path, &t)?;
    let (digests, audit) = audit.finish(n);
    Ok(Decoded {
        meta,
        problems: problems.problems,
        table: t,
        audit,
        rows: None,
        lines: None,
        check: ContentCheck {
            meta_text,
            recorded,
            audit: digests,
        },
    })
}

/// The `trim.meta` JSON (a default for files without one), of this format and version.
fn parse_meta(path: &Path, text: Option<&str>) -> Result<Meta> {
    let meta = match text {
        Some(j) => serde_json::from_str::<Meta>(j).map_err(|e| {
            let why = format!("bad metadata JSON: {e}");
            DataError::new(path, Loc::File, Some(META_KEY), why)
        })?,
        None => Meta::new(super::jsonl::stem(path)),
    };
    meta.check_format(path, Loc::File)?;
    Ok(meta)
}

/// Column `name` of a row group.
fn col<'b>(pc: &ParquetColumns, b: &'b Batch, name: &str) -> Result<&'b Column> {
    b.column(name)
        .ok_or_else(|| DataError::new(pc.path(), Loc::File, Some(name), "missing required column"))
}

type Field = fn(&mut ProblemInfo) -> &mut String;
/// The problem-level fields besides `problem_id`.
const FIELDS: [(&str, Field); 5] = [
    (col::DATASET, |p| &mut p.dataset),
    (col::SPLIT, |p| &mut p.split),
    (col::WEAK_MODEL, |p| &mut p.weak_model),
    (col::STRONG_MODEL, |p| &mut p.strong_model),
    (col::PRM_MODEL, |p| &mut p.prm_model),
];

/// Problems in first-appearance order; a problem's fields must agree on every row.
#[derive(Default)]
struct ProblemReader {
    problems: Vec<ProblemInfo>,
    index: HashMap<String, u32>,
    /// Bit `k` set once field `FIELDS[k]` of the problem is known.
    fields_set: Vec<u8>,
}

impl ProblemReader {
    fn intern(&mut self, id: &str) -> u32 {
        if let Some(&p) = self.index.get(id) {
            return p;
        }
        let p = self.problems.len() as u32;
        self.problems.push(ProblemInfo {
            problem_id: id.to_owned(),
            dataset: String::new(),
            split: String::new(),
            weak_model: String::new(),
            strong_model: String::new(),
            prm_model: String::new(),
        });
        self.fields_set.push(0);
        self.index.insert(id.to_owned(), p);
        p
    }

    /// Problem indices of a row group's rows, then its problem fields checked.
    fn read(&mut self, pc: &ParquetColumns, b: &Batch, t: &mut NodeTable) -> Result<()> {
        let c = col(pc, b, col::PROBLEM_ID)?;
        pc.for_each_str_run(col::PROBLEM_ID, c, b.base, |rows, v| {
            let v = v.ok_or_else(|| pc.null_err(col::PROBLEM_ID, rows.start))?;
            let p = self.intern(v);
            t.problem[rows].fill(p);
            Ok(())
        })?;
        for (k, (name, _)) in FIELDS.iter().enumerate() {
            let c = col(pc, b, name)?;
            pc.for_each_str_run(name, c, b.base, |rows, v| {
                let v = v.ok_or_else(|| pc.null_err(name, rows.start))?;
                let mut last = u32::MAX;
                for row in rows {
                    let p = t.problem[row];
                    if p != last {
                        last = p;
                        self.check_field(pc, k, p, row, v)?;
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    fn check_field(
        &mut self,
        pc: &ParquetColumns,
        k: usize,
        p: u32,
        row: usize,
        v: &str,
    ) -> Result<()> {
        let (name, field) = FIELDS[k];
        let info = &mut self.problems[p as usize];
        let set = &mut self.fields_set[p as usize];
        if *set & (1 << k) == 0 {
            *set |= 1 << k;
            field(info).push_str(v);
            return Ok(());
        }
        if field(info) == v {
            return Ok(());
        }
        let known = field(info).clone();
        let why = format!(
            "problem `{}` has `{known}` on an earlier row and `{v}` here",
            info.problem_id
        );
        Err(DataError::new(pc.path(), Loc::Row(row), Some(name), why))
    }
}

/// An integer column in `[lo, hi]`; `presence` is the flag bit of a nullable field (`None`:
/// required). `store` receives each present value.
fn ints(
    pc: &ParquetColumns,
    b: &Batch,
    flags: &mut [F],
    name: &str,
    (lo, hi): (i128, i128),
    presence: Option<u16>,
    mut store: impl FnMut(usize, i128),
) -> Result<()> {
    pc.for_each_int(name, col(pc, b, name)?, b.base, |row, v| match v {
        None if presence.is_some() => Ok(()),
        None => Err(pc.null_err(name, row)),
        Some(x) if x < lo || x > hi => Err(DataError::new(
            pc.path(),
            Loc::Row(row),
            Some(name),
            format!("value {x} outside [{lo}, {hi}]"),
        )),
        Some(x) => {
            if let Some(bit) = presence {
                flags[row].0 |= bit;
            }
            store(row, x);
            Ok(())
        }
    })
}

/// A `u32` column (any integer type in range): copied when it is exactly `u32` without nulls.
fn u32s(
    pc: &ParquetColumns,
    b: &Batch,
    flags: &mut [F],
    name: &str,
    presence: Option<u16>,
    out: &mut [u32],
) -> Result<()> {
    let rows = b.base..b.base + b.len();
    if pc.copy_exact::<UInt32Type>(col(pc, b, name)?, &mut out[rows.clone()]) {
        if let Some(bit) = presence {
            flags[rows].iter_mut().for_each(|f| f.0 |= bit);
        }
        return Ok(());
    }
    ints(pc, b, flags, name, (0, U32), presence, |r, x| {
        out[r] = x as u32
    })
}

/// Tree structure: tree, node, parent, action, depth.
fn read_structure(pc: &ParquetColumns, b: &Batch, t: &mut NodeTable) -> Result<()> {
    let fl = &mut t.flags;
    u32s(pc, b, fl, col::TREE, None, &mut t.tree)?;
    u32s(pc, b, fl, col::NODE, None, &mut t.node)?;
    u32s(pc, b, fl, col::PARENT, Some(F::PARENT), &mut t.parent)?;
    let action = Some(F::ACTION);
    ints(pc, b, fl, col::ACTION, (0, 1), action, |r, x| {
        t.action[r] = x as u8
    })?;
    let depths = &mut t.depth[b.base..b.base + b.len()];
    if pc.copy_exact::<UInt16Type>(col(pc, b, col::DEPTH)?, depths) {
        return Ok(());
    }
    let d = (0, i128::from(u16::MAX));
    ints(pc, b, fl, col::DEPTH, d, None, |r, x| t.depth[r] = x as u16)
}

/// A float column; `presence` as for [`ints`]. Values are stored as f32 (range checks are the
/// validator's).
fn floats(
    pc: &ParquetColumns,
    b: &Batch,
    flags: &mut [F],
    name: &str,
    presence: Option<u16>,
    out: &mut [f32],
) -> Result<()> {
    let c = col(pc, b, name)?;
    let rows = b.base..b.base + b.len();
    if pc.copy_exact::<Float32Type>(c, &mut out[rows.clone()]) {
        if let Some(bit) = presence {
            flags[rows].iter_mut().for_each(|f| f.0 |= bit);
        }
        return Ok(());
    }
    pc.for_each_float(name, c, b.base, |row, v| match v {
        None if presence.is_some() => Ok(()),
        None => Err(pc.null_err(name, row)),
        Some(x) => {
            if let Some(bit) = presence {
                flags[row].0 |= bit;
            }
            out[row] = x as f32;
            Ok(())
        }
    })
}

/// A boolean column: `set` is the presence bit of a nullable field (0: required), `value` the
/// bit recording `true`.
fn bools(
    pc: &ParquetColumns,
    b: &Batch,
    flags: &mut [F],
    name: &str,
    (set, value): (u16, u16),
) -> Result<()> {
    pc.for_each_bool(name, col(pc, b, name)?, b.base, |row, v| match v {
        None if set != 0 => Ok(()),
        None => Err(pc.null_err(name, row)),
        Some(x) => {
            flags[row].0 |= set | if x { value } else { 0 };
            Ok(())
        }
    })
}

/// Candidates and outcomes.
fn read_candidates(pc: &ParquetColumns, b: &Batch, t: &mut NodeTable) -> Result<()> {
    let fl = &mut t.flags;
    let state = (0, 2);
    u32s(pc, b, fl, col::WEAK_TOKENS, None, &mut t.weak_tokens)?;
    floats(pc, b, fl, col::WEAK_PRM, None, &mut t.weak_prm)?;
    bools(pc, b, fl, col::WEAK_FINISHED, (0, F::WEAK_FINISHED))?;
    ints(
        pc,
        b,
        fl,
        col::WEAK_STATE,
        state,
        Some(F::WEAK_STATE),
        |r, x| t.weak_state[r] = x as u8,
    )?;
    u32s(
        pc,
        b,
        fl,
        col::STRONG_TOKENS,
        Some(F::STRONG),
        &mut t.strong_tokens,
    )?;
    floats(
        pc,
        b,
        fl,
        col::STRONG_PRM,
        Some(F::STRONG_PRM),
        &mut t.strong_prm,
    )?;
    let fin = (F::STRONG_FINISHED_SET, F::STRONG_FINISHED);
    bools(pc, b, fl, col::STRONG_FINISHED, fin)?;
    ints(
        pc,
        b,
        fl,
        col::STRONG_STATE,
        state,
        Some(F::STRONG_STATE),
        |r, x| t.strong_state[r] = x as u8,
    )?;
    let cont = (F::CONTINUE_SET, F::CONTINUE_CORRECT);
    bools(pc, b, fl, col::CONTINUE_CORRECT, cont)?;
    let regen = (F::REGENERATE_SET, F::REGENERATE_CORRECT);
    bools(pc, b, fl, col::REGENERATE_CORRECT, regen)
}

/// The optional signal columns (judge score, mean log-prob), each read when the file has it.
/// Values are range-checked by the validator, which names the node.
fn read_signals(pc: &ParquetColumns, b: &Batch, t: &mut NodeTable) -> Result<()> {
    let n = t.len();
    for (k, sig) in SignalTable::COLUMNS.into_iter().enumerate() {
        let Some(c) = b.column(sig.name) else {
            continue;
        };
        let out = t.signals.column_mut(k).get_or_insert_with(|| vec![None; n]);
        pc.for_each_float(sig.name, c, b.base, |row, v| {
            out[row] = v.map(|x| x as f32);
            Ok(())
        })?;
    }
    Ok(())
}

/// The strong candidate's columns are all set or all null, and nothing describes an absent one.
fn check_strong_complete(path: &Path, t: &NodeTable) -> Result<()> {
    for (row, f) in t.flags.iter().enumerate() {
        let parts = [F::STRONG, F::STRONG_PRM, F::STRONG_FINISHED_SET].map(|b| f.has(b));
        if parts.contains(&true) && parts.contains(&false) {
            return Err(DataError::new(
                path,
                Loc::Row(row),
                Some(col::STRONG_TOKENS),
                "strong_tokens, strong_prm and strong_finished must be all set or all null",
            ));
        }
        if !parts[0] && f.has(F::STRONG_STATE) {
            return Err(DataError::new(
                path,
                Loc::Row(row),
                Some(col::STRONG_STATE),
                "strong_state is set but there is no strong candidate (strong_tokens is null)",
            ));
        }
    }
    Ok(())
}

/// The optional audit columns: digested row group by row group, kept when asked.
struct AuditReader {
    keep: bool,
    /// Per column: its digest so far and (with `keep`) its values.
    cols: [Option<(StrColumnHasher, Vec<Option<String>>)>; 4],
}

const AUDIT: [&str; 4] = [
    col::WEAK_TEXT,
    col::WEAK_HASH,
    col::STRONG_TEXT,
    col::STRONG_HASH,
];

impl AuditReader {
    fn new(keep: bool) -> Self {
        AuditReader {
            keep,
            cols: Default::default(),
        }
    }

    fn read(&mut self, pc: &ParquetColumns, b: &Batch, t: &NodeTable) -> Result<()> {
        for (k, name) in AUDIT.into_iter().enumerate() {
            let Some(c) = b.column(name) else { continue };
            let (h, kept) = self.cols[k].get_or_insert_with(|| (StrColumnHasher::new(), vec![]));
            let strong = k >= 2;
            pc.for_each_str(name, c, b.base, |row, v| {
                if strong && v.is_some() && !t.flags[row].has(F::STRONG) {
                    return Err(DataError::new(
                        pc.path(),
                        Loc::Row(row),
                        Some(name),
                        "audit text is set but there is no strong candidate",
                    ));
                }
                h.push(v);
                if self.keep {
                    kept.push(v.map(str::to_owned));
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Digests of the four columns (an absent column digests as `n` nulls) and the kept values.
    fn finish(self, n: usize) -> ([String; 4], AuditColumns) {
        let keep = self.keep;
        let mut digests: [String; 4] = Default::default();
        let mut kept: [Option<Vec<Option<String>>>; 4] = Default::default();
        for (k, c) in self.cols.into_iter().enumerate() {
            match c {
                Some((h, values)) => {
                    digests[k] = h.finish();
                    kept[k] = keep.then_some(values);
                }
                None => digests[k] = StrColumnHasher::nulls(n),
            }
        }
        let [weak_text, weak_hash, strong_text, strong_hash] = kept;
        let audit = AuditColumns {
            weak_text,
            weak_hash,
            strong_text,
            strong_hash,
        };
        (digests, audit)
    }
}

/// Read a parquet dataset into rows (the exchange form), verifying its checksum under `opts`.
/// Tree invariants are not checked here: use [`crate::load`].
pub fn read_parquet_with(path: &Path, opts: &LoadOptions) -> Result<Dataset> {
    let d = read_parquet_decoded(path, opts, true)?;
    d.verify(path, opts)?;
    Ok(d.into_dataset())
}

/// [`read_parquet_with`] with options from the environment ([`LoadOptions::from_env`]).
pub fn read_parquet(path: &Path) -> Result<Dataset> {
    read_parquet_with(path, &LoadOptions::from_env())
}
