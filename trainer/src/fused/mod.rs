//! Fused TRIM-Agg training kernels in plain Rust (issue 16): the actor-critic's forward pass
//! with its activations kept, the PPO loss head, the backward pass, the global clip and Adam,
//! written out by hand over flat `f32` arrays.
//!
//! Why: a PPO update of the 64-wide TRIM-Agg network on a ~480-step minibatch is ~12 MFLOP
//! forward and ~24 MFLOP backward, but through burn it costs ~3.4 ms per gradient step — about
//! 90 tensor operations, each paying dispatch and allocation on `[480, 64]` tensors. Here the
//! same arithmetic runs as a handful of loops over contiguous rows (dot products and axpys the
//! compiler vectorises) with no allocation per step ([`Workspace`] is reused).
//!
//! The layout is PyTorch's (`weight [out, in]`), the names those of
//! [`trim_router::agg::DENSE_NAMES`] / [`trim_router::agg::NORM_NAMES`], and the arithmetic the
//! burn model's (`crate::model::ActorCritic`): LayerNorm with biased variance and ε inside the
//! root, tanh as `2σ(2x) − 1`, masked logits at −1e9, the CleanRL loss of `crate::ppo::loss`.
//! A test checks the loss and every gradient against burn's autodiff.
//!
//! `trim train` uses them for the MLP families ([`FusedLearner`], config `kernels`, default
//! `auto`); TRIM-Seq keeps burn's autodiff. A gradient step runs in parts of
//! [`learner::PART_ROWS`] rows over the cores, added in a fixed order, so a run's bits do not
//! depend on the thread count.

pub mod adam;
pub mod bench;
mod dense;
pub mod learner;
pub mod loss;
pub mod mlp;
mod norm;
pub mod population;

pub use adam::{Adam, clip_grad_norm};
pub use learner::{FusedLearner, Stepper};

/// The fused kernels' copy of a burn TRIM-Agg network's parameters (exact: f32 for f32).
pub fn params_of(model: &crate::model::ActorCritic) -> Result<AggParams, String> {
    let mut tp = model.torch_params();
    AggParams::from_named(model.input_dim(), model.hidden(), |name, _| tp.take(name))
}
pub use loss::{HeadGrads, PpoBatch, ppo_head};
pub use mlp::{AggParams, Workspace};

#[cfg(test)]
mod tests;
