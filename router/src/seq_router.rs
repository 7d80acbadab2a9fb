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
    /// `[lo, hi]` of a λ-conditioned network (any λ in (0, 1] until an export names its range).
    lambda_range: Option<[f64; 2]>,
    /// The λ `trim calibrate` chose for a conditioned network (used when a decision names none).
    default_lambda: Option<f64>,
    /// The λ the policy was trained for (for the refusal of a λ it has no input for).
    trained_lambda: Option<f64>,
}

impl SeqRouter {
    /// A router over in-memory weights, deciding greedily (threshold 0.5).
    pub fn from_net(net: SeqNet) -> Self {
        let lambda_range = net.shape().lambda_input.then_some([f64::MIN_POSITIVE, 1.0]);
        SeqRouter {
            net,
            threshold: crate::manifest::DEFAULT_THRESHOLD,
            lambda_range,
            default_lambda: None,
            trained_lambda: None,
        }
    }

    /// `[lo, hi]` of a λ-conditioned policy; None when it has no λ input.
    pub fn lambda_range(&self) -> Option<[f64; 2]> {
        self.lambda_range
    }

    /// The λ `trim calibrate` chose for a conditioned policy.
    pub fn default_lambda(&self) -> Option<f64> {
        self.default_lambda
    }

    /// Set what an export's manifest says about λ: the conditioned range, the calibrated λ and
    /// the λ it was trained for.
    pub(crate) fn with_lambdas(
        mut self,
        range: Option<[f64; 2]>,
        default: Option<f64>,
        trained: f64,
    ) -> Result<Self, String> {
        if range.is_some() != self.lambda_range.is_some() {
            return Err("lambda_range does not match the network's λ input".into());
        }
        (self.lambda_range, self.default_lambda) = (range, default.filter(|_| range.is_some()));
        self.trained_lambda = Some(trained);
        Ok(self)
    }

    /// The heads' extra inputs for a decision at `lambda` (empty without a λ input), with the
    /// same refusals as TRIM-Agg.
    pub(crate) fn lambda_extra(&self, lambda: Option<f64>) -> Result<Vec<f32>, String> {
        let lam = lambda.or(self.default_lambda);
        Ok(
            crate::router::lambda_input(self.lambda_range, lam, self.trained_lambda)?
                .into_iter()
                .collect(),
        )
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
        let extra = self.lambda_extra(step.lambda)?;
        step.budget_state(false)?;
        let mut row = [0.0f32; SEQ_OBS_DIM];
        step_row(step, &mut row)?;
        let (tokens, n) = crate::seq::row_tokens(&row);
        let (logits, _) = self.net.forward_tokens_with(tokens, n, &extra);
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
