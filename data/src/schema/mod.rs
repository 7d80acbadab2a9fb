//! The rollout-tree data model: rows, candidates, problems and dataset metadata.
//!
//! On disk (parquet, canonical) a dataset is **one row per decision node**; problem-level fields
//! repeat on each row (parquet's dictionary encoding makes that free). Dataset metadata
//! (provenance, tokenizer, generator parameters, the command that regenerates it) is a JSON string
//! under the parquet key [`META_KEY`]. `data/README.md` documents every column.

use serde::{Deserialize, Serialize};
use trim_env::Action;

pub mod table;

pub use table::{AuditColumns, NodeFlags, NodeStates, NodeTable, SignalColumn, SignalTable};

/// Name of the format, written into every file's metadata.
pub const FORMAT_NAME: &str = "trim-rollout-trees";
/// Version of the on-disk format; bumped on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;
/// Parquet key-value metadata key holding the [`Meta`] JSON.
pub const META_KEY: &str = "trim.meta";

/// Latent correctness state of a candidate step (TRIM-POMDP's states, ProcessBench's labels).
/// Stored as its number (0, 1, 2) in files; anything else is refused where it is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum StepState {
    /// All steps so far, this one included, are correct.
    S0 = 0,
    /// An earlier step was the first error; the solution continued past it.
    S1 = 1,
    /// This step is the first error.
    S2 = 2,
}

impl StepState {
    /// Every state, by number.
    pub const ALL: [StepState; 3] = [StepState::S0, StepState::S1, StepState::S2];

    /// The state numbered `v`, if there is one.
    pub fn from_u8(v: u8) -> Option<StepState> {
        Self::ALL.get(usize::from(v)).copied()
    }

    /// Its number: 0, 1 or 2 (also an index into per-state tables).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl Serialize for StepState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u8(*self as u8)
    }
}

impl<'de> Deserialize<'de> for StepState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = u8::deserialize(d)?;
        StepState::from_u8(v).ok_or_else(|| {
            serde::de::Error::custom(format!("state {v} is not 0 (S0), 1 (S1) or 2 (S2)"))
        })
    }
}

/// `Option<Action>` as the action's number (0 = continue, 1 = regenerate) in serialised forms;
/// anything else is refused where it is read. Use with `#[serde(with = "action_number")]`.
pub mod action_number {
    use serde::{Deserialize, Deserializer, Serializer};
    use trim_env::Action;

    /// Write the action's number (or nothing).
    pub fn serialize<S: Serializer>(a: &Option<Action>, s: S) -> Result<S::Ok, S::Error> {
        match a {
            Some(a) => s.serialize_some(&(*a as u8)),
            None => s.serialize_none(),
        }
    }

    /// Read an action number (or null).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Action>, D::Error> {
        match Option::<u8>::deserialize(d)? {
            None => Ok(None),
            Some(v) => Action::from_index(v).map(Some).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "action {v} is not 0 (continue) or 1 (regenerate)"
                ))
            }),
        }
    }
}

/// One candidate step (weak, or strong for the same prefix).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateRec {
    /// Decoded tokens (≥ 1).
    pub tokens: u32,
    /// PRM score of the prefix ending with this step, in context, in `[0, 1]`.
    pub prm: f32,
    /// The episode ends after this step if it is kept (boxed answer, EOS, or step cap).
    pub finished: bool,
    /// Correctness state when known: real labels or the latent truth of a synthetic step. Used
    /// for PRM AUROC, never by the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StepState>,
    /// Step text, for auditing (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Hash of the step text, for auditing without shipping text (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// A judge model's score of this step in `[0, 1]` (SpecReason-style; a 0–9 judge's digit
    /// divided by 9), optional. Read by the judge rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_score: Option<f32>,
    /// Mean token log-probability of this step under the model that wrote it (finite, ≤ 0),
    /// optional. Read by the confidence rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_logprob: Option<f32>,
}

/// One decision node: the point at step `depth` after the action history leading from the root.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRow {
    /// Index into [`Dataset::problems`].
    pub problem: u32,
    /// Sample tree of the problem.
    pub tree: u32,
    /// Node id, unique within (problem, tree).
    pub node: u32,
    /// Parent node id (None for the root).
    pub parent: Option<u32>,
    /// Action taken at the parent to reach this node.
    pub action: Option<Action>,
    /// Step index `t` (0 at the root).
    pub depth: u16,
    pub weak: CandidateRec,
    /// The strong candidate for the same prefix, when it was generated.
    pub strong: Option<CandidateRec>,
    /// Final-answer correctness if the weak candidate is kept and finishes the solution.
    pub continue_correct: Option<bool>,
    /// Final-answer correctness if the strong candidate is kept and finishes the solution.
    pub regenerate_correct: Option<bool>,
}

/// Problem-level fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemInfo {
    pub problem_id: String,
    pub dataset: String,
    /// `train`, `test`, … (free text; the trainer holds out part of `train` for validation).
    pub split: String,
    pub weak_model: String,
    pub strong_model: String,
    pub prm_model: String,
}

/// One input the dataset was derived from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceRef {
    /// Short name, e.g. `processbench/math.json`.
    pub name: String,
    /// Upstream origin (repository and commit, or "generated").
    pub origin: String,
    /// sha256 of the file as read, when it is a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Dataset metadata: what is real, what is synthetic, and how to rebuild it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub format: String,
    pub format_version: u32,
    /// Dataset name.
    pub name: String,
    /// One paragraph on what the dataset is.
    #[serde(default)]
    pub description: String,
    /// Which parts are real data (e.g. "all-weak path steps: ProcessBench human labels").
    #[serde(default)]
    pub real: Vec<String>,
    /// Which parts are synthetic (e.g. "strong regenerations: latent model").
    #[serde(default)]
    pub synthetic: Vec<String>,
    /// Tokenizer used for token counts.
    #[serde(default)]
    pub tokenizer: String,
    /// Inputs.
    #[serde(default)]
    pub sources: Vec<SourceRef>,
    /// The command that regenerates this dataset.
    #[serde(default)]
    pub command: String,
    /// Tool version that wrote it.
    #[serde(default)]
    pub created_by: String,
    /// Generator/importer parameters (free-form JSON).
    #[serde(default)]
    pub params: serde_json::Value,
}

impl Meta {
    /// Metadata with the format fields filled in.
    pub fn new(name: impl Into<String>) -> Self {
        Meta {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            name: name.into(),
            description: String::new(),
            real: vec![],
            synthetic: vec![],
            tokenizer: String::new(),
            sources: vec![],
            command: String::new(),
            created_by: format!("trim-data {}", env!("CARGO_PKG_VERSION")),
            params: serde_json::Value::Null,
        }
    }
}

/// A whole dataset in memory: metadata, problems, and node rows.
///
/// Rows are the exchange form between files, importers and validation; the replay environment
/// works on the struct-of-arrays [`trim_env::Forest`] built by [`crate::validate()`].
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub meta: Meta,
    pub problems: Vec<ProblemInfo>,
    pub rows: Vec<NodeRow>,
    /// For datasets read from JSONL: the 1-based line each row came from (for error messages).
    pub lines: Option<Vec<u32>>,
}

impl Dataset {
    /// A dataset built in memory (no source lines to point errors at).
    pub fn new(meta: Meta, problems: Vec<ProblemInfo>, rows: Vec<NodeRow>) -> Self {
        Dataset {
            meta,
            problems,
            rows,
            lines: None,
        }
    }
}

impl Meta {
    /// Refuse metadata of another format or of a format version this build does not know:
    /// reading a newer layout as if it were this one would misread fields silently.
    pub fn check_format(
        &self,
        path: &std::path::Path,
        loc: crate::error::Loc,
    ) -> crate::Result<()> {
        use crate::error::DataError;
        if self.format != FORMAT_NAME {
            return Err(DataError::new(
                path,
                loc,
                Some("format"),
                format!("format is `{}`, expected `{FORMAT_NAME}`", self.format),
            ));
        }
        if self.format_version != FORMAT_VERSION {
            return Err(DataError::new(
                path,
                loc,
                Some("format_version"),
                format!(
                    "unsupported format version {} (this build reads version {FORMAT_VERSION})",
                    self.format_version
                ),
            ));
        }
        Ok(())
    }
}
