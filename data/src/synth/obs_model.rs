//! The PRM observation model: Qwen2.5-Math-PRM-7B scores given a step's latent state.
//!
//! The official TRIM release fits, on ProcessBench's human labels, a 2-D distribution of
//! (min PRM score of the previous steps, current step's PRM score) for each state S0/S1/S2,
//! discretised in 20×20 bins. We sample the current score **conditionally on the actual running
//! minimum** of the path (its row of the table), then jitter uniformly inside the bin.

use std::path::Path;

use serde::Deserialize;
use trim_env::Rng;

use crate::error::{DataError, Result};
use crate::schema::StepState;

/// The vendored math-train observation model (see `data/calibration/SOURCE.md`).
pub const MATH_TRAIN_JSON: &str =
    include_str!("../../calibration/trim_official/math-train_obs_distributions_bin_size_0.05.json");
/// Where [`MATH_TRAIN_JSON`] came from.
pub const MATH_TRAIN_ORIGIN: &str = "TRIM release 5ec6323 pomdp_data/math-train_obs_distributions_bin_size_0.05.pkl (Qwen2.5-Math-PRM-7B on ProcessBench math minus MATH-500)";

#[derive(Deserialize)]
struct StateJson {
    bin_centers: Vec<[f64; 2]>,
    probs: Vec<f64>,
}

#[derive(Deserialize)]
struct ObsJson {
    bin_size: f64,
    states: std::collections::HashMap<String, StateJson>,
}

/// Conditional sampler of current-step PRM scores.
#[derive(Clone, Debug)]
pub struct ObsModel {
    n: usize,
    bin: f64,
    /// `cdf[(state * n + row) * n + col]`: CDF over current-score bins given the min-prev row.
    cdf: Vec<f64>,
    /// `joint[(state * n + row) * n + col]`: the table's probability mass.
    joint: Vec<f64>,
}

impl ObsModel {
    /// The vendored math-train model.
    pub fn math_train() -> Self {
        Self::from_json(
            Path::new("<embedded math-train obs model>"),
            MATH_TRAIN_JSON,
        )
        .expect("embedded observation model is valid")
    }

    /// Parse a TRIM `*_obs_distributions_*.json` file's text.
    pub fn from_json(path: &Path, text: &str) -> Result<Self> {
        let j: ObsJson = serde_json::from_str(text)
            .map_err(|e| DataError::file(path, format!("bad observation model JSON: {e}")))?;
        if !(j.bin_size > 0.0 && j.bin_size <= 0.5) {
            return Err(DataError::file(
                path,
                format!("bad bin_size {}", j.bin_size),
            ));
        }
        let n = (1.0 / j.bin_size).round() as usize;
        let mut joint = vec![0.0; 3 * n * n];
        for s in 0..3usize {
            let st = j.states.get(&s.to_string()).ok_or_else(|| {
                DataError::file(path, format!("observation model lacks state {s}"))
            })?;
            if st.bin_centers.len() != st.probs.len() {
                return Err(DataError::file(
                    path,
                    format!("state {s}: centers/probs mismatch"),
                ));
            }
            for (c, &p) in st.bin_centers.iter().zip(&st.probs) {
                let bin_of = |x: f64| ((x / j.bin_size).floor() as usize).min(n - 1);
                if !(p.is_finite() && p >= 0.0) {
                    return Err(DataError::file(
                        path,
                        format!("state {s}: bad probability {p}"),
                    ));
                }
                joint[(s * n + bin_of(c[0])) * n + bin_of(c[1])] += p;
            }
        }
        let mut cdf = vec![0.0; 3 * n * n];
        for s in 0..3 {
            // Marginal over the current score, the fallback for empty rows.
            let mut marginal = vec![0.0; n];
            for row in 0..n {
                for col in 0..n {
                    marginal[col] += joint[(s * n + row) * n + col];
                }
            }
            for row in 0..n {
                let r = &joint[(s * n + row) * n..(s * n + row + 1) * n];
                let mass: f64 = r.iter().sum();
                let src: &[f64] = if mass > 1e-9 { r } else { &marginal };
                let total: f64 = src.iter().sum();
                if total <= 0.0 {
                    return Err(DataError::file(path, format!("state {s} has no mass")));
                }
                let mut acc = 0.0;
                for col in 0..n {
                    acc += src[col] / total;
                    cdf[(s * n + row) * n + col] = acc;
                }
                cdf[(s * n + row) * n + n - 1] = 1.0;
            }
        }
        Ok(ObsModel {
            n,
            bin: j.bin_size,
            cdf,
            joint,
        })
    }

    /// Sample the current step's PRM score for a step in `state` when the minimum PRM score of
    /// the previous chosen steps is `min_prev` (1.0 at the first step).
    pub fn sample(&self, state: StepState, min_prev: f32, rng: &mut Rng) -> f32 {
        let n = self.n;
        let s = state.index();
        let row = ((f64::from(min_prev.clamp(0.0, 1.0)) / self.bin).floor() as usize).min(n - 1);
        let cdf = &self.cdf[(s * n + row) * n..(s * n + row + 1) * n];
        let u = rng.f64();
        let col = cdf.partition_point(|&c| c < u).min(n - 1);
        let y = (col as f64 + rng.f64()) * self.bin;
        y.clamp(0.0, 1.0) as f32
    }

    /// Bins per axis (20 for 0.05 bins).
    pub fn bins(&self) -> usize {
        self.n
    }

    /// The table's probability mass of `state`: `[row (min-prev bin) * bins + col (current)]`.
    pub fn joint(&self, state: StepState) -> &[f64] {
        let n = self.n;
        let s = state.index();
        &self.joint[s * n * n..(s + 1) * n * n]
    }

    /// Mean current score of a state under the table (for calibration reports and tests).
    pub fn mean_current(&self, state: StepState) -> f64 {
        let n = self.n;
        let s = state.index();
        let mut m = 0.0;
        for row in 0..n {
            for col in 0..n {
                m += self.joint[(s * n + row) * n + col] * (col as f64 + 0.5) * self.bin;
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_model_matches_published_state_means() {
        let m = ObsModel::math_train();
        // trim-paper.md §2.4: E[current] is 0.934 (S0), 0.614 (S1), 0.297 (S2).
        assert!((m.mean_current(StepState::S0) - 0.934).abs() < 0.01);
        assert!((m.mean_current(StepState::S1) - 0.614).abs() < 0.01);
        assert!((m.mean_current(StepState::S2) - 0.297).abs() < 0.01);
    }

    #[test]
    fn samples_separate_states_and_follow_running_min() {
        let m = ObsModel::math_train();
        let mut rng = Rng::new(1);
        let mean = |s: StepState, min: f32, rng: &mut Rng| {
            (0..20_000)
                .map(|_| f64::from(m.sample(s, min, rng)))
                .sum::<f64>()
                / 20_000.0
        };
        let s0 = mean(StepState::S0, 1.0, &mut rng);
        let s2 = mean(StepState::S2, 1.0, &mut rng);
        assert!(s0 > 0.85 && s2 < 0.5, "{s0} {s2}");
        for _ in 0..1000 {
            let x = m.sample(StepState::S1, 0.2, &mut rng);
            assert!((0.0..=1.0).contains(&x));
        }
    }
}
