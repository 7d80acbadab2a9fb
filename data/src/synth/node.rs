//! Keyed nodes: every node of a synthetic tree is drawn from its own RNG stream, keyed by the
//! tree and the action history that reaches it.
//!
//! Why keys and not one sequential stream per tree: a node's candidates must not depend on which
//! *other* nodes were generated. With keys, a tree materialised with a regeneration cap `K`
//! (`trim data synth --max-regens K`) and the uncapped lazy world
//! ([`LazyWorld`](super::lazy::LazyWorld)) hold exactly the same node on every history both
//! contain, and a node can be generated on demand, in any order, from its parent alone.

use trim_env::{Action, Rng};

use crate::schema::{CandidateRec, StepState};

use super::latent::{Difficulty, Draw, LatentModel, Prefix, RealStep, Role};

/// Stream ids inside a node's key: the weak and the strong candidate draw from separate
/// streams, so whether a strong candidate is generated never shifts the weak one.
const WEAK_STREAM: u64 = 0;
const STRONG_STREAM: u64 = 1;

/// Where a node sits: its key, depth and what the chosen path to it holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeAt {
    /// Hash of (tree key, action history): the node's RNG key.
    pub key: u64,
    /// Decisions before this one (0 at the root).
    pub depth: u16,
    /// The chosen prefix (all-S0 flag, running minimum PRM).
    pub prefix: Prefix,
    /// Regenerations on the path.
    pub regens: u32,
    /// Every action on the path was a regeneration (true at the root).
    pub all_strong: bool,
}

impl NodeAt {
    /// The root of the tree with key `tree_key`.
    pub fn root(tree_key: u64) -> Self {
        NodeAt {
            key: tree_key,
            depth: 0,
            prefix: Prefix::root(),
            regens: 0,
            all_strong: true,
        }
    }

    /// The node reached by keeping `kept` through `action`.
    pub fn child(&self, action: Action, kept: &CandidateRec) -> Self {
        self.child_after(action, kept.state, kept.prm)
    }

    /// The node reached by keeping a step in `state` with PRM `prm` through `action`.
    #[inline]
    pub fn child_after(&self, action: Action, state: Option<StepState>, prm: f32) -> Self {
        let regen = action == Action::Regenerate;
        NodeAt {
            key: child_key(self.key, action),
            depth: self.depth + 1,
            prefix: self.prefix.after(state, prm),
            regens: self.regens + u32::from(regen),
            all_strong: self.all_strong && regen,
        }
    }
}

/// The key of the child through `action` (SplitMix64 finaliser of the parent key and action).
#[inline]
pub fn child_key(key: u64, action: Action) -> u64 {
    let salt = 0xD6E8_FEB8_6659_FD93u64.wrapping_mul(action as u64 + 1);
    let mut z = (key ^ salt).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl LatentModel {
    /// The weak candidate at `at`: `real` (the importer's logged step, PRM drawn by its real
    /// state) when given, else drawn from the model.
    pub fn weak_at(&self, d: &Difficulty, at: &NodeAt, real: Option<&RealStep>) -> Draw {
        let mut draw = self.weak_candidate(d, at, real);
        if !self.cfg.signals.is_off() {
            let st = draw.rec.state.unwrap_or(StepState::S0);
            let s = self.weak_signals(d, at, st);
            let set = |x: f32| (!x.is_nan()).then_some(x);
            draw.rec.judge_score = set(s.judge_score);
            draw.rec.mean_logprob = set(s.mean_logprob);
        }
        draw
    }

    /// The weak candidate without its signals (a lazy world draws those only when a policy
    /// asks: `World::weak_signals`).
    pub(crate) fn weak_candidate(
        &self,
        d: &Difficulty,
        at: &NodeAt,
        real: Option<&RealStep>,
    ) -> Draw {
        let mut rng = Rng::stream(at.key, WEAK_STREAM);
        match real {
            Some(r) => Draw {
                rec: CandidateRec {
                    tokens: r.tokens.max(1),
                    prm: self.prm(r.state, &at.prefix, &mut rng),
                    finished: r.finished,
                    state: Some(r.state),
                    text: r.text.clone(),
                    hash: r.hash.clone(),
                    judge_score: None,
                    mean_logprob: None,
                },
                correct: r.correct.or(r.finished.then_some(false)),
            },
            None => self.candidate(Role::Weak, d, &at.prefix, at.depth, &mut rng),
        }
    }

    /// The strong candidate at `at`. Off the all-strong path it is a routed regeneration: its
    /// per-step accuracy is `p_strong_routed` and its length is scaled by
    /// `regen_tokens_factor` (deterministic, no draw).
    pub fn strong_at(&self, d: &Difficulty, at: &NodeAt) -> Draw {
        let mut rng = Rng::stream(at.key, STRONG_STREAM);
        let routed = Difficulty {
            p_strong: d.p_strong_routed,
            ..*d
        };
        let d = if at.all_strong { d } else { &routed };
        let mut s = self.candidate(Role::Strong, d, &at.prefix, at.depth, &mut rng);
        let f = self.cfg.regen_tokens_factor;
        if !at.all_strong && f != 1.0 {
            s.rec.tokens = (f64::from(s.rec.tokens) * f).round().max(1.0) as u32;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::synth::params::LatentConfig;

    #[test]
    fn a_node_depends_only_on_its_key_and_prefix() {
        let m = LatentModel::vendored(LatentConfig::default(), Path::new("<t>")).unwrap();
        let d = m.difficulty(0.3);
        let root = NodeAt::root(42);
        let (w1, s1) = (m.weak_at(&d, &root, None), m.strong_at(&d, &root));
        // The same node drawn again, in the other order, gives the same candidates.
        let (s2, w2) = (m.strong_at(&d, &root), m.weak_at(&d, &root, None));
        assert_eq!((w1.clone(), s1.clone()), (w2, s2));
        let a = root.child(Action::Continue, &w1.rec);
        let b = root.child(Action::Regenerate, &s1.rec);
        assert_ne!(a.key, b.key);
        assert_ne!(a.key, root.key);
        assert_eq!(a, root.child(Action::Continue, &w1.rec));
        assert!(b.all_strong && !a.all_strong && b.regens == 1 && a.depth == 1);
        // Different keys give different draws (with overwhelming probability).
        let others: Vec<_> = (0..20u64)
            .map(|k| m.weak_at(&d, &NodeAt::root(k), None).rec.prm)
            .collect();
        assert!(others.windows(2).any(|w| w[0] != w[1]));
    }
}
