//! `trim-router`: serve a routing policy exported by `trim export`.
//!
//! This is what a serving stack links: it depends on `trim-env` (the one feature definition),
//! `trim-pomdp` (TRIM-POMDP solutions) and serde — no tensors, no dataframes, no CLI. Training uses the same network code
//! ([`agg::AggNet`]) for its rollouts, so the forward pass that was validated is the one that
//! serves.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use trim_router::{EpisodeFeatures, Router};
//! let router = Router::load("exports/my-run".as_ref())?;
//! let mut ep = EpisodeFeatures::new();
//! // step 0: the weak model proposed a 120-token step that the PRM scores 0.42
//! let d = router.decide(&ep.observe(0.42, 120)?);
//! let kept_prm = if d.regenerate { 0.91 /* PRM of the strong step */ } else { 0.42 };
//! ep.push(kept_prm)?;
//! # Ok(()) }
//! ```
//!
//! Modules: [`mlp`] (dense/LayerNorm/tanh arithmetic), [`agg`] (the TRIM-Agg network),
//! [`manifest`] (`policy.json`), [`parity`] (`parity.json`), [`safetensors`] and [`onnx`] (the
//! weight formats), `load` (verification), [`router`] (decisions), [`pomdp`] (TRIM-POMDP
//! solutions: the same per-step inputs, decided through the release's belief rule),
//! [`pomdp_export`] (their export format) and [`policy`] (either kind behind one `load`).

pub mod agg;
pub mod agg_rows;
pub mod budget;
pub mod error;
pub mod explore;
mod load;
pub mod manifest;
pub mod mlp;
pub mod onnx;
pub mod parity;
pub mod policy;
pub mod pomdp;
pub mod pomdp_export;
pub mod router;
pub mod safetensors;
pub mod seq;
pub mod seq_cache;
pub mod seq_export;
mod seq_params;
pub mod seq_router;
pub mod session;

pub use agg::{AggNet, MAX_HIDDEN, N_ACTIONS, sample_action};
pub use budget::BudgetedSession;
pub use error::RouterError;
pub use explore::Exploration;
pub use load::weights_from_safetensors;
pub use manifest::Manifest;
pub use policy::{Policy, PolicyDecision};
pub use pomdp::{PomdpDecision, PomdpRouter};
pub use pomdp_export::PomdpManifest;
pub use router::{BudgetState, Decision, EpisodeFeatures, Router, StepObservation};
pub use seq::{SEQ_OBS_DIM, SeqNet, SeqShape};
pub use seq_router::SeqRouter;
pub use session::{KeptStep, Session};
