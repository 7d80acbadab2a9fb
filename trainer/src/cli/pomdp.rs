//! `trim pomdp solve`: TRIM-POMDP solved exactly on a belief grid for a list of λ, timed, and
//! (with `--data`) evaluated in the replay environment under both belief rules.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use trim_env::{EvalOptions, RefPolicy, World, evaluate, summarize};
use trim_pomdp::solve::divisions_for_step;
use trim_pomdp::{BeliefRule, CLOSENESS_DEFAULT, PomdpModel, PomdpPolicy, Solution, solve};

/// Arguments of `trim pomdp solve`.
#[derive(Args)]
pub struct SolveArgs {
    /// Model source: `official` (the release's math-train artifacts), `fit` (fitted on the
    /// `--data` trees' state labels) or `reference` (fitted on the generator of the `--data`
    /// synth world, on fresh problems: its Bayes reference).
    #[arg(long, default_value = "official")]
    pub model: String,
    /// Costs per strong token, comma-separated (the release's cost_per_token c is λ = c / 100).
    #[arg(long, value_delimiter = ',', default_values_t = vec![2e-4, 4e-4, 8e-4, 1.2e-3, 1.6e-3, 2.4e-3, 3.2e-3, 5e-3])]
    pub lambda: Vec<f64>,
    /// Belief grid step (must divide 1; the release uses 0.025).
    #[arg(long, default_value_t = 0.025)]
    pub grid_step: f64,
    /// Also evaluate every solution on this dataset or synth spec.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Split evaluated with --data.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Write each solution to `OUT/lambda=<λ>/solution.json` (model, grid, table, checksum);
    /// an existing file is never overwritten.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Solve, time, and optionally evaluate.
pub fn solve_cmd(a: SolveArgs) -> anyhow::Result<()> {
    let src = match &a.data {
        Some(d) => Some(trim_data::DataSource::open(
            d,
            &trim_data::LoadOptions::from_env(),
        )?),
        None => None,
    };
    let (model, name) = match (a.model.as_str(), &src) {
        ("official", _) => {
            let (m, s) = trim::pomdp_models::official_math_train()?;
            (m, format!("{} — {}", s.name, s.description))
        }
        ("reference", Some(trim_data::DataSource::Lazy(z))) => (
            trim::pomdp_fit::reference_model(z)?,
            format!("reference — fitted on the generator of {}", z.spec.spec),
        ),
        ("reference", _) => anyhow::bail!("--model reference needs --data synth:…"),
        ("fit", Some(trim_data::DataSource::Stored(l))) => (
            trim::pomdp_fit::fit_stored(l, 1)?,
            format!("fitted on the state labels of {}", l.meta.name),
        ),
        ("fit", Some(trim_data::DataSource::Lazy(z))) => (
            trim::pomdp_fit::fit_lazy(&z.world, &z.world.problems_in_split("all"), 1)?,
            format!("fitted on {}", z.spec.spec),
        ),
        ("fit", None) => anyhow::bail!("--model fit needs --data"),
        (other, _) => {
            anyhow::bail!("unknown --model `{other}` (available: official, fit, reference)")
        }
    };
    let divisions = divisions_for_step(a.grid_step)?;
    println!(
        "model: {name}; p_w {:.4}, p_s {:.4}, {:.1} tokens per future regeneration",
        model.p_w, model.p_s, model.future_tokens
    );
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let t0 = Instant::now();
    let sols = single.install(|| solve(&model, divisions, &a.lambda))?;
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "solved {} λ on a {}-point belief grid (step {}) × {} decision steps × {} observation bins \
         in {secs:.3} s on one core ({:.3} s per λ)",
        sols.len(),
        sols[0].grid().len(),
        a.grid_step,
        sols[0].horizon(),
        model.bins * model.bins,
        secs / sols.len() as f64
    );
    if let Some(out) = &a.out {
        for sol in &sols {
            let path = out
                .join(format!("lambda={:e}", sol.lambda))
                .join("solution.json");
            anyhow::ensure!(
                std::fs::symlink_metadata(&path).is_err(),
                "{} exists; pick another --out (solutions are never overwritten)",
                path.display()
            );
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            }
            trim_data::io::write_text_atomic(&path, &sol.to_json(&model))?;
            println!("wrote {}", path.display());
        }
    }
    if let (Some(data), Some(src)) = (&a.data, &src) {
        let problems = src.problems_in_split(&a.split);
        anyhow::ensure!(!problems.is_empty(), "no problems in split `{}`", a.split);
        println!(
            "{} problems (split `{}`) of {}",
            problems.len(),
            a.split,
            data.display()
        );
        trim_data::with_world!(src, |w| evaluate_all(w, &problems, &model, &sols))?;
    }
    Ok(())
}

/// One row per (λ, belief rule): accuracy, cost fraction, strong calls, reward.
fn evaluate_all<W: World>(
    w: &W,
    problems: &[u32],
    model: &PomdpModel,
    sols: &[Solution],
) -> anyhow::Result<()> {
    let det = EvalOptions::default();
    let strong = summarize(&evaluate(w, problems, &RefPolicy::Strong, det)?, 0.0, 0.0);
    println!(
        "{:>9} {:<24} {:>9} {:>9} {:>7} {:>8}",
        "λ", "belief rule", "accuracy", "cost", "calls", "reward"
    );
    let rules = [
        (
            "release (closeness 0.4)",
            BeliefRule::Release {
                closeness: Some(CLOSENESS_DEFAULT),
            },
        ),
        (
            "release (no shortcut)",
            BeliefRule::Release { closeness: None },
        ),
        ("Bayes filter", BeliefRule::Bayes),
    ];
    for sol in sols {
        for (name, rule) in rules {
            let p = PomdpPolicy {
                model,
                solution: sol,
                rule,
            };
            let s = summarize(
                &evaluate(w, problems, &p, det)?,
                strong.strong_tokens,
                sol.lambda,
            );
            println!(
                "{:>9.1e} {:<24} {:>8.1}% {:>9.3} {:>7.2} {:>8.4}",
                sol.lambda,
                name,
                100.0 * s.accuracy,
                s.cost_fraction,
                s.strong_calls,
                s.reward
            );
        }
    }
    Ok(())
}
