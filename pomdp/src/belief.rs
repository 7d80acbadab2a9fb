//! Belief rules: how a belief over the current step's state is formed from what the router saw.
//!
//! * [`BeliefRule::Release`] — the official runtime (trim-paper.md §2.4): a **uniform prior**
//!   every step times the likelihood of the current (min-prev, current) PRM pair, normalised; and
//!   the closeness shortcut: when `max(b) − b(S2) ≥ closeness` the step is kept without consulting
//!   the solution.
//! * [`BeliefRule::Bayes`] — the recursive Bayes filter the POMDP itself assumes: the model's
//!   prior at the first step, then predict through the action taken and update on each new
//!   observation, over the whole history.

use crate::model::{Belief, PomdpModel};

/// The release's default closeness threshold.
pub const CLOSENESS_DEFAULT: f64 = 0.4;

/// How beliefs are formed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BeliefRule {
    /// Uniform prior each step + the closeness shortcut (`None`: no shortcut).
    Release { closeness: Option<f64> },
    /// Recursive filtering over the whole observation history.
    Bayes,
}

/// Normalise `prior ⊙ likelihood`; an observation no state can emit leaves the prior.
pub fn update(prior: &Belief, likelihood: &[f64; 3]) -> Belief {
    let w = [
        prior[0] * likelihood[0],
        prior[1] * likelihood[1],
        prior[2] * likelihood[2],
    ];
    let p: f64 = w.iter().sum();
    if p > 0.0 {
        [w[0] / p, w[1] / p, w[2] / p]
    } else {
        *prior
    }
}

/// The release's belief from one observation bin: uniform prior × likelihood.
pub fn release_belief(m: &PomdpModel, o: usize) -> Belief {
    update(&[1.0 / 3.0; 3], &m.likelihood(o))
}

/// The filtered belief after a history of `(observation bin, action)` pairs and the current
/// observation: prior at the first step, then predict through each action and update.
pub fn filtered_belief(
    m: &PomdpModel,
    past: impl IntoIterator<Item = (usize, bool)>,
    current: usize,
) -> Belief {
    let mut b = m.prior();
    for (o, regenerated) in past {
        b = update(&b, &m.likelihood(o));
        b = m.predict(&b, regenerated);
    }
    update(&b, &m.likelihood(current))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::tiny;

    #[test]
    fn release_and_bayes_beliefs_agree_on_the_first_step_up_to_the_prior() {
        let m = tiny();
        for o in 0..4 {
            let r = release_belief(&m, o);
            assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let f = filtered_belief(&m, [], o);
            assert_eq!(f[1], 0.0, "the first step cannot be derailed");
            // With the uniform prior the filter would give the release's belief.
            assert_eq!(update(&[1.0 / 3.0; 3], &m.likelihood(o)), r);
        }
        // After a kept first error every later step is S1 under the filter.
        let s2_obs = 2; // (high min-prev, low current): S2's most likely bin
        let b = filtered_belief(&m, [(s2_obs, false), (s2_obs, false)], 0);
        assert!(b[1] > 0.5, "{b:?}");
        // An impossible observation leaves the prior.
        assert_eq!(update(&[0.2, 0.3, 0.5], &[0.0; 3]), [0.2, 0.3, 0.5]);
    }
}
