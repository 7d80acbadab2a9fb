//! A regular grid on the belief simplex and piecewise-linear interpolation over it.
//!
//! Points are `(b0, b1, b2) = (i/N, j/N, 1 − i/N − j/N)` for `i + j ≤ N`: step 1/N in every
//! coordinate (the release's step 0.025 is N = 40: 861 points). Each grid cell is split into two
//! triangles and a belief's value is the barycentric mix of its triangle's three vertices — exact
//! at grid points and linear in between, so a convex value function is over-estimated by at most
//! its curvature times the squared cell size, which vanishes as N grows (tested).

use crate::model::Belief;

/// The grid with `n` divisions per side.
#[derive(Clone, Debug, PartialEq)]
pub struct SimplexGrid {
    n: usize,
    /// Index of the first point of each row `i`.
    row_start: Vec<usize>,
}

impl SimplexGrid {
    /// `n ≥ 1` divisions per side (step 1/n).
    pub fn new(n: usize) -> Self {
        assert!(n >= 1, "a simplex grid needs at least one division");
        let mut row_start = Vec::with_capacity(n + 2);
        let mut acc = 0;
        for i in 0..=n {
            row_start.push(acc);
            acc += n - i + 1;
        }
        row_start.push(acc);
        SimplexGrid { n, row_start }
    }

    /// Divisions per side.
    pub fn divisions(&self) -> usize {
        self.n
    }

    /// Number of grid points: (n + 1)(n + 2) / 2.
    pub fn len(&self) -> usize {
        self.row_start[self.n + 1]
    }

    /// Always false (a grid has at least 3 points).
    pub fn is_empty(&self) -> bool {
        false
    }

    #[inline]
    fn index(&self, i: usize, j: usize) -> usize {
        self.row_start[i] + j
    }

    /// The belief at every grid point, in index order.
    pub fn points(&self) -> Vec<Belief> {
        let n = self.n as f64;
        let mut v = Vec::with_capacity(self.len());
        for i in 0..=self.n {
            for j in 0..=self.n - i {
                let (b0, b1) = (i as f64 / n, j as f64 / n);
                v.push([b0, b1, (1.0 - b0 - b1).max(0.0)]);
            }
        }
        v
    }

    /// The grid point nearest `b` (for table look-ups that snap, as the release does).
    pub fn nearest(&self, b: &Belief) -> usize {
        let n = self.n as f64;
        let i = ((b[0].clamp(0.0, 1.0) * n).round() as usize).min(self.n);
        let j = ((b[1].clamp(0.0, 1.0) * n).round() as usize).min(self.n - i);
        self.index(i, j)
    }

    /// Piecewise-linear interpolation of `values` (one per grid point) at belief `b`.
    #[inline]
    pub fn interpolate(&self, values: &[f64], b: &Belief) -> f64 {
        self.interpolate_by(|g| values[g], b)
    }

    /// [`interpolate`](Self::interpolate) of the value `value(g)` of grid point `g`.
    #[inline]
    pub fn interpolate_by(&self, value: impl Fn(usize) -> f64, b: &Belief) -> f64 {
        self.corners(b).apply(value)
    }

    /// Where `b` falls: its grid point, or its triangle's corners and their weights.
    #[inline]
    pub fn corners(&self, b: &Belief) -> Corners {
        let n = self.n;
        let x = b[0].clamp(0.0, 1.0) * n as f64;
        let y = b[1].clamp(0.0, 1.0) * n as f64;
        // `x as usize` is `x.floor() as usize` for x ≥ 0 (and 0 for NaN, as floor's is) without
        // the libm call `floor` is on x86-64's baseline: the solver's hottest line.
        let i = (x as usize).min(n);
        let j = (y as usize).min(n - i);
        if i + j == n {
            return Corners::Point(self.index(i, j));
        }
        let (fx, fy) = ((x - i as f64).max(0.0), (y - j as f64).max(0.0));
        let at = |a: usize, c: usize| self.index(a, c);
        if fx + fy <= 1.0 || i + j + 2 > n {
            // Lower triangle (i,j), (i+1,j), (i,j+1); rounding past its hypotenuse is clamped.
            let s = (fx + fy).max(1.0);
            // Dividing by exactly 1 changes nothing (IEEE), and s is 1 inside the triangle.
            let (fx, fy) = if s == 1.0 { (fx, fy) } else { (fx / s, fy / s) };
            Corners::Triangle(
                [at(i, j), at(i + 1, j), at(i, j + 1)],
                [1.0 - fx - fy, fx, fy],
            )
        } else {
            Corners::Triangle(
                [at(i + 1, j + 1), at(i + 1, j), at(i, j + 1)],
                [fx + fy - 1.0, 1.0 - fy, 1.0 - fx],
            )
        }
    }
}

/// Where a belief falls on the grid ([`SimplexGrid::corners`]): kept so that many value
/// tables can be interpolated at one belief while its corners and weights are found once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Corners {
    /// Exactly on a vertex of the simplex.
    Point(usize),
    /// The corners of the belief's triangle and their barycentric weights.
    Triangle([usize; 3], [f64; 3]),
}

impl Corners {
    /// The interpolated value of `value(g)` (grid point `g`): `w0·v0 + w1·v1 + w2·v2`, summed
    /// left to right.
    #[inline]
    pub fn apply(&self, value: impl Fn(usize) -> f64) -> f64 {
        match *self {
            Corners::Point(g) => value(g),
            Corners::Triangle(g, w) => w[0] * value(g[0]) + w[1] * value(g[1]) + w[2] * value(g[2]),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A belief drawn uniformly from the simplex (tests only).
    pub(crate) fn random_belief(rng: &mut trim_env::Rng) -> Belief {
        let (u, v) = (rng.f64(), rng.f64());
        let (a, b) = if u + v > 1.0 {
            (1.0 - u, 1.0 - v)
        } else {
            (u, v)
        };
        [a, b, 1.0 - a - b]
    }

    #[test]
    fn interpolation_is_exact_at_points_and_for_linear_functions() {
        for n in [1, 2, 5, 40] {
            let g = SimplexGrid::new(n);
            assert_eq!(g.len(), (n + 1) * (n + 2) / 2);
            let pts = g.points();
            let lin = |b: &Belief| 0.3 + 2.0 * b[0] - 1.5 * b[1] + 0.7 * b[2];
            let values: Vec<f64> = pts.iter().map(lin).collect();
            for (k, p) in pts.iter().enumerate() {
                assert!((g.interpolate(&values, p) - values[k]).abs() < 1e-12);
                assert_eq!(g.nearest(p), k);
            }
            let mut rng = trim_env::Rng::new(n as u64);
            for _ in 0..500 {
                let bel = random_belief(&mut rng);
                assert!(
                    (g.interpolate(&values, &bel) - lin(&bel)).abs() < 1e-9,
                    "{n} {bel:?}"
                );
            }
        }
    }

    #[test]
    fn convex_functions_are_overestimated_by_less_as_the_grid_refines() {
        let f = |b: &Belief| b[0] * b[0] + b[1] * b[1] + b[2] * b[2];
        let worst = |n: usize| {
            let g = SimplexGrid::new(n);
            let values: Vec<f64> = g.points().iter().map(f).collect();
            let mut w: f64 = 0.0;
            let mut rng = trim_env::Rng::new(3);
            for _ in 0..2000 {
                let bel = random_belief(&mut rng);
                let err = g.interpolate(&values, &bel) - f(&bel);
                assert!(
                    err >= -1e-12,
                    "linear interpolation of a convex function is above it"
                );
                w = w.max(err);
            }
            w
        };
        let (coarse, fine) = (worst(10), worst(40));
        assert!(fine < coarse / 10.0, "{coarse} {fine}");
    }
}
