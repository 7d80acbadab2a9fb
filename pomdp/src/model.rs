//! The TRIM-POMDP model: observation distributions per latent state, per-step accuracies, the
//! termination hazard and the cost conventions.
//!
//! Conventions (trim-paper.md §2.4, written down because the release's differ from ours):
//! * reward 1 for a correct final answer (the release uses R = 100) and −λ per strong token, so
//!   the release's `cost_per_token` c maps to λ = c / 100 (its 0.05 … 0.85 are λ = 5e-4 … 8.5e-3);
//! * the immediate cost of regenerating the current step uses its real token count; future
//!   regenerations are charged `future_tokens` each (the release assumes 60);
//! * transitions: continue from S0 → S0 with p_w, S2 with 1 − p_w; from S1 or S2 → S1.
//!   Regenerate from S0 or S2 → S0 with p_s·p_w, S2 with p_s·(1 − p_w), S1 with 1 − p_s; from S1
//!   → S1;
//! * after the decision at step k, the next step is the last one with probability h(k + 1); its
//!   decision ends the episode: continue pays 1 in S0, regenerate pays p_s in S0 or S2.

use std::fmt;

/// A belief over the current step's state: `[P(S0), P(S1), P(S2)]`.
pub type Belief = [f64; 3];

/// Why a model was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// A field holds a value outside its domain.
    #[error("{field}: {reason}")]
    Bad { field: String, reason: String },
}

fn bad<T>(field: impl Into<String>, reason: impl Into<String>) -> Result<T, ModelError> {
    Err(ModelError::Bad {
        field: field.into(),
        reason: reason.into(),
    })
}

/// The POMDP's parameters (see the module docs for the conventions).
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PomdpModel {
    /// Bins per observation axis (20 for the release's 0.05 bins).
    pub bins: usize,
    /// `obs[s][row * bins + col]` = P(min-prev bin `row`, current bin `col` | state s); each
    /// state's table sums to 1.
    pub obs: [Vec<f64>; 3],
    /// Per-step accuracy of the weak model (release: 0.8660).
    pub p_w: f64,
    /// Per-step accuracy of the strong model (release: 0.9704).
    pub p_s: f64,
    /// `hazard[k]` = P(step k is the last | step k is reached), 1-based; `hazard[max_steps] = 1`.
    pub hazard: Vec<f64>,
    /// Tokens charged for each future regeneration (release: 60).
    pub future_tokens: f64,
}

impl fmt::Debug for PomdpModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PomdpModel")
            .field("bins", &self.bins)
            .field("p_w", &self.p_w)
            .field("p_s", &self.p_s)
            .field("max_steps", &self.max_steps())
            .field("future_tokens", &self.future_tokens)
            .finish_non_exhaustive()
    }
}

/// The observation bin of a PRM pair on a `bins` × `bins` grid: row = min-prev bin, column =
/// current bin (scores clamped to [0, 1]). Models and the fitter that builds them share it.
#[inline]
pub fn obs_bin(bins: usize, min_prev: f32, current: f32) -> usize {
    let bin = |x: f32| ((f64::from(x.clamp(0.0, 1.0)) * bins as f64) as usize).min(bins - 1);
    bin(min_prev) * bins + bin(current)
}

/// Tolerance on "sums to 1".
const SUM_TOL: f64 = 1e-6;

impl PomdpModel {
    /// Check every value; each error names the field.
    pub fn validate(&self) -> Result<(), ModelError> {
        if !(1..=200).contains(&self.bins) {
            return bad("bins", format!("{} outside 1..=200", self.bins));
        }
        for (s, table) in self.obs.iter().enumerate() {
            let field = format!("obs[S{s}]");
            if table.len() != self.bins * self.bins {
                return bad(
                    field,
                    format!(
                        "{} entries, expected bins² = {}",
                        table.len(),
                        self.bins * self.bins
                    ),
                );
            }
            if let Some((i, p)) = table
                .iter()
                .enumerate()
                .find(|(_, p)| !(p.is_finite() && **p >= 0.0))
            {
                return bad(
                    field,
                    format!("entry {i} is {p}: probabilities must be finite and ≥ 0"),
                );
            }
            let total: f64 = table.iter().sum();
            if (total - 1.0).abs() > SUM_TOL {
                return bad(field, format!("sums to {total}, not 1"));
            }
        }
        for (name, p) in [("p_w", self.p_w), ("p_s", self.p_s)] {
            if !(0.0..=1.0).contains(&p) {
                return bad(name, format!("{p} outside [0, 1]"));
            }
        }
        if self.hazard.len() < 3 {
            return bad(
                "hazard",
                "needs entries for steps 1..=max_steps (max_steps ≥ 2)",
            );
        }
        if let Some((k, h)) = self
            .hazard
            .iter()
            .enumerate()
            .find(|(_, h)| !(0.0..=1.0).contains(*h))
        {
            return bad("hazard", format!("h({k}) = {h} outside [0, 1]"));
        }
        if self.hazard[self.max_steps() as usize] != 1.0 {
            return bad(
                "hazard",
                "the last step must end the solution (h(max_steps) = 1)",
            );
        }
        if !(self.future_tokens.is_finite() && self.future_tokens >= 0.0) {
            return bad(
                "future_tokens",
                format!("{} must be finite and ≥ 0", self.future_tokens),
            );
        }
        Ok(())
    }

    /// The longest solution (the hazard's last step).
    pub fn max_steps(&self) -> u16 {
        (self.hazard.len() - 1) as u16
    }

    /// The observation bin of a PRM pair (scores clamped to [0, 1]).
    #[inline]
    pub fn obs_bin(&self, min_prev: f32, current: f32) -> usize {
        obs_bin(self.bins, min_prev, current)
    }

    /// Likelihood of observation bin `o` under each state.
    #[inline]
    pub fn likelihood(&self, o: usize) -> [f64; 3] {
        [self.obs[0][o], self.obs[1][o], self.obs[2][o]]
    }

    /// The state distribution of the next step after `action` from belief `b`.
    #[inline]
    pub fn predict(&self, b: &Belief, regenerate: bool) -> Belief {
        let (pw, ps) = (self.p_w, self.p_s);
        if regenerate {
            let ok = b[0] + b[2];
            [ok * ps * pw, b[1] + ok * (1.0 - ps), ok * ps * (1.0 - pw)]
        } else {
            [b[0] * pw, b[1] + b[2], b[0] * (1.0 - pw)]
        }
    }

    /// The state of the first step (written by the weak model from an empty prefix).
    pub fn prior(&self) -> Belief {
        [self.p_w, 0.0, 1.0 - self.p_w]
    }

    /// Expected terminal reward of the final decision, without its cost: continue pays 1 in S0,
    /// regenerate pays p_s in S0 or S2.
    #[inline]
    pub fn final_reward(&self, b: &Belief, regenerate: bool) -> f64 {
        if regenerate {
            self.p_s * (b[0] + b[2])
        } else {
            b[0]
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small valid model: 2×2 observation bins, a 4-step hazard.
    pub(crate) fn tiny() -> PomdpModel {
        PomdpModel {
            bins: 2,
            // S0: mostly (high, high); S1: (low, *); S2: (high, low).
            obs: [
                vec![0.02, 0.03, 0.10, 0.85],
                vec![0.40, 0.35, 0.15, 0.10],
                vec![0.05, 0.05, 0.70, 0.20],
            ],
            p_w: 0.8,
            p_s: 0.95,
            hazard: vec![0.0, 0.0, 0.3, 0.5, 1.0],
            future_tokens: 60.0,
        }
    }

    #[test]
    fn bad_models_are_refused_naming_the_field() {
        assert!(tiny().validate().is_ok());
        type Break = Box<dyn Fn(&mut PomdpModel)>;
        let cases: Vec<(Break, &str)> = vec![
            (Box::new(|m| m.obs[1][0] = -0.1), "obs[S1]"),
            (Box::new(|m| m.obs[2][3] = 0.5), "sums to"),
            (Box::new(|m| m.obs[0][0] = f64::NAN), "obs[S0]"),
            (Box::new(|m| m.obs[0].pop().map_or((), |_| ())), "entries"),
            (Box::new(|m| m.p_w = 1.5), "p_w"),
            (Box::new(|m| m.hazard[2] = -0.2), "hazard"),
            (Box::new(|m| m.hazard[4] = 0.9), "last step"),
            (
                Box::new(|m| m.future_tokens = f64::INFINITY),
                "future_tokens",
            ),
            (Box::new(|m| m.bins = 0), "bins"),
        ];
        for (break_it, needle) in cases {
            let mut m = tiny();
            break_it(&mut m);
            let e = m.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn transitions_conserve_probability_and_follow_the_release() {
        let m = tiny();
        let b = [0.5, 0.2, 0.3];
        for regen in [false, true] {
            let p = m.predict(&b, regen);
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        // Continue from S2 derails; regenerate from S2 recovers with p_s.
        assert_eq!(m.predict(&[0.0, 0.0, 1.0], false), [0.0, 1.0, 0.0]);
        let r = m.predict(&[0.0, 0.0, 1.0], true);
        assert!((r[0] - 0.95 * 0.8).abs() < 1e-12 && (r[1] - 0.05).abs() < 1e-12);
        assert_eq!(m.obs_bin(1.0, 0.0), 2);
        assert_eq!(m.obs_bin(0.2, 0.7), 1);
    }
}
