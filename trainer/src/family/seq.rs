//! TRIM-Seq: a causal transformer over the per-step history (trim-paper.md §2.2; the paper gives
//! no sizes, see `crate::seq_model` for ours). The burn network is
//! [`crate::seq_model::SeqActorCritic`]; its acting copy is `trim_router::SeqNet`, the network
//! a deployed router runs. Observation rows are built by `trim_router::seq::write_row` from
//! the environment's per-step history, so training and serving share one definition.

use burn::tensor::{Device, Tensor};
use trim_env::features::lambda_feature;
use trim_env::{Rng, StepView};
use trim_router::seq::{SEQ_OBS_DIM, SeqNet, write_row};

use super::{ActingNet, Family, TrainNet};
use crate::config::TrainConfig;
use crate::seq_model::SeqActorCritic;

/// The TRIM-Seq family.
pub struct Seq;

impl TrainNet for SeqActorCritic {
    /// Dropout is not used by TRIM-Seq (the configuration refuses `dropout > 0` for it).
    type Dropout = ();

    fn sample_dropout(&self, _: usize, _: f64, _: &mut Rng, _: &Device) {}

    fn forward(&self, obs: Tensor<2>, _: Option<&()>) -> (Tensor<2>, Tensor<1>) {
        SeqActorCritic::forward(self, obs)
    }
}

impl ActingNet for SeqNet {
    #[inline]
    fn log_probs(&self, obs: &[f32], mask: [bool; 2]) -> ([f32; 2], f32) {
        SeqNet::log_probs(self, obs, mask)
    }

    fn named_params(&self) -> Vec<(String, Vec<usize>, &[f32])> {
        SeqNet::named_params(self)
    }
}

impl Family for Seq {
    const NAME: &'static str = "seq";
    const OBS_DIM: usize = SEQ_OBS_DIM;
    type Net = SeqActorCritic;
    type Acting = SeqNet;

    #[inline]
    fn observe(view: &StepView<'_>, out: &mut [f32]) {
        write_row(view.history, view.weak, out);
    }

    fn needs_history() -> bool {
        true
    }

    fn init(cfg: &TrainConfig, rng: &mut Rng, device: &Device) -> Result<SeqActorCritic, String> {
        SeqActorCritic::new(cfg.seq_shape(), rng, device)
    }

    fn acting(net: &SeqActorCritic) -> Result<SeqNet, String> {
        net.try_acting()
    }
}

/// λ-conditioned TRIM-Seq: the TRIM-Seq network whose heads also read the scaled log λ
/// (`trim_router::SeqShape::lambda_input`); the row is TRIM-Seq's followed by the λ input.
pub struct SeqLambda;

impl Family for SeqLambda {
    const NAME: &'static str = "seq-lambda";
    const OBS_DIM: usize = SEQ_OBS_DIM + 1;
    const CONDITIONED: bool = true;
    type Net = SeqActorCritic;
    type Acting = SeqNet;

    #[inline]
    fn observe(view: &StepView<'_>, out: &mut [f32]) {
        write_row(view.history, view.weak, &mut out[..SEQ_OBS_DIM]);
        out[SEQ_OBS_DIM] = lambda_feature(view.cond.lambda);
    }

    fn needs_history() -> bool {
        true
    }

    fn init(cfg: &TrainConfig, rng: &mut Rng, device: &Device) -> Result<SeqActorCritic, String> {
        let shape = trim_router::SeqShape {
            lambda_input: true,
            ..cfg.seq_shape()
        };
        SeqActorCritic::new(shape, rng, device)
    }

    fn acting(net: &SeqActorCritic) -> Result<SeqNet, String> {
        net.try_acting()
    }
}
