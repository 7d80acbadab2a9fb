//! Real step lengths per model role (`data/calibration/step_tokens.json`): the token counts the
//! latent model draws for its synthetic steps.

use std::path::Path;

use serde::{Deserialize, Serialize};
use trim_env::Rng;

use crate::error::{DataError, Loc, Result};
use crate::schema::SourceRef;

use super::compact_json::write_compact_json;

/// Vendored real step-token lists (see `data/calibration/SOURCE.md`).
pub const STEP_TOKENS_JSON: &str = include_str!("../../calibration/step_tokens.json");
/// Where `step_tokens.json` lives in the repository.
pub const STEP_TOKENS_PATH: &str = "data/calibration/step_tokens.json";

/// Real step lengths of one model role, split by whether the step ends the solution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTokenLists {
    /// Generators whose steps were used.
    pub generators: Vec<String>,
    /// ProcessBench subsets the steps came from.
    pub subsets: Vec<String>,
    /// Solutions used.
    pub solutions: usize,
    /// Tokens of every step that is not the last of its solution.
    pub nonfinal: Vec<u32>,
    /// Tokens of every last step (the one with the final answer).
    #[serde(rename = "final")]
    pub last: Vec<u32>,
}

impl StepTokenLists {
    /// Draw a step length: from the final-step list for a finishing step, else the others.
    pub fn sample(&self, finished: bool, rng: &mut Rng) -> u32 {
        let list = if finished && !self.last.is_empty() {
            &self.last
        } else if !self.nonfinal.is_empty() {
            &self.nonfinal
        } else {
            &self.last
        };
        list[rng.below(list.len() as u64) as usize].max(1)
    }

    /// Mean tokens over all steps.
    pub fn mean(&self) -> f64 {
        let n = self.nonfinal.len() + self.last.len();
        let s: u64 = self
            .nonfinal
            .iter()
            .chain(&self.last)
            .map(|&t| u64::from(t))
            .sum();
        s as f64 / n.max(1) as f64
    }
}

/// `data/calibration/step_tokens.json`: real step lengths for the weak and strong roles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTokensFile {
    /// What the file is.
    pub description: String,
    /// Tokenizer that counted the tokens.
    pub tokenizer: String,
    /// Input files with sha256.
    pub sources: Vec<SourceRef>,
    /// The command that regenerates the file.
    pub command: String,
    pub weak: StepTokenLists,
    pub strong: StepTokenLists,
}

impl StepTokensFile {
    /// Parse and check (both roles need at least one step).
    pub fn from_json(path: &Path, text: &str) -> Result<Self> {
        let f: StepTokensFile = crate::io::parse_json(path, text)?;
        for (role, l) in [("weak", &f.weak), ("strong", &f.strong)] {
            if l.nonfinal.is_empty() && l.last.is_empty() {
                return Err(DataError::new(
                    path,
                    Loc::File,
                    Some(role),
                    "no step lengths",
                ));
            }
        }
        Ok(f)
    }

    /// The vendored file.
    pub fn vendored() -> Self {
        Self::from_json(Path::new("<embedded step_tokens.json>"), STEP_TOKENS_JSON)
            .expect("embedded step_tokens.json is valid")
    }
}

/// Write `step_tokens.json` atomically (compact lists), so a rebuilt file stays diffable.
pub fn write_step_tokens(path: &Path, f: &StepTokensFile) -> Result<()> {
    write_compact_json(path, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::TOKENIZER_NAME;

    #[test]
    fn vendored_step_tokens_are_real_lists() {
        let t = StepTokensFile::vendored();
        assert!(t.weak.solutions >= 100 && t.strong.solutions >= 80, "{t:?}");
        assert_eq!(t.weak.last.len(), t.weak.solutions);
        assert!(t.weak.mean() > 20.0 && t.weak.mean() < 200.0);
        assert_eq!(t.tokenizer, TOKENIZER_NAME);
    }
}
