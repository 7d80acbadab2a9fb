//! `parity.json`: fixed observations and the logits the exporting (burn) model gave on them.
//! Every consumer — this crate at load time, `trim export` before it writes, the Python
//! reference router — checks itself against the same fixture, so "the export computes the
//! trained policy" is a measured fact, not an assumption.

use serde::{Deserialize, Serialize};
use trim_env::AGG_DIM;

use crate::agg::{AggNet, N_ACTIONS};

/// Tolerance on |Δlogit| and |Δprobability| every consumer checks against.
pub const TOLERANCE: f32 = 1e-5;

/// `parity.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParityFixture {
    /// Tolerance consumers should check against.
    pub tolerance: f32,
    /// `[n][d]` observations (d = the network's input width: 5, or 6 with the λ input).
    pub obs: Vec<Vec<f32>>,
    /// `[n][2]` logits of the burn model.
    pub logits: Vec<[f32; N_ACTIONS]>,
    /// `[n][2]` softmax of the logits.
    pub probs: Vec<[f32; N_ACTIONS]>,
}

/// Fixed parity observations for a network of `input_dim` inputs: the TRIM-Agg rows of
/// [`agg_parity_observations`], each followed for a λ-conditioned network by a λ input that
/// sweeps a little beyond the trained [−1, 1] (deterministic).
pub fn parity_observations(input_dim: usize) -> Vec<Vec<f32>> {
    let base = agg_parity_observations();
    let n = base.len();
    (base.into_iter().enumerate())
        .map(|(i, o)| {
            let mut row = o.to_vec();
            row.extend((AGG_DIM..input_dim).map(|_| -1.2 + 2.4 * i as f32 / (n - 1) as f32));
            row
        })
        .collect()
}

/// Fixed TRIM-Agg parity observations: the corners of the feature box, typical mid-episode
/// states and a deterministic pseudo-random spread (including out-of-range token and step
/// values).
pub fn agg_parity_observations() -> Vec<[f32; AGG_DIM]> {
    let mut obs = vec![
        [1.0, 1.0, 0.9, 0.2, 0.0],
        [1.0, 1.0, 0.1, 0.5, 0.0],
        [0.3, 0.05, 0.8, 0.3, 0.4],
        [0.9, 0.6, 0.2, 0.1, 0.2],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [1.0, 1.0, 1.0, 1.0, 1.0],
        [0.5, 0.25, 0.5, 2.5, 1.5],
    ];
    let mut rng = trim_env::Rng::new(0x7219);
    for _ in 0..25 {
        obs.push([
            rng.f32(),
            rng.f32() * rng.f32(),
            rng.f32(),
            rng.f32() * 1.5,
            rng.f32(),
        ]);
    }
    obs
}

/// Max |logit difference| of `w` against a parity fixture (NaN if any output is NaN).
pub fn max_abs_diff(w: &AggNet, fixture: &ParityFixture) -> f32 {
    let pairs = fixture.obs.iter().zip(&fixture.logits);
    max_diff(pairs.flat_map(|(o, want)| {
        let got = w.logits(o);
        (0..N_ACTIONS).map(move |k| (got[k], want[k]))
    }))
}

/// Max |difference| of the logits and probabilities computed by ONNX model bytes (through
/// [`crate::onnx::evaluate`]) against a parity fixture (NaN if any output is NaN).
pub fn onnx_max_abs_diff(model: &[u8], fixture: &ParityFixture) -> Result<f32, String> {
    let out = crate::onnx::evaluate(model, &fixture.obs)?;
    let mut m = 0.0f32;
    for (name, want) in [("logits", &fixture.logits), ("probs", &fixture.probs)] {
        let (shape, got) = out
            .get(name)
            .ok_or_else(|| format!("the graph has no output {name}"))?;
        if shape != &[fixture.obs.len(), N_ACTIONS] {
            return Err(format!("output {name} has shape {shape:?}"));
        }
        let d = max_diff(got.iter().copied().zip(want.iter().flatten().copied()));
        if d.is_nan() {
            return Ok(d);
        }
        m = m.max(d);
    }
    Ok(m)
}

/// Max |a − b| over pairs; NaN as soon as one difference is NaN.
fn max_diff(pairs: impl Iterator<Item = (f32, f32)>) -> f32 {
    let mut m = 0.0f32;
    for (a, b) in pairs {
        let d = (a - b).abs();
        if d.is_nan() {
            return f32::NAN;
        }
        m = m.max(d);
    }
    m
}
