//! Settings and summary of the GSM8K paired import: which upstream solution pair, the seed, the
//! split fraction, and the counts the command prints.

use std::fmt;
use std::str::FromStr;

/// Which pair of upstream solutions to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// One sample of each fine-tuned model (`6b_finetuning` / `175b_finetuning`).
    Finetuning,
    /// Verifier-selected best of 100 samples (`6b_verification` / `175b_verification`).
    Verification,
}

impl Variant {
    /// Upstream field name of the weak solution.
    pub fn weak_field(self) -> &'static str {
        match self {
            Variant::Finetuning => "6b_finetuning",
            Variant::Verification => "6b_verification",
        }
    }

    /// Upstream field name of the strong solution.
    pub fn strong_field(self) -> &'static str {
        match self {
            Variant::Finetuning => "175b_finetuning",
            Variant::Verification => "175b_verification",
        }
    }

    /// Name used on the command line and in metadata.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Finetuning => "finetuning",
            Variant::Verification => "verification",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "finetuning" => Ok(Variant::Finetuning),
            "verification" => Ok(Variant::Verification),
            _ => Err(format!(
                "unknown variant `{s}`: expected finetuning or verification"
            )),
        }
    }
}

/// Importer settings.
#[derive(Clone, Debug)]
pub struct Options {
    pub variant: Variant,
    /// Seed of the PRM-score draws (one RNG stream per upstream line).
    pub seed: u64,
    /// Fraction of problems put in the `test` split (by a hash of the question text, so the split
    /// does not move with the seed or the variant).
    pub test_fraction: f64,
    /// Store step texts (otherwise only their hashes).
    pub with_text: bool,
    /// The command that regenerates the dataset (recorded in the metadata).
    pub command: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            variant: Variant::Finetuning,
            seed: 0,
            test_fraction: 0.2,
            with_text: false,
            command: String::new(),
        }
    }
}

/// What the import read and built, for the command's summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub problems: usize,
    pub test_problems: usize,
    pub nodes: usize,
    /// Upstream `is_correct` counts of the weak / strong solutions.
    pub weak_correct: usize,
    pub strong_correct: usize,
    /// Steps (lines) of all weak / strong solutions.
    pub weak_steps: usize,
    pub strong_steps: usize,
    /// Weak / strong steps judged off-chain by the heuristic.
    pub weak_off_chain: usize,
    pub strong_off_chain: usize,
    /// Sum of the token counts of all strong solutions (= always-strong cost).
    pub strong_tokens: u64,
}
