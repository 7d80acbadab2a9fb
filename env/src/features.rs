//! Observation features, exactly as the official TRIM-Agg rollout code builds them.

/// Dimension of the TRIM-Agg observation.
pub const AGG_DIM: usize = 5;
/// Token normaliser of the official code (`tokens / 300`).
pub const TOKEN_SCALE: f32 = 300.0;
/// Step normaliser of the official code (`t / 30`).
pub const STEP_SCALE: f32 = 30.0;

/// Names of the TRIM-Agg features, in the order the network receives them.
pub const AGG_FEATURES: [&str; AGG_DIM] = [
    "min_prev_prm",
    "prod_prev_prm",
    "current_weak_prm",
    "current_weak_tokens_over_300",
    "step_over_30",
];

/// Centre and half-width of the λ input in log10 units: conditioned policies see
/// `(log10 λ − LAMBDA_LOG10_CENTER) / LAMBDA_LOG10_HALF_WIDTH`, which maps the default range
/// 1e-5 … 1e-2 onto [−1, 1]. Fixed constants (not the run's range) so that every conditioned
/// export computes the input the same way and a manifest can state it once.
pub const LAMBDA_LOG10_CENTER: f32 = -3.5;
/// See [`LAMBDA_LOG10_CENTER`].
pub const LAMBDA_LOG10_HALF_WIDTH: f32 = 1.5;
/// Name of the λ input of conditioned policies (appended after the TRIM-Agg features).
pub const LAMBDA_FEATURE: &str = "log10_lambda_scaled";

/// The λ input of a conditioned policy (see [`LAMBDA_LOG10_CENTER`]); λ must be > 0.
#[inline(always)]
pub fn lambda_feature(lambda: f32) -> f32 {
    (lambda.log10() - LAMBDA_LOG10_CENTER) / LAMBDA_LOG10_HALF_WIDTH
}

/// Strong-token scale of the absolute budget input (`budget_left / 1000`).
pub const BUDGET_SCALE: f32 = 1000.0;
/// Names of the budget inputs of budget-aware policies (appended after the TRIM-Agg features).
pub const BUDGET_FEATURES: [&str; 2] = ["budget_left_fraction", "budget_left_over_1000"];

/// The budget inputs of a budget-aware policy: the fraction of the episode's budget still left,
/// and what is left in units of [`BUDGET_SCALE`] tokens (the fraction alone cannot tell a
/// 100-token budget from a 1000-token one). `budget` must be > 0 (a zero budget gives `[0, 0]`).
#[inline(always)]
pub fn budget_features(budget_left: u64, budget: u64) -> [f32; 2] {
    let frac = if budget == 0 {
        0.0
    } else {
        (budget_left.min(budget) as f64 / budget as f64) as f32
    };
    [frac, budget_left as f32 / BUDGET_SCALE]
}

/// The TRIM-Agg observation at a decision:
/// `[min PRM of chosen steps 1..t-1, product of those, PRM of the current weak candidate,
///   current weak tokens / 300, t / 30]`, with min and product equal to 1.0 at `t = 0`.
pub type AggObs = [f32; AGG_DIM];

/// The one feature state of an episode: what the TRIM-Agg observation needs from the steps
/// already taken (running min and product of the kept steps' PRM scores, and the step index).
///
/// Why one type: the replay environment ([`crate::Episode`]) and the serving router
/// (`trim-router`) must compute the network's input identically, so both hold this state and
/// build observations through [`FeatureState::observe`] only.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeatureState {
    min_prev: f32,
    prod_prev: f32,
    steps: u16,
}

impl Default for FeatureState {
    fn default() -> Self {
        Self::new()
    }
}

impl FeatureState {
    /// The state before the first step: min = product = 1, t = 0.
    #[inline(always)]
    pub const fn new() -> Self {
        FeatureState {
            min_prev: 1.0,
            prod_prev: 1.0,
            steps: 0,
        }
    }

    /// Record a finished step by the PRM score of the step that was kept (the weak candidate on
    /// continue, the strong one on regenerate). Saturates at `u16::MAX` steps; callers that
    /// accept untrusted histories check the count first (the router does).
    #[inline(always)]
    pub fn push(&mut self, kept_prm: f32) {
        self.min_prev = self.min_prev.min(kept_prm);
        self.prod_prev *= kept_prm;
        self.steps = self.steps.saturating_add(1);
    }

    /// Steps kept so far: the index `t` of the next decision.
    #[inline(always)]
    pub fn steps(&self) -> u16 {
        self.steps
    }

    /// Minimum PRM score of the kept steps (1.0 before the first).
    #[inline(always)]
    pub fn min_prev(&self) -> f32 {
        self.min_prev
    }

    /// Product of the kept steps' PRM scores (1.0 before the first).
    #[inline(always)]
    pub fn prod_prev(&self) -> f32 {
        self.prod_prev
    }

    /// The TRIM-Agg observation for deciding on the current weak candidate (`cur_prm`,
    /// `cur_tokens`): `[min_prev, prod_prev, cur_prm, cur_tokens / 300, t / 30]`.
    #[inline(always)]
    pub fn observe(&self, cur_prm: f32, cur_tokens: u32) -> AggObs {
        [
            self.min_prev,
            self.prod_prev,
            cur_prm,
            cur_tokens as f32 / TOKEN_SCALE,
            self.steps as f32 / STEP_SCALE,
        ]
    }
}

/// Dimension of one entry of the per-step history given to sequence policies.
pub const HIST_DIM: usize = 5;

/// Names of the per-step history features.
pub const HIST_FEATURES: [&str; HIST_DIM] = [
    "chosen_prm",
    "weak_prm",
    "weak_tokens_over_300",
    "regenerated",
    "strong_tokens_over_300",
];

/// One past step as a sequence policy sees it: the PRM of the step that was kept, the weak
/// candidate's PRM and length, whether it was regenerated, and the strong tokens spent (0 on
/// continue).
pub type HistStep = [f32; HIST_DIM];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_the_kept_steps() {
        let mut s = FeatureState::new();
        assert_eq!(s.observe(0.7, 150), [1.0, 1.0, 0.7, 0.5, 0.0]);
        for p in [0.9, 0.5, 0.8] {
            s.push(p);
        }
        let o = s.observe(0.3, 30);
        assert_eq!(o[0], 0.5);
        assert!((o[1] - 0.36).abs() < 1e-6);
        assert!((o[3] - 0.1).abs() < 1e-7 && (o[4] - 0.1).abs() < 1e-7);
        assert_eq!(s.steps(), 3);
    }
}
