//! Parameters of the latent model (the `[latent]` table of a synth config) and their checks.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::signals::SignalConfig;
use crate::error::{DataError, Loc, Result};

/// Largest regeneration cap K accepted: a tree has roughly depth^K nodes, so K = 6 already
/// means tens of thousands of nodes per tree.
pub const MAX_REGENS_LIMIT: u32 = 6;

/// Parameters of the latent model (the `[latent]` table of a synth config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LatentConfig {
    /// Step cap: step `max_steps` always ends the solution (TRIM: 30).
    pub max_steps: u16,
    /// Always-weak solution accuracy the weak per-step accuracy is solved for
    /// (Qwen2.5-1.5B-Instruct on MATH-train: 2819/7500).
    pub target_weak_accuracy: f64,
    /// Always-strong solution accuracy the strong per-step accuracy is solved for
    /// (Qwen2.5-7B-Instruct on MATH-train: 5785/7500).
    pub target_strong_accuracy: f64,
    /// σ: how strongly problem difficulty `z ~ N(0,1)` shifts both models' per-step logits.
    pub difficulty_sd: f64,
    /// P(final answer correct | every chosen step correct, natural end).
    pub q_ok: f64,
    /// P(final answer correct | some chosen step wrong, natural end).
    pub q_err: f64,
    /// P(final answer correct | cut by the step cap).
    pub q_capped: f64,
    /// PRM scores are stored rounded to multiples of 1/`prm_grid` (0 = full f32 precision).
    pub prm_grid: u32,
    /// Confident PRM flags on natural first errors (S2): with this probability a step's score is
    /// uniform in `[0, flag_max]` instead of a draw from the ProcessBench-fitted observation
    /// table, whose errors were curated to be hard to spot. 0 = the table alone. Fitted for the
    /// MATH-500 profile on the real TRIM-Thr curve (`trim data calibrate --check`).
    #[serde(skip_serializing_if = "is_zero")]
    pub flag_s2: f64,
    /// The same for steps written after an uncorrected error (S1).
    #[serde(skip_serializing_if = "is_zero")]
    pub flag_s1: f64,
    /// The same for correct steps (S0): false alarms.
    #[serde(skip_serializing_if = "is_zero")]
    pub flag_s0: f64,
    /// Upper end of a confident flag's score.
    #[serde(skip_serializing_if = "is_default_flag_max")]
    pub flag_max: f64,
    /// Length of a strong step written after a prefix that holds weak steps (a routed
    /// regeneration), relative to a strong step on the all-strong path. In the release's
    /// MATH-500 run a routed strong call cost ≈ 75 tokens against 61.7 per strong-only step.
    /// 1 = the same lengths (no change to any draw).
    #[serde(skip_serializing_if = "is_one")]
    pub regen_tokens_factor: f64,
    /// PRM misses of natural first errors: with this probability an S2 step that got no
    /// confident flag is scored from the observation table's *correct-step* (S0) row, as a
    /// real PRM scores an error it does not see. 0 = none (no draw).
    #[serde(skip_serializing_if = "is_zero")]
    pub miss_s2: f64,
    /// Confident passes of correct steps (S0): with this probability a step that got no flag
    /// is scored uniformly in `[0.95, 1]` instead of from the table. The real PRM scores most
    /// correct steps of the release's MATH-500 run above 0.95 (only 3.3 of ~8 weak steps per
    /// problem fall below 0.95), far more than ProcessBench's curated set says. 0 = none.
    #[serde(skip_serializing_if = "is_zero")]
    pub sure_s0: f64,
    /// The same for steps after an uncorrected error (S1): locally sound steps of a derailed
    /// solution that the PRM passes.
    #[serde(skip_serializing_if = "is_zero")]
    pub sure_s1: f64,
    /// Lower end of a confident pass's score (passes are uniform in `[sure_min, 1]`).
    #[serde(skip_serializing_if = "is_default_sure_min")]
    pub sure_min: f64,
    /// PRM noise on correct steps (S0): with this probability a step that got neither a flag
    /// nor a confident pass is scored uniformly in `[0, 1]` — scores the ProcessBench-fitted
    /// table does not explain (the real curve's strong calls grow almost linearly in the
    /// threshold between 0.05 and 0.9). 0 = none.
    #[serde(skip_serializing_if = "is_zero")]
    pub noise_s0: f64,
    /// The same for steps after an uncorrected error (S1).
    #[serde(skip_serializing_if = "is_zero")]
    pub noise_s1: f64,
    /// The same for natural first errors (S2): errors the PRM half-sees, scored uniformly in
    /// `[0, noise_s2_max]`.
    #[serde(skip_serializing_if = "is_zero")]
    pub noise_s2: f64,
    /// Upper end of an S2 noise score (1 = anywhere).
    #[serde(skip_serializing_if = "is_one")]
    pub noise_s2_max: f64,
    /// Logit penalty on the strong model's per-step accuracy when it writes a step after weak
    /// ones (a routed regeneration): continuing someone else's partial solution is harder than
    /// writing one's own. The all-strong path is unaffected, so the strong-only calibration
    /// holds. 0 = none.
    #[serde(skip_serializing_if = "is_zero")]
    pub routed_strong_shift: f64,
    /// Multiplier on the strong model's per-step termination hazard (1 = the vendored MATH-train
    /// predictor): the release's MATH-500 strong-only solutions are 8.02 steps long, MATH-train's
    /// 8.7. The accuracy calibration uses the scaled hazard.
    #[serde(skip_serializing_if = "is_one")]
    pub strong_hazard_scale: f64,
    /// Optional step signals (judge score, mean log-probability) drawn for weak candidates;
    /// left out of recorded configs when off.
    #[serde(skip_serializing_if = "SignalConfig::is_off")]
    pub signals: SignalConfig,
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

/// The default `flag_max`, left out of recorded parameters like zero flag rates.
const DEFAULT_FLAG_MAX: f64 = 0.05;

fn is_default_flag_max(x: &f64) -> bool {
    *x == DEFAULT_FLAG_MAX
}

/// The default `sure_min`, left out of recorded parameters.
const DEFAULT_SURE_MIN: f64 = 0.95;

fn is_default_sure_min(x: &f64) -> bool {
    *x == DEFAULT_SURE_MIN
}

/// Zero-valued flag rates are left out of recorded parameters, so a dataset generated without
/// flags records exactly the parameters it did before flags existed.
fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Default for LatentConfig {
    /// The neutral model: MATH-train targets, σ = 1, and the ProcessBench-fitted observation
    /// table alone (every PRM knob off). The shipped profiles set σ and the knobs.
    fn default() -> Self {
        LatentConfig {
            max_steps: 30,
            target_weak_accuracy: 2819.0 / 7500.0,
            target_strong_accuracy: 5785.0 / 7500.0,
            difficulty_sd: 1.0,
            q_ok: 1.0,
            q_err: 0.05,
            q_capped: 0.0,
            prm_grid: 1024,
            flag_s2: 0.0,
            flag_s1: 0.0,
            flag_s0: 0.0,
            flag_max: DEFAULT_FLAG_MAX,
            regen_tokens_factor: 1.0,
            miss_s2: 0.0,
            sure_s0: 0.0,
            sure_s1: 0.0,
            sure_min: DEFAULT_SURE_MIN,
            noise_s0: 0.0,
            noise_s1: 0.0,
            noise_s2: 0.0,
            noise_s2_max: 1.0,
            routed_strong_shift: 0.0,
            strong_hazard_scale: 1.0,
            signals: SignalConfig::default(),
        }
    }
}

impl LatentConfig {
    /// This config with the PRM-behaviour and routed-step knobs (flags, passes, misses, noise,
    /// `routed_strong_shift`, `regen_tokens_factor`) of `other`: what two profiles of the same
    /// model pair and PRM share.
    pub fn with_prm_knobs_of(&self, other: &LatentConfig) -> LatentConfig {
        LatentConfig {
            flag_s2: other.flag_s2,
            flag_s1: other.flag_s1,
            flag_s0: other.flag_s0,
            flag_max: other.flag_max,
            miss_s2: other.miss_s2,
            sure_s0: other.sure_s0,
            sure_s1: other.sure_s1,
            sure_min: other.sure_min,
            noise_s0: other.noise_s0,
            noise_s1: other.noise_s1,
            noise_s2: other.noise_s2,
            noise_s2_max: other.noise_s2_max,
            routed_strong_shift: other.routed_strong_shift,
            regen_tokens_factor: other.regen_tokens_factor,
            signals: other.signals.clone(),
            ..self.clone()
        }
    }

    /// Range checks; `path` and `table` name where the values came from.
    pub fn check(&self, path: &Path, table: &str) -> Result<()> {
        let bad = |field: &str, reason: String| {
            Err(DataError::new(
                path,
                Loc::File,
                Some(&format!("{table}{field}")),
                reason,
            ))
        };
        if !(2..=1000).contains(&self.max_steps) {
            return bad("max_steps", format!("{} outside 2..=1000", self.max_steps));
        }
        for (name, v) in [
            ("target_weak_accuracy", self.target_weak_accuracy),
            ("target_strong_accuracy", self.target_strong_accuracy),
            ("q_ok", self.q_ok),
            ("q_err", self.q_err),
            ("q_capped", self.q_capped),
            ("flag_s2", self.flag_s2),
            ("flag_s1", self.flag_s1),
            ("flag_s0", self.flag_s0),
            ("flag_max", self.flag_max),
            ("miss_s2", self.miss_s2),
            ("sure_s0", self.sure_s0),
            ("sure_s1", self.sure_s1),
            ("sure_min", self.sure_min),
            ("noise_s0", self.noise_s0),
            ("noise_s1", self.noise_s1),
            ("noise_s2", self.noise_s2),
            ("noise_s2_max", self.noise_s2_max),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(name, format!("{v} outside [0, 1]"));
            }
        }
        if !(0.0..=5.0).contains(&self.difficulty_sd) {
            return bad(
                "difficulty_sd",
                format!("{} outside [0, 5]", self.difficulty_sd),
            );
        }
        if !(-5.0..=5.0).contains(&self.routed_strong_shift) {
            return bad(
                "routed_strong_shift",
                format!("{} outside [-5, 5]", self.routed_strong_shift),
            );
        }
        if !(0.25..=4.0).contains(&self.strong_hazard_scale) {
            return bad(
                "strong_hazard_scale",
                format!("{} outside [0.25, 4]", self.strong_hazard_scale),
            );
        }
        if !(0.25..=4.0).contains(&self.regen_tokens_factor) {
            return bad(
                "regen_tokens_factor",
                format!("{} outside [0.25, 4]", self.regen_tokens_factor),
            );
        }
        if let Err((field, reason)) = self.signals.check() {
            return bad(&format!("signals.{field}"), reason);
        }
        if self.q_err >= self.q_ok {
            return bad(
                "q_err",
                format!(
                    "q_err {} must be below q_ok {} (errors must hurt)",
                    self.q_err, self.q_ok
                ),
            );
        }
        Ok(())
    }
}
