//! The run directory `checkpoints/<run-name>/` and the files in it that are not checkpoints:
//!
//! ```text
//! config.toml        resolved config + [provenance] (command line, version, git revision, …);
//!                    feed it back with `trim train --config` to repeat the run
//! metrics.csv        one row per update (columns: METRIC_COLUMNS)
//! checkpoints/update_NNNNNN/   periodic resumable checkpoints
//! best/              checkpoint of the best greedy validation reward
//! final/             checkpoint after the last update
//! summary.json       what tools read: status, throughput, best/final, baselines, test
//! ```

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{PROVENANCE_TABLE, TrainConfig};
use crate::error::{Result, TrainError};

/// Columns of `metrics.csv`, in order. `train/*` are means over the update's epochs and
/// minibatches; `rollout/*` are over the batch's episodes (`strong_token_frac` = strong ÷
/// (kept weak + discarded weak + strong) tokens, as the release logs it); `val/*` are filled on
/// validation updates and empty otherwise; `time/*` are wall-clock of the current process
/// (they restart on `--resume`) and the only columns that differ between two runs with the
/// same seed.
pub const METRIC_COLUMNS: &[&str] = &[
    "update",
    "pass",
    "episodes",
    "env_steps",
    "train/policy_loss",
    "train/value_loss",
    "train/entropy",
    "train/approx_kl",
    "train/clip_fraction",
    "train/explained_variance",
    "train/grad_norm",
    "train/lr",
    "train/ent_coef",
    "rollout/reward",
    "rollout/accuracy",
    "rollout/strong_tokens",
    "rollout/strong_token_frac",
    "rollout/strong_calls",
    "rollout/episode_len",
    "val/reward",
    "val/accuracy",
    "val/strong_tokens",
    "val/strong_calls",
    "val/cost_fraction",
    "time/elapsed_s",
    "time/steps_per_s",
];

/// `<dataset stem>__lam<λ>__s<seed>__<unix time>`, CleanRL's naming with the routing knobs.
pub fn default_run_name(cfg: &TrainConfig, unix_time: u64) -> String {
    let stem = cfg
        .data
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("data");
    format!("{stem}__lam{:e}__s{}__{unix_time}", cfg.lambda, cfg.seed)
}

/// `git rev-parse HEAD` of the working directory, or "unknown".
pub fn git_revision() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Where and how the run was started, written under `[provenance]` in `config.toml`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Provenance {
    pub command_line: String,
    pub crate_version: String,
    pub git_revision: String,
    pub backend: String,
    pub run_name: String,
    pub started_unix: u64,
    pub dataset_sha256: String,
}

/// Write `config.toml`: the resolved config, then the provenance table.
pub fn write_config(run_dir: &Path, cfg: &TrainConfig, prov: &Provenance) -> Result<()> {
    let path = run_dir.join("config.toml");
    let prov = toml::to_string(prov).map_err(|e| TrainError::io(&path, e))?;
    let text = format!(
        "# Resolved configuration of this run; `trim train --config {}` repeats it.\n{}\n[{PROVENANCE_TABLE}]\n{prov}",
        path.display(),
        cfg.to_toml()
    );
    write_file(&path, text.as_bytes())
}

/// Write a small file atomically (temp file + rename).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    trim_data::io::write_atomic(path, |w| {
        w.write_all(bytes)
            .map_err(|e| trim_data::DataError::file(path, e.to_string()))
    })
    .map_err(|e| TrainError::io(path, e))
}

/// Appends rows to `metrics.csv`.
pub struct MetricsWriter {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsWriter {
    /// Start a new `metrics.csv` with its header.
    pub fn create(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join("metrics.csv");
        let mut file = std::fs::File::create(&path).map_err(|e| TrainError::io(&path, e))?;
        writeln!(file, "{}", METRIC_COLUMNS.join(",")).map_err(|e| TrainError::io(&path, e))?;
        Ok(MetricsWriter { path, file })
    }

    /// Reopen an existing `metrics.csv` for a resumed run, dropping the rows of updates after
    /// `updates_done` (written after the checkpoint being resumed; they will be redone).
    pub fn resume(run_dir: &Path, updates_done: u64) -> Result<Self> {
        let path = run_dir.join("metrics.csv");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut keep = String::new();
        let mut lines = text.lines();
        match lines.next() {
            Some(h) if h == METRIC_COLUMNS.join(",") => {
                keep.push_str(h);
                keep.push('\n');
            }
            Some(_) => {
                return Err(TrainError::io(
                    &path,
                    "header does not match this version's columns; cannot append",
                ));
            }
            None => {
                keep.push_str(&METRIC_COLUMNS.join(","));
                keep.push('\n');
            }
        }
        for line in lines {
            let update: Option<u64> = line.split(',').next().and_then(|u| u.parse().ok());
            if update.is_some_and(|u| u <= updates_done) {
                keep.push_str(line);
                keep.push('\n');
            }
        }
        write_file(&path, keep.as_bytes())?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        Ok(MetricsWriter { path, file })
    }

    /// Append one row; `values` must follow [`METRIC_COLUMNS`] (None = empty cell).
    pub fn row(&mut self, values: &[Option<f64>]) -> Result<()> {
        debug_assert_eq!(values.len(), METRIC_COLUMNS.len());
        let line = values
            .iter()
            .map(|v| v.map(|x| x.to_string()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(",");
        writeln!(self.file, "{line}").map_err(|e| TrainError::io(&self.path, e))?;
        self.file.flush().map_err(|e| TrainError::io(&self.path, e))
    }
}

/// Find the run directory of a checkpoint directory (the nearest ancestor with `config.toml`).
pub fn run_dir_of_checkpoint(ckpt: &Path) -> Option<PathBuf> {
    ckpt.ancestors()
        .skip(1)
        .take(2)
        .find(|d| d.join("config.toml").is_file())
        .map(Path::to_path_buf)
}
