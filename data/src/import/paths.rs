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

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};
use trim_env::{Action, Episode, Policy, Rng, StepError, resolve};

use crate::build::{DatasetBuilder, TreeWriter};
use crate::error::{DataError, Loc, Result};
use crate::io::{Format, sha256_file, write_atomic};
use crate::schema::{CandidateRec, Dataset, Meta, ProblemInfo, SourceRef};
use crate::validate::Loaded;

/// TRIM's step cap: a trace may end unfinished only at step `max_steps − 1`.
pub const DEFAULT_MAX_STEPS: u16 = 30;

/// Column (JSONL key) names of a trace log.
pub mod col {
    pub const TRACE_ID: &str = "trace_id";
    pub const PROBLEM_ID: &str = "problem_id";
    pub const STEP: &str = "step";
    pub const ACTION: &str = "action";
    pub const WEAK_TOKENS: &str = "weak_tokens";
    pub const WEAK_PRM: &str = "weak_prm";
    pub const WEAK_FINISHED: &str = "weak_finished";
    pub const WEAK_STATE: &str = "weak_state";
    pub const WEAK_HASH: &str = "weak_hash";
    pub const WEAK_TEXT: &str = "weak_text";
    pub const STRONG_TOKENS: &str = "strong_tokens";
    pub const STRONG_PRM: &str = "strong_prm";
    pub const STRONG_FINISHED: &str = "strong_finished";
    pub const STRONG_STATE: &str = "strong_state";
    pub const STRONG_HASH: &str = "strong_hash";
    pub const STRONG_TEXT: &str = "strong_text";
    pub const CORRECT: &str = "correct";
    pub const DATASET: &str = "dataset";
    pub const SPLIT: &str = "split";
    pub const WEAK_MODEL: &str = "weak_model";
    pub const STRONG_MODEL: &str = "strong_model";
    pub const PRM_MODEL: &str = "prm_model";
    /// Optional problem-level columns, in [`super::TraceRow::info`] order.
    pub const INFO: [&str; 5] = [DATASET, SPLIT, WEAK_MODEL, STRONG_MODEL, PRM_MODEL];
}

/// Defaults of the optional problem-level columns, in [`col::INFO`] order.
pub const INFO_DEFAULTS: [&str; 5] = ["logged", "train", "unknown", "unknown", "unknown"];

/// One executed step of one trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    pub trace_id: String,
    pub problem_id: String,
    /// 0-based step index within the trace.
    pub step: u32,
    /// The action the router took.
    pub action: Action,
    /// The weak model's candidate step.
    pub weak: CandidateRec,
    /// The strong model's candidate for the same prefix, when it was generated.
    pub strong: Option<CandidateRec>,
    /// Final-answer correctness of the trace (required on at least one row, normally the last).
    pub correct: Option<bool>,
    /// Optional problem-level fields: dataset, split, weak_model, strong_model, prm_model.
    pub info: [Option<String>; 5],
}

/// Import settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Step cap: steps must be `< max_steps`; a trace may end unfinished at `max_steps − 1`.
    pub max_steps: u16,
    /// Dataset name for the metadata (default: the input file's stem).
    pub name: Option<String>,
    /// The command that regenerates the dataset (recorded in the metadata).
    pub command: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_steps: DEFAULT_MAX_STEPS,
            name: None,
            command: String::new(),
        }
    }
}

/// What the merge did, for the command's summary and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub rows: usize,
    pub traces: usize,
    pub problems: usize,
    pub trees: usize,
    pub nodes: usize,
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A row before checks: every field optional, so JSONL and parquet share one checker.
#[derive(Default)]
struct RawRow {
    trace_id: Option<String>,
    problem_id: Option<String>,
    step: Option<i64>,
    action: Option<RawAction>,
    weak: RawCand,
    strong: RawCand,
    correct: Option<bool>,
    info: [Option<String>; 5],
}

#[derive(Default)]
struct RawCand {
    tokens: Option<i64>,
    prm: Option<f64>,
    finished: Option<bool>,
    state: Option<i64>,
    hash: Option<String>,
    text: Option<String>,
}

enum RawAction {
    Int(i64),
    Str(String),
}

/// Read a trace log (`.jsonl` or `.parquet`), checking every row. Rows keep their location
/// (JSONL line or parquet row) for the merge's error messages.
pub fn read_traces(path: &Path, max_steps: u16) -> Result<Vec<(Loc, TraceRow)>> {
    let meta =
        std::fs::metadata(path).map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    if meta.len() == 0 {
        return Err(DataError::file(path, "empty file"));
    }
    let raw = match Format::of(path)? {
        Format::Jsonl => read_jsonl_rows(path)?,
        Format::Parquet => read_parquet_rows(path)?,
    };
    if raw.is_empty() {
        return Err(DataError::file(path, "no trace rows"));
    }
    raw.into_iter()
        .map(|(loc, r)| {
            let row = check_row(path, &loc, r, max_steps)?;
            Ok((loc, row))
        })
        .collect()
}

/// Python's `json.dumps` writes NaN/Infinity as bare words, which is not JSON. Turn them into
/// marker strings so the row still parses and the error can name the field.
const NAN_MARK: &str = "\u{0}NaN";
const INF_MARK: &str = "\u{0}Inf";

fn mark_non_finite(line: &str) -> Cow<'_, str> {
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
        })
    }
}

fn read_jsonl_rows(path: &Path) -> Result<Vec<(Loc, RawRow)>> {
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
            },
        ));
    }
    Ok(out)
}

/// Typed parquet columns: an absent column reads as all-null (the row checker then reports a
/// missing required field); a column of the wrong type is an error naming it.
struct PqCols<'a> {
    df: &'a DataFrame,
    path: &'a Path,
}

impl PqCols<'_> {
    fn pl(&self, name: &str) -> impl Fn(PolarsError) -> DataError {
        let path = self.path.to_path_buf();
        let name = name.to_string();
        move |e| DataError::new(&path, Loc::File, Some(&name), format!("cannot read: {e}"))
    }

    fn type_err(&self, name: &str, want: &str, got: &DataType) -> DataError {
        DataError::new(
            self.path,
            Loc::File,
            Some(name),
            format!("wrong type: expected {want}, found {got}"),
        )
    }

    fn nulls<T: Clone>(&self) -> Vec<Option<T>> {
        vec![None; self.df.height()]
    }

    fn ints(&self, name: &str) -> Result<Vec<Option<i64>>> {
        let Ok(c) = self.df.column(name) else {
            return Ok(self.nulls());
        };
        if !c.dtype().is_integer() && *c.dtype() != DataType::Null {
            return Err(self.type_err(name, "an integer column", c.dtype()));
        }
        let c = c.cast(&DataType::Int64).map_err(self.pl(name))?;
        Ok(c.i64().map_err(self.pl(name))?.iter().collect())
    }

    fn floats(&self, name: &str) -> Result<Vec<Option<f64>>> {
        let Ok(c) = self.df.column(name) else {
            return Ok(self.nulls());
        };
        if !c.dtype().is_float() && *c.dtype() != DataType::Null {
            return Err(self.type_err(name, "a float column", c.dtype()));
        }
        let c = c.cast(&DataType::Float64).map_err(self.pl(name))?;
        Ok(c.f64().map_err(self.pl(name))?.iter().collect())
    }

    fn bools(&self, name: &str) -> Result<Vec<Option<bool>>> {
        let Ok(c) = self.df.column(name) else {
            return Ok(self.nulls());
        };
        if *c.dtype() == DataType::Null {
            return Ok(self.nulls());
        }
        let ca = c
            .bool()
            .map_err(|_| self.type_err(name, "a boolean column", c.dtype()))?;
        Ok(ca.iter().collect())
    }

    /// Strings; with `allow_int`, integer columns are accepted and printed.
    fn strings(&self, name: &str, allow_int: bool) -> Result<Vec<Option<String>>> {
        let Ok(c) = self.df.column(name) else {
            return Ok(self.nulls());
        };
        if *c.dtype() == DataType::Null {
            return Ok(self.nulls());
        }
        if allow_int && c.dtype().is_integer() {
            return Ok(self
                .ints(name)?
                .into_iter()
                .map(|v| v.map(|x| x.to_string()))
                .collect());
        }
        let ca = c
            .str()
            .map_err(|_| self.type_err(name, "a string column", c.dtype()))?;
        Ok(ca.iter().map(|v| v.map(str::to_owned)).collect())
    }

    fn actions(&self, name: &str) -> Result<Vec<Option<RawAction>>> {
        let Ok(c) = self.df.column(name) else {
            return Ok((0..self.df.height()).map(|_| None).collect());
        };
        if c.dtype().is_integer() {
            return Ok(self
                .ints(name)?
                .into_iter()
                .map(|v| v.map(RawAction::Int))
                .collect());
        }
        if *c.dtype() == DataType::String {
            return Ok(self
                .strings(name, false)?
                .into_iter()
                .map(|v| v.map(RawAction::Str))
                .collect());
        }
        Err(self.type_err(name, "an integer or string column", c.dtype()))
    }
}

fn read_parquet_rows(path: &Path) -> Result<Vec<(Loc, RawRow)>> {
    let file = std::fs::File::open(path)
        .map_err(|e| DataError::file(path, format!("cannot open: {e}")))?;
    let df = ParquetReader::new(file).finish().map_err(|e| {
        DataError::file(
            path,
            format!("cannot read parquet data (truncated or corrupt?): {e}"),
        )
    })?;
    let c = PqCols { df: &df, path };
    // Required columns must exist; nullable ones may be absent.
    for name in [
        col::TRACE_ID,
        col::PROBLEM_ID,
        col::STEP,
        col::ACTION,
        col::WEAK_TOKENS,
        col::WEAK_PRM,
        col::WEAK_FINISHED,
    ] {
        if df.column(name).is_err() {
            return Err(DataError::new(
                path,
                Loc::File,
                Some(name),
                "missing required column",
            ));
        }
    }
    let trace = c.strings(col::TRACE_ID, true)?;
    let problem = c.strings(col::PROBLEM_ID, true)?;
    let step = c.ints(col::STEP)?;
    let mut action = c.actions(col::ACTION)?;
    let cands = |who: &str| -> Result<_> {
        let k = |s: &str| format!("{who}_{s}");
        Ok((
            c.ints(&k("tokens"))?,
            c.floats(&k("prm"))?,
            c.bools(&k("finished"))?,
            c.ints(&k("state"))?,
            c.strings(&k("hash"), false)?,
            c.strings(&k("text"), false)?,
        ))
    };
    let (wt, wp, wf, ws, wh, wx) = cands("weak")?;
    let (st, sp, sf, ss, sh, sx) = cands("strong")?;
    let correct = c.bools(col::CORRECT)?;
    let info: Vec<Vec<Option<String>>> = col::INFO
        .iter()
        .map(|n| c.strings(n, false))
        .collect::<Result<_>>()?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let mut inf: [Option<String>; 5] = Default::default();
        for (k, slot) in inf.iter_mut().enumerate() {
            *slot = info[k][i].clone();
        }
        out.push((
            Loc::Row(i),
            RawRow {
                trace_id: trace[i].clone(),
                problem_id: problem[i].clone(),
                step: step[i],
                action: action[i].take(),
                weak: RawCand {
                    tokens: wt[i],
                    prm: wp[i],
                    finished: wf[i],
                    state: ws[i],
                    hash: wh[i].clone(),
                    text: wx[i].clone(),
                },
                strong: RawCand {
                    tokens: st[i],
                    prm: sp[i],
                    finished: sf[i],
                    state: ss[i],
                    hash: sh[i].clone(),
                    text: sx[i].clone(),
                },
                correct: correct[i],
                info: inf,
            },
        ));
    }
    Ok(out)
}

/// Presence, ranges and cross-field rules of one row.
fn check_row(path: &Path, loc: &Loc, r: RawRow, max_steps: u16) -> Result<TraceRow> {
    let err = |f: &str, reason: String| DataError::new(path, loc.clone(), Some(f), reason);
    let missing = |f: &str| err(f, "missing required field (absent or null)".into());
    let trace_id = r.trace_id.ok_or_else(|| missing(col::TRACE_ID))?;
    if trace_id.is_empty() {
        return Err(err(col::TRACE_ID, "must not be empty".into()));
    }
    let problem_id = r.problem_id.ok_or_else(|| missing(col::PROBLEM_ID))?;
    if problem_id.is_empty() {
        return Err(err(col::PROBLEM_ID, "must not be empty".into()));
    }
    let step = r.step.ok_or_else(|| missing(col::STEP))?;
    let last = i64::from(max_steps) - 1;
    if !(0..=last).contains(&step) {
        return Err(err(
            col::STEP,
            format!("step {step} outside [0, {last}] (step cap {max_steps})"),
        ));
    }
    let action = match r.action.ok_or_else(|| missing(col::ACTION))? {
        RawAction::Int(0) => Action::Continue,
        RawAction::Int(1) => Action::Regenerate,
        RawAction::Str(s) if s == "continue" => Action::Continue,
        RawAction::Str(s) if s == "regenerate" => Action::Regenerate,
        RawAction::Int(x) => {
            return Err(err(
                col::ACTION,
                format!("action {x} is not 0 (continue) or 1 (regenerate)"),
            ));
        }
        RawAction::Str(s) => {
            return Err(err(
                col::ACTION,
                format!("action {s:?} is not \"continue\" or \"regenerate\""),
            ));
        }
    };
    let weak = check_cand(&err, r.weak, "weak")?.ok_or_else(|| missing(col::WEAK_TOKENS))?;
    let strong = check_cand(&err, r.strong, "strong")?;
    if action == Action::Regenerate && strong.is_none() {
        return Err(err(
            col::STRONG_TOKENS,
            "action is regenerate but no strong candidate was recorded".into(),
        ));
    }
    Ok(TraceRow {
        trace_id,
        problem_id,
        step: step as u32,
        action,
        weak,
        strong,
        correct: r.correct,
        info: r.info,
    })
}

/// A candidate: `None` when tokens, PRM and finished are all absent; otherwise all three are
/// required and checked.
fn check_cand(
    err: &dyn Fn(&str, String) -> DataError,
    c: RawCand,
    who: &str,
) -> Result<Option<CandidateRec>> {
    let k = |s: &str| format!("{who}_{s}");
    if c.tokens.is_none() && c.prm.is_none() && c.finished.is_none() {
        for (name, present) in [
            ("state", c.state.is_some()),
            ("hash", c.hash.is_some()),
            ("text", c.text.is_some()),
        ] {
            if present {
                return Err(err(
                    &k(name),
                    format!("given without {who}_tokens, {who}_prm and {who}_finished"),
                ));
            }
        }
        return Ok(None);
    }
    let all_or_none = |f: &str| {
        err(
            &k(f),
            format!(
                "missing: {who}_tokens, {who}_prm and {who}_finished must be all set or all null"
            ),
        )
    };
    let tokens = c.tokens.ok_or_else(|| all_or_none("tokens"))?;
    let prm = c.prm.ok_or_else(|| all_or_none("prm"))?;
    let finished = c.finished.ok_or_else(|| all_or_none("finished"))?;
    if !(1..=i64::from(u32::MAX)).contains(&tokens) {
        return Err(err(
            &k("tokens"),
            format!("value {tokens} outside [1, {}]", u32::MAX),
        ));
    }
    if !prm.is_finite() {
        return Err(err(&k("prm"), "PRM score is NaN or infinite".into()));
    }
    if !(0.0..=1.0).contains(&prm) {
        return Err(err(&k("prm"), format!("PRM score {prm} outside [0, 1]")));
    }
    let state = match c.state {
        None => None,
        Some(s @ 0..=2) => Some(s as u8),
        Some(s) => {
            return Err(err(
                &k("state"),
                format!("state {s} is not 0 (S0), 1 (S1) or 2 (S2)"),
            ));
        }
    };
    Ok(Some(CandidateRec {
        tokens: tokens as u32,
        prm: prm as f32,
        finished,
        state,
        text: c.text,
        hash: c.hash,
    }))
}

// ---------------------------------------------------------------------------------------------
// Merging

/// A node of a tree under construction; candidates as logged.
struct MNode {
    parent: Option<(usize, Action)>,
    weak: CandidateRec,
    strong: Option<CandidateRec>,
    child: [Option<usize>; 2],
    outcome: [Option<bool>; 2],
}

struct MProblem {
    id: String,
    info: [Option<(String, Loc)>; 5],
    trees: Vec<Vec<MNode>>,
}

/// Candidates agree: same tokens, score and finished flag, and same state/hash/text where both
/// recorded them.
fn agree(a: &CandidateRec, b: &CandidateRec) -> bool {
    a.tokens == b.tokens
        && a.prm == b.prm
        && a.finished == b.finished
        && both_equal(&a.state, &b.state)
        && both_equal(&a.hash, &b.hash)
        && both_equal(&a.text, &b.text)
}

/// Equal where both are recorded.
fn both_equal<T: PartialEq>(x: &Option<T>, y: &Option<T>) -> bool {
    match (x, y) {
        (Some(x), Some(y)) => x == y,
        _ => true,
    }
}

/// Fill optional audit fields that `dst` lacks from `src` (they agree where both have them).
fn fill(dst: &mut CandidateRec, src: &CandidateRec) {
    dst.state = dst.state.or(src.state);
    if dst.hash.is_none() {
        dst.hash.clone_from(&src.hash);
    }
    if dst.text.is_none() {
        dst.text.clone_from(&src.text);
    }
}

fn chosen(r: &TraceRow) -> &CandidateRec {
    match (r.action, &r.strong) {
        (Action::Regenerate, Some(s)) => s,
        _ => &r.weak,
    }
}

/// Whether the trace (steps `0..n` in order) fits `tree` all the way.
fn consistent(tree: &[MNode], steps: &[&TraceRow], correct: bool) -> bool {
    let mut n = 0;
    for (d, r) in steps.iter().enumerate() {
        let node = &tree[n];
        if !agree(&node.weak, &r.weak) {
            return false;
        }
        if let (Some(a), Some(b)) = (&node.strong, &r.strong)
            && !agree(a, b)
        {
            return false;
        }
        let a = r.action as usize;
        if d + 1 == steps.len() {
            return node.child[a].is_none() && node.outcome[a].is_none_or(|o| o == correct);
        }
        if node.outcome[a].is_some() {
            return false;
        }
        match node.child[a] {
            Some(c) => n = c,
            None => return true,
        }
    }
    true
}

fn new_node(parent: Option<(usize, Action)>, r: &TraceRow) -> MNode {
    MNode {
        parent,
        weak: r.weak.clone(),
        strong: r.strong.clone(),
        child: [None, None],
        outcome: [None, None],
    }
}

/// Add a consistent trace to `tree` (which may be empty).
fn insert(tree: &mut Vec<MNode>, steps: &[&TraceRow], correct: bool) {
    if tree.is_empty() {
        tree.push(new_node(None, steps[0]));
    }
    let mut n = 0;
    for (d, r) in steps.iter().enumerate() {
        let node = &mut tree[n];
        fill(&mut node.weak, &r.weak);
        match (&mut node.strong, &r.strong) {
            (None, Some(s)) => node.strong = Some(s.clone()),
            (Some(dst), Some(s)) => fill(dst, s),
            _ => {}
        }
        let a = r.action as usize;
        if d + 1 == steps.len() {
            node.outcome[a] = Some(correct);
            return;
        }
        n = match node.child[a] {
            Some(c) => c,
            None => {
                let c = tree.len();
                tree[n].child[a] = Some(c);
                tree.push(new_node(Some((n, r.action)), steps[d + 1]));
                c
            }
        };
    }
}

/// Write one merged tree; node ids follow breadth-first order (parents first).
fn emit(tw: &mut TreeWriter<'_>, tree: &[MNode]) {
    // A candidate is written finished exactly when its branch has an observed outcome: a
    // finished candidate nobody kept has no known outcome, so its branch is masked instead.
    let out = |c: &CandidateRec, outcome: Option<bool>| CandidateRec {
        finished: outcome.is_some(),
        ..c.clone()
    };
    let mut ids = vec![0u32; tree.len()];
    let mut queue = vec![0usize];
    let mut k = 0;
    while k < queue.len() {
        let m = queue[k];
        k += 1;
        let node = &tree[m];
        let weak = out(&node.weak, node.outcome[0]);
        let strong = node.strong.as_ref().map(|s| out(s, node.outcome[1]));
        let id = match node.parent {
            None => tw.root(weak, strong),
            Some((p, a)) => tw.child(ids[p], a, weak, strong),
        };
        ids[m] = id;
        for a in Action::ALL {
            if let Some(o) = node.outcome[a as usize] {
                tw.set_outcome(id, a, o);
            }
            if let Some(c) = node.child[a as usize] {
                queue.push(c);
            }
        }
    }
}

/// Merge checked rows (from [`read_traces`]) into trees. `path` names the input in errors.
pub fn merge(path: &Path, rows: &[(Loc, TraceRow)], opts: &Options) -> Result<(Dataset, Report)> {
    if rows.is_empty() {
        return Err(DataError::file(path, "no trace rows"));
    }
    let err =
        |loc: &Loc, f: &str, reason: String| DataError::new(path, loc.clone(), Some(f), reason);
    // Traces and problems in order of first appearance.
    let mut trace_ix: HashMap<&str, usize> = HashMap::new();
    let mut traces: Vec<Vec<usize>> = vec![];
    let mut prob_ix: HashMap<&str, usize> = HashMap::new();
    let mut problems: Vec<MProblem> = vec![];
    for (i, (loc, r)) in rows.iter().enumerate() {
        match trace_ix.get(r.trace_id.as_str()) {
            Some(&t) => {
                let (first_loc, first) = &rows[traces[t][0]];
                if first.problem_id != r.problem_id {
                    return Err(err(
                        loc,
                        col::PROBLEM_ID,
                        format!(
                            "trace `{}` belongs to problem `{}` ({first_loc}) but to `{}` here",
                            r.trace_id, first.problem_id, r.problem_id
                        ),
                    ));
                }
                traces[t].push(i);
            }
            None => {
                trace_ix.insert(&r.trace_id, traces.len());
                traces.push(vec![i]);
            }
        }
        let p = *prob_ix.entry(&r.problem_id).or_insert_with(|| {
            problems.push(MProblem {
                id: r.problem_id.clone(),
                info: Default::default(),
                trees: vec![],
            });
            problems.len() - 1
        });
        for (k, v) in r.info.iter().enumerate() {
            let Some(v) = v else { continue };
            match &problems[p].info[k] {
                None => problems[p].info[k] = Some((v.clone(), loc.clone())),
                Some((prev, prev_loc)) if prev != v => {
                    return Err(err(
                        loc,
                        col::INFO[k],
                        format!(
                            "problem `{}` has `{prev}` ({prev_loc}) and `{v}` here",
                            r.problem_id
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
    }

    for t in &traces {
        let mut idx = t.clone();
        idx.sort_by_key(|&i| rows[i].1.step);
        let id = &rows[idx[0]].1.trace_id;
        // Steps 0, 1, …, n−1 exactly once.
        for (k, &i) in idx.iter().enumerate() {
            let (loc, r) = &rows[i];
            if r.step as usize != k {
                let reason = if k > 0 && rows[idx[k - 1]].1.step == r.step {
                    format!("duplicate step {} in trace `{id}`", r.step)
                } else if k == 0 {
                    format!("trace `{id}` starts at step {}, not 0", r.step)
                } else {
                    format!(
                        "trace `{id}` has no step {k}: steps are not contiguous ({} follows {})",
                        r.step,
                        k - 1
                    )
                };
                return Err(err(loc, col::STEP, reason));
            }
        }
        // One final correctness per trace.
        let mut correct: Option<(bool, &Loc)> = None;
        for &i in &idx {
            let (loc, r) = &rows[i];
            if let Some(c) = r.correct {
                match correct {
                    Some((c0, loc0)) if c0 != c => {
                        return Err(err(
                            loc,
                            col::CORRECT,
                            format!(
                                "conflicting outcomes: trace `{id}` has correct = {c0} ({loc0}) \
                                 and correct = {c} here"
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => correct = Some((c, loc)),
                }
            }
        }
        // The kept candidate finishes exactly at the last step (or the step cap ends it).
        let n = idx.len();
        for (k, &i) in idx.iter().enumerate() {
            let (loc, r) = &rows[i];
            let who = if r.action == Action::Regenerate {
                "strong"
            } else {
                "weak"
            };
            let fin = chosen(r).finished;
            if k + 1 < n && fin {
                return Err(err(
                    loc,
                    &format!("{who}_finished"),
                    format!(
                        "the kept {who} candidate finished the solution, but trace `{id}` \
                         continues at step {}",
                        k + 1
                    ),
                ));
            }
            if k + 1 == n && !fin && r.step + 1 < u32::from(opts.max_steps) {
                return Err(err(
                    loc,
                    &format!("{who}_finished"),
                    format!(
                        "trace `{id}` ends at step {} but the kept {who} candidate is not \
                         finished (and the step cap {} is not reached)",
                        r.step, opts.max_steps
                    ),
                ));
            }
        }
        let Some((correct, _)) = correct else {
            let (loc, _) = &rows[idx[n - 1]];
            return Err(err(
                loc,
                col::CORRECT,
                format!("no row of trace `{id}` gives its final correctness"),
            ));
        };
        let steps: Vec<&TraceRow> = idx.iter().map(|&i| &rows[i].1).collect();
        let prob = &mut problems[prob_ix[steps[0].problem_id.as_str()]];
        match prob
            .trees
            .iter_mut()
            .find(|tree| consistent(tree, &steps, correct))
        {
            Some(tree) => insert(tree, &steps, correct),
            None => {
                let mut tree = vec![];
                insert(&mut tree, &steps, correct);
                prob.trees.push(tree);
            }
        }
    }

    let mut meta = Meta::new(opts.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("paths")
            .to_string()
    }));
    meta.description = "Rollout trees merged from logged serving traces (one row per executed \
                        step); branches no trace executed are absent (masked). Schema and merge \
                        rules: data/docs/paths-schema.md."
        .into();
    meta.real = vec![
        "every executed step: weak and strong candidates as logged (tokens, PRM scores, \
         finished flags)"
            .into(),
        "final-answer correctness of every logged trace".into(),
    ];
    meta.synthetic = vec![];
    meta.tokenizer = "as logged by the serving system".into();
    meta.sources = vec![SourceRef {
        name: path
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("traces")
            .to_string(),
        origin: "serving trace log".into(),
        sha256: sha256_file(path).ok(),
    }];
    meta.command = opts.command.clone();
    let mut b = DatasetBuilder::new(meta);
    let mut report = Report {
        rows: rows.len(),
        traces: traces.len(),
        problems: problems.len(),
        ..Report::default()
    };
    for prob in &problems {
        let info = |k: usize| {
            prob.info[k]
                .as_ref()
                .map_or(INFO_DEFAULTS[k].to_string(), |(v, _)| v.clone())
        };
        let p = b.add_problem(ProblemInfo {
            problem_id: prob.id.clone(),
            dataset: info(0),
            split: info(1),
            weak_model: info(2),
            strong_model: info(3),
            prm_model: info(4),
        });
        for tree in &prob.trees {
            let mut tw = b.tree(p);
            emit(&mut tw, tree);
            report.trees += 1;
            report.nodes += tree.len();
        }
    }
    b.meta_mut().params = serde_json::json!({
        "max_steps": opts.max_steps,
        "rows": report.rows,
        "traces": report.traces,
        "trees": report.trees,
        "nodes": report.nodes,
    });
    Ok((b.finish(), report))
}

/// Read, check and merge a trace log.
pub fn import(path: &Path, opts: &Options) -> Result<(Dataset, Report)> {
    let rows = read_traces(path, opts.max_steps)?;
    merge(path, &rows, opts)
}

// ---------------------------------------------------------------------------------------------
// Logging (the serving side, replayed): walk trees with policies and write traces.

/// Walk every sample tree of `problems` with each policy and record the executed steps as a
/// serving system would log them. Trace ids are `<problem>/tree<k>/<policy name>`; `correct` is
/// set on the last row only. The policy RNG is a stream of `(seed, tree, policy index)`.
pub fn log_traces(
    l: &Loaded,
    problems: &[u32],
    policies: &[(String, &dyn Policy)],
    seed: u64,
) -> std::result::Result<Vec<TraceRow>, StepError> {
    let f = &l.forest;
    let mut out = vec![];
    for &p in problems {
        let info = &l.ds.problems[p as usize];
        for (k, tree) in f.trees_of(p as usize).enumerate() {
            for (pi, (name, policy)) in policies.iter().enumerate() {
                let mut rng = Rng::stream(seed, ((tree as u64) << 16) | pi as u64);
                let mut ep = Episode::start(f, tree);
                let start = out.len();
                while !ep.done() {
                    let node = ep.node();
                    let mask = ep.mask(f);
                    let a = resolve(policy.act(&ep.view(f), mask, &mut rng), mask);
                    let row = &l.ds.rows[l.forest_row[node as usize] as usize];
                    out.push(TraceRow {
                        trace_id: format!("{}/tree{k}/{name}", info.problem_id),
                        problem_id: info.problem_id.clone(),
                        step: (out.len() - start) as u32,
                        action: a,
                        weak: row.weak.clone(),
                        strong: row.strong.clone(),
                        correct: None,
                        info: [
                            Some(info.dataset.clone()),
                            Some(info.split.clone()),
                            Some(info.weak_model.clone()),
                            Some(info.strong_model.clone()),
                            Some(info.prm_model.clone()),
                        ],
                    });
                    ep.step(f, a, 0.0)?;
                }
                if let Some(last) = out.last_mut() {
                    last.correct = Some(ep.outcome().correct);
                }
            }
        }
    }
    Ok(out)
}

/// One JSONL line of a trace log. PRM scores are written as the f64 value of the stored f32, so
/// reading them back (as f64, then f32) is exact.
#[derive(Serialize)]
struct RowOut<'a> {
    trace_id: &'a str,
    problem_id: &'a str,
    step: u32,
    action: &'static str,
    weak_tokens: u32,
    weak_prm: f64,
    weak_finished: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    weak_state: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weak_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weak_text: Option<&'a str>,
    strong_tokens: Option<u32>,
    strong_prm: Option<f64>,
    strong_finished: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strong_state: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strong_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strong_text: Option<&'a str>,
    correct: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    split: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weak_model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strong_model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prm_model: Option<&'a str>,
}

fn row_out(r: &TraceRow) -> RowOut<'_> {
    let s = r.strong.as_ref();
    let info = |k: usize| r.info[k].as_deref();
    RowOut {
        trace_id: &r.trace_id,
        problem_id: &r.problem_id,
        step: r.step,
        action: r.action.name(),
        weak_tokens: r.weak.tokens,
        weak_prm: f64::from(r.weak.prm),
        weak_finished: r.weak.finished,
        weak_state: r.weak.state,
        weak_hash: r.weak.hash.as_deref(),
        weak_text: r.weak.text.as_deref(),
        strong_tokens: s.map(|c| c.tokens),
        strong_prm: s.map(|c| f64::from(c.prm)),
        strong_finished: s.map(|c| c.finished),
        strong_state: s.and_then(|c| c.state),
        strong_hash: s.and_then(|c| c.hash.as_deref()),
        strong_text: s.and_then(|c| c.text.as_deref()),
        correct: r.correct,
        dataset: info(0),
        split: info(1),
        weak_model: info(2),
        strong_model: info(3),
        prm_model: info(4),
    }
}

/// Write a trace log atomically, as JSONL or parquet by the file extension.
pub fn write_traces(path: &Path, rows: &[TraceRow]) -> Result<()> {
    match Format::of(path)? {
        Format::Jsonl => write_atomic(path, |w| {
            use std::io::Write;
            for r in rows {
                serde_json::to_writer(&mut *w, &row_out(r))
                    .map_err(|e| DataError::file(path, format!("cannot encode: {e}")))?;
                w.write_all(b"\n")
                    .map_err(|e| DataError::file(path, format!("write failed: {e}")))?;
            }
            Ok(())
        }),
        Format::Parquet => write_traces_parquet(path, rows),
    }
}

fn write_traces_parquet(path: &Path, rows: &[TraceRow]) -> Result<()> {
    type Text = fn(&TraceRow) -> Option<&str>;
    let mut cols: Vec<Column> = vec![];
    let mut column = |name: &str, c: Column| cols.push(c.with_name(name.into()));
    let num = |f: fn(&TraceRow) -> Option<u32>| -> Column {
        Column::new("".into(), rows.iter().map(f).collect::<Vec<_>>())
    };
    let text =
        |f: Text| -> Column { Column::new("".into(), rows.iter().map(f).collect::<Vec<_>>()) };
    // Optional columns only when some row carries them.
    let any = |f: &dyn Fn(&TraceRow) -> bool| rows.iter().any(f);
    column(col::TRACE_ID, text(|r| Some(&r.trace_id)));
    column(col::PROBLEM_ID, text(|r| Some(&r.problem_id)));
    column(col::STEP, num(|r| Some(r.step)));
    column(
        col::ACTION,
        Column::new(
            "".into(),
            rows.iter().map(|r| r.action as u8).collect::<Vec<_>>(),
        ),
    );
    column(col::WEAK_TOKENS, num(|r| Some(r.weak.tokens)));
    column(
        col::WEAK_PRM,
        Column::new(
            "".into(),
            rows.iter().map(|r| r.weak.prm).collect::<Vec<_>>(),
        ),
    );
    column(
        col::WEAK_FINISHED,
        Column::new(
            "".into(),
            rows.iter().map(|r| r.weak.finished).collect::<Vec<_>>(),
        ),
    );
    if any(&|r| r.weak.state.is_some()) {
        column(
            col::WEAK_STATE,
            Column::new(
                "".into(),
                rows.iter().map(|r| r.weak.state).collect::<Vec<_>>(),
            ),
        );
    }
    let weak_hash: Text = |r| r.weak.hash.as_deref();
    let weak_text: Text = |r| r.weak.text.as_deref();
    for (name, f) in [(col::WEAK_HASH, weak_hash), (col::WEAK_TEXT, weak_text)] {
        if any(&|r| f(r).is_some()) {
            column(name, text(f));
        }
    }
    column(
        col::STRONG_TOKENS,
        num(|r| r.strong.as_ref().map(|s| s.tokens)),
    );
    column(
        col::STRONG_PRM,
        Column::new(
            "".into(),
            rows.iter()
                .map(|r| r.strong.as_ref().map(|s| s.prm))
                .collect::<Vec<_>>(),
        ),
    );
    column(
        col::STRONG_FINISHED,
        Column::new(
            "".into(),
            rows.iter()
                .map(|r| r.strong.as_ref().map(|s| s.finished))
                .collect::<Vec<_>>(),
        ),
    );
    if any(&|r| r.strong.as_ref().is_some_and(|s| s.state.is_some())) {
        column(
            col::STRONG_STATE,
            Column::new(
                "".into(),
                rows.iter()
                    .map(|r| r.strong.as_ref().and_then(|s| s.state))
                    .collect::<Vec<_>>(),
            ),
        );
    }
    let strong_hash: Text = |r| r.strong.as_ref().and_then(|s| s.hash.as_deref());
    let strong_text: Text = |r| r.strong.as_ref().and_then(|s| s.text.as_deref());
    for (name, f) in [
        (col::STRONG_HASH, strong_hash),
        (col::STRONG_TEXT, strong_text),
    ] {
        if any(&|r| f(r).is_some()) {
            column(name, text(f));
        }
    }
    column(
        col::CORRECT,
        Column::new(
            "".into(),
            rows.iter().map(|r| r.correct).collect::<Vec<_>>(),
        ),
    );
    for (k, name) in col::INFO.iter().enumerate() {
        if any(&|r| r.info[k].is_some()) {
            column(
                name,
                Column::new(
                    "".into(),
                    rows.iter()
                        .map(|r| r.info[k].as_deref())
                        .collect::<Vec<_>>(),
                ),
            );
        }
    }
    let mut df = DataFrame::new(rows.len(), cols)
        .map_err(|e| DataError::file(path, format!("cannot build table: {e}")))?;
    write_atomic(path, |w| {
        ParquetWriter::new(w)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(&mut df)
            .map_err(|e| DataError::file(path, format!("cannot write parquet: {e}")))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Details;
    use crate::validate::validate;
    use serde_json::json;
    use trim_env::{Branch, EvalOptions, RefPolicy, evaluate};

    fn tmpdir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("trim-paths-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    fn write_lines(dir: &Path, name: &str, lines: &[Value]) -> std::path::PathBuf {
        let p = dir.join(name);
        let text: String = lines.iter().map(|v| format!("{v}\n")).collect();
        std::fs::write(&p, text).expect("write");
        p
    }

    fn row(trace: &str, step: u32, action: &str, weak: (u32, f64, bool)) -> Value {
        json!({
            "trace_id": trace, "problem_id": "p", "step": step, "action": action,
            "weak_tokens": weak.0, "weak_prm": weak.1, "weak_finished": weak.2,
        })
    }

    fn with_strong(mut v: Value, strong: (u32, f64, bool)) -> Value {
        v["strong_tokens"] = json!(strong.0);
        v["strong_prm"] = json!(strong.1);
        v["strong_finished"] = json!(strong.2);
        v
    }

    fn with_correct(mut v: Value, c: bool) -> Value {
        v["correct"] = json!(c);
        v
    }

    const W0: (u32, f64, bool) = (10, 0.9, false);
    const S0: (u32, f64, bool) = (12, 0.95, false);

    /// Trace `a`: continue, then a finished weak step (wrong). Trace `b`: regenerate at the root
    /// (it recorded the strong candidate `a` did not), then a finished weak step (right).
    fn two_agreeing() -> Vec<Value> {
        vec![
            row("a", 0, "continue", W0),
            with_correct(row("a", 1, "continue", (20, 0.3, true)), false),
            with_strong(row("b", 0, "regenerate", W0), S0),
            with_correct(row("b", 1, "continue", (7, 0.8, true)), true),
        ]
    }

    fn import_lines(name: &str, lines: &[Value]) -> Result<(Dataset, Report)> {
        let d = tmpdir(name);
        import(&write_lines(&d, "log.jsonl", lines), &Options::default())
    }

    fn bad(name: &str, lines: &[Value]) -> Details {
        match import_lines(name, lines) {
            Ok(_) => panic!("{name}: bad input accepted"),
            Err(e) => e.details().clone(),
        }
    }

    fn bad_text(name: &str, text: &str) -> Details {
        let d = tmpdir(name);
        let p = d.join("log.jsonl");
        std::fs::write(&p, text).expect("write");
        match import(&p, &Options::default()) {
            Ok(_) => panic!("{name}: bad input accepted"),
            Err(e) => e.details().clone(),
        }
    }

    #[test]
    fn agreeing_traces_merge_into_one_tree() {
        let (ds, rep) = import_lines("merge", &two_agreeing()).expect("import");
        assert_eq!(
            (rep.traces, rep.problems, rep.trees, rep.nodes),
            (2, 1, 1, 3)
        );
        let root = &ds.rows[0];
        assert_eq!(root.parent, None);
        // `a` did not generate the strong candidate; `b`'s fills it in.
        assert_eq!(root.strong.as_ref().map(|s| s.tokens), Some(12));
        assert_eq!(ds.problems[0].split, "train");
        let l = validate(Path::new("mem"), ds).expect("valid");
        let f = &l.forest;
        let r = f.root(0);
        assert_eq!(f.mask(r), [true, true]);
        let all = [0u32];
        let run = |p: RefPolicy| evaluate(f, &all, &p, EvalOptions::default()).expect("run")[0];
        assert_eq!(run(RefPolicy::Weak).accuracy, 0.0);
        let s = run(RefPolicy::Strong);
        // Regenerate at the root, then only continue is available (never executed otherwise).
        assert_eq!((s.accuracy, s.strong_tokens, s.steps), (1.0, 12.0, 2.0));
    }

    #[test]
    fn disagreeing_traces_split_into_sample_trees() {
        let mut lines = two_agreeing();
        // `c`: another weak root step → its own tree.
        lines.push(with_correct(row("c", 0, "continue", (11, 0.9, true)), true));
        // `d`: same weak root, different strong candidate → its own tree.
        lines.push(with_strong(
            row("d", 0, "regenerate", W0),
            (13, 0.95, false),
        ));
        lines.push(with_correct(row("d", 1, "continue", (7, 0.8, true)), true));
        // `e`: same path as `b` but the opposite outcome: cannot share the terminal branch.
        lines.push(with_strong(row("e", 0, "regenerate", W0), S0));
        lines.push(with_correct(row("e", 1, "continue", (7, 0.8, true)), false));
        // `f`: consistent with tree 0 (walks `a`'s path, stops at a new branch there).
        lines.push(row("f", 0, "continue", W0));
        lines.push(with_correct(
            with_strong(row("f", 1, "regenerate", (20, 0.3, true)), (9, 0.7, true)),
            true,
        ));
        let (ds, rep) = import_lines("split", &lines).expect("import");
        assert_eq!((rep.traces, rep.trees), (6, 4));
        let nodes_of = |t: u32| ds.rows.iter().filter(|r| r.tree == t).count();
        assert_eq!(
            (nodes_of(0), nodes_of(1), nodes_of(2), nodes_of(3)),
            (3, 1, 2, 2)
        );
        let l = validate(Path::new("mem"), ds).expect("valid");
        // In tree 0 the node after `continue` now offers both actions, each with its outcome.
        let f = &l.forest;
        let Branch::Node(n1) = f.branch(f.root(0), Action::Continue) else {
            panic!("continue child");
        };
        assert_eq!(f.branch(n1, Action::Continue), Branch::Outcome(false));
        assert_eq!(f.branch(n1, Action::Regenerate), Branch::Outcome(true));
    }

    /// Three problems of full binary trees of depth 3 (the second with two sample trees); scores
    /// and outcomes from a seeded RNG so threshold policies take different paths.
    fn tree_dataset() -> Dataset {
        let mut b = DatasetBuilder::new(Meta::new("unit-trees"));
        let mut rng = Rng::new(42);
        let cand = |rng: &mut Rng, finished: bool| CandidateRec {
            tokens: 1 + rng.below(60) as u32,
            prm: rng.f32(),
            finished,
            state: Some(rng.below(3) as u8),
            text: None,
            hash: Some(format!("{:016x}", rng.next_u64())),
        };
        for (pi, trees) in [1, 2, 1].into_iter().enumerate() {
            let p = b.add_problem(ProblemInfo {
                problem_id: format!("q{pi}"),
                dataset: "unit".into(),
                split: if pi == 2 {
                    "test".into()
                } else {
                    "train".into()
                },
                weak_model: "w".into(),
                strong_model: "s".into(),
                prm_model: "prm".into(),
            });
            for _ in 0..trees {
                let mut tw = b.tree(p);
                let (w, s) = (cand(&mut rng, false), cand(&mut rng, false));
                let mut frontier = vec![tw.root(w, Some(s))];
                for depth in 1..3 {
                    let mut next = vec![];
                    for &n in &frontier {
                        for a in Action::ALL {
                            let fin = depth == 2;
                            let (w, s) = (cand(&mut rng, fin), cand(&mut rng, fin));
                            let c = tw.child(n, a, w, Some(s));
                            if fin {
                                tw.set_outcome(c, Action::Continue, rng.bernoulli(0.5));
                                tw.set_outcome(c, Action::Regenerate, rng.bernoulli(0.5));
                            }
                            next.push(c);
                        }
                    }
                    frontier = next;
                }
            }
        }
        b.finish()
    }

    #[test]
    fn round_trip_walk_log_import_gives_same_outcomes() {
        let l = validate(Path::new("mem"), tree_dataset()).expect("valid source");
        let pols = [
            RefPolicy::Weak,
            RefPolicy::Strong,
            RefPolicy::Threshold(0.3),
            RefPolicy::Threshold(0.6),
            RefPolicy::Threshold(0.9),
        ];
        let named: Vec<(String, &dyn Policy)> = pols
            .iter()
            .map(|p| (p.to_string(), p as &dyn Policy))
            .collect();
        let all: Vec<u32> = (0..3).collect();
        let log = log_traces(&l, &all, &named, 7).expect("walk");
        assert!(log.iter().filter(|r| r.correct.is_some()).count() == 4 * pols.len());
        let d = tmpdir("roundtrip");
        for file in ["log.jsonl", "log.parquet"] {
            let path = d.join(file);
            write_traces(&path, &log).expect("write log");
            let back = read_traces(&path, DEFAULT_MAX_STEPS).expect("read log");
            let back_rows: Vec<TraceRow> = back.iter().map(|(_, r)| r.clone()).collect();
            assert_eq!(
                back_rows, log,
                "{file}: rows survive the round trip exactly"
            );
            let (ds, rep) = merge(&path, &back, &Options::default()).expect("merge");
            assert_eq!(rep.problems, 3);
            assert_eq!(rep.trees, 4, "one merged tree per source sample tree");
            assert_eq!(ds.problems[2].split, "test");
            let imported = validate(&path, ds).expect("imported trees are valid");
            for p in &pols {
                let a = evaluate(&l.forest, &all, p, EvalOptions::default()).expect("src");
                let b = evaluate(&imported.forest, &all, p, EvalOptions::default()).expect("imp");
                assert_eq!(a, b, "{file}: policy {p}");
            }
        }
    }

    #[test]
    fn unkept_finished_candidate_is_masked_and_step_cap_ends_traces() {
        // The strong candidate at step 1 is finished but was never kept: no outcome is known.
        let lines = vec![
            row("a", 0, "continue", W0),
            with_correct(
                with_strong(row("a", 1, "continue", (20, 0.3, true)), (9, 0.7, true)),
                true,
            ),
        ];
        let (ds, _) = import_lines("masked", &lines).expect("import");
        let n1 = &ds.rows[1];
        assert_eq!(n1.strong.as_ref().map(|s| s.finished), Some(false));
        assert_eq!(n1.regenerate_correct, None);
        let l = validate(Path::new("mem"), ds).expect("valid");
        let Branch::Node(n) = l.forest.branch(l.forest.root(0), Action::Continue) else {
            panic!("child");
        };
        assert_eq!(l.forest.mask(n), [true, false]);
        // With a cap of 2 steps, a trace may end unfinished at step 1.
        let d = tmpdir("cap");
        let lines = vec![
            row("a", 0, "continue", W0),
            with_correct(row("a", 1, "continue", (20, 0.3, false)), false),
        ];
        let p = write_lines(&d, "log.jsonl", &lines);
        let opts = Options {
            max_steps: 2,
            ..Options::default()
        };
        let (ds, _) = import(&p, &opts).expect("capped trace");
        assert!(ds.rows[1].weak.finished);
        validate(&p, ds).expect("valid");
        let e = import(&p, &Options::default()).expect_err("uncapped: must be finished");
        assert_eq!(e.details().field.as_deref(), Some("weak_finished"));
    }

    #[test]
    fn bad_empty_file() {
        let d = bad_text("empty", "");
        assert_eq!(d.loc, Loc::File);
        assert!(d.reason.contains("empty"), "{}", d.reason);
        let d = bad_text("blank", "\n\n");
        assert!(d.reason.contains("no trace rows"), "{}", d.reason);
    }

    #[test]
    fn bad_missing_column() {
        let mut lines = two_agreeing();
        lines[2].as_object_mut().expect("obj").remove("weak_prm");
        let d = bad("missing", &lines);
        assert_eq!(
            (d.loc, d.field.as_deref()),
            (Loc::Line(3), Some("weak_prm"))
        );
        // Parquet: a required column absent from the file.
        let dir = tmpdir("missing-pq");
        let p = dir.join("log.parquet");
        let mut df = DataFrame::new(
            1,
            vec![
                Column::new(col::TRACE_ID.into(), ["a"]),
                Column::new(col::PROBLEM_ID.into(), ["p"]),
                Column::new(col::STEP.into(), [0u32]),
                Column::new(col::ACTION.into(), [0u8]),
                Column::new(col::WEAK_TOKENS.into(), [3u32]),
                Column::new(col::WEAK_FINISHED.into(), [true]),
                Column::new(col::CORRECT.into(), [true]),
            ],
        )
        .expect("df");
        let f = std::fs::File::create(&p).expect("create");
        ParquetWriter::new(f).finish(&mut df).expect("write");
        let e = import(&p, &Options::default()).expect_err("missing column");
        assert_eq!(e.details().loc, Loc::File);
        assert_eq!(e.details().field.as_deref(), Some("weak_prm"));
        // A strong candidate with only some of its fields.
        let mut lines = two_agreeing();
        lines[2].as_object_mut().expect("obj").remove("strong_prm");
        let d = bad("partial-strong", &lines);
        assert_eq!(
            (d.loc, d.field.as_deref()),
            (Loc::Line(3), Some("strong_prm"))
        );
    }

    #[test]
    fn bad_wrong_type() {
        let mut lines = two_agreeing();
        lines[1]["weak_tokens"] = json!("20");
        let d = bad("type", &lines);
        assert_eq!(
            (d.loc, d.field.as_deref()),
            (Loc::Line(2), Some("weak_tokens"))
        );
        let mut lines = two_agreeing();
        lines[0]["weak_finished"] = json!(0);
        let d = bad("type-bool", &lines);
        assert_eq!(
            (d.loc, d.field.as_deref()),
            (Loc::Line(1), Some("weak_finished"))
        );
        let d = bad_text("not-object", "[1, 2]\n");
        assert_eq!(d.loc, Loc::Line(1));
        // Parquet: a float column where an integer is required.
        let dir = tmpdir("type-pq");
        let p = dir.join("log.parquet");
        let mut df = DataFrame::new(
            1,
            vec![
                Column::new(col::TRACE_ID.into(), ["a"]),
                Column::new(col::PROBLEM_ID.into(), ["p"]),
                Column::new(col::STEP.into(), [0.0f64]),
                Column::new(col::ACTION.into(), [0u8]),
                Column::new(col::WEAK_TOKENS.into(), [3u32]),
                Column::new(col::WEAK_PRM.into(), [0.5f32]),
                Column::new(col::WEAK_FINISHED.into(), [true]),
                Column::new(col::CORRECT.into(), [true]),
            ],
        )
        .expect("df");
        let f = std::fs::File::create(&p).expect("create");
        ParquetWriter::new(f).finish(&mut df).expect("write");
        let e = import(&p, &Options::default()).expect_err("wrong type");
        assert_eq!(e.details().field.as_deref(), Some("step"));
    }

    #[test]
    fn bad_nan() {
        // Python's json.dumps writes a bare NaN: the error still names line and field.
        let lines = two_agreeing();
        let mut text: String = lines.iter().map(|v| format!("{v}\n")).collect();
        text = text.replacen("\"weak_prm\":0.3", "\"weak_prm\":NaN", 1);
        assert!(text.contains("NaN"));
        let d = bad_text("nan", &text);
        assert_eq!(
            (d.loc, d.field.as_deref()),
            (Loc::Line(2), Some("weak_prm"))
        );
        assert!(d.reason.contains("NaN"), "{}", d.reason);
        // NaN inside a string value is just text.
        assert_eq!(mark_non_finite("{\"a\":\"NaN\"}"), "{\"a\":\"NaN\"}");
        // Parquet NaN.
        let log = vec![TraceRow {
            trace_id: "a".into(),
            problem_id: "p".into(),
            step: 0,
            action: Action::Continue,
            weak: CandidateRec {
                tokens: 3,
                prm: f32::NAN,
                finished: true,
                state: None,
                text: None,
                hash: None,
            },
            strong: None,
            correct: Some(true),
            info: Default::default(),
        }];
        let dir = tmpdir("nan-pq");
        let p = dir.join("log.parquet");
        write_traces(&p, &log).expect("write");
        let e = import(&p, &Options::default()).expect_err("NaN");
        assert_eq!(e.details().loc, Loc::Row(0));
        assert_eq!(e.details().field.as_deref(), Some("weak_prm"));
    }

    #[test]
    fn bad_out_of_range() {
        for (field, value, line) in [
            ("weak_prm", json!(1.5), 2),
            ("strong_prm", json!(-0.1), 3),
            ("weak_tokens", json!(0), 1),
            ("action", json!(2), 1),
            ("action", json!("escalate"), 1),
            ("step", json!(-1), 1),
            ("step", json!(30), 1),
            ("weak_state", json!(3), 1),
        ] {
            let mut lines = two_agreeing();
            lines[line - 1][field] = value.clone();
            let d = bad(&format!("range-{field}"), &lines);
            assert_eq!(
                (d.loc, d.field.as_deref()),
                (Loc::Line(line), Some(field)),
                "{field} = {value}: {}",
                d.reason
            );
        }
    }

    #[test]
    fn bad_non_contiguous_steps() {
        let mut lines = two_agreeing();
        lines[1]["step"] = json!(2);
        let d = bad("gap", &lines);
        assert_eq!((d.loc, d.field.as_deref()), (Loc::Line(2), Some("step")));
        assert!(d.reason.contains("not contiguous"), "{}", d.reason);
        let mut lines = two_agreeing();
        lines[1]["step"] = json!(0);
        let d = bad("duplicate", &lines);
        assert!(d.reason.contains("duplicate step 0"), "{}", d.reason);
        let mut lines = two_agreeing();
        lines[0]["step"] = json!(2);
        let d = bad("start", &lines);
        assert!(d.reason.contains("starts at step 1"), "{}", d.reason);
        // Rows of a trace may come in any order.
        let mut lines = two_agreeing();
        lines.swap(0, 1);
        import_lines("unordered", &lines).expect("order is free");
    }

    #[test]
    fn bad_trace_with_two_problems() {
        let mut lines = two_agreeing();
        lines[1]["problem_id"] = json!("other");
        let d = bad("two-problems", &lines);
        assert_eq!(
            (d.loc, d.field.as_deref()),
            (Loc::Line(2), Some("problem_id"))
        );
        // Problem-level fields must agree across a problem's rows too.
        let mut lines = two_agreeing();
        lines[0]["split"] = json!("train");
        lines[3]["split"] = json!("test");
        let d = bad("two-splits", &lines);
        assert_eq!((d.loc, d.field.as_deref()), (Loc::Line(4), Some("split")));
    }

    #[test]
    fn bad_conflicting_outcomes() {
        let mut lines = two_agreeing();
        lines[0]["correct"] = json!(true);
        let d = bad("conflict", &lines);
        assert_eq!((d.loc, d.field.as_deref()), (Loc::Line(2), Some("correct")));
        assert!(d.reason.contains("conflicting"), "{}", d.reason);
        let mut lines = two_agreeing();
        lines[1].as_object_mut().expect("obj").remove("correct");
        let d = bad("no-outcome", &lines);
        assert_eq!((d.loc, d.field.as_deref()), (Loc::Line(2), Some("correct")));
    }

    #[test]
    fn bad_regenerate_without_strong() {
        let mut lines = two_agreeing();
        lines[0]["action"] = json!(1);
        let d = bad("regen", &lines);
        assert_eq!(
            (d.loc, d.field.as_deref()),
            (Loc::Line(1), Some("strong_tokens"))
        );
    }

    #[test]
    fn bad_finish_in_the_middle() {
        let mut lines = two_agreeing();
        lines[0]["weak_finished"] = json!(true);
        let d = bad("mid-finish", &lines);
        assert_eq!(
            (d.loc, d.field.as_deref()),
            (Loc::Line(1), Some("weak_finished"))
        );
    }

    #[test]
    fn shipped_example_imports() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/paths-example.jsonl");
        let (ds, rep) = import(&p, &Options::default()).expect("example log imports");
        assert!(rep.traces > rep.trees, "several policies share trees");
        validate(&p, ds).expect("example trees are valid");
    }
}
