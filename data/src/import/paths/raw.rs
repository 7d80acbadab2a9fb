//! Rows as read, before checks: every field optional, so the JSONL and parquet readers share one
//! checker (`check.rs`).

/// A row before checks: every field optional, so JSONL and parquet share one checker.
#[derive(Default)]
pub(super) struct RawRow {
    pub(super) trace_id: Option<String>,
    pub(super) problem_id: Option<String>,
    pub(super) step: Option<i64>,
    pub(super) action: Option<RawAction>,
    pub(super) weak: RawCand,
    pub(super) strong: RawCand,
    pub(super) correct: Option<bool>,
    pub(super) info: [Option<String>; 5],
    pub(super) propensity: Option<f64>,
    pub(super) policy_id: Option<String>,
}

/// A candidate's fields as read.
#[derive(Default)]
pub(super) struct RawCand {
    pub(super) tokens: Option<i64>,
    pub(super) prm: Option<f64>,
    pub(super) finished: Option<bool>,
    pub(super) state: Option<i64>,
    pub(super) hash: Option<String>,
    pub(super) text: Option<String>,
    pub(super) judge_score: Option<f64>,
    pub(super) mean_logprob: Option<f64>,
}

/// An action as logged: 0/1 or "continue"/"regenerate" (checked later).
pub(super) enum RawAction {
    Int(i64),
    Str(String),
}
