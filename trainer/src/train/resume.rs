//! Continuing a run: in place from its newest state, restarted when it never reached a
//! checkpoint, or forked into a new run directory from any checkpoint.
//!
//! Rewinding never destroys data. Resuming in place drops only the `metrics.csv` rows written
//! after the newest checkpoint by a process that died (they are redone identically). A
//! checkpoint older than the run's newest state (`--resume RUN/checkpoints/update_000250` of a
//! run that reached 520) is refused in place; `--name NEW` forks it: `NEW/` gets the run's
//! configuration, its metrics rows up to that update, the checkpoint (and `best/` when it
//! belongs to it), and continues from there while the original run stays as it was.

use std::path::{Path, PathBuf};

use super::progress::Setup;
use super::setup::{LockedDir, Parts, Prepared, check_restartable, check_run_name, prepare_data};
use super::{RunOptions, Trainer};
use crate::backend::Backend;
use crate::checkpoint::{self, SUMS, TrainState};
use crate::error::{Result, TrainError};
use crate::family::Family;
use crate::metrics::{MetricsWriter, rows_up_to};
use crate::ppo::Learner;
use crate::run_dir::{self, Provenance, RunDirState};

/// A checkpoint loaded for continuing, checked against the dataset.
struct Continuation<F: Family> {
    ckpt: PathBuf,
    loaded: checkpoint::Loaded<F::Net>,
    prepared: Prepared,
}

impl<F: Family> Trainer<F> {
    /// Resume from `opts.resume`: a run directory (its latest periodic checkpoint) or a
    /// checkpoint directory. The configuration comes from the checkpoint. A run directory
    /// without any checkpoint is restarted in place from its `config.toml`. With `opts.name`
    /// naming another run directory, the checkpoint is forked there (see the module doc).
    pub fn resume(opts: RunOptions) -> Result<Trainer<F>> {
        let path = opts
            .resume
            .clone()
            .ok_or_else(|| TrainError::Config("nothing to resume".into()))?;
        let (src, explicit) = locate(&path)?;
        match fork_target(&opts, &src)? {
            None => {
                let dir = LockedDir::open(src)?;
                let ckpt = match explicit {
                    Some(c) => c,
                    None => match checkpoint::periodic(&dir.path).pop() {
                        Some((_, c)) => c,
                        None => return Self::restart_in_place(opts, dir),
                    },
                };
                Self::continue_in_place(opts, dir, ckpt)
            }
            Some(target) => {
                let ckpt = match explicit {
                    Some(c) => c,
                    None => checkpoint::periodic(&src)
                        .pop()
                        .map(|c| c.1)
                        .ok_or_else(|| {
                            TrainError::run_dir(&src, "has no checkpoint to fork; start a new run")
                        })?,
                };
                Self::fork(opts, ckpt, &src, target)
            }
        }
    }

    /// A run directory that never reached a checkpoint: start it again from its own
    /// `config.toml`, in place.
    fn restart_in_place(opts: RunOptions, dir: LockedDir) -> Result<Trainer<F>> {
        let cfg = run_dir::recorded_config(&dir.path)?;
        cfg.validate()?;
        check_restartable(&dir.path, &cfg)?;
        let prepared = prepare_data(&cfg)?;
        Self::start_fresh(cfg, opts, prepared, dir, Setup::Restarted)
    }

    /// Continue the run in `dir` from `ckpt`, which must be its newest state.
    fn continue_in_place(opts: RunOptions, dir: LockedDir, ckpt: PathBuf) -> Result<Trainer<F>> {
        let c = Continuation::<F>::load(ckpt, opts.backend)?;
        let n = c.loaded.state.updates_done;
        let reached = RunDirState::read(&dir.path)?;
        if n < reached.furthest_update() {
            return Err(TrainError::run_dir(
                &dir.path,
                format!(
                    "checkpoint {} is at update {n}, but the run has reached update {}; resuming \
                     it in place would discard updates {}–{}. Fork it into a new run instead: \
                     trim train --resume {0} --name NEW_NAME",
                    c.ckpt.display(),
                    reached.furthest_update(),
                    n + 1,
                    reached.furthest_update()
                ),
            ));
        }
        let best_weights = best_of_checkpoint::<F>(&dir.path, &c.loaded.state, opts.backend)?;
        let metrics_path = dir.path.join("metrics.csv");
        let metrics = MetricsWriter::start(&dir.path, &rows_up_to(&metrics_path, n)?)?;
        let setup = Setup::Resumed {
            checkpoint: c.ckpt.clone(),
        };
        c.into_trainer(opts, dir, metrics, best_weights, setup)
    }

    /// Copy `ckpt` of the run `src` into the new run directory `target` and continue there.
    fn fork(opts: RunOptions, ckpt: PathBuf, src: &Path, target: PathBuf) -> Result<Trainer<F>> {
        let mut c = Continuation::<F>::load(ckpt, opts.backend)?;
        let n = c.loaded.state.updates_done;
        let rows = rows_up_to(&src.join("metrics.csv"), n)?;
        let existed = target.exists();
        let dir = LockedDir::open(target)?;
        if existed {
            let st = RunDirState::read(&dir.path)?;
            if st.has_config || st.latest_checkpoint.is_some() || st.foreign_entries {
                return Err(TrainError::run_dir(
                    &dir.path,
                    "already exists; fork into a new --name",
                ));
            }
        }
        let name = super::setup::dir_name(&dir.path)?;
        let state = &mut c.loaded.state;
        state.run_name = name.clone();
        let prov = Provenance {
            command_line: opts.command_line.clone(),
            crate_version: env!("CARGO_PKG_VERSION").into(),
            git_revision: run_dir::git_revision(),
            backend: opts.backend,
            run_name: name,
            started_unix: super::setup::unix_now(),
            dataset_sha256: state.dataset_sha256.clone(),
            forked_from: Some(c.ckpt.clone()),
        };
        run_dir::write_config(&dir.path, &state.config, &prov)?;
        let copy = dir
            .path
            .join("checkpoints")
            .join(checkpoint::periodic_name(n));
        let (model, optim) = (&c.loaded.model, &c.loaded.optim);
        let fused = c.loaded.fused_adam.as_deref();
        checkpoint::save(&copy, model, optim, fused, state)?;
        let best_weights = best_of_checkpoint::<F>(src, state, opts.backend)?;
        if best_weights.is_some() {
            checkpoint::copy(&src.join("best"), &dir.path.join("best"))?;
        }
        let metrics = MetricsWriter::start(&dir.path, &rows)?;
        let setup = Setup::Forked {
            checkpoint: c.ckpt.clone(),
        };
        c.ckpt = copy;
        c.into_trainer(opts, dir, metrics, best_weights, setup)
    }
}

impl<F: Family> Continuation<F> {
    /// Load `ckpt` and check it against its dataset: unchanged file, same hold-out, same
    /// schedule.
    fn load(ckpt: PathBuf, backend: Backend) -> Result<Continuation<F>> {
        let loaded = checkpoint::load_as::<F>(&ckpt, &backend.train_device()?)?;
        let cfg = &loaded.state.config;
        cfg.validate()?;
        let prepared = prepare_data(cfg)?;
        let sha = prepared.data.fingerprint(&cfg.data)?;
        if sha != loaded.state.dataset_sha256 {
            return Err(TrainError::checkpoint(
                &ckpt,
                format!(
                    "dataset {} changed since this checkpoint (sha256 {sha}, checkpoint has {})",
                    cfg.data.display(),
                    loaded.state.dataset_sha256
                ),
            ));
        }
        if prepared.val != loaded.state.val_problems
            || loaded.state.total_updates != cfg.total_updates(prepared.train.len())
        {
            return Err(TrainError::checkpoint(
                &ckpt,
                "validation hold-out or schedule differs from the checkpoint's",
            ));
        }
        Ok(Continuation {
            ckpt,
            loaded,
            prepared,
        })
    }

    fn into_trainer(
        self,
        opts: RunOptions,
        dir: LockedDir,
        metrics: MetricsWriter,
        best_weights: Option<F::Acting>,
        setup: Setup,
    ) -> Result<Trainer<F>> {
        let checkpoint::Loaded {
            model,
            optim,
            fused_adam,
            state,
        } = self.loaded;
        let device = opts.backend.train_device()?;
        let learner = Learner::resumed(model, optim, fused_adam.as_deref(), &state.config, device)
            .map_err(|e| TrainError::checkpoint(&self.ckpt, e))?;
        Trainer::assemble(Parts {
            cfg: state.config.clone(),
            opts,
            prepared: self.prepared,
            learner,
            state,
            best_weights,
            dir,
            metrics,
            setup,
            last_checkpoint: Some(self.ckpt),
        })
    }
}

/// The run directory of `path` and the checkpoint it names: a checkpoint directory
/// (`SHA256SUMS`) inside a run, or a run directory (`config.toml`; checkpoint None).
pub(super) fn locate(path: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    if path.join(SUMS).exists() {
        let run = run_dir::run_dir_of_checkpoint(path).ok_or_else(|| {
            TrainError::checkpoint(path, "no run directory (config.toml) above it")
        })?;
        Ok((run, Some(path.to_path_buf())))
    } else if path.join("config.toml").is_file() {
        Ok((path.to_path_buf(), None))
    } else {
        Err(TrainError::checkpoint(
            path,
            "neither a run directory (config.toml) nor a checkpoint (SHA256SUMS)",
        ))
    }
}

/// The run directory to fork into: `out_root/name` when a name is given and it is not the
/// resumed run itself.
fn fork_target(opts: &RunOptions, src: &Path) -> Result<Option<PathBuf>> {
    let Some(name) = &opts.name else {
        return Ok(None);
    };
    check_run_name(name)?;
    let target = opts.out_root.join(name);
    let same = match (target.canonicalize(), src.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    Ok((!same).then_some(target))
}

/// The weights of `run/best` if that is the best policy recorded in `state` (`best/` may be
/// ahead of the checkpoint, written by updates after it).
fn best_of_checkpoint<F: Family>(
    run: &Path,
    state: &TrainState,
    backend: Backend,
) -> Result<Option<F::Acting>> {
    let best_dir = run.join("best");
    match state.best {
        Some(b) if best_dir.exists() => {
            let (m, s) = checkpoint::load_model_as::<F>(&best_dir, &backend.device()?)?;
            if s.best != Some(b) {
                return Ok(None);
            }
            F::acting(&m).map(Some).map_err(TrainError::Config)
        }
        _ => Ok(None),
    }
}
