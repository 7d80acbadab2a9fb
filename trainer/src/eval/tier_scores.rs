//! TwinRouterBench's `scores_v2` in the evaluation report: every tree labelled by
//! downgrade-and-cascade with sequential locking (`trim_env::tiers`), and every step-level
//! family of the report scored on those rows as the suite evaluates it ([`TierSink`]): the
//! anchors, random(p), TRIM-Thr, RSD's default point (δ = 0.7, which is TRIM-Thr under another
//! name), the peer rules, the TRIM-POMDP families and the Bayes reference, and each trained
//! checkpoint (greedy; λ-conditioned ones at each λ they act at). Query-level families (cascade,
//! query oracle) make no per-step prediction and the hindsight-optimal policy is what the labels
//! are derived from, so they are left out.

use std::sync::Mutex;

use serde::Serialize;
use trim_env::tiers::{LabelledStep, gold_tiers, predict, score};
use trim_env::{Policy, Rng, World};

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

/// The tier rows of a report, fed by every step-level family as the suite evaluates it: each
/// family keeps its best-combined point (anchors and single checkpoints their only one). Shared
/// by reference through the suite's scorer, hence the lock.
pub struct TierSink {
    all: Vec<Labelled>,
    /// (family, its best point's label and row so far, points offered), in first-offer order.
    best: Mutex<Vec<(String, String, TierRow, usize)>>,
}

impl TierSink {
    /// A sink over the labelled trajectories of `problems` of `w`.
    pub fn new<W: World>(w: &W, problems: &[u32]) -> Self {
        TierSink {
            all: labelled(w, problems).0,
            best: Mutex::new(vec![]),
        }
    }

    /// Score `p` (labelled `label`) as a point of `family`; the family keeps its best.
    pub fn offer<W: World, P: Policy + ?Sized>(&self, w: &W, family: &str, label: &str, p: &P) {
        let r = row(w, &self.all, String::new(), p);
        let mut best = self.best.lock().expect("tier sink lock");
        match best.iter_mut().find(|(f, _, _, _)| f == family) {
            Some((_, l, b, n)) => {
                *n += 1;
                if r.combined > b.combined {
                    (*l, *b) = (label.to_string(), r);
                }
            }
            None => best.push((family.to_string(), label.to_string(), r, 1)),
        }
    }

    /// One row per family, named by its best point ("best of N" when it had several).
    pub fn rows(self) -> Vec<TierRow> {
        let best = self.best.into_inner().expect("tier sink lock");
        (best.into_iter())
            .map(|(family, label, mut r, n)| {
                r.policy = match n {
                    1 => format!("{family} ({label})"),
                    _ => format!("{family} ({label}: best combined of {n})"),
                };
                r
            })
            .collect()
    }
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
