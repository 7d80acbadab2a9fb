//! The divergence guard: cheap checks, run on every update, that the network and what it
//! outputs are still numbers training can continue from. A diverged update must stop the run
//! with an error naming the quantity before anything (a checkpoint, `best/`) is written from it.
//!
//! Non-finite weights are the obvious case. The subtle one: with a huge learning rate the
//! weights stay finite but the logits grow past the mask logit (−1e9), so a masked action gets
//! probability ≈ 1 — the environment would then refuse it with a misleading "action is masked".
//! Both are caught here: on the new weights over a probe of the batch's observations, and on
//! every rollout step ([`check_output`]).

use crate::error::Divergence;
use crate::family::ActingNet;
use trim_router::agg_rows::RowsScratch;

/// A masked action's log-probability must stay below this (it is ≈ −1e9 while the mask works;
/// above it the logits of available actions have grown to the mask's scale).
pub const MASKED_LOGP_CEILING: f32 = -1e8;

/// Observations of the batch re-scored with the new weights after an update that writes
/// nothing; before a validation or checkpoint every observation of the batch is.
pub const PROBE_STEPS: usize = 64;

const ACTION_NAMES: [&str; 2] = ["continue", "regenerate"];

/// Check one policy output: log-probabilities of the available actions finite, masked actions
/// still masked, value finite.
#[inline]
pub fn check_output(log_probs: [f32; 2], value: f32, mask: [bool; 2]) -> Option<Divergence> {
    for a in 0..2 {
        let lp = log_probs[a];
        if mask[a] && !lp.is_finite() {
            let q = format!("policy log-probability of {}", ACTION_NAMES[a]);
            return Some(Divergence::non_finite(q, f64::from(lp)));
        }
        if !mask[a] && (lp.is_nan() || lp > MASKED_LOGP_CEILING) {
            let q = format!(
                "policy log-probability of the masked action {}",
                ACTION_NAMES[a]
            );
            return Some(if lp.is_nan() {
                Divergence::non_finite(q, f64::from(lp))
            } else {
                Divergence::mask_overpowered(q, f64::from(lp))
            });
        }
    }
    (!value.is_finite()).then(|| Divergence::non_finite("value estimate", f64::from(value)))
}

/// The first non-finite parameter of `w`, by name.
pub fn check_weights<A: ActingNet>(w: &A) -> Option<Divergence> {
    w.named_params().into_iter().find_map(|(name, _, vals)| {
        vals.iter()
            .find(|v| !v.is_finite())
            .map(|&v| Divergence::non_finite(format!("weight {name}"), f64::from(v)))
    })
}

/// The recorded steps of a batch as the guard reads them (the rollout buffer lends them with
/// `RolloutBuffer::steps`).
#[derive(Clone, Copy)]
pub struct Steps<'a> {
    /// `[len * obs_dim]` observation rows.
    pub obs: &'a [f32],
    pub obs_dim: usize,
    /// `[len * 2]` action masks.
    pub mask: &'a [bool],
    /// `[len]`: which rows are real steps (not padding).
    pub valid: &'a [bool],
}

/// Re-score up to `steps` valid observations of `buf` (in buffer order) with `w`; the first
/// bad output found, in buffer order. The rows go through the acting network's batched path
/// (the same bits as one row at a time, at a third of the cost: this runs after every update,
/// over the whole batch when the update validates or checkpoints).
pub fn probe<A: ActingNet>(w: &A, buf: Steps<'_>, steps: usize) -> Option<Divergence> {
    let d = buf.obs_dim;
    let end = (0..buf.valid.len())
        .filter(|&i| buf.valid[i])
        .take(steps)
        .last()
        .map_or(0, |i| i + 1);
    let mut out = Vec::with_capacity(end);
    let (obs, mask, valid) = (&buf.obs[..end * d], &buf.mask[..2 * end], &buf.valid[..end]);
    w.log_probs_rows(obs, mask, valid, &mut RowsScratch::default(), &mut out);
    (0..end).filter(|&i| valid[i]).find_map(|i| {
        let (lps, v) = out[i];
        check_output(lps, v, [mask[2 * i], mask[2 * i + 1]])
    })
}

/// Weights, then the probe of `steps` observations: everything checked after an update.
pub fn check_policy<A: ActingNet>(w: &A, buf: Steps<'_>, steps: usize) -> Option<Divergence> {
    check_weights(w).or_else(|| probe(w, buf, steps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PolicyWeights, masked_log_softmax};
    use crate::ppo::buffer::RolloutBuffer;
    use trim_env::AGG_DIM;

    #[test]
    fn healthy_outputs_pass_and_escaped_masks_are_named() {
        let ok = masked_log_softmax([0.3, -0.2], [true, false]);
        assert_eq!(check_output(ok, 0.5, [true, false]), None);
        let both = masked_log_softmax([0.3, -0.2], [true, true]);
        assert_eq!(check_output(both, 0.5, [true, true]), None);
        // Logits of 6e11 (weights after an lr of 1e10): the masked action wins.
        let huge = masked_log_softmax([-6e11, 0.0], [true, false]);
        let d = check_output(huge, 0.5, [true, false]).unwrap();
        assert!(
            d.quantity.contains("masked action regenerate"),
            "{}",
            d.quantity
        );
        let nan = masked_log_softmax([f32::NAN, 0.0], [true, true]);
        let d = check_output(nan, 0.5, [true, true]).unwrap();
        assert!(
            d.quantity.contains("log-probability of continue"),
            "{}",
            d.quantity
        );
        let d = check_output(both, f32::INFINITY, [true, true]).unwrap();
        assert_eq!(d.quantity, "value estimate");
    }

    /// A width-4 network with every parameter `fill`, except `name` (all `special`).
    fn net(name: &str, special: f32) -> PolicyWeights {
        PolicyWeights::from_named_params::<()>(
            trim_env::AGG_DIM,
            4,
            |_| (),
            |n, shape| {
                let len = shape.iter().product();
                let v = if n == name {
                    special
                } else if n.contains("_ln") && n.ends_with(".bias") {
                    0.5
                } else {
                    0.1
                };
                Ok(vec![v; len])
            },
        )
        .unwrap()
    }

    fn one_step_buffer() -> RolloutBuffer {
        RolloutBuffer {
            n: 1,
            t_len: 1,
            obs_dim: AGG_DIM,
            obs: vec![0.5; AGG_DIM],
            mask: vec![true, false],
            valid: vec![true],
            ..RolloutBuffer::default()
        }
    }

    /// The probe reads the first `steps` valid rows in buffer order and nothing else: padding
    /// rows are skipped, a bad row past the window is not seen until the window covers it, and
    /// the first bad row is the one named (its quantity says which action escaped its mask).
    #[test]
    fn the_probe_window_counts_valid_rows_in_buffer_order() {
        let huge = net("actor_out.weight", -1e10);
        let rows = 80;
        let mut mask = vec![true; 2 * rows];
        let mut valid = vec![true; rows];
        // Padding rows (every fifth) with regenerate masked: never checked.
        for i in (0..rows).step_by(5) {
            valid[i] = false;
            mask[2 * i + 1] = false;
        }
        // Valid rows 71 and 72 (the 57th and 58th valid rows) mask regenerate, then continue.
        mask[2 * 71 + 1] = false;
        mask[2 * 72] = false;
        let obs = vec![0.5; rows * AGG_DIM];
        let steps = |n| {
            let s = Steps {
                obs: &obs,
                obs_dim: AGG_DIM,
                mask: &mask,
                valid: &valid,
            };
            probe(&huge, s, n).map(|d| d.quantity)
        };
        assert_eq!(steps(56), None);
        let first = steps(57).unwrap();
        assert!(first.contains("masked action regenerate"), "{first}");
        assert_eq!(steps(usize::MAX), Some(first));
        assert_eq!(steps(0), None);
    }

    #[test]
    fn non_finite_weights_and_huge_logits_are_caught() {
        let buf = one_step_buffer();
        assert_eq!(
            check_policy(&net("none", 0.0), buf.steps_view(), PROBE_STEPS),
            None
        );
        let d = check_policy(
            &net("critic1.bias", f32::NAN),
            buf.steps_view(),
            PROBE_STEPS,
        )
        .unwrap();
        assert_eq!(d.quantity, "weight critic1.bias");
        // Finite but huge output weights (an lr of 1e10): caught by the probe.
        let d = check_policy(&net("actor_out.weight", -1e10), buf.steps_view(), 1).unwrap();
        assert!(
            d.quantity.contains("masked action regenerate"),
            "{}",
            d.quantity
        );
    }
}
