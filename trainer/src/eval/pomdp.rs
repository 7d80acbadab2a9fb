//! TRIM-POMDP families of the evaluation suite: the official-artifact model and the model
//! fitted on the training data (`SuiteOptions::pomdp_fit_data`), both acting through the
//! release's belief rule (uniform prior + closeness shortcut) as published; on a lazy synthetic
//! world, the **Bayes reference**: the model fitted on the world's own generator acting through
//! the recursive Bayes filter (see `pomdp_fit` for how it departs from Bayes-optimal); and
//! solved run directories passed to `trim report --runs`.

use trim_env::{EvalOptions, World, evaluate};
use trim_pomdp::{BeliefRule, CLOSENESS_DEFAULT, PomdpModel, PomdpPolicy, solve};

use super::{CheckpointSpec, Extras, Family, Kind, Scorer, SuiteOptions, family, names, push_to};
use crate::pomdp_source::{FitData, fit_on};

const RELEASE_RULE: BeliefRule = BeliefRule::Release {
    closeness: Some(CLOSENESS_DEFAULT),
};

/// The model of the "TRIM-POMDP (fitted)" family: fitted on the `train` split of
/// `o.pomdp_fit_data` (none when there is no such data or no POMDP λ).
pub(super) fn fitted_model(o: &SuiteOptions) -> anyhow::Result<Option<PomdpModel>> {
    let Some(path) = o.pomdp_fit_data.as_deref() else {
        return Ok(None);
    };
    if o.pomdp_lambdas.is_empty() {
        return Ok(None);
    }
    let source = trim_data::DataSource::open(path, &trim_data::LoadOptions::from_env())?;
    let d = FitData {
        path,
        source: &source,
        split: "train",
    };
    match fit_on(&d, crate::pomdp_fit::FIT_BINS) {
        Ok((model, _)) => Ok(Some(model)),
        Err(e) if o.pomdp_fit_optional => {
            eprintln!("warning: no `{}` family: {e}", names::POMDP_FITTED);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The release's belief grid: step 0.025.
const GRID_DIVISIONS: usize = 40;

/// One family per model: a point per λ of `o.pomdp_lambdas`.
pub(super) fn pomdp_families<W: World>(
    forest: &W,
    extras: Extras<'_>,
    problems: &[u32],
    sc: &Scorer,
    o: &SuiteOptions,
) -> anyhow::Result<Vec<Family>> {
    if o.pomdp_lambdas.is_empty() {
        return Ok(vec![]);
    }
    let (official, _) = crate::pomdp_models::official_math_train()?;
    let mut out = vec![one(
        forest,
        &official,
        RELEASE_RULE,
        names::POMDP,
        Kind::Baseline,
        problems,
        sc,
        o,
    )?];
    if let Some(m) = extras.fitted {
        out.push(one(
            forest,
            m,
            RELEASE_RULE,
            names::POMDP_FITTED,
            Kind::Baseline,
            problems,
            sc,
            o,
        )?);
    }
    if let Some(m) = extras.reference {
        out.push(one(
            forest,
            m,
            BeliefRule::Bayes,
            names::REFERENCE,
            Kind::Oracle,
            problems,
            sc,
            o,
        )?);
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn one<W: World>(
    forest: &W,
    model: &PomdpModel,
    rule: BeliefRule,
    name: &str,
    kind: Kind,
    problems: &[u32],
    sc: &Scorer,
    o: &SuiteOptions,
) -> anyhow::Result<Family> {
    let det = EvalOptions {
        repeats: 1,
        seed: o.seed,
    };
    let sols = solve(model, GRID_DIVISIONS, &o.pomdp_lambdas)?;
    let mut points = vec![];
    for sol in &sols {
        let p = PomdpPolicy {
            model,
            solution: sol,
            rule,
        };
        let out = evaluate(forest, problems, &p, det)?;
        let label = format!("lambda={:.3e}", sol.lambda);
        sc.tier(forest, name, &label, &p);
        points.push(sc.point(name, label, &out));
    }
    Ok(family(name, kind, points))
}

/// Solved run directories (`trim pomdp solve --out`), one point each, acting through the
/// release's belief rule; a family per model source, "TRIM-POMDP (<source>) runs".
pub(super) fn run_families<W: World>(
    forest: &W,
    problems: &[u32],
    sc: &Scorer,
    runs: &[CheckpointSpec],
) -> anyhow::Result<Vec<Family>> {
    let det = EvalOptions::default();
    let mut fams: Vec<(String, Vec<_>)> = vec![];
    for c in runs {
        let run = crate::pomdp_run::read_run(&c.dir)?;
        let p = PomdpPolicy {
            model: &run.model,
            solution: &run.solution,
            rule: RELEASE_RULE,
        };
        let out = evaluate(forest, problems, &p, det)?;
        let name = format!("TRIM-POMDP ({}) runs", run.source.name);
        sc.tier(forest, &name, &c.label, &p);
        push_to(&mut fams, &name, sc.point(&name, c.label.clone(), &out));
    }
    Ok(fams
        .into_iter()
        .map(|(n, pts)| family(&n, Kind::Baseline, pts))
        .collect())
}
