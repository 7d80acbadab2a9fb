//! `trim bench-train`: PPO throughput on the paper's schedule (≈ 1060 updates × 64 episodes).
//!
//! Runs the real trainer (rollouts, GAE, PPO epochs, validation, checkpoints) in a temporary
//! run directory for `--updates` updates and reports updates/s and environment steps/s with the
//! time split by phase. The schedule (and so the learning-rate annealing) is the one of enough
//! passes over the dataset to reach `--updates`; the run stops there.
//!
//! `--population P` trains P independent runs (seeds `10 … 10+P−1`) at once in this process
//! through `trim sweep`'s local executor (one worker per core pulling runs), and reports the
//! whole population's wall time and each member's rate.

use std::path::PathBuf;

use clap::Args;
use trim::TrainConfig;
use trim::backend::Backend;

use trim::config::{DEFAULT_DATA, Kernels};
use trim::sweep::RunSpec;
use trim::sweep::exec::{SweepOptions, run_sweep};
use trim::train::RunSummary;

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
    /// PPO kernels: auto (fused for TRIM-Agg), fused, or burn.
    #[arg(long, default_value_t = Kernels::Auto)]
    pub kernels: Kernels,
    /// Independent runs trained at once in this process (seeds 10, 11, …).
    #[arg(long, default_value_t = 1)]
    pub population: usize,
    /// Backend (flex, tch, tch-cuda:N); default $TRIM_BACKEND, else flex.
    #[arg(long)]
    pub backend: Option<Backend>,
    /// Print the measurements as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The benchmark's configuration: the defaults on `--data`, with enough passes to reach
/// `--updates`.
fn config(a: &BenchTrainArgs) -> anyhow::Result<TrainConfig> {
    anyhow::ensure!(a.updates >= 1, "--updates must be at least 1");
    anyhow::ensure!(a.population >= 1, "--population must be at least 1");
    let mut cfg = TrainConfig {
        data: a.data.clone(),
        batch_episodes: a.batch_episodes,
        policy: a.policy,
        kernels: a.kernels,
        ..TrainConfig::default()
    };
    cfg.validate()?;
    // Passes needed to reach the requested number of updates on this dataset.
    let l = trim_data::DataSource::open(&a.data, &trim_data::LoadOptions::from_env())?;
    let n_split = l.problems_in_split(&cfg.train_split).len();
    let per_pass = cfg.updates_per_pass(n_split - cfg.n_val(n_split)).max(1);
    cfg.passes = u32::try_from(a.updates.div_ceil(per_pass))?;
    Ok(cfg)
}

/// Train the population (member `i` with seed `seed + i`) in a temporary directory; returns
/// their summaries and the wall seconds. One run trains as `trim train` does (its gradient
/// steps split over the cores); several go through the sweep executor, one run per core.
fn train_population(
    cfg: &TrainConfig,
    a: &BenchTrainArgs,
    backend: Backend,
) -> anyhow::Result<(Vec<RunSummary>, f64)> {
    let out = std::env::temp_dir().join(format!("trim-bench-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let runs: Vec<RunSpec> = (0..a.population as u64)
        .map(|i| RunSpec {
            name: format!("member-{i}"),
            config: TrainConfig {
                seed: cfg.seed + i,
                ..cfg.clone()
            },
        })
        .collect();
    let o = SweepOptions {
        runs_dir: out.clone(),
        threads: rayon::current_num_threads(),
        backend,
        stop_after_updates: Some(a.updates),
        command_line: super::command_line(),
    };
    let start = std::time::Instant::now();
    if let [one] = &runs[..] {
        let opts = trim::RunOptions {
            out_root: out.clone(),
            name: Some(one.name.clone()),
            stop_after_updates: o.stop_after_updates,
            backend,
            command_line: o.command_line.clone(),
            ..trim::RunOptions::default()
        };
        let s = trim::train::AnyTrainer::new(one.config.clone(), opts)
            .and_then(trim::train::AnyTrainer::run);
        let wall = start.elapsed().as_secs_f64();
        let _ = std::fs::remove_dir_all(&out);
        return Ok((vec![s?], wall));
    }
    let result = run_sweep(&runs, &o, &|_| {});
    let wall = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&out);
    let summaries = (result?.into_iter())
        .map(|r| r.outcome.map_err(|e| anyhow::anyhow!("{}: {e}", r.name)))
        .collect::<anyhow::Result<_>>()?;
    Ok((summaries, wall))
}

/// Run the benchmark and print the figures.
pub fn run(a: BenchTrainArgs) -> anyhow::Result<()> {
    let backend = Backend::resolve(a.backend)?;
    let cfg = config(&a)?;
    let fused = cfg.fused_kernels().map_err(anyhow::Error::msg)?;
    let (runs, wall) = train_population(&cfg, &a, backend)?;
    let s = &runs[0];
    let t = &s.timing;
    let env_steps: u64 = runs.iter().map(|r| r.timing.env_steps).sum();
    let updates: u64 = runs.iter().map(|r| r.updates_done).sum();
    // PPO arithmetic of TRIM-Agg: every valid step is a minibatch row in every epoch.
    let gflop = (a.policy == trim::config::PolicyKind::Agg).then(|| {
        let per_row = trim::fused::bench::flop_per_row(trim_env::AGG_DIM, cfg.hidden);
        env_steps as f64 * f64::from(cfg.update_epochs) * per_row / 1e9
    });
    let kernels = if fused { "fused" } else { "burn" };
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "data": a.data,
                "policy": a.policy.name(),
                "kernels": kernels,
                "population": a.population,
                "backend": backend.to_string(),
                "threads": rayon::current_num_threads(),
                "updates": s.updates_done,
                "batch_episodes": cfg.batch_episodes,
                "env_steps": env_steps,
                "wall_s": wall,
                "updates_per_s_per_member": updates as f64 / wall / a.population as f64,
                "env_steps_per_s": env_steps as f64 / wall,
                "ppo_gflop_per_s": gflop.map(|g| g / wall),
                "member0_rollout_s": t.rollout_s,
                "member0_ppo_s": t.update_s,
                "member0_validation_s": t.validation_s,
                "member0_io_s": t.io_s,
            })
        );
        return Ok(());
    }
    println!(
        "PPO training benchmark ({}, {kernels} kernels): {} × {} updates × {} episodes on {} ({} backend, {} threads)",
        a.policy.display_name(),
        a.population,
        s.updates_done,
        cfg.batch_episodes,
        a.data.display(),
        backend,
        rayon::current_num_threads()
    );
    println!("  whole schedule   {wall:>8.2} s  ({env_steps} env steps)");
    let per_member = updates as f64 / wall / a.population as f64;
    println!("  PPO updates      {per_member:>8.1} /s per member");
    println!("  env steps        {:>8.0} /s", env_steps as f64 / wall);
    if let Some(g) = gflop {
        println!(
            "  PPO arithmetic   {:>8.1} GFLOP/s ({g:.0} GFLOP)",
            g / wall
        );
    }
    println!(
        "  time split       rollout {:.2} s, PPO epochs {:.2} s, validation {:.2} s, I/O {:.2} s{}",
        t.rollout_s,
        t.update_s,
        t.validation_s,
        t.io_s,
        if a.population > 1 { " (member 0)" } else { "" }
    );
    Ok(())
}
