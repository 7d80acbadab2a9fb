//! Routing metrics on accuracy-vs-cost curves (definitions: anchors.md §3, trim-paper.md §4).
//!
//! Cost is the strong-token fraction `c` (strong tokens ÷ always-strong's strong tokens on the same
//! problems; 0 = always-weak, 1 = always-strong). Curves are sets of operating points; CPT, AUC and
//! APGR are computed on the **monotone upper envelope** (sort by cost, keep the running maximum of
//! accuracy), because real curves are often non-monotone and interpolating them raw is wrong.

use crate::rng::Rng;

/// One operating point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Strong-token cost fraction.
    pub cost: f64,
    pub accuracy: f64,
}

/// Accuracies of the two anchors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Anchors {
    pub weak: f64,
    pub strong: f64,
}

impl Anchors {
    /// The accuracy gap; metrics that divide by it return `None` when it is (nearly) zero.
    fn gap(&self) -> Option<f64> {
        let g = self.strong - self.weak;
        (g.abs() > 1e-12).then_some(g)
    }
}

/// Performance gap recovered: `(acc − acc_w) / (acc_s − acc_w)`.
pub fn pgr(accuracy: f64, a: Anchors) -> Option<f64> {
    a.gap().map(|g| (accuracy - a.weak) / g)
}

/// The monotone upper envelope: points sorted by cost, each strictly more accurate than every
/// cheaper one (dominated points dropped; at equal cost the most accurate is kept).
pub fn upper_envelope(points: &[Point]) -> Vec<Point> {
    let mut ps: Vec<Point> = points
        .iter()
        .copied()
        .filter(|p| p.cost.is_finite() && p.accuracy.is_finite())
        .collect();
    ps.sort_by(|a, b| {
        a.cost
            .total_cmp(&b.cost)
            .then(b.accuracy.total_cmp(&a.accuracy))
    });
    let mut env: Vec<Point> = Vec::with_capacity(ps.len());
    for p in ps {
        if env.last().is_none_or(|l| p.accuracy > l.accuracy) {
            env.push(p);
        }
    }
    env
}

/// CPT(x): the smallest cost at which the envelope (linearly interpolated between its points)
/// recovers a fraction `x` of the gap; `None` when it is never reached.
pub fn cpt(points: &[Point], x: f64, a: Anchors) -> Option<f64> {
    let target = a.weak + x * a.gap()?;
    let env = upper_envelope(points);
    let i = env.iter().position(|p| p.accuracy >= target - 1e-12)?;
    if i == 0 {
        return Some(env[0].cost);
    }
    let (lo, hi) = (env[i - 1], env[i]);
    let t = (target - lo.accuracy) / (hi.accuracy - lo.accuracy);
    Some(lo.cost + t * (hi.cost - lo.cost))
}

/// ΔIBC of one point (AutoMix, with C_w = 0 and C_s = 1 in cost-fraction units):
/// `(IBC − IBC_base) / IBC_base`, `IBC = (acc − acc_w) / c`, `IBC_base = acc_s − acc_w`.
/// `None` at zero cost or with no gap.
pub fn delta_ibc(p: Point, a: Anchors) -> Option<f64> {
    let base = a.gap()?;
    if p.cost <= 1e-12 {
        return None;
    }
    Some(((p.accuracy - a.weak) / p.cost - base) / base)
}

/// ΔIBC averaged over every point of a curve with positive cost.
pub fn delta_ibc_mean(points: &[Point], a: Anchors) -> Option<f64> {
    let v: Vec<f64> = points.iter().filter_map(|&p| delta_ibc(p, a)).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// ΔIBC at the CPT(x) point of the curve (accuracy = the target there).
pub fn delta_ibc_at_cpt(points: &[Point], x: f64, a: Anchors) -> Option<f64> {
    let c = cpt(points, x, a)?;
    delta_ibc(
        Point {
            cost: c,
            accuracy: a.weak + x * a.gap()?,
        },
        a,
    )
}

/// Area under the envelope over `c ∈ [0, 1]` (trapezoids). The envelope starts at the always-weak
/// point `(0, acc_w)` (any policy can fall back to it) and stays flat after its last point.
pub fn auc(points: &[Point], a: Anchors) -> f64 {
    let mut ps = points.to_vec();
    ps.push(Point {
        cost: 0.0,
        accuracy: a.weak,
    });
    let env: Vec<Point> = upper_envelope(&ps)
        .into_iter()
        .filter(|p| p.cost <= 1.0)
        .collect();
    let mut area = 0.0;
    for w in env.windows(2) {
        area += (w[1].cost - w[0].cost) * (w[0].accuracy + w[1].accuracy) / 2.0;
    }
    if let Some(last) = env.last() {
        area += (1.0 - last.cost) * last.accuracy;
    }
    area
}

/// APGR over `c ∈ [0, 1]`: `(AUC − acc_w) / (acc_s − acc_w)` (RouteLLM's code form, equal to the
/// paper's integral of PGR when the x-range is [0, 1]).
pub fn apgr(points: &[Point], a: Anchors) -> Option<f64> {
    a.gap().map(|g| (auc(points, a) - a.weak) / g)
}

/// Best accuracy among points whose cost is within `budget` (a staircase: only operating points
/// that exist count). `None` when no point is that cheap.
pub fn accuracy_at_budget(points: &[Point], budget: f64) -> Option<f64> {
    points
        .iter()
        .filter(|p| p.cost <= budget + 1e-12)
        .map(|p| p.accuracy)
        .max_by(f64::total_cmp)
}

pub use crate::bootstrap::{Resamples, bootstrap_ci};

/// 95 % percentile-bootstrap confidence interval of a ratio of sums `Σ num / Σ den` over
/// problems (a rate such as strong calls per decision), resampling problems. `None` when empty
/// or when a resample's denominator is 0.
pub fn bootstrap_ratio_ci(
    num: &[f64],
    den: &[f64],
    resamples: u32,
    seed: u64,
) -> Option<(f64, f64)> {
    let n = num.len();
    if n == 0 || n != den.len() || resamples == 0 {
        return None;
    }
    let mut rng = Rng::new(seed);
    let mut ratios = Vec::with_capacity(resamples as usize);
    for _ in 0..resamples {
        let (mut a, mut b) = (0.0, 0.0);
        for _ in 0..n {
            let i = rng.below(n as u64) as usize;
            a += num[i];
            b += den[i];
        }
        if b <= 0.0 {
            return None;
        }
        ratios.push(a / b);
    }
    Some(crate::bootstrap::percentiles_95(ratios))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_bootstrap_brackets_the_ratio_and_is_deterministic() {
        let num: Vec<f64> = (0..200).map(|i| f64::from(i % 3)).collect();
        let den: Vec<f64> = (0..200).map(|i| f64::from(2 + i % 5)).collect();
        let r = num.iter().sum::<f64>() / den.iter().sum::<f64>();
        let (lo, hi) = bootstrap_ratio_ci(&num, &den, 1000, 3).unwrap();
        assert!(lo < r && r < hi && hi - lo < 0.2, "{lo} {r} {hi}");
        assert_eq!(bootstrap_ratio_ci(&num, &den, 1000, 3), Some((lo, hi)));
        assert_eq!(bootstrap_ratio_ci(&[], &[], 10, 0), None);
        assert_eq!(bootstrap_ratio_ci(&[1.0], &[0.0], 10, 0), None);
    }

    const A: Anchors = Anchors {
        weak: 0.4,
        strong: 0.8,
    };

    fn pts(v: &[(f64, f64)]) -> Vec<Point> {
        v.iter()
            .map(|&(cost, accuracy)| Point { cost, accuracy })
            .collect()
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn pgr_and_envelope() {
        assert!(close(pgr(0.6, A), 0.5));
        assert_eq!(
            pgr(
                0.6,
                Anchors {
                    weak: 0.5,
                    strong: 0.5
                }
            ),
            None
        );
        // Non-monotone: (0.3, 0.7) dominates (0.5, 0.65); equal-cost duplicates keep the best.
        let env = upper_envelope(&pts(&[
            (0.5, 0.65),
            (0.3, 0.7),
            (0.1, 0.5),
            (0.1, 0.45),
            (0.9, 0.8),
        ]));
        assert_eq!(env, pts(&[(0.1, 0.5), (0.3, 0.7), (0.9, 0.8)]));
    }

    #[test]
    fn cpt_interpolates_on_the_envelope() {
        let curve = pts(&[(0.0, 0.4), (0.2, 0.6), (0.4, 0.5), (0.6, 0.8)]);
        // 50 % target = 0.6 → reached exactly at c = 0.2.
        assert!(close(cpt(&curve, 0.5, A), 0.2));
        // 80 % target = 0.72: between (0.2, 0.6) and (0.6, 0.8) → 0.2 + 0.6·0.4 = 0.44.
        assert!(close(cpt(&curve, 0.8, A), 0.44));
        // The dip at (0.4, 0.5) is ignored; a curve that tops out at 0.7 never reaches 95 %.
        assert_eq!(cpt(&pts(&[(0.1, 0.5), (0.5, 0.7)]), 0.95, A), None);
        // Target met by the cheapest point already.
        assert!(close(cpt(&pts(&[(0.05, 0.9)]), 0.95, A), 0.05));
    }

    #[test]
    fn delta_ibc_by_hand() {
        // IBC_base = 0.4; point (0.2, 0.6): IBC = 0.2 / 0.2 = 1 → ΔIBC = (1 − 0.4)/0.4 = 1.5.
        assert!(close(
            delta_ibc(
                Point {
                    cost: 0.2,
                    accuracy: 0.6
                },
                A
            ),
            1.5
        ));
        assert_eq!(
            delta_ibc(
                Point {
                    cost: 0.0,
                    accuracy: 0.6
                },
                A
            ),
            None
        );
        // On the straight weak→strong line ΔIBC = 0.
        assert!(close(
            delta_ibc(
                Point {
                    cost: 0.5,
                    accuracy: 0.6
                },
                A
            ),
            0.0
        ));
        let curve = pts(&[(0.0, 0.4), (0.2, 0.6), (0.5, 0.6)]);
        assert!(close(delta_ibc_mean(&curve, A), 0.75));
        // CPT(50%) at c = 0.2, accuracy 0.6 → 1.5.
        assert!(close(delta_ibc_at_cpt(&curve, 0.5, A), 1.5));
    }

    #[test]
    fn auc_and_apgr_by_hand() {
        // Always-strong only: envelope (0, 0.4) → (1, 0.8): area 0.6, APGR 0.5 (random routing).
        let line = pts(&[(1.0, 0.8)]);
        assert!((auc(&line, A) - 0.6).abs() < 1e-12);
        assert!(close(apgr(&line, A), 0.5));
        // Reaches 0.8 at c = 0.2 then flat: 0.2·(0.4+0.8)/2 + 0.8·0.8 = 0.12 + 0.64 = 0.76.
        let good = pts(&[(0.2, 0.8), (0.6, 0.7)]);
        assert!((auc(&good, A) - 0.76).abs() < 1e-12);
        assert!(close(apgr(&good, A), 0.9));
        // No point at all: the flat always-weak line → APGR 0.
        assert!(close(apgr(&[], A), 0.0));
    }

    #[test]
    fn budget_and_bootstrap() {
        let curve = pts(&[(0.1, 0.5), (0.2, 0.45), (0.5, 0.7)]);
        assert_eq!(accuracy_at_budget(&curve, 0.2), Some(0.5));
        assert_eq!(accuracy_at_budget(&curve, 0.5), Some(0.7));
        assert_eq!(accuracy_at_budget(&curve, 0.05), None);
        let v: Vec<f64> = (0..400).map(|i| f64::from(i % 2)).collect();
        let (lo, hi) = bootstrap_ci(&v, 2000, 1).unwrap();
        // Mean 0.5, standard error 0.025 → CI ≈ 0.5 ± 0.049.
        assert!(
            lo < 0.5 && hi > 0.5 && (hi - lo - 0.098).abs() < 0.02,
            "{lo} {hi}"
        );
        assert_eq!(bootstrap_ci(&v, 500, 7), bootstrap_ci(&v, 500, 7));
        assert_eq!(bootstrap_ci(&[], 10, 0), None);
    }
}
