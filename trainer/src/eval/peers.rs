//! Step-level peer rules as report families (issue 15): the SpecReason-style judge rule (keep
//! the weak step iff a judge's score ≥ s) and the confidence rule (keep it iff its mean token
//! log-probability ≥ c). Each is shown only when the world carries its signal on every weak
//! candidate (`judge_score` / `mean_logprob` columns, or a synthetic world drawing them). RSD is
//! TRIM-Thr under another name (keep iff the PRM score ≥ δ) and needs no family of its own.

use trim_env::{EvalOptions, RefPolicy, World, evaluate};

use super::{Family, Kind, Scorer, family, names};

/// Judge thresholds: every digit of a 0–9 judge (s = d / 9; s = 0 keeps every step).
pub fn judge_grid() -> impl Iterator<Item = f32> {
    (0..=9).map(|d| d as f32 / 9.0)
}

/// Confidence thresholds: c = −x for 21 x log-spaced from 0.01 to 10 nats per token, from
/// "regenerate almost every step" to "keep almost every step".
pub fn confidence_grid() -> impl Iterator<Item = f32> {
    (0..=20).map(|i| -(10f64.powf(-2.0 + 3.0 * f64::from(i) / 20.0)) as f32)
}

/// The peer rules this world can evaluate, each as a (family name, its policies) pair.
pub fn rules<W: World>(w: &W) -> Vec<(&'static str, Vec<RefPolicy>)> {
    let k = w.signal_kinds();
    let mut out = vec![];
    if k.judge_score {
        out.push((names::JUDGE, judge_grid().map(RefPolicy::Judge).collect()));
    }
    if k.mean_logprob {
        let c = confidence_grid().map(RefPolicy::Confidence).collect();
        out.push((names::CONFIDENCE, c));
    }
    out
}

/// The peer-rule families of `w` on `problems` (none when it carries no signal).
pub(super) fn peer_families<W: World>(
    w: &W,
    problems: &[u32],
    sc: &Scorer,
    seed: u64,
) -> anyhow::Result<Vec<Family>> {
    let det = EvalOptions { repeats: 1, seed };
    let mut out = vec![];
    for (name, policies) in rules(w) {
        let mut points = vec![];
        for p in policies {
            let o = evaluate(w, problems, &p, det)?;
            let l = label(p);
            sc.tier(w, name, &l, &p);
            points.push(sc.point(name, l, &o));
        }
        out.push(family(name, Kind::Baseline, points));
    }
    Ok(out)
}

/// The point label of a rule.
pub(super) fn label(p: RefPolicy) -> String {
    match p {
        RefPolicy::Judge(s) => format!("judge>={s:.3}"),
        RefPolicy::Confidence(c) => format!("logprob>={c:.3}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_span_their_signals_in_order() {
        let j: Vec<f32> = judge_grid().collect();
        assert_eq!((j.len(), j[0], j[9]), (10, 0.0, 1.0));
        let c: Vec<f32> = confidence_grid().collect();
        assert_eq!(c.len(), 21);
        assert!((c[0] + 0.01).abs() < 1e-6 && (c[20] + 10.0).abs() < 1e-4);
        assert!(c.windows(2).all(|w| w[0] > w[1]));
        // Every grid value is a valid rule parameter.
        for x in c {
            assert!(format!("confidence:{x}").parse::<RefPolicy>().is_ok());
        }
    }
}
