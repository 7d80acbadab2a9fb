//! Latent step-correctness model (S0/S1/S2) shared by the generator and the importers.
//!
//! The model is TRIM-POMDP's hidden chain made generative (trim-paper.md §2.4, §6.3 D):
//!
//! * **Difficulty.** Each problem draws `z ~ N(0, 1)`; a model's per-step accuracy on it is
//!   `p = logistic(α_model − σ·z)` with one `z` shared by the weak and the strong model, so their
//!   successes are correlated across problems (hard problems are hard for both).
//! * **Correctness.** From a prefix whose chosen steps are all correct, a step is correct (S0) with
//!   the writer's `p`, else it is the first error (S2); from a derailed prefix every step is S1
//!   (an uncorrected error is permanent, as in TRIM-POMDP).
//! * **Length.** Step `k` (1-based) ends the solution with the writer's hazard `h(k)` (weak hazard
//!   for weak steps, strong hazard for strong ones); step `max_steps` is always the last (the cap).
//! * **Outcome.** A solution ending naturally is correct with `q_ok` if every chosen step is S0,
//!   else with `q_err`; one cut by the cap is correct with `q_capped`.
//! * **Observations.** Each candidate's PRM score is drawn from the official TRIM observation
//!   model given its state and the running minimum of the chosen path's scores ([`ObsModel`]).
//! * **Tokens.** Drawn from real per-generator step lengths (ProcessBench steps tokenised with
//!   cl100k, `data/calibration/step_tokens.json`), final steps from final steps.
//!
//! [`calibrate`] solves `α_weak`, `α_strong` so that always-weak and always-strong expected
//! accuracies equal the configured targets; this module draws candidates from the calibrated
//! model, and [`LatentModel::expand_tree`] (in `expand.rs`) writes one sample tree (at most `K`
//! regenerations per path, plus the full all-strong path), optionally with a real all-weak path
//! (the ProcessBench importer).

use std::path::Path;

use trim_env::Rng;

use crate::error::Result;
use crate::schema::{CandidateRec, StepState};

use super::calibrate::{Calibration, Grid, calibrate, logistic};
use super::hazard::Hazard;
use super::obs_model::ObsModel;
use super::params::LatentConfig;
use super::step_tokens::StepTokensFile;

/// Which model writes a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Weak,
    Strong,
}

/// One problem's per-step accuracies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Difficulty {
    /// The latent difficulty (0 = average, positive = harder).
    pub z: f64,
    pub p_weak: f64,
    pub p_strong: f64,
    /// The strong model's per-step accuracy after weak steps (`routed_strong_shift`).
    pub p_strong_routed: f64,
}

/// What the model needs to know about the chosen path so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prefix {
    /// Every chosen step so far is S0.
    pub ok: bool,
    /// Minimum PRM score of the chosen steps (1.0 at the first step).
    pub running_min: f32,
}

impl Prefix {
    /// The empty prefix.
    pub fn root() -> Self {
        Prefix {
            ok: true,
            running_min: 1.0,
        }
    }

    /// The prefix after keeping candidate `c`.
    pub fn then(&self, c: &CandidateRec) -> Self {
        self.after(c.state, c.prm)
    }

    /// The prefix after keeping a step in `state` with PRM score `prm`.
    #[inline]
    pub fn after(&self, state: Option<StepState>, prm: f32) -> Self {
        Prefix {
            ok: self.ok && state == Some(StepState::S0),
            running_min: self.running_min.min(prm),
        }
    }
}

/// A drawn candidate and, when it finishes the solution, the final-answer correctness.
#[derive(Clone, Debug, PartialEq)]
pub struct Draw {
    pub rec: CandidateRec,
    pub correct: Option<bool>,
}

/// A real step of a logged solution (the importer's all-weak path).
#[derive(Clone, Debug, PartialEq)]
pub struct RealStep {
    pub tokens: u32,
    /// From human labels.
    pub state: StepState,
    /// The last step of the solution.
    pub finished: bool,
    /// Final-answer correctness, for the last step.
    pub correct: Option<bool>,
    pub text: Option<String>,
    pub hash: Option<String>,
}

/// The calibrated latent model with its inputs.
#[derive(Clone, Debug)]
pub struct LatentModel {
    pub cfg: LatentConfig,
    pub calibration: Calibration,
    pub weak_hazard: Hazard,
    pub strong_hazard: Hazard,
    pub tokens: StepTokensFile,
    pub obs: ObsModel,
    grid: Grid,
}

impl LatentModel {
    /// Calibrate `cfg` on the given inputs (`path` names the config for errors).
    pub fn new(
        cfg: LatentConfig,
        weak_hazard: Hazard,
        strong_hazard: Hazard,
        tokens: StepTokensFile,
        obs: ObsModel,
        path: &Path,
    ) -> Result<Self> {
        let strong_hazard = match cfg.strong_hazard_scale {
            1.0 => strong_hazard,
            f => strong_hazard.scaled(f),
        };
        let calibration = calibrate(&cfg, &weak_hazard, &strong_hazard, path)?;
        Ok(LatentModel {
            cfg,
            calibration,
            weak_hazard,
            strong_hazard,
            tokens,
            obs,
            grid: Grid::new(),
        })
    }

    /// The model on the vendored inputs (MATH-train hazards, step tokens, observation model).
    pub fn vendored(cfg: LatentConfig, path: &Path) -> Result<Self> {
        Self::new(
            cfg,
            Hazard::weak_math_train(),
            Hazard::strong_math_train(),
            StepTokensFile::vendored(),
            ObsModel::math_train(),
            path,
        )
    }

    /// Per-step accuracies of a problem of difficulty `z`.
    pub fn difficulty(&self, z: f64) -> Difficulty {
        let s = self.cfg.difficulty_sd;
        let strong = self.calibration.strong.logit - s * z;
        Difficulty {
            z,
            p_weak: logistic(self.calibration.weak.logit - s * z),
            p_strong: logistic(strong),
            p_strong_routed: logistic(strong - self.cfg.routed_strong_shift),
        }
    }

    /// A fresh problem: `z ~ N(0, 1)`.
    pub fn sample_difficulty(&self, rng: &mut Rng) -> Difficulty {
        self.difficulty(rng.normal())
    }

    /// A problem whose weak model was observed to write `correct_steps` correct steps and
    /// `errors` first errors (over all its logged solutions): `z` from the posterior on a grid.
    pub fn posterior_difficulty(
        &self,
        correct_steps: u32,
        errors: u32,
        rng: &mut Rng,
    ) -> Difficulty {
        let s = self.cfg.difficulty_sd;
        let a = self.calibration.weak.logit;
        let logw: Vec<f64> = self
            .grid
            .z
            .iter()
            .zip(&self.grid.w)
            .map(|(&z, &w)| {
                let p = logistic(a - s * z).clamp(1e-300, 1.0 - 1e-16);
                w.ln() + f64::from(correct_steps) * p.ln() + f64::from(errors) * (1.0 - p).ln()
            })
            .collect();
        let m = logw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = logw.iter().map(|l| (l - m).exp()).collect();
        let total: f64 = w.iter().sum();
        let u = rng.f64() * total;
        let mut acc = 0.0;
        let mut pick = w.len() - 1;
        for (i, x) in w.iter().enumerate() {
            acc += x;
            if acc >= u {
                pick = i;
                break;
            }
        }
        self.difficulty(self.grid.z[pick])
    }

    /// A PRM score for a step in `st` after `prefix`, rounded to the configured grid.
    pub fn prm(&self, st: StepState, prefix: &Prefix, rng: &mut Rng) -> f32 {
        let c = &self.cfg;
        let flag = match st {
            StepState::S0 => c.flag_s0,
            StepState::S1 => c.flag_s1,
            StepState::S2 => c.flag_s2,
        };
        let (sure, miss, noise) = match st {
            StepState::S0 => (c.sure_s0, 0.0, c.noise_s0),
            StepState::S1 => (c.sure_s1, 0.0, c.noise_s1),
            StepState::S2 => (0.0, c.miss_s2, c.noise_s2),
        };
        // Every rate that is 0 draws nothing, so worlds without it keep their exact streams.
        let x = if flag > 0.0 && rng.bernoulli(flag) {
            (rng.f64() * c.flag_max) as f32
        } else if sure > 0.0 && rng.bernoulli(sure) {
            (c.sure_min + rng.f64() * (1.0 - c.sure_min)) as f32
        } else if miss > 0.0 && rng.bernoulli(miss) {
            self.obs.sample(StepState::S0, prefix.running_min, rng)
        } else if noise > 0.0 && rng.bernoulli(noise) {
            let top = if st == StepState::S2 {
                c.noise_s2_max
            } else {
                1.0
            };
            (rng.f64() * top) as f32
        } else {
            self.obs.sample(st, prefix.running_min, rng)
        };
        match self.cfg.prm_grid {
            0 => x,
            g => ((f64::from(x) * f64::from(g)).round() / f64::from(g)) as f32,
        }
    }

    /// Draw `role`'s candidate for step `depth` (0-based) after `prefix`.
    pub fn candidate(
        &self,
        role: Role,
        d: &Difficulty,
        prefix: &Prefix,
        depth: u16,
        rng: &mut Rng,
    ) -> Draw {
        let (p, hazard, lists) = match role {
            Role::Weak => (d.p_weak, &self.weak_hazard, &self.tokens.weak),
            Role::Strong => (d.p_strong, &self.strong_hazard, &self.tokens.strong),
        };
        let st = if !prefix.ok {
            StepState::S1
        } else if rng.bernoulli(p) {
            StepState::S0
        } else {
            StepState::S2
        };
        let k = u32::from(depth) + 1;
        let capped = k >= u32::from(self.cfg.max_steps);
        let finished = capped || rng.bernoulli(hazard.at(k));
        let correct = finished.then(|| {
            let q = if capped {
                self.cfg.q_capped
            } else if prefix.ok && st == StepState::S0 {
                self.cfg.q_ok
            } else {
                self.cfg.q_err
            };
            rng.bernoulli(q)
        });
        let tokens = lists.sample(finished, rng);
        let prm = self.prm(st, prefix, rng);
        Draw {
            rec: CandidateRec {
                tokens,
                prm,
                finished,
                state: Some(st),
                text: None,
                hash: None,
                judge_score: None,
                mean_logprob: None,
            },
            correct,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(cfg: LatentConfig) -> LatentModel {
        LatentModel::vendored(cfg, Path::new("<test>")).unwrap()
    }

    #[test]
    fn derailed_prefix_gives_s1_and_correct_prefix_gives_s0_or_s2() {
        let m = model(LatentConfig::default());
        let d = m.difficulty(0.0);
        let mut rng = Rng::new(3);
        let bad = Prefix {
            ok: false,
            running_min: 0.2,
        };
        let mut s2 = 0;
        for _ in 0..2000 {
            assert_eq!(
                m.candidate(Role::Weak, &d, &bad, 3, &mut rng).rec.state,
                Some(StepState::S1)
            );
            let c = m.candidate(Role::Strong, &d, &Prefix::root(), 3, &mut rng);
            assert_ne!(c.rec.state, Some(StepState::S1));
            s2 += usize::from(c.rec.state == Some(StepState::S2));
            // Capped step: always finished.
            assert!(
                m.candidate(Role::Weak, &d, &Prefix::root(), 29, &mut rng)
                    .rec
                    .finished
            );
        }
        let rate = s2 as f64 / 2000.0;
        assert!((rate - (1.0 - d.p_strong)).abs() < 0.02, "{rate} {d:?}");
    }

    #[test]
    fn posterior_difficulty_follows_the_evidence() {
        let m = model(LatentConfig::default());
        let mut rng = Rng::new(9);
        let mean = |cs, es, rng: &mut Rng| {
            (0..400)
                .map(|_| m.posterior_difficulty(cs, es, rng).z)
                .sum::<f64>()
                / 400.0
        };
        let easy = mean(12, 0, &mut rng);
        let hard = mean(0, 1, &mut rng);
        assert!(easy < 0.0 && hard > 0.0, "{easy} {hard}");
    }

    #[test]
    fn confident_flags_replace_table_scores_at_their_rate_and_cost_no_draws_when_off() {
        let flagged = model(LatentConfig {
            flag_s2: 1.0,
            flag_s1: 0.5,
            flag_max: 0.05,
            ..LatentConfig::default()
        });
        let mut rng = Rng::new(4);
        let root = Prefix::root();
        let bad = Prefix {
            ok: false,
            running_min: 0.9,
        };
        let low = |st, p: &Prefix, m: &LatentModel, rng: &mut Rng| {
            (0..4000).filter(|_| m.prm(st, p, rng) <= 0.05).count() as f64 / 4000.0
        };
        assert_eq!(low(StepState::S2, &root, &flagged, &mut rng), 1.0);
        let s1 = low(StepState::S1, &bad, &flagged, &mut rng);
        let plain = model(LatentConfig::default());
        let s1_table = low(StepState::S1, &bad, &plain, &mut rng);
        assert!(
            (s1 - (0.5 + 0.5 * s1_table)).abs() < 0.03,
            "{s1} {s1_table}"
        );
        // Rate 0: exactly the table's draws, from the same RNG stream.
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            let x = plain.prm(StepState::S0, &root, &mut a);
            let y = plain.obs.sample(StepState::S0, root.running_min, &mut b);
            assert_eq!(x, ((f64::from(y) * 1024.0).round() / 1024.0) as f32);
        }
    }

    /// Each PRM knob moves the scores where it says, and draws nothing at rate 0.
    #[test]
    fn passes_misses_and_noise_shape_the_scores_they_name() {
        let root = Prefix::root();
        let scores = |cfg: LatentConfig, st: StepState| {
            let m = model(cfg);
            let mut rng = Rng::new(5);
            (0..4000)
                .map(|_| m.prm(st, &root, &mut rng))
                .collect::<Vec<f32>>()
        };
        let mean = |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        let sure = scores(
            LatentConfig {
                sure_s0: 1.0,
                sure_min: 0.9,
                ..LatentConfig::default()
            },
            StepState::S0,
        );
        assert!(sure.iter().all(|&x| x >= 0.9));
        let noisy = scores(
            LatentConfig {
                noise_s2: 1.0,
                noise_s2_max: 0.3,
                ..LatentConfig::default()
            },
            StepState::S2,
        );
        assert!(noisy.iter().all(|&x| x <= 0.3) && (mean(&noisy) - 0.15).abs() < 0.01);
        let missed = scores(
            LatentConfig {
                miss_s2: 1.0,
                ..LatentConfig::default()
            },
            StepState::S2,
        );
        let s0 = scores(LatentConfig::default(), StepState::S0);
        let s2 = scores(LatentConfig::default(), StepState::S2);
        assert!((mean(&missed) - mean(&s0)).abs() < 0.02 && mean(&s2) < mean(&s0) - 0.3);
        // Rate 0 for every knob: exactly the table's stream (the knobs draw nothing).
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let plain = model(LatentConfig::default());
        for st in StepState::ALL {
            let x = plain.prm(st, &root, &mut a);
            let y = plain.obs.sample(st, root.running_min, &mut b);
            assert_eq!(x, ((f64::from(y) * 1024.0).round() / 1024.0) as f32);
        }
    }

    /// The routed-strong penalty touches routed regenerations only, and the hazard scale
    /// shortens strong solutions while the calibration keeps strong-only accuracy on target.
    #[test]
    fn routed_shift_and_hazard_scale_keep_the_strong_only_calibration() {
        let shifted = model(LatentConfig {
            routed_strong_shift: 1.0,
            strong_hazard_scale: 1.2,
            ..LatentConfig::default()
        });
        let plain = model(LatentConfig::default());
        let d = shifted.difficulty(0.0);
        assert!(d.p_strong_routed < d.p_strong);
        assert_eq!(
            plain.difficulty(0.0).p_strong_routed,
            plain.difficulty(0.0).p_strong
        );
        let (s, p) = (&shifted.calibration.strong, &plain.calibration.strong);
        assert!((s.expected_accuracy - p.expected_accuracy).abs() < 1e-6);
        assert!(s.expected_steps < p.expected_steps - 0.5, "{s:?} {p:?}");
    }
}
