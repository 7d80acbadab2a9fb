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
//! [`PolicyWeights`] (≈ 13 k floats), whose forward pass is the same arithmetic in plain Rust.
//! Rollouts and greedy evaluation then cost no tensor dispatch, run on rayon through
//! `trim_env::evaluate`, and are identical on every backend. A test checks that both forward
//! passes agree.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{log_softmax, sigmoid, softmax};
use burn::tensor::{Bool, Device, Tensor, TensorData};
use trim_env::{AGG_DIM, Action, AggObs, Policy, Rng};

/// Number of actions: 0 = continue, 1 = regenerate.
pub const N_ACTIONS: usize = 2;
/// The "−∞-equivalent" logit of a masked action (see the module docs).
pub const MASKED_LOGIT: f32 = -1e9;
/// LayerNorm epsilon (PyTorch's default, as in the release).
pub const LN_EPS: f64 = 1e-5;

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
fn linear(d_in: usize, d_out: usize, gain: f64, rng: &mut Rng, device: &Device) -> Linear {
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
    /// A freshly initialised network of width `hidden`, weights drawn from `rng`.
    pub fn new(hidden: usize, rng: &mut Rng, device: &Device) -> Self {
        let ln = || {
            LayerNormConfig::new(hidden)
                .with_epsilon(LN_EPS)
                .init(device)
        };
        ActorCritic {
            trunk1: linear(AGG_DIM, hidden, GAIN_TRUNK, rng, device),
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
    /// `obs: [n, 5]` → `(logits: [n, 2], value: [n])`
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

    /// Copy the weights into the plain-Rust acting network.
    pub fn weights(&self) -> PolicyWeights {
        let lin = |l: &Linear| -> DenseLayer {
            let w = l.weight.val();
            let [d_in, d_out] = w.dims();
            let w = to_vec(w.into_data());
            let mut wt = vec![0.0f32; d_in * d_out];
            for i in 0..d_in {
                for o in 0..d_out {
                    wt[o * d_in + i] = w[i * d_out + o];
                }
            }
            let b = l
                .bias
                .as_ref()
                .map(|b| to_vec(b.val().into_data()))
                .unwrap_or_else(|| vec![0.0; d_out]);
            DenseLayer {
                d_in,
                d_out,
                w: wt,
                b,
            }
        };
        let ln = |l: &LayerNorm| -> NormLayer {
            NormLayer {
                gamma: to_vec(l.gamma.val().into_data()),
                beta: l
                    .beta
                    .as_ref()
                    .map(|b| to_vec(b.val().into_data()))
                    .unwrap_or_else(|| vec![0.0; l.gamma.val().dims()[0]]),
            }
        };
        PolicyWeights {
            trunk1: lin(&self.trunk1),
            trunk_ln1: ln(&self.trunk_ln1),
            trunk2: lin(&self.trunk2),
            trunk_ln2: ln(&self.trunk_ln2),
            actor1: lin(&self.actor1),
            actor_ln: ln(&self.actor_ln),
            actor_out: lin(&self.actor_out),
            critic1: lin(&self.critic1),
            critic_ln: ln(&self.critic_ln),
            critic_out: lin(&self.critic_out),
        }
    }
}

/// tanh as `2·σ(2x) − 1`: mathematically tanh, but one `exp` per element where burn-flex calls
/// libm `tanhf` (which dominated the profile: half of all training time). Same arithmetic as
/// [`tanh_f32`], so acting and training agree.
///
/// # Shapes
/// any `[n, d]` → `[n, d]`
pub fn tanh(x: Tensor<2>) -> Tensor<2> {
    sigmoid(x.mul_scalar(2.0)).mul_scalar(2.0).sub_scalar(1.0)
}

/// Scalar twin of [`tanh`], with the branch burn-flex's sigmoid uses.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let z = 2.0 * x;
    let s = if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    };
    2.0 * s - 1.0
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

/// One dense layer, weights `[out][in]` row-major so each output is a contiguous dot product.
#[derive(Clone, Debug, PartialEq)]
struct DenseLayer {
    d_in: usize,
    d_out: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

impl DenseLayer {
    #[inline]
    fn forward(&self, x: &[f32], y: &mut [f32]) {
        for (o, yo) in y.iter_mut().enumerate().take(self.d_out) {
            let row = &self.w[o * self.d_in..(o + 1) * self.d_in];
            *yo = self.b[o] + dot(row, x);
        }
    }
}

/// Dot product with 8 independent accumulators, which the compiler vectorises (a plain
/// `sum()` is a serial chain: f32 addition is not reassociated).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[derive(Clone, Debug, PartialEq)]
struct NormLayer {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl NormLayer {
    /// LayerNorm (biased variance, ε inside the root, like burn and PyTorch) then [`tanh_f32`],
    /// in place.
    #[inline]
    fn forward_tanh(&self, x: &mut [f32]) {
        let n = x.len() as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let denom = (var + LN_EPS as f32).sqrt();
        for ((v, g), b) in x.iter_mut().zip(&self.gamma).zip(&self.beta) {
            *v = tanh_f32((*v - mean) / denom * g + b);
        }
    }
}

/// The network's weights as plain arrays: a `Send + Sync` policy for acting (rollouts, greedy
/// evaluation) without tensors. Eval mode: no dropout.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyWeights {
    trunk1: DenseLayer,
    trunk_ln1: NormLayer,
    trunk2: DenseLayer,
    trunk_ln2: NormLayer,
    actor1: DenseLayer,
    actor_ln: NormLayer,
    actor_out: DenseLayer,
    critic1: DenseLayer,
    critic_ln: NormLayer,
    critic_out: DenseLayer,
}

/// Largest hidden width the stack buffers of [`PolicyWeights::forward`] hold.
pub const MAX_HIDDEN: usize = 1024;

impl PolicyWeights {
    /// Hidden width.
    pub fn hidden(&self) -> usize {
        self.trunk1.d_out
    }

    /// Raw (unmasked) logits and value of one observation.
    pub fn forward(&self, obs: &AggObs) -> ([f32; N_ACTIONS], f32) {
        let h = self.hidden();
        debug_assert!(h <= MAX_HIDDEN);
        let mut a = [0.0f32; MAX_HIDDEN];
        let mut b = [0.0f32; MAX_HIDDEN];
        let mut c = [0.0f32; MAX_HIDDEN];
        let logits = self.trunk_actor(obs, &mut a, &mut b);
        // critic, from the trunk output left in `b`
        self.critic1.forward(&b[..h], &mut c[..h]);
        self.critic_ln.forward_tanh(&mut c[..h]);
        let mut v = [0.0f32; 1];
        self.critic_out.forward(&c[..h], &mut v);
        (logits, v[0])
    }

    /// Shared trunk then actor head, in caller-provided scratch (`a`, `b` at least `hidden`
    /// wide). Leaves the trunk output in `b` so [`forward`](Self::forward) can run the critic.
    #[inline(always)]
    fn trunk_actor(&self, obs: &AggObs, a: &mut [f32], b: &mut [f32]) -> [f32; N_ACTIONS] {
        let h = self.hidden();
        self.trunk1.forward(obs, &mut a[..h]);
        self.trunk_ln1.forward_tanh(&mut a[..h]);
        self.trunk2.forward(&a[..h], &mut b[..h]);
        self.trunk_ln2.forward_tanh(&mut b[..h]);
        self.actor1.forward(&b[..h], &mut a[..h]);
        self.actor_ln.forward_tanh(&mut a[..h]);
        let mut logits = [0.0f32; N_ACTIONS];
        self.actor_out.forward(&a[..h], &mut logits);
        logits
    }

    /// Actor logits only (the critic is skipped): what a deployed router needs per decision.
    /// Same arithmetic as [`forward`](Self::forward); the scratch buffers are sized to the
    /// width class of the network, since zeroing two `MAX_HIDDEN` arrays would cost more than
    /// the 64-wide matrix products themselves.
    #[inline]
    pub fn logits(&self, obs: &AggObs) -> [f32; N_ACTIONS] {
        match self.hidden() {
            h if h <= 64 => self.logits_buf::<64>(obs),
            h if h <= 256 => self.logits_buf::<256>(obs),
            _ => self.logits_buf::<MAX_HIDDEN>(obs),
        }
    }

    #[inline(always)]
    fn logits_buf<const N: usize>(&self, obs: &AggObs) -> [f32; N_ACTIONS] {
        let h = self.hidden();
        debug_assert!(h <= N);
        let mut a = [0.0f32; N];
        let mut b = [0.0f32; N];
        self.trunk_actor(obs, &mut a, &mut b)
    }

    /// Every parameter with its PyTorch name and shape, in forward order. Linear weights are
    /// `[out, in]` (PyTorch layout; burn's own is `[in, out]`), LayerNorm γ/β are named
    /// `weight`/`bias` as in `torch.nn.LayerNorm`. Exports are written from this list.
    pub fn named_params(&self) -> Vec<(String, Vec<usize>, &[f32])> {
        type Named<'a> = Vec<(String, Vec<usize>, &'a [f32])>;
        fn dense<'a>(name: &str, l: &'a DenseLayer, out: &mut Named<'a>) {
            out.push((format!("{name}.weight"), vec![l.d_out, l.d_in], &l.w[..]));
            out.push((format!("{name}.bias"), vec![l.d_out], &l.b[..]));
        }
        fn norm<'a>(name: &str, l: &'a NormLayer, out: &mut Named<'a>) {
            out.push((format!("{name}.weight"), vec![l.gamma.len()], &l.gamma[..]));
            out.push((format!("{name}.bias"), vec![l.beta.len()], &l.beta[..]));
        }
        let mut out = Vec::with_capacity(20);
        dense("trunk1", &self.trunk1, &mut out);
        norm("trunk_ln1", &self.trunk_ln1, &mut out);
        dense("trunk2", &self.trunk2, &mut out);
        norm("trunk_ln2", &self.trunk_ln2, &mut out);
        dense("actor1", &self.actor1, &mut out);
        norm("actor_ln", &self.actor_ln, &mut out);
        dense("actor_out", &self.actor_out, &mut out);
        dense("critic1", &self.critic1, &mut out);
        norm("critic_ln", &self.critic_ln, &mut out);
        dense("critic_out", &self.critic_out, &mut out);
        out
    }

    /// Rebuild from parameters named and shaped as [`named_params`](Self::named_params) gives
    /// them, for a network of width `hidden`. `get(name, shape)` returns the row-major values of
    /// that parameter or an error (missing, wrong shape); its errors are passed through.
    pub fn from_named_params<E>(
        hidden: usize,
        mut get: impl FnMut(&str, &[usize]) -> Result<Vec<f32>, E>,
    ) -> Result<Self, E> {
        let mut dense = |name: &str, d_in: usize, d_out: usize| -> Result<DenseLayer, E> {
            Ok(DenseLayer {
                d_in,
                d_out,
                w: get(&format!("{name}.weight"), &[d_out, d_in])?,
                b: get(&format!("{name}.bias"), &[d_out])?,
            })
        };
        let trunk1 = dense("trunk1", AGG_DIM, hidden)?;
        let trunk2 = dense("trunk2", hidden, hidden)?;
        let actor1 = dense("actor1", hidden, hidden)?;
        let actor_out = dense("actor_out", hidden, N_ACTIONS)?;
        let critic1 = dense("critic1", hidden, hidden)?;
        let critic_out = dense("critic_out", hidden, 1)?;
        let mut norm = |name: &str| -> Result<NormLayer, E> {
            Ok(NormLayer {
                gamma: get(&format!("{name}.weight"), &[hidden])?,
                beta: get(&format!("{name}.bias"), &[hidden])?,
            })
        };
        Ok(PolicyWeights {
            trunk1,
            trunk_ln1: norm("trunk_ln1")?,
            trunk2,
            trunk_ln2: norm("trunk_ln2")?,
            actor1,
            actor_ln: norm("actor_ln")?,
            actor_out,
            critic1,
            critic_ln: norm("critic_ln")?,
            critic_out,
        })
    }

    /// Masked action log-probabilities `[log p(continue), log p(regenerate)]` and the value;
    /// a masked action gets `log p = −∞`-equivalent and `p = 0`.
    pub fn log_probs(&self, obs: &AggObs, mask: [bool; 2]) -> ([f32; N_ACTIONS], f32) {
        let (logits, v) = self.forward(obs);
        (masked_log_softmax(logits, mask), v)
    }
}

/// log-softmax of two logits after masking, as [`mask_logits`] + [`log_probs`] compute it.
pub fn masked_log_softmax(logits: [f32; 2], mask: [bool; 2]) -> [f32; 2] {
    let l = [
        if mask[0] { logits[0] } else { MASKED_LOGIT },
        if mask[1] { logits[1] } else { MASKED_LOGIT },
    ];
    let m = l[0].max(l[1]);
    let lse = m + ((l[0] - m).exp() + (l[1] - m).exp()).ln();
    [l[0] - lse, l[1] - lse]
}

/// Greedy (argmax) acting, as in evaluation; ties go to `continue` like `torch.argmax`.
pub struct Greedy<'a>(pub &'a PolicyWeights);

impl Policy for Greedy<'_> {
    fn act(&self, obs: &AggObs, mask: [bool; 2], _rng: &mut Rng) -> Action {
        let (lp, _) = self.0.log_probs(obs, mask);
        if lp[1] > lp[0] {
            Action::Regenerate
        } else {
            Action::Continue
        }
    }
}

/// Stochastic acting, as in training rollouts: sample from the masked softmax.
pub struct Sampled<'a>(pub &'a PolicyWeights);

impl Policy for Sampled<'_> {
    fn act(&self, obs: &AggObs, mask: [bool; 2], rng: &mut Rng) -> Action {
        let (lp, _) = self.0.log_probs(obs, mask);
        sample_action(lp, rng)
    }
}

/// Draw an action from log-probabilities with one uniform number. A masked action has
/// probability exactly 0 and is never returned.
#[inline]
pub fn sample_action(log_probs: [f32; 2], rng: &mut Rng) -> Action {
    let p_regen = log_probs[1].exp();
    let u = rng.f32();
    if p_regen > 0.0 && u < p_regen {
        Action::Regenerate
    } else if log_probs[0].exp() > 0.0 {
        Action::Continue
    } else {
        Action::Regenerate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // Rust mirror agrees and sampling never picks a masked action.
        let m = masked_log_softmax([5.0, -3.0], [false, true]);
        assert_eq!(m[1], 0.0);
        assert_eq!(m[0].exp(), 0.0);
        let mut rng = Rng::new(0);
        for _ in 0..1000 {
            assert_eq!(sample_action(m, &mut rng), Action::Regenerate);
            let c = masked_log_softmax([-9.0, 9.0], [true, false]);
            assert_eq!(sample_action(c, &mut rng), Action::Continue);
        }
        // Both available: sampling frequency follows the probability.
        let lp = masked_log_softmax([0.0, (0.25f32 / 0.75).ln()], [true, true]);
        let n = (0..20_000)
            .filter(|_| sample_action(lp, &mut rng) == Action::Regenerate)
            .count();
        assert!((n as f64 / 20_000.0 - 0.25).abs() < 0.015, "{n}");
    }
}
