//! `trim pomdp fit`: a TRIM-POMDP model with its provenance as a model file; `trim pomdp
//! solve`: the POMDP solved exactly on a belief grid for a list of λ, timed, written as one run
//! directory per λ (`trim::pomdp_run`) and, with `--data`, evaluated in the replay environment
//! under every belief rule.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use trim::pomdp_fit::FIT_BINS;
use trim::pomdp_run::{RuleSummary, RunContents, SolveConfig, write_run};
use trim::pomdp_source::{FitData, ModelSpec, resolve};
use trim_data::DataSource;
use trim_env::{EvalOptions, RefPolicy, World, evaluate, summarize};
use trim_pomdp::model_file::{ModelSource, model_to_json};
use trim_pomdp::solve::divisions_for_step;
use trim_pomdp::{BeliefRule, CLOSENESS_DEFAULT, PomdpModel, PomdpPolicy, Solution, solve};

/// Arguments of `trim pomdp fit`.
#[derive(Args)]
pub struct FitArgs {
    /// `official` (the release's math-train artifacts), `fit` (the state labels of `--data`) or
    /// `reference` (fresh problems of the `--data` synth world's generator).
    #[arg(long, default_value = "fit")]
    pub source: String,
    /// Dataset file or synth spec to fit on.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Split fitted on (`all` for every problem).
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Observation bins per axis: 20 (bins of 0.05, the release's) or 50 (0.02).
    #[arg(long, default_value_t = FIT_BINS)]
    pub bins: usize,
    /// Model file to write (never overwritten).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of `trim pomdp solve`.
#[derive(Args)]
pub struct SolveArgs {
    /// Model: `official` (the release's math-train artifacts), `fit` (fitted on the `--data`
    /// trees' state labels), `reference` (fitted on the generator of the `--data` synth world,
    /// on fresh problems: its Bayes reference), or a model file from `trim pomdp fit`.
    #[arg(long, default_value = "official")]
    pub model: String,
    /// Costs per strong token, comma-separated (the release's cost_per_token c is λ = c / 100).
    #[arg(long, value_delimiter = ',', default_values_t = vec![2e-4, 4e-4, 8e-4, 1.2e-3, 1.6e-3, 2.4e-3, 3.2e-3, 5e-3])]
    pub lambda: Vec<f64>,
    /// Belief grid step (must divide 1; the release uses 0.025).
    #[arg(long, default_value_t = 0.025)]
    pub grid_step: f64,
    /// Also evaluate every solution on this dataset or synth spec (and fit on it with
    /// `--model fit|reference`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Split evaluated with --data.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Split a `--model fit` is fitted on.
    #[arg(long, default_value = "train")]
    pub fit_split: String,
    /// Write one run directory per λ, `OUT/lambda=<λ>/` (solution, model with provenance,
    /// config, evaluation summary); an existing one is never overwritten.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn open(data: &Option<PathBuf>) -> anyhow::Result<Option<DataSource>> {
    data.as_ref()
        .map(|d| DataSource::open(d, &trim_data::LoadOptions::from_env()))
        .transpose()
        .map_err(Into::into)
}

/// `trim pomdp fit`.
pub fn fit_cmd(a: FitArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        std::fs::symlink_metadata(&a.out).is_err(),
        "{} exists; pick another --out (model files are never overwritten)",
        a.out.display()
    );
    let src = open(&a.data)?;
    let fit_data = (a.data.as_deref().zip(src.as_ref())).map(|(path, source)| FitData {
        path,
        source,
        split: &a.split,
    });
    let spec = ModelSpec::parse(&a.source);
    anyhow::ensure!(
        !matches!(spec, ModelSpec::File(_)),
        "unknown --source `{}` (available: official, fit, reference)",
        a.source
    );
    let (model, source) = resolve(&spec, fit_data.as_ref(), a.bins)?;
    print_model(&model, &source);
    trim_data::io::write_text_atomic(&a.out, &model_to_json(&model, &source))?;
    println!("wrote {}", a.out.display());
    Ok(())
}

fn print_model(model: &PomdpModel, source: &ModelSource) {
    println!(
        "model `{}`: {}\n  p_w {:.4}, p_s {:.4}, {}×{} observation bins, {} steps, {:.1} tokens per \
         future regeneration",
        source.name,
        source.description,
        model.p_w,
        model.p_s,
        model.bins,
        model.bins,
        model.max_steps(),
        model.future_tokens
    );
}

/// `trim pomdp solve`: solve, time, write, and optionally evaluate.
pub fn solve_cmd(a: SolveArgs) -> anyhow::Result<()> {
    let src = open(&a.data)?;
    let fit_data = (a.data.as_deref().zip(src.as_ref())).map(|(path, source)| FitData {
        path,
        source,
        split: &a.fit_split,
    });
    let (model, source) = resolve(&ModelSpec::parse(&a.model), fit_data.as_ref(), FIT_BINS)?;
    let divisions = divisions_for_step(a.grid_step)?;
    print_model(&model, &source);
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
    let summaries = match (&a.data, &src) {
        (Some(data), Some(src)) => evaluate_on(data, src, &a.split, &model, &sols)?,
        _ => vec![],
    };
    if let Some(out) = &a.out {
        for (i, sol) in sols.iter().enumerate() {
            let config = SolveConfig {
                command: "trim pomdp solve".into(),
                model: a.model.clone(),
                lambda: sol.lambda,
                grid_step: a.grid_step,
                grid_divisions: divisions,
                trim_version: env!("CARGO_PKG_VERSION").into(),
                git_revision: trim::run_dir::git_revision(),
                solve_seconds_per_lambda: secs / sols.len() as f64,
            };
            let dir = write_run(
                out,
                &RunContents {
                    solution: sol,
                    model: &model,
                    source: &source,
                    config: &config,
                    summary: summaries.get(i).map(Vec::as_slice),
                },
            )?;
            println!("wrote {}", dir.display());
        }
    }
    Ok(())
}

fn evaluate_on(
    data: &Path,
    src: &DataSource,
    split: &str,
    model: &PomdpModel,
    sols: &[Solution],
) -> anyhow::Result<Vec<Vec<RuleSummary>>> {
    let problems = src.problems_in_split(split);
    anyhow::ensure!(!problems.is_empty(), "no problems in split `{split}`");
    println!(
        "{} problems (split `{split}`) of {}",
        problems.len(),
        data.display()
    );
    let name = data.display().to_string();
    trim_data::with_world!(src, |w| evaluate_all(
        w,
        (&name, split),
        &problems,
        model,
        sols
    ))
}

/// One row per (λ, belief rule): accuracy, cost fraction, strong calls, reward — printed, and
/// returned per λ for the run directories.
fn evaluate_all<W: World>(
    w: &W,
    (data, split): (&str, &str),
    problems: &[u32],
    model: &PomdpModel,
    sols: &[Solution],
) -> anyhow::Result<Vec<Vec<RuleSummary>>> {
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
    let mut out = vec![];
    for sol in sols {
        let mut rows = vec![];
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
            rows.push(RuleSummary {
                belief_rule: name.into(),
                data: data.into(),
                split: split.into(),
                problems: problems.len(),
                accuracy: s.accuracy,
                cost_fraction: s.cost_fraction,
                strong_calls: s.strong_calls,
                reward: s.reward,
            });
        }
        out.push(rows);
    }
    Ok(out)
}
