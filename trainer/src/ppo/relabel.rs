//! Hindsight budget relabelling for budget-aware PPO (`budget_relabel = true`).
//!
//! An episode whose budget never masked `regenerate` would have unfolded identically under any
//! larger budget: the same masks, actions, rewards and outcome. Such an episode is added to the
//! batch a second time, labelled with a larger budget drawn uniformly from `[B, hi]` — only the
//! two budget inputs of its rows change. Its log-probabilities and values are recomputed with
//! the rollout weights on the relabelled rows, so PPO treats the copy as if the rollout policy
//! had produced it under the larger budget (an approximation: the actions were drawn under the
//! original budget's inputs; no importance correction is applied). The point is more training
//! signal at large budgets, which episodes rarely reach on their own.

use trim_env::AGG_DIM;
use trim_env::Rng;
use trim_env::features::budget_features;

use super::RolloutBuffer;
use crate::family::ActingNet;

/// What the buffer recorded about each episode's budget during a budget-aware rollout.
#[derive(Clone, Debug, Default)]
pub struct BudgetLog {
    /// `[n]`: each episode's budget.
    pub budget: Vec<u64>,
    /// `[n]`: the budget masked `regenerate` at some step of the episode.
    pub bound: Vec<bool>,
    /// `[t_len * n]`: strong tokens left at each step (0 on padding).
    pub left: Vec<u64>,
}

/// A copy of episode `src` under budget `budget`.
struct Copy {
    src: usize,
    budget: u64,
}

/// Add a relabelled copy of every episode of `buf` whose budget never bound (and is below
/// `hi`), with a budget drawn from `(B, hi]`; returns how many were added. The rows' budget
/// inputs sit at `AGG_DIM..AGG_DIM + 2` (the budget-aware TRIM-Agg layout).
pub fn relabel_budgets<A: ActingNet>(
    buf: &mut RolloutBuffer,
    log: &BudgetLog,
    policy: &A,
    hi: u64,
    rng: &mut Rng,
) -> usize {
    let copies: Vec<Copy> = (0..buf.n)
        .filter(|&b| !log.bound[b] && log.budget[b] < hi)
        .map(|b| Copy {
            src: b,
            budget: log.budget[b] + 1 + rng.below(hi - log.budget[b]),
        })
        .collect();
    if copies.is_empty() {
        return 0;
    }
    let (n, r, d) = (buf.n, copies.len(), buf.obs_dim);
    let m = n + r;
    let mut next = RolloutBuffer {
        n: m,
        t_len: buf.t_len,
        obs_dim: d,
        relabelled: buf.relabelled + r,
        outcomes: std::mem::take(&mut buf.outcomes),
        lambdas: std::mem::take(&mut buf.lambdas),
        ..RolloutBuffer::default()
    };
    for t in 0..buf.t_len {
        let cols = (0..n)
            .map(|b| (b, None))
            .chain(copies.iter().map(|c| (c.src, Some(c))));
        for (b, copy) in cols {
            let i = t * n + b;
            let row = &buf.obs[i * d..(i + 1) * d];
            next.mask.extend_from_slice(&buf.mask[2 * i..2 * i + 2]);
            next.actions.push(buf.actions[i]);
            next.rewards.push(buf.rewards[i]);
            next.dones.push(buf.dones[i]);
            next.valid.push(buf.valid[i]);
            let Some(c) = copy.filter(|_| buf.valid[i]) else {
                next.obs.extend_from_slice(row);
                next.logp.push(buf.logp[i]);
                next.values.push(buf.values[i]);
                continue;
            };
            let mut new_row = row.to_vec();
            let left = log.left[i] + (c.budget - log.budget[b]);
            new_row[AGG_DIM..AGG_DIM + 2].copy_from_slice(&budget_features(left, c.budget));
            let mask = [buf.mask[2 * i], buf.mask[2 * i + 1]];
            let (lp, v) = policy.log_probs(&new_row, mask);
            next.logp.push(lp[usize::from(buf.actions[i])]);
            next.values.push(v);
            next.obs.extend_from_slice(&new_row);
        }
    }
    *buf = next;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrainConfig;
    use crate::family::Family;
    use crate::family::agg_budget::AggBudget;
    use trim_env::VecEnv;

    /// Copies keep every step of their source (masks, actions, rewards, dones) and change only
    /// the budget inputs, to what is left under the larger budget; bound episodes are not
    /// copied, and the collected-step count ignores the copies.
    #[test]
    fn copies_change_only_the_budget_inputs_of_unbound_episodes() {
        let z =
            trim_data::LazySource::open("synth:math-train?problems=48&test_fraction=0").unwrap();
        let w = &z.world;
        let problems = w.problems_in_split("all");
        let mut rng = Rng::new(5);
        let mut trees = vec![0; problems.len()];
        VecEnv::sample_trees(w, &problems, &mut rng, &mut trees);
        let dev = crate::backend::Backend::Flex.device().unwrap();
        let net = AggBudget::init(&TrainConfig::default(), &mut Rng::new(1), &dev).unwrap();
        let acting = AggBudget::acting(&net).unwrap();
        let mut env = VecEnv::new(w, problems.len(), 0.0);
        let budgets: Vec<u64> = (0..problems.len() as u64).map(|i| 40 * (i % 8)).collect();
        env.set_slot_budgets(&budgets);
        let mut buf = RolloutBuffer::default();
        buf.collect::<AggBudget, _>(&mut env, &trees, &acting, &mut rng)
            .unwrap();
        let (n, steps) = (buf.n, buf.steps());
        let log = std::mem::take(&mut buf.budget_log);
        assert_eq!(log.budget, budgets);
        let unbound = (0..n)
            .filter(|&b| !log.bound[b] && log.budget[b] < 400)
            .count();
        assert!(unbound > 0 && unbound < n, "{unbound} of {n}");
        let orig = buf.clone();
        let r = relabel_budgets(&mut buf, &log, &acting, 400, &mut rng);
        assert_eq!(
            (r, buf.n, buf.relabelled, buf.steps()),
            (unbound, n + r, r, steps)
        );
        let srcs: Vec<usize> = (0..n)
            .filter(|&b| !log.bound[b] && log.budget[b] < 400)
            .collect();
        let d = buf.obs_dim;
        for (k, &src) in srcs.iter().enumerate() {
            let c = n + k;
            let mut delta = None;
            for t in 0..buf.t_len {
                let (i, j) = (t * n + src, t * buf.n + c);
                assert_eq!(buf.valid[j], orig.valid[i]);
                assert_eq!(
                    (buf.actions[j], buf.rewards[j], buf.dones[j]),
                    (orig.actions[i], orig.rewards[i], orig.dones[i])
                );
                assert_eq!(buf.mask[2 * j..2 * j + 2], orig.mask[2 * i..2 * i + 2]);
                if !orig.valid[i] {
                    continue;
                }
                let (a, b) = (&buf.obs[j * d..(j + 1) * d], &orig.obs[i * d..(i + 1) * d]);
                assert_eq!(a[..AGG_DIM], b[..AGG_DIM]);
                // left' − left is the same at every step: the budget grew by a constant.
                let left_gap = ((a[AGG_DIM + 1] - b[AGG_DIM + 1]) * 1000.0).round() as i64;
                assert!(left_gap > 0);
                assert_eq!(*delta.get_or_insert(left_gap), left_gap);
            }
        }
        // The original columns are untouched.
        for t in 0..orig.t_len {
            for b in 0..n {
                let (i, j) = (t * n + b, t * buf.n + b);
                assert_eq!(buf.obs[j * d..(j + 1) * d], orig.obs[i * d..(i + 1) * d]);
                assert_eq!(buf.logp[j], orig.logp[i]);
            }
        }
    }
}
