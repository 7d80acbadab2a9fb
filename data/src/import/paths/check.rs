//! The row checker: presence, ranges and cross-field rules of one trace row, shared by both
//! readers. Errors name the file, the line or row, and the field.

use std::path::Path;

use trim_env::Action;

use crate::error::{DataError, Loc, Result};
use crate::schema::{CandidateRec, StepState};

use super::raw::{RawAction, RawCand, RawRow};
use super::schema::{TraceRow, col};

/// Presence, ranges and cross-field rules of one row.
pub(super) fn check_row(path: &Path, loc: &Loc, r: RawRow, max_steps: u16) -> Result<TraceRow> {
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
    if let Some(p) = r.propensity
        && !(p.is_finite() && p > 0.0 && p <= 1.0)
    {
        return Err(err(
            col::PROPENSITY,
            format!("{p} is not a probability in (0, 1] of the action taken"),
        ));
    }
    if r.policy_id.as_deref() == Some("") {
        return Err(err(col::POLICY_ID, "must not be empty when given".into()));
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
        propensity: r.propensity,
        policy_id: r.policy_id,
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
            ("judge_score", c.judge_score.is_some()),
            ("mean_logprob", c.mean_logprob.is_some()),
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
        Some(s @ 0..=2) => StepState::from_u8(s as u8),
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
        judge_score: signal(err, &k("judge_score"), c.judge_score, true)?,
        mean_logprob: signal(err, &k("mean_logprob"), c.mean_logprob, false)?,
    }))
}

/// An optional step signal: a judge score in `[0, 1]` or a mean log-probability (finite, ≤ 0).
fn signal(
    err: &dyn Fn(&str, String) -> DataError,
    field: &str,
    v: Option<f64>,
    judge: bool,
) -> Result<Option<f32>> {
    let Some(x) = v else { return Ok(None) };
    let ok = match judge {
        true => (0.0..=1.0).contains(&x),
        false => x.is_finite() && x <= 0.0,
    };
    match (ok, judge) {
        (true, _) => Ok(Some(x as f32)),
        (false, true) => Err(err(field, format!("{x} is not a judge score in [0, 1]"))),
        (false, false) => Err(err(
            field,
            format!("{x} is not a mean log-probability (finite, ≤ 0)"),
        )),
    }
}
