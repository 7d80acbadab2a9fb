//! Deploying a trained policy: load an export (see [`crate::export`]) and decide, once per
//! reasoning step, whether to keep the weak model's step or regenerate it with the strong one.
//!
//! Callers pass raw per-step numbers (PRM scores, token counts) and never build feature
//! vectors: [`EpisodeFeatures`] keeps the running min/product of the kept steps' PRM scores and
//! the step index exactly as the training environment did (`trim_env::agg_features`).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use trim::router::{EpisodeFeatures, Router};
//! let router = Router::load("exports/my-run".as_ref())?;
//! let mut ep = EpisodeFeatures::new();
//! // step 0: the weak model proposed a 120-token step that the PRM scores 0.42
//! let d = router.decide(&ep.observe(0.42, 120)?);
//! let kept_prm = if d.regenerate { 0.91 /* PRM of the strong step */ } else { 0.42 };
//! ep.push(kept_prm);
//! # Ok(()) }
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use trim_env::features::{STEP_SCALE, TOKEN_SCALE, agg_features};
use trim_env::{AGG_DIM, AGG_FEATURES, AggObs};

use crate::export::{
    self, ExportError, FORMAT, FORMAT_VERSION, MANIFEST, Manifest, ONNX, PARITY, ParityFixture,
    SAFETENSORS,
};
use crate::model::{MAX_HIDDEN, N_ACTIONS, PolicyWeights};

/// Running features of one episode (one problem being solved).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpisodeFeatures {
    min_prev: f32,
    prod_prev: f32,
    steps: u16,
}

impl Default for EpisodeFeatures {
    fn default() -> Self {
        Self::new()
    }
}

impl EpisodeFeatures {
    /// The state before the first step: min = product = 1, t = 0.
    pub fn new() -> Self {
        EpisodeFeatures {
            min_prev: 1.0,
            prod_prev: 1.0,
            steps: 0,
        }
    }

    /// The state after the steps whose *kept* PRM scores are `kept_prm` (in order).
    pub fn from_history(kept_prm: &[f32]) -> Result<Self, String> {
        let mut s = Self::new();
        for &p in kept_prm {
            s.push(p)?;
        }
        Ok(s)
    }

    /// Record a finished step: the PRM score of the step that was kept (the weak step on
    /// continue, the strong step on regenerate).
    pub fn push(&mut self, kept_prm: f32) -> Result<(), String> {
        check_prm(kept_prm)?;
        self.steps = self
            .steps
            .checked_add(1)
            .ok_or("more than 65535 steps in one episode")?;
        self.min_prev = self.min_prev.min(kept_prm);
        self.prod_prev *= kept_prm;
        Ok(())
    }

    /// Steps recorded so far (the index `t` of the next decision).
    pub fn steps(&self) -> u16 {
        self.steps
    }

    /// The network input for deciding on the current weak candidate step.
    pub fn observe(&self, cur_prm: f32, cur_tokens: u32) -> Result<AggObs, String> {
        check_prm(cur_prm)?;
        Ok(agg_features(
            self.min_prev,
            self.prod_prev,
            cur_prm,
            cur_tokens,
            self.steps,
        ))
    }
}

fn check_prm(p: f32) -> Result<(), String> {
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("PRM score {p} is not in [0, 1]"))
    }
}

/// One routing decision.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// True: regenerate this step with the strong model; false: keep the weak step.
    pub regenerate: bool,
    /// p(regenerate) = `softmax(logits)[1]`.
    pub p_regenerate: f32,
    /// Raw logits `[continue, regenerate]`.
    pub logits: [f32; N_ACTIONS],
}

/// A loaded, verified policy.
#[derive(Clone, Debug)]
pub struct Router {
    weights: PolicyWeights,
    threshold: f32,
    manifest: Option<Manifest>,
}

/// Rebuild the network from safetensors bytes, checking every name and shape.
pub fn weights_from_safetensors(bytes: &[u8], hidden: usize) -> Result<PolicyWeights, String> {
    if hidden == 0 || hidden > MAX_HIDDEN {
        return Err(format!("hidden width {hidden} not in 1..={MAX_HIDDEN}"));
    }
    let (mut tensors, _) = export::safetensors::deserialize(bytes)?;
    let w = PolicyWeights::from_named_params(hidden, |name, shape| {
        let t = tensors
            .remove(name)
            .ok_or_else(|| format!("tensor {name} missing"))?;
        if t.shape != shape {
            return Err(format!(
                "tensor {name} has shape {:?}, expected {shape:?}",
                t.shape
            ));
        }
        if let Some(v) = t.data.iter().find(|v| !v.is_finite()) {
            return Err(format!("tensor {name} holds a non-finite value {v}"));
        }
        Ok(t.data)
    })?;
    if let Some(extra) = tensors.keys().next() {
        return Err(format!("unexpected tensor {extra}"));
    }
    Ok(w)
}

fn p_regenerate(l: [f32; 2]) -> f32 {
    // softmax(l)[1] = σ(l1 − l0), in the overflow-free form.
    let z = l[1] - l[0];
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl Router {
    /// A router over in-memory weights (e.g. `model.weights()` of a training run).
    pub fn from_weights(weights: PolicyWeights) -> Self {
        Router {
            weights,
            threshold: export::DEFAULT_THRESHOLD,
            manifest: None,
        }
    }

    /// Load the export in `dir` and verify it before use: `policy.json` format and version,
    /// the sha256 of every file it lists, the feature list and scales this build computes,
    /// every tensor's name and shape, and the parity fixture: the network rebuilt from the
    /// safetensors, and `policy.onnx` evaluated by [`export::onnx::evaluate`], must reproduce
    /// the exporting burn model's logits within the fixture's tolerance (1e-5).
    pub fn load(dir: &Path) -> Result<Self, ExportError> {
        let mpath = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&mpath).map_err(|e| {
            ExportError::io(
                &mpath,
                format!("cannot read ({e}); is this a `trim export` directory?"),
            )
        })?;
        // Check format and version before the strict parse, so that a newer export gets a
        // version error rather than a schema error.
        let head: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ExportError::invalid(&mpath, e))?;
        let (f, v) = (head.get("format"), head.get("format_version"));
        if f.and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(ExportError::invalid(
                &mpath,
                format!("format is {f:?}, expected \"{FORMAT}\""),
            ));
        }
        if v.and_then(|v| v.as_u64()) != Some(FORMAT_VERSION as u64) {
            return Err(ExportError::invalid(
                &mpath,
                format!(
                    "format_version {v:?} is not supported (this trim reads {FORMAT_VERSION}); re-export with this version"
                ),
            ));
        }
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| ExportError::invalid(&mpath, e))?;
        let names: Vec<&str> = manifest.features.iter().map(|f| f.name.as_str()).collect();
        if names != AGG_FEATURES
            || manifest.token_scale != TOKEN_SCALE
            || manifest.step_scale != STEP_SCALE
            || manifest.architecture.input_dim != AGG_DIM
            || manifest.architecture.n_actions != N_ACTIONS
        {
            return Err(ExportError::invalid(
                &mpath,
                format!(
                    "features {names:?} (scales {}/{}) do not match this build's {AGG_FEATURES:?} ({TOKEN_SCALE}/{STEP_SCALE})",
                    manifest.token_scale, manifest.step_scale
                ),
            ));
        }
        let read_checked = |name: &str| -> Result<Vec<u8>, ExportError> {
            let p = dir.join(name);
            let want = manifest.files.get(name).ok_or_else(|| {
                ExportError::invalid(&mpath, format!("{name} is not listed in files"))
            })?;
            let bytes = std::fs::read(&p).map_err(|e| ExportError::io(&p, e))?;
            let got = export::sha256_hex(&bytes);
            if &got != want {
                return Err(ExportError::invalid(
                    &p,
                    format!(
                        "sha256 {got} does not match policy.json ({want}): the file is corrupted or from another export"
                    ),
                ));
            }
            Ok(bytes)
        };
        for name in manifest.files.keys() {
            if ![SAFETENSORS, ONNX, PARITY].contains(&name.as_str()) {
                return Err(ExportError::invalid(&mpath, format!("unknown file {name}")));
            }
        }
        if !manifest.files.contains_key(SAFETENSORS) {
            return Err(ExportError::invalid(
                dir,
                "no policy.safetensors in this export (ONNX-only exports are for onnxruntime; re-export with --format safetensors or all)",
            ));
        }
        let st = read_checked(SAFETENSORS)?;
        let weights = weights_from_safetensors(&st, manifest.architecture.hidden)
            .map_err(|e| ExportError::invalid(dir.join(SAFETENSORS), e))?;
        let spec: Vec<_> = weights
            .named_params()
            .into_iter()
            .map(|(n, s, _)| (n, s))
            .collect();
        let listed: Vec<_> = manifest
            .architecture
            .params
            .iter()
            .map(|p| (p.name.clone(), p.shape.clone()))
            .collect();
        if spec != listed {
            return Err(ExportError::invalid(
                &mpath,
                "architecture.params do not match the tensors of policy.safetensors",
            ));
        }
        let fixture: ParityFixture = serde_json::from_slice(&read_checked(PARITY)?)
            .map_err(|e| ExportError::invalid(dir.join(PARITY), e))?;
        let diff = export::max_abs_diff(&weights, &fixture);
        if diff.is_nan() || diff > fixture.tolerance {
            return Err(ExportError::invalid(
                dir,
                format!(
                    "weights reproduce the exported logits only within {diff} (> {})",
                    fixture.tolerance
                ),
            ));
        }
        if manifest.files.contains_key(ONNX) {
            let onnx = read_checked(ONNX)?;
            let d = export::onnx_max_abs_diff(&onnx, &fixture)
                .map_err(|e| ExportError::invalid(dir.join(ONNX), e))?;
            if d.is_nan() || d > fixture.tolerance {
                return Err(ExportError::invalid(
                    dir.join(ONNX),
                    format!("the graph reproduces the exported logits only within {d}"),
                ));
            }
        }
        let threshold = manifest.decision.default_threshold;
        Ok(Router {
            weights,
            threshold,
            manifest: Some(manifest),
        })
    }

    /// Use another threshold on p(regenerate) (higher: fewer strong calls).
    pub fn with_threshold(mut self, threshold: f32) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(format!("threshold {threshold} is not in [0, 1]"));
        }
        self.threshold = threshold;
        Ok(self)
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The manifest, when loaded from an export.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    pub fn weights(&self) -> &PolicyWeights {
        &self.weights
    }

    /// Raw logits `[continue, regenerate]` of one observation.
    #[inline]
    pub fn logits(&self, obs: &AggObs) -> [f32; N_ACTIONS] {
        self.weights.logits(obs)
    }

    /// Decide on one observation (see [`EpisodeFeatures::observe`]).
    #[inline]
    pub fn decide(&self, obs: &AggObs) -> Decision {
        let logits = self.weights.logits(obs);
        let p = p_regenerate(logits);
        Decision {
            regenerate: p > self.threshold,
            p_regenerate: p,
            logits,
        }
    }

    /// Decide for many episodes at once (one observation each), in parallel for large
    /// batches.
    pub fn decide_batch(&self, obs: &[AggObs]) -> Vec<Decision> {
        use rayon::prelude::*;
        if obs.len() < 4096 {
            obs.iter().map(|o| self.decide(o)).collect()
        } else {
            obs.par_iter()
                .with_min_len(1024)
                .map(|o| self.decide(o))
                .collect()
        }
    }

    /// Decide from raw history: the kept PRM scores of the previous steps, and the current
    /// weak candidate's PRM score and token count.
    pub fn decide_step(&self, step: &StepObservation) -> Result<Decision, String> {
        let ep = EpisodeFeatures::from_history(&step.prev_prm)?;
        Ok(self.decide(&ep.observe(step.prm, step.tokens)?))
    }

    /// [`decide_step`](Self::decide_step) for many concurrent episodes; fails on the first
    /// invalid step, naming its index.
    pub fn decide_steps(&self, steps: &[StepObservation]) -> Result<Vec<Decision>, String> {
        let obs = steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                EpisodeFeatures::from_history(&s.prev_prm)
                    .and_then(|e| e.observe(s.prm, s.tokens))
                    .map_err(|e| format!("step {i}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.decide_batch(&obs))
    }
}

/// One step as `trim route` reads it (a JSON line).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepObservation {
    /// Echoed back unchanged (request id, problem id, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<serde_json::Value>,
    /// PRM scores of the steps already kept, in order (empty for the first step).
    #[serde(default)]
    pub prev_prm: Vec<f32>,
    /// PRM score of the current weak candidate step.
    pub prm: f32,
    /// Token count of the current weak candidate step.
    pub tokens: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_follow_the_environment() {
        let e = EpisodeFeatures::new();
        assert_eq!(e.observe(0.7, 150).unwrap(), [1.0, 1.0, 0.7, 0.5, 0.0]);
        let e = EpisodeFeatures::from_history(&[0.9, 0.5, 0.8]).unwrap();
        let o = e.observe(0.3, 30).unwrap();
        assert_eq!(o[0], 0.5);
        assert!((o[1] - 0.36).abs() < 1e-6);
        assert!((o[3] - 0.1).abs() < 1e-7);
        assert!((o[4] - 0.1).abs() < 1e-7);
        assert!(e.observe(1.5, 1).is_err());
        assert!(EpisodeFeatures::from_history(&[f32::NAN]).is_err());
    }

    #[test]
    fn safetensors_round_trip_rebuilds_the_same_network() {
        let dev = crate::backend::Backend::Flex.device().unwrap();
        let net = crate::model::ActorCritic::new(16, &mut trim_env::Rng::new(5), &dev);
        let w = net.weights();
        let meta = std::collections::BTreeMap::new();
        let bytes = export::safetensors::serialize(&w.named_params(), &meta).unwrap();
        let back = weights_from_safetensors(&bytes, 16).unwrap();
        assert_eq!(back, w);
        // Actor-only logits are the logits of the full forward pass.
        let o = [0.3, 0.1, 0.7, 0.4, 0.2];
        assert_eq!(w.logits(&o), w.forward(&o).0);
        // Wrong width: a shape error naming the tensor.
        let e = weights_from_safetensors(&bytes, 8).unwrap_err();
        assert!(e.contains("trunk1.weight") && e.contains("shape"), "{e}");
        assert!(weights_from_safetensors(&bytes, 0).is_err());
        // A missing tensor.
        let mut params = w.named_params();
        params.retain(|(n, _, _)| n != "actor_ln.bias");
        let bytes = export::safetensors::serialize(&params, &meta).unwrap();
        let e = weights_from_safetensors(&bytes, 16).unwrap_err();
        assert!(e.contains("actor_ln.bias missing"), "{e}");
    }

    #[test]
    fn probability_is_the_softmax() {
        for l in [[0.0f32, 0.0], [3.0, -2.0], [-50.0, 60.0], [1e3, -1e3]] {
            let p = p_regenerate(l);
            let s = export::softmax2(l);
            assert!((p - s[1]).abs() < 1e-7, "{l:?}");
        }
    }
}
