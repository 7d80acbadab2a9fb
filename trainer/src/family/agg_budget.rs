//! Budget-aware TRIM-Agg: the TRIM-Agg network with two more inputs, the episode's remaining
//! strong-token budget as a fraction of its budget and in thousands of tokens
//! ([`trim_env::features::budget_features`]), so one policy serves many per-request budgets.
//! Episodes draw a budget from the run's `budget_range` and replay under it (`regenerate` is
//! masked once the strong step no longer fits); at serving time a decision without a budget is
//! refused.

use burn::tensor::Device;
use trim_env::features::budget_features;
use trim_env::{AGG_DIM, Rng, StepView};
use trim_router::AggNet;

use super::Family;
use crate::config::TrainConfig;
use crate::model::ActorCritic;

/// Width of a budget-aware row: the 5 TRIM-Agg features, then the two budget inputs.
pub const AGG_BUDGET_DIM: usize = AGG_DIM + 2;

/// The budget-aware TRIM-Agg family.
pub struct AggBudget;

impl Family for AggBudget {
    const NAME: &'static str = "agg-budget";
    const OBS_DIM: usize = AGG_BUDGET_DIM;
    const BUDGETED: bool = true;
    type Net = ActorCritic;
    type Acting = AggNet;

    #[inline]
    fn observe(view: &StepView<'_>, out: &mut [f32]) {
        out[..AGG_DIM].copy_from_slice(&view.agg());
        let b = budget_features(view.cond.budget_left, view.cond.budget);
        out[AGG_DIM..AGG_BUDGET_DIM].copy_from_slice(&b);
    }

    fn init(cfg: &TrainConfig, rng: &mut Rng, device: &Device) -> Result<ActorCritic, String> {
        Ok(ActorCritic::with_input(
            AGG_BUDGET_DIM,
            cfg.hidden,
            rng,
            device,
        ))
    }

    fn acting(net: &ActorCritic) -> Result<AggNet, String> {
        super::agg::Agg::acting(net)
    }

    fn acting_from_fused(p: &crate::fused::AggParams) -> Option<Result<AggNet, String>> {
        Some(p.acting())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trim_env::features::BUDGET_SCALE;
    use trim_env::{Conditions, FeatureState};

    #[test]
    fn budget_inputs_are_the_fraction_left_and_the_tokens_left() {
        let view = |left: u64, budget: u64| StepView {
            signals: trim_env::Signals::NONE,
            features: FeatureState::new(),
            weak: trim_env::Candidate {
                tokens: 30,
                prm: 0.5,
            },
            history: &[],
            cond: Conditions {
                budget_left: left,
                budget,
                ..Conditions::NONE
            },
        };
        let mut row = [0.0f32; AGG_BUDGET_DIM];
        AggBudget::observe(&view(150, 600), &mut row);
        assert_eq!(row[AGG_DIM], 0.25);
        assert_eq!(row[AGG_DIM + 1], 150.0 / BUDGET_SCALE);
        AggBudget::observe(&view(0, 0), &mut row);
        assert_eq!(&row[AGG_DIM..], &[0.0, 0.0]);
        AggBudget::observe(&view(600, 600), &mut row);
        assert_eq!(row[AGG_DIM], 1.0);
    }
}
