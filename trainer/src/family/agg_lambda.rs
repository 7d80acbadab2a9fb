//! λ-conditioned TRIM-Agg: the TRIM-Agg network with one more input, the scaled log λ
//! ([`trim_env::features::lambda_feature`]), so one policy covers a whole λ range. Episodes draw
//! λ from the run's `lambda_range` and are rewarded with it; at serving time the caller names
//! the λ to act at. Same trunk and heads as [`super::agg`]; only the first layer is wider.

use burn::tensor::Device;
use trim_env::features::lambda_feature;
use trim_env::{AGG_DIM, Rng, StepView};
use trim_router::AggNet;

use super::Family;
use crate::config::TrainConfig;
use crate::model::ActorCritic;

/// Width of a conditioned row: the 5 TRIM-Agg features, then the λ input.
pub const AGG_LAMBDA_DIM: usize = AGG_DIM + 1;

/// The λ-conditioned TRIM-Agg family.
pub struct AggLambda;

impl Family for AggLambda {
    const NAME: &'static str = "agg-lambda";
    const OBS_DIM: usize = AGG_LAMBDA_DIM;
    const CONDITIONED: bool = true;
    type Net = ActorCritic;
    type Acting = AggNet;

    #[inline]
    fn observe(view: &StepView<'_>, out: &mut [f32]) {
        out[..AGG_DIM].copy_from_slice(&view.agg());
        out[AGG_DIM] = lambda_feature(view.cond.lambda);
    }

    fn init(cfg: &TrainConfig, rng: &mut Rng, device: &Device) -> Result<ActorCritic, String> {
        Ok(ActorCritic::with_input(
            AGG_LAMBDA_DIM,
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
    use crate::family::GreedyOf;
    use trim_env::{Conditions, FeatureState, Policy};

    #[test]
    fn the_lambda_input_changes_decisions_and_greedy_acts_at_the_given_lambda() {
        let dev = crate::backend::Backend::Flex.device().unwrap();
        let cfg = TrainConfig {
            hidden: 16,
            ..TrainConfig::default()
        };
        let net = AggLambda::init(&cfg, &mut Rng::new(2), &dev).unwrap();
        let acting = AggLambda::acting(&net).unwrap();
        assert_eq!(acting.input_dim(), AGG_LAMBDA_DIM);
        let mut rng = Rng::new(5);
        let mut differ = 0;
        for _ in 0..200 {
            let view = StepView {
                signals: trim_env::Signals::NONE,
                features: FeatureState::new(),
                weak: trim_env::Candidate {
                    tokens: 1 + (rng.f32() * 300.0) as u32,
                    prm: rng.f32(),
                },
                history: &[],
                cond: Conditions::NONE,
            };
            let mut rows = [[0.0f32; AGG_LAMBDA_DIM]; 2];
            for (row, l) in rows.iter_mut().zip([1e-5f32, 1e-2]) {
                AggLambda::observe(
                    &StepView {
                        signals: trim_env::Signals::NONE,
                        cond: Conditions {
                            lambda: l,
                            ..Conditions::NONE
                        },
                        ..view
                    },
                    row,
                );
            }
            assert_eq!(rows[0][AGG_DIM], -1.0);
            assert!((rows[1][AGG_DIM] - 1.0).abs() < 1e-6);
            let lp = |r: &[f32]| acting.log_probs(r, [true, true]).0;
            differ += usize::from(lp(&rows[0]) != lp(&rows[1]));
            for (row, l) in rows.iter().zip([1e-5, 1e-2]) {
                let want = if lp(row)[1] > lp(row)[0] { 1 } else { 0 };
                let a = GreedyOf::<AggLambda>::new(&acting).at_lambda(l).act(
                    &view,
                    [true, true],
                    &mut rng,
                );
                assert_eq!(a as u8, want);
            }
        }
        assert!(
            differ > 150,
            "the λ input moved {differ} of 200 decisions' probabilities"
        );
    }
}
