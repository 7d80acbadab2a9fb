//! Errors of a collection run. Each names what a user must look at: the config field, the
//! problem file and line, the endpoint and what it answered, the shard file, or the grader.

use std::path::{Path, PathBuf};

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, CollectError>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The configuration (file or flags) is invalid.
    #[error("{origin}: {msg}")]
    Config { origin: String, msg: String },
    /// An input or work file is unreadable or damaged.
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// An endpoint failed after every retry, or refused the request outright.
    #[error("{endpoint}: {msg}")]
    Endpoint { endpoint: String, msg: String },
    /// An endpoint refused a request (a 4xx other than 408/429: wrong model name, bad field,
    /// prompt too long). Retrying cannot help, so the run stops.
    #[error("{endpoint} refused the request: {msg}")]
    Refused { endpoint: String, msg: String },
    /// The external grader misbehaved.
    #[error("grader `{cmd}`: {msg}")]
    Grader { cmd: String, msg: String },
    /// The collected trees did not make a valid dataset (a bug, or a server that lies).
    #[error(transparent)]
    Data(#[from] trim_data::DataError),
    /// Problems failed; the others were committed and a re-run retries the failed ones.
    #[error("{0}")]
    Incomplete(String),
}

impl CollectError {
    /// An error about `path`.
    pub fn file(path: &Path, msg: impl Into<String>) -> Self {
        CollectError::File {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    /// An error about the configuration read from `origin`.
    pub fn config(origin: impl Into<String>, msg: impl Into<String>) -> Self {
        CollectError::Config {
            origin: origin.into(),
            msg: msg.into(),
        }
    }

    /// An error of `endpoint`.
    pub fn endpoint(endpoint: impl Into<String>, msg: impl Into<String>) -> Self {
        CollectError::Endpoint {
            endpoint: endpoint.into(),
            msg: msg.into(),
        }
    }
}
