//! The synthetic model of the optional step signals: a judge's score (SpecReason-style) and the
//! weak model's mean token log-probability, drawn for every weak candidate when enabled.
//!
//! No public data pairs these signals with step labels for our model pair, so the parameters
//! are documented choices, not fits (data/docs/synth.md, "Step signals"):
//!
//! * **Judge** (the strong model rating the weak step 0–9, as SpecReason does): a digit
//!   `clamp(round(N(mean_state, sd)), 0, 9)`, stored as digit / 9. The judge is a second
//!   observer of the latent state, independent of the PRM given the state.
//! * **Confidence** (mean log-probability): `−exp(N(ln median + difficulty·z + error·[step
//!   is not S0], sd))`. Mostly a property of the problem (harder problems are written with less
//!   confidence), weakly of the step: the literature's finding that token confidence is a
//!   weaker step-error signal than a PRM.
//!
//! Each signal has its own RNG stream in the node's key, so enabling one never changes the
//! other, the candidates, or any existing world.

use serde::{Deserialize, Serialize};
use trim_env::{Rng, Signals};

use super::latent::{Difficulty, LatentModel};
use super::node::NodeAt;
use crate::schema::StepState;

/// Stream ids inside a node's key (0 and 1 are the weak and strong candidates).
const JUDGE_STREAM: u64 = 2;
const LOGPROB_STREAM: u64 = 3;

/// The `[latent.signals]` table: which signals a synthetic world carries, and their model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalConfig {
    /// Draw a judge score for every weak candidate.
    pub judge: bool,
    /// Mean judge digit (0–9) for a correct step (S0), a step after an uncorrected error (S1)
    /// and a first error (S2).
    pub judge_mean_s0: f64,
    pub judge_mean_s1: f64,
    pub judge_mean_s2: f64,
    /// Spread of the judge digit before rounding.
    pub judge_sd: f64,
    /// Draw a mean token log-probability for every weak candidate.
    pub logprob: bool,
    /// Median of −mean_logprob for a correct step of an average problem.
    pub logprob_median: f64,
    /// Log-scale shift of −mean_logprob per unit of latent difficulty z.
    pub logprob_difficulty: f64,
    /// Log-scale shift of −mean_logprob for a step that is not S0.
    pub logprob_error: f64,
    /// Log-scale spread.
    pub logprob_sd: f64,
}

impl Default for SignalConfig {
    fn default() -> Self {
        SignalConfig {
            judge: false,
            judge_mean_s0: 7.0,
            judge_mean_s1: 4.5,
            judge_mean_s2: 3.0,
            judge_sd: 2.0,
            logprob: false,
            logprob_median: 0.2,
            logprob_difficulty: 0.25,
            logprob_error: 0.4,
            logprob_sd: 0.5,
        }
    }
}

impl SignalConfig {
    /// Neither signal is drawn (the table is then left out of recorded configs, so worlds
    /// without signals keep their fingerprints).
    pub fn is_off(&self) -> bool {
        !self.judge && !self.logprob
    }

    /// Which signals the world carries.
    pub fn kinds(&self) -> trim_env::SignalKinds {
        trim_env::SignalKinds {
            judge_score: self.judge,
            mean_logprob: self.logprob,
        }
    }

    /// Range checks: `(field, reason)` of the first bad value.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for (name, v) in [
            ("judge_mean_s0", self.judge_mean_s0),
            ("judge_mean_s1", self.judge_mean_s1),
            ("judge_mean_s2", self.judge_mean_s2),
        ] {
            if !(0.0..=9.0).contains(&v) {
                return Err((name, format!("{v} outside [0, 9]")));
            }
        }
        for (name, v, lo, hi) in [
            ("judge_sd", self.judge_sd, 0.0, 9.0),
            ("logprob_median", self.logprob_median, 1e-4, 20.0),
            ("logprob_difficulty", self.logprob_difficulty, -3.0, 3.0),
            ("logprob_error", self.logprob_error, -3.0, 3.0),
            ("logprob_sd", self.logprob_sd, 0.0, 3.0),
        ] {
            if !(lo..=hi).contains(&v) {
                return Err((name, format!("{v} outside [{lo}, {hi}]")));
            }
        }
        Ok(())
    }
}

impl LatentModel {
    /// The signals of the weak candidate at `at` (latent state `st`), NaN where disabled. A
    /// pure function of the node's key, so lazy and materialised worlds agree.
    pub fn weak_signals(&self, d: &Difficulty, at: &NodeAt, st: StepState) -> Signals {
        let c = &self.cfg.signals;
        let mut out = Signals::NONE;
        if c.judge {
            let mut rng = Rng::stream(at.key, JUDGE_STREAM);
            let mean = match st {
                StepState::S0 => c.judge_mean_s0,
                StepState::S1 => c.judge_mean_s1,
                StepState::S2 => c.judge_mean_s2,
            };
            let digit = (mean + c.judge_sd * rng.normal()).round().clamp(0.0, 9.0);
            out.judge_score = (digit / 9.0) as f32;
        }
        if c.logprob {
            let mut rng = Rng::stream(at.key, LOGPROB_STREAM);
            let err = if st == StepState::S0 {
                0.0
            } else {
                c.logprob_error
            };
            let log_nll = c.logprob_median.ln() + c.logprob_difficulty * d.z + err;
            let x = -(log_nll + c.logprob_sd * rng.normal()).exp();
            // Stored as f32; keep it finite and ≤ 0 whatever the draw.
            out.mean_logprob = (x.max(-1e4) as f32).min(0.0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::synth::params::LatentConfig;

    fn model(judge: bool, logprob: bool) -> LatentModel {
        let mut cfg = LatentConfig::default();
        cfg.signals.judge = judge;
        cfg.signals.logprob = logprob;
        LatentModel::vendored(cfg, Path::new("<t>")).unwrap()
    }

    #[test]
    fn bad_signal_parameters_are_refused_by_name() {
        for (spec, field) in [
            ("latent.signals.judge_sd=-1", "signals.judge_sd"),
            ("latent.signals.judge_mean_s2=12", "signals.judge_mean_s2"),
            ("latent.signals.logprob_median=0", "signals.logprob_median"),
            ("latent.signals.logprob_sd=nan", "signals.logprob_sd"),
        ] {
            let e = crate::SynthSpec::parse(&format!("synth:math500?{spec}"))
                .err()
                .unwrap_or_else(|| panic!("{spec} accepted"))
                .to_string();
            assert!(e.contains(field), "{spec}: {e}");
        }
        let e = crate::SynthSpec::parse("synth:math500?latent.signals.colour=1")
            .expect_err("unknown key")
            .to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn signals_separate_the_states_and_each_has_its_own_stream() {
        let both = model(true, true);
        let judge_only = model(true, false);
        let d = both.difficulty(0.0);
        let mean = |m: &LatentModel, st: StepState, f: fn(Signals) -> f32| {
            (0..4000u64)
                .map(|k| f64::from(f(m.weak_signals(&d, &NodeAt::root(k), st))))
                .sum::<f64>()
                / 4000.0
        };
        let judge = |s: Signals| s.judge_score;
        let lp = |s: Signals| s.mean_logprob;
        assert!(mean(&both, StepState::S0, judge) > mean(&both, StepState::S2, judge) + 0.3);
        assert!(mean(&both, StepState::S0, lp) > mean(&both, StepState::S2, lp));
        for k in 0..200u64 {
            let at = NodeAt::root(k);
            let (a, b) = (
                both.weak_signals(&d, &at, StepState::S0),
                judge_only.weak_signals(&d, &at, StepState::S0),
            );
            assert_eq!(a.judge_score, b.judge_score);
            assert!(b.mean_logprob.is_nan());
            assert!((0.0..=1.0).contains(&a.judge_score));
            assert!(a.mean_logprob.is_finite() && a.mean_logprob <= 0.0);
            // Digits: multiples of 1/9.
            let digit = a.judge_score * 9.0;
            assert!((digit - digit.round()).abs() < 1e-5);
        }
        // Harder problems are written with less confidence.
        let hard = both.difficulty(1.5);
        let at = |k| NodeAt::root(k);
        let m_hard: f64 = (0..2000u64)
            .map(|k| f64::from(both.weak_signals(&hard, &at(k), StepState::S0).mean_logprob))
            .sum();
        let m_easy: f64 = (0..2000u64)
            .map(|k| f64::from(both.weak_signals(&d, &at(k), StepState::S0).mean_logprob))
            .sum();
        assert!(m_hard < m_easy);
        assert!(model(false, false).cfg.signals.is_off());
        // Signals change no candidate: the same node without them is the same draw.
        let plain = model(false, false);
        for k in 0..50u64 {
            let at = NodeAt::root(k);
            let mut a = both.weak_at(&d, &at, None);
            assert!(a.rec.judge_score.is_some() && a.rec.mean_logprob.is_some());
            (a.rec.judge_score, a.rec.mean_logprob) = (None, None);
            assert_eq!(a, plain.weak_at(&d, &at, None));
        }
    }
}
