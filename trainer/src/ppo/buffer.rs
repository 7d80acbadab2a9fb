//! The rollout buffer: one batch of episodes collected in lock-step from the batched env.
//!
//! Plain `Vec`s, time-major (`t * n + b`, CleanRL's `[num_steps, num_envs]`), padded to the
//! longest episode of the batch with a validity mask — the layout of the release and of
//! [`compute_gae`]. Each column `b` is exactly one episode starting at `t = 0`. Only the valid
//! steps of a minibatch ever become tensors ([`RolloutBuffer::minibatch`]).

use trim_env::{Action, EpisodeOutcome, Rng, VecEnv, World};

use super::gae::{compute_gae, normalize_valid};
use super::guard::check_output;
use super::rows_pair::RowsPair;
use crate::error::Result;
use crate::family::Family;
use crate::model::sample_action;
use crate::spin_pair::{SpinPair, with_helper};

/// One batch of episodes and everything PPO needs about each step.
#[derive(Clone, Debug, Default)]
pub struct RolloutBuffer {
    /// Episodes (columns).
    pub n: usize,
    /// Rows (time steps) filled: the longest episode.
    pub t_len: usize,
    /// Width of one observation row (the family's `OBS_DIM`).
    pub obs_dim: usize,
    /// # Shapes
    /// `[t_len * n * obs_dim]`
    pub obs: Vec<f32>,
    /// `[t_len * n * 2]`, true = available.
    pub mask: Vec<bool>,
    /// `[t_len * n]`: 0 = continue, 1 = regenerate.
    pub actions: Vec<u8>,
    /// `[t_len * n]`: log-probability of the taken action under the rollout policy.
    pub logp: Vec<f32>,
    /// `[t_len * n]`: V(s) under the rollout policy.
    pub values: Vec<f32>,
    /// `[t_len * n]`
    pub rewards: Vec<f32>,
    /// `[t_len * n]`: the episode ended with this step.
    pub dones: Vec<bool>,
    /// `[t_len * n]`: a real step (false = padding).
    pub valid: Vec<bool>,
    /// `[t_len * n]`: GAE advantages (normalised if asked) after [`Self::finish`].
    pub advantages: Vec<f32>,
    /// `[t_len * n]`: value targets = raw advantages + values.
    pub returns: Vec<f32>,
    /// `[n]`: how each episode ended.
    pub outcomes: Vec<EpisodeOutcome>,
    /// The λ each episode was rewarded with (one per episode, after `collect`).
    pub lambdas: Vec<f32>,
    /// Columns at the end that are hindsight-relabelled copies ([`super::relabel`]), not
    /// collected episodes (0 unless `budget_relabel`).
    pub relabelled: usize,
    /// The budgets of a budget-aware rollout (empty otherwise).
    pub budget_log: super::relabel::BudgetLog,
}

/// The valid steps of some episodes, flattened (episode-major), ready to become tensors.
#[derive(Clone, Debug, Default)]
pub struct Minibatch {
    /// Steps.
    pub len: usize,
    /// `[len * 5]`
    pub obs: Vec<f32>,
    /// `[len * 2]`
    pub mask: Vec<bool>,
    /// `[len]`
    pub actions: Vec<i64>,
    pub logp: Vec<f32>,
    pub values: Vec<f32>,
    pub advantages: Vec<f32>,
    pub returns: Vec<f32>,
}

impl RolloutBuffer {
    /// Play one episode per slot of `env` (already sized) on `trees`, sampling actions from
    /// `policy` with `rng`. Draw order is fixed (slot order within each step), so a batch is a
    /// deterministic function of (weights, trees, rng state). A policy output that is not a
    /// usable distribution (NaN, or a masked action with real probability) stops the batch
    /// with [`crate::TrainError::Diverged`] before the environment sees the action.
    pub fn collect<F: Family, W: World>(
        &mut self,
        env: &mut VecEnv<'_, W>,
        trees: &[u32],
        policy: &F::Acting,
        rng: &mut Rng,
    ) -> Result<()> {
        let n = env.len();
        let d = F::OBS_DIM;
        assert_eq!(trees.len(), n);
        self.n = n;
        self.obs_dim = d;
        self.t_len = 0;
        for v in [&mut self.logp, &mut self.values, &mut self.rewards] {
            v.clear();
        }
        self.obs.clear();
        self.mask.clear();
        self.actions.clear();
        self.dones.clear();
        self.valid.clear();
        env.record_history(F::needs_history());
        env.reset(trees);
        self.budget_log = super::relabel::BudgetLog::default();
        if F::BUDGETED {
            self.budget_log.bound = vec![false; n];
            self.budget_log.budget = (0..n)
                .map(|i| env.budget_state(i).map_or(0, |s| s.budget))
                .collect();
        }
        // When the pool has an idle core, a helper there computes part of each step's rows
        // (`rows_pair`).
        with_helper(|pair| self.collect_steps::<F, W>(env, policy, pair, rng))?;
        self.outcomes = (0..n).map(|i| env.outcome(i)).collect();
        self.relabelled = 0;
        self.lambdas = (0..n).map(|i| env.slot_lambda(i)).collect();
        Ok(())
    }

    /// The steps of [`Self::collect`] until every episode is done: observe, the policy's rows,
    /// sample in slot order, step the env.
    fn collect_steps<F: Family, W: World>(
        &mut self,
        env: &mut VecEnv<'_, W>,
        policy: &F::Acting,
        pair: Option<&SpinPair>,
        rng: &mut Rng,
    ) -> Result<()> {
        let (n, d) = (env.len(), F::OBS_DIM);
        let mut obs = vec![0.0f32; n * d];
        let mut mask = vec![false; n * 2];
        let mut acts = vec![Action::Continue; n];
        let mut rew = vec![0.0f32; n];
        let mut done = vec![false; n];
        let mut alive = vec![false; n];
        let (mut rows, mut outs) = (RowsPair::default(), Vec::with_capacity(n));
        while !env.all_done() {
            env.observe_with(d, F::observe, &mut obs, &mut mask);
            if F::BUDGETED {
                for i in 0..n {
                    let s = env.budget_state(i);
                    self.budget_log.left.push(s.map_or(0, |s| s.left));
                    self.budget_log.bound[i] |= s.is_some_and(|s| s.binds);
                }
            }
            for (i, live) in alive.iter_mut().enumerate() {
                *live = !env.done(i);
            }
            rows.compute(pair, policy, (&obs, &mask, &alive), &mut outs);
            for i in 0..n {
                let m = [mask[2 * i], mask[2 * i + 1]];
                let alive = alive[i];
                let (a, lp, v) = if alive {
                    let (lps, v) = outs[i];
                    if let Some(d) = check_output(lps, v, m) {
                        return Err(d.into());
                    }
                    let a = sample_action(lps, rng);
                    (a, lps[a as usize], v)
                } else {
                    (Action::Continue, 0.0, 0.0)
                };
                acts[i] = a;
                self.actions.push(a as u8);
                self.logp.push(lp);
                self.values.push(v);
                self.valid.push(alive);
            }
            self.obs.extend_from_slice(&obs);
            self.mask.extend_from_slice(&mask);
            env.step(&acts, &mut rew, &mut done)?;
            let row = self.t_len * n;
            for i in 0..n {
                let ok = self.valid[row + i];
                self.rewards.push(if ok { rew[i] } else { 0.0 });
                self.dones.push(ok && done[i]);
            }
            self.t_len += 1;
        }
        Ok(())
    }

    /// The recorded steps as the divergence guard reads them.
    pub fn steps_view(&self) -> super::guard::Steps<'_> {
        super::guard::Steps {
            obs: &self.obs,
            obs_dim: self.obs_dim,
            mask: &self.mask,
            valid: &self.valid,
        }
    }

    /// Valid steps of the collected episodes (relabelled copies are not counted).
    pub fn steps(&self) -> usize {
        let cols = self.n - self.relabelled;
        (self.valid.iter().enumerate())
            .filter(|&(i, &v)| v && i % self.n.max(1) < cols)
            .count()
    }

    /// Compute GAE advantages and returns (episodes always terminate: no bootstrap), then
    /// normalise the advantages over the valid steps if `norm_adv`.
    pub fn finish(&mut self, gamma: f32, gae_lambda: f32, norm_adv: bool) {
        let len = self.t_len * self.n;
        self.advantages.resize(len, 0.0);
        self.returns.resize(len, 0.0);
        if len == 0 {
            return;
        }
        let last = vec![0.0; self.n];
        compute_gae(
            &self.rewards,
            &self.values,
            &self.dones,
            &self.valid,
            &last,
            self.n,
            gamma,
            gae_lambda,
            &mut self.advantages,
            &mut self.returns,
        );
        if norm_adv {
            normalize_valid(&mut self.advantages, &self.valid);
        }
    }

    /// 1 − Var(returns − values) / Var(returns) over valid steps (CleanRL's diagnostic; NaN
    /// when the returns are constant).
    pub fn explained_variance(&self) -> f64 {
        let pairs: Vec<(f64, f64)> = (0..self.valid.len())
            .filter(|&i| self.valid[i])
            .map(|i| (f64::from(self.returns[i]), f64::from(self.values[i])))
            .collect();
        let var = |xs: &mut dyn Iterator<Item = f64>| {
            let v: Vec<f64> = xs.collect();
            let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
            v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len().max(1) as f64
        };
        let var_y = var(&mut pairs.iter().map(|p| p.0));
        if var_y == 0.0 {
            return f64::NAN;
        }
        1.0 - var(&mut pairs.iter().map(|p| p.0 - p.1)) / var_y
    }

    /// Gather the valid steps of `episodes` (column indices), episode by episode.
    pub fn minibatch(&self, episodes: &[usize], out: &mut Minibatch) {
        let n = self.n;
        *out = Minibatch::default();
        for &b in episodes {
            for t in 0..self.t_len {
                let i = t * n + b;
                if !self.valid[i] {
                    continue;
                }
                let d = self.obs_dim;
                out.obs.extend_from_slice(&self.obs[i * d..(i + 1) * d]);
                out.mask.extend_from_slice(&self.mask[2 * i..2 * i + 2]);
                out.actions.push(i64::from(self.actions[i]));
                out.logp.push(self.logp[i]);
                out.values.push(self.values[i]);
                out.advantages.push(self.advantages[i]);
                out.returns.push(self.returns[i]);
                out.len += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PolicyKind, TrainConfig};
    use crate::family::seq::Seq;
    use trim_router::seq::{SEQ_OBS_DIM, TOKEN_DIM};

    /// A rollout whose rows are shared with a helper on a second core (`rows_pair`) is the
    /// rollout of one thread: the same actions, and the same bits of every log-probability
    /// and value.
    #[test]
    fn a_rollout_is_the_same_with_and_without_a_helper() {
        use crate::family::agg::Agg;
        let z = trim_data::LazySource::open("synth:math500?problems=64&test_fraction=0").unwrap();
        let w = &z.world;
        let problems = w.problems_in_split("all");
        let cfg = TrainConfig::default();
        let dev = crate::backend::Backend::Flex.device().unwrap();
        let net = <Agg as Family>::init(&cfg, &mut Rng::new(1), &dev).unwrap();
        let acting = Agg::acting(&net).unwrap();
        let rollout = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut rng = Rng::new(9);
                let mut trees = vec![0; problems.len()];
                VecEnv::sample_trees(w, &problems, &mut rng, &mut trees);
                let mut env = VecEnv::new(w, problems.len(), 8e-4);
                let mut buf = RolloutBuffer::default();
                buf.collect::<Agg, _>(&mut env, &trees, &acting, &mut rng)
                    .unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                (
                    buf.actions.clone(),
                    bits(&buf.logp),
                    bits(&buf.values),
                    rng.state(),
                )
            })
        };
        let alone = rollout(1);
        assert!(alone.0.len() >= 64 * 3, "a rollout of several steps");
        assert_eq!(rollout(2), alone);
    }

    /// TRIM-Seq rollouts in the padded, time-major buffer: each live step's row holds one more
    /// token than the step before (the candidate last, flagged), padding steps are invalid, and
    /// GAE over episodes of different lengths equals a per-episode reference computed from the
    /// valid steps alone (γ = 1, λ = 0.95, terminal episodes).
    #[test]
    fn sequence_rollouts_grow_a_token_per_step_and_gae_ignores_padding() {
        let z = trim_data::LazySource::open("synth:math500?problems=16&test_fraction=0").unwrap();
        let w = &z.world;
        let problems = w.problems_in_split("all");
        let mut rng = Rng::new(4);
        let mut trees = vec![0; problems.len()];
        VecEnv::sample_trees(w, &problems, &mut rng, &mut trees);
        let cfg = TrainConfig {
            policy: PolicyKind::Seq,
            seq_dim: 16,
            seq_ff: 32,
            ..TrainConfig::default()
        };
        let dev = crate::backend::Backend::Flex.device().unwrap();
        let net = <Seq as Family>::init(&cfg, &mut Rng::new(1), &dev).unwrap();
        let acting = Seq::acting(&net).unwrap();
        let mut env = VecEnv::new(w, problems.len(), 8e-4);
        let mut buf = RolloutBuffer::default();
        buf.collect::<Seq, _>(&mut env, &trees, &acting, &mut rng)
            .unwrap();
        buf.finish(1.0, 0.95, false);
        let (n, d) = (buf.n, buf.obs_dim);
        assert_eq!(d, SEQ_OBS_DIM);
        let mut lengths = vec![];
        for b in 0..n {
            let steps: Vec<usize> = (0..buf.t_len).filter(|&t| buf.valid[t * n + b]).collect();
            // Valid steps are a prefix of the column, each row one token longer.
            assert_eq!(steps, (0..steps.len()).collect::<Vec<_>>());
            for &t in &steps {
                let row = &buf.obs[(t * n + b) * d..(t * n + b + 1) * d];
                assert_eq!(row[d - 1] as usize, t + 1, "column {b} step {t}");
                assert_eq!(row[t * TOKEN_DIM + 4], 1.0, "the candidate is last");
                assert!(row[(t + 1) * TOKEN_DIM..d - 1].iter().all(|&x| x == 0.0));
            }
            // Reference GAE on the valid steps only.
            let (mut adv, mut next_v, mut last) = (vec![0.0f32; steps.len()], 0.0f32, 0.0f32);
            for (k, &t) in steps.iter().enumerate().rev() {
                let i = t * n + b;
                let delta = buf.rewards[i] + next_v - buf.values[i];
                last = delta + 0.95 * last;
                adv[k] = last;
                next_v = buf.values[i];
            }
            for (k, &t) in steps.iter().enumerate() {
                assert!(
                    (buf.advantages[t * n + b] - adv[k]).abs() < 1e-5,
                    "column {b}"
                );
            }
            lengths.push(steps.len());
        }
        assert!(
            lengths.iter().min() < lengths.iter().max(),
            "{lengths:?}: padding occurs"
        );
    }
}
