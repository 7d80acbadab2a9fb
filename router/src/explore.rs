//! Exploration at serving time, so that the logs support off-policy evaluation (`trim ope`):
//! the router's decision is randomised and the probability of the action actually taken — the
//! propensity — is returned to be logged beside it.
//!
//! * ε-greedy: with probability ε a uniformly random action, otherwise the policy's decision;
//!   the taken action's propensity is `(1 − ε)·[it is the decision] + ε/2`.
//! * temperature τ over p(regenerate): regenerate with probability
//!   `p^(1/τ) / (p^(1/τ) + (1 − p)^(1/τ))` (τ = 1 samples the policy's own probability; small τ
//!   approaches the thresholded decision at 0.5).
//!
//! Where only one action is possible (continuing is impossible, or a budget forbids
//! regenerating) the action is forced and its propensity is 1.

use trim_env::Rng;

use crate::router::Decision;

/// How a router explores.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Exploration {
    Epsilon(f64),
    Temperature(f64),
}

impl Exploration {
    /// Check the parameter: ε in [0, 1], τ > 0 and finite.
    pub fn check(self) -> Result<Self, String> {
        match self {
            Exploration::Epsilon(e) if (0.0..=1.0).contains(&e) => Ok(self),
            Exploration::Temperature(t) if t.is_finite() && t > 0.0 => Ok(self),
            Exploration::Epsilon(e) => Err(format!("ε {e} is not a probability in [0, 1]")),
            Exploration::Temperature(t) => Err(format!("temperature {t} is not > 0")),
        }
    }

    /// Probability of regenerating given the policy's decision `d` (both actions possible).
    pub fn p_regenerate(self, d: &Decision) -> f64 {
        match self {
            Exploration::Epsilon(e) => (1.0 - e) * f64::from(u8::from(d.regenerate)) + e / 2.0,
            Exploration::Temperature(t) => {
                let p = f64::from(d.p_regenerate).clamp(0.0, 1.0);
                let (a, b) = (p.powf(1.0 / t), (1.0 - p).powf(1.0 / t));
                if a + b > 0.0 { a / (a + b) } else { 0.5 }
            }
        }
    }

    /// Draw the action to take (true = regenerate) and its propensity. `available` is
    /// `[continue, regenerate]`; a forced action has propensity 1.
    pub fn draw(self, d: &Decision, available: [bool; 2], rng: &mut Rng) -> (bool, f64) {
        match available {
            [true, false] => return (false, 1.0),
            [false, true] => return (true, 1.0),
            _ => {}
        }
        let p = self.p_regenerate(d);
        let regen = rng.f64() < p;
        (regen, if regen { p } else { 1.0 - p })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(regenerate: bool, p: f32) -> Decision {
        Decision {
            regenerate,
            p_regenerate: p,
            logits: [0.0, 0.0],
        }
    }

    #[test]
    fn draws_follow_their_propensities_and_forced_actions_have_one() {
        let mut rng = Rng::new(3);
        for (x, d) in [
            (Exploration::Epsilon(0.2), decision(true, 0.7)),
            (Exploration::Epsilon(0.2), decision(false, 0.3)),
            (Exploration::Temperature(1.0), decision(false, 0.3)),
            (Exploration::Temperature(0.5), decision(true, 0.8)),
        ] {
            let p = x.p_regenerate(&d);
            let n = 40_000;
            let mut hits = 0;
            for _ in 0..n {
                let (r, prop) = x.draw(&d, [true, true], &mut rng);
                hits += usize::from(r);
                assert!((prop - if r { p } else { 1.0 - p }).abs() < 1e-12);
            }
            assert!(
                (hits as f64 / n as f64 - p).abs() < 0.01,
                "{x:?}: {hits} vs {p}"
            );
        }
        assert_eq!(
            Exploration::Epsilon(0.0).p_regenerate(&decision(true, 0.9)),
            1.0
        );
        assert!(
            (Exploration::Temperature(1.0).p_regenerate(&decision(false, 0.3)) - 0.3).abs() < 1e-7
        );
        let d = decision(true, 0.9);
        assert_eq!(
            Exploration::Epsilon(0.5).draw(&d, [true, false], &mut rng),
            (false, 1.0)
        );
        assert_eq!(
            Exploration::Epsilon(0.5).draw(&d, [false, true], &mut rng),
            (true, 1.0)
        );
        assert!(Exploration::Epsilon(1.5).check().is_err());
        assert!(Exploration::Temperature(0.0).check().is_err());
    }
}
