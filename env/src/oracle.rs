//! Hindsight and query-level reference policies computed exactly on the trees.
//!
//! * [`hindsight_optimal`]: per sample tree, the action sequence that maximises
//!   `correct − λ·strong_tokens`, by dynamic programming over the tree. No policy that only sees
//!   the observations can do better on that data, so it is the upper limit of any curve.
//! * [`query_oracle`]: the query-level oracle — the all-strong path only where the all-weak path
//!   fails and the all-strong path succeeds.
//! * [`query_cascade`]: AutoMix with a PRM verifier — run the all-weak path; if its minimum PRM
//!   score is below `tau`, answer with the all-strong path instead, paying all its strong tokens.
//!
//! All three average over a problem's sample trees, like [`crate::evaluate`].

use rayon::prelude::*;

use crate::forest::{Action, Branch, Forest};
use crate::rollout::ProblemOutcome;
use crate::world::{Next, World};

/// The best achievable result below one node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Best {
    /// `correct − λ·strong_tokens` of the best continuation.
    pub value: f64,
    pub correct: bool,
    /// u64: a sum of u32 per-step counts must not wrap.
    pub strong_tokens: u64,
    pub strong_calls: u16,
    pub steps: u16,
}

impl Best {
    /// Strictly better: higher value; on (numerical) ties fewer strong tokens.
    fn beats(&self, other: &Best) -> bool {
        const EPS: f64 = 1e-12;
        self.value > other.value + EPS
            || ((self.value - other.value).abs() <= EPS && self.strong_tokens < other.strong_tokens)
    }
}

/// Exact best continuation from `node` at cost `lambda` per strong token (recursive; trees are
/// at most a few dozen levels deep).
pub fn best_from(forest: &Forest, node: u32, lambda: f64) -> Best {
    let mut best: Option<Best> = None;
    for a in Action::ALL {
        let cost_tokens = match a {
            Action::Continue => 0,
            Action::Regenerate => forest.strong(node).map_or(0, |c| u64::from(c.tokens)),
        };
        let here = match forest.branch(node, a) {
            Branch::Absent => continue,
            Branch::Outcome(c) => Best {
                value: f64::from(u8::from(c)),
                correct: c,
                strong_tokens: 0,
                strong_calls: 0,
                steps: 0,
            },
            Branch::Node(n) => best_from(forest, n, lambda),
        };
        let regen = u16::from(a == Action::Regenerate);
        let cand = Best {
            value: here.value - lambda * cost_tokens as f64,
            correct: here.correct,
            strong_tokens: here.strong_tokens + cost_tokens,
            strong_calls: here.strong_calls + regen,
            steps: here.steps + 1,
        };
        if best.as_ref().is_none_or(|b| cand.beats(b)) {
            best = Some(cand);
        }
    }
    best.expect("validated forests offer an action at every node")
}

fn average(outs: impl Iterator<Item = (bool, f64, f64, f64)>) -> ProblemOutcome {
    let mut o = ProblemOutcome::default();
    let mut n = 0.0;
    for (correct, tokens, calls, steps) in outs {
        o.accuracy += f64::from(u8::from(correct));
        o.strong_tokens += tokens;
        o.strong_calls += calls;
        o.steps += steps;
        n += 1.0;
    }
    o.accuracy /= n;
    o.strong_tokens /= n;
    o.strong_calls /= n;
    o.steps /= n;
    o
}

/// The step-level hindsight-optimal policy at cost `lambda`, per problem.
pub fn hindsight_optimal(forest: &Forest, problems: &[u32], lambda: f64) -> Vec<ProblemOutcome> {
    problems
        .par_iter()
        .map(|&p| {
            average(forest.trees_of(p as usize).map(|t| {
                let b = best_from(forest, forest.root(t), lambda);
                (
                    b.correct,
                    b.strong_tokens as f64,
                    f64::from(b.strong_calls),
                    f64::from(b.steps),
                )
            }))
        })
        .collect()
}

/// The step-level hindsight-optimal accuracy under a hard budget of `budget` strong tokens per
/// episode, per problem (mean over its sample trees): a tree counts as solved when some action
/// sequence allowed by the budget (the environment's rule: `regenerate` only while the strong
/// step fits in what is left, unless `continue` is impossible) reaches a correct answer. A
/// depth-first search: every node has one path from the root, so O(nodes) per tree.
pub fn hindsight_budgeted(forest: &Forest, problems: &[u32], budget: u64) -> Vec<f64> {
    problems
        .par_iter()
        .map(|&p| {
            let (mut solved, mut n) = (0usize, 0usize);
            for t in forest.trees_of(p as usize) {
                solved += usize::from(solvable(forest, forest.root(t), budget));
                n += 1;
            }
            solved as f64 / n.max(1) as f64
        })
        .collect()
}

fn solvable(forest: &Forest, node: u32, left: u64) -> bool {
    let can_continue = !matches!(forest.branch(node, Action::Continue), Branch::Absent);
    Action::ALL.into_iter().any(|a| {
        let rem = match (a, forest.strong(node)) {
            (Action::Continue, _) => left,
            (Action::Regenerate, None) => return false,
            (Action::Regenerate, Some(s)) => {
                let t = u64::from(s.tokens);
                if t > left && can_continue {
                    return false;
                }
                left.saturating_sub(t)
            }
        };
        match forest.branch(node, a) {
            Branch::Absent => false,
            Branch::Outcome(c) => c,
            Branch::Node(n) => solvable(forest, n, rem),
        }
    })
}

/// One fixed-action path from a tree's root: outcome, strong tokens, steps, min PRM of the
/// chosen steps. `None` when the path is cut by an absent branch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PathResult {
    pub correct: bool,
    pub strong_tokens: u64,
    pub steps: u16,
    pub min_prm: f32,
}

/// Follow `action` at every node from the root of `tree` (any [`World`]: the path is finite).
pub fn fixed_path<W: World>(forest: &W, tree: usize, action: Action) -> Option<PathResult> {
    let mut node = forest.root(tree);
    let mut r = PathResult {
        correct: false,
        strong_tokens: 0,
        steps: 0,
        min_prm: 1.0,
    };
    loop {
        let prm = match action {
            Action::Continue => forest.weak(&node).prm,
            Action::Regenerate => {
                let s = forest.strong(&node)?;
                r.strong_tokens += u64::from(s.tokens);
                s.prm
            }
        };
        r.min_prm = r.min_prm.min(prm);
        r.steps += 1;
        match forest.next(&node, action) {
            Next::Node(n) => node = n,
            Next::Outcome(c) => {
                r.correct = c;
                return Some(r);
            }
            Next::Absent => return None,
        }
    }
}

/// Both anchor paths of a tree, or `None` if either is incomplete.
fn anchors<W: World>(forest: &W, tree: usize) -> Option<(PathResult, PathResult)> {
    Some((
        fixed_path(forest, tree, Action::Continue)?,
        fixed_path(forest, tree, Action::Regenerate)?,
    ))
}

/// Per problem, average `pick(weak path, strong path)` over its sample trees — the shape of every
/// query-level policy: look at the two anchor paths, answer with one of them. Trees whose anchor
/// paths are incomplete count as wrong with no cost.
fn query_level<W: World>(
    forest: &W,
    problems: &[u32],
    pick: impl Fn(&PathResult, &PathResult) -> (bool, f64, f64, f64) + Sync,
) -> Vec<ProblemOutcome> {
    problems
        .par_iter()
        .map(|&p| {
            average(
                forest
                    .trees_of(p as usize)
                    .map(|t| match anchors(forest, t) {
                        Some((w, s)) => pick(&w, &s),
                        None => (false, 0.0, 0.0, 0.0),
                    }),
            )
        })
        .collect()
}

/// `(correct, strong tokens, strong calls, steps)` of answering with the all-weak path.
fn weak_answer(w: &PathResult) -> (bool, f64, f64, f64) {
    (w.correct, 0.0, 0.0, f64::from(w.steps))
}

/// Query-level oracle: strong only where weak fails and strong succeeds.
pub fn query_oracle<W: World>(forest: &W, problems: &[u32]) -> Vec<ProblemOutcome> {
    query_level(forest, problems, |w, s| {
        if !w.correct && s.correct {
            let steps = f64::from(s.steps);
            (true, s.strong_tokens as f64, steps, steps)
        } else {
            weak_answer(w)
        }
    })
}

/// Query-level cascade (AutoMix-PRM): escalate to the all-strong path when the all-weak path's
/// minimum PRM score is below `tau` (both paths' steps were run; only strong tokens cost).
pub fn query_cascade<W: World>(forest: &W, problems: &[u32], tau: f32) -> Vec<ProblemOutcome> {
    query_level(forest, problems, |w, s| {
        if w.min_prm < tau {
            (
                s.correct,
                s.strong_tokens as f64,
                f64::from(s.steps),
                f64::from(w.steps + s.steps),
            )
        } else {
            weak_answer(w)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::episode::Episode;
    use crate::forest::tests::small_forest;
    use crate::forest::{Candidate, ForestBuilder};
    use crate::rng::Rng;

    /// Enumerate every action sequence (as bit patterns) and play it with [`Episode`]: an
    /// independent check of the DP through the environment's own semantics.
    fn brute_force(f: &Forest, tree: usize, lambda: f64) -> (f64, u64) {
        let depth = u32::from(f.max_depth()) + 1;
        let mut best = (f64::NEG_INFINITY, u64::MAX);
        'seq: for bits in 0u32..(1 << depth) {
            let mut ep = Episode::start(f, tree);
            let mut ret = 0.0f64;
            for i in 0..depth {
                if ep.done() {
                    break;
                }
                let a = if bits >> i & 1 == 1 {
                    Action::Regenerate
                } else {
                    Action::Continue
                };
                match ep.step(f, a, lambda as f32) {
                    Ok(_) => {}
                    Err(_) => continue 'seq,
                }
            }
            let o = ep.outcome();
            ret += f64::from(u8::from(o.correct)) - lambda * o.strong_tokens as f64;
            let cand = (ret, o.strong_tokens);
            if cand.0 > best.0 + 1e-9 || ((cand.0 - best.0).abs() <= 1e-9 && cand.1 < best.1) {
                best = cand;
            }
        }
        best
    }

    /// A random tree: full binary to `depth`, random outcomes, some strong candidates missing.
    fn random_forest(seed: u64, trees: usize, depth: u16) -> Forest {
        let mut rng = Rng::new(seed);
        let mut b = ForestBuilder::new();
        for _ in 0..trees {
            b.begin_problem();
            b.begin_tree();
            let base = b.next_index();
            let n = (1u32 << (depth + 1)) - 1;
            for k in 0..n {
                let d = (31 - (k + 1).leading_zeros()) as u16;
                let has_strong = rng.bernoulli(0.8);
                let leaf = d == depth;
                let children = if leaf {
                    [
                        Branch::Outcome(rng.bernoulli(0.4)),
                        if has_strong {
                            Branch::Outcome(rng.bernoulli(0.7))
                        } else {
                            Branch::Absent
                        },
                    ]
                } else {
                    [
                        Branch::Node(base + 2 * k + 1),
                        if has_strong {
                            Branch::Node(base + 2 * k + 2)
                        } else {
                            Branch::Absent
                        },
                    ]
                };
                let cand = |rng: &mut Rng| Candidate {
                    tokens: 1 + rng.below(100) as u32,
                    prm: rng.f32(),
                };
                let w = cand(&mut rng);
                let s = cand(&mut rng);
                b.push_node(d, w, has_strong.then_some(s), children);
            }
        }
        // Unreachable subtrees (under absent regenerate branches) are orphans; rebuild keeping
        // only reachable nodes.
        prune(b)
    }

    fn prune(b: ForestBuilder) -> Forest {
        let raw = b.into_unchecked();
        let mut out = ForestBuilder::new();
        for t in 0..raw.n_trees() {
            out.begin_problem();
            out.begin_tree();
            copy(&raw, raw.root(t), 0, &mut out);
        }
        out.finish().expect("pruned forest is valid")
    }

    fn copy(raw: &Forest, node: u32, depth: u16, out: &mut ForestBuilder) -> u32 {
        let me = out.push_node(depth, raw.weak(node), raw.strong(node), [Branch::Absent; 2]);
        for a in Action::ALL {
            let br = match raw.branch(node, a) {
                Branch::Node(n) => Branch::Node(copy(raw, n, depth + 1, out)),
                other => other,
            };
            out.set_branch(me, a, br);
        }
        me
    }

    #[test]
    fn dp_equals_brute_force_on_random_trees() {
        let f = random_forest(11, 40, 5);
        for lambda in [0.0, 1e-3, 5e-3, 0.02, 1.0] {
            for t in 0..f.n_trees() {
                let dp = best_from(&f, f.root(t), lambda);
                let (v, tok) = brute_force(&f, t, lambda);
                assert!((dp.value - v).abs() < 1e-9, "tree {t} λ {lambda}");
                assert_eq!(dp.strong_tokens, tok, "tree {t} λ {lambda}");
            }
        }
    }

    /// Every action sequence played with a budgeted [`Episode`], honouring its mask: does any
    /// reach a correct answer?
    fn brute_force_budgeted(f: &Forest, tree: usize, budget: u64) -> bool {
        let depth = u32::from(f.max_depth()) + 1;
        'seq: for bits in 0u32..(1 << depth) {
            let mut ep = Episode::start_with_budget(f, tree, budget);
            for i in 0..depth {
                if ep.done() {
                    break;
                }
                let a = if bits >> i & 1 == 1 {
                    Action::Regenerate
                } else {
                    Action::Continue
                };
                if !ep.mask(f)[a as usize] || ep.step(f, a, 0.0).is_err() {
                    continue 'seq;
                }
            }
            if ep.outcome().correct {
                return true;
            }
        }
        false
    }

    #[test]
    fn budgeted_dp_equals_brute_force_and_grows_with_the_budget() {
        let f = random_forest(17, 40, 5);
        let problems: Vec<u32> = (0..f.n_problems() as u32).collect();
        let mut last = vec![0.0; problems.len()];
        for budget in [0, 20, 60, 150, 400, u64::MAX - 1] {
            let dp = hindsight_budgeted(&f, &problems, budget);
            for (t, &v) in dp.iter().enumerate() {
                let bf = brute_force_budgeted(&f, t, budget);
                assert_eq!(v, f64::from(u8::from(bf)), "tree {t} budget {budget}");
                assert!(v >= last[t], "accuracy fell as the budget grew");
            }
            last = dp;
        }
        // Without a budget it is the unbudgeted oracle's accuracy at λ = 0.
        let free = hindsight_optimal(&f, &problems, 0.0);
        for (a, b) in last.iter().zip(&free) {
            assert_eq!(*a, b.accuracy);
        }
    }

    #[test]
    fn hand_built_tree_oracles() {
        let f = small_forest();
        // λ small: continue at n0, regenerate at n1 (40 tokens) → correct; reward 1 − 40λ beats
        // regenerate at n0 (20 tokens) then continue at n2 → correct with 20 tokens. So the
        // cheaper route is regenerate-then-continue (20 tokens).
        let o = hindsight_optimal(&f, &[0], 0.001)[0];
        assert_eq!(
            (o.accuracy, o.strong_tokens, o.strong_calls),
            (1.0, 20.0, 1.0)
        );
        // λ huge: nothing is worth a strong token → always-weak (wrong).
        let o = hindsight_optimal(&f, &[0], 1.0)[0];
        assert_eq!((o.accuracy, o.strong_tokens), (0.0, 0.0));
        // Query oracle: weak wrong, strong right → pay the all-strong path (20 + 60).
        let q = query_oracle(&f, &[0])[0];
        assert_eq!((q.accuracy, q.strong_tokens), (1.0, 80.0));
        // All-weak min PRM = min(0.9, 0.4) = 0.4.
        let c = query_cascade(&f, &[0], 0.5)[0];
        assert_eq!((c.accuracy, c.strong_tokens), (1.0, 80.0));
        let c = query_cascade(&f, &[0], 0.3)[0];
        assert_eq!((c.accuracy, c.strong_tokens), (0.0, 0.0));
    }
}
