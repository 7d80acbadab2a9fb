//! Deciding with a TRIM-Seq network: stateless, from a whole step history
//! ([`SeqRouter::decide_step`]), or incrementally through a [`crate::session::Session`].

use crate::mlp::p_second;
use crate::router::{Decision, StepObservation, check_prm};
use crate::seq::{SEQ_LEN, SEQ_OBS_DIM, SeqNet, TOKEN_DIM, candidate_token, kept_token};

/// A TRIM-Seq network with its decision threshold on p(regenerate).
#[derive(Clone, Debug)]
pub struct SeqRouter {
    net: SeqNet,
    threshold: f32,
}

impl SeqRouter {
    /// A router over in-memory weights, deciding greedily (threshold 0.5).
    pub fn from_net(net: SeqNet) -> Self {
        SeqRouter {
            net,
            threshold: crate::manifest::DEFAULT_THRESHOLD,
        }
    }

    /// Load and verify a TRIM-Seq export directory (see [`crate::seq_export`]).
    pub fn load_export(
        dir: &std::path::Path,
    ) -> Result<(Self, crate::seq_export::SeqManifest), crate::RouterError> {
        crate::seq_export::load_seq_dir(dir)
    }

    /// The threshold on p(regenerate) in use.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Use another threshold on p(regenerate).
    pub fn with_threshold(mut self, threshold: f32) -> Result<Self, String> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(format!("threshold {threshold} is not in [0, 1]"));
        }
        self.threshold = threshold;
        Ok(self)
    }

    /// The network.
    pub fn net(&self) -> &SeqNet {
        &self.net
    }

    /// The decision for raw logits.
    pub(crate) fn decision(&self, logits: [f32; 2]) -> Decision {
        let p = p_second(logits);
        Decision {
            regenerate: p > self.threshold,
            p_regenerate: p,
            logits,
        }
    }

    /// Decide from the whole history: every kept step's PRM score, token count and whether it
    /// was regenerated (`prev_prm`, `prev_tokens`, `prev_regenerated`, equal lengths), and the
    /// current weak candidate.
    pub fn decide_step(&self, step: &StepObservation) -> Result<Decision, String> {
        if let Some(l) = step.lambda {
            return Err(crate::router::no_lambda_input(l, None));
        }
        step.budget_state(false)?;
        let mut row = [0.0f32; SEQ_OBS_DIM];
        step_row(step, &mut row)?;
        let (logits, _) = self.net.forward(&row);
        Ok(self.decision(logits))
    }
}

/// The flat observation row (`trim_router::seq::write_row`'s layout) of a serving step: the
/// last `SEQ_LEN − 1` kept steps and the candidate, checked.
pub fn step_row(step: &StepObservation, out: &mut [f32]) -> Result<(), String> {
    let t = step.prev_prm.len();
    if step.prev_tokens.len() != t || step.prev_regenerated.len() != t {
        return Err(format!(
            "TRIM-Seq needs prev_tokens and prev_regenerated for every kept step: {t} prev_prm, \
             {} prev_tokens, {} prev_regenerated",
            step.prev_tokens.len(),
            step.prev_regenerated.len()
        ));
    }
    if out.len() != SEQ_OBS_DIM {
        return Err(format!(
            "a row holds {SEQ_OBS_DIM} values, not {}",
            out.len()
        ));
    }
    check_prm(step.prm)?;
    out.fill(0.0);
    let first = t.saturating_sub(SEQ_LEN - 1);
    for (k, i) in (first..t).enumerate() {
        check_prm(step.prev_prm[i])?;
        let (p, n, r) = (
            step.prev_prm[i],
            step.prev_tokens[i],
            step.prev_regenerated[i],
        );
        out[k * TOKEN_DIM..(k + 1) * TOKEN_DIM].copy_from_slice(&kept_token(p, n, r, i));
    }
    let n = t - first;
    let cand = candidate_token(step.prm, step.tokens, t);
    out[n * TOKEN_DIM..(n + 1) * TOKEN_DIM].copy_from_slice(&cand);
    out[SEQ_OBS_DIM - 1] = (n + 1) as f32;
    Ok(())
}
