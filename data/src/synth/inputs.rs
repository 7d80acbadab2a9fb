//! The latent model's calibration inputs: the vendored copies (or the config's replacements) read,
//! parsed and recorded with sha256 as dataset sources, then calibrated into a [`LatentModel`].

use std::path::{Path, PathBuf};

use trim_env::checksum::sha256_hex;

use crate::error::{DataError, Result};
use crate::schema::SourceRef;

use super::config::InputPaths;
use super::hazard::{HAZARD_ORIGIN, Hazard, STRONG_HAZARD_JSON, WEAK_HAZARD_JSON};
use super::latent::LatentModel;
use super::obs_model::{MATH_TRAIN_JSON, MATH_TRAIN_ORIGIN, ObsModel};
use super::params::LatentConfig;
use super::step_tokens::{STEP_TOKENS_JSON, STEP_TOKENS_PATH, StepTokensFile};

/// Weak model on MATH-train: per-step statistics behind the accuracy target (provenance only).
pub const WEAK_TRANSITIONS_JSON: &str = include_str!(
    "../../calibration/trim_official/math_train_qwen2.5-1.5b-instruct_transition_params.json"
);
/// Strong model on MATH-train: per-step statistics behind the accuracy target (provenance only).
pub const STRONG_TRANSITIONS_JSON: &str = include_str!(
    "../../calibration/trim_official/math_train_qwen2.5-7b-instruct_transition_params.json"
);

/// Reads calibration inputs and records each one as a source, in reading order.
#[derive(Default)]
struct Sources(Vec<SourceRef>);

impl Sources {
    /// The text of `over` when the config replaces this input, else the `embedded` copy, with
    /// the path that names it in errors. The source is recorded under the repository `name`
    /// and `origin` of the vendored copy, or under the replacement's path.
    fn read(
        &mut self,
        over: &Option<PathBuf>,
        embedded: &'static str,
        name: &str,
        origin: &str,
    ) -> Result<(String, PathBuf)> {
        let (text, path) = match over {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| DataError::file(p, format!("cannot read: {e}")))?;
                (text, p.clone())
            }
            None => (embedded.to_string(), PathBuf::from("<embedded>")),
        };
        self.0.push(SourceRef {
            name: over
                .as_ref()
                .map_or(name.to_string(), |p| p.display().to_string()),
            origin: match over {
                Some(_) => "user-supplied replacement".into(),
                None => origin.into(),
            },
            sha256: Some(sha256_hex(text.as_bytes())),
        });
        Ok((text, path))
    }
}

/// Load the latent model from the config's inputs (vendored copies unless replaced) and
/// describe those inputs for the metadata.
pub fn load_model(
    latent: &LatentConfig,
    inputs: &InputPaths,
    cfg_path: &Path,
) -> Result<(LatentModel, Vec<SourceRef>)> {
    let mut src = Sources::default();
    let (t, p) = src.read(
        &inputs.weak_hazard,
        WEAK_HAZARD_JSON,
        "data/calibration/trim_official/math_train_terminal_predictor_slm.json",
        HAZARD_ORIGIN,
    )?;
    let weak = Hazard::from_json(&p, &t)?;
    let (t, p) = src.read(
        &inputs.strong_hazard,
        STRONG_HAZARD_JSON,
        "data/calibration/trim_official/math_train_terminal_predictor_llm.json",
        HAZARD_ORIGIN,
    )?;
    let strong = Hazard::from_json(&p, &t)?;
    let (t, p) = src.read(
        &inputs.step_tokens,
        STEP_TOKENS_JSON,
        STEP_TOKENS_PATH,
        "real ProcessBench step lengths (cl100k), see data/calibration/SOURCE.md",
    )?;
    let tokens = StepTokensFile::from_json(&p, &t)?;
    let (t, p) = src.read(
        &inputs.obs_model,
        MATH_TRAIN_JSON,
        "data/calibration/trim_official/math-train_obs_distributions_bin_size_0.05.json",
        MATH_TRAIN_ORIGIN,
    )?;
    let obs = ObsModel::from_json(&p, &t)?;
    let mut sources = src.0;
    // The step-token lists' own inputs (ProcessBench files) are sources too.
    sources.extend(tokens.sources.iter().cloned());
    let model = LatentModel::new(latent.clone(), weak, strong, tokens, obs, cfg_path)?;
    Ok((model, sources))
}

/// The official per-step statistics the accuracy targets were counted from (provenance of the
/// shipped targets; the generator does not read them).
pub fn accuracy_target_sources() -> Vec<SourceRef> {
    let official = "data/calibration/trim_official";
    vec![
        SourceRef {
            name: format!("{official}/math_train_qwen2.5-1.5b-instruct_transition_params.json"),
            origin: "TRIM release 5ec6323 (accuracy target 2819/7500)".into(),
            sha256: Some(sha256_hex(WEAK_TRANSITIONS_JSON.as_bytes())),
        },
        SourceRef {
            name: format!("{official}/math_train_qwen2.5-7b-instruct_transition_params.json"),
            origin: "TRIM release 5ec6323 (accuracy target 5785/7500)".into(),
            sha256: Some(sha256_hex(STRONG_TRANSITIONS_JSON.as_bytes())),
        },
    ]
}
