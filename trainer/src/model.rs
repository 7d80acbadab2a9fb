//! The TRIM-Agg actor-critic, exactly shaped as the official release (reference §2.3), and a
//! plain-Rust copy of it for acting.
//!
//! ```text
//! obs [n,5] ─ Linear 5→h ─ LN ─ tanh ─(drop)─ Linear h→h ─ LN ─ tanh ─(drop)─┬─ actor  ─ Linear h→h ─ LN ─ tanh ─(drop)─ Linear h→2 ─ logits
//!                                 shared trunk                                └─ critic ─ Linear h→h ─ LN ─ tanh ─(drop)─ Linear h→1 ─ value
//! ```
//!
//! Initialisation as in the release: orthogonal weights with gain √2 in the trunk, 0.01 in the
//! actor head and 1.0 in the critic head, zero biases, LayerNorm γ = 1, β = 0. The orthogonal
//! matrices are drawn from the run's own [`Rng`] (not burn's device RNG) so initial weights are
//! identical on every backend and reproducible from the seed alone.
//!
//! Masked actions: logits of unavailable actions are replaced by [`MASKED_LOGIT`] (−1e9) before
//! the softmax. exp(−1e9 − max) is exactly 0 in f32, so a masked action has zero probability,
//! while `p·log p` stays `0·(finite) = 0` (a true −∞ would give NaN entropies and gradients).
//!
//! Inputs are the env's TRIM-Agg features as emitted (already in [0, 1]-like ranges); no feature
//! normalisation is applied, so checkpoints carry none.
//!
//! Acting does not go through burn: after each update the weights are copied into
//! [`PolicyWeights`] (`trim_router::AggNet`, ≈ 13 k floats), whose forward pass is the same
//! arithmetic in plain Rust — the very code a deployed router runs. Rollouts and greedy
//! evaluation then cost no tensor dispatch, run on rayon through `trim_env::evaluate`, and are
//! identical on every backend. A test checks that both forward passes agree.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{log_softmax, sigmoid, softmax};
use burn::tensor::{Bool, Device, Tensor, TensorData};
use trim_env::{AGG_DIM, Rng};

/// The plain-Rust acting network (the TRIM-Agg net of `trim-router`), under the name the
/// training code uses for it.
pub use trim_router::AggNet as PolicyWeights;
use trim_router::agg::{DENSE_NAMES, NORM_NAMES};
pub use trim_router::mlp::{LN_EPS, MASKED_LOGIT, masked_log_softmax, tanh_f32};
pub use trim_router::{MAX_HIDDEN, N_ACTIONS, sample_action};

/// Orthogonal-init gain of the shared trunk.
pub const GAIN_TRUNK: f64 = std::f64::consts::SQRT_2;
/// Orthogonal-init gain of the actor head (small: near-uniform initial policy).
pub const GAIN_ACTOR: f64 = 0.01;
/// Orthogonal-init gain of the critic head.
pub const GAIN_CRITIC: f64 = 1.0;

/// The actor-critic network.
#[derive(Module, Debug)]
pub struct ActorCritic {
    trunk1: Linear,
    trunk_ln1: LayerNorm,
    trunk2: Linear,
    trunk_ln2: LayerNorm,
    actor1: Linear,
    actor_ln: LayerNorm,
    actor_out: Linear,
    critic1: Linear,
    critic_ln: LayerNorm,
    critic_out: Linear,
}

/// Dropout masks for one forward pass, one per hidden block: entries are 0 (dropped) or
/// 1/(1−p) (kept, rescaled). Drawn from the run's [`Rng`] so a resumed run replays them.
///
/// # Shapes
/// each `[n, hidden]`
pub struct DropoutMasks {
    pub trunk1: Tensor<2>,
    pub trunk2: Tensor<2>,
    pub actor: Tensor<2>,
    pub critic: Tensor<2>,
}

impl DropoutMasks {
    /// Draw masks for `n` rows with drop probability `p` (0 < p < 1).
    pub fn sample(n: usize, hidden: usize, p: f64, rng: &mut Rng, device: &Device) -> Self {
        let keep = (1.0 / (1.0 - p)) as f32;
        let mut one = || {
            let v: Vec<f32> = (0..n * hidden)
                .map(|_| if rng.f64() < p { 0.0 } else { keep })
                .collect();
            Tensor::<2>::from_data(TensorData::new(v, [n, hidden]), device)
        };
        DropoutMasks {
            trunk1: one(),
            trunk2: one(),
            actor: one(),
            critic: one(),
        }
    }
}

/// A `[rows, cols]` matrix with orthonormal rows (rows ≤ cols) or columns (rows ≥ cols) times
/// `gain`, drawn like `torch.nn.init.orthogonal_`: QR of a Gaussian matrix with the signs fixed
/// so that R has a positive diagonal (Gram–Schmidt gives that directly). Row-major.
pub fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut Rng) -> Vec<f64> {
    let (m, n) = (rows.max(cols), rows.min(cols));
    // n column vectors of length m.
    let mut q: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..m).map(|_| rng.normal()).collect())
        .collect();
    for j in 0..n {
        // Modified Gram–Schmidt, twice for numerical orthogonality.
        for _ in 0..2 {
            for i in 0..j {
                let (done, rest) = q.split_at_mut(j);
                let d: f64 = done[i].iter().zip(&rest[0]).map(|(a, b)| a * b).sum();
                for (x, y) in rest[0].iter_mut().zip(&done[i]) {
                    *x -= d * y;
                }
            }
        }
        let norm = q[j].iter().map(|x| x * x).sum::<f64>().sqrt();
        for x in &mut q[j] {
            *x /= norm;
        }
    }
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            // rows ≥ cols: Q itself (m = rows, column c); otherwise Qᵀ (column r, entry c).
            out[r * cols + c] = gain * if rows >= cols { q[c][r] } else { q[r][c] };
        }
    }
    out
}

/// A burn `Linear` with orthogonal weight and zero bias. burn stores `[in, out]`, PyTorch
/// `[out, in]`: the orthogonal matrix is drawn in PyTorch's shape and transposed.
pub(crate) fn linear(
    d_in: usize,
    d_out: usize,
    gain: f64,
    rng: &mut Rng,
    device: &Device,
) -> Linear {
    let w = orthogonal(d_out, d_in, gain, rng);
    let mut wt = vec![0.0f32; d_in * d_out];
    for o in 0..d_out {
        for i in 0..d_in {
            wt[i * d_out + o] = w[o * d_in + i] as f32;
        }
    }
    Linear {
        weight: Param::from_data(TensorData::new(wt, [d_in, d_out]), device),
        bias: Some(Param::from_data(
            TensorData::new(vec![0.0f32; d_out], [d_out]),
            device,
        )),
    }
}

impl ActorCritic {
    /// A freshly initialised TRIM-Agg network of width `hidden`, weights drawn from `rng`.
    pub fn new(hidden: usize, rng: &mut Rng, device: &Device) -> Self {
        Self::with_input(AGG_DIM, hidden, rng, device)
    }

    /// [`new`](Self::new) taking `input_dim` inputs (`AGG_DIM + 1` with the λ input).
    pub fn with_input(input_dim: usize, hidden: usize, rng: &mut Rng, device: &Device) -> Self {
        let ln = || {
            LayerNormConfig::new(hidden)
                .with_epsilon(LN_EPS)
                .init(device)
        };
        ActorCritic {
            trunk1: linear(input_dim, hidden, GAIN_TRUNK, rng, device),
            trunk_ln1: ln(),
            trunk2: linear(hidden, hidden, GAIN_TRUNK, rng, device),
            trunk_ln2: ln(),
            actor1: linear(hidden, hidden, GAIN_ACTOR, rng, device),
            actor_ln: ln(),
            actor_out: linear(hidden, N_ACTIONS, GAIN_ACTOR, rng, device),
            critic1: linear(hidden, hidden, GAIN_CRITIC, rng, device),
            critic_ln: ln(),
            critic_out: linear(hidden, 1, GAIN_CRITIC, rng, device),
        }
    }

    /// Raw logits and state values.
    ///
    /// # Shapes
    /// `obs: [n, input_dim]` (5, or 6 with the λ input) → `(logits: [n, 2], value: [n])`
    pub fn forward(&self, obs: Tensor<2>, drop: Option<&DropoutMasks>) -> (Tensor<2>, Tensor<1>) {
        let maybe = |x: Tensor<2>, m: Option<&Tensor<2>>| match m {
            Some(m) => x * m.clone(),
            None => x,
        };
        let h = tanh(self.trunk_ln1.forward(self.trunk1.forward(obs)));
        let h = maybe(h, drop.map(|d| &d.trunk1));
        let h = tanh(self.trunk_ln2.forward(self.trunk2.forward(h)));
        let h = maybe(h, drop.map(|d| &d.trunk2));
        let a = tanh(self.actor_ln.forward(self.actor1.forward(h.clone())));
        let a = maybe(a, drop.map(|d| &d.actor));
        let logits = self.actor_out.forward(a);
        let c = tanh(self.critic_ln.forward(self.critic1.forward(h)));
        let c = maybe(c, drop.map(|d| &d.critic));
        let value = self.critic_out.forward(c).squeeze_dim::<1>(1);
        (logits, value)
    }

    /// Hidden width (burn stores Linear weights `[in, out]`).
    pub fn hidden(&self) -> usize {
        self.trunk1.weight.val().dims()[1]
    }

    /// Width of an input row.
    pub fn input_dim(&self) -> usize {
        self.trunk1.weight.val().dims()[0]
    }

    /// Copy the weights into the plain-Rust acting network.
    ///
    /// Widths are validated before a network is built (`TrainConfig::validate` and checkpoint
    /// loading refuse `hidden > MAX_HIDDEN`), so the copy cannot fail for a network this crate
    /// made; [`try_weights`](Self::try_weights) is the checked form.
    pub fn weights(&self) -> PolicyWeights {
        self.try_weights()
            .expect("network widths are validated against MAX_HIDDEN before construction")
    }

    /// Copy the weights into the plain-Rust acting network (PyTorch layout: burn's Linear
    /// weights are `[in, out]` and are transposed here). Fails for a width the plain-Rust
    /// network refuses (see `trim_router::MAX_HIDDEN`).
    pub fn try_weights(&self) -> Result<PolicyWeights, String> {
        let mut params = self.torch_params();
        PolicyWeights::from_named_params(
            self.input_dim(),
            self.hidden(),
            |e| e,
            |name, _| params.take(name),
        )
    }

    /// Every parameter by PyTorch name and layout (what the fused kernels start from).
    pub(crate) fn torch_params(&self) -> TorchParams {
        let mut params = TorchParams::default();
        for (name, l) in self.linears() {
            params.linear(name, l);
        }
        for (name, l) in self.norms() {
            params.norm(name, l);
        }
        params
    }

    /// This network with every parameter replaced by the fused kernels' copy `p` (PyTorch
    /// layout, as [`Self::torch_params`] gives it; exact, f32 for f32), parameter ids kept, so
    /// checkpoints, acting copies and exports of a fused run read it like any other.
    pub(crate) fn with_params(&self, p: &crate::fused::AggParams) -> Self {
        fn set<const D: usize>(param: &Param<Tensor<D>>, data: TensorData) -> Param<Tensor<D>> {
            param
                .clone()
                .map(|old| Tensor::from_data(data, &old.device()))
        }
        let dense = |l: &Linear, d: &crate::fused::mlp::DenseP| {
            let mut wt = vec![0.0f32; d.d_in * d.d_out];
            for o in 0..d.d_out {
                for i in 0..d.d_in {
                    wt[i * d.d_out + o] = d.w[o * d.d_in + i];
                }
            }
            Linear {
                weight: set(&l.weight, TensorData::new(wt, [d.d_in, d.d_out])),
                bias: (l.bias.as_ref()).map(|b| set(b, TensorData::new(d.b.clone(), [d.d_out]))),
            }
        };
        let norm = |l: &LayerNorm, n: &crate::fused::mlp::NormP| {
            let mut out = l.clone();
            out.gamma = set(&l.gamma, TensorData::new(n.gamma.clone(), [n.gamma.len()]));
            out.beta =
                (l.beta.as_ref()).map(|b| set(b, TensorData::new(n.beta.clone(), [n.beta.len()])));
            out
        };
        let (d, n) = (&p.dense, &p.norm);
        ActorCritic {
            trunk1: dense(&self.trunk1, &d[0]),
            trunk_ln1: norm(&self.trunk_ln1, &n[0]),
            trunk2: dense(&self.trunk2, &d[1]),
            trunk_ln2: norm(&self.trunk_ln2, &n[1]),
            actor1: dense(&self.actor1, &d[2]),
            actor_ln: norm(&self.actor_ln, &n[2]),
            actor_out: dense(&self.actor_out, &d[3]),
            critic1: dense(&self.critic1, &d[4]),
            critic_ln: norm(&self.critic_ln, &n[3]),
            critic_out: dense(&self.critic_out, &d[5]),
        }
    }

    /// The gradients of every parameter in `grads`, by PyTorch name and layout (zeros for a
    /// parameter without one).
    #[cfg(test)]
    pub(crate) fn torch_grads(&self, grads: &burn::optim::GradientsParams) -> TorchParams {
        let mut out = TorchParams::default();
        let grad2 =
            |p: &Param<Tensor<2>>| grads.get::<2>(p.id).unwrap_or_else(|| p.val().zeros_like());
        let grad1 =
            |p: &Param<Tensor<1>>| grads.get::<1>(p.id).unwrap_or_else(|| p.val().zeros_like());
        for (name, l) in self.linears() {
            let g = Linear {
                weight: Param::from_tensor(grad2(&l.weight)),
                bias: l.bias.as_ref().map(|b| Param::from_tensor(grad1(b))),
            };
            out.linear(name, &g);
        }
        for (name, l) in self.norms() {
            let mut g = l.clone();
            g.gamma = Param::from_tensor(grad1(&l.gamma));
            g.beta = l.beta.as_ref().map(|b| Param::from_tensor(grad1(b)));
            out.norm(name, &g);
        }
        out
    }

    /// The dense layers named as the plain-Rust network names them.
    fn linears(&self) -> impl Iterator<Item = (&'static str, &Linear)> {
        let layers = [&self.trunk1, &self.trunk2, &self.actor1, &self.actor_out];
        let critic = [&self.critic1, &self.critic_out];
        DENSE_NAMES
            .into_iter()
            .zip(layers.into_iter().chain(critic))
    }

    /// The LayerNorms, named likewise.
    fn norms(&self) -> impl Iterator<Item = (&'static str, &LayerNorm)> {
        let norms = [
            &self.trunk_ln1,
            &self.trunk_ln2,
            &self.actor_ln,
            &self.critic_ln,
        ];
        NORM_NAMES.into_iter().zip(norms)
    }
}

/// Parameters of burn layers by name in PyTorch layout (`<name>.weight`, `<name>.bias`), collected
/// to build a plain-Rust acting network (burn stores Linear weights `[in, out]`; they are
/// transposed to `[out, in]` here).
#[derive(Default)]
pub(crate) struct TorchParams(std::collections::BTreeMap<String, Vec<f32>>);

impl TorchParams {
    /// A dense layer (a missing bias is zeros).
    pub(crate) fn linear(&mut self, name: &str, l: &Linear) {
        let w = l.weight.val();
        let [d_in, d_out] = w.dims();
        let w = to_vec(w.into_data());
        let mut wt = vec![0.0f32; d_in * d_out];
        for i in 0..d_in {
            for o in 0..d_out {
                wt[o * d_in + i] = w[i * d_out + o];
            }
        }
        let b = (l.bias.as_ref())
            .map(|b| to_vec(b.val().into_data()))
            .unwrap_or_else(|| vec![0.0; d_out]);
        self.0.insert(format!("{name}.weight"), wt);
        self.0.insert(format!("{name}.bias"), b);
    }

    /// A LayerNorm: γ as `weight`, β as `bias` (a missing β is zeros).
    pub(crate) fn norm(&mut self, name: &str, l: &LayerNorm) {
        let gamma = to_vec(l.gamma.val().into_data());
        let beta = (l.beta.as_ref())
            .map(|b| to_vec(b.val().into_data()))
            .unwrap_or_else(|| vec![0.0; gamma.len()]);
        self.0.insert(format!("{name}.weight"), gamma);
        self.0.insert(format!("{name}.bias"), beta);
    }

    /// Take one parameter out (for `from_named_params` builders).
    pub(crate) fn take(&mut self, name: &str) -> Result<Vec<f32>, String> {
        self.0
            .remove(name)
            .ok_or_else(|| format!("no parameter {name}"))
    }
}

/// tanh as `2·σ(2x) − 1`: mathematically tanh, but one `exp` per element where burn-flex calls
/// libm `tanhf` (which dominated the profile: half of all training time). The acting copy's
/// blocks use `trim_router::mlp::tanh_lanes` (a polynomial, within 2e-7 of tanh), so acting
/// and training agree to float rounding (checked by the forward-pass agreement test).
///
/// # Shapes
/// any `[n, d]` → `[n, d]`
pub fn tanh(x: Tensor<2>) -> Tensor<2> {
    sigmoid(x.mul_scalar(2.0)).mul_scalar(2.0).sub_scalar(1.0)
}

fn to_vec(d: TensorData) -> Vec<f32> {
    // Parameters are always f32 here; a conversion failure would be a burn bug.
    d.convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 parameter data")
}

/// Replace the logits of unavailable actions by [`MASKED_LOGIT`].
///
/// # Shapes
/// `logits: [n, 2]`, `mask: [n, 2]` (true = available) → `[n, 2]`
pub fn mask_logits(logits: Tensor<2>, mask: Tensor<2, Bool>) -> Tensor<2> {
    logits.mask_fill(mask.bool_not(), MASKED_LOGIT)
}

/// Log-probabilities and probabilities of masked logits.
///
/// # Shapes
/// `masked_logits: [n, 2]` → `(log_probs: [n, 2], probs: [n, 2])`
pub fn log_probs(masked_logits: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
    (
        log_softmax(masked_logits.clone(), 1),
        softmax(masked_logits, 1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use trim_env::AggObs;

    fn dev() -> Device {
        crate::backend::Backend::Flex.device().unwrap()
    }

    #[test]
    fn orthogonal_matrices_are_orthogonal_with_gain() {
        let mut rng = Rng::new(1);
        for (r, c, g) in [(64, 5, 2f64.sqrt()), (2, 64, 0.01), (64, 64, 1.0)] {
            let w = orthogonal(r, c, g, &mut rng);
            let (small, big_is_rows) = (r.min(c), r >= c);
            for i in 0..small {
                for j in 0..small {
                    let dot: f64 = (0..r.max(c))
                        .map(|k| {
                            if big_is_rows {
                                w[k * c + i] * w[k * c + j]
                            } else {
                                w[i * c + k] * w[j * c + k]
                            }
                        })
                        .sum();
                    let want = if i == j { g * g } else { 0.0 };
                    assert!((dot - want).abs() < 1e-9, "{r}x{c} ({i},{j}) {dot}");
                }
            }
        }
    }

    #[test]
    fn sigmoid_tanh_is_tanh() {
        let xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 / 100.0).collect();
        for &x in &xs {
            assert!((tanh_f32(x) - x.tanh()).abs() < 2e-7, "{x}");
        }
        let t = tanh(Tensor::<2>::from_data(
            TensorData::new(xs.clone(), [xs.len(), 1]),
            &dev(),
        ));
        for (x, y) in xs.iter().zip(to_vec(t.into_data())) {
            assert!((y - x.tanh()).abs() < 2e-7, "{x}");
        }
    }

    #[test]
    fn rust_forward_matches_burn_forward() {
        let d = dev();
        let net = ActorCritic::new(64, &mut Rng::new(3), &d);
        let w = net.weights();
        let mut rng = Rng::new(4);
        let obs: Vec<AggObs> = (0..9).map(|_| std::array::from_fn(|_| rng.f32())).collect();
        let flat: Vec<f32> = obs.iter().flatten().copied().collect();
        let (logits, value) = net.forward(
            Tensor::<2>::from_data(TensorData::new(flat, [9, AGG_DIM]), &d),
            None,
        );
        let logits = to_vec(logits.into_data());
        let value = to_vec(value.into_data());
        for (i, o) in obs.iter().enumerate() {
            let (l, v) = w.forward(o);
            assert!((l[0] - logits[2 * i]).abs() < 1e-5);
            assert!((l[1] - logits[2 * i + 1]).abs() < 1e-5);
            assert!((v - value[i]).abs() < 1e-4, "{v} vs {}", value[i]);
        }
        // Small actor gain: the initial policy is close to uniform.
        let (lp, _) = w.log_probs(&obs[0], [true, true]);
        assert!((lp[0].exp() - 0.5).abs() < 0.05, "{lp:?}");
    }

    #[test]
    fn masked_actions_get_zero_probability() {
        let d = dev();
        let logits = Tensor::<2>::from_data(
            TensorData::new(vec![5.0f32, -3.0, -2.0, 4.0, 0.3, 0.1], [3, 2]),
            &d,
        );
        let mask = Tensor::<2, Bool>::from_data(
            TensorData::new(vec![false, true, true, false, true, true], [3, 2]),
            &d,
        );
        let (lp, p) = log_probs(mask_logits(logits, mask));
        let (lp, p) = (to_vec(lp.into_data()), to_vec(p.into_data()));
        assert_eq!(p[0], 0.0);
        assert_eq!(p[1], 1.0);
        assert_eq!(lp[1], 0.0);
        assert_eq!(p[3], 0.0);
        assert_eq!(p[2], 1.0);
        assert!((p[4] - 1.0 / (1.0 + (-0.2f32).exp())).abs() < 1e-6);
        // Entropy term p·log p is finite (0, not NaN) for masked actions.
        let ent: f32 = p.iter().zip(&lp).map(|(p, l)| -p * l).sum();
        assert!(ent.is_finite());
        // The plain-Rust mirror masks the same way.
        let m = masked_log_softmax([5.0, -3.0], [false, true]);
        assert_eq!((m[1], m[0].exp()), (0.0, 0.0));
    }
}
