//! Optional per-candidate signals besides the PRM score: a judge model's score of the step
//! (SpecReason-style) and the mean token log-probability of the step under the model that
//! wrote it. Datasets carry them in optional columns (`judge_score`, `mean_logprob`); the
//! step-level peer rules of the report ([`crate::RefPolicy::Judge`],
//! [`crate::RefPolicy::Confidence`]) read them.
//!
//! Why a separate, optional record and not two more fields of [`crate::Candidate`]: the
//! replay hot loop streams candidates (8 bytes each), and most datasets have no such signals.

/// The signals of one weak candidate; NaN marks a signal the world does not carry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Signals {
    /// Judge score in `[0, 1]` (a 0–9 judge's digit divided by 9).
    pub judge_score: f32,
    /// Mean token log-probability (≤ 0).
    pub mean_logprob: f32,
}

impl Signals {
    /// No signal.
    pub const NONE: Signals = Signals {
        judge_score: f32::NAN,
        mean_logprob: f32::NAN,
    };
}

impl Default for Signals {
    fn default() -> Self {
        Self::NONE
    }
}

/// Which signals a world carries on every weak candidate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalKinds {
    pub judge_score: bool,
    pub mean_logprob: bool,
}

impl SignalKinds {
    /// Every `needed` signal is carried.
    pub fn covers(self, needed: SignalKinds) -> bool {
        (self.judge_score || !needed.judge_score) && (self.mean_logprob || !needed.mean_logprob)
    }

    /// Names of the `needed` signals this world lacks (for error messages).
    pub fn missing(self, needed: SignalKinds) -> Vec<&'static str> {
        let mut out = vec![];
        if needed.judge_score && !self.judge_score {
            out.push("judge_score");
        }
        if needed.mean_logprob && !self.mean_logprob {
            out.push("mean_logprob");
        }
        out
    }
}

/// Weak-candidate signal columns of a stored forest, in forest node order (`None`: the
/// dataset has no such column).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SignalColumns {
    pub judge_score: Option<Vec<f32>>,
    pub mean_logprob: Option<Vec<f32>>,
}

impl SignalColumns {
    /// Which signals are present.
    pub fn kinds(&self) -> SignalKinds {
        SignalKinds {
            judge_score: self.judge_score.is_some(),
            mean_logprob: self.mean_logprob.is_some(),
        }
    }

    /// The signals of node `n`.
    #[inline]
    pub fn at(&self, n: usize) -> Signals {
        let get = |c: &Option<Vec<f32>>| c.as_ref().map_or(f32::NAN, |v| v[n]);
        Signals {
            judge_score: get(&self.judge_score),
            mean_logprob: get(&self.mean_logprob),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_cover_and_name_what_is_missing() {
        let judge = SignalKinds {
            judge_score: true,
            mean_logprob: false,
        };
        let both = SignalKinds {
            judge_score: true,
            mean_logprob: true,
        };
        assert!(both.covers(judge) && judge.covers(judge) && !judge.covers(both));
        assert!(SignalKinds::default().covers(SignalKinds::default()));
        assert_eq!(judge.missing(both), vec!["mean_logprob"]);
        let cols = SignalColumns {
            judge_score: Some(vec![0.5, 1.0]),
            mean_logprob: None,
        };
        assert_eq!(cols.kinds(), judge);
        assert_eq!(cols.at(1).judge_score, 1.0);
        assert!(cols.at(1).mean_logprob.is_nan());
    }
}
