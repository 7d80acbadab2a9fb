//! Evaluation of a policy that decides many episodes at once.
//!
//! [`evaluate`](crate::evaluate) plays one episode at a time, so a network policy runs its
//! forward pass one row at a time. [`evaluate_rows`] plays the episodes of a few problems side
//! by side in a [`VecEnv`] and asks the policy for all their actions in one call, so a network
//! runs on blocks of rows. The outcomes are exactly those of `evaluate` for a policy whose
//! block decisions equal its one-row decisions (each episode sees the same views and masks and
//! steps the same way; the per-problem averages add the same terms in the same order).

use rayon::prelude::*;

use crate::episode::StepError;
use crate::forest::Action;
use crate::policy::{StepView, resolve};
use crate::rollout::{ProblemOutcome, average_episodes};
use crate::vec_env::VecEnv;
use crate::world::World;

/// A deterministic policy that decides a block of episodes at once (a network acting on rows).
/// It sees what [`Policy::act`](crate::Policy::act) sees, minus the history and the signals:
/// policies that need either go through [`evaluate`](crate::evaluate).
pub trait RowsPolicy: Sync {
    /// Buffers reused from block to block (one per worker).
    type Scratch: Default + Send;
    /// Width of one observation row.
    fn obs_dim(&self) -> usize;
    /// Write the observation row of one running episode.
    fn observe(&self, view: &StepView<'_>, row: &mut [f32]);
    /// The action of every row `i` with `alive[i]` (other rows' entries are ignored), from the
    /// rows' observations and masks.
    ///
    /// # Shapes
    /// `obs`: `[n, obs_dim]`; `mask`: `[n, 2]`; `alive`, `actions`: `[n]`.
    fn act_rows(
        &self,
        obs: &[f32],
        mask: &[bool],
        alive: &[bool],
        scratch: &mut Self::Scratch,
        actions: &mut [Action],
    );
}

/// Episodes played side by side per task: a few of a network's row blocks, and enough tasks
/// for both cores on a validation split.
const EPISODES_PER_TASK: usize = 64;

/// [`evaluate_budgeted`](crate::evaluate_budgeted) with one episode per sample tree (the
/// deterministic evaluation), for a policy that decides blocks of episodes at once.
pub fn evaluate_rows<W: World, P: RowsPolicy>(
    forest: &W,
    problems: &[u32],
    policy: &P,
    budget: Option<u64>,
) -> Result<Vec<ProblemOutcome>, StepError> {
    // EPISODES_PER_TASK problems per task: that many episodes at the usual one tree each.
    let chunks: Vec<Vec<ProblemOutcome>> = problems
        .par_chunks(EPISODES_PER_TASK)
        .map_init(P::Scratch::default, |scratch, chunk| {
            play_chunk(forest, chunk, policy, budget, scratch)
        })
        .collect::<Result<_, _>>()?;
    Ok(chunks.into_iter().flatten().collect())
}

/// Every sample tree of `chunk`'s problems played side by side to the end, then averaged per
/// problem in tree order.
fn play_chunk<W: World, P: RowsPolicy>(
    forest: &W,
    chunk: &[u32],
    policy: &P,
    budget: Option<u64>,
    scratch: &mut P::Scratch,
) -> Result<Vec<ProblemOutcome>, StepError> {
    let trees: Vec<u32> = (chunk.iter())
        .flat_map(|&p| forest.trees_of(p as usize).map(|t| t as u32))
        .collect();
    let n = trees.len();
    // λ does not change the outcome counters (as in `run_episode_budgeted`).
    let mut env = VecEnv::new(forest, n, 0.0);
    if let Some(b) = budget {
        env.set_slot_budgets(&vec![b; n]);
    }
    env.reset(&trees);
    let dim = policy.obs_dim();
    let (mut obs, mut mask) = (vec![0.0f32; n * dim], vec![false; n * 2]);
    let (mut alive, mut actions) = (vec![false; n], vec![Action::Continue; n]);
    let (mut rewards, mut dones) = (vec![0.0f32; n], vec![false; n]);
    while !env.all_done() {
        env.observe_with(dim, |v, row| policy.observe(v, row), &mut obs, &mut mask);
        for (i, live) in alive.iter_mut().enumerate() {
            *live = !env.done(i);
        }
        policy.act_rows(&obs, &mask, &alive, scratch, &mut actions);
        for (i, a) in actions.iter_mut().enumerate() {
            *a = resolve(*a, [mask[2 * i], mask[2 * i + 1]]);
        }
        env.step(&actions, &mut rewards, &mut dones)?;
    }
    let mut next = 0;
    Ok(chunk
        .iter()
        .map(|&p| {
            let k = forest.trees_of(p as usize).len();
            let o = average_episodes((next..next + k).map(|i| env.outcome(i)));
            next += k;
            o
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::{Branch, Candidate, Forest, ForestBuilder};
    use crate::policy::RefPolicy;
    use crate::rng::Rng;
    use crate::{EvalOptions, evaluate_budgeted};

    /// `problems` problems of two full binary trees each (depth 3), random candidates and
    /// outcomes: every node offers both actions.
    fn two_tree_forest(problems: usize, seed: u64) -> Forest {
        let mut rng = Rng::new(seed);
        let mut b = ForestBuilder::new();
        for _ in 0..problems {
            b.begin_problem();
            for _ in 0..2 {
                b.begin_tree();
                let base = b.next_index();
                for k in 0..15u32 {
                    let d = (31 - (k + 1).leading_zeros()) as u16;
                    let children = match d {
                        3 => [rng.bernoulli(0.4), rng.bernoulli(0.7)].map(Branch::Outcome),
                        _ => [
                            Branch::Node(base + 2 * k + 1),
                            Branch::Node(base + 2 * k + 2),
                        ],
                    };
                    let mut cand = || Candidate {
                        tokens: 1 + rng.below(100) as u32,
                        prm: rng.f32(),
                    };
                    let (w, s) = (cand(), cand());
                    b.push_node(d, w, Some(s), children);
                }
            }
        }
        b.finish().unwrap()
    }

    /// TRIM-Thr written as a block policy, deciding every live row from its PRM feature.
    struct RowsThreshold(f32);

    impl RowsPolicy for RowsThreshold {
        type Scratch = usize;

        fn obs_dim(&self) -> usize {
            1
        }

        fn observe(&self, view: &StepView<'_>, row: &mut [f32]) {
            row[0] = view.weak.prm;
        }

        fn act_rows(
            &self,
            obs: &[f32],
            _mask: &[bool],
            alive: &[bool],
            calls: &mut usize,
            actions: &mut [Action],
        ) {
            *calls += 1;
            for ((a, &x), &live) in actions.iter_mut().zip(obs).zip(alive) {
                if live {
                    *a = if x < self.0 {
                        Action::Regenerate
                    } else {
                        Action::Continue
                    };
                }
            }
        }
    }

    #[test]
    fn block_decisions_give_the_one_episode_loops_outcomes_to_the_bit() {
        // 150 problems × 2 trees: three tasks of 64 problems, the last one partial.
        let f = two_tree_forest(150, 3);
        let problems: Vec<u32> = (0..150).rev().collect();
        for (k, budget) in [
            (0.3f32, None),
            (0.6, None),
            (0.6, Some(120u64)),
            (1.0, Some(0)),
        ] {
            let rows = evaluate_rows(&f, &problems, &RowsThreshold(k), budget).unwrap();
            let one = evaluate_budgeted(
                &f,
                &problems,
                &RefPolicy::Threshold(k),
                EvalOptions::default(),
                budget,
            )
            .unwrap();
            assert_eq!(rows, one, "threshold {k}, budget {budget:?}");
        }
        // The outcomes are not all alike (the comparison above can fail).
        let o = evaluate_rows(&f, &problems, &RowsThreshold(0.6), None).unwrap();
        assert!(o.iter().any(|p| p.accuracy == 0.5) && o.iter().any(|p| p.strong_calls > 0.0));
        assert!(
            evaluate_rows(&f, &[], &RowsThreshold(0.5), None)
                .unwrap()
                .is_empty()
        );
    }
}
