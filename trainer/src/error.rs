//! Errors of the training library. Every variant says what to do about it.

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
    /// The backend asked for is not compiled in or cannot start.
    #[error("backend: {0}")]
    Backend(String),
    /// The environment refused an action (a masked action: a bug in the policy code).
    #[error("environment: {0}")]
    Env(#[from] trim_env::StepError),
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
}

/// Result alias of this crate.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
