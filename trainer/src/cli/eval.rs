//! `trim eval`: reference policies on a dataset, side by side on the same problems.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use trim_env::{EvalOptions, RefPolicy, evaluate, summarize};

use trim::config::DEFAULT_TEST_DATA;

/// Arguments of `trim eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// Dataset file (.parquet or .jsonl) or synth spec (default: the MATH-500-like test world).
    #[arg(long, default_value = DEFAULT_TEST_DATA)]
    pub data: PathBuf,
    /// Policies: weak, strong, threshold:K (regenerate when the step's PRM < K), random:P.
    /// Repeat the flag or separate with commas.
    #[arg(long, value_delimiter = ',', default_values_t = vec!["weak".to_string(), "strong".to_string()])]
    pub policy: Vec<String>,
    /// Also sweep TRIM-Thr over N+1 evenly spaced thresholds in [0, 1].
    #[arg(long)]
    pub threshold_sweep: Option<u32>,
    /// Which split to evaluate on (`all` for every problem).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Cost per strong token in the reported reward `accuracy − λ·strong_tokens`.
    #[arg(long, default_value_t = 8e-4)]
    pub lambda: f64,
    /// Episodes per sample tree for stochastic policies.
    #[arg(long, default_value_t = 16)]
    pub repeats: u32,
    /// Seed of the episode RNG streams.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Budgeted accuracy at these per-problem strong-token budgets (comma-separated): masked
    /// always-strong, the best masked TRIM-Thr, every --export, and the budgeted hindsight DP.
    #[arg(long, value_delimiter = ',')]
    pub budgets: Vec<u64>,
    /// Exported policies (`trim export`) to include in the --budgets table (repeatable).
    #[arg(long)]
    pub export: Vec<PathBuf>,
    /// Also write the --budgets table as JSON to this file.
    #[arg(long)]
    pub budgets_json: Option<PathBuf>,
    /// Also draw the --budgets table (accuracy against budget, one line per policy, 95 % CI
    /// bars) into FILE.png and FILE.svg (FILE without extension).
    #[arg(long)]
    pub budgets_plot: Option<PathBuf>,
    /// Also write the full evaluation report (every baseline family, the query oracle and the
    /// hindsight-optimal frontier; CSV, JSON, Markdown, PNG/SVG plot) into this directory, with
    /// this command's split, λ, repeats and seed. `trim report` adds trained checkpoints.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Serialize)]
struct Row {
    policy: String,
    accuracy: f64,
    strong_tokens_per_problem: f64,
    strong_calls_per_problem: f64,
    cost_fraction: f64,
    reward: f64,
}

/// Evaluate the requested policies and print one row each.
pub fn run(a: EvalArgs) -> anyhow::Result<()> {
    let l = trim_data::DataSource::open(&a.data, &trim_data::LoadOptions::from_env())?;
    let problems = split_problems(&l, &a)?;
    let mut policies: Vec<RefPolicy> = a
        .policy
        .iter()
        .map(|s| s.parse::<RefPolicy>().map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    if let Some(n) = a.threshold_sweep {
        anyhow::ensure!(n >= 1, "--threshold-sweep needs at least 1 interval");
        policies.extend((0..=n).map(|i| RefPolicy::Threshold(i as f32 / n as f32)));
    }
    let opts = EvalOptions {
        repeats: a.repeats,
        seed: a.seed,
    };
    let rows = trim_data::with_world!(&l, |f| table(f, &a, &problems, &policies, opts))?;
    if let Some(path) = &a.json {
        trim_data::io::write_text_atomic(path, &serde_json::to_string_pretty(&rows)?)?;
    }
    if let Some(dir) = &a.report {
        report(&l, &a, &problems, dir)?;
    }
    if !a.budgets.is_empty() {
        budgets(&l, &a, &problems, opts)?;
    }
    Ok(())
}

/// `--budgets`: the budgeted-accuracy table.
fn budgets(
    l: &trim_data::DataSource,
    a: &EvalArgs,
    problems: &[u32],
    opts: EvalOptions,
) -> anyhow::Result<()> {
    let exports = (a.export.iter())
        .map(|d| Ok((d.display().to_string(), trim_router::Policy::load(d)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stored = match l {
        trim_data::DataSource::Stored(s) => Some(&s.forest),
        trim_data::DataSource::Lazy(_) => None,
    };
    let det = EvalOptions { repeats: 1, ..opts };
    let pts = trim_data::with_world!(l, |f| super::eval_budget::budget_table(
        f, stored, problems, &a.budgets, &exports, det
    ))?;
    super::eval_budget::print(&pts, &a.budgets);
    if stored.is_none() {
        println!("(no hindsight-optimal row: a world generated on demand has unbounded trees)");
    }
    if let Some(path) = &a.budgets_json {
        trim_data::io::write_text_atomic(path, &serde_json::to_string_pretty(&pts)?)?;
    }
    if let Some(stem) = &a.budgets_plot {
        let (png, svg) = (stem.with_extension("png"), stem.with_extension("svg"));
        trim::eval::budget_plot::plot_budgets(&super::eval_budget::series(&pts), &png, &svg)?;
        println!("plot: {}, {}", png.display(), svg.display());
    }
    Ok(())
}

/// Evaluate `policies` on `problems` and print one row each.
fn table<W: trim_env::World>(
    f: &W,
    a: &EvalArgs,
    problems: &[u32],
    policies: &[RefPolicy],
    opts: EvalOptions,
) -> anyhow::Result<Vec<Row>> {
    let strong = evaluate(f, problems, &RefPolicy::Strong, opts)?;
    let strong_ref = summarize(&strong, 0.0, a.lambda).strong_tokens;
    println!(
        "{} problems (split `{}`) of {}; λ = {}; cost fraction = strong tokens ÷ always-strong's {:.1}",
        problems.len(),
        a.split,
        a.data.display(),
        a.lambda,
        strong_ref
    );
    println!(
        "{:<16} {:>9} {:>14} {:>13} {:>10} {:>9}",
        "policy", "accuracy", "strong tok/pb", "strong calls", "cost frac", "reward"
    );
    let mut rows = vec![];
    for p in policies {
        let o = evaluate(f, problems, p, opts)?;
        let s = summarize(&o, strong_ref, a.lambda);
        println!(
            "{:<16} {:>8.2}% {:>14.1} {:>13.2} {:>10.3} {:>9.4}",
            p.to_string(),
            100.0 * s.accuracy,
            s.strong_tokens,
            s.strong_calls,
            s.cost_fraction,
            s.reward
        );
        rows.push(Row {
            policy: p.to_string(),
            accuracy: s.accuracy,
            strong_tokens_per_problem: s.strong_tokens,
            strong_calls_per_problem: s.strong_calls,
            cost_fraction: s.cost_fraction,
            reward: s.reward,
        });
    }
    Ok(rows)
}

/// The problems of `--split` (all problems when a dataset has no `test` split).
fn split_problems(l: &trim_data::DataSource, a: &EvalArgs) -> anyhow::Result<Vec<u32>> {
    let mut problems = l.problems_in_split(&a.split);
    if problems.is_empty() && a.split == "test" {
        // Datasets without a test split: evaluate everything, and say so.
        eprintln!(
            "note: no `test` split in {}; evaluating all problems",
            a.data.display()
        );
        problems = l.problems_in_split("all");
    }
    anyhow::ensure!(
        !problems.is_empty(),
        "no problems in split `{}` of {} (splits: {:?})",
        a.split,
        a.data.display(),
        l.splits()
    );
    Ok(problems)
}

/// `--report DIR`: the whole baseline suite, written and summarised.
fn report(
    l: &trim_data::DataSource,
    a: &EvalArgs,
    problems: &[u32],
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    let o = trim::eval::SuiteOptions {
        lambda: a.lambda,
        repeats: a.repeats,
        seed: a.seed,
        ..trim::eval::SuiteOptions::default()
    };
    let suite = trim::eval::run_suite_on(l, &a.data, &a.split, problems, &[], &o)?;
    let (w, m) = trim::eval::report::write_report(dir, &suite)?;
    println!("\n{}", trim::eval::report::summary_markdown(&suite, &m));
    println!(
        "report: {} (+ points.csv, report.json, plot)",
        w.markdown.display()
    );
    Ok(())
}
