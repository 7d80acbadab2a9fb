//! A training run: the run directory (fresh, restarted, resumed or forked), the PPO loop,
//! validation, checkpoints and `summary.json`.
//!
//! # The loop, as a contract
//!
//! Every update does, in this order (`step.rs`):
//!
//! 1. **collect** — the next `batch_episodes` problems of the current pass (each pass is a
//!    fresh shuffle of the training problems; the last batch of a pass may be smaller), one
//!    sampled tree per problem, one episode per tree with actions sampled from the current
//!    policy ([`RolloutBuffer::collect`]);
//! 2. **advantage** — GAE and advantage normalisation over the valid steps
//!    ([`RolloutBuffer::finish`]);
//! 3. **update** — PPO epochs ([`Learner::update`]) at the scheduled learning rate and entropy
//!    coefficient, then the divergence guard ([`guard`]): a non-finite loss statistic or
//!    gradient norm, a non-finite weight, or new logits that overpower the action mask stop the
//!    run with [`TrainError::Diverged`] before anything is written from them (steps 1 and 3
//!    check every policy output they use the same way);
//! 4. **validate** — every `val_every` updates and after the last: greedy validation on the
//!    held-out problems; a new best reward `accuracy − λ·strong tokens` writes `best/`;
//! 5. **log** — the counters advance, one `metrics.csv` row ([`MetricsRow`], with step 4's
//!    validation when there was one) and a [`TrainEvent::Update`] for the caller;
//! 6. **checkpoint** — every `checkpoint_every` updates, after the last update and at
//!    `stop_after_updates`: a resumable checkpoint.
//!
//! After the loop: `final/` once the schedule is done, then `summary.json` with the status
//! ([`RunStatus`]): `finished`, `stopped`, or `failed` with the error when a step failed (the
//! error is returned too, and the checkpoints before it are untouched).
//!
//! Everything random comes from one [`trim_env::Rng`] whose state is checkpointed, plus
//! two fixed streams of the seed (validation hold-out, initial weights), so a resumed run
//! continues exactly.
//!
//! # Run directories
//!
//! A process holds the directory's [`RunLock`] for the whole run, so a second `trim train` or
//! `--resume` of the same run fails at once. On start or resume, temporary entries of dead
//! processes are removed ([`run_dir::clean_stale_temps`]). A directory without a checkpoint
//! (killed before its first one) is started again in place. Resuming in place continues from a
//! run's newest state only; an older checkpoint is forked into a new run directory
//! ([`RunOptions::name`]) so no recorded update is ever discarded ([`Trainer::resume`]).
//!
//! [`RolloutBuffer::collect`]: crate::ppo::RolloutBuffer::collect
//! [`RolloutBuffer::finish`]: crate::ppo::RolloutBuffer::finish
//! [`Learner::update`]: crate::ppo::Learner::update
//! [`guard`]: crate::ppo::guard
//! [`TrainError::Diverged`]: crate::TrainError::Diverged
//! [`MetricsRow`]: crate::metrics::MetricsRow
//! [`RunLock`]: crate::run_dir::RunLock
//! [`run_dir::clean_stale_temps`]: crate::run_dir::clean_stale_temps

mod any;
mod finish;
pub mod progress;
mod resume;
mod setup;
mod step;
mod threshold_cache;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Instant;

use trim_env::Rng;

pub use crate::run_summary::{RunStatus, RunSummary, Scores, SplitReport, ThresholdScores, Timing};
pub use any::{AnyTrainer, recorded_policy};
pub use progress::{Setup, StartInfo, TrainEvent};

use crate::backend::Backend;
use crate::checkpoint::TrainState;
use crate::config::TrainConfig;
use crate::error::Result;
use crate::family::{Family, agg::Agg};
use crate::metrics::MetricsWriter;
use crate::ppo::Learner;
use crate::run_dir::RunLock;
use validate::EvalSet;

/// RNG stream of the validation hold-out.
const STREAM_VAL: u64 = 1;
/// RNG stream of the initial weights.
const STREAM_INIT: u64 = 2;
/// RNG stream of the run (problem order, trees, actions, minibatches, dropout).
const STREAM_RUN: u64 = 3;

/// How to run (not part of the training configuration).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Directory holding run directories.
    pub out_root: PathBuf,
    /// Run name; default from dataset, λ, seed and time. With `resume`, a name other than the
    /// resumed run's forks the checkpoint into `out_root/name`.
    pub name: Option<String>,
    /// Continue from a run directory (its latest checkpoint) or a checkpoint directory.
    pub resume: Option<PathBuf>,
    /// Stop (with a checkpoint) once this many updates are done in total.
    pub stop_after_updates: Option<u64>,
    pub backend: Backend,
    /// The command line, recorded in `config.toml`.
    pub command_line: String,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            out_root: PathBuf::from("checkpoints"),
            name: None,
            resume: None,
            stop_after_updates: None,
            backend: Backend::Flex,
            command_line: String::new(),
        }
    }
}

/// A prepared run, fresh or resumed, holding its run directory's lock. Generic over the policy
/// family ([`Family`]); TRIM-Agg ([`Agg`]) is the default.
pub struct Trainer<F: Family = Agg> {
    cfg: TrainConfig,
    opts: RunOptions,
    data: trim_data::DataSource,
    /// The test split's data when it is not the training data.
    test_data: Option<trim_data::DataSource>,
    train: Vec<u32>,
    val: Option<EvalSet>,
    test: Option<EvalSet>,
    learner: Learner<F::Net>,
    state: TrainState,
    weights: F::Acting,
    best_weights: Option<F::Acting>,
    run_dir: PathBuf,
    metrics: MetricsWriter,
    rng: Rng,
    start: StartInfo,
    /// The newest checkpoint written or resumed from (the last good one).
    last_checkpoint: Option<PathBuf>,
    _lock: RunLock,
}

impl<F: Family> Trainer<F> {
    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The resolved configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Run until the schedule ends (or `stop_after_updates`), then write `final/` (if
    /// finished) and `summary.json`. Silent; see [`Trainer::run_with`] for progress.
    pub fn run(self) -> Result<RunSummary> {
        self.run_with(&mut |_| {})
    }

    /// [`Trainer::run`], telling `on_event` what happens. On an error `summary.json` records
    /// the run as failed (best effort) and the error is returned.
    ///
    /// The run executes on a rayon worker thread: the caller's when it is one (a sweep
    /// worker's pool), else one of a pool of its own with as many threads as the global pool,
    /// the caller waiting. From a thread outside the pool, every parallel call would be handed
    /// to the pool with the caller sleeping until a worker finished it, a cross-thread wake-up
    /// each (0.065 ms of a 0.365 ms two-part gradient step, measured on the paper schedule).
    /// On a pool with a second thread, each update's rollout and PPO epochs share their work
    /// with a helper spinning on it ([`crate::spin_pair`]). A pool of its own, not the global
    /// one, so runs started from several threads at once never steal each other's work (a
    /// worker waiting for a part would start another whole run). Same results either way.
    pub fn run_with(self, on_event: &mut (dyn FnMut(TrainEvent<'_>) + Send)) -> Result<RunSummary> {
        if rayon::current_thread_index().is_some() {
            return self.run_here(on_event);
        }
        let threads = rayon::current_num_threads();
        match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
            Ok(pool) => pool.install(|| self.run_here(on_event)),
            // No threads to be had: the run on this thread is slower, not different.
            Err(_) => self.run_here(on_event),
        }
    }

    /// [`Trainer::run_with`] on the calling thread.
    fn run_here(mut self, on_event: &mut dyn FnMut(TrainEvent<'_>)) -> Result<RunSummary> {
        let start = Instant::now();
        let mut timing = Timing::default();
        on_event(TrainEvent::Start(&self.start));
        let result = self
            .val_thresholds()
            .and_then(|ts| {
                if let Some(b) = ts.as_deref().and_then(validate::best_of) {
                    on_event(TrainEvent::Baseline(&b));
                }
                self.train_loop(start, &mut timing, on_event)?;
                Ok(ts)
            })
            .and_then(|ts| self.finish(ts, start, &mut timing));
        match result {
            Ok(summary) => Ok(summary),
            Err(e) => {
                timing.finish(start.elapsed().as_secs_f64());
                // The error is what the caller must see; a summary that cannot be written on
                // top of it does not replace it.
                let _ = self.failed_summary(&e, timing).write();
                Err(e)
            }
        }
    }
}
