//! The fused kernels as a PPO learner: [`Stepper`] is one gradient step (forward, loss head,
//! backward, global clip, Adam) over a minibatch, and [`FusedLearner`] runs a whole update
//! (`update_epochs` passes over the rollout buffer in minibatches) exactly as
//! `crate::ppo::Learner` does through burn — same minibatches, same shuffles from the same
//! RNG draws, same statistics — so `trim train` can use either.

use std::time::Instant;

use trim_env::Rng;

use rayon::prelude::*;

use super::loss::ppo_head_part;
use super::{Adam, AggParams, HeadGrads, PpoBatch, Workspace, clip_grad_norm};
use crate::config::TrainConfig;
use crate::ppo::LossStats;
use crate::ppo::buffer::{Minibatch, RolloutBuffer};
use crate::ppo::loss::LossCoefs;
use crate::spin_pair::{SpinPair, join, with_helper};

/// Rows per part of a minibatch. A gradient step computes its parts in parallel (each with its
/// own workspace and gradient buffer) and adds their gradients in part order, so a run's
/// arithmetic depends on this constant only — never on how many threads there are: a run
/// alone on two cores and the same run on a one-thread sweep worker give the same bits.
pub const PART_ROWS: usize = 256;

/// How a gradient step runs its parts.
pub enum Parts<'a> {
    /// In parallel over the rayon pool.
    Pool,
    /// Two parts at a time, the first on this thread and the second on the [`SpinPair`]'s
    /// helper (both here without one): the PPO epochs of [`FusedLearner::update`], which
    /// start the helper.
    Pair(Option<&'a SpinPair>),
    /// One after another, adding the seconds of each phase (forward, loss head, backward,
    /// clip + Adam) into the array.
    Timed(&'a mut [f64; 4]),
}

/// One part's forward activations, loss-head output and gradients.
struct Part {
    ws: Workspace,
    head: HeadGrads,
    grads: AggParams,
}

/// A network's parameters and optimiser state, and the scratch of one gradient step (reused:
/// a step allocates nothing once the buffers have grown to the minibatch).
pub struct Stepper {
    pub params: AggParams,
    pub adam: Adam,
    parts: Vec<Part>,
    /// The whole minibatch's statistics (the parts' added).
    head: HeadGrads,
    grads: AggParams,
}

impl Stepper {
    pub fn new(params: AggParams, adam: Adam) -> Self {
        Stepper {
            grads: params.zeros_like(),
            params,
            adam,
            parts: vec![],
            head: HeadGrads::default(),
        }
    }

    /// The loss and diagnostics of the last step (its gradient vectors are not kept here).
    pub fn head(&self) -> &HeadGrads {
        &self.head
    }

    /// One gradient step on `mb` (at least one row): the parts of [`PART_ROWS`] rows run as
    /// `parts` says, their gradients added in order, then the global clip and Adam. Returns
    /// the gradient norm before clipping. Every way of running the parts gives the same bits.
    pub fn step(
        &mut self,
        mb: &Minibatch,
        coefs: LossCoefs,
        lr: f32,
        max_norm: f32,
        parts: Parts<'_>,
    ) -> f32 {
        let n = mb.len;
        let k = n.div_ceil(PART_ROWS).max(1);
        while self.parts.len() < k {
            self.parts.push(Part {
                ws: Workspace::default(),
                head: HeadGrads::default(),
                grads: self.params.zeros_like(),
            });
        }
        let (params, batch) = (&self.params, PpoBatch::of(mb));
        let dim = params.input_dim();
        let run = |i: usize, part: &mut Part, timer: &mut Option<Timer<'_>>| {
            let rows = i * PART_ROWS..n.min((i + 1) * PART_ROWS);
            let obs = &mb.obs[rows.start * dim..rows.end * dim];
            part.ws.forward(params, obs);
            Timer::mark(timer, 0);
            let (logits, values) = (&part.ws.logits, &part.ws.values);
            let b = batch.rows(rows);
            ppo_head_part(logits, values, &b, coefs, n, &mut part.head);
            Timer::mark(timer, 1);
            part.grads.for_each_mut(|g| g.fill(0.0));
            let (dl, dv) = (&part.head.d_logits, &part.head.d_values);
            part.ws.backward(params, obs, dl, dv, &mut part.grads);
            Timer::mark(timer, 2);
        };
        let mut timer = None;
        match parts {
            Parts::Timed(split) => {
                timer = Some(Timer::new(split));
                for (i, part) in self.parts[..k].iter_mut().enumerate() {
                    run(i, part, &mut timer);
                }
            }
            Parts::Pool => (self.parts[..k].par_iter_mut().enumerate())
                .for_each(|(i, part)| run(i, part, &mut None)),
            // Two parts at a time: the last part is the short one, so three parts (updates of
            // more than 512 steps, about half of the paper schedule's) take two full parts'
            // time, not the three of a first-half/second-half split.
            Parts::Pair(pair) => {
                for (c, two) in self.parts[..k].chunks_mut(2).enumerate() {
                    match two {
                        [a, b] => join(
                            pair,
                            || run(2 * c, a, &mut None),
                            || run(2 * c + 1, b, &mut None),
                        ),
                        one => one.iter_mut().for_each(|a| run(2 * c, a, &mut None)),
                    }
                }
            }
        }
        self.reduce(k);
        let norm = clip_grad_norm(&mut self.grads, max_norm);
        self.adam.step(&mut self.params, &self.grads, lr);
        Timer::mark(&mut timer, 3);
        norm
    }

    /// The gradients and statistics of the first `k` parts, added in part order.
    fn reduce(&mut self, k: usize) {
        self.grads.for_each_mut(|g| g.fill(0.0));
        let mut stats = HeadGrads::default();
        for part in &self.parts[..k] {
            for (g, p) in (self.grads.tensors_mut().into_iter()).zip(part.grads.tensors()) {
                g.iter_mut().zip(p).for_each(|(a, b)| *a += b);
            }
            stats.add_stats(&part.head);
        }
        self.head = stats;
    }
}

/// Seconds per phase of a timed step: each mark adds the time since the previous one.
struct Timer<'a> {
    last: Instant,
    split: &'a mut [f64; 4],
}

impl<'a> Timer<'a> {
    fn new(split: &'a mut [f64; 4]) -> Self {
        Timer {
            last: Instant::now(),
            split,
        }
    }

    /// Add the time since the last mark to phase `k` (nothing when not timing).
    fn mark(timer: &mut Option<Timer<'_>>, k: usize) {
        if let Some(t) = timer {
            let now = Instant::now();
            t.split[k] += (now - t.last).as_secs_f64();
            t.last = now;
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
    /// Dropout is not supported (refused by the configuration). When the pool has an idle
    /// core, a helper there computes every second part of each step ([`Parts::Pair`]).
    pub fn update(
        &mut self,
        buf: &RolloutBuffer,
        cfg: &TrainConfig,
        lr: f64,
        ent_coef: f64,
        rng: &mut Rng,
    ) -> LossStats {
        let coefs = LossCoefs::of(cfg, ent_coef);
        let step = StepArgs {
            coefs,
            lr: lr as f32,
            max_norm: cfg.max_grad_norm as f32,
        };
        let (sum, count) = with_helper(|pair| self.epochs(buf, cfg, step, rng, pair));
        sum.mean_over(count)
    }

    /// The epochs of [`Self::update`]: the statistics summed over its gradient steps, and
    /// their number.
    fn epochs(
        &mut self,
        buf: &RolloutBuffer,
        cfg: &TrainConfig,
        step: StepArgs,
        rng: &mut Rng,
        pair: Option<&SpinPair>,
    ) -> (LossStats, usize) {
        self.order.clear();
        self.order.extend(0..buf.n);
        let mb_size = cfg.minibatch_episodes.min(buf.n).max(1);
        let several = buf.n.div_ceil(mb_size) > 1;
        if !several {
            buf.minibatch(&self.order, &mut self.mb);
        }
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
                let (mb, parts) = (&self.mb, Parts::Pair(pair));
                let norm = (self.stepper).step(mb, step.coefs, step.lr, step.max_norm, parts);
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
        (sum, count)
    }
}

/// A gradient step's loss coefficients, learning rate and clipping norm.
#[derive(Clone, Copy)]
struct StepArgs {
    coefs: LossCoefs,
    lr: f32,
    max_norm: f32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::bench::random_minibatch;
    use crate::fused::ppo_head;

    fn setup(rows: usize) -> (Stepper, Minibatch, LossCoefs) {
        let dev = crate::backend::Backend::Flex.device().unwrap();
        let mut rng = Rng::new(21);
        let model = crate::model::ActorCritic::new(16, &mut rng, &dev);
        let mb = random_minibatch(&model, rows, &mut rng);
        let p = crate::fused::params_of(&model).unwrap();
        let cfg = TrainConfig::default();
        let coefs = LossCoefs::of(&cfg, cfg.ent_coef_start);
        (FusedLearner::fresh(p, &cfg).stepper, mb, coefs)
    }

    fn bits(p: &AggParams) -> Vec<u32> {
        (p.tensors().iter())
            .flat_map(|t| t.iter().map(|x| x.to_bits()))
            .collect()
    }

    /// A step split into parts gives the same bits on one thread, on the pool, timed (parts
    /// one after another), and shared with a spinning helper or not: the arithmetic depends on
    /// `PART_ROWS` only.
    #[test]
    fn a_parted_step_is_the_same_on_any_number_of_threads() {
        let rows = 2 * PART_ROWS + 37;
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let mut runs = vec![];
        for how in 0..5 {
            let (mut s, mb, c) = setup(rows);
            for _ in 0..3 {
                match how {
                    0 => one_thread.install(|| s.step(&mb, c, 1e-3, 0.5, Parts::Pool)),
                    1 => s.step(&mb, c, 1e-3, 0.5, Parts::Pool),
                    2 => s.step(&mb, c, 1e-3, 0.5, Parts::Timed(&mut [0.0; 4])),
                    3 => with_helper(|p| s.step(&mb, c, 1e-3, 0.5, Parts::Pair(p))),
                    _ => s.step(&mb, c, 1e-3, 0.5, Parts::Pair(None)),
                };
            }
            runs.push((bits(&s.params), s.head().loss.to_bits()));
        }
        for r in &runs[1..] {
            assert_eq!(runs[0], *r);
        }
    }

    /// The parts' gradients and statistics add up to the whole minibatch's (computed in one
    /// piece), to float rounding.
    #[test]
    fn the_parts_add_up_to_the_whole_minibatch() {
        let rows = 2 * PART_ROWS + 37;
        let (mut s, mb, c) = setup(rows);
        let p0 = s.params.clone();
        // The whole minibatch at once: forward, head, backward.
        let mut ws = Workspace::default();
        ws.forward(&p0, &mb.obs);
        let mut head = HeadGrads::default();
        ppo_head(&ws.logits, &ws.values, &PpoBatch::of(&mb), c, &mut head);
        let mut whole = p0.zeros_like();
        ws.backward(&p0, &mb.obs, &head.d_logits, &head.d_values, &mut whole);
        // Clipping off (huge max norm) so the parted step's gradient is the raw one.
        s.step(&mb, c, 1e-3, f32::MAX, Parts::Pool);
        for (a, b) in s.grads.tensors().iter().zip(whole.tensors()) {
            let scale = b.iter().fold(1e-6f32, |m, x| m.max(x.abs()));
            for (x, y) in a.iter().zip(b.iter()) {
                assert!((x - y).abs() <= 1e-5 * scale, "{x} vs {y}");
            }
        }
        assert!((s.head().loss - head.loss).abs() < 1e-9 * (1.0 + head.loss.abs()));
        assert!((s.head().entropy - head.entropy).abs() < 1e-9);
        assert_eq!(s.head().clip_fraction, head.clip_fraction);
    }
}
