//! Deciding, once per reasoning step, whether to keep the weak model's step or regenerate it
//! with the strong one.
//!
//! Callers pass raw per-step numbers (PRM scores, token counts) and never build feature vectors:
//! [`EpisodeFeatures`] holds the environment's own [`FeatureState`] and adds the input checks a
//! serving boundary needs.

use std::path::Path;

use serde::{Deserialize, Serialize};
use trim_env::AggObs;
use trim_env::features::FeatureState;

use crate::agg::{AggNet, N_ACTIONS};
use crate::error::RouterError;
use crate::manifest::{DEFAULT_THRESHOLD, Manifest};
use crate::mlp::p_second;

/// Running features of one episode (one problem being solved), checked at the boundary.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EpisodeFeatures(FeatureState);

impl EpisodeFeatures {
    /// The state before the first step: min = product = 1, t = 0.
    pub fn new() -> Self {
        EpisodeFeatures(FeatureState::new())
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
        if self.0.steps() == u16::MAX {
            return Err("more than 65535 steps in one episode".into());
        }
        self.0.push(kept_prm);
        Ok(())
    }

    /// Steps recorded so far (the index `t` of the next decision).
    pub fn steps(&self) -> u16 {
        self.0.steps()
    }

    /// The network input for deciding on the current weak candidate step.
    pub fn observe(&self, cur_prm: f32, cur_tokens: u32) -> Result<AggObs, String> {
        check_prm(cur_prm)?;
        Ok(self.0.observe(cur_prm, cur_tokens))
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

/// One step as a serving loop reports it (a JSON line of `trim route`).
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

/// A loaded, verified policy.
#[derive(Clone, Debug)]
pub struct Router {
    net: AggNet,
    threshold: f32,
    manifest: Option<Manifest>,
}

impl Router {
    /// A router over in-memory weights (e.g. the acting network of a training run).
    pub fn from_net(net: AggNet) -> Self {
        Router {
            net,
            threshold: DEFAULT_THRESHOLD,
            manifest: None,
        }
    }

    /// Load the export in `dir` and verify it before use: manifest format, version and
    /// consistency, the sha256 of every listed file, every tensor's name, shape and finiteness, and
    /// the parity fixture reproduced by the safetensors weights and the ONNX graph.
    pub fn load(dir: &Path) -> Result<Self, RouterError> {
        let v = crate::load::load_dir(dir)?;
        Ok(Router {
            net: v.net,
            threshold: v.manifest.decision.default_threshold,
            manifest: Some(v.manifest),
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

    /// The threshold on p(regenerate) in use.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The manifest, when loaded from an export.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// The network.
    pub fn net(&self) -> &AggNet {
        &self.net
    }

    /// Raw logits `[continue, regenerate]` of one observation.
    #[inline]
    pub fn logits(&self, obs: &AggObs) -> [f32; N_ACTIONS] {
        self.net.logits(obs)
    }

    /// Decide on one observation (see [`EpisodeFeatures::observe`]).
    #[inline]
    pub fn decide(&self, obs: &AggObs) -> Decision {
        let logits = self.net.logits(obs);
        let p = p_second(logits);
        Decision {
            regenerate: p > self.threshold,
            p_regenerate: p,
            logits,
        }
    }

    /// Decide for many episodes at once (one observation each), in parallel for large batches.
    pub fn decide_batch(&self, obs: &[AggObs]) -> Vec<Decision> {
        use rayon::prelude::*;
        if obs.len() < 4096 {
            obs.iter().map(|o| self.decide(o)).collect()
        } else {
            (obs.par_iter().with_min_len(1024))
                .map(|o| self.decide(o))
                .collect()
        }
    }

    /// Decide from raw history: the kept PRM scores of the previous steps, and the current weak
    /// candidate's PRM score and token count.
    pub fn decide_step(&self, step: &StepObservation) -> Result<Decision, String> {
        let ep = EpisodeFeatures::from_history(&step.prev_prm)?;
        Ok(self.decide(&ep.observe(step.prm, step.tokens)?))
    }

    /// [`decide_step`](Self::decide_step) for many concurrent episodes; fails on the first
    /// invalid step, naming its index.
    pub fn decide_steps(&self, steps: &[StepObservation]) -> Result<Vec<Decision>, String> {
        let obs = (steps.iter().enumerate())
            .map(|(i, s)| {
                EpisodeFeatures::from_history(&s.prev_prm)
                    .and_then(|e| e.observe(s.prm, s.tokens))
                    .map_err(|e| format!("step {i}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.decide_batch(&obs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::tests::random_net;

    #[test]
    fn features_follow_the_environment_and_refuse_bad_scores() {
        let e = EpisodeFeatures::from_history(&[0.9, 0.5, 0.8]).unwrap();
        let mut s = FeatureState::new();
        for p in [0.9, 0.5, 0.8] {
            s.push(p);
        }
        assert_eq!(e.observe(0.3, 30).unwrap(), s.observe(0.3, 30));
        assert!(e.observe(1.5, 1).is_err());
        assert!(EpisodeFeatures::from_history(&[f32::NAN]).is_err());
    }

    #[test]
    fn decisions_follow_the_threshold() {
        let r = Router::from_net(random_net(8, 1));
        let o = [1.0, 1.0, 0.5, 0.2, 0.0];
        let d = r.decide(&o);
        assert!((d.p_regenerate - crate::mlp::softmax2(d.logits)[1]).abs() < 1e-7);
        let low = r.clone().with_threshold(0.0).unwrap().decide(&o);
        let high = r.clone().with_threshold(1.0).unwrap().decide(&o);
        assert!(low.regenerate && !high.regenerate);
        assert!(r.with_threshold(1.5).is_err());
    }
}
