//! Export a trained policy for inference outside `trim`: `policy.safetensors` + `policy.json`
//! (the Hugging Face `model.safetensors` + `config.json` convention), `policy.onnx`, and a
//! parity fixture `parity.json` that every consumer can check itself against.
//!
//! | file | content |
//! |---|---|
//! | `policy.json` | [`Manifest`]: format version, architecture, ordered features and how each is computed, actions, decision rule and threshold, λ, training-data fingerprint, evaluation summary, sha256 of every other file |
//! | `policy.safetensors` | all parameters, f32, PyTorch layout (Linear weight `[out, in]`) |
//! | `policy.onnx` | opset 17, input `obs [batch, 5]` (`[batch, 6]` with the λ input), outputs `logits`, `probs`, `value` ([`onnx`]) |
//! | `parity.json` | fixed observations and the logits/probabilities of the *burn* model on them |
//!
//! Every file is written atomically; `policy.json` is written last, so a directory whose
//! manifest exists and whose checksums match is a complete export. `trim_router::Router`
//! (the serving crate, which owns the manifest schema) loads and verifies it.

pub mod onnx;
mod onnx_seq;
pub mod pomdp;
mod seq;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use trim_env::checksum::sha256_hex;
use trim_env::features::{STEP_SCALE, TOKEN_SCALE};
pub use trim_router::manifest::{
    ActionSpec, Architecture, DEFAULT_THRESHOLD, DecisionSpec, ExtraInputs, FORMAT, FORMAT_VERSION,
    FeatureSpec, MANIFEST, Manifest, ONNX, PARITY, ParamSpec, SAFETENSORS, Training, architecture,
    feature_names, feature_specs,
};
use trim_router::mlp::softmax2;
pub use trim_router::parity::{
    ParityFixture, TOLERANCE, max_abs_diff, onnx_max_abs_diff, parity_observations,
};
use trim_router::{RouterError, safetensors};

use crate::checkpoint::{self, TrainState};
use crate::family::{Family, agg::Agg, agg_budget::AggBudget, agg_lambda::AggLambda};
use crate::model::{N_ACTIONS, PolicyWeights};

/// Why an export could not be written or was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The checkpoint could not be loaded.
    #[error(transparent)]
    Train(#[from] crate::TrainError),
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    /// The export is damaged, incomplete or of an unsupported version: re-export it.
    #[error("invalid export {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl From<RouterError> for ExportError {
    fn from(e: RouterError) -> Self {
        match e {
            RouterError::Io { path, reason } => ExportError::Io { path, reason },
            RouterError::Invalid { path, reason } => ExportError::Invalid { path, reason },
        }
    }
}

impl ExportError {
    pub(crate) fn invalid(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        ExportError::Invalid {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
    pub(crate) fn io(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        ExportError::Io {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

/// Which files to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `policy.safetensors` + `policy.json` + `parity.json`.
    Safetensors,
    /// `policy.onnx` + `policy.json` + `parity.json`.
    Onnx,
    /// Both.
    All,
}

/// Logits of the burn model (not the plain-Rust copy) on `obs`: the reference every export is
/// compared against.
///
/// # Shapes
/// `obs: [n][d]` (d = the model's input width) → `[n][2]`
pub fn burn_logits<R: AsRef<[f32]>>(
    model: &crate::model::ActorCritic,
    obs: &[R],
    device: &burn::tensor::Device,
) -> Result<Vec<[f32; N_ACTIONS]>, String> {
    let d = model.input_dim();
    if let Some(i) = obs.iter().position(|r| r.as_ref().len() != d) {
        return Err(format!("observation {i} is not {d} wide"));
    }
    let flat: Vec<f32> = obs
        .iter()
        .flat_map(|r| r.as_ref().iter().copied())
        .collect();
    let x = Tensor::<2>::from_data(TensorData::new(flat, [obs.len(), d]), device);
    let (logits, _) = model.forward(x, None);
    let v = logits
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    Ok(v.chunks_exact(N_ACTIONS).map(|c| [c[0], c[1]]).collect())
}

/// What [`export`] wrote.
#[derive(Clone, Debug)]
pub struct ExportReport {
    pub files: Vec<PathBuf>,
    /// Max |logit difference| between the burn model and the plain-Rust network rebuilt from
    /// the written safetensors bytes (None if safetensors were not written).
    pub safetensors_max_abs_diff: Option<f32>,
    /// Max |difference| of logits and probabilities between the burn model and the written
    /// ONNX bytes evaluated by [`trim_router::onnx::evaluate`] (None if ONNX was not written).
    pub onnx_max_abs_diff: Option<f32>,
    /// Non-fatal problems (e.g. dataset not readable, so model names are missing).
    pub warnings: Vec<String>,
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    trim_data::io::write_atomic(path, |w| {
        use std::io::Write;
        w.write_all(bytes)
            .map_err(|e| trim_data::DataError::file(path, format!("write failed: {e}")))
    })
    .map_err(|e| ExportError::io(path, e))
}

/// Distinct weak/strong/PRM model names of the dataset the run was trained on, if the file
/// is still there and still has the recorded hash.
fn model_names(state: &TrainState, warnings: &mut Vec<String>) -> [Vec<String>; 3] {
    let path = Path::new(&state.config.data);
    let empty = || [Vec::new(), Vec::new(), Vec::new()];
    if trim_data::is_synth_spec(path) {
        // A synthetic world names the models it imitates in its configuration.
        return match trim_data::LazySource::open(&path.to_string_lossy()) {
            Ok(z) if z.fingerprint == state.dataset_sha256 => {
                let m = &z.spec.cfg.models;
                [
                    vec![m.weak.clone()],
                    vec![m.strong.clone()],
                    vec![m.prm.clone()],
                ]
            }
            Ok(_) => {
                warnings.push(format!(
                    "world {} changed since training (fingerprint differs): model names not recorded",
                    path.display()
                ));
                empty()
            }
            Err(e) => {
                warnings.push(format!("model names not recorded: {e}"));
                empty()
            }
        };
    }
    match trim_data::io::sha256_file(path) {
        Ok(h) if h == state.dataset_sha256 => {}
        Ok(_) => {
            warnings.push(format!(
                "dataset {} changed since training (sha256 differs): model names not recorded",
                path.display()
            ));
            return empty();
        }
        Err(e) => {
            warnings.push(format!("model names not recorded: {e}"));
            return empty();
        }
    }
    match trim_data::load_forest(path, &trim_data::LoadOptions::from_env()) {
        Ok(ds) => {
            let mut out = empty();
            for p in &ds.problems {
                for (v, n) in out
                    .iter_mut()
                    .zip([&p.weak_model, &p.strong_model, &p.prm_model])
                {
                    if !v.contains(n) {
                        v.push(n.clone());
                    }
                }
            }
            out
        }
        Err(e) => {
            warnings.push(format!("model names not recorded: {e}"));
            empty()
        }
    }
}

/// Export the checkpoint at `checkpoint` (e.g. `checkpoints/<run>/best`) into `out`, with the
/// exporter of the checkpoint's policy family (each family writes the files `trim-router`
/// serves for its `architecture.kind`).
pub fn export(checkpoint: &Path, format: Format, out: &Path) -> Result<ExportReport, ExportError> {
    let state = checkpoint::load_state(checkpoint)?;
    match state.family.as_str() {
        Agg::NAME => export_agg::<Agg>(checkpoint, format, out),
        AggLambda::NAME => export_agg::<AggLambda>(checkpoint, format, out),
        AggBudget::NAME => export_agg::<AggBudget>(checkpoint, format, out),
        <crate::family::seq::Seq as Family>::NAME
        | <crate::family::seq::SeqLambda as Family>::NAME => {
            seq::export_seq(checkpoint, format, out)
        }
        other => Err(ExportError::invalid(
            checkpoint,
            format!("policy family `{other}` has no exporter in this build"),
        )),
    }
}

/// Export a TRIM-Agg checkpoint, plain or λ-conditioned (`F`).
///
/// The weights are verified before anything is written: the network rebuilt from the
/// serialised safetensors bytes, and the ONNX graph evaluated from its bytes, must reproduce
/// the burn model's logits on [`parity_observations`] within 1e-5, or the export fails.
fn export_agg<F: Family<Net = crate::model::ActorCritic>>(
    checkpoint: &Path,
    format: Format,
    out: &Path,
) -> Result<ExportReport, ExportError> {
    let device = crate::backend::Backend::Flex.device()?;
    let (model, state) = checkpoint::load_model_as::<F>(checkpoint, &device)?;
    let weights = model
        .try_weights()
        .map_err(|e| ExportError::invalid(checkpoint, e))?;
    let mut warnings = Vec::new();
    let evaluation = run_evaluation(checkpoint, &mut warnings)?;
    let obs = parity_observations(model.input_dim());
    let logits = burn_logits(&model, &obs, &device)
        .map_err(|e| ExportError::invalid(checkpoint, format!("burn forward failed: {e}")))?;
    let fixture = ParityFixture {
        tolerance: TOLERANCE,
        probs: logits.iter().map(|l| softmax2(*l)).collect(),
        obs,
        logits,
    };
    std::fs::create_dir_all(out).map_err(|e| ExportError::io(out, e))?;
    let mut w = Written::default();
    let meta_kv = [
        ("format", FORMAT.to_string()),
        ("format_version", FORMAT_VERSION.to_string()),
        ("features", feature_names(extra_inputs(&state)).join(",")),
        ("run_name", state.run_name.clone()),
    ];
    if matches!(format, Format::Safetensors | Format::All) {
        let bytes = safetensors_bytes(&weights, &fixture, &meta_kv, out)?;
        w.st_diff = Some(max_abs_diff(&weights, &fixture));
        w.put(out, SAFETENSORS, &bytes)?;
    }
    if matches!(format, Format::Onnx | Format::All) {
        let names = feature_names(extra_inputs(&state));
        let (bytes, diff) =
            onnx_bytes(&weights, &fixture, &meta_kv, (&state.run_name, &names), out)?;
        w.onnx_diff = Some(diff);
        w.put(out, ONNX, &bytes)?;
    }
    let parity_text = serde_json::to_string_pretty(&fixture)
        .map_err(|e| ExportError::invalid(out.join(PARITY), e))?;
    w.put(out, PARITY, parity_text.as_bytes())?;
    let files = std::mem::take(&mut w.files);
    let manifest = manifest(
        checkpoint,
        &state,
        &weights,
        evaluation,
        files,
        &mut warnings,
    )?;
    // A format not written this time must not linger from an earlier export into `out`.
    for stale in [SAFETENSORS, ONNX] {
        let p = out.join(stale);
        if !manifest.files.contains_key(stale) && p.exists() {
            std::fs::remove_file(&p).map_err(|e| ExportError::io(&p, e))?;
        }
    }
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| ExportError::invalid(out.join(MANIFEST), e))?;
    let path = out.join(MANIFEST);
    write(&path, text.as_bytes())?;
    w.paths.push(path);
    Ok(ExportReport {
        files: w.paths,
        safetensors_max_abs_diff: w.st_diff,
        onnx_max_abs_diff: w.onnx_diff,
        warnings,
    })
}

/// Files written so far, with their checksums.
#[derive(Default)]
struct Written {
    files: BTreeMap<String, String>,
    paths: Vec<PathBuf>,
    st_diff: Option<f32>,
    onnx_diff: Option<f32>,
}

impl Written {
    fn put(&mut self, out: &Path, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
        let path = out.join(name);
        write(&path, bytes)?;
        self.files.insert(name.to_string(), sha256_hex(bytes));
        self.paths.push(path);
        Ok(())
    }
}

/// The run's `summary.json` next to the checkpoint, or null with a warning.
fn run_evaluation(
    checkpoint: &Path,
    warnings: &mut Vec<String>,
) -> Result<serde_json::Value, ExportError> {
    let run_dir = crate::run_dir::run_dir_of_checkpoint(checkpoint);
    match run_dir.as_ref().map(|d| d.join("summary.json")) {
        Some(p) if p.is_file() => {
            let text = std::fs::read_to_string(&p).map_err(|e| ExportError::io(&p, e))?;
            serde_json::from_str(&text).map_err(|e| ExportError::invalid(&p, e))
        }
        _ => {
            warnings.push("no summary.json next to the checkpoint: evaluation is null".into());
            Ok(serde_json::Value::Null)
        }
    }
}

/// Serialise the weights and verify the *bytes*: the network rebuilt from them must reproduce
/// the burn model.
fn safetensors_bytes(
    weights: &PolicyWeights,
    fixture: &ParityFixture,
    meta_kv: &[(&str, String)],
    out: &Path,
) -> Result<Vec<u8>, ExportError> {
    let meta: BTreeMap<String, String> = (meta_kv.iter())
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let path = out.join(SAFETENSORS);
    let bytes = safetensors::serialize(&weights.named_params(), &meta)
        .map_err(|e| ExportError::invalid(&path, e))?;
    let rebuilt =
        trim_router::weights_from_safetensors(&bytes, weights.input_dim(), weights.hidden())
            .map_err(|e| ExportError::invalid(&path, e))?;
    let diff = max_abs_diff(&rebuilt, fixture);
    if diff.is_nan() || diff > fixture.tolerance {
        return Err(ExportError::invalid(
            &path,
            format!("rebuilt network differs from the burn model by {diff} (> 1e-5)"),
        ));
    }
    Ok(bytes)
}

/// Encode the ONNX graph and verify its bytes against the burn model.
fn onnx_bytes(
    weights: &PolicyWeights,
    fixture: &ParityFixture,
    meta_kv: &[(&str, String)],
    (run_name, names): (&str, &[&str]),
    out: &Path,
) -> Result<(Vec<u8>, f32), ExportError> {
    let doc = format!(
        "trim routing policy {run_name} (TRIM-Agg); input obs [batch, {}] = {}; logits/probs index 0 = continue, 1 = regenerate",
        names.len(),
        names.join(", ")
    );
    let bytes = onnx::encode(weights, &doc, meta_kv);
    let path = out.join(ONNX);
    let diff = onnx_max_abs_diff(&bytes, fixture).map_err(|e| ExportError::invalid(&path, e))?;
    if diff.is_nan() || diff > fixture.tolerance {
        return Err(ExportError::invalid(
            &path,
            format!("the ONNX graph differs from the burn model by {diff} (> 1e-5)"),
        ));
    }
    Ok((bytes, diff))
}

/// `policy.json` for a checkpoint.
fn manifest(
    checkpoint: &Path,
    state: &TrainState,
    weights: &PolicyWeights,
    evaluation: serde_json::Value,
    files: BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<Manifest, ExportError> {
    let [weak_models, strong_models, prm_models] = model_names(state, warnings);
    Ok(Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        architecture: architecture(weights),
        features: feature_specs(extra_inputs(state)),
        token_scale: TOKEN_SCALE,
        step_scale: STEP_SCALE,
        normalisation: "none beyond the token/step scales: the network takes the features as computed (PRM scores in [0, 1])".into(),
        actions: actions(),
        decision: network_decision(),
        lambda: state.config.lambda,
        lambda_range: state.config.lambda_range.bounds().map(|(lo, hi)| [lo, hi]),
        budget_range: state.config.budget_range.bounds().map(|(lo, hi)| [lo, hi]),
        training: training(checkpoint, state, [weak_models, strong_models, prm_models])?,
        evaluation,
        files,
        calibration: None,
    })
}

/// The inputs a TRIM-Agg checkpoint's network takes after the 5 features.
fn extra_inputs(state: &TrainState) -> ExtraInputs {
    ExtraInputs {
        lambda: state.config.lambda_range.bounds().is_some(),
        budget: state.config.budget_range.bounds().is_some(),
    }
}

/// The two actions, by logit index (every export's `actions`).
fn actions() -> Vec<ActionSpec> {
    vec![
        ActionSpec {
            index: 0,
            name: "continue".into(),
            meaning: "keep the weak model's candidate step".into(),
        },
        ActionSpec {
            index: 1,
            name: "regenerate".into(),
            meaning: "discard it and regenerate this step with the strong model".into(),
        },
    ]
}

/// How a network's logits become a decision (TRIM-Agg and TRIM-Seq exports).
fn network_decision() -> DecisionSpec {
    DecisionSpec {
        score: "p_regenerate = softmax(logits)[1]".into(),
        rule:
            "regenerate iff p_regenerate > threshold (0.5 = the greedy policy that was validated)"
                .into(),
        default_threshold: DEFAULT_THRESHOLD,
    }
}

/// Where the policy came from (`training` of every manifest).
fn training(
    checkpoint: &Path,
    state: &TrainState,
    [weak_models, strong_models, prm_models]: [Vec<String>; 3],
) -> Result<Training, ExportError> {
    Ok(Training {
        run_name: state.run_name.clone(),
        checkpoint: checkpoint.display().to_string(),
        updates_done: state.updates_done,
        trim_version: state.crate_version.clone(),
        backend: state.backend.to_string(),
        dataset: state.config.data.display().to_string(),
        dataset_sha256: state.dataset_sha256.clone(),
        weak_models,
        strong_models,
        prm_models,
        config: serde_json::to_value(&state.config)
            .map_err(|e| ExportError::invalid(checkpoint, e))?,
    })
}
