//! A training run: setup (or resume), the PPO loop, validation, checkpoints and the summary.
//!
//! The loop, once per update (CleanRL's structure):
//!
//! 1. next `batch_episodes` problems of the current pass (each pass is a fresh shuffle of the
//!    training problems; the last batch of a pass may be smaller);
//! 2. one sample tree per problem, one episode per tree, actions sampled from the current policy
//!    ([`RolloutBuffer::collect`]);
//! 3. GAE and advantage normalisation over the valid steps ([`RolloutBuffer::finish`]);
//! 4. PPO epochs ([`Learner::update`]) at the scheduled learning rate and entropy coefficient;
//! 5. every `val_every` updates: greedy validation on the held-out problems; a new best reward
//!    `accuracy − λ·strong tokens` writes `best/`;
//! 6. every `checkpoint_every` updates: a resumable checkpoint; one `metrics.csv` row always.
//!
//! Everything random comes from one [`Rng`] whose state is checkpointed, plus two fixed streams
//! of the seed (validation hold-out, initial weights), so a resumed run continues exactly.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use trim_env::{EvalOptions, Forest, Policy, RefPolicy, Rng, Summary, VecEnv, evaluate, summarize};

use crate::backend::Backend;
use crate::checkpoint::{self, EvalRecord, TrainState};
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::model::{ActorCritic, Greedy, PolicyWeights};
use crate::ppo::schedule::{entropy_coef, learning_rate};
use crate::ppo::{Learner, RolloutBuffer, UpdateStats};
use crate::run_dir::{self, METRIC_COLUMNS, MetricsWriter, Provenance};

/// RNG stream of the validation hold-out.
const STREAM_VAL: u64 = 1;
/// RNG stream of the initial weights.
const STREAM_INIT: u64 = 2;
/// RNG stream of the run (problem order, trees, actions, minibatches, dropout).
const STREAM_RUN: u64 = 3;
/// TRIM-Thr thresholds compared against: 0, 0.01, …, 1.
const THRESHOLD_STEPS: u32 = 100;

/// How to run (not part of the training configuration).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Directory holding run directories.
    pub out_root: PathBuf,
    /// Run name; default from dataset, λ, seed and time.
    pub name: Option<String>,
    /// Continue from a run directory (its latest checkpoint) or a checkpoint directory.
    pub resume: Option<PathBuf>,
    /// Stop (with a checkpoint) once this many updates are done in total.
    pub stop_after_updates: Option<u64>,
    /// No progress bar or messages.
    pub quiet: bool,
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
            quiet: true,
            backend: Backend::Flex,
            command_line: String::new(),
        }
    }
}

/// Policy scores on one split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
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

/// A TRIM-Thr policy and its scores.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ThresholdScores {
    pub threshold: f32,
    #[serde(flatten)]
    pub scores: Scores,
}

/// Baselines and trained policies on one split, at the run's λ.
#[derive(Clone, Debug, Serialize)]
pub struct SplitReport {
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
}

/// Wall-clock accounting of this process (a resumed run counts only its own part).
#[derive(Clone, Debug, Default, Serialize)]
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

/// `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub run_name: String,
    pub run_dir: PathBuf,
    /// `finished` or `stopped` (by `--stop-after-updates`; resume with `--resume`).
    pub status: String,
    pub dataset: PathBuf,
    pub lambda: f64,
    pub seed: u64,
    pub backend: String,
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

/// Problems of one evaluation split with always-strong's token count (the cost-fraction unit).
struct EvalSet {
    name: String,
    problems: Vec<u32>,
    strong_ref: f64,
}

impl EvalSet {
    fn new(forest: &Forest, name: &str, problems: Vec<u32>) -> Result<Self> {
        let s = evaluate(
            forest,
            &problems,
            &RefPolicy::Strong,
            EvalOptions::default(),
        )?;
        Ok(EvalSet {
            name: name.into(),
            strong_ref: summarize(&s, 0.0, 0.0).strong_tokens,
            problems,
        })
    }

    fn score<P: Policy + ?Sized>(&self, forest: &Forest, p: &P, lambda: f64) -> Result<Scores> {
        let o = evaluate(forest, &self.problems, p, EvalOptions::default())?;
        Ok(summarize(&o, self.strong_ref, lambda).into())
    }

    /// All thresholds 0, 0.01, …, 1 on this set.
    fn thresholds(&self, forest: &Forest, lambda: f64) -> Result<Vec<ThresholdScores>> {
        (0..=THRESHOLD_STEPS)
            .map(|i| {
                let k = i as f32 / THRESHOLD_STEPS as f32;
                Ok(ThresholdScores {
                    threshold: k,
                    scores: self.score(forest, &RefPolicy::Threshold(k), lambda)?,
                })
            })
            .collect()
    }
}

fn best_of(ts: &[ThresholdScores]) -> ThresholdScores {
    // First maximum: ties go to the lower (cheaper) threshold.
    ts.iter()
        .copied()
        .fold(None, |b: Option<ThresholdScores>, t| match b {
            Some(b) if b.scores.reward >= t.scores.reward => Some(b),
            _ => Some(t),
        })
        .expect("at least one threshold")
}

/// A prepared run, fresh or resumed.
pub struct Trainer {
    cfg: TrainConfig,
    opts: RunOptions,
    data: trim_data::Loaded,
    train: Vec<u32>,
    val: Option<EvalSet>,
    test: Option<EvalSet>,
    learner: Learner,
    state: TrainState,
    weights: PolicyWeights,
    best_weights: Option<PolicyWeights>,
    run_dir: PathBuf,
    metrics: MetricsWriter,
    rng: Rng,
    pb: ProgressBar,
}

/// Load the dataset and split it into training and validation problems.
fn prepare_data(cfg: &TrainConfig) -> Result<(trim_data::Loaded, Vec<u32>, Vec<u32>)> {
    let data = trim_data::load(&cfg.data)?;
    let mut all = data.problems_in_split(&cfg.train_split);
    let mut rng = Rng::stream(cfg.seed, STREAM_VAL);
    rng.shuffle(&mut all);
    let n_val = cfg.n_val(all.len());
    let mut val = all[..n_val].to_vec();
    let mut train = all[n_val..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    let splits = data
        .splits()
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    cfg.validate_for_dataset(train.len(), val.len(), &splits)?;
    Ok((data, train, val))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn progress_bar(quiet: bool, total: u64, done: u64) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:28.cyan/blue} {pos:>5}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_position(done);
    pb
}

impl Trainer {
    /// Prepare a fresh run: validate against the data, create the run directory, write
    /// `config.toml` and the `metrics.csv` header.
    pub fn new(cfg: TrainConfig, opts: RunOptions) -> Result<Trainer> {
        cfg.validate()?;
        let (data, train, val) = prepare_data(&cfg)?;
        let dataset_sha256 = trim_data::io::sha256_file(&cfg.data)?;
        let started = unix_now();
        let run_name = opts
            .name
            .clone()
            .unwrap_or_else(|| run_dir::default_run_name(&cfg, started));
        if run_name.is_empty() || run_name.contains(['/', '\\']) || run_name.starts_with('.') {
            return Err(TrainError::Config(format!(
                "run name `{run_name}` must be a plain directory name"
            )));
        }
        let run_dir = opts.out_root.join(&run_name);
        if run_dir.exists() {
            return Err(TrainError::Config(format!(
                "run directory {} already exists: continue it with --resume {0}, or pick \
                 another --name",
                run_dir.display()
            )));
        }
        let device = opts.backend.train_device()?;
        std::fs::create_dir_all(&run_dir).map_err(|e| TrainError::io(&run_dir, e))?;
        let prov = Provenance {
            command_line: opts.command_line.clone(),
            crate_version: env!("CARGO_PKG_VERSION").into(),
            git_revision: run_dir::git_revision(),
            backend: opts.backend.to_string(),
            run_name: run_name.clone(),
            started_unix: started,
            dataset_sha256: dataset_sha256.clone(),
        };
        run_dir::write_config(&run_dir, &cfg, &prov)?;
        let metrics = MetricsWriter::create(&run_dir)?;
        let model = ActorCritic::new(cfg.hidden, &mut Rng::stream(cfg.seed, STREAM_INIT), &device);
        let weights = model.weights();
        let learner = Learner::new(model, &cfg, device);
        let rng = Rng::stream(cfg.seed, STREAM_RUN);
        let state = TrainState {
            format: checkpoint::FORMAT.into(),
            format_version: checkpoint::FORMAT_VERSION,
            crate_version: env!("CARGO_PKG_VERSION").into(),
            backend: opts.backend.to_string(),
            run_name,
            total_updates: cfg.total_updates(train.len()),
            config: cfg.clone(),
            dataset_sha256,
            val_problems: val.clone(),
            updates_done: 0,
            pass: 0,
            pass_pos: 0,
            pass_order: vec![],
            rng: rng.state(),
            env_steps: 0,
            episodes: 0,
            best: None,
            last_val: None,
        };
        Self::assemble(
            cfg, opts, data, train, val, learner, state, weights, None, run_dir, metrics,
        )
    }

    /// Resume from `opts.resume`: a run directory (its latest periodic checkpoint) or a
    /// checkpoint directory. The configuration comes from the checkpoint.
    pub fn resume(opts: RunOptions) -> Result<Trainer> {
        let path = opts
            .resume
            .clone()
            .ok_or_else(|| TrainError::Config("nothing to resume".into()))?;
        let (ckpt, run_dir) = if path.join(checkpoint::SUMS).exists() {
            let run_dir = run_dir::run_dir_of_checkpoint(&path).ok_or_else(|| {
                TrainError::checkpoint(&path, "no run directory (config.toml) above it")
            })?;
            (path.clone(), run_dir)
        } else if path.join("config.toml").is_file() {
            let last = checkpoint::periodic(&path).pop().ok_or_else(|| {
                TrainError::checkpoint(
                    &path,
                    "the run has no checkpoint yet (checkpoints/update_*); start it again",
                )
            })?;
            (last.1, path.clone())
        } else {
            return Err(TrainError::checkpoint(
                &path,
                "neither a run directory (config.toml) nor a checkpoint (SHA256SUMS)",
            ));
        };
        let device = opts.backend.train_device()?;
        let loaded = checkpoint::load(&ckpt, &device)?;
        let state = loaded.state;
        let cfg = state.config.clone();
        cfg.validate()?;
        let (data, train, val) = prepare_data(&cfg)?;
        let sha = trim_data::io::sha256_file(&cfg.data)?;
        if sha != state.dataset_sha256 {
            return Err(TrainError::checkpoint(
                &ckpt,
                format!(
                    "dataset {} changed since this checkpoint (sha256 {sha}, checkpoint has {})",
                    cfg.data.display(),
                    state.dataset_sha256
                ),
            ));
        }
        if val != state.val_problems || state.total_updates != cfg.total_updates(train.len()) {
            return Err(TrainError::checkpoint(
                &ckpt,
                "validation hold-out or schedule differs from the checkpoint's",
            ));
        }
        let best_dir = run_dir.join("best");
        // `best/` may be ahead of the checkpoint (written by updates being redone); its weights
        // are the checkpoint's best only if its record is the checkpoint's best record.
        let best_weights = match state.best {
            Some(b) if best_dir.exists() => {
                let (m, s) = checkpoint::load_model(&best_dir, &opts.backend.device()?)?;
                (s.best == Some(b)).then(|| m.weights())
            }
            _ => None,
        };
        let metrics = MetricsWriter::resume(&run_dir, state.updates_done)?;
        let weights = loaded.model.weights();
        let learner = Learner {
            model: loaded.model,
            optim: loaded.optim,
            device,
        };
        Self::assemble(
            cfg,
            opts,
            data,
            train,
            val,
            learner,
            state,
            weights,
            best_weights,
            run_dir,
            metrics,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        cfg: TrainConfig,
        opts: RunOptions,
        data: trim_data::Loaded,
        train: Vec<u32>,
        val: Vec<u32>,
        learner: Learner,
        state: TrainState,
        weights: PolicyWeights,
        best_weights: Option<PolicyWeights>,
        run_dir: PathBuf,
        metrics: MetricsWriter,
    ) -> Result<Trainer> {
        let f = &data.forest;
        let val = if val.is_empty() {
            None
        } else {
            Some(EvalSet::new(f, "validation", val)?)
        };
        let test_problems = if cfg.test_split.is_empty() || cfg.test_split == "none" {
            vec![]
        } else {
            data.problems_in_split(&cfg.test_split)
        };
        let test = if test_problems.is_empty() {
            None
        } else {
            Some(EvalSet::new(f, &cfg.test_split, test_problems)?)
        };
        let pb = progress_bar(opts.quiet, state.total_updates, state.updates_done);
        Ok(Trainer {
            rng: state.rng(),
            cfg,
            opts,
            data,
            train,
            val,
            test,
            learner,
            state,
            weights,
            best_weights,
            run_dir,
            metrics,
            pb,
        })
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The resolved configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// A progress message on stderr, above the bar when there is one (indicatif drops
    /// `println` on a hidden bar, e.g. when stderr is not a terminal).
    fn say(&self, msg: impl AsRef<str>) {
        if self.opts.quiet {
            return;
        }
        if self.pb.is_hidden() {
            eprintln!("{}", msg.as_ref());
        } else {
            self.pb.println(msg.as_ref());
        }
    }

    fn snapshot_state(&mut self) {
        self.state.rng = self.rng.state();
    }

    fn save_checkpoint(&mut self, dir: &Path) -> Result<()> {
        self.snapshot_state();
        checkpoint::save(dir, &self.learner.model, &self.learner.optim, &self.state)
    }

    fn validate(&self) -> Result<Option<EvalRecord>> {
        let Some(val) = &self.val else {
            return Ok(None);
        };
        let s = val.score(&self.data.forest, &Greedy(&self.weights), self.cfg.lambda)?;
        Ok(Some(EvalRecord {
            update: self.state.updates_done,
            reward: s.reward,
            accuracy: s.accuracy,
            strong_tokens: s.strong_tokens,
            strong_calls: s.strong_calls,
            cost_fraction: s.cost_fraction,
        }))
    }

    /// Run until the schedule ends (or `stop_after_updates`), then write `final/` (if
    /// finished) and `summary.json`.
    pub fn run(mut self) -> Result<RunSummary> {
        let cfg = self.cfg.clone();
        let total = self.state.total_updates;
        let stop = self.opts.stop_after_updates.unwrap_or(total).min(total);
        let mut timing = Timing::default();
        let start = Instant::now();
        let lambda = cfg.lambda;
        self.say(format!(
            "training on {} ({} train / {} validation problems), λ = {lambda}, seed {}, \
             backend {}: {total} updates of {} episodes → {}",
            cfg.data.display(),
            self.train.len(),
            self.val.as_ref().map_or(0, |v| v.problems.len()),
            cfg.seed,
            self.opts.backend,
            cfg.batch_episodes,
            self.run_dir.display()
        ));
        let val_thresholds = match &self.val {
            Some(v) => Some(v.thresholds(&self.data.forest, lambda)?),
            None => None,
        };
        if let Some(ts) = &val_thresholds {
            let b = best_of(ts);
            self.say(format!(
                "best TRIM-Thr on validation: threshold {:.2} → reward {:.4} (accuracy {:.1}%, \
                 {:.1} strong tokens)",
                b.threshold,
                b.scores.reward,
                100.0 * b.scores.accuracy,
                b.scores.strong_tokens
            ));
        }
        let mut buf = RolloutBuffer::default();
        let mut trees: Vec<u32> = Vec::with_capacity(cfg.batch_episodes);
        while self.state.updates_done < stop {
            // 1. The batch of problems.
            let t0 = Instant::now();
            if self.state.pass_pos == 0 {
                let mut order = self.train.clone();
                self.rng.shuffle(&mut order);
                self.state.pass_order = order;
            }
            let lo = self.state.pass_pos;
            let hi = (lo + cfg.batch_episodes).min(self.state.pass_order.len());
            let batch = &self.state.pass_order[lo..hi];
            // 2. Rollouts.
            trees.resize(batch.len(), 0);
            let forest = &self.data.forest;
            VecEnv::sample_trees(forest, batch, &mut self.rng, &mut trees);
            let mut env = VecEnv::new(forest, batch.len(), lambda as f32);
            buf.collect(&mut env, &trees, &self.weights, &mut self.rng)?;
            // 3. Advantages.
            buf.finish(cfg.gamma as f32, cfg.gae_lambda as f32, cfg.norm_adv);
            let t1 = Instant::now();
            // 4. PPO epochs.
            let u = self.state.updates_done;
            let lr = learning_rate(cfg.lr, cfg.anneal_lr, u, total);
            let ent = entropy_coef(cfg.ent_coef_start, cfg.ent_coef_end, u, total);
            let stats = self.learner.update(&buf, &cfg, lr, ent, &mut self.rng);
            self.weights = self.learner.model.weights();
            let t2 = Instant::now();
            // Counters.
            let steps = buf.steps() as u64;
            self.state.updates_done += 1;
            self.state.env_steps += steps;
            self.state.episodes += buf.n as u64;
            self.state.pass_pos = hi;
            if hi == self.state.pass_order.len() {
                self.state.pass += 1;
                self.state.pass_pos = 0;
            }
            let done = self.state.updates_done;
            timing.updates += 1;
            timing.env_steps += steps;
            // 5. Validation and best/.
            let mut val_rec = None;
            if done.is_multiple_of(cfg.val_every) || done == total {
                val_rec = self.validate()?;
                if let Some(r) = val_rec {
                    self.state.last_val = Some(r);
                    if self.state.best.is_none_or(|b| r.reward > b.reward) {
                        self.state.best = Some(r);
                        self.best_weights = Some(self.weights.clone());
                        let dir = self.run_dir.join("best");
                        self.save_checkpoint(&dir)?;
                    }
                    self.say(format!(
                        "update {done:>5}: validation reward {:.4} (accuracy {:.1}%, {:.1} strong \
                         tokens){}",
                        r.reward,
                        100.0 * r.accuracy,
                        r.strong_tokens,
                        if self.state.best == Some(r) {
                            "  ← best"
                        } else {
                            ""
                        }
                    ));
                }
            }
            let t3 = Instant::now();
            // 6. Metrics and checkpoints.
            let elapsed = start.elapsed().as_secs_f64();
            let row = self.metrics_row(&buf, &stats, lr, ent, val_rec, elapsed, &timing);
            self.metrics.row(&row)?;
            if done.is_multiple_of(cfg.checkpoint_every) || done == total || done == stop {
                let dir = self
                    .run_dir
                    .join("checkpoints")
                    .join(checkpoint::periodic_name(done));
                self.save_checkpoint(&dir)?;
            }
            let t4 = Instant::now();
            timing.rollout_s += (t1 - t0).as_secs_f64();
            timing.update_s += (t2 - t1).as_secs_f64();
            timing.validation_s += (t3 - t2).as_secs_f64();
            timing.io_s += (t4 - t3).as_secs_f64();
            self.pb.set_position(done);
            self.pb.set_message(self.progress_message(&buf));
        }
        let finished = self.state.updates_done >= total;
        if finished {
            let t = Instant::now();
            let dir = self.run_dir.join("final");
            self.save_checkpoint(&dir)?;
            timing.io_s += t.elapsed().as_secs_f64();
        }
        self.pb.finish_and_clear();
        timing.wall_s = start.elapsed().as_secs_f64();
        if timing.wall_s > 0.0 {
            timing.updates_per_s = timing.updates as f64 / timing.wall_s;
            timing.env_steps_per_s = timing.env_steps as f64 / timing.wall_s;
        }
        let summary = self.summary(finished, val_thresholds, timing)?;
        let text = serde_json::to_string_pretty(&summary)
            .map_err(|e| TrainError::io(self.run_dir.join("summary.json"), e))?;
        run_dir::write_file(&self.run_dir.join("summary.json"), text.as_bytes())?;
        Ok(summary)
    }

    fn progress_message(&self, buf: &RolloutBuffer) -> String {
        let r = RolloutScores::of(buf, self.cfg.lambda);
        let best = self
            .state
            .best
            .map(|b| format!(" | val best {:.4}", b.reward))
            .unwrap_or_default();
        format!(
            "reward {:.3} acc {:.1}% cost {:.0} tok{best}",
            r.reward,
            100.0 * r.accuracy,
            r.strong_tokens
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn metrics_row(
        &self,
        buf: &RolloutBuffer,
        s: &UpdateStats,
        lr: f64,
        ent: f64,
        val: Option<EvalRecord>,
        elapsed: f64,
        timing: &Timing,
    ) -> Vec<Option<f64>> {
        let r = RolloutScores::of(buf, self.cfg.lambda);
        let st = &self.state;
        let row = vec![
            Some(st.updates_done as f64),
            Some(f64::from(st.pass)),
            Some(st.episodes as f64),
            Some(st.env_steps as f64),
            Some(s.policy_loss),
            Some(s.value_loss),
            Some(s.entropy),
            Some(s.approx_kl),
            Some(s.clip_fraction),
            Some(buf.explained_variance()),
            Some(s.grad_norm),
            Some(lr),
            Some(ent),
            Some(r.reward),
            Some(r.accuracy),
            Some(r.strong_tokens),
            Some(r.strong_token_frac),
            Some(r.strong_calls),
            Some(r.episode_len),
            val.map(|v| v.reward),
            val.map(|v| v.accuracy),
            val.map(|v| v.strong_tokens),
            val.map(|v| v.strong_calls),
            val.map(|v| v.cost_fraction),
            Some(elapsed),
            Some(if elapsed > 0.0 {
                timing.env_steps as f64 / elapsed
            } else {
                0.0
            }),
        ];
        debug_assert_eq!(row.len(), METRIC_COLUMNS.len());
        row
    }

    fn report(
        &self,
        set: &EvalSet,
        chosen: ThresholdScores,
        all: &[ThresholdScores],
    ) -> Result<SplitReport> {
        let f = &self.data.forest;
        let lambda = self.cfg.lambda;
        let best_policy = match &self.best_weights {
            Some(w) => Some(set.score(f, &Greedy(w), lambda)?),
            None => None,
        };
        Ok(SplitReport {
            split: set.name.clone(),
            problems: set.problems.len(),
            always_weak: set.score(f, &RefPolicy::Weak, lambda)?,
            always_strong: set.score(f, &RefPolicy::Strong, lambda)?,
            best_threshold: chosen,
            oracle_threshold: best_of(all),
            best_policy,
            final_policy: Some(set.score(f, &Greedy(&self.weights), lambda)?),
        })
    }

    fn summary(
        &self,
        finished: bool,
        val_thresholds: Option<Vec<ThresholdScores>>,
        timing: Timing,
    ) -> Result<RunSummary> {
        let f = &self.data.forest;
        let lambda = self.cfg.lambda;
        let chosen_k = val_thresholds.as_deref().map(best_of);
        let val = match (&self.val, &val_thresholds, chosen_k) {
            (Some(v), Some(ts), Some(k)) => Some(self.report(v, k, ts)?),
            _ => None,
        };
        let test = match &self.test {
            Some(t) => {
                let all = t.thresholds(f, lambda)?;
                // Without validation problems the test oracle is all there is.
                let k = chosen_k.unwrap_or_else(|| best_of(&all)).threshold;
                let chosen = ThresholdScores {
                    threshold: k,
                    scores: t.score(f, &RefPolicy::Threshold(k), lambda)?,
                };
                Some(self.report(t, chosen, &all)?)
            }
            None => None,
        };
        Ok(RunSummary {
            run_name: self.state.run_name.clone(),
            run_dir: self.run_dir.clone(),
            status: if finished { "finished" } else { "stopped" }.into(),
            dataset: self.cfg.data.clone(),
            lambda,
            seed: self.cfg.seed,
            backend: self.opts.backend.to_string(),
            updates_done: self.state.updates_done,
            total_updates: self.state.total_updates,
            env_steps: self.state.env_steps,
            episodes: self.state.episodes,
            train_problems: self.train.len(),
            best: self.state.best,
            last_val: self.state.last_val,
            val,
            test,
            timing,
        })
    }
}

/// Episode-level statistics of one batch.
struct RolloutScores {
    reward: f64,
    accuracy: f64,
    strong_tokens: f64,
    strong_token_frac: f64,
    strong_calls: f64,
    episode_len: f64,
}

impl RolloutScores {
    fn of(buf: &RolloutBuffer, lambda: f64) -> Self {
        let n = buf.outcomes.len().max(1) as f64;
        let sum = |f: &dyn Fn(&trim_env::EpisodeOutcome) -> f64| -> f64 {
            buf.outcomes.iter().map(f).sum()
        };
        let accuracy = sum(&|o| f64::from(u8::from(o.correct))) / n;
        let strong = sum(&|o| o.strong_tokens as f64);
        let all =
            strong + sum(&|o| o.weak_tokens_kept as f64) + sum(&|o| o.weak_tokens_discarded as f64);
        RolloutScores {
            reward: accuracy - lambda * strong / n,
            accuracy,
            strong_tokens: strong / n,
            strong_token_frac: if all > 0.0 { strong / all } else { 0.0 },
            strong_calls: sum(&|o| f64::from(o.strong_calls)) / n,
            episode_len: sum(&|o| f64::from(o.steps)) / n,
        }
    }
}
