//! The PPO loss head over the network's outputs: the loss of `crate::ppo::loss` (CleanRL's)
//! and its gradients w.r.t. the logits and values, by hand.
//!
//! Per row, with masked log-softmax `lp`, probabilities `p`, taken action `a`:
//! ```text
//! ratio = exp(lp_a − lp_old)        pg = max(−A·ratio, −A·clip(ratio, 1 ± ε))
//! ent   = −Σ p·lp                   v  = ½·max((V − R)², (V_old + clip(V − V_old, ±c) − R)²)
//! loss  = mean(pg) − ent_coef·mean(ent) + vf_coef·mean(v)
//! ∂loss/∂logit_j = g·(δ_aj − p_j) + (ent_coef/n)·p_j·(lp_j + ent)   (0 for a masked j)
//! ```
//! where `g = ∂loss/∂lp_a = ratio·∂mean(pg)/∂ratio`.

use crate::model::{MASKED_LOGIT, N_ACTIONS};
use crate::ppo::loss::LossCoefs;

/// One minibatch as the head reads it (borrowed from the rollout buffer's minibatch).
///
/// # Shapes
/// `mask: [n, 2]`, every other field `[n]`.
pub struct PpoBatch<'a> {
    pub mask: &'a [bool],
    pub actions: &'a [i64],
    pub logp: &'a [f32],
    pub values: &'a [f32],
    pub advantages: &'a [f32],
    pub returns: &'a [f32],
}

impl<'a> PpoBatch<'a> {
    /// The head's view of a rollout-buffer minibatch.
    pub fn of(mb: &'a crate::ppo::buffer::Minibatch) -> Self {
        PpoBatch {
            mask: &mb.mask,
            actions: &mb.actions,
            logp: &mb.logp,
            values: &mb.values,
            advantages: &mb.advantages,
            returns: &mb.returns,
        }
    }

    /// The rows `r` of the batch.
    pub fn rows(&self, r: std::ops::Range<usize>) -> PpoBatch<'a> {
        PpoBatch {
            mask: &self.mask[r.start * 2..r.end * 2],
            actions: &self.actions[r.clone()],
            logp: &self.logp[r.clone()],
            values: &self.values[r.clone()],
            advantages: &self.advantages[r.clone()],
            returns: &self.returns[r],
        }
    }
}

impl HeadGrads {
    /// Add another part's statistics (see [`ppo_head_part`]) into these.
    pub fn add_stats(&mut self, o: &HeadGrads) {
        self.loss += o.loss;
        self.policy_loss += o.policy_loss;
        self.value_loss += o.value_loss;
        self.entropy += o.entropy;
        self.approx_kl += o.approx_kl;
        self.clip_fraction += o.clip_fraction;
    }
}

/// The loss, its diagnostics and the gradients w.r.t. the network outputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeadGrads {
    pub loss: f64,
    pub policy_loss: f64,
    pub value_loss: f64,
    pub entropy: f64,
    pub approx_kl: f64,
    pub clip_fraction: f64,
    /// `[n, 2]`
    pub d_logits: Vec<f32>,
    /// `[n]`
    pub d_values: Vec<f32>,
}

/// The PPO loss of `logits` (`[n, 2]`, raw) and `values` (`[n]`) on `b`, and its gradients
/// (written into `out`, whose vectors are reused).
pub fn ppo_head(
    logits: &[f32],
    values: &[f32],
    b: &PpoBatch<'_>,
    c: LossCoefs,
    out: &mut HeadGrads,
) {
    ppo_head_part(logits, values, b, c, values.len(), out)
}

/// [`ppo_head`] over one part of a minibatch of `n_total` rows: gradients and statistics are
/// scaled by `1/n_total`, so the parts' gradients are the whole's and their statistics add up
/// to the whole's ([`HeadGrads::add_stats`]).
pub fn ppo_head_part(
    logits: &[f32],
    values: &[f32],
    b: &PpoBatch<'_>,
    c: LossCoefs,
    n_total: usize,
    out: &mut HeadGrads,
) {
    let n = values.len();
    let inv_n = 1.0 / n_total as f32;
    out.d_logits.resize(n * N_ACTIONS, 0.0);
    out.d_values.resize(n, 0.0);
    let (mut pg_sum, mut v_sum, mut ent_sum, mut kl_sum, mut clipped) =
        (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0usize);
    for r in 0..n {
        let m = &b.mask[r * 2..r * 2 + 2];
        let l = [0, 1].map(|k| {
            if m[k] {
                logits[r * 2 + k]
            } else {
                MASKED_LOGIT
            }
        });
        let mx = l[0].max(l[1]);
        let lse = mx + ((l[0] - mx).exp() + (l[1] - mx).exp()).ln();
        let lp = [l[0] - lse, l[1] - lse];
        let p = [lp[0].exp(), lp[1].exp()];
        let ent = -(p[0] * lp[0] + p[1] * lp[1]);
        let a = b.actions[r] as usize;
        let logratio = lp[a] - b.logp[r];
        let ratio = logratio.exp();
        let adv = b.advantages[r];
        let clipped_ratio = ratio.clamp(1.0 - c.clip_coef, 1.0 + c.clip_coef);
        let (pg1, pg2) = (-adv * ratio, -adv * clipped_ratio);
        // max_pair: the unclipped branch where it is the larger (ties give the same value and,
        // with the clip inactive at a tie, the same gradient).
        let d_ratio = if pg1 >= pg2 || clipped_ratio == ratio {
            -adv
        } else {
            0.0
        };
        let g = inv_n * d_ratio * ratio;
        let (v, dv) = value_term(values[r], b.values[r], b.returns[r], c.vf_clip);
        for k in 0..N_ACTIONS {
            let d = if m[k] {
                let onehot = if k == a { 1.0 } else { 0.0 };
                g * (onehot - p[k]) + c.ent_coef * inv_n * p[k] * (lp[k] + ent)
            } else {
                0.0
            };
            out.d_logits[r * 2 + k] = flush_tiny(d);
        }
        out.d_values[r] = c.vf_coef * inv_n * dv;
        pg_sum += f64::from(pg1.max(pg2));
        v_sum += f64::from(v);
        ent_sum += f64::from(ent);
        kl_sum += f64::from(ratio - 1.0 - logratio);
        clipped += usize::from((ratio - 1.0).abs() > c.clip_coef);
    }
    let nf = n_total as f64;
    out.policy_loss = pg_sum / nf;
    out.value_loss = v_sum / nf;
    out.entropy = ent_sum / nf;
    out.approx_kl = kl_sum / nf;
    out.clip_fraction = clipped as f64 / nf;
    out.loss = out.policy_loss - f64::from(c.ent_coef) * out.entropy
        + f64::from(c.vf_coef) * out.value_loss;
}

/// Gradients smaller than this are set to 0 (see [`flush_tiny`]).
const TINY: f32 = 1e-30;

/// `x`, or 0 when `|x| < 1e-30`. A near-deterministic row (the other action at p ≈ 1e-30)
/// whose ratio is clipped has only its entropy gradient left, ~1e-34; pushed back through the
/// network it becomes subnormal, and every vector operation on a subnormal takes a slow
/// microcode path (18 % of the whole update). Such a row adds nothing visible to any
/// parameter's gradient (it is 1e-20 below the others' rounding), so it is dropped here.
#[inline(always)]
fn flush_tiny(x: f32) -> f32 {
    if x.abs() < TINY { 0.0 } else { x }
}

/// One row's value loss `½·max(unclipped, clipped)` and its derivative w.r.t. the value.
fn value_term(v: f32, v_old: f32, ret: f32, vf_clip: f32) -> (f32, f32) {
    let unclipped = (v - ret) * (v - ret);
    if vf_clip <= 0.0 {
        return (0.5 * unclipped, v - ret);
    }
    let delta = v - v_old;
    let vc = v_old + delta.clamp(-vf_clip, vf_clip);
    let clipped = (vc - ret) * (vc - ret);
    if unclipped >= clipped {
        (0.5 * unclipped, v - ret)
    } else {
        let inside = delta.abs() <= vf_clip;
        (0.5 * clipped, if inside { vc - ret } else { 0.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A near-deterministic row whose ratio is clipped keeps only its ~1e-34 entropy gradient,
    /// which would turn subnormal in the backward pass: it is flushed to exactly 0, while an
    /// ordinary row's gradients are untouched.
    #[test]
    fn tiny_gradients_are_flushed_and_ordinary_ones_kept() {
        let c = LossCoefs {
            clip_coef: 0.2,
            vf_clip: 0.2,
            vf_coef: 0.5,
            ent_coef: 1e-3,
        };
        // Row 0: logits 80 apart (p ≈ 2e-35 for action 1), action 0 taken with a ratio far
        // above 1 + ε and a positive advantage (clipped: no policy gradient). Row 1: ordinary.
        let logits = [80.0, 0.0, 0.3, -0.2];
        let b = PpoBatch {
            mask: &[true; 4],
            actions: &[0, 1],
            logp: &[-1.0, -0.8],
            values: &[0.1, 0.2],
            advantages: &[1.0, -0.5],
            returns: &[0.1, 0.4],
        };
        let mut out = HeadGrads::default();
        ppo_head(&logits, &[0.1, 0.3], &b, c, &mut out);
        assert_eq!(&out.d_logits[..2], &[0.0, 0.0]);
        assert!(
            out.d_logits[2..].iter().all(|d| d.abs() > 1e-6),
            "{:?}",
            out.d_logits
        );
        assert!(out.d_logits.iter().all(|d| !d.is_subnormal()));
    }
}
