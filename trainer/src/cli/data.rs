//! `trim data validate|stats|convert`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use trim_data::stats::DatasetStats;

/// The dataset `trim` uses when none is given.
pub const DEFAULT_DATA: &str = "data/sets/synth-math.parquet";

/// Arguments of `trim data validate`.
#[derive(Args)]
pub struct ValidateArgs {
    /// Dataset files (.parquet or .jsonl).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Arguments of `trim data stats`.
#[derive(Args)]
pub struct StatsArgs {
    /// Dataset file (.parquet or .jsonl).
    #[arg(default_value = DEFAULT_DATA)]
    pub file: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `trim data convert`.
#[derive(Args)]
pub struct ConvertArgs {
    /// Input dataset (.parquet or .jsonl).
    pub input: PathBuf,
    /// Output dataset (.parquet or .jsonl); written atomically.
    pub output: PathBuf,
}

/// Validate each file; the first bad one fails the command with its precise error.
pub fn validate(a: ValidateArgs) -> anyhow::Result<()> {
    for f in &a.files {
        let l = trim_data::load(f)?;
        println!(
            "{}: ok ({} problems, {} sample trees, {} nodes)",
            f.display(),
            l.forest.n_problems(),
            l.forest.n_trees(),
            l.forest.n_nodes()
        );
    }
    Ok(())
}

/// Print dataset statistics.
pub fn stats(a: StatsArgs) -> anyhow::Result<()> {
    let l = trim_data::load(&a.file)?;
    let s = trim_data::stats::compute(&l);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print_stats(&a.file.display().to_string(), &s);
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn print_stats(file: &str, s: &DatasetStats) {
    println!("dataset        {} ({file})", s.name);
    println!(
        "size           {} problems, {} sample trees, {} nodes, max depth {}",
        s.problems, s.trees, s.nodes, s.max_depth
    );
    let splits: Vec<String> = s.splits.iter().map(|(k, n)| format!("{k}={n}")).collect();
    println!("splits         {}", splits.join(", "));
    let c = &s.coverage;
    println!(
        "coverage       strong candidate at {} of nodes; continue available {}, regenerate available {}, both {}",
        pct(c.nodes_with_strong),
        pct(c.nodes_continue_available),
        pct(c.nodes_regenerate_available),
        pct(c.nodes_with_choice)
    );
    println!(
        "               complete all-weak path in {} of trees, all-strong path in {}",
        pct(c.trees_with_all_weak_path),
        pct(c.trees_with_all_strong_path)
    );
    for (name, a) in [
        ("always-weak", &s.always_weak),
        ("always-strong", &s.always_strong),
    ] {
        println!(
            "{name:<14} accuracy {}, {:.2} steps, {:.1} weak tokens, {:.1} strong tokens, {:.2} strong calls per problem",
            pct(a.accuracy),
            a.steps_per_problem,
            a.weak_tokens_per_problem,
            a.strong_tokens_per_problem,
            a.strong_calls_per_problem
        );
    }
    println!(
        "step tokens    weak candidate {:.1}, strong candidate {:.1} (mean)",
        s.mean_weak_step_tokens, s.mean_strong_step_tokens
    );
    let p = &s.prm;
    let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    println!(
        "PRM            {} labelled candidates; AUROC correct vs error {}, correct vs first error {}; mean by state S0 {} S1 {} S2 {}",
        p.labelled,
        fmt(p.auroc_correct_vs_error),
        fmt(p.auroc_correct_vs_first_error),
        fmt(p.mean_by_state[0]),
        fmt(p.mean_by_state[1]),
        fmt(p.mean_by_state[2])
    );
    if !s.tokenizer.is_empty() {
        println!("tokenizer      {}", s.tokenizer);
    }
    for r in &s.real {
        println!("real           {r}");
    }
    for r in &s.synthetic {
        println!("synthetic      {r}");
    }
}

/// Convert between formats (validating on the way: a bad input is never re-encoded).
pub fn convert(a: ConvertArgs) -> anyhow::Result<()> {
    let l = trim_data::load(&a.input)?;
    trim_data::io::write_dataset(&a.output, &l.ds)
        .with_context(|| format!("writing {}", a.output.display()))?;
    println!(
        "{} -> {} ({} problems, {} nodes)",
        a.input.display(),
        a.output.display(),
        l.ds.problems.len(),
        l.ds.rows.len()
    );
    Ok(())
}
