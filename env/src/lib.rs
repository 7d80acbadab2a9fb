//! `trim-env`: the offline replay world of TRIM step-level routing.
//!
//! Data flows `data` (files → validated trees, or synthetic worlds generated on demand) →
//! **`env`** (replay) → `trainer`. This crate has no file I/O and no tensors: it owns the
//! [`World`] seam (what an episode needs from a source of trees), the stored [`Forest`] of
//! rollout trees, the episode semantics ([`Episode`]), the TRIM-Agg features, batched stepping
//! ([`VecEnv`]), reference policies and their evaluation.
//!
//! Episode semantics, exactly as TRIM: at step `t` the router observes the weak candidate;
//! `continue` keeps it, `regenerate` replaces it by the strong candidate written from the same
//! prefix; the reward is `-λ·(strong tokens)` on regenerate plus `+1` at the terminal step when the
//! final answer is correct; γ = 1.

mod bootstrap;
pub mod checksum;
pub mod episode;
pub mod features;
pub mod forest;
pub mod metrics;
pub mod oracle;
pub mod policy;
pub mod reach;
pub mod rng;
pub mod rollout;
pub mod rows_eval;
pub mod signals;
pub mod tiers;
pub mod vec_env;
pub mod world;

pub use episode::{Episode, EpisodeOutcome, StepError, Transition};
pub use features::{
    AGG_DIM, AGG_FEATURES, AggObs, FeatureState, HIST_DIM, HIST_FEATURES, HistStep,
};
pub use forest::{Action, Branch, Candidate, Coverage, Forest, ForestBuilder, ForestError};
pub use oracle::{hindsight_optimal, query_cascade, query_oracle};
pub use policy::{Conditions, EpsGreedy, Policy, Propensity, RefPolicy, StepView, resolve};
pub use rng::Rng;
pub use rollout::{
    EvalOptions, ProblemOutcome, Summary, check_signals, evaluate, evaluate_budgeted, run_episode,
    run_episode_budgeted, run_episode_with, summarize,
};
pub use rows_eval::{RowsPolicy, evaluate_rows};
pub use signals::{SignalColumns, SignalKinds, Signals};
pub use vec_env::{SlotBudget, VecEnv};
pub use world::{Next, World};
