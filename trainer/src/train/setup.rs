//! Preparing a run: the data and its validation hold-out, a fresh (or restarted) run
//! directory, and assembling a [`Trainer`] from its parts.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use trim_data::{DataSource, with_world};
use trim_env::Rng;

use super::progress::{Setup, StartInfo};
use super::validate::{EvalSet, SetData, VALIDATION};
use super::{RunOptions, STREAM_INIT, STREAM_RUN, STREAM_VAL, Trainer};
use crate::checkpoint::{self, TrainState};
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::family::Family;
use crate::metrics::{MetricsRow, MetricsWriter};
use crate::ppo::Learner;
use crate::run_dir::{self, Provenance, RunDirState, RunLock};
use crate::run_summary::RunStatus;

/// The data with the run's training and validation problems, and the test data when it is
/// separate.
pub(super) struct Prepared {
    pub data: DataSource,
    pub test_data: Option<DataSource>,
    pub train: Vec<u32>,
    pub val: Vec<u32>,
}

impl Prepared {
    /// The data the test split is read from.
    pub fn test_source(&self) -> &DataSource {
        self.test_data.as_ref().unwrap_or(&self.data)
    }
}

/// Load the data (and the separate test data, if any), split it into training and validation
/// problems and check the configuration against it.
pub(super) fn prepare_data(cfg: &TrainConfig) -> Result<Prepared> {
    let opts = trim_data::LoadOptions::from_env();
    let data = DataSource::open(&cfg.data, &opts)?;
    let test_data = match (cfg.test_split.name(), cfg.test_data.path()) {
        (Some(_), Some(p)) => Some(DataSource::open(p, &opts)?),
        _ => None,
    };
    let mut all = data.problems_in_split(&cfg.train_split);
    let mut rng = Rng::stream(cfg.seed, STREAM_VAL);
    rng.shuffle(&mut all);
    let n_val = cfg.n_val(all.len());
    let mut val = all[..n_val].to_vec();
    let mut train = all[n_val..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    let test_splits = test_data.as_ref().unwrap_or(&data).splits();
    cfg.validate_for_dataset(train.len(), val.len(), &data.splits(), &test_splits)?;
    Ok(Prepared {
        data,
        test_data,
        train,
        val,
    })
}

/// The last component of a run directory's path: the run name.
pub(super) fn dir_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| TrainError::run_dir(path, "not a plain directory name"))
}

/// Refuse a run name that is not a plain directory name.
pub(super) fn check_run_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(TrainError::Config(format!(
            "run name `{name}` must be a plain directory name"
        )));
    }
    Ok(())
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A run directory's path and lock, with the temporary entries cleaned under the lock.
pub(super) struct LockedDir {
    pub path: PathBuf,
    pub lock: RunLock,
    pub cleaned: Vec<PathBuf>,
}

impl LockedDir {
    /// Create `path` if needed, take its lock (failing at once if another process has it), then
    /// clean the temporary entries of dead processes.
    pub fn open(path: PathBuf) -> Result<LockedDir> {
        std::fs::create_dir_all(&path).map_err(|e| TrainError::io(&path, e))?;
        let lock = RunLock::acquire(&path)?;
        let cleaned = run_dir::clean_stale_temps(&path)?;
        Ok(LockedDir {
            path,
            lock,
            cleaned,
        })
    }
}

/// Whether an existing directory may be (re)started in place for `cfg`: it has no checkpoint
/// and no finished summary, its recorded configuration (if any) is `cfg`, and it holds nothing
/// but a run's files. Nothing in it is deleted; the restart rewrites `config.toml` and
/// `metrics.csv` (whose rows, if any, belong to updates that had no checkpoint).
pub(super) fn check_restartable(dir: &Path, cfg: &TrainConfig) -> Result<()> {
    let st = RunDirState::read(dir)?;
    let finished = st
        .summary
        .as_ref()
        .is_some_and(|s| s.status == RunStatus::Finished);
    if st.latest_checkpoint.is_some() || st.has_final || finished {
        return Err(TrainError::run_dir(
            dir,
            format!(
                "already exists with checkpoints: continue it with --resume {}, or pick another \
                 --name",
                dir.display()
            ),
        ));
    }
    if st.has_config {
        let recorded = run_dir::recorded_config(dir)?;
        if recorded != *cfg {
            return Err(TrainError::run_dir(
                dir,
                "already exists (no checkpoint yet) with another configuration; pick another \
                 --name, or repeat it with --config <dir>/config.toml",
            ));
        }
    } else if st.foreign_entries {
        return Err(TrainError::run_dir(
            dir,
            "already exists and is not a trim run directory; pick another --name",
        ));
    }
    Ok(())
}

/// The parts a [`Trainer`] is made of, as prepared by a fresh start, a resume or a fork.
pub(super) struct Parts<F: Family> {
    pub cfg: TrainConfig,
    pub opts: RunOptions,
    pub prepared: Prepared,
    pub learner: Learner<F::Net>,
    pub state: TrainState,
    pub best_weights: Option<F::Acting>,
    pub dir: LockedDir,
    pub metrics: MetricsWriter,
    pub setup: Setup,
    pub last_checkpoint: Option<PathBuf>,
}

impl<F: Family> Trainer<F> {
    /// Prepare a fresh run: validate against the data, create the run directory (or restart
    /// one that never reached a checkpoint, in place), write `config.toml` and the
    /// `metrics.csv` header.
    pub fn new(cfg: TrainConfig, opts: RunOptions) -> Result<Trainer<F>> {
        cfg.validate()?;
        let prepared = prepare_data(&cfg)?;
        let started = unix_now();
        let run_name = opts
            .name
            .clone()
            .unwrap_or_else(|| run_dir::default_run_name(&cfg, started));
        check_run_name(&run_name)?;
        let path = opts.out_root.join(&run_name);
        // Fail on an unusable backend before touching the output directory.
        opts.backend.train_device()?;
        let existed = path.exists();
        let dir = LockedDir::open(path)?;
        if existed {
            check_restartable(&dir.path, &cfg)?;
        }
        let setup = if existed {
            Setup::Restarted
        } else {
            Setup::Fresh
        };
        Self::start_fresh(cfg, opts, prepared, dir, setup)
    }

    /// Write `config.toml` and the header of `metrics.csv` into the locked `dir` and build the
    /// initial weights: update 0 of a run.
    pub(super) fn start_fresh(
        cfg: TrainConfig,
        opts: RunOptions,
        prepared: Prepared,
        dir: LockedDir,
        setup: Setup,
    ) -> Result<Trainer<F>> {
        let device = opts.backend.train_device()?;
        let run_name = dir_name(&dir.path)?;
        let started = unix_now();
        let dataset_sha256 = prepared.data.fingerprint(&cfg.data)?;
        let prov = Provenance {
            command_line: opts.command_line.clone(),
            crate_version: env!("CARGO_PKG_VERSION").into(),
            git_revision: run_dir::git_revision(),
            backend: opts.backend,
            run_name: run_name.clone(),
            started_unix: started,
            dataset_sha256: dataset_sha256.clone(),
            forked_from: None,
        };
        run_dir::write_config(&dir.path, &cfg, &prov)?;
        let metrics = MetricsWriter::start(&dir.path, &format!("{}\n", MetricsRow::header()))?;
        let model = F::init(&cfg, &mut Rng::stream(cfg.seed, STREAM_INIT), &device)
            .map_err(TrainError::Config)?;
        let learner = Learner::new(model, &cfg, device).map_err(TrainError::Config)?;
        let state = TrainState {
            format: checkpoint::FORMAT.into(),
            format_version: checkpoint::FORMAT_VERSION,
            crate_version: env!("CARGO_PKG_VERSION").into(),
            backend: opts.backend,
            family: F::NAME.into(),
            run_name,
            total_updates: cfg.total_updates(prepared.train.len()),
            config: cfg.clone(),
            dataset_sha256,
            val_problems: prepared.val.clone(),
            updates_done: 0,
            pass: 0,
            pass_pos: 0,
            pass_order: vec![],
            rng: Rng::stream(cfg.seed, STREAM_RUN).state(),
            env_steps: 0,
            episodes: 0,
            best: None,
            last_val: None,
        };
        Self::assemble(Parts {
            cfg,
            opts,
            prepared,
            learner,
            state,
            best_weights: None,
            dir,
            metrics,
            setup,
            last_checkpoint: None,
        })
    }

    /// Build the trainer: evaluation sets and the start record.
    pub(super) fn assemble(p: Parts<F>) -> Result<Trainer<F>> {
        let n_val = p.prepared.val.len();
        let val = with_world!(&p.prepared.data, |w| EvalSet::new(
            w,
            VALIDATION,
            p.prepared.val.clone(),
            SetData::Training
        ))?;
        let on = match p.prepared.test_data {
            Some(_) => SetData::Test,
            None => SetData::Training,
        };
        let test = match p.cfg.test_split.name() {
            Some(name) => {
                let src = p.prepared.test_source();
                let problems = src.problems_in_split(name);
                with_world!(src, |w| EvalSet::new(w, name, problems, on))?
            }
            None => None,
        };
        let Prepared {
            data,
            test_data,
            train,
            ..
        } = p.prepared;
        let start = StartInfo {
            setup: p.setup,
            run_dir: p.dir.path.clone(),
            data: p.cfg.data.clone(),
            train_problems: train.len(),
            val_problems: n_val,
            lambda: p.cfg.lambda,
            seed: p.cfg.seed,
            backend: p.opts.backend,
            batch_episodes: p.cfg.batch_episodes,
            total_updates: p.state.total_updates,
            updates_done: p.state.updates_done,
            cleaned: p.dir.cleaned,
        };
        let weights = F::acting(&p.learner.model).map_err(TrainError::Config)?;
        Ok(Trainer {
            rng: p.state.rng(),
            weights,
            cfg: p.cfg,
            opts: p.opts,
            data,
            test_data,
            train,
            val,
            test,
            learner: p.learner,
            state: p.state,
            best_weights: p.best_weights,
            run_dir: p.dir.path,
            metrics: p.metrics,
            start,
            last_checkpoint: p.last_checkpoint,
            _lock: p.dir.lock,
        })
    }
}
