//! Many independent TRIM-Agg learners stepped at once, at the kernel level (what
//! `trim bench-kernels --population P` measures; whole training runs are stepped together by
//! `trim sweep`'s executor and `trim bench-train --population P`): each member owns its network, minibatch, Adam state and workspace, and members run
//! in parallel over the rayon pool. A member computes exactly what it would alone — nothing is
//! shared between members, and each member's loop is the same code in the same order — so a
//! population is bit-identical to its members trained one by one (tested).

use std::time::Instant;

use rayon::prelude::*;
use trim_env::Rng;

use super::bench::random_minibatch;
use super::learner::{Parts, Stepper};
use super::{Adam, AggParams};
use crate::backend::Backend;
use crate::config::TrainConfig;
use crate::model::ActorCritic;
use crate::ppo::buffer::Minibatch;
use crate::ppo::loss::LossCoefs;

/// One learner: its parameters, optimiser state and scratch, and its minibatch.
pub struct Member {
    pub stepper: Stepper,
    mb: Minibatch,
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
        let adam = Adam::new(&params, cfg.adam_eps as f32, cfg.weight_decay as f32);
        Ok(Member {
            stepper: Stepper::new(params, adam),
            mb,
            coefs: LossCoefs::of(&cfg, cfg.ent_coef_start),
            lr: cfg.lr as f32,
            max_norm: cfg.max_grad_norm as f32,
        })
    }

    /// The member's parameters.
    pub fn params(&self) -> &AggParams {
        &self.stepper.params
    }

    /// One PPO gradient step on the member's minibatch.
    pub fn step(&mut self) {
        self.step_timed(None);
    }

    /// [`Self::step`], adding the seconds of its phases (forward, loss head, backward,
    /// clip + Adam) into `split` when given.
    pub fn step_timed(&mut self, split: Option<&mut [f64; 4]>) {
        self.step_parts(split.map_or(Parts::Pool, Parts::Timed));
    }

    /// One PPO gradient step, its parts run as `parts` says.
    fn step_parts(&mut self, parts: Parts<'_>) {
        (self.stepper).step(&self.mb, self.coefs, self.lr, self.max_norm, parts);
    }
}

/// Seconds per gradient step of one member whose parts run two at a time on both workers of
/// a two-thread pool (the helper spinning between steps): how a single `trim train` run
/// steps. `None` on a machine with fewer than two cores.
pub fn pair_step_seconds(member: &mut Member, steps: usize) -> anyhow::Result<Option<f64>> {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return Ok(None);
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
    Ok(Some(pool.install(|| {
        crate::spin_pair::with_helper(|pair| {
            let start = Instant::now();
            for _ in 0..steps {
                member.step_parts(Parts::Pair(pair));
            }
            start.elapsed().as_secs_f64() / steps as f64
        })
    })))
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
            assert_eq!(bits(member.params()), bits(alone.params()), "member {s}");
        }
        // Members differ from each other (their seeds drew other networks and data).
        assert_ne!(pop[0].params(), pop[1].params());
    }
}
