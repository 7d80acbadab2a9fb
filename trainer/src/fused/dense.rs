//! The dense layers' loops of the fused kernels: forward `Y = X Wᵀ + b`, the weight and bias
//! gradients, and the input gradient — written so the compiler keeps the running sums in
//! vector registers (one output block per accumulator) and vectorises every inner loop.
//!
//! Every loop takes `R`, the rows (or outputs) that share one load of the other operand:
//! 1 in the AVX2 build (one 64-wide block is 8 of its 16 registers), 4 in the AVX-512 build
//! (4 × 64 sums fill 16 of its 32 registers). `R` changes which sums run side by side, never
//! the order of the terms within one sum, so every `R` gives the same bits (tested).

use super::mlp::DenseP;
use super::norm::sum8_pair;

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

/// `acc[k] += Σ_t coef(k, t)·vec(t)` for `t` in `0..terms`, `R` sums side by side sharing
/// each load of `vec(t)`; each sum adds its terms in `t` order.
#[inline(always)]
fn rows_sum<'a, const R: usize>(
    acc: &mut [[f32; BLOCK]; R],
    terms: usize,
    coef: impl Fn(usize, usize) -> f32,
    vec: impl Fn(usize) -> &'a [f32; BLOCK],
) {
    #[cfg(target_arch = "x86_64")]
    if R == 4 {
        debug_assert!(
            std::is_x86_feature_detected!("avx512f"),
            "4-row blocks need AVX-512F"
        );
        let acc: &mut [[f32; BLOCK]; 4] = (acc.as_mut_slice().try_into()).expect("R is 4");
        // SAFETY: only the AVX-512 builds (`Workspace::forward_avx512`, `backward_avx512`,
        // entered after run-time detection) use 4 rows per block.
        return unsafe { rows_sum4_avx512(acc, terms, &coef, &vec) };
    }
    let mut a = *acc;
    for t in 0..terms {
        let v = vec(t);
        for (k, ak) in a.iter_mut().enumerate() {
            let c = coef(k, t);
            for j in 0..BLOCK {
                ak[j] += c * v[j];
            }
        }
    }
    *acc = a;
}

/// [`rows_sum`] for 4 sums in AVX-512 registers: each term's block is loaded once into 4
/// registers and used by all 4 sums (written plainly, the compiler folded the load into every
/// multiply, 4 loads per block, and the loop stayed load-bound). Separate multiply and add,
/// in the same order as the plain loop, so the bits are the same.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn rows_sum4_avx512<'a>(
    acc: &mut [[f32; BLOCK]; 4],
    terms: usize,
    coef: impl Fn(usize, usize) -> f32,
    vec: &impl Fn(usize) -> &'a [f32; BLOCK],
) {
    use std::arch::x86_64::{__m512, _mm512_add_ps, _mm512_mul_ps, _mm512_set1_ps};
    const LANES: usize = 16;
    const V: usize = BLOCK / LANES;
    let load = |s: &[f32; BLOCK], j: usize| -> __m512 {
        let chunk: &[f32; LANES] = s[j * LANES..(j + 1) * LANES].try_into().expect("16 lanes");
        // SAFETY: `__m512` is 16 f32 lanes; the read is unaligned-safe.
        unsafe { std::ptr::read_unaligned(chunk.as_ptr().cast::<__m512>()) }
    };
    let mut a: [[__m512; V]; 4] =
        std::array::from_fn(|k| std::array::from_fn(|j| load(&acc[k], j)));
    for t in 0..terms {
        let v = vec(t);
        let v: [__m512; V] = std::array::from_fn(|j| load(v, j));
        for (k, ak) in a.iter_mut().enumerate() {
            let c = _mm512_set1_ps(coef(k, t));
            for j in 0..V {
                ak[j] = _mm512_add_ps(ak[j], _mm512_mul_ps(c, v[j]));
            }
        }
    }
    for (k, ak) in a.iter().enumerate() {
        for (j, aj) in ak.iter().enumerate() {
            let out: &mut [f32; LANES] = (&mut acc[k][j * LANES..(j + 1) * LANES])
                .try_into()
                .expect("16 lanes");
            // SAFETY: as for the loads.
            unsafe { std::ptr::write_unaligned(out.as_mut_ptr().cast::<__m512>(), *aj) };
        }
    }
}

/// A full block of `s` from `at`.
#[inline(always)]
fn block_at(s: &[f32], at: usize) -> &[f32; BLOCK] {
    s[at..at + BLOCK].try_into().expect("a full block")
}

/// Loads `R` blocks (`at(k)` is block `k`'s offset in `s`) into registers.
#[inline(always)]
fn load_blocks<const R: usize>(s: &[f32], at: impl Fn(usize) -> usize) -> [[f32; BLOCK]; R] {
    std::array::from_fn(|k| *block_at(s, at(k)))
}

/// Stores `R` blocks back where [`load_blocks`] took them from.
#[inline(always)]
fn store_blocks<const R: usize>(
    acc: &[[f32; BLOCK]; R],
    s: &mut [f32],
    at: impl Fn(usize) -> usize,
) {
    for (k, a) in acc.iter().enumerate() {
        s[at(k)..at(k) + BLOCK].copy_from_slice(a);
    }
}

/// `y[r] = b + Σ_i x[r, i]·Wᵀ[i, :]` for every row, from the transposed weights `wt`
/// (`[d_in, d_out]`), one output block at a time, `R` rows at once.
///
/// # Shapes
/// `x: [n, d_in]`, `y: [n, d_out]`
#[inline(always)]
pub(super) fn dense_forward<const R: usize>(d: &DenseP, wt: &[f32], x: &[f32], y: &mut [f32]) {
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
    let n = y.len() / d_out;
    let blocked = if d_out % BLOCK == 0 { n / R * R } else { 0 };
    for r0 in (0..blocked).step_by(R) {
        for start in (0..d_out).step_by(BLOCK) {
            let mut acc: [[f32; BLOCK]; R] = [*block_at(&d.b, start); R];
            let coef = |k: usize, i: usize| x[(r0 + k) * d_in + i];
            rows_sum(&mut acc, d_in, coef, |i| block_at(wt, i * d_out + start));
            store_blocks(&acc, y, |k| (r0 + k) * d_out + start);
        }
    }
    let rest = blocked..n;
    let (x, y) = (&x[rest.start * d_in..], &mut y[rest.start * d_out..]);
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
/// block of one output at a time — `R` outputs at once — summed over the rows of a tile),
/// `db += Σ dY`.
#[inline(always)]
pub(super) fn dense_weight_grads<const R: usize>(
    d: &DenseP,
    x: &[f32],
    dy: &[f32],
    g: &mut DenseP,
) {
    let (d_in, d_out) = (d.d_in, d.d_out);
    let n = dy.len() / d_out;
    // `db += Σ_r 1·dY[r, :]` in row order, one output block in registers at a time.
    for start in (0..d_out).step_by(BLOCK) {
        let len = BLOCK.min(d_out - start);
        let rows = dy
            .chunks_exact(d_out)
            .map(|r| (1.0, &r[start..start + len]));
        block_sum(&mut g.b[start..start + len], rows);
    }
    if d_in < NARROW {
        if d_out % BLOCK == 0 {
            return narrow_input_grads::<R>(d_in, d_out, x, dy, &mut g.w);
        }
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
    let blocked = if d_in % BLOCK == 0 { d_out / R * R } else { 0 };
    for r0 in (0..n).step_by(ROW_TILE) {
        let rows = r0..n.min(r0 + ROW_TILE);
        for o0 in (0..blocked).step_by(R) {
            for start in (0..d_in).step_by(BLOCK) {
                let at = |k: usize| (o0 + k) * d_in + start;
                let mut acc = load_blocks::<R>(&g.w, at);
                let coef = |k: usize, t: usize| dy[(r0 + t) * d_out + o0 + k];
                rows_sum(&mut acc, rows.len(), coef, |t| {
                    block_at(x, (r0 + t) * d_in + start)
                });
                store_blocks(&acc, &mut g.w, at);
            }
        }
        for o in blocked..d_out {
            for start in (0..d_in).step_by(BLOCK) {
                let len = BLOCK.min(d_in - start);
                let gw = &mut g.w[o * d_in + start..o * d_in + start + len];
                let x_at = |r: usize| &x[r * d_in + start..r * d_in + start + len];
                block_sum(gw, rows.clone().map(|r| (dy[r * d_out + o], x_at(r))));
            }
        }
    }
}

/// The weight gradients of a layer with few inputs (the input layer: 5 or 6 features) and
/// whole output blocks: `dW[:, i] += Σ_r X[r, i]·dY[r, :]`, one input column per register
/// block (`R` columns at once) — each element's terms in row order, as the row-by-row loop
/// adds them (`dY·X` and `X·dY` are the same product), so the bits are the same. Row by row,
/// the 5-wide updates ran one lane at a time: 16 % of the backward pass.
///
/// # Shapes
/// `x: [n, d_in]`, `dy: [n, d_out]`, `gw: [d_out, d_in]`
#[inline(always)]
fn narrow_input_grads<const R: usize>(
    d_in: usize,
    d_out: usize,
    x: &[f32],
    dy: &[f32],
    gw: &mut [f32],
) {
    let n = dy.len() / d_out;
    let full = d_in / R * R;
    for i0 in (0..full).step_by(R) {
        input_columns::<R>(i0, (d_in, d_out, n), x, dy, gw);
    }
    for i0 in full..d_in {
        input_columns::<1>(i0, (d_in, d_out, n), x, dy, gw);
    }
}

/// [`narrow_input_grads`] for the `R` input columns from `i0`.
#[inline(always)]
fn input_columns<const R: usize>(
    i0: usize,
    (d_in, d_out, n): (usize, usize, usize),
    x: &[f32],
    dy: &[f32],
    gw: &mut [f32],
) {
    for start in (0..d_out).step_by(BLOCK) {
        let at = |k: usize, j: usize| (start + j) * d_in + i0 + k;
        let mut acc: [[f32; BLOCK]; R] =
            std::array::from_fn(|k| std::array::from_fn(|j| gw[at(k, j)]));
        let coef = |k: usize, r: usize| x[r * d_in + i0 + k];
        rows_sum(&mut acc, n, coef, |r| block_at(dy, r * d_out + start));
        for (k, ak) in acc.iter().enumerate() {
            for (j, &v) in ak.iter().enumerate() {
                gw[at(k, j)] = v;
            }
        }
    }
}

/// [`dense_weight_grads`] and the input gradient `dX = dY W` (overwritten).
#[inline(always)]
pub(super) fn dense_backward<const R: usize>(
    d: &DenseP,
    x: &[f32],
    dy: &[f32],
    g: &mut DenseP,
    dx: &mut [f32],
) {
    dx.fill(0.0);
    dense_backward_add::<R>(d, x, dy, g, dx);
}

/// [`dense_weight_grads`] and the input gradient `dX[r, :] += Σ_o dY[r, o]·W[o, :]`
/// (accumulated, one input block at a time, `R` rows at once).
#[inline(always)]
pub(super) fn dense_backward_add<const R: usize>(
    d: &DenseP,
    x: &[f32],
    dy: &[f32],
    g: &mut DenseP,
    dx: &mut [f32],
) {
    dense_weight_grads::<R>(d, x, dy, g);
    let (d_in, d_out) = (d.d_in, d.d_out);
    let n = dy.len() / d_out;
    let blocked = if d_in % BLOCK == 0 { n / R * R } else { 0 };
    for r0 in (0..blocked).step_by(R) {
        for start in (0..d_in).step_by(BLOCK) {
            let at = |k: usize| (r0 + k) * d_in + start;
            let mut acc = load_blocks::<R>(dx, at);
            let coef = |k: usize, o: usize| dy[(r0 + k) * d_out + o];
            rows_sum(&mut acc, d_out, coef, |o| block_at(&d.w, o * d_in + start));
            store_blocks(&acc, dx, at);
        }
    }
    let (dy, dx) = (&dy[blocked * d_out..], &mut dx[blocked * d_in..]);
    for (dyr, dxr) in dy.chunks_exact(d_out).zip(dx.chunks_exact_mut(d_in)) {
        for start in (0..d_in).step_by(BLOCK) {
            let len = BLOCK.min(d_in - start);
            let w_at = |o: usize| &d.w[o * d_in + start..o * d_in + start + len];
            let terms = dyr.iter().enumerate().map(|(o, &gy)| (gy, w_at(o)));
            block_sum(&mut dxr[start..start + len], terms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trim_env::Rng;

    /// The gradients as the row-by-row loop adds them: every element's terms in row order.
    fn reference(d_in: usize, d_out: usize, x: &[f32], dy: &[f32], g: &mut DenseP) {
        for (xr, dyr) in x.chunks_exact(d_in).zip(dy.chunks_exact(d_out)) {
            for (o, &gy) in dyr.iter().enumerate() {
                g.b[o] += 1.0 * gy;
                for (i, &xi) in xr.iter().enumerate() {
                    g.w[o * d_in + i] += gy * xi;
                }
            }
        }
    }

    /// Every layer shape's weight gradients (the input layer's column blocks, the hidden
    /// layers' row tiles, the heads' dot products) and the register-held bias sums give the
    /// row-by-row loop's bits, for either blocking and for widths that are and are not whole
    /// blocks.
    #[test]
    fn weight_grads_keep_the_row_by_row_bits() {
        let mut rng = Rng::new(5);
        let mut draw =
            |len: usize| -> Vec<f32> { (0..len).map(|_| rng.f32() * 2.0 - 1.0).collect() };
        for (d_in, d_out, n) in [
            (5, 64, 97),
            (6, 128, 33),
            (5, 48, 10),
            (64, 64, 70),
            (64, 2, 9),
        ] {
            let (x, dy) = (draw(n * d_in), draw(n * d_out));
            let layer = DenseP {
                d_in,
                d_out,
                w: draw(d_in * d_out),
                b: draw(d_out),
            };
            let start = DenseP {
                d_in,
                d_out,
                w: draw(d_in * d_out),
                b: draw(d_out),
            };
            let mut want = start.clone();
            reference(d_in, d_out, &x, &dy, &mut want);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            let mut got = start.clone();
            dense_weight_grads::<1>(&layer, &x, &dy, &mut got);
            assert_eq!(bits(&got.b), bits(&want.b), "bias, {d_in}→{d_out}");
            assert_eq!(bits(&got.w), bits(&want.w), "weights, {d_in}→{d_out}");
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx512f") {
                let mut blocked = start.clone();
                dense_weight_grads::<4>(&layer, &x, &dy, &mut blocked);
                assert_eq!(bits(&blocked.w), bits(&got.w), "4-blocked, {d_in}→{d_out}");
                assert_eq!(
                    bits(&blocked.b),
                    bits(&got.b),
                    "4-blocked bias, {d_in}→{d_out}"
                );
            }
        }
    }
}
