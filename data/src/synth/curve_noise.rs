//! How far a real run of `n` problems strays from its own expectation: the yardstick for the
//! deviations [`super::real_curve::check`] reports.
//!
//! Each point of the release's TRIM-Thr curve is one run of 500 problems: which problems the
//! models happened to solve, how many strong calls the PRM triggered and how long the strong
//! steps were are all sampling noise. A deviation between a world and that curve is evidence
//! against the world only when it is large next to that noise. [`CurveNoise::draw`] draws runs
//! of `n` problems from the world's own per-problem outcomes (a bootstrap), scores each one
//! against the world's full curve with the check's tolerances, and reports how often they are
//! met — that is, how often a *perfect* model of the real pair would pass the check — and how
//! often a draw lies at least as far out as the real curve does.
//!
//! Two ways of drawing bracket the release's design, in which every threshold re-ran the same
//! 500 problems with fresh sampling: `paired` draws one set of problems for all thresholds (the
//! same problems *and* the same samples: too little noise between thresholds), `fresh` draws
//! every threshold's problems anew (independent problems: too much).

use serde::Serialize;
use trim_env::{ProblemOutcome, Rng};

use super::real_curve::{Deviations, ThrPoint, WorldRuns};

/// Draws the check makes (the shares it prints are within ±1.6 points, 1 sd, at 50 %).
pub const NOISE_DRAWS: usize = 1000;
/// Seed of the check's draws (fixed: the same world always gets the same figures).
pub const NOISE_SEED: u64 = 0x7e11_5a3e;

/// How a world's own runs of `problems` problems fare against the check's tolerances.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CurveNoise {
    /// Problems per drawn run (the real curve's).
    pub problems: usize,
    pub draws: usize,
    /// Per threshold, the standard deviation of one run's accuracy, cost fraction and strong
    /// calls over the `paired` and the `fresh` draws (`threshold` is the threshold itself). They
    /// bracket a real run's: `paired` draws share problems *and* samples with strong-only, whose
    /// tokens are the cost unit; `fresh` ones share neither.
    pub sd: Sds,
    /// One set of problems for every threshold.
    pub paired: DrawStats,
    /// New problems for every threshold (and for strong-only, the cost unit).
    pub fresh: DrawStats,
}

/// Standard deviations of one run's point, per threshold, in each way of drawing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sds {
    pub paired: Vec<ThrPoint>,
    pub fresh: Vec<ThrPoint>,
}

/// Sums and sums of squares of one run's accuracy, cost fraction and strong calls, per
/// threshold.
struct Moments(Vec<[[f64; 2]; 3]>);

impl Moments {
    fn add(&mut self, k: usize, p: &ThrPoint) {
        let m = &mut self.0[k];
        for (j, v) in [p.accuracy, p.cost_fraction, p.strong_calls]
            .into_iter()
            .enumerate()
        {
            m[j][0] += v;
            m[j][1] += v * v;
        }
    }

    fn sds(&self, full: &[ThrPoint], draws: usize) -> Vec<ThrPoint> {
        let n = draws.max(1) as f64;
        let sd = |[sum, sq]: [f64; 2]| (sq / n - (sum / n).powi(2)).max(0.0).sqrt();
        (full.iter().zip(&self.0))
            .map(|(f, m)| ThrPoint {
                threshold: f.threshold,
                accuracy: sd(m[0]),
                cost_fraction: sd(m[1]),
                strong_calls: sd(m[2]),
            })
            .collect()
    }
}

/// Shares of draws, per tolerance of the check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct DrawStats {
    pub mean_accuracy: Share,
    pub worst_accuracy: Share,
    pub cost: Share,
    pub calls: Share,
    /// The larger of the two endpoint deviations.
    pub endpoints: Share,
    /// Draws within every tolerance.
    pub within_all: f64,
}

/// Of the draws: the share within the tolerance, and the share at least as far from the world's
/// curve as the real curve is (a one-sided p-value of the real deviation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Share {
    pub within: f64,
    pub as_far_as_real: f64,
}

impl CurveNoise {
    /// Draw `draws` runs of `problems` problems in each way from `runs` (seeded: the same
    /// inputs give the same figures) and score them against the full curve; `real` is the
    /// real curve's deviation from that curve.
    pub fn draw(
        runs: &WorldRuns,
        problems: usize,
        real: &Deviations,
        draws: usize,
        seed: u64,
    ) -> Self {
        let full = runs.curve();
        let (n, total) = (problems.max(1), runs.strong.len());
        // One drawn run's problems (per threshold, and strong-only's), reused across draws.
        let (mut idx, mut strong_idx) = (vec![0; n], vec![0; n]);
        let mut rows = Vec::with_capacity(full.len());
        let mut paired = Tally::default();
        let mut fresh = Tally::default();
        let mut paired_m = Moments(vec![[[0.0; 2]; 3]; full.len()]);
        let mut fresh_m = Moments(vec![[[0.0; 2]; 3]; full.len()]);
        for d in 0..draws {
            let mut rng = Rng::stream(seed, d as u64);
            fill(&mut idx, total, &mut rng);
            let unit = strong_tokens(runs, &idx);
            rows.clear();
            for (k, f) in full.iter().enumerate() {
                let p = point(runs, k, &idx, unit);
                paired_m.add(k, &p);
                rows.push((*f, p));
            }
            paired.add(&Deviations::of(&rows), real);
            fill(&mut strong_idx, total, &mut rng);
            let unit = strong_tokens(runs, &strong_idx);
            rows.clear();
            for (k, f) in full.iter().enumerate() {
                let p = if f.threshold >= 1.0 {
                    point(runs, k, &strong_idx, unit)
                } else {
                    fill(&mut idx, total, &mut rng);
                    point(runs, k, &idx, unit)
                };
                fresh_m.add(k, &p);
                rows.push((*f, p));
            }
            fresh.add(&Deviations::of(&rows), real);
        }
        CurveNoise {
            problems,
            draws,
            sd: Sds {
                paired: paired_m.sds(&full, draws),
                fresh: fresh_m.sds(&full, draws),
            },
            paired: paired.shares(draws),
            fresh: fresh.shares(draws),
        }
    }
}

/// `idx` ← problems drawn uniformly with replacement from `0..total`.
fn fill(idx: &mut [usize], total: usize, rng: &mut Rng) {
    for i in idx.iter_mut() {
        *i = rng.below(total as u64) as usize;
    }
}

/// The mean of `f` over the outcomes `of` of the problems `at`.
fn mean(f: fn(&ProblemOutcome) -> f64, of: &[ProblemOutcome], at: &[usize]) -> f64 {
    at.iter().map(|&i| f(&of[i])).sum::<f64>() / at.len() as f64
}

/// Strong-only's mean strong tokens on the problems `idx`: a drawn run's cost unit.
fn strong_tokens(runs: &WorldRuns, idx: &[usize]) -> f64 {
    mean(|o| o.strong_tokens, &runs.strong, idx)
}

/// The run of threshold `k` on the problems `idx`, its cost in units of `unit` strong tokens.
fn point(runs: &WorldRuns, k: usize, idx: &[usize], unit: f64) -> ThrPoint {
    let out = &runs.by_threshold[k];
    let tokens = mean(|o| o.strong_tokens, out, idx);
    ThrPoint {
        threshold: runs.thresholds[k],
        accuracy: mean(|o| o.accuracy, out, idx),
        cost_fraction: if unit > 0.0 { tokens / unit } else { 0.0 },
        strong_calls: mean(|o| o.strong_calls, out, idx),
    }
}

/// Counts of draws per tolerance: [within, as far as the real curve].
#[derive(Default)]
struct Tally {
    mean_accuracy: [usize; 2],
    worst_accuracy: [usize; 2],
    cost: [usize; 2],
    calls: [usize; 2],
    endpoints: [usize; 2],
    all: usize,
}

impl DrawStats {
    /// The shares in the check's column order: mean Δaccuracy, worst Δaccuracy, cost, calls,
    /// endpoints.
    pub fn shares(&self) -> [Share; 5] {
        [
            self.mean_accuracy,
            self.worst_accuracy,
            self.cost,
            self.calls,
            self.endpoints,
        ]
    }
}

impl Tally {
    fn add(&mut self, d: &Deviations, real: &Deviations) {
        let v = d.verdicts();
        let ends = |x: &Deviations| x.endpoint_devs.0.max(x.endpoint_devs.1);
        let count = |c: &mut [usize; 2], within: bool, draw: f64, real: f64| {
            c[0] += within as usize;
            c[1] += (draw >= real) as usize;
        };
        count(
            &mut self.mean_accuracy,
            v.mean_accuracy,
            d.mean_abs_accuracy_dev,
            real.mean_abs_accuracy_dev,
        );
        count(
            &mut self.worst_accuracy,
            v.worst_accuracy,
            d.worst_accuracy_dev,
            real.worst_accuracy_dev,
        );
        count(
            &mut self.cost,
            v.cost,
            d.worst_cost_dev,
            real.worst_cost_dev,
        );
        count(
            &mut self.calls,
            v.calls,
            d.worst_calls_dev,
            real.worst_calls_dev,
        );
        count(&mut self.endpoints, v.endpoints, ends(d), ends(real));
        self.all += v.all() as usize;
    }

    fn shares(&self, draws: usize) -> DrawStats {
        let n = draws.max(1) as f64;
        let s = |c: [usize; 2]| Share {
            within: c[0] as f64 / n,
            as_far_as_real: c[1] as f64 / n,
        };
        DrawStats {
            mean_accuracy: s(self.mean_accuracy),
            worst_accuracy: s(self.worst_accuracy),
            cost: s(self.cost),
            calls: s(self.calls),
            endpoints: s(self.endpoints),
            within_all: self.all as f64 / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(accuracy: f64, strong_tokens: f64, strong_calls: f64) -> ProblemOutcome {
        ProblemOutcome {
            accuracy,
            strong_tokens,
            strong_calls,
            steps: 4.0,
            weak_tokens: 100.0,
        }
    }

    /// 10000 problems; weak-only solves every other one; threshold 0.5 makes one 100-token
    /// strong call on every other problem; strong-only solves all with 200 tokens each.
    fn runs() -> WorldRuns {
        let n = 10_000;
        let weak = (0..n).map(|i| outcome((i % 2) as f64, 0.0, 0.0)).collect();
        let mid = (0..n)
            .map(|i| {
                let c = (i % 2) as f64;
                outcome(c, 100.0 * c, c)
            })
            .collect();
        let strong: Vec<_> = (0..n).map(|_| outcome(1.0, 200.0, 1.0)).collect();
        WorldRuns {
            thresholds: vec![0.0, 0.5, 1.0],
            by_threshold: vec![weak, mid, strong.clone()],
            strong,
        }
    }

    /// Standard deviations of a 100-problem run, against their closed forms: accuracy and
    /// calls are means of 100 fair coins (sd 0.05), the cost at 0.5 is half of one (0.025),
    /// and strong-only never moves.
    #[test]
    fn run_sds_match_the_binomial_ones() {
        let c = CurveNoise::draw(&runs(), 100, &Deviations::default(), 2000, 7);
        let near = |x: f64, want: f64| (x - want).abs() <= 0.06 * want;
        // The unit never moves here, so both ways of drawing agree on every threshold's own sd.
        let [weak, mid, strong] = [c.sd.fresh[0], c.sd.fresh[1], c.sd.fresh[2]];
        for (p, f) in c.sd.paired.iter().zip(&c.sd.fresh) {
            assert!((p.cost_fraction - f.cost_fraction).abs() <= 0.06 * f.cost_fraction.max(0.01));
        }
        assert!(
            near(weak.accuracy, 0.05) && weak.cost_fraction == 0.0,
            "{weak:?}"
        );
        assert!(near(mid.accuracy, 0.05), "{mid:?}");
        assert!(near(mid.strong_calls, 0.05), "{mid:?}");
        assert!(near(mid.cost_fraction, 0.025), "{mid:?}");
        assert_eq!(
            (strong.accuracy, strong.cost_fraction, strong.strong_calls),
            (0.0, 0.0, 0.0)
        );
        assert_eq!((c.problems, c.draws), (100, 2000));
    }

    /// The share within ±0.03 of cost is P(|N(0, 0.025²)| ≤ 0.03) = 0.770 in both ways of
    /// drawing (one routed threshold, a constant unit); the weak-only endpoint (sd 0.05
    /// against ±0.015) is met in P(|Z| ≤ 0.3) = 0.236 of draws, or a little more: the
    /// binomial's lattice puts mass exactly at ±0.01.
    #[test]
    fn shares_within_match_the_normal_ones() {
        let c = CurveNoise::draw(&runs(), 100, &Deviations::default(), 2000, 8);
        for s in [c.paired, c.fresh] {
            assert!((s.cost.within - 0.770).abs() < 0.04, "{s:?}");
            assert!(
                s.endpoints.within > 0.2 && s.endpoints.within < 0.4,
                "{s:?}"
            );
            assert!(
                s.within_all <= s.endpoints.within.min(s.cost.within),
                "{s:?}"
            );
            // Every draw is at least as far out as a curve that sits on the world's.
            assert_eq!(s.cost.as_far_as_real, 1.0);
        }
        let far = Deviations {
            worst_cost_dev: 0.05,
            ..Deviations::default()
        };
        let c = CurveNoise::draw(&runs(), 100, &far, 2000, 8);
        // P(|N(0, 0.025²)| ≥ 0.05) = 0.046 (the lattice again adds the mass at exactly 0.05).
        for s in [c.paired, c.fresh] {
            assert!(
                s.cost.as_far_as_real > 0.02 && s.cost.as_far_as_real < 0.1,
                "{s:?}"
            );
        }
    }

    /// Paired draws share problems across thresholds: where two thresholds behave alike,
    /// their points move together, so the worst deviation over both is smaller than with
    /// fresh problems per threshold.
    #[test]
    fn paired_draws_move_thresholds_together() {
        let mut r = runs();
        r.thresholds = vec![0.0, 0.4, 0.5, 1.0];
        r.by_threshold.insert(1, r.by_threshold[1].clone());
        let c = CurveNoise::draw(&r, 100, &Deviations::default(), 2000, 9);
        assert!(c.paired.cost.within > c.fresh.cost.within + 0.1, "{c:?}");
    }

    #[test]
    fn draws_are_seeded() {
        let a = CurveNoise::draw(&runs(), 50, &Deviations::default(), 300, 1);
        assert_eq!(
            a,
            CurveNoise::draw(&runs(), 50, &Deviations::default(), 300, 1)
        );
        assert_ne!(
            a,
            CurveNoise::draw(&runs(), 50, &Deviations::default(), 300, 2)
        );
    }
}
