//! `summary.json`: the record of a run that tools read back ([`RunSummary`], serialised and
//! deserialised through the same types: the sweep's skip/resume planning, `trim train --json`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use trim_env::Summary;

use crate::backend::Backend;
use crate::checkpoint::EvalRecord;
use crate::error::{Result, TrainError};

/// File name of the summary in a run directory.
pub const SUMMARY_FILE: &str = "summary.json";

/// How the last session of a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Stopped by `--stop-after-updates` with a checkpoint; continue with `--resume`.
    Stopped,
    /// The whole schedule is done (`final/` written).
    Finished,
    /// Stopped by an error (e.g. divergence, see `error`); the checkpoints before it are good.
    Failed,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunStatus::Stopped => "stopped",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
        })
    }
}

/// Policy scores on one split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub reward: f64,
    pub accuracy: f64,
    pub strong_tokens: f64,
    pub strong_calls: f64,
    pub cost_fraction: f64,
}

impl From<Summary> for Scores {
    fn from(s: Summary) -> Self {
        Scores {
            reward: s.reward,
            accuracy: s.accuracy,
            strong_tokens: s.strong_tokens,
            strong_calls: s.strong_calls,
            cost_fraction: s.cost_fraction,
        }
    }
}

impl Scores {
    /// The field-wise mean of `all` (zeros for none).
    pub fn mean(all: &[Scores]) -> Scores {
        let n = all.len().max(1) as f64;
        let sum = |f: fn(&Scores) -> f64| all.iter().map(f).sum::<f64>() / n;
        Scores {
            reward: sum(|s| s.reward),
            accuracy: sum(|s| s.accuracy),
            strong_tokens: sum(|s| s.strong_tokens),
            strong_calls: sum(|s| s.strong_calls),
            cost_fraction: sum(|s| s.cost_fraction),
        }
    }
}

/// A TRIM-Thr policy and its scores.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdScores {
    pub threshold: f32,
    #[serde(flatten)]
    pub scores: Scores,
}

/// Baselines and trained policies on one split, at the run's λ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitReport {
    /// `validation` (the hold-out of the training split) or the test split's name.
    pub split: String,
    pub problems: usize,
    pub always_weak: Scores,
    pub always_strong: Scores,
    /// The threshold with the best validation reward, scored on this split.
    pub best_threshold: ThresholdScores,
    /// The best threshold on this split itself (an oracle on the test split).
    pub oracle_threshold: ThresholdScores,
    /// The `best/` policy (greedy).
    pub best_policy: Option<Scores>,
    /// The policy after the last update done (greedy).
    pub final_policy: Option<Scores>,
    /// A λ-conditioned run: the `best/` policy acting at each λ of the run's validation grid,
    /// each scored with the reward at that λ (empty for other runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lambda_curve: Vec<LambdaScores>,
    /// A budget-aware run: the `best/` policy under each budget of the run's validation grid
    /// (`best_policy`/`final_policy` are under the range's top budget; empty for other runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budget_curve: Vec<BudgetScores>,
}

/// A budget-aware policy under a hard budget of `budget` strong tokens per problem.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetScores {
    pub budget: u64,
    #[serde(flatten)]
    pub scores: Scores,
}

/// A λ-conditioned policy acting at `lambda`, and its scores (reward at that λ).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LambdaScores {
    pub lambda: f64,
    #[serde(flatten)]
    pub scores: Scores,
}

/// Wall-clock accounting of this process (a resumed run counts only its own part).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub wall_s: f64,
    pub rollout_s: f64,
    pub update_s: f64,
    pub validation_s: f64,
    pub io_s: f64,
    pub updates: u64,
    pub env_steps: u64,
    pub updates_per_s: f64,
    pub env_steps_per_s: f64,
}

impl Timing {
    /// Close the accounting after `wall_s` seconds: the rates.
    pub fn finish(&mut self, wall_s: f64) {
        self.wall_s = wall_s;
        if wall_s > 0.0 {
            self.updates_per_s = self.updates as f64 / wall_s;
            self.env_steps_per_s = self.env_steps as f64 / wall_s;
        }
    }
}

/// `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_name: String,
    pub run_dir: PathBuf,
    pub status: RunStatus,
    /// What stopped a failed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub dataset: PathBuf,
    pub lambda: f64,
    pub seed: u64,
    pub backend: Backend,
    pub updates_done: u64,
    pub total_updates: u64,
    pub env_steps: u64,
    pub episodes: u64,
    pub train_problems: usize,
    pub best: Option<EvalRecord>,
    pub last_val: Option<EvalRecord>,
    pub val: Option<SplitReport>,
    pub test: Option<SplitReport>,
    pub timing: Timing,
}

impl RunSummary {
    /// Read `run_dir/summary.json`; errors name the file.
    pub fn read(run_dir: &Path) -> Result<RunSummary> {
        let p = run_dir.join(SUMMARY_FILE);
        let text = std::fs::read_to_string(&p).map_err(|e| TrainError::io(&p, e))?;
        serde_json::from_str(&text)
            .map_err(|e| TrainError::io(&p, format!("not a run summary: {e}")))
    }

    /// Write it to `self.run_dir/summary.json` atomically.
    pub fn write(&self) -> Result<()> {
        let p = self.run_dir.join(SUMMARY_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|e| TrainError::io(&p, e))?;
        trim_data::io::write_text_atomic(&p, &text).map_err(|e| TrainError::io(&p, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_round_trip_and_old_files_still_read() {
        let s = RunSummary {
            run_name: "r".into(),
            run_dir: std::env::temp_dir().join(format!("trim-summary-{}", std::process::id())),
            status: RunStatus::Failed,
            error: Some("training diverged".into()),
            dataset: "d.jsonl".into(),
            lambda: 8e-4,
            seed: 1,
            backend: Backend::Flex,
            updates_done: 3,
            total_updates: 12,
            env_steps: 100,
            episodes: 24,
            train_problems: 43,
            best: None,
            last_val: None,
            val: None,
            test: None,
            timing: Timing::default(),
        };
        std::fs::create_dir_all(&s.run_dir).unwrap();
        s.write().unwrap();
        let text = std::fs::read_to_string(s.run_dir.join(SUMMARY_FILE)).unwrap();
        assert!(text.contains("\"status\": \"failed\"") && text.contains("\"backend\": \"flex\""));
        assert_eq!(RunSummary::read(&s.run_dir).unwrap(), s);
        // A summary written before `error` existed reads back as well.
        let old = text.replace("  \"error\": \"training diverged\",\n", "");
        let back: RunSummary = serde_json::from_str(&old).unwrap();
        assert_eq!(back.error, None);
        std::fs::write(s.run_dir.join(SUMMARY_FILE), "{\"status\": 3}").unwrap();
        let e = RunSummary::read(&s.run_dir).unwrap_err().to_string();
        assert!(
            e.contains(SUMMARY_FILE) && e.contains("not a run summary"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&s.run_dir);
    }
}
