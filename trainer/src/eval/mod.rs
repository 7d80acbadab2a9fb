//! The evaluation suite: every routing policy family evaluated on the same problems, as
//! accuracy-vs-cost curves with the routing metrics of `trim_env::metrics`.
//!
//! A *family* is one policy with a knob (TRIM-Thr's threshold, the cascade's τ, the
//! hindsight-optimal policy's λ, a trained checkpoint's regenerate-probability threshold, …);
//! each knob value is one *operating point*. Metrics (CPT, ΔIBC, APGR, AUC, accuracy at a budget)
//! are computed per family on its monotone upper envelope, so a family is judged by the best
//! trade-offs it can offer, as in RouteLLM and the TRIM paper (§4).
//!
//! Cost is always the strong-token fraction `c` against always-strong **on the same problems**,
//! and the reported reward uses one λ for every point, so rows are comparable across families.

pub mod budget_plot;
pub(crate) mod checkpoints;
pub mod conditioned;
pub mod plot;
pub use checkpoints::RegenAbove;
pub mod peers;
mod pomdp;
pub mod report;
pub mod tier_scores;

use std::path::{Path, PathBuf};

use serde::Serialize;
use trim_data::DataSource;
use trim_env::metrics::{self, Anchors, Point};
use trim_env::oracle::{hindsight_optimal, query_cascade, query_oracle};
use trim_env::{
    EvalOptions, Forest, Policy, ProblemOutcome, RefPolicy, World, evaluate, summarize,
};
use trim_pomdp::PomdpModel;

/// Bootstrap resamples behind every confidence interval.
pub const BOOTSTRAP_RESAMPLES: u32 = 1000;

/// What kind of policy a family is; the plot and the tables style them by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// always-weak / always-strong.
    Anchor,
    /// A deployable baseline (random, TRIM-Thr, cascade).
    Baseline,
    /// Uses the outcome (query oracle, hindsight-optimal): an upper limit, not a router.
    Oracle,
    /// A trained TRIM-Agg checkpoint.
    Trained,
}

/// One operating point of one family.
#[derive(Clone, Debug, Serialize)]
pub struct OperatingPoint {
    pub family: String,
    /// The knob value, e.g. `threshold=0.42`, `tau=0.30`, `lambda=8e-4`, `run=…`.
    pub label: String,
    pub accuracy: f64,
    /// 95 % bootstrap CI of the accuracy over problems.
    pub accuracy_ci: (f64, f64),
    pub strong_tokens_per_problem: f64,
    pub strong_calls_per_problem: f64,
    /// Strong tokens ÷ always-strong's on the same problems.
    pub cost_fraction: f64,
    /// 95 % bootstrap CI of the cost fraction over problems.
    pub cost_fraction_ci: (f64, f64),
    /// `accuracy − λ·strong tokens` with the report's λ.
    pub reward: f64,
    /// Performance gap recovered (None when the anchors tie).
    pub pgr: Option<f64>,
}

impl OperatingPoint {
    pub fn point(&self) -> Point {
        Point {
            cost: self.cost_fraction,
            accuracy: self.accuracy,
        }
    }
}

/// A policy family and its points.
#[derive(Clone, Debug, Serialize)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub points: Vec<OperatingPoint>,
}

impl Family {
    pub fn curve(&self) -> Vec<Point> {
        self.points.iter().map(OperatingPoint::point).collect()
    }
}

/// Knobs of the baseline grids.
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    /// Reward λ of every row.
    pub lambda: f64,
    /// TRIM-Thr thresholds: `n + 1` values evenly spaced in [0, 1].
    pub threshold_steps: u32,
    /// Random-routing probabilities: `n + 1` values evenly spaced in [0, 1].
    pub random_steps: u32,
    /// Cascade τ: `n + 1` values evenly spaced in [0, 1].
    pub cascade_steps: u32,
    /// Hindsight-optimal λ values.
    pub oracle_lambdas: Vec<f64>,
    /// Regenerate-probability thresholds swept for every checkpoint (besides greedy).
    pub checkpoint_thresholds: Vec<f32>,
    /// λ values a λ-conditioned checkpoint acts at (those inside its range; none inside: its
    /// validation grid).
    pub conditioned_lambdas: Vec<f64>,
    /// Episodes per tree for the random policy.
    pub repeats: u32,
    pub seed: u64,
    /// λ values of the TRIM-POMDP families (empty: no POMDP families).
    pub pomdp_lambdas: Vec<f64>,
    /// Dataset or synth spec whose `train` split the "TRIM-POMDP (fitted)" family is fitted on
    /// (none: no fitted family).
    pub pomdp_fit_data: Option<PathBuf>,
    /// The fit data was not named by the user (e.g. a sweep's own training data): when it cannot
    /// be fitted (no state labels), the family is left out with a warning instead of failing.
    pub pomdp_fit_optional: bool,
}

impl Default for SuiteOptions {
    fn default() -> Self {
        SuiteOptions {
            lambda: 8e-4,
            threshold_steps: 50,
            random_steps: 10,
            cascade_steps: 20,
            // 0 and 1e-5 … 1e-1 geometrically: from "accuracy at any cost" to "never pay".
            oracle_lambdas: std::iter::once(0.0)
                .chain((0..=32).map(|i| 10f64.powf(-5.0 + 4.0 * f64::from(i) / 32.0)))
                .collect(),
            checkpoint_thresholds: (1..20).map(|i| i as f32 / 20.0).collect(),
            conditioned_lambdas: vec![],
            repeats: 16,
            seed: 0,
            // 1e-4 … 6.4e-3 in factors of 2: from "regenerate most steps" to almost never.
            pomdp_lambdas: (0..7).map(|i| 1e-4 * 2f64.powi(i)).collect(),
            pomdp_fit_data: None,
            pomdp_fit_optional: false,
        }
    }
}

/// A trained checkpoint to evaluate, with the name of its family and its point label.
#[derive(Clone, Debug)]
pub struct CheckpointSpec {
    /// Family name (one family per sweep, e.g. `TRIM-Agg`; points from every run are pooled so
    /// the family's envelope is the union Pareto frontier across runs).
    pub family: String,
    /// Point label, e.g. the run name.
    pub label: String,
    /// A checkpoint directory (`<run>/best`), or a TRIM-POMDP run directory
    /// (`trim pomdp solve --out`).
    pub dir: PathBuf,
}

/// Every family evaluated on one set of problems.
#[derive(Clone, Debug, Serialize)]
pub struct Suite {
    pub dataset: PathBuf,
    pub split: String,
    pub problems: usize,
    pub lambda: f64,
    /// always-strong's mean strong tokens per problem: the cost-fraction denominator.
    pub strong_ref_tokens: f64,
    pub anchors: AnchorAccuracy,
    pub families: Vec<Family>,
    /// TwinRouterBench-style `scores_v2` of the step-level policies ([`tier_scores`]).
    pub tiers: Vec<tier_scores::TierRow>,
}

/// The anchors' accuracies (serialisable copy of `metrics::Anchors`).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AnchorAccuracy {
    pub weak: f64,
    pub strong: f64,
}

impl Suite {
    pub fn anchors(&self) -> Anchors {
        Anchors {
            weak: self.anchors.weak,
            strong: self.anchors.strong,
        }
    }

    /// The family with this name.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }
}

/// Family names used by the suite (the plot and tests refer to them).
pub mod names {
    pub const WEAK: &str = "always-weak";
    pub const STRONG: &str = "always-strong";
    pub const RANDOM: &str = "random(p)";
    pub const THRESHOLD: &str = "TRIM-Thr";
    pub const CASCADE: &str = "cascade (AutoMix-PRM)";
    pub const QUERY_ORACLE: &str = "query oracle";
    pub const HINDSIGHT: &str = "hindsight-optimal";
    pub const POMDP: &str = "TRIM-POMDP (official)";
    pub const REFERENCE: &str = "Bayes reference";
    pub const POMDP_FITTED: &str = "TRIM-POMDP (fitted)";
    /// Step-level peer rules (shown when the world carries their signal).
    pub const JUDGE: &str = "judge rule (SpecReason-style)";
    pub const CONFIDENCE: &str = "confidence rule (mean log-prob)";
    /// RSD's default point in the TwinRouterBench table.
    pub const RSD: &str = "RSD";
    /// Suffix of a checkpoint family's regenerate-probability threshold sweep.
    pub const SWEPT_SUFFIX: &str = " p>t";
}

/// Turns per-problem outcomes into operating points against fixed anchors.
struct Scorer {
    strong_ref: f64,
    lambda: f64,
    anchors: Option<Anchors>,
    /// The bootstrap draws of every point's intervals (one problem set, one seed: the same
    /// draws for all, drawn once).
    resamples: metrics::Resamples,
    /// The TwinRouterBench rows every step-level family feeds.
    tiers: tier_scores::TierSink,
}

impl Scorer {
    /// Offer a step-level policy to the TwinRouterBench table (see [`tier_scores::TierSink`]).
    fn tier<W: World, P: Policy + ?Sized>(&self, w: &W, family: &str, label: &str, p: &P) {
        self.tiers.offer(w, family, label, p);
    }

    fn point(&self, family: &str, label: String, o: &[ProblemOutcome]) -> OperatingPoint {
        let s = summarize(o, self.strong_ref, self.lambda);
        let acc: Vec<f64> = o.iter().map(|x| x.accuracy).collect();
        let cost: Vec<f64> = o
            .iter()
            .map(|x| x.strong_tokens / self.strong_ref.max(f64::MIN_POSITIVE))
            .collect();
        let ci = |v: &[f64]| self.resamples.mean_ci(v).unwrap_or((f64::NAN, f64::NAN));
        OperatingPoint {
            family: family.into(),
            label,
            accuracy: s.accuracy,
            accuracy_ci: ci(&acc),
            strong_tokens_per_problem: s.strong_tokens,
            strong_calls_per_problem: s.strong_calls,
            cost_fraction: s.cost_fraction,
            cost_fraction_ci: ci(&cost),
            reward: s.reward,
            pgr: self.anchors.and_then(|a| metrics::pgr(s.accuracy, a)),
        }
    }
}

fn grid(n: u32) -> impl Iterator<Item = f32> {
    let n = n.max(1);
    (0..=n).map(move |i| i as f32 / n as f32)
}

/// What a source adds to the suite beyond the families every world gets.
#[derive(Clone, Copy, Default)]
pub struct Extras<'a> {
    /// The stored forest (the same world): the hindsight-optimal frontier needs every node.
    pub stored: Option<&'a Forest>,
    /// The world's Bayes reference model (a lazy synthetic world's generator, fitted).
    pub reference: Option<&'a PomdpModel>,
    /// The model fitted on `SuiteOptions::pomdp_fit_data`.
    pub fitted: Option<&'a PomdpModel>,
}

/// [`run_suite`] on whatever `source` holds: a stored forest also gets the hindsight-optimal
/// frontier, which needs every node of the tree; a lazy synthetic world (unbounded trees) gets the
/// Bayes reference fitted on its generator instead.
pub fn run_suite_on(
    source: &DataSource,
    dataset: &Path,
    split: &str,
    problems: &[u32],
    checkpoints: &[CheckpointSpec],
    o: &SuiteOptions,
) -> anyhow::Result<Suite> {
    let fitted = pomdp::fitted_model(o)?;
    let fitted = fitted.as_ref();
    match source {
        DataSource::Stored(l) => {
            let f = &l.forest;
            let x = Extras {
                stored: Some(f),
                reference: None,
                fitted,
            };
            run_suite(f, x, dataset, split, problems, checkpoints, o)
        }
        DataSource::Lazy(z) => {
            let reference = match o.pomdp_lambdas.is_empty() {
                true => None,
                false => Some(crate::pomdp_fit::reference_model(z)?),
            };
            let x = Extras {
                stored: None,
                reference: reference.as_ref(),
                fitted,
            };
            run_suite(&z.world, x, dataset, split, problems, checkpoints, o)
        }
    }
}

/// Evaluate every baseline family and the given checkpoints on `problems` of `forest`, plus what
/// `extras` makes possible (hindsight-optimal frontier, Bayes reference).
pub fn run_suite<W: World>(
    forest: &W,
    extras: Extras<'_>,
    dataset: &Path,
    split: &str,
    problems: &[u32],
    checkpoints: &[CheckpointSpec],
    o: &SuiteOptions,
) -> anyhow::Result<Suite> {
    anyhow::ensure!(!problems.is_empty(), "no problems to evaluate");
    let det = EvalOptions {
        repeats: 1,
        seed: o.seed,
    };
    let weak = evaluate(forest, problems, &RefPolicy::Weak, det)?;
    let strong = evaluate(forest, problems, &RefPolicy::Strong, det)?;
    let strong_ref = summarize(&strong, 0.0, o.lambda).strong_tokens;
    anyhow::ensure!(
        strong_ref > 0.0,
        "always-strong spends no strong tokens on these problems: no cost scale"
    );
    let anchors = Anchors {
        weak: summarize(&weak, strong_ref, o.lambda).accuracy,
        strong: summarize(&strong, strong_ref, o.lambda).accuracy,
    };
    let sc = Scorer {
        strong_ref,
        lambda: o.lambda,
        anchors: Some(anchors),
        resamples: metrics::Resamples::new(problems.len(), BOOTSTRAP_RESAMPLES, o.seed),
        tiers: tier_scores::TierSink::new(forest, problems),
    };
    sc.tier(forest, names::WEAK, "low", &RefPolicy::Weak);
    sc.tier(forest, names::STRONG, "high", &RefPolicy::Strong);
    let anchor = |name: &str, label: &str, out: &[ProblemOutcome]| Family {
        name: name.into(),
        kind: Kind::Anchor,
        points: vec![sc.point(name, label.into(), out)],
    };
    let mut families = vec![
        anchor(names::WEAK, "weak", &weak),
        anchor(names::STRONG, "strong", &strong),
    ];
    families.extend(baseline_families(forest, problems, &sc, o)?);
    families.extend(peers::peer_families(forest, problems, &sc, o.seed)?);
    families.extend(oracle_families(forest, extras.stored, problems, &sc, o));
    families.extend(pomdp::pomdp_families(forest, extras, problems, &sc, o)?);
    let (pomdp_runs, checkpoints): (Vec<_>, Vec<_>) =
        (checkpoints.iter().cloned()).partition(|c| crate::pomdp_run::is_pomdp_run(&c.dir));
    families.extend(pomdp::run_families(forest, problems, &sc, &pomdp_runs)?);
    families.extend(checkpoints::checkpoint_families(
        forest,
        problems,
        &sc,
        &checkpoints,
        o,
    )?);
    // RSD's default point, named as such (it is TRIM-Thr at δ = 0.7).
    sc.tier(
        forest,
        names::RSD,
        "δ = 0.70, i.e. TRIM-Thr 0.70",
        &RefPolicy::Threshold(0.7),
    );
    let tiers = sc.tiers.rows();
    Ok(Suite {
        dataset: dataset.to_path_buf(),
        split: split.into(),
        problems: problems.len(),
        lambda: o.lambda,
        strong_ref_tokens: strong_ref,
        anchors: AnchorAccuracy {
            weak: anchors.weak,
            strong: anchors.strong,
        },
        families,
        tiers,
    })
}

/// Random routing, TRIM-Thr and the AutoMix-PRM cascade over their parameter grids.
fn baseline_families<W: World>(
    forest: &W,
    problems: &[u32],
    sc: &Scorer,
    o: &SuiteOptions,
) -> anyhow::Result<Vec<Family>> {
    let det = EvalOptions {
        repeats: 1,
        seed: o.seed,
    };
    let random = EvalOptions {
        repeats: o.repeats.max(1),
        seed: o.seed,
    };
    let mut rnd = vec![];
    for p in grid(o.random_steps) {
        let out = evaluate(forest, problems, &RefPolicy::Random(p), random)?;
        let label = format!("p={p:.2}");
        sc.tier(forest, names::RANDOM, &label, &RefPolicy::Random(p));
        rnd.push(sc.point(names::RANDOM, label, &out));
    }
    let mut thr = vec![];
    for k in grid(o.threshold_steps) {
        let out = evaluate(forest, problems, &RefPolicy::Threshold(k), det)?;
        let label = format!("threshold={k:.2}");
        sc.tier(forest, names::THRESHOLD, &label, &RefPolicy::Threshold(k));
        thr.push(sc.point(names::THRESHOLD, label, &out));
    }
    let cascade = grid(o.cascade_steps)
        .map(|tau| {
            let out = query_cascade(forest, problems, tau);
            sc.point(names::CASCADE, format!("tau={tau:.2}"), &out)
        })
        .collect();
    Ok(vec![
        family(names::RANDOM, Kind::Baseline, rnd),
        family(names::THRESHOLD, Kind::Baseline, thr),
        family(names::CASCADE, Kind::Baseline, cascade),
    ])
}

/// The query-level oracle and, on a stored forest, the step-level hindsight-optimal policy
/// over λ (a dynamic programme over every node of each tree).
fn oracle_families<W: World>(
    forest: &W,
    stored: Option<&Forest>,
    problems: &[u32],
    sc: &Scorer,
    o: &SuiteOptions,
) -> Vec<Family> {
    let out = query_oracle(forest, problems);
    let oracle = vec![sc.point(names::QUERY_ORACLE, "oracle".into(), &out)];
    let mut families = vec![family(names::QUERY_ORACLE, Kind::Oracle, oracle)];
    if let Some(f) = stored {
        let hindsight = (o.oracle_lambdas.iter())
            .map(|&l| {
                let out = hindsight_optimal(f, problems, l);
                sc.point(names::HINDSIGHT, format!("lambda={l:.3e}"), &out)
            })
            .collect();
        families.push(family(names::HINDSIGHT, Kind::Oracle, hindsight));
    }
    families
}

fn family(name: &str, kind: Kind, points: Vec<OperatingPoint>) -> Family {
    Family {
        name: name.into(),
        kind,
        points,
    }
}

fn push_to(v: &mut Vec<(String, Vec<OperatingPoint>)>, name: &str, p: OperatingPoint) {
    match v.iter_mut().find(|(n, _)| n == name) {
        Some((_, pts)) => pts.push(p),
        None => v.push((name.into(), vec![p])),
    }
}

/// Accuracy of a curve's monotone upper envelope at cost `c`, linearly interpolated and starting
/// from always-weak `(0, acc_w)`; flat after the envelope's last point (a policy can always
/// spend less than it is allowed). Used to measure a policy's distance to the hindsight frontier.
pub fn envelope_accuracy_at(points: &[Point], c: f64, a: Anchors) -> f64 {
    let mut ps = points.to_vec();
    ps.push(Point {
        cost: 0.0,
        accuracy: a.weak,
    });
    let env = metrics::upper_envelope(&ps);
    let mut best = f64::NEG_INFINITY;
    for w in env.windows(2) {
        if c >= w[0].cost && c <= w[1].cost {
            let span = w[1].cost - w[0].cost;
            let t = if span > 0.0 {
                (c - w[0].cost) / span
            } else {
                1.0
            };
            best = best.max(w[0].accuracy + t * (w[1].accuracy - w[0].accuracy));
        }
    }
    for p in &env {
        if p.cost <= c {
            best = best.max(p.accuracy);
        }
    }
    best
}

/// Distance of a family to a reference frontier: the mean and largest accuracy shortfall of the
/// family's envelope points below the frontier at the same cost (accuracy points, ≥ 0 when the
/// frontier dominates).
pub fn gap_to_frontier(family: &[Point], frontier: &[Point], a: Anchors) -> Option<(f64, f64)> {
    let env = metrics::upper_envelope(family);
    if env.is_empty() {
        return None;
    }
    let gaps: Vec<f64> = env
        .iter()
        .map(|p| envelope_accuracy_at(frontier, p.cost, a) - p.accuracy)
        .collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let max = gaps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((mean, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Anchors = Anchors {
        weak: 0.4,
        strong: 0.8,
    };

    fn p(cost: f64, accuracy: f64) -> Point {
        Point { cost, accuracy }
    }

    #[test]
    fn envelope_accuracy_interpolates_and_stays_flat() {
        // Frontier (0, .4) → (.2, .7) → (.5, .9); the dominated (.3, .6) is ignored.
        let f = [p(0.2, 0.7), p(0.3, 0.6), p(0.5, 0.9)];
        assert!((envelope_accuracy_at(&f, 0.0, A) - 0.4).abs() < 1e-12);
        assert!((envelope_accuracy_at(&f, 0.1, A) - 0.55).abs() < 1e-12);
        assert!((envelope_accuracy_at(&f, 0.35, A) - 0.8).abs() < 1e-12);
        assert!((envelope_accuracy_at(&f, 0.9, A) - 0.9).abs() < 1e-12);
    }

    #[test]
    fn gap_to_frontier_is_mean_and_max_shortfall() {
        let frontier = [p(0.2, 0.7), p(0.5, 0.9)];
        // Envelope of the family: (.1, .5) and (.5, .8); (.3, .45) is dominated.
        let fam = [p(0.1, 0.5), p(0.3, 0.45), p(0.5, 0.8)];
        // Frontier at .1 is .55 → gap .05; at .5 it is .9 → gap .1.
        let (mean, max) = gap_to_frontier(&fam, &frontier, A).unwrap();
        assert!((mean - 0.075).abs() < 1e-12, "{mean}");
        assert!((max - 0.1).abs() < 1e-12, "{max}");
        assert!(gap_to_frontier(&[], &frontier, A).is_none());
    }
}
