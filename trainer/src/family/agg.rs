//! TRIM-Agg: the release's actor-critic MLP over the 5 aggregated features (reference §2.3).
//! The burn network is [`crate::model::ActorCritic`]; its acting copy is `trim_router::AggNet`,
//! the network a deployed router runs.

use burn::tensor::{Device, Tensor};
use trim_env::{AGG_DIM, Rng, StepView};
use trim_router::AggNet;
use trim_router::agg_rows::RowsScratch;

use super::{ActingNet, Family, TrainNet};
use crate::config::TrainConfig;
use crate::model::{ActorCritic, DropoutMasks};

/// The TRIM-Agg family.
pub struct Agg;

impl TrainNet for ActorCritic {
    type Dropout = DropoutMasks;

    fn sample_dropout(&self, n: usize, p: f64, rng: &mut Rng, device: &Device) -> DropoutMasks {
        DropoutMasks::sample(n, self.hidden(), p, rng, device)
    }

    fn forward(&self, obs: Tensor<2>, drop: Option<&DropoutMasks>) -> (Tensor<2>, Tensor<1>) {
        ActorCritic::forward(self, obs, drop)
    }

    fn fused_params(&self) -> Option<Result<crate::fused::AggParams, String>> {
        Some(crate::fused::params_of(self))
    }

    fn with_fused_params(&self, p: &crate::fused::AggParams) -> Self {
        self.with_params(p)
    }
}

impl ActingNet for AggNet {
    #[inline]
    fn log_probs(&self, obs: &[f32], mask: [bool; 2]) -> ([f32; 2], f32) {
        assert_eq!(obs.len(), self.input_dim(), "row width of this network");
        AggNet::log_probs(self, obs, mask)
    }

    /// The live rows through the batched network (bit-identical per row, tested in
    /// `trim-router`).
    fn log_probs_rows(
        &self,
        obs: &[f32],
        mask: &[bool],
        alive: &[bool],
        scratch: &mut RowsScratch,
        out: &mut Vec<([f32; 2], f32)>,
    ) {
        AggNet::log_probs_rows(self, obs, mask, Some(alive), scratch, out);
    }

    fn rows_cost(&self, live: usize) -> usize {
        trim_router::agg_rows::rows_cost(live)
    }

    fn named_params(&self) -> Vec<(String, Vec<usize>, &[f32])> {
        AggNet::named_params(self)
    }
}

impl Family for Agg {
    const NAME: &'static str = "agg";
    const OBS_DIM: usize = AGG_DIM;
    type Net = ActorCritic;
    type Acting = AggNet;

    #[inline]
    fn observe(view: &StepView<'_>, out: &mut [f32]) {
        out.copy_from_slice(&view.agg());
    }

    fn init(cfg: &TrainConfig, rng: &mut Rng, device: &Device) -> Result<ActorCritic, String> {
        Ok(ActorCritic::new(cfg.hidden, rng, device))
    }

    fn acting(net: &ActorCritic) -> Result<AggNet, String> {
        net.try_weights()
    }

    fn acting_from_fused(p: &crate::fused::AggParams) -> Option<Result<AggNet, String>> {
        Some(p.acting())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::GreedyOf;
    use trim_env::{FeatureState, Policy};

    #[test]
    fn generic_greedy_is_the_argmax_of_the_masked_policy() {
        let dev = crate::backend::Backend::Flex.device().unwrap();
        let cfg = TrainConfig {
            hidden: 16,
            ..TrainConfig::default()
        };
        let net = Agg::init(&cfg, &mut Rng::new(2), &dev).unwrap();
        let acting = Agg::acting(&net).unwrap();
        let mut rng = Rng::new(3);
        for i in 0..200 {
            let mut features = FeatureState::new();
            for _ in 0..i % 7 {
                features.push(rng.f32());
            }
            let view = StepView {
                signals: trim_env::Signals::NONE,
                features,
                weak: trim_env::Candidate {
                    tokens: 1 + (rng.f32() * 400.0) as u32,
                    prm: rng.f32(),
                },
                history: &[],
                cond: trim_env::Conditions::NONE,
            };
            for mask in [[true, true], [true, false], [false, true]] {
                let a = GreedyOf::<Agg>::new(&acting).act(&view, mask, &mut rng);
                let (lp, _) = acting.log_probs(&view.agg(), mask);
                let b = if lp[1] > lp[0] {
                    trim_env::Action::Regenerate
                } else {
                    trim_env::Action::Continue
                };
                assert_eq!(a, b);
            }
        }
    }
}
