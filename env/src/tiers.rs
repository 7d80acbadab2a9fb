//! Step-level gold tiers in the style of TwinRouterBench's static track, derived from the trees.
//!
//! TRIM's two actions are a two-tier special case of that benchmark's four tiers: keeping the
//! weak step is tier `low` (id 0), regenerating with the strong model is tier `high` (id 3).
//! A tree's labelled trajectory is built by *downgrade-and-cascade with sequential locking*:
//! from the root, each step tries the cheaper tier with every later step on the strong tier; the
//! gold tier is the cheapest one whose trajectory still ends correct (`high` when even that fails
//! or only the strong step can follow), and the step is then locked at its gold tier before the
//! next step is labelled. A router is scored on those rows by its predicted tier at each labelled
//! step ([`TierScores`], TwinRouterBench's `scores_v2`).

use crate::forest::Action;
use crate::policy::{Policy, resolve};
use crate::rng::Rng;
use crate::world::{Next, World};
use crate::{Candidate, Episode};

/// A routing tier (TwinRouterBench ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// Keep the weak model's step (`low`, id 0).
    Low = 0,
    /// Regenerate it with the strong model (`high`, id 3).
    High = 3,
}

impl Tier {
    /// The benchmark's tier name.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Low => "low",
            Tier::High => "high",
        }
    }

    /// The tier of an action.
    pub fn of(a: Action) -> Tier {
        match a {
            Action::Continue => Tier::Low,
            Action::Regenerate => Tier::High,
        }
    }
}

/// One labelled step of a tree's locked trajectory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabelledStep {
    /// 0-based step index.
    pub step: u16,
    pub gold: Tier,
    /// The action the trajectory was locked at (the gold tier's, or the only one available).
    pub locked: Action,
    /// The weak and (if generated) strong candidates of the step.
    pub weak: Candidate,
    pub strong: Option<Candidate>,
}

/// Outcome of the all-strong continuation from `next` (regenerate wherever the tree has the
/// strong step, continue elsewhere); None when the path is cut by an absent branch.
fn all_strong_from<W: World>(w: &W, mut next: Next<W::Node>) -> Option<bool> {
    loop {
        match next {
            Next::Outcome(c) => return Some(c),
            Next::Absent => return None,
            Next::Node(n) => {
                let a = if w.mask(&n)[1] {
                    Action::Regenerate
                } else {
                    Action::Continue
                };
                next = w.next(&n, a);
            }
        }
    }
}

/// The labelled trajectory of `tree`, or None when a label is undefined (a cheaper-tier
/// trajectory the tree does not hold to its end).
pub fn gold_tiers<W: World>(w: &W, tree: usize) -> Option<Vec<LabelledStep>> {
    let mut node = w.root(tree);
    let mut out = vec![];
    loop {
        let low = match w.next(&node, Action::Continue) {
            Next::Absent => Some(false),
            n => Some(all_strong_from(w, n)?),
        };
        let can_high = w.mask(&node)[1];
        let (gold, locked) = match (low, can_high) {
            (Some(true), _) => (Tier::Low, Action::Continue),
            (_, true) => (Tier::High, Action::Regenerate),
            (_, false) => (Tier::High, Action::Continue),
        };
        out.push(LabelledStep {
            step: out.len() as u16,
            gold,
            locked,
            weak: w.weak(&node),
            strong: w.strong(&node),
        });
        match w.next(&node, locked) {
            Next::Node(n) => node = n,
            Next::Outcome(_) => return Some(out),
            Next::Absent => return None,
        }
    }
}

/// The tiers `policy` predicts along the locked trajectory `labels` of `tree` (its features
/// follow the locked steps, as a router reading the benchmark's rows would see them).
pub fn predict<W: World, P: Policy + ?Sized>(
    w: &W,
    tree: usize,
    labels: &[LabelledStep],
    policy: &P,
    rng: &mut Rng,
) -> Vec<Tier> {
    let mut ep = Episode::start(w, tree);
    let mut history = Vec::new();
    let mut out = Vec::with_capacity(labels.len());
    let (signals, record) = (policy.wants_signals(), policy.wants_history());
    for l in labels {
        let mask = ep.mask(w);
        let view = if signals {
            ep.view_signals(w, &history)
        } else {
            ep.view_with(w, &history)
        };
        let a = resolve(policy.act(&view, mask, rng), mask);
        out.push(Tier::of(a));
        if record {
            history.push(ep.hist_entry(w, l.locked));
        }
        if ep.step(w, l.locked, 0.0).is_err() {
            break;
        }
    }
    out
}

/// Nominal prices per 1M output tokens of the two tiers (TwinRouterBench's `low` and `high`).
pub const PRICE_LOW: f64 = 0.5;
pub const PRICE_HIGH: f64 = 20.0;

/// TwinRouterBench's `scores_v2` over labelled trajectories, in percent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TierScores {
    pub rows: usize,
    /// Rows with predicted tier ≥ gold.
    pub case_pass: f64,
    /// Rows with predicted tier = gold.
    pub exact_match: f64,
    /// Rows whose whole trajectory passes.
    pub trajectory_pass: f64,
    /// `100·N/D`: D = always-high's cost; a passed trajectory adds what it saved, a failed one
    /// subtracts what it spent (it is re-run on the strong tier).
    pub cost_savings: f64,
    /// The mean of the four.
    pub combined: f64,
}

/// Cost of one step on tier `t` (its candidate's tokens at the tier's price; the weak step's
/// tokens when the tree has no strong step).
fn step_cost(l: &LabelledStep, t: Tier) -> f64 {
    match t {
        Tier::Low => f64::from(l.weak.tokens) * PRICE_LOW,
        Tier::High => f64::from(l.strong.unwrap_or(l.weak).tokens) * PRICE_HIGH,
    }
}

/// `scores_v2` of predictions `(labels, preds)` per trajectory.
pub fn score(trajectories: &[(Vec<LabelledStep>, Vec<Tier>)]) -> TierScores {
    let (mut rows, mut pass, mut exact, mut traj_rows) = (0usize, 0usize, 0usize, 0usize);
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (labels, preds) in trajectories {
        let ok = labels.len() == preds.len() && labels.iter().zip(preds).all(|(l, p)| *p >= l.gold);
        for (l, p) in labels.iter().zip(preds) {
            rows += 1;
            pass += usize::from(*p >= l.gold);
            exact += usize::from(*p == l.gold);
            let (base, cost) = (step_cost(l, Tier::High), step_cost(l, *p));
            den += base;
            num += if ok { base - cost } else { -cost };
        }
        traj_rows += if ok { labels.len() } else { 0 };
    }
    let pct = |k: usize| 100.0 * k as f64 / rows.max(1) as f64;
    let s = TierScores {
        rows,
        case_pass: pct(pass),
        exact_match: pct(exact),
        trajectory_pass: pct(traj_rows),
        cost_savings: if den > 0.0 { 100.0 * num / den } else { 0.0 },
        combined: 0.0,
    };
    TierScores {
        combined: (s.case_pass + s.exact_match + s.trajectory_pass + s.cost_savings) / 4.0,
        ..s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::{Branch, Forest, ForestBuilder};

    fn cand(tokens: u32, prm: f32) -> Candidate {
        Candidate { tokens, prm }
    }

    /// A random complete tree: strong steps missing at some nodes, outcomes at random depths.
    fn random_forest(seed: u64, trees: usize) -> Forest {
        let mut rng = Rng::new(seed);
        let mut b = ForestBuilder::new();
        b.begin_problem();
        for _ in 0..trees {
            b.begin_tree();
            grow(&mut b, &mut rng, 0);
        }
        b.finish().unwrap()
    }

    fn grow(b: &mut ForestBuilder, rng: &mut Rng, depth: u16) -> u32 {
        let strong = (rng.f32() < 0.75).then(|| cand(10 + rng.below(50) as u32, rng.f32()));
        let weak = cand(5 + rng.below(40) as u32, rng.f32());
        let me = b.push_node(depth, weak, strong, [Branch::Absent; 2]);
        for a in Action::ALL {
            if a == Action::Regenerate && strong.is_none() {
                continue;
            }
            let br = if depth >= 4 || rng.f32() < 0.25 {
                Branch::Outcome(rng.f32() < 0.5)
            } else {
                Branch::Node(grow(b, rng, depth + 1))
            };
            b.set_branch(me, a, br);
        }
        me
    }

    /// Every complete path of `tree`: its actions and outcome.
    fn paths(f: &Forest, node: u32, prefix: &mut Vec<Action>, out: &mut Vec<(Vec<Action>, bool)>) {
        for a in Action::ALL {
            prefix.push(a);
            match f.branch(node, a) {
                Branch::Absent => {}
                Branch::Outcome(c) => out.push((prefix.clone(), c)),
                Branch::Node(n) => paths(f, n, prefix, out),
            }
            prefix.pop();
        }
    }

    /// The labels by enumeration: among the complete paths, the "cheaper tier then all strong"
    /// trajectory is the lexicographic maximum (regenerate > continue) of the paths extending
    /// the locked prefix and `continue`.
    fn brute_labels(f: &Forest, tree: usize) -> Vec<Tier> {
        let mut all = vec![];
        paths(f, f.root(tree), &mut vec![], &mut all);
        let rank = |p: &[Action]| p.iter().map(|a| *a as u8).collect::<Vec<_>>();
        let (mut locked, mut gold) = (Vec::<Action>::new(), vec![]);
        while !all.iter().any(|(p, _)| *p == locked) {
            let ext = |a: Action| {
                let mut pre = locked.clone();
                pre.push(a);
                all.iter()
                    .filter(move |(p, _)| p.starts_with(&pre))
                    .max_by_key(|(p, _)| rank(p))
                    .cloned()
            };
            let (low, high) = (ext(Action::Continue), ext(Action::Regenerate));
            let (g, a) = match (low.as_ref().is_some_and(|l| l.1), high.is_some()) {
                (true, _) => (Tier::Low, Action::Continue),
                (false, true) => (Tier::High, Action::Regenerate),
                (false, false) => (Tier::High, Action::Continue),
            };
            gold.push(g);
            locked.push(a);
        }
        gold
    }

    #[test]
    fn sequential_locking_matches_brute_force_enumeration() {
        let mut steps = 0;
        let mut seen = [0usize; 2];
        for seed in 0..40 {
            let f = random_forest(seed, 5);
            for t in 0..f.n_trees() {
                let got = gold_tiers(&f, t).expect("complete trees have labels");
                let g: Vec<Tier> = got.iter().map(|l| l.gold).collect();
                assert_eq!(g, brute_labels(&f, t), "seed {seed} tree {t}");
                steps += g.len();
                for x in g {
                    seen[usize::from(x == Tier::High)] += 1;
                }
            }
        }
        assert!(
            steps > 400 && seen[0] > 50 && seen[1] > 50,
            "{steps} {seen:?}"
        );
    }

    #[test]
    fn scores_follow_the_benchmark_definitions() {
        let l = |gold: Tier| LabelledStep {
            step: 0,
            gold,
            locked: Action::Continue,
            weak: cand(100, 0.5),
            strong: Some(cand(100, 0.5)),
        };
        // Trajectory A passes with one cheap step; trajectory B fails at its high step.
        let a = (
            vec![l(Tier::Low), l(Tier::High)],
            vec![Tier::Low, Tier::High],
        );
        let b = (
            vec![l(Tier::Low), l(Tier::High)],
            vec![Tier::High, Tier::Low],
        );
        let s = score(&[a, b]);
        assert_eq!(s.rows, 4);
        assert_eq!(
            (s.case_pass, s.exact_match, s.trajectory_pass),
            (75.0, 50.0, 50.0)
        );
        // D = 4 × 2000; A saves 2000 − 50; B is billed 2000 + 50.
        let want = 100.0 * ((2000.0 - 50.0) - (2000.0 + 50.0)) / 8000.0;
        assert!((s.cost_savings - want).abs() < 1e-9, "{}", s.cost_savings);
        assert!((s.combined - (75.0 + 50.0 + 50.0 + want) / 4.0).abs() < 1e-9);
    }
}
