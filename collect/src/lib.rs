//! `trim-collect`: build rollout trees from live models (`trim collect`).
//!
//! Data flow: [`config`] (`collect.toml` + flags) and [`problems`] (the problem file) →
//! [`mod@run`] (one tokio task per problem in flight) → [`expand`] (which branches: `full` or
//! policy-guided) → [`models`] (a step [`models::Generator`] for each of the weak and strong
//! models, a [`models::StepScorer`] for the PRM) over [`http`] (bounded in-flight requests,
//! retries with backoff) using the bodies of [`api`] and the template of [`prompt`];
//! optionally [`judge`] rates every weak step and the generators report token
//! log-probabilities (per-step signals); finished solutions are graded by [`grade_cmd`]
//! ([`mod@grade`] built in, or an external checker) → [`shard`] (atomic, resumable commits in
//! `<out>.collect/`) → [`output`] (the dataset, in trim's format, with provenance). [`fake`] is
//! a deterministic OpenAI-compatible + `/pooling` server on 127.0.0.1 for tests and
//! `trim bench-collect`.

pub mod api;
pub mod config;
pub mod error;
pub mod expand;
pub mod fake;
pub mod grade;
pub mod grade_cmd;
pub mod http;
pub mod judge;
pub mod models;
pub mod output;
pub mod problems;
pub mod prompt;
pub mod run;
pub mod shard;
pub mod tree;

pub use config::CollectConfig;
pub use error::{CollectError, Result};
pub use grade::{Grade, extract_boxed, grade, normalize};
pub use run::{RunOptions, Summary, run};
