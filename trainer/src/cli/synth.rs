//! `trim data synth`: calibrate the latent model and write synthetic rollout trees; also
//! `--derive-step-tokens` to rebuild the vendored real step lengths from ProcessBench.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use trim_data::import::processbench::derive_step_tokens;
use trim_data::synth::{
    SHIPPED_CONFIG_PATH, STEP_TOKENS_PATH, SynthConfig, generate_with_progress, load_model,
    write_step_tokens,
};

use super::command_line;

/// Arguments of `trim data synth`. Flags override the config's top-level keys of the same name.
#[derive(Args)]
pub struct SynthArgs {
    /// TOML config (default: the shipped data/synth/math-qwen2.5.toml, embedded in the binary).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Number of problems.
    #[arg(long)]
    pub problems: Option<u32>,
    /// Base seed (problem p uses the RNG stream (seed, p)).
    #[arg(long)]
    pub seed: Option<u64>,
    /// K: at most K regenerations per path (the all-strong path is always complete).
    #[arg(long)]
    pub max_regens: Option<u32>,
    /// Independent sample trees per problem.
    #[arg(long)]
    pub trees: Option<u32>,
    /// Probability that a problem goes to the `test` split.
    #[arg(long)]
    pub test_fraction: Option<f64>,
    /// Output dataset (.parquet or .jsonl), written atomically.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Print the resolved config and the calibration; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Instead of synthesising: rebuild the real step-length lists from the ProcessBench
    /// directory given (math.json) and write them to --step-tokens-out.
    #[arg(long, value_name = "PROCESSBENCH_DIR")]
    pub derive_step_tokens: Option<PathBuf>,
    /// Where --derive-step-tokens writes.
    #[arg(long, default_value = STEP_TOKENS_PATH)]
    pub step_tokens_out: PathBuf,
}

/// Generate (or derive the step-token lists) as asked.
pub fn run(a: SynthArgs) -> anyhow::Result<()> {
    if let Some(raw) = &a.derive_step_tokens {
        return derive(raw, &a.step_tokens_out);
    }
    let (cfg, path) = resolve_config(&a)?;
    if a.dry_run {
        let (model, _) = load_model(&cfg.latent, &cfg.inputs, &path)?;
        println!("{}", toml::to_string(&cfg)?);
        println!("{}", serde_json::to_string_pretty(&model.calibration)?);
        return Ok(());
    }
    let bar = super::progress::Bar::default();
    let (ds, rep) = generate_with_progress(&cfg, &path, &command_line(), &|e| bar.on(e))?;
    write(&cfg.out, &ds)?;
    let c = &rep.calibration;
    println!(
        "{}: {} problems ({} test), {} sample trees, {} nodes",
        cfg.out.display(),
        rep.problems,
        rep.test_problems,
        rep.trees,
        rep.nodes
    );
    for (name, r) in [("weak", &c.weak), ("strong", &c.strong)] {
        println!(
            "calibration {name:<6} logit {:.4} (per-step accuracy {:.4} at mean difficulty, {:.4} on average); expected accuracy {:.4}, {:.2} steps; implied next-step accuracy {:.4}",
            r.logit,
            r.step_accuracy_at_mean_difficulty,
            r.mean_step_accuracy,
            r.expected_accuracy,
            r.expected_steps,
            r.implied_next_step_accuracy
        );
    }
    Ok(())
}

/// `--derive-step-tokens`: rebuild the real step-length lists from ProcessBench into `out`.
fn derive(raw: &Path, out: &Path) -> anyhow::Result<()> {
    let f = derive_step_tokens(raw, &command_line())?;
    write_step_tokens(out, &f).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "{}: weak {} solutions / {} steps (mean {:.1} tokens), strong {} solutions / {} steps (mean {:.1} tokens)",
        out.display(),
        f.weak.solutions,
        f.weak.nonfinal.len() + f.weak.last.len(),
        f.weak.mean(),
        f.strong.solutions,
        f.strong.nonfinal.len() + f.strong.last.len(),
        f.strong.mean()
    );
    Ok(())
}

/// The config (from `--config` or the shipped one) with the flags applied and checked, and the
/// name it goes by in errors and metadata.
fn resolve_config(a: &SynthArgs) -> anyhow::Result<(SynthConfig, PathBuf)> {
    let (mut cfg, path) = match &a.config {
        Some(p) => (SynthConfig::load(p)?, p.clone()),
        None => (
            SynthConfig::shipped(),
            PathBuf::from(format!("{SHIPPED_CONFIG_PATH} (embedded)")),
        ),
    };
    if let Some(v) = a.problems {
        cfg.problems = v;
    }
    if let Some(v) = a.seed {
        cfg.seed = v;
    }
    if let Some(v) = a.max_regens {
        cfg.max_regens = v;
    }
    if let Some(v) = a.trees {
        cfg.trees = v;
    }
    if let Some(v) = a.test_fraction {
        cfg.test_fraction = v;
    }
    if let Some(v) = &a.out {
        cfg.out = v.clone();
    }
    let overridden = a.problems.is_some()
        || a.seed.is_some()
        || a.max_regens.is_some()
        || a.trees.is_some()
        || a.test_fraction.is_some();
    let path = if overridden {
        PathBuf::from(format!("{} with command-line overrides", path.display()))
    } else {
        path
    };
    cfg.check(&path)?;
    Ok((cfg, path))
}

fn write(out: &Path, ds: &trim_data::Dataset) -> anyhow::Result<()> {
    trim_data::io::write_dataset(out, ds).with_context(|| format!("writing {}", out.display()))?;
    // Re-read and validate what was written: a shipped file must load.
    trim_data::load(out).with_context(|| format!("re-validating {}", out.display()))?;
    Ok(())
}
