//! The synth config: every parameter of `trim data synth` (TOML; the shipped one is
//! `data/synth/math-qwen2.5.toml`, embedded so the binary runs from any directory).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Loc, Result};

use super::params::{LatentConfig, MAX_REGENS_LIMIT};

/// The shipped config, embedded so the binary runs from any directory.
pub const SHIPPED_CONFIG_TOML: &str = include_str!("../../synth/math-qwen2.5.toml");
/// Where the shipped config lives in the repository.
pub const SHIPPED_CONFIG_PATH: &str = "data/synth/math-qwen2.5.toml";

/// Model names written into every problem row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelNames {
    pub weak: String,
    pub strong: String,
    pub prm: String,
}

/// Optional replacements for the vendored calibration inputs (None = the vendored copy).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputPaths {
    /// TRIM terminal-predictor JSON for weak steps.
    pub weak_hazard: Option<PathBuf>,
    /// TRIM terminal-predictor JSON for strong steps.
    pub strong_hazard: Option<PathBuf>,
    /// Step-token lists in the `step_tokens.json` format.
    pub step_tokens: Option<PathBuf>,
    /// TRIM observation-model JSON (`*_obs_distributions_*.json`).
    pub obs_model: Option<PathBuf>,
}

/// Everything `trim data synth` needs; the TOML file mirrors it field by field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthConfig {
    /// Dataset name (metadata).
    pub name: String,
    /// `dataset` column of every problem.
    pub dataset: String,
    /// Number of problems.
    pub problems: u32,
    /// Base seed; problem `p` uses the stream `(seed, p)`.
    pub seed: u64,
    /// Independent sample trees per problem.
    pub trees: u32,
    /// K: at most this many regenerations on a path (the all-strong path is always complete).
    pub max_regens: u32,
    /// Probability that a problem goes to the `test` split (else `train`).
    pub test_fraction: f64,
    /// Output file (.parquet or .jsonl).
    pub out: PathBuf,
    /// Model names for the rows.
    pub models: ModelNames,
    /// The latent model.
    pub latent: LatentConfig,
    /// Replacements for vendored inputs.
    #[serde(default)]
    pub inputs: InputPaths,
}

impl Default for SynthConfig {
    /// The shipped config (`data/synth/math-qwen2.5.toml`, the MATH-train profile).
    fn default() -> Self {
        Self::shipped()
    }
}

impl SynthConfig {
    /// Parse TOML text (`path` names it in errors) and check every value.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self> {
        let cfg: SynthConfig = toml::from_str(text)
            .map_err(|e| DataError::file(path, format!("bad synth config: {e}")))?;
        cfg.check(path)?;
        Ok(cfg)
    }

    /// Read and parse a TOML file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DataError::file(path, format!("cannot read: {e}")))?;
        Self::from_toml(path, &text)
    }

    /// The shipped config.
    pub fn shipped() -> Self {
        Self::from_toml(Path::new(SHIPPED_CONFIG_PATH), SHIPPED_CONFIG_TOML)
            .expect("shipped synth config is valid")
    }

    /// Range checks (also run after CLI overrides).
    pub fn check(&self, path: &Path) -> Result<()> {
        let bad =
            |field: &str, reason: String| Err(DataError::new(path, Loc::File, Some(field), reason));
        if self.problems == 0 {
            return bad("problems", "must be at least 1".into());
        }
        if self.trees == 0 {
            return bad("trees", "must be at least 1".into());
        }
        if self.max_regens > MAX_REGENS_LIMIT {
            return bad(
                "max_regens",
                format!(
                    "{} exceeds {MAX_REGENS_LIMIT}: a tree has about depth^K nodes (180 for \
                     K = 2, 600 for K = 3, tens of thousands beyond 6)",
                    self.max_regens
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.test_fraction) {
            return bad(
                "test_fraction",
                format!("{} outside [0, 1]", self.test_fraction),
            );
        }
        self.latent.check(path, "latent.")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::synth::inputs::{STRONG_TRANSITIONS_JSON, WEAK_TRANSITIONS_JSON};

    #[test]
    fn math500_profile_parses_with_the_release_anchors_and_flags() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/synth/math500-qwen2.5.toml"
        ));
        let c = SynthConfig::load(path).unwrap();
        // The release's MATH-500 run: weak-only 182 / 500, strong-only 365 / 500.
        assert_eq!(c.latent.target_weak_accuracy, 0.364);
        assert_eq!(c.latent.target_strong_accuracy, 0.73);
        assert!(c.latent.flag_s2 > 0.0 && c.latent.flag_s1 > 0.0 && c.latent.flag_s0 > 0.0);
        assert!(c.max_regens >= 4, "the probe budget must not meet the cap");
    }

    #[test]
    fn shipped_config_parses_and_repeats_the_defaults() {
        let c = SynthConfig::shipped();
        assert_eq!(c, SynthConfig::default());
        // Beyond the PRM knobs (shared with the MATH-500 profile, checked below) and σ, the
        // MATH-train profile is the neutral model with MATH-train's targets and lengths.
        let neutral = LatentConfig {
            difficulty_sd: c.latent.difficulty_sd,
            ..LatentConfig::default()
        };
        assert_eq!(c.latent.with_prm_knobs_of(&neutral), neutral);
        let m500 = crate::source::SynthSpec::parse("synth:math500")
            .unwrap()
            .cfg
            .latent;
        assert_eq!(c.latent.with_prm_knobs_of(&m500), c.latent);
        assert_eq!(c.latent.difficulty_sd, m500.difficulty_sd);
        assert!(c.problems >= 2000);
        assert_eq!(c.inputs, InputPaths::default());
        // The accuracy targets are the official counts of final-correct solutions.
        for (json, target) in [
            (WEAK_TRANSITIONS_JSON, c.latent.target_weak_accuracy),
            (STRONG_TRANSITIONS_JSON, c.latent.target_strong_accuracy),
        ] {
            let v: Value = serde_json::from_str(json).unwrap();
            let ok = v["correct_steps"].as_array().unwrap().len() as f64;
            let bad = v["incorrect_steps"].as_array().unwrap().len() as f64;
            assert!((ok / (ok + bad) - target).abs() < 1e-12);
        }
    }

    #[test]
    fn bad_configs_name_the_field() {
        let p = Path::new("c.toml");
        let text = SHIPPED_CONFIG_TOML.replace("test_fraction = 0.1", "test_fraction = 1.5");
        let e = SynthConfig::from_toml(p, &text).unwrap_err();
        assert!(e.to_string().contains("test_fraction"), "{e}");
        let text = format!("{SHIPPED_CONFIG_TOML}\nbogus = 1\n");
        let e = SynthConfig::from_toml(p, &text).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let text = SHIPPED_CONFIG_TOML.replace("max_regens = 2", "max_regens = 9");
        let e = SynthConfig::from_toml(p, &text).unwrap_err();
        assert!(e.to_string().contains("max_regens"), "{e}");
        let text = SHIPPED_CONFIG_TOML.replace("q_err = 0.05", "q_err = 2.0");
        let e = SynthConfig::from_toml(p, &text).unwrap_err();
        assert!(e.to_string().contains("latent.q_err"), "{e}");
    }
}
