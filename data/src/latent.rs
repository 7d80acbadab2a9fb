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
//! accuracies equal the configured targets; [`LatentModel::expand_tree`] writes one sample tree
//! (at most `K` regenerations per path, plus the full all-strong path), optionally with a real
//! all-weak path (the ProcessBench importer).

use std::path::Path;

use serde::{Deserialize, Serialize};
use trim_env::{Action, Rng};

use crate::build::TreeWriter;
use crate::error::{DataError, Loc, Result};
use crate::obs_model::ObsModel;
use crate::schema::{CandidateRec, SourceRef, state};

/// Vendored weak-model (Qwen2.5-1.5B-Instruct) solution-length hazard on MATH-train.
pub const WEAK_HAZARD_JSON: &str =
    include_str!("../calibration/trim_official/math_train_terminal_predictor_slm.json");
/// Vendored strong-model (Qwen2.5-7B-Instruct) solution-length hazard on MATH-train.
pub const STRONG_HAZARD_JSON: &str =
    include_str!("../calibration/trim_official/math_train_terminal_predictor_llm.json");
/// Vendored real step-token lists (see `data/calibration/SOURCE.md`).
pub const STEP_TOKENS_JSON: &str = include_str!("../calibration/step_tokens.json");
/// Where the vendored hazards came from.
pub const HAZARD_ORIGIN: &str = "TRIM release github.com/Vansh28Kapoor/TRIM@5ec6323 pomdp_data/math_train_terminal_predictor_{slm,llm}.pkl (lossless JSON)";

/// Largest regeneration cap K accepted: a tree has roughly depth^K nodes, so K = 6 already
/// means tens of thousands of nodes per tree.
pub const MAX_REGENS_LIMIT: u32 = 6;
/// Half-width of the difficulty grid, in standard deviations.
const Z_MAX: f64 = 8.0;
/// Points of the difficulty grid used for expectations and posterior draws.
const Z_POINTS: usize = 801;

/// sha256 (hex) of an embedded file's bytes, for provenance records.
pub fn sha256_text(text: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// Numerically safe logistic function.
fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

// ---------------------------------------------------------------------------------------------
// Hazard

#[derive(Deserialize)]
struct HazardJson {
    max_steps: u32,
    hazard_by_step: std::collections::HashMap<String, f64>,
}

/// Solution-length hazard `h(k)` = P(the solution ends at step k | it reached step k).
#[derive(Clone, Debug, PartialEq)]
pub struct Hazard {
    /// `h[k]` for 1-based step `k` (index 0 unused).
    h: Vec<f64>,
}

impl Hazard {
    /// Parse a TRIM `*_terminal_predictor_*.json` file's text (`hazard_by_step` keyed by step).
    pub fn from_json(path: &Path, text: &str) -> Result<Self> {
        let j: HazardJson = serde_json::from_str(text)
            .map_err(|e| DataError::file(path, format!("bad terminal-predictor JSON: {e}")))?;
        if !(2..=1000).contains(&j.max_steps) {
            return Err(DataError::new(
                path,
                Loc::File,
                Some("max_steps"),
                format!("max_steps {} outside 2..=1000", j.max_steps),
            ));
        }
        let mut h = vec![0.0; j.max_steps as usize + 1];
        for (k, &v) in &j.hazard_by_step {
            let step: usize = k.parse().map_err(|_| {
                DataError::new(
                    path,
                    Loc::File,
                    Some("hazard_by_step"),
                    format!("key `{k}` is not a step number"),
                )
            })?;
            if step >= h.len() {
                return Err(DataError::new(
                    path,
                    Loc::File,
                    Some("hazard_by_step"),
                    format!("step {step} beyond max_steps {}", j.max_steps),
                ));
            }
            if !(0.0..=1.0).contains(&v) {
                return Err(DataError::new(
                    path,
                    Loc::File,
                    Some("hazard_by_step"),
                    format!("hazard {v} at step {step} outside [0, 1]"),
                ));
            }
            h[step] = v;
        }
        Ok(Hazard { h })
    }

    /// The vendored weak-model hazard.
    pub fn weak_math_train() -> Self {
        Self::from_json(Path::new("<embedded weak hazard>"), WEAK_HAZARD_JSON)
            .expect("embedded weak hazard is valid")
    }

    /// The vendored strong-model hazard.
    pub fn strong_math_train() -> Self {
        Self::from_json(Path::new("<embedded strong hazard>"), STRONG_HAZARD_JSON)
            .expect("embedded strong hazard is valid")
    }

    /// `h(k)` for 1-based step `k` (0 beyond the table; the cap is applied by the caller).
    pub fn at(&self, k: u32) -> f64 {
        self.h.get(k as usize).copied().unwrap_or(0.0)
    }

    /// `P(L = k)` for `k = 0..=cap`, where step `cap` always ends the solution.
    pub fn pmf(&self, cap: u16) -> Vec<f64> {
        let cap = usize::from(cap);
        let mut out = vec![0.0; cap + 1];
        let mut survive = 1.0;
        for (k, slot) in out.iter_mut().enumerate().skip(1) {
            let hk = if k >= cap { 1.0 } else { self.at(k as u32) };
            *slot = survive * hk;
            survive *= 1.0 - hk;
        }
        out
    }

    /// Expected number of steps under the cap.
    pub fn mean_steps(&self, cap: u16) -> f64 {
        self.pmf(cap)
            .iter()
            .enumerate()
            .map(|(k, p)| k as f64 * p)
            .sum()
    }
}

// ---------------------------------------------------------------------------------------------
// Step tokens

/// Real step lengths of one model role, split by whether the step ends the solution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTokenLists {
    /// Generators whose steps were used.
    pub generators: Vec<String>,
    /// ProcessBench subsets the steps came from.
    pub subsets: Vec<String>,
    /// Solutions used.
    pub solutions: usize,
    /// Tokens of every step that is not the last of its solution.
    pub nonfinal: Vec<u32>,
    /// Tokens of every last step (the one with the final answer).
    #[serde(rename = "final")]
    pub last: Vec<u32>,
}

impl StepTokenLists {
    /// Draw a step length: from the final-step list for a finishing step, else the others.
    pub fn sample(&self, finished: bool, rng: &mut Rng) -> u32 {
        let list = if finished && !self.last.is_empty() {
            &self.last
        } else if !self.nonfinal.is_empty() {
            &self.nonfinal
        } else {
            &self.last
        };
        list[rng.below(list.len() as u64) as usize].max(1)
    }

    /// Mean tokens over all steps.
    pub fn mean(&self) -> f64 {
        let n = self.nonfinal.len() + self.last.len();
        let s: u64 = self
            .nonfinal
            .iter()
            .chain(&self.last)
            .map(|&t| u64::from(t))
            .sum();
        s as f64 / n.max(1) as f64
    }
}

/// `data/calibration/step_tokens.json`: real step lengths for the weak and strong roles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepTokensFile {
    /// What the file is.
    pub description: String,
    /// Tokenizer that counted the tokens.
    pub tokenizer: String,
    /// Input files with sha256.
    pub sources: Vec<SourceRef>,
    /// The command that regenerates the file.
    pub command: String,
    pub weak: StepTokenLists,
    pub strong: StepTokenLists,
}

impl StepTokensFile {
    /// Parse and check (both roles need at least one step).
    pub fn from_json(path: &Path, text: &str) -> Result<Self> {
        let f: StepTokensFile = crate::io::parse_json(path, text)?;
        for (role, l) in [("weak", &f.weak), ("strong", &f.strong)] {
            if l.nonfinal.is_empty() && l.last.is_empty() {
                return Err(DataError::new(
                    path,
                    Loc::File,
                    Some(role),
                    "no step lengths",
                ));
            }
        }
        Ok(f)
    }

    /// The vendored file.
    pub fn vendored() -> Self {
        Self::from_json(Path::new("<embedded step_tokens.json>"), STEP_TOKENS_JSON)
            .expect("embedded step_tokens.json is valid")
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration and calibration

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
}

impl Default for LatentConfig {
    /// The shipped defaults (`data/synth/math-qwen2.5.toml` repeats them; a test keeps them equal).
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
        }
    }
}

impl LatentConfig {
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

/// Normal quadrature grid over difficulty `z`.
struct Grid {
    z: Vec<f64>,
    w: Vec<f64>,
}

impl Grid {
    fn new() -> Self {
        let z: Vec<f64> = (0..Z_POINTS)
            .map(|i| -Z_MAX + 2.0 * Z_MAX * i as f64 / (Z_POINTS - 1) as f64)
            .collect();
        let mut w: Vec<f64> = z.iter().map(|z| (-0.5 * z * z).exp()).collect();
        let s: f64 = w.iter().sum();
        w.iter_mut().for_each(|x| *x /= s);
        Grid { z, w }
    }
}

/// Expected statistics of one model writing every step of a solution.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleStats {
    /// Solved per-step logit α.
    pub logit: f64,
    /// Per-step accuracy of a problem of average difficulty (z = 0): logistic(α).
    pub step_accuracy_at_mean_difficulty: f64,
    /// Per-step accuracy averaged over problems.
    pub mean_step_accuracy: f64,
    /// Expected solution accuracy (equals the target up to the solver's tolerance).
    pub expected_accuracy: f64,
    /// Expected steps per solution (from the hazard and the cap).
    pub expected_steps: f64,
    /// The official TRIM next-step accuracy estimator (correct steps of correct solutions plus
    /// steps before the first error of wrong ones, over those plus the errors) implied by the
    /// model; compare with the official 0.866 (weak) / 0.970 (strong).
    pub implied_next_step_accuracy: f64,
    /// Implied P(some step wrong | final answer correct); ProcessBench's human labels give about
    /// 0.22 for Qwen2.5-1.5B/7B on MATH.
    pub implied_error_given_correct: f64,
}

/// The solved calibration.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub weak: RoleStats,
    pub strong: RoleStats,
}

/// Everything about one role that depends on α (for the bisection and the report).
fn role_stats(alpha: f64, cfg: &LatentConfig, pmf: &[f64], grid: &Grid) -> RoleStats {
    let cap = pmf.len() - 1;
    let (mut acc, mut step_acc, mut err_and_correct) = (0.0, 0.0, 0.0);
    let (mut c_steps, mut e_steps) = (0.0, 0.0);
    for (&z, &w) in grid.z.iter().zip(&grid.w) {
        let p = logistic(alpha - cfg.difficulty_sd * z);
        step_acc += w * p;
        let mut pk = 1.0; // p^k
        for (k, &pl) in pmf.iter().enumerate().skip(1) {
            pk *= p;
            if pl == 0.0 {
                continue;
            }
            let (q0, q1) = if k == cap {
                (cfg.q_capped, cfg.q_capped)
            } else {
                (cfg.q_ok, cfg.q_err)
            };
            acc += w * pl * (pk * q0 + (1.0 - pk) * q1);
            err_and_correct += w * pl * (1.0 - pk) * q1;
            // Official estimator: no latent error → all k steps count when correct, a wrong one
            // is split at its argmin step (uniform, (k−1)/2 correct steps on average).
            let kf = k as f64;
            let (mut c, mut e) = (
                pk * (q0 * kf + (1.0 - q0) * (kf - 1.0) / 2.0),
                pk * (1.0 - q0),
            );
            let mut pj = 1.0; // p^(j−1)
            for j in 1..=k {
                let first_error_at_j = pj * (1.0 - p);
                c += first_error_at_j * (q1 * kf + (1.0 - q1) * (j as f64 - 1.0));
                e += first_error_at_j * (1.0 - q1);
                pj *= p;
            }
            c_steps += w * pl * c;
            e_steps += w * pl * e;
        }
    }
    RoleStats {
        logit: alpha,
        step_accuracy_at_mean_difficulty: logistic(alpha),
        mean_step_accuracy: step_acc,
        expected_accuracy: acc,
        expected_steps: pmf.iter().enumerate().map(|(k, p)| k as f64 * p).sum(),
        implied_next_step_accuracy: c_steps / (c_steps + e_steps).max(f64::MIN_POSITIVE),
        implied_error_given_correct: if acc > 0.0 {
            err_and_correct / acc
        } else {
            0.0
        },
    }
}

/// Solve α for one role by bisection (expected accuracy is increasing in α).
fn solve_role(
    target: f64,
    cfg: &LatentConfig,
    pmf: &[f64],
    grid: &Grid,
    path: &Path,
    field: &str,
) -> Result<RoleStats> {
    let (mut lo, mut hi) = (-20.0f64, 30.0f64);
    let (a_lo, a_hi) = (
        role_stats(lo, cfg, pmf, grid).expected_accuracy,
        role_stats(hi, cfg, pmf, grid).expected_accuracy,
    );
    if !(a_lo < target && target < a_hi) {
        return Err(DataError::new(
            path,
            Loc::File,
            Some(field),
            format!(
                "target accuracy {target} is unreachable: with these q_ok/q_err/q_capped and \
                 hazard the expected accuracy ranges over ({a_lo:.4}, {a_hi:.4})"
            ),
        ));
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if role_stats(mid, cfg, pmf, grid).expected_accuracy < target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 {
            break;
        }
    }
    Ok(role_stats(0.5 * (lo + hi), cfg, pmf, grid))
}

/// Solve the weak and strong per-step logits so that the expected always-weak and always-strong
/// accuracies equal the targets, given the hazards, the difficulty spread and q_ok/q_err/q_capped.
/// `path` names the config for errors.
pub fn calibrate(
    cfg: &LatentConfig,
    weak: &Hazard,
    strong: &Hazard,
    path: &Path,
) -> Result<Calibration> {
    cfg.check(path, "latent.")?;
    let grid = Grid::new();
    Ok(Calibration {
        weak: solve_role(
            cfg.target_weak_accuracy,
            cfg,
            &weak.pmf(cfg.max_steps),
            &grid,
            path,
            "latent.target_weak_accuracy",
        )?,
        strong: solve_role(
            cfg.target_strong_accuracy,
            cfg,
            &strong.pmf(cfg.max_steps),
            &grid,
            path,
            "latent.target_strong_accuracy",
        )?,
    })
}

// ---------------------------------------------------------------------------------------------
// The generative model

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
        Prefix {
            ok: self.ok && c.state == Some(state::S0),
            running_min: self.running_min.min(c.prm),
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
    /// 0 = S0, 1 = S1, 2 = S2 (from human labels).
    pub state: u8,
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
    grid_z: Vec<f64>,
    grid_w: Vec<f64>,
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
        let calibration = calibrate(&cfg, &weak_hazard, &strong_hazard, path)?;
        let grid = Grid::new();
        Ok(LatentModel {
            cfg,
            calibration,
            weak_hazard,
            strong_hazard,
            tokens,
            obs,
            grid_z: grid.z,
            grid_w: grid.w,
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
        Difficulty {
            z,
            p_weak: logistic(self.calibration.weak.logit - s * z),
            p_strong: logistic(self.calibration.strong.logit - s * z),
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
            .grid_z
            .iter()
            .zip(&self.grid_w)
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
        self.difficulty(self.grid_z[pick])
    }

    /// A PRM score for a step in `st` after `prefix`, rounded to the configured grid.
    pub fn prm(&self, st: u8, prefix: &Prefix, rng: &mut Rng) -> f32 {
        let x = self.obs.sample(st, prefix.running_min, rng);
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
            state::S1
        } else if rng.bernoulli(p) {
            state::S0
        } else {
            state::S2
        };
        let k = u32::from(depth) + 1;
        let capped = k >= u32::from(self.cfg.max_steps);
        let finished = capped || rng.bernoulli(hazard.at(k));
        let correct = finished.then(|| {
            let q = if capped {
                self.cfg.q_capped
            } else if prefix.ok && st == state::S0 {
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
            },
            correct,
        }
    }

    /// Write one sample tree into `w`: every action history with at most `max_regens`
    /// regenerations, plus the whole all-strong path. On the all-weak path the weak candidates
    /// are `real[t]` while `t < real.len()` (PRM scores drawn by their real states); everything
    /// else is drawn from the model. Returns the nodes written.
    pub fn expand_tree(
        &self,
        w: &mut TreeWriter<'_>,
        d: &Difficulty,
        max_regens: u32,
        real: &[RealStep],
        rng: &mut Rng,
    ) -> usize {
        let mut cx = Expand {
            model: self,
            d,
            k: max_regens,
            real,
        };
        cx.node(w, None, 0, Prefix::root(), 0, true, rng);
        w.len()
    }
}

struct Expand<'a> {
    model: &'a LatentModel,
    d: &'a Difficulty,
    k: u32,
    real: &'a [RealStep],
}

impl Expand<'_> {
    /// Write the node reached by `parent` (None = root) and, depth first, its subtree.
    /// `ones` counts regenerations on the path; `all_ones` is true while every action was one.
    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        w: &mut TreeWriter<'_>,
        parent: Option<(u32, Action)>,
        depth: u16,
        prefix: Prefix,
        ones: u32,
        all_ones: bool,
        rng: &mut Rng,
    ) {
        let m = self.model;
        let weak = match self.real.get(usize::from(depth)) {
            Some(r) if ones == 0 => {
                let prm = m.prm(r.state, &prefix, rng);
                Draw {
                    rec: CandidateRec {
                        tokens: r.tokens.max(1),
                        prm,
                        finished: r.finished,
                        state: Some(r.state),
                        text: r.text.clone(),
                        hash: r.hash.clone(),
                    },
                    correct: r.correct.or(r.finished.then_some(false)),
                }
            }
            _ => m.candidate(Role::Weak, self.d, &prefix, depth, rng),
        };
        let strong = (ones < self.k || all_ones)
            .then(|| m.candidate(Role::Strong, self.d, &prefix, depth, rng));
        let id = match parent {
            None => w.root(weak.rec.clone(), strong.as_ref().map(|s| s.rec.clone())),
            Some((p, a)) => w.child(
                p,
                a,
                weak.rec.clone(),
                strong.as_ref().map(|s| s.rec.clone()),
            ),
        };
        if let Some(c) = weak.correct {
            w.set_outcome(id, Action::Continue, c);
        } else if ones <= self.k {
            let next = prefix.then(&weak.rec);
            self.node(
                w,
                Some((id, Action::Continue)),
                depth + 1,
                next,
                ones,
                false,
                rng,
            );
        }
        if let Some(s) = strong {
            if let Some(c) = s.correct {
                w.set_outcome(id, Action::Regenerate, c);
            } else {
                let next = prefix.then(&s.rec);
                self.node(
                    w,
                    Some((id, Action::Regenerate)),
                    depth + 1,
                    next,
                    ones + 1,
                    all_ones,
                    rng,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::DatasetBuilder;
    use crate::schema::{Meta, ProblemInfo};

    fn test_info() -> ProblemInfo {
        ProblemInfo {
            problem_id: "p".into(),
            dataset: "d".into(),
            split: "train".into(),
            weak_model: "w".into(),
            strong_model: "s".into(),
            prm_model: "r".into(),
        }
    }

    fn model(cfg: LatentConfig) -> LatentModel {
        LatentModel::vendored(cfg, Path::new("<test>")).unwrap()
    }

    #[test]
    fn hazards_match_published_mean_lengths() {
        // SOURCE.md: mean ≈ 7.8 steps (weak), 8.7 (strong).
        let w = Hazard::weak_math_train().mean_steps(30);
        let s = Hazard::strong_math_train().mean_steps(30);
        assert!((w - 7.84).abs() < 0.05, "{w}");
        assert!((s - 8.71).abs() < 0.05, "{s}");
        let pmf = Hazard::weak_math_train().pmf(30);
        assert!((pmf.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(pmf[1], 0.0);
    }

    #[test]
    fn bad_hazard_json_is_an_error() {
        let p = Path::new("h.json");
        let e =
            Hazard::from_json(p, r#"{"max_steps": 30, "hazard_by_step": {"3": 1.5}}"#).unwrap_err();
        assert!(e.to_string().contains("outside [0, 1]"), "{e}");
        assert!(Hazard::from_json(p, "{").is_err());
    }

    #[test]
    fn calibration_hits_targets_and_official_step_accuracies() {
        let m = model(LatentConfig::default());
        let c = m.calibration;
        assert!((c.weak.expected_accuracy - 2819.0 / 7500.0).abs() < 1e-9);
        assert!((c.strong.expected_accuracy - 5785.0 / 7500.0).abs() < 1e-9);
        // The implied official next-step accuracies land near the published 0.866 / 0.970.
        assert!(
            (c.weak.implied_next_step_accuracy - 0.866).abs() < 0.01,
            "{c:?}"
        );
        assert!(
            (c.strong.implied_next_step_accuracy - 0.970).abs() < 0.01,
            "{c:?}"
        );
        assert!(c.strong.logit > c.weak.logit);
    }

    #[test]
    fn unreachable_target_is_a_config_error() {
        let cfg = LatentConfig {
            q_ok: 0.3,
            q_err: 0.0,
            ..LatentConfig::default()
        };
        let e = LatentModel::vendored(cfg, Path::new("c.toml")).unwrap_err();
        assert!(e.to_string().contains("unreachable"), "{e}");
        let cfg = LatentConfig {
            q_err: 1.5,
            ..LatentConfig::default()
        };
        let e = LatentModel::vendored(cfg, Path::new("c.toml")).unwrap_err();
        assert!(e.to_string().contains("latent.q_err"), "{e}");
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
                Some(state::S1)
            );
            let c = m.candidate(Role::Strong, &d, &Prefix::root(), 3, &mut rng);
            assert_ne!(c.rec.state, Some(state::S1));
            s2 += usize::from(c.rec.state == Some(state::S2));
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
    fn tree_respects_the_regeneration_cap_and_keeps_both_anchor_paths() {
        let m = model(LatentConfig::default());
        for k in 0..3u32 {
            let mut b = DatasetBuilder::new(Meta::new("t"));
            let info = test_info();
            let p = b.add_problem(info);
            let mut rng = Rng::new(u64::from(k));
            for _ in 0..20 {
                let d = m.sample_difficulty(&mut rng);
                let mut w = b.tree(p);
                m.expand_tree(&mut w, &d, k, &[], &mut rng);
            }
            let ds = b.finish();
            let l = crate::validate(Path::new("<mem>"), ds).unwrap();
            // Walk every path: regenerations ≤ k unless the path is all-strong.
            for r in &l.ds.rows {
                let (mut ones, mut n, mut cur) = (0u32, 0u32, r);
                while let (Some(pa), Some(a)) = (cur.parent, cur.action) {
                    ones += u32::from(a);
                    n += 1;
                    cur =
                        l.ds.rows
                            .iter()
                            .find(|x| x.tree == r.tree && x.node == pa)
                            .unwrap();
                }
                let all_strong = ones == n;
                assert!(ones <= k || all_strong, "k={k}: {ones} regenerations");
                // A strong candidate exists exactly where one more regeneration is allowed.
                assert_eq!(r.strong.is_some(), ones < k || all_strong);
            }
            let f = &l.forest;
            for t in 0..f.n_trees() {
                for policy in [Action::Continue, Action::Regenerate] {
                    let mut node = f.root(t);
                    loop {
                        match f.branch(node, policy) {
                            trim_env::Branch::Node(c) => node = c,
                            trim_env::Branch::Outcome(_) => break,
                            trim_env::Branch::Absent => panic!("anchor path broken"),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn real_weak_path_is_kept_verbatim() {
        let m = model(LatentConfig::default());
        let real = vec![
            RealStep {
                tokens: 11,
                state: state::S0,
                finished: false,
                correct: None,
                text: Some("a".into()),
                hash: Some("h0".into()),
            },
            RealStep {
                tokens: 22,
                state: state::S2,
                finished: false,
                correct: None,
                text: None,
                hash: Some("h1".into()),
            },
            RealStep {
                tokens: 33,
                state: state::S1,
                finished: true,
                correct: Some(true),
                text: None,
                hash: Some("h2".into()),
            },
        ];
        let mut b = DatasetBuilder::new(Meta::new("t"));
        let p = b.add_problem(test_info());
        let mut rng = Rng::new(1);
        let d = m.sample_difficulty(&mut rng);
        let mut w = b.tree(p);
        m.expand_tree(&mut w, &d, 1, &real, &mut rng);
        let ds = b.finish();
        // Follow continue from the root.
        let mut node = 0u32;
        for (t, r) in real.iter().enumerate() {
            let row = ds.rows.iter().find(|x| x.node == node).unwrap();
            assert_eq!(row.depth as usize, t);
            assert_eq!(row.weak.tokens, r.tokens);
            assert_eq!(row.weak.state, Some(r.state));
            assert_eq!(row.weak.hash, r.hash);
            if r.finished {
                assert_eq!(row.continue_correct, Some(true));
                break;
            }
            node = ds
                .rows
                .iter()
                .find(|x| x.parent == Some(node) && x.action == Some(0))
                .unwrap()
                .node;
        }
        // After the real first error (depth 1), the strong alternative at depth 2 is S1.
        let d2 = ds
            .rows
            .iter()
            .find(|x| x.depth == 2 && x.weak.hash.as_deref() == Some("h2"))
            .unwrap();
        assert_eq!(d2.strong.as_ref().unwrap().state, Some(state::S1));
        crate::validate(Path::new("<mem>"), ds).unwrap();
    }
}
