//! The learning side of `trim`: the TRIM-Agg actor-critic, PPO, training runs and checkpoints.
//!
//! Data flows `trim-data` (files → validated forest) → `trim-env` (replay) → **this crate**:
//!
//! 1. [`train::Trainer`] holds out part of the training split for validation, then repeats
//!    *collect → advantage → update* (CleanRL's loop):
//!    * **collect** ([`ppo::buffer`]): 64 episodes in the batched [`trim_env::VecEnv`], acting
//!      with a plain-Rust copy of the network ([`model::PolicyWeights`]) and storing everything in
//!      time-major `Vec<f32>` buffers ([`ppo::buffer`]);
//!    * **advantage** ([`ppo::gae`]): GAE(γ, λ) over the padded buffer, a pure function;
//!    * **update** ([`ppo::update`]): the valid steps of each minibatch become burn tensors; clipped
//!      surrogate + clipped value loss − entropy bonus, global gradient-norm clip, Adam.
//! 2. Every `val_every` updates a greedy validation scores `accuracy − λ·strong tokens` and keeps
//!    the best policy; checkpoints ([`checkpoint`]) make any run resumable bit for bit.
//!
//! Backend-specific code lives in [`backend`] only; everything else takes a `burn::Device`.

pub mod backend;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod eval;
pub mod export;
pub mod family;
pub mod fused;
pub mod metrics;
pub mod model;
pub mod ope;
pub mod ope_dr;
pub mod operating_point;
pub mod pomdp_fit;
pub mod pomdp_models;
pub mod pomdp_run;
pub mod pomdp_source;
pub mod ppo;
pub mod run_dir;
pub mod run_summary;
pub mod seq_model;
pub mod spin_pair;
pub mod sweep;
pub mod train;

pub use config::{ConfigOverrides, TrainConfig};
pub use error::TrainError;
pub use train::{RunOptions, Trainer};
