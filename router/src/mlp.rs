//! Plain-Rust building blocks of the exported networks: dense layers, LayerNorm + tanh, and the
//! two-action softmax helpers. Training (burn) and serving share these exact arithmetic
//! definitions, so a decision made in `trim route` is the one the trainer validated.

/// LayerNorm epsilon (PyTorch's default, as in the TRIM release).
pub const LN_EPS: f64 = 1e-5;
/// The "−∞-equivalent" logit of a masked action: exp(−1e9 − max) is exactly 0 in f32, so a
/// masked action has zero probability while `p·log p` stays finite.
pub const MASKED_LOGIT: f32 = -1e9;

/// One dense layer, weights `[out][in]` row-major (PyTorch layout) so each output is a
/// contiguous dot product.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub(crate) d_in: usize,
    pub(crate) d_out: usize,
    pub(crate) w: Vec<f32>,
    pub(crate) b: Vec<f32>,
}

impl Dense {
    /// A layer from PyTorch-layout weights `[d_out, d_in]` and bias `[d_out]`.
    pub fn new(d_in: usize, d_out: usize, w: Vec<f32>, b: Vec<f32>) -> Result<Self, String> {
        if w.len() != d_in * d_out || b.len() != d_out {
            return Err(format!(
                "dense layer {d_in}→{d_out}: {} weights and {} biases",
                w.len(),
                b.len()
            ));
        }
        Ok(Dense { d_in, d_out, w, b })
    }

    /// Output width.
    pub fn d_out(&self) -> usize {
        self.d_out
    }

    /// `y = W x + b` for the first `d_out` entries of `y`.
    ///
    /// On x86-64 CPUs with AVX2 the same loop runs compiled for 8-lane vectors (detected once,
    /// at run time, so the binary stays portable). No FMA: the multiplies and adds are the
    /// same operations in the same order, so both paths give bit-identical results.
    #[inline]
    pub fn forward(&self, x: &[f32], y: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { self.forward_avx2(x, y) };
            return;
        }
        self.forward_portable(x, y);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn forward_avx2(&self, x: &[f32], y: &mut [f32]) {
        self.forward_portable(x, y);
    }

    #[inline(always)]
    fn forward_portable(&self, x: &[f32], y: &mut [f32]) {
        for (o, yo) in y.iter_mut().enumerate().take(self.d_out) {
            let row = &self.w[o * self.d_in..(o + 1) * self.d_in];
            *yo = self.b[o] + dot(row, x);
        }
    }
}

/// Dot product with 8 independent accumulators, which the compiler vectorises (a plain `sum()`
/// is a serial chain: f32 addition is not reassociated).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
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

/// LayerNorm parameters γ (`weight`) and β (`bias`).
#[derive(Clone, Debug, PartialEq)]
pub struct Norm {
    pub(crate) gamma: Vec<f32>,
    pub(crate) beta: Vec<f32>,
}

impl Norm {
    /// A LayerNorm over `gamma.len()` features.
    pub fn new(gamma: Vec<f32>, beta: Vec<f32>) -> Result<Self, String> {
        if gamma.len() != beta.len() {
            return Err(format!(
                "layer norm: {} gammas, {} betas",
                gamma.len(),
                beta.len()
            ));
        }
        Ok(Norm { gamma, beta })
    }

    /// LayerNorm (biased variance, ε inside the root, like burn and PyTorch), in place.
    #[inline]
    pub fn forward(&self, x: &mut [f32]) {
        let n = x.len() as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let denom = (var + LN_EPS as f32).sqrt();
        for ((v, g), b) in x.iter_mut().zip(&self.gamma).zip(&self.beta) {
            *v = (*v - mean) / denom * g + b;
        }
    }

    /// LayerNorm (biased variance, ε inside the root, like burn and PyTorch) then tanh, in
    /// place — TRIM-Agg's hidden blocks, the hot path of every rollout and routing decision.
    /// The sums run in 8 independent lanes and tanh is [`tanh_lanes`] (a polynomial `exp`,
    /// within 2e-7 of `tanh`), so the whole block vectorises; on AVX2 CPUs it is compiled for
    /// 8-lane vectors (no FMA: the same results on every x86-64 machine).
    #[inline]
    pub fn forward_tanh(&self, x: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { self.forward_tanh_avx2(x) };
            return;
        }
        self.forward_tanh_portable(x);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn forward_tanh_avx2(&self, x: &mut [f32]) {
        self.forward_tanh_portable(x);
    }

    #[inline(always)]
    fn forward_tanh_portable(&self, x: &mut [f32]) {
        let n = x.len() as f32;
        let mean = lane_sum(x, |v| v) / n;
        let var = lane_sum(x, |v| (v - mean) * (v - mean)) / n;
        let denom = (var + LN_EPS as f32).sqrt();
        for ((v, g), b) in x.iter_mut().zip(&self.gamma).zip(&self.beta) {
            *v = (*v - mean) / denom * g + b;
        }
        tanh_lanes(x);
    }
}

/// Σ f(x) in 8 interleaved lanes, then the lanes and the tail: vectorisable, and the same
/// order on every machine.
#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for k in 0..8 {
            acc[k] += f(c[k]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// tanh of every element, branch-free: `1 − 2 / (1 + e^{2x})` with `e^{2x}` from a degree-6
/// polynomial for `2^f` (|f| ≤ ½) and an exponent built from bits, clamped to the f32 range
/// (so ±∞ inputs give ±1). Absolute error ≤ 2e-7 against `f64::tanh` (tested).
#[inline(always)]
pub fn tanh_lanes(x: &mut [f32]) {
    for v in x.iter_mut() {
        // e^{2v} = 2^y, y = 2v·log2(e), clamped so 2^n stays a normal f32 — and so does
        // p·2^n (p ≥ 0.7): at −126 it could be subnormal, and every operation on a subnormal
        // takes a slow microcode path (it cost the fused trainer 18 %). Below −125, 1 + e is
        // exactly 1 either way, so the result is unchanged.
        let y = (*v * (2.0 * std::f32::consts::LOG2_E)).clamp(-125.0, 126.0);
        let n = y.round();
        let f = y - n;
        // 2^f = e^{f·ln2}: Taylor to degree 6 (|f·ln2| ≤ 0.35 → relative error < 1e-7).
        let t = f * std::f32::consts::LN_2;
        let p = 1.0
            + t * (1.0
                + t * (0.5
                    + t * (1.0 / 6.0 + t * (1.0 / 24.0 + t * (1.0 / 120.0 + t * (1.0 / 720.0))))));
        // 2^n from bits: n + 127 + 1.5·2²³ is exact (an integer below 2²²) and its low 9 bits
        // are n + 127, which the shift moves into the exponent field. The same bits as
        // `(n as i32 + 127) << 23`, but vectorised: `as i32` saturates, which compiles to a
        // scalar conversion with NaN and overflow checks per lane.
        let scale = f32::from_bits((n + (12_582_912.0 + 127.0)).to_bits() << 23);
        let e = p * scale;
        *v = 1.0 - 2.0 / (1.0 + e);
    }
}

/// tanh as `2·σ(2x) − 1`, with the branch burn-flex's sigmoid uses: the trainer computes tanh
/// this way on tensors (one `exp` per element instead of libm `tanhf`), so acting and training
/// agree bit for bit in practice.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    2.0 * sigmoid(2.0 * x) - 1.0
}

/// Overflow-free logistic function.
#[inline(always)]
pub fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Softmax of two logits.
pub fn softmax2(l: [f32; 2]) -> [f32; 2] {
    let m = l[0].max(l[1]);
    let (a, b) = ((l[0] - m).exp(), (l[1] - m).exp());
    [a / (a + b), b / (a + b)]
}

/// `softmax(l)[1]` = σ(l1 − l0): the probability of the second action (regenerate).
#[inline]
pub fn p_second(l: [f32; 2]) -> f32 {
    sigmoid(l[1] - l[0])
}

/// log-softmax of two logits after masking (`mask[i]` = action `i` available).
pub fn masked_log_softmax(logits: [f32; 2], mask: [bool; 2]) -> [f32; 2] {
    let l = [
        if mask[0] { logits[0] } else { MASKED_LOGIT },
        if mask[1] { logits[1] } else { MASKED_LOGIT },
    ];
    let m = l[0].max(l[1]);
    let lse = m + ((l[0] - m).exp() + (l[1] - m).exp()).ln();
    [l[0] - lse, l[1] - lse]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_tanh_is_tanh() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            assert!((tanh_f32(x) - x.tanh()).abs() < 2e-7, "{x}");
        }
    }

    /// The exponent built from float bits is exactly the integer cast it replaced, for every
    /// exponent the clamp allows (so the vectorised tanh gives the same bits as before).
    #[test]
    fn exponent_from_bits_equals_the_integer_cast() {
        for n in -126..=126 {
            let nf = n as f32;
            let by_bits = f32::from_bits((nf + (12_582_912.0 + 127.0)).to_bits() << 23);
            let by_cast = f32::from_bits(((nf as i32 + 127) as u32) << 23);
            assert_eq!(by_bits.to_bits(), by_cast.to_bits(), "n = {n}");
            assert_eq!(f64::from(by_bits), 2f64.powi(n));
        }
    }

    #[test]
    fn lane_tanh_is_tanh_everywhere() {
        let mut xs: Vec<f32> = (-40_000..=40_000).map(|i| i as f32 / 1000.0).collect();
        xs.extend([
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e-30,
            -1e-30,
            0.0,
        ]);
        let mut ys = xs.clone();
        tanh_lanes(&mut ys);
        for (x, y) in xs.iter().zip(&ys) {
            let want = f64::from(*x).tanh();
            assert!(
                (f64::from(*y) - want).abs() < 2e-7,
                "tanh({x}) = {y}, want {want}"
            );
        }
        let mut nan = [f32::NAN];
        tanh_lanes(&mut nan);
        assert!(
            nan[0].is_nan(),
            "NaN propagates (the divergence guard sees it)"
        );
        // The AVX2 and portable LayerNorm + tanh paths agree bit for bit.
        let norm = Norm::new(vec![1.3; 64], vec![-0.2; 64]).unwrap();
        let x: Vec<f32> = (0..64).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
        let (mut a, mut b) = (x.clone(), x);
        norm.forward_tanh(&mut a);
        norm.forward_tanh_portable(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn probability_is_the_softmax() {
        for l in [[0.0f32, 0.0], [3.0, -2.0], [-50.0, 60.0], [1e3, -1e3]] {
            assert!((p_second(l) - softmax2(l)[1]).abs() < 1e-7, "{l:?}");
        }
    }

    #[test]
    fn masked_action_has_zero_probability() {
        let m = masked_log_softmax([5.0, -3.0], [false, true]);
        assert_eq!(m[1], 0.0);
        assert_eq!(m[0].exp(), 0.0);
    }

    #[test]
    fn shapes_are_checked() {
        assert!(Dense::new(2, 3, vec![0.0; 6], vec![0.0; 3]).is_ok());
        assert!(Dense::new(2, 3, vec![0.0; 5], vec![0.0; 3]).is_err());
        assert!(Norm::new(vec![1.0; 3], vec![0.0; 2]).is_err());
    }
}
