//! Errors of the training library. Every variant says what to do about it.

use std::fmt;
use std::path::PathBuf;

/// Anything that stops a training run before or while it runs.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration value (file, command line or dataset-dependent) is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The dataset could not be read or validated.
    #[error(transparent)]
    Data(#[from] trim_data::DataError),
    /// A checkpoint is missing, damaged or does not belong to this run.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    /// A file of the run directory could not be written or read.
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    /// A run directory is refused as it is (exists, rewinds, in use by another process).
    #[error("run directory {path}: {reason}")]
    RunDir { path: PathBuf, reason: String },
    /// The backend asked for is not compiled in or cannot start.
    #[error("backend: {0}")]
    Backend(String),
    /// The environment refused an action (a masked action: a bug in the policy code).
    #[error("environment: {0}")]
    Env(#[from] trim_env::StepError),
    /// Training left the range it can continue from (NaN/inf loss, gradients or weights, or a
    /// policy whose logits overpower the action mask).
    #[error("{0}")]
    Diverged(Box<Divergence>),
}

/// What diverged, where, and the last checkpoint written before it (still good).
#[derive(Clone, Debug, PartialEq)]
pub struct Divergence {
    /// Updates completed before the one that diverged (the failing update is `update + 1`).
    pub update: u64,
    /// The quantity, e.g. `train/policy_loss`, `weight actor_out.weight`.
    pub quantity: String,
    /// Its offending value.
    pub value: f64,
    /// Why that value ends training (e.g. "not finite").
    pub why: &'static str,
    /// The newest checkpoint of the run, written before the divergence.
    pub last_checkpoint: Option<PathBuf>,
}

impl Divergence {
    /// `quantity` became NaN or infinite; the update and checkpoint are filled in by the
    /// training loop ([`TrainError::at_update`]).
    pub fn non_finite(quantity: impl Into<String>, value: f64) -> Self {
        Self::because(quantity, value, "not finite")
    }

    /// A masked action got real probability: the logits have grown to the mask's scale.
    pub fn mask_overpowered(quantity: impl Into<String>, value: f64) -> Self {
        Self::because(
            quantity,
            value,
            "the action mask no longer holds: the logits have grown to its scale (1e9)",
        )
    }

    fn because(quantity: impl Into<String>, value: f64, why: &'static str) -> Self {
        Divergence {
            update: 0,
            quantity: quantity.into(),
            value,
            why,
            last_checkpoint: None,
        }
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "training diverged at update {}: {} is {:?} ({}); ",
            self.update + 1,
            self.quantity,
            self.value,
            self.why
        )?;
        match &self.last_checkpoint {
            Some(c) => write!(f, "the last good checkpoint is {}", c.display())?,
            None => f.write_str("no checkpoint was written before it")?,
        }
        f.write_str("; start a new run with a lower --lr")
    }
}

impl From<Divergence> for TrainError {
    fn from(d: Divergence) -> Self {
        TrainError::Diverged(Box::new(d))
    }
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        TrainError::Io {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// A checkpoint error on `path`.
    pub fn checkpoint(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        TrainError::Checkpoint {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// A run-directory refusal on `path`.
    pub fn run_dir(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        TrainError::RunDir {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// Place a divergence found during an update: `done` updates completed before it and the
    /// newest checkpoint. Other errors pass through.
    pub fn at_update(self, done: u64, last_checkpoint: Option<PathBuf>) -> Self {
        match self {
            TrainError::Diverged(mut d) => {
                d.update = done;
                d.last_checkpoint = last_checkpoint;
                TrainError::Diverged(d)
            }
            other => other,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
