//! The `Policy` trait and the reference policies every routing study starts from.

use std::fmt;
use std::str::FromStr;

use crate::features::{AggObs, FeatureState, HistStep};
use crate::forest::{Action, Candidate};
use crate::rng::Rng;
use crate::signals::{SignalKinds, Signals};

/// Everything a policy may look at when it decides on one step: the running feature state
/// (kept steps' PRM min/product, step index), the current weak candidate, and — for policies
/// that ask for it ([`Policy::wants_history`]) — the episode's per-step history.
///
/// This is the observation seam of every policy family: TRIM-Thr reads the candidate's PRM,
/// TRIM-Agg its 5 aggregated features ([`StepView::agg`]), sequence and belief policies the
/// history. The replay environment and the serving router fill it the same way.
#[derive(Clone, Copy, Debug)]
pub struct StepView<'a> {
    /// Running features of the kept steps.
    pub features: FeatureState,
    /// The weak model's candidate for the current step.
    pub weak: Candidate,
    /// One entry per earlier decision (empty unless the policy wants history).
    pub history: &'a [HistStep],
    /// What the episode is conditioned on (its λ); policies without such inputs ignore it.
    pub cond: Conditions,
    /// The weak candidate's optional signals (judge score, mean log-prob); NaN unless the
    /// policy asked for them ([`Policy::wants_signals`]) and the world carries them.
    pub signals: Signals,
}

/// What an episode is conditioned on besides its steps. Conditioned policies read it as
/// inputs; the others ignore it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conditions {
    /// The cost per strong token this episode's reward uses (NaN when the caller set none).
    pub lambda: f32,
    /// Strong tokens the episode may still spend, and its whole budget (`u64::MAX` both when it
    /// has none).
    pub budget_left: u64,
    pub budget: u64,
}

impl Conditions {
    /// No condition set.
    pub const NONE: Conditions = Conditions {
        lambda: f32::NAN,
        budget_left: u64::MAX,
        budget: u64::MAX,
    };

    /// Whether the episode has a strong-token budget.
    pub fn budgeted(&self) -> bool {
        self.budget != u64::MAX
    }
}

impl Default for Conditions {
    fn default() -> Self {
        Self::NONE
    }
}

impl StepView<'_> {
    /// The TRIM-Agg observation of this step.
    #[inline(always)]
    pub fn agg(&self) -> AggObs {
        self.features.observe(self.weak.prm, self.weak.tokens)
    }
}

/// A policy that knows how likely each of its actions is — what a serving router must log next
/// to each decision so that other policies can be evaluated from its logs (off-policy
/// evaluation).
pub trait Propensity: Policy {
    /// Probability of taking `action` at this decision, the mask applied (0 when masked).
    fn prob(&self, view: &StepView<'_>, mask: [bool; 2], action: Action) -> f64;
}

/// ε-greedy exploration around a deterministic policy: with probability `epsilon` a uniformly
/// random available action, otherwise the inner policy's. The inner policy must not draw from
/// the RNG (TRIM-Thr, the anchors and greedy networks do not), so its choice is a function of
/// the view and [`Propensity::prob`] is exact.
#[derive(Clone, Copy, Debug)]
pub struct EpsGreedy<P> {
    pub inner: P,
    pub epsilon: f64,
}

impl<P: Policy> EpsGreedy<P> {
    fn greedy(&self, view: &StepView<'_>, mask: [bool; 2]) -> Action {
        resolve(self.inner.act(view, mask, &mut Rng::new(0)), mask)
    }
}

impl<P: Policy> Policy for EpsGreedy<P> {
    fn act(&self, view: &StepView<'_>, mask: [bool; 2], rng: &mut Rng) -> Action {
        let g = self.greedy(view, mask);
        if mask[0] && mask[1] && rng.f64() < self.epsilon {
            if rng.f64() < 0.5 {
                Action::Continue
            } else {
                Action::Regenerate
            }
        } else {
            g
        }
    }

    fn wants_history(&self) -> bool {
        self.inner.wants_history()
    }

    fn needs_signals(&self) -> SignalKinds {
        self.inner.needs_signals()
    }
}

impl<P: Policy> Propensity for EpsGreedy<P> {
    fn prob(&self, view: &StepView<'_>, mask: [bool; 2], action: Action) -> f64 {
        if !mask[action as usize] {
            return 0.0;
        }
        if !(mask[0] && mask[1]) {
            return 1.0;
        }
        let g = f64::from(u8::from(self.greedy(view, mask) == action));
        (1.0 - self.epsilon) * g + self.epsilon / 2.0
    }
}

/// A routing policy.
///
/// `act` returns the policy's preferred action; callers pass it through [`resolve`] so a masked
/// action is never taken (the other action is then the only one with probability mass).
pub trait Policy: Sync {
    /// Choose an action for one decision.
    fn act(&self, view: &StepView<'_>, mask: [bool; 2], rng: &mut Rng) -> Action;

    /// Whether [`StepView::history`] must be filled (costs one store per step; off by default).
    fn wants_history(&self) -> bool {
        false
    }

    /// Which of [`StepView::signals`] the policy reads (none by default). Filled only for
    /// policies that read some: a generated world draws them on demand.
    fn needs_signals(&self) -> SignalKinds {
        SignalKinds::default()
    }

    /// Whether [`StepView::signals`] must be filled.
    fn wants_signals(&self) -> bool {
        self.needs_signals() != SignalKinds::default()
    }
}

/// `x < bound`, or `x` is NaN (missing).
#[inline(always)]
fn below_or_missing(x: f32, bound: f32) -> bool {
    use std::cmp::Ordering;
    !matches!(
        x.partial_cmp(&bound),
        Some(Ordering::Greater | Ordering::Equal)
    )
}

/// Apply the action mask: keep `preferred` when it is available, otherwise take the other one.
#[inline(always)]
pub fn resolve(preferred: Action, mask: [bool; 2]) -> Action {
    if mask[preferred as usize] {
        preferred
    } else {
        match preferred {
            Action::Continue => Action::Regenerate,
            Action::Regenerate => Action::Continue,
        }
    }
}

/// The reference policies: always-weak, always-strong, TRIM-Thr and random routing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RefPolicy {
    /// Always continue (the weak model alone).
    Weak,
    /// Always regenerate (the strong model writes every step).
    Strong,
    /// TRIM-Thr: regenerate when the current weak step's PRM score is below `k`.
    Threshold(f32),
    /// Regenerate with probability `p`, independently at each step.
    Random(f32),
    /// SpecReason-style judge rule: keep the weak step iff its judge score is ≥ `s`
    /// (regenerate below). Needs the `judge_score` signal.
    Judge(f32),
    /// Confidence rule: keep the weak step iff its mean token log-probability is ≥ `c`
    /// (regenerate below). Needs the `mean_logprob` signal.
    Confidence(f32),
}

impl Policy for RefPolicy {
    #[inline(always)]
    fn act(&self, view: &StepView<'_>, _mask: [bool; 2], rng: &mut Rng) -> Action {
        let regen = match *self {
            RefPolicy::Weak => false,
            RefPolicy::Strong => true,
            RefPolicy::Threshold(k) => view.weak.prm < k,
            RefPolicy::Random(p) => rng.f32() < p,
            // A missing signal (NaN) regenerates, never silently keeps the step; evaluation
            // refuses a world without the signal up front (`check_signals`).
            RefPolicy::Judge(s) => below_or_missing(view.signals.judge_score, s),
            RefPolicy::Confidence(c) => below_or_missing(view.signals.mean_logprob, c),
        };
        if regen {
            Action::Regenerate
        } else {
            Action::Continue
        }
    }

    fn needs_signals(&self) -> SignalKinds {
        SignalKinds {
            judge_score: matches!(self, RefPolicy::Judge(_)),
            mean_logprob: matches!(self, RefPolicy::Confidence(_)),
        }
    }
}

impl fmt::Display for RefPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefPolicy::Weak => f.write_str("weak"),
            RefPolicy::Strong => f.write_str("strong"),
            RefPolicy::Threshold(k) => write!(f, "threshold:{k}"),
            RefPolicy::Random(p) => write!(f, "random:{p}"),
            RefPolicy::Judge(s) => write!(f, "judge:{s}"),
            RefPolicy::Confidence(c) => write!(f, "confidence:{c}"),
        }
    }
}

impl FromStr for RefPolicy {
    type Err = String;

    /// Parse `weak`, `strong`, `threshold:K`, `random:P`, `judge:S` (K, P, S in [0, 1]) or
    /// `confidence:C` (a mean log-probability, finite and ≤ 0).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unit = |name: &str, v: &str| -> Result<f32, String> {
            let x: f32 = v
                .trim()
                .parse()
                .map_err(|_| format!("{name} value `{v}` is not a number"))?;
            if (0.0..=1.0).contains(&x) {
                Ok(x)
            } else {
                Err(format!("{name} value {x} must be in [0, 1]"))
            }
        };
        match s.trim().split_once(':') {
            None if s.trim() == "weak" => Ok(RefPolicy::Weak),
            None if s.trim() == "strong" => Ok(RefPolicy::Strong),
            Some(("threshold", v)) => Ok(RefPolicy::Threshold(unit("threshold", v)?)),
            Some(("random", v)) => Ok(RefPolicy::Random(unit("random", v)?)),
            Some(("judge", v)) => Ok(RefPolicy::Judge(unit("judge", v)?)),
            Some(("confidence", v)) => {
                let c: f32 = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("confidence value `{v}` is not a number"))?;
                if c.is_finite() && c <= 0.0 {
                    Ok(RefPolicy::Confidence(c))
                } else {
                    Err(format!(
                        "confidence value {c} must be a mean log-probability (finite, ≤ 0)"
                    ))
                }
            }
            _ => Err(format!(
                "unknown policy `{s}`: expected weak, strong, threshold:K, random:P, judge:S or \
                 confidence:C"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for s in [
            "weak",
            "strong",
            "threshold:0.5",
            "random:0.25",
            "judge:0.5",
            "confidence:-0.3",
        ] {
            let p: RefPolicy = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert!("threshold:1.5".parse::<RefPolicy>().is_err());
        assert!("threshold:x".parse::<RefPolicy>().is_err());
        assert!("greedy".parse::<RefPolicy>().is_err());
        assert!("confidence:0.1".parse::<RefPolicy>().is_err());
        assert!("confidence:NaN".parse::<RefPolicy>().is_err());
        assert!("judge:-0.1".parse::<RefPolicy>().is_err());
    }

    #[test]
    fn peer_rules_read_their_signal_and_regenerate_without_it() {
        let mut v = StepView {
            features: FeatureState::new(),
            weak: Candidate {
                tokens: 30,
                prm: 0.9,
            },
            history: &[],
            cond: Conditions::NONE,
            signals: Signals {
                judge_score: 6.0 / 9.0,
                mean_logprob: -0.2,
            },
        };
        let mut rng = Rng::new(0);
        let act = |p: RefPolicy, v: &StepView<'_>, rng: &mut Rng| p.act(v, [true, true], rng);
        assert_eq!(act(RefPolicy::Judge(0.6), &v, &mut rng), Action::Continue);
        assert_eq!(
            act(RefPolicy::Judge(7.0 / 9.0), &v, &mut rng),
            Action::Regenerate
        );
        assert_eq!(
            act(RefPolicy::Confidence(-0.25), &v, &mut rng),
            Action::Continue
        );
        assert_eq!(
            act(RefPolicy::Confidence(-0.1), &v, &mut rng),
            Action::Regenerate
        );
        v.signals = Signals::NONE;
        assert_eq!(act(RefPolicy::Judge(0.0), &v, &mut rng), Action::Regenerate);
        assert!(
            RefPolicy::Judge(0.5).wants_signals() && !RefPolicy::Threshold(0.5).wants_signals()
        );
        assert!(RefPolicy::Confidence(-1.0).needs_signals().mean_logprob);
    }

    #[test]
    fn masked_action_never_taken() {
        let obs = StepView {
            features: FeatureState::new(),
            weak: Candidate {
                tokens: 30,
                prm: 0.1,
            },
            history: &[],
            cond: Conditions::NONE,
            signals: Signals::NONE,
        };
        assert_eq!(obs.agg(), [1.0, 1.0, 0.1, 0.1, 0.0]);
        let mut rng = Rng::new(0);
        let a = RefPolicy::Strong.act(&obs, [true, false], &mut rng);
        assert_eq!(resolve(a, [true, false]), Action::Continue);
        let a = RefPolicy::Weak.act(&obs, [false, true], &mut rng);
        assert_eq!(resolve(a, [false, true]), Action::Regenerate);
        assert_eq!(
            RefPolicy::Threshold(0.5).act(&obs, [true, true], &mut rng),
            Action::Regenerate
        );
        assert_eq!(
            RefPolicy::Threshold(0.05).act(&obs, [true, true], &mut rng),
            Action::Continue
        );
    }
}
