//! The PPO loss, as CleanRL writes it (`ppo.py`, "Policy loss" / "Value loss" blocks).
//!
//! ```text
//! ratio    = exp(log π(a|s) − log π_old(a|s))
//! pg_loss  = mean(max(−A·ratio, −A·clip(ratio, 1 − ε, 1 + ε)))
//! v_loss   = 0.5 · mean(max((V − R)², (V_old + clip(V − V_old, −c, c) − R)²))   (c = vf_clip)
//! loss     = pg_loss − ent_coef · mean(entropy) + vf_coef · v_loss
//! ```

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use super::buffer::Minibatch;
use super::stats::LossStats;
use crate::family::TrainNet;
use crate::model::{log_probs, mask_logits};

/// Coefficients of one update.
#[derive(Clone, Copy, Debug)]
pub struct LossCoefs {
    pub clip_coef: f32,
    pub vf_clip: f32,
    pub vf_coef: f32,
    pub ent_coef: f32,
}

impl LossCoefs {
    /// The run's coefficients with the entropy coefficient of this update.
    pub fn of(cfg: &crate::config::TrainConfig, ent_coef: f64) -> Self {
        LossCoefs {
            clip_coef: cfg.clip_coef as f32,
            vf_clip: cfg.vf_clip as f32,
            vf_coef: cfg.vf_coef as f32,
            ent_coef: ent_coef as f32,
        }
    }
}

/// A minibatch as tensors.
///
/// # Shapes
/// `obs: [n, obs_dim]`, `mask: [n, 2]`, every other field `[n]`.
pub struct MinibatchTensors {
    pub obs: Tensor<2>,
    pub mask: Tensor<2, Bool>,
    pub actions: Tensor<1, Int>,
    pub logp: Tensor<1>,
    pub values: Tensor<1>,
    pub advantages: Tensor<1>,
    pub returns: Tensor<1>,
    pub len: usize,
}

impl MinibatchTensors {
    /// Upload a minibatch to `device`.
    pub fn new(mb: &Minibatch, obs_dim: usize, device: &Device) -> Self {
        let n = mb.len;
        let f1 = |v: &Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [n]), device);
        MinibatchTensors {
            obs: Tensor::<2>::from_data(TensorData::new(mb.obs.clone(), [n, obs_dim]), device),
            mask: Tensor::<2, Bool>::from_data(TensorData::new(mb.mask.clone(), [n, 2]), device),
            actions: Tensor::<1, Int>::from_data(TensorData::new(mb.actions.clone(), [n]), device),
            logp: f1(&mb.logp),
            values: f1(&mb.values),
            advantages: f1(&mb.advantages),
            returns: f1(&mb.returns),
            len: n,
        }
    }
}

/// The scalar loss and its diagnostics (the diagnostics are detached).
pub struct LossOutput {
    /// `[1]`, differentiable.
    pub loss: Tensor<1>,
    pub terms: LossTerms,
}

/// The detached diagnostics of one or more minibatches, summed on the device (read once per
/// update by [`LossTerms::mean`]). Every field `[1]`.
pub struct LossTerms {
    pub policy_loss: Tensor<1>,
    pub value_loss: Tensor<1>,
    pub entropy: Tensor<1>,
    pub approx_kl: Tensor<1>,
    pub clip_fraction: Tensor<1>,
}

impl std::ops::Add for LossTerms {
    type Output = LossTerms;

    /// Field-wise sum.
    fn add(self, o: LossTerms) -> LossTerms {
        LossTerms {
            policy_loss: self.policy_loss + o.policy_loss,
            value_loss: self.value_loss + o.value_loss,
            entropy: self.entropy + o.entropy,
            approx_kl: self.approx_kl + o.approx_kl,
            clip_fraction: self.clip_fraction + o.clip_fraction,
        }
    }
}

impl LossTerms {
    /// Means over `count` summed minibatches, with the summed gradient norms `grad_norm_sum`.
    pub fn mean(self, count: usize, grad_norm_sum: f64) -> LossStats {
        let c = count.max(1) as f64;
        let read = |t: Tensor<1>| f64::from(t.into_scalar::<f32>()) / c;
        LossStats {
            policy_loss: read(self.policy_loss),
            value_loss: read(self.value_loss),
            entropy: read(self.entropy),
            approx_kl: read(self.approx_kl),
            clip_fraction: read(self.clip_fraction),
            grad_norm: grad_norm_sum / c,
        }
    }
}

/// Evaluate the PPO loss of `model` on `mb`.
pub fn ppo_loss<N: TrainNet>(
    model: &N,
    mb: &MinibatchTensors,
    c: LossCoefs,
    drop: Option<&N::Dropout>,
) -> LossOutput {
    let (logits, value) = model.forward(mb.obs.clone(), drop);
    let (lp_all, p_all) = log_probs(mask_logits(logits, mb.mask.clone()));
    let new_logp = lp_all
        .clone()
        .gather(1, mb.actions.clone().unsqueeze_dim::<2>(1))
        .squeeze_dim::<1>(1);
    // Masked actions contribute p·log p = 0·(−1e9 − lse) = 0.
    let entropy = (p_all * lp_all).sum_dim(1).squeeze_dim::<1>(1).neg().mean();

    let logratio = new_logp - mb.logp.clone();
    let ratio = logratio.clone().exp();
    let adv = mb.advantages.clone();
    let pg1 = adv.clone().neg() * ratio.clone();
    let pg2 = adv.neg() * ratio.clone().clamp(1.0 - c.clip_coef, 1.0 + c.clip_coef);
    let pg_loss = pg1.max_pair(pg2).mean();

    let v_unclipped = (value.clone() - mb.returns.clone()).square();
    let v_loss = if c.vf_clip > 0.0 {
        let v_clipped =
            mb.values.clone() + (value - mb.values.clone()).clamp(-c.vf_clip, c.vf_clip);
        let v_clipped = (v_clipped - mb.returns.clone()).square();
        v_unclipped.max_pair(v_clipped).mean().mul_scalar(0.5)
    } else {
        v_unclipped.mean().mul_scalar(0.5)
    };

    let loss = pg_loss.clone() - entropy.clone().mul_scalar(c.ent_coef)
        + v_loss.clone().mul_scalar(c.vf_coef);

    let ratio_d = ratio.detach();
    let logratio_d = logratio.detach();
    let approx_kl = (ratio_d.clone().sub_scalar(1.0) - logratio_d).mean();
    let clip_frac = ratio_d
        .sub_scalar(1.0)
        .abs()
        .greater_scalar(c.clip_coef)
        .float()
        .mean();
    let terms = LossTerms {
        policy_loss: pg_loss.detach(),
        value_loss: v_loss.detach(),
        entropy: entropy.detach(),
        approx_kl,
        clip_fraction: clip_frac,
    };
    LossOutput { loss, terms }
}
