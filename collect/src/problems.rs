//! The problem file: one problem per JSONL line (`id`, `question`, `answer`, optional `split`
//! and `dataset`), or a parquet file with those columns. Errors name the file, the line and the
//! field; duplicate ids name both lines.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{CollectError, Result};

/// One problem to collect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub id: String,
    pub question: String,
    /// The reference final answer.
    pub answer: String,
    pub split: String,
    pub dataset: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: Value,
    #[serde(alias = "problem")]
    question: String,
    #[serde(alias = "reference")]
    answer: Value,
    #[serde(default)]
    split: Option<String>,
    #[serde(default)]
    dataset: Option<String>,
}

/// Read the problem file (`.jsonl`/`.json` or `.parquet`).
pub fn read_problems(path: &Path) -> Result<Vec<Problem>> {
    let is_parquet = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("parquet") | Some("pq")
    );
    let problems = if is_parquet {
        read_parquet(path)?
    } else {
        let text = std::fs::read(path)
            .map_err(|e| CollectError::file(path, format!("cannot read: {e}")))?;
        let text = String::from_utf8(text)
            .map_err(|e| CollectError::file(path, format!("not UTF-8 text: {e}")))?;
        parse_jsonl(path, &text)?
    };
    if problems.is_empty() {
        return Err(CollectError::file(path, "holds no problems"));
    }
    Ok(problems)
}

fn default_dataset(path: &Path) -> String {
    (path.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Parse JSONL text (blank lines allowed).
pub fn parse_jsonl(path: &Path, text: &str) -> Result<Vec<Problem>> {
    let mut out = vec![];
    let mut seen: HashMap<String, usize> = HashMap::new();
    let dataset = default_dataset(path);
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let at = |msg: String| CollectError::file(path, format!("line {n}: {msg}"));
        let l: Line = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        let id = scalar(&l.id).ok_or_else(|| at("`id` must be a string or a number".into()))?;
        let answer =
            scalar(&l.answer).ok_or_else(|| at("`answer` must be a string or a number".into()))?;
        let p = Problem {
            id,
            question: l.question,
            answer,
            split: l.split.unwrap_or_else(|| "train".into()),
            dataset: l.dataset.unwrap_or_else(|| dataset.clone()),
        };
        check(&p).map_err(at)?;
        if let Some(first) = seen.insert(p.id.clone(), n) {
            return Err(at(format!(
                "id `{}` was already used on line {first}",
                p.id
            )));
        }
        out.push(p);
    }
    Ok(out)
}

fn check(p: &Problem) -> std::result::Result<(), String> {
    for (field, v) in [
        ("id", &p.id),
        ("question", &p.question),
        ("answer", &p.answer),
    ] {
        if v.trim().is_empty() {
            return Err(format!("`{field}` is empty"));
        }
    }
    if p.split.trim().is_empty() {
        return Err("`split` is empty".into());
    }
    Ok(())
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn read_parquet(path: &Path) -> Result<Vec<Problem>> {
    let cols = ["id", "question", "answer", "split", "dataset"];
    let table = trim_data::io::read_string_columns(path, &cols, &["split", "dataset"])?;
    let dataset = default_dataset(path);
    let mut out = Vec::with_capacity(table.rows);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in 0..table.rows {
        let get = |c: usize| table.columns[c].as_ref().and_then(|col| col[r].clone());
        let at = |msg: String| CollectError::file(path, format!("row {r}: {msg}"));
        let p = Problem {
            id: get(0).ok_or_else(|| at("`id` is null".into()))?,
            question: get(1).ok_or_else(|| at("`question` is null".into()))?,
            answer: get(2).ok_or_else(|| at("`answer` is null".into()))?,
            split: get(3).unwrap_or_else(|| "train".into()),
            dataset: get(4).unwrap_or_else(|| dataset.clone()),
        };
        check(&p).map_err(at)?;
        if let Some(first) = seen.insert(p.id.clone(), r) {
            return Err(at(format!("id `{}` was already used on row {first}", p.id)));
        }
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Vec<Problem>> {
        parse_jsonl(Path::new("p.jsonl"), t)
    }

    #[test]
    fn lines_numbers_and_defaults() {
        let t = "{\"id\": 7, \"question\": \"1+1?\", \"answer\": 2}\n\n\
                 {\"id\": \"b\", \"problem\": \"q\", \"reference\": \"\\\\frac12\", \"split\": \"test\"}\n";
        let p = parse(t).unwrap();
        assert_eq!(p[0].id, "7");
        assert_eq!((p[0].answer.as_str(), p[0].split.as_str()), ("2", "train"));
        assert_eq!(p[0].dataset, "p");
        assert_eq!(
            (p[1].answer.as_str(), p[1].split.as_str()),
            ("\\frac12", "test")
        );
    }

    #[test]
    fn damaged_lines_are_named() {
        let cases = [
            ("{\"id\": 1, \"question\": \"q\"}", "line 1", "answer"),
            (
                "{\"id\": 1, \"question\": \"q\", \"answer\": 1}\n{\"id\": 1, \"question\": \"r\", \"answer\": 2}",
                "line 2",
                "line 1",
            ),
            (
                "{\"id\": 1, \"question\": \"\", \"answer\": 1}",
                "line 1",
                "question",
            ),
            (
                "{\"id\": [1], \"question\": \"q\", \"answer\": 1}",
                "line 1",
                "id",
            ),
            (
                "{\"id\": 1, \"question\": \"q\", \"answer\": 1, \"x\": 0}",
                "line 1",
                "x",
            ),
            ("{\"id\": 1, \"question\": \"q\", \"ans", "line 1", "EOF"),
        ];
        for (t, a, b) in cases {
            let e = parse(t).unwrap_err().to_string();
            assert!(
                e.contains("p.jsonl") && e.contains(a) && e.contains(b),
                "{t}: {e}"
            );
        }
        // Every truncation of a valid file is an error or a shorter valid list, never a panic.
        let good = "{\"id\": 1, \"question\": \"q\", \"answer\": 1}\n{\"id\": 2, \"question\": \"r\", \"answer\": 2}\n";
        for cut in 0..good.len() {
            if let Ok(p) = parse(&good[..cut]) {
                assert!(p.len() <= 2);
            }
        }
    }
}
