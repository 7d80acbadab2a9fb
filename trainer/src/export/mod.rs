//! Export a trained policy for inference outside `trim`: `policy.safetensors` + `policy.json`
//! (the Hugging Face `model.safetensors` + `config.json` convention), `policy.onnx`, and a
//! parity fixture `parity.json` that every consumer can check itself against.
//!
//! | file | content |
//! |---|---|
//! | `policy.json` | [`Manifest`]: format version, architecture, ordered features and how each is computed, actions, decision rule and threshold, λ, training-data fingerprint, evaluation summary, sha256 of every other file |
//! | `policy.safetensors` | all parameters, f32, PyTorch layout (Linear weight `[out, in]`) |
//! | `policy.onnx` | opset 17, input `obs [batch, 5]`, outputs `logits`, `probs`, `value` ([`onnx`]) |
//! | `parity.json` | fixed observations and the logits/probabilities of the *burn* model on them |
//!
//! Every file is written atomically; `policy.json` is written last, so a directory whose
//! manifest exists and whose checksums match is a complete export. [`crate::router::Router`]
//! loads and verifies it.

pub mod onnx;
pub mod safetensors;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use trim_env::features::{STEP_SCALE, TOKEN_SCALE};
use trim_env::{AGG_DIM, AGG_FEATURES};

use crate::checkpoint::{self, TrainState};
use crate::model::{LN_EPS, N_ACTIONS, PolicyWeights};

/// `format` of every `policy.json`.
pub const FORMAT: &str = "trim-policy";
/// Bumped on any incompatible change of the export layout; loaders refuse other versions.
pub const FORMAT_VERSION: u32 = 1;
/// Manifest file name.
pub const MANIFEST: &str = "policy.json";
/// Weights file name.
pub const SAFETENSORS: &str = "policy.safetensors";
/// ONNX file name.
pub const ONNX: &str = "policy.onnx";
/// Parity fixture file name.
pub const PARITY: &str = "parity.json";
/// Default decision threshold on p(regenerate): 0.5 is the greedy (argmax) policy that
/// training validated and `best/` was selected with.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

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

/// The network's shape, enough to rebuild it from the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// `trim-agg-actor-critic`.
    pub kind: String,
    pub input_dim: usize,
    pub hidden: usize,
    pub n_actions: usize,
    pub activation: String,
    pub layer_norm_eps: f64,
    /// Forward pass in words, one entry per stage.
    pub forward: Vec<String>,
    /// How to read the weights.
    pub weight_layout: String,
    /// Every parameter: name and shape, in file order.
    pub params: Vec<ParamSpec>,
}

/// One parameter of [`Architecture::params`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

/// One input feature, in network order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    pub index: usize,
    pub name: String,
    /// How it is computed from the episode's step history.
    pub computed: String,
    /// Normalisation applied before the network.
    pub normalisation: String,
}

/// One action, by logit index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    pub index: usize,
    pub name: String,
    pub meaning: String,
}

/// How logits become a decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionSpec {
    pub score: String,
    pub rule: String,
    pub default_threshold: f32,
}

/// Where the policy came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    pub run_name: String,
    pub checkpoint: String,
    pub updates_done: u64,
    pub trim_version: String,
    pub backend: String,
    pub dataset: String,
    pub dataset_sha256: String,
    /// Distinct model names in the dataset (empty if the dataset was not readable at export).
    pub weak_models: Vec<String>,
    pub strong_models: Vec<String>,
    pub prm_models: Vec<String>,
    /// The full training configuration.
    pub config: serde_json::Value,
}

/// `policy.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub architecture: Architecture,
    pub features: Vec<FeatureSpec>,
    pub token_scale: f32,
    pub step_scale: f32,
    pub normalisation: String,
    pub actions: Vec<ActionSpec>,
    pub decision: DecisionSpec,
    /// Cost weight λ of the reward `accuracy − λ·strong tokens` the policy was trained for.
    pub lambda: f64,
    pub training: Training,
    /// The run's `summary.json` (validation/test evaluation), or null if it had none.
    pub evaluation: serde_json::Value,
    /// sha256 of every other file of the export, by file name.
    pub files: BTreeMap<String, String>,
}

/// `parity.json`: what the in-memory (burn) policy outputs on fixed observations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParityFixture {
    /// Tolerance consumers should check against.
    pub tolerance: f32,
    /// `[n][5]` observations.
    pub obs: Vec<[f32; AGG_DIM]>,
    /// `[n][2]` logits of the burn model.
    pub logits: Vec<[f32; N_ACTIONS]>,
    /// `[n][2]` softmax of the logits.
    pub probs: Vec<[f32; N_ACTIONS]>,
}

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The feature list of the TRIM-Agg observation, in network order (mirrors
/// `trim_env::agg_features`).
pub fn feature_specs() -> Vec<FeatureSpec> {
    let computed = [
        "min over previous steps i < t of the PRM score of the step that was kept (weak, or strong if regenerated); 1.0 at t = 0",
        "product over previous steps i < t of the PRM score of the step that was kept; 1.0 at t = 0",
        "PRM score of the current weak candidate step",
        "token count of the current weak candidate step / token_scale (300)",
        "step index t (number of steps already kept, 0 for the first) / step_scale (30)",
    ];
    let norm = [
        "none",
        "none",
        "none",
        "divide by token_scale",
        "divide by step_scale",
    ];
    AGG_FEATURES
        .iter()
        .enumerate()
        .map(|(i, n)| FeatureSpec {
            index: i,
            name: n.to_string(),
            computed: computed[i].to_string(),
            normalisation: norm[i].to_string(),
        })
        .collect()
}

/// The architecture description of `w`.
pub fn architecture(w: &PolicyWeights) -> Architecture {
    Architecture {
        kind: "trim-agg-actor-critic".into(),
        input_dim: AGG_DIM,
        hidden: w.hidden(),
        n_actions: N_ACTIONS,
        activation: "tanh".into(),
        layer_norm_eps: LN_EPS,
        forward: vec![
            "h = tanh(LayerNorm_trunk_ln1(trunk1(obs)))".into(),
            "h = tanh(LayerNorm_trunk_ln2(trunk2(h)))".into(),
            "logits = actor_out(tanh(LayerNorm_actor_ln(actor1(h))))".into(),
            "value = critic_out(tanh(LayerNorm_critic_ln(critic1(h))))  (critic; not needed to route)".into(),
            "probs = softmax(logits)".into(),
        ],
        weight_layout: "PyTorch: Linear weight [out, in], y = x @ W.T + b; LayerNorm weight = gamma, bias = beta, biased variance, eps inside the sqrt".into(),
        params: w
            .named_params()
            .into_iter()
            .map(|(name, shape, _)| ParamSpec { name, shape })
            .collect(),
    }
}

/// Fixed parity observations: the corners of the feature box, typical mid-episode states and
/// a deterministic pseudo-random spread (including out-of-range token and step values).
pub fn parity_observations() -> Vec<[f32; AGG_DIM]> {
    let mut obs = vec![
        [1.0, 1.0, 0.9, 0.2, 0.0],
        [1.0, 1.0, 0.1, 0.5, 0.0],
        [0.3, 0.05, 0.8, 0.3, 0.4],
        [0.9, 0.6, 0.2, 0.1, 0.2],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [1.0, 1.0, 1.0, 1.0, 1.0],
        [0.5, 0.25, 0.5, 2.5, 1.5],
    ];
    let mut rng = trim_env::Rng::new(0x7219);
    for _ in 0..25 {
        obs.push([
            rng.f32(),
            rng.f32() * rng.f32(),
            rng.f32(),
            rng.f32() * 1.5,
            rng.f32(),
        ]);
    }
    obs
}

/// Logits of the burn model (not the plain-Rust copy) on `obs`: the reference every export is
/// compared against.
///
/// # Shapes
/// `obs: [n][5]` → `[n][2]`
pub fn burn_logits(
    model: &crate::model::ActorCritic,
    obs: &[[f32; AGG_DIM]],
    device: &burn::tensor::Device,
) -> Result<Vec<[f32; N_ACTIONS]>, String> {
    let flat: Vec<f32> = obs.iter().flatten().copied().collect();
    let x = Tensor::<2>::from_data(TensorData::new(flat, [obs.len(), AGG_DIM]), device);
    let (logits, _) = model.forward(x, None);
    let v = logits
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    Ok(v.chunks_exact(N_ACTIONS).map(|c| [c[0], c[1]]).collect())
}

/// Softmax of two logits.
pub fn softmax2(l: [f32; 2]) -> [f32; 2] {
    let m = l[0].max(l[1]);
    let (a, b) = ((l[0] - m).exp(), (l[1] - m).exp());
    [a / (a + b), b / (a + b)]
}

/// What [`export`] wrote.
#[derive(Clone, Debug)]
pub struct ExportReport {
    pub files: Vec<PathBuf>,
    /// Max |logit difference| between the burn model and the plain-Rust network rebuilt from
    /// the written safetensors bytes (None if safetensors were not written).
    pub safetensors_max_abs_diff: Option<f32>,
    /// Max |difference| of logits and probabilities between the burn model and the written
    /// ONNX bytes evaluated by [`onnx::evaluate`] (None if ONNX was not written).
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
    match trim_data::io::read_dataset(path) {
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

/// Export the checkpoint at `checkpoint` (e.g. `checkpoints/<run>/best`) into `out`.
///
/// The weights are verified before anything is written: the network rebuilt from the
/// serialised safetensors bytes must reproduce the burn model's logits on
/// [`parity_observations`] within 1e-5, or the export fails.
pub fn export(checkpoint: &Path, format: Format, out: &Path) -> Result<ExportReport, ExportError> {
    let device = crate::backend::Backend::Flex.device()?;
    let (model, state) = checkpoint::load_model(checkpoint, &device)?;
    let weights = model.weights();
    let mut warnings = Vec::new();
    let [weak_models, strong_models, prm_models] = model_names(&state, &mut warnings);
    let run_dir = crate::run_dir::run_dir_of_checkpoint(checkpoint);
    let evaluation = match run_dir.as_ref().map(|d| d.join("summary.json")) {
        Some(p) if p.is_file() => {
            let text = std::fs::read_to_string(&p).map_err(|e| ExportError::io(&p, e))?;
            serde_json::from_str(&text).map_err(|e| ExportError::invalid(&p, e))?
        }
        _ => {
            warnings.push("no summary.json next to the checkpoint: evaluation is null".into());
            serde_json::Value::Null
        }
    };

    // Parity fixture from the burn model itself.
    let obs = parity_observations();
    let logits = burn_logits(&model, &obs, &device)
        .map_err(|e| ExportError::invalid(checkpoint, format!("burn forward failed: {e}")))?;
    let fixture = ParityFixture {
        tolerance: 1e-5,
        probs: logits.iter().map(|l| softmax2(*l)).collect(),
        obs,
        logits,
    };

    std::fs::create_dir_all(out).map_err(|e| ExportError::io(out, e))?;
    let mut files = BTreeMap::new();
    let mut written = Vec::new();
    let mut st_diff = None;
    let mut onnx_diff = None;
    let meta_kv = [
        ("format", FORMAT.to_string()),
        ("format_version", FORMAT_VERSION.to_string()),
        ("features", AGG_FEATURES.join(",")),
        ("run_name", state.run_name.clone()),
    ];
    if matches!(format, Format::Safetensors | Format::All) {
        let meta: BTreeMap<String, String> = meta_kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let bytes = safetensors::serialize(&weights.named_params(), &meta)
            .map_err(|e| ExportError::invalid(out.join(SAFETENSORS), e))?;
        // Verify the bytes, not the in-memory copy: rebuild and compare with burn.
        let rebuilt = crate::router::weights_from_safetensors(&bytes, weights.hidden())
            .map_err(|e| ExportError::invalid(out.join(SAFETENSORS), e))?;
        let diff = max_abs_diff(&rebuilt, &fixture);
        if diff.is_nan() || diff > fixture.tolerance {
            return Err(ExportError::invalid(
                out.join(SAFETENSORS),
                format!("rebuilt network differs from the burn model by {diff} (> 1e-5)"),
            ));
        }
        st_diff = Some(diff);
        let path = out.join(SAFETENSORS);
        write(&path, &bytes)?;
        files.insert(SAFETENSORS.to_string(), sha256_hex(&bytes));
        written.push(path);
    }
    if matches!(format, Format::Onnx | Format::All) {
        let doc = format!(
            "trim routing policy {} (TRIM-Agg); input obs [batch, 5] = {}; logits/probs index 0 = continue, 1 = regenerate",
            state.run_name,
            AGG_FEATURES.join(", ")
        );
        let bytes = onnx::encode(&weights, &doc, &meta_kv);
        let diff = onnx_max_abs_diff(&bytes, &fixture)
            .map_err(|e| ExportError::invalid(out.join(ONNX), e))?;
        if diff.is_nan() || diff > fixture.tolerance {
            return Err(ExportError::invalid(
                out.join(ONNX),
                format!("the ONNX graph differs from the burn model by {diff} (> 1e-5)"),
            ));
        }
        onnx_diff = Some(diff);
        let path = out.join(ONNX);
        write(&path, &bytes)?;
        files.insert(ONNX.to_string(), sha256_hex(&bytes));
        written.push(path);
    }
    let parity_text = serde_json::to_string_pretty(&fixture)
        .map_err(|e| ExportError::invalid(out.join(PARITY), e))?;
    let path = out.join(PARITY);
    write(&path, parity_text.as_bytes())?;
    files.insert(PARITY.to_string(), sha256_hex(parity_text.as_bytes()));
    written.push(path);

    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        architecture: architecture(&weights),
        features: feature_specs(),
        token_scale: TOKEN_SCALE,
        step_scale: STEP_SCALE,
        normalisation: "none beyond the token/step scales: the network takes the features as computed (PRM scores in [0, 1])".into(),
        actions: vec![
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
        ],
        decision: DecisionSpec {
            score: "p_regenerate = softmax(logits)[1]".into(),
            rule: "regenerate iff p_regenerate > threshold (0.5 = the greedy policy that was validated)".into(),
            default_threshold: DEFAULT_THRESHOLD,
        },
        lambda: state.config.lambda,
        training: Training {
            run_name: state.run_name.clone(),
            checkpoint: checkpoint.display().to_string(),
            updates_done: state.updates_done,
            trim_version: state.crate_version.clone(),
            backend: state.backend.clone(),
            dataset: state.config.data.display().to_string(),
            dataset_sha256: state.dataset_sha256.clone(),
            weak_models,
            strong_models,
            prm_models,
            config: serde_json::to_value(&state.config)
                .map_err(|e| ExportError::invalid(checkpoint, e))?,
        },
        evaluation,
        files,
    };
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
    written.push(path);
    Ok(ExportReport {
        files: written,
        safetensors_max_abs_diff: st_diff,
        onnx_max_abs_diff: onnx_diff,
        warnings,
    })
}

/// Max |difference| of the logits and probabilities computed by ONNX model bytes (through
/// [`onnx::evaluate`]) against a parity fixture (NaN if any output is NaN).
pub fn onnx_max_abs_diff(model: &[u8], fixture: &ParityFixture) -> Result<f32, String> {
    let out = onnx::evaluate(model, &fixture.obs)?;
    let mut m = 0.0f32;
    for (name, want) in [("logits", &fixture.logits), ("probs", &fixture.probs)] {
        let (shape, got) = out
            .get(name)
            .ok_or_else(|| format!("the graph has no output {name}"))?;
        if shape != &[fixture.obs.len(), N_ACTIONS] {
            return Err(format!("output {name} has shape {shape:?}"));
        }
        for (g, w) in got.iter().zip(want.iter().flatten()) {
            let d = (g - w).abs();
            if d.is_nan() {
                return Ok(f32::NAN);
            }
            m = m.max(d);
        }
    }
    Ok(m)
}

/// Max |logit difference| of `w` against a parity fixture (NaN if any output is NaN).
pub fn max_abs_diff(w: &PolicyWeights, fixture: &ParityFixture) -> f32 {
    let mut m = 0.0f32;
    for (o, want) in fixture.obs.iter().zip(&fixture.logits) {
        let got = w.logits(o);
        for k in 0..N_ACTIONS {
            let d = (got[k] - want[k]).abs();
            if d.is_nan() {
                return f32::NAN;
            }
            m = m.max(d);
        }
    }
    m
}
