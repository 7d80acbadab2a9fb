//! One PPO update: `update_epochs` passes over the batch in minibatches of whole episodes,
//! each a loss, a backward pass, a global gradient-norm clip and an Adam step.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use trim_env::Rng;

use super::buffer::{Minibatch, RolloutBuffer};
use super::loss::{LossCoefs, LossTerms, MinibatchTensors, ppo_loss};
use super::stats::LossStats;
use crate::config::TrainConfig;
use crate::family::TrainNet;
use crate::fused::{Adam, AggParams, FusedLearner};

/// The checkpoint file holding a fused run's Adam state.
pub const FUSED_ADAM: &str = "fused_adam.bin";

/// The model and its optimiser: everything the update changes. Generic over the family's
/// network, so every PPO-trained family shares this update.
pub struct Learner<N: TrainNet> {
    pub model: N,
    /// burn's Adam state (empty, never stepped, when the run uses the fused kernels).
    pub optim: ModuleOptimizer,
    /// With the fused kernels (config `kernels`): the parameters and Adam state the updates
    /// change; `model` is refreshed from them by [`Self::sync_model`] (before a checkpoint),
    /// not after every update.
    pub fused: Option<FusedLearner>,
    pub device: Device,
}

/// Adam with the release's settings (β = 0.9/0.999, `adam_eps`, L2 `weight_decay` added to the
/// gradient as `torch.optim.Adam` does). Gradient clipping is global and done by [`Learner`],
/// because burn's built-in clipping is per parameter tensor.
pub fn optimizer(cfg: &TrainConfig) -> ModuleOptimizer {
    let wd = (cfg.weight_decay > 0.0).then(|| WeightDecayConfig::new(cfg.weight_decay as f32));
    AdamConfig::new()
        .with_epsilon(cfg.adam_eps as f32)
        .with_weight_decay(wd)
        .init()
}

/// Sum of squared gradient entries over all parameters.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

/// Multiply every gradient by `scale`.
struct Scale<'a> {
    grads: &'a mut GradientsParams,
    scale: f32,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.scale));
        }
    }
}

/// `torch.nn.utils.clip_grad_norm_`: scale all gradients together so their global L2 norm is
/// at most `max_norm`. Returns the norm before clipping.
pub fn clip_grad_norm<M: Module>(model: &M, grads: &mut GradientsParams, max_norm: f32) -> f32 {
    let mut v = SquaredNorm { grads, total: None };
    model.visit(&mut v);
    let norm = v
        .total
        .map(|t| t.sqrt().into_scalar::<f32>())
        .unwrap_or(0.0);
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        model.visit(&mut Scale { grads, scale: coef });
    }
    norm
}

impl<N: TrainNet> Learner<N> {
    /// A new learner around `model` (on `device`, an autodiff device), with the kernels `cfg`
    /// asks for.
    pub fn new(model: N, cfg: &TrainConfig, device: Device) -> Result<Self, String> {
        let fused = Self::fused_params(&model, cfg)?.map(|p| FusedLearner::fresh(p, cfg));
        Ok(Learner {
            model,
            optim: optimizer(cfg),
            fused,
            device,
        })
    }

    /// A learner continuing from a checkpoint: burn's optimiser state, or for a run with the
    /// fused kernels the fused Adam state (`fused_adam`, a checkpoint's `fused_adam.bin`).
    /// A checkpoint whose optimiser state does not match the run's kernels is refused.
    pub fn resumed(
        model: N,
        optim: ModuleOptimizer,
        fused_adam: Option<&[u8]>,
        cfg: &TrainConfig,
        device: Device,
    ) -> Result<Self, String> {
        let fused = match (Self::fused_params(&model, cfg)?, fused_adam) {
            (Some(p), Some(bytes)) => {
                let adam = Adam::from_bytes(bytes, &p).map_err(|e| format!("{FUSED_ADAM}: {e}"))?;
                Some(FusedLearner::new(p, adam))
            }
            (Some(_), None) => {
                return Err(format!(
                    "the run trains with the fused kernels but the checkpoint has no \
                     {FUSED_ADAM}: its optimiser state is burn's, so this checkpoint was not \
                     written by this run (edited or copied in); resume from another one"
                ));
            }
            (None, Some(_)) => {
                return Err(format!(
                    "the checkpoint holds fused Adam state ({FUSED_ADAM}) but the run trains \
                     with burn's kernels, so this checkpoint was not written by this run \
                     (edited or copied in); resume from another one"
                ));
            }
            (None, None) => None,
        };
        Ok(Learner {
            model,
            optim,
            fused,
            device,
        })
    }

    /// The network's fused parameters when `cfg` trains with the fused kernels.
    fn fused_params(model: &N, cfg: &TrainConfig) -> Result<Option<AggParams>, String> {
        if !cfg.fused_kernels()? {
            return Ok(None);
        }
        match model.fused_params() {
            Some(p) => p.map(Some),
            None => Err("kernels = fused: this family has no fused kernels".into()),
        }
    }

    /// Bring `model` up to date with the fused kernels' parameters (a no-op for burn's
    /// kernels, where `model` is what the updates change).
    pub fn sync_model(&mut self) {
        if let Some(f) = &self.fused {
            self.model = self.model.with_fused_params(f.params());
        }
    }

    /// The fused Adam state as a checkpoint stores it, for a run with the fused kernels.
    pub fn fused_adam_bytes(&self) -> Option<Vec<u8>> {
        self.fused.as_ref().map(|f| f.stepper.adam.to_bytes())
    }

    /// Run the PPO epochs over `buf` (advantages already computed) with learning rate `lr` and
    /// entropy coefficient `ent_coef`. `rng` shuffles episodes between minibatches (only when
    /// there is more than one) and draws dropout masks (only when `cfg.dropout > 0`).
    pub fn update(
        &mut self,
        buf: &RolloutBuffer,
        cfg: &TrainConfig,
        lr: f64,
        ent_coef: f64,
        rng: &mut Rng,
    ) -> LossStats {
        if let Some(f) = &mut self.fused {
            return f.update(buf, cfg, lr, ent_coef, rng);
        }
        let coefs = LossCoefs::of(cfg, ent_coef);
        let mut order: Vec<usize> = (0..buf.n).collect();
        let mb_size = cfg.minibatch_episodes.min(buf.n).max(1);
        let n_mb = buf.n.div_ceil(mb_size);
        let mut mb = Minibatch::default();
        // One minibatch: the tensors are the same every epoch; upload once.
        let fixed = (n_mb == 1).then(|| {
            buf.minibatch(&order, &mut mb);
            MinibatchTensors::new(&mb, buf.obs_dim, &self.device)
        });
        let mut terms: Option<LossTerms> = None;
        let mut grad_norms = 0.0f64;
        let mut count = 0usize;
        for _ in 0..cfg.update_epochs {
            if n_mb > 1 {
                rng.shuffle(&mut order);
            }
            for chunk in order.chunks(mb_size) {
                let owned;
                let t = match &fixed {
                    Some(t) => t,
                    None => {
                        buf.minibatch(chunk, &mut mb);
                        owned = MinibatchTensors::new(&mb, buf.obs_dim, &self.device);
                        &owned
                    }
                };
                if t.len == 0 {
                    continue;
                }
                let drop = (cfg.dropout > 0.0).then(|| {
                    self.model
                        .sample_dropout(t.len, cfg.dropout, rng, &self.device)
                });
                let out = ppo_loss(&self.model, t, coefs, drop.as_ref());
                let mut grads = GradientsParams::from_grads(out.loss.backward(), &self.model);
                let norm = clip_grad_norm(&self.model, &mut grads, cfg.max_grad_norm as f32);
                self.model = self.optim.step(lr, self.model.clone(), grads);
                terms = Some(match terms.take() {
                    Some(t) => t + out.terms,
                    None => out.terms,
                });
                grad_norms += f64::from(norm);
                count += 1;
            }
        }
        terms.map_or_else(LossStats::default, |t| t.mean(count, grad_norms))
    }
}
