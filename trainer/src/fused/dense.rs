//! The dense layers' loops of the fused kernels: forward `Y = X Wᵀ + b`, the weight and bias
//! gradients, and the input gradient — written so the compiler keeps the running sums in
//! vector registers (one output block per accumulator) and vectorises every inner loop.

use super::mlp::{DenseP, sum8_pair};

/// Output block width: a `[f32; BLOCK]` accumulator stays in vector registers, so the inner
/// loops are bound by arithmetic, not by the latency of a running sum.
const BLOCK: usize = 64;

/// Layers narrower than this (the heads) compute each output as one dot product instead.
const NARROW: usize = 8;

/// Rows per tile of the weight-gradient loop (32 rows × 64 inputs = 8 KB of activations).
const ROW_TILE: usize = 32;

/// `out += Σ a·x` over `terms` for one output block (`out.len() ≤ BLOCK`). A full block is
/// accumulated in a fixed-size local the compiler keeps in vector registers, so the loop is
/// bound by arithmetic rather than by loads and stores of the running sums.
#[inline(always)]
fn block_sum<'a>(out: &mut [f32], terms: impl Iterator<Item = (f32, &'a [f32])>) {
    match <&mut [f32; BLOCK]>::try_from(&mut *out) {
        Ok(out) => {
            let mut acc = *out;
            for (a, x) in terms {
                let x: &[f32; BLOCK] = x.try_into().expect("terms are as long as the block");
                for j in 0..BLOCK {
                    acc[j] += a * x[j];
                }
            }
            *out = acc;
        }
        Err(_) => {
            for (a, x) in terms {
                axpy(a, x, out);
            }
        }
    }
}

/// `y[r] = b + Σ_i x[r, i]·Wᵀ[i, :]` for every row, from the transposed weights `wt`
/// (`[d_in, d_out]`), one output block at a time.
///
/// # Shapes
/// `x: [n, d_in]`, `y: [n, d_out]`
#[inline(always)]
pub(super) fn dense_forward(d: &DenseP, wt: &[f32], x: &[f32], y: &mut [f32]) {
    let (d_in, d_out) = (d.d_in, d.d_out);
    if d_out < NARROW {
        // The heads (2 logits, 1 value): a dot product per output, in 8 lanes.
        for (xr, yr) in x.chunks_exact(d_in).zip(y.chunks_exact_mut(d_out)) {
            for ((yo, wo), bo) in yr.iter_mut().zip(d.w.chunks_exact(d_in)).zip(&d.b) {
                *yo = bo + sum8_pair(xr, wo);
            }
        }
        return;
    }
    for (xr, yr) in x.chunks_exact(d_in).zip(y.chunks_exact_mut(d_out)) {
        for start in (0..d_out).step_by(BLOCK) {
            let len = BLOCK.min(d_out - start);
            let out = &mut yr[start..start + len];
            out.copy_from_slice(&d.b[start..start + len]);
            let w_at = |i: usize| &wt[i * d_out + start..i * d_out + start + len];
            block_sum(out, xr.iter().enumerate().map(|(i, &xi)| (xi, w_at(i))));
        }
    }
}

/// `wt = Wᵀ` (`[d_in, d_out]`).
pub(super) fn transpose_into(d: &DenseP, wt: &mut Vec<f32>) {
    wt.resize(d.d_in * d.d_out, 0.0);
    for o in 0..d.d_out {
        for i in 0..d.d_in {
            wt[i * d.d_out + o] = d.w[o * d.d_in + i];
        }
    }
}

/// `y += a·x`.
#[inline(always)]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// Weight and bias gradients of a dense layer: `dW[o, :] += Σ_r dY[r, o]·X[r, :]` (one input
/// block of one output at a time, summed over the rows in a register block), `db += Σ dY`.
#[inline(always)]
pub(super) fn dense_weight_grads(d: &DenseP, x: &[f32], dy: &[f32], g: &mut DenseP) {
    let (d_in, d_out) = (d.d_in, d.d_out);
    let n = dy.len() / d_out;
    for dyr in dy.chunks_exact(d_out) {
        axpy(1.0, dyr, &mut g.b);
    }
    if d_in < NARROW {
        // The input layer (5 or 6 features): row by row, every output's short weight row in
        // turn, so consecutive updates never wait on each other.
        for (xr, dyr) in x.chunks_exact(d_in).zip(dy.chunks_exact(d_out)) {
            for (o, &gy) in dyr.iter().enumerate() {
                axpy(gy, xr, &mut g.w[o * d_in..(o + 1) * d_in]);
            }
        }
        return;
    }
    // Tiles of rows small enough to stay in L1 while every output sweeps them.
    for r0 in (0..n).step_by(ROW_TILE) {
        let rows = r0..n.min(r0 + ROW_TILE);
        for o in 0..d_out {
            for start in (0..d_in).step_by(BLOCK) {
                let len = BLOCK.min(d_in - start);
                let gw = &mut g.w[o * d_in + start..o * d_in + start + len];
                let x_at = |r: usize| &x[r * d_in + start..r * d_in + start + len];
                block_sum(gw, rows.clone().map(|r| (dy[r * d_out + o], x_at(r))));
            }
        }
    }
}

/// [`dense_weight_grads`] and the input gradient `dX = dY W` (overwritten).
#[inline(always)]
pub(super) fn dense_backward(d: &DenseP, x: &[f32], dy: &[f32], g: &mut DenseP, dx: &mut [f32]) {
    dx.fill(0.0);
    dense_backward_add(d, x, dy, g, dx);
}

/// [`dense_weight_grads`] and the input gradient `dX[r, :] += Σ_o dY[r, o]·W[o, :]`
/// (accumulated, one input block at a time).
#[inline(always)]
pub(super) fn dense_backward_add(
    d: &DenseP,
    x: &[f32],
    dy: &[f32],
    g: &mut DenseP,
    dx: &mut [f32],
) {
    dense_weight_grads(d, x, dy, g);
    let (d_in, d_out) = (d.d_in, d.d_out);
    for (dyr, dxr) in dy.chunks_exact(d_out).zip(dx.chunks_exact_mut(d_in)) {
        for start in (0..d_in).step_by(BLOCK) {
            let len = BLOCK.min(d_in - start);
            let w_at = |o: usize| &d.w[o * d_in + start..o * d_in + start + len];
            let terms = dyr.iter().enumerate().map(|(o, &gy)| (gy, w_at(o)));
            block_sum(&mut dxr[start..start + len], terms);
        }
    }
}
