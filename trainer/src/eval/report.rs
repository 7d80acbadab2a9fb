//! Per-family routing metrics and the report files: `points.csv`, `report.json`, `summary.md`
//! (plus `frontier.csv`, the union Pareto frontier of the trained families, and the plot).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use trim_env::metrics::{self, Point};

use super::{Family, Kind, Suite, gap_to_frontier, names};

/// Cost budgets at which accuracy is reported.
pub const BUDGETS: [f64; 3] = [0.1, 0.2, 0.5];

/// The routing metrics of one family (all on its monotone upper envelope).
#[derive(Clone, Debug, Serialize)]
pub struct FamilyMetrics {
    pub family: String,
    pub kind: Kind,
    pub points: usize,
    /// Cost fraction at which 50 / 80 / 95 % of the weak→strong gap is recovered (None: never).
    pub cpt50: Option<f64>,
    pub cpt80: Option<f64>,
    pub cpt95: Option<f64>,
    /// ΔIBC (AutoMix, C_w = 0) at the CPT(95 %) point.
    pub delta_ibc_at_cpt95: Option<f64>,
    /// ΔIBC averaged over every point of the curve with positive cost.
    pub delta_ibc_mean: Option<f64>,
    /// Average PGR over c ∈ [0, 1].
    pub apgr: Option<f64>,
    /// Area under the accuracy envelope over c ∈ [0, 1].
    pub auc: f64,
    /// Best accuracy at cost ≤ 0.1 / 0.2 / 0.5 (None: no point that cheap).
    pub acc_at_budget: [Option<f64>; 3],
    /// Mean and largest accuracy shortfall below the suite's frontier ([`frontier_name`]: the
    /// hindsight-optimal policy on stored trees, else the Bayes reference) at equal cost.
    pub gap_to_frontier: Option<(f64, f64)>,
}

/// Metrics of every family of a suite.
pub fn family_metrics(suite: &Suite) -> Vec<FamilyMetrics> {
    let a = suite.anchors();
    let frontier = frontier_name(suite)
        .and_then(|n| suite.family(n))
        .map(Family::curve);
    suite
        .families
        .iter()
        .map(|f| {
            let c = f.curve();
            FamilyMetrics {
                family: f.name.clone(),
                kind: f.kind,
                points: f.points.len(),
                cpt50: metrics::cpt(&c, 0.5, a),
                cpt80: metrics::cpt(&c, 0.8, a),
                cpt95: metrics::cpt(&c, 0.95, a),
                delta_ibc_at_cpt95: metrics::delta_ibc_at_cpt(&c, 0.95, a),
                delta_ibc_mean: metrics::delta_ibc_mean(&c, a),
                apgr: metrics::apgr(&c, a),
                auc: metrics::auc(&c, a),
                acc_at_budget: BUDGETS.map(|b| metrics::accuracy_at_budget(&c, b)),
                gap_to_frontier: frontier
                    .as_deref()
                    .and_then(|fr| gap_to_frontier(&c, fr, a)),
            }
        })
        .collect()
}

/// The family gaps are measured against: the hindsight-optimal policy (it knows every outcome;
/// stored trees only), else the Bayes reference (lazy synthetic worlds), else none.
pub fn frontier_name(suite: &Suite) -> Option<&'static str> {
    [names::HINDSIGHT, names::REFERENCE]
        .into_iter()
        .find(|n| suite.family(n).is_some())
}

/// The JSON report: the suite (every operating point) and the per-family metrics.
#[derive(Serialize)]
pub struct Report<'a> {
    pub suite: &'a Suite,
    pub metrics: &'a [FamilyMetrics],
    /// The union Pareto frontier of the trained families (their pooled envelope).
    pub trained_frontier: Vec<FrontierPoint>,
}

/// A point of the union Pareto frontier, with where it came from.
#[derive(Clone, Debug, Serialize)]
pub struct FrontierPoint {
    pub family: String,
    pub label: String,
    pub cost_fraction: f64,
    pub accuracy: f64,
}

/// The monotone upper envelope of all points of the trained families, with their labels.
pub fn trained_frontier(suite: &Suite) -> Vec<FrontierPoint> {
    let pts: Vec<(&str, &str, Point)> = suite
        .families
        .iter()
        .filter(|f| f.kind == Kind::Trained)
        .flat_map(|f| {
            f.points
                .iter()
                .map(|p| (f.name.as_str(), p.label.as_str(), p.point()))
        })
        .collect();
    let env = metrics::upper_envelope(&pts.iter().map(|x| x.2).collect::<Vec<_>>());
    env.iter()
        .filter_map(|e| {
            pts.iter().find(|x| x.2 == *e).map(|x| FrontierPoint {
                family: x.0.into(),
                label: x.1.into(),
                cost_fraction: e.cost,
                accuracy: e.accuracy,
            })
        })
        .collect()
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or(String::new(), |x| format!("{x:.digits$}"))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Every operating point as CSV (one row per point).
pub fn points_csv(suite: &Suite) -> String {
    let mut s = String::from(
        "family,label,accuracy,accuracy_ci_lo,accuracy_ci_hi,strong_tokens_per_problem,\
         strong_calls_per_problem,cost_fraction,cost_fraction_ci_lo,cost_fraction_ci_hi,reward,pgr\n",
    );
    for f in &suite.families {
        for p in &f.points {
            let _ = writeln!(
                s,
                "{},{},{:.6},{:.6},{:.6},{:.3},{:.4},{:.6},{:.6},{:.6},{:.6},{}",
                csv_field(&p.family),
                csv_field(&p.label),
                p.accuracy,
                p.accuracy_ci.0,
                p.accuracy_ci.1,
                p.strong_tokens_per_problem,
                p.strong_calls_per_problem,
                p.cost_fraction,
                p.cost_fraction_ci.0,
                p.cost_fraction_ci.1,
                p.reward,
                opt(p.pgr, 6)
            );
        }
    }
    s
}

fn md(v: Option<f64>, digits: usize) -> String {
    v.map_or("not reached".into(), |x| format!("{x:.digits$}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("—".into(), |x| format!("{:.1} %", 100.0 * x))
}

/// The Markdown summary: one row per family.
pub fn summary_markdown(suite: &Suite, m: &[FamilyMetrics]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} problems (split `{}`) of `{}`; always-weak {:.1} %, always-strong {:.1} % \
         ({:.1} strong tokens / problem = cost 1). CPT on each family's monotone upper envelope; \
         ΔIBC (AutoMix, C_w = 0) at the CPT(95 %) point and averaged over the family's points; \
         APGR and AUC over c ∈ [0, 1]; accuracy at c ≤ budget is the best existing point that cheap; \
         gap = mean / max accuracy shortfall of the envelope below the {} at equal cost \
         (points).\n",
        suite.problems,
        suite.split,
        suite.dataset.display(),
        100.0 * suite.anchors.weak,
        100.0 * suite.anchors.strong,
        suite.strong_ref_tokens,
        frontier_name(suite).unwrap_or("frontier (none here)")
    );
    if suite.family(names::HINDSIGHT).is_none() {
        s.push_str(
            "The hindsight-optimal frontier is not computed here: the trees are generated on \
             demand and unbounded (materialise them with `trim data synth --max-regens K` for \
             it). The Bayes reference is the optimal policy of the three-state TRIM-POMDP fitted \
             on the world's own generator, acting through the recursive Bayes filter; the 3-state \
             model averages out the world's per-problem difficulty, so it is not Bayes-optimal \
             for the world itself (at large λ it can lose to simpler policies).\n\n",
        );
    }
    if suite.family(names::POMDP).is_some() {
        s.push_str(
            "TRIM-POMDP families act as the release does (uniform prior on the current PRM pair, \
             closeness shortcut 0.4): `(official)` with the release's math-train artifacts, \
             `(fitted)` with the model fitted on the training data's state labels (`trim pomdp \
             fit`).\n\n",
        );
    }
    s.push_str(
        "| policy | points | CPT(50%) | CPT(80%) | CPT(95%) | ΔIBC @CPT(95%) | ΔIBC mean | APGR \
         | AUC | acc @c≤0.1 | acc @c≤0.2 | acc @c≤0.5 | gap to frontier (mean / max) |\n",
    );
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for f in m {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.3} | {} | {} | {} | {} |",
            f.family,
            f.points,
            md(f.cpt50, 3),
            md(f.cpt80, 3),
            md(f.cpt95, 3),
            md(f.delta_ibc_at_cpt95, 2),
            f.delta_ibc_mean.map_or("—".into(), |x| format!("{x:.2}")),
            f.apgr.map_or("—".into(), |x| format!("{x:.3}")),
            f.auc,
            pct(f.acc_at_budget[0]),
            pct(f.acc_at_budget[1]),
            pct(f.acc_at_budget[2]),
            f.gap_to_frontier.map_or("—".into(), |(a, b)| format!(
                "{:.1} / {:.1}",
                100.0 * a,
                100.0 * b
            )),
        );
    }
    s.push_str(&checkpoint_table(suite));
    s.push_str(&super::conditioned::markdown(suite));
    s.push_str(&super::tier_scores::markdown(&suite.tiers));
    s
}

/// One row per greedy checkpoint point: its accuracy and cost with 95 % CIs next to what the
/// hindsight-optimal frontier and TRIM-Thr's envelope reach at the same cost.
fn checkpoint_table(suite: &Suite) -> String {
    let a = suite.anchors();
    let curve = |n: &str| suite.family(n).map(Family::curve).unwrap_or_default();
    let frontier = frontier_name(suite).unwrap_or(names::HINDSIGHT);
    let (hs, thr) = (curve(frontier), curve(names::THRESHOLD));
    let mut s = String::new();
    for f in suite
        .families
        .iter()
        .filter(|f| f.kind == Kind::Trained && !f.name.ends_with(names::SWEPT_SUFFIX))
    {
        let _ = writeln!(
            s,
            "\n{} checkpoints (greedy), each against the {frontier} and TRIM-Thr's envelope at \
             the same cost (accuracy points):\n",
            f.name
        );
        let _ = writeln!(
            s,
            "| run | accuracy (95 % CI) | cost fraction (95 % CI) | strong tok / problem \
             | {frontier} at same cost | gap | TRIM-Thr at same cost | Δ vs TRIM-Thr |\n\
             |---|---|---|---|---|---|---|---|",
        );
        for p in &f.points {
            // Without stored trees there is no hindsight frontier: say so, never a number.
            let (h, gap) = if hs.is_empty() {
                ("—".to_string(), "—".to_string())
            } else {
                let h = super::envelope_accuracy_at(&hs, p.cost_fraction, a);
                (
                    format!("{:.1} %", 100.0 * h),
                    format!("{:.1}", 100.0 * (h - p.accuracy)),
                )
            };
            let t = super::envelope_accuracy_at(&thr, p.cost_fraction, a);
            let _ = writeln!(
                s,
                "| {} | {:.1} % ({:.1}–{:.1}) | {:.3} ({:.3}–{:.3}) | {:.1} | {h} | {gap} \
                 | {:.1} % | {:+.1} |",
                p.label,
                100.0 * p.accuracy,
                100.0 * p.accuracy_ci.0,
                100.0 * p.accuracy_ci.1,
                p.cost_fraction,
                p.cost_fraction_ci.0,
                p.cost_fraction_ci.1,
                p.strong_tokens_per_problem,
                100.0 * t,
                100.0 * (p.accuracy - t),
            );
        }
    }
    s
}

/// The files a report wrote.
#[derive(Debug)]
pub struct Written {
    pub points_csv: PathBuf,
    pub frontier_csv: PathBuf,
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub png: PathBuf,
    pub svg: PathBuf,
}

/// Write every report file into `dir` (created if needed).
pub fn write_report(dir: &Path, suite: &Suite) -> anyhow::Result<(Written, Vec<FamilyMetrics>)> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let m = family_metrics(suite);
    let frontier = trained_frontier(suite);
    let w = Written {
        points_csv: dir.join("points.csv"),
        frontier_csv: dir.join("frontier.csv"),
        json: dir.join("report.json"),
        markdown: dir.join("summary.md"),
        png: dir.join("cost_accuracy.png"),
        svg: dir.join("cost_accuracy.svg"),
    };
    trim_data::io::write_text_atomic(&w.points_csv, &points_csv(suite))?;
    let mut fcsv = String::from("family,label,cost_fraction,accuracy\n");
    for p in &frontier {
        let _ = writeln!(
            fcsv,
            "{},{},{:.6},{:.6}",
            csv_field(&p.family),
            csv_field(&p.label),
            p.cost_fraction,
            p.accuracy
        );
    }
    trim_data::io::write_text_atomic(&w.frontier_csv, &fcsv)?;
    let report = Report {
        suite,
        metrics: &m,
        trained_frontier: frontier,
    };
    trim_data::io::write_text_atomic(&w.json, &serde_json::to_string_pretty(&report)?)?;
    trim_data::io::write_text_atomic(&w.markdown, &summary_markdown(suite, &m))?;
    super::plot::plot(suite, &w.png, &w.svg)?;
    Ok((w, m))
}
