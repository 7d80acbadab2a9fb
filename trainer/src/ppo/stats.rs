//! [`LossStats`]: the diagnostics of one PPO update as named fields (what `metrics.csv` logs as
//! `train/*` and what the divergence guard checks), instead of positional arrays.

use crate::error::Divergence;

/// Mean diagnostics of one update, over its epochs and minibatches.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossStats {
    /// Clipped surrogate loss.
    pub policy_loss: f64,
    /// (Clipped) value loss, with its 0.5 factor.
    pub value_loss: f64,
    /// Mean policy entropy.
    pub entropy: f64,
    /// `mean((ratio − 1) − log ratio)` (Schulman's low-variance estimator).
    pub approx_kl: f64,
    /// Fraction of steps whose ratio left [1 − ε, 1 + ε].
    pub clip_fraction: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

impl LossStats {
    /// The per-step means from the sums of `count` steps' statistics (`self`); with no
    /// steps, the sums.
    pub fn mean_over(self, count: usize) -> LossStats {
        let c = count.max(1) as f64;
        LossStats {
            policy_loss: self.policy_loss / c,
            value_loss: self.value_loss / c,
            entropy: self.entropy / c,
            approx_kl: self.approx_kl / c,
            clip_fraction: self.clip_fraction / c,
            grad_norm: self.grad_norm / c,
        }
    }

    /// Every field with its `metrics.csv` column name.
    pub fn named(&self) -> [(&'static str, f64); 6] {
        [
            ("train/policy_loss", self.policy_loss),
            ("train/value_loss", self.value_loss),
            ("train/entropy", self.entropy),
            ("train/approx_kl", self.approx_kl),
            ("train/clip_fraction", self.clip_fraction),
            ("train/grad_norm", self.grad_norm),
        ]
    }

    /// The first field that is NaN or infinite: the update diverged.
    pub fn first_non_finite(&self) -> Option<Divergence> {
        self.named()
            .into_iter()
            .find(|(_, v)| !v.is_finite())
            .map(|(name, v)| Divergence::non_finite(name, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_non_finite_field_is_named() {
        let ok = LossStats {
            policy_loss: 0.1,
            grad_norm: 3.0,
            ..LossStats::default()
        };
        assert_eq!(ok.first_non_finite(), None);
        let bad = LossStats {
            value_loss: f64::INFINITY,
            grad_norm: f64::NAN,
            ..ok
        };
        let d = bad.first_non_finite().unwrap();
        assert_eq!(
            (d.quantity.as_str(), d.value),
            ("train/value_loss", f64::INFINITY)
        );
    }
}
