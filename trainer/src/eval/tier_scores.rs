//! TwinRouterBench's `scores_v2` in the evaluation report: every tree labelled by
//! downgrade-and-cascade with sequential locking (`trim_env::tiers`), and the step-level
//! policies of the report scored on those rows — the anchors, TRIM-Thr over its grid, RSD's
//! default point (δ = 0.7, which is TRIM-Thr under another name) and each trained checkpoint's
//! greedy policy. Query-level and oracle families make no per-step prediction and are left out.

use serde::Serialize;
use trim_env::tiers::{LabelledStep, gold_tiers, predict, score};
use trim_env::{Policy, RefPolicy, Rng, World};

use super::CheckpointSpec;
use crate::checkpoint;
use crate::family::{self, GreedyOf, agg::Agg, seq::Seq};

/// One policy's scores (percent), as in the benchmark's `scores_v2`.
#[derive(Clone, Debug, Serialize)]
pub struct TierRow {
    pub policy: String,
    pub case_pass: f64,
    pub exact_match: f64,
    pub trajectory_pass: f64,
    pub cost_savings: f64,
    pub combined: f64,
}

/// A labelled trajectory: its problem, its sample tree and its steps.
pub type Labelled = (u32, usize, Vec<LabelledStep>);

/// The labelled trajectories of `problems`, and how many trees had undefined labels (a
/// cheaper-tier trajectory the tree does not hold) and were left out.
pub fn labelled<W: World>(w: &W, problems: &[u32]) -> (Vec<Labelled>, usize) {
    let (mut out, mut skipped) = (vec![], 0);
    for &p in problems {
        for t in w.trees_of(p as usize) {
            match gold_tiers(w, t) {
                Some(l) => out.push((p, t, l)),
                None => skipped += 1,
            }
        }
    }
    (out, skipped)
}

/// `policy`'s scores on the labelled trajectories `all`, named `name`.
pub fn row<W: World, P: Policy + ?Sized>(w: &W, all: &[Labelled], name: String, p: &P) -> TierRow {
    let mut rng = Rng::new(0);
    let preds: Vec<_> = (all.iter())
        .map(|(_, t, l)| (l.clone(), predict(w, *t, l, p, &mut rng)))
        .collect();
    let s = score(&preds);
    TierRow {
        policy: name,
        case_pass: s.case_pass,
        exact_match: s.exact_match,
        trajectory_pass: s.trajectory_pass,
        cost_savings: s.cost_savings,
        combined: s.combined,
    }
}

/// The rows of the report: anchors, TRIM-Thr at its best combined score over `thresholds`, RSD
/// at δ = 0.7, and each plain (unconditioned) checkpoint's greedy policy.
pub fn tier_rows<W: World>(
    w: &W,
    problems: &[u32],
    thresholds: impl Iterator<Item = f32>,
    checkpoints: &[CheckpointSpec],
) -> anyhow::Result<Vec<TierRow>> {
    let (all, _) = labelled(w, problems);
    let mut rows = vec![
        row(w, &all, "always-weak (low)".into(), &RefPolicy::Weak),
        row(w, &all, "always-strong (high)".into(), &RefPolicy::Strong),
    ];
    let best = (thresholds.map(|k| {
        row(
            w,
            &all,
            format!("TRIM-Thr {k:.2} (best combined)"),
            &RefPolicy::Threshold(k),
        )
    }))
    .max_by(|a, b| a.combined.total_cmp(&b.combined));
    rows.extend(best);
    rows.push(row(
        w,
        &all,
        "RSD δ = 0.70 (= TRIM-Thr 0.70)".into(),
        &RefPolicy::Threshold(0.7),
    ));
    // The peer rules the world carries signals for, each at its best combined score.
    for (name, policies) in super::peers::rules(w) {
        let best = (policies.iter())
            .map(|p| {
                let label = super::peers::label(*p);
                row(w, &all, format!("{name}: {label} (best combined)"), p)
            })
            .max_by(|a, b| a.combined.total_cmp(&b.combined));
        rows.extend(best);
    }
    for c in checkpoints {
        let Ok(state) = checkpoint::load_state(&c.dir) else {
            continue;
        };
        let name = format!("{} {}", c.family, c.label);
        if state.family == <Agg as family::Family>::NAME {
            let a = super::checkpoints::load_acting::<Agg>(&c.dir)?;
            rows.push(row(w, &all, name, &GreedyOf::<Agg>::new(&a)));
        } else if state.family == <Seq as family::Family>::NAME {
            let a = super::checkpoints::load_acting::<Seq>(&c.dir)?;
            rows.push(row(w, &all, name, &GreedyOf::<Seq>::new(&a)));
        }
    }
    Ok(rows)
}

/// The Markdown table of `rows` (empty for none).
pub fn markdown(rows: &[TierRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\n**TwinRouterBench-style step labels** (gold tier per step by downgrade-and-cascade with \
         sequential locking; low = keep the weak step, high = regenerate; `trim data tiers` writes \
         the rows): `scores_v2` in percent.\n\n",
    );
    s.push_str(&table(rows));
    s
}

/// The table of `rows` alone (what `trim data tiers` prints).
pub fn table(rows: &[TierRow]) -> String {
    use std::fmt::Write;
    let mut s = String::from(
        "| policy | case pass | exact match | trajectory pass | cost savings | combined |\n\
         |---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r.policy, r.case_pass, r.exact_match, r.trajectory_pass, r.cost_savings, r.combined
        );
    }
    s
}
