//! What a run tells its caller while it trains: [`TrainEvent`]s passed to a callback
//! ([`Trainer::run_with`](super::Trainer::run_with)). The library draws nothing; `trim train`
//! turns the events into a progress bar and status lines, a sweep ignores them.

use std::path::PathBuf;

use crate::backend::Backend;
use crate::checkpoint::EvalRecord;
use crate::metrics::RolloutScores;
use crate::run_summary::ThresholdScores;

/// How the run directory was prepared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setup {
    /// A new run directory.
    Fresh,
    /// An existing run directory without a checkpoint, started again in place.
    Restarted,
    /// Continued in place from this checkpoint.
    Resumed { checkpoint: PathBuf },
    /// Copied from this checkpoint (and the run's metrics up to it) into a new run directory.
    Forked { checkpoint: PathBuf },
}

/// The run as it starts this session.
#[derive(Clone, Debug)]
pub struct StartInfo {
    pub setup: Setup,
    pub run_dir: PathBuf,
    pub data: PathBuf,
    pub train_problems: usize,
    pub val_problems: usize,
    pub lambda: f64,
    pub seed: u64,
    pub backend: Backend,
    pub batch_episodes: usize,
    pub total_updates: u64,
    pub updates_done: u64,
    /// Temporary entries of dead processes removed (or put back) in the run directory.
    pub cleaned: Vec<PathBuf>,
}

/// One thing that happened in a run.
#[derive(Clone, Debug)]
pub enum TrainEvent<'a> {
    /// Before the first update of this session.
    Start(&'a StartInfo),
    /// The best TRIM-Thr threshold on the validation problems: the baseline to beat.
    Baseline(&'a ThresholdScores),
    /// After every update.
    Update {
        done: u64,
        total: u64,
        rollout: &'a RolloutScores,
        /// Best validation reward so far.
        best_val: Option<f64>,
    },
    /// After every validation; `best` when it wrote `best/`.
    Validation { record: &'a EvalRecord, best: bool },
}
