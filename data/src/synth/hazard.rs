//! Solution-length hazards: `h(k)` = P(a solution ends at step k | it reached step k), per model
//! role, from the official TRIM terminal predictors (vendored JSON).

use std::path::Path;

use serde::Deserialize;

use crate::error::{DataError, Loc, Result};

/// Vendored weak-model (Qwen2.5-1.5B-Instruct) solution-length hazard on MATH-train.
pub const WEAK_HAZARD_JSON: &str =
    include_str!("../../calibration/trim_official/math_train_terminal_predictor_slm.json");
/// Vendored strong-model (Qwen2.5-7B-Instruct) solution-length hazard on MATH-train.
pub const STRONG_HAZARD_JSON: &str =
    include_str!("../../calibration/trim_official/math_train_terminal_predictor_llm.json");
/// Where the vendored hazards came from.
pub const HAZARD_ORIGIN: &str = "TRIM release github.com/Vansh28Kapoor/TRIM@5ec6323 pomdp_data/math_train_terminal_predictor_{slm,llm}.pkl (lossless JSON)";

#[derive(Deserialize)]
struct HazardJson {
    max_steps: u32,
    hazard_by_step: std::collections::HashMap<String, f64>,
}

/// Solution-length hazard `h(k)` = P(the solution ends at step k | it reached step k).
#[derive(Clone, Debug, PartialEq)]
pub struct Hazard {
    /// `h[k]` for 1-based step `k` (index 0 unused).
    h: Vec<f64>,
}

impl Hazard {
    /// Parse a TRIM `*_terminal_predictor_*.json` file's text (`hazard_by_step` keyed by step).
    pub fn from_json(path: &Path, text: &str) -> Result<Self> {
        let j: HazardJson = serde_json::from_str(text)
            .map_err(|e| DataError::file(path, format!("bad terminal-predictor JSON: {e}")))?;
        if !(2..=1000).contains(&j.max_steps) {
            return Err(DataError::new(
                path,
                Loc::File,
                Some("max_steps"),
                format!("max_steps {} outside 2..=1000", j.max_steps),
            ));
        }
        let mut h = vec![0.0; j.max_steps as usize + 1];
        for (k, &v) in &j.hazard_by_step {
            let step: usize = k.parse().map_err(|_| {
                DataError::new(
                    path,
                    Loc::File,
                    Some("hazard_by_step"),
                    format!("key `{k}` is not a step number"),
                )
            })?;
            if step >= h.len() {
                return Err(DataError::new(
                    path,
                    Loc::File,
                    Some("hazard_by_step"),
                    format!("step {step} beyond max_steps {}", j.max_steps),
                ));
            }
            if !(0.0..=1.0).contains(&v) {
                return Err(DataError::new(
                    path,
                    Loc::File,
                    Some("hazard_by_step"),
                    format!("hazard {v} at step {step} outside [0, 1]"),
                ));
            }
            h[step] = v;
        }
        Ok(Hazard { h })
    }

    /// Every `h(k)` multiplied by `factor` (capped at 1): `factor > 1` ends solutions sooner.
    /// Used to move a profile's solution lengths to another benchmark's (MATH-500's strong-only
    /// solutions have 8.02 steps against MATH-train's 8.7) without a new predictor.
    pub fn scaled(&self, factor: f64) -> Self {
        Hazard {
            h: self.h.iter().map(|&x| (x * factor).min(1.0)).collect(),
        }
    }

    /// The vendored weak-model hazard.
    pub fn weak_math_train() -> Self {
        Self::from_json(Path::new("<embedded weak hazard>"), WEAK_HAZARD_JSON)
            .expect("embedded weak hazard is valid")
    }

    /// The vendored strong-model hazard.
    pub fn strong_math_train() -> Self {
        Self::from_json(Path::new("<embedded strong hazard>"), STRONG_HAZARD_JSON)
            .expect("embedded strong hazard is valid")
    }

    /// The table: `h(k)` at index `k` (index 0 unused), up to the predictor's `max_steps`.
    pub fn values(&self) -> &[f64] {
        &self.h
    }

    /// `h(k)` for 1-based step `k` (0 beyond the table; the cap is applied by the caller).
    pub fn at(&self, k: u32) -> f64 {
        self.h.get(k as usize).copied().unwrap_or(0.0)
    }

    /// `P(L = k)` for `k = 0..=cap`, where step `cap` always ends the solution.
    pub fn pmf(&self, cap: u16) -> Vec<f64> {
        let cap = usize::from(cap);
        let mut out = vec![0.0; cap + 1];
        let mut survive = 1.0;
        for (k, slot) in out.iter_mut().enumerate().skip(1) {
            let hk = if k >= cap { 1.0 } else { self.at(k as u32) };
            *slot = survive * hk;
            survive *= 1.0 - hk;
        }
        out
    }

    /// Expected number of steps under the cap.
    pub fn mean_steps(&self, cap: u16) -> f64 {
        self.pmf(cap)
            .iter()
            .enumerate()
            .map(|(k, p)| k as f64 * p)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hazards_match_published_mean_lengths() {
        // SOURCE.md: mean ≈ 7.8 steps (weak), 8.7 (strong).
        let w = Hazard::weak_math_train().mean_steps(30);
        let s = Hazard::strong_math_train().mean_steps(30);
        assert!((w - 7.84).abs() < 0.05, "{w}");
        assert!((s - 8.71).abs() < 0.05, "{s}");
        let pmf = Hazard::weak_math_train().pmf(30);
        assert!((pmf.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(pmf[1], 0.0);
    }

    #[test]
    fn bad_hazard_json_is_an_error() {
        let p = Path::new("h.json");
        let e =
            Hazard::from_json(p, r#"{"max_steps": 30, "hazard_by_step": {"3": 1.5}}"#).unwrap_err();
        assert!(e.to_string().contains("outside [0, 1]"), "{e}");
        assert!(Hazard::from_json(p, "{").is_err());
    }
}
