//! The trace-log schema: one row per executed step ([`TraceRow`]), its column names, the
//! importer's options and summary. Documented for serving stacks in `data/docs/paths-schema.md`.

use trim_env::Action;

use crate::schema::CandidateRec;

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
    /// Optional step signals per candidate (a judge's score in [0, 1], the step's mean token
    /// log-probability ≤ 0).
    pub const WEAK_JUDGE_SCORE: &str = "weak_judge_score";
    pub const WEAK_MEAN_LOGPROB: &str = "weak_mean_logprob";
    pub const STRONG_JUDGE_SCORE: &str = "strong_judge_score";
    pub const STRONG_MEAN_LOGPROB: &str = "strong_mean_logprob";
    pub const CORRECT: &str = "correct";
    pub const DATASET: &str = "dataset";
    pub const SPLIT: &str = "split";
    pub const WEAK_MODEL: &str = "weak_model";
    pub const STRONG_MODEL: &str = "strong_model";
    pub const PRM_MODEL: &str = "prm_model";
    /// Probability the logging policy gave the action it took (optional; off-policy evaluation
    /// needs it).
    pub const PROPENSITY: &str = "propensity";
    /// Which policy (export, version, exploration setting) logged the row (optional).
    pub const POLICY_ID: &str = "policy_id";
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
    /// The logging policy's probability of `action`, in (0, 1] (absent in logs from before
    /// propensities were logged, or from a router that did not log them).
    pub propensity: Option<f64>,
    /// The logging policy's id.
    pub policy_id: Option<String>,
}

impl TraceRow {
    /// The candidate the router kept at this step (the strong one after a regenerate).
    pub fn kept(&self) -> &CandidateRec {
        match (self.action, &self.strong) {
            (Action::Regenerate, Some(s)) => s,
            _ => &self.weak,
        }
    }
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
