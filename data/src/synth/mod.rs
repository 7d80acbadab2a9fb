//! Synthetic rollout trees: the latent step-correctness model, its calibration inputs, and
//! `trim data synth`.
//!
//! Data flow: calibration inputs ([`hazard`], [`step_tokens`], [`obs_model`]; vendored or
//! replaced by the config, read by [`inputs`]) and the `[latent]` parameters ([`params`]) →
//! [`calibrate`](mod@calibrate) (per-step logits solved to the accuracy targets) → [`latent`]
//! (the calibrated generative model: candidates and difficulty draws) → `expand` (one sample
//! tree per call) → [`generate`](mod@generate) (a whole dataset from a [`config`], with
//! provenance). The ProcessBench importer uses the same model around real all-weak paths, so
//! these modules never depend on `crate::import`; long calls report [`Progress`] events instead
//! of drawing anything.

pub mod calibrate;
pub mod compact_json;
pub mod config;
pub mod curve_noise;
mod expand;
pub mod generate;
pub mod hazard;
pub mod inputs;
pub mod latent;
pub mod lazy;
pub mod node;
pub mod obs_model;
pub(crate) mod parallel;
pub mod params;
pub mod progress;
pub mod real_curve;
pub mod signals;
pub mod step_tokens;

pub use calibrate::{Calibration, RoleStats, calibrate};
pub use compact_json::{compact_json, write_compact_json};
pub use config::{InputPaths, ModelNames, SHIPPED_CONFIG_PATH, SHIPPED_CONFIG_TOML, SynthConfig};
pub use generate::{ProblemDraws, SynthReport, generate, generate_with_progress};
pub use hazard::Hazard;
pub use inputs::load_model;
pub use latent::{Difficulty, Draw, LatentModel, Prefix, RealStep, Role};
pub use lazy::{LazyCandidate, LazyNode, LazyWorld};
pub use node::NodeAt;
pub use obs_model::ObsModel;
pub use params::{LatentConfig, MAX_REGENS_LIMIT};
pub use progress::{OnProgress, Progress};
pub use step_tokens::{
    STEP_TOKENS_JSON, STEP_TOKENS_PATH, StepTokenLists, StepTokensFile, write_step_tokens,
};
