//! Per-episode state for a serving loop: one [`Session`] per problem being solved; each step,
//! [`Session::decide`] with the weak model's new step, then [`Session::push`] the step that was
//! kept. Only the new step's numbers cross the call, whatever the history's length: TRIM-Agg
//! keeps its running aggregates, TRIM-Seq the kept steps' attention keys and values
//! ([`SeqCache`]). Both give exactly the decision of the stateless whole-history call (tested).

use crate::router::check_prm;
use crate::router::{BudgetState, Decision, EpisodeFeatures, Router};
use crate::seq::candidate_token;
use crate::seq::kept_token;
use crate::seq_cache::SeqCache;
use crate::seq_router::SeqRouter;

/// A step that was kept, as the serving loop reports it after acting on a decision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeptStep {
    /// PRM score of the kept step (the strong step's if regenerated).
    pub prm: f32,
    /// Its token count.
    pub tokens: u32,
    /// True if the strong model wrote it.
    pub regenerated: bool,
}

/// One episode's routing state.
#[derive(Clone, Debug)]
pub enum Session<'r> {
    Agg {
        router: &'r Router,
        features: EpisodeFeatures,
        /// The λ a conditioned policy acts at for the whole episode.
        lambda: Option<f64>,
    },
    Seq {
        router: &'r SeqRouter,
        cache: Box<SeqCache>,
        steps: usize,
        /// The λ a conditioned policy acts at for the whole episode.
        lambda: Option<f64>,
    },
}

impl Router {
    /// A new episode (of a policy without a λ input; a conditioned one refuses to decide).
    pub fn session(&self) -> Session<'_> {
        Session::Agg {
            router: self,
            features: EpisodeFeatures::new(),
            lambda: None,
        }
    }

    /// A new episode acting at `lambda` (a λ-conditioned policy; others refuse to decide).
    pub fn session_at(&self, lambda: f64) -> Session<'_> {
        Session::Agg {
            router: self,
            features: EpisodeFeatures::new(),
            lambda: Some(lambda),
        }
    }
}

impl SeqRouter {
    /// A new episode (of a policy without a λ input; a conditioned one refuses to decide).
    pub fn session(&self) -> Session<'_> {
        Session::Seq {
            router: self,
            cache: Box::new(SeqCache::new(self.net())),
            steps: 0,
            lambda: None,
        }
    }

    /// A new episode acting at `lambda` (a λ-conditioned policy; others refuse to decide).
    pub fn session_at(&self, lambda: f64) -> Session<'_> {
        Session::Seq {
            router: self,
            cache: Box::new(SeqCache::new(self.net())),
            steps: 0,
            lambda: Some(lambda),
        }
    }
}

impl Session<'_> {
    /// Decide on the weak model's current step (its PRM score and token count).
    pub fn decide(&self, prm: f32, tokens: u32) -> Result<Decision, String> {
        self.decide_budgeted(prm, tokens, None)
    }

    /// [`decide`](Self::decide) with the request's budget state, which a budget-aware TRIM-Agg
    /// policy reads as inputs (and needs); other policies ignore it.
    pub fn decide_budgeted(
        &self,
        prm: f32,
        tokens: u32,
        budget: Option<BudgetState>,
    ) -> Result<Decision, String> {
        match self {
            Session::Agg {
                router,
                features,
                lambda,
            } => router.decide_with(&features.observe(prm, tokens)?, *lambda, budget),
            Session::Seq {
                router,
                cache,
                steps,
                lambda,
            } => {
                check_prm(prm)?;
                let extra = router.lambda_extra(*lambda)?;
                let tok = candidate_token(prm, tokens, *steps);
                let (logits, _) = cache.decide_with(router.net(), &tok, &extra);
                Ok(router.decision(logits))
            }
        }
    }

    /// Record the step that was kept.
    pub fn push(&mut self, kept: KeptStep) -> Result<(), String> {
        match self {
            Session::Agg { features, .. } => features.push(kept.prm),
            Session::Seq {
                router,
                cache,
                steps,
                ..
            } => {
                check_prm(kept.prm)?;
                let tok = kept_token(kept.prm, kept.tokens, kept.regenerated, *steps);
                cache.push(router.net(), &tok);
                *steps += 1;
                Ok(())
            }
        }
    }

    /// Steps kept so far.
    pub fn steps(&self) -> usize {
        match self {
            Session::Agg { features, .. } => usize::from(features.steps()),
            Session::Seq { steps, .. } => *steps,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::router::StepObservation;
    use crate::seq::{SEQ_OBS_DIM, SeqNet, SeqShape, write_row};
    use trim_env::{Candidate, Rng};

    /// A TRIM-Seq network with random weights of scale ~1/√fan-in.
    pub(crate) fn random_seq_net(shape: SeqShape, seed: u64) -> SeqNet {
        let mut rng = Rng::new(seed);
        SeqNet::from_named_params(
            shape,
            |e| e,
            |name, dims| {
                let n: usize = dims.iter().product();
                let scale = if name.contains(".weight") && dims.len() == 2 {
                    1.5 / (dims[1] as f32).sqrt()
                } else {
                    0.3
                };
                let base = if name.contains("ln") && name.ends_with("weight") {
                    1.0
                } else {
                    0.0
                };
                Ok::<_, String>(
                    (0..n)
                        .map(|_| base + scale * (2.0 * rng.f32() - 1.0))
                        .collect(),
                )
            },
        )
        .unwrap()
    }

    /// Every decision of a session equals the stateless call on the whole history and the
    /// training-side row of the same history, for 45-step episodes (past the 32-token window).
    #[test]
    fn sessions_decide_exactly_as_the_whole_history_does() {
        let shape = SeqShape {
            dim: 32,
            heads: 2,
            layers: 2,
            ff: 64,
            lambda_input: false,
        };
        let router = SeqRouter::from_net(random_seq_net(shape, 3));
        let mut rng = Rng::new(11);
        let (mut lo, mut hi) = (1.0f32, 0.0f32);
        for _ in 0..4 {
            let mut s = router.session();
            let mut step = StepObservation {
                id: None,
                prev_prm: vec![],
                prm: 0.0,
                tokens: 0,
                prev_tokens: vec![],
                prev_regenerated: vec![],
                lambda: None,
                budget: None,
                budget_left: None,
            };
            let mut hist = vec![];
            for t in 0..45 {
                step.prm = rng.f32();
                step.tokens = 1 + rng.below(400) as u32;
                let live = s.decide(step.prm, step.tokens).unwrap();
                let whole = router.decide_step(&step).unwrap();
                assert_eq!(live, whole, "step {t}");
                let mut row = vec![0.0; SEQ_OBS_DIM];
                let cand = Candidate {
                    prm: step.prm,
                    tokens: step.tokens,
                };
                write_row(&hist, cand, &mut row);
                let (logits, _) = router.net().forward(&row);
                assert_eq!(logits, live.logits, "step {t}: training row");
                (lo, hi) = (lo.min(live.p_regenerate), hi.max(live.p_regenerate));
                let r = rng.f32() < 0.4;
                let kept = KeptStep {
                    prm: if r { rng.f32() } else { step.prm },
                    tokens: if r {
                        1 + rng.below(400) as u32
                    } else {
                        step.tokens
                    },
                    regenerated: r,
                };
                s.push(kept).unwrap();
                let scaled = |x: u32| x as f32 / trim_env::features::TOKEN_SCALE;
                hist.push([
                    kept.prm,
                    step.prm,
                    scaled(step.tokens),
                    f32::from(u8::from(r)),
                    if r { scaled(kept.tokens) } else { 0.0 },
                ]);
                step.prev_prm.push(kept.prm);
                step.prev_tokens.push(kept.tokens);
                step.prev_regenerated.push(r);
            }
            assert_eq!(s.steps(), 45);
        }
        assert!(
            hi - lo > 0.05,
            "p(regenerate) in [{lo}, {hi}]: the history matters"
        );
    }

    /// Bad inputs are errors, never a panic.
    #[test]
    fn bad_session_inputs_are_errors() {
        let shape = SeqShape {
            dim: 16,
            heads: 2,
            layers: 1,
            ff: 32,
            lambda_input: false,
        };
        let router = SeqRouter::from_net(random_seq_net(shape, 4));
        let s = router.session();
        assert!(s.decide(f32::NAN, 3).is_err());
        let bad = StepObservation {
            id: None,
            prev_prm: vec![0.5],
            prm: 0.5,
            tokens: 3,
            prev_tokens: vec![],
            prev_regenerated: vec![],
            lambda: None,
            budget: None,
            budget_left: None,
        };
        assert!(
            router
                .decide_step(&bad)
                .unwrap_err()
                .contains("prev_tokens")
        );
    }

    #[test]
    fn agg_sessions_follow_the_stateless_router() {
        let router = Router::from_net(crate::agg::tests::random_net(16, 5));
        let mut s = router.session();
        let mut prev = vec![];
        let mut rng = Rng::new(2);
        for _ in 0..40 {
            let (prm, tokens) = (rng.f32(), 1 + rng.below(300) as u32);
            let step = StepObservation {
                id: None,
                prev_prm: prev.clone(),
                prm,
                tokens,
                prev_tokens: vec![],
                prev_regenerated: vec![],
                lambda: None,
                budget: None,
                budget_left: None,
            };
            assert_eq!(
                s.decide(prm, tokens).unwrap(),
                router.decide_step(&step).unwrap()
            );
            let kept = rng.f32();
            s.push(KeptStep {
                prm: kept,
                tokens: 7,
                regenerated: false,
            })
            .unwrap();
            prev.push(kept);
        }
    }
}
