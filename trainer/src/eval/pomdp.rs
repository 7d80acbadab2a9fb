//! TRIM-POMDP families of the evaluation suite: the official-artifact model acting through the
//! release's belief rule (uniform prior + closeness shortcut), and, on a lazy synthetic world,
//! the **Bayes reference**: the model fitted on the world's own generator acting through the
//! recursive Bayes filter (see `pomdp_fit` for how it departs from Bayes-optimal).

use trim_env::{EvalOptions, World, evaluate};
use trim_pomdp::{BeliefRule, CLOSENESS_DEFAULT, PomdpModel, PomdpPolicy, solve};

use super::{Family, Kind, Scorer, SuiteOptions, family, names};

/// The release's belief grid: step 0.025.
const GRID_DIVISIONS: usize = 40;

/// One family per model: a point per λ of `o.pomdp_lambdas`.
pub(super) fn pomdp_families<W: World>(
    forest: &W,
    reference: Option<&PomdpModel>,
    problems: &[u32],
    sc: &Scorer,
    o: &SuiteOptions,
) -> anyhow::Result<Vec<Family>> {
    if o.pomdp_lambdas.is_empty() {
        return Ok(vec![]);
    }
    let (official, _) = crate::pomdp_models::official_math_train()?;
    let release = BeliefRule::Release {
        closeness: Some(CLOSENESS_DEFAULT),
    };
    let mut out = vec![one(
        forest,
        &official,
        release,
        names::POMDP,
        Kind::Baseline,
        problems,
        sc,
        o,
    )?];
    if let Some(m) = reference {
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
        points.push(sc.point(name, format!("lambda={:.3e}", sol.lambda), &out));
    }
    Ok(family(name, kind, points))
}
