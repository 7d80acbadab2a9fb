//! Policy families behind one seam.
//!
//! A family says what a policy observes, which network it trains, how that network is
//! initialised, how it acts outside burn, and how it is saved and exported. The PPO loop,
//! rollouts, checkpoints and evaluation are written against [`Family`] only, so a new family
//! (TRIM-Seq, λ-conditioned, budget-aware) is a new module here rather than an edit of the loop.
//! Families that are solved rather than trained (TRIM-POMDP) implement `trim_env::Policy` for
//! evaluation and the router's export contract, not this trait.
//!
//! | family | observes | network | module |
//! |---|---|---|---|
//! | TRIM-Agg | the 5 aggregated features ([`trim_env::StepView::agg`]) | MLP actor-critic | [`agg`] |
//! | TRIM-Seq | the kept steps and the candidate as tokens ([`trim_router::seq::write_row`]) | causal transformer actor-critic | [`seq`] |
//!
//! The rest of a family's life goes through the same name: checkpoints record
//! [`Family::NAME`] and refuse to load as another family ([`crate::checkpoint::load_as`]);
//! [`crate::export::export`] picks the family's exporter from the checkpoint; and
//! `trim-router` serves an export by its `architecture.kind` (TRIM-Agg:
//! `trim_router::agg::KIND`), refusing kinds it does not know.

pub mod agg;
pub mod agg_budget;
pub mod agg_lambda;
pub mod rows;
pub mod seq;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use trim_env::{Policy, Rng, StepView};
use trim_router::agg_rows::RowsScratch;

use crate::config::TrainConfig;

/// A burn actor-critic network trained by PPO: logits over `[continue, regenerate]` and a
/// state value for each observation row.
pub trait TrainNet: Module + Clone + Send + std::fmt::Debug {
    /// Per-forward random state of training mode (dropout masks); `()` when there is none.
    type Dropout;

    /// Draw this forward's dropout state for `n` rows with drop probability `p` (0 < p < 1).
    fn sample_dropout(&self, n: usize, p: f64, rng: &mut Rng, device: &Device) -> Self::Dropout;

    /// Raw logits and values.
    ///
    /// # Shapes
    /// `obs: [n, obs_dim]` → `(logits: [n, 2], value: [n])`
    fn forward(&self, obs: Tensor<2>, drop: Option<&Self::Dropout>) -> (Tensor<2>, Tensor<1>);

    /// The network's parameters for the fused kernels ([`crate::fused`]); `None` for a family
    /// they do not cover (TRIM-Seq), which then always trains through burn.
    fn fused_params(&self) -> Option<Result<crate::fused::AggParams, String>> {
        None
    }

    /// This network with the fused kernels' parameters `p` written in (called only for a
    /// network whose [`fused_params`](Self::fused_params) is `Some`; a family without fused
    /// kernels keeps its network).
    fn with_fused_params(&self, p: &crate::fused::AggParams) -> Self {
        let _ = p;
        self.clone()
    }
}

/// The plain-Rust copy of a network that rollouts, greedy evaluation and the router run: the
/// same arithmetic as [`TrainNet::forward`] without tensors (eval mode).
pub trait ActingNet: Clone + Send + Sync {
    /// Masked action log-probabilities `[continue, regenerate]` and the value of one
    /// observation row; a masked action has log-probability ≈ −1e9 (probability 0).
    fn log_probs(&self, obs: &[f32], mask: [bool; 2]) -> ([f32; 2], f32);

    /// [`log_probs`](Self::log_probs) of every row of `obs` (one row per entry of `alive`;
    /// row `i`'s mask is `mask[2i..2i + 2]`), into `out` (cleared first). Rows that are not
    /// alive get an unspecified entry. Each live row's result must have the bits `log_probs`
    /// gives for it alone: rollouts use this, greedy evaluation and the router the one-row
    /// path. The default plays the rows one at a time.
    fn log_probs_rows(
        &self,
        obs: &[f32],
        mask: &[bool],
        alive: &[bool],
        _scratch: &mut RowsScratch,
        out: &mut Vec<([f32; 2], f32)>,
    ) {
        out.clear();
        let d = obs.len() / alive.len().max(1);
        out.extend(alive.iter().enumerate().map(|(i, &live)| match live {
            true => self.log_probs(&obs[i * d..(i + 1) * d], [mask[2 * i], mask[2 * i + 1]]),
            false => ([0.0; 2], 0.0),
        }));
    }

    /// Every parameter with its name and shape (the divergence guard checks them; exports
    /// write them).
    fn named_params(&self) -> Vec<(String, Vec<usize>, &[f32])>;

    /// Relative cost of one [`log_probs_rows`](Self::log_probs_rows) call on `live` live rows,
    /// in units of one row alone: where a rollout cuts a step's rows in two for two cores
    /// ([`crate::ppo::rows_pair`]). The default plays rows one at a time: linear.
    fn rows_cost(&self, live: usize) -> usize {
        live
    }
}

/// Largest observation row a family may declare (rows live in stack buffers when acting).
pub const MAX_OBS_DIM: usize = 256;

/// One trainable policy family.
pub trait Family: Send + Sync + 'static {
    /// Stable name, written into checkpoints and run summaries (`agg`, …).
    const NAME: &'static str;
    /// Width of one observation row.
    const OBS_DIM: usize;
    /// Whether the policy takes λ as an input ([`StepView::cond`]): episodes then draw λ from
    /// the run's `lambda_range`, and greedy evaluation names the λ to act at.
    const CONDITIONED: bool = false;
    /// Whether the policy takes the episode's remaining strong-token budget as inputs
    /// ([`StepView::cond`]): training episodes then draw a budget from the run's
    /// `budget_range`, and a decision without a budget is refused at serving time.
    const BUDGETED: bool = false;
    /// The trained network.
    type Net: TrainNet;
    /// Its plain-Rust acting copy.
    type Acting: ActingNet;

    /// Write the observation row of one decision into `out` (`OBS_DIM` long).
    fn observe(view: &StepView<'_>, out: &mut [f32]);

    /// Whether [`observe`](Self::observe) reads `view.history` (the env then records it).
    fn needs_history() -> bool {
        false
    }

    /// A freshly initialised network shaped by `cfg` (`hidden`, or the `seq_*` sizes), weights
    /// drawn from `rng` (never from burn's device RNG, so initial weights are the same on every
    /// backend). Fails only for sizes the acting network cannot run.
    fn init(cfg: &TrainConfig, rng: &mut Rng, device: &Device) -> Result<Self::Net, String>;

    /// Copy the network into its acting form.
    fn acting(net: &Self::Net) -> Result<Self::Acting, String>;

    /// The acting form straight from the fused kernels' parameters (what a run with the fused
    /// kernels acts with after every update, without going through burn); `None` for a family
    /// without fused kernels.
    fn acting_from_fused(p: &crate::fused::AggParams) -> Option<Result<Self::Acting, String>> {
        let _ = p;
        None
    }
}

/// Greedy acting for any family: observe, then take the more probable available action (ties go
/// to `continue`, like `torch.argmax`). A conditioned family acts at the λ given by
/// [`at_lambda`](Self::at_lambda) (the episode's own condition otherwise).
pub struct GreedyOf<'a, F: Family> {
    acting: &'a F::Acting,
    lambda: Option<f32>,
}

impl<'a, F: Family> GreedyOf<'a, F> {
    /// Greedy acting of `acting`.
    pub fn new(acting: &'a F::Acting) -> Self {
        GreedyOf {
            acting,
            lambda: None,
        }
    }

    /// Act as if every episode were conditioned on `lambda` (for conditioned families; the
    /// episode's budget, if any, is still the episode's own).
    pub fn at_lambda(mut self, lambda: f64) -> Self {
        self.lambda = Some(lambda as f32);
        self
    }
}

impl<F: Family> Policy for GreedyOf<'_, F> {
    fn act(&self, view: &StepView<'_>, mask: [bool; 2], _rng: &mut Rng) -> trim_env::Action {
        rows::act_alone(self, view, mask)
    }

    fn wants_history(&self) -> bool {
        F::needs_history()
    }
}
