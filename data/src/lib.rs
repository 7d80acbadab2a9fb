//! `trim-data`: rollout-tree datasets — files in, validated forests out.
//!
//! Data flow: files (parquet canonical, JSONL accepted) → [`io`] (decode column-wise into a
//! [`NodeTable`], verify the content checksum) → [`validate()`] (every tree invariant, errors
//! naming file/row/field) → [`trim_env::Forest`]. [`load_forest`] is the lean path (no per-row
//! structs); [`load`] also returns the rows, the exchange form of importers and `convert`.
//! Dataset sources: [`synth`] (latent step-correctness generator calibrated on the official TRIM
//! artifacts) and the importers in [`import`]. polars lives only in this crate.

pub mod build;
pub mod error;
pub mod import;
pub mod io;
pub mod schema;
pub mod source;
pub mod stats;
pub mod stats_world;
pub mod synth;
pub mod tokenizer;
pub mod validate;

pub use build::{DatasetBuilder, TreeWriter};
pub use error::{DataError, Loc, Result};
pub use io::{Integrity, LoadOptions};
pub use schema::{
    CandidateRec, Dataset, Meta, NodeRow, NodeStates, NodeTable, ProblemInfo, SourceRef, StepState,
};
pub use source::{DataSource, LazySource, SynthSpec, is_synth_spec};
pub use validate::{Loaded, LoadedForest, load, load_forest, load_with, validate};
