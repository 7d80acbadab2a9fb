//! Why an export could not be loaded.

use std::path::PathBuf;

/// A load failure, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// A file could not be read.
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    /// The export is damaged, incomplete, of an unsupported version, or inconsistent: re-export.
    #[error("invalid export {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl RouterError {
    /// An invalid-export error for `path`.
    pub fn invalid(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        RouterError::Invalid {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// An I/O error for `path`.
    pub fn io(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        RouterError::Io {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
