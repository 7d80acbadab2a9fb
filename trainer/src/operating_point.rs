//! Calibrating an exported policy's operating point to a target on the user's own traffic
//! (`trim calibrate`): the decision threshold on p(regenerate) — or, for a λ-conditioned
//! policy, the λ it acts at — that uses as much of the strong model as the target allows — at most `calls` strong calls per decision, a `cost` fraction of
//! always-strong's strong tokens, or `tokens` strong tokens per problem — measured by replaying
//! the traffic (a trees dataset, imported serving paths, or a synth world), with a 95 %
//! bootstrap CI over problems. The result is written into the export's `policy.json`
//! (`decision.default_threshold` and a `calibration` record), so every router that loads the
//! export serves at that operating point.

use std::path::Path;
use std::str::FromStr;

use trim_env::features::{HistStep, TOKEN_SCALE};
use trim_env::metrics::bootstrap_ratio_ci;
use trim_env::{
    Action, EvalOptions, Policy, ProblemOutcome, RefPolicy, Rng, StepView, World, evaluate,
};
use trim_router::{Policy as Export, StepObservation};

/// What the operating point must meet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Strong calls per routing decision (the strong-call rate).
    Calls(f64),
    /// Strong tokens ÷ always-strong's strong tokens on the same problems.
    Cost(f64),
    /// Strong tokens per problem.
    Tokens(f64),
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected calls=R, cost=F or tokens=N"))?;
        let v: f64 = (v.trim().parse().ok())
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("`{s}`: the value must be a finite number ≥ 0"))?;
        match k.trim() {
            "calls" if v <= 1.0 => Ok(Target::Calls(v)),
            "calls" => Err(format!("`{s}`: a call rate is at most 1")),
            "cost" => Ok(Target::Cost(v)),
            "tokens" => Ok(Target::Tokens(v)),
            other => Err(format!("`{other}` is not a target: calls, cost or tokens")),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Calls(v) => write!(f, "calls={v}"),
            Target::Cost(v) => write!(f, "cost={v}"),
            Target::Tokens(v) => write!(f, "tokens={v}"),
        }
    }
}

impl Target {
    fn value(&self) -> f64 {
        match *self {
            Target::Calls(v) | Target::Cost(v) | Target::Tokens(v) => v,
        }
    }

    /// Per-problem numerator and denominator of the measure (it is Σ num / Σ den).
    fn parts(&self, o: &ProblemOutcome, strong_ref: &ProblemOutcome) -> (f64, f64) {
        match self {
            Target::Calls(_) => (o.strong_calls, o.steps),
            Target::Cost(_) => (o.strong_tokens, strong_ref.strong_tokens),
            Target::Tokens(_) => (o.strong_tokens, 1.0),
        }
    }

    fn measure(&self, out: &[ProblemOutcome], strong: &[ProblemOutcome]) -> f64 {
        let (a, b) = (out.iter().zip(strong)).fold((0.0, 0.0), |(a, b), (o, s)| {
            let (x, y) = self.parts(o, s);
            (a + x, b + y)
        });
        if b > 0.0 { a / b } else { 0.0 }
    }
}

/// Refuse an export that cannot act through [`ExportAt`] without more inputs: a budget-aware
/// one outside a budgeted replay (`budgeted = false`), a λ-conditioned one with neither a λ
/// nor a calibrated λ. (Its decisions would otherwise fail inside the replay and read as
/// `continue`.)
pub fn check_actable(export: &Export, lambda: Option<f64>, budgeted: bool) -> anyhow::Result<()> {
    let (range, default, budget_input) = match export {
        Export::Agg(r) => (r.lambda_range(), r.default_lambda(), r.budget_input()),
        Export::Seq(r, _) => (r.lambda_range(), r.default_lambda(), false),
        Export::Pomdp(..) => (None, None, false),
    };
    anyhow::ensure!(
        budgeted || !budget_input,
        "a budget-aware export acts under a request's budget: evaluate it with `trim eval \
         --budgets … --export DIR`"
    );
    anyhow::ensure!(
        range.is_none() || lambda.or(default).is_some(),
        "a λ-conditioned export acts at a λ: calibrate one first (`trim calibrate --export DIR \
         --target …`)"
    );
    Ok(())
}

/// An export acting through the environment at a given threshold on p(regenerate), and at a
/// given λ when it is λ-conditioned.
pub struct ExportAt<'a> {
    pub export: &'a Export,
    pub threshold: f32,
    /// The λ a conditioned export acts at (None: its calibrated default, if any).
    pub lambda: Option<f64>,
}

impl ExportAt<'_> {
    fn p_regenerate(&self, view: &StepView<'_>) -> f32 {
        match self.export {
            // Decisions were checked (λ present and in range, a budget for a budget-aware
            // policy) before the replay started.
            Export::Agg(r) => {
                let c = view.cond;
                let budget = c.budgeted().then_some(trim_router::BudgetState {
                    left: c.budget_left,
                    budget: c.budget,
                });
                (r.decide_with(&view.agg(), self.lambda, budget)).map_or(0.0, |d| d.p_regenerate)
            }
            Export::Seq(r, _) => {
                let step = StepObservation {
                    lambda: self.lambda,
                    ..observation(view)
                };
                (r.decide_step(&step)).map_or(0.0, |d| d.p_regenerate)
            }
            Export::Pomdp(..) => 0.0,
        }
    }
}

impl Policy for ExportAt<'_> {
    fn act(&self, view: &StepView<'_>, _mask: [bool; 2], _rng: &mut Rng) -> Action {
        if self.p_regenerate(view) > self.threshold {
            Action::Regenerate
        } else {
            Action::Continue
        }
    }

    fn wants_history(&self) -> bool {
        matches!(self.export, Export::Seq(..))
    }
}

/// A serving loop's view of the step from the episode history (what TRIM-Seq reads).
fn observation(view: &StepView<'_>) -> StepObservation {
    let kept_tokens = |h: &HistStep| {
        let t = if h[3] > 0.5 { h[4] } else { h[2] };
        (t * TOKEN_SCALE).round() as u32
    };
    StepObservation {
        id: None,
        prev_prm: view.history.iter().map(|h| h[0]).collect(),
        prm: view.weak.prm,
        tokens: view.weak.tokens,
        prev_tokens: view.history.iter().map(kept_tokens).collect(),
        prev_regenerated: view.history.iter().map(|h| h[3] > 0.5).collect(),
        lambda: None,
        budget: None,
        budget_left: None,
    }
}

/// What calibration moves: the threshold on p(regenerate) (from 0, the most strong use, to 1),
/// or the λ of a conditioned policy (log-scale from the range's low end, the most strong use,
/// to its high end) at the export's threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Knob {
    Threshold,
    Lambda { lo: f64, hi: f64, threshold: f32 },
}

impl Knob {
    /// The knob of `export`.
    pub fn of(export: &Export) -> Knob {
        let (range, threshold) = match export {
            Export::Agg(r) => (r.lambda_range(), r.threshold()),
            Export::Seq(r, _) => (r.lambda_range(), r.threshold()),
            Export::Pomdp(..) => (None, 0.5),
        };
        match range {
            Some([lo, hi]) => Knob::Lambda { lo, hi, threshold },
            None => Knob::Threshold,
        }
    }

    /// The policy at position `x ∈ [0, 1]` (0 = most strong-model use).
    fn at<'a>(&self, export: &'a Export, x: f64) -> ExportAt<'a> {
        match *self {
            Knob::Threshold => ExportAt {
                export,
                threshold: x as f32,
                lambda: None,
            },
            Knob::Lambda { lo, hi, threshold } => ExportAt {
                export,
                threshold,
                lambda: Some((lo.ln() + x * (hi.ln() - lo.ln())).exp().clamp(lo, hi)),
            },
        }
    }
}

/// The calibration's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibrated {
    /// The decision threshold (the export's own for a conditioned policy).
    pub threshold: f32,
    /// The λ chosen for a conditioned policy.
    pub lambda: Option<f64>,
    pub achieved: f64,
    pub ci95: (f64, f64),
    pub accuracy: f64,
    pub accuracy_ci95: (f64, f64),
    /// The measure's range over the knob: threshold 1 / the range's high λ (least strong use)
    /// to threshold 0 / its low λ.
    pub feasible: (f64, f64),
}

/// Bootstrap resamples of the CIs.
const RESAMPLES: u32 = 2000;
/// Thresholds tried before refining: 0, 1/20, …, 1 (then 20 bisection steps: a threshold
/// within 1e-7, in at most 41 replays of the traffic).
const GRID: u32 = 20;
const BISECTIONS: u32 = 20;

/// Choose the smallest threshold whose measure on `problems` of `world` is at most the target
/// (the most strong-model use the target allows); refuse a target outside the policy's range.
pub fn calibrate<W: World>(
    world: &W,
    problems: &[u32],
    export: &Export,
    target: Target,
    seed: u64,
) -> anyhow::Result<Calibrated> {
    anyhow::ensure!(
        !matches!(export, Export::Pomdp(..)),
        "a TRIM-POMDP export has no threshold to calibrate: its decisions come from the solved \
         value table; solve for another λ (`trim pomdp solve --lambda …`) to move along the curve"
    );
    anyhow::ensure!(
        !matches!(export, Export::Agg(r) if r.budget_input()),
        "a budget-aware export acts under each request's budget: its knob is the budget itself \
         (`trim eval --budgets … --export DIR` measures it per budget), not a threshold"
    );
    anyhow::ensure!(!problems.is_empty(), "the traffic holds no problems");
    let opts = EvalOptions { repeats: 1, seed };
    let strong = evaluate(world, problems, &RefPolicy::Strong, opts)?;
    let knob = Knob::of(export);
    // One replay per knob position: its measure, and its outcomes for the position chosen.
    let measure = |x: f64| -> anyhow::Result<(f64, Vec<ProblemOutcome>)> {
        let out = evaluate(world, problems, &knob.at(export, x), opts)?;
        Ok((target.measure(&out, &strong), out))
    };
    let grid: Vec<(f64, Vec<ProblemOutcome>)> = (0..=GRID)
        .map(|k| measure(f64::from(k) / f64::from(GRID)))
        .collect::<anyhow::Result<_>>()?;
    // Threshold 0 regenerates wherever it can, threshold 1 only where continuing is impossible.
    let (lo, hi) = (grid[GRID as usize].0, grid[0].0);
    let want = target.value();
    if want < lo - 1e-12 || want > hi + 1e-12 {
        return Err(infeasible(target, knob, (lo, hi)));
    }
    // From low thresholds (more strong use) up: the first grid point that meets the target,
    // then bisection between it and the infeasible grid point below it.
    let meets = |m: f64| m <= want + 1e-12;
    let k = grid
        .iter()
        .position(|(m, _)| meets(*m))
        .unwrap_or(GRID as usize);
    let mut feasible_t = k as f64 / f64::from(GRID);
    let mut out = grid[k].1.clone();
    if k > 0 {
        let mut bad = (k - 1) as f64 / f64::from(GRID);
        for _ in 0..BISECTIONS {
            let mid = 0.5 * (bad + feasible_t);
            let (m, o) = measure(mid)?;
            if meets(m) {
                (feasible_t, out) = (mid, o);
            } else {
                bad = mid;
            }
        }
    }
    let chosen = knob.at(export, feasible_t);
    Ok(Calibrated {
        threshold: chosen.threshold,
        lambda: chosen.lambda,
        ..achieved(target, (&out, &strong), (lo, hi), seed)
    })
}

/// What the chosen operating point's outcomes `out` achieve (measure and accuracy, each with
/// its bootstrap CI); the knob fields are left for the caller.
fn achieved(
    target: Target,
    (out, strong): (&[ProblemOutcome], &[ProblemOutcome]),
    feasible: (f64, f64),
    seed: u64,
) -> Calibrated {
    let (num, den): (Vec<f64>, Vec<f64>) = (out.iter().zip(strong))
        .map(|(o, s)| target.parts(o, s))
        .unzip();
    let acc: Vec<f64> = out.iter().map(|o| o.accuracy).collect();
    let ones = vec![1.0; acc.len()];
    let nan = (f64::NAN, f64::NAN);
    Calibrated {
        threshold: f32::NAN,
        lambda: None,
        achieved: target.measure(out, strong),
        ci95: bootstrap_ratio_ci(&num, &den, RESAMPLES, seed).unwrap_or(nan),
        accuracy: acc.iter().sum::<f64>() / acc.len() as f64,
        accuracy_ci95: bootstrap_ratio_ci(&acc, &ones, RESAMPLES, seed).unwrap_or(nan),
        feasible,
    }
}

/// The refusal of a target outside `[lo, hi]`, naming the range and what its ends mean.
fn infeasible(target: Target, knob: Knob, (lo, hi): (f64, f64)) -> anyhow::Error {
    let (least, most) = match knob {
        Knob::Threshold => (
            "threshold 1: only where continuing is impossible",
            "threshold 0: regenerating whenever it can",
        ),
        Knob::Lambda { .. } => (
            "at the highest λ of the policy's range",
            "at the lowest λ of its range",
        ),
    };
    anyhow::anyhow!(
        "target {target} is infeasible for this policy on this traffic: it reaches {} from {lo:.4} \
         ({least}) to {hi:.4} ({most}); feasible targets are in [{lo:.4}, {hi:.4}]",
        kind_name(&target)
    )
}

fn kind_name(t: &Target) -> &'static str {
    match t {
        Target::Calls(_) => "strong calls per decision",
        Target::Cost(_) => "a cost fraction",
        Target::Tokens(_) => "strong tokens per problem",
    }
}

/// Measure an export at its own (loaded) threshold on traffic: (calls, cost, tokens, accuracy).
pub fn measure_at<W: World>(
    world: &W,
    problems: &[u32],
    export: &Export,
    threshold: f32,
    seed: u64,
) -> anyhow::Result<[f64; 4]> {
    let opts = EvalOptions { repeats: 1, seed };
    let strong = evaluate(world, problems, &RefPolicy::Strong, opts)?;
    let at = ExportAt {
        export,
        threshold,
        lambda: None,
    };
    let out = evaluate(world, problems, &at, opts)?;
    let acc = out.iter().map(|o| o.accuracy).sum::<f64>() / out.len().max(1) as f64;
    Ok([
        Target::Calls(0.0).measure(&out, &strong),
        Target::Cost(0.0).measure(&out, &strong),
        Target::Tokens(0.0).measure(&out, &strong),
        acc,
    ])
}

/// Write the calibration into the export's `policy.json` (atomically; every other file is
/// untouched, and their checksums stay valid).
pub fn write_into(dir: &Path, cal: trim_router::manifest::Calibration) -> anyhow::Result<()> {
    let path = dir.join(trim_router::manifest::MANIFEST);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    let mut v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", path.display()))?;
    v["decision"]["default_threshold"] = serde_json::json!(cal.threshold);
    // A conditioned policy's calibrated λ becomes the λ of decisions that name none.
    v["calibration"] = serde_json::to_value(&cal)?;
    let out = serde_json::to_string_pretty(&v)? + "\n";
    trim_data::io::write_text_atomic(&path, &out)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    // Reading it back through the router proves every router will accept it.
    Export::load(dir).map_err(|e| anyhow::anyhow!("the calibrated export does not load: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_refuse_nonsense() {
        assert_eq!("calls=0.2".parse::<Target>(), Ok(Target::Calls(0.2)));
        assert_eq!("cost=0.15".parse::<Target>(), Ok(Target::Cost(0.15)));
        assert_eq!("tokens=300".parse::<Target>(), Ok(Target::Tokens(300.0)));
        for bad in ["calls=1.5", "calls", "speed=1", "cost=-1", "tokens=nan"] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
        assert_eq!(Target::Calls(0.2).to_string(), "calls=0.2");
    }
}
