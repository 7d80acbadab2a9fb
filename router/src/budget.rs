//! A hard per-request budget of strong tokens at serving time, around any [`Session`].
//!
//! Offline, the environment knows each strong step's length and masks `regenerate` when it
//! would not fit what is left (`trim_env::Episode::start_with_budget`). A serving loop learns
//! the length only by generating, so the rule here keeps the same guarantee — never more than
//! `budget` strong tokens per request — this way:
//!
//! 1. [`BudgetedSession::decide`] never regenerates once less than `reserve` tokens are left
//!    (`reserve` ≥ 1; 1 = "whenever anything is left");
//! 2. the strong request is sent with `max_tokens = `[`BudgetedSession::strong_max_tokens`]
//!    (what is left);
//! 3. if the strong step came back complete, [`BudgetedSession::push`] it (regenerated) and its
//!    tokens are charged; if it hit that cap it did not fit: report it with
//!    [`BudgetedSession::discard_strong`] (its tokens are charged — they were generated) and
//!    push the weak step instead, as the environment's mask would have.
//!
//! So a request spends at most `budget` strong tokens, and where every strong step fits the
//! decisions are exactly those of the environment's budgeted episode.

use crate::router::{BudgetState, Decision};
use crate::session::{KeptStep, Session};

/// A session with a strong-token budget.
#[derive(Clone, Debug)]
pub struct BudgetedSession<'r> {
    inner: Session<'r>,
    left: u64,
    /// The whole budget (a budget-aware policy reads `left` against it).
    budget: u64,
    reserve: u64,
}

impl<'r> BudgetedSession<'r> {
    /// Wrap `inner` with `budget` strong tokens; regenerate only while at least `reserve` are
    /// left (clamped to ≥ 1). `u64::MAX` means no budget: nothing is masked or charged.
    pub fn new(inner: Session<'r>, budget: u64, reserve: u64) -> Self {
        BudgetedSession {
            inner,
            left: budget,
            budget,
            reserve: reserve.max(1),
        }
    }

    /// The policy's decision, with `regenerate` masked when the budget is (nearly) spent; the
    /// probability and logits are the policy's own (a budget-aware policy sees what is left).
    pub fn decide(&self, prm: f32, tokens: u32) -> Result<Decision, String> {
        let state = (self.budget != u64::MAX).then_some(BudgetState {
            left: self.left,
            budget: self.budget,
        });
        let mut d = self.inner.decide_budgeted(prm, tokens, state)?;
        if self.left < self.reserve {
            d.regenerate = false;
        }
        Ok(d)
    }

    /// `max_tokens` for the strong request of a regenerate: what is left.
    pub fn strong_max_tokens(&self) -> u64 {
        self.left
    }

    /// Strong tokens still allowed.
    pub fn left(&self) -> u64 {
        self.left
    }

    /// Record the kept step; a regenerated one is charged to the budget. A strong step longer
    /// than what is left is refused (it cannot have been generated under the cap).
    pub fn push(&mut self, kept: KeptStep) -> Result<(), String> {
        if kept.regenerated && self.left != u64::MAX {
            let t = u64::from(kept.tokens);
            if t > self.left {
                return Err(format!(
                    "a strong step of {t} tokens exceeds the {} left: send the strong request \
                     with max_tokens = strong_max_tokens(), and report a capped step with \
                     discard_strong",
                    self.left
                ));
            }
            self.left -= t;
        }
        self.inner.push(kept)
    }

    /// A strong step that hit the `max_tokens` cap (it did not fit): its tokens are charged and
    /// nothing is kept; push the weak step next.
    pub fn discard_strong(&mut self, tokens: u32) {
        if self.left != u64::MAX {
            self.left = self.left.saturating_sub(u64::from(tokens));
        }
    }

    /// Steps kept so far.
    pub fn steps(&self) -> usize {
        self.inner.steps()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::tests::random_net;
    use crate::router::Router;
    use trim_env::Rng;

    /// A serving loop over one request: strong steps of random length, a budget, the rule of
    /// the module docs. Returns (strong tokens charged, regenerations kept).
    fn serve(router: &Router, budget: u64, seed: u64) -> (u64, u32) {
        let mut rng = Rng::new(seed);
        let mut s = BudgetedSession::new(router.session(), budget, 1);
        let (mut spent, mut kept) = (0u64, 0u32);
        for _ in 0..30 {
            let (prm, tokens) = (rng.f32(), 1 + rng.below(200) as u32);
            let d = s.decide(prm, tokens).unwrap();
            let free = s.inner.decide(prm, tokens).unwrap();
            assert_eq!(
                d.p_regenerate, free.p_regenerate,
                "the policy's own probability"
            );
            if d.regenerate {
                let strong_len = 1 + rng.below(150);
                let cap = s.strong_max_tokens();
                if strong_len > cap {
                    s.discard_strong(cap as u32);
                    spent += cap;
                    s.push(KeptStep {
                        prm,
                        tokens,
                        regenerated: false,
                    })
                    .unwrap();
                } else {
                    spent += strong_len;
                    kept += 1;
                    let k = KeptStep {
                        prm: rng.f32(),
                        tokens: strong_len as u32,
                        regenerated: true,
                    };
                    s.push(k).unwrap();
                }
            } else {
                s.push(KeptStep {
                    prm,
                    tokens,
                    regenerated: false,
                })
                .unwrap();
            }
            assert_eq!(s.left(), budget - spent);
        }
        (spent, kept)
    }

    #[test]
    fn the_budget_is_never_exceeded_and_a_large_one_changes_nothing() {
        let router = Router::from_net(random_net(16, 5))
            .with_threshold(0.3)
            .unwrap();
        for seed in 0..50 {
            for budget in [0u64, 1, 50, 200, 1000] {
                let (spent, _) = serve(&router, budget, seed);
                assert!(spent <= budget, "spent {spent} of {budget}");
            }
        }
        // With budget 0 nothing is ever regenerated.
        let s = BudgetedSession::new(router.session(), 0, 1);
        assert!(!s.decide(0.01, 50).unwrap().regenerate);
        // A budget nobody reaches decides exactly like the plain session.
        let mut b = BudgetedSession::new(router.session(), u64::MAX / 2, 1);
        let mut p = router.session();
        let mut rng = Rng::new(9);
        for _ in 0..30 {
            let (prm, tokens) = (rng.f32(), 1 + rng.below(300) as u32);
            assert_eq!(
                b.decide(prm, tokens).unwrap(),
                p.decide(prm, tokens).unwrap()
            );
            let k = KeptStep {
                prm,
                tokens,
                regenerated: rng.f32() < 0.3,
            };
            b.push(k).unwrap();
            p.push(k).unwrap();
        }
        // A reserve masks regenerate early; a strong step over the budget is refused.
        let mut r = BudgetedSession::new(router.session(), 40, 50);
        assert!(!r.decide(0.0, 10).unwrap().regenerate);
        let e = r
            .push(KeptStep {
                prm: 0.5,
                tokens: 41,
                regenerated: true,
            })
            .unwrap_err();
        assert!(e.contains("exceeds the 40 left"), "{e}");
    }
}
