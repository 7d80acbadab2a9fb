//! ProcessBench records: one generator's step-segmented solution with its human first-error label,
//! read from a subset file (`<raw>/<subset>.json`) and checked record by record.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Loc, Result};
use crate::schema::{SourceRef, StepState};

/// Upstream of the ProcessBench files (see `../shared/data/raw/processbench/SOURCE.md`).
pub const PROCESSBENCH_ORIGIN: &str =
    "github.com/QwenLM/ProcessBench@ee5ae00f2d32205df00655cf9ebbc3caddce0646 dataset/";
/// The four ProcessBench subsets.
pub const SUBSETS: [&str; 4] = ["gsm8k", "math", "olympiadbench", "omnimath"];

/// One ProcessBench record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    pub id: String,
    pub generator: String,
    pub problem: String,
    pub steps: Vec<String>,
    pub final_answer_correct: bool,
    /// 0-based index of the first erroneous step, −1 if the process is correct.
    pub label: i64,
}

impl Solution {
    /// Latent state of step `t` from the human label.
    pub fn state_of(&self, t: usize) -> StepState {
        match usize::try_from(self.label) {
            Err(_) => StepState::S0,
            Ok(l) if t < l => StepState::S0,
            Ok(l) if t == l => StepState::S2,
            Ok(_) => StepState::S1,
        }
    }

    /// Why the record cannot become a path (the field and the reason), if it cannot.
    fn defect(&self) -> Option<(&'static str, String)> {
        if self.steps.is_empty() {
            return Some(("steps", format!("solution `{}` has no steps", self.id)));
        }
        if self.label < -1 || self.label >= self.steps.len() as i64 {
            let reason = format!(
                "solution `{}`: label {} is neither -1 nor a step index below {}",
                self.id,
                self.label,
                self.steps.len()
            );
            return Some(("label", reason));
        }
        None
    }
}

/// The file of subset `subset` under `raw`.
pub fn subset_path(raw: &Path, subset: &str) -> PathBuf {
    raw.join(format!("{subset}.json"))
}

/// Read one ProcessBench subset file (a JSON array) and check every record.
pub fn read_subset(path: &Path) -> Result<Vec<Solution>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DataError::file(path, format!("cannot read: {e}")))?;
    let sols: Vec<Solution> = crate::io::parse_json(path, &text)?;
    for (i, s) in sols.iter().enumerate() {
        if let Some((field, reason)) = s.defect() {
            return Err(DataError::new(path, Loc::Row(i), Some(field), reason));
        }
    }
    Ok(sols)
}

/// Subset `subset` under `raw` as a dataset source (upstream origin and the file's sha256).
pub fn subset_source(raw: &Path, subset: &str) -> Result<SourceRef> {
    Ok(SourceRef {
        name: format!("processbench/{subset}.json"),
        origin: format!("{PROCESSBENCH_ORIGIN}{subset}.json"),
        sha256: Some(crate::io::sha256_file(&subset_path(raw, subset))?),
    })
}

/// Parameter count in billions parsed from a generator name (`Qwen2.5-1.5B-Instruct` → 1.5).
pub fn generator_size_b(name: &str) -> Option<f64> {
    name.split(['-', '_', ' ']).find_map(|part| {
        let num = part.strip_suffix('B').or_else(|| part.strip_suffix('b'))?;
        num.parse::<f64>().ok().filter(|x| *x > 0.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_states_from_labels() {
        assert_eq!(generator_size_b("Qwen2.5-1.5B-Instruct"), Some(1.5));
        assert_eq!(generator_size_b("Meta-Llama-3-8B-Instruct"), Some(8.0));
        assert_eq!(generator_size_b("Qwen2.5-Math-72B-Instruct"), Some(72.0));
        assert_eq!(generator_size_b("gpt-4o"), None);
        let s = Solution {
            id: "x".into(),
            generator: "g".into(),
            problem: "p".into(),
            steps: vec!["a".into(); 4],
            final_answer_correct: false,
            label: 1,
        };
        let st: Vec<StepState> = (0..4).map(|t| s.state_of(t)).collect();
        use StepState::*;
        assert_eq!(st, vec![S0, S2, S1, S1]);
        let ok = Solution { label: -1, ..s };
        assert!((0..4).all(|t| ok.state_of(t) == S0));
    }
}
