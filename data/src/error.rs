//! One error type for everything that reads, checks or writes datasets.
//!
//! Every error names the file, where in it (row of a parquet file, line of a JSONL file, node of
//! a problem), the field, and what is wrong — so a user can open the file and fix it.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in a file an error is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loc {
    /// The file as a whole (missing column, unreadable footer, empty file).
    File,
    /// 0-based row of a tabular file.
    Row(usize),
    /// 1-based line of a text file.
    Line(usize),
    /// A problem / tree / node, for invariants that span rows.
    Node {
        problem: String,
        tree: u32,
        node: u32,
        /// 0-based row (parquet) of the node.
        row: usize,
        /// 1-based line (JSONL) of the node's problem, when read from JSONL.
        line: Option<usize>,
    },
    /// A problem as a whole.
    Problem(String),
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::File => Ok(()),
            Loc::Row(r) => write!(f, "row {r}"),
            Loc::Line(l) => write!(f, "line {l}"),
            Loc::Node {
                problem,
                tree,
                node,
                row,
                line,
            } => {
                match line {
                    Some(l) => write!(f, "line {l}")?,
                    None => write!(f, "row {row}")?,
                }
                write!(f, " (problem `{problem}`, tree {tree}, node {node})")
            }
            Loc::Problem(p) => write!(f, "problem `{p}`"),
        }
    }
}

/// A data error: file, location, field, reason. Boxed so `Result<T, DataError>` stays small.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataError(Box<Details>);

/// The parts of a [`DataError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Details {
    pub file: PathBuf,
    pub loc: Loc,
    pub field: Option<String>,
    pub reason: String,
}

impl DataError {
    /// An error about `file` at `loc`.
    pub fn new(file: &Path, loc: Loc, field: Option<&str>, reason: impl Into<String>) -> Self {
        DataError(Box::new(Details {
            file: file.to_path_buf(),
            loc,
            field: field.map(str::to_owned),
            reason: reason.into(),
        }))
    }

    /// File, location, field and reason.
    pub fn details(&self) -> &Details {
        &self.0
    }

    /// An error about the whole file.
    pub fn file(file: &Path, reason: impl Into<String>) -> Self {
        Self::new(file, Loc::File, None, reason)
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        write!(f, "{}", d.file.display())?;
        if d.loc != Loc::File {
            write!(f, ": {}", d.loc)?;
        }
        if let Some(field) = &d.field {
            write!(f, ", field `{field}`")?;
        }
        write!(f, ": {}", d.reason)
    }
}

impl std::error::Error for DataError {}

/// Result alias of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
