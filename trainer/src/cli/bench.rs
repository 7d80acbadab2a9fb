//! `trim bench`: replay throughput of the environment (steps per second).
//!
//! Three figures: the fused episode loop on one core, the same on every core (rayon), and the
//! batched `VecEnv` API the trainer uses (observe → act → step over a batch).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use rayon::prelude::*;
use trim_env::{AGG_DIM, Action, Policy, RefPolicy, Rng, VecEnv, World, resolve, run_episode};

use trim::config::DEFAULT_DATA;

/// Arguments of `trim bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Dataset file or synth spec to replay (default: the default training world, generated on
    /// demand; pass a file for the stored-forest figures).
    #[arg(long, default_value = DEFAULT_DATA)]
    pub data: PathBuf,
    /// Policy to replay (weak, strong, threshold:K, random:P, judge:S, confidence:C).
    #[arg(long, default_value = "threshold:0.5")]
    pub policy: String,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Episodes per batch for the VecEnv measurement.
    #[arg(long, default_value_t = 4096)]
    pub batch: usize,
}

/// Play every tree once per pass until `budget` elapses; returns (steps, seconds).
fn fused_loop<W: World>(
    forest: &W,
    policy: &RefPolicy,
    budget: Duration,
    parallel: bool,
) -> (u64, f64) {
    let start = Instant::now();
    let mut steps = 0u64;
    let mut pass = 0u64;
    while start.elapsed() < budget {
        let trees = 0..n_trees(forest);
        let one = |t: usize| {
            forest.prefetch_tree(t + 1);
            let mut rng = Rng::stream(pass, t as u64);
            u64::from(run_episode(forest, t, policy, &mut rng).map_or(0, |o| o.steps))
        };
        steps += if parallel {
            trees
                .into_par_iter()
                .with_min_len(256)
                .map(one)
                .sum::<u64>()
        } else {
            trees.map(one).sum::<u64>()
        };
        pass += 1;
    }
    (steps, start.elapsed().as_secs_f64())
}

/// Sample trees over every problem of `w`.
fn n_trees<W: World>(w: &W) -> usize {
    w.n_problems()
        .checked_sub(1)
        .map_or(0, |last| w.trees_of(last).end)
}

fn vec_env_loop<W: World>(
    forest: &W,
    policy: &RefPolicy,
    batch: usize,
    budget: Duration,
) -> anyhow::Result<(u64, f64)> {
    let mut env = VecEnv::new(forest, batch, 8e-4);
    let mut obs = vec![0.0f32; batch * AGG_DIM];
    let mut mask = vec![false; batch * 2];
    let mut actions = vec![Action::Continue; batch];
    let mut rewards = vec![0.0f32; batch];
    let mut dones = vec![false; batch];
    let mut trees = vec![0u32; batch];
    let problems: Vec<u32> = (0..forest.n_problems() as u32).collect();
    let mut rng = Rng::new(0);
    let signals = policy.wants_signals();
    let start = Instant::now();
    let mut steps = 0u64;
    let mut next_problem = 0usize;
    while start.elapsed() < budget {
        let chunk: Vec<u32> = (0..batch)
            .map(|i| problems[(next_problem + i) % problems.len()])
            .collect();
        next_problem += batch;
        VecEnv::sample_trees(forest, &chunk, &mut rng, &mut trees);
        env.reset(&trees);
        while !env.all_done() {
            env.observe(&mut obs, &mut mask);
            for (i, a) in actions.iter_mut().enumerate() {
                let view = match signals {
                    true => env.view_signals(i),
                    false => env.view(i),
                };
                if let Some((view, m)) = view {
                    *a = resolve(policy.act(&view, m, &mut rng), m);
                    steps += 1;
                }
            }
            env.step(&actions, &mut rewards, &mut dones)?;
        }
    }
    Ok((steps, start.elapsed().as_secs_f64()))
}

/// Run the three measurements and print steps per second.
pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    let l = trim_data::DataSource::open(&a.data, &trim_data::LoadOptions::from_env())?;
    let policy: RefPolicy = a.policy.parse().map_err(anyhow::Error::msg)?;
    let what = match &l {
        trim_data::DataSource::Stored(s) => format!("{} nodes stored", s.forest.n_nodes()),
        trim_data::DataSource::Lazy(_) => "nodes generated on demand".into(),
    };
    trim_data::with_world!(&l, |f| measure(f, &a, &policy, &what))
}

fn measure<W: World>(f: &W, a: &BenchArgs, policy: &RefPolicy, what: &str) -> anyhow::Result<()> {
    trim_env::check_signals(f, policy)?;
    let budget = Duration::from_secs_f64(a.seconds);
    let threads = rayon::current_num_threads();
    println!(
        "replay benchmark: {} ({} problems, {} trees, {what}), policy {policy}, {threads} threads",
        a.data.display(),
        f.n_problems(),
        n_trees(f),
    );
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    // Warm-up: the first passes after loading pay for first touches and cold caches.
    single.install(|| fused_loop(f, policy, budget / 4, false));
    let (s1, t1) = single.install(|| fused_loop(f, policy, budget, false));
    println!(
        "fused episode loop, 1 core     {:>8.2} M steps/s",
        s1 as f64 / t1 / 1e6
    );
    let (sn, tn) = fused_loop(f, policy, budget, true);
    println!(
        "fused episode loop, {threads} cores    {:>8.2} M steps/s",
        sn as f64 / tn / 1e6
    );
    let (sv, tv) = vec_env_loop(f, policy, a.batch, budget)?;
    println!(
        "VecEnv batch {:<6} {threads} cores   {:>8.2} M steps/s (observe + act + step)",
        a.batch,
        sv as f64 / tv / 1e6
    );
    Ok(())
}
