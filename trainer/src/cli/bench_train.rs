//! `trim bench-train`: PPO throughput on the paper's schedule (≈ 1060 updates × 64 episodes).
//!
//! Runs the real trainer (rollouts, GAE, PPO epochs, validation, checkpoints) in a temporary
//! run directory for `--updates` updates and reports updates/s and environment steps/s with the
//! time split by phase. The schedule (and so the learning-rate annealing) is the one of enough
//! passes over the dataset to reach `--updates`; the run stops there.

use std::path::PathBuf;

use clap::Args;
use trim::backend::Backend;
use trim::train::AnyTrainer;
use trim::{RunOptions, TrainConfig};

use trim::config::DEFAULT_DATA;

/// Arguments of `trim bench-train`.
#[derive(Args)]
pub struct BenchTrainArgs {
    /// Dataset to train on.
    #[arg(long, default_value = DEFAULT_DATA)]
    pub data: PathBuf,
    /// PPO updates to run (the release: 10 passes × 106 batches of 64 ≈ 1060).
    #[arg(long, default_value_t = 1060)]
    pub updates: u64,
    /// Episodes per update.
    #[arg(long, default_value_t = 64)]
    pub batch_episodes: usize,
    /// Policy family timed: agg (TRIM-Agg) or seq (TRIM-Seq).
    #[arg(long, default_value_t = trim::config::PolicyKind::Agg)]
    pub policy: trim::config::PolicyKind,
    /// Backend (flex, tch, tch-cuda:N); default $TRIM_BACKEND, else flex.
    #[arg(long)]
    pub backend: Option<Backend>,
    /// Print the measurements as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run the benchmark and print the figures.
pub fn run(a: BenchTrainArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.updates >= 1, "--updates must be at least 1");
    let backend = Backend::resolve(a.backend)?;
    let mut cfg = TrainConfig {
        data: a.data.clone(),
        batch_episodes: a.batch_episodes,
        policy: a.policy,
        ..TrainConfig::default()
    };
    cfg.validate()?;
    // Passes needed to reach the requested number of updates on this dataset.
    let l = trim_data::DataSource::open(&a.data, &trim_data::LoadOptions::from_env())?;
    let n_split = l.problems_in_split(&cfg.train_split).len();
    let per_pass = cfg.updates_per_pass(n_split - cfg.n_val(n_split)).max(1);
    cfg.passes = u32::try_from(a.updates.div_ceil(per_pass))?;
    drop(l);
    let out = std::env::temp_dir().join(format!("trim-bench-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let opts = RunOptions {
        out_root: out.clone(),
        name: Some("bench".into()),
        stop_after_updates: Some(a.updates),
        backend,
        command_line: super::command_line(),
        ..RunOptions::default()
    };
    let result = AnyTrainer::new(cfg.clone(), opts).and_then(AnyTrainer::run);
    let _ = std::fs::remove_dir_all(&out);
    let s = result?;
    let t = &s.timing;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "data": a.data,
                "policy": a.policy.name(),
                "backend": backend.to_string(),
                "threads": rayon::current_num_threads(),
                "updates": s.updates_done,
                "batch_episodes": cfg.batch_episodes,
                "env_steps": t.env_steps,
                "wall_s": t.wall_s,
                "updates_per_s": t.updates_per_s,
                "env_steps_per_s": t.env_steps_per_s,
                "rollout_s": t.rollout_s,
                "ppo_s": t.update_s,
                "validation_s": t.validation_s,
                "io_s": t.io_s,
            })
        );
        return Ok(());
    }
    println!(
        "PPO training benchmark ({}): {} updates × {} episodes on {} ({} backend, {} threads)",
        a.policy.display_name(),
        s.updates_done,
        cfg.batch_episodes,
        a.data.display(),
        backend,
        rayon::current_num_threads()
    );
    println!(
        "  whole schedule   {:>8.2} s  ({} env steps)",
        t.wall_s, t.env_steps
    );
    println!("  PPO updates      {:>8.1} /s", t.updates_per_s);
    println!("  env steps        {:>8.0} /s", t.env_steps_per_s);
    println!(
        "  time split       rollout {:.2} s, PPO epochs {:.2} s, validation {:.2} s, I/O {:.2} s",
        t.rollout_s, t.update_s, t.validation_s, t.io_s
    );
    Ok(())
}
