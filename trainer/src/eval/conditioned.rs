//! λ-conditioned checkpoints in the evaluation suite: one policy swept over its λ input gives
//! a whole curve (family `<family>`, one point per λ), and [`compare`] sets that curve against
//! the envelope of separately trained per-λ policies, with confidence intervals.

use serde::Serialize;
use trim_env::{EvalOptions, World};

use super::{CheckpointSpec, OperatingPoint, Scorer, Suite, SuiteOptions};
use crate::checkpoint;
use crate::config::VALIDATION_GRID;
use crate::family::rows::evaluate_net;
use crate::family::{Family, GreedyOf};

/// The λ a conditioned checkpoint is evaluated at: `o.conditioned_lambdas` inside its trained
/// range, or else its validation grid.
fn lambdas_for(c: &CheckpointSpec, o: &SuiteOptions) -> anyhow::Result<Vec<f64>> {
    let range = checkpoint::load_state(&c.dir)?.config.lambda_range;
    let inside: Vec<f64> = (o.conditioned_lambdas.iter().copied())
        .filter(|&l| range.contains(l))
        .collect();
    Ok(if inside.is_empty() {
        range.grid(VALIDATION_GRID)
    } else {
        inside
    })
}

/// The greedy points of one conditioned checkpoint, one per λ; each point's reward uses the
/// suite's λ like every other row (its label names the λ the policy acted at).
pub(super) fn points<F: Family, W: World>(
    forest: &W,
    problems: &[u32],
    sc: &Scorer,
    c: &CheckpointSpec,
    o: &SuiteOptions,
) -> anyhow::Result<Vec<OperatingPoint>> {
    let det = EvalOptions {
        repeats: 1,
        seed: o.seed,
    };
    let w = super::checkpoints::load_acting::<F>(&c.dir)?;
    lambdas_for(c, o)?
        .into_iter()
        .map(|l| {
            let policy = GreedyOf::<F>::new(&w).at_lambda(l);
            let out = evaluate_net(forest, problems, &policy, det, None)?;
            let tier_row = format!("{} {}", c.family, c.label);
            sc.tier(forest, &tier_row, &format!("lambda={l:.3e}"), &policy);
            Ok(sc.point(&c.family, format!("{} lambda={l:.3e}", c.label), &out))
        })
        .collect()
}

/// One conditioned point against the per-λ envelope at its cost.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The point's label (names the λ it acted at).
    pub label: String,
    pub cost_fraction: f64,
    pub accuracy: f64,
    pub accuracy_ci: (f64, f64),
    /// The per-λ envelope's accuracy at this cost (linear between its points) and its CI (the
    /// bracketing points' CIs interpolated the same way); None outside the envelope's costs.
    pub envelope_accuracy: Option<f64>,
    pub envelope_ci: Option<(f64, f64)>,
}

impl Comparison {
    /// Conditioned − envelope accuracy, in points of probability.
    pub fn gap(&self) -> Option<f64> {
        self.envelope_accuracy.map(|e| self.accuracy - e)
    }

    /// Whether the conditioned accuracy reaches the envelope's 95 % CI (None: not comparable).
    pub fn within_ci(&self) -> Option<bool> {
        self.envelope_ci.map(|(lo, _)| self.accuracy >= lo)
    }
}

/// Each point of family `conditioned` against the upper envelope of family `per_lambda`.
pub fn compare(suite: &Suite, conditioned: &str, per_lambda: &str) -> Vec<Comparison> {
    let (Some(c), Some(p)) = (suite.family(conditioned), suite.family(per_lambda)) else {
        return vec![];
    };
    let env = envelope(&p.points);
    c.points
        .iter()
        .map(|q| {
            let at = interpolate(&env, q.cost_fraction);
            Comparison {
                label: q.label.clone(),
                cost_fraction: q.cost_fraction,
                accuracy: q.accuracy,
                accuracy_ci: q.accuracy_ci,
                envelope_accuracy: at.map(|a| a.0),
                envelope_ci: at.map(|a| (a.1, a.2)),
            }
        })
        .collect()
}

/// The monotone upper envelope of `points` (as `trim_env::metrics::upper_envelope`), keeping
/// each point's accuracy CI.
fn envelope(points: &[OperatingPoint]) -> Vec<&OperatingPoint> {
    let mut ps: Vec<&OperatingPoint> = (points.iter())
        .filter(|p| p.cost_fraction.is_finite() && p.accuracy.is_finite())
        .collect();
    ps.sort_by(|a, b| {
        (a.cost_fraction.total_cmp(&b.cost_fraction)).then(b.accuracy.total_cmp(&a.accuracy))
    });
    let mut env: Vec<&OperatingPoint> = Vec::with_capacity(ps.len());
    for p in ps {
        if env.last().is_none_or(|l| p.accuracy > l.accuracy) {
            env.push(p);
        }
    }
    env
}

/// `(accuracy, ci_lo, ci_hi)` of the envelope at cost `c`, linear between its points; None
/// outside `[first cost, last cost]`.
fn interpolate(env: &[&OperatingPoint], c: f64) -> Option<(f64, f64, f64)> {
    let (first, last) = (env.first()?, env.last()?);
    if c < first.cost_fraction || c > last.cost_fraction {
        return None;
    }
    let i = env.partition_point(|p| p.cost_fraction <= c).max(1);
    let (a, b) = (env[i - 1], env[i.min(env.len() - 1)]);
    let span = b.cost_fraction - a.cost_fraction;
    let t = if span > 0.0 {
        (c - a.cost_fraction) / span
    } else {
        0.0
    };
    let mix = |x: f64, y: f64| x + t * (y - x);
    Some((
        mix(a.accuracy, b.accuracy),
        mix(a.accuracy_ci.0, b.accuracy_ci.0),
        mix(a.accuracy_ci.1, b.accuracy_ci.1),
    ))
}

/// The Markdown comparison of the λ-conditioned family with the per-λ TRIM-Agg envelope
/// (empty when the suite lacks either).
pub fn markdown(suite: &Suite) -> String {
    use std::fmt::Write;
    let rows = compare(suite, crate::config::CONDITIONED_NAME, "TRIM-Agg");
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\n**λ-conditioned TRIM-Agg against the envelope of per-λ TRIM-Agg runs** (one \
         conditioned policy acting at each λ; the envelope's accuracy at the same cost, linear \
         between its points, with its 95 % bootstrap CI):\n\n| point | cost | accuracy [95 % CI] \
         | per-λ envelope [95 % CI] | gap (pt) | reaches the envelope's CI |\n|---|---|---|---|---|---|\n",
    );
    let pct = |x: f64| 100.0 * x;
    for r in rows {
        let env = match (r.envelope_accuracy, r.envelope_ci) {
            (Some(e), Some((lo, hi))) => {
                format!("{:.1} % [{:.1}, {:.1}]", pct(e), pct(lo), pct(hi))
            }
            _ => "outside the envelope's costs".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.1} % [{:.1}, {:.1}] | {env} | {} | {} |",
            r.label,
            r.cost_fraction,
            pct(r.accuracy),
            pct(r.accuracy_ci.0),
            pct(r.accuracy_ci.1),
            r.gap().map_or("—".into(), |g| format!("{:+.1}", pct(g))),
            r.within_ci().map_or("—", |w| if w { "yes" } else { "no" }),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(cost: f64, acc: f64) -> OperatingPoint {
        OperatingPoint {
            family: "f".into(),
            label: format!("{cost}"),
            accuracy: acc,
            accuracy_ci: (acc - 0.02, acc + 0.02),
            strong_tokens_per_problem: 0.0,
            strong_calls_per_problem: 0.0,
            cost_fraction: cost,
            cost_fraction_ci: (cost, cost),
            reward: 0.0,
            pgr: None,
        }
    }

    #[test]
    fn envelope_interpolates_accuracy_and_ci_and_drops_dominated_points() {
        let pts = [pt(0.1, 0.5), pt(0.3, 0.7), pt(0.2, 0.4), pt(0.5, 0.8)];
        let env = envelope(&pts);
        assert_eq!(env.len(), 3, "the dominated (0.2, 0.4) is dropped");
        let (a, lo, hi) = interpolate(&env, 0.2).unwrap();
        assert!((a - 0.6).abs() < 1e-12 && (lo - 0.58).abs() < 1e-12 && (hi - 0.62).abs() < 1e-12);
        assert_eq!(interpolate(&env, 0.5).unwrap().0, 0.8);
        assert!(interpolate(&env, 0.05).is_none() && interpolate(&env, 0.6).is_none());
    }
}
