//! The TRIM-Agg network over many rows at once, every row bit-identical to [`AggNet::forward`].
//!
//! Why: a training rollout asks the acting network for one row per live episode at every env
//! step (64 rows per PPO batch). One row at a time, each 64-wide dot product ends in a
//! horizontal reduction and the weights stream through the core once per row. Here a block of
//! [`BLOCK`] rows is held feature-major (`[feature][row]`), so each multiply and add of the
//! one-row path runs on a whole block of rows — in the one-row path's order: the 8 lane
//! accumulators of [`dot`](crate::mlp::dot), their sum from the left, the tail, then the bias;
//! LayerNorm's lane sums the same way; tanh element by element. No FMA anywhere, so every
//! instruction set gives the same bits (tested against the one-row network).

use crate::agg::{
    ACTOR_LN, ACTOR_OUT, ACTOR1, AggNet, CRITIC_LN, CRITIC_OUT, CRITIC1, N_ACTIONS, TRUNK_LN1,
    TRUNK_LN2, TRUNK1, TRUNK2,
};
use crate::mlp::{Dense, LN_EPS, Norm, masked_log_softmax, tanh_lanes};

/// Rows per block: two 512-bit vectors per feature. Measured on a paper-schedule rollout
/// (64 episodes, fewer alive as they end): 32 rows 0.85 s, 64 rows 1.07–1.10 s (partial blocks
/// waste more), and 16 rows ran no faster than one row at a time in a 64-row micro-benchmark.
pub const BLOCK: usize = 32;
/// Blocks of fewer rows are computed one row at a time: a block costs the same whatever its
/// rows (12.3 µs at hidden 64), one row 1.08 µs (`rows_speed`, 2026-12-01), so below 12 rows
/// the one-row path is cheaper. Training rollouts end in many such blocks: as episodes finish,
/// the last few live ones still made a whole block each step.
pub const ONE_BY_ONE_BELOW: usize = 12;
/// Relative cost of [`AggNet::forward_rows`] on `live` rows, in units of one row alone: fewer
/// than [`ONE_BY_ONE_BELOW`] rows are computed one at a time, more in blocks of [`BLOCK`] rows
/// that cost about as much as `ONE_BY_ONE_BELOW` single rows.
pub fn rows_cost(live: usize) -> usize {
    if live < ONE_BY_ONE_BELOW {
        live
    } else {
        live.div_ceil(BLOCK) * ONE_BY_ONE_BELOW
    }
}

/// One feature of a block of rows.
type Col = [f32; BLOCK];

/// Raw logits and value of one row.
pub type RowOutput = ([f32; N_ACTIONS], f32);

/// Buffers of [`AggNet::forward_rows`], kept by the caller so a rollout allocates them once.
#[derive(Clone, Debug, Default)]
pub struct RowsScratch {
    /// The rows computed, in order.
    rows: Vec<u32>,
    x: Vec<Col>,
    a: Vec<Col>,
    b: Vec<Col>,
    c: Vec<Col>,
}

impl AggNet {
    /// Raw (unmasked) logits and value of the rows of `obs` (`rows × input_dim()`) that
    /// `wanted` selects (all rows for `None`), into `out` (cleared first, one entry per row;
    /// rows not wanted are left at zeros). Each row's result has the bits
    /// [`forward`](AggNet::forward) gives for it alone.
    ///
    /// # Shapes
    /// `obs`: `[rows, input_dim]` row-major; `wanted`: `[rows]`; `out`: `rows` entries.
    pub fn forward_rows(
        &self,
        obs: &[f32],
        wanted: Option<&[bool]>,
        scratch: &mut RowsScratch,
        out: &mut Vec<RowOutput>,
    ) {
        let d = self.input_dim();
        assert_eq!(obs.len() % d, 0, "observation rows of width {d}");
        let rows = obs.len() / d;
        scratch.rows.clear();
        match wanted {
            Some(w) => {
                assert_eq!(w.len(), rows, "one `wanted` flag per row");
                let picked = w.iter().enumerate().filter(|&(_, &x)| x);
                scratch.rows.extend(picked.map(|(i, _)| i as u32));
            }
            None => scratch.rows.extend(0..rows as u32),
        }
        out.clear();
        out.resize(rows, ([0.0; N_ACTIONS], 0.0));
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            unsafe { self.forward_rows_avx512(obs, scratch, out) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { self.forward_rows_avx2(obs, scratch, out) };
            return;
        }
        self.forward_rows_portable(obs, scratch, out);
    }

    /// Masked log-probabilities and value of the `wanted` rows (`mask[2i..2i + 2]` is row
    /// `i`'s), as [`log_probs`](AggNet::log_probs) gives them one row at a time.
    pub fn log_probs_rows(
        &self,
        obs: &[f32],
        mask: &[bool],
        wanted: Option<&[bool]>,
        scratch: &mut RowsScratch,
        out: &mut Vec<RowOutput>,
    ) {
        self.forward_rows(obs, wanted, scratch, out);
        assert_eq!(mask.len(), 2 * out.len(), "two mask entries per row");
        for &i in &scratch.rows {
            let (i, logits) = (i as usize, &mut out[i as usize].0);
            *logits = masked_log_softmax(*logits, [mask[2 * i], mask[2 * i + 1]]);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn forward_rows_avx512(&self, obs: &[f32], s: &mut RowsScratch, out: &mut [RowOutput]) {
        self.forward_rows_portable(obs, s, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn forward_rows_avx2(&self, obs: &[f32], s: &mut RowsScratch, out: &mut [RowOutput]) {
        self.forward_rows_portable(obs, s, out);
    }

    /// The rows listed in `s.rows`, [`BLOCK`] at a time; a block of fewer than
    /// [`ONE_BY_ONE_BELOW`] rows one row at a time.
    #[inline(always)]
    fn forward_rows_portable(&self, obs: &[f32], s: &mut RowsScratch, out: &mut [RowOutput]) {
        let (d, h) = (self.input_dim(), self.hidden());
        for (v, n) in [(&mut s.x, d), (&mut s.a, h), (&mut s.b, h), (&mut s.c, h)] {
            v.resize(n, [0.0; BLOCK]);
        }
        let rows = std::mem::take(&mut s.rows);
        for block in rows.chunks(BLOCK) {
            if block.len() < ONE_BY_ONE_BELOW {
                for &i in block {
                    let i = i as usize;
                    out[i] = self.forward(&obs[i * d..(i + 1) * d]);
                }
                continue;
            }
            // Feature-major block; slots past the last row are zeros (computed, never read).
            for (k, col) in s.x.iter_mut().enumerate() {
                for (r, v) in col.iter_mut().enumerate() {
                    *v = block.get(r).map_or(0.0, |&i| obs[i as usize * d + k]);
                }
            }
            let (logits, value) = self.block(s);
            for (r, &i) in block.iter().enumerate() {
                out[i as usize] = ([logits[0][r], logits[1][r]], value[r]);
            }
        }
        s.rows = rows;
    }

    /// The network on the block in `s.x`: logits per action and the value, each per row.
    #[inline(always)]
    fn block(&self, s: &mut RowsScratch) -> ([Col; N_ACTIONS], Col) {
        let (dense, norm) = (&self.dense, &self.norm);
        dense_rows(&dense[TRUNK1], &s.x, &mut s.a);
        norm_tanh_rows(&norm[TRUNK_LN1], &mut s.a);
        dense_rows(&dense[TRUNK2], &s.a, &mut s.b);
        norm_tanh_rows(&norm[TRUNK_LN2], &mut s.b);
        dense_rows(&dense[ACTOR1], &s.b, &mut s.a);
        norm_tanh_rows(&norm[ACTOR_LN], &mut s.a);
        let mut logits = [[0.0; BLOCK]; N_ACTIONS];
        dense_rows(&dense[ACTOR_OUT], &s.a, &mut logits);
        dense_rows(&dense[CRITIC1], &s.b, &mut s.c);
        norm_tanh_rows(&norm[CRITIC_LN], &mut s.c);
        let mut value = [[0.0; BLOCK]; 1];
        dense_rows(&dense[CRITIC_OUT], &s.c, &mut value);
        (logits, value[0])
    }
}

/// The value `Iterator::sum` starts from for `f32` (read from the library, not assumed: it
/// decides the sign of an all-zero sum).
#[inline(always)]
fn sum_start() -> f32 {
    std::iter::empty::<f32>().sum()
}

/// `y = W x + b` for a block, in [`dot`](crate::mlp::dot)'s order per row. Written out rather
/// than through [`lane_sum_rows`] with an indexing closure: that form measured 6× slower (the
/// bounds checks on `x[i]` stayed in the inner loop and it did not vectorise).
///
/// # Shapes
/// `x`: `[d_in][BLOCK]`; `y`: `[d_out][BLOCK]` (the first `d_out` columns are written).
#[inline(always)]
fn dense_rows(l: &Dense, x: &[Col], y: &mut [Col]) {
    let (d_in, full) = (l.d_in, l.d_in / 8 * 8);
    let zero = sum_start();
    for (o, yo) in y.iter_mut().enumerate().take(l.d_out) {
        let w = &l.w[o * d_in..(o + 1) * d_in];
        let mut acc = [[0.0f32; BLOCK]; 8];
        for c in (0..full).step_by(8) {
            for (k, acc_k) in acc.iter_mut().enumerate() {
                let (wk, xk) = (w[c + k], &x[c + k]);
                for r in 0..BLOCK {
                    acc_k[r] += wk * xk[r];
                }
            }
        }
        let mut tail = [zero; BLOCK];
        for i in full..d_in {
            for r in 0..BLOCK {
                tail[r] += w[i] * x[i][r];
            }
        }
        let s = sum_lanes(&acc);
        for r in 0..BLOCK {
            yo[r] = l.b[o] + (s[r] + tail[r]);
        }
    }
}

/// The 8 lane accumulators of each row summed from the left, as `acc.iter().sum()` does.
#[inline(always)]
fn sum_lanes(acc: &[Col; 8]) -> Col {
    let mut s = [sum_start(); BLOCK];
    for lane in acc {
        for r in 0..BLOCK {
            s[r] += lane[r];
        }
    }
    s
}

/// Σ f(x, row) per row, in `lane_sum`'s order (8 lanes, their sum from the left, then the tail).
#[inline(always)]
fn lane_sum_rows(x: &[Col], f: impl Fn(f32, usize) -> f32) -> Col {
    let full = x.len() / 8 * 8;
    let mut acc = [[0.0f32; BLOCK]; 8];
    for c in (0..full).step_by(8) {
        for (k, acc_k) in acc.iter_mut().enumerate() {
            for r in 0..BLOCK {
                acc_k[r] += f(x[c + k][r], r);
            }
        }
    }
    let mut tail = [sum_start(); BLOCK];
    for col in &x[full..] {
        for r in 0..BLOCK {
            tail[r] += f(col[r], r);
        }
    }
    let mut s = sum_lanes(&acc);
    for r in 0..BLOCK {
        s[r] += tail[r];
    }
    s
}

/// LayerNorm then tanh of every row of a block, as `Norm::forward_tanh` does one row.
///
/// # Shapes
/// `x`: `[features][BLOCK]`, in place.
#[inline(always)]
fn norm_tanh_rows(l: &Norm, x: &mut [Col]) {
    let n = x.len() as f32;
    let mean = lane_sum_rows(x, |v, _| v).map(|s| s / n);
    let var = lane_sum_rows(x, |v, r| (v - mean[r]) * (v - mean[r])).map(|s| s / n);
    let denom = var.map(|v| (v + LN_EPS as f32).sqrt());
    for ((col, g), b) in x.iter_mut().zip(&l.gamma).zip(&l.beta) {
        for r in 0..BLOCK {
            col[r] = (col[r] - mean[r]) / denom[r] * g + b;
        }
        tanh_lanes(col);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agg::tests::random_net_in;
    use trim_env::Rng;

    /// Every row's logits and value equal the one-row network's, to the bit: widths with and
    /// without a tail past the 8 lanes, λ- and budget-conditioned inputs, partial blocks.
    #[test]
    fn rows_equal_one_row_at_a_time_to_the_bit() {
        let mut rng = Rng::new(4);
        for (input, hidden) in [(5, 64), (6, 64), (7, 12), (5, 3), (5, 128)] {
            let net = random_net_in(input, hidden, 11);
            for rows in [0, 1, 15, 16, 17, 33, 64, 100] {
                let obs: Vec<f32> = (0..rows * input).map(|_| 4.0 * rng.f32() - 2.0).collect();
                let mut out = Vec::new();
                net.forward_rows(&obs, None, &mut RowsScratch::default(), &mut out);
                assert_eq!(out.len(), rows);
                for (i, &(logits, v)) in out.iter().enumerate() {
                    let (l1, v1) = net.forward(&obs[i * input..(i + 1) * input]);
                    let bits = |l: [f32; 2], v: f32| [l[0].to_bits(), l[1].to_bits(), v.to_bits()];
                    assert_eq!(
                        bits(logits, v),
                        bits(l1, v1),
                        "{input}→{hidden}, row {i}/{rows}"
                    );
                }
            }
        }
    }

    /// Masked log-probabilities of the wanted rows equal `log_probs` (the others stay zero),
    /// and the portable build equals the dispatched one.
    #[test]
    fn masked_rows_and_portable_build_agree() {
        let net = random_net_in(5, 64, 2);
        let mut rng = Rng::new(9);
        let obs: Vec<f32> = (0..40 * 5).map(|_| rng.f32()).collect();
        let mask: Vec<bool> = (0..80).map(|i| i % 3 != 0 || i % 2 == 0).collect();
        let mut s = RowsScratch::default();
        let (mut out, mut plain) = (Vec::new(), Vec::new());
        let wanted: Vec<bool> = (0..40).map(|i| i % 7 != 3).collect();
        net.log_probs_rows(&obs, &mask, Some(&wanted), &mut s, &mut out);
        assert_eq!(out.len(), 40);
        for (i, o) in out.iter().enumerate() {
            let one = net.log_probs(&obs[i * 5..(i + 1) * 5], [mask[2 * i], mask[2 * i + 1]]);
            let skipped = ([0.0; 2], 0.0);
            assert_eq!(*o, if wanted[i] { one } else { skipped }, "row {i}");
        }
        net.forward_rows(&obs, None, &mut s, &mut out);
        plain.resize(40, ([0.0; 2], 0.0));
        net.forward_rows_portable(&obs, &mut s, &mut plain);
        assert_eq!(out, plain);
    }

    /// Not a test: seconds per row, one at a time and batched (`cargo test --release -p
    /// trim-router rows_speed -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn rows_speed() {
        let net = random_net_in(5, 64, 2);
        let mut rng = Rng::new(9);
        let obs: Vec<f32> = (0..64 * 5).map(|_| rng.f32()).collect();
        let mut s = RowsScratch::default();
        let mut out = Vec::new();
        let reps = 20_000;
        let t = std::time::Instant::now();
        let mut acc = 0.0;
        for _ in 0..reps {
            for r in obs.chunks_exact(5) {
                acc += net.forward(r).1;
            }
        }
        let one = t.elapsed().as_secs_f64() / (reps * 64) as f64;
        let t = std::time::Instant::now();
        for _ in 0..reps {
            net.forward_rows(&obs, None, &mut s, &mut out);
            acc += out[0].1;
        }
        let rows = t.elapsed().as_secs_f64() / (reps * 64) as f64;
        println!(
            "one row {:.3} µs, batched {:.3} µs per row ({acc})",
            one * 1e6,
            rows * 1e6
        );
        for m in [1usize, 2, 4, 8, 12, 16, 20, 24, 32] {
            let o = &obs[..m * 5];
            let t = std::time::Instant::now();
            for _ in 0..reps {
                net.forward_rows(o, None, &mut s, &mut out);
                acc += out[0].1;
            }
            let blk = t.elapsed().as_secs_f64() / reps as f64;
            println!(
                "{m} rows: forward_rows {:.3} µs, one-row path × {m} {:.3} µs ({acc})",
                blk * 1e6,
                one * m as f64 * 1e6
            );
        }
    }
}
