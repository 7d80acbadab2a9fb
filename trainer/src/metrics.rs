//! `metrics.csv`: one [`MetricsRow`] per update. The header and each line are derived from one
//! table of (column, getter) pairs, so a column cannot drift from its value.
//!
//! `train/*` are means over the update's epochs and minibatches; `rollout/*` are over the
//! batch's episodes (`strong_token_frac` = strong ÷ (kept weak + discarded weak + strong)
//! tokens, as the release logs it); `val/*` are filled on validation updates and empty
//! otherwise; `time/*` are wall-clock of the current process (they restart on `--resume`) and
//! the only columns that differ between two runs with the same seed.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::checkpoint::EvalRecord;
use crate::error::{Result, TrainError};
use crate::ppo::{LossStats, RolloutBuffer};
use crate::run_dir::write_file;

/// Episode-level statistics of one batch of rollouts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RolloutScores {
    /// `accuracy − λ·strong_tokens`.
    pub reward: f64,
    pub accuracy: f64,
    /// Mean strong tokens per episode.
    pub strong_tokens: f64,
    /// Strong ÷ all generated tokens.
    pub strong_token_frac: f64,
    /// Mean regenerate actions per episode.
    pub strong_calls: f64,
    /// Mean steps per episode.
    pub episode_len: f64,
}

impl RolloutScores {
    /// The scores of the episodes in `buf`; the reward charges each episode the λ it was
    /// rewarded with (one λ for all unless the run is λ-conditioned).
    pub fn of(buf: &RolloutBuffer) -> Self {
        let n = buf.outcomes.len().max(1) as f64;
        let sum = |f: &dyn Fn(&trim_env::EpisodeOutcome) -> f64| -> f64 {
            buf.outcomes.iter().map(f).sum()
        };
        let accuracy = sum(&|o| f64::from(u8::from(o.correct))) / n;
        let strong = sum(&|o| o.strong_tokens as f64);
        let all =
            strong + sum(&|o| o.weak_tokens_kept as f64) + sum(&|o| o.weak_tokens_discarded as f64);
        let charged: f64 = (buf.outcomes.iter().zip(&buf.lambdas))
            .map(|(o, &l)| f64::from(l) * o.strong_tokens as f64)
            .sum();
        RolloutScores {
            reward: accuracy - charged / n,
            accuracy,
            strong_tokens: strong / n,
            strong_token_frac: if all > 0.0 { strong / all } else { 0.0 },
            strong_calls: sum(&|o| f64::from(o.strong_calls)) / n,
            episode_len: sum(&|o| f64::from(o.steps)) / n,
        }
    }
}

/// One line of `metrics.csv`: the state after an update.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MetricsRow {
    /// Updates done (1-based index of this update).
    pub update: u64,
    /// Pass over the training problems after the update.
    pub pass: u32,
    pub episodes: u64,
    pub env_steps: u64,
    pub loss: LossStats,
    /// 1 − Var(returns − values) / Var(returns) of the batch (NaN for constant returns).
    pub explained_variance: f64,
    pub lr: f64,
    pub ent_coef: f64,
    pub rollout: RolloutScores,
    /// The greedy validation of this update, if it had one.
    pub val: Option<EvalRecord>,
    pub elapsed_s: f64,
    pub steps_per_s: f64,
}

type Getter = fn(&MetricsRow) -> Option<f64>;

/// The columns, in file order, with their values.
const COLUMNS: &[(&str, Getter)] = &[
    ("update", |r| Some(r.update as f64)),
    ("pass", |r| Some(f64::from(r.pass))),
    ("episodes", |r| Some(r.episodes as f64)),
    ("env_steps", |r| Some(r.env_steps as f64)),
    ("train/policy_loss", |r| Some(r.loss.policy_loss)),
    ("train/value_loss", |r| Some(r.loss.value_loss)),
    ("train/entropy", |r| Some(r.loss.entropy)),
    ("train/approx_kl", |r| Some(r.loss.approx_kl)),
    ("train/clip_fraction", |r| Some(r.loss.clip_fraction)),
    ("train/explained_variance", |r| Some(r.explained_variance)),
    ("train/grad_norm", |r| Some(r.loss.grad_norm)),
    ("train/lr", |r| Some(r.lr)),
    ("train/ent_coef", |r| Some(r.ent_coef)),
    ("rollout/reward", |r| Some(r.rollout.reward)),
    ("rollout/accuracy", |r| Some(r.rollout.accuracy)),
    ("rollout/strong_tokens", |r| Some(r.rollout.strong_tokens)),
    ("rollout/strong_token_frac", |r| {
        Some(r.rollout.strong_token_frac)
    }),
    ("rollout/strong_calls", |r| Some(r.rollout.strong_calls)),
    ("rollout/episode_len", |r| Some(r.rollout.episode_len)),
    ("val/reward", |r| r.val.map(|v| v.reward)),
    ("val/accuracy", |r| r.val.map(|v| v.accuracy)),
    ("val/strong_tokens", |r| r.val.map(|v| v.strong_tokens)),
    ("val/strong_calls", |r| r.val.map(|v| v.strong_calls)),
    ("val/cost_fraction", |r| r.val.map(|v| v.cost_fraction)),
    ("time/elapsed_s", |r| Some(r.elapsed_s)),
    ("time/steps_per_s", |r| Some(r.steps_per_s)),
];

impl MetricsRow {
    /// The column names, in file order.
    pub fn columns() -> impl Iterator<Item = &'static str> {
        COLUMNS.iter().map(|(name, _)| *name)
    }

    /// The CSV header line (no newline).
    pub fn header() -> String {
        Self::columns().collect::<Vec<_>>().join(",")
    }

    /// This row as a CSV line (no newline); absent values are empty cells.
    pub fn to_csv(&self) -> String {
        COLUMNS
            .iter()
            .map(|(_, get)| get(self).map(|x| x.to_string()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The header and the rows of updates `1..=updates` of an existing `metrics.csv` (missing: the
/// header only). Rows after the first one beyond `updates` are dropped: they were written after
/// the checkpoint at `updates` and are redone identically. A row before that which does not
/// parse, or has the wrong number of cells, is an error naming its line.
pub fn rows_up_to(path: &Path, updates: u64) -> Result<String> {
    let header = MetricsRow::header();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(TrainError::io(path, e)),
    };
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h != header => {
            return Err(TrainError::io(
                path,
                "header does not match this version's columns; cannot append",
            ));
        }
        _ => {}
    }
    let n_cols = COLUMNS.len();
    let mut keep = format!("{header}\n");
    for (i, line) in lines.enumerate() {
        let update: Option<u64> = line.split(',').next().and_then(|u| u.parse().ok());
        match update {
            Some(u) if u > updates => break,
            Some(_) if line.split(',').count() == n_cols => {
                keep.push_str(line);
                keep.push('\n');
            }
            _ => {
                return Err(TrainError::io(
                    path,
                    format!(
                        "line {}: not a row of {n_cols} cells starting with the update; the \
                         file is damaged",
                        i + 2
                    ),
                ));
            }
        }
    }
    Ok(keep)
}

/// Appends rows to `metrics.csv`.
pub struct MetricsWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsWriter {
    /// Start `metrics.csv` of `run_dir` with `content` (the header, and for a resumed or forked
    /// run the rows kept from [`rows_up_to`]), written atomically, then open it for appending.
    pub fn start(run_dir: &Path, content: &str) -> Result<Self> {
        let path = run_dir.join("metrics.csv");
        write_file(&path, content.as_bytes())?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        Ok(MetricsWriter { path, file })
    }

    /// Append one row, newline included, in one write: `writeln!` on the unbuffered file made
    /// two system calls per row (half of a default run's 2,266 writes), and a run killed
    /// between them left a row without its newline.
    pub fn row(&mut self, row: &MetricsRow) -> Result<()> {
        let mut line = row.to_csv();
        line.push('\n');
        (self.file.write_all(line.as_bytes())).map_err(|e| TrainError::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_rows_come_from_one_table() {
        let row = MetricsRow {
            update: 3,
            val: None,
            loss: LossStats {
                policy_loss: 0.25,
                ..LossStats::default()
            },
            ..MetricsRow::default()
        };
        let cells: Vec<String> = row.to_csv().split(',').map(String::from).collect();
        let cols: Vec<&str> = MetricsRow::columns().collect();
        assert_eq!(cells.len(), cols.len());
        let at = |c: &str| &cells[cols.iter().position(|x| *x == c).unwrap()];
        assert_eq!(at("update"), "3");
        assert_eq!(at("train/policy_loss"), "0.25");
        assert_eq!(at("val/reward"), "");
        assert_eq!(MetricsRow::header().split(',').count(), cols.len());
    }

    #[test]
    fn rows_after_the_checkpoint_are_dropped_and_damage_is_named() {
        let d = std::env::temp_dir().join(format!("trim-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("metrics.csv");
        let row = |u: u64| {
            MetricsRow {
                update: u,
                ..MetricsRow::default()
            }
            .to_csv()
        };
        let text = format!(
            "{}\n{}\n{}\n{}\n1",
            MetricsRow::header(),
            row(1),
            row(2),
            row(3)
        );
        std::fs::write(&p, &text).unwrap();
        // The partial last line "1" comes after row 3 > 2: dropped with it.
        let kept = rows_up_to(&p, 2).unwrap();
        assert_eq!(
            kept,
            format!("{}\n{}\n{}\n", MetricsRow::header(), row(1), row(2))
        );
        std::fs::write(&p, format!("{}\n{}\n1,2\n", MetricsRow::header(), row(1))).unwrap();
        let e = rows_up_to(&p, 5).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("damaged"), "{e}");
        std::fs::write(&p, "a,b\n").unwrap();
        assert!(
            rows_up_to(&p, 5)
                .unwrap_err()
                .to_string()
                .contains("header")
        );
        assert_eq!(
            rows_up_to(&d.join("none.csv"), 5).unwrap(),
            format!("{}\n", MetricsRow::header())
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
