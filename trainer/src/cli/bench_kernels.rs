//! `trim bench-kernels`: one TRIM-Agg PPO gradient step through burn (the trainer's path) and
//! through the fused plain-Rust kernels (`trim::fused`), on one core's worth of work.

use clap::Args;

/// Arguments of `trim bench-kernels`.
#[derive(Args)]
pub struct BenchKernelsArgs {
    /// Minibatch rows (one default update holds ≈ 480 steps).
    #[arg(long, default_value_t = 480)]
    pub rows: usize,
    /// Hidden width.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// Gradient steps timed per path.
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// Also step this many independent learners at once (fused, in parallel over the cores),
    /// as a population-trained sweep would (0: no population measurement).
    #[arg(long, default_value_t = 0)]
    pub population: usize,
    /// Print the measurements as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The population measurement.
#[derive(serde::Serialize)]
struct PopulationTimes {
    members: usize,
    steps_per_member: usize,
    threads: usize,
    wall_s: f64,
    /// Gradient steps per second per member, and over the whole population.
    steps_per_s_per_member: f64,
    steps_per_s: f64,
    gflop_per_s: f64,
}

fn population(a: &BenchKernelsArgs, flop_per_step: f64) -> anyhow::Result<PopulationTimes> {
    use trim::fused::population::{Member, step_all};
    let mut members = (1..=a.population as u64)
        .map(|seed| Member::new(a.rows, a.hidden, seed))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let wall_s = step_all(&mut members, a.steps);
    let total = (a.population * a.steps) as f64;
    Ok(PopulationTimes {
        members: a.population,
        steps_per_member: a.steps,
        threads: rayon::current_num_threads(),
        wall_s,
        steps_per_s_per_member: a.steps as f64 / wall_s,
        steps_per_s: total / wall_s,
        gflop_per_s: total * flop_per_step / wall_s / 1e9,
    })
}

/// Run both paths and print ms per step, GFLOP/s and the fused split.
pub fn run(a: BenchKernelsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.rows >= 1 && a.steps >= 1,
        "--rows and --steps must be at least 1"
    );
    anyhow::ensure!(
        (1..=trim::model::MAX_HIDDEN).contains(&a.hidden),
        "--hidden must be in 1..={}",
        trim::model::MAX_HIDDEN
    );
    let t = trim::fused::bench::time_steps(a.rows, a.hidden, a.steps, 1)?;
    let pop = (a.population > 0)
        .then(|| population(&a, t.flop_per_step))
        .transpose()?;
    if a.json {
        let v = serde_json::json!({"single": t, "population": pop});
        println!("{v}");
        return Ok(());
    }
    let gflops = |s: f64| t.flop_per_step / s / 1e9;
    println!(
        "TRIM-Agg PPO gradient step (forward, loss, backward, clip, Adam): {} rows, hidden {}, {} steps each",
        t.rows, t.hidden, t.steps
    );
    println!(
        "  burn (trainer today)  {:>8.3} ms/step  {:>6.2} GFLOP/s",
        1e3 * t.burn_s,
        gflops(t.burn_s)
    );
    println!(
        "  fused plain Rust      {:>8.3} ms/step  {:>6.2} GFLOP/s  ({:.1}× burn)",
        1e3 * t.fused_s,
        gflops(t.fused_s),
        t.burn_s / t.fused_s
    );
    println!(
        "  fused split           forward {:.3} ms, loss head {:.3} ms, backward {:.3} ms, clip + Adam {:.3} ms",
        1e3 * t.fused_forward_s,
        1e3 * t.fused_head_s,
        1e3 * t.fused_backward_s,
        1e3 * t.fused_optim_s
    );
    if let Some(s) = t.fused_two_cores_s {
        println!(
            "  fused on 2 cores      {:>8.3} ms/step  {:>6.2} GFLOP/s  (one learner, its {}-row parts two at a time)",
            1e3 * s,
            gflops(s),
            trim::fused::learner::PART_ROWS
        );
    }
    if let Some(p) = pop {
        println!(
            "  population           {} members × {} steps on {} threads in {:.2} s: {:.0} steps/s per member, {:.0} steps/s in all, {:.1} GFLOP/s",
            p.members,
            p.steps_per_member,
            p.threads,
            p.wall_s,
            p.steps_per_s_per_member,
            p.steps_per_s,
            p.gflop_per_s
        );
    }
    Ok(())
}
