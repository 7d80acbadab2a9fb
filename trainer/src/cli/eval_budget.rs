//! `trim eval --budgets B1,B2,…`: budgeted accuracy — accuracy when every problem may spend at
//! most B strong tokens (`regenerate` masked once the strong step no longer fits, as the
//! environment does) — for always-strong under the budget, the best TRIM-Thr threshold under
//! it, every `--export` at its threshold, and the step-level hindsight-optimal DP under the
//! same budget (stored trees only), with 95 % bootstrap CIs over problems.

use serde::Serialize;
use trim::operating_point::ExportAt;
use trim_env::metrics::bootstrap_ci;
use trim_env::{EvalOptions, Policy, ProblemOutcome, RefPolicy, World, evaluate_budgeted};

/// One cell of the table.
#[derive(Clone, Debug, Serialize)]
pub struct BudgetPoint {
    pub policy: String,
    pub budget: u64,
    pub accuracy: f64,
    pub ci95: (f64, f64),
    pub strong_tokens: f64,
    /// The TRIM-Thr threshold that was best at this budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
}

fn point(policy: &str, budget: u64, out: &[ProblemOutcome], seed: u64) -> BudgetPoint {
    let acc: Vec<f64> = out.iter().map(|o| o.accuracy).collect();
    let n = acc.len().max(1) as f64;
    BudgetPoint {
        policy: policy.into(),
        budget,
        accuracy: acc.iter().sum::<f64>() / n,
        ci95: bootstrap_ci(&acc, 2000, seed).unwrap_or((f64::NAN, f64::NAN)),
        strong_tokens: out.iter().map(|o| o.strong_tokens).sum::<f64>() / n,
        threshold: None,
    }
}

/// TRIM-Thr thresholds tried at each budget (the best is reported).
const THRESHOLDS: u32 = 20;

/// The budgeted-accuracy table of every policy at every budget.
pub fn budget_table<W: World>(
    w: &W,
    stored: Option<&trim_env::Forest>,
    problems: &[u32],
    budgets: &[u64],
    exports: &[(String, trim_router::Policy)],
    opts: EvalOptions,
) -> anyhow::Result<Vec<BudgetPoint>> {
    let mut pts = vec![];
    let run = |p: &dyn Policy, b: u64| evaluate_budgeted(w, problems, p, opts, Some(b));
    for &b in budgets {
        pts.push(point(
            "always-strong (masked)",
            b,
            &run(&RefPolicy::Strong, b)?,
            opts.seed,
        ));
        let mut best: Option<(f32, BudgetPoint)> = None;
        for k in 0..=THRESHOLDS {
            let t = k as f32 / THRESHOLDS as f32;
            let p = point(
                "TRIM-Thr (best threshold, masked)",
                b,
                &run(&RefPolicy::Threshold(t), b)?,
                opts.seed,
            );
            if best.as_ref().is_none_or(|(_, q)| p.accuracy > q.accuracy) {
                best = Some((t, p));
            }
        }
        if let Some((t, mut p)) = best {
            p.threshold = Some(t);
            pts.push(p);
        }
        for (name, e) in exports {
            trim::operating_point::check_actable(e, None, true)
                .map_err(|err| anyhow::anyhow!("{name}: {err}"))?;
            let t = match e {
                trim_router::Policy::Agg(r) => r.threshold(),
                trim_router::Policy::Seq(r, _) => r.threshold(),
                trim_router::Policy::Pomdp(..) => {
                    anyhow::bail!("{name}: TRIM-POMDP exports are not supported here")
                }
            };
            let out = run(
                &ExportAt {
                    lambda: None,
                    export: e,
                    threshold: t,
                },
                b,
            )?;
            let aware = matches!(e, trim_router::Policy::Agg(r) if r.budget_input());
            let how = if aware { "budget-aware" } else { "masked" };
            pts.push(point(&format!("{name} ({how})"), b, &out, opts.seed));
        }
        if let Some(f) = stored {
            let acc = trim_env::oracle::hindsight_budgeted(f, problems, b);
            let out: Vec<ProblemOutcome> = (acc.iter())
                .map(|&a| ProblemOutcome {
                    accuracy: a,
                    ..ProblemOutcome::default()
                })
                .collect();
            let mut p = point("hindsight-optimal (budgeted DP)", b, &out, opts.seed);
            p.strong_tokens = f64::NAN;
            pts.push(p);
        }
    }
    Ok(pts)
}

/// The table as one series per policy, in row order (for the plot).
pub fn series(points: &[BudgetPoint]) -> Vec<trim::eval::budget_plot::BudgetSeries> {
    let mut out: Vec<trim::eval::budget_plot::BudgetSeries> = vec![];
    for p in points {
        let cell = (p.budget, p.accuracy, p.ci95);
        match out.iter_mut().find(|s| s.policy == p.policy) {
            Some(s) => s.points.push(cell),
            None => out.push(trim::eval::budget_plot::BudgetSeries {
                policy: p.policy.clone(),
                points: vec![cell],
            }),
        }
    }
    out
}

/// Print the table: one row per policy, one column per budget.
pub fn print(points: &[BudgetPoint], budgets: &[u64]) {
    let mut names: Vec<String> = vec![];
    for p in points {
        if !names.contains(&p.policy) {
            names.push(p.policy.clone());
        }
    }
    let head: Vec<String> = budgets.iter().map(|b| format!("B = {b}")).collect();
    println!("\n| policy | {} |", head.join(" | "));
    println!("|---|{}", "---|".repeat(budgets.len()));
    for n in &names {
        let cells: Vec<String> = budgets
            .iter()
            .map(|b| {
                (points.iter())
                    .find(|p| p.budget == *b && &p.policy == n)
                    .map_or("—".into(), |p| {
                        format!(
                            "{:.1} % ({:.1}–{:.1})",
                            100.0 * p.accuracy,
                            100.0 * p.ci95.0,
                            100.0 * p.ci95.1
                        )
                    })
            })
            .collect();
        println!("| {n} | {} |", cells.join(" | "));
    }
}
