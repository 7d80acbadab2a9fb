//! JSONL: one problem per line, nodes nested, with an optional first line `{"trim_meta": {…}}`
//! and, in files trim writes, a last line `{"trim_checksum": "<sha256>"}` (see
//! [`super::checksum`]; hand-written files have none and load only when unverified files are
//! allowed).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use trim_env::Action;

use super::checksum::{Content, content_sha256};
use crate::error::{DataError, Loc, Result};
use crate::schema::{CandidateRec, Dataset, Meta, NodeRow, NodeTable, ProblemInfo};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaLine {
    trim_meta: Meta,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProblemLine {
    problem_id: String,
    dataset: String,
    split: String,
    weak_model: String,
    strong_model: String,
    prm_model: String,
    nodes: Vec<NodeJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeJson {
    #[serde(default)]
    tree: u32,
    id: u32,
    #[serde(default)]
    parent: Option<u32>,
    #[serde(default, with = "crate::schema::action_number")]
    action: Option<Action>,
    depth: u16,
    weak: CandidateRec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strong: Option<CandidateRec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    continue_correct: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regenerate_correct: Option<bool>,
}

/// The last line of a JSONL file written by trim: the content checksum.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksumLine {
    trim_checksum: String,
}

/// A JSONL file as read: rows, and what the checksum needs.
pub(crate) struct JsonlFile {
    pub ds: Dataset,
    /// The metadata line exactly as stored.
    pub meta_text: Option<String>,
    /// The checksum of the `{"trim_checksum": …}` line.
    pub recorded: Option<String>,
}

fn starts_with_key(line: &str, key: &str) -> bool {
    line.trim_start()
        .strip_prefix("{\"")
        .is_some_and(|rest| rest.starts_with(key) && rest[key.len()..].starts_with('"'))
}

/// Read a JSONL dataset, one problem per line (a `problem_id` on two lines is an error naming
/// both), with its metadata line and checksum line. Tree invariants and the checksum are
/// checked by the caller.
pub(crate) fn read_jsonl_file(path: &Path) -> Result<JsonlFile> {
    let file = std::fs::File::open(path)
        .map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    let mut out = JsonlFile {
        ds: Dataset::new(Meta::new(stem(path)), vec![], vec![]),
        meta_text: None,
        recorded: None,
    };
    let mut first_line: HashMap<String, usize> = HashMap::new();
    let mut lines = vec![];
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let lineno = i + 1;
        let line = line.map_err(|e| {
            DataError::new(
                path,
                Loc::Line(lineno),
                None,
                format!("unreadable line: {e}"),
            )
        })?;
        if line.trim().is_empty() {
            continue;
        }
        if out.recorded.is_some() {
            return Err(DataError::new(
                path,
                Loc::Line(lineno),
                None,
                "text after the `trim_checksum` line, which must be the last line",
            ));
        }
        if starts_with_key(&line, "trim_checksum") {
            let c: ChecksumLine = parse_line(path, lineno, &line)?;
            out.recorded = Some(c.trim_checksum);
            continue;
        }
        let first = out.meta_text.is_none() && out.ds.problems.is_empty();
        if first && starts_with_key(&line, "trim_meta") {
            let m: MetaLine = parse_line(path, lineno, &line)?;
            m.trim_meta.check_format(path, Loc::Line(lineno))?;
            out.ds.meta = m.trim_meta;
            out.meta_text = Some(line);
            continue;
        }
        let p: ProblemLine = parse_line(path, lineno, &line)?;
        if let Some(earlier) = first_line.insert(p.problem_id.clone(), lineno) {
            return Err(DataError::new(
                path,
                Loc::Line(lineno),
                Some("problem_id"),
                format!(
                    "problem `{}` is also on line {earlier}: one line per problem (put all \
                     its sample trees in that line's `nodes`)",
                    p.problem_id
                ),
            ));
        }
        push_problem(path, lineno, p, &mut out.ds, &mut lines)?;
    }
    if out.ds.rows.is_empty() {
        return Err(DataError::file(path, "no problems in file"));
    }
    out.ds.lines = Some(lines);
    Ok(out)
}

/// Append one problem line's problem and node rows.
fn push_problem(
    path: &Path,
    lineno: usize,
    p: ProblemLine,
    ds: &mut Dataset,
    lines: &mut Vec<u32>,
) -> Result<()> {
    if p.nodes.is_empty() {
        return Err(DataError::new(
            path,
            Loc::Line(lineno),
            Some("nodes"),
            "problem has no nodes",
        ));
    }
    let pid = ds.problems.len() as u32;
    ds.problems.push(ProblemInfo {
        problem_id: p.problem_id,
        dataset: p.dataset,
        split: p.split,
        weak_model: p.weak_model,
        strong_model: p.strong_model,
        prm_model: p.prm_model,
    });
    for n in p.nodes {
        ds.rows.push(NodeRow {
            problem: pid,
            tree: n.tree,
            node: n.id,
            parent: n.parent,
            action: n.action,
            depth: n.depth,
            weak: n.weak,
            strong: n.strong,
            continue_correct: n.continue_correct,
            regenerate_correct: n.regenerate_correct,
        });
        lines.push(lineno as u32);
    }
    Ok(())
}

/// Parse one line (exactly one JSON value), naming the JSON path of the offending field (e.g.
/// `nodes[3].weak.prm`).
fn parse_line<T: serde::de::DeserializeOwned>(path: &Path, lineno: usize, line: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(line);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let what = if inner.is_eof() {
            "truncated JSON (file cut short?)".to_string()
        } else {
            // Each record is one line, so serde's "line 1" is noise; keep the column.
            inner
                .to_string()
                .replace(" at line 1 column ", " at column ")
        };
        let field = (field != ".").then_some(field);
        DataError::new(path, Loc::Line(lineno), field.as_deref(), what)
    })?;
    de.end().map_err(|e| {
        DataError::new(
            path,
            Loc::Line(lineno),
            None,
            format!(
                "trailing text after the JSON object at column {}: one object per line",
                e.column()
            ),
        )
    })?;
    Ok(value)
}

pub(crate) fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("dataset")
        .to_string()
}

/// Write a dataset as JSONL (metadata line first, then one line per problem, then the checksum
/// line), atomically.
pub fn write_jsonl(path: &Path, ds: &Dataset) -> Result<()> {
    let mut by_problem: Vec<Vec<&NodeRow>> = vec![vec![]; ds.problems.len()];
    for (i, r) in ds.rows.iter().enumerate() {
        let slot = by_problem.get_mut(r.problem as usize).ok_or_else(|| {
            DataError::new(
                path,
                Loc::Row(i),
                Some("problem"),
                format!("problem index {} out of range", r.problem),
            )
        })?;
        slot.push(r);
    }
    let js = |e: serde_json::Error| DataError::file(path, format!("cannot encode: {e}"));
    let meta_line = serde_json::to_string(&MetaLine {
        trim_meta: ds.meta.clone(),
    })
    .map_err(js)?;
    // The rows in the order a reader will see them: grouped by problem.
    let ordered: Vec<&NodeRow> = by_problem.iter().flatten().copied().collect();
    let checksum = content_sha256(Content {
        meta_text: Some(&meta_line),
        problems: ds.problems.iter(),
        table: &NodeTable::from_rows(ordered.iter().copied(), |r| r.problem),
        audit: super::parquet::audit_digests(ordered.iter().copied()),
    });
    super::write_atomic(path, |w| {
        let io = |e: std::io::Error| DataError::file(path, format!("write failed: {e}"));
        w.write_all(meta_line.as_bytes()).map_err(io)?;
        w.write_all(b"\n").map_err(io)?;
        for (info, nodes) in ds.problems.iter().zip(&by_problem) {
            let line = ProblemLine {
                problem_id: info.problem_id.clone(),
                dataset: info.dataset.clone(),
                split: info.split.clone(),
                weak_model: info.weak_model.clone(),
                strong_model: info.strong_model.clone(),
                prm_model: info.prm_model.clone(),
                nodes: nodes
                    .iter()
                    .map(|r| NodeJson {
                        tree: r.tree,
                        id: r.node,
                        parent: r.parent,
                        action: r.action,
                        depth: r.depth,
                        weak: r.weak.clone(),
                        strong: r.strong.clone(),
                        continue_correct: r.continue_correct,
                        regenerate_correct: r.regenerate_correct,
                    })
                    .collect(),
            };
            serde_json::to_writer(&mut *w, &line).map_err(js)?;
            w.write_all(b"\n").map_err(io)?;
        }
        let trailer = ChecksumLine {
            trim_checksum: checksum,
        };
        serde_json::to_writer(&mut *w, &trailer).map_err(js)?;
        w.write_all(b"\n").map_err(io)
    })
}
