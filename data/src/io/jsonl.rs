//! JSONL: one problem per line, nodes nested, with an optional first line `{"trim_meta": {…}}`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Loc, Result};
use crate::schema::{CandidateRec, Dataset, Meta, NodeRow, ProblemInfo};

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
    #[serde(default)]
    action: Option<u8>,
    depth: u16,
    weak: CandidateRec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strong: Option<CandidateRec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    continue_correct: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regenerate_correct: Option<bool>,
}

/// Read a JSONL dataset. Problems are lines; a problem may appear on several lines (its nodes are
/// concatenated) only if the problem-level fields agree.
pub fn read_jsonl(path: &Path) -> Result<Dataset> {
    let file = std::fs::File::open(path)
        .map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    let mut meta = None;
    let mut problems: Vec<ProblemInfo> = vec![];
    let mut index = std::collections::HashMap::new();
    let mut rows = vec![];
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
        if meta.is_none() && problems.is_empty() && line.trim_start().starts_with("{\"trim_meta\"")
        {
            let m: MetaLine = parse_line(path, lineno, &line)?;
            meta = Some(m.trim_meta);
            continue;
        }
        let p: ProblemLine = parse_line(path, lineno, &line)?;
        let info = ProblemInfo {
            problem_id: p.problem_id,
            dataset: p.dataset,
            split: p.split,
            weak_model: p.weak_model,
            strong_model: p.strong_model,
            prm_model: p.prm_model,
        };
        let pid = match index.get(&info.problem_id) {
            Some(&pid) => {
                if problems[pid as usize] != info {
                    return Err(DataError::new(
                        path,
                        Loc::Line(lineno),
                        Some("problem_id"),
                        format!(
                            "problem `{}` repeats with different dataset/split/model fields",
                            info.problem_id
                        ),
                    ));
                }
                pid
            }
            None => {
                let pid = problems.len() as u32;
                index.insert(info.problem_id.clone(), pid);
                problems.push(info);
                pid
            }
        };
        if p.nodes.is_empty() {
            return Err(DataError::new(
                path,
                Loc::Line(lineno),
                Some("nodes"),
                "problem has no nodes",
            ));
        }
        for n in p.nodes {
            rows.push(NodeRow {
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
    }
    if rows.is_empty() {
        return Err(DataError::file(path, "no problems in file"));
    }
    Ok(Dataset {
        meta: meta.unwrap_or_else(|| Meta::new(stem(path))),
        problems,
        rows,
        lines: Some(lines),
    })
}

/// Parse one line, naming the JSON path of the offending field (e.g. `nodes[3].weak.prm`).
fn parse_line<T: serde::de::DeserializeOwned>(path: &Path, lineno: usize, line: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_str(line);
    serde_path_to_error::deserialize(de).map_err(|e| {
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
    })
}

pub(crate) fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("dataset")
        .to_string()
}

/// Write a dataset as JSONL (metadata line first, then one line per problem), atomically.
pub fn write_jsonl(path: &Path, ds: &Dataset) -> Result<()> {
    let mut by_problem: Vec<Vec<&NodeRow>> = vec![vec![]; ds.problems.len()];
    for r in &ds.rows {
        by_problem[r.problem as usize].push(r);
    }
    super::write_atomic(path, |w| {
        let io = |e: std::io::Error| DataError::file(path, format!("write failed: {e}"));
        let js = |e: serde_json::Error| DataError::file(path, format!("cannot encode: {e}"));
        serde_json::to_writer(
            &mut *w,
            &MetaLine {
                trim_meta: ds.meta.clone(),
            },
        )
        .map_err(js)?;
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
        Ok(())
    })
}
