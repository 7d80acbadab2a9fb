//! Global gradient-norm clipping and Adam over [`AggParams`], with burn's arithmetic (the
//! trainer's `crate::ppo::update`): L2 weight decay added to the gradient as `torch.optim.Adam`
//! does, then `p −= lr · m·(√bc₂/bc₁) / (√v + ε·√bc₂)` with bias corrections `bc = 1 − βᵗ`.

use super::mlp::AggParams;

/// Adam's state for one network.
#[derive(Clone, Debug)]
pub struct Adam {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    m: AggParams,
    v: AggParams,
    /// Steps taken.
    t: i32,
}

impl Adam {
    /// Fresh state for a network shaped like `p` (β = 0.9 / 0.999, as the trainer's).
    pub fn new(p: &AggParams, eps: f32, weight_decay: f32) -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps,
            weight_decay,
            m: p.zeros_like(),
            v: p.zeros_like(),
            t: 0,
        }
    }

    /// One step of `p` along gradient `g` with learning rate `lr`. Runs an AVX-512 build of
    /// the same loop when the CPU has it: every operation is element-wise and correctly
    /// rounded (no FMA), so every build gives the same bits.
    pub fn step(&mut self, p: &mut AggParams, g: &AggParams, lr: f32) {
        self.t += 1;
        let bc2_sqrt = (1.0 - self.beta2.powi(self.t)).sqrt();
        let k = StepConsts {
            factor: bc2_sqrt / (1.0 - self.beta1.powi(self.t)),
            b1: self.beta1,
            b2: self.beta2,
            wd: self.weight_decay,
            eps: self.eps * bc2_sqrt,
            lr,
        };
        let tensors = (p.tensors_mut().into_iter())
            .zip(g.tensors())
            .zip(self.m.tensors_mut().into_iter().zip(self.v.tensors_mut()));
        for ((pt, gt), (mt, vt)) in tensors {
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked just above).
                unsafe { step_tensor_avx512(&k, pt, gt, mt, vt) };
                continue;
            }
            step_tensor(&k, pt, gt, mt, vt);
        }
    }
}

/// The scalars of one Adam step.
struct StepConsts {
    factor: f32,
    b1: f32,
    b2: f32,
    wd: f32,
    eps: f32,
    lr: f32,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn step_tensor_avx512(
    k: &StepConsts,
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
) {
    step_tensor(k, p, g, m, v)
}

/// Adam on one tensor. The slices are cut to one length first, so the loop has no bounds
/// checks and vectorises (indexed four ways, it ran one lane at a time: 20 µs of a 480-row
/// step's 27 µs of clip + Adam).
#[inline(always)]
fn step_tensor(k: &StepConsts, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let gi = g[i] + k.wd * p[i];
        m[i] = m[i] * k.b1 + gi * (1.0 - k.b1);
        v[i] = v[i] * k.b2 + gi * gi * (1.0 - k.b2);
        p[i] -= k.lr * (m[i] * k.factor / (v[i].sqrt() + k.eps));
    }
}

/// Global L2 norm of `g`, and `g` scaled so the norm is at most `max_norm` (as
/// `torch.nn.utils.clip_grad_norm_`: coefficient `max_norm / (norm + 1e-6)` when below 1).
/// Returns the norm before clipping.
pub fn clip_grad_norm(g: &mut AggParams, max_norm: f32) -> f32 {
    let mut sq = 0.0f32;
    for s in square_sums(&g.tensors()) {
        sq += s;
    }
    let norm = sq.sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        g.for_each_mut(|t| t.iter_mut().for_each(|x| *x *= coef));
    }
    norm
}

/// Each tensor's `Σ x²`, summed one element after another from the first (as
/// `iter().map(|x| x * x).sum()`), but four tensors side by side, longest first: one running
/// sum is a chain of dependent adds, bound by their latency (the three 64 × 64 weights took
/// ~10 µs one after another), and four chains overlap. A tensor shorter than the others of
/// its group adds `+0` past its end, which leaves a sum of squares unchanged, so each sum has
/// the bits of the plain one.
fn square_sums<const T: usize>(tensors: &[&[f32]; T]) -> [f32; T] {
    let mut order: [usize; T] = std::array::from_fn(|i| i);
    order.sort_by_key(|&i| std::cmp::Reverse(tensors[i].len()));
    let mut sums = [0.0f32; T];
    for group in order.chunks(4) {
        let ts: [&[f32]; 4] =
            std::array::from_fn(|k| group.get(k).map_or(&[][..], |&i| tensors[i]));
        let longest = ts.iter().map(|t| t.len()).max().unwrap_or(0);
        let mut acc = [0.0f32; 4];
        for i in 0..longest {
            for (a, t) in acc.iter_mut().zip(ts) {
                let x = t.get(i).copied().unwrap_or(0.0);
                *a += x * x;
            }
        }
        for (&i, a) in group.iter().zip(acc) {
            sums[i] = a;
        }
    }
    sums
}

/// Format name in the header of a saved [`Adam`] state.
const STATE_FORMAT: &str = "trim-fused-adam";
const STATE_VERSION: u32 = 1;

/// The JSON header line of a saved [`Adam`] state.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StateHeader {
    format: String,
    version: u32,
    /// Steps taken.
    t: i32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    /// `(name, length)` of every tensor, in [`AggParams::named`] order.
    tensors: Vec<(String, usize)>,
}

impl Adam {
    /// The state as bytes (a checkpoint's `fused_adam.bin`): one JSON header line, then the
    /// first moments and the second moments as little-endian f32, tensor by tensor in
    /// [`AggParams::named`] order. Exact, so a resumed run continues bit for bit.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = StateHeader {
            format: STATE_FORMAT.into(),
            version: STATE_VERSION,
            t: self.t,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            tensors: (self.m.named().into_iter())
                .map(|(n, t)| (n, t.len()))
                .collect(),
        };
        let mut out = serde_json::to_vec(&header).unwrap_or_default();
        out.push(b'\n');
        for t in self.m.tensors().into_iter().chain(self.v.tensors()) {
            out.extend(t.iter().flat_map(|x| x.to_le_bytes()));
        }
        out
    }

    /// Read a state written by [`Self::to_bytes`] for a network shaped like `like`. Every
    /// mismatch (format, tensor names or sizes, length, a non-finite moment, a negative second
    /// moment) is an error saying what is wrong.
    pub fn from_bytes(bytes: &[u8], like: &AggParams) -> Result<Adam, String> {
        let nl = (bytes.iter().position(|&b| b == b'\n'))
            .ok_or("no header line (not a fused Adam state)")?;
        let h: StateHeader =
            serde_json::from_slice(&bytes[..nl]).map_err(|e| format!("header: {e}"))?;
        if h.format != STATE_FORMAT || h.version != STATE_VERSION {
            return Err(format!(
                "format {} v{} is not {STATE_FORMAT} v{STATE_VERSION}",
                h.format, h.version
            ));
        }
        let want: Vec<(String, usize)> = (like.named().into_iter())
            .map(|(n, t)| (n, t.len()))
            .collect();
        if h.tensors != want {
            return Err("its tensors do not match the network's names and sizes".into());
        }
        if h.t < 0 {
            return Err(format!("step count {} is negative", h.t));
        }
        let body = &bytes[nl + 1..];
        let n: usize = want.iter().map(|(_, l)| l).sum();
        if body.len() != 2 * n * 4 {
            return Err(format!(
                "{} bytes of moments where the network needs {} (truncated or padded)",
                body.len(),
                2 * n * 4
            ));
        }
        let mut floats = body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        let mut adam = Adam::new(like, h.eps, h.weight_decay);
        (adam.beta1, adam.beta2, adam.t) = (h.beta1, h.beta2, h.t);
        for (k, t) in (adam.m.tensors_mut().into_iter()).enumerate() {
            t.iter_mut()
                .for_each(|x| *x = floats.next().unwrap_or(f32::NAN));
            if let Some(i) = t.iter().position(|x| !x.is_finite()) {
                return Err(format!("first moment of {} [{i}] is not finite", want[k].0));
            }
        }
        for (k, t) in (adam.v.tensors_mut().into_iter()).enumerate() {
            t.iter_mut()
                .for_each(|x| *x = floats.next().unwrap_or(f32::NAN));
            if let Some(i) = t.iter().position(|x| !(x.is_finite() && *x >= 0.0)) {
                return Err(format!(
                    "second moment of {} [{i}] is not a finite non-negative number",
                    want[k].0
                ));
            }
        }
        Ok(adam)
    }

    /// Steps taken.
    pub fn steps(&self) -> i32 {
        self.t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A network-shaped state after a few steps of made-up gradients.
    fn stepped() -> (AggParams, Adam) {
        let dev = crate::backend::Backend::Flex.device().unwrap();
        let model = crate::model::ActorCritic::new(8, &mut trim_env::Rng::new(4), &dev);
        let mut p = crate::fused::params_of(&model).unwrap();
        let mut adam = Adam::new(&p, 1e-5, 1e-5);
        let mut g = p.zeros_like();
        for k in 0..3 {
            g.for_each_mut(|t| {
                for (i, x) in t.iter_mut().enumerate() {
                    *x = ((i + k) as f32 * 0.37).sin();
                }
            });
            adam.step(&mut p, &g, 1e-3);
        }
        (p, adam)
    }

    /// A hidden-64 network's parameters and a gradient of made-up values.
    fn wide() -> (AggParams, AggParams) {
        let dev = crate::backend::Backend::Flex.device().unwrap();
        let model = crate::model::ActorCritic::new(64, &mut trim_env::Rng::new(9), &dev);
        let p = crate::fused::params_of(&model).unwrap();
        let mut g = p.zeros_like();
        let mut rng = trim_env::Rng::new(3);
        g.for_each_mut(|t| t.iter_mut().for_each(|x| *x = rng.normal() as f32 * 0.1));
        (p, g)
    }

    /// The interleaved sums and the vectorised step give the bits of the plain loops they
    /// replaced (written out here).
    #[test]
    fn the_fast_norm_and_step_keep_the_plain_loops_bits() {
        let (p, g) = wide();
        let bits = |p: &AggParams| -> Vec<u32> {
            (p.tensors().iter())
                .flat_map(|t| t.iter().map(|x| x.to_bits()))
                .collect()
        };
        let plain: Vec<f32> = (g.tensors().iter())
            .map(|t| t.iter().map(|x| x * x).sum::<f32>())
            .collect();
        assert_eq!(square_sums(&g.tensors()).to_vec(), plain);
        let mut sq = 0.0f32;
        plain.iter().for_each(|s| sq += s);
        let mut clipped = g.clone();
        assert_eq!(
            clip_grad_norm(&mut clipped, 0.5).to_bits(),
            sq.sqrt().to_bits()
        );
        let (mut fast, mut slow) = (p.clone(), p.clone());
        let mut adam = Adam::new(&p, 1e-5, 1e-4);
        let (mut m, mut v) = (p.zeros_like(), p.zeros_like());
        for t in 1..=3 {
            adam.step(&mut fast, &clipped, 3e-4);
            let (b1, b2, lr) = (0.9f32, 0.999f32, 3e-4f32);
            let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
            let factor = bc2_sqrt / (1.0 - b1.powi(t));
            let eps = 1e-5 * bc2_sqrt;
            let tensors = (slow.tensors_mut().into_iter())
                .zip(clipped.tensors())
                .zip(m.tensors_mut().into_iter().zip(v.tensors_mut()));
            for ((pt, gt), (mt, vt)) in tensors {
                for i in 0..pt.len() {
                    let gi = gt[i] + 1e-4 * pt[i];
                    mt[i] = mt[i] * b1 + gi * (1.0 - b1);
                    vt[i] = vt[i] * b2 + gi * gi * (1.0 - b2);
                    pt[i] -= lr * (mt[i] * factor / (vt[i].sqrt() + eps));
                }
            }
            assert_eq!(bits(&fast), bits(&slow), "step {t}");
        }
        assert_ne!(bits(&fast), bits(&p));
    }

    #[test]
    fn a_saved_state_reads_back_exactly_and_steps_the_same() {
        let (p, adam) = stepped();
        let back = Adam::from_bytes(&adam.to_bytes(), &p).unwrap();
        assert_eq!(back.steps(), 3);
        assert_eq!(back.to_bytes(), adam.to_bytes());
        let (mut p1, mut p2) = (p.clone(), p.clone());
        let g = p.clone();
        let (mut a1, mut a2) = (adam, back);
        a1.step(&mut p1, &g, 1e-3);
        a2.step(&mut p2, &g, 1e-3);
        assert_eq!(p1, p2);
    }

    #[test]
    fn damaged_states_are_refused_saying_what_is_wrong() {
        let (p, adam) = stepped();
        let good = adam.to_bytes();
        let nl = good.iter().position(|&b| b == b'\n').unwrap();
        let truncated = &good[..good.len() - 4];
        let e = Adam::from_bytes(truncated, &p).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        let e = Adam::from_bytes(&good[nl + 1..], &p).unwrap_err();
        assert!(e.contains("header") || e.contains("no header"), "{e}");
        // A NaN first moment, then a negative second moment (the last float of the file).
        let mut nan = good.clone();
        nan[nl + 1..nl + 5].copy_from_slice(&f32::NAN.to_le_bytes());
        let e = Adam::from_bytes(&nan, &p).unwrap_err();
        assert!(e.contains("first moment of trunk1.weight [0]"), "{e}");
        let mut neg = good.clone();
        let n = neg.len();
        neg[n - 4..].copy_from_slice(&(-1.0f32).to_le_bytes());
        let e = Adam::from_bytes(&neg, &p).unwrap_err();
        assert!(e.contains("second moment of critic_ln.bias"), "{e}");
        // Another network's shape.
        let dev = crate::backend::Backend::Flex.device().unwrap();
        let other = crate::model::ActorCritic::new(16, &mut trim_env::Rng::new(4), &dev);
        let q = crate::fused::params_of(&other).unwrap();
        let e = Adam::from_bytes(&good, &q).unwrap_err();
        assert!(e.contains("do not match"), "{e}");
        // Random bytes never panic.
        let mut rng = trim_env::Rng::new(9);
        for _ in 0..200 {
            let mut b = good.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len() as u64) as usize;
                b[i] = rng.below(256) as u8;
            }
            b.truncate(rng.below(b.len() as u64 + 1) as usize);
            let _ = Adam::from_bytes(&b, &p);
        }
    }
}
