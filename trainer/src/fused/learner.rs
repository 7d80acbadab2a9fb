//! The fused kernels as a PPO learner: [`Stepper`] is one gradient step (forward, loss head,
//! backward, global clip, Adam) over a minibatch, and [`FusedLearner`] runs a whole update
//! (`update_epochs` passes over the rollout buffer in minibatches) exactly as
//! `crate::ppo::Learner` does through burn — same minibatches, same shuffles from the same
//! RNG draws, same statistics — so `trim train` can use either.

use std::time::Instant;

use trim_env::Rng;

use super::{Adam, AggParams, HeadGrads, PpoBatch, Workspace, clip_grad_norm, ppo_head};
use crate::config::TrainConfig;
use crate::ppo::LossStats;
use crate::ppo::buffer::{Minibatch, RolloutBuffer};
use crate::ppo::loss::LossCoefs;

/// A network's parameters and optimiser state, and the scratch of one gradient step (reused:
/// a step allocates nothing once the buffers have grown to the minibatch).
pub struct Stepper {
    pub params: AggParams,
    pub adam: Adam,
    ws: Workspace,
    head: HeadGrads,
    grads: AggParams,
}

impl Stepper {
    pub fn new(params: AggParams, adam: Adam) -> Self {
        Stepper {
            grads: params.zeros_like(),
            params,
            adam,
            ws: Workspace::default(),
            head: HeadGrads::default(),
        }
    }

    /// The loss and diagnostics of the last step.
    pub fn head(&self) -> &HeadGrads {
        &self.head
    }

    /// One gradient step on `mb` (at least one row). Returns the gradient norm before
    /// clipping; with `split`, adds the seconds of the phases (forward, loss head, backward,
    /// clip + Adam) into it.
    pub fn step(
        &mut self,
        mb: &Minibatch,
        coefs: LossCoefs,
        lr: f32,
        max_norm: f32,
        mut split: Option<&mut [f64; 4]>,
    ) -> f32 {
        let mut lap = Lap::new();
        self.ws.forward(&self.params, &mb.obs);
        lap.to(&mut split, 0);
        let (logits, values) = (&self.ws.logits, &self.ws.values);
        ppo_head(logits, values, &PpoBatch::of(mb), coefs, &mut self.head);
        lap.to(&mut split, 1);
        self.grads.for_each_mut(|g| g.fill(0.0));
        let (d_logits, d_values) = (&self.head.d_logits, &self.head.d_values);
        let grads = &mut self.grads;
        self.ws
            .backward(&self.params, &mb.obs, d_logits, d_values, grads);
        lap.to(&mut split, 2);
        let norm = clip_grad_norm(&mut self.grads, max_norm);
        self.adam.step(&mut self.params, &self.grads, lr);
        lap.to(&mut split, 3);
        norm
    }
}

/// A stopwatch read between phases (only when a split is wanted).
struct Lap(Instant);

impl Lap {
    fn new() -> Self {
        Lap(Instant::now())
    }

    /// Add the time since the last lap to `split[k]` and restart.
    fn to(&mut self, split: &mut Option<&mut [f64; 4]>, k: usize) {
        if let Some(s) = split.as_deref_mut() {
            let now = Instant::now();
            s[k] += (now - self.0).as_secs_f64();
            self.0 = now;
        }
    }
}

/// PPO updates through the fused kernels: the counterpart of `crate::ppo::Learner::update`.
pub struct FusedLearner {
    pub stepper: Stepper,
    mb: Minibatch,
    order: Vec<usize>,
}

impl FusedLearner {
    /// A learner starting from `params` with optimiser state `adam`.
    pub fn new(params: AggParams, adam: Adam) -> Self {
        FusedLearner {
            stepper: Stepper::new(params, adam),
            mb: Minibatch::default(),
            order: vec![],
        }
    }

    /// Fresh Adam state for `params` with `cfg`'s settings.
    pub fn fresh(params: AggParams, cfg: &TrainConfig) -> Self {
        let adam = Adam::new(&params, cfg.adam_eps as f32, cfg.weight_decay as f32);
        Self::new(params, adam)
    }

    /// The current parameters.
    pub fn params(&self) -> &AggParams {
        &self.stepper.params
    }

    /// The PPO epochs over `buf` (advantages computed): as `crate::ppo::Learner::update`,
    /// episodes shuffled with `rng` between minibatches only when there is more than one.
    /// Dropout is not supported (refused by the configuration).
    pub fn update(
        &mut self,
        buf: &RolloutBuffer,
        cfg: &TrainConfig,
        lr: f64,
        ent_coef: f64,
        rng: &mut Rng,
    ) -> LossStats {
        let coefs = LossCoefs::of(cfg, ent_coef);
        self.order.clear();
        self.order.extend(0..buf.n);
        let mb_size = cfg.minibatch_episodes.min(buf.n).max(1);
        let several = buf.n.div_ceil(mb_size) > 1;
        if !several {
            buf.minibatch(&self.order, &mut self.mb);
        }
        let (lr, max_norm) = (lr as f32, cfg.max_grad_norm as f32);
        let mut sum = LossStats::default();
        let mut count = 0usize;
        for _ in 0..cfg.update_epochs {
            if several {
                rng.shuffle(&mut self.order);
            }
            for k in (0..buf.n).step_by(mb_size) {
                if several {
                    let chunk = &self.order[k..(k + mb_size).min(buf.n)];
                    buf.minibatch(chunk, &mut self.mb);
                }
                if self.mb.len == 0 {
                    continue;
                }
                let norm = self.stepper.step(&self.mb, coefs, lr, max_norm, None);
                let h = self.stepper.head();
                sum.policy_loss += h.policy_loss;
                sum.value_loss += h.value_loss;
                sum.entropy += h.entropy;
                sum.approx_kl += h.approx_kl;
                sum.clip_fraction += h.clip_fraction;
                sum.grad_norm += f64::from(norm);
                count += 1;
            }
        }
        let c = count.max(1) as f64;
        LossStats {
            policy_loss: sum.policy_loss / c,
            value_loss: sum.value_loss / c,
            entropy: sum.entropy / c,
            approx_kl: sum.approx_kl / c,
            clip_fraction: sum.clip_fraction / c,
            grad_norm: sum.grad_norm / c,
        }
    }
}
