//! The JSONL reader of trace logs: one JSON object per line, typed field access whose errors
//! name the line and the key, and bare `NaN`/`Infinity` (Python's `json.dumps`) tolerated so the
//! checker can name the field.

use std::borrow::Cow;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{DataError, Loc, Result};

use super::raw::{RawAction, RawCand, RawRow};
use super::schema::col;

/// Python's `json.dumps` writes NaN/Infinity as bare words, which is not JSON. Turn them into
/// marker strings so the row still parses and the error can name the field.
const NAN_MARK: &str = "\u{0}NaN";
const INF_MARK: &str = "\u{0}Inf";

pub(super) fn mark_non_finite(line: &str) -> Cow<'_, str> {
    if !line.contains("NaN") && !line.contains("Infinity") {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    let mut in_str = false;
    let mut escaped = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else {
            let word = [
                ("NaN", NAN_MARK),
                ("-Infinity", INF_MARK),
                ("Infinity", INF_MARK),
            ]
            .into_iter()
            .find(|(w, _)| rest.starts_with(w));
            if let Some((w, mark)) = word {
                out.push_str(&serde_json::Value::String(mark.into()).to_string());
                rest = &rest[w.len()..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// Typed access to one JSONL object; every error names the line and the key.
struct JsonRow<'a> {
    obj: &'a Map<String, Value>,
    path: &'a Path,
    line: usize,
}

impl JsonRow<'_> {
    fn err(&self, field: &str, reason: impl Into<String>) -> DataError {
        DataError::new(self.path, Loc::Line(self.line), Some(field), reason)
    }

    /// The value, `None` when the key is absent or null.
    fn get(&self, f: &str) -> Option<&Value> {
        self.obj.get(f).filter(|v| !v.is_null())
    }

    fn found(v: &Value) -> String {
        match v {
            Value::String(s) if s == NAN_MARK => "NaN".into(),
            Value::String(s) if s == INF_MARK => "Infinity".into(),
            Value::String(s) => format!("the string {s:?}"),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Number(n) => format!("the number {n}"),
            Value::Array(_) => "an array".into(),
            Value::Object(_) => "an object".into(),
            Value::Null => "null".into(),
        }
    }

    /// A string; ids (`allow_int`) may also be integers.
    fn string(&self, f: &str, allow_int: bool) -> Result<Option<String>> {
        match self.get(f) {
            None => Ok(None),
            Some(Value::String(s)) if s != NAN_MARK && s != INF_MARK => Ok(Some(s.clone())),
            Some(Value::Number(n)) if allow_int && (n.is_i64() || n.is_u64()) => {
                Ok(Some(n.to_string()))
            }
            Some(v) => Err(self.err(f, format!("expected a string, found {}", Self::found(v)))),
        }
    }

    fn int(&self, f: &str) -> Result<Option<i64>> {
        match self.get(f) {
            None => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(Value::Number(n)) if n.is_u64() => Ok(Some(i64::MAX)),
            Some(v) => Err(self.err(f, format!("expected an integer, found {}", Self::found(v)))),
        }
    }

    fn float(&self, f: &str) -> Result<Option<f64>> {
        match self.get(f) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(Value::String(s)) if s == NAN_MARK => Ok(Some(f64::NAN)),
            Some(Value::String(s)) if s == INF_MARK => Ok(Some(f64::INFINITY)),
            Some(v) => Err(self.err(f, format!("expected a number, found {}", Self::found(v)))),
        }
    }

    fn boolean(&self, f: &str) -> Result<Option<bool>> {
        match self.get(f) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(f, format!("expected a boolean, found {}", Self::found(v)))),
        }
    }

    fn action(&self, f: &str) -> Result<Option<RawAction>> {
        match self.get(f) {
            None => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().map(RawAction::Int)),
            Some(Value::String(s)) if s != NAN_MARK && s != INF_MARK => {
                Ok(Some(RawAction::Str(s.clone())))
            }
            Some(v) => Err(self.err(
                f,
                format!(
                    "expected 0, 1, \"continue\" or \"regenerate\", found {}",
                    Self::found(v)
                ),
            )),
        }
    }

    fn cand(&self, who: &str) -> Result<RawCand> {
        let k = |s: &str| format!("{who}_{s}");
        Ok(RawCand {
            tokens: self.int(&k("tokens"))?,
            prm: self.float(&k("prm"))?,
            finished: self.boolean(&k("finished"))?,
            state: self.int(&k("state"))?,
            hash: self.string(&k("hash"), false)?,
            text: self.string(&k("text"), false)?,
            judge_score: self.float(&k("judge_score"))?,
            mean_logprob: self.float(&k("mean_logprob"))?,
        })
    }
}

/// Every row of a JSONL trace log, with its line.
pub(super) fn read_jsonl_rows(path: &Path) -> Result<Vec<(Loc, RawRow)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DataError::file(path, format!("cannot read: {e}")))?;
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let line = mark_non_finite(line);
        let v: Value = serde_json::from_str(&line).map_err(|e| {
            let what = if e.is_eof() {
                "truncated JSON (file cut short?)".to_string()
            } else {
                format!("invalid JSON: {e}")
            };
            DataError::new(path, Loc::Line(lineno), None, what)
        })?;
        let Value::Object(obj) = &v else {
            return Err(DataError::new(
                path,
                Loc::Line(lineno),
                None,
                "expected one JSON object per line",
            ));
        };
        let j = JsonRow {
            obj,
            path,
            line: lineno,
        };
        let mut info: [Option<String>; 5] = Default::default();
        for (slot, name) in info.iter_mut().zip(col::INFO) {
            *slot = j.string(name, false)?;
        }
        out.push((
            Loc::Line(lineno),
            RawRow {
                trace_id: j.string(col::TRACE_ID, true)?,
                problem_id: j.string(col::PROBLEM_ID, true)?,
                step: j.int(col::STEP)?,
                action: j.action(col::ACTION)?,
                weak: j.cand("weak")?,
                strong: j.cand("strong")?,
                correct: j.boolean(col::CORRECT)?,
                info,
                propensity: j.float(col::PROPENSITY)?,
                policy_id: j.string(col::POLICY_ID, true)?,
            },
        ));
    }
    Ok(out)
}
