//! `trim train`: PPO training of a TRIM-Agg routing policy into `checkpoints/<run-name>/`.

use std::path::PathBuf;

use clap::Args;
use trim::backend::Backend;
use trim::train::{RunSummary, Scores};
use trim::{ConfigOverrides, RunOptions, TrainConfig, Trainer};

/// Arguments of `trim train`.
#[derive(Args)]
#[command(
    after_help = "Every configuration field can also be set in a TOML file (--config); \
flags override the file, the file overrides the defaults. A run directory's config.toml can be \
passed back with --config to repeat the run."
)]
pub struct TrainArgs {
    /// TOML configuration file (keys = the flag names with `_` instead of `-`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Directory that holds run directories.
    #[arg(long, default_value = "checkpoints")]
    pub out: PathBuf,
    /// Run name (default: `<dataset>__lam<λ>__s<seed>__<unix time>`).
    #[arg(long)]
    pub name: Option<String>,
    /// Continue a run: a run directory (latest checkpoint) or a checkpoint directory. The run's
    /// own configuration is used; configuration flags are refused.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Stop after this many updates in total (a checkpoint is written); resume later.
    #[arg(long)]
    pub stop_after_updates: Option<u64>,
    /// Backend: flex (pure-Rust CPU), tch (LibTorch CPU), tch-cuda[:N] (LibTorch CUDA; needs a
    /// build with `--features tch`). Default: $TRIM_BACKEND, else flex.
    #[arg(long)]
    pub backend: Option<Backend>,
    /// No progress bar, no messages; only the final summary line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print summary.json instead of the result table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cfg: ConfigOverrides,
}

fn row(name: &str, s: &Scores) {
    println!(
        "  {name:<28} {:>9.4} {:>8.2}% {:>10.1} {:>8.2} {:>9.3}",
        s.reward,
        100.0 * s.accuracy,
        s.strong_tokens,
        s.strong_calls,
        s.cost_fraction
    );
}

fn print_summary(s: &RunSummary) {
    println!(
        "{} after {}/{} updates ({} env steps) in {:.1} s: {:.1} updates/s, {:.0} env steps/s \
         (rollout {:.1} s, PPO {:.1} s, validation {:.1} s, I/O {:.1} s)",
        s.status,
        s.updates_done,
        s.total_updates,
        s.env_steps,
        s.timing.wall_s,
        s.timing.updates_per_s,
        s.timing.env_steps_per_s,
        s.timing.rollout_s,
        s.timing.update_s,
        s.timing.validation_s,
        s.timing.io_s
    );
    for rep in [&s.val, &s.test].into_iter().flatten() {
        println!(
            "{} split ({} problems), λ = {}:\n  {:<28} {:>9} {:>9} {:>10} {:>8} {:>9}",
            rep.split,
            rep.problems,
            s.lambda,
            "policy",
            "reward",
            "accuracy",
            "strong tok",
            "calls",
            "cost frac"
        );
        row("always-weak", &rep.always_weak);
        row("always-strong", &rep.always_strong);
        row(
            &format!("TRIM-Thr {:.2} (val-chosen)", rep.best_threshold.threshold),
            &rep.best_threshold.scores,
        );
        if rep.oracle_threshold.threshold != rep.best_threshold.threshold {
            row(
                &format!("TRIM-Thr {:.2} (oracle)", rep.oracle_threshold.threshold),
                &rep.oracle_threshold.scores,
            );
        }
        if let Some(b) = &rep.best_policy {
            row("TRIM-Agg PPO best/", b);
        }
        if let Some(f) = &rep.final_policy {
            row("TRIM-Agg PPO final", f);
        }
    }
    println!("run directory: {}", s.run_dir.display());
}

/// Train (or resume) and print the result.
pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let backend = Backend::resolve(a.backend)?;
    let opts = RunOptions {
        out_root: a.out,
        name: a.name,
        resume: a.resume.clone(),
        stop_after_updates: a.stop_after_updates,
        quiet: a.quiet,
        backend,
        command_line: super::command_line(),
    };
    let trainer = if a.resume.is_some() {
        let set = TrainConfig::set_in(&a.cfg);
        anyhow::ensure!(
            a.config.is_none() && set.is_empty(),
            "--resume continues a run with its own configuration; drop --config and the \
             configuration flags ({}) — run options like --stop-after-updates are fine",
            set.join(", ")
        );
        Trainer::resume(opts)?
    } else {
        let cfg = TrainConfig::resolve(a.config.as_deref(), &a.cfg)?;
        Trainer::new(cfg, opts)?
    };
    let summary = trainer.run()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else if a.quiet {
        println!(
            "{} {} updates; best validation reward {}; {}",
            summary.status,
            summary.updates_done,
            summary
                .best
                .map_or("n/a".into(), |b| format!("{:.4}", b.reward)),
            summary.run_dir.display()
        );
    } else {
        print_summary(&summary);
    }
    Ok(())
}
