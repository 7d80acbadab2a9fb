//! Reading the canonical parquet form column by column, straight into a [`NodeTable`]: no
//! per-row structs, one decoded column in memory at a time, the content checksum computed on
//! the way. Checks here are the per-value ones (column present, type, nulls, integer ranges, a
//! problem's fields agreeing on every row, strong columns all set or all null); tree invariants
//! are the validator's.

use std::collections::HashMap;
use std::path::Path;

use super::Decoded;
use super::checksum::{
    CHECKSUM_KEY, Content, LoadOptions, StrColumnHasher, content_sha256, verify,
};
use super::columns::ParquetColumns;
use super::parquet::col;
use crate::error::{DataError, Loc, Result};
use crate::schema::{
    AuditColumns, META_KEY, Meta, NodeFlags as F, NodeTable, ProblemInfo,
};

const U32: i128 = u32::MAX as i128;

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
    let meta = match &meta_text {
        Some(j) => serde_json::from_str::<Meta>(j).map_err(|e| {
            DataError::new(
                path,
                Loc::File,
                Some(META_KEY),
                format!("bad metadata JSON: {e}"),
            )
        })?,
        None => Meta::new(super::jsonl::stem(path)),
    };
    meta.check_format(path, Loc::File)?;
    let n = pc.n_rows();
    if n == 0 {
        return Err(DataError::file(path, "no rows"));
    }
    if n > trim_env::forest::MAX_NODES {
        return Err(DataError::file(
            path,
            format!("{n} rows exceed the maximum of {}", trim_env::forest::MAX_NODES),
        ));
    }
    let mut t = NodeTable::zeroed(n);
    let problems = read_problems(&pc, &mut t)?;
    read_structure(&pc, &mut t)?;
    read_candidates(&pc, &mut t)?;
    check_strong_complete(path, &t)?;
    let (digests, audit) = read_audit(&pc, &t, keep_audit)?;
    let integrity = verify(path, opts, recorded.as_deref(), || {
        content_sha256(Content {
            meta_text: meta_text.as_deref(),
            problems: problems.iter(),
            table: &t,
            audit: digests,
        })
    })?;
    Ok(Decoded {
        meta,
        problems,
        table: t,
        audit,
        rows: None,
        lines: None,
        integrity,
    })
}

/// `problem_id` → problem index (first-appearance order), then the five problem-level fields,
/// which must agree on every row of a problem.
fn read_problems(pc: &ParquetColumns, t: &mut NodeTable) -> Result<Vec<ProblemInfo>> {
    let mut problems: Vec<ProblemInfo> = vec![];
    {
        let c = pc.required(col::PROBLEM_ID)?;
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut last: Option<u32> = None;
        pc.for_each_str(col::PROBLEM_ID, &c, |row, v| {
            let v = v.ok_or_else(|| pc.null_err(col::PROBLEM_ID, row))?;
            let p = match last {
                Some(p) if problems[p as usize].problem_id == v => p,
                _ => *index.entry(v.to_owned()).or_insert_with(|| {
                    problems.push(ProblemInfo {
                        problem_id: v.to_owned(),
                        dataset: String::new(),
                        split: String::new(),
                        weak_model: String::new(),
                        strong_model: String::new(),
                        prm_model: String::new(),
                    });
                    (problems.len() - 1) as u32
                }),
            };
            last = Some(p);
            t.problem[row] = p;
            Ok(())
        })?;
    }
    type Field = fn(&mut ProblemInfo) -> &mut String;
    let fields: [(&str, Field); 5] = [
        (col::DATASET, |p| &mut p.dataset),
        (col::SPLIT, |p| &mut p.split),
        (col::WEAK_MODEL, |p| &mut p.weak_model),
        (col::STRONG_MODEL, |p| &mut p.strong_model),
        (col::PRM_MODEL, |p| &mut p.prm_model),
    ];
    for (name, field) in fields {
        let c = pc.required(name)?;
        let mut seen = vec![false; problems.len()];
        pc.for_each_str(name, &c, |row, v| {
            let v = v.ok_or_else(|| pc.null_err(name, row))?;
            let p = t.problem[row] as usize;
            let info = &mut problems[p];
            if !seen[p] {
                seen[p] = true;
                field(info).push_str(v);
            } else if field(info) != v {
                let known = field(info).clone();
                return Err(DataError::new(
                    pc.path(),
                    Loc::Row(row),
                    Some(name),
                    format!(
                        "problem `{}` has `{known}` on an earlier row and `{v}` here",
                        info.problem_id
                    ),
                ));
            }
            Ok(())
        })?;
    }
    Ok(problems)
}

/// An integer column in `[lo, hi]`; `presence` is the flag bit of a nullable field (`None`:
/// required). `store` receives each present value.
fn ints(
    pc: &ParquetColumns,
    flags: &mut [F],
    name: &str,
    (lo, hi): (i128, i128),
    presence: Option<u16>,
    mut store: impl FnMut(usize, i128),
) -> Result<()> {
    let c = pc.required(name)?;
    pc.for_each_int(name, &c, |row, v| match v {
        None if presence.is_some() => Ok(()),
        None => Err(pc.null_err(name, row)),
        Some(x) if x < lo || x > hi => Err(DataError::new(
            pc.path(),
            Loc::Row(row),
            Some(name),
            format!("value {x} outside [{lo}, {hi}]"),
        )),
        Some(x) => {
            if let Some(b) = presence {
                flags[row].0 |= b;
            }
            store(row, x);
            Ok(())
        }
    })
}

/// Tree structure: tree, node, parent, action, depth.
fn read_structure(pc: &ParquetColumns, t: &mut NodeTable) -> Result<()> {
    let fl = &mut t.flags;
    ints(pc, fl, col::TREE, (0, U32), None, |r, x| t.tree[r] = x as u32)?;
    ints(pc, fl, col::NODE, (0, U32), None, |r, x| t.node[r] = x as u32)?;
    let parent = Some(F::PARENT);
    ints(pc, fl, col::PARENT, (0, U32), parent, |r, x| {
        t.parent[r] = x as u32
    })?;
    let action = Some(F::ACTION);
    ints(pc, fl, col::ACTION, (0, 1), action, |r, x| t.action[r] = x as u8)?;
    let d = (0, i128::from(u16::MAX));
    ints(pc, fl, col::DEPTH, d, None, |r, x| t.depth[r] = x as u16)
}

/// A float column; `presence` as for [`ints`]. Values are stored as f32 (range checks are the
/// validator's).
fn floats(
    pc: &ParquetColumns,
    flags: &mut [F],
    name: &str,
    presence: Option<u16>,
    out: &mut [f32],
) -> Result<()> {
    let c = pc.required(name)?;
    pc.for_each_float(name, &c, |row, v| match v {
        None if presence.is_some() => Ok(()),
        None => Err(pc.null_err(name, row)),
        Some(x) => {
            if let Some(b) = presence {
                flags[row].0 |= b;
            }
            out[row] = x as f32;
            Ok(())
        }
    })
}

/// A boolean column: `set` is the presence bit of a nullable field (0: required), `value` the
/// bit recording `true`.
fn bools(pc: &ParquetColumns, flags: &mut [F], name: &str, set: u16, value: u16) -> Result<()> {
    let c = pc.required(name)?;
    pc.for_each_bool(name, &c, |row, v| match v {
        None if set != 0 => Ok(()),
        None => Err(pc.null_err(name, row)),
        Some(b) => {
            flags[row].0 |= set | if b { value } else { 0 };
            Ok(())
        }
    })
}

/// Candidates and outcomes.
fn read_candidates(pc: &ParquetColumns, t: &mut NodeTable) -> Result<()> {
    let fl = &mut t.flags;
    let state = (0, 2);
    ints(pc, fl, col::WEAK_TOKENS, (0, U32), None, |r, x| {
        t.weak_tokens[r] = x as u32
    })?;
    floats(pc, fl, col::WEAK_PRM, None, &mut t.weak_prm)?;
    bools(pc, fl, col::WEAK_FINISHED, 0, F::WEAK_FINISHED)?;
    ints(pc, fl, col::WEAK_STATE, state, Some(F::WEAK_STATE), |r, x| {
        t.weak_state[r] = x as u8
    })?;
    ints(pc, fl, col::STRONG_TOKENS, (0, U32), Some(F::STRONG), |r, x| {
        t.strong_tokens[r] = x as u32
    })?;
    floats(pc, fl, col::STRONG_PRM, Some(F::STRONG_PRM), &mut t.strong_prm)?;
    let (set, fin) = (F::STRONG_FINISHED_SET, F::STRONG_FINISHED);
    bools(pc, fl, col::STRONG_FINISHED, set, fin)?;
    ints(pc, fl, col::STRONG_STATE, state, Some(F::STRONG_STATE), |r, x| {
        t.strong_state[r] = x as u8
    })?;
    let (set, val) = (F::CONTINUE_SET, F::CONTINUE_CORRECT);
    bools(pc, fl, col::CONTINUE_CORRECT, set, val)?;
    let (set, val) = (F::REGENERATE_SET, F::REGENERATE_CORRECT);
    bools(pc, fl, col::REGENERATE_CORRECT, set, val)
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

/// Digest every audit column (weak_text, weak_hash, strong_text, strong_hash) and keep them
/// with `keep`.
fn read_audit(
    pc: &ParquetColumns,
    t: &NodeTable,
    keep: bool,
) -> Result<([String; 4], AuditColumns)> {
    let names = [col::WEAK_TEXT, col::WEAK_HASH, col::STRONG_TEXT, col::STRONG_HASH];
    let mut kept: [Option<Vec<Option<String>>>; 4] = Default::default();
    let mut digests: [String; 4] = Default::default();
    for (k, name) in names.into_iter().enumerate() {
        let Some(c) = pc.column(name)? else {
            digests[k] = StrColumnHasher::nulls(t.len());
            continue;
        };
        let strong = k >= 2;
        let mut h = StrColumnHasher::new();
        let mut out = keep.then(|| Vec::with_capacity(t.len()));
        pc.for_each_str(name, &c, |row, v| {
            if strong && v.is_some() && !t.flags[row].has(F::STRONG) {
                return Err(DataError::new(
                    pc.path(),
                    Loc::Row(row),
                    Some(name),
                    "audit text is set but there is no strong candidate",
                ));
            }
            h.push(v);
            if let Some(o) = out.as_mut() {
                o.push(v.map(str::to_owned));
            }
            Ok(())
        })?;
        digests[k] = h.finish();
        kept[k] = out;
    }
    let [weak_text, weak_hash, strong_text, strong_hash] = kept;
    let audit = AuditColumns {
        weak_text,
        weak_hash,
        strong_text,
        strong_hash,
    };
    Ok((digests, audit))
}
