//! Many independent TRIM-Agg learners stepped at once (issue 16's population, at the kernel
//! level): each member owns its network, minibatch, Adam state and workspace, and members run
//! in parallel over the rayon pool. A member computes exactly what it would alone — nothing is
//! shared between members, and each member's loop is the same code in the same order — so a
//! population is bit-identical to its members trained one by one (tested).

use std::time::Instant;

use rayon::prelude::*;
use trim_env::Rng;

use super::bench::random_minibatch;
use super::{Adam, AggParams, HeadGrads, PpoBatch, Workspace, clip_grad_norm, ppo_head};
use crate::backend::Backend;
use crate::config::TrainConfig;
use crate::model::ActorCritic;
use crate::ppo::buffer::Minibatch;
use crate::ppo::loss::LossCoefs;

/// One learner: its parameters, optimiser state, minibatch and scratch.
pub struct Member {
    pub params: AggParams,
    adam: Adam,
    mb: Minibatch,
    ws: Workspace,
    head: HeadGrads,
    grads: AggParams,
    coefs: LossCoefs,
    lr: f32,
    max_norm: f32,
}

impl Member {
    /// A member with the trainer's default hyper-parameters, its network and a random
    /// `rows`-step minibatch drawn from `seed`.
    pub fn new(rows: usize, hidden: usize, seed: u64) -> anyhow::Result<Self> {
        let device = Backend::Flex.device()?;
        let mut rng = Rng::new(seed);
        let model = ActorCritic::new(hidden, &mut rng, &device);
        let mb = random_minibatch(&model, rows, &mut rng);
        Self::from_model(&model, mb)
    }

    /// A member starting from `model`'s weights, stepping on `mb`, with the trainer's default
    /// hyper-parameters.
    pub fn from_model(model: &ActorCritic, mb: Minibatch) -> anyhow::Result<Self> {
        let params = super::params_of(model).map_err(anyhow::Error::msg)?;
        let cfg = TrainConfig::default();
        Ok(Member {
            adam: Adam::new(&params, cfg.adam_eps as f32, cfg.weight_decay as f32),
            grads: params.zeros_like(),
            params,
            mb,
            ws: Workspace::default(),
            head: HeadGrads::default(),
            coefs: LossCoefs::of(&cfg, cfg.ent_coef_start),
            lr: cfg.lr as f32,
            max_norm: cfg.max_grad_norm as f32,
        })
    }

    /// One PPO gradient step on the member's minibatch.
    pub fn step(&mut self) {
        self.step_timed(None);
    }

    /// [`Self::step`], adding the seconds of its phases (forward, loss head, backward,
    /// clip + Adam) into `split` when given.
    pub fn step_timed(&mut self, mut split: Option<&mut [f64; 4]>) {
        let mut lap = Lap::new();
        self.ws.forward(&self.params, &self.mb.obs);
        lap.to(&mut split, 0);
        let batch = PpoBatch::of(&self.mb);
        ppo_head(
            &self.ws.logits,
            &self.ws.values,
            &batch,
            self.coefs,
            &mut self.head,
        );
        lap.to(&mut split, 1);
        self.grads.for_each_mut(|g| g.fill(0.0));
        let (d_logits, d_values) = (&self.head.d_logits, &self.head.d_values);
        self.ws.backward(
            &self.params,
            &self.mb.obs,
            d_logits,
            d_values,
            &mut self.grads,
        );
        lap.to(&mut split, 2);
        clip_grad_norm(&mut self.grads, self.max_norm);
        self.adam.step(&mut self.params, &self.grads, self.lr);
        lap.to(&mut split, 3);
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

/// Step every member `steps` times, members in parallel; returns the wall seconds.
pub fn step_all(members: &mut [Member], steps: usize) -> f64 {
    let start = Instant::now();
    members.par_iter_mut().for_each(|m| {
        for _ in 0..steps {
            m.step();
        }
    });
    start.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_population_is_bit_identical_to_its_members_alone() {
        let mut pop: Vec<Member> = (1..=3).map(|s| Member::new(40, 16, s).unwrap()).collect();
        step_all(&mut pop, 5);
        for (s, member) in (1..=3).zip(&pop) {
            let mut alone = Member::new(40, 16, s).unwrap();
            for _ in 0..5 {
                alone.step();
            }
            let bits = |p: &AggParams| {
                p.tensors()
                    .iter()
                    .flat_map(|t| t.iter().map(|x| x.to_bits()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&member.params), bits(&alone.params), "member {s}");
        }
        // Members differ from each other (their seeds drew other networks and data).
        assert_ne!(pop[0].params, pop[1].params);
    }
}
