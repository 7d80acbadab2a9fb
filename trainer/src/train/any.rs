//! A run of whichever policy family its configuration names: the one place that turns the
//! `policy` field (`agg` | `seq`) into a [`Trainer`] of that family, for new runs and resumes.

use std::path::Path;

use super::{RunOptions, Trainer};
use crate::config::{PolicyKind, TrainConfig};
use crate::error::Result;
use crate::family::agg::Agg;
use crate::family::agg_budget::AggBudget;
use crate::family::agg_lambda::AggLambda;
use crate::family::seq::{Seq, SeqLambda};
use crate::run_summary::RunSummary;
use crate::train::progress::TrainEvent;

/// A prepared run of either family.
pub enum AnyTrainer {
    Agg(Box<Trainer<Agg>>),
    AggLambda(Box<Trainer<AggLambda>>),
    AggBudget(Box<Trainer<AggBudget>>),
    Seq(Box<Trainer<Seq>>),
    SeqLambda(Box<Trainer<SeqLambda>>),
}

/// The families a configuration can name: TRIM-Agg is λ-conditioned when `lambda_range` is set.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Agg,
    AggLambda,
    AggBudget,
    Seq,
    SeqLambda,
}

fn which(cfg: &TrainConfig) -> Which {
    let budget = cfg.budget_range.bounds().is_some();
    match (cfg.policy, cfg.lambda_range.bounds(), budget) {
        (PolicyKind::Seq, None, _) => Which::Seq,
        (PolicyKind::Seq, Some(_), _) => Which::SeqLambda,
        (PolicyKind::Agg, _, true) => Which::AggBudget,
        (PolicyKind::Agg, None, false) => Which::Agg,
        (PolicyKind::Agg, Some(_), false) => Which::AggLambda,
    }
}

impl AnyTrainer {
    /// A new run of `cfg.policy`.
    pub fn new(cfg: TrainConfig, opts: RunOptions) -> Result<Self> {
        Ok(match which(&cfg) {
            Which::Agg => AnyTrainer::Agg(Box::new(Trainer::new(cfg, opts)?)),
            Which::AggLambda => AnyTrainer::AggLambda(Box::new(Trainer::new(cfg, opts)?)),
            Which::AggBudget => AnyTrainer::AggBudget(Box::new(Trainer::new(cfg, opts)?)),
            Which::Seq => AnyTrainer::Seq(Box::new(Trainer::new(cfg, opts)?)),
            Which::SeqLambda => AnyTrainer::SeqLambda(Box::new(Trainer::new(cfg, opts)?)),
        })
    }

    /// Resume (or fork) `opts.resume` with the family its recorded configuration names.
    pub fn resume(opts: RunOptions) -> Result<Self> {
        let path = (opts.resume.clone())
            .ok_or_else(|| crate::TrainError::Config("nothing to resume".into()))?;
        let (run, _) = super::resume::locate(&path)?;
        Ok(match which(&crate::run_dir::recorded_config(&run)?) {
            Which::Agg => AnyTrainer::Agg(Box::new(Trainer::resume(opts)?)),
            Which::AggLambda => AnyTrainer::AggLambda(Box::new(Trainer::resume(opts)?)),
            Which::AggBudget => AnyTrainer::AggBudget(Box::new(Trainer::resume(opts)?)),
            Which::Seq => AnyTrainer::Seq(Box::new(Trainer::resume(opts)?)),
            Which::SeqLambda => AnyTrainer::SeqLambda(Box::new(Trainer::resume(opts)?)),
        })
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        match self {
            AnyTrainer::Agg(t) => t.run_dir(),
            AnyTrainer::AggLambda(t) => t.run_dir(),
            AnyTrainer::AggBudget(t) => t.run_dir(),
            AnyTrainer::Seq(t) => t.run_dir(),
            AnyTrainer::SeqLambda(t) => t.run_dir(),
        }
    }

    /// The resolved configuration.
    pub fn config(&self) -> &TrainConfig {
        match self {
            AnyTrainer::Agg(t) => t.config(),
            AnyTrainer::AggLambda(t) => t.config(),
            AnyTrainer::AggBudget(t) => t.config(),
            AnyTrainer::Seq(t) => t.config(),
            AnyTrainer::SeqLambda(t) => t.config(),
        }
    }

    /// [`Trainer::run_with`].
    pub fn run_with(self, on_event: &mut (dyn FnMut(TrainEvent<'_>) + Send)) -> Result<RunSummary> {
        match self {
            AnyTrainer::Agg(t) => t.run_with(on_event),
            AnyTrainer::AggLambda(t) => t.run_with(on_event),
            AnyTrainer::AggBudget(t) => t.run_with(on_event),
            AnyTrainer::Seq(t) => t.run_with(on_event),
            AnyTrainer::SeqLambda(t) => t.run_with(on_event),
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
