//! Evaluation of policies that decide many episodes at once.
//!
//! [`evaluate`](crate::evaluate) plays one episode at a time, so a network policy runs its
//! forward pass one row at a time. [`evaluate_rows`] plays the episodes of a few problems side
//! by side in a [`VecEnv`] and asks for all their network outputs in one call, so a network
//! runs on blocks of rows. It also plays several decision rules over the same network at once
//! (a checkpoint's greedy policy and its probability thresholds): episodes of one tree whose
//! rules have taken the same actions so far stand on the same node, see the same row and share
//! one network output. The outcomes are exactly those of `evaluate`, rule by rule, for a policy
//! whose block outputs equal its one-row outputs (each episode sees the same views and masks
//! and steps the same way; the per-problem averages add the same terms in the same order).

use rayon::prelude::*;

use crate::episode::StepError;
use crate::forest::Action;
use crate::policy::{StepView, resolve};
use crate::rollout::{ProblemOutcome, average_episodes};
use crate::vec_env::VecEnv;
use crate::world::World;

/// Deterministic decision rules over one network that sees what
/// [`Policy::act`](crate::Policy::act) sees, minus the history and the signals (policies that
/// need either go through [`evaluate`](crate::evaluate)).
pub trait RowsPolicy: Sync {
    /// Buffers reused from block to block (one per worker).
    type Scratch: Default + Send;
    /// What the network gives one row (a policy network: its log-probabilities).
    type Out: Copy + Default + Send;
    /// Width of one observation row.
    fn obs_dim(&self) -> usize;
    /// Number of decision rules sharing the network (at least 1).
    fn rules(&self) -> usize;
    /// Write the observation row of one running episode.
    fn observe(&self, view: &StepView<'_>, row: &mut [f32]);
    /// The output of every row `i` with `wanted[i]` into `out[i]` (`out` is resized to one
    /// entry per row; other entries are unspecified).
    ///
    /// # Shapes
    /// `obs`: `[n, obs_dim]`; `mask`: `[n, 2]`; `wanted`: `[n]`.
    fn outputs(
        &self,
        obs: &[f32],
        mask: &[bool],
        wanted: &[bool],
        scratch: &mut Self::Scratch,
        out: &mut Vec<Self::Out>,
    );
    /// Rule `rule`'s action from a row's output.
    fn decide(&self, rule: usize, out: &Self::Out) -> Action;
}

/// Problems played side by side per task: a few of a network's row blocks per rule, and
/// enough tasks for both cores on a validation split.
const PROBLEMS_PER_TASK: usize = 64;

/// [`evaluate_budgeted`](crate::evaluate_budgeted) of every rule of `policy` with one episode
/// per sample tree (the deterministic evaluation): `out[r]` is rule `r`'s per-problem outcomes.
pub fn evaluate_rows<W: World, P: RowsPolicy>(
    forest: &W,
    problems: &[u32],
    policy: &P,
    budget: Option<u64>,
) -> Result<Vec<Vec<ProblemOutcome>>, StepError> {
    let rules = policy.rules().max(1);
    let chunks: Vec<Vec<Vec<ProblemOutcome>>> = problems
        .par_chunks(PROBLEMS_PER_TASK)
        .map_init(P::Scratch::default, |scratch, chunk| {
            play_chunk(forest, chunk, (policy, rules), budget, scratch)
        })
        .collect::<Result<_, _>>()?;
    let mut out = vec![Vec::with_capacity(problems.len()); rules];
    for chunk in chunks {
        for (all, part) in out.iter_mut().zip(chunk) {
            all.extend(part);
        }
    }
    Ok(out)
}

/// Every (sample tree, rule) episode of `chunk`'s problems played side by side to the end,
/// then averaged per rule and problem in tree order. Slot `tree · rules + r` plays rule `r`
/// (`rules` = `policy.rules()`, at least 1).
fn play_chunk<W: World, P: RowsPolicy>(
    forest: &W,
    chunk: &[u32],
    (policy, rules): (&P, usize),
    budget: Option<u64>,
    scratch: &mut P::Scratch,
) -> Result<Vec<Vec<ProblemOutcome>>, StepError> {
    let trees: Vec<u32> = (chunk.iter())
        .flat_map(|&p| forest.trees_of(p as usize).map(|t| t as u32))
        .flat_map(|t| std::iter::repeat_n(t, rules))
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
    let mut out = Vec::with_capacity(n);
    let mut groups = Groups::new(n, rules);
    let (mut actions, mut rewards, mut dones) =
        (vec![Action::Continue; n], vec![0.0f32; n], vec![false; n]);
    while !env.all_done() {
        env.observe_with(dim, |v, row| policy.observe(v, row), &mut obs, &mut mask);
        groups.mark_leaders(|i| !env.done(i));
        policy.outputs(&obs, &mask, &groups.wanted, scratch, &mut out);
        for (i, a) in actions.iter_mut().enumerate() {
            let o = &out[groups.leader[i]];
            *a = resolve(policy.decide(i % rules, o), [mask[2 * i], mask[2 * i + 1]]);
        }
        groups.split(&actions);
        env.step(&actions, &mut rewards, &mut dones)?;
    }
    let mut next = 0;
    let mut per_rule = vec![Vec::with_capacity(chunk.len()); rules];
    for &p in chunk {
        let k = forest.trees_of(p as usize).len();
        for (r, o) in per_rule.iter_mut().enumerate() {
            let slots = (next..next + k).map(|t| t * rules + r);
            o.push(average_episodes(slots.map(|i| env.outcome(i))));
        }
        next += k;
    }
    Ok(per_rule)
}

/// Which episodes of a tree stand on the same node: those whose rules have taken the same
/// actions so far. Each slot points at its group's first slot (its leader), whose row alone
/// goes through the network.
struct Groups {
    leader: Vec<usize>,
    previous: Vec<usize>,
    /// Running leaders: the rows the network computes.
    wanted: Vec<bool>,
}

impl Groups {
    /// Every tree's slots start together at its root.
    fn new(n: usize, rules: usize) -> Self {
        Groups {
            leader: (0..n).map(|i| i - i % rules).collect(),
            previous: vec![0; n],
            wanted: vec![false; n],
        }
    }

    /// The running leaders (a group's slots finish together: they stand on one node).
    fn mark_leaders(&mut self, running: impl Fn(usize) -> bool) {
        for (i, w) in self.wanted.iter_mut().enumerate() {
            *w = self.leader[i] == i && running(i);
        }
    }

    /// Split every group by the action each slot takes: a slot joins the first slot of its
    /// group that takes the same action.
    fn split(&mut self, actions: &[Action]) {
        self.previous.copy_from_slice(&self.leader);
        for i in 0..self.leader.len() {
            // A group's slots follow its leader: the search starts there.
            let g = self.previous[i];
            self.leader[i] = (g..=i)
                .find(|&j| self.previous[j] == g && actions[j] == actions[i])
                .unwrap_or(i);
        }
    }
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

    /// TRIM-Thr at several thresholds written as block rules over one "network" whose output
    /// is the row's PRM feature; counts the rows it computes.
    struct RowsThresholds(Vec<f32>);

    impl RowsPolicy for RowsThresholds {
        type Scratch = usize;
        type Out = f32;

        fn obs_dim(&self) -> usize {
            1
        }

        fn rules(&self) -> usize {
            self.0.len()
        }

        fn observe(&self, view: &StepView<'_>, row: &mut [f32]) {
            row[0] = view.weak.prm;
        }

        fn outputs(
            &self,
            obs: &[f32],
            _mask: &[bool],
            wanted: &[bool],
            rows: &mut usize,
            out: &mut Vec<f32>,
        ) {
            out.clear();
            out.extend(
                obs.iter()
                    .zip(wanted)
                    .map(|(&x, &w)| if w { x } else { f32::NAN }),
            );
            *rows += wanted.iter().filter(|&&w| w).count();
        }

        fn decide(&self, rule: usize, prm: &f32) -> Action {
            match *prm < self.0[rule] {
                true => Action::Regenerate,
                false => Action::Continue,
            }
        }
    }

    fn one_at_a_time(f: &Forest, ps: &[u32], k: f32, budget: Option<u64>) -> Vec<ProblemOutcome> {
        let p = RefPolicy::Threshold(k);
        evaluate_budgeted(f, ps, &p, EvalOptions::default(), budget).unwrap()
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
            let rows = evaluate_rows(&f, &problems, &RowsThresholds(vec![k]), budget).unwrap();
            assert_eq!(
                rows,
                [one_at_a_time(&f, &problems, k, budget)],
                "{k} {budget:?}"
            );
        }
        // The outcomes are not all alike (the comparison above can fail).
        let o = &evaluate_rows(&f, &problems, &RowsThresholds(vec![0.6]), None).unwrap()[0];
        assert!(o.iter().any(|p| p.accuracy == 0.5) && o.iter().any(|p| p.strong_calls > 0.0));
        let none = evaluate_rows(&f, &[], &RowsThresholds(vec![0.5]), None).unwrap();
        assert!(none[0].is_empty());
    }

    /// Rules played together share a row while their actions agree, and each rule's outcomes
    /// are its own alone (so a follower acting on its leader's row is right).
    #[test]
    fn rules_played_together_each_get_their_own_outcomes() {
        let f = two_tree_forest(70, 9);
        let problems: Vec<u32> = (0..70).collect();
        let ks = vec![0.0f32, 0.2, 0.21, 0.5, 0.8, 1.0];
        for budget in [None, Some(150u64)] {
            let all = evaluate_rows(&f, &problems, &RowsThresholds(ks.clone()), budget).unwrap();
            for (rule, &k) in ks.iter().enumerate() {
                assert_eq!(all[rule], one_at_a_time(&f, &problems, k, budget), "{k}");
            }
        }
        // Fewer rows than one per (rule, step): rules share rows until their actions differ.
        let shared = rows_computed(&f, &problems, &ks);
        let alone: usize = ks.iter().map(|&k| rows_computed(&f, &problems, &[k])).sum();
        assert!(shared < alone * 3 / 4, "{shared} of {alone}");
    }

    /// Rows `RowsThresholds(ks)` computes over `problems` on one thread.
    fn rows_computed(f: &Forest, problems: &[u32], ks: &[f32]) -> usize {
        let p = RowsThresholds(ks.to_vec());
        let mut rows = 0;
        for chunk in problems.chunks(PROBLEMS_PER_TASK) {
            play_chunk(f, chunk, (&p, ks.len()), None, &mut rows).unwrap();
        }
        rows
    }
}
