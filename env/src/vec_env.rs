//! Batched, vectorised episodes for training: many episodes stepped in lock-step.
//!
//! All buffers are allocated once in [`VecEnv::new`]; `reset`, `observe` and `step` only write
//! into them (no allocation per step). Stepping is rayon-parallel over episode slots once the
//! batch is large enough to pay for it.

use rayon::prelude::*;

use crate::episode::{Episode, EpisodeOutcome, StepError};
use crate::features::{AGG_DIM, HIST_DIM, HistStep};
use crate::forest::{Action, Forest};
use crate::policy::StepView;
use crate::rng::Rng;
use crate::world::World;

/// Below this many slots per rayon task, stepping runs on one thread.
const MIN_SLOTS_PER_TASK: usize = 512;

/// A budgeted slot's state at its current decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotBudget {
    /// Strong tokens still allowed.
    pub left: u64,
    /// The episode's whole budget.
    pub budget: u64,
    /// The budget (not the tree) masks `regenerate` now.
    pub binds: bool,
}

/// One slot's mutable state as zipped by the parallel iterator: (episode, history, history length).
type Slot<'a, N> = ((&'a mut Episode<N>, &'a mut [HistStep]), &'a mut u16);
/// One slot's inputs and outputs: (action, reward out, done out).
type SlotIo<'a> = ((&'a Action, &'a mut f32), &'a mut bool);

/// A batch of episodes over one world (a stored [`Forest`] by default) with a cost per strong
/// token for every slot: one λ for all, or one per slot for λ-conditioned training.
pub struct VecEnv<'f, W: World = Forest> {
    forest: &'f W,
    lambda: f32,
    /// Per-slot λ: `None` = every slot uses `lambda` and shows no condition.
    slot_lambda: Option<Vec<f32>>,
    /// Per-slot strong-token budget: `None` = no budgets.
    slot_budget: Option<Vec<u64>>,
    eps: Vec<Episode<W::Node>>,
    /// Per-slot history, `hist_cap` entries per slot.
    hist: Vec<HistStep>,
    hist_len: Vec<u16>,
    hist_cap: usize,
    /// Record the per-step history (only sequence policies read it).
    record: bool,
    trees: Vec<u32>,
}

impl<'f, W: World> VecEnv<'f, W> {
    /// `n` episode slots; `lambda` is the cost per strong token.
    pub fn new(forest: &'f W, n: usize, lambda: f32) -> Self {
        let hist_cap = forest.max_depth() as usize + 1;
        let placeholder = Episode::start(forest, 0);
        VecEnv {
            forest,
            lambda,
            slot_lambda: None,
            slot_budget: None,
            eps: vec![placeholder; n],
            hist: vec![[0.0; HIST_DIM]; n * hist_cap],
            hist_len: vec![0; n],
            hist_cap,
            record: true,
            trees: vec![0; n],
        }
    }

    /// Record the per-step history or not (default: record). Policies that never read it
    /// (TRIM-Agg, the baselines) turn it off and pay nothing for it; [`history`](Self::history)
    /// is then empty.
    pub fn record_history(&mut self, on: bool) {
        self.record = on;
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.eps.len()
    }

    /// True when the env has no slots.
    pub fn is_empty(&self) -> bool {
        self.eps.is_empty()
    }

    /// The world being replayed.
    pub fn forest(&self) -> &'f W {
        self.forest
    }

    /// Cost per strong token (of every slot without a per-slot λ).
    pub fn lambda(&self) -> f32 {
        self.lambda
    }

    /// Give each slot its own λ (used by the rewards from the next [`reset`](Self::reset) on,
    /// and shown to conditioned policies as [`StepView::cond`]).
    pub fn set_slot_lambdas(&mut self, lambdas: &[f32]) {
        assert_eq!(lambdas.len(), self.eps.len(), "one λ per slot");
        match &mut self.slot_lambda {
            Some(v) => v.copy_from_slice(lambdas),
            None => self.slot_lambda = Some(lambdas.to_vec()),
        }
    }

    /// Give each slot a hard strong-token budget (from the next [`reset`](Self::reset) on;
    /// see [`Episode::start_with_budget`]); shown to policies as [`StepView::cond`].
    pub fn set_slot_budgets(&mut self, budgets: &[u64]) {
        assert_eq!(budgets.len(), self.eps.len(), "one budget per slot");
        match &mut self.slot_budget {
            Some(v) => v.copy_from_slice(budgets),
            None => self.slot_budget = Some(budgets.to_vec()),
        }
    }

    /// The λ slot `i` is rewarded with.
    pub fn slot_lambda(&self, i: usize) -> f32 {
        self.slot_lambda.as_ref().map_or(self.lambda, |v| v[i])
    }

    /// Most history entries an episode can have (max tree depth + 1).
    pub fn history_capacity(&self) -> usize {
        self.hist_cap
    }

    /// Start slot `i` on global sample tree `trees[i]` (`trees.len()` must equal `len()`).
    pub fn reset(&mut self, trees: &[u32]) {
        assert_eq!(trees.len(), self.eps.len(), "one tree per slot");
        for (i, &t) in trees.iter().enumerate() {
            let ep = match &self.slot_budget {
                Some(b) => Episode::start_with_budget(self.forest, t as usize, b[i]),
                None => Episode::start(self.forest, t as usize),
            };
            self.eps[i] = match &self.slot_lambda {
                Some(l) => ep.with_lambda(l[i]),
                None => ep,
            };
            self.hist_len[i] = 0;
        }
        self.trees.copy_from_slice(trees);
    }

    /// For each problem in `problems`, pick one of its sample trees with `rng` and write the
    /// global tree index into `out` (the per-episode choice the paper's re-sampling mimics).
    pub fn sample_trees(forest: &W, problems: &[u32], rng: &mut Rng, out: &mut [u32]) {
        for (o, &p) in out.iter_mut().zip(problems) {
            let r = forest.trees_of(p as usize);
            let k = r.len() as u64;
            *o = (r.start as u64 + if k > 1 { rng.below(k) } else { 0 }) as u32;
        }
    }

    /// Write each slot's observation and mask. Finished slots get zeros and mask `[true, false]`.
    ///
    /// # Shapes
    /// `obs: [len(), AGG_DIM]` row-major, `mask: [len(), 2]`.
    pub fn observe(&self, obs: &mut [f32], mask: &mut [bool]) {
        self.observe_with(AGG_DIM, |v, row| row.copy_from_slice(&v.agg()), obs, mask);
    }

    /// [`observe`](Self::observe) for any observation: `write(view, row)` fills one running
    /// slot's `dim`-wide row from what the slot shows (features, candidate, history); finished
    /// slots get zeros and mask `[true, false]`.
    ///
    /// # Shapes
    /// `obs: [len(), dim]` row-major, `mask: [len(), 2]`.
    pub fn observe_with(
        &self,
        dim: usize,
        mut write: impl FnMut(&StepView<'_>, &mut [f32]),
        obs: &mut [f32],
        mask: &mut [bool],
    ) {
        assert_eq!(obs.len(), self.eps.len() * dim);
        assert_eq!(mask.len(), self.eps.len() * 2);
        let rows = obs.chunks_exact_mut(dim).zip(mask.chunks_exact_mut(2));
        for (i, (o, m)) in rows.enumerate() {
            match self.view(i) {
                Some((view, available)) => {
                    write(&view, o);
                    m.copy_from_slice(&available);
                }
                None => {
                    o.fill(0.0);
                    m.copy_from_slice(&[true, false]);
                }
            }
        }
    }

    /// What a policy sees in slot `i` (features, current weak candidate, history) and the
    /// action mask; `None` once the slot has finished.
    pub fn view(&self, i: usize) -> Option<(StepView<'_>, [bool; 2])> {
        let ep = &self.eps[i];
        (!ep.done()).then(|| {
            let view = ep.view_with(self.forest, self.history(i));
            (view, ep.mask(self.forest))
        })
    }

    /// [`Self::view`] with the weak candidate's optional signals filled (for policies that
    /// [want them](crate::Policy::wants_signals); training's networks do not).
    pub fn view_signals(&self, i: usize) -> Option<(StepView<'_>, [bool; 2])> {
        let ep = &self.eps[i];
        self.view(i).map(|(view, mask)| {
            let signals = self.forest.weak_signals(&ep.node());
            (StepView { signals, ..view }, mask)
        })
    }

    /// Step every running slot with its action; finished slots are left alone (reward 0,
    /// done true). A masked action is an error (policies must respect the mask).
    ///
    /// # Shapes
    /// `actions`, `rewards`, `dones`: `[len()]`.
    pub fn step(
        &mut self,
        actions: &[Action],
        rewards: &mut [f32],
        dones: &mut [bool],
    ) -> Result<(), StepError> {
        let n = self.eps.len();
        assert!(actions.len() == n && rewards.len() == n && dones.len() == n);
        let (forest, cap, record) = (self.forest, self.hist_cap, self.record);
        let (fixed, per_slot) = (self.lambda, self.slot_lambda.is_some());
        let step_one =
            |(((ep, hist), hlen), ((&a, r), d)): (Slot<'_, W::Node>, SlotIo<'_>)| -> Result<(), StepError> {
                // The episode carries its own λ when slots have one (set at reset).
                let lambda = if per_slot { ep.lambda() } else { fixed };
                if ep.done() {
                    *r = 0.0;
                    *d = true;
                    return Ok(());
                }
                if record {
                    hist[*hlen as usize] = ep.hist_entry(forest, a);
                    *hlen += 1;
                }
                let t = ep.step(forest, a, lambda)?;
                *r = t.reward;
                *d = t.done;
                Ok(())
            };
        let slots = self
            .eps
            .par_iter_mut()
            .zip(self.hist.par_chunks_mut(cap))
            .zip(self.hist_len.par_iter_mut());
        let io = actions
            .par_iter()
            .zip(rewards.par_iter_mut())
            .zip(dones.par_iter_mut());
        slots
            .zip(io)
            .with_min_len(MIN_SLOTS_PER_TASK)
            .try_for_each(step_one)
    }

    /// Slot `i`'s budget state; None for a finished slot or without budgets.
    pub fn budget_state(&self, i: usize) -> Option<SlotBudget> {
        let ep = &self.eps[i];
        (self.slot_budget.is_some() && !ep.done()).then(|| SlotBudget {
            left: ep.budget_left(),
            budget: ep.budget(),
            binds: ep.budget_binds(self.forest),
        })
    }

    /// True when every slot has finished.
    pub fn all_done(&self) -> bool {
        self.eps.iter().all(Episode::done)
    }

    /// Whether slot `i` has finished.
    pub fn done(&self, i: usize) -> bool {
        self.eps[i].done()
    }

    /// Outcome of slot `i` (final once `done(i)`).
    pub fn outcome(&self, i: usize) -> EpisodeOutcome {
        self.eps[i].outcome()
    }

    /// Global tree index slot `i` is playing.
    pub fn tree(&self, i: usize) -> u32 {
        self.trees[i]
    }

    /// The per-step history of slot `i`: one entry per decision already taken.
    pub fn history(&self, i: usize) -> &[HistStep] {
        let start = i * self.hist_cap;
        &self.hist[start..start + self.hist_len[i] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::tests::small_forest;

    #[test]
    fn batched_matches_single_episodes_and_masks_finished_slots() {
        let f = small_forest();
        let mut env = VecEnv::new(&f, 3, 0.01);
        env.reset(&[0, 0, 0]);
        let mut obs = vec![0.0; 3 * AGG_DIM];
        let mut mask = vec![false; 6];
        let mut rew = [0.0f32; 3];
        let mut done = [false; 3];
        let plans = [
            [Action::Continue, Action::Continue, Action::Continue],
            [Action::Regenerate, Action::Continue, Action::Continue],
            [Action::Continue, Action::Regenerate, Action::Continue],
        ];
        let mut returns = [0.0f32; 3];
        for step in 0..3 {
            env.observe(&mut obs, &mut mask);
            let acts: Vec<Action> = plans.iter().map(|plan| plan[step]).collect();
            env.step(&acts, &mut rew, &mut done).unwrap();
            for i in 0..3 {
                returns[i] += rew[i];
            }
        }
        assert!(env.all_done());
        assert_eq!(returns[0], 0.0);
        assert!((returns[1] - (1.0 - 0.2)).abs() < 1e-6);
        assert!((returns[2] - (1.0 - 0.4)).abs() < 1e-6);
        env.observe(&mut obs, &mut mask);
        assert!(obs.iter().all(|&x| x == 0.0));
        assert_eq!(&mask[..2], &[true, false]);
        assert_eq!(env.history(2).len(), 3);
        assert_eq!(env.history(2)[1][3], 1.0);
        assert!((env.history(2)[1][0] - 0.8).abs() < 1e-6);
        assert_eq!(env.outcome(2).strong_tokens, 40);
    }

    #[test]
    fn per_slot_lambdas_charge_each_episode_its_own_cost_and_are_shown_to_policies() {
        let f = small_forest();
        let mut env = VecEnv::new(&f, 3, 0.5);
        let lambdas = [0.01f32, 0.001, 0.0];
        env.set_slot_lambdas(&lambdas);
        env.reset(&[0, 0, 0]);
        let (mut rew, mut done) = ([0.0f32; 3], [false; 3]);
        let plan = [Action::Continue, Action::Regenerate, Action::Continue];
        let mut returns = [0.0f32; 3];
        for a in plan {
            for (i, &l) in lambdas.iter().enumerate() {
                assert_eq!(env.view(i).unwrap().0.cond.lambda, l);
                assert_eq!(env.slot_lambda(i), l);
            }
            env.step(&[a; 3], &mut rew, &mut done).unwrap();
            for i in 0..3 {
                returns[i] += rew[i];
            }
        }
        // Continue, regenerate (40 strong tokens), continue → correct: 1 − λ·40 per slot.
        for (r, l) in returns.iter().zip(lambdas) {
            assert!((r - (1.0 - l * 40.0)).abs() < 1e-6, "{r} at λ {l}");
        }
        // Without per-slot λ every slot uses the env's λ and shows no condition.
        let mut plain = VecEnv::new(&f, 1, 0.5);
        plain.reset(&[0]);
        assert!(plain.view(0).unwrap().0.cond.lambda.is_nan());
        assert_eq!(plain.slot_lambda(0), 0.5);
    }

    #[test]
    fn tree_sampling_is_deterministic_per_seed() {
        use crate::forest::{Branch, Candidate, ForestBuilder};
        // One problem with three one-node sample trees, two problems with one.
        let mut b = ForestBuilder::new();
        let leaf = |b: &mut ForestBuilder| {
            b.begin_tree();
            b.push_node(
                0,
                Candidate {
                    tokens: 1,
                    prm: 0.5,
                },
                None,
                [Branch::Outcome(true), Branch::Absent],
            );
        };
        b.begin_problem();
        for _ in 0..3 {
            leaf(&mut b);
        }
        for _ in 0..2 {
            b.begin_problem();
            leaf(&mut b);
        }
        let f = b.finish().unwrap();
        let problems: Vec<u32> = (0..64).map(|i| [0, 1, 2][i % 3]).collect();
        let draw = |seed| {
            let mut out = vec![0u32; problems.len()];
            VecEnv::sample_trees(&f, &problems, &mut Rng::new(seed), &mut out);
            out
        };
        let a = draw(9);
        assert_eq!(a, draw(9));
        assert_ne!(a, draw(10));
        for (t, p) in a.iter().zip(&problems) {
            assert!(f.trees_of(*p as usize).contains(&(*t as usize)));
        }
        // All three trees of problem 0 get drawn.
        let mut seen: Vec<u32> = a.iter().step_by(3).copied().collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, vec![0, 1, 2]);
    }

    #[test]
    fn masked_action_is_an_error() {
        let f = small_forest();
        let mut env = VecEnv::new(&f, 1, 0.0);
        env.reset(&[0]);
        let (mut r, mut d) = ([0.0], [false]);
        env.step(&[Action::Continue], &mut r, &mut d).unwrap();
        env.step(&[Action::Regenerate], &mut r, &mut d).unwrap();
        assert!(env.step(&[Action::Regenerate], &mut r, &mut d).is_err());
    }
}
