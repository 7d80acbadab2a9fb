//! Tree expansion: one sample tree of the latent model, every action history with at most `K`
//! regenerations plus the complete all-strong path, optionally around a real all-weak path.

use trim_env::Action;

use crate::build::TreeWriter;

use super::latent::{Difficulty, Draw, LatentModel, RealStep};
use super::node::NodeAt;

impl LatentModel {
    /// Write one sample tree into `w`: every action history with at most `max_regens`
    /// regenerations, plus the whole all-strong path. On the all-weak path the weak candidates
    /// are `real[t]` while `t < real.len()` (PRM scores drawn by their real states); everything
    /// else is drawn from the model. Every node is drawn from its own stream keyed by
    /// `tree_key` and its action history ([`NodeAt`]), so the tree is the lazy world's tree
    /// restricted to the cap. Returns the nodes written.
    pub fn expand_tree(
        &self,
        w: &mut TreeWriter<'_>,
        d: &Difficulty,
        max_regens: u32,
        real: &[RealStep],
        tree_key: u64,
    ) -> usize {
        let cx = Expand {
            model: self,
            d,
            k: max_regens,
            real,
        };
        cx.node(w, None, NodeAt::root(tree_key));
        w.len()
    }
}

struct Expand<'a> {
    model: &'a LatentModel,
    d: &'a Difficulty,
    k: u32,
    real: &'a [RealStep],
}

impl Expand<'_> {
    /// Write the node at `at` (reached from `parent` by an action) and, depth first, its
    /// subtree (continue branch first).
    fn node(&self, w: &mut TreeWriter<'_>, parent: Option<(u32, Action)>, at: NodeAt) {
        let m = self.model;
        let real = self
            .real
            .get(usize::from(at.depth))
            .filter(|_| at.regens == 0);
        let weak = m.weak_at(self.d, &at, real);
        let strong = (at.regens < self.k || at.all_strong).then(|| m.strong_at(self.d, &at));
        let (wrec, srec) = (weak.rec.clone(), strong.as_ref().map(|s| s.rec.clone()));
        let id = match parent {
            None => w.root(wrec, srec),
            Some((p, a)) => w.child(p, a, wrec, srec),
        };
        // Beyond K regenerations (on the all-strong path) the weak branch is not expanded.
        if weak.correct.is_some() || at.regens <= self.k {
            self.branch(w, id, Action::Continue, &weak, &at);
        }
        if let Some(s) = strong {
            self.branch(w, id, Action::Regenerate, &s, &at);
        }
    }

    /// Keep `draw` at node `id` by `action`: its outcome when it finishes, else the next node.
    fn branch(&self, w: &mut TreeWriter<'_>, id: u32, action: Action, draw: &Draw, at: &NodeAt) {
        match draw.correct {
            Some(c) => w.set_outcome(id, action, c),
            None => self.node(w, Some((id, action)), at.child(action, &draw.rec)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use trim_env::Rng;

    use super::*;
    use crate::build::DatasetBuilder;
    use crate::schema::{Meta, ProblemInfo, StepState};
    use crate::synth::params::LatentConfig;

    fn test_info() -> ProblemInfo {
        ProblemInfo {
            problem_id: "p".into(),
            dataset: "d".into(),
            split: "train".into(),
            weak_model: "w".into(),
            strong_model: "s".into(),
            prm_model: "r".into(),
        }
    }

    fn model(cfg: LatentConfig) -> LatentModel {
        LatentModel::vendored(cfg, Path::new("<test>")).unwrap()
    }

    #[test]
    fn tree_respects_the_regeneration_cap_and_keeps_both_anchor_paths() {
        let m = model(LatentConfig::default());
        for k in 0..3u32 {
            let mut b = DatasetBuilder::new(Meta::new("t"));
            let info = test_info();
            let p = b.add_problem(info);
            let mut rng = Rng::new(u64::from(k));
            for _ in 0..20 {
                let d = m.sample_difficulty(&mut rng);
                let mut w = b.tree(p);
                m.expand_tree(&mut w, &d, k, &[], rng.next_u64());
            }
            let ds = b.finish();
            let l = crate::validate(Path::new("<mem>"), ds).unwrap();
            // Walk every path: regenerations ≤ k unless the path is all-strong.
            for r in &l.ds.rows {
                let (mut ones, mut n, mut cur) = (0u32, 0u32, r);
                while let (Some(pa), Some(a)) = (cur.parent, cur.action) {
                    ones += a as u32;
                    n += 1;
                    cur =
                        l.ds.rows
                            .iter()
                            .find(|x| x.tree == r.tree && x.node == pa)
                            .unwrap();
                }
                let all_strong = ones == n;
                assert!(ones <= k || all_strong, "k={k}: {ones} regenerations");
                // A strong candidate exists exactly where one more regeneration is allowed.
                assert_eq!(r.strong.is_some(), ones < k || all_strong);
            }
            let f = &l.forest;
            for t in 0..f.n_trees() {
                for policy in [Action::Continue, Action::Regenerate] {
                    let mut node = f.root(t);
                    loop {
                        match f.branch(node, policy) {
                            trim_env::Branch::Node(c) => node = c,
                            trim_env::Branch::Outcome(_) => break,
                            trim_env::Branch::Absent => panic!("anchor path broken"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn real_weak_path_is_kept_verbatim() {
        let m = model(LatentConfig::default());
        let real = vec![
            RealStep {
                tokens: 11,
                state: StepState::S0,
                finished: false,
                correct: None,
                text: Some("a".into()),
                hash: Some("h0".into()),
            },
            RealStep {
                tokens: 22,
                state: StepState::S2,
                finished: false,
                correct: None,
                text: None,
                hash: Some("h1".into()),
            },
            RealStep {
                tokens: 33,
                state: StepState::S1,
                finished: true,
                correct: Some(true),
                text: None,
                hash: Some("h2".into()),
            },
        ];
        let mut b = DatasetBuilder::new(Meta::new("t"));
        let p = b.add_problem(test_info());
        let mut rng = Rng::new(1);
        let d = m.sample_difficulty(&mut rng);
        let mut w = b.tree(p);
        m.expand_tree(&mut w, &d, 1, &real, rng.next_u64());
        let ds = b.finish();
        // Follow continue from the root.
        let mut node = 0u32;
        for (t, r) in real.iter().enumerate() {
            let row = ds.rows.iter().find(|x| x.node == node).unwrap();
            assert_eq!(row.depth as usize, t);
            assert_eq!(row.weak.tokens, r.tokens);
            assert_eq!(row.weak.state, Some(r.state));
            assert_eq!(row.weak.hash, r.hash);
            if r.finished {
                assert_eq!(row.continue_correct, Some(true));
                break;
            }
            node = ds
                .rows
                .iter()
                .find(|x| x.parent == Some(node) && x.action == Some(Action::Continue))
                .unwrap()
                .node;
        }
        // After the real first error (depth 1), the strong alternative at depth 2 is S1.
        let d2 = ds
            .rows
            .iter()
            .find(|x| x.depth == 2 && x.weak.hash.as_deref() == Some("h2"))
            .unwrap();
        assert_eq!(d2.strong.as_ref().unwrap().state, Some(StepState::S1));
        crate::validate(Path::new("<mem>"), ds).unwrap();
    }

    /// Routed strong steps (after a weak step) are scaled by `regen_tokens_factor`; strong
    /// steps on the all-strong path and every weak step are drawn as without it.
    #[test]
    fn routed_strong_steps_are_scaled_and_the_all_strong_path_is_not() {
        let tree = |factor: f64| {
            let m = model(LatentConfig {
                regen_tokens_factor: factor,
                ..LatentConfig::default()
            });
            let mut b = DatasetBuilder::new(Meta::new("t"));
            let p = b.add_problem(test_info());
            let mut rng = Rng::new(11);
            let d = m.sample_difficulty(&mut rng);
            m.expand_tree(&mut b.tree(p), &d, 2, &[], rng.next_u64());
            b.finish().rows
        };
        let (plain, scaled) = (tree(1.0), tree(2.0));
        assert_eq!(plain.len(), scaled.len());
        let all_strong = |rows: &[crate::schema::NodeRow], i: usize| {
            let mut cur = &rows[i];
            while let (Some(pa), Some(a)) = (cur.parent, cur.action) {
                if a != Action::Regenerate {
                    return false;
                }
                cur = rows.iter().find(|x| x.node == pa).unwrap();
            }
            true
        };
        let mut routed = 0;
        for (i, (a, b)) in plain.iter().zip(&scaled).enumerate() {
            assert_eq!(a.weak, b.weak);
            let (Some(sa), Some(sb)) = (&a.strong, &b.strong) else {
                assert_eq!(a.strong.is_some(), b.strong.is_some());
                continue;
            };
            if all_strong(&plain, i) {
                assert_eq!(sa.tokens, sb.tokens);
            } else {
                assert_eq!(sb.tokens, 2 * sa.tokens);
                routed += 1;
            }
        }
        assert!(routed > 0);
    }
}
