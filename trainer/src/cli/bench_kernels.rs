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
    /// Print the measurements as JSON.
    #[arg(long)]
    pub json: bool,
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
    if a.json {
        println!("{}", serde_json::to_string(&t)?);
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
    Ok(())
}
