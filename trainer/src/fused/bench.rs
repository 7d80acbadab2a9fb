//! `trim bench-kernels`: one PPO gradient step of TRIM-Agg (forward, loss, backward, global
//! clip, Adam) through burn — the trainer's path today — and through the fused kernels, on the
//! same network and minibatch, with the fused step's time split by phase.

use std::time::Instant;

use burn::optim::GradientsParams;
use trim_env::{AGG_DIM, Rng};

use super::{Adam, AggParams, HeadGrads, PpoBatch, Workspace, clip_grad_norm, ppo_head};
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
    let p = AggParams::from_named(AGG_DIM, model.hidden(), {
        let mut t = model.torch_params();
        move |name, _| t.take(name)
    })
    .unwrap();
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
    let cfg = TrainConfig::default();
    let coefs = LossCoefs {
        clip_coef: cfg.clip_coef as f32,
        vf_clip: cfg.vf_clip as f32,
        vf_coef: cfg.vf_coef as f32,
        ent_coef: cfg.ent_coef_start as f32,
    };
    let (lr, max_norm) = (cfg.lr, cfg.max_grad_norm as f32);
    let mut tp = model.torch_params();
    let mut p = AggParams::from_named(AGG_DIM, hidden, |name, _| tp.take(name))
        .map_err(anyhow::Error::msg)?;
    // burn: the trainer's update path.
    let mut optim = optimizer(&cfg);
    let t = MinibatchTensors::new(&mb, AGG_DIM, &device);
    let start = Instant::now();
    for _ in 0..steps {
        let out = ppo_loss(&model, &t, coefs, None);
        let mut grads = GradientsParams::from_grads(out.loss.backward(), &model);
        burn_clip(&model, &mut grads, max_norm);
        model = optim.step(lr, model, grads);
    }
    let burn_s = start.elapsed().as_secs_f64() / steps as f64;
    // fused
    let mut adam = Adam::new(&p, cfg.adam_eps as f32, cfg.weight_decay as f32);
    let (mut ws, mut head, mut g) = (Workspace::default(), HeadGrads::default(), p.zeros_like());
    let batch = PpoBatch::of(&mb);
    let mut split = [0.0f64; 4];
    let whole = Instant::now();
    for _ in 0..steps {
        let t0 = Instant::now();
        ws.forward(&p, &mb.obs);
        let t1 = Instant::now();
        ppo_head(&ws.logits, &ws.values, &batch, coefs, &mut head);
        let t2 = Instant::now();
        g.for_each_mut(|x| x.fill(0.0));
        ws.backward(&p, &mb.obs, &head.d_logits, &head.d_values, &mut g);
        let t3 = Instant::now();
        clip_grad_norm(&mut g, max_norm);
        adam.step(&mut p, &g, lr as f32);
        let t4 = Instant::now();
        for (s, d) in split.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
            *s += d.as_secs_f64();
        }
    }
    let fused_s = whole.elapsed().as_secs_f64() / steps as f64;
    let per = |x: f64| x / steps as f64;
    let macs = rows * (AGG_DIM * hidden + 3 * hidden * hidden + 3 * hidden);
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
        flop_per_step: 2.0 * 3.0 * macs as f64,
    })
}
