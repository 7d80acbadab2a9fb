//! Percentile-bootstrap confidence intervals of a mean, several resamples summed side by side,
//! and [`Resamples`]: the draws kept for many intervals over the same problems.
//!
//! Why: a report puts a CI on the accuracy and the cost of every operating point — about a
//! thousand CIs over the same 2000 problems, 1000 resamples each, all from the same seed, so
//! all from the same 2 M resample indices. One resample's mean is a chain of 2000 dependent
//! adds (latency-bound), after 2000 draws of the generator; the CIs took a third of a
//! report's time. Here [`LANES`] resamples are summed together (independent chains), and
//! [`Resamples`] draws the indices once. Each resample still sums its values in draw order
//! from the same start, so every interval has the bits of the one-resample-at-a-time loop.

use rayon::prelude::*;

use crate::rng::Rng;

/// Resamples summed together.
const LANES: usize = 8;

/// Kept resample indices above this many are not worth their memory: [`Resamples::new`] keeps
/// none and [`Resamples::mean_ci`] draws as it goes, as [`bootstrap_ci`] does.
const MAX_KEPT: usize = 8 << 20;

/// The value `Iterator::sum` starts from for `f64` (read from the library, not assumed: it
/// decides the sign of an all-zero sum).
fn sum_start() -> f64 {
    std::iter::empty::<f64>().sum()
}

/// The 2.5 % and 97.5 % percentiles of `v` (sorted here), as the bootstraps report them.
pub(crate) fn percentiles_95(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    (q(0.025), q(0.975))
}

/// The means of `values` over `out.len()` resamples whose indices are `idx` (resample-major,
/// `n` each), summed side by side.
fn block_means(values: &[f64], idx: &[u32], out: &mut [f64]) {
    let (n, k) = (values.len(), out.len());
    let mut s = [sum_start(); LANES];
    for j in 0..n {
        for (l, s) in s.iter_mut().enumerate().take(k) {
            *s += values[idx[l * n + j] as usize];
        }
    }
    for (o, s) in out.iter_mut().zip(s) {
        *o = s / n as f64;
    }
}

/// `idx` ← the next `idx.len()` draws of `0..n` from `rng`, in order.
fn draw(idx: &mut [u32], n: usize, rng: &mut Rng) {
    for i in idx {
        *i = rng.below(n as u64) as u32;
    }
}

/// 95 % percentile-bootstrap confidence interval of the mean of per-problem values.
pub fn bootstrap_ci(values: &[f64], resamples: u32, seed: u64) -> Option<(f64, f64)> {
    let n = values.len();
    if n == 0 || resamples == 0 || n > u32::MAX as usize {
        return None;
    }
    let mut rng = Rng::new(seed);
    let mut means = vec![0.0; resamples as usize];
    let mut idx = vec![0u32; LANES * n];
    for block in means.chunks_mut(LANES) {
        let idx = &mut idx[..block.len() * n];
        draw(idx, n, &mut rng);
        block_means(values, idx, block);
    }
    Some(percentiles_95(means))
}

/// The resample indices of [`bootstrap_ci`] for `n` values, `resamples` resamples and a seed,
/// drawn once: every [`Self::mean_ci`] gives the interval `bootstrap_ci` gives with the same
/// arguments, bit for bit, without drawing again (and its resamples in parallel).
#[derive(Clone, Debug)]
pub struct Resamples {
    n: usize,
    resamples: u32,
    seed: u64,
    /// `[resamples × n]`, resample-major; empty when too many to keep.
    idx: Vec<u32>,
}

impl Resamples {
    pub fn new(n: usize, resamples: u32, seed: u64) -> Self {
        let total = n.saturating_mul(resamples as usize);
        let mut idx = vec![];
        if n > 0 && n <= u32::MAX as usize && total <= MAX_KEPT {
            idx = vec![0; total];
            draw(&mut idx, n, &mut Rng::new(seed));
        }
        Resamples {
            n,
            resamples,
            seed,
            idx,
        }
    }

    /// `bootstrap_ci(values, resamples, seed)`; `values` must hold `self.len()` values (else
    /// it is computed from scratch).
    pub fn mean_ci(&self, values: &[f64]) -> Option<(f64, f64)> {
        let n = values.len();
        if n != self.n || self.idx.is_empty() || self.resamples == 0 {
            return bootstrap_ci(values, self.resamples, self.seed);
        }
        let mut means = vec![0.0; self.resamples as usize];
        (means
            .par_chunks_mut(LANES)
            .zip(self.idx.par_chunks(LANES * n)))
        .for_each(|(block, idx)| block_means(values, idx, block));
        Some(percentiles_95(means))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resample loop as it was, one resample at a time: the reference for the bits.
    fn one_at_a_time(values: &[f64], resamples: u32, seed: u64) -> Option<(f64, f64)> {
        let n = values.len();
        if n == 0 || resamples == 0 {
            return None;
        }
        let mut rng = Rng::new(seed);
        let means: Vec<f64> = (0..resamples)
            .map(|_| {
                (0..n)
                    .map(|_| values[rng.below(n as u64) as usize])
                    .sum::<f64>()
                    / n as f64
            })
            .collect();
        Some(percentiles_95(means))
    }

    /// Side-by-side sums and kept draws give the reference's bits: resample counts that are
    /// and are not multiples of the lanes, one value, values with signed zeros and wide ranges,
    /// and a second value vector on the same kept draws.
    #[test]
    fn intervals_have_the_one_at_a_time_bits() {
        let mut rng = Rng::new(3);
        for (n, resamples) in [(1, 5), (7, 1), (50, 13), (500, 1000), (2000, 64)] {
            let a: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i % 3 == 0))).collect();
            let b: Vec<f64> = (0..n)
                .map(|i| match i % 4 {
                    0 => -0.0,
                    1 => 1e-300 * rng.f64(),
                    2 => 1e300 * rng.f64(),
                    _ => rng.f64(),
                })
                .collect();
            let kept = Resamples::new(n, resamples, 17);
            for v in [&a, &b] {
                let want = one_at_a_time(v, resamples, 17).map(|(l, h)| (l.to_bits(), h.to_bits()));
                let got = bootstrap_ci(v, resamples, 17).map(|(l, h)| (l.to_bits(), h.to_bits()));
                assert_eq!(got, want, "n {n}, {resamples} resamples");
                let kept = kept.mean_ci(v).map(|(l, h)| (l.to_bits(), h.to_bits()));
                assert_eq!(kept, want, "kept draws, n {n}");
            }
        }
        // Other lengths than the kept draws' are computed from scratch.
        let kept = Resamples::new(10, 100, 1);
        let v = [0.5; 12];
        assert_eq!(kept.mean_ci(&v), bootstrap_ci(&v, 100, 1));
        assert_eq!(Resamples::new(0, 10, 1).mean_ci(&[]), None);
    }
}
