//! The training configuration: one declaration, three faces.
//!
//! `train_config!` declares every hyper-parameter once (doc comment, type, default). From that
//! single list it generates
//! * [`TrainConfig`], the resolved configuration (serialised into the run directory and into
//!   every checkpoint);
//! * [`ConfigOverrides`], the same fields as `Option`s, which is both the clap argument group of
//!   `trim train` (the doc comments become `--help`) and the serde schema of a TOML config file
//!   (unknown keys are rejected);
//! * [`TrainConfig::apply`], layering overrides on top of a configuration.
//!
//! Resolution order: defaults (the official TRIM-Agg release, reference §2.3) ← `--config FILE`
//! ← command-line flags. Values are then checked by [`TrainConfig::validate`] and, once the
//! dataset is loaded, by [`TrainConfig::validate_for_dataset`], so a bad value fails before any
//! training step.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::model::MAX_HIDDEN;

/// A config enum written as one of a fixed set of words: its `name`, `Display`, `FromStr`
/// (an unknown word is an error naming `$field` and the choices) and the `String`
/// conversions serde uses (`#[serde(into = "String", try_from = "String")]`).
macro_rules! word_enum {
    ($t:ident, $field:literal, [$($v:ident => $word:literal),+ $(,)?]) => {
        impl $t {
            /// The word that names this value in configs and on the command line.
            pub fn name(self) -> &'static str {
                match self {
                    $($t::$v => $word,)+
                }
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $t {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                match s.trim() {
                    $($word => Ok($t::$v),)+
                    other => Err(format!(
                        concat!($field, " `{}` is not one of: ", word_enum!(@list $($word),+)),
                        other
                    )),
                }
            }
        }

        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.name().into()
            }
        }

        impl TryFrom<String> for $t {
            type Error = String;

            fn try_from(s: String) -> Result<Self, String> {
                s.parse()
            }
        }
    };
    (@list $first:literal $(, $rest:literal)*) => { concat!($first $(, ", ", $rest)*) };
}

mod budget_range;
mod kernels;
mod lambda_range;
mod policy_kind;
mod test_data;
mod test_split;
pub use budget_range::{BudgetRange, MAX_BUDGET};
pub use kernels::Kernels;
pub use lambda_range::{LambdaRange, VALIDATION_GRID};
pub use policy_kind::PolicyKind;
pub use test_data::TestData;
pub use test_split::TestSplit;

/// Default training data: the paper's scale, 7500 MATH-train-like problems (a lazy synthetic
/// world of the shipped MATH-train profile, no regeneration cap), all in the `train` split.
pub const DEFAULT_DATA: &str = "synth:math-train?problems=7500&test_fraction=0";
/// Default test data: a MATH-500-like world (the profile fitted on the release's real TRIM-Thr
/// curve), 2000 problems — four MATH-500s, for confidence intervals half as wide.
pub const DEFAULT_TEST_DATA: &str = "synth:math500?problems=2000&test_fraction=1";

/// Report name of λ-conditioned TRIM-Agg.
pub const CONDITIONED_NAME: &str = "TRIM-Agg (λ-conditioned)";
/// Report name of λ-conditioned TRIM-Seq.
pub const SEQ_CONDITIONED_NAME: &str = "TRIM-Seq (λ-conditioned)";
/// Report name of budget-aware TRIM-Agg.
pub const BUDGETED_NAME: &str = "TRIM-Agg (budget-aware)";

/// Largest λ accepted. At λ = 1 one strong token already costs as much as a correct answer,
/// so every larger λ trains the same always-weak policy; far larger values overflow the f32
/// rewards of the environment (λ = 1e308 becomes `inf`) and train to NaN.
pub const MAX_LAMBDA: f64 = 1.0;
/// Largest `batch_episodes` / `minibatch_episodes`: the rollout buffer holds
/// `batch × episode length` steps; no dataset shipped or imported comes near 2^20 problems.
pub const MAX_BATCH_EPISODES: usize = 1 << 20;
/// Largest `update_epochs`: PPO uses 3–10 epochs per batch; thousands only re-fit one batch.
pub const MAX_UPDATE_EPOCHS: u32 = 1000;
/// Largest `passes`: the paper uses 10; 10^5 passes of the smallest dataset are days of work.
pub const MAX_PASSES: u32 = 100_000;

/// Name of the provenance table allowed (and ignored) in config files, so that a run's own
/// `config.toml` can be fed back with `--config`.
pub const PROVENANCE_TABLE: &str = "provenance";

macro_rules! train_config {
    ($( $(#[doc = $doc:literal])+ $name:ident : $ty:ty = $default:expr ;)+) => {
        /// A resolved training configuration (every field has a value).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default = "TrainConfig::recorded_default")]
        pub struct TrainConfig {
            $( $(#[doc = $doc])+ pub $name: $ty, )+
        }

        impl Default for TrainConfig {
            fn default() -> Self {
                TrainConfig { $( $name: $default, )+ }
            }
        }

        /// Optional values for every [`TrainConfig`] field: a TOML config file, or the
        /// `trim train` flags (`--lambda 8e-4` or `--lambda=8e-4`).
        #[derive(Clone, Debug, Default, clap::Args, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ConfigOverrides {
            $( $(#[doc = $doc])+ #[arg(long)] pub $name: Option<$ty>, )+
            /// Provenance written by `trim train` into a run's `config.toml`; ignored on input.
            #[arg(skip)]
            #[serde(default)]
            pub provenance: Option<toml::Table>,
        }

        impl TrainConfig {
            /// Replace every field that `o` sets.
            pub fn apply(&mut self, o: &ConfigOverrides) {
                $( if let Some(v) = &o.$name { self.$name = v.clone(); } )+
            }

            /// Names of the fields `o` sets.
            pub fn set_in(o: &ConfigOverrides) -> Vec<&'static str> {
                let mut v = vec![];
                $( if o.$name.is_some() { v.push(stringify!($name)); } )+
                v
            }

            /// Names of all fields, in declaration order.
            pub const FIELDS: &'static [&'static str] = &[$( stringify!($name), )+];
        }
    };
}

train_config! {
    /// Policy family: `agg` (TRIM-Agg, the MLP over 5 aggregated features) or `seq` (TRIM-Seq,
    /// a causal transformer over the per-step history). [default: agg]
    policy: PolicyKind = PolicyKind::Agg;
    /// Training data: a dataset file (.parquet or .jsonl) or a synth spec
    /// (`synth:PROFILE?key=value&…`, a world generated on demand; see data/docs/synth.md).
    /// [default: synth:math-train?problems=7500&test_fraction=0]
    data: PathBuf = PathBuf::from(DEFAULT_DATA);
    /// Split trained on; `val_fraction` of it is held out for validation. [default: train]
    train_split: String = "train".into();
    /// Split evaluated once at the end, for monitoring only; `none` skips it. A split the
    /// dataset does not have is refused. [default: test]
    test_split: TestSplit = TestSplit::Split("test".into());
    /// Where the test split is read from: a dataset file or synth spec, or `same` for the
    /// training data. [default: synth:math500?problems=2000&test_fraction=1]
    test_data: TestData = TestData::Other(PathBuf::from(DEFAULT_TEST_DATA));
    /// Cost per strong token λ: reward = 1{correct} − λ·(strong tokens); in [0, 1].
    /// [default: 8e-4]
    lambda: f64 = 8e-4;
    /// λ-conditioned TRIM-Agg or TRIM-Seq: `LO:HI` (for example `1e-5:1e-2`) makes log λ a policy input,
    /// each episode draws λ log-uniformly from the range and its reward uses it, and validation
    /// averages the greedy reward over 8 log-spaced λ of the range; `lambda` must lie inside
    /// (the run's summary reports at it). `off`: one policy for `lambda`. [default: off]
    lambda_range: LambdaRange = LambdaRange::Off;
    /// Budget-aware TRIM-Agg: `LO:HI` strong tokens (for example `100:800`) gives every episode
    /// a hard budget drawn uniformly from the range (`regenerate` masked once the strong step
    /// no longer fits), the remaining budget becomes a policy input, and validation averages
    /// the greedy reward over 8 budgets of the range. `off`: no budgets. [default: off]
    budget_range: BudgetRange = BudgetRange::Off;
    /// With `budget_range`: hindsight relabelling — every episode whose budget never masked a
    /// regenerate is added again under a larger budget from the range (its steps are the same
    /// under any larger budget; log-probabilities and values recomputed). [default: false]
    budget_relabel: bool = false;
    /// Seed of everything random: validation hold-out, problem order, tree and action sampling,
    /// initial weights. [default: 10]
    seed: u64 = 10;
    /// Passes over the training problems (the release's "epochs"), at most 100000.
    /// [default: 10]
    passes: u32 = 10;
    /// Episodes (problems, one sampled tree each) per PPO update. [default: 64]
    batch_episodes: usize = 64;
    /// Episodes per minibatch (capped at the batch); the batch is split along the episode axis.
    /// [default: 64]
    minibatch_episodes: usize = 64;
    /// PPO epochs over each batch, at most 1000. [default: 3]
    update_epochs: u32 = 3;
    /// Adam learning rate at the first update. [default: 3e-4]
    lr: f64 = 3e-4;
    /// Anneal the learning rate linearly to 0 over all updates. [default: true]
    anneal_lr: bool = true;
    /// Adam epsilon. [default: 1e-5]
    adam_eps: f64 = 1e-5;
    /// L2 weight decay added to the gradient (PyTorch Adam semantics). [default: 1e-5]
    weight_decay: f64 = 1e-5;
    /// Discount factor γ. [default: 1.0]
    gamma: f64 = 1.0;
    /// GAE λ. [default: 0.95]
    gae_lambda: f64 = 0.95;
    /// PPO surrogate clip range ε. [default: 0.2]
    clip_coef: f64 = 0.2;
    /// Value-loss clip range around the rollout value (0 disables value clipping). [default: 0.2]
    vf_clip: f64 = 0.2;
    /// Value-loss coefficient. [default: 0.5]
    vf_coef: f64 = 0.5;
    /// Entropy coefficient at the first update (annealed linearly). [default: 0.01]
    ent_coef_start: f64 = 0.01;
    /// Entropy coefficient at the last update. [default: 0.001]
    ent_coef_end: f64 = 0.001;
    /// Clip the global gradient norm to this value. [default: 0.5]
    max_grad_norm: f64 = 0.5;
    /// Normalise advantages over the valid steps of each batch. [default: true]
    norm_adv: bool = true;
    /// Width of every hidden layer of TRIM-Agg, at most 1024. [default: 64]
    hidden: usize = 64;
    /// TRIM-Seq model width (at most 128; `seq_heads` divides it). [default: 32]
    seq_dim: usize = 32;
    /// TRIM-Seq attention heads. [default: 2]
    seq_heads: usize = 2;
    /// TRIM-Seq transformer blocks, at most 8. [default: 2]
    seq_layers: usize = 2;
    /// TRIM-Seq feed-forward width, at most 512. [default: 64]
    seq_ff: usize = 64;
    /// Dropout after each hidden block during PPO updates. The release uses 0.1 but computes
    /// the rollout log-probs without dropout and the update's with it, so the PPO ratio is off
    /// even at the first epoch; 0 removes that mismatch. [default: 0.0]
    dropout: f64 = 0.0;
    /// How PPO updates are computed: `fused` (hand-written forward/backward/Adam, ~3× faster
    /// per gradient step; the MLP families without dropout), `burn` (burn's autodiff; every
    /// family), or `auto` (fused where it applies, burn otherwise). A run resumes with the
    /// kernels it started with; runs recorded before this option trained with burn.
    /// [default: auto]
    kernels: Kernels = Kernels::Auto;
    /// Fraction of the training split held out for greedy validation. [default: 0.1]
    val_fraction: f64 = 0.1;
    /// Validate (and maybe save `best/`) every N updates, and after the last. [default: 50]
    val_every: u64 = 50;
    /// Write a resumable checkpoint every N updates, and after the last. [default: 50]
    checkpoint_every: u64 = 50;
}

impl TrainConfig {
    /// Defaults ← optional TOML file ← command-line overrides.
    ///
    /// The default test data belongs to the default training data: a configuration that names
    /// its own `data` but no `test_data` tests on that data (`test_data = same`), never on a
    /// synthetic world it did not ask for.
    pub fn resolve(file: Option<&Path>, cli: &ConfigOverrides) -> Result<TrainConfig> {
        let mut layers = vec![];
        if let Some(path) = file {
            layers.push(ConfigOverrides::from_toml_file(path)?);
        }
        layers.push(cli.clone());
        Self::from_layers(&layers)
    }

    /// The defaults with `layers` applied in order (see [`TrainConfig::resolve`] for the
    /// test-data rule), validated.
    pub fn from_layers(layers: &[ConfigOverrides]) -> Result<TrainConfig> {
        let mut cfg = TrainConfig::default();
        for o in layers {
            cfg.apply(o);
        }
        let names_data = layers.iter().any(|o| o.data.is_some());
        if names_data && layers.iter().all(|o| o.test_data.is_none()) {
            cfg.test_data = TestData::SameAsData;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check every value that can be checked without the dataset: ranges of the numbers and
    /// the real limits of the sizes (the plain-Rust network's stack buffers hold
    /// [`MAX_HIDDEN`] units; see the other `MAX_*` constants), each error naming its field.
    pub fn validate(&self) -> Result<()> {
        self.validate_sizes()?;
        self.validate_numbers()?;
        if self.policy == PolicyKind::Seq {
            if let Err(e) = self.seq_shape().check() {
                return bad("seq_dim/seq_heads/seq_layers/seq_ff", e);
            }
            if self.dropout > 0.0 {
                return bad(
                    "dropout",
                    format!(
                        "{} with policy = seq: TRIM-Seq has no dropout; set 0",
                        self.dropout
                    ),
                );
            }
        }
        if let Err(e) = self.fused_kernels() {
            return bad("kernels", e);
        }
        if self.train_split.trim().is_empty() {
            return bad("train_split", "must name a split".into());
        }
        self.validate_lambda_range()
    }

    /// A conditioned range is for TRIM-Agg and must contain the run's `lambda`; a budget range
    /// is for TRIM-Agg, and not (yet) together with a λ range.
    fn validate_lambda_range(&self) -> Result<()> {
        if self.budget_relabel && self.budget_range.bounds().is_none() {
            return bad(
                "budget_relabel",
                "relabels budgets, so it needs budget_range".into(),
            );
        }
        if self.budget_range.bounds().is_some() {
            if self.policy != PolicyKind::Agg {
                return bad(
                    "budget_range",
                    format!(
                        "{} with policy = {}: budget-aware training is built for TRIM-Agg only",
                        self.budget_range, self.policy
                    ),
                );
            }
            if self.lambda_range.bounds().is_some() {
                return bad(
                    "budget_range",
                    "set together with lambda_range: a policy conditioned on both is not \
                     built yet; train one or the other"
                        .into(),
                );
            }
        }
        let Some((lo, hi)) = self.lambda_range.bounds() else {
            return Ok(());
        };
        if !self.lambda_range.contains(self.lambda) {
            return bad(
                "lambda",
                format!(
                    "{:e} is outside lambda_range {lo:e}:{hi:e}; a conditioned run reports its                      summary at `lambda`, so set one inside the range",
                    self.lambda
                ),
            );
        }
        Ok(())
    }

    /// Whether this run's updates use the fused kernels ([`Kernels::fused_for`]).
    pub fn fused_kernels(&self) -> std::result::Result<bool, String> {
        self.kernels.fused_for(self.policy, self.dropout)
    }

    /// The report name of the family this configuration trains (TRIM-Agg, TRIM-Seq, or
    /// [`CONDITIONED_NAME`] when `lambda_range` is set).
    pub fn family_display_name(&self) -> &'static str {
        if self.budget_range.bounds().is_some() {
            return BUDGETED_NAME;
        }
        match (self.lambda_range.bounds(), self.policy) {
            (Some(_), PolicyKind::Agg) => CONDITIONED_NAME,
            (Some(_), PolicyKind::Seq) => SEQ_CONDITIONED_NAME,
            (None, p) => p.display_name(),
        }
    }

    /// The TRIM-Seq network's sizes.
    pub fn seq_shape(&self) -> trim_router::SeqShape {
        trim_router::SeqShape {
            dim: self.seq_dim,
            heads: self.seq_heads,
            layers: self.seq_layers,
            ff: self.seq_ff,
            lambda_input: self.lambda_range.bounds().is_some(),
        }
    }

    fn validate_sizes(&self) -> Result<()> {
        let sizes: [(&str, u64, u64); 7] = [
            ("passes", self.passes.into(), MAX_PASSES.into()),
            (
                "batch_episodes",
                to_u64(self.batch_episodes),
                MAX_BATCH_EPISODES as u64,
            ),
            (
                "minibatch_episodes",
                to_u64(self.minibatch_episodes),
                MAX_BATCH_EPISODES as u64,
            ),
            (
                "update_epochs",
                self.update_epochs.into(),
                MAX_UPDATE_EPOCHS.into(),
            ),
            ("hidden", to_u64(self.hidden), MAX_HIDDEN as u64),
            ("val_every", self.val_every, u64::MAX),
            ("checkpoint_every", self.checkpoint_every, u64::MAX),
        ];
        for (name, v, max) in sizes {
            if v == 0 {
                return bad(name, "must be at least 1".into());
            }
            if v > max {
                return bad(name, format!("{v} is larger than the limit {max}"));
            }
        }
        Ok(())
    }

    fn validate_numbers(&self) -> Result<()> {
        if !self.lambda.is_finite() || !(0.0..=MAX_LAMBDA).contains(&self.lambda) {
            return bad(
                "lambda",
                format!(
                    "{:?} must be a finite number >= 0 and <= {MAX_LAMBDA} (cost per strong \
                     token; at {MAX_LAMBDA} one strong token costs a correct answer)",
                    self.lambda
                ),
            );
        }
        for (name, v) in [
            ("lr", self.lr),
            ("adam_eps", self.adam_eps),
            ("clip_coef", self.clip_coef),
            ("max_grad_norm", self.max_grad_norm),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return bad(name, format!("{v:?} must be > 0"));
            }
        }
        for (name, v) in [
            ("weight_decay", self.weight_decay),
            ("vf_clip", self.vf_clip),
            ("vf_coef", self.vf_coef),
            ("ent_coef_start", self.ent_coef_start),
            ("ent_coef_end", self.ent_coef_end),
        ] {
            if !v.is_finite() || v < 0.0 {
                return bad(name, format!("{v:?} must be >= 0"));
            }
        }
        for (name, v) in [("gamma", self.gamma), ("gae_lambda", self.gae_lambda)] {
            if !(0.0..=1.0).contains(&v) {
                return bad(name, format!("{v:?} must be in [0, 1]"));
            }
        }
        for (name, v) in [
            ("dropout", self.dropout),
            ("val_fraction", self.val_fraction),
        ] {
            if !(0.0..1.0).contains(&v) {
                return bad(name, format!("{v:?} must be in [0, 1)"));
            }
        }
        Ok(())
    }

    /// Checks that need the dataset: the training split exists and holds at least one batch of
    /// problems after the validation hold-out, and the test split (unless `none`) exists.
    /// `splits` are the dataset's split names with their problem counts.
    pub fn validate_for_dataset(
        &self,
        n_train: usize,
        n_val: usize,
        splits: &[(String, usize)],
        test_splits: &[(String, usize)],
    ) -> Result<()> {
        let listed = |splits: &[(String, usize)]| {
            splits
                .iter()
                .map(|(s, n)| format!("{s}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if n_train + n_val == 0 {
            return Err(TrainError::Config(format!(
                "train_split: no problems in split `{}` of {} (splits: {})",
                self.train_split,
                self.data.display(),
                listed(splits)
            )));
        }
        if let Some(t) = self.test_split.name()
            && t != "all"
            && !test_splits.iter().any(|(s, _)| s == t)
        {
            let test_data = self.test_data.path().unwrap_or(&self.data);
            return Err(TrainError::Config(format!(
                "test_split: {} has no split `{t}` (splits: {}); name one of them, or `{}` to \
                 skip the test evaluation",
                test_data.display(),
                listed(test_splits),
                TestSplit::NONE
            )));
        }
        if self.batch_episodes > n_train {
            return Err(TrainError::Config(format!(
                "batch_episodes: {} is larger than the {n_train} training problems of {} \
                 (split `{}` minus {n_val} held out for validation)",
                self.batch_episodes,
                self.data.display(),
                self.train_split
            )));
        }
        if self.val_fraction > 0.0 && n_val == 0 {
            return Err(TrainError::Config(format!(
                "val_fraction: {} of {} problems leaves no validation problem",
                self.val_fraction,
                n_train + n_val
            )));
        }
        Ok(())
    }

    /// The values of fields missing from a configuration recorded by an older version (a run's
    /// `config.toml`, a checkpoint): today's defaults, except that such a run tested on its
    /// training data (`test_data = same`), so resuming it changes nothing.
    pub fn recorded_default() -> Self {
        TrainConfig {
            test_data: TestData::SameAsData,
            kernels: Kernels::Burn,
            ..TrainConfig::default()
        }
    }

    /// Problems held out for validation out of `n` training-split problems.
    pub fn n_val(&self, n: usize) -> usize {
        if self.val_fraction <= 0.0 || n < 2 {
            return 0;
        }
        ((self.val_fraction * n as f64).round() as usize).clamp(1, n - 1)
    }

    /// Updates per pass over `n_train` problems (the last batch may be smaller).
    pub fn updates_per_pass(&self, n_train: usize) -> u64 {
        n_train.div_ceil(self.batch_episodes) as u64
    }

    /// Total updates of the schedule.
    pub fn total_updates(&self, n_train: usize) -> u64 {
        self.updates_per_pass(n_train) * u64::from(self.passes)
    }

    /// The configuration as a TOML document.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot serialise config: {e}\n"))
    }
}

/// A configuration error naming its field.
fn bad(field: &str, why: String) -> Result<()> {
    Err(TrainError::Config(format!("{field}: {why}")))
}

/// A size as u64 (saturating; usize is at most 64 bits on every supported target).
fn to_u64(v: usize) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

impl ConfigOverrides {
    /// Parse a TOML config file; unknown keys and wrong types are errors naming the file.
    pub fn from_toml_file(path: &Path) -> Result<ConfigOverrides> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TrainError::Config(format!("cannot read {}: {e}", path.display())))?;
        ConfigOverrides::from_toml_str(&text)
            .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))
    }

    /// Parse TOML text.
    pub fn from_toml_str(text: &str) -> std::result::Result<ConfigOverrides, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }
}

#[cfg(test)]
mod tests;
