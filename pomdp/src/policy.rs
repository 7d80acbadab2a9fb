//! The TRIM-POMDP routing policy: a belief rule plus a solved POMDP, acting on the same per-step
//! view as every other family (`trim_env::StepView`).

use trim_env::{Action, Policy, Rng, StepView};

use crate::belief::{BeliefRule, filtered_belief, release_belief};
use crate::model::{Belief, PomdpModel};
use crate::solve::Solution;

/// A solved POMDP acting through a belief rule.
#[derive(Clone, Copy, Debug)]
pub struct PomdpPolicy<'a> {
    pub model: &'a PomdpModel,
    pub solution: &'a Solution,
    pub rule: BeliefRule,
}

impl PomdpPolicy<'_> {
    /// The belief at the current step, and whether the release's closeness shortcut keeps the
    /// step without consulting the solution.
    pub fn belief(&self, view: &StepView<'_>) -> (Belief, bool) {
        let m = self.model;
        let current = m.obs_bin(view.features.min_prev(), view.weak.prm);
        match self.rule {
            BeliefRule::Release { closeness } => {
                let b = release_belief(m, current);
                let max = b.iter().copied().fold(0.0, f64::max);
                (b, closeness.is_some_and(|c| max - b[2] >= c))
            }
            BeliefRule::Bayes => {
                // Past observations: (min PRM of the steps kept before, weak PRM), and whether
                // the step was regenerated.
                let mut min_prev = 1.0f32;
                let past = view.history.iter().map(|h| {
                    let o = m.obs_bin(min_prev, h[1]);
                    min_prev = min_prev.min(h[0]);
                    (o, h[3] > 0.5)
                });
                (filtered_belief(m, past, current), false)
            }
        }
    }

    /// The decision with the belief behind it (and whether the shortcut made it).
    pub fn decide(&self, view: &StepView<'_>) -> (Action, Belief, bool) {
        let (b, shortcut) = self.belief(view);
        if shortcut {
            return (Action::Continue, b, true);
        }
        let k = usize::from(view.features.steps()) + 1;
        let action = self.solution.action(k, &b, f64::from(view.weak.tokens));
        (action, b, false)
    }
}

impl Policy for PomdpPolicy<'_> {
    fn act(&self, view: &StepView<'_>, _mask: [bool; 2], _rng: &mut Rng) -> Action {
        self.decide(view).0
    }

    fn wants_history(&self) -> bool {
        self.rule == BeliefRule::Bayes
    }
}
