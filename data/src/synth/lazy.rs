//! The lazy synthetic world: nodes generated on demand from keyed RNG streams, no tree stored.
//!
//! Why: a materialised tree must cap regenerations (a tree with every history of at most `K`
//! regenerations has ~2000 nodes per problem at K = 4 and ~6300 at K = 5), and the cap shapes
//! every curve measured on it. Here a node is generated from its parent when an episode reaches
//! it, from the stream keyed by (tree key, action history) ([`NodeAt`]), so
//!
//! * both actions are available at every node (no cap), and memory is a few bytes per problem;
//! * the same history always yields the same node (replay semantics are unchanged);
//! * a `K`-capped file from `trim data synth --max-regens K` holds exactly this world's nodes on
//!   every history within the cap (tested), and [`LazyWorld::with_cap`] reproduces the file's
//!   masks too.

use std::ops::Range;
use std::path::Path;

use rayon::prelude::*;
use trim_env::{Action, Candidate, Next, SignalKinds, Signals, World};

use crate::error::Result;
use crate::schema::{SourceRef, StepState};

use super::config::SynthConfig;
use super::generate::ProblemDraws;
use super::inputs::load_model;
use super::latent::{Difficulty, Draw, LatentModel};
use super::node::NodeAt;

/// One generated candidate, as the replay needs it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LazyCandidate {
    pub tokens: u32,
    pub prm: f32,
    /// Latent correctness state (statistics and tests; policies never see it).
    pub state: StepState,
    /// Final-answer correctness when this step ends the solution.
    pub outcome: Option<bool>,
}

impl LazyCandidate {
    fn of(d: &Draw) -> Self {
        LazyCandidate {
            tokens: d.rec.tokens,
            prm: d.rec.prm,
            state: d.rec.state.unwrap_or(StepState::S0),
            outcome: d.correct,
        }
    }

    fn replay(&self) -> Candidate {
        Candidate {
            tokens: self.tokens,
            prm: self.prm,
        }
    }
}

/// A decision node of the lazy world: where it sits and its weak candidate. The strong candidate
/// is drawn only when asked for ([`LazyWorld::strong_candidate`]): it is a pure function of the
/// node's key and prefix, and most steps are never regenerated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LazyNode {
    pub at: NodeAt,
    /// Global sample-tree index.
    pub tree: u32,
    pub weak: LazyCandidate,
    /// Whether the world offers a strong candidate here (false only where a cap masks it).
    pub has_strong: bool,
}

/// A synthetic world generated on demand (see the module docs).
pub struct LazyWorld {
    model: LatentModel,
    /// `Some(K)`: mask as a `--max-regens K` file does; `None`: no cap.
    cap: Option<u32>,
    trees_per_problem: usize,
    test: Vec<bool>,
    difficulty: Vec<Difficulty>,
    /// Key of each global sample tree.
    tree_keys: Vec<u64>,
    max_steps: u16,
    /// The calibration inputs, with sha256 (provenance and the world's fingerprint).
    sources: Vec<SourceRef>,
}

impl LazyWorld {
    /// The uncapped world of `cfg` (`cfg_path` names the config in errors). The problems,
    /// splits and tree keys are those `trim data synth` draws for the same config.
    pub fn new(cfg: &SynthConfig, cfg_path: &Path) -> Result<Self> {
        Self::build(cfg, cfg_path, None)
    }

    /// The world restricted as a `--max-regens k` file is: regenerate is masked once a path
    /// (other than the all-strong one) holds `k` regenerations.
    pub fn with_cap(cfg: &SynthConfig, cfg_path: &Path, k: u32) -> Result<Self> {
        Self::build(cfg, cfg_path, Some(k))
    }

    fn build(cfg: &SynthConfig, cfg_path: &Path, cap: Option<u32>) -> Result<Self> {
        cfg.check(cfg_path)?;
        let (model, sources) = load_model(&cfg.latent, &cfg.inputs, cfg_path)?;
        let draws: Vec<ProblemDraws> = (0..cfg.problems)
            .into_par_iter()
            .map(|p| ProblemDraws::new(cfg, &model, p))
            .collect();
        Ok(LazyWorld {
            cap,
            trees_per_problem: cfg.trees as usize,
            test: draws.iter().map(|d| d.test).collect(),
            difficulty: draws.iter().map(|d| d.difficulty).collect(),
            tree_keys: draws.iter().flat_map(|d| d.tree_keys.clone()).collect(),
            max_steps: model.cfg.max_steps,
            model,
            sources,
        })
    }

    /// The calibrated model the world draws from.
    pub fn model(&self) -> &LatentModel {
        &self.model
    }

    /// The calibration inputs the model was built from.
    pub fn sources(&self) -> &[SourceRef] {
        &self.sources
    }

    /// The regeneration cap, if any.
    pub fn cap(&self) -> Option<u32> {
        self.cap
    }

    /// Split name of problem `p` (`train` or `test`).
    pub fn split(&self, p: usize) -> &'static str {
        if self.test[p] { "test" } else { "train" }
    }

    /// Indices of the problems in `split` (`all` for every problem).
    pub fn problems_in_split(&self, split: &str) -> Vec<u32> {
        (0..self.test.len() as u32)
            .filter(|&p| split == "all" || self.split(p as usize) == split)
            .collect()
    }

    /// Problems per split, sorted by name.
    pub fn splits(&self) -> Vec<(String, usize)> {
        let test = self.test.iter().filter(|&&t| t).count();
        [("test", test), ("train", self.test.len() - test)]
            .into_iter()
            .filter(|&(_, n)| n > 0)
            .map(|(s, n)| (s.to_string(), n))
            .collect()
    }

    /// The node at `at` in global tree `tree`.
    fn node(&self, tree: u32, at: NodeAt) -> LazyNode {
        let d = &self.difficulty[tree as usize / self.trees_per_problem];
        LazyNode {
            at,
            tree,
            // Signals are not kept in a lazy node (drawn on demand), so not drawn here.
            weak: LazyCandidate::of(&self.model.weak_candidate(d, &at, None)),
            has_strong: self.cap.is_none_or(|k| at.regens < k || at.all_strong),
        }
    }

    /// The strong candidate at `node` (drawn from its keyed stream; None where a cap masks it).
    pub fn strong_candidate(&self, node: &LazyNode) -> Option<LazyCandidate> {
        node.has_strong.then(|| {
            let d = &self.difficulty[node.tree as usize / self.trees_per_problem];
            LazyCandidate::of(&self.model.strong_at(d, &node.at))
        })
    }
}

impl World for LazyWorld {
    type Node = LazyNode;

    fn n_problems(&self) -> usize {
        self.test.len()
    }

    fn trees_of(&self, problem: usize) -> Range<usize> {
        let k = self.trees_per_problem;
        problem * k..(problem + 1) * k
    }

    fn root(&self, tree: usize) -> LazyNode {
        self.node(tree as u32, NodeAt::root(self.tree_keys[tree]))
    }

    #[inline]
    fn depth(&self, node: &LazyNode) -> u16 {
        node.at.depth
    }

    #[inline]
    fn weak(&self, node: &LazyNode) -> Candidate {
        node.weak.replay()
    }

    #[inline]
    fn strong(&self, node: &LazyNode) -> Option<Candidate> {
        self.strong_candidate(node).map(|s| s.replay())
    }

    #[inline]
    fn mask(&self, node: &LazyNode) -> [bool; 2] {
        // A capped file expands the weak branch beyond K regenerations only where it finishes.
        let cont = match self.cap {
            Some(k) => node.weak.outcome.is_some() || node.at.regens <= k,
            None => true,
        };
        [cont, node.has_strong]
    }

    fn next(&self, node: &LazyNode, action: Action) -> Next<LazyNode> {
        if !self.mask(node)[action as usize] {
            return Next::Absent;
        }
        let kept = match action {
            Action::Continue => node.weak,
            Action::Regenerate => match self.strong_candidate(node) {
                Some(s) => s,
                None => return Next::Absent,
            },
        };
        match kept.outcome {
            Some(correct) => Next::Outcome(correct),
            None => {
                let at = node.at.child_after(action, Some(kept.state), kept.prm);
                Next::Node(self.node(node.tree, at))
            }
        }
    }

    fn max_depth(&self) -> u16 {
        self.max_steps.saturating_sub(1)
    }

    fn node_id(&self, node: &LazyNode) -> u64 {
        node.at.key
    }

    fn signal_kinds(&self) -> SignalKinds {
        self.model.cfg.signals.kinds()
    }

    /// Drawn on demand from the node's key (only policies that read signals ask).
    fn weak_signals(&self, node: &LazyNode) -> Signals {
        let d = &self.difficulty[node.tree as usize / self.trees_per_problem];
        self.model.weak_signals(d, &node.at, node.weak.state)
    }
}

#[cfg(test)]
mod tests {
    use trim_env::{EvalOptions, Forest, RefPolicy, evaluate};

    use super::*;
    use crate::synth::generate;

    fn cfg(problems: u32, k: u32, trees: u32) -> SynthConfig {
        SynthConfig {
            problems,
            max_regens: k,
            trees,
            ..SynthConfig::shipped()
        }
    }

    /// Walk every history of the stored tree and the lazy world side by side: same candidates,
    /// same masks, same outcomes. Returns the nodes compared.
    fn walk(f: &Forest, n: u32, w: &LazyWorld, l: &LazyNode) -> usize {
        assert_eq!(World::weak(f, &n), w.weak(l), "weak at {l:?}");
        assert_eq!(World::strong(f, &n), w.strong(l), "strong at {l:?}");
        assert_eq!(World::mask(f, &n), w.mask(l), "mask at {l:?}");
        assert_eq!(World::depth(f, &n), w.depth(l));
        let bits = |s: Signals| (s.judge_score.to_bits(), s.mean_logprob.to_bits());
        assert_eq!(
            bits(World::weak_signals(f, &n)),
            bits(w.weak_signals(l)),
            "signals at {l:?}"
        );
        let mut seen = 1;
        for a in [Action::Continue, Action::Regenerate] {
            match (World::next(f, &n, a), w.next(l, a)) {
                (Next::Node(fc), Next::Node(lc)) => seen += walk(f, fc, w, &lc),
                (Next::Outcome(x), Next::Outcome(y)) => assert_eq!(x, y, "{a} at {l:?}"),
                (Next::Absent, Next::Absent) => {}
                (x, y) => panic!("{a} at {l:?}: file {x:?}, lazy {y:?}"),
            }
        }
        seen
    }

    #[test]
    fn a_capped_file_and_the_lazy_world_hold_the_same_nodes_on_every_path() {
        for k in [0u32, 1, 2] {
            let c = cfg(12, k, 2);
            let (ds, _) = generate(&c, Path::new("<t>"), "cmd").unwrap();
            let loaded = crate::validate(Path::new("<mem>"), ds).unwrap();
            let f = &loaded.forest;
            let capped = LazyWorld::with_cap(&c, Path::new("<t>"), k).unwrap();
            assert_eq!(capped.n_problems(), f.n_problems());
            // The shipped profile carries both signals: the file has their columns.
            assert_eq!(World::signal_kinds(f), capped.signal_kinds());
            assert!(capped.signal_kinds().judge_score && capped.signal_kinds().mean_logprob);
            let mut nodes = 0;
            for t in 0..f.n_trees() {
                nodes += walk(f, f.root(t), &capped, &capped.root(t));
            }
            assert_eq!(nodes, f.n_nodes(), "k={k}");
            let splits: Vec<_> = (0..f.n_problems()).map(|p| capped.split(p)).collect();
            let stored: Vec<_> = loaded
                .ds
                .problems
                .iter()
                .map(|p| p.split.as_str())
                .collect();
            assert_eq!(splits, stored);
        }
    }

    #[test]
    fn the_uncapped_world_agrees_with_the_file_within_the_cap_and_goes_beyond_it() {
        let c = cfg(30, 1, 1);
        let (ds, _) = generate(&c, Path::new("<t>"), "cmd").unwrap();
        let f = crate::validate(Path::new("<mem>"), ds).unwrap().forest;
        let lazy = LazyWorld::new(&c, Path::new("<t>")).unwrap();
        // Every policy that the file supports plays identically in the lazy world.
        let problems: Vec<u32> = (0..30).collect();
        let mut compared = 0;
        let rules = [0.0f32, 0.3, 0.7, 0.95].map(RefPolicy::Threshold);
        let peers = [RefPolicy::Judge(0.6), RefPolicy::Confidence(-0.3)];
        for pol in rules.into_iter().chain(peers) {
            let a = evaluate(&f, &problems, &pol, EvalOptions::default()).unwrap();
            let b = evaluate(&lazy, &problems, &pol, EvalOptions::default()).unwrap();
            // An episode that made at most K = 1 strong calls in the lazy world never met the
            // cap, so the file plays it identically.
            for (x, y) in a.iter().zip(&b) {
                if y.strong_calls <= 1.0 {
                    assert_eq!(x, y, "{pol}");
                    compared += 1;
                }
            }
        }
        assert!(compared > 60, "{compared}");
        // Always-strong and always-weak are complete in both.
        for pol in [RefPolicy::Weak, RefPolicy::Strong] {
            let a = evaluate(&f, &problems, &pol, EvalOptions::default()).unwrap();
            let b = evaluate(&lazy, &problems, &pol, EvalOptions::default()).unwrap();
            assert_eq!(a, b);
        }
        // Beyond the cap: a second regeneration off the all-strong path is available.
        let mut n = lazy.root(0);
        let mut regens = 0;
        for a in [Action::Continue, Action::Regenerate, Action::Regenerate] {
            assert_eq!(lazy.mask(&n), [true, true]);
            match lazy.next(&n, a) {
                Next::Node(c) => n = c,
                _ => break,
            }
            regens += u32::from(a == Action::Regenerate);
        }
        assert!(regens <= 2 && lazy.cap().is_none());
    }

    #[test]
    fn the_same_history_gives_the_same_node() {
        let c = cfg(5, 2, 1);
        let w = LazyWorld::new(&c, Path::new("<t>")).unwrap();
        let path = [Action::Regenerate, Action::Continue, Action::Regenerate];
        let play = || {
            let mut n = w.root(3);
            let mut seen = vec![n];
            for &a in &path {
                if let Next::Node(c) = w.next(&n, a) {
                    n = c;
                    seen.push(n);
                }
            }
            seen
        };
        assert_eq!(play(), play());
    }
}
