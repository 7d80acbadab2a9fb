//! A run of whichever policy family its configuration names: the one place that turns the
//! `policy` field (`agg` | `seq`) into a [`Trainer`] of that family, for new runs and resumes.

use std::path::Path;

use super::{RunOptions, Trainer};
use crate::config::{PolicyKind, TrainConfig};
use crate::error::Result;
use crate::family::{agg::Agg, seq::Seq};
use crate::run_summary::RunSummary;
use crate::train::progress::TrainEvent;

/// A prepared run of either family.
pub enum AnyTrainer {
    Agg(Box<Trainer<Agg>>),
    Seq(Box<Trainer<Seq>>),
}

impl AnyTrainer {
    /// A new run of `cfg.policy`.
    pub fn new(cfg: TrainConfig, opts: RunOptions) -> Result<Self> {
        Ok(match cfg.policy {
            PolicyKind::Agg => AnyTrainer::Agg(Box::new(Trainer::new(cfg, opts)?)),
            PolicyKind::Seq => AnyTrainer::Seq(Box::new(Trainer::new(cfg, opts)?)),
        })
    }

    /// Resume (or fork) `opts.resume` with the family its recorded configuration names.
    pub fn resume(opts: RunOptions) -> Result<Self> {
        let path = (opts.resume.clone())
            .ok_or_else(|| crate::TrainError::Config("nothing to resume".into()))?;
        Ok(match recorded_policy(&path)? {
            PolicyKind::Agg => AnyTrainer::Agg(Box::new(Trainer::resume(opts)?)),
            PolicyKind::Seq => AnyTrainer::Seq(Box::new(Trainer::resume(opts)?)),
        })
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        match self {
            AnyTrainer::Agg(t) => t.run_dir(),
            AnyTrainer::Seq(t) => t.run_dir(),
        }
    }

    /// The resolved configuration.
    pub fn config(&self) -> &TrainConfig {
        match self {
            AnyTrainer::Agg(t) => t.config(),
            AnyTrainer::Seq(t) => t.config(),
        }
    }

    /// [`Trainer::run_with`].
    pub fn run_with(self, on_event: &mut dyn FnMut(TrainEvent<'_>)) -> Result<RunSummary> {
        match self {
            AnyTrainer::Agg(t) => t.run_with(on_event),
            AnyTrainer::Seq(t) => t.run_with(on_event),
        }
    }

    /// [`Trainer::run`].
    pub fn run(self) -> Result<RunSummary> {
        self.run_with(&mut |_| {})
    }
}

/// The policy family recorded by the run directory or checkpoint at `path`.
pub fn recorded_policy(path: &Path) -> Result<PolicyKind> {
    let (run, _) = super::resume::locate(path)?;
    Ok(crate::run_dir::recorded_config(&run)?.policy)
}
