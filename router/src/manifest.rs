//! `policy.json`, the manifest of an export: what the network is, which features it takes and
//! how each is computed from the step history, what the actions mean, the decision rule, where
//! the policy came from, and the sha256 of every other file. Defined here, in the crate that
//! reads exports, so that `trim export` (the writer) and every reader share one schema.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use trim_env::features::{
    BUDGET_FEATURES, BUDGET_SCALE, LAMBDA_FEATURE, LAMBDA_LOG10_CENTER, LAMBDA_LOG10_HALF_WIDTH,
    STEP_SCALE, TOKEN_SCALE,
};
use trim_env::{AGG_DIM, AGG_FEATURES};

use crate::agg::{AggNet, KIND, N_ACTIONS};
use crate::mlp::LN_EPS;

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
/// Every file an export may list besides the manifest.
pub const FILES: [&str; 3] = [SAFETENSORS, ONNX, PARITY];
/// Default decision threshold on p(regenerate): 0.5 is the greedy (argmax) policy that
/// training validated and `best/` was selected with.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// The network's shape, enough to rebuild it from the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// Which network family: `trim-agg-actor-critic` ([`KIND`]).
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

/// The inputs a TRIM-Agg network takes after its 5 aggregated features.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExtraInputs {
    /// The λ input of a λ-conditioned network.
    pub lambda: bool,
    /// The two remaining-budget inputs of a budget-aware network.
    pub budget: bool,
}

impl ExtraInputs {
    /// Width of the network's input row.
    pub fn input_dim(self) -> usize {
        AGG_DIM + usize::from(self.lambda) + 2 * usize::from(self.budget)
    }
}

/// The feature list of a TRIM-Agg network in network order: the 5 aggregated features (what
/// `trim_env::features::FeatureState::observe` computes), then the λ input of a λ-conditioned
/// network (`trim_env::features::lambda_feature`) and the budget inputs of a budget-aware one
/// (`trim_env::features::budget_features`).
pub fn feature_specs(extra: ExtraInputs) -> Vec<FeatureSpec> {
    let mut v = agg_feature_specs();
    if extra.budget {
        let computed = [
            "strong tokens the request may still spend / its whole budget (1.0 at the first step)",
            "strong tokens the request may still spend / 1000",
        ];
        let norm = ["none".to_string(), format!("divide by {BUDGET_SCALE}")];
        for (k, name) in BUDGET_FEATURES.iter().enumerate() {
            v.push(FeatureSpec {
                index: v.len(),
                name: name.to_string(),
                computed: computed[k].into(),
                normalisation: norm[k].clone(),
            });
        }
    }
    if extra.lambda {
        v.push(FeatureSpec {
            index: AGG_DIM,
            name: LAMBDA_FEATURE.into(),
            computed: "the cost per strong token λ the caller asks the policy to act at (given \
                       with each decision; must lie in lambda_range)"
                .into(),
            normalisation: format!(
                "(log10(lambda) - ({LAMBDA_LOG10_CENTER})) / {LAMBDA_LOG10_HALF_WIDTH}"
            ),
        });
    }
    v
}

/// The names [`feature_specs`] gives, in order.
pub fn feature_names(extra: ExtraInputs) -> Vec<&'static str> {
    let mut v = AGG_FEATURES.to_vec();
    if extra.budget {
        v.extend(BUDGET_FEATURES);
    }
    if extra.lambda {
        v.push(LAMBDA_FEATURE);
    }
    v
}

fn agg_feature_specs() -> Vec<FeatureSpec> {
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
    /// Cost weight λ of the reward `accuracy − λ·strong tokens` the policy was trained for
    /// (for a λ-conditioned policy: the λ its training summary reports at).
    pub lambda: f64,
    /// `[lo, hi]` of a λ-conditioned policy: it takes λ as its last input and acts at the λ
    /// each decision names, which must lie in this range. Absent: no λ input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_range: Option<[f64; 2]>,
    /// `[lo, hi]` strong tokens of a budget-aware policy (the budgets it was trained on): it
    /// takes the request's remaining budget as inputs and refuses a decision without a budget.
    /// Absent: no budget inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_range: Option<[u64; 2]>,
    pub training: Training,
    /// The run's `summary.json` (validation/test evaluation), or null if it had none.
    pub evaluation: serde_json::Value,
    /// sha256 of every other file of the export, by file name.
    pub files: BTreeMap<String, String>,
    /// The operating point `trim calibrate` chose (absent until calibrated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

/// How `decision.default_threshold` was chosen by `trim calibrate`: the target, what the
/// policy achieved on the calibration traffic (with a 95 % bootstrap CI over problems), and the
/// traffic it was measured on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// `calls=0.2` (strong calls per decision), `cost=0.15` (strong tokens ÷ always-strong's)
    /// or `tokens=300` (strong tokens per problem).
    pub target: String,
    /// The threshold on p(regenerate) chosen (now `decision.default_threshold`).
    pub threshold: f32,
    /// For a λ-conditioned policy: the λ chosen (the threshold stays the export's), used by
    /// decisions that name no λ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    /// The threshold before calibration.
    pub previous_threshold: f32,
    /// The target's measure at `threshold` on the traffic, and its 95 % bootstrap CI.
    pub achieved: f64,
    pub ci95: [f64; 2],
    /// Accuracy at `threshold` on the traffic (when the traffic has outcomes), with its CI.
    pub accuracy: f64,
    pub accuracy_ci95: [f64; 2],
    /// The measure's range over all thresholds (what targets are feasible).
    pub feasible: [f64; 2],
    /// The traffic: dataset path or synth spec, its sha256 or world fingerprint, the split.
    pub traffic: String,
    pub traffic_sha256: String,
    pub split: String,
    pub problems: usize,
    pub trim_version: String,
}

impl Manifest {
    /// The inputs the network takes after the 5 aggregated features.
    pub fn extra_inputs(&self) -> ExtraInputs {
        ExtraInputs {
            lambda: self.lambda_range.is_some(),
            budget: self.budget_range.is_some(),
        }
    }

    /// Check what a reader relies on beyond the schema: features and scales this build
    /// computes, the architecture kind and sizes, a decision threshold in `[0, 1]`, a finite
    /// λ ≥ 0, and only known files. Returns the reason of the first failure.
    pub fn check(&self) -> Result<(), String> {
        if let Some([lo, hi]) = self.lambda_range
            && !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo < hi)
        {
            return Err(format!(
                "lambda_range [{lo}, {hi}] is not a range 0 < lo < hi"
            ));
        }
        if let Some([lo, hi]) = self.budget_range
            && lo >= hi
        {
            return Err(format!("budget_range [{lo}, {hi}] is not a range lo < hi"));
        }
        if self.lambda_range.is_some() && self.budget_range.is_some() {
            return Err("lambda_range and budget_range together: no such network is built".into());
        }
        let names: Vec<&str> = self.features.iter().map(|f| f.name.as_str()).collect();
        let want = feature_names(self.extra_inputs());
        if names != want || self.token_scale != TOKEN_SCALE || self.step_scale != STEP_SCALE {
            return Err(format!(
                "features {names:?} (scales {}/{}) do not match this build's {want:?} ({TOKEN_SCALE}/{STEP_SCALE})",
                self.token_scale, self.step_scale
            ));
        }
        let a = &self.architecture;
        if a.kind != KIND {
            return Err(format!(
                "architecture.kind {:?} is not one this router serves ({KIND:?})",
                a.kind
            ));
        }
        if a.input_dim != want.len() || a.n_actions != N_ACTIONS {
            return Err(format!(
                "architecture takes {} inputs and has {} actions, expected {} and {N_ACTIONS}",
                a.input_dim,
                a.n_actions,
                want.len()
            ));
        }
        let t = self.decision.default_threshold;
        if !(0.0..=1.0).contains(&t) {
            return Err(format!(
                "decision.default_threshold {t} is not a probability in [0, 1]"
            ));
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(format!("lambda {} is not a finite cost >= 0", self.lambda));
        }
        if let Some(f) = self.files.keys().find(|f| !FILES.contains(&f.as_str())) {
            return Err(format!("files lists unknown file {f}"));
        }
        Ok(())
    }
}

/// The architecture description of a TRIM-Agg network.
pub fn architecture(w: &AggNet) -> Architecture {
    Architecture {
        kind: KIND.into(),
        input_dim: w.input_dim(),
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
