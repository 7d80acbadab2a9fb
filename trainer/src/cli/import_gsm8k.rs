//! `trim data import gsm8k-paired`: real GPT-3 6B / 175B GSM8K solution pairs → suffix-switch
//! trees (construction and approximations: `data/docs/gsm8k-paired.md`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use trim_data::import::gsm8k::{self, Options, Variant};
use trim_env::{EvalOptions, RefPolicy, evaluate, summarize};

/// Arguments of `trim data import gsm8k-paired`.
#[derive(Args)]
pub struct Gsm8kArgs {
    /// Directory holding `example_model_solutions.jsonl` (or the file itself).
    #[arg(long)]
    pub raw: PathBuf,
    /// Output dataset (.parquet or .jsonl), written atomically after validation.
    #[arg(long)]
    pub out: PathBuf,
    /// Which upstream solution pair: single fine-tuned samples or verifier-selected best of 100.
    #[arg(long, default_value = "finetuning", value_parser = ["finetuning", "verification"])]
    pub variant: String,
    /// Seed of the synthetic PRM-score draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of problems in the `test` split (chosen by a hash of the question text).
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Store the step texts (otherwise only their hashes).
    #[arg(long)]
    pub with_text: bool,
}

pub fn run(a: Gsm8kArgs) -> anyhow::Result<()> {
    let variant: Variant = a.variant.parse().map_err(anyhow::Error::msg)?;
    let opts = Options {
        variant,
        seed: a.seed,
        test_fraction: a.test_fraction,
        with_text: a.with_text,
        command: super::command_line(),
    };
    let (ds, rep) = gsm8k::import(&a.raw, &opts)?;
    // Validate before writing: a dataset that would not load is never written.
    let loaded = trim_data::validate(&a.out, ds)?;
    trim_data::io::write_dataset(&a.out, &loaded.ds)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let size = std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}: {} problems ({} test), {} nodes, {:.1} KiB",
        a.out.display(),
        rep.problems,
        rep.test_problems,
        rep.nodes,
        size as f64 / 1024.0
    );
    let f = &loaded.forest;
    let all: Vec<u32> = (0..f.n_problems() as u32).collect();
    let opts_eval = EvalOptions::default();
    let strong = summarize(&evaluate(f, &all, &RefPolicy::Strong, opts_eval)?, 0.0, 0.0);
    let weak = summarize(
        &evaluate(f, &all, &RefPolicy::Weak, opts_eval)?,
        strong.strong_tokens,
        0.0,
    );
    let n = rep.problems as f64;
    println!(
        "always-weak    accuracy {:.4} (upstream {} is_correct {:.4}), {:.2} steps",
        weak.accuracy,
        variant.weak_field(),
        rep.weak_correct as f64 / n,
        weak.steps
    );
    println!(
        "always-strong  accuracy {:.4} (upstream {} is_correct {:.4}), {:.2} steps, {:.1} strong tokens per problem",
        strong.accuracy,
        variant.strong_field(),
        rep.strong_correct as f64 / n,
        strong.steps,
        strong.strong_tokens
    );
    println!(
        "heuristic      off-chain steps: weak {:.1}%, strong {:.1}%",
        100.0 * rep.weak_off_chain as f64 / rep.weak_steps.max(1) as f64,
        100.0 * rep.strong_off_chain as f64 / rep.strong_steps.max(1) as f64
    );
    Ok(())
}
