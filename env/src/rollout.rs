//! Run a policy over problems and summarise routing quality.
//!
//! Evaluation is exact in the tree structure: every (problem, sample tree) pair is played
//! `repeats` times (once suffices for deterministic policies) with an RNG stream derived from
//! `(seed, tree, repeat)`, so results do not depend on thread scheduling.

use rayon::prelude::*;

use crate::episode::{Episode, EpisodeOutcome, StepError};
use crate::features::HistStep;
use crate::policy::{Policy, resolve};
use crate::rng::Rng;
use crate::world::World;

/// Play one episode on global tree `tree` to the end. Allocates only for policies that want
/// the per-step history (see [`run_episode_with`] to reuse a buffer).
#[inline]
pub fn run_episode<W: World, P: Policy + ?Sized>(
    forest: &W,
    tree: usize,
    policy: &P,
    rng: &mut Rng,
) -> Result<EpisodeOutcome, StepError> {
    run_episode_with(forest, tree, policy, rng, &mut Vec::new())
}

/// [`run_episode`] with a caller-owned history buffer (cleared first; filled only when the
/// policy wants history), so evaluation loops allocate once per thread, not per episode.
#[inline]
pub fn run_episode_with<W: World, P: Policy + ?Sized>(
    forest: &W,
    tree: usize,
    policy: &P,
    rng: &mut Rng,
    history: &mut Vec<HistStep>,
) -> Result<EpisodeOutcome, StepError> {
    run_episode_budgeted(forest, tree, policy, rng, history, None)
}

/// [`run_episode_with`] under an optional hard budget of strong tokens per episode (see
/// [`Episode::start_with_budget`]).
#[inline]
pub fn run_episode_budgeted<W: World, P: Policy + ?Sized>(
    forest: &W,
    tree: usize,
    policy: &P,
    rng: &mut Rng,
    history: &mut Vec<HistStep>,
    budget: Option<u64>,
) -> Result<EpisodeOutcome, StepError> {
    let record = policy.wants_history();
    let signals = policy.wants_signals();
    history.clear();
    let mut ep = match budget {
        Some(b) => Episode::start_with_budget(forest, tree, b),
        None => Episode::start(forest, tree),
    };
    while !ep.done() {
        let mask = ep.mask(forest);
        let view = if signals {
            ep.view_signals(forest, history)
        } else {
            ep.view_with(forest, history)
        };
        let a = resolve(policy.act(&view, mask, rng), mask);
        if record {
            history.push(ep.hist_entry(forest, a));
        }
        // λ does not change the outcome counters; rewards are recomputed from them.
        ep.step(forest, a, 0.0)?;
    }
    Ok(ep.outcome())
}

/// Refuse a policy that reads signals `world` does not carry (it would act on NaN).
pub fn check_signals<W: World, P: Policy + ?Sized>(world: &W, policy: &P) -> Result<(), StepError> {
    let missing = world.signal_kinds().missing(policy.needs_signals());
    match missing.is_empty() {
        true => Ok(()),
        false => Err(StepError::MissingSignals { names: missing }),
    }
}

/// Per-problem averages over sample trees and repeats.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProblemOutcome {
    /// Fraction of episodes with a correct final answer.
    pub accuracy: f64,
    /// Mean strong tokens per episode.
    pub strong_tokens: f64,
    /// Mean regenerate actions per episode.
    pub strong_calls: f64,
    /// Mean decisions per episode.
    pub steps: f64,
    /// Mean kept weak tokens per episode.
    pub weak_tokens: f64,
}

/// How to evaluate.
#[derive(Clone, Copy, Debug)]
pub struct EvalOptions {
    /// Episodes per sample tree (use > 1 for stochastic policies).
    pub repeats: u32,
    /// Base seed of the per-episode RNG streams.
    pub seed: u64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            repeats: 1,
            seed: 0,
        }
    }
}

/// Evaluate `policy` on `problems` (indices into the forest), in parallel over problems.
pub fn evaluate<W: World, P: Policy + ?Sized>(
    forest: &W,
    problems: &[u32],
    policy: &P,
    opts: EvalOptions,
) -> Result<Vec<ProblemOutcome>, StepError> {
    evaluate_budgeted(forest, problems, policy, opts, None)
}

/// [`evaluate`] with every episode under a hard budget of `budget` strong tokens.
pub fn evaluate_budgeted<W: World, P: Policy + ?Sized>(
    forest: &W,
    problems: &[u32],
    policy: &P,
    opts: EvalOptions,
    budget: Option<u64>,
) -> Result<Vec<ProblemOutcome>, StepError> {
    check_signals(forest, policy)?;
    problems
        .par_iter()
        .with_min_len(64)
        .map_init(Vec::new, |history, &p| {
            let mut acc = EpisodeSums::default();
            for tree in forest.trees_of(p as usize) {
                // Problems are contiguous in a chunk, so tree + 1 is usually the next one played.
                forest.prefetch_tree(tree + 1);
                for r in 0..opts.repeats.max(1) {
                    let mut rng = Rng::stream(opts.seed, ((tree as u64) << 20) ^ r as u64);
                    let o = run_episode_budgeted(forest, tree, policy, &mut rng, history, budget)?;
                    acc.add(&o);
                }
            }
            Ok(acc.mean())
        })
        .collect()
}

/// Running sums of a problem's episode outcomes. Every evaluation loop averages through it,
/// so two loops that see the same episodes in the same order give the same bits.
#[derive(Default)]
struct EpisodeSums {
    sum: ProblemOutcome,
    n: u32,
}

impl EpisodeSums {
    fn add(&mut self, o: &EpisodeOutcome) {
        let s = &mut self.sum;
        s.accuracy += f64::from(u8::from(o.correct));
        s.strong_tokens += o.strong_tokens as f64;
        s.strong_calls += f64::from(o.strong_calls);
        s.steps += f64::from(o.steps);
        s.weak_tokens += o.weak_tokens_kept as f64;
        self.n += 1;
    }

    fn mean(&self) -> ProblemOutcome {
        let (s, n) = (&self.sum, f64::from(self.n));
        ProblemOutcome {
            accuracy: s.accuracy / n,
            strong_tokens: s.strong_tokens / n,
            strong_calls: s.strong_calls / n,
            steps: s.steps / n,
            weak_tokens: s.weak_tokens / n,
        }
    }
}

/// A problem's outcome from its episodes' outcomes, in the order given (see [`EpisodeSums`]).
pub(crate) fn average_episodes(eps: impl Iterator<Item = EpisodeOutcome>) -> ProblemOutcome {
    let mut acc = EpisodeSums::default();
    eps.for_each(|o| acc.add(&o));
    acc.mean()
}

/// Dataset-level summary of one policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Problems evaluated.
    pub problems: usize,
    /// Mean accuracy over problems.
    pub accuracy: f64,
    /// Mean strong tokens per problem.
    pub strong_tokens: f64,
    /// Mean strong calls per problem.
    pub strong_calls: f64,
    /// Mean decisions per problem.
    pub steps: f64,
    /// Strong tokens ÷ strong tokens of always-strong on the same problems (0 = weak, 1 = strong).
    pub cost_fraction: f64,
    /// The optimised objective `accuracy − λ·strong_tokens`.
    pub reward: f64,
}

/// Average per-problem outcomes; `strong_ref_tokens` is always-strong's mean strong tokens.
pub fn summarize(outcomes: &[ProblemOutcome], strong_ref_tokens: f64, lambda: f64) -> Summary {
    let n = outcomes.len().max(1) as f64;
    let mean = |f: fn(&ProblemOutcome) -> f64| outcomes.iter().map(f).sum::<f64>() / n;
    let accuracy = mean(|o| o.accuracy);
    let strong_tokens = mean(|o| o.strong_tokens);
    Summary {
        problems: outcomes.len(),
        accuracy,
        strong_tokens,
        strong_calls: mean(|o| o.strong_calls),
        steps: mean(|o| o.steps),
        cost_fraction: if strong_ref_tokens > 0.0 {
            strong_tokens / strong_ref_tokens
        } else {
            0.0
        },
        reward: accuracy - lambda * strong_tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::tests::small_forest;
    use crate::policy::RefPolicy;

    #[test]
    fn reference_policies_on_hand_built_tree() {
        let f = small_forest();
        let probs = [0u32];
        let run = |p: RefPolicy| evaluate(&f, &probs, &p, EvalOptions::default()).unwrap()[0];
        let weak = run(RefPolicy::Weak);
        assert_eq!(
            (weak.accuracy, weak.strong_tokens, weak.steps),
            (0.0, 0.0, 2.0)
        );
        let strong = run(RefPolicy::Strong);
        assert_eq!((strong.accuracy, strong.strong_tokens), (1.0, 80.0));
        // threshold 0.5: n0 (0.9) continue, n1 (0.4) regenerate, n3 (0.7) continue → correct.
        let thr = run(RefPolicy::Threshold(0.5));
        assert_eq!(
            (thr.accuracy, thr.strong_tokens, thr.strong_calls),
            (1.0, 40.0, 1.0)
        );
        let s = summarize(&[thr], strong.strong_tokens, 0.001);
        assert!((s.cost_fraction - 0.5).abs() < 1e-12);
        assert!((s.reward - (1.0 - 0.04)).abs() < 1e-12);
    }

    #[test]
    fn random_policy_is_deterministic_per_seed() {
        let f = small_forest();
        let opts = EvalOptions {
            repeats: 64,
            seed: 5,
        };
        let a = evaluate(&f, &[0], &RefPolicy::Random(0.5), opts).unwrap();
        let b = evaluate(&f, &[0], &RefPolicy::Random(0.5), opts).unwrap();
        assert_eq!(a, b);
        let c = evaluate(
            &f,
            &[0],
            &RefPolicy::Random(0.5),
            EvalOptions { seed: 6, ..opts },
        )
        .unwrap();
        assert_ne!(a, c);
        assert!(
            a[0].strong_calls > 0.3 && a[0].strong_calls < 1.5,
            "{:?}",
            a[0]
        );
    }
}

#[cfg(test)]
mod wrap_tests {
    use super::*;
    use crate::forest::{Branch, Candidate, ForestBuilder};
    use crate::policy::RefPolicy;

    /// Two strong steps of 3e9 tokens each: the episode's and the problem's totals are 6e9,
    /// past u32::MAX (they wrapped to ≈1.7e9 with u32 sums).
    #[test]
    fn strong_token_totals_do_not_wrap_at_u32() {
        let big = 3_000_000_000u32;
        let c = |tokens| Candidate { tokens, prm: 0.5 };
        let mut b = ForestBuilder::new();
        b.begin_problem();
        b.begin_tree();
        b.push_node(0, c(1), Some(c(big)), [Branch::Absent, Branch::Node(1)]);
        b.push_node(
            1,
            c(1),
            Some(c(big)),
            [Branch::Absent, Branch::Outcome(true)],
        );
        let f = b.finish().unwrap();
        let o = run_episode(&f, 0, &RefPolicy::Strong, &mut Rng::new(0)).unwrap();
        assert_eq!(o.strong_tokens, 6_000_000_000);
        let p = evaluate(&f, &[0], &RefPolicy::Strong, EvalOptions::default()).unwrap();
        assert_eq!(p[0].strong_tokens, 6e9);
        let dp = crate::oracle::hindsight_optimal(&f, &[0], 0.0);
        assert_eq!(dp[0].strong_tokens, 6e9);
    }
}
