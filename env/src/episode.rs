//! One episode's state and its transition function: the TRIM reward semantics live here.

use std::fmt;

use crate::features::{AggObs, FeatureState, HistStep, TOKEN_SCALE};
use crate::forest::{Action, Branch, Forest};
use crate::policy::StepView;

/// Why a step could not be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepError {
    /// The chosen action is masked at this node (its branch was never generated).
    Masked { node: u32, action: Action },
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

/// One episode on one sample tree. `Copy` and small: the batched env keeps an array of these.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Episode {
    node: u32,
    feat: FeatureState,
    done: bool,
    out: EpisodeOutcome,
}

impl Episode {
    /// Start at the root of global sample tree `tree`.
    #[inline]
    pub fn start(forest: &Forest, tree: usize) -> Self {
        Episode {
            node: forest.root(tree),
            feat: FeatureState::new(),
            done: false,
            out: EpisodeOutcome::default(),
        }
    }

    /// True once a terminal outcome was reached.
    #[inline(always)]
    pub fn done(&self) -> bool {
        self.done
    }

    /// The current node (meaningless once done).
    #[inline(always)]
    pub fn node(&self) -> u32 {
        self.node
    }

    /// Outcome so far.
    #[inline(always)]
    pub fn outcome(&self) -> EpisodeOutcome {
        self.out
    }

    /// The TRIM-Agg observation at the current node.
    #[inline(always)]
    pub fn observe(&self, forest: &Forest) -> AggObs {
        let c = forest.columns();
        let n = self.node as usize;
        debug_assert_eq!(self.feat.steps(), c.depth[n]);
        self.feat.observe(c.weak_prm[n], c.weak_tokens[n])
    }

    /// What a policy that needs no history sees at the current node.
    #[inline(always)]
    pub fn view(&self, forest: &Forest) -> StepView<'static> {
        self.view_with(forest, &[])
    }

    /// What a policy sees at the current node, with the episode's `history`.
    #[inline(always)]
    pub fn view_with<'h>(&self, forest: &Forest, history: &'h [HistStep]) -> StepView<'h> {
        StepView {
            features: self.feat,
            weak: forest.weak(self.node),
            history,
        }
    }

    /// Available actions at the current node: `[continue, regenerate]`.
    #[inline(always)]
    pub fn mask(&self, forest: &Forest) -> [bool; 2] {
        forest.mask(self.node)
    }

    /// The history entry this action would append (for sequence policies).
    #[inline(always)]
    pub fn hist_entry(&self, forest: &Forest, action: Action) -> HistStep {
        let c = forest.columns();
        let n = self.node as usize;
        let regen = action == Action::Regenerate;
        [
            if regen {
                c.strong_prm[n]
            } else {
                c.weak_prm[n]
            },
            c.weak_prm[n],
            c.weak_tokens[n] as f32 / TOKEN_SCALE,
            if regen { 1.0 } else { 0.0 },
            if regen {
                c.strong_tokens[n] as f32 / TOKEN_SCALE
            } else {
                0.0
            },
        ]
    }

    /// Apply `action`. `lambda` is the cost per strong token.
    #[inline(always)]
    pub fn step(
        &mut self,
        forest: &Forest,
        action: Action,
        lambda: f32,
    ) -> Result<Transition, StepError> {
        debug_assert!(!self.done, "step on a finished episode");
        let c = forest.columns();
        let n = self.node as usize;
        let (chosen_prm, reward) = match action {
            Action::Continue => {
                self.out.weak_tokens_kept += u64::from(c.weak_tokens[n]);
                (c.weak_prm[n], 0.0)
            }
            Action::Regenerate => {
                let tokens = c.strong_tokens[n];
                self.out.strong_tokens += u64::from(tokens);
                self.out.strong_calls += 1;
                self.out.weak_tokens_discarded += u64::from(c.weak_tokens[n]);
                (c.strong_prm[n], -lambda * tokens as f32)
            }
        };
        self.out.steps += 1;
        self.feat.push(chosen_prm);
        match c.branch(self.node, action) {
            Branch::Node(next) => {
                self.node = next;
                Ok(Transition {
                    reward,
                    done: false,
                    chosen_prm,
                })
            }
            Branch::Outcome(correct) => {
                self.done = true;
                self.out.correct = correct;
                Ok(Transition {
                    reward: reward + if correct { 1.0 } else { 0.0 },
                    done: true,
                    chosen_prm,
                })
            }
            Branch::Absent => Err(StepError::Masked {
                node: self.node,
                action,
            }),
        }
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
