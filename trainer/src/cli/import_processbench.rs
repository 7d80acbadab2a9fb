//! `trim data import processbench`: real ProcessBench solutions as all-weak paths, latent-model
//! regenerations around them; also `--write-math500-keys` to rebuild the MATH-500 holdout keys.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use trim_data::import::processbench::{
    ImportOptions, MATH500_KEYS_PATH, Math500, SUBSETS, build_math500_keys, import_with_progress,
    write_math500_keys,
};
use trim_data::synth::{InputPaths, SHIPPED_CONFIG_PATH, SynthConfig, load_model};

use super::command_line;

/// Arguments of `trim data import processbench`.
#[derive(Args)]
pub struct ProcessBenchArgs {
    /// Directory with ProcessBench's <subset>.json files.
    #[arg(long, required_unless_present = "write_math500_keys")]
    pub raw: Option<PathBuf>,
    /// Output dataset (.parquet or .jsonl), written atomically.
    #[arg(long, short, required_unless_present = "write_math500_keys")]
    pub out: Option<PathBuf>,
    /// Subsets to import (gsm8k, math, olympiadbench, omnimath), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "math")]
    pub subsets: Vec<String>,
    /// Keep solutions from generators of at most this many billion parameters.
    #[arg(long, default_value_t = 8.0)]
    pub max_generator_b: f64,
    /// K: at most K regenerations per path (the all-strong path is always complete).
    #[arg(long, default_value_t = 2)]
    pub max_regens: u32,
    /// Seed of the per-problem RNG streams.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Store the real steps' text (hashes are always stored).
    #[arg(long)]
    pub text: bool,
    /// Do not hold MATH-500 problems out as the `test` split.
    #[arg(long)]
    pub no_math500_holdout: bool,
    /// Synth config whose [latent] and [inputs] tables define the latent model (default: the
    /// shipped data/synth/math-qwen2.5.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Instead of importing: rebuild the MATH-500 keys from a MATH-500 JSONL (`problem` field)
    /// or the vendored transcription data/calibration/math500_prefixes.tsv.
    #[arg(long, value_name = "MATH500_FILE")]
    pub write_math500_keys: Option<PathBuf>,
    /// Where --write-math500-keys writes.
    #[arg(long, default_value = MATH500_KEYS_PATH)]
    pub math500_keys_out: PathBuf,
}

/// Import (or rebuild the MATH-500 keys) as asked.
pub fn run(a: ProcessBenchArgs) -> anyhow::Result<()> {
    if let Some(src) = &a.write_math500_keys {
        let f = build_math500_keys(src, &command_line())?;
        write_math500_keys(&a.math500_keys_out, &f)
            .with_context(|| format!("writing {}", a.math500_keys_out.display()))?;
        println!(
            "{}: {} MATH-500 keys ({} complete, {} prefix)",
            a.math500_keys_out.display(),
            f.count,
            f.entries.iter().filter(|e| e.complete).count(),
            f.entries.iter().filter(|e| !e.complete).count()
        );
        return Ok(());
    }
    let (Some(raw), Some(out)) = (&a.raw, &a.out) else {
        anyhow::bail!("--raw and --out are required");
    };
    for s in &a.subsets {
        if !SUBSETS.contains(&s.as_str()) {
            anyhow::bail!(
                "unknown subset `{s}` (expected one of {})",
                SUBSETS.join(", ")
            );
        }
    }
    let (latent, inputs, path) = match &a.config {
        Some(p) => {
            let c = SynthConfig::load(p)?;
            (c.latent, c.inputs, p.clone())
        }
        None => {
            let c = SynthConfig::shipped();
            (
                c.latent,
                InputPaths::default(),
                PathBuf::from(format!("{SHIPPED_CONFIG_PATH} (embedded)")),
            )
        }
    };
    let (model, sources) = load_model(&latent, &inputs, &path)?;
    let opts = ImportOptions {
        subsets: a.subsets.clone(),
        max_generator_b: a.max_generator_b,
        max_regens: a.max_regens,
        seed: a.seed,
        keep_text: a.text,
        math500_holdout: !a.no_math500_holdout,
    };
    let bar = super::progress::Bar::default();
    let (ds, rep) = import_with_progress(
        raw,
        &opts,
        &model,
        &sources,
        &Math500::vendored(),
        &command_line(),
        &|e| bar.on(e),
    )?;
    trim_data::io::write_dataset(out, &ds).with_context(|| format!("writing {}", out.display()))?;
    trim_data::load(out).with_context(|| format!("re-validating {}", out.display()))?;
    println!(
        "{}: {} of {} solutions ({} generators <= {}B) -> {} problems ({} test: MATH-500; {} MATH-500 problems among all read solutions), {} sample trees, {} nodes",
        out.display(),
        rep.solutions_used,
        rep.solutions_read,
        rep.generators.len(),
        a.max_generator_b,
        rep.problems,
        rep.test_problems,
        rep.math500_problems_seen,
        rep.trees,
        rep.nodes
    );
    for (g, n) in &rep.generators {
        println!("  {g}: {n} solutions");
    }
    Ok(())
}
