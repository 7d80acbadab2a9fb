//! The TRIM-Seq actor-critic in burn: the causal transformer of `trim_router::seq` (its module
//! docs give the token features and the architecture), trained by the same PPO as TRIM-Agg.
//!
//! Initialisation (the paper gives no sizes or init; these are our choices, drawn from the run's
//! own [`Rng`] so every backend starts from the same weights): orthogonal weights, gain 1 in the
//! embedding, attention and feed-forward input layers, 1/√(2·layers) in the two residual output
//! projections (`o`, `ff2`, GPT-2's depth scaling), √2 in the heads' hidden layers, 0.01 in the
//! actor output and 1 in the critic output; zero biases; LayerNorm γ = 1, β = 0.
//!
//! A batch of rows is cut to its longest sequence before the forward pass (the rows are
//! left-aligned and causal attention ignores what follows), so short episodes cost little.

use burn::module::Module;
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use trim_env::Rng;
use trim_router::seq::{SEQ_LEN, SEQ_OBS_DIM, SeqNet, SeqShape, TOKEN_DIM};

use crate::model::{GAIN_ACTOR, GAIN_CRITIC, GAIN_TRUNK, LN_EPS, TorchParams, linear, tanh};

/// Additive attention bias of a masked (future) position: exp(−1e9 − max) is exactly 0 in f32.
const MASKED_SCORE: f32 = -1e9;
/// Sequence-length buckets (inclusive token counts) a batch is split into.
const LENGTH_BUCKETS: [(usize, usize); 4] = [(1, 4), (5, 8), (9, 16), (17, SEQ_LEN)];

/// Row indices as an index tensor.
fn index(rows: &[usize], device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = rows.iter().map(|&i| i as i64).collect();
    Tensor::<1, Int>::from_data(TensorData::new(v, [rows.len()]), device)
}

/// One pre-LN transformer block.
#[derive(Module, Debug)]
pub struct SeqBlockNet {
    ln1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln2: LayerNorm,
    ff1: Linear,
    ff2: Linear,
}

/// The TRIM-Seq actor-critic.
#[derive(Module, Debug)]
pub struct SeqActorCritic {
    embed: Linear,
    blocks: Vec<SeqBlockNet>,
    ln_f: LayerNorm,
    actor1: Linear,
    actor_out: Linear,
    critic1: Linear,
    critic_out: Linear,
    heads: usize,
}

fn norm(d: usize, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d).with_epsilon(LN_EPS).init(device)
}

impl SeqActorCritic {
    /// A freshly initialised network of shape `s` (checked), weights drawn from `rng`.
    pub fn new(s: SeqShape, rng: &mut Rng, device: &Device) -> Result<Self, String> {
        s.check()?;
        let d = s.dim;
        let residual = 1.0 / (2.0 * s.layers as f64).sqrt();
        let embed = linear(TOKEN_DIM, d, 1.0, rng, device);
        let blocks = (0..s.layers)
            .map(|_| SeqBlockNet {
                ln1: norm(d, device),
                q: linear(d, d, 1.0, rng, device),
                k: linear(d, d, 1.0, rng, device),
                v: linear(d, d, 1.0, rng, device),
                o: linear(d, d, residual, rng, device),
                ln2: norm(d, device),
                ff1: linear(d, s.ff, 1.0, rng, device),
                ff2: linear(s.ff, d, residual, rng, device),
            })
            .collect();
        let e = usize::from(s.lambda_input);
        Ok(SeqActorCritic {
            embed,
            blocks,
            ln_f: norm(d, device),
            actor1: linear(d + e, d, GAIN_TRUNK, rng, device),
            actor_out: linear(d, 2, GAIN_ACTOR, rng, device),
            critic1: linear(d + e, d, GAIN_TRUNK, rng, device),
            critic_out: linear(d, 1, GAIN_CRITIC, rng, device),
            heads: s.heads,
        })
    }

    /// The network's sizes.
    pub fn shape(&self) -> SeqShape {
        let [_, dim] = self.embed.weight.val().dims();
        let ff = self
            .blocks
            .first()
            .map_or(dim, |b| b.ff1.weight.val().dims()[1]);
        SeqShape {
            dim,
            heads: self.heads,
            layers: self.blocks.len(),
            ff,
            lambda_input: self.actor1.weight.val().dims()[0] > dim,
        }
    }

    /// Raw logits and state values of flat observation rows.
    ///
    /// Rows are grouped by sequence length into buckets (1–4, 5–8, 9–16, 17–32 tokens), each
    /// run cut to its own longest row, and the outputs put back in row order: a batch of mostly
    /// short histories then costs what its tokens cost, not `n × 32`.
    ///
    /// # Shapes
    /// `obs: [n, SEQ_OBS_DIM (+1 with the λ input)]` → `(logits: [n, 2], value: [n])`
    pub fn forward(&self, obs: Tensor<2>) -> (Tensor<2>, Tensor<1>) {
        let [n, width] = obs.dims();
        let device = obs.device();
        let lens = to_vec(
            obs.clone()
                .slice([0..n, SEQ_OBS_DIM - 1..SEQ_OBS_DIM])
                .into_data(),
        );
        let lens: Vec<usize> = lens
            .iter()
            .map(|&l| (l as usize).clamp(1, SEQ_LEN))
            .collect();
        let mut order: Vec<usize> = vec![];
        let mut parts = vec![];
        for (lo, hi) in LENGTH_BUCKETS {
            let rows: Vec<usize> = (0..n).filter(|&i| (lo..=hi).contains(&lens[i])).collect();
            if rows.is_empty() {
                continue;
            }
            let l = rows.iter().map(|&i| lens[i]).max().unwrap_or(1);
            let ends: Vec<usize> = rows.iter().map(|&i| lens[i]).collect();
            let x = match rows.len() == n {
                true => obs.clone(),
                false => obs.clone().select(0, index(&rows, &device)),
            };
            parts.push(self.encode(x, l, &ends));
            order.extend(rows);
        }
        let z = match parts.len() {
            1 => parts.pop().expect("one part"),
            _ => {
                // Row i of the output is row `position[i]` of the concatenation.
                let mut position = vec![0usize; n];
                for (p, &i) in order.iter().enumerate() {
                    position[i] = p;
                }
                Tensor::cat(parts, 0).select(0, index(&position, &device))
            }
        };
        let z = self.ln_f.forward(z);
        // A λ-conditioned network's heads read the λ input after the final representation.
        let z = match width > SEQ_OBS_DIM {
            true => Tensor::cat(vec![z, obs.slice([0..n, SEQ_OBS_DIM..SEQ_OBS_DIM + 1])], 1),
            false => z,
        };
        let logits = self.actor_out.forward(tanh(self.actor1.forward(z.clone())));
        let value = (self.critic_out.forward(tanh(self.critic1.forward(z)))).squeeze_dim::<1>(1);
        (logits, value)
    }

    /// The transformer's output at each row's last token, for rows of at most `l` tokens whose
    /// lengths are `ends`.
    ///
    /// # Shapes
    /// `obs: [m, SEQ_OBS_DIM]` → `[m, d]`
    fn encode(&self, obs: Tensor<2>, l: usize, ends: &[usize]) -> Tensor<2> {
        let m = ends.len();
        let device = obs.device();
        let x: Tensor<3> = obs
            .slice([0..m, 0..l * TOKEN_DIM])
            .reshape([m, l, TOKEN_DIM]);
        let mut h = self.embed.forward(x);
        let bias = causal_bias(m, self.heads, l, &device);
        for b in &self.blocks {
            h = self.block(b, h, bias.clone());
        }
        // The output at each row's last token: a one-hot selection along the sequence axis.
        let mut pick = vec![0.0f32; m * l];
        for (i, &len) in ends.iter().enumerate() {
            pick[i * l + len - 1] = 1.0;
        }
        let pick = Tensor::<3>::from_data(TensorData::new(pick, [m, l, 1]), &device);
        let d = self.shape().dim;
        (h * pick).sum_dim(1).reshape([m, d])
    }

    /// One block.
    ///
    /// # Shapes
    /// `h: [n, l, d]`, `bias: [n, heads, l, l]` → `[n, l, d]`
    fn block(&self, b: &SeqBlockNet, h: Tensor<3>, bias: Tensor<4>) -> Tensor<3> {
        let [n, l, d] = h.dims();
        let (nh, dh) = (self.heads, d / self.heads);
        let a = b.ln1.forward(h.clone());
        let split = |t: Tensor<3>| -> Tensor<4> { t.reshape([n, l, nh, dh]).swap_dims(1, 2) };
        let q = split(b.q.forward(a.clone()));
        let k = split(b.k.forward(a.clone()));
        let v = split(b.v.forward(a));
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (dh as f32).sqrt())
            + bias;
        let att = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([n, l, d]);
        let h = h + b.o.forward(att);
        let f = b.ff2.forward(relu(b.ff1.forward(b.ln2.forward(h.clone()))));
        h + f
    }

    /// Copy the weights into the plain-Rust acting network (PyTorch layout).
    pub fn try_acting(&self) -> Result<SeqNet, String> {
        let mut params = TorchParams::default();
        params.linear("embed", &self.embed);
        for (i, b) in self.blocks.iter().enumerate() {
            let p = format!("blocks.{i}");
            for (name, l) in [("q", &b.q), ("k", &b.k), ("v", &b.v), ("o", &b.o)] {
                params.linear(&format!("{p}.{name}"), l);
            }
            params.linear(&format!("{p}.ff1"), &b.ff1);
            params.linear(&format!("{p}.ff2"), &b.ff2);
            params.norm(&format!("{p}.ln1"), &b.ln1);
            params.norm(&format!("{p}.ln2"), &b.ln2);
        }
        for (name, l) in [
            ("actor1", &self.actor1),
            ("actor_out", &self.actor_out),
            ("critic1", &self.critic1),
            ("critic_out", &self.critic_out),
        ] {
            params.linear(name, l);
        }
        params.norm("ln_f", &self.ln_f);
        SeqNet::from_named_params(self.shape(), |e| e, |name, _| params.take(name))
    }
}

/// `0` where a query may attend (key ≤ query), [`MASKED_SCORE`] after it.
///
/// # Shapes
/// → `[n, heads, l, l]`
fn causal_bias(n: usize, heads: usize, l: usize, device: &Device) -> Tensor<4> {
    let mut b = vec![0.0f32; l * l];
    for q in 0..l {
        for k in q + 1..l {
            b[q * l + k] = MASKED_SCORE;
        }
    }
    Tensor::<4>::from_data(TensorData::new(b, [1, 1, l, l]), device).expand([n, heads, l, l])
}

fn to_vec(d: TensorData) -> Vec<f32> {
    d.convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 tensor data")
}

#[cfg(test)]
mod tests {
    use super::*;
    use trim_env::{Candidate, HistStep};
    use trim_router::seq::write_row;

    fn dev() -> Device {
        crate::backend::Backend::Flex.device().unwrap()
    }

    const SHAPE: SeqShape = SeqShape {
        dim: 32,
        heads: 2,
        layers: 2,
        ff: 64,
        lambda_input: false,
    };

    /// Rows of histories of every length 0..=40 (longer than the context: truncated).
    fn rows(rng: &mut Rng) -> Vec<f32> {
        let mut out = vec![];
        for t in 0..=40usize {
            let hist: Vec<HistStep> = (0..t)
                .map(|_| {
                    let r = rng.f32() < 0.3;
                    let w = rng.f32();
                    [
                        if r { rng.f32() } else { w },
                        w,
                        rng.f32(),
                        f32::from(u8::from(r)),
                        if r { rng.f32() } else { 0.0 },
                    ]
                })
                .collect();
            let mut row = vec![0.0; SEQ_OBS_DIM];
            let c = Candidate {
                prm: rng.f32(),
                tokens: 1 + (rng.f32() * 400.0) as u32,
            };
            write_row(&hist, c, &mut row);
            out.extend(row);
        }
        out
    }

    /// The burn forward pass and the plain-Rust acting copy agree on every history length,
    /// padded in one batch with longer and shorter rows.
    #[test]
    fn burn_and_plain_rust_forward_passes_agree() {
        let mut rng = Rng::new(4);
        let net = SeqActorCritic::new(SHAPE, &mut Rng::new(1), &dev()).unwrap();
        let acting = net.try_acting().unwrap();
        let rows = rows(&mut rng);
        let n = rows.len() / SEQ_OBS_DIM;
        let obs = Tensor::<2>::from_data(TensorData::new(rows.clone(), [n, SEQ_OBS_DIM]), &dev());
        let (logits, value) = net.forward(obs);
        let (logits, value) = (to_vec(logits.into_data()), to_vec(value.into_data()));
        for i in 0..n {
            let (l, v) = acting.forward(&rows[i * SEQ_OBS_DIM..(i + 1) * SEQ_OBS_DIM]);
            for a in 0..2 {
                assert!(
                    (l[a] - logits[2 * i + a]).abs() < 1e-5,
                    "row {i}: {l:?} vs {:?}",
                    &logits[2 * i..2 * i + 2]
                );
            }
            assert!((v - value[i]).abs() < 1e-5, "row {i}: {v} vs {}", value[i]);
        }
        // Each row alone gives the same output as in the batch (padding changes nothing).
        let one = Tensor::<2>::from_data(
            TensorData::new(rows[..SEQ_OBS_DIM].to_vec(), [1, SEQ_OBS_DIM]),
            &dev(),
        );
        let (l1, _) = net.forward(one);
        let l1 = to_vec(l1.into_data());
        assert!((l1[0] - logits[0]).abs() < 1e-6 && (l1[1] - logits[1]).abs() < 1e-6);
    }

    #[test]
    fn initial_weights_depend_on_the_seed_only_and_shapes_are_checked() {
        let a = SeqActorCritic::new(SHAPE, &mut Rng::new(9), &dev())
            .unwrap()
            .try_acting()
            .unwrap();
        let b = SeqActorCritic::new(SHAPE, &mut Rng::new(9), &dev())
            .unwrap()
            .try_acting()
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.shape(), SHAPE);
        let bad = SeqShape { heads: 3, ..SHAPE };
        assert!(
            SeqActorCritic::new(bad, &mut Rng::new(9), &dev())
                .unwrap_err()
                .contains("heads")
        );
    }
}
