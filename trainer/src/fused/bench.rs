//! `trim bench-kernels`: one PPO gradient step of TRIM-Agg (forward, loss, backward, global
//! clip, Adam) through burn — the trainer's path today — and through the fused kernels, on the
//! same network and minibatch, with the fused step's time split by phase.

use std::time::Instant;

use burn::optim::GradientsParams;
use trim_env::{AGG_DIM, Rng};

use super::Workspace;
use super::population::Member;
use crate::backend::Backend;
use crate::config::TrainConfig;
use crate::model::ActorCritic;
use crate::ppo::buffer::Minibatch;
use crate::ppo::loss::{LossCoefs, MinibatchTensors, ppo_loss};
use crate::ppo::update::{clip_grad_norm as burn_clip, optimizer};

/// A minibatch of `n` random steps whose old log-probabilities and values sit near the model's
/// own (so some ratios and values clip and others do not), with some single-action masks.
pub fn random_minibatch(model: &ActorCritic, n: usize, rng: &mut Rng) -> Minibatch {
    let obs: Vec<f32> = (0..n * AGG_DIM).map(|_| rng.f32()).collect();
    let p = super::params_of(model).expect("a network this crate built");
    let mut ws = Workspace::default();
    ws.forward(&p, &obs);
    let mut mb = Minibatch {
        len: n,
        obs,
        ..Minibatch::default()
    };
    for r in 0..n {
        let mask = match rng.below(5) {
            0 => [true, false],
            1 => [false, true],
            _ => [true, true],
        };
        let a = if mask[0] && mask[1] {
            rng.below(2) as usize
        } else {
            usize::from(mask[1])
        };
        mb.mask.extend(mask);
        mb.actions.push(a as i64);
        let l = &ws.logits[r * 2..r * 2 + 2];
        let lp = if mask[0] && mask[1] {
            let m = l[0].max(l[1]);
            l[a] - (m + ((l[0] - m).exp() + (l[1] - m).exp()).ln())
        } else {
            0.0
        };
        mb.logp.push(lp + 0.6 * (rng.f32() - 0.5));
        mb.values.push(ws.values[r] + 0.8 * (rng.f32() - 0.5));
        mb.advantages.push(rng.normal() as f32);
        mb.returns.push(2.0 * rng.f32() - 0.5);
    }
    mb
}

/// Seconds per gradient step, through burn and fused, and the fused split.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct KernelTimes {
    pub rows: usize,
    pub hidden: usize,
    pub steps: usize,
    pub burn_s: f64,
    pub fused_s: f64,
    pub fused_forward_s: f64,
    pub fused_head_s: f64,
    pub fused_backward_s: f64,
    pub fused_optim_s: f64,
    /// The fused step of one learner over both cores (its parts two at a time), as a single
    /// training run steps; `None` with fewer than two cores.
    pub fused_two_cores_s: Option<f64>,
    /// Multiply-adds of one step ×2 (forward + backward ≈ 3 forwards).
    pub flop_per_step: f64,
}

/// Time `steps` gradient steps on a random `rows`-step minibatch of a `hidden`-wide network.
pub fn time_steps(
    rows: usize,
    hidden: usize,
    steps: usize,
    seed: u64,
) -> anyhow::Result<KernelTimes> {
    let device = Backend::Flex.train_device()?;
    let mut rng = Rng::new(seed);
    let mut model = ActorCritic::new(hidden, &mut rng, &device);
    let mb = random_minibatch(&model, rows, &mut rng);
    let mut member = Member::from_model(&model, mb.clone())?;
    let mut pair = Member::from_model(&model, mb.clone())?;
    let cfg = TrainConfig::default();
    let coefs = LossCoefs::of(&cfg, cfg.ent_coef_start);
    // burn: the trainer's update path.
    let mut optim = optimizer(&cfg);
    let t = MinibatchTensors::new(&mb, AGG_DIM, &device);
    let start = Instant::now();
    for _ in 0..steps {
        let out = ppo_loss(&model, &t, coefs, None);
        let mut grads = GradientsParams::from_grads(out.loss.backward(), &model);
        burn_clip(&model, &mut grads, cfg.max_grad_norm as f32);
        model = optim.step(cfg.lr, model, grads);
    }
    let burn_s = start.elapsed().as_secs_f64() / steps as f64;
    // fused: the same network, minibatch and settings.
    let mut split = [0.0f64; 4];
    let whole = Instant::now();
    for _ in 0..steps {
        member.step_timed(Some(&mut split));
    }
    let fused_s = whole.elapsed().as_secs_f64() / steps as f64;
    let fused_two_cores_s = super::population::pair_step_seconds(&mut pair, steps)?;
    let per = |x: f64| x / steps as f64;
    Ok(KernelTimes {
        rows,
        hidden,
        steps,
        burn_s,
        fused_s,
        fused_forward_s: per(split[0]),
        fused_head_s: per(split[1]),
        fused_backward_s: per(split[2]),
        fused_optim_s: per(split[3]),
        fused_two_cores_s,
        flop_per_step: rows as f64 * flop_per_row(AGG_DIM, hidden),
    })
}

/// Floating-point operations of one PPO gradient step per minibatch row of the TRIM-Agg
/// network (`input` features, width `hidden`): the dense layers' multiply-adds, ×2 for FLOP,
/// ×3 for forward + backward (LayerNorm, tanh and the loss head are not counted).
pub fn flop_per_row(input: usize, hidden: usize) -> f64 {
    let macs = input * hidden + 3 * hidden * hidden + 3 * hidden;
    2.0 * 3.0 * macs as f64
}
