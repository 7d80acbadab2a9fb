//! Tree expansion: one sample tree of the latent model, every action history with at most `K`
//! regenerations plus the complete all-strong path, optionally around a real all-weak path.

use trim_env::{Action, Rng};

use crate::build::TreeWriter;
use crate::schema::CandidateRec;

use super::latent::{Difficulty, Draw, LatentModel, Prefix, RealStep, Role};

impl LatentModel {
    /// Write one sample tree into `w`: every action history with at most `max_regens`
    /// regenerations, plus the whole all-strong path. On the all-weak path the weak candidates
    /// are `real[t]` while `t < real.len()` (PRM scores drawn by their real states); everything
    /// else is drawn from the model. Returns the nodes written.
    pub fn expand_tree(
        &self,
        w: &mut TreeWriter<'_>,
        d: &Difficulty,
        max_regens: u32,
        real: &[RealStep],
        rng: &mut Rng,
    ) -> usize {
        let mut cx = Expand {
            model: self,
            d,
            k: max_regens,
            real,
        };
        cx.node(w, At::root(), rng);
        w.len()
    }
}

/// Where a node sits: how it is reached and what the path to it holds.
#[derive(Clone, Copy)]
struct At {
    /// The parent and the action leading here (None = root).
    parent: Option<(u32, Action)>,
    depth: u16,
    prefix: Prefix,
    /// Regenerations on the path.
    ones: u32,
    /// Every action on the path was a regeneration.
    all_ones: bool,
}

impl At {
    fn root() -> At {
        At {
            parent: None,
            depth: 0,
            prefix: Prefix::root(),
            ones: 0,
            all_ones: true,
        }
    }
}

struct Expand<'a> {
    model: &'a LatentModel,
    d: &'a Difficulty,
    k: u32,
    real: &'a [RealStep],
}

impl Expand<'_> {
    /// Write the node at `at` and, depth first, its subtree (continue branch first).
    fn node(&mut self, w: &mut TreeWriter<'_>, at: At, rng: &mut Rng) {
        let m = self.model;
        let weak = match self.real.get(usize::from(at.depth)) {
            Some(r) if at.ones == 0 => Draw {
                rec: CandidateRec {
                    tokens: r.tokens.max(1),
                    prm: m.prm(r.state, &at.prefix, rng),
                    finished: r.finished,
                    state: Some(r.state),
                    text: r.text.clone(),
                    hash: r.hash.clone(),
                },
                correct: r.correct.or(r.finished.then_some(false)),
            },
            _ => m.candidate(Role::Weak, self.d, &at.prefix, at.depth, rng),
        };
        let mut strong = (at.ones < self.k || at.all_ones)
            .then(|| m.candidate(Role::Strong, self.d, &at.prefix, at.depth, rng));
        let f = m.cfg.regen_tokens_factor;
        if let Some(s) = strong.as_mut().filter(|_| !at.all_ones && f != 1.0) {
            // A routed regeneration: a strong step after weak ones (deterministic, no draw).
            s.rec.tokens = (f64::from(s.rec.tokens) * f).round().max(1.0) as u32;
        }
        let (wrec, srec) = (weak.rec.clone(), strong.as_ref().map(|s| s.rec.clone()));
        let id = match at.parent {
            None => w.root(wrec, srec),
            Some((p, a)) => w.child(p, a, wrec, srec),
        };
        // Beyond K regenerations (on the all-strong path) the weak branch is not expanded.
        if weak.correct.is_some() || at.ones <= self.k {
            self.branch(w, id, Action::Continue, &weak, at, rng);
        }
        if let Some(s) = strong {
            self.branch(w, id, Action::Regenerate, &s, at, rng);
        }
    }

    /// Keep `draw` at node `id` by `action`: its outcome when it finishes, else the next node.
    fn branch(
        &mut self,
        w: &mut TreeWriter<'_>,
        id: u32,
        action: Action,
        draw: &Draw,
        at: At,
        rng: &mut Rng,
    ) {
        if let Some(c) = draw.correct {
            w.set_outcome(id, action, c);
            return;
        }
        let regen = action == Action::Regenerate;
        let next = At {
            parent: Some((id, action)),
            depth: at.depth + 1,
            prefix: at.prefix.then(&draw.rec),
            ones: at.ones + u32::from(regen),
            all_ones: at.all_ones && regen,
        };
        self.node(w, next, rng);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
                m.expand_tree(&mut w, &d, k, &[], &mut rng);
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
        m.expand_tree(&mut w, &d, 1, &real, &mut rng);
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
            m.expand_tree(&mut b.tree(p), &d, 2, &[], &mut rng);
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
