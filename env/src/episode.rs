//! One episode's state and its transition function: the TRIM reward semantics live here.

use std::fmt;
use std::ops::ControlFlow;

use crate::features::{AggObs, FeatureState, HistStep, TOKEN_SCALE};
use crate::forest::Action;
use crate::policy::{Conditions, StepView};
use crate::signals::Signals;
use crate::world::{Next, World};

/// Why a step could not be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// The chosen action is masked at this node (its branch was never generated). `node` is
    /// the world's [`node_id`](World::node_id).
    Masked { node: u64, action: Action },
    /// The policy reads step signals (judge score, mean log-probability) the world does not
    /// carry: evaluating it would act on missing values.
    MissingSignals { names: Vec<&'static str> },
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Masked { node, action } => {
                write!(
                    f,
                    "action {action} is masked at node {node} (branch not generated)"
                )
            }
            StepError::MissingSignals { names } => write!(
                f,
                "the policy reads the step signal(s) {} that this dataset does not carry (a \
                 weak_judge_score / weak_mean_logprob column, or a synth world with \
                 latent.signals.judge / latent.signals.logprob = true)",
                names.join(", ")
            ),
        }
    }
}

impl std::error::Error for StepError {}

/// The result of one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    /// `-λ·strong_tokens` on regenerate, plus 1 at the terminal step if the answer is correct.
    pub reward: f32,
    /// The episode ended with this step.
    pub done: bool,
    /// PRM score of the step that was kept.
    pub chosen_prm: f32,
}

/// What happened in a finished (or running) episode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpisodeOutcome {
    /// Final answer correct (false while running).
    pub correct: bool,
    /// Strong tokens spent (the cost the reward charges). u64: per-step counts are u32, and
    /// their sum over an episode must not wrap.
    pub strong_tokens: u64,
    /// Number of regenerate actions.
    pub strong_calls: u16,
    /// Decisions taken.
    pub steps: u16,
    /// Tokens of weak steps that were kept.
    pub weak_tokens_kept: u64,
    /// Tokens of weak steps that were generated and then discarded by a regenerate.
    pub weak_tokens_discarded: u64,
}

/// One episode on one sample tree of a [`World`] whose nodes are `N` (a stored [`Forest`]'s
/// `u32` by default). `Copy` and small: the batched env keeps an array of these.
///
/// [`Forest`]: crate::Forest
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Episode<N = u32> {
    node: N,
    feat: FeatureState,
    done: bool,
    out: EpisodeOutcome,
    /// Strong tokens this episode may still spend (`u64::MAX`: no budget).
    budget_left: u64,
    /// The episode's whole budget (`u64::MAX`: none).
    budget: u64,
    /// The λ conditioned policies are shown (NaN: none); rewards use the λ given to `step`.
    lambda: f32,
}

impl<N: Copy> Episode<N> {
    /// Start at the root of global sample tree `tree`.
    #[inline]
    pub fn start<W: World<Node = N>>(world: &W, tree: usize) -> Self {
        Episode {
            node: world.root(tree),
            feat: FeatureState::new(),
            done: false,
            out: EpisodeOutcome::default(),
            budget_left: u64::MAX,
            budget: u64::MAX,
            lambda: f32::NAN,
        }
    }

    /// This episode shown to policies as conditioned on `lambda` ([`StepView::cond`]); the
    /// caller passes the same λ to [`step`](Self::step) so rewards use it too.
    #[inline]
    pub fn with_lambda(mut self, lambda: f32) -> Self {
        self.lambda = lambda;
        self
    }

    /// Start with a hard budget of `budget` strong tokens: `regenerate` is masked wherever the
    /// strong candidate needs more than what is left — except where `continue` is impossible
    /// (an absent branch), so a budget never creates a dead end.
    #[inline]
    pub fn start_with_budget<W: World<Node = N>>(world: &W, tree: usize, budget: u64) -> Self {
        Episode {
            budget_left: budget,
            budget,
            ..Self::start(world, tree)
        }
    }

    /// The λ this episode is conditioned on (NaN: none).
    #[inline(always)]
    pub fn lambda(&self) -> f32 {
        self.lambda
    }

    /// Strong tokens still allowed (`u64::MAX` without a budget).
    #[inline(always)]
    pub fn budget_left(&self) -> u64 {
        self.budget_left
    }

    /// True once a terminal outcome was reached.
    #[inline(always)]
    pub fn done(&self) -> bool {
        self.done
    }

    /// The current node (meaningless once done).
    #[inline(always)]
    pub fn node(&self) -> N {
        self.node
    }

    /// Outcome so far.
    #[inline(always)]
    pub fn outcome(&self) -> EpisodeOutcome {
        self.out
    }

    /// The TRIM-Agg observation at the current node.
    #[inline(always)]
    pub fn observe<W: World<Node = N>>(&self, world: &W) -> AggObs {
        let weak = world.weak(&self.node);
        debug_assert_eq!(self.feat.steps(), world.depth(&self.node));
        self.feat.observe(weak.prm, weak.tokens)
    }

    /// What a policy that needs no history sees at the current node.
    #[inline(always)]
    pub fn view<W: World<Node = N>>(&self, world: &W) -> StepView<'static> {
        self.view_with(world, &[])
    }

    /// What a policy sees at the current node, with the episode's `history`.
    #[inline(always)]
    pub fn view_with<'h, W: World<Node = N>>(
        &self,
        world: &W,
        history: &'h [HistStep],
    ) -> StepView<'h> {
        StepView {
            features: self.feat,
            weak: world.weak(&self.node),
            history,
            cond: Conditions {
                lambda: self.lambda,
                budget_left: self.budget_left,
                budget: self.budget,
            },
            signals: Signals::NONE,
        }
    }

    /// [`Self::view_with`] plus the weak candidate's optional signals (for policies that
    /// [want them](crate::Policy::wants_signals)).
    #[inline(always)]
    pub fn view_signals<'h, W: World<Node = N>>(
        &self,
        world: &W,
        history: &'h [HistStep],
    ) -> StepView<'h> {
        StepView {
            signals: world.weak_signals(&self.node),
            ..self.view_with(world, history)
        }
    }

    /// The episode's whole budget (`u64::MAX`: none).
    #[inline(always)]
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Whether the budget (not the tree) masks `regenerate` at the current node.
    #[inline]
    pub fn budget_binds<W: World<Node = N>>(&self, world: &W) -> bool {
        world.mask(&self.node)[1] && !self.mask(world)[1]
    }

    /// Available actions at the current node: `[continue, regenerate]`.
    #[inline(always)]
    pub fn mask<W: World<Node = N>>(&self, world: &W) -> [bool; 2] {
        let m = world.mask(&self.node);
        if self.budget_left == u64::MAX || !m[1] || !m[0] {
            return m;
        }
        let fits =
            (world.strong(&self.node)).is_some_and(|s| u64::from(s.tokens) <= self.budget_left);
        [m[0], fits]
    }

    /// The history entry this action would append (for sequence policies).
    #[inline(always)]
    pub fn hist_entry<W: World<Node = N>>(&self, world: &W, action: Action) -> HistStep {
        let weak = world.weak(&self.node);
        let strong = match action {
            Action::Regenerate => world.strong(&self.node),
            Action::Continue => None,
        };
        let chosen = strong.unwrap_or(weak);
        [
            chosen.prm,
            weak.prm,
            weak.tokens as f32 / TOKEN_SCALE,
            if strong.is_some() { 1.0 } else { 0.0 },
            strong.map_or(0.0, |s| s.tokens as f32 / TOKEN_SCALE),
        ]
    }

    /// Apply `action`. `lambda` is the cost per strong token. A masked action is refused
    /// before anything changes.
    #[inline(always)]
    pub fn step<W: World<Node = N>>(
        &mut self,
        world: &W,
        action: Action,
        lambda: f32,
    ) -> Result<Transition, StepError> {
        debug_assert!(!self.done, "step on a finished episode");
        let masked = StepError::Masked {
            node: world.node_id(&self.node),
            action,
        };
        // Where the step leads: the next node, or the end with the answer's correctness.
        let to = match world.next(&self.node, action) {
            Next::Absent => return Err(masked),
            Next::Node(n) => ControlFlow::Continue(n),
            Next::Outcome(correct) => ControlFlow::Break(correct),
        };
        let weak = world.weak(&self.node);
        let (chosen_prm, reward) = match action {
            Action::Continue => {
                self.out.weak_tokens_kept += u64::from(weak.tokens);
                (weak.prm, 0.0)
            }
            Action::Regenerate => {
                let Some(s) = world.strong(&self.node) else {
                    return Err(masked);
                };
                self.out.strong_tokens += u64::from(s.tokens);
                self.out.strong_calls += 1;
                if self.budget_left != u64::MAX {
                    self.budget_left = self.budget_left.saturating_sub(u64::from(s.tokens));
                }
                self.out.weak_tokens_discarded += u64::from(weak.tokens);
                (s.prm, -lambda * s.tokens as f32)
            }
        };
        self.out.steps += 1;
        self.feat.push(chosen_prm);
        let (done, bonus) = match to {
            ControlFlow::Continue(n) => {
                self.node = n;
                (false, 0.0)
            }
            ControlFlow::Break(correct) => {
                self.done = true;
                self.out.correct = correct;
                (true, if correct { 1.0 } else { 0.0 })
            }
        };
        Ok(Transition {
            reward: reward + bonus,
            done,
            chosen_prm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::tests::small_forest;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn hand_computed_rewards_and_features() {
        let f = small_forest();
        let lambda = 0.01;
        // Path: continue at n0, regenerate at n1, continue at n3 → correct.
        let mut ep = Episode::start(&f, 0);
        assert_eq!(ep.observe(&f), [1.0, 1.0, 0.9, 10.0 / 300.0, 0.0]);
        let t = ep.step(&f, Action::Continue, lambda).unwrap();
        assert_eq!((t.reward, t.done), (0.0, false));
        let o = ep.observe(&f);
        assert!(close(o[0], 0.9) && close(o[1], 0.9) && close(o[2], 0.4));
        assert!(close(o[3], 0.1) && close(o[4], 1.0 / 30.0));
        let t = ep.step(&f, Action::Regenerate, lambda).unwrap();
        assert!(close(t.reward, -0.4), "{}", t.reward); // -0.01 * 40 strong tokens
        let o = ep.observe(&f);
        // chosen scores so far: 0.9 (weak at n0), 0.8 (strong at n1)
        assert!(close(o[0], 0.8) && close(o[1], 0.72) && close(o[2], 0.7));
        assert!(close(o[4], 2.0 / 30.0));
        assert_eq!(ep.mask(&f), [true, false]);
        let err = ep.clone().step(&f, Action::Regenerate, lambda).unwrap_err();
        assert_eq!(
            err,
            StepError::Masked {
                node: 3,
                action: Action::Regenerate
            }
        );
        let t = ep.step(&f, Action::Continue, lambda).unwrap();
        assert_eq!((t.reward, t.done), (1.0, true));
        let out = ep.outcome();
        assert!(out.correct);
        assert_eq!((out.strong_tokens, out.strong_calls, out.steps), (40, 1, 3));
        assert_eq!((out.weak_tokens_kept, out.weak_tokens_discarded), (15, 30));
    }

    #[test]
    fn all_weak_fails_all_strong_pays_every_step() {
        let f = small_forest();
        let mut ep = Episode::start(&f, 0);
        let mut ret = 0.0;
        while !ep.done() {
            ret += ep.step(&f, Action::Continue, 0.01).unwrap().reward;
        }
        assert_eq!((ret, ep.outcome().correct), (0.0, false));
        let mut ep = Episode::start(&f, 0);
        let mut ret = 0.0;
        while !ep.done() {
            ret += ep.step(&f, Action::Regenerate, 0.01).unwrap().reward;
        }
        assert!(close(ret, 1.0 - 0.01 * 80.0), "{ret}");
        assert_eq!(ep.outcome().strong_tokens, 80);
    }
}
